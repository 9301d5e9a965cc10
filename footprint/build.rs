//! Bare-metal link of the harnesses: arm-none-eabi-gcc (the linker `cargo xtask footprint`
//! sets) with newlib-nano for littlefs's libc calls and the allocator's malloc, no start files
//! (the entry is `main`), --gc-sections like a firmware. Host builds link normally.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("-none-") {
        return;
    }
    // The multilib newlib must match the code's float ABI.
    let cpu: &[&str] = if target.starts_with("thumbv7em") && target.ends_with("eabihf") {
        &["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    } else if target.starts_with("thumbv7em") {
        &["-mcpu=cortex-m4", "-mfloat-abi=soft"]
    } else if target.starts_with("thumbv7m") {
        &["-mcpu=cortex-m3"]
    } else if target.starts_with("thumbv6m") {
        &["-mcpu=cortex-m0"]
    } else {
        &[]
    };
    for arg in cpu.iter().chain(&[
        "-mthumb",
        "-nostartfiles",
        "-specs=nano.specs",
        "-specs=nosys.specs",
        "-Wl,--entry=main",
        "-Wl,--gc-sections",
        "-Wl,--no-warn-rwx-segments",
        "-Wl,--start-group",
        "-lc_nano",
        "-lgcc",
        "-lnosys",
        "-Wl,--end-group",
    ]) {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
