//! A Socket.IO server exercising the API of `sioloop::Server`, for the interop tests in
//! `tests/socketio_client.rs` (driven by the official `socket.io-client` under node).
//!
//! Clients connect to `http://127.0.0.1:PORT/socket.io/` with `auth: {token: "secret", user}`.
//! Namespaces: `/`, `/admin` and the dynamic `/game-<digits>`, all with the same events:
//!
//! | event           | what the server does                                                  |
//! |-----------------|-----------------------------------------------------------------------|
//! | `echo`          | emits `echo` back with the same arguments, binary included (raw relay) |
//! | `echo_ack`      | acknowledges with the same arguments, binary included                  |
//! | `upload`        | typed binary: `{name, chunks: [bytes], meta: {thumb: bytes}}`, acks `{name, sizes, joined: bytes, meta: {thumb: bytes}}` |
//! | `whoami`        | acks `{id, nsp, user, rooms, address}`                                  |
//! | `join`/`leave`  | joins / leaves a room, acks the socket's rooms (sorted)               |
//! | `to_rooms`      | `{rooms, except, except_self, event, data}`: broadcasts in the namespace, acks `true` |
//! | `to_user`       | `{user, data}`: emits `private` to every socket of that user, acks `true` |
//! | `broadcast_all` | `{event, data}`: emits to every socket of the namespace, acks the count |
//! | `ask`           | `{timeout_ms, question}`: emits `question` with an ack, then `answer_result` with the answer's arguments, or `"timeout"` |
//! | `kick`          | disconnects the socket (`server namespace disconnect`)                |
//! | `drop_transport`| closes the client's whole connection                                  |
//! | `get_log`       | acks the server's disconnect log `[{nsp, id, user, reason}]`            |
//! | `double`        | typed `u32`: acks twice it; other arguments get the default answer `{error}` |
//! | `tags`          | typed `Args<String>`: acks every argument as one list                  |
//! | `relay`         | relays its arguments, binary included, as `relayed` to the others in the room `relay` |
//!
//! `/open` has no middleware and shows where the API follows Node's (issue 12): on connect
//! it joins `room` and emits `hello` `{auth}` (`{}` if the client sent none); `say` emits
//! `said` to `room` without the sender (`socket.to`); `nothing` acks with no arguments;
//! `seen` acks how many events the socket sent, itself included (counted by an `on_any`
//! listener, before the handlers); an event without a handler is acked `"unhandled NAME"`;
//! a socket that goes tells `room` `leaving` `{id, rooms}` while it still has its rooms and
//! `left` `{id, rooms}` once it has left them.
//!
//! With `--allow-eio3`, `socket.io-client@2` clients (Engine.IO 3) connect too, for
//! `tests/eio3_client.rs`: they join `/` without a CONNECT, so there the auth middleware
//! reads `token` and `user` from the handshake's query instead (as a Node server would
//! have them in `socket.handshake.query`); other namespaces get the query of their
//! CONNECT as auth.
//!
//! `/recovery` is for connection state recovery, on with `--recovery-ms MS` (the kept
//! sessions' lifetime): its middleware numbers each run and stores the number as the
//! socket's data; on connect a socket that is not recovered joins `ticking`, and every
//! socket gets `hello` `{id, recovered}`; the room `ticking` gets `tick` `n` every 10 ms;
//! `whoami` acks `{id, recovered, rooms, visit, middleware_runs}`.
//!
//! ```text
//! cargo run --example sio_testbed -- --port 3000 [--ping-interval MS --ping-timeout MS] [--allow-eio3]
//! ```

use serde::{Deserialize, Serialize};

/// How many disconnects the log keeps.
const LOG_CAPACITY: usize = 1000;
use serde_bytes::ByteBuf;
use serde_json::{Value, json};
use sioloop::protocol::engineio::handshake::{percent_decode, query_pairs};
use sioloop::{
    AckError, Args, Config, ConnectCx, ConnectError, Event, Namespace, RecoveryConfig, Server,
    SocketCx,
};
use std::io::Write;
use std::time::Duration;

/// The application state the loop owns: the disconnect log the tests read.
#[derive(Default)]
struct Testbed {
    /// The most recent disconnects, at most `LOG_CAPACITY`.
    log: Vec<Value>,
    /// `/recovery`: how many times its middleware ran, and the last tick sent.
    recovery_middleware_runs: u64,
    tick: u64,
}

/// `/recovery`: which run of the middleware let the socket in (its typed data).
struct Visit(u64);

