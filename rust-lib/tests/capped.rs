//! Capped collections, batches and the event log, end to end on the strict simulated flash:
//! eviction by documents and by bytes against a model (ids, count, bytes and evictions exact,
//! indexes agreeing with a scan), growth by replace and patch, all-or-nothing batches, the
//! reserved names, and the bounded event log.

mod common;
use cairndb::db::{
    CollStats, CollectionOptions, Config, Database, IndexSpec, Key, Level, EVENTS, EVENT_REKEY,
    MAX_EVENT_MSG,
};
use cairndb::flash::SimFlash;
use cairndb::query::{Filter, FindOptions, Limits};
use cairndb::value::{self, Value};
use cairndb::Error;
use common::*;
use std::collections::VecDeque;

fn fresh() -> Database<SimFlash> {
    fresh_with(&Config::default())
}

fn fresh_with(cfg: &Config) -> Database<SimFlash> {
    Database::format(new_sim(128), cfg, &Key::None)
        .map_err(|e| e.0)
        .expect("format")
}

fn reopen(db: Database<SimFlash>, cfg: &Config) -> Database<SimFlash> {
    let (r, dev) = db.close();
    r.expect("close");
    Database::open(dev, cfg, &Key::None)
        .map_err(|e| e.0)
        .expect("open")
}

fn caps(max_docs: Option<u64>, max_bytes: Option<u64>) -> CollectionOptions {
    CollectionOptions {
        max_docs,
        max_bytes,
    }
}

fn id_of(d: &Value) -> u64 {
    d.as_map()
        .and_then(|m| m.get("_id"))
        .and_then(Value::as_i64)
        .expect("_id") as u64
}

fn ids(db: &mut Database<SimFlash>, coll: &str) -> Vec<u64> {
    db.docs(coll)
        .expect("docs")
        .map(|d| id_of(&d.expect("doc")))
        .collect()
}

fn doc(i: u64, pad: usize) -> Value {
    json(&format!(
        r#"{{"n":{i},"room":"R{}","tags":["t{}","x"],"pad":"{}"}}"#,
        i % 5,
        i % 3,
        "p".repeat(pad)
    ))
}

/// The stored bytes of a document with this body when first written: what an uncapped
/// collection's byte total grows by when it is inserted.
fn size_of(db: &mut Database<SimFlash>, body: &Value) -> u64 {
    let before = db.collection_stats("sizes").map(|s| s.bytes).unwrap_or(0);
    db.insert("sizes", body).expect("insert");
    db.collection_stats("sizes").expect("stats").bytes - before
}

fn indexed(db: &mut Database<SimFlash>, coll: &str) {
    for (name, fields) in [("room", &["room"][..]), ("n", &["n"]), ("tags", &["tags"])] {
        db.create_index(
            coll,
            name,
            &IndexSpec {
                fields,
                unique: false,
                partial: None,
            },
        )
        .expect("create_index");
    }
}

