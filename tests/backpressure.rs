//! Input backpressure, as a new user's server meets it (`examples/backpressure.rs`, release
//! build): clients writing as fast as TCP allows (small events and events near `max_payload`
//! over WebSocket, polling POSTs full of events) are slowed by TCP, not paid for in the
//! server's memory, while everyone else is served on time: a canary's acked echoes, 20
//! listeners getting every one of 10 broadcasts a second, a 1 s timer, new connections. And
//! memory pinned by half-finished attachments goes back when its clients leave.

mod common;
#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use common::ExampleServer;
use raw::*;
use sio::wait_for;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(30);

/// A Socket.IO client on `/` over a WebSocket.
fn client(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect_path(addr, "/socket.io/", "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    ws_send_text(&mut ws, "40");
    wait_for(&mut ws, "CONNECT answer", |t| t.starts_with("40"));
    ws
}

/// Reads until `pred` holds for a text frame, answering Engine.IO pings on the way.
fn read_until(ws: &mut Ws, what: &str, mut pred: impl FnMut(&str) -> bool) {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if t.as_str() == "2" => ws_send_text(ws, "3"),
            Ok(Message::Text(t)) if pred(t.as_str()) => return,
            Ok(_) => {}
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// The clients stand in for machines of their own, but here they share two cores with
/// the server, which is busy all the time under the flood (it does not sleep while a
/// connection has input left). A canary thread woken on the server's core waits for the
/// server's time slice (3-4 ms) before it reads its answer: its round trip would measure
/// this machine's scheduler, not the server, and which core it lands on changes from run
/// to run. So, as the issues measure it, the server runs on one core and the clients on
/// the other (`pid` 0: the calling thread, whose threads spawned later inherit it).
fn pin_to_cpu(pid: u32, cpu: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the set is a plain bit array on the stack, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of_val(&set), &set);
    }
}

/// Flooders run at the lowest priority, so that on the clients' core the canary, the
/// listeners and the timer's listener are scheduled first when their answers arrive (on
/// Linux, nice applies to the calling thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes no pointers; who = 0 is the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// A WebSocket flooder: writes `batch` over and over until `stop` (keeping frames whole
/// across partial writes), then checks it is still served. Returns the bytes it wrote.
fn ws_flood(addr: SocketAddr, batch: Vec<u8>, stop: Arc<AtomicBool>) -> u64 {
    lower_priority();
    let mut ws = client(addr);
    let mut written = 0u64;
    let stream = ws.get_mut();
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
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
            Err(e) => panic!("a flooder was disconnected after {written} bytes: {e}"),
        }
    }
    let at = (written % batch.len() as u64) as usize;
    if at != 0 {
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .expect("write timeout");
        stream
            .write_all(&batch[at..])
            .expect("finish the last batch");
    }
    ws_set_timeout(&mut ws, Duration::from_secs(60));
    ws_send_text(&mut ws, "421[\"echo\",\"still here\"]");
    read_until(&mut ws, "the flooder's echo", |t| {
        t == "431[\"still here\"]"
    });
    written
}

