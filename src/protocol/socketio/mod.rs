//! Socket.IO protocol 5, sans-IO: the packet codec, the reassembly of binary packets with
//! their attachments, and arguments in and out through serde with binary as attachments.
//!
//! A Socket.IO packet travels in one Engine.IO text message
//! (`<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`). A `BINARY_EVENT` or `BINARY_ACK`
//! packet is followed by its attachments, one Engine.IO binary message each; its JSON holds a
//! placeholder `{"_placeholder":true,"num":N}` where attachment `N` belongs.
//!
//! - [`packet`]: [`Packet::decode`] (strict, like the reference parser) and
//!   [`Packet::encode`] (the canonical wire form).
//! - [`binary`]: [`Assembler`] turns the Engine.IO messages of one connection into
//!   [`Complete`] packets with their attachments.
//! - [`value`]: [`Payload`] holds the raw JSON with its attachments and deserializes it,
//!   placeholders and all, into any `serde` type; [`to_json_with_attachments`] serializes
//!   any `serde` type, turning bytes into placeholders and attachments.
//!
//! Nothing here touches a socket or the clock.
//!
//! ```
//! use sioloop::protocol::socketio::{Assembler, Limits, Payload};
//!
//! let mut assembler = Assembler::new(Limits::default());
//! assert!(assembler.push_text(r#"51-["up",{"_placeholder":true,"num":0}]"#)?.is_none());
//! let done = assembler.push_binary(vec![1, 2, 3])?.expect("the only attachment");
//! let data = done.packet.data.expect("an event has data");
//! let (name, bytes): (String, serde_bytes::ByteBuf) =
//!     Payload::from_raw(data, done.attachments).deserialize()?;
//! assert_eq!((name.as_str(), bytes.as_slice()), ("up", &[1, 2, 3][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod binary;
mod de;
pub mod packet;
mod ser;
pub mod value;

#[cfg(test)]
mod tests;

pub use binary::{Assembler, Complete};
pub use packet::{DecodeError, Limits, Packet, PacketType, RESERVED_EVENTS};
pub use value::{ArgsError, Payload, to_json_with_attachments};
