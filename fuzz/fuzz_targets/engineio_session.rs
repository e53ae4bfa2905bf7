//! The Engine.IO `Session` state machine under arbitrary sequences of peer input, application
//! commands and time (a fake clock: a base `Instant` plus the sum of `AdvanceMs` ops). It never
//! panics, and it keeps these invariants:
//! - at most one `Event::Closed`, and no `Message` or `Upgraded` after it; at most one
//!   `Upgraded`; `is_open()` is false exactly when `Closed` was emitted;
//! - an open session always has a timer armed (the heartbeat);
//! - when the timer is due, `handle_timeout(now)` makes progress: after at most a couple of
//!   calls the timer is in the future or the session is finished, so a driver cannot spin;
//! - once `is_finished(now)` holds, it keeps holding as time advances with no input;
//! - `poll_polling_response` only answers a held GET, never with an empty `Vec`, and puts a
//!   close packet last; no packet is handed out after a close packet;
//! - the poll and probe methods' results agree with the session's state.
//!
//! The top bit of `upgrade_timeout_ms` picks an Engine.IO 3 session (`Session::new_v3`: the
//! client pings, the server answers), so the seeds written before it keep their meaning.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sioloop::protocol::engineio::handshake::TransportKind;
use sioloop::protocol::engineio::packet::{Message, Packet};
use sioloop::protocol::engineio::session::{
    CloseReason, Event, PollError, ProbeReply, Session, SessionConfig,
};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Input {
    websocket: bool,
    ping_interval_ms: u16,
    ping_timeout_ms: u16,
    upgrade_timeout_ms: u16,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    AdvanceMs(u16),
    /// A packet on the session's transport (`handle_packet`).
    Packet(InPacket),
    PollGet,
    CheckPoll,
    Send(InMessage),
    Close(InReason),
    ProbeStart,
    ProbePacket(InPacket),
    ProbeClosed,
    /// `handle_timeout(now)`, whether or not it is due.
    Timeout,
    /// What a driver does when its timer fires: `handle_timeout` while `poll_timeout` is due.
    FireTimer,
    DrainEvents,
    DrainPolling,
    DrainWs,
}

