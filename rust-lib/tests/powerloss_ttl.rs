//! Power-loss campaign for expiry, tags and database time: a workload of inserts with TTLs and
//! tags, KV puts with TTLs and tags, deletes, expiry changes, sweeps, flushes, compactions and
//! clean reboots (the uptime clock restarting at 0) is cut at every flash operation. After each
//! cut the database must open and show exactly the state before or after the interrupted step
//! (a sweep is all or nothing, its removal count included), its time must be past every time
//! issued before the cut, and a full sweep must then remove exactly the expired items the model
//! still holds (the expiry and tag indexes agree with the data).

mod common;
use cairndb::db::{Config, Database, IndexSpec, Key, TagMatch, WriteOptions};
use cairndb::flash::SimFlash;
use cairndb::value::Value;
use cairndb::Error;
use common::{json, new_sim, small_config, Rng};
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

const OPS: u64 = 120;
const BLOCKS: u32 = 96;
const POOL: [&str; 3] = ["a", "b", "c"];

fn cfg() -> Config {
    let mut c = small_config();
    // Marks cross often; sweeps of a few items fit one commit.
    c.time_step = 40;
    c.store.wal_fold_bytes = 1_400;
    c
}

fn tags(mask: u8) -> Vec<&'static str> {
    POOL.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        n: i64,
        ttl: Option<u64>,
        tags: u8,
    },
    KvPut {
        key: u8,
        val: u8,
        ttl: Option<u64>,
        tags: u8,
    },
    Delete(usize),
    KvDelete(u8),
    SetExpiry(usize, Option<u64>),
    Sweep(usize),
    Flush,
    Compact,
    Reopen,
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    n: i64,
    exp: Option<u64>,
    tags: u8,
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// Stored documents (live or expired, not yet swept).
    docs: BTreeMap<u64, Item>,
    next_id: u64,
    /// Stored KV entries (value in `n`).
    kv: BTreeMap<Vec<u8>, Item>,
    removed: u64,
    /// Uptime counter of this boot, and the database time at counter 0.
    clock: u64,
    t0: u64,
    /// Highest time the committed steps certainly issued.
    issued: Option<u64>,
}

fn kv_key(k: u8) -> Vec<u8> {
    format!("k{k}").into_bytes()
}

