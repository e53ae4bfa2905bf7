//! Socket.IO protocol 5 packets: decoded strictly from one Engine.IO text message, encoded
//! in the canonical wire form.
//!
//! The wire form is `<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`:
//!
//! | text | packet |
//! | --- | --- |
//! | `0` | CONNECT to `/` |
//! | `0/admin,{"token":"x"}` | CONNECT to `/admin` with auth data |
//! | `2["hello",1]` | EVENT `hello` |
//! | `2/chat,12["ev",{}]` | EVENT on `/chat` that wants ack 12 |
//! | `3/chat,12[]` | ACK 12 on `/chat` |
//! | `51-["up",{"_placeholder":true,"num":0}]` | BINARY_EVENT with one attachment |
//! | `61-/nsp,5[{"_placeholder":true,"num":0}]` | BINARY_ACK 5 on `/nsp`, one attachment |
//! | `4{"message":"Invalid namespace"}` | CONNECT_ERROR |
//! | `1/admin,` | DISCONNECT from `/admin` |
//!
//! These are Socket.IO texts, as they stand after the Engine.IO message type `4`: the frame
//! `451-[...]` on the wire carries the Socket.IO packet `51-[...]`, and the invalid frames
//! `4abc`, `42{}` and `42abc[...]` of the reference tests carry `abc` (no packet type), `2{}`
//! (an EVENT that is not an array) and `2abc[...]` (not JSON).
//!
//! The namespace is present only when the text after the type (and the attachment count)
//! starts with `/`; it runs to the first `,` or to the end. The ack id is the run of ASCII
//! digits that follows. The rest is JSON, kept as the exact text received
//! ([`RawValue`]), so a relay can forward it without re-serializing.
//!
//! Decoding validates the JSON against the packet type as the reference parser does
//! (`isPayloadValid`, at least one attachment for a binary packet), and a little more
//! strictly where the reference would hand a handler something it cannot use: an EVENT, ACK
//! or CONNECT_ERROR without data, an ack id beyond `u64`, a binary packet whose placeholders
//! point past its attachments (the reference finds that only once they have all arrived).

use serde::Deserializer as _;
use serde::de::{self, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// Event names a peer may not use: they have a meaning of their own on one side or the
/// other. An EVENT whose name is one of these is refused by [`Packet::decode`].
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Socket.IO protocol 5 packet types, in the order of the protocol spec (the discriminant
/// is the number on the wire).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: connect to a namespace (client to server, with optional auth data), or accept the
    /// connection (server to client, with `{"sid": ...}`).
    Connect = 0,
    /// `1`: leave a namespace (either side).
    Disconnect = 1,
    /// `2`: an event, `["name", args...]`, optionally asking for an ack.
    Event = 2,
    /// `3`: the answer to an event that asked for an ack, `[args...]`.
    Ack = 3,
    /// `4`: the server refuses a connection to a namespace (server to client only).
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for its ASCII wire digit (`b'0'..=b'6'`), if it is one.
    ///
    /// ```
    /// use sioloop::protocol::socketio::PacketType;
    /// assert_eq!(PacketType::from_digit(b'5'), Some(PacketType::BinaryEvent));
    /// assert_eq!(PacketType::from_digit(b'7'), None);
    /// ```
    pub fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII wire digit of the type.
    ///
    /// ```
    /// use sioloop::protocol::socketio::PacketType;
    /// assert_eq!(PacketType::BinaryAck.to_digit(), b'6');
    /// ```
    pub fn to_digit(self) -> u8 {
        b'0' + self as u8
    }

    /// Whether packets of this type carry binary attachments (`BINARY_EVENT`, `BINARY_ACK`).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// Limits applied while decoding.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Limits {
    /// The largest attachment count a binary packet may announce; more is
    /// [`DecodeError::TooManyAttachments`]. Default 10, as the reference parser.
    pub max_attachments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attachments: 10,
        }
    }
}

/// One Socket.IO packet.
///
/// Packets are compared by their fields, with `data` compared as JSON text.
#[derive(Clone, Debug)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace, `/` when absent on the wire. It starts with `/` and has no `,` in any
    /// decoded packet; [`Packet::encode`] relies on the same for packets built by hand.
    pub nsp: String,
    /// The ack id: on an EVENT, the sender wants an ACK with this id; on an ACK, the event it
    /// answers. Decoded (and kept) on every type, as the reference parser does.
    pub id: Option<u64>,
    /// The JSON data exactly as received (no re-serialization), placeholders included.
    pub data: Option<Box<RawValue>>,
    /// For `BINARY_*` packets, the attachment count of the header (at least 1 in a decoded
    /// packet); 0 for other types.
    pub attachments: usize,
}

