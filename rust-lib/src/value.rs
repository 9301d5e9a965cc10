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

/// Top-level fields the engine maintains itself; patches cannot touch them.
pub const RESERVED_FIELDS: [&str; 3] = ["_id", "_ver", "_ts"];

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
/// [`RESERVED_FIELDS`] (`_id`, `_ver`, `_ts`; other `_` names and nested ones are ordinary);
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
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use proptest::prelude::*;

    fn json(s: &str) -> Value {
        from_json(s.as_bytes(), DEFAULT_MAX_DEPTH).unwrap()
    }

    fn to_json_string(v: &Value) -> String {
        let mut s = String::new();
        to_json(v, &mut s);
        s
    }

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out).unwrap();
        out
    }

    fn doc(s: &str) -> Map {
        match json(s) {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    /// Equality that treats floats by bit pattern (NaN == NaN).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
            }
            _ => a == b,
        }
    }

    /// Tears a value down without recursion (the derived Drop would recurse).
    fn dismantle(v: Value) {
        let mut stack = vec![v];
        while let Some(mut x) = stack.pop() {
            match &mut x {
                Value::Array(a) => stack.append(a),
                Value::Map(m) => stack.extend(m.entries.drain(..).map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    fn nested_arrays(depth: usize) -> Value {
        let mut v = Value::Int(1);
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    }

    // ---- Map and Value basics ----

    #[test]
    fn map_keeps_insertion_order_and_unique_keys() {
        let mut m = Map::new();
        assert!(m.is_empty());
        assert_eq!(m.insert("b".into(), Value::Int(1)), None);
        assert_eq!(m.insert("a".into(), Value::Int(2)), None);
        assert_eq!(m.insert("c".into(), Value::Int(3)), None);
        assert_eq!(m.insert("b".into(), Value::Int(4)), Some(Value::Int(1)));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(m.get("b"), Some(&Value::Int(4)));
        assert!(m.contains_key("a") && !m.contains_key("z"));
        *m.get_mut("a").unwrap() = Value::Null;
        assert_eq!(m.remove("a"), Some(Value::Null));
        assert_eq!(m.remove("a"), None);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(m.len(), 2);
        let m2: Map = [
            ("x".to_string(), Value::Int(1)),
            ("x".to_string(), Value::Int(2)),
        ]
        .into_iter()
        .collect();
        assert_eq!(m2.len(), 1);
        assert_eq!(m2.get("x"), Some(&Value::Int(2)));
    }

    #[test]
    fn type_names_and_accessors() {
        let cases = [
            (Value::Null, "null"),
            (Value::Bool(true), "bool"),
            (Value::Int(1), "int"),
            (Value::Float(1.0), "float"),
            (Value::from("s"), "string"),
            (Value::Bytes(vec![1]), "bytes"),
            (Value::Array(vec![]), "array"),
            (Value::Map(Map::new()), "map"),
        ];
        for (v, n) in &cases {
            assert_eq!(v.type_name(), *n);
        }
        assert_eq!(Value::Int(3).as_i64(), Some(3));
        assert_eq!(Value::Float(3.0).as_i64(), None);
        assert_eq!(Value::Int(3).as_f64(), Some(3.0));
        assert_eq!(Value::Float(2.5).as_f64(), Some(2.5));
        assert_eq!(Value::from("x").as_str(), Some("x"));
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        assert_eq!(Value::Bytes(vec![7]).as_bytes(), Some(&[7u8][..]));
        assert_eq!(json("[1]").as_array(), Some(&[Value::Int(1)][..]));
        assert_eq!(json("{}").as_map(), Some(&Map::new()));
        assert!(Value::Null.is_null() && Value::Null.as_str().is_none());
    }

    #[test]
    fn depth_definition() {
        assert_eq!(Value::Int(1).depth(), 0);
        assert_eq!(json("[]").depth(), 1);
        assert_eq!(json("{\"a\":1}").depth(), 1);
        assert_eq!(json("{\"a\":[1],\"b\":[[{}]],\"c\":2}").depth(), 4);
        assert_eq!(json("{\"a\":{\"$binary\":\"AA==\"}}").depth(), 1);
    }

    #[test]
    fn depth_of_very_deep_values_without_recursion() {
        let v = nested_arrays(100_000);
        assert_eq!(v.depth(), 100_000);
        // encode refuses it (bounded), compare/to_json walk it iteratively.
        let mut out = vec![0xAA];
        assert_eq!(encode(&v, &mut out), Err(Error::TooDeep));
        assert_eq!(out, [0xAA]);
        assert_eq!(compare(&v, &v), Ordering::Equal);
        let mut s = String::new();
        to_json(&v, &mut s);
        assert_eq!(s.len(), 200_001);
        dismantle(v);

        let mut m = Value::Null;
        for _ in 0..100_000 {
            let mut inner = Map::new();
            inner.insert("k".into(), m);
            m = Value::Map(inner);
        }
        assert_eq!(m.depth(), 100_000);
        assert_eq!(get_path(&m, "k.k.k").map(Value::depth), Some(99_997));
        dismantle(m);
    }

    // ---- postcard ----

    #[test]
    fn encode_golden_bytes() {
        // {"t":21.5,"n":3}: Map(7) len 2, "t", Float(3) 21.5 LE, "n", Int(2) zigzag(3)=6.
        let v = json("{\"t\":21.5,\"n\":3}");
        assert_eq!(
            enc(&v),
            [7, 2, 1, b't', 3, 0, 0, 0, 0, 0, 0x80, 0x35, 0x40, 1, b'n', 2, 6]
        );
        assert_eq!(enc(&Value::Null), [0]);
        assert_eq!(enc(&Value::Bool(true)), [1, 1]);
        assert_eq!(enc(&Value::Int(-1)), [2, 1]);
        assert_eq!(enc(&Value::Int(64)), [2, 0x80, 0x01]);
        assert_eq!(enc(&Value::Int(i64::MIN)).len(), 11);
        assert_eq!(enc(&Value::from("hé")), [4, 3, b'h', 0xc3, 0xa9]);
        assert_eq!(enc(&Value::Bytes(vec![9, 8])), [5, 2, 9, 8]);
        assert_eq!(enc(&json("[null,[]]")), [6, 2, 0, 6, 0]);
        // encode appends.
        let mut out = vec![0xEE];
        encode(&Value::Null, &mut out).unwrap();
        assert_eq!(out, [0xEE, 0]);
    }

    #[test]
    fn typical_document_size() {
        let text = br#"{"id":"dev-042","temp":21.5,"hum":48,"ok":true,"tags":["a","b"]}"#;
        assert_eq!(text.len(), 64);
        let v = from_json(text, DEFAULT_MAX_DEPTH).unwrap();
        let bytes = enc(&v);
        assert_eq!(bytes.len(), 52);
        assert!(same(&decode(&bytes, DEFAULT_MAX_DEPTH).unwrap(), &v));
    }

    #[test]
    fn decode_rejects_malformed() {
        let c = |b: &[u8]| decode(b, DEFAULT_MAX_DEPTH);
        assert_eq!(c(&[]), Err(Error::Corrupt));
        assert_eq!(c(&[8]), Err(Error::Corrupt)); // unknown tag
        assert_eq!(
            c(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80]),
            Err(Error::Corrupt)
        ); // bad varint
        assert_eq!(c(&[0, 0]), Err(Error::Corrupt)); // trailing byte
        assert_eq!(c(&[1, 2]), Err(Error::Corrupt)); // bool must be 0 or 1
        assert_eq!(c(&[3, 0, 0, 0]), Err(Error::Corrupt)); // truncated float
        assert_eq!(c(&[4, 2, 0xc3, 0x28]), Err(Error::Corrupt)); // invalid UTF-8
        assert_eq!(c(&[4, 5, b'a']), Err(Error::Corrupt)); // length past the end
        assert_eq!(c(&[7, 2, 1, b'a', 0, 1, b'a', 0]), Err(Error::Corrupt)); // duplicate key
        assert_eq!(c(&[7, 1, 1, 0xff, 0]), Err(Error::Corrupt)); // key not UTF-8
                                                                 // Huge claimed lengths fail cleanly without a huge allocation.
        assert_eq!(
            c(&[6, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]),
            Err(Error::Corrupt)
        );
        assert_eq!(
            c(&[7, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]),
            Err(Error::Corrupt)
        );
        assert_eq!(c(&[7, 1, 1, b'a', 0]), Ok(json("{\"a\":null}")));
    }

    #[test]
    fn decode_depth_budget() {
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[TAG_ARRAY, 1]);
        }
        bytes.push(TAG_NULL);
        assert_eq!(decode(&bytes, DEFAULT_MAX_DEPTH), Err(Error::TooDeep));
        assert_eq!(decode(&bytes, usize::MAX), Err(Error::TooDeep));

        let mut maps = Vec::new();
        for _ in 0..100_000 {
            maps.extend_from_slice(&[TAG_MAP, 1, 1, b'k']);
        }
        maps.push(TAG_NULL);
        assert_eq!(decode(&maps, DEFAULT_MAX_DEPTH), Err(Error::TooDeep));

        // Exactly at the limit decodes; one more level does not.
        for depth in [0, 1, 5, 16] {
            let v = nested_arrays(depth);
            let b = enc(&v);
            assert_eq!(decode(&b, depth), Ok(v.clone()));
            if depth > 0 {
                assert_eq!(decode(&b, depth - 1), Err(Error::TooDeep));
            }
        }
        let v = nested_arrays(MAX_DEPTH_LIMIT);
        assert_eq!(decode(&enc(&v), usize::MAX), Ok(v.clone()));
        let mut out = Vec::new();
        assert_eq!(
            encode(&Value::Array(vec![v]), &mut out),
            Err(Error::TooDeep)
        );
        assert!(out.is_empty());
    }

    // ---- JSON ----

    #[test]
    fn json_round_trip_hand_written() {
        let docs = [
            r#"{"a":1,"b":1.0,"c":-0.0,"d":[true,false,null],"e":{"f":{"g":"h"}}}"#,
            r#"{"unicode":"héllo wörld ✓ 😀","escapes":"q\" b\\ n\n r\r t\t \u0001 \u001f"}"#,
            r#"{"bytes":{"$binary":"AAECAwT/"},"empty":{"$binary":""},"one":{"$binary":"AA=="}}"#,
            r#"{"big":9223372036854775807,"small":-9223372036854775808,"f":1e300,"g":1.5e-7}"#,
            r#"[1,1.0,0.1,123456.789,1e16,1e15,-2.5,5e-324,1.7976931348623157e308]"#,
            r#"{"":"","nested":[[[]],{},[{}]],"k":"v"}"#,
        ];
        for d in docs {
            let v = json(d);
            let out = to_json_string(&v);
            let back = json(&out);
            assert!(same(&v, &back), "{d} -> {out}");
            assert_eq!(to_json_string(&back), out);
            assert!(same(&decode(&enc(&v), DEFAULT_MAX_DEPTH).unwrap(), &v));
        }
    }

    #[test]
    fn json_numbers() {
        assert_eq!(json("1"), Value::Int(1));
        assert_eq!(json("1.0"), Value::Float(1.0));
        assert_eq!(json("1e2"), Value::Float(100.0));
        assert_eq!(json("-7"), Value::Int(-7));
        assert_eq!(json("9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(json("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(
            json("9223372036854775808"),
            Value::Float(-(i64::MIN as f64))
        );
        assert_eq!(
            json("18446744073709551615"),
            Value::Float(1.8446744073709552e19)
        );
        assert_eq!(json("-9223372036854775809"), Value::Float(i64::MIN as f64));
        assert_eq!(
            json("123456789012345678901234567890"),
            Value::Float(1.2345678901234568e29)
        );
        assert_eq!(from_json(b"1e400", 4), Err(Error::Json));
        assert_eq!(to_json_string(&Value::Float(1.0)), "1.0");
        assert_eq!(to_json_string(&Value::Float(-0.0)), "-0.0");
        assert_eq!(to_json_string(&Value::Float(1e300)), "1e300");
        assert_eq!(to_json_string(&Value::Float(1e-7)), "1e-7");
        assert_eq!(to_json_string(&Value::Float(0.1)), "0.1");
        assert_eq!(
            to_json_string(&Value::Int(i64::MIN)),
            "-9223372036854775808"
        );
        assert_eq!(to_json_string(&Value::Float(f64::NAN)), "null");
        assert_eq!(to_json_string(&Value::Float(f64::INFINITY)), "null");
        assert_eq!(to_json_string(&Value::Float(f64::NEG_INFINITY)), "null");
    }

    #[test]
    fn json_output_is_compact_and_escaped() {
        let v = json(" { \"a\" : [ 1 , 2 ] , \"s\" : \"\\u00e9\\ud83d\\ude00\\/\\b\\f\\u0000\" } ");
        assert_eq!(
            to_json_string(&v),
            "{\"a\":[1,2],\"s\":\"é😀/\\b\\f\\u0000\"}"
        );
        assert_eq!(
            to_json_string(&Value::Bytes(vec![0xfb, 0xff, 0xbf])),
            "{\"$binary\":\"+/+/\"}"
        );
    }

    #[test]
    fn json_binary_and_duplicates() {
        assert_eq!(json(r#"{"$binary":"aGk="}"#), Value::Bytes(b"hi".to_vec()));
        assert_eq!(
            json(r#"{"$binary":"aGVsbG8="}"#),
            Value::Bytes(b"hello".to_vec())
        );
        assert_eq!(
            json(r#"{"$binary":"aGVsbG8h"}"#),
            Value::Bytes(b"hello!".to_vec())
        );
        // Not exactly one string-valued "$binary" key: an ordinary map.
        let m = json(r#"{"$binary":"aGk=","x":1}"#);
        assert_eq!(m.as_map().map(Map::len), Some(2));
        assert_eq!(json(r#"{"$binary":1}"#).type_name(), "map");
        for bad in [
            r#"{"$binary":"aGk"}"#,
            r#"{"$binary":"aG=k"}"#,
            r#"{"$binary":"aGl="}"#,
            r#"{"$binary":"a==="}"#,
            r#"{"$binary":"aGk=aGk="}"#,
            r#"{"$binary":"aG k"}"#,
            r#"{"$binary":"aGk*"}"#,
        ] {
            assert_eq!(from_json(bad.as_bytes(), 4), Err(Error::Json), "{bad}");
        }
        // Duplicate keys: position of the first, value of the last.
        let d = json(r#"{"a":1,"b":2,"a":3}"#);
        assert_eq!(to_json_string(&d), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn json_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"nul",
            b"1 2",
            b"{'a':1}",
            b"\"\xff\"",
            b"\"\\ud800\"",
            b"\"a\x01\"",
            b"NaN",
            b"01",
        ] {
            assert_eq!(from_json(bad, 8), Err(Error::Json), "{bad:?}");
        }
    }

    #[test]
    fn json_depth_budget() {
        let open = vec![b'['; 10_000];
        assert_eq!(from_json(&open, DEFAULT_MAX_DEPTH), Err(Error::TooDeep));
        assert_eq!(from_json(&open, usize::MAX), Err(Error::TooDeep));
        let objs = "{\"a\":".repeat(10_000);
        assert_eq!(
            from_json(objs.as_bytes(), DEFAULT_MAX_DEPTH),
            Err(Error::TooDeep)
        );
        assert_eq!(from_json(b"1", 0), Ok(Value::Int(1)));
        assert_eq!(from_json(b"[]", 0), Err(Error::TooDeep));
        assert_eq!(from_json(b"{}", 0), Err(Error::TooDeep));
        assert_eq!(from_json(b"{\"a\":1}", 0), Err(Error::TooDeep));
        assert_eq!(from_json(b"{\"a\":[]}", 1), Err(Error::TooDeep));
        assert_eq!(from_json(b"{\"a\":[]}", 2).map(|v| v.depth()), Ok(2));
        // {"$binary": ...} is a scalar for depth purposes.
        assert_eq!(
            from_json(b"{\"$binary\":\"\"}", 0),
            Ok(Value::Bytes(vec![]))
        );
        assert_eq!(
            from_json(b"[{\"$binary\":\"AA==\"}]", 1),
            Ok(Value::Array(vec![Value::Bytes(vec![0])]))
        );
        let s = "[".repeat(16) + &"]".repeat(16);
        assert_eq!(from_json(s.as_bytes(), 16).map(|v| v.depth()), Ok(16));
        assert_eq!(from_json(s.as_bytes(), 15), Err(Error::TooDeep));
    }

    // ---- paths ----

    #[test]
    fn get_path_cases() {
        let v = json(r#"{"a":{"b":[10,{"c":"x"},[7]]},"n":null,"0":"zero","":1}"#);
        assert_eq!(get_path(&v, "a.b.0"), Some(&Value::Int(10)));
        assert_eq!(get_path(&v, "a.b.1.c"), Some(&Value::from("x")));
        assert_eq!(get_path(&v, "a.b.2.0"), Some(&Value::Int(7)));
        assert_eq!(get_path(&v, "n"), Some(&Value::Null));
        assert_eq!(get_path(&v, "0"), Some(&Value::from("zero")));
        assert_eq!(get_path(&v, "a").map(Value::type_name), Some("map"));
        for missing in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "x",
            "a.b.3",
            "a.b.01",
            "a.b.+1",
            "a.b.-1",
            "a.b.c",
            "n.x",
            "a.b.0.x",
            "a.b.99999999999999999999999",
        ] {
            assert_eq!(get_path(&v, missing), None, "{missing}");
        }
        assert_eq!(get_path(&Value::Int(1), "a"), None);
        let m = v.as_map().unwrap();
        assert_eq!(m.get_path("a.b.1.c"), Some(&Value::from("x")));
        assert_eq!(m.get_path("a.b.9"), None);
        assert_eq!(m.get_path(""), None);
        assert_eq!(m.get_path("a."), None);
    }

    // ---- patches ----

    fn patched(d: &str, p: &str) -> Result<String> {
        let mut m = doc(d);
        apply_patch(&mut m, &json(p), DEFAULT_MAX_DEPTH)?;
        Ok(to_json_string(&Value::Map(m)))
    }

    #[test]
    fn patch_set() {
        let d = r#"{"_id":1,"a":1,"arr":[1,2,3]}"#;
        assert_eq!(
            patched(d, r#"{"$set":{"a":2,"b":"x"}}"#).unwrap(),
            r#"{"_id":1,"a":2,"arr":[1,2,3],"b":"x"}"#
        );
        assert_eq!(
            patched(d, r#"{"$set":{"x.y.z":true}}"#).unwrap(),
            r#"{"_id":1,"a":1,"arr":[1,2,3],"x":{"y":{"z":true}}}"#
        );
        assert_eq!(
            patched(d, r#"{"$set":{"arr.1":{"k":[]}}}"#).unwrap(),
            r#"{"_id":1,"a":1,"arr":[1,{"k":[]},3]}"#
        );
        assert_eq!(
            patched(r#"{"a":[{"b":1}]}"#, r#"{"$set":{"a.0.c":2}}"#).unwrap(),
            r#"{"a":[{"b":1,"c":2}]}"#
        );
        assert_eq!(patched(d, r#"{}"#).unwrap(), d);
        assert_eq!(patched(d, r#"{"$set":{}}"#).unwrap(), d);
    }

    #[test]
    fn patch_unset() {
        let d = r#"{"a":1,"b":{"c":2,"d":3},"arr":[1,2,3]}"#;
        assert_eq!(
            patched(d, r#"{"$unset":{"a":true,"b.c":1}}"#).unwrap(),
            r#"{"b":{"d":3},"arr":[1,2,3]}"#
        );
        assert_eq!(
            patched(d, r#"{"$unset":{"arr.0":null}}"#).unwrap(),
            r#"{"a":1,"b":{"c":2,"d":3},"arr":[2,3]}"#
        );
        // Missing paths and scalars in the way are no-ops.
        assert_eq!(
            patched(
                d,
                r#"{"$unset":{"zz":1,"a.x":1,"b.x.y":1,"arr.7":1,"arr.x":1}}"#
            )
            .unwrap(),
            d
        );
    }

    #[test]
    fn patch_inc() {
        let d = r#"{"i":1,"f":1.5,"arr":[1]}"#;
        assert_eq!(
            patched(d, r#"{"$inc":{"i":2,"f":1,"arr.0":0.5}}"#).unwrap(),
            r#"{"i":3,"f":2.5,"arr":[1.5]}"#
        );
        assert_eq!(
            patched(d, r#"{"$inc":{"i":0.5}}"#).unwrap(),
            r#"{"i":1.5,"f":1.5,"arr":[1]}"#
        );
        assert_eq!(
            patched(d, r#"{"$inc":{"n":-4,"m.x":2.0}}"#).unwrap(),
            r#"{"i":1,"f":1.5,"arr":[1],"n":-4,"m":{"x":2.0}}"#
        );
        assert_eq!(
            patched(r#"{"i":9223372036854775806}"#, r#"{"$inc":{"i":1}}"#).unwrap(),
            r#"{"i":9223372036854775807}"#
        );
        assert_eq!(
            patched(r#"{"i":-9223372036854775807}"#, r#"{"$inc":{"i":-1}}"#).unwrap(),
            r#"{"i":-9223372036854775808}"#
        );
        // Operators run in order.
        assert_eq!(
            patched(d, r#"{"$set":{"i":10},"$inc":{"i":1},"$unset":{"f":1}}"#).unwrap(),
            r#"{"i":11,"arr":[1]}"#
        );
    }

    #[test]
    fn patch_push() {
        let d = r#"{"_id":1,"tags":["a"],"m":{"l":[]},"arr":[[1],2]}"#;
        assert_eq!(
            patched(d, r#"{"$push":{"tags":"b"}}"#).unwrap(),
            r#"{"_id":1,"tags":["a","b"],"m":{"l":[]},"arr":[[1],2]}"#
        );
        // Creates the array, and missing maps on the way.
        assert_eq!(
            patched(d, r#"{"$push":{"new":1,"m.n.o":{"k":1}}}"#).unwrap(),
            r#"{"_id":1,"tags":["a"],"m":{"l":[],"n":{"o":[{"k":1}]}},"arr":[[1],2],"new":[1]}"#
        );
        // Nested paths, positions, arrays as values, $each.
        assert_eq!(
            patched(
                d,
                r#"{"$push":{"m.l":[1,2],"arr.0":{"$each":[3,4]},"tags":{"$each":[]}}}"#
            )
            .unwrap(),
            r#"{"_id":1,"tags":["a"],"m":{"l":[[1,2]]},"arr":[[1,3,4],2]}"#
        );
        // Runs in order with the other operators.
        assert_eq!(
            patched(d, r#"{"$unset":{"tags":1},"$push":{"tags":"z"}}"#).unwrap(),
            r#"{"_id":1,"m":{"l":[]},"arr":[[1],2],"tags":["z"]}"#
        );
    }

    #[test]
    fn patch_pull() {
        let d = r#"{"tags":["a","b","c","a"],"n":[1,2.0,3,"2",[2]],"items":[{"q":0,"k":"x"},{"q":5},{"k":"y"},7],"m":{"l":[null,1]}}"#;
        let get = |p: &str, path: &str| {
            let mut m = doc(d);
            apply_patch(&mut m, &json(p), DEFAULT_MAX_DEPTH).unwrap();
            let v = Value::Map(m);
            to_json_string(get_path(&v, path).unwrap())
        };
        // Equality (numbers as numbers; no array membership of the elements themselves).
        assert_eq!(get(r#"{"$pull":{"tags":"a"}}"#, "tags"), r#"["b","c"]"#);
        assert_eq!(get(r#"{"$pull":{"n":2}}"#, "n"), r#"[1,3,"2",[2]]"#);
        assert_eq!(get(r#"{"$pull":{"n":[2]}}"#, "n"), r#"[1,2.0,3,"2"]"#);
        assert_eq!(get(r#"{"$pull":{"m.l":null}}"#, "m.l"), "[1]");
        // Field-operator conditions on each element.
        assert_eq!(
            get(r#"{"$pull":{"tags":{"$in":["a","b"]}}}"#, "tags"),
            r#"["c"]"#
        );
        // An array element is tested like an array field: any of its elements may match.
        assert_eq!(get(r#"{"$pull":{"n":{"$gte":2}}}"#, "n"), r#"[1,"2"]"#);
        assert_eq!(
            get(r#"{"$pull":{"n":{"$type":"string"}}}"#, "n"),
            r#"[1,2.0,3,[2]]"#
        );
        assert_eq!(
            get(r#"{"$pull":{"n":{"$not":{"$type":"number"}}}}"#, "n"),
            "[1,2.0,3]"
        );
        // A filter document applied to each element.
        assert_eq!(
            get(r#"{"$pull":{"items":{"q":{"$lt":1}}}}"#, "items"),
            r#"[{"q":5},{"k":"y"},7]"#
        );
        assert_eq!(
            get(r#"{"$pull":{"items":{"k":{"$exists":true}}}}"#, "items"),
            r#"[{"q":5},7]"#
        );
        assert_eq!(
            get(
                r#"{"$pull":{"items":{"$or":[{"q":5},{"k":"y"}]}}}"#,
                "items"
            ),
            r#"[{"q":0,"k":"x"},7]"#
        );
        assert_eq!(get(r#"{"$pull":{"items":{}}}"#, "items"), "[]");
        // Missing targets are not an error; nothing else changes.
        assert_eq!(
            patched(d, r#"{"$pull":{"none":1,"m.x.y":{"$in":[1]},"tags.9":1}}"#).unwrap(),
            to_json_string(&json(d))
        );
        // Push then pull, all in one patch.
        assert_eq!(
            get(
                r#"{"$push":{"tags":{"$each":["d","e"]}},"$pull":{"tags":{"$in":["a","e"]}}}"#,
                "tags"
            ),
            r#"["b","c","d"]"#
        );
    }

    #[cfg(feature = "regex")]
    #[test]
    fn patch_pull_regex() {
        let mut m = doc(r#"{"t":["apple","Banana","cherry",1]}"#);
        let p = json(r#"{"$pull":{"t":{"$regex":"^b|y$","$options":"i"}}}"#);
        apply_patch(&mut m, &p, DEFAULT_MAX_DEPTH).unwrap();
        assert_eq!(to_json_string(&Value::Map(m)), r#"{"t":["apple",1]}"#);
        // A budget failure fails the whole patch.
        let mut m = doc(&std::format!(r#"{{"t":["{}"]}}"#, "a".repeat(64)));
        let before = m.clone();
        let p = json(r#"{"$pull":{"t":{"$regex":"(a*)*b"}}}"#);
        assert_eq!(
            apply_patch(&mut m, &p, DEFAULT_MAX_DEPTH),
            Err(Error::TooLarge)
        );
        assert_eq!(m, before);
    }

    #[test]
    fn patch_errors_leave_doc_unchanged() {
        let d = r#"{"_id":"x","i":9223372036854775807,"s":"t","f":1.7976931348623157e308,"arr":[1],"m":{"k":1}}"#;
        let cases: &[(&str, Error)] = &[
            (r#"[]"#, Error::InvalidPatch),
            (r#"1"#, Error::InvalidPatch),
            (r#"{"$push":{"s":1}}"#, Error::InvalidPatch),
            (r#"{"$push":{"m":1}}"#, Error::InvalidPatch),
            (r#"{"$push":{"s.x":1}}"#, Error::InvalidPatch),
            (r#"{"$push":{"arr.3":1}}"#, Error::InvalidPatch),
            (r#"{"$push":{"_id":1}}"#, Error::InvalidPatch),
            (r#"{"$push":{"a":{"$each":1}}}"#, Error::InvalidPatch),
            (
                r#"{"$push":{"a":{"$each":[1],"$slice":1}}}"#,
                Error::InvalidPatch,
            ),
            (r#"{"$push":{"a":{"$sort":1}}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"s":1}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"m":{"k":1}}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"_ver":1}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"arr":{"$bogus":1}}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"arr":{"$gt":null}}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"arr":{"$in":1}}}"#, Error::InvalidPatch),
            (r#"{"$pull":{"arr":{"$gt":1,"k":1}}}"#, Error::InvalidPatch),
            // The operand is checked even when the field is missing.
            (r#"{"$pull":{"none":{"$bogus":1}}}"#, Error::InvalidPatch),
            (
                r#"{"$push":{"arr":2},"$pull":{"arr":{"$in":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}}}"#,
                Error::TooLarge,
            ),
            (
                r#"{"$push":{"m.x":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}}"#,
                Error::TooDeep,
            ),
            (r#"{"set":{"a":1}}"#, Error::InvalidPatch),
            (r#"{"$set":[1]}"#, Error::InvalidPatch),
            (r#"{"$unset":"a"}"#, Error::InvalidPatch),
            (r#"{"$set":{"":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"a..b":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{".a":1}}"#, Error::InvalidPatch),
            (r#"{"$unset":{"a.":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"_id":1}}"#, Error::InvalidPatch),
            (r#"{"$unset":{"_ver":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"_ts":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"_id.x":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"i":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"s":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"m":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"a":"1"}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"a":null}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"f":1e308}}"#, Error::InvalidPatch),
            (r#"{"$set":{"s.x":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"s.x":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"arr.1":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"arr.x":1}}"#, Error::InvalidPatch),
            (r#"{"$set":{"arr.0.x":1}}"#, Error::InvalidPatch),
            (r#"{"$inc":{"arr.5":1}}"#, Error::InvalidPatch),
            // Earlier operations succeed, a later one fails: nothing is kept.
            (
                r#"{"$set":{"new":1,"m.k":2},"$unset":{"arr":1},"$inc":{"s":1}}"#,
                Error::InvalidPatch,
            ),
            (r#"{"$set":{"new":1},"$bogus":{}}"#, Error::InvalidPatch),
            (
                r#"{"$set":{"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q":1}}"#,
                Error::TooDeep,
            ),
            (
                r#"{"$set":{"m.x":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}}"#,
                Error::TooDeep,
            ),
        ];
        for (p, err) in cases {
            let mut m = doc(d);
            let before = m.clone();
            let patch = from_json(p.as_bytes(), MAX_DEPTH_LIMIT).unwrap();
            assert_eq!(
                apply_patch(&mut m, &patch, DEFAULT_MAX_DEPTH),
                Err(*err),
                "{p}"
            );
            assert_eq!(m, before, "{p}");
        }
        // The depth limit is the caller's.
        let mut m = doc(d);
        let p = json(r#"{"$set":{"a.b":1}}"#);
        assert_eq!(apply_patch(&mut m, &p, 1), Err(Error::TooDeep));
        assert_eq!(apply_patch(&mut m, &p, 2), Ok(()));
        // Only the top-level reserved names are protected.
        assert_eq!(
            patched(r#"{"m":{}}"#, r#"{"$set":{"m._id":1,"_tag":2,"_idx":3}}"#).unwrap(),
            r#"{"m":{"_id":1},"_tag":2,"_idx":3}"#
        );
    }

    // ---- ordering ----

    #[test]
    fn compare_cross_type_order() {
        let ordered = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(i64::MIN),
            Value::Float(-1.5),
            Value::Int(-1),
            Value::Float(0.5),
            Value::Int(1),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NAN),
            Value::from(""),
            Value::from("B"),
            Value::from("a"),
            Value::from("ab"),
            Value::from("é"),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0]),
            Value::Bytes(vec![1]),
            json("[]"),
            json("[1]"),
            json("[1,2]"),
            json("[2]"),
            json("[\"a\"]"),
            json("{}"),
            json("{\"a\":1}"),
            json("{\"a\":1,\"b\":0}"),
            json("{\"a\":2}"),
            json("{\"b\":0}"),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn compare_int_float_exactly() {
        use Ordering::*;
        let c = |i: i64, f: f64| compare(&Value::Int(i), &Value::Float(f));
        // i64::MAX as f64 rounds up to 2^63.
        assert_eq!(c(i64::MAX, 9.223372036854776e18), Less);
        assert_eq!(
            compare(&Value::Float(9.223372036854776e18), &Value::Int(i64::MAX)),
            Greater
        );
        assert_eq!(c(i64::MIN, i64::MIN as f64), Equal);
        assert_eq!(c(i64::MIN, -9.223372036854777e18), Greater);
        assert_eq!(c((1 << 53) + 1, 9007199254740992.0), Greater);
        assert_eq!(c((1 << 53) + 1, 9007199254740994.0), Less);
        assert_eq!(c(1 << 53, 9007199254740992.0), Equal);
        assert_eq!(c(0, -0.0), Equal);
        assert_eq!(c(0, 0.0), Equal);
        assert_eq!(c(0, 5e-324), Less);
        assert_eq!(c(0, -5e-324), Greater);
        assert_eq!(c(5, 5.5), Less);
        assert_eq!(c(6, 5.5), Greater);
        assert_eq!(c(-5, -5.5), Greater);
        assert_eq!(c(-6, -5.5), Less);
        assert_eq!(c(i64::MAX, f64::NAN), Less);
        assert_eq!(c(i64::MAX, f64::INFINITY), Less);
        assert_eq!(c(i64::MIN, f64::NEG_INFINITY), Greater);
        assert_eq!(
            compare(&Value::Float(f64::NAN), &Value::Float(-f64::NAN)),
            Equal
        );
        assert_eq!(compare(&Value::Float(-0.0), &Value::Float(0.0)), Equal);
    }

    // ---- property tests ----

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<u64>().prop_map(|b| Value::Float(f64::from_bits(b))),
            ".{0,8}".prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-z$_.]{0,4}", inner), 0..6)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect())),
            ]
        })
    }

    /// Values whose JSON form reads back identically: no NaN/inf, and floats that serde_json
    /// parses exactly without its `float_roundtrip` feature (see json_float_precision).
    fn arb_json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            // m / 10^k: at most 10 significant digits, the shape of real readings.
            (any::<i32>(), 0usize..8).prop_map(|(m, k)| {
                let pow = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
                Value::Float(f64::from(m) / pow.get(k).copied().unwrap_or(1.0))
            }),
            ".{0,8}".prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                // No "$binary" keys: a one-entry {"$binary": "<str>"} map reads back as Bytes.
                proptest::collection::vec(("[a-z_.]{0,4}", inner), 0..6)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect())),
            ]
        })
    }

    /// Small domains so that equal and nearly-equal values are common.
    fn arb_cmp_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            prop_oneof![
                Just(i64::MAX),
                Just(i64::MIN),
                Just(i64::MAX - 1),
                Just(1 << 53),
                Just((1 << 53) + 1)
            ]
            .prop_map(Value::Int),
            prop_oneof![
                Just(0.0),
                Just(-0.0),
                Just(1.0),
                Just(-2.5),
                Just(0.5),
                Just(9.223372036854776e18),
                Just(i64::MIN as f64),
                Just(9007199254740992.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(f64::NAN),
                Just(-f64::NAN),
            ]
            .prop_map(Value::Float),
            "[ab]{0,2}".prop_map(Value::Str),
            proptest::collection::vec(0u8..2, 0..2).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec(("[ab]", inner), 0..3)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn postcard_round_trip(v in arb_value()) {
            let bytes = enc(&v);
            prop_assert_eq!(&bytes, &postcard::to_allocvec(&v).unwrap());
            let back = decode(&bytes, DEFAULT_MAX_DEPTH).unwrap();
            prop_assert!(same(&v, &back), "{:?} != {:?}", v, back);
            prop_assert_eq!(back.depth(), v.depth());
        }

        #[test]
        fn json_round_trip(v in arb_json_value()) {
            let text = to_json_string(&v);
            let back = from_json(text.as_bytes(), DEFAULT_MAX_DEPTH).unwrap();
            prop_assert!(same(&v, &back), "{} -> {:?}", text, back);
        }

        #[test]
        fn json_output_of_any_value_parses(v in arb_value()) {
            let text = to_json_string(&v);
            prop_assert!(from_json(text.as_bytes(), DEFAULT_MAX_DEPTH).is_ok(), "{}", text);
        }

        #[test]
        fn decode_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, DEFAULT_MAX_DEPTH);
            let _ = decode(&bytes, 0);
        }

        #[test]
        fn decode_mutated_encodings_never_panics(
            v in arb_value(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut bytes = enc(&v);
            for (pos, b) in edits {
                let at = pos % (bytes.len() + 1);
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = b;
                }
            }
            let _ = decode(&bytes, DEFAULT_MAX_DEPTH);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = decode(&bytes, DEFAULT_MAX_DEPTH);
        }

        #[test]
        fn from_json_random_text_never_panics(text in proptest::collection::vec(
            prop_oneof![Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'),
                        Just(b','), Just(b'1'), Just(b'a'), any::<u8>()], 0..48)) {
            let _ = from_json(&text, DEFAULT_MAX_DEPTH);
        }

        #[test]
        fn compare_is_a_total_order(a in arb_cmp_value(), b in arb_cmp_value(), c in arb_cmp_value()) {
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            let (ab, bc, ac) = (compare(&a, &b), compare(&b, &c), compare(&a, &c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                prop_assert!(ac != Ordering::Greater, "{:?} {:?} {:?}", a, b, c);
            }
            if ab == Ordering::Equal && bc == Ordering::Equal {
                prop_assert_eq!(ac, Ordering::Equal);
            }
            if ab == Ordering::Less && bc != Ordering::Greater {
                prop_assert_eq!(ac, Ordering::Less);
            }
        }

        #[test]
        fn compare_random_values_is_antisymmetric(a in arb_value(), b in arb_value()) {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        }

        #[test]
        fn compare_int_float_matches_exact_arithmetic(i in any::<i64>(), f in any::<f64>()) {
            prop_assume!(f.is_finite());
            // Exact reference: compare in i128 after splitting f into integer and fraction.
            let expect = if f >= 9.3e18 { Ordering::Less } else if f <= -9.3e18 { Ordering::Greater } else {
                let t = f as i128;
                match i128::from(i).cmp(&t) {
                    Ordering::Equal => (t as f64).partial_cmp(&f).unwrap(),
                    o => o,
                }
            };
            prop_assert_eq!(compare(&Value::Int(i), &Value::Float(f)), expect);
        }
    }

    /// Our writer emits the shortest round-trip form, but without serde_json's
    /// `float_roundtrip` feature its parser is only approximately correct for long mantissas
    /// (about 30% of random bit patterns come back a few ulps off). This pins that bound; with
    /// the feature enabled every case is exact.
    #[test]
    fn json_float_precision() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut inexact = 0;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let f = f64::from_bits(rng);
            if !f.is_finite() {
                continue;
            }
            let text = to_json_string(&Value::Float(f));
            match from_json(text.as_bytes(), 1) {
                Ok(Value::Float(g)) => {
                    if g.to_bits() != f.to_bits() {
                        inexact += 1;
                        let rel = ((g - f) / f).abs();
                        assert!(rel < 1e-14, "{f:e} -> {text} -> {g:e}");
                    }
                }
                other => panic!("{text} -> {other:?}"),
            }
        }
        std::println!("json float round trip: {inexact} of 20000 not bit-exact");
    }
}
