//! The deserializer behind [`Payload::deserialize`](crate::protocol::socketio::Payload::deserialize):
//! a parsed `serde_json::Value` seen with its placeholders replaced by their attachments.
//!
//! [`Node`] behaves like `serde_json`'s `&Value` deserializer on a value where every
//! placeholder had been replaced by its attachment as an array of numbers (what
//! [`Payload::to_value`](crate::protocol::socketio::Payload::to_value) builds), with one shortcut: a
//! type that asks for bytes (`deserialize_bytes`/`deserialize_byte_buf`: `serde_bytes`,
//! `bytes::Bytes`) gets the attachment as a byte slice, not number by number. Scalars are
//! handed to `serde_json` itself, so their conversions and errors are `serde_json`'s.

use crate::protocol::socketio::value::placeholder;
use serde::Deserializer;
use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde_json::{Error, Map, Value};

/// The name `serde_json` gives the newtype that `Box<RawValue>` deserializes through. A raw
/// value gets the JSON text as it is, placeholders included.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// One JSON value of a payload, with the payload's attachments.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    value: &'a Value,
    attachments: &'a [Vec<u8>],
}

impl<'a> Node<'a> {
    /// `value` (the whole payload, or a part of it) with the payload's attachments.
    pub(crate) fn new(value: &'a Value, attachments: &'a [Vec<u8>]) -> Self {
        Node { value, attachments }
    }

    fn child(&self, value: &'a Value) -> Node<'a> {
        Node {
            value,
            attachments: self.attachments,
        }
    }

    /// The attachment if this value is a placeholder.
    fn bytes(&self) -> Result<Option<&'a [u8]>, Error> {
        match self.value {
            Value::Object(map) => match placeholder(map, self.attachments) {
                Some(Ok(bytes)) => Ok(Some(bytes)),
                Some(Err(e)) => Err(de::Error::custom(e)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    fn visit_array<V: Visitor<'a>>(
        &self,
        items: &'a [Value],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut seq = Seq {
            items: items.iter(),
            attachments: self.attachments,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.items.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                items.len(),
                &"fewer elements in array",
            ))
        }
    }

    fn visit_map<V: Visitor<'a>>(
        &self,
        map: &'a Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = Entries {
            entries: map.iter(),
            value: None,
            attachments: self.attachments,
        };
        let out = visitor.visit_map(&mut access)?;
        if access.entries.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                map.len(),
                &"fewer elements in map",
            ))
        }
    }
}

/// An attachment visited as the array of numbers it stands for.
fn visit_bytes_as_seq<'a, V: Visitor<'a>>(bytes: &'a [u8], visitor: V) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::<_, Error>::new(bytes.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

/// The kind of a JSON value, for error messages.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// Scalars (and type mismatches) are `serde_json`'s business.
macro_rules! forward_to_value {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
            self.value.$method(visitor)
        }
    )*};
}

impl<'a> Deserializer<'a> for Node<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(items) => self.visit_array(items, visitor),
            Value::Object(map) => match self.bytes()? {
                Some(bytes) => visit_bytes_as_seq(bytes, visitor),
                None => self.visit_map(map, visitor),
            },
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some(bytes)) => visitor.visit_borrowed_bytes(bytes),
            (Value::Array(items), None) => self.visit_array(items, visitor),
            (other, None) => other.deserialize_bytes(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) => {
                if self.bytes()?.is_some() {
                    return Err(de::Error::invalid_type(Unexpected::Seq, &"string or map"));
                }
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(Enum {
                        variant,
                        value: self.child(value),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            // A string is a unit variant: nothing below it can hold a placeholder.
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == RAW_VALUE_TOKEN {
            self.value.deserialize_newtype_struct(name, visitor)
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some(bytes)) => visit_bytes_as_seq(bytes, visitor),
            (Value::Array(items), None) => self.visit_array(items, visitor),
            (other, None) => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some(_)) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            (Value::Object(map), None) => self.visit_map(map, visitor),
            (other, None) => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some(bytes)) => visit_bytes_as_seq(bytes, visitor),
            (Value::Array(items), None) => self.visit_array(items, visitor),
            (Value::Object(map), None) => self.visit_map(map, visitor),
            (other, None) => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.value.deserialize_unit_struct(name, visitor)
    }

    forward_to_value!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_unit,
        deserialize_identifier
    );
}

/// The elements of an array.
struct Seq<'a> {
    items: std::slice::Iter<'a, Value>,
    attachments: &'a [Vec<u8>],
}

impl<'a> SeqAccess<'a> for Seq<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(value) => seed
                .deserialize(Node::new(value, self.attachments))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object.
struct Entries<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    attachments: &'a [Vec<u8>],
}

impl<'a> MapAccess<'a> for Entries<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Node::new(value, self.attachments)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An externally tagged enum: `{"Variant": value}`.
struct Enum<'a> {
    variant: &'a str,
    value: Node<'a>,
}

impl<'a> EnumAccess<'a> for Enum<'a> {
    type Error = Error;
    type Variant = Node<'a>;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Node<'a>), Error> {
        let variant: BorrowedStrDeserializer<'a, Error> =
            BorrowedStrDeserializer::new(self.variant);
        seed.deserialize(variant).map(|v| (v, self.value))
    }
}

impl<'a> VariantAccess<'a> for Node<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        serde::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some([])) => visitor.visit_unit(),
            (_, Some(bytes)) => visit_bytes_as_seq(bytes, visitor),
            (Value::Array(items), None) if items.is_empty() => visitor.visit_unit(),
            (Value::Array(items), None) => self.visit_array(items, visitor),
            (other, None) => Err(de::Error::invalid_type(unexpected(other), &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match (self.value, self.bytes()?) {
            (_, Some(_)) => Err(de::Error::invalid_type(Unexpected::Seq, &"struct variant")),
            (Value::Object(map), None) => self.visit_map(map, visitor),
            (other, None) => Err(de::Error::invalid_type(
                unexpected(other),
                &"struct variant",
            )),
        }
    }
}

/// An object key. As in `serde_json`, a key can also be read as a number or a boolean
/// (`{"1": ...}` into a `HashMap<u32, _>`).
struct Key<'a>(&'a str);

impl<'a> Key<'a> {
    /// Reads the key as a JSON number of the type the visitor wants; the key must be exactly
    /// a number (no sign but `-`, no whitespace).
    fn number<V: Visitor<'a>>(
        self,
        visitor: V,
        read: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
            V,
        ) -> Result<V::Value, Error>,
    ) -> Result<V::Value, Error> {
        let bytes = self.0.as_bytes();
        let starts_like_a_number = matches!(bytes.first(), Some(b'0'..=b'9' | b'-'));
        let ends_like_a_number = bytes.last().is_some_and(u8::is_ascii_digit);
        if !(starts_like_a_number && ends_like_a_number) {
            return Err(de::Error::invalid_type(Unexpected::Str(self.0), &visitor));
        }
        let mut de = serde_json::Deserializer::from_str(self.0);
        let out = read(&mut de, visitor)?;
        de.end()?;
        Ok(out)
    }
}

macro_rules! numeric_key {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
            self.number(visitor, |de, visitor| de.$method(visitor))
        }
    )*};
}

impl<'a> Deserializer<'a> for Key<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    numeric_key!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64
    );

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        // Keys are never null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key: BorrowedStrDeserializer<'a, Error> = BorrowedStrDeserializer::new(self.0);
        key.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}
