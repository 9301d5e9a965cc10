//! The report: markdown tables of per-operation costs, the cost breakdown of cairndb's writes,
//! and the targets as PASS/MISS lines. The same text goes to the console and, for full
//! runs, to `bench/RESULTS.md`.

use crate::query::{QueryKind, QueryResult, INDEXES, RANGE_TENTHS};
use crate::workload::{Kind, OpClass, OpCost, Phase, RunResult, DEV_VALUES, GEOMETRY, TEMP_VALUES};
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
// Queries and indexes

/// What the query section measures, before its tables.
fn queries_intro(out: &mut String, q: &QueryResult) {
    let n = int(q.plan.n as u64);
    let c = q.plan.counts;
    let explain = |k: QueryKind| q.query(k).explain.clone();
    let _ = writeln!(
        out,
        "## Queries and indexes\n\n\
         What is measured (cairndb AES only, the documents, flash and configuration above):\n\
         - Three databases of the same N = {n} documents, inserted one commit each as above into \
         a collection with no index, with an index on `dev` (`{}`), and with indexes on `dev` and \
         `temp` (`{}`); the indexes are created on the empty collection, so every insert writes \
         its index entries in the document's own commit.\n\
         - Equality: `{{\"dev\":\"sensor-XXXX\"}}` for the `dev` of a random existing document \
         ({} queries through the index, {} by scanning). `dev` is drawn from {} values per \
         document, so a query returns about {:.2} documents on average at this N. Range: \
         `{{\"temp\":{{\"$gte\":a,\"$lt\":a+{:.2}}}}}`, {} of the {} tenths `temp` takes (~{:.1}% of \
         the documents; {} queries through the index, {} by scanning).\n\
         - Indexed queries run on the two-index database, scans on the index-less one (same \
         documents and ids), with the same filters. `explain` of the first query: equality \
         through the index `{}`, scan `{}`; range through the index `{}`, scan `{}`.\n\
         - Each workload starts on a fresh open of its database's image saved at a clean close \
         (so the WAL left at close is in the memtable, and the first query reads the catalog \
         and the index definitions, which later queries find cached). A query is a whole \
         `find` with default options whose results are counted and dropped.\n\
         - Instructions: this binary re-runs each workload under `valgrind --tool=callgrind`, \
         counting only inside the function that runs the finds (`--toggle-collect`), so opening \
         the database and preparing the filters are not counted; the re-run must read exactly \
         the flash bytes the measured run read. They are x86-64 instructions of the host build \
         (bench-host profile: opt-level 3), AES-NI and all: a relative measure of CPU work, not \
         Cortex-M cycles.\n\
         - Heap is the peak above what the harness holds, so it includes the open database.\n",
        INDEXES[0].0,
        INDEXES[1].0,
        int(c[0] as u64),
        int(c[1] as u64),
        int(DEV_VALUES),
        q.query(QueryKind::EqIndex).returned_per_query(),
        RANGE_TENTHS / 10.0,
        RANGE_TENTHS.ceil(),
        TEMP_VALUES,
        RANGE_TENTHS.ceil() * 100.0 / TEMP_VALUES as f64,
        int(c[2] as u64),
        int(c[3] as u64),
        explain(QueryKind::EqIndex),
        explain(QueryKind::EqScan),
        explain(QueryKind::RangeIndex),
        explain(QueryKind::RangeScan),
    );
}

/// `a / b` as `12.3x`, or `-`.
fn times(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.1}x", a / b)
    } else {
        "-".into()
    }
}

