//! Engine.IO protocol 3 long-polling payloads (what `socket.io-client@2` speaks), encoded and
//! decoded without IO.
//!
//! The packets are the same as in protocol 4 ([`Packet`]); only the framing of a polling
//! body differs:
//!
//! - **Text** (`text/plain`): every packet is `<length>:<packet>`, the length in UTF-16 code
//!   units of the packet as JavaScript counts them, the packets concatenated. A binary
//!   message is written `b4` + standard base64 (the `b`, then its type digit). An empty list
//!   of packets is `0:`.
//! - **Binary** (`application/octet-stream`, when the client did not ask for `b64=1` and a
//!   packet is binary): every packet is a kind byte (`0` text, `1` binary), the decimal digits
//!   of its length as byte *values* `0..=9`, a `0xFF` byte, then the packet. A text packet is
//!   its UTF-8 bytes (the length in bytes); a binary one is its type as a byte *value* (`4`)
//!   followed by the data (the length counts the type byte).
//!
//! Over WebSocket protocol 3 differs only in binary frames, which start with the type byte
//! ([`decode_ws_binary`], [`encode_ws_binary`]).
//!
//! The executable reference is `engine.io`'s `build/parser-v3/index.js`. Where it is lenient
//! (a truncated record, a length that is not a plain decimal number, a kind byte other than
//! 0 or 1) this decoder refuses the payload instead.

use super::packet::{DecodeError, Message, Packet, PacketType};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The most digits a record length may have: ten digits is more than any body we accept.
const MAX_LENGTH_DIGITS: usize = 10;

/// The length of `text` in UTF-16 code units, as JavaScript's `String.length` counts it.
pub fn utf16_len(text: &str) -> usize {
    if text.is_ascii() {
        return text.len();
    }
    // A char takes two code units exactly when its UTF-8 form takes four bytes.
    text.chars().map(char::len_utf16).sum()
}

/// Decodes a text payload (`<len>:<packet>...`) into its packets, at most `max_packets`.
///
/// Empty records (`0:`) are skipped, as the reference does, but a body that is empty or
/// holds no packet at all is an error.
///
/// ```
/// use sioloop::protocol::engineio::payload_v3::decode_text_payload;
/// use sioloop::protocol::engineio::packet::{Message, Packet};
/// let packets = decode_text_payload("6:4héllo6:b4AQI=1:2".as_bytes(), 16).unwrap();
/// assert_eq!(packets, vec![
///     Packet::Message(Message::Text("héllo".into())),
///     Packet::Message(Message::Binary(vec![1, 2])),
///     Packet::Ping(String::new()),
/// ]);
/// ```
pub fn decode_text_payload(body: &[u8], max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    let mut rest = std::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    if rest.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or(DecodeError::BadLength)?;
        let units = parse_decimal(rest[..colon].bytes().map(|b| b.wrapping_sub(b'0')))?;
        rest = &rest[colon + 1..];
        let end = utf16_prefix_end(rest, units).ok_or(DecodeError::BadLength)?;
        let (record, tail) = rest.split_at(end);
        rest = tail;
        if record.is_empty() {
            continue;
        }
        if packets.len() == max_packets {
            return Err(DecodeError::TooManyPackets);
        }
        packets.push(decode_text_record(record)?);
    }
    if packets.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(packets)
}

/// One record of a text payload, or one WebSocket text frame: a text packet, or `b4` +
/// base64 for a binary message.
pub fn decode_text_record(record: &str) -> Result<Packet, DecodeError> {
    match record.strip_prefix('b') {
        Some(rest) => {
            let b64 = rest
                .strip_prefix('4')
                .ok_or(DecodeError::UnknownType(b'b'))?;
            Ok(Packet::Message(Message::Binary(
                BASE64.decode(b64).map_err(|_| DecodeError::InvalidBase64)?,
            )))
        }
        None => Packet::decode_text(record),
    }
}