/// The typed socket data the auth middleware stores.
struct User(String);

#[derive(Deserialize)]
struct Auth {
    token: String,
    user: String,
}

#[derive(Deserialize)]
struct ToRooms {
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    except_self: bool,
    event: String,
    data: Value,
}

#[derive(Deserialize)]
struct ToUser {
    user: String,
    data: Value,
}

#[derive(Deserialize)]
struct Broadcast {
    event: String,
    data: Value,
}

#[derive(Deserialize)]
struct Ask {
    timeout_ms: u64,
    question: Value,
}

/// A file upload: binary attachments deserialize into `ByteBuf` fields wherever they are.
#[derive(Deserialize)]
struct Upload {
    name: String,
    chunks: Vec<ByteBuf>,
    meta: UploadMeta,
}

#[derive(Deserialize, Serialize)]
struct UploadMeta {
    thumb: ByteBuf,
}

/// The answer to an upload: `ByteBuf` fields serialize as attachments.
#[derive(Serialize)]
struct Uploaded {
    name: String,
    sizes: Vec<usize>,
    joined: ByteBuf,
    meta: UploadMeta,
}

fn user_of<S: 'static>(cx: &mut SocketCx<'_, S>) -> String {
    cx.data::<User>().map(|u| u.0.clone()).unwrap_or_default()
}

/// Sorted, so the tests can compare room lists exactly.
fn sorted_rooms<S: 'static>(cx: &SocketCx<'_, S>) -> Vec<String> {
    let mut rooms = cx.rooms();
    rooms.sort();
    rooms
}

/// A `socket.io-client@2` client (Engine.IO 3, with `--allow-eio3`) joins `/` without a
/// CONNECT and so without auth: as on a Node server, its credentials are in the handshake's
/// query (`?token=secret&user=NAME`).
fn v2_query_auth<S: 'static>(cx: &ConnectCx<'_, S>) -> Option<Auth> {
    let query = &cx.handshake()?.request.query;
    let mut pairs = query_pairs(query).map(|(k, v)| (k, percent_decode(v)));
    if !pairs.any(|(k, v)| k == "EIO" && v == "3") {
        return None;
    }
    let value = |key: &str| {
        query_pairs(query)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v).into_owned())
    };
    Some(Auth {
        token: value("token")?,
        user: value("user")?,
    })
}

