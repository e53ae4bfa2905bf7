//! Whole exchanges of several clients through the real driver: `sioloop::Server::in_memory`
//! runs the production `Engine` (HTTP routing, polling, upgrade, WebSocket, fair reads, the
//! memory budget, timers) and the Socket.IO layer (namespaces with middleware, dynamic
//! children, events, acks both ways, binary attachments, rooms, broadcasts, listeners of
//! every event, both disconnect hooks) on an in-memory network with a fake clock. Nothing
//! is re-implemented here.
//!
//! The input is a little program, one op per few bytes (see `Op::decode`): connect, raw
//! bytes, polling handshakes/GETs/POSTs with a client's own sid (or another's), WebSocket
//! upgrades (fresh or probing a polling session), text/binary/control frames built from
//! templates of Engine.IO and Socket.IO packets, reading output, a stalled reader, FIN, RST,
//! moving the clock, turning the loop. The sids a client learns are read from what the
//! server really sent it.
//!
//! Properties: nothing panics and no turn fails; the budget's count is never negative
//! (it saturates, so it is checked against zero at the end); after every client leaves and
//! the clock moves past every deadline, the server holds no connection, no session and no
//! buffered byte; a shutdown then finishes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::engine::{ClientId, Config, MemoryNet};
use sioloop::{ConnectError, Server};
use std::time::Duration;

/// Engine.IO (and Socket.IO inside message packets) texts a client sends, by index.
const TEXTS: &[&str] = &[
    "2probe",
    "5",
    "3",
    "40",
    "40{\"token\":\"ok\"}",
    "40/dyn-1,{\"token\":\"ok\"}",
    "40/dyn-2,",
    "40/nope,",
    "41",
    "41/dyn-1,",
    "42[\"echo\",1]",
    "421[\"echo\",{\"a\":[1,2]}]",
    "42[\"join\",\"r1\"]",
    "42[\"join\",\"r2\"]",
    "42[\"bcast\",\"r1\",\"hi\"]",
    "42[\"leave\",\"r1\"]",
    "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]",
    "4522-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
    "42[\"bye\"]",
    "42[\"ackme\"]",
    "430[\"ok\"]",
    "431[\"ok\"]",
    "461-0[{\"_placeholder\":true,\"num\":0}]",
    "42/dyn-1,[\"echo\",2]",
    "42/dyn-1,3[\"echo\",2]",
    "1",
    "6",
    "4garbage",
    "42[]",
    "44{\"message\":\"x\"}",
    "42[\"watch\"]",
    "42[\"unwatch\"]",
];

/// One client's view: the sid the server gave it, if it has seen one.
struct Client {
    id: ClientId,
    sid: Option<String>,
    seen: Vec<u8>,
}

struct Harness {
    server: Server<u64>,
    net: MemoryNet,
    clients: Vec<Client>,
}

