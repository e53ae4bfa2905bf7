//! `floor`: the least a Socket.IO server must do for an idle WebSocket client, as a bare mio
//! loop, for the idle-ping scenario of `benches/run.py`. No sioloop, no Socket.IO library.
//!
//! It accepts the Engine.IO 4 WebSocket handshake that `benches/loadgen` makes (HTTP upgrade,
//! open packet, Socket.IO CONNECT to `/` and its answer) and then only sends a ping every
//! interval and reads the pongs. Any other traffic closes the connection: it serves nothing
//! but the idle scenarios, so its per-ping CPU is the floor the real servers are held to.
//!
//! ```text
//! cargo run --release -- --port 3000
//! ```
//!
//! `PING_INTERVAL_MS` and `PING_TIMEOUT_MS` in the environment set the heartbeat (default
//! 25 000 / 20 000 ms), as for the other bench servers. Every connection has the same
//! interval, so ping deadlines come due in the order they were set and one FIFO queue holds
//! them all: O(1) per ping, one timer wake-up per due batch. A pong deadline costs no
//! wake-up of its own either: when a ping comes due and the previous one is still
//! unanswered (the timeout is shorter than the interval), the connection is closed.

use base64::Engine as _;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sha1::Digest as _;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
/// Largest WebSocket frame or HTTP request head accepted from a client; the floor only
/// expects a handshake and tiny Engine.IO packets.
const MAX_INPUT: usize = 16 * 1024;
/// RFC 6455's GUID appended to the client's key for `Sec-WebSocket-Accept`.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const OP_TEXT: u8 = 1;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the HTTP upgrade request.
    Http,
    /// Sent the open packet, waiting for the Socket.IO CONNECT (`40`).
    WaitConnect,
    /// Connected: only pings and pongs from here on.
    Ready,
}

struct Conn {
    stream: TcpStream,
    state: State,
    /// Bytes read and not yet parsed: at most one partial request head or frame.
    rbuf: Vec<u8>,
    /// Bytes the socket did not take yet; flushed on the next WRITABLE edge.
    wbuf: Vec<u8>,
    /// Distinguishes this connection from an earlier one in the same slot, for the queue.
    generation: u64,
    sid: u64,
    /// A ping was sent and its pong has not arrived.
    awaiting_pong: bool,
}

/// A ping deadline: slot, generation of the connection it was set for, when.
struct Due {
    at: Instant,
    slot: usize,
    generation: u64,
}

struct Floor {
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    queue: VecDeque<Due>,
    interval: Duration,
    timeout: Duration,
    generations: u64,
    /// Shared read buffer: a read lands here and only a partial frame is kept per connection.
    scratch: Vec<u8>,
}

fn main() {
    let mut port = 3000u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--port", Some(p)) => port = p,
            _ => {
                eprintln!("usage: floor [--port N]");
                std::process::exit(2)
            }
        }
    }
    let interval = env_ms("PING_INTERVAL_MS").unwrap_or(Duration::from_secs(25));
    let timeout = env_ms("PING_TIMEOUT_MS").unwrap_or(Duration::from_secs(20));
    if let Err(e) = run(port, interval, timeout) {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

/// A millisecond count from the environment variable `name`, if set; a bad value is fatal.
fn env_ms(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            eprintln!("floor: {name}={value:?} is not a number of milliseconds");
            std::process::exit(2)
        }
    }
}

fn run(port: u16, interval: Duration, timeout: Duration) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    // mio listens with the standard library's backlog of 128; a second listen() on Linux
    // only changes the backlog. 1024, as sioloop's default, so the listen queue of a
    // connect burst is not what the floor measures.
    // SAFETY: listen() on a socket descriptor the listener owns.
    if unsafe { libc::listen(listener.as_raw_fd(), 1024) } != 0 {
        return Err(io::Error::last_os_error());
    }
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // The harness reads this line to know the server is up.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    let mut floor = Floor {
        listener,
        conns: Vec::new(),
        free: Vec::new(),
        queue: VecDeque::new(),
        interval,
        timeout,
        generations: 0,
        scratch: vec![0; 64 * 1024],
    };
    let mut events = Events::with_capacity(1024);
    loop {
        let wait = floor
            .queue
            .front()
            .map(|due| due.at.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                floor.accept(&poll)?;
            } else {
                floor.on_ready(ev.token().0);
            }
        }
        floor.fire_due(Instant::now());
    }
}

