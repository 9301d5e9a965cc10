//! The document value model: [`Value`] and [`Map`], their postcard encoding on flash
//! ([`encode`] / [`decode`]), JSON text ([`from_json`] / [`to_json`]), dotted paths
//! ([`get_path`]), update patches ([`apply_patch`]) and the total order used by queries
//! ([`compare`]). docs/SPEC.md, section "Document encoding", is the normative description.
//!
//! **Depth.** A scalar has depth 0; an array or map has depth 1 + the depth of its deepest
//! element (so `{"a":1}` has depth 1 and `{"a":[1]}` depth 2). Every parser here takes a
//! `max_depth` and returns [`Error::TooDeep`] past it; `max_depth` is clamped to
//! [`MAX_DEPTH_LIMIT`], which also bounds [`encode`]. [`Value::depth`], [`encode`],
//! [`to_json`], [`get_path`] and [`compare`] walk values with an explicit heap stack, so they
//! never recurse on the shape of a value.
//!
//! **Stack safety of hand-built values.** `Drop`, `Clone`, `PartialEq` and `Debug` are the
//! derived, recursive ones (an iterative `Drop` would forbid moving fields out of a `Value` in
//! a `match`). Values produced by this module are at most [`MAX_DEPTH_LIMIT`] deep, which is
//! safe; code that builds values by hand must not nest them much deeper than that.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::cmp::Ordering;
use core::fmt::{self, Write as _};
use core::slice;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Nesting limit used when the configuration does not set one.
pub const DEFAULT_MAX_DEPTH: usize = 16;

/// Hard ceiling on any `max_depth` argument (larger ones are clamped) and on what [`encode`]
/// accepts. It bounds the stack used by the serde-based parsers on hostile input.
pub const MAX_DEPTH_LIMIT: usize = 64;

/// Top-level fields the engine maintains itself; patches cannot touch them. (`_tags` is a body
/// field that writes keep indexed, not one of these.)
pub const RESERVED_FIELDS: [&str; 4] = ["_id", "_ver", "_ts", "_exp"];

/// Whether `name` is one of [`RESERVED_FIELDS`].
pub fn is_reserved_field(name: &str) -> bool {
    RESERVED_FIELDS.contains(&name)
}

/// Key of the one-entry JSON object that stands for [`Value::Bytes`].
const BINARY_KEY: &str = "$binary";

// Postcard variant indices of `Value`. They are part of the on-flash format: never renumber.
const TAG_NULL: u8 = 0;
const TAG_BOOL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_FLOAT: u8 = 3;
const TAG_STR: u8 = 4;
const TAG_BYTES: u8 = 5;
const TAG_ARRAY: u8 = 6;
const TAG_MAP: u8 = 7;
const VARIANTS: &[&str] = &[
    "Null", "Bool", "Int", "Float", "Str", "Bytes", "Array", "Map",
];

/// One document value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit signed integer (JSON integer literals that fit).
    Int(i64),
    /// A 64-bit float (JSON numbers with a fraction or exponent, or out of `i64` range).
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Raw bytes (JSON `{"$binary":"<base64>"}`).
    Bytes(Vec<u8>),
    /// An ordered list.
    Array(Vec<Value>),
    /// An insertion-ordered map with unique string keys.
    Map(Map),
}

/// An insertion-ordered map with unique keys. Lookups are linear: documents are small and a
/// flat vector is the most compact representation in RAM.
#[derive(Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty map (does not allocate).
    pub const fn new() -> Self {
        Map {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Sets `key` to `value`. An existing key keeps its position and its old value is
    /// returned; a new key is appended.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.get_mut(&key) {
            Some(slot) => Some(core::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, keeping the order of the other entries.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Entries in insertion order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&str, &Value)> + ExactSizeIterator + Clone + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Entries in insertion order, values mutable.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&str, &mut Value)> + ExactSizeIterator + '_ {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + Clone + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Values in insertion order.
    pub fn values(
        &self,
    ) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// [`get_path`] starting at this map (the first segment is a key of this map).
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        if first.is_empty() {
            return None;
        }
        let v = self.get(first)?;
        match rest {
            Some(r) => get_path(v, r),
            None => Some(v),
        }
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Later duplicates replace earlier values in place (same rule as [`Map::insert`]).
impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut m = Map::new();
        m.extend(iter);
        m
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = alloc::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Self {
        Value::Map(v)
    }
}

