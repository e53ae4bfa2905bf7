//! The Socket.IO API means what the reference Node server's does (issue 12): `socket.to`,
//! `socket.except` and `socket.broadcast` leave the sender out while `io.to` does not;
//! `onAny` sees every event before its handler; `disconnecting` runs with the rooms,
//! `disconnect` after they are left; `io.of("admin")` is `/admin`; `ack()` answers `[]`;
//! the auth of a client that sent none is `{}`; a socket keeps one value of each type.
//! Spoken over a raw WebSocket, so every frame the client gets is checked.

#[path = "common/raw.rs"]
mod raw;
#[path = "common/sio.rs"]
mod sio;

use raw::*;
use sio::*;
use sioloop::{AnyListenerId, ServerCx};
use std::time::Duration;

/// Asks the server for an ack with id `id` and returns the next frame: the ack, if nothing
/// else was on its way to this client (what came before it arrives before it).
fn next_after_ping(ws: &mut Ws, id: u32) -> String {
    ws_send_text(ws, &format!("42{id}[\"ping\"]"));
    ws_text(ws, "the next frame")
}

/// Handlers every server here has: `ping` answers `pong`.
fn with_ping(server: &mut sioloop::Server<State>) -> &mut sioloop::Namespace<State> {
    server.of("/").on::<()>("ping", |cx, (), ack| {
        if let Some(ack) = ack {
            cx.ack(ack, "pong");
        }
    })
}

