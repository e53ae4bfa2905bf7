//! Engine.IO over HTTP long-polling against the `engineio_echo` example, with raw HTTP/1.1:
//! the handshake, error codes, echo, overlapping GETs, close, keep-alive, CORS and the
//! application's own HTTP routes.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::*;
use std::net::SocketAddr;
use std::time::Duration;

const HELD: Duration = Duration::from_millis(250);

/// A held GET on its own connection, checked to be held.
fn held_get(addr: SocketAddr, sid: &str) -> Conn {
    let mut conn = Conn::open(addr);
    conn.send("GET", &poll_url(sid), &[], b"");
    conn.assert_no_response_within(HELD, "GET with nothing queued");
    conn
}

#[test]
fn handshake_returns_open_packet_with_exact_json() {
    let server = ExampleServer::echo(&[]);
    let res = get(server.addr, HANDSHAKE_URL);
    assert_eq!(res.status, 200, "handshake body {:?}", res.text());
    let content_type = res.header("content-type").expect("Content-Type header");
    assert!(
        content_type.eq_ignore_ascii_case("text/plain; charset=UTF-8"),
        "handshake Content-Type is {content_type:?}"
    );
    let sid = assert_open_packet(&res.text(), &["websocket"], Expected::DEFAULTS);
    let other = handshake(server.addr, Expected::DEFAULTS);
    assert_ne!(sid, other, "two handshakes must get different sids");
}

#[test]
fn handshake_reports_command_line_settings() {
    let server = ExampleServer::echo(&[
        "--ping-interval",
        "1234",
        "--ping-timeout",
        "567",
        "--max-payload",
        "4321",
    ]);
    handshake(
        server.addr,
        Expected {
            ping_interval: 1234,
            ping_timeout: 567,
            max_payload: 4321,
        },
    );
}

#[test]
fn bad_requests_get_reference_error_codes_and_server_keeps_serving() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "GET",
            "/engine.io/?transport=polling",
            5,
            "Unsupported protocol version",
        ),
        (
            "GET",
            "/engine.io/?EIO=3&transport=polling",
            5,
            "Unsupported protocol version",
        ),
        ("GET", "/engine.io/?EIO=4", 0, "Transport unknown"),
        (
            "GET",
            "/engine.io/?EIO=4&transport=flash",
            0,
            "Transport unknown",
        ),
        (
            "POST",
            "/engine.io/?EIO=4&transport=polling",
            2,
            "Bad handshake method",
        ),
        (
            "GET",
            "/engine.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA",
            1,
            "Session ID unknown",
        ),
        (
            "POST",
            "/engine.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA",
            1,
            "Session ID unknown",
        ),
    ];
    for &(method, target, code, message) in cases {
        let body: &[u8] = if method == "POST" { b"4hello" } else { b"" };
        let res = request(addr, method, target, &[], body);
        assert_error(&res, code, message, &format!("{method} {target}"));
        // The server goes on serving.
        handshake(addr, Expected::DEFAULTS);
    }
}

#[test]
fn oversized_post_is_refused_and_closes_the_session() {
    let server = ExampleServer::echo(&["--max-payload", "100"]);
    let addr = server.addr;
    let expected = Expected {
        max_payload: 100,
        ..Expected::DEFAULTS
    };
    let sid = handshake(addr, expected);
    // Under the limit: fine.
    let small = format!("4{}", "a".repeat(50));
    // Exactly the limit, twice on one keep-alive connection: both taken.
    let full = format!("4{}", "a".repeat(99));
    let mut conn = Conn::open(addr);
    for _ in 0..2 {
        let res = conn.request("POST", &poll_url(&sid), &[], full.as_bytes());
        assert_eq!(
            (res.status, res.text()),
            (200, "ok".into()),
            "POST of maxPayload"
        );
    }
    assert_eq!(collect_packets(addr, &sid, 2), [full.clone(), full]);
    let res = post(addr, &poll_url(&sid), small.as_bytes());
    assert_eq!(
        (res.status, res.text()),
        (200, "ok".into()),
        "POST under the limit"
    );
    assert_eq!(collect_packets(addr, &sid, 1), [small]);
    // Over the limit.
    let big = format!("4{}", "a".repeat(199));
    let res = post(addr, &poll_url(&sid), big.as_bytes());
    assert_eq!(res.status, 413, "POST of 200 bytes with maxPayload 100");
    assert_eq!(
        res.json(),
        serde_json::json!({ "code": 3, "message": "Bad request" })
    );
    assert_session_gone(addr, &sid, "after the oversized POST");
    handshake(addr, expected);
}

