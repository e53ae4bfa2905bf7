//! An in-memory network and a fake clock for the engine: clients are byte pipes, time moves
//! only when told to. The engine on top is the real one (`Engine::in_memory`), so tests
//! and the whole-driver fuzz target exercise the code a server runs, without sockets.
//!
//! Readiness is reported the way mio reports it (edge-triggered): a connection is readable
//! once after new bytes or the client's close arrive, writable once after the client read
//! output that had filled its receive window.

use super::handles::Stopper;
use super::transport::{Ready, Transport};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One client of a [`MemoryNet`].
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct ClientId(usize);

/// The client side of an in-memory network an [`Engine`](super::Engine) runs on (see
/// [`Engine::in_memory`](super::Engine::in_memory)): connect clients, write their bytes,
/// read what the server wrote, close or reset them, and move the clock. Cheap to clone;
/// every clone drives the same network.
#[derive(Clone, Debug)]
pub struct MemoryNet {
    net: Rc<RefCell<Net>>,
}

#[derive(Debug)]
struct Net {
    now: Instant,
    /// xorshift64* state: ids are deterministic, so a fuzz run can be replayed.
    rng: u64,
    clients: Vec<Pipe>,
    /// Clients waiting to be accepted, in order.
    backlog: VecDeque<usize>,
    /// Connection index (the engine's) to client.
    by_conn: Vec<Option<usize>>,
    /// Clients with a readiness edge to report.
    edges: Vec<usize>,
    accept_edge: bool,
    interrupt: bool,
    listening: bool,
}

#[derive(Debug)]
struct Pipe {
    peer: SocketAddr,
    conn: Option<usize>,
    /// Client to server, not yet read by the server.
    inbound: VecDeque<u8>,
    /// Server to client, not yet taken by the client.
    outbound: Vec<u8>,
    /// How much `outbound` may hold before the server's writes would block.
    window: usize,
    client_closed: bool,
    client_reset: bool,
    server_shut_write: bool,
    server_closed: bool,
    /// The server closed with input it had not read: a TCP stack would send RST.
    server_reset: bool,
    readable_edge: bool,
    writable_edge: bool,
    blocked: bool,
}

/// A receive window larger than any test's output, unless a test sets one.
const DEFAULT_WINDOW: usize = 64 * 1024 * 1024;

impl MemoryNet {
    fn with<T>(&self, f: impl FnOnce(&mut Net) -> T) -> T {
        f(&mut self.net.borrow_mut())
    }

    /// A new client from `127.0.0.1`, waiting to be accepted.
    pub fn connect(&self) -> ClientId {
        let port = self.with(|n| n.clients.len() as u16);
        self.connect_from(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            40_000u16.wrapping_add(port),
        ))
    }

    /// A new client from `peer`, waiting to be accepted.
    pub fn connect_from(&self, peer: SocketAddr) -> ClientId {
        self.with(|n| {
            let id = n.clients.len();
            n.clients.push(Pipe {
                peer,
                conn: None,
                inbound: VecDeque::new(),
                outbound: Vec::new(),
                window: DEFAULT_WINDOW,
                client_closed: false,
                client_reset: false,
                server_shut_write: false,
                server_closed: false,
                server_reset: false,
                readable_edge: false,
                writable_edge: false,
                blocked: false,
            });
            if n.listening {
                n.backlog.push_back(id);
                n.accept_edge = true;
            } else {
                // Nobody listens: the connection is refused at once.
                n.clients[id].server_closed = true;
            }
            ClientId(id)
        })
    }

    /// The client writes `bytes`. Ignored once the client closed or the server closed.
    pub fn send(&self, client: ClientId, bytes: &[u8]) {
        self.with(|n| {
            let Some(pipe) = n.clients.get_mut(client.0) else {
                return;
            };
            if pipe.client_closed || pipe.client_reset || pipe.server_closed || bytes.is_empty() {
                return;
            }
            pipe.inbound.extend(bytes);
            pipe.readable_edge = true;
            n.edges.push(client.0);
        })
    }

    /// Takes what the server wrote to the client so far.
    pub fn take_output(&self, client: ClientId) -> Vec<u8> {
        self.with(|n| {
            let Some(pipe) = n.clients.get_mut(client.0) else {
                return Vec::new();
            };
            let out = std::mem::take(&mut pipe.outbound);
            if pipe.blocked && !out.is_empty() {
                pipe.blocked = false;
                pipe.writable_edge = true;
                n.edges.push(client.0);
            }
            out
        })
    }

    /// How many bytes the server may have written and the client not yet taken before the
    /// server's writes block (a client that stops reading).
    pub fn set_window(&self, client: ClientId, bytes: usize) {
        self.with(|n| {
            if let Some(pipe) = n.clients.get_mut(client.0) {
                pipe.window = bytes;
            }
        })
    }

    /// The client closes its connection (FIN): the server reads the end of the stream once
    /// it has read what came before.
    pub fn close(&self, client: ClientId) {
        self.with(|n| {
            if let Some(pipe) = n.clients.get_mut(client.0)
                && !pipe.client_closed
            {
                pipe.client_closed = true;
                pipe.readable_edge = true;
                n.edges.push(client.0);
            }
        })
    }

    /// The client resets its connection (RST): the server's next read or write fails.
    pub fn reset(&self, client: ClientId) {
        self.with(|n| {
            if let Some(pipe) = n.clients.get_mut(client.0) {
                pipe.client_reset = true;
                pipe.inbound.clear();
                pipe.readable_edge = true;
                n.edges.push(client.0);
            }
        })
    }

    /// Whether the server shut its side of the connection (sent FIN, or closed it).
    pub fn server_closed(&self, client: ClientId) -> bool {
        self.with(|n| {
            n.clients
                .get(client.0)
                .is_some_and(|p| p.server_shut_write || p.server_closed)
        })
    }

    /// Whether the server closed the connection with input it had not read (where a TCP
    /// stack would send RST, which can destroy the last response before it is read).
    pub fn server_reset(&self, client: ClientId) -> bool {
        self.with(|n| n.clients.get(client.0).is_some_and(|p| p.server_reset))
    }

    /// Whether the engine accepted the client.
    pub fn accepted(&self, client: ClientId) -> bool {
        self.with(|n| {
            n.clients
                .get(client.0)
                .is_some_and(|p| p.conn.is_some() || p.server_closed)
        })
    }

    /// Moves the fake clock forward.
    pub fn advance(&self, by: Duration) {
        self.with(|n| n.now += by)
    }

    /// The fake clock.
    pub fn now(&self) -> Instant {
        self.with(|n| n.now)
    }

    /// Presses Ctrl-C (or sends SIGTERM): the engine begins its graceful shutdown on its next turn.
    pub fn interrupt(&self) {
        self.with(|n| n.interrupt = true)
    }
}

