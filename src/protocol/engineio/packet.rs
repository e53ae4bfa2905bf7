//! Engine.IO protocol 4 packets and HTTP long-polling payloads, encoded and decoded without IO.
//!
//! A packet is one type digit followed by its data (`4hello`). Over WebSocket a text frame
//! carries one packet and a binary frame carries one binary *message* with no type digit. Over
//! long-polling, packets are joined by the record separator `\x1e` and a binary message is
//! written as `b` followed by its standard base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;

/// The record separator that joins packets in a long-polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Engine.IO v4 packet types, in the order of the protocol spec.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: sent by the server with the handshake JSON.
    Open = b'0',
    /// `1`: the transport is about to close.
    Close = b'1',
    /// `2`: heartbeat (server to client), or the `probe` of an upgrade (client to server).
    Ping = b'2',
    /// `3`: the answer to a ping.
    Pong = b'3',
    /// `4`: application data.
    Message = b'4',
    /// `5`: the client switches to the probed WebSocket.
    Upgrade = b'5',
    /// `6`: nothing; answers a held polling request during an upgrade.
    Noop = b'6',
}

impl PacketType {
    /// The type for its wire digit, if it is one.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// Application data carried by a `message` packet.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Message {
    /// A UTF-8 message (a WebSocket text frame, or plain text in a polling payload).
    Text(String),
    /// A binary message (a WebSocket binary frame, or `b` + base64 in a polling payload).
    Binary(Vec<u8>),
}

impl Message {
    /// The size of the message's data in bytes, as `maxPayload` counts it.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the message carries no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Engine.IO packet.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Packet {
    /// The handshake, with its JSON.
    Open(String),
    /// Close the session.
    Close,
    /// A ping, with its data (`probe` during an upgrade, empty for a heartbeat).
    Ping(String),
    /// A pong, with the data of the ping it answers.
    Pong(String),
    /// Application data.
    Message(Message),
    /// Switch to the probed transport.
    Upgrade,
    /// Nothing.
    Noop,
}

impl Packet {
    /// The packet's wire type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Whether this packet is a binary message (a binary frame on WebSocket).
    pub fn is_binary(&self) -> bool {
        matches!(self, Packet::Message(Message::Binary(_)))
    }

    /// Appends the text form of a non-binary packet (`4hello`) to `out`, as a WebSocket text
    /// frame carries it. A binary message is appended as its raw bytes, as a binary frame
    /// carries it.
    pub fn encode_ws(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Message(Message::Binary(data)) => out.extend_from_slice(data),
            _ => self.encode_text_form(out),
        }
    }

    /// Appends the packet as it stands in a long-polling payload: binary becomes `b` + base64.
    pub fn encode_polling(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Message(Message::Binary(data)) => {
                out.push(b'b');
                let start = out.len();
                out.resize(
                    start + base64::encoded_len(data.len(), true).unwrap_or(0),
                    0,
                );
                let written = BASE64.encode_slice(data, &mut out[start..]).unwrap_or(0);
                out.truncate(start + written);
            }
            _ => self.encode_text_form(out),
        }
    }

    fn encode_text_form(&self, out: &mut Vec<u8>) {
        out.push(self.packet_type() as u8);
        match self {
            Packet::Open(data) | Packet::Ping(data) | Packet::Pong(data) => {
                out.extend_from_slice(data.as_bytes())
            }
            Packet::Message(Message::Text(text)) => out.extend_from_slice(text.as_bytes()),
            Packet::Message(Message::Binary(_))
            | Packet::Close
            | Packet::Upgrade
            | Packet::Noop => {}
        }
    }

    /// [`Packet::decode_text`] taking the text by value: a message packet keeps the same
    /// buffer (its type digit removed in place) instead of copying the data out.
    ///
    /// ```
    /// use sioloop::protocol::engineio::packet::{Message, Packet};
    /// let p = Packet::decode_text_owned("4hello".to_owned());
    /// assert_eq!(p, Ok(Packet::Message(Message::Text("hello".into()))));
    /// ```
    pub fn decode_text_owned(mut text: String) -> Result<Packet, DecodeError> {
        if text.as_bytes().first() == Some(&b'4') {
            // The digit is ASCII, so removing it keeps the text UTF-8.
            text.remove(0);
            return Ok(Packet::Message(Message::Text(text)));
        }
        Packet::decode_text(&text)
    }

    /// Decodes one packet from its text form (a WebSocket text frame, or one record of a
    /// polling payload that does not start with `b`).
    pub fn decode_text(text: &str) -> Result<Packet, DecodeError> {
        let Some(&digit) = text.as_bytes().first() else {
            return Err(DecodeError::Empty);
        };
        let kind = PacketType::from_digit(digit).ok_or(DecodeError::UnknownType(digit))?;
        // The digit is ASCII, so byte 1 is a char boundary.
        let data = &text[1..];
        Ok(match kind {
            PacketType::Open => Packet::Open(data.to_owned()),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data.to_owned()),
            PacketType::Pong => Packet::Pong(data.to_owned()),
            PacketType::Message => Packet::Message(Message::Text(data.to_owned())),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }
}

