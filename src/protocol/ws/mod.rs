//! The server side of RFC 6455 WebSocket, without IO: the upgrade response, and a frame
//! reader that adds the checks tungstenite's header parser leaves to its caller.
//!
//! Frame headers are parsed and written by `tungstenite::protocol::frame::FrameHeader`.
//! This module checks client masking, RSV bits (no extension is negotiated), control frame
//! size and fragmentation, continuation order, UTF-8 of text messages, close codes, and caps
//! a message at `max_message` bytes. Not implemented: permessage-deflate (never offered).

use std::io::Cursor;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::protocol::http::Request;

/// What a complete frame (or a reassembled message) means to the server.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum WsEvent {
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping: answer with a pong carrying the same data.
    Ping(Vec<u8>),
    /// A pong (ignored by the server).
    Pong,
    /// The peer closes, with its code and reason if it sent them.
    Close(Option<(u16, String)>),
}

/// Why the peer's frames are refused. Each is final: send a close frame with
/// [`WsError::close_code`] and drop the connection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum WsError {
    /// A violation of RFC 6455 (close code 1002).
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8 (1007).
    InvalidUtf8,
    /// A message larger than the limit (1009).
    TooBig,
}

impl WsError {
    /// The close code to send.
    pub fn close_code(self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidUtf8 => 1007,
            WsError::TooBig => 1009,
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Protocol(what) => write!(f, "websocket protocol error: {what}"),
            WsError::InvalidUtf8 => f.write_str("websocket text is not valid UTF-8"),
            WsError::TooBig => f.write_str("websocket message too big"),
        }
    }
}

impl std::error::Error for WsError {}

/// Reads client frames and reassembles fragmented messages.
///
/// A data frame's payload is taken as it arrives: unmasked into the message being
/// received, so a large message is held once (not as a frame in the caller's buffer and
/// again as a message) and its cost is spread over the reads that bring it, instead of
/// falling on the one that completes it. Control frames (at most 125 bytes) are read whole.
///
/// ```
/// use sioloop::protocol::ws::{FrameReader, WsEvent};
/// // A masked text frame "4hi" (mask 0,0,0,0 for the example).
/// let frame = [0x81, 0x83, 0, 0, 0, 0, b'4', b'h', b'i'];
/// let mut reader = FrameReader::new(1 << 20);
/// assert_eq!(reader.read(&frame[..5]), Ok((0, None))); // an incomplete header: nothing consumed
/// assert_eq!(reader.read(&frame[..7]), Ok((7, None))); // the header and one payload byte, taken
/// assert_eq!(reader.read(&frame[7..]), Ok((2, Some(WsEvent::Text("4hi".into())))));
/// ```
#[derive(Debug)]
pub struct FrameReader {
    max_message: usize,
    /// The data message being received, from its first frame's header to its last
    /// frame's last byte.
    /// (Boxed: most messages arrive in one piece and never need it, and every idle
    /// WebSocket connection carries this field.)
    message: Option<Box<MessageSoFar>>,
}

/// A data message being received.
#[derive(Debug)]
struct MessageSoFar {
    is_text: bool,
    /// Its payload so far, unmasked.
    data: Vec<u8>,
    /// The frame whose payload is arriving; `None` between fragments (where control frames
    /// may come).
    frame: Option<FrameLeft>,
}

/// What is left of a data frame's payload.
#[derive(Debug)]
struct FrameLeft {
    is_final: bool,
    /// The frame's mask, turned so that it starts at the next payload byte.
    mask: [u8; 4],
    left: usize,
}

