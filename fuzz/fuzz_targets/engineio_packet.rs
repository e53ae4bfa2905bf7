//! Engine.IO packets and polling payloads: decoding arbitrary bytes never panics, every decoded
//! payload survives `encode_payload` -> `decode_payload` unchanged, the packet limit is exact,
//! and a text packet decoded with `Packet::decode_text` is reproduced by `encode_ws`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::protocol::engineio::packet::{
    DecodeError, Message, Packet, SEPARATOR, decode_payload, encode_payload,
};

/// Generous enough that the limit only bites on bodies of many tiny records.
const MAX_PACKETS: usize = 64;

fuzz_target!(|data: &[u8]| {
    check_payload(data);
    if let Ok(text) = std::str::from_utf8(data) {
        check_text_packet(text);
    }
});

fn check_payload(data: &[u8]) {
    let Ok(packets) = decode_payload(data, MAX_PACKETS) else {
        return;
    };
    assert!(
        !packets.is_empty(),
        "a decoded payload has at least one packet"
    );
    assert!(packets.len() <= MAX_PACKETS);

    // Round trip: encoding and decoding again gives the same packets.
    let mut encoded = Vec::new();
    encode_payload(&packets, &mut encoded);
    let again = decode_payload(&encoded, packets.len());
    assert_eq!(again.as_ref(), Ok(&packets), "payload round trip");
    // Encoding is canonical: a second round gives the same bytes.
    let mut encoded_again = Vec::new();
    encode_payload(&packets, &mut encoded_again);
    assert_eq!(encoded, encoded_again);

    // The limit is exact: one packet fewer allowed is refused.
    assert_eq!(
        decode_payload(data, packets.len() - 1),
        Err(DecodeError::TooManyPackets),
        "a limit one below the packet count must refuse the payload"
    );

    // One record that is not binary decodes exactly as `decode_text` does.
    if !data.contains(&SEPARATOR) && data.first() != Some(&b'b') {
        let text = std::str::from_utf8(data).expect("decode_payload accepted it, so UTF-8");
        assert_eq!(Packet::decode_text(text).map(|p| vec![p]), Ok(packets));
    }
}

fn check_text_packet(text: &str) {
    // The by-value decoder the driver uses agrees with the borrowing one.
    assert_eq!(
        Packet::decode_text_owned(text.to_owned()),
        Packet::decode_text(text)
    );
    let packet = match Packet::decode_text(text) {
        Ok(packet) => packet,
        Err(DecodeError::Empty) => {
            assert!(text.is_empty());
            return;
        }
        Err(DecodeError::UnknownType(byte)) => {
            assert_eq!(text.as_bytes().first(), Some(&byte));
            assert!(!(b'0'..=b'6').contains(&byte));
            return;
        }
        Err(other) => panic!("decode_text on a str returned {other:?}"),
    };
    assert!(!packet.is_binary(), "a text frame never decodes to binary");
    assert_eq!(Some(&(packet.packet_type() as u8)), text.as_bytes().first());

    let mut out = Vec::new();
    packet.encode_ws(&mut out);
    match &packet {
        // Packets that carry data reproduce the input exactly.
        Packet::Open(_) | Packet::Ping(_) | Packet::Pong(_) | Packet::Message(Message::Text(_)) => {
            assert_eq!(out, text.as_bytes(), "encode_ws(decode_text(x)) == x");
        }
        // Packets without data drop anything after the type digit.
        Packet::Close | Packet::Upgrade | Packet::Noop | Packet::Message(Message::Binary(_)) => {
            assert_eq!(out, &text.as_bytes()[..1]);
        }
    }
    let reencoded = std::str::from_utf8(&out).expect("text form is UTF-8");
    assert_eq!(Packet::decode_text(reencoded), Ok(packet));
}