#[test]
fn malformed_payloads_close_the_session_with_parse_error() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    for body in [&b"9abc"[..], b"bZZZ!", b"4a\x1e"] {
        let what = format!("POST {:?}", String::from_utf8_lossy(body));
        let sid = handshake(addr, Expected::DEFAULTS);
        // No GET held: the session is forgotten at once, like the reference server does (a
        // next GET used to get the close packet).
        let res = post(addr, &poll_url(&sid), body);
        assert_error(&res, 3, "Bad request", &what);
        assert_session_gone(addr, &sid, &format!("{what}, no GET held"));
        // A GET held when the session closes gets the close packet.
        let sid = handshake(addr, Expected::DEFAULTS);
        let mut held = held_get(addr, &sid);
        let res = post(addr, &poll_url(&sid), body);
        assert_error(&res, 3, "Bad request", &what);
        let res = held.read_response();
        assert_eq!(
            (res.status, res.text()),
            (200, "1".into()),
            "{what}: the held GET should get the close packet"
        );
        assert_session_gone(addr, &sid, &format!("{what}, after the held GET"));
        handshake(addr, Expected::DEFAULTS);
    }
}

#[test]
fn oversized_post_with_a_get_held_answers_it_with_the_close_packet() {
    let server = ExampleServer::echo(&["--max-payload", "100"]);
    let addr = server.addr;
    let expected = Expected {
        max_payload: 100,
        ..Expected::DEFAULTS
    };
    let sid = handshake(addr, expected);
    let mut held = held_get(addr, &sid);
    let big = format!("4{}", "a".repeat(199));
    let res = post(addr, &poll_url(&sid), big.as_bytes());
    assert_eq!(res.status, 413, "POST of 200 bytes with maxPayload 100");
    let res = held.read_response();
    assert_eq!(
        (res.status, res.text()),
        (200, "1".into()),
        "the held GET should get the close packet"
    );
    assert_session_gone(addr, &sid, "after the held GET");
}

#[test]
fn polling_echoes_text_to_the_held_get() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = held_get(addr, &sid);
    let res = post(addr, &poll_url(&sid), b"4hello");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST 4hello");
    let res = held.read_response();
    assert_eq!(res.status, 200, "held GET status");
    assert_eq!(res.text(), "4hello", "held GET body");
}

#[test]
fn polling_echoes_binary_as_base64() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = held_get(addr, &sid);
    let res = post(addr, &poll_url(&sid), b"bAQID");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST bAQID");
    let res = held.read_response();
    assert_eq!((res.status, res.text()), (200, "bAQID".into()), "held GET");
}

#[test]
fn polling_batch_comes_back_in_order() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let res = post(addr, &poll_url(&sid), b"4one\x1e4two\x1ebAQID\x1e4");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST batch");
    assert_eq!(
        collect_packets(addr, &sid, 4),
        ["4one", "4two", "bAQID", "4"]
    );
}

#[test]
fn second_concurrent_get_is_refused_and_closes_the_session() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut first = held_get(addr, &sid);
    let res = get(addr, &poll_url(&sid));
    assert_error(&res, 3, "Bad request", "second concurrent GET");
    let res = first.read_response();
    assert_eq!(
        (res.status, res.text()),
        (200, "1".into()),
        "the first held GET should get the close packet"
    );
    let res = get(addr, &poll_url(&sid));
    assert_error(&res, 1, "Session ID unknown", "GET after the overlap close");
    handshake(addr, Expected::DEFAULTS);
}

#[test]
fn client_close_packet_releases_held_get_with_noop() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = held_get(addr, &sid);
    let res = post(addr, &poll_url(&sid), b"1");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST 1");
    let res = held.read_response();
    assert_eq!(
        (res.status, res.text()),
        (200, "6".into()),
        "held GET after close"
    );
    let res = get(addr, &poll_url(&sid));
    assert_error(&res, 1, "Session ID unknown", "GET after client close");
    let res = post(addr, &poll_url(&sid), b"4x");
    assert_error(&res, 1, "Session ID unknown", "POST after client close");
}

