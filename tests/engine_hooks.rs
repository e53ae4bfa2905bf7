//! The engine's hooks that Node's engine.io has as events, over raw HTTP against an
//! in-process Socket.IO server: `connection_error` sees every refused request with its
//! code and message; `initial_headers` and `headers` add to the handshake and to every
//! transport response.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use std::sync::{Arc, Mutex};

/// A request the server refuses: method, target, headers, body, and the code and message
/// it is refused with.
type RefusedCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    u8,
    &'a str,
);

/// What the `connection_error` hook saw: method, path, peer IP, code, message.
type Seen = Arc<Mutex<Vec<(String, String, String, u8, String)>>>;

#[test]
fn connection_error_sees_every_refused_request_with_its_code() {
    let seen: Seen = Arc::default();
    let recorder = Arc::clone(&seen);
    let (handle, addr, thread) = start_with(config().max_payload(100), move |server| {
        server.connection_error(move |request, peer, error| {
            recorder.lock().expect("the record").push((
                request.method.clone(),
                request.path.clone(),
                peer.ip().to_string(),
                error.code(),
                error.message().to_owned(),
            ));
        });
        server.allow_request(|request, _| request.header("x-refuse").is_none());
    });
    let unknown_sid = "/engine.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA";
    let cases: &[RefusedCase] = &[
        (
            "GET",
            "/engine.io/?EIO=4&transport=flash",
            &[],
            b"",
            0,
            "Transport unknown",
        ),
        ("GET", unknown_sid, &[], b"", 1, "Session ID unknown"),
        ("POST", unknown_sid, &[], b"4x", 1, "Session ID unknown"),
        ("POST", HANDSHAKE_URL, &[], b"", 2, "Bad handshake method"),
        (
            "GET",
            HANDSHAKE_URL,
            &[("X-Refuse", "1")],
            b"",
            4,
            "Forbidden",
        ),
        (
            "GET",
            "/engine.io/?EIO=3&transport=polling",
            &[],
            b"",
            5,
            "Unsupported protocol version",
        ),
    ];
    for &(method, target, headers, body, code, message) in cases {
        let res = request(addr, method, target, headers, body);
        assert_error(&res, code.into(), message, &format!("{method} {target}"));
    }
    // A malformed and an oversized POST on a live session: code 3 (the latter with 413).
    let sid = handshake(
        addr,
        Expected {
            max_payload: 100,
            ..Expected::DEFAULTS
        },
    );
    let res = post(addr, &poll_url(&sid), b"9abc");
    assert_error(&res, 3, "Bad request", "malformed POST");
    let sid = handshake(
        addr,
        Expected {
            max_payload: 100,
            ..Expected::DEFAULTS
        },
    );
    let res = post(addr, &poll_url(&sid), &[b'4'; 200]);
    assert_eq!(res.status, 413, "oversized POST");
    // A request that is not refused is not reported.
    handshake(
        addr,
        Expected {
            max_payload: 100,
            ..Expected::DEFAULTS
        },
    );
    handle.shutdown();
    thread.join().expect("the server thread");

    let seen = seen.lock().expect("the record");
    let got: Vec<(&str, u8, &str)> = seen
        .iter()
        .map(|(method, _, _, code, message)| (method.as_str(), *code, message.as_str()))
        .collect();
    let mut expected: Vec<(&str, u8, &str)> = cases
        .iter()
        .map(|&(method, _, _, _, code, message)| (method, code, message))
        .collect();
    expected.push(("POST", 3, "Bad request"));
    expected.push(("POST", 3, "Bad request"));
    assert_eq!(got, expected, "what the hook saw, in order");
    for (_, path, ip, _, _) in seen.iter() {
        assert_eq!(path, "/engine.io/", "the request's path");
        assert_eq!(ip, "127.0.0.1", "the peer's address");
    }
}

#[test]
fn header_hooks_add_to_the_handshake_and_every_transport_response() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server.of("/");
        server.initial_headers(|_, headers| {
            headers.push(("Set-Cookie".into(), "io=first; Path=/; HttpOnly".into()));
        });
        server.headers(|request, headers| {
            headers.push(("X-Served-By".into(), "sioloop".into()));
            headers.push(("X-Method".into(), request.method.clone()));
        });
    });
    // The polling handshake gets both.
    let res = get(addr, HANDSHAKE_URL);
    assert_eq!(res.status, 200, "handshake");
    let sid = assert_open_packet(&res.text(), &["websocket"], Expected::DEFAULTS);
    assert_eq!(
        res.header("set-cookie"),
        Some("io=first; Path=/; HttpOnly"),
        "initial_headers on the handshake"
    );
    assert_eq!(
        res.header("x-served-by"),
        Some("sioloop"),
        "headers on the handshake"
    );
    // A POST and a GET afterwards: `headers` only.
    let res = post(addr, &poll_url(&sid), b"40");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST 40");
    assert_eq!(res.header("x-method"), Some("POST"), "headers on a POST");
    assert_eq!(
        res.header("set-cookie"),
        None,
        "no initial_headers on a POST"
    );
    let res = get(addr, &poll_url(&sid));
    assert_eq!(res.status, 200, "GET for the CONNECT answer");
    assert!(
        res.text().starts_with("40"),
        "CONNECT answer: {:?}",
        res.text()
    );
    assert_eq!(res.header("x-method"), Some("GET"), "headers on a held GET");
    assert_eq!(
        res.header("set-cookie"),
        None,
        "no initial_headers on a GET"
    );
    // A refused request gets neither (as in Node).
    let res = get(addr, "/engine.io/?EIO=4&transport=flash");
    assert_eq!(res.status, 400, "unknown transport");
    assert_eq!(res.header("x-served-by"), None, "no headers on an error");
    // A WebSocket handshake gets both on its 101.
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let (ws, response) = tungstenite::client::client(url.as_str(), stream).expect("upgrade");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(
        header("set-cookie"),
        Some("io=first; Path=/; HttpOnly"),
        "initial_headers on a 101"
    );
    assert_eq!(header("x-method"), Some("GET"), "headers on a 101");
    drop(ws);
    handle.shutdown();
    thread.join().expect("the server thread");
}
