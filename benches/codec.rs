//! Codec micro-benchmark: the per-message work of each protocol layer, without sockets.
//!
//! ```text
//! cargo bench --bench codec
//! ```
//!
//! Each case runs for about 0.2 s after a warm-up, five times; the median time per operation
//! is printed. Single-threaded and allocation-honest (what a real message costs, including
//! the `String`s the parsers return), so the numbers add up to the server's per-message CPU
//! floor. Run on a quiet core (`taskset -c 1 cargo bench --bench codec`) for stable numbers.

use sioloop::engine::SharedMessages;
use sioloop::protocol::engineio::packet::{Message, Packet as EioPacket, decode_payload};
use sioloop::protocol::socketio::{Assembler, Limits, Packet};
use sioloop::protocol::ws::{self, FrameKind, FrameReader, WsEvent};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A typical small event from a client: an echo with an ack id and 32 characters of data.
const EVENT: &str = r#"21["echo","abcdefghijklmnopqrstuvwxyz012345"]"#;

/// Times `f` (which performs `ops_per_call` operations) and returns the median ns per op.
fn measure(ops_per_call: u64, mut f: impl FnMut()) -> f64 {
    let warm_until = Instant::now() + Duration::from_millis(50);
    while Instant::now() < warm_until {
        f();
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..16 {
                f();
            }
            calls += 16;
        }
        samples.push(start.elapsed().as_nanos() as f64 / (calls * ops_per_call) as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[2]
}

/// A client text frame (clients must mask).
fn masked_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut payload = text.as_bytes().to_vec();
    ws::apply_mask(&mut payload, mask);
    let mut out = vec![0x81];
    assert!(payload.len() < 126, "small frames only");
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend_from_slice(&payload);
    out
}

fn main() {
    let limits = Limits::default();
    let mut rows: Vec<(&str, f64)> = Vec::new();

    // Inbound, layer by layer, for one small event.
    let eio_text = format!("4{EVENT}");
    let frame = masked_text_frame(&eio_text);
    let frames: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 1000)
        .collect();
    rows.push((
        "ws: read one masked 50-byte text frame",
        measure(1000, || {
            let mut reader = FrameReader::new(1_000_000);
            let mut at = 0;
            while at < frames.len() {
                match reader.read(&frames[at..]) {
                    Ok((n, event)) => {
                        at += n;
                        black_box(event);
                    }
                    Err(_) => unreachable!("valid frames"),
                }
            }
        }),
    ));
    rows.push((
        "engine.io: decode a text packet",
        measure(1, || {
            black_box(EioPacket::decode_text(black_box(&eio_text)).ok());
        }),
    ));
    rows.push((
        "socket.io: decode an event with ack id",
        measure(1, || {
            black_box(Packet::decode(black_box(EVENT), &limits).ok());
        }),
    ));
    rows.push((
        "inbound total: frame -> engine.io -> socket.io",
        measure(1, || {
            let mut reader = FrameReader::new(1_000_000);
            if let Ok((_, Some(WsEvent::Text(text)))) = reader.read(black_box(&frame))
                && let Ok(EioPacket::Message(Message::Text(sio))) = EioPacket::decode_text(&text)
            {
                black_box(Packet::decode(&sio, &limits).ok());
            }
        }),
    ));

    // Outbound.
    let data = serde_json::value::RawValue::from_string(
        r#"["abcdefghijklmnopqrstuvwxyz012345"]"#.to_owned(),
    )
    .expect("valid JSON");
    rows.push((
        "socket.io: encode an ack packet",
        measure(1, || {
            let packet = Packet::ack("/", 1, data.clone(), 0);
            let mut out = String::new();
            packet.encode(&mut out);
            black_box(out);
        }),
    ));
    let bc_text = r#"2["bc",[123456,1732350000000000]]"#;
    rows.push((
        "broadcast: encode + frame once (SharedMessages)",
        measure(1, || {
            let mut shared = SharedMessages::new(vec![Message::Text(bc_text.to_owned())]);
            black_box(shared.ws_frame_bytes());
        }),
    ));
    rows.push((
        "broadcast: frame a copy per recipient (old path)",
        measure(1, || {
            let message = EioPacket::Message(Message::Text(bc_text.to_owned()));
            let mut payload = Vec::new();
            message.encode_ws(&mut payload);
            let mut out = Vec::new();
            ws::write_frame(&mut out, FrameKind::Text, &payload);
            black_box(out);
        }),
    ));

    // Polling and binary.
    let body: Vec<u8> = std::iter::repeat_n(eio_text.as_bytes(), 10)
        .collect::<Vec<_>>()
        .join(&b'\x1e');
    rows.push((
        "polling: decode a 10-packet payload (per packet)",
        measure(10, || {
            black_box(decode_payload(black_box(&body), 100).ok());
        }),
    ));
    let attachment = vec![0xabu8; 64 * 1024];
    let header = r#"51-["upload",{"_placeholder":true,"num":0}]"#;
    rows.push((
        "binary: assemble an event with a 64 KiB attachment",
        measure(1, || {
            let mut assembler = Assembler::new(limits);
            let _ = assembler.push_text(header);
            black_box(assembler.push_binary(attachment.clone()).ok());
        }),
    ));

    println!("| case | ns/op (median of 5) |");
    println!("|---|---:|");
    for (name, ns) in rows {
        println!("| {name} | {ns:.0} |");
    }
}
