//! The state handlers act on (`Core`): namespaces, sockets, clients, acks, timers and
//! counters, with the helpers every part of the layer shares: looking a socket up,
//! selecting sockets by room, joining a room within the limits, and sending.

use super::acks::{AckGroup, PendingAcks};
use super::args::EncodedArgs;
use super::config::{Bucket, RoomValidator, SioConfig};
use super::recovery::{Recipients, RecoveryLog};
use super::timers::{Timer, UserTimer};
use super::{DisconnectReason, Event, ServerCx, SocketCx, Stats};
use crate::client_log::Clipped;
use crate::engine::{Engine, SessionId, SharedMessages};
use crate::protocol::engineio::Message;
use crate::protocol::socketio::binary::Assembler;
use crate::protocol::socketio::packet::Limits;
use crate::rooms::RoomIndex;
use serde_json::value::RawValue;
use slab::Slab;
use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
use std::fmt;
// foldhash rather than SipHash for the per-message lookups (client, handler, ack): the keys
// are the server's own ids and names the application registered; its seed is random per
// process all the same.
use foldhash::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

/// Identifies one socket (one client in one namespace) inside the server; stale keys (of
/// disconnected sockets whose slot was reused) are told apart by a generation.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Ord, PartialOrd)]
pub struct SocketKey {
    pub(super) index: usize,
    pub(super) generation: u32,
}

/// A closure sent to the loop by a [`Handle`](super::Handle).
pub(super) type Command<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>) + Send>;

/// Identifies a namespace that exists in `Core::namespaces`. Child namespaces are removed
/// when their last socket leaves and their slot is reused, so the key carries a generation:
/// a stale key finds nothing rather than another namespace.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub(super) struct NspKey {
    /// The slab index, as `u32`: every socket keeps its namespace's key, and namespaces are
    /// far fewer than 4 billion (`max_dynamic_namespaces` bounds the children).
    index: u32,
    generation: u32,
}

impl NspKey {
    fn slot(self) -> usize {
        self.index as usize
    }
}

/// A namespace that exists: static, or a child created by a dynamic namespace.
#[derive(Debug)]
pub(super) struct NamespaceState {
    generation: u32,
    pub(super) name: String,
    /// A child of a dynamic namespace: removed once empty (unless the application turned
    /// that off), and counted against `max_dynamic_namespaces` while it lives.
    pub(super) child: bool,
    /// Index into `Io::handlers`.
    pub(super) handlers: usize,
    pub(super) rooms: RoomIndex<SocketKey>,
    pub(super) sockets: BTreeSet<SocketKey>,
}

pub(super) struct SocketEntry {
    pub(super) generation: u32,
    /// Shared with the room of the socket's own id (one allocation for both).
    pub(super) id: Arc<str>,
    pub(super) nsp: NspKey,
    pub(super) session: SessionId,
    pub(super) auth: Option<Box<RawValue>>,
    pub(super) data: SocketData,
    pub(super) next_ack_id: u64,
    pub(super) bucket: Option<Bucket>,
    /// Events with arguments that did not fit their handler's type (for the log's rate).
    pub(super) invalid_events: u32,
    /// Connection state recovery's part (`None` when it is off: a pointer, not the
    /// fields, so sockets of a server without it pay 8 bytes each).
    pub(super) recovery: Option<Box<SocketRecovery>>,
    /// Whether this socket is a dropped one come back (connection state recovery).
    pub(super) recovered: bool,
}

/// What connection state recovery keeps of a connected socket.
pub(super) struct SocketRecovery {
    /// The private session id the client comes back with.
    pub(super) pid: Box<str>,
    /// The recovery log's next offset when the socket was made.
    pub(super) first_offset: u64,
}

/// A socket's data: one value of each type, keyed by its `TypeId`. Most sockets hold one
/// or two, so a short list beats a map (and costs nothing until the first value).
#[derive(Default)]
pub(crate) struct SocketData {
    values: Vec<Box<dyn Any>>,
}

impl SocketData {
    fn position<T: 'static>(&self) -> Option<usize> {
        // `**v`: the boxed value, not the `Box` (a `Box<dyn Any>` is itself `Any`).
        self.values.iter().position(|v| (**v).is::<T>())
    }

    pub(super) fn get<T: 'static>(&self) -> Option<&T> {
        self.values.get(self.position::<T>()?)?.downcast_ref()
    }

    pub(super) fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let at = self.position::<T>()?;
        self.values.get_mut(at)?.downcast_mut()
    }

    /// Sets the value of type `T`, replacing the one there was.
    pub(super) fn insert<T: 'static>(&mut self, value: T) {
        match self.position::<T>() {
            Some(at) => self.values[at] = Box::new(value),
            None => self.values.push(Box::new(value)),
        }
    }

    pub(super) fn remove<T: 'static>(&mut self) -> Option<T> {
        let at = self.position::<T>()?;
        self.values.swap_remove(at).downcast().ok().map(|b| *b)
    }
}

