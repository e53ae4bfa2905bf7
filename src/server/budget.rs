//! The server-wide memory budget (`Config::max_buffered_bytes`): what every connection and
//! session holds in buffers, counted as it changes, and what the engine does when the sum
//! is over the budget.
//!
//! Counted: a connection's input buffer (its capacity: that is what the allocator gave),
//! the message a WebSocket reader is reassembling from fragments, the connection's
//! unwritten output, a session's queued packets, and what the handler holds for a session
//! (binary attachments waiting for their packet, reported through `Engine::hold`).
//! Broadcast frames shared between connections are counted for each recipient that has
//! not taken them yet, which overstates; the budget errs on the safe side.
//!
//! Over the budget:
//! 1. *Slow consumers first*: connections with the most unsent output (at least
//!    [`SLOW_CONSUMER_FLOOR`]) are closed with `slow consumer`, largest first, until the sum
//!    is back under the budget. Their clients stopped reading; the rest should not pay.
//! 2. *Then input*: a connection holding at least [`INPUT_FLOOR`] of unfinished input (a
//!    large message in progress, fragments, attachments) is not read until the sum is
//!    back under the budget (or its peer closes); its bytes wait in the kernel and TCP
//!    slows its sender. Other
//!    connections are still read, [`SQUEEZED_READ`] bytes at a time, so well-behaved
//!    clients keep working. A paused client that never finishes is ended by its own
//!    deadlines (its pongs wait unread, so the heartbeat closes it; attachments have a
//!    timeout of their own).

use super::Engine;
use super::conn::ConnState;
use crate::engineio::session::CloseReason;
use mio::Token;
use std::time::Instant;

/// A connection holding at least this much unfinished input is paused over the budget.
pub(super) const INPUT_FLOOR: usize = 16 * 1024;
/// Connections with at least this much unsent output are closed over the budget.
pub(super) const SLOW_CONSUMER_FLOOR: usize = 64 * 1024;
/// How much a connection is read at a time while the budget is spent.
pub(super) const SQUEEZED_READ: usize = 4 * 1024;

/// The sum of what is buffered, the budget, and the connections paused for it.
#[derive(Debug)]
pub(super) struct Budget {
    limit: usize,
    total: usize,
    /// Paused connections, with when each was paused.
    paused: Vec<(Token, Instant)>,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            total: 0,
            paused: Vec::new(),
        }
    }

    /// Bytes buffered now, over every connection and session.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Connections paused now.
    pub(super) fn paused_count(&self) -> usize {
        self.paused.len()
    }

    pub(super) fn over(&self) -> bool {
        self.total > self.limit
    }

    /// Replaces what one holder was counted for (`was`) by what it holds now.
    pub(super) fn recount(&mut self, was: usize, now: usize) {
        self.total = self.total.saturating_sub(was) + now;
    }

    pub(super) fn release(&mut self, was: usize) {
        self.total = self.total.saturating_sub(was);
    }
}

impl Engine {
    /// Counts what a connection holds now.
    pub(super) fn account_conn(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let held = u32::try_from(conn.input_held() + conn.out.len()).unwrap_or(u32::MAX);
        self.budget.recount(conn.accounted as usize, held as usize);
        conn.accounted = held;
    }

    /// Counts what a session holds now: its queued packets, and what its handler holds.
    pub(super) fn account_session(&mut self, index: usize) {
        let Some(slot) = self.sessions.get_mut(index) else {
            return;
        };
        let held = slot.session.queued_bytes() + slot.held_by_handler;
        self.budget.recount(slot.accounted, held);
        slot.accounted = held;
    }

    /// Whether reading this connection waits for memory to free up: the budget is spent
    /// and the connection holds a large share of unfinished input (its own, or attachments
    /// its handler holds for its session). A paused connection is counted once per pause.
    pub(super) fn paused_by_budget(&mut self, token: Token) -> bool {
        if !self.budget.over() {
            return false;
        }
        let Some(conn) = self.conns.get(token.0) else {
            return false;
        };
        if conn.read_to_end {
            // Its peer has closed or failed: what is left is final and bounded by the
            // limits, and reading it to the end is what frees the connection.
            return false;
        }
        let mut held = conn.input_held();
        if let ConnState::WebSocket { session, .. } = &conn.state
            && let Some(slot) = self.slot((*session).into())
        {
            held += slot.held_by_handler;
        }
        if held < INPUT_FLOOR {
            return false;
        }
        let conn = &mut self.conns[token.0];
        if !conn.paused {
            conn.paused = true;
            self.budget.paused.push((token, self.now));
            self.stats.reads_paused_by_budget += 1;
        }
        true
    }

    /// Once the budget has room again, paused connections are read again.
    pub(super) fn resume_paused(&mut self) {
        if self.budget.over() || self.budget.paused.is_empty() {
            return;
        }
        for (token, since) in std::mem::take(&mut self.budget.paused) {
            if let Some(conn) = self.conns.get_mut(token.0)
                && conn.paused
            {
                conn.paused = false;
                let paused_for = self.now.saturating_duration_since(since);
                self.stats.paused_by_budget_micros += paused_for.as_micros() as u64;
                self.service_input(token, false);
            }
        }
    }

    /// Over the budget, closes the slowest consumers (most unsent output first) until the
    /// sum is back under it, or no connection holds enough output to be one.
    pub(super) fn enforce_budget(&mut self) {
        if !self.budget.over() {
            return;
        }
        let mut slow: Vec<(usize, Token)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.backlogged && c.out.len() >= SLOW_CONSUMER_FLOOR)
            .map(|(i, c)| (c.out.len(), Token(i)))
            .collect();
        slow.sort_unstable_by(|a, b| b.cmp(a));
        for (_, token) in slow {
            if !self.budget.over() {
                break;
            }
            if let Some(conn) = self.conns.get_mut(token.0) {
                // What it did not read is dropped with it.
                conn.out = Default::default();
            }
            self.stats.closed_by_budget += 1;
            self.close_conn(token, CloseReason::SlowConsumer);
        }
    }
}
