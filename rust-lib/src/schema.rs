//! Optional per-collection document validation with a small JSON Schema subset.
//! docs/SPEC.md, section "Document validation", is the normative description.
//!
//! A schema is compiled once ([`Schema::from_json`] / [`Schema::from_value`]) into a flat
//! list of nodes (children always after their parent), so that compiling, validating and
//! [`Schema::to_value`] all work with loops and heap stacks, never by recursion on the shape
//! of a schema or a document.
//!
//! Supported keywords: `type`, `enum`, `minimum`, `maximum`, `maxLength`, `required`,
//! `properties`, `additionalProperties` (`true` / `false` only) and `items` (one sub-schema
//! for every element). Anything else is [`Error::BadSchema`], so that typos are caught when
//! the schema is set, not silently ignored.
//!
//! **Automatic fields.** The engine validates the user body, which never holds `_id`, `_ver`,
//! `_ts` or `_exp` (`_tags` is a body field and is validated like any other). A schema may still mention them at the top level (so that a schema written
//! against whole documents loads): there, `required` counts them as present,
//! `additionalProperties: false` allows them and their `properties` entries are not applied.
//! Deeper down they are ordinary names.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt::{self, Write as _};

use crate::error::{Error, Result};
use crate::value::{self, compare, is_reserved_field, Map, Value, MAX_DEPTH_LIMIT};

/// `type` names, in the canonical order [`Schema::to_value`] writes them; bit `i` of a type
/// mask stands for `TYPE_NAMES[i]`. `"binary"` (a [`Value::Bytes`]) is a cairndb extension.
const TYPE_NAMES: [&str; 8] = [
    "null", "boolean", "integer", "number", "string", "object", "array", "binary",
];
const T_NULL: u8 = 1 << 0;
const T_BOOLEAN: u8 = 1 << 1;
const T_INTEGER: u8 = 1 << 2;
const T_NUMBER: u8 = 1 << 3;
const T_STRING: u8 = 1 << 4;
const T_OBJECT: u8 = 1 << 5;
const T_ARRAY: u8 = 1 << 6;
const T_BINARY: u8 = 1 << 7;

/// A compiled schema. Build it with [`Schema::from_json`] or [`Schema::from_value`], check
/// documents with [`Schema::validate`], persist it with [`Schema::to_value`]. `==` compares
/// compiled forms (like [`Value`]'s, it finds a NaN in `enum` unequal to itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// `nodes[0]` is the root; every child index is greater than its parent's.
    nodes: Vec<Node>,
}

/// One (sub-)schema object.
#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    /// Mask of `T_*` bits; 0 means no `type` keyword.
    types: u8,
    enum_values: Option<Vec<Value>>,
    minimum: Option<Value>,
    maximum: Option<Value>,
    max_length: Option<u64>,
    required: Vec<String>,
    /// Name and node index, in schema order.
    properties: Vec<(String, usize)>,
    /// `additionalProperties: false`.
    closed: bool,
    items: Option<usize>,
}

/// The first rule a document breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the offending field (`"loc.floor"`, `"tags.2"`); `""` for the document
    /// itself. For `required` it names the missing field, for `additionalProperties` the
    /// unexpected one.
    pub field: String,
    /// The keyword that failed: `"type"`, `"enum"`, `"minimum"`, `"maximum"`, `"maxLength"`,
    /// `"required"` or `"additionalProperties"`.
    pub rule: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "document violates {}", self.rule)
        } else {
            write!(f, "field `{}` violates {}", self.field, self.rule)
        }
    }
}

impl Schema {
    /// Parses and compiles a schema from JSON text. Errors: [`Error::BadSchema`] for text
    /// that is not JSON or a schema outside the supported subset, [`Error::TooDeep`] if the
    /// JSON nests deeper than `max_depth` (clamped to [`MAX_DEPTH_LIMIT`]).
    pub fn from_json(text: &[u8], max_depth: usize) -> Result<Schema> {
        let v = value::from_json(text, max_depth).map_err(|e| match e {
            Error::TooDeep => Error::TooDeep,
            _ => Error::BadSchema,
        })?;
        Schema::from_value(&v, max_depth)
    }

    /// Compiles a schema given as a value (e.g. one stored by [`Schema::to_value`]). Same
    /// errors as [`Schema::from_json`]; the depth is that of `v` (see [`Value::depth`]).
    pub fn from_value(v: &Value, max_depth: usize) -> Result<Schema> {
        // Checked up front (iteratively) so that nothing below can be driven arbitrarily deep.
        if v.depth() > max_depth.min(MAX_DEPTH_LIMIT) {
            return Err(Error::TooDeep);
        }
        let mut nodes = Vec::new();
        nodes.push(Node::default());
        let mut work: Vec<(&Value, usize)> = Vec::new();
        work.push((v, 0));
        while let Some((sv, idx)) = work.pop() {
            let (mut node, props, items) = compile_node(sv)?;
            // Children are numbered in a fixed keyword order (properties, then items), not
            // in the order the keywords were written, so that a schema and its `to_value`
            // compile to equal node lists.
            for (name, sub) in props {
                node.properties.push((name, nodes.len()));
                work.push((sub, nodes.len()));
                nodes.push(Node::default());
            }
            if let Some(sub) = items {
                node.items = Some(nodes.len());
                work.push((sub, nodes.len()));
                nodes.push(Node::default());
            }
            *nodes.get_mut(idx).ok_or(Error::BadSchema)? = node;
        }
        Ok(Schema { nodes })
    }