/// A listener of every event of one socket, incoming (`onAny`) or outgoing
/// (`onAnyOutgoing`). Shared so that a run can work on a snapshot of the list, as the
/// reference server does: listeners added or removed by a listener count from the next
/// event on.
pub(super) type AnyListener<S> = Rc<RefCell<dyn FnMut(&mut SocketCx<'_, S>, &Event)>>;

/// One socket's [`AnyListener`]s, each with its id, in the order they run.
pub(super) struct AnyListeners<S> {
    pub(super) incoming: Vec<(u64, AnyListener<S>)>,
    pub(super) outgoing: Vec<(u64, AnyListener<S>)>,
    /// The outgoing listeners are running further up the stack: what they emit to this
    /// socket does not run them again.
    outgoing_running: bool,
}

impl<S> Default for AnyListeners<S> {
    fn default() -> Self {
        AnyListeners {
            incoming: Vec::new(),
            outgoing: Vec::new(),
            outgoing_running: false,
        }
    }
}

/// Runs a socket's listeners of every incoming (or outgoing) event on `event`.
pub(super) fn notify_any<S: 'static>(
    engine: &mut Engine,
    core: &mut Core<S>,
    key: SocketKey,
    event: &Event,
    outgoing: bool,
) {
    let Some(listeners) = core.any_listeners.get_mut(&key) else {
        return;
    };
    let list = if outgoing {
        // An event the socket's outgoing listeners emit to it does not run them again:
        // each runs once per event from outside them. (Skipping only the one emitting
        // ran the others inside it, and so on down: every ordering of them, a hang with a
        // dozen.)
        if listeners.outgoing_running {
            return;
        }
        listeners.outgoing_running = true;
        &listeners.outgoing
    } else {
        &listeners.incoming
    };
    let snapshot: Vec<AnyListener<S>> = list.iter().map(|(_, l)| Rc::clone(l)).collect();
    for listener in snapshot {
        // Busy: it is running further up the stack; it is not run again inside itself.
        if let Ok(mut f) = listener.try_borrow_mut() {
            f(&mut SocketCx::new(engine, core, key), event);
        }
    }
    if outgoing && let Some(listeners) = core.any_listeners.get_mut(&key) {
        listeners.outgoing_running = false;
    }
}

pub(super) struct ClientState {
    pub(super) sockets: Vec<SocketKey>,
    pub(super) assembler: Assembler,
    /// Counts the binary packets the assembler started: an attachments deadline names the
    /// packet it is for, so it does nothing once a later one took its place. (A number, not
    /// the deadline itself: every client has this, and an `Instant` is four times larger.)
    pub(super) binary_packets: u32,
    /// Whether a namespace was ever joined (else the connect timeout closes the session).
    pub(super) connected: bool,
}

/// The state handlers act on: everything but the handlers themselves.
pub(crate) struct Core<S> {
    pub(super) state: S,
    pub(super) config: SioConfig,
    pub(super) namespaces: Slab<NamespaceState>,
    pub(super) nsp_by_name: HashMap<String, NspKey>,
    pub(super) sockets: Slab<SocketEntry>,
    pub(super) clients: HashMap<SessionId, ClientState>,
    pub(super) acks: PendingAcks<S>,
    pub(super) groups: Slab<AckGroup<S>>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Sockets to disconnect once the running handler returns.
    pub(super) pending_disconnects: Vec<(SocketKey, DisconnectReason, bool)>,
    /// Connections to close after the pending disconnects (so their DISCONNECT packets
    /// are queued before the close).
    pub(super) pending_connection_closes: Vec<SessionId>,
    pub(super) new_timers: Vec<(u64, UserTimer<S>)>,
    pub(super) cancelled_timers: HashSet<u64>,
    pub(super) next_timer_id: u64,
    pub(super) generation: u32,
    pub(super) limits: Limits,
    pub(super) stats: Stats,
    pub(super) commands_tx: mpsc::Sender<Command<S>>,
    pub(super) room_validator: Option<RoomValidator>,
    /// Child namespaces alive now (what `max_dynamic_namespaces` bounds).
    pub(super) dynamic_namespaces: usize,
    /// The listeners of every event that sockets added (`SocketCx::on_any`...), by socket;
    /// most sockets have none, and then cost nothing here.
    pub(super) any_listeners: HashMap<SocketKey, AnyListeners<S>>,
    pub(super) next_listener_id: u64,
    /// Connection state recovery, when the application turned it on.
    pub(super) recovery: Option<Box<RecoveryLog>>,
}

