//! What handlers get: contexts with `&mut` access to the state, and the emit builder.

use super::acks::{AckGroup, AckWaiter};
use super::args::{EncodedArgs, ack_packet};
use super::core::{
    AnyListener, Command, Core, NspKey, Peer, SocketData, SocketEntry, broadcast, notify_any,
};
use super::namespace::normalize_nsp;
use super::recovery::Recipients;
use super::timers::{Timer, UserTimer};
use super::{Ack, AckError, AckResults, DisconnectReason, Event, SocketKey, Stats};
use crate::engine::{Engine, EngineStats, Handshake, SessionId, ShutdownHandle, WakeHandle};
use crate::protocol::socketio::value::Payload;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Identifies a listener added with [`SocketCx::on_any`] (or its kin), to remove it: the
/// Rust form of passing the listener itself to `offAny` (closures have no identity).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct AnyListenerId(u64);

/// Identifies a timer made with `every` or `after`, to cancel it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct TimerId(pub(crate) u64);

/// The context of a timer, a [`Handle`] command or an ack callback: the state, emitting,
/// and timers.
pub struct ServerCx<'a, S> {
    pub(crate) engine: &'a mut Engine,
    pub(crate) core: &'a mut Core<S>,
}

impl<S> std::fmt::Debug for ServerCx<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCx").finish_non_exhaustive()
    }
}

impl<'a, S: 'static> ServerCx<'a, S> {
    /// The application state.
    pub fn state(&mut self) -> &mut S {
        &mut self.core.state
    }

    /// The loop's time for this iteration.
    pub fn now(&self) -> Instant {
        self.engine.now()
    }

    /// Emits to a namespace: `cx.of("/admin").to("room").emit(...)` (`io.of(nsp)`). The
    /// leading slash may be left out, as in [`Server::of`](super::Server::of): `"admin"` is
    /// `/admin`. An unknown namespace reaches nobody.
    pub fn of(&mut self, nsp: &str) -> Emitter<'_, 'a, S> {
        let nsp = if nsp.starts_with('/') {
            self.core.nsp_by_name.get(nsp).copied()
        } else {
            self.core.nsp_by_name.get(&normalize_nsp(nsp)).copied()
        };
        Emitter::new(self, nsp, None)
    }

    /// Emits to a room of the main namespace `/`, to every socket in it (`io.to(room)`;
    /// from a socket's handler, [`SocketCx::to`] leaves the sender out).
    pub fn to(&mut self, room: impl Into<String>) -> Emitter<'_, 'a, S> {
        self.of("/").to(room)
    }

    /// Runs `f` once after `delay`.
    pub fn after(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut ServerCx<'_, S>) + 'static,
    ) -> TimerId {
        let mut f = Some(f);
        self.core.add_timer(
            self.engine.now() + delay,
            UserTimer {
                period: None,
                f: Box::new(move |cx| {
                    if let Some(f) = f.take() {
                        f(cx)
                    }
                }),
            },
        )
    }

    /// Runs `f` every `period`.
    pub fn every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut ServerCx<'_, S>) + 'static,
    ) -> TimerId {
        self.core.add_timer(
            self.engine.now() + period,
            UserTimer {
                period: Some(period),
                f: Box::new(f),
            },
        )
    }

    /// Cancels a timer.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.core.cancelled_timers.insert(id.0);
    }

    /// Answers an acknowledgement a client asked for, with one argument. Works after the
    /// handler has returned (from a timer, a `Handle` command, a worker's reply); returns
    /// false if the socket is gone.
    ///
    /// `&()` answers with no argument at all (the client's callback gets none, as after
    /// `ack()` in Node); `&None::<T>` answers `null`.
    ///
    /// ```no_run
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/").on("save", |cx, _doc: serde_json::Value, ack| {
    ///     if let Some(ack) = ack {
    ///         cx.ack(ack, &()); // the client's callback runs with no arguments
    ///     }
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ack<T: Serialize + ?Sized>(&mut self, ack: Ack, data: &T) -> bool {
        // `()` (or a unit struct) is the one zero-sized value that serializes as `null`:
        // it means "nothing". `None` is not zero-sized, so it still answers `[null]`.
        let nothing = std::mem::size_of_val(data) == 0;
        match EncodedArgs::one(data) {
            Ok(args) if nothing && args.items() == "null" => self.send_ack_items(ack, "", &[]),
            Ok(args) => self.send_ack(ack, &args),
            Err(e) => {
                log::error!("sioloop: cannot serialize an ack: {e}");
                false
            }
        }
    }

    /// Answers an acknowledgement with the items of `data` as arguments.
    pub fn ack_args<T: Serialize + ?Sized>(&mut self, ack: Ack, data: &T) -> bool {
        match EncodedArgs::many(data) {
            Ok(args) => self.send_ack(ack, &args),
            Err(e) => {
                log::error!("sioloop: cannot serialize an ack: {e}");
                false
            }
        }
    }

    fn send_ack(&mut self, ack: Ack, args: &EncodedArgs) -> bool {
        self.send_ack_items(ack, args.items(), args.attachments())
    }

    /// Sends an ACK carrying `items` (JSON, comma-separated) and `attachments`.
    fn send_ack_items(&mut self, ack: Ack, items: &str, attachments: &[Vec<u8>]) -> bool {
        // The socket's generation is checked: an ack for a socket that has gone (and whose
        // slot may have been reused) is refused.
        let Some(entry) = self.core.socket(ack.socket) else {
            return false;
        };
        let Some(nsp) = self.core.namespace(entry.nsp).map(|ns| &ns.name) else {
            return false;
        };
        let text = ack_packet(nsp, ack.id, items, attachments.len());
        self.core
            .send_to(self.engine, ack.socket, text, attachments, false)
    }

    /// Answers an acknowledgement with a received event's arguments, unchanged (binary
    /// attachments included), encoded straight from the event's text.
    pub fn ack_event(&mut self, ack: Ack, event: &super::Event) -> bool {
        self.send_ack_items(ack, event.args_text(), event.payload().attachments())
    }

    /// The number of connected sockets in a namespace.
    pub fn socket_count(&self, nsp: &str) -> usize {
        self.core
            .namespace_named(nsp)
            .map_or(0, |ns| ns.sockets.len())
    }

    /// The rooms of a namespace that have members (socket-id rooms included).
    pub fn nsp_rooms(&self, nsp: &str) -> Vec<String> {
        self.core.namespace_named(nsp).map_or(Vec::new(), |ns| {
            ns.rooms.rooms().map(str::to_owned).collect()
        })
    }

    /// The names of the namespaces that exist: the static ones, and the children of dynamic
    /// namespaces that have sockets (or all children ever created, if
    /// [`Server::cleanup_empty_child_namespaces`](super::Server::cleanup_empty_child_namespaces)
    /// is off).
    pub fn namespaces(&self) -> Vec<String> {
        self.core
            .namespaces
            .iter()
            .map(|(_, ns)| ns.name.clone())
            .collect()
    }

    /// Socket.IO counters: drops and refusals.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Engine.IO counters: connections, sessions, packets and bytes, closes by reason.
    pub fn engine_stats(&self) -> EngineStats {
        self.engine.stats().clone()
    }

    /// Every counter and gauge as Prometheus text, the Engine.IO ones and the Socket.IO
    /// ones: what `Config::metrics_path` serves.
    pub fn metrics_text(&self) -> String {
        let mut out = self.engine.metrics_text();
        self.core.write_metrics(&mut out);
        out
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle<S> {
        Handle::new(
            self.core.commands_tx.clone(),
            self.engine.wake_handle(),
            self.engine.shutdown_handle(),
        )
    }
}

