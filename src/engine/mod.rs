//! The driver: the only module that touches the operating system (through a `Transport`,
//! `transport.rs`), the clock and threads.
//!
//! One [`Engine`] owns a transport (mio over TCP, or an in-memory network for tests and
//! fuzzing: [`MemoryNet`]), every connection (in a slab, keyed by its index) and every
//! Engine.IO session (in a second slab, with a `sid` index). Each turn of the loop
//! (`event_loop.rs`):
//!
//! 1. waits until a connection is ready or the nearest timer is due;
//! 2. accepts until `WouldBlock`, and gives each ready connection one bounded slice of
//!    reading and parsing (`conn_io.rs`; what is left waits for the next turn, so one fast
//!    client cannot starve the rest);
//! 3. fires due timers (heartbeats, upgrade and linger deadlines; `timers.rs`);
//! 4. pumps every touched session (`sessions.rs`): its events go to the
//!    [`EngineHandler`], its packets to write queues, until nothing changes;
//! 5. flushes every touched write queue with vectored writes, and keeps the server within
//!    its memory budget (`budget.rs`).
//!
//! HTTP requests are routed in `http_routing.rs`, WebSocket connections are handled in
//! `websocket.rs`. A connection is removed in exactly one place (`close_conn`) and a
//! session in exactly one place (`remove_session`, once the session says it is finished).
//! Anything that keeps a slab index past one turn (a timer, a connection's link to its
//! session) also keeps the slot's generation, so a reused slot is never mistaken for the
//! old one.

mod budget;
mod client_files;
mod config;
mod conn;
mod conn_io;
mod engine_server;
mod event_loop;
mod file_limit;
mod handler;
mod handles;
mod http_routing;
mod memory;
mod sessions;
mod shared;
mod signals;
mod stats;
mod timers;
mod transport;
mod websocket;

pub use config::Config;
pub use engine_server::{Context, EngineServer};
pub use handler::{EngineHandler, Handshake, SessionId};
pub use handles::{ShutdownHandle, WakeHandle};
pub use memory::{ClientId, MemoryNet};
pub use shared::SharedMessages;
pub use stats::EngineStats;

use crate::protocol::engineio::packet::Message;
use crate::protocol::engineio::session::CloseReason;
use crate::protocol::engineio::{RequestError, TransportKind};
use crate::protocol::http::Request;
use base64::Engine as _;
use budget::Budget;
use client_files::ClientFiles;
use conn::{Chunk, Conn, Pool};
use handler::Dispatch;
use handles::Stopper;
use http_routing::{AllowRequest, ConnectionErrorHook, HeadersHook};
use mio::Token;
use sessions::{SessionSlot, Sid};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;
use timers::TimerHeap;
use transport::{MioTransport, Ready, Transport};

/// The length of a session or socket id: 15 random bytes in URL-safe base64.
pub(crate) const ID_LEN: usize = 20;

/// The loop's shared read buffer; a connection keeps only what a parser left over.
const READ_CHUNK: usize = 64 * 1024;

/// The Engine.IO server state and its event loop. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    transport: Box<dyn Transport>,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    sessions: Slab<SessionSlot>,
    sids: HashMap<Sid, usize>,
    timers: TimerHeap,
    next_generation: u32,
    /// Sessions touched this turn, to pump.
    dirty_sessions: Vec<usize>,
    /// Empty buffers and chunk lists handed back by connections, for the next one that
    /// needs one: a broadcast to a thousand clients would otherwise allocate and free a
    /// thousand lists every turn, and an echo several buffers per message.
    pool: Pool,
    /// The list `settle` pumps from, swapped with `dirty_sessions` so neither is reallocated
    /// every round.
    pumping: Vec<usize>,
    /// Connections whose buffered input must be parsed again (a held GET was answered).
    reparse: Vec<Token>,
    /// Connections with output to flush this turn.
    to_flush: Vec<Token>,
    /// Connections that used their share of this turn with input left (in their buffer or
    /// in the socket): they are served first next turn, and the loop does not sleep.
    deferred: Vec<Token>,
    /// What the transport reported ready, reused every turn.
    ready: Vec<Ready>,
    dispatch: VecDeque<Dispatch>,
    /// Requests for other paths, waiting for the handler's `on_http`.
    pending_http: Vec<(Token, Request)>,
    read_buf: Box<[u8]>,
    stopper: Arc<Stopper>,
    /// Set once a shutdown began: responses close their connections.
    shutting_down: bool,
    /// When `run` returns regardless, once a shutdown began.
    shutdown_deadline: Option<Instant>,
    /// Counts loop turns (for `can_send_now`, and a connection's share of a turn).
    tick: u64,
    /// Open connections per IP address (for `max_connections_per_ip`).
    per_ip: HashMap<IpAddr, usize>,
    /// Connections refused at accept that are still sending their `503`.
    refusing: usize,
    /// `accept` last failed for lack of file descriptors: accept again when a connection
    /// closes (`accept_retry`), and when the warning was last logged.
    accept_blocked: bool,
    accept_retry: bool,
    out_of_descriptors_warned: Option<Instant>,
    /// The server-wide memory budget: what is buffered, and who is paused for it.
    budget: Budget,
    stats: EngineStats,
    allow_request: Option<AllowRequest>,
    connection_error: Option<ConnectionErrorHook>,
    initial_headers: Option<HeadersHook>,
    headers: Option<HeadersHook>,
    /// A hook's headers for the answers to held GETs, by connection.
    held_get_headers: HashMap<usize, Vec<(String, String)>>,
    /// The client bundle (`Config::serve_client`), read when the engine was made.
    client_files: ClientFiles,
    /// Rate limit for log lines a client can cause.
    client_log: crate::client_log::PeerLogLimiter,
    now: Instant,
}