#[test]
fn socket_to_except_and_broadcast_leave_the_sender_out_and_io_to_does_not() {
    let (handle, addr, thread) = start_with(config(), |server| {
        with_ping(server)
            .on_connect(|cx| cx.join("room"))
            .on::<String>("join", |cx, room, _| cx.join(room))
            .on::<String>("to", |cx, text, _| {
                cx.to("room").emit("said", &text);
            })
            .on::<String>("except", |cx, text, _| {
                cx.except("quiet").emit("said", &text);
            })
            .on::<String>("broadcast", |cx, text, _| {
                cx.broadcast().emit("said", &text);
            })
            .on::<String>("io_to", |cx, text, _| {
                // `io.to(room)`: the whole room, the sender included.
                ServerCx::to(cx, "room").emit("said", &text);
            });
    });
    let (mut sender, _) = connect(addr);
    let (mut other, _) = connect(addr);
    let (mut quiet, _) = connect(addr);
    ws_send_text(&mut quiet, r#"42["join","quiet"]"#);
    assert_eq!(next_after_ping(&mut quiet, 1), r#"431["pong"]"#);

    ws_send_text(&mut sender, r#"42["to","a"]"#);
    assert_eq!(ws_text(&mut other, "to(room)"), r#"42["said","a"]"#);
    assert_eq!(ws_text(&mut quiet, "to(room)"), r#"42["said","a"]"#);
    assert_eq!(
        next_after_ping(&mut sender, 2),
        r#"432["pong"]"#,
        "to(room) reached the sender"
    );

    ws_send_text(&mut sender, r#"42["except","b"]"#);
    assert_eq!(ws_text(&mut other, "except"), r#"42["said","b"]"#);
    assert_eq!(
        next_after_ping(&mut quiet, 3),
        r#"433["pong"]"#,
        "except reached the room it leaves out"
    );
    assert_eq!(
        next_after_ping(&mut sender, 4),
        r#"434["pong"]"#,
        "except reached the sender"
    );

    ws_send_text(&mut sender, r#"42["broadcast","c"]"#);
    assert_eq!(ws_text(&mut other, "broadcast"), r#"42["said","c"]"#);
    assert_eq!(ws_text(&mut quiet, "broadcast"), r#"42["said","c"]"#);
    assert_eq!(
        next_after_ping(&mut sender, 5),
        r#"435["pong"]"#,
        "broadcast reached the sender"
    );

    ws_send_text(&mut sender, r#"42["io_to","d"]"#);
    for ws in [&mut sender, &mut other, &mut quiet] {
        assert_eq!(ws_text(ws, "io.to(room)"), r#"42["said","d"]"#);
    }
    handle.shutdown();
    drop((sender, other, quiet));
    thread.join().expect("server thread");
}

#[test]
fn ack_of_unit_is_empty_auth_defaults_to_an_empty_object_and_of_adds_the_slash() {
    let (handle, addr, thread) = start_with(config(), |server| {
        server.of("/admin").on_connect(|cx| cx.join("staff"));
        with_ping(server)
            .use_middleware(|cx| {
                // What the middleware saw, for the handler to tell.
                let seen = cx.auth().get().to_owned();
                cx.set_data(seen);
                Ok(())
            })
            .on::<()>("nothing", |cx, (), ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &());
                }
            })
            .on::<()>("none", |cx, (), ack| {
                if let Some(ack) = ack {
                    cx.ack(ack, &None::<u32>);
                }
            })
            .on::<()>("auth", |cx, (), ack| {
                let seen = cx.data::<String>().cloned().unwrap_or_default();
                let now = cx.auth().get().to_owned();
                let token = cx
                    .auth_as::<serde_json::Value>()
                    .map(|a| a["token"].clone());
                if let Some(ack) = ack {
                    cx.ack_args(ack, &(seen, now, token));
                }
            })
            .on::<()>("admins", |cx, (), _| {
                cx.of("admin").to("staff").emit("memo", "hi");
            });
    });
    let (mut plain, _) = connect(addr);
    ws_send_text(&mut plain, r#"421["nothing"]"#);
    assert_eq!(ws_text(&mut plain, "ack of ()"), "431[]");
    ws_send_text(&mut plain, r#"422["none"]"#);
    assert_eq!(ws_text(&mut plain, "ack of None"), "432[null]");
    ws_send_text(&mut plain, r#"423["auth"]"#);
    assert_eq!(ws_text(&mut plain, "no auth"), r#"433["{}","{}",null]"#);

    let (mut signed, _) = connect_to(addr, "/", r#"{"token":"t"}"#);
    ws_send_text(&mut signed, r#"421["auth"]"#);
    assert_eq!(
        ws_text(&mut signed, "auth"),
        r#"431["{\"token\":\"t\"}","{\"token\":\"t\"}","t"]"#
    );

    let (mut admin, _) = connect_to(addr, "/admin", "");
    ws_send_text(&mut plain, r#"42["admins"]"#);
    assert_eq!(
        ws_text(&mut admin, "of(\"admin\")"),
        r#"42/admin,["memo","hi"]"#
    );

    // fetch_sockets tells the same auth; `Handle::emit` takes "admin" for `/admin` too.
    let (tx, rx) = std::sync::mpsc::channel();
    handle.run(move |cx| {
        let mut auths: Vec<String> = cx
            .of("/")
            .fetch_sockets()
            .into_iter()
            .map(|info| info.auth.to_string())
            .collect();
        auths.sort();
        let _ = tx.send(auths);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5))
            .expect("fetch_sockets"),
        [r#"{"token":"t"}"#, "{}"]
    );
    handle.emit("admin", None, "memo", "from a thread");
    assert_eq!(
        ws_text(&mut admin, "Handle::emit"),
        r#"42/admin,["memo","from a thread"]"#
    );
    handle.shutdown();
    drop((plain, signed, admin));
    thread.join().expect("server thread");
}

#[derive(Clone, Debug, PartialEq)]
struct Name(String);

#[test]
fn a_socket_keeps_one_value_of_each_type() {
    let (handle, addr, thread) = start_with(config(), |server| {
        with_ping(server)
            .use_middleware(|cx| {
                cx.set_data(Name("ann".into()));
                Ok(())
            })
            .on_connect(|cx| {
                cx.set_data(7u32);
                cx.set_data(8u32); // replaces the 7, leaves the name
            })
            .on::<()>("read", |cx, (), ack| {
                let name = cx.data_ref::<Name>().map(|n| n.0.clone());
                let count = cx.data::<u32>().copied();
                let taken = cx.take_data::<u32>();
                let after = cx.data::<u32>().copied();
                let missing = cx.data::<i64>().is_some();
                if let Some(ack) = ack {
                    cx.ack_args(ack, &(name, count, taken, after, missing));
                }
            });
    });
    let (mut ws, _) = connect(addr);
    ws_send_text(&mut ws, r#"421["read"]"#);
    assert_eq!(ws_text(&mut ws, "data"), r#"431["ann",8,8,null,false]"#);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn on_any_sees_every_event_before_its_handler_and_on_unhandled_the_rest() {
    let (handle, addr, thread) = start_with(config(), |server| {
        with_ping(server)
            .on_any(|cx, event| {
                let name = event.name().to_owned();
                cx.emit("any", &name);
            })
            .prepend_any(|cx, event| {
                let name = event.name().to_owned();
                cx.emit("first", &name);
            })
            .on_unhandled(|cx, event, ack| {
                let name = event.name().to_owned();
                if let Some(ack) = ack {
                    cx.ack(ack, &format!("unhandled {name}"));
                }
            })
            .on::<()>("watch", |cx, (), ack| {
                // A listener of this socket alone, removable by its id.
                let id = cx.on_any(|cx, event| {
                    let name = event.name().to_owned();
                    cx.emit("watched", &name);
                });
                cx.set_data(id);
                if let Some(ack) = ack {
                    cx.ack(ack, &());
                }
            })
            .on::<()>("unwatch", |cx, (), ack| {
                if let Some(id) = cx.take_data::<AnyListenerId>() {
                    cx.off_any(id);
                }
                if let Some(ack) = ack {
                    cx.ack(ack, &());
                }
            })
            .on::<()>("outgoing", |cx, (), _| {
                // It emits to its own socket: that emit is outgoing too, but a listener is
                // not run again inside itself.
                cx.on_any_outgoing(|cx, event| {
                    let args = event.args().unwrap_or_default();
                    let seen = format!("{}:{}", event.name(), serde_json::json!(args));
                    cx.emit("out", &seen);
                });
            })
            .on::<()>("quiet", |cx, (), _| cx.off_any_outgoing_all());
    });
    let (mut ws, _) = connect(addr);
    // Handled: the listeners (the prepended one first), then the handler's ack.
    ws_send_text(&mut ws, r#"421["ping"]"#);
    assert_eq!(ws_text(&mut ws, "prepended"), r#"42["first","ping"]"#);
    assert_eq!(ws_text(&mut ws, "on_any"), r#"42["any","ping"]"#);
    assert_eq!(ws_text(&mut ws, "handler"), r#"431["pong"]"#);
    // Unhandled: the listeners, then the fallback.
    ws_send_text(&mut ws, r#"422["nobody"]"#);
    assert_eq!(ws_text(&mut ws, "prepended"), r#"42["first","nobody"]"#);
    assert_eq!(ws_text(&mut ws, "on_any"), r#"42["any","nobody"]"#);
    assert_eq!(ws_text(&mut ws, "fallback"), r#"432["unhandled nobody"]"#);

    // A socket's own listener runs from the next event on, until removed.
    ws_send_text(&mut ws, r#"423["watch"]"#);
    for _ in 0..2 {
        ws_text(&mut ws, "namespace listeners");
    }
    assert_eq!(ws_text(&mut ws, "watch ack"), "433[]");
    ws_send_text(&mut ws, r#"424["ping"]"#);
    for _ in 0..2 {
        ws_text(&mut ws, "namespace listeners");
    }
    assert_eq!(
        ws_text(&mut ws, "socket listener"),
        r#"42["watched","ping"]"#
    );
    assert_eq!(ws_text(&mut ws, "handler"), r#"434["pong"]"#);
    ws_send_text(&mut ws, r#"425["unwatch"]"#);
    for _ in 0..3 {
        ws_text(&mut ws, "listeners");
    }
    assert_eq!(ws_text(&mut ws, "unwatch ack"), "435[]");
    ws_send_text(&mut ws, r#"426["ping"]"#);
    for _ in 0..2 {
        ws_text(&mut ws, "namespace listeners");
    }
    assert_eq!(
        ws_text(&mut ws, "handler, no socket listener"),
        r#"436["pong"]"#
    );

    // Outgoing: every event emitted to the socket, not acks; once removed, none.
    ws_send_text(&mut ws, r#"42["outgoing"]"#);
    assert_eq!(ws_text(&mut ws, "prepended"), r#"42["first","outgoing"]"#);
    assert_eq!(ws_text(&mut ws, "on_any"), r#"42["any","outgoing"]"#);
    ws_send_text(&mut ws, r#"427["ping"]"#);
    assert_eq!(ws_text(&mut ws, "prepended"), r#"42["first","ping"]"#);
    assert_eq!(ws_text(&mut ws, "seen"), r#"42["out","first:[\"ping\"]"]"#);
    assert_eq!(ws_text(&mut ws, "on_any"), r#"42["any","ping"]"#);
    assert_eq!(ws_text(&mut ws, "seen"), r#"42["out","any:[\"ping\"]"]"#);
    assert_eq!(ws_text(&mut ws, "handler"), r#"437["pong"]"#);
    ws_send_text(&mut ws, r#"42["quiet"]"#);
    for _ in 0..4 {
        ws_text(&mut ws, "listeners, still seen going out");
    }
    ws_send_text(&mut ws, r#"428["ping"]"#);
    assert_eq!(ws_text(&mut ws, "prepended"), r#"42["first","ping"]"#);
    assert_eq!(ws_text(&mut ws, "on_any"), r#"42["any","ping"]"#);
    assert_eq!(ws_text(&mut ws, "handler"), r#"438["pong"]"#);
    handle.shutdown();
    drop(ws);
    thread.join().expect("server thread");
}

#[test]
fn disconnecting_sees_the_rooms_and_disconnect_runs_after_they_are_left() {
    let (handle, addr, thread) = start_with(config(), |server| {
        with_ping(server)
            .on_connect(|cx| {
                cx.join("room");
                cx.set_data(Name(format!("user {}", cx.id().len())));
            })
            .on_disconnecting(|cx, reason| {
                let rooms = cx.rooms().len();
                cx.state()
                    .log
                    .push(format!("disconnecting {reason} {rooms} rooms"));
                cx.to("room").emit("leaving", &rooms);
            })
            .on_disconnect(|cx, reason| {
                let rooms = cx.rooms().len();
                let name = cx.data_ref::<Name>().map(|n| n.0.clone());
                cx.state()
                    .log
                    .push(format!("disconnect {reason} {rooms} rooms {name:?}"));
                // The whole room: the socket is no longer in it.
                cx.of("/").to("room").emit("left", &rooms);
            });
    });
    let (mut going, _) = connect(addr);
    let (mut staying, _) = connect(addr);
    ws_send_text(&mut going, "41");
    assert_eq!(ws_text(&mut staying, "disconnecting"), r#"42["leaving",2]"#);
    assert_eq!(ws_text(&mut staying, "disconnect"), r#"42["left",0]"#);
    assert_eq!(next_after_ping(&mut staying, 1), r#"431["pong"]"#);
    ws_set_timeout(&mut going, Duration::from_millis(300));
    assert!(
        ws_next(&mut going).is_err(),
        "the socket that left got nothing"
    );
    handle.shutdown();
    drop((going, staying));
    let state = thread.join().expect("server thread");
    assert_eq!(
        &state.log[..2],
        [
            "disconnecting client namespace disconnect 2 rooms".to_owned(),
            "disconnect client namespace disconnect 0 rooms Some(\"user 20\")".to_owned(),
        ]
    );
}
