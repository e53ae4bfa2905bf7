//! The serializer behind [`to_json_with_attachments`](crate::protocol::socketio::to_json_with_attachments):
//! `serde_json`'s own serializer, seen through an adapter that turns `serialize_bytes` into a
//! placeholder and keeps the bytes.
//!
//! [`Intercept`] wraps any serializer and forwards every call to it unchanged, except
//! `serialize_bytes`. Values inside compounds (elements, fields, map keys and values, the
//! content of options and newtypes) are wrapped again on their way in, so bytes are caught
//! at any depth. As `serde_json` writes every character, the output is `serde_json`'s
//! exactly, down to its special cases (`RawValue` passes through as raw text).

use crate::protocol::socketio::value::ArgsError;
use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};
use std::cell::Cell;
use std::fmt::Display;

/// Serializes `value` with `serde_json`, bytes turned into placeholders.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(String, Vec<Vec<u8>>), ArgsError> {
    let attachments = Cell::new(Vec::new());
    let mut out = Vec::with_capacity(128);
    let mut json = serde_json::Serializer::new(&mut out);
    value.serialize(Intercept {
        inner: &mut json,
        attachments: &attachments,
    })?;
    // serde_json only writes UTF-8; a failure here would be a serde_json bug, reported as
    // an error rather than a panic.
    let text = String::from_utf8(out)
        .map_err(|_| ArgsError::Json(ser::Error::custom("serializer wrote invalid UTF-8")))?;
    Ok((text, attachments.take()))
}

/// A serializer that forwards to `inner`, except that bytes become a placeholder.
struct Intercept<'a, S> {
    inner: S,
    /// The attachments collected so far. A `Cell` (take, push, put back) because values
    /// are serialized through `&self`.
    attachments: &'a Cell<Vec<Vec<u8>>>,
}

/// A value to serialize through [`Intercept`], for the methods that take `&T`.
struct Wrapped<'a, T: ?Sized> {
    value: &'a T,
    attachments: &'a Cell<Vec<Vec<u8>>>,
}

impl<T: Serialize + ?Sized> Serialize for Wrapped<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Intercept {
            inner: serializer,
            attachments: self.attachments,
        })
    }
}

/// A compound of the inner serializer; its parts are wrapped on their way in.
struct Compound<'a, C> {
    inner: C,
    attachments: &'a Cell<Vec<Vec<u8>>>,
}

impl<'a, C> Compound<'a, C> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrapped<'v, T>
    where
        'a: 'v,
    {
        Wrapped {
            value,
            attachments: self.attachments,
        }
    }
}

/// The placeholder written for attachment `num`.
struct Placeholder {
    num: usize,
}

impl Serialize for Placeholder {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_struct("Placeholder", 2)?;
        map.serialize_field("_placeholder", &true)?;
        map.serialize_field("num", &self.num)?;
        map.end()
    }
}

impl<'a, S: Serializer> Intercept<'a, S> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrapped<'v, T>
    where
        'a: 'v,
    {
        Wrapped {
            value,
            attachments: self.attachments,
        }
    }
}

impl<'a, S: Serializer> Serializer for Intercept<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let mut attachments = self.attachments.take();
        let num = attachments.len();
        attachments.push(v.to_vec());
        self.attachments.set(attachments);
        Placeholder { num }.serialize(self.inner)
    }

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.inner.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_some(&value)
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_newtype_struct(name, &value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_seq(len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_tuple(len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_tuple_struct(name, len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_tuple_variant(name, index, variant, len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_map(len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_struct(name, len)
            .map(|inner| Compound { inner, attachments })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let attachments = self.attachments;
        self.inner
            .serialize_struct_variant(name, index, variant, len)
            .map(|inner| Compound { inner, attachments })
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<C: SerializeSeq> SerializeSeq for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTuple> SerializeTuple for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleStruct> SerializeTupleStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleVariant> SerializeTupleVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeMap> SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let key = self.wrap(key);
        self.inner.serialize_key(&key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_value(&value)
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), C::Error> {
        let key = self.wrap(key);
        let value = self.wrap(value);
        self.inner.serialize_entry(&key, &value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStruct> SerializeStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStructVariant> SerializeStructVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}
