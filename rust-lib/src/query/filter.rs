//! Filters: a Mongo-style query language over documents, compiled once and evaluated many
//! times with [`Filter::matches`].
//!
//! A filter document is a map. Each entry is either a field condition or a logical operator,
//! and all entries must hold (implicit AND):
//!
//! - `{"path": value}`: implicit equality (same as `{"path": {"$eq": value}}`); `value` may
//!   be any value, including a map without `$` keys.
//! - `{"path": {"$op": operand, ...}}`: field operators, all of which must hold. A map with
//!   any `$` key is an operator map and every key must then be a known operator.
//! - `{"$and": [filter, ...]}`, `{"$or": [...]}`, `{"$nor": [...]}` (non-empty lists),
//!   `{"$not": filter}`.
//!
//! Paths are dotted, with [`get_path`] semantics: each segment is a map key or,
//! on an array, a decimal position (`a.b.0.c`). There is no implicit fan-out over arrays:
//! `items.name` does not look inside the elements of an `items` array.
//!
//! Field operators, with `v` the value at the path (absent if the path does not resolve):
//!
//! - `$eq x`: `v` compares Equal to `x` under [`compare`] (so `1` equals `1.0`, exactly), or
//!   `v` is an array with such an element (`{"tags":"x"}` matches `{"tags":["x","y"]}`). An
//!   array operand therefore matches that exact array (or an element equal to it). `$eq
//!   null` also matches an absent `v`.
//! - `$ne x`: not `$eq x`. It matches an absent `v` unless `x` is null.
//! - `$in [x, ...]`: `$eq` for some listed `x` (a null in the list matches absent `v`);
//!   `$nin`: not `$in`.
//! - `$gt $gte $lt $lte x`: type-bracketed. `x` must be a number, string, bytes or bool (else
//!   the filter is malformed); only values of that same kind match (Int and Float are one
//!   kind), ordered by [`compare`]: numbers exactly, strings and bytes bytewise, `false <
//!   true`. A NaN sorts above every number, as in [`compare`]. For an array `v` the operator
//!   matches if any element matches.
//! - `$exists b`: `v` is present (`true`) or absent (`false`); `b` must be a bool.
//! - `$type name`: `v` is present and of that type (`"null" "bool" "int" "float" "number"
//!   "string" "bytes" "array" "map"`). Arrays are not looked into.
//! - `$contains x`: a string `v` contains the string `x` as a substring, or an array `v` has
//!   an element equal to `x` (as `$eq`).
//! - `$regex "pattern"` with optional `"$options": "i"` (ASCII case-insensitive): `v` is a
//!   string, or an array with a string element, in which the pattern matches somewhere.
//!   Needs the `regex` cargo feature; without it `$regex` is [`Error::InvalidArgument`].
//! - `$not {ops}`: the operator map does not hold (so it matches an absent `v`).
//!
//! Errors from parsing: [`Error::BadFilter`] (unknown operator, wrong operand type, mixed
//! operator/plain map, bad path or pattern), [`Error::TooDeep`] (the filter document nests
//! deeper than [`Limits::max_depth`]), [`Error::TooLarge`] (a list longer than
//! [`Limits::max_list`]).

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Bound;
use core::slice;

use super::{check_path, Limits};
use crate::error::{Error, Result};
use crate::value::{self, compare, get_path, Map, Value, MAX_DEPTH_LIMIT};

/// A type name for `$type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Null,
    Bool,
    Int,
    Float,
    /// Int or Float.
    Number,
    String,
    Bytes,
    Array,
    Map,
}

impl ValueType {
    /// The type for a `$type` operand name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "null" => ValueType::Null,
            "bool" => ValueType::Bool,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "number" => ValueType::Number,
            "string" => ValueType::String,
            "bytes" => ValueType::Bytes,
            "array" => ValueType::Array,
            "map" => ValueType::Map,
            _ => return None,
        })
    }

    /// Whether `v` is of this type.
    pub fn matches(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (ValueType::Null, Value::Null)
                | (ValueType::Bool, Value::Bool(_))
                | (ValueType::Int | ValueType::Number, Value::Int(_))
                | (ValueType::Float | ValueType::Number, Value::Float(_))
                | (ValueType::String, Value::Str(_))
                | (ValueType::Bytes, Value::Bytes(_))
                | (ValueType::Array, Value::Array(_))
                | (ValueType::Map, Value::Map(_))
        )
    }
}

