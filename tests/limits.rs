//! Every limit, hit on purpose: the client-visible outcome (HTTP status and Engine.IO code,
//! CONNECT_ERROR, disconnect) and the counter that records it.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::engine::EngineStats;
use sioloop::protocol::engineio::CloseReason;
use sioloop::{Handle, RateLimit, RateLimitAction, Server, Stats};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Both layers' counters, read on the loop thread.
fn stats(handle: &Handle<State>) -> (Stats, EngineStats) {
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let _ = tx.send((cx.stats(), cx.engine_stats()));
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("stats")
}

fn log_disconnects(server: &mut Server<State>) {
    server.of("/").on_disconnect(|cx, reason| {
        let line = format!("disconnect {reason}");
        cx.state().log.push(line);
    });
}

/// Reads whatever the server sends until it closes the connection.
fn read_to_close(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn connection_limits_answer_503() {
    let config = config().max_connections(100, 2);
    let (handle, addr, thread) = start_with(config, log_disconnects);
    // Two connections from this address are accepted (a request on each proves it).
    let mut first = Conn::open(addr);
    let mut second = Conn::open(addr);
    for c in [&mut first, &mut second] {
        let res = c.request("GET", "/nope", &[], b"");
        assert_eq!(res.status, 404);
    }
    // The third gets 503 and is closed.
    let mut third = TcpStream::connect(addr).expect("connect");
    let answer = read_to_close(&mut third);
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.ends_with("too many connections"),
        "{answer:?}"
    );
    assert_eq!(stats(&handle).1.connections_refused, 1);
    // Once one closes, a new connection is accepted again.
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    let sid = handshake(addr, Expected::DEFAULTS);
    assert_sid_format(&sid);
    handle.shutdown();
    drop(second);
    thread.join().expect("server thread");
}

