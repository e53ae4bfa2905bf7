//! The binary packet `Assembler` under arbitrary sequences of Engine.IO messages. The input
//! is records separated by `\x1e` (as in a polling payload): a record starting with `b` is a
//! binary message (the bytes after the `b`), any other record is a text message (lossy
//! UTF-8). Checked against a model of the assembler:
//! - text while a packet waits is `UnexpectedText`, binary while none waits is
//!   `UnexpectedBinary`, and either leaves the assembler empty; otherwise text decodes exactly
//!   as `Packet::decode` does;
//! - `is_waiting()` matches the model after every push;
//! - a packet completes only with exactly `attachments` buffers, the ones pushed, in order;
//! - for a completed packet, `Payload::to_value` never panics (and succeeds for binary
//!   packets), agrees with `Payload::deserialize::<Value>`, leaves no placeholder behind, and
//!   `to_json_with_attachments` of the value is `serde_json`'s text; the packet encoded and
//!   pushed again with its attachments into a fresh assembler completes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sioloop::protocol::socketio::{
    Assembler, Complete, DecodeError, Limits, Packet, to_json_with_attachments,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut assembler = Assembler::new(limits);
    // The model: the attachments a waiting packet still expects, and those pushed so far.
    let mut waiting: Option<(usize, Vec<Vec<u8>>)> = None;

    for record in data.split(|&b| b == 0x1e) {
        match record.split_first() {
            Some((b'b', bytes)) => {
                let result = assembler.push_binary(bytes.to_vec());
                match waiting.take() {
                    None => assert_eq!(result, Err(DecodeError::UnexpectedBinary)),
                    Some((expected, mut pushed)) => {
                        pushed.push(bytes.to_vec());
                        match result {
                            Ok(Some(done)) => {
                                assert_eq!(pushed.len(), expected);
                                assert_eq!(done.packet.attachments, expected);
                                assert_eq!(done.attachments, pushed);
                                check_complete(done, &limits);
                            }
                            Ok(None) => {
                                assert!(pushed.len() < expected);
                                waiting = Some((expected, pushed));
                            }
                            Err(e) => panic!("push_binary while waiting: {e}"),
                        }
                    }
                }
            }
            _ => {
                let text = String::from_utf8_lossy(record);
                let result = assembler.push_text(&text);
                if waiting.take().is_some() {
                    assert_eq!(result, Err(DecodeError::UnexpectedText));
                } else {
                    match Packet::decode(&text, &limits) {
                        Err(e) => assert_eq!(result, Err(e)),
                        Ok(packet) if packet.kind.is_binary() => {
                            assert_eq!(result, Ok(None));
                            waiting = Some((packet.attachments, Vec::new()));
                        }
                        Ok(packet) => {
                            let done = result.expect("decoded").expect("complete");
                            assert_eq!(done.packet, packet);
                            assert!(done.attachments.is_empty());
                            check_complete(done, &limits);
                        }
                    }
                }
            }
        }
        assert_eq!(assembler.is_waiting(), waiting.is_some());
    }
});

fn check_complete(done: Complete, limits: &Limits) {
    // The same packet again, through its canonical text, into a fresh assembler.
    let mut fresh = Assembler::new(*limits);
    let mut again = fresh.push_text(&done.packet.to_text());
    for attachment in &done.attachments {
        assert_eq!(again, Ok(None));
        again = fresh.push_binary(attachment.clone());
    }
    assert_eq!(again, Ok(Some(done.clone())));

    let binary = done.packet.kind.is_binary();
    let (_, payload) = done.into_parts();
    let Some(payload) = payload else {
        return;
    };
    let value = payload.to_value();
    if binary {
        assert!(value.is_ok(), "binary packets read as a Value");
    }
    let typed: Result<Value, _> = payload.deserialize();
    assert_eq!(value.as_ref().ok(), typed.as_ref().ok());
    let Ok(value) = value else {
        return;
    };
    if binary {
        assert!(!has_placeholder(&value), "placeholders are replaced");
    }
    let (json, attachments) = to_json_with_attachments(&value).expect("a Value serializes");
    assert!(attachments.is_empty());
    assert_eq!(json, value.to_string());
}

fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_placeholder),
        Value::Object(map) => {
            map.get("_placeholder") == Some(&Value::Bool(true)) || map.values().any(has_placeholder)
        }
        _ => false,
    }
}