/// A polling flooder: POSTs of 500 events each, back to back on one keep-alive connection
/// (within the first ping interval: no GET is needed to answer pings). Returns the bytes
/// posted.
fn polling_flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    lower_priority();
    let res = get(addr, "/socket.io/?EIO=4&transport=polling");
    let open = res.text();
    let sid = open[open.find("\"sid\":\"").expect("sid") + 7..][..20].to_owned();
    let url = poll_url(&sid).replace("/engine.io/", "/socket.io/");
    let res = post(addr, &url, b"40");
    assert_eq!(res.status, 200);
    let body = vec!["42[\"noop\",1]"; 500].join("\x1e");
    let mut conn = Conn::open(addr);
    let mut posted = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let res = conn.request("POST", &url, &[], body.as_bytes());
        assert_eq!(
            (res.status, res.text()),
            (200, "ok".to_owned()),
            "a polling flood POST"
        );
        posted += body.len() as u64;
    }
    // Still served: an acked echo comes back on the GET.
    let res = post(addr, &url, b"421[\"echo\",\"still here\"]");
    assert_eq!(res.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = get(addr, &url);
        if packets(&res.text())
            .iter()
            .any(|p| p == "431[\"still here\"]")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the polling flooder's echo");
    }
    posted
}

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// Acked echoes every 5 ms for `period`; their round trips.
fn canary(ws: &mut Ws, period: Duration, next_id: &mut u64) -> Vec<Duration> {
    let mut rtts = Vec::new();
    let end = Instant::now() + period;
    while Instant::now() < end {
        *next_id += 1;
        let id = *next_id;
        let sent = Instant::now();
        ws_send_text(ws, &format!("42{id}[\"echo\",{id}]"));
        let want = format!("43{id}[{id}]");
        read_until(ws, "the canary's echo", |t| t == want);
        rtts.push(sent.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    rtts
}

/// The well-behaved background: a broadcaster sending 10 messages a second to room `r`,
/// 20 listeners checking they get every one in order, and a listener timing the server's
/// 1 s `tick`s. Runs until `stop`; returns (broadcasts sent, worst tick lateness).
struct Background {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    sent: Arc<AtomicU64>,
    worst_tick: Arc<Mutex<Duration>>,
}

impl Background {
    fn start(addr: SocketAddr) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let worst_tick = Arc::new(Mutex::new(Duration::ZERO));
        let mut threads = Vec::new();
        let mut listeners: Vec<Ws> = (0..20)
            .map(|i| {
                let mut ws = client(addr);
                ws_send_text(&mut ws, &format!("42{i}[\"join\",\"r\"]"));
                read_until(&mut ws, "join", |t| t == format!("43{i}[\"ok\"]"));
                ws
            })
            .collect();
        for mut ws in listeners.drain(..) {
            let (stop, sent) = (stop.clone(), sent.clone());
            threads.push(std::thread::spawn(move || {
                let mut next = 0u64;
                ws_set_timeout(&mut ws, Duration::from_millis(200));
                loop {
                    match ws.read() {
                        Ok(Message::Text(t)) if t.as_str() == "2" => ws_send_text(&mut ws, "3"),
                        Ok(Message::Text(t)) => {
                            if let Some(n) = t.as_str().strip_prefix("42[\"bc\",") {
                                let seq: u64 = n.trim_end_matches(']').parse().expect("seq");
                                assert_eq!(seq, next, "a listener missed a broadcast");
                                next += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e))
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            if stop.load(Ordering::Relaxed) && next == sent.load(Ordering::Relaxed)
                            {
                                return;
                            }
                        }
                        Err(e) => panic!("a listener lost its connection: {e}"),
                    }
                }
            }));
        }
        {
            let (stop, sent) = (stop.clone(), sent.clone());
            threads.push(std::thread::spawn(move || {
                let mut ws = client(addr);
                ws_set_timeout(&mut ws, Duration::from_millis(1));
                let start = Instant::now();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ws_send_text(&mut ws, &format!("42[\"broadcast\",\"r\",{seq}]"));
                    seq += 1;
                    sent.store(seq, Ordering::Relaxed);
                    let next = start + Duration::from_millis(100 * seq);
                    while Instant::now() < next {
                        if let Ok(Message::Text(t)) = ws.read()
                            && t.as_str() == "2"
                        {
                            ws_send_text(&mut ws, "3");
                        }
                    }
                }
            }));
        }
        {
            let (stop, worst) = (stop.clone(), worst_tick.clone());
            threads.push(std::thread::spawn(move || {
                let mut ws = client(addr);
                ws_send_text(&mut ws, "421[\"join\",\"ticks\"]");
                read_until(&mut ws, "join ticks", |t| t == "431[\"ok\"]");
                ws_set_timeout(&mut ws, Duration::from_secs(3));
                let mut first: Option<(u64, Instant)> = None;
                while !stop.load(Ordering::Relaxed) {
                    let mut seq = 0;
                    read_until(&mut ws, "a tick", |t| {
                        t.strip_prefix("42[\"tick\",")
                            .and_then(|n| n.trim_end_matches(']').parse().ok())
                            .map(|n| seq = n)
                            .is_some()
                    });
                    let now = Instant::now();
                    // Lateness against the schedule the first tick set.
                    let (seq0, t0) = *first.get_or_insert((seq, now));
                    let due = t0 + Duration::from_secs(seq - seq0);
                    let late = now.saturating_duration_since(due);
                    let mut worst = worst.lock().expect("lock");
                    *worst = (*worst).max(late);
                }
            }));
        }
        Background {
            stop,
            threads,
            sent,
            worst_tick,
        }
    }

    fn finish(self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a well-behaved client failed");
        }
        let worst = *self.worst_tick.lock().expect("lock");
        (self.sent.load(Ordering::Relaxed), worst)
    }
}

