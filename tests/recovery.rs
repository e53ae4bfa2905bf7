//! Connection state recovery on the wire, on the in-memory server with its fake clock: what
//! a returning client gets (its id, rooms and missed events, in order, before the CONNECT
//! answer, binary included), what is never logged (volatile emits, emits that wait for an
//! ack), what is never kept (deliberate disconnects), and the limits: the window, the
//! log's byte cap, the missed-events cap, and middlewares. The official client against
//! real sockets is in `tests/socketio_client.rs` (`recovery_*`).

#[path = "common/memory.rs"]
mod memory;
#[path = "common/raw.rs"]
mod raw;

use memory::{Frame, Harness, texts};
use serde_json::{Value, json};
use sioloop::engine::{ClientId, Config};
use sioloop::{RecoveryConfig, Server};
use std::time::Duration;

/// How many times the middleware of `/` ran.
#[derive(Default)]
struct Runs(u64);

const WINDOW: Duration = Duration::from_secs(10);

fn recovery() -> RecoveryConfig {
    RecoveryConfig {
        max_disconnection_duration: WINDOW,
        ..RecoveryConfig::default()
    }
}

/// `/`: sockets join `room` on their first connect and get `hello`; `shout` goes to the
/// whole room (`shouted`), `bytes` too (`bytes`, binary), `whisper` volatile, `ask` waits for
/// an ack, `leave_me` makes the server disconnect the socket, `stats` acks the counters.
/// `/quiet` sends nothing on connect; `quiet_shout` on `/` goes to `/quiet`'s `room`.
fn server(config: Option<RecoveryConfig>, refuse_returns: bool) -> Harness<Runs> {
    Harness::new(
        Config::default(),
        Runs::default(),
        |server: &mut Server<Runs>| {
            if let Some(config) = config {
                server.connection_state_recovery(config);
            }
            server
                .of("/")
                .use_middleware(move |cx| {
                    cx.state().0 += 1;
                    if refuse_returns && cx.auth_as::<Value>().is_some_and(|a| a["pid"].is_string())
                    {
                        return Err(sioloop::ConnectError::new("no returns"));
                    }
                    Ok(())
                })
                .on_connect(|cx| {
                    if !cx.recovered() {
                        cx.join("room");
                    }
                    let hello = json!({"id": cx.id(), "recovered": cx.recovered()});
                    cx.emit("hello", &hello);
                })
                .on("shout", |cx, text: String, _ack| {
                    cx.of("/").to("room").emit("shouted", &text);
                })
                .on("bytes", |cx, n: u8, _ack| {
                    let bytes = serde_bytes::ByteBuf::from(vec![n, n]);
                    cx.of("/").to("room").emit("bytes", &bytes);
                })
                .on("whisper", |cx, text: String, _ack| {
                    cx.of("/").to("room").volatile().emit("whispered", &text);
                })
                .on("ask", |cx, (): (), _ack| {
                    cx.emit_with_ack("question", &1, Duration::from_secs(5), |_, _| {});
                })
                .on("quiet_shout", |cx, text: String, _ack| {
                    cx.of("/quiet").to("room").emit("shouted", &text);
                })
                .on("leave_me", |cx, (): (), _ack| cx.disconnect())
                .on("stats", |cx, (): (), ack| {
                    let s = cx.stats();
                    let text = cx.metrics_text();
                    let gauge = |name: &str| {
                        text.lines().find_map(|l| {
                            l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok()
                        })
                    };
                    let stats = json!({
                        "kept": s.sessions_kept, "recovered": s.sessions_recovered,
                        "refused": s.recoveries_refused, "expired": s.recovery_sessions_expired,
                        "evicted": s.recovery_log_evicted,
                        "kept_now": gauge("sioloop_recovery_kept_sessions"),
                        "log_events": gauge("sioloop_recovery_log_events"),
                    });
                    if let Some(ack) = ack {
                        cx.ack(ack, &stats);
                    }
                });
            server.of("/quiet").on_connect(|cx| {
                if !cx.recovered() {
                    cx.join("room");
                }
            });
        },
    )
}

