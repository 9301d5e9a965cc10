//! cairndb's task runner: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! No system dependencies: it must build on a fresh machine before anything else is installed,
//! because it is the thing that installs the rest (CI runs `.ci/run` -> `cargo xtask test`).
//! Its one crate dependency, cbindgen (for `header`), is pure Rust and comes through cargo.

use std::env;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Debian packages the project needs. A fresh CI machine has none of them; `ensure_tools`
/// installs the missing ones (as root) so every step below can rely on them.
const APT_PACKAGES: &[&str] = &[
    "libclang-dev",            // bindgen (littlefs2-sys) needs libclang
    "gcc-arm-none-eabi",       // C cross compiler for littlefs and the firmware
    "libnewlib-arm-none-eabi", // libc headers bindgen and the firmware build use
    "rustc-web",               // /usr/bin/rustc: a compiler whose std source we have...
    "cargo-web",               // ... /usr/bin/cargo to drive -Zbuild-std with it ...
    "rust-web-src",            // ... and that source (rustup cannot add targets here)
    "valgrind",
    "cmake",
    "ninja-build",
    "qemu-system-arm",
    "libcmocka-dev",
    "python3-venv", // venvs of steps zephyr (kconfiglib, PyYAML) and cli (littlefs-python)
];

/// Debian's compiler pair from rustc-web/cargo-web; rustup's cargo stays first on PATH.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
/// Where rust-web-src puts the std source that -Zbuild-std compiles.
const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
/// newlib's headers, for bindgen when it parses littlefs for a thumb target.
const NEWLIB_INCLUDE: &str = "/usr/lib/arm-none-eabi/include";

type StepResult = Result<(), String>;

struct Ctx {
    root: PathBuf,
    skip_install: bool,
}

struct Step {
    name: &'static str,
    about: &'static str,
    run: fn(&Ctx) -> StepResult,
}

/// Everything `cargo xtask test` runs, in order. Later work (C tests, QEMU, header check,
/// bench --quick, footprint) adds its rows here and nowhere else.
const STEPS: &[Step] = &[
    Step {
        name: "tools",
        about: "install missing Debian packages (as root); check rustfmt and clippy",
        run: |c| ensure_tools(c, true),
    },
    Step {
        name: "fmt",
        about: "cargo fmt --all -- --check",
        run: |c| run(cargo(c).args(["fmt", "--all", "--", "--check"])),
    },
    Step {
        name: "header",
        about: "include/cairndb.h is what cbindgen generates from c-api/ (cargo xtask header)",
        run: |c| header(c, true),
    },
    Step {
        name: "zephyr",
        about: "Zephyr module: module.yml, Kconfig (kconfiglib), sample.yaml, the CMake branch on stubs, cargo for each Rust target",
        run: zephyr_check,
    },
    Step {
        name: "clippy",
        about: "cargo clippy --workspace --all-targets --all-features -- -D warnings",
        run: |c| {
            run(cargo(c).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        },
    },
    Step {
        name: "test",
        about: "cargo test --workspace --all-features",
        run: |c| run(cargo(c).args(["test", "--workspace", "--all-features"])),
    },
    Step {
        name: "cli",
        about: "cairn (tools/cli): littlefs-python reads its images; the FreeRTOS firmware on QEMU reads a cairn image, and cairn reads what the firmware wrote",
        run: cli_round_trips,
    },
    Step {
        name: "c-tests",
        about: "C API tests and host C samples: cmake -G Ninja, build, ctest (under valgrind)",
        run: c_tests,
    },
    Step {
        name: "freertos-host",
        about: "freertos-port/ under the FreeRTOS scheduler on Linux (POSIX port): tests/freertos-posix",
        run: freertos_host,
    },
    Step {
        name: "bench-quick",
        about: "cargo run --profile bench-host -p cairndb-bench -- --quick",
        run: |c| {
            run(cargo(c).args([
                "run",
                "--profile",
                "bench-host",
                "-p",
                "cairndb-bench",
                "--",
                "--quick",
            ]))
        },
    },
    Step {
        name: "thumb",
        about: "no_std cross build of cairndb and the SPI NOR driver for thumbv7em-none-eabihf (Cortex-M4F)",
        run: |c| thumb_build(c, "thumbv7em-none-eabihf"),
    },
    Step {
        name: "thumb-c",
        about: "libcairndb.a cross built by CMake (tests/c/cross) for Cortex-M4F, M4 and M3; sizes; run on QEMU",
        run: |c| {
            for (cpu, triple) in CROSS_CPUS {
                thumb_c_build(c, cpu, triple)?;
            }
            Ok(())
        },
    },
    Step {
        name: "footprint",
        about: "code and static RAM of cairndb per configuration and of the FreeRTOS sample; fails past the baseline + 10% (cargo xtask footprint)",
        run: |c| footprint_cmd(c, false),
    },
    Step {
        name: "qemu",
        about: "FreeRTOS on QEMU mps2-an385: on-device tests and power cuts (cargo xtask qemu)",
        run: freertos_qemu,
    },
];

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--skip-install] [--only STEP[,STEP...]]
        run every step below in order, stop at the first failure, and end with
        `xtask: N passed, M failed` (what CI runs, through .ci/run)
  demo [--skip-install] [--host [-- ARGS...]]
        build the FreeRTOS firmware of samples/freertos/ (Cortex-M3) and run it on
        QEMU mps2-an385 twice: a first boot on blank flash, a reboot on the flash image
        it saved; --host runs the host program rust-lib/examples/demo.rs instead
  qemu [--skip-install]
        the FreeRTOS on-device tests (samples/freertos/qemu_test.c) on QEMU, then the
        power-cut test (QEMU killed at random moments while it commits); a step of `test`
  freertos-host [--skip-install]
        the FreeRTOS port's tests on the host (tests/freertos-posix): the real
        scheduler through FreeRTOS's POSIX port, heap_4, the host libcairndb.a;
        a step of `test`
  bench [--quick] [--skip-install]
        run the benchmarks (the bench/ crate, package cairndb-bench)
  footprint [--update-baseline] [--skip-install]
        code and static RAM of the library (harnesses of footprint/ linked for Cortex-M4F
        and M3: kv, full, all) and of the FreeRTOS sample firmware, the background task's
        stack use on QEMU; writes bench/FOOTPRINT.md, fails when a configuration grew more
        than 10% over bench/footprint-baseline.txt (--update-baseline rewrites it)
  help  show this text

options:
  --skip-install  do not run apt-get; only report missing Debian packages
  --only STEP     run only the named step(s); repeatable or comma-separated
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let ctx_root = repo_root();
    match dispatch(&ctx_root, &args) {
        Ok(code) => code,
        Err(CliError::Usage(msg)) => {
            eprintln!("xtask: {msg}");
            if args.is_empty() {
                eprint!("\n{}", help_text());
            } else {
                eprintln!("xtask: see `cargo xtask --help`");
            }
            ExitCode::from(2)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("xtask: error: {msg}");
            ExitCode::from(1)
        }
    }
}

enum CliError {
    Usage(String),
    Failed(String),
}

fn dispatch(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(CliError::Usage("no command given".into()));
    };
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!("{}", help_text());
            Ok(ExitCode::SUCCESS)
        }
        "test" => cmd_test(root, rest),
        "demo" => cmd_demo(root, rest),
        "qemu" => cmd_qemu(root, rest),
        "freertos-host" => cmd_freertos_host(root, rest),
        "bench" => cmd_bench(root, rest),
        "header" => cmd_header(root, rest),
        "footprint" => cmd_footprint(root, rest),
        other => Err(CliError::Usage(format!("unknown command `{other}`"))),
    }
}

fn help_text() -> String {
    let mut s = String::from(USAGE);
    s.push_str("\nsteps of `test`, in order:\n");
    for step in STEPS {
        s.push_str(&format!("  {:<13} {}\n", step.name, step.about));
    }
    s
}

