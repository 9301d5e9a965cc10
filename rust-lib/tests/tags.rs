//! Tags on documents and key-value entries: the tag index follows every write, delete and
//! sweep; queries (all-of, any-of, counts) agree with a brute-force model over random
//! workloads with expiry; limits are enforced without writing anything.

mod common;
use cairndb::db::{Config, Database, Key, TagMatch, WriteOptions};
use cairndb::flash::SimFlash;
use cairndb::value::Value;
use cairndb::Error;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A settable counter the database can hold as its (Send) clock.
#[derive(Clone, Default)]
struct Cell(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Cell {
    fn new(v: u64) -> Self {
        Cell(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(v)))
    }
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn set(&self, v: u64) {
        self.0.store(v, std::sync::atomic::Ordering::SeqCst)
    }
}

fn fresh() -> Database<SimFlash> {
    Database::format(new_sim(128), &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .expect("format")
}

fn tags_of(d: &Value) -> Vec<String> {
    d.as_map()
        .and_then(|m| m.get("_tags"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn counts(db: &mut Database<SimFlash>, coll: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    db.tag_counts(coll, &mut |t, n| {
        out.push((t.to_string(), n));
        Ok(true)
    })
    .unwrap();
    out
}

fn kv_counts(db: &mut Database<SimFlash>, ns: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    db.kv_tag_counts(ns, &mut |t, n| {
        out.push((t.to_string(), n));
        Ok(true)
    })
    .unwrap();
    out
}

fn tagged(db: &mut Database<SimFlash>, coll: &str, m: TagMatch<'_>) -> Result<Vec<u64>, Error> {
    let mut out = Vec::new();
    db.find_tagged(coll, m, &mut |d| {
        out.push(d.as_map().unwrap().get("_id").unwrap().as_i64().unwrap() as u64);
        Ok(true)
    })?;
    Ok(out)
}

fn kv_tagged(
    db: &mut Database<SimFlash>,
    ns: &str,
    m: TagMatch<'_>,
) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    db.kv_keys_tagged(ns, m, &mut |k| {
        out.push(k.to_vec());
        Ok(true)
    })?;
    Ok(out)
}

fn c(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

#[test]
fn document_tags_follow_insert_replace_patch_and_delete() {
    let mut db = fresh();
    let a = db
        .insert_with(
            "d",
            &json(r#"{"n":1}"#),
            &WriteOptions {
                ttl: None,
                tags: &["red", "big"],
            },
        )
        .unwrap();
    let b = db.insert("d", &json(r#"{"n":2,"_tags":["red"]}"#)).unwrap();
    assert_eq!(tags_of(&db.get("d", a).unwrap().unwrap()), ["red", "big"]);
    assert_eq!(counts(&mut db, "d"), c(&[("big", 1), ("red", 2)]));
    db.patch(
        "d",
        a,
        &json(r#"{"$push":{"_tags":"new"},"$pull":{"_tags":"red"}}"#),
    )
    .unwrap();
    assert_eq!(
        counts(&mut db, "d"),
        c(&[("big", 1), ("new", 1), ("red", 1)])
    );
    db.patch("d", b, &json(r#"{"$set":{"_tags":["big","x:1"]}}"#))
        .unwrap();
    assert_eq!(
        counts(&mut db, "d"),
        c(&[("big", 2), ("new", 1), ("x:1", 1)])
    );
    // A replace without `_tags` drops them; with, sets them.
    db.replace("d", a, &json(r#"{"n":3}"#)).unwrap();
    assert_eq!(counts(&mut db, "d"), c(&[("big", 1), ("x:1", 1)]));
    db.replace("d", a, &json(r#"{"_tags":["x:1"]}"#)).unwrap();
    assert_eq!(
        tagged(&mut db, "d", TagMatch::All(&["x:1"])).unwrap(),
        [a, b]
    );
    assert_eq!(
        tagged(&mut db, "d", TagMatch::All(&["x:1", "big"])).unwrap(),
        [b]
    );
    assert_eq!(
        tagged(&mut db, "d", TagMatch::Any(&["big", "x:1", "big"])).unwrap(),
        [b, a]
    );
    // `_tags` queries work through find too.
    assert_eq!(db.count_where("d", &json(r#"{"_tags":"big"}"#)).unwrap(), 1);
    db.delete("d", b).unwrap();
    assert_eq!(counts(&mut db, "d"), c(&[("x:1", 1)]));
    // A dropped collection's entries vanish with it.
    db.drop_collection("d").unwrap();
    db.insert("d", &json(r#"{"_tags":["y"]}"#)).unwrap();
    assert_eq!(counts(&mut db, "d"), c(&[("y", 1)]));
    assert_eq!(
        tagged(&mut db, "none", TagMatch::All(&["y"])).unwrap(),
        Vec::<u64>::new()
    );
}

#[test]
fn kv_tags_live_in_the_envelope_and_follow_puts_and_deletes() {
    let mut db = fresh();
    let o = |tags: &'static [&'static str]| WriteOptions { ttl: None, tags };
    db.kv_put_with("n", b"k1", b"v1", &o(&["a", "b"])).unwrap();
    db.kv_put_with("n", b"k2", b"v2", &o(&["b"])).unwrap();
    db.kv_put("n", b"k3", b"v3").unwrap();
    let e = db.kv_get_entry("n", b"k1").unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.tags.clone()),
        (&b"v1"[..], vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(db.kv_get("n", b"k1").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(kv_counts(&mut db, "n"), c(&[("a", 1), ("b", 2)]));
    assert_eq!(
        kv_tagged(&mut db, "n", TagMatch::All(&["b"])).unwrap(),
        [b"k1".to_vec(), b"k2".to_vec()]
    );
    // A plain put replaces the whole entry, tags included.
    db.kv_put("n", b"k1", b"v1").unwrap();
    assert_eq!(kv_counts(&mut db, "n"), c(&[("b", 1)]));
    db.kv_put_with("n", b"k3", b"v3", &o(&["c"])).unwrap();
    db.kv_delete("n", b"k2").unwrap();
    assert_eq!(kv_counts(&mut db, "n"), c(&[("c", 1)]));
    assert_eq!(
        kv_tagged(&mut db, "n", TagMatch::Any(&["b", "c"])).unwrap(),
        [b"k3".to_vec()]
    );
    assert!(db
        .kv_get_entry("n", b"k1")
        .unwrap()
        .unwrap()
        .tags
        .is_empty());
    // Tags survive a reopen.
    let (r, dev) = db.close();
    r.unwrap();
    let mut db = Database::open(dev, &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(kv_counts(&mut db, "n"), c(&[("c", 1)]));
}

#[test]
fn limits_are_enforced_and_nothing_is_written_on_refusal() {
    let mut db = fresh();
    let nine = ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
    let long = "x".repeat(33);
    let max = "y".repeat(32);
    let bad_lists: Vec<Vec<&str>> = vec![
        nine.to_vec(),
        vec![long.as_str()],
        vec![""],
        vec!["a b"],
        vec!["caf\u{e9}"],
        vec!["a/b"],
        vec!["dup", "dup"],
    ];
    for tags in &bad_lists {
        let o = WriteOptions {
            ttl: None,
            tags: tags.as_slice(),
        };
        assert_eq!(
            db.insert_with("d", &json("{}"), &o),
            Err(Error::InvalidArgument),
            "{tags:?}"
        );
        assert_eq!(
            db.kv_put_with("n", b"k", b"v", &o),
            Err(Error::InvalidArgument),
            "{tags:?}"
        );
        let body = Value::Map(
            [(
                "_tags".to_string(),
                Value::Array(tags.iter().map(|t| Value::Str(t.to_string())).collect()),
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(db.insert("d", &body), Err(Error::InvalidArgument));
        assert_eq!(
            db.find_tagged("d", TagMatch::All(tags), &mut |_| Ok(true))
                .err(),
            if tags.len() == 2 {
                None
            } else {
                Some(Error::InvalidArgument)
            }
        );
    }
    for body in [
        r#"{"_tags":"a"}"#,
        r#"{"_tags":[1]}"#,
        r#"{"_tags":{"a":1}}"#,
    ] {
        assert_eq!(db.insert("d", &json(body)), Err(Error::InvalidArgument));
    }
    // Options and body both giving tags is ambiguous.
    assert_eq!(
        db.insert_with(
            "d",
            &json(r#"{"_tags":["a"]}"#),
            &WriteOptions {
                ttl: None,
                tags: &["b"]
            }
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(db.collections().unwrap(), Vec::<String>::new());
    assert_eq!(db.namespaces().unwrap(), Vec::<String>::new());
    // The limits themselves are allowed.
    let eight = &nine[..8];
    let mut all: Vec<&str> = eight.to_vec();
    all[0] = max.as_str();
    let id = db
        .insert_with(
            "d",
            &json("{}"),
            &WriteOptions {
                ttl: None,
                tags: &all,
            },
        )
        .unwrap();
    db.kv_put_with(
        "n",
        b"k",
        b"v",
        &WriteOptions {
            ttl: None,
            tags: &all,
        },
    )
    .unwrap();
    assert_eq!(counts(&mut db, "d").len(), 8);
    assert_eq!(kv_counts(&mut db, "n").len(), 8);
    // A patch that would pass the limit is refused whole.
    assert_eq!(
        db.patch("d", id, &json(r#"{"$push":{"_tags":"t9"}}"#)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(tags_of(&db.get("d", id).unwrap().unwrap()).len(), 8);
    // Queries: empty, too many, invalid.
    for m in [
        TagMatch::All(&[]),
        TagMatch::Any(&[]),
        TagMatch::Any(&nine),
        TagMatch::Any(&["ok", "no way"]),
    ] {
        assert_eq!(tagged(&mut db, "d", m), Err(Error::InvalidArgument));
        assert_eq!(kv_tagged(&mut db, "n", m), Err(Error::InvalidArgument));
    }
}

// ---------------------------------------------------------------------------------------------
// Model-based: random writes with tags and expiry, queries checked against brute force.

const POOL: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Option<u64>),
    SetTags(usize, u8),
    Delete(usize),
    KvPut(u8, u8, Option<u64>),
    KvDelete(u8),
    Advance(u64),
    Sweep(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ttl = prop::option::of(1u64..40);
    prop_oneof![
        4 => (0u8..16, ttl.clone()).prop_map(|(t, l)| Op::Insert(t, l)),
        2 => (0usize..64, 0u8..16).prop_map(|(i, t)| Op::SetTags(i, t)),
        1 => (0usize..64).prop_map(Op::Delete),
        3 => (0u8..6, 0u8..16, ttl).prop_map(|(k, t, l)| Op::KvPut(k, t, l)),
        1 => (0u8..6).prop_map(Op::KvDelete),
        2 => (1u64..20).prop_map(Op::Advance),
        1 => (0usize..5).prop_map(Op::Sweep),
    ]
}

fn subset(mask: u8) -> Vec<&'static str> {
    POOL.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect()
}

/// (tags, expiry) per live-or-expired item.
#[derive(Default)]
struct TagModel {
    docs: BTreeMap<u64, (Vec<&'static str>, Option<u64>)>,
    kv: BTreeMap<Vec<u8>, (Vec<&'static str>, Option<u64>)>,
}

fn live<'a, K: Clone + Ord>(
    items: &'a BTreeMap<K, (Vec<&'static str>, Option<u64>)>,
    now: u64,
) -> impl Iterator<Item = (K, &'a Vec<&'static str>)> + 'a {
    items
        .iter()
        .filter(move |(_, (_, e))| e.is_none_or(|e| e > now))
        .map(|(k, (t, _))| (k.clone(), t))
}

fn expect_all<K: Clone + Ord>(
    items: &BTreeMap<K, (Vec<&'static str>, Option<u64>)>,
    now: u64,
    q: &[&str],
) -> Vec<K> {
    live(items, now)
        .filter(|(_, t)| q.iter().all(|x| t.contains(x)))
        .map(|(k, _)| k)
        .collect()
}

/// Any-of order: tag by tag (query order, repeats dropped), key order within a tag, each
/// item at its first matching tag.
fn expect_any<K: Clone + Ord>(
    items: &BTreeMap<K, (Vec<&'static str>, Option<u64>)>,
    now: u64,
    q: &[&str],
) -> Vec<K> {
    let mut out = Vec::new();
    let mut seen_tags: Vec<&str> = Vec::new();
    for tag in q {
        if seen_tags.contains(tag) {
            continue;
        }
        for (k, t) in live(items, now) {
            if t.contains(tag) && !seen_tags.iter().any(|s| t.contains(s)) {
                out.push(k);
            }
        }
        seen_tags.push(tag);
    }
    out
}

fn expect_counts<K: Clone + Ord>(
    items: &BTreeMap<K, (Vec<&'static str>, Option<u64>)>,
    now: u64,
) -> Vec<(String, u64)> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for (_, t) in live(items, now) {
        for x in t {
            *m.entry(x.to_string()).or_default() += 1;
        }
    }
    m.into_iter().collect()
}

fn run_model(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut db = fresh();
    let clock = Cell::new(0u64);
    let c2 = clock.clone();
    db.set_clock(Box::new(move || c2.get()));
    let mut m = TagModel::default();
    let queries: Vec<Vec<&str>> = vec![
        vec!["a"],
        vec!["b", "c"],
        vec!["d", "a", "b"],
        vec!["c", "c", "a"],
        POOL.to_vec(),
    ];
    for op in ops {
        let now = clock.get();
        match op {
            Op::Insert(mask, ttl) => {
                let tags = subset(*mask);
                let id = db
                    .insert_with(
                        "d",
                        &json(r#"{"v":1}"#),
                        &WriteOptions {
                            ttl: *ttl,
                            tags: &tags,
                        },
                    )
                    .unwrap();
                m.docs.insert(id, (tags, ttl.map(|l| now + l)));
            }
            Op::SetTags(i, mask) => {
                let ids: Vec<u64> = m.docs.keys().copied().collect();
                if ids.is_empty() {
                    continue;
                }
                let id = ids[i % ids.len()];
                let tags = subset(*mask);
                let list: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
                let patch = json(&format!(r#"{{"$set":{{"_tags":[{}]}}}}"#, list.join(",")));
                let (_, exp) = m.docs[&id];
                let alive = exp.is_none_or(|e| e > now);
                match db.patch("d", id, &patch) {
                    Ok(()) => {
                        prop_assert!(alive);
                        m.docs.insert(id, (tags, exp));
                    }
                    Err(Error::NotFound) => prop_assert!(!alive),
                    Err(e) => return Err(TestCaseError::fail(format!("patch: {e:?}"))),
                }
            }
            Op::Delete(i) => {
                let ids: Vec<u64> = m.docs.keys().copied().collect();
                if ids.is_empty() {
                    continue;
                }
                let id = ids[i % ids.len()];
                let alive = m.docs[&id].1.is_none_or(|e| e > now);
                prop_assert_eq!(db.delete("d", id).unwrap(), alive);
                if alive {
                    m.docs.remove(&id);
                }
            }
            Op::KvPut(k, mask, ttl) => {
                let key = vec![b'k', b'0' + k];
                let tags = subset(*mask);
                db.kv_put_with(
                    "n",
                    &key,
                    b"v",
                    &WriteOptions {
                        ttl: *ttl,
                        tags: &tags,
                    },
                )
                .unwrap();
                m.kv.insert(key, (tags, ttl.map(|l| now + l)));
            }
            Op::KvDelete(k) => {
                let key = vec![b'k', b'0' + k];
                let alive =
                    m.kv.get(&key)
                        .is_some_and(|(_, e)| e.is_none_or(|e| e > now));
                prop_assert_eq!(db.kv_delete("n", &key).unwrap(), alive);
                if alive {
                    m.kv.remove(&key);
                }
            }
            Op::Advance(by) => clock.set(now + by),
            Op::Sweep(budget) => {
                // Oldest expiry first, documents before entries at equal expiry (key order).
                let mut due: Vec<(u64, u8, Vec<u8>)> = m
                    .docs
                    .iter()
                    .filter_map(|(id, (_, e))| {
                        e.filter(|e| *e <= now)
                            .map(|e| (e, 0, id.to_be_bytes().to_vec()))
                    })
                    .chain(m.kv.iter().filter_map(|(k, (_, e))| {
                        e.filter(|e| *e <= now).map(|e| (e, 1, k.clone()))
                    }))
                    .collect();
                due.sort();
                let r = db.sweep(*budget).unwrap();
                let n = due.len().min(*budget);
                prop_assert_eq!(r.removed, n as u64);
                prop_assert_eq!(r.more, due.len() > *budget);
                for (_, kind, k) in due.into_iter().take(n) {
                    if kind == 0 {
                        m.docs.remove(&u64::from_be_bytes(k.try_into().unwrap()));
                    } else {
                        m.kv.remove(&k);
                    }
                }
            }
        }
        // Counts follow every step (an expiry written after a later one, sweeps, ...).
        let now = clock.get();
        prop_assert_eq!(
            db.count("d").unwrap_or(0),
            live(&m.docs, now).count() as u64
        );
        prop_assert_eq!(counts(&mut db, "d"), expect_counts(&m.docs, now));
        prop_assert_eq!(kv_counts(&mut db, "n"), expect_counts(&m.kv, now));
    }
    let now = clock.get();
    prop_assert_eq!(db.now().unwrap(), now);
    for q in &queries {
        prop_assert_eq!(
            tagged(&mut db, "d", TagMatch::All(q)).unwrap(),
            expect_all(&m.docs, now, q)
        );
        prop_assert_eq!(
            tagged(&mut db, "d", TagMatch::Any(q)).unwrap(),
            expect_any(&m.docs, now, q)
        );
        prop_assert_eq!(
            kv_tagged(&mut db, "n", TagMatch::All(q)).unwrap(),
            expect_all(&m.kv, now, q)
        );
        prop_assert_eq!(
            kv_tagged(&mut db, "n", TagMatch::Any(q)).unwrap(),
            expect_any(&m.kv, now, q)
        );
    }
    prop_assert_eq!(counts(&mut db, "d"), expect_counts(&m.docs, now));
    prop_assert_eq!(kv_counts(&mut db, "n"), expect_counts(&m.kv, now));
    let live_docs = live(&m.docs, now).count() as u64;
    prop_assert_eq!(db.count("d").unwrap_or(0), live_docs);
    for (id, (tags, _)) in m
        .docs
        .iter()
        .filter(|(_, (_, e))| e.is_none_or(|e| e > now))
    {
        let d = db.get("d", *id).unwrap().unwrap();
        prop_assert_eq!(&tags_of(&d), tags);
    }
    // Everything expired is still stored; a full sweep removes exactly that.
    let expired = (m.docs.len() + m.kv.len()) as u64 - live_docs - live(&m.kv, now).count() as u64;
    // (One commit holds only so many removals: sweep until nothing more is due.)
    let mut swept = 0;
    loop {
        let r = db.sweep(usize::MAX).unwrap();
        swept += r.removed;
        if !r.more {
            break;
        }
    }
    prop_assert_eq!(swept, expired);
    prop_assert_eq!(counts(&mut db, "d"), expect_counts(&m.docs, now));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn tag_queries_match_a_brute_force_model(ops in prop::collection::vec(op(), 1..60)) {
        run_model(&ops)?;
    }
}