/// Decodes a binary payload (the body of a POST sent as `application/octet-stream`), at most
/// `max_packets` packets.
///
/// ```
/// use sioloop::protocol::engineio::payload_v3::decode_binary_payload;
/// use sioloop::protocol::engineio::packet::{Message, Packet};
/// let body = [0, 2, 0xff, b'4', b'a', 1, 3, 0xff, 4, 1, 2];
/// assert_eq!(decode_binary_payload(&body, 16).unwrap(), vec![
///     Packet::Message(Message::Text("a".into())),
///     Packet::Message(Message::Binary(vec![1, 2])),
/// ]);
/// ```
pub fn decode_binary_payload(body: &[u8], max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut rest = body;
    let mut packets = Vec::new();
    while let Some((&kind, tail)) = rest.split_first() {
        let ff = tail
            .iter()
            .position(|&b| b == 0xff)
            .ok_or(DecodeError::BadLength)?;
        let len = parse_decimal(tail[..ff].iter().copied())?;
        let tail = &tail[ff + 1..];
        if len > tail.len() {
            return Err(DecodeError::BadLength);
        }
        let (record, tail) = tail.split_at(len);
        rest = tail;
        if packets.len() == max_packets {
            return Err(DecodeError::TooManyPackets);
        }
        let packet = match kind {
            0 => {
                let text = std::str::from_utf8(record).map_err(|_| DecodeError::InvalidUtf8)?;
                decode_text_record(text)?
            }
            1 => decode_ws_binary(record)?,
            other => return Err(DecodeError::UnknownType(other)),
        };
        packets.push(packet);
    }
    Ok(packets)
}

/// Decodes a protocol 3 WebSocket binary frame (or a binary record of a binary payload): the
/// type as a byte value, then the data. Only a message may be binary.
pub fn decode_ws_binary(frame: &[u8]) -> Result<Packet, DecodeError> {
    match frame.split_first() {
        None => Err(DecodeError::Empty),
        Some((4, data)) => Ok(Packet::Message(Message::Binary(data.to_vec()))),
        Some((&other, _)) => Err(DecodeError::UnknownType(other)),
    }
}

/// Appends the protocol 3 WebSocket binary frame of binary `data`: the type byte `4`, then
/// the data.
pub fn encode_ws_binary(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 1);
    out.push(4);
    out.extend_from_slice(data);
}