impl Floor {
    fn accept(&mut self, poll: &Poll) -> io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or a connection reset before accept: drop it, go on.
                Err(e) => {
                    eprintln!("floor: accept: {e}");
                    return Ok(());
                }
            };
            stream.set_nodelay(true)?;
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            poll.registry().register(
                &mut stream,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            self.generations += 1;
            self.conns[slot] = Some(Conn {
                stream,
                state: State::Http,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                generation: self.generations,
                sid: self.generations,
                awaiting_pong: false,
            });
        }
    }

    fn close(&mut self, slot: usize) {
        // Dropping the stream closes the socket, which also takes it out of the epoll set.
        if self.conns[slot].take().is_some() {
            self.free.push(slot);
        }
    }

    fn on_ready(&mut self, slot: usize) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        match conn.read_all(&mut self.scratch, self.interval, self.timeout) {
            Ok(opened) if conn.flush().is_ok() => {
                if opened {
                    // Engine.IO's first ping comes one interval after the open packet.
                    self.queue.push_back(Due {
                        at: Instant::now() + self.interval,
                        slot,
                        generation: conn.generation,
                    });
                }
            }
            _ => self.close(slot),
        }
    }

    /// Sends the pings that are due and queues the next ones.
    fn fire_due(&mut self, now: Instant) {
        while let Some(due) = self.queue.front() {
            if due.at > now {
                break;
            }
            let Due {
                slot, generation, ..
            } = *due;
            self.queue.pop_front();
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            // The previous ping is older than the interval, so older than the timeout too.
            let ok = !conn.awaiting_pong && {
                conn.awaiting_pong = true;
                frame(&mut conn.wbuf, OP_TEXT, b"2");
                conn.flush().is_ok()
            };
            if ok {
                self.queue.push_back(Due {
                    at: now + self.interval,
                    slot,
                    generation,
                });
            } else {
                self.close(slot);
            }
        }
    }
}

/// Why a connection is closed; the floor does not tell the peer.
type Closed = ();

impl Conn {
    /// Reads until the socket is drained and handles what arrived; `Ok(true)` if the
    /// Engine.IO session opened (the first ping deadline is due then).
    fn read_all(
        &mut self,
        scratch: &mut [u8],
        interval: Duration,
        timeout: Duration,
    ) -> Result<bool, Closed> {
        let mut opened = false;
        loop {
            let n = match self.stream.read(scratch) {
                Ok(0) => return Err(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(opened),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            };
            if self.rbuf.is_empty() {
                // The usual case: parse straight from the shared buffer.
                let used = self.parse(&mut scratch[..n], &mut opened, interval, timeout)?;
                self.rbuf.extend_from_slice(&scratch[used..n]);
            } else {
                let mut pending = std::mem::take(&mut self.rbuf);
                pending.extend_from_slice(&scratch[..n]);
                let used = self.parse(&mut pending, &mut opened, interval, timeout)?;
                pending.drain(..used);
                self.rbuf = pending;
            }
            if self.rbuf.len() > MAX_INPUT {
                return Err(());
            }
            if n < scratch.len() {
                // A short read drained the socket; new data raises a new edge.
                return Ok(opened);
            }
        }
    }

    /// Handles the complete requests and frames at the start of `buf`; returns the bytes used.
    fn parse(
        &mut self,
        buf: &mut [u8],
        opened: &mut bool,
        interval: Duration,
        timeout: Duration,
    ) -> Result<usize, Closed> {
        let mut used = 0;
        if self.state == State::Http {
            let Some(head_len) = self.upgrade(buf, interval, timeout)? else {
                return Ok(0);
            };
            used = head_len;
            *opened = true;
        }
        while let Some((opcode, start, end)) = client_frame(&mut buf[used..])? {
            let payload = &buf[used + start..used + end];
            match opcode {
                OP_TEXT => self.on_packet(payload)?,
                OP_PING => {
                    let payload = payload.to_vec();
                    frame(&mut self.wbuf, OP_PONG, &payload);
                }
                OP_PONG => {}
                // The client is leaving.
                OP_CLOSE => return Err(()),
                // Continuation and binary frames: the benchmark clients never send them.
                _ => return Err(()),
            }
            used += end;
        }
        Ok(used)
    }

    /// The HTTP upgrade request; answers with 101, then the Engine.IO open packet.
    fn upgrade(
        &mut self,
        buf: &[u8],
        interval: Duration,
        timeout: Duration,
    ) -> Result<Option<usize>, Closed> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
        };
        let path = req.path.unwrap_or_default();
        if req.method != Some("GET")
            || !path.starts_with("/socket.io/?")
            || !path.contains("EIO=4")
            || !path.contains("transport=websocket")
        {
            return Err(());
        }
        let key = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
            .map(|h| h.value)
            .ok_or(())?;
        let mut sha1 = sha1::Sha1::new();
        sha1.update(key);
        sha1.update(WS_GUID);
        let accept = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
        let _ = write!(
            self.wbuf,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let open = format!(
            r#"0{{"sid":"{:020x}","upgrades":[],"pingInterval":{},"pingTimeout":{},"maxPayload":1000000}}"#,
            self.sid,
            interval.as_millis(),
            timeout.as_millis()
        );
        frame(&mut self.wbuf, OP_TEXT, open.as_bytes());
        self.state = State::WaitConnect;
        Ok(Some(head_len))
    }

