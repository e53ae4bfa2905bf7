//! WebSocket client frames: `FrameReader` never panics, and feeding a byte stream in arbitrary
//! chunks (appending each to a buffer and draining what `read` consumes, as the server does)
//! gives exactly the events, first error and leftover bytes of feeding it all at once. An
//! event always consumes bytes, so the server's read loop cannot spin.
#![no_main]

#[path = "common/split.rs"]
mod split;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sioloop::protocol::ws::{FrameReader, WsError, WsEvent};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// `max_mode % 4` picks the message limit: `max_value` bytes, `max_value % 256` bytes,
    /// 1 MiB, or `usize::MAX` ("unlimited").
    max_mode: u8,
    max_value: u16,
    /// Chunk sizes; whatever is left after them arrives as one last chunk.
    chunks: Vec<u8>,
    /// The bytes from the client.
    stream: &'a [u8],
}

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    events: Vec<WsEvent>,
    error: Option<WsError>,
    leftover: Vec<u8>,
}

fuzz_target!(|input: Input<'_>| {
    let max = match input.max_mode % 4 {
        0 => usize::from(input.max_value),
        1 => usize::from(input.max_value % 256),
        2 => 1 << 20,
        _ => usize::MAX,
    };

    let whole = feed(max, [input.stream]);

    let pieces = split::split_at_sizes(input.stream, &input.chunks);
    let chunked = feed(max, pieces);

    assert_eq!(
        chunked, whole,
        "chunked feeding differs from feeding at once"
    );
});

/// Feeds `pieces` to a fresh reader the way the server does, until the first error.
fn feed<'a>(max: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut reader = FrameReader::new(max);
    let mut out = Outcome::default();
    let mut buf = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match reader.read(&buf) {
                Ok((0, None)) => break,
                Ok((consumed, event)) => {
                    assert!(consumed > 0, "an event must consume bytes");
                    assert!(consumed <= buf.len(), "consumed more than the buffer");
                    buf.drain(..consumed);
                    out.events.extend(event);
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
