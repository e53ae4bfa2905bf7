//! The engine's hooks that Node's engine.io has as events, over raw HTTP against an
//! in-process Socket.IO server: `connection_error` sees every refused request with its
//! code and message.

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
