//! What the engine needs from the operating system, as a small trait: accept, read, write
//! and close connections, wait for readiness, read the clock, draw random bytes.
//!
//! [`MioTransport`] is the real one: one mio `Poll`, the listening socket and the accepted
//! `TcpStream`s. The in-memory one (`super::memory`) runs the same engine without sockets or
//! a real clock, for tests and the whole-driver fuzz target. Everything above this trait,
//! the connection table, parsers, sessions, timers and the handler, is the same code in
//! both.
//!
//! Connections are named by the engine's own connection-table index (`conn`): the engine
//! picks it before `accept`, and a transport keeps whatever it needs per connection under
//! that index until `close`.

use super::handles::Stopper;
use super::signals::StopSignals;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::fmt;
use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something that became ready while the loop waited.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Ready {
    /// Connections are waiting to be accepted.
    Accept,
    /// A stop signal arrived (SIGINT, i.e. Ctrl-C, or SIGTERM).
    Interrupt,
    /// A connection can be read (`readable`; `to_the_end` when the peer's FIN or an error
    /// came with this edge, so reading must go on until the end is seen) or written.
    Conn {
        conn: usize,
        readable: bool,
        to_the_end: bool,
        writable: bool,
    },
}

/// Connections, readiness, the clock and randomness, for one engine.
///
/// Readiness is edge-triggered, as mio's is: a connection is reported readable when new
/// input arrived (or its peer closed), writable when room opened up, and not again until
/// the next such change. So the engine reads until `WouldBlock` (or a short read), or keeps
/// the connection on its own list to finish later.
pub(crate) trait Transport: fmt::Debug {
    /// The address clients connect to.
    fn local_addr(&self) -> SocketAddr;
    /// A waker for other threads, if waiting can block.
    fn waker(&self) -> io::Result<Option<mio::Waker>>;
    /// Waits until something is ready or `timeout` passes (`None`: no limit), and appends
    /// what is ready to `ready`. `Interrupted` is not an error.
    fn wait(&mut self, ready: &mut Vec<Ready>, timeout: Option<Duration>) -> io::Result<()>;
    /// The current time.
    fn now(&self) -> Instant;
    /// Fills `buf` with random bytes no client can guess; false if the source failed.
    fn fill_random(&mut self, buf: &mut [u8]) -> bool;
    /// Accepts one waiting connection under the index `conn`, and returns its peer.
    /// `WouldBlock` when none is waiting.
    fn accept(&mut self, conn: usize) -> io::Result<SocketAddr>;
    /// Closes the listening socket: no new connections (shutdown).
    fn stop_accepting(&mut self);
    /// Reads into `buf`; `Ok(0)` is the peer's end of stream.
    fn recv(&mut self, conn: usize, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes as much of `slices` as fits, in order; `WouldBlock` when nothing fits.
    fn send(&mut self, conn: usize, slices: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Shuts the write side (our FIN), keeping the read side open.
    fn shutdown_write(&mut self, conn: usize);
    /// Closes the connection and forgets `conn`.
    fn close(&mut self, conn: usize);
    /// Starts reporting SIGINT and SIGTERM as [`Ready::Interrupt`] (while the loop runs).
    fn catch_interrupts(&mut self, stopper: &Arc<Stopper>);
    /// Stops reporting them; the signals do again what they did before.
    fn release_interrupts(&mut self);
}

const STOP_SIGNAL: Token = Token(usize::MAX - 2);
const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// The real transport: mio over TCP.
#[derive(Debug)]
pub(crate) struct MioTransport {
    poll: Poll,
    events: Events,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    /// Accepted streams by connection index (a `TcpStream` is a file descriptor, and
    /// `Option` of it costs nothing extra, so an idle connection costs 4 bytes here).
    streams: Vec<Option<TcpStream>>,
    stop_signals: Option<StopSignals>,
}

impl MioTransport {
    /// Binds the listening socket with this `listen` backlog.
    pub(crate) fn bind(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<MioTransport> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let poll = Poll::new()?;
        let mut listener = listen(addr, backlog)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        Ok(MioTransport {
            poll,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            local_addr,
            streams: Vec::new(),
            stop_signals: None,
        })
    }

    fn stream(&mut self, conn: usize) -> io::Result<&mut TcpStream> {
        self.streams
            .get_mut(conn)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Transport for MioTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn waker(&self) -> io::Result<Option<mio::Waker>> {
        mio::Waker::new(self.poll.registry(), WAKER).map(Some)
    }

    fn wait(&mut self, ready: &mut Vec<Ready>, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            match event.token() {
                LISTENER => ready.push(Ready::Accept),
                // The wake itself is what matters: the handles set their flag first.
                WAKER => {}
                STOP_SIGNAL => {
                    if let Some(c) = &mut self.stop_signals {
                        c.drain();
                    }
                    ready.push(Ready::Interrupt);
                }
                Token(conn) => {
                    // The peer's FIN or RST came with this edge: read to the end, or
                    // nothing would wake us for it again.
                    let to_the_end = event.is_read_closed() || event.is_error();
                    ready.push(Ready::Conn {
                        conn,
                        readable: event.is_readable() || to_the_end,
                        to_the_end,
                        writable: event.is_writable(),
                    });
                }
            }
        }
        Ok(())
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        getrandom::fill(buf).is_ok()
    }

    fn accept(&mut self, conn: usize) -> io::Result<SocketAddr> {
        let Some(listener) = self.listener.as_ref() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        if conn >= STOP_SIGNAL.0 {
            return Err(io::Error::other("connection table full"));
        }
        let (mut stream, peer) = listener.accept()?;
        let _ = stream.set_nodelay(true);
        self.poll.registry().register(
            &mut stream,
            Token(conn),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        if self.streams.len() <= conn {
            // Grown by an eighth rather than doubled: at ten thousand idle clients a doubled
            // table is a few bytes per client more, for nothing.
            let more = (conn + 1 - self.streams.len()).max(self.streams.len() / 8);
            self.streams.reserve_exact(more);
            self.streams.resize_with(conn + 1, || None);
        }
        self.streams[conn] = Some(stream);
        Ok(peer)
    }

    fn stop_accepting(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }

    fn recv(&mut self, conn: usize, buf: &mut [u8]) -> io::Result<usize> {
        self.stream(conn)?.read(buf)
    }

    fn send(&mut self, conn: usize, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        send_slices(self.stream(conn)?, slices)
    }

    fn shutdown_write(&mut self, conn: usize) {
        if let Ok(stream) = self.stream(conn) {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
    }

    fn close(&mut self, conn: usize) {
        if let Some(mut stream) = self.streams.get_mut(conn).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        // The table follows the connection table down after a burst.
        while self.streams.last().is_some_and(Option::is_none) {
            self.streams.pop();
        }
        if self.streams.capacity() > 256 && self.streams.len() * 4 < self.streams.capacity() {
            self.streams.shrink_to(self.streams.len() * 2);
        }
    }

    fn catch_interrupts(&mut self, stopper: &Arc<Stopper>) {
        match StopSignals::install(self.poll.registry(), STOP_SIGNAL, stopper) {
            Ok(c) => self.stop_signals = Some(c),
            Err(e) => log::warn!("sioloop: cannot catch SIGINT and SIGTERM: {e}"),
        }
    }

    fn release_interrupts(&mut self) {
        // Dropping it removes the handler's actions.
        self.stop_signals = None;
    }
}

/// A listening socket as `TcpListener::bind` makes one (`SO_REUSEADDR`, non-blocking,
/// close-on-exec), with our backlog instead of the standard library's 128: `listen`
/// takes it as given and the kernel caps it at `net.core.somaxconn`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Elsewhere the standard library's backlog.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn listen(addr: SocketAddr, _backlog: u32) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Writes the slices with `send` (one slice) or `sendmsg` (several) rather than
/// `write`/`writev`: the socket calls go straight to the protocol, skipping the VFS layer a
/// file write passes through (the file-position lock, permission hooks), which is a few
/// percent of the CPU an echo costs on loopback. `MSG_NOSIGNAL`: a peer that reset the
/// connection makes the call fail with `EPIPE` instead of raising `SIGPIPE`, which would
/// kill a process that did not ignore it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_slices(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let socket = socket2::SockRef::from(&*stream);
    match slices {
        [one] => socket.send_with_flags(one, libc::MSG_NOSIGNAL),
        _ => socket.send_vectored_with_flags(slices, libc::MSG_NOSIGNAL),
    }
}

/// Elsewhere a plain vectored write (Rust programs ignore `SIGPIPE` by default).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_slices(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    std::io::Write::write_vectored(stream, slices)
}
