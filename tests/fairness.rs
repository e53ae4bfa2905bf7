//! Fair reads: clients writing as fast as TCP allows (small events, and events near
//! `max_payload`) do not starve anyone else. A canary's acked echoes keep their latency,
//! new clients are accepted, the server's memory stays small, and the flooders themselves
//! are still served afterwards. The server is the release build of the benchmark server,
//! as a deployment would run it: the figures are about speed.

mod common;
#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use common::ExampleServer;
use raw::*;
use sio::*;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A masked client text frame (mask key zero, which RFC 6455 allows: the payload is sent
/// as is), so a flooder can write many pre-built frames in one `write`.
fn text_frame(payload: &str) -> Vec<u8> {
    let mut frame = vec![0x81];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload.as_bytes());
    frame
}

/// Writes `batch` over and over until `stop`; returns the bytes written. Then checks the
/// flooder is still served: an acked echo comes back.
fn flood(addr: SocketAddr, batch: Vec<u8>, stop: Arc<AtomicBool>) -> u64 {
    let mut ws = ws_connect_path(addr, "/socket.io/", "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    ws_send_text(&mut ws, "40");
    wait_for(&mut ws, "CONNECT answer", |t| t.starts_with("40"));
    let mut written = 0u64;
    {
        let stream = ws.get_mut();
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("write timeout");
        while !stop.load(Ordering::Relaxed) {
            let at = (written % batch.len() as u64) as usize;
            match stream.write(&batch[at..]) {
                Ok(n) => written += n as u64,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("flooder disconnected after {written} bytes: {e}"),
            }
        }
        // A partial frame may be in flight: finish the batch so the stream stays in sync.
        let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    }
    // The last write may have stopped mid-batch; the frames are whole only at a batch
    // boundary, so top up to one.
    let rem = (written % batch.len() as u64) as usize;
    if rem != 0 {
        ws.get_mut()
            .write_all(&batch[rem..])
            .expect("finish the last batch");
    }
    ws_set_timeout(&mut ws, Duration::from_secs(60));
    ws_send_text(&mut ws, "421[\"echo\",\"still here\"]");
    wait_for(&mut ws, "the flooder's echo", |t| {
        t == "431[\"still here\"]"
    });
    written
}

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// Acked echoes every few milliseconds for `period`; their round trips.
fn canary(ws: &mut Ws, period: Duration, next_id: &mut u64) -> Vec<Duration> {
    let mut rtts = Vec::new();
    let end = Instant::now() + period;
    while Instant::now() < end {
        *next_id += 1;
        let id = *next_id;
        let sent = Instant::now();
        ws_send_text(ws, &format!("42{id}[\"echo\",{id}]"));
        let want = format!("43{id}[{id}]");
        wait_for(ws, "the canary's echo", |t| t == want);
        rtts.push(sent.elapsed());
        std::thread::sleep(Duration::from_millis(3));
    }
    rtts
}

#[test]
fn flooders_do_not_starve_the_others() {
    let server = ExampleServer::start_release("bench_server", &[]);
    let addr = server.addr;
    let open = |what: &str| {
        let mut ws = ws_connect_path(addr, "/socket.io/", "EIO=4&transport=websocket");
        ws_text(&mut ws, "open packet");
        ws_send_text(&mut ws, "40");
        wait_for(&mut ws, what, |t| t.starts_with("40"));
        ws
    };
    let mut ws = open("the canary's CONNECT");
    let mut id = 0;
    canary(&mut ws, Duration::from_millis(300), &mut id);
    let mut baseline = canary(&mut ws, Duration::from_secs(1), &mut id);
    let rss_before = server.rss_kib();

    // `echo` without an ack id: the server handles it (a relay that answers nothing).
    let stop = Arc::new(AtomicBool::new(false));
    let small: Vec<u8> = text_frame("42[\"echo\",1]").repeat(4096);
    let big = text_frame(&format!("42[\"echo\",\"{}\"]", "x".repeat(990_000)));
    let flooders: Vec<_> = [small, big.clone(), big]
        .into_iter()
        .map(|batch| {
            let stop = stop.clone();
            std::thread::spawn(move || flood(addr, batch, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut during = canary(&mut ws, Duration::from_secs(3), &mut id);
    // A new client is accepted, and served, while the flood goes on.
    let started = Instant::now();
    let mut newcomer = open("the newcomer's CONNECT");
    ws_send_text(&mut newcomer, "421[\"echo\",\"hi\"]");
    wait_for(&mut newcomer, "the newcomer's echo", |t| t == "431[\"hi\"]");
    let newcomer_took = started.elapsed();
    let rss_during = server.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let written: Vec<u64> = flooders
        .into_iter()
        .map(|f| f.join().expect("a flooder failed"))
        .collect();

    let (base, flood) = (p99(&mut baseline), p99(&mut during));
    eprintln!(
        "canary p99: {base:?} alone, {flood:?} during the flood ({} echoes); \
         newcomer served in {newcomer_took:?}; server RSS {rss_before} -> {rss_during} KiB; \
         flooders wrote {written:?} bytes in ~3.5 s",
        during.len()
    );
    assert!(
        flood <= (base * 5).max(Duration::from_millis(5)) && flood <= Duration::from_millis(50),
        "the canary's p99 went from {base:?} to {flood:?} during the flood"
    );
    assert!(
        newcomer_took < Duration::from_millis(500),
        "a new client took {newcomer_took:?}"
    );
    assert!(
        rss_during < rss_before + 64 * 1024,
        "the server's RSS grew from {rss_before} to {rss_during} KiB under the flood"
    );
    assert!(written.iter().all(|&w| w > 1_000_000), "{written:?}");
}
