//! The "kv" harness of `cargo xtask footprint` (see the crate's documentation).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[no_mangle]
pub extern "C" fn main() -> i32 {
    run()
}

#[cfg(not(target_os = "none"))]
fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    match cairndb_footprint::device().map(cairndb_footprint::kv) {
        Some(Ok(2)) => 0,
        _ => 1,
    }
}
