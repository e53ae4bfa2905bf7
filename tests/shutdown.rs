//! Graceful stop: on Ctrl-C (SIGINT) the server closes every session, delivers what it
//! can, and `run` returns so the process exits cleanly.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::*;
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_closes_every_session_and_exits() {
    let mut server = ExampleServer::echo(&[]);
    let addr = server.addr;

    // A WebSocket-only session.
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    let open = ws_text(&mut ws, "open packet");
    assert!(open.starts_with('0'), "open packet expected, got {open:?}");

    // A polling session with a held GET.
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = Conn::open(addr);
    held.send("GET", &poll_url(&sid), &[], b"");
    held.assert_no_response_within(Duration::from_millis(100), "GET before shutdown");

    server.interrupt();

    // The held GET gets the close packet.
    let res = held.read_response();
    assert_eq!((res.status, res.text()), (200, "1".to_owned()));
    // The WebSocket gets a close frame.
    let (seen, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
    assert!(
        seen.is_empty(),
        "no data expected before the close: {seen:?}"
    );
    assert!(
        matches!(end, Some(WsEnd::CloseFrame(_))),
        "a close frame expected, got {end:?}"
    );
    // Clients close their side, as real ones do; the server then has nothing left to wait for.
    drop(held);
    drop(ws);
    // And the process exits on its own, successfully.
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("the server should exit after Ctrl-C");
    assert!(status.success(), "exit status {status:?}");
}
