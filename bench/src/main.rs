//! cairndb-bench: per-operation flash, time and heap costs of cairndb beside littlefs used
//! directly with one file per record, on one strict simulated NOR flash.
//!
//! `cargo xtask bench` (or `cargo run --profile bench-host -p cairndb-bench`) runs N = 1,000
//! and 10,000 and writes `bench/RESULTS.md`; `--quick` runs N = 300 with fewer operations and
//! only prints. It prints figures and PASS/MISS against the targets; it never fails on them.

mod heap;
mod report;
mod workload;

use std::process::ExitCode;
use std::time::Instant;
use workload::{Kind, Plan};

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// The same seed for every run and subject, so that every figure but time repeats exactly.
const SEED: u64 = 0xCA1B_DB00_BE7C_0001;

const USAGE: &str = "usage: cairndb-bench [--quick]
  (no option)  N = 1,000 and 10,000; 1,000 gets/patches/deletes; writes bench/RESULTS.md
  --quick      N = 300; 100 gets/patches/deletes; prints only
";

fn main() -> ExitCode {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
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
    match run(quick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairndb-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool) -> workload::Res<()> {
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
    let total = started.elapsed();
    print!("\n{}", report::console(&results, quick));
    println!("cairndb-bench: total {:.1} s (host)", total.as_secs_f64());
    if !quick {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
        std::fs::write(&path, report::markdown(&results, total))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("cairndb-bench: wrote {}", path.display());
    }
    Ok(())
}