impl PartialEq for Packet {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.nsp == other.nsp
            && self.id == other.id
            && self.attachments == other.attachments
            && self.data.as_deref().map(RawValue::get) == other.data.as_deref().map(RawValue::get)
    }
}

impl Eq for Packet {}

/// Why a text is not a valid Socket.IO packet, or why a message came at the wrong time for
/// an [`Assembler`](crate::protocol::socketio::Assembler). Every variant is final: the input is bad, not
/// short, and the reference server closes the connection (`parse error`).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum DecodeError {
    /// An empty message.
    Empty,
    /// The first byte is not a packet type digit (`0` to `6`).
    UnknownType(u8),
    /// A `BINARY_*` packet without a valid `<count>-` after the type: missing, not digits,
    /// or zero.
    InvalidAttachments,
    /// A `BINARY_*` packet announcing more attachments than [`Limits::max_attachments`].
    TooManyAttachments,
    /// An ack id that does not fit in a `u64`.
    InvalidId,
    /// The data is not one valid JSON value (trailing garbage included).
    InvalidJson,
    /// Valid JSON that the packet type does not allow: CONNECT data that is not an object,
    /// DISCONNECT with data, CONNECT_ERROR data that is not an object or a string, EVENT data
    /// that is not an array starting with a string or a number, ACK data that is not an array.
    InvalidPayload,
    /// EVENT or ACK (binary or not) or CONNECT_ERROR without data.
    MissingPayload,
    /// An EVENT named after one of [`RESERVED_EVENTS`].
    ReservedEvent,
    /// A `BINARY_*` packet whose JSON has a placeholder (an object with `"_placeholder":true`)
    /// whose `num` is not the index of one of its attachments.
    InvalidPlaceholder,
    /// A text message while a binary packet still waits for attachments.
    UnexpectedText,
    /// A binary message while no binary packet waits for attachments.
    UnexpectedBinary,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType(b) => write!(f, "unknown packet type byte {b:#04x}"),
            DecodeError::InvalidAttachments => f.write_str("illegal attachment count"),
            DecodeError::TooManyAttachments => f.write_str("too many attachments"),
            DecodeError::InvalidId => f.write_str("ack id out of range"),
            DecodeError::InvalidJson => f.write_str("packet data is not valid JSON"),
            DecodeError::InvalidPayload => f.write_str("invalid payload for the packet type"),
            DecodeError::MissingPayload => f.write_str("packet type requires data"),
            DecodeError::ReservedEvent => f.write_str("reserved event name"),
            DecodeError::InvalidPlaceholder => {
                f.write_str("attachment placeholder does not match an attachment")
            }
            DecodeError::UnexpectedText => {
                f.write_str("got plaintext data when reconstructing a packet")
            }
            DecodeError::UnexpectedBinary => {
                f.write_str("got binary data when not reconstructing a packet")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Packet {
    /// A packet of `kind` on `nsp`, with no id, no data and no attachments.
    ///
    /// ```
    /// use sioloop::protocol::socketio::{Packet, PacketType};
    /// let mut out = String::new();
    /// Packet::new(PacketType::Disconnect, "/admin").encode(&mut out);
    /// assert_eq!(out, "1/admin,");
    /// ```
    pub fn new(kind: PacketType, nsp: impl Into<String>) -> Packet {
        Packet {
            kind,
            nsp: nsp.into(),
            id: None,
            data: None,
            attachments: 0,
        }
    }

    /// An EVENT (`attachments == 0`) or BINARY_EVENT (`attachments > 0`) with `data`, the JSON
    /// array `["name", args...]` (placeholders included for a binary one).
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use sioloop::protocol::socketio::Packet;
    /// let data = RawValue::from_string(r#"["up",{"_placeholder":true,"num":0}]"#.into())?;
    /// let mut out = String::new();
    /// Packet::event("/", Some(7), data, 1).encode(&mut out);
    /// assert_eq!(out, r#"51-7["up",{"_placeholder":true,"num":0}]"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn event(
        nsp: impl Into<String>,
        id: Option<u64>,
        data: Box<RawValue>,
        attachments: usize,
    ) -> Packet {
        let kind = if attachments > 0 {
            PacketType::BinaryEvent
        } else {
            PacketType::Event
        };
        Packet {
            kind,
            nsp: nsp.into(),
            id,
            data: Some(data),
            attachments,
        }
    }

    /// An ACK (`attachments == 0`) or BINARY_ACK (`attachments > 0`) answering `id`, with
    /// `data`, the JSON array of the ack's arguments.
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use sioloop::protocol::socketio::Packet;
    /// let mut out = String::new();
    /// Packet::ack("/chat", 12, RawValue::from_string("[]".into())?, 0).encode(&mut out);
    /// assert_eq!(out, "3/chat,12[]");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn ack(nsp: impl Into<String>, id: u64, data: Box<RawValue>, attachments: usize) -> Packet {
        let kind = if attachments > 0 {
            PacketType::BinaryAck
        } else {
            PacketType::Ack
        };
        Packet {
            kind,
            nsp: nsp.into(),
            id: Some(id),
            data: Some(data),
            attachments,
        }
    }

    /// Whether a server may accept this packet from a client: everything [`Packet::decode`]
    /// returns except CONNECT_ERROR, which only a server sends. (`42{}` decodes as a
    /// CONNECT_ERROR with id 2; a server closes the connection on it.)
    ///
    /// ```
    /// use sioloop::protocol::socketio::{Limits, Packet};
    /// let packet = Packet::decode("42{}", &Limits::default())?;
    /// assert!(!packet.is_valid_from_client());
    /// assert!(Packet::decode("2[\"hi\"]", &Limits::default())?.is_valid_from_client());
    /// # Ok::<(), sioloop::protocol::socketio::DecodeError>(())
    /// ```
    pub fn is_valid_from_client(&self) -> bool {
        self.kind != PacketType::ConnectError
    }

    /// Decodes one packet from the text of one Engine.IO message.
    ///
    /// The checks are those of the reference parser (`socket.io-parser` 4.2): type digit,
    /// attachment count (an integer from 1 to [`Limits::max_attachments`]), JSON validity
    /// and its shape for the type (see [`DecodeError::InvalidPayload`]). On top of them: EVENT,
    /// ACK and CONNECT_ERROR need data, the ack id must fit in a `u64`, and for a binary
    /// packet every placeholder must point at one of its attachments.
    ///
    /// ```
    /// use sioloop::protocol::socketio::{DecodeError, Limits, Packet, PacketType};
    /// let limits = Limits::default();
    /// let p = Packet::decode(r#"2/chat,12["ev",{}]"#, &limits)?;
    /// assert_eq!((p.kind, p.nsp.as_str(), p.id), (PacketType::Event, "/chat", Some(12)));
    /// assert_eq!(p.data.unwrap().get(), r#"["ev",{}]"#);
    ///
    /// assert_eq!(Packet::decode("4abc", &limits), Err(DecodeError::InvalidJson));
    /// assert_eq!(Packet::decode(r#"5["x"]"#, &limits), Err(DecodeError::InvalidAttachments));
    /// assert_eq!(Packet::decode("2[]", &limits), Err(DecodeError::InvalidPayload));
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn decode(text: &str, limits: &Limits) -> Result<Packet, DecodeError> {
        PacketParts::decode(text, limits).map(|parts| parts.to_packet())
    }

    /// Appends the canonical wire form to `out`: the type digit, for a binary packet the
    /// attachment count and `-`, the namespace and `,` unless it is `/` (or empty), the ack
    /// id, and the data as is. This is what the reference encoder writes.
    ///
    /// ```
    /// use sioloop::protocol::socketio::{Limits, Packet};
    /// let text = r#"61-/nsp,5[{"_placeholder":true,"num":0}]"#;
    /// let mut out = String::new();
    /// Packet::decode(text, &Limits::default())?.encode(&mut out);
    /// assert_eq!(out, text);
    /// # Ok::<(), sioloop::protocol::socketio::DecodeError>(())
    /// ```
    pub fn encode(&self, out: &mut String) {
        encode_head(self.kind, &self.nsp, self.id, self.attachments, out);
        if let Some(data) = &self.data {
            out.push_str(data.get());
        }
    }

    /// The canonical wire form as a new `String` (see [`Packet::encode`]).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.encode(&mut out);
        out
    }
}

