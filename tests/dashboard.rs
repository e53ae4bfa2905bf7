//! Viewers and admins on the official `socket.io-client` watch `examples/dashboard.rs`:
//! `tests/js/dashboard_viewer.mjs` checks what each receives (readings and their rate, the
//! admin-only stream, notices, refusals) and prints a JSON summary line.
//!
//! Requires `node` and `npm` on the PATH: the tests fail (they do not skip) without them.
//! `npm ci` runs once in `tests/js` if the client is missing.

mod common;

use common::ExampleServer;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long one node run may take before it is killed. The script has its own, shorter,
/// overall timeout, so a stuck run normally reports where it was stuck.
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Makes sure `tests/js/node_modules` holds the pinned client (`npm ci` once if not).
fn ensure_node_modules() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let result = READY.get_or_init(|| {
        let dir = js_dir();
        if dir
            .join("node_modules/socket.io-client/package.json")
            .is_file()
        {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("these tests need `node` and `npm` on the PATH: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`npm ci` in {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The reading rate and the admin token the tests start the dashboard with.
const RATE_HZ: &str = "20";
const TOKEN: &str = "test-token-3f9a";

/// Starts the dashboard, runs `node dashboard_viewer.mjs <mode> <url> <rate> <token>`
/// (killed after [`NODE_TIMEOUT`]) and returns its JSON summary; fails the test with node's
/// output unless the script succeeded and the server still runs.
fn watch(mode: &str) -> Value {
    ensure_node_modules();
    let mut server =
        ExampleServer::start("dashboard", &["--rate-hz", RATE_HZ, "--admin-token", TOKEN]);
    let url = format!("http://{}", server.addr);
    let start = Instant::now();
    let mut child = Command::new("node")
        .args(["dashboard_viewer.mjs", mode, &url, RATE_HZ, TOKEN])
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    // Drain both pipes on their own threads so a chatty child never blocks.
    let mut pipes = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .map(|mut pipe| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    })
    .into_iter();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if start.elapsed() > NODE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = pipes.next().expect("stdout").join().expect("stdout reader");
    let stderr = pipes.next().expect("stderr").join().expect("stderr reader");
    let running = server.is_running();
    let report = format!(
        "node dashboard_viewer.mjs {mode} {url} -> {} after {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        status.map_or("KILLED at the timeout".into(), |s| s.to_string()),
        start.elapsed(),
        if running {
            ""
        } else {
            " (the dashboard server is no longer running)"
        },
        stdout.trim_end(),
        stderr.trim_end()
    );
    assert!(status.is_some_and(|s| s.success()) && running, "{report}");
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary line\n{report}"));
    let summary: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad summary ({e})\n{report}"));
    assert_eq!(summary["ok"], true, "{report}");
    assert_eq!(summary["mode"], mode, "{report}");
    println!("{mode}: {line}");
    summary
}

#[test]
fn viewers_get_readings_at_the_rate_and_admins_also_get_the_admin_stream() {
    let summary = watch("stream");
    let per_second = summary["perSecond"].as_f64().unwrap_or(0.0);
    assert!((10.0..=30.0).contains(&per_second), "{summary}");
    assert_eq!(summary["stats"]["viewers"], 2, "{summary}");
    assert_eq!(summary["stats"]["admins"], 1, "{summary}");
}

#[test]
fn an_admin_notice_reaches_everyone_and_a_viewer_notice_is_refused() {
    watch("notice");
}

#[test]
fn bad_admin_tokens_and_bad_auth_are_refused_at_connect() {
    let summary = watch("auth");
    assert_eq!(
        summary["refusals"]["wrong token"], "invalid admin token",
        "{summary}"
    );
}
