//! What the engine tells its handler: the [`EngineHandler`] trait, and the ids and
//! handshake it hands out.

use super::Engine;
use super::conn::SessionKey;
use crate::protocol::engineio::TransportKind;
use crate::protocol::engineio::packet::Message;
use crate::protocol::engineio::session::CloseReason;
use crate::protocol::http::{Request, Response};
use std::net::SocketAddr;
use std::time::Instant;

/// Identifies one Engine.IO session for as long as it lives. Copy it freely: once the
/// session is gone, operations on the id do nothing.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Ord, PartialOrd)]
pub struct SessionId {
    pub(super) index: usize,
    pub(super) generation: u32,
}

impl From<SessionKey> for SessionId {
    fn from(k: SessionKey) -> Self {
        SessionId {
            index: k.index,
            generation: k.generation,
        }
    }
}

/// What a session was opened with: the handshake request.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The client's address.
    pub address: SocketAddr,
    /// The handshake request (path, query, headers; no body).
    pub request: Request,
    /// The transport the session started on.
    pub transport: TransportKind,
}

/// Receives what happens to sessions. Every method runs on the loop thread and gets the
/// [`Engine`] to send, close or look sessions up.
pub trait EngineHandler {
    /// A session opened (after its handshake).
    fn on_open(&mut self, engine: &mut Engine, id: SessionId) {
        let _ = (engine, id);
    }
    /// A message arrived.
    fn on_message(&mut self, engine: &mut Engine, id: SessionId, message: Message) {
        let _ = (engine, id, message);
    }
    /// A session closed; `id` is no longer valid afterwards.
    fn on_close(&mut self, engine: &mut Engine, id: SessionId, reason: CloseReason) {
        let _ = (engine, id, reason);
    }
    /// A request for a path other than the Engine.IO path. `None` answers 404.
    fn on_http(&mut self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }
    /// The loop was woken through a [`WakeHandle`](super::WakeHandle) (another thread has work for it).
    fn on_wake(&mut self, engine: &mut Engine) {
        let _ = engine;
    }
    /// The handler's own next deadline; the loop sleeps no longer than this.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
    /// Called every loop iteration once [`EngineHandler::poll_timeout`] has passed
    /// (spurious calls must be harmless).
    fn on_timeout(&mut self, engine: &mut Engine) {
        let _ = engine;
    }
    /// Appends the handler's own counters, as Prometheus text, to the metrics page.
    fn metrics(&mut self, out: &mut String) {
        let _ = out;
    }
}

#[derive(Debug)]
pub(super) enum Dispatch {
    Open(SessionId),
    Message(SessionId, Message),
    Close(SessionId, CloseReason),
}