fn queries_section(out: &mut String, q: &QueryResult) {
    queries_intro(out, q);
    let n = int(q.plan.n as u64);
    let _ = writeln!(out, "### Per query, N = {n} documents\n");
    let mut head = vec!["metric"];
    head.extend(QueryKind::ALL.iter().map(|k| k.label()));
    let mut t = Table::new(&head, true);
    type QCell = fn(&crate::query::QueryPhase) -> String;
    let rows: [(&str, QCell); 12] = [
        ("queries", |x| int(x.phase.ops)),
        ("documents returned per query", |x| {
            format!("{:.2}", x.returned_per_query())
        }),
        ("read B/query", |x| avg(x.phase.read_per_op())),
        ("read B per returned document", |x| avg(x.read_per_doc())),
        ("flash read operations/query", |x| {
            avg(x.phase.flash.reads as f64 / x.phase.ops.max(1) as f64)
        }),
        ("most bytes read by one query (query #)", |x| {
            at(x.phase.worst_read.flash.bytes_read, &x.phase.worst_read)
        }),
        ("programmed B/query", |x| avg(x.phase.prog_per_op())),
        ("erases, all queries", |x| int(x.phase.flash.erases)),
        ("host wall time, µs/query", |x| {
            format!("{:.1}", x.phase.us_per_op())
        }),
        ("instructions/query (callgrind)", |x| {
            x.instructions_per_query()
                .map_or_else(|| "-".into(), |i| int(i.round() as u64))
        }),
        ("instructions per returned document", |x| {
            x.instructions.filter(|_| x.returned > 0).map_or_else(
                || "-".into(),
                |i| int((i as f64 / x.returned as f64).round() as u64),
            )
        }),
        ("peak heap, B", |x| int(x.phase.heap_peak as u64)),
    ];
    for (label, cell) in rows {
        let mut row = vec![label.to_string()];
        row.extend(QueryKind::ALL.iter().map(|k| cell(q.query(*k))));
        t.row(row);
    }
    t.render(out);
    out.push('\n');
    if let Some(note) = &q.instructions_note {
        let _ = writeln!(out, "Instructions were not counted: {note}.\n");
    }

    // Index against scan.
    let mut t = Table::new(&["scan / index", "equality", "range ~1%"], true);
    let pair = |f: &dyn Fn(&crate::query::QueryPhase) -> f64| {
        [
            (QueryKind::EqScan, QueryKind::EqIndex),
            (QueryKind::RangeScan, QueryKind::RangeIndex),
        ]
        .map(|(s, i)| times(f(q.query(s)), f(q.query(i))))
        .to_vec()
    };
    let mut add = |label: &str, cells: Vec<String>| {
        let mut row = vec![label.to_string()];
        row.extend(cells);
        t.row(row);
    };
    add("read B/query", pair(&|x| x.phase.read_per_op()));
    add("host wall time/query", pair(&|x| x.phase.us_per_op()));
    add(
        "instructions/query",
        pair(&|x| x.instructions_per_query().unwrap_or(0.0)),
    );
    t.render(out);
    out.push('\n');

    // Where an indexed equality query's reads go.
    let whole = &q.query(QueryKind::EqIndex).phase;
    let (e, g) = (&q.eq_explain, &q.eq_fetch);
    let _ = writeln!(
        out,
        "#### Where an indexed equality query's reads go, N = {n}\n\n\
         The same {} filters given to `explain` alone (collection and index definitions, \
         planning), and the documents the queries returned fetched with `get` by id alone, each \
         on its own fresh open; the rest is the index entry range scan and what else `find` \
         does. Approximate: `get` repeats the collection lookup that `explain` also counts. The \
         database has {} live segments when queried; the last row runs the same queries after \
         `compact` merged them into one.\n",
        int(whole.ops),
        q.query(QueryKind::EqIndex).segments
    );
    let mut t = Table::new(
        &[
            "part",
            "read B/query",
            "share of read",
            "flash read operations/query",
            "host µs/query",
        ],
        true,
    );
    let share = |b: f64| {
        let w = whole.read_per_op();
        if w > 0.0 {
            format!("{:.0}%", 100.0 * b / w)
        } else {
            "-".into()
        }
    };
    let reads = |p: &Phase| p.flash.reads as f64 / p.ops.max(1) as f64;
    let rest_read = whole.read_per_op() - e.read_per_op() - g.read_per_op();
    let c = &q.eq_compacted;
    let parts = [
        (
            "whole find through the index",
            whole.read_per_op(),
            reads(whole),
            whole.us_per_op(),
        ),
        (
            "explain alone (catalog, planning)",
            e.read_per_op(),
            reads(e),
            e.us_per_op(),
        ),
        (
            "get of the returned documents by id",
            g.read_per_op(),
            reads(g),
            g.us_per_op(),
        ),
        (
            "rest: index entry scan, find",
            rest_read,
            reads(whole) - reads(e) - reads(g),
            whole.us_per_op() - e.us_per_op() - g.us_per_op(),
        ),
    ];
    for (label, read, ops, us) in parts {
        t.row(vec![
            label.to_string(),
            avg(read),
            share(read),
            format!("{ops:.1}"),
            format!("{us:.1}"),
        ]);
    }
    t.row(vec![
        "whole find after `compact` (1 segment)".into(),
        avg(c.read_per_op()),
        "-".into(),
        format!("{:.1}", reads(c)),
        format!("{:.1}", c.us_per_op()),
    ]);
    t.render(out);
    out.push('\n');

    // Inserts with 0, 1, 2 indexes.
    let _ = writeln!(
        out,
        "### Insert cost with 0, 1 and 2 indexes, N = {n}\n\n\
         {n} inserts into each database, one commit each; averages include every fold and merge.\n"
    );
    let labels = [
        "no index".to_string(),
        format!("1 index (`{}`)", INDEXES[0].1),
        format!("2 indexes (`{}`, `{}`)", INDEXES[0].1, INDEXES[1].1),
    ];
    let mut head = vec!["metric"];
    head.extend(labels.iter().map(String::as_str));
    let mut t = Table::new(&head, true);
    let ins = &q.inserts;
    let ratio_row = |label: &str, f: fn(&Phase) -> f64, prev: bool| {
        let mut row = vec![label.to_string()];
        for k in 0..3usize {
            let base = if prev { k.saturating_sub(1) } else { 0 };
            row.push(if k == 0 {
                "1.00x".into()
            } else {
                let (a, b) = (f(&ins[k]), f(&ins[base]));
                if b > 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                }
            });
        }
        row
    };
    let mut row = |label: &str, f: &dyn Fn(usize) -> String| {
        let mut r = vec![label.to_string()];
        r.extend((0..3).map(f));
        t.row(r);
    };
    row("programmed B/insert", &|k| avg(ins[k].prog_per_op()));
    row("read B/insert", &|k| avg(ins[k].read_per_op()));
    row("erases/insert", &|k| erases(ins[k].erases_per_op()));
    row("host wall time, µs/insert", &|k| {
        format!("{:.1}", ins[k].us_per_op())
    });
    row("peak heap, B", &|k| int(ins[k].heap_peak as u64));
    row("folds / merges / root writes", &|k| {
        let s = ins[k].store;
        format!("{} / {} / {}", s.folds, s.merges, s.root_writes)
    });
    row("live segments at the end", &|k| q.segments[k].to_string());
    for r in [
        ratio_row("programmed vs no index", Phase::prog_per_op, false),
        ratio_row("programmed vs one index fewer", Phase::prog_per_op, true),
        ratio_row("read vs no index", Phase::read_per_op, false),
        ratio_row("erases vs no index", Phase::erases_per_op, false),
    ] {
        t.row(r);
    }
    t.render(out);
    out.push('\n');
    let b = &q.build;
    let _ = writeln!(
        out,
        "Building `{}` over the {n} documents of the index-less database (one `create_index`): \
         read {} B, programmed {} B, {} erases, {:.1} ms host time, peak heap {} B.\n",
        INDEXES[0].0,
        int(b.flash.bytes_read),
        int(b.flash.bytes_programmed),
        int(b.flash.erases),
        b.time.as_secs_f64() * 1e3,
        int(b.heap_peak as u64),
    );
}

