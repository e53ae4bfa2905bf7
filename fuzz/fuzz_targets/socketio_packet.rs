//! Socket.IO packets: `Packet::decode` never panics on any text; a decoded packet has a
//! namespace that starts with `/` and has no `,`, an attachment count that is non-zero
//! exactly for `BINARY_*` types and within the limit (exactly: one below refuses it), and data
//! that is the input's own text; `encode` then `decode` gives the same packet, and encoding is
//! canonical. Errors are consistent with the input (`Empty`, `UnknownType`), and the
//! assembler-only errors never come out of `decode`. The data of a binary packet always reads
//! as a `Value` with its attachments (placeholders were checked by `decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::socketio::{DecodeError, Limits, Packet, PacketType, Payload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    match Packet::decode(text, &limits) {
        Ok(packet) => check_packet(text, packet, &limits),
        Err(DecodeError::Empty) => assert!(text.is_empty()),
        Err(DecodeError::UnknownType(byte)) => {
            assert_eq!(text.as_bytes().first(), Some(&byte));
            assert!(PacketType::from_digit(byte).is_none());
        }
        Err(DecodeError::UnexpectedText | DecodeError::UnexpectedBinary) => {
            panic!("decode returned an assembler error")
        }
        Err(_) => {
            let digit = text.as_bytes().first().copied().unwrap_or_default();
            assert!(PacketType::from_digit(digit).is_some());
        }
    }
});

fn check_packet(text: &str, packet: Packet, limits: &Limits) {
    assert_eq!(Some(&packet.kind.to_digit()), text.as_bytes().first());
    assert!(packet.nsp.starts_with('/'), "{:?}", packet.nsp);
    assert!(!packet.nsp.contains(','), "{:?}", packet.nsp);
    assert_eq!(packet.kind.is_binary(), packet.attachments > 0);
    assert!(packet.attachments <= limits.max_attachments);
    assert_eq!(
        packet.is_valid_from_client(),
        packet.kind != PacketType::ConnectError
    );
    if let Some(data) = &packet.data {
        assert!(text.contains(data.get()), "data is the text received");
    }

    // Round trip, and the canonical form is a fixed point.
    let encoded = packet.to_text();
    let again = Packet::decode(&encoded, limits);
    assert_eq!(
        again.as_ref(),
        Ok(&packet),
        "decode(encode(p)) == p for {encoded:?}"
    );
    assert_eq!(again.map(|p| p.to_text()).as_deref(), Ok(encoded.as_str()));

    // The attachment limit is exact.
    if packet.attachments > 0 {
        let tighter = Limits {
            max_attachments: packet.attachments - 1,
        };
        assert_eq!(
            Packet::decode(text, &tighter),
            Err(DecodeError::TooManyAttachments)
        );
        let data = packet.data.clone().expect("binary packets have data");
        let payload = Payload::from_raw(data, vec![vec![0xab]; packet.attachments]);
        let value = payload
            .to_value()
            .expect("placeholders were checked by decode");
        let typed: Result<serde_json::Value, _> = payload.deserialize();
        assert_eq!(typed.ok().as_ref(), Some(&value));
    } else if let Some(data) = packet.data {
        // Plain data may be too deep for a Value; it must not panic either way.
        let payload = Payload::from_raw(data, Vec::new());
        let value = payload.to_value().ok();
        let typed: Option<serde_json::Value> = payload.deserialize().ok();
        assert_eq!(value, typed);
    }
}
