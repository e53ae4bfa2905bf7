//! HTTP request heads: `parse_head` never panics, and it is consistent under streaming. A
//! complete head is `Partial` at every strict prefix and parses the same with more bytes
//! after it; a refused input is never `Complete` at a prefix and stays refused with more
//! bytes; an incomplete input is `Partial` at every prefix. The first input byte chooses the
//! default limits or small ones taken from the next two bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::http::{HeadLimits, Parsed, parse_head};
use sioloop::protocol::ws::accept_upgrade;

/// A whole request, appended to check that bytes after a head change nothing.
const NEXT_REQUEST: &[u8] = b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (limits, buf) = match (mode & 1, rest) {
        (1, [bytes, headers, buf @ ..]) => (
            HeadLimits {
                max_head_bytes: usize::from(*bytes) * 4,
                max_headers: usize::from(*headers % 16),
            },
            buf,
        ),
        _ => (HeadLimits::default(), rest),
    };

    let whole = parse_head(buf, &limits);
    let mut appended = buf.to_vec();
    appended.extend_from_slice(NEXT_REQUEST);

    match &whole {
        Ok(Parsed::Complete {
            request,
            head_len,
            body_len: _,
        }) => {
            let head_len = *head_len;
            assert!(head_len <= buf.len());
            assert!(head_len <= limits.max_head_bytes);
            assert!(request.headers().len() <= limits.max_headers);
            assert!(request.body.is_empty());
            assert!(!request.method.is_empty());
            for split in split_points(data, head_len) {
                assert_eq!(
                    parse_head(&buf[..split], &limits),
                    Ok(Parsed::Partial),
                    "a strict prefix ({split} of {head_len} bytes) of a complete head must be Partial"
                );
            }
            assert_eq!(parse_head(&buf[..head_len], &limits), whole, "head alone");
            assert_eq!(
                parse_head(&appended, &limits),
                whole,
                "head with bytes after"
            );

            // What the server does next with a head must not panic either.
            let _ = request.keep_alive();
            let _ = request.header("origin");
            for (name, _) in request.headers() {
                assert!(request.header(name).is_some(), "header {name:?} not found");
            }
            if request.is_websocket_upgrade() {
                let mut out = Vec::new();
                if accept_upgrade(request, &[], &mut out).is_ok() {
                    assert!(out.starts_with(b"HTTP/1.1 101 "));
                    assert!(out.ends_with(b"\r\n\r\n"));
                }
            }
        }
        Ok(Parsed::Partial) => {
            assert!(buf.len() <= limits.max_head_bytes);
            for split in split_points(data, buf.len()) {
                assert_eq!(
                    parse_head(&buf[..split], &limits),
                    Ok(Parsed::Partial),
                    "a prefix ({split} bytes) of a partial head must be Partial"
                );
            }
        }
        Err(error) => {
            for split in split_points(data, buf.len()) {
                let prefix = parse_head(&buf[..split], &limits);
                assert!(
                    !matches!(prefix, Ok(Parsed::Complete { .. })),
                    "a prefix ({split} bytes) of a refused head ({error:?}) parsed Complete: {prefix:?}"
                );
            }
            assert!(
                parse_head(&appended, &limits).is_err(),
                "a refused head ({error:?}) must stay refused when more bytes arrive"
            );
        }
    }
});

/// A few split points in `0..len`: both ends, the middle, and some chosen by the input.
fn split_points(data: &[u8], len: usize) -> impl Iterator<Item = usize> {
    let chosen = data
        .iter()
        .rev()
        .take(4)
        .enumerate()
        .map(move |(i, &b)| (usize::from(b) * 31 + i * 7919) % len.max(1));
    [0, 1, len / 2, len.saturating_sub(2), len.saturating_sub(1)]
        .into_iter()
        .chain(chosen)
        .filter(move |&split| split < len)
}
