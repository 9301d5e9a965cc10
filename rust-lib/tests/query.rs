//! Queries, secondary indexes, the planner and validation, end to end on the simulated flash.

mod common;
use cairndb::db::{Config, Database, IndexSpec, Key};
use cairndb::flash::SimFlash;
use cairndb::query::{Filter, FindOptions, Limits};
use cairndb::value::{Map, Value};
use cairndb::Error;
use common::Rng;
use common::*;
use proptest::prelude::*;

fn fresh() -> Database<SimFlash> {
    Database::format(new_sim(256), &Config::default(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .unwrap()
}

fn ids(docs: &[Value]) -> Vec<i64> {
    docs.iter()
        .map(|d| d.as_map().unwrap().get("_id").unwrap().as_i64().unwrap())
        .collect()
}

/// Result ids in ascending order (without a sort, results come in the plan's order).
fn sorted_ids(docs: &[Value]) -> Vec<i64> {
    let mut v = ids(docs);
    v.sort();
    v
}

fn find(db: &mut Database<SimFlash>, filter: &str, opts: &str) -> Vec<Value> {
    db.find_json("r", filter, opts)
        .unwrap_or_else(|e| panic!("find {filter} {opts}: {e:?}"))
}

fn sensor(rng: &mut Rng, i: u64) -> Value {
    let rooms = ["R101", "R102", "R103", "R104"];
    let mut m = Map::new();
    m.insert(
        "room".into(),
        Value::Str(rooms[rng.below(4) as usize].into()),
    );
    if rng.below(5) > 0 {
        m.insert(
            "temp".into(),
            if rng.below(2) == 0 {
                Value::Int(rng.below(40) as i64)
            } else {
                Value::Float(rng.below(400) as f64 / 10.0)
            },
        );
    }
    let tags: Vec<Value> = (0..rng.below(3))
        .map(|_| Value::Str(format!("t{}", rng.below(5))))
        .collect();
    m.insert("tags".into(), Value::Array(tags));
    m.insert("n".into(), Value::Int(i as i64));
    let mut loc = Map::new();
    loc.insert("floor".into(), Value::Int(rng.below(3) as i64));
    m.insert("loc".into(), Value::Map(loc));
    Value::Map(m)
}

/// Every document matching `filter`, by scanning with the filter alone (the reference).
fn reference(db: &mut Database<SimFlash>, filter: &Value) -> Vec<i64> {
    let f = Filter::from_value(filter, &Limits::default()).unwrap();
    let mut out = Vec::new();
    db.for_each_doc("r", &mut |d| {
        if f.matches(&d) {
            out.push(d.as_map().unwrap().get("_id").unwrap().as_i64().unwrap());
        }
        Ok(true)
    })
    .unwrap();
    out
}

#[test]
fn operators_sort_skip_limit_projection() {
    let mut db = fresh();
    for (room, temp, tags) in [
        ("R101", 21.5, r#"["a","b"]"#),
        ("R102", 19.0, r#"["b"]"#),
        ("R101", 23.0, "[]"),
        ("R103", 18.5, r#"["c"]"#),
    ] {
        db.insert_json(
            "r",
            &format!(r#"{{"room":"{room}","temp":{temp},"tags":{tags},"loc":{{"floor":1}}}}"#),
        )
        .unwrap();
    }
    assert_eq!(ids(&find(&mut db, r#"{"room":"R101"}"#, "")), [1, 3]);
    assert_eq!(
        ids(&find(&mut db, r#"{"temp":{"$gte":19,"$lt":23}}"#, "")),
        [1, 2]
    );
    assert_eq!(ids(&find(&mut db, r#"{"tags":"b"}"#, "")), [1, 2]);
    assert_eq!(
        ids(&find(
            &mut db,
            r#"{"$or":[{"room":"R103"},{"temp":{"$gt":22}}]}"#,
            ""
        )),
        [3, 4]
    );
    assert_eq!(
        ids(&find(&mut db, r#"{"room":{"$in":["R102","R103"]}}"#, "")),
        [2, 4]
    );
    assert_eq!(
        ids(&find(&mut db, r#"{"loc.floor":1,"tags.0":"a"}"#, "")),
        [1]
    );
    assert_eq!(
        ids(&find(
            &mut db,
            r#"{"_ts":{"$gte":0}}"#,
            r#"{"sort":{"temp":-1},"skip":1,"limit":2}"#
        )),
        [1, 2]
    );
    let projected = find(&mut db, r#"{}"#, r#"{"projection":{"room":1},"limit":1}"#);
    assert_eq!(projected[0], json(r#"{"_id":1,"room":"R101"}"#));
    assert_eq!(
        db.count_where("r", &json(r#"{"tags":{"$exists":true,"$ne":[]}}"#))
            .unwrap(),
        3
    );
    assert_eq!(db.distinct("r", &json("{}"), "room").unwrap().len(), 3);
    assert_eq!(
        db.pluck(
            "r",
            &json(r#"{"room":"R101"}"#),
            "temp",
            &FindOptions::default()
        )
        .unwrap(),
        vec![Value::Float(21.5), Value::Int(23)]
    );
    let first = db
        .first(
            "r",
            &json("{}"),
            &FindOptions::from_json(br#"{"sort":{"temp":1}}"#, &Limits::default()).unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        first.as_map().unwrap().get("room"),
        Some(&Value::Str("R103".into()))
    );
    assert_eq!(
        ids(&[db.last("r", &json(r#"{"room":"R101"}"#)).unwrap().unwrap()]),
        [3]
    );
    // The builder gives the same results as the JSON form.
    let mut built = Vec::new();
    db.find_with(
        "r",
        &Filter::eq("room", "R101").and(Filter::gt("temp", 22.0)),
        &FindOptions::default(),
        &mut |d| {
            built.push(d);
            Ok(true)
        },
    )
    .unwrap();
    assert_eq!(ids(&built), [3]);
}

#[test]
fn bad_filters_are_clear_errors() {
    let mut db = fresh();
    db.insert_json("r", r#"{"a":1}"#).unwrap();
    assert_eq!(
        db.find_json("r", r#"{"a":{"$bogus":1}}"#, "").map(|_| ()),
        Err(Error::BadFilter)
    );
    assert_eq!(
        db.find_json("r", r#"{"a":{"$gt":[1]}}"#, "").map(|_| ()),
        Err(Error::BadFilter)
    );
    assert_eq!(
        db.find_json("r", r#"{"$and":{"a":1}}"#, "").map(|_| ()),
        Err(Error::BadFilter)
    );
    let deep = format!("{}{{}}{}", r#"{"$and":["#.repeat(12), "]}".repeat(12));
    assert!(matches!(db.find_json("r", &deep, ""), Err(Error::TooDeep)));
    let huge = format!(
        r#"{{"a":{{"$in":[{}]}}}}"#,
        (0..500)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        db.find_json("r", &huge, "").map(|_| ()),
        Err(Error::TooLarge)
    );
    assert_eq!(
        db.find_json("r", "{not json", "").map(|_| ()),
        Err(Error::Json)
    );
    assert_eq!(
        db.find_json("r", "{}", r#"{"sort":{"a":2}}"#).map(|_| ()),
        Err(Error::BadFilter)
    );
}

#[test]
fn sorting_without_an_index_is_bounded() {
    let mut db = fresh();
    for i in 0..100 {
        db.insert_json("r", &format!(r#"{{"v":{}}}"#, (i * 37) % 101))
            .unwrap();
    }
    // A limit keeps only the best documents in RAM...
    let top = find(&mut db, "{}", r#"{"sort":{"v":-1},"limit":3}"#);
    let vs: Vec<i64> = top
        .iter()
        .map(|d| d.as_map().unwrap().get("v").unwrap().as_i64().unwrap())
        .collect();
    assert_eq!(vs, [100, 99, 98]);
    // ...without one, more than max_sort_docs is a clear error, not unbounded RAM.
    assert_eq!(
        db.find_json("r", "{}", r#"{"sort":{"v":1}}"#).map(|_| ()),
        Err(Error::TooLarge)
    );
    // With an index on the sort field the order comes from the index, unbounded.
    db.create_index(
        "r",
        "by_v",
        &IndexSpec {
            fields: &["v"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    let all = find(&mut db, "{}", r#"{"sort":{"v":1}}"#);
    assert_eq!(all.len(), 100);
    assert_eq!(
        db.explain(
            "r",
            &json("{}"),
            &FindOptions::from_json(br#"{"sort":{"v":1}}"#, &Limits::default()).unwrap()
        )
        .unwrap()
        .as_map()
        .unwrap()
        .get("sort"),
        Some(&Value::Str("index".into()))
    );
}

#[test]
fn planner_uses_indexes_and_explains() {
    let mut db = fresh();
    let mut rng = Rng(5);
    for i in 0..200 {
        db.insert("r", &sensor(&mut rng, i)).unwrap();
    }
    db.create_index(
        "r",
        "by_room_temp",
        &IndexSpec {
            fields: &["room", "temp"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    db.create_index(
        "r",
        "by_tag",
        &IndexSpec {
            fields: &["tags"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    let explain = |db: &mut Database<SimFlash>, f: &str| {
        db.explain("r", &json(f), &FindOptions::default()).unwrap()
    };
    let e = explain(&mut db, r#"{"room":"R101","temp":{"$gt":20}}"#);
    let m = e.as_map().unwrap();
    assert_eq!(m.get("access"), Some(&Value::Str("index".into())));
    assert_eq!(m.get("index"), Some(&Value::Str("by_room_temp".into())));
    assert_eq!(m.get("equality_fields"), Some(&Value::Int(1)));
    assert_eq!(m.get("range"), Some(&Value::Bool(true)));
    assert_eq!(
        explain(&mut db, r#"{"tags":"t3"}"#)
            .as_map()
            .unwrap()
            .get("index"),
        Some(&Value::Str("by_tag".into()))
    );
    assert_eq!(
        explain(&mut db, r#"{"n":{"$gt":5}}"#)
            .as_map()
            .unwrap()
            .get("access"),
        Some(&Value::Str("scan".into()))
    );
    let list = db.list_indexes("r").unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|i| i.name == "by_tag" && i.multikey));
    // Index results equal scan results.
    for f in [
        r#"{"room":"R101","temp":{"$gt":20}}"#,
        r#"{"room":"R102"}"#,
        r#"{"tags":"t3"}"#,
        r#"{"tags":{"$gte":"t1","$lt":"t3"}}"#,
    ] {
        let got = sorted_ids(&find(&mut db, f, ""));
        assert_eq!(got, reference(&mut db, &json(f)), "{f}");
    }
    db.drop_index("r", "by_tag").unwrap();
    assert_eq!(db.drop_index("r", "by_tag"), Err(Error::NotFound));
    assert_eq!(
        explain(&mut db, r#"{"tags":"t3"}"#)
            .as_map()
            .unwrap()
            .get("access"),
        Some(&Value::Str("scan".into()))
    );
}

#[test]
fn unique_indexes_refuse_duplicates_and_change_nothing() {
    let mut db = fresh();
    db.create_index(
        "r",
        "serial",
        &IndexSpec {
            fields: &["serial"],
            unique: true,
            partial: None,
        },
    )
    .unwrap();
    let a = db.insert_json("r", r#"{"serial":"A1"}"#).unwrap();
    let b = db.insert_json("r", r#"{"serial":"B2"}"#).unwrap();
    assert_eq!(
        db.insert_json("r", r#"{"serial":"A1","x":1}"#),
        Err(Error::Unique)
    );
    assert_eq!(db.count("r").unwrap(), 2);
    assert_eq!(
        db.patch("r", b, &json(r#"{"$set":{"serial":"A1"}}"#)),
        Err(Error::Unique)
    );
    assert_eq!(
        db.get("r", b)
            .unwrap()
            .unwrap()
            .as_map()
            .unwrap()
            .get("serial"),
        Some(&Value::Str("B2".into()))
    );
    // Moving a value away frees it for another document, in one transaction too.
    db.transaction(|t| {
        t.patch("r", a, &json(r#"{"$set":{"serial":"A9"}}"#))?;
        t.patch("r", b, &json(r#"{"$set":{"serial":"A1"}}"#))
    })
    .unwrap();
    assert_eq!(ids(&find(&mut db, r#"{"serial":"A1"}"#, "")), [b as i64]);
    // Documents without the field do not clash; creating a unique index over duplicates fails
    // and leaves no index.
    db.insert_json("r", r#"{"kind":"x"}"#).unwrap();
    db.insert_json("r", r#"{"kind":"x"}"#).unwrap();
    assert_eq!(
        db.create_index(
            "r",
            "kind",
            &IndexSpec {
                fields: &["kind"],
                unique: true,
                partial: None
            }
        ),
        Err(Error::Unique)
    );
    assert_eq!(db.list_indexes("r").unwrap().len(), 1);
    assert_eq!(
        db.create_index(
            "r",
            "serial",
            &IndexSpec {
                fields: &["serial"],
                unique: false,
                partial: None
            }
        ),
        Err(Error::Exists)
    );
}

#[test]
fn partial_index_membership_follows_updates() {
    let mut db = fresh();
    let partial = json(r#"{"active":true}"#);
    db.create_index(
        "r",
        "active_rooms",
        &IndexSpec {
            fields: &["room"],
            unique: false,
            partial: Some(&partial),
        },
    )
    .unwrap();
    let a = db
        .insert_json("r", r#"{"room":"R1","active":true}"#)
        .unwrap();
    let b = db
        .insert_json("r", r#"{"room":"R1","active":false}"#)
        .unwrap();
    let q = r#"{"room":"R1","active":true}"#;
    assert_eq!(
        db.explain("r", &json(q), &FindOptions::default())
            .unwrap()
            .as_map()
            .unwrap()
            .get("index"),
        Some(&Value::Str("active_rooms".into()))
    );
    assert_eq!(ids(&find(&mut db, q, "")), [a as i64]);
    // A query that does not imply the partial filter cannot use the index.
    assert_eq!(
        db.explain("r", &json(r#"{"room":"R1"}"#), &FindOptions::default())
            .unwrap()
            .as_map()
            .unwrap()
            .get("access"),
        Some(&Value::Str("scan".into()))
    );
    db.patch("r", b, &json(r#"{"$set":{"active":true}}"#))
        .unwrap();
    db.patch("r", a, &json(r#"{"$set":{"active":false}}"#))
        .unwrap();
    assert_eq!(ids(&find(&mut db, q, "")), [b as i64]);
    assert_eq!(
        sorted_ids(&find(&mut db, q, "")),
        reference(&mut db, &json(q))
    );
}

#[test]
fn update_many_and_delete_many_are_atomic() {
    let mut db = fresh();
    for i in 0..10 {
        db.insert_json(
            "r",
            &format!(r#"{{"room":"R{}","n":{i},"tags":[]}}"#, i % 2),
        )
        .unwrap();
    }
    assert_eq!(
        db.update_many(
            "r",
            &json(r#"{"room":"R0"}"#),
            &json(r#"{"$inc":{"n":100},"$push":{"tags":"x"}}"#)
        )
        .unwrap(),
        5
    );
    assert_eq!(
        db.count_where("r", &json(r#"{"n":{"$gte":100},"tags":"x"}"#))
            .unwrap(),
        5
    );
    // One failing document fails them all.
    db.insert_json("r", r#"{"room":"R0","n":"text"}"#).unwrap();
    assert_eq!(
        db.update_many("r", &json(r#"{"room":"R0"}"#), &json(r#"{"$inc":{"n":1}}"#)),
        Err(Error::InvalidPatch)
    );
    assert_eq!(
        db.count_where("r", &json(r#"{"n":{"$gte":101}}"#)).unwrap(),
        4,
        "a failed update_many changed documents"
    );
    assert_eq!(db.count_where("r", &json(r#"{"n":100}"#)).unwrap(), 1);
    assert_eq!(db.delete_many("r", &json(r#"{"room":"R1"}"#)).unwrap(), 5);
    assert_eq!(db.count("r").unwrap(), 6);
    db.update_many(
        "r",
        &json(r#"{"room":"R0"}"#),
        &json(r#"{"$pull":{"tags":"x"}}"#),
    )
    .unwrap();
    assert_eq!(db.count_where("r", &json(r#"{"tags":"x"}"#)).unwrap(), 0);
}

#[test]
fn schema_validation_names_the_field() {
    let mut db = fresh();
    db.set_schema("r", Some(&json(r#"{"type":"object","required":["room"],"properties":{"room":{"type":"string","maxLength":8},"temp":{"type":"number","minimum":-40,"maximum":85}}}"#))).unwrap();
    db.insert_json("r", r#"{"room":"R1","temp":20}"#).unwrap();
    assert_eq!(
        db.insert_json("r", r#"{"temp":20}"#),
        Err(Error::SchemaViolation)
    );
    assert_eq!(db.last_violation().unwrap().field, "room");
    assert_eq!(
        db.insert_json("r", r#"{"room":"R1","temp":99}"#),
        Err(Error::SchemaViolation)
    );
    assert_eq!(db.last_violation().unwrap().field, "temp");
    assert_eq!(
        db.patch("r", 1, &json(r#"{"$set":{"room":"much-too-long"}}"#)),
        Err(Error::SchemaViolation)
    );
    assert_eq!(db.count("r").unwrap(), 1);
    assert!(db.schema("r").unwrap().is_some());
    assert_eq!(
        db.set_schema("r", Some(&json(r#"{"typo":1}"#))),
        Err(Error::BadSchema)
    );
    db.set_schema("r", None).unwrap();
    db.insert_json("r", r#"{"temp":20}"#).unwrap();
}

#[test]
fn indexed_values_are_not_on_flash_in_plaintext() {
    let mut db = fresh();
    db.create_index(
        "r",
        "by_owner",
        &IndexSpec {
            fields: &["owner"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    for i in 0..50 {
        db.insert_json("r", &format!(r#"{{"owner":"secret-owner-{i}"}}"#))
            .unwrap();
    }
    let image = db.into_device().into_image();
    assert!(!image.windows(12).any(|w| w == b"secret-owner"));
}

/// Random collections, random indexes, random updates and deletes: every query through an
/// index returns exactly what a scan returns.
fn index_agrees_with_scan(seed: u64) {
    let mut db = Database::format(new_sim(256), &small_config(), &Key::None)
        .map_err(|e| e.0)
        .unwrap();
    let mut rng = Rng(seed);
    for i in 0..120 {
        db.insert("r", &sensor(&mut rng, i)).unwrap();
    }
    db.create_index(
        "r",
        "room_temp",
        &IndexSpec {
            fields: &["room", "temp"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    db.create_index(
        "r",
        "tags",
        &IndexSpec {
            fields: &["tags"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    db.create_index(
        "r",
        "floor",
        &IndexSpec {
            fields: &["loc.floor"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    for i in 120..220 {
        match rng.below(4) {
            0 => {
                db.insert("r", &sensor(&mut rng, i)).unwrap();
            }
            1 => {
                let id = 1 + rng.below(i);
                let _ = db.replace("r", id, &sensor(&mut rng, i));
            }
            2 => {
                let id = 1 + rng.below(i);
                let _ = db.patch(
                    "r",
                    id,
                    &json(&format!(
                        r#"{{"$set":{{"temp":{}}},"$push":{{"tags":"t{}"}}}}"#,
                        rng.below(40),
                        rng.below(5)
                    )),
                );
            }
            _ => {
                db.delete("r", 1 + rng.below(i)).unwrap();
            }
        }
    }
    let queries = [
        r#"{"room":"R101"}"#.to_string(),
        format!(
            r#"{{"room":"R10{}","temp":{{"$gte":{},"$lt":{}}}}}"#,
            1 + rng.below(4),
            rng.below(20),
            20 + rng.below(20)
        ),
        format!(r#"{{"tags":"t{}"}}"#, rng.below(5)),
        format!(
            r#"{{"tags":{{"$gt":"t{}","$lte":"t{}"}}}}"#,
            rng.below(3),
            2 + rng.below(3)
        ),
        format!(r#"{{"loc.floor":{}}}"#, rng.below(3)),
        format!(
            r#"{{"loc.floor":{{"$lt":{}}},"room":{{"$ne":"R102"}}}}"#,
            rng.below(3)
        ),
        r#"{"temp":null}"#.to_string(),
    ];
    for q in &queries {
        let got = find(&mut db, q, "");
        let mut unique = sorted_ids(&got);
        unique.dedup();
        assert_eq!(
            unique.len(),
            got.len(),
            "seed {seed}: {q}: a document came twice"
        );
        assert_eq!(
            sorted_ids(&got),
            reference(&mut db, &json(q)),
            "seed {seed}: {q}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn index_results_equal_scan_results(seed in any::<u64>()) {
        index_agrees_with_scan(seed);
    }
}
