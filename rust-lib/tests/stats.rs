//! Statistics against known workloads: operation counts and latencies (with a scripted clock),
//! space, wear as the simulated flash counted it, collection totals, and the full report.

mod common;
use cairndb::db::{Config, Database, Key, OpStat, OpStats};
use cairndb::flash::{BlockDevice, FlashError, Geometry, RamFlash, SimFlash};
use cairndb::value::Value;
use cairndb::Error;
use common::*;

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

/// A clock that advances by `step` at every reading, so each counted call (read at its start
/// and its end) lasts exactly `step`.
fn stepping(db: &mut Database<SimFlash>, start: u64) -> Cell {
    let step = Cell::new(10);
    let s = step.clone();
    let mut now = start;
    db.set_clock(Box::new(move || {
        now += s.get();
        now
    }));
    step
}

fn stat(count: u64, total_time: u64, max_time: u64) -> OpStat {
    OpStat {
        count,
        total_time,
        max_time,
    }
}

#[test]
fn operations_are_counted_and_timed_with_the_clock() {
    let mut db = fresh();
    assert_eq!(db.op_stats(), OpStats::default());
    let step = stepping(&mut db, 1000);
    // Each one-call write: the call (10) and its commit (10).
    for i in 0..3 {
        db.insert_json("a", &format!(r#"{{"i":{i}}}"#)).unwrap();
    }
    // The first insert's document is stamped with the reading that started the call: timing
    // adds no clock reading before the stamp.
    let d = db.get("a", 1).unwrap().unwrap();
    assert_eq!(d.as_map().unwrap().get("_ts"), Some(&Value::Int(1010)));
    assert_eq!(db.get("missing", 1).unwrap(), None);
    step.set(50);
    db.patch("a", 2, &json(r#"{"$set":{"i":20}}"#)).unwrap();
    step.set(10);
    assert_eq!(
        db.replace("a", 99, &json(r#"{"i":0}"#)),
        Err(Error::NotFound)
    );
    assert!(db.delete("a", 3).unwrap());
    db.kv_put("ns", b"k", b"v").unwrap();
    assert_eq!(db.kv_get("ns", b"k").unwrap(), Some(b"v".to_vec()));
    assert!(db.kv_delete("ns", b"k").unwrap());
    assert_eq!(
        db.find_json("a", r#"{"i":{"$gte":0}}"#, "").unwrap().len(),
        2
    );
    // A transaction: every call counts, one commit.
    db.transaction(|t| {
        t.insert("a", &json(r#"{"i":5}"#))?;
        t.insert("a", &json(r#"{"i":6}"#))?;
        t.get("a", 1).map(|_| ())
    })
    .unwrap();
    // A failed transaction: its calls count, the failure too, no commit.
    assert_eq!(
        db.transaction(|t| t.patch("a", 1, &json(r#"{"$bad":1}"#))),
        Err(Error::InvalidPatch)
    );
    let s = db.op_stats();
    assert_eq!(s.inserts, stat(5, 50, 10));
    assert_eq!(s.reads, stat(4, 40, 10));
    // patch (50), replace (10, failed), kv_put (10), failed patch (10).
    assert_eq!(s.updates, stat(4, 80, 50));
    assert_eq!(s.deletes, stat(2, 20, 10));
    assert_eq!(s.finds, stat(1, 10, 10));
    // 3 inserts, patch (50), delete, kv_put, kv_delete, the transaction.
    assert_eq!(s.commits, stat(8, 120, 50));
    assert_eq!(s.failed, 2);
    // Kept in RAM only: a reopen starts from zero.
    let (r, dev) = db.close();
    r.unwrap();
    let mut db = Database::open(dev, &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(db.op_stats(), OpStats::default());
    // Without a clock, calls are counted and their latencies are 0.
    db.insert_json("a", r#"{"i":7}"#).unwrap();
    db.get("a", 1).unwrap();
    let s = db.op_stats();
    assert_eq!(
        (s.inserts, s.reads, s.commits),
        (stat(1, 0, 0), stat(1, 0, 0), stat(1, 0, 0))
    );
}

#[test]
fn space_counts_the_blocks_in_use() {
    let mut db = fresh();
    let empty = db.space().unwrap();
    assert_eq!((empty.block_size, empty.block_count), (4096, 128));
    assert_eq!(empty.used_blocks + empty.free_blocks, 128);
    assert!(empty.used_blocks >= 2, "littlefs keeps a superblock pair");
    for i in 0..300 {
        db.insert_json("a", &format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(200)))
            .unwrap();
    }
    db.flush().unwrap();
    let full = db.space().unwrap();
    assert_eq!(full.used_blocks + full.free_blocks, 128);
    // About 60 KB of documents: at least 15 more blocks.
    assert!(
        full.used_blocks >= empty.used_blocks + 15,
        "{empty:?} -> {full:?}"
    );
    assert_eq!(full.free_blocks, db.free_blocks().unwrap());
}

#[test]
fn wear_is_what_the_flash_counted() {
    let mut db = fresh();
    for i in 0..400 {
        db.insert_json("a", &format!(r#"{{"i":{i},"pad":"{}"}}"#, "y".repeat(100)))
            .unwrap();
        if i % 3 == 0 {
            db.delete("a", i / 2 + 1).unwrap();
        }
    }
    db.compact().unwrap();
    let w = db.wear().expect("SimFlash counts erases");
    let counts = db.device().erase_counts().to_vec();
    assert_eq!(w.blocks, 128);
    assert_eq!(w.min, *counts.iter().min().unwrap());
    assert_eq!(w.max, *counts.iter().max().unwrap());
    assert_eq!(w.total, counts.iter().map(|c| u64::from(*c)).sum::<u64>());
    // Every erase of this run completed, so the per-block counts add up to the erase calls.
    assert_eq!(w.total, db.device().stats().erases);
    assert!(w.total > 50 && w.max > w.min, "{w:?}");
    assert!((w.mean - w.total as f64 / 128.0).abs() < 1e-9);
    assert_eq!(db.device().erase_count(3), Some(counts[3]));
    assert_eq!(db.device().erase_count(128), None);
}

/// A device that does not count erases.
struct Uncounted(SimFlash);

impl BlockDevice for Uncounted {
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.0.read(block, off, buf)
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        self.0.prog(block, off, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        self.0.erase(block)
    }
}

#[test]
fn wear_on_other_devices() {
    let mut db = Database::format(
        RamFlash::new(geometry(64)).unwrap(),
        &Config::default(),
        &Key::None,
    )
    .map_err(|e| e.0)
    .unwrap();
    let before = db.wear().expect("RamFlash counts erases").total;
    for i in 0..200 {
        db.insert_json("a", &format!(r#"{{"i":{i},"pad":"{}"}}"#, "z".repeat(100)))
            .unwrap();
    }
    db.flush().unwrap();
    let w = db.wear().unwrap();
    assert_eq!(w.blocks, 64);
    assert!(w.total > before && w.max >= 1, "{w:?}");
    let mut db = Database::format(Uncounted(new_sim(64)), &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .unwrap();
    db.insert_json("a", r#"{"i":1}"#).unwrap();
    assert_eq!(db.wear(), None);
    assert_eq!(db.statistics().unwrap().wear, None);
}

#[test]
fn the_report_gathers_everything() {
    let mut db = fresh();
    stepping(&mut db, 0);
    for i in 0..50 {
        db.insert_json("a", &format!(r#"{{"i":{i}}}"#)).unwrap();
    }
    db.kv_put("n", b"k", b"v").unwrap();
    let r = db.statistics().unwrap();
    assert_eq!(r.stats, db.stats());
    assert_eq!(r.space, db.space().unwrap());
    assert_eq!(r.wear, db.wear());
    assert_eq!(r.ops, db.op_stats());
    assert_eq!(r.ops.inserts.count, 50);
    assert_eq!(r.ops.commits.count, 51);
    assert_eq!(r.stats.store.commits, 51);
    assert!(r.stats.store.frames >= 51);
    let c = db.collection_stats("a").unwrap();
    assert_eq!((c.docs, c.bytes), db.recount("a").unwrap());
    assert_eq!(c.docs, 50);
}