// ---------------------------------------------------------------------------------------------
// Targets

struct Target {
    what: String,
    measured: String,
    limit: String,
    /// measured / limit: pass when <= 1, or when >= 1 for an `at_least` target.
    fraction: f64,
    /// The limit is a minimum (`>=`), not a maximum.
    at_least: bool,
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
            at_least: false,
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
                at_least: false,
            });
            let read = a.open_clean.flash.bytes_read;
            out.push(Target {
                what: format!("open after clean close: read B, AES, N={nn}"),
                measured: kib(read as usize),
                limit: "<= 8 KiB".into(),
                fraction: read as f64 / 8192.0,
                at_least: false,
            });
        }
    }
    out
}

/// The query and index targets, at the query workloads' N.
fn query_targets(q: &QueryResult) -> Vec<Target> {
    let nn = int(q.plan.n as u64);
    let mut out = Vec::new();
    let idx = q.query(QueryKind::EqIndex).phase.read_per_op();
    let scan = q.query(QueryKind::EqScan).phase.read_per_op();
    out.push(Target {
        what: format!("indexed point query: read B/query, N={nn}"),
        measured: format!(
            "{}, {:.2} docs/query",
            kib(idx.round() as usize),
            q.query(QueryKind::EqIndex).returned_per_query()
        ),
        limit: "<= 4 KiB".into(),
        fraction: idx / 4096.0,
        at_least: false,
    });
    let x = if idx > 0.0 { scan / idx } else { f64::INFINITY };
    out.push(Target {
        what: format!("indexed point query: scan reads / index reads, N={nn}"),
        measured: format!("{x:.1}x ({} vs {} B)", avg(scan), avg(idx)),
        limit: ">= 20x".into(),
        fraction: x / 20.0,
        at_least: true,
    });
    let mut heaps: Vec<(usize, String)> = QueryKind::ALL
        .iter()
        .map(|k| (q.query(*k).phase.heap_peak, format!("{} query", k.label())))
        .collect();
    for (k, p) in q.inserts.iter().enumerate() {
        heaps.push((p.heap_peak, format!("insert, {k} indexes")));
    }
    heaps.push((q.build.heap_peak, "index build".into()));
    if let Some((heap, phase)) = heaps.into_iter().max_by_key(|(h, _)| *h) {
        out.push(Target {
            what: format!("peak heap, AES, query and index workloads, N={nn}"),
            measured: format!("{} in {phase}", kib(heap)),
            limit: "<= 24 KiB".into(),
            fraction: heap as f64 / (24.0 * 1024.0),
            at_least: false,
        });
    }
    for k in 1..=2 {
        let (a, b) = (q.inserts[k].prog_per_op(), q.inserts[k - 1].prog_per_op());
        let x = if b > 0.0 { a / b } else { f64::INFINITY };
        out.push(Target {
            what: format!(
                "insert: programmed B/op, {k} index{} vs {}, N={nn}",
                if k == 1 { "" } else { "es" },
                k - 1
            ),
            measured: format!("{x:.2}x ({} vs {} B)", avg(a), avg(b)),
            limit: "<= 1.5x".into(),
            fraction: x / 1.5,
            at_least: false,
        });
    }
    out
}

