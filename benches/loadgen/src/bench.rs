//! The scenarios: Engine.IO / Socket.IO packet handling for the benchmark protocol, the run
//! phases (connect, warmup, measure, drain), the event loop, and the JSON report.
//!
//! Everything runs on one thread around one `mio::Poll`. Clients only touch their own
//! sockets from inside packet handlers; anything crossing clients (a receiver completing a
//! broadcast lets the sender send the next) goes through counters here and is acted on in
//! [`Bench::pump`] after each batch of events, which also batches the sender's writes.

use crate::client::{Client, Phase, Res, Role, Sio, Tx};
use crate::proto::{self, Cursor};
use crate::stats::{self, Histogram};
use mio::{Events, Poll, Registry};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    Idle,
    Echo,
    Fanout,
    Binary,
    Polling,
    /// Idle clients all drop at once and reconnect.
    Storm,
    /// Idle clients answering the server's pings.
    IdlePing,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "idle" => Scenario::Idle,
            "echo" => Scenario::Echo,
            "fanout" => Scenario::Fanout,
            "binary" => Scenario::Binary,
            "polling" => Scenario::Polling,
            "storm" => Scenario::Storm,
            "idle-ping" => Scenario::IdlePing,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Echo => "echo",
            Scenario::Fanout => "fanout",
            Scenario::Binary => "binary",
            Scenario::Polling => "polling",
            Scenario::Storm => "storm",
            Scenario::IdlePing => "idle-ping",
        }
    }

    fn broadcasts(self) -> bool {
        matches!(self, Scenario::Fanout | Scenario::Binary)
    }

    /// Idle WebSocket clients that send nothing of their own.
    fn idle_clients(self) -> bool {
        matches!(self, Scenario::Idle | Scenario::Storm | Scenario::IdlePing)
    }
}

pub struct Config {
    pub addr: SocketAddr,
    pub scenario: Scenario,
    /// Clients that connect (echo/polling/idle) or receive (fanout/binary; plus one sender).
    pub clients: usize,
    pub in_flight: usize,
    pub duration: f64,
    pub warmup: f64,
    pub size: usize,
    pub server_pid: Option<u32>,
    pub concurrency: usize,
}

/// How long idle connections are held before the server's RSS is read.
const IDLE_HOLD: Duration = Duration::from_secs(2);
/// Storm: how long the clients stay connected before they all drop.
const STORM_HOLD: Duration = Duration::from_secs(1);
/// Storm: after the drop, the reconnect waits at least this long, then until the server's
/// CPU time stopped growing since the last look (it has handled the disconnects), at most
/// `SETTLE_MAX`. Real
/// clients wait too: socket.io-client's first reconnection delay is 0.5 to 1.5 s.
const SETTLE_MIN: Duration = Duration::from_millis(500);
const SETTLE_MAX: Duration = Duration::from_secs(10);
/// Storm: server CPU is sampled this often after `SETTLE_MIN`; no new clock tick (10 ms of
/// CPU) since the last look counts as quiet.
const SETTLE_STEP: Duration = Duration::from_millis(100);
/// Storm: failed handshakes are retried; this many per client means something is broken.
const MAX_FAILURES_PER_CLIENT: u64 = 10;
/// How long, after the window, outstanding acks and deliveries may take to arrive; anything
/// still missing then was lost.
const DRAIN: Duration = Duration::from_secs(10);
/// Broadcasts are tracked in a ring indexed by sequence number: a slot still in use when its
/// number comes round again means a receiver missed a broadcast 4096 broadcasts ago.
const RING: usize = 4096;
pub const MAX_IN_FLIGHT: usize = RING / 2;

const BIN_HEADER: &[u8] = br#"451-["broadcast_bin","bin",{"_placeholder":true,"num":0}]"#;
/// Smallest binary payload: sequence number and timestamp up front, sequence again at the end.
pub const MIN_BIN_SIZE: usize = 24;

#[derive(Clone, Copy, PartialEq, Debug)]
enum RunPhase {
    Connect,
    Warmup(u64),
    Measure(u64),
    Drain(u64),
    Hold(u64),
    /// Storm: connected, until the drop.
    StormHold(u64),
    /// Storm: dropped; waiting for the server to go quiet. When to look next, and the
    /// server's CPU ticks at the last look.
    Settle(u64, Option<u64>),
    /// Storm: reconnecting.
    Reconnect,
    Done,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    seq: u64,
    t: u64,
    count: u32,
    active: bool,
}

/// Process readings at one instant.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: u64,
    srv_ticks: Option<u64>,
    srv_rss: Option<u64>,
    self_ticks: u64,
    /// The kernel's count of dropped SYNs (storm only; `None` if unreadable).
    listen_drops: Option<u64>,
}

