//! The driver: the only module that touches mio, sockets, the clock and threads.
//!
//! One [`Engine`] owns one mio `Poll`, the listening socket, every connection (in a slab,
//! keyed by mio `Token`) and every Engine.IO session (in a second slab, with a `sid`
//! index). Each loop iteration:
//!
//! 1. waits in `poll` until a socket is ready or the nearest timer is due;
//! 2. accepts until `WouldBlock`, reads each ready connection until `WouldBlock`, feeding
//!    the bytes to the sans-IO parsers and sessions;
//! 3. fires due timers (heartbeats, upgrade and linger deadlines);
//! 4. pumps every touched session (its events go to the [`EngineHandler`], its packets to
//!    write queues) until nothing changes;
//! 5. flushes every touched write queue with vectored writes.
//!
//! A connection is removed in exactly one place (`close_conn`) and a session in exactly
//! one place (`pump_session`, once the session says it is finished). Anything that keeps a
//! slab index past one iteration (a timer, a connection's link to its session) also keeps
//! the slot's generation, so a reused slot is never mistaken for the old one.

mod config;
mod conn;
mod ctrl_c;
mod engine_server;
mod shared;

pub use config::Config;
pub use engine_server::{Context, EngineServer};
pub use shared::SharedMessages;

use crate::client_log::Clipped;
use crate::engineio::TransportKind;
use crate::engineio::handshake::{EngineQuery, RequestError, open_json};
use crate::engineio::packet::{Message, Packet, decode_payload, encode_payload};
use crate::engineio::session::{CloseReason, Event, PollError, ProbeReply, Session};
use crate::http::{self, Parsed, Request, Response};
use crate::ws::{self, FrameKind, FrameReader, WsEvent};
use conn::{Chunk, Conn, ConnState, Pool, SessionKey, WsRole};
use ctrl_c::CtrlC;

use base64::Engine as _;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CTRL_C: Token = Token(usize::MAX - 2);
const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// How long a closing connection waits for the peer's EOF before it is dropped anyway.
const LINGER: Duration = Duration::from_secs(2);
/// How long `run` keeps flushing after a shutdown before it returns regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The loop's shared read buffer; a connection keeps only what a parser left over.
const READ_CHUNK: usize = 64 * 1024;

/// Identifies one Engine.IO session for as long as it lives. Copy it freely: once the
/// session is gone, operations on the id do nothing.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Ord, PartialOrd)]
pub struct SessionId {
    index: usize,
    generation: u32,
}

impl From<SessionKey> for SessionId {
    fn from(k: SessionKey) -> Self {
        SessionId {
            index: k.index,
            generation: k.generation,
        }
    }
}

/// What a session was opened with: the handshake request.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The client's address.
    pub address: SocketAddr,
    /// The handshake request (path, query, headers; no body).
    pub request: Request,
    /// The transport the session started on.
    pub transport: TransportKind,
}

/// Engine.IO counters, readable from handlers (`Engine::stats`) and as Prometheus text.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct EngineStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// TCP connections refused at accept (connection limits).
    pub connections_refused: u64,
    /// Requests answered with an error status (4xx, 5xx).
    pub requests_refused: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Engine.IO packets received.
    pub packets_in: u64,
    /// Engine.IO packets sent.
    pub packets_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Sessions closed, by reason (see [`EngineStats::closed`]).
    closes: [u64; 7],
}

const CLOSE_REASONS: [CloseReason; 7] = [
    CloseReason::TransportClose,
    CloseReason::TransportError,
    CloseReason::PingTimeout,
    CloseReason::ParseError,
    CloseReason::ForcedClose,
    CloseReason::ServerShuttingDown,
    CloseReason::SlowConsumer,
];

impl EngineStats {
    /// Sessions closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        CLOSE_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.closes[i])
    }

    fn count_close(&mut self, reason: CloseReason) {
        if let Some(i) = CLOSE_REASONS.iter().position(|r| *r == reason) {
            self.closes[i] += 1;
        }
    }
}

type AllowRequestFn = Box<dyn FnMut(&Request, SocketAddr) -> bool>;

struct AllowRequest(AllowRequestFn);

impl std::fmt::Debug for AllowRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllowRequest")
    }
}

/// Receives what happens to sessions. Every method runs on the loop thread and gets the
/// [`Engine`] to send, close or look sessions up.
pub trait EngineHandler {
    /// A session opened (after its handshake).
    fn on_open(&mut self, engine: &mut Engine, id: SessionId) {
        let _ = (engine, id);
    }
    /// A message arrived.
    fn on_message(&mut self, engine: &mut Engine, id: SessionId, message: Message) {
        let _ = (engine, id, message);
    }
    /// A session closed; `id` is no longer valid afterwards.
    fn on_close(&mut self, engine: &mut Engine, id: SessionId, reason: CloseReason) {
        let _ = (engine, id, reason);
    }
    /// A request for a path other than the Engine.IO path. `None` answers 404.
    fn on_http(&mut self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }
    /// The loop was woken through a [`WakeHandle`] (another thread has work for it).
    fn on_wake(&mut self, engine: &mut Engine) {
        let _ = engine;
    }
    /// The handler's own next deadline; the loop sleeps no longer than this.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
    /// Called every loop iteration once [`EngineHandler::poll_timeout`] has passed
    /// (spurious calls must be harmless).
    fn on_timeout(&mut self, engine: &mut Engine) {
        let _ = engine;
    }
    /// Appends the handler's own counters, as Prometheus text, to the metrics page.
    fn metrics(&mut self, out: &mut String) {
        let _ = out;
    }
}

/// Wakes a running [`Engine`] from any thread, so that its handler's
/// [`EngineHandler::on_wake`] runs on the loop thread. `Send + Clone`.
#[derive(Clone, Debug)]
pub struct WakeHandle {
    inner: Arc<Stopper>,
}

