//! Power-loss campaign for multi-document transactions, on the strict simulated NOR flash.
//!
//! Each transaction touches several collections and the key-value store at once: inserts,
//! `$inc` patches, `$set`s that move a document between keys of a plain index and of a unique
//! index (a code swap between two documents through a temporary value included), deletes in
//! two collections, KV read-modify-write counters and deletes. Some transactions are rolled
//! back on purpose (the closure fails after writing) and some fail on a unique clash after
//! writing; both must leave nothing behind.
//!
//! The uncut run keeps an image of the flash before every transaction (the state a cut between
//! two transactions leaves). Each transaction is then replayed from its image with the power
//! cut at each of its flash operations in turn, until one replay finishes uncut. After every
//! cut the database must open and hold exactly the state before or after the transaction (all
//! or nothing, checked against a model), its indexes must agree with its documents (full
//! traversals of both indexes find every document once, per-value queries through the indexes
//! match a scan, a code found through the unique index leads to its document), the unique
//! index must refuse a held code, and the database must take a new transaction.

mod common;
use cairndb::db::{Config, Database, Key, Txn};
use cairndb::flash::SimFlash;
use cairndb::query::{FindOptions, Limits};
use cairndb::value::{Map, Value};
use cairndb::Error;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

const TXNS: usize = 180;
const BLOCKS: u32 = 96;
const SEED: u64 = 0x7A_11_0E_D0;
const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];
const KV_KEYS: [&[u8]; 4] = [b"c0", b"c1", b"c2", b"c3"];

fn config() -> Config {
    let mut cfg = small_config();
    // Room for transactions of several documents with their index entries; the WAL still
    // folds every few transactions and segments merge often.
    cfg.store.wal_fold_bytes = 1400;
    // Small WAL frames: most transactions span several, so a cut can fall between them.
    cfg.store.frame_max = 200;
    cfg
}

fn open(sim: SimFlash) -> Result<Database<SimFlash>, Error> {
    Database::open(sim, &config(), &Key::Raw(&KEY_A)).map_err(|e| e.0)
}

// ---------------------------------------------------------------------------------------------
// Workload and model

#[derive(Debug, Clone)]
enum Step {
    /// Insert into `acct` (unique index on `code`, plain index on `grp`).
    Ins {
        code: String,
        grp: &'static str,
        bal: i64,
    },
    /// `{"$inc":{"bal":by,"ops":1}}`.
    Inc {
        id: u64,
        by: i64,
    },
    /// `{"$set":{"grp":..}}`: moves the document in the plain index.
    Grp {
        id: u64,
        grp: &'static str,
    },
    /// `{"$set":{"code":..}}` with a fresh code: moves it in the unique index.
    Recode {
        id: u64,
        code: String,
    },
    /// Swap the codes of two documents through a temporary code (three patches).
    Swap {
        a: u64,
        b: u64,
    },
    Del {
        id: u64,
    },
    /// Insert into `log` (no index).
    Log {
        n: i64,
    },
    LogDel {
        id: u64,
    },
    /// Read-modify-write of a little-endian counter in namespace `ctr`.
    KvInc {
        key: &'static [u8],
    },
    KvDel {
        key: &'static [u8],
    },
}

#[derive(Debug, Clone)]
enum End {
    Commit,
    /// The closure fails after its writes: nothing may remain.
    Rollback,
    /// Insert a code another document holds after the writes: `Error::Unique`, nothing remains.
    Clash(String),
}

#[derive(Debug, Clone)]
struct Plan {
    steps: Vec<Step>,
    end: End,
}

#[derive(Debug, Clone, PartialEq)]
struct Model {
    acct: BTreeMap<u64, (u64, Map)>,
    acct_next: u64,
    log: BTreeMap<u64, (u64, Map)>,
    log_next: u64,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            acct: BTreeMap::new(),
            acct_next: 1,
            log: BTreeMap::new(),
            log_next: 1,
            kv: BTreeMap::new(),
        }
    }
}