/// Appends everything of a packet's wire form before its data: the type digit, the
/// attachment count of a binary packet, the namespace unless it is `/`, and the ack id.
/// [`Packet::encode`] is this followed by the data; a sender that builds the data itself
/// (the server's emits) appends it next, without building a `Packet`.
///
/// ```
/// use sioloop::protocol::socketio::PacketType;
/// use sioloop::protocol::socketio::packet::encode_head;
/// let mut out = String::new();
/// encode_head(PacketType::BinaryAck, "/chat", Some(7), 1, &mut out);
/// assert_eq!(out, "61-/chat,7");
/// ```
pub fn encode_head(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    out: &mut String,
) {
    out.push(char::from(kind.to_digit()));
    if kind.is_binary() {
        push_decimal(out, attachments as u64);
        out.push('-');
    }
    if !nsp.is_empty() && nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        push_decimal(out, id);
    }
}

/// Appends `n` in decimal: every ack carries an id, and `write!` goes through the
/// formatting machinery for it.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Whether `nsp` can be a packet's namespace on the wire: it starts with `/` and has no `,`
/// (the comma ends the namespace, so one inside could not be decoded back).
///
/// ```
/// use sioloop::protocol::socketio::packet::is_valid_nsp;
/// assert!(is_valid_nsp("/chat"));
/// assert!(!is_valid_nsp("chat"));
/// assert!(!is_valid_nsp("/a,b"));
/// ```
pub fn is_valid_nsp(nsp: &str) -> bool {
    nsp.starts_with('/') && !nsp.contains(',')
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    // ASCII digits are one byte each, so `end` is a char boundary.
    (
        s.get(..end).unwrap_or_default(),
        s.get(end..).unwrap_or_default(),
    )
}

