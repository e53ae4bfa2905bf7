//! Event arguments in and out: what a handler receives, and how emitted data becomes a
//! packet (encoded once, binary parts split off as attachments).

use crate::protocol::socketio::packet::{PacketType, encode_head};
use crate::protocol::socketio::value::{ArgsError, Payload, to_json_with_attachments};
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::marker::PhantomData;
use std::ops::Range;

/// An event received from a client: its name and its arguments, with binary attachments.
#[derive(Debug)]
pub struct Event {
    name: EventName,
    /// Where the arguments are in the payload's text: the items after the name, without
    /// the brackets, as a relay forwards them.
    args: Range<usize>,
    /// The whole data array as received (`["name", arg1, ...]`), attachments included.
    payload: Payload,
}

/// An event name: most are a plain string in the payload's text, read where they are;
/// one with escapes, or a number, is decoded into its own string.
#[derive(Debug)]
enum EventName {
    InPayload(Range<usize>),
    Decoded(String),
}

/// JSON's whitespace.
const JSON_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

impl Event {
    /// The event in a received EVENT packet's data (a JSON array checked by the packet
    /// decoder), or `None` if its first element is not a name (a string, or a number, which
    /// the reference parser also accepts).
    pub(crate) fn from_payload(payload: Payload) -> Option<Event> {
        let raw = payload.raw().get();
        // The common case without a parse: `["name",...` with no escapes in the name, and
        // the arguments (valid JSON: the decoder checked the whole array) after the comma.
        if let Some(rest) = raw.strip_prefix("[\"")
            && let Some(end) = rest.find(['"', '\\'])
            && rest.as_bytes()[end] == b'"'
        {
            let name = 2..2 + end;
            let after = name.end + 1;
            let args = match raw.as_bytes().get(after) {
                Some(b',') => Some(trimmed(raw, after + 1..raw.len() - 1)),
                Some(b']') => Some(after..after),
                // Whitespace after the name: the general case below.
                _ => None,
            };
            if let Some(args) = args {
                return Some(Event {
                    name: EventName::InPayload(name),
                    args,
                    payload,
                });
            }
        }
        let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
        let name = match serde_json::from_str::<serde_json::Value>(items.first()?.get()).ok()? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let args = items_range(raw, &items, 1);
        Some(Event {
            name: EventName::Decoded(name),
            args,
            payload,
        })
    }

    /// The event name.
    pub fn name(&self) -> &str {
        match &self.name {
            EventName::InPayload(range) => self.payload.raw().get().get(range.clone()),
            EventName::Decoded(name) => Some(name.as_str()),
        }
        .unwrap_or_default()
    }

    /// The whole data array exactly as received (`["name",arg1,...]`), with its
    /// attachments: a relay can forward it without parsing the arguments.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The arguments' JSON text exactly as received, without the name and the brackets
    /// (`1,"a",{"_placeholder":true,"num":0}` for `["name",1,"a",<bytes>]`): binary
    /// arguments are placeholders numbering [`Event::attachments`]. Empty if there are
    /// none. A relay forwards this as it is (see `SocketCx::emit_event_as`).
    pub fn args_json(&self) -> &str {
        self.args_text()
    }

    /// The binary attachments, in the order the placeholders number them.
    pub fn attachments(&self) -> &[Vec<u8>] {
        self.payload.attachments()
    }

    /// The arguments' JSON text as received, without the name and the brackets
    /// (`arg1,arg2`), placeholders included.
    pub(crate) fn args_text(&self) -> &str {
        self.payload
            .raw()
            .get()
            .get(self.args.clone())
            .unwrap_or_default()
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

    /// The arguments as `T`, taken the way `T`'s type says (see [`Namespace::on`]
    /// for the table):
    ///
    /// - [`Args<U>`]: every argument, each a `U`, as a list (none gives an empty list);
    /// - a tuple `(A, B, ...)` (or an array `[U; N]`, which serde reads as a tuple): the
    ///   arguments by position (more arguments than the tuple has are ignored, fewer are an
    ///   error);
    /// - `()`: nothing (the arguments are ignored);
    /// - anything else (`String`, a struct, `Vec<U>`, `serde_json::Value`, `Option<U>`...):
    ///   the first argument; with no argument, `T` is read from `null` (so `Option<U>`
    ///   gives `None`). Arguments after the first are ignored. A tuple struct
    ///   (`struct Point(i32, i32)`) is one value too: the first argument, a JSON array.
    ///
    /// Binary attachments go straight into byte fields (`serde_bytes::ByteBuf`,
    /// `bytes::Bytes`).
    ///
    /// [`Namespace::on`]: super::Namespace::on
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        self.deserialize_as(ArgsShape::of::<T>())
    }