impl FrameReader {
    /// A reader that refuses messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> FrameReader {
        FrameReader {
            max_message,
            message: None,
        }
    }

    /// Bytes of a message held until its last byte arrives (as allocated).
    pub fn buffered(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity())
    }

    /// Gives back the room the message being received has not filled yet (its buffer
    /// grows by doubling as bytes arrive), for a caller short of memory.
    pub fn shrink_to_fit(&mut self) {
        if let Some(message) = &mut self.message {
            message.data.shrink_to_fit();
        }
    }

    /// Reads from the start of `buf` until a message or control frame completes or the
    /// bytes run out. Returns the bytes consumed (a caller drops them from its buffer) and
    /// the event, if one completed. Data frame headers and payload bytes are consumed into
    /// the reader's state as they come, so bytes may be consumed with no event; what is
    /// left unconsumed is an incomplete frame header or control frame. `(0, None)` means
    /// "need more bytes".
    pub fn read(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>), WsError> {
        let mut consumed = 0;
        loop {
            if let Some(message) = &mut self.message
                && let Some(frame) = &mut message.frame
            {
                let rest = &buf[consumed..];
                let n = frame.left.min(rest.len());
                if n == 0 && frame.left > 0 {
                    return Ok((consumed, None));
                }
                let start = message.data.len();
                message.data.extend_from_slice(&rest[..n]);
                apply_mask(&mut message.data[start..], frame.mask);
                frame.mask.rotate_left(n % 4);
                frame.left -= n;
                consumed += n;
                if frame.left > 0 {
                    return Ok((consumed, None));
                }
                let is_final = frame.is_final;
                message.frame = None;
                if is_final && let Some(message) = self.message.take() {
                    let MessageSoFar { is_text, data, .. } = *message;
                    return message_event(is_text, data).map(|event| (consumed, Some(event)));
                }
                continue;
            }
            let rest = &buf[consumed..];
            let mut cursor = Cursor::new(rest);
            let Some((header, len)) = FrameHeader::parse(&mut cursor)
                .map_err(|_| WsError::Protocol("invalid frame header"))?
            else {
                return Ok((consumed, None));
            };
            let header_len = cursor.position() as usize;
            self.check_header(&header, len)?;
            // `len` fits in usize: check_header capped it at max_message or 125. A frame
            // whose whole length does not fit is too big even for an unlimited reader
            // (found by fuzzing: the sum overflowed).
            let len = len as usize;
            if header_len.checked_add(len).is_none() {
                return Err(WsError::TooBig);
            }
            let mask = header.mask.unwrap_or_default();
            let is_final = header.is_final;
            match header.opcode {
                OpCode::Data(data) => {
                    let is_text = data == Data::Text;
                    let whole = rest.len() - header_len >= len;
                    if whole && is_final && data != Data::Continue {
                        // The common case, a whole message in one frame: no state kept.
                        let mut payload = rest[header_len..header_len + len].to_vec();
                        apply_mask(&mut payload, mask);
                        consumed += header_len + len;
                        return message_event(is_text, payload)
                            .map(|event| (consumed, Some(event)));
                    }
                    let frame = Some(FrameLeft {
                        is_final,
                        mask,
                        left: len,
                    });
                    match &mut self.message {
                        // check_header: a continuation comes inside a message, and only
                        // a continuation does.
                        Some(message) => message.frame = frame,
                        None => {
                            // A whole frame is allocated once; one still arriving grows
                            // with it.
                            let capacity = if whole { len } else { 0 };
                            self.message = Some(Box::new(MessageSoFar {
                                is_text,
                                data: Vec::with_capacity(capacity),
                                frame,
                            }));
                        }
                    }
                    consumed += header_len;
                }
                OpCode::Control(control) => {
                    let frame_len = header_len + len;
                    if rest.len() < frame_len {
                        return Ok((consumed, None));
                    }
                    let mut payload = rest[header_len..frame_len].to_vec();
                    apply_mask(&mut payload, mask);
                    consumed += frame_len;
                    let event = match control {
                        Control::Ping => WsEvent::Ping(payload),
                        Control::Pong => WsEvent::Pong,
                        Control::Close => parse_close(&payload)?,
                        Control::Reserved(_) => {
                            return Err(WsError::Protocol("reserved opcode"));
                        }
                    };
                    return Ok((consumed, Some(event)));
                }
            }
        }
    }

    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<(), WsError> {
        // RFC 6455 5.1: "a client MUST mask all frames that it sends to the server".
        if header.mask.is_none() {
            return Err(WsError::Protocol("unmasked client frame"));
        }
        // 5.2: RSV bits MUST be 0 unless an extension defines them; we negotiate none.
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Err(WsError::Protocol("reserved opcode"))
            }
            // 5.5: control frames have payloads of 125 bytes or less and are not fragmented.
            OpCode::Control(_) if len > 125 => Err(WsError::Protocol("control frame too big")),
            OpCode::Control(_) if !header.is_final => {
                Err(WsError::Protocol("fragmented control frame"))
            }
            OpCode::Data(Data::Continue) if self.message.is_none() => {
                Err(WsError::Protocol("continuation without a message"))
            }
            OpCode::Data(Data::Text | Data::Binary) if self.message.is_some() => {
                Err(WsError::Protocol("new message inside a fragmented one"))
            }
            OpCode::Data(_) => {
                let so_far = self.message.as_ref().map_or(0, |m| m.data.len() as u64);
                if so_far.saturating_add(len) > self.max_message as u64 {
                    Err(WsError::TooBig)
                } else {
                    Ok(())
                }
            }
            OpCode::Control(_) => Ok(()),
        }
    }
}