/// ASCII digits to a `u64`; `None` on overflow (or on an empty string).
fn parse_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

/// A decoded packet that borrows its namespace and data from the text: what
/// [`Packet::decode`] checks, without its two allocations. The Socket.IO layer handles most
/// packets straight from this and copies only what it keeps.
#[derive(Debug)]
pub(crate) struct PacketParts<'a> {
    pub(crate) kind: PacketType,
    pub(crate) nsp: &'a str,
    pub(crate) id: Option<u64>,
    pub(crate) data: Option<&'a RawValue>,
    pub(crate) attachments: usize,
}

impl<'a> PacketParts<'a> {
    /// See [`Packet::decode`]: the same checks, the same errors.
    pub(crate) fn decode(text: &'a str, limits: &Limits) -> Result<PacketParts<'a>, DecodeError> {
        let Some(&digit) = text.as_bytes().first() else {
            return Err(DecodeError::Empty);
        };
        let kind = PacketType::from_digit(digit).ok_or(DecodeError::UnknownType(digit))?;
        // Every split below is right after an ASCII byte, so it is on a char boundary.
        let mut rest = text.get(1..).unwrap_or_default();

        let mut attachments = 0;
        if kind.is_binary() {
            let (count, after) = split_digits(rest);
            let after = match after.strip_prefix('-') {
                Some(after) if !count.is_empty() => after,
                _ => return Err(DecodeError::InvalidAttachments),
            };
            // A count too big for u64 is above any limit.
            let n = parse_u64(count).ok_or(DecodeError::TooManyAttachments)?;
            if n == 0 {
                return Err(DecodeError::InvalidAttachments);
            }
            attachments = usize::try_from(n).map_err(|_| DecodeError::TooManyAttachments)?;
            if attachments > limits.max_attachments {
                return Err(DecodeError::TooManyAttachments);
            }
            rest = after;
        }

        let nsp = if rest.starts_with('/') {
            match rest.split_once(',') {
                Some((nsp, after)) => {
                    rest = after;
                    nsp
                }
                None => std::mem::take(&mut rest),
            }
        } else {
            "/"
        };

        let (digits, after) = split_digits(rest);
        let id = if digits.is_empty() {
            None
        } else {
            Some(parse_u64(digits).ok_or(DecodeError::InvalidId)?)
        };
        rest = after;

        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str::<&RawValue>(rest).map_err(|_| DecodeError::InvalidJson)?)
        };
        check_payload(kind, data)?;
        if let Some(data) = data
            && kind.is_binary()
        {
            check_placeholders(data, attachments)?;
        }
        Ok(PacketParts {
            kind,
            nsp,
            id,
            data,
            attachments,
        })
    }

    /// The owned packet.
    pub(crate) fn to_packet(&self) -> Packet {
        Packet {
            kind: self.kind,
            nsp: self.nsp.to_owned(),
            id: self.id,
            data: self.data.map(ToOwned::to_owned),
            attachments: self.attachments,
        }
    }
}

