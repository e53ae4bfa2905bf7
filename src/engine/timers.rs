//! The engine's timers: one heap of deadlines for sessions (heartbeats, upgrade and linger
//! ends) and connections (request heads, idle keep-alive, lingering closes), with lazy
//! deletion: a popped entry that is no longer due does nothing.

use super::Engine;
use super::conn::ConnState;
use super::handler::SessionId;
use crate::protocol::engineio::session::CloseReason;
use crate::protocol::http::Response;
use mio::Token;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub(super) enum TimerKey {
    Session(usize, u32),
    Conn(usize, u32),
}

impl TimerKey {
    /// One word: the kind in the top bit, the slab index in the next 31, the generation
    /// in the low 32 (an index past 2^31 would need two billion open connections).
    fn pack(self) -> u64 {
        let (kind, index, generation) = match self {
            TimerKey::Session(i, g) => (0u64, i, g),
            TimerKey::Conn(i, g) => (1u64 << 63, i, g),
        };
        kind | ((index as u64 & 0x7fff_ffff) << 32) | u64::from(generation)
    }

    fn unpack(word: u64) -> TimerKey {
        let index = ((word >> 32) & 0x7fff_ffff) as usize;
        let generation = word as u32;
        if word >> 63 == 0 {
            TimerKey::Session(index, generation)
        } else {
            TimerKey::Conn(index, generation)
        }
    }
}

/// The engine's deadlines, nearest first, with lazy deletion. An entry is two words (the
/// deadline in nanoseconds since the engine started, the packed key): with tens of
/// thousands of idle clients the heap holds an entry or two per client, and a pop walks
/// one path of it per ping; at 16 bytes an entry (not 40 as `(Instant, TimerKey)`) that
/// walk touches fewer cache lines. It was the largest single cost of an idle client's ping
/// round (a sixth of the server's CPU at 19 900 clients).
#[derive(Debug)]
pub(super) struct TimerHeap {
    epoch: Instant,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
}

impl TimerHeap {
    /// An empty heap whose deadlines count from `epoch` (none may be earlier).
    pub(super) fn new(epoch: Instant) -> TimerHeap {
        TimerHeap {
            epoch,
            heap: BinaryHeap::new(),
        }
    }

    pub(super) fn push(&mut self, at: Instant, key: TimerKey) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.heap.push(Reverse((nanos, key.pack())));
    }

    /// The nearest deadline and its key.
    pub(super) fn peek(&self) -> Option<(Instant, TimerKey)> {
        self.heap.peek().map(|Reverse((nanos, key))| {
            (
                self.epoch + Duration::from_nanos(*nanos),
                TimerKey::unpack(*key),
            )
        })
    }

    pub(super) fn pop(&mut self) {
        self.heap.pop();
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.heap.capacity()
    }

    pub(super) fn shrink_to(&mut self, capacity: usize) {
        self.heap.shrink_to(capacity);
    }
}