/// The event of a message whose last byte arrived: text must be UTF-8 (checked once, over
/// the whole message: a character may span fragments).
fn message_event(is_text: bool, data: Vec<u8>) -> Result<WsEvent, WsError> {
    if is_text {
        String::from_utf8(data)
            .map(WsEvent::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(WsEvent::Binary(data))
    }
}

fn parse_close(payload: &[u8]) -> Result<WsEvent, WsError> {
    match payload {
        [] => Ok(WsEvent::Close(None)),
        [_] => Err(WsError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            // 7.4: codes a peer may send. 1004-1006 and 1015 are reserved, below 1000 unused.
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(WsEvent::Close(Some((code, reason.to_owned()))))
        }
    }
}

/// Unmasks (or masks) data in place with a 4-byte key, the key's first byte applying to
/// the first byte of `data`.
///
/// ```
/// let mut data = *b"hello, world";
/// sioloop::protocol::ws::apply_mask(&mut data, [1, 2, 3, 4]);
/// sioloop::protocol::ws::apply_mask(&mut data, [1, 2, 3, 4]);
/// assert_eq!(&data, b"hello, world");
/// ```
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    // Sixteen bytes at a time (the key repeated four times), which the compiler turns into
    // vector instructions: a byte at a time, a megabyte message took ~0.5 ms to unmask.
    let mut wide = [0u8; 16];
    for (i, byte) in wide.iter_mut().enumerate() {
        *byte = mask[i & 3];
    }
    let mut chunks = data.chunks_exact_mut(16);
    for chunk in &mut chunks {
        for (byte, key) in chunk.iter_mut().zip(wide) {
            *byte ^= key;
        }
    }
    // A multiple of 16 was masked, so the key starts over.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Which kind of server frame to write.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FrameKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A pong.
    Pong,
    /// A close.
    Close,
}

/// Appends one final, unmasked server frame. Server frames are not masked, so the bytes
/// are the same for every recipient and can be shared.
///
/// ```
/// use sioloop::protocol::ws::{write_frame, FrameKind};
/// let mut out = Vec::new();
/// write_frame(&mut out, FrameKind::Text, b"4hi");
/// assert_eq!(out, [0x81, 3, b'4', b'h', b'i']);
/// ```
pub fn write_frame(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    write_frame_parts(out, kind, &[payload]);
}