/// The two tests load the machine on purpose: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn flooders_are_slowed_by_tcp_and_everyone_else_is_served() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = ExampleServer::start_release("backpressure", &[]);
    let addr = server.addr;
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        pin_to_cpu(server.pid(), 0);
        pin_to_cpu(0, 1);
    }
    let background = Background::start(addr);
    let mut ws = client(addr);
    let mut id = 0;
    canary(&mut ws, Duration::from_millis(500), &mut id);
    let mut baseline = canary(&mut ws, Duration::from_secs(3), &mut id);
    let rss_before = server.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let small = masked_text("42[\"noop\",1]").repeat(4096);
    let big = masked_text(&format!("42[\"noop\",\"{}\"]", "x".repeat(999_980)));
    let mut flooders: Vec<std::thread::JoinHandle<u64>> = [small, big]
        .into_iter()
        .map(|batch| {
            let stop = stop.clone();
            std::thread::spawn(move || ws_flood(addr, batch, stop))
        })
        .collect();
    {
        let stop = stop.clone();
        flooders.push(std::thread::spawn(move || polling_flood(addr, stop)));
    }
    let started = Instant::now();
    let mut during = Vec::new();
    let mut accept_times = Vec::new();
    let mut rss_peak = 0;
    while started.elapsed() < FLOOD {
        during.extend(canary(&mut ws, Duration::from_secs(2), &mut id));
        // A new client: connected (the TCP accept and the handshake's answer) in time.
        let t = Instant::now();
        let mut newcomer = TcpStream::connect(addr).expect("connect a newcomer");
        newcomer
            .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("handshake");
        newcomer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        let n = newcomer
            .read(&mut buf)
            .expect("the newcomer's handshake answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "newcomer");
        accept_times.push(t.elapsed());
        rss_peak = rss_peak.max(server.rss_kib());
    }
    stop.store(true, Ordering::Relaxed);
    let written: Vec<u64> = flooders
        .into_iter()
        .map(|f| f.join().expect("a flooder failed"))
        .collect();
    let (broadcasts, worst_tick) = background.finish();

    let (base, flood) = (p99(&mut baseline), p99(&mut during));
    let slowest_accept = accept_times.iter().max().copied().unwrap_or_default();
    let secs = FLOOD.as_secs_f64();
    eprintln!(
        "canary p99 {base:?} without the flood, {flood:?} during it ({} echoes, {:.1}x); \
         newcomers served within {slowest_accept:?}; worst 1 s tick {worst_tick:?} late; \
         {broadcasts} broadcasts to 20 listeners, none lost; server RSS {rss_before} -> peak \
         {rss_peak} KiB; flooders took in {:.1} / {:.1} / {:.1} MB/s (small events, near \
         max_payload, polling)",
        during.len(),
        flood.as_secs_f64() / base.as_secs_f64(),
        written[0] as f64 / secs / 1e6,
        written[1] as f64 / secs / 1e6,
        written[2] as f64 / secs / 1e6,
    );
    // Issue 17's bound: at most 5x the p99 without the flood, and 50 ms. (Measured 2.3x to
    // 3.1x on the 2-core machine. Before fair reads the canary's echoes timed out; with
    // 256 KiB shares and frames parsed whole it was 13x.) Below half a millisecond a p99 on
    // a shared 2-core machine is mostly the scheduler's, so the baseline counts as at least
    // that.
    let bound = (base.max(Duration::from_micros(500)) * 5).min(Duration::from_millis(50));
    assert!(
        flood <= bound,
        "the canary's p99 went from {base:?} to {flood:?} (bound {bound:?})"
    );
    assert!(
        slowest_accept <= Duration::from_millis(100),
        "a new client waited {slowest_accept:?}"
    );
    assert!(
        worst_tick <= Duration::from_millis(100),
        "the 1 s timer was {worst_tick:?} late"
    );
    assert!(broadcasts >= 10 * FLOOD.as_secs() * 9 / 10);
    assert!(rss_peak < 64 * 1024, "server RSS peaked at {rss_peak} KiB");
    assert!(written.iter().all(|&w| w > 0), "{written:?}");
}

#[test]
fn memory_pinned_by_half_finished_attachments_goes_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A budget large enough that the clients can pin a few hundred MB.
    let server =
        ExampleServer::start_release("backpressure", &["--max-buffered-bytes", "1073741824"]);
    let addr = server.addr;
    let baseline = server.rss_kib();
    let attachment = {
        let mut f = vec![0x82, 0x80 | 127];
        f.extend_from_slice(&200_000u64.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend(std::iter::repeat_n(7u8, 200_000));
        f
    };
    let announce = masked_text(&format!(
        "4510-[\"noop\",{}]",
        (0..10)
            .map(|i| format!("{{\"_placeholder\":true,\"num\":{i}}}"))
            .collect::<Vec<_>>()
            .join(",")
    ));
    let mut holders = Vec::new();
    for _ in 0..200 {
        let mut ws = client(addr);
        let s = ws.get_mut();
        s.write_all(&announce).expect("announce 10 attachments");
        for _ in 0..9 {
            s.write_all(&attachment).expect("send 9 of them");
        }
        holders.push(ws);
    }
    std::thread::sleep(Duration::from_millis(500));
    let pinned = server.rss_kib();
    drop(holders);
    let left = Instant::now();
    let mut after = server.rss_kib();
    while left.elapsed() < Duration::from_secs(10) && after > baseline * 2 + 32 * 1024 {
        std::thread::sleep(Duration::from_millis(200));
        after = server.rss_kib();
    }
    eprintln!(
        "server RSS: {baseline} KiB at the start, {pinned} KiB with 200 clients holding 9 \
         of 10 attachments of 200 kB, {after} KiB {:?} after they left",
        left.elapsed()
    );
    assert!(
        pinned > baseline + 200 * 1024,
        "the clients did not pin the memory"
    );
    assert!(
        after <= baseline * 2 + 32 * 1024,
        "RSS stayed at {after} KiB after the clients left (baseline {baseline} KiB)"
    );
}
