//! The workloads: the same sequence of operations run against cairndb (with and without
//! encryption) and against littlefs used directly with one file per record, each on its own
//! fresh simulated NOR flash of the same geometry, measured phase by phase.

use crate::heap;
use cairndb::db::{Config, Database, Key};
use cairndb::engine::StoreStats;
use cairndb::flash::{FlashStats, Geometry, SimFlash};
use cairndb::lfs::{Fs, LfsConfig};
use cairndb::value::{self, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Errors end the run: they are bugs (or a full flash), never a measurement.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The one flash every subject runs on: 8 MiB of strict NOR, 16-byte words.
pub const GEOMETRY: Geometry = Geometry {
    read_size: 16,
    prog_size: 16,
    block_size: 4096,
    block_count: 2048,
};

/// The collection cairndb stores the documents in.
pub const COLL: &str = "sensors";
/// The patch every patch operation applies.
const PATCH: &str = r#"{"$inc":{"seq":1}}"#;
/// A fixed key: the benchmark measures costs, not secrecy.
pub static KEY: [u8; 32] = [0x5A; 32];
/// Largest document file the baseline reads back.
const MAX_DOC: usize = 1024;
/// Files the baseline creates between its last clean point and the power cut.
const BASELINE_CRASH_CREATES: usize = 12;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// cairndb with a raw AES-256 key (`Key::Raw`).
    CairnAes,
    /// cairndb without encryption (`Key::None`, CRC-32C records).
    CairnPlain,
    /// littlefs (same C library and configuration) with one file per record.
    Baseline,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::CairnAes, Kind::CairnPlain, Kind::Baseline];

    pub fn label(self) -> &'static str {
        match self {
            Kind::CairnAes => "cairndb AES",
            Kind::CairnPlain => "cairndb plain",
            Kind::Baseline => "littlefs file/record",
        }
    }

    pub fn is_cairn(self) -> bool {
        self != Kind::Baseline
    }
}

/// How much work one run does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Documents inserted in phase 1.
    pub n: usize,
    /// Gets, patches and deletes measured in phases 2-4.
    pub ops: usize,
    /// Inserts measured after the clean reopen (the first one is also reported alone).
    pub after_open: usize,
    /// Seed of the id and document generators (the same for every subject).
    pub seed: u64,
}

/// What one operation cost, with the store's work counters to tell plain commits from folds
/// and merges.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpCost {
    /// Index of the operation within its phase.
    pub index: usize,
    pub flash: FlashStats,
    pub store: StoreStats,
}

/// Operations of a phase grouped by what the store did during them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// Only WAL frames (or, for the baseline, the file operation itself).
    Commit,
    /// A fold of the memtable into a new segment (and root write, WAL reset), no merge.
    Fold,
    /// A fold followed by one or more segment merges.
    Merge,
}

impl OpClass {
    pub const ALL: [OpClass; 3] = [OpClass::Commit, OpClass::Fold, OpClass::Merge];

    fn of(store: &StoreStats) -> OpClass {
        if store.merges > 0 {
            OpClass::Merge
        } else if store.folds > 0 {
            OpClass::Fold
        } else {
            OpClass::Commit
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OpClass::Commit => "WAL commit only",
            OpClass::Fold => "with a fold",
            OpClass::Merge => "with fold + merge",
        }
    }
}

/// The operations of one class in a phase: how many, and their summed flash costs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bucket {
    pub ops: u64,
    pub flash: FlashStats,
}

