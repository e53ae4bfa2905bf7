//! One simulated Socket.IO client: its TCP connections and transport (WebSocket, or HTTP
//! long-polling over two keep-alive connections), turning bytes into whole Engine.IO packets
//! for [`Bench`] and sending what it queues.
//!
//! Reads drain the socket (edge-triggered) and parse after every read, so a receive buffer
//! only ever holds one partial frame or response and stays small. Writes are appended to a
//! per-connection buffer and flushed after each event, so everything a batch of packets
//! produced leaves in one syscall.

use crate::bench::Bench;
use crate::proto::{self, FrameHead, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

pub type Res<T> = Result<T, String>;

/// Largest frame or HTTP body accepted; anything bigger is a protocol error, not a reason to
/// grow a buffer without bound.
const MAX_MESSAGE: usize = 64 << 20;
/// Initial receive buffer: enough for the handshake and many small frames, yet 10 000 idle
/// clients only take 40 MiB.
const INITIAL_RBUF: usize = 4096;
/// Source addresses used round-robin on loopback, so TIME_WAITs from repeated runs spread
/// over 16 × 28 000 ports.
const SOURCE_ADDRS: u8 = 16;

/// Where a client is in the Engine.IO / Socket.IO handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// WebSocket: TCP connect and HTTP upgrade. Polling: the handshake GET.
    Transport,
    /// Waiting for the Engine.IO open packet.
    WaitOpen,
    /// Sent `40`, waiting for the Socket.IO connect reply.
    WaitConnect,
    /// Connected to namespace `/`.
    Ready,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Idle,
    Echo,
    Receiver,
    Sender,
}

/// Protocol-level client state that the scenario logic reads and writes.
pub struct Sio {
    pub phase: Phase,
    pub role: Role,
    /// Next ack id to use (also the echo sequence number).
    pub next_id: u64,
    /// Echoes sent and not yet acked.
    pub outstanding: u32,
    /// Bit `id % (64 * len)` is set while the echo with ack id `id` awaits its ack, so a
    /// duplicate or unknown ack is caught even when a server acks out of order.
    pub awaited: Vec<u64>,
    pub join_id: u64,
    pub joined: bool,
    /// Last broadcast sequence number received (0: none), to catch duplicates and reordering.
    pub last_seq: u64,
    /// A `bc_bin` header arrived; its attachment is the next binary message.
    pub expect_bin: bool,
    /// When the connect started, for the idle scenario's connect latency.
    pub t_start: u64,
}

impl Sio {
    /// A client that keeps up to `in_flight` echoes awaiting acks.
    pub fn new(role: Role, in_flight: usize, now: u64) -> Sio {
        let words = if role == Role::Echo {
            (2 * in_flight).next_power_of_two().div_ceil(64)
        } else {
            0
        };
        Sio {
            phase: Phase::Transport,
            role,
            next_id: 1,
            outstanding: 0,
            awaited: vec![0; words],
            join_id: 0,
            joined: false,
            last_seq: 0,
            expect_bin: false,
            t_start: now,
        }
    }

    fn ack_bit(&self, id: u64) -> Res<(usize, u64)> {
        let window = self.awaited.len() as u64 * 64;
        if window == 0 {
            return Err("this client sends no acked events".into());
        }
        Ok((((id % window) / 64) as usize, 1 << (id % 64)))
    }

    /// Records that ack `id` is awaited.
    pub fn await_ack(&mut self, id: u64) -> Res<()> {
        let (word, bit) = self.ack_bit(id)?;
        if self.awaited[word] & bit != 0 {
            let window = self.awaited.len() as u64 * 64;
            return Err(format!(
                "ack {} still missing {window} echoes later",
                id - window
            ));
        }
        self.awaited[word] |= bit;
        self.outstanding += 1;
        Ok(())
    }

    /// Checks off ack `id`; fails unless it was awaited.
    pub fn take_ack(&mut self, id: u64) -> Res<()> {
        let (word, bit) = self.ack_bit(id)?;
        if id >= self.next_id || self.awaited[word] & bit == 0 {
            return Err(format!("ack {id} for no echo in flight (duplicate?)"));
        }
        self.awaited[word] &= !bit;
        self.outstanding -= 1;
        Ok(())
    }
}

