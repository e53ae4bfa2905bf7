//! The server-wide memory budget (`Config::max_buffered_bytes`): what every connection and
//! session holds in buffers, counted as it changes, and what the engine does when the sum
//! is over the budget.
//!
//! Counted: a connection's input buffer (its capacity: that is what the allocator gave),
//! the message a WebSocket reader is receiving (from its frames, as they arrive), the connection's
//! unwritten output, a session's queued packets, and what the handler holds for a session
//! (binary attachments waiting for their packet, reported through `Engine::hold`).
//! Broadcast frames shared between connections are counted for each recipient that has
//! not taken them yet, which overstates; the budget errs on the safe side.
//!
//! Near and over the budget:
//! 1. *Slow consumers first*: past three quarters of the budget ("squeezed"), connections
//!    with the most unsent output (at least [`SLOW_CONSUMER_FLOOR`]) are closed with `slow
//!    consumer`, largest first, until the sum is back under three quarters. Their clients
//!    stopped reading; the rest should not pay.
//! 2. *Then input*: while still squeezed, a connection is read
//!    only while it holds less than its *share* of unfinished input, and then only a share
//!    at a time. The share is the last quarter of the budget split over the open
//!    connections (between 1 and 16 KiB), so even if every connection takes its share the
//!    sum stays within the budget. A connection over its share is paused (a large message
//!    in progress, fragments, attachments): its bytes wait in the kernel and TCP slows its
//!    sender, until the sum falls back under three quarters. A well-behaved client's small
//!    messages fit in its share, so it keeps working. A paused client whose peer has gone
//!    (FIN or RST) is closed without reading what it left. A paused client that never
//!    finishes is ended by its own deadlines (its pongs wait unread, so the heartbeat
//!    closes it; attachments have a timeout of their own).

use super::Engine;
use super::conn::ConnState;
use crate::protocol::engineio::session::CloseReason;
use mio::Token;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Connections with at least this much unsent output are closed over the budget.
pub(super) const SLOW_CONSUMER_FLOOR: usize = 64 * 1024;
/// The bounds of a connection's share of unfinished input while the budget is squeezed.
const MIN_SHARE: usize = 1024;
const MAX_SHARE: usize = 16 * 1024;