/// The workspace root: xtask lives one level below it. Commands run from there so that
/// `cargo xtask` behaves the same from any directory.
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cmd_test(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    let mut only: Vec<String> = Vec::new();
    let mut only_given = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            "--only" => {
                let value = it
                    .next()
                    .ok_or_else(|| CliError::Usage("--only needs a step name".into()))?;
                only_given = true;
                only.extend(split_list(value));
            }
            "-h" | "--help" => {
                print!("{}", help_text());
                return Ok(ExitCode::SUCCESS);
            }
            s if s.starts_with("--only=") => {
                only_given = true;
                only.extend(split_list(&s["--only=".len()..]));
            }
            s => return Err(CliError::Usage(format!("unknown option `{s}` for `test`"))),
        }
    }
    if only_given && only.is_empty() {
        return Err(CliError::Usage("--only needs a step name".into()));
    }
    for name in &only {
        if !STEPS.iter().any(|s| s.name == name) {
            let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
            return Err(CliError::Usage(format!(
                "unknown step `{name}` (steps: {})",
                names.join(", ")
            )));
        }
    }

    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    let selected: Vec<&Step> = STEPS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
        .collect();

    let total = selected.len();
    let started = Instant::now();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut times: Vec<(&str, Duration, bool)> = Vec::new();
    for (i, step) in selected.iter().enumerate() {
        println!("\n==> [{}/{}] {}: {}", i + 1, total, step.name, step.about);
        let t = Instant::now();
        let result = (step.run)(&ctx);
        let dt = t.elapsed();
        times.push((step.name, dt, result.is_ok()));
        match result {
            Ok(()) => {
                passed += 1;
                println!("<== {} ok ({})", step.name, secs(dt));
            }
            Err(msg) => {
                failed += 1;
                flush();
                eprintln!("<== {} FAILED ({}): {msg}", step.name, secs(dt));
                break; // later steps depend on earlier ones: stop at the first failure
            }
        }
    }

    println!();
    for (name, dt, ok) in &times {
        println!(
            "  {:<13} {:>8}  {}",
            name,
            secs(*dt),
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let not_run = total - times.len();
    if not_run > 0 {
        println!("  ({not_run} step(s) not run after the failure)");
    }
    println!("  {:<13} {:>8}", "total", secs(started.elapsed()));
    // The last line, alone: CI reads it as the run's count.
    println!("xtask: {passed} passed, {failed} failed");
    flush();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_demo(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    let mut host = false;
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            "--host" => host = true,
            "--" => {
                extra.extend(it.by_ref().cloned());
            }
            s => return Err(CliError::Usage(format!("unknown option `{s}` for `demo`"))),
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    if !host && !extra.is_empty() {
        return Err(CliError::Usage(
            "arguments after `--` are for the host demo (`demo --host -- ARGS`)".into(),
        ));
    }
    ensure_tools(&ctx, false).map_err(CliError::Failed)?;

    if host {
        // The host program of rust-lib/examples/demo.rs (std feature, a flash image file).
        let mut cmd = cargo(&ctx);
        cmd.args([
            "run",
            "--release",
            "-p",
            "cairndb",
            "--features",
            "std",
            "--example",
            "demo",
        ]);
        if !extra.is_empty() {
            cmd.arg("--").args(&extra);
        }
        run(&mut cmd).map_err(CliError::Failed)?;
        return Ok(ExitCode::SUCCESS);
    }
    freertos_demo(&ctx).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_qemu(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    for arg in args {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            s => return Err(CliError::Usage(format!("unknown option `{s}` for `qemu`"))),
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    ensure_tools(&ctx, false).map_err(CliError::Failed)?;
    freertos_qemu(&ctx).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_freertos_host(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    for arg in args {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            s => {
                return Err(CliError::Usage(format!(
                    "unknown option `{s}` for `freertos-host`"
                )))
            }
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    ensure_tools(&ctx, false).map_err(CliError::Failed)?;
    freertos_host(&ctx).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_bench(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            "--quick" => quick = true,
            s => return Err(CliError::Usage(format!("unknown option `{s}` for `bench`"))),
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    ensure_tools(&ctx, false).map_err(CliError::Failed)?;

    let manifest = root.join("bench/Cargo.toml");
    if !manifest.is_file() {
        return Err(CliError::Failed(format!(
            "{} does not exist yet: the benchmark crate (package cairndb-bench) has not been written",
            manifest.display()
        )));
    }
    let mut cmd = cargo(&ctx);
    // bench-host: release with opt-level 3 and unwinding (see the workspace Cargo.toml).
    cmd.args([
        "run",
        "--profile",
        "bench-host",
        "-p",
        "cairndb-bench",
        "--",
    ]);
    if quick {
        cmd.arg("--quick");
    }
    run(&mut cmd).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_footprint(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut skip_install = false;
    let mut update = false;
    for arg in args {
        match arg.as_str() {
            "--skip-install" => skip_install = true,
            "--update-baseline" => update = true,
            s => {
                return Err(CliError::Usage(format!(
                    "unknown option `{s}` for `footprint`"
                )))
            }
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install,
    };
    ensure_tools(&ctx, false).map_err(CliError::Failed)?;
    footprint_cmd(&ctx, update).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_header(root: &Path, args: &[String]) -> Result<ExitCode, CliError> {
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            s => {
                return Err(CliError::Usage(format!(
                    "unknown option `{s}` for `header`"
                )))
            }
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        skip_install: true,
    };
    header(&ctx, check).map_err(CliError::Failed)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// C header

/// The committed header, relative to the workspace root.
const HEADER: &str = "include/cairndb.h";

/// The version macros, from the workspace version (xtask shares it with c-api).
fn version_macros() -> String {
    let v = env!("CARGO_PKG_VERSION");
    let num = |s: &str| s.parse::<u32>().unwrap_or(0);
    let (major, minor, patch) = (
        num(env!("CARGO_PKG_VERSION_MAJOR")),
        num(env!("CARGO_PKG_VERSION_MINOR")),
        num(env!("CARGO_PKG_VERSION_PATCH")),
    );
    format!(
        "\n/** The version of this header; cairn_version_string() is the library's. */\n\
         #define CAIRN_VERSION \"{v}\"\n\
         #define CAIRN_VERSION_MAJOR {major}\n\
         #define CAIRN_VERSION_MINOR {minor}\n\
         #define CAIRN_VERSION_PATCH {patch}\n\
         /** major * 1000000 + minor * 1000 + patch; compare with cairn_version(). */\n\
         #define CAIRN_VERSION_NUMBER {}\n",
        major * 1_000_000 + minor * 1000 + patch
    )
}

/// What cbindgen makes of c-api/ with c-api/cbindgen.toml, plus the version macros.
fn generate_header(root: &Path) -> Result<String, String> {
    let crate_dir = root.join("c-api");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| format!("c-api/cbindgen.toml: {e}"))?;
    config.after_includes = Some(version_macros());
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    let text = String::from_utf8(out).map_err(|e| format!("cbindgen wrote non-UTF-8: {e}"))?;
    Ok(parenthesize_negative_macros(&text))
}

/// `#define CAIRN_ERR_IO -1` -> `#define CAIRN_ERR_IO (-1)`, so that `x-CAIRN_ERR_IO` and
/// friends mean what they say.
fn parenthesize_negative_macros(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let mut parts = body.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("#define"), Some(name), Some(value))
                if value.starts_with('-') && value[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                out.push_str(&format!("#define {name} ({value})"));
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Writes include/cairndb.h, or with `check` fails when the committed one differs.
fn header(ctx: &Ctx, check: bool) -> StepResult {
    let text = generate_header(&ctx.root)?;
    let path = ctx.root.join(HEADER);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if old == text {
            println!(
                "xtask: {HEADER} is up to date ({} lines)",
                text.lines().count()
            );
            return Ok(());
        }
        let line = old
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(old.lines().count().min(text.lines().count()))
            + 1;
        return Err(format!(
            "{HEADER} is stale (first difference at line {line}): run `cargo xtask header` and commit it"
        ));
    }
    if old == text {
        println!("xtask: {HEADER} unchanged");
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("xtask: wrote {HEADER} ({} lines)", text.lines().count());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// C tests

/// Configures the top-level CMakeLists.txt (a plain CMake entry point) in target/c-tests,
/// builds libcairndb.a through it (dev profile: unwinding, so the catch_unwind guards are the
/// ones exercised) with the C tests and samples, and runs CTest, which runs each under valgrind.
fn c_tests(ctx: &Ctx) -> StepResult {
    let build = ctx.root.join("target/c-tests");
    run(Command::new("cmake")
        .current_dir(&ctx.root)
        .args(["-G", "Ninja", "-S", "."])
        .arg("-B")
        .arg(&build)
        .args(["-DCAIRNDB_CARGO_PROFILE=dev", "-DCAIRNDB_BUILD_TESTS=ON"]))?;
    run(Command::new("cmake").arg("--build").arg(&build))?;
    run(Command::new("ctest")
        .arg("--test-dir")
        .arg(&build)
        .args(["--output-on-failure", "--no-tests=error"]))
}

// ---------------------------------------------------------------------------------------------
// The FreeRTOS port on the host

/// Longest run of the FreeRTOS host test program; its own watchdog ends a hung test after
/// 30 s, this bounds everything else (the scheduler's shutdown, a wedged process).
const FREERTOS_HOST_TIMEOUT_S: u32 = 180;

/// `cargo xtask freertos-host` (and the step of that name): configures tests/freertos-posix/
/// (FreeRTOS-Kernel V11.2 from `freertos-next` with its POSIX port and heap_4, the port from
/// freertos-port/, libcairndb.a for the host in the dev profile as step c-tests builds it) in
/// target/freertos-posix, builds it, and runs tick32_clock (the clock's wrap with 32-bit
/// ticks) and freertos_posix_test (the port under the scheduler), each under `timeout`.
fn freertos_host(ctx: &Ctx) -> StepResult {
    let kernel = freertos_kernel_dir(ctx)?;
    println!("xtask: FreeRTOS kernel sources: {}", kernel.display());
    let src = ctx.root.join("tests/freertos-posix");
    let build = ctx.root.join("target/freertos-posix");
    run(Command::new("cmake")
        .args(["-G", "Ninja", "-S"])
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCAIRNDB_DIR={}", ctx.root.display()))
        .arg(format!("-DFREERTOS_KERNEL_DIR={}", kernel.display())))?;
    run(Command::new("cmake").arg("--build").arg(&build))?;
    let t = Instant::now();
    run_with_timeout(&build.join("tick32_clock"), 30)?;
    run_with_timeout(&build.join("freertos_posix_test"), FREERTOS_HOST_TIMEOUT_S)?;
    println!(
        "xtask: the FreeRTOS port's host tests ran in {}",
        secs(t.elapsed())
    );
    Ok(())
}

/// Runs `program` under `timeout` (SIGTERM after `limit_s`, SIGKILL 10 s later), so that a
/// hang fails the step instead of stalling it.
fn run_with_timeout(program: &Path, limit_s: u32) -> StepResult {
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", &limit_s.to_string()])
        .arg(program)
        .stdin(Stdio::null());
    run(&mut cmd).map_err(|e| {
        if e.ends_with("status 124") || e.ends_with("status 137") {
            format!(
                "{e}: {} did not finish within {limit_s} s",
                program.display()
            )
        } else {
            e
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Zephyr module

/// What the venv of step zephyr holds (pinned, from PyPI through pip).
const ZEPHYR_PY_PACKAGES: &[&str] = &["kconfiglib==14.1.0", "PyYAML==6.0.2"];
/// Debian's Python, whose venv module python3-venv provides.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// The Rust triples the module maps cores to (as zephyr-lang-rust does), with the C compiler
/// the board's Zephyr toolchain stands for here and its nm: the Kconfig check writes a .config
/// selecting each, and this step builds each. x86_64-unknown-none is native_sim/native/64,
/// whose C compiler is the host's.
const ZEPHYR_TRIPLES: &[(&str, &str, &str)] = &[
    (
        "thumbv6m-none-eabi",
        "arm-none-eabi-gcc",
        "arm-none-eabi-nm",
    ),
    (
        "thumbv7m-none-eabi",
        "arm-none-eabi-gcc",
        "arm-none-eabi-nm",
    ),
    (
        "thumbv7em-none-eabi",
        "arm-none-eabi-gcc",
        "arm-none-eabi-nm",
    ),
    (
        "thumbv7em-none-eabihf",
        "arm-none-eabi-gcc",
        "arm-none-eabi-nm",
    ),
    (
        "thumbv8m.main-none-eabi",
        "arm-none-eabi-gcc",
        "arm-none-eabi-nm",
    ),
    ("x86_64-unknown-none", "gcc", "nm"),
];

/// Checks what of the Zephyr module can be checked without Zephyr's tree (which cannot be
/// brought here, so `west build` is not run): zephyr/module.yml, the Kconfig tree and the
/// samples' sample.yaml (zephyr-module/check/check_zephyr.py, in a venv under target/); the
/// root CMakeLists.txt's Zephyr branch configured against stubbed zephyr_* functions; and for
/// every Rust target the module maps (five Cortex-M triples and native_sim/native/64's) the
/// cargo command line that branch runs, printed by the same CMake code (cmake -P) from the
/// Kconfig check's .config and run as printed.
fn zephyr_check(ctx: &Ctx) -> StepResult {
    let python = zephyr_venv(ctx)?;
    let out = ctx.root.join("target/zephyr-check");
    run(Command::new(&python)
        .current_dir(&ctx.root)
        .arg("zephyr-module/check/check_zephyr.py")
        .arg(&ctx.root)
        .arg(&out))?;

    // The Zephyr branch of the CMake code, for the default configuration and for one with
    // the shell and a backup partition (sensor_log's).
    for (config, expect) in [
        (
            "thumbv7m-none-eabi.config",
            &["CAIRN_ZEPHYR_PARTITION=storage_partition"][..],
        ),
        (
            "sample-sensor_log-mps2_an385.config",
            &[
                "cairn_zephyr_shell.c",
                "CAIRN_ZEPHYR_BACKUP_PARTITION=cairndb_backup_partition",
            ][..],
        ),
    ] {
        zephyr_cmake_stub(ctx, &out.join(config), expect)?;
    }

    thumb_cargo(ctx, "thumbv7m-none-eabi")?; // the cross prerequisites, with their messages
    for (triple, cc, nm) in ZEPHYR_TRIPLES {
        let config = out.join(format!("{triple}.config"));
        let printed = zephyr_cargo_command(ctx, &config, cc, &ctx.root.join("target/thumb"))?;
        if printed.triple != *triple {
            return Err(format!(
                "the CMake code maps {} to `{}`, expected `{triple}`",
                config.display(),
                printed.triple
            ));
        }
        let Some((program, args)) = printed.args.split_first() else {
            return Err("print_cargo_command.cmake printed no command".into());
        };
        run(Command::new(program).args(args).current_dir(&ctx.root))?;
        let bytes = std::fs::metadata(&printed.library)
            .map_err(|e| format!("cargo succeeded but {}: {e}", printed.library))?
            .len();
        let symbols = capture(
            Command::new(nm)
                .args(["-g", "--defined-only"])
                .arg(&printed.library),
        )?;
        let stray: Vec<&str> = symbols
            .lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [_, "T", name] if !name.starts_with("cairn_") && !name.starts_with("lfs_") => {
                    Some(name)
                }
                _ => None,
            })
            .collect();
        if !stray.is_empty() {
            return Err(format!(
                "{} exports more than the C API and littlefs: {stray:?}",
                printed.library
            ));
        }
        println!(
            "xtask: zephyr: {triple}: {} ({bytes} bytes)",
            printed.library
        );
    }
    Ok(())
}

/// The venv with kconfiglib and PyYAML, made once (a marker file names what it holds).
fn zephyr_venv(ctx: &Ctx) -> Result<PathBuf, String> {
    let venv = ctx.root.join("target/zephyr-venv");
    let python = venv.join("bin/python");
    let marker = venv.join("cairndb-packages.txt");
    let want = ZEPHYR_PY_PACKAGES.join("\n");
    if python.is_file() && std::fs::read_to_string(&marker).ok().as_deref() == Some(&want) {
        return Ok(python);
    }
    run(Command::new(DEBIAN_PYTHON)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .map_err(|e| format!("{e} (the Debian package python3-venv provides venv)"))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(ZEPHYR_PY_PACKAGES))?;
    std::fs::write(&marker, want).map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(python)
}

/// What print_cargo_command.cmake printed.
struct CargoCommand {
    triple: String,
    library: String,
    args: Vec<String>,
}

/// Runs zephyr-module/cmake/print_cargo_command.cmake for a .config (the cargo command line
/// the Zephyr build would run) and parses its lines.
fn zephyr_cargo_command(
    ctx: &Ctx,
    config: &Path,
    cc: &str,
    target_dir: &Path,
) -> Result<CargoCommand, String> {
    let text = capture(
        Command::new("cmake")
            .current_dir(&ctx.root)
            .arg(format!("-DDOTCONFIG={}", config.display()))
            .arg(format!("-DC_COMPILER={cc}"))
            .arg(format!("-DSOURCE_DIR={}", ctx.root.display()))
            .arg(format!("-DTARGET_DIR={}", target_dir.display()))
            .args(["-P", "zephyr-module/cmake/print_cargo_command.cmake"]),
    )?;
    let mut cmd = CargoCommand {
        triple: String::new(),
        library: String::new(),
        args: Vec::new(),
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("TRIPLE=") {
            cmd.triple = v.to_string();
        } else if let Some(v) = line.strip_prefix("LIBRARY=") {
            cmd.library = v.to_string();
        } else if let Some(v) = line.strip_prefix("ARG=") {
            cmd.args.push(v.to_string());
        }
    }
    Ok(cmd)
}

/// Configures the root CMakeLists.txt as Zephyr would (zephyr-module/check/cmake-stub) for a
/// .config and checks its report: the glue gets its sources and definitions (`expect`, each
/// found in the report), `app` links the imported library, and that library is the one the
/// printed cargo command builds.
fn zephyr_cmake_stub(ctx: &Ctx, config: &Path, expect: &[&str]) -> StepResult {
    let name = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let build = ctx.root.join("target/zephyr-check/cmake").join(&name);
    run(Command::new("cmake")
        .current_dir(&ctx.root)
        .args(["-G", "Ninja", "-S", "zephyr-module/check/cmake-stub", "-B"])
        .arg(&build)
        .arg(format!("-DCAIRNDB_DIR={}", ctx.root.display()))
        .arg(format!("-DDOTCONFIG={}", config.display()))
        .arg(format!(
            "-DCMAKE_TOOLCHAIN_FILE={}",
            ctx.root.join("tests/c/cross/arm-none-eabi.cmake").display()
        ))
        .arg("-DCAIRNDB_TEST_CPU=cortex-m3"))?;
    let report_path = build.join("zephyr-stub-report.txt");
    let report = std::fs::read_to_string(&report_path)
        .map_err(|e| format!("{}: {e}", report_path.display()))?;
    let field = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|l| l.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let printed = zephyr_cargo_command(
        ctx,
        config,
        "arm-none-eabi-gcc",
        &build.join("cairndb/cargo"),
    )?;
    let mut problems = Vec::new();
    if field("LIBRARY") != printed.library {
        problems.push(format!(
            "app would link `{}`, the cargo command builds `{}`",
            field("LIBRARY"),
            printed.library
        ));
    }
    if !field("APP_LINKS").split(';').any(|l| l == "cairndb_rust") {
        problems.push("app does not link cairndb_rust".to_string());
    }
    for want in ["cairn_zephyr.c", "cairn_maint.c"].iter().chain(expect) {
        if !report.contains(want) {
            problems.push(format!("the glue library lacks `{want}`"));
        }
    }
    if !field("GLOBAL_DEFINITIONS")
        .split(';')
        .any(|d| d == "CAIRN_BARE_METAL")
    {
        problems.push("CAIRN_BARE_METAL is not defined for the application".to_string());
    }
    if !problems.is_empty() {
        return Err(format!(
            "the Zephyr branch of CMakeLists.txt for {name}: {}",
            problems.join("; ")
        ));
    }
    println!("xtask: zephyr: the CMake branch configures for {name} (stubbed zephyr_* functions)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tools

/// Makes sure the Debian packages are there (installing them as root), and, when `lint`,
/// that rustup's rustfmt and clippy components work.
fn ensure_tools(ctx: &Ctx, lint: bool) -> StepResult {
    let missing = missing_packages()?;
    if missing.is_empty() {
        println!(
            "xtask: all {} Debian packages are installed",
            APT_PACKAGES.len()
        );
    } else {
        let list = missing.join(" ");
        let install_cmd = format!(
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {list}"
        );
        if ctx.skip_install {
            eprintln!("xtask: warning: missing Debian packages: {list}");
            eprintln!(
                "xtask: --skip-install given; later steps may fail. To install, run as root:"
            );
            eprintln!("  {install_cmd}");
        } else if !is_root() {
            eprintln!("xtask: missing Debian packages: {list}");
            eprintln!("xtask: not root; run this, then try again:");
            eprintln!(
                "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {list}"
            );
            return Err(format!("missing Debian packages: {list}"));
        } else {
            println!("xtask: installing missing Debian packages: {list}");
            run(Command::new("apt-get")
                .args(["-o", "Acquire::Retries=3"])
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()))?;
            run(Command::new("apt-get")
                // Wait for, rather than fail on, an apt run that already holds the lock.
                .args(["-o", "DPkg::Lock::Timeout=600", "-o", "Acquire::Retries=3"])
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()))?;
            let still = missing_packages()?;
            if !still.is_empty() {
                return Err(format!(
                    "apt-get finished but these are still not installed: {}",
                    still.join(" ")
                ));
            }
        }
    }

    if lint {
        for (sub, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
            check_cargo_subcommand(ctx, sub, component)?;
        }
    }
    Ok(())
}

/// The packages of APT_PACKAGES that dpkg does not report as installed.
fn missing_packages() -> Result<Vec<String>, String> {
    let mut missing = Vec::new();
    for pkg in APT_PACKAGES {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!(
                    "cannot run dpkg-query ({e}): this is not a Debian machine; install by hand: {}",
                    APT_PACKAGES.join(" ")
                )
            })?;
        // "install ok installed" (or "hold ok installed"); an unknown package exits non-zero,
        // a removed one reports "deinstall ok config-files".
        let status = String::from_utf8_lossy(&out.stdout);
        let installed =
            out.status.success() && status.split_whitespace().last() == Some("installed");
        if !installed {
            missing.push((*pkg).to_string());
        }
    }
    Ok(missing)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// rustfmt and clippy are rustup components: nothing can download them here, so only say so.
fn check_cargo_subcommand(ctx: &Ctx, sub: &str, component: &str) -> StepResult {
    let out = cargo(ctx)
        .args([sub, "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        print!("xtask: {}", String::from_utf8_lossy(&out.stdout));
        Ok(())
    } else {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        Err(format!(
            "`cargo {sub}` does not work: the rustup component `{component}` is missing \
             (`rustup component add {component}`); it cannot be downloaded on this machine, \
             so the machine image must provide it"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Cross build

/// Debian's cargo set up for a bare-metal `triple` (the toolchain.md recipe): Debian's rustc
/// with RUSTC_BOOTSTRAP for -Zbuild-std, arm-none-eabi-gcc for littlefs, and newlib/gcc headers
/// for bindgen. Its own target dir (target/thumb) so that the other compiler never invalidates
/// the host build. The caller adds the cargo subcommand and -Zbuild-std.
fn thumb_cargo(ctx: &Ctx, triple: &str) -> Result<Command, String> {
    for (path, pkg) in [
        (DEBIAN_RUSTC, "rustc-web"),
        (DEBIAN_CARGO, "cargo-web"),
        (DEBIAN_RUST_SRC, "rust-web-src"),
        (NEWLIB_INCLUDE, "libnewlib-arm-none-eabi"),
    ] {
        if !Path::new(path).exists() {
            return Err(format!(
                "{path} is missing: install the Debian package {pkg} (`cargo xtask test` does, as root)"
            ));
        }
    }
    let gcc_include = capture(Command::new("arm-none-eabi-gcc").arg("-print-file-name=include"))
        .map_err(|e| format!("{e} (install the Debian package gcc-arm-none-eabi)"))?;

    // cc and bindgen read per-target variables with `-` and `.` turned into `_`.
    let suffix = triple.replace(['-', '.'], "_");
    let mut cmd = Command::new(DEBIAN_CARGO);
    cmd.current_dir(&ctx.root)
        .env("CARGO_TARGET_DIR", ctx.root.join("target/thumb"))
        .env("RUSTC", DEBIAN_RUSTC)
        // -Zbuild-std is unstable; rustc-web is a stable compiler.
        .env("RUSTC_BOOTSTRAP", "1")
        .env(format!("CC_{suffix}"), "arm-none-eabi-gcc")
        .env(
            format!("BINDGEN_EXTRA_CLANG_ARGS_{suffix}"),
            format!("-I{NEWLIB_INCLUDE} -I{gcc_include}"),
        );
    Ok(cmd)
}

/// The Cortex-M cores step thumb-c builds the C API for (a CAIRNDB_TEST_CPU of
/// tests/c/cross/arm-none-eabi.cmake), with the Rust target the top-level CMakeLists.txt must
/// derive from each toolchain.
const CROSS_CPUS: &[(&str, &str)] = &[
    ("cortex-m4f", "thumbv7em-none-eabihf"),
    ("cortex-m4", "thumbv7em-none-eabi"),
    ("cortex-m3", "thumbv7m-none-eabi"),
];

/// Builds the C API (`libcairndb.a`) for a Cortex-M `cpu` the way a firmware project does:
/// tests/c/cross/ is a CMake project that add_subdirectory()s cairndb with an arm-none-eabi
/// toolchain file, and the top-level CMakeLists.txt derives the Rust target (checked against
/// `triple`) and runs the cross cargo recipe. Reports the archive's size and the code size of
/// each member, fails when anything but the C API (`cairn_*`) and littlefs (`lfs_*`) is
/// exported, reports the footprint, and on the Cortex-M3 runs the API on QEMU.
fn thumb_c_build(ctx: &Ctx, cpu: &str, triple: &str) -> StepResult {
    // The same prerequisites as the cargo-only cross build, with the same messages.
    thumb_cargo(ctx, triple)?;
    let build = cross_configure(ctx, cpu, triple)?;
    run(Command::new("cmake").arg("--build").arg(&build))?;

    let lib = build.join("cairndb/libcairndb.a");
    let bytes = std::fs::metadata(&lib)
        .map_err(|e| {
            format!(
                "the build succeeded but {} is not there: {e}",
                lib.display()
            )
        })?
        .len();
    println!("xtask: built {} ({bytes} bytes)", lib.display());
    let sizes = capture(Command::new("arm-none-eabi-size").arg(&lib))?;
    let mut text_total = 0u64;
    for line in sizes.lines() {
        println!("xtask:   {line}");
        if let Some(Ok(text)) = line.split_whitespace().next().map(str::parse::<u64>) {
            text_total += text;
        }
    }
    println!("xtask: {triple}: {text_total} bytes of code in the archive (before the firmware's --gc-sections)");
    let symbols = capture(
        Command::new("arm-none-eabi-nm")
            .args(["-g", "--defined-only"])
            .arg(&lib),
    )?;
    let exported: Vec<&str> = symbols
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some(_), Some("T"), Some(name)) => Some(name),
                _ => None,
            }
        })
        .collect();
    let api = exported.iter().filter(|n| n.starts_with("cairn_")).count();
    let stray: Vec<&&str> = exported
        .iter()
        .filter(|n| !n.starts_with("cairn_") && !n.starts_with("lfs_"))
        .collect();
    if !stray.is_empty() {
        return Err(format!(
            "{} exports more than the C API and littlefs: {stray:?}",
            lib.display()
        ));
    }
    println!("xtask: {api} cairn_* functions exported");
    footprint(triple, &build)?;
    let firmware = build.join("qemu_c.elf");
    if firmware.is_file() {
        qemu_c(&firmware)?;
    }
    Ok(())
}

/// Configures tests/c/cross/ for `cpu` (in target/thumb/cmake/<cpu>) and checks that the
/// top-level CMakeLists.txt derived the Rust target `triple` from the toolchain.
fn cross_configure(ctx: &Ctx, cpu: &str, triple: &str) -> Result<PathBuf, String> {
    let src = ctx.root.join("tests/c/cross");
    let build = ctx.root.join("target/thumb/cmake").join(cpu);
    run(Command::new("cmake")
        .args(["-G", "Ninja", "-S"])
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!(
            "-DCMAKE_TOOLCHAIN_FILE={}",
            src.join("arm-none-eabi.cmake").display()
        ))
        .arg(format!("-DCAIRNDB_TEST_CPU={cpu}"))
        .arg(format!("-DCAIRNDB_DIR={}", ctx.root.display()))
        // The thumb step's target dir (target/thumb below it) and compiler name, so that both
        // cross builds share their artifacts.
        .arg(format!(
            "-DCAIRNDB_CARGO_TARGET_DIR={}",
            ctx.root.join("target").display()
        ))
        .arg("-DCAIRNDB_CROSS_CC=arm-none-eabi-gcc"))?;
    let cache = std::fs::read_to_string(build.join("CMakeCache.txt"))
        .map_err(|e| format!("{}: {e}", build.join("CMakeCache.txt").display()))?;
    let derived = cache
        .lines()
        .find_map(|l| l.strip_prefix("CAIRNDB_RUST_TARGET:STRING="))
        .unwrap_or("");
    if derived != triple {
        return Err(format!(
            "CMake derived the Rust target `{derived}` for {cpu}; expected `{triple}`"
        ));
    }
    println!("xtask: CMake derived {triple} from the {cpu} toolchain");
    Ok(build)
}

/// Runs the firmware of tests/c/qemu/ (a bare-metal start, newlib-nano's malloc behind
/// counting heap hooks, the C API on a RAM device), built by the cross project, on QEMU
/// mps2-an385; the program checks its own results and exits through semihosting with 0 on
/// success.
fn qemu_c(elf: &Path) -> StepResult {
    let mut qemu = Command::new("timeout");
    qemu.args([
        "60",
        "qemu-system-arm",
        "-machine",
        "mps2-an385",
        "-cpu",
        "cortex-m3",
    ])
    .arg("-kernel")
    .arg(elf)
    .args(["-monitor", "none", "-nographic", "-serial", "null"])
    .args(["-semihosting-config", "enable=on,target=native"]);
    run(&mut qemu).map_err(|e| format!("{e} (the C API on QEMU mps2-an385)"))
}

/// Reports what the library adds to a firmware: footprint.elf (tests/c/footprint.c, every C
/// API function kept) against footprint_base.elf (the same firmware without cairndb), both
/// linked by the cross project with newlib-nano, -Os and --gc-sections.
fn footprint(triple: &str, build: &Path) -> StepResult {
    let mut sizes = Vec::new();
    for name in ["footprint.elf", "footprint_base.elf"] {
        let elf = build.join(name);
        let out = capture(Command::new("arm-none-eabi-size").arg(&elf))?;
        let cols: Vec<u64> = out
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .take(3)
            .map(|c| c.parse().unwrap_or(0))
            .collect();
        match cols.as_slice() {
            [text, data, bss] => sizes.push((text + data, data + bss)),
            _ => return Err(format!("cannot read the size of {}: {out}", elf.display())),
        }
    }
    let ((flash, ram), (flash0, ram0)) = (sizes[0], sizes[1]);
    println!(
        "xtask: {triple}: the whole C API adds {} bytes of flash and {} bytes of static RAM \
         to a firmware (newlib-nano, -Os, --gc-sections)",
        flash.saturating_sub(flash0),
        ram.saturating_sub(ram0)
    );
    Ok(())
}

/// Builds the no_std core for a bare-metal `triple` with Debian's rustc-web: rustup has only the
/// host std here, so core/alloc are compiled from rust-web-src with -Zbuild-std. It uses its own
/// target dir so that the other compiler never invalidates the host build. The crate is an rlib,
/// so no allocator, panic handler or libc symbols are needed for this check.
fn thumb_build(ctx: &Ctx, triple: &str) -> StepResult {
    let mut cmd = thumb_cargo(ctx, triple)?;
    cmd.args([
        "build",
        "--release",
        "-p",
        "cairndb",
        "-p",
        "cairndb-spi-nor",
    ])
    .args(["--target", triple])
    .arg("-Zbuild-std=core,alloc");
    run(&mut cmd)?;

    let target_dir = ctx.root.join("target/thumb");
    let rlib = target_dir.join(triple).join("release/libcairndb.rlib");
    match std::fs::metadata(&rlib) {
        Ok(m) => {
            println!("xtask: built {} ({} bytes)", rlib.display(), m.len());
            Ok(())
        }
        Err(e) => Err(format!(
            "cargo succeeded but {} is not there: {e}",
            rlib.display()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// FreeRTOS firmware on QEMU

/// The manifest whose only dependency, `freertos-next`, brings the FreeRTOS-Kernel sources.
const FREERTOS_KERNEL_MANIFEST: &str = "samples/freertos/kernel/Cargo.toml";

/// The FreeRTOS-Kernel tree (V11.2) vendored by `freertos-next`: `cargo fetch` puts the crate in
/// cargo's registry copy (nothing is compiled), `cargo metadata` says where.
fn freertos_kernel_dir(ctx: &Ctx) -> Result<PathBuf, String> {
    let manifest = ctx.root.join(FREERTOS_KERNEL_MANIFEST);
    run(cargo(ctx)
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(&manifest))?;
    let meta = capture(
        cargo(ctx)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--manifest-path",
            ])
            .arg(&manifest),
    )?;
    let dir = kernel_dir_in_metadata(&meta)
        .ok_or_else(|| "cargo metadata does not list the freertos-next package".to_string())?;
    if !dir.join("tasks.c").is_file() {
        return Err(format!("{} has no tasks.c", dir.display()));
    }
    Ok(dir)
}

/// Finds `.../freertos-next-<v>/Cargo.toml` among the manifest paths of `cargo metadata`'s JSON
/// and returns the FreeRTOS-Kernel directory beside it.
fn kernel_dir_in_metadata(meta: &str) -> Option<PathBuf> {
    meta.split("\"manifest_path\":\"").skip(1).find_map(|rest| {
        let path = rest.split('"').next()?;
        let manifest = Path::new(path);
        let crate_dir = manifest.parent()?;
        let name = crate_dir.file_name()?.to_str()?;
        name.starts_with("freertos-next-")
            .then(|| crate_dir.join("FreeRTOS-Kernel"))
    })
}

/// Configures and builds samples/freertos/ (the kernel, the port, libcairndb.a for the
/// Cortex-M3, demo.elf and qemu_test.elf) in target/thumb/freertos; returns that directory.
fn freertos_build(ctx: &Ctx) -> Result<PathBuf, String> {
    freertos_build_for(ctx, "cortex-m3", "thumbv7m-none-eabi", "freertos")
}

/// [`freertos_build`] for another core of tests/c/cross/arm-none-eabi.cmake (`cpu`, whose Rust
/// target is `triple`), in target/thumb/`dir`. The samples name the ARM_CM3 port whatever the
/// core: for a Cortex-M4F this builds that port with hard float (sizes only, never run).
fn freertos_build_for(ctx: &Ctx, cpu: &str, triple: &str, dir: &str) -> Result<PathBuf, String> {
    thumb_cargo(ctx, triple)?; // the cross prerequisites, with their messages
    let kernel = freertos_kernel_dir(ctx)?;
    println!("xtask: FreeRTOS kernel sources: {}", kernel.display());
    let src = ctx.root.join("samples/freertos");
    let build = ctx.root.join("target/thumb").join(dir);
    run(Command::new("cmake")
        .args(["-G", "Ninja", "-S"])
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!(
            "-DCMAKE_TOOLCHAIN_FILE={}",
            ctx.root.join("tests/c/cross/arm-none-eabi.cmake").display()
        ))
        .arg(format!("-DCAIRNDB_TEST_CPU={cpu}"))
        .arg(format!("-DCAIRNDB_DIR={}", ctx.root.display()))
        .arg(format!(
            "-DCAIRNDB_CARGO_TARGET_DIR={}",
            ctx.root.join("target").display()
        ))
        .arg("-DCAIRNDB_CROSS_CC=arm-none-eabi-gcc")
        .arg(format!("-DFREERTOS_KERNEL_DIR={}", kernel.display())))?;
    run(Command::new("cmake").arg("--build").arg(&build))?;
    Ok(build)
}

/// `text + data` of an ELF (what goes to flash on a real part), from arm-none-eabi-size.
fn firmware_size(elf: &Path) -> Result<u64, String> {
    elf_sizes(elf).map(|s| s.text + s.data)
}

/// What arm-none-eabi-size reports of an ELF (its Berkeley columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sizes {
    /// Read-only loaded bytes: .text, .rodata, .ARM.exidx (all flash).
    text: u64,
    /// Initialised RAM (stored in flash too).
    data: u64,
    /// Zeroed RAM.
    bss: u64,
}

impl Sizes {
    fn minus(self, base: Sizes) -> Sizes {
        Sizes {
            text: self.text.saturating_sub(base.text),
            data: self.data.saturating_sub(base.data),
            bss: self.bss.saturating_sub(base.bss),
        }
    }
}

fn elf_sizes(elf: &Path) -> Result<Sizes, String> {
    let out = capture(Command::new("arm-none-eabi-size").arg(elf))?;
    parse_size_output(&out)
        .ok_or_else(|| format!("cannot read the size of {}: {out}", elf.display()))
}

/// The first row of `arm-none-eabi-size` (Berkeley format: text data bss dec hex filename).
fn parse_size_output(out: &str) -> Option<Sizes> {
    let cols: Vec<u64> = out
        .lines()
        .nth(1)?
        .split_whitespace()
        .take(3)
        .map(|c| c.parse().ok())
        .collect::<Option<_>>()?;
    match cols.as_slice() {
        [text, data, bss] => Some(Sizes {
            text: *text,
            data: *data,
            bss: *bss,
        }),
        _ => None,
    }
}

/// QEMU mps2-an385 running `elf` with semihosting (host files relative to `dir`, the firmware's
/// argument `arg`), UART0 on stdout, under `timeout`.
fn qemu_cmd(elf: &Path, dir: &Path, arg: &str, timeout_s: u32) -> Command {
    let mut qemu = Command::new("timeout");
    qemu.current_dir(dir)
        .arg(timeout_s.to_string())
        .args([
            "qemu-system-arm",
            "-machine",
            "mps2-an385",
            "-cpu",
            "cortex-m3",
        ])
        .arg("-kernel")
        .arg(elf)
        .args(["-monitor", "none", "-nographic", "-serial", "stdio"])
        .arg("-semihosting-config")
        .arg(format!("enable=on,target=native,arg={arg}"));
    qemu
}

/// The demo: builds the firmware, then boots it twice on QEMU: on blank flash (it formats,
/// runs its tasks, takes scheduled backups and saves the database and backup flash images to
/// host files through semihosting), then on those images (a reboot: the data is there, a wrong
/// key is refused, the backup ring restores).
fn freertos_demo(ctx: &Ctx) -> StepResult {
    let build = freertos_build(ctx)?;
    let elf = build.join("demo.elf");
    println!(
        "xtask: {} is {} bytes of code and data (FreeRTOS kernel, port, cairndb, newlib-nano)",
        elf.display(),
        firmware_size(&elf)?
    );
    for name in ["cairn-demo-flash.img", "cairn-demo-backup.img"] {
        let image = build.join(name);
        if image.exists() {
            std::fs::remove_file(&image).map_err(|e| format!("{}: {e}", image.display()))?;
        }
    }
    for boot in 1..=2 {
        println!("\nxtask: QEMU mps2-an385, boot {boot}");
        let t = Instant::now();
        run(&mut qemu_cmd(&elf, &build, "demo", 120))
            .map_err(|e| format!("{e} (demo firmware, boot {boot})"))?;
        println!("xtask: boot {boot} ran in {}", secs(t.elapsed()));
    }
    Ok(())
}

/// Power cuts `cargo xtask qemu` verifies (each a kill of QEMU at a random moment).
const POWER_CUTS: u32 = 60;

/// `cargo xtask qemu` (and the step of that name): the on-device tests of
/// samples/freertos/qemu_test.c on QEMU (CRUD, queries, a transaction, tasks of four priorities
/// incrementing one counter in transactions, the background task), then the power-cut test.
fn freertos_qemu(ctx: &Ctx) -> StepResult {
    let build = freertos_build(ctx)?;
    let elf = build.join("qemu_test.elf");
    println!(
        "xtask: {} is {} bytes of code and data",
        elf.display(),
        firmware_size(&elf)?
    );
    let t = Instant::now();
    run(&mut qemu_cmd(&elf, &build, "suite", 120))
        .map_err(|e| format!("{e} (on-device test suite)"))?;
    println!("xtask: the suite ran in {}", secs(t.elapsed()));
    power_cuts(&elf, &build, POWER_CUTS)
}

/// The power-cut test. The firmware writes every flash program and erase through to
/// pc-flash.img before it returns, commits a counter (a document and a twin key, in one
/// transaction) over and over, and prints `ACK n` after each commit returns. The host kills
/// QEMU (SIGKILL: no chance to flush or finish anything) at a random moment while it writes,
/// then boots it again on the file: the firmware recovers, checks the document and the key
/// agree, and prints `BOOT n`. n must be the last ACK seen, or one more (a commit that landed
/// before its ACK was printed), and never below an earlier BOOT.
fn power_cuts(elf: &Path, dir: &Path, cuts: u32) -> StepResult {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    let image = dir.join("pc-flash.img");
    if image.exists() {
        std::fs::remove_file(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    }
    run(&mut qemu_cmd(elf, dir, "powercut-init", 60))?;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("xtask: {cuts} power cuts (random seed {seed})");
    let mut rand = move |bound: u64| {
        // xorshift64: enough to spread the cuts; the seed is printed to replay a run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let started = Instant::now();
    let (mut acked, mut last_boot, mut commits) = (0i64, 0i64, 0u64);
    // One boot more than cuts: the last one only checks what the last cut left.
    for cut in 1..=cuts + 1 {
        let mut qemu = Command::new("qemu-system-arm");
        qemu.current_dir(dir)
            .args(["-machine", "mps2-an385", "-cpu", "cortex-m3", "-kernel"])
            .arg(elf)
            .args(["-monitor", "none", "-nographic", "-serial", "stdio"])
            .args([
                "-semihosting-config",
                "enable=on,target=native,arg=powercut",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = qemu
            .spawn()
            .map_err(|e| format!("cannot run qemu-system-arm: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            // Only whole lines: the kill may cut the last one short ("ACK 14" of "ACK 1465").
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            while matches!(out.read_line(&mut line), Ok(n) if n > 0) {
                if !line.ends_with('\n') || tx.send(line.trim().to_string()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        // Wait for BOOT, then cut at a random moment among the commits that follow.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut boot: Option<i64> = None;
        let mut lines = Vec::new();
        while boot.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(n) = line.strip_prefix("BOOT ") {
                        boot = n.parse().ok();
                    }
                    lines.push(line);
                }
                Err(_) => break,
            }
        }
        let Some(boot) = boot else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "power cut {cut}: the firmware did not boot on the cut image: {lines:?}"
            ));
        };
        if boot < acked || boot > acked + 1 || boot < last_boot {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "power cut {cut}: after the cut the counter is {boot}, but {acked} was \
                 acknowledged (previous boot {last_boot})"
            ));
        }
        if cut > cuts {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(5 + rand(300)));
        child.kill().map_err(|e| format!("cannot kill QEMU: {e}"))?;
        let _ = child.wait();
        let _ = reader.join();
        // Every line printed before the kill: the ACKs are commits that returned.
        let mut last_ack = boot;
        for line in rx.try_iter() {
            if line.contains("FAIL") {
                return Err(format!("power cut {cut}: the firmware reports: {line}"));
            }
            if let Some(Ok(n)) = line.strip_prefix("ACK ").map(str::parse::<i64>) {
                if n != last_ack + 1 {
                    return Err(format!("power cut {cut}: ACK {n} after {last_ack}"));
                }
                last_ack = n;
            }
        }
        commits += (last_ack - boot) as u64;
        last_boot = boot;
        acked = last_ack;
    }
    println!(
        "xtask: {cuts} power cuts verified in {}: {commits} commits acknowledged, counter at \
         {acked} (each reboot found every acknowledged commit, never a torn one)",
        secs(started.elapsed())
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Footprint

/// The committed baseline `footprint` compares against, and the report it writes.
const FOOTPRINT_BASELINE: &str = "bench/footprint-baseline.txt";
const FOOTPRINT_REPORT: &str = "bench/FOOTPRINT.md";
/// How much a figure may grow over its baseline before `footprint` fails: 10%, but at least
/// this many bytes, so that a figure near zero (the library's static RAM) does not fail on a
/// few bytes.
const FOOTPRINT_MIN_SLACK: u64 = 256;

/// A configuration of the library, measured as a harness of footprint/ minus the empty one.
struct FpConfig {
    name: &'static str,
    /// The harness binary of footprint/src/bin.
    bin: &'static str,
    /// Cargo features of footprint/ (forwarded to cairndb).
    features: &'static str,
    /// The code (text) target on thumbv7em-none-eabihf, if there is one.
    target: Option<u64>,
    about: &'static str,
}

const FP_CONFIGS: &[FpConfig] = &[
    FpConfig {
        name: "kv",
        bin: "kv",
        features: "",
        target: Some(40 * 1024),
        about:
            "key-value API only, plaintext database (format/open, put/get/delete, a transaction)",
    },
    FpConfig {
        name: "full",
        bin: "full",
        features: "",
        target: Some(96 * 1024),
        about: "encrypted; documents, JSON, find with filter and sort, an index, a transaction, \
                key-value, a full backup, a check (no regex, no compression)",
    },
    FpConfig {
        name: "all",
        bin: "full",
        features: "regex,compress",
        target: None,
        about: "`full` with the features regex and compress",
    },
];

/// The targets measured, with the configurations measured on each.
const FP_TRIPLES: &[(&str, &[&str])] = &[
    ("thumbv7em-none-eabihf", &["kv", "full", "all"]),
    ("thumbv7m-none-eabi", &["kv", "full"]),
];

/// The FreeRTOS sample built per core: (CAIRNDB_TEST_CPU, Rust target, build directory).
const FP_FIRMWARE: &[(&str, &str, &str)] = &[
    ("cortex-m4f", "thumbv7em-none-eabihf", "freertos-cortex-m4f"),
    ("cortex-m3", "thumbv7m-none-eabi", "freertos"),
];

/// How many of the biggest symbols the report lists per configuration.
const FP_SYMBOLS: usize = 15;

/// A symbol of `nm`: (bytes, type letter, demangled name).
type Symbol = (u64, String, String);

/// One measured configuration of the library.
struct FpRow {
    triple: &'static str,
    config: &'static FpConfig,
    /// The harness minus the empty harness.
    lib: Sizes,
    /// The biggest symbols of the harness: (bytes, nm type, name).
    symbols: Vec<Symbol>,
}

/// `cargo xtask footprint` and the step of that name: measures, prints the table, writes
/// bench/FOOTPRINT.md, then compares with the baseline (or, with `update`, rewrites it).
fn footprint_cmd(ctx: &Ctx, update: bool) -> StepResult {
    let started = Instant::now();
    let mut rows: Vec<FpRow> = Vec::new();
    for (triple, names) in FP_TRIPLES {
        let configs: Vec<&'static FpConfig> = FP_CONFIGS
            .iter()
            .filter(|c| names.contains(&c.name))
            .collect();
        // One cargo build per feature set; each harness is measured before the next build
        // puts another one (same name, other features) in its place.
        let mut measured: Vec<(&str, &str, Sizes, Vec<Symbol>)> = Vec::new();
        let mut feature_sets: Vec<&str> = vec![""];
        for c in &configs {
            if !feature_sets.contains(&c.features) {
                feature_sets.push(c.features);
            }
        }
        for features in feature_sets {
            let mut bins: Vec<&str> = if features.is_empty() {
                vec!["empty"]
            } else {
                vec![]
            };
            for c in configs.iter().filter(|c| c.features == features) {
                if !bins.contains(&c.bin) {
                    bins.push(c.bin);
                }
            }
            let dir = fp_build(ctx, triple, features, &bins)?;
            for bin in bins {
                let elf = dir.join(bin);
                measured.push((bin, features, elf_sizes(&elf)?, top_symbols(&elf)?));
            }
        }
        let empty = measured
            .iter()
            .find(|m| m.0 == "empty")
            .map(|m| m.2)
            .ok_or("the empty harness was not measured")?;
        for c in configs {
            let (_, _, sizes, symbols) = measured
                .iter()
                .find(|m| m.0 == c.bin && m.1 == c.features)
                .ok_or_else(|| format!("the harness of {} was not measured", c.name))?;
            rows.push(FpRow {
                triple,
                config: c,
                lib: sizes.minus(empty),
                symbols: symbols.clone(),
            });
        }
    }
    let library_time = started.elapsed();

    let mut firmware: Vec<(&str, &str, Sizes)> = Vec::new();
    for (cpu, triple, dir) in FP_FIRMWARE {
        let build = freertos_build_for(ctx, cpu, triple, dir)?;
        firmware.push((cpu, triple, elf_sizes(&build.join("demo.elf"))?));
    }
    let stack = demo_stack(&ctx.root.join("target/thumb/freertos/demo.elf"));

    let baseline_path = ctx.root.join(FOOTPRINT_BASELINE);
    let report = footprint_report(&rows, &firmware, &stack);
    print!("\n{report}");
    let path = ctx.root.join(FOOTPRINT_REPORT);
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "xtask: wrote {FOOTPRINT_REPORT}; measured in {} (library harnesses {})",
        secs(started.elapsed()),
        secs(library_time)
    );

    let current = baseline_entries(&rows);
    if update {
        let mut text = String::from(
            "# cairndb's code and static RAM per configuration: the harness of footprint/ minus the\n\
             # empty one, in bytes (text = .text + .rodata). `cargo xtask footprint` fails when a\n\
             # figure grows more than 10% (and 256 bytes) over this; `--update-baseline` rewrites it.\n",
        );
        for (k, v) in &current {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&baseline_path, text)
            .map_err(|e| format!("{}: {e}", baseline_path.display()))?;
        println!("xtask: wrote {FOOTPRINT_BASELINE}");
        return Ok(());
    }
    let old = std::fs::read_to_string(&baseline_path).map_err(|e| {
        format!(
            "{}: {e} (run `cargo xtask footprint --update-baseline`)",
            baseline_path.display()
        )
    })?;
    let baseline = parse_baseline(&old);
    for (k, _) in current
        .iter()
        .filter(|(k, _)| !baseline.iter().any(|(b, _)| b == k))
    {
        eprintln!("xtask: warning: {FOOTPRINT_BASELINE} has no {k} (not checked)");
    }
    let grown = footprint_regressions(&baseline, &current);
    if grown.is_empty() {
        println!(
            "xtask: every figure is within 10% of {FOOTPRINT_BASELINE} ({} figures)",
            current.len()
        );
        Ok(())
    } else {
        Err(format!(
            "grew more than 10% over {FOOTPRINT_BASELINE}: {} (if intended, run `cargo xtask \
             footprint --update-baseline` and commit it)",
            grown.join("; ")
        ))
    }
}

/// Builds the harnesses `bins` of footprint/ for `triple` with `features` (release profile:
/// opt-level "z", LTO, panic abort), linked by arm-none-eabi-gcc (footprint/build.rs); returns
/// the directory holding them. The linker is given to each harness alone (`cargo rustc --
/// -C linker`): through CARGO_TARGET_<triple>_LINKER it would change every unit's fingerprint,
/// and this build and the CMake builds of libcairndb.a (same target dir) would rebuild
/// core and every dependency for each other.
fn fp_build(ctx: &Ctx, triple: &str, features: &str, bins: &[&str]) -> Result<PathBuf, String> {
    for bin in bins {
        let mut cmd = thumb_cargo(ctx, triple)?;
        cmd.args([
            "rustc",
            "--release",
            "-p",
            "cairndb-footprint",
            "--target",
            triple,
        ])
        .arg("-Zbuild-std=core,alloc")
        .args(["--bin", bin]);
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        cmd.args(["--", "-C", "linker=arm-none-eabi-gcc"]);
        run(&mut cmd)?;
    }
    Ok(ctx.root.join("target/thumb").join(triple).join("release"))
}

/// The biggest symbols of `elf`: (bytes, nm type, demangled name).
fn top_symbols(elf: &Path) -> Result<Vec<Symbol>, String> {
    let out = capture(
        Command::new("arm-none-eabi-nm")
            .args(["--size-sort", "-S", "-r", "-C"])
            .arg(elf),
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, ' ');
            let (_addr, size, kind, name) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some((
                u64::from_str_radix(size, 16).ok()?,
                kind.to_string(),
                name.to_string(),
            ))
        })
        .take(FP_SYMBOLS)
        .collect())
}

/// The background task's stack on the demo's first boot: (bytes used, stack size), from the
/// line "stack high-water marks (bytes never used): cairn-bg X of Y, ...". The boot runs in a
/// temporary directory, so the flash images of `cargo xtask demo` stay as they are. An error
/// is reported, not fatal: the demo's own step (qemu) is where a broken demo fails.
fn demo_stack(elf: &Path) -> Result<(u64, u64), String> {
    let dir = env::temp_dir().join(format!("cairn-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let t = Instant::now();
    let out = qemu_cmd(elf, &dir, "demo", 120)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run QEMU: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    println!(
        "xtask: the demo's first boot ran on QEMU in {} ({})",
        secs(t.elapsed()),
        out.status
    );
    match parse_bg_stack(&text) {
        Some((free, size)) => Ok((size - free, size)),
        None => Err(format!(
            "the demo ({}) printed no \"cairn-bg X of Y\" stack line",
            out.status
        )),
    }
}

/// (bytes never used, stack size) of the background task, from the demo's output: the first
/// "cairn-bg X of Y" (other punctuation and words around it may change; its log lines, such
/// as "cairn-bg (1: every 200 ms" or "cairn-bg stopped: 10 wakes", do not match).
fn parse_bg_stack(out: &str) -> Option<(u64, u64)> {
    out.split("cairn-bg").skip(1).find_map(|rest| {
        let mut words = rest
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty());
        let free: u64 = words.next()?.parse().ok()?;
        if words.next()? != "of" {
            return None;
        }
        let size: u64 = words.next()?.parse().ok()?;
        (free <= size).then_some((free, size))
    })
}

fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// The table (Markdown, also printed): the library per configuration, the sample firmware,
/// the background task's stack, the biggest symbols.
fn footprint_report(
    rows: &[FpRow],
    firmware: &[(&str, &str, Sizes)],
    stack: &Result<(u64, u64), String>,
) -> String {
    let one_line = |cmd: &mut Command| {
        capture(cmd)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    };
    let date = one_line(Command::new("date").args(["-u", "+%Y-%m-%d"]));
    let rustc = one_line(Command::new(DEBIAN_RUSTC).arg("-V"));
    let gcc = one_line(Command::new("arm-none-eabi-gcc").arg("--version"));
    let mut s = String::new();
    s.push_str("# cairndb footprint\n\n");
    s.push_str(&format!(
        "Written by `cargo xtask footprint` on {date}; {rustc}, {gcc}; workspace release \
         profile (opt-level \"z\", LTO, codegen-units 1, panic abort), -Zbuild-std=core,alloc.\n\n"
    ));
    s.push_str(
        "## The library\n\n\
         Each configuration is a harness of `footprint/` that calls its entry points with\n\
         `black_box`-ed inputs, linked by arm-none-eabi-gcc (newlib-nano, --gc-sections), minus\n\
         the empty harness (same panic handler and malloc-backed allocator, no database). text\n\
         is .text + .rodata (flash); data and bss are static RAM (the heap is not counted).\n\n",
    );
    s.push_str("| target | config | text | text KiB | data | bss | code target |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---|\n");
    for r in rows {
        let goal = match (r.triple, r.config.target) {
            ("thumbv7em-none-eabihf", Some(t)) => format!(
                "<= {} KiB {}",
                t / 1024,
                if r.lib.text <= t { "PASS" } else { "MISS" }
            ),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.triple,
            r.config.name,
            r.lib.text,
            kib(r.lib.text),
            r.lib.data,
            r.lib.bss,
            goal
        ));
    }
    s.push('\n');
    for c in FP_CONFIGS {
        s.push_str(&format!("- {}: {}\n", c.name, c.about));
    }
    s.push_str(
        "\n## The FreeRTOS sample firmware\n\n\
         samples/freertos demo.elf: FreeRTOS V11.2, the port, cairndb's C API (every function the\n\
         demo calls), newlib-nano. Its bss is mostly the demo's choices: the heap_4 heap\n\
         (configTOTAL_HEAP_SIZE) and the NOR flash it emulates in RAM for QEMU. The sample names\n\
         the ARM_CM3 port, so the Cortex-M4F build is that port with hard float (the ARM_CM4F\n\
         port adds its FPU context switch).\n\n",
    );
    s.push_str("| core | target | text | data | bss |\n|---|---|---:|---:|---:|\n");
    for (cpu, triple, z) in firmware {
        s.push_str(&format!(
            "| {cpu} | {triple} | {} | {} | {} |\n",
            z.text, z.data, z.bss
        ));
    }
    s.push_str("\nBackground task (cairn-bg) stack, the demo's first boot on QEMU mps2-an385: ");
    match stack {
        Ok((used, size)) => s.push_str(&format!(
            "{used} of {size} bytes used (high-water mark; sweeps, compaction steps and \
                 ring backups ran during the boot).\n"
        )),
        Err(e) => s.push_str(&format!("not measured: {e}.\n")),
    }
    s.push_str(&format!(
        "\n## Biggest symbols (thumbv7em-none-eabihf)\n\n\
         The {FP_SYMBOLS} biggest symbols of each harness (LTO inlines much of the library into\n\
         the harness's own function).\n"
    ));
    for r in rows.iter().filter(|r| r.triple == "thumbv7em-none-eabihf") {
        s.push_str(&format!("\n{}:\n\n```\n", r.config.name));
        for (size, kind, name) in &r.symbols {
            let name: String = if name.chars().count() > 110 {
                name.chars().take(107).chain("...".chars()).collect()
            } else {
                name.clone()
            };
            s.push_str(&format!("{size:>7} {kind} {name}\n"));
        }
        s.push_str("```\n");
    }
    s
}

/// The baseline figures of `rows`: `<triple>.<config>.{text,data,bss}` -> bytes.
fn baseline_entries(rows: &[FpRow]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for r in rows {
        for (what, v) in [
            ("text", r.lib.text),
            ("data", r.lib.data),
            ("bss", r.lib.bss),
        ] {
            out.push((format!("{}.{}.{what}", r.triple, r.config.name), v));
        }
    }
    out
}

/// `key=value` lines; `#` comments and blank lines are skipped.
fn parse_baseline(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The figures of `current` more than 10% (and FOOTPRINT_MIN_SLACK bytes) over `baseline`.
/// A figure the baseline lacks is reported by the caller's table, never a failure.
fn footprint_regressions(baseline: &[(String, u64)], current: &[(String, u64)]) -> Vec<String> {
    current
        .iter()
        .filter_map(|(k, now)| {
            let (_, base) = baseline.iter().find(|(b, _)| b == k)?;
            let allowed = base + (base / 10).max(FOOTPRINT_MIN_SLACK);
            (*now > allowed).then(|| format!("{k} is {now} bytes, baseline {base}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The host CLI's round trips (its own tests run in step `test`)

/// The raw key of samples/freertos/qemu_test.c, as hex.
const QEMU_TEST_KEY: &str = "517e0299c4103d8a6f21b0475ce8137a00000000000000000000000000000000";

/// Cargo's target directory, as the `cargo` this runs uses it.
fn target_dir(ctx: &Ctx) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                ctx.root.join(d)
            }
        }
        _ => ctx.root.join("target"),
    }
}

/// A venv under the target directory with littlefs-python (installed once, from PyPI).
fn python_with_littlefs(target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("cli-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e} (python3 with venv is needed: Debian's python3-venv)"))?;
    }
    let has = Command::new(&python)
        .args(["-c", "import littlefs"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "littlefs-python>=0.12,<1",
        ]))?;
    }
    Ok(python)
}

/// `cairn ARGS...`, its stdout.
fn cairn(bin: &Path, args: &[&str]) -> Result<String, String> {
    capture(Command::new(bin).args(args))
}

/// `cairn IMAGE ARGS... --key-hex KEY`.
fn cairn_k(bin: &Path, image: &Path, args: &[&str]) -> Result<String, String> {
    let image = image.to_string_lossy();
    let mut a = vec![image.as_ref()];
    a.extend_from_slice(args);
    a.extend(["--key-hex", QEMU_TEST_KEY]);
    cairn(bin, &a)
}

fn expect_eq(what: &str, got: &str, want: &str) -> StepResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got `{got}`, expected `{want}`"))
    }
}

/// The step `cli`: (1) littlefs-python, an implementation of littlefs other than the
/// library's, lists and reads an image `cairn` made and finds what `cairn` reads; (2) the
/// FreeRTOS test firmware on QEMU opens an image `cairn` made (mode image-check of
/// samples/freertos/qemu_test.c), checks its contents and writes to it; `cairn` reads that;
/// (3) `cairn` reads an image the firmware formatted (mode powercut-init).
fn cli_round_trips(ctx: &Ctx) -> StepResult {
    run(cargo(ctx).args(["build", "-p", "cairn-cli"]))?;
    let target = target_dir(ctx);
    let bin = target.join("debug").join("cairn");
    let work = target.join("cli-round-trips");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    // (1) littlefs-python.
    let python = python_with_littlefs(&target)?;
    let image = work.join("lfs.img");
    let img = image.to_string_lossy().to_string();
    cairn(
        &bin,
        &[
            &img,
            "create",
            "--block-count",
            "64",
            "--key-hex",
            QEMU_TEST_KEY,
        ],
    )?;
    let docs: String = (0..300)
        .map(|i| {
            format!(
                "{{\"sensor\":\"s{}\",\"seq\":{i},\"temp\":{}.5}}\n",
                i % 4,
                i % 30
            )
        })
        .collect();
    let input = work.join("readings.jsonl");
    std::fs::write(&input, docs).map_err(|e| format!("{}: {e}", input.display()))?;
    cairn_k(
        &bin,
        &image,
        &["import", &input.to_string_lossy(), "-c", "readings", "-q"],
    )?;
    cairn_k(
        &bin,
        &image,
        &["kv", "put", "config", "wifi/ssid", "lab-net"],
    )?;
    run(Command::new(&python)
        .arg(ctx.root.join("tools/cli/tests/lfs_check.py"))
        .arg("--cairn")
        .arg(&bin)
        .arg("--image")
        .arg(&image)
        .args(["--key-hex", QEMU_TEST_KEY]))?;

    // (2) The firmware: cairn provisions, the firmware checks and writes, cairn reads.
    let build = freertos_build(ctx)?;
    let elf = build.join("qemu_test.elf");
    let image = build.join("cli-flash.img");
    let img = image.to_string_lossy().to_string();
    // The QEMU board's NOR flash (board.h) with its read and program sizes (board.c).
    cairn(
        &bin,
        &[
            &img,
            "create",
            "--force",
            "--block-size",
            "4096",
            "--block-count",
            "64",
            "--read-size",
            "16",
            "--prog-size",
            "16",
            "--key-hex",
            QEMU_TEST_KEY,
        ],
    )?;
    for doc in [
        r#"{"serial":"SN-0042","model":"t1000","calib":[1.5,-0.25]}"#,
        r#"{"serial":"SN-0043","model":"t1000","calib":[0.5,0.0]}"#,
    ] {
        cairn_k(&bin, &image, &["insert", "provisioned", doc])?;
    }
    cairn_k(
        &bin,
        &image,
        &[
            "index",
            "create",
            "provisioned",
            "by_serial",
            "serial",
            "--unique",
        ],
    )?;
    cairn_k(
        &bin,
        &image,
        &["kv", "put", "config", "wifi/ssid", "lab-net"],
    )?;
    cairn_k(
        &bin,
        &image,
        &["kv", "put", "config", "threshold", "--value-hex", "0010ff"],
    )?;
    run(&mut qemu_cmd(&elf, &build, "image-check", 60))
        .map_err(|e| format!("{e} (the firmware did not accept the image cairn made)"))?;
    let log = cairn_k(&bin, &image, &["get", "device_log", "1"])?;
    if !log.contains(r#""event":"image-check""#) {
        return Err(format!("cairn reads the firmware's document as {log}"));
    }
    expect_eq(
        "the firmware's key",
        &cairn_k(&bin, &image, &["kv", "get", "config", "fw_seen"])?,
        "image-check",
    )?;
    expect_eq(
        "documents after the firmware",
        &cairn_k(&bin, &image, &["find", "provisioned", "--count"])?,
        "2",
    )?;
    cairn_k(&bin, &image, &["check"])?;

    // (3) An image the firmware formatted (the power-cut test's initial image): cairn reads it.
    let pc = build.join("pc-flash.img");
    if pc.exists() {
        std::fs::remove_file(&pc).map_err(|e| format!("{}: {e}", pc.display()))?;
    }
    run(&mut qemu_cmd(&elf, &build, "powercut-init", 60))?;
    let counter = cairn_k(&bin, &pc, &["get", "counters", "1"])?;
    if !counter.contains(r#""n":0"#) {
        return Err(format!("cairn reads the firmware's counter as {counter}"));
    }
    expect_eq(
        "the firmware's twin key",
        &cairn_k(&bin, &pc, &["kv", "get", "twin", "n"])?,
        "0",
    )?;
    cairn_k(&bin, &pc, &["check"])?;
    println!(
        "xtask: cairn made an image the firmware read and wrote, read the firmware's writes, and \
         read an image the firmware formatted"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Process helpers

/// rustup's cargo from PATH (the one a developer types), run from the workspace root.
fn cargo(ctx: &Ctx) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ctx.root);
    cmd
}

/// Runs `cmd` with inherited stdio (output streams as it comes) and fails on a non-zero exit.
fn run(cmd: &mut Command) -> StepResult {
    let shown = show(cmd);
    println!("$ {shown}");
    flush();
    let status = cmd.status().map_err(|e| spawn_error(cmd, &shown, &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(match status.code() {
            Some(code) => format!("`{shown}` exited with status {code}"),
            None => format!("`{shown}` was killed by a signal ({status})"),
        })
    }
}

/// Runs `cmd` quietly and returns its trimmed stdout.
fn capture(cmd: &mut Command) -> Result<String, String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(cmd, &shown, &e))?;
    if !out.status.success() {
        return Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spawn_error(cmd: &Command, shown: &str, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!(
            "cannot run `{shown}`: `{}` not found",
            cmd.get_program().to_string_lossy()
        )
    } else {
        format!("cannot run `{shown}`: {e}")
    }
}

/// The command as a shell line, with the variables it sets, for logs and error messages.
fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            parts.push(format!("{}={}", k.to_string_lossy(), quote(v)));
        }
    }
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn split_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_string)
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn flush() {
    let _ = io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique_and_plain() {
        for (i, a) in STEPS.iter().enumerate() {
            assert!(!a.name.is_empty() && !a.name.contains([',', ' ']));
            assert!(
                STEPS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn commands_are_shown_as_shell_lines() {
        let mut cmd = Command::new("cargo");
        cmd.args(["fmt", "--", "--check", "a b", "it's"])
            .env("X_Y", "1 2");
        assert_eq!(
            show(&cmd),
            r"X_Y='1 2' cargo fmt -- --check 'a b' 'it'\''s'"
        );
    }

    #[test]
    fn negative_macros_get_parentheses() {
        assert_eq!(
            parenthesize_negative_macros("#define A -1\n#define B 2\n#define C -x\n"),
            "#define A (-1)\n#define B 2\n#define C -x\n"
        );
    }

    #[test]
    fn the_kernel_is_found_beside_freertos_next() {
        let meta = r#"{"packages":[{"name":"nb","manifest_path":"/r/nb-1.1.0/Cargo.toml"},{"name":"freertos-next","manifest_path":"/r/freertos-next-0.12.0/Cargo.toml"}]}"#;
        assert_eq!(
            kernel_dir_in_metadata(meta),
            Some(PathBuf::from("/r/freertos-next-0.12.0/FreeRTOS-Kernel"))
        );
        assert_eq!(kernel_dir_in_metadata(r#"{"packages":[]}"#), None);
    }

    #[test]
    fn the_background_stack_line_is_read_tolerantly() {
        let out = "tasks: cairn-bg (1: every 200 ms sweeps at most 8)\n\
                   [cairndb info] cairn-bg: swept 4 expired item(s)\n\
                   [ 1894 ms] cairn-bg stopped: 10 wakes, 20 expired readings swept\n\
                   stack high-water marks (bytes never used): cairn-bg 9248 of 16384, \
                   producer 11120 of 16384, main 7920 of 16384\n";
        assert_eq!(parse_bg_stack(out), Some((9248, 16384)));
        assert_eq!(
            parse_bg_stack("[x] cairn-bg: 10 of 2048 bytes"),
            Some((10, 2048))
        );
        assert_eq!(parse_bg_stack("cairn-bg 5000 of 4096"), None);
        assert_eq!(parse_bg_stack("cairn-bg 12"), None);
        assert_eq!(parse_bg_stack("no such line"), None);
    }

    #[test]
    fn size_output_is_parsed() {
        let out = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n  78892\t    100\t     16\t  79008\t  134a0\tkv";
        assert_eq!(
            parse_size_output(out),
            Some(Sizes {
                text: 78892,
                data: 100,
                bss: 16
            })
        );
        assert_eq!(parse_size_output("text data bss"), None);
    }

    #[test]
    fn only_growth_past_ten_percent_fails() {
        let base = parse_baseline("# c\n\na.kv.text=1000000\na.kv.bss=0\nbad line\n");
        assert_eq!(base.len(), 2);
        let now = |text: u64, bss: u64| {
            vec![
                ("a.kv.text".to_string(), text),
                ("a.kv.bss".to_string(), bss),
                ("a.new.text".to_string(), 5),
            ]
        };
        assert!(footprint_regressions(&base, &now(1_100_000, 256)).is_empty());
        assert!(footprint_regressions(&base, &now(10, 0)).is_empty());
        let grown = footprint_regressions(&base, &now(1_100_001, 257));
        assert_eq!(grown.len(), 2, "{grown:?}");
        assert!(grown[0].starts_with("a.kv.text is 1100001"));
    }

    #[test]
    fn bad_cli_input_is_a_usage_error() {
        let root = repo_root();
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for bad in [
            &[][..],
            &["nope"],
            &["test", "--only"],
            &["test", "--only", ","],
            &["test", "--only", "nope"],
            &["test", "--frob"],
            &["bench", "--slow"],
            &["qemu", "--frob"],
            &["freertos-host", "--frob"],
            &["demo", "--frob"],
            &["demo", "--", "x"],
            &["header", "--frob"],
            &["footprint", "--frob"],
        ] {
            assert!(
                matches!(dispatch(&root, &args(bad)), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
    }
}
