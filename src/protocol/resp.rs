//! RESP, the Redis serialization protocol, sans-IO: the groundwork of a Redis adapter
//! compatible with `@socket.io/redis-adapter` (issue 14). Compiled only with the `redis`
//! feature.
//!
//! Implemented:
//!
//! - [`decode`]: a push parser for one RESP2 reply (what Redis speaks to a client that did
//!   not send `HELLO 3`, pub/sub included): simple strings `+`, errors `-`, integers `:`,
//!   bulk strings `$` (and the null bulk string `$-1`), arrays `*` (and the null array
//!   `*-1`), nested. `Ok(None)` means more bytes are needed and consumes nothing; an error
//!   is final (the connection is out of sync: drop it). Every length is checked against
//!   [`Limits`] before anything is allocated, and nothing is allocated until the whole frame
//!   is in the buffer, so a broken or hostile server cannot make it allocate without bound.
//!   Byte strings are kept as bytes, not checked for UTF-8.
//! - RESP3 push frames `>` (how Redis 6+ delivers pub/sub messages to a RESP3 client) are
//!   read like arrays, as [`Frame::Push`].
//! - [`encode_command`]: a command as an array of bulk strings, all a client ever sends
//!   (`AUTH`, `SELECT`, `PUBLISH`, `SUBSCRIBE`, `PSUBSCRIBE`, `PUBSUB NUMSUB`, ...).
//! - [`PubSub::parse`]: recognises pub/sub deliveries (`message`, `pmessage`, `smessage`),
//!   subscription confirmations and the subscribed-mode `pong` in a decoded frame.
//! - [`Frame::encode`]: a frame back to RESP, for tests and tools (a fake server).
//!
//! Not implemented: the other RESP3 types (null `_`, doubles `,`, booleans `#`, big
//! numbers `(`, blob errors `!`, verbatim strings `=`, maps `%`, sets `~`, attributes `|`:
//! each is refused as [`RespError::UnknownType`], so do not send `HELLO 3`), inline
//! commands, and the Redis connection itself (no sockets here; the adapter is to come).
//!
//! ```
//! use sioloop::protocol::resp::{decode, encode_command, Frame, Limits, PubSub};
//!
//! let mut out = Vec::new();
//! encode_command(&mut out, &[b"SUBSCRIBE", b"socket.io#/#"]);
//! assert_eq!(out, b"*2\r\n$9\r\nSUBSCRIBE\r\n$12\r\nsocket.io#/#\r\n");
//!
//! let reply = b"*3\r\n$7\r\nmessage\r\n$12\r\nsocket.io#/#\r\n$2\r\nhi\r\n";
//! let limits = Limits::default();
//! assert_eq!(decode(&reply[..10], &limits), Ok(None)); // more bytes needed
//! let (frame, used) = decode(reply, &limits).unwrap().unwrap();
//! assert_eq!(used, reply.len());
//! assert_eq!(
//!     PubSub::parse(&frame),
//!     Some(PubSub::Message { channel: b"socket.io#/#", payload: b"hi" })
//! );
//! ```

use std::fmt;
use std::ops::Range;

/// Bounds on what one decoded frame may hold. Each is checked as soon as the length that
/// breaks it is read, before the bytes it announces arrive.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Limits {
    /// The longest bulk string, in bytes.
    pub max_bulk_len: usize,
    /// The longest array (or push frame), in elements.
    pub max_array_len: usize,
    /// How many arrays may enclose one another: 1 allows an array of strings and integers,
    /// 0 no array at all. At most [`MAX_DEPTH`], whatever this says: frames are dropped,
    /// compared and encoded recursively.
    pub max_depth: usize,
    /// The most array elements in one frame, summed over every array in it.
    pub max_elements: usize,
    /// The longest simple string or error line, in bytes (without the type byte and CRLF).
    pub max_line_len: usize,
}

/// The deepest nesting [`decode`] accepts, whatever [`Limits::max_depth`] says. Redis's own
/// replies nest three or four levels (`CLUSTER SLOTS`, `XREAD`).
pub const MAX_DEPTH: usize = 64;

impl Default for Limits {
    /// Bulk strings up to 64 MiB, arrays up to 1 Mi elements (and as many in all), 8 levels
    /// of nesting, lines up to 64 KiB.
    fn default() -> Self {
        Limits {
            max_bulk_len: 64 << 20,
            max_array_len: 1 << 20,
            max_depth: 8,
            max_elements: 1 << 20,
            max_line_len: 64 << 10,
        }
    }
}

