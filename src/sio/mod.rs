//! The Socket.IO server: namespaces, middleware, sockets, events, acks, rooms and
//! broadcasts, on top of the Engine.IO [`Engine`].
//!
//! The loop owns the application's state `S` and every handler gets `&mut` access to it
//! through its context, so a game keeps its world in a plain struct. Handlers run on the
//! loop thread; other threads reach the loop through a [`Handle`].
//!
//! ```no_run
//! use sioloop::sio::{Server, ConnectError};
//! use sioloop::server::Config;
//!
//! #[derive(Default)]
//! struct Chat { messages: u64 }
//!
//! let mut server = Server::bind("127.0.0.1:3000", Config::default(), Chat::default())?;
//! server.of("/")
//!     .use_middleware(|cx| match cx.auth_as::<serde_json::Value>() {
//!         Some(auth) if auth["token"] == "secret" => Ok(()),
//!         _ => Err(ConnectError::new("not authorized")),
//!     })
//!     .on_connect(|cx| { cx.join("lobby"); })
//!     .on("chat", |cx, text: String, _ack| {
//!         cx.state().messages += 1;
//!         cx.to("lobby").except_self().emit("chat", &text);
//!     });
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod args;
mod cx;
mod reason;

pub use args::{Ack, Event};
pub use cx::{ConnectCx, Emitter, Handle, ServerCx, SocketCx, SocketInfo, TimerId};
pub use reason::{AckError, ConnectError, DisconnectReason};

use crate::engineio::{CloseReason, Message};
use crate::http::{Request, Response};
use crate::rooms::RoomIndex;
use crate::server::{Config, Engine, EngineHandler, SessionId, SharedMessages};
use crate::socketio::binary::{Assembler, Complete};
use crate::socketio::packet::{Limits, PacketType};
use crate::socketio::value::Payload;
use args::{EncodedArgs, encode_packet};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use slab::Slab;
use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
// foldhash rather than SipHash for the per-message lookups (client, handler, ack): the keys
// are the server's own ids and names the application registered; its seed is random per
// process all the same.
use foldhash::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Identifies one socket (one client in one namespace) inside the server; stale keys (of
/// disconnected sockets whose slot was reused) are told apart by a generation.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Ord, PartialOrd)]
pub struct SocketKey {
    index: usize,
    generation: u32,
}

/// What an event middleware decides about an incoming event.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Refuse {
    /// Drop the event (it is counted); the socket stays.
    Drop,
    /// Drop the event and disconnect the socket (`server namespace disconnect`).
    Disconnect,
}

type Middleware<S> = Box<dyn FnMut(&mut ConnectCx<'_, S>) -> Result<(), ConnectError>>;
type OnConnect<S> = Box<dyn FnMut(&mut SocketCx<'_, S>)>;
type OnDisconnect<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, DisconnectReason)>;
type OnEvent<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>)>;
type EventMiddleware<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, &Event) -> Result<(), Refuse>>;
type UserTimerFn<S> = Box<dyn FnMut(&mut ServerCx<'_, S>)>;
type AckFn<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>, Result<Payload, AckError>)>;
type GroupAckFn<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>, AckResults)>;
type Command<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>) + Send>;
type NamespaceMatcher = Box<dyn Fn(&str) -> bool>;
type HttpHook = Box<dyn FnMut(&Request) -> Option<Response>>;

/// The handlers of a namespace (shared by the children of a dynamic namespace).
pub struct Namespace<S> {
    middleware: Vec<Middleware<S>>,
    on_connect: Option<OnConnect<S>>,
    on_disconnect: Option<OnDisconnect<S>>,
    events: HashMap<String, OnEvent<S>>,
    any: Option<OnEvent<S>>,
    event_middleware: Vec<EventMiddleware<S>>,
}

impl<S> std::fmt::Debug for Namespace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Namespace<S> {
    fn new() -> Self {
        Namespace {
            middleware: Vec::new(),
            on_connect: None,
            on_disconnect: None,
            events: HashMap::default(),
            any: None,
            event_middleware: Vec::new(),
        }
    }