/// Sends Engine.IO packets over whichever transport the client uses.
pub enum Tx<'a> {
    Ws(&'a mut Vec<u8>),
    /// The polling client's POST queue: packets joined by the record separator.
    Poll(&'a mut Vec<u8>),
}

impl Tx<'_> {
    pub fn text(&mut self, packet: &[u8]) {
        match self {
            Tx::Ws(w) => proto::ws_frame(w, OP_TEXT, packet),
            Tx::Poll(q) => {
                if !q.is_empty() {
                    q.push(0x1e);
                }
                q.extend_from_slice(packet);
            }
        }
    }

    pub fn binary(&mut self, data: &[u8]) -> Res<()> {
        match self {
            Tx::Ws(w) => {
                proto::ws_frame(w, OP_BINARY, data);
                Ok(())
            }
            Tx::Poll(_) => Err("binary messages over polling are not implemented".into()),
        }
    }
}

/// A receive buffer with a read and a write cursor, so consuming a packet is O(1) and bytes
/// move only when a partial packet reaches the end.
struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    fn new() -> Self {
        RecvBuf {
            buf: vec![0; INITIAL_RBUF],
            start: 0,
            end: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Makes room for a packet of `total` bytes that begins at the read cursor, so a large
    /// frame arrives in few reads instead of many small ones.
    fn need(&mut self, total: usize) {
        if self.buf.len() - self.start < total {
            self.compact();
            if self.buf.len() < total {
                self.buf.resize(total.next_power_of_two(), 0);
            }
        }
    }

    /// Free space to read into, never empty.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.compact();
            } else {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        &mut self.buf[self.end..]
    }
}

/// One TCP connection.
pub struct Conn {
    stream: TcpStream,
    rbuf: RecvBuf,
    wbuf: Vec<u8>,
    wpos: usize,
    tcp_up: bool,
}

/// What one read produced.
enum Read1 {
    /// Got bytes; `drained` if fewer than asked, so the socket is empty for now.
    Data {
        drained: bool,
    },
    WouldBlock,
}

impl Conn {
    /// Starts a non-blocking connect; connection number `n` picks the source address.
    fn open(addr: SocketAddr, n: usize, registry: &Registry, token: Token) -> Res<Conn> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        sock.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        // Small request/response packets: Nagle would add delayed-ACK stalls to latency.
        sock.set_tcp_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        if let IpAddr::V4(ip) = addr.ip()
            && ip.is_loopback()
        {
            bind_source(&sock, n)?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(format!("connect {addr}: {e}")),
        }
        let mut stream = TcpStream::from_std(std::net::TcpStream::from(sock));
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register: {e}"))?;
        Ok(Conn {
            stream,
            rbuf: RecvBuf::new(),
            wbuf: Vec::new(),
            wpos: 0,
            tcp_up: false,
        })
    }

    /// After a readiness event on a connection still connecting: true once it is up.
    fn check_connected(&mut self) -> Res<bool> {
        if self.tcp_up {
            return Ok(true);
        }
        if let Some(e) = self.stream.take_error().map_err(|e| e.to_string())? {
            return Err(format!("connect failed: {e}"));
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.tcp_up = true;
                Ok(true)
            }
            // A spurious wakeup before the handshake finished.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(format!("connect failed: {e}")),
        }
    }

    fn read1(&mut self, closing: bool) -> Res<Read1> {
        loop {
            let spare = self.rbuf.spare();
            let asked = spare.len();
            match self.stream.read(spare) {
                Ok(0) if closing => return Ok(Read1::WouldBlock),
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    self.rbuf.end += n;
                    return Ok(Read1::Data { drained: n < asked });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read1::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Writes queued bytes until done or the socket is full (then the WRITABLE edge resumes).
    fn flush(&mut self) -> Res<()> {
        if !self.tcp_up {
            return Ok(());
        }
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(())
    }
}

/// Binds to 127.0.0.(1 + n % 16) before connecting. IP_BIND_ADDRESS_NO_PORT defers the port
/// choice to connect(), which then only needs the 4-tuple to be unique.
fn bind_source(sock: &Socket, n: usize) -> Res<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to a c_int of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!(
            "IP_BIND_ADDRESS_NO_PORT: {}",
            io::Error::last_os_error()
        ));
    }
    let src = Ipv4Addr::new(127, 0, 0, 1 + (n % usize::from(SOURCE_ADDRS)) as u8);
    sock.bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into())
        .map_err(|e| format!("bind {src}: {e}"))
}