fn map(fields: &[(&str, Value)]) -> Map {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn code_of(m: &Map) -> String {
    match m.get("code") {
        Some(Value::Str(c)) => c.clone(),
        other => panic!("code {other:?}"),
    }
}

fn log_body(n: i64) -> Map {
    map(&[("n", Value::Int(n)), ("pad", s("................"))])
}

fn acct_body(code: &str, grp: &str, bal: i64) -> Map {
    map(&[
        ("code", s(code)),
        ("grp", s(grp)),
        ("bal", Value::Int(bal)),
        ("ops", Value::Int(0)),
    ])
}

impl Model {
    fn set(&mut self, id: u64, f: &str, v: Value) {
        let (ver, m) = self.acct.get_mut(&id).expect("acct doc");
        *ver += 1;
        m.insert(f.into(), v);
    }

    fn apply(&mut self, step: &Step) {
        match step {
            Step::Ins { code, grp, bal } => {
                self.acct
                    .insert(self.acct_next, (1, acct_body(code, grp, *bal)));
                self.acct_next += 1;
            }
            Step::Inc { id, by } => {
                let (ver, m) = self.acct.get_mut(id).expect("acct doc");
                *ver += 1;
                for (f, d) in [("bal", *by), ("ops", 1)] {
                    let old = m.get(f).and_then(Value::as_i64).expect("int field");
                    m.insert(f.into(), Value::Int(old + d));
                }
            }
            Step::Grp { id, grp } => self.set(*id, "grp", s(grp)),
            Step::Recode { id, code } => self.set(*id, "code", s(code)),
            Step::Swap { a, b } => {
                let ca = code_of(&self.acct[a].1);
                let cb = code_of(&self.acct[b].1);
                self.set(*a, "code", s(&format!("tmp{a}")));
                self.set(*b, "code", s(&ca));
                self.set(*a, "code", s(&cb));
            }
            Step::Del { id } => {
                self.acct.remove(id).expect("acct doc");
            }
            Step::Log { n } => {
                self.log.insert(self.log_next, (1, log_body(*n)));
                self.log_next += 1;
            }
            Step::LogDel { id } => {
                self.log.remove(id).expect("log doc");
            }
            Step::KvInc { key } => {
                let n = counter(self.kv.get(*key).cloned());
                self.kv.insert(key.to_vec(), (n + 1).to_le_bytes().to_vec());
            }
            Step::KvDel { key } => {
                self.kv.remove(*key);
            }
        }
    }

    /// The state after `plan` committed (or unchanged when it must not).
    fn after(&self, plan: &Plan) -> Model {
        let mut m = self.clone();
        if matches!(plan.end, End::Commit) {
            for st in &plan.steps {
                m.apply(st);
            }
        }
        m
    }
}

fn counter(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| {
        u64::from_le_bytes(b.try_into().expect("8-byte counter"))
    })
}

fn pick(rng: &mut Rng, ids: &[u64]) -> u64 {
    ids[rng.below(ids.len() as u64) as usize]
}

/// A transaction chosen from the current state.
fn gen_plan(rng: &mut Rng, m: &Model, serial: &mut u64) -> Plan {
    let mut scratch = m.clone();
    let mut steps = Vec::new();
    let want = 2 + rng.below(4) as usize;
    let fresh = |serial: &mut u64| {
        *serial += 1;
        format!("C{:05}", *serial)
    };
    while steps.len() < want {
        let ids: Vec<u64> = scratch.acct.keys().copied().collect();
        let logs: Vec<u64> = scratch.log.keys().copied().collect();
        let grp = GROUPS[rng.below(GROUPS.len() as u64) as usize];
        let step = match rng.below(100) {
            // Keep the collection around 20 documents, the log under 20.
            0..=24 if ids.len() < 26 => Step::Ins {
                code: fresh(serial),
                grp,
                bal: rng.below(100) as i64,
            },
            25..=44 if !ids.is_empty() => Step::Inc {
                id: pick(rng, &ids),
                by: rng.below(21) as i64 - 10,
            },
            45..=54 if !ids.is_empty() => Step::Grp {
                id: pick(rng, &ids),
                grp,
            },
            55..=61 if !ids.is_empty() => Step::Recode {
                id: pick(rng, &ids),
                code: fresh(serial),
            },
            62..=66 if ids.len() >= 2 => {
                let a = pick(rng, &ids);
                let b = pick(rng, &ids);
                if a == b {
                    continue;
                }
                Step::Swap { a, b }
            }
            67..=74 if ids.len() > 14 => Step::Del {
                id: pick(rng, &ids),
            },
            75..=82 if logs.len() < 20 => Step::Log {
                n: rng.below(1000) as i64,
            },
            83..=87 if logs.len() > 8 => Step::LogDel {
                id: pick(rng, &logs),
            },
            88..=96 => Step::KvInc {
                key: KV_KEYS[rng.below(4) as usize],
            },
            97..=99 => Step::KvDel {
                key: KV_KEYS[rng.below(4) as usize],
            },
            _ => continue,
        };
        scratch.apply(&step);
        steps.push(step);
    }
    let end = match rng.below(10) {
        0 => End::Rollback,
        1 => match scratch.acct.values().next() {
            Some((_, body)) => End::Clash(code_of(body)),
            None => End::Rollback,
        },
        _ => End::Commit,
    };
    Plan { steps, end }
}