impl Model {
    fn now(&self) -> u64 {
        self.t0 + self.clock
    }
    fn alive(exp: Option<u64>, now: u64) -> bool {
        exp.is_none_or(|e| e > now)
    }
    fn pick(&self, i: usize) -> Option<u64> {
        let ids: Vec<u64> = self.docs.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[i % ids.len()])
    }
    /// Expired items in sweep order: expiry, documents before entries, then key.
    fn due(&self, now: u64) -> Vec<(u64, u8, Vec<u8>)> {
        let mut d: Vec<_> = self
            .docs
            .iter()
            .filter_map(|(id, it)| {
                it.exp
                    .filter(|e| *e <= now)
                    .map(|e| (e, 0, id.to_be_bytes().to_vec()))
            })
            .chain(
                self.kv
                    .iter()
                    .filter_map(|(k, it)| it.exp.filter(|e| *e <= now).map(|e| (e, 1, k.clone()))),
            )
            .collect();
        d.sort();
        d
    }

    fn gen(&self, rng: &mut Rng) -> Op {
        let ttl = |rng: &mut Rng| (rng.below(3) > 0).then(|| 5 + rng.below(80));
        match rng.below(100) {
            0..=29 => Op::Insert {
                n: rng.below(1000) as i64,
                ttl: ttl(rng),
                tags: rng.below(8) as u8,
            },
            30..=52 => Op::KvPut {
                key: rng.below(8) as u8,
                val: rng.below(256) as u8,
                ttl: ttl(rng),
                tags: rng.below(8) as u8,
            },
            53..=59 => Op::Delete(rng.below(64) as usize),
            60..=64 => Op::KvDelete(rng.below(8) as u8),
            65..=71 => Op::SetExpiry(rng.below(64) as usize, ttl(rng)),
            72..=89 => Op::Sweep(1 + rng.below(3) as usize),
            90..=93 => Op::Flush,
            94..=96 => Op::Compact,
            _ => Op::Reopen,
        }
    }

    /// Apply a step that completed (`t0` is the new boot's time for a reopen, if known).
    fn apply(&mut self, op: &Op, dt: u64, t0: Option<u64>) {
        self.clock += dt;
        let now = self.now();
        match op {
            Op::Insert { n, ttl, tags } => {
                self.next_id += 1;
                let exp = ttl.map(|l| now + l);
                self.docs.insert(
                    self.next_id,
                    Item {
                        n: *n,
                        exp,
                        tags: *tags,
                    },
                );
                self.issued = self.issued.max(Some(now));
            }
            Op::KvPut {
                key,
                val,
                ttl,
                tags,
            } => {
                let exp = ttl.map(|l| now + l);
                self.kv.insert(
                    kv_key(*key),
                    Item {
                        n: i64::from(*val),
                        exp,
                        tags: *tags,
                    },
                );
                if ttl.is_some() {
                    self.issued = self.issued.max(Some(now));
                }
            }
            Op::Delete(i) => {
                if let Some(id) = self.pick(*i) {
                    if Self::alive(self.docs[&id].exp, now) {
                        self.docs.remove(&id);
                    }
                }
            }
            Op::KvDelete(k) => {
                if self
                    .kv
                    .get(&kv_key(*k))
                    .is_some_and(|it| Self::alive(it.exp, now))
                {
                    self.kv.remove(&kv_key(*k));
                }
            }
            Op::SetExpiry(i, ttl) => {
                if let Some(id) = self.pick(*i) {
                    let it = self.docs.get_mut(&id).expect("picked");
                    if Self::alive(it.exp, now) {
                        it.exp = ttl.map(|l| now + l);
                        if ttl.is_some() {
                            self.issued = self.issued.max(Some(now));
                        }
                    }
                }
            }
            Op::Sweep(budget) => {
                for (_, kind, k) in self.due(now).into_iter().take(*budget) {
                    if kind == 0 {
                        self.docs
                            .remove(&u64::from_be_bytes(k.try_into().expect("id")));
                    } else {
                        self.kv.remove(&k);
                    }
                    self.removed += 1;
                }
            }
            Op::Flush | Op::Compact => {}
            Op::Reopen => {
                self.clock = 0;
                if let Some(t) = t0 {
                    self.t0 = t;
                    self.issued = self.issued.max(Some(t));
                }
            }
        }
    }
}

/// A failed open: the error and the device back.
type Down = (Error, SimFlash);

/// Open (after a cut or a close), with an uptime counter restarting at 0; returns the time.
fn boot(dev: SimFlash, clock: &Cell) -> Result<(Database<SimFlash>, u64), Box<Down>> {
    let mut db = Database::open(dev, &cfg(), &Key::None).map_err(Box::new)?;
    clock.set(0);
    let c = clock.clone();
    db.set_clock(Box::new(move || c.get()));
    match db.now() {
        Ok(t) => Ok((db, t)),
        Err(e) => Err(Box::new((e, db.into_device()))),
    }
}