/// A masked client frame (mask key zero: the payload is as is).
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn new_server(bits: u8) -> (Server<u64>, MemoryNet) {
    let mut config = Config::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .upgrade_timeout(Duration::from_millis(500))
        .head_timeout(Duration::from_secs(1));
    if bits & 1 != 0 {
        config = config.max_payload(200);
    }
    if bits & 2 != 0 {
        config = config.max_buffered_bytes(4096);
    }
    if bits & 4 != 0 {
        config = config.max_queued_bytes(512);
    }
    if bits & 8 != 0 {
        config = config.max_connections(4, 3);
    }
    let (mut server, net) = Server::in_memory(config, 0u64);
    server.connect_timeout(Duration::from_millis(700));
    server.attachments_timeout(Duration::from_millis(400));
    if bits & 16 != 0 {
        server.max_dynamic_namespaces(1).max_rooms_per_socket(2);
    }
    let setup = |nsp: &mut sioloop::Namespace<u64>| {
        nsp.on_connect(|cx| cx.join("all"))
            .on_raw("echo", |cx, event, ack| {
                if let Some(ack) = ack {
                    cx.ack_event(ack, &event);
                }
            })
            .on("join", |cx, room: String, _| {
                cx.join(&room);
            })
            .on("leave", |cx, room: String, _| cx.leave(&room))
            .on("bcast", |cx, (room, text): (String, String), _| {
                cx.to(room).emit("msg", &text);
            })
            .on_raw("bin", |cx, event, ack| {
                *cx.state() += 1;
                if let Some(ack) = ack {
                    cx.ack_event(ack, &event);
                }
            })
            .on_raw("bye", |cx, _, _| cx.disconnect())
            // Listeners of every event, in and out, that a socket adds and removes, and the
            // two disconnect hooks, emitting while the socket goes.
            .on_raw("watch", |cx, _, _| {
                let id = cx.on_any(|cx, event| *cx.state() += event.name().len() as u64);
                cx.on_any_outgoing(move |cx, _| {
                    cx.emit("out", &1);
                    cx.off_any(id);
                });
            })
            .on_raw("unwatch", |cx, _, _| {
                cx.off_any_all();
                cx.off_any_outgoing_all();
            })
            .on_disconnecting(|cx, _| {
                cx.to("all").emit("going", &1);
            })
            .on_disconnect(|cx, _| {
                cx.join("all");
                cx.of("/").to("all").emit("gone", &1);
            })
            .on_raw("ackme", |cx, _, _| {
                cx.emit_with_ack("ask", &1, Duration::from_millis(250), |cx, answer| {
                    *cx.state() += u64::from(answer.is_ok());
                });
            });
    };
    setup(server.of("/").use_middleware(|cx| {
        if cx.auth_as::<serde_json::Value>().is_some_and(|a| a["token"] == "no") {
            Err(ConnectError::new("refused"))
        } else {
            Ok(())
        }
    }));
    setup(server.dynamic(|name| name.starts_with("/dyn")).use_middleware(|cx| {
        match cx.auth_as::<serde_json::Value>() {
            Some(auth) if auth["token"] == "ok" => Ok(()),
            _ => Err(ConnectError::new("no token")),
        }
    }));
    server.every(Duration::from_millis(100), |cx| {
        cx.to("all").volatile().emit("tick", &1);
    });
    (server, net)
}

impl Harness {
    fn turn(&mut self) {
        match self.server.turn() {
            Ok(_) => {}
            Err(e) => panic!("a turn failed: {e}"),
        }
    }

    fn client(&mut self, b: u8) -> Option<usize> {
        (!self.clients.is_empty()).then(|| usize::from(b) % self.clients.len())
    }

    /// Reads what the server sent a client, and learns its sid.
    fn take(&mut self, i: usize) {
        let out = self.net.take_output(self.clients[i].id);
        let c = &mut self.clients[i];
        c.seen.extend_from_slice(&out);
        if let Some(at) = find(&c.seen, b"{\"sid\":\"") {
            let start = at + 8;
            if let Some(sid) = c.seen.get(start..start + 20) {
                c.sid = std::str::from_utf8(sid).ok().map(str::to_owned);
            }
        }
        // Keep only a tail to look for the next handshake in.
        if c.seen.len() > 4096 {
            c.seen.drain(..c.seen.len() - 64);
        }
    }

