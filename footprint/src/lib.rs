//! What `cargo xtask footprint` links to measure cairndb on a Cortex-M: each binary calls the
//! public entry points of one configuration with `black_box`-ed inputs, so that LTO keeps what
//! a firmware using that API pays for and drops the rest. `empty` has the same runtime (panic
//! handler, allocator over newlib's malloc) and no database: the library's share is a
//! configuration's size minus `empty`'s. On the host the same functions run on a RAM device
//! (the tests below), which proves the harnesses really reach the calls they claim to.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use cairndb::db::{BackupKeySpec, Config, Database, IndexSpec, Key};
use cairndb::flash::{BlockDevice, Geometry, RamFlash};
use cairndb::{Error, Result};
use core::hint::black_box;

/// The measured device: cairndb's own RAM flash (a firmware brings its driver instead; this
/// one is a few hundred bytes of the figures).
pub fn device() -> Option<RamFlash> {
    RamFlash::new(black_box(Geometry {
        read_size: 16,
        prog_size: 16,
        block_size: 4096,
        block_count: 64,
    }))
}

fn unpair<T, D>(r: core::result::Result<T, (Error, D)>) -> Result<T> {
    r.map_err(|(e, _)| e)
}

/// "kv": a plaintext database used as a key-value store only (format, open, put, get,
/// delete, a transaction). Returns the number of keys found at the end (2).
pub fn kv<D: BlockDevice>(dev: D) -> Result<usize> {
    let cfg = black_box(Config::default());
    let ns = black_box("cfg");
    let mut db = unpair(Database::format(dev, &cfg, &Key::None))?;
    db.kv_put(ns, black_box(b"wifi"), black_box(b"secret"))?;
    db.kv_put(ns, black_box(b"gone"), black_box(b"x"))?;
    db.transaction(|t| {
        t.kv_put(ns, black_box(b"boots"), black_box(&[1]))?;
        t.kv_delete(ns, black_box(b"gone"))?;
        Ok(())
    })?;
    let (r, dev) = db.close();
    r?;
    let mut db = unpair(Database::open(dev, &cfg, &Key::None))?;
    db.kv_delete(ns, black_box(b"nothing"))?;
    let mut found = 0;
    for k in [&b"wifi"[..], b"boots", b"gone"] {
        if db.kv_get(ns, black_box(k))?.is_some() {
            found += 1;
        }
    }
    db.close().0?;
    Ok(found)
}

/// The key "full" opens with: a black box, so every kind of key (none, raw, passphrase) stays.
const KEY: [u8; 32] = [0xA5; 32];

/// "full": documents and key-value on an encrypted database: format/open, insert, get, find
/// with a filter and a sort, an index, a transaction, kv, a full backup, a check. Returns the
/// documents the find returned (2) plus the backup's length.
pub fn full<D: BlockDevice>(dev: D) -> Result<(usize, usize)> {
    let cfg = black_box(Config::default());
    let key = black_box(Key::Raw(&KEY));
    let coll = black_box("sensors");
    let mut db = unpair(Database::open_or_format(dev, &cfg, &key))?;
    db.create_index(
        coll,
        black_box("by_t"),
        &IndexSpec {
            fields: black_box(&["t"]),
            unique: false,
            partial: None,
        },
    )?;
    let id = db.insert_json(coll, black_box(r#"{"name":"a","t":21.5,"tags":["x"]}"#))?;
    db.insert_json(coll, black_box(r#"{"name":"b","t":19}"#))?;
    db.insert_json(coll, black_box(r#"{"name":"c","t":25}"#))?;
    db.transaction(|t| {
        t.kv_put(black_box("cfg"), black_box(b"last"), &id.to_le_bytes())?;
        let doc = t.get(coll, id)?.ok_or(Error::NotFound)?;
        t.replace(coll, id, &doc)?;
        Ok(())
    })?;
    db.get_json(coll, black_box(id))?.ok_or(Error::NotFound)?;
    let found = db.find_json(
        coll,
        black_box(r#"{"t":{"$gt":20}}"#),
        black_box(r#"{"sort":{"t":-1},"limit":10}"#),
    )?;
    db.kv_put(black_box("cfg"), black_box(b"k"), black_box(b"v"))?;
    db.kv_get(black_box("cfg"), black_box(b"k"))?;
    db.kv_delete(black_box("cfg"), black_box(b"k"))?;
    let mut stream: Vec<u8> = Vec::new();
    db.backup_full(&mut stream, &BackupKeySpec::Database)?;
    if !db.check()?.is_clean() {
        return Err(Error::Corrupt);
    }
    let (r, dev) = db.close();
    r?;
    let mut db = unpair(Database::open(dev, &cfg, &key))?;
    db.get(coll, black_box(id))?.ok_or(Error::NotFound)?;
    db.close().0?;
    Ok((found.len(), stream.len()))
}

/// The bare-metal runtime every harness shares (the `empty` one included).
#[cfg(target_os = "none")]
mod runtime {
    use core::alloc::{GlobalAlloc, Layout};

    extern "C" {
        fn malloc(size: usize) -> *mut u8;
        fn free(p: *mut u8);
        fn realloc(p: *mut u8, size: usize) -> *mut u8;
    }

    /// newlib's malloc (8-byte aligned); larger alignments are refused.
    struct Newlib;

    unsafe impl GlobalAlloc for Newlib {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.align() > 8 {
                return core::ptr::null_mut();
            }
            // SAFETY: plain C allocation.
            unsafe { malloc(layout.size()) }
        }
        unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
            // SAFETY: `p` came from malloc/realloc.
            unsafe { free(p) }
        }
        unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            if layout.align() > 8 {
                return core::ptr::null_mut();
            }
            // SAFETY: `p` came from malloc/realloc.
            unsafe { realloc(p, size) }
        }
    }

    #[global_allocator]
    static ALLOC: Newlib = Newlib;

    /// Panics (none are expected) stop the core; the message is not formatted, so no
    /// formatting code is linked for it.
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kv_harness_reaches_its_calls() {
        assert_eq!(kv(device().unwrap()).unwrap(), 2);
    }

    #[test]
    fn the_full_harness_reaches_its_calls() {
        let (found, backup) = full(device().unwrap()).unwrap();
        assert_eq!(found, 2);
        assert!(backup > 0);
    }
}
