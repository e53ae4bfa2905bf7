//! `Config::serve_client`: the Socket.IO client bundle served under the Engine.IO path as
//! Node's `serveClient` serves it, over raw HTTP against an in-process server. The bundle is
//! a few small files written to a temp directory, so these tests need no npm; the chat
//! example serving the real npm copy is checked in `tests/chat_browser.rs`.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::engine::Config;
use std::path::{Path, PathBuf};

/// A directory in the temp directory, removed with its files when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sioloop-serve-client-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).expect("write a client file");
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bundle that is not valid UTF-8, so the bytes are checked as bytes.
const BUNDLE: &[u8] = b"/*! fake socket.io client */ window.io = function () {}; // \xff\xfe";
const MAP: &[u8] = br#"{"version":3,"sources":["socket.io.js"],"mappings":"AAAA"}"#;

/// A server on `/engine.io/` (the helpers' path) with CORS for any origin, serving `dir`.
fn start(dir: &Path) -> Started {
    start_with(config().cors_any_origin().serve_client(dir), |_| {})
}

fn etag_of(res: &Response) -> String {
    let etag = res.header("etag").expect("an ETag").to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );
    etag
}

#[test]
fn the_bundle_is_served_with_its_bytes_and_headers() {
    let dir = TempDir::new("bytes");
    dir.write("socket.io.min.js", BUNDLE);
    dir.write("socket.io.min.js.map", MAP);
    let (_handle, addr, _thread) = start(dir.path());
    let mut conn = Conn::open(addr);
    let origin = [("Origin", "http://example.com")];
    let res = conn.request("GET", "/engine.io/socket.io.min.js", &origin, b"");
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, BUNDLE);
    assert_eq!(
        res.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(res.header("cache-control"), Some("public, max-age=0"));
    assert_eq!(
        res.header("content-length"),
        Some(BUNDLE.len().to_string().as_str())
    );
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("*"),
        "CORS applies as to other engine responses: {res:?}"
    );
    let etag = etag_of(&res);

    // The query string is ignored (a cache-busting `?v=` is common), on the same
    // keep-alive connection.
    let res = conn.request("GET", "/engine.io/socket.io.min.js?v=4.8.3&x", &[], b"");
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
    assert_eq!(etag_of(&res), etag);

    // The map is JSON, with its own ETag.
    let res = conn.request("GET", "/engine.io/socket.io.min.js.map", &[], b"");
    assert_eq!((res.status, res.body.as_slice()), (200, MAP));
    assert_eq!(
        res.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_ne!(etag_of(&res), etag);

    // HEAD: the same head, no body (the next answer on the connection parses cleanly).
    let res = conn.request("HEAD", "/engine.io/socket.io.min.js", &[], b"");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-length"),
        Some(BUNDLE.len().to_string().as_str())
    );
    assert_eq!(etag_of(&res), etag);
    let res = conn.request("GET", "/engine.io/socket.io.min.js", &[], b"");
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
}

#[test]
fn a_matching_if_none_match_gets_304_strong_or_weak() {
    let dir = TempDir::new("etag");
    dir.write("socket.io.js", BUNDLE);
    let (_handle, addr, _thread) = start(dir.path());
    let mut conn = Conn::open(addr);
    let etag = etag_of(&conn.request("GET", "/engine.io/socket.io.js", &[], b""));
    let weak = format!("W/{etag}");
    for candidate in [etag.as_str(), weak.as_str()] {
        let res = conn.request(
            "GET",
            "/engine.io/socket.io.js",
            &[("If-None-Match", candidate)],
            b"",
        );
        assert_eq!(res.status, 304, "If-None-Match: {candidate}: {res:?}");
        assert!(res.body.is_empty());
        assert_eq!(etag_of(&res), etag);
    }
    // Another tag: the file again.
    let res = conn.request(
        "GET",
        "/engine.io/socket.io.js",
        &[("If-None-Match", "\"4.8.3\"")],
        b"",
    );
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
    // The 304s sent no body: the connection is still in step.
    let res = conn.request("GET", "/engine.io/socket.io.js", &[], b"");
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
}

#[test]
fn the_etag_changes_when_the_file_does() {
    let dir = TempDir::new("change");
    dir.write("socket.io.min.js", BUNDLE);
    let (_handle, addr, _thread) = start(dir.path());
    let before = etag_of(&get(addr, "/engine.io/socket.io.min.js"));

    let updated = b"/*! socket.io client, next version */ window.io = 2;";
    dir.write("socket.io.min.js", updated);
    let (_handle, addr, _thread) = start(dir.path());
    let res = request(
        addr,
        "GET",
        "/engine.io/socket.io.min.js",
        &[("If-None-Match", before.as_str())],
        b"",
    );
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &updated[..]),
        "the old ETag no longer matches"
    );
    assert_ne!(etag_of(&res), before);
}

