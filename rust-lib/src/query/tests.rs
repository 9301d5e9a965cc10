use super::*;
use crate::error::Error;
use crate::value::{compare, from_json, Value, MAX_DEPTH_LIMIT};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Bound;
use proptest::prelude::*;

fn j(s: &str) -> Value {
    from_json(s.as_bytes(), MAX_DEPTH_LIMIT).unwrap()
}

fn f(s: &str) -> Filter {
    Filter::from_json(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> Error {
    Filter::from_json(s.as_bytes(), &Limits::default()).unwrap_err()
}

/// Asserts, for each (doc, expected) pair, whether `filter` matches.
fn check(filter: &str, cases: &[(&str, bool)]) {
    let flt = f(filter);
    for (doc, want) in cases {
        assert_eq!(flt.matches(&j(doc)), *want, "{filter} on {doc}");
    }
}

// ---- operators ----

#[test]
fn implicit_equality_and_implicit_and() {
    check(
        r#"{"room":"R101"}"#,
        &[
            (r#"{"room":"R101"}"#, true),
            (r#"{"room":"R102"}"#, false),
            (r#"{}"#, false),
            (r#"{"room":["R100","R101"]}"#, true),
        ],
    );
    check(
        r#"{"room":"R101","temp":{"$gt":20,"$lte":25}}"#,
        &[
            (r#"{"room":"R101","temp":21}"#, true),
            (r#"{"room":"R101","temp":25.0}"#, true),
            (r#"{"room":"R101","temp":20}"#, false),
            (r#"{"room":"R101","temp":25.5}"#, false),
            (r#"{"room":"R102","temp":21}"#, false),
        ],
    );
    check("{}", &[("{}", true), (r#"{"a":1}"#, true)]);
    // A map without `$` keys is an equality operand, compared in stored order.
    check(
        r#"{"m":{"a":1,"b":2}}"#,
        &[
            (r#"{"m":{"a":1,"b":2.0}}"#, true),
            (r#"{"m":{"b":2,"a":1}}"#, false),
            (r#"{"m":{"a":1}}"#, false),
        ],
    );
}

#[test]
fn equality_and_arrays() {
    check(
        r#"{"tags":"x"}"#,
        &[
            (r#"{"tags":["x","y"]}"#, true),
            (r#"{"tags":["y"]}"#, false),
            (r#"{"tags":[["x"]]}"#, false),
            (r#"{"tags":"x"}"#, true),
        ],
    );
    check(
        r#"{"tags":["x","y"]}"#,
        &[
            (r#"{"tags":["x","y"]}"#, true),
            (r#"{"tags":["y","x"]}"#, false),
            (r#"{"tags":["x","y","z"]}"#, false),
            (r#"{"tags":[["x","y"],"z"]}"#, true),
            (r#"{"tags":"x"}"#, false),
        ],
    );
    check(
        r#"{"tags":{"$in":["a","z"]}}"#,
        &[
            (r#"{"tags":["a","b"]}"#, true),
            (r#"{"tags":"z"}"#, true),
            (r#"{"tags":["b"]}"#, false),
            (r#"{}"#, false),
        ],
    );
    check(
        r#"{"tags":{"$nin":["a","z"]}}"#,
        &[
            (r#"{"tags":["a","b"]}"#, false),
            (r#"{"tags":["b"]}"#, true),
            (r#"{}"#, true),
        ],
    );
    check(
        r#"{"x":{"$in":[]}}"#,
        &[(r#"{"x":1}"#, false), ("{}", false)],
    );
    check(
        r#"{"x":{"$nin":[]}}"#,
        &[(r#"{"x":1}"#, true), ("{}", true)],
    );
}

#[test]
fn numbers_compare_exactly() {
    check(
        r#"{"n":1}"#,
        &[
            (r#"{"n":1.0}"#, true),
            (r#"{"n":1}"#, true),
            (r#"{"n":1.5}"#, false),
            (r#"{"n":"1"}"#, false),
            (r#"{"n":true}"#, false),
        ],
    );
    check(
        r#"{"n":{"$gt":9007199254740992.0}}"#,
        &[
            (r#"{"n":9007199254740993}"#, true),
            (r#"{"n":9007199254740992}"#, false),
        ],
    );
    check(
        r#"{"n":9007199254740993}"#,
        &[
            (r#"{"n":9007199254740992.0}"#, false),
            (r#"{"n":9007199254740993}"#, true),
        ],
    );
    check(r#"{"n":{"$lt":0}}"#, &[(r#"{"n":-0.0}"#, false)]);
    check(r#"{"n":{"$lte":0}}"#, &[(r#"{"n":-0.0}"#, true)]);
    check(
        r#"{"n":{"$in":[2, 3.5]}}"#,
        &[
            (r#"{"n":2.0}"#, true),
            (r#"{"n":3.5}"#, true),
            (r#"{"n":3}"#, false),
        ],
    );
}

#[test]
fn comparisons_are_type_bracketed() {
    let kinds = [
        "null",
        "true",
        "false",
        "5",
        "7.5",
        r#""x""#,
        r#""5""#,
        r#"{"$binary":"AQ=="}"#,
        "[]",
        "{}",
    ];
    let expect = |filter: &str, yes: &[&str]| {
        let flt = f(filter);
        for k in kinds {
            let doc = j(&alloc::format!(r#"{{"v":{k}}}"#));
            assert_eq!(flt.matches(&doc), yes.contains(&k), "{filter} on {k}");
        }
    };
    expect(r#"{"v":{"$gt":5}}"#, &["7.5"]);
    expect(r#"{"v":{"$gte":5}}"#, &["5", "7.5"]);
    expect(r#"{"v":{"$lt":100}}"#, &["5", "7.5"]);
    expect(r#"{"v":{"$gt":""}}"#, &[r#""x""#, r#""5""#]);
    expect(r#"{"v":{"$lt":"a"}}"#, &[r#""5""#]);
    expect(r#"{"v":{"$gte":false}}"#, &["true", "false"]);
    expect(r#"{"v":{"$gt":false}}"#, &["true"]);
    expect(
        r#"{"v":{"$gte":{"$binary":""}}}"#,
        &[r#"{"$binary":"AQ=="}"#],
    );
    // Strings compare bytewise.
    check(
        r#"{"s":{"$gt":"Z"}}"#,
        &[
            (r#"{"s":"a"}"#, true),
            (r#"{"s":"B"}"#, false),
            (r#"{"s":"é"}"#, true),
        ],
    );
}

#[test]
fn comparisons_on_arrays_match_any_element() {
    check(
        r#"{"v":{"$gt":5}}"#,
        &[
            (r#"{"v":[1,7]}"#, true),
            (r#"{"v":[1,2]}"#, false),
            (r#"{"v":["z",9]}"#, true),
            (r#"{"v":["z"]}"#, false),
            (r#"{"v":[[9]]}"#, false),
            (r#"{"v":[]}"#, false),
        ],
    );
    // Each condition may be met by a different element (no $elemMatch).
    check(
        r#"{"v":{"$gt":5,"$lt":3}}"#,
        &[(r#"{"v":[10,1]}"#, true), (r#"{"v":4}"#, false)],
    );
}

#[test]
fn missing_fields() {
    check(
        r#"{"f":null}"#,
        &[
            (r#"{"f":null}"#, true),
            ("{}", true),
            (r#"{"f":[null,1]}"#, true),
            (r#"{"f":0}"#, false),
            (r#"{"f":[]}"#, false),
        ],
    );
    check(
        r#"{"f":{"$ne":1}}"#,
        &[
            ("{}", true),
            (r#"{"f":2}"#, true),
            (r#"{"f":1.0}"#, false),
            (r#"{"f":[1]}"#, false),
        ],
    );
    check(
        r#"{"f":{"$ne":null}}"#,
        &[
            ("{}", false),
            (r#"{"f":null}"#, false),
            (r#"{"f":0}"#, true),
        ],
    );
    check(
        r#"{"f":{"$nin":[1,2]}}"#,
        &[("{}", true), (r#"{"f":3}"#, true), (r#"{"f":2}"#, false)],
    );
    check(
        r#"{"f":{"$in":[1,null]}}"#,
        &[("{}", true), (r#"{"f":3}"#, false)],
    );
    check(
        r#"{"f":{"$exists":true}}"#,
        &[
            ("{}", false),
            (r#"{"f":null}"#, true),
            (r#"{"g":1}"#, false),
        ],
    );
    check(
        r#"{"f":{"$exists":false}}"#,
        &[("{}", true), (r#"{"f":null}"#, false)],
    );
    for op in ["$gt", "$gte", "$lt", "$lte"] {
        check(&alloc::format!(r#"{{"f":{{"{op}":0}}}}"#), &[("{}", false)]);
    }
    check(
        r#"{"f":{"$type":"null"}}"#,
        &[("{}", false), (r#"{"f":null}"#, true)],
    );
    check(r#"{"f":{"$contains":"a"}}"#, &[("{}", false)]);
    check(
        r#"{"f":{"$not":{"$gt":5}}}"#,
        &[("{}", true), (r#"{"f":6}"#, false)],
    );
}

#[test]
fn type_operator() {
    let docs = [
        ("null", "null"),
        ("true", "bool"),
        ("3", "int"),
        ("3.5", "float"),
        (r#""s""#, "string"),
        (r#"{"$binary":"AA=="}"#, "bytes"),
        ("[1]", "array"),
        (r#"{"k":1}"#, "map"),
    ];
    for name in [
        "null", "bool", "int", "float", "number", "string", "bytes", "array", "map",
    ] {
        let flt = f(&alloc::format!(r#"{{"v":{{"$type":"{name}"}}}}"#));
        for (v, t) in docs {
            let want = t == name || (name == "number" && (t == "int" || t == "float"));
            assert_eq!(
                flt.matches(&j(&alloc::format!(r#"{{"v":{v}}}"#))),
                want,
                "{name} {v}"
            );
        }
    }
    // Arrays are not looked into.
    check(r#"{"v":{"$type":"int"}}"#, &[(r#"{"v":[1]}"#, false)]);
    assert_eq!(ValueType::from_name("integer"), None);
}

#[test]
fn contains_operator() {
    check(
        r#"{"s":{"$contains":"ell"}}"#,
        &[
            (r#"{"s":"hello"}"#, true),
            (r#"{"s":"help"}"#, false),
            (r#"{"s":["hello"]}"#, false),
            (r#"{"s":["ell"]}"#, true),
        ],
    );
    check(
        r#"{"s":{"$contains":""}}"#,
        &[(r#"{"s":""}"#, true), (r#"{"s":1}"#, false)],
    );
    check(
        r#"{"a":{"$contains":2}}"#,
        &[
            (r#"{"a":[1,2.0]}"#, true),
            (r#"{"a":[1,3]}"#, false),
            (r#"{"a":2}"#, false),
            (r#"{"a":"2"}"#, false),
        ],
    );
    check(
        r#"{"a":{"$contains":[1]}}"#,
        &[(r#"{"a":[[1],2]}"#, true), (r#"{"a":[1]}"#, false)],
    );
}

#[test]
fn logical_operators() {
    let docs = [
        r#"{"a":1,"b":1}"#,
        r#"{"a":1,"b":2}"#,
        r#"{"a":2,"b":1}"#,
        r#"{"a":2,"b":2}"#,
    ];
    let expect = |filter: &str, want: [bool; 4]| {
        let flt = f(filter);
        for (d, w) in docs.iter().zip(want) {
            assert_eq!(flt.matches(&j(d)), w, "{filter} on {d}");
        }
    };
    expect(r#"{"$and":[{"a":1},{"b":2}]}"#, [false, true, false, false]);
    expect(r#"{"$or":[{"a":1},{"b":2}]}"#, [true, true, false, true]);
    expect(r#"{"$nor":[{"a":1},{"b":2}]}"#, [false, false, true, false]);
    expect(r#"{"$not":{"a":1,"b":2}}"#, [true, false, true, true]);
    expect(r#"{"$not":{"$not":{"a":1}}}"#, [true, true, false, false]);
    expect(r#"{"a":{"$not":{"$eq":1}}}"#, [false, false, true, true]);
    expect(
        r#"{"a":{"$not":{"$gte":1,"$lte":1}}}"#,
        [false, false, true, true],
    );
    expect(r#"{"$or":[{"a":1}],"b":1}"#, [true, false, false, false]);
    expect(r#"{"$not":{}}"#, [false; 4]);
    expect(
        r#"{"$and":[{"$or":[{"a":2},{"b":2}]},{"$nor":[{"a":2,"b":2}]}]}"#,
        [false, true, true, false],
    );
}

#[test]
fn dotted_paths_and_positions() {
    let doc = j(r#"{"a":{"b":[{"c":1},{"c":[5,6]}],"0":"zero"},"items":[{"name":"x"}],"l":[1,2]}"#);
    let yes = [
        r#"{"a.b.0.c":1}"#,
        r#"{"a.b.1.c":6}"#,
        r#"{"a.b.1.c.1":6}"#,
        r#"{"a.0":"zero"}"#,
        r#"{"l.1":{"$gt":1}}"#,
        r#"{"a.b.2":{"$exists":false}}"#,
        r#"{"items.name":{"$exists":false}}"#,
        r#"{"items.0.name":"x"}"#,
        r#"{"l.01":null}"#,
        r#"{"a.b.0.c.d":null}"#,
    ];
    for s in yes {
        assert!(f(s).matches(&doc), "{s}");
    }
    let no = [
        r#"{"a.b.0.c":2}"#,
        r#"{"items.name":"x"}"#,
        r#"{"l.-1":{"$exists":true}}"#,
        r#"{"l.01":{"$exists":true}}"#,
    ];
    for s in no {
        assert!(!f(s).matches(&doc), "{s}");
    }
}

// ---- errors ----

#[test]
fn bad_filters_give_precise_errors() {
    let cases: &[(&str, Error)] = &[
        ("[1]", Error::BadFilter),
        ("5", Error::BadFilter),
        (r#"{"a":{"$foo":1}}"#, Error::BadFilter),
        (r#"{"$foo":[{"a":1}]}"#, Error::BadFilter),
        (r#"{"$where":"1"}"#, Error::BadFilter),
        (r#"{"a":{"$gt":1,"b":2}}"#, Error::BadFilter),
        (r#"{"a":{"b":2,"$gt":1}}"#, Error::BadFilter),
        (r#"{"a":{"$in":5}}"#, Error::BadFilter),
        (r#"{"a":{"$nin":{"x":1}}}"#, Error::BadFilter),
        (r#"{"a":{"$exists":1}}"#, Error::BadFilter),
        (r#"{"a":{"$type":"integer"}}"#, Error::BadFilter),
        (r#"{"a":{"$type":1}}"#, Error::BadFilter),
        (r#"{"a":{"$gt":null}}"#, Error::BadFilter),
        (r#"{"a":{"$lt":[1]}}"#, Error::BadFilter),
        (r#"{"a":{"$lte":{"x":1}}}"#, Error::BadFilter),
        (r#"{"$and":{"a":1}}"#, Error::BadFilter),
        (r#"{"$and":[]}"#, Error::BadFilter),
        (r#"{"$or":[1]}"#, Error::BadFilter),
        (r#"{"$nor":[{"a":{"$bad":1}}]}"#, Error::BadFilter),
        (r#"{"$not":5}"#, Error::BadFilter),
        (r#"{"a":{"$not":5}}"#, Error::BadFilter),
        (r#"{"a":{"$not":{}}}"#, Error::BadFilter),
        (r#"{"a":{"$not":{"b":1}}}"#, Error::BadFilter),
        (r#"{"a":{"$options":"i"}}"#, Error::BadFilter),
        (r#"{"":1}"#, Error::BadFilter),
        (r#"{"a..b":1}"#, Error::BadFilter),
        (r#"{"a.":1}"#, Error::BadFilter),
        (r#"{"a":1"#, Error::Json),
        (r#"{"a":1} x"#, Error::Json),
    ];
    for (s, e) in cases {
        assert_eq!(err(s), *e, "{s}");
    }
    assert_eq!(Error::BadFilter.to_string(), "invalid filter");
}

#[test]
fn limits_are_enforced() {
    let lim = Limits::default();
    // Depth: the filter document itself, as Value::depth counts it.
    let mut s = String::from(r#"{"a":1}"#);
    let mut depth = 1;
    while depth + 2 <= lim.max_depth {
        s = alloc::format!(r#"{{"$and":[{s}]}}"#);
        depth += 2;
    }
    assert_eq!(j(&s).depth(), lim.max_depth - 1);
    assert!(Filter::from_json(s.as_bytes(), &lim).is_ok());
    let deeper = alloc::format!(r#"{{"$and":[{s}]}}"#);
    assert_eq!(err(&deeper), Error::TooDeep);
    assert_eq!(Filter::from_value(&j(&deeper), &lim), Err(Error::TooDeep));
    assert_eq!(err(r#"{"a":{"$eq":[[[[[[[[1]]]]]]]]}}"#), Error::TooDeep);
    assert_eq!(
        err(r#"{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"a":1}}}}}}}}}"#),
        Error::TooDeep
    );
    // Huge lists.
    let list = |n: usize, item: &str| {
        let items: Vec<String> = (0..n).map(|_| item.to_string()).collect();
        items.join(",")
    };
    for op in ["$in", "$nin"] {
        let ok = alloc::format!(r#"{{"a":{{"{op}":[{}]}}}}"#, list(64, "1"));
        assert!(Filter::from_json(ok.as_bytes(), &lim).is_ok());
        let big = alloc::format!(r#"{{"a":{{"{op}":[{}]}}}}"#, list(65, "1"));
        assert_eq!(err(&big), Error::TooLarge, "{op}");
        let huge = alloc::format!(r#"{{"a":{{"{op}":[{}]}}}}"#, list(100_000, "1"));
        assert_eq!(err(&huge), Error::TooLarge, "{op}");
    }
    for op in ["$and", "$or", "$nor"] {
        let big = alloc::format!(r#"{{"{op}":[{}]}}"#, list(65, r#"{"a":1}"#));
        assert_eq!(err(&big), Error::TooLarge, "{op}");
    }
    let small = Limits {
        max_list: 2,
        max_depth: 3,
        ..lim
    };
    assert_eq!(
        Filter::from_json(br#"{"a":{"$in":[1,2,3]}}"#, &small),
        Err(Error::TooLarge)
    );
    assert_eq!(
        Filter::from_json(br#"{"a":{"$in":[[1]]}}"#, &small),
        Err(Error::TooDeep)
    );
    // max_depth is clamped to MAX_DEPTH_LIMIT.
    let big = Limits {
        max_depth: usize::MAX,
        ..lim
    };
    let mut v = j(r#"{"a":1}"#);
    for _ in 0..70 {
        v = Value::Map([("$not".to_string(), v)].into_iter().collect());
    }
    assert_eq!(Filter::from_value(&v, &big), Err(Error::TooDeep));
}

#[cfg(not(feature = "regex"))]
#[test]
fn regex_needs_the_feature() {
    assert_eq!(err(r#"{"a":{"$regex":"x"}}"#), Error::InvalidArgument);
}

#[test]
fn deep_builder_filters_are_refused_not_overflowed() {
    // Alternate AND and OR so flattening cannot collapse the tree.
    let mut flt = Filter::eq("a", 1);
    for i in 0..(MAX_DEPTH_LIMIT + 4) {
        flt = if i % 2 == 0 {
            flt.and(Filter::exists("b", false))
        } else {
            flt.or(Filter::eq("c", 1))
        };
    }
    assert_eq!(flt.try_matches(&j(r#"{"a":1}"#)), Err(Error::TooDeep));
    assert!(!flt.matches(&j(r#"{"a":1}"#)));
    assert_eq!(flt.paths().collect::<Vec<_>>(), ["a", "b", "c"]);
    // Chains of one operator stay flat.
    let mut chain = Filter::all();
    for i in 0..1000 {
        chain = chain.and(Filter::ne("n", i));
    }
    assert_eq!(chain.try_matches(&j(r#"{"n":1000}"#)), Ok(true));
    assert_eq!(chain.try_matches(&j(r#"{"n":999}"#)), Ok(false));
}

// ---- builder ----

#[test]
fn builder_matches_json_form() {
    let pairs: Vec<(Filter, &str)> = vec![
        (
            Filter::eq("room", "R101").and(Filter::gt("temp", 20.0)),
            r#"{"room":"R101","temp":{"$gt":20.0}}"#,
        ),
        (
            Filter::eq("room", "R101").and(Filter::gt("temp", 20.0)),
            r#"{"$and":[{"room":"R101"},{"temp":{"$gt":20.0}}]}"#,
        ),
        (
            Filter::any(vec![Filter::eq("a", 1), Filter::lte("b", "x")]),
            r#"{"$or":[{"a":1},{"b":{"$lte":"x"}}]}"#,
        ),
        (
            Filter::eq("a", 1)
                .or(Filter::eq("b", 2))
                .or(Filter::eq("c", 3)),
            r#"{"$or":[{"a":1},{"b":2},{"c":3}]}"#,
        ),
        (
            Filter::not(Filter::gt("f", 5)),
            r#"{"f":{"$not":{"$gt":5}}}"#,
        ),
        (
            Filter::not(Filter::gt("f", 5)),
            r#"{"$not":{"f":{"$gt":5}}}"#,
        ),
        (
            Filter::not(Filter::any(vec![Filter::eq("a", 1), Filter::eq("b", 1)])),
            r#"{"$nor":[{"a":1},{"b":1}]}"#,
        ),
        (Filter::ne("f", Value::Null), r#"{"f":{"$ne":null}}"#),
        (
            Filter::in_("x", vec![Value::Int(1), Value::from("a")]),
            r#"{"x":{"$in":[1,"a"]}}"#,
        ),
        (
            Filter::nin("x", vec![Value::Int(1)]),
            r#"{"x":{"$nin":[1]}}"#,
        ),
        (Filter::exists("f", true), r#"{"f":{"$exists":true}}"#),
        (
            Filter::has_type("f", ValueType::Number).and(Filter::contains("t", "ab")),
            r#"{"f":{"$type":"number"},"t":{"$contains":"ab"}}"#,
        ),
        (
            Filter::gte("a.b.0", 1).and(Filter::lt("a.b.0", 5i64)),
            r#"{"a.b.0":{"$gte":1,"$lt":5}}"#,
        ),
        (Filter::all(), "{}"),
        (Filter::all_of(vec![]), "{}"),
        (Filter::eq("m", j(r#"{"k":[1]}"#)), r#"{"m":{"k":[1]}}"#),
    ];
    let docs = [
        r#"{"room":"R101","temp":21.5}"#,
        r#"{"room":"R101","temp":20}"#,
        r#"{"a":1,"b":"w","x":"a","f":6,"t":"cab"}"#,
        r#"{"a":{"b":[3]},"c":3,"f":null,"m":{"k":[1.0]}}"#,
        "{}",
    ];
    for (built, text) in &pairs {
        let parsed = f(text);
        assert_eq!(built, &parsed, "{text}");
        for d in docs {
            assert_eq!(built.matches(&j(d)), parsed.matches(&j(d)), "{text} on {d}");
        }
    }
    assert!(Filter::all().is_all() && !f(r#"{"a":1}"#).is_all());
    assert!(!Filter::any(vec![]).matches(&j("{}")));
    // Builder operands outside the comparison brackets match nothing.
    assert!(!Filter::gt("a", Value::Null).matches(&j(r#"{"a":1}"#)));
    // The empty path addresses the tested value itself.
    assert!(Filter::gt("", 3).matches(&Value::Int(4)));
}

// ---- planner helpers ----

#[test]
fn planner_helpers() {
    let flt = f(
        r#"{"room":"R1","t":{"$gt":5,"$lte":9},"$and":[{"t":{"$gte":6}},{"t":{"$lt":9}}],"s":{"$gte":"b"},"x":{"$gt":1,"$lt":"z"},"$or":[{"o":1},{"o":2}],"n":{"$ne":3}}"#,
    );
    assert_eq!(flt.equality_on("room"), Some(&Value::from("R1")));
    assert_eq!(flt.equality_on("o"), None);
    assert_eq!(flt.equality_on("n"), None);
    assert_eq!(flt.equality_on("t"), None);
    let six = Value::Int(6);
    let nine = Value::Int(9);
    assert_eq!(
        flt.range_on("t"),
        Some((Bound::Included(&six), Bound::Excluded(&nine)))
    );
    let b = Value::from("b");
    assert_eq!(
        flt.range_on("s"),
        Some((Bound::Included(&b), Bound::Unbounded))
    );
    assert_eq!(
        flt.range_on("room"),
        Some((
            Bound::Included(&Value::from("R1")),
            Bound::Included(&Value::from("R1"))
        ))
    );
    assert_eq!(flt.range_on("x"), None, "mixed kinds");
    assert_eq!(flt.range_on("o"), None, "under $or");
    assert_eq!(flt.range_on("n"), None);
    assert_eq!(flt.range_on("zz"), None);
    assert_eq!(
        flt.paths().collect::<Vec<_>>(),
        ["room", "t", "s", "x", "o", "n"]
    );
    // Ties: the exclusive bound wins; Int and Float mix as numbers.
    let g = f(r#"{"v":{"$gte":5,"$gt":5.0,"$lt":10.5,"$lte":10.5}}"#);
    let (five, ten) = (Value::Float(5.0), Value::Float(10.5));
    assert_eq!(
        g.range_on("v"),
        Some((Bound::Excluded(&five), Bound::Excluded(&ten)))
    );
    assert_eq!(f(r#"{"v":true}"#).range_on("v"), None);
    assert_eq!(f(r#"{"v":{"$gt":true}}"#).range_on("v"), None);
    assert_eq!(f(r#"{"v":null}"#).equality_on("v"), Some(&Value::Null));
    assert_eq!(f(r#"{"v":{"$not":{"$eq":1}}}"#).equality_on("v"), None);
    // A single condition is its own conjunct.
    assert_eq!(f(r#"{"v":{"$eq":[1]}}"#).equality_on("v"), Some(&j("[1]")));
}

// ---- options ----

#[test]
fn find_options_parse() {
    let lim = Limits::default();
    let o = FindOptions::from_json(
        br#"{"sort":{"temp":-1,"_id":1},"skip":5,"limit":10,"projection":{"room":1,"temp":1}}"#,
        &lim,
    )
    .unwrap();
    assert_eq!(
        o.sort,
        vec![
            ("temp".to_string(), Order::Desc),
            ("_id".to_string(), Order::Asc)
        ]
    );
    assert_eq!((o.skip, o.limit), (5, Some(10)));
    assert_eq!(
        o.projection,
        Some(Projection::include(&["room", "temp"], true).unwrap())
    );
    assert_eq!(
        FindOptions::from_json(b"{}", &lim),
        Ok(FindOptions::default())
    );
    let o = FindOptions::from_json(br#"{"limit":null,"projection":null,"limit":0}"#, &lim).unwrap();
    assert_eq!(o.limit, Some(0));
    let bad: &[(&str, Error)] = &[
        ("[]", Error::BadFilter),
        (r#"{"sort":{"a":2}}"#, Error::BadFilter),
        (r#"{"sort":{"a":"asc"}}"#, Error::BadFilter),
        (r#"{"sort":{"a":1.0}}"#, Error::BadFilter),
        (r#"{"sort":[["a",1]]}"#, Error::BadFilter),
        (r#"{"sort":{"a..b":1}}"#, Error::BadFilter),
        (r#"{"skip":-1}"#, Error::BadFilter),
        (r#"{"skip":1.5}"#, Error::BadFilter),
        (r#"{"limit":"10"}"#, Error::BadFilter),
        (r#"{"projection":{"a":1,"b":0}}"#, Error::BadFilter),
        (r#"{"projection":{"a":0,"_id":1}}"#, Error::BadFilter),
        (r#"{"projection":{"a":2}}"#, Error::BadFilter),
        (r#"{"projection":[1]}"#, Error::BadFilter),
        (r#"{"filter":{}}"#, Error::BadFilter),
        (r#"{"sort":{"a":1}"#, Error::Json),
    ];
    for (s, e) in bad {
        assert_eq!(FindOptions::from_json(s.as_bytes(), &lim), Err(*e), "{s}");
    }
    let keys: Vec<String> = (0..65).map(|i| alloc::format!(r#""k{i}":1"#)).collect();
    let many = alloc::format!(r#"{{"sort":{{{}}}}}"#, keys.join(","));
    assert_eq!(
        FindOptions::from_json(many.as_bytes(), &lim),
        Err(Error::TooLarge)
    );
    let many = alloc::format!(r#"{{"projection":{{{}}}}}"#, keys.join(","));
    assert_eq!(
        FindOptions::from_json(many.as_bytes(), &lim),
        Err(Error::TooLarge)
    );
}

#[test]
fn projection_apply() {
    let lim = Limits::default();
    let p = |s: &str| Projection::from_value(&j(s), &lim).unwrap();
    let doc = j(
        r#"{"_id":7,"room":"R1","temp":21.5,"m":{"a":1,"b":{"c":2,"d":3}},"l":[10,{"x":1,"y":2},30],"s":"str"}"#,
    );
    let cases = [
        (
            r#"{"room":1,"temp":1}"#,
            r#"{"_id":7,"room":"R1","temp":21.5}"#,
        ),
        (r#"{"room":1,"_id":0}"#, r#"{"room":"R1"}"#),
        (r#"{"room":true,"_id":false}"#, r#"{"room":"R1"}"#),
        (r#"{"_id":1}"#, r#"{"_id":7}"#),
        (r#"{"m.b.c":1,"_id":0}"#, r#"{"m":{"b":{"c":2}}}"#),
        (r#"{"m.b.z":1,"_id":0}"#, r#"{"m":{"b":{}}}"#),
        (r#"{"m.a.z":1,"s.x":1,"nope":1,"_id":0}"#, r#"{"m":{}}"#),
        (r#"{"l.1.y":1,"l.2":1,"_id":0}"#, r#"{"l":[{"y":2},30]}"#),
        (
            r#"{"m":1,"m.a":1,"_id":0}"#,
            r#"{"m":{"a":1,"b":{"c":2,"d":3}}}"#,
        ),
        (
            r#"{"room":0,"m.b":0,"l.1.x":0,"l.0":0}"#,
            r#"{"_id":7,"temp":21.5,"m":{"a":1},"l":[{"y":2},30],"s":"str"}"#,
        ),
        (
            r#"{"_id":0}"#,
            r#"{"room":"R1","temp":21.5,"m":{"a":1,"b":{"c":2,"d":3}},"l":[10,{"x":1,"y":2},30],"s":"str"}"#,
        ),
        (
            r#"{"s.x":0,"nope.x":0}"#,
            r#"{"_id":7,"room":"R1","temp":21.5,"m":{"a":1,"b":{"c":2,"d":3}},"l":[10,{"x":1,"y":2},30],"s":"str"}"#,
        ),
        (
            "{}",
            r#"{"_id":7,"room":"R1","temp":21.5,"m":{"a":1,"b":{"c":2,"d":3}},"l":[10,{"x":1,"y":2},30],"s":"str"}"#,
        ),
    ];
    for (proj, want) in cases {
        assert_eq!(p(proj).apply(&doc), j(want), "{proj}");
    }
    assert!(p(r#"{"a":1}"#).is_include());
    assert_eq!(p(r#"{"a":1}"#).paths(), ["a", "_id"]);
    assert!(!p(r#"{"_id":0}"#).is_include());
    assert_eq!(
        Projection::include(&["room"], false).unwrap().apply(&doc),
        j(r#"{"room":"R1"}"#)
    );
    assert_eq!(
        Projection::exclude(&["room", "m", "l", "s", "temp"])
            .unwrap()
            .apply(&doc),
        j(r#"{"_id":7}"#)
    );
    assert_eq!(Projection::include(&["a..b"], true), Err(Error::BadFilter));
    assert_eq!(
        Projection::include(&["a"], true)
            .unwrap()
            .apply(&Value::Int(1)),
        j("{}")
    );
    assert_eq!(
        Projection::exclude(&["a"]).unwrap().apply(&Value::Int(1)),
        Value::Int(1)
    );
}

#[test]
fn sort_documents() {
    let lim = Limits::default();
    let o = FindOptions::from_json(br#"{"sort":{"g":1,"t":-1}}"#, &lim).unwrap();
    let mut docs: Vec<Value> = [
        r#"{"id":1,"g":"b","t":1}"#,
        r#"{"id":2,"g":"a","t":2.5}"#,
        r#"{"id":3,"t":9}"#,
        r#"{"id":4,"g":"a","t":3}"#,
        r#"{"id":5,"g":null,"t":10}"#,
        r#"{"id":6,"g":"a"}"#,
        r#"{"id":7,"g":2,"t":0}"#,
        r#"{"id":8,"g":"b","t":"x"}"#,
    ]
    .iter()
    .map(|s| j(s))
    .collect();
    docs.sort_by(|a, b| compare_docs(&o.sort, a, b));
    let ids: Vec<i64> = docs
        .iter()
        .map(|d| {
            crate::value::get_path(d, "id")
                .and_then(Value::as_i64)
                .unwrap()
        })
        .collect();
    // Missing and null sort first (equal, then by t descending); numbers before strings.
    assert_eq!(ids, [5, 3, 7, 4, 2, 6, 8, 1]);
    assert_eq!(compare_docs(&[], &docs[0], &docs[1]), Ordering::Equal);
}

#[test]
fn distinct_values() {
    let mut d = Distinct::new(4);
    assert!(d.is_empty());
    assert_eq!(d.push(&Value::Int(2)), Ok(true));
    assert_eq!(d.push(&Value::Float(2.0)), Ok(false));
    assert_eq!(d.push(&Value::from("a")), Ok(true));
    assert_eq!(d.push(&Value::Null), Ok(true));
    assert_eq!(d.push(&Value::Int(2)), Ok(false));
    assert_eq!(d.push(&j("[1]")), Ok(true));
    assert_eq!(d.push(&Value::Int(3)), Err(Error::TooLarge));
    assert_eq!(
        d.push(&Value::from("a")),
        Ok(false),
        "known values are fine when full"
    );
    assert_eq!(d.len(), 4);
    assert_eq!(
        d.values(),
        [Value::Null, Value::Int(2), Value::from("a"), j("[1]")]
    );
    let mut e = Distinct::new(10);
    for doc in [
        r#"{"t":["a","b"]}"#,
        r#"{"t":"c"}"#,
        "{}",
        r#"{"t":["a",["z"]]}"#,
        r#"{"t":[]}"#,
    ] {
        e.push_field(&j(doc), "t").unwrap();
    }
    assert_eq!(
        e.into_values(),
        [
            Value::from("a"),
            Value::from("b"),
            Value::from("c"),
            j(r#"["z"]"#)
        ]
    );
    let mut full = Distinct::new(1);
    assert_eq!(
        full.push_field(&j(r#"{"t":[1,2]}"#), "t"),
        Err(Error::TooLarge)
    );
}

// ---- regex ----

#[cfg(feature = "regex")]
mod regex_tests {
    use super::*;

    fn re(pattern: &str, icase: bool) -> Filter {
        Filter::regex("s", pattern, icase, &Limits::default()).unwrap()
    }

    fn is(pattern: &str, s: &str) -> bool {
        re(pattern, false)
            .try_matches(&Value::Map(
                [("s".to_string(), Value::from(s))].into_iter().collect(),
            ))
            .unwrap()
    }

    #[test]
    fn syntax() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "abc", true),
            ("b", "abc", true),
            ("d", "abc", false),
            ("^a", "abc", true),
            ("^b", "abc", false),
            ("c$", "abc", true),
            ("b$", "abc", false),
            ("^abc$", "abc", true),
            ("^$", "", true),
            ("^$", "a", false),
            ("a.c", "abc", true),
            ("a.c", "ac", false),
            ("a.c", "aéc", true),
            ("^ab*c$", "ac", true),
            ("^ab*c$", "abbbc", true),
            ("^ab+c$", "ac", false),
            ("^ab+c$", "abbc", true),
            ("^ab?c$", "abc", true),
            ("^ab?c$", "abbc", false),
            ("^[a-c]+$", "abcab", true),
            ("^[a-c]+$", "abd", false),
            ("^[^a-c]+$", "xyz", true),
            ("^[^a-c]+$", "xaz", false),
            ("^[a-z0-9_]+$", "ok_42", true),
            ("^[a-z0-9_]+$", "ok-42", false),
            ("^[-a]+$", "-a-", true),
            ("^[a-]+$", "-a-", true),
            ("^[\\]\\\\]+$", "]\\", true),
            ("^\\d+$", "2024", true),
            ("^\\d+$", "20x4", false),
            ("^\\w+$", "a_Z9", true),
            ("^\\w+$", "a-b", false),
            ("^a\\sb$", "a b", true),
            ("^a\\sb$", "a\tb", true),
            ("^\\D\\W\\S$", "a-x", true),
            ("^[\\d.]+$", "1.5", true),
            ("\\.", "a.b", true),
            ("\\.", "ab", false),
            ("^\\$\\^\\(\\)\\[\\*\\+\\?\\{\\|$", "$^()[*+?{|", true),
            ("\\n", "a\nb", true),
            ("cat|dog", "hotdog", true),
            ("cat|dog", "cow", false),
            ("^(cat|dog)s?$", "dogs", true),
            ("^(cat|dog)s?$", "cats!", false),
            ("^(?:ab)+$", "ababab", true),
            ("^(ab)+$", "ababa", false),
            ("^(a|ab)(c|bcd)(d*)$", "abcd", true),
            ("^(a*)*$", "aaaa", true),
            ("^(a*)*b$", "aab", true),
            ("^(a*)+$", "", true),
            ("^(a|)+b$", "aab", true),
            ("^(a?)*$", "aa", true),
            ("^()*$", "", true),
            ("^(^)*a$", "a", true),
            ("x*", "", true),
            ("^é+$", "éé", true),
            ("^[à-ÿ]+$", "éà", true),
            ("a|", "zzz", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(is(p, s), *want, "/{p}/ on {s:?}");
        }
    }

    #[test]
    fn options_and_json() {
        check(
            r#"{"s":{"$regex":"^ab","$options":"i"}}"#,
            &[
                (r#"{"s":"ABc"}"#, true),
                (r#"{"s":"aB"}"#, true),
                (r#"{"s":"cab"}"#, false),
            ],
        );
        check(
            r#"{"s":{"$options":"i","$regex":"[a-c]X"}}"#,
            &[(r#"{"s":"Bx"}"#, true), (r#"{"s":"dx"}"#, false)],
        );
        check(r#"{"s":{"$regex":"^ab"}}"#, &[(r#"{"s":"ABc"}"#, false)]);
        check(
            r#"{"s":{"$regex":"x\\d"}}"#,
            &[
                (r#"{"s":["a","bx1"]}"#, true),
                (r#"{"s":["x"]}"#, false),
                (r#"{"s":5}"#, false),
                ("{}", false),
            ],
        );
        check(
            r#"{"s":{"$not":{"$regex":"a"}}}"#,
            &[(r#"{"s":"b"}"#, true), ("{}", true)],
        );
        check(
            r#"{"s":{"$regex":"", "$options":""}}"#,
            &[(r#"{"s":"B"}"#, true)],
        );
        assert_eq!(re("ab", true), f(r#"{"s":{"$regex":"ab","$options":"i"}}"#));
        let bad = [
            r#"{"s":{"$regex":5}}"#,
            r#"{"s":{"$regex":"a","$options":"x"}}"#,
            r#"{"s":{"$regex":"a","$options":1}}"#,
            r#"{"s":{"$regex":"("}}"#,
            r#"{"s":{"$regex":")"}}"#,
            r#"{"s":{"$regex":"a)"}}"#,
            r#"{"s":{"$regex":"[a"}}"#,
            r#"{"s":{"$regex":"[z-a]"}}"#,
            r#"{"s":{"$regex":"*a"}}"#,
            r#"{"s":{"$regex":"a**"}}"#,
            r#"{"s":{"$regex":"a*?"}}"#,
            r#"{"s":{"$regex":"a+*"}}"#,
            r#"{"s":{"$regex":"^*"}}"#,
            r#"{"s":{"$regex":"a|*"}}"#,
            r#"{"s":{"$regex":"a{2}"}}"#,
            r#"{"s":{"$regex":"\\b"}}"#,
            r#"{"s":{"$regex":"\\1"}}"#,
            r#"{"s":{"$regex":"a\\"}}"#,
            r#"{"s":{"$regex":"(?i)a"}}"#,
        ];
        for s in bad {
            assert_eq!(err(s), Error::BadFilter, "{s}");
        }
        let deep = alloc::format!(
            r#"{{"s":{{"$regex":"{}a{}"}}}}"#,
            "(".repeat(9),
            ")".repeat(9)
        );
        assert_eq!(err(&deep), Error::TooDeep);
        let ok = alloc::format!(
            r#"{{"s":{{"$regex":"{}a{}"}}}}"#,
            "(".repeat(8),
            ")".repeat(8)
        );
        check(&ok, &[(r#"{"s":"a"}"#, true)]);
    }

    /// A tiny regex AST for the differential test, rendered to pattern text.
    #[derive(Debug, Clone)]
    enum Ast {
        Char(char),
        Any,
        Class(bool, Vec<char>),
        Bol,
        Eol,
        Cat(Vec<Ast>),
        Alt(Vec<Ast>),
        Star(Box<Ast>),
        Plus(Box<Ast>),
        Opt(Box<Ast>),
    }

    fn render(a: &Ast) -> String {
        let group = |e: &Ast| match e {
            Ast::Char(_) | Ast::Any | Ast::Class(..) => render(e),
            _ => alloc::format!("({})", render(e)),
        };
        match a {
            Ast::Char(c) => c.to_string(),
            Ast::Any => ".".to_string(),
            Ast::Class(neg, cs) => {
                alloc::format!(
                    "[{}{}]",
                    if *neg { "^" } else { "" },
                    cs.iter().collect::<String>()
                )
            }
            Ast::Bol => "^".to_string(),
            Ast::Eol => "$".to_string(),
            Ast::Cat(v) => v
                .iter()
                .map(|e| match e {
                    Ast::Alt(_) => group(e),
                    _ => render(e),
                })
                .collect(),
            Ast::Alt(v) => v.iter().map(render).collect::<Vec<_>>().join("|"),
            Ast::Star(e) => group(e) + "*",
            Ast::Plus(e) => group(e) + "+",
            Ast::Opt(e) => group(e) + "?",
        }
    }

    /// All end positions of matches of `a` starting at `i`: set semantics, no backtracking.
    fn ends(a: &Ast, s: &[char], i: usize, icase: bool) -> std::collections::BTreeSet<usize> {
        use std::collections::BTreeSet;
        let eqc = |x: char, y: char| x == y || (icase && x.eq_ignore_ascii_case(&y));
        let one = |ok: bool| {
            if ok {
                BTreeSet::from([i + 1])
            } else {
                BTreeSet::new()
            }
        };
        let star = |e: &Ast, from: BTreeSet<usize>| {
            let mut all = from.clone();
            let mut frontier = from;
            while !frontier.is_empty() {
                let mut next = BTreeSet::new();
                for p in frontier {
                    for q in ends(e, s, p, icase) {
                        if all.insert(q) {
                            next.insert(q);
                        }
                    }
                }
                frontier = next;
            }
            all
        };
        match a {
            Ast::Char(c) => one(s.get(i).is_some_and(|&x| eqc(x, *c))),
            Ast::Any => one(i < s.len()),
            Ast::Class(neg, cs) => one(s
                .get(i)
                .is_some_and(|&x| cs.iter().any(|&c| eqc(x, c)) != *neg)),
            Ast::Bol => {
                if i == 0 {
                    BTreeSet::from([i])
                } else {
                    BTreeSet::new()
                }
            }
            Ast::Eol => {
                if i == s.len() {
                    BTreeSet::from([i])
                } else {
                    BTreeSet::new()
                }
            }
            Ast::Cat(v) => v.iter().fold(BTreeSet::from([i]), |acc, e| {
                acc.iter().flat_map(|&p| ends(e, s, p, icase)).collect()
            }),
            Ast::Alt(v) => v.iter().flat_map(|e| ends(e, s, i, icase)).collect(),
            Ast::Star(e) => star(e, BTreeSet::from([i])),
            Ast::Plus(e) => star(e, ends(e, s, i, icase)),
            Ast::Opt(e) => {
                let mut r = ends(e, s, i, icase);
                r.insert(i);
                r
            }
        }
    }

    fn arb_ast() -> impl Strategy<Value = Ast> {
        let leaf = prop_oneof![
            4 => prop_oneof![Just('a'), Just('b'), Just('A')].prop_map(Ast::Char),
            1 => Just(Ast::Any),
            1 => (any::<bool>(), proptest::collection::vec(prop_oneof![Just('a'), Just('b')], 1..3))
                .prop_map(|(n, cs)| Ast::Class(n, cs)),
            1 => prop_oneof![Just(Ast::Bol), Just(Ast::Eol)],
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Ast::Cat),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Ast::Alt),
                inner.clone().prop_map(|e| Ast::Star(Box::new(e))),
                inner.clone().prop_map(|e| Ast::Plus(Box::new(e))),
                inner.prop_map(|e| Ast::Opt(Box::new(e))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn query_regex_matches_set_semantics(ast in arb_ast(), subject in "[abAB]{0,7}", icase in any::<bool>()) {
            let pattern = render(&ast);
            // An unlimited step budget: on these short subjects every run must finish.
            let lim = Limits { max_depth: MAX_DEPTH_LIMIT, max_list: 64, regex_steps: u32::MAX };
            let flt = Filter::regex("", &pattern, icase, &lim);
            prop_assert!(flt.is_ok(), "{} -> {:?}", pattern, flt);
            let chars: Vec<char> = subject.chars().collect();
            let want = (0..=chars.len()).any(|i| !ends(&ast, &chars, i, icase).is_empty());
            let got = flt.unwrap().try_matches(&Value::from(subject.as_str()));
            prop_assert_eq!(got, Ok(want), "/{}/ on {:?}", pattern, subject);
        }
    }

    #[test]
    fn pathological_pattern_hits_the_budget() {
        let long = "a".repeat(64);
        let doc = Value::Map(
            [("s".to_string(), Value::from(long.as_str()))]
                .into_iter()
                .collect(),
        );
        for p in ["(a*)*b", "(a|a)*b", "(a+)+b", "^(a|aa)*c$", "(.*)*x"] {
            let flt = re(p, false);
            assert_eq!(flt.try_matches(&doc), Err(Error::TooLarge), "{p}");
            assert!(!flt.matches(&doc));
            // Negation does not turn a budget failure into a match.
            assert!(!Filter::not(flt).matches(&doc));
        }
        // The same patterns are fine on short input.
        assert!(re("(a*)*b", false).matches(&j(r#"{"s":"aab"}"#)));
        // A bigger budget, a big input: still bounded (stack cap), never a hang.
        let lim = Limits {
            regex_steps: u32::MAX,
            ..Limits::default()
        };
        let flt = Filter::regex("s", "(a*)*b", false, &lim).unwrap();
        let long = Value::Map(
            [("s".to_string(), Value::from("a".repeat(5000).as_str()))]
                .into_iter()
                .collect(),
        );
        assert_eq!(flt.try_matches(&long), Err(Error::TooLarge));
        // A simple pattern on a 1 KiB string fits the default budget.
        let kib = alloc::format!("{}needle", "x".repeat(1000));
        assert!(is("needle$", &kib));
    }
}

// ---- property tests ----

/// A small document model domain so that equal and nearly-equal values are common.
fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(Value::Int),
        prop_oneof![Just(1i64 << 53), Just((1i64 << 53) + 1), Just(i64::MAX)].prop_map(Value::Int),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(0.5),
            Just(-1.5),
            Just(9007199254740992.0),
            Just(9.223372036854776e18),
            Just(f64::INFINITY),
            Just(f64::NAN),
        ]
        .prop_map(Value::Float),
        prop_oneof![
            Just(""),
            Just("a"),
            Just("ab"),
            Just("b"),
            Just("A"),
            Just("Ab"),
            Just("ba")
        ]
        .prop_map(Value::from),
        prop_oneof![Just(vec![]), Just(vec![0u8]), Just(vec![1u8])].prop_map(Value::Bytes),
    ]
}

fn arb_doc_value() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((prop_oneof![Just("a"), Just("b"), Just("0")], inner), 0..3)
                .prop_map(|kv| Value::Map(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
        ]
    })
}

fn arb_doc() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (
            prop_oneof![Just("a"), Just("b"), Just("c")],
            arb_doc_value(),
        ),
        0..4,
    )
    .prop_map(|kv| Value::Map(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

const PATHS: &[&str] = &[
    "a", "b", "c", "a.a", "a.b", "a.0", "b.1", "a.0.b", "c.a.0", "z",
];

fn arb_path() -> impl Strategy<Value = String> {
    proptest::sample::select(PATHS).prop_map(str::to_string)
}

/// Operands valid for `$gt` and friends.
fn arb_bracketed() -> impl Strategy<Value = Value> {
    arb_scalar().prop_filter("bracketed", |v| {
        matches!(
            v,
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) | Value::Bytes(_)
        )
    })
}

fn op(name: &str, v: Value) -> (String, Value) {
    (name.to_string(), v)
}

/// One field operator with a valid operand.
fn arb_op() -> impl Strategy<Value = (String, Value)> {
    let list = proptest::collection::vec(prop_oneof![arb_doc_value(), Just(Value::Null)], 0..3)
        .prop_map(Value::Array);
    let mut ops = vec![
        arb_doc_value().prop_map(|v| op("$eq", v)).boxed(),
        arb_doc_value().prop_map(|v| op("$ne", v)).boxed(),
        (
            prop_oneof![Just("$gt"), Just("$gte"), Just("$lt"), Just("$lte")],
            arb_bracketed(),
        )
            .prop_map(|(n, v)| op(n, v))
            .boxed(),
        (prop_oneof![Just("$in"), Just("$nin")], list)
            .prop_map(|(n, v)| op(n, v))
            .boxed(),
        any::<bool>()
            .prop_map(|b| op("$exists", Value::Bool(b)))
            .boxed(),
        proptest::sample::select(
            &[
                "null", "bool", "int", "float", "number", "string", "bytes", "array", "map",
            ][..],
        )
        .prop_map(|t| op("$type", Value::from(t)))
        .boxed(),
        prop_oneof![arb_doc_value(), "[ab]{0,2}".prop_map(Value::from)]
            .prop_map(|v| op("$contains", v))
            .boxed(),
    ];
    if cfg!(feature = "regex") {
        // Literal patterns, optionally anchored: the reference reads them as substrings.
        ops.push(
            ("\\^?[abAB]{0,2}", any::<bool>())
                .prop_map(|(p, i)| op("$regex", Value::from(p)).clone_with_icase(i))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(ops)
}

/// Hack to carry `$options` along with `$regex`: encoded in the pattern value as a map.
trait WithIcase {
    fn clone_with_icase(self, icase: bool) -> (String, Value);
}

impl WithIcase for (String, Value) {
    fn clone_with_icase(self, icase: bool) -> (String, Value) {
        if icase {
            (
                self.0,
                Value::Map([("icase".to_string(), self.1)].into_iter().collect()),
            )
        } else {
            self
        }
    }
}

/// Builds an operator map; a `$regex` entry carrying the icase marker becomes
/// `"$regex": p, "$options": "i"`.
fn op_map(ops: Vec<(String, Value)>) -> Value {
    let mut m = crate::value::Map::new();
    for (k, v) in ops {
        match (k.as_str(), v) {
            ("$regex", Value::Map(inner)) => {
                if let Some(p) = inner.get("icase") {
                    m.insert(k, p.clone());
                    m.insert("$options".to_string(), Value::from("i"));
                }
            }
            (_, v) => {
                m.insert(k, v);
            }
        }
    }
    Value::Map(m)
}

fn arb_ops() -> impl Strategy<Value = Value> {
    proptest::collection::vec(arb_op(), 1..3).prop_map(op_map)
}

fn arb_field_cond() -> impl Strategy<Value = Value> {
    prop_oneof![
        // implicit equality (maps here have no `$` keys)
        arb_doc_value(),
        arb_ops(),
        arb_ops().prop_map(|m| Value::Map([("$not".to_string(), m)].into_iter().collect())),
    ]
}

fn arb_filter() -> impl Strategy<Value = Value> {
    let leaf = proptest::collection::vec((arb_path(), arb_field_cond()), 0..3)
        .prop_map(|kv| Value::Map(kv.into_iter().collect()));
    leaf.prop_recursive(3, 24, 3, |inner| {
        let list = proptest::collection::vec(inner.clone(), 1..3).prop_map(Value::Array);
        (
            prop_oneof![Just("$and"), Just("$or"), Just("$nor"), Just("$not")],
            list,
            inner,
            proptest::collection::vec((arb_path(), arb_field_cond()), 0..2),
        )
            .prop_map(|(name, list, one, fields)| {
                let mut m: crate::value::Map = fields.into_iter().collect();
                match name {
                    "$not" => m.insert(name.to_string(), one),
                    _ => m.insert(name.to_string(), list),
                };
                Value::Map(m)
            })
    })
}

// The reference evaluator: deliberately naive, written from the documented semantics, and
// sharing no code with the filter compiler (not even value::compare or get_path).
mod reference {
    use super::*;

    pub fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
        let mut cur = doc;
        for seg in path.split('.') {
            cur = match cur {
                Value::Map(m) => m.iter().find(|(k, _)| *k == seg).map(|(_, v)| v)?,
                Value::Array(a) => {
                    let i: usize = seg.parse().ok()?;
                    if i.to_string() != seg {
                        return None;
                    }
                    a.get(i)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Exact numeric order; NaN above everything and equal to itself.
    fn num_cmp(a: &Value, b: &Value) -> Ordering {
        let big = 9_223_372_036_854_775_808.0f64;
        let int_float = |i: i64, x: f64| -> Ordering {
            if x.is_nan() || x >= big {
                Ordering::Less
            } else if x < -big {
                Ordering::Greater
            } else {
                let t = x.trunc();
                match i128::from(i).cmp(&(t as i128)) {
                    Ordering::Equal => t.partial_cmp(&x).unwrap(),
                    o => o,
                }
            }
        };
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => x.cmp(y),
            (Value::Int(i), Value::Float(x)) => int_float(*i, *x),
            (Value::Float(x), Value::Int(i)) => int_float(*i, *x).reverse(),
            (Value::Float(x), Value::Float(y)) => match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => x.partial_cmp(y).unwrap(),
            },
            _ => unreachable!(),
        }
    }

    fn is_num(v: &Value) -> bool {
        matches!(v, Value::Int(_) | Value::Float(_))
    }

    pub fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            _ if is_num(a) && is_num(b) => num_cmp(a, b) == Ordering::Equal,
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => x == y,
            (Value::Bytes(x), Value::Bytes(y)) => x == y,
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
            }
            _ => false,
        }
    }

    /// Same-kind order for `$gt` and friends; None across kinds.
    pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
        match (a, b) {
            _ if is_num(a) && is_num(b) => Some(num_cmp(a, b)),
            (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
            (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
            (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
            _ => None,
        }
    }

    pub fn eq(v: Option<&Value>, x: &Value) -> bool {
        match v {
            None => matches!(x, Value::Null),
            Some(v) => same(v, x) || matches!(v, Value::Array(a) if a.iter().any(|e| same(e, x))),
        }
    }

    fn type_name(v: &Value) -> &'static str {
        match v {
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

    fn op(name: &str, arg: &Value, all: &crate::value::Map, v: Option<&Value>) -> bool {
        let list = || arg.as_array().unwrap();
        match name {
            "$eq" => eq(v, arg),
            "$ne" => !eq(v, arg),
            "$in" => list().iter().any(|x| eq(v, x)),
            "$nin" => !list().iter().any(|x| eq(v, x)),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let ok = |e: &Value| match order(e, arg) {
                    None => false,
                    Some(o) => match name {
                        "$gt" => o == Ordering::Greater,
                        "$gte" => o != Ordering::Less,
                        "$lt" => o == Ordering::Less,
                        _ => o != Ordering::Greater,
                    },
                };
                match v {
                    None => false,
                    Some(Value::Array(a)) => a.iter().any(ok),
                    Some(e) => ok(e),
                }
            }
            "$exists" => v.is_some() == arg.as_bool().unwrap(),
            "$type" => {
                let t = arg.as_str().unwrap();
                v.is_some_and(|v| type_name(v) == t || (t == "number" && is_num(v)))
            }
            "$contains" => match (v, arg) {
                (Some(Value::Str(s)), Value::Str(sub)) => s.contains(sub.as_str()),
                (Some(Value::Array(a)), x) => a.iter().any(|e| same(e, x)),
                _ => false,
            },
            "$regex" => {
                let icase = all.get("$options").is_some();
                let norm = |s: &str| {
                    if icase {
                        s.to_ascii_lowercase()
                    } else {
                        s.to_string()
                    }
                };
                let p = norm(arg.as_str().unwrap());
                let hit = |s: &str| match p.strip_prefix('^') {
                    Some(rest) => norm(s).starts_with(rest),
                    None => norm(s).contains(p.as_str()),
                };
                match v {
                    Some(Value::Str(s)) => hit(s),
                    Some(Value::Array(a)) => a.iter().any(|e| matches!(e, Value::Str(s) if hit(s))),
                    _ => false,
                }
            }
            "$options" => true,
            "$not" => {
                let m = arg.as_map().unwrap();
                !m.iter().all(|(n, a)| op(n, a, m, v))
            }
            _ => panic!("generator produced {name}"),
        }
    }

    pub fn matches(filter: &Value, doc: &Value) -> bool {
        let m = filter.as_map().unwrap();
        m.iter().all(|(k, x)| match k {
            "$and" => x.as_array().unwrap().iter().all(|f| matches(f, doc)),
            "$or" => x.as_array().unwrap().iter().any(|f| matches(f, doc)),
            "$nor" => !x.as_array().unwrap().iter().any(|f| matches(f, doc)),
            "$not" => !matches(x, doc),
            path => {
                let v = get(doc, path);
                match x {
                    Value::Map(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                        ops.iter().all(|(n, a)| op(n, a, ops, v))
                    }
                    _ => eq(v, x),
                }
            }
        })
    }
}

fn within(v: &Value, lo: Bound<&Value>, hi: Bound<&Value>) -> bool {
    let lo_ok = match lo {
        Bound::Unbounded => true,
        Bound::Included(x) => compare(v, x) != Ordering::Less,
        Bound::Excluded(x) => compare(v, x) == Ordering::Greater,
    };
    let hi_ok = match hi {
        Bound::Unbounded => true,
        Bound::Included(x) => compare(v, x) != Ordering::Greater,
        Bound::Excluded(x) => compare(v, x) == Ordering::Less,
    };
    lo_ok && hi_ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn query_matches_reference(filter in arb_filter(), docs in proptest::collection::vec(arb_doc(), 1..6)) {
        let lim = Limits { max_depth: MAX_DEPTH_LIMIT, ..Limits::default() };
        let compiled = Filter::from_value(&filter, &lim);
        prop_assert!(compiled.is_ok(), "{:?}: {:?}", filter, compiled);
        let compiled = compiled.unwrap();
        for doc in &docs {
            let want = reference::matches(&filter, doc);
            prop_assert_eq!(compiled.try_matches(doc), Ok(want), "{:?} on {:?}", filter, doc);
            if !want {
                continue;
            }
            // The planner contracts, for non-array values.
            for path in PATHS {
                let v = reference::get(doc, path);
                if let Some(x) = compiled.equality_on(path) {
                    match v {
                        None => prop_assert!(x.is_null()),
                        Some(Value::Array(_)) => {}
                        Some(v) => prop_assert!(reference::same(v, x), "eq {} {:?}", path, x),
                    }
                }
                if let Some((lo, hi)) = compiled.range_on(path) {
                    match v {
                        Some(Value::Array(_)) => {}
                        Some(v) => prop_assert!(within(v, lo, hi), "range {} {:?}", path, v),
                        None => prop_assert!(false, "range on a missing field matched"),
                    }
                }
            }
        }
    }

    #[test]
    fn query_single_operator_matches_reference(
        path in proptest::sample::select(&["a", "b", "a.0", "a.a"][..]),
        cond in arb_field_cond(),
        docs in proptest::collection::vec(arb_doc(), 8),
    ) {
        // One condition against many documents: each operator's edge cases get hit often.
        let filter = Value::Map([(path.to_string(), cond)].into_iter().collect());
        let compiled = Filter::from_value(&filter, &Limits { max_depth: MAX_DEPTH_LIMIT, ..Limits::default() }).unwrap();
        for doc in &docs {
            prop_assert_eq!(compiled.try_matches(doc), Ok(reference::matches(&filter, doc)),
                            "{:?} on {:?}", filter, doc);
        }
    }

    #[test]
    fn query_json_text_and_value_agree(filter in arb_filter(), doc in arb_doc()) {
        // Floats like NaN have no JSON form; only compare when the text reads back the same.
        let mut text = String::new();
        crate::value::to_json(&filter, &mut text);
        let lim = Limits { max_depth: MAX_DEPTH_LIMIT, ..Limits::default() };
        if let Ok(back) = from_json(text.as_bytes(), MAX_DEPTH_LIMIT) {
            if back == filter {
                let a = Filter::from_json(text.as_bytes(), &lim).unwrap();
                let b = Filter::from_value(&filter, &lim).unwrap();
                prop_assert_eq!(a.matches(&doc), b.matches(&doc));
            }
        }
    }

    #[test]
    fn query_random_filters_never_panic(v in arb_doc_value(), doc in arb_doc(),
                                        keys in proptest::collection::vec(
                                            prop_oneof![Just("$and"), Just("$or"), Just("$not"), Just("$nor"),
                                                        Just("$gt"), Just("$in"), Just("$regex"), Just("$options"),
                                                        Just("$type"), Just("$exists"), Just("a"), Just("a.0"),
                                                        Just(""), Just("$x")], 1..4)) {
        // Random shapes with operator names in random places.
        let mut cur = v;
        for k in keys {
            cur = Value::Map([(k.to_string(), cur)].into_iter().collect());
        }
        for lim in [Limits::default(), Limits { max_depth: 2, max_list: 1, regex_steps: 10 }] {
            if let Ok(flt) = Filter::from_value(&cur, &lim) {
                let _ = flt.matches(&doc);
                let _ = flt.paths().count();
                for p in PATHS {
                    let _ = (flt.equality_on(p), flt.range_on(p));
                }
            }
            let _ = FindOptions::from_value(&cur, &lim);
            let _ = Projection::from_value(&cur, &lim);
        }
    }

    #[test]
    fn query_random_text_never_panics(text in proptest::collection::vec(
        prop_oneof![Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'),
                    Just(b','), Just(b'$'), Just(b'1'), Just(b'a'), any::<u8>()], 0..48)) {
        let _ = Filter::from_json(&text, &Limits::default());
        let _ = FindOptions::from_json(&text, &Limits::default());
    }

    #[test]
    fn query_projection_include_exclude_partition(doc in arb_doc(),
                                                  paths in proptest::collection::vec(
                                                      prop_oneof![Just("a"), Just("b"), Just("c")], 0..3)) {
        // With top-level paths, include and exclude split the document's fields.
        let inc = Projection::include(&paths, false).unwrap().apply(&doc);
        let exc = Projection::exclude(&paths).unwrap().apply(&doc);
        let (inc, exc, doc) = (inc.as_map().unwrap(), exc.as_map().unwrap(), doc.as_map().unwrap());
        prop_assert_eq!(inc.len() + exc.len(), doc.len());
        for (k, v) in doc.iter() {
            let (i, e) = (inc.get(k), exc.get(k));
            prop_assert!(i.is_some() != e.is_some());
            // compare, not ==: NaN is equal to itself here.
            prop_assert_eq!(i.or(e).map(|x| compare(x, v)), Some(Ordering::Equal));
            prop_assert_eq!(i.is_some(), paths.contains(&k));
        }
    }

    #[test]
    fn query_sort_is_a_total_preorder(a in arb_doc(), b in arb_doc(), c in arb_doc()) {
        let sort = vec![("a".to_string(), Order::Desc), ("b.0".to_string(), Order::Asc)];
        let cmp = |x: &Value, y: &Value| compare_docs(&sort, x, y);
        prop_assert_eq!(cmp(&a, &b), cmp(&b, &a).reverse());
        if cmp(&a, &b) != Ordering::Greater && cmp(&b, &c) != Ordering::Greater {
            prop_assert!(cmp(&a, &c) != Ordering::Greater);
        }
    }
}

#[cfg(feature = "regex")]
proptest! {
    #[test]
    fn query_regex_never_panics_or_hangs(pattern in proptest::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('*'), Just('+'), Just('?'), Just('|'), Just('('),
                    Just(')'), Just('['), Just(']'), Just('^'), Just('$'), Just('.'), Just('\\'),
                    Just('-'), Just('d'), Just('é')], 0..16),
        subject in "[ab]{0,40}", icase in any::<bool>()) {
        let pattern: String = pattern.into_iter().collect();
        let lim = Limits { regex_steps: 5_000, ..Limits::default() };
        if let Ok(flt) = Filter::regex("", &pattern, icase, &lim) {
            let _ = flt.try_matches(&Value::from(subject.as_str()));
        }
    }
}