fn inc_patch(by: i64) -> Value {
    Value::Map(map(&[(
        "$inc",
        Value::Map(map(&[("bal", Value::Int(by)), ("ops", Value::Int(1))])),
    )]))
}

fn set_patch(f: &str, v: Value) -> Value {
    Value::Map(map(&[("$set", Value::Map(map(&[(f, v)])))]))
}

fn step_in(t: &mut Txn<'_, SimFlash>, st: &Step) -> Result<(), Error> {
    match st {
        Step::Ins { code, grp, bal } => {
            t.insert("acct", &Value::Map(acct_body(code, grp, *bal)))?;
        }
        Step::Inc { id, by } => t.patch("acct", *id, &inc_patch(*by))?,
        Step::Grp { id, grp } => t.patch("acct", *id, &set_patch("grp", s(grp)))?,
        Step::Recode { id, code } => t.patch("acct", *id, &set_patch("code", s(code)))?,
        Step::Swap { a, b } => {
            let code = |t: &mut Txn<'_, SimFlash>, id: u64| -> Result<String, Error> {
                let d = t.get("acct", id)?.ok_or(Error::NotFound)?;
                Ok(code_of(d.as_map().ok_or(Error::Corrupt)?))
            };
            let (ca, cb) = (code(t, *a)?, code(t, *b)?);
            t.patch("acct", *a, &set_patch("code", s(&format!("tmp{a}"))))?;
            t.patch("acct", *b, &set_patch("code", s(&ca)))?;
            t.patch("acct", *a, &set_patch("code", s(&cb)))?;
        }
        Step::Del { id } => assert!(t.delete("acct", *id)?, "acct {id} missing"),
        Step::Log { n } => {
            t.insert("log", &Value::Map(log_body(*n)))?;
        }
        Step::LogDel { id } => assert!(t.delete("log", *id)?, "log {id} missing"),
        Step::KvInc { key } => {
            let n = counter(t.kv_get("ctr", key)?);
            t.kv_put("ctr", key, &(n + 1).to_le_bytes())?;
        }
        Step::KvDel { key } => {
            t.kv_delete("ctr", key)?;
        }
    }
    Ok(())
}

/// Run `plan` as one transaction.
fn exec(db: &mut Database<SimFlash>, plan: &Plan) -> Result<(), Error> {
    db.transaction(|t| {
        for st in &plan.steps {
            step_in(t, st)?;
        }
        match &plan.end {
            End::Commit => Ok(()),
            // A failure the caller chose: `InvalidArgument` stands for it.
            End::Rollback => Err(Error::InvalidArgument),
            End::Clash(code) => t
                .insert("acct", &Value::Map(acct_body(code, "g0", 0)))
                .map(|_| ()),
        }
    })
}