/// Run one step; Err means the power went during it.
fn step(
    db: Database<SimFlash>,
    op: &Op,
    m: &Model,
    clock: &Cell,
) -> Result<(Database<SimFlash>, Option<u64>), Box<SimFlash>> {
    let mut db = db;
    let now = m.now();
    let fail = |db: Database<SimFlash>, e: Error| -> SimFlash {
        assert!(
            db.device().power_is_cut(),
            "{op:?} failed without a power cut: {e:?}"
        );
        db.into_device()
    };
    let r: Result<(), Error> = match op {
        Op::Insert { n, ttl, tags: t } => db
            .insert_with(
                "c",
                &json(&format!(r#"{{"n":{n}}}"#)),
                &WriteOptions {
                    ttl: *ttl,
                    tags: &tags(*t),
                },
            )
            .map(|id| assert_eq!(id, m.next_id + 1)),
        Op::KvPut {
            key,
            val,
            ttl,
            tags: t,
        } => db.kv_put_with(
            "n",
            &kv_key(*key),
            &[*val],
            &WriteOptions {
                ttl: *ttl,
                tags: &tags(*t),
            },
        ),
        Op::Delete(i) => match m.pick(*i) {
            None => Ok(()),
            Some(id) => db
                .delete("c", id)
                .map(|r| assert_eq!(r, Model::alive(m.docs[&id].exp, now))),
        },
        Op::KvDelete(k) => db.kv_delete("n", &kv_key(*k)).map(|r| {
            assert_eq!(
                r,
                m.kv.get(&kv_key(*k))
                    .is_some_and(|it| Model::alive(it.exp, now))
            )
        }),
        Op::SetExpiry(i, ttl) => match m.pick(*i) {
            None => Ok(()),
            Some(id) => match db.set_expiry("c", id, *ttl) {
                Err(Error::NotFound) if !Model::alive(m.docs[&id].exp, now) => Ok(()),
                r => r,
            },
        },
        Op::Sweep(budget) => db.sweep(*budget).map(|r| {
            let due = m.due(now).len();
            assert_eq!(r.removed, due.min(*budget) as u64, "sweep at {now}");
            assert_eq!(r.more, due > *budget);
        }),
        Op::Flush => db.flush(),
        Op::Compact => db.compact(),
        Op::Reopen => {
            let (closed, dev) = db.close();
            if let Err(e) = closed {
                assert!(dev.power_is_cut(), "close failed without a cut: {e:?}");
                return Err(Box::new(dev));
            }
            return match boot(dev, clock) {
                Ok((db, t)) => Ok((db, Some(t))),
                Err(b) => {
                    let (e, dev) = *b;
                    assert!(dev.power_is_cut(), "open failed without a cut: {e:?}");
                    Err(Box::new(dev))
                }
            };
        }
    };
    match r {
        Ok(()) => Ok((db, None)),
        Err(e) => Err(Box::new(fail(db, e))),
    }
}

/// The workload from a fresh device; with a cut armed, returns the model before the step in
/// flight, that step (and its clock advance) and the device.
fn run(cut_after: Option<u64>, seed: u64) -> (Model, Option<(Op, u64)>, SimFlash, u64) {
    let mut sim = new_sim(BLOCKS);
    sim.set_seed(seed ^ cut_after.unwrap_or(0));
    let mut db = Database::format(sim, &cfg(), &Key::None)
        .map_err(|e| e.0)
        .expect("format");
    db.create_index(
        "c",
        "by_n",
        &IndexSpec {
            fields: &["n"],
            unique: false,
            partial: None,
        },
    )
    .expect("index");
    let clock = Cell::new(0u64);
    let c = clock.clone();
    db.set_clock(Box::new(move || c.get()));
    let start = db.device().ops();
    if let Some(n) = cut_after {
        db.device_mut().cut_power_after(n);
    }
    let mut m = Model::default();
    let mut rng = Rng(seed);
    for _ in 0..OPS {
        let op = m.gen(&mut rng);
        let dt = 1 + rng.below(12);
        clock.set(m.clock + dt);
        let mut next = m.clone();
        next.clock += dt;
        match step(db, &op, &next, &clock) {
            Ok((d, t0)) => {
                db = d;
                m.apply(&op, dt, t0);
            }
            Err(dev) => {
                let used = dev.ops() - start;
                return (m, Some((op, dt)), *dev, used);
            }
        }
    }
    let used = db.device().ops() - start;
    (m, None, db.into_device(), used)
}

fn mask_of(d: &Value) -> u8 {
    let Some(a) = d
        .as_map()
        .and_then(|m| m.get("_tags"))
        .and_then(Value::as_array)
    else {
        return 0;
    };
    a.iter()
        .map(|t| {
            1 << POOL
                .iter()
                .position(|p| Some(*p) == t.as_str())
                .expect("pool tag")
        })
        .sum()
}

/// Compare what the database shows at its time `now` with the model.
fn diff(db: &mut Database<SimFlash>, m: &Model, now: u64) -> Result<(), String> {
    fn e(what: &'static str) -> impl Fn(Error) -> String {
        move |err| format!("{what}: {err:?}")
    }
    if m.issued.is_some_and(|i| now <= i) {
        return Err(format!("time {now} not past issued {:?}", m.issued));
    }
    let want: BTreeMap<u64, Item> = m
        .docs
        .iter()
        .filter(|(_, it)| Model::alive(it.exp, now))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let mut got = BTreeMap::new();
    for d in db.docs("c").map_err(e("docs"))? {
        let d = d.map_err(e("doc"))?;
        let map = d.as_map().ok_or("not a map")?;
        let id = map.get("_id").and_then(Value::as_i64).ok_or("_id")? as u64;
        let item = Item {
            n: map.get("n").and_then(Value::as_i64).ok_or("n")?,
            exp: map.get("_exp").and_then(Value::as_i64).map(|x| x as u64),
            tags: mask_of(&d),
        };
        got.insert(id, item);
    }
    if got != want {
        return Err(format!("docs differ at {now}: got {got:?} want {want:?}"));
    }
    let count = db.count("c").map_err(e("count"))?;
    if count != want.len() as u64 {
        return Err(format!("count {count} want {}", want.len()));
    }
    let via_index = db
        .count_where("c", &json(r#"{"n":{"$gte":0}}"#))
        .map_err(e("index find"))?;
    if via_index != want.len() as u64 {
        return Err(format!("index find {via_index} want {}", want.len()));
    }
    let mut want_kv = BTreeMap::new();
    for (k, it) in m.kv.iter().filter(|(_, it)| Model::alive(it.exp, now)) {
        want_kv.insert(k.clone(), it.clone());
    }
    let mut keys = Vec::new();
    db.kv_keys("n", b"", &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .map_err(e("kv_keys"))?;
    let mut got_kv = BTreeMap::new();
    for k in keys {
        let en = db
            .kv_get_entry("n", &k)
            .map_err(e("kv_get"))?
            .ok_or("listed key gone")?;
        let mask = en
            .tags
            .iter()
            .map(|t| 1u8 << POOL.iter().position(|p| p == t).expect("pool tag"))
            .sum();
        let n = i64::from(*en.value.first().ok_or("empty value")?);
        got_kv.insert(
            k,
            Item {
                n,
                exp: en.expires,
                tags: mask,
            },
        );
    }
    if got_kv != want_kv {
        return Err(format!(
            "kv differs at {now}: got {got_kv:?} want {want_kv:?}"
        ));
    }
    // Tag queries and counts over live items.
    for (i, tag) in POOL.iter().enumerate() {
        let mut ids = Vec::new();
        db.find_tagged("c", TagMatch::Any(&[tag]), &mut |d| {
            ids.push(
                d.as_map()
                    .and_then(|m| m.get("_id"))
                    .and_then(Value::as_i64)
                    .unwrap_or(-1) as u64,
            );
            Ok(true)
        })
        .map_err(e("find_tagged"))?;
        let w: Vec<u64> = want
            .iter()
            .filter(|(_, it)| it.tags & (1 << i) != 0)
            .map(|(k, _)| *k)
            .collect();
        if ids != w {
            return Err(format!("tag {tag}: {ids:?} want {w:?}"));
        }
        let mut kn = 0u64;
        db.kv_keys_tagged("n", TagMatch::All(&[tag]), &mut |_| {
            kn += 1;
            Ok(true)
        })
        .map_err(e("kv_keys_tagged"))?;
        let w = want_kv
            .values()
            .filter(|it| it.tags & (1 << i) != 0)
            .count() as u64;
        if kn != w {
            return Err(format!("kv tag {tag}: {kn} want {w}"));
        }
    }
    let removed = db.expired_removed().map_err(e("expired_removed"))?;
    if removed != m.removed {
        return Err(format!("removed {removed} want {}", m.removed));
    }
    Ok(())
}

/// Cut at every flash operation of one workload; returns (cut points, in-flight step kept,
/// cuts inside a sweep with items due, cuts inside a reboot).
fn campaign(seed: u64) -> (u64, u64, u64, u64) {
    let (full, _, sim, total) = run(None, seed);
    assert_eq!(sim.violations(), 0);
    let clock = Cell::new(0);
    let (mut db, now) = boot(sim, &clock).map_err(|e| e.0).expect("open");
    diff(&mut db, &full, now).expect("uncut run matches the model");
    assert!(full.removed > 0, "the workload swept nothing");

    let (mut tried, mut kept, mut in_sweep, mut in_reboot) = (0, 0, 0, 0);
    for n in 1..=total {
        let (before, inflight, mut sim, _) = run(Some(n), seed);
        let (op, dt) = inflight.unwrap_or_else(|| panic!("seed {seed:#x}: cut {n} never struck"));
        assert_eq!(sim.violations(), 0);
        sim.restore_power();
        let mut after = before.clone();
        after.apply(&op, dt, None);
        match op {
            Op::Sweep(_) if after.removed > before.removed => in_sweep += 1,
            Op::Reopen => in_reboot += 1,
            _ => {}
        }
        let mut dev = Some(sim);
        // Both states can look alike (say, a put whose item has expired by now): keep every
        // state that matches what the database shows, and let the physical check decide.
        let mut passing = Vec::new();
        let mut errors = Vec::new();
        for (m, name) in [(&before, "before"), (&after, "after")] {
            match boot(dev.take().expect("device"), &clock) {
                Ok((mut db, now)) => {
                    match diff(&mut db, m, now) {
                        Ok(()) => passing.push((m, name)),
                        Err(e) => errors.push(format!("{name}: {e}")),
                    }
                    dev = Some(db.into_device());
                }
                Err(b) => {
                    let (e, s) = *b;
                    errors.push(format!("{name}: open {e:?}"));
                    dev = Some(s);
                }
            }
        }
        assert!(
            !passing.is_empty(),
            "seed {seed:#x} cut {n} during {op:?}: no committed state: {errors:?}"
        );
        // The expiry and tag indexes agree with the data: a full sweep removes exactly the
        // expired items the model holds, and the database goes on working.
        let (mut db, now) = boot(dev.take().expect("device"), &clock)
            .map_err(|e| e.0)
            .expect("reopen");
        let mut swept = 0;
        loop {
            let r = db.sweep(usize::MAX).expect("sweep after recovery");
            swept += r.removed;
            if !r.more {
                break;
            }
        }
        let total = db.expired_removed().expect("count");
        let (m, name) = *passing
            .iter()
            .find(|(m, _)| m.due(now).len() as u64 == swept && m.removed + swept == total)
            .unwrap_or_else(|| {
                let names: Vec<_> = passing.iter().map(|p| p.1).collect();
                panic!(
                    "seed {seed:#x} cut {n} during {op:?}: swept {swept} (total {total}) fits no \
                     state of {names:?} (others: {errors:?})"
                )
            });
        kept += u64::from(name == "after");
        let mut tagged = 0;
        db.tag_counts("c", &mut |_, c| {
            tagged += c;
            Ok(true)
        })
        .expect("tag counts");
        let live: u64 = m
            .docs
            .values()
            .filter(|it| Model::alive(it.exp, now))
            .map(|it| u64::from(it.tags.count_ones()))
            .sum();
        assert_eq!(tagged, live, "seed {seed:#x} cut {n}: tag entries");
        db.insert_with(
            "c",
            &json(r#"{"n":1}"#),
            &WriteOptions {
                ttl: Some(5),
                tags: &["a"],
            },
        )
        .expect("write after recovery");
        tried += 1;
    }
    (tried, kept, in_sweep, in_reboot)
}

#[test]
fn every_cut_point_recovers_ttl_tags_sweeps_and_time() {
    let seeds = [0x7711_u64, 0xE5C4];
    let t0 = std::time::Instant::now();
    let results: Vec<(u64, u64, u64, u64)> = std::thread::scope(|s| {
        seeds
            .iter()
            .map(|&seed| s.spawn(move || campaign(seed)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("campaign"))
            .collect()
    });
    let tried: u64 = results.iter().map(|r| r.0).sum();
    let kept: u64 = results.iter().map(|r| r.1).sum();
    let in_sweep: u64 = results.iter().map(|r| r.2).sum();
    let in_reboot: u64 = results.iter().map(|r| r.3).sum();
    println!(
        "ttl power-loss campaign: {tried} cut points over {} workloads of {OPS} steps \
         ({in_sweep} inside sweeps that remove items, {in_reboot} inside reboots); the \
         interrupted step survived {kept} times, rolled back {}; {:.1} s",
        seeds.len(),
        tried - kept,
        t0.elapsed().as_secs_f64()
    );
    assert!(tried >= 700, "only {tried} cut points");
    assert!(
        in_sweep >= 20 && in_reboot >= 20,
        "{in_sweep} sweep, {in_reboot} reboot cuts"
    );
}