/// One phase's totals, worst single operations and heap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    pub ops: u64,
    /// Flash work of the whole phase.
    pub flash: FlashStats,
    /// Store work of the whole phase (zero for the baseline).
    pub store: StoreStats,
    /// Host wall-clock time of the whole phase.
    pub time: Duration,
    /// Payload bytes handed to the operations (JSON text of inserted documents).
    pub user_bytes: u64,
    /// Most heap in use during the phase, above the harness's own allocations.
    pub heap_peak: usize,
    /// Heap in use at the end of the phase, above the harness's own allocations.
    pub heap_end: usize,
    /// The operation that read the most bytes, and the largest single-op figures.
    pub worst_read: OpCost,
    pub worst_prog: OpCost,
    pub worst_erases: OpCost,
    /// Indexed by `OpClass as usize`.
    pub classes: [Bucket; 3],
}

impl Phase {
    fn per_op(&self, total: u64) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            total as f64 / self.ops as f64
        }
    }
    pub fn read_per_op(&self) -> f64 {
        self.per_op(self.flash.bytes_read)
    }
    pub fn prog_per_op(&self) -> f64 {
        self.per_op(self.flash.bytes_programmed)
    }
    pub fn erases_per_op(&self) -> f64 {
        self.per_op(self.flash.erases)
    }
    pub fn us_per_op(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.time.as_secs_f64() * 1e6 / self.ops as f64
        }
    }
    /// Bytes programmed per byte of payload.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes == 0 {
            0.0
        } else {
            self.flash.bytes_programmed as f64 / self.user_bytes as f64
        }
    }
    pub fn bucket(&self, c: OpClass) -> Bucket {
        self.classes[c as usize]
    }
}

/// Everything measured for one subject at one N.
#[derive(Debug, Clone, Copy)]
pub struct RunResult {
    pub kind: Kind,
    pub plan: Plan,
    pub insert: Phase,
    pub get: Phase,
    pub patch: Phase,
    pub delete: Phase,
    /// Open (mount) after a clean close, one operation.
    pub open_clean: Phase,
    /// cairndb only: memtable bytes rebuilt from the WAL by that open.
    pub replayed_clean: Option<usize>,
    /// The first insert after that open, and all `plan.after_open` of them.
    pub first_insert: Phase,
    pub after_open: Phase,
    /// cairndb only: open after `flush` + close (an empty WAL).
    pub open_flushed: Option<Phase>,
    /// Open after a power cut that follows `crash_commits` un-flushed commits.
    pub open_crash: Phase,
    pub crash_commits: usize,
    /// At the end: erase cycles of the least and most erased block, total erases, blocks in use.
    pub wear: (u32, u32),
    pub erases_total: u64,
    pub blocks_used: u32,
    /// cairndb only: live segments at the end.
    pub segments: usize,
    /// Host wall-clock time of the whole run (setup included).
    pub wall: Duration,
}

// ---------------------------------------------------------------------------------------------
// Deterministic inputs

/// SplitMix64: small, fast and good enough to pick ids and vary documents.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The `seq`-th document of a run, about 64 bytes of JSON, e.g.
/// `{"dev":"sensor-0042","temp":21.5,"hum":48,"seq":1234,"ok":true}`. The same `seq` always
/// gives the same text.
pub fn doc_json(seed: u64, seq: u64, out: &mut String) {
    let Fields {
        dev,
        temp_tenths,
        hum,
        ok,
    } = doc_fields(seed, seq);
    let temp = temp_tenths as f64 / 10.0;
    out.clear();
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"{{"dev":"sensor-{dev:04}","temp":{temp:.1},"hum":{hum},"seq":{seq},"ok":{ok}}}"#
    );
}

/// The pseudo-random fields of the `seq`-th document (see [`doc_json`]).
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `dev` is `sensor-{dev:04}`: 10,000 possible values.
    pub dev: u64,
    /// `temp` in tenths of a degree: -200 ..= 449 (650 values, -20.0 .. 44.9 degrees).
    pub temp_tenths: i64,
    pub hum: u64,
    pub ok: bool,
}

/// Distinct values `dev` can take.
pub const DEV_VALUES: u64 = 10_000;
/// Lowest `temp` in tenths, and how many tenths `temp` can take.
pub const TEMP_MIN_TENTHS: i64 = -200;
pub const TEMP_VALUES: u64 = 650;

