//! sioloop: a Socket.IO v4 server on one synchronous, single-threaded mio event loop, with
//! the Engine.IO v4 server it runs on. No async runtime: handlers run on the loop thread with
//! `&mut` access to your state. Wire-compatible with the official JavaScript clients.
//!
//! # A Socket.IO server
//!
//! [`Server`] owns the application's state and lends it to every handler:
//!
//! ```no_run
//! use sioloop::{Config, ConnectError, Server};
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Game { tick: u64 }
//!
//! let mut server = Server::bind("0.0.0.0:3000", Config::default(), Game::default())?;
//! server.of("/")
//!     .use_middleware(|cx| match cx.auth_as::<serde_json::Value>() {
//!         Some(auth) if auth["token"] == "secret" => Ok(()),
//!         _ => Err(ConnectError::new("not authorized")), // the client sees connect_error
//!     })
//!     .on_connect(|cx| cx.join("match:1"))
//!     .on("move", |cx, dir: String, ack| {
//!         cx.to("match:1").emit("moved", &dir); // the others in the match
//!         if let Some(ack) = ack { cx.ack(ack, &"ok"); }
//!     });
//! server.every(Duration::from_millis(50), |cx| { // a 20 Hz game tick
//!     cx.state().tick += 1;
//!     let tick = cx.state().tick;
//!     cx.to("match:1").volatile().emit("tick", &tick);
//! });
//! server.run()?; // returns after Ctrl-C or SIGTERM
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Event arguments and acks go through serde, so the examples need `serde_json` (and `serde`
//! with its `derive` feature to derive) in your own `Cargo.toml`.
//!
//! # Where to start
//!
//! The Socket.IO server is at the crate root:
//!
//! - [`Server`]: bind, settings and limits, namespaces ([`Server::of`],
//!   [`Server::dynamic`]), loop timers ([`Server::every`]), [`Server::run`].
//! - [`Namespace`]: what an application registers: middleware, `on_connect`, typed
//!   events ([`Namespace::on`]), `on_disconnect`.
//! - [`SocketCx`] and [`ServerCx`]: what a handler gets: the state, emits, acks,
//!   rooms, and the [`Emitter`] that every emit and broadcast goes through.
//! - [`Config`]: the path, heartbeat, transports, CORS, the limits on what a client
//!   can make the server hold, and the Prometheus page ([`Config::metrics_path`]).
//! - [`Handle`]: reach the loop from other threads (`Send + Clone`).
//! - [`Server::in_memory`]: the same server on an in-memory network with a fake clock
//!   ([`engine::MemoryNet`]), to test handlers without sockets.
//! - The examples in the package's `examples/` (`chat`, `lan_game`, `dashboard`, ...):
//!   `cargo run --release --example chat`.
//!
//! Under it, [`engine`] is the Engine.IO server: [`engine::Engine`] with its
//! [`engine::EngineHandler`] trait, and [`engine::EngineServer`] for a raw Engine.IO server
//! (below). [`protocol`] has the codecs and state machines both are made of.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | off | `protocol::resp`: the RESP codec, the groundwork of the Redis adapter (issue 14); no adapter yet |
//!
//! Heavier additions (TLS, a cluster adapter, ...) come behind features, off by default, so
//! the default build stays small (without `redis` its module is not compiled at all); on
//! docs.rs an item behind a feature says which one it needs.
//!
//! # What is implemented
//!
//! Engine.IO protocol 4 over HTTP long-polling and WebSocket, the upgrade from one to the
//! other, heartbeat, CORS, keep-alive. Socket.IO protocol 5: namespaces (static and
//! dynamic), connection and event middleware, events, acks both ways (with timeouts, and
//! collected over a broadcast), binary attachments, rooms, broadcasts, volatile emits, loop
//! timers, a cross-thread handle, connection state recovery
//! ([`Server::connection_state_recovery`]: a socket whose connection drops comes back with
//! its id, rooms, data and missed events). Limits on everything a client can make the
//! server hold, with counters and a Prometheus page. Engine.IO 3 clients
//! (`socket.io-client@2`), off by default as in Node ([`Config::allow_eio3`]), over
//! polling and WebSocket, spoken to in Socket.IO protocol 4.
//!
//! Not implemented: JSONP polling, WebTransport, permessage-deflate, HTTP compression, TLS
//! (put a reverse proxy in front), HTTP/2; in Socket.IO: adapters for several server
//! processes, and parsers other than the default JSON one (msgpack).
//!
//! # More
//!
//! [ARCHITECTURE.md](https://github.com/sioloop/sioloop/blob/main/ARCHITECTURE.md) is the
//! map of the code and the rules it keeps;
//! [BENCHMARKS.md](https://github.com/sioloop/sioloop/blob/main/BENCHMARKS.md) compares
//! sioloop with the reference Node server and socketioxide;
//! [CHANGELOG.md](https://github.com/sioloop/sioloop/blob/main/CHANGELOG.md) lists the
//! changes by version. All three are also in the crate's package.
//!
//! # The data path
//!
//! ```text
//! TCP bytes ─► http (request head, httparse) ─► ws (frames)  | polling (payload \x1e, b64)
//!           ─► engineio::Session (handshake, heartbeat, upgrade, close)   [no IO, time passed in]
//!           ─► your handler (on the loop thread, with &mut access)
//!           ─► per-connection write queues ─► one vectored write per connection per tick
//! ```
//!
//! Everything left of the handler is sans-IO ([`protocol`]: `http`, `ws`, `engineio`,
//! `socketio`): plain state machines fed bytes and time. Only [`engine`] touches mio, sockets
//! and the clock; the Socket.IO server at the crate root runs on it.
//!
//! # An Engine.IO echo server
//!
//! ```no_run
//! use sioloop::engine::{Config, EngineServer};
//!
//! let mut server = EngineServer::bind("127.0.0.1:3000", Config::default().path("/engine.io/"))?;
//! server.on_message(|cx, msg| { cx.send(msg); });
//! server.run()?; // returns after Ctrl-C or SIGTERM, once every session is closed
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs, unsafe_code)]
// On docs.rs (`--cfg docsrs`, Cargo.toml), items behind a feature say which one they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_debug_implementations)]

mod client_log;
pub mod engine;
mod metrics;
pub mod protocol;
pub mod rooms;
mod server;

pub use engine::Config;
pub use server::{
    Ack, AckError, AckResults, AnyListenerId, Args, ConnectCx, ConnectError, DisconnectReason,
    Emitter, Event, Handle, Namespace, Payload, RateLimit, RateLimitAction, RecoveryConfig, Refuse,
    Server, ServerCx, SocketCx, SocketInfo, SocketKey, Stats, TimerId,
};

/// README.md's code blocks, compiled as doctests so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