/// The context of a socket's handlers: everything [`ServerCx`] has (through `Deref`), plus
/// the socket itself.
pub struct SocketCx<'a, S> {
    server: ServerCx<'a, S>,
    key: SocketKey,
}

impl<S> std::fmt::Debug for SocketCx<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketCx")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'a, S> Deref for SocketCx<'a, S> {
    type Target = ServerCx<'a, S>;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl<S> DerefMut for SocketCx<'_, S> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.server
    }
}

impl<'a, S: 'static> SocketCx<'a, S> {
    pub(crate) fn new(engine: &'a mut Engine, core: &'a mut Core<S>, key: SocketKey) -> Self {
        SocketCx {
            server: ServerCx { engine, core },
            key,
        }
    }

    fn entry(&self) -> Option<&SocketEntry> {
        self.server.core.socket(self.key)
    }

    /// The socket's id (20 characters, distinct from the Engine.IO sid).
    pub fn id(&self) -> &str {
        self.entry().map_or("", |e| &*e.id)
    }

    /// Whether this socket is a dropped one come back with its state (connection state
    /// recovery, [`Server::connection_state_recovery`]): same id, rooms and data, and the
    /// events it missed already on their way. `socket.recovered` of the reference server.
    ///
    /// [`Server::connection_state_recovery`]: super::Server::connection_state_recovery
    pub fn recovered(&self) -> bool {
        self.entry().is_some_and(|e| e.recovered)
    }

    /// The socket's key, for use from other handlers.
    pub fn key(&self) -> SocketKey {
        self.key
    }

    /// The namespace's name.
    pub fn nsp(&self) -> &str {
        self.entry()
            .and_then(|e| self.server.core.namespace(e.nsp))
            .map_or("", |ns| ns.name.as_str())
    }

    fn session(&self) -> Option<SessionId> {
        self.entry().map(|e| e.session)
    }

    /// The handshake: address, headers, query.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.server.engine.handshake(self.session()?)
    }

    /// The auth payload of the CONNECT packet, as raw JSON (`socket.handshake.auth`):
    /// `{}` if the client sent none.
    pub fn auth(&self) -> &RawValue {
        match self.entry().and_then(|e| e.auth.as_deref()) {
            Some(auth) => auth,
            None => no_auth(),
        }
    }

    /// The auth payload as `T` (`None` if it has another shape).
    pub fn auth_as<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.auth().get()).ok()
    }

    /// The socket's data of type `T` (set by a middleware or a handler). A socket holds
    /// one value of each type, so independent parts of an application keep theirs apart:
    /// this is `socket.data` of the reference server, keyed by type.
    ///
    /// ```no_run
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// struct User(String);
    /// struct Score(u32);
    /// server.of("/")
    ///     .on_connect(|cx| {
    ///         cx.set_data(User("ann".into()));
    ///         cx.set_data(Score(0)); // beside the User, not in place of it
    ///     })
    ///     .on("point", |cx, (): (), _ack| {
    ///         if let Some(score) = cx.data::<Score>() {
    ///             score.0 += 1;
    ///         }
    ///     });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn data<T: 'static>(&mut self) -> Option<&mut T> {
        let key = self.key;
        self.server.core.socket_mut(key)?.data.get_mut()
    }

    /// The socket's data of type `T`, read-only.
    pub fn data_ref<T: 'static>(&self) -> Option<&T> {
        self.entry()?.data.get()
    }

    /// Sets the socket's data of type `T` (replacing the value of that type it had; values
    /// of other types stay).
    pub fn set_data<T: 'static>(&mut self, data: T) {
        let key = self.key;
        if let Some(e) = self.server.core.socket_mut(key) {
            e.data.insert(data);
        }
    }

    /// Removes and returns the socket's data of type `T`.
    pub fn take_data<T: 'static>(&mut self) -> Option<T> {
        let key = self.key;
        self.server.core.socket_mut(key)?.data.remove()
    }

    /// Joins a room, within the room limits (see [`SocketCx::try_join`]).
    pub fn join(&mut self, room: impl AsRef<str>) {
        self.try_join(room);
    }

    /// Joins a room. Returns false (and counts it in [`Stats::joins_refused`]) if the room
    /// limits or the room validator refuse it.
    pub fn try_join(&mut self, room: impl AsRef<str>) -> bool {
        let key = self.key;
        self.server
            .core
            .join(self.server.engine, key, room.as_ref())
    }

    /// Leaves a room.
    pub fn leave(&mut self, room: impl AsRef<str>) {
        if let Some(nsp) = self.entry().map(|e| e.nsp) {
            let key = self.key;
            if let Some(ns) = self.server.core.namespace_mut(nsp) {
                ns.rooms.leave(key, room.as_ref());
            }
        }
    }

    /// Leaves every room but the one named after its own id.
    pub fn leave_all(&mut self) {
        let own = self.id().to_owned();
        for room in self.rooms() {
            if room != own {
                self.leave(room);
            }
        }
    }

    /// The rooms the socket is in (its own id room included).
    pub fn rooms(&self) -> Vec<String> {
        self.entry()
            .and_then(|e| self.server.core.namespace(e.nsp))
            .map_or(Vec::new(), |ns| {
                ns.rooms.rooms_of(&self.key).map(str::to_owned).collect()
            })
    }

    /// Emits an event with one argument to this socket.
    pub fn emit<T: Serialize + ?Sized>(&mut self, event: &str, data: &T) -> bool {
        let key = self.key;
        self.emitter().only(key).emit(event, data)
    }

    /// Emits an event whose arguments are the items of `data` (a tuple or array; `&()`
    /// for none).
    pub fn emit_args<T: Serialize + ?Sized>(&mut self, event: &str, data: &T) -> bool {
        let key = self.key;
        self.emitter().only(key).emit_args(event, data)
    }

    /// Emits an event and waits for the client's acknowledgement, up to `timeout`.
    ///
    /// The callback gets the client's answer as a [`Payload`](super::Payload): the ack's
    /// arguments as one JSON array, as sent (`callback("ok", 2)` gives `["ok",2]`,
    /// `callback()` gives `[]`), binary attachments beside it. Read it as a tuple with
    /// [`Payload::deserialize`](super::Payload::deserialize), or pass it on unchanged with
    /// [`Emitter::emit_payload`].
    ///
    /// ```no_run
    /// use sioloop::{AckError, Payload};
    /// use std::time::Duration;
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/").on_connect(|cx| {
    ///     let asked = Duration::from_secs(5);
    ///     cx.emit_with_ack("ask", "name?", asked, |_cx, answer: Result<Payload, AckError>| {
    ///         // The client answered `callback("ann")`: the payload is `["ann"]`.
    ///         if let Ok(Ok((name,))) = answer.map(|p| p.deserialize::<(String,)>()) {
    ///             println!("{name}");
    ///         }
    ///     });
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
        timeout: Duration,
        callback: impl FnOnce(&mut ServerCx<'_, S>, Result<Payload, AckError>) + 'static,
    ) -> bool {
        let key = self.key;
        let Ok(args) = EncodedArgs::one(data) else {
            log::error!("sioloop: cannot serialize the arguments of {event:?}");
            return false;
        };
        let Some(id) = self.server.core.next_ack_id(key) else {
            return false;
        };
        let nsp = self.nsp().to_owned();
        let text = args.event_packet(&nsp, event, Some(id));
        let core = &mut *self.server.core;
        if !core.send_to(self.server.engine, key, text, args.attachments(), false) {
            return false;
        }
        core.acks
            .insert((key, id), AckWaiter::One(Box::new(callback)));
        let at = self.server.engine.now() + timeout;
        core.timers.push(Reverse((at, Timer::Ack(key, id))));
        notify_outgoing(&mut self.server, &[key], event, &args);
        true
    }

    /// Emits to the sockets in `room` of this socket's namespace, except this socket:
    /// `socket.to(room)` of the reference server. `cx.to("a").to("b")` reaches sockets in
    /// either room.
    ///
    /// To reach the whole room, this socket included (`io.to(room)`), go through the
    /// namespace: `cx.of(cx.nsp()).to(room)`, or [`ServerCx::to`] for `/`.
    ///
    /// ```no_run
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/").on("say", |cx, text: String, _ack| {
    ///     cx.to("lobby").emit("said", &text); // everyone in the lobby but the sender
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to(&mut self, room: impl Into<String>) -> Emitter<'_, 'a, S> {
        self.broadcast().to(room)
    }

    /// Same as [`SocketCx::to`] (`socket.in(room)`).
    pub fn in_(&mut self, room: impl Into<String>) -> Emitter<'_, 'a, S> {
        self.to(room)
    }

    /// Emits to every socket of the namespace but this one and those in `room`:
    /// `socket.except(room)` of the reference server.
    pub fn except(&mut self, room: impl Into<String>) -> Emitter<'_, 'a, S> {
        self.broadcast().except(room)
    }

    /// Emits to every socket of the namespace but this one (`socket.broadcast`).
    pub fn broadcast(&mut self) -> Emitter<'_, 'a, S> {
        self.emitter().except_self()
    }

    fn emitter(&mut self) -> Emitter<'_, 'a, S> {
        let nsp = self.entry().map(|e| e.nsp);
        let key = self.key;
        Emitter::new(&mut self.server, nsp, Some(key))
    }

    /// Disconnects this socket from its namespace (`server namespace disconnect`); the
    /// client is told. Takes effect when the handler returns.
    pub fn disconnect(&mut self) {
        let key = self.key;
        self.server.core.pending_disconnects.push((
            key,
            DisconnectReason::ServerNamespaceDisconnect,
            true,
        ));
    }

    /// Disconnects this socket (`server namespace disconnect`, the client is told) and
    /// closes its connection: its other sockets get `forced server close`. This is
    /// `socket.disconnect(true)` of the reference server; the client does not reconnect.
    pub fn disconnect_with_connection(&mut self) {
        let key = self.key;
        let Some(session) = self.session() else {
            return;
        };
        let core = &mut *self.server.core;
        core.pending_disconnects
            .push((key, DisconnectReason::ServerNamespaceDisconnect, true));
        let siblings: Vec<SocketKey> = core
            .clients
            .get(&session)
            .map(|c| c.sockets.iter().copied().filter(|k| *k != key).collect())
            .unwrap_or_default();
        for sibling in siblings {
            core.pending_disconnects
                .push((sibling, DisconnectReason::ForcedServerClose, false));
        }
        core.pending_connection_closes.push(session);
    }

    /// Closes the client's connection without a DISCONNECT packet (`forced close` for
    /// every socket on it), as if the transport dropped: the client reconnects.
    pub fn close_connection(&mut self) {
        if let Some(session) = self.session() {
            self.server.engine.close(session);
        }
    }

    /// Adds a listener of every event this socket receives (`socket.onAny(listener)`). It
    /// runs after the namespace's [`Namespace::on_any`](super::Namespace::on_any)
    /// listeners and before the event's handler, from the next event on; the id removes it.
    ///
    /// ```no_run
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/")
    ///     .on("trace", |cx, on: bool, _ack| {
    ///         if on {
    ///             let id = cx.on_any(|cx, event| {
    ///                 let name = event.name().to_owned();
    ///                 cx.emit("traced", &name);
    ///             });
    ///             cx.set_data(id);
    ///         } else if let Some(id) = cx.take_data::<sioloop::AnyListenerId>() {
    ///             cx.off_any(id);
    ///         }
    ///     });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_any(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static,
    ) -> AnyListenerId {
        self.add_any(false, false, Rc::new(RefCell::new(f)))
    }

    /// Adds a listener of every event this socket receives that runs before its others
    /// (`socket.prependAny(listener)`).
    pub fn prepend_any(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static,
    ) -> AnyListenerId {
        self.add_any(false, true, Rc::new(RefCell::new(f)))
    }

    /// Removes a listener [`SocketCx::on_any`] or [`SocketCx::prepend_any`] added
    /// (`socket.offAny(listener)`).
    pub fn off_any(&mut self, id: AnyListenerId) {
        self.remove_any(false, Some(id));
    }

    /// Removes every listener this socket added with [`SocketCx::on_any`] or
    /// [`SocketCx::prepend_any`] (`socket.offAny()`). The namespace's stay.
    pub fn off_any_all(&mut self) {
        self.remove_any(false, None);
    }

    /// Adds a listener of every event emitted to this socket, by any emit or broadcast
    /// that reaches it (`socket.onAnyOutgoing(listener)`); acks are not events and do not
    /// count. It runs once the event is queued for sending. What the socket's outgoing
    /// listeners emit to the socket itself does not run them again (in Node it would
    /// recurse until the stack overflows).
    pub fn on_any_outgoing(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static,
    ) -> AnyListenerId {
        self.add_any(true, false, Rc::new(RefCell::new(f)))
    }

    /// Adds a listener of every outgoing event that runs before the others
    /// (`socket.prependAnyOutgoing(listener)`).
    pub fn prepend_any_outgoing(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static,
    ) -> AnyListenerId {
        self.add_any(true, true, Rc::new(RefCell::new(f)))
    }

    /// Removes a listener of outgoing events (`socket.offAnyOutgoing(listener)`).
    pub fn off_any_outgoing(&mut self, id: AnyListenerId) {
        self.remove_any(true, Some(id));
    }

    /// Removes every listener of outgoing events (`socket.offAnyOutgoing()`).
    pub fn off_any_outgoing_all(&mut self) {
        self.remove_any(true, None);
    }

    fn add_any(&mut self, outgoing: bool, first: bool, f: AnyListener<S>) -> AnyListenerId {
        let core = &mut *self.server.core;
        core.next_listener_id += 1;
        let id = core.next_listener_id;
        if core.socket(self.key).is_some() {
            let listeners = core.any_listeners.entry(self.key).or_default();
            let list = if outgoing {
                &mut listeners.outgoing
            } else {
                &mut listeners.incoming
            };
            if first {
                list.insert(0, (id, f));
            } else {
                list.push((id, f));
            }
        }
        AnyListenerId(id)
    }

    /// Removes one listener (`Some(id)`) or all (`None`) of incoming or outgoing events.
    fn remove_any(&mut self, outgoing: bool, id: Option<AnyListenerId>) {
        let listeners = &mut self.server.core.any_listeners;
        let Some(mine) = listeners.get_mut(&self.key) else {
            return;
        };
        let list = if outgoing {
            &mut mine.outgoing
        } else {
            &mut mine.incoming
        };
        match id {
            Some(AnyListenerId(id)) => list.retain(|(i, _)| *i != id),
            None => list.clear(),
        }
        if mine.incoming.is_empty() && mine.outgoing.is_empty() {
            listeners.remove(&self.key);
        }
    }

    /// Sends a received event back to this socket unchanged (no parsing of its arguments).
    pub fn emit_event(&mut self, event: &super::Event) -> bool {
        let key = self.key;
        self.emitter().only(key).emit_event(event)
    }

    /// Sends a received event's arguments to this socket under another name: a relay.
    /// The arguments go as they came (binary attachments included, in order), spliced
    /// from the event's text without being parsed. `cx.to(room).emit_event_as(...)`
    /// relays to a room.
    ///
    /// ```
    /// use sioloop::Server;
    ///
    /// let (mut server, _net) = Server::in_memory(Default::default(), ());
    /// // socket.emit("say", "hi", new Uint8Array([1, 2])): the socket gets
    /// // "said" with "hi" and the bytes.
    /// server.of("/").on_raw("say", |cx, event, _ack| {
    ///     cx.emit_event_as("said", &event);
    /// });
    /// ```
    pub fn emit_event_as(&mut self, name: &str, event: &super::Event) -> bool {
        let key = self.key;
        self.emitter().only(key).emit_event_as(name, event)
    }

    /// Emits an event to this socket whose arguments are the items of a received payload
    /// (an acknowledgement's answer, say), unchanged, binary attachments included.
    pub fn emit_payload(&mut self, name: &str, payload: &Payload) -> bool {
        let key = self.key;
        self.emitter().only(key).emit_payload(name, payload)
    }

    pub(crate) fn count_refused(&mut self) {
        self.server.core.stats.events_refused += 1;
    }

    /// Counts an event of this socket with invalid arguments; returns how many so far.
    pub(super) fn count_invalid_event(&mut self) -> u32 {
        let key = self.key;
        self.server.core.socket_mut(key).map_or(0, |e| {
            e.invalid_events = e.invalid_events.saturating_add(1);
            e.invalid_events
        })
    }

    /// Whether a `warn` line about something this socket's client caused may be written
    /// (a few per peer address per second).
    pub(super) fn may_warn_client(&mut self) -> bool {
        self.session()
            .is_some_and(|session| self.server.engine.may_log_client(session, log::Level::Warn))
    }

    /// The client's address, for a log line.
    pub(super) fn peer(&self) -> Peer {
        Peer(self.handshake().map(|h| h.address))
    }
}

