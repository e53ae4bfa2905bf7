//! The Socket.IO layer in-process, spoken to over a raw WebSocket: loop timers, the
//! cross-thread `Handle`, event middleware and its counter, strict packet validation, unknown
//! namespaces, and shutdown through the handle.

#[path = "common/raw.rs"]
mod raw;

use raw::*;
use sioloop::server::Config;
use sioloop::sio::{Handle, Refuse, Server};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    ticks: u32,
    log: Vec<String>,
}

/// Starts a server on its own thread (handlers are not `Send`, so it is built there) and
/// returns its handle, its address, and the thread, which yields the final state.
fn start() -> (Handle<State>, std::net::SocketAddr, JoinHandle<State>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let config = Config::default().path("/engine.io/");
        let mut server =
            Server::bind("127.0.0.1:0", config, State::default()).expect("bind the server");
        server
            .of("/")
            .on_connect(|cx| cx.join("room"))
            .on_disconnect(|cx, reason| {
                let line = format!("disconnect {reason}");
                cx.state().log.push(line);
            })
            .use_event_middleware(|_, event| match event.name() {
                "spam" => Err(Refuse::Drop),
                _ => Ok(()),
            })
            .on::<()>("ping_me", |cx, (), _| {
                cx.emit("pong", &"pong");
            })
            .on::<u32>("start_ticks", |cx, period_ms, _| {
                cx.every(Duration::from_millis(period_ms as u64), |cx| {
                    cx.state().ticks += 1;
                    let n = cx.state().ticks;
                    cx.to("room").emit("tick", &n);
                });
            });
        tx.send((server.handle(), server.local_addr()))
            .expect("send handle");
        server.run().expect("run");
        std::mem::take(server.state())
    });
    let (handle, addr) = rx.recv().expect("server started");
    (handle, addr, thread)
}

/// Opens a WebSocket session and joins `/`; returns it with the socket id.
fn connect(addr: std::net::SocketAddr) -> (Ws, String) {
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    let open = ws_text(&mut ws, "open packet");
    assert!(open.starts_with("0{"), "open packet expected: {open}");
    ws_send_text(&mut ws, "40");
    let connect = ws_text(&mut ws, "CONNECT answer");
    let json = connect
        .strip_prefix("40")
        .unwrap_or_else(|| panic!("CONNECT expected, got {connect}"));
    let value: serde_json::Value = serde_json::from_str(json).expect("CONNECT JSON");
    let sid = value["sid"].as_str().expect("sid").to_owned();
    assert_eq!(sid.len(), 20, "socket ids are 20 characters: {sid}");
    (ws, sid)
}

/// Reads text frames until one satisfies `pred`, skipping heartbeats and others.
fn wait_for(ws: &mut Ws, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let text = ws_text(ws, what);
        if pred(&text) {
            return text;
        }
    }
}

#[test]
fn timers_handle_middleware_and_shutdown() {
    let (handle, addr, thread) = start();
    let (mut ws, _sid) = connect(addr);

    // An interval timer started from a handler ticks on the loop, in order.
    ws_send_text(&mut ws, "42[\"start_ticks\",30]");
    let first = wait_for(&mut ws, "first tick", |t| t.starts_with("42[\"tick\""));
    assert_eq!(first, "42[\"tick\",1]");
    assert_eq!(
        wait_for(&mut ws, "second tick", |t| t.starts_with("42[\"tick\"")),
        "42[\"tick\",2]"
    );

    // Another thread emits through the handle.
    let from_thread = handle.clone();
    std::thread::spawn(move || {
        assert!(from_thread.emit("/", Some("room"), "news", &"from another thread"));
    })
    .join()
    .expect("emitting thread");
    assert_eq!(
        wait_for(&mut ws, "news", |t| t.starts_with("42[\"news\"")),
        "42[\"news\",\"from another thread\"]"
    );

    // A one-shot timer scheduled through `Handle::run`.
    handle.run(|cx| {
        cx.after(Duration::from_millis(20), |cx| {
            cx.of("/").emit_args("later", &("a", 2));
        });
    });
    assert_eq!(
        wait_for(&mut ws, "later", |t| t.starts_with("42[\"later\"")),
        "42[\"later\",\"a\",2]"
    );

    // The event middleware drops `spam` (and counts it); other events go through.
    ws_send_text(&mut ws, "42[\"spam\"]");
    ws_send_text(&mut ws, "42[\"ping_me\"]");
    assert_eq!(
        wait_for(&mut ws, "pong", |t| t.starts_with("42[\"pong\"")),
        "42[\"pong\",\"pong\"]"
    );
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let _ = tx.send(cx.stats().events_refused);
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));

    // Shutdown through the handle: the client is closed, run returns, the socket's
    // disconnect handler saw the reason.
    handle.shutdown();
    let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(5));
    assert!(end.is_some(), "the server should close the WebSocket");
    drop(ws);
    let state = thread.join().expect("server thread");
    assert_eq!(
        state.log,
        vec!["disconnect server shutting down".to_owned()]
    );
    assert!(state.ticks >= 2);
}

#[test]
fn invalid_packets_close_with_parse_error_and_unknown_namespaces_are_refused() {
    let (handle, addr, thread) = start();

    // Unknown namespace: CONNECT_ERROR with the reference message; the connection stays.
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    ws_send_text(&mut ws, "40/nope,");
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        "44/nope,{\"message\":\"Invalid namespace\"}"
    );
    drop(ws);

    // `42{}` (an event whose data is not an array) closes the connection: parse error.
    for bad in ["42{}", "42abc[\"x\"]", "4abc", "49[]", "42[\"connect\"]"] {
        let (mut ws, _) = connect(addr);
        ws_send_text(&mut ws, bad);
        let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
        assert!(end.is_some(), "{bad:?} should close the connection");
    }

    handle.shutdown();
    let state = thread.join().expect("server thread");
    assert_eq!(
        state.log,
        vec!["disconnect parse error".to_owned(); 5],
        "each bad packet disconnects its socket with parse error"
    );
}

#[test]
fn volatile_packets_are_dropped_and_counted_when_the_client_is_not_reading() {
    let (handle, addr, thread) = start();
    let (mut ws, _) = connect(addr);

    // While the client keeps up, a volatile packet is delivered.
    handle.run(|cx| {
        cx.to("room").volatile().emit("v", &0);
    });
    assert_eq!(
        wait_for(&mut ws, "volatile packet", |t| t.starts_with("42[\"v\"")),
        "42[\"v\",0]"
    );

    // The client stops reading; 32 MiB of regular packets fill the kernel buffers and the
    // server's write queue, so volatile packets can no longer go out at once.
    handle.run(move |cx| {
        let big = "x".repeat(256 * 1024);
        for _ in 0..128 {
            cx.to("room").emit("big", &big);
        }
    });
    // Let the loop write what the kernel takes; the rest stays in the connection's queue
    // because the client is not reading.
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        for i in 1..=10 {
            cx.to("room").volatile().emit("v", &i);
        }
        let _ = tx.send(cx.stats().volatile_dropped);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(10),
        "every volatile packet is dropped (and counted) while the client is behind"
    );

    // The regular packets were queued, not dropped: the client still gets all of them, and
    // none of the dropped volatile ones.
    let mut big = 0;
    let mut volatile = Vec::new();
    while big < 128 {
        let text = ws_text(&mut ws, "queued packets");
        if text.starts_with("42[\"big\"") {
            big += 1;
        } else if text.starts_with("42[\"v\"") {
            volatile.push(text);
        }
    }
    assert!(
        volatile.is_empty(),
        "dropped volatile packets arrived: {volatile:?}"
    );

    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}
