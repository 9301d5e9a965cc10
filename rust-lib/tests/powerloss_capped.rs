//! Power-loss campaign for capped collections, batches and the event log, on the strict
//! simulated NOR flash.
//!
//! A workload of inserts into a collection capped by documents (with two indexes), inserts and
//! growing patches in a collection capped by bytes (indexed too), insert batches, id-list
//! deletes, key-value batches, transactions that insert, put and log an event together (the
//! event log is capped as well), flushes, compactions and clean reopens is cut at every flash
//! operation. After each cut the database must hold exactly the state before or after the
//! interrupted operation: the same documents (ids, versions, bodies), key-value entries and
//! events, and the exact totals (count, stored bytes, evictions) of every capped collection, so
//! an eviction and the insert that caused it are there together or not at all. The indexes
//! must answer as a scan does, and the recovered database must take capped inserts.
//!
//! A cut run replays the workload from the image the uncut run's last clean close left before
//! the cut, so a cut point costs one phase of the workload, not all of it.

mod common;
use cairndb::db::{Config, Database, IndexSpec, Key, Level, EVENTS};
use cairndb::flash::{RamFlash, SimFlash};
use cairndb::query::{Filter, FindOptions, Limits};
use cairndb::value::{Map, Value};
use cairndb::Error;
use common::*;
use std::collections::BTreeMap;

const BLOCKS: u32 = 96;
const OPS: usize = 192;
/// Reopen (a checkpoint for the cut runs) every this many operations.
const PHASE: usize = 12;

/// The collection capped by documents, and by bytes.
const DOCS: usize = 0;
const BYTES: usize = 1;
const NAMES: [&str; 2] = ["ring", "sized"];
const MAX_DOCS: u64 = 6;
const MAX_BYTES: u64 = 320;
const EVENT_CAP: u64 = 4;
const ROOMS: u64 = 4;

fn config() -> Config {
    let mut cfg = small_config();
    // Room for a batch of a few indexed documents with their evictions in one commit.
    cfg.store.wal_fold_bytes = 1200;
    cfg.event_log_docs = EVENT_CAP;
    cfg
}

// ---------------------------------------------------------------------------------------------
// Model

/// A capped collection as it must be: documents `id -> (version, body, stored size)`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Coll {
    docs: BTreeMap<u64, (u64, Map, u64)>,
    next_id: u64,
    evicted: u64,
    max_docs: Option<u64>,
    max_bytes: Option<u64>,
}