pub struct Bench {
    cfg: Config,
    epoch: Instant,
    /// Microseconds since `epoch`, refreshed before each event is handled.
    now: u64,
    /// Shutting down: EOFs and close frames are expected.
    pub closing: bool,
    phase: RunPhase,
    /// Clients including the fanout/binary sender.
    total: usize,
    /// Clients that must join a room before the load starts.
    joiners: usize,
    started: usize,
    connected: usize,
    joined: usize,
    load_on: bool,
    measuring: bool,
    ops: u64,
    deliveries: u64,
    hist: Histogram,
    /// Echoes sent and not acked, over all clients.
    outstanding: u64,
    ring: Vec<Slot>,
    incomplete: usize,
    next_seq: u64,
    /// Reused buffer for building outgoing packets.
    scratch: Vec<u8>,
    /// The binary attachment, patched per broadcast.
    bin: Vec<u8>,
    base: Sample,
    connected_at: Sample,
    win_start: Sample,
    win_end: Sample,
    held: Sample,
    /// Pings received in the measured window (idle-ping).
    pings: u64,
    /// Handshakes that failed and were retried (storm): before the drop, and after.
    failed_initial: u64,
    failed: u64,
    first_failure: Option<String>,
    /// Storm: just before the drop, once the server went quiet, once all were back.
    dropped_at: Sample,
    settled_at: Sample,
    reconnected_at: Sample,
}

impl Bench {
    fn new(cfg: Config) -> Bench {
        let broadcasts = cfg.scenario.broadcasts();
        let total = cfg.clients + usize::from(broadcasts);
        let joiners = if broadcasts { cfg.clients } else { 0 };
        let bin = if cfg.scenario == Scenario::Binary {
            (0..cfg.size).map(pattern).collect()
        } else {
            Vec::new()
        };
        Bench {
            epoch: Instant::now(),
            now: 0,
            closing: false,
            phase: RunPhase::Connect,
            total,
            joiners,
            started: 0,
            connected: 0,
            joined: 0,
            load_on: false,
            measuring: false,
            ops: 0,
            deliveries: 0,
            hist: Histogram::new(),
            outstanding: 0,
            ring: vec![Slot::default(); if broadcasts { RING } else { 0 }],
            incomplete: 0,
            next_seq: 1,
            scratch: Vec::with_capacity(256),
            bin,
            base: Sample::default(),
            connected_at: Sample::default(),
            win_start: Sample::default(),
            win_end: Sample::default(),
            held: Sample::default(),
            pings: 0,
            failed_initial: 0,
            failed: 0,
            first_failure: None,
            dropped_at: Sample::default(),
            settled_at: Sample::default(),
            reconnected_at: Sample::default(),
            cfg,
        }
    }