/// The middleware and events every namespace of the testbed has.
fn setup(ns: &mut Namespace<Testbed>) {
    // Auth belongs in the connection middleware, not in event handlers.
    ns.use_middleware(
        |cx| match cx.auth_as::<Auth>().or_else(|| v2_query_auth(cx)) {
            Some(auth) if auth.token == "secret" => {
                cx.set_data(User(auth.user));
                Ok(())
            }
            _ => Err(ConnectError::new("not authorized").with_data(json!({"code": "E_AUTH"}))),
        },
    )
    .on_connect(|cx| {
        // A room per user: a message to `user:{name}` reaches all of that user's tabs.
        let user = user_of(cx);
        cx.join(format!("user:{user}"));
        let welcome = json!({"id": cx.id(), "user": user, "rooms": sorted_rooms(cx)});
        cx.emit("welcome", &welcome);
    })
    .on_disconnect(|cx, reason| {
        let entry =
            json!({"nsp": cx.nsp(), "id": cx.id(), "user": user_of(cx), "reason": reason.as_str()});
        // Only recent entries are ever asked for; a bounded log keeps a long-running
        // server (the storm test) from growing without end.
        let log = &mut cx.state().log;
        if log.len() == LOG_CAPACITY {
            log.remove(0);
        }
        log.push(entry);
    })
    // A relay: the arguments go back untouched, attachments and all, without being parsed.
    .on_raw("echo", |cx, event, _ack| {
        cx.emit_event(&event);
    })
    .on_raw("echo_ack", |cx, event: Event, ack| {
        if let Some(ack) = ack {
            cx.ack_event(ack, &event);
        }
    })
    .on("upload", |cx, up: Upload, ack| {
        let Some(ack) = ack else { return };
        let answer = Uploaded {
            sizes: up.chunks.iter().map(|c| c.len()).collect(),
            joined: ByteBuf::from(
                up.chunks
                    .iter()
                    .flat_map(|c| c.iter().copied())
                    .collect::<Vec<u8>>(),
            ),
            name: up.name,
            meta: up.meta,
        };
        cx.ack(ack, &answer);
    })
    .on("whoami", |cx, (): (), ack| {
        let address = cx.handshake().map(|h| h.address.to_string());
        let info = json!({"id": cx.id(), "nsp": cx.nsp(), "user": user_of(cx),
                          "rooms": sorted_rooms(cx), "address": address});
        if let Some(ack) = ack {
            cx.ack(ack, &info);
        }
    })
    .on("join", |cx, room: String, ack| {
        cx.join(&room);
        if let Some(ack) = ack {
            let rooms = sorted_rooms(cx);
            cx.ack(ack, &rooms);
        }
    })
    .on("leave", |cx, room: String, ack| {
        cx.leave(&room);
        if let Some(ack) = ack {
            let rooms = sorted_rooms(cx);
            cx.ack(ack, &rooms);
        }
    })
    .on("to_rooms", |cx, req: ToRooms, ack| {
        let nsp = cx.nsp().to_owned();
        let mut emitter = if req.except_self {
            cx.broadcast()
        } else {
            cx.of(&nsp)
        };
        for room in req.rooms {
            emitter = emitter.to(room);
        }
        for room in req.except {
            emitter = emitter.except(room);
        }
        emitter.emit(&req.event, &req.data);
        if let Some(ack) = ack {
            cx.ack(ack, &true);
        }
    })
    .on("to_user", |cx, req: ToUser, ack| {
        // Every tab of the user, the asking one included (`io.to`, not `socket.to`).
        let nsp = cx.nsp().to_owned();
        cx.of(&nsp)
            .to(format!("user:{}", req.user))
            .emit("private", &req.data);
        if let Some(ack) = ack {
            cx.ack(ack, &true);
        }
    })
    .on("broadcast_all", |cx, req: Broadcast, ack| {
        let nsp = cx.nsp().to_owned();
        cx.of(&nsp).emit(&req.event, &req.data);
        if let Some(ack) = ack {
            let count = cx.socket_count(&nsp);
            cx.ack(ack, &count);
        }
    })
    .on("ask", |cx, req: Ask, _ack| {
        let (nsp, me) = (cx.nsp().to_owned(), cx.id().to_owned());
        let timeout = Duration::from_millis(req.timeout_ms);
        cx.emit_with_ack("question", &req.question, timeout, move |cx, answer| {
            let to_asker = cx.of(&nsp).to(me);
            match answer {
                // The answer's arguments go on unchanged, binary included.
                Ok(payload) => {
                    to_asker.emit_payload("answer_result", &payload);
                }
                Err(AckError::Timeout) => {
                    to_asker.emit("answer_result", "timeout");
                }
                // The asker is gone: nobody to tell.
                Err(AckError::Disconnected) => {}
            }
        });
    })
    .on("kick", |cx, (): (), _ack| cx.disconnect())
    .on("drop_transport", |cx, (): (), _ack| cx.close_connection())
    .on("get_log", |cx, (): (), ack| {
        if let Some(ack) = ack {
            let log = cx.state().log.clone();
            cx.ack(ack, &log);
        }
    })
    // Arguments that are not one `u32` never get here: the client's ack hears
    // `{"error": "invalid arguments: ..."}` (the default of `Namespace::on`).
    .on("double", |cx, n: u32, ack| {
        if let Some(ack) = ack {
            cx.ack(ack, &(u64::from(n) * 2));
        }
    })
    .on("tags", |cx, Args(tags): Args<String>, ack| {
        if let Some(ack) = ack {
            cx.ack(ack, &tags);
        }
    })
    // A relay under another name: the arguments are spliced, not parsed.
    .on_raw("relay", |cx, event, _ack| {
        cx.to("relay")
            .except_self()
            .emit_event_as("relayed", &event);
    });
}

/// How many events a socket of `/open` sent.
struct Seen(u32);