    /// [`Event::deserialize`] with `T`'s shape worked out beforehand (a handler does it once).
    pub(crate) fn deserialize_as<T: DeserializeOwned>(
        &self,
        shape: ArgsShape,
    ) -> Result<T, ArgsError> {
        match shape {
            ArgsShape::Nothing => serde_json::from_str("null").map_err(ArgsError::from),
            ArgsShape::All | ArgsShape::Positional => {
                Ok(self.payload.deserialize::<AfterFirst<T>>()?.0)
            }
            ArgsShape::First if self.args.is_empty() => {
                serde_json::from_str("null").map_err(ArgsError::from)
            }
            ArgsShape::First => Ok(self.payload.deserialize::<SecondItem<T>>()?.0),
        }
    }
}

/// Every argument of an event, each a `T`, as a list: the one handler argument type whose
/// meaning does not depend on how many arguments the client sent.
///
/// `socket.emit("scores", 1, 2)` gives `Args(vec![1, 2])`, `socket.emit("scores", [1, 2])`
/// gives `Args(vec![vec![1, 2]])` as an `Args<Vec<u32>>` (and fails as an `Args<u32>`),
/// and `socket.emit("scores")` gives `Args(vec![])`.
///
/// ```
/// use sioloop::{Args, Server};
/// use serde_json::Value;
///
/// let (mut server, _net) = Server::in_memory(Default::default(), ());
/// server.of("/").on("log", |_cx, Args(items): Args<Value>, _ack| {
///     // However many arguments the client passed, in order.
///     let _ = items.len();
/// });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args<T>(pub Vec<T>);

impl<T> Args<T> {
    /// The arguments.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T> std::ops::Deref for Args<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Args<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T> IntoIterator for Args<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The newtype name `Args` deserializes through: how [`ArgsShape::of`] recognizes it.
const ARGS_TOKEN: &str = "$sioloop::Args";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Args<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of arguments")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Args<T>, D::Error> {
                Vec::<T>::deserialize(d).map(Args)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Args(items))
            }
        }
        d.deserialize_newtype_struct(ARGS_TOKEN, V(PhantomData))
    }
}

/// How a handler's argument type takes an event's arguments (see [`Event::deserialize`]).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum ArgsShape {
    /// The first argument (`null` if none).
    First,
    /// The arguments by position: a tuple.
    Positional,
    /// Every argument as a list: [`Args`].
    All,
    /// None: `()`.
    Nothing,
}

impl ArgsShape {
    /// `T`'s shape, found by letting `T` start deserializing from a probe that notes the
    /// first thing asked for (a tuple, a unit, the `Args` newtype) and stops there.
    pub(crate) fn of<T: DeserializeOwned>() -> ArgsShape {
        let shape = std::cell::Cell::new(ArgsShape::First);
        let _ = T::deserialize(ShapeProbe(&shape));
        shape.get()
    }
}

/// The deserializer behind [`ArgsShape::of`]: it never yields a value.
struct ShapeProbe<'a>(&'a std::cell::Cell<ArgsShape>);

impl ShapeProbe<'_> {
    fn found<T>(self, shape: ArgsShape) -> Result<T, de::value::Error> {
        self.0.set(shape);
        Err(de::Error::custom("probed"))
    }
}

impl<'de> Deserializer<'de> for ShapeProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        self.found(ArgsShape::First)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        self.found(ArgsShape::Nothing)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Self::Error> {
        self.found(ArgsShape::Positional)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name == ARGS_TOKEN {
            self.found(ArgsShape::All)
        } else {
            // A newtype is what it wraps.
            visitor.visit_newtype_struct(self)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit_struct seq tuple_struct map struct enum identifier ignored_any
    }
}

/// `range` of `text` without JSON whitespace at either end.
fn trimmed(text: &str, range: Range<usize>) -> Range<usize> {
    let inner = text.get(range.clone()).unwrap_or_default();
    let start = range.start + (inner.len() - inner.trim_start_matches(JSON_SPACE).len());
    let end = range.end - (inner.len() - inner.trim_end_matches(JSON_SPACE).len());
    start..end.max(start)
}