    fn clock(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn sample(&self) -> Res<Sample> {
        let (srv_ticks, srv_rss) = match self.cfg.server_pid {
            Some(pid) => {
                let pid = pid.to_string();
                (
                    Some(stats::cpu_ticks(&pid).map_err(|e| format!("server process: {e}"))?),
                    Some(stats::rss_kib(&pid).map_err(|e| format!("server process: {e}"))?),
                )
            }
            None => (None, None),
        };
        Ok(Sample {
            at: self.clock(),
            srv_ticks,
            srv_rss,
            self_ticks: stats::cpu_ticks("self")?,
            listen_drops: if self.cfg.scenario == Scenario::Storm {
                stats::listen_drops().ok()
            } else {
                None
            },
        })
    }

    // ---- Engine.IO / Socket.IO ----

    /// One Engine.IO text packet from the server.
    pub fn on_text(&mut self, s: &mut Sio, msg: &[u8], tx: &mut Tx<'_>) -> Res<()> {
        let Some((&ty, rest)) = msg.split_first() else {
            return Err("empty Engine.IO packet".into());
        };
        match ty {
            b'0' => {
                if !matches!(s.phase, Phase::Transport | Phase::WaitOpen) {
                    return Err("second Engine.IO open packet".into());
                }
                tx.text(b"40");
                s.phase = Phase::WaitConnect;
                Ok(())
            }
            b'2' => {
                if self.measuring {
                    self.pings += 1;
                }
                // A heartbeat: answer with a pong carrying the same payload.
                self.scratch.clear();
                self.scratch.push(b'3');
                self.scratch.extend_from_slice(rest);
                tx.text(&self.scratch);
                Ok(())
            }
            b'3' | b'6' => Ok(()),
            b'4' => self.on_sio(s, rest, tx),
            b'1' => Err("server closed the Engine.IO session".into()),
            _ => Err(format!("unexpected Engine.IO packet {}", proto::show(msg))),
        }
    }

    /// One Engine.IO binary message: a Socket.IO attachment.
    pub fn on_binary(&mut self, s: &mut Sio, data: &[u8]) -> Res<()> {
        if !s.expect_bin {
            return Err(format!("unexpected binary message of {} bytes", data.len()));
        }
        s.expect_bin = false;
        if data.len() != self.cfg.size {
            return Err(format!(
                "attachment of {} bytes, sent {}",
                data.len(),
                self.cfg.size
            ));
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&data[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let (seq, t, tail) = (word(0), word(8), word(data.len() - 8));
        let mid = data.len() / 2;
        if tail != seq || data[mid] != pattern(mid) {
            return Err(format!("attachment of broadcast {seq} is corrupted"));
        }
        self.deliver(s, seq, t)
    }

    fn on_sio(&mut self, s: &mut Sio, pkt: &[u8], tx: &mut Tx<'_>) -> Res<()> {
        let Some((&ty, rest)) = pkt.split_first() else {
            return Err("empty Socket.IO packet".into());
        };
        if rest.first() == Some(&b'/') {
            return Err(format!("packet for another namespace {}", proto::show(pkt)));
        }
        match ty {
            b'0' => {
                if s.phase != Phase::WaitConnect {
                    return Err("unexpected Socket.IO connect".into());
                }
                s.phase = Phase::Ready;
                self.on_connected(s, tx);
                Ok(())
            }
            b'2' => match proto::split_number(rest)? {
                (None, body) => self.on_event(s, body),
                (Some(_), _) => Err(format!("server event asks for an ack {}", proto::show(pkt))),
            },
            b'3' => match proto::split_number(rest)? {
                (Some(id), body) => self.on_ack(s, id, body, tx),
                (None, _) => Err(format!("ack without id {}", proto::show(pkt))),
            },
            b'5' => {
                let (n, rest) = proto::split_number(rest)?;
                let body = rest.strip_prefix(b"-").ok_or("binary event without '-'")?;
                match proto::split_number(body)? {
                    (None, body) if n == Some(1) => self.on_bin_event(s, body),
                    _ => Err(format!("unexpected binary event {}", proto::show(pkt))),
                }
            }
            b'4' => Err(format!("connect_error {}", proto::show(rest))),
            b'1' => Err("server disconnected the socket".into()),
            _ => Err(format!("unexpected Socket.IO packet {}", proto::show(pkt))),
        }
    }

    fn on_connected(&mut self, s: &mut Sio, tx: &mut Tx<'_>) {
        self.connected += 1;
        match s.role {
            Role::Receiver => {
                s.join_id = s.next_id;
                s.next_id += 1;
                let room: &[u8] = if self.cfg.scenario == Scenario::Fanout {
                    b"fan"
                } else {
                    b"bin"
                };
                let b = &mut self.scratch;
                b.clear();
                b.extend_from_slice(b"42");
                proto::push_u64(b, s.join_id);
                b.extend_from_slice(br#"["join",""#);
                b.extend_from_slice(room);
                b.extend_from_slice(br#""]"#);
                tx.text(b);
            }
            Role::Idle => self.hist.record(self.now.saturating_sub(s.t_start)),
            Role::Echo | Role::Sender => {}
        }
    }

    fn on_ack(&mut self, s: &mut Sio, id: u64, body: &[u8], tx: &mut Tx<'_>) -> Res<()> {
        let mut c = Cursor::new(body);
        match s.role {
            Role::Receiver if !s.joined && id == s.join_id => {
                c.eat(b'[')?;
                if c.str()? != b"ok" {
                    return Err(format!("join acked with {}", proto::show(body)));
                }
                c.eat(b']')?;
                c.end()?;
                s.joined = true;
                self.joined += 1;
                Ok(())
            }
            Role::Echo => {
                s.take_ack(id)?;
                // The echo's single argument comes back as the ack's single argument.
                c.eat(b'[')?;
                let t = check_data(&mut c, id, self.cfg.size)?;
                c.eat(b']')?;
                c.end()?;
                self.outstanding -= 1;
                if self.measuring {
                    self.ops += 1;
                    self.deliveries += 1;
                    self.hist.record(self.now.saturating_sub(t));
                }
                if self.load_on {
                    self.send_echo(s, tx)?;
                }
                Ok(())
            }
            _ => Err(format!("unexpected ack {id} {}", proto::show(body))),
        }
    }

    fn on_event(&mut self, s: &mut Sio, body: &[u8]) -> Res<()> {
        if s.role != Role::Receiver || self.cfg.scenario != Scenario::Fanout {
            return Err(format!("unexpected event {}", proto::show(body)));
        }
        let mut c = Cursor::new(body);
        c.eat(b'[')?;
        if c.str()? != b"bc" {
            return Err(format!("unexpected event {}", proto::show(body)));
        }
        c.eat(b',')?;
        c.eat(b'[')?;
        let seq = c.u64()?;
        c.eat(b',')?;
        let t = c.u64()?;
        self.deliver(s, seq, t)
    }

    fn on_bin_event(&mut self, s: &mut Sio, body: &[u8]) -> Res<()> {
        if s.role != Role::Receiver || self.cfg.scenario != Scenario::Binary || s.expect_bin {
            return Err(format!("unexpected binary event {}", proto::show(body)));
        }
        let mut c = Cursor::new(body);
        c.eat(b'[')?;
        if c.str()? != b"bc_bin" || !proto::contains(body, br#""_placeholder":true"#) {
            return Err(format!("unexpected binary event {}", proto::show(body)));
        }
        s.expect_bin = true;
        Ok(())
    }

    /// A receiver got broadcast `seq`, sent at `t`.
    fn deliver(&mut self, s: &mut Sio, seq: u64, t: u64) -> Res<()> {
        if seq <= s.last_seq {
            return Err(format!(
                "broadcast {seq} after {}: duplicated or reordered",
                s.last_seq
            ));
        }
        s.last_seq = seq;
        let slot = &mut self.ring[seq as usize % RING];
        if !slot.active || slot.seq != seq || slot.t != t {
            return Err(format!("broadcast {seq} (t={t}) was never sent"));
        }
        slot.count += 1;
        if self.measuring {
            self.deliveries += 1;
            self.hist.record(self.now.saturating_sub(t));
        }
        if slot.count as usize == self.joiners {
            slot.active = false;
            self.incomplete -= 1;
            if self.measuring {
                self.ops += 1;
            }
        }
        Ok(())
    }

    fn send_echo(&mut self, s: &mut Sio, tx: &mut Tx<'_>) -> Res<()> {
        let id = s.next_id;
        s.next_id += 1;
        s.await_ack(id)?;
        self.outstanding += 1;
        let b = &mut self.scratch;
        b.clear();
        b.extend_from_slice(b"42");
        proto::push_u64(b, id);
        b.extend_from_slice(br#"["echo","#);
        push_data(b, id, self.now, self.cfg.size);
        b.push(b']');
        tx.text(b);
        Ok(())
    }

    /// Keeps the sender's broadcasts at `in_flight` incomplete.
    fn top_up(&mut self, sender: &mut Client) -> Res<()> {
        let (mut tx, _) = sender.tx();
        while self.incomplete < self.cfg.in_flight {
            let seq = self.next_seq;
            self.next_seq += 1;
            let slot = &mut self.ring[seq as usize % RING];
            if slot.active {
                return Err(format!(
                    "broadcast {} still missing {} deliveries {RING} broadcasts later",
                    slot.seq,
                    self.joiners - slot.count as usize
                ));
            }
            *slot = Slot {
                seq,
                t: self.now,
                count: 0,
                active: true,
            };
            self.incomplete += 1;
            if self.cfg.scenario == Scenario::Fanout {
                let b = &mut self.scratch;
                b.clear();
                b.extend_from_slice(br#"42["broadcast","fan","#);
                push_data(b, seq, self.now, self.cfg.size);
                b.push(b']');
                tx.text(b);
            } else {
                let n = self.bin.len();
                self.bin[..8].copy_from_slice(&seq.to_le_bytes());
                self.bin[8..16].copy_from_slice(&self.now.to_le_bytes());
                self.bin[n - 8..].copy_from_slice(&seq.to_le_bytes());
                tx.text(BIN_HEADER);
                tx.binary(&self.bin)?;
            }
        }
        sender.flush()
    }

    // ---- run phases ----

    /// Opens connections while fewer than `concurrency` are in their handshake.
    fn open_clients(&mut self, clients: &mut Vec<Client>, registry: &Registry) -> Res<()> {
        if !matches!(self.phase, RunPhase::Connect | RunPhase::Reconnect) {
            return Ok(());
        }
        while self.started < self.total && self.started - self.connected < self.cfg.concurrency {
            let idx = clients.len();
            let c = self
                .open_client(idx, registry)
                .map_err(|e| format!("client {idx}: {e}"))?;
            clients.push(c);
            self.started += 1;
        }
        Ok(())
    }

    fn open_client(&self, idx: usize, registry: &Registry) -> Res<Client> {
        let role = match self.cfg.scenario {
            _ if idx == self.cfg.clients => Role::Sender,
            Scenario::Idle | Scenario::Storm | Scenario::IdlePing => Role::Idle,
            Scenario::Echo | Scenario::Polling => Role::Echo,
            Scenario::Fanout | Scenario::Binary => Role::Receiver,
        };
        let polling = self.cfg.scenario == Scenario::Polling;
        Client::open(
            idx,
            self.cfg.addr,
            polling,
            role,
            self.cfg.in_flight,
            registry,
            self.now,
        )
    }

    /// A client failed with `err`: storm retries a failed handshake (a real client
    /// reconnects too) and counts it; anything else ends the run.
    fn on_client_error(
        &mut self,
        idx: usize,
        clients: &mut [Client],
        registry: &Registry,
        err: String,
    ) -> Res<()> {
        let c = &mut clients[idx];
        let err = format!("client {idx} ({:?}): {err}", c.s.role);
        if self.cfg.scenario != Scenario::Storm || c.s.phase == Phase::Ready {
            return Err(err);
        }
        if self.phase == RunPhase::Reconnect {
            self.failed += 1;
        } else {
            self.failed_initial += 1;
        }
        if self.failed + self.failed_initial > MAX_FAILURES_PER_CLIENT * self.total as u64 {
            return Err(format!(
                "{} failed handshakes, the first: {}",
                self.failed + self.failed_initial,
                self.first_failure.as_deref().unwrap_or("?")
            ));
        }
        if self.first_failure.is_none() {
            eprintln!("loadgen: handshake failed, retrying: {err}");
            self.first_failure = Some(err);
        }
        // The retry's latency counts from the first attempt.
        let t_start = c.s.t_start;
        *c = self
            .open_client(idx, registry)
            .map_err(|e| format!("client {idx}: {e}"))?;
        c.s.t_start = t_start;
        Ok(())
    }

    /// Starts connects, advances phases and refills the sender; called after each batch.
    fn pump(&mut self, clients: &mut Vec<Client>, registry: &Registry) -> Res<()> {
        self.open_clients(clients, registry)?;
        loop {
            let now = self.now;
            let next = match self.phase {
                RunPhase::Connect
                    if self.connected == self.total && self.joined == self.joiners =>
                {
                    self.connected_at = self.sample()?;
                    if self.cfg.scenario == Scenario::Idle {
                        RunPhase::Hold(now + IDLE_HOLD.as_micros() as u64)
                    } else if self.cfg.scenario == Scenario::Storm {
                        RunPhase::StormHold(now + STORM_HOLD.as_micros() as u64)
                    } else {
                        self.load_on = true;
                        if !self.cfg.scenario.broadcasts() && !self.cfg.scenario.idle_clients() {
                            for c in clients.iter_mut() {
                                let (mut tx, s) = c.tx();
                                for _ in 0..self.cfg.in_flight {
                                    self.send_echo(s, &mut tx)?;
                                }
                                c.flush()?;
                            }
                        }
                        RunPhase::Warmup(now + secs_us(self.cfg.warmup))
                    }
                }
                RunPhase::Warmup(end) if now >= end => {
                    self.win_start = self.sample()?;
                    self.ops = 0;
                    self.deliveries = 0;
                    self.pings = 0;
                    self.hist.clear();
                    self.measuring = true;
                    RunPhase::Measure(now + secs_us(self.cfg.duration))
                }
                RunPhase::Measure(end) if now >= end => {
                    self.win_end = self.sample()?;
                    self.measuring = false;
                    self.load_on = false;
                    RunPhase::Drain(now + DRAIN.as_micros() as u64)
                }
                RunPhase::Drain(_) if self.incomplete == 0 && self.outstanding == 0 => {
                    RunPhase::Done
                }
                RunPhase::Drain(end) if now >= end => {
                    return Err(format!(
                        "lost: {} echoes unacked, {} broadcasts incomplete {} s after the window",
                        self.outstanding,
                        self.incomplete,
                        DRAIN.as_secs()
                    ));
                }
                RunPhase::Hold(end) if now >= end => {
                    self.held = self.sample()?;
                    RunPhase::Done
                }
                RunPhase::StormHold(end) if now >= end => {
                    // Sampled before the drop: the server starts on the FINs while the
                    // rest are still being closed.
                    self.dropped_at = self.sample()?;
                    self.held = self.dropped_at;
                    // All at once: every socket closes (FIN) before the first reconnect.
                    clients.clear();
                    self.started = 0;
                    self.connected = 0;
                    let ticks = self.dropped_at.srv_ticks;
                    RunPhase::Settle(now + SETTLE_MIN.as_micros() as u64, ticks)
                }
                RunPhase::Settle(at, last) if now >= at => {
                    let ticks = self.sample()?.srv_ticks;
                    let quiet = ticks.is_none() || (last.is_some() && ticks == last);
                    let waited = Duration::from_micros(now - self.dropped_at.at);
                    if quiet || waited >= SETTLE_MAX {
                        self.settled_at = self.sample()?;
                        self.hist.clear();
                        RunPhase::Reconnect
                    } else {
                        RunPhase::Settle(now + SETTLE_STEP.as_micros() as u64, ticks)
                    }
                }
                RunPhase::Reconnect if self.connected == self.total => {
                    self.reconnected_at = self.sample()?;
                    RunPhase::Done
                }
                _ => break,
            };
            self.phase = next;
        }
        // A phase that just began may open connections (the storm's reconnect).
        self.open_clients(clients, registry)?;
        if self.load_on && self.cfg.scenario.broadcasts() {
            let sender = clients
                .get_mut(self.cfg.clients)
                .ok_or("sender not started")?;
            self.top_up(sender).map_err(|e| format!("sender: {e}"))?;
        }
        Ok(())
    }

    /// When the phase next changes by itself, for the poll timeout.
    fn next_deadline(&self) -> Option<u64> {
        match self.phase {
            RunPhase::Warmup(t)
            | RunPhase::Measure(t)
            | RunPhase::Drain(t)
            | RunPhase::Hold(t)
            | RunPhase::StormHold(t)
            | RunPhase::Settle(t, _) => Some(t),
            RunPhase::Connect | RunPhase::Reconnect | RunPhase::Done => None,
        }
    }

    fn progress(&self) -> String {
        format!(
            "phase {:?}: {}/{} connected, {}/{} joined, {} echoes unacked, {} broadcasts incomplete",
            self.phase,
            self.connected,
            self.total,
            self.joined,
            self.joiners,
            self.outstanding,
            self.incomplete
        )
    }

    // ---- report ----

    fn report(&self) -> Res<String> {
        let tck = stats::clock_ticks_per_s();
        let cfg = &self.cfg;
        let idle = cfg.scenario == Scenario::Idle;
        let storm = cfg.scenario == Scenario::Storm;
        let idle_ping = cfg.scenario == Scenario::IdlePing;
        // Idle measures the connect phase, storm the reconnect phase; the others the window
        // after warmup.
        let (a, b) = if idle {
            (&self.base, &self.connected_at)
        } else if storm {
            (&self.settled_at, &self.reconnected_at)
        } else {
            (&self.win_start, &self.win_end)
        };
        let secs = (b.at - a.at) as f64 / 1e6;
        let (ops, deliveries) = if idle || storm {
            (self.connected as u64, 0)
        } else if idle_ping {
            (self.pings, 0)
        } else {
            (self.ops, self.deliveries)
        };
        if ops == 0 {
            return Err("no operations completed in the measured window".into());
        }
        let srv_cpu = match (a.srv_ticks, b.srv_ticks) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / tck),
            _ => None,
        };
        let per = |n: u64| srv_cpu.filter(|_| n > 0).map(|c| c * 1e6 / n as f64);
        let self_cpu = b.self_ticks.saturating_sub(a.self_ticks) as f64 / tck;
        let (rss_start, rss_end) = if idle || storm {
            (self.base.srv_rss, self.held.srv_rss)
        } else {
            (a.srv_rss, b.srv_rss)
        };

        let mut j = Json::default();
        j.str("scenario", cfg.scenario.name());
        j.str(
            "transport",
            if cfg.scenario == Scenario::Polling {
                "polling"
            } else {
                "websocket"
            },
        );
        j.int("clients", Some(cfg.clients as u64));
        let sends = !cfg.scenario.idle_clients();
        j.int("in_flight", sends.then_some(cfg.in_flight as u64));
        j.int("size", sends.then_some(cfg.size as u64));
        j.int("concurrency", Some(cfg.concurrency as u64));
        j.num("duration_s", Some(secs));
        j.int("ops", Some(ops));
        j.num("ops_per_s", Some(ops as f64 / secs));
        j.int("deliveries", Some(deliveries));
        j.num("deliveries_per_s", Some(deliveries as f64 / secs));
        j.int("lat_p50_us", self.hist.percentile(0.50));
        j.int("lat_p99_us", self.hist.percentile(0.99));
        j.num("server_cpu_s", srv_cpu);
        j.num("server_cpu_us_per_op", per(ops));
        j.num("server_cpu_us_per_delivery", per(deliveries));
        j.int("server_rss_kib_start", rss_start);
        j.int("server_rss_kib_end", rss_end);
        j.num("loadgen_cpu_s", Some(self_cpu));
        if idle {
            j.num("connects_per_s", Some(ops as f64 / secs));
            j.num("server_cpu_us_per_connect", per(ops));
            let rss = match (rss_start, rss_end) {
                (Some(x), Some(y)) => Some((y as f64 - x as f64) / ops as f64),
                _ => None,
            };
            j.num("rss_kib_per_conn", rss);
        }
        if storm {
            j.num("reconnect_s", Some(secs));
            j.num("reconnects_per_s", Some(ops as f64 / secs));
            j.num("server_cpu_us_per_reconnect", per(ops));
            j.int("failed_handshakes", Some(self.failed));
            j.int("failed_handshakes_initial", Some(self.failed_initial));
            // SYNs dropped by a full listen queue: no failure for the client, which
            // retransmits after 1 s, but a handshake the server refused for now.
            let drops = match (a.listen_drops, b.listen_drops) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x)),
                _ => None,
            };
            j.int("listen_drops", drops);
            let connect_s = (self.connected_at.at - self.base.at) as f64 / 1e6;
            j.num("initial_connect_s", Some(connect_s));
            // The disconnects: from the drop until the server went quiet.
            let (d, q) = (&self.dropped_at, &self.settled_at);
            j.num("settle_s", Some((q.at - d.at) as f64 / 1e6));
            let drop_cpu = match (d.srv_ticks, q.srv_ticks) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / tck * 1e6 / ops as f64),
                _ => None,
            };
            j.num("server_cpu_us_per_disconnect", drop_cpu);
        }
        if idle_ping {
            j.int("pings", Some(ops));
            j.num("ping_rounds", Some(ops as f64 / cfg.clients as f64));
            j.num("pings_per_s", Some(ops as f64 / secs));
            j.num("server_cpu_us_per_ping", per(ops));
        }
        j.int("errors", Some(0));

        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.2}{unit}"));
        let mut human = format!(
            "{}: {} clients, {ops} ops in {secs:.2} s = {:.0}/s",
            cfg.scenario.name(),
            cfg.clients,
            ops as f64 / secs
        );
        if cfg.scenario.broadcasts() {
            let _ = write!(human, ", {:.0} deliveries/s", deliveries as f64 / secs);
        }
        let _ = write!(
            human,
            ", latency p50 {} us p99 {} us, server CPU {} ({} us/op), loadgen CPU {self_cpu:.2} s",
            self.hist.percentile(0.5).unwrap_or(0),
            self.hist.percentile(0.99).unwrap_or(0),
            opt(srv_cpu, " s"),
            opt(per(ops), ""),
        );
        if storm {
            let _ = write!(
                human,
                ", {} failed handshakes ({} before the drop), {} SYNs dropped",
                self.failed,
                self.failed_initial,
                match (a.listen_drops, b.listen_drops) {
                    (Some(x), Some(y)) => y.saturating_sub(x).to_string(),
                    _ => "?".into(),
                }
            );
        }
        if let (true, Some(x), Some(y)) = (idle || storm, rss_start, rss_end) {
            let _ = write!(human, ", server RSS {x} -> {y} KiB");
        }
        eprintln!("{human}");
        Ok(j.finish())
    }
}

