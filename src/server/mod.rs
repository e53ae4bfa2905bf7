//! The Socket.IO server: namespaces, middleware, sockets, events, acks, rooms and
//! broadcasts, on top of the Engine.IO [`Engine`](crate::engine::Engine). A private module:
//! `lib.rs` re-exports its public items at the crate root, so users write `sioloop::Server`.
//!
//! The loop owns the application's state `S` and every handler gets `&mut` access to it
//! through its context, so a game keeps its world in a plain struct. Handlers run on the
//! loop thread; other threads reach the loop through a [`Handle`].
//!
//! ```no_run
//! use sioloop::{Config, ConnectError, Server};
//!
//! #[derive(Default)]
//! struct Chat { messages: u64 }
//!
//! let mut server = Server::bind("127.0.0.1:3000", Config::default(), Chat::default())?;
//! server.of("/")
//!     .use_middleware(|cx| match cx.auth_as::<serde_json::Value>() {
//!         Some(auth) if auth["token"] == "secret" => Ok(()),
//!         _ => Err(ConnectError::new("not authorized")),
//!     })
//!     .on_connect(|cx| { cx.join("lobby"); })
//!     .on("chat", |cx, text: String, _ack| {
//!         cx.state().messages += 1;
//!         cx.to("lobby").emit("chat", &text); // everyone in the lobby but the sender
//!     });
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The layer in files:
//! - `setup.rs`: [`Server`], its settings, namespaces and timers, `run`.
//! - `namespace.rs`: [`Namespace`], the handlers an application registers.
//! - `config.rs`: the Socket.IO settings and the rate limit's token bucket.
//! - `core.rs`: the state handlers act on (namespaces, sockets, clients) and its helpers.
//! - `dispatch.rs`: the engine's handler: messages to packets to handlers.
//! - `connect.rs`: CONNECT, middlewares, socket creation, CONNECT_ERROR.
//! - `close.rs`: the one close path for sockets.
//! - `acks.rs`: acknowledgements the server waits for, one or in groups.
//! - `timers.rs`: ack, connect and application timers.
//! - `stats.rs`: the counters and the metrics page.
//! - `cx.rs`: the contexts handlers get, the [`Emitter`], the [`Handle`].
//! - `args.rs`: event arguments in and out; `reason.rs`: disconnect and error reasons.

mod acks;
mod args;
mod close;
mod config;
mod connect;
mod core;
mod cx;
mod dispatch;
mod namespace;
mod reason;
mod recovery;
mod setup;
mod stats;
mod timers;

/// A received payload: an ack's answer, as [`SocketCx::emit_with_ack`] and
/// [`Emitter::emit_with_ack`] hand it over.
pub use crate::protocol::socketio::Payload;
pub use acks::AckResults;
pub use args::{Ack, Args, Event};
pub use config::{RateLimit, RateLimitAction};
pub use core::SocketKey;
pub use cx::{AnyListenerId, ConnectCx, Emitter, Handle, ServerCx, SocketCx, SocketInfo, TimerId};
pub use namespace::{Namespace, Refuse};
pub use reason::{AckError, ConnectError, DisconnectReason};
pub use recovery::RecoveryConfig;
pub use setup::Server;
pub use stats::Stats;
