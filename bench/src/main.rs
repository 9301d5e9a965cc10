//! cairndb-bench: per-operation flash, time and heap costs of cairndb beside littlefs used
//! directly with one file per record, on one strict simulated NOR flash.
//!
//! `cargo xtask bench` (or `cargo run --profile bench-host -p cairndb-bench`) runs N = 1,000
//! and 10,000, then the query and index workloads at N = 10,000, and writes `bench/RESULTS.md`;
//! `--quick` runs N = 300 with fewer operations and only prints. It prints figures and
//! PASS/MISS against the targets; it never fails on them.
//!
//! Instruction counts of the queries come from this binary re-running itself under
//! `valgrind --tool=callgrind` (the hidden `--callgrind-child` mode, see `query.rs`).

mod heap;
mod query;
mod report;
mod workload;

use std::process::ExitCode;
use std::time::Instant;
use workload::{Kind, Plan};

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// The same seed for every run and subject, so that every figure but time repeats exactly.
const SEED: u64 = 0xCA1B_DB00_BE7C_0001;

const USAGE: &str = "usage: cairndb-bench [--quick] [--no-callgrind]
  (no option)     N = 1,000 and 10,000; 1,000 gets/patches/deletes; queries and indexes at
                  N = 10,000; writes bench/RESULTS.md
  --quick         N = 300; 100 gets/patches/deletes; queries at N = 300; prints only
  --no-callgrind  do not count the queries' instructions under valgrind
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--callgrind-child") {
        return match query::child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairndb-bench (callgrind child): error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut quick = false;
    let mut callgrind = true;
    for arg in &args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--no-callgrind" => callgrind = false,
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprint!("cairndb-bench: unknown option `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(quick, callgrind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairndb-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, callgrind: bool) -> workload::Res<()> {
    let plans: Vec<Plan> = if quick {
        vec![Plan {
            n: 300,
            ops: 100,
            after_open: 20,
            seed: SEED,
        }]
    } else {
        [1000, 10_000]
            .into_iter()
            .map(|n| Plan {
                n,
                ops: 1000,
                after_open: 50,
                seed: SEED,
            })
            .collect()
    };
    let started = Instant::now();
    let mut results = Vec::new();
    for plan in plans {
        for kind in Kind::ALL {
            eprint!("cairndb-bench: {} N={} ...", kind.label(), plan.n);
            let r = workload::run(kind, plan)?;
            eprintln!(" {:.1} s", r.wall.as_secs_f64());
            results.push(r);
        }
    }
    let qplan = query::plan(quick, SEED, callgrind);
    eprint!("cairndb-bench: queries and indexes N={} ...", qplan.n);
    let queries = query::run(qplan)?;
    eprintln!(" {:.1} s", queries.wall.as_secs_f64());
    let total = started.elapsed();
    print!("\n{}", report::console(&results, &queries, quick));
    println!("cairndb-bench: total {:.1} s (host)", total.as_secs_f64());
    if !quick {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
        std::fs::write(&path, report::markdown(&results, &queries, total))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("cairndb-bench: wrote {}", path.display());
    }
    Ok(())
}
