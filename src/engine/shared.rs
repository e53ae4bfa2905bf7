//! Messages encoded and framed once for many sessions: what a broadcast hands the engine.

use crate::protocol::engineio::packet::{Message, Packet};
use crate::protocol::ws::{self, FrameKind};
use std::rc::Rc;

/// Engine.IO messages on their way to many sessions (a broadcast), encoded once.
///
/// The WebSocket frames of all the messages are built on first use into one shared buffer,
/// and every WebSocket recipient that is keeping up gets a reference to that same buffer:
/// no copy and no allocation per recipient. Recipients on long-polling, or with packets
/// already waiting in their session, get copies of the messages through the session's queue
/// (so their order is kept).
///
/// ```
/// use sioloop::protocol::engineio::packet::Message;
/// use sioloop::engine::SharedMessages;
///
/// let mut shared = SharedMessages::new(vec![Message::Text("2[\"tick\",1]".into())]);
/// assert_eq!(shared.messages().len(), 1);
/// assert_eq!(shared.ws_frame_bytes(), 2 + 12); // one unmasked text frame: 42["tick",1]
/// ```
#[derive(Debug)]
pub struct SharedMessages {
    messages: Vec<Message>,
    frames: Option<Rc<[u8]>>,
}

impl SharedMessages {
    /// Messages to send, in order (a Socket.IO packet and then its attachments).
    pub fn new(messages: Vec<Message>) -> SharedMessages {
        SharedMessages {
            messages,
            frames: None,
        }
    }

    /// The messages.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The messages, without the frames built from them (a broadcast keeps them for
    /// connection state recovery once every recipient has its copy or its reference).
    pub(crate) fn into_messages(self) -> Vec<Message> {
        self.messages
    }

    /// The size of the messages as WebSocket frames.
    pub fn ws_frame_bytes(&mut self) -> usize {
        self.ws_frames().len()
    }

    /// The messages as consecutive WebSocket frames, built on the first call.
    pub(crate) fn ws_frames(&mut self) -> Rc<[u8]> {
        let messages = &self.messages;
        self.frames
            .get_or_insert_with(|| {
                let mut out = Vec::new();
                for m in messages {
                    write_message_frame(&mut out, m);
                }
                Rc::from(out)
            })
            .clone()
    }
}

/// Appends one Engine.IO message as a WebSocket frame: binary data as it is, text after its
/// `4` packet type, both straight from the message.
pub(crate) fn write_message_frame(out: &mut Vec<u8>, message: &Message) {
    match message {
        Message::Binary(data) => ws::write_frame(out, FrameKind::Binary, data),
        Message::Text(text) => {
            ws::write_frame_parts(out, FrameKind::Text, &[b"4", text.as_bytes()])
        }
    }
}

/// Appends one Engine.IO packet as a WebSocket frame of a session on protocol 3 or 4: a
/// binary message of protocol 3 starts with the type byte `4`.
pub(crate) fn write_packet_frame_for(out: &mut Vec<u8>, packet: &Packet, v3: bool) {
    match packet {
        Packet::Message(Message::Binary(data)) if v3 => {
            ws::write_frame_parts(out, FrameKind::Binary, &[&[4], data])
        }
        _ => write_packet_frame(out, packet),
    }
}

/// Appends one Engine.IO packet as a WebSocket frame.
pub(crate) fn write_packet_frame(out: &mut Vec<u8>, packet: &Packet) {
    match packet {
        Packet::Message(m) => write_message_frame(out, m),
        // Control packets (open, ping, close, ...) are rare and short.
        other => {
            let mut payload = Vec::new();
            other.encode_ws(&mut payload);
            ws::write_frame(out, FrameKind::Text, &payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared frames are exactly what the per-session path writes for the same packets.
    #[test]
    fn shared_frames_match_per_packet_frames() {
        let messages = vec![
            Message::Text("51-[\"f\",{\"_placeholder\":true,\"num\":0}]".into()),
            Message::Binary(vec![7; 300]),
        ];
        let mut expected = Vec::new();
        for m in &messages {
            let mut payload = Vec::new();
            let packet = Packet::Message(m.clone());
            packet.encode_ws(&mut payload);
            let kind = if packet.is_binary() {
                FrameKind::Binary
            } else {
                FrameKind::Text
            };
            ws::write_frame(&mut expected, kind, &payload);
        }
        let mut shared = SharedMessages::new(messages);
        assert_eq!(&*shared.ws_frames(), &expected[..]);
        // Built once: the second call hands out the same buffer.
        assert!(Rc::ptr_eq(&shared.ws_frames(), &shared.ws_frames()));
    }
}
