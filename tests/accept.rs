//! Accepting under pressure (issue 18). A reconnect storm into a server that is busy (here:
//! stopped) is queued by the kernel, not dropped: the listen backlog is 1024, not the
//! standard library's 128. And near the process's file limit (a small `RLIMIT_NOFILE`
//! through `prlimit`, more clients than it allows): the first are served; the rest wait in
//! the listen backlog without the server spinning on the listener, and are served as soon
//! as the first leave; the failed accepts are counted.

// prlimit, /proc and signals: Linux.
#![cfg(target_os = "linux")]

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::ExampleServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The server's file limit: its own descriptors (standard streams, poll, listener, waker,
/// Ctrl-C pair) take about ten, the rest are connections.
const NOFILE: usize = 40;
/// Clients: more than the limit lets the server hold.
const CLIENTS: usize = 48;

/// A client that opened a polling session, or is still waiting for the answer.
struct Client {
    stream: TcpStream,
    answered: bool,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Client {
        Client::handshake(TcpStream::connect(addr).expect("connect (the kernel's backlog)"))
    }

    /// Sends a polling handshake on a connected stream.
    fn handshake(mut stream: TcpStream) -> Client {
        stream
            .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send the handshake");
        Client {
            stream,
            answered: false,
        }
    }

    /// Waits up to `timeout` for the handshake's answer; returns whether it came.
    fn wait_answer(&mut self, timeout: Duration) -> bool {
        if self.answered {
            return true;
        }
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        match self.stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "a handshake answer");
                self.answered = true;
            }
            Ok(_) => panic!("the server closed a waiting client"),
            Err(_) => {}
        }
        self.answered
    }
}

/// The server process's CPU time (user + system) in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn clients_past_the_file_limit_wait_and_are_served_when_others_leave() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("prlimit (util-linux) is needed for this test");
    }
    let nofile = format!("--nofile={NOFILE}:{NOFILE}");
    let server = ExampleServer::start_wrapped(
        &["prlimit", &nofile, "--"],
        "engineio_echo",
        &["--metrics", "/metrics"],
    );
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(server.addr)).collect();

    // The first are served; the others are not, yet.
    let deadline = Instant::now() + Duration::from_secs(2);
    for c in &mut clients {
        let left = deadline.saturating_duration_since(Instant::now());
        c.wait_answer(left.max(Duration::from_millis(20)));
    }
    let served = clients.iter().filter(|c| c.answered).count();
    eprintln!("{served} of {CLIENTS} clients served under a file limit of {NOFILE}");
    assert!(served >= NOFILE / 2, "only {served} served");
    assert!(
        served < CLIENTS,
        "all {served} served: the limit did not bite"
    );

    // Nobody spins while they wait: the listener stays ready, but the loop only retries
    // when a connection closes.
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(server.pid()) - before;
    assert!(
        spent <= 10,
        "the waiting server used {spent} ticks of CPU in 1 s"
    );

    // The first leave: every waiting client is served.
    let (first, mut waiting): (Vec<Client>, Vec<Client>) =
        clients.into_iter().partition(|c| c.answered);
    drop(first);
    for c in &mut waiting {
        assert!(
            c.wait_answer(Duration::from_secs(5)),
            "a waiting client was not served after the first left"
        );
    }
    drop(waiting);

    // The failed accepts were counted.
    let metrics = raw::get(server.addr, "/metrics").text();
    let failed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sioloop_accepts_out_of_descriptors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the counter in /metrics");
    assert!(failed > 0, "no failed accept counted:\n{metrics}");
}

#[test]
fn a_burst_of_connections_into_a_busy_server_is_queued_not_dropped() {
    let server = ExampleServer::echo(&[]);
    let pid = server.pid() as libc::pid_t;
    // The server does not accept while stopped: everything lands in the backlog.
    let signal = |signal: libc::c_int| {
        // SAFETY: kill takes no pointers.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill {signal}");
    };
    signal(libc::SIGSTOP);
    // Past a full backlog the kernel drops SYNs, and the client resends after a second:
    // a connect that takes 500 ms was dropped.
    let burst = 600;
    let mut queued = Vec::new();
    for _ in 0..burst {
        match TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)) {
            Ok(s) => queued.push(s),
            Err(_) => break,
        }
    }
    signal(libc::SIGCONT);
    assert_eq!(
        queued.len(),
        burst,
        "only {} of {burst} connections were queued while the server was busy",
        queued.len()
    );
    // And they are all served once it runs again.
    let mut clients: Vec<Client> = queued.into_iter().map(Client::handshake).collect();
    for c in &mut clients {
        assert!(
            c.wait_answer(Duration::from_secs(5)),
            "a queued client was not served"
        );
    }
}