/// Where the items of a parsed array after the first `skip` are in its text: from the start
/// of the first kept item to the end of the last (the items are slices of `raw`).
fn items_range(raw: &str, items: &[&RawValue], skip: usize) -> Range<usize> {
    match (items.get(skip), items.last()) {
        (Some(first), Some(last)) => {
            let start = first.get().as_ptr() as usize - raw.as_ptr() as usize;
            let end = last.get().as_ptr() as usize - raw.as_ptr() as usize + last.get().len();
            start..end
        }
        _ => 0..0,
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

/// Every item after the first, as one sequence (the arguments after the event name); the
/// items `T` does not take are skipped.
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
                let value = T::deserialize(SeqAccessDeserializer::new(&mut seq))?;
                // Arguments past those `T` takes are ignored, as a JavaScript function
                // ignores extra arguments.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AfterFirst(value))
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
    pub(crate) fn from_event(event: &Event) -> EncodedArgs {
        EncodedArgs {
            items: event.args_text().to_owned(),
            attachments: event.payload.attachments().to_vec(),
        }
    }

    /// The items of a received array payload (an ack's), unchanged: the placeholders keep
    /// their numbers, so the attachments go along as they are.
    pub(crate) fn from_payload(payload: &Payload) -> Result<EncodedArgs, ArgsError> {
        let raw = payload.raw().get();
        let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(ArgsError::from)?;
        Ok(EncodedArgs {
            items: raw
                .get(items_range(raw, &items, 0))
                .unwrap_or_default()
                .to_owned(),
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

    /// An EVENT packet (no ack id) with `offset` appended as its last argument, a JSON
    /// string: what a client with connection state recovery records as its last offset.
    pub(crate) fn event_packet_with_offset(&self, nsp: &str, event: &str, offset: &str) -> String {
        let name = serde_json::to_string(event).unwrap_or_else(|_| "\"\"".into());
        // Offsets are the server's own hex digits: nothing to escape.
        let data: &[&str] = if self.items.is_empty() {
            &["[", &name, ",\"", offset, "\"]"]
        } else {
            &["[", &name, ",", &self.items, ",\"", offset, "\"]"]
        };
        self.packet(PacketType::Event, nsp, None, data)
    }

    /// The arguments' JSON items, comma-separated, without brackets.
    pub(crate) fn items(&self) -> &str {
        &self.items
    }

    fn packet(&self, kind: PacketType, nsp: &str, id: Option<u64>, data: &[&str]) -> String {
        args_packet(kind, nsp, id, data, self.attachments.len())
    }
}

/// The text of an ACK packet answering `ack_id` with `items` (JSON, comma-separated, without
/// brackets) and `attachments` binary attachments.
pub(crate) fn ack_packet(nsp: &str, ack_id: u64, items: &str, attachments: usize) -> String {
    args_packet(
        PacketType::Ack,
        nsp,
        Some(ack_id),
        &["[", items, "]"],
        attachments,
    )
}

/// An EVENT or ACK packet carrying arguments: its binary variant when they have attachments.
fn args_packet(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    data: &[&str],
    attachments: usize,
) -> String {
    let kind = match (kind, attachments > 0) {
        (PacketType::Event, true) => PacketType::BinaryEvent,
        (PacketType::Ack, true) => PacketType::BinaryAck,
        (k, _) => k,
    };
    encode_packet(kind, nsp, id, data, attachments)
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
        Event::from_payload(Payload::from_raw(raw, attachments)).expect("an event")
    }

    fn name_and_args(json: &str) -> Option<(String, String)> {
        let raw = RawValue::from_string(json.to_owned()).expect("valid JSON");
        let e = Event::from_payload(Payload::from_raw(raw, vec![]))?;
        Some((e.name().to_owned(), e.args_text().to_owned()))
    }

    /// The fast path (a plain name read in place) and the parsing fallback agree on the
    /// name and on the arguments a relay forwards.
    #[test]
    fn names_and_arguments_with_and_without_the_fast_path() {
        let pair = |n: &str, a: &str| Some((n.to_owned(), a.to_owned()));
        assert_eq!(
            name_and_args(r#"["echo",1,{"a":[2]}]"#),
            pair("echo", r#"1,{"a":[2]}"#)
        );
        assert_eq!(
            name_and_args(r#"["echo", 1 , "x" ]"#),
            pair("echo", r#"1 , "x""#)
        );
        assert_eq!(name_and_args(r#"["echo"]"#), pair("echo", ""));
        assert_eq!(name_and_args(r#"["a\"b",1]"#), pair("a\"b", "1"));
        assert_eq!(name_and_args(r#"["caf\u00e9"]"#), pair("café", ""));
        assert_eq!(name_and_args(r#"[ "spaced" , 1]"#), pair("spaced", "1"));
        assert_eq!(name_and_args(r#"["spaced" ,1 ]"#), pair("spaced", "1"));
        assert_eq!(name_and_args(r#"[42,"x"]"#), pair("42", r#""x""#));
        assert_eq!(name_and_args(r#"[""]"#), pair("", ""));
        assert_eq!(name_and_args(r#"[{"a":1}]"#), None);
        assert_eq!(name_and_args("[]"), None);
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

    /// The type says how the arguments are taken, whatever their count: a list argument
    /// and several arguments never look the same.
    #[test]
    fn the_type_not_the_count_says_how_arguments_are_taken() {
        use serde_json::{Value, json};
        let list = event(r#"["e",[1,2]]"#, vec![]);
        let two = event(r#"["e",1,2]"#, vec![]);
        let one = event(r#"["e",1]"#, vec![]);
        let none = event(r#"["e"]"#, vec![]);
        // A single type: the first argument.
        assert_eq!(list.deserialize::<Vec<u8>>().ok(), Some(vec![1, 2]));
        assert!(two.deserialize::<Vec<u8>>().is_err(), "1 is not a list");
        assert_eq!(two.deserialize::<u8>().ok(), Some(1), "extra ignored");
        assert_eq!(two.deserialize::<Value>().ok(), Some(json!(1)));
        assert_eq!(none.deserialize::<Value>().ok(), Some(Value::Null));
        // A tuple: by position, one-element tuples included.
        assert_eq!(two.deserialize::<(u8, u8)>().ok(), Some((1, 2)));
        assert_eq!(one.deserialize::<(u8,)>().ok(), Some((1,)));
        assert_eq!(two.deserialize::<(u8,)>().ok(), Some((1,)), "extra ignored");
        assert!(list.deserialize::<(u8, u8)>().is_err(), "one argument");
        assert!(one.deserialize::<(u8, u8)>().is_err(), "too few");
        // `Args`: all of them, always a list.
        assert_eq!(two.deserialize::<Args<u8>>().ok(), Some(Args(vec![1, 2])));
        assert_eq!(one.deserialize::<Args<u8>>().ok(), Some(Args(vec![1])));
        assert_eq!(none.deserialize::<Args<u8>>().ok(), Some(Args(vec![])));
        assert_eq!(
            list.deserialize::<Args<Value>>().ok(),
            Some(Args(vec![json!([1, 2])]))
        );
        assert!(list.deserialize::<Args<u8>>().is_err());
        // `()`: nothing, whatever came.
        assert_eq!(two.deserialize::<()>().ok(), Some(()));
        assert_eq!(list.deserialize::<()>().ok(), Some(()));
        // Binary in every shape.
        let bin = event(
            r#"["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            vec![vec![1], vec![2, 3]],
        );
        assert_eq!(
            bin.deserialize::<Args<ByteBuf>>().ok(),
            Some(Args(vec![
                ByteBuf::from(vec![1]),
                ByteBuf::from(vec![2, 3])
            ]))
        );
        assert_eq!(
            bin.deserialize::<ByteBuf>().ok(),
            Some(ByteBuf::from(vec![1]))
        );
    }

    #[test]
    fn shapes_of_types() {
        // Only its shape is probed, never its value.
        #[allow(dead_code)]
        #[derive(serde::Deserialize)]
        struct Wrapped((u8, u8));
        #[allow(dead_code)]
        #[derive(serde::Deserialize)]
        struct Point(i32, i32);
        assert_eq!(ArgsShape::of::<String>(), ArgsShape::First);
        assert_eq!(ArgsShape::of::<Vec<u8>>(), ArgsShape::First);
        assert_eq!(ArgsShape::of::<Option<(u8, u8)>>(), ArgsShape::First);
        assert_eq!(ArgsShape::of::<serde_json::Value>(), ArgsShape::First);
        assert_eq!(ArgsShape::of::<(u8, String)>(), ArgsShape::Positional);
        assert_eq!(ArgsShape::of::<Wrapped>(), ArgsShape::Positional);
        assert_eq!(ArgsShape::of::<[u8; 2]>(), ArgsShape::Positional);
        assert_eq!(ArgsShape::of::<Point>(), ArgsShape::First);
        assert_eq!(ArgsShape::of::<Args<u8>>(), ArgsShape::All);
        assert_eq!(ArgsShape::of::<()>(), ArgsShape::Nothing);
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
        assert_eq!(
            many.event_packet_with_offset("/", "ev", "1f"),
            r#"2["ev","a",1,"1f"]"#
        );
        let none = EncodedArgs::many(&()).expect("encode");
        assert_eq!(
            none.event_packet("/chat", "ev", Some(3)),
            r#"2/chat,3["ev"]"#
        );
        let one = EncodedArgs::one(&[1, 2]).expect("encode");
        assert_eq!(ack_packet("/", 7, one.items(), 0), "37[[1,2]]");
        let bin = EncodedArgs::one(&ByteBuf::from(vec![9])).expect("encode");
        assert_eq!(
            bin.event_packet("/", "b", None),
            r#"51-["b",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(bin.attachments(), &[vec![9]]);
    }
}