impl<S> Core<S> {
    /// Adds a namespace (`child`: created by a dynamic namespace, see [`NamespaceState`]).
    pub(super) fn add_namespace(&mut self, name: String, handlers: usize, child: bool) -> NspKey {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let index = self.namespaces.insert(NamespaceState {
            generation,
            name: name.clone(),
            child,
            handlers,
            rooms: RoomIndex::default(),
            sockets: BTreeSet::new(),
        });
        let key = NspKey {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            generation,
        };
        self.nsp_by_name.insert(name, key);
        if child {
            self.dynamic_namespaces += 1;
            self.stats.namespaces_created += 1;
        }
        key
    }

    /// Removes a child namespace that has no sockets left (if the application did not turn
    /// that off), so an abandoned name costs nothing and does not count against the limit.
    pub(super) fn remove_if_empty_child(&mut self, key: NspKey) {
        let removable = self.config.cleanup_empty_child_namespaces
            && self
                .namespace(key)
                .is_some_and(|ns| ns.child && ns.sockets.is_empty());
        if !removable {
            return;
        }
        let ns = self.namespaces.remove(key.slot());
        self.nsp_by_name.remove(&ns.name);
        self.dynamic_namespaces -= 1;
        self.stats.namespaces_removed += 1;
    }

    /// Whether a socket of the namespace has the id `id`. Every socket is in the room of
    /// its own id, so the namespace's room index knows every id in use there: one lookup.
    pub(super) fn id_in_use(&self, nsp: NspKey, id: &str) -> bool {
        self.namespace(nsp)
            .is_some_and(|ns| ns.rooms.members(id).next().is_some())
    }

    pub(super) fn namespace(&self, key: NspKey) -> Option<&NamespaceState> {
        self.namespaces
            .get(key.slot())
            .filter(|ns| ns.generation == key.generation)
    }

    pub(super) fn namespace_mut(&mut self, key: NspKey) -> Option<&mut NamespaceState> {
        self.namespaces
            .get_mut(key.slot())
            .filter(|ns| ns.generation == key.generation)
    }

    /// The namespace called `name`, if it exists.
    pub(super) fn namespace_named(&self, name: &str) -> Option<&NamespaceState> {
        self.namespace(*self.nsp_by_name.get(name)?)
    }

    pub(super) fn socket(&self, key: SocketKey) -> Option<&SocketEntry> {
        self.sockets
            .get(key.index)
            .filter(|s| s.generation == key.generation)
    }

    pub(super) fn socket_mut(&mut self, key: SocketKey) -> Option<&mut SocketEntry> {
        self.sockets
            .get_mut(key.index)
            .filter(|s| s.generation == key.generation)
    }

