//! Everything that waits for a time: ack and ack-group timeouts, the connect timeout, and
//! the application's `every`/`after` timers, all in `Core::timers` (one heap, lazy
//! deletion: a popped entry whose subject is gone does nothing).

use super::core::Core;
use super::dispatch::Io;
use super::{AckError, DisconnectReason, ServerCx, SocketKey, TimerId};
use crate::engine::{Engine, SessionId};
use std::cmp::Reverse;
use std::time::{Duration, Instant};

pub(super) type UserTimerFn<S> = Box<dyn FnMut(&mut ServerCx<'_, S>)>;

/// What a deadline in `Core::timers` is for.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub(super) enum Timer {
    Ack(SocketKey, u64),
    Group(usize, u32),
    Connect(SessionId),
    /// A client's binary packet must have all its attachments by now.
    Attachments(SessionId, u32),
    User(u64),
    /// Connection state recovery's sweep of expired sessions and log entries.
    Recovery,
}

/// An application timer: `every` (with a period) or `after` (without).
pub(super) struct UserTimer<S> {
    pub(super) period: Option<Duration>,
    pub(super) f: UserTimerFn<S>,
}

impl<S> Core<S> {
    pub(super) fn add_timer(&mut self, at: Instant, mut timer: UserTimer<S>) -> TimerId {
        // A zero period would re-arm at `now` forever and starve the loop.
        timer.period = timer.period.map(|p| p.max(Duration::from_millis(1)));
        self.next_timer_id += 1;
        let id = self.next_timer_id;
        self.new_timers.push((id, timer));
        self.timers.push(Reverse((at, Timer::User(id))));
        TimerId(id)
    }
}

impl<S: 'static> Io<S> {
    /// Takes in the timers handlers added and drops those they cancelled.
    pub(super) fn merge_new_timers(&mut self) {
        for (id, timer) in self.core.new_timers.drain(..) {
            self.user_timers.insert(id, timer);
        }
        // Draining a set walks its whole table even when it is empty, and this runs after
        // every handler.
        if !self.core.cancelled_timers.is_empty() {
            for id in self.core.cancelled_timers.drain() {
                self.user_timers.remove(&id);
            }
        }
    }

    /// Runs every timer that is due.
    pub(super) fn fire_timers(&mut self, engine: &mut Engine) {
        let now = engine.now();
        while let Some(Reverse((at, timer))) = self.core.timers.peek().copied() {
            if at > now {
                break;
            }
            self.core.timers.pop();
            match timer {
                Timer::Ack(key, id) => {
                    if self.core.acks.has_callback(&(key, id)) {
                        self.finish_ack(engine, (key, id), Err(AckError::Timeout), "");
                    }
                }
                Timer::Group(g, generation) => {
                    if self
                        .core
                        .groups
                        .get(g)
                        .is_some_and(|gr| gr.generation == generation)
                    {
                        self.finish_group(engine, g, true);
                        self.after_handler(engine);
                    }
                }
                Timer::Connect(session) => {
                    if self
                        .core
                        .clients
                        .get(&session)
                        .is_some_and(|c| !c.connected)
                    {
                        self.end_client(
                            engine,
                            session,
                            DisconnectReason::ForcedClose,
                            format_args!("that joined no namespace in time"),
                        );
                    }
                }
                Timer::Attachments(session, packet) => {
                    // Lazy deletion: an entry for a packet that completed, or that a later
                    // packet replaced (with its own deadline), does nothing.
                    let still_waiting =
                        self.core.clients.get(&session).is_some_and(|c| {
                            c.assembler.is_waiting() && c.binary_packets == packet
                        });
                    if still_waiting {
                        self.core.stats.attachments_timed_out += 1;
                        let what = "the attachments of a binary packet did not arrive in time";
                        self.parse_error(engine, session, &what);
                    }
                }
                Timer::Recovery => {
                    if let Some(log) = self.core.recovery.as_deref_mut() {
                        log.sweep_at = None;
                        self.core.stats.recovery_sessions_expired += log.expire(now);
                    }
                    self.core.schedule_recovery_sweep(now);
                }
                Timer::User(id) => {
                    let Some(mut timer) = self.user_timers.remove(&id) else {
                        continue;
                    };
                    (timer.f)(&mut ServerCx {
                        engine,
                        core: &mut self.core,
                    });
                    if let Some(period) = timer.period
                        && !self.core.cancelled_timers.remove(&id)
                    {
                        // Fixed rate: the next tick is due a period after this one was,
                        // not after it ran, so a tick loop does not drift.
                        let mut next = at + period;
                        if next <= now {
                            next = now + period;
                        }
                        self.core.timers.push(Reverse((next, Timer::User(id))));
                        self.user_timers.insert(id, timer);
                    }
                    self.after_handler(engine);
                }
            }
        }
    }
}