    /// One Engine.IO packet: the Socket.IO CONNECT to `/`, or a pong.
    fn on_packet(&mut self, packet: &[u8]) -> Result<(), Closed> {
        match (self.state, packet) {
            (State::WaitConnect, b"40") => {
                let answer = format!(r#"40{{"sid":"s{:019x}"}}"#, self.sid);
                frame(&mut self.wbuf, OP_TEXT, answer.as_bytes());
                self.state = State::Ready;
                Ok(())
            }
            (State::WaitConnect | State::Ready, b"3") => {
                self.awaiting_pong = false;
                Ok(())
            }
            _ => Err(()),
        }
    }

    fn flush(&mut self) -> Result<(), Closed> {
        let mut written = 0;
        while written < self.wbuf.len() {
            match self.stream.write(&self.wbuf[written..]) {
                Ok(0) => return Err(()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        self.wbuf.drain(..written);
        Ok(())
    }
}

/// Appends an unmasked server frame.
fn frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A complete masked client frame at the start of `buf`, unmasked in place: its opcode and
/// the payload's start and end. `Ok(None)` while incomplete. Fragmented, unmasked or
/// oversized frames close the connection (loadgen sends none).
fn client_frame(buf: &mut [u8]) -> Result<Option<(u8, usize, usize)>, Closed> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x80 == 0 || b1 & 0x80 == 0 {
        return Err(());
    }
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(l) => (usize::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => return Err(()),
        n => (usize::from(n), 2),
    };
    if len > MAX_INPUT {
        return Err(());
    }
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(payload) = buf.get_mut(at..at + len) else {
        return Ok(None);
    };
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    Ok(Some((b0 & 0x0f, at, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_frame_round_trip() {
        let mask = [1u8, 2, 3, 4];
        let mut buf = vec![0x81, 0x80 | 2];
        buf.extend_from_slice(&mask);
        buf.extend(b"40".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        buf.push(0x81);
        assert_eq!(client_frame(&mut buf[..7]), Ok(None), "incomplete");
        let (op, start, end) = client_frame(&mut buf).unwrap().unwrap();
        assert_eq!((op, &buf[start..end]), (OP_TEXT, &b"40"[..]));
        assert_eq!(end, 8);
        assert_eq!(client_frame(&mut buf[end..]), Ok(None));
        // Unmasked client frames are refused.
        assert!(client_frame(&mut [0x81, 1, b'3']).is_err());
    }
}