/// Content-Length of a response; chunked or unknown-length bodies are refused.
fn content_length(headers: &[httparse::Header<'_>]) -> Res<Option<usize>> {
    let mut len = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("bad Content-Length")?;
            if v > MAX_MESSAGE {
                return Err(format!("response body of {v} bytes"));
            }
            len = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "Transfer-Encoding {} is not supported (Content-Length only)",
                proto::show(h.value)
            ));
        }
    }
    Ok(len)
}

/// A parsed HTTP response at the start of a buffer.
struct HttpResp {
    status: u16,
    head_len: usize,
    body_len: usize,
}

/// Parses a response head; `Ok(None)` until head and body are both complete.
fn parse_response(rbuf: &mut RecvBuf, need_length: bool) -> Res<Option<HttpResp>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(rbuf.data()) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if rbuf.data().len() > 64 * 1024 {
                return Err("HTTP response head over 64 KiB".into());
            }
            return Ok(None);
        }
        Err(e) => {
            return Err(format!(
                "bad HTTP response ({e}): {}",
                proto::show(rbuf.data())
            ));
        }
    };
    let status = resp.code.unwrap_or(0);
    let body_len = match content_length(resp.headers)? {
        Some(n) => n,
        None if need_length && status != 101 => {
            return Err(format!("HTTP {status} response without Content-Length"));
        }
        None => 0,
    };
    let total = head_len + body_len;
    if rbuf.data().len() < total {
        rbuf.need(total);
        return Ok(None);
    }
    Ok(Some(HttpResp {
        status,
        head_len,
        body_len,
    }))
}

/// A WebSocket client.
pub struct Ws {
    conn: Conn,
    upgraded: bool,
    /// A fragmented message being reassembled (servers rarely fragment; kept for safety).
    frag: Vec<u8>,
    frag_op: u8,
}

/// An HTTP long-polling client: one connection for GETs, one for POSTs.
pub struct Polling {
    get: Conn,
    post: Conn,
    /// Request line and headers of a GET with the session id, built once.
    get_req: Vec<u8>,
    /// POST head up to and including "Content-Length: ".
    post_head: Vec<u8>,
    host: String,
    handshaken: bool,
    post_busy: bool,
    /// Packets waiting for the next POST.
    queue: Vec<u8>,
}

pub enum Transport {
    Ws(Ws),
    Polling(Box<Polling>),
}

pub struct Client {
    pub t: Transport,
    pub s: Sio,
}

impl Client {
    /// Starts connecting client number `idx` (tokens `2*idx` and `2*idx + 1`).
    pub fn open(
        idx: usize,
        addr: SocketAddr,
        polling: bool,
        role: Role,
        in_flight: usize,
        registry: &Registry,
        now: u64,
    ) -> Res<Client> {
        let host = addr.to_string();
        let t = if polling {
            let mut get = Conn::open(addr, 2 * idx, registry, Token(2 * idx))?;
            let post = Conn::open(addr, 2 * idx + 1, registry, Token(2 * idx + 1))?;
            get.wbuf.extend_from_slice(
                format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {host}\r\n\r\n")
                    .as_bytes(),
            );
            Transport::Polling(Box::new(Polling {
                get,
                post,
                get_req: Vec::new(),
                post_head: Vec::new(),
                host,
                handshaken: false,
                post_busy: false,
                queue: Vec::new(),
            }))
        } else {
            let mut conn = Conn::open(addr, idx, registry, Token(2 * idx))?;
            conn.wbuf.extend_from_slice(
                format!(
                    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n\
                     Upgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n"
                )
                .as_bytes(),
            );
            Transport::Ws(Ws {
                conn,
                upgraded: false,
                frag: Vec::new(),
                frag_op: 0,
            })
        };
        Ok(Client {
            t,
            s: Sio::new(role, in_flight, now),
        })
    }