#[test]
fn other_names_and_methods_still_go_to_engine_io() {
    let dir = TempDir::new("fallthrough");
    dir.write("socket.io.min.js", BUNDLE);
    // Not one of the eight names: never served, even though the file is there.
    dir.write("app.js", b"window.app = 1;");
    let (_handle, addr, _thread) = start(dir.path());
    for target in [
        "/engine.io/app.js",
        // One of the eight names, but not in the directory.
        "/engine.io/socket.io.esm.min.js",
        "/engine.io/socket.io.min.js/",
        "/engine.io/sub/socket.io.min.js",
    ] {
        let res = get(addr, target);
        assert_error(&res, 0, "Transport unknown", target);
    }
    let res = post(addr, "/engine.io/socket.io.min.js", b"x");
    assert_error(&res, 0, "Transport unknown", "a POST of the bundle");
    // Engine.IO itself is untouched.
    handshake(addr, Expected::DEFAULTS);
}

#[test]
fn a_missing_or_oversized_bundle_does_not_stop_the_server() {
    let missing = std::env::temp_dir().join("sioloop-serve-client-no-such-directory");
    let (_handle, addr, _thread) = start(&missing);
    handshake(addr, Expected::DEFAULTS);
    let res = get(addr, "/engine.io/socket.io.min.js");
    assert_error(&res, 0, "Transport unknown", "no directory");

    // A file past 8 MiB is not a client bundle: skipped; the others are served.
    let dir = TempDir::new("oversized");
    dir.write("socket.io.min.js", BUNDLE);
    dir.write("socket.io.js", &vec![b' '; 8 * 1024 * 1024 + 1]);
    let (_handle, addr, _thread) = start(dir.path());
    let res = get(addr, "/engine.io/socket.io.js");
    assert_error(&res, 0, "Transport unknown", "an oversized file");
    let res = get(addr, "/engine.io/socket.io.min.js");
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
}

#[test]
fn the_default_path_serves_socket_io_min_js() {
    let dir = TempDir::new("default-path");
    dir.write("socket.io.min.js", BUNDLE);
    let (_handle, addr, _thread) = start_with(Config::default().serve_client(dir.path()), |_| {});
    let res = get(addr, "/socket.io/socket.io.min.js");
    assert_eq!((res.status, res.body.as_slice()), (200, BUNDLE));
    assert_eq!(
        res.header("access-control-allow-origin"),
        None,
        "no CORS headers without a CORS policy"
    );
    // Without `serve_client`, the name is Engine.IO's, as before.
    let (_handle, addr, _thread) = start_with(Config::default(), |_| {});
    let res = get(addr, "/socket.io/socket.io.min.js");
    assert_error(&res, 0, "Transport unknown", "serve_client off");
}

/// On the in-memory network (files read by `Server::in_memory` too): pipelined requests
/// are answered in order, and a client that keeps asking without reading is closed once
/// more than `max_queued_bytes` waits for it, as a slow WebSocket client is.
#[test]
fn pipelined_requests_are_answered_and_one_that_never_reads_is_bounded() {
    let dir = TempDir::new("pipelined");
    let bundle = vec![b'x'; 100 * 1024];
    dir.write("socket.io.min.js", &bundle);
    let config = Config::default()
        .serve_client(dir.path())
        .max_queued_bytes(64 * 1024);
    let (mut server, net) = sioloop::Server::in_memory(config, ());
    let get = b"GET /socket.io/socket.io.min.js HTTP/1.1\r\nHost: x\r\n\r\n";

    let reader = net.connect();
    net.send(reader, &[&get[..], &get[..], &get[..]].concat());
    for _ in 0..4 {
        server.turn().expect("turn");
    }
    let out = net.take_output(reader);
    let head_len = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        out.len(),
        3 * (head_len + bundle.len()),
        "three whole answers"
    );
    assert!(!net.server_closed(reader));

    // The client reads 4 KiB and nothing more: the first answer does not fit, so the
    // second request finds more than 64 KiB unread and the connection is closed.
    let stuck = net.connect();
    net.set_window(stuck, 4096);
    net.send(stuck, &[&get[..], &get[..], &get[..]].concat());
    for _ in 0..4 {
        server.turn().expect("turn");
    }
    assert!(
        net.server_closed(stuck) || net.server_reset(stuck),
        "a client that never reads is not answered without bound"
    );
}
