//! The report: markdown tables of per-operation costs, the cost breakdown of cairndb's writes,
//! and the targets as PASS/MISS lines. The same text goes to the console and, for full
//! runs, to `bench/RESULTS.md`.

use crate::workload::{Kind, OpClass, OpCost, Phase, RunResult, GEOMETRY};
use cairndb::db::Config;
use std::fmt::Write as _;
use std::time::Duration;

/// A markdown table whose columns are padded to line up in a terminal too.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns after the first are right-aligned (numbers).
    numeric: bool,
}

impl Table {
    fn new(head: &[&str], numeric: bool) -> Self {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            numeric,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let cols = self.head.len();
        let mut w: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                w[i] = w[i].max(c.chars().count()).max(3);
            }
        }
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (i, width) in w.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = width - c.chars().count();
                if self.numeric && i > 0 {
                    let _ = write!(out, " {}{} |", " ".repeat(pad), c);
                } else {
                    let _ = write!(out, " {}{} |", c, " ".repeat(pad));
                }
            }
            out.push('\n');
        };
        line(out, &self.head);
        out.push('|');
        for (i, width) in w.iter().enumerate() {
            if self.numeric && i > 0 {
                let _ = write!(out, " {}: |", "-".repeat(width - 1));
            } else {
                let _ = write!(out, " {} |", "-".repeat(*width));
            }
        }
        out.push('\n');
        for r in &self.rows {
            line(out, r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Number formatting

/// An integer with thousands separators.
fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An average byte count: one decimal below 1,000, whole bytes above.
fn avg(v: f64) -> String {
    if v >= 1000.0 {
        int(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

fn erases(v: f64) -> String {
    format!("{v:.4}")
}

fn kib(bytes: usize) -> String {
    format!("{} ({:.1} KiB)", int(bytes as u64), bytes as f64 / 1024.0)
}

/// One operation's figure and its place in the phase, e.g. `269,984 (#296)`.
fn at(v: u64, c: &OpCost) -> String {
    format!("{} (#{})", int(v), c.index + 1)
}

/// Bytes read / programmed / erases of one operation.
fn triple(c: &OpCost) -> String {
    format!(
        "{} / {} / {}",
        int(c.flash.bytes_read),
        int(c.flash.bytes_programmed),
        c.flash.erases
    )
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Per-N table

type Cell = fn(&RunResult) -> Option<String>;

/// The rows of the main table: a label and how to fill each subject's cell.
fn rows(after_open: usize) -> Vec<(String, Cell)> {
    fn r(label: impl Into<String>, f: Cell) -> (String, Cell) {
        (label.into(), f)
    }
    vec![
        r("insert: programmed B/op", |x| {
            Some(avg(x.insert.prog_per_op()))
        }),
        r("insert: read B/op", |x| Some(avg(x.insert.read_per_op()))),
        r("insert: erases/op", |x| {
            Some(erases(x.insert.erases_per_op()))
        }),
        r(
            "insert: write amplification (programmed / JSON bytes)",
            |x| Some(format!("{:.2}x", x.insert.write_amplification())),
        ),
        r("insert: host wall time, µs/op", |x| {
            Some(format!("{:.1}", x.insert.us_per_op()))
        }),
        r("insert: peak heap, B", |x| {
            Some(int(x.insert.heap_peak as u64))
        }),
        r("insert: most bytes read by one op (op #)", |x| {
            Some(at(
                x.insert.worst_read.flash.bytes_read,
                &x.insert.worst_read,
            ))
        }),
        r("insert: most bytes programmed by one op (op #)", |x| {
            Some(at(
                x.insert.worst_prog.flash.bytes_programmed,
                &x.insert.worst_prog,
            ))
        }),
        r("insert: most erases by one op (op #)", |x| {
            Some(at(
                x.insert.worst_erases.flash.erases,
                &x.insert.worst_erases,
            ))
        }),
        r("insert: heap in use at the end, B", |x| {
            Some(int(x.insert.heap_end as u64))
        }),
        r("insert: folds / merges / root writes", |x| {
            x.kind.is_cairn().then(|| {
                let s = x.insert.store;
                format!("{} / {} / {}", s.folds, s.merges, s.root_writes)
            })
        }),
        r("get: read B/op", |x| Some(avg(x.get.read_per_op()))),
        r("get: programmed B/op", |x| Some(avg(x.get.prog_per_op()))),
        r("get: host wall time, µs/op", |x| {
            Some(format!("{:.1}", x.get.us_per_op()))
        }),
        r("get: peak heap, B", |x| Some(int(x.get.heap_peak as u64))),
        r("get: most bytes read by one op (op #)", |x| {
            Some(at(x.get.worst_read.flash.bytes_read, &x.get.worst_read))
        }),
        r("patch: programmed B/op", |x| {
            Some(avg(x.patch.prog_per_op()))
        }),
        r("patch: read B/op", |x| Some(avg(x.patch.read_per_op()))),
        r("patch: erases/op", |x| {
            Some(erases(x.patch.erases_per_op()))
        }),
        r("patch: host wall time, µs/op", |x| {
            Some(format!("{:.1}", x.patch.us_per_op()))
        }),
        r("patch: peak heap, B", |x| {
            Some(int(x.patch.heap_peak as u64))
        }),
        r("patch: most bytes read by one op (op #)", |x| {
            Some(at(x.patch.worst_read.flash.bytes_read, &x.patch.worst_read))
        }),
        r("patch: most erases by one op (op #)", |x| {
            Some(at(x.patch.worst_erases.flash.erases, &x.patch.worst_erases))
        }),
        r("delete: programmed B/op", |x| {
            Some(avg(x.delete.prog_per_op()))
        }),
        r("delete: read B/op", |x| Some(avg(x.delete.read_per_op()))),
        r("delete: erases/op", |x| {
            Some(erases(x.delete.erases_per_op()))
        }),
        r("delete: host wall time, µs/op", |x| {
            Some(format!("{:.1}", x.delete.us_per_op()))
        }),
        r("delete: peak heap, B", |x| {
            Some(int(x.delete.heap_peak as u64))
        }),
        r("delete: most bytes read by one op (op #)", |x| {
            Some(at(
                x.delete.worst_read.flash.bytes_read,
                &x.delete.worst_read,
            ))
        }),
        r("delete: most erases by one op (op #)", |x| {
            Some(at(
                x.delete.worst_erases.flash.erases,
                &x.delete.worst_erases,
            ))
        }),
        r("open after clean close: read B", |x| {
            Some(int(x.open_clean.flash.bytes_read))
        }),
        r(
            "open after clean close: WAL replayed into the memtable, B",
            |x| x.replayed_clean.map(|b| int(b as u64)),
        ),
        r("open after clean close: host wall time, µs", |x| {
            Some(format!("{:.0}", x.open_clean.us_per_op()))
        }),
        r("open after clean close: peak heap, B", |x| {
            Some(int(x.open_clean.heap_peak as u64))
        }),
        r("open after flush + close: read B", |x| {
            x.open_flushed.map(|p| int(p.flash.bytes_read))
        }),
        r(
            "open after a power cut, k un-flushed commits: read B (k)",
            |x| {
                Some(format!(
                    "{} (k={})",
                    int(x.open_crash.flash.bytes_read),
                    x.crash_commits
                ))
            },
        ),
        r("open after a power cut: peak heap, B", |x| {
            Some(int(x.open_crash.heap_peak as u64))
        }),
        r(
            "first insert after open: read B / programmed B / erases",
            |x| Some(triple(&x.first_insert.worst_read)),
        ),
        r(
            format!("next {after_open} inserts after open: most bytes read by one op (op #)"),
            |x| {
                Some(at(
                    x.after_open.worst_read.flash.bytes_read,
                    &x.after_open.worst_read,
                ))
            },
        ),
        r(
            format!("next {after_open} inserts after open: read B/op, erases/op"),
            |x| {
                Some(format!(
                    "{} / {}",
                    avg(x.after_open.read_per_op()),
                    erases(x.after_open.erases_per_op())
                ))
            },
        ),
        r("end: flash blocks in use (of 2,048)", |x| {
            Some(int(u64::from(x.blocks_used)))
        }),
        r("end: erases, total", |x| Some(int(x.erases_total))),
        r("end: wear, min / max erases of a block", |x| {
            Some(format!("{} / {}", x.wear.0, x.wear.1))
        }),
        r("end: live segments", |x| {
            x.kind.is_cairn().then(|| x.segments.to_string())
        }),
        r("run: host wall time (setup included)", |x| {
            Some(secs(x.wall))
        }),
    ]
}

fn for_n(results: &[RunResult], n: usize) -> Vec<&RunResult> {
    Kind::ALL
        .iter()
        .filter_map(|k| results.iter().find(|r| r.kind == *k && r.plan.n == n))
        .collect()
}

fn main_table(out: &mut String, results: &[RunResult], n: usize) {
    let cols = for_n(results, n);
    let Some(first) = cols.first() else { return };
    let plan = first.plan;
    let user = first.insert.user_bytes as f64 / first.insert.ops.max(1) as f64;
    let _ = writeln!(
        out,
        "### N = {} documents\n\n{} inserts (one commit each; averages include every fold and \
         merge), then {} gets, {} patches and {} deletes of random ids. Documents average {:.1} \
         bytes of JSON.\n",
        int(n as u64),
        int(n as u64),
        int(plan.ops as u64),
        int(plan.ops as u64),
        int(plan.ops as u64),
        user
    );
    let mut head = vec!["metric"];
    head.extend(cols.iter().map(|r| r.kind.label()));
    let mut t = Table::new(&head, true);
    for (label, cell) in rows(plan.after_open) {
        let mut row = vec![label];
        row.extend(cols.iter().map(|r| cell(r).unwrap_or_else(|| "-".into())));
        t.row(row);
    }
    t.render(out);
    out.push('\n');
}

/// Where cairndb's write costs go: operations split by what the store did during them.
fn breakdown(out: &mut String, results: &[RunResult], n: usize) {
    let Some(r) = results
        .iter()
        .find(|r| r.kind == Kind::CairnAes && r.plan.n == n)
    else {
        return;
    };
    let _ = writeln!(
        out,
        "#### Where cairndb AES's write costs go, N = {}\n",
        int(n as u64)
    );
    let mut t = Table::new(
        &[
            "phase",
            "operations",
            "count",
            "programmed B/op",
            "read B/op",
            "erases/op",
            "share of programmed",
            "share of read",
            "share of erases",
        ],
        true,
    );
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * part as f64 / whole as f64)
        }
    };
    for (name, p) in [
        ("insert", &r.insert),
        ("patch", &r.patch),
        ("delete", &r.delete),
    ] {
        for c in OpClass::ALL {
            let b = p.bucket(c);
            if b.ops == 0 {
                continue;
            }
            let per = |v: u64| v as f64 / b.ops as f64;
            t.row(vec![
                name.to_string(),
                c.label().to_string(),
                int(b.ops),
                avg(per(b.flash.bytes_programmed)),
                avg(per(b.flash.bytes_read)),
                erases(per(b.flash.erases)),
                share(b.flash.bytes_programmed, p.flash.bytes_programmed),
                share(b.flash.bytes_read, p.flash.bytes_read),
                share(b.flash.erases, p.flash.erases),
            ]);
        }
    }
    t.render(out);
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Targets

struct Target {
    what: String,
    measured: String,
    limit: String,
    /// measured / limit (pass when <= 1).
    fraction: f64,
}

fn peak_heap(r: &RunResult) -> (usize, &'static str) {
    let mut phases: Vec<(&Phase, &'static str)> = vec![
        (&r.insert, "insert"),
        (&r.get, "get"),
        (&r.patch, "patch"),
        (&r.delete, "delete"),
        (&r.open_clean, "open"),
        (&r.first_insert, "first insert after open"),
        (&r.after_open, "inserts after open"),
        (&r.open_crash, "open after a power cut"),
    ];
    if let Some(p) = &r.open_flushed {
        phases.push((p, "open after flush"));
    }
    phases
        .into_iter()
        .map(|(p, name)| (p.heap_peak, name))
        .max_by_key(|(h, _)| *h)
        .unwrap_or((0, "-"))
}

fn targets(results: &[RunResult]) -> Vec<Target> {
    let mut ns: Vec<usize> = results.iter().map(|r| r.plan.n).collect();
    ns.sort_unstable();
    ns.dedup();
    let (Some(&small), Some(&large)) = (ns.first(), ns.last()) else {
        return Vec::new();
    };
    let find = |k: Kind, n: usize| results.iter().find(|r| r.kind == k && r.plan.n == n);
    let mut out = Vec::new();
    let ratio = |what: String, aes: f64, base: f64, limit: f64, unit: &str| {
        let x = if base > 0.0 {
            aes / base
        } else {
            f64::INFINITY
        };
        Target {
            what,
            measured: format!("{x:.2}x ({} vs {} {unit})", avg(aes), avg(base)),
            limit: format!("<= {limit}x"),
            fraction: x / limit,
        }
    };
    for &n in &ns {
        let (Some(a), Some(b)) = (find(Kind::CairnAes, n), find(Kind::Baseline, n)) else {
            continue;
        };
        let nn = int(n as u64);
        out.push(ratio(
            format!("insert: programmed B/op, AES vs littlefs, N={nn}"),
            a.insert.prog_per_op(),
            b.insert.prog_per_op(),
            1.2,
            "B",
        ));
        out.push(ratio(
            format!("patch: programmed B/op, AES vs littlefs, N={nn}"),
            a.patch.prog_per_op(),
            b.patch.prog_per_op(),
            1.2,
            "B",
        ));
        if n == small {
            out.push(ratio(
                format!("get: read B/op, AES vs littlefs, N={nn}"),
                a.get.read_per_op(),
                b.get.read_per_op(),
                0.25,
                "B",
            ));
        }
        if n == large {
            let (heap, phase) = peak_heap(a);
            out.push(Target {
                what: format!("peak heap, AES, N={nn}"),
                measured: format!("{} in {phase}", kib(heap)),
                limit: "<= 24 KiB".into(),
                fraction: heap as f64 / (24.0 * 1024.0),
            });
            let read = a.open_clean.flash.bytes_read;
            out.push(Target {
                what: format!("open after clean close: read B, AES, N={nn}"),
                measured: kib(read as usize),
                limit: "<= 8 KiB".into(),
                fraction: read as f64 / 8192.0,
            });
        }
    }
    out
}

fn targets_table(out: &mut String, results: &[RunResult]) {
    let mut t = Table::new(&["target", "measured", "limit", "result"], false);
    for x in targets(results) {
        let verdict = if x.fraction <= 1.0 {
            format!("PASS ({:.0}% under the limit)", (1.0 - x.fraction) * 100.0)
        } else {
            format!("MISS ({:.0}% over the limit)", (x.fraction - 1.0) * 100.0)
        };
        t.row(vec![x.what, x.measured, x.limit, verdict]);
    }
    t.render(out);
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Whole reports

fn setup(out: &mut String) {
    let cfg = Config::default();
    let (l, s) = (cfg.lfs, cfg.store);
    let g = GEOMETRY;
    let _ = writeln!(
        out,
        "- Flash: strict simulated NOR (`SimFlash`), read {} B, program {} B, block {} B, {} \
         blocks ({} MiB); each subject starts on a blank one.",
        g.read_size,
        g.prog_size,
        g.block_size,
        int(u64::from(g.block_count)),
        g.capacity() >> 20
    );
    let _ = writeln!(
        out,
        "- littlefs C 2.9.3 (`LFS_VERSION` 0x00020009, from littlefs2-sys {}), the same \
         `LfsConfig` for every subject (cairndb's `Config::default().lfs`): cache {} B, \
         lookahead {} B, block_cycles {}.",
        env!("BENCH_LITTLEFS2_SYS_VERSION"),
        if l.cache_size == 0 { 512 } else { l.cache_size },
        l.lookahead_size,
        l.block_cycles
    );
    let _ = writeln!(
        out,
        "- cairndb {} `Config::default()`: page {} B, WAL {} slots / fold at {} B, tier fanout \
         {}, at most {} segments, {} kept open. AES = `Key::Raw` (AES-256-CTR + HMAC-SHA256 \
         envelope); plain = `Key::None` (CRC-32C).",
        env!("CARGO_PKG_VERSION"),
        s.page_size,
        s.wal_slots,
        s.wal_fold_bytes,
        s.tier_fanout,
        s.max_segments,
        s.open_segments
    );
    let _ = writeln!(
        out,
        "- Baseline: littlefs used directly through cairndb's `lfs::Fs`, one file per document \
         holding its JSON text, named by id, in one directory for N <= 1,000 and in 100 \
         directories (`id % 100`) for N = 10,000. insert = `write_file`, get = `read_file`, \
         patch = read + parse + apply + `write_file`, delete = `remove`, open = mount."
    );
    let _ = writeln!(
        out,
        "- Documents: JSON like \
         `{{\"dev\":\"sensor-0042\",\"temp\":21.5,\"hum\":48,\"seq\":1234,\"ok\":true}}` with \
         pseudo-random values; ids chosen by a seeded SplitMix64; patch = \
         `{{\"$inc\":{{\"seq\":1}}}}`."
    );
    let _ = writeln!(out, "- Built with {}.", env!("BENCH_RUSTC_VERSION"));
}

fn notes(out: &mut String) {
    out.push_str(
        "How to read this:\n\
         - Flash counts (bytes read and programmed, erases) are exact: the simulator, the \
         PRNG and the workloads are deterministic, so they repeat run after run on any machine.\n\
         - Times are host wall-clock (this machine's CPU running the simulator), per operation; \
         they vary between runs and do not predict device time, where erases dominate \
         (45-300 ms per 4 KiB sector on SPI NOR).\n\
         - Heap is measured by a counting global allocator: the most bytes allocated at once \
         during the phase (its high-water mark is reset at each phase start), minus what the \
         harness itself holds (the flash image, the id lists).\n\
         - Averages are over the whole phase: folds, merges, root writes and metadata \
         compactions are included in the operation that triggered them. \"Most ... by one op\" \
         is the single most expensive operation of the phase (its latency on a device).\n\
         - Open after a clean close: cairndb's close does not fold, so that open replays \
         whatever the WAL held; \"open after flush + close\" shows an empty WAL. Open after a \
         power cut: cairndb's WAL is as full as it gets (the next commit would fold it), k \
         commits after a flush; the baseline is cut after 12 file creates.\n\
         - Inserts after open: the first block allocation after a mount makes littlefs scan \
         the whole volume (its lookahead); for cairndb that is the first fold, for the \
         baseline the first metadata split or file that needs a block.\n",
    );
}

/// The report for the console (any run).
pub fn console(results: &[RunResult], quick: bool) -> String {
    let mut out = String::new();
    out.push_str("## cairndb vs littlefs file-per-record\n\n");
    setup(&mut out);
    out.push('\n');
    body(&mut out, results, quick);
    out
}

fn body(out: &mut String, results: &[RunResult], quick: bool) {
    let mut ns: Vec<usize> = results.iter().map(|r| r.plan.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for &n in &ns {
        main_table(out, results, n);
        breakdown(out, results, n);
    }
    out.push_str("### Targets\n\n");
    if quick {
        out.push_str(
            "Quick run: the targets are set at N = 1,000 and 10,000; these figures at the \
             quick run's N are indicative only.\n\n",
        );
    }
    targets_table(out, results);
}

/// The contents of `bench/RESULTS.md` (full runs).
pub fn markdown(results: &[RunResult], total: Duration) -> String {
    let mut out = String::new();
    out.push_str(
        "# cairndb benchmark results\n\n\
         Generated by `cargo xtask bench` (the `bench/` crate, package `cairndb-bench`): \
         per-operation costs of cairndb beside littlefs used directly with one file per \
         record, on one simulated NOR flash. Regenerate with `cargo xtask bench`; \
         `cargo xtask bench --quick` runs a small version without writing this file.\n\n\
         ## Setup\n\n",
    );
    setup(&mut out);
    out.push('\n');
    notes(&mut out);
    out.push('\n');
    out.push_str("## Results\n\n");
    body(&mut out, results, false);
    let _ = writeln!(
        out,
        "Whole benchmark: {} of host wall-clock time.",
        secs(total)
    );
    out
}
