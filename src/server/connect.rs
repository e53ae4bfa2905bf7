//! CONNECT: finding (or creating) the namespace, running its middlewares, creating the
//! socket; and the CONNECT_ERROR a refused client gets.

use super::args::encode_packet;
use super::core::{Peer, SocketData, SocketEntry, SocketKey, SocketRecovery};
use super::dispatch::Io;
use super::recovery::{KeptSession, NotRecovered};
use super::{ConnectCx, ConnectError, ServerCx, SocketCx};
use crate::client_log::Clipped;
use crate::engine::{Engine, SessionId};
use crate::protocol::engineio::Message;
use crate::protocol::socketio::packet::PacketType;
use serde_json::value::RawValue;
use std::sync::Arc;

/// A socket id: 15 bytes from the engine's random source, in URL-safe base64 (20 chars).
fn random_id(engine: &mut Engine) -> Option<String> {
    String::from_utf8(engine.random_id()?.to_vec()).ok()
}

impl<S: 'static> Io<S> {
    /// The handlers a CONNECT goes to: an existing namespace's, or a dynamic one's. A
    /// child of a dynamic namespace does not exist until that namespace's middlewares have
    /// accepted a client, so a refused client leaves nothing behind.
    fn route_connect(&self, nsp_name: &str) -> Result<usize, ConnectRefusal> {
        if let Some(ns) = self.core.namespace_named(nsp_name) {
            return Ok(ns.handlers);
        }
        // Bounded before any application matcher sees it.
        if nsp_name.len() > self.core.config.max_namespace_name_len {
            return Err(ConnectRefusal::NameTooLong);
        }
        let Some(handlers) = self
            .dynamic
            .iter()
            .find(|(matches, _)| matches(nsp_name))
            .map(|(_, h)| *h)
        else {
            return Err(ConnectRefusal::Invalid);
        };
        if self.core.dynamic_namespaces >= self.core.config.max_dynamic_namespaces {
            return Err(ConnectRefusal::TooMany);
        }
        Ok(handlers)
    }

    /// A CONNECT packet: find the namespace, run the middlewares, create the namespace if it
    /// is a new child, create the socket.
    pub(super) fn connect(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        nsp_name: &str,
        auth: Option<Box<RawValue>>,
    ) {
        if self.socket_in(session, nsp_name).is_some() {
            return;
        }
        let handlers = match self.route_connect(nsp_name) {
            Ok(route) => route,
            Err(refusal) => {
                match refusal {
                    ConnectRefusal::TooMany => self.core.stats.namespaces_refused += 1,
                    ConnectRefusal::NameTooLong | ConnectRefusal::Invalid => {
                        self.core.stats.connects_refused += 1
                    }
                }
                let error = ConnectError::new(refusal.message());
                return refuse_connect(engine, session, nsp_name, &error);
            }
        };
        // Connection state recovery: a dropped socket coming back with its pid. Not for an
        // Engine.IO 3 client: its CONNECT answer carries no pid, and its socket id is its
        // session's, so a kept one could not be given back.
        let eio3 = engine.is_eio3(session);
        let restored = if eio3 {
            None
        } else {
            self.restore(engine, session, nsp_name, auth.as_deref())
        };
        let skip_middlewares = restored.is_some()
            && self
                .core
                .recovery
                .as_deref()
                .is_some_and(|log| log.config.skip_middlewares);
        let (mut data, mut rooms, missed, kept_id, pid) = match restored {
            Some((kept, missed, pid)) => (kept.data, kept.rooms, missed, Some(kept.id), Some(pid)),
            None => (SocketData::default(), Vec::new(), Vec::new(), None, None),
        };
        let middlewares: &mut [_] = if skip_middlewares {
            &mut []
        } else {
            &mut self.handlers[handlers].middleware
        };
        for mw in middlewares.iter_mut() {
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
                refuse_connect(engine, session, nsp_name, &e);
                self.after_handler(engine);
                return;
            }
        }
        self.after_handler(engine);
        // The session may have closed while the middlewares ran.
        if !self.core.clients.contains_key(&session) {
            return;
        }
        // Looked up only now: a new child is created here, once the middlewares have
        // accepted. An existing child is looked up again too, so that nothing run since the
        // lookup above (the middlewares, `after_handler`) can leave this connect holding a
        // removed namespace; if it is gone, it is created again with the same handlers.
        // Static namespaces are never removed.
        let nsp = match self.core.nsp_by_name.get(nsp_name) {
            Some(&key) => key,
            None => {
                if self.core.dynamic_namespaces >= self.core.config.max_dynamic_namespaces {
                    self.core.stats.namespaces_refused += 1;
                    let error = ConnectError::new(ConnectRefusal::TooMany.message());
                    return refuse_connect(engine, session, nsp_name, &error);
                }
                self.core.add_namespace(nsp_name.to_owned(), handlers, true)
            }
        };
        let recovered = kept_id.is_some();
        let id: Arc<str> = if eio3 {
            // Socket.IO protocol 4: the id is the Engine.IO sid, `/nsp#sid` outside `/`.
            let sid = engine.sid(session).unwrap_or_default();
            if nsp_name == "/" {
                Arc::from(sid)
            } else {
                Arc::from(format!("{nsp_name}#{sid}"))
            }
        } else if let Some(id) = kept_id {
            // `restore` checked that no socket of the namespace has it.
            id
        } else {
            loop {
                let Some(id) = random_id(engine) else {
                    engine.close(session);
                    return;
                };
                // An id must be unique where it is used: as a room of its namespace (ids
                // are never looked up across namespaces), one lookup, where a check of
                // every namespace made each connect cost as much as there are namespaces
                // (and a scan of all sockets made connecting quadratic).
                if !self.core.id_in_use(nsp, &id) {
                    break Arc::from(id);
                }
            }
        };
        self.core.generation = self.core.generation.wrapping_add(1);
        let generation = self.core.generation;
        let recovery = match self.core.recovery.as_deref() {
            Some(log) => {
                let pid = match pid {
                    Some(pid) => pid,
                    None => match random_id(engine) {
                        Some(new_pid) => new_pid.into(),
                        None => {
                            engine.close(session);
                            return;
                        }
                    },
                };
                Some(Box::new(SocketRecovery {
                    pid,
                    first_offset: log.next_offset(),
                }))
            }
            None => None,
        };
        // Socket.IO protocol 4's CONNECT carries no data.
        let connect_data = match &recovery {
            _ if eio3 => None,
            Some(r) => Some(serde_json::json!({ "sid": &*id, "pid": &*r.pid }).to_string()),
            None => Some(serde_json::json!({ "sid": &*id }).to_string()),
        };
        let index = self.core.sockets.insert(SocketEntry {
            generation,
            id: id.clone(),
            nsp,
            session,
            auth,
            data,
            next_ack_id: 0,
            bucket: None,
            invalid_events: 0,
            recovery,
            recovered,
        });
        let key = SocketKey { index, generation };
        if let Some(ns) = self.core.namespace_mut(nsp) {
            ns.sockets.insert(key);
            // Every socket is in a room named after its own id.
            ns.rooms.join_shared(key, id.clone());
        }
        for room in rooms {
            self.core.join(engine, key, &room);
        }
        if let Some(client) = self.core.clients.get_mut(&session) {
            // Exactly sized: almost every client joins one namespace, and a first push
            // would reserve room for four.
            client.sockets.reserve_exact(1);
            client.sockets.push(key);
            client.connected = true;
        }
        // A recovered socket's missed events go first, as from the reference server: the
        // client holds events that come before the CONNECT answer and delivers them right
        // after its `connect`, in order, before anything new.
        for message in missed {
            engine.send(session, message);
        }
        if recovered {
            self.core.stats.sessions_recovered += 1;
        }
        let data: &[&str] = match &connect_data {
            Some(data) => &[data],
            None => &[],
        };
        let text = encode_packet(PacketType::Connect, nsp_name, None, data, 0);
        engine.send(session, Message::Text(text));
        if let Some(f) = self.handlers[handlers].on_connect.as_mut() {
            f(&mut SocketCx::new(engine, &mut self.core, key));
        }
        self.after_handler(engine);
    }
}