#[derive(Arbitrary, Debug)]
enum InMessage {
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

impl InMessage {
    fn into_message(self) -> Message {
        match self {
            InMessage::Text(bytes) => Message::Text(String::from_utf8_lossy(&bytes).into_owned()),
            InMessage::Binary(bytes) => Message::Binary(bytes),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum InData {
    Empty,
    Probe,
    Other(Vec<u8>),
}

impl InData {
    fn into_string(self) -> String {
        match self {
            InData::Empty => String::new(),
            InData::Probe => "probe".to_owned(),
            InData::Other(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum InPacket {
    Message(InMessage),
    Pong(InData),
    Ping(InData),
    Upgrade,
    Close,
    Noop,
    Open(InData),
}

impl InPacket {
    fn into_packet(self) -> Packet {
        match self {
            InPacket::Message(m) => Packet::Message(m.into_message()),
            InPacket::Pong(d) => Packet::Pong(d.into_string()),
            InPacket::Ping(d) => Packet::Ping(d.into_string()),
            InPacket::Upgrade => Packet::Upgrade,
            InPacket::Close => Packet::Close,
            InPacket::Noop => Packet::Noop,
            InPacket::Open(d) => Packet::Open(d.into_string()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum InReason {
    TransportClose,
    TransportError,
    PingTimeout,
    ParseError,
    ForcedClose,
    ServerShuttingDown,
}

impl From<InReason> for CloseReason {
    fn from(reason: InReason) -> Self {
        match reason {
            InReason::TransportClose => CloseReason::TransportClose,
            InReason::TransportError => CloseReason::TransportError,
            InReason::PingTimeout => CloseReason::PingTimeout,
            InReason::ParseError => CloseReason::ParseError,
            InReason::ForcedClose => CloseReason::ForcedClose,
            InReason::ServerShuttingDown => CloseReason::ServerShuttingDown,
        }
    }
}

/// The session under test, the fake clock, and what has been observed so far.
struct Harness {
    session: Session,
    now: Instant,
    closed_seen: bool,
    upgraded_seen: bool,
    close_packet_sent: bool,
    /// `3probe` was sent and the probe has not ended (or its `Upgraded` not been seen).
    probed: bool,
    /// The session closed while probed: it may still complete that one upgrade.
    closed_while_probed: bool,
    /// The close has been noted (see `apply`).
    close_noted: bool,
}

impl Harness {
    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(_) => assert!(!self.closed_seen, "Message after Closed"),
                Event::Upgraded => {
                    // A session closed while probed lets that upgrade finish (the client has
                    // paused polling and only the WebSocket can carry the close).
                    assert!(
                        !self.closed_seen || self.closed_while_probed,
                        "Upgraded after Closed, and the close was not during a probe"
                    );
                    assert!(!self.upgraded_seen, "a second Upgraded");
                    self.upgraded_seen = true;
                    self.probed = false;
                }
                // An abort drained late may be an earlier probe's: a probe standing now is
                // not the one it ended.
                Event::ProbeAborted => {
                    if !self.session.is_upgrading() {
                        self.probed = false;
                    }
                }
                Event::Closed(_) => {
                    assert!(!self.closed_seen, "a second Closed");
                    self.closed_seen = true;
                }
            }
        }
        assert_eq!(
            self.session.is_open(),
            !self.closed_seen,
            "is_open() disagrees with the Closed event"
        );
    }

    fn sent(&mut self, packet: &Packet) {
        assert!(!self.close_packet_sent, "{packet:?} after a close packet");
        if *packet == Packet::Close {
            self.close_packet_sent = true;
        }
    }

    fn drain_polling(&mut self) {
        let held = self.session.is_get_held();
        if let Some(packets) = self.session.poll_polling_response() {
            assert!(held, "answered a GET that was not held");
            assert!(!packets.is_empty(), "empty polling response");
            assert!(!self.session.is_get_held());
            if let Some(i) = packets.iter().position(|p| *p == Packet::Close) {
                assert_eq!(i, packets.len() - 1, "close packet is not last");
            }
            for packet in &packets {
                self.sent(packet);
            }
        }
    }

    fn drain_ws(&mut self) {
        while let Some(packet) = self.session.poll_ws_packet() {
            assert_eq!(self.session.transport(), TransportKind::WebSocket);
            self.sent(&packet);
        }
    }

    fn fire_timer(&mut self) {
        let now = self.now;
        // A due ping with a zero ping timeout takes two rounds: ping, then the timeout.
        for _ in 0..3 {
            self.drain_events();
            let due = self.session.poll_timeout().is_some_and(|t| t <= now);
            if !due || self.session.is_finished(now) {
                return;
            }
            self.session.handle_timeout(now);
        }
        self.drain_events();
        assert!(
            self.session.is_finished(now) || self.session.poll_timeout().is_none_or(|t| t > now),
            "handle_timeout makes no progress: poll_timeout() = {:?} <= now",
            self.session.poll_timeout().map(|t| t.duration_since(now))
        );
    }

    fn check_poll_result(&self, result: Result<(), PollError>) {
        match result {
            Ok(()) => assert_eq!(self.session.transport(), TransportKind::Polling),
            Err(PollError::TransportMismatch) => {
                assert_eq!(self.session.transport(), TransportKind::WebSocket);
            }
            Err(PollError::Overlap | PollError::Closed) => assert!(!self.session.is_open()),
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        // Whether a probe stood when this op closed the session is noted here, not when the
        // Closed event is drained: later ops may end the probe before that.
        let probed_before = self.probed;
        match op {
            Op::AdvanceMs(ms) => {
                let finished = self.session.is_finished(now);
                self.now = now + Duration::from_millis(u64::from(ms));
                if finished {
                    assert!(
                        self.session.is_finished(self.now),
                        "is_finished went back to false as time passed"
                    );
                }
            }
            Op::Packet(packet) => self.session.handle_packet(packet.into_packet(), now),
            Op::PollGet => {
                let result = self.session.handle_poll_get(now);
                self.check_poll_result(result);
                if result.is_ok() {
                    assert!(self.session.is_get_held());
                }
            }
            Op::CheckPoll => {
                let result = self.session.check_poll(now);
                self.check_poll_result(result);
            }
            Op::Send(message) => {
                let open = self.session.is_open();
                assert_eq!(self.session.send(message.into_message()), open);
            }
            Op::Close(reason) => self.session.close(reason.into(), now),
            Op::ProbeStart => {
                let was_polling = self.session.transport() == TransportKind::Polling;
                let was_upgrading = self.session.is_upgrading();
                if self.session.handle_probe_start(now) {
                    assert!(was_polling && !was_upgrading && self.session.is_open());
                    assert!(self.session.is_upgrading());
                    // A new probe, not probed yet.
                    self.probed = false;
                }
            }
            Op::ProbePacket(packet) => {
                match self.session.handle_probe_packet(packet.into_packet(), now) {
                    ProbeReply::Send(reply) => {
                        assert_eq!(reply, Packet::Pong("probe".to_owned()));
                        assert!(self.session.is_upgrading());
                        self.probed = true;
                    }
                    ProbeReply::Upgraded => {
                        assert_eq!(self.session.transport(), TransportKind::WebSocket);
                        assert!(!self.session.is_upgrading());
                    }
                    ProbeReply::Abort => {
                        assert!(!self.session.is_upgrading());
                        self.probed = false;
                    }
                }
            }
            Op::ProbeClosed => {
                self.session.handle_probe_closed();
                assert!(!self.session.is_upgrading());
                self.probed = false;
            }
            Op::Timeout => self.session.handle_timeout(now),
            Op::FireTimer => self.fire_timer(),
            Op::DrainEvents => self.drain_events(),
            Op::DrainPolling => self.drain_polling(),
            Op::DrainWs => self.drain_ws(),
        }
        if !self.session.is_open() && !self.close_noted {
            self.close_noted = true;
            self.closed_while_probed = probed_before;
        }
        if self.session.is_open() {
            assert!(
                self.session.poll_timeout().is_some(),
                "an open session has no timer armed"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let config = SessionConfig {
        ping_interval: Duration::from_millis(u64::from(input.ping_interval_ms)),
        ping_timeout: Duration::from_millis(u64::from(input.ping_timeout_ms)),
        upgrade_timeout: Duration::from_millis(u64::from(input.upgrade_timeout_ms & 0x7fff)),
    };
    let v3 = input.upgrade_timeout_ms & 0x8000 != 0;
    let transport = if input.websocket {
        TransportKind::WebSocket
    } else {
        TransportKind::Polling
    };
    let start = Instant::now();
    let mut harness = Harness {
        session: if v3 {
            let b64 = input.ping_timeout_ms & 1 == 1;
            Session::new_v3(transport, config, "{\"sid\":\"fuzz\"}".to_owned(), b64, start)
        } else {
            Session::new(transport, config, "{\"sid\":\"fuzz\"}".to_owned(), start)
        },
        now: start,
        closed_seen: false,
        upgraded_seen: false,
        probed: false,
        closed_while_probed: false,
        close_noted: false,
        close_packet_sent: false,
    };
    assert!(harness.session.is_open());
    for op in input.ops {
        harness.apply(op);
    }
    // Whatever is left is still well-formed.
    harness.drain_events();
    harness.drain_polling();
    harness.drain_ws();
    harness.fire_timer();
});
