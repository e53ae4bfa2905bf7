//! The loop itself: one turn (wait, accept, read, timers, settle, flush), `run` around it,
//! the graceful shutdown, and giving memory back after a burst.

use super::conn::ConnState;
use super::handler::{Dispatch, SessionId};
use super::transport::Ready;
use super::{Engine, EngineHandler};
use crate::protocol::engineio::session::CloseReason;
use mio::Token;
use slab::Slab;
use std::io;
use std::time::Duration;

/// How long `run` keeps flushing after a shutdown before it returns regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often the loop turns while a shutdown drains.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Runs the loop until a shutdown (Ctrl-C, SIGTERM or a [`ShutdownHandle`]), then
    /// closes every session with `server shutting down`, flushes, and returns.
    ///
    /// SIGINT and SIGTERM are caught only while `run` runs, and only with
    /// [`Config::shutdown_on_signals`] on (the default); when it returns they do again
    /// what they did before.
    ///
    /// [`ShutdownHandle`]: super::ShutdownHandle
    /// [`Config::shutdown_on_signals`]: super::Config::shutdown_on_signals
    pub fn run<H: EngineHandler>(&mut self, handler: &mut H) -> io::Result<()> {
        if self.config.shutdown_on_signals {
            self.transport.catch_interrupts(&self.stopper);
        }
        let result = loop {
            match self.turn(handler) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.transport.release_interrupts();
        result
    }

    /// One turn of the loop: waits until something is ready or the nearest timer is due
    /// (an in-memory engine never waits), accepts, gives every ready connection its share
    /// of reading, fires due timers, runs the handler and flushes. Returns false once a
    /// shutdown has finished: the loop is over.
    pub fn turn<H: EngineHandler>(&mut self, handler: &mut H) -> io::Result<bool> {
        let timeout = self.wait_timeout(handler);
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        let waited = self.transport.wait(&mut ready, timeout);
        self.now = self.transport.now();
        self.tick += 1;
        waited?;
        // Connections that used their share last turn go first: they have waited longest.
        let deferred = std::mem::take(&mut self.deferred);
        for &token in &deferred {
            if let Some(conn) = self.conns.get_mut(token.0) {
                conn.deferred = false;
            }
            self.service_input(token, false);
        }
        self.reuse_deferred_list(deferred);
        for &event in &ready {
            match event {
                Ready::Accept => self.accept(),
                // On the loop thread: no need to wake it, the check below sees the request.
                Ready::Interrupt => self.stopper.note_shutdown(),
                Ready::Conn {
                    conn,
                    readable,
                    to_the_end,
                    writable,
                } => {
                    if readable {
                        self.service_input(Token(conn), to_the_end);
                    }
                    if writable {
                        self.queue_flush(Token(conn));
                    }
                }
            }
        }
        self.ready = ready;
        if std::mem::take(&mut self.accept_retry) && !self.shutting_down {
            self.accept();
        }
        let woken = self.stopper.take_woken();
        self.fire_timers();
        self.settle(handler);
        self.enforce_budget();
        // After the handlers and the budget's own measures, memory may have room again;
        // what the resumed connections bring is handled in this turn.
        if self.resume_paused() {
            self.settle(handler);
        }
        self.compact();
        self.give_memory_back();
        if woken {
            handler.on_wake(self);
            self.settle(handler);
        }
        if handler.poll_timeout().is_some_and(|at| at <= self.now) {
            handler.on_timeout(self);
            self.settle(handler);
        }
        if self.shutdown_deadline.is_none() && self.stopper.shutdown_requested() {
            self.shutdown_deadline = Some(self.now + SHUTDOWN_GRACE);
            self.begin_shutdown(handler);
        }
        if let Some(deadline) = self.shutdown_deadline
            && (self.conns.is_empty() || self.now >= deadline)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// How long the next wait may sleep: until the nearest timer, the engine's or the
    /// handler's; not at all when connections have input left from their last share, or
    /// were paused for memory that has freed up since.
    fn wait_timeout<H: EngineHandler>(&mut self, handler: &mut H) -> Option<Duration> {
        if !self.deferred.is_empty() || self.budget.can_resume() {
            return Some(Duration::ZERO);
        }
        let engine_next = self.next_timer();
        let next = match (engine_next, handler.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = self.transport.now();
        let timeout = next.map(|at| at.saturating_duration_since(now) + Duration::from_micros(100));
        match self.shutdown_deadline {
            // Keep turning while the last output drains.
            Some(_) => Some(timeout.map_or(SHUTDOWN_POLL, |t| t.min(SHUTDOWN_POLL))),
            None => timeout,
        }
    }

    /// Gives the emptied deferred list back (its capacity is reused next turn), keeping
    /// what was deferred again meanwhile.
    fn reuse_deferred_list(&mut self, mut list: Vec<Token>) {
        list.clear();
        if self.deferred.is_empty() {
            self.deferred = list;
        }
    }

    fn begin_shutdown<H: EngineHandler>(&mut self, handler: &mut H) {
        self.shutting_down = true;
        self.transport.stop_accepting();
        let ids: Vec<SessionId> = self
            .sessions
            .iter()
            .map(|(index, s)| SessionId {
                index,
                generation: s.generation,
            })
            .collect();
        for id in ids {
            self.close_session(id, CloseReason::ServerShuttingDown);
        }
        self.settle(handler);
        // Polling clients have no GET to receive the close packet on; do not wait for them.
        let idle: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, ConnState::Http) && c.out.is_empty())
            .map(|(i, _)| Token(i))
            .collect();
        for token in idle {
            self.close_conn(token, CloseReason::ServerShuttingDown);
        }
        let all: Vec<usize> = self.sessions.iter().map(|(i, _)| i).collect();
        for index in all {
            // Do not linger for polling clients: the server is going away.
            if let Some(slot) = self.sessions.get_mut(index)
                && slot.held_get.is_none()
            {
                self.remove_session(index);
            }
        }
        self.settle(handler);
    }

    /// Pumps sessions, dispatches events and flushes until nothing changes.
    pub(super) fn settle<H: EngineHandler>(&mut self, handler: &mut H) {
        loop {
            self.handle_pending_http(handler);
            while let Some(token) = self.reparse.pop() {
                self.process_input(token);
            }
            let mut dirty = std::mem::take(&mut self.pumping);
            std::mem::swap(&mut dirty, &mut self.dirty_sessions);
            for &index in &dirty {
                self.pump_session(index);
            }
            dirty.clear();
            self.pumping = dirty;
            if let Some(event) = self.dispatch.pop_front() {
                match event {
                    Dispatch::Open(id) => handler.on_open(self, id),
                    Dispatch::Message(id, m) => handler.on_message(self, id, m),
                    Dispatch::Close(id, reason) => handler.on_close(self, id, reason),
                }
                continue;
            }
            // Flushing can fail a connection, which touches its session again.
            self.flush_all();
            if self.dirty_sessions.is_empty()
                && self.reparse.is_empty()
                && self.pending_http.is_empty()
                && self.dispatch.is_empty()
            {
                break;
            }
        }
    }

    /// Gives back memory that a burst left behind: tables grow to their peak and keep that
    /// capacity, so after a storm an idle server would hold its peak. Cheap to call often;
    /// it shrinks only when a table is mostly empty.
    pub(super) fn compact(&mut self) {
        fn mostly_empty(len: usize, capacity: usize) -> bool {
            capacity > 256 && len * 4 < capacity
        }
        if mostly_empty(self.timers.len(), self.timers.capacity()) {
            self.timers.shrink_to(self.timers.len() * 2);
        }
        // A slab cannot move live entries (mio holds their tokens), so only an empty one is
        // replaced; one with a few stragglers keeps its size until they go.
        if mostly_empty(self.conns.len(), self.conns.capacity()) {
            if self.conns.is_empty() {
                self.conns = Slab::new();
            } else {
                // Trailing vacant entries go; the rest waits for the stragglers.
                self.conns.shrink_to_fit();
            }
        }
        if mostly_empty(self.sessions.len(), self.sessions.capacity()) {
            if self.sessions.is_empty() {
                self.sessions = Slab::new();
            } else {
                self.sessions.shrink_to_fit();
            }
        }
        if mostly_empty(self.sids.len(), self.sids.capacity()) {
            self.sids.shrink_to(self.sids.len() * 2);
        }
        if mostly_empty(self.per_ip.len(), self.per_ip.capacity()) {
            self.per_ip.shrink_to(self.per_ip.len() * 2);
        }
        let held = &mut self.budget.held_by_handler;
        if mostly_empty(held.len(), held.capacity()) {
            held.shrink_to(held.len() * 2);
        }
        // The per-turn work lists are empty between turns.
        if self.dirty_sessions.capacity() > 1024 {
            self.dirty_sessions = Vec::new();
        }
        if self.pumping.capacity() > 1024 {
            self.pumping = Vec::new();
        }
        // Spare buffers nobody asked for in a while go back to the allocator.
        self.pool.release_if_unused();
        for list in [&mut self.to_flush, &mut self.deferred, &mut self.reparse] {
            if list.is_empty() && list.capacity() > 1024 {
                *list = Vec::new();
            }
        }
        if self.ready.capacity() > 1024 {
            self.ready = Vec::new();
        }
    }
}
