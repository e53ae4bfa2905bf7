//! Event arguments as a client sends them and handlers take them, on the in-memory server:
//! the handler's type says how the arguments are taken (one list argument and several
//! arguments never look the same), arguments that do not fit are answered (an error to the
//! client's ack by default, or the namespace's `on_invalid` hook), counted and logged at
//! `warn` a few times per socket, and a received event is relayed under another name with
//! its binary attachments. (Its own test binary: one test installs the process's logger.)

#[path = "common/log_capture.rs"]
mod log_capture;
#[path = "common/memory.rs"]
mod memory;
#[path = "common/raw.rs"]
mod raw;

use memory::{Frame, texts};
use raw::{masked_frame, masked_text};
use serde_bytes::ByteBuf;
use serde_json::{Value, json};
use sioloop::Args;
use sioloop::engine::Config;
use sioloop::protocol::socketio::Payload;
use std::time::Duration;

#[test]
fn the_handler_type_not_the_argument_count_says_what_a_handler_gets() {
    let mut h = memory::Harness::new(Config::default(), (), |server| {
        server
            .of("/")
            .on("first", |cx, items: Vec<u32>, ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &items);
                }
            })
            .on("all", |cx, Args(items): Args<Value>, ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &items);
                }
            })
            .on("pair", |cx, (n, s): (u32, String), ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &json!([n, s]));
                }
            })
            .on("nothing", |cx, (): (), ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, "ok");
                }
            });
    });
    let c = h.client();
    let answers = h.exchange(
        c,
        &[
            // One list argument, as a Vec: the list.
            r#"421["first",[1,2]]"#,
            // As Args: one argument, which is a list.
            r#"422["all",[1,2]]"#,
            // Two arguments as Args: both.
            r#"423["all",1,2]"#,
            r#"424["all"]"#,
            // By position; the extra argument is ignored, as in JavaScript.
            r#"425["pair",1,"a",true]"#,
            r#"426["nothing",1,[2]]"#,
        ],
    );
    assert_eq!(
        texts(&answers),
        [
            "431[[1,2]]",
            "432[[[1,2]]]",
            "433[[1,2]]",
            "434[[]]",
            r#"435[[1,"a"]]"#,
            r#"436["ok"]"#,
        ]
    );
    // Two arguments are not one list: a Vec handler gets the first, `1`, which does not
    // fit; a list is not two arguments for a pair.
    let answers = h.exchange(c, &[r#"427["first",1,2]"#, r#"428["pair",[1,"a"]]"#]);
    let answers = texts(&answers);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers[0].starts_with(
            r#"437[{"error":"invalid arguments: invalid type: integer `1`, expected a sequence"#
        ),
        "{answers:?}"
    );
    assert!(
        answers[1].starts_with(r#"438[{"error":"invalid arguments: "#),
        "{answers:?}"
    );
}

#[test]
fn invalid_arguments_answer_the_ack_or_nothing_and_are_counted() {
    let mut h = memory::Harness::new(Config::default(), (), |server| {
        server
            .of("/")
            .on("count", |_cx, _n: u32, _ack| {
                panic!("not a number: never called")
            })
            .on("refused", |cx, (): (), ack| {
                let refused = cx.stats().events_refused;
                if let Some(ack) = ack {
                    cx.ack(ack, &refused);
                }
            });
    });
    let c = h.client();
    // Without an ack there is nobody to answer: nothing is sent.
    assert_eq!(h.exchange(c, &[r#"42["count","x"]"#]), []);
    // With one, the client hears at once instead of waiting for its timeout; serde's
    // message quotes the client's own data, clipped.
    let long = "y".repeat(5000);
    let answers = h.exchange(c, &[&format!(r#"427["count","{long}"]"#)]);
    let [Frame::Text(answer)] = &answers[..] else {
        panic!("one answer: {answers:?}");
    };
    let value: Value = serde_json::from_str(&answer["437".len()..]).expect("ack JSON");
    let message = value[0]["error"].as_str().expect("an error message");
    assert!(
        message.starts_with("invalid arguments: invalid type: string \"yyy"),
        "{message}"
    );
    assert!(message.len() < 300, "clipped: {} bytes", message.len());
    assert_eq!(value.as_array().map(Vec::len), Some(1), "one argument");
    // Both counted.
    assert_eq!(texts(&h.exchange(c, &[r#"428["refused"]"#])), ["438[2]"]);
}

#[test]
fn the_on_invalid_hook_answers_in_place_of_the_default() {
    let mut h = memory::Harness::new(Config::default(), (), |server| {
        server
            .of("/")
            .on("move", |_cx, _xy: (i32, i32), _ack| panic!("never called"))
            .on_invalid(|cx, event, error, ack| {
                let message = error.to_string();
                cx.emit_args("invalid", &(event.name(), event.args_json()));
                if let Some(ack) = ack {
                    cx.ack(ack, &json!({"code": "E_ARGS", "message": message}));
                }
            });
    });
    let c = h.client();
    let answers = h.exchange(c, &[r#"423["move",1]"#, r#"42["move","a","b"]"#]);
    let answers = texts(&answers);
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0], r#"42["invalid","move","1"]"#);
    assert!(
        answers[1]
            .starts_with(r#"433[{"code":"E_ARGS","message":"invalid arguments: invalid length 1"#),
        "{answers:?}"
    );
    assert_eq!(answers[2], r#"42["invalid","move","\"a\",\"b\""]"#);
}

#[test]
fn a_received_event_is_relayed_under_another_name_with_its_attachments() {
    let mut h = memory::Harness::new(Config::default(), (), |server| {
        server
            .of("/")
            .on_connect(|cx| cx.join("canvas"))
            .on_raw("draw", |cx, event, _ack| {
                cx.to("canvas").except_self().emit_event_as("drawn", &event);
                cx.emit_event_as("echoed", &event);
            })
            .on("payload", |cx, (): (), _ack| {
                let Ok(payload) = Payload::from_serialize(&(1, ByteBuf::from(vec![7u8, 8]))) else {
                    return;
                };
                cx.emit_payload("kept", &payload);
            });
    });
    let (a, b) = (h.client(), h.client());
    // `socket.emit("draw", bytes0, "x", {pen: bytes1})`: a binary event in three frames.
    h.net.send(
        a,
        &masked_text(
            r#"452-["draw",{"_placeholder":true,"num":0},"x",{"pen":{"_placeholder":true,"num":1}}]"#,
        ),
    );
    h.net.send(a, &masked_frame(0x2, true, &[1, 2, 3]));
    h.net.send(a, &masked_frame(0x2, true, &[0, 255]));
    h.turns(3);
    let relayed = |name: &str| {
        vec![
            Frame::Text(format!(
                r#"452-["{name}",{{"_placeholder":true,"num":0}},"x",{{"pen":{{"_placeholder":true,"num":1}}}}]"#
            )),
            Frame::Binary(vec![1, 2, 3]),
            Frame::Binary(vec![0, 255]),
        ]
    };
    assert_eq!(
        h.output(b),
        relayed("drawn"),
        "the room, under the new name"
    );
    assert_eq!(h.output(a), relayed("echoed"), "the sender itself");
    // A payload's items become the arguments, binary kept.
    assert_eq!(
        h.exchange(a, &[r#"42["payload"]"#]),
        [
            Frame::Text(r#"451-["kept",1,{"_placeholder":true,"num":0}]"#.to_owned()),
            Frame::Binary(vec![7, 8]),
        ]
    );
}

#[test]
fn invalid_arguments_are_logged_at_warn_a_few_times_per_socket() {
    log_capture::install(log::LevelFilter::Warn);
    let mut h = memory::Harness::new(Config::default(), (), |server| {
        server.of("/").on("count", |_cx, _n: u32, _ack| {});
    });
    // An address of its own: the other tests of this binary log from 127.0.0.1.
    let c = h.client_from("10.9.8.7:5000".parse().expect("address"));
    for _ in 0..20 {
        h.exchange(c, &[r#"42["count","x"]"#]);
        // A new second each time: the per-address budget never runs out, so what is left
        // out is the socket's own limit.
        h.net.advance(Duration::from_millis(1100));
    }
    let lines = log_capture::lines(|l| l.contains("10.9.8.7"));
    // The 1st, 2nd, 4th, 8th and 16th of 20.
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for (line, nth) in lines.iter().zip([1, 2, 4, 8, 16]) {
        assert!(line.starts_with("WARN "), "{line}");
        assert!(line.contains(r#"event "count""#), "{line}");
        assert!(line.contains(&format!("{nth} so far")), "{line}");
        assert!(line.contains("invalid type: string \\\"x\\\""), "{line}");
    }
}