/// The reference's `isPayloadValid`, plus: data is required where the type is useless
/// without it. `RawValue` text is valid JSON with no surrounding whitespace, so its first
/// byte tells the JSON type.
fn check_payload(kind: PacketType, data: Option<&RawValue>) -> Result<(), DecodeError> {
    let first = data.and_then(|d| d.get().as_bytes().first().copied());
    let ok = match (kind, first) {
        (PacketType::Connect, None | Some(b'{')) => true,
        (PacketType::Disconnect, None) => true,
        (PacketType::ConnectError, Some(b'{' | b'"')) => true,
        (PacketType::Event | PacketType::BinaryEvent, Some(b'[')) => {
            return check_event_name(data.map(RawValue::get).unwrap_or_default());
        }
        (PacketType::Ack | PacketType::BinaryAck, Some(b'[')) => true,
        (PacketType::Event | PacketType::BinaryEvent, None)
        | (PacketType::Ack | PacketType::BinaryAck, None)
        | (PacketType::ConnectError, None) => return Err(DecodeError::MissingPayload),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidPayload)
    }
}

/// Checks the first element of an EVENT's JSON array (valid JSON, starting with `[`): a
/// string that is not reserved, or a number. Only the first element is parsed.
fn check_event_name(array: &str) -> Result<(), DecodeError> {
    let inner = array
        .strip_prefix('[')
        .unwrap_or_default()
        .trim_start_matches([' ', '\t', '\n', '\r']);
    match inner.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => Ok(()),
        Some(b'"') => {
            let mut de = serde_json::Deserializer::from_str(inner);
            match de.deserialize_str(IsReserved) {
                Ok(false) => Ok(()),
                Ok(true) => Err(DecodeError::ReservedEvent),
                Err(_) => Err(DecodeError::InvalidJson),
            }
        }
        // `]` (an empty array), or a name that is null, a boolean, an array or an object.
        _ => Err(DecodeError::InvalidPayload),
    }
}

/// Deserializes a JSON string into whether it is a reserved event name, without
/// allocating when the string has no escapes.
struct IsReserved;

impl Visitor<'_> for IsReserved {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(RESERVED_EVENTS.contains(&name))
    }
}

