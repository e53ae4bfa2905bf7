//! Interop tests against the official JavaScript `engine.io-client` (pinned in
//! `tests/js/package.json`), run under node.
//!
//! Each test starts a fresh `examples/engineio_echo` server and runs
//! `tests/js/engineio_interop.mjs` against it in one mode: HTTP long-polling
//! only, WebSocket only, polling upgraded to WebSocket, and a heartbeat run on
//! each transport. The script exchanges text and binary messages both ways and
//! checks every echo byte for byte and in order, then closes cleanly; it exits
//! non-zero with the reason on stderr on any failure.
//!
//! Requires `node` and `npm` on the PATH: the tests fail (they do not skip)
//! without them. `npm ci` runs once in `tests/js` if its `node_modules` is
//! missing. Set `DEBUG=engine*` to get the client's own trace in the output.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::ExampleServer;
use serde_json::Value;

/// How long one node run may take before it is killed and the test fails.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

/// Makes sure `tests/js/node_modules` holds the pinned client, running
/// `npm ci` once per test binary if it does not.
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
        if dir
            .join("node_modules")
            .join("engine.io-client")
            .join("package.json")
            .is_file()
        {
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
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

/// Runs `node engineio_interop.mjs <args>`, killing it after [`NODE_TIMEOUT`].
fn run_script(args: &[&str]) -> NodeRun {
    let start = Instant::now();
    let mut child = Command::new("node")
        .arg("engineio_interop.mjs")
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
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if start.elapsed() > NODE_TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for killed node");
        }
        thread::sleep(Duration::from_millis(20));
    };
    NodeRun {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
        elapsed: start.elapsed(),
        timed_out,
    }
}

/// Starts an echo server with `server_args`, runs the script in `mode` against
/// it and fails the test with node's output unless the script succeeded.
/// Returns the script's JSON summary.
fn interop(server_args: &[&str], mode: &str, extra: &[&str]) -> Value {
    ensure_node_modules();
    let mut server = ExampleServer::echo(server_args);
    let url = format!("http://{}", server.addr);
    let mut args = vec![mode, url.as_str()];
    args.extend_from_slice(extra);
    let run = run_script(&args);
    let server_alive = server.is_running();
    let report = format!(
        "node engineio_interop.mjs {} (server args {server_args:?}) -> {:?} after {:?}{}{}\n\
         --- node stdout ---\n{}\n--- node stderr ---\n{}",
        args.join(" "),
        run.status,
        run.elapsed,
        if run.timed_out {
            format!(", KILLED after the {NODE_TIMEOUT:?} timeout")
        } else {
            String::new()
        },
        if server_alive {
            ""
        } else {
            ", and the echo server is no longer running"
        },
        run.stdout.trim_end(),
        run.stderr.trim_end(),
    );
    assert!(!run.timed_out && run.status.success(), "{report}");
    assert!(server_alive, "{report}");
    let line = run
        .stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary line\n{report}"));
    let summary: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("bad JSON summary line ({e})\n{report}"));
    assert_eq!(summary["ok"], true, "{report}");
    println!("{mode} {extra:?}: {line} ({:?})", run.elapsed);
    summary
}

#[test]
fn polling_text_and_binary_both_ways() {
    let summary = interop(&[], "polling", &[]);
    assert_eq!(summary["transport"], "polling", "{summary}");
}

#[test]
fn websocket_only_text_and_binary_both_ways() {
    let summary = interop(&[], "websocket", &[]);
    assert_eq!(summary["transport"], "websocket", "{summary}");
}

#[test]
fn polling_then_upgrade_text_and_binary_both_ways() {
    let summary = interop(&[], "upgrade", &[]);
    assert_eq!(summary["openTransport"], "polling", "{summary}");
    assert_eq!(summary["upgraded"], true, "{summary}");
    assert_eq!(summary["transport"], "websocket", "{summary}");
}

const HEARTBEAT_SERVER: &[&str] = &["--ping-interval", "300", "--ping-timeout", "200"];

fn heartbeat(transport: &str) {
    let summary = interop(HEARTBEAT_SERVER, "heartbeat", &["2000", transport]);
    assert_eq!(
        (
            &summary["handshake"]["pingInterval"],
            &summary["handshake"]["pingTimeout"]
        ),
        (&Value::from(300), &Value::from(200)),
        "the handshake does not carry the configured heartbeat: {summary}"
    );
    assert_eq!(summary["transport"], transport, "{summary}");
    let pings = summary["pings"].as_u64().unwrap_or(0);
    assert!(pings >= 4, "only {pings} pings in 2 s: {summary}");
}

#[test]
fn heartbeat_answering_client_stays_on_polling() {
    heartbeat("polling");
}

#[test]
fn heartbeat_answering_client_stays_on_websocket() {
    heartbeat("websocket");
}
