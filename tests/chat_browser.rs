//! End-to-end tests of the chat example (`examples/chat/`) in a real browser: headless
//! Chromium driven by `playwright-core` (pinned in `tests/js/package.json`) under node, with
//! `tests/js/chat_e2e.mjs`.
//!
//! Each test starts the example on a free port with a fresh database in the temp directory
//! and `--client-js` pointing at the npm copy of the official browser client (or
//! `--client-dir` at its `dist/`, which the server then serves itself with
//! `Config::serve_client`), so the page needs no network. The script checks the pages and exits non-zero with the reason on
//! stderr on any failure; on success it prints one JSON summary line.
//!
//! Requires `node`, `npm` and Chromium (`/usr/bin/chromium`, Debian's `chromium` package, or
//! the path in `$CHROMIUM`): the tests fail (they do not skip) without them. The screenshots
//! go to `target/chat-e2e.png` and `target/chat-e2e-signin.png`.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long one node run may take before it is killed. The script has its own, shorter,
/// overall timeout, so a stuck run normally reports where it was stuck.
const NODE_TIMEOUT: Duration = Duration::from_secs(120);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn js_dir() -> PathBuf {
    manifest_dir().join("tests").join("js")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Checks for node, Chromium and the npm packages (running `npm ci` once if they are
/// missing), and panics with what to install otherwise.
fn ensure_tools() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let result = READY.get_or_init(|| {
        let browser = chromium();
        if !browser.is_file() {
            return Err(format!(
                "the browser tests need Chromium at {} (on Debian: `apt-get install chromium`; \
                 or set CHROMIUM to its path)",
                browser.display()
            ));
        }
        match Command::new("node").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`node --version` failed: {:?}", out.status)),
            Err(e) => return Err(format!("the browser tests need `node` on the PATH: {e}")),
        }
        let modules = js_dir().join("node_modules");
        let installed = ["playwright-core", "socket.io-client"]
            .iter()
            .all(|p| modules.join(p).join("package.json").is_file());
        if installed {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .output()
            .map_err(|e| format!("the browser tests need `npm` on the PATH: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` in {} failed ({:?}):\n{}\n{}",
                js_dir().display(),
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

/// One browser at a time: the runs are timing-sensitive enough without competing for CPU.
fn one_browser_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A database file in the temp directory, removed (with its WAL files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sioloop-chat-{name}-{}-{nanos}.db",
            std::process::id()
        ));
        let db = TempDb(path);
        db.remove();
        db
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The npm copy of the client, which the examples serve with `--client-js`.
fn client_js() -> String {
    let client = js_dir()
        .join("node_modules")
        .join("socket.io-client")
        .join("dist")
        .join("socket.io.min.js");
    client.to_str().expect("a UTF-8 path").to_owned()
}

/// Starts the chat example on a free port with this database and the npm copy of the client.
fn start_chat(db: &TempDb) -> ExampleServer {
    ExampleServer::start("chat", &["--db", db.path(), "--client-js", &client_js()])
}

/// Runs `node chat_e2e.mjs <mode> <url> <args>`, kills it after [`NODE_TIMEOUT`], and
/// returns its summary line, or panics with everything it printed.
fn run_script(mode: &str, server: &ExampleServer, args: &[&str]) -> Value {
    let url = format!("http://{}/", server.addr);
    let command = format!("node chat_e2e.mjs {mode} {url} {}", args.join(" "));
    let start = Instant::now();
    let mut child = Command::new("node")
        .arg("chat_e2e.mjs")
        .args([mode, &url])
        .args(args)
        .env("CHROMIUM", chromium())
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    // Drain both pipes on their own threads so a chatty child never blocks.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if start.elapsed() > NODE_TIMEOUT {
            killed = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed node");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().expect("stdout"), err.join().expect("stderr"));
    let report = || {
        format!(
            "{command} -> {status:?} after {:?}{}\n--- node stdout ---\n{}\n--- node stderr ---\n{}",
            start.elapsed(),
            if killed {
                format!(", KILLED after {NODE_TIMEOUT:?}")
            } else {
                String::new()
            },
            stdout.trim_end(),
            stderr.trim_end()
        )
    };
    assert!(status.success() && !killed, "{}", report());
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary line:\n{}", report()));
    assert_eq!(summary["ok"], true, "{}", report());
    summary
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"))
}

#[test]
fn chat_in_a_real_browser() {
    ensure_tools();
    let _one = one_browser_at_a_time();
    let db = TempDb::new("e2e");
    let server = start_chat(&db);
    assert!(
        Path::new(db.path()).is_file(),
        "the database is created on the first run"
    );
    let shot = target_dir().join("chat-e2e.png");
    let _ = std::fs::create_dir_all(target_dir());
    let _ = std::fs::remove_file(&shot);
    let summary = run_script("main", &server, &[shot.to_str().expect("UTF-8 path")]);

    let refusals = &summary["refusals"];
    assert_eq!(refusals["(empty)"], "Please enter a name.", "{summary}");
    assert_eq!(
        refusals["bad name!"], "A name may only use letters, digits, - and _.",
        "{summary}"
    );
    // Two messages were in #general before carol joined.
    assert_eq!(summary["historyOnJoin"], 2, "{summary}");
    // The bucket holds 5 and refills one a second: of a burst of 12, at most 5 (and what
    // refilled meanwhile) get through.
    let delivered = summary["rateLimit"]["delivered"].as_u64().unwrap_or(0);
    assert!((1..=7).contains(&delivered), "{summary}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
}

#[test]
fn history_and_offline_messages_survive_a_restart() {
    ensure_tools();
    let _one = one_browser_at_a_time();
    let db = TempDb::new("restart");
    let mut server = start_chat(&db);
    run_script("persist-write", &server, &[]);
    // Ctrl-C: the server closes every socket, the database thread finishes its queue.
    server.interrupt();
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "the chat stops cleanly on Ctrl-C: {status:?}"
    );
    let server = start_chat(&db);
    run_script("persist-read", &server, &[]);
}

#[test]
fn without_its_client_script_a_page_says_why() {
    ensure_tools();
    let _one = one_browser_at_a_time();
    let db = TempDb::new("offline");
    // No --client-js: the page asks the CDN, which this machine (like an offline LAN)
    // cannot reach.
    let server = ExampleServer::start("chat", &["--db", db.path()]);
    let summary = run_script("offline", &server, &[]);
    assert!(
        summary["notice"]
            .as_str()
            .is_some_and(|n| n.contains("could not be loaded") && n.contains("--client-dir")),
        "{summary}"
    );
    drop(server);
    // --client-dir pointing where there is no bundle: the page says that, not the CDN.
    let nowhere = std::env::temp_dir().join("sioloop-chat-no-client-bundle-here");
    let server = ExampleServer::start(
        "chat",
        &[
            "--db",
            db.path(),
            "--client-dir",
            nowhere.to_str().expect("UTF-8"),
        ],
    );
    let summary = run_script("offline", &server, &["--client-dir"]);
    assert!(
        summary["notice"]
            .as_str()
            .is_some_and(|n| n.contains("has no socket.io.min.js")),
        "{summary}"
    );
}

#[test]
fn the_chat_serves_the_npm_client_with_client_dir() {
    ensure_tools();
    let _one = one_browser_at_a_time();
    let db = TempDb::new("client-dir");
    let dist = js_dir()
        .join("node_modules")
        .join("socket.io-client")
        .join("dist");
    let server = ExampleServer::start(
        "chat",
        &[
            "--db",
            db.path(),
            "--client-dir",
            dist.to_str().expect("UTF-8"),
        ],
    );
    // The engine's `serve_client` answers with the npm file, byte for byte.
    for name in ["socket.io.min.js", "socket.io.min.js.map"] {
        let res = raw::get(server.addr, &format!("/socket.io/{name}"));
        assert_eq!(res.status, 200, "{name}");
        let file = std::fs::read(dist.join(name)).expect("the npm file");
        assert!(
            res.body == file,
            "{name}: the served bytes are the npm file's"
        );
        assert!(res.header("etag").is_some(), "{name}: an ETag");
    }
    // And the page loads it from there and works: a sign-in and a message.
    run_script("persist-write", &server, &[]);
}

#[test]
fn the_lan_game_and_dashboard_pages_work_in_a_browser() {
    ensure_tools();
    let _one = one_browser_at_a_time();
    let game = ExampleServer::start("lan_game", &["--client-js", &client_js()]);
    let summary = run_script("lan-page", &game, &[]);
    assert!(
        summary["status"]
            .as_str()
            .is_some_and(|s| s.contains("against")),
        "{summary}"
    );
    let dashboard = ExampleServer::start("dashboard", &["--client-js", &client_js()]);
    let summary = run_script("dashboard-page", &dashboard, &[]);
    assert!(summary["sensors"].as_u64().unwrap_or(0) > 0, "{summary}");
}