    /// A sid: the client's own (`pick` even) or another client's.
    fn sid(&self, i: usize, pick: u8) -> String {
        let j = if pick % 2 == 0 {
            i
        } else {
            usize::from(pick / 2) % self.clients.len()
        };
        self.clients[j]
            .sid
            .clone()
            .unwrap_or_else(|| "AAAAAAAAAAAAAAAAAAAA".into())
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        self.net.send(self.clients[i].id, bytes);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn text(b: u8) -> &'static str {
    TEXTS[usize::from(b) % TEXTS.len()]
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, mut ops)) = data.split_first() else {
        return;
    };
    let (server, net) = new_server(bits);
    let mut h = Harness {
        server,
        net,
        clients: Vec::new(),
    };
    let mut next = |n: usize| -> Option<Vec<u8>> {
        if ops.len() < n {
            return None;
        }
        let (head, tail) = ops.split_at(n);
        ops = tail;
        Some(head.to_vec())
    };
    let mut steps = 0;
    while let Some(op) = next(1) {
        steps += 1;
        if steps > 400 {
            break;
        }
        match op[0] % 16 {
            0 => {
                if h.clients.len() < 12 {
                    let id = h.net.connect();
                    h.clients.push(Client {
                        id,
                        sid: None,
                        seen: Vec::new(),
                    });
                }
            }
            1 => {
                let Some(a) = next(2) else { break };
                let Some(bytes) = next(usize::from(a[1] % 64)) else {
                    break;
                };
                if let Some(i) = h.client(a[0]) {
                    h.send(i, &bytes);
                }
            }
            2 => {
                let Some(a) = next(1) else { break };
                if let Some(i) = h.client(a[0]) {
                    h.send(
                        i,
                        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
                    );
                }
            }
            3 => {
                let Some(a) = next(2) else { break };
                if let Some(i) = h.client(a[0]) {
                    let sid = h.sid(i, a[1]);
                    let req = format!(
                        "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n"
                    );
                    h.send(i, req.as_bytes());
                }
            }
            4 => {
                let Some(a) = next(3) else { break };
                let Some(texts) = next(usize::from(a[2] % 4) + 1) else {
                    break;
                };
                if let Some(i) = h.client(a[0]) {
                    let sid = h.sid(i, a[1]);
                    let body: Vec<&str> = texts.iter().map(|&t| text(t)).collect();
                    let body = body.join("\x1e");
                    let req = format!(
                        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    h.send(i, req.as_bytes());
                }
            }
            5 | 6 => {
                let Some(a) = next(2) else { break };
                if let Some(i) = h.client(a[0]) {
                    let query = if op[0] % 16 == 5 {
                        "EIO=4&transport=websocket".to_owned()
                    } else {
                        format!("EIO=4&transport=websocket&sid={}", h.sid(i, a[1]))
                    };
                    let req = format!(
                        "GET /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    );
                    h.send(i, req.as_bytes());
                }
            }
            7 => {
                let Some(a) = next(3) else { break };
                if let Some(i) = h.client(a[0]) {
                    let t = text(a[1]);
                    // Bit 0 of the third byte: as two fragments.
                    let bytes = if a[2] & 1 == 1 && t.len() > 1 {
                        let mid = t.len() / 2;
                        let mut f = frame(1, false, &t.as_bytes()[..mid]);
                        f.extend(frame(0, true, &t.as_bytes()[mid..]));
                        f
                    } else {
                        frame(1, true, t.as_bytes())
                    };
                    h.send(i, &bytes);
                }
            }
            8 => {
                let Some(a) = next(2) else { break };
                if let Some(i) = h.client(a[0]) {
                    let payload = vec![a[1]; usize::from(a[1]) * 3];
                    h.send(i, &frame(2, true, &payload));
                }
            }
            9 => {
                let Some(a) = next(2) else { break };
                if let Some(i) = h.client(a[0]) {
                    let f = match a[1] % 3 {
                        0 => frame(9, true, b"p"),
                        1 => frame(8, true, &[3, 232]),
                        _ => frame(10, true, b""),
                    };
                    h.send(i, &f);
                }
            }
            10 => {
                let Some(a) = next(1) else { break };
                if let Some(i) = h.client(a[0]) {
                    h.take(i);
                }
            }
            11 => {
                let Some(a) = next(2) else { break };
                if let Some(i) = h.client(a[0]) {
                    h.net.set_window(h.clients[i].id, usize::from(a[1]) * 64);
                }
            }
            12 => {
                let Some(a) = next(1) else { break };
                if let Some(i) = h.client(a[0]) {
                    h.net.close(h.clients[i].id);
                }
            }
            13 => {
                let Some(a) = next(1) else { break };
                if let Some(i) = h.client(a[0]) {
                    h.net.reset(h.clients[i].id);
                }
            }
            14 => {
                let Some(a) = next(1) else { break };
                h.net.advance(Duration::from_millis(u64::from(a[0]) * 8));
            }
            _ => {
                let Some(a) = next(1) else { break };
                for _ in 0..=(a[0] % 4) {
                    h.turn();
                }
            }
        }
    }
    // Every client leaves; past every deadline, nothing may be left behind.
    for c in &h.clients {
        h.net.set_window(c.id, usize::MAX);
        h.net.close(c.id);
    }
    // Every deadline here is at most 2 s (the lingering close); 25 s of turns covers
    // chains of them (a close, then its linger).
    for _ in 0..25 {
        for i in 0..h.clients.len() {
            h.take(i);
        }
        h.net.advance(Duration::from_secs(1));
        h.turn();
    }
    let engine = h.server.engine();
    assert_eq!(engine.connection_count(), 0, "connections left behind");
    assert_eq!(engine.session_count(), 0, "sessions left behind");
    assert_eq!(engine.buffered_bytes(), 0, "buffered bytes left counted");
    h.net.interrupt();
    let mut turns = 0;
    while h.server.turn().unwrap_or(false) {
        turns += 1;
        assert!(turns < 10, "the shutdown did not finish");
    }
});
