//! Event arguments in and out: what a handler receives, and how emitted data becomes a
//! packet (encoded once, binary parts split off as attachments).

use crate::socketio::packet::{PacketType, encode_head};
use crate::socketio::value::{ArgsError, Payload, to_json_with_attachments};
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::marker::PhantomData;

/// An event received from a client: its name and its arguments, with binary attachments.
#[derive(Debug)]
pub struct Event {
    name: String,
    /// The whole data array as received (`["name", arg1, ...]`), attachments included.
    payload: Payload,
}

impl Event {
    pub(crate) fn new(name: String, payload: Payload) -> Event {
        Event { name, payload }
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole data array exactly as received (`["name",arg1,...]`), with its
    /// attachments: a relay can forward it without parsing the arguments.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The arguments (without the event name) as JSON values, binary attachments turned
    /// into arrays of bytes.
    pub fn args(&self) -> Result<Vec<serde_json::Value>, ArgsError> {
        match self.payload.to_value()? {
            serde_json::Value::Array(mut items) if !items.is_empty() => {
                items.remove(0);
                Ok(items)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The arguments as `T`: one argument deserializes into `T` directly, none as `null`
    /// (so `()` or `Option` work), several as an array (so a tuple works). Binary
    /// attachments go straight into byte fields (`serde_bytes::ByteBuf`, `bytes::Bytes`).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        let count = serde_json::from_str::<Vec<&RawValue>>(self.payload.raw().get())
            .map_err(ArgsError::from)?
            .len();
        match count {
            0 | 1 => serde_json::from_str("null").map_err(ArgsError::from),
            2 => Ok(self.payload.deserialize::<SecondItem<T>>()?.0),
            _ => Ok(self.payload.deserialize::<AfterFirst<T>>()?.0),
        }
    }
}

/// The second item of a sequence (the only argument after the event name).
struct SecondItem<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SecondItem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = SecondItem<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                seq.next_element::<IgnoredAny>()?;
                let item = seq
                    .next_element::<T>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SecondItem(item))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// Every item after the first, as one sequence (the arguments after the event name).
struct AfterFirst<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for AfterFirst<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = AfterFirst<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                seq.next_element::<IgnoredAny>()?;
                T::deserialize(SeqAccessDeserializer::new(seq)).map(AfterFirst)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// An acknowledgement the client asked for. Answer it with `SocketCx::ack`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Ack {
    pub(crate) socket: super::SocketKey,
    pub(crate) id: u64,
}

/// Arguments serialized once: the JSON items (comma-separated, without brackets) and the
/// binary attachments.
#[derive(Clone, Debug, Default)]
pub(crate) struct EncodedArgs {
    items: String,
    attachments: Vec<Vec<u8>>,
}

impl EncodedArgs {
    /// `data` as one argument.
    pub(crate) fn one<T: Serialize + ?Sized>(data: &T) -> Result<EncodedArgs, ArgsError> {
        let (items, attachments) = to_json_with_attachments(data)?;
        Ok(EncodedArgs { items, attachments })
    }

    /// `data` as several arguments: a JSON array's items each become one (a tuple gives
    /// several arguments), `null` gives none, anything else is one argument.
    pub(crate) fn many<T: Serialize + ?Sized>(data: &T) -> Result<EncodedArgs, ArgsError> {
        let (json, attachments) = to_json_with_attachments(data)?;
        let items = if json == "null" {
            String::new()
        } else if let Some(inner) = json.strip_prefix('[').and_then(|j| j.strip_suffix(']')) {
            inner.to_owned()
        } else {
            json
        };
        Ok(EncodedArgs { items, attachments })
    }

    /// The arguments exactly as a received event carried them (name stripped): for relays.
    pub(crate) fn from_event(event: &Event) -> Result<EncodedArgs, ArgsError> {
        EncodedArgs::from_payload(&event.payload, 1)
    }

    /// The items of a received array payload (an event's data or an ack's), after the first
    /// `skip`, unchanged: the placeholders keep their numbers, so the attachments go along
    /// as they are.
    pub(crate) fn from_payload(payload: &Payload, skip: usize) -> Result<EncodedArgs, ArgsError> {
        let raw = payload.raw().get();
        let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(ArgsError::from)?;
        // The items are slices of `raw`: the text from the first kept item to the end of the
        // last is the kept items with their separators, copied once.
        let kept = match (items.get(skip), items.last()) {
            (Some(first), Some(last)) => {
                let start = first.get().as_ptr() as usize - raw.as_ptr() as usize;
                let end = last.get().as_ptr() as usize - raw.as_ptr() as usize + last.get().len();
                raw.get(start..end).unwrap_or_default().to_owned()
            }
            _ => String::new(),
        };
        Ok(EncodedArgs {
            items: kept,
            attachments: payload.attachments().to_vec(),
        })
    }

