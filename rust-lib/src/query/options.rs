//! Find options (sort, skip, limit, projection), document ordering and a bounded `distinct`.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{check_path, Limits};
use crate::error::{Error, Result};
use crate::value::{self, compare, get_path, Map, Value};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `1`: smallest first.
    Asc,
    /// `-1`: largest first.
    Desc,
}

/// Options of a find: `{"sort":{"temp":-1,"_id":1},"skip":5,"limit":10,
/// "projection":{"room":1,"temp":1}}`, every key optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindOptions {
    /// Sort keys, most significant first (see [`compare_docs`]). Empty: store order.
    pub sort: Vec<(String, Order)>,
    /// Matching documents to pass over (after sorting) before the first one returned.
    pub skip: u64,
    /// Most documents returned; `None` for no limit (`Some(0)` returns nothing).
    pub limit: Option<u64>,
    /// Fields to return; `None` for whole documents.
    pub projection: Option<Projection>,
}

impl FindOptions {
    /// Parses options from JSON text (see [`FindOptions::from_value`]).
    pub fn from_json(text: &[u8], limits: &Limits) -> Result<Self> {
        let v = value::from_json(text, limits.depth())?;
        FindOptions::from_value(&v, limits)
    }

    /// Parses an options map. `sort` is a map of path to `1` or `-1`, in significance order;
    /// `skip` a non-negative integer; `limit` a non-negative integer or null; `projection` a
    /// [`Projection`] map or null. Errors: [`Error::BadFilter`] for an unknown key or a wrong
    /// value, [`Error::TooLarge`] for more than [`Limits::max_list`] sort keys,
    /// [`Error::TooDeep`] past [`Limits::max_depth`].
    pub fn from_value(v: &Value, limits: &Limits) -> Result<Self> {
        if v.depth() > limits.depth() {
            return Err(Error::TooDeep);
        }
        let Value::Map(m) = v else {
            return Err(Error::BadFilter);
        };
        let mut o = FindOptions::default();
        for (k, v) in m.iter() {
            match (k, v) {
                ("sort", v) => o.sort = parse_sort(v, limits)?,
                ("skip", v) => o.skip = count(v)?,
                ("limit", Value::Null) => o.limit = None,
                ("limit", v) => o.limit = Some(count(v)?),
                ("projection", Value::Null) => o.projection = None,
                ("projection", v) => o.projection = Some(Projection::from_value(v, limits)?),
                _ => return Err(Error::BadFilter),
            }
        }
        Ok(o)
    }
}

fn count(v: &Value) -> Result<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| Error::BadFilter),
        _ => Err(Error::BadFilter),
    }
}

fn parse_sort(v: &Value, limits: &Limits) -> Result<Vec<(String, Order)>> {
    let Value::Map(m) = v else {
        return Err(Error::BadFilter);
    };
    if m.len() > limits.max_list {
        return Err(Error::TooLarge);
    }
    m.iter()
        .map(|(path, dir)| {
            check_path(path)?;
            let order = match dir {
                Value::Int(1) => Order::Asc,
                Value::Int(-1) => Order::Desc,
                _ => return Err(Error::BadFilter),
            };
            Ok((path.to_owned(), order))
        })
        .collect()
}

/// The value used to sort a document that lacks the path.
const NULL: &Value = &Value::Null;

