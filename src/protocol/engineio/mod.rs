//! Engine.IO protocol 4, sans-IO: packets and payloads, the handshake query, and the session
//! state machine.
//!
//! Nothing here touches a socket or the clock; the [`crate::engine`] driver feeds bytes and
//! time in and writes what comes out.

pub mod handshake;
pub mod packet;
pub mod payload_v3;
pub mod session;

pub use handshake::{RequestError, TransportKind};
pub use packet::{Message, Packet, PacketType};
pub use session::{CloseReason, Session, SessionConfig};
