//! One TCP connection: its input buffer, its write queue, and what it is carrying now.

use crate::protocol::ws::FrameReader;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// A session slot and the generation it had when a connection attached to it. A session
/// slot can be reused by a later session, so a connection keeps both.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub(crate) struct SessionKey {
    pub(crate) index: usize,
    pub(crate) generation: u32,
}

/// The role of a WebSocket connection towards its session.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum WsRole {
    /// The session's transport.
    Active,
    /// Probing an upgrade of a polling session.
    Probe,
    /// Accepted only to be closed (a second WebSocket on an upgraded session).
    Doomed,
}

/// What a connection carries now.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Reading HTTP requests, one at a time (keep-alive).
    Http,
    /// A polling GET held until its session has something to send.
    HeldGet {
        session: SessionKey,
        origin: Option<String>,
        keep_alive: bool,
    },
    /// A WebSocket attached to a session.
    WebSocket {
        session: SessionKey,
        role: WsRole,
        reader: FrameReader,
    },
    /// Output is flushed, the write side is shut; reading until EOF or the deadline so the
    /// kernel does not reset the connection under unread input.
    Lingering,
}

/// A chunk of output: owned, or shared with other connections (a broadcast frame).
#[derive(Debug)]
pub(crate) enum Chunk {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(s) => s,
        }
    }
}

/// Bytes waiting to be written, flushed with vectored writes.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Chunk>,
    /// How much of the front chunk is already written.
    offset: usize,
    /// Unwritten bytes in all chunks.
    len: usize,
}

/// The most slices handed to one `writev`: Linux's IOV_MAX. A client in a busy room can
/// have a hundred shared broadcast frames queued in one tick, and each `writev` costs far
/// more than the slices it carries.
const MAX_IOV: usize = 1024;
/// Up to this many slices are gathered on the stack.
const SMALL_IOV: usize = 16;

/// Empty buffers that connections handed back, for the next connection that needs one.
/// Input buffers, output chunks and chunk lists are taken and given back once per message
/// (an idle connection holds none), so without the pool an echo server would allocate and
/// free each of them for every message. Bounded in count and in the size of what it keeps;
/// `Engine::compact` frees it when a while passes without use.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    bytes: Vec<Vec<u8>>,
    lists: Vec<VecDeque<Chunk>>,
    /// Something was taken since the last `release_if_unused`.
    used: bool,
    /// Consecutive `release_if_unused` calls (one per loop iteration) with nothing taken.
    idle_ticks: u64,
}

/// The most byte buffers the pool keeps, and the largest (a buffer that grew for a big
/// message goes back to the allocator).
const MAX_POOLED_BYTES: usize = 64;
const MAX_POOLED_BYTES_CAPACITY: usize = 4096;
/// The most chunk lists the pool keeps, and the largest it keeps (in chunks of 24 bytes).
/// A broadcast to a thousand clients takes and gives back a thousand lists in one tick.
const MAX_POOLED_LISTS: usize = 1024;
const MAX_POOLED_LIST_CHUNKS: usize = 512;
/// An input buffer above this capacity shrinks when what it holds is a quarter of it.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Loop iterations without a use after which the pool is freed.
const POOL_IDLE_TICKS: u64 = 1000;