/// One RESP value. Byte strings are bytes as received.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Frame {
    /// `+OK`: a simple string (no CR or LF in it).
    Simple(Vec<u8>),
    /// `-ERR unknown command`: an error reply (no CR or LF in it).
    Error(Vec<u8>),
    /// `:42`: a signed 64-bit integer.
    Integer(i64),
    /// `$5\r\nhello`: a bulk string.
    Bulk(Vec<u8>),
    /// `$-1`: the null bulk string (a missing key, an `unsubscribe` from nothing).
    NullBulk,
    /// `*2\r\n...`: an array.
    Array(Vec<Frame>),
    /// `*-1`: the null array (a timed-out blocking pop, an aborted `EXEC`).
    NullArray,
    /// `>3\r\n...`: a RESP3 push frame (out-of-band data such as pub/sub messages).
    Push(Vec<Frame>),
}

impl Frame {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(bytes) | Frame::Simple(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Appends the frame as RESP, in canonical form (no leading zeros). A client sends
    /// only commands ([`encode_command`]); this is for tests and tools such as a fake
    /// server. A simple string or error holding CR or LF is written as it is, which no
    /// decoder reads back the same; [`decode`] never makes one.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(line) => line_frame(out, b'+', line),
            Frame::Error(line) => line_frame(out, b'-', line),
            Frame::Integer(n) => {
                out.push(b':');
                if *n < 0 {
                    out.push(b'-');
                }
                push_decimal(out, n.unsigned_abs());
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(bytes) => bulk(out, bytes),
            Frame::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) | Frame::Push(items) => {
                let kind = if matches!(self, Frame::Push(_)) {
                    b'>'
                } else {
                    b'*'
                };
                header(out, kind, items.len());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// Why [`decode`] refused the input. Every error is final: the stream cannot be resynced.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RespError {
    /// The first byte of a frame is no RESP2 type (nor `>`); the byte is given.
    UnknownType(u8),
    /// A line with CR not followed by LF, or LF not after CR, or a bulk string whose bytes
    /// are not followed by CRLF.
    BadLineEnd,
    /// A simple string or error line longer than [`Limits::max_line_len`].
    LineTooLong,
    /// An integer that is not `-?[0-9]+` or does not fit in `i64`.
    BadInteger,
    /// A bulk or array length that is not `-1` or `[0-9]+`, or does not fit in `usize`.
    BadLength,
    /// A bulk string longer than [`Limits::max_bulk_len`].
    BulkTooLong,
    /// An array longer than [`Limits::max_array_len`].
    ArrayTooLong,
    /// Arrays nested deeper than [`Limits::max_depth`] (or [`MAX_DEPTH`]).
    TooDeep,
    /// More array elements in all than [`Limits::max_elements`].
    TooManyElements,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::UnknownType(byte) => write!(f, "unknown RESP type byte 0x{byte:02x}"),
            RespError::BadLineEnd => f.write_str("RESP line not ended by CRLF"),
            RespError::LineTooLong => f.write_str("RESP line too long"),
            RespError::BadInteger => f.write_str("invalid RESP integer"),
            RespError::BadLength => f.write_str("invalid RESP length"),
            RespError::BulkTooLong => f.write_str("RESP bulk string too long"),
            RespError::ArrayTooLong => f.write_str("RESP array too long"),
            RespError::TooDeep => f.write_str("RESP arrays nested too deep"),
            RespError::TooManyElements => f.write_str("too many RESP array elements"),
        }
    }
}

impl std::error::Error for RespError {}

/// Reads one frame from the start of `buf`: the frame and the bytes it took, or `None` if
/// `buf` holds only part of one (nothing is consumed; call again with more bytes).
///
/// The verdict on a prefix never contradicts the verdict on more bytes: a prefix of a
/// complete frame is `None`, and an error found in a prefix is the error for any longer
/// input. Each call scans from the start of `buf`; nothing is allocated until the frame is
/// complete, then about as much as the frame's own size.
///
/// ```
/// use sioloop::protocol::resp::{decode, Frame, Limits, RespError};
/// let limits = Limits::default();
/// assert_eq!(decode(b":-7\r\n+OK\r\n", &limits), Ok(Some((Frame::Integer(-7), 5))));
/// assert_eq!(decode(b"$3\r\nab", &limits), Ok(None));
/// assert_eq!(decode(b"$-2\r\n", &limits), Err(RespError::BadLength));
/// ```
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, RespError> {
    // Scan first, so an incomplete frame costs no allocation, then build.
    if walk(buf, limits, &mut Scan)?.is_none() {
        return Ok(None);
    }
    let mut build = Build::default();
    Ok(walk(buf, limits, &mut build)?.and_then(|used| Some((build.done?, used))))
}

