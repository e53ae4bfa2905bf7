//! The real engine on an in-memory network (`Engine::in_memory`): what clients see when
//! the driver's own rules apply, step by step and without timing: refused connections get
//! their `503` before a graceful close, a flooding connection gets one share per turn while
//! others are served, the memory budget pauses the biggest holders, limits count messages.

#[path = "common/raw.rs"]
mod raw;

use raw::{masked_frame, masked_text, server_frames};
use sioloop::engine::{ClientId, Config, Engine, EngineHandler, MemoryNet, SessionId};
use sioloop::protocol::engineio::{CloseReason, Message};
use std::time::Duration;

/// Echoes every message (a text starting with `all` goes to every session instead), and
/// records what it saw.
#[derive(Default)]
struct Echo {
    sessions: Vec<SessionId>,
    messages: Vec<(SessionId, Message)>,
    closed: Vec<(SessionId, CloseReason)>,
}

impl EngineHandler for Echo {
    fn on_open(&mut self, _engine: &mut Engine, id: SessionId) {
        self.sessions.push(id);
    }
    fn on_message(&mut self, engine: &mut Engine, id: SessionId, message: Message) {
        if matches!(&message, Message::Text(t) if t.starts_with("all")) {
            for &to in &self.sessions {
                engine.send(to, message.clone());
            }
        } else {
            engine.send(id, message.clone());
        }
        self.messages.push((id, message));
    }
    fn on_close(&mut self, _engine: &mut Engine, id: SessionId, reason: CloseReason) {
        self.closed.push((id, reason));
    }
}

struct Harness {
    engine: Engine,
    net: MemoryNet,
    handler: Echo,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let (engine, net) = Engine::in_memory(config);
        Harness {
            engine,
            net,
            handler: Echo::default(),
        }
    }

    fn turn(&mut self) {
        assert!(self.engine.turn(&mut self.handler).expect("turn"));
    }

    fn turns(&mut self, n: usize) {
        for _ in 0..n {
            self.turn();
        }
    }

    /// A WebSocket session: upgrade request, 101, open packet. Returns the client.
    fn websocket(&mut self) -> ClientId {
        let client = self.net.connect();
        self.net.send(client, raw::WS_UPGRADE_REQUEST);
        self.turns(2);
        let out = self.net.take_output(client);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        assert!(text.contains("\"sid\""), "open packet expected: {text}");
        client
    }

    fn messages_from(&self, text_prefix: &str) -> usize {
        self.handler
            .messages
            .iter()
            .filter(|(_, m)| matches!(m, Message::Text(t) if t.starts_with(text_prefix)))
            .count()
    }
}

#[test]
fn a_refused_connection_gets_its_503_then_a_graceful_close() {
    let mut h = Harness::new(Config::default().max_connections(1, 1));
    let first = h.net.connect();
    h.turn();
    assert!(h.net.accepted(first));
    // Past the limit, with a request already sent: input the server will not parse.
    let refused = h.net.connect();
    h.net.send(
        refused,
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n",
    );
    h.turns(2);
    let answer = String::from_utf8(h.net.take_output(refused)).expect("utf-8");
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
            && answer.ends_with("too many connections"),
        "{answer}"
    );
    assert!(h.net.server_closed(refused), "the server sent its FIN");
    assert!(
        !h.net.server_reset(refused),
        "closed with unread input: a reset could destroy the 503 before it is read"
    );
    // The server reads until the client's end, then lets go of the connection.
    h.net.close(refused);
    h.turns(2);
    assert_eq!(h.engine.connection_count(), 1);
    let stats = h.engine.stats();
    assert_eq!((stats.connections_refused, stats.refusals_answered), (1, 1));
    // The refusal does not count against the limit once it is gone.
    h.net.close(first);
    h.turns(2);
    let next = h.net.connect();
    h.turns(2);
    assert!(h.net.accepted(next) && !h.net.server_closed(next));
}

#[test]
fn a_flooding_connection_gets_one_share_per_turn() {
    let mut h = Harness::new(Config::default());
    let flooder = h.websocket();
    let other = h.websocket();
    let burst: Vec<u8> = (0..1000)
        .flat_map(|i| masked_text(&format!("4flood{i}")))
        .collect();
    h.net.send(flooder, &burst);
    h.net.send(other, &masked_text("4hello"));
    h.turn();
    let flooded = h.messages_from("flood");
    assert!(
        (1..=64).contains(&flooded),
        "one turn handled {flooded} of the flooder's messages"
    );
    assert_eq!(h.messages_from("hello"), 1, "the other client waited");
    assert!(h.engine.stats().reads_deferred > 0);
    // The rest follows, a share per turn, in order, without any new input.
    let mut turns = 1;
    while h.messages_from("flood") < 1000 {
        h.turn();
        turns += 1;
        assert!(turns < 100, "stalled at {}", h.messages_from("flood"));
    }
    assert!(turns >= 1000 / 64, "{turns} turns");
    let order: Vec<String> = h
        .handler
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Text(t) if t.starts_with("flood") => Some(t.clone()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..1000).map(|i| format!("flood{i}")).collect();
    assert_eq!(order, expected);
    // Every echo reached the flooder.
    let echoes = server_frames(&h.net.take_output(flooder))
        .into_iter()
        .filter(|(op, p)| *op == 1 && p.starts_with(b"4flood"))
        .count();
    assert_eq!(echoes, 1000);
}

