//! HTTP on a connection: parsing requests, routing them (Engine.IO handshake, polling GET
//! and POST, WebSocket upgrade, the metrics page, the application's own paths) and writing
//! responses.

use super::conn::ConnState;
use super::sessions::Protocol;
use super::{Engine, EngineHandler};
use crate::client_log::Clipped;
use crate::protocol::engineio::TransportKind;
use crate::protocol::engineio::handshake::{EngineQuery, RequestError};
use crate::protocol::engineio::packet::decode_payload;
use crate::protocol::engineio::payload_v3;
use crate::protocol::engineio::session::{CloseReason, PollError};
use crate::protocol::http::{self, Parsed, Request, Response};
use mio::Token;
use std::net::SocketAddr;

type AllowRequestFn = Box<dyn FnMut(&Request, SocketAddr) -> bool>;

pub(super) struct AllowRequest(pub(super) AllowRequestFn);

impl std::fmt::Debug for AllowRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllowRequest")
    }
}

type HeadersFn = Box<dyn FnMut(&Request, &mut Vec<(String, String)>)>;

/// An application hook that adds headers to transport responses (`Engine::set_headers`,
/// `Engine::set_initial_headers`).
pub(super) struct HeadersHook(pub(super) HeadersFn);

impl std::fmt::Debug for HeadersHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadersHook")
    }
}

type ConnectionErrorFn = Box<dyn FnMut(&Request, SocketAddr, RequestError)>;

/// The application's hook for refused Engine.IO requests (`Engine::set_connection_error`).
pub(super) struct ConnectionErrorHook(pub(super) ConnectionErrorFn);

impl std::fmt::Debug for ConnectionErrorHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionErrorHook")
    }
}

