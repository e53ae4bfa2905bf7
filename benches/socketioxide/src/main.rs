//! The benchmark protocol (see `examples/bench_server.rs` in the repo root) served by
//! socketioxide on axum, for `benches/run.py`: namespace `/`, no auth, path `/socket.io/`,
//! Engine.IO defaults otherwise.
//!
//! ```text
//! cargo run --release -- --port 3000
//! ```
//!
//! `PING_INTERVAL_MS` and `PING_TIMEOUT_MS` in the environment set the heartbeat (default
//! 25 000 / 20 000 ms), as for the other bench servers.

use bytes::Bytes;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use std::io::Write;
use std::time::Duration;

/// A millisecond count from the environment variable `name`, if set; a bad value is fatal.
fn env_ms(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            eprintln!("socketioxide-bench: {name}={value:?} is not a number of milliseconds");
            std::process::exit(2)
        }
    }
}

async fn on_connect(s: SocketRef) {
    s.on(
        "join",
        async |s: SocketRef, Data::<String>(room), ack: AckSender| {
            s.join(room);
            ack.send("ok").ok();
        },
    );
    // socketioxide has no raw-argument extractor, so the data is parsed into a `Value` and
    // serialized again: the idiomatic way to relay arbitrary JSON.
    s.on("echo", async |Data::<Value>(data), ack: AckSender| {
        ack.send(&data).ok();
    });
    // `io.to`, not `s.to`: like socket.io, `s.to(room)` would leave out the sender, and the
    // protocol delivers to every socket in the room.
    s.on(
        "broadcast",
        async |io: SocketIo, Data::<(String, Value)>((room, data))| {
            io.to(room).emit("bc", &data).await.ok();
        },
    );
    // `Bytes` (with the `serde` feature) is socketioxide's binary type: received from an
    // attachment and emitted as one, not as an array of numbers.
    s.on(
        "broadcast_bin",
        async |io: SocketIo, Data::<(String, Bytes)>((room, data))| {
            io.to(room).emit("bc_bin", &data).await.ok();
        },
    );
}

fn main() -> std::io::Result<()> {
    let mut port = 3000u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--port", Some(p)) => port = p,
            _ => {
                eprintln!("usage: socketioxide-bench [--port N]");
                std::process::exit(2)
            }
        }
    }

    // A current-thread runtime: run.py pins every server to one core with taskset, where a
    // multi-thread runtime would only add cross-thread wakeups for the same CPU time.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut builder = SocketIo::builder();
        if let Some(interval) = env_ms("PING_INTERVAL_MS") {
            builder = builder.ping_interval(interval);
        }
        if let Some(timeout) = env_ms("PING_TIMEOUT_MS") {
            builder = builder.ping_timeout(timeout);
        }
        let (layer, io) = builder
            // Per-socket queue of outgoing packets (default 128): with 128 broadcasts in
            // flight to the same sockets the queue fills and emits fail, i.e. deliveries are
            // silently dropped. 4096 keeps the fan-out scenarios lossless; all else default.
            .max_buffer_size(4096)
            .build_layer();
        io.ns("/", on_connect);
        let app = axum::Router::new().layer(layer);

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        // The harness reads this line to know the server is up.
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        axum::serve(listener, app).await
    })
}
