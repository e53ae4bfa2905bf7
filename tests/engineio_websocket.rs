//! Engine.IO over WebSocket against the `engineio_echo` example, with `tungstenite` as the
//! client: WebSocket-only sessions, the upgrade from polling, and frame-level errors.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::*;
use std::io::Write;
use std::time::{Duration, Instant};
use tungstenite::Message;

const WS_ONLY: &str = "EIO=4&transport=websocket";

#[test]
fn websocket_only_handshake_and_echo() {
    let server = ExampleServer::echo(&[]);
    let mut ws = ws_connect(server.addr, WS_ONLY);
    let open = ws_text(&mut ws, "first frame");
    assert_open_packet(&open, &[], Expected::DEFAULTS);

    ws_send_text(&mut ws, "4hello");
    assert_eq!(ws_text(&mut ws, "echo of 4hello"), "4hello");
    ws_send_text(&mut ws, "4héllo wörld");
    assert_eq!(ws_text(&mut ws, "echo of non-ASCII text"), "4héllo wörld");

    ws_send_binary(&mut ws, &[1, 2, 3]);
    match ws_next(&mut ws) {
        Ok(Message::Binary(b)) => assert_eq!(&b[..], &[1, 2, 3], "binary echo"),
        other => panic!("expected a binary frame [1, 2, 3], got {other:?}"),
    }
    // Order is kept across text and binary.
    ws_send_text(&mut ws, "4a");
    ws_send_binary(&mut ws, &[0, 255]);
    ws_send_text(&mut ws, "4b");
    assert_eq!(ws_text(&mut ws, "first of three"), "4a");
    match ws_next(&mut ws) {
        Ok(Message::Binary(b)) => assert_eq!(&b[..], &[0, 255], "second of three"),
        other => panic!("expected a binary frame [0, 255], got {other:?}"),
    }
    assert_eq!(ws_text(&mut ws, "third of three"), "4b");
}

/// A polling session with a GET held, then a WebSocket that probes it: `3probe` comes back
/// and the held GET is released with a noop. Returns the sid and the probed WebSocket.
fn probed_session(addr: std::net::SocketAddr) -> (String, Ws) {
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = Conn::open(addr);
    held.send("GET", &poll_url(&sid), &[], b"");
    held.assert_no_response_within(Duration::from_millis(250), "GET before the upgrade");

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"));
    ws_send_text(&mut ws, "2probe");
    assert_eq!(ws_text(&mut ws, "answer to 2probe"), "3probe");
    let res = held.read_response();
    assert_eq!(
        (res.status, res.text()),
        (200, "6".into()),
        "the held GET is released with a noop during the upgrade"
    );
    (sid, ws)
}

#[test]
fn upgrade_from_polling() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let (sid, mut ws) = probed_session(addr);
    // The upgrade packet and the first message in one TCP write, as engine.io-client does
    // when it flushes its buffer right after `5`.
    ws_send_texts_together(&mut ws, &["5", "4abc"]);
    assert_eq!(ws_text(&mut ws, "echo over the upgraded WebSocket"), "4abc");
    ws_send_binary(&mut ws, &[9, 8, 7]);
    match ws_next(&mut ws) {
        Ok(Message::Binary(b)) => assert_eq!(&b[..], &[9, 8, 7], "binary echo after upgrade"),
        other => panic!("expected a binary frame after the upgrade, got {other:?}"),
    }

    let res = get(addr, &poll_url(&sid));
    assert_error(&res, 3, "Bad request", "polling GET on an upgraded sid");
    let res = post(addr, &poll_url(&sid), b"4x");
    assert_error(&res, 3, "Bad request", "polling POST on an upgraded sid");

    // The session survives the refused polling requests.
    ws_send_text(&mut ws, "4still");
    assert_eq!(ws_text(&mut ws, "echo after refused polling"), "4still");
}