    /// Checks `doc` (the user body, without `_id`, `_ver`, `_ts`, `_exp`) and returns the first
    /// violation. Each (sub-)schema checks, in this order, `type`, `enum`, `minimum`,
    /// `maximum`, `maxLength`, `required` (in listed order), `additionalProperties` (in the
    /// document's key order), then `properties` (in schema order) and `items` (by index).
    pub fn validate(&self, doc: &Value) -> core::result::Result<(), Violation> {
        let mut stack: Vec<Frame<'_>> = Vec::new();
        let mut pending = Some((0usize, doc, Seg::Root));
        loop {
            if let Some((n, v, seg)) = pending.take() {
                if let Some(node) = self.nodes.get(n) {
                    if let Err((rule, sub)) = check_node(node, v, stack.is_empty()) {
                        return Err(Violation {
                            field: path(&stack, seg, sub),
                            rule,
                        });
                    }
                    let kids = match v {
                        Value::Map(m) if !node.properties.is_empty() => Kids::Props(m, 0),
                        Value::Array(a) => match node.items {
                            Some(item) => Kids::Items(a, item, 0),
                            None => Kids::Done,
                        },
                        _ => Kids::Done,
                    };
                    if !matches!(kids, Kids::Done) {
                        stack.push(Frame { node: n, seg, kids });
                    }
                }
            }
            let root = stack.len() == 1;
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            match self.next_child(top, root) {
                Some(next) => pending = Some(next),
                None => {
                    stack.pop();
                }
            }
        }
    }

    /// The schema as a value that [`Schema::from_value`] compiles back to an equal schema:
    /// keywords in a canonical order, `type` as one name or a list, defaults (an empty
    /// `properties`, `additionalProperties: true`) left out. It survives postcard exactly and
    /// JSON whenever its `enum` values do (see "JSON mapping" in docs/SPEC.md).
    pub fn to_value(&self) -> Value {
        // Children come after their parent, so building from the last node backwards has
        // every child's value ready (and taken exactly once) when its parent is built.
        let mut built: Vec<Option<Value>> = Vec::new();
        built.resize_with(self.nodes.len(), || None);
        for (i, node) in self.nodes.iter().enumerate().rev() {
            let v = node_to_value(node, &mut built);
            if let Some(slot) = built.get_mut(i) {
                *slot = Some(v);
            }
        }
        built
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_else(|| Value::Map(Map::new()))
    }

    /// The next (node, value, segment) under `frame`, skipping absent properties and, at the
    /// top level, the automatic fields.
    fn next_child<'a>(
        &'a self,
        frame: &mut Frame<'a>,
        root: bool,
    ) -> Option<(usize, &'a Value, Seg<'a>)> {
        match &mut frame.kids {
            Kids::Props(m, next) => {
                let props = &self.nodes.get(frame.node)?.properties;
                while let Some((name, child)) = props.get(*next) {
                    *next += 1;
                    if root && is_reserved_field(name) {
                        continue;
                    }
                    if let Some(v) = m.get(name) {
                        return Some((*child, v, Seg::Key(name)));
                    }
                }
                None
            }
            Kids::Items(a, item, next) => {
                let v = a.get(*next)?;
                let at = *next;
                *next += 1;
                Some((*item, v, Seg::Index(at)))
            }
            Kids::Done => None,
        }
    }
}

/// Where a value sits inside its parent.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// Children still to visit under one schema node.
enum Kids<'a> {
    /// The document map and the next index into the node's `properties`.
    Props(&'a Map, usize),
    /// The array, the `items` node and the next element index.
    Items(&'a [Value], usize, usize),
    Done,
}

struct Frame<'a> {
    node: usize,
    seg: Seg<'a>,
    kids: Kids<'a>,
}

/// Dotted path of the frames on `stack`, then `seg`, then `sub` (a field under `seg`).
fn path(stack: &[Frame<'_>], seg: Seg<'_>, sub: Option<&str>) -> String {
    let mut out = String::new();
    let mut push = |s: Seg<'_>| {
        let sep = if out.is_empty() { "" } else { "." };
        // Writing to a String cannot fail.
        let _ = match s {
            Seg::Root => Ok(()),
            Seg::Key(k) => write!(out, "{sep}{k}"),
            Seg::Index(i) => write!(out, "{sep}{i}"),
        };
    };
    for f in stack {
        push(f.seg);
    }
    push(seg);
    if let Some(k) = sub {
        push(Seg::Key(k));
    }
    out
}

