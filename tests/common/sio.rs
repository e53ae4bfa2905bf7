//! An in-process Socket.IO server on its own thread, and a raw WebSocket client for it: what
//! the tests that speak the wire protocol directly share.
#![allow(dead_code)]

use crate::raw::*;
use sioloop::engine::Config;
use sioloop::{Handle, Server};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The state the test servers keep: a tick counter and a log of what happened.
#[derive(Default)]
pub struct State {
    pub ticks: u32,
    pub log: Vec<String>,
}

pub type Started = (Handle<State>, std::net::SocketAddr, JoinHandle<State>);

/// Starts a server on its own thread (handlers are not `Send`, so it is built there, by
/// `setup`) and returns its handle, its address, and the thread, which yields the final
/// state.
pub fn start_with(
    config: Config,
    setup: impl FnOnce(&mut Server<State>) + Send + 'static,
) -> Started {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server =
            Server::bind("127.0.0.1:0", config, State::default()).expect("bind the server");
        setup(&mut server);
        tx.send((server.handle(), server.local_addr()))
            .expect("send handle");
        server.run().expect("run");
        std::mem::take(server.state())
    });
    let (handle, addr) = rx.recv().expect("server started");
    (handle, addr, thread)
}

/// The configuration the tests use (the raw WebSocket helpers speak to `/engine.io/`).
pub fn config() -> Config {
    Config::default().path("/engine.io/")
}

/// Opens a WebSocket session and joins `/`; returns it with the socket id.
pub fn connect(addr: std::net::SocketAddr) -> (Ws, String) {
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
pub fn wait_for(ws: &mut Ws, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let text = ws_text(ws, what);
        if pred(&text) {
            return text;
        }
    }
}

/// Opens a WebSocket session and joins `nsp` with an auth payload; returns it with the id.
pub fn connect_to(addr: std::net::SocketAddr, nsp: &str, auth: &str) -> (Ws, String) {
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    let prefix = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    ws_send_text(&mut ws, &format!("{prefix}{auth}"));
    let connect = ws_text(&mut ws, "CONNECT answer");
    let json = connect
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("CONNECT expected, got {connect}"));
    let value: serde_json::Value = serde_json::from_str(json).expect("CONNECT JSON");
    (ws, value["sid"].as_str().expect("sid").to_owned())
}
