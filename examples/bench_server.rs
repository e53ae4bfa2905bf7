//! The benchmark protocol served by sioloop, for `benches/run.py` (the same protocol is served
//! by `benches/node/server.mjs` and `benches/socketioxide/`). Namespace `/`, no auth:
//!
//! | event           | arguments          | what the server does                                  |
//! |-----------------|--------------------|-------------------------------------------------------|
//! | `join`          | `room`, ack        | joins the room, acks `"ok"`                           |
//! | `echo`          | `data`, ack        | acks with the same arguments (relayed, not parsed)    |
//! | `broadcast`     | `room`, `data`     | emits `bc` with `data` to every socket in the room    |
//! | `broadcast_bin` | `room`, `bytes`    | emits `bc_bin` with the bytes (a binary attachment)   |
//!
//! ```text
//! cargo run --release --example bench_server -- --port 3000 [--recovery]
//! ```
//!
//! `--recovery` turns on connection state recovery (default settings), so the harness can
//! measure what it costs (`sioloop-recovery` in `benches/run.py`).
//!
//! It is also the "minimal echo server" whose stripped release binary size BENCHMARKS.md
//! reports.
//!
//! `PING_INTERVAL_MS` and `PING_TIMEOUT_MS` in the environment set the heartbeat (default
//! 25 000 / 20 000 ms), so the idle-ping scenario sees several ping rounds in seconds; all
//! bench servers read the same two variables.

use serde_bytes::ByteBuf;
use serde_json::Value;
use sioloop::{Config, RecoveryConfig, Server};
use std::io::Write;
use std::time::Duration;

/// A millisecond count from the environment variable `name`, if set; a bad value is fatal.
fn env_ms(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            eprintln!("bench_server: {name}={value:?} is not a number of milliseconds");
            std::process::exit(2)
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut port = 3000u16;
    let mut recovery = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--recovery" => recovery = true,
            "--port" => match args.next().and_then(|v| v.parse().ok()) {
                Some(p) => port = p,
                None => {
                    eprintln!("bench_server: --port takes a port number");
                    std::process::exit(2)
                }
            },
            _ => {
                eprintln!("usage: bench_server [--port N] [--recovery]");
                std::process::exit(2)
            }
        }
    }

    // The idle scenario holds 10 000 connections from one host: lift the default caps
    // (10 000 in all, 1 000 per address), which are for servers facing a network.
    let mut config = Config::default().max_connections(100_000, 100_000);
    if let Some(interval) = env_ms("PING_INTERVAL_MS") {
        config = config.ping_interval(interval);
    }
    if let Some(timeout) = env_ms("PING_TIMEOUT_MS") {
        config = config.ping_timeout(timeout);
    }
    let mut server = Server::bind(("127.0.0.1", port), config, ())?;
    if recovery {
        server.connection_state_recovery(RecoveryConfig::default());
    }
    server
        .of("/")
        .on("join", |cx, room: String, ack| {
            cx.join(&room);
            if let Some(ack) = ack {
                cx.ack(ack, "ok");
            }
        })
        // A relay: the arguments go back as received, without being parsed.
        .on_raw("echo", |cx, event, ack| {
            if let Some(ack) = ack {
                cx.ack_event(ack, &event);
            }
        })
        // To the whole room, the sender included (`io.to(room)`, as the Node peer does).
        .on("broadcast", |cx, (room, data): (String, Value), _ack| {
            cx.of("/").to(room).emit("bc", &data);
        })
        .on(
            "broadcast_bin",
            |cx, (room, data): (String, ByteBuf), _ack| {
                cx.of("/").to(room).emit("bc_bin", &data);
            },
        );
    // The harness reads this line to know the server is up.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
