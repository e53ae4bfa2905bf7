//! The Engine.IO request query: `EngineQuery::parse`, `validate` and `percent_decode` never
//! panic on any query string; `validate` only accepts `EIO=4` with an allowed transport; and
//! `percent_decode` inverts percent-encoding and leaves plain text untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::engineio::handshake::{
    EngineQuery, PROTOCOL, RequestError, TransportKind, percent_decode, query_pairs,
};
use std::borrow::Cow;
use std::fmt::Write as _;

const ALLOWED: [&[TransportKind]; 4] = [
    &[],
    &[TransportKind::Polling],
    &[TransportKind::WebSocket],
    &[TransportKind::Polling, TransportKind::WebSocket],
];

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let query = query.as_ref();

    let parsed = EngineQuery::parse(query);
    for value in [parsed.eio, parsed.transport, parsed.sid]
        .into_iter()
        .flatten()
    {
        assert!(
            query.contains(value),
            "parsed values are slices of the query"
        );
    }
    for allowed in ALLOWED {
        match parsed.validate(allowed) {
            Ok(transport) => {
                assert!(allowed.contains(&transport));
                assert_eq!(parsed.transport, Some(transport.as_str()));
                assert_eq!(parsed.eio, Some(PROTOCOL));
            }
            Err(RequestError::UnknownTransport) => {
                let known = parsed.transport.and_then(TransportKind::from_name);
                assert!(known.is_none_or(|t| !allowed.contains(&t)));
            }
            Err(RequestError::UnsupportedProtocolVersion) => {
                assert_ne!(parsed.eio, Some(PROTOCOL));
            }
            Err(other) => panic!("validate returned {other:?}"),
        }
    }

    check_percent_decode(query);
    for (key, value) in query_pairs(query) {
        check_percent_decode(key);
        check_percent_decode(value);
    }

    // Percent-encoding every byte of a string and decoding it gives the string back.
    let mut encoded = String::with_capacity(query.len() * 3);
    for (i, byte) in query.bytes().enumerate() {
        if i % 2 == 0 {
            let _ = write!(encoded, "%{byte:02X}");
        } else {
            let _ = write!(encoded, "%{byte:02x}");
        }
    }
    assert_eq!(
        percent_decode(&encoded),
        query,
        "percent-decoding inverts encoding"
    );
});

fn check_percent_decode(raw: &str) {
    let decoded = percent_decode(raw);
    if !raw.contains(['%', '+']) {
        assert!(matches!(decoded, Cow::Borrowed(d) if d == raw));
    }
}
