//! A live dashboard pushed by the server: a background thread reads (simulated) sensors
//! and hands every reading to the loop through a [`Handle`]; the connection middleware sorts
//! clients into role rooms from their auth payload; admins can broadcast notices and get an
//! admin-only stream on top of what viewers get.
//!
//! Connect with `auth: {role: "viewer", name}` (or no auth at all: a viewer) or
//! `auth: {role: "admin", token, name}`. A wrong or missing admin token, an unknown role or
//! an auth payload that is not such an object is refused at connect time: the client gets
//! `connect_error` with the message `invalid admin token`, `unknown role` or `bad auth`.
//! Everyone joins `role:viewer`; admins also join `role:admin`.
//!
//! | server → client | to            | arguments                                                |
//! |-----------------|---------------|----------------------------------------------------------|
//! | `welcome`       | the new socket | `{id, role, name}`                                      |
//! | `reading`       | `role:viewer` | `{seq, at_ms, sensors: {name: value}}`, `--rate-hz` times a second |
//! | `sensor_raw`    | `role:admin`  | `{seq, raw: {name: ADC counts}}`, with every reading      |
//! | `admin_stats`   | `role:admin`  | `{seq, viewers, admins, notices}` about once a second |
//! | `notice`        | everyone      | `{from, text}`                                           |
//!
//! A client may emit `notice` with `{text}` and an ack. From an admin it goes to every
//! socket and the ack is `{ok: true, delivered}`. From a viewer it is refused with the ack
//! `{ok: false, error: "forbidden"}`; the viewer stays connected (a refusal by event, not by
//! connection: viewers are welcome, they just cannot broadcast).
//!
//! ```text
//! cargo run --release --example dashboard -- [--host 0.0.0.0] [--port 3000] [--rate-hz 10] [--admin-token T] [--client-js PATH]
//! ```
//!
//! Open `http://HOST:PORT/` to watch it (`examples/shared/dashboard.html`; `/?token=T` signs
//! in as an admin). The page loads the official client from its CDN, or, with `--client-js
//! PATH` (a copy of `socket.io.min.js`), from this server: a LAN without internet access.
//! The admin token can also come from `DASHBOARD_ADMIN_TOKEN`.

use serde::Deserialize;
use serde_json::{Value, json};
use sioloop::{Config, ConnectError, Handle, Server};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "shared/page.rs"]
mod page;

/// The state the loop owns: who is connected, and how many notices went out.
#[derive(Default)]
struct Dashboard {
    viewers: usize,
    admins: usize,
    notices: u64,
}

