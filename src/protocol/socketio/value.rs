//! Packet data with its binary attachments, in and out through serde.
//!
//! In a binary packet's JSON, each attachment stands where it belongs as a placeholder
//! `{"_placeholder":true,"num":N}`, `N` being its index among the attachments.
//!
//! - In: [`Payload`] keeps the raw JSON text and the attachments. [`Payload::raw`] is the
//!   text untouched, for a relay; [`Payload::deserialize`] reads it into any `serde` type,
//!   an attachment going to a bytes field (`serde_bytes::ByteBuf`, `bytes::Bytes`,
//!   `Vec<u8>`...) wherever its placeholder stands.
//! - Out: [`to_json_with_attachments`] serializes any `serde` type as `serde_json` would,
//!   except that bytes (`serialize_bytes`: `serde_bytes`, `bytes::Bytes`) become placeholders
//!   and attachments. A `Vec<u8>` serializes as an array of numbers, as in `serde_json`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Why arguments could not be read from or written to JSON.
#[derive(Debug)]
pub enum ArgsError {
    /// The JSON does not parse, or does not fit the requested type, or a value could not be
    /// serialized (a map key that is not a string, an error from a `Serialize` impl...).
    Json(serde_json::Error),
    /// A placeholder (an object with `"_placeholder":true`) whose `num` is missing, not an
    /// unsigned integer, or not below the number of attachments.
    Placeholder {
        /// The `num` of the placeholder, if it is an unsigned integer.
        num: Option<u64>,
        /// How many attachments the payload has.
        attachments: usize,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Json(e) => write!(f, "invalid arguments: {e}"),
            ArgsError::Placeholder {
                num: Some(num),
                attachments,
            } => write!(
                f,
                "placeholder for attachment {num}, but there are {attachments}"
            ),
            ArgsError::Placeholder { num: None, .. } => {
                f.write_str("placeholder without a valid attachment number")
            }
        }
    }
}

impl std::error::Error for ArgsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ArgsError::Json(e) => Some(e),
            ArgsError::Placeholder { .. } => None,
        }
    }
}

impl From<serde_json::Error> for ArgsError {
    fn from(e: serde_json::Error) -> Self {
        ArgsError::Json(e)
    }
}

/// The data of a packet with its binary attachments: the JSON text exactly as received (or
/// as serialized) and the attachments its placeholders point at.
///
/// With no attachments the payload is plain JSON, as the data of an EVENT or ACK is: an
/// object that looks like a placeholder is left as it is (the reference does the same), and
/// [`Payload::deserialize`] reads straight from the text. With attachments (a
/// `BINARY_EVENT` or `BINARY_ACK`), every placeholder is replaced by its attachment.
///
/// ```
/// use serde_json::value::RawValue;
/// use sioloop::protocol::socketio::Payload;
///
/// #[derive(serde::Deserialize)]
/// struct Upload { name: String, chunks: Vec<serde_bytes::ByteBuf> }
///
/// let raw = RawValue::from_string(
///     r#"[{"name":"a.bin","chunks":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]"#
///         .to_owned(),
/// )?;
/// let payload = Payload::from_raw(raw, vec![vec![1, 2], vec![3]]);
/// let (upload,): (Upload,) = payload.deserialize()?;
/// assert_eq!(upload.name, "a.bin");
/// assert_eq!(upload.chunks[1].as_slice(), &[3]);
///
/// // The raw text is still there, placeholders and all, for a relay.
/// assert!(payload.raw().get().contains("_placeholder"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Payload {
    raw: Box<RawValue>,
    attachments: Vec<Vec<u8>>,
}

impl Payload {
    /// A payload from raw JSON and the attachments its placeholders point at (in order).
    pub fn from_raw(raw: Box<RawValue>, attachments: Vec<Vec<u8>>) -> Payload {
        Payload { raw, attachments }
    }

    /// Serializes `value` into a payload: bytes become placeholders and attachments (see
    /// [`to_json_with_attachments`]).
    ///
    /// ```
    /// use sioloop::protocol::socketio::Payload;
    /// let payload = Payload::from_serialize(&("up", serde_bytes::Bytes::new(&[7])))?;
    /// assert_eq!(payload.raw().get(), r#"["up",{"_placeholder":true,"num":0}]"#);
    /// assert_eq!(payload.attachments(), &[vec![7]]);
    /// # Ok::<(), sioloop::protocol::socketio::ArgsError>(())
    /// ```
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Payload, ArgsError> {
        let (json, attachments) = to_json_with_attachments(value)?;
        Ok(Payload {
            raw: RawValue::from_string(json)?,
            attachments,
        })
    }

