//! An Engine.IO echo server: every message comes back on the same session, text as text and
//! binary as binary. Engine.IO clients connect to `http://127.0.0.1:PORT/engine.io/`.
//!
//! ```text
//! cargo run --release --example engineio_echo -- --port 3000 --ping-interval 300 --ping-timeout 200
//! ```
//!
//! `--metrics /metrics` serves the counters as Prometheus text.

use sioloop::engine::{Config, EngineServer};
use sioloop::protocol::http::Response;
use std::io::Write;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut port = 3000u16;
    let mut host = String::from("127.0.0.1");
    let mut config = Config::default().path("/engine.io/").cors_any_origin();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = || -> u64 {
            value.parse().unwrap_or_else(|_| {
                eprintln!("{flag} takes a number, got {value:?}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--port" => port = number() as u16,
            "--host" => host = value.clone(),
            "--ping-interval" => config = config.ping_interval(Duration::from_millis(number())),
            "--ping-timeout" => config = config.ping_timeout(Duration::from_millis(number())),
            "--max-payload" => config = config.max_payload(number() as usize),
            "--metrics" => config = config.metrics_path(&value),
            _ => {
                eprintln!(
                    "usage: engineio_echo [--host H] [--port N] [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES] [--metrics PATH]"
                );
                std::process::exit(2)
            }
        }
    }

    let mut server = EngineServer::bind((host.as_str(), port), config)?;
    server.on_message(|cx, message| {
        cx.send(message);
    });
    // Anything outside /engine.io/ goes to the application: a page at `/`, 404 elsewhere.
    server.on_http(|request| {
        (request.path == "/").then(|| {
            Response::new(
                200,
                "text/html; charset=utf-8",
                "<!doctype html><title>engineio_echo</title><p>Engine.IO echo server at /engine.io/</p>",
            )
        })
    });
    // Tests read this line to find the port when started with `--port 0`.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
