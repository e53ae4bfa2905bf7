//! The server the load tests of `tests/backpressure.rs` run, written as a new user would from
//! the README: namespace `/` with
//!
//! | event       | arguments      | what the server does                                 |
//! |-------------|----------------|------------------------------------------------------|
//! | `echo`      | any, ack       | acks with the same arguments (relayed, not parsed)   |
//! | `noop`      | any            | counts it                                            |
//! | `join`      | `room`, ack    | joins the room, acks `"ok"`                          |
//! | `broadcast` | `room`, `data` | emits `bc` with `data` to the room                   |
//!
//! and a timer every `--tick-ms` (default 1000) that emits `tick` with its sequence number to
//! the room `ticks`. Connection caps are raised; everything else is the default, unless
//! `--max-buffered-bytes` or `--max-payload` say otherwise.
//!
//! ```text
//! cargo run --release --example backpressure -- --port 3000
//! ```

use sioloop::{Config, Server};
use std::io::Write;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut port = 3000u16;
    let mut tick_ms = 1000u64;
    let mut config = Config::default().max_connections(100_000, 100_000);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
            eprintln!(
                "usage: backpressure [--port N] [--tick-ms MS] [--max-buffered-bytes N] [--max-payload N]"
            );
            std::process::exit(2)
        };
        match flag.as_str() {
            "--port" => port = value as u16,
            "--tick-ms" => tick_ms = value,
            "--max-buffered-bytes" => config = config.max_buffered_bytes(value as usize),
            "--max-payload" => config = config.max_payload(value as usize),
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2)
            }
        }
    }
    let mut server = Server::bind(("127.0.0.1", port), config, 0u64)?;
    server
        .of("/")
        .on_raw("echo", |cx, event, ack| {
            if let Some(ack) = ack {
                cx.ack_event(ack, &event);
            }
        })
        .on_raw("noop", |cx, _event, _ack| *cx.state() += 1)
        .on("join", |cx, room: String, ack| {
            cx.join(&room);
            if let Some(ack) = ack {
                cx.ack(ack, "ok");
            }
        })
        .on(
            "broadcast",
            |cx, (room, data): (String, serde_json::Value), _ack| {
                // The whole room, the sender included.
                cx.of("/").to(room).emit("bc", &data);
            },
        );
    let mut seq = 0u64;
    server.every(Duration::from_millis(tick_ms), move |cx| {
        seq += 1;
        cx.to("ticks").emit("tick", &seq);
    });
    // The tests read this line to know the server is up.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