/// The context of a connection middleware: the handshake, the auth payload, the state, and
/// the socket's data to be.
pub struct ConnectCx<'a, S> {
    pub(crate) server: ServerCx<'a, S>,
    pub(crate) session: SessionId,
    pub(crate) nsp: &'a str,
    pub(crate) auth: Option<&'a RawValue>,
    pub(crate) data: &'a mut SocketData,
    pub(crate) rooms: &'a mut Vec<String>,
}

impl<S> std::fmt::Debug for ConnectCx<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCx")
            .field("nsp", &self.nsp)
            .finish_non_exhaustive()
    }
}

impl<S: 'static> ConnectCx<'_, S> {
    /// The namespace being joined.
    pub fn nsp(&self) -> &str {
        self.nsp
    }

    /// The handshake: address, headers, query.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.server.engine.handshake(self.session)
    }

    /// The auth payload, as raw JSON (`socket.handshake.auth`): `{}` if the client sent
    /// none.
    pub fn auth(&self) -> &RawValue {
        match self.auth {
            Some(auth) => auth,
            None => no_auth(),
        }
    }

    /// The auth payload as `T` (`None` if it has another shape).
    pub fn auth_as<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.auth().get()).ok()
    }

    /// Sets the socket's data of type `T`, which it will carry (see [`SocketCx::data`]).
    pub fn set_data<T: 'static>(&mut self, data: T) {
        self.data.insert(data);
    }

    /// The data of type `T` an earlier middleware set.
    pub fn data<T: 'static>(&mut self) -> Option<&mut T> {
        self.data.get_mut()
    }

    /// Joins a room as soon as the socket exists (within the room limits), so the socket
    /// is in it before any handler sees it: a `user:{id}` room is joined here.
    pub fn join(&mut self, room: impl Into<String>) {
        self.rooms.push(room.into());
    }

    /// The application state.
    pub fn state(&mut self) -> &mut S {
        self.server.state()
    }
}

