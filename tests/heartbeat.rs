//! Engine.IO heartbeat against the `engineio_echo` example run with `--ping-interval 300
//! --ping-timeout 200`: the server pings with `2`, a client that never answers is gone by
//! 500 ms after its handshake, and one that answers `3` stays connected.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::*;
use std::time::{Duration, Instant};
use tungstenite::Message;

const ARGS: &[&str] = &["--ping-interval", "300", "--ping-timeout", "200"];
const EXPECTED: Expected = Expected {
    ping_interval: 300,
    ping_timeout: 200,
    max_payload: 1_000_000,
};
/// When a client that never answers must be gone (500 ms, with margin for a loaded machine).
const GONE_CHECK: Duration = Duration::from_millis(700);
/// How long a client that answers is kept connected.
const STAY: Duration = Duration::from_millis(1600);

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[test]
fn polling_client_without_pongs_is_dropped() {
    let server = ExampleServer::echo(ARGS);
    let addr = server.addr;
    let t0 = Instant::now();
    let sid = handshake(addr, EXPECTED);
    sleep_until(t0 + Duration::from_millis(200));
    // Still alive: a GET now is held until the first ping at ~300 ms.
    let res = get(addr, &poll_url(&sid));
    let at = t0.elapsed();
    assert_eq!(
        (res.status, res.text()),
        (200, "2".into()),
        "GET at ~200 ms should get the ping (answered after {at:?})"
    );
    assert!(
        at >= Duration::from_millis(250),
        "the first ping should come ~300 ms after the handshake, came after {at:?}"
    );
    // Never answer. By 500 ms the session is closed with ping timeout.
    sleep_until(t0 + GONE_CHECK);
    assert_session_gone(addr, &sid, "polling session without pongs at ~700 ms");
}

#[test]
fn polling_get_held_at_the_ping_timeout_gets_the_close_packet() {
    let server = ExampleServer::echo(ARGS);
    let addr = server.addr;
    let t0 = Instant::now();
    let sid = handshake(addr, EXPECTED);
    let res = get(addr, &poll_url(&sid));
    assert_eq!(
        (res.status, res.text()),
        (200, "2".into()),
        "the first ping"
    );
    // Never answer; the next GET is held until the ping timeout at ~500 ms.
    let res = get(addr, &poll_url(&sid));
    let at = t0.elapsed();
    assert_eq!(
        (res.status, res.text()),
        (200, "1".into()),
        "the GET held at the ping timeout gets the close packet (after {at:?})"
    );
    assert!(
        at >= Duration::from_millis(450),
        "the ping timeout should come ~500 ms after the handshake, came after {at:?}"
    );
    assert_session_gone(addr, &sid, "after the held GET took the close packet");
}

#[test]
fn polling_client_without_any_request_is_dropped() {
    // The client never fetches the ping: the session still times out.
    let server = ExampleServer::echo(ARGS);
    let addr = server.addr;
    let t0 = Instant::now();
    let sid = handshake(addr, EXPECTED);
    sleep_until(t0 + GONE_CHECK);
    assert_session_gone(addr, &sid, "idle polling session at ~700 ms");
}