/// When the buffered sum has fallen this far below its peak, the allocator is asked to give
/// free memory back to the OS (at most once per [`TRIM_INTERVAL`]).
const TRIM_AFTER_RELEASE: usize = 16 * 1024 * 1024;
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// The sum of what is buffered, the budget, and the connections paused for it.
#[derive(Debug)]
pub(super) struct Budget {
    limit: usize,
    total: usize,
    /// The highest sum since memory was last given back.
    peak: usize,
    /// What handlers hold per session (`Engine::hold`), by session slot, for the few
    /// sessions that hold anything: kept here rather than in every session's slot.
    pub(super) held_by_handler: HashMap<usize, usize>,
    last_trim: Option<Instant>,
    /// Paused connections, with when each was paused.
    paused: Vec<(Token, Instant)>,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            total: 0,
            peak: 0,
            held_by_handler: HashMap::new(),
            last_trim: None,
            paused: Vec::new(),
        }
    }

    /// Bytes buffered now, over every connection and session.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Whether paused connections wait for nothing any more (the loop must not sleep).
    pub(super) fn can_resume(&self) -> bool {
        !self.paused.is_empty() && !self.squeezed()
    }

    /// Connections paused now.
    pub(super) fn paused_count(&self) -> usize {
        self.paused.len()
    }

    /// Past three quarters of the budget: connections are read only within their share.
    fn squeezed(&self) -> bool {
        self.total > self.limit - self.limit / 4
    }

    /// A connection's share of unfinished input while squeezed: the last quarter of the
    /// budget over the open connections.
    pub(super) fn share(&self, connections: usize) -> usize {
        (self.limit / 4 / connections.max(1)).clamp(MIN_SHARE, MAX_SHARE)
    }

    /// Replaces what one holder was counted for (`was`) by what it holds now.
    fn recount(&mut self, was: usize, now: usize) {
        self.total = self.total.saturating_sub(was) + now;
        self.peak = self.peak.max(self.total);
    }

    /// Whether enough was released since the peak, long enough after the last time, that
    /// the allocator should give free memory back now. Resets the peak if so.
    fn should_trim(&mut self, now: Instant) -> bool {
        let released = self.peak.saturating_sub(self.total) >= TRIM_AFTER_RELEASE;
        let due = self
            .last_trim
            .is_none_or(|at| now.saturating_duration_since(at) >= TRIM_INTERVAL);
        if released && due {
            self.peak = self.total;
            self.last_trim = Some(now);
            return true;
        }
        false
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
        if self.budget.squeezed() {
            // A message being received grows its buffer by doubling; near the budget the
            // room it has not filled yet is given back, so what is counted is what is held.
            conn.shrink_input();
        }
        let held = u32::try_from(conn.input_held() + conn.out.len()).unwrap_or(u32::MAX);
        self.budget.recount(conn.accounted as usize, held as usize);
        conn.accounted = held;
    }

    /// What the handler holds for the session in this slot.
    pub(super) fn held_by_handler(&self, index: usize) -> usize {
        if self.budget.held_by_handler.is_empty() {
            return 0;
        }
        self.budget
            .held_by_handler
            .get(&index)
            .copied()
            .unwrap_or(0)
    }

    /// Counts what a session holds now: its queued packets, and what its handler holds.
    pub(super) fn account_session(&mut self, index: usize) {
        let by_handler = self.held_by_handler(index);
        let Some(slot) = self.sessions.get_mut(index) else {
            return;
        };
        let held = slot.session.queued_bytes() + by_handler;
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        self.budget.recount(slot.accounted as usize, held as usize);
        slot.accounted = held;
    }

    /// How much a connection may read now: `None` if it waits for memory to free up
    /// (paused), else how many bytes. Unlimited while the budget has room; while it is
    /// squeezed, what is left of the connection's share of unfinished input (its own, or
    /// attachments its handler holds for its session). A connection holding its share or
    /// more is paused, counted once per pause. One whose peer has gone is closed instead:
    /// reading what it left would only spend memory on a message nobody will finish.
    pub(super) fn read_allowance(&mut self, token: Token) -> Option<usize> {
        if !self.budget.squeezed() {
            return Some(usize::MAX);
        }
        let share = self.budget.share(self.conns.len());
        let conn = self.conns.get(token.0)?;
        let mut held = conn.input_held();
        if let ConnState::WebSocket { session, .. } = &conn.state
            && self.slot((*session).into()).is_some()
        {
            held += self.held_by_handler(session.index);
        }
        if held < share {
            return Some(share - held);
        }
        if conn.read_to_end {
            self.close_conn(token, CloseReason::TransportClose);
            return None;
        }
        let conn = &mut self.conns[token.0];
        if !conn.paused {
            conn.paused = true;
            self.budget.paused.push((token, self.now));
            self.stats.reads_paused_by_budget += 1;
        }
        None
    }

    /// Once the budget has room again, paused connections are read again. Returns whether
    /// any was.
    pub(super) fn resume_paused(&mut self) -> bool {
        if !self.budget.can_resume() {
            return false;
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
        true
    }

    /// After a burst of buffered memory was released (clients holding large messages left),
    /// asks the allocator to give its free pages back to the OS. glibc keeps freed memory
    /// for reuse: buffers of a few hundred KB come from its heap once its mmap threshold has
    /// risen, and a heap with live blocks scattered in it is never trimmed from the top, so
    /// without this a server that once held 400 MB of half-finished attachments stays at
    /// ~370 MB after the clients leave (`tests/backpressure.rs`). `malloc_trim` returns the
    /// free pages inside the heap too.
    pub(super) fn give_memory_back(&mut self) {
        if self.budget.should_trim(self.now) {
            trim_allocator();
        }
    }

    /// Near the budget, closes the slowest consumers (most unsent output first) until the
    /// sum is back under three quarters of it, or no connection holds enough output to be
    /// one: before anyone's input is paused for memory they hold.
    pub(super) fn enforce_budget(&mut self) {
        if !self.budget.squeezed() {
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
            if !self.budget.squeezed() {
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

/// Returns the allocator's free pages to the OS (glibc's `malloc_trim`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_allocator() {
    // SAFETY: `malloc_trim` takes no pointers and only releases memory the allocator holds
    // free; glibc makes it safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere the allocator keeps what it keeps.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}
