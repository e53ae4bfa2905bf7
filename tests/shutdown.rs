//! Graceful stop: on Ctrl-C (SIGINT) or SIGTERM the server closes every session, delivers what it
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

#[test]
fn sigterm_stops_the_server_like_ctrl_c() {
    let mut server = ExampleServer::echo(&[]);
    let addr = server.addr;
    let sid = handshake(addr, Expected::DEFAULTS);
    let mut held = Conn::open(addr);
    held.send("GET", &poll_url(&sid), &[], b"");
    held.assert_no_response_within(Duration::from_millis(100), "GET before SIGTERM");

    server.terminate();

    let res = held.read_response();
    assert_eq!((res.status, res.text()), (200, "1".to_owned()));
    drop(held);
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("the server should exit after SIGTERM");
    assert!(
        status.success(),
        "a graceful stop exits successfully: {status:?}"
    );
}

/// The signals' numbers, the same on every Unix.
#[cfg(unix)]
const SIGINT: i32 = 2;
#[cfg(unix)]
const SIGTERM: i32 = 15;

/// Set in a child process of this test binary: what `signals_child` does there.
const CHILD_ROLE: &str = "SIOLOOP_SIGNALS_CHILD";

/// Runs `signals_child` in a child process of this test binary, as `role`, and returns how
/// it ended. The signal dispositions are the process's, so a test of them needs its own.
#[cfg(unix)]
fn run_child(role: &str) -> std::process::ExitStatus {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "signals_child",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ROLE, role)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run the child");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{role}: the child neither exited nor died within 10 s");
}

/// Sends `signal` (a `kill` name: INT, TERM) to this process.
#[cfg(unix)]
fn signal_self(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
}

/// Runs an Engine.IO server with `config` until a `ShutdownHandle` stops it.
#[cfg(unix)]
fn run_and_stop(config: sioloop::engine::Config) {
    let mut server =
        sioloop::engine::EngineServer::bind("127.0.0.1:0", config).expect("bind the server");
    let stop = server.shutdown_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.shutdown();
    });
    server.run().expect("run");
    stopper.join().expect("the stopping thread");
}

/// The child's side of the tests below (does nothing when run as a test of its own).
#[cfg(unix)]
#[test]
fn signals_child() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let config = sioloop::engine::Config::default();
    match role.as_str() {
        "sigterm after run" | "sigint after run" => {
            run_and_stop(config);
            signal_self(if role == "sigint after run" {
                "INT"
            } else {
                "TERM"
            });
        }
        "sigterm after run, ignored before" => {
            // SAFETY: setting a disposition to SIG_IGN has no handler to be unsafe in.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            run_and_stop(config);
            signal_self("TERM");
        }
        "sigterm during run, signals off" => {
            let config = config.path("/engine.io/").shutdown_on_signals(false);
            let mut server = sioloop::engine::EngineServer::bind("127.0.0.1:0", config)
                .expect("bind the server");
            let addr = server.local_addr();
            std::thread::spawn(move || {
                // Once the loop answers, it runs.
                handshake(addr, Expected::DEFAULTS);
                signal_self("TERM");
            });
            server.run().expect("run");
            // Stopped by the signal: it should not have come back here.
            return;
        }
        other => panic!("unknown role {other:?}"),
    }
    // Still alive: the signal did not do what it did before `run`.
    std::thread::sleep(Duration::from_millis(500));
}

#[cfg(unix)]
#[test]
fn sigterm_after_run_ends_the_process_as_before() {
    use std::os::unix::process::ExitStatusExt;
    let status = run_child("sigterm after run");
    assert_eq!(
        status.signal(),
        Some(SIGTERM),
        "after `run` returned, SIGTERM should kill the process by default: {status:?}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_after_run_ends_the_process_as_before() {
    use std::os::unix::process::ExitStatusExt;
    let status = run_child("sigint after run");
    assert_eq!(
        status.signal(),
        Some(SIGINT),
        "after `run` returned, SIGINT should kill the process by default: {status:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn an_ignored_sigterm_stays_ignored_after_run() {
    let status = run_child("sigterm after run, ignored before");
    assert!(
        status.success(),
        "SIGTERM was ignored before `run`, so it is after: {status:?}"
    );
}

#[cfg(unix)]
#[test]
fn with_signals_off_run_leaves_sigterm_alone() {
    use std::os::unix::process::ExitStatusExt;
    let status = run_child("sigterm during run, signals off");
    assert_eq!(
        status.signal(),
        Some(SIGTERM),
        "with shutdown_on_signals(false), SIGTERM should kill the process: {status:?}"
    );
}