/// The CONNECT answer among `frames`: `(sid, pid)`.
fn connect_answer(frames: &[Frame], nsp: &str) -> (String, Option<String>) {
    let prefix = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    let json = texts(frames)
        .into_iter()
        .find_map(|t| t.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no CONNECT answer in {frames:?}"));
    let v: Value = serde_json::from_str(json).expect("CONNECT JSON");
    let sid = v["sid"].as_str().expect("sid").to_owned();
    (sid, v["pid"].as_str().map(str::to_owned))
}

/// The arguments of an EVENT text (`42[...]`, `42/nsp,[...]` or `451-[...]`).
fn event_args(text: &str) -> Vec<Value> {
    let start = text.find('[').expect("an array");
    serde_json::from_str(&text[start..]).expect("event JSON")
}

/// The offset the last event in `frames` carried.
fn last_offset(frames: &[Frame]) -> String {
    let text = texts(frames)
        .into_iter()
        .rev()
        .find(|t| t.starts_with("42") || t.starts_with("45"))
        .unwrap_or_else(|| panic!("no event in {frames:?}"));
    let args = event_args(text);
    args.last()
        .and_then(Value::as_str)
        .expect("a trailing offset")
        .to_owned()
}

/// Connects a new WebSocket client to `nsp` with `auth`: the client, and what it got.
fn connect(h: &mut Harness<Runs>, nsp: &str, auth: Value) -> (ClientId, Vec<Frame>) {
    let client = h.websocket_from("127.0.0.1:40000".parse().expect("address"));
    let packet = match nsp {
        "/" => format!("40{auth}"),
        _ => format!("40{nsp},{auth}"),
    };
    let frames = h.exchange(client, &[&packet]);
    (client, frames)
}

fn stats(h: &mut Harness<Runs>, client: ClientId) -> Value {
    let frames = h.exchange(client, &["429[\"stats\"]"]);
    let text = texts(&frames)
        .into_iter()
        .find_map(|t| t.strip_prefix("439"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no stats ack in {frames:?}"));
    serde_json::from_str::<Vec<Value>>(&text).expect("ack JSON")[0].clone()
}

/// Drops `client`'s connection (a reset) and lets the server notice.
fn drop_connection(h: &mut Harness<Runs>, client: ClientId) {
    h.net.reset(client);
    h.turns(3);
}

#[test]
fn a_returning_client_gets_its_socket_and_missed_events_before_its_connect_answer() {
    let mut h = server(Some(recovery()), false);
    let (a, got) = connect(&mut h, "/", json!({}));
    let (sid, pid) = connect_answer(&got, "/");
    let pid = pid.expect("a pid when recovery is on");
    let offset = last_offset(&got); // of `hello`
    let (b, _) = connect(&mut h, "/", json!({}));

    drop_connection(&mut h, a);
    h.exchange(
        b,
        &[
            r#"42["shout","one"]"#,
            r#"42["bytes",7]"#,
            r#"42["whisper","not kept"]"#,
            r#"42["shout","two"]"#,
        ],
    );
    let (_a2, got) = connect(&mut h, "/", json!({"pid": pid, "offset": offset}));
    // The missed events, in order, binary with its attachment, no volatile one; then the
    // CONNECT answer with the same id and pid; then the connect handler's `hello`.
    let mut seen = Vec::new();
    for frame in &got {
        match frame {
            Frame::Text(t) if t.starts_with("40") => seen.push(json!("CONNECT")),
            Frame::Text(t) => {
                let args = event_args(t);
                seen.push(json!([args[0], args[1]]));
                assert!(args.last().is_some_and(Value::is_string), "offset on {t}");
            }
            Frame::Binary(b) => seen.push(json!(b)),
        }
    }
    assert_eq!(
        seen,
        [
            json!(["shouted", "one"]),
            json!(["bytes", {"_placeholder": true, "num": 0}]),
            json!([7, 7]),
            json!(["shouted", "two"]),
            json!("CONNECT"),
            json!(["hello", {"id": sid, "recovered": true}]),
        ],
        "{got:?}"
    );
    assert_eq!(connect_answer(&got, "/"), (sid, Some(pid)));
    // Back in its room: a new shout reaches it.
    let shout = h.exchange(b, &[r#"42["shout","three"]"#]);
    assert_eq!(texts(&shout).len(), 1);
    let s = stats(&mut h, b);
    assert_eq!(
        (s["kept"].as_u64(), s["recovered"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["kept_now"], 0, "{s}");
    assert_eq!(h.server.state().0, 2, "the return skipped the middleware");
}

#[test]
fn without_recovery_there_is_no_pid_and_no_offset() {
    let mut h = server(None, false);
    let (a, got) = connect(&mut h, "/", json!({}));
    assert_eq!(connect_answer(&got, "/").1, None);
    let shout = h.exchange(a, &[r#"42["shout","x"]"#]);
    assert_eq!(texts(&shout), [r#"42["shouted","x"]"#]);
}

#[test]
fn volatile_emits_and_emits_that_wait_for_an_ack_carry_no_offset() {
    let mut h = server(Some(recovery()), false);
    let (a, _) = connect(&mut h, "/", json!({}));
    let got = h.exchange(a, &[r#"42["whisper","x"]"#, r#"42["ask"]"#]);
    assert_eq!(
        texts(&got),
        [r#"42["whispered","x"]"#, r#"420["question",1]"#]
    );
}

#[test]
fn deliberate_disconnects_are_never_recovered() {
    let mut h = server(Some(recovery()), false);
    // The client leaves the namespace; the server disconnects the other one.
    for leave in [r#"41"#, r#"42["leave_me"]"#] {
        let (a, got) = connect(&mut h, "/", json!({}));
        let (sid, pid) = connect_answer(&got, "/");
        let offset = last_offset(&got);
        h.exchange(a, &[leave]);
        let (_, got) = connect(&mut h, "/", json!({"pid": pid, "offset": offset}));
        let (new_sid, _) = connect_answer(&got, "/");
        assert_ne!(new_sid, sid, "after {leave}");
        assert!(
            texts(&got)
                .iter()
                .any(|t| t.contains(r#""recovered":false"#))
        );
    }
    let (c, _) = connect(&mut h, "/", json!({}));
    let s = stats(&mut h, c);
    assert_eq!(
        (s["kept"].as_u64(), s["refused"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
}

#[test]
fn a_kept_socket_expires_after_the_window_and_its_memory_is_freed() {
    let mut h = server(Some(recovery()), false);
    let (a, got) = connect(&mut h, "/", json!({}));
    let (sid, pid) = connect_answer(&got, "/");
    let offset = last_offset(&got);
    drop_connection(&mut h, a);
    let (b, _) = connect(&mut h, "/", json!({}));
    h.exchange(b, &[r#"42["shout","while away"]"#]);
    let s = stats(&mut h, b);
    // Logged: both `hello`s and the shout.
    assert_eq!(
        (s["kept_now"].as_u64(), s["log_events"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );

    // Past the window and the sweep's second: nothing is held any more.
    h.net.advance(WINDOW + Duration::from_secs(2));
    h.turns(3);
    let s = stats(&mut h, b);
    assert_eq!(s["expired"], 1, "{s}");
    assert_eq!(s["kept_now"], 0, "{s}");
    // The log is empty too (the `stats` answers are acks, never logged).
    assert_eq!(s["log_events"], 0, "{s}");
    let (_, got) = connect(&mut h, "/", json!({"pid": pid, "offset": offset}));
    assert_ne!(connect_answer(&got, "/").0, sid);
}

#[test]
fn past_the_log_s_byte_cap_or_the_missed_cap_a_client_starts_over_and_it_is_counted() {
    for (config, counter) in [
        (
            RecoveryConfig {
                max_buffered_bytes: 4096,
                ..recovery()
            },
            "evicted",
        ),
        (
            RecoveryConfig {
                max_missed_packets: 3,
                ..recovery()
            },
            "refused",
        ),
    ] {
        let mut h = server(Some(config), false);
        let (a, got) = connect(&mut h, "/", json!({}));
        let (sid, pid) = connect_answer(&got, "/");
        let offset = last_offset(&got);
        drop_connection(&mut h, a);
        let (b, _) = connect(&mut h, "/", json!({}));
        let long = format!(r#"42["shout","{}"]"#, "x".repeat(200));
        h.exchange(b, &vec![long.as_str(); 40]);
        let (_, got) = connect(&mut h, "/", json!({"pid": pid, "offset": offset}));
        assert_ne!(connect_answer(&got, "/").0, sid, "{counter}");
        assert!(
            !texts(&got).iter().any(|t| t.contains("xxxx")),
            "{counter}: nothing replayed"
        );
        let s = stats(&mut h, b);
        assert!(s[counter].as_u64().unwrap_or(0) > 0, "{counter}: {s}");
        assert_eq!(s["refused"], 1, "{s}");
    }
}

#[test]
fn a_client_that_got_no_event_yet_comes_back_without_an_offset() {
    // The reference server does not recover it (the client sends no offset); here it gets
    // every event since its socket was made.
    let mut h = server(Some(recovery()), false);
    let (q, got) = connect(&mut h, "/quiet", json!({}));
    let (sid, pid) = connect_answer(&got, "/quiet");
    drop_connection(&mut h, q);
    let (b, _) = connect(&mut h, "/", json!({}));
    h.exchange(b, &[r#"42["quiet_shout","hi"]"#]);
    let (_, got) = connect(&mut h, "/quiet", json!({"pid": pid}));
    assert_eq!(connect_answer(&got, "/quiet").0, sid);
    let shouted = texts(&got)[0];
    assert!(
        shouted.starts_with(r#"42/quiet,["shouted","hi","#),
        "{got:?}"
    );
}

#[test]
fn with_skip_middlewares_off_a_return_runs_them_and_they_may_refuse() {
    let config = RecoveryConfig {
        skip_middlewares: false,
        ..recovery()
    };
    let mut h = server(Some(config), true);
    let (a, got) = connect(&mut h, "/", json!({}));
    let (_, pid) = connect_answer(&got, "/");
    let offset = last_offset(&got);
    drop_connection(&mut h, a);
    let (_, got) = connect(&mut h, "/", json!({"pid": pid, "offset": offset}));
    assert_eq!(texts(&got), [r#"44{"message":"no returns"}"#]);
    assert_eq!(h.server.state().0, 2);
}
