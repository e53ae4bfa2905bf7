//! Tests of arguments through serde: placeholders in and out, and property-style checks that
//! [`to_json_with_attachments`] is `serde_json::to_string` when there are no bytes and that
//! [`Payload::deserialize`] agrees with `serde_json::from_value(payload.to_value())`.
//!
//! The random values come from a small seeded generator, so every run checks the same cases.

use crate::protocol::socketio::{ArgsError, Payload, to_json_with_attachments};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

/// xorshift64*: enough randomness to explore shapes, and reproducible. With `wild` floats
/// off, floats are ones that serde_json parses back exactly (it does not promise that for
/// every float without its `float_roundtrip` feature).
struct Rng(u64, bool);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed, true)
    }
    fn tame(seed: u64) -> Self {
        Rng(seed, false)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, in_ten: u64) -> bool {
        self.below(10) < in_ten
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            " ",
            "\"",
            "\\",
            "/",
            "\n",
            "\t",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "é",
            "\u{2028}",
            "😀",
            "_placeholder",
            "num",
            "{",
            "[",
            ",",
        ];
        (0..self.below(6))
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn bytes(&mut self) -> Vec<u8> {
        (0..self.below(5)).map(|_| self.next() as u8).collect()
    }
    fn f64(&mut self) -> f64 {
        if !self.1 {
            return f64::from(self.next() as i16) / 4.0;
        }
        match self.below(8) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => -0.0,
            3 => 1e300,
            4 => f64::MIN_POSITIVE,
            5 => (self.next() as i64) as f64,
            _ => f64::from_bits(self.next()),
        }
    }
    fn value(&mut self, depth: u32) -> Value {
        let leaf = depth == 0 || self.chance(4);
        match (leaf, self.below(6)) {
            (true, 0) => Value::Null,
            (true, 1) => Value::Bool(self.chance(5)),
            (true, 2) => json!(self.next()),
            (true, 3) => json!(self.next() as i64),
            (true, 4) => {
                serde_json::Number::from_f64(self.f64()).map_or(Value::Null, Value::Number)
            }
            (true, _) => Value::String(self.string()),
            (false, n) if n % 2 == 0 => {
                Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect())
            }
            (false, _) => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.string(), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
struct UnitStruct;

#[derive(Clone, Debug, Deserialize, Eq, Ord, PartialEq, PartialOrd, Serialize)]
struct Newtype(String);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
struct Pair(i16, Option<u8>);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
enum Plain {
    Unit,
    Newtype(i32),
    Tuple(u8, String),
    Struct { a: Option<bool>, b: Vec<i64> },
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tagged {
    Move { x: i32, y: i32 },
    Say { text: String },
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(untagged)]
enum Untagged {
    Number(u32),
    Text(String),
    List(Vec<bool>),
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
struct Extra {
    extra_a: u8,
    extra_b: String,
}

/// Many serde shapes, no bytes.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Everything {
    name: String,
    unsigned: u64,
    signed: i64,
    float: f64,
    big: (i128, u128),
    letter: char,
    flag: bool,
    maybe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    skipped: Option<u8>,
    #[serde(rename = "renamed-field")]
    renamed: u16,
    list: Vec<Plain>,
    int_keys: BTreeMap<i32, String>,
    bool_keys: BTreeMap<bool, u8>,
    hash: HashMap<String, Vec<Option<f32>>>,
    unit: (),
    unit_struct: UnitStruct,
    newtype: Newtype,
    pair: Pair,
    tagged: Tagged,
    untagged: Vec<Untagged>,
    numbers_not_bytes: Vec<u8>,
    #[serde(flatten)]
    extra: Extra,
    json: Value,
}

fn everything(rng: &mut Rng) -> Everything {
    let plain = |rng: &mut Rng| match rng.below(4) {
        0 => Plain::Unit,
        1 => Plain::Newtype(rng.next() as i32),
        2 => Plain::Tuple(rng.next() as u8, rng.string()),
        _ => Plain::Struct {
            a: rng.chance(5).then(|| rng.chance(5)),
            b: (0..rng.below(3)).map(|_| rng.next() as i64).collect(),
        },
    };
    Everything {
        name: rng.string(),
        unsigned: rng.next(),
        signed: rng.next() as i64,
        // NaN and infinities serialize as null, which does not read back as f64; keep those
        // for `json`, where serialization alone is compared.
        float: {
            let f = rng.f64();
            if f.is_finite() { f } else { 0.5 }
        },
        // Through a `Value` (the path with attachments), numbers have 64 bits.
        big: (i128::from(rng.next() as i64), u128::from(rng.next())),
        letter: rng.string().chars().next().unwrap_or('x'),
        flag: rng.chance(5),
        maybe: rng.chance(5).then(|| rng.string()),
        skipped: rng.chance(5).then(|| rng.next() as u8),
        renamed: rng.next() as u16,
        list: (0..rng.below(4)).map(|_| plain(rng)).collect(),
        int_keys: (0..rng.below(4))
            .map(|_| (rng.next() as i32, rng.string()))
            .collect(),
        bool_keys: (0..rng.below(3))
            .map(|_| (rng.chance(5), rng.next() as u8))
            .collect(),
        hash: (0..rng.below(3))
            .map(|_| {
                let floats = (0..rng.below(3))
                    .map(|_| rng.chance(5).then(|| rng.next() as u16 as f32 / 4.0))
                    .collect();
                (rng.string(), floats)
            })
            .collect(),
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype(rng.string()),
        pair: Pair(rng.next() as i16, rng.chance(5).then(|| rng.next() as u8)),
        tagged: if rng.chance(5) {
            Tagged::Move {
                x: rng.next() as i32,
                y: rng.next() as i32,
            }
        } else {
            Tagged::Say { text: rng.string() }
        },
        untagged: (0..rng.below(3))
            .map(|_| match rng.below(3) {
                0 => Untagged::Number(rng.next() as u32),
                1 => Untagged::Text(rng.string()),
                _ => Untagged::List((0..rng.below(3)).map(|_| rng.chance(5)).collect()),
            })
            .collect(),
        numbers_not_bytes: rng.bytes(),
        extra: Extra {
            extra_a: rng.next() as u8,
            extra_b: rng.string(),
        },
        json: {
            // Objects with string keys that flatten could take for its own fields would
            // not read back; keep `json` to arrays and scalars.
            match rng.value(3) {
                Value::Object(_) => Value::Null,
                other => other,
            }
        },
    }
}

/// Bytes in every position serde can put them.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
struct Binary {
    id: u32,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    buf: ByteBuf,
    shared: bytes::Bytes,
    maybe: Option<ByteBuf>,
    chunks: Vec<ByteBuf>,
    by_name: BTreeMap<String, ByteBuf>,
    by_number: BTreeMap<u8, ByteBuf>,
    nested: Option<Box<Binary>>,
    tuple: (ByteBuf, String),
    numbers: Vec<u8>,
    variant: WithBytes,
    tagged: TaggedBytes,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
enum WithBytes {
    Nothing,
    One(ByteBuf),
    Two(ByteBuf, ByteBuf),
    Named { data: ByteBuf, len: usize },
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(tag = "kind")]
enum TaggedBytes {
    Image { png: ByteBuf },
    Empty,
}

fn binary(rng: &mut Rng, depth: u32) -> Binary {
    let buf = |rng: &mut Rng| ByteBuf::from(rng.bytes());
    Binary {
        id: rng.next() as u32,
        blob: rng.bytes(),
        buf: buf(rng),
        shared: bytes::Bytes::from(rng.bytes()),
        maybe: rng.chance(5).then(|| buf(rng)),
        chunks: (0..rng.below(3)).map(|_| buf(rng)).collect(),
        by_name: (0..rng.below(3))
            .map(|_| (rng.string(), buf(rng)))
            .collect(),
        by_number: (0..rng.below(3))
            .map(|_| (rng.next() as u8, buf(rng)))
            .collect(),
        nested: (depth > 0 && rng.chance(5)).then(|| Box::new(binary(rng, depth - 1))),
        tuple: (buf(rng), rng.string()),
        numbers: rng.bytes(),
        variant: match rng.below(4) {
            0 => WithBytes::Nothing,
            1 => WithBytes::One(buf(rng)),
            2 => WithBytes::Two(buf(rng), buf(rng)),
            _ => WithBytes::Named {
                data: buf(rng),
                len: rng.below(100) as usize,
            },
        },
        tagged: if rng.chance(5) {
            TaggedBytes::Image { png: buf(rng) }
        } else {
            TaggedBytes::Empty
        },
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON in test")
}

/// Serializes with attachments and checks the JSON is serde_json's byte for byte.
fn same_as_serde_json<T: Serialize + Debug>(value: &T) {
    let expected = serde_json::to_string(value).expect("serde_json serializes it");
    let (json, attachments) = to_json_with_attachments(value).expect("serializes");
    assert_eq!(json, expected, "{value:?}");
    assert!(attachments.is_empty());
}

/// `deserialize` and `from_value(to_value())` agree on the payload, for `T`.
fn both_ways<T: DeserializeOwned + PartialEq + Debug>(payload: &Payload) -> Option<T> {
    let direct = payload.deserialize::<T>();
    let via_value = payload
        .to_value()
        .and_then(|v| serde_json::from_value::<T>(v).map_err(ArgsError::Json));
    match (direct, via_value) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{}", payload.raw().get());
            Some(a)
        }
        (Err(_), Err(_)) => None,
        (a, b) => panic!(
            "deserialize and to_value disagree on {} with {:?}: {a:?} / {b:?}",
            payload.raw().get(),
            payload.attachments()
        ),
    }
}

#[test]
fn serialization_without_bytes_is_serde_json() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..500 {
        let value = everything(&mut rng);
        same_as_serde_json(&value);
        same_as_serde_json(&("event", &value, 1, [&value]));
        same_as_serde_json(&rng.value(5));
        same_as_serde_json(&rng.f64());
        same_as_serde_json(&Some(rng.string()));
    }
    same_as_serde_json(&());
    same_as_serde_json(&UnitStruct);
    same_as_serde_json(&Plain::Unit);
    same_as_serde_json(&vec![1u8, 2, 3]);
    same_as_serde_json(&"\u{2028}\"\\\u{1}");
    same_as_serde_json(&HashMap::from([(1u64, 'x'), (2, '"')]));
    same_as_serde_json(&BTreeMap::from([(Newtype("k".into()), 1)]));
    same_as_serde_json(&raw(r#"{"b" : [1, 2.50]}"#));
    same_as_serde_json(&(i128::MIN, u128::MAX));
}

#[test]
fn serialized_values_read_back() {
    let mut rng = Rng::tame(7);
    for _ in 0..300 {
        let value = everything(&mut rng);
        let payload = Payload::from_serialize(&value).unwrap();
        assert!(!payload.is_binary());
        assert_eq!(both_ways::<Everything>(&payload), Some(value));
    }
}

#[test]
fn serialization_errors_are_serde_json_errors() {
    // A map key that is not a string (or a number, bool or unit variant).
    let map = BTreeMap::from([(vec![1u8], 1)]);
    assert!(serde_json::to_string(&map).is_err());
    assert!(matches!(
        to_json_with_attachments(&map),
        Err(ArgsError::Json(_))
    ));
    // Bytes as a map key: serde_json refuses it, and so do we.
    let map = BTreeMap::from([(ByteBuf::from(vec![1u8]), 1)]);
    assert!(serde_json::to_string(&map).is_err());
    assert!(to_json_with_attachments(&map).is_err());
}

#[test]
fn bytes_become_placeholders_in_order() {
    let value = json!({"a": 1});
    let args = (
        "up",
        serde_bytes::Bytes::new(&[1, 2]),
        vec![ByteBuf::from(vec![3]), ByteBuf::from(vec![])],
        Some(bytes::Bytes::from_static(&[4])),
        BTreeMap::from([("k", ByteBuf::from(vec![5]))]),
        &value,
        vec![6u8],
    );
    let (json, attachments) = to_json_with_attachments(&args).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"["up",{"_placeholder":true,"num":0},"#,
            r#"[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}],"#,
            r#"{"_placeholder":true,"num":3},{"k":{"_placeholder":true,"num":4}},"#,
            r#"{"a":1},[6]]"#
        )
    );
    assert_eq!(
        attachments,
        vec![vec![1, 2], vec![3], vec![], vec![4], vec![5]]
    );
}

#[test]
fn nested_struct_with_several_byte_fields() {
    #[derive(Debug, Deserialize, PartialEq, Serialize)]
    struct Inner {
        label: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    }
    #[derive(Debug, Deserialize, PartialEq, Serialize)]
    struct Outer {
        a: (u8, ByteBuf),
        inner: Vec<Inner>,
        map: BTreeMap<String, Option<ByteBuf>>,
        tail: bytes::Bytes,
    }
    let outer = Outer {
        a: (1, ByteBuf::from(vec![10])),
        inner: vec![
            Inner {
                label: "x".into(),
                data: vec![11, 12],
            },
            Inner {
                label: "y".into(),
                data: vec![],
            },
        ],
        map: BTreeMap::from([
            ("none".into(), None),
            ("some".into(), Some(ByteBuf::from(vec![13]))),
        ]),
        tail: bytes::Bytes::from_static(&[14, 15]),
    };
    let (json, attachments) = to_json_with_attachments(&outer).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"a":[1,{"_placeholder":true,"num":0}],"#,
            r#""inner":[{"label":"x","data":{"_placeholder":true,"num":1}},"#,
            r#"{"label":"y","data":{"_placeholder":true,"num":2}}],"#,
            r#""map":{"none":null,"some":{"_placeholder":true,"num":3}},"#,
            r#""tail":{"_placeholder":true,"num":4}}"#
        )
    );
    assert_eq!(
        attachments,
        vec![vec![10], vec![11, 12], vec![], vec![13], vec![14, 15]]
    );
    let payload = Payload::from_raw(raw(&json), attachments);
    assert_eq!(payload.deserialize::<Outer>().unwrap(), outer);
    assert_eq!(both_ways::<Outer>(&payload), Some(outer));
}

