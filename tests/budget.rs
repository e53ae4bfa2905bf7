//! The server-wide memory budget (`Config::max_buffered_bytes`) against clients that each
//! hold as much as the per-connection limits allow and never finish: WebSocket messages in
//! fragments, frames cut short, binary packets missing an attachment. The server's memory
//! stays within the budget, a well-behaved client keeps working, and the counters say what
//! happened.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::Handle;
use sioloop::engine::EngineStats;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BUDGET: usize = 16 * 1024 * 1024;

/// A raw WebSocket session joined to `/`, as a plain stream the test writes frames to.
fn raw_session(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("upgrade request");
    s.write_all(&masked_frame(1, true, b"40")).expect("CONNECT");
    // The 101, the open packet and the CONNECT answer.
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(6).any(|w| w == b"40{\"si") {
        let n = s.read(&mut buf).expect("read the session's start");
        assert!(n > 0, "closed before the CONNECT answer");
        seen.extend_from_slice(&buf[..n]);
    }
    s.set_write_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    s
}

/// Writes what fits; a paused connection stops taking bytes, which is the point.
fn write_some(s: &mut TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = &bytes[n..],
        }
    }
}

/// The engine's counters, and what it counts as buffered now.
fn stats(handle: &Handle<State>) -> (EngineStats, u64) {
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let buffered = cx
            .metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix("sioloop_buffered_bytes "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let _ = tx.send((cx.engine_stats(), buffered));
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("stats")
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn holders_of_unfinished_input_stay_within_the_budget() {
    let config = config()
        .max_buffered_bytes(BUDGET)
        .max_connections(2000, 2000);
    let (handle, addr, thread) = start_with(config, |server| {
        server
            .attachments_timeout(Duration::from_secs(60))
            .of("/")
            .on("echo", |cx, v: serde_json::Value, ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &v);
                }
            });
    });
    let (mut canary, _) = connect(addr);
    let echo = |ws: &mut Ws, id: u32| {
        let sent = Instant::now();
        ws_send_text(ws, &format!("42{id}[\"echo\",{id}]"));
        let want = format!("43{id}[{id}]");
        wait_for(ws, "the canary's echo", |t| t == want);
        sent.elapsed()
    };
    echo(&mut canary, 0);
    let rss_before = rss_kib();

    // 100 of each, ~600 kB held each: 180 MB if nothing stopped them.
    let part = vec![b'x'; 100_000];
    let mut holders = Vec::new();
    for i in 0..300 {
        let mut s = raw_session(addr);
        let bytes = match i % 3 {
            // A text message in six fragments, never finished.
            0 => {
                let mut b = masked_frame(1, false, b"4");
                for _ in 0..6 {
                    b.extend(masked_frame(0, false, &part));
                }
                b
            }
            // One frame announcing 900 kB, 600 kB of it sent.
            1 => masked_frame(1, true, &[b'4'; 900_000])[..600_000].to_vec(),
            // A binary event waiting for its second attachment.
            _ => {
                let mut b = masked_frame(
                    1,
                    true,
                    b"452-[\"echo\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                );
                b.extend(masked_frame(2, true, &vec![7u8; 600_000]));
                b
            }
        };
        write_some(&mut s, &bytes);
        holders.push(s);
        if i % 50 == 49 {
            let took = echo(&mut canary, i);
            assert!(took < Duration::from_secs(2), "the canary took {took:?}");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let took = echo(&mut canary, 1000);
    let rss_held = rss_kib();
    let (s, buffered) = stats(&handle);
    eprintln!(
        "RSS {rss_before} -> {rss_held} KiB with 300 holders (budget {} KiB, {} KiB counted); \
         canary {took:?}; paused {} times, {} slow consumers closed",
        BUDGET / 1024,
        buffered / 1024,
        s.reads_paused_by_budget,
        s.closed_by_budget
    );
    assert!(s.reads_paused_by_budget > 0, "nobody was paused");
    // What the engine counts is what it holds (to within the allocator's rounding).
    assert!(
        buffered <= BUDGET as u64 + BUDGET as u64 / 16,
        "{buffered} bytes counted for a budget of {BUDGET}"
    );
    assert!(
        rss_held < rss_before + (BUDGET / 1024) as u64 + 8 * 1024,
        "RSS went from {rss_before} to {rss_held} KiB for a budget of {} KiB",
        BUDGET / 1024
    );
    // When they leave, the memory is given back.
    drop(holders);
    std::thread::sleep(Duration::from_millis(500));
    echo(&mut canary, 1001);
    let rss_after = rss_kib();
    eprintln!("RSS after the holders left: {rss_after} KiB");
    assert!(
        rss_after < rss_before * 2 + 32 * 1024,
        "RSS stayed at {rss_after} KiB after the holders left (was {rss_before})"
    );
    handle.shutdown();
    thread.join().expect("server thread");
}