/// Why bytes are not a valid Engine.IO packet or payload. Every variant is final: the input
/// is bad, not short (a payload is always complete, being an HTTP body).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum DecodeError {
    /// An empty packet, or an empty record between two separators.
    Empty,
    /// The first byte is not a packet type digit.
    UnknownType(u8),
    /// A text packet or payload that is not UTF-8.
    InvalidUtf8,
    /// A `b` record whose base64 does not decode.
    InvalidBase64,
    /// More packets in one payload than the limit allows.
    TooManyPackets,
    /// A protocol 3 payload whose record lengths do not frame it (see
    /// [`super::payload_v3`]).
    BadLength,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType(b) => write!(f, "unknown packet type byte {b:#04x}"),
            DecodeError::InvalidUtf8 => f.write_str("packet is not valid UTF-8"),
            DecodeError::InvalidBase64 => f.write_str("binary packet is not valid base64"),
            DecodeError::TooManyPackets => f.write_str("too many packets in one payload"),
            DecodeError::BadLength => f.write_str("payload record lengths do not frame it"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a long-polling payload (the body of a POST) into its packets.
///
/// At most `max_packets` packets are accepted, so a body of separators cannot make an
/// unbounded vector.
///
/// ```
/// use sioloop::protocol::engineio::packet::{decode_payload, Message, Packet};
/// let packets = decode_payload(b"4hello\x1ebAQI=\x1e3", 16).unwrap();
/// assert_eq!(packets, vec![
///     Packet::Message(Message::Text("hello".into())),
///     Packet::Message(Message::Binary(vec![1, 2])),
///     Packet::Pong(String::new()),
/// ]);
/// ```
pub fn decode_payload(body: &[u8], max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    let mut packets = Vec::new();
    for record in text.split('\x1e') {
        if packets.len() == max_packets {
            return Err(DecodeError::TooManyPackets);
        }
        let packet = match record.strip_prefix('b') {
            Some(b64) => Packet::Message(Message::Binary(
                BASE64.decode(b64).map_err(|_| DecodeError::InvalidBase64)?,
            )),
            None => Packet::decode_text(record)?,
        };
        packets.push(packet);
    }
    Ok(packets)
}

/// Encodes packets as one long-polling payload, joined by `\x1e`.
///
/// ```
/// use sioloop::protocol::engineio::packet::{encode_payload, Message, Packet};
/// let mut out = Vec::new();
/// encode_payload(&[Packet::Ping(String::new()), Packet::Message(Message::Binary(vec![1, 2]))], &mut out);
/// assert_eq!(out, b"2\x1ebAQI=");
/// ```
pub fn encode_payload(packets: &[Packet], out: &mut Vec<u8>) {
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        packet.encode_polling(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Packet {
        Packet::Message(Message::Text(s.into()))
    }

    #[test]
    fn decodes_every_packet_type() {
        assert_eq!(Packet::decode_text("0{}"), Ok(Packet::Open("{}".into())));
        assert_eq!(Packet::decode_text("1"), Ok(Packet::Close));
        assert_eq!(
            Packet::decode_text("2probe"),
            Ok(Packet::Ping("probe".into()))
        );
        assert_eq!(Packet::decode_text("3"), Ok(Packet::Pong(String::new())));
        assert_eq!(Packet::decode_text("4héllo"), Ok(text("héllo")));
        assert_eq!(Packet::decode_text("5"), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6"), Ok(Packet::Noop));
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(Packet::decode_text(""), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text("7"),
            Err(DecodeError::UnknownType(b'7'))
        );
        assert_eq!(
            Packet::decode_text("x4"),
            Err(DecodeError::UnknownType(b'x'))
        );
        assert_eq!(decode_payload(b"4a\x1e", 16), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"b!!!", 16), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_payload(b"4\xff", 16), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            decode_payload(b"6\x1e6\x1e6", 2),
            Err(DecodeError::TooManyPackets)
        );
    }

    #[test]
    fn payload_round_trip() {
        let packets = vec![
            text("ab"),
            Packet::Message(Message::Binary(vec![0, 255, 3])),
            Packet::Message(Message::Binary(Vec::new())),
            text(""),
            Packet::Noop,
        ];
        let mut out = Vec::new();
        encode_payload(&packets, &mut out);
        assert_eq!(out, b"4ab\x1ebAP8D\x1eb\x1e4\x1e6");
        assert_eq!(decode_payload(&out, 16), Ok(packets));
    }

    #[test]
    fn websocket_forms() {
        let mut out = Vec::new();
        text("hi").encode_ws(&mut out);
        assert_eq!(out, b"4hi");
        out.clear();
        Packet::Message(Message::Binary(vec![1, 2])).encode_ws(&mut out);
        assert_eq!(out, [1, 2]);
    }
}
