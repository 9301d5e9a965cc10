//! The query and index workloads: equality and range finds through a secondary index and by
//! scanning, insert costs with 0, 1 and 2 indexes, and an index build, all on cairndb AES with
//! the same documents and simulated flash as the main workloads.
//!
//! Every query workload runs on a database freshly opened from a saved flash image, so that it
//! can be repeated exactly in another process: the instruction counts come from this binary
//! re-run under `valgrind --tool=callgrind` (see [`instructions`]), counting only inside
//! [`cairndb_bench_measured_queries`], and that run must read the same flash bytes as the
//! native one.

use crate::heap;
use crate::workload::{
    doc_fields, doc_json, phase, Phase, Res, Rng, COLL, DEV_VALUES, GEOMETRY, KEY, TEMP_MIN_TENTHS,
    TEMP_VALUES,
};
use cairndb::db::{Config, Database, IndexSpec, Key};
use cairndb::flash::SimFlash;
use cairndb::query::FindOptions;
use cairndb::value::{self, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The indexes of the query workloads, in creation order: database k has the first k.
pub const INDEXES: [(&str, &str); 2] = [("by_dev", "dev"), ("by_temp", "temp")];
/// Range queries select `temp` in `[t, t + RANGE_TENTHS / 10)`: 7 of the 650 tenths, ~1.1%.
pub const RANGE_TENTHS: f64 = 6.5;
/// The marker function callgrind counts inside.
const MARKER: &str = "cairndb_bench_measured_queries";

/// How much query work one run does.
#[derive(Debug, Clone, Copy)]
pub struct QueryPlan {
    /// Documents in the collection.
    pub n: usize,
    /// Queries of each kind, in [`QueryKind::ALL`] order.
    pub counts: [usize; 4],
    pub seed: u64,
    /// Count instructions under callgrind (when valgrind is installed).
    pub callgrind: bool,
}

/// The four query workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `{"dev":"sensor-XXXX"}` through the index on `dev`.
    EqIndex,
    /// The same filters on a collection without indexes.
    EqScan,
    /// `{"temp":{"$gte":a,"$lt":b}}` (~1% of the documents) through the index on `temp`.
    RangeIndex,
    /// The same filters on a collection without indexes.
    RangeScan,
}

impl QueryKind {
    pub const ALL: [QueryKind; 4] = [
        QueryKind::EqIndex,
        QueryKind::EqScan,
        QueryKind::RangeIndex,
        QueryKind::RangeScan,
    ];

    pub fn label(self) -> &'static str {
        match self {
            QueryKind::EqIndex => "equality, index",
            QueryKind::EqScan => "equality, scan",
            QueryKind::RangeIndex => "range ~1%, index",
            QueryKind::RangeScan => "range ~1%, scan",
        }
    }

    /// The name on the command line of a callgrind child.
    fn arg(self) -> &'static str {
        match self {
            QueryKind::EqIndex => "eq-index",
            QueryKind::EqScan => "eq-scan",
            QueryKind::RangeIndex => "range-index",
            QueryKind::RangeScan => "range-scan",
        }
    }

    fn from_arg(s: &str) -> Option<Self> {
        QueryKind::ALL.into_iter().find(|k| k.arg() == s)
    }

    /// Indexes of the database the workload runs on (2 = `dev` and `temp`, 0 = none).
    fn indexes(self) -> usize {
        match self {
            QueryKind::EqIndex | QueryKind::RangeIndex => 2,
            QueryKind::EqScan | QueryKind::RangeScan => 0,
        }
    }

    fn is_range(self) -> bool {
        matches!(self, QueryKind::RangeIndex | QueryKind::RangeScan)
    }

    /// The access `explain` must report.
    fn expected_access(self) -> (&'static str, Option<&'static str>) {
        match self {
            QueryKind::EqIndex => ("index", Some(INDEXES[0].0)),
            QueryKind::RangeIndex => ("index", Some(INDEXES[1].0)),
            QueryKind::EqScan | QueryKind::RangeScan => ("scan", None),
        }
    }
}

/// One query workload's measurements.
#[derive(Debug, Clone, Default)]
pub struct QueryPhase {
    pub phase: Phase,
    /// Documents the queries returned, in all.
    pub returned: u64,
    /// `explain` of the first query, as JSON.
    pub explain: String,
    /// Instructions executed by all the queries (callgrind), when counted.
    pub instructions: Option<u64>,
    /// Live segments of the database the queries ran on.
    pub segments: usize,
}

impl QueryPhase {
    pub fn returned_per_query(&self) -> f64 {
        self.returned as f64 / self.phase.ops.max(1) as f64
    }

