//! Secondary indexes: definitions and the order-preserving key encoding of their entries.
//!
//! An index entry is one key of the store's ordered map:
//! `T_INDEX | index id (BE u32) | encoded field value ... | doc id (BE u64)`, with an empty value.
//! The field values are encoded so that bytewise key order is the query order of
//! [`value::compare`](crate::value::compare) for scalars, which lets equality and range queries
//! become key-range scans. Entries live inside sealed segment pages and WAL frames like every
//! other key, so no indexed value is ever on flash in plaintext.
//!
//! Arrays are indexed by element (a "multikey" index): a document whose indexed field is
//! `["a","b"]` gets one entry for "a" and one for "b", which is what array-contains equality
//! needs. Maps and nested arrays are indexed as whole values.

use crate::format::{self, Reader};
use crate::value::{self, Value};
use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// Type tags, in the cross-type order of `value::compare`.
const TAG_NULL: u8 = 0x10;
const TAG_FALSE: u8 = 0x20;
const TAG_TRUE: u8 = 0x21;
const TAG_NUMBER: u8 = 0x30;
const TAG_STRING: u8 = 0x40;
const TAG_BYTES: u8 = 0x50;
const TAG_ARRAY: u8 = 0x60;
const TAG_MAP: u8 = 0x70;

/// Most index entries one document may produce (arrays multiply them).
pub const MAX_ENTRIES_PER_DOC: usize = 32;
/// Most fields of a compound index.
pub const MAX_FIELDS: usize = 4;

/// The bytes of `f` whose unsigned order is the numeric order of f64 (-0.0 = 0.0, NaN last).
fn f64_key(f: f64) -> [u8; 8] {
    if f.is_nan() {
        return [0xFF; 8];
    }
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let k = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    k.to_be_bytes()
}

/// Bytes with 0x00 escaped as 0x00 0xFF and a 0x00 0x00 terminator, so a shorter string sorts
/// before its extensions and no encoded value is a prefix of another.
fn escaped(out: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        out.push(c);
        if c == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Append the order-preserving encoding of one scalar (or a whole container) to `out`.
///
/// Numbers are encoded as f64: integers beyond 2^53 may share a key with a neighbour, so index
/// scans treat their bounds as inclusive and every candidate is re-checked against the filter.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Int(i) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&f64_key(*i as f64));
        }
        Value::Float(f) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&f64_key(*f));
        }
        Value::Str(s) => {
            out.push(TAG_STRING);
            escaped(out, s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTES);
            escaped(out, b);
        }
        Value::Array(_) | Value::Map(_) => {
            out.push(if matches!(v, Value::Array(_)) {
                TAG_ARRAY
            } else {
                TAG_MAP
            });
            let mut enc = Vec::new();
            value::encode(v, &mut enc)?;
            escaped(out, &enc);
        }
    }
    Ok(())
}

/// A secondary index's definition, stored in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub id: u32,
    pub name: String,
    /// Dotted field paths, most significant first.
    pub fields: Vec<String>,
    pub unique: bool,
    /// Only documents matching this filter are indexed.
    pub partial: Option<Value>,
    /// Set once any indexed document had an array in an indexed field.
    pub multikey: bool,
}