    /// Sends an encoded packet and its attachments to one socket's session.
    pub(super) fn send_to(
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
    pub(super) fn send_shared_to(
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
    pub(super) fn send_target(
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
    pub(super) fn select(
        &self,
        nsp: Option<NspKey>,
        rooms: &[String],
        except: &[String],
    ) -> Vec<SocketKey> {
        let Some(ns) = nsp.and_then(|key| self.namespace(key)) else {
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

    /// Adds a socket to a room within the limits; a refused join is counted (and logged at
    /// `debug`, within the per-peer budget: the room name may come from the client).
    pub(super) fn join(&mut self, engine: &mut Engine, key: SocketKey, room: &str) -> bool {
        let Some((nsp, session)) = self.socket(key).map(|e| (e.nsp, e.session)) else {
            return false;
        };
        let Some(rooms) = self.namespace(nsp).map(|ns| &ns.rooms) else {
            return false;
        };
        if rooms.contains(&key, room) {
            return true;
        }
        let allowed = room.len() <= self.config.max_room_name_len
            && rooms.rooms_of(&key).count() < self.config.max_rooms_per_socket
            && self.room_validator.as_ref().is_none_or(|f| f(room));
        if !allowed {
            self.stats.joins_refused += 1;
            if engine.may_log_client(session, log::Level::Debug) {
                log::debug!(
                    "sioloop: refused a join of room {} by {}",
                    Clipped(room),
                    Peer::of(engine, session)
                );
            }
            return false;
        }
        self.namespace_mut(nsp)
            .is_some_and(|ns| ns.rooms.join(key, room))
    }

    /// Logs an emit for connection state recovery and makes sure a sweep will expire it.
    pub(super) fn record_for_recovery(
        &mut self,
        now: Instant,
        offset: u64,
        nsp: String,
        to: Recipients,
        messages: Vec<Message>,
    ) {
        if let Some(log) = self.recovery.as_deref_mut() {
            self.stats.recovery_log_evicted += log.record(now, offset, nsp, to, messages);
            self.schedule_recovery_sweep(now);
        }
    }

    /// Schedules the sweep of expired recovery state, if one is due and none is scheduled.
    /// A sweep runs at most once a second: entries may outlive their time by that much,
    /// and a busy log does not fire a timer every turn.
    pub(super) fn schedule_recovery_sweep(&mut self, now: Instant) {
        let Some(log) = self.recovery.as_deref_mut() else {
            return;
        };
        if log.sweep_at.is_some() {
            return;
        }
        if let Some(at) = log.next_expiry() {
            let at = at.max(now + std::time::Duration::from_secs(1));
            log.sweep_at = Some(at);
            self.timers.push(Reverse((at, Timer::Recovery)));
        }
    }

    pub(super) fn next_ack_id(&mut self, key: SocketKey) -> Option<u64> {
        let entry = self.socket_mut(key)?;
        let id = entry.next_ack_id;
        entry.next_ack_id += 1;
        Some(id)
    }
}

/// A client's address for a log line (`?` once its session is gone).
pub(super) struct Peer(pub(super) Option<std::net::SocketAddr>);

impl Peer {
    pub(super) fn of(engine: &Engine, session: SessionId) -> Peer {
        Peer(engine.handshake(session).map(|h| h.address))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => write!(f, "{address}"),
            None => f.write_str("?"),
        }
    }
}

/// Emitting an event to a set of sockets, encoded once. `to` is who the emit was for, as
/// connection state recovery logs it (with recovery on, every emit that is not volatile
/// carries an offset and is logged).
#[allow(clippy::too_many_arguments)]
pub(crate) fn broadcast<S>(
    core: &mut Core<S>,
    engine: &mut Engine,
    targets: &[SocketKey],
    nsp: String,
    event: &str,
    args: &EncodedArgs,
    volatile: bool,
    to: Recipients,
) -> usize {
    let logged = match core.recovery.as_deref_mut() {
        // An emit that reaches nobody now is logged only if a dropped socket may want it.
        Some(log) if !volatile && (!targets.is_empty() || log.has_kept_sessions()) => {
            Some(log.take_offset())
        }
        _ => None,
    };
    // Encoded once and framed once; every recipient gets the same bytes.
    let text = match &logged {
        Some((_, offset)) => args.event_packet_with_offset(&nsp, event, offset),
        None => args.event_packet(&nsp, event, None),
    };
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
    if let Some((offset, _)) = logged {
        let now = engine.now();
        core.record_for_recovery(now, offset, nsp, to, shared.into_messages());
    }
    sent
}

#[cfg(test)]
mod tests {
    use crate::Server;

    /// Outgoing listeners that emit to their own socket run once each per event (found by
    /// the fuzz target `driver`: a socket with a dozen of them ran them once per ordering,
    /// billions of times, and the loop hung).
    #[test]
    fn outgoing_listeners_that_emit_to_their_socket_run_once_each() {
        let (mut server, net) = Server::in_memory(Default::default(), 0u64);
        server.of("/").on_connect(|cx| {
            for _ in 0..8 {
                cx.on_any_outgoing(|cx, _| {
                    *cx.state() += 1;
                    cx.emit("out", &1);
                });
            }
            cx.emit("hello", &1);
        });
        let client = net.connect();
        net.send(
            client,
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        for _ in 0..2 {
            server.turn().expect("turn");
        }
        let out = String::from_utf8(net.take_output(client)).expect("text");
        let at = out.find("\"sid\":\"").expect("a handshake") + 7;
        let sid = &out[at..at + 20];
        let post = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\
             Content-Length: 2\r\n\r\n40"
        );
        net.send(client, post.as_bytes());
        for _ in 0..2 {
            server.turn().expect("turn");
        }
        // Each of the 8 ran on "hello"; none ran on another's "out".
        assert_eq!(*server.state(), 8);
    }
}
