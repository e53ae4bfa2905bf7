//! Connections and their bytes: accepting, reading (a bounded share per turn), flushing
//! write queues, and the one place a connection is removed.
//!
//! Fair reads. Readiness is edge-triggered, so a connection that is not read until
//! `WouldBlock` is not reported again; yet reading a fast client until it is drained lets
//! it starve everyone else, and decoded messages pile up faster than handlers run. So each
//! turn a connection gets a share: at most [`MESSAGES_PER_TURN`] messages decoded and
//! [`BYTES_PER_TURN`] bytes read. A connection that used its share with input left is
//! *deferred*: it goes on the engine's own list, is served first next turn, and the loop
//! does not sleep meanwhile. Its unread bytes stay in the kernel, whose receive window
//! then slows the sender: TCP pays for a fast client, not the server's memory.

use super::conn::{Conn, ConnState};
use super::timers::TimerKey;
use super::{Engine, READ_CHUNK, file_limit};
use crate::protocol::engineio::session::CloseReason;
use crate::protocol::http::Response;
use mio::Token;
use std::io;
use std::time::Duration;

/// Messages (WebSocket messages and control frames, HTTP requests) one connection may have
/// decoded per turn before the handlers run. Small enough that a flooding client delays a
/// turn by well under a millisecond, large enough that a busy client pays one syscall per
/// many messages.
pub(super) const MESSAGES_PER_TURN: u8 = 64;
/// Bytes read from one connection per turn (a large upload takes several turns). One read
/// chunk: copying and unmasking 64 KiB takes tens of microseconds, so a client sending
/// megabyte messages flat out delays everyone else by that much a turn (with 256 KiB it
/// was several hundred: a canary's echo p99 went from 0.2 to 2 ms). A lone uploader still
/// goes at full speed: the loop does not sleep while a connection is deferred.
const BYTES_PER_TURN: usize = READ_CHUNK;
/// How long a closing connection waits for the peer's EOF before it is dropped anyway.
const LINGER: Duration = Duration::from_secs(2);
/// Connections refused at accept that may be sending their `503` at once; past it a
/// refused connection is closed without an answer, so a flood of refused connections
/// cannot hold memory either.
const MAX_REFUSING: usize = 256;

impl Engine {
    pub(super) fn accept(&mut self) {
        loop {
            let key = self.conns.vacant_key();
            let peer = match self.transport.accept(key) {
                Ok(peer) => peer,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_blocked = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of file descriptors: the pending connection stays in the backlog, and
                // is accepted when a connection closes (see `file_limit`).
                Err(e) if file_limit::is_out_of_descriptors(&e) => {
                    self.accept_blocked = true;
                    self.stats.accepts_out_of_descriptors += 1;
                    if file_limit::may_warn(self.out_of_descriptors_warned, self.now) {
                        self.out_of_descriptors_warned = Some(self.now);
                        log::warn!(
                            "sioloop: accept: {e}: new clients wait until a connection closes; \
                             raise the process's file limit (RLIMIT_NOFILE)"
                        );
                    }
                    return;
                }
                // Anything else: try again on the next readiness.
                Err(e) => {
                    log::warn!("sioloop: accept: {e}");
                    return;
                }
            };
            let token = Token(key);
            let generation = self.generation();
            let from_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            let open = self.conns.len() - self.refusing;
            if open >= self.config.max_connections || from_ip >= self.config.max_connections_per_ip
            {
                self.stats.connections_refused += 1;
                if self.may_log_peer(peer.ip()) {
                    log::debug!("sioloop: refused a connection from {peer}: connection limit");
                }
                if self.refusing >= MAX_REFUSING {
                    self.transport.close(key);
                    continue;
                }
                // Answered and closed like any other response: flushed, then our FIN, then
                // the peer's bytes read until its EOF, so no RST destroys the answer.
                let mut conn = Conn::new(peer, generation);
                conn.refused = true;
                self.conns.insert(conn);
                self.refusing += 1;
                self.stats.refusals_answered += 1;
                let response = Response::new(503, "text/plain", "too many connections");
                self.respond(token, &response, None, false);
                continue;
            }
            let mut conn = Conn::new(peer, generation);
            // The first request head must come within head_timeout (slowloris).
            let at = self.now + self.config.head_timeout;
            conn.deadline = Some(at);
            self.conns.insert(conn);
            self.timers.push(at, TimerKey::Conn(key, generation));
            *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
            self.stats.connections_accepted += 1;
        }
    }

    /// Gives a connection its share of this turn: first the input it had left from its
    /// last share, then reading. `to_the_end`: the peer's FIN or an error came with this
    /// edge, so reading goes on (over later turns) until the end is seen.
    pub(super) fn service_input(&mut self, token: Token, to_the_end: bool) {
        // The low bits suffice to tell this turn from the last one.
        let tick = self.tick as u32;
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        conn.read_to_end |= to_the_end;
        if conn.served_tick == tick {
            // Already had its share this turn (it was deferred, and is ready again).
            self.defer(token);
            return;
        }
        conn.served_tick = tick;
        conn.share = MESSAGES_PER_TURN;
        if conn.input_waiting {
            conn.input_waiting = false;
            self.process_input(token);
            if self.conns.get(token.0).is_some_and(|c| c.share == 0) {
                self.defer(token);
                self.account_conn(token);
                return;
            }
        }
        self.read_conn(token);
        self.account_conn(token);
    }

