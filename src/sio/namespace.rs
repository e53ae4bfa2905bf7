//! A namespace's handlers as the application registers them: connection middleware,
//! connect and disconnect handlers, event handlers and event middleware.

use super::{Ack, ConnectCx, ConnectError, DisconnectReason, Event, SocketCx};
use crate::client_log::Clipped;
use foldhash::HashMap;
use serde::de::DeserializeOwned;

/// What an event middleware decides about an incoming event.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Refuse {
    /// Drop the event (it is counted); the socket stays.
    Drop,
    /// Drop the event and disconnect the socket (`server namespace disconnect`).
    Disconnect,
}

pub(super) type Middleware<S> = Box<dyn FnMut(&mut ConnectCx<'_, S>) -> Result<(), ConnectError>>;
pub(super) type OnConnect<S> = Box<dyn FnMut(&mut SocketCx<'_, S>)>;
pub(super) type OnDisconnect<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, DisconnectReason)>;
pub(super) type OnEvent<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>)>;
pub(super) type EventMiddleware<S> =
    Box<dyn FnMut(&mut SocketCx<'_, S>, &Event) -> Result<(), Refuse>>;
pub(super) type NamespaceMatcher = Box<dyn Fn(&str) -> bool>;

/// The handlers of a namespace (shared by the children of a dynamic namespace).
pub struct Namespace<S> {
    pub(super) middleware: Vec<Middleware<S>>,
    pub(super) on_connect: Option<OnConnect<S>>,
    pub(super) on_disconnect: Option<OnDisconnect<S>>,
    pub(super) events: HashMap<String, OnEvent<S>>,
    pub(super) any: Option<OnEvent<S>>,
    pub(super) event_middleware: Vec<EventMiddleware<S>>,
}

impl<S> std::fmt::Debug for Namespace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Namespace<S> {
    pub(super) fn new() -> Self {
        Namespace {
            middleware: Vec::new(),
            on_connect: None,
            on_disconnect: None,
            events: HashMap::default(),
            any: None,
            event_middleware: Vec::new(),
        }
    }

    /// Adds a connection middleware. Middlewares run in order when a client connects to
    /// the namespace; the first `Err` refuses it with CONNECT_ERROR `{message, data}`.
    /// This is where authentication belongs.
    pub fn use_middleware(
        &mut self,
        f: impl FnMut(&mut ConnectCx<'_, S>) -> Result<(), ConnectError> + 'static,
    ) -> &mut Self {
        self.middleware.push(Box::new(f));
        self
    }

    /// Called when a socket has connected (after the middlewares accepted it).
    pub fn on_connect(&mut self, f: impl FnMut(&mut SocketCx<'_, S>) + 'static) -> &mut Self {
        self.on_connect = Some(Box::new(f));
        self
    }

    /// Called when a socket disconnects, with the reason. The socket's rooms and data are
    /// still readable here.
    pub fn on_disconnect(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, DisconnectReason) + 'static,
    ) -> &mut Self {
        self.on_disconnect = Some(Box::new(f));
        self
    }

    /// Handles an event with typed arguments (see [`Event::deserialize`]). Arguments that
    /// do not deserialize into `T` drop the event, with a log line.
    pub fn on<T: DeserializeOwned + 'static>(
        &mut self,
        event: &str,
        mut f: impl FnMut(&mut SocketCx<'_, S>, T, Option<Ack>) + 'static,
    ) -> &mut Self {
        let name = event.to_owned();
        self.on_raw(event, move |cx, event, ack| {
            match event.deserialize::<T>() {
                Ok(args) => f(cx, args, ack),
                Err(e) => {
                    cx.count_refused();
                    // The client chose the arguments, and serde's message quotes them.
                    if cx.may_log_client() {
                        log::debug!(
                            "sioloop: event {} from {} dropped: {}",
                            Clipped(&name),
                            cx.peer(),
                            Clipped(&e.to_string())
                        );
                    }
                }
            }
        })
    }

    /// Handles an event with its raw [`Event`] (no parsing of the arguments).
    pub fn on_raw(
        &mut self,
        event: &str,
        f: impl FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>) + 'static,
    ) -> &mut Self {
        self.events.insert(event.to_owned(), Box::new(f));
        self
    }

    /// Handles every event that has no handler of its own.
    pub fn on_any(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>) + 'static,
    ) -> &mut Self {
        self.any = Some(Box::new(f));
        self
    }

    /// Adds an event middleware: it sees every incoming event before its handler and may
    /// refuse it (rate limits and validation plug in here).
    pub fn use_event_middleware(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) -> Result<(), Refuse> + 'static,
    ) -> &mut Self {
        self.event_middleware.push(Box::new(f));
        self
    }
}

/// A namespace name as clients send it: with its leading slash.
pub(super) fn normalize_nsp(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}