    /// Bytes read per returned document.
    pub fn read_per_doc(&self) -> f64 {
        if self.returned == 0 {
            0.0
        } else {
            self.phase.flash.bytes_read as f64 / self.returned as f64
        }
    }

    pub fn instructions_per_query(&self) -> Option<f64> {
        self.instructions
            .map(|i| i as f64 / self.phase.ops.max(1) as f64)
    }
}

/// Everything the query workloads measured at one N.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub plan: QueryPlan,
    /// N inserts into a collection with 0, 1 and 2 indexes.
    pub inserts: [Phase; 3],
    /// Live segments after those inserts.
    pub segments: [usize; 3],
    /// `create_index` on `dev` over the N documents of the index-less database (one op).
    pub build: Phase,
    /// In [`QueryKind::ALL`] order.
    pub queries: [QueryPhase; 4],
    /// The equality filters given to `explain` alone (catalog lookups and planning).
    pub eq_explain: Phase,
    /// The documents the equality queries returned, fetched with `get` by id (one op per query).
    pub eq_fetch: Phase,
    /// The indexed equality queries again after `compact` (one segment), a fresh open.
    pub eq_compacted: Phase,
    /// Why there are no instruction counts, when there are none.
    pub instructions_note: Option<String>,
    pub wall: Duration,
}

