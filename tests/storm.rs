//! A storm of misbehaving clients against one server process, while a well-behaved client
//! keeps exchanging acks: afterwards the server still accepts clients, its connection table
//! and room index are empty, and its memory is back near where it started.
//!
//! Bounded: about 10 s of storm from a few threads, on loopback only.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use raw::*;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;

const STORM: Duration = Duration::from_secs(8);
const WORKERS: usize = 4;
const AUTH: &str = r#"40{"token":"secret","user":"storm"}"#;

/// A Socket.IO client on a raw WebSocket that has joined `/`.
fn sio_client(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect_path(addr, "/socket.io/", "EIO=4&transport=websocket");
    let open = ws_text(&mut ws, "open packet");
    assert!(open.starts_with('0'), "{open}");
    ws_send_text(&mut ws, AUTH);
    ws
}

fn raw_tcp(addr: SocketAddr) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    Some(s)
}

/// A masked client frame header (no payload) announcing `len` bytes.
fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

/// One misbehaving client; `kind` picks how. Returns a client to keep (never read) if any.
fn misbehave(addr: SocketAddr, kind: u64, seed: u64) -> Option<Ws> {
    let handshake = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
    match kind {
        // Connect, send a request, vanish without reading (the kernel may reset).
        0 => {
            let mut s = raw_tcp(addr)?;
            let _ = s.write_all(handshake.as_bytes());
        }
        // Half a request head, then half-close.
        1 => {
            let mut s = raw_tcp(addr)?;
            let _ = s.write_all(b"GET /socket.io/?EIO=4&transport=pol");
            let _ = s.shutdown(Shutdown::Write);
        }
        // Half a WebSocket handshake.
        2 => {
            let mut s = raw_tcp(addr)?;
            let _ = s.write_all(
                b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\n",
            );
        }
        // Close in the middle of a frame.
        3 => {
            let mut ws = sio_client(addr);
            let _ = ws.get_mut().write_all(&frame_header(0x1, 1000)[..8]);
        }
        // Close in the middle of a POST body.
        4 => {
            let mut s = raw_tcp(addr)?;
            let _ = s.write_all(
                b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n4hello",
            );
        }
        // Garbage.
        5 => {
            let mut s = raw_tcp(addr)?;
            let garbage: Vec<u8> = (0..1024u64)
                .map(|i| {
                    (seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(i.wrapping_mul(1442695040888963407))
                        >> 33) as u8
                })
                .collect();
            let _ = s.write_all(&garbage);
        }
        // A frame far over the payload limit.
        6 => {
            let mut ws = sio_client(addr);
            let _ = ws.get_mut().write_all(&frame_header(0x2, 100 << 20));
        }
        // A POST body far over the payload limit.
        7 => {
            let mut s = raw_tcp(addr)?;
            let _ = s.write_all(
                b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 104857600\r\n\r\n",
            );
        }
        // A binary event whose second attachment never comes (the attachments deadline
        // and the memory budget deal with it); the client stays.
        8 => {
            let mut ws = sio_client(addr);
            let _ = ws.get_mut().write_all(&masked_frame(
                0x1,
                true,
                br#"452-["echo_ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ));
            let _ = ws
                .get_mut()
                .write_all(&masked_frame(0x2, true, &vec![7; 60_000]));
            return Some(ws);
        }
        // A text message in fragments, never finished; the client stays.
        9 => {
            let mut ws = sio_client(addr);
            let mut bytes = masked_frame(0x1, false, b"4");
            for _ in 0..6 {
                bytes.extend(masked_frame(0x0, false, &[b'f'; 10_000]));
            }
            let _ = ws.get_mut().write_all(&bytes);
            return Some(ws);
        }
        // Connects to fresh dynamic namespaces without signing in (refused by the
        // middleware: no child namespace may be left behind).
        10 => {
            let mut ws = sio_client(addr);
            for i in 0..20 {
                let _ = ws.get_mut().write_all(&masked_frame(
                    0x1,
                    true,
                    format!("40/game-{seed}{i},").as_bytes(),
                ));
            }
        }
        // A burst of small events as fast as TCP takes them (fair reads).
        11 => {
            let mut ws = sio_client(addr);
            let burst = masked_frame(0x1, true, br#"42["noop",1]"#).repeat(20_000);
            let _ = ws.get_mut().write_all(&burst);
        }
        // A session that never answers pings and never reads: kept by the caller.
        _ => return Some(sio_client(addr)),
    }
    None
}

#[derive(Default)]
struct Latencies {
    samples: Vec<Duration>,
}

/// The well-behaved client: echo acks in a loop, answering pings, until `stop`.
fn good_client(addr: SocketAddr, stop: Arc<AtomicBool>, out: Arc<Mutex<Latencies>>) {
    let mut ws = sio_client(addr);
    let mut id = 0u64;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let sent = Instant::now();
        ws_send_text(&mut ws, &format!(r#"42{id}["echo_ack","ping {id}"]"#));
        let want = format!(r#"43{id}["ping {id}"]"#);
        loop {
            ws_set_timeout(&mut ws, Duration::from_secs(5));
            match ws.read() {
                Ok(Message::Text(t)) if t.as_str() == "2" => ws_send_text(&mut ws, "3"),
                Ok(Message::Text(t)) if t.as_str() == want => break,
                Ok(_) => {}
                Err(e) => panic!("the well-behaved client lost its connection: {e}"),
            }
        }
        out.lock().expect("lock").samples.push(sent.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The flooder: broadcasts 16 KiB to everyone every 50 ms, answering pings.
fn flooder(addr: SocketAddr, stop: Arc<AtomicBool>) {
    let mut ws = sio_client(addr);
    let data = "z".repeat(16 * 1024);
    while !stop.load(Ordering::Relaxed) {
        ws_send_text(
            &mut ws,
            &format!(r#"42["broadcast_all",{{"event":"flood","data":"{data}"}}]"#),
        );
        ws_set_timeout(&mut ws, Duration::from_millis(50));
        while let Ok(msg) = ws.read() {
            if let Message::Text(t) = msg
                && t.as_str() == "2"
            {
                ws_send_text(&mut ws, "3");
            }
        }
    }
}

fn metric(addr: SocketAddr, line_prefix: &str) -> u64 {
    let text = get(addr, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_prefix:?} in:\n{text}"))
}

/// What one storm did, and the server's memory around it.
struct StormReport {
    connections: u64,
    acks: Vec<Duration>,
    peak_rss: u64,
    after_rss: u64,
}

/// One storm: misbehaving clients from `WORKERS` threads for `STORM`, a flooder, and a
/// well-behaved client measuring ack latency; then waits until the server is empty again.
fn storm(server: &ExampleServer) -> StormReport {
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let good = {
        let (stop, latencies) = (stop.clone(), latencies.clone());
        std::thread::spawn(move || good_client(addr, stop, latencies))
    };
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || flooder(addr, stop))
    };
    let made = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + STORM;
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|w| {
            let made = made.clone();
            std::thread::spawn(move || {
                let mut kept: Vec<Ws> = Vec::new();
                let mut n = w;
                while Instant::now() < deadline {
                    n += WORKERS as u64;
                    if let Some(ws) = misbehave(addr, n % 14, n) {
                        kept.push(ws);
                        if kept.len() > 50 {
                            kept.remove(0);
                        }
                    }
                    made.fetch_add(1, Ordering::Relaxed);
                }
                drop(kept);
            })
        })
        .collect();
    let mut peak_rss = 0;
    while Instant::now() < deadline {
        peak_rss = peak_rss.max(server.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in workers {
        w.join().expect("storm worker");
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().expect("flooder");
    good.join().expect("the well-behaved client kept working");

    // Let ping timeouts, head timeouts and lingering closes run out: the connection table
    // and the room index must end empty.
    let settled = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = metric(addr, "sioloop_sessions_open ");
        let sockets = metric(addr, "sioloop_sockets{nsp=\"/\"} ");
        let rooms = metric(addr, "sioloop_rooms{nsp=\"/\"} ");
        let buffered = metric(addr, "sioloop_buffered_bytes ");
        // The metrics request itself holds one connection.
        let connections = metric(addr, "sioloop_connections_open ");
        // What is buffered is the metrics request's own input buffer, if anything.
        if (sessions, sockets, rooms, connections) == (0, 0, 0, 1) && buffered <= 64 * 1024 {
            break;
        }
        assert!(
            Instant::now() < settled,
            "not empty after the storm: sessions {sessions}, sockets {sockets}, rooms {rooms}, \
             connections {connections}, buffered bytes {buffered}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut acks = latencies.lock().expect("lock").samples.clone();
    acks.sort();
    StormReport {
        connections: made.load(Ordering::Relaxed),
        acks,
        peak_rss,
        after_rss: server.rss_kib(),
    }
}

#[test]
fn storm_of_misbehaving_clients() {
    let server = ExampleServer::start(
        "sio_testbed",
        &[
            "--ping-interval",
            "300",
            "--ping-timeout",
            "200",
            "--max-payload",
            "65536",
            "--max-queued-bytes",
            "262144",
            "--head-timeout",
            "1000",
            "--max-buffered-bytes",
            "16777216",
            "--attachments-timeout",
            "200",
            "--metrics",
            "/metrics",
        ],
    );
    let addr = server.addr;
    let baseline = server.rss_kib();
    let first = storm(&server);
    let second = storm(&server);

    // Still serving: a new handshake works.
    let res = get(addr, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with("0{\"sid\":"), "{}", res.text());

    for (i, r) in [&first, &second].into_iter().enumerate() {
        let p = |q: usize| r.acks[(r.acks.len() * q / 100).min(r.acks.len() - 1)];
        eprintln!(
            "storm {}: {} misbehaving connections in {STORM:?}; well-behaved acks: {} \
             (p50 {:?}, p99 {:?}, max {:?}); server RSS KiB: baseline {baseline}, peak {}, after {}",
            i + 1,
            r.connections,
            r.acks.len(),
            p(50),
            p(99),
            p(100),
            r.peak_rss,
            r.after_rss,
        );
        assert!(
            r.connections >= 1000,
            "the storm was too small to mean much"
        );
        assert!(
            r.acks.len() >= 100,
            "the well-behaved client got too few acks"
        );
        assert!(
            p(100) < Duration::from_millis(1000),
            "an ack took {:?} during the storm",
            p(100)
        );
    }
    eprintln!(
        "slow consumers {}, ping timeouts {}, reads deferred {}, paused by the budget {}, \
         attachments timed out {}, child namespaces created {}",
        metric(
            addr,
            "sioloop_sessions_closed_total{reason=\"slow consumer\"} "
        ),
        metric(
            addr,
            "sioloop_sessions_closed_total{reason=\"ping timeout\"} "
        ),
        metric(addr, "sioloop_reads_deferred_total "),
        metric(addr, "sioloop_reads_paused_by_budget_total "),
        metric(addr, "sioloop_attachments_timed_out_total "),
        metric(addr, "sioloop_namespaces_created_total "),
    );
    // The new limits were hit: bursts were read in shares, unfinished attachments ran out
    // of time, and no unauthenticated CONNECT created a namespace.
    assert!(metric(addr, "sioloop_reads_deferred_total ") > 0);
    assert!(metric(addr, "sioloop_attachments_timed_out_total ") > 0);
    assert_eq!(metric(addr, "sioloop_namespaces_created_total "), 0);
    // Back near the baseline after tens of thousands of connections (what stays is the
    // allocator's free pages, kept for reuse, and the 45 s connect-timeout timer entries).
    assert!(
        first.after_rss.max(second.after_rss) <= baseline + 16 * 1024,
        "RSS did not come back near its baseline ({baseline} KiB): {} KiB and {} KiB after",
        first.after_rss,
        second.after_rss
    );
    // Memory is bounded and reused, not leaked: a second storm as large as the first does
    // not leave the server bigger.
    assert!(
        second.after_rss <= first.after_rss + 4 * 1024,
        "RSS grew from one storm to the next: {} KiB after the first, {} KiB after the second",
        first.after_rss,
        second.after_rss
    );
    assert!(
        first.peak_rss.max(second.peak_rss) <= baseline + 64 * 1024,
        "the storm took more than 64 MiB over the baseline ({baseline} KiB)"
    );
}