#[test]
fn back_to_back_messages_of_max_payload_pass_and_one_byte_more_is_refused() {
    let max = 100_000;
    let mut h = Harness::new(Config::default().max_payload(max));
    let client = h.websocket();
    let full = format!("4{}", "a".repeat(max - 1));
    let mut two = masked_text(&full);
    two.extend(masked_text(&full));
    // Fragmented too: the limit is on the message, not the frame.
    two.extend(masked_frame(1, false, &full.as_bytes()[..max / 2]));
    two.extend(masked_frame(0, true, &full.as_bytes()[max / 2..]));
    h.net.send(client, &two);
    // 300 kB at a share of 64 KiB a turn.
    h.turns(6);
    assert_eq!(h.messages_from("aaa"), 3);
    assert!(h.handler.closed.is_empty());
    let over = format!("4{}", "a".repeat(max));
    h.net.send(client, &masked_text(&over));
    h.turns(2);
    let frames = server_frames(&h.net.take_output(client));
    let close = frames
        .iter()
        .find(|(op, _)| *op == 8)
        .expect("a close frame");
    assert_eq!(u16::from_be_bytes([close.1[0], close.1[1]]), 1009);
    assert_eq!(h.handler.closed.len(), 1);
}

#[test]
fn over_the_memory_budget_the_biggest_holders_wait_and_others_go_on() {
    let budget = 2 * 1024 * 1024;
    let mut h = Harness::new(Config::default().max_buffered_bytes(budget));
    let small = h.websocket();
    // Four clients each send most of a 500 kB frame, and then wait.
    let holders: Vec<ClientId> = (0..4).map(|_| h.websocket()).collect();
    let big = masked_text(&format!("4{}", "b".repeat(500_000)));
    for &c in &holders {
        h.net.send(c, &big[..300_000]);
    }
    h.turns(10);
    assert!(
        h.engine.buffered_bytes() <= budget,
        "{} bytes buffered for a budget of {budget}",
        h.engine.buffered_bytes()
    );
    assert!(h.engine.stats().reads_paused_by_budget > 0);
    // A well-behaved client is still served.
    h.net.send(small, &masked_text("4ping"));
    h.turns(2);
    assert_eq!(h.messages_from("ping"), 1);
    // Once the holders go, the memory is counted back, and what was paused is read.
    for &c in &holders[..3] {
        h.net.close(c);
    }
    h.net.send(holders[3], &big[300_000..]);
    h.turns(10);
    assert_eq!(
        h.messages_from("bbb"),
        1,
        "the last holder's message completed"
    );
    h.net.close(holders[3]);
    h.net.close(small);
    h.turns(4);
    assert_eq!(h.engine.connection_count(), 0);
    assert_eq!(h.engine.buffered_bytes(), 0);
}

#[test]
fn a_slow_consumer_is_closed_first_when_the_budget_is_spent() {
    let budget = 512 * 1024;
    let mut h = Harness::new(
        Config::default()
            .max_buffered_bytes(budget)
            .max_queued_bytes(4 * 1024 * 1024),
    );
    let reader = h.websocket();
    let slow = h.websocket();
    h.net.set_window(slow, 1024);
    // Messages to everyone: the slow client does not read its copies.
    let chunk = masked_text(&format!("4all{}", "s".repeat(100_000)));
    for _ in 0..8 {
        h.net.send(reader, &chunk);
        h.turns(2);
        h.net.take_output(reader);
    }
    assert!(h.engine.stats().closed_by_budget >= 1);
    assert!(
        h.handler
            .closed
            .iter()
            .any(|(_, r)| *r == CloseReason::SlowConsumer)
    );
    h.net.send(reader, &masked_text("4still"));
    h.turns(2);
    assert_eq!(h.messages_from("still"), 1);
    assert!(h.engine.buffered_bytes() <= budget);
}

#[test]
fn time_is_the_fake_clock_heartbeat_closes_a_silent_session() {
    let mut h = Harness::new(
        Config::default()
            .ping_interval(Duration::from_millis(300))
            .ping_timeout(Duration::from_millis(200)),
    );
    let client = h.websocket();
    h.net.advance(Duration::from_millis(301));
    h.turns(2);
    let frames = server_frames(&h.net.take_output(client));
    assert!(frames.iter().any(|(op, p)| *op == 1 && p == b"2"), "a ping");
    h.net.advance(Duration::from_millis(201));
    h.turns(2);
    assert_eq!(h.handler.closed.len(), 1);
    assert_eq!(h.handler.closed[0].1, CloseReason::PingTimeout);
}
