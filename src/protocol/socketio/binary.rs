//! Reassembly of binary packets: a `BINARY_EVENT` or `BINARY_ACK` text message is followed
//! by its attachments, one Engine.IO binary message each, in placeholder order.
//!
//! [`Assembler`] is a push parser for the messages of one connection, in arrival order. It
//! holds at most one packet and its attachments so far; a text message while attachments are
//! awaited, or a binary message while none are, is an error (the reference decoder throws and
//! the server closes the connection). Every error is final and leaves the assembler empty.

use crate::protocol::socketio::packet::{DecodeError, Limits, Packet, PacketParts};
use crate::protocol::socketio::value::Payload;

/// A packet with all of its attachments.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Complete {
    /// The packet, its data still holding the placeholders.
    pub packet: Packet,
    /// The attachments in order: exactly `packet.attachments` of them (none for a packet that
    /// is not `BINARY_*`).
    pub attachments: Vec<Vec<u8>>,
}

impl Complete {
    /// Splits off the data with its attachments as a [`Payload`], leaving `packet.data`
    /// empty. `None` if the packet has no data (CONNECT without auth, DISCONNECT).
    ///
    /// ```
    /// use sioloop::protocol::socketio::{Assembler, Limits};
    /// let mut assembler = Assembler::new(Limits::default());
    /// let done = assembler.push_text(r#"2["hi",1]"#)?.expect("not binary, so complete");
    /// let (packet, payload) = done.into_parts();
    /// assert!(packet.data.is_none());
    /// assert_eq!(payload.expect("an event has data").raw().get(), r#"["hi",1]"#);
    /// # Ok::<(), sioloop::protocol::socketio::DecodeError>(())
    /// ```
    pub fn into_parts(self) -> (Packet, Option<Payload>) {
        let mut packet = self.packet;
        let payload = packet
            .data
            .take()
            .map(|raw| Payload::from_raw(raw, self.attachments));
        (packet, payload)
    }
}

/// Turns the Engine.IO messages of one connection into complete Socket.IO packets.
///
/// ```
/// use sioloop::protocol::socketio::{Assembler, DecodeError, Limits, PacketType};
///
/// let mut assembler = Assembler::new(Limits::default());
/// let text = r#"52-["pair",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
/// assert_eq!(assembler.push_text(text)?, None);
/// assert!(assembler.is_waiting());
/// assert_eq!(assembler.push_binary(vec![1])?, None);
/// let done = assembler.push_binary(vec![2])?.expect("second of two");
/// assert_eq!(done.packet.kind, PacketType::BinaryEvent);
/// assert_eq!(done.attachments, vec![vec![1], vec![2]]);
///
/// // A binary message out of turn is an error.
/// assert_eq!(assembler.push_binary(vec![3]), Err(DecodeError::UnexpectedBinary));
/// # Ok::<(), DecodeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Assembler {
    limits: Limits,
    /// The binary packet being reassembled, with the attachments received so far (fewer than
    /// `packet.attachments`). Boxed: every client has an assembler and almost all of them
    /// wait for nothing, so the idle one is a pointer, not a packet.
    pending: Option<Box<Complete>>,
}

impl Assembler {
    /// An empty assembler that decodes with `limits`.
    pub fn new(limits: Limits) -> Self {
        Assembler {
            limits,
            pending: None,
        }
    }

    /// The limits it decodes with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes a text Engine.IO message: a packet that is complete at once, or `None` when it
    /// is a binary packet that waits for its attachments.
    ///
    /// Errors: [`DecodeError::UnexpectedText`] while a binary packet still waits for
    /// attachments, or any error of [`Packet::decode`]. The assembler is empty afterwards.
    pub fn push_text(&mut self, text: &str) -> Result<Option<Complete>, DecodeError> {
        Ok(self.push_text_parts(text)?.map(|parts| Complete {
            packet: parts.to_packet(),
            attachments: Vec::new(),
        }))
    }

