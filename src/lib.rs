//! sioloop: a Socket.IO v4 / Engine.IO v4 server on one synchronous, single-threaded mio
//! event loop.
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
//! Everything left of the handler is sans-IO ([`engineio`], [`http`], [`ws`]): plain state
//! machines fed bytes and time. Only [`server`] touches mio, sockets and the clock.
//!
//! # An Engine.IO echo server
//!
//! ```no_run
//! use sioloop::server::{EngineServer, Config};
//!
//! let mut server = EngineServer::bind("127.0.0.1:3000", Config::default().path("/engine.io/"))?;
//! server.on_message(|cx, msg| { cx.send(msg); });
//! server.run()?; // returns after Ctrl-C, once every session is closed
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is implemented
//!
//! Engine.IO protocol 4 over HTTP long-polling and WebSocket, the upgrade from one to the
//! other, heartbeat, CORS, keep-alive. Not implemented: Engine.IO 3 clients (`EIO=3` is
//! refused), JSONP polling, WebTransport, permessage-deflate, HTTP compression, TLS (put a
//! reverse proxy in front), HTTP/2.

#![deny(missing_docs, unsafe_code)]
// On docs.rs (`--cfg docsrs`, Cargo.toml), items behind a feature say which one they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_debug_implementations)]

mod client_log;
pub mod engineio;
pub mod http;
mod metrics;
pub mod rooms;
pub mod server;
pub mod sio;
pub mod socketio;
pub mod ws;

/// README.md's code blocks, compiled as doctests so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