    /// Puts a connection on the list served first next turn.
    pub(super) fn defer(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.0)
            && !conn.deferred
        {
            conn.deferred = true;
            self.deferred.push(token);
            self.stats.reads_deferred += 1;
        }
    }

    /// Reads until the socket is drained or the connection's share is used, parsing after
    /// each chunk so a connection's buffer only ever holds an incomplete remainder.
    fn read_conn(&mut self, token: Token) {
        // A read that returns less than asked for drained the socket's receive queue, and
        // any segment, FIN or RST arriving after the edge we are handling raises a new edge,
        // so a short read ends the loop without the extra read that would only say
        // WouldBlock (one syscall less per message). A FIN that arrived before the edge was
        // reported comes with it (`read_to_end`): then reading goes on until the end.
        let mut left = BYTES_PER_TURN;
        loop {
            // Near the memory budget, connections that hold little are still read, a
            // little at a time, so well-behaved clients keep working.
            let Some(allowed) = self.read_allowance(token) else {
                return;
            };
            let want = allowed.min(self.read_buf.len()).min(left);
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            match self.transport.recv(token.0, &mut self.read_buf[..want]) {
                Ok(0) => {
                    self.close_conn(token, CloseReason::TransportClose);
                    return;
                }
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    left -= n;
                    let drained = !conn.read_to_end && n < want;
                    if !matches!(conn.state, ConnState::Lingering) {
                        if conn.inbuf.capacity() == 0 {
                            conn.inbuf = self.pool.take_bytes();
                        }
                        conn.inbuf.extend_from_slice(&self.read_buf[..n]);
                        self.process_input(token);
                        let Some(conn) = self.conns.get(token.0) else {
                            return;
                        };
                        if conn.share == 0 {
                            self.defer(token);
                            return;
                        }
                        // What is left is one incomplete message (a request head and
                        // body, or a frame), which the parsers bound by the limits.
                        let cap =
                            self.config.max_payload + self.config.head_limits.max_head_bytes + 64;
                        if conn.inbuf.len() > cap {
                            // Only a client that ignores the protocol gets here (pipelining
                            // into a held GET).
                            self.close_conn(token, CloseReason::TransportError);
                            return;
                        }
                    }
                    if drained {
                        return;
                    }
                    if left == 0 {
                        self.defer(token);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close_conn(token, CloseReason::TransportError);
                    return;
                }
            }
        }
    }

    /// After packets were queued on a WebSocket: flush them this turn, or, past
    /// `max_queued_bytes` (the client stopped reading), drop what it did not take, and it.
    pub(super) fn ws_output_queued(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if conn.out.len() > self.config.max_queued_bytes {
            conn.out = Default::default();
            self.close_conn(token, CloseReason::SlowConsumer);
        } else {
            self.queue_flush(token);
        }
    }

    pub(super) fn queue_flush(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.0)
            && !conn.flush_queued
        {
            conn.flush_queued = true;
            self.to_flush.push(token);
        }
    }

    pub(super) fn flush_all(&mut self) {
        while let Some(token) = self.to_flush.pop() {
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            conn.flush_queued = false;
            let transport = &mut self.transport;
            let result = conn.out.flush(
                |slices| transport.send(token.0, slices),
                &mut self.stats.bytes_out,
                &mut self.pool,
            );
            conn.backlogged = !conn.out.is_empty();
            match result {
                Ok(()) => {
                    if conn.close_after_flush && !matches!(conn.state, ConnState::Lingering) {
                        // Shut the write side and read until EOF: closing with unread input
                        // makes the kernel send RST, which can destroy our last response
                        // before the client reads it.
                        self.transport.shutdown_write(token.0);
                        conn.state = ConnState::Lingering;
                        self.pool.give_bytes(std::mem::take(&mut conn.inbuf));
                        conn.input_waiting = false;
                        let at = self.now + LINGER;
                        conn.deadline = Some(at);
                        let key = TimerKey::Conn(token.0, conn.generation);
                        self.timers.push(at, key);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.close_conn(token, CloseReason::TransportError);
                    continue;
                }
            }
            self.account_conn(token);
        }
    }

    /// The one place a connection is removed. Its session learns why.
    pub(super) fn close_conn(&mut self, token: Token, reason: CloseReason) {
        if !self.conns.contains(token.0) {
            return;
        }
        let conn = self.conns.remove(token.0);
        self.held_get_headers.remove(&token.0);
        self.transport.close(token.0);
        // A descriptor is free again for a client waiting in the backlog.
        self.accept_retry |= self.accept_blocked;
        self.budget.release(conn.accounted as usize);
        if conn.refused {
            self.refusing -= 1;
        } else if let Some(n) = self.per_ip.get_mut(&conn.peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.peer.ip());
            }
        }
        let now = self.now;
        match conn.state {
            ConnState::HeldGet { session, .. } => {
                if let Some(slot) = self.slot_mut(session.into()) {
                    slot.held_get = None;
                    // reference: "poll connection closed prematurely" is a transport error.
                    slot.session.handle_poll_aborted(now);
                    self.dirty_sessions.push(session.index);
                }
            }
            ConnState::WebSocket { session, role, .. } => self.detach_ws(session, role, reason),
            ConnState::Http | ConnState::Lingering => {}
        }
    }
}
