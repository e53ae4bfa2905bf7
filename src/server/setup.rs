//! [`Server`](super::Server): binding, the Socket.IO settings, registering namespaces and timers, and
//! running the loop.

use super::config::{RateLimit, SioConfig};
use super::core::Core;
use super::dispatch::Io;
use super::namespace::{Namespace, normalize_nsp};
use super::recovery::{RecoveryConfig, RecoveryLog};
use super::timers::UserTimer;
use super::{Handle, ServerCx, Stats, TimerId};
use crate::engine::{Config, Engine, MemoryNet};
use crate::protocol::engineio::RequestError;
use crate::protocol::http::{Request, Response};
use crate::protocol::socketio::packet::Limits;
use foldhash::HashMap;
use slab::Slab;
use std::collections::{BinaryHeap, HashSet};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// A Socket.IO server. See the [crate docs](crate) for an example and where to start.
pub struct Server<S: 'static> {
    engine: Engine,
    io: Io<S>,
}

impl<S: 'static> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.engine.local_addr())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Server<S> {
    /// Binds a server whose handlers share `state`.
    pub fn bind(addr: impl ToSocketAddrs, config: Config, state: S) -> io::Result<Server<S>> {
        Ok(Server::on_engine(Engine::bind(addr, config)?, state))
    }

    /// A server on an in-memory network with a fake clock instead of sockets (see
    /// [`Engine::in_memory`]): clients are driven through the returned [`MemoryNet`], and
    /// the loop is turned by hand with [`Server::turn`]. The engine, the Socket.IO layer and
    /// your handlers are the code a real server runs, so an application's handlers can be
    /// tested without ports or sleeps.
    ///
    /// ```
    /// use sioloop::{Config, Server};
    ///
    /// let (mut server, net) = Server::in_memory(Config::default(), ());
    /// server.of("/").on("hello", |cx, name: String, ack| {
    ///     if let Some(ack) = ack { cx.ack(ack, &format!("hi {name}")); }
    /// });
    /// let client = net.connect();
    /// net.send(client, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n");
    /// for _ in 0..2 { server.turn()?; }
    /// let open = String::from_utf8(net.take_output(client)).unwrap();
    /// let sid = &open[open.find("\"sid\":\"").unwrap() + 7..][..20];
    /// let body = "40\x1e421[\"hello\",\"ann\"]"; // CONNECT to `/`, then an event with ack id 1
    /// let post = format!(
    ///     "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
    ///     body.len()
    /// );
    /// net.send(client, post.as_bytes());
    /// let get = format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n\r\n");
    /// let mut answers = String::new();
    /// for _ in 0..2 {
    ///     net.send(client, get.as_bytes());
    ///     for _ in 0..2 { server.turn()?; }
    ///     answers += &String::from_utf8(net.take_output(client)).unwrap();
    /// }
    /// assert!(answers.contains("\r\n\r\n40{\"sid\":"), "{answers}");
    /// assert!(answers.ends_with("\r\n\r\n431[\"hi ann\"]"), "{answers}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn in_memory(config: Config, state: S) -> (Server<S>, MemoryNet) {
        let (engine, net) = Engine::in_memory(config);
        (Server::on_engine(engine, state), net)
    }

    fn on_engine(engine: Engine, state: S) -> Server<S> {
        let (commands_tx, commands_rx) = mpsc::channel();
        let core = Core {
            state,
            config: SioConfig::default(),
            namespaces: Slab::new(),
            nsp_by_name: HashMap::default(),
            sockets: Slab::new(),
            clients: HashMap::default(),
            acks: Default::default(),
            groups: Slab::new(),
            timers: BinaryHeap::new(),
            pending_disconnects: Vec::new(),
            pending_connection_closes: Vec::new(),
            new_timers: Vec::new(),
            cancelled_timers: HashSet::new(),
            next_timer_id: 0,
            generation: 0,
            limits: Limits::default(),
            stats: Stats::default(),
            commands_tx,
            room_validator: None,
            dynamic_namespaces: 0,
            any_listeners: HashMap::default(),
            next_listener_id: 0,
            recovery: None,
        };
        Server {
            engine,
            io: Io {
                core,
                handlers: Vec::new(),
                dynamic: Vec::new(),
                user_timers: HashMap::default(),
                http: None,
                commands_rx,
            },
        }
    }

    /// The Engine.IO engine underneath: its counters, sessions and connections.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// One turn of the loop (see [`Engine::turn`]); false once a shutdown has finished.
    /// `run` is this in a loop, with Ctrl-C and SIGTERM caught.
    pub fn turn(&mut self) -> io::Result<bool> {
        self.engine.turn(&mut self.io)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.engine.local_addr()
    }

    /// How long a client may stay connected without joining any namespace (default 45 s,
    /// as the reference server).
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.io.core.config.connect_timeout = timeout;
        self
    }

    /// Turns on connection state recovery (`connectionStateRecovery` of the reference
    /// server): a socket whose connection drops (`transport close`, `ping timeout`, ...;
    /// see [`DisconnectReason::is_recoverable`]) and that comes back within
    /// [`RecoveryConfig::max_disconnection_duration`] is the same socket again: same id,
    /// same rooms, same data, and every event it missed, in order, before anything new;
    /// [`SocketCx::recovered`] is true in the connect handler. The official clients do
    /// their part with no option.
    ///
    /// With it on, the CONNECT answer carries a private session id (`pid`) and every event
    /// that is neither volatile nor waiting for an ack carries an offset as its last
    /// argument (the client's handlers see it, as with the reference server). Events are
    /// logged once per emit, not per recipient, within
    /// [`RecoveryConfig::max_buffered_bytes`]. A clean `disconnect()` from either side is
    /// never recovered. Sockets connected before it was turned on are not recoverable.
    ///
    /// ```
    /// use sioloop::{RecoveryConfig, Server};
    ///
    /// let (mut server, _net) = Server::in_memory(Default::default(), ());
    /// server.connection_state_recovery(RecoveryConfig::default()); // 2 minutes
    /// ```
    ///
    /// [`DisconnectReason::is_recoverable`]: super::DisconnectReason::is_recoverable
    /// [`SocketCx::recovered`]: super::SocketCx::recovered
    pub fn connection_state_recovery(&mut self, config: RecoveryConfig) -> &mut Self {
        match self.io.core.recovery.as_deref_mut() {
            Some(log) => log.config = config,
            None => self.io.core.recovery = Some(Box::new(RecoveryLog::new(config))),
        }
        self
    }

    /// The most rooms one socket may be in, its own id room included (default 128).
    pub fn max_rooms_per_socket(&mut self, max: usize) -> &mut Self {
        self.io.core.config.max_rooms_per_socket = max;
        self
    }

    /// The longest room name, in bytes (default 256).
    pub fn max_room_name_len(&mut self, max: usize) -> &mut Self {
        self.io.core.config.max_room_name_len = max;
        self
    }

    /// An application check on room names; a join it refuses is counted and ignored.
    pub fn validate_room(&mut self, f: impl Fn(&str) -> bool + 'static) -> &mut Self {
        self.io.core.room_validator = Some(Box::new(f));
        self
    }

    /// The most child namespaces of dynamic namespaces alive at once (default 1024); past it
    /// a client gets CONNECT_ERROR `Too many namespaces`. A child is created only once the
    /// dynamic namespace's middlewares accept a client, and (see
    /// [`Server::cleanup_empty_child_namespaces`]) removed when its last socket leaves.
    pub fn max_dynamic_namespaces(&mut self, max: usize) -> &mut Self {
        self.io.core.config.max_dynamic_namespaces = max;
        self
    }

    /// The longest namespace name a client may ask for that does not exist yet, in bytes
    /// (default 256). A longer one gets CONNECT_ERROR `Namespace name too long` (counted in
    /// [`Stats::connects_refused`]) before any dynamic namespace's matcher sees it.
    pub fn max_namespace_name_len(&mut self, max: usize) -> &mut Self {
        self.io.core.config.max_namespace_name_len = max;
        self
    }

    /// Whether a child namespace of a dynamic namespace is removed when its last socket
    /// leaves (default `true`; the reference server's `cleanupEmptyChildNamespaces`, off
    /// there by default). A removed child is created again by the next client the dynamic
    /// namespace's middlewares accept, with the same handlers; its rooms start empty.
    pub fn cleanup_empty_child_namespaces(&mut self, cleanup: bool) -> &mut Self {
        self.io.core.config.cleanup_empty_child_namespaces = cleanup;
        self
    }

    /// Limits incoming events per socket with a token bucket (default: no limit).
    pub fn rate_limit(&mut self, limit: RateLimit) -> &mut Self {
        self.io.core.config.rate_limit = Some(limit);
        self
    }

    /// Sees every handshake request (headers, address); `false` refuses it with `403` and
    /// Engine.IO code 4 `Forbidden`, like the reference `allowRequest`.
    pub fn allow_request(
        &mut self,
        f: impl FnMut(&Request, SocketAddr) -> bool + 'static,
    ) -> &mut Self {
        self.engine.set_allow_request(f);
        self
    }

    /// Sees every Engine.IO request the server refuses (unknown transport or sid, bad
    /// handshake method, bad request, forbidden, unsupported `EIO`), with the peer's
    /// address and the error's code and message: Node's
    /// `io.engine.on("connection_error", ...)`. See [`Engine::set_connection_error`].
    ///
    /// ```
    /// use sioloop::{Config, Server};
    /// let (mut server, _net) = Server::in_memory(Config::default(), ());
    /// server.connection_error(|request, peer, error| {
    ///     eprintln!("{peer} {}: {} {}", request.path, error.code(), error.message());
    /// });
    /// ```
    pub fn connection_error(
        &mut self,
        f: impl FnMut(&Request, SocketAddr, RequestError) + 'static,
    ) -> &mut Self {
        self.engine.set_connection_error(f);
        self
    }

    /// Adds headers to the answer to every handshake: Node's `initial_headers` event (e.g.
    /// a cookie). See [`Engine::set_initial_headers`].
    pub fn initial_headers(
        &mut self,
        f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static,
    ) -> &mut Self {
        self.engine.set_initial_headers(f);
        self
    }

    /// Adds headers to every transport response (handshake, polling GET and POST, the
    /// WebSocket upgrade): Node's `headers` event. See [`Engine::set_headers`].
    pub fn headers(
        &mut self,
        f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static,
    ) -> &mut Self {
        self.engine.set_headers(f);
        self
    }

    /// How long a binary packet (BINARY_EVENT, BINARY_ACK) may wait for its attachments
    /// (default 10 s). A client that announces attachments and does not send them all in
    /// time is closed with `parse error`, and it is counted in
    /// [`Stats::attachments_timed_out`]. What a client has sent of a packet so far counts
    /// against [`Config::max_buffered_bytes`].
    pub fn attachments_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.io.core.config.attachments_timeout = timeout;
        self
    }

    /// The most binary attachments one packet may carry (default 10).
    pub fn max_attachments(&mut self, max: usize) -> &mut Self {
        self.io.core.limits.max_attachments = max;
        self
    }

    /// The handlers of a static namespace, created on first use.
    pub fn of(&mut self, name: &str) -> &mut Namespace<S> {
        let name = normalize_nsp(name);
        let index = match self.io.core.namespace_named(&name) {
            Some(ns) => ns.handlers,
            None => {
                let handlers = self.io.handlers.len();
                self.io.handlers.push(Namespace::new());
                self.io.core.add_namespace(name, handlers, false);
                handlers
            }
        };
        &mut self.io.handlers[index]
    }

    /// A dynamic namespace: a client connecting to a name no static namespace has, and for
    /// which `matches` is true, gets a child namespace of that name with these handlers.
    pub fn dynamic(&mut self, matches: impl Fn(&str) -> bool + 'static) -> &mut Namespace<S> {
        let handlers = self.io.handlers.len();
        self.io.handlers.push(Namespace::new());
        self.io.dynamic.push((Box::new(matches), handlers));
        &mut self.io.handlers[handlers]
    }

    /// Runs `f` every `period` on the loop (a game tick).
    pub fn every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut ServerCx<'_, S>) + 'static,
    ) -> TimerId {
        let id = self.io.core.add_timer(
            self.engine.clock() + period,
            UserTimer {
                period: Some(period),
                f: Box::new(f),
            },
        );
        self.io.merge_new_timers();
        id
    }

    /// Answers HTTP requests for paths other than the Engine.IO path (a page, a health
    /// check). `None` answers 404.
    pub fn on_http(&mut self, f: impl FnMut(&Request) -> Option<Response> + 'static) -> &mut Self {
        self.io.http = Some(Box::new(f));
        self
    }

    /// A `Send + Clone` handle to reach the loop from other threads.
    pub fn handle(&self) -> Handle<S> {
        Handle::new(
            self.io.core.commands_tx.clone(),
            self.engine.wake_handle(),
            self.engine.shutdown_handle(),
        )
    }

    /// The application state (before or after `run`).
    pub fn state(&mut self) -> &mut S {
        &mut self.io.core.state
    }

    /// Runs until Ctrl-C, SIGTERM or [`Handle::shutdown`]; every socket is then disconnected
    /// with `server shutting down`. The signals are caught only while it runs (afterwards
    /// they do what they did before), and not at all with
    /// [`Config::shutdown_on_signals`] off.
    pub fn run(&mut self) -> io::Result<()> {
        self.engine.run(&mut self.io)
    }
}
