//! A chat server with the patterns real Socket.IO apps use, and the web page that goes with it.
//!
//! ```text
//! cargo run --release --example chat          # then open http://localhost:3000
//! cargo run --release --example chat -- [--port N] [--host ADDR] [--db PATH] [--client-js PATH | --client-dir DIR]
//! ```
//!
//! - Sign-in happens in the connection middleware, never in event handlers: a bad name is
//!   refused with a reason the page shows (`connect_error`).
//! - Every socket of a user joins the room `user:{name}`. A private message goes to that
//!   room, so it reaches all the user's tabs and survives reconnects; the app stores no
//!   socket ids.
//! - Group rooms have name rules and a per-tab limit; typing hints are volatile; presence
//!   counts a user's sockets (online while any tab is); an event middleware rate-limits
//!   messages per user with a token bucket and tells the user what it refused.
//! - History and offline messages live in SQLite (`--db`, default `chat.db`, created on
//!   first run). The database runs on its own thread (`db.rs`): handlers queue a job and
//!   return, and the worker reports back through the server's `Handle`.
//!
//! The page (`index.html`, `app.js`, `style.css`, compiled in) loads the official
//! `socket.io-client` from its CDN, or from `/vendor/socket.io.min.js` when the server is
//! given `--client-js PATH` (the browser test passes the copy npm installed, so it runs
//! offline and with the exact version `tests/js` pins), or from
//! `/socket.io/socket.io.min.js` when given `--client-dir DIR`, the `dist/` directory of the
//! npm package `socket.io-client`: the server then serves the bundle itself, as Node's
//! `serveClient` does (`Config::serve_client`, with an ETag, and the source maps).
//!
//! Events (client to server): `join {room, since}` (acked `{room}` or `{error}`),
//! `leave {room}`, `message {room, text}`, `private {to, text}`, `typing {room}` or
//! `typing {to}`. Server to client: `online [names]`, `presence {user, online}`,
//! `history {room, messages}`, `message`, `private_history [..]`, `private`, `typing`,
//! `rate_limited {refused, retry_ms}`, `notice text`.

mod db;

use db::Job;
use serde::Deserialize;
use serde_json::json;
use sioloop::{Config, ConnectError, Namespace, Refuse, Server, SocketCx};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

#[path = "../shared/page.rs"]
mod page;

const MAX_NAME: usize = 20;
const MAX_ROOM_NAME: usize = 24;
const MAX_ROOMS: usize = 10;
const MAX_TEXT: usize = 500;
/// The rate limit on messages: a burst of 5, then one per second.
const BURST: f64 = 5.0;
const PER_SECOND: f64 = 1.0;
/// The state the loop owns; handlers get `&mut` access to it.
struct Chat {
    /// Jobs for the database thread.
    db: mpsc::Sender<Job>,
    /// The users with at least one connected socket.
    online: BTreeMap<String, Online>,
}

struct Online {
    /// How many sockets (tabs) the user has connected.
    sockets: usize,
    /// Per user, not per socket, so opening more tabs does not raise the limit. (It goes
    /// when the last tab does; a real server would also limit connections per address.)
    bucket: Bucket,
    refused: u64,
}

/// A token bucket: `BURST` tokens, refilled at `PER_SECOND`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * PER_SECOND;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        let ok = self.tokens >= 1.0;
        if ok {
            self.tokens -= 1.0;
        }
        ok
    }

    fn wait_ms(&self) -> u64 {
        ((1.0 - self.tokens).max(0.0) / PER_SECOND * 1000.0).ceil() as u64
    }
}

/// Who a socket belongs to: set by the sign-in middleware, read by every handler.
struct Me {
    name: String,
    /// The newest private message id the tab already has (0 for a new tab).
    since: i64,
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
    #[serde(default)]
    since: i64,
}

#[derive(Deserialize)]
struct Join {
    room: String,
    #[serde(default)]
    since: i64,
}

#[derive(Deserialize)]
struct Leave {
    room: String,
}

#[derive(Deserialize)]
struct RoomText {
    room: String,
    text: String,
}

#[derive(Deserialize)]
struct PrivateText {
    to: String,
    text: String,
}

#[derive(Deserialize)]
struct Typing {
    room: Option<String>,
    to: Option<String>,
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("Please enter a name.")
    } else if name.chars().count() > MAX_NAME {
        Err("That name is too long (20 characters at most).")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Err("A name may only use letters, digits, - and _.")
    } else {
        Ok(())
    }
}

/// The room a client means, with the `room:` prefix. The prefix keeps group rooms apart
/// from the `user:` rooms and the socket-id rooms, so nobody can join someone else's
/// private room by naming it.
fn room_key(room: &str) -> Result<String, &'static str> {
    let ok = !room.is_empty()
        && room.len() <= MAX_ROOM_NAME
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(format!("room:{room}"))
    } else {
        Err("A room name is 1 to 24 lowercase letters, digits or -.")
    }
}

