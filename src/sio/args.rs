//! Event arguments in and out: what a handler receives, and how emitted data becomes a
//! packet (encoded once, binary parts split off as attachments).

use crate::socketio::packet::{Packet, PacketType};
use crate::socketio::value::{ArgsError, Payload, to_json_with_attachments};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

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
    /// (so `()` or `Option` work), several as an array (so a tuple works).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        let mut args = self.args()?;
        let value = match args.len() {
            0 => serde_json::Value::Null,
            1 => args.remove(0),
            _ => serde_json::Value::Array(args),
        };
        serde_json::from_value(value).map_err(ArgsError::from)
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
        let items: Vec<&RawValue> =
            serde_json::from_str(event.payload.raw().get()).map_err(ArgsError::from)?;
        let joined = items
            .iter()
            .skip(1)
            .map(|r| r.get())
            .collect::<Vec<_>>()
            .join(",");
        Ok(EncodedArgs {
            items: joined,
            attachments: event.payload.attachments().to_vec(),
        })
    }

    pub(crate) fn attachments(&self) -> &[Vec<u8>] {
        &self.attachments
    }

    /// The text of an EVENT packet for `nsp` carrying `event` and these arguments.
    pub(crate) fn event_packet(&self, nsp: &str, event: &str, ack_id: Option<u64>) -> String {
        let name = serde_json::to_string(event).unwrap_or_else(|_| "\"\"".into());
        let data = if self.items.is_empty() {
            format!("[{name}]")
        } else {
            format!("[{name},{}]", self.items)
        };
        self.packet(PacketType::Event, nsp, ack_id, data)
    }

    /// The text of an ACK packet answering `ack_id` with these arguments.
    pub(crate) fn ack_packet(&self, nsp: &str, ack_id: u64) -> String {
        self.packet(
            PacketType::Ack,
            nsp,
            Some(ack_id),
            format!("[{}]", self.items),
        )
    }

    fn packet(&self, kind: PacketType, nsp: &str, id: Option<u64>, data: String) -> String {
        let binary = !self.attachments.is_empty();
        let kind = match (kind, binary) {
            (PacketType::Event, true) => PacketType::BinaryEvent,
            (PacketType::Ack, true) => PacketType::BinaryAck,
            (k, _) => k,
        };
        encode_packet(kind, nsp, id, data, self.attachments.len())
    }
}

/// Encodes a packet whose data is JSON text this crate produced (so it is valid).
pub(crate) fn encode_packet(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    data: String,
    attachments: usize,
) -> String {
    let data = if data.is_empty() {
        None
    } else {
        RawValue::from_string(data).ok()
    };
    let packet = Packet {
        kind,
        nsp: nsp.to_owned(),
        id,
        data,
        attachments,
    };
    let mut out = String::new();
    packet.encode(&mut out);
    out
}