#[test]
fn a_get_sent_while_3probe_is_on_its_way_is_answered_at_once() {
    // The client's next GET can cross `3probe` on the wire: the noop that released its held
    // GET made it poll again before it learnt of the probe. It pauses polling (and sends
    // `5`) only when that GET returns, so a held GET stalls the upgrade, and every emit
    // behind it, until the next ping. Seen in the browser tests on a loaded machine.
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let (sid, mut ws) = probed_session(addr);

    let started = Instant::now();
    let res = get(addr, &poll_url(&sid));
    assert_eq!(
        (res.status, res.text()),
        (200, "6".into()),
        "the GET after the probe is answered with a noop, not held"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    ws_send_texts_together(&mut ws, &["5", "4abc"]);
    assert_eq!(ws_text(&mut ws, "echo over the upgraded WebSocket"), "4abc");
}

#[test]
fn second_websocket_on_upgraded_sid_is_closed() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let query = format!("EIO=4&transport=websocket&sid={sid}");
    let mut ws = ws_connect(addr, &query);
    ws_send_text(&mut ws, "2probe");
    assert_eq!(ws_text(&mut ws, "answer to 2probe"), "3probe");
    ws_send_text(&mut ws, "5");
    ws_send_text(&mut ws, "4first");
    assert_eq!(ws_text(&mut ws, "echo after upgrade"), "4first");

    // ws_connect asserts the 101.
    let mut second = ws_connect(addr, &query);
    let (seen, end) = ws_wait_end(&mut second, Instant::now() + Duration::from_secs(3));
    assert!(
        seen.is_empty(),
        "the second WebSocket should get no packets, got {seen:?}"
    );
    assert!(
        end.is_some(),
        "the server should close a second WebSocket on an upgraded sid"
    );

    // The first one is unaffected.
    ws_send_text(&mut ws, "4again");
    assert_eq!(
        ws_text(&mut ws, "first WebSocket after the second closed"),
        "4again"
    );
}

#[test]
fn oversized_websocket_message_is_closed_with_1009() {
    let server = ExampleServer::echo(&["--max-payload", "1000"]);
    let mut ws = ws_connect(server.addr, WS_ONLY);
    let open = ws_text(&mut ws, "first frame");
    assert_open_packet(
        &open,
        &[],
        Expected {
            max_payload: 1000,
            ..Expected::DEFAULTS
        },
    );
    let under = format!("4{}", "a".repeat(900));
    ws_send_text(&mut ws, &under);
    assert_eq!(ws_text(&mut ws, "echo of 901 bytes"), under);

    ws_send_text(&mut ws, &format!("4{}", "a".repeat(1499)));
    let (seen, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
    assert!(
        seen.is_empty(),
        "no echo of the oversized message, got {seen:?}"
    );
    match end {
        Some(WsEnd::CloseFrame(Some(1009))) => {}
        other => panic!("expected a close frame with code 1009, got {other:?}"),
    }
}

#[test]
fn unmasked_client_frame_is_closed_with_1002() {
    let server = ExampleServer::echo(&[]);
    let mut ws = ws_connect(server.addr, WS_ONLY);
    ws_text(&mut ws, "first frame");
    // FIN + text, no mask bit, 3 bytes: "4hi".
    ws.get_mut()
        .write_all(&[0x81, 0x03, b'4', b'h', b'i'])
        .expect("write an unmasked frame");
    let (seen, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
    assert!(
        seen.is_empty(),
        "no echo of an unmasked frame, got {seen:?}"
    );
    match end {
        Some(WsEnd::CloseFrame(Some(1002))) => {}
        other => panic!("expected a close frame with code 1002, got {other:?}"),
    }
}

#[test]
fn websocket_ping_gets_a_pong_and_client_close_is_answered() {
    let server = ExampleServer::echo(&[]);
    let mut ws = ws_connect(server.addr, WS_ONLY);
    let open = ws_text(&mut ws, "first frame");
    assert_open_packet(&open, &[], Expected::DEFAULTS);

    // RFC 6455 5.5.2: a Ping is answered with a Pong carrying the same data.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("send ping");
    // (`ws_next` skips pongs, so read the raw message here.)
    match ws.read() {
        Ok(Message::Pong(data)) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // The session still works after it.
    ws_send_text(&mut ws, "4still here");
    assert_eq!(ws_text(&mut ws, "echo after ping"), "4still here");

    // A client close is answered with a close frame.
    ws.close(None).expect("send close");
    let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(2));
    assert!(
        matches!(end, Some(WsEnd::CloseFrame(_)) | Some(WsEnd::Eof(_))),
        "the server should answer the close, got {end:?}"
    );
}
