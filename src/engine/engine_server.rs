//! An Engine.IO-only server with closure callbacks, like the Node `engine.io` package.

use super::{Config, Engine, EngineHandler, SessionId, ShutdownHandle};
use crate::protocol::engineio::{CloseReason, Message, RequestError};
use crate::protocol::http::{Request, Response};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

type OnOpen = Box<dyn FnMut(&mut Context<'_>)>;
type OnMessage = Box<dyn FnMut(&mut Context<'_>, Message)>;
type OnClose = Box<dyn FnMut(&mut Context<'_>, CloseReason)>;
type OnHttp = Box<dyn FnMut(&Request) -> Option<Response>>;

/// A raw Engine.IO server: sessions, messages (text or binary), send and close.
///
/// ```no_run
/// use sioloop::engine::{Config, EngineServer};
/// use sioloop::protocol::engineio::Message;
///
/// let mut server = EngineServer::bind("127.0.0.1:3000", Config::default().path("/engine.io/"))?;
/// server.on_connection(|cx| println!("{} connected", cx.sid()));
/// server.on_message(|cx, msg| {
///     if let Message::Text(t) = &msg { println!("{}: {t}", cx.sid()); }
///     cx.send(msg); // echo: text stays text, binary stays binary
/// });
/// server.on_close(|cx, reason| println!("{} closed: {reason}", cx.sid()));
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EngineServer {
    engine: Engine,
    callbacks: Callbacks,
}

impl std::fmt::Debug for EngineServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineServer")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Callbacks {
    on_open: Option<OnOpen>,
    on_message: Option<OnMessage>,
    on_close: Option<OnClose>,
    on_http: Option<OnHttp>,
}

/// What a callback gets: the session it is about, and the engine to act on.
#[derive(Debug)]
pub struct Context<'a> {
    engine: &'a mut Engine,
    id: SessionId,
    sid: String,
}

impl Context<'_> {
    /// The session this callback is about.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The session's Engine.IO id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Sends a message to this session. Returns false if it is closed.
    pub fn send(&mut self, message: Message) -> bool {
        self.engine.send(self.id, message)
    }

    /// Sends a text message to this session.
    pub fn send_text(&mut self, text: impl Into<String>) -> bool {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message to this session.
    pub fn send_binary(&mut self, data: impl Into<Vec<u8>>) -> bool {
        self.send(Message::Binary(data.into()))
    }

    /// Closes this session (`forced close`).
    pub fn close(&mut self) {
        self.engine.close(self.id)
    }

    /// The engine, to reach other sessions.
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }
}

impl EngineServer {
    /// Binds the server.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<EngineServer> {
        Ok(EngineServer {
            engine: Engine::bind(addr, config)?,
            callbacks: Callbacks::default(),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.engine.local_addr()
    }

    /// A handle that stops the server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.engine.shutdown_handle()
    }

    /// Called when a session opens.
    pub fn on_connection(&mut self, f: impl FnMut(&mut Context<'_>) + 'static) -> &mut Self {
        self.callbacks.on_open = Some(Box::new(f));
        self
    }

    /// Called for every message.
    pub fn on_message(&mut self, f: impl FnMut(&mut Context<'_>, Message) + 'static) -> &mut Self {
        self.callbacks.on_message = Some(Box::new(f));
        self
    }

    /// Called when a session closes, with the reason.
    pub fn on_close(
        &mut self,
        f: impl FnMut(&mut Context<'_>, CloseReason) + 'static,
    ) -> &mut Self {
        self.callbacks.on_close = Some(Box::new(f));
        self
    }

    /// Sees every Engine.IO request the server refuses, with the peer's address and the
    /// error (code and message as in the response): Node's `connection_error` event. See
    /// [`Engine::set_connection_error`].
    pub fn on_connection_error(
        &mut self,
        f: impl FnMut(&Request, SocketAddr, RequestError) + 'static,
    ) -> &mut Self {
        self.engine.set_connection_error(f);
        self
    }

    /// Adds headers to the answer to every handshake: Node's `initial_headers` event. See
    /// [`Engine::set_initial_headers`].
    pub fn on_initial_headers(
        &mut self,
        f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static,
    ) -> &mut Self {
        self.engine.set_initial_headers(f);
        self
    }

    /// Adds headers to every transport response: Node's `headers` event. See
    /// [`Engine::set_headers`].
    pub fn on_headers(
        &mut self,
        f: impl FnMut(&Request, &mut Vec<(String, String)>) + 'static,
    ) -> &mut Self {
        self.engine.set_headers(f);
        self
    }

    /// Answers requests for paths other than the Engine.IO path (a page, a health check).
    /// Returning `None` answers 404.
    pub fn on_http(&mut self, f: impl FnMut(&Request) -> Option<Response> + 'static) -> &mut Self {
        self.callbacks.on_http = Some(Box::new(f));
        self
    }

    /// Runs until Ctrl-C, SIGTERM or [`ShutdownHandle::shutdown`], then closes every session
    /// with `server shutting down` and returns. The signals are caught only while it runs,
    /// and not at all with [`Config::shutdown_on_signals`] off.
    pub fn run(&mut self) -> io::Result<()> {
        self.engine.run(&mut self.callbacks)
    }
}

impl Callbacks {
    fn with_context(engine: &mut Engine, id: SessionId, f: impl FnOnce(&mut Context<'_>)) {
        let sid = engine.sid(id).unwrap_or_default().to_owned();
        f(&mut Context { engine, id, sid });
    }
}

impl EngineHandler for Callbacks {
    fn on_open(&mut self, engine: &mut Engine, id: SessionId) {
        if let Some(f) = self.on_open.as_mut() {
            Callbacks::with_context(engine, id, f);
        }
    }

    fn on_message(&mut self, engine: &mut Engine, id: SessionId, message: Message) {
        if let Some(f) = self.on_message.as_mut() {
            Callbacks::with_context(engine, id, |cx| f(cx, message));
        }
    }

    fn on_close(&mut self, engine: &mut Engine, id: SessionId, reason: CloseReason) {
        if let Some(f) = self.on_close.as_mut() {
            Callbacks::with_context(engine, id, |cx| f(cx, reason));
        }
    }

    fn on_http(&mut self, request: &Request) -> Option<Response> {
        self.on_http.as_mut().and_then(|f| f(request))
    }
}
