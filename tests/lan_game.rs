//! Bots built on the official `socket.io-client` play `examples/lan_game.rs`:
//! `tests/js/lan_game_bots.mjs` checks what each player receives (matches, ticks, acked
//! inputs, the states that follow, a player leaving mid-match, a player cut off at the TCP
//! level coming back to its match or not in time) and prints a JSON summary line.
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

/// Starts the game with `server_args`, runs `node lan_game_bots.mjs <mode> <url>` (killed
/// after [`NODE_TIMEOUT`]) and returns its JSON summary; fails the test with node's output
/// unless the bots succeeded and the server still runs.
fn play(mode: &str, server_args: &[&str]) -> Value {
    ensure_node_modules();
    let mut server = ExampleServer::start("lan_game", server_args);
    let url = format!("http://{}", server.addr);
    let start = Instant::now();
    let mut child = Command::new("node")
        .args(["lan_game_bots.mjs", mode, &url])
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
        "node lan_game_bots.mjs {mode} {url} -> {} after {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        status.map_or("KILLED at the timeout".into(), |s| s.to_string()),
        start.elapsed(),
        if running {
            ""
        } else {
            " (the lan_game server is no longer running)"
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
fn four_bots_make_two_matches_that_tick_take_inputs_and_survive_a_player_leaving() {
    let summary = play("play", &[]);
    // The script checked these already; the summary shows what it measured.
    for rate in summary["rates"].as_array().expect("rates") {
        let received = rate["received"].as_f64().unwrap_or(0.0);
        assert!((15.0..=45.0).contains(&received), "{summary}");
    }
    for steered in summary["steered"].as_array().expect("steered") {
        assert!(steered["after"].as_u64().unwrap_or(0) >= 10, "{summary}");
    }
    assert_eq!(summary["dropped"]["reason"], "opponent_left", "{summary}");
    assert_eq!(
        summary["dropped"]["detail"], "client namespace disconnect",
        "{summary}"
    );
}

#[test]
fn a_player_cut_off_mid_match_comes_back_to_the_same_match() {
    let summary = play("resume", &[]);
    assert!(
        summary["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{summary}"
    );
    assert!(summary["away"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(
        summary["acked"].as_u64().unwrap_or(0) > summary["resume"].as_u64().unwrap_or(u64::MAX),
        "{summary}"
    );
}

#[test]
fn a_player_cut_off_past_the_recovery_window_ends_the_match() {
    let summary = play("expire", &["--recovery-seconds", "2"]);
    assert_eq!(summary["end"]["reason"], "opponent_left", "{summary}");
    assert!(summary["endMs"].as_u64().unwrap_or(0) >= 1900, "{summary}");
}

#[test]
fn a_match_ends_when_its_time_is_up_and_its_players_can_queue_again() {
    play("time_up", &["--match-seconds", "1"]);
}