/// Appends `args` as one command: an array of bulk strings.
///
/// ```
/// use sioloop::protocol::resp::encode_command;
/// let mut out = Vec::new();
/// encode_command(&mut out, &[b"PUBLISH", b"ch", b"hello"]);
/// assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5\r\nhello\r\n");
/// ```
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    header(out, b'*', args.len());
    for arg in args {
        bulk(out, arg);
    }
}

/// What a subscription reply confirms.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SubscriptionKind {
    /// `subscribe`
    Subscribe,
    /// `unsubscribe`
    Unsubscribe,
    /// `psubscribe`
    PSubscribe,
    /// `punsubscribe`
    PUnsubscribe,
    /// `ssubscribe` (sharded pub/sub, Redis 7)
    SSubscribe,
    /// `sunsubscribe`
    SUnsubscribe,
}

/// A pub/sub frame, borrowed from the decoded [`Frame`] (an array, or a RESP3 push).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PubSub<'a> {
    /// `message`: a delivery on a channel subscribed with `SUBSCRIBE`.
    Message {
        /// The channel.
        channel: &'a [u8],
        /// What was published.
        payload: &'a [u8],
    },
    /// `pmessage`: a delivery on a channel matching a `PSUBSCRIBE` pattern.
    PMessage {
        /// The pattern that matched.
        pattern: &'a [u8],
        /// The channel published to.
        channel: &'a [u8],
        /// What was published.
        payload: &'a [u8],
    },
    /// `smessage`: a delivery on a shard channel (`SSUBSCRIBE`).
    SMessage {
        /// The shard channel.
        channel: &'a [u8],
        /// What was published.
        payload: &'a [u8],
    },
    /// A (un)subscription confirmation: one per channel or pattern named in the command.
    Subscription {
        /// Which command it confirms.
        kind: SubscriptionKind,
        /// The channel or pattern; `None` for an unsubscribe from nothing.
        channel: Option<&'a [u8]>,
        /// How many subscriptions the connection has now.
        count: i64,
    },
    /// `pong`: the answer to `PING` in subscribed mode, with its argument (empty if none).
    Pong(&'a [u8]),
}

impl PubSub<'_> {
    /// Recognises a pub/sub frame (kinds in lower case, as Redis sends them); `None` for
    /// anything else.
    pub fn parse(frame: &Frame) -> Option<PubSub<'_>> {
        let (Frame::Array(items) | Frame::Push(items)) = frame else {
            return None;
        };
        let (kind, rest) = items.split_first()?;
        let kind = bulk_bytes(kind)?;
        let sub_kind = match kind {
            b"subscribe" => Some(SubscriptionKind::Subscribe),
            b"unsubscribe" => Some(SubscriptionKind::Unsubscribe),
            b"psubscribe" => Some(SubscriptionKind::PSubscribe),
            b"punsubscribe" => Some(SubscriptionKind::PUnsubscribe),
            b"ssubscribe" => Some(SubscriptionKind::SSubscribe),
            b"sunsubscribe" => Some(SubscriptionKind::SUnsubscribe),
            _ => None,
        };
        if let Some(kind) = sub_kind {
            let [channel, Frame::Integer(count)] = rest else {
                return None;
            };
            let channel = match channel {
                Frame::NullBulk => None,
                other => Some(bulk_bytes(other)?),
            };
            return Some(PubSub::Subscription {
                kind,
                channel,
                count: *count,
            });
        }
        match (kind, rest) {
            (b"message", [channel, payload]) => Some(PubSub::Message {
                channel: bulk_bytes(channel)?,
                payload: bulk_bytes(payload)?,
            }),
            (b"smessage", [channel, payload]) => Some(PubSub::SMessage {
                channel: bulk_bytes(channel)?,
                payload: bulk_bytes(payload)?,
            }),
            (b"pmessage", [pattern, channel, payload]) => Some(PubSub::PMessage {
                pattern: bulk_bytes(pattern)?,
                channel: bulk_bytes(channel)?,
                payload: bulk_bytes(payload)?,
            }),
            (b"pong", [payload]) => Some(PubSub::Pong(bulk_bytes(payload)?)),
            _ => None,
        }
    }
}