    /// The JSON text, placeholders included, exactly as received: a relay forwards it with
    /// [`Payload::attachments`] and never parses it.
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }

    /// The attachments, in placeholder order.
    pub fn attachments(&self) -> &[Vec<u8>] {
        &self.attachments
    }

    /// Whether the payload has attachments (and so goes out as a `BINARY_*` packet).
    pub fn is_binary(&self) -> bool {
        !self.attachments.is_empty()
    }

    /// The raw JSON and the attachments.
    pub fn into_parts(self) -> (Box<RawValue>, Vec<Vec<u8>>) {
        (self.raw, self.attachments)
    }

    /// The data as a `serde_json::Value`, each placeholder replaced by its attachment as an
    /// array of numbers (which `Vec<u8>`, `serde_bytes::ByteBuf` and `bytes::Bytes` all
    /// deserialize from).
    ///
    /// Each byte costs a whole `Value` here; [`Payload::deserialize`] reads attachments into
    /// bytes fields directly and is the better way to large binary data.
    ///
    /// ```
    /// use serde_json::{json, value::RawValue};
    /// use sioloop::protocol::socketio::Payload;
    /// let raw = RawValue::from_string(r#"["up",{"_placeholder":true,"num":0}]"#.into())?;
    /// let value = Payload::from_raw(raw, vec![vec![1, 2]]).to_value()?;
    /// assert_eq!(value, json!(["up", [1, 2]]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_value(&self) -> Result<Value, ArgsError> {
        // serde_json limits nesting to 128 levels, which bounds the recursion below.
        let mut value: Value = serde_json::from_str(self.raw.get())?;
        if !self.attachments.is_empty() {
            replace_placeholders(&mut value, &self.attachments)?;
        }
        Ok(value)
    }

    /// Deserializes the data into `T`, attachments into the bytes fields where their
    /// placeholders stand.
    ///
    /// The result is the same as `serde_json::from_value(self.to_value()?)`, without the
    /// intermediate arrays of numbers: a bytes field (`serde_bytes::ByteBuf`,
    /// `bytes::Bytes`) gets its attachment in one copy. A `Box<RawValue>` inside `T` gets
    /// the JSON text with its placeholders.
    ///
    /// Without attachments it is `serde_json::from_str` on the raw text. With attachments
    /// the JSON is parsed into a `Value` first, so there (as in [`Payload::to_value`])
    /// integers are limited to 64 bits and nesting to 128 levels.
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use sioloop::protocol::socketio::Payload;
    /// let raw = RawValue::from_string(r#"["move",{"x":1,"y":-2}]"#.into())?;
    /// #[derive(serde::Deserialize)]
    /// struct Pos { x: i32, y: i32 }
    /// let (name, pos): (String, Pos) = Payload::from_raw(raw, vec![]).deserialize()?;
    /// assert_eq!((name.as_str(), pos.x, pos.y), ("move", 1, -2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        if self.attachments.is_empty() {
            return Ok(serde_json::from_str(self.raw.get())?);
        }
        let value: Value = serde_json::from_str(self.raw.get())?;
        check_placeholders(&value, self.attachments.len())?;
        Ok(T::deserialize(crate::protocol::socketio::de::Node::new(
            &value,
            &self.attachments,
        ))?)
    }
}

/// Serializes any `T: Serialize` to JSON, turning every `serialize_bytes` call
/// (`serde_bytes::Bytes`/`ByteBuf`, `bytes::Bytes`) into a placeholder
/// `{"_placeholder":true,"num":N}` and collecting the bytes as attachments, in order.
///
/// Everything else comes out exactly as `serde_json::to_string` writes it (the JSON is
/// written by `serde_json` itself): field order, escapes, numbers, `null` for non-finite
/// floats, enums in `serde_json`'s representation. A `Vec<u8>` is a sequence, not bytes, so
/// it stays an array of numbers.
///
/// ```
/// use serde::Serialize;
/// use sioloop::protocol::socketio::to_json_with_attachments;
///
/// #[derive(Serialize)]
/// struct Frame<'a> { id: u32, #[serde(with = "serde_bytes")] pixels: &'a [u8] }
///
/// let (json, attachments) = to_json_with_attachments(&("frame", Frame { id: 3, pixels: &[9, 9] }))?;
/// assert_eq!(json, r#"["frame",{"id":3,"pixels":{"_placeholder":true,"num":0}}]"#);
/// assert_eq!(attachments, vec![vec![9, 9]]);
/// # Ok::<(), sioloop::protocol::socketio::ArgsError>(())
/// ```
pub fn to_json_with_attachments<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(String, Vec<Vec<u8>>), ArgsError> {
    crate::protocol::socketio::ser::to_json(value)
}

/// The attachment index of `map` if it is a placeholder (`"_placeholder": true`), checked
/// against the number of attachments; `None` if it is an ordinary object.
fn placeholder_index(
    map: &Map<String, Value>,
    attachments: usize,
) -> Option<Result<usize, ArgsError>> {
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let num = map.get("num").and_then(Value::as_u64);
    Some(
        num.and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n < attachments)
            .ok_or(ArgsError::Placeholder { num, attachments }),
    )
}

/// Checks that every placeholder in `value` points at one of `attachments` attachments.
/// The other keys of a placeholder object are not looked at, as in the reference.
pub(crate) fn check_placeholders(value: &Value, attachments: usize) -> Result<(), ArgsError> {
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_placeholders(v, attachments)),
        Value::Object(map) => match placeholder_index(map, attachments) {
            Some(index) => index.map(|_| ()),
            None => map
                .values()
                .try_for_each(|v| check_placeholders(v, attachments)),
        },
        _ => Ok(()),
    }
}

/// Whether `map` is a placeholder, and the attachment it points at (see `placeholder_index`).
pub(crate) fn placeholder<'a>(
    map: &Map<String, Value>,
    attachments: &'a [Vec<u8>],
) -> Option<Result<&'a [u8], ArgsError>> {
    placeholder_index(map, attachments.len()).map(|index| {
        index.and_then(|i| {
            attachments
                .get(i)
                .map(Vec::as_slice)
                .ok_or(ArgsError::Placeholder {
                    num: u64::try_from(i).ok(),
                    attachments: attachments.len(),
                })
        })
    })
}

fn replace_placeholders(value: &mut Value, attachments: &[Vec<u8>]) -> Result<(), ArgsError> {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| replace_placeholders(v, attachments)),
        Value::Object(map) => match placeholder(map, attachments) {
            Some(bytes) => {
                *value = Value::Array(bytes?.iter().map(|&b| Value::from(b)).collect());
                Ok(())
            }
            None => map
                .values_mut()
                .try_for_each(|v| replace_placeholders(v, attachments)),
        },
        _ => Ok(()),
    }
}