    /// Adds a connection middleware. Middlewares run in order when a client connects to
    /// the namespace; the first `Err` refuses it with CONNECT_ERROR `{message, data}`.
    /// This is where authentication belongs.
    pub fn use_middleware(
        &mut self,
        f: impl FnMut(&mut ConnectCx<'_, S>) -> Result<(), ConnectError> + 'static,
    ) -> &mut Self {
        self.middleware.push(Box::new(f));
        self
    }

    /// Called when a socket has connected (after the middlewares accepted it).
    pub fn on_connect(&mut self, f: impl FnMut(&mut SocketCx<'_, S>) + 'static) -> &mut Self {
        self.on_connect = Some(Box::new(f));
        self
    }

    /// Called when a socket disconnects, with the reason. The socket's rooms and data are
    /// still readable here.
    pub fn on_disconnect(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, DisconnectReason) + 'static,
    ) -> &mut Self {
        self.on_disconnect = Some(Box::new(f));
        self
    }

    /// Handles an event with typed arguments (see [`Event::deserialize`]). Arguments that
    /// do not deserialize into `T` drop the event, with a log line.
    pub fn on<T: DeserializeOwned + 'static>(
        &mut self,
        event: &str,
        mut f: impl FnMut(&mut SocketCx<'_, S>, T, Option<Ack>) + 'static,
    ) -> &mut Self {
        let name = event.to_owned();
        self.on_raw(event, move |cx, event, ack| {
            match event.deserialize::<T>() {
                Ok(args) => f(cx, args, ack),
                Err(e) => {
                    cx.count_refused();
                    log::info!("sioloop: event {name:?} from {} dropped: {e}", cx.id());
                }
            }
        })
    }

    /// Handles an event with its raw [`Event`] (no parsing of the arguments).
    pub fn on_raw(
        &mut self,
        event: &str,
        f: impl FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>) + 'static,
    ) -> &mut Self {
        self.events.insert(event.to_owned(), Box::new(f));
        self
    }

    /// Handles every event that has no handler of its own.
    pub fn on_any(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>) + 'static,
    ) -> &mut Self {
        self.any = Some(Box::new(f));
        self
    }

    /// Adds an event middleware: it sees every incoming event before its handler and may
    /// refuse it (rate limits and validation plug in here).
    pub fn use_event_middleware(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) -> Result<(), Refuse> + 'static,
    ) -> &mut Self {
        self.event_middleware.push(Box::new(f));
        self
    }
}

/// A namespace that exists: static, or a child created by a dynamic namespace.
#[derive(Debug)]
struct NamespaceState {
    name: String,
    /// Index into `Io::handlers`.
    handlers: usize,
    rooms: RoomIndex<SocketKey>,
    sockets: BTreeSet<SocketKey>,
}

struct SocketEntry {
    generation: u32,
    /// Shared with the room of the socket's own id (one allocation for both).
    id: Arc<str>,
    nsp: usize,
    session: SessionId,
    auth: Option<Box<RawValue>>,
    data: Option<Box<dyn Any>>,
    next_ack_id: u64,
    bucket: Option<Bucket>,
}

struct ClientState {
    sockets: Vec<SocketKey>,
    assembler: Assembler,
    /// Whether a namespace was ever joined (else the connect timeout closes the session).
    connected: bool,
}

enum AckWaiter<S> {
    One(AckFn<S>),
    Group(usize),
}

struct AckGroup<S> {
    generation: u32,
    waiting: HashSet<(SocketKey, u64)>,
    responses: Vec<(String, Payload)>,
    callback: Option<GroupAckFn<S>>,
}

/// The answers to a broadcast with acknowledgement.
#[derive(Debug)]
pub struct AckResults {
    /// The answers that arrived, with the id of the socket that sent each.
    pub responses: Vec<(String, Payload)>,
    /// Whether some recipients did not answer before the timeout.
    pub timed_out: bool,
}

#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
enum Timer {
    Ack(SocketKey, u64),
    Group(usize, u32),
    Connect(SessionId),
    User(u64),
}

struct UserTimer<S> {
    period: Option<Duration>,
    f: UserTimerFn<S>,
}

/// Counters a handler or a [`Handle`] can read.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Stats {
    /// Volatile packets dropped because the client could not take them at once.
    pub volatile_dropped: u64,
    /// Incoming events refused by an event middleware or with bad arguments.
    pub events_refused: u64,
    /// Connections refused by a middleware or for an unknown namespace.
    pub connects_refused: u64,
    /// Incoming events over a socket's rate limit.
    pub events_rate_limited: u64,
    /// Joins refused: too many rooms, a name too long, or refused by the validator.
    pub joins_refused: u64,
    /// Connections to a new dynamic namespace refused because there are too many.
    pub namespaces_refused: u64,
}

/// What happens to an event over a socket's rate limit.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RateLimitAction {
    /// Drop it and count it ([`Stats::events_rate_limited`]).
    Drop,
    /// Disconnect the socket (`server namespace disconnect`).
    Disconnect,
}

/// A token bucket: `per_second` events on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Sustained events per second.
    pub per_second: f64,
    /// The most events at once.
    pub burst: f64,
    /// What to do past the limit.
    pub action: RateLimitAction,
}

