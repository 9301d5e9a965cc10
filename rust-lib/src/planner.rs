//! The query planner: picks how a find reads a collection. Pure: it sees index definitions,
//! the filter and the options, never the flash.
//!
//! An index is used for an equality prefix of its fields, optionally followed by a range on
//! the next field, or to produce results in a requested single-field ascending order. Every
//! candidate it yields is re-checked against the whole filter, so index bounds may be loose
//! (they are always inclusive) but never too tight.

use crate::format;
use crate::index::{self, IndexDef};
use crate::query::{Filter, FindOptions, Order};
use crate::value::{Map, Value};
use crate::Result;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Bound;

/// How the documents are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every document of the collection, in `_id` order.
    Scan,
    /// The index entries with keys in `[lo, hi)`, each leading to one document.
    Index {
        index: String,
        /// Leading index fields fixed by equalities.
        eq_fields: usize,
        /// Whether the next field is bounded by a range.
        range: bool,
        lo: Vec<u8>,
        hi: Option<Vec<u8>>,
        /// The index holds several entries per document (arrays): skip repeats.
        multikey: bool,
        def_id: u32,
    },
}

/// The plan of one find.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub access: Access,
    /// Candidates come out in the requested order: no sort in memory.
    pub ordered: bool,
}

impl Plan {
    /// A description for `explain`: `{"access":"scan"|"index", "index":..., "sort":...}`.
    pub fn explain(&self, sorting: bool) -> Value {
        let mut m = Map::new();
        match &self.access {
            Access::Scan => {
                m.insert("access".into(), Value::Str("scan".into()));
            }
            Access::Index {
                index,
                eq_fields,
                range,
                multikey,
                ..
            } => {
                m.insert("access".into(), Value::Str("index".into()));
                m.insert("index".into(), Value::Str(index.clone()));
                m.insert("equality_fields".into(), Value::Int(*eq_fields as i64));
                m.insert("range".into(), Value::Bool(*range));
                m.insert("multikey".into(), Value::Bool(*multikey));
            }
        }
        let sort = match (sorting, self.ordered) {
            (false, _) => "none",
            (true, true) => "index",
            (true, false) => "memory",
        };
        m.insert("sort".into(), Value::Str(sort.into()));
        Value::Map(m)
    }
}

/// Whether a query given as `query` (a filter document) is at least as strict as the partial
/// filter `partial`: every top-level condition of `partial` appears verbatim in `query`.
fn implies(query: Option<&Value>, partial: &Value) -> bool {
    let (Some(Value::Map(q)), Value::Map(p)) = (query, partial) else {
        return false;
    };
    p.iter()
        .all(|(k, v)| !k.starts_with('$') && q.get(k) == Some(v))
}

fn is_indexable_scalar(v: &Value) -> bool {
    matches!(
        v,
        Value::Null
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Str(_)
            | Value::Bytes(_)
    )
}

/// The lowest key byte of values of the same kind as `v` (type bracketing for open ranges).
fn kind_floor(prefix: &[u8], v: &Value) -> Result<Vec<u8>> {
    let mut k = prefix.to_vec();
    let mut enc = Vec::new();
    index::encode_value(v, &mut enc)?;
    k.push(enc.first().copied().unwrap_or(0));
    Ok(k)
}

fn kind_ceiling(prefix: &[u8], v: &Value) -> Result<Vec<u8>> {
    let mut k = prefix.to_vec();
    let mut enc = Vec::new();
    index::encode_value(v, &mut enc)?;
    k.push(enc.first().copied().unwrap_or(0).saturating_add(1));
    Ok(k)
}

fn bound_value<'a>(b: &Bound<&'a Value>) -> Option<&'a Value> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

/// Choose the access path for `filter` over a collection with indexes `defs`.
/// `query` is the filter as a document when the caller has one (needed to use partial indexes).
pub fn plan(
    defs: &[IndexDef],
    filter: &Filter,
    query: Option<&Value>,
    opts: &FindOptions,
) -> Result<Plan> {
    let sort_field = match opts.sort.as_slice() {
        [(f, Order::Asc)] => Some(f.as_str()),
        _ => None,
    };
    let scan_ordered = opts.sort.is_empty() || sort_field == Some("_id");
    let mut best: Option<(usize, bool, usize, Plan)> = None;
    for def in defs {
        if let Some(p) = &def.partial {
            if !implies(query, p) {
                continue;
            }
        }
        let mut prefix = def.prefix().to_vec();
        let mut eq = 0;
        for f in &def.fields {
            match filter.equality_on(f) {
                Some(v) if is_indexable_scalar(v) => {
                    index::encode_value(v, &mut prefix)?;
                    eq += 1;
                }
                _ => break,
            }
        }
        let mut range = false;
        let (mut lo, mut hi) = (prefix.clone(), format::prefix_end(&prefix));
        if let Some(next) = def.fields.get(eq) {
            if let Some((l, h)) = filter.range_on(next) {
                let (lv, mut hv) = (bound_value(&l), bound_value(&h));
                // With arrays, one element may satisfy the lower bound and another the upper:
                // the document has no entry between them. Bound one side only.
                if def.multikey && lv.is_some() {
                    hv = None;
                }
                if let Some(anchor) = lv.or(hv) {
                    range = true;
                    lo = match lv {
                        Some(v) => {
                            let mut k = prefix.clone();
                            index::encode_value(v, &mut k)?;
                            k
                        }
                        None => kind_floor(&prefix, anchor)?,
                    };
                    hi = match hv {
                        Some(v) => {
                            let mut k = prefix.clone();
                            index::encode_value(v, &mut k)?;
                            format::prefix_end(&k)
                        }
                        None => Some(kind_ceiling(&prefix, anchor)?),
                    };
                }
            }
        }
        // Results follow the next unfixed field's order when nothing repeats a document.
        let ordered = match sort_field {
            Some(f) => !def.multikey && def.fields.get(eq).is_some_and(|n| n == f),
            None => opts.sort.is_empty(),
        };
        if eq == 0 && !range && !(ordered && sort_field.is_some() && def.partial.is_none()) {
            continue;
        }
        let candidate = Plan {
            access: Access::Index {
                index: def.name.clone(),
                eq_fields: eq,
                range,
                lo,
                hi,
                multikey: def.multikey,
                def_id: def.id,
            },
            ordered,
        };
        let better = match &best {
            None => true,
            Some((be, br, bf, _)) => {
                (eq, range, usize::MAX - def.fields.len()) > (*be, *br, usize::MAX - *bf)
            }
        };
        if better {
            best = Some((eq, range, def.fields.len(), candidate));
        }
    }
    Ok(match best {
        Some((eq, range, _, p)) if eq > 0 || range => p,
        // Only an order to serve: worth it unless the scan is ordered already.
        Some((_, _, _, p)) if !scan_ordered => p,
        _ => Plan {
            access: Access::Scan,
            ordered: scan_ordered,
        },
    })
}