/// The bytes of a bulk string.
fn bulk_bytes(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::Bulk(bytes) => Some(bytes),
        _ => None,
    }
}

/// One RESP item as read from the buffer: a whole scalar, or the header of an array.
enum Token {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    NullBulk,
    NullArray,
    /// An array (`push: false`) or push frame header and its length.
    Aggregate {
        len: usize,
        push: bool,
    },
}

/// What [`walk`] does with the tokens of a frame: [`Scan`] nothing, [`Build`] the frame.
trait Sink {
    /// A scalar (or null) at the current position.
    fn scalar(&mut self, buf: &[u8], token: Token);
    /// An array or push frame with `len > 0` elements opens.
    fn open(&mut self, len: usize, push: bool);
    /// The innermost open array has all its elements.
    fn close(&mut self);
}

/// Checks a frame without keeping anything.
struct Scan;

impl Sink for Scan {
    fn scalar(&mut self, _: &[u8], _: Token) {}
    fn open(&mut self, _: usize, _: bool) {}
    fn close(&mut self) {}
}

/// Builds a frame; run only over a buffer that [`Scan`] found complete and valid.
#[derive(Default)]
struct Build {
    /// The open arrays, outermost first: elements so far and whether it is a push frame.
    open: Vec<(Vec<Frame>, bool)>,
    done: Option<Frame>,
}

impl Build {
    fn put(&mut self, frame: Frame) {
        match self.open.last_mut() {
            Some((items, _)) => items.push(frame),
            None => self.done = Some(frame),
        }
    }
}

impl Sink for Build {
    fn scalar(&mut self, buf: &[u8], token: Token) {
        let bytes = |range: Range<usize>| buf.get(range).unwrap_or_default().to_vec();
        let frame = match token {
            Token::Simple(range) => Frame::Simple(bytes(range)),
            Token::Error(range) => Frame::Error(bytes(range)),
            Token::Integer(n) => Frame::Integer(n),
            Token::Bulk(range) => Frame::Bulk(bytes(range)),
            Token::NullBulk => Frame::NullBulk,
            Token::NullArray => Frame::NullArray,
            // Empty aggregates come here; others go through `open`.
            Token::Aggregate { push: false, .. } => Frame::Array(Vec::new()),
            Token::Aggregate { push: true, .. } => Frame::Push(Vec::new()),
        };
        self.put(frame);
    }

    fn open(&mut self, len: usize, push: bool) {
        self.open.push((Vec::with_capacity(len), push));
    }

    fn close(&mut self) {
        if let Some((items, push)) = self.open.pop() {
            self.put(if push {
                Frame::Push(items)
            } else {
                Frame::Array(items)
            });
        }
    }
}

/// Walks one frame from the start of `buf`, telling `sink` what it finds: the frame's
/// length, or `None` if `buf` ends first.
fn walk(buf: &[u8], limits: &Limits, sink: &mut impl Sink) -> Result<Option<usize>, RespError> {
    let max_depth = limits.max_depth.min(MAX_DEPTH);
    // Elements still due in each open array, outermost first; at most `max_depth` long.
    let mut due: Vec<usize> = Vec::new();
    let mut elements: usize = 0;
    let mut pos = 0;
    loop {
        let Some((token, next)) = token(buf, pos, limits)? else {
            return Ok(None);
        };
        pos = next;
        match token {
            Token::Aggregate { len, push } => {
                if due.len() >= max_depth {
                    return Err(RespError::TooDeep);
                }
                elements = elements
                    .checked_add(len)
                    .filter(|&n| n <= limits.max_elements)
                    .ok_or(RespError::TooManyElements)?;
                if len > 0 {
                    due.push(len);
                    sink.open(len, push);
                    continue;
                }
                sink.scalar(buf, token);
            }
            token => sink.scalar(buf, token),
        }
        // A value is complete: it may complete the arrays around it.
        loop {
            let Some(left) = due.last_mut() else {
                return Ok(Some(pos));
            };
            *left -= 1;
            if *left > 0 {
                break;
            }
            due.pop();
            sink.close();
        }
    }
}