/// Socket.IO settings beyond the Engine.IO ones, with their defaults.
#[derive(Clone, Copy, Debug)]
struct SioConfig {
    connect_timeout: Duration,
    max_rooms_per_socket: usize,
    max_room_name_len: usize,
    max_dynamic_namespaces: usize,
    rate_limit: Option<RateLimit>,
}

impl Default for SioConfig {
    fn default() -> Self {
        SioConfig {
            connect_timeout: Duration::from_secs(45),
            max_rooms_per_socket: 128,
            max_room_name_len: 256,
            max_dynamic_namespaces: 1024,
            rate_limit: None,
        }
    }
}

/// A socket's token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes one token if there is one, refilling for the time passed.
    fn take(&mut self, limit: &RateLimit, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

type RoomValidator = Box<dyn Fn(&str) -> bool>;

/// The state handlers act on: everything but the handlers themselves.
pub(crate) struct Core<S> {
    state: S,
    config: SioConfig,
    namespaces: Vec<NamespaceState>,
    nsp_by_name: HashMap<String, usize>,
    sockets: Slab<SocketEntry>,
    clients: HashMap<SessionId, ClientState>,
    acks: HashMap<(SocketKey, u64), AckWaiter<S>>,
    groups: Slab<AckGroup<S>>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Sockets to disconnect once the running handler returns.
    pending_disconnects: Vec<(SocketKey, DisconnectReason, bool)>,
    /// Connections to close after the pending disconnects (so their DISCONNECT packets
    /// are queued before the close).
    pending_connection_closes: Vec<SessionId>,
    new_timers: Vec<(u64, UserTimer<S>)>,
    cancelled_timers: HashSet<u64>,
    next_timer_id: u64,
    generation: u32,
    limits: Limits,
    stats: Stats,
    commands_tx: mpsc::Sender<Command<S>>,
    room_validator: Option<RoomValidator>,
    dynamic_namespaces: usize,
}

/// The Socket.IO layer as an [`EngineHandler`]: the core state plus the handlers.
struct Io<S> {
    core: Core<S>,
    handlers: Vec<Namespace<S>>,
    dynamic: Vec<(NamespaceMatcher, usize)>,
    user_timers: HashMap<u64, UserTimer<S>>,
    http: Option<HttpHook>,
    commands_rx: mpsc::Receiver<Command<S>>,
}

/// A Socket.IO server. See the [module docs](self).
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
        let engine = Engine::bind(addr, config)?;
        let (commands_tx, commands_rx) = mpsc::channel();
        let core = Core {
            state,
            config: SioConfig::default(),
            namespaces: Vec::new(),
            nsp_by_name: HashMap::default(),
            sockets: Slab::new(),
            clients: HashMap::default(),
            acks: HashMap::default(),
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
        };
        Ok(Server {
            engine,
            io: Io {
                core,
                handlers: Vec::new(),
                dynamic: Vec::new(),
                user_timers: HashMap::default(),
                http: None,
                commands_rx,
            },
        })
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

    /// The most child namespaces dynamic namespaces may create (default 1024); past it a
    /// client gets CONNECT_ERROR `Too many namespaces`.
    pub fn max_dynamic_namespaces(&mut self, max: usize) -> &mut Self {
        self.io.core.config.max_dynamic_namespaces = max;
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

    /// The most binary attachments one packet may carry (default 10).
    pub fn max_attachments(&mut self, max: usize) -> &mut Self {
        self.io.core.limits.max_attachments = max;
        self
    }

    /// The handlers of a static namespace, created on first use.
    pub fn of(&mut self, name: &str) -> &mut Namespace<S> {
        let name = normalize_nsp(name);
        let index = match self.io.core.nsp_by_name.get(&name) {
            Some(&i) => self.io.core.namespaces[i].handlers,
            None => {
                let handlers = self.io.handlers.len();
                self.io.handlers.push(Namespace::new());
                self.io.core.add_namespace(name, handlers);
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

    /// Runs until Ctrl-C or [`Handle::shutdown`]; every socket is then disconnected with
    /// `server shutting down`.
    pub fn run(&mut self) -> io::Result<()> {
        self.engine.run(&mut self.io)
    }
}

fn normalize_nsp(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// A socket id: 15 bytes from the engine's random source, in URL-safe base64 (20 chars).
fn random_id(engine: &mut Engine) -> Option<String> {
    let mut raw = [0u8; 15];
    if !engine.fill_random(&mut raw) {
        return None;
    }
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

impl<S> Core<S> {
    fn add_namespace(&mut self, name: String, handlers: usize) -> usize {
        let index = self.namespaces.len();
        self.namespaces.push(NamespaceState {
            name: name.clone(),
            handlers,
            rooms: RoomIndex::default(),
            sockets: BTreeSet::new(),
        });
        self.nsp_by_name.insert(name, index);
        index
    }

    fn socket(&self, key: SocketKey) -> Option<&SocketEntry> {
        self.sockets
            .get(key.index)
            .filter(|s| s.generation == key.generation)
    }

    fn socket_mut(&mut self, key: SocketKey) -> Option<&mut SocketEntry> {
        self.sockets
            .get_mut(key.index)
            .filter(|s| s.generation == key.generation)
    }

    fn add_timer(&mut self, at: Instant, mut timer: UserTimer<S>) -> TimerId {
        // A zero period would re-arm at `now` forever and starve the loop.
        timer.period = timer.period.map(|p| p.max(Duration::from_millis(1)));
        self.next_timer_id += 1;
        let id = self.next_timer_id;
        self.new_timers.push((id, timer));
        self.timers.push(Reverse((at, Timer::User(id))));
        TimerId(id)
    }

    /// Sends an encoded packet and its attachments to one socket's session.
    fn send_to(
        &mut self,
        engine: &mut Engine,
        key: SocketKey,
        text: String,
        attachments: &[Vec<u8>],
        volatile: bool,
    ) -> bool {
        let Some(session) = self.send_target(engine, key, volatile) else {
            return false;
        };
        let mut sent = engine.send(session, Message::Text(text));
        for a in attachments {
            sent &= engine.send(session, Message::Binary(a.clone()));
        }
        sent
    }

    /// Sends messages encoded once for many sockets to one socket's session.
    fn send_shared_to(
        &mut self,
        engine: &mut Engine,
        key: SocketKey,
        shared: &mut SharedMessages,
        volatile: bool,
    ) -> bool {
        let Some(session) = self.send_target(engine, key, volatile) else {
            return false;
        };
        engine.send_shared(session, shared)
    }

    /// The session to send a socket's packet to, if it still exists and (for a volatile
    /// packet) can take it now; a volatile packet it cannot take is counted as dropped.
    fn send_target(
        &mut self,
        engine: &Engine,
        key: SocketKey,
        volatile: bool,
    ) -> Option<SessionId> {
        let session = self.socket(key)?.session;
        if volatile && !engine.can_send_now(session) {
            self.stats.volatile_dropped += 1;
            return None;
        }
        Some(session)
    }

    /// The sockets of namespace `nsp` in any of `rooms` (all its sockets if `rooms` is
    /// empty), minus those in any of `except`.
    fn select(&self, nsp: usize, rooms: &[String], except: &[String]) -> Vec<SocketKey> {
        let Some(ns) = self.namespaces.get(nsp) else {
            return Vec::new();
        };
        if rooms.is_empty() {
            let excluded: HashSet<SocketKey> = except
                .iter()
                .flat_map(|r| ns.rooms.members(r))
                .copied()
                .collect();
            ns.sockets
                .iter()
                .filter(|k| !excluded.contains(k))
                .copied()
                .collect()
        } else {
            ns.rooms.select(rooms, except)
        }
    }

    /// Adds a socket to a room within the limits; a refused join is counted.
    fn join(&mut self, key: SocketKey, room: &str) -> bool {
        let Some(nsp) = self.socket(key).map(|e| e.nsp) else {
            return false;
        };
        let rooms = &self.namespaces[nsp].rooms;
        if rooms.contains(&key, room) {
            return true;
        }
        let allowed = room.len() <= self.config.max_room_name_len
            && rooms.rooms_of(&key).count() < self.config.max_rooms_per_socket
            && self.room_validator.as_ref().is_none_or(|f| f(room));
        if !allowed {
            self.stats.joins_refused += 1;
            log::info!("sioloop: refused a join of room {room:?}");
            return false;
        }
        self.namespaces[nsp].rooms.join(key, room)
    }

    fn next_ack_id(&mut self, key: SocketKey) -> Option<u64> {
        let entry = self.socket_mut(key)?;
        let id = entry.next_ack_id;
        entry.next_ack_id += 1;
        Some(id)
    }
}

impl<S: 'static> Io<S> {
    fn merge_new_timers(&mut self) {
        for (id, timer) in self.core.new_timers.drain(..) {
            self.user_timers.insert(id, timer);
        }
        // Draining a set walks its whole table even when it is empty, and this runs after
        // every handler.
        if !self.core.cancelled_timers.is_empty() {
            for id in self.core.cancelled_timers.drain() {
                self.user_timers.remove(&id);
            }
        }
    }

    /// Runs what handlers asked for while they ran: disconnects, new timers.
    fn after_handler(&mut self, engine: &mut Engine) {
        self.merge_new_timers();
        // In the order they were asked for.
        let disconnects = std::mem::take(&mut self.core.pending_disconnects);
        for (key, reason, notify) in disconnects {
            self.close_socket(engine, key, reason, notify);
        }
        for session in std::mem::take(&mut self.core.pending_connection_closes) {
            engine.close(session);
        }
        self.merge_new_timers();
    }

    fn find_namespace(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.core.nsp_by_name.get(name) {
            return Some(i);
        }
        let handlers = self
            .dynamic
            .iter()
            .find(|(matches, _)| matches(name))
            .map(|(_, h)| *h)?;
        self.core.dynamic_namespaces += 1;
        Some(self.core.add_namespace(name.to_owned(), handlers))
    }

    /// A CONNECT packet: find the namespace, run the middlewares, create the socket.
    fn connect(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        nsp_name: &str,
        auth: Option<Box<RawValue>>,
    ) {
        let already = self.core.clients.get(&session).is_some_and(|c| {
            c.sockets.iter().any(|k| {
                self.core
                    .socket(*k)
                    .is_some_and(|s| self.core.namespaces[s.nsp].name == nsp_name)
            })
        });
        if already {
            return;
        }
        let is_new = !self.core.nsp_by_name.contains_key(nsp_name);
        if is_new
            && self.core.dynamic_namespaces >= self.core.config.max_dynamic_namespaces
            && self.dynamic.iter().any(|(matches, _)| matches(nsp_name))
        {
            self.core.stats.namespaces_refused += 1;
            let text = encode_packet(
                PacketType::ConnectError,
                nsp_name,
                None,
                &[&ConnectError::new("Too many namespaces").to_json()],
                0,
            );
            engine.send(session, Message::Text(text));
            return;
        }
        let Some(nsp) = self.find_namespace(nsp_name) else {
            self.core.stats.connects_refused += 1;
            let text = encode_packet(
                PacketType::ConnectError,
                nsp_name,
                None,
                &[&ConnectError::new("Invalid namespace").to_json()],
                0,
            );
            engine.send(session, Message::Text(text));
            return;
        };
        let handlers = self.core.namespaces[nsp].handlers;
        let mut data: Option<Box<dyn Any>> = None;
        let mut rooms: Vec<String> = Vec::new();
        for mw in self.handlers[handlers].middleware.iter_mut() {
            let mut cx = ConnectCx {
                server: ServerCx {
                    engine,
                    core: &mut self.core,
                },
                session,
                nsp: nsp_name,
                auth: auth.as_deref(),
                data: &mut data,
                rooms: &mut rooms,
            };
            if let Err(e) = mw(&mut cx) {
                self.core.stats.connects_refused += 1;
                let text =
                    encode_packet(PacketType::ConnectError, nsp_name, None, &[&e.to_json()], 0);
                engine.send(session, Message::Text(text));
                self.after_handler(engine);
                return;
            }
        }
        self.after_handler(engine);
        // The session may have closed while the middlewares ran.
        if !self.core.clients.contains_key(&session) {
            return;
        }
        let id = loop {
            let Some(id) = random_id(engine) else {
                log::error!("sioloop: the OS random source failed");
                engine.close(session);
                return;
            };
            // Every socket is in the room of its own id, so the room indexes know every id
            // in use (a scan of all sockets here made connecting quadratic).
            let in_use = self
                .core
                .namespaces
                .iter()
                .any(|ns| ns.rooms.members(&id).next().is_some());
            if !in_use {
                break id;
            }
        };
        self.core.generation = self.core.generation.wrapping_add(1);
        let generation = self.core.generation;
        let id: Arc<str> = Arc::from(id);
        let index = self.core.sockets.insert(SocketEntry {
            generation,
            id: id.clone(),
            nsp,
            session,
            auth,
            data,
            next_ack_id: 0,
            bucket: None,
        });
        let key = SocketKey { index, generation };
        let ns = &mut self.core.namespaces[nsp];
        ns.sockets.insert(key);
        // Every socket is in a room named after its own id.
        ns.rooms.join_shared(key, id.clone());
        for room in rooms {
            self.core.join(key, &room);
        }
        if let Some(client) = self.core.clients.get_mut(&session) {
            // Exactly sized: almost every client joins one namespace, and a first push
            // would reserve room for four.
            client.sockets.reserve_exact(1);
            client.sockets.push(key);
            client.connected = true;
        }
        let sid = serde_json::json!({ "sid": &*id }).to_string();
        let text = encode_packet(PacketType::Connect, nsp_name, None, &[&sid], 0);
        engine.send(session, Message::Text(text));
        if let Some(f) = self.handlers[handlers].on_connect.as_mut() {
            f(&mut SocketCx::new(engine, &mut self.core, key));
        }
        self.after_handler(engine);
    }

    /// The one place a socket is removed: the disconnect handler runs (rooms and data still
    /// readable), then the socket leaves every room, its pending acks fail, and (for a
    /// server-side disconnect) the client is told.
    fn close_socket(
        &mut self,
        engine: &mut Engine,
        key: SocketKey,
        reason: DisconnectReason,
        notify: bool,
    ) {
        let Some(entry) = self.core.socket(key) else {
            return;
        };
        let (nsp, session) = (entry.nsp, entry.session);
        let handlers = self.core.namespaces[nsp].handlers;
        if let Some(f) = self.handlers[handlers].on_disconnect.as_mut() {
            f(&mut SocketCx::new(engine, &mut self.core, key), reason);
        }
        let Some(entry) = self.core.socket(key) else {
            return;
        };
        let _ = entry;
        let entry = self.core.sockets.remove(key.index);
        let ns = &mut self.core.namespaces[nsp];
        ns.rooms.leave_all(&key);
        ns.sockets.remove(&key);
        if let Some(client) = self.core.clients.get_mut(&session) {
            client.sockets.retain(|k| *k != key);
        }
        if notify {
            let text = encode_packet(PacketType::Disconnect, &ns.name, None, &[], 0);
            engine.send(session, Message::Text(text));
        }
        // Pending acks of this socket fail.
        let failed: Vec<(SocketKey, u64)> = self
            .core
            .acks
            .keys()
            .filter(|(k, _)| *k == key)
            .copied()
            .collect();
        for ack in failed {
            self.finish_ack(engine, ack, Err(AckError::Disconnected), &entry.id);
        }
        self.after_handler(engine);
    }

    /// Delivers (or fails) one awaited acknowledgement.
    fn finish_ack(
        &mut self,
        engine: &mut Engine,
        ack: (SocketKey, u64),
        result: Result<Payload, AckError>,
        socket_id: &str,
    ) {
        match self.core.acks.remove(&ack) {
            Some(AckWaiter::One(f)) => {
                f(
                    &mut ServerCx {
                        engine,
                        core: &mut self.core,
                    },
                    result,
                );
            }
            Some(AckWaiter::Group(g)) => {
                let Some(group) = self.core.groups.get_mut(g) else {
                    return;
                };
                group.waiting.remove(&ack);
                if let Ok(payload) = result {
                    group.responses.push((socket_id.to_owned(), payload));
                }
                if group.waiting.is_empty() {
                    self.finish_group(engine, g, false);
                }
            }
            None => return,
        }
        self.after_handler(engine);
    }

    fn finish_group(&mut self, engine: &mut Engine, g: usize, timed_out: bool) {
        if !self.core.groups.contains(g) {
            return;
        }
        let group = self.core.groups.remove(g);
        for ack in &group.waiting {
            self.core.acks.remove(ack);
        }
        if let Some(f) = group.callback {
            let results = AckResults {
                responses: group.responses,
                timed_out: timed_out && !group.waiting.is_empty(),
            };
            f(
                &mut ServerCx {
                    engine,
                    core: &mut self.core,
                },
                results,
            );
        }
    }

    /// Closes every socket of a session and forgets the session.
    fn drop_client(&mut self, engine: &mut Engine, session: SessionId, reason: DisconnectReason) {
        let Some(client) = self.core.clients.remove(&session) else {
            return;
        };
        for key in client.sockets {
            self.close_socket(engine, key, reason, false);
        }
    }

    /// The client broke the protocol: its sockets get `parse error` and the connection closes.
    fn parse_error(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        what: &dyn std::fmt::Display,
    ) {
        if engine.may_log_client(session) {
            log::debug!("sioloop: closing a client after a bad packet: {what}");
        }
        self.drop_client(engine, session, DisconnectReason::ParseError);
        engine.close(session);
    }

    fn socket_in(&self, session: SessionId, nsp_name: &str) -> Option<SocketKey> {
        self.core
            .clients
            .get(&session)?
            .sockets
            .iter()
            .copied()
            .find(|k| {
                self.core
                    .socket(*k)
                    .is_some_and(|s| self.core.namespaces[s.nsp].name == nsp_name)
            })
    }

    /// One complete packet from a client (its attachments, if binary, collected).
    #[allow(clippy::too_many_arguments)]
    fn handle_packet(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        data: Option<Box<RawValue>>,
        attachments: Vec<Vec<u8>>,
    ) {
        match kind {
            PacketType::Connect => self.connect(engine, session, nsp, data),
            PacketType::Disconnect => {
                if let Some(key) = self.socket_in(session, nsp) {
                    self.close_socket(
                        engine,
                        key,
                        DisconnectReason::ClientNamespaceDisconnect,
                        false,
                    );
                }
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(key) = self.socket_in(session, nsp) else {
                    // reference: events for a namespace the client has not joined are ignored.
                    return;
                };
                let Some(data) = data else {
                    return self.parse_error(engine, session, &"event without data");
                };
                let Some(event) = Event::from_payload(Payload::from_raw(data, attachments)) else {
                    return self.parse_error(engine, session, &"event without a name");
                };
                let ack = id.map(|id| Ack { socket: key, id });
                self.dispatch_event(engine, key, event, ack);
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(key) = self.socket_in(session, nsp) else {
                    return;
                };
                let (Some(id), Some(data)) = (id, data) else {
                    return self.parse_error(engine, session, &"ack without id or data");
                };
                let socket_id = self
                    .core
                    .socket(key)
                    .map(|s| s.id.to_string())
                    .unwrap_or_default();
                self.finish_ack(
                    engine,
                    (key, id),
                    Ok(Payload::from_raw(data, attachments)),
                    &socket_id,
                );
            }
            PacketType::ConnectError => {
                self.parse_error(engine, session, &"CONNECT_ERROR from a client")
            }
        }
    }

    fn dispatch_event(
        &mut self,
        engine: &mut Engine,
        key: SocketKey,
        event: Event,
        ack: Option<Ack>,
    ) {
        if let Some(limit) = self.core.config.rate_limit {
            let now = engine.now();
            let Some(entry) = self.core.socket_mut(key) else {
                return;
            };
            let bucket = entry.bucket.get_or_insert(Bucket {
                tokens: limit.burst,
                at: now,
            });
            if !bucket.take(&limit, now) {
                self.core.stats.events_rate_limited += 1;
                if limit.action == RateLimitAction::Disconnect {
                    self.core.pending_disconnects.push((
                        key,
                        DisconnectReason::ServerNamespaceDisconnect,
                        true,
                    ));
                    self.after_handler(engine);
                }
                return;
            }
        }
        let Some(entry) = self.core.socket(key) else {
            return;
        };
        let handlers = self.core.namespaces[entry.nsp].handlers;
        let ns = &mut self.handlers[handlers];
        for mw in ns.event_middleware.iter_mut() {
            let verdict = mw(&mut SocketCx::new(engine, &mut self.core, key), &event);
            match verdict {
                Ok(()) => {}
                Err(Refuse::Drop) => {
                    self.core.stats.events_refused += 1;
                    self.after_handler(engine);
                    return;
                }
                Err(Refuse::Disconnect) => {
                    self.core.stats.events_refused += 1;
                    self.core.pending_disconnects.push((
                        key,
                        DisconnectReason::ServerNamespaceDisconnect,
                        true,
                    ));
                    self.after_handler(engine);
                    return;
                }
            }
        }
        let handler = match ns.events.get_mut(event.name()) {
            Some(h) => Some(h),
            None => ns.any.as_mut(),
        };
        if let Some(h) = handler {
            h(&mut SocketCx::new(engine, &mut self.core, key), event, ack);
        }
        self.after_handler(engine);
    }
}

impl<S: 'static> EngineHandler for Io<S> {
    fn on_open(&mut self, engine: &mut Engine, id: SessionId) {
        self.core.clients.insert(
            id,
            ClientState {
                sockets: Vec::new(),
                assembler: Assembler::new(self.core.limits),
                connected: false,
            },
        );
        let at = engine.now() + self.core.config.connect_timeout;
        self.core.timers.push(Reverse((at, Timer::Connect(id))));
    }

    fn on_message(&mut self, engine: &mut Engine, id: SessionId, message: Message) {
        let Some(client) = self.core.clients.get_mut(&id) else {
            return;
        };
        match message {
            // Decoded in place: the namespace and data stay borrowed from the message until
            // a handler needs them owned.
            Message::Text(text) => match client.assembler.push_text_parts(&text) {
                Ok(Some(parts)) => self.handle_packet(
                    engine,
                    id,
                    parts.kind,
                    parts.nsp,
                    parts.id,
                    parts.data.map(ToOwned::to_owned),
                    Vec::new(),
                ),
                Ok(None) => {}
                Err(e) => self.parse_error(engine, id, &e),
            },
            Message::Binary(data) => match client.assembler.push_binary(data) {
                Ok(Some(Complete {
                    packet,
                    attachments,
                })) => self.handle_packet(
                    engine,
                    id,
                    packet.kind,
                    &packet.nsp,
                    packet.id,
                    packet.data,
                    attachments,
                ),
                Ok(None) => {}
                Err(e) => self.parse_error(engine, id, &e),
            },
        }
    }

    fn on_close(&mut self, engine: &mut Engine, id: SessionId, reason: CloseReason) {
        self.drop_client(engine, id, reason.into());
    }

    fn on_http(&mut self, request: &Request) -> Option<Response> {
        self.http.as_mut().and_then(|f| f(request))
    }

    fn on_wake(&mut self, engine: &mut Engine) {
        while let Ok(command) = self.commands_rx.try_recv() {
            command(&mut ServerCx {
                engine,
                core: &mut self.core,
            });
            self.after_handler(engine);
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.core.timers.peek().map(|Reverse((at, _))| *at)
    }

    fn metrics(&mut self, out: &mut String) {
        use crate::metrics::{self, Kind};
        let name = "sioloop_sockets";
        metrics::header(out, Kind::Gauge, name, "Connected sockets, by namespace.");
        for ns in &self.core.namespaces {
            metrics::labelled(out, name, "nsp", &ns.name, ns.sockets.len() as u64);
        }
        let name = "sioloop_rooms";
        metrics::header(out, Kind::Gauge, name, "Non-empty rooms, by namespace.");
        for ns in &self.core.namespaces {
            metrics::labelled(out, name, "nsp", &ns.name, ns.rooms.room_count() as u64);
        }
        let s = self.core.stats;
        metrics::single(
            out,
            Kind::Counter,
            &[
                (
                    "sioloop_volatile_dropped_total",
                    "Volatile packets dropped.",
                    s.volatile_dropped,
                ),
                (
                    "sioloop_events_refused_total",
                    "Events refused by middleware or bad arguments.",
                    s.events_refused,
                ),
                (
                    "sioloop_events_rate_limited_total",
                    "Events over a socket's rate limit.",
                    s.events_rate_limited,
                ),
                (
                    "sioloop_connects_refused_total",
                    "Namespace connections refused.",
                    s.connects_refused,
                ),
                (
                    "sioloop_joins_refused_total",
                    "Room joins refused by a limit.",
                    s.joins_refused,
                ),
                (
                    "sioloop_namespaces_refused_total",
                    "Dynamic namespaces refused by the limit.",
                    s.namespaces_refused,
                ),
            ],
        );
    }

    fn on_timeout(&mut self, engine: &mut Engine) {
        let now = engine.now();
        while let Some(Reverse((at, timer))) = self.core.timers.peek().copied() {
            if at > now {
                break;
            }
            self.core.timers.pop();
            match timer {
                Timer::Ack(key, id) => {
                    if matches!(self.core.acks.get(&(key, id)), Some(AckWaiter::One(_))) {
                        self.finish_ack(engine, (key, id), Err(AckError::Timeout), "");
                    }
                }
                Timer::Group(g, generation) => {
                    if self
                        .core
                        .groups
                        .get(g)
                        .is_some_and(|gr| gr.generation == generation)
                    {
                        self.finish_group(engine, g, true);
                        self.after_handler(engine);
                    }
                }
                Timer::Connect(session) => {
                    if self
                        .core
                        .clients
                        .get(&session)
                        .is_some_and(|c| !c.connected)
                    {
                        log::debug!("sioloop: no namespace joined in time; closing");
                        self.core.clients.remove(&session);
                        engine.close(session);
                    }
                }
                Timer::User(id) => {
                    let Some(mut timer) = self.user_timers.remove(&id) else {
                        continue;
                    };
                    (timer.f)(&mut ServerCx {
                        engine,
                        core: &mut self.core,
                    });
                    if let Some(period) = timer.period
                        && !self.core.cancelled_timers.remove(&id)
                    {
                        // Fixed rate: the next tick is due a period after this one was,
                        // not after it ran, so a tick loop does not drift.
                        let mut next = at + period;
                        if next <= now {
                            next = now + period;
                        }
                        self.core.timers.push(Reverse((next, Timer::User(id))));
                        self.user_timers.insert(id, timer);
                    }
                    self.after_handler(engine);
                }
            }
        }
    }
}

/// Emitting an event to a set of sockets, encoded once.
pub(crate) fn broadcast<S>(
    core: &mut Core<S>,
    engine: &mut Engine,
    targets: &[SocketKey],
    nsp: &str,
    event: &str,
    args: &EncodedArgs,
    volatile: bool,
) -> usize {
    // Encoded once and framed once; every recipient gets the same bytes.
    let text = args.event_packet(nsp, event, None);
    let mut messages = Vec::with_capacity(1 + args.attachments().len());
    messages.push(Message::Text(text));
    messages.extend(args.attachments().iter().cloned().map(Message::Binary));
    let mut shared = SharedMessages::new(messages);
    let mut sent = 0;
    for key in targets {
        if core.send_shared_to(engine, *key, &mut shared, volatile) {
            sent += 1;
        }
    }
    sent
}