#[test]
fn slow_request_heads_get_408_and_idle_keepalive_connections_close() {
    let config = config().head_timeout(Duration::from_millis(300));
    let (handle, addr, thread) = start_with(config, log_disconnects);
    // A head that never completes (slowloris).
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let started = Instant::now();
    let answer = read_to_close(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // An idle keep-alive connection is closed after the same time.
    let mut idle = Conn::open(addr);
    assert_eq!(idle.request("GET", "/nope", &[], b"").status, 404);
    assert!(
        idle.closed_by_peer_within(Duration::from_secs(3)),
        "an idle keep-alive connection is closed"
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr).expect("connect");
    assert_eq!(read_to_close(&mut silent), "");
    assert!(stats(&handle).1.requests_refused >= 1, "the 408 is counted");
    handle.shutdown();
    thread.join().expect("server thread");
}

#[test]
fn a_websocket_client_that_stops_reading_is_disconnected_as_a_slow_consumer() {
    let config = config().max_queued_bytes(256 * 1024);
    let (handle, addr, thread) = start_with(config, |server| {
        log_disconnects(server);
    });
    let (ws, _) = connect_to(addr, "/", "");
    // The client stops reading; the server sends 16 MiB, far past kernel buffers and the
    // 256 KiB queue limit.
    handle.run(|cx| {
        let chunk = "x".repeat(64 * 1024);
        for _ in 0..256 {
            cx.of("/").emit("flood", &chunk);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let (sio_stats, engine_stats) = loop {
        let s = stats(&handle);
        if s.1.closed(CloseReason::SlowConsumer) == 1 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = sio_stats;
    assert_eq!(engine_stats.closed(CloseReason::SlowConsumer), 1);
    handle.shutdown();
    drop(ws);
    let state = thread.join().expect("server thread");
    assert_eq!(state.log, vec!["disconnect slow consumer".to_owned()]);
}

#[test]
fn a_polling_client_that_stops_fetching_is_disconnected_as_a_slow_consumer() {
    let config = config().max_queued_bytes(64 * 1024);
    let (handle, addr, thread) = start_with(config, log_disconnects);
    // A polling session joins `/` and then never polls again.
    let sid = handshake(addr, Expected::DEFAULTS);
    assert_eq!(post(addr, &poll_url(&sid), b"40").text(), "ok");
    let res = get(addr, &poll_url(&sid));
    assert!(res.text().starts_with("40{"), "{}", res.text());
    handle.run(|cx| {
        let chunk = "y".repeat(16 * 1024);
        for _ in 0..8 {
            cx.of("/").emit("flood", &chunk);
        }
    });
    // The session is gone; its next GET gets the close packet (what it missed is dropped).
    std::thread::sleep(Duration::from_millis(200));
    let res = get(addr, &poll_url(&sid));
    assert_eq!(res.text(), "1");
    assert_eq!(stats(&handle).1.closed(CloseReason::SlowConsumer), 1);
    handle.shutdown();
    let state = thread.join().expect("server thread");
    assert_eq!(state.log, vec!["disconnect slow consumer".to_owned()]);
}

#[test]
fn allow_request_and_the_origin_allow_list_answer_forbidden() {
    let config = config().allowed_origins(&["http://good.example"]);
    let (handle, addr, thread) = start_with(config, |server| {
        log_disconnects(server);
        server.allow_request(|request, _addr| request.header("x-deny").is_none());
    });
    // allow_request refuses a handshake.
    let res = request(addr, "GET", HANDSHAKE_URL, &[("X-Deny", "1")], b"");
    assert_error(&res, 4, "Forbidden", "allow_request");
    assert_eq!(res.status, 403);
    // An origin that is not listed, on polling ...
    let res = request(
        addr,
        "GET",
        HANDSHAKE_URL,
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_error(&res, 4, "Forbidden", "polling from a bad origin");
    // ... and on a WebSocket upgrade.
    let mut req = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket")
        .as_str()
        .into_client_request_for_test();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    let stream = TcpStream::connect(addr).expect("connect");
    match tungstenite::client::client(req, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("a WebSocket from a bad origin must be refused, got {other:?}"),
    }
    // A listed origin, and a client with no Origin header, are served.
    let res = request(
        addr,
        "GET",
        HANDSHAKE_URL,
        &[("Origin", "http://good.example")],
        b"",
    );
    assert_eq!(res.status, 200);
    let (_ws, _) = connect_to(addr, "/", "");
    assert!(stats(&handle).1.requests_refused >= 3);
    handle.shutdown();
    drop(_ws);
    thread.join().expect("server thread");
}

/// Builds a tungstenite request from a URL (a small shim so the test reads plainly).
trait IntoClientRequestForTest {
    fn into_client_request_for_test(self) -> tungstenite::handshake::client::Request;
}

impl IntoClientRequestForTest for &str {
    fn into_client_request_for_test(self) -> tungstenite::handshake::client::Request {
        use tungstenite::client::IntoClientRequest;
        self.into_client_request().expect("request")
    }
}

#[test]
fn metrics_are_served_as_prometheus_text() {
    let config = config().metrics_path("/metrics");
    let (handle, addr, thread) = start_with(config, log_disconnects);
    let (_ws, _) = connect_to(addr, "/", "");
    let res = get(addr, "/metrics");
    assert_eq!(res.status, 200);
    let text = res.text();
    for line in [
        "# TYPE sioloop_connections_open gauge",
        "sioloop_sessions_open 1",
        "sioloop_sessions_opened_total 1",
        "sioloop_sockets{nsp=\"/\"} 1",
        "sioloop_sessions_closed_total{reason=\"slow consumer\"} 0",
        "sioloop_volatile_dropped_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    handle.shutdown();
    drop(_ws);
    thread.join().expect("server thread");
}

#[test]
fn room_limits_and_the_room_validator_refuse_joins() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server
            .max_rooms_per_socket(3)
            .max_room_name_len(8)
            .validate_room(|room| !room.starts_with("admin"));
        server.of("/").on::<String>("join", |cx, room, ack| {
            let joined = cx.try_join(&room);
            if let Some(ack) = ack {
                cx.ack(ack, &joined);
            }
        });
    });
    let (mut ws, _) = connect_to(addr, "/", "");
    let mut join = |room: &str, id: u32| {
        ws_send_text(&mut ws, &format!("42{id}[\"join\",\"{room}\"]"));
        ws_text(&mut ws, "join ack")
    };
    // The socket's own id room counts: two more rooms fit.
    assert_eq!(join("admins", 1), "431[false]", "refused by the validator");
    assert_eq!(join("a-very-long-name", 2), "432[false]", "name too long");
    assert_eq!(join("red", 3), "433[true]");
    assert_eq!(join("blue", 4), "434[true]");
    assert_eq!(
        join("green", 5),
        "435[false]",
        "a fourth room is one too many"
    );
    assert_eq!(join("red", 6), "436[true]", "a room already joined is fine");
    assert_eq!(stats(&handle).0.joins_refused, 3);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn dynamic_namespaces_are_capped() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server.max_dynamic_namespaces(2);
        server.dynamic(|name| name.starts_with("/game-"));
    });
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    for n in 1..=2 {
        ws_send_text(&mut ws, &format!("40/game-{n},"));
        assert!(ws_text(&mut ws, "CONNECT").starts_with(&format!("40/game-{n},{{\"sid\"")));
    }
    ws_send_text(&mut ws, "40/game-3,");
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        "44/game-3,{\"message\":\"Too many namespaces\"}"
    );
    // The namespaces that exist still take new clients.
    let (_other, _) = connect_to(addr, "/game-1", "");
    assert_eq!(stats(&handle).0.namespaces_refused, 1);
    handle.shutdown();
    drop((ws, _other));
    thread.join().expect("server thread");
}

fn rate_limited_server(action: RateLimitAction) -> Started {
    start_with(config(), move |server| {
        log_disconnects(server);
        server.rate_limit(RateLimit {
            per_second: 0.5,
            burst: 3.0,
            action,
        });
        server.of("/").on::<u32>("n", |cx, n, ack| {
            if let Some(ack) = ack {
                cx.ack(ack, &n);
            }
        });
    })
}

#[test]
fn events_over_the_rate_limit_are_dropped_and_counted() {
    let (handle, addr, thread) = rate_limited_server(RateLimitAction::Drop);
    let (mut ws, _) = connect_to(addr, "/", "");
    for n in 1..=10 {
        ws_send_text(&mut ws, &format!("42{n}[\"n\",{n}]"));
    }
    ws_send_text(&mut ws, "40/nope,"); // a marker: answered after the ten events
    let mut acks = Vec::new();
    loop {
        let text = ws_text(&mut ws, "acks");
        if text.starts_with("44/nope,") {
            break;
        }
        acks.push(text);
    }
    assert_eq!(
        acks,
        vec!["431[1]", "432[2]", "433[3]"],
        "the burst of 3 goes through"
    );
    assert_eq!(stats(&handle).0.events_rate_limited, 7);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn events_over_the_rate_limit_can_disconnect_the_socket() {
    let (handle, addr, thread) = rate_limited_server(RateLimitAction::Disconnect);
    let (mut ws, _) = connect_to(addr, "/", "");
    for n in 1..=4 {
        ws_send_text(&mut ws, &format!("42{n}[\"n\",{n}]"));
    }
    for n in 1..=3 {
        assert_eq!(ws_text(&mut ws, "ack"), format!("43{n}[{n}]"));
    }
    assert_eq!(ws_text(&mut ws, "DISCONNECT"), "41");
    assert_eq!(stats(&handle).0.events_rate_limited, 1);
    handle.shutdown();
    drop(ws);
    let state = thread.join().expect("server thread");
    assert_eq!(
        state.log,
        vec!["disconnect server namespace disconnect".to_owned()]
    );
}

#[test]
fn too_many_attachments_close_the_connection_with_parse_error() {
    let (handle, addr, thread) = start_with(config(), |server| {
        log_disconnects(server);
        server.max_attachments(2);
    });
    let (mut ws, _) = connect_to(addr, "/", "");
    let placeholder = |n| format!("{{\"_placeholder\":true,\"num\":{n}}}");
    ws_send_text(
        &mut ws,
        &format!(
            "453-[\"up\",{},{},{}]",
            placeholder(0),
            placeholder(1),
            placeholder(2)
        ),
    );
    let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
    assert!(end.is_some(), "the connection is closed");
    handle.shutdown();
    let state = thread.join().expect("server thread");
    assert_eq!(state.log, vec!["disconnect parse error".to_owned()]);
}

#[test]
fn missing_attachments_close_the_connection_with_parse_error_after_the_timeout() {
    let (handle, addr, thread) = start_with(config().metrics_path("/metrics"), |server| {
        log_disconnects(server);
        server.attachments_timeout(Duration::from_millis(300));
        server.of("/").on_raw("up", |cx, event, ack| {
            if let Some(ack) = ack {
                cx.ack(ack, &event.payload().attachments().len());
            }
        });
    });
    let (mut ws, _) = connect_to(addr, "/", "");
    let two = "[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
    // A packet whose attachments all arrive is answered, and its deadline passing later
    // does nothing.
    ws_send_text(&mut ws, &format!("452-1{two}"));
    ws_send_binary(&mut ws, &[1; 1000]);
    ws_send_binary(&mut ws, &[2; 1000]);
    assert_eq!(ws_text(&mut ws, "ack"), "431[2]");
    std::thread::sleep(Duration::from_millis(500));
    ws_send_text(&mut ws, "40/nope,"); // still connected: answered
    assert!(ws_text(&mut ws, "CONNECT_ERROR").starts_with("44/nope,"));
    // Two announced, one sent: the client is closed once the timeout has passed.
    let sent = Instant::now();
    ws_send_text(&mut ws, &format!("452-2{two}"));
    ws_send_binary(&mut ws, &[3; 1000]);
    let (seen, end) = ws_wait_end(&mut ws, sent + Duration::from_secs(5));
    assert!(end.is_some(), "the connection is closed (saw {seen:?})");
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "not before the timeout: {waited:?}"
    );
    assert!(
        !seen.iter().any(|t| t.starts_with("43")),
        "no ack: {seen:?}"
    );
    assert_eq!(stats(&handle).0.attachments_timed_out, 1);
    let text = get(addr, "/metrics").text();
    assert!(
        text.lines()
            .any(|l| l == "sioloop_attachments_timed_out_total 1"),
        "{text}"
    );
    handle.shutdown();
    let state = thread.join().expect("server thread");
    assert_eq!(state.log, vec!["disconnect parse error".to_owned()]);
}