/// Orders two documents by `sort`: each path's values by [`compare`] (a missing value sorts
/// as null, so before everything else), reversed for [`Order::Desc`], the first difference
/// deciding. Arrays and maps compare as whole values. Equal on every key: `Equal`.
pub fn compare_docs(sort: &[(String, Order)], a: &Value, b: &Value) -> Ordering {
    for (path, order) in sort {
        let x = get_path(a, path).unwrap_or(NULL);
        let y = get_path(b, path).unwrap_or(NULL);
        let o = match order {
            Order::Asc => compare(x, y),
            Order::Desc => compare(y, x),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Which fields of a document to return.
///
/// An include projection keeps only the listed paths (and `_id`, unless excluded with
/// `"_id": 0`); an exclude projection removes the listed paths. Dotted paths address inside
/// maps and, with a decimal segment, array positions (an include keeps the selected elements
/// in order, so `{"a.1":1}` on `{"a":[10,20,30]}` gives `{"a":[20]}`); there is no fan-out
/// over array elements. An include path that crosses a scalar or a missing field contributes
/// nothing, but the maps on its way that do exist are kept (possibly empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    include: bool,
    paths: Vec<String>,
}

const ID: &str = "_id";

impl Projection {
    /// Keeps `paths` (and `_id` if `keep_id`). Errors: [`Error::BadFilter`] for a bad path.
    pub fn include(paths: &[&str], keep_id: bool) -> Result<Self> {
        let mut p = Projection::exclude(paths)?;
        p.include = true;
        if keep_id && !p.paths.iter().any(|x| x == ID) {
            p.paths.push(ID.to_owned());
        }
        Ok(p)
    }

    /// Removes `paths`. Errors: [`Error::BadFilter`] for a bad path.
    pub fn exclude(paths: &[&str]) -> Result<Self> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            check_path(p)?;
            out.push((*p).to_owned());
        }
        Ok(Projection {
            include: false,
            paths: out,
        })
    }

    /// Parses `{"path": 1|true, ...}` (include) or `{"path": 0|false, ...}` (exclude). Mixing
    /// is [`Error::BadFilter`], except `"_id": 0` in an include projection. `{}` keeps
    /// everything. Errors also: [`Error::TooLarge`] past [`Limits::max_list`] paths,
    /// [`Error::TooDeep`] past [`Limits::max_depth`].
    pub fn from_value(v: &Value, limits: &Limits) -> Result<Self> {
        if v.depth() > limits.depth() {
            return Err(Error::TooDeep);
        }
        let Value::Map(m) = v else {
            return Err(Error::BadFilter);
        };
        if m.len() > limits.max_list {
            return Err(Error::TooLarge);
        }
        let mut inc = Vec::new();
        let mut exc = Vec::new();
        let mut id = None;
        for (path, flag) in m.iter() {
            check_path(path)?;
            let keep = match flag {
                Value::Int(1) | Value::Bool(true) => true,
                Value::Int(0) | Value::Bool(false) => false,
                _ => return Err(Error::BadFilter),
            };
            if path == ID {
                id = Some(keep);
            } else if keep {
                inc.push(path.to_owned());
            } else {
                exc.push(path.to_owned());
            }
        }
        match (inc.is_empty(), exc.is_empty(), id) {
            (false, false, _) | (true, false, Some(true)) => Err(Error::BadFilter),
            (true, _, Some(false)) | (true, _, None) => {
                if id == Some(false) {
                    exc.push(ID.to_owned());
                }
                Ok(Projection {
                    include: false,
                    paths: exc,
                })
            }
            (_, true, id) => {
                if id != Some(false) {
                    inc.push(ID.to_owned());
                }
                Ok(Projection {
                    include: true,
                    paths: inc,
                })
            }
        }
    }

    /// Whether this is an include projection.
    pub fn is_include(&self) -> bool {
        self.include
    }

    /// The listed paths (for an include projection, `_id` is among them unless excluded).
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The projected copy of `doc`. A scalar `doc` is returned as is by an exclude projection
    /// and as an empty map by an include one.
    pub fn apply(&self, doc: &Value) -> Value {
        let paths: Vec<&str> = self.paths.iter().map(String::as_str).collect();
        match doc {
            Value::Map(_) | Value::Array(_) => prune(doc, &paths, self.include),
            _ if self.include => Value::Map(Map::new()),
            other => other.clone(),
        }
    }
}

/// A child's name: a map key or an array position.
#[derive(Clone, Copy)]
enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

impl Key<'_> {
    fn is(self, seg: &str) -> bool {
        match self {
            Key::Name(k) => k == seg,
            Key::Index(i) => value::parse_index(seg) == Some(i),
        }
    }
}

/// Projects the container `v`; `paths` are the remaining path suffixes inside it. Recursion
/// takes one path segment per level, so it is bounded by the longest path.
fn prune(v: &Value, paths: &[&str], include: bool) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter_map(|(k, x)| Some((k.to_owned(), child(Key::Name(k), x, paths, include)?)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .filter_map(|(i, x)| child(Key::Index(i), x, paths, include))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What becomes of the child `x` named `key`: dropped (`None`), kept whole, or pruned.
fn child(key: Key<'_>, x: &Value, paths: &[&str], include: bool) -> Option<Value> {
    let mut rest: Vec<&str> = Vec::new();
    for p in paths {
        let (first, tail) = match p.split_once('.') {
            Some((f, t)) => (f, Some(t)),
            None => (*p, None),
        };
        if key.is(first) {
            match tail {
                // The path names this child itself.
                None => return include.then(|| x.clone()),
                Some(t) => rest.push(t),
            }
        }
    }
    match x {
        Value::Map(_) | Value::Array(_) if !rest.is_empty() => Some(prune(x, &rest, include)),
        _ => (!include).then(|| x.clone()),
    }
}

/// Collects distinct values (by [`compare`], so `1` and `1.0` are one value; the first seen is
/// kept), sorted, up to a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Distinct {
    values: Vec<Value>,
    max: usize,
}

impl Distinct {
    /// An empty set that will hold at most `max` values.
    pub fn new(max: usize) -> Self {
        Distinct {
            values: Vec::new(),
            max,
        }
    }

    /// Adds `v` unless an equal value is present; returns whether it was added.
    /// [`Error::TooLarge`] if it is new and the set is full (the set is unchanged).
    pub fn push(&mut self, v: &Value) -> Result<bool> {
        match self.values.binary_search_by(|x| compare(x, v)) {
            Ok(_) => Ok(false),
            Err(_) if self.values.len() >= self.max => Err(Error::TooLarge),
            Err(i) => {
                self.values.insert(i, v.clone());
                Ok(true)
            }
        }
    }

    /// Adds the value at `path` of `doc` as `distinct` on a field does: nothing if missing,
    /// each element of an array (one level), otherwise the value itself.
    pub fn push_field(&mut self, doc: &Value, path: &str) -> Result<()> {
        match get_path(doc, path) {
            None => {}
            Some(Value::Array(a)) => {
                for e in a {
                    self.push(e)?;
                }
            }
            Some(v) => {
                self.push(v)?;
            }
        }
        Ok(())
    }

    /// The values, in [`compare`] order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, in [`compare`] order.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