/// [`write_frame`] with the payload given in parts, written one after the other: a caller
/// that prefixes its data (Engine.IO's packet-type digit) need not copy it into one buffer
/// first.
///
/// ```
/// use sioloop::protocol::ws::{write_frame_parts, FrameKind};
/// let mut out = Vec::new();
/// write_frame_parts(&mut out, FrameKind::Text, &[b"4", b"hi"]);
/// assert_eq!(out, [0x81, 3, b'4', b'h', b'i']);
/// ```
pub fn write_frame_parts(out: &mut Vec<u8>, kind: FrameKind, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let opcode = match kind {
        FrameKind::Text => OpCode::Data(Data::Text),
        FrameKind::Binary => OpCode::Data(Data::Binary),
        FrameKind::Pong => OpCode::Control(Control::Pong),
        FrameKind::Close => OpCode::Control(Control::Close),
    };
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(len as u64, out);
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Appends a close frame with a code and reason.
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    write_frame(out, FrameKind::Close, &payload);
}

/// Why an upgrade request is not a valid WebSocket handshake.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum HandshakeError {
    /// No `Sec-WebSocket-Key`.
    MissingKey,
    /// `Sec-WebSocket-Version` is not 13.
    UnsupportedVersion,
}

/// Appends the `101 Switching Protocols` response to a valid upgrade request.
///
/// ```
/// use sioloop::protocol::http::Request;
/// use sioloop::protocol::ws::accept_upgrade;
/// let req = Request::default()
///     .with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .with_header("Sec-WebSocket-Version", "13");
/// let mut out = Vec::new();
/// accept_upgrade(&req, &[], &mut out).unwrap();
/// assert!(String::from_utf8(out).unwrap().contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
/// ```
pub fn accept_upgrade(
    request: &Request,
    extra_headers: &[(String, String)],
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    use std::io::Write;
    let key = request
        .header("sec-websocket-key")
        .ok_or(HandshakeError::MissingKey)?;
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let accept = accept_key(key.trim().as_bytes());
    let _ = write!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    for (name, value) in extra_headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 section 4.2.2): the base64 of the
