//! Whole exchanges of several clients through the real driver: `sioloop::Server::in_memory`
//! runs the production `Engine` (HTTP routing, polling, upgrade, WebSocket, fair reads, the
//! memory budget, timers, the metrics page) and the Socket.IO layer (namespaces with
//! middleware, dynamic children, events, acks both ways, binary attachments, rooms,
//! broadcasts, listeners of every event, both disconnect hooks, connection state recovery)
//! on an in-memory network with a fake clock. Nothing is re-implemented here.
//!
//! The input is a little program, one op per few bytes (see the `match` on the op byte): connect, raw
//! bytes, polling handshakes/GETs/POSTs with a client's own sid (or another's), WebSocket
//! upgrades (fresh or probing a polling session), text/binary/control frames built from
//! templates of Engine.IO and Socket.IO packets, reading output, a stalled reader, FIN, RST,
//! moving the clock, turning the loop. The sids a client learns are read from what the
//! server really sent it.
//!
//! The first byte picks limits; its bit 5 turns connection state recovery on, and bits 6-7
//! pick the recovery limits (a short `max_disconnection_duration`, a log of a few hundred
//! bytes, few missed packets, middlewares run again or not, or the defaults). A client
//! learns its `pid` and socket id from `40{"sid":..,"pid":..}` answers and its last offset
//! from the last string argument of the events it got (`42[...,"<hex>"]`); text bytes from
//! `0xb0` up are templates built from what was learned: CONNECTs whose auth carries the
//! client's own or another client's pid and offset, garbage pids and offsets (not hex,
//! huge, negative, empty, numbers, null), and joins of a room named after another socket's
//! id.
//!
//! Properties: nothing panics and no turn fails; the budget's count is never negative
//! (it saturates, so it is checked against zero at the end); after every client leaves and
//! the clock moves past every deadline, the server holds no connection, no session and no
//! buffered byte; a shutdown then finishes. With recovery on: a pid answered again (a
//! restore) comes with the socket id and namespace it was first answered with; a restored
//! socket has its id, its data and exactly the rooms it was in when it dropped, and is the
//! only socket in its id's room; and past every deadline of the recovery state too
//! (`max_disconnection_duration` for the kept sockets, then once more for what was logged
//! while they were kept, each plus the 1 s sweep), the metrics page shows no kept session
//! and an empty log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sioloop::engine::{ClientId, Config, MemoryNet};
use sioloop::{ConnectError, RecoveryConfig, Server};
use std::collections::HashMap;
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
    "42[\"vbcast\",\"r1\"]",
    "42[\"shout\"]",
    "42[\"me\"]",
    "42/dyn-1,[\"bcast\",\"all\",\"hi\"]",
];

/// Text bytes from here up are templates built from what the clients learned (see
/// `Harness::text`); below, `TEXTS` by index.
const LEARNED: u8 = 0xb0;

/// Pids that are not one the server gave, as JSON values.
const BAD_PIDS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"AAAAAAAAAAAAAAAAAAAA\"",
    "5",
    "null",
    "[\"a\"]",
    "\"\\u0000\"",
    "{}",
];

/// Offsets that are not one the server gave, as JSON values.
const BAD_OFFSETS: &[&str] = &[
    "\"zz\"",
    "\"-1\"",
    "\"\"",
    "\"10000000000000000\"",
    "\"ffffffffffffffff\"",
    "\"0\"",
    "\"01\"",
    "\"+1\"",
    "\"A\"",
    "1",
    "-1",
    "null",
    "\"1 \"",
    "\"0x1\"",
];

/// One client's view: what it learned from what the server sent it.
struct Client {
    id: ClientId,
    /// The last sid it saw (Engine.IO handshake or CONNECT answer).
    sid: Option<String>,
    /// The socket id and pid of the last CONNECT answer with a pid.
    socket: Option<(String, String)>,
    /// The last offset (the last string argument of an event) it saw.
    offset: Option<String>,
    /// The tail of its output not looked at yet (or cut in the middle of something).
    seen: Vec<u8>,
}

struct Harness {
    server: Server<u64>,
    net: MemoryNet,
    clients: Vec<Client>,
    /// Every pid any client was answered, with its namespace and socket id.
    pids: HashMap<String, (String, String)>,
    /// Cycles through the garbage pids and offsets.
    garbage: usize,
}