impl QueryResult {
    pub fn query(&self, k: QueryKind) -> &QueryPhase {
        &self.queries[k as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn cfg() -> Config {
    Config::default()
}

fn key() -> Key<'static> {
    Key::Raw(&KEY)
}

fn json(text: &str) -> Res<Value> {
    Ok(value::from_json(text.as_bytes(), cfg().max_depth)?)
}

/// The filters of `count` queries of `kind`, the same in every process for the same plan.
/// Equality queries look up the `dev` of a random existing document (so each finds at least
/// one); range queries take 7 consecutive tenths of `temp` at a random place.
fn filters(kind: QueryKind, n: usize, count: usize, seed: u64) -> Res<Vec<Value>> {
    let mut rng = Rng::new(seed ^ if kind.is_range() { 0x7A4E } else { 0xE9 });
    (0..count)
        .map(|_| {
            if kind.is_range() {
                let span = TEMP_VALUES - RANGE_TENTHS.ceil() as u64;
                let t = rng.below(span) as i64 + TEMP_MIN_TENTHS;
                let lo = t as f64 / 10.0;
                let hi = (t as f64 + RANGE_TENTHS) / 10.0;
                json(&format!(r#"{{"temp":{{"$gte":{lo:.1},"$lt":{hi:.2}}}}}"#))
            } else {
                let dev = doc_fields(seed, rng.below(n as u64)).dev;
                debug_assert!(dev < DEV_VALUES);
                json(&format!(r#"{{"dev":"sensor-{dev:04}"}}"#))
            }
        })
        .collect()
}

/// Runs one find, counting the documents it returns (and collecting their ids if asked).
fn run_query(
    db: &mut Database<SimFlash>,
    filter: &Value,
    opts: &FindOptions,
    mut ids: Option<&mut Vec<u64>>,
) -> Res<u64> {
    let mut n = 0u64;
    db.find(COLL, filter, opts, &mut |d| {
        n += 1;
        if let Some(ids) = ids.as_deref_mut() {
            if let Some(id) = d
                .as_map()
                .and_then(|m| m.get("_id"))
                .and_then(Value::as_i64)
            {
                ids.push(id as u64);
            }
        }
        Ok(true)
    })?;
    Ok(n)
}

/// The queries callgrind counts: nothing but the finds, one after another.
#[no_mangle]
#[inline(never)]
pub fn cairndb_bench_measured_queries(
    db: &mut Database<SimFlash>,
    filters: &[Value],
    opts: &FindOptions,
) -> Res<u64> {
    let mut returned = 0;
    for f in filters {
        returned += run_query(db, f, opts, None)?;
    }
    Ok(returned)
}

fn open_image(image: &[u8]) -> Res<Database<SimFlash>> {
    let flash = SimFlash::from_image(GEOMETRY, image.to_vec()).ok_or("bad flash image")?;
    Ok(Database::open(flash, &cfg(), &key()).map_err(|(e, _)| e)?)
}

fn explain(db: &mut Database<SimFlash>, filter: &Value, kind: QueryKind) -> Res<String> {
    let e = db.explain(COLL, filter, &FindOptions::default())?;
    let m = e.as_map().ok_or("explain did not return a map")?;
    let (access, index) = kind.expected_access();
    if m.get("access") != Some(&Value::Str(access.into()))
        || index.is_some_and(|i| m.get("index") != Some(&Value::Str(i.into())))
    {
        let mut s = String::new();
        value::to_json(&e, &mut s);
        return Err(format!("{}: unexpected plan {s}", kind.label()).into());
    }
    let mut s = String::new();
    value::to_json(&e, &mut s);
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// The run

/// Builds the three databases (0, 1, 2 indexes), measures their inserts, then each query
/// workload on a fresh open of the right image, then (optionally) the instructions.
pub fn run(plan: QueryPlan) -> Res<QueryResult> {
    let started = Instant::now();
    let seed = plan.seed;
    let mut json_buf = String::with_capacity(256);
    let mut inserts: [Phase; 3] = Default::default();
    let mut segments = [0usize; 3];
    let mut images: Vec<Vec<u8>> = Vec::new();
    for k in 0..3 {
        let flash = SimFlash::new(GEOMETRY).ok_or("invalid geometry")?;
        let heap_base = heap::current();
        let mut db = Database::format(flash, &cfg(), &key()).map_err(|(e, _)| e)?;
        db.create_collection(COLL)?;
        for (name, field) in &INDEXES[..k] {
            db.create_index(
                COLL,
                name,
                &IndexSpec {
                    fields: &[field],
                    unique: false,
                    partial: None,
                },
            )?;
        }
        inserts[k] = phase(&mut db, heap_base, plan.n, |db, i| {
            doc_json(seed, i as u64, &mut json_buf);
            db.insert_json(COLL, &json_buf)?;
            Ok(json_buf.len() as u64)
        })?;
        segments[k] = db.stats().segments;
        let (r, flash) = db.close();
        r?;
        if flash.violations() != 0 {
            return Err("query databases: flash contract violations".into());
        }
        images.push(flash.into_image());
    }
    let image = |kind: QueryKind| &images[kind.indexes()];

    // Each query workload on its own fresh open, exactly as the callgrind child runs it.
    let opts = FindOptions::default();
    let mut queries: [QueryPhase; 4] = Default::default();
    for kind in QueryKind::ALL {
        let fs = filters(kind, plan.n, plan.counts[kind as usize], seed)?;
        let mut db = open_image(image(kind))?;
        let heap_base = heap::current();
        let mut returned = 0;
        let p = phase(&mut db, heap_base, fs.len(), |db, i| {
            returned += run_query(db, &fs[i], &opts, None)?;
            Ok(0)
        })?;
        let explain = match fs.first() {
            Some(f) => explain(&mut db, f, kind)?,
            None => String::new(),
        };
        queries[kind as usize] = QueryPhase {
            phase: p,
            returned,
            explain,
            instructions: None,
            segments: db.stats().segments,
        };
    }

    // Where an indexed equality query's reads go: explain alone, then get of its results alone
    // (their ids collected by an unmeasured run of the same queries).
    let fs = filters(
        QueryKind::EqIndex,
        plan.n,
        plan.counts[QueryKind::EqIndex as usize],
        seed,
    )?;
    let mut db = open_image(image(QueryKind::EqIndex))?;
    let mut eq_ids: Vec<Vec<u64>> = vec![Vec::new(); fs.len()];
    for (f, ids) in fs.iter().zip(&mut eq_ids) {
        run_query(&mut db, f, &opts, Some(ids))?;
    }
    let mut db = open_image(image(QueryKind::EqIndex))?;
    let heap_base = heap::current();
    let eq_explain = phase(&mut db, heap_base, fs.len(), |db, i| {
        db.explain(COLL, &fs[i], &opts)?;
        Ok(0)
    })?;
    let mut db = open_image(image(QueryKind::EqIndex))?;
    let heap_base = heap::current();
    let eq_fetch = phase(&mut db, heap_base, eq_ids.len(), |db, i| {
        for &id in &eq_ids[i] {
            db.get(COLL, id)?.ok_or("a returned document is gone")?;
        }
        Ok(0)
    })?;

    // The same queries with every segment merged into one.
    let mut db = open_image(image(QueryKind::EqIndex))?;
    db.compact()?;
    let (r, flash) = db.close();
    r?;
    let mut db = open_image(&flash.into_image())?;
    let heap_base = heap::current();
    let eq_compacted = phase(&mut db, heap_base, fs.len(), |db, i| {
        run_query(db, &fs[i], &opts, None)?;
        Ok(0)
    })?;

    // An index built over documents already there.
    let mut db = open_image(&images[0])?;
    let heap_base = heap::current();
    let build = phase(&mut db, heap_base, 1, |db, _| {
        db.create_index(
            COLL,
            INDEXES[0].0,
            &IndexSpec {
                fields: &[INDEXES[0].1],
                unique: false,
                partial: None,
            },
        )?;
        Ok(0)
    })?;
    drop(db);

    let instructions_note = if plan.callgrind {
        match instructions(&plan, &images, &queries) {
            Ok(counts) => {
                for (q, c) in queries.iter_mut().zip(counts) {
                    q.instructions = Some(c);
                }
                None
            }
            Err(e) => {
                eprintln!("cairndb-bench: no instruction counts: {e}");
                Some(e.to_string())
            }
        }
    } else {
        Some("this run was given --no-callgrind".into())
    };

    Ok(QueryResult {
        plan,
        inserts,
        segments,
        build,
        queries,
        eq_explain,
        eq_fetch,
        eq_compacted,
        instructions_note,
        wall: started.elapsed(),
    })
}

// ---------------------------------------------------------------------------------------------
// Instruction counts

/// Saves the images, runs one callgrind child per query workload (in parallel) and returns
/// their instruction counts, in [`QueryKind::ALL`] order. Each child must read exactly the
/// flash bytes the native run read, or its count is not of the same work.
fn instructions(plan: &QueryPlan, images: &[Vec<u8>], native: &[QueryPhase; 4]) -> Res<[u64; 4]> {
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match valgrind {
        Ok(o) if o.status.success() => {}
        _ => return Err("valgrind is not installed".into()),
    }
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("cairndb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Res<[u64; 4]> {
        for (k, img) in images.iter().enumerate() {
            std::fs::write(image_path(&dir, k), img)?;
        }
        let mut children = Vec::new();
        for kind in QueryKind::ALL {
            let out = dir.join(format!("{}.callgrind", kind.arg()));
            let child = Command::new("valgrind")
                .args(["--tool=callgrind", "-q", "--collect-atstart=no"])
                .arg(format!("--toggle-collect={MARKER}"))
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&exe)
                .args(["--callgrind-child", kind.arg()])
                .arg(plan.n.to_string())
                .arg(plan.counts[kind as usize].to_string())
                .arg(plan.seed.to_string())
                .arg(image_path(&dir, kind.indexes()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            children.push((kind, out, child));
        }
        // Wait for every child before judging any, so that none outlives its image files.
        let mut done = Vec::new();
        for (kind, out, child) in children {
            done.push((kind, out, child.wait_with_output()));
        }
        let mut counts = [0u64; 4];
        for (kind, out, o) in done {
            let o = o?;
            if !o.status.success() {
                return Err(format!(
                    "callgrind run of {} failed ({}): {}",
                    kind.arg(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )
                .into());
            }
            let stdout = String::from_utf8_lossy(&o.stdout);
            let read: u64 = field(&stdout, "bytes_read")?;
            let want = native[kind as usize].phase.flash.bytes_read;
            if read != want {
                return Err(format!(
                    "callgrind run of {} read {read} B, the native run {want} B: not the same work",
                    kind.arg()
                )
                .into());
            }
            counts[kind as usize] = callgrind_total(&std::fs::read_to_string(&out)?)?;
        }
        Ok(counts)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn image_path(dir: &Path, indexes: usize) -> PathBuf {
    dir.join(format!("indexes-{indexes}.img"))
}

/// `name=value` from a child's output line.
fn field(out: &str, name: &str) -> Res<u64> {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .ok_or_else(|| format!("no {name} in `{}`", out.trim()))?
        .parse()
        .map_err(|e| format!("bad {name}: {e}").into())
}

/// The instruction total of a callgrind output file (its `totals:` or `summary:` line).
fn callgrind_total(text: &str) -> Res<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .ok_or("no totals in the callgrind output")?
        .parse()
        .map_err(|e| format!("bad callgrind total: {e}").into())
}

/// The child side: `--callgrind-child KIND N COUNT SEED IMAGE`. Opens the image, runs the
/// queries inside the marker function, and prints what it read and returned.
pub fn child(args: &[String]) -> Res<()> {
    let [kind, n, count, seed, image] = args else {
        return Err("--callgrind-child needs KIND N COUNT SEED IMAGE".into());
    };
    let kind = QueryKind::from_arg(kind).ok_or("unknown query kind")?;
    let (n, count, seed): (usize, usize, u64) = (n.parse()?, count.parse()?, seed.parse()?);
    let fs = filters(kind, n, count, seed)?;
    let image = std::fs::read(image)?;
    let mut db = open_image(&image)?;
    let before = db.device().stats();
    let returned = cairndb_bench_measured_queries(&mut db, &fs, &FindOptions::default())?;
    let read = db.device().stats().since(before).bytes_read;
    println!("bytes_read={read} returned={returned}");
    Ok(())
}

/// The quick and full plans.
pub fn plan(quick: bool, seed: u64, callgrind: bool) -> QueryPlan {
    QueryPlan {
        n: if quick { 300 } else { 10_000 },
        counts: if quick {
            [50, 3, 10, 3]
        } else {
            [200, 10, 50, 10]
        },
        seed,
        callgrind,
    }
}