fn targets_table(out: &mut String, results: &[RunResult], q: &QueryResult) {
    let mut t = Table::new(&["target", "measured", "limit", "result"], false);
    for x in targets(results).into_iter().chain(query_targets(q)) {
        let pass = if x.at_least {
            x.fraction >= 1.0
        } else {
            x.fraction <= 1.0
        };
        let off = (x.fraction - 1.0).abs() * 100.0;
        let verdict = match (pass, x.at_least) {
            (true, false) => format!("PASS ({off:.0}% under the limit)"),
            (false, false) => format!("MISS ({off:.0}% over the limit)"),
            (true, true) => format!("PASS ({off:.0}% over the minimum)"),
            (false, true) => format!("MISS ({off:.0}% under the minimum)"),
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
pub fn console(results: &[RunResult], q: &QueryResult, quick: bool) -> String {
    let mut out = String::new();
    out.push_str("## cairndb vs littlefs file-per-record\n\n");
    setup(&mut out);
    out.push('\n');
    body(&mut out, results, q, quick);
    out
}

fn body(out: &mut String, results: &[RunResult], q: &QueryResult, quick: bool) {
    let mut ns: Vec<usize> = results.iter().map(|r| r.plan.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for &n in &ns {
        main_table(out, results, n);
        breakdown(out, results, n);
    }
    queries_section(out, q);
    out.push_str("## Targets\n\n");
    if quick {
        out.push_str(
            "Quick run: the targets are set at N = 1,000 and 10,000; these figures at the \
             quick run's N are indicative only.\n\n",
        );
    }
    targets_table(out, results, q);
}

/// The contents of `bench/RESULTS.md` (full runs).
pub fn markdown(results: &[RunResult], q: &QueryResult, total: Duration) -> String {
    let mut out = String::new();
    out.push_str(
        "# cairndb benchmark results\n\n\
         Generated by `cargo xtask bench` (the `bench/` crate, package `cairndb-bench`): \
         per-operation costs of cairndb beside littlefs used directly with one file per \
         record, on one simulated NOR flash, then the costs of cairndb's queries and secondary \
         indexes. Regenerate with `cargo xtask bench`; \
         `cargo xtask bench --quick` runs a small version without writing this file.\n\n\
         ## Setup\n\n",
    );
    setup(&mut out);
    out.push('\n');
    notes(&mut out);
    out.push('\n');
    out.push_str("## Results\n\n");
    body(&mut out, results, q, false);
    let _ = writeln!(
        out,
        "Whole benchmark: {} of host wall-clock time.",
        secs(total)
    );
    out
}