impl Engine {
    pub(super) fn process_input(&mut self, token: Token) {
        self.parse_input(token);
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.compact_inbuf(&mut self.pool);
        }
    }

    fn parse_input(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            if conn.close_after_flush {
                conn.inbuf.clear();
                return;
            }
            if conn.share == 0 {
                // Its share of this turn is used: the rest waits for the next turn.
                if conn.inbuf.len() > conn.inbuf_consumed {
                    conn.input_waiting = true;
                    self.defer(token);
                }
                return;
            }
            match &conn.state {
                ConnState::Http => {
                    if !self.process_http(token) {
                        return;
                    }
                }
                ConnState::WebSocket { .. } => {
                    if !self.process_ws(token) {
                        return;
                    }
                }
                ConnState::HeldGet { .. } | ConnState::Lingering => return,
            }
        }
    }

    /// Parses one HTTP request from the connection's buffer and answers or routes it.
    /// Returns whether to keep parsing this connection's input.
    fn process_http(&mut self, token: Token) -> bool {
        let conn = &mut self.conns[token.0];
        let parsed = match http::parse_head(&conn.inbuf, &self.config.head_limits) {
            Ok(p) => p,
            Err(e) => {
                let response = Response::new(e.status(), "text/plain", e.to_string());
                self.respond(token, &response, None, false);
                return false;
            }
        };
        let Parsed::Complete {
            mut request,
            head_len,
            body_len,
        } = parsed
        else {
            return false;
        };
        let is_engine = request.path.starts_with(&self.config.path)
            || request.path == self.config.path.trim_end_matches('/');
        if is_engine && body_len > self.config.max_payload {
            // Refuse before buffering it. The connection closes: skipping an unread body
            // is not worth the complexity for a client that broke the limit it was given.
            let origin = request.header("origin").map(str::to_owned);
            if let Some(key) = EngineQuery::parse(&request.query)
                .sid
                .and_then(|sid| self.session_by_sid(sid))
            {
                self.close_session(key.into(), CloseReason::TransportError);
            }
            // 413 as the reference server answers, with the Engine.IO error body of a bad
            // request so the reason is readable.
            let error = RequestError::BadRequest;
            self.report_connection_error(token, &request, error);
            let response = Response::new(413, "application/json", error.json());
            self.respond(token, &response, origin.as_deref(), false);
            return false;
        }
        if !is_engine && body_len > self.config.max_payload {
            let response = Response::new(413, "text/plain", "body too large");
            self.respond(token, &response, None, false);
            return false;
        }
        let conn = &mut self.conns[token.0];
        if conn.inbuf.len() < head_len + body_len {
            return false;
        }
        request.body = conn.inbuf[head_len..head_len + body_len].to_vec();
        conn.inbuf.drain(..head_len + body_len);
        conn.share = conn.share.saturating_sub(1);
        if is_engine {
            // The client bundle, when served, comes before Engine.IO (as Node's
            // `attachServe` answers before the engine); without it this is one check.
            if !self.client_files.is_empty() && self.serve_client_file(token, &request) {
                return true;
            }
            self.handle_engine_request(token, request);
        } else {
            // Answered by the handler in `settle`; parsing resumes after the response so
            // pipelined responses keep their order.
            self.pending_http.push((token, request));
            return false;
        }
        true
    }

    pub(super) fn respond(
        &mut self,
        token: Token,
        response: &Response,
        origin: Option<&str>,
        keep_alive: bool,
    ) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let keep_alive = keep_alive && !self.shutting_down;
        let mut response = response.clone();
        if let Some(cors) = &self.config.cors {
            cors.add_headers(origin, &mut response.headers);
        }
        if response.status >= 400 {
            self.stats.requests_refused += 1;
        }
        conn.out
            .extend_with(&mut self.pool, |out| response.write_to(out, keep_alive));
        if !keep_alive {
            conn.close_after_flush = true;
        }
        self.queue_flush(token);
        self.arm_idle_deadline(token);
    }

    pub(super) fn respond_error(
        &mut self,
        token: Token,
        error: RequestError,
        origin: Option<&str>,
        keep_alive: bool,
    ) {
        let response = Response::new(error.http_status(), "application/json", error.json());
        self.respond(token, &response, origin, keep_alive);
    }

    /// Answers an Engine.IO request with its error, after the application's
    /// `connection_error` hook has seen it.
    pub(super) fn refuse(
        &mut self,
        token: Token,
        request: &Request,
        error: RequestError,
        keep_alive: bool,
    ) {
        self.report_connection_error(token, request, error);
        let origin = request.header("origin");
        self.respond_error(token, error, origin, keep_alive);
    }

    /// The headers the application adds to a transport's answer to `request`: Node's
    /// `initial_headers` on a handshake, then `headers`. Empty (no allocation) without
    /// hooks.
    pub(super) fn extra_headers(
        &mut self,
        request: &Request,
        handshake: bool,
    ) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if handshake && let Some(HeadersHook(hook)) = self.initial_headers.as_mut() {
            hook(request, &mut headers);
        }
        if let Some(HeadersHook(hook)) = self.headers.as_mut() {
            hook(request, &mut headers);
        }
        headers
    }

    /// Keeps the headers for the answer to the GET held on `token` (answered later, when
    /// the request is gone). Only a hook's headers take room.
    fn keep_held_get_headers(&mut self, token: Token, headers: Vec<(String, String)>) {
        if headers.is_empty() {
            self.held_get_headers.remove(&token.0);
        } else {
            self.held_get_headers.insert(token.0, headers);
        }
    }

    fn report_connection_error(&mut self, token: Token, request: &Request, error: RequestError) {
        let Some(ConnectionErrorHook(hook)) = self.connection_error.as_mut() else {
            return;
        };
        if let Some(conn) = self.conns.get(token.0) {
            hook(request, conn.peer, error);
        }
    }

    fn handle_engine_request(&mut self, token: Token, request: Request) {
        let origin = request.header("origin").map(str::to_owned);
        let origin = origin.as_deref();
        let keep_alive = request.keep_alive();
        if request.method == "OPTIONS"
            && let Some(cors) = &self.config.cors
        {
            let response = cors.preflight(&request);
            self.respond(token, &response, None, keep_alive);
            return;
        }
        let query = EngineQuery::parse(&request.query);
        let (transport, v3) =
            match query.validate_with_eio3(&self.config.transports, self.config.allow_eio3) {
                Ok(t) => t,
                Err(e) => return self.refuse(token, &request, e, keep_alive),
            };
        if let (Some(allowed), Some(o)) = (&self.config.allowed_origins, origin)
            && !allowed.iter().any(|a| a == o)
        {
            let peer = self.conns[token.0].peer;
            if self.may_log_peer(peer.ip()) {
                log::debug!(
                    "sioloop: refused a request from {peer}: origin {}",
                    Clipped(o)
                );
            }
            return self.refuse(token, &request, RequestError::Forbidden, false);
        }
        if query.sid.is_none() {
            let peer = self.conns[token.0].peer;
            if let Some(AllowRequest(allow)) = self.allow_request.as_mut()
                && !allow(&request, peer)
            {
                return self.refuse(token, &request, RequestError::Forbidden, false);
            }
        }
        let sid = query.sid.map(str::to_owned);
        let session = match sid.as_deref() {
            Some(sid) => match self.session_by_sid(sid) {
                // A request must speak its session's protocol (reference: "unexpected
                // protocol version during upgrade").
                Some(key) if self.sessions[key.index].session.is_v3() != v3 => {
                    return self.refuse(token, &request, RequestError::BadRequest, false);
                }
                Some(key) => Some(key),
                None => {
                    return self.refuse(token, &request, RequestError::UnknownSid, keep_alive);
                }
            },
            None => None,
        };
        if request.is_websocket_upgrade() {
            if transport != TransportKind::WebSocket {
                return self.refuse(token, &request, RequestError::BadRequest, false);
            }
            let protocol = Protocol::of_handshake(v3, &query);
            return self.handle_ws_upgrade(token, request, session, protocol);
        }
        let Some(key) = session else {
            // A handshake.
            if request.method != "GET" {
                return self.refuse(
                    token,
                    &request,
                    RequestError::BadHandshakeMethod,
                    keep_alive,
                );
            }
            if transport != TransportKind::Polling {
                return self.refuse(token, &request, RequestError::BadRequest, keep_alive);
            }
            let peer = self.conns[token.0].peer;
            let origin_owned = origin.map(str::to_owned);
            let headers = self.extra_headers(&request, true);
            let protocol = Protocol::of_handshake(v3, &query);
            match self.new_session(TransportKind::Polling, protocol, peer, request) {
                Ok(key) => {
                    self.keep_held_get_headers(token, headers);
                    self.sessions[key.index].held_get = Some(token);
                    self.conns[token.0].state = ConnState::HeldGet {
                        session: key,
                        origin: origin_owned,
                        keep_alive,
                    };
                }
                Err(refused) => self.refuse(token, &refused.1, refused.0, false),
            }
            return;
        };
        if transport != TransportKind::Polling {
            return self.refuse(token, &request, RequestError::BadRequest, keep_alive);
        }
        let now = self.now;
        self.dirty_sessions.push(key.index);
        let slot = &mut self.sessions[key.index];
        match request.method.as_str() {
            "GET" => match slot.session.handle_poll_get(now) {
                Ok(()) => {
                    slot.held_get = Some(token);
                    let headers = self.extra_headers(&request, false);
                    self.keep_held_get_headers(token, headers);
                    self.conns[token.0].state = ConnState::HeldGet {
                        session: key,
                        origin: origin.map(str::to_owned),
                        keep_alive,
                    };
                }
                Err(PollError::Closed) => {
                    self.refuse(token, &request, RequestError::UnknownSid, keep_alive)
                }
                Err(PollError::TransportMismatch | PollError::Overlap) => {
                    self.refuse(token, &request, RequestError::BadRequest, keep_alive)
                }
            },
            "POST" => {
                match slot.session.check_poll(now) {
                    Ok(()) => {}
                    Err(PollError::Closed) => {
                        return self.refuse(token, &request, RequestError::UnknownSid, keep_alive);
                    }
                    Err(_) => {
                        return self.refuse(token, &request, RequestError::BadRequest, keep_alive);
                    }
                }
                if !slot.session.is_open() {
                    // Closed but lingering for its last GET: nothing more is accepted.
                    return self.refuse(token, &request, RequestError::UnknownSid, keep_alive);
                }
                let max = self.config.max_packets_per_payload;
                let decoded = if !slot.session.is_v3() {
                    decode_payload(&request.body, max)
                } else if request.header("content-type") == Some("application/octet-stream") {
                    payload_v3::decode_binary_payload(&request.body, max)
                } else {
                    payload_v3::decode_text_payload(&request.body, max)
                };
                match decoded {
                    Ok(packets) => {
                        self.stats.packets_in += packets.len() as u64;
                        for packet in packets {
                            slot.session.handle_packet(packet, now);
                        }
                        let mut response = Response::new(200, "text/html", "ok");
                        response.headers.extend(self.extra_headers(&request, false));
                        self.respond(token, &response, origin, keep_alive);
                    }
                    Err(e) => {
                        slot.session.close(CloseReason::ParseError, now);
                        let peer = slot.handshake.address;
                        if self.may_log_peer(peer.ip()) {
                            log::debug!("sioloop: bad polling payload from {peer}: {e}");
                        }
                        self.refuse(token, &request, RequestError::BadRequest, keep_alive);
                    }
                }
            }
            _ => self.refuse(token, &request, RequestError::BadRequest, keep_alive),
        }
    }

    pub(super) fn handle_pending_http<H: EngineHandler>(&mut self, handler: &mut H) {
        while let Some((token, request)) = self.pending_http.pop() {
            let keep_alive = request.keep_alive();
            let origin = request.header("origin").map(str::to_owned);
            let response = if self.config.metrics_path.as_deref() == Some(request.path.as_str()) {
                let mut text = self.metrics_text();
                handler.metrics(&mut text);
                Response::new(200, "text/plain; version=0.0.4", text)
            } else {
                handler
                    .on_http(&request)
                    .unwrap_or_else(|| Response::new(404, "text/plain", "not found"))
            };
            self.respond(token, &response, origin.as_deref(), keep_alive);
            self.reparse.push(token);
        }
    }
}