/// The node's own rules on `v` (not its children). On failure: the rule and, for
/// `required` / `additionalProperties`, the field under `v` it concerns.
fn check_node<'x>(
    node: &'x Node,
    v: &'x Value,
    root: bool,
) -> core::result::Result<(), (&'static str, Option<&'x str>)> {
    if node.types != 0 && node.types & type_bits(v) == 0 {
        return Err(("type", None));
    }
    if let Some(list) = &node.enum_values {
        if !list.iter().any(|e| compare(e, v) == Ordering::Equal) {
            return Err(("enum", None));
        }
    }
    if let Value::Int(_) | Value::Float(_) = v {
        // NaN is in no range: it fails the first bound present.
        let nan = matches!(v, Value::Float(f) if f.is_nan());
        if let Some(min) = &node.minimum {
            if nan || compare(v, min) == Ordering::Less {
                return Err(("minimum", None));
            }
        }
        if let Some(max) = &node.maximum {
            if nan || compare(v, max) == Ordering::Greater {
                return Err(("maximum", None));
            }
        }
    }
    if let (Some(limit), Value::Str(s)) = (node.max_length, v) {
        // Byte length bounds the scalar count, so most strings skip the count.
        if s.len() as u64 > limit && s.chars().count() as u64 > limit {
            return Err(("maxLength", None));
        }
    }
    if let Value::Map(m) = v {
        for name in &node.required {
            if !(m.contains_key(name) || root && is_reserved_field(name)) {
                return Err(("required", Some(name)));
            }
        }
        if node.closed {
            for k in m.keys() {
                let declared = node.properties.iter().any(|(p, _)| p == k);
                if !(declared || root && is_reserved_field(k)) {
                    return Err(("additionalProperties", Some(k)));
                }
            }
        }
    }
    Ok(())
}

/// The `T_*` bits a value satisfies: an `Int` or a whole finite `Float` is both "integer"
/// and "number", any other `Float` (fractions, infinities, NaN) only "number".
fn type_bits(v: &Value) -> u8 {
    match v {
        Value::Null => T_NULL,
        Value::Bool(_) => T_BOOLEAN,
        Value::Int(_) => T_INTEGER | T_NUMBER,
        Value::Float(f) if is_whole(*f) => T_INTEGER | T_NUMBER,
        Value::Float(_) => T_NUMBER,
        Value::Str(_) => T_STRING,
        Value::Bytes(_) => T_BINARY,
        Value::Array(_) => T_ARRAY,
        Value::Map(_) => T_OBJECT,
    }
}

/// Whether `f` is finite with no fractional part (`core` has no `f64::fract`).
fn is_whole(f: f64) -> bool {
    // From 2^52 up every finite f64 is an integer; below, the cast to i64 truncates exactly.
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    f.is_finite() && (f.abs() >= TWO_POW_52 || (f as i64) as f64 == f)
}

/// A property or `required` name: non-empty and without `.`, so that violation paths are
/// unambiguous and every name can be addressed by a dotted path.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('.') {
        return Err(Error::BadSchema);
    }
    Ok(())
}

type Compiled<'a> = (Node, Vec<(String, &'a Value)>, Option<&'a Value>);

/// One schema object's own keywords; its sub-schemas are returned to be compiled by the
/// caller's work list.
fn compile_node(sv: &Value) -> Result<Compiled<'_>> {
    let m = sv.as_map().ok_or(Error::BadSchema)?;
    let mut node = Node::default();
    let mut props = Vec::new();
    let mut items = None;
    for (k, v) in m.iter() {
        match k {
            "type" => node.types = compile_type(v)?,
            "enum" => match v {
                // An empty enum accepts nothing: surely a mistake.
                Value::Array(a) if !a.is_empty() => node.enum_values = Some(a.clone()),
                _ => return Err(Error::BadSchema),
            },
            "minimum" => node.minimum = Some(compile_bound(v)?),
            "maximum" => node.maximum = Some(compile_bound(v)?),
            "maxLength" => match v {
                Value::Int(n) => {
                    node.max_length = Some(u64::try_from(*n).map_err(|_| Error::BadSchema)?)
                }
                _ => return Err(Error::BadSchema),
            },
            "required" => {
                let list = v.as_array().ok_or(Error::BadSchema)?;
                for name in list {
                    let name = name.as_str().ok_or(Error::BadSchema)?;
                    check_name(name)?;
                    if node.required.iter().any(|r| r == name) {
                        return Err(Error::BadSchema);
                    }
                    node.required.push(name.to_owned());
                }
            }
            "properties" => {
                let pm = v.as_map().ok_or(Error::BadSchema)?;
                for (name, sub) in pm.iter() {
                    check_name(name)?;
                    props.push((name.to_owned(), sub));
                }
            }
            "additionalProperties" => match v {
                Value::Bool(b) => node.closed = !*b,
                // The schema form of additionalProperties is not supported.
                _ => return Err(Error::BadSchema),
            },
            "items" => items = Some(v),
            _ => return Err(Error::BadSchema),
        }
    }
    if let (Some(min), Some(max)) = (&node.minimum, &node.maximum) {
        // An empty range accepts no number: surely a mistake.
        if compare(min, max) == Ordering::Greater {
            return Err(Error::BadSchema);
        }
    }
    Ok((node, props, items))
}

/// A `type` keyword: one name or a non-empty list of distinct names.
fn compile_type(v: &Value) -> Result<u8> {
    let bit = |name: &Value| -> Result<u8> {
        let name = name.as_str().ok_or(Error::BadSchema)?;
        let i = TYPE_NAMES
            .iter()
            .position(|t| *t == name)
            .ok_or(Error::BadSchema)?;
        Ok(1u8 << i)
    };
    match v {
        Value::Str(_) => bit(v),
        Value::Array(list) if !list.is_empty() => {
            let mut mask = 0u8;
            for name in list {
                let b = bit(name)?;
                if mask & b != 0 {
                    return Err(Error::BadSchema);
                }
                mask |= b;
            }
            Ok(mask)
        }
        _ => Err(Error::BadSchema),
    }
}

