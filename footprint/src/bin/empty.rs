//! The "empty" harness of `cargo xtask footprint` (see the crate's documentation).
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

/// The runtime alone: one allocation, so the allocator is linked as in the others.
fn run() -> i32 {
    extern crate alloc;
    use cairndb_footprint as _;
    let b = core::hint::black_box(alloc::boxed::Box::new(core::hint::black_box(7u32)));
    *b as i32 - 7
}