/// The longest integer or length line: `-9223372036854775808` and `18446744073709551615`
/// take 20 bytes.
const MAX_NUMBER_LEN: usize = 20;

/// Reads the item starting at `pos`: the token and where the next item starts.
fn token(buf: &[u8], pos: usize, limits: &Limits) -> Result<Option<(Token, usize)>, RespError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let start = pos + 1;
    let number_line = |bad| match line(buf, start, MAX_NUMBER_LEN) {
        Err(RespError::LineTooLong) => Err(bad),
        other => other,
    };
    match kind {
        b'+' | b'-' => {
            let Some(end) = line(buf, start, limits.max_line_len)? else {
                return Ok(None);
            };
            let token = if kind == b'+' {
                Token::Simple(start..end)
            } else {
                Token::Error(start..end)
            };
            Ok(Some((token, end + 2)))
        }
        b':' => {
            let Some(end) = number_line(RespError::BadInteger)? else {
                return Ok(None);
            };
            let n = parse_integer(&buf[start..end]).ok_or(RespError::BadInteger)?;
            Ok(Some((Token::Integer(n), end + 2)))
        }
        b'$' => {
            let Some(end) = number_line(RespError::BadLength)? else {
                return Ok(None);
            };
            let data = end + 2;
            let Some(len) = parse_length(&buf[start..end])? else {
                return Ok(Some((Token::NullBulk, data)));
            };
            if len > limits.max_bulk_len {
                return Err(RespError::BulkTooLong);
            }
            let data_end = data.checked_add(len).ok_or(RespError::BulkTooLong)?;
            match buf.get(data_end..) {
                Some([b'\r', b'\n', ..]) => Ok(Some((Token::Bulk(data..data_end), data_end + 2))),
                None | Some([] | [b'\r']) => Ok(None),
                Some(_) => Err(RespError::BadLineEnd),
            }
        }
        b'*' | b'>' => {
            let Some(end) = number_line(RespError::BadLength)? else {
                return Ok(None);
            };
            let token = match parse_length(&buf[start..end])? {
                None if kind == b'*' => Token::NullArray,
                None => return Err(RespError::BadLength),
                Some(len) if len > limits.max_array_len => return Err(RespError::ArrayTooLong),
                Some(len) => Token::Aggregate {
                    len,
                    push: kind == b'>',
                },
            };
            Ok(Some((token, end + 2)))
        }
        other => Err(RespError::UnknownType(other)),
    }
}

/// Finds the CRLF ending the line that starts at `start`: where the CR is, `None` if the
/// buffer ends first. The line may not hold CR or LF, nor be longer than `max` bytes; both
/// are known from the first `max + 1` bytes, so the verdict does not depend on what follows.
fn line(buf: &[u8], start: usize, max: usize) -> Result<Option<usize>, RespError> {
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(max.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) => match (window[i], rest.get(i + 1)) {
            (b'\r', Some(b'\n')) => Ok(Some(start + i)),
            (b'\r', None) => Ok(None),
            _ => Err(RespError::BadLineEnd),
        },
        None if window.len() > max => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

/// `-?[0-9]+` as an `i64`.
fn parse_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        let d = i64::from(d.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        // Accumulate on the side of the sign, so `i64::MIN` fits.
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// A bulk or array length: `Some(n)` for `[0-9]+`, `None` for `-1` (null).
fn parse_length(text: &[u8]) -> Result<Option<usize>, RespError> {
    if text == b"-1" {
        return Ok(None);
    }
    if text.is_empty() {
        return Err(RespError::BadLength);
    }
    let mut n: usize = 0;
    for &d in text {
        let d = usize::from(d.wrapping_sub(b'0'));
        if d > 9 {
            return Err(RespError::BadLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(d))
            .ok_or(RespError::BadLength)?;
    }
    Ok(Some(n))
}

/// `kind`, `len` and CRLF: an aggregate or bulk header.
fn header(out: &mut Vec<u8>, kind: u8, len: usize) {
    out.push(kind);
    push_decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn line_frame(out: &mut Vec<u8>, kind: u8, line: &[u8]) {
    out.push(kind);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests;
