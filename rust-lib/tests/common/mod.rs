//! A deterministic mixed workload and an in-memory model of what the database must hold,
//! shared by the power-loss campaign and the model-based tests.
#![allow(dead_code)]

use cairndb::db::{Config, Database, Key};
use cairndb::flash::{BlockDevice, Geometry, SimFlash};
use cairndb::value::{self, Map, Value};
use cairndb::Error;
use std::collections::BTreeMap;

pub const KEY_A: [u8; 32] = [0xA5; 32];
pub const KEY_B: [u8; 32] = [0x5B; 32];

pub fn geometry(blocks: u32) -> Geometry {
    Geometry {
        read_size: 16,
        prog_size: 16,
        block_size: 4096,
        block_count: blocks,
    }
}

/// A configuration that folds and merges often, so short workloads reach every code path.
pub fn small_config() -> Config {
    let mut cfg = Config::default();
    cfg.store.page_size = 256;
    cfg.store.wal_fold_bytes = 700;
    cfg.store.tier_fanout = 3;
    cfg.store.max_segments = 8;
    cfg.lfs.max_open_files = cfg.store.max_segments + 2;
    cfg.lfs.cache_size = 256;
    cfg
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Insert(&'static str, Value),
    Patch(&'static str, u64, i64),
    Replace(&'static str, u64, Value),
    Delete(&'static str, u64),
    KvPut(&'static str, Vec<u8>, Vec<u8>),
    KvDelete(&'static str, Vec<u8>),
    /// A transaction: insert into "a" and put a KV entry, atomically.
    Txn(Value, Vec<u8>, Vec<u8>),
    DropB,
    Rekey,
    Flush,
    Compact,
    /// A clean close (fold, metadata compaction, unmount) and a reopen.
    Reopen,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// (collection, id) -> (version, body)
    pub docs: BTreeMap<(&'static str, u64), (u64, Map)>,
    pub next_id: BTreeMap<&'static str, u64>,
    pub kv: BTreeMap<(&'static str, Vec<u8>), Vec<u8>>,
    /// Which key the database is under: false = KEY_A, true = KEY_B.
    pub key_b: bool,
}

pub const COLLS: [&str; 2] = ["a", "b"];
pub const NSS: [&str; 2] = ["cfg", "log"];

fn body(rng: &mut Rng, i: u64) -> Value {
    let mut m = Map::new();
    m.insert("n".into(), Value::Int(i as i64));
    m.insert("room".into(), Value::Str(format!("R{}", rng.below(20))));
    m.insert("t".into(), Value::Float(rng.below(1000) as f64 / 10.0));
    if rng.below(3) == 0 {
        m.insert(
            "tags".into(),
            Value::Array(vec![
                Value::Str("x".into()),
                Value::Int(rng.below(9) as i64),
            ]),
        );
    }
    Value::Map(m)
}

impl Model {
    pub fn key(&self) -> [u8; 32] {
        if self.key_b {
            KEY_B
        } else {
            KEY_A
        }
    }

    fn ids(&self, coll: &'static str) -> Vec<u64> {
        self.docs
            .keys()
            .filter(|(c, _)| *c == coll)
            .map(|(_, id)| *id)
            .collect()
    }

    /// The next operation, chosen from the current state (so a replay chooses the same).
    pub fn gen_op(&self, rng: &mut Rng, i: u64, with_rekey: bool) -> Op {
        let coll = COLLS[rng.below(2) as usize];
        let ns = NSS[rng.below(2) as usize];
        let ids = self.ids(coll);
        match rng.below(100) {
            0..=34 => Op::Insert(coll, body(rng, i)),
            35..=49 if !ids.is_empty() => Op::Patch(
                coll,
                ids[rng.below(ids.len() as u64) as usize],
                rng.below(7) as i64 - 3,
            ),
            50..=54 if !ids.is_empty() => Op::Replace(
                coll,
                ids[rng.below(ids.len() as u64) as usize],
                body(rng, i),
            ),
            55..=64 if !ids.is_empty() => {
                Op::Delete(coll, ids[rng.below(ids.len() as u64) as usize])
            }
            65..=79 => Op::KvPut(
                ns,
                format!("k{}", rng.below(30)).into_bytes(),
                vec![i as u8; 1 + rng.below(40) as usize],
            ),
            80..=85 => Op::KvDelete(ns, format!("k{}", rng.below(30)).into_bytes()),
            86..=92 => Op::Txn(
                body(rng, i),
                format!("t{}", rng.below(10)).into_bytes(),
                vec![7; 8],
            ),
            93 => Op::DropB,
            94 if with_rekey => Op::Rekey,
            95 => Op::Flush,
            96 => Op::Compact,
            97 => Op::Reopen,
            _ => Op::Insert(coll, body(rng, i)),
        }
    }

    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Insert(c, v) => self.insert(c, v),
            Op::Patch(c, id, by) => {
                if let Some((ver, m)) = self.docs.get_mut(&(*c, *id)) {
                    *ver += 1;
                    let n = m.get("n").and_then(|v| v.as_i64()).unwrap_or(0);
                    m.insert("n".into(), Value::Int(n + by));
                }
            }
            Op::Replace(c, id, v) => {
                if let Some((ver, m)) = self.docs.get_mut(&(*c, *id)) {
                    *ver += 1;
                    *m = v.as_map().unwrap().clone();
                }
            }
            Op::Delete(c, id) => {
                self.docs.remove(&(*c, *id));
            }
            Op::KvPut(ns, k, v) => {
                self.kv.insert((*ns, k.clone()), v.clone());
            }
            Op::KvDelete(ns, k) => {
                self.kv.remove(&(*ns, k.clone()));
            }
            Op::Txn(v, k, val) => {
                self.insert("a", v);
                self.kv.insert(("log", k.clone()), val.clone());
            }
            Op::DropB => {
                if self.next_id.contains_key("b") {
                    self.docs.retain(|(c, _), _| *c != "b");
                    self.next_id.remove("b");
                }
            }
            Op::Rekey => self.key_b = !self.key_b,
            Op::Flush | Op::Compact | Op::Reopen => {}
        }
    }

    fn insert(&mut self, c: &'static str, v: &Value) {
        let id = self.next_id.entry(c).or_insert(1);
        self.docs.insert((c, *id), (1, v.as_map().unwrap().clone()));
        *id += 1;
    }
}

/// Run one operation against the database.
pub fn run_op<D: BlockDevice>(db: &mut Database<D>, op: &Op) -> Result<(), Error> {
    let inc = |by: i64| {
        let mut inc = Map::new();
        inc.insert("n".into(), Value::Int(by));
        let mut p = Map::new();
        p.insert("$inc".into(), Value::Map(inc));
        Value::Map(p)
    };
    match op {
        Op::Insert(c, v) => db.insert(c, v).map(|_| ()),
        Op::Patch(c, id, by) => db.patch(c, *id, &inc(*by)),
        Op::Replace(c, id, v) => db.replace(c, *id, v),
        Op::Delete(c, id) => db.delete(c, *id).map(|_| ()),
        Op::KvPut(ns, k, v) => db.kv_put(ns, k, v),
        Op::KvDelete(ns, k) => db.kv_delete(ns, k).map(|_| ()),
        Op::Txn(v, k, val) => db.transaction(|t| {
            t.insert("a", v)?;
            t.kv_put("log", k, val)
        }),
        Op::DropB => match db.drop_collection("b") {
            Err(Error::NotFound) => Ok(()),
            r => r,
        },
        Op::Rekey => {
            // The model flips after the op; the database goes to the other key.
            Err(Error::InvalidArgument)
        }
        Op::Flush => db.flush(),
        Op::Compact => db.compact(),
        // Needs ownership of the database: the callers handle it.
        Op::Reopen => Err(Error::InvalidArgument),
    }
}

/// Rekey to the key the model will hold after `Op::Rekey`.
pub fn run_rekey<D: BlockDevice>(db: &mut Database<D>, to_b: bool) -> Result<(), Error> {
    let k = if to_b { KEY_B } else { KEY_A };
    db.rekey(&Key::Raw(&k))
}

/// Read everything back and describe the first difference from the model.
pub fn diff<D: BlockDevice>(db: &mut Database<D>, model: &Model) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for c in COLLS {
        let docs: Vec<Value> = db
            .docs(c)
            .map_err(|e| format!("docs({c}): {e:?}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("iter {c}: {e:?}"))?;
        let count = db.count(c).map_err(|e| format!("count: {e:?}"))?;
        if count != docs.len() as u64 {
            return Err(format!("count({c}) = {count}, iterated {}", docs.len()));
        }
        for d in docs {
            let m = d.as_map().ok_or("doc not a map")?;
            let id = m.get("_id").and_then(|v| v.as_i64()).ok_or("no _id")? as u64;
            let ver = m.get("_ver").and_then(|v| v.as_i64()).ok_or("no _ver")? as u64;
            let mut b = m.clone();
            for f in ["_id", "_ver", "_ts"] {
                b.remove(f);
            }
            seen.insert((c, id), (ver, b));
        }
    }
    let want: BTreeMap<_, _> = model.docs.iter().map(|(k, v)| (*k, v.clone())).collect();
    if seen != want {
        let missing: Vec<_> = want.keys().filter(|k| !seen.contains_key(*k)).collect();
        let extra: Vec<_> = seen.keys().filter(|k| !want.contains_key(*k)).collect();
        let changed: Vec<_> = want
            .iter()
            .filter(|(k, v)| seen.get(*k).is_some_and(|s| s != *v))
            .map(|(k, _)| k)
            .collect();
        return Err(format!(
            "docs differ: missing {missing:?} extra {extra:?} changed {changed:?}"
        ));
    }
    for ns in NSS {
        let mut keys = Vec::new();
        db.kv_keys(ns, b"", &mut |k| {
            keys.push(k.to_vec());
            Ok(true)
        })
        .map_err(|e| format!("kv_keys: {e:?}"))?;
        let want: Vec<Vec<u8>> = model
            .kv
            .keys()
            .filter(|(n, _)| *n == ns)
            .map(|(_, k)| k.clone())
            .collect();
        if keys != want {
            return Err(format!(
                "kv keys of {ns} differ: got {} want {}",
                keys.len(),
                want.len()
            ));
        }
        for k in keys {
            let v = db.kv_get(ns, &k).map_err(|e| format!("kv_get: {e:?}"))?;
            if v.as_ref() != model.kv.get(&(ns, k.clone())) {
                return Err(format!(
                    "kv value {ns}/{:?} differs",
                    String::from_utf8_lossy(&k)
                ));
            }
        }
    }
    Ok(())
}

pub fn new_sim(blocks: u32) -> SimFlash {
    SimFlash::new(geometry(blocks)).expect("geometry")
}

pub fn json(s: &str) -> Value {
    value::from_json(s.as_bytes(), 16).expect("json")
}