impl Value {
    /// `"null"`, `"bool"`, `"int"`, `"float"`, `"string"`, `"bytes"`, `"array"` or `"map"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an `Int` (floats are not converted).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a `Float` or an `Int` (ints beyond 2^53 round).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The text, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an `Array`.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is a `Map`.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The map, mutably, if this is a `Map`.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Nesting depth (scalars 0, containers 1 + deepest element), computed with a heap stack
    /// whose size is proportional to the depth, never by recursion.
    pub fn depth(&self) -> usize {
        Frame::of(self).map_or(0, frame_depth)
    }
}

/// Iteration state over one container, used by every non-recursive walk in this module.
enum Frame<'a> {
    Array(slice::Iter<'a, Value>),
    Map(slice::Iter<'a, (String, Value)>),
}

impl<'a> Frame<'a> {
    fn of(v: &'a Value) -> Option<Self> {
        match v {
            Value::Array(a) => Some(Frame::Array(a.iter())),
            Value::Map(m) => Some(Frame::Map(m.entries.iter())),
            _ => None,
        }
    }

    /// Next element, with its key when the container is a map.
    fn next(&mut self) -> Option<(Option<&'a str>, &'a Value)> {
        match self {
            Frame::Array(it) => it.next().map(|v| (None, v)),
            Frame::Map(it) => it.next().map(|(k, v)| (Some(k.as_str()), v)),
        }
    }
}

/// Depth of the container whose iteration starts at `first`.
fn frame_depth(first: Frame<'_>) -> usize {
    let mut stack = Vec::new();
    stack.push(first);
    let mut max = 1;
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some((_, child)) => {
                if let Some(f) = Frame::of(child) {
                    stack.push(f);
                    max = max.max(stack.len());
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    max
}

// ---------------------------------------------------------------------------------------------
// Postcard encoding
// ---------------------------------------------------------------------------------------------

/// Appends the postcard encoding of `v` to `out` (see docs/SPEC.md). The bytes are identical
/// to `postcard::to_allocvec(v)` through the [`Serialize`] impl; this walker just needs no
/// recursion. Errors: [`Error::TooDeep`] past [`MAX_DEPTH_LIMIT`], [`Error::TooLarge`] for a
/// string or container longer than `u32::MAX` (unreadable on 32-bit targets). On error `out`
/// is left as it was.
pub fn encode(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let r = encode_walk(v, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_walk(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut next = Some(v);
    loop {
        if let Some(v) = next.take() {
            match v {
                Value::Null => out.push(TAG_NULL),
                Value::Bool(b) => out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]),
                Value::Int(i) => {
                    out.push(TAG_INT);
                    push_varint(out, zigzag(*i));
                }
                Value::Float(f) => {
                    out.push(TAG_FLOAT);
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
                Value::Str(s) => {
                    out.push(TAG_STR);
                    push_bytes(out, s.as_bytes())?;
                }
                Value::Bytes(b) => {
                    out.push(TAG_BYTES);
                    push_bytes(out, b)?;
                }
                Value::Array(a) => {
                    enter(&stack)?;
                    out.push(TAG_ARRAY);
                    push_len(out, a.len())?;
                    stack.push(Frame::Array(a.iter()));
                }
                Value::Map(m) => {
                    enter(&stack)?;
                    out.push(TAG_MAP);
                    push_len(out, m.len())?;
                    stack.push(Frame::Map(m.entries.iter()));
                }
            }
        }
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        match top.next() {
            Some((key, child)) => {
                if let Some(k) = key {
                    push_bytes(out, k.as_bytes())?;
                }
                next = Some(child);
            }
            None => {
                stack.pop();
            }
        }
    }
}

fn enter(stack: &[Frame<'_>]) -> Result<()> {
    if stack.len() >= MAX_DEPTH_LIMIT {
        Err(Error::TooDeep)
    } else {
        Ok(())
    }
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

/// Unsigned LEB128, as postcard writes it: 7 bits per byte, least significant group first.
fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| Error::TooLarge)?;
    push_varint(out, u64::from(len));
    Ok(())
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    push_len(out, b.len())?;
    out.extend_from_slice(b);
    Ok(())
}

/// The on-flash form: `Value` as a serde enum (variant index = postcard tag). Use [`to_json`]
/// for JSON text; this impl is the same for every serializer.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        const NAME: &str = "Value";
        match self {
            Value::Null => s.serialize_unit_variant(NAME, 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant(NAME, 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant(NAME, 2, "Int", i),
            Value::Float(f) => s.serialize_newtype_variant(NAME, 3, "Float", f),
            Value::Str(t) => s.serialize_newtype_variant(NAME, 4, "Str", t.as_str()),
            Value::Bytes(b) => s.serialize_newtype_variant(NAME, 5, "Bytes", &RawBytes(b)),
            Value::Array(a) => s.serialize_newtype_variant(NAME, 6, "Array", a.as_slice()),
            Value::Map(m) => s.serialize_newtype_variant(NAME, 7, "Map", m),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `serialize_bytes` (length + raw bytes) instead of a sequence of `u8`.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Postcard decoding
// ---------------------------------------------------------------------------------------------

/// Decodes one postcard-encoded value that must span all of `bytes`.
///
/// Errors: [`Error::TooDeep`] if it nests deeper than `max_depth` (clamped to
/// [`MAX_DEPTH_LIMIT`]); [`Error::Corrupt`] for anything malformed: unknown tag, bad bool,
/// bad varint, invalid UTF-8, truncation, trailing bytes, or a duplicate map key. Never
/// panics; recursion is bounded by the depth budget.
pub fn decode(bytes: &[u8], max_depth: usize) -> Result<Value> {
    let too_deep = Cell::new(false);
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let seed = PcSeed {
        budget: max_depth.min(MAX_DEPTH_LIMIT),
        too_deep: &too_deep,
        // Every element takes at least one byte: no honest length exceeds the input size,
        // so this caps what a hostile length can make us preallocate.
        cap: bytes.len(),
    };
    match seed.deserialize(&mut de) {
        Ok(v) => match de.finalize() {
            Ok([]) => Ok(v),
            _ => Err(Error::Corrupt),
        },
        Err(_) if too_deep.get() => Err(Error::TooDeep),
        Err(_) => Err(Error::Corrupt),
    }
}

/// Seed for one postcard `Value` with `budget` container levels left.
#[derive(Clone, Copy)]
struct PcSeed<'f> {
    budget: usize,
    too_deep: &'f Cell<bool>,
    cap: usize,
}

impl PcSeed<'_> {
    /// The seed for the elements of a container at this level, or the TooDeep error.
    fn child<E: de::Error>(self) -> core::result::Result<Self, E> {
        match self.budget.checked_sub(1) {
            Some(budget) => Ok(PcSeed { budget, ..self }),
            None => {
                self.too_deep.set(true);
                Err(E::custom("nested too deeply"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for PcSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Value, D::Error> {
        d.deserialize_enum("Value", VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for PcSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cairndb value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> core::result::Result<Value, A::Error> {
        let (tag, var): (u32, A::Variant) = data.variant()?;
        let tag = u8::try_from(tag).unwrap_or(u8::MAX);
        match tag {
            TAG_NULL => var.unit_variant().map(|()| Value::Null),
            TAG_BOOL => var.newtype_variant().map(Value::Bool),
            TAG_INT => var.newtype_variant().map(Value::Int),
            TAG_FLOAT => var.newtype_variant().map(Value::Float),
            TAG_STR => var.newtype_variant().map(Value::Str),
            TAG_BYTES => var.newtype_variant_seed(BytesSeed).map(Value::Bytes),
            TAG_ARRAY => var.newtype_variant_seed(PcArraySeed(self.child()?)),
            TAG_MAP => var.newtype_variant_seed(PcMapSeed(self.child()?)),
            _ => Err(de::Error::custom("unknown value tag")),
        }
    }
}

/// Array body; the inner seed is already the element budget.
struct PcArraySeed<'f>(PcSeed<'f>);

impl<'de> DeserializeSeed<'de> for PcArraySeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PcArraySeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.0.cap));
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
}

/// Map body; the inner seed is already the element budget.
struct PcMapSeed<'f>(PcSeed<'f>);

impl<'de> DeserializeSeed<'de> for PcMapSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PcMapSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Value, A::Error> {
        // An entry is at least two bytes (key length + value tag).
        let cap = map.size_hint().unwrap_or(0).min(self.0.cap / 2);
        let mut out = Map::with_capacity(cap);
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self.0)?;
            // encode never writes duplicates, so one means the bytes are not ours.
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("duplicate map key"));
            }
        }
        Ok(Value::Map(out))
    }
}

struct BytesSeed;

impl<'de> DeserializeSeed<'de> for BytesSeed {
    type Value = Vec<u8>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for BytesSeed {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> core::result::Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> core::result::Result<Vec<u8>, E> {
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// Parses JSON text (UTF-8) into a value.
///
/// Integer literals that fit `i64` become `Int`; all other numbers (fractions, exponents,
/// integers outside `i64`) become `Float`. An object whose only key is `"$binary"` with a
/// string value becomes `Bytes` (standard base64 with padding). A duplicate key keeps the
/// position of its first occurrence and the value of its last.
///
/// Errors: [`Error::TooDeep`] past `max_depth` (clamped to [`MAX_DEPTH_LIMIT`]);
/// [`Error::Json`] for bad syntax, invalid UTF-8, trailing text, numbers out of `f64` range or
/// invalid base64. serde_json's own recursion limit (128) stays on as a second guard.
pub fn from_json(text: &[u8], max_depth: usize) -> Result<Value> {
    let too_deep = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(text);
    let seed = JsonSeed {
        budget: max_depth.min(MAX_DEPTH_LIMIT),
        bare: false,
        too_deep: &too_deep,
    };
    let parsed = seed.deserialize(&mut de);
    match parsed {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(_) => Err(Error::Json),
        },
        Err(_) if too_deep.get() => Err(Error::TooDeep),
        Err(_) => Err(Error::Json),
    }
}

#[derive(Clone, Copy)]
struct JsonSeed<'f> {
    budget: usize,
    /// No container at all, not even `{"$binary":..}`: set for the first value of an object
    /// that is already one level too deep, so the descent stops there.
    bare: bool,
    too_deep: &'f Cell<bool>,
}

impl JsonSeed<'_> {
    fn too_deep<E: de::Error>(self) -> E {
        self.too_deep.set(true);
        E::custom("nested too deeply")
    }
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> core::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> core::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> core::result::Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> core::result::Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> core::result::Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> core::result::Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> core::result::Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Value, A::Error> {
        let Some(budget) = self.budget.checked_sub(1) else {
            return Err(self.too_deep());
        };
        let child = JsonSeed {
            budget,
            bare: false,
            ..self
        };
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(child)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Value, A::Error> {
        // The budget is checked only once we know this is not `{"$binary": ...}`, which is a
        // scalar. At budget 0 the first value is still read, but bare: if it is a container
        // the object is too deep anyway.
        if self.bare {
            return Err(self.too_deep());
        }
        let child = JsonSeed {
            budget: self.budget.saturating_sub(1),
            bare: self.budget == 0,
            ..self
        };
        let Some(first_key) = map.next_key::<String>()? else {
            return match self.budget {
                0 => Err(self.too_deep()),
                _ => Ok(Value::Map(Map::new())),
            };
        };
        let first_val = map.next_value_seed(child)?;
        let mut pending = map.next_key::<String>()?;
        if pending.is_none() && first_key == BINARY_KEY {
            if let Value::Str(s) = &first_val {
                return b64_decode(s.as_bytes())
                    .map(Value::Bytes)
                    .ok_or_else(|| de::Error::custom("invalid base64"));
            }
        }
        if self.budget == 0 {
            return Err(self.too_deep());
        }
        let mut out = Map::new();
        out.insert(first_key, first_val);
        while let Some(k) = pending {
            let v = map.next_value_seed(child)?;
            out.insert(k, v);
            pending = map.next_key::<String>()?;
        }
        Ok(Value::Map(out))
    }
}

/// Appends compact JSON for `v` to `out`.
///
/// `Bytes` are written as `{"$binary":"<base64>"}`; NaN and infinities as `null`; finite
/// floats in shortest round-trip form that always has a `.` or an exponent (`1.0`, `1e300`),
/// so they read back as `Float`. Non-ASCII text is written as UTF-8, control characters
/// escaped. A map whose only entry is `"$binary"` with a string value reads back as `Bytes`.
pub fn to_json(v: &Value, out: &mut String) {
    // (container iterator, no element written yet)
    let mut stack: Vec<(Frame<'_>, bool)> = Vec::new();
    let mut next = Some(v);
    loop {
        if let Some(v) = next.take() {
            match v {
                Value::Null => out.push_str("null"),
                Value::Bool(true) => out.push_str("true"),
                Value::Bool(false) => out.push_str("false"),
                Value::Int(i) => {
                    // Writing into a String cannot fail.
                    let _ = write!(out, "{i}");
                }
                Value::Float(f) if f.is_finite() => {
                    // Debug is the shortest round-trip form and keeps ".0" or an exponent.
                    let _ = write!(out, "{f:?}");
                }
                Value::Float(_) => out.push_str("null"),
                Value::Str(s) => write_json_str(s, out),
                Value::Bytes(b) => {
                    out.push_str("{\"$binary\":\"");
                    b64_encode(b, out);
                    out.push_str("\"}");
                }
                Value::Array(a) => {
                    out.push('[');
                    stack.push((Frame::Array(a.iter()), true));
                }
                Value::Map(m) => {
                    out.push('{');
                    stack.push((Frame::Map(m.entries.iter()), true));
                }
            }
        }
        let Some((top, first)) = stack.last_mut() else {
            return;
        };
        match top.next() {
            Some((key, child)) => {
                if !core::mem::replace(first, false) {
                    out.push(',');
                }
                if let Some(k) = key {
                    write_json_str(k, out);
                    out.push(':');
                }
                next = Some(child);
            }
            None => {
                out.push(match top {
                    Frame::Array(_) => ']',
                    Frame::Map(_) => '}',
                });
                stack.pop();
            }
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Standard base64 alphabet symbol for the low 6 bits of `i`.
fn b64_sym(i: u32) -> char {
    let i = (i & 63) as u8;
    char::from(match i {
        0..=25 => b'A' + i,
        26..=51 => b'a' + (i - 26),
        52..=61 => b'0' + (i - 52),
        62 => b'+',
        _ => b'/',
    })
}

fn b64_val(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Standard base64 with `=` padding.
fn b64_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        out.push(b64_sym(n >> 18));
        out.push(b64_sym(n >> 12));
        out.push(if chunk.len() > 1 {
            b64_sym(n >> 6)
        } else {
            '='
        });
        out.push(if chunk.len() > 2 { b64_sym(n) } else { '=' });
    }
}

/// Strict standard base64: padding required, no whitespace, unused bits must be zero (so
/// every byte string has exactly one accepted text).
fn b64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 != 0 {
        return None;
    }
    let groups = text.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (i, chunk) in text.chunks_exact(4).enumerate() {
        let &[a, b, c, d] = chunk else {
            return None;
        };
        let last = i + 1 == groups;
        let hi = (b64_val(a)? << 18) | (b64_val(b)? << 12);
        match (c, d) {
            (b'=', b'=') if last => {
                if hi & 0xffff != 0 {
                    return None;
                }
                out.push((hi >> 16) as u8);
            }
            (_, b'=') if last => {
                let n = hi | (b64_val(c)? << 6);
                if n & 0xff != 0 {
                    return None;
                }
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            }
            _ => {
                let n = hi | (b64_val(c)? << 6) | b64_val(d)?;
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            }
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// The value at a dotted path: each segment is a map key, or a decimal array index (`0`, `12`;
/// no sign, no leading zeros) when the current value is an array. `None` if any step is
/// missing, the path or a segment is empty, or a scalar is in the way. Keys containing `.`
/// cannot be addressed.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return None;
    }
    let mut cur = v;
    for seg in path.split('.') {
        if seg.is_empty() {
            return None;
        }
        cur = match cur {
            Value::Map(m) => m.get(seg)?,
            Value::Array(a) => a.get(parse_index(seg)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

pub(crate) fn parse_index(seg: &str) -> Option<usize> {
    let b = seg.as_bytes();
    if b.is_empty() || (b.len() > 1 && b.first() == Some(&b'0')) {
        return None;
    }
    let mut n: usize = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(usize::from(c - b'0'))?;
    }
    Some(n)
}

// ---------------------------------------------------------------------------------------------
// Patches
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Op {
    Set,
    Unset,
    Inc,
    Push,
    Pull,
}

fn parse_op(name: &str) -> Result<Op> {
    match name {
        "$set" => Ok(Op::Set),
        "$unset" => Ok(Op::Unset),
        "$inc" => Ok(Op::Inc),
        "$push" => Ok(Op::Push),
        "$pull" => Ok(Op::Pull),
        _ => Err(Error::InvalidPatch),
    }
}

/// Paths must be non-empty, have no empty segment, and not start at a reserved field.
fn check_path(path: &str) -> Result<()> {
    let first = path.split('.').next().unwrap_or(path);
    if path.is_empty() || path.split('.').any(str::is_empty) || is_reserved_field(first) {
        return Err(Error::InvalidPatch);
    }
    Ok(())
}

/// Checks everything about the patch that does not depend on the document.
fn validate_patch(patch: &Value) -> Result<&Map> {
    let Value::Map(ops) = patch else {
        return Err(Error::InvalidPatch);
    };
    for (name, operand) in ops.iter() {
        let op = parse_op(name)?;
        let Value::Map(args) = operand else {
            return Err(Error::InvalidPatch);
        };
        for (path, arg) in args.iter() {
            check_path(path)?;
            if matches!(op, Op::Inc) && !matches!(arg, Value::Int(_) | Value::Float(_)) {
                return Err(Error::InvalidPatch);
            }
            if matches!(op, Op::Push) {
                push_items(arg)?;
            }
        }
    }
    Ok(ops)
}

/// Applies an update patch to `doc`, all or nothing.
///
/// `patch` is `{"$set":{path:value,..}, "$unset":{path:any,..}, "$inc":{path:number,..},
/// "$push":{path:value,..}, "$pull":{path:operand,..}}` (any subset, any order). Operators run
/// in the order they appear, and their paths in order.
/// - `$set` replaces or adds the field, creating missing intermediate maps; an array step
///   must be an existing index.
/// - `$unset` removes the field (an array element is removed and later ones shift down);
///   a missing path is not an error.
/// - `$inc` adds the number: Int+Int stays Int (overflow is an error), any Float makes a
///   Float; a missing field is set to the operand (intermediate maps are created).
/// - `$push` appends the value to the array at the path, creating the array (and missing
///   intermediate maps) if the field is missing; `{"$each":[v,..]}` appends each `v`.
/// - `$pull` removes from the array at the path every element that matches the operand; a
///   missing path is not an error. An operand map whose first key is a field operator
///   (`{"$in":["a","b"]}`, `{"$gte":5}`) tests each element as a query filter tests a field
///   value; any other map is a filter document applied to each element (`{"qty":{"$lt":1}}`
///   removes maps whose `qty` is below 1, `{}` removes everything); any other operand removes
///   the elements that compare Equal to it (`1` also removes `1.0`). See `crate::query`.
///
/// Errors ([`Error::InvalidPatch`] unless noted): patch or operand not a map; unknown
/// operator; empty path or segment; a path whose first segment is one of
/// [`RESERVED_FIELDS`] (`_id`, `_ver`, `_ts`, `_exp`; other `_` names and nested ones are
/// ordinary);
/// `$inc` operand or target not a number; `$push`/`$pull` target present but not an array;
/// a `$push` operand map with `$` keys other than one `$each` array; a malformed `$pull`
/// filter operand (also [`Error::TooLarge`] for an over-long list, [`Error::InvalidArgument`]
/// for `$regex` without the `regex` feature); integer overflow or non-finite float result; a
/// scalar, or a missing array index, in the way of `$set`/`$inc`; [`Error::TooDeep`] if the
/// result nests deeper than `max_depth` (clamped to [`MAX_DEPTH_LIMIT`]). On error `doc` is
/// unchanged: the patch is validated first, then applied to a copy (so a patch needs RAM for
/// a second copy of the document) that replaces `doc` only on success.
pub fn apply_patch(doc: &mut Map, patch: &Value, max_depth: usize) -> Result<()> {
    let ops = validate_patch(patch)?;
    if ops
        .values()
        .all(|args| args.as_map().is_none_or(Map::is_empty))
    {
        return Ok(());
    }
    let mut work = doc.clone();
    for (name, operand) in ops.iter() {
        let op = parse_op(name)?;
        let Value::Map(args) = operand else {
            return Err(Error::InvalidPatch);
        };
        for (path, arg) in args.iter() {
            match op {
                Op::Set => set_path(&mut work, path, arg.clone())?,
                Op::Unset => unset_path(&mut work, path),
                Op::Inc => inc_path(&mut work, path, arg)?,
                Op::Push => push_path(&mut work, path, push_items(arg)?)?,
                Op::Pull => pull_path(&mut work, path, &Pull::new(arg, max_depth)?)?,
            }
        }
    }
    if frame_depth(Frame::Map(work.entries.iter())) > max_depth.min(MAX_DEPTH_LIMIT) {
        return Err(Error::TooDeep);
    }
    *doc = work;
    Ok(())
}

/// A container a patch path walks through.
enum Slot<'a> {
    Map(&'a mut Map),
    Array(&'a mut Vec<Value>),
}

/// Splits `path` into the parent path (if any) and the last segment.
fn split_last(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('.') {
        Some((parent, last)) => (Some(parent), last),
        None => (None, path),
    }
}

/// Walks to the container named by `path`, creating missing maps on the way.
fn walk_create<'a>(doc: &'a mut Map, path: Option<&str>) -> Result<Slot<'a>> {
    let mut cur = Slot::Map(doc);
    let Some(path) = path else {
        return Ok(cur);
    };
    for seg in path.split('.') {
        let next: &'a mut Value = match cur {
            Slot::Map(m) => {
                if !m.contains_key(seg) {
                    m.insert(seg.to_owned(), Value::Map(Map::new()));
                }
                m.get_mut(seg).ok_or(Error::InvalidPatch)?
            }
            Slot::Array(a) => parse_index(seg)
                .and_then(|i| a.get_mut(i))
                .ok_or(Error::InvalidPatch)?,
        };
        cur = match next {
            Value::Map(m) => Slot::Map(m),
            Value::Array(a) => Slot::Array(a),
            _ => return Err(Error::InvalidPatch),
        };
    }
    Ok(cur)
}

/// Walks to the container named by `path` if it exists.
fn walk_existing<'a>(doc: &'a mut Map, path: Option<&str>) -> Option<Slot<'a>> {
    let mut cur = Slot::Map(doc);
    let Some(path) = path else {
        return Some(cur);
    };
    for seg in path.split('.') {
        let next: &'a mut Value = match cur {
            Slot::Map(m) => m.get_mut(seg)?,
            Slot::Array(a) => a.get_mut(parse_index(seg)?)?,
        };
        cur = match next {
            Value::Map(m) => Slot::Map(m),
            Value::Array(a) => Slot::Array(a),
            _ => return None,
        };
    }
    Some(cur)
}

fn set_path(doc: &mut Map, path: &str, value: Value) -> Result<()> {
    let (parent, last) = split_last(path);
    match walk_create(doc, parent)? {
        Slot::Map(m) => {
            if let Some(slot) = m.get_mut(last) {
                *slot = value;
            } else {
                m.entries.push((last.to_owned(), value));
            }
        }
        Slot::Array(a) => {
            let slot = parse_index(last)
                .and_then(|i| a.get_mut(i))
                .ok_or(Error::InvalidPatch)?;
            *slot = value;
        }
    }
    Ok(())
}

fn unset_path(doc: &mut Map, path: &str) {
    let (parent, last) = split_last(path);
    match walk_existing(doc, parent) {
        Some(Slot::Map(m)) => {
            m.remove(last);
        }
        Some(Slot::Array(a)) => {
            if let Some(i) = parse_index(last).filter(|&i| i < a.len()) {
                a.remove(i);
            }
        }
        None => {}
    }
}

fn inc_path(doc: &mut Map, path: &str, delta: &Value) -> Result<()> {
    let (parent, last) = split_last(path);
    let slot = match walk_create(doc, parent)? {
        Slot::Map(m) => {
            if !m.contains_key(last) {
                m.insert(last.to_owned(), add_numbers(&Value::Int(0), delta)?);
                return Ok(());
            }
            m.get_mut(last)
        }
        Slot::Array(a) => parse_index(last).and_then(|i| a.get_mut(i)),
    };
    let slot = slot.ok_or(Error::InvalidPatch)?;
    *slot = add_numbers(slot, delta)?;
    Ok(())
}

/// The values a `$push` operand appends: `{"$each":[..]}` gives its elements, a map with other
/// `$` keys is refused (it would be a Mongo modifier we do not implement), anything else is
/// one value.
fn push_items(arg: &Value) -> Result<&[Value]> {
    match arg {
        Value::Map(m) if m.keys().any(|k| k.starts_with('$')) => match m.get("$each") {
            Some(Value::Array(items)) if m.len() == 1 => Ok(items),
            _ => Err(Error::InvalidPatch),
        },
        _ => Ok(slice::from_ref(arg)),
    }
}

fn push_path(doc: &mut Map, path: &str, items: &[Value]) -> Result<()> {
    let (parent, last) = split_last(path);
    let slot = match walk_create(doc, parent)? {
        Slot::Map(m) => {
            if !m.contains_key(last) {
                m.insert(last.to_owned(), Value::Array(Vec::new()));
            }
            m.get_mut(last)
        }
        Slot::Array(a) => parse_index(last).and_then(|i| a.get_mut(i)),
    };
    match slot {
        Some(Value::Array(a)) => {
            a.extend_from_slice(items);
            Ok(())
        }
        _ => Err(Error::InvalidPatch),
    }
}

/// What a `$pull` removes. Filter operands use `crate::query`: the one place where this
/// module calls the layer above it, so that `$pull` and finds share one matcher.
enum Pull<'a> {
    Equal(&'a Value),
    Matching(crate::query::Filter),
}

impl<'a> Pull<'a> {
    /// Compiled before the document is looked at, so a bad operand fails on any document.
    fn new(arg: &'a Value, max_depth: usize) -> Result<Self> {
        if !matches!(arg, Value::Map(_)) {
            return Ok(Pull::Equal(arg));
        }
        let limits = crate::query::Limits {
            max_depth,
            ..Default::default()
        };
        match crate::query::Filter::for_elements(arg, &limits) {
            Ok(f) => Ok(Pull::Matching(f)),
            Err(Error::BadFilter) => Err(Error::InvalidPatch),
            Err(e) => Err(e),
        }
    }

    fn hits(&self, v: &Value) -> Result<bool> {
        match self {
            Pull::Equal(x) => Ok(compare(v, x) == Ordering::Equal),
            Pull::Matching(f) => f.try_matches(v),
        }
    }
}

fn pull_path(doc: &mut Map, path: &str, pull: &Pull<'_>) -> Result<()> {
    let (parent, last) = split_last(path);
    let target = match walk_existing(doc, parent) {
        Some(Slot::Map(m)) => m.get_mut(last),
        Some(Slot::Array(a)) => parse_index(last).and_then(|i| a.get_mut(i)),
        None => None,
    };
    match target {
        None => Ok(()),
        Some(Value::Array(items)) => {
            let mut kept = Vec::with_capacity(items.len());
            // On error the working copy is discarded, so a half-drained array never escapes.
            for e in items.drain(..) {
                if !pull.hits(&e)? {
                    kept.push(e);
                }
            }
            *items = kept;
            Ok(())
        }
        Some(_) => Err(Error::InvalidPatch),
    }
}

fn add_numbers(a: &Value, b: &Value) -> Result<Value> {
    let sum = match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            return x.checked_add(*y).map(Value::Int).ok_or(Error::InvalidPatch)
        }
        (Value::Int(i), Value::Float(f)) | (Value::Float(f), Value::Int(i)) => *i as f64 + *f,
        (Value::Float(x), Value::Float(y)) => x + y,
        _ => return Err(Error::InvalidPatch),
    };
    // Infinity/NaN would not survive JSON; treat like integer overflow.
    if sum.is_finite() {
        Ok(Value::Float(sum))
    } else {
        Err(Error::InvalidPatch)
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

/// The total order used by queries and indexes:
/// `Null < Bool < numbers < Str < Bytes < Array < Map`.
///
/// - `false < true`.
/// - `Int` and `Float` compare by exact numeric value (no rounding of the `i64`), so
///   `Int(1) == Float(1.0)` and `Float(-0.0) == Int(0)`; every NaN sorts after every number
///   and all NaNs are equal.
/// - `Str` and `Bytes` compare bytewise (UTF-8 bytes for strings).
/// - Arrays compare element by element, a proper prefix first; maps compare entry by entry
///   in stored order, by key (bytewise) then value, a proper prefix first.
///
/// "Equal" here is not `==`: `Int(1)` and `Float(1.0)` compare equal but are different
/// values. Walks with a heap stack, never by recursion.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    let mut stack: Vec<(Frame<'_>, Frame<'_>)> = Vec::new();
    let mut pair = Some((a, b));
    loop {
        if let Some((x, y)) = pair.take() {
            let o = rank(x).cmp(&rank(y));
            if o != Ordering::Equal {
                return o;
            }
            match (Frame::of(x), Frame::of(y)) {
                (Some(fx), Some(fy)) => stack.push((fx, fy)),
                _ => {
                    let o = compare_scalars(x, y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
            }
        }
        let Some((fx, fy)) = stack.last_mut() else {
            return Ordering::Equal;
        };
        match (fx.next(), fy.next()) {
            (Some((kx, x)), Some((ky, y))) => {
                let o = kx.cmp(&ky);
                if o != Ordering::Equal {
                    return o;
                }
                pair = Some((x, y));
            }
            (None, None) => {
                stack.pop();
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
        }
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Str(_) => 3,
        Value::Bytes(_) => 4,
        Value::Array(_) => 5,
        Value::Map(_) => 6,
    }
}

/// Same-rank scalars (containers are handled by [`compare`]).
fn compare_scalars(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(i), Value::Float(f)) => compare_int_float(*i, *f),
        (Value::Float(f), Value::Int(i)) => compare_int_float(*i, *f).reverse(),
        (Value::Float(x), Value::Float(y)) => compare_floats(*x, *y),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn compare_floats(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Neither is NaN, so partial_cmp is total here (and -0.0 == 0.0).
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Exact comparison of an `i64` with an `f64`.
fn compare_int_float(i: i64, f: f64) -> Ordering {
    // 2^63: the first float above every i64 (i64::MAX itself rounds to it as a float).
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || f >= TWO_POW_63 {
        return Ordering::Less;
    }
    if f < -TWO_POW_63 {
        return Ordering::Greater;
    }
    // In [-2^63, 2^63) the cast truncates exactly, and the truncated value is itself an
    // exactly representable float, so both steps below are lossless.
    let t = f as i64;
    match i.cmp(&t) {
        Ordering::Equal => compare_floats(t as f64, f),
        o => o,
    }
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
