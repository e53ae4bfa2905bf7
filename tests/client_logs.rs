//! Log lines a client can cause at will (refused joins, events with invalid arguments,
//! refused connects, bad packets): at `debug` (invalid arguments at `warn`), a few per peer
//! address per second however many the client causes, with its text clipped and escaped.
//! The refusals are all counted.
//! (Its own test binary: it installs the process's logger.)

#[path = "common/log_capture.rs"]
mod log_capture;
#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::Stats;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn sio_lines() -> Vec<String> {
    log_capture::lines(|l| {
        l.contains("sioloop: refused") || l.contains("dropped") || l.contains("invalid arguments")
    })
}

#[test]
fn client_caused_lines_are_debug_clipped_and_rate_limited() {
    log_capture::install(log::LevelFilter::Debug);
    let (handle, addr, thread) = start_with(config(), |server| {
        server.of("/").on::<String>("join", |cx, room, ack| {
            let joined = cx.try_join(&room);
            if let Some(ack) = ack {
                cx.ack(ack, &joined);
            }
        });
        server.of("/").on::<u32>("count", |_, _, _| {});
    });
    let started = Instant::now();
    let (mut ws, _) = connect(addr);
    // A room name far over the limit, with a line break in it; arguments that do not
    // deserialize (serde's message would quote them whole); a namespace that does not exist.
    let room = format!("evil\\nroom{}", "x".repeat(5000));
    let junk = "y".repeat(5000);
    let mut refuse_each_once = |n: usize| {
        ws_send_text(&mut ws, &format!("42{n}[\"join\",\"{room}\"]"));
        assert_eq!(ws_text(&mut ws, "join ack"), format!("43{n}[false]"));
        ws_send_text(&mut ws, &format!("42[\"count\",\"{junk}\"]"));
        ws_send_text(&mut ws, &format!("40/{junk},"));
        assert!(ws_text(&mut ws, "CONNECT_ERROR").starts_with("44/yyy"));
    };
    refuse_each_once(0);
    let first: Vec<String> = sio_lines();
    assert_eq!(first.len(), 3, "one line for each: {first:#?}");
    for (line, what) in first.iter().zip(["a join", "event", "a connect"]) {
        assert!(line.contains(what), "{what}: {line}");
    }
    for n in 1..20 {
        refuse_each_once(n);
    }
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let _ = tx.send(cx.stats());
    });
    let stats: Stats = rx.recv_timeout(Duration::from_secs(5)).expect("stats");
    assert_eq!(
        (
            stats.joins_refused,
            stats.events_refused,
            stats.connects_refused
        ),
        (20, 20, 20)
    );
    let elapsed = started.elapsed().as_secs() as usize;
    let lines = sio_lines();
    assert!(!lines.is_empty(), "the refusals are logged");
    assert!(
        lines.len() <= 5 * (elapsed + 1),
        "60 refusals in {elapsed} s gave {} lines: {lines:#?}",
        lines.len()
    );
    for line in &lines {
        // Invalid arguments are a client misusing the application's API: `warn`, so the
        // operator sees them without `debug` (they were `debug` before, and easy to miss).
        let warn = line.contains("invalid arguments");
        assert!(
            line.starts_with(if warn { "WARN " } else { "DEBUG " }),
            "{line}"
        );
        assert!(line.len() < 400, "clipped: {} bytes: {line}", line.len());
        assert!(!line.contains('\n'), "escaped: {line}");
        assert!(line.contains("127.0.0.1:"), "names the peer: {line}");
    }
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}