/// Checks that every placeholder in a binary packet's JSON points at an attachment, as the
/// reference does when it puts the attachments back.
fn check_placeholders(data: &RawValue, attachments: usize) -> Result<(), DecodeError> {
    // serde_json limits the nesting depth to 128, so the walk below is bounded too.
    let value: Value = serde_json::from_str(data.get()).map_err(|_| DecodeError::InvalidJson)?;
    crate::protocol::socketio::value::check_placeholders(&value, attachments)
        .map_err(|_| DecodeError::InvalidPlaceholder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids_and_attachment_counts_in_decimal() {
        for (id, text) in [
            (0, "30"),
            (7, "37"),
            (10, "310"),
            (u64::MAX, "318446744073709551615"),
        ] {
            let mut out = String::new();
            encode_head(PacketType::Ack, "/", Some(id), 0, &mut out);
            assert_eq!(out, text);
        }
        let mut out = String::new();
        encode_head(PacketType::BinaryEvent, "/a", Some(42), 12, &mut out);
        assert_eq!(out, "512-/a,42");
    }

    fn limits() -> Limits {
        Limits::default()
    }

    fn decode(text: &str) -> Result<Packet, DecodeError> {
        Packet::decode(text, &limits())
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("valid JSON in test")
    }

    fn packet(
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        data: Option<&str>,
        attachments: usize,
    ) -> Packet {
        Packet {
            kind,
            nsp: nsp.into(),
            id,
            data: data.map(raw),
            attachments,
        }
    }

    /// Decodes, checks the fields, and checks that encoding gives `canonical` back (and
    /// that decoding that gives the same packet).
    fn round_trip(text: &str, expected: Packet, canonical: &str) {
        let decoded = decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(decoded, expected, "{text}");
        let encoded = decoded.to_text();
        assert_eq!(encoded, canonical, "{text}");
        assert_eq!(decode(&encoded), Ok(decoded), "{text}");
    }

    #[test]
    fn every_packet_type_round_trips() {
        use PacketType::*;
        let cases: &[(&str, Packet)] = &[
            ("0", packet(Connect, "/", None, None, 0)),
            (
                r#"0/admin,{"token":"x"}"#,
                packet(Connect, "/admin", None, Some(r#"{"token":"x"}"#), 0),
            ),
            (
                r#"0{"a":1}"#,
                packet(Connect, "/", None, Some(r#"{"a":1}"#), 0),
            ),
            ("0/admin,", packet(Connect, "/admin", None, None, 0)),
            ("1", packet(Disconnect, "/", None, None, 0)),
            ("1/admin,", packet(Disconnect, "/admin", None, None, 0)),
            (
                r#"2["hello",1]"#,
                packet(Event, "/", None, Some(r#"["hello",1]"#), 0),
            ),
            (
                r#"2/chat,12["ev",{}]"#,
                packet(Event, "/chat", Some(12), Some(r#"["ev",{}]"#), 0),
            ),
            ("2[1,2]", packet(Event, "/", None, Some("[1,2]"), 0)),
            ("3/chat,12[]", packet(Ack, "/chat", Some(12), Some("[]"), 0)),
            ("30[null]", packet(Ack, "/", Some(0), Some("[null]"), 0)),
            (
                r#"4{"message":"Invalid namespace"}"#,
                packet(
                    ConnectError,
                    "/",
                    None,
                    Some(r#"{"message":"Invalid namespace"}"#),
                    0,
                ),
            ),
            (
                r#"4/admin,"not authorized""#,
                packet(ConnectError, "/admin", None, Some(r#""not authorized""#), 0),
            ),
            (
                r#"51-["up",{"_placeholder":true,"num":0}]"#,
                packet(
                    BinaryEvent,
                    "/",
                    None,
                    Some(r#"["up",{"_placeholder":true,"num":0}]"#),
                    1,
                ),
            ),
            (
                r#"61-/nsp,5[{"_placeholder":true,"num":0}]"#,
                packet(
                    BinaryAck,
                    "/nsp",
                    Some(5),
                    Some(r#"[{"_placeholder":true,"num":0}]"#),
                    1,
                ),
            ),
            (
                r#"51-["x"]"#,
                packet(BinaryEvent, "/", None, Some(r#"["x"]"#), 1),
            ),
        ];
        for (text, expected) in cases {
            round_trip(text, expected.clone(), text);
        }
    }

    #[test]
    fn data_is_kept_byte_for_byte() {
        let text = "2[\"\\u00e9v\",{\"b\":1.50,\"a\":[ 1 , 2 ]},\"é\"]";
        let p = decode(text).unwrap();
        assert_eq!(
            p.data.as_deref().map(RawValue::get),
            Some("[\"\\u00e9v\",{\"b\":1.50,\"a\":[ 1 , 2 ]},\"é\"]")
        );
        assert_eq!(p.to_text(), text);
    }

    #[test]
    fn non_canonical_forms_decode_to_the_canonical_one() {
        use PacketType::*;
        // An explicit root namespace, a namespace ending the text, leading zeros,
        // whitespace around the JSON.
        round_trip("0/,", packet(Connect, "/", None, None, 0), "0");
        round_trip("0/", packet(Connect, "/", None, None, 0), "0");
        round_trip(
            "1/admin",
            packet(Disconnect, "/admin", None, None, 0),
            "1/admin,",
        );
        round_trip(
            r#"2/,3["a"]"#,
            packet(Event, "/", Some(3), Some(r#"["a"]"#), 0),
            r#"23["a"]"#,
        );
        round_trip(
            r#"2007["a"]"#,
            packet(Event, "/", Some(7), Some(r#"["a"]"#), 0),
            r#"27["a"]"#,
        );
        round_trip(
            "2 [\"a\"] \n",
            packet(Event, "/", None, Some(r#"["a"]"#), 0),
            r#"2["a"]"#,
        );
        round_trip(
            r#"5003-["a",{"_placeholder":true,"num":2}]"#,
            packet(
                BinaryEvent,
                "/",
                None,
                Some(r#"["a",{"_placeholder":true,"num":2}]"#),
                3,
            ),
            r#"53-["a",{"_placeholder":true,"num":2}]"#,
        );
    }

    #[test]
    fn namespace_and_id_edge_cases() {
        use PacketType::*;
        // The namespace runs to the first comma, whatever it holds.
        round_trip(
            r#"0/a{"x":1}"#,
            packet(Connect, r#"/a{"x":1}"#, None, None, 0),
            r#"0/a{"x":1},"#,
        );
        round_trip("0/é ü,", packet(Connect, "/é ü", None, None, 0), "0/é ü,");
        round_trip(
            r#"2/chat,12["a"]"#,
            packet(Event, "/chat", Some(12), Some(r#"["a"]"#), 0),
            r#"2/chat,12["a"]"#,
        );
        // The id comes after the namespace, not before it.
        assert_eq!(decode(r#"212/chat,["a"]"#), Err(DecodeError::InvalidJson));
        // Without a leading slash there is no namespace.
        assert_eq!(decode(r#"2chat,["a"]"#), Err(DecodeError::InvalidJson));
        // An id on any type is decoded and kept, as the reference does.
        round_trip("07", packet(Connect, "/", Some(7), None, 0), "07");
        round_trip("1/a,7", packet(Disconnect, "/a", Some(7), None, 0), "1/a,7");
        // The largest id, and one above it.
        round_trip(
            r#"218446744073709551615["a"]"#,
            packet(Event, "/", Some(u64::MAX), Some(r#"["a"]"#), 0),
            r#"218446744073709551615["a"]"#,
        );
        assert_eq!(
            decode(r#"218446744073709551616["a"]"#),
            Err(DecodeError::InvalidId)
        );
        assert_eq!(
            decode(r#"299999999999999999999999999999["a"]"#),
            Err(DecodeError::InvalidId)
        );
        // A comma after the root namespace's id is not a namespace separator.
        assert_eq!(decode(r#"21,["a"]"#), Err(DecodeError::InvalidJson));
        assert_eq!(decode(r#"2,["a"]"#), Err(DecodeError::InvalidJson));
    }

    #[test]
    fn error_examples() {
        use DecodeError::*;
        let cases: &[(&str, DecodeError)] = &[
            // The invalid frames of the reference tests (`4abc`, `42{}`, `42abc[...]`), without
            // the Engine.IO message type `4`.
            ("abc", UnknownType(b'a')),
            ("2{}", InvalidPayload),
            (r#"2abc["a"]"#, InvalidJson),
            ("", Empty),
            ("7", UnknownType(b'7')),
            ("9[\"a\"]", UnknownType(b'9')),
            ("x", UnknownType(b'x')),
            (" 0", UnknownType(b' ')),
            ("4abc", InvalidJson),
            ("4", MissingPayload),
            ("4[]", InvalidPayload),
            ("4 1", InvalidPayload),
            (r#"42abc["a"]"#, InvalidJson),
            ("2", MissingPayload),
            ("2/chat,", MissingPayload),
            ("2/chat,12", MissingPayload),
            ("2[]", InvalidPayload),
            ("2[ ]", InvalidPayload),
            ("2[1", InvalidJson),
            (r#"2["a"]x"#, InvalidJson),
            (r#"2["a"]["b"]"#, InvalidJson),
            (r#"2{"a":1}"#, InvalidPayload),
            (r#"2"a""#, InvalidPayload),
            ("2[null]", InvalidPayload),
            ("2[true]", InvalidPayload),
            ("2[[\"a\"]]", InvalidPayload),
            ("2[{}]", InvalidPayload),
            (r#"2["connect"]"#, ReservedEvent),
            (r#"2["disconnect",1]"#, ReservedEvent),
            (r#"2[ "newListener"]"#, ReservedEvent),
            (r#"2["conn\u0065ct"]"#, ReservedEvent),
            (
                r#"51-["connect_error",{"_placeholder":true,"num":0}]"#,
                ReservedEvent,
            ),
            ("3", MissingPayload),
            ("3{}", InvalidPayload),
            ("3\"a\"", InvalidPayload),
            ("0[]", InvalidPayload),
            ("0\"a\"", InvalidPayload),
            ("0null", InvalidPayload),
            ("1{}", InvalidPayload),
            ("1[]", InvalidPayload),
            (r#"5["x"]"#, InvalidAttachments),
            (r#"5-["x"]"#, InvalidAttachments),
            (r#"50-["x"]"#, InvalidAttachments),
            (r#"5a-["x"]"#, InvalidAttachments),
            (r#"51["x"]"#, InvalidAttachments),
            ("5", InvalidAttachments),
            ("51-", MissingPayload),
            ("61-", MissingPayload),
            (r#"511-["x"]"#, TooManyAttachments),
            (r#"599999999999999999999999-["x"]"#, TooManyAttachments),
            (r#"61-{}"#, InvalidPayload),
            (
                r#"51-["x",{"_placeholder":true,"num":1}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"51-["x",{"_placeholder":true,"num":-1}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"51-["x",{"_placeholder":true,"num":"0"}]"#,
                InvalidPlaceholder,
            ),
            (r#"51-["x",{"_placeholder":true}]"#, InvalidPlaceholder),
            (
                r#"62-[[{"a":{"_placeholder":true,"num":2}}]]"#,
                InvalidPlaceholder,
            ),
            ("2[\"\u{0}\"]", InvalidJson),
        ];
        for (text, error) in cases {
            assert_eq!(decode(text), Err(error.clone()), "{text:?}");
        }
    }

    #[test]
    fn connect_error_with_an_id_decodes_but_not_from_a_client() {
        // `42{}`: CONNECT_ERROR, id 2, data `{}`. The reference decodes it; a server must
        // refuse it because only servers send CONNECT_ERROR.
        let p = decode("42{}").unwrap();
        assert_eq!(
            p,
            packet(PacketType::ConnectError, "/", Some(2), Some("{}"), 0)
        );
        assert!(!p.is_valid_from_client());
        for text in ["0", "1", r#"2["a"]"#, "3[]", r#"51-["a"]"#, "61-[]"] {
            assert!(decode(text).unwrap().is_valid_from_client(), "{text}");
        }
    }

    #[test]
    fn attachment_limit_is_exact() {
        let text = r#"53-["x"]"#;
        assert_eq!(
            Packet::decode(text, &Limits { max_attachments: 3 }).map(|p| p.attachments),
            Ok(3)
        );
        assert_eq!(
            Packet::decode(text, &Limits { max_attachments: 2 }),
            Err(DecodeError::TooManyAttachments)
        );
        assert_eq!(
            Packet::decode(r#"51-["x"]"#, &Limits { max_attachments: 0 }),
            Err(DecodeError::TooManyAttachments)
        );
        let unlimited = Limits {
            max_attachments: usize::MAX,
        };
        assert_eq!(
            Packet::decode(r#"54294967295-["x"]"#, &unlimited).map(|p| p.attachments),
            Ok(4_294_967_295)
        );
    }

    #[test]
    fn placeholders_only_matter_in_binary_packets() {
        // In a plain EVENT, a placeholder-looking object is data, as in the reference.
        assert!(decode(r#"2["x",{"_placeholder":true,"num":5}]"#).is_ok());
        // Last key wins, as in JSON.parse: this is not a placeholder.
        assert!(decode(r#"51-["x",{"_placeholder":true,"_placeholder":false,"num":9}]"#).is_ok());
        // Extra keys on a placeholder are ignored; `num` may be any valid index.
        assert!(decode(r#"53-["x",{"num":2,"_placeholder":true,"y":{}},[1]]"#).is_ok());
        // `_placeholder` must be exactly `true`.
        assert!(decode(r#"51-["x",{"_placeholder":1,"num":7}]"#).is_ok());
    }

    #[test]
    fn encode_omits_root_and_empty_namespace() {
        let mut p = packet(PacketType::Event, "", Some(1), Some(r#"["a"]"#), 0);
        assert_eq!(p.to_text(), r#"21["a"]"#);
        p.nsp = "/".into();
        assert_eq!(p.to_text(), r#"21["a"]"#);
        p.nsp = "/x".into();
        assert_eq!(p.to_text(), r#"2/x,1["a"]"#);
        // Non-binary types never write an attachment count.
        p.attachments = 3;
        assert_eq!(p.to_text(), r#"2/x,1["a"]"#);
    }

    #[test]
    fn constructors_pick_the_binary_type() {
        let e = Packet::event("/", None, raw(r#"["a"]"#), 0);
        assert_eq!(e.kind, PacketType::Event);
        let e = Packet::event("/", None, raw(r#"["a"]"#), 2);
        assert_eq!(e.kind, PacketType::BinaryEvent);
        let a = Packet::ack("/", 1, raw("[]"), 0);
        assert_eq!(a.kind, PacketType::Ack);
        let a = Packet::ack("/", 1, raw("[]"), 1);
        assert_eq!((a.kind, a.id), (PacketType::BinaryAck, Some(1)));
    }

    #[test]
    fn packet_type_digits() {
        for d in b'0'..=b'6' {
            let t = PacketType::from_digit(d).unwrap();
            assert_eq!(t.to_digit(), d);
            assert_eq!(t as u8, d - b'0');
        }
        assert_eq!(PacketType::from_digit(b'/'), None);
    }

    #[test]
    fn nsp_validity() {
        assert!(is_valid_nsp("/"));
        assert!(!is_valid_nsp(""));
        assert!(!is_valid_nsp("/a,"));
    }

    #[test]
    fn deep_nesting_never_overflows() {
        let deep = format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        // RawValue skips without recursion; a plain event keeps it.
        assert!(decode(&deep).is_ok());
        // A binary packet parses its JSON to check placeholders: too deep is refused.
        let deep = format!("51-[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(decode(&deep), Err(DecodeError::InvalidJson));
    }
}