/// A `minimum` / `maximum`: a finite number (NaN has no order, and infinities would not
/// survive a JSON round trip of the schema).
fn compile_bound(v: &Value) -> Result<Value> {
    match v {
        Value::Int(_) => Ok(v.clone()),
        Value::Float(f) if f.is_finite() => Ok(v.clone()),
        _ => Err(Error::BadSchema),
    }
}

/// `node` as a schema object; its children's values are taken from `built`.
fn node_to_value(node: &Node, built: &mut [Option<Value>]) -> Value {
    let mut take = |i: usize| {
        built
            .get_mut(i)
            .and_then(Option::take)
            .unwrap_or_else(|| Value::Map(Map::new()))
    };
    let mut m = Map::new();
    if node.types != 0 {
        let mut names: Vec<Value> = TYPE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| node.types & (1u8 << i) != 0)
            .map(|(_, n)| Value::from(*n))
            .collect();
        let t = match names.len() {
            1 => names.pop().unwrap_or_default(),
            _ => Value::Array(names),
        };
        m.insert("type".to_owned(), t);
    }
    if let Some(list) = &node.enum_values {
        m.insert("enum".to_owned(), Value::Array(list.clone()));
    }
    if let Some(min) = &node.minimum {
        m.insert("minimum".to_owned(), min.clone());
    }
    if let Some(max) = &node.maximum {
        m.insert("maximum".to_owned(), max.clone());
    }
    if let Some(n) = node.max_length {
        // Compiled from an i64 >= 0, so this always fits.
        m.insert(
            "maxLength".to_owned(),
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        );
    }
    if !node.required.is_empty() {
        let list = node.required.iter().map(|r| Value::from(r.as_str()));
        m.insert("required".to_owned(), Value::Array(list.collect()));
    }
    if !node.properties.is_empty() {
        let mut pm = Map::with_capacity(node.properties.len());
        for (name, child) in &node.properties {
            pm.insert(name.clone(), take(*child));
        }
        m.insert("properties".to_owned(), Value::Map(pm));
    }
    if node.closed {
        m.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    if let Some(item) = node.items {
        m.insert("items".to_owned(), take(item));
    }
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::DEFAULT_MAX_DEPTH;
    use alloc::vec;
    use proptest::prelude::*;

    fn schema(s: &str) -> Schema {
        Schema::from_json(s.as_bytes(), DEFAULT_MAX_DEPTH).unwrap()
    }

    fn json(s: &str) -> Value {
        value::from_json(s.as_bytes(), DEFAULT_MAX_DEPTH).unwrap()
    }

    /// `Ok(())` or `Err((field, rule))`, for compact assertions.
    fn check(s: &Schema, doc: &str) -> core::result::Result<(), (String, &'static str)> {
        s.validate(&json(doc)).map_err(|v| (v.field, v.rule))
    }

    fn bad(field: &str, rule: &'static str) -> core::result::Result<(), (String, &'static str)> {
        Err((field.to_owned(), rule))
    }

    #[test]
    fn empty_schema_accepts_everything() {
        let s = schema("{}");
        for d in ["{}", r#"{"a":[1,{"b":null}]}"#, "1", "null", "[]"] {
            assert_eq!(check(&s, d), Ok(()), "{d}");
        }
    }

    #[test]
    fn type_keyword() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("null", &["null"], &["0", "false", "{}"]),
            ("boolean", &["true", "false"], &["0", "null", "\"true\""]),
            (
                "integer",
                &["0", "-7", "1.0", "-0.0", "1e300", "9223372036854775807"],
                &["1.5", "\"1\"", "null", "1e-300"],
            ),
            (
                "number",
                &["0", "1.5", "1e300", "-3"],
                &["\"1\"", "null", "[]"],
            ),
            (
                "string",
                &["\"\"", "\"x\""],
                &["1", "null", "{\"$binary\":\"AA==\"}"],
            ),
            ("object", &["{}", "{\"a\":1}"], &["[]", "null", "\"{}\""]),
            ("array", &["[]", "[1,2]"], &["{}", "null"]),
            ("binary", &["{\"$binary\":\"AA==\"}"], &["\"AA==\"", "[0]"]),
        ];
        for (t, good, bads) in cases {
            let s = schema(&format!(r#"{{"properties":{{"f":{{"type":"{t}"}}}}}}"#));
            for g in *good {
                assert_eq!(check(&s, &format!(r#"{{"f":{g}}}"#)), Ok(()), "{t} {g}");
            }
            for b in *bads {
                assert_eq!(
                    check(&s, &format!(r#"{{"f":{b}}}"#)),
                    bad("f", "type"),
                    "{t} {b}"
                );
            }
        }
        // Non-finite floats are numbers but not integers.
        let int = schema(r#"{"type":"integer"}"#);
        let num = schema(r#"{"type":"number"}"#);
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(int.validate(&Value::Float(f)).is_err());
            assert_eq!(num.validate(&Value::Float(f)), Ok(()));
        }
        assert_eq!(int.validate(&Value::Float(4503599627370495.0)), Ok(()));
        assert!(int.validate(&Value::Float(4503599627370495.5)).is_err());
        // A list is a union.
        let s = schema(r#"{"properties":{"f":{"type":["string","null"]}}}"#);
        assert_eq!(check(&s, r#"{"f":null}"#), Ok(()));
        assert_eq!(check(&s, r#"{"f":"x"}"#), Ok(()));
        assert_eq!(check(&s, r#"{"f":1}"#), bad("f", "type"));
        // The document itself.
        let s = schema(r#"{"type":"object"}"#);
        assert_eq!(check(&s, "[]"), bad("", "type"));
    }

    #[test]
    fn required_keyword() {
        let s = schema(r#"{"required":["a","b"]}"#);
        assert_eq!(check(&s, r#"{"a":1,"b":null}"#), Ok(()));
        assert_eq!(check(&s, r#"{"b":1}"#), bad("a", "required"));
        assert_eq!(check(&s, r#"{"a":1}"#), bad("b", "required"));
        // Only objects have fields.
        assert_eq!(check(&s, "5"), Ok(()));
        let s = schema(r#"{"properties":{"loc":{"required":["floor"]}}}"#);
        assert_eq!(check(&s, r#"{"loc":{}}"#), bad("loc.floor", "required"));
        assert_eq!(check(&s, r#"{}"#), Ok(()));
    }

    #[test]
    fn minimum_maximum_keywords() {
        let s = schema(r#"{"properties":{"t":{"minimum":-40,"maximum":85.5}}}"#);
        for ok in ["-40", "-40.0", "0", "85", "85.5", "\"hot\""] {
            assert_eq!(check(&s, &format!(r#"{{"t":{ok}}}"#)), Ok(()), "{ok}");
        }
        assert_eq!(check(&s, r#"{"t":-41}"#), bad("t", "minimum"));
        assert_eq!(check(&s, r#"{"t":-40.001}"#), bad("t", "minimum"));
        assert_eq!(check(&s, r#"{"t":86}"#), bad("t", "maximum"));
        assert_eq!(check(&s, r#"{"t":85.50001}"#), bad("t", "maximum"));
        // Int against Float bounds exactly, without rounding the i64.
        let s = schema(r#"{"maximum":9007199254740992.0}"#);
        assert_eq!(s.validate(&Value::Int(1 << 53)), Ok(()));
        let v = s.validate(&Value::Int((1 << 53) + 1)).unwrap_err();
        assert_eq!((v.field.as_str(), v.rule), ("", "maximum"));
        let s = schema(r#"{"minimum":9223372036854775807}"#);
        assert_eq!(s.validate(&Value::Float(9.3e18)), Ok(()));
        assert!(s.validate(&Value::Float(9.2e18)).is_err());
        // NaN is in no range.
        let s = schema(r#"{"maximum":1}"#);
        assert_eq!(
            s.validate(&Value::Float(f64::NAN)).unwrap_err().rule,
            "maximum"
        );
        let s = schema(r#"{"minimum":1,"maximum":2}"#);
        assert_eq!(
            s.validate(&Value::Float(f64::NAN)).unwrap_err().rule,
            "minimum"
        );
        assert_eq!(
            s.validate(&Value::Float(f64::INFINITY)).unwrap_err().rule,
            "maximum"
        );
    }

    #[test]
    fn enum_keyword() {
        let s = schema(r#"{"properties":{"m":{"enum":["on","off",1,null,[1],{"a":1}]}}}"#);
        for ok in [
            "\"on\"",
            "\"off\"",
            "1",
            "1.0",
            "null",
            "[1]",
            "[1.0]",
            r#"{"a":1}"#,
        ] {
            assert_eq!(check(&s, &format!(r#"{{"m":{ok}}}"#)), Ok(()), "{ok}");
        }
        for no in [
            "\"On\"",
            "2",
            "false",
            "[]",
            r#"{"a":2}"#,
            r#"{"a":1,"b":1}"#,
        ] {
            assert_eq!(
                check(&s, &format!(r#"{{"m":{no}}}"#)),
                bad("m", "enum"),
                "{no}"
            );
        }
    }

    #[test]
    fn max_length_keyword() {
        let s = schema(r#"{"properties":{"n":{"maxLength":3}}}"#);
        for ok in [
            "\"\"",
            "\"abc\"",
            "\"éàü\"",
            "\"日本語\"",
            "1234",
            "[1,2,3,4]",
        ] {
            assert_eq!(check(&s, &format!(r#"{{"n":{ok}}}"#)), Ok(()), "{ok}");
        }
        assert_eq!(check(&s, r#"{"n":"abcd"}"#), bad("n", "maxLength"));
        assert_eq!(check(&s, r#"{"n":"日本語!"}"#), bad("n", "maxLength"));
        let s = schema(r#"{"maxLength":0}"#);
        assert_eq!(check(&s, "\"\""), Ok(()));
        assert_eq!(check(&s, "\"a\""), bad("", "maxLength"));
    }

    #[test]
    fn additional_properties_keyword() {
        let s = schema(
            r#"{"properties":{"a":{},"loc":{"properties":{"x":{}},"additionalProperties":false}},
                "additionalProperties":false}"#,
        );
        assert_eq!(check(&s, r#"{"a":1,"loc":{"x":1}}"#), Ok(()));
        assert_eq!(
            check(&s, r#"{"a":1,"b":2}"#),
            bad("b", "additionalProperties")
        );
        assert_eq!(
            check(&s, r#"{"loc":{"x":1,"y":2}}"#),
            bad("loc.y", "additionalProperties")
        );
        // Automatic fields are allowed at the top level only.
        assert_eq!(check(&s, r#"{"_id":1,"_ver":2,"_ts":3}"#), Ok(()));
        assert_eq!(
            check(&s, r#"{"loc":{"_id":1}}"#),
            bad("loc._id", "additionalProperties")
        );
        let open = schema(r#"{"properties":{"a":{}},"additionalProperties":true}"#);
        assert_eq!(check(&open, r#"{"b":1}"#), Ok(()));
        assert_eq!(open, schema(r#"{"properties":{"a":{}}}"#));
    }

    #[test]
    fn nested_paths() {
        let s = schema(
            r#"{"type":"object","required":["id"],"properties":{
                "id":{"type":"string","maxLength":8},
                "loc":{"type":"object","required":["floor"],"properties":{
                    "floor":{"type":"integer","minimum":0,"maximum":9}}},
                "tags":{"type":"array","items":{"type":"string","enum":["a","b","c"]}},
                "grid":{"items":{"items":{"type":"number"}}},
                "log":{"items":{"properties":{"v":{"type":"boolean"}},"required":["v"]}}}}"#,
        );
        let good = r#"{"id":"dev-1","loc":{"floor":3},"tags":["a","c"],"grid":[[1,2.5],[]],
                       "log":[{"v":true},{"v":false,"x":1}],"other":{"deep":[1]}}"#;
        assert_eq!(check(&s, good), Ok(()));
        let cases = [
            (r#"{}"#, "id", "required"),
            (r#"{"id":5}"#, "id", "type"),
            (r#"{"id":"dev-123456"}"#, "id", "maxLength"),
            (r#"{"id":"x","loc":[]}"#, "loc", "type"),
            (r#"{"id":"x","loc":{"floor":1.5}}"#, "loc.floor", "type"),
            (r#"{"id":"x","loc":{"floor":10}}"#, "loc.floor", "maximum"),
            (r#"{"id":"x","loc":{"floor":-1}}"#, "loc.floor", "minimum"),
            (r#"{"id":"x","loc":{}}"#, "loc.floor", "required"),
            (r#"{"id":"x","tags":"a"}"#, "tags", "type"),
            (r#"{"id":"x","tags":["a","b","z"]}"#, "tags.2", "enum"),
            (r#"{"id":"x","tags":["a",1]}"#, "tags.1", "type"),
            (r#"{"id":"x","grid":[[1],[2,"3"]]}"#, "grid.1.1", "type"),
            (r#"{"id":"x","log":[{"v":true},{}]}"#, "log.1.v", "required"),
            (r#"{"id":"x","log":[{"v":1}]}"#, "log.0.v", "type"),
        ];
        for (d, field, rule) in cases {
            assert_eq!(check(&s, d), bad(field, rule), "{d}");
        }
        // The first violation in document order of the schema: properties in schema order.
        assert_eq!(
            check(&s, r#"{"tags":[1],"loc":{"floor":-1},"id":"x"}"#),
            bad("loc.floor", "minimum")
        );
        let v = s.validate(&json(r#"{"id":"x","tags":[0]}"#)).unwrap_err();
        assert_eq!(v.to_string(), "field `tags.0` violates type");
    }

    #[test]
    fn automatic_fields_at_top_level() {
        let s = schema(
            r#"{"required":["_id","_ver","_ts","a"],
                "properties":{"_id":{"type":"string"},"_ts":{"maximum":0},
                              "a":{"required":["_id"],"properties":{"_id":{"type":"string"}}}}}"#,
        );
        // The body never holds them; present anyway, they are not checked at the top level.
        assert_eq!(check(&s, r#"{"a":{"_id":"x"}}"#), Ok(()));
        assert_eq!(check(&s, r#"{"_id":1,"_ts":5,"a":{"_id":"x"}}"#), Ok(()));
        // Deeper down they are ordinary names.
        assert_eq!(check(&s, r#"{"a":{}}"#), bad("a._id", "required"));
        assert_eq!(check(&s, r#"{"a":{"_id":1}}"#), bad("a._id", "type"));
        assert_eq!(check(&s, r#"{}"#), bad("a", "required"));
    }

    #[test]
    fn bad_schemas() {
        let cases = [
            // Not JSON, not an object.
            "",
            "{",
            "{\"type\":\"string\"} x",
            "[]",
            "\"string\"",
            "true",
            r#"{"$binary":"AA=="}"#,
            // Unknown or misspelled keywords.
            r#"{"typ":"string"}"#,
            r#"{"maxlength":3}"#,
            r#"{"properties":{"a":{"minimun":1}}}"#,
            r#"{"items":{"pattern":"x"}}"#,
            r#"{"$schema":"x"}"#,
            // Wrong shapes.
            r#"{"type":"str"}"#,
            r#"{"type":"Integer"}"#,
            r#"{"type":[]}"#,
            r#"{"type":["string","string"]}"#,
            r#"{"type":["string",1]}"#,
            r#"{"type":1}"#,
            r#"{"type":null}"#,
            r#"{"required":"a"}"#,
            r#"{"required":[1]}"#,
            r#"{"required":["a","a"]}"#,
            r#"{"required":[""]}"#,
            r#"{"required":["a.b"]}"#,
            r#"{"properties":[]}"#,
            r#"{"properties":{"a":1}}"#,
            r#"{"properties":{"a":[]}}"#,
            r#"{"properties":{"a.b":{}}}"#,
            r#"{"properties":{"":{}}}"#,
            r#"{"minimum":"1"}"#,
            r#"{"minimum":null}"#,
            r#"{"maximum":[1]}"#,
            r#"{"minimum":2,"maximum":1}"#,
            r#"{"minimum":1.5,"maximum":1}"#,
            r#"{"enum":[]}"#,
            r#"{"enum":"a"}"#,
            r#"{"maxLength":-1}"#,
            r#"{"maxLength":1.0}"#,
            r#"{"maxLength":"3"}"#,
            r#"{"additionalProperties":{}}"#,
            r#"{"additionalProperties":0}"#,
            r#"{"items":[{}]}"#,
            r#"{"items":true}"#,
            r#"{"items":{"items":{"type":"nope"}}}"#,
        ];
        for c in cases {
            assert_eq!(
                Schema::from_json(c.as_bytes(), DEFAULT_MAX_DEPTH),
                Err(Error::BadSchema),
                "{c}"
            );
        }
        // Non-finite bounds, only possible in a hand-built value.
        for f in [f64::NAN, f64::INFINITY] {
            let mut m = Map::new();
            m.insert("maximum".to_owned(), Value::Float(f));
            assert_eq!(
                Schema::from_value(&Value::Map(m), DEFAULT_MAX_DEPTH),
                Err(Error::BadSchema)
            );
        }
        // The depth limit is the caller's.
        let deep = r#"{"items":{"items":{"items":{}}}}"#;
        assert_eq!(Schema::from_json(deep.as_bytes(), 3), Err(Error::TooDeep));
        assert!(Schema::from_json(deep.as_bytes(), 4).is_ok());
        assert_eq!(Schema::from_value(&json(deep), 3), Err(Error::TooDeep));
        assert_eq!(
            Schema::from_value(&json(deep), usize::MAX).map(|s| s.to_value()),
            Ok(json(deep))
        );
    }

    #[test]
    fn to_value_round_trip() {
        let text = r#"{"items":{"maxLength":4},"additionalProperties":false,
            "properties":{"a":{"type":["null","string"],"enum":["x",null]},
                          "b":{"properties":{"c":{"minimum":1.5,"maximum":2}}},
                          "d":{"type":["array"],"items":{"type":"binary"}}},
            "required":["a"],"type":["object","integer","number"],"enum":[{"a":"x"}],
            "minimum":0,"maximum":10,"maxLength":0}"#;
        let s = schema(text);
        let v = s.to_value();
        let mut out = String::new();
        value::to_json(&v, &mut out);
        assert_eq!(
            out,
            concat!(
                r#"{"type":["integer","number","object"],"enum":[{"a":"x"}],"minimum":0,"#,
                r#""maximum":10,"maxLength":0,"required":["a"],"properties":{"a":{"type":"#,
                r#"["null","string"],"enum":["x",null]},"b":{"properties":{"c":{"minimum":1.5,"#,
                r#""maximum":2}}},"d":{"type":"array","items":{"type":"binary"}}},"#,
                r#""additionalProperties":false,"items":{"maxLength":4}}"#
            )
        );
        assert_eq!(Schema::from_value(&v, DEFAULT_MAX_DEPTH), Ok(s.clone()));
        assert_eq!(
            Schema::from_json(out.as_bytes(), DEFAULT_MAX_DEPTH),
            Ok(s.clone())
        );
        // Through the on-flash encoding too.
        let mut bytes = Vec::new();
        value::encode(&v, &mut bytes).unwrap();
        let back = value::decode(&bytes, DEFAULT_MAX_DEPTH).unwrap();
        assert_eq!(Schema::from_value(&back, DEFAULT_MAX_DEPTH), Ok(s));
        assert_eq!(schema("{}").to_value(), json("{}"));
        assert_eq!(schema(r#"{"properties":{}}"#).to_value(), json("{}"));
    }

    #[test]
    fn error_display() {
        assert_eq!(Error::BadSchema.to_string(), "invalid schema");
        let v = Violation {
            field: String::new(),
            rule: "type",
        };
        assert_eq!(v.to_string(), "document violates type");
    }

    // ---- property tests ----

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            any::<i64>().prop_map(Value::Int),
            prop_oneof![
                Just(0.5),
                Just(-1.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(1e300)
            ]
            .prop_map(Value::Float),
            any::<f64>().prop_map(Value::Float),
            "[ab_.é]{0,4}".prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Bytes),
        ]
    }

    /// Any value, with keys drawn from the schema keywords and a few field names, so that
    /// random maps are often (nearly) schemas.
    fn arb_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("required".to_owned()),
            Just("properties".to_owned()),
            Just("minimum".to_owned()),
            Just("maximum".to_owned()),
            Just("enum".to_owned()),
            Just("maxLength".to_owned()),
            Just("items".to_owned()),
            Just("additionalProperties".to_owned()),
            "[ab]|_id|x.y|".prop_map(String::from),
        ];
        arb_scalar().prop_recursive(6, 64, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect())),
            ]
        })
    }

    /// Schemas that compile: built from valid keyword values only.
    fn arb_schema() -> impl Strategy<Value = Value> {
        let name = prop_oneof![Just("a"), Just("b"), Just("_id"), Just("c")];
        let type_name = proptest::sample::select(TYPE_NAMES.to_vec());
        let leaf = (
            proptest::option::of(proptest::collection::btree_set(type_name, 1..3)),
            proptest::option::of(proptest::collection::btree_set(name.clone(), 0..3)),
            proptest::option::of(-5i64..5),
            proptest::option::of(proptest::collection::vec(arb_scalar(), 1..3)),
            proptest::option::of(0i64..4),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(types, req, min, en, maxlen, addl)| {
                let mut m = Map::new();
                if let Some(t) = types {
                    let t: Vec<Value> = t.into_iter().map(Value::from).collect();
                    m.insert("type".to_owned(), Value::Array(t));
                }
                if let Some(r) = req {
                    let r: Vec<Value> = r.into_iter().map(Value::from).collect();
                    m.insert("required".to_owned(), Value::Array(r));
                }
                if let Some(min) = min {
                    m.insert("minimum".to_owned(), Value::Int(min));
                    m.insert("maximum".to_owned(), Value::Float(min as f64 + 2.5));
                }
                if let Some(e) = en {
                    m.insert("enum".to_owned(), Value::Array(e));
                }
                if let Some(n) = maxlen {
                    m.insert("maxLength".to_owned(), Value::Int(n));
                }
                if let Some(b) = addl {
                    m.insert("additionalProperties".to_owned(), Value::Bool(b));
                }
                Value::Map(m)
            });
        leaf.prop_recursive(5, 32, 3, move |inner| {
            (
                inner.clone(),
                proptest::collection::vec((name.clone(), inner.clone()), 0..3),
                proptest::option::of(inner),
            )
                .prop_map(|(base, props, items)| {
                    let mut m = match base {
                        Value::Map(m) => m,
                        _ => Map::new(),
                    };
                    let pm: Map = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    m.insert("properties".to_owned(), Value::Map(pm));
                    if let Some(i) = items {
                        m.insert("items".to_owned(), i);
                    }
                    Value::Map(m)
                })
        })
    }

    /// Postcard bytes of `to_value`: exact equality, unlike `==`, for which NaN (possible in
    /// a hand-built `enum`) differs from itself.
    fn enc(s: &Schema) -> Vec<u8> {
        let mut out = Vec::new();
        value::encode(&s.to_value(), &mut out).unwrap();
        out
    }

    proptest! {
        #[test]
        fn random_values_never_panic(s in arb_value(), doc in arb_value()) {
            if let Ok(schema) = Schema::from_value(&s, MAX_DEPTH_LIMIT) {
                let _ = schema.validate(&doc);
                let back = Schema::from_value(&schema.to_value(), MAX_DEPTH_LIMIT).unwrap();
                prop_assert_eq!(enc(&back), enc(&schema));
            }
        }

        #[test]
        fn valid_schemas_validate_without_panic(s in arb_schema(), doc in arb_value()) {
            let schema = Schema::from_value(&s, MAX_DEPTH_LIMIT).unwrap();
            match schema.validate(&doc) {
                Ok(()) => {}
                // The reported field exists in the document, or is the missing one. (An
                // unexpected key may be "" or hold a '.', which no path can address.)
                Err(v) if v.field.is_empty() || v.rule == "additionalProperties" => {}
                Err(v) => {
                    let present = value::get_path(&doc, &v.field).is_some();
                    prop_assert_eq!(present, v.rule != "required", "{:?}", v);
                }
            }
            let v = schema.to_value();
            prop_assert!(v.depth() <= s.depth());
            let back = Schema::from_value(&v, MAX_DEPTH_LIMIT).unwrap();
            prop_assert_eq!(enc(&back), enc(&schema));
        }

        #[test]
        fn random_schema_text_never_panics(text in proptest::collection::vec(
            proptest::sample::select(vec!["{", "}", "[", "]", ",", ":", "\"type\"", "\"items\"",
                                          "\"properties\"", "\"a\"", "\"string\"", "1"]), 0..24)) {
            let text: String = text.concat();
            if let Ok(s) = Schema::from_json(text.as_bytes(), DEFAULT_MAX_DEPTH) {
                let _ = s.validate(&Value::Map(Map::new()));
            }
        }
    }

    #[test]
    fn validate_is_not_recursive() {
        // A chain of MAX_DEPTH_LIMIT `items` against an equally deep document.
        let mut s = Value::Map(Map::new());
        let mut d = Value::Int(1);
        for _ in 0..MAX_DEPTH_LIMIT {
            let mut m = Map::new();
            m.insert("items".to_owned(), s);
            s = Value::Map(m);
            d = Value::Array(vec![d]);
        }
        assert_eq!(
            Schema::from_value(&s, MAX_DEPTH_LIMIT + 1),
            Err(Error::TooDeep)
        );
        let mut m = Map::new();
        m.insert("type".to_owned(), Value::from("string"));
        let mut s = Value::Map(m);
        for _ in 0..MAX_DEPTH_LIMIT - 1 {
            let mut m = Map::new();
            m.insert("items".to_owned(), s);
            s = Value::Map(m);
        }
        let schema = Schema::from_value(&s, MAX_DEPTH_LIMIT).unwrap();
        let v = schema.validate(&d).unwrap_err();
        assert_eq!(v.rule, "type");
        assert_eq!(v.field.split('.').count(), MAX_DEPTH_LIMIT - 1);
    }
}
