//! Records the compiler and the littlefs binding versions for the report's header.

use std::path::Path;
use std::process::Command;

fn main() {
    // Cargo tells build scripts which rustc builds the crate.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={version}");

    // The littlefs C source comes with the littlefs2-sys crate: report the version locked.
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let sys = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "littlefs2-sys"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BENCH_LITTLEFS2_SYS_VERSION={sys}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The `version` of package `name` in a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let v = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(v.trim_matches('"').to_string());
        }
    }
    None
}