    pub(crate) fn attachments(&self) -> &[Vec<u8>] {
        &self.attachments
    }

    /// The text of an EVENT packet for `nsp` carrying `event` and these arguments.
    pub(crate) fn event_packet(&self, nsp: &str, event: &str, ack_id: Option<u64>) -> String {
        let name = serde_json::to_string(event).unwrap_or_else(|_| "\"\"".into());
        let data: &[&str] = if self.items.is_empty() {
            &["[", &name, "]"]
        } else {
            &["[", &name, ",", &self.items, "]"]
        };
        self.packet(PacketType::Event, nsp, ack_id, data)
    }

    /// The text of an ACK packet answering `ack_id` with these arguments.
    pub(crate) fn ack_packet(&self, nsp: &str, ack_id: u64) -> String {
        self.packet(PacketType::Ack, nsp, Some(ack_id), &["[", &self.items, "]"])
    }

    fn packet(&self, kind: PacketType, nsp: &str, id: Option<u64>, data: &[&str]) -> String {
        let binary = !self.attachments.is_empty();
        let kind = match (kind, binary) {
            (PacketType::Event, true) => PacketType::BinaryEvent,
            (PacketType::Ack, true) => PacketType::BinaryAck,
            (k, _) => k,
        };
        encode_packet(kind, nsp, id, data, self.attachments.len())
    }
}

/// Encodes a packet whose data is JSON text this crate produced (so it is valid), given as
/// pieces written one after the other into the packet: no intermediate string, and no
/// `Packet` built only to be encoded (an echo server does this for every message).
pub(crate) fn encode_packet(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    data: &[&str],
    attachments: usize,
) -> String {
    let data_len: usize = data.iter().map(|piece| piece.len()).sum();
    let mut out = String::with_capacity(nsp.len() + data_len + 24);
    encode_head(kind, nsp, id, attachments, &mut out);
    let start = out.len();
    for piece in data {
        out.push_str(piece);
    }
    debug_assert!(
        out.len() == start || serde_json::from_str::<IgnoredAny>(&out[start..]).is_ok(),
        "packet data must be valid JSON: {:?}",
        &out[start..]
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    fn event(json: &str, attachments: Vec<Vec<u8>>) -> Event {
        let raw = RawValue::from_string(json.to_owned()).expect("valid JSON");
        Event::new("e".into(), Payload::from_raw(raw, attachments))
    }

    #[test]
    fn argument_counts_map_to_types() {
        assert_eq!(event(r#"["e"]"#, vec![]).deserialize::<()>().ok(), Some(()));
        assert_eq!(
            event(r#"["e"]"#, vec![]).deserialize::<Option<u8>>().ok(),
            Some(None)
        );
        assert_eq!(
            event(r#"["e",5]"#, vec![]).deserialize::<u8>().ok(),
            Some(5)
        );
        assert_eq!(
            event(r#"["e","a",2,true]"#, vec![])
                .deserialize::<(String, u8, bool)>()
                .ok(),
            Some(("a".to_owned(), 2, true))
        );
        assert!(event(r#"["e","a"]"#, vec![]).deserialize::<u8>().is_err());
    }

    #[test]
    fn binary_goes_straight_into_byte_fields() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Upload {
            name: String,
            chunks: Vec<ByteBuf>,
        }
        let e = event(
            r#"["e",{"name":"f","chunks":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]"#,
            vec![vec![1, 2], vec![3]],
        );
        let up: Upload = e.deserialize().expect("deserialize");
        assert_eq!(up.name, "f");
        assert_eq!(
            up.chunks,
            vec![ByteBuf::from(vec![1, 2]), ByteBuf::from(vec![3])]
        );
    }

    #[test]
    fn encoded_args_splice_items() {
        let many = EncodedArgs::many(&("a", 1)).expect("encode");
        assert_eq!(many.event_packet("/", "ev", None), r#"2["ev","a",1]"#);
        let none = EncodedArgs::many(&()).expect("encode");
        assert_eq!(
            none.event_packet("/chat", "ev", Some(3)),
            r#"2/chat,3["ev"]"#
        );
        let one = EncodedArgs::one(&[1, 2]).expect("encode");
        assert_eq!(one.ack_packet("/", 7), "37[[1,2]]");
        let bin = EncodedArgs::one(&ByteBuf::from(vec![9])).expect("encode");
        assert_eq!(
            bin.event_packet("/", "b", None),
            r#"51-["b",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(bin.attachments(), &[vec![9]]);
    }
}