#[test]
fn polling_client_answering_pings_stays_connected() {
    let server = ExampleServer::echo(ARGS);
    let addr = server.addr;
    let t0 = Instant::now();
    let sid = handshake(addr, EXPECTED);
    let mut pings = 0;
    while t0.elapsed() < STAY {
        let res = get(addr, &poll_url(&sid));
        assert_eq!(
            res.status,
            200,
            "polling GET at {:?}; body {:?}",
            t0.elapsed(),
            res.text()
        );
        for packet in packets(&res.text()) {
            assert_eq!(packet, "2", "only pings expected at {:?}", t0.elapsed());
            pings += 1;
            let res = post(addr, &poll_url(&sid), b"3");
            assert_eq!(
                (res.status, res.text()),
                (200, "ok".into()),
                "POST 3 at {:?}",
                t0.elapsed()
            );
        }
    }
    assert!(
        pings >= 3,
        "expected at least 3 pings in {STAY:?}, got {pings}"
    );
    let res = post(addr, &poll_url(&sid), b"4still");
    assert_eq!(
        (res.status, res.text()),
        (200, "ok".into()),
        "POST after {:?}",
        t0.elapsed()
    );
    loop {
        let res = get(addr, &poll_url(&sid));
        assert_eq!(res.status, 200, "GET for the echo; body {:?}", res.text());
        let got = packets(&res.text());
        let mut done = false;
        for packet in got {
            match packet.as_str() {
                "2" => {
                    post(addr, &poll_url(&sid), b"3");
                }
                "4still" => done = true,
                other => panic!("unexpected packet {other:?} while waiting for the echo"),
            }
        }
        if done {
            break;
        }
    }
}

#[test]
fn websocket_client_without_pongs_is_dropped() {
    let server = ExampleServer::echo(ARGS);
    let t0 = Instant::now();
    let mut ws = ws_connect(server.addr, "EIO=4&transport=websocket");
    let open = ws_text(&mut ws, "open packet");
    assert_open_packet(&open, &[], EXPECTED);

    // Still alive at ~200 ms.
    sleep_until(t0 + Duration::from_millis(200));
    ws_send_text(&mut ws, "4alive");
    let mut ping_at = None;
    loop {
        let text = ws_text(&mut ws, "echo of 4alive");
        match text.as_str() {
            "4alive" => break,
            "2" if ping_at.is_none() => ping_at = Some(t0.elapsed()),
            other => panic!("unexpected frame {other:?} waiting for the echo"),
        }
    }
    let ping_at = match ping_at {
        Some(at) => at,
        None => {
            let text = ws_text(&mut ws, "the first ping");
            assert_eq!(text, "2", "the server's heartbeat");
            t0.elapsed()
        }
    };
    assert!(
        ping_at >= Duration::from_millis(250) && ping_at < GONE_CHECK,
        "the first ping should come ~300 ms after the handshake, came after {ping_at:?}"
    );

    // Never answer: the server closes the connection by ~500 ms.
    let (seen, end) = ws_wait_end(&mut ws, t0 + GONE_CHECK);
    assert!(
        seen.is_empty(),
        "no more packets expected before the close, got {seen:?}"
    );
    assert!(
        end.is_some(),
        "the server should have closed the WebSocket by {GONE_CHECK:?} (ping timeout)"
    );
}

#[test]
fn websocket_client_answering_pings_stays_connected() {
    let server = ExampleServer::echo(ARGS);
    let t0 = Instant::now();
    let mut ws = ws_connect(server.addr, "EIO=4&transport=websocket");
    let open = ws_text(&mut ws, "open packet");
    assert_open_packet(&open, &[], EXPECTED);
    let mut pings = 0;
    loop {
        let now = Instant::now();
        if now >= t0 + STAY {
            break;
        }
        ws_set_timeout(&mut ws, (t0 + STAY - now).max(Duration::from_millis(1)));
        match ws_next(&mut ws) {
            Ok(Message::Text(t)) if t.as_str() == "2" => {
                pings += 1;
                ws_send_text(&mut ws, "3");
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            other => panic!(
                "expected only pings while answering them, got {other:?} at {:?}",
                t0.elapsed()
            ),
        }
    }
    assert!(
        pings >= 3,
        "expected at least 3 pings in {STAY:?}, got {pings}"
    );
    ws_set_timeout(&mut ws, READ_TIMEOUT);
    ws_send_text(&mut ws, "4still");
    loop {
        let text = ws_text(&mut ws, "echo after 1.6 s of heartbeats");
        match text.as_str() {
            "2" => ws_send_text(&mut ws, "3"),
            "4still" => break,
            other => panic!("unexpected frame {other:?} waiting for the echo"),
        }
    }
}
