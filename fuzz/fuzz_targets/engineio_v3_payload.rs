//! Engine.IO protocol 3 polling payloads: decoding arbitrary bytes (text and binary framing,
//! and WebSocket binary frames) never panics, every decoded payload survives an encode and a
//! decode unchanged in both framings, and the packet limit is exact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::engineio::packet::{DecodeError, Packet};
use sioloop::protocol::engineio::payload_v3::{
    decode_binary_payload, decode_text_payload, decode_ws_binary, encode_binary_payload,
    encode_text_payload, encode_ws_binary, utf16_len,
};

const MAX_PACKETS: usize = 64;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode_text_payload(data, MAX_PACKETS) {
        check(&packets);
        assert_eq!(
            decode_text_payload(data, packets.len() - 1),
            Err(DecodeError::TooManyPackets)
        );
    }
    if let Ok(packets) = decode_binary_payload(data, MAX_PACKETS) {
        check(&packets);
        assert_eq!(
            decode_binary_payload(data, packets.len() - 1),
            Err(DecodeError::TooManyPackets)
        );
    }
    if let Ok(packet) = decode_ws_binary(data) {
        let Packet::Message(sioloop::protocol::engineio::Message::Binary(bytes)) = &packet else {
            panic!("a binary frame decodes to a binary message");
        };
        let mut out = Vec::new();
        encode_ws_binary(bytes, &mut out);
        assert_eq!(out, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(utf16_len(text), text.encode_utf16().count());
    }
});

fn check(packets: &[Packet]) {
    assert!(!packets.is_empty() && packets.len() <= MAX_PACKETS);
    let mut text = Vec::new();
    encode_text_payload(packets, &mut text);
    assert_eq!(decode_text_payload(&text, packets.len()).as_deref(), Ok(packets));
    let mut binary = Vec::new();
    encode_binary_payload(packets, &mut binary);
    assert_eq!(decode_binary_payload(&binary, packets.len()).as_deref(), Ok(packets));
    // Encoding is canonical.
    let mut again = Vec::new();
    encode_text_payload(&decode_text_payload(&text, MAX_PACKETS).unwrap(), &mut again);
    assert_eq!(text, again);
}
