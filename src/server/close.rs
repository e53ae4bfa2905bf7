//! The one close path for sockets (`close_socket`), and what closes a whole client: its
//! transport went away, or it broke the protocol.

use super::args::encode_packet;
use super::core::{Peer, SocketRecovery};
use super::dispatch::Io;
use super::{AckError, DisconnectReason, SocketCx, SocketKey};
use crate::engine::{Engine, SessionId};
use crate::protocol::engineio::Message;
use crate::protocol::socketio::packet::PacketType;

impl<S: 'static> Io<S> {
    /// The one place a socket is removed, in the reference server's order: the
    /// `disconnecting` handler runs (rooms still there), the socket leaves every room and
    /// its namespace, the `disconnect` handler runs (no rooms; id and data still readable),
    /// then (for a server-side disconnect) the client is told, the socket is forgotten and
    /// its pending acks fail.
    pub(super) fn close_socket(
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
        let handlers = self.core.namespace(nsp).map(|ns| ns.handlers);
        if let Some(f) = handlers.and_then(|h| self.handlers[h].on_disconnecting.as_mut()) {
            f(&mut SocketCx::new(engine, &mut self.core, key), reason);
            // The handler may have closed it already (a pending disconnect run since).
            if self.core.socket(key).is_none() {
                return;
            }
        }
        if let Some(client) = self.core.clients.get_mut(&session) {
            client.sockets.retain(|k| *k != key);
        }
        // Connection state recovery keeps the rooms it was in when it dropped.
        let kept_rooms: Option<Vec<String>> = match self.core.socket(key) {
            Some(e) if e.recovery.is_some() && reason.is_recoverable() => self
                .core
                .namespace(nsp)
                .map(|ns| ns.rooms.rooms_of(&key).map(str::to_owned).collect()),
            _ => None,
        };
        if let Some(ns) = self.core.namespace_mut(nsp) {
            ns.rooms.leave_all(&key);
            ns.sockets.remove(&key);
        }
        if let Some(f) = handlers.and_then(|h| self.handlers[h].on_disconnect.as_mut()) {
            // Out of its rooms and its namespace: nothing it emits to a room or the
            // namespace comes back to it.
            f(&mut SocketCx::new(engine, &mut self.core, key), reason);
            // Rooms joined in the handler are left again: the socket is going.
            if let Some(ns) = self.core.namespace_mut(nsp) {
                ns.rooms.leave_all(&key);
            }
        }
        if self.core.socket(key).is_none() {
            return;
        }
        let mut entry = self.core.sockets.remove(key.index);
        self.core.any_listeners.remove(&key);
        if notify && let Some(ns) = self.core.namespace(nsp) {
            let text = encode_packet(PacketType::Disconnect, &ns.name, None, &[], 0);
            engine.send(session, Message::Text(text));
        }
        if let (Some(rooms), Some(recovery)) = (kept_rooms, entry.recovery.take()) {
            // Its data as the disconnect handler left it.
            let data = std::mem::take(&mut entry.data);
            let name = self.core.namespace(nsp).map(|ns| ns.name.clone());
            let now = engine.now();
            if let (Some(log), Some(name)) = (self.core.recovery.as_deref_mut(), name) {
                let SocketRecovery { pid, first_offset } = *recovery;
                log.keep(
                    now,
                    pid,
                    entry.id.clone(),
                    key,
                    name,
                    rooms,
                    data,
                    first_offset,
                );
                self.core.stats.sessions_kept += 1;
                self.core.schedule_recovery_sweep(now);
            }
        }
        self.core.remove_if_empty_child(nsp);
        // Pending acks of this socket fail.
        for ack in self.core.acks.of_socket(key) {
            self.finish_ack(engine, ack, Err(AckError::Disconnected), &entry.id);
        }
        self.after_handler(engine);
    }

    /// Closes every socket of a session and forgets the session.
    pub(super) fn drop_client(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        reason: DisconnectReason,
    ) {
        let Some(client) = self.core.clients.remove(&session) else {
            return;
        };
        if client.assembler.is_waiting() {
            // What it held for a part-sent binary packet is freed with it.
            engine.hold(session, 0);
        }
        for key in client.sockets {
            self.close_socket(engine, key, reason, false);
        }
    }

    /// The client broke the protocol: its sockets get `parse error` and the connection closes.
    pub(super) fn parse_error(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        what: &dyn std::fmt::Display,
    ) {
        self.end_client(
            engine,
            session,
            DisconnectReason::ParseError,
            format_args!("after a bad packet: {what}"),
        );
    }

    /// Ends a client from the server side: its sockets get `reason`, the connection closes,
    /// and `why` is logged (at `debug`, within the peer's log budget: clients cause this).
    pub(super) fn end_client(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        reason: DisconnectReason,
        why: std::fmt::Arguments<'_>,
    ) {
        if engine.may_log_client(session, log::Level::Debug) {
            log::debug!("sioloop: closing {} {why}", Peer::of(engine, session));
        }
        self.drop_client(engine, session, reason);
        engine.close(session);
    }
}