impl Coll {
    fn new(max_docs: Option<u64>, max_bytes: Option<u64>) -> Self {
        Coll {
            next_id: 1,
            max_docs,
            max_bytes,
            ..Coll::default()
        }
    }
    fn bytes(&self) -> u64 {
        self.docs.values().map(|d| d.2).sum()
    }
    fn over(&self) -> bool {
        self.max_docs.is_some_and(|m| self.docs.len() as u64 > m)
            || self.max_bytes.is_some_and(|m| self.bytes() > m)
    }
    /// Evict the oldest documents other than `keep` while over a cap.
    fn settle(&mut self, keep: u64) {
        while self.over() {
            let id = *self
                .docs
                .keys()
                .find(|id| **id != keep)
                .expect("a document to evict");
            self.docs.remove(&id);
            self.evicted += 1;
        }
    }
    fn insert(&mut self, body: &Map, size: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.docs.insert(id, (1, body.clone(), size));
        self.settle(id);
        id
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Model {
    colls: [Coll; 2],
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Events logged so far (the log keeps the last `EVENT_CAP`).
    events: u64,
}

impl Model {
    fn new() -> Self {
        Model {
            colls: [
                Coll::new(Some(MAX_DOCS), None),
                Coll::new(None, Some(MAX_BYTES)),
            ],
            kv: BTreeMap::new(),
            events: 0,
        }
    }
}

/// The stored size of a document with a given body, measured on a scratch database (an
/// uncapped collection's byte total grows by exactly that much).
struct Sizer(Database<RamFlash>);

impl Sizer {
    fn new() -> Self {
        let dev = RamFlash::new(geometry(64)).expect("ram");
        let mut db = Database::format(dev, &Config::default(), &Key::None)
            .map_err(|e| e.0)
            .expect("format");
        fixed_clock(&mut db);
        Sizer(db)
    }
    fn size(&mut self, body: &Map) -> u64 {
        let db = &mut self.0;
        let before = db.collection_stats("s").map(|s| s.bytes).unwrap_or(0);
        let id = db.insert("s", &Value::Map(body.clone())).expect("insert");
        let after = db.collection_stats("s").expect("stats").bytes;
        db.delete("s", id).expect("delete");
        after - before
    }
}

/// A clock far from zero, so every `_ts` stamp (and so every stored length the model
/// predicts) has the same varint length whatever reopens move the time by.
fn fixed_clock<D: cairndb::flash::BlockDevice>(db: &mut Database<D>) {
    db.set_clock(Box::new(|| 1 << 40));
}

// ---------------------------------------------------------------------------------------------
// Workload

#[derive(Debug, Clone)]
enum COp {
    Insert(usize, Map),
    InsertMany(usize, Vec<Map>),
    DeleteIds(usize, Vec<u64>),
    /// `$set` the `pad` of a document of the byte-capped collection to a longer string.
    Grow(u64, String),
    KvPutMany(Vec<(Vec<u8>, Vec<u8>)>),
    KvDeleteMany(Vec<Vec<u8>>),
    /// Insert into the document-capped collection, put a key and log an event, in one commit.
    Txn(Map, Vec<u8>),
    Flush,
    Compact,
    Reopen,
}

/// A body with a `pad` of `min..min + span` characters.
fn body(rng: &mut Rng, n: u64, min: u64, span: u64) -> Map {
    let pad = (min + rng.below(span)) as usize;
    let mut m = Map::new();
    m.insert("n".into(), Value::Int(n as i64));
    m.insert("room".into(), Value::Str(format!("R{}", rng.below(ROOMS))));
    m.insert("pad".into(), Value::Str("p".repeat(pad)));
    m
}

struct Workload {
    ops: Vec<COp>,
    /// `models[i]`: the state before `ops[i]`; the last one: the final state.
    models: Vec<Model>,
}

fn apply(m: &mut Model, op: &COp, sizer: &mut Sizer) {
    match op {
        COp::Insert(c, b) => {
            let size = sizer.size(b);
            m.colls[*c].insert(b, size);
        }
        COp::InsertMany(c, bs) => {
            for b in bs {
                let size = sizer.size(b);
                m.colls[*c].insert(b, size);
            }
        }
        COp::DeleteIds(c, ids) => {
            for id in ids {
                m.colls[*c].docs.remove(id);
            }
        }
        COp::Grow(id, pad) => {
            let coll = &mut m.colls[BYTES];
            let (ver, mut b, _) = coll.docs.get(id).expect("grown document").clone();
            b.insert("pad".into(), Value::Str(pad.clone()));
            let size = sizer.size(&b);
            coll.docs.insert(*id, (ver + 1, b, size));
            coll.settle(*id);
        }
        COp::KvPutMany(es) => {
            for (k, v) in es {
                m.kv.insert(k.clone(), v.clone());
            }
        }
        COp::KvDeleteMany(ks) => {
            for k in ks {
                m.kv.remove(k);
            }
        }
        COp::Txn(b, k) => {
            let size = sizer.size(b);
            let id = m.colls[DOCS].insert(b, size);
            m.kv.insert(k.clone(), id.to_le_bytes().to_vec());
            m.events += 1;
        }
        COp::Flush | COp::Compact | COp::Reopen => {}
    }
}

fn workload() -> Workload {
    let mut rng = Rng(0x00CA_99ED);
    let mut sizer = Sizer::new();
    let mut m = Model::new();
    let mut ops = Vec::new();
    let mut models = vec![m.clone()];
    for i in 0..OPS {
        let n = i as u64;
        let op = if i % PHASE == PHASE - 1 {
            COp::Reopen
        } else {
            match (i, rng.below(100)) {
                (i, _) if i % 40 == 29 => COp::Flush,
                (i, _) if i % 40 == 17 => COp::Compact,
                (_, 0..=24) => COp::Insert(DOCS, body(&mut rng, n, 0, 30)),
                (_, 25..=39) => COp::Insert(BYTES, body(&mut rng, n, 10, 70)),
                (_, 40..=51) => {
                    let c = if rng.below(2) == 0 { DOCS } else { BYTES };
                    let k = 2 + rng.below(3);
                    COp::InsertMany(
                        c,
                        (0..k).map(|j| body(&mut rng, n * 10 + j, 5, 40)).collect(),
                    )
                }
                (_, 52..=59) => {
                    let c = if rng.below(2) == 0 { DOCS } else { BYTES };
                    let live: Vec<u64> = m.colls[c].docs.keys().copied().collect();
                    let mut ids = vec![m.colls[c].next_id + 3];
                    if !live.is_empty() {
                        ids.push(live[rng.below(live.len() as u64) as usize]);
                        ids.push(live[rng.below(live.len() as u64) as usize]);
                    }
                    COp::DeleteIds(c, ids)
                }
                (_, 60..=69) if !m.colls[BYTES].docs.is_empty() => {
                    let live: Vec<u64> = m.colls[BYTES].docs.keys().copied().collect();
                    let id = live[rng.below(live.len() as u64) as usize];
                    COp::Grow(id, "g".repeat(60 + rng.below(60) as usize))
                }
                (_, 70..=79) => COp::KvPutMany(
                    (0..1 + rng.below(4))
                        .map(|_| {
                            (
                                format!("k{}", rng.below(12)).into_bytes(),
                                vec![n as u8; 1 + rng.below(24) as usize],
                            )
                        })
                        .collect(),
                ),
                (_, 80..=85) => COp::KvDeleteMany(
                    (0..1 + rng.below(3))
                        .map(|_| format!("k{}", rng.below(12)).into_bytes())
                        .collect(),
                ),
                (_, _) => COp::Txn(
                    body(&mut rng, n, 0, 20),
                    format!("t{}", rng.below(6)).into_bytes(),
                ),
            }
        };
        apply(&mut m, &op, &mut sizer);
        ops.push(op);
        models.push(m.clone());
    }
    Workload { ops, models }
}

// ---------------------------------------------------------------------------------------------
// Running it

fn key() -> Key<'static> {
    Key::Raw(&KEY_A)
}

/// Format, create the capped collections and their indexes: the starting image.
fn setup() -> SimFlash {
    let mut db = Database::format(new_sim(BLOCKS), &config(), &key())
        .map_err(|e| e.0)
        .expect("format");
    fixed_clock(&mut db);
    let m = Model::new();
    for (name, c) in NAMES.iter().zip(&m.colls) {
        db.create_collection_with(
            name,
            &cairndb::db::CollectionOptions {
                max_docs: c.max_docs,
                max_bytes: c.max_bytes,
            },
        )
        .expect("create");
        for (index, fields) in [("room", &["room"][..]), ("n", &["n"])] {
            db.create_index(
                name,
                index,
                &IndexSpec {
                    fields,
                    unique: false,
                    partial: None,
                },
            )
            .expect("index");
        }
    }
    let (r, dev) = db.close();
    r.expect("close");
    dev
}

fn exec(db: &mut Database<SimFlash>, op: &COp, m: &Model) -> Result<(), Error> {
    match op {
        COp::Insert(c, b) => {
            let id = db.insert(NAMES[*c], &Value::Map(b.clone()))?;
            assert_eq!(id, m.colls[*c].next_id, "insert took an unexpected id");
        }
        COp::InsertMany(c, bs) => {
            let docs: Vec<Value> = bs.iter().cloned().map(Value::Map).collect();
            let ids = db.insert_many(NAMES[*c], &docs)?;
            let first = m.colls[*c].next_id;
            assert_eq!(ids, (first..first + bs.len() as u64).collect::<Vec<_>>());
        }
        COp::DeleteIds(c, ids) => {
            let n = db.delete_ids(NAMES[*c], ids)?;
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let want = distinct
                .iter()
                .filter(|id| m.colls[*c].docs.contains_key(id))
                .count();
            assert_eq!(n, want as u64, "delete_ids count");
        }
        COp::Grow(id, pad) => {
            let mut set = Map::new();
            set.insert("pad".into(), Value::Str(pad.clone()));
            let mut p = Map::new();
            p.insert("$set".into(), Value::Map(set));
            db.patch(NAMES[BYTES], *id, &Value::Map(p))?;
        }
        COp::KvPutMany(es) => {
            let es: Vec<(&[u8], &[u8])> = es.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            db.kv_put_many("cfg", &es)?;
        }
        COp::KvDeleteMany(ks) => {
            let ks: Vec<&[u8]> = ks.iter().map(|k| &k[..]).collect();
            db.kv_delete_many("cfg", &ks)?;
        }
        COp::Txn(b, k) => db.transaction(|t| {
            let id = t.insert(NAMES[DOCS], &Value::Map(b.clone()))?;
            t.kv_put("cfg", k, &id.to_le_bytes())?;
            t.log_event(Level::Info, 500, "txn")
        })?,
        COp::Flush => db.flush()?,
        COp::Compact => db.compact()?,
        COp::Reopen => unreachable!("the runner reopens"),
    }
    Ok(())
}

struct Checkpoint {
    reopen_op: usize,
    /// Workload flash operations done when it closed.
    done: u64,
    dev: SimFlash,
}

#[derive(Default)]
struct Trace {
    spans: Vec<(u64, u64)>,
    checkpoints: Vec<Checkpoint>,
}

enum End {
    Done(Box<Database<SimFlash>>),
    /// The power went during op `.0`; `.2`: that op had returned Ok.
    Cut(usize, SimFlash, bool),
}

fn play(
    w: &Workload,
    start: &SimFlash,
    from: Option<&Checkpoint>,
    cut: Option<u64>,
    mut trace: Option<&mut Trace>,
) -> End {
    let cfg = config();
    let (dev, first, done) = match from {
        None => (start.clone(), 0, 0),
        Some(cp) => (cp.dev.clone(), cp.reopen_op + 1, cp.done),
    };
    let mut dev = dev;
    let base = dev.ops() - done;
    if let Some(n) = cut {
        dev.set_seed(n);
        dev.cut_power_after(n - done);
    }
    let mut db = match Database::open(dev, &cfg, &key()) {
        Ok(mut db) => {
            fixed_clock(&mut db);
            db
        }
        Err((e, dev)) => {
            assert!(dev.power_is_cut(), "open failed without a power cut: {e:?}");
            return End::Cut(first.saturating_sub(1), dev, false);
        }
    };
    for i in first..w.ops.len() {
        let begin = db.device().ops() - base;
        let res = match &w.ops[i] {
            COp::Reopen => {
                let (closed, dev) = db.close();
                if let Err(e) = closed {
                    assert!(
                        dev.power_is_cut(),
                        "close failed without a power cut: {e:?}"
                    );
                    return End::Cut(i, dev, false);
                }
                if let Some(t) = trace.as_deref_mut() {
                    t.checkpoints.push(Checkpoint {
                        reopen_op: i,
                        done: dev.ops() - base,
                        dev: dev.clone(),
                    });
                }
                match Database::open(dev, &cfg, &key()) {
                    Ok(reopened) => {
                        db = reopened;
                        fixed_clock(&mut db);
                        Ok(())
                    }
                    Err((e, dev)) => {
                        assert!(dev.power_is_cut(), "open failed without a power cut: {e:?}");
                        return End::Cut(i, dev, false);
                    }
                }
            }
            op => exec(&mut db, op, &w.models[i]),
        };
        if let Err(e) = res {
            assert!(
                db.device().power_is_cut(),
                "op {i} {:?} failed without a power cut: {e:?}",
                w.ops[i]
            );
            return End::Cut(i, db.into_device(), false);
        }
        if db.device().power_is_cut() {
            return End::Cut(i, db.into_device(), true);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.spans.push((begin, db.device().ops() - base));
        }
    }
    End::Done(Box::new(db))
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What the database holds, in the model's terms (sizes from the collection totals).
#[derive(Debug, PartialEq)]
struct Seen {
    docs: [BTreeMap<u64, (u64, Map)>; 2],
    /// (count, bytes, evicted) from the collection's metadata.
    totals: [(u64, u64, u64); 2],
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    /// (events kept, events evicted).
    events: (u64, u64),
}

fn read_state(db: &mut Database<SimFlash>) -> Seen {
    let mut docs: [BTreeMap<u64, (u64, Map)>; 2] = Default::default();
    let mut totals = [(0, 0, 0); 2];
    for c in [DOCS, BYTES] {
        db.for_each_doc(NAMES[c], &mut |d| {
            let mut m = d.as_map().expect("map").clone();
            let id = m.get("_id").and_then(Value::as_i64).expect("_id") as u64;
            let ver = m.get("_ver").and_then(Value::as_i64).expect("_ver") as u64;
            for f in ["_id", "_ver", "_ts"] {
                m.remove(f);
            }
            assert!(
                docs[c].insert(id, (ver, m)).is_none(),
                "document {id} twice"
            );
            Ok(true)
        })
        .expect("documents");
        let s = db.collection_stats(NAMES[c]).expect("stats");
        // The totals in the metadata are those of the documents actually there.
        assert_eq!(
            db.recount(NAMES[c]).expect("recount"),
            (s.docs, s.bytes),
            "{}: totals disagree with the documents",
            NAMES[c]
        );
        totals[c] = (s.docs, s.bytes, s.evicted);
    }
    let mut kv = BTreeMap::new();
    let mut keys = Vec::new();
    db.kv_keys("cfg", b"", &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .expect("kv keys");
    for k in keys {
        let v = db.kv_get("cfg", &k).expect("kv_get").expect("listed key");
        kv.insert(k, v);
    }
    let events = match db.collection_stats(EVENTS) {
        Ok(s) => {
            assert_eq!(
                db.events(Level::Debug, 100).expect("events").len() as u64,
                s.docs
            );
            (s.docs, s.evicted)
        }
        Err(Error::NotFound) => (0, 0),
        Err(e) => panic!("event log: {e:?}"),
    };
    Seen {
        docs,
        totals,
        kv,
        events,
    }
}

fn expected(m: &Model) -> Seen {
    let docs = [DOCS, BYTES].map(|c| {
        m.colls[c]
            .docs
            .iter()
            .map(|(id, (v, b, _))| (*id, (*v, b.clone())))
            .collect()
    });
    let totals = [DOCS, BYTES].map(|c| {
        let k = &m.colls[c];
        (k.docs.len() as u64, k.bytes(), k.evicted)
    });
    Seen {
        docs,
        totals,
        kv: m.kv.clone(),
        events: (m.events.min(EVENT_CAP), m.events.saturating_sub(EVENT_CAP)),
    }
}

/// Each index answers as a scan does (whole-index traversals included), for both collections.
fn indexes_agree(db: &mut Database<SimFlash>, ctx: &str) {
    for name in NAMES {
        let all: Vec<Value> = db
            .docs(name)
            .expect("docs")
            .collect::<Result<_, _>>()
            .expect("docs");
        let mut queries = vec![
            (r#"{"room":{"$gte":""}}"#.to_string(), "room"),
            (r#"{"n":{"$gte":0}}"#.to_string(), "n"),
        ];
        for r in 0..ROOMS {
            queries.push((format!(r#"{{"room":"R{r}"}}"#), "room"));
        }
        for (q, index) in queries {
            let fv = json(&q);
            let plan = db
                .explain(name, &fv, &FindOptions::default())
                .expect("explain");
            assert_eq!(
                plan.as_map().and_then(|p| p.get("index")),
                Some(&Value::Str(index.into())),
                "{ctx}: {q} on {name} does not use its index"
            );
            let filter = Filter::from_value(&fv, &Limits::default()).expect("filter");
            let want: Vec<i64> = all
                .iter()
                .filter(|d| filter.matches(d))
                .map(|d| {
                    d.as_map()
                        .and_then(|m| m.get("_id"))
                        .and_then(Value::as_i64)
                        .expect("_id")
                })
                .collect();
            let mut got: Vec<i64> = db
                .find_json(name, &q, "")
                .unwrap_or_else(|e| panic!("{ctx}: {q} on {name}: {e:?}"))
                .iter()
                .map(|d| {
                    d.as_map()
                        .and_then(|m| m.get("_id"))
                        .and_then(Value::as_i64)
                        .expect("_id")
                })
                .collect();
            got.sort_unstable();
            assert_eq!(got, want, "{ctx}: {q} on {name}: index and scan differ");
        }
    }
}

/// The recovered database takes capped inserts and evicts as the model says.
fn accepts_writes(db: &mut Database<SimFlash>, m: &Model, ctx: &str) {
    let mut m = m.clone();
    let mut sizer = Sizer::new();
    let mut rng = Rng(1);
    for k in 0..3 {
        let b = body(&mut rng, 1000 + k, 20, 1);
        let id = db
            .insert(NAMES[DOCS], &Value::Map(b.clone()))
            .unwrap_or_else(|e| panic!("{ctx}: insert after recovery: {e:?}"));
        let size = sizer.size(&b);
        assert_eq!(
            id,
            m.colls[DOCS].insert(&b, size),
            "{ctx}: id after recovery"
        );
    }
    let seen = read_state(db);
    let want = expected(&m);
    assert_eq!(
        seen.docs[DOCS], want.docs[DOCS],
        "{ctx}: documents after recovery"
    );
    assert_eq!(
        seen.totals[DOCS], want.totals[DOCS],
        "{ctx}: totals after recovery"
    );
    indexes_agree(db, ctx);
}

fn one_cut(w: &Workload, start: &SimFlash, trace: &Trace, n: u64) -> bool {
    let i = trace
        .spans
        .iter()
        .position(|(a, b)| *a < n && n <= *b)
        .expect("cut inside the workload");
    let cp = trace.checkpoints.iter().rev().find(|c| c.done < n);
    let (j, mut dev, acked) = match play(w, start, cp, Some(n), None) {
        End::Cut(j, dev, acked) => (j, dev, acked),
        End::Done(_) => panic!("cut {n} never struck"),
    };
    assert_eq!(
        j, i,
        "cut {n} struck op {j}, the uncut run had it in op {i}"
    );
    assert_eq!(dev.violations(), 0, "the flash contract was broken");
    dev.restore_power();
    let op = &w.ops[i];
    let ctx = format!("cut {n} during op {i} {op:?}");
    let mut db = Database::open(dev, &config(), &key())
        .map_err(|e| e.0)
        .unwrap_or_else(|e| panic!("{ctx}: open failed: {e:?}"));
    fixed_clock(&mut db);
    let seen = read_state(&mut db);
    let (before, after) = (&w.models[i], &w.models[i + 1]);
    let (m, survived) = if !acked && seen == expected(before) {
        (before, false)
    } else if seen == expected(after) {
        (after, before != after)
    } else {
        panic!(
            "{ctx} (returned Ok: {acked}): neither the state before nor after it:\n\
             seen   {seen:?}\nbefore {:?}\nafter  {:?}",
            expected(before),
            expected(after)
        );
    };
    indexes_agree(&mut db, &ctx);
    accepts_writes(&mut db, m, &ctx);
    survived
}

#[test]
fn capped_writes_and_batches_are_atomic_at_every_power_cut() {
    let t0 = std::time::Instant::now();
    let w = workload();
    // The workload reaches what it is meant to test.
    let fin = w.models.last().expect("final");
    assert!(
        fin.colls[DOCS].evicted >= 20,
        "{:?}",
        fin.colls[DOCS].evicted
    );
    assert!(
        fin.colls[BYTES].evicted >= 10,
        "{:?}",
        fin.colls[BYTES].evicted
    );
    assert!(fin.events > EVENT_CAP);
    let count = |f: fn(&COp) -> bool| w.ops.iter().filter(|o| f(o)).count();
    assert!(count(|o| matches!(o, COp::InsertMany(..))) >= 5);
    assert!(count(|o| matches!(o, COp::Grow(..))) >= 3);
    assert!(count(|o| matches!(o, COp::DeleteIds(..))) >= 3);
    // A growing patch that evicted something.
    let grew_and_evicted = w.ops.iter().enumerate().any(|(i, o)| {
        matches!(o, COp::Grow(..))
            && w.models[i + 1].colls[BYTES].evicted > w.models[i].colls[BYTES].evicted
    });
    assert!(grew_and_evicted, "no growth evicted anything");

    let start = setup();
    let mut trace = Trace::default();
    let mut db = match play(&w, &start, None, None, Some(&mut trace)) {
        End::Done(db) => db,
        End::Cut(i, ..) => panic!("the uncut run lost power at op {i}"),
    };
    assert_eq!(db.device().violations(), 0);
    assert_eq!(
        read_state(&mut db),
        expected(fin),
        "the uncut run differs from the model"
    );
    indexes_agree(&mut db, "uncut run");

    let total = trace.spans.last().expect("spans").1;
    // Replaying from a checkpoint leaves the same device as a replay from the start.
    for n in [total / 2, total - 1] {
        let cp = trace.checkpoints.iter().rev().find(|c| c.done < n);
        assert!(cp.is_some());
        let images: Vec<Vec<u8>> = [cp, None]
            .into_iter()
            .map(|from| match play(&w, &start, from, Some(n), None) {
                End::Cut(_, dev, _) => dev.into_image(),
                End::Done(_) => panic!("cut {n} never struck"),
            })
            .collect();
        assert!(
            images[0] == images[1],
            "cut {n}: checkpoint and start replays differ"
        );
    }
    let cuts: Vec<u64> = (1..=total).collect();
    let (w, start, trace, cuts) = (&w, &start, &trace, &cuts);
    let survived: usize = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                sc.spawn(move || {
                    cuts.iter()
                        .skip(t)
                        .step_by(2)
                        .filter(|n| one_cut(w, start, trace, **n))
                        .count()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().expect("cut worker"))
            .sum()
    });
    println!(
        "capped power-loss campaign: {} ops, every one of {total} flash operations cut; the \
         interrupted operation survived {survived} times; {:.1} s",
        w.ops.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(total >= 300, "only {total} cut points");
}
