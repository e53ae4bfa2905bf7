//! Engine.IO sessions in the engine: creating them, pumping their events and packets out,
//! answering held polling GETs, and removing them.

use super::conn::{ConnState, SessionKey};
use super::handler::{Dispatch, Handshake, SessionId};
use super::timers::TimerKey;
use super::{Engine, ID_LEN, shared};
use crate::protocol::engineio::TransportKind;
use crate::protocol::engineio::handshake::{EngineQuery, RequestError, open_json, open_json_v3};
use crate::protocol::engineio::packet::{Packet, encode_payload};
use crate::protocol::engineio::payload_v3;
use crate::protocol::engineio::session::{Event, Session};
use crate::protocol::http::{self, Request};
use mio::Token;
use std::net::SocketAddr;
use std::time::Instant;

/// A session's place in the engine.
#[derive(Debug)]
pub(super) struct SessionSlot {
    pub(super) generation: u32,
    pub(super) sid: Sid,
    pub(super) session: Session,
    pub(super) handshake: Handshake,
    /// The WebSocket carrying the session, once it runs on one.
    pub(super) ws: Option<Token>,
    /// A WebSocket probing an upgrade.
    pub(super) probe: Option<Token>,
    /// The connection holding a polling GET.
    pub(super) held_get: Option<Token>,
    /// The deadline already in the timer heap, so it is pushed once.
    pub(super) timer_at: Option<Instant>,
    /// The turn in which a held GET was last answered (the low bits of the turn count).
    pub(super) answered_tick: u32,
    /// What the memory budget counts for it now (saturating).
    pub(super) accounted: u32,
}

/// A session id, stored inline: every session has one, in its slot and as the key of the
/// sid map, and two heap strings per session add up at ten thousand sessions.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub(super) struct Sid([u8; ID_LEN]);

impl Sid {
    /// A sid from a request; anything of another length is no sid of ours.
    pub(super) fn parse(sid: &str) -> Option<Sid> {
        sid.as_bytes().try_into().ok().map(Sid)
    }

    pub(super) fn as_str(&self) -> &str {
        // Always URL-safe base64 (ASCII); the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Engine {
    pub(super) fn new_session(
        &mut self,
        transport: TransportKind,
        protocol: Protocol,
        peer: SocketAddr,
        request: Request,
    ) -> Result<SessionKey, Box<(RequestError, Request)>> {
        let sid = loop {
            // A guessed sid is a hijacked session: only the transport's random source (the
            // OS's) will do.
            let Some(id) = self.random_id() else {
                // The request comes back for the `connection_error` hook.
                return Err(Box::new((RequestError::BadRequest, request)));
            };
            let sid = Sid(id);
            if !self.sids.contains_key(&sid) {
                break sid;
            }
        };
        let upgrades = self.config.upgrades_for(transport);
        let (interval, timeout) = (self.config.ping_interval, self.config.ping_timeout);
        let session = match protocol {
            Protocol::V3 { b64 } => {
                let json = open_json_v3(sid.as_str(), upgrades, interval, timeout);
                Session::new_v3(transport, self.config.session_config(), json, b64, self.now)
            }
            Protocol::V4 => {
                let json = open_json(
                    sid.as_str(),
                    upgrades,
                    interval,
                    timeout,
                    self.config.max_payload,
                );
                Session::new(transport, self.config.session_config(), json, self.now)
            }
        };
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
            answered_tick: u32::MAX,
            accounted: 0,
        });
        self.sids.insert(sid, index);
        self.stats.sessions_opened += 1;
        let key = SessionKey { index, generation };
        self.dispatch.push_back(Dispatch::Open(key.into()));
        self.dirty_sessions.push(index);
        Ok(key)
    }

    pub(super) fn session_by_sid(&self, sid: &str) -> Option<SessionKey> {
        let index = *self.sids.get(&Sid::parse(sid)?)?;
        let slot = self.sessions.get(index)?;
        Some(SessionKey {
            index,
            generation: slot.generation,
        })
    }

    /// Moves a session's events to the dispatch queue and its packets to write queues,
    /// re-arms its timer, and removes it once it is finished.
    pub(super) fn pump_session(&mut self, index: usize) {
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
            let v3 = session.is_v3();
            let mut count = 0u64;
            if let Some(conn) = self.conns.get_mut(token.0) {
                // Framed straight into the connection's last buffer: the packets of a tick
                // become one slice of one write.
                conn.out.extend_with(&mut self.pool, |out| {
                    while let Some(p) = session.poll_ws_packet() {
                        count += 1;
                        shared::write_packet_frame_for(out, &p, v3);
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
                slot.answered_tick = self.tick as u32;
                let protocol = Protocol::of(slot);
                self.answer_held_get(token, &packets, protocol);
            }
        }
        let slot = &mut self.sessions[index];
        if slot.session.is_finished(now) {
            self.remove_session(index);
            return;
        }
        self.account_session(index);
        let slot = &mut self.sessions[index];
        if let Some(at) = slot.session.poll_timeout()
            && slot.timer_at.is_none_or(|t| at < t)
        {
            slot.timer_at = Some(at);
            let key = TimerKey::Session(index, slot.generation);
            self.timers.push(at, key);
        }
    }

    /// The one place a session is removed.
    pub(super) fn remove_session(&mut self, index: usize) {
        if !self.sessions.contains(index) {
            return;
        }
        let slot = self.sessions.remove(index);
        self.sids.remove(&slot.sid);
        self.budget.release(slot.accounted as usize);
        self.budget.held_by_handler.remove(&index);
        for token in [slot.ws, slot.probe].into_iter().flatten() {
            self.close_ws_gracefully(token, 1000, "");
        }
        if let Some(token) = slot.held_get {
            self.answer_held_get(token, &[Packet::Close], Protocol::of(&slot));
        }
    }

    fn answer_held_get(&mut self, token: Token, packets: &[Packet], protocol: Protocol) {
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
        let content_type = match protocol {
            Protocol::V4 => {
                encode_payload(packets, &mut body);
                "text/plain; charset=UTF-8"
            }
            Protocol::V3 { b64 } if payload_v3::wants_binary_payload(!b64, packets) => {
                payload_v3::encode_binary_payload(packets, &mut body);
                "application/octet-stream"
            }
            Protocol::V3 { .. } => {
                payload_v3::encode_text_payload(packets, &mut body);
                "text/plain; charset=UTF-8"
            }
        };
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        if let Some(extra) = self.held_get_headers.remove(&token.0) {
            headers.extend(extra);
        }
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
}

/// A session's Engine.IO protocol, and with it how its polling answers are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// Engine.IO 4: records joined by `\x1e`.
    V4,
    /// Engine.IO 3: length-prefixed records; binary payloads unless the client asked for
    /// base64 (`b64` in its handshake).
    V3 { b64: bool },
}

impl Protocol {
    /// What a handshake asks for (the query was validated: an `EIO` other than 4 is
    /// protocol 3, and allowed).
    pub(super) fn of_handshake(v3: bool, query: &EngineQuery<'_>) -> Protocol {
        if v3 {
            Protocol::V3 {
                b64: query.b64.is_some_and(|b| !b.is_empty()),
            }
        } else {
            Protocol::V4
        }
    }

    fn of(slot: &SessionSlot) -> Protocol {
        if slot.session.is_v3() {
            Protocol::V3 {
                b64: slot.session.v3_base64(),
            }
        } else {
            Protocol::V4
        }
    }
}
