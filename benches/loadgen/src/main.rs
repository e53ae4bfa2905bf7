//! `loadgen`: the benchmark load generator for sioloop and its peers.
//!
//! It speaks Engine.IO 4 / Socket.IO 5 itself (WebSocket, or HTTP long-polling without
//! upgrade) from one thread and one `mio::Poll`, every simulated client a state machine, so
//! that the measured server, not the load generator, is the bottleneck. The fixed packet
//! shapes of the benchmark protocol are parsed by hand; nothing on the hot path allocates.
//!
//! ```text
//! loadgen --addr 127.0.0.1:PORT --scenario idle|echo|fanout|binary|polling|storm|idle-ping
//!         [--clients N] [--in-flight K] [--duration SECS] [--warmup SECS] [--size BYTES]
//!         [--server-pid PID] [--concurrency C]
//! ```
//!
//! Prints one JSON object on stdout; a human summary on stderr. Exits 1 on a timeout,
//! protocol error or failed check (with the reason on stderr, nothing on stdout), 2 on bad
//! arguments. Every check is fatal, so a report always says `"errors":0`; the one exception
//! is a failed handshake in `storm`, which is retried and counted (`failed_handshakes`).
//!
//! Scenarios (namespace `/`): `echo` and `polling` keep `--in-flight` acked `echo` events
//! per client in flight (WebSocket / long-polling); `fanout` and `binary` have `--clients`
//! receivers join a room and one extra sender keep `--in-flight` broadcasts incomplete (a
//! broadcast completes when every receiver got it); `idle` connects `--clients` WebSocket
//! clients, `--concurrency` at a time, and holds them 2 s; `storm` connects `--clients` idle
//! WebSocket clients the same way, holds them 1 s, closes them all at once, waits until the
//! server's CPU time stops growing (looked at after 0.5 s, then every 100 ms, at most 10 s:
//! it has handled the disconnects) and reconnects them all, `--concurrency` handshakes in
//! flight, retrying (and counting) any that fails; `idle-ping` connects `--clients` idle WebSocket clients, waits `--warmup`,
//! then counts the server's pings (each answered with a pong at once) for `--duration`.
//!
//! Report fields: `ops` are acks (echo, polling), completed broadcasts (fanout, binary) or
//! connects (idle); `deliveries` are acks or messages received by receivers. Rates,
//! `server_cpu_s` (utime+stime of `--server-pid`) and `loadgen_cpu_s` cover the measured
//! window after warmup, or for idle the connect phase (`duration_s`). Latencies are per
//! delivery (send to receipt; idle: connect start to Socket.IO connect), log-bucketed
//! within 1.6 %. Idle adds `connects_per_s`, `server_cpu_us_per_connect` and
//! `rss_kib_per_conn` = (server RSS after the hold − RSS before connecting) / clients.
//! Storm's `ops` are reconnects and its window the reconnect phase, from the end of the
//! settling to the last Socket.IO connect (`reconnect_s`); latencies are per handshake
//! (TCP connect to Socket.IO connect, from the first attempt); it adds
//! `server_cpu_us_per_reconnect`, `failed_handshakes` (reconnect phase),
//! `failed_handshakes_initial`, `listen_drops` (SYNs the kernel dropped in the reconnect
//! phase for a full listen queue, from `/proc/net/netstat`: the client retransmits after
//! 1 s), `settle_s` and `server_cpu_us_per_disconnect` (server CPU from the drop to quiet,
//! per client). Idle-ping's `ops` are pings received in the window:
//! `server_cpu_us_per_ping` = server CPU / pings, i.e. per client per ping round, and
//! `ping_rounds` = pings / clients.
//! Server fields are null without `--server-pid`.

mod bench;
mod client;
mod proto;
mod stats;

use bench::{Config, MAX_IN_FLIGHT, MIN_BIN_SIZE, Scenario};
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: loadgen --addr HOST:PORT
       --scenario idle|echo|fanout|binary|polling|storm|idle-ping
       [--clients N] [--in-flight K] [--duration SECS] [--warmup SECS] [--size BYTES]
       [--server-pid PID] [--concurrency C]";

fn parse_args() -> Result<Config, String> {
    let mut addr: Option<SocketAddr> = None;
    let mut scenario = None;
    let (mut clients, mut in_flight, mut size) = (None, None, None);
    let (mut duration, mut warmup) = (5.0, 1.0);
    let mut server_pid = None;
    let mut concurrency = 200;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: {value:?} is not {what}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|_| bad("an address"))?),
            "--scenario" => {
                scenario = Some(Scenario::parse(&value).ok_or_else(|| bad("a scenario"))?);
            }
            "--clients" => clients = Some(value.parse().map_err(|_| bad("a count"))?),
            "--in-flight" => in_flight = Some(value.parse().map_err(|_| bad("a count"))?),
            "--size" => size = Some(value.parse().map_err(|_| bad("a size"))?),
            "--duration" => duration = value.parse().map_err(|_| bad("seconds"))?,
            "--warmup" => warmup = value.parse().map_err(|_| bad("seconds"))?,
            "--server-pid" => server_pid = Some(value.parse().map_err(|_| bad("a pid"))?),
            "--concurrency" => concurrency = value.parse().map_err(|_| bad("a count"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let scenario = scenario.ok_or("--scenario is required")?;
    let (def_clients, def_in_flight, def_size) = match scenario {
        Scenario::Idle | Scenario::Storm | Scenario::IdlePing => (10_000, 1, 0),
        Scenario::Echo | Scenario::Polling => (100, 1, 32),
        Scenario::Fanout => (1000, 32, 32),
        Scenario::Binary => (100, 4, 65536),
    };
    let cfg = Config {
        addr,
        scenario,
        clients: clients.unwrap_or(def_clients),
        in_flight: in_flight.unwrap_or(def_in_flight),
        duration,
        warmup,
        size: size.unwrap_or(def_size),
        server_pid,
        concurrency,
    };
    if cfg.clients == 0 || cfg.in_flight == 0 || cfg.concurrency == 0 {
        return Err("--clients, --in-flight and --concurrency must be at least 1".into());
    }
    if cfg.in_flight > MAX_IN_FLIGHT {
        return Err(format!("--in-flight is at most {MAX_IN_FLIGHT}"));
    }
    if !(cfg.duration > 0.0 && cfg.duration < 3600.0 && cfg.warmup >= 0.0 && cfg.warmup < 3600.0) {
        return Err("--duration must be in (0, 3600) and --warmup in [0, 3600)".into());
    }
    if scenario == Scenario::Binary && cfg.size < MIN_BIN_SIZE {
        return Err(format!("binary --size is at least {MIN_BIN_SIZE}"));
    }
    if cfg.clients > u32::MAX as usize / 4 {
        return Err("--clients is too large".into());
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("loadgen: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench::run(cfg) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
