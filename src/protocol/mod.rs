//! The wire protocols, sans-IO: plain state machines and codecs fed bytes and time, with no
//! sockets, no clock and no threads. The [`engine`](crate::engine) drives them; they are
//! public for tools, tests and fuzzing, and an application does not need them.
//!
//! | module | what it is |
//! |---|---|
//! | [`http`] | just enough HTTP/1.1: request heads (httparse) with limits, bodies, responses, CORS |
//! | [`ws`] | the server side of RFC 6455: the upgrade response, the frame reader |
//! | [`engineio`] | Engine.IO protocol 4: packets, payloads, the handshake query, the session |
//! | [`socketio`] | Socket.IO protocol 5: the packet codec, binary attachments, serde arguments |
//! | `resp` (feature `redis`) | RESP2, the Redis protocol: a reply decoder with limits, commands, pub/sub frames |
//!
//! ```
//! use sioloop::protocol::socketio::{Limits, Packet, PacketType};
//!
//! let packet = Packet::decode(r#"2/chat,["message","hi"]"#, &Limits::default())
//!     .expect("a valid EVENT");
//! assert_eq!(packet.kind, PacketType::Event);
//! assert_eq!(packet.nsp, "/chat");
//! ```

pub mod engineio;
pub mod http;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod resp;
pub mod socketio;
pub mod ws;