/// Every query below goes through its index (checked with `explain`) and returns exactly the
/// documents a scan with the filter selects; the open-ended ones traverse whole indexes, so a
/// stale entry of an evicted document would show (as an extra id or a Corrupt error).
fn indexes_agree(db: &mut Database<SimFlash>, coll: &str) {
    let all: Vec<Value> = db
        .docs(coll)
        .expect("docs")
        .collect::<Result<_, _>>()
        .expect("docs");
    let queries = [
        (r#"{"room":"R1"}"#, "room"),
        (r#"{"room":{"$gte":""}}"#, "room"),
        (r#"{"n":{"$gte":0}}"#, "n"),
        (r#"{"n":{"$lt":25}}"#, "n"),
        (r#"{"tags":"x"}"#, "tags"),
        (r#"{"tags":"t2"}"#, "tags"),
    ];
    for (q, index) in queries {
        let fv = json(q);
        let plan = db
            .explain(coll, &fv, &FindOptions::default())
            .expect("explain");
        let plan = plan.as_map().expect("plan");
        assert_eq!(plan.get("access"), Some(&Value::Str("index".into())), "{q}");
        assert_eq!(plan.get("index"), Some(&Value::Str(index.into())), "{q}");
        let filter = Filter::from_value(&fv, &Limits::default()).expect("filter");
        let want: Vec<u64> = all
            .iter()
            .filter(|d| filter.matches(d))
            .map(id_of)
            .collect();
        let mut got: Vec<u64> = db
            .find_json(coll, q, "")
            .expect("find")
            .iter()
            .map(id_of)
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "index {index} answers {q} unlike a scan");
    }
}

/// A model of a capped collection: the kept documents (id, stored size), oldest first.
#[derive(Default)]
struct Capped {
    kept: VecDeque<(u64, u64)>,
    evicted: u64,
    max_docs: Option<u64>,
    max_bytes: Option<u64>,
}

impl Capped {
    fn bytes(&self) -> u64 {
        self.kept.iter().map(|(_, s)| s).sum()
    }
    fn over(&self) -> bool {
        self.max_docs.is_some_and(|m| self.kept.len() as u64 > m)
            || self.max_bytes.is_some_and(|m| self.bytes() > m)
    }
    /// Evict the oldest documents other than `keep` while over a cap.
    fn settle(&mut self, keep: u64) {
        while self.over() {
            let pos = self
                .kept
                .iter()
                .position(|(id, _)| *id != keep)
                .expect("something to evict");
            self.kept.remove(pos);
            self.evicted += 1;
        }
    }
    fn insert(&mut self, id: u64, size: u64) {
        self.kept.push_back((id, size));
        self.settle(id);
    }
    fn resize(&mut self, id: u64, size: u64) {
        let e = self.kept.iter_mut().find(|(i, _)| *i == id).expect("kept");
        e.1 = size;
        self.settle(id);
    }
    fn stats(&self) -> CollStats {
        CollStats {
            docs: self.kept.len() as u64,
            bytes: self.bytes(),
            max_docs: self.max_docs,
            max_bytes: self.max_bytes,
            evicted: self.evicted,
        }
    }
    fn ids(&self) -> Vec<u64> {
        self.kept.iter().map(|(id, _)| *id).collect()
    }
}

fn check(db: &mut Database<SimFlash>, coll: &str, m: &Capped, ctx: &str) {
    assert_eq!(ids(db, coll), m.ids(), "{ctx}: kept ids");
    assert_eq!(
        db.collection_stats(coll).unwrap(),
        m.stats(),
        "{ctx}: stats"
    );
    assert_eq!(
        db.recount(coll).unwrap(),
        (m.kept.len() as u64, m.bytes()),
        "{ctx}: recount"
    );
    assert_eq!(db.count(coll).unwrap(), m.kept.len() as u64, "{ctx}: count");
}

#[test]
fn eviction_by_documents_keeps_the_newest_and_the_indexes_exact() {
    let mut db = fresh();
    db.create_collection_with("log", &caps(Some(10), None))
        .unwrap();
    indexed(&mut db, "log");
    let mut m = Capped {
        max_docs: Some(10),
        ..Capped::default()
    };
    for i in 1..=45u64 {
        let body = doc(i, (i % 7) as usize * 5);
        let size = size_of(&mut db, &body);
        assert_eq!(db.insert("log", &body).unwrap(), i);
        m.insert(i, size);
        if i % 5 == 0 || i == 11 {
            check(&mut db, "log", &m, &format!("after insert {i}"));
            indexes_agree(&mut db, "log");
        }
    }
    assert_eq!(m.evicted, 35);
    assert_eq!(m.ids(), (36..=45).collect::<Vec<_>>());
    // Totals, caps and the eviction count persist.
    let mut db = reopen(db, &Config::default());
    check(&mut db, "log", &m, "after reopen");
    indexes_agree(&mut db, "log");
    assert_eq!(db.collection_options("log").unwrap(), caps(Some(10), None));
    // Still capped after the reopen, also after a compaction dropped the tombstones.
    db.compact().unwrap();
    let body = doc(46, 3);
    let size = size_of(&mut db, &body);
    db.insert("log", &body).unwrap();
    m.insert(46, size);
    check(&mut db, "log", &m, "after compaction");
    indexes_agree(&mut db, "log");
}

#[test]
fn eviction_by_bytes_follows_the_model() {
    let mut db = fresh();
    let max = 400u64;
    db.create_collection_with("b", &caps(None, Some(max)))
        .unwrap();
    indexed(&mut db, "b");
    let mut m = Capped {
        max_bytes: Some(max),
        ..Capped::default()
    };
    let mut rng = Rng(7);
    for i in 1..=60u64 {
        let body = doc(i, rng.below(120) as usize);
        let size = size_of(&mut db, &body);
        assert_eq!(db.insert("b", &body).unwrap(), i);
        m.insert(i, size);
        assert!(m.bytes() <= max);
        if i % 6 == 0 {
            check(&mut db, "b", &m, &format!("after insert {i}"));
            indexes_agree(&mut db, "b");
        }
    }
    // Several documents go at once when a large one comes in.
    let big = doc(61, 250);
    let size = size_of(&mut db, &big);
    let before = m.evicted;
    db.insert("b", &big).unwrap();
    m.insert(61, size);
    assert!(m.evicted >= before + 2, "a large insert evicted only one");
    check(&mut db, "b", &m, "after the large insert");
    indexes_agree(&mut db, "b");
    // A document larger than the cap by itself is refused and changes nothing.
    let ops = db.device().ops();
    assert_eq!(db.insert("b", &doc(62, 500)), Err(Error::TooLarge));
    assert_eq!(db.device().ops(), ops);
    check(&mut db, "b", &m, "after the refused insert");
    // The refused insert took no id.
    let body = doc(62, 1);
    let size = size_of(&mut db, &body);
    assert_eq!(db.insert("b", &body).unwrap(), 62);
    m.insert(62, size);
    check(&mut db, "b", &m, "after the next insert");
}

#[test]
fn both_caps_apply_together() {
    let mut db = fresh();
    db.create_collection_with("c", &caps(Some(6), Some(300)))
        .unwrap();
    let mut m = Capped {
        max_docs: Some(6),
        max_bytes: Some(300),
        ..Capped::default()
    };
    for i in 1..=30u64 {
        // Small documents hit the document cap, large ones the byte cap.
        let body = doc(i, if (i / 10) % 2 == 0 { 0 } else { 90 });
        let size = size_of(&mut db, &body);
        db.insert("c", &body).unwrap();
        m.insert(i, size);
        check(&mut db, "c", &m, &format!("after insert {i}"));
    }
}

#[test]
fn growth_by_replace_and_patch_evicts_the_oldest_others() {
    let mut db = fresh();
    let max = 360u64;
    db.create_collection_with("g", &caps(None, Some(max)))
        .unwrap();
    indexed(&mut db, "g");
    let mut m = Capped {
        max_bytes: Some(max),
        ..Capped::default()
    };
    for i in 1..=8u64 {
        let body = doc(i, 0);
        let size = size_of(&mut db, &body);
        db.insert("g", &body).unwrap();
        m.insert(i, size);
    }
    check(&mut db, "g", &m, "filled");
    let first = m.ids()[0];
    let middle = m.ids()[m.kept.len() / 2];
    // A patch that grows a middle document evicts the oldest ones.
    let before = m.evicted;
    db.patch(
        "g",
        middle,
        &json(&format!(r#"{{"$set":{{"pad":"{}"}}}}"#, "q".repeat(90))),
    )
    .unwrap();
    let grown = db.get("g", middle).unwrap().unwrap();
    let mut body = grown.as_map().unwrap().clone();
    for f in ["_id", "_ver", "_ts"] {
        body.remove(f);
    }
    let size = size_of(&mut db, &Value::Map(body.clone()));
    m.resize(middle, size);
    assert!(m.evicted > before, "the growth evicted nothing");
    assert!(!m.ids().contains(&first), "the oldest document survived");
    check(&mut db, "g", &m, "after the patch");
    indexes_agree(&mut db, "g");
    // A replace that grows the oldest document keeps it and evicts the next ones instead.
    let oldest = m.ids()[0];
    let body = doc(oldest, 150);
    let size = size_of(&mut db, &body);
    db.replace("g", oldest, &body).unwrap();
    m.resize(oldest, size);
    assert_eq!(m.ids()[0], oldest);
    check(&mut db, "g", &m, "after growing the oldest");
    indexes_agree(&mut db, "g");
    // A shrinking replace evicts nothing and lowers the total.
    let before = m.evicted;
    let body = doc(oldest, 0);
    let size = size_of(&mut db, &body);
    db.replace("g", oldest, &body).unwrap();
    m.resize(oldest, size);
    assert_eq!(m.evicted, before);
    check(&mut db, "g", &m, "after shrinking");
    // The next inserts evict that (still oldest) document first.
    for i in 100..104u64 {
        let body = doc(i, 60);
        let size = size_of(&mut db, &body);
        let id = db.insert("g", &body).unwrap();
        m.insert(id, size);
    }
    assert!(!m.ids().contains(&oldest));
    check(&mut db, "g", &m, "after the inserts");
    indexes_agree(&mut db, "g");
    // A document grown past the cap by itself is refused; nothing changes.
    let target = m.ids()[1];
    assert_eq!(
        db.replace("g", target, &doc(target, 400)),
        Err(Error::TooLarge)
    );
    assert_eq!(
        db.patch(
            "g",
            target,
            &json(&format!(r#"{{"$set":{{"pad":"{}"}}}}"#, "z".repeat(400)))
        ),
        Err(Error::TooLarge)
    );
    check(&mut db, "g", &m, "after the refused growth");
}

#[test]
fn update_many_skips_matches_evicted_by_an_earlier_growth() {
    let mut db = fresh();
    db.create_collection_with("u", &caps(None, Some(300)))
        .unwrap();
    indexed(&mut db, "u");
    let mut m = Capped {
        max_bytes: Some(300),
        ..Capped::default()
    };
    // `n` falls as `_id` rises: the index on `n` hands the matches over newest first.
    for i in 1..=6u64 {
        let body = doc(100 - i, 0);
        let size = size_of(&mut db, &body);
        db.insert("u", &body).unwrap();
        m.insert(i, size);
    }
    assert_eq!(m.ids(), vec![1, 2, 3, 4, 5, 6]);
    // Growing the newest match first evicts the oldest ones before they are reached.
    let plan = db
        .explain("u", &json(r#"{"n":{"$lte":97}}"#), &FindOptions::default())
        .unwrap();
    assert_eq!(
        plan.as_map().unwrap().get("index"),
        Some(&Value::Str("n".into()))
    );
    let set = json(&format!(r#"{{"$set":{{"pad":"{}"}}}}"#, "v".repeat(60)));
    let n = db
        .update_many("u", &json(r#"{"n":{"$lte":97}}"#), &set)
        .unwrap();
    let mut updated = 0;
    for id in (3..=6u64).rev() {
        if m.ids().contains(&id) {
            let mut body = doc(100 - id, 0).as_map().unwrap().clone();
            body.insert("pad".into(), Value::Str("v".repeat(60)));
            let size = size_of(&mut db, &Value::Map(body));
            m.resize(id, size);
            updated += 1;
        }
    }
    assert_eq!(n, updated);
    assert!(n < 4, "no match was evicted");
    check(&mut db, "u", &m, "after update_many");
    indexes_agree(&mut db, "u");
}

#[test]
fn byte_totals_are_exact_in_uncapped_collections_too() {
    let mut db = fresh();
    let mut rng = Rng(3);
    for i in 0..60u64 {
        match rng.below(4) {
            0 | 1 => {
                db.insert("u", &doc(i, rng.below(80) as usize)).unwrap();
            }
            2 => {
                if let Some(id) = ids(&mut db, "u").first().copied() {
                    db.patch(
                        "u",
                        id,
                        &json(&format!(
                            r#"{{"$set":{{"pad":"{}"}}}}"#,
                            "w".repeat(rng.below(60) as usize)
                        )),
                    )
                    .unwrap();
                }
            }
            _ => {
                let all = ids(&mut db, "u");
                if !all.is_empty() {
                    let id = all[rng.below(all.len() as u64) as usize];
                    if rng.below(2) == 0 {
                        assert!(db.delete("u", id).unwrap());
                    } else {
                        db.replace("u", id, &doc(i, rng.below(40) as usize))
                            .unwrap();
                    }
                }
            }
        }
        let s = db.collection_stats("u").unwrap();
        assert_eq!((s.docs, s.bytes), db.recount("u").unwrap(), "step {i}");
        assert_eq!((s.max_docs, s.max_bytes, s.evicted), (None, None, 0));
    }
    // The total is the documents' stored records: a fixed header plus the encoded body.
    let mut db = fresh();
    let bodies: Vec<Value> = (0..5).map(|i| doc(i, i as usize * 11)).collect();
    let encoded: Vec<u64> = bodies
        .iter()
        .map(|b| {
            let mut out = Vec::new();
            value::encode(b, &mut out).unwrap();
            out.len() as u64
        })
        .collect();
    db.insert("k", &bodies[0]).unwrap();
    let header = db.collection_stats("k").unwrap().bytes - encoded[0];
    assert!(header > 0 && header < 8, "header of {header} bytes");
    for b in &bodies[1..] {
        db.insert("k", b).unwrap();
    }
    let want: u64 = encoded.iter().map(|e| e + header).sum();
    assert_eq!(db.collection_stats("k").unwrap().bytes, want);
}

#[test]
fn options_are_checked_and_read_back() {
    let mut db = fresh();
    assert_eq!(
        db.create_collection_with("z", &caps(Some(0), None)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        db.create_collection_with("z", &caps(None, Some(0))),
        Err(Error::InvalidArgument)
    );
    assert_eq!(db.collection_options("z"), Err(Error::NotFound));
    assert_eq!(db.collection_stats("z"), Err(Error::NotFound));
    db.create_collection_with("z", &caps(Some(3), Some(1000)))
        .unwrap();
    assert_eq!(
        db.create_collection_with("z", &caps(Some(3), None)),
        Err(Error::Exists)
    );
    assert_eq!(db.create_collection("z"), Err(Error::Exists));
    assert_eq!(
        db.collection_options("z").unwrap(),
        caps(Some(3), Some(1000))
    );
    db.create_collection("plain").unwrap();
    assert_eq!(db.collection_options("plain").unwrap(), caps(None, None));
    // Created in a transaction with its first documents: one commit, caps applied at once.
    db.transaction(|t| {
        t.create_collection_with("t", &caps(Some(2), None))?;
        for i in 0..5 {
            t.insert("t", &doc(i, 0))?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ids(&mut db, "t"), vec![4, 5]);
    let s = db.collection_stats("t").unwrap();
    assert_eq!((s.docs, s.evicted), (2, 3));
    assert_eq!((s.docs, s.bytes), db.recount("t").unwrap());
    // Dropped and created again: fresh totals.
    db.drop_collection("t").unwrap();
    db.create_collection_with("t", &caps(None, Some(500)))
        .unwrap();
    let s = db.collection_stats("t").unwrap();
    assert_eq!(
        s,
        CollStats {
            docs: 0,
            bytes: 0,
            max_docs: None,
            max_bytes: Some(500),
            evicted: 0
        }
    );
}

#[test]
fn names_starting_with_an_underscore_are_reserved() {
    let mut db = fresh();
    db.log_event(Level::Info, 7, "hello").unwrap();
    let d = json(r#"{"a":1}"#);
    assert_eq!(db.insert("_mine", &d), Err(Error::InvalidName));
    assert_eq!(db.insert(EVENTS, &d), Err(Error::InvalidName));
    assert_eq!(db.create_collection("_mine"), Err(Error::InvalidName));
    assert_eq!(
        db.create_collection_with("_mine", &caps(Some(1), None)),
        Err(Error::InvalidName)
    );
    assert_eq!(db.replace(EVENTS, 1, &d), Err(Error::InvalidName));
    assert_eq!(
        db.patch(EVENTS, 1, &json(r#"{"$set":{"a":2}}"#)),
        Err(Error::InvalidName)
    );
    assert_eq!(db.delete(EVENTS, 1), Err(Error::InvalidName));
    assert_eq!(db.delete_ids(EVENTS, &[1]), Err(Error::InvalidName));
    assert_eq!(
        db.insert_many("_mine", std::slice::from_ref(&d)),
        Err(Error::InvalidName)
    );
    assert_eq!(db.drop_collection(EVENTS), Err(Error::InvalidName));
    assert_eq!(db.set_schema(EVENTS, None), Err(Error::InvalidName));
    let spec = IndexSpec {
        fields: &["code"],
        unique: false,
        partial: None,
    };
    assert_eq!(db.create_index(EVENTS, "c", &spec), Err(Error::InvalidName));
    assert_eq!(db.kv_put("_ns", b"k", b"v"), Err(Error::InvalidName));
    assert_eq!(db.kv_delete("_ns", b"k"), Err(Error::InvalidName));
    assert_eq!(
        db.update_many(EVENTS, &json("{}"), &json(r#"{"$set":{"a":1}}"#)),
        Err(Error::InvalidName)
    );
    assert_eq!(db.delete_many(EVENTS, &json("{}")), Err(Error::InvalidName));
    // Reading the system's collection works; names with an inner underscore are the user's.
    assert_eq!(db.count(EVENTS).unwrap(), 1);
    assert_eq!(db.find_json(EVENTS, r#"{"code":7}"#, "").unwrap().len(), 1);
    db.insert("my_coll", &d).unwrap();
    db.kv_put("my_ns", b"k", b"v").unwrap();
    assert!(db.collections().unwrap().contains(&EVENTS.to_string()));
}

// ---------------------------------------------------------------------------------------------
// Batches

#[test]
fn batches_write_everything_in_one_commit() {
    let mut db = fresh();
    db.create_index(
        "m",
        "n",
        &IndexSpec {
            fields: &["n"],
            unique: true,
            partial: None,
        },
    )
    .unwrap();
    let docs: Vec<Value> = (0..6).map(|i| doc(i, 4)).collect();
    let commits = db.stats().store.commits;
    assert_eq!(db.insert_many("m", &docs).unwrap(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(db.stats().store.commits, commits + 1);
    assert_eq!(
        db.insert_many_json("m", r#"[{"n":100},{"n":101}]"#)
            .unwrap(),
        vec![7, 8]
    );
    assert_eq!(
        db.insert_many_json("m", r#"{"n":102}"#),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        db.insert_many_json("m", r#"[{"n":103},7]"#),
        Err(Error::InvalidArgument)
    );
    assert_eq!(db.insert_many("m", &[]).unwrap(), Vec::<u64>::new());
    let commits = db.stats().store.commits;
    assert_eq!(db.delete_ids("m", &[2, 4, 4, 99, 7]).unwrap(), 3);
    assert_eq!(db.stats().store.commits, commits + 1);
    assert_eq!(ids(&mut db, "m"), vec![1, 3, 5, 6, 8]);
    assert_eq!(db.delete_ids("nowhere", &[1]).unwrap(), 0);
    let s = db.collection_stats("m").unwrap();
    assert_eq!((s.docs, s.bytes), db.recount("m").unwrap());

    db.kv_put_many("cfg", &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
        .unwrap();
    assert_eq!(db.kv_get("cfg", b"a").unwrap(), Some(b"3".to_vec()));
    assert_eq!(db.kv_get("cfg", b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.kv_delete_many("cfg", &[b"a", b"zz", b"a"]).unwrap(), 1);
    assert_eq!(db.kv_get("cfg", b"a").unwrap(), None);
    assert_eq!(db.kv_get("cfg", b"b").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn a_failing_batch_writes_nothing() {
    let mut db = fresh();
    db.create_index(
        "m",
        "n",
        &IndexSpec {
            fields: &["n"],
            unique: true,
            partial: None,
        },
    )
    .unwrap();
    db.insert_many("m", &[json(r#"{"n":1}"#), json(r#"{"n":2}"#)])
        .unwrap();
    db.kv_put("cfg", b"keep", b"v").unwrap();
    let stats = db.collection_stats("m").unwrap();
    let ops = db.device().ops();
    let unchanged = |db: &mut Database<SimFlash>| {
        assert_eq!(db.device().ops(), ops, "a failed batch touched the flash");
        assert_eq!(db.collection_stats("m").unwrap(), stats);
        assert_eq!(ids(db, "m"), vec![1, 2]);
        let mut keys = Vec::new();
        db.kv_keys("cfg", b"", &mut |k| {
            keys.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
        assert_eq!(keys, vec![b"keep".to_vec()]);
    };
    // Larger than one commit.
    let many: Vec<Value> = (0..200).map(|i| doc(i + 10, 20)).collect();
    assert_eq!(db.insert_many("m", &many), Err(Error::TxnTooLarge));
    unchanged(&mut db);
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key{i}").into_bytes()).collect();
    let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &[7u8; 16][..])).collect();
    assert_eq!(db.kv_put_many("cfg", &entries), Err(Error::TxnTooLarge));
    unchanged(&mut db);
    // One bad item anywhere: a unique clash at the end, a non-document in the middle.
    assert_eq!(
        db.insert_many("m", &[json(r#"{"n":3}"#), json(r#"{"n":1}"#)]),
        Err(Error::Unique)
    );
    unchanged(&mut db);
    assert_eq!(
        db.insert_many(
            "m",
            &[json(r#"{"n":3}"#), Value::Int(4), json(r#"{"n":5}"#)]
        ),
        Err(Error::InvalidArgument)
    );
    unchanged(&mut db);
    let long = vec![b'k'; 500];
    assert_eq!(
        db.kv_put_many("cfg", &[(b"x", b"1"), (&long, b"2")]),
        Err(Error::InvalidName)
    );
    unchanged(&mut db);
    assert_eq!(
        db.kv_delete_many("cfg", &[b"keep", b""]),
        Err(Error::InvalidName)
    );
    unchanged(&mut db);
    // The ids the failed batches would have taken are still free.
    assert_eq!(db.insert("m", &json(r#"{"n":9}"#)).unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// The event log

#[test]
fn the_event_log_is_bounded_and_newest_first() {
    let cfg = Config {
        event_log_docs: 8,
        ..Config::default()
    };
    let mut db = fresh_with(&cfg);
    assert_eq!(db.events(Level::Debug, 10).unwrap(), vec![]);
    let mut t = 1000u64;
    db.set_clock(Box::new(move || {
        t += 1;
        t
    }));
    let levels = [Level::Error, Level::Warn, Level::Info, Level::Debug];
    for i in 0..20u32 {
        db.log_event(levels[i as usize % 4], 100 + i, &format!("event {i}"))
            .unwrap();
    }
    let s = db.collection_stats(EVENTS).unwrap();
    assert_eq!((s.docs, s.evicted, s.max_docs), (8, 12, Some(8)));
    let all = db.events(Level::Debug, 100).unwrap();
    let codes: Vec<u32> = all.iter().map(|e| e.code).collect();
    assert_eq!(codes, (112..120).rev().collect::<Vec<_>>());
    assert!(all
        .windows(2)
        .all(|w| w[0].id > w[1].id && w[0].ts > w[1].ts));
    assert_eq!(all[0].msg, "event 19");
    assert_eq!(all[0].level, Level::Debug);
    // Filtered by severity, limited.
    let warn: Vec<u32> = db
        .events(Level::Warn, 100)
        .unwrap()
        .iter()
        .map(|e| e.code)
        .collect();
    assert_eq!(warn, vec![117, 116, 113, 112]);
    let errors = db.events(Level::Error, 1).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].code, errors[0].level), (116, Level::Error));
    assert_eq!(db.events(Level::Debug, 3).unwrap().len(), 3);
    assert_eq!(db.events(Level::Debug, 0).unwrap(), vec![]);
    // A long message is cut; the log survives a reopen.
    db.log_event(Level::Warn, 1, &"m".repeat(500)).unwrap();
    let mut db = reopen(db, &cfg);
    let last = &db.events(Level::Debug, 1).unwrap()[0];
    assert_eq!(last.msg.len(), MAX_EVENT_MSG);
    assert_eq!(db.count(EVENTS).unwrap(), 8);
}

#[test]
fn events_commit_with_their_transaction_and_rekeys_are_logged() {
    let mut db = fresh();
    // Rolled back with its transaction.
    let r: Result<(), Error> = db.transaction(|t| {
        t.insert("data", &json(r#"{"a":1}"#))?;
        t.log_event(Level::Info, 42, "inserted")?;
        Err(Error::InvalidArgument)
    });
    assert_eq!(r, Err(Error::InvalidArgument));
    assert_eq!(db.events(Level::Debug, 10).unwrap(), vec![]);
    // Committed with it: one commit for both.
    let commits = db.stats().store.commits;
    db.transaction(|t| {
        t.insert("data", &json(r#"{"a":1}"#))?;
        t.log_event(Level::Info, 42, "inserted")
    })
    .unwrap();
    assert_eq!(db.stats().store.commits, commits + 1);
    assert_eq!(db.events(Level::Debug, 10).unwrap()[0].code, 42);
    // A rekey logs an Info event.
    db.rekey(&Key::Raw(&KEY_A)).unwrap();
    let e = &db.events(Level::Info, 10).unwrap()[0];
    assert_eq!((e.level, e.code), (Level::Info, EVENT_REKEY));
    assert!(db.events(Level::Warn, 10).unwrap().is_empty());
    // Turned off: nothing is logged.
    let cfg = Config {
        event_log_docs: 0,
        ..Config::default()
    };
    let mut db = fresh_with(&cfg);
    db.log_event(Level::Error, 1, "x").unwrap();
    db.rekey(&Key::Raw(&KEY_A)).unwrap();
    assert_eq!(db.collection_stats(EVENTS), Err(Error::NotFound));
}
