//! Interop tests against the official JavaScript `socket.io-client` (pinned in
//! `tests/js/package.json`), run under node.
//!
//! Each test starts a fresh `examples/sio_testbed` server and runs
//! `tests/js/socketio_interop.mjs` against it in one mode (the script's header lists them).
//! The script checks every payload and every recipient exactly and exits non-zero with the
//! reason on stderr on any failure; on success it prints one JSON summary line, which the
//! tests check again where it carries something worth checking.
//!
//! Requires `node` and `npm` on the PATH: the tests fail (they do not skip) without them.
//! `npm ci` runs once in `tests/js` if the client is missing. Set
//! `DEBUG=socket.io-client*,engine.io-client*` to get the client's own trace in the output.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::ExampleServer;
use serde_json::Value;

/// How long one node run may take before it is killed and the test fails. The script has
/// its own, shorter, overall timeout, so a stuck run normally reports where it was stuck.
const NODE_TIMEOUT: Duration = Duration::from_secs(45);
/// The same for the 1000-client run.
const FANOUT_NODE_TIMEOUT: Duration = Duration::from_secs(120);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

/// Makes sure `tests/js/node_modules` holds the pinned client, running `npm ci` once per
/// test binary if it does not.
fn ensure_node_modules() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let result = READY.get_or_init(|| {
        let dir = js_dir();
        match Command::new("node").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`node --version` failed: {:?}", out.status)),
            Err(e) => {
                return Err(format!(
                    "these interop tests need `node` (and `npm`) on the PATH: {e}"
                ));
            }
        }
        let installed = |package: &str| {
            dir.join("node_modules")
                .join(package)
                .join("package.json")
                .is_file()
        };
        // `socket.io-client-v2` is `socket.io-client@2` under an npm alias.
        if installed("socket.io-client") && installed("socket.io-client-v2") {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| {
                format!("these interop tests need `npm` on the PATH to install tests/js: {e}")
            })?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` in {} failed ({:?}):\n{}\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// What one node run produced.
struct NodeRun {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: Option<Duration>,
}

impl NodeRun {
    /// Everything about the run, for a failure message.
    fn report(&self) -> String {
        format!(
            "{} -> {:?} after {:?}{}\n--- node stdout ---\n{}\n--- node stderr ---\n{}",
            self.command,
            self.status,
            self.elapsed,
            self.timed_out
                .map(|t| format!(", KILLED after the {t:?} timeout"))
                .unwrap_or_default(),
            self.stdout.trim_end(),
            self.stderr.trim_end(),
        )
    }
}

/// Runs `node socketio_interop.mjs <args>`, killing it after `timeout`.
fn run_script(args: &[&str], timeout: Duration) -> NodeRun {
    run_node("socketio_interop.mjs", args, timeout)
}

/// Runs `node <script> <args>` in `tests/js`, killing it after `timeout`.
fn run_node(script: &str, args: &[&str], timeout: Duration) -> NodeRun {
    let start = Instant::now();
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    // Drain both pipes on their own threads so a chatty child never blocks.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut timed_out = None;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = Some(timeout);
            let _ = child.kill();
            break child.wait().expect("wait for killed node");
        }
        thread::sleep(Duration::from_millis(20));
    };
    NodeRun {
        command: format!("node {script} {}", args.join(" ")),
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
        elapsed: start.elapsed(),
        timed_out,
    }
}

/// A testbed server and the node runs made against it.
struct Testbed {
    server: ExampleServer,
    url: String,
}

impl Testbed {
    fn start() -> Testbed {
        ensure_node_modules();
        let server = ExampleServer::start("sio_testbed", &[]);
        let url = format!("http://{}", server.addr);
        Testbed { server, url }
    }

    /// Runs the script in `mode` and fails the test with node's output unless it succeeded
    /// and the server still runs. Returns the script's JSON summary.
    fn run(&mut self, mode: &str, extra: &[&str], timeout: Duration) -> Value {
        let mut args = vec![mode, self.url.as_str()];
        args.extend_from_slice(extra);
        let run = run_script(&args, timeout);
        let summary = run.summary(&mut self.server);
        assert_eq!(summary["mode"], mode, "{summary}");
        println!("{mode} {extra:?}: {summary} ({:?})", run.elapsed);
        summary
    }
}

impl NodeRun {
    /// The script's JSON summary line, after checking that the run succeeded and that the
    /// server still runs (the test fails with everything node printed otherwise).
    fn summary(&self, server: &mut ExampleServer) -> Value {
        let mut report = self.report();
        if !server.is_running() {
            report.push_str("\n--- the server is no longer running ---");
        }
        assert!(
            self.timed_out.is_none() && self.status.success() && server.is_running(),
            "{report}"
        );
        let line = self
            .stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON summary line\n{report}"));
        let summary: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad JSON summary line ({e})\n{report}"));
        assert_eq!(summary["ok"], true, "{report}");
        summary
    }
}

/// One mode against a fresh testbed.
fn interop(mode: &str, extra: &[&str]) -> Value {
    Testbed::start().run(mode, extra, NODE_TIMEOUT)
}

/// A Socket.IO id: 20 characters of url-safe base64.
fn assert_socket_id(id: &Value, summary: &Value) {
    let id = id.as_str().unwrap_or_else(|| panic!("no id: {summary}"));
    assert_eq!(id.len(), 20, "{summary}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{summary}"
    );
}

#[test]
fn connect_with_auth_payload() {
    let summary = interop("auth", &[]);
    assert_socket_id(&summary["id"], &summary);
    assert_ne!(summary["id"], summary["engineId"], "{summary}");
    assert_eq!(summary["user"], "alice", "{summary}");
    let id = summary["id"].as_str().unwrap_or_default();
    let mut rooms = vec![id.to_owned(), "user:alice".to_owned()];
    rooms.sort();
    assert_eq!(summary["rooms"], serde_json::json!(rooms), "{summary}");
}

#[test]
fn middleware_refusal_is_a_connect_error_with_message_and_data() {
    let summary = interop("refused", &[]);
    let refusals = summary["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 3, "{summary}");
    for r in refusals {
        assert_eq!(r["message"], "not authorized", "{summary}");
        assert_eq!(
            r["data"],
            serde_json::json!({"code": "E_AUTH"}),
            "{summary}"
        );
    }
}

#[test]
fn namespaces_share_one_engineio_connection() {
    let summary = interop("namespaces", &[]);
    for nsp in ["/", "/admin", "/game-7"] {
        assert_socket_id(&summary["sockets"][nsp], &summary);
    }
    assert_eq!(
        summary["refusals"]["/nope"], "Invalid namespace",
        "{summary}"
    );
    assert_eq!(
        summary["refusals"]["/game-x"], "Invalid namespace",
        "{summary}"
    );
}

#[test]
fn socket_to_on_any_ack_auth_and_disconnecting_as_in_node() {
    let summary = interop("node_semantics", &[]);
    assert_socket_id(&summary["id"], &summary);
}

#[test]
fn events_both_ways() {
    let summary = interop("events", &[]);
    assert_eq!(summary["echoed"], 57, "{summary}");
}

#[test]
fn acks_both_ways_and_ack_timeouts() {
    let summary = interop("acks", &[]);
    let waited = summary["serverTimeoutMs"].as_u64().unwrap_or(0);
    assert!(waited >= 250, "{summary}");
}

#[test]
fn binary_both_ways_nested_in_objects_and_arrays() {
    interop("binary", &[]);
}

#[test]
fn mismatched_arguments_answer_the_ack_with_an_error_and_args_takes_all() {
    let summary = interop("typed_args", &[]);
    assert_eq!(
        summary["wrong"]["error"], "invalid arguments: invalid type: string \"x\", expected u32",
        "{summary}"
    );
}

#[test]
fn a_relay_under_another_name_arrives_intact_with_binary() {
    let summary = interop("relay", &[]);
    assert_eq!(summary["relayed"], 3, "{summary}");
}

#[test]
fn rooms_and_broadcasts_with_except_and_except_sender() {
    let summary = interop("rooms", &[]);
    assert_eq!(
        summary["steps"].as_array().map(Vec::len),
        Some(13),
        "{summary}"
    );
}

#[test]
fn user_room_reaches_every_socket_of_a_user() {
    let summary = interop("user", &[]);
    let ids = summary["ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 3, "{summary}");
    for id in ids {
        assert_socket_id(id, &summary);
    }
}

#[test]
fn server_disconnect_is_io_server_disconnect_on_the_client() {
    let summary = interop("kick", &[]);
    assert_eq!(summary["clientReason"], "io server disconnect", "{summary}");
}

#[test]
fn client_disconnect_is_client_namespace_disconnect_on_the_server() {
    interop("client_disconnect", &[]);
}

#[test]
fn client_closing_its_transport_is_transport_close_on_the_server() {
    interop("transport_close", &[]);
}

#[test]
fn client_process_exit_is_transport_close_on_the_server() {
    let mut testbed = Testbed::start();
    let gone = testbed.run("vanish", &[], NODE_TIMEOUT);
    let id = gone["id"]
        .as_str()
        .expect("the vanished socket's id")
        .to_owned();
    let summary = testbed.run("await_log", &[&id, "transport close"], NODE_TIMEOUT);
    assert_eq!(summary["entry"]["reason"], "transport close", "{summary}");
}

/// What the server logs for the socket whose connection `close_connection` dropped: the
/// reference server says `forced close` for `socket.conn.close()`.
const DROPPED_REASON: &str = "forced close";

fn reconnect(transport: &str) {
    let summary = interop("reconnect", &[transport]);
    assert_socket_id(&summary["oldId"], &summary);
    assert_socket_id(&summary["newId"], &summary);
    assert_ne!(summary["oldId"], summary["newId"], "{summary}");
    let expected = if transport == "polling" {
        "polling"
    } else {
        "websocket"
    };
    assert_eq!(summary["oldTransport"], expected, "{summary}");
    assert_eq!(summary["serverReason"], DROPPED_REASON, "{summary}");
}

#[test]
fn client_reconnects_with_a_new_id_after_the_server_drops_its_websocket() {
    reconnect("upgraded");
}

#[test]
fn client_reconnects_with_a_new_id_after_the_server_drops_its_polling_transport() {
    reconnect("polling");
}

/// The server drops a connection while the client's WebSocket upgrade probe is in flight.
/// Like the reference server, sioloop lets the upgrade finish and then closes the new
/// transport, so the client reconnects at once. (Regression: it used to close the probe
/// after releasing the held GET, leaving the client's polling paused with no close to see,
/// hanging until its heartbeat timeout.)
#[test]
fn client_reconnects_after_a_drop_during_the_upgrade_probe() {
    let summary = interop("drop_during_upgrade", &["20"]);
    assert_eq!(summary["rounds"], 20, "{summary}");
}

#[test]
fn polling_only_client() {
    let summary = interop("transport", &["polling"]);
    assert_eq!(summary["transport"], "polling", "{summary}");
}

#[test]
fn websocket_only_client() {
    let summary = interop("transport", &["websocket"]);
    assert_eq!(summary["transport"], "websocket", "{summary}");
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

#[test]
fn thousand_clients_each_receive_one_broadcast_once() {
    const CLIENTS: u64 = 1000;
    // The server and node each hold one descriptor per client, plus their own.
    if let Some(limit) = open_files_limit() {
        assert!(
            limit >= CLIENTS + 200,
            "the open files limit ({limit}) is too low for {CLIENTS} clients: raise `ulimit -n`"
        );
    }
    let n = CLIENTS.to_string();
    let summary = Testbed::start().run("fanout", &[&n], FANOUT_NODE_TIMEOUT);
    assert_eq!(summary["clients"], CLIENTS, "{summary}");
}

/// Connection state recovery (`tests/js/recovery.mjs`): a client cut off at the TCP level
/// comes back within the window as the same socket, in the same rooms, with the same data,
/// and gets every tick it missed exactly once and in order, then new ones; a clean
/// disconnect, and a return after the window, are new sockets.
fn recovery(transport: &str) {
    ensure_node_modules();
    let window_ms = "3500";
    // A short heartbeat, so the server sees a dead polling client (one whose held GET was
    // not on the wire when the cut came) well before it reconnects, 1.5 s later.
    let mut server = ExampleServer::start(
        "sio_testbed",
        &[
            "--recovery-ms",
            window_ms,
            "--ping-interval",
            "250",
            "--ping-timeout",
            "250",
        ],
    );
    let url = format!("http://{}", server.addr);
    let run = run_node("recovery.mjs", &[transport, &url, window_ms], NODE_TIMEOUT);
    let summary = run.summary(&mut server);
    assert_socket_id(&summary["id"], &summary);
    assert_eq!(summary["recoveredId"], summary["id"], "{summary}");
    assert!(summary["replayed"].as_u64().unwrap_or(0) > 20, "{summary}");
    assert_ne!(summary["lateId"], summary["cleanId"], "{summary}");
    println!("recovery {transport}: {summary}");
}

#[test]
fn recovery_over_websocket() {
    recovery("websocket");
}

#[test]
fn recovery_over_polling() {
    recovery("polling");
}

#[test]
fn recovery_after_the_upgrade() {
    recovery("upgrade");
}

/// `socket.io-client@2` (Engine.IO 3, Socket.IO protocol 4) against the testbed started
/// with `--allow-eio3` (`tests/js/eio3_interop.mjs`, whose header lists the modes). Returns
/// the script's JSON summary.
fn eio3(mode: &str, extra: &[&str], server_args: &[&str]) -> Value {
    ensure_node_modules();
    let mut args = vec!["--allow-eio3"];
    args.extend_from_slice(server_args);
    let mut server = ExampleServer::start("sio_testbed", &args);
    let url = format!("http://{}", server.addr);
    let mut node_args = vec![mode, url.as_str()];
    node_args.extend_from_slice(extra);
    let run = run_node("eio3_interop.mjs", &node_args, NODE_TIMEOUT);
    let mut report = run.report();
    if !server.is_running() {
        report.push_str("\n--- the sio_testbed server is no longer running ---");
    }
    assert!(
        run.timed_out.is_none() && run.status.success() && server.is_running(),
        "{report}"
    );
    let line = run
        .stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary line\n{report}"));
    let summary: Value = serde_json::from_str(line).expect("a JSON summary");
    assert_eq!(summary["ok"], true, "{report}");
    println!("eio3 {mode} {extra:?}: {line} ({:?})", run.elapsed);
    summary
}

/// Events, acks and binary both ways, rooms and broadcasts, a namespace with auth in its
/// query and a refused one, with a v2 client on one transport; ids are Node's for v2
/// clients (the Engine.IO id, `/admin#<id>`).
fn eio3_exchange(transport: &str) -> Value {
    let summary = eio3("exchange", &[transport], &[]);
    assert_eq!(summary["id"], summary["engineId"], "{summary}");
    let engine_id = summary["engineId"].as_str().unwrap_or_default();
    assert_eq!(
        summary["adminId"],
        format!("/admin#{engine_id}"),
        "{summary}"
    );
    summary
}

#[test]
fn eio3_client_over_polling() {
    let summary = eio3_exchange("polling");
    assert_eq!(summary["transport"], "polling", "{summary}");
}

#[test]
fn eio3_client_over_polling_with_base64() {
    let summary = eio3_exchange("polling-b64");
    assert_eq!(summary["transport"], "polling", "{summary}");
}

#[test]
fn eio3_client_over_websocket() {
    let summary = eio3_exchange("websocket");
    assert_eq!(summary["transport"], "websocket", "{summary}");
}

#[test]
fn eio3_client_upgrades_from_polling() {
    let summary = eio3_exchange("default");
    assert_eq!(summary["upgraded"], "websocket", "{summary}");
}

/// Protocol 3's heartbeat runs from the client: with a 300 ms interval the client's pings
/// are answered and the session lives on, over polling and WebSocket.
#[test]
fn eio3_client_heartbeat() {
    let summary = eio3(
        "heartbeat",
        &[],
        &["--ping-interval", "300", "--ping-timeout", "200"],
    );
    for transport in ["polling", "websocket"] {
        assert!(
            summary["pongs"][transport].as_u64().unwrap_or(0) >= 3,
            "{summary}"
        );
    }
}