/// Writes the benchmark data `[seq,t,"xx..x"]`, padded to `size` bytes when it fits.
fn push_data(b: &mut Vec<u8>, seq: u64, t: u64, size: usize) {
    b.push(b'[');
    proto::push_u64(b, seq);
    b.push(b',');
    proto::push_u64(b, t);
    b.extend_from_slice(b",\"");
    let pad = pad_len(seq, t, size);
    b.resize(b.len() + pad, b'x');
    b.extend_from_slice(b"\"]");
}

fn pad_len(seq: u64, t: u64, size: usize) -> usize {
    size.saturating_sub(proto::digits(seq) + proto::digits(t) + 6)
}

/// Checks echoed data against what `push_data` wrote for `seq`; returns its timestamp.
fn check_data(c: &mut Cursor<'_>, seq: u64, size: usize) -> Res<u64> {
    c.eat(b'[')?;
    let got = c.u64()?;
    c.eat(b',')?;
    let t = c.u64()?;
    c.eat(b',')?;
    let pad = c.str()?;
    c.eat(b']')?;
    if got != seq || pad.len() != pad_len(seq, t, size) || pad.iter().any(|&x| x != b'x') {
        return Err(format!(
            "ack {seq} carries the data of another message (seq {got})"
        ));
    }
    Ok(t)
}

