//! Acknowledgements the server waits for, when a socket goes: its own pending acks fail
//! with `Disconnected` at once, a broadcast's group stops waiting for it, and every other
//! socket's acks stay pending and still resolve with their answers.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::Handle;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The server's log, read on the loop thread.
fn log(handle: &Handle<State>) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    handle.run(move |cx| {
        let _ = tx.send(cx.state().log.clone());
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("log")
}

/// Polls the log until it has `n` lines, or fails after 5 s.
fn wait_for_log(handle: &Handle<State>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = log(handle);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {n} lines: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sockets_pending_acks_fail_when_it_goes_and_the_others_still_resolve() {
    let (handle, addr, thread) = start_with(config(), |server| {
        // `ask` makes the server ask the asking socket a question it must ack; the
        // answer (or the failure) goes to the log under the name the client gave.
        server.of("/").on::<String>("ask", |cx, name, _| {
            let question = name.clone();
            cx.emit_with_ack(
                "question",
                &question,
                Duration::from_secs(30),
                move |cx, answer| {
                    let line = match answer {
                        Ok(payload) => format!("{name}: {}", payload.raw().get()),
                        Err(e) => format!("{name}: {e}"),
                    };
                    cx.state().log.push(line);
                },
            );
        });
        // `poll` asks every socket at once and logs what the group got.
        server.of("/").on::<()>("poll", |cx, (), _| {
            cx.broadcast()
                .timeout(Duration::from_secs(30))
                .emit_with_ack("vote", &(), |cx, results| {
                    let answers: Vec<String> = results
                        .responses
                        .iter()
                        .map(|(_, p)| p.raw().get().to_owned())
                        .collect();
                    let line = format!("poll: {answers:?} timed out {}", results.timed_out);
                    cx.state().log.push(line);
                });
        });
    });
    let (mut leaving, _) = connect(addr);
    let (mut staying, _) = connect(addr);
    let (mut voter, _) = connect(addr);
    // Two questions to the socket that will leave, one to the one that stays.
    ws_send_text(&mut leaving, "42[\"ask\",\"a1\"]");
    assert_eq!(
        ws_text(&mut leaving, "question"),
        "420[\"question\",\"a1\"]"
    );
    ws_send_text(&mut leaving, "42[\"ask\",\"a2\"]");
    assert_eq!(
        ws_text(&mut leaving, "question"),
        "421[\"question\",\"a2\"]"
    );
    ws_send_text(&mut staying, "42[\"ask\",\"b\"]");
    assert_eq!(ws_text(&mut staying, "question"), "420[\"question\",\"b\"]");
    // The voter asks everyone else to vote: the leaving and the staying socket.
    ws_send_text(&mut voter, "42[\"poll\"]");
    assert_eq!(ws_text(&mut leaving, "vote"), "422[\"vote\",null]");
    assert_eq!(ws_text(&mut staying, "vote"), "421[\"vote\",null]");

    // The leaving socket goes without answering: its two acks fail at once.
    ws_send_text(&mut leaving, "41");
    let lines = wait_for_log(&handle, 2);
    assert_eq!(
        lines,
        vec![
            "a1: socket has been disconnected".to_owned(),
            "a2: socket has been disconnected".to_owned(),
        ],
        "the other socket's ack and the poll are still pending"
    );

    // The staying socket answers both, later: its ack resolves, and the poll resolves with
    // its answer alone (the socket that left is not waited for, and nothing timed out).
    ws_send_text(&mut staying, "430[\"forty-two\"]");
    ws_send_text(&mut staying, "431[\"yes\"]");
    let lines = wait_for_log(&handle, 4);
    assert_eq!(
        lines[2..],
        [
            "b: [\"forty-two\"]".to_owned(),
            "poll: [\"[\\\"yes\\\"]\"] timed out false".to_owned(),
        ]
    );
    handle.shutdown();
    drop((leaving, staying, voter));
    thread.join().expect("server thread");
}