impl Engine {
    pub(super) fn fire_timers(&mut self) {
        while let Some((at, key)) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            match key {
                TimerKey::Session(index, generation) => {
                    let now = self.now;
                    let Some(slot) = self.slot_mut(SessionId { index, generation }) else {
                        continue;
                    };
                    if slot.timer_at == Some(at) {
                        slot.timer_at = None;
                    }
                    slot.session.handle_timeout(now);
                    self.dirty_sessions.push(index);
                }
                TimerKey::Conn(index, generation) => {
                    let now = self.now;
                    let Some(conn) = self.conns.get_mut(index) else {
                        continue;
                    };
                    if conn.generation != generation || conn.deadline.is_none_or(|t| t > now) {
                        continue;
                    }
                    conn.deadline = None;
                    let token = Token(index);
                    let waiting = !conn.close_after_flush;
                    let partial = !conn.inbuf.is_empty();
                    match conn.state {
                        ConnState::Lingering => self.close_conn(token, CloseReason::TransportClose),
                        // A request head (or its body) that did not arrive in time.
                        ConnState::Http if waiting && partial => {
                            conn.inbuf.clear();
                            let response = Response::new(408, "text/plain", "request timeout");
                            self.respond(token, &response, None, false);
                        }
                        // An idle keep-alive connection.
                        ConnState::Http if waiting => {
                            self.close_conn(token, CloseReason::TransportClose)
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The nearest deadline in the heap that is still a deadline, dropping stale entries
    /// on the way so the loop does not wake for them. The common one: a ping arms the pong
    /// deadline (`ping_timeout` later); the pong comes at once and the session's next
    /// deadline is the next ping, but the pong deadline's entry stays in the heap and would
    /// wake the loop for nothing, once per ping round per idle client. A stale session
    /// entry is replaced by one at the session's real deadline, if the heap has none yet.
    pub(super) fn next_timer(&mut self) -> Option<Instant> {
        while let Some((at, key)) = self.timers.peek() {
            let stale = match key {
                TimerKey::Session(index, generation) => {
                    match self.slot_mut(SessionId { index, generation }) {
                        None => true,
                        Some(slot) => {
                            let due = slot.session.poll_timeout();
                            let stale = due.is_none_or(|due| due > at);
                            if stale {
                                if slot.timer_at == Some(at) {
                                    slot.timer_at = None;
                                }
                                if let Some(due) = due
                                    && slot.timer_at.is_none_or(|t| due < t)
                                {
                                    slot.timer_at = Some(due);
                                    self.timers.pop();
                                    self.timers.push(due, key);
                                    continue;
                                }
                            }
                            stale
                        }
                    }
                }
                // A connection's deadline acts only while it reads requests or lingers
                // (`fire_timers`): the head deadline of a connection that became a
                // WebSocket or a held GET is stale too.
                TimerKey::Conn(index, generation) => self.conns.get(index).is_none_or(|c| {
                    c.generation != generation
                        || c.deadline.is_none_or(|t| t > at)
                        || !matches!(c.state, ConnState::Http | ConnState::Lingering)
                }),
            };
            if !stale {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// A connection back to waiting for a request gets `head_timeout` for it.
    pub(super) fn arm_idle_deadline(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if !matches!(conn.state, ConnState::Http) || conn.close_after_flush {
            return;
        }
        let at = self.now + self.config.head_timeout;
        conn.deadline = Some(at);
        self.timers
            .push(at, TimerKey::Conn(token.0, conn.generation));
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{Config, Engine, EngineHandler};
    use std::time::Duration;

    struct Quiet;
    impl EngineHandler for Quiet {}

    #[test]
    fn the_heap_gives_back_deadlines_and_keys_exactly_nearest_first() {
        use super::{TimerHeap, TimerKey};
        use std::time::Instant;
        let epoch = Instant::now();
        let mut heap = TimerHeap::new(epoch);
        let keys = [
            (
                epoch + Duration::from_nanos(1_500_000_001),
                TimerKey::Conn(7, u32::MAX),
            ),
            (
                epoch + Duration::from_secs(25),
                TimerKey::Session(0x7fff_ffff, 3),
            ),
            (epoch, TimerKey::Session(0, 0)),
        ];
        for (at, key) in keys {
            heap.push(at, key);
        }
        let mut out = Vec::new();
        while let Some(entry) = heap.peek() {
            out.push(entry);
            heap.pop();
        }
        assert_eq!(out, [keys[2], keys[0], keys[1]]);
    }

    #[test]
    fn after_a_pong_the_loop_sleeps_until_the_next_ping() {
        let (interval, timeout) = (Duration::from_secs(25), Duration::from_secs(20));
        let config = Config::default()
            .ping_interval(interval)
            .ping_timeout(timeout);
        let (mut engine, net) = Engine::in_memory(config);
        let client = net.connect();
        net.send(
            client,
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        // Accepted, then the upgrade read and answered with the open packet.
        for _ in 0..2 {
            assert!(engine.turn(&mut Quiet).expect("turn"));
        }
        assert!(
            String::from_utf8_lossy(&net.take_output(client)).contains("\"sid\""),
            "the open packet"
        );
        let opened = engine.now;
        let first_ping = opened + interval;
        assert_eq!(engine.next_timer(), Some(first_ping));

        net.advance(interval);
        assert!(engine.turn(&mut Quiet).expect("turn"));
        assert!(
            net.take_output(client).ends_with(&[0x81, 1, b'2']),
            "a ping"
        );
        assert_eq!(
            engine.next_timer(),
            Some(first_ping + timeout),
            "the pong deadline"
        );

        // The pong (a masked text frame "3", mask 0): the next wake-up is the next ping, not
        // the pong deadline still in the heap.
        net.send(client, &[0x81, 0x81, 0, 0, 0, 0, b'3']);
        assert!(engine.turn(&mut Quiet).expect("turn"));
        assert_eq!(engine.next_timer(), Some(first_ping + interval));
    }
}