/// Filler byte `i` of the binary attachment.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

fn secs_us(s: f64) -> u64 {
    (s * 1e6) as u64
}

/// A one-line JSON object builder for the report (keys and values are all ours).
#[derive(Default)]
struct Json(String);

impl Json {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{k}\":");
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        let _ = write!(self.0, "\"{v}\"");
    }
    fn int(&mut self, k: &str, v: Option<u64>) {
        self.key(k);
        match v {
            Some(v) => {
                let _ = write!(self.0, "{v}");
            }
            None => self.0.push_str("null"),
        }
    }
    fn num(&mut self, k: &str, v: Option<f64>) {
        self.key(k);
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let _ = write!(self.0, "{v:.3}");
            }
            None => self.0.push_str("null"),
        }
    }
    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Runs one scenario to completion; returns the JSON report line.
pub fn run(cfg: Config) -> Res<String> {
    let per_client = if cfg.scenario == Scenario::Polling {
        2
    } else {
        1
    };
    stats::raise_nofile(((cfg.clients + 1) * per_client + 64) as u64)?;
    // Generous slack over the planned run (connect phase included) before giving up.
    let planned = match cfg.scenario {
        Scenario::Idle => IDLE_HOLD.as_secs_f64(),
        // Two connect phases.
        Scenario::Storm => (STORM_HOLD + SETTLE_MAX).as_secs_f64() + cfg.clients as f64 / 1000.0,
        _ => cfg.warmup + cfg.duration,
    };
    let timeout = planned + 30.0 + cfg.clients as f64 / 1000.0;
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut b = Bench::new(cfg);
    let mut clients: Vec<Client> = Vec::with_capacity(b.total);
    b.base = b.sample()?;
    let deadline = b.clock() + secs_us(timeout);
    loop {
        b.now = b.clock();
        b.pump(&mut clients, poll.registry())?;
        if b.phase == RunPhase::Done {
            break;
        }
        if b.now > deadline {
            return Err(format!(
                "timed out after {timeout:.0} s in {}",
                b.progress()
            ));
        }
        // Wake for the next phase change and the hard deadline; 50 ms caps the lag of both.
        let wake = b.next_deadline().unwrap_or(u64::MAX).min(deadline);
        let wait = Duration::from_micros(wake.saturating_sub(b.now)).min(Duration::from_millis(50));
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            let token = ev.token().0;
            let idx = token / 2;
            b.now = b.clock();
            let Some(c) = clients.get_mut(idx) else {
                return Err(format!("event for unknown token {token}"));
            };
            if let Err(e) = c.on_ready(token % 2, ev.is_read_closed(), &mut b) {
                b.on_client_error(idx, &mut clients, poll.registry(), e)?;
            }
        }
    }
    // Close every connection before reporting; the server sees the disconnects.
    b.closing = true;
    drop(clients);
    b.report()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(scenario: Scenario, clients: usize) -> Bench {
        Bench::new(Config {
            addr: "127.0.0.1:1".parse().unwrap(),
            scenario,
            clients,
            in_flight: 1,
            duration: 1.0,
            warmup: 0.0,
            size: 32,
            server_pid: None,
            concurrency: 1,
        })
    }

    fn sio(role: Role) -> Sio {
        Sio::new(role, 1, 0)
    }

    #[test]
    fn data_round_trip() {
        for (seq, t, size) in [(1, 5, 32), (123456, 987654321, 32), (7, 7, 3), (9, 1, 300)] {
            let mut b = Vec::new();
            push_data(&mut b, seq, t, size);
            if size >= 10 {
                assert_eq!(b.len(), size);
            }
            assert_eq!(check_data(&mut Cursor::new(&b), seq, size), Ok(t));
            assert!(check_data(&mut Cursor::new(&b), seq + 1, size).is_err());
        }
    }

    #[test]
    fn echo_client_handshake_and_ack() {
        let mut b = bench(Scenario::Polling, 1);
        let mut s = sio(Role::Echo);
        let mut q = Vec::new();
        b.on_text(
            &mut s,
            br#"0{"sid":"a","pingInterval":25000}"#,
            &mut Tx::Poll(&mut q),
        )
        .unwrap();
        assert_eq!(q, b"40");
        b.on_text(&mut s, br#"40{"sid":"b"}"#, &mut Tx::Poll(&mut q))
            .unwrap();
        assert_eq!(s.phase, Phase::Ready);
        b.on_text(&mut s, b"2", &mut Tx::Poll(&mut q)).unwrap();
        assert_eq!(q, b"40\x1e3");
        q.clear();
        b.now = 1000;
        b.load_on = true;
        b.measuring = true;
        b.send_echo(&mut s, &mut Tx::Poll(&mut q)).unwrap();
        let sent = q.clone();
        assert!(sent.starts_with(br#"421["echo",[1,1000,""#), "{sent:?}");
        // The ack carries the same arguments; the server may add whitespace.
        let mut ack = b"43 1[ ".to_vec();
        ack.retain(|&c| c != b' ');
        ack.extend_from_slice(&sent[br#"421["echo","#.len()..]);
        q.clear();
        b.now = 1250;
        b.on_text(&mut s, &ack, &mut Tx::Poll(&mut q)).unwrap();
        assert_eq!((b.ops, s.outstanding), (1, 1), "the next echo went out");
        assert_eq!(b.hist.percentile(0.5), Some(250));
        // A second ack for the same id is an error.
        b.load_on = false;
        assert!(b.on_text(&mut s, &ack, &mut Tx::Poll(&mut q)).is_err());
    }

    #[test]
    fn idle_ping_counts_pings_in_the_window_and_answers_each() {
        let mut b = bench(Scenario::IdlePing, 1);
        let mut s = sio(Role::Idle);
        s.phase = Phase::Ready;
        let mut q = Vec::new();
        b.on_text(&mut s, b"2", &mut Tx::Poll(&mut q)).unwrap();
        assert_eq!(
            (q.as_slice(), b.pings),
            (&b"3"[..], 0),
            "warm-up pings not counted"
        );
        b.measuring = true;
        q.clear();
        b.on_text(&mut s, b"2", &mut Tx::Poll(&mut q)).unwrap();
        b.on_text(&mut s, b"2", &mut Tx::Poll(&mut q)).unwrap();
        assert_eq!((q.as_slice(), b.pings), (&b"3\x1e3"[..], 2));
    }

    #[test]
    fn storm_names_and_idle_roles() {
        for (name, scenario) in [
            ("storm", Scenario::Storm),
            ("idle-ping", Scenario::IdlePing),
        ] {
            assert_eq!(Scenario::parse(name), Some(scenario));
            assert_eq!(scenario.name(), name);
            assert!(scenario.idle_clients() && !scenario.broadcasts());
        }
    }

    #[test]
    fn acks_out_of_order_once_each() {
        let mut s = Sio::new(Role::Echo, 4, 0);
        for id in 1..=4 {
            s.await_ack(id).unwrap();
        }
        s.next_id = 5;
        s.take_ack(3).unwrap();
        s.take_ack(1).unwrap();
        assert!(s.take_ack(3).is_err());
        assert!(s.take_ack(9).is_err());
        assert_eq!(s.outstanding, 2);
        // Id 2 stays unacked while ids cycle through the 64-id window.
        s.take_ack(4).unwrap();
        for id in 5..66 {
            s.await_ack(id).unwrap();
            s.next_id = id + 1;
            s.take_ack(id).unwrap();
        }
        assert!(s.await_ack(66).is_err(), "ack 2 is reported missing");
    }

    #[test]
    fn receiver_join_and_deliveries() {
        let mut b = bench(Scenario::Fanout, 2);
        let mut s = sio(Role::Receiver);
        s.phase = Phase::WaitConnect;
        let mut q = Vec::new();
        b.on_text(&mut s, br#"40{"sid":"b"}"#, &mut Tx::Poll(&mut q))
            .unwrap();
        assert_eq!(q, br#"421["join","fan"]"#);
        b.on_text(&mut s, br#"431["ok"]"#, &mut Tx::Poll(&mut q))
            .unwrap();
        assert_eq!(b.joined, 1);
        b.ring[5] = Slot {
            seq: 5,
            t: 77,
            count: 1,
            active: true,
        };
        b.incomplete = 1;
        b.measuring = true;
        b.on_text(&mut s, br#"42["bc",[5,77,"xxxx"]]"#, &mut Tx::Poll(&mut q))
            .unwrap();
        assert_eq!((b.ops, b.deliveries, b.incomplete), (1, 1, 0));
        // Duplicates, unknown broadcasts and other events fail.
        assert!(
            b.on_text(&mut s, br#"42["bc",[5,77]]"#, &mut Tx::Poll(&mut q))
                .is_err()
        );
        assert!(
            b.on_text(&mut s, br#"42["bc",[6,77]]"#, &mut Tx::Poll(&mut q))
                .is_err()
        );
        assert!(
            b.on_text(&mut s, br#"42["other",1]"#, &mut Tx::Poll(&mut q))
                .is_err()
        );
        assert!(
            b.on_text(&mut s, br#"44{"message":"no"}"#, &mut Tx::Poll(&mut q))
                .is_err()
        );
    }
}