impl IndexDef {
    /// The catalog value: postcard of a map, so fields can be added later.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut m = value::Map::new();
        m.insert("id".into(), Value::Int(i64::from(self.id)));
        m.insert(
            "fields".into(),
            Value::Array(self.fields.iter().map(|f| Value::Str(f.clone())).collect()),
        );
        m.insert("unique".into(), Value::Bool(self.unique));
        m.insert("multikey".into(), Value::Bool(self.multikey));
        if let Some(p) = &self.partial {
            m.insert("partial".into(), p.clone());
        }
        let mut out = Vec::new();
        value::encode(&Value::Map(m), &mut out)?;
        Ok(out)
    }

    pub fn decode(name: &str, bytes: &[u8], max_depth: usize) -> Result<Self> {
        let v = value::decode(bytes, max_depth)?;
        let m = v.as_map().ok_or(Error::Corrupt)?;
        let id = m
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(Error::Corrupt)?;
        let fields = m
            .get("fields")
            .and_then(Value::as_array)
            .ok_or(Error::Corrupt)?
            .iter()
            .map(|f| f.as_str().map(String::from).ok_or(Error::Corrupt))
            .collect::<Result<Vec<_>>>()?;
        if fields.is_empty() || fields.len() > MAX_FIELDS {
            return Err(Error::Corrupt);
        }
        Ok(IndexDef {
            id,
            name: String::from(name),
            fields,
            unique: m.get("unique").and_then(Value::as_bool).unwrap_or(false),
            partial: m.get("partial").cloned(),
            multikey: m.get("multikey").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// The key prefix of all this index's entries.
    pub fn prefix(&self) -> [u8; 5] {
        let b = self.id.to_be_bytes();
        [format::T_INDEX, b[0], b[1], b[2], b[3]]
    }
}

/// The index entry keys of `doc` (already known to satisfy the partial filter), sorted and
/// deduplicated; the second result says whether an array was expanded.
pub fn entries(def: &IndexDef, doc: &Value, doc_id: u64) -> Result<(Vec<Vec<u8>>, bool)> {
    // Each field contributes one or more encoded alternatives; entries are their product.
    let mut keys: Vec<Vec<u8>> = alloc::vec![def.prefix().to_vec()];
    let mut multikey = false;
    for path in &def.fields {
        let mut alts: Vec<Vec<u8>> = Vec::new();
        match value::get_path(doc, path) {
            None => {
                let mut e = Vec::new();
                encode_value(&Value::Null, &mut e)?;
                alts.push(e);
            }
            Some(Value::Array(items)) if !items.is_empty() => {
                multikey = true;
                for item in items {
                    let mut e = Vec::new();
                    encode_value(item, &mut e)?;
                    alts.push(e);
                }
                alts.sort();
                alts.dedup();
            }
            Some(v) => {
                let mut e = Vec::new();
                encode_value(v, &mut e)?;
                alts.push(e);
            }
        }
        if keys.len().saturating_mul(alts.len()) > MAX_ENTRIES_PER_DOC {
            return Err(Error::TooLarge);
        }
        let mut next = Vec::with_capacity(keys.len() * alts.len());
        for k in &keys {
            for a in &alts {
                let mut nk = k.clone();
                nk.extend_from_slice(a);
                next.push(nk);
            }
        }
        keys = next;
    }
    for k in &mut keys {
        k.extend_from_slice(&doc_id.to_be_bytes());
    }
    keys.sort();
    keys.dedup();
    Ok((keys, multikey))
}

/// The document id at the end of an index entry key.
pub fn doc_id_of_entry(key: &[u8]) -> Result<u64> {
    let tail = key.len().checked_sub(8).ok_or(Error::Corrupt)?;
    let mut r = Reader::new(key.get(tail..).ok_or(Error::Corrupt)?);
    Ok(u64::from_be_bytes(r.array()?))
}

/// Whether every indexed field of the entry is null or missing: a unique index does not
/// enforce uniqueness for those (documents without the field do not clash).
pub fn is_all_null(key: &[u8]) -> bool {
    value_part(key)
        .get(5..)
        .is_some_and(|v| v.iter().all(|b| *b == TAG_NULL))
}

/// The entry key without its document id: what a unique index must not hold twice.
pub fn value_part(key: &[u8]) -> &[u8] {
    key.get(..key.len().saturating_sub(8)).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;
    use alloc::vec;
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(v, &mut out).unwrap();
        out
    }

    #[test]
    fn scalar_order_matches_compare() {
        let vals = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(-5),
            Value::Float(-0.5),
            Value::Int(0),
            Value::Float(0.25),
            Value::Int(1),
            Value::Float(1e300),
            Value::Str("".into()),
            Value::Str("a".into()),
            Value::Str("a\0".into()),
            Value::Str("ab".into()),
            Value::Str("b".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0, 1]),
        ];
        for w in vals.windows(2) {
            assert!(enc(&w[0]) < enc(&w[1]), "{:?} !< {:?}", w[0], w[1]);
            assert_eq!(value::compare(&w[0], &w[1]), core::cmp::Ordering::Less);
        }
        assert_eq!(enc(&Value::Int(3)), enc(&Value::Float(3.0)));
        assert_eq!(enc(&Value::Float(-0.0)), enc(&Value::Float(0.0)));
    }

    proptest! {
        #[test]
        fn numbers_and_strings_keep_their_order(a in any::<i32>(), b in any::<f32>(), s in ".{0,8}", t in ".{0,8}") {
            let (x, y) = (Value::Int(i64::from(a)), Value::Float(f64::from(b)));
            if !f64::from(b).is_nan() {
                prop_assert_eq!(enc(&x).cmp(&enc(&y)), value::compare(&x, &y));
            }
            let (x, y) = (Value::Str(s), Value::Str(t));
            prop_assert_eq!(enc(&x).cmp(&enc(&y)), value::compare(&x, &y));
        }
    }

    #[test]
    fn arrays_expand_into_one_entry_per_distinct_element() {
        let def = IndexDef {
            id: 9,
            name: "t".into(),
            fields: vec!["tags".into()],
            unique: false,
            partial: None,
            multikey: false,
        };
        let doc = from_json(br#"{"tags":["b","a","b"]}"#, 8).unwrap();
        let (keys, multi) = entries(&def, &doc, 42).unwrap();
        assert!(multi);
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| doc_id_of_entry(k).unwrap() == 42));
        let compound = IndexDef {
            fields: vec!["room".into(), "temp".into()],
            ..def.clone()
        };
        let doc = from_json(br#"{"room":"R1","temp":20}"#, 8).unwrap();
        let (keys, multi) = entries(&compound, &doc, 1).unwrap();
        assert!(!multi);
        let mut want = compound.prefix().to_vec();
        want.extend(enc(&Value::Str("R1".into())));
        want.extend(enc(&Value::Int(20)));
        want.extend(1u64.to_be_bytes());
        assert_eq!(keys, vec![want]);
        // A missing field indexes as null.
        let (keys, _) = entries(&compound, &from_json(br#"{"room":"R1"}"#, 8).unwrap(), 1).unwrap();
        assert!(keys[0].windows(1).any(|w| w[0] == TAG_NULL));
        // Too many combinations is an error, not an unbounded allocation.
        let wide = from_json(br#"{"room":[1,2,3,4,5,6,7],"temp":[1,2,3,4,5,6]}"#, 8).unwrap();
        assert_eq!(
            entries(&compound, &wide, 1).map(|_| ()),
            Err(Error::TooLarge)
        );
    }

    #[test]
    fn definitions_round_trip() {
        let def = IndexDef {
            id: 7,
            name: "by_room".into(),
            fields: vec!["room".into(), "loc.floor".into()],
            unique: true,
            partial: Some(from_json(br#"{"active":true}"#, 8).unwrap()),
            multikey: true,
        };
        assert_eq!(
            IndexDef::decode("by_room", &def.encode().unwrap(), 16).unwrap(),
            def
        );
        assert_eq!(
            IndexDef::decode("x", &[1, 2, 3], 16).map(|_| ()),
            Err(Error::Corrupt)
        );
    }
}