/// A compiled filter. Build one from JSON ([`Filter::from_json`]), from a [`Value`]
/// ([`Filter::from_value`]) or with the builder functions (`Filter::eq("room", "R101")
/// .and(Filter::gt("temp", 20.0))`); equivalent forms compile to equal filters.
///
/// The builder does not check paths: an empty path `""` addresses the tested value itself,
/// any other unresolvable path is simply absent. Builder trees are flattened (`a.and(b)
/// .and(c)` is one AND); evaluation refuses trees nested deeper than [`MAX_DEPTH_LIMIT`]
/// (see [`Filter::try_matches`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// All hold (empty: matches everything).
    And(Vec<Node>),
    /// One holds (empty: matches nothing).
    Or(Vec<Node>),
    Not(Box<Node>),
    Field(String, Cond),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A test of the value at one path (`$ne`/`$nin` are `Not` of `Eq`/`In`).
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Value),
    Cmp(Cmp, Value),
    In(Vec<Value>),
    Exists(bool),
    Type(ValueType),
    Contains(Value),
    #[cfg(feature = "regex")]
    Regex(super::regex::Regex),
}

/// The comparison bracket of a value: only values of the same bracket are ordered by
/// `$gt`/`$gte`/`$lt`/`$lte`.
fn bracket(v: &Value) -> Option<u8> {
    match v {
        Value::Bool(_) => Some(1),
        Value::Int(_) | Value::Float(_) => Some(2),
        Value::Str(_) => Some(3),
        Value::Bytes(_) => Some(4),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Equality with array membership (one level, as Mongo).
fn eq_or_elem(v: &Value, x: &Value) -> bool {
    same(v, x) || v.as_array().is_some_and(|a| a.iter().any(|e| same(e, x)))
}

impl Cmp {
    fn test(self, v: &Value, x: &Value) -> bool {
        if bracket(v).is_none() || bracket(v) != bracket(x) {
            return false;
        }
        let o = compare(v, x);
        match self {
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Gte => o != Ordering::Less,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Lte => o != Ordering::Greater,
        }
    }
}

impl Cond {
    /// `v` is the value at the path, `None` if absent. Errors only from a regex budget.
    fn test(&self, v: Option<&Value>) -> Result<bool> {
        let Some(v) = v else {
            return Ok(match self {
                Cond::Eq(x) => x.is_null(),
                Cond::In(xs) => xs.iter().any(Value::is_null),
                Cond::Exists(b) => !b,
                _ => false,
            });
        };
        Ok(match self {
            Cond::Eq(x) => eq_or_elem(v, x),
            Cond::In(xs) => xs.iter().any(|x| eq_or_elem(v, x)),
            Cond::Cmp(op, x) => match v {
                Value::Array(a) => a.iter().any(|e| op.test(e, x)),
                _ => op.test(v, x),
            },
            Cond::Exists(b) => *b,
            Cond::Type(t) => t.matches(v),
            Cond::Contains(x) => match (v, x) {
                (Value::Str(s), Value::Str(sub)) => s.contains(sub.as_str()),
                (Value::Array(a), _) => a.iter().any(|e| same(e, x)),
                _ => false,
            },
            #[cfg(feature = "regex")]
            Cond::Regex(re) => match v {
                Value::Str(s) => re.is_match(s)?,
                Value::Array(a) => {
                    for e in a {
                        if let Value::Str(s) = e {
                            if re.is_match(s)? {
                                return Ok(true);
                            }
                        }
                    }
                    false
                }
                _ => false,
            },
        })
    }
}

impl Node {
    fn eval(&self, doc: &Value, depth: usize) -> Result<bool> {
        // Parsed filters are shallow; this only guards hand-built trees.
        if depth > MAX_DEPTH_LIMIT {
            return Err(Error::TooDeep);
        }
        match self {
            Node::And(list) => {
                for n in list {
                    if !n.eval(doc, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Or(list) => {
                for n in list {
                    if n.eval(doc, depth + 1)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Not(n) => Ok(!n.eval(doc, depth + 1)?),
            Node::Field(path, c) => {
                let v = if path.is_empty() {
                    Some(doc)
                } else {
                    get_path(doc, path)
                };
                c.test(v)
            }
        }
    }
}

// Smart constructors shared by the parser and the builder, so equivalent forms give equal
// trees: nested ANDs/ORs are flattened, single-element ones unwrapped, double negation removed.

fn push_and(list: &mut Vec<Node>, n: Node) {
    match n {
        Node::And(v) => list.extend(v),
        n => list.push(n),
    }
}

fn and_of(mut list: Vec<Node>) -> Node {
    if list.len() == 1 {
        if let Some(n) = list.pop() {
            return n;
        }
    }
    Node::And(list)
}

fn or_of(items: Vec<Node>) -> Node {
    let mut list = Vec::with_capacity(items.len());
    for n in items {
        match n {
            Node::Or(v) => list.extend(v),
            n => list.push(n),
        }
    }
    if list.len() == 1 {
        if let Some(n) = list.pop() {
            return n;
        }
    }
    Node::Or(list)
}

fn not_of(n: Node) -> Node {
    match n {
        Node::Not(inner) => *inner,
        n => Node::Not(Box::new(n)),
    }
}

fn field(path: &str, c: Cond) -> Node {
    Node::Field(path.to_owned(), c)
}

// ---- parsing ----

/// Compiles the entries of a filter document into `out` (to be AND-ed).
fn compile_doc(m: &Map, lim: &Limits, out: &mut Vec<Node>) -> Result<()> {
    for (k, v) in m.iter() {
        match k {
            "$and" => {
                for n in compile_list(v, lim)? {
                    push_and(out, n);
                }
            }
            "$or" => push_and(out, or_of(compile_list(v, lim)?)),
            "$nor" => push_and(out, not_of(or_of(compile_list(v, lim)?))),
            "$not" => {
                let Value::Map(sub) = v else {
                    return Err(Error::BadFilter);
                };
                let mut inner = Vec::new();
                compile_doc(sub, lim, &mut inner)?;
                push_and(out, not_of(and_of(inner)));
            }
            _ if k.starts_with('$') => return Err(Error::BadFilter),
            _ => {
                check_path(k)?;
                match v {
                    Value::Map(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                        compile_ops(k, ops, lim, out)?;
                    }
                    _ => out.push(field(k, Cond::Eq(v.clone()))),
                }
            }
        }
    }
    Ok(())
}

/// A non-empty list of filter documents, for `$and`/`$or`/`$nor`.
fn compile_list(v: &Value, lim: &Limits) -> Result<Vec<Node>> {
    let items = operand_list(v, lim)?;
    if items.is_empty() {
        return Err(Error::BadFilter);
    }
    let mut nodes = Vec::with_capacity(items.len());
    for it in items {
        let Value::Map(m) = it else {
            return Err(Error::BadFilter);
        };
        let mut inner = Vec::new();
        compile_doc(m, lim, &mut inner)?;
        nodes.push(and_of(inner));
    }
    Ok(nodes)
}

fn operand_list<'a>(v: &'a Value, lim: &Limits) -> Result<&'a [Value]> {
    let Value::Array(items) = v else {
        return Err(Error::BadFilter);
    };
    if items.len() > lim.max_list {
        return Err(Error::TooLarge);
    }
    Ok(items)
}

/// Compiles an operator map on `path` into `out` (to be AND-ed).
fn compile_ops(path: &str, ops: &Map, lim: &Limits, out: &mut Vec<Node>) -> Result<()> {
    for (op, arg) in ops.iter() {
        let cmp = |c| {
            if bracket(arg).is_none() {
                return Err(Error::BadFilter);
            }
            Ok(field(path, Cond::Cmp(c, arg.clone())))
        };
        let node = match op {
            "$eq" => field(path, Cond::Eq(arg.clone())),
            "$ne" => not_of(field(path, Cond::Eq(arg.clone()))),
            "$gt" => cmp(Cmp::Gt)?,
            "$gte" => cmp(Cmp::Gte)?,
            "$lt" => cmp(Cmp::Lt)?,
            "$lte" => cmp(Cmp::Lte)?,
            "$in" => field(path, Cond::In(operand_list(arg, lim)?.to_vec())),
            "$nin" => not_of(field(path, Cond::In(operand_list(arg, lim)?.to_vec()))),
            "$exists" => field(path, Cond::Exists(arg.as_bool().ok_or(Error::BadFilter)?)),
            "$type" => {
                let t = arg.as_str().and_then(ValueType::from_name);
                field(path, Cond::Type(t.ok_or(Error::BadFilter)?))
            }
            "$contains" => field(path, Cond::Contains(arg.clone())),
            "$regex" => field(path, regex_cond(arg, ops.get("$options"), lim)?),
            "$options" if ops.contains_key("$regex") => continue,
            "$not" => {
                let Value::Map(sub) = arg else {
                    return Err(Error::BadFilter);
                };
                if sub.is_empty() || !sub.keys().all(|k| k.starts_with('$')) {
                    return Err(Error::BadFilter);
                }
                let mut inner = Vec::new();
                compile_ops(path, sub, lim, &mut inner)?;
                not_of(and_of(inner))
            }
            _ => return Err(Error::BadFilter),
        };
        push_and(out, node);
    }
    Ok(())
}

#[cfg(feature = "regex")]
fn regex_cond(pattern: &Value, options: Option<&Value>, lim: &Limits) -> Result<Cond> {
    let Value::Str(p) = pattern else {
        return Err(Error::BadFilter);
    };
    let icase = match options {
        None => false,
        Some(Value::Str(o)) if o.chars().all(|c| c == 'i') => !o.is_empty(),
        Some(_) => return Err(Error::BadFilter),
    };
    super::regex::Regex::new(p, icase, lim.depth(), lim.regex_steps).map(Cond::Regex)
}

#[cfg(not(feature = "regex"))]
fn regex_cond(_: &Value, _: Option<&Value>, _: &Limits) -> Result<Cond> {
    // Built without the `regex` feature.
    Err(Error::InvalidArgument)
}

impl Filter {
    /// Parses a filter from JSON text. Errors: those of [`value::from_json`] (with
    /// `limits.max_depth`), then those of [`Filter::from_value`].
    pub fn from_json(text: &[u8], limits: &Limits) -> Result<Filter> {
        let v = value::from_json(text, limits.depth())?;
        Filter::from_value(&v, limits)
    }

    /// Compiles a filter document (a map; see the module documentation).
    pub fn from_value(v: &Value, limits: &Limits) -> Result<Filter> {
        // Checked up front, so that compilation recurses at most this deep.
        if v.depth() > limits.depth() {
            return Err(Error::TooDeep);
        }
        let Value::Map(m) = v else {
            return Err(Error::BadFilter);
        };
        let mut out = Vec::new();
        compile_doc(m, limits, &mut out)?;
        Ok(Filter(and_of(out)))
    }

    /// For `$pull`: a test of array elements. An operand whose first key is a field operator
    /// (anything but `$and`/`$or`/`$nor`) tests the element itself (`{"$in":[..]}`, `{"$gt":
    /// 5}`); any other map is a filter document applied to the element.
    pub(crate) fn for_elements(operand: &Value, limits: &Limits) -> Result<Filter> {
        if operand.depth() > limits.depth() {
            return Err(Error::TooDeep);
        }
        let Value::Map(m) = operand else {
            return Err(Error::BadFilter);
        };
        match m.keys().next() {
            Some(k) if k.starts_with('$') && !matches!(k, "$and" | "$or" | "$nor") => {
                let mut out = Vec::new();
                compile_ops("", m, limits, &mut out)?;
                Ok(Filter(and_of(out)))
            }
            _ => Filter::from_value(operand, limits),
        }
    }

    /// Whether `doc` matches. A document on which a `$regex` exceeds its step budget (or a
    /// hand-built filter that nests too deep) does not match; see [`Filter::try_matches`].
    pub fn matches(&self, doc: &Value) -> bool {
        self.try_matches(doc).unwrap_or(false)
    }

    /// Whether `doc` matches, or [`Error::TooLarge`] if a `$regex` test exceeded
    /// [`Limits::regex_steps`], or [`Error::TooDeep`] for a builder-made filter nested
    /// deeper than [`MAX_DEPTH_LIMIT`].
    pub fn try_matches(&self, doc: &Value) -> Result<bool> {
        self.0.eval(doc, 0)
    }

    // ---- for the query planner ----

    fn conjuncts(&self) -> &[Node] {
        match &self.0 {
            Node::And(list) => list,
            n => slice::from_ref(n),
        }
    }

    /// A top-level AND-ed equality (`{"path": x}` or `$eq`) on exactly `path`, if any.
    ///
    /// Contract: every matching document has at `path` a value that compares Equal to `x`, or
    /// an array with such an element (one level), or, only when `x` is null, no value at all.
    /// Candidates must still be re-checked with [`Filter::matches`].
    pub fn equality_on(&self, path: &str) -> Option<&Value> {
        self.conjuncts().iter().find_map(|n| match n {
            Node::Field(p, Cond::Eq(x)) if p == path => Some(x),
            _ => None,
        })
    }

    /// The tightest bounds implied by the top-level AND-ed `$gt/$gte/$lt/$lte/$eq` on exactly
    /// `path`, when there is at least one and their operands are all numbers or all strings
    /// (otherwise `None`). Bounds are in [`compare`] order.
    ///
    /// Contract: every matching document whose value at `path` is not an array has that value
    /// within the bounds (and of the operands' kind). For an array value each bound is met by
    /// some element, possibly a different one per bound, so a multikey index scan must not
    /// intersect the two bounds. Candidates must still be re-checked with [`Filter::matches`].
    pub fn range_on(&self, path: &str) -> Option<(Bound<&Value>, Bound<&Value>)> {
        use Bound::{Excluded, Included, Unbounded};
        let mut lo = Unbounded;
        let mut hi = Unbounded;
        let mut kind = None;
        for n in self.conjuncts() {
            let Node::Field(p, c) = n else { continue };
            if p != path {
                continue;
            }
            let (x, l, h) = match c {
                Cond::Eq(x) => (x, Included(x), Included(x)),
                Cond::Cmp(Cmp::Gt, x) => (x, Excluded(x), Unbounded),
                Cond::Cmp(Cmp::Gte, x) => (x, Included(x), Unbounded),
                Cond::Cmp(Cmp::Lt, x) => (x, Unbounded, Excluded(x)),
                Cond::Cmp(Cmp::Lte, x) => (x, Unbounded, Included(x)),
                _ => continue,
            };
            let k = bracket(x).filter(|&k| k == 2 || k == 3)?;
            if *kind.get_or_insert(k) != k {
                return None;
            }
            lo = tighter(lo, l, Ordering::Greater);
            hi = tighter(hi, h, Ordering::Less);
        }
        kind.map(|_| (lo, hi))
    }

    /// The distinct paths the filter reads, in order of first appearance.
    pub fn paths(&self) -> impl Iterator<Item = &str> + '_ {
        let mut out: Vec<&str> = Vec::new();
        // An explicit stack: builder trees may be deep.
        let mut stack = alloc::vec![&self.0];
        while let Some(n) = stack.pop() {
            match n {
                Node::And(l) | Node::Or(l) => stack.extend(l.iter().rev()),
                Node::Not(n) => stack.push(n),
                Node::Field(p, _) => {
                    if !out.contains(&p.as_str()) {
                        out.push(p);
                    }
                }
            }
        }
        out.into_iter()
    }

    /// Whether this is the empty filter (matches every document).
    pub fn is_all(&self) -> bool {
        matches!(&self.0, Node::And(l) if l.is_empty())
    }

    // ---- builder ----

    /// Matches every document (the filter `{}`).
    pub fn all() -> Filter {
        Filter(Node::And(Vec::new()))
    }

    /// `{path: {"$eq": v}}`.
    pub fn eq(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Eq(v.into())))
    }

    /// `{path: {"$ne": v}}`.
    pub fn ne(path: &str, v: impl Into<Value>) -> Filter {
        Filter(not_of(field(path, Cond::Eq(v.into()))))
    }

    /// `{path: {"$gt": v}}` (an operand that is not a number, string, bytes or bool matches
    /// nothing).
    pub fn gt(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Cmp(Cmp::Gt, v.into())))
    }

    /// `{path: {"$gte": v}}`.
    pub fn gte(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Cmp(Cmp::Gte, v.into())))
    }

    /// `{path: {"$lt": v}}`.
    pub fn lt(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Cmp(Cmp::Lt, v.into())))
    }

    /// `{path: {"$lte": v}}`.
    pub fn lte(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Cmp(Cmp::Lte, v.into())))
    }

    /// `{path: {"$in": values}}`.
    pub fn in_(path: &str, values: Vec<Value>) -> Filter {
        Filter(field(path, Cond::In(values)))
    }

    /// `{path: {"$nin": values}}`.
    pub fn nin(path: &str, values: Vec<Value>) -> Filter {
        Filter(not_of(field(path, Cond::In(values))))
    }

    /// `{path: {"$exists": yes}}`.
    pub fn exists(path: &str, yes: bool) -> Filter {
        Filter(field(path, Cond::Exists(yes)))
    }

    /// `{path: {"$type": t}}`.
    pub fn has_type(path: &str, t: ValueType) -> Filter {
        Filter(field(path, Cond::Type(t)))
    }

    /// `{path: {"$contains": v}}`.
    pub fn contains(path: &str, v: impl Into<Value>) -> Filter {
        Filter(field(path, Cond::Contains(v.into())))
    }

    /// `{path: {"$regex": pattern, "$options": "i" if case_insensitive}}`; the pattern is
    /// checked and compiled with `limits`.
    #[cfg(feature = "regex")]
    pub fn regex(
        path: &str,
        pattern: &str,
        case_insensitive: bool,
        limits: &Limits,
    ) -> Result<Filter> {
        let re = super::regex::Regex::new(
            pattern,
            case_insensitive,
            limits.depth(),
            limits.regex_steps,
        )?;
        Ok(Filter(field(path, Cond::Regex(re))))
    }

    /// Both hold.
    pub fn and(self, other: Filter) -> Filter {
        Filter::all_of(alloc::vec![self, other])
    }

    /// Either holds.
    pub fn or(self, other: Filter) -> Filter {
        Filter::any(alloc::vec![self, other])
    }

    /// All hold (`$and`; empty: matches everything).
    pub fn all_of(filters: Vec<Filter>) -> Filter {
        let mut list = Vec::with_capacity(filters.len());
        for f in filters {
            push_and(&mut list, f.0);
        }
        Filter(and_of(list))
    }

    /// One holds (`$or`; empty: matches nothing).
    pub fn any(filters: Vec<Filter>) -> Filter {
        Filter(or_of(filters.into_iter().map(|f| f.0).collect()))
    }

    /// Does not hold (`$not`).
    #[allow(clippy::should_implement_trait)] // a constructor, not negation of `self`
    pub fn not(f: Filter) -> Filter {
        Filter(not_of(f.0))
    }
}

/// `new` if it is tighter than `cur` in the direction `want` (Greater for a lower bound, Less
/// for an upper one); on a tie the exclusive bound is tighter.
fn tighter<'a>(cur: Bound<&'a Value>, new: Bound<&'a Value>, want: Ordering) -> Bound<&'a Value> {
    let (c, n) = match (cur, new) {
        (Bound::Unbounded, _) => return new,
        (_, Bound::Unbounded) => return cur,
        (Bound::Included(c) | Bound::Excluded(c), Bound::Included(n) | Bound::Excluded(n)) => {
            (c, n)
        }
    };
    match compare(n, c) {
        o if o == want => new,
        Ordering::Equal if matches!(new, Bound::Excluded(_)) => new,
        _ => cur,
    }
}