impl<S: 'static> Io<S> {
    /// The kept session a CONNECT asks for with `auth.pid` (and `auth.offset`), with the
    /// events it missed and its pid, if it can be recovered; `None` (a new socket) if
    /// recovery is off, the client sent no pid, or the session cannot be recovered
    /// (counted).
    fn restore(
        &mut self,
        engine: &mut Engine,
        session: SessionId,
        nsp_name: &str,
        auth: Option<&RawValue>,
    ) -> Option<(KeptSession, Vec<Message>, Box<str>)> {
        let log = self.core.recovery.as_deref_mut()?;
        // The fields a returning client adds to its auth: `{pid, offset, ...}` (strings).
        let fields: serde_json::Value = serde_json::from_str(auth?.get()).ok()?;
        let pid = fields.get("pid")?.as_str()?;
        let offset = fields.get("offset").and_then(|o| o.as_str());
        let outcome = log.take(engine.now(), pid, nsp_name, offset);
        // The id must still be free in its namespace (a new socket cannot have drawn it
        // but by a 120-bit coincidence; checked all the same).
        let outcome = outcome.and_then(|(kept, missed)| {
            let nsp = self.core.nsp_by_name.get(nsp_name).copied();
            if nsp.is_some_and(|nsp| self.core.id_in_use(nsp, &kept.id)) {
                Err(NotRecovered::UnknownSession)
            } else {
                Ok((kept, missed))
            }
        });
        match outcome {
            Ok((kept, missed)) => Some((kept, missed, pid.into())),
            Err(why) => {
                self.core.stats.recoveries_refused += 1;
                if engine.may_log_client(session, log::Level::Debug) {
                    log::debug!(
                        "sioloop: a new socket in {} for {} instead of a recovered one: {why:?}",
                        Clipped(nsp_name),
                        Peer::of(engine, session)
                    );
                }
                None
            }
        }
    }
}

