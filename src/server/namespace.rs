//! A namespace's handlers as the application registers them: connection middleware,
//! connect and disconnect handlers, event handlers and event middleware.

use super::args::ArgsShape;
use super::{Ack, ConnectCx, ConnectError, DisconnectReason, Event, SocketCx};
use crate::client_log::Clipped;
use crate::protocol::socketio::ArgsError;
use foldhash::HashMap;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::rc::Rc;

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
pub(super) type OnInvalid<S> =
    Box<dyn FnMut(&mut SocketCx<'_, S>, &Event, &ArgsError, Option<Ack>)>;
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
    /// What answers an event whose arguments do not fit its handler's type: shared with
    /// the typed handlers, which run it (whether it was set before or after them).
    on_invalid: Rc<RefCell<Option<OnInvalid<S>>>>,
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
            on_invalid: Rc::new(RefCell::new(None)),
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
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
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

    /// Handles an event with typed arguments. The type of the handler's argument says how
    /// the client's arguments are taken (see [`Event::deserialize`]):
    ///
    /// | handler argument type | client emits | the handler gets |
    /// |---|---|---|
    /// | `T` (`String`, a struct, `Vec<U>`, `Value`, `Option<U>`...) | `emit("e", a, ...)` | the first argument `a` as a `T`; further ones are ignored |
    /// | `T` | `emit("e")` | `T` read from `null`: `None` for an `Option`, an error for most others |
    /// | `(A, B)` (any tuple, or `[U; N]`) | `emit("e", a, b, ...)` | the arguments by position; further ones are ignored, fewer than the tuple has is an error |
    /// | [`Args<U>`](super::Args) | `emit("e", a, b, ...)` | every argument, each a `U`, as a list (empty if none) |
    /// | `()` | anything | nothing: the arguments are ignored |
    ///
    /// So `emit("e", [1, 2])` and `emit("e", 1, 2)` never look the same: as a `Vec<u32>`
    /// the first gives `[1, 2]` and the second fails (its first argument, `1`, is not a
    /// list); as an `Args<u32>` the second gives `[1, 2]` and the first fails; as a
    /// `(u32, u32)` only the second fits. (Before, a `Vec` or a tuple took several
    /// arguments as one list, the same as one list argument.)
    ///
    /// Arguments that do not fit `T` never reach `f`. Such an event is counted in
    /// [`Stats::events_refused`](super::Stats::events_refused), logged at `warn` (the 1st,
    /// 2nd, 4th, 8th... of each socket, and a few per client address per second), and
    /// answered by the [`Namespace::on_invalid`] hook, or without one: if the client asked
    /// for an acknowledgement, it gets one argument
    /// `{"error": "invalid arguments: <what serde said>"}`, so its callback or
    /// `emitWithAck` does not wait for a timeout. (The reference server has no typed
    /// handlers and so no such answer.)
    ///
    /// ```
    /// use sioloop::{Args, Server};
    /// use serde_json::Value;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Move { x: i32, y: i32 }
    ///
    /// let (mut server, _net) = Server::in_memory(Default::default(), ());
    /// server
    ///     .of("/")
    ///     // socket.emit("move", {x: 1, y: 2})
    ///     .on("move", |_cx, m: Move, _ack| { let _ = (m.x, m.y); })
    ///     // socket.emit("say", "room", "hello")
    ///     .on("say", |_cx, (room, text): (String, String), _ack| { let _ = (room, text); })
    ///     // socket.emit("tags", "a", "b", "c"): every argument
    ///     .on("tags", |_cx, Args(tags): Args<String>, _ack| { let _ = tags; })
    ///     // socket.emit("batch", [1, 2, 3]): one argument that is a list
    ///     .on("batch", |_cx, items: Vec<u32>, _ack| { let _ = items; })
    ///     // socket.emit("ping"), with or without arguments
    ///     .on("ping", |_cx, (): (), _ack| {});
    /// ```
    pub fn on<T: DeserializeOwned + 'static>(
        &mut self,
        event: &str,
        mut f: impl FnMut(&mut SocketCx<'_, S>, T, Option<Ack>) + 'static,
    ) -> &mut Self {
        let shape = ArgsShape::of::<T>();
        let on_invalid = Rc::clone(&self.on_invalid);
        self.on_raw(event, move |cx, event, ack| {
            match event.deserialize_as::<T>(shape) {
                Ok(args) => f(cx, args, ack),
                Err(error) => invalid_arguments(cx, &event, &error, ack, &on_invalid),
            }
        })
    }

    /// Answers the events of this namespace whose arguments do not fit their handler's
    /// type (see [`Namespace::on`]), in place of the default answer (an error object to
    /// the acknowledgement, if the client asked for one). The event is still counted and
    /// logged.
    ///
    /// ```
    /// use sioloop::Server;
    ///
    /// let (mut server, _net) = Server::in_memory(Default::default(), ());
    /// server
    ///     .of("/")
    ///     .on("move", |_cx, (x, y): (i32, i32), _ack| { let _ = (x, y); })
    ///     // Tell the client with an event, and answer its ack the usual way.
    ///     .on_invalid(|cx, event, error, ack| {
    ///         let message = error.to_string();
    ///         cx.emit_args("invalid", &(event.name(), &message));
    ///         if let Some(ack) = ack {
    ///             cx.ack(ack, &serde_json::json!({ "error": message }));
    ///         }
    ///     });
    /// ```
    pub fn on_invalid(
        &mut self,
        f: impl FnMut(&mut SocketCx<'_, S>, &Event, &ArgsError, Option<Ack>) + 'static,
    ) -> &mut Self {
        *self.on_invalid.borrow_mut() = Some(Box::new(f));
        self
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
    /// # let mut server = sioloop::Server::bind("127.0.0.1:0", Default::default(), ())?;
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

/// The most bytes of serde's message an error answer carries: the message quotes the
/// client's own data, which need not come back whole.
const INVALID_MESSAGE_BYTES: usize = 256;

/// An event whose arguments do not fit its handler's type: counted, logged (rate-limited),
/// and answered by the namespace's hook or, without one, with an error to its ack.
fn invalid_arguments<S: 'static>(
    cx: &mut SocketCx<'_, S>,
    event: &Event,
    error: &ArgsError,
    ack: Option<Ack>,
    on_invalid: &RefCell<Option<OnInvalid<S>>>,
) {
    cx.count_refused();
    let nth = cx.count_invalid_event();
    // The 1st, 2nd, 4th... of a socket: a client sending nothing but bad events shows
    // in the log without filling it.
    if nth.is_power_of_two() && cx.may_warn_client() {
        log::warn!(
            "sioloop: event {} from {} (socket {}, {} so far) has invalid arguments: {}",
            Clipped(event.name()),
            cx.peer(),
            cx.id(),
            nth,
            Clipped(&error.to_string())
        );
    }
    // Borrowed only here, and a hook cannot reach another event's handler while it runs.
    if let Ok(mut hook) = on_invalid.try_borrow_mut()
        && let Some(hook) = hook.as_mut()
    {
        return hook(cx, event, error, ack);
    }
    if let Some(ack) = ack {
        let mut message = error.to_string();
        // Where in the packet's text serde stopped tells the client nothing it can use.
        let without_position = message_without_position(&message).len();
        message.truncate(without_position);
        if message.len() > INVALID_MESSAGE_BYTES {
            let mut end = INVALID_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        cx.ack(ack, &serde_json::json!({ "error": message }));
    }
}

/// serde_json's message without the ` at line L column C` it ends with.
fn message_without_position(message: &str) -> &str {
    let Some((before, position)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let is_position = position
        .split_once(" column ")
        .is_some_and(|(line, column)| {
            [line, column]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    if is_position { before } else { message }
}

/// A namespace name as clients send it: with its leading slash.
pub(super) fn normalize_nsp(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::message_without_position;

    #[test]
    fn serde_positions_are_left_out_of_answers() {
        assert_eq!(
            message_without_position(
                "invalid type: string \"x\", expected u32 at line 1 column 13"
            ),
            "invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            message_without_position("a string \"at line 2\""),
            "a string \"at line 2\""
        );
        assert_eq!(
            message_without_position("x at line a column 1"),
            "x at line a column 1"
        );
    }
}
