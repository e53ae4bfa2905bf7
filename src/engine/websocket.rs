//! WebSocket connections: the upgrade handshake, reading frames into session packets
//! (active transport, upgrade probe, or a connection doomed to close), and closing.

use super::conn::{Chunk, ConnState, SessionKey, WsRole};
use super::sessions::Protocol;
use super::{Engine, shared};
use crate::protocol::engineio::TransportKind;
use crate::protocol::engineio::handshake::RequestError;
use crate::protocol::engineio::packet::{Message, Packet};
use crate::protocol::engineio::payload_v3;
use crate::protocol::engineio::session::{CloseReason, ProbeReply};
use crate::protocol::http::Request;
use crate::protocol::ws::{self, FrameKind, FrameReader, WsEvent};
use mio::Token;

impl Engine {
    pub(super) fn handle_ws_upgrade(
        &mut self,
        token: Token,
        request: Request,
        session: Option<SessionKey>,
        protocol: Protocol,
    ) {
        let mut accept = Vec::new();
        let headers = self.extra_headers(&request, session.is_none());
        if ws::accept_upgrade(&request, &headers, &mut accept).is_err() {
            return self.refuse(token, &request, RequestError::BadRequest, false);
        }
        let now = self.now;
        let peer = self.conns[token.0].peer;
        let (key, role) = match session {
            None => match self.new_session(TransportKind::WebSocket, protocol, peer, request) {
                Ok(key) => {
                    self.sessions[key.index].ws = Some(token);
                    (key, WsRole::Active)
                }
                Err(refused) => return self.refuse(token, &refused.1, refused.0, false),
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
    pub(super) fn process_ws(&mut self, token: Token) -> bool {
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
        conn.share = conn.share.saturating_sub(1);
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
            // A protocol 3 binary frame starts with its type byte: taken off below, where
            // the session is at hand.
            WsEvent::Binary(data) => Packet::Message(Message::Binary(data)),
            // Protocol 3 only: `b4` + base64 in a text frame (never valid in protocol 4).
            WsEvent::Text(text) if text.starts_with('b') => {
                let decoded = if self.session_is_v3(session) {
                    payload_v3::decode_text_record(&text).ok()
                } else {
                    None
                };
                match decoded {
                    Some(p) => p,
                    None => {
                        self.conns[token.0].inbuf.clear();
                        self.fail_ws(token, session, role, 1000, CloseReason::ParseError);
                        return false;
                    }
                }
            }
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
        let mut packet = packet;
        if slot.session.is_v3()
            && let Packet::Message(Message::Binary(data)) = &packet
        {
            match payload_v3::decode_ws_binary(data) {
                Ok(p) => packet = p,
                Err(_) => {
                    self.conns[token.0].inbuf.clear();
                    self.fail_ws(token, session, role, 1000, CloseReason::ParseError);
                    return false;
                }
            }
        }
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
        self.detach_ws(session, role, reason);
        self.close_ws_gracefully(token, code, "");
    }

    /// A WebSocket stops serving its session: an active transport closes the session with
    /// `reason`, a probe abandons the upgrade, a doomed one was serving nothing.
    pub(super) fn detach_ws(&mut self, session: SessionKey, role: WsRole, reason: CloseReason) {
        let now = self.now;
        let Some(slot) = self.slot_mut(session.into()) else {
            return;
        };
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

    pub(super) fn close_ws_gracefully(&mut self, token: Token, code: u16, reason: &str) {
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

    /// Whether the session a WebSocket serves speaks Engine.IO protocol 3.
    fn session_is_v3(&self, session: SessionKey) -> bool {
        self.slot(session.into())
            .is_some_and(|slot| slot.session.is_v3())
    }
}