/// What `fetch_sockets` tells about a socket.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// The socket's id.
    pub id: String,
    /// The socket's key.
    pub key: SocketKey,
    /// Its namespace.
    pub nsp: String,
    /// Its rooms.
    pub rooms: Vec<String>,
    /// Its handshake.
    pub handshake: Option<Handshake>,
    /// Its auth payload (`{}` if the client sent none).
    pub auth: serde_json::Value,
}

/// Emits to a set of sockets: a namespace, narrowed by rooms and exceptions. Every emit of
/// the server goes through here, so one place knows its rooms, exceptions and flags.
pub struct Emitter<'c, 'a, S> {
    cx: &'c mut ServerCx<'a, S>,
    /// `None`: a namespace that does not exist (the emit reaches nobody).
    nsp: Option<NspKey>,
    rooms: Vec<String>,
    except: Vec<String>,
    sender: Option<SocketKey>,
    except_sender: bool,
    only: Option<SocketKey>,
    volatile: bool,
    timeout: Duration,
}

impl<S> std::fmt::Debug for Emitter<'_, '_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .field("volatile", &self.volatile)
            .finish_non_exhaustive()
    }
}

impl<'c, 'a, S: 'static> Emitter<'c, 'a, S> {
    fn new(cx: &'c mut ServerCx<'a, S>, nsp: Option<NspKey>, sender: Option<SocketKey>) -> Self {
        Emitter {
            cx,
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
            sender,
            except_sender: false,
            only: None,
            volatile: false,
            timeout: Duration::from_secs(10),
        }
    }

    fn only(mut self, key: SocketKey) -> Self {
        self.only = Some(key);
        self
    }

    /// Narrows to sockets in `room` (several calls: in any of them).
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Same as [`Emitter::to`].
    pub fn in_(self, room: impl Into<String>) -> Self {
        self.to(room)
    }

    /// Leaves out sockets in `room`.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        self.except.push(room.into());
        self
    }

    /// Leaves out the socket whose handler is emitting. [`SocketCx::to`],
    /// [`SocketCx::except`] and [`SocketCx::broadcast`] do already; this is for an emitter
    /// a socket's handler starts from the namespace (`cx.of(..)`).
    pub fn except_self(mut self) -> Self {
        self.except_sender = true;
        self
    }

    /// Drops the packet for recipients that cannot take it at once (counted in
    /// [`Stats::volatile_dropped`]) instead of queueing it.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// The timeout of [`Emitter::emit_with_ack`] (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn targets(&self) -> Vec<SocketKey> {
        if let Some(key) = self.only {
            return vec![key];
        }
        let mut targets = self.cx.core.select(self.nsp, &self.rooms, &self.except);
        if self.except_sender
            && let Some(sender) = self.sender
        {
            targets.retain(|k| *k != sender);
        }
        targets
    }

    fn nsp_name(&self) -> String {
        self.nsp
            .and_then(|key| self.cx.core.namespace(key))
            .map_or_else(String::new, |n| n.name.clone())
    }

    /// Emits an event with one argument. Returns whether it could be encoded (and so went
    /// to every selected socket, volatile drops aside).
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> bool {
        match EncodedArgs::one(data) {
            Ok(args) => self.emit_encoded(event, &args),
            Err(e) => {
                log::error!("sioloop: cannot serialize the arguments of {event:?}: {e}");
                false
            }
        }
    }

    /// Emits an event whose arguments are the items of `data` (a tuple or an array).
    pub fn emit_args<T: Serialize + ?Sized>(self, event: &str, data: &T) -> bool {
        match EncodedArgs::many(data) {
            Ok(args) => self.emit_encoded(event, &args),
            Err(e) => {
                log::error!("sioloop: cannot serialize the arguments of {event:?}: {e}");
                false
            }
        }
    }

    /// Forwards a received event's arguments unchanged (no parsing): a relay.
    pub fn emit_event(self, event: &super::Event) -> bool {
        self.emit_encoded(event.name(), &EncodedArgs::from_event(event))
    }

    /// Forwards a received event's arguments under another name, unchanged (no parsing;
    /// binary attachments included, in order): a relay that renames.
    ///
    /// ```
    /// use sioloop::Server;
    ///
    /// let (mut server, _net) = Server::in_memory(Default::default(), ());
    /// // socket.emit("draw", stroke, bytes): the others in the room `canvas` get
    /// // "drawn" with the same stroke and bytes.
    /// server.of("/").on_raw("draw", |cx, event, _ack| {
    ///     cx.to("canvas").except_self().emit_event_as("drawn", &event);
    /// });
    /// ```
    pub fn emit_event_as(self, name: &str, event: &super::Event) -> bool {
        self.emit_encoded(name, &EncodedArgs::from_event(event))
    }

    /// Emits an event whose arguments are the items of a received payload (an ack's
    /// answer, say), unchanged, binary attachments included.
    pub fn emit_payload(self, event: &str, payload: &Payload) -> bool {
        match EncodedArgs::from_payload(payload) {
            Ok(args) => self.emit_encoded(event, &args),
            Err(_) => false,
        }
    }

    pub(crate) fn emit_encoded(self, event: &str, args: &EncodedArgs) -> bool {
        let targets = self.targets();
        let nsp = self.nsp_name();
        // Who it was for, as connection state recovery matches a dropped socket's rooms
        // against it (moved, not copied: the emitter is done).
        let to = match self.only {
            Some(key) => Recipients::Only(key),
            None => Recipients::Rooms {
                rooms: self.rooms,
                except: self.except,
                except_socket: self.sender.filter(|_| self.except_sender),
            },
        };
        broadcast(
            self.cx.core,
            self.cx.engine,
            &targets,
            nsp,
            event,
            args,
            self.volatile,
            to,
        );
        notify_outgoing(self.cx, &targets, event, args);
        true
    }

    /// Emits an event with one argument to every selected socket and collects their
    /// acknowledgements under one timeout; `callback` gets what arrived, each answer a
    /// [`Payload`](super::Payload) holding the ack's arguments as one JSON array (see
    /// [`SocketCx::emit_with_ack`]).
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
        callback: impl FnOnce(&mut ServerCx<'_, S>, AckResults) + 'static,
    ) -> bool {
        let Ok(args) = EncodedArgs::one(data) else {
            log::error!("sioloop: cannot serialize the arguments of {event:?}");
            return false;
        };
        let targets = self.targets();
        let nsp = self.nsp_name();
        let core = &mut *self.cx.core;
        core.generation = core.generation.wrapping_add(1);
        let generation = core.generation;
        let group = core.groups.insert(AckGroup {
            generation,
            waiting: HashSet::new(),
            responses: Vec::new(),
            callback: Some(Box::new(callback)),
        });
        let mut sent = Vec::new();
        for key in targets {
            // Acks are the one per-recipient encoding: each carries its own id.
            let Some(id) = core.next_ack_id(key) else {
                continue;
            };
            let text = args.event_packet(&nsp, event, Some(id));
            if core.send_to(self.cx.engine, key, text, args.attachments(), false) {
                core.acks.insert((key, id), AckWaiter::Group(group));
                core.groups[group].waiting.insert((key, id));
                if core.any_listeners.contains_key(&key) {
                    sent.push(key);
                }
            }
        }
        let at = self.cx.engine.now() + self.timeout;
        core.timers
            .push(Reverse((at, Timer::Group(group, generation))));
        if core.groups[group].waiting.is_empty() {
            // Nobody to wait for: answer at once (on the next timer pass).
            core.timers.push(Reverse((
                self.cx.engine.now(),
                Timer::Group(group, generation),
            )));
        }
        notify_outgoing(self.cx, &sent, event, &args);
        true
    }

    fn info(&self, key: SocketKey) -> Option<SocketInfo> {
        let core = &*self.cx.core;
        let e = core.socket(key)?;
        let ns = core.namespace(e.nsp)?;
        Some(SocketInfo {
            id: e.id.to_string(),
            key,
            nsp: ns.name.clone(),
            rooms: ns.rooms.rooms_of(&key).map(str::to_owned).collect(),
            handshake: self.cx.engine.handshake(e.session).cloned(),
            auth: e
                .auth
                .as_ref()
                .and_then(|a| serde_json::from_str(a.get()).ok())
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
        })
    }

    /// The selected sockets: id, rooms, handshake, auth.
    pub fn fetch_sockets(self) -> Vec<SocketInfo> {
        self.targets()
            .into_iter()
            .filter_map(|key| self.info(key))
            .collect()
    }

    /// The selected sockets with a clone of their typed data (`None` where a socket has
    /// no data of type `T`).
    pub fn fetch_sockets_with_data<T: Clone + 'static>(self) -> Vec<(SocketInfo, Option<T>)> {
        self.targets()
            .into_iter()
            .filter_map(|key| {
                let data = self
                    .cx
                    .core
                    .socket(key)
                    .and_then(|e| e.data.get::<T>())
                    .cloned();
                Some((self.info(key)?, data))
            })
            .collect()
    }

    /// Makes the selected sockets join `room` (within the room limits).
    pub fn join(self, room: &str) {
        for key in self.targets() {
            self.cx.core.join(self.cx.engine, key, room);
        }
    }

    /// Makes the selected sockets leave `room`.
    pub fn leave(self, room: &str) {
        let targets = self.targets();
        if let Some(ns) = self.nsp.and_then(|key| self.cx.core.namespace_mut(key)) {
            for key in targets {
                ns.rooms.leave(key, room);
            }
        }
    }

    /// Disconnects the selected sockets (`server namespace disconnect`), after the running
    /// handler returns.
    pub fn disconnect(self) {
        for key in self.targets() {
            self.cx.core.pending_disconnects.push((
                key,
                DisconnectReason::ServerNamespaceDisconnect,
                true,
            ));
        }
    }
}

