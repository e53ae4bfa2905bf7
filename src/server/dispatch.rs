//! The Socket.IO layer as the engine's handler (`Io`): sessions opening and closing,
//! messages decoded into packets, packets dispatched to the namespace's handlers, and what
//! handlers asked for run once they return.

use super::config::Bucket;
use super::core::{ClientState, Command, Core, notify_any};
use super::namespace::{Namespace, NamespaceMatcher};
use super::timers::{Timer, UserTimer};
use super::{Ack, DisconnectReason, Event, RateLimitAction, Refuse, ServerCx, SocketCx, SocketKey};
use crate::engine::{Engine, EngineHandler, SessionId};
use crate::protocol::engineio::handshake::{percent_decode, query_pairs};
use crate::protocol::engineio::{CloseReason, Message};
use crate::protocol::http::{Request, Response};
use crate::protocol::socketio::binary::{Assembler, Complete};
use crate::protocol::socketio::packet::PacketType;
use crate::protocol::socketio::value::Payload;
use foldhash::HashMap;
use serde_json::value::RawValue;
use std::cmp::Reverse;
use std::sync::mpsc;
use std::time::Instant;

pub(super) type HttpHook = Box<dyn FnMut(&Request) -> Option<Response>>;

/// The Socket.IO layer as an [`EngineHandler`]: the core state plus the handlers.
pub(super) struct Io<S> {
    pub(super) core: Core<S>,
    /// Every namespace's handlers, static and dynamic; `NamespaceState::handlers` indexes it.
    pub(super) handlers: Vec<Namespace<S>>,
    /// The dynamic namespaces: a name matcher and the index of their handlers.
    pub(super) dynamic: Vec<(NamespaceMatcher, usize)>,
    pub(super) user_timers: HashMap<u64, UserTimer<S>>,
    pub(super) http: Option<HttpHook>,
    pub(super) commands_rx: mpsc::Receiver<Command<S>>,
}

impl<S: 'static> Io<S> {
    /// Runs what handlers asked for while they ran: disconnects, new timers.
    pub(super) fn after_handler(&mut self, engine: &mut Engine) {
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

    /// The client's socket in the namespace called `nsp_name`, if it has joined it.
    pub(super) fn socket_in(&self, session: SessionId, nsp_name: &str) -> Option<SocketKey> {
        self.core
            .clients
            .get(&session)?
            .sockets
            .iter()
            .copied()
            .find(|k| {
                self.core
                    .socket(*k)
                    .and_then(|s| self.core.namespace(s.nsp))
                    .is_some_and(|ns| ns.name == nsp_name)
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
            // A Socket.IO 4 client (on Engine.IO 3) sends its auth as the query of the
            // namespace (`/chat?token=x`), and no data.
            PacketType::Connect if engine.is_eio3(session) => {
                let (name, auth) = split_v3_namespace(nsp);
                self.connect(engine, session, name, auth)
            }
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

    /// An event for a socket: the rate limit, the event middlewares, then its handler.
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
                    self.disconnect_for_refused_event(engine, key);
                }
                return;
            }
        }
        let Some(entry) = self.core.socket(key) else {
            return;
        };
        let Some(handlers) = self.core.namespace(entry.nsp).map(|ns| ns.handlers) else {
            return;
        };
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
                    self.disconnect_for_refused_event(engine, key);
                    return;
                }
            }
        }
        for listener in ns.any.iter_mut() {
            listener(&mut SocketCx::new(engine, &mut self.core, key), &event);
        }
        notify_any(engine, &mut self.core, key, &event, false);
        let handler = match ns.events.get_mut(event.name()) {
            Some(h) => Some(h),
            None => ns.unhandled.as_mut(),
        };
        if let Some(h) = handler {
            h(&mut SocketCx::new(engine, &mut self.core, key), event, ack);
        }
        self.after_handler(engine);
    }

    /// An event refused with a disconnect (rate limit, event middleware): the socket goes
    /// with `server namespace disconnect`, the client told, once the handler returned.
    fn disconnect_for_refused_event(&mut self, engine: &mut Engine, key: SocketKey) {
        self.core.pending_disconnects.push((
            key,
            DisconnectReason::ServerNamespaceDisconnect,
            true,
        ));
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
                binary_packets: 0,
                connected: false,
            },
        );
        let at = engine.now() + self.core.config.connect_timeout;
        self.core.timers.push(Reverse((at, Timer::Connect(id))));
        // Socket.IO protocol 4 (Engine.IO 3 clients): the default namespace is joined
        // without a CONNECT from the client.
        if engine.is_eio3(id) {
            self.connect(engine, id, "/", None);
        }
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
                Ok(None) => {
                    // A binary packet now waits for its attachments, until a deadline: a
                    // client must not hold its part-sent packet (and the memory) forever.
                    let at = engine.now() + self.core.config.attachments_timeout;
                    client.binary_packets = client.binary_packets.wrapping_add(1);
                    let packet = client.binary_packets;
                    self.core
                        .timers
                        .push(Reverse((at, Timer::Attachments(id, packet))));
                    engine.hold(id, client.assembler.buffered_bytes());
                }
                Err(e) => self.parse_error(engine, id, &e),
            },
            Message::Binary(data) => match client.assembler.push_binary(data) {
                Ok(Some(Complete {
                    packet,
                    attachments,
                })) => {
                    engine.hold(id, 0);
                    self.handle_packet(
                        engine,
                        id,
                        packet.kind,
                        &packet.nsp,
                        packet.id,
                        packet.data,
                        attachments,
                    )
                }
                Ok(None) => engine.hold(id, client.assembler.buffered_bytes()),
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
        self.core.write_metrics(out);
    }

    fn on_timeout(&mut self, engine: &mut Engine) {
        self.fire_timers(engine);
    }
}

/// The namespace and auth of a Socket.IO 4 CONNECT: the name up to `?`, and the query after
/// it as a JSON object of strings (the first value of a repeated key wins), as the reference
/// server reads it.
fn split_v3_namespace(nsp: &str) -> (&str, Option<Box<RawValue>>) {
    let Some((name, query)) = nsp.split_once('?') else {
        return (nsp, None);
    };
    let mut auth = serde_json::Map::new();
    for (key, value) in query_pairs(query) {
        let key = percent_decode(key).into_owned();
        if !auth.contains_key(&key) {
            let value = percent_decode(value).into_owned();
            auth.insert(key, serde_json::Value::String(value));
        }
    }
    let auth = serde_json::to_string(&auth)
        .ok()
        .and_then(|json| RawValue::from_string(json).ok());
    (if name.is_empty() { "/" } else { name }, auth)
}