#[test]
fn client_close_packet_without_a_get_held_forgets_the_session() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let res = post(addr, &poll_url(&sid), b"4queued");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST 4queued");
    let res = post(addr, &poll_url(&sid), b"1");
    assert_eq!((res.status, res.text()), (200, "ok".into()), "POST 1");
    // The reference server forgets the session at once: the echo queued for it is dropped
    // (this GET used to get a noop).
    assert_session_gone(addr, &sid, "after the client's close packet");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let mut conn = Conn::open(addr);
    let res = conn.request("GET", HANDSHAKE_URL, &[], b"");
    assert_eq!(res.status, 200, "handshake on the kept-alive connection");
    let sid = assert_open_packet(&res.text(), &["websocket"], Expected::DEFAULTS);
    let res = conn.request("POST", &poll_url(&sid), &[], b"4ka");
    assert_eq!(
        (res.status, res.text()),
        (200, "ok".into()),
        "POST on the same connection"
    );
    let res = conn.request("GET", &poll_url(&sid), &[], b"");
    assert_eq!(
        (res.status, res.text()),
        (200, "4ka".into()),
        "GET on the same connection"
    );
    assert!(
        !conn.closed_by_peer_within(Duration::from_millis(100)),
        "an HTTP/1.1 connection without Connection: close must stay open"
    );
    let res = conn.request("POST", &poll_url(&sid), &[("Connection", "close")], b"4bye");
    assert_eq!(
        (res.status, res.text()),
        (200, "ok".into()),
        "POST with Connection: close"
    );
    assert!(
        conn.closed_by_peer_within(Duration::from_secs(2)),
        "the server should close the connection after a Connection: close request"
    );
    assert_eq!(collect_packets(addr, &sid, 1), ["4bye"]);
}

#[test]
fn cors_preflight_and_origin_header() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let origin = "http://example.com";
    let res = request(
        addr,
        "OPTIONS",
        HANDSHAKE_URL,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(
        res.status, 204,
        "preflight status; headers {:?}",
        res.headers
    );
    let allow = res
        .header("access-control-allow-origin")
        .unwrap_or_else(|| {
            panic!(
                "preflight without Access-Control-Allow-Origin: {:?}",
                res.headers
            )
        });
    assert!(
        allow == origin || allow == "*",
        "preflight Access-Control-Allow-Origin {allow:?}"
    );

    let res = request(addr, "GET", HANDSHAKE_URL, &[("Origin", origin)], b"");
    assert_eq!(res.status, 200, "handshake with Origin");
    let allow = res
        .header("access-control-allow-origin")
        .unwrap_or_else(|| panic!("GET without Access-Control-Allow-Origin: {:?}", res.headers));
    assert!(
        allow == origin || allow == "*",
        "GET Access-Control-Allow-Origin {allow:?}"
    );
    let sid = assert_open_packet(&res.text(), &["websocket"], Expected::DEFAULTS);

    let res = request(
        addr,
        "POST",
        &poll_url(&sid),
        &[("Origin", origin)],
        b"4cors",
    );
    assert_eq!(
        (res.status, res.text()),
        (200, "ok".into()),
        "POST with Origin"
    );
    assert!(
        res.header("access-control-allow-origin").is_some(),
        "POST without Access-Control-Allow-Origin: {:?}",
        res.headers
    );
}

#[test]
fn application_routes_and_404() {
    let server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let res = get(addr, "/");
    assert_eq!(
        res.status,
        200,
        "GET / body {:?}",
        String::from_utf8_lossy(&res.body)
    );
    let content_type = res.header("content-type").expect("GET / Content-Type");
    assert!(
        content_type.to_ascii_lowercase().starts_with("text/html"),
        "GET / Content-Type {content_type:?}"
    );
    assert!(!res.body.is_empty(), "GET / should return a page");
    let res = get(addr, "/nope");
    assert_eq!(res.status, 404, "GET /nope");
    // Still serving Engine.IO.
    handshake(addr, Expected::DEFAULTS);
}