/// Appends one packet in its text record form (no length): the text form, or `b4` + base64
/// for a binary message.
fn encode_text_record(packet: &Packet, out: &mut Vec<u8>) {
    match packet {
        Packet::Message(Message::Binary(data)) => {
            out.push(b'b');
            out.push(PacketType::Message as u8);
            let start = out.len();
            out.resize(
                start + base64::encoded_len(data.len(), true).unwrap_or(0),
                0,
            );
            let written = BASE64.encode_slice(data, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
        }
        _ => packet.encode_ws(out),
    }
}

/// Encodes packets as a text payload (`<len>:<packet>...`; `0:` for none).
///
/// ```
/// use sioloop::protocol::engineio::payload_v3::encode_text_payload;
/// use sioloop::protocol::engineio::packet::{Message, Packet};
/// let mut out = Vec::new();
/// encode_text_payload(&[Packet::Pong(String::new()), Packet::Message(Message::Binary(vec![1, 2]))], &mut out);
/// assert_eq!(out, b"1:36:b4AQI=");
/// ```
pub fn encode_text_payload(packets: &[Packet], out: &mut Vec<u8>) {
    if packets.is_empty() {
        out.extend_from_slice(b"0:");
        return;
    }
    let mut record = Vec::new();
    for packet in packets {
        record.clear();
        encode_text_record(packet, &mut record);
        // The record is UTF-8: text packets come from `String`s, binary is base64.
        let units = match std::str::from_utf8(&record) {
            Ok(text) => utf16_len(text),
            Err(_) => record.len(),
        };
        out.extend_from_slice(units.to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(&record);
    }
}

/// Encodes packets as a binary payload (kind byte, length digits as values, `0xFF`, packet).
///
/// ```
/// use sioloop::protocol::engineio::payload_v3::encode_binary_payload;
/// use sioloop::protocol::engineio::packet::{Message, Packet};
/// let mut out = Vec::new();
/// encode_binary_payload(&[Packet::Message(Message::Text("a".into())), Packet::Message(Message::Binary(vec![1, 2]))], &mut out);
/// assert_eq!(out, [0, 2, 0xff, b'4', b'a', 1, 3, 0xff, 4, 1, 2]);
/// ```
pub fn encode_binary_payload(packets: &[Packet], out: &mut Vec<u8>) {
    let mut record = Vec::new();
    for packet in packets {
        record.clear();
        let kind = match packet {
            Packet::Message(Message::Binary(data)) => {
                encode_ws_binary(data, &mut record);
                1
            }
            _ => {
                packet.encode_ws(&mut record);
                0
            }
        };
        out.push(kind);
        out.extend(record.len().to_string().bytes().map(|d| d - b'0'));
        out.push(0xff);
        out.extend_from_slice(&record);
    }
}

/// Whether a reply should use the binary framing: the client takes binary (no `b64=1`) and
/// one of the packets is binary.
pub fn wants_binary_payload(supports_binary: bool, packets: &[Packet]) -> bool {
    supports_binary && packets.iter().any(Packet::is_binary)
}

/// A length: one to [`MAX_LENGTH_DIGITS`] digit values `0..=9`.
fn parse_decimal(digits: impl Iterator<Item = u8>) -> Result<usize, DecodeError> {
    let mut value: usize = 0;
    let mut count = 0;
    for d in digits {
        count += 1;
        if d > 9 || count > MAX_LENGTH_DIGITS {
            return Err(DecodeError::BadLength);
        }
        value = value * 10 + usize::from(d);
    }
    if count == 0 {
        return Err(DecodeError::BadLength);
    }
    Ok(value)
}

/// The byte offset in `text` after its first `units` UTF-16 code units, if `text` has that
/// many and the boundary does not split a surrogate pair.
fn utf16_prefix_end(text: &str, units: usize) -> Option<usize> {
    if units <= text.len() && text.as_bytes()[..units].is_ascii() {
        return Some(units);
    }
    let mut counted = 0;
    for (offset, c) in text.char_indices() {
        if counted == units {
            return Some(offset);
        }
        counted += c.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Packet {
        Packet::Message(Message::Text(s.into()))
    }

    fn bin(b: &[u8]) -> Packet {
        Packet::Message(Message::Binary(b.to_vec()))
    }

    #[test]
    fn text_lengths_count_utf16_units() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("😀"), 2);
        let mut out = Vec::new();
        encode_text_payload(&[text("😀é"), Packet::Noop], &mut out);
        assert_eq!(out, "4:4😀é1:6".as_bytes());
        assert_eq!(
            decode_text_payload(&out, 16),
            Ok(vec![text("😀é"), Packet::Noop])
        );
        // A length that ends inside a surrogate pair is refused.
        assert_eq!(
            decode_text_payload("2:4😀".as_bytes(), 16),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn text_payload_round_trip_and_empty_records() {
        let packets = vec![
            text("ab"),
            bin(&[0, 255, 3]),
            bin(&[]),
            text(""),
            Packet::Pong("probe".into()),
        ];
        let mut out = Vec::new();
        encode_text_payload(&packets, &mut out);
        assert_eq!(out, b"3:4ab6:b4AP8D2:b41:46:3probe");
        assert_eq!(decode_text_payload(&out, 16), Ok(packets));
        let mut empty = Vec::new();
        encode_text_payload(&[], &mut empty);
        assert_eq!(empty, b"0:");
        assert_eq!(decode_text_payload(b"0:", 16), Err(DecodeError::Empty));
        assert_eq!(
            decode_text_payload(b"0:1:2", 16),
            Ok(vec![Packet::Ping(String::new())])
        );
    }

    #[test]
    fn text_payload_rejects_bad_framing() {
        for bad in [
            &b""[..],
            b"1",
            b":",
            b"x:4",
            b"5:4ab",
            b"2:4a1",
            b"1:7",
            b"3:bx4",
            b"4:b4!!",
            b"99999999999:4",
        ] {
            assert!(decode_text_payload(bad, 16).is_err(), "{bad:?}");
        }
        assert_eq!(
            decode_text_payload(b"1:61:61:6", 2),
            Err(DecodeError::TooManyPackets)
        );
    }

    #[test]
    fn binary_payload_round_trip() {
        let packets = vec![
            text("héllo"),
            bin(&[9; 12]),
            bin(&[]),
            Packet::Ping("probe".into()),
        ];
        let mut out = Vec::new();
        encode_binary_payload(&packets, &mut out);
        assert_eq!(&out[..4], &[0, 7, 0xff, b'4']);
        assert_eq!(decode_binary_payload(&out, 16), Ok(packets));
    }

    #[test]
    fn binary_payload_rejects_bad_framing() {
        for bad in [
            &[][..],
            &[0, 2, 0xff, b'4'],
            &[0, 0xff],
            &[0, 10, 0xff, b'4'],
            &[2, 1, 0xff, b'6'],
            &[1, 1, 0xff, 3],
            &[1, 0, 0xff],
            &[0, 1],
            &[0, 2, 0xff, b'4', 0xc3],
        ] {
            assert!(decode_binary_payload(bad, 16).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn websocket_binary_has_a_type_byte() {
        let mut out = Vec::new();
        encode_ws_binary(&[1, 2], &mut out);
        assert_eq!(out, [4, 1, 2]);
        assert_eq!(decode_ws_binary(&out), Ok(bin(&[1, 2])));
        assert_eq!(decode_ws_binary(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_ws_binary(&[2]), Err(DecodeError::UnknownType(2)));
        assert!(wants_binary_payload(true, &[text("a"), bin(&[])]));
        assert!(!wants_binary_payload(false, &[bin(&[])]));
        assert!(!wants_binary_payload(true, &[text("a")]));
    }
}