    /// [`Assembler::push_text`] without copying a packet that is complete at once: its
    /// namespace and data stay borrowed from `text`. Only a binary packet, which waits for
    /// its attachments, is copied. Same errors, same state afterwards.
    pub(crate) fn push_text_parts<'a>(
        &mut self,
        text: &'a str,
    ) -> Result<Option<PacketParts<'a>>, DecodeError> {
        if self.is_waiting() {
            self.reset();
            return Err(DecodeError::UnexpectedText);
        }
        let parts = PacketParts::decode(text, &self.limits)?;
        if parts.kind.is_binary() && parts.attachments > 0 {
            // No capacity up front: the count is only a promise (and the limit may be large).
            self.pending = Some(Box::new(Complete {
                packet: parts.to_packet(),
                attachments: Vec::new(),
            }));
            Ok(None)
        } else {
            Ok(Some(parts))
        }
    }

    /// Takes a binary Engine.IO message: the next attachment of the waiting packet. Returns
    /// the packet once its last attachment has arrived, `None` before that.
    ///
    /// Errors: [`DecodeError::UnexpectedBinary`] if no packet waits for attachments.
    pub fn push_binary(&mut self, data: Vec<u8>) -> Result<Option<Complete>, DecodeError> {
        let Some(mut pending) = self.pending.take() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        if pending.attachments.len() + 1 >= pending.packet.attachments {
            pending.attachments.push(data);
            Ok(Some(*pending))
        } else {
            pending.attachments.push(data);
            self.pending = Some(pending);
            Ok(None)
        }
    }

    /// Whether a binary packet waits for attachments (so the next message must be binary).
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// The bytes held for the packet that waits for attachments: its data and the
    /// attachments so far (0 when none waits). A server counts them against its memory
    /// budget, since a client decides how much it sends before the packet completes.
    /// Computed when asked (at most `max_attachments` lengths to add) rather than kept:
    /// every client has an assembler, and almost none holds anything.
    pub fn buffered_bytes(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| {
            let data = p.packet.data.as_ref().map_or(0, |d| d.get().len());
            data + p.attachments.iter().map(Vec::len).sum::<usize>()
        })
    }

    /// Drops a packet waiting for attachments, if any.
    pub fn reset(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::packet::PacketType;

    fn assembler() -> Assembler {
        Assembler::new(Limits::default())
    }

    #[test]
    fn text_packets_complete_at_once() {
        let mut a = assembler();
        for text in ["0", "1/a,", r#"2["a"]"#, "31[]", r#"4{"message":"x"}"#] {
            let done = a.push_text(text).unwrap().expect("complete");
            assert!(done.attachments.is_empty());
            assert!(!a.is_waiting());
        }
    }

    #[test]
    fn binary_event_and_ack_reassemble_in_order() {
        let mut a = assembler();
        let text = r#"53-/chat,9["up",{"_placeholder":true,"num":2},[{"_placeholder":true,"num":0}],{"k":{"_placeholder":true,"num":1}}]"#;
        assert_eq!(a.push_text(text), Ok(None));
        assert!(a.is_waiting());
        assert_eq!(a.push_binary(vec![0]), Ok(None));
        assert_eq!(a.push_binary(vec![]), Ok(None));
        assert!(a.is_waiting());
        let done = a.push_binary(vec![2, 2]).unwrap().expect("complete");
        assert!(!a.is_waiting());
        assert_eq!(done.packet.kind, PacketType::BinaryEvent);
        assert_eq!(done.packet.nsp, "/chat");
        assert_eq!(done.packet.id, Some(9));
        assert_eq!(done.attachments, vec![vec![0], vec![], vec![2, 2]]);
        let value = Payload::from_raw(done.packet.data.unwrap(), done.attachments)
            .to_value()
            .unwrap();
        assert_eq!(value, serde_json::json!(["up", [2, 2], [[0]], {"k": []}]));

        let done = {
            assert_eq!(
                a.push_text(r#"61-4[{"_placeholder":true,"num":0}]"#),
                Ok(None)
            );
            a.push_binary(vec![7]).unwrap().expect("complete")
        };
        assert_eq!(
            (done.packet.kind, done.packet.id),
            (PacketType::BinaryAck, Some(4))
        );
        assert_eq!(done.attachments, vec![vec![7]]);
    }

    #[test]
    fn out_of_turn_messages_are_errors_and_reset() {
        let mut a = assembler();
        assert_eq!(a.push_binary(vec![1]), Err(DecodeError::UnexpectedBinary));
        assert_eq!(a.push_text(r#"52-["a"]"#), Ok(None));
        assert_eq!(a.push_binary(vec![1]), Ok(None));
        // Text before the second attachment.
        assert_eq!(a.push_text(r#"2["b"]"#), Err(DecodeError::UnexpectedText));
        assert!(!a.is_waiting());
        // The assembler is empty again: the late attachment is now out of turn, and a text
        // packet decodes.
        assert_eq!(a.push_binary(vec![2]), Err(DecodeError::UnexpectedBinary));
        assert!(a.push_text(r#"2["b"]"#).unwrap().is_some());
        // One attachment too many.
        assert_eq!(a.push_text(r#"51-["a"]"#), Ok(None));
        assert!(a.push_binary(vec![1]).unwrap().is_some());
        assert_eq!(a.push_binary(vec![1]), Err(DecodeError::UnexpectedBinary));
    }

    #[test]
    fn buffered_bytes_follow_the_waiting_packet() {
        let mut a = assembler();
        assert_eq!(a.buffered_bytes(), 0);
        let text = r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let data_len = text.len() - "52-".len();
        assert_eq!(a.push_text(text), Ok(None));
        assert_eq!(a.buffered_bytes(), data_len);
        assert_eq!(a.push_binary(vec![0; 100]), Ok(None));
        assert_eq!(a.buffered_bytes(), data_len + 100);
        assert!(a.push_binary(vec![0; 50]).unwrap().is_some());
        assert_eq!(a.buffered_bytes(), 0, "complete: nothing held");
        // Dropped by an error, or by a reset.
        assert_eq!(a.push_text(text), Ok(None));
        assert_eq!(a.push_binary(vec![0; 100]), Ok(None));
        assert_eq!(a.push_text("2[\"x\"]"), Err(DecodeError::UnexpectedText));
        assert_eq!(a.buffered_bytes(), 0);
        assert_eq!(a.push_text(text), Ok(None));
        a.reset();
        assert_eq!(a.buffered_bytes(), 0);
    }

    #[test]
    fn decode_errors_pass_through() {
        let mut a = assembler();
        assert_eq!(a.push_text(""), Err(DecodeError::Empty));
        assert_eq!(
            a.push_text(r#"511-["a"]"#),
            Err(DecodeError::TooManyAttachments)
        );
        assert_eq!(
            a.push_text(r#"51-["a",{"_placeholder":true,"num":1}]"#),
            Err(DecodeError::InvalidPlaceholder)
        );
        assert!(!a.is_waiting());
        let mut small = Assembler::new(Limits { max_attachments: 1 });
        assert_eq!(small.limits().max_attachments, 1);
        assert_eq!(
            small.push_text(r#"52-["a"]"#),
            Err(DecodeError::TooManyAttachments)
        );
        assert_eq!(small.push_text(r#"51-["a"]"#), Ok(None));
        small.reset();
        assert!(!small.is_waiting());
    }

    #[test]
    fn into_parts_moves_data_and_attachments() {
        let mut a = assembler();
        a.push_text(r#"51-["a",{"_placeholder":true,"num":0}]"#)
            .unwrap();
        let (packet, payload) = a.push_binary(vec![5]).unwrap().unwrap().into_parts();
        assert!(packet.data.is_none());
        assert_eq!(packet.attachments, 1);
        let payload = payload.unwrap();
        assert_eq!(payload.attachments(), &[vec![5]]);
        let (_, bytes): (String, serde_bytes::ByteBuf) = payload.deserialize().unwrap();
        assert_eq!(bytes.into_vec(), vec![5]);

        let done = a.push_text("0").unwrap().unwrap();
        assert!(done.into_parts().1.is_none());
    }
}