fn check_text(text: &str) -> Result<&str, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        Err("Empty messages are not sent.")
    } else if text.chars().count() > MAX_TEXT {
        Err("That message is too long (500 characters at most).")
    } else {
        Ok(text)
    }
}

fn name_of(cx: &mut SocketCx<'_, Chat>) -> String {
    cx.data::<Me>()
        .map(|me| me.name.clone())
        .unwrap_or_default()
}

fn queue(cx: &mut SocketCx<'_, Chat>, job: Job) {
    // Fails only if the worker died; it has printed why.
    let _ = cx.state().db.send(job);
}

fn setup(ns: &mut Namespace<Chat>) {
    // Sign-in. A name is all it takes here; a real app checks a token in this same place
    // (a session cookie from `cx.handshake()`, or a signed token in `auth`).
    ns.use_middleware(|cx| {
        let auth = cx
            .auth_as::<SignIn>()
            .ok_or_else(|| ConnectError::new("Please enter a name."))?;
        check_name(&auth.name).map_err(ConnectError::new)?;
        cx.set_data(Me {
            name: auth.name,
            since: auth.since,
        });
        Ok(())
    })
    .on_connect(|cx| {
        let (name, since) = match cx.data::<Me>() {
            Some(me) => (me.name.clone(), me.since),
            None => return,
        };
        cx.join(format!("user:{name}"));
        let now = cx.now();
        let online = &mut cx.state().online;
        let user = online.entry(name.clone()).or_insert_with(|| Online {
            sockets: 0,
            bucket: Bucket {
                tokens: BURST,
                at: now,
            },
            refused: 0,
        });
        user.sockets += 1;
        let first_tab = user.sockets == 1;
        let names: Vec<String> = online.keys().cloned().collect();
        if first_tab {
            cx.broadcast()
                .emit("presence", &json!({"user": name, "online": true}));
        }
        cx.emit("online", &names);
        // What this tab has not seen: everything recent for a new tab, or what arrived
        // while it was offline or reconnecting (its `since` is its newest message).
        let reply_to = cx.id().to_owned();
        queue(
            cx,
            Job::PrivateHistory {
                user: name,
                since,
                reply_to,
            },
        );
    })
    .on_disconnect(|cx, _reason| {
        let name = name_of(cx);
        let online = &mut cx.state().online;
        let last_tab = online.get_mut(&name).is_some_and(|user| {
            user.sockets -= 1;
            user.sockets == 0
        });
        if last_tab {
            online.remove(&name);
            cx.broadcast()
                .emit("presence", &json!({"user": name, "online": false}));
        }
    })
    // The rate limit, before any handler sees the event. Only messages cost tokens.
    .use_event_middleware(|cx, event| {
        if !matches!(event.name(), "message" | "private") {
            return Ok(());
        }
        let (name, now) = (name_of(cx), cx.now());
        let Some(user) = cx.state().online.get_mut(&name) else {
            return Ok(());
        };
        if user.bucket.take(now) {
            return Ok(());
        }
        user.refused += 1;
        let told = json!({"refused": user.refused, "retry_ms": user.bucket.wait_ms()});
        cx.emit("rate_limited", &told);
        Err(Refuse::Drop)
    })
    .on("join", |cx, req: Join, ack| {
        let room = req.room.trim().to_lowercase();
        let answer = match room_key(&room) {
            Err(e) => json!({ "error": e }),
            Ok(key) if cx.rooms().contains(&key) => json!({ "room": room }),
            Ok(_) if cx.rooms().iter().filter(|r| r.starts_with("room:")).count() >= MAX_ROOMS => {
                json!({ "error": "You can be in 10 rooms at most: leave one first." })
            }
            Ok(key) => {
                cx.join(key);
                let reply_to = cx.id().to_owned();
                let history = Job::RoomHistory {
                    room: room.clone(),
                    since: req.since,
                    reply_to,
                };
                queue(cx, history);
                json!({ "room": room })
            }
        };
        if let Some(ack) = ack {
            cx.ack(ack, &answer);
        }
    })
    .on("leave", |cx, req: Leave, _ack| {
        cx.leave(format!("room:{}", req.room));
    })
    .on("message", |cx, req: RoomText, _ack| {
        let text = match check_text(&req.text) {
            Ok(text) => text.to_owned(),
            Err(e) => {
                cx.emit("notice", e);
                return;
            }
        };
        if !cx.rooms().contains(&format!("room:{}", req.room)) {
            cx.emit("notice", "Join the room first.");
            return;
        }
        let from = name_of(cx);
        let room = req.room;
        queue(cx, Job::SaveRoom { room, from, text });
    })
    .on("private", |cx, req: PrivateText, _ack| {
        // Anyone with a valid name can be written to: if they are offline (or have never
        // signed in), the message waits in the database until they connect.
        let checked = check_name(&req.to).and_then(|()| check_text(&req.text));
        let text = match checked {
            Ok(text) => text.to_owned(),
            Err(e) => {
                cx.emit("notice", e);
                return;
            }
        };
        let from = name_of(cx);
        let to = req.to;
        queue(cx, Job::SavePrivate { from, to, text });
    })
    .on("typing", |cx, req: Typing, _ack| {
        let me = name_of(cx);
        let target = match (&req.room, &req.to) {
            (Some(room), _) => format!("room:{room}"),
            (None, Some(to)) if check_name(to).is_ok() => format!("user:{to}"),
            _ => return,
        };
        // Only into a room the typist is in.
        if target.starts_with("room:") && !cx.rooms().contains(&target) {
            return;
        }
        // Volatile: a hint that cannot go out at once is worthless later, so it is dropped
        // rather than queued behind real messages. Not to the typist's own tabs.
        cx.to(target)
            .except(format!("user:{me}"))
            .volatile()
            .emit("typing", &json!({"from": me, "room": req.room}));
    });
}