/// SHA-1 of the key followed by the protocol's GUID.
fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask);
        out.extend_from_slice(&p);
        out
    }

    /// Feeds `stream` in pieces of `step` bytes as the server does (append, read until
    /// `(0, None)`, drop what was consumed); returns the events and the most the caller's
    /// buffer ever held.
    fn feed_in_steps(
        reader: &mut FrameReader,
        stream: &[u8],
        step: usize,
    ) -> (Vec<WsEvent>, usize) {
        let (mut buf, mut events, mut most) = (Vec::new(), Vec::new(), 0);
        for piece in stream.chunks(step) {
            buf.extend_from_slice(piece);
            most = most.max(buf.len());
            loop {
                match reader.read(&buf) {
                    Ok((0, None)) => break,
                    Ok((n, event)) => {
                        buf.drain(..n);
                        events.extend(event);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        (events, most)
    }

    #[test]
    fn payloads_are_taken_as_they_arrive() {
        // A large text frame, then a message in two fragments with a ping between them and
        // a two-byte character split across the fragments.
        let text: String = (0..100_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut stream = client_frame(0x81, text.as_bytes());
        stream.extend(client_frame(
            0x01,
            "x\u{e9}"
                .as_bytes()
                .split_last()
                .map(|(_, a)| a)
                .unwrap_or_default(),
        ));
        stream.extend(client_frame(0x89, b"p"));
        stream.extend(client_frame(0x80, &"\u{e9}".as_bytes()[1..]));
        for step in [1, 3, 7, 1000, 65_536, stream.len()] {
            let mut reader = FrameReader::new(1 << 20);
            let (events, most) = feed_in_steps(&mut reader, &stream, step);
            assert_eq!(
                events,
                [
                    WsEvent::Text(text.clone()),
                    WsEvent::Ping(b"p".to_vec()),
                    WsEvent::Text("x\u{e9}".into())
                ],
                "step {step}"
            );
            // The caller never holds more than a piece and a frame header.
            assert!(
                most <= step + 14,
                "step {step}: the caller held {most} bytes"
            );
            assert_eq!(reader.buffered(), 0);
        }
        // Half of the large frame: held by the reader, unmasked, counted.
        let mut reader = FrameReader::new(1 << 20);
        assert_eq!(reader.read(&stream[..50_014]), Ok((50_014, None)));
        assert!(reader.buffered() >= 50_000);
    }

    #[test]
    fn reassembles_fragments_around_a_ping() {
        let mut buf = client_frame(0x01, b"4he");
        buf.extend(client_frame(0x89, b"p"));
        buf.extend(client_frame(0x80, b"llo"));
        let mut r = FrameReader::new(100);
        let (n, ev) = r.read(&buf).unwrap();
        assert_eq!(ev, Some(WsEvent::Ping(b"p".to_vec())));
        let (m, ev) = r.read(&buf[n..]).unwrap();
        assert_eq!(ev, Some(WsEvent::Text("4hello".into())));
        assert_eq!(n + m, buf.len());
        // A fragment alone is consumed into the reader with no event.
        let first = client_frame(0x01, b"4a");
        assert_eq!(FrameReader::new(100).read(&first), Ok((first.len(), None)));
    }

    #[test]
    fn rfc_violations_are_refused() {
        let mut r = FrameReader::new(100);
        assert_eq!(
            r.read(&[0x81, 0x01, b'x']),
            Err(WsError::Protocol("unmasked client frame"))
        );
        assert_eq!(
            FrameReader::new(100).read(&client_frame(0xC1, b"x")),
            Err(WsError::Protocol("reserved bits set"))
        );
        assert_eq!(
            FrameReader::new(100).read(&client_frame(0x09, b"x")),
            Err(WsError::Protocol("fragmented control frame"))
        );
        assert_eq!(
            FrameReader::new(1000).read(&client_frame(0x89, &[0; 126])),
            Err(WsError::Protocol("control frame too big"))
        );
        assert_eq!(
            FrameReader::new(100).read(&client_frame(0x80, b"x")),
            Err(WsError::Protocol("continuation without a message"))
        );
        assert_eq!(
            FrameReader::new(100).read(&client_frame(0x81, &[0xff])),
            Err(WsError::InvalidUtf8)
        );
        assert_eq!(
            FrameReader::new(10).read(&client_frame(0x82, &[0; 11])),
            Err(WsError::TooBig)
        );
        assert_eq!(
            FrameReader::new(10).read(&client_frame(0x88, &[0x03, 0xed])),
            Err(WsError::Protocol("invalid close code"))
        );
        assert_eq!(
            FrameReader::new(10).read(&client_frame(0x83, b"")),
            // tungstenite's header parser refuses reserved opcodes itself.
            Err(WsError::Protocol("invalid frame header"))
        );
        let mut frag = client_frame(0x01, b"a");
        frag.extend(client_frame(0x81, b"b"));
        assert_eq!(
            FrameReader::new(10).read(&frag),
            Err(WsError::Protocol("new message inside a fragmented one"))
        );
    }

    #[test]
    fn too_big_is_refused_before_the_payload_arrives() {
        let frame = client_frame(0x82, &[0; 70_000]);
        assert_eq!(
            FrameReader::new(65_536).read(&frame[..20]),
            Err(WsError::TooBig)
        );
    }

    #[test]
    fn huge_length_with_an_unlimited_reader_does_not_overflow() {
        // Regression (fuzz/ws_frames): a 64-bit length of all ones overflowed
        // `header_len + len` when the message limit was usize::MAX.
        let frame = [
            0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ];
        assert_eq!(
            FrameReader::new(usize::MAX).read(&frame),
            Err(WsError::TooBig)
        );
    }

    #[test]
    fn close_frames() {
        let mut r = FrameReader::new(10);
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let f = client_frame(0x88, &payload);
        assert_eq!(
            r.read(&f),
            Ok((f.len(), Some(WsEvent::Close(Some((1000, "bye".into()))))))
        );
    }
}
