//! The Socket.IO layer in-process, spoken to over a raw WebSocket: loop timers, the
//! cross-thread `Handle`, event middleware and its counter, strict packet validation, unknown
//! namespaces, and shutdown through the handle.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::{Refuse, Server};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn start() -> Started {
    start_with(config(), default_setup)
}

fn default_setup(server: &mut Server<State>) {
    server
        .of("/")
        .on_connect(|cx| cx.join("room"))
        .on_disconnect(|cx, reason| {
            let line = format!("disconnect {reason}");
            cx.state().log.push(line);
        })
        .use_event_middleware(|_, event| match event.name() {
            "spam" => Err(Refuse::Drop),
            _ => Ok(()),
        })
        .on::<()>("ping_me", |cx, (), _| {
            cx.emit("pong", &"pong");
        })
        .on::<u32>("start_ticks", |cx, period_ms, _| {
            cx.every(Duration::from_millis(period_ms as u64), |cx| {
                cx.state().ticks += 1;
                let n = cx.state().ticks;
                cx.to("room").emit("tick", &n);
            });
        });
}

#[test]
fn timers_handle_middleware_and_shutdown() {
    let (handle, addr, thread) = start();
    let (mut ws, _sid) = connect(addr);

    // An interval timer started from a handler ticks on the loop, in order.
    ws_send_text(&mut ws, "42[\"start_ticks\",30]");
    let first = wait_for(&mut ws, "first tick", |t| t.starts_with("42[\"tick\""));
    assert_eq!(first, "42[\"tick\",1]");
    assert_eq!(
        wait_for(&mut ws, "second tick", |t| t.starts_with("42[\"tick\"")),
        "42[\"tick\",2]"
    );

    // A zero-period timer is clamped to 1 ms instead of spinning the loop: a cancelled one
    // leaves the loop answering.
    handle.run(|cx| {
        let id = cx.every(Duration::ZERO, |_| {});
        cx.after(Duration::from_millis(20), move |cx| cx.cancel_timer(id));
    });

    // Another thread emits through the handle.
    let from_thread = handle.clone();
    std::thread::spawn(move || {
        assert!(from_thread.emit("/", Some("room"), "news", &"from another thread"));
    })
    .join()
    .expect("emitting thread");
    assert_eq!(
        wait_for(&mut ws, "news", |t| t.starts_with("42[\"news\"")),
        "42[\"news\",\"from another thread\"]"
    );

    // A one-shot timer scheduled through `Handle::run`.
    handle.run(|cx| {
        cx.after(Duration::from_millis(20), |cx| {
            cx.of("/").emit_args("later", &("a", 2));
        });
    });
    assert_eq!(
        wait_for(&mut ws, "later", |t| t.starts_with("42[\"later\"")),
        "42[\"later\",\"a\",2]"
    );

    // The event middleware drops `spam` (and counts it); other events go through.
    ws_send_text(&mut ws, "42[\"spam\"]");
    ws_send_text(&mut ws, "42[\"ping_me\"]");
    assert_eq!(
        wait_for(&mut ws, "pong", |t| t.starts_with("42[\"pong\"")),
        "42[\"pong\",\"pong\"]"
    );
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let _ = tx.send(cx.stats().events_refused);
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));

    // Shutdown through the handle: the client is closed, run returns, the socket's
    // disconnect handler saw the reason.
    handle.shutdown();
    let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(5));
    assert!(end.is_some(), "the server should close the WebSocket");
    drop(ws);
    let state = thread.join().expect("server thread");
    assert_eq!(
        state.log,
        vec!["disconnect server shutting down".to_owned()]
    );
    assert!(state.ticks >= 2);
}