#[test]
fn binary_values_round_trip_both_ways() {
    let mut rng = Rng::tame(99);
    for _ in 0..300 {
        let value = binary(&mut rng, 2);
        let args = ("ev", &value);
        let payload = Payload::from_serialize(&args).unwrap();
        // Every placeholder is numbered in order of appearance.
        let placeholders = payload.raw().get().matches("\"_placeholder\":true").count();
        assert_eq!(placeholders, payload.attachments().len());
        assert_eq!(
            both_ways::<(String, Binary)>(&payload),
            Some(("ev".to_owned(), value))
        );
        // The same payload as loose JSON.
        let loose = both_ways::<Value>(&payload).expect("any JSON reads as a Value");
        assert!(!has_placeholder(&loose), "{loose}");
    }
}

#[test]
fn placeholders_are_replaced_for_value_and_typed_reads() {
    let payload = Payload::from_raw(
        raw(r#"{"a":[1,{"_placeholder":true,"num":0}],"b":{"_placeholder":true,"num":1}}"#),
        vec![vec![1, 2, 3], vec![]],
    );
    assert_eq!(
        payload.to_value().unwrap(),
        json!({"a": [1, [1, 2, 3]], "b": []})
    );

    #[derive(Debug, Deserialize, PartialEq)]
    struct Typed {
        a: (u8, ByteBuf),
        b: bytes::Bytes,
    }
    assert_eq!(
        payload.deserialize::<Typed>().unwrap(),
        Typed {
            a: (1, ByteBuf::from(vec![1, 2, 3])),
            b: bytes::Bytes::new(),
        }
    );
    #[derive(Debug, Deserialize, PartialEq)]
    struct AsNumbers {
        a: (u8, Vec<u8>),
        b: Vec<u16>,
    }
    assert_eq!(
        both_ways::<AsNumbers>(&payload),
        Some(AsNumbers {
            a: (1, vec![1, 2, 3]),
            b: vec![],
        })
    );
    // A placeholder is an array of numbers, so it is no map.
    assert!(
        both_ways::<HashMap<String, Value>>(&Payload::from_raw(
            raw(r#"{"_placeholder":true,"num":0}"#),
            vec![vec![1]]
        ))
        .is_none()
    );
    // Fixed-size arrays and tuples read from attachments too.
    let payload = Payload::from_raw(raw(r#"[{"_placeholder":true,"num":0}]"#), vec![vec![7, 8]]);
    assert_eq!(both_ways::<([u8; 2],)>(&payload), Some(([7, 8],)));
    assert_eq!(both_ways::<((u8, u8),)>(&payload), Some(((7, 8),)));
    assert_eq!(both_ways::<([u8; 3],)>(&payload), None);
    assert_eq!(both_ways::<(u8,)>(&payload), None);
}

#[test]
fn placeholder_numbers_out_of_range_are_errors() {
    for (json, attachments) in [
        (r#"[{"_placeholder":true,"num":1}]"#, 1),
        (r#"[{"_placeholder":true,"num":-1}]"#, 1),
        (r#"[{"_placeholder":true,"num":0.0}]"#, 1),
        (r#"[{"_placeholder":true,"num":"0"}]"#, 1),
        (r#"[{"_placeholder":true}]"#, 1),
        (r#"{"a":[{"b":{"_placeholder":true,"num":5}}]}"#, 3),
    ] {
        let payload = Payload::from_raw(raw(json), vec![vec![0]; attachments]);
        assert!(
            matches!(payload.to_value(), Err(ArgsError::Placeholder { .. })),
            "{json}"
        );
        assert!(
            matches!(
                payload.deserialize::<Value>(),
                Err(ArgsError::Placeholder { .. })
            ),
            "{json}"
        );
    }
    let err = Payload::from_raw(raw(r#"[{"_placeholder":true,"num":4}]"#), vec![vec![]])
        .to_value()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "placeholder for attachment 4, but there are 1"
    );
}

#[test]
fn without_attachments_placeholders_are_plain_data() {
    // A text EVENT is never reconstructed, in the reference either: the object stays.
    let payload = Payload::from_raw(raw(r#"["ev",{"_placeholder":true,"num":0}]"#), vec![]);
    assert_eq!(
        payload.to_value().unwrap(),
        json!(["ev", {"_placeholder": true, "num": 0}])
    );
    assert!(both_ways::<Value>(&payload).is_some());
}

#[test]
fn raw_values_keep_their_text() {
    // Out: a RawValue passes through the serializer untouched, next to bytes.
    let inner = raw(r#"{"z" : 1}"#);
    let (json, attachments) =
        to_json_with_attachments(&(&inner, serde_bytes::Bytes::new(&[1]))).unwrap();
    assert_eq!(json, r#"[{"z" : 1},{"_placeholder":true,"num":0}]"#);
    assert_eq!(attachments, vec![vec![1]]);
    // In: a RawValue argument keeps its placeholders, for a relay.
    let payload = Payload::from_raw(raw(&json), attachments);
    let (a, b): (Box<RawValue>, Box<RawValue>) = payload.deserialize().unwrap();
    assert_eq!(a.get(), r#"{"z":1}"#);
    assert_eq!(b.get(), r#"{"_placeholder":true,"num":0}"#);
    assert_eq!(payload.raw().get(), json);
}

#[test]
fn enums_with_placeholders_read_like_arrays_of_numbers() {
    let one = vec![vec![1u8, 2]];
    let empty = vec![vec![]];
    let cases: &[(&str, &[Vec<u8>])] = &[
        (r#"{"One":{"_placeholder":true,"num":0}}"#, &one),
        (
            r#"{"Two":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]}"#,
            &one,
        ),
        (r#"{"Two":{"_placeholder":true,"num":0}}"#, &one),
        (r#"{"Two":{"_placeholder":true,"num":0}}"#, &empty),
        (
            r#"{"Named":{"data":{"_placeholder":true,"num":0},"len":2}}"#,
            &one,
        ),
        (r#"{"Named":{"_placeholder":true,"num":0}}"#, &one),
        (r#"{"Nothing":{"_placeholder":true,"num":0}}"#, &empty),
        (r#"{"Nothing":null}"#, &one),
        (r#""Nothing""#, &one),
        (r#"{"_placeholder":true,"num":0}"#, &one),
        (r#"{"One":[1,2],"Two":[]}"#, &one),
        ("{}", &one),
        ("[]", &one),
        ("3", &one),
    ];
    for (json, attachments) in cases {
        let payload = Payload::from_raw(raw(json), attachments.to_vec());
        both_ways::<WithBytes>(&payload);
        both_ways::<Plain>(&payload);
        both_ways::<TaggedBytes>(&payload);
        both_ways::<Untagged>(&payload);
        both_ways::<Option<WithBytes>>(&payload);
    }
    let payload = Payload::from_raw(raw(cases[1].0), one.clone());
    assert_eq!(
        payload.deserialize::<WithBytes>().unwrap(),
        WithBytes::Two(ByteBuf::from(vec![1, 2]), ByteBuf::from(vec![1, 2]))
    );
}

#[test]
fn map_keys_read_as_serde_json_reads_them() {
    let payload = Payload::from_raw(
        raw(r#"{"1":{"_placeholder":true,"num":0},"-2":[],"true":null}"#),
        vec![vec![9]],
    );
    both_ways::<HashMap<i64, Value>>(&payload);
    both_ways::<HashMap<u8, Value>>(&payload);
    both_ways::<HashMap<String, Option<ByteBuf>>>(&payload);
    both_ways::<BTreeMap<bool, Value>>(&payload);
    let payload = Payload::from_raw(
        raw(r#"{"1":{"_placeholder":true,"num":0},"02":[],"1.5":[]," 3":[],"3 ":[],"":[]}"#),
        vec![vec![9]],
    );
    for key in ["1", "02", "1.5", " 3", "3 ", ""] {
        let one = format!(r#"{{"{key}":{{"_placeholder":true,"num":0}}}}"#);
        let p = Payload::from_raw(raw(&one), vec![vec![9]]);
        both_ways::<HashMap<u32, ByteBuf>>(&p);
        both_ways::<Vec<(f64, Vec<u8>)>>(&p);
        let direct = p.deserialize::<BTreeMap<String, BTreeMap<u8, u8>>>();
        assert!(direct.is_err());
        both_ways::<HashMap<i128, Vec<u8>>>(&p);
    }
    both_ways::<HashMap<String, Vec<u8>>>(&payload);
    #[derive(Debug, Deserialize, Eq, Hash, PartialEq)]
    enum K {
        Key,
    }
    let p = Payload::from_raw(
        raw(r#"{"Key":{"_placeholder":true,"num":0}}"#),
        vec![vec![1]],
    );
    assert_eq!(
        both_ways::<HashMap<K, ByteBuf>>(&p),
        Some(HashMap::from([(K::Key, ByteBuf::from(vec![1]))]))
    );
}

#[test]
fn random_json_with_placeholders_reads_the_same_both_ways() {
    let mut rng = Rng::new(0xb1a5);
    for _ in 0..2000 {
        let attachments: Vec<Vec<u8>> = (0..1 + rng.below(3)).map(|_| rng.bytes()).collect();
        let mut value = rng.value(4);
        sprinkle_placeholders(&mut rng, &mut value, attachments.len() as u64);
        let payload = Payload::from_raw(raw(&value.to_string()), attachments);
        both_ways::<Value>(&payload);
        both_ways::<Vec<Value>>(&payload);
        both_ways::<Vec<ByteBuf>>(&payload);
        both_ways::<Option<Vec<Option<Vec<u8>>>>>(&payload);
        both_ways::<HashMap<String, Value>>(&payload);
        both_ways::<(Value, Option<ByteBuf>)>(&payload);
        both_ways::<Untagged>(&payload);
        both_ways::<Plain>(&payload);
        both_ways::<WithBytes>(&payload);
    }
}

fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_placeholder),
        Value::Object(map) => {
            map.get("_placeholder") == Some(&Value::Bool(true)) || map.values().any(has_placeholder)
        }
        _ => false,
    }
}

/// Replaces some leaves of `value` with placeholders (sometimes out of range).
fn sprinkle_placeholders(rng: &mut Rng, value: &mut Value, attachments: u64) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| sprinkle_placeholders(rng, v, attachments)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| sprinkle_placeholders(rng, v, attachments)),
        _ => {
            if rng.chance(4) {
                let out_of_range = u64::from(rng.chance(1));
                let num = rng.below(attachments + out_of_range);
                *value = json!({"_placeholder": true, "num": num});
            }
        }
    }
    if rng.chance(1) {
        *value = Value::Array(vec![
            json!({"_placeholder": true, "num": rng.below(attachments)}),
            value.take(),
        ]);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let payload = Payload::from_raw(raw(&deep), vec![]);
    assert!(payload.to_value().is_err());
    assert!(payload.deserialize::<Value>().is_err());
    let payload = Payload::from_raw(raw(&deep), vec![vec![1]]);
    assert!(payload.to_value().is_err());
    assert!(payload.deserialize::<Value>().is_err());
}

#[test]
fn into_parts_and_accessors() {
    let payload = Payload::from_serialize(&(ByteBuf::from(vec![1]),)).unwrap();
    assert!(payload.is_binary());
    let (raw_json, attachments) = payload.clone().into_parts();
    assert_eq!(raw_json.get(), r#"[{"_placeholder":true,"num":0}]"#);
    assert_eq!(attachments, payload.attachments());
    assert!(
        ArgsError::Placeholder {
            num: None,
            attachments: 0
        }
        .to_string()
        .contains("placeholder")
    );
    let err = payload.deserialize::<(String,)>().unwrap_err();
    assert!(std::error::Error::source(&err).is_some());
}
