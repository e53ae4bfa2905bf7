//! A Socket.IO server on the in-memory network (`Server::in_memory`, fake clock) and raw
//! WebSocket clients for it: for tests that speak the wire protocol deterministically.
//! Used with `#[path = "common/raw.rs"] mod raw;` beside it.
#![allow(dead_code)]

use crate::raw::{self, masked_text};
use sioloop::Server;
use sioloop::engine::{ClientId, Config, MemoryNet};
use std::net::SocketAddr;

/// A frame the server sent: text or binary.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Server frames in `out`, text or binary.
pub fn frames(out: &[u8]) -> Vec<Frame> {
    raw::server_frames(out)
        .into_iter()
        .map(|(opcode, payload)| match opcode {
            1 => Frame::Text(String::from_utf8(payload).expect("utf-8")),
            _ => Frame::Binary(payload),
        })
        .collect()
}

/// The text frames among `frames`.
pub fn texts(frames: &[Frame]) -> Vec<&str> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Text(t) => Some(t.as_str()),
            Frame::Binary(_) => None,
        })
        .collect()
}

pub struct Harness<S: 'static> {
    pub server: Server<S>,
    pub net: MemoryNet,
}

impl<S: 'static> Harness<S> {
    pub fn new(config: Config, state: S, setup: impl FnOnce(&mut Server<S>)) -> Harness<S> {
        let (mut server, net) = Server::in_memory(config, state);
        setup(&mut server);
        Harness { server, net }
    }

    pub fn turns(&mut self, n: usize) {
        for _ in 0..n {
            assert!(self.server.turn().expect("turn"));
        }
    }

    /// A WebSocket session from `peer` with the Engine.IO handshake done; what the server
    /// sent after the upgrade (the open packet) is read and dropped.
    pub fn websocket_from(&mut self, peer: SocketAddr) -> ClientId {
        let client = self.net.connect_from(peer);
        self.net.send(client, raw::WS_UPGRADE_REQUEST);
        self.turns(2);
        let out = self.net.take_output(client);
        assert!(out.starts_with(b"HTTP/1.1 101"), "upgrade answered");
        client
    }

    /// A WebSocket client from `peer`, connected to `/`.
    pub fn client_from(&mut self, peer: SocketAddr) -> ClientId {
        let client = self.websocket_from(peer);
        let connected = self.exchange(client, &["40"]);
        assert!(
            texts(&connected).iter().any(|t| t.starts_with("40{")),
            "CONNECT answered: {connected:?}"
        );
        client
    }

    pub fn client(&mut self) -> ClientId {
        self.client_from("127.0.0.1:40000".parse().expect("address"))
    }

    /// Sends text packets, then what the server sent back.
    pub fn exchange(&mut self, client: ClientId, packets: &[&str]) -> Vec<Frame> {
        for packet in packets {
            self.net.send(client, &masked_text(packet));
        }
        self.turns(3);
        self.output(client)
    }

    pub fn output(&mut self, client: ClientId) -> Vec<Frame> {
        frames(&self.net.take_output(client))
    }
}
