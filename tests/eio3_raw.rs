//! Engine.IO 3 on the wire, with a raw HTTP client against `examples/sio_testbed` started with
//! `--allow-eio3`: the open packet, the implicit `/` connect, client pings answered, binary
//! polling payloads (`application/octet-stream`) both ways, which `socket.io-client@2` under
//! node never sends (it has no XHR2 there, so it asks for `b64=1`), and a protocol 4 request
//! on a protocol 3 session refused. That EIO=3 is refused without the option is checked in
//! `tests/engineio_http.rs`.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::{Conn, request};
use sioloop::protocol::engineio::packet::{Message, Packet};
use sioloop::protocol::engineio::payload_v3::{
    decode_binary_payload, decode_text_payload, encode_binary_payload,
};
use std::time::{Duration, Instant};

const QUERY: &str = "EIO=3&transport=polling&token=secret&user=raw";

fn text(s: &str) -> Packet {
    Packet::Message(Message::Text(s.into()))
}

/// Polls until `want` packets have come (or 5 s pass), returning them all.
fn poll_until(conn: &mut Conn, sid: &str, want: impl Fn(&[Packet]) -> bool) -> Vec<Packet> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut all = Vec::new();
    while !want(&all) {
        assert!(Instant::now() < deadline, "timed out; got {all:?}");
        let res = conn.request("GET", &format!("/socket.io/?{QUERY}&sid={sid}"), &[], b"");
        assert_eq!(res.status, 200, "{res:?}");
        let packets = if res.header("content-type") == Some("application/octet-stream") {
            decode_binary_payload(&res.body, 1000)
        } else {
            decode_text_payload(&res.body, 1000)
        };
        all.extend(packets.unwrap_or_else(|e| panic!("bad payload {e}: {res:?}")));
    }
    all
}

#[test]
fn eio3_polling_on_the_wire() {
    let server = ExampleServer::start(
        "sio_testbed",
        &[
            "--allow-eio3",
            "--ping-interval",
            "300",
            "--ping-timeout",
            "200",
        ],
    );
    let addr = server.addr;
    let mut conn = Conn::open(addr);

    // The handshake: protocol 3's open packet has no maxPayload.
    let res = conn.request("GET", &format!("/socket.io/?{QUERY}"), &[], b"");
    assert_eq!(res.status, 200, "{res:?}");
    let packets = decode_text_payload(&res.body, 100).expect("a v3 text payload");
    let Some(Packet::Open(json)) = packets.first() else {
        panic!("no open packet: {packets:?}");
    };
    let open: serde_json::Value = serde_json::from_str(json).expect("open JSON");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert!(open.get("maxPayload").is_none(), "{open}");

    // `/` is joined without a CONNECT: `40`, then the testbed's welcome.
    let all = poll_until(&mut conn, &sid, |p| {
        p.iter().any(
            |p| matches!(p, Packet::Message(Message::Text(t)) if t.starts_with("2[\"welcome\"")),
        )
    });
    assert!(all.contains(&text("0")), "{all:?}");

    // A ping is answered with a pong carrying its data.
    let res = conn.request(
        "POST",
        &format!("/socket.io/?{QUERY}&sid={sid}"),
        &[("Content-Type", "text/plain;charset=UTF-8")],
        b"5:2ping",
    );
    assert_eq!(res.status, 200, "{res:?}");
    let all = poll_until(&mut conn, &sid, |p| !p.is_empty());
    assert_eq!(all, vec![Packet::Pong("ping".into())]);

    // A binary event in a binary payload comes back as one.
    let mut body = Vec::new();
    let event = r#"451-["echo",{"_placeholder":true,"num":0},"é"]"#;
    encode_binary_payload(
        &[
            text(&event[1..]),
            Packet::Message(Message::Binary(vec![1, 2, 3, 0xff])),
        ],
        &mut body,
    );
    let res = conn.request(
        "POST",
        &format!("/socket.io/?{QUERY}&sid={sid}"),
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(res.status, 200, "{res:?}");
    let res = conn.request("GET", &format!("/socket.io/?{QUERY}&sid={sid}"), &[], b"");
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    let echoed = decode_binary_payload(&res.body, 100).expect("a binary payload");
    assert_eq!(
        echoed,
        vec![
            text(&event[1..]),
            Packet::Message(Message::Binary(vec![1, 2, 3, 0xff]))
        ]
    );

    // A protocol 4 request on this session is refused; the session goes on.
    let res = request(
        addr,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        &[],
        b"",
    );
    assert_eq!(res.status, 400, "{res:?}");

    // No ping within pingInterval + pingTimeout: the session is gone.
    std::thread::sleep(Duration::from_millis(700));
    let res = conn.request("GET", &format!("/socket.io/?{QUERY}&sid={sid}"), &[], b"");
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(res.json()["code"], 1, "{res:?}");
}