pub fn doc_fields(seed: u64, seq: u64) -> Fields {
    let mut r = Rng::new(seed ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    Fields {
        dev: r.below(DEV_VALUES),
        temp_tenths: r.below(TEMP_VALUES) as i64 + TEMP_MIN_TENTHS,
        hum: r.below(101),
        ok: r.below(8) != 0,
    }
}

/// `count` ids drawn uniformly from `1..=n` (repeats allowed).
fn random_ids(rng: &mut Rng, n: usize, count: usize) -> Vec<u64> {
    (0..count).map(|_| 1 + rng.below(n as u64)).collect()
}

/// `count` distinct ids from `1..=n` (a partial Fisher-Yates shuffle).
fn distinct_ids(rng: &mut Rng, n: usize, count: usize) -> Vec<u64> {
    let mut all: Vec<u64> = (1..=n as u64).collect();
    let count = count.min(n);
    for i in 0..count {
        let j = i + rng.below((n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

// ---------------------------------------------------------------------------------------------
// Subjects

/// What [`phase`] reads before and after each operation: the flash and the store's counters.
pub trait Probe {
    /// The flash, whether the subject is open or closed.
    fn flash(&self) -> &SimFlash;
    /// The store's work counters (zero for the baseline).
    fn store_stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

/// An open cairndb database measured directly (the query workloads).
impl Probe for Database<SimFlash> {
    fn flash(&self) -> &SimFlash {
        self.device()
    }

    fn store_stats(&self) -> StoreStats {
        self.stats().store
    }
}

/// A database (or plain filesystem) under test, open or closed, that owns its flash.
trait Subject: Probe {
    /// Create an empty database on the (closed) flash; leaves it open.
    fn format(&mut self) -> Res<()>;
    /// Insert one JSON document; returns its id.
    fn insert(&mut self, json: &str) -> Res<u64>;
    fn get(&mut self, id: u64) -> Res<()>;
    fn patch(&mut self, id: u64) -> Res<()>;
    fn delete(&mut self, id: u64) -> Res<()>;
    /// Unmount cleanly, keeping the flash.
    fn close(&mut self) -> Res<()>;
    /// Drop everything without flash I/O, as a power cut would, keeping the flash.
    fn crash(&mut self) -> Res<()>;
    fn open(&mut self) -> Res<()>;
    /// Make everything durable in its final place (cairndb: fold the WAL). No-op by default.
    fn flush(&mut self) -> Res<()> {
        Ok(())
    }
    /// Commits the WAL takes, starting empty, before the next one folds it (cairndb only).
    fn commits_before_fold(&mut self, _seed: u64, _first_seq: u64) -> Res<Option<usize>> {
        Ok(None)
    }
    fn blocks_used(&mut self) -> Res<u32>;
    fn segments(&self) -> usize {
        0
    }
    /// Bytes of committed but unfolded mutations held in RAM (cairndb only).
    fn memtable_bytes(&self) -> Option<usize> {
        None
    }
}

/// A subject's lifecycle: open, or closed holding only its flash.
enum State<T> {
    Open(T),
    Closed(SimFlash),
    /// Only while a transition is under way (or after one failed).
    Gone,
}

fn not_open() -> Box<dyn std::error::Error> {
    "subject is not open".into()
}

impl<T> State<T> {
    fn open_mut(&mut self) -> Res<&mut T> {
        match self {
            State::Open(t) => Ok(t),
            _ => Err(not_open()),
        }
    }

    fn take_closed(&mut self) -> Res<SimFlash> {
        match std::mem::replace(self, State::Gone) {
            State::Closed(f) => Ok(f),
            other => {
                *self = other;
                Err("subject is not closed".into())
            }
        }
    }

    fn take_open(&mut self) -> Res<T> {
        match std::mem::replace(self, State::Gone) {
            State::Open(t) => Ok(t),
            other => {
                *self = other;
                Err(not_open())
            }
        }
    }
}

struct Cairn {
    state: State<Database<SimFlash>>,
    cfg: Config,
    key: Key<'static>,
    patch: Value,
}

impl Cairn {
    fn new(flash: SimFlash, encrypted: bool) -> Res<Self> {
        let cfg = Config::default();
        Ok(Cairn {
            state: State::Closed(flash),
            patch: value::from_json(PATCH.as_bytes(), cfg.max_depth)?,
            cfg,
            key: if encrypted { Key::Raw(&KEY) } else { Key::None },
        })
    }

    fn db(&mut self) -> Res<&mut Database<SimFlash>> {
        self.state.open_mut()
    }
}

impl Probe for Cairn {
    fn flash(&self) -> &SimFlash {
        match &self.state {
            State::Open(db) => db.device(),
            State::Closed(f) => f,
            State::Gone => unreachable!("used after a failed transition"),
        }
    }

    fn store_stats(&self) -> StoreStats {
        match &self.state {
            State::Open(db) => db.stats().store,
            _ => StoreStats::default(),
        }
    }
}

impl Subject for Cairn {
    fn format(&mut self) -> Res<()> {
        let flash = self.state.take_closed()?;
        let db = Database::format(flash, &self.cfg, &self.key).map_err(|(e, _)| e)?;
        self.state = State::Open(db);
        Ok(())
    }

    fn insert(&mut self, json: &str) -> Res<u64> {
        Ok(self.db()?.insert_json(COLL, json)?)
    }

    fn get(&mut self, id: u64) -> Res<()> {
        match self.db()?.get(COLL, id)? {
            Some(_) => Ok(()),
            None => Err(format!("cairndb lost document {id}").into()),
        }
    }

    fn patch(&mut self, id: u64) -> Res<()> {
        let State::Open(db) = &mut self.state else {
            return Err(not_open());
        };
        Ok(db.patch(COLL, id, &self.patch)?)
    }

    fn delete(&mut self, id: u64) -> Res<()> {
        if self.db()?.delete(COLL, id)? {
            Ok(())
        } else {
            Err(format!("cairndb: document {id} was not there to delete").into())
        }
    }

    fn close(&mut self) -> Res<()> {
        let (r, flash) = self.state.take_open()?.close();
        self.state = State::Closed(flash);
        Ok(r?)
    }

    fn crash(&mut self) -> Res<()> {
        let flash = self.state.take_open()?.into_device();
        self.state = State::Closed(flash);
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        let flash = self.state.take_closed()?;
        match Database::open(flash, &self.cfg, &self.key) {
            Ok(db) => {
                self.state = State::Open(db);
                Ok(())
            }
            Err((e, flash)) => {
                self.state = State::Closed(flash);
                Err(e.into())
            }
        }
    }

    fn flush(&mut self) -> Res<()> {
        Ok(self.db()?.flush()?)
    }

    /// Runs on a copy of the flash: open it and insert the documents the real run will insert
    /// until one commit folds.
    fn commits_before_fold(&mut self, seed: u64, first_seq: u64) -> Res<Option<usize>> {
        let copy = self.db()?.device().clone();
        let mut db = Database::open(copy, &self.cfg, &self.key).map_err(|(e, _)| e)?;
        let folds = db.stats().store.folds;
        let mut json = String::with_capacity(128);
        for i in 0..1000u64 {
            doc_json(seed, first_seq + i, &mut json);
            db.insert_json(COLL, &json)?;
            if db.stats().store.folds != folds {
                return Ok(Some(i as usize));
            }
        }
        Err("the WAL never folded".into())
    }

    fn blocks_used(&mut self) -> Res<u32> {
        let free = self.db()?.free_blocks()?;
        Ok(GEOMETRY.block_count - free)
    }

    fn segments(&self) -> usize {
        match &self.state {
            State::Open(db) => db.stats().segments,
            _ => 0,
        }
    }

    fn memtable_bytes(&self) -> Option<usize> {
        match &self.state {
            State::Open(db) => Some(db.stats().memtable_bytes),
            _ => None,
        }
    }
}

/// littlefs used directly: each document a file of its JSON text, named by its id.
struct Baseline {
    state: State<Fs<SimFlash>>,
    cfg: LfsConfig,
    /// One directory for everything (N <= 1,000), or 100 directories chosen by `id % 100`.
    one_dir: bool,
    next_id: u64,
    patch: Value,
    max_depth: usize,
    // Buffers reused across operations, allocated before the heap base is taken.
    path: String,
    buf: Vec<u8>,
    text: String,
}

impl Baseline {
    fn new(flash: SimFlash, n: usize) -> Res<Self> {
        let cfg = Config::default();
        Ok(Baseline {
            state: State::Closed(flash),
            cfg: cfg.lfs,
            one_dir: n <= 1000,
            next_id: 1,
            patch: value::from_json(PATCH.as_bytes(), cfg.max_depth)?,
            max_depth: cfg.max_depth,
            path: String::with_capacity(64),
            buf: Vec::with_capacity(MAX_DOC),
            text: String::with_capacity(MAX_DOC),
        })
    }

    fn set_path(&mut self, id: u64) {
        self.path.clear();
        // Writing into a String cannot fail.
        let _ = if self.one_dir {
            write!(self.path, "/d/{id:05}")
        } else {
            write!(self.path, "/d{:02}/{id:05}", id % 100)
        };
    }

    fn parts(&mut self) -> Res<(&mut Fs<SimFlash>, &str)> {
        match &mut self.state {
            State::Open(fs) => Ok((fs, self.path.as_str())),
            _ => Err(not_open()),
        }
    }
}

impl Probe for Baseline {
    fn flash(&self) -> &SimFlash {
        match &self.state {
            State::Open(fs) => fs.device(),
            State::Closed(f) => f,
            State::Gone => unreachable!("used after a failed transition"),
        }
    }
}

impl Subject for Baseline {
    fn format(&mut self) -> Res<()> {
        let flash = self.state.take_closed()?;
        let flash = Fs::format(flash, &self.cfg).map_err(|(e, _)| e)?;
        let mut fs = Fs::mount(flash, &self.cfg).map_err(|(e, _)| e)?;
        if self.one_dir {
            fs.mkdir("/d")?;
        } else {
            for d in 0..100 {
                fs.mkdir(&format!("/d{d:02}"))?;
            }
        }
        self.state = State::Open(fs);
        Ok(())
    }

    fn insert(&mut self, json: &str) -> Res<u64> {
        let id = self.next_id;
        self.set_path(id);
        let (fs, path) = self.parts()?;
        fs.write_file(path, json.as_bytes())?;
        self.next_id += 1;
        Ok(id)
    }

    fn get(&mut self, id: u64) -> Res<()> {
        self.set_path(id);
        let State::Open(fs) = &mut self.state else {
            return Err(not_open());
        };
        fs.read_file(&self.path, &mut self.buf, MAX_DOC)?;
        Ok(())
    }

    /// Read, apply the patch to the parsed document, write the new text back.
    fn patch(&mut self, id: u64) -> Res<()> {
        self.set_path(id);
        let State::Open(fs) = &mut self.state else {
            return Err(not_open());
        };
        fs.read_file(&self.path, &mut self.buf, MAX_DOC)?;
        let mut doc = value::from_json(&self.buf, self.max_depth)?;
        let map = doc.as_map_mut().ok_or("baseline document is not a map")?;
        value::apply_patch(map, &self.patch, self.max_depth)?;
        self.text.clear();
        value::to_json(&doc, &mut self.text);
        fs.write_file(&self.path, self.text.as_bytes())?;
        Ok(())
    }

    fn delete(&mut self, id: u64) -> Res<()> {
        self.set_path(id);
        let (fs, path) = self.parts()?;
        fs.remove(path)?;
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        let (r, flash) = self.state.take_open()?.unmount();
        self.state = State::Closed(flash);
        Ok(r?)
    }

    fn crash(&mut self) -> Res<()> {
        let flash = self.state.take_open()?.into_device();
        self.state = State::Closed(flash);
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        let flash = self.state.take_closed()?;
        match Fs::mount(flash, &self.cfg) {
            Ok(fs) => {
                self.state = State::Open(fs);
                Ok(())
            }
            Err((e, flash)) => {
                self.state = State::Closed(flash);
                Err(e.into())
            }
        }
    }

    fn blocks_used(&mut self) -> Res<u32> {
        Ok(self.state.open_mut()?.used_blocks()?)
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// Runs `count` operations as one phase: per-op flash and store deltas, the phase's time, and
/// its heap high-water mark above `heap_base` (the harness's own allocations).
pub fn phase<S: Probe + ?Sized>(
    s: &mut S,
    heap_base: usize,
    count: usize,
    mut op: impl FnMut(&mut S, usize) -> Res<u64>,
) -> Res<Phase> {
    let mut p = Phase::default();
    let (flash0, store0) = (s.flash().stats(), s.store_stats());
    heap::reset_peak();
    let t0 = Instant::now();
    for i in 0..count {
        let (f, st) = (s.flash().stats(), s.store_stats());
        p.user_bytes += op(s, i)?;
        let cost = OpCost {
            index: i,
            flash: s.flash().stats().since(f),
            store: store_since(s.store_stats(), st),
        };
        let b = &mut p.classes[OpClass::of(&cost.store) as usize];
        b.ops += 1;
        b.flash = add(b.flash, cost.flash);
        if p.ops == 0 || cost.flash.bytes_read > p.worst_read.flash.bytes_read {
            p.worst_read = cost;
        }
        if p.ops == 0 || cost.flash.bytes_programmed > p.worst_prog.flash.bytes_programmed {
            p.worst_prog = cost;
        }
        if p.ops == 0 || cost.flash.erases > p.worst_erases.flash.erases {
            p.worst_erases = cost;
        }
        p.ops += 1;
    }
    p.time = t0.elapsed();
    p.heap_peak = heap::peak().saturating_sub(heap_base);
    p.heap_end = heap::current().saturating_sub(heap_base);
    p.flash = s.flash().stats().since(flash0);
    p.store = store_since(s.store_stats(), store0);
    Ok(p)
}

fn add(a: FlashStats, b: FlashStats) -> FlashStats {
    FlashStats {
        reads: a.reads + b.reads,
        bytes_read: a.bytes_read + b.bytes_read,
        progs: a.progs + b.progs,
        bytes_programmed: a.bytes_programmed + b.bytes_programmed,
        erases: a.erases + b.erases,
        syncs: a.syncs + b.syncs,
    }
}

/// Store counters gained since `earlier`; a reopen restarts them at zero, which counts as
/// nothing gained.
fn store_since(now: StoreStats, earlier: StoreStats) -> StoreStats {
    StoreStats {
        commits: now.commits.saturating_sub(earlier.commits),
        frames: now.frames.saturating_sub(earlier.frames),
        folds: now.folds.saturating_sub(earlier.folds),
        merges: now.merges.saturating_sub(earlier.merges),
        root_writes: now.root_writes.saturating_sub(earlier.root_writes),
    }
}

/// Runs every phase for one subject kind and size.
pub fn run(kind: Kind, plan: Plan) -> Res<RunResult> {
    let started = Instant::now();
    let flash = SimFlash::new(GEOMETRY).ok_or("invalid geometry")?;
    let mut subject: Box<dyn Subject> = match kind {
        Kind::CairnAes => Box::new(Cairn::new(flash, true)?),
        Kind::CairnPlain => Box::new(Cairn::new(flash, false)?),
        Kind::Baseline => Box::new(Baseline::new(flash, plan.n)?),
    };
    let s = subject.as_mut();

    // Every input is generated before the heap base is taken, so that the phases' heap figures
    // are the subject's own (the flash image and these vectors are not).
    let mut rng = Rng::new(plan.seed);
    let get_ids = random_ids(&mut rng, plan.n, plan.ops);
    let patch_ids = random_ids(&mut rng, plan.n, plan.ops);
    let delete_ids = distinct_ids(&mut rng, plan.n, plan.ops);
    let mut json = String::with_capacity(256);
    let seed = plan.seed;
    let heap_base = heap::current();

    s.format()?;

    // 1. Inserts, one commit each.
    let insert = phase(s, heap_base, plan.n, |s, i| {
        doc_json(seed, i as u64, &mut json);
        s.insert(&json)?;
        Ok(json.len() as u64)
    })?;
    // 2-4. Point gets, patches, deletes by random ids.
    let get = phase(s, heap_base, get_ids.len(), |s, i| {
        s.get(get_ids[i]).map(|_| 0)
    })?;
    let patch = phase(s, heap_base, patch_ids.len(), |s, i| {
        s.patch(patch_ids[i]).map(|_| 0)
    })?;
    let delete = phase(s, heap_base, delete_ids.len(), |s, i| {
        s.delete(delete_ids[i]).map(|_| 0)
    })?;

    // 5. Open after a clean close, then inserts after it: the first allocation after a mount
    //    scans the volume.
    s.close()?;
    let open_clean = phase(s, heap_base, 1, |s, _| s.open().map(|_| 0))?;
    let replayed_clean = s.memtable_bytes();
    let mut seq = plan.n as u64;
    let first_insert = phase(s, heap_base, 1, |s, _| {
        doc_json(seed, seq, &mut json);
        s.insert(&json)?;
        Ok(json.len() as u64)
    })?;
    seq += 1;
    let after_open = phase(s, heap_base, plan.after_open, |s, i| {
        doc_json(seed, seq + i as u64, &mut json);
        s.insert(&json)?;
        Ok(json.len() as u64)
    })?;
    seq += plan.after_open as u64;

    // Open after a clean point (cairndb: the WAL folded first).
    let open_flushed = if kind.is_cairn() {
        s.flush()?;
        s.close()?;
        Some(phase(s, heap_base, 1, |s, _| s.open().map(|_| 0))?)
    } else {
        None
    };

    // Open after a power cut: cairndb with its WAL as full as it gets (the next commit would
    // fold it), the baseline after a few file creates.
    s.flush()?;
    let crash_commits = s
        .commits_before_fold(seed, seq)?
        .unwrap_or(BASELINE_CRASH_CREATES);
    for i in 0..crash_commits {
        doc_json(seed, seq + i as u64, &mut json);
        s.insert(&json)?;
    }
    s.crash()?;
    let open_crash = phase(s, heap_base, 1, |s, _| s.open().map(|_| 0))?;

    // 6. The state of the flash at the end.
    let blocks_used = s.blocks_used()?;
    let segments = s.segments();
    let wear = s.flash().wear_spread();
    let erases_total = s.flash().erase_counts().iter().map(|&c| u64::from(c)).sum();
    let violations = s.flash().violations();
    if violations != 0 {
        return Err(format!("{}: {violations} flash contract violations", kind.label()).into());
    }
    s.close()?;

    Ok(RunResult {
        kind,
        plan,
        insert,
        get,
        patch,
        delete,
        open_clean,
        replayed_clean,
        first_insert,
        after_open,
        open_flushed,
        open_crash,
        crash_commits,
        wear,
        erases_total,
        blocks_used,
        segments,
        wall: started.elapsed(),
    })
}
