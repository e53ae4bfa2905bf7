//! The engine's timers: one heap of deadlines for sessions (heartbeats, upgrade and linger
//! ends) and connections (request heads, idle keep-alive, lingering closes), with lazy
//! deletion: a popped entry that is no longer due does nothing.

use super::Engine;
use super::conn::ConnState;
use super::handler::SessionId;
use crate::engineio::session::CloseReason;
use crate::http::Response;
use mio::Token;
use std::cmp::Reverse;

#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub(super) enum TimerKey {
    Session(usize, u32),
    Conn(usize, u32),
}

impl Engine {
    pub(super) fn fire_timers(&mut self) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
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
            .push(Reverse((at, TimerKey::Conn(token.0, conn.generation))));
    }
}