struct Options {
    host: String,
    port: u16,
    db: PathBuf,
    client_js: Option<PathBuf>,
    client_dir: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 3000,
        db: "chat.db".into(),
        client_js: None,
        client_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--host" => o.host = value,
            "--port" => match value.parse() {
                Ok(port) => o.port = port,
                Err(_) => usage(),
            },
            "--db" => o.db = value.into(),
            "--client-js" => o.client_js = Some(value.into()),
            "--client-dir" => o.client_dir = Some(value.into()),
            _ => usage(),
        }
    }
    if o.client_js.is_some() && o.client_dir.is_some() {
        usage();
    }
    o
}

fn usage() -> ! {
    eprintln!(
        "usage: chat [--host ADDR] [--port N (0: any)] [--db PATH] [--client-js PATH | --client-dir DIR]"
    );
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let o = options();
    let fail = |what: String| -> ! {
        eprintln!("chat: {what}");
        std::process::exit(1)
    };
    let conn =
        db::open(&o.db).unwrap_or_else(|e| fail(format!("database {}: {e}", o.db.display())));
    // The page, with the client's script tag rendered in; it says so plainly when the
    // client's script cannot load (an offline LAN without --client-js or --client-dir, or a
    // --client-dir without the bundle).
    let client = match &o.client_dir {
        Some(_) => page::Client::Served("/socket.io/socket.io.min.js"),
        None => page::Client::cdn_or_file(o.client_js.as_deref()),
    };
    let page = page::Page::new(include_str!("index.html"), client, true)
        .unwrap_or_else(|e| fail(format!("--client-js: {e}")));
    if let Some(dir) = &o.client_dir
        && !dir.join("socket.io.min.js").is_file()
    {
        // The server runs anyway (the engine logs it too); the page says what is wrong.
        eprintln!(
            "chat: --client-dir {}: no socket.io.min.js there (use the dist/ directory of \
             the npm package socket.io-client)",
            dir.display()
        );
    }

    let (jobs, jobs_rx) = mpsc::channel();
    let state = Chat {
        db: jobs,
        online: BTreeMap::new(),
    };
    // Chat messages are small: a tight payload limit bounds what one client can make the
    // server buffer.
    let mut config = Config::default().max_payload(64 * 1024);
    if let Some(dir) = &o.client_dir {
        // The bundle and its source maps at /socket.io/, as Node's `serveClient`.
        config = config.serve_client(dir);
    }
    let mut server = Server::bind((o.host.as_str(), o.port), config, state)?;
    setup(server.of("/"));
    server.on_http(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/app.js") => Some(page::asset("text/javascript", include_str!("app.js"))),
        ("GET", "/style.css") => Some(page::asset("text/css", include_str!("style.css"))),
        // The page itself and the client's script.
        _ => page.respond(req),
    });
    let worker = db::spawn(conn, jobs_rx, server.handle());

    // Tests read the first line to find the port when started with `--port 0`.
    let addr = server.local_addr();
    println!("listening on {addr}");
    println!(
        "open http://{addr}/ in a browser (database {})",
        o.db.display()
    );
    std::io::stdout().flush()?;
    server.run()?;
    // Dropping the server drops the state and its job sender: the worker finishes what is
    // queued, then stops.
    drop(server);
    let _ = worker.join();
    Ok(())
}