#[test]
fn invalid_packets_close_with_parse_error_and_unknown_namespaces_are_refused() {
    let (handle, addr, thread) = start();

    // Unknown namespace: CONNECT_ERROR with the reference message; the connection stays.
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    ws_send_text(&mut ws, "40/nope,");
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        "44/nope,{\"message\":\"Invalid namespace\"}"
    );
    drop(ws);

    // `42{}` (an event whose data is not an array) closes the connection: parse error.
    for bad in ["42{}", "42abc[\"x\"]", "4abc", "49[]", "42[\"connect\"]"] {
        let (mut ws, _) = connect(addr);
        ws_send_text(&mut ws, bad);
        let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
        assert!(end.is_some(), "{bad:?} should close the connection");
    }

    handle.shutdown();
    let state = thread.join().expect("server thread");
    assert_eq!(
        state.log,
        vec!["disconnect parse error".to_owned(); 5],
        "each bad packet disconnects its socket with parse error"
    );
}

#[test]
fn volatile_packets_are_dropped_and_counted_when_the_client_is_not_reading() {
    // A queue limit above the 32 MiB this test backs up (the default would disconnect the
    // client as a slow consumer, which another test covers).
    let config = config().max_queued_bytes(64 * 1024 * 1024);
    let (handle, addr, thread) = start_with(config, default_setup);
    let (mut ws, _) = connect(addr);

    // While the client keeps up, volatile packets are delivered, several in one tick
    // (positions and scores from one game tick). Regression: the second was dropped.
    handle.run(|cx| {
        cx.to("room").volatile().emit("v", &0);
        cx.to("room").volatile().emit("score", &0);
    });
    assert_eq!(
        wait_for(&mut ws, "volatile packet", |t| t.starts_with("42[\"v\"")),
        "42[\"v\",0]"
    );
    assert_eq!(
        wait_for(&mut ws, "second volatile packet", |t| t
            .starts_with("42[\"score\"")),
        "42[\"score\",0]"
    );

    // The client stops reading; 32 MiB of regular packets fill the kernel buffers and the
    // server's write queue, so volatile packets can no longer go out at once. (The payload
    // is serialized once, as raw JSON: re-serializing 256 KiB per emit is slow in debug.)
    handle.run(move |cx| {
        let big =
            serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(256 * 1024)))
                .expect("raw JSON");
        for _ in 0..128 {
            cx.to("room").emit("big", &*big);
        }
    });
    // Wait until the loop has written what the kernel takes and stopped: the rest stays in
    // the connection's queue because the client is not reading.
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let (tx, rx) = mpsc::channel();
        handle.run(move |cx| {
            let _ = tx.send(cx.engine_stats().bytes_out);
        });
        let written = rx.recv_timeout(Duration::from_secs(10)).expect("stats");
        if written > 1024 * 1024 && written == last {
            break;
        }
        last = written;
    }
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        for i in 1..=10 {
            cx.to("room").volatile().emit("v", &i);
        }
        let _ = tx.send(cx.stats().volatile_dropped);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(10),
        "every volatile packet is dropped (and counted) while the client is behind"
    );

    // The regular packets were queued, not dropped: the client still gets all of them, and
    // none of the dropped volatile ones.
    let mut big = 0;
    let mut volatile = Vec::new();
    while big < 128 {
        let text = ws_text(&mut ws, "queued packets");
        if text.starts_with("42[\"big\"") {
            big += 1;
        } else if text.starts_with("42[\"v\"") {
            volatile.push(text);
        }
    }
    assert!(
        volatile.is_empty(),
        "dropped volatile packets arrived: {volatile:?}"
    );

    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn aggregated_acks_room_operations_and_fetch_sockets() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server
            .of("/")
            .use_middleware(|cx| {
                let team = cx
                    .auth_as::<serde_json::Value>()
                    .and_then(|a| a["team"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                cx.set_data(team);
                Ok(())
            })
            .on_connect(|cx| {
                let team = cx.data::<String>().cloned().unwrap_or_default();
                cx.join(format!("team:{team}"));
            })
            .on_disconnect(|cx, reason| {
                let team = cx.data::<String>().cloned().unwrap_or_default();
                cx.state().log.push(format!("{team} {reason}"));
            })
            // Anything without a handler of its own lands here.
            .on_unhandled(|cx, event, ack| {
                if let Some(ack) = ack {
                    let name = event.name().to_owned();
                    cx.ack(ack, &format!("any:{name}"));
                }
            });
    });
    let (mut red1, red1_id) = connect_to(addr, "/", r#"{"team":"red"}"#);
    let (mut red2, _) = connect_to(addr, "/", r#"{"team":"red"}"#);
    let (mut blue, blue_id) = connect_to(addr, "/", r#"{"team":"blue"}"#);

    // The catch-all answers an event that has no handler.
    ws_send_text(&mut blue, r#"425["whatever",1]"#);
    assert_eq!(
        ws_text(&mut blue, "catch-all ack"),
        r#"435["any:whatever"]"#
    );

    // fetch_sockets with typed data, for a room filter; the room list.
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let mut red: Vec<(String, Option<String>, Vec<String>)> = cx
            .of("/")
            .to("team:red")
            .fetch_sockets_with_data::<String>()
            .into_iter()
            .map(|(info, team)| {
                let mut rooms = info.rooms;
                rooms.sort();
                (info.id, team, rooms)
            })
            .collect();
        red.sort();
        let _ = tx.send((red, cx.nsp_rooms("/")));
    });
    let (red, rooms) = rx.recv_timeout(Duration::from_secs(5)).expect("fetch");
    assert_eq!(red.len(), 2);
    assert!(
        red.iter()
            .all(|(_, team, _)| team.as_deref() == Some("red"))
    );
    let mut red1_rooms = vec![red1_id.clone(), "team:red".to_owned()];
    red1_rooms.sort();
    assert!(
        red.iter()
            .any(|(id, _, rooms)| *id == red1_id && *rooms == red1_rooms),
        "{red:?}"
    );
    assert!(rooms.contains(&"team:red".to_owned()) && rooms.contains(&"team:blue".to_owned()));
    assert!(
        rooms.contains(&blue_id),
        "every socket is in its own id room"
    );

    // A broadcast with acks aggregated under one timeout: two answer, one does not.
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        cx.of("/")
            .timeout(Duration::from_millis(400))
            .emit_with_ack("vote", &"?", move |_, results| {
                let mut answers: Vec<String> = results
                    .responses
                    .iter()
                    .map(|(_, p)| p.raw().get().to_owned())
                    .collect();
                answers.sort();
                let _ = tx.send((answers, results.timed_out));
            });
    });
    for (ws, answer) in [(&mut red1, "yes"), (&mut red2, "no")] {
        let q = ws_text(ws, "vote");
        let id = q
            .strip_prefix("42")
            .and_then(|r| r.strip_suffix(r#"["vote","?"]"#))
            .unwrap_or_else(|| panic!("a vote with an ack id expected: {q}"));
        ws_send_text(ws, &format!(r#"43{id}["{answer}"]"#));
    }
    assert!(
        ws_text(&mut blue, "vote").starts_with("42"),
        "blue is asked too"
    );
    let (answers, timed_out) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("ack results");
    assert_eq!(
        answers,
        vec![r#"["no"]"#.to_owned(), r#"["yes"]"#.to_owned()]
    );
    assert!(timed_out, "blue never answered");

    // Room filters: the red team joins `finals`, then leaves `team:red`, then everyone in
    // `finals` is disconnected.
    handle.run(|cx| cx.of("/").to("team:red").join("finals"));
    handle.run(|cx| cx.of("/").to("finals").leave("team:red"));
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let finals = cx.of("/").to("finals").fetch_sockets().len();
        let red = cx.of("/").to("team:red").fetch_sockets().len();
        let _ = tx.send((finals, red));
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok((2, 0)));
    handle.disconnect("/", "finals");
    for ws in [&mut red1, &mut red2] {
        assert_eq!(
            wait_for(ws, "DISCONNECT", |t| t.starts_with("41")),
            "41",
            "a server-side disconnect tells the client"
        );
    }
    // Shutdown is asynchronous: wait for the server's close before the client goes away,
    // or the server may see the client leave first.
    handle.shutdown();
    let (_, end) = ws_wait_end(&mut blue, Instant::now() + Duration::from_secs(5));
    assert!(
        end.is_some(),
        "the server closes blue's connection on shutdown"
    );
    drop((red1, red2, blue));
    let mut log = thread.join().expect("server thread").log;
    log.sort();
    assert_eq!(
        log,
        vec![
            "blue server shutting down".to_owned(),
            "red server namespace disconnect".to_owned(),
            "red server namespace disconnect".to_owned(),
        ]
    );
}

#[test]
fn connect_timeout_and_disconnect_with_connection() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server.connect_timeout(Duration::from_millis(200));
        server
            .of("/")
            .on_disconnect(|cx, reason| {
                let line = format!("{} {reason}", cx.nsp());
                cx.state().log.push(line);
            })
            .on::<()>("leave_for_good", |cx, (), _| {
                cx.disconnect_with_connection()
            });
        server.of("/admin").on_disconnect(|cx, reason| {
            let line = format!("{} {reason}", cx.nsp());
            cx.state().log.push(line);
        });
    });

    // A client that never joins a namespace is closed after the connect timeout.
    let mut idle = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut idle, "open packet");
    let (_, end) = ws_wait_end(&mut idle, Instant::now() + Duration::from_secs(3));
    assert!(
        end.is_some(),
        "an idle connection is closed after the connect timeout"
    );

    // disconnect_with_connection: this socket gets DISCONNECT, its sibling in /admin gets
    // `forced server close`, and the connection closes.
    let (mut ws, _) = connect_to(addr, "/", "");
    ws_send_text(&mut ws, "40/admin,");
    assert!(ws_text(&mut ws, "admin CONNECT").starts_with("40/admin,"));
    ws_send_text(&mut ws, r#"42["leave_for_good"]"#);
    assert_eq!(
        wait_for(&mut ws, "DISCONNECT", |t| t.starts_with("41")),
        "41"
    );
    let (_, end) = ws_wait_end(&mut ws, Instant::now() + Duration::from_secs(3));
    assert!(end.is_some(), "the connection closes");

    handle.shutdown();
    drop(ws);
    let mut log = thread.join().expect("server thread").log;
    log.sort();
    assert_eq!(
        log,
        vec![
            "/ server namespace disconnect".to_owned(),
            "/admin forced server close".to_owned()
        ]
    );
}