/// The engine's side of a [`MemoryNet`].
#[derive(Debug)]
pub(crate) struct MemoryTransport {
    net: Rc<RefCell<Net>>,
}

impl MemoryTransport {
    pub(crate) fn new() -> (MemoryTransport, MemoryNet) {
        let net = Rc::new(RefCell::new(Net {
            now: Instant::now(),
            rng: 0x9E37_79B9_7F4A_7C15,
            clients: Vec::new(),
            backlog: VecDeque::new(),
            by_conn: Vec::new(),
            edges: Vec::new(),
            accept_edge: false,
            interrupt: false,
            listening: true,
        }));
        (MemoryTransport { net: net.clone() }, MemoryNet { net })
    }
}

impl Net {
    fn pipe(&mut self, conn: usize) -> io::Result<&mut Pipe> {
        let client = self
            .by_conn
            .get(conn)
            .copied()
            .flatten()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        Ok(&mut self.clients[client])
    }
}

impl Transport for MemoryTransport {
    fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000)
    }

    fn waker(&self) -> io::Result<Option<mio::Waker>> {
        Ok(None)
    }

    fn wait(&mut self, ready: &mut Vec<Ready>, _timeout: Option<Duration>) -> io::Result<()> {
        // Never blocks: the caller moves the clock and turns the loop.
        let mut net = self.net.borrow_mut();
        if std::mem::take(&mut net.accept_edge) && !net.backlog.is_empty() {
            ready.push(Ready::Accept);
        }
        if std::mem::take(&mut net.interrupt) {
            ready.push(Ready::Interrupt);
        }
        let mut edges = std::mem::take(&mut net.edges);
        edges.sort_unstable();
        edges.dedup();
        for &client in &edges {
            let pipe = &mut net.clients[client];
            let Some(conn) = pipe.conn else {
                continue;
            };
            let readable = std::mem::take(&mut pipe.readable_edge);
            let writable = std::mem::take(&mut pipe.writable_edge);
            if readable || writable {
                ready.push(Ready::Conn {
                    conn,
                    readable,
                    to_the_end: pipe.client_closed || pipe.client_reset,
                    writable,
                });
            }
        }
        edges.clear();
        net.edges = edges;
        Ok(())
    }

    fn now(&self) -> Instant {
        self.net.borrow().now
    }

    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        let mut net = self.net.borrow_mut();
        for byte in buf {
            net.rng ^= net.rng >> 12;
            net.rng ^= net.rng << 25;
            net.rng ^= net.rng >> 27;
            *byte = (net.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
        true
    }

    fn accept(&mut self, conn: usize) -> io::Result<SocketAddr> {
        let mut net = self.net.borrow_mut();
        let Some(client) = net.backlog.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        if net.by_conn.len() <= conn {
            net.by_conn.resize(conn + 1, None);
        }
        net.by_conn[conn] = Some(client);
        let pipe = &mut net.clients[client];
        pipe.conn = Some(conn);
        // As mio does on registration: writable at once, readable if bytes or the end
        // arrived before the accept.
        pipe.writable_edge = true;
        pipe.readable_edge = !pipe.inbound.is_empty() || pipe.client_closed || pipe.client_reset;
        let peer = pipe.peer;
        net.edges.push(client);
        Ok(peer)
    }

    fn stop_accepting(&mut self) {
        let mut net = self.net.borrow_mut();
        net.listening = false;
        for client in std::mem::take(&mut net.backlog) {
            net.clients[client].server_closed = true;
        }
    }

    fn recv(&mut self, conn: usize, buf: &mut [u8]) -> io::Result<usize> {
        let mut net = self.net.borrow_mut();
        let pipe = net.pipe(conn)?;
        if pipe.client_reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.inbound.is_empty() {
            return if pipe.client_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(pipe.inbound.len());
        for (slot, byte) in buf.iter_mut().zip(pipe.inbound.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn send(&mut self, conn: usize, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut net = self.net.borrow_mut();
        let pipe = net.pipe(conn)?;
        if pipe.client_reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.server_shut_write {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut room = pipe.window.saturating_sub(pipe.outbound.len());
        if room == 0 {
            pipe.blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut written = 0;
        for slice in slices {
            let n = slice.len().min(room);
            pipe.outbound.extend_from_slice(&slice[..n]);
            written += n;
            room -= n;
            if room == 0 {
                pipe.blocked = true;
                break;
            }
        }
        Ok(written)
    }

    fn shutdown_write(&mut self, conn: usize) {
        if let Ok(pipe) = self.net.borrow_mut().pipe(conn) {
            pipe.server_shut_write = true;
        }
    }

    fn close(&mut self, conn: usize) {
        let mut net = self.net.borrow_mut();
        let Some(client) = net.by_conn.get_mut(conn).and_then(Option::take) else {
            return;
        };
        let pipe = &mut net.clients[client];
        pipe.conn = None;
        pipe.server_closed = true;
        pipe.server_reset = !pipe.inbound.is_empty();
    }

    fn catch_interrupts(&mut self, _stopper: &Arc<Stopper>) {}

    fn release_interrupts(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn_ready(ready: &[Ready]) -> Vec<(usize, bool, bool)> {
        ready
            .iter()
            .filter_map(|r| match *r {
                Ready::Conn {
                    conn,
                    readable,
                    writable,
                    ..
                } => Some((conn, readable, writable)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reports_edges_like_mio() {
        let (mut t, net) = MemoryTransport::new();
        let c = net.connect();
        let mut ready = Vec::new();
        t.wait(&mut ready, None).unwrap();
        assert_eq!(ready, vec![Ready::Accept]);
        assert_eq!(t.accept(7).unwrap().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        ready.clear();
        t.wait(&mut ready, None).unwrap();
        assert_eq!(conn_ready(&ready), vec![(7, false, true)]);
        ready.clear();
        t.wait(&mut ready, None).unwrap();
        assert!(ready.is_empty(), "an edge is reported once");
        net.send(c, b"abc");
        t.wait(&mut ready, None).unwrap();
        assert_eq!(conn_ready(&ready), vec![(7, true, false)]);
        let mut buf = [0u8; 2];
        assert_eq!(t.recv(7, &mut buf).unwrap(), 2);
        assert_eq!(t.recv(7, &mut buf).unwrap(), 1);
        assert_eq!(
            t.recv(7, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        net.close(c);
        assert_eq!(t.recv(7, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_full_window_blocks_until_the_client_reads() {
        let (mut t, net) = MemoryTransport::new();
        let c = net.connect();
        t.accept(0).unwrap();
        net.set_window(c, 4);
        let data = [IoSlice::new(b"abc"), IoSlice::new(b"def")];
        assert_eq!(t.send(0, &data).unwrap(), 4);
        assert_eq!(
            t.send(0, &data).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let mut ready = Vec::new();
        t.wait(&mut ready, None).unwrap();
        ready.clear();
        assert_eq!(net.take_output(c), b"abcd");
        t.wait(&mut ready, None).unwrap();
        assert_eq!(conn_ready(&ready), vec![(0, false, true)]);
    }
}
