//! Dynamic namespaces under a client that is not signed in: its CONNECTs create nothing, a
//! child namespace lives only while it has sockets, and a namespace name is bounded. What
//! the client sees (CONNECT, CONNECT_ERROR, acks), the counters and the metrics page.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::{ConnectError, Handle, Server, Stats};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const AUTH: &str = r#"{"token":"secret"}"#;

/// Socket.IO counters and the live namespaces, read on the loop thread.
fn stats(handle: &Handle<State>) -> (Stats, Vec<String>) {
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let mut names = cx.namespaces();
        names.sort();
        let _ = tx.send((cx.stats(), names));
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("stats")
}

/// Polls until `done` holds for the counters and namespaces, or fails after 5 s.
fn wait_for_stats(
    handle: &Handle<State>,
    what: &str,
    done: impl Fn(&Stats, &[String]) -> bool,
) -> (Stats, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, names) = stats(handle);
        if done(&s, &names) {
            return (s, names);
        }
        assert!(Instant::now() < deadline, "{what}: {s:?} {names:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server with one dynamic namespace (`/game-*`) whose middleware wants a token; its
/// `ping` event answers with the namespace's name.
fn game_server(setup: impl FnOnce(&mut Server<State>) + Send + 'static) -> Started {
    start_with(config().metrics_path("/metrics"), move |server| {
        server
            .dynamic(|name| name.starts_with("/game-"))
            .use_middleware(|cx| match cx.auth_as::<serde_json::Value>() {
                Some(auth) if auth["token"] == "secret" => Ok(()),
                _ => Err(ConnectError::new("not authorized")),
            })
            .on::<String>("ping", |cx, text, ack| {
                let answer = format!("{} {text}", cx.nsp());
                if let Some(ack) = ack {
                    cx.ack(ack, &answer);
                }
            });
        setup(server);
    })
}

/// Sends `ping` with ack id 1 on `nsp` and returns the ack's text.
fn ping(ws: &mut Ws, nsp: &str) -> String {
    ws_send_text(ws, &format!("42{nsp},1[\"ping\",\"hi\"]"));
    ws_text(ws, "ping ack")
}

fn metrics(addr: std::net::SocketAddr) -> String {
    let res = get(addr, "/metrics");
    assert_eq!(res.status, 200);
    res.text()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn refused_connects_create_no_namespaces_and_a_signed_in_client_still_gets_one() {
    let (handle, addr, thread) = game_server(|_| {});
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    // Twice the default limit of 1024 live children, in batches the server answers in turn.
    for batch in 0..20 {
        let names: Vec<String> = (0..100)
            .map(|n| format!("40/game-{}", batch * 100 + n) + ",")
            .collect();
        let texts: Vec<&str> = names.iter().map(String::as_str).collect();
        ws_send_texts_together(&mut ws, &texts);
        for name in &names {
            let nsp = name.trim_start_matches("40").trim_end_matches(',');
            assert_eq!(
                ws_text(&mut ws, "CONNECT_ERROR"),
                format!("44{nsp},{{\"message\":\"not authorized\"}}")
            );
        }
    }
    let (s, names) = stats(&handle);
    assert_eq!(s.connects_refused, 2000);
    assert_eq!((s.namespaces_created, s.namespaces_refused), (0, 0));
    assert!(names.is_empty(), "no namespace was created: {names:?}");
    // A client with the token gets a new child namespace, and its handlers work.
    let (mut good, sid) = connect_to(addr, "/game-new", AUTH);
    assert_eq!(sid.len(), 20);
    assert_eq!(
        ping(&mut good, "/game-new"),
        "43/game-new,1[\"/game-new hi\"]"
    );
    let (s, names) = stats(&handle);
    assert_eq!(s.namespaces_created, 1);
    assert_eq!(names, vec!["/game-new".to_owned()]);
    handle.shutdown();
    drop((ws, good));
    thread.join().expect("server thread");
}

#[test]
fn a_child_namespace_goes_with_its_last_socket_and_comes_back_on_the_next_connect() {
    let (handle, addr, thread) = game_server(|_| {});
    let (mut first, _) = connect_to(addr, "/game-1", AUTH);
    let (second, _) = connect_to(addr, "/game-1", AUTH);
    let text = metrics(addr);
    assert!(
        has_line(&text, "sioloop_sockets{nsp=\"/game-1\"} 2"),
        "{text}"
    );
    assert!(has_line(&text, "sioloop_child_namespaces 1"), "{text}");
    // One leaves the namespace, the other's connection drops.
    ws_send_text(&mut first, "41/game-1,");
    drop(second);
    let (s, names) = wait_for_stats(&handle, "the child is removed", |s, _| {
        s.namespaces_removed == 1
    });
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(s.namespaces_created, 1);
    let text = metrics(addr);
    assert!(
        !text.contains("nsp=\"/game-1\""),
        "a removed namespace has no metrics lines:\n{text}"
    );
    assert!(has_line(&text, "sioloop_child_namespaces 0"), "{text}");
    assert!(
        has_line(&text, "sioloop_namespaces_removed_total 1"),
        "{text}"
    );
    // The next client creates it again, with the same handlers.
    let (mut again, _) = connect_to(addr, "/game-1", AUTH);
    assert_eq!(ping(&mut again, "/game-1"), "43/game-1,1[\"/game-1 hi\"]");
    // The client that left can come back too, on its old connection.
    ws_send_text(&mut first, &format!("40/game-1,{AUTH}"));
    assert!(ws_text(&mut first, "CONNECT").starts_with("40/game-1,{\"sid\""));
    let (s, names) = stats(&handle);
    assert_eq!((s.namespaces_created, s.namespaces_removed), (2, 1));
    assert_eq!(names, vec!["/game-1".to_owned()]);
    assert!(has_line(
        &metrics(addr),
        "sioloop_sockets{nsp=\"/game-1\"} 2"
    ));
    handle.shutdown();
    drop((first, again));
    thread.join().expect("server thread");
}

#[test]
fn the_namespace_limit_counts_live_children_only() {
    let (handle, addr, thread) = game_server(|server| {
        server.max_dynamic_namespaces(1);
    });
    let (mut ws, _) = connect_to(addr, "/game-1", AUTH);
    ws_send_text(&mut ws, &format!("40/game-2,{AUTH}"));
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        "44/game-2,{\"message\":\"Too many namespaces\"}"
    );
    // Once /game-1 is empty (and gone), there is room for /game-2.
    ws_send_text(&mut ws, "41/game-1,");
    ws_send_text(&mut ws, &format!("40/game-2,{AUTH}"));
    assert!(ws_text(&mut ws, "CONNECT").starts_with("40/game-2,{\"sid\""));
    let (s, names) = stats(&handle);
    assert_eq!(s.namespaces_refused, 1);
    assert_eq!(names, vec!["/game-2".to_owned()]);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn empty_children_can_be_kept() {
    let (handle, addr, thread) = game_server(|server| {
        server
            .max_dynamic_namespaces(1)
            .cleanup_empty_child_namespaces(false);
    });
    let (mut ws, _) = connect_to(addr, "/game-1", AUTH);
    ws_send_text(&mut ws, "41/game-1,");
    ws_send_text(&mut ws, &format!("40/game-2,{AUTH}"));
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        "44/game-2,{\"message\":\"Too many namespaces\"}",
        "the empty /game-1 is kept and still counts"
    );
    assert!(has_line(
        &metrics(addr),
        "sioloop_sockets{nsp=\"/game-1\"} 0"
    ));
    let (s, names) = stats(&handle);
    assert_eq!((s.namespaces_created, s.namespaces_removed), (1, 0));
    assert_eq!(names, vec!["/game-1".to_owned()]);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn an_over_long_namespace_name_gets_connect_error() {
    let matched = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = matched.clone();
    let (handle, addr, thread) = start_with(config(), move |server| {
        server.max_namespace_name_len(16);
        server.dynamic(move |name| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            name.starts_with("/game-")
        });
        // A static namespace may have a longer name: the limit is for names a client asks
        // for that do not exist yet.
        server.of("/a-static-namespace-with-a-long-name");
    });
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket");
    ws_text(&mut ws, "open packet");
    let long = format!("/game-{}", "x".repeat(11)); // 17 bytes
    ws_send_text(&mut ws, &format!("40{long},"));
    assert_eq!(
        ws_text(&mut ws, "CONNECT_ERROR"),
        format!("44{long},{{\"message\":\"Namespace name too long\"}}")
    );
    let fits = "/game-xxxxxxxxxx"; // 16 bytes
    ws_send_text(&mut ws, &format!("40{fits},"));
    assert!(ws_text(&mut ws, "CONNECT").starts_with(&format!("40{fits},{{\"sid\"")));
    let (_static_ws, _) = connect_to(addr, "/a-static-namespace-with-a-long-name", "");
    let (s, _) = stats(&handle);
    assert_eq!(s.connects_refused, 1);
    assert_eq!(
        matched.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the matcher never saw the long name"
    );
    handle.shutdown();
    drop((ws, _static_ws));
    thread.join().expect("server thread");
}