/// `/open`: the Node semantics of `socket.to`, `onAny`, `ack()`, `handshake.auth`,
/// `disconnecting` and `disconnect` (see the module's doc).
fn setup_open(ns: &mut Namespace<Testbed>) {
    ns.on_connect(|cx| {
        cx.join("room");
        let auth: Value = cx.auth_as().unwrap_or_default();
        cx.emit("hello", &json!({ "auth": auth }));
    })
    .on_any(|cx, _event| {
        let seen = cx.data_ref::<Seen>().map_or(0, |s| s.0) + 1;
        cx.set_data(Seen(seen));
    })
    .on("seen", |cx, (): (), ack| {
        let seen = cx.data_ref::<Seen>().map_or(0, |s| s.0);
        if let Some(ack) = ack {
            cx.ack(ack, &seen);
        }
    })
    .on("say", |cx, text: String, _ack| {
        cx.to("room").emit("said", &text);
    })
    .on("nothing", |cx, (): (), ack| {
        if let Some(ack) = ack {
            cx.ack(ack, &());
        }
    })
    .on_unhandled(|cx, event, ack| {
        if let Some(ack) = ack {
            let answer = format!("unhandled {}", event.name());
            cx.ack(ack, &answer);
        }
    })
    .on_disconnecting(|cx, _reason| {
        let going = json!({"id": cx.id(), "rooms": cx.rooms().len()});
        cx.to("room").emit("leaving", &going);
    })
    .on_disconnect(|cx, _reason| {
        let gone = json!({"id": cx.id(), "rooms": cx.rooms().len()});
        cx.of("/open").to("room").emit("left", &gone);
    });
}

/// `/recovery` (see the module's doc).
fn setup_recovery(ns: &mut Namespace<Testbed>) {
    ns.use_middleware(|cx| {
        cx.state().recovery_middleware_runs += 1;
        let run = cx.state().recovery_middleware_runs;
        cx.set_data(Visit(run));
        Ok(())
    })
    .on_connect(|cx| {
        if !cx.recovered() {
            cx.join("ticking");
        }
        let hello = json!({"id": cx.id(), "recovered": cx.recovered()});
        cx.emit("hello", &hello);
    })
    .on("whoami", |cx, (): (), ack| {
        let mut rooms = cx.rooms();
        rooms.sort();
        let visit = cx.data::<Visit>().map(|v| v.0);
        let runs = cx.state().recovery_middleware_runs;
        let me = json!({
            "id": cx.id(), "recovered": cx.recovered(), "rooms": rooms,
            "visit": visit, "middleware_runs": runs,
        });
        if let Some(ack) = ack {
            cx.ack(ack, &me);
        }
    });
}

fn main() -> std::io::Result<()> {
    let mut port = 3000u16;
    let mut config = Config::default().cors_any_origin();
    let mut attachments_timeout = None;
    let mut recovery_ms = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--allow-eio3" {
            config = config.allow_eio3(true);
            continue;
        }
        let value = args.next().unwrap_or_default();
        let number = || -> u64 {
            value.parse().unwrap_or_else(|_| {
                eprintln!("{flag} takes a number, got {value:?}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--port" => port = number() as u16,
            "--ping-interval" => config = config.ping_interval(Duration::from_millis(number())),
            "--ping-timeout" => config = config.ping_timeout(Duration::from_millis(number())),
            "--max-payload" => config = config.max_payload(number() as usize),
            "--max-queued-bytes" => config = config.max_queued_bytes(number() as usize),
            "--head-timeout" => config = config.head_timeout(Duration::from_millis(number())),
            "--max-buffered-bytes" => config = config.max_buffered_bytes(number() as usize),
            "--attachments-timeout" => attachments_timeout = Some(number()),
            "--recovery-ms" => recovery_ms = Some(number()),
            // Counters as Prometheus text, for the storm test.
            "--metrics" => config = config.metrics_path(&value),
            _ => {
                eprintln!(
                    "usage: sio_testbed [--port N] [--ping-interval MS] [--ping-timeout MS] \
                     [--max-payload BYTES] [--max-queued-bytes BYTES] [--head-timeout MS] \
                     [--max-buffered-bytes BYTES] [--attachments-timeout MS] [--metrics PATH] \
                     [--recovery-ms MS] [--allow-eio3]"
                );
                std::process::exit(2)
            }
        }
    }

    let mut server = Server::bind(("127.0.0.1", port), config, Testbed::default())?;
    if let Some(ms) = attachments_timeout {
        server.attachments_timeout(Duration::from_millis(ms));
    }
    setup(server.of("/"));
    setup(server.of("/admin"));
    setup_open(server.of("/open"));
    setup_recovery(server.of("/recovery"));
    if let Some(ms) = recovery_ms {
        server.connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(ms),
            ..RecoveryConfig::default()
        });
        server.every(Duration::from_millis(10), |cx| {
            cx.state().tick += 1;
            let n = cx.state().tick;
            cx.of("/recovery").to("ticking").emit("tick", &n);
        });
    }
    setup(server.dynamic(|name| {
        name.strip_prefix("/game-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }));
    // Tests read this line to find the port when started with `--port 0`.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