/// Reaches the loop from any thread. `Send + Clone`; commands run on the loop thread, in
/// order, with a [`ServerCx`].
pub struct Handle<S> {
    commands: mpsc::Sender<Command<S>>,
    wake: WakeHandle,
    shutdown: ShutdownHandle,
}

impl<S> Clone for Handle<S> {
    fn clone(&self) -> Self {
        Handle {
            commands: self.commands.clone(),
            wake: self.wake.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<S: 'static> Handle<S> {
    pub(crate) fn new(
        commands: mpsc::Sender<Command<S>>,
        wake: WakeHandle,
        shutdown: ShutdownHandle,
    ) -> Self {
        Handle {
            commands,
            wake,
            shutdown,
        }
    }

    /// Runs `f` on the loop thread. Returns false if the server has stopped.
    pub fn run(&self, f: impl FnOnce(&mut ServerCx<'_, S>) + Send + 'static) -> bool {
        let sent = self.commands.send(Box::new(f)).is_ok();
        self.wake.wake();
        sent
    }

    /// Emits an event with one argument to a room of a namespace (`room` `None`: the whole
    /// namespace; `"admin"` is `/admin`). The data is serialized on the calling thread.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        nsp: &str,
        room: Option<&str>,
        event: &str,
        data: &T,
    ) -> bool {
        let Ok(args) = EncodedArgs::one(data) else {
            return false;
        };
        let (nsp, room, event) = (nsp.to_owned(), room.map(str::to_owned), event.to_owned());
        self.run(move |cx| {
            let mut emitter = cx.of(&nsp);
            if let Some(room) = room {
                emitter = emitter.to(room);
            }
            emitter.emit_encoded(&event, &args);
        })
    }

    /// Makes the sockets of a room join another room.
    pub fn join(&self, nsp: &str, room: &str, new_room: &str) -> bool {
        let (nsp, room, new_room) = (nsp.to_owned(), room.to_owned(), new_room.to_owned());
        self.run(move |cx| cx.of(&nsp).to(room).join(&new_room))
    }

    /// Disconnects the sockets of a room.
    pub fn disconnect(&self, nsp: &str, room: &str) -> bool {
        let (nsp, room) = (nsp.to_owned(), room.to_owned());
        self.run(move |cx| cx.of(&nsp).to(room).disconnect())
    }

    /// Stops the server: every socket is disconnected with `server shutting down` and
    /// `run` returns.
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }
}

/// Runs the outgoing-event listeners of the `targets` that have some, on `event` with
/// `args`. The event is built once, and only if someone listens.
fn notify_outgoing<S: 'static>(
    cx: &mut ServerCx<'_, S>,
    targets: &[SocketKey],
    event: &str,
    args: &EncodedArgs,
) {
    if cx.core.any_listeners.is_empty() {
        return;
    }
    let mut built: Option<Event> = None;
    for &key in targets {
        let listens = cx
            .core
            .any_listeners
            .get(&key)
            .is_some_and(|l| !l.outgoing.is_empty());
        if !listens {
            continue;
        }
        if built.is_none() {
            built = outgoing_event(event, args);
        }
        if let Some(event) = &built {
            notify_any(cx.engine, cx.core, key, event, true);
        }
    }
}

/// An emitted event as an [`Event`], as a listener of outgoing events sees it.
fn outgoing_event(event: &str, args: &EncodedArgs) -> Option<Event> {
    let name = serde_json::to_string(event).ok()?;
    let json = if args.items().is_empty() {
        format!("[{name}]")
    } else {
        format!("[{name},{}]", args.items())
    };
    let raw = RawValue::from_string(json).ok()?;
    Event::from_payload(Payload::from_raw(raw, args.attachments().to_vec()))
}

/// The auth payload of a client that sent none: `{}`, as in the reference server.
fn no_auth() -> &'static RawValue {
    // Borrowed from the literal: no allocation. It cannot fail to parse; `null` is only
    // there to avoid a panic path.
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

#[allow(dead_code)]
fn _assert_handle_is_send() {
    fn is_send<T: Send + Clone>() {}
    is_send::<Handle<()>>();
}