/// Why a CONNECT is refused before any middleware runs.
#[derive(Clone, Copy, Debug)]
enum ConnectRefusal {
    /// No static namespace has the name and no dynamic namespace matches it.
    Invalid,
    /// A new name longer than `max_namespace_name_len`.
    NameTooLong,
    /// A new child namespace past `max_dynamic_namespaces`.
    TooMany,
}

impl ConnectRefusal {
    /// The CONNECT_ERROR message (`Invalid namespace` is the reference server's).
    fn message(self) -> &'static str {
        match self {
            ConnectRefusal::Invalid => "Invalid namespace",
            ConnectRefusal::NameTooLong => "Namespace name too long",
            ConnectRefusal::TooMany => "Too many namespaces",
        }
    }
}

/// Refuses a CONNECT: the client gets CONNECT_ERROR `{message, data}` for the namespace. The
/// refusal is logged at `debug`, within the client's per-peer budget (a client can send
/// CONNECTs at will).
fn refuse_connect(engine: &mut Engine, session: SessionId, nsp: &str, error: &ConnectError) {
    if engine.may_log_client(session, log::Level::Debug) {
        log::debug!(
            "sioloop: refused a connect to {} from {}: {}",
            Clipped(nsp),
            Peer::of(engine, session),
            Clipped(&error.message)
        );
    }
    // Socket.IO protocol 4 (Engine.IO 3 clients): the data, or else the message, as it is.
    let json = if engine.is_eio3(session) {
        match &error.data {
            Some(data) => data.to_string(),
            None => serde_json::to_string(&error.message).unwrap_or_else(|_| r#""error""#.into()),
        }
    } else {
        error.to_json()
    };
    let text = encode_packet(PacketType::ConnectError, nsp, None, &[&json], 0);
    engine.send(session, Message::Text(text));
}