impl Pool {
    /// An empty byte buffer (pooled, or new without capacity).
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        match self.bytes.pop() {
            Some(v) => {
                self.used = true;
                v
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn give_bytes(&mut self, mut v: Vec<u8>) {
        if v.capacity() > 0
            && v.capacity() <= MAX_POOLED_BYTES_CAPACITY
            && self.bytes.len() < MAX_POOLED_BYTES
        {
            v.clear();
            self.bytes.push(v);
        }
    }

    fn take_list(&mut self) -> VecDeque<Chunk> {
        match self.lists.pop() {
            Some(list) => {
                self.used = true;
                list
            }
            None => VecDeque::new(),
        }
    }

    fn give_list(&mut self, mut list: VecDeque<Chunk>) {
        if list.capacity() <= MAX_POOLED_LIST_CHUNKS && self.lists.len() < MAX_POOLED_LISTS {
            list.clear();
            self.lists.push(list);
        }
    }

    /// Called once per loop iteration: frees the pool once nothing was taken from it for
    /// `POOL_IDLE_TICKS` iterations.
    pub(crate) fn release_if_unused(&mut self) {
        if std::mem::take(&mut self.used) {
            self.idle_ticks = 0;
            return;
        }
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        if self.idle_ticks > POOL_IDLE_TICKS
            && (self.bytes.capacity() > 0 || self.lists.capacity() > 0)
        {
            self.bytes = Vec::new();
            self.lists = Vec::new();
        }
    }
}

impl WriteQueue {
    pub(crate) fn push(&mut self, pool: &mut Pool, chunk: Chunk) {
        let n = chunk.as_ref().len();
        if n > 0 {
            if self.chunks.capacity() == 0 {
                self.chunks = pool.take_list();
            }
            self.len += n;
            self.chunks.push_back(chunk);
        } else if let Chunk::Owned(v) = chunk {
            pool.give_bytes(v);
        }
    }

    /// Appends bytes to the last owned chunk, or starts a new one, so many small frames
    /// for one connection become one slice.
    pub(crate) fn extend_with(&mut self, pool: &mut Pool, write: impl FnOnce(&mut Vec<u8>)) {
        let start_len;
        if let Some(Chunk::Owned(last)) = self.chunks.back_mut() {
            start_len = last.len();
            write(last);
            self.len += last.len() - start_len;
            return;
        }
        let mut v = pool.take_bytes();
        write(&mut v);
        self.push(pool, Chunk::Owned(v));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unwritten bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes until the queue is empty or the socket would block. Mio is edge-triggered:
    /// stopping before `WouldBlock` with data left would never be woken again. Written
    /// buffers, and the chunk list once empty, go back to `pool`: an idle connection holds
    /// no output buffer, and the next busy one reuses them instead of allocating.
    pub(crate) fn flush(
        &mut self,
        mut send: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
        written_total: &mut u64,
        pool: &mut Pool,
    ) -> io::Result<()> {
        while self.len > 0 {
            let offset = self.offset;
            let slices = self
                .chunks
                .iter()
                .take(MAX_IOV)
                .enumerate()
                .map(|(i, chunk)| {
                    let bytes = chunk.as_ref();
                    IoSlice::new(if i == 0 { &bytes[offset..] } else { bytes })
                });
            // Most flushes carry a few chunks: those slices live on the stack; a long queue
            // (a busy room's broadcasts) gets a heap list, paid once for many chunks.
            // One chunk (an echo's reply) needs no slice array at all.
            let result = match self.chunks.len() {
                1 => send(&[IoSlice::new(&self.chunks[0].as_ref()[offset..])]),
                n if n <= SMALL_IOV => {
                    let mut small = [IoSlice::new(&[]); SMALL_IOV];
                    for (slot, slice) in small.iter_mut().zip(slices) {
                        *slot = slice;
                    }
                    send(&small[..n])
                }
                _ => send(&slices.collect::<Vec<_>>()),
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    *written_total += written as u64;
                    self.advance(written, pool)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.chunks.capacity() > 0 {
            pool.give_list(std::mem::take(&mut self.chunks));
            self.offset = 0;
        }
        Ok(())
    }

    fn advance(&mut self, mut written: usize, pool: &mut Pool) {
        self.len -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let remaining = front.as_ref().len() - self.offset;
            if written >= remaining {
                written -= remaining;
                self.offset = 0;
                if let Some(Chunk::Owned(v)) = self.chunks.pop_front() {
                    pool.give_bytes(v);
                }
            } else {
                self.offset += written;
                written = 0;
            }
        }
    }
}

/// One accepted TCP connection (its socket is the transport's, under the same index).
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    /// Distinguishes this connection from a later one in the same slab slot.
    pub(crate) generation: u32,
    /// Received bytes not yet consumed by a parser.
    pub(crate) inbuf: Vec<u8>,
    /// How much of `inbuf` the WebSocket reader has consumed in this pass: the bytes are
    /// dropped once at the end of the pass, not after every frame (a read can hold
    /// thousands of small frames, and moving the rest after each is quadratic).
    pub(crate) inbuf_consumed: usize,
    pub(crate) out: WriteQueue,
    pub(crate) state: ConnState,
    /// Close (gracefully) once the write queue is flushed.
    pub(crate) close_after_flush: bool,
    /// Queued in the loop's list of connections to flush this tick.
    pub(crate) flush_queued: bool,
    /// The last flush left bytes unwritten: the peer is not keeping up.
    pub(crate) backlogged: bool,
    /// When the connection's current wait ends: a request head (slowloris), an idle
    /// keep-alive, or a lingering close's wait for the peer's EOF.
    pub(crate) deadline: Option<Instant>,
    /// Messages it may still have decoded this turn (its share of the loop).
    pub(crate) share: u8,
    /// The turn in which it last had its share (the low bits of the turn count: equal
    /// only within one turn, or 4 billion turns apart).
    pub(crate) served_tick: u32,
    /// Its share ran out with complete input still in `inbuf`, parsed before reading more.
    pub(crate) input_waiting: bool,
    /// On the engine's list of connections served first next turn.
    pub(crate) deferred: bool,
    /// The peer's FIN or an error was reported: read until the end is seen.
    pub(crate) read_to_end: bool,
    /// Not read until the memory budget has room (see `budget.rs`).
    pub(crate) paused: bool,
    /// Refused at accept, sending its `503`: not counted against the connection limits.
    pub(crate) refused: bool,
    /// What the memory budget counts for it now (saturating: a connection holds at most
    /// a few times `max_payload`).
    pub(crate) accounted: u32,
}

impl Conn {
    /// Drops the bytes the parsers consumed in this pass, and gives the buffer back to
    /// `pool` once it is empty: an idle connection holds no input buffer. A buffer that grew
    /// for one large message shrinks again once what is left is much smaller.
    pub(crate) fn compact_inbuf(&mut self, pool: &mut Pool) {
        if self.inbuf_consumed > 0 {
            self.inbuf
                .drain(..self.inbuf_consumed.min(self.inbuf.len()));
            self.inbuf_consumed = 0;
        }
        if self.inbuf.is_empty() {
            if self.inbuf.capacity() > 0 {
                pool.give_bytes(std::mem::take(&mut self.inbuf));
            }
        } else if self.inbuf.capacity() > SHRINK_ABOVE
            && self.inbuf.len() * 4 < self.inbuf.capacity()
        {
            self.inbuf.shrink_to(self.inbuf.len() * 2);
        }
    }

    /// Gives back the room a WebSocket message being received has not filled yet.
    pub(crate) fn shrink_input(&mut self) {
        if let ConnState::WebSocket { reader, .. } = &mut self.state {
            reader.shrink_to_fit();
        }
    }

    /// Input it holds: its buffer (as allocated) and a WebSocket message being received.
    pub(crate) fn input_held(&self) -> usize {
        let fragments = match &self.state {
            ConnState::WebSocket { reader, .. } => reader.buffered(),
            _ => 0,
        };
        self.inbuf.capacity() + fragments
    }

    pub(crate) fn new(peer: SocketAddr, generation: u32) -> Conn {
        Conn {
            peer,
            generation,
            inbuf: Vec::new(),
            inbuf_consumed: 0,
            out: WriteQueue::default(),
            state: ConnState::Http,
            close_after_flush: false,
            flush_queued: false,
            backlogged: false,
            deadline: None,
            share: 0,
            served_tick: 0,
            input_waiting: false,
            deferred: false,
            read_to_end: false,
            paused: false,
            refused: false,
            accounted: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_is_small() {
        // Every idle client costs this much (plus the slab's slot and the transport's
        // 4 bytes); it is what BENCHMARKS.md's RSS per connection is made of.
        assert!(
            std::mem::size_of::<Conn>() <= 200,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }
}