fn expected(plan: &Plan) -> Result<(), Error> {
    match plan.end {
        End::Commit => Ok(()),
        End::Rollback => Err(Error::InvalidArgument),
        End::Clash(_) => Err(Error::Unique),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

fn json_of(v: &Value) -> String {
    let mut out = String::new();
    cairndb::value::to_json(v, &mut out);
    out
}

fn id_of(d: &Value) -> u64 {
    d.as_map()
        .and_then(|m| m.get("_id"))
        .and_then(Value::as_i64)
        .expect("_id") as u64
}

/// Documents of `coll` by a scan: id -> (version, body).
fn scan(db: &mut Database<SimFlash>, coll: &str) -> Result<BTreeMap<u64, (u64, Map)>, String> {
    let mut out = BTreeMap::new();
    db.for_each_doc(coll, &mut |d| {
        let mut m = d.as_map().cloned().ok_or(Error::Corrupt)?;
        let id = m
            .remove("_id")
            .and_then(|v| v.as_i64())
            .ok_or(Error::Corrupt)?;
        let ver = m
            .remove("_ver")
            .and_then(|v| v.as_i64())
            .ok_or(Error::Corrupt)?;
        m.remove("_ts");
        out.insert(id as u64, (ver as u64, m));
        Ok(true)
    })
    .map_err(|e| format!("scan {coll}: {e:?}"))?;
    Ok(out)
}

/// The logical state: both collections, their counts, the counters.
fn state(db: &mut Database<SimFlash>) -> Result<Model, String> {
    let acct = scan(db, "acct")?;
    let log = scan(db, "log")?;
    for (c, docs) in [("acct", &acct), ("log", &log)] {
        let n = db.count(c).map_err(|e| format!("count {c}: {e:?}"))?;
        if n != docs.len() as u64 {
            return Err(format!("count({c}) = {n}, scan found {}", docs.len()));
        }
    }
    let mut kv = BTreeMap::new();
    let mut keys = Vec::new();
    db.kv_keys("ctr", b"", &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .map_err(|e| format!("kv_keys: {e:?}"))?;
    for k in keys {
        let v = db
            .kv_get("ctr", &k)
            .map_err(|e| format!("kv_get: {e:?}"))?
            .ok_or("a listed key has no value")?;
        kv.insert(k, v);
    }
    Ok(Model {
        acct,
        log,
        kv,
        // Not observable directly; compared through the next insert's id instead.
        acct_next: 0,
        log_next: 0,
    })
}

fn same_data(a: &Model, b: &Model) -> bool {
    a.acct == b.acct && a.log == b.log && a.kv == b.kv
}

fn find_ids(db: &mut Database<SimFlash>, filter: &str) -> Vec<u64> {
    find_sorted(db, filter, None)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// Ids (with the value of `sort`, when given) of the matching documents, in result order.
fn find_sorted(
    db: &mut Database<SimFlash>,
    filter: &str,
    sort: Option<&str>,
) -> Vec<(u64, Option<Value>)> {
    let mut out = Vec::new();
    db.find("acct", &json(filter), &opts(sort), &mut |d| {
        let v = sort.and_then(|f| d.as_map().and_then(|m| m.get(f)).cloned());
        out.push((id_of(&d), v));
        Ok(true)
    })
    .unwrap_or_else(|e| panic!("find {filter}: {e:?}"));
    out
}

fn opts(sort: Option<&str>) -> FindOptions {
    match sort {
        Some(f) => FindOptions::from_json(
            format!(r#"{{"sort":{{"{f}":1}}}}"#).as_bytes(),
            &Limits::default(),
        )
        .expect("options"),
        None => FindOptions::default(),
    }
}

/// The filters the index checks use must be planned through the indexes (sorted ones
/// without a sort in memory).
fn assert_planned(db: &mut Database<SimFlash>) {
    for (filter, sort, index) in [
        (r#"{"code":{"$gte":""}}"#, Some("code"), "code"),
        (r#"{"code":"C00001"}"#, None, "code"),
        (r#"{"grp":{"$gte":""}}"#, Some("grp"), "grp"),
        (r#"{"grp":"g1"}"#, None, "grp"),
    ] {
        let plan = db
            .explain("acct", &json(filter), &opts(sort))
            .expect("explain");
        let plan = plan.as_map().expect("plan");
        let want_sort = if sort.is_some() { "index" } else { "none" };
        assert_eq!(
            (plan.get("access"), plan.get("index"), plan.get("sort")),
            (Some(&s("index")), Some(&s(index)), Some(&s(want_sort))),
            "{filter}: {}",
            json_of(&Value::Map(plan.clone()))
        );
    }
}

/// Indexes agree with the documents of `m` (the state the database holds). A full traversal
/// of each index in index order finds every document once, and in the order of its current
/// value (an entry left with an old value would be out of place), strictly increasing for
/// the unique index; one group (chosen by `probe`) queried through the plain index matches
/// the model; three codes found through the unique index lead to their documents; a held code
/// is refused.
fn check_indexes(db: &mut Database<SimFlash>, m: &Model, probe: u64, ctx: &str) {
    let all: Vec<u64> = m.acct.keys().copied().collect();
    for (field, filter) in [
        ("code", r#"{"code":{"$gte":""}}"#),
        ("grp", r#"{"grp":{"$gte":""}}"#),
    ] {
        let got = find_sorted(db, filter, Some(field));
        for pair in got.windows(2) {
            let (a, b) = (&pair[0].1, &pair[1].1);
            let ord =
                cairndb::value::compare(a.as_ref().expect("value"), b.as_ref().expect("value"));
            let ok = if field == "code" {
                ord.is_lt()
            } else {
                ord.is_le()
            };
            assert!(ok, "{ctx}: index {field} out of order: {a:?} then {b:?}");
        }
        let mut ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, all, "{ctx}: a traversal of index {field} disagrees");
    }
    let g = GROUPS[(probe % GROUPS.len() as u64) as usize];
    let mut ids = find_ids(db, &format!(r#"{{"grp":"{g}"}}"#));
    ids.sort_unstable();
    let want: Vec<u64> = m
        .acct
        .iter()
        .filter(|(_, (_, b))| b.get("grp") == Some(&s(g)))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ids, want, "{ctx}: group {g} through the index");
    let codes: BTreeSet<String> = m.acct.values().map(|(_, b)| code_of(b)).collect();
    assert_eq!(codes.len(), m.acct.len(), "{ctx}: codes are not unique");
    if all.is_empty() {
        return;
    }
    for i in 0..3 {
        let id = all[((probe + i * 7) % all.len() as u64) as usize];
        let code = code_of(&m.acct[&id].1);
        let ids = find_ids(db, &format!(r#"{{"code":"{code}"}}"#));
        assert_eq!(ids, vec![id], "{ctx}: code {code} through the unique index");
    }
    let held = code_of(&m.acct[&all[(probe % all.len() as u64) as usize]].1);
    assert_eq!(
        db.insert("acct", &Value::Map(acct_body(&held, "g0", 0))),
        Err(Error::Unique),
        "{ctx}: the unique index let {held} in twice"
    );
}

/// The recovered database takes a new transaction and its indexes find it.
fn accepts_writes(db: &mut Database<SimFlash>, m: &Model, ctx: &str) {
    let code = "AFTER-CUT";
    let id = db
        .transaction(|t| {
            let id = t.insert("acct", &Value::Map(acct_body(code, "g3", 1)))?;
            let n = counter(t.kv_get("ctr", b"c0")?);
            t.kv_put("ctr", b"c0", &(n + 1).to_le_bytes())?;
            Ok(id)
        })
        .unwrap_or_else(|e| panic!("{ctx}: write after recovery: {e:?}"));
    assert_eq!(
        id, m.acct_next,
        "{ctx}: the insert after recovery got id {id}"
    );
    assert_eq!(
        find_ids(db, &format!(r#"{{"code":"{code}"}}"#)),
        vec![id],
        "{ctx}"
    );
}

// ---------------------------------------------------------------------------------------------
// The campaign

struct Workload {
    plans: Vec<Plan>,
    /// Model and flash image before each transaction.
    before: Vec<(Model, SimFlash)>,
    final_model: Model,
    stats: cairndb::engine::StoreStats,
}

/// The uncut run: every transaction gives its expected result and leaves the model's state.
fn workload() -> Workload {
    let sim = new_sim(BLOCKS);
    let mut db = Database::format(sim, &config(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    db.create_collection("acct").expect("acct");
    for (name, unique) in [("code", true), ("grp", false)] {
        db.create_index(
            "acct",
            name,
            &cairndb::db::IndexSpec {
                fields: &[name],
                unique,
                partial: None,
            },
        )
        .expect("index");
    }
    assert_planned(&mut db);
    let mut rng = Rng(SEED);
    let mut m = Model::default();
    let mut serial = 0;
    let (mut plans, mut before) = (Vec::new(), Vec::new());
    for k in 0..TXNS {
        let plan = gen_plan(&mut rng, &m, &mut serial);
        before.push((m.clone(), db.device().clone()));
        let r = exec(&mut db, &plan);
        assert_eq!(r, expected(&plan), "txn {k} {plan:?}");
        m = m.after(&plan);
        let got = state(&mut db).unwrap_or_else(|e| panic!("txn {k}: {e}"));
        assert!(same_data(&got, &m), "txn {k}: the uncut run left the model");
        check_indexes(&mut db, &m, k as u64, &format!("uncut txn {k}"));
        plans.push(plan);
    }
    assert_eq!(db.device().violations(), 0);
    let ends = |f: fn(&End) -> bool| plans.iter().filter(|p| f(&p.end)).count();
    assert!(
        ends(|e| matches!(e, End::Rollback)) >= 3,
        "too few rollbacks"
    );
    assert!(ends(|e| matches!(e, End::Clash(_))) >= 3, "too few clashes");
    assert!(db.stats().store.folds >= 5, "{:?}", db.stats());
    assert!(db.stats().store.merges >= 1, "{:?}", db.stats());
    let st = db.stats().store;
    assert!(
        st.frames >= st.commits * 3 / 2,
        "few multi-frame commits: {st:?}"
    );
    Workload {
        plans,
        before,
        final_model: m,
        stats: st,
    }
}

/// Cut transaction `k` at each of its flash operations; returns (cuts, survived).
fn cut_transaction(w: &Workload, k: usize) -> (u64, u64) {
    let plan = &w.plans[k];
    let (before, image) = &w.before[k];
    let after = before.after(plan);
    let (mut cuts, mut survived) = (0, 0);
    for n in 1.. {
        let mut sim = image.clone();
        sim.set_seed(SEED ^ ((k as u64) << 20) ^ n);
        let mut db = open(sim).unwrap_or_else(|e| panic!("txn {k}: open the image: {e:?}"));
        db.device_mut().cut_power_after(n);
        let r = exec(&mut db, plan);
        if !db.device().power_is_cut() {
            // The cut never struck: every operation of the transaction has been cut once.
            assert_eq!(r, expected(plan), "txn {k}: the uncut replay");
            return (cuts, survived);
        }
        let ctx = format!("txn {k} ({:?}) cut at op {n}", plan.end);
        let mut sim = db.into_device();
        assert_eq!(sim.violations(), 0, "{ctx}");
        sim.restore_power();
        let mut db = open(sim).unwrap_or_else(|e| panic!("{ctx}: reopen: {e:?}"));
        let got = state(&mut db).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        // A transaction that changes nothing touches no flash, so `before != after` here.
        let m = if same_data(&got, &after) {
            survived += 1;
            &after
        } else if same_data(&got, before) {
            assert!(r.is_err(), "{ctx}: reported committed, but rolled back");
            before
        } else {
            panic!("{ctx}: neither the state before nor after the transaction");
        };
        check_indexes(&mut db, m, n, &ctx);
        accepts_writes(&mut db, m, &ctx);
        cuts += 1;
    }
    unreachable!()
}

#[test]
fn transactions_are_all_or_nothing_after_every_power_cut() {
    let t0 = std::time::Instant::now();
    let w = workload();
    println!("uncut run: {:?}", t0.elapsed());
    // The uncut run's last image reopens (its WAL replayed) and takes the last transaction.
    let (m, image) = &w.before[TXNS - 1];
    let mut db = open(image.clone()).expect("open");
    let last = &w.plans[TXNS - 1];
    assert_eq!(exec(&mut db, last), expected(last));
    assert_eq!(m.after(&w.plans[TXNS - 1]), w.final_model);
    let got = state(&mut db).expect("state");
    assert!(same_data(&got, &w.final_model));

    let threads = 2;
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        let w = &w;
        (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..TXNS)
                        .step_by(threads)
                        .map(|k| cut_transaction(w, k))
                        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("campaign thread"))
            .collect()
    });
    let cuts: u64 = results.iter().map(|r| r.0).sum();
    let survived: u64 = results.iter().map(|r| r.1).sum();
    let committed = w
        .plans
        .iter()
        .filter(|p| matches!(p.end, End::Commit))
        .count();
    println!(
        "transaction power-loss campaign: {TXNS} transactions ({committed} committing), \
         {cuts} cut points; the interrupted transaction survived {survived} times, was rolled \
         back {} times; uncut run: {:?}",
        cuts - survived,
        w.stats
    );
    assert!(cuts >= 1_000, "only {cuts} cut points");
    assert!(survived > 0 && survived < cuts, "{survived} of {cuts}");
}