impl WakeHandle {
    /// Wakes the loop. Cheap; many wakes before the loop runs coalesce into one.
    pub fn wake(&self) {
        let _ = self.inner.waker.wake();
    }
}

/// A session's place in the engine.
#[derive(Debug)]
struct SessionSlot {
    generation: u32,
    sid: Sid,
    session: Session,
    handshake: Handshake,
    /// The WebSocket carrying the session, once it runs on one.
    ws: Option<Token>,
    /// A WebSocket probing an upgrade.
    probe: Option<Token>,
    /// The connection holding a polling GET.
    held_get: Option<Token>,
    /// The deadline already in the timer heap, so it is pushed once.
    timer_at: Option<Instant>,
    /// The loop iteration in which a held GET was last answered.
    answered_tick: u64,
    /// Bytes the handler holds for this session (see [`Engine::hold`]).
    held_by_handler: usize,
}

/// The length of a session id: 15 random bytes in URL-safe base64.
const SID_LEN: usize = 20;

/// A session id, stored inline: every session has one, in its slot and as the key of the
/// sid map, and two heap strings per session add up at ten thousand sessions.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
struct Sid([u8; SID_LEN]);

impl Sid {
    /// A sid from a request; anything of another length is no sid of ours.
    fn parse(sid: &str) -> Option<Sid> {
        sid.as_bytes().try_into().ok().map(Sid)
    }

    fn as_str(&self) -> &str {
        // Always URL-safe base64 (ASCII); the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[derive(Debug)]
enum Dispatch {
    Open(SessionId),
    Message(SessionId, Message),
    Close(SessionId, CloseReason),
}

#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
enum TimerKey {
    Session(usize, u32),
    Conn(usize, u32),
}

/// Stops a running [`Engine`] from any thread. `Send + Clone`.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    inner: Arc<Stopper>,
}

#[derive(Debug)]
struct Stopper {
    requested: AtomicBool,
    waker: Waker,
}

impl ShutdownHandle {
    /// Asks the loop to close every session with `server shutting down`, flush, and return
    /// from `run`.
    pub fn shutdown(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        let _ = self.inner.waker.wake();
    }
}

/// The Engine.IO server state and its event loop. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    sessions: Slab<SessionSlot>,
    sids: HashMap<Sid, usize>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    next_generation: u32,
    /// Sessions touched this tick, to pump.
    dirty_sessions: Vec<usize>,
    /// Empty buffers and chunk lists handed back by connections, for the next one that
    /// needs one: a broadcast to a thousand clients would otherwise allocate and free a
    /// thousand lists every tick, and an echo several buffers per message.
    pool: Pool,
    /// The list `settle` pumps from, swapped with `dirty_sessions` so neither is reallocated
    /// every round.
    pumping: Vec<usize>,
    /// Connections whose buffered input must be parsed again (a held GET was answered).
    reparse: Vec<Token>,
    /// Connections with output to flush this tick.
    to_flush: Vec<Token>,
    dispatch: VecDeque<Dispatch>,
    /// Requests for other paths, waiting for the handler's `on_http`.
    pending_http: Vec<(Token, Request)>,
    read_buf: Box<[u8]>,
    stopper: Arc<Stopper>,
    /// Set once a shutdown began: responses close their connections.
    shutting_down: bool,
    /// Counts loop iterations (for `can_send_now`).
    tick: u64,
    /// Open connections per IP address (for `max_connections_per_ip`).
    per_ip: HashMap<IpAddr, usize>,
    stats: EngineStats,
    allow_request: Option<AllowRequest>,
    /// Rate limit for log lines a client can cause.
    client_log: crate::client_log::PeerLogLimiter,
    now: Instant,
}

impl Engine {
    /// Binds the listening socket and sets up the loop.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Engine> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let local_addr = listener.local_addr()?;
        Ok(Engine {
            config,
            poll,
            listener: Some(listener),
            local_addr,
            conns: Slab::new(),
            sessions: Slab::new(),
            sids: HashMap::new(),
            timers: BinaryHeap::new(),
            next_generation: 0,
            dirty_sessions: Vec::new(),
            pumping: Vec::new(),
            pool: Pool::default(),
            reparse: Vec::new(),
            to_flush: Vec::new(),
            dispatch: VecDeque::new(),
            pending_http: Vec::new(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            stopper: Arc::new(Stopper {
                requested: AtomicBool::new(false),
                waker,
            }),
            shutting_down: false,
            tick: 0,
            per_ip: HashMap::new(),
            stats: EngineStats::default(),
            allow_request: None,
            client_log: Default::default(),
            now: Instant::now(),
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A handle that stops the loop from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            inner: self.stopper.clone(),
        }
    }

    /// A handle that wakes the loop from any thread (see [`EngineHandler::on_wake`]).
    pub fn wake_handle(&self) -> WakeHandle {
        WakeHandle {
            inner: self.stopper.clone(),
        }
    }

    /// The loop's time for this iteration: read once per wakeup, the clock handlers use.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The driver's clock read now, for work scheduled outside a loop iteration (a timer
    /// added before `run`). Inside handlers, [`Engine::now`] is the time to use.
    pub fn clock(&self) -> Instant {
        Instant::now()
    }

    /// Fills `buf` from the OS random source (ids a client must not guess). False if the
    /// source failed.
    pub fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        getrandom::fill(buf).is_ok()
    }

    /// Whether a log line about something this session's client caused may be written: at
    /// most a few per peer address per second (see `client_log`). Such lines are `debug`.
    pub(crate) fn may_log_client(&mut self, id: SessionId) -> bool {
        let Some(peer) = self.slot(id).map(|s| s.handshake.address.ip()) else {
            return false;
        };
        self.may_log_peer(peer)
    }

    fn may_log_peer(&mut self, peer: IpAddr) -> bool {
        log::log_enabled!(log::Level::Debug) && self.client_log.allow(peer, self.now)
    }

