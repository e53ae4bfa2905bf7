//! RESP replies (feature `redis`): `resp::decode` never panics; feeding a byte stream in
//! chunks (appending each to a buffer, decoding until `None` and draining what was consumed,
//! as a client connection would) gives the same frames, first error and leftover bytes as
//! feeding it at once; every strict prefix sampled of a complete frame is `None`; decoded
//! frames keep within the limits; a decoded frame encoded with `Frame::encode` decodes back
//! to the same frame, canonically, and an array of bulk strings encodes as `encode_command`
//! writes it; `PubSub::parse` never panics and agrees with the frame.
//!
//! The input is raw bytes: the first one picks the limits (bit 0: small ones from the next
//! five bytes; otherwise the defaults) and the chunk sizes (bits 1 to 3); the rest is the
//! stream from the server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::resp::{
    Frame, Limits, MAX_DEPTH, PubSub, RespError, decode, encode_command,
};

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<RespError>,
    leftover: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (limits, stream) = match (mode & 1, rest) {
        (1, [bulk, array, depth, elements, line, stream @ ..]) => (
            Limits {
                max_bulk_len: usize::from(*bulk),
                max_array_len: usize::from(*array % 16),
                max_depth: usize::from(*depth % 8),
                max_elements: usize::from(*elements % 64),
                max_line_len: usize::from(*line),
            },
            stream,
        ),
        _ => (Limits::default(), rest),
    };

    let whole = feed(&limits, [stream]);

    // Chunk sizes cycle through a pattern the mode byte picks: 1 byte at a time, or sizes
    // from 1 to 5 * step.
    let step = usize::from((mode >> 1) & 7);
    let mut pieces = Vec::new();
    let mut left = stream;
    let mut i = 0usize;
    while !left.is_empty() {
        let size = if step == 0 {
            1
        } else {
            1 + (i * 31 + step * 7) % (step * 5)
        };
        let (piece, tail) = left.split_at(size.min(left.len()));
        pieces.push(piece);
        left = tail;
        i += 1;
    }
    let chunked = feed(&limits, pieces);
    assert_eq!(
        chunked, whole,
        "chunked feeding differs from feeding at once"
    );

    // A complete first frame: its strict prefixes are incomplete.
    if let Ok(Some((_, used))) = decode(stream, &limits) {
        for split in [
            0,
            1,
            used / 2,
            used.saturating_sub(2),
            used.saturating_sub(1),
        ] {
            if split < used {
                assert_eq!(
                    decode(&stream[..split], &limits),
                    Ok(None),
                    "prefix {split}"
                );
            }
        }
    }

    for frame in &whole.frames {
        check_limits(frame, &limits, 0);
        let mut encoded = Vec::new();
        frame.encode(&mut encoded);
        assert_eq!(
            decode(&encoded, &limits),
            Ok(Some((frame.clone(), encoded.len()))),
            "an encoded frame decodes back"
        );
        let mut again = Vec::new();
        decode(&encoded, &limits)
            .ok()
            .flatten()
            .expect("decoded above")
            .0
            .encode(&mut again);
        assert_eq!(again, encoded, "encoding is canonical");
        if let Frame::Array(items) = frame
            && let Some(args) = items
                .iter()
                .map(Frame::as_bytes)
                .collect::<Option<Vec<_>>>()
            && items.iter().all(|item| matches!(item, Frame::Bulk(_)))
        {
            let mut command = Vec::new();
            encode_command(&mut command, &args);
            assert_eq!(command, encoded, "an array of bulk strings is a command");
        }
        check_pubsub(frame);
    }
});

/// Feeds `pieces` the way a client connection would, until the first error.
fn feed<'a>(limits: &Limits, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut out = Outcome::default();
    let mut buf = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decode(&buf, limits) {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "consumed {used} of {}",
                        buf.len()
                    );
                    buf.drain(..used);
                    out.frames.push(frame);
                }
                Err(error) => {
                    out.error = Some(error);
                    return out;
                }
            }
        }
    }
    out.leftover = buf;
    out
}

/// Checks `frame`, at `depth` arrays deep, against the limits; returns its array elements,
/// summed over every array in it.
fn check_limits(frame: &Frame, limits: &Limits, depth: usize) -> usize {
    match frame {
        Frame::Simple(line) | Frame::Error(line) => {
            assert!(line.len() <= limits.max_line_len);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
            0
        }
        Frame::Bulk(bytes) => {
            assert!(bytes.len() <= limits.max_bulk_len);
            0
        }
        Frame::Integer(_) | Frame::NullBulk | Frame::NullArray => 0,
        Frame::Array(items) | Frame::Push(items) => {
            assert!(depth < limits.max_depth.min(MAX_DEPTH), "too deep");
            assert!(items.len() <= limits.max_array_len);
            let total = items.len()
                + items
                    .iter()
                    .map(|item| check_limits(item, limits, depth + 1))
                    .sum::<usize>();
            assert!(total <= limits.max_elements, "too many elements");
            total
        }
    }
}

/// `PubSub::parse` agrees with the frame it reads.
fn check_pubsub(frame: &Frame) {
    let Some(pubsub) = PubSub::parse(frame) else {
        return;
    };
    let (Frame::Array(items) | Frame::Push(items)) = frame else {
        panic!("pub/sub from a frame that is no array: {frame:?}");
    };
    let bytes = |i: usize| items.get(i).and_then(Frame::as_bytes);
    match pubsub {
        PubSub::Message { channel, payload } | PubSub::SMessage { channel, payload } => {
            assert_eq!(items.len(), 3);
            assert_eq!((Some(channel), Some(payload)), (bytes(1), bytes(2)));
        }
        PubSub::PMessage {
            pattern,
            channel,
            payload,
        } => {
            assert_eq!(items.len(), 4);
            assert_eq!(
                (Some(pattern), Some(channel), Some(payload)),
                (bytes(1), bytes(2), bytes(3))
            );
        }
        PubSub::Subscription { channel, count, .. } => {
            assert_eq!(items.len(), 3);
            assert_eq!(channel, bytes(1));
            assert_eq!(items[2], Frame::Integer(count));
        }
        PubSub::Pong(payload) => {
            assert_eq!(items.len(), 2);
            assert_eq!(Some(payload), bytes(1));
        }
    }
}
