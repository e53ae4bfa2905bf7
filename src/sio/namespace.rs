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
pub(super) type OnAny<S> = Box<dyn FnMut(&mut SocketCx<'_, S>, &Event)>;
pub(super) type EventMiddleware<S> =
    Box<dyn FnMut(&mut SocketCx<'_, S>, &Event) -> Result<(), Refuse>>;
pub(super) type NamespaceMatcher = Box<dyn Fn(&str) -> bool>;

/// The handlers of a namespace (shared by the children of a dynamic namespace).
pub struct Namespace<S> {
    pub(super) middleware: Vec<Middleware<S>>,
    pub(super) on_connect: Option<OnConnect<S>>,
    pub(super) on_disconnecting: Option<OnDisconnect<S>>,
    pub(super) on_disconnect: Option<OnDisconnect<S>>,
    pub(super) events: HashMap<String, OnEvent<S>>,
    /// Listeners of every event, in the order they run (before the event's handler).
    pub(super) any: Vec<OnAny<S>>,
    pub(super) unhandled: Option<OnEvent<S>>,
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
            on_disconnecting: None,
            on_disconnect: None,
            events: HashMap::default(),
            any: Vec::new(),
            unhandled: None,
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

    /// Called when a socket starts to disconnect, with the reason, while it is still in its
    /// rooms (`socket.on("disconnecting")`): the place to tell its rooms it is leaving.
    ///
    /// ```no_run
    /// # let mut server = sioloop::sio::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/").on_disconnecting(|cx, _reason| {
    ///     let (id, rooms) = (cx.id().to_owned(), cx.rooms());
    ///     for room in rooms.into_iter().filter(|r| *r != id) {
    ///         cx.to(room).emit("left", &id);
    ///     }
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_disconnecting(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, DisconnectReason) + 'static,
    ) -> &mut Self {
        self.on_disconnecting = Some(Box::new(f));
        self
    }

    /// Called when a socket has disconnected, with the reason (`socket.on("disconnect")`):
    /// it has left its rooms and its namespace (so emits to them no longer reach it), its
    /// id and data are still readable. Runs after [`Namespace::on_disconnecting`].
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

    /// Adds a listener of every incoming event of the namespace's sockets, handled or not
    /// (`socket.onAny` for every socket): listeners run in the order they were added,
    /// after the event middlewares accepted the event and before its handler. They see the
    /// event, not its ack: answering is the handler's.
    ///
    /// A socket can also add listeners of its own, and remove them: [`SocketCx::on_any`].
    ///
    /// ```no_run
    /// # let mut server = sioloop::sio::Server::bind("127.0.0.1:0", Default::default(), ())?;
    /// server.of("/").on_any(|cx, event| {
    ///     log::info!("{} sent {}", cx.id(), event.name());
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_any(&mut self, f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static) -> &mut Self {
        self.any.push(Box::new(f));
        self
    }

    /// Adds a listener of every incoming event that runs before the others
    /// (`socket.prependAny`).
    pub fn prepend_any(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event) + 'static,
    ) -> &mut Self {
        self.any.insert(0, Box::new(f));
        self
    }

    /// Handles every event that has no handler of its own (the reference server has no
    /// such thing: an unhandled event is dropped there). The [`Namespace::on_any`]
    /// listeners have seen it first.
    pub fn on_unhandled(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, Event, Option<Ack>) + 'static,
    ) -> &mut Self {
        self.unhandled = Some(Box::new(f));
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