    /// Tells the engine that the handler holds `bytes` on behalf of this session (binary
    /// attachments waiting for the rest of their packet): they count against
    /// [`Config::max_buffered_bytes`], the server-wide memory budget. Each call replaces the
    /// previous figure; a closed session's figure is dropped with it.
    pub fn hold(&mut self, id: SessionId, bytes: usize) {
        if let Some(slot) = self.slot_mut(id) {
            slot.held_by_handler = bytes;
        }
    }

    /// Whether a packet sent to the session now goes out this tick rather than waiting
    /// behind a backlog: its WebSocket wrote everything at the last flush, or a polling GET
    /// is held (or was answered this tick, so the packet rides with the next one at once).
    /// Volatile packets are dropped when this is false. Several packets queued in one tick
    /// do not count as a backlog: a game may send positions and scores in the same tick.
    pub fn can_send_now(&self, id: SessionId) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        if !slot.session.is_open() {
            return false;
        }
        match (slot.ws, slot.held_get) {
            (Some(token), _) => self.conns.get(token.0).is_some_and(|c| !c.backlogged),
            (None, Some(_)) => true,
            (None, None) => slot.answered_tick == self.tick,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Sets a hook that sees every handshake request (headers, address) and may refuse it:
    /// `false` answers `403` with code 4 `Forbidden`, like the reference `allowRequest`.
    pub fn set_allow_request(&mut self, f: impl FnMut(&Request, SocketAddr) -> bool + 'static) {
        self.allow_request = Some(AllowRequest(Box::new(f)));
    }

    /// The counters as Prometheus text.
    pub fn metrics_text(&self) -> String {
        use crate::metrics::{self, Kind};
        let s = &self.stats;
        let mut out = String::new();
        metrics::single(
            &mut out,
            Kind::Gauge,
            &[
                (
                    "sioloop_connections_open",
                    "Open TCP connections.",
                    self.conns.len() as u64,
                ),
                (
                    "sioloop_sessions_open",
                    "Open Engine.IO sessions.",
                    self.sessions.len() as u64,
                ),
            ],
        );
        metrics::single(
            &mut out,
            Kind::Counter,
            &[
                (
                    "sioloop_connections_accepted_total",
                    "TCP connections accepted.",
                    s.connections_accepted,
                ),
                (
                    "sioloop_connections_refused_total",
                    "TCP connections refused by a limit.",
                    s.connections_refused,
                ),
                (
                    "sioloop_requests_refused_total",
                    "HTTP requests answered with an error.",
                    s.requests_refused,
                ),
                (
                    "sioloop_sessions_opened_total",
                    "Engine.IO sessions opened.",
                    s.sessions_opened,
                ),
                (
                    "sioloop_packets_in_total",
                    "Engine.IO packets received.",
                    s.packets_in,
                ),
                (
                    "sioloop_packets_out_total",
                    "Engine.IO packets sent.",
                    s.packets_out,
                ),
                (
                    "sioloop_bytes_in_total",
                    "Bytes read from sockets.",
                    s.bytes_in,
                ),
                (
                    "sioloop_bytes_out_total",
                    "Bytes written to sockets.",
                    s.bytes_out,
                ),
            ],
        );
        let name = "sioloop_sessions_closed_total";
        metrics::header(
            &mut out,
            Kind::Counter,
            name,
            "Engine.IO sessions closed, by reason.",
        );
        for reason in CLOSE_REASONS {
            metrics::labelled(&mut out, name, "reason", reason.as_str(), s.closed(reason));
        }
        out
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The number of open TCP connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn slot(&self, id: SessionId) -> Option<&SessionSlot> {
        self.sessions
            .get(id.index)
            .filter(|s| s.generation == id.generation)
    }

    fn slot_mut(&mut self, id: SessionId) -> Option<&mut SessionSlot> {
        self.sessions
            .get_mut(id.index)
            .filter(|s| s.generation == id.generation)
    }

    /// The session's Engine.IO id (`sid`).
    pub fn sid(&self, id: SessionId) -> Option<&str> {
        self.slot(id).map(|s| s.sid.as_str())
    }

    /// The session's handshake.
    pub fn handshake(&self, id: SessionId) -> Option<&Handshake> {
        self.slot(id).map(|s| &s.handshake)
    }

    /// The transport the session runs on now.
    pub fn transport(&self, id: SessionId) -> Option<TransportKind> {
        self.slot(id).map(|s| s.session.transport())
    }

    /// Queues a message to the session. Returns false if the session is closed or gone.
    pub fn send(&mut self, id: SessionId, message: Message) -> bool {
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        let sent = slot.session.send(message);
        let over = slot.session.queued_bytes() > self.config.max_queued_bytes;
        self.dirty_sessions.push(id.index);
        if over {
            // A polling client that stopped fetching: drop it rather than buffer forever.
            self.close_session(id, CloseReason::SlowConsumer);
        }
        sent
    }

    /// Queues messages that go to many sessions (a broadcast), encoded once: see
    /// [`SharedMessages`]. A session on a WebSocket with nothing else waiting gets the shared
    /// frames themselves; any other gets copies through its queue, exactly as [`send`]
    /// would. Returns false if the session is closed or gone.
    ///
    /// [`send`]: Engine::send
    pub fn send_shared(&mut self, id: SessionId, shared: &mut SharedMessages) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        if let Some(token) = slot.ws
            && slot.session.transport() == TransportKind::WebSocket
            && slot.session.is_open()
            && slot.session.queued() == 0
            && let Some(conn) = self.conns.get_mut(token.0)
            && !conn.close_after_flush
        {
            // Nothing of this session is waiting in its queue, so going straight to the
            // connection keeps the order.
            conn.out
                .push(&mut self.pool, Chunk::Shared(shared.ws_frames()));
            self.stats.packets_out += shared.messages().len() as u64;
            self.ws_output_queued(token);
            return true;
        }
        let mut sent = true;
        for m in shared.messages() {
            sent &= self.send(id, m.clone());
        }
        sent
    }

    /// Closes the session from the server side (`forced close`). Queued messages are still
    /// delivered.
    pub fn close(&mut self, id: SessionId) {
        self.close_session(id, CloseReason::ForcedClose);
    }

    fn close_session(&mut self, id: SessionId, reason: CloseReason) {
        let now = self.now;
        if let Some(slot) = self.slot_mut(id) {
            slot.session.close(reason, now);
            self.dirty_sessions.push(id.index);
        }
    }

    fn generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }

    /// Runs the loop until a shutdown (Ctrl-C or a [`ShutdownHandle`]), then closes every
    /// session with `server shutting down`, flushes, and returns.
    pub fn run<H: EngineHandler>(&mut self, handler: &mut H) -> io::Result<()> {
        // Dropped when `run` returns, which removes the handler's action.
        let mut ctrl_c = match CtrlC::install(self.poll.registry(), CTRL_C, &self.stopper) {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("sioloop: cannot install the Ctrl-C handler: {e}");
                None
            }
        };
        let mut events = Events::with_capacity(1024);
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            let engine_next = self.timers.peek().map(|Reverse((at, _))| *at);
            let next = match (engine_next, handler.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = next.map(|at| {
                at.saturating_duration_since(Instant::now()) + Duration::from_micros(100)
            });
            let timeout = match shutdown_deadline {
                Some(_) => Some(timeout.map_or(Duration::from_millis(50), |t| {
                    t.min(Duration::from_millis(50))
                })),
                None => timeout,
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            self.now = Instant::now();
            self.tick += 1;
            let mut woken = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => woken = true,
                    CTRL_C => {
                        if let Some(c) = &mut ctrl_c {
                            c.drain();
                        }
                        self.stopper.requested.store(true, Ordering::SeqCst);
                    }
                    token => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // The peer's FIN or RST came with this edge: read to the end, or
                            // nothing would wake us for it again.
                            let to_the_end = event.is_read_closed() || event.is_error();
                            self.read_conn(token, to_the_end);
                        }
                        if event.is_writable() {
                            self.queue_flush(token);
                        }
                    }
                }
            }
            self.fire_timers();
            self.settle(handler);
            self.compact();
            if woken {
                handler.on_wake(self);
                self.settle(handler);
            }
            if handler.poll_timeout().is_some_and(|at| at <= self.now) {
                handler.on_timeout(self);
                self.settle(handler);
            }

            if shutdown_deadline.is_none() && self.stopper.requested.load(Ordering::SeqCst) {
                shutdown_deadline = Some(self.now + SHUTDOWN_GRACE);
                self.begin_shutdown(handler);
            }
            if let Some(deadline) = shutdown_deadline
                && (self.conns.is_empty() || self.now >= deadline)
            {
                return Ok(());
            }
        }
    }

    fn begin_shutdown<H: EngineHandler>(&mut self, handler: &mut H) {
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
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
    fn settle<H: EngineHandler>(&mut self, handler: &mut H) {
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
    fn compact(&mut self) {
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
        // The per-tick work lists are empty between ticks.
        if self.dirty_sessions.capacity() > 1024 {
            self.dirty_sessions = Vec::new();
        }
        if self.pumping.capacity() > 1024 {
            self.pumping = Vec::new();
        }
        // Spare buffers nobody asked for in a while go back to the allocator.
        self.pool.release_if_unused();
        if self.to_flush.capacity() > 1024 {
            self.to_flush = Vec::new();
        }
    }

    // ---- accept, read, write -------------------------------------------------------------

    fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let from_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
                    if self.conns.len() >= self.config.max_connections
                        || from_ip >= self.config.max_connections_per_ip
                    {
                        // Best effort: a fresh socket's send buffer takes this at once.
                        use std::io::Write;
                        let _ = stream.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections",
                        );
                        self.stats.connections_refused += 1;
                        if self.may_log_peer(peer.ip()) {
                            log::debug!(
                                "sioloop: refused a connection from {peer}: connection limit"
                            );
                        }
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let generation = self.generation();
                    let entry = self.conns.vacant_entry();
                    let token = Token(entry.key());
                    if token == LISTENER || token == WAKER {
                        continue;
                    }
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("sioloop: register {peer}: {e}");
                        continue;
                    }
                    let mut conn = Conn::new(stream, peer, generation);
                    // The first request head must come within head_timeout (slowloris).
                    let at = self.now + self.config.head_timeout;
                    conn.deadline = Some(at);
                    entry.insert(conn);
                    self.timers
                        .push(Reverse((at, TimerKey::Conn(token.0, generation))));
                    *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
                    self.stats.connections_accepted += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of file descriptors and the like: the pending connection stays in the
                // backlog; try again on the next readiness or tick.
                Err(e) => {
                    log::warn!("sioloop: accept: {e}");
                    return;
                }
            }
        }
    }

    fn read_conn(&mut self, token: Token, to_the_end: bool) {
        // Edge-triggered: read until the socket is drained, parsing after each chunk so a
        // connection's buffer only ever holds an incomplete remainder. A read that returns
        // less than asked for drained the socket's receive queue, and any segment, FIN or
        // RST arriving after the edge we are handling raises a new edge, so a short read
        // ends the loop without the extra read that would only say WouldBlock (one syscall
        // less per message). A FIN that arrived before the edge was reported comes with it
        // (`to_the_end`): then the loop reads on until it sees the end.
        loop {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            match conn.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    self.close_conn(token, CloseReason::TransportClose);
                    return;
                }
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    let drained = !to_the_end && n < self.read_buf.len();
                    if matches!(conn.state, ConnState::Lingering) {
                        if drained {
                            return;
                        }
                        continue;
                    }
                    if conn.inbuf.capacity() == 0 {
                        conn.inbuf = self.pool.take_bytes();
                    }
                    conn.inbuf.extend_from_slice(&self.read_buf[..n]);
                    let cap = self.config.max_payload + self.config.head_limits.max_head_bytes + 64;
                    if conn.inbuf.len() > cap {
                        // Only a client that ignores the protocol gets here (pipelining
                        // into a held GET, or bytes past a frame's limit).
                        self.close_conn(token, CloseReason::TransportError);
                        return;
                    }
                    self.process_input(token);
                    if drained {
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

    /// After packets were queued on a WebSocket: flush them this tick, or, past
    /// `max_queued_bytes` (the client stopped reading), drop what it did not take, and it.
    fn ws_output_queued(&mut self, token: Token) {
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

    fn queue_flush(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.0)
            && !conn.flush_queued
        {
            conn.flush_queued = true;
            self.to_flush.push(token);
        }
    }

    fn flush_all(&mut self) {
        while let Some(token) = self.to_flush.pop() {
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            conn.flush_queued = false;
            let result =
                conn.out
                    .flush(&mut conn.stream, &mut self.stats.bytes_out, &mut self.pool);
            conn.backlogged = !conn.out.is_empty();
            match result {
                Ok(()) => {
                    if conn.close_after_flush && !matches!(conn.state, ConnState::Lingering) {
                        // Shut the write side and read until EOF: closing with unread input
                        // makes the kernel send RST, which can destroy our last response
                        // before the client reads it.
                        let _ = conn.stream.shutdown(Shutdown::Write);
                        conn.state = ConnState::Lingering;
                        conn.inbuf = Vec::new();
                        let at = self.now + LINGER;
                        conn.deadline = Some(at);
                        let key = TimerKey::Conn(token.0, conn.generation);
                        self.timers.push(Reverse((at, key)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.close_conn(token, CloseReason::TransportError),
            }
        }
    }

    /// The one place a connection is removed. Its session learns why.
    fn close_conn(&mut self, token: Token, reason: CloseReason) {
        if !self.conns.contains(token.0) {
            return;
        }
        let mut conn = self.conns.remove(token.0);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(n) = self.per_ip.get_mut(&conn.peer.ip()) {
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
                    slot.session.close(CloseReason::TransportError, now);
                    self.dirty_sessions.push(session.index);
                }
            }
            ConnState::WebSocket { session, role, .. } => {
                if let Some(slot) = self.slot_mut(session.into()) {
                    match role {
                        WsRole::Active => {
                            slot.ws = None;
                            slot.session.close(reason, now);
                        }
                        WsRole::Probe => {
                            slot.probe = None;
                            slot.session.handle_probe_closed();
                        }
                        WsRole::Doomed => {}
                    }
                    self.dirty_sessions.push(session.index);
                }
            }
            ConnState::Http | ConnState::Lingering => {}
        }
    }

    // ---- timers --------------------------------------------------------------------------

    fn fire_timers(&mut self) {
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

    // ---- sessions ------------------------------------------------------------------------

    /// Moves a session's events to the dispatch queue and its packets to write queues,
    /// re-arms its timer, and removes it once it is finished.
    fn pump_session(&mut self, index: usize) {
        let now = self.now;
        let Some(slot) = self.sessions.get_mut(index) else {
            return;
        };
        let id = SessionId {
            index,
            generation: slot.generation,
        };
        let mut close_probe = false;
        while let Some(event) = slot.session.poll_event() {
            match event {
                Event::Message(m) => self.dispatch.push_back(Dispatch::Message(id, m)),
                // The connection became the active transport in `process_ws` already.
                Event::Upgraded => {}
                Event::ProbeAborted => close_probe = true,
                Event::Closed(reason) => {
                    self.stats.count_close(reason);
                    self.dispatch.push_back(Dispatch::Close(id, reason))
                }
            }
        }
        let (ws, held_get) = (slot.ws, slot.held_get);
        if close_probe && let Some(token) = slot.probe.take() {
            self.close_ws_gracefully(token, 1000, "");
        }
        // WebSocket transmit.
        if let Some(token) = ws {
            let session = &mut self.sessions[index].session;
            let mut count = 0u64;
            if let Some(conn) = self.conns.get_mut(token.0) {
                // Framed straight into the connection's last buffer: the packets of a tick
                // become one slice of one write.
                conn.out.extend_with(&mut self.pool, |out| {
                    while let Some(p) = session.poll_ws_packet() {
                        count += 1;
                        shared::write_packet_frame(out, &p);
                    }
                });
                self.stats.packets_out += count;
                self.ws_output_queued(token);
            }
        }
        // Polling transmit.
        if let Some(token) = held_get {
            let slot = &mut self.sessions[index];
            if let Some(packets) = slot.session.poll_polling_response() {
                self.stats.packets_out += packets.len() as u64;
                slot.held_get = None;
                slot.answered_tick = self.tick;
                self.answer_held_get(token, &packets);
            }
        }
        let slot = &mut self.sessions[index];
        if slot.session.is_finished(now) {
            self.remove_session(index);
            return;
        }
        if let Some(at) = slot.session.poll_timeout()
            && slot.timer_at.is_none_or(|t| at < t)
        {
            slot.timer_at = Some(at);
            let key = TimerKey::Session(index, slot.generation);
            self.timers.push(Reverse((at, key)));
        }
    }

    /// The one place a session is removed.
    fn remove_session(&mut self, index: usize) {
        if !self.sessions.contains(index) {
            return;
        }
        let slot = self.sessions.remove(index);
        self.sids.remove(&slot.sid);
        for token in [slot.ws, slot.probe].into_iter().flatten() {
            self.close_ws_gracefully(token, 1000, "");
        }
        if let Some(token) = slot.held_get {
            self.answer_held_get(token, &[Packet::Close]);
        }
    }

    fn answer_held_get(&mut self, token: Token, packets: &[Packet]) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let ConnState::HeldGet {
            origin, keep_alive, ..
        } = std::mem::replace(&mut conn.state, ConnState::Http)
        else {
            return;
        };
        let keep_alive = keep_alive && !self.shutting_down;
        let mut body = Vec::new();
        encode_payload(packets, &mut body);
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "text/plain; charset=UTF-8".to_owned(),
        )];
        if let Some(cors) = &self.config.cors {
            cors.add_headers(origin.as_deref(), &mut headers);
        }
        let conn = &mut self.conns[token.0];
        conn.out.extend_with(&mut self.pool, |out| {
            http::write_head(out, 200, &headers, body.len(), keep_alive);
            out.extend_from_slice(&body);
        });
        if !keep_alive {
            conn.close_after_flush = true;
        } else if !conn.inbuf.is_empty() {
            self.reparse.push(token);
        }
        self.queue_flush(token);
        self.arm_idle_deadline(token);
    }

    /// A connection back to waiting for a request gets `head_timeout` for it.
    fn arm_idle_deadline(&mut self, token: Token) {
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

    fn close_ws_gracefully(&mut self, token: Token, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if conn.close_after_flush {
            return;
        }
        if let ConnState::WebSocket { role, .. } = &mut conn.state {
            // Detach: the session no longer counts on this connection.
            *role = WsRole::Doomed;
        }
        conn.out
            .extend_with(&mut self.pool, |out| ws::write_close(out, code, reason));
        conn.close_after_flush = true;
        self.queue_flush(token);
    }

    fn new_session(
        &mut self,
        transport: TransportKind,
        peer: SocketAddr,
        request: Request,
    ) -> Result<SessionKey, RequestError> {
        let sid = loop {
            let mut raw = [0u8; 15];
            // A guessed sid is a hijacked session: only the OS random source will do.
            if getrandom::fill(&mut raw).is_err() {
                log::error!("sioloop: the OS random source failed");
                return Err(RequestError::BadRequest);
            }
            let mut sid = Sid([0; SID_LEN]);
            let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode_slice(raw, &mut sid.0)
                .unwrap_or(0);
            if written == SID_LEN && !self.sids.contains_key(&sid) {
                break sid;
            }
        };
        let json = open_json(
            sid.as_str(),
            self.config.upgrades_for(transport),
            self.config.ping_interval,
            self.config.ping_timeout,
            self.config.max_payload,
        );
        let session = Session::new(transport, self.config.session_config(), json, self.now);
        let generation = self.generation();
        let index = self.sessions.insert(SessionSlot {
            generation,
            sid,
            session,
            handshake: Handshake {
                address: peer,
                request,
                transport,
            },
            ws: None,
            probe: None,
            held_get: None,
            timer_at: None,
            answered_tick: u64::MAX,
            held_by_handler: 0,
        });
        self.sids.insert(sid, index);
        self.stats.sessions_opened += 1;
        let key = SessionKey { index, generation };
        self.dispatch.push_back(Dispatch::Open(key.into()));
        self.dirty_sessions.push(index);
        Ok(key)
    }

    fn session_by_sid(&self, sid: &str) -> Option<SessionKey> {
        let index = *self.sids.get(&Sid::parse(sid)?)?;
        let slot = self.sessions.get(index)?;
        Some(SessionKey {
            index,
            generation: slot.generation,
        })
    }

    // ---- input ---------------------------------------------------------------------------

    fn process_input(&mut self, token: Token) {
        self.parse_input(token);
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.compact_inbuf(&mut self.pool);
        }
    }

    fn parse_input(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            if conn.close_after_flush {
                conn.inbuf.clear();
                return;
            }
            match &conn.state {
                ConnState::Http => {
                    if !self.process_http(token) {
                        return;
                    }
                }
                ConnState::WebSocket { .. } => {
                    if !self.process_ws(token) {
                        return;
                    }
                }
                ConnState::HeldGet { .. } | ConnState::Lingering => return,
            }
        }
    }

    /// Parses one HTTP request from the connection's buffer and answers or routes it.
    /// Returns whether to keep parsing this connection's input.
    fn process_http(&mut self, token: Token) -> bool {
        let conn = &mut self.conns[token.0];
        let parsed = match http::parse_head(&conn.inbuf, &self.config.head_limits) {
            Ok(p) => p,
            Err(e) => {
                let response = Response::new(e.status(), "text/plain", e.to_string());
                self.respond(token, &response, None, false);
                return false;
            }
        };
        let Parsed::Complete {
            mut request,
            head_len,
            body_len,
        } = parsed
        else {
            return false;
        };
        let is_engine = request.path.starts_with(&self.config.path)
            || request.path == self.config.path.trim_end_matches('/');
        if is_engine && body_len > self.config.max_payload {
            // Refuse before buffering it. The connection closes: skipping an unread body
            // is not worth the complexity for a client that broke the limit it was given.
            let origin = request.header("origin").map(str::to_owned);
            if let Some(key) = EngineQuery::parse(&request.query)
                .sid
                .and_then(|sid| self.session_by_sid(sid))
            {
                self.close_session(key.into(), CloseReason::TransportError);
            }
            self.respond_error(token, RequestError::BadRequest, origin.as_deref(), false);
            return false;
        }
        if !is_engine && body_len > self.config.max_payload {
            let response = Response::new(413, "text/plain", "body too large");
            self.respond(token, &response, None, false);
            return false;
        }
        let conn = &mut self.conns[token.0];
        if conn.inbuf.len() < head_len + body_len {
            return false;
        }
        request.body = conn.inbuf[head_len..head_len + body_len].to_vec();
        conn.inbuf.drain(..head_len + body_len);
        if is_engine {
            self.handle_engine_request(token, request);
        } else {
            // Answered by the handler in `settle`; parsing resumes after the response so
            // pipelined responses keep their order.
            self.pending_http.push((token, request));
            return false;
        }
        true
    }

    fn respond(
        &mut self,
        token: Token,
        response: &Response,
        origin: Option<&str>,
        keep_alive: bool,
    ) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let keep_alive = keep_alive && !self.shutting_down;
        let mut response = response.clone();
        if let Some(cors) = &self.config.cors {
            cors.add_headers(origin, &mut response.headers);
        }
        if response.status >= 400 {
            self.stats.requests_refused += 1;
        }
        conn.out
            .extend_with(&mut self.pool, |out| response.write_to(out, keep_alive));
        if !keep_alive {
            conn.close_after_flush = true;
        }
        self.queue_flush(token);
        self.arm_idle_deadline(token);
    }

    fn respond_error(
        &mut self,
        token: Token,
        error: RequestError,
        origin: Option<&str>,
        keep_alive: bool,
    ) {
        let response = Response::new(error.http_status(), "application/json", error.json());
        self.respond(token, &response, origin, keep_alive);
    }

    fn handle_engine_request(&mut self, token: Token, request: Request) {
        let origin = request.header("origin").map(str::to_owned);
        let origin = origin.as_deref();
        let keep_alive = request.keep_alive();
        if request.method == "OPTIONS"
            && let Some(cors) = &self.config.cors
        {
            let response = cors.preflight(&request);
            self.respond(token, &response, None, keep_alive);
            return;
        }
        let query = EngineQuery::parse(&request.query);
        let transport = match query.validate(&self.config.transports) {
            Ok(t) => t,
            Err(e) => return self.respond_error(token, e, origin, keep_alive),
        };
        if let (Some(allowed), Some(o)) = (&self.config.allowed_origins, origin)
            && !allowed.iter().any(|a| a == o)
        {
            let peer = self.conns[token.0].peer;
            if self.may_log_peer(peer.ip()) {
                log::debug!(
                    "sioloop: refused a request from {peer}: origin {}",
                    Clipped(o)
                );
            }
            return self.respond_error(token, RequestError::Forbidden, origin, false);
        }
        if query.sid.is_none() {
            let peer = self.conns[token.0].peer;
            if let Some(AllowRequest(allow)) = self.allow_request.as_mut()
                && !allow(&request, peer)
            {
                return self.respond_error(token, RequestError::Forbidden, origin, false);
            }
        }
        let sid = query.sid.map(str::to_owned);
        let session = match sid.as_deref() {
            Some(sid) => match self.session_by_sid(sid) {
                Some(key) => Some(key),
                None => {
                    return self.respond_error(token, RequestError::UnknownSid, origin, keep_alive);
                }
            },
            None => None,
        };
        if request.is_websocket_upgrade() {
            if transport != TransportKind::WebSocket {
                return self.respond_error(token, RequestError::BadRequest, origin, false);
            }
            return self.handle_ws_upgrade(token, request, session);
        }
        let Some(key) = session else {
            // A handshake.
            if request.method != "GET" {
                return self.respond_error(
                    token,
                    RequestError::BadHandshakeMethod,
                    origin,
                    keep_alive,
                );
            }
            if transport != TransportKind::Polling {
                return self.respond_error(token, RequestError::BadRequest, origin, keep_alive);
            }
            let peer = self.conns[token.0].peer;
            let origin_owned = origin.map(str::to_owned);
            match self.new_session(TransportKind::Polling, peer, request) {
                Ok(key) => {
                    self.sessions[key.index].held_get = Some(token);
                    self.conns[token.0].state = ConnState::HeldGet {
                        session: key,
                        origin: origin_owned,
                        keep_alive,
                    };
                }
                Err(e) => self.respond_error(token, e, origin_owned.as_deref(), false),
            }
            return;
        };
        if transport != TransportKind::Polling {
            return self.respond_error(token, RequestError::BadRequest, origin, keep_alive);
        }
        let now = self.now;
        self.dirty_sessions.push(key.index);
        let slot = &mut self.sessions[key.index];
        match request.method.as_str() {
            "GET" => match slot.session.handle_poll_get(now) {
                Ok(()) => {
                    slot.held_get = Some(token);
                    self.conns[token.0].state = ConnState::HeldGet {
                        session: key,
                        origin: origin.map(str::to_owned),
                        keep_alive,
                    };
                }
                Err(PollError::Closed) => {
                    self.respond_error(token, RequestError::UnknownSid, origin, keep_alive)
                }
                Err(PollError::TransportMismatch | PollError::Overlap) => {
                    self.respond_error(token, RequestError::BadRequest, origin, keep_alive)
                }
            },
            "POST" => {
                match slot.session.check_poll(now) {
                    Ok(()) => {}
                    Err(PollError::Closed) => {
                        return self.respond_error(
                            token,
                            RequestError::UnknownSid,
                            origin,
                            keep_alive,
                        );
                    }
                    Err(_) => {
                        return self.respond_error(
                            token,
                            RequestError::BadRequest,
                            origin,
                            keep_alive,
                        );
                    }
                }
                if !slot.session.is_open() {
                    // Closed but lingering for its last GET: nothing more is accepted.
                    return self.respond_error(token, RequestError::UnknownSid, origin, keep_alive);
                }
                match decode_payload(&request.body, self.config.max_packets_per_payload) {
                    Ok(packets) => {
                        self.stats.packets_in += packets.len() as u64;
                        for packet in packets {
                            slot.session.handle_packet(packet, now);
                        }
                        let response = Response::new(200, "text/html", "ok");
                        self.respond(token, &response, origin, keep_alive);
                    }
                    Err(e) => {
                        slot.session.close(CloseReason::ParseError, now);
                        let peer = slot.handshake.address;
                        if self.may_log_peer(peer.ip()) {
                            log::debug!("sioloop: bad polling payload from {peer}: {e}");
                        }
                        self.respond_error(token, RequestError::BadRequest, origin, keep_alive);
                    }
                }
            }
            _ => self.respond_error(token, RequestError::BadRequest, origin, keep_alive),
        }
    }

    fn handle_ws_upgrade(&mut self, token: Token, request: Request, session: Option<SessionKey>) {
        let origin = request.header("origin").map(str::to_owned);
        let mut accept = Vec::new();
        if ws::accept_upgrade(&request, &[], &mut accept).is_err() {
            return self.respond_error(token, RequestError::BadRequest, origin.as_deref(), false);
        }
        let now = self.now;
        let peer = self.conns[token.0].peer;
        let (key, role) = match session {
            None => match self.new_session(TransportKind::WebSocket, peer, request) {
                Ok(key) => {
                    self.sessions[key.index].ws = Some(token);
                    (key, WsRole::Active)
                }
                Err(e) => return self.respond_error(token, e, origin.as_deref(), false),
            },
            Some(key) => {
                let allowed = self.config.allow_upgrades;
                let slot = &mut self.sessions[key.index];
                if allowed && slot.session.handle_probe_start(now) {
                    slot.probe = Some(token);
                    self.dirty_sessions.push(key.index);
                    (key, WsRole::Probe)
                } else {
                    (key, WsRole::Doomed)
                }
            }
        };
        let conn = &mut self.conns[token.0];
        conn.out.push(&mut self.pool, Chunk::Owned(accept));
        conn.state = ConnState::WebSocket {
            session: key,
            role,
            reader: FrameReader::new(self.config.max_payload),
        };
        self.queue_flush(token);
        if role == WsRole::Doomed {
            // reference: a second WebSocket on an upgraded (or upgrading) session is
            // accepted, then closed.
            self.close_ws_gracefully(token, 1000, "");
        }
    }

    /// Reads one WebSocket event from the buffer. Returns whether to keep going.
    fn process_ws(&mut self, token: Token) -> bool {
        let conn = &mut self.conns[token.0];
        let ConnState::WebSocket {
            session,
            role,
            reader,
        } = &mut conn.state
        else {
            return false;
        };
        let (session, role) = (*session, *role);
        let unread = conn.inbuf.get(conn.inbuf_consumed..).unwrap_or_default();
        let (consumed, event) = match reader.read(unread) {
            Ok(r) => r,
            Err(e) => {
                let peer = conn.peer;
                conn.inbuf.clear();
                conn.inbuf_consumed = 0;
                if self.may_log_peer(peer.ip()) {
                    log::debug!("sioloop: websocket error from {peer}: {e}");
                }
                self.fail_ws(
                    token,
                    session,
                    role,
                    e.close_code(),
                    CloseReason::TransportError,
                );
                return false;
            }
        };
        conn.inbuf_consumed += consumed;
        let Some(event) = event else {
            return consumed > 0;
        };
        let now = self.now;
        let packet = match event {
            WsEvent::Ping(data) => {
                conn.out.extend_with(&mut self.pool, |out| {
                    ws::write_frame(out, FrameKind::Pong, &data)
                });
                self.queue_flush(token);
                return true;
            }
            WsEvent::Pong => return true,
            WsEvent::Close(code) => {
                let code = code.map_or(1000, |(c, _)| c);
                conn.inbuf.clear();
                self.fail_ws(token, session, role, code, CloseReason::TransportClose);
                return false;
            }
            WsEvent::Binary(data) => Packet::Message(Message::Binary(data)),
            WsEvent::Text(text) => match Packet::decode_text_owned(text) {
                Ok(p) => p,
                Err(_) => {
                    conn.inbuf.clear();
                    self.fail_ws(token, session, role, 1000, CloseReason::ParseError);
                    return false;
                }
            },
        };
        self.dirty_sessions.push(session.index);
        self.stats.packets_in += 1;
        let Some(slot) = self.slot_mut(session.into()) else {
            self.close_ws_gracefully(token, 1000, "");
            return false;
        };
        match role {
            WsRole::Active => {
                slot.session.handle_timeout(now);
                slot.session.handle_packet(packet, now);
            }
            WsRole::Probe => match slot.session.handle_probe_packet(packet, now) {
                ProbeReply::Send(reply) => {
                    let conn = &mut self.conns[token.0];
                    conn.out.extend_with(&mut self.pool, |out| {
                        shared::write_packet_frame(out, &reply)
                    });
                    self.queue_flush(token);
                }
                ProbeReply::Upgraded => {
                    // Switch now, not when the session is pumped: the client's next frame may
                    // already be in this same buffer, and it belongs to the active transport.
                    slot.probe = None;
                    slot.ws = Some(token);
                    if let ConnState::WebSocket { role, .. } = &mut self.conns[token.0].state {
                        *role = WsRole::Active;
                    }
                }
                ProbeReply::Abort => {
                    slot.probe = None;
                    self.close_ws_gracefully(token, 1000, "");
                    return false;
                }
            },
            WsRole::Doomed => {}
        }
        true
    }

    /// Ends a WebSocket after a protocol error or the peer's close: answers with a close
    /// frame and tells the session.
    fn fail_ws(
        &mut self,
        token: Token,
        session: SessionKey,
        role: WsRole,
        code: u16,
        reason: CloseReason,
    ) {
        let now = self.now;
        if let Some(slot) = self.slot_mut(session.into()) {
            match role {
                WsRole::Active => {
                    slot.ws = None;
                    slot.session.close(reason, now);
                }
                WsRole::Probe => {
                    slot.probe = None;
                    slot.session.handle_probe_closed();
                }
                WsRole::Doomed => {}
            }
            self.dirty_sessions.push(session.index);
        }
        self.close_ws_gracefully(token, code, "");
    }

    fn handle_pending_http<H: EngineHandler>(&mut self, handler: &mut H) {
        while let Some((token, request)) = self.pending_http.pop() {
            let keep_alive = request.keep_alive();
            let origin = request.header("origin").map(str::to_owned);
            let response = if self.config.metrics_path.as_deref() == Some(request.path.as_str()) {
                let mut text = self.metrics_text();
                handler.metrics(&mut text);
                Response::new(200, "text/plain; version=0.0.4", text)
            } else {
                handler
                    .on_http(&request)
                    .unwrap_or_else(|| Response::new(404, "text/plain", "not found"))
            };
            self.respond(token, &response, origin.as_deref(), keep_alive);
            self.reparse.push(token);
        }
    }
}