    /// Handles a readiness event on connection `which` (0: WebSocket or polling GET,
    /// 1: polling POST).
    pub fn on_ready(&mut self, which: usize, read_closed: bool, b: &mut Bench) -> Res<()> {
        match &mut self.t {
            Transport::Ws(ws) => ws.on_ready(&mut self.s, read_closed, b),
            Transport::Polling(p) => p.on_ready(which, &mut self.s, read_closed, b),
        }
    }

    /// The sender for this client's transport; call [`Client::flush`] afterwards.
    pub fn tx(&mut self) -> (Tx<'_>, &mut Sio) {
        match &mut self.t {
            Transport::Ws(ws) => (Tx::Ws(&mut ws.conn.wbuf), &mut self.s),
            Transport::Polling(p) => (Tx::Poll(&mut p.queue), &mut self.s),
        }
    }

    pub fn flush(&mut self) -> Res<()> {
        match &mut self.t {
            Transport::Ws(ws) => ws.conn.flush(),
            Transport::Polling(p) => {
                p.maybe_post();
                p.get.flush()?;
                p.post.flush()
            }
        }
    }
}

impl Ws {
    fn on_ready(&mut self, s: &mut Sio, read_closed: bool, b: &mut Bench) -> Res<()> {
        if !self.conn.check_connected()? {
            return Ok(());
        }
        loop {
            match self.conn.read1(b.closing)? {
                Read1::WouldBlock => break,
                Read1::Data { drained } => {
                    self.process(s, b)?;
                    // A short read emptied the socket: the next read would only say
                    // WouldBlock, and new data raises a new edge. Unless the peer closed,
                    // whose edge has already been delivered.
                    if drained && !read_closed {
                        break;
                    }
                }
            }
        }
        self.conn.flush()
    }

    fn process(&mut self, s: &mut Sio, b: &mut Bench) -> Res<()> {
        if !self.upgraded {
            let Some(r) = parse_response(&mut self.conn.rbuf, false)? else {
                return Ok(());
            };
            if r.status != 101 {
                let d = self.conn.rbuf.data();
                return Err(format!(
                    "WebSocket upgrade refused: HTTP {} {}",
                    r.status,
                    proto::show(&d[r.head_len..r.head_len + r.body_len])
                ));
            }
            self.conn.rbuf.consume(r.head_len + r.body_len);
            self.upgraded = true;
            s.phase = Phase::WaitOpen;
        }
        let Conn { rbuf, wbuf, .. } = &mut self.conn;
        loop {
            let data = rbuf.data();
            let Some(FrameHead {
                fin,
                opcode,
                head_len,
                len,
            }) = proto::parse_frame_head(data, MAX_MESSAGE)?
            else {
                return Ok(());
            };
            let total = head_len + len;
            if data.len() < total {
                rbuf.need(total);
                return Ok(());
            }
            let payload = &data[head_len..total];
            match opcode {
                OP_TEXT | OP_BINARY if fin && self.frag_op == 0 => {
                    if opcode == OP_TEXT {
                        b.on_text(s, payload, &mut Tx::Ws(wbuf))?;
                    } else {
                        b.on_binary(s, payload)?;
                    }
                }
                OP_TEXT | OP_BINARY if self.frag_op == 0 => {
                    self.frag_op = opcode;
                    self.frag.clear();
                    self.frag.extend_from_slice(payload);
                }
                OP_CONT if self.frag_op != 0 => {
                    if self.frag.len() + payload.len() > MAX_MESSAGE {
                        return Err("fragmented message too large".into());
                    }
                    self.frag.extend_from_slice(payload);
                    if fin {
                        let op = std::mem::replace(&mut self.frag_op, 0);
                        if op == OP_TEXT {
                            b.on_text(s, &self.frag, &mut Tx::Ws(wbuf))?;
                        } else {
                            b.on_binary(s, &self.frag)?;
                        }
                    }
                }
                OP_PING => proto::ws_frame(wbuf, OP_PONG, payload),
                OP_PONG => {}
                OP_CLOSE if b.closing => {}
                OP_CLOSE => {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    return Err(format!(
                        "server sent WebSocket close {code:?} {}",
                        proto::show(payload.get(2..).unwrap_or_default())
                    ));
                }
                _ => return Err(format!("unexpected WebSocket opcode {opcode}")),
            }
            rbuf.consume(total);
        }
    }
}