impl Engine {
    /// Binds the listening socket and sets up the loop.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Engine> {
        let transport = MioTransport::bind(addr, config.listen_backlog)?;
        if let Some(advice) = file_limit::advice(config.max_connections) {
            log::warn!("sioloop: {advice}");
        }
        Engine::with_transport(Box::new(transport), config)
    }

    /// An engine on an in-memory network instead of sockets, with a fake clock: clients are
    /// byte pipes driven through the returned [`MemoryNet`], and the loop is turned by hand
    /// with [`Engine::turn`]. Everything else (parsers, sessions, timers, limits, the
    /// handler) is the code a real server runs. For tests and fuzzing.
    ///
    /// ```
    /// use sioloop::engine::{Config, Engine, EngineHandler};
    ///
    /// struct Nothing;
    /// impl EngineHandler for Nothing {}
    ///
    /// let (mut engine, net) = Engine::in_memory(Config::default());
    /// let client = net.connect();
    /// net.send(client, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    /// engine.turn(&mut Nothing)?; // accepts the client
    /// engine.turn(&mut Nothing)?; // reads its request, answers it
    /// let answer = String::from_utf8(net.take_output(client)).unwrap();
    /// assert!(answer.starts_with("HTTP/1.1 200 OK"));
    /// assert!(answer.contains("\"pingInterval\":25000"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn in_memory(config: Config) -> (Engine, MemoryNet) {
        let (transport, net) = memory::MemoryTransport::new();
        let engine = Engine::with_transport(Box::new(transport), config);
        // Creating the in-memory transport's waker cannot fail (it has none).
        (engine.unwrap_or_else(|_| unreachable!()), net)
    }

    fn with_transport(transport: Box<dyn Transport>, config: Config) -> io::Result<Engine> {
        let waker = transport.waker()?;
        let now = transport.now();
        let budget = Budget::new(config.max_buffered_bytes);
        let client_files = match &config.client_dir {
            Some(dir) => ClientFiles::load(dir),
            None => ClientFiles::default(),
        };
        Ok(Engine {
            local_addr: transport.local_addr(),
            transport,
            config,
            conns: Slab::new(),
            sessions: Slab::new(),
            sids: HashMap::new(),
            timers: TimerHeap::new(now),
            next_generation: 0,
            dirty_sessions: Vec::new(),
            pumping: Vec::new(),
            pool: Pool::default(),
            reparse: Vec::new(),
            to_flush: Vec::new(),
            deferred: Vec::new(),
            ready: Vec::new(),
            dispatch: VecDeque::new(),
            pending_http: Vec::new(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            stopper: Arc::new(Stopper::new(waker)),
            shutting_down: false,
            shutdown_deadline: None,
            tick: 0,
            per_ip: HashMap::new(),
            refusing: 0,
            accept_blocked: false,
            accept_retry: false,
            out_of_descriptors_warned: None,
            budget,
            stats: EngineStats::default(),
            allow_request: None,
            connection_error: None,
            initial_headers: None,
            headers: None,
            held_get_headers: HashMap::new(),
            client_files,
            client_log: Default::default(),
            now,
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

    /// The driver's clock read now, for work scheduled outside a loop turn (a timer added
    /// before `run`). Inside handlers, [`Engine::now`] is the time to use.
    pub fn clock(&self) -> Instant {
        self.transport.now()
    }

    /// A new id a client must not guess: 15 bytes from the transport's random source in
    /// URL-safe base64, 20 ASCII characters (Engine.IO session ids and Socket.IO socket
    /// ids alike). `None` if the random source failed.
    pub(crate) fn random_id(&mut self) -> Option<[u8; ID_LEN]> {
        let mut raw = [0u8; 15];
        if !self.transport.fill_random(&mut raw) {
            log::error!("sioloop: the random source failed");
            return None;
        }
        let mut id = [0u8; ID_LEN];
        let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(raw, &mut id)
            .unwrap_or(0);
        (written == ID_LEN).then_some(id)
    }

    /// Whether a log line at `level` about something this session's client caused may be
    /// written: at most a few per peer address per second (see `client_log`). Such lines
    /// are `debug`, but for a client's misuse of the application's API (arguments of the
    /// wrong type), which its operator wants to see at `warn`; both share the peer's budget.
    pub(crate) fn may_log_client(&mut self, id: SessionId, level: log::Level) -> bool {
        let Some(peer) = self.slot(id).map(|s| s.handshake.address.ip()) else {
            return false;
        };
        self.may_log_peer_at(peer, level)
    }

    fn may_log_peer(&mut self, peer: IpAddr) -> bool {
        self.may_log_peer_at(peer, log::Level::Debug)
    }

    fn may_log_peer_at(&mut self, peer: IpAddr, level: log::Level) -> bool {
        log::log_enabled!(level) && self.client_log.allow(peer, self.now)
    }

    /// Tells the engine that the handler holds `bytes` on behalf of this session (binary
    /// attachments waiting for the rest of their packet): they count against
    /// [`Config::max_buffered_bytes`], the server-wide memory budget. Each call replaces the
    /// previous figure; a closed session's figure is dropped with it.
    pub fn hold(&mut self, id: SessionId, bytes: usize) {
        if self.slot(id).is_none() {
            return;
        }
        if bytes == 0 {
            self.budget.held_by_handler.remove(&id.index);
        } else {
            self.budget.held_by_handler.insert(id.index, bytes);
        }
        self.account_session(id.index);
    }

    /// Whether a packet sent to the session now goes out this turn rather than waiting
    /// behind a backlog: it runs on a WebSocket whose last flush wrote everything, or on
    /// polling with a GET held (or answered this turn, so the packet rides with the next
    /// one at once). Several packets queued in one turn do not count as a backlog: a game
    /// may send positions and scores in the same tick. Volatile packets are dropped when
    /// this is false.
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
            // The low bits of the turn count (as `Conn::served_tick`).
            (None, None) => slot.answered_tick == self.tick as u32,
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

    /// Sets a hook that sees every Engine.IO request the server refuses, with the peer's
    /// address and the error (its [`code`](RequestError::code) and
    /// [`message`](RequestError::message) are the ones in the response body): an unknown
    /// transport (0), an unknown sid (1), a handshake that is not a GET (2), a bad or
    /// oversized request (3), a forbidden origin or [`Engine::set_allow_request`]'s refusal
    /// (4), an `EIO` other than 4 (5). Node's `io.engine.on("connection_error", ...)`; the
    /// reference's `err.context` has no counterpart. It runs on the loop thread before the
    /// response is written, and cannot change it.
    pub fn set_connection_error(
        &mut self,
        f: impl FnMut(&Request, SocketAddr, RequestError) + 'static,
    ) {
        self.connection_error = Some(ConnectionErrorHook(Box::new(f)));
    }

    /// Sets a hook that adds headers to the answer to every handshake (the polling GET
    /// that opens a session, or a WebSocket's `101`), before [`Engine::set_headers`]'
    /// hook: Node's `initial_headers` event, e.g. for a cookie.
    ///
    /// ```
    /// use sioloop::engine::Config;
    /// use sioloop::Server;
    /// let (mut server, _net) = Server::in_memory(Config::default(), ());
    /// server.initial_headers(|_request, headers| {
    ///     headers.push(("Set-Cookie".into(), "io=1; Path=/; HttpOnly".into()));
    /// });
    /// ```
    pub fn set_initial_headers(
        &mut self,
        f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static,
    ) {
        self.initial_headers = Some(HeadersHook(Box::new(f)));
    }

    /// Sets a hook that adds headers to every transport response: the handshake, each
    /// polling GET and POST answer, and a WebSocket's `101`. Node's `headers` event. Error
    /// responses do not get them (as in Node), nor do `on_http` and metrics responses.
    pub fn set_headers(&mut self, f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static) {
        self.headers = Some(HeadersHook(Box::new(f)));
    }

    /// Bytes buffered now, over every connection and session: what the memory budget
    /// ([`Config::max_buffered_bytes`]) counts. Also served as `sioloop_buffered_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.total()
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

    /// Whether the session speaks Engine.IO protocol 3 (a `socket.io-client@2` client,
    /// accepted with [`Config::allow_eio3`]).
    pub fn is_eio3(&self, id: SessionId) -> bool {
        self.slot(id).is_some_and(|s| s.session.is_v3())
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
            && !slot.session.is_v3()
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
}