/// What the middleware decided about a socket; its typed socket data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Viewer,
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone)]
struct Member {
    role: Role,
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Auth {
    role: Option<String>,
    token: Option<String>,
    name: Option<String>,
}

/// The simulated sensors: name, how a 12-bit ADC count converts to the unit, and the
/// signal around which the counts wander.
const SENSORS: [(&str, f64, f64, f64); 3] = [
    // (name, offset, scale per count, center count)
    ("temperature_c", -40.0, 0.04, 1525.0),
    ("humidity_pct", 0.0, 0.025, 1800.0),
    ("pressure_hpa", 900.0, 0.05, 2260.0),
];

/// Compares in time independent of where the strings differ, so response times do not
/// tell a guesser how much of the token was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// The sensor thread: reads at a fixed rate and pushes each reading into the loop. The
/// JSON is built and serialized here, off the loop thread; the loop only queues the bytes.
fn sensors(handle: Handle<Dashboard>, rate_hz: f64) {
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let per_second = rate_hz.ceil() as u64;
    let started = Instant::now();
    let mut noise = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = started;
    for seq in 1u64.. {
        let t = started.elapsed().as_secs_f64();
        let mut raw = serde_json::Map::new();
        let mut values = serde_json::Map::new();
        for (i, (name, offset, scale, center)) in SENSORS.iter().enumerate() {
            // xorshift noise plus a slow wave: enough to make a chart move.
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let wave = (t / (20.0 + 10.0 * i as f64)).sin() * 40.0;
            let counts = (center + wave + (noise % 9) as f64 - 4.0).clamp(0.0, 4095.0) as u16;
            raw.insert((*name).into(), counts.into());
            let value = ((offset + scale * f64::from(counts)) * 100.0).round() / 100.0;
            values.insert((*name).into(), value.into());
        }
        let at_ms = (t * 1000.0) as u64;
        let reading = json!({"seq": seq, "at_ms": at_ms, "sensors": values});
        let ok = handle.emit("/", Some("role:viewer"), "reading", &reading)
            && handle.emit(
                "/",
                Some("role:admin"),
                "sensor_raw",
                &json!({"seq": seq, "raw": raw}),
            );
        if !ok {
            return; // the server has stopped
        }
        if seq % per_second == 0 {
            // `run` gets the loop's state: the counts live there.
            handle.run(move |cx| {
                let d = cx.state();
                let stats = json!({"seq": seq, "viewers": d.viewers, "admins": d.admins,
                                   "notices": d.notices});
                cx.to("role:admin").emit("admin_stats", &stats);
            });
        }
        // Fixed rate: the next reading is due one period after this one was due. A thread
        // that fell a whole period behind (a busy machine, a suspended laptop) skips ahead
        // instead of sending a burst of readings to catch up.
        next += period;
        let now = Instant::now();
        if next <= now {
            next = now + period;
        }
        std::thread::sleep(next - now);
    }
}

fn main() -> std::io::Result<()> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 3000u16;
    let mut rate_hz = 10.0f64;
    let mut token = std::env::var("DASHBOARD_ADMIN_TOKEN").unwrap_or_default();
    let mut client_js: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("{flag}: bad value {value:?}");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse().unwrap_or_else(|_| bad()),
            "--rate-hz" => {
                rate_hz = value.parse().unwrap_or_else(|_| bad());
                if !(0.1..=1000.0).contains(&rate_hz) {
                    bad()
                }
            }
            "--admin-token" => token = value,
            "--client-js" => client_js = Some(value.into()),
            _ => {
                eprintln!(
                    "usage: dashboard [--host ADDR] [--port N] [--rate-hz HZ] [--admin-token T] [--client-js PATH]"
                );
                std::process::exit(2)
            }
        }
    }
    if token.is_empty() {
        eprintln!("no --admin-token or DASHBOARD_ADMIN_TOKEN: admins cannot log in");
    }

    let page = page::Page::new(
        include_str!("shared/dashboard.html"),
        page::Client::cdn_or_file(client_js.as_deref()),
        false,
    )?;
    let mut server = Server::bind(
        (host.as_str(), port),
        Config::default(),
        Dashboard::default(),
    )?;
    server.on_http(move |request| page.respond(request));
    server
        .of("/")
        // Auth happens once, here, at connect time; handlers only read the role it stored.
        .use_middleware(move |cx| {
            // No auth at all reads as `{}`: a viewer.
            let auth = cx
                .auth_as::<Auth>()
                .ok_or_else(|| ConnectError::new("bad auth"))?;
            let role = match auth.role.as_deref().unwrap_or("viewer") {
                "viewer" => Role::Viewer,
                "admin" => {
                    let given = auth.token.as_deref().unwrap_or_default();
                    if token.is_empty() || !same_secret(given, &token) {
                        return Err(ConnectError::new("invalid admin token"));
                    }
                    Role::Admin
                }
                other => {
                    let other: String = other.chars().take(32).collect();
                    return Err(ConnectError::new("unknown role").with_data(json!({"role": other})));
                }
            };
            let name: String = auth.name.unwrap_or_default().chars().take(32).collect();
            cx.set_data(Member { role, name });
            Ok(())
        })
        .on_connect(|cx| {
            let Some(Member { role, name }) = cx.data::<Member>().cloned() else {
                return;
            };
            // The middleware chose the role; the rooms follow from it. (A middleware
            // cannot join rooms: the socket does not exist until they all accept it.)
            cx.join("role:viewer");
            if role == Role::Admin {
                cx.join("role:admin");
                cx.state().admins += 1;
            } else {
                cx.state().viewers += 1;
            }
            let welcome = json!({"id": cx.id(), "role": role.as_str(), "name": name});
            cx.emit("welcome", &welcome);
        })
        .on_disconnect(|cx, _reason| match cx.data::<Member>().map(|m| m.role) {
            Some(Role::Admin) => cx.state().admins -= 1,
            Some(Role::Viewer) => cx.state().viewers -= 1,
            None => {}
        })
        .on("notice", |cx, notice: Value, ack| {
            let (role, from) = match cx.data::<Member>() {
                Some(m) => (m.role, m.name.clone()),
                None => return,
            };
            let text = notice["text"].as_str().map(str::trim).unwrap_or_default();
            let reply = if role != Role::Admin {
                json!({"ok": false, "error": "forbidden"})
            } else if text.is_empty() || text.len() > 500 {
                json!({"ok": false, "error": "a notice needs a text of 1 to 500 bytes"})
            } else {
                let notice = json!({"from": from, "text": text});
                cx.of("/").emit("notice", &notice);
                cx.state().notices += 1;
                json!({"ok": true, "delivered": cx.socket_count("/")})
            };
            if let Some(ack) = ack {
                cx.ack(ack, &reply);
            }
        });

    let handle = server.handle();
    std::thread::spawn(move || sensors(handle, rate_hz));

    // Tests read this line to find the port when started with `--port 0`.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