impl Polling {
    fn on_ready(&mut self, which: usize, s: &mut Sio, read_closed: bool, b: &mut Bench) -> Res<()> {
        let conn = if which == 0 {
            &mut self.get
        } else {
            &mut self.post
        };
        if !conn.check_connected()? {
            return Ok(());
        }
        loop {
            let conn = if which == 0 {
                &mut self.get
            } else {
                &mut self.post
            };
            match conn.read1(b.closing)? {
                Read1::WouldBlock => break,
                Read1::Data { drained } => {
                    if which == 0 {
                        self.process_get(s, b)?;
                    } else {
                        self.process_post()?;
                    }
                    if drained && !read_closed {
                        break;
                    }
                }
            }
        }
        self.maybe_post();
        self.get.flush()?;
        self.post.flush()
    }

    fn process_get(&mut self, s: &mut Sio, b: &mut Bench) -> Res<()> {
        while let Some(r) = parse_response(&mut self.get.rbuf, true)? {
            let data = self.get.rbuf.data();
            let body = &data[r.head_len..r.head_len + r.body_len];
            if r.status != 200 {
                return Err(format!(
                    "polling GET: HTTP {} {}",
                    r.status,
                    proto::show(body)
                ));
            }
            if !self.handshaken {
                (self.get_req, self.post_head) = session_requests(&self.host, body)?;
                self.handshaken = true;
            }
            let mut tx = Tx::Poll(&mut self.queue);
            for packet in body.split(|&c| c == 0x1e) {
                if packet.first() == Some(&b'b') {
                    return Err("base64 binary packet over polling is not supported".into());
                }
                b.on_text(s, packet, &mut tx)?;
            }
            self.get.rbuf.consume(r.head_len + r.body_len);
            // Keep exactly one GET outstanding.
            self.get.wbuf.extend_from_slice(&self.get_req);
        }
        Ok(())
    }

    fn process_post(&mut self) -> Res<()> {
        while let Some(r) = parse_response(&mut self.post.rbuf, true)? {
            let data = self.post.rbuf.data();
            let body = &data[r.head_len..r.head_len + r.body_len];
            if !self.post_busy {
                return Err("polling POST response without a request".into());
            }
            if r.status != 200 || body != b"ok" {
                return Err(format!(
                    "polling POST: HTTP {} {}",
                    r.status,
                    proto::show(body)
                ));
            }
            self.post.rbuf.consume(r.head_len + r.body_len);
            self.post_busy = false;
        }
        Ok(())
    }

    /// Sends the queued packets as one POST, unless one is already in flight.
    fn maybe_post(&mut self) {
        if self.queue.is_empty() || self.post_busy || !self.handshaken || !self.post.tcp_up {
            return;
        }
        let w = &mut self.post.wbuf;
        w.extend_from_slice(&self.post_head);
        proto::push_u64(w, self.queue.len() as u64);
        w.extend_from_slice(b"\r\n\r\n");
        w.extend_from_slice(&self.queue);
        self.queue.clear();
        self.post_busy = true;
    }
}

/// Takes the session id from the open packet and builds the GET request and the POST head
/// that carry it, once per client.
fn session_requests(host: &str, open: &[u8]) -> Res<(Vec<u8>, Vec<u8>)> {
    let key = br#""sid":""#;
    let sid = open
        .windows(key.len())
        .position(|w| w == key)
        .map(|i| &open[i + key.len()..])
        .and_then(|rest| rest.iter().position(|&c| c == b'"').map(|n| &rest[..n]))
        .filter(|sid| !sid.is_empty() && sid.iter().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| format!("no sid in the open packet {}", proto::show(open)))?;
    let sid = std::str::from_utf8(sid).map_err(|e| e.to_string())?;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let get = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    let post = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: "
    )
    .into_bytes();
    Ok((get, post))
}