#[test]
fn middleware_joins_and_acks_answered_after_the_handler() {
    use sioloop::Ack;
    let (handle, addr, thread) = start_with(config(), |server| {
        server
            .of("/")
            .use_middleware(|cx| {
                // Joined before any handler sees the socket.
                cx.join("vip");
                cx.set_data(7u32);
                Ok(())
            })
            .on_connect(|cx| {
                let line = format!(
                    "rooms {} data {:?}",
                    cx.rooms().iter().any(|r| r == "vip"),
                    cx.data_ref::<u32>()
                );
                cx.state().log.push(line);
            })
            // The ack is answered from a timer, after the handler has returned (as a worker
            // thread's reply through the Handle would).
            .on::<()>("slow", |cx, (), ack| {
                let Some(ack) = ack else { return };
                cx.after(Duration::from_millis(30), move |cx| {
                    let answered = cx.ack(ack, &"done");
                    cx.state().log.push(format!("answered {answered}"));
                });
            })
            .on::<()>("remember", |cx, (), ack| {
                let Some(ack): Option<Ack> = ack else { return };
                // Answered only after the socket has gone: must be refused, not misrouted.
                cx.after(Duration::from_millis(300), move |cx| {
                    let answered = cx.ack(ack, &"late");
                    cx.state().log.push(format!("late answered {answered}"));
                });
            });
    });
    let (mut ws, _) = connect(addr);
    ws_send_text(&mut ws, r#"421["slow"]"#);
    assert_eq!(ws_text(&mut ws, "late ack"), r#"431["done"]"#);
    ws_send_text(&mut ws, r#"422["remember"]"#);
    ws_send_text(&mut ws, "41");
    std::thread::sleep(Duration::from_millis(500));
    handle.shutdown();
    drop(ws);
    let log = thread.join().expect("server thread").log;
    assert_eq!(
        log,
        vec![
            "rooms true data Some(7)".to_owned(),
            "answered true".to_owned(),
            "late answered false".to_owned(),
        ]
    );
}

/// Broadcasts are framed once and the same bytes go to every WebSocket recipient; the
/// recipients that cannot take them that way (polling, or packets already waiting) get
/// copies. Either way each client sees the same packets, attachments included, in the order
/// the handler emitted them, also when many broadcasts arrive in one read.
#[test]
fn shared_broadcasts_keep_order_across_transports() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server
            .of("/")
            .on_connect(|cx| cx.join("room"))
            .on::<u32>("mixed", |cx, n, _| {
                // A direct emit queued in the sender's session, then a broadcast, then
                // another direct emit: the sender must see them in this order.
                cx.emit("first", &n);
                let blob = serde_bytes::ByteBuf::from(vec![n as u8; 3]);
                cx.of("/").to("room").emit_args("bc", &(n, blob));
                cx.emit("last", &n);
            })
            .on::<u32>("burst", |cx, n, _| {
                cx.of("/").to("room").emit("seq", &n);
            });
    });
    let (mut sender, _) = connect(addr);
    let (mut other, _) = connect(addr);
    // A polling client in the same room.
    let sid = handshake(addr, Expected::DEFAULTS);
    assert_eq!(post(addr, &poll_url(&sid), b"40").text(), "ok");
    let connected = get(addr, &poll_url(&sid)).text();
    assert!(
        connected.starts_with("40{"),
        "CONNECT over polling: {connected}"
    );

    ws_send_text(&mut sender, "42[\"mixed\",7]");
    let bc_text = "451-[\"bc\",7,{\"_placeholder\":true,\"num\":0}]";
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match ws_next(&mut sender).expect("sender frames") {
            tungstenite::Message::Text(t) if t.as_str() != "2" => seen.push(t.to_string()),
            tungstenite::Message::Binary(b) => seen.push(format!("{:?}", &b[..])),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        ["42[\"first\",7]", bc_text, "[7, 7, 7]", "42[\"last\",7]"]
    );
    assert_eq!(
        wait_for(&mut other, "bc", |t| t.starts_with("451-")),
        bc_text
    );
    match ws_next(&mut other).expect("attachment") {
        tungstenite::Message::Binary(b) => assert_eq!(&b[..], &[7, 7, 7]),
        m => panic!("attachment expected, got {m:?}"),
    }
    let polled = get(addr, &poll_url(&sid)).text();
    assert_eq!(
        packets(&polled),
        [bc_text, "bBwcH"],
        "polling copy of the broadcast"
    );

    // Many broadcasts in one read: everyone gets all of them, in order.
    let requests: Vec<String> = (0..200).map(|n| format!("42[\"burst\",{n}]")).collect();
    let refs: Vec<&str> = requests.iter().map(String::as_str).collect();
    ws_send_texts_together(&mut sender, &refs);
    for ws in [&mut sender, &mut other] {
        for n in 0..200 {
            let got = wait_for(ws, "seq", |t| t.starts_with("42[\"seq\""));
            assert_eq!(got, format!("42[\"seq\",{n}]"));
        }
    }
    let mut polled = Vec::new();
    while polled.len() < 200 {
        polled.extend(packets(&get(addr, &poll_url(&sid)).text()));
    }
    let expected: Vec<String> = (0..200).map(|n| format!("42[\"seq\",{n}]")).collect();
    assert_eq!(polled, expected);

    handle.shutdown();
    thread.join().expect("server thread");
}