/// A socket's id when it was made (its data: a restored socket keeps it).
struct Origin(String);

/// The rooms a socket was in when it started to go (its data, set by `on_disconnecting`).
struct RoomsAtDrop(Vec<String>);

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

/// The recovery settings bits 6-7 of the first byte pick.
fn recovery_config(bits: u8) -> RecoveryConfig {
    match bits >> 6 {
        // Kept sockets and events expire within the clock moves of a program; a log of a
        // handful of events, and few missed events allowed.
        0 => RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(1500),
            skip_middlewares: true,
            max_missed_packets: 2,
            max_buffered_bytes: 1024,
        },
        // Very short, middlewares run again on a restore.
        1 => RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(300),
            skip_middlewares: false,
            ..RecoveryConfig::default()
        },
        // A log that holds about one event: nearly every emit evicts the one before.
        2 => RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(5),
            skip_middlewares: true,
            max_missed_packets: 1,
            max_buffered_bytes: 300,
        },
        _ => RecoveryConfig::default(),
    }
}

fn new_server(bits: u8) -> (Server<u64>, MemoryNet) {
    let mut config = Config::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .upgrade_timeout(Duration::from_millis(500))
        .head_timeout(Duration::from_secs(1))
        .metrics_path("/metrics");
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
    if bits & 32 != 0 {
        server.connection_state_recovery(recovery_config(bits));
    }
    let setup = |nsp: &mut sioloop::Namespace<u64>| {
        nsp.on_connect(|cx| {
            if cx.recovered() {
                // The same socket back: its id, its data, its rooms, and no other socket
                // in its id's room.
                let id = cx.id().to_owned();
                let origin = cx.data_ref::<Origin>().map(|o| o.0.clone());
                assert_eq!(origin.as_deref(), Some(&*id), "a restored socket's id");
                let mut rooms = cx.rooms();
                rooms.sort();
                let mut before = cx
                    .data_ref::<RoomsAtDrop>()
                    .map(|r| r.0.clone())
                    .expect("a restored socket went through on_disconnecting");
                before.sort();
                assert_eq!(rooms, before, "a restored socket's rooms");
                let nsp = cx.nsp().to_owned();
                let with_id = cx.of(&nsp).to(id).fetch_sockets().len();
                assert_eq!(with_id, 1, "sockets in a restored socket's id room");
            } else {
                let id = cx.id().to_owned();
                cx.set_data(Origin(id));
            }
            cx.join("all");
        })
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
        .on("vbcast", |cx, room: String, _| {
            cx.to(room).volatile().emit("vmsg", &1);
        })
        // To every socket of the namespace but those in r2 (and logged so).
        .on_raw("shout", |cx, _, _| {
            let nsp = cx.nsp().to_owned();
            cx.of(&nsp).except("r2").emit("shout", &1);
        })
        .on_raw("me", |cx, _, _| {
            cx.emit_args("you", &(1, "two"));
        })
        .on_raw("bin", |cx, event, ack| {
            *cx.state() += 1;
            if let Some(ack) = ack {
                cx.ack_event(ack, &event);
            }
            // Binary events in the recovery log too.
            cx.to("r2").emit_event(&event);
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
            let rooms = cx.rooms();
            cx.set_data(RoomsAtDrop(rooms));
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
        if cx
            .auth_as::<serde_json::Value>()
            .is_some_and(|a| a["token"] == "no")
        {
            Err(ConnectError::new("refused"))
        } else {
            Ok(())
        }
    }));
    setup(
        server
            .dynamic(|name| name.starts_with("/dyn"))
            .use_middleware(|cx| match cx.auth_as::<serde_json::Value>() {
                Some(auth) if auth["token"] == "ok" => Ok(()),
                _ => Err(ConnectError::new("no token")),
            }),
    );
    server.every(Duration::from_millis(100), |cx| {
        cx.to("all").volatile().emit("tick", &1);
    });
    // Logged (with recovery on) while r1 has a socket or a dropped socket is kept.
    server.every(Duration::from_millis(250), |cx| {
        cx.to("r1").emit("news", &2);
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

    /// Reads what the server sent a client, and learns its sid, its socket's id and pid,
    /// and its last offset.
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
        if let Some(offset) = last_offset(&c.seen) {
            c.offset = Some(offset);
        }
        // Every CONNECT answer with a pid, once each: `40[/nsp,]{"pid":"..","sid":".."}`.
        let mut done = 0;
        while let Some(at) = find_from(&c.seen, done, b"\"pid\":\"") {
            let Some(close) = c.seen[at..].iter().take(64).position(|&b| b == b'}') else {
                if c.seen.len() - at < 64 {
                    break; // maybe cut: look again with more output
                }
                done = at + 1;
                continue;
            };
            done = at + close + 1;
            let Some((nsp, sid, pid)) = connect_answer(&c.seen[..done], at) else {
                continue;
            };
            match self.pids.get(&pid) {
                Some((n, s)) => {
                    assert_eq!(
                        (n.as_str(), s.as_str()),
                        (nsp.as_str(), sid.as_str()),
                        "pid {pid} answered again with another namespace or socket id"
                    );
                }
                None => {
                    self.pids.insert(pid.clone(), (nsp, sid.clone()));
                }
            }
            c.socket = Some((sid, pid));
        }
        // Keep only a tail: what was looked at goes, but the last 64 bytes (a sid or an
        // answer cut in the middle) stay.
        let keep_from = done.max(c.seen.len().saturating_sub(64));
        c.seen.drain(..keep_from.min(c.seen.len()));
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

    /// Another client than `i` that learned a pid (the `pick`-th such), or `i` itself.
    fn other(&self, i: usize, pick: u8) -> usize {
        let with_pid: Vec<usize> = (0..self.clients.len())
            .filter(|&j| j != i && self.clients[j].socket.is_some())
            .collect();
        if with_pid.is_empty() {
            i
        } else {
            with_pid[usize::from(pick) % with_pid.len()]
        }
    }

    fn next_garbage<'t>(&mut self, list: &[&'t str]) -> &'t str {
        self.garbage = self.garbage.wrapping_add(1);
        list[self.garbage % list.len()]
    }

    /// The text of byte `b` for client `i`: `TEXTS` by index below `LEARNED`, else a
    /// template built from what the clients learned (`pick` picks another client).
    fn text(&mut self, i: usize, b: u8, pick: u8) -> String {
        if b < LEARNED {
            return TEXTS[usize::from(b) % TEXTS.len()].to_owned();
        }
        let k = b - LEARNED;
        if k < 0x10 {
            // Join a room named after another socket's id: its restore must then refuse
            // (the id is taken in the namespace) rather than make two sockets of one id.
            let j = self.other(i, pick);
            let room = self.clients[j]
                .socket
                .as_ref()
                .map_or("r1", |s| s.0.as_str());
            return format!("42[\"join\",\"{room}\"]");
        }
        // A CONNECT asking for a restore. Bits 0-1: whose pid (own, another client's, a
        // garbage one, its own socket id); bits 2-3: which offset (the pid owner's last,
        // the client's own last, a garbage one, none); bits 4-5: the namespace and auth.
        let j = match k & 3 {
            1 => self.other(i, pick),
            _ => i,
        };
        let pid = match k & 3 {
            0 | 1 => self.clients[j]
                .socket
                .as_ref()
                .map(|s| format!("\"{}\"", s.1)),
            2 => Some(self.next_garbage(BAD_PIDS).to_owned()),
            _ => self.clients[i]
                .socket
                .as_ref()
                .map(|s| format!("\"{}\"", s.0)),
        };
        let offset = match (k >> 2) & 3 {
            0 => self.clients[j].offset.as_ref().map(|o| format!("\"{o}\"")),
            1 => self.clients[i].offset.as_ref().map(|o| format!("\"{o}\"")),
            2 => Some(self.next_garbage(BAD_OFFSETS).to_owned()),
            _ => None,
        };
        let mut auth = Vec::new();
        if let Some(pid) = pid {
            auth.push(format!("\"pid\":{pid}"));
        }
        if let Some(offset) = offset {
            auth.push(format!("\"offset\":{offset}"));
        }
        let (nsp, token) = match (k >> 4) & 3 {
            0 | 1 => ("", None),
            2 => ("/dyn-1,", Some("ok")),
            _ => ("", Some("no")),
        };
        if let Some(token) = token {
            auth.push(format!("\"token\":\"{token}\""));
        }
        format!("40{nsp}{{{}}}", auth.join(","))
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        self.net.send(self.clients[i].id, bytes);
    }

    /// The metrics page, read by a new client over the in-memory network (then closed).
    fn metrics(&mut self) -> String {
        let id = self.net.connect();
        self.net.send(
            id,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let mut out = Vec::new();
        for _ in 0..10 {
            self.turn();
            out.extend(self.net.take_output(id));
            if self.net.server_closed(id) {
                break;
            }
        }
        self.net.close(id);
        self.turn();
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The value of an unlabelled metric on a metrics page.
fn metric(page: &str, name: &str) -> Option<u64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The first `needle` in `hay` at or after `from`.
fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let tail = hay.get(from..)?;
    Some(from + tail.windows(needle.len()).position(|w| w == needle)?)
}

/// The CONNECT answer that ends `hay` and has `"pid":"` at `at`: its namespace, the socket
/// id and the pid.
fn connect_answer(hay: &[u8], at: usize) -> Option<(String, String, String)> {
    let from = at.saturating_sub(40);
    let open = from + hay[from..at].iter().rposition(|&b| b == b'{')?;
    let data: serde_json::Value = serde_json::from_slice(&hay[open..]).ok()?;
    let sid = data.get("sid")?.as_str()?.to_owned();
    let pid = data.get("pid")?.as_str()?.to_owned();
    Some((connect_nsp(hay, open)?, sid, pid))
}

/// The namespace of the CONNECT answer whose data starts at `at`: `40{` is `/`, and
/// `40/name,{` is `/name`; `None` for anything else.
fn connect_nsp(hay: &[u8], at: usize) -> Option<String> {
    let before = &hay[..at];
    if before.ends_with(b"40") {
        return Some("/".into());
    }
    let before = before.strip_suffix(b",")?;
    let slash = before.iter().rev().take(64).position(|&b| b == b'/')?;
    let slash = before.len() - 1 - slash;
    let name = &before[slash..];
    let plain = name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/');
    (before[..slash].ends_with(b"40") && plain).then(|| String::from_utf8_lossy(name).into_owned())
}

/// The last offset in `hay`: the last string argument of an event, `,"<hex>"]`.
fn last_offset(hay: &[u8]) -> Option<String> {
    let mut end = hay.len();
    while let Some(close) = find(&hay[..end], b"\"]") {
        let digits = hay[..close]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        let open = close - digits;
        if (1..=16).contains(&digits) && hay[..open].ends_with(b",\"") {
            return Some(String::from_utf8_lossy(&hay[open..close]).into_owned());
        }
        end = close;
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, mut ops)) = data.split_first() else {
        return;
    };
    let recovery = (bits & 32 != 0).then(|| recovery_config(bits));
    let (server, net) = new_server(bits);
    let mut h = Harness {
        server,
        net,
        clients: Vec::new(),
        pids: HashMap::new(),
        garbage: 0,
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
                        socket: None,
                        offset: None,
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
                    // From 0xf0: the metrics page (keep-alive, on the same connection).
                    let req = if a[1] >= 0xf0 {
                        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()
                    } else {
                        let sid = h.sid(i, a[1]);
                        format!(
                            "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n"
                        )
                    };
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
                    let body: Vec<String> = texts.iter().map(|&t| h.text(i, t, a[1] / 2)).collect();
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
                    let t = h.text(i, a[1], a[2] / 2);
                    // Bit 0 of the third byte: as two fragments; the rest picks another
                    // client for a learned template.
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
    if let Some(config) = recovery {
        // Every socket dropped by now; each is kept `max_disconnection_duration` and swept
        // within 1 s. Events logged while some were kept (for them) expire as long after
        // they were logged, swept within 1 s too. Then nothing may be left.
        let deadline = config.max_disconnection_duration + Duration::from_secs(1);
        for _ in 0..2 {
            h.net.advance(deadline);
            h.turn();
        }
        let page = h.metrics();
        for name in [
            "sioloop_recovery_kept_sessions",
            "sioloop_recovery_log_events",
            "sioloop_recovery_log_bytes",
        ] {
            assert_eq!(metric(&page, name), Some(0), "{name} past every deadline");
        }
    }
    h.net.interrupt();
    let mut turns = 0;
    while h.server.turn().unwrap_or(false) {
        turns += 1;
        assert!(turns < 10, "the shutdown did not finish");
    }
});
