//! The C API of cairndb: `libcairndb.a` plus the generated header `include/cairndb.h`
//! (`cargo xtask header` regenerates it from the doc comments below; `--check` fails on a
//! stale header).
//!
//! Conventions (sqlite3.h and littlefs): `cairn_<object>_<verb>` names, `CAIRN_` constants,
//! opaque handles, `CAIRN_OK` (0) or a negative `CAIRN_ERR_*` code from every call that can
//! fail, [`cairn_strerror`], version macros with a runtime twin ([`cairn_version`]), and
//! `cairn_close(NULL)` a no-op. Documents cross the boundary as JSON text, key-value values as
//! raw bytes.
//!
//! # Memory and panics
//!
//! - Hosted targets (Linux, macOS, ...): the crate links std, allocates with std's system
//!   allocator, and runs every exported body under `catch_unwind`: a panic (a bug) becomes
//!   [`CAIRN_ERR_INTERNAL`] and the handle it happened on refuses every later call but
//!   [`cairn_close`], which then drops it without flash I/O (as a power cut would; the data on
//!   flash stays consistent by design).
//! - Bare-metal targets (`target_os = "none"`, the Cortex-M builds): `no_std` + `alloc`. The
//!   heap is the firmware's: this crate's global allocator calls the C library's
//!   `malloc`/`free` (newlib, picolibc, or a firmware wrapper over its RTOS heap), which every
//!   C firmware has already; [`cairn_set_allocator`] reroutes it (an RTOS heap) before the
//!   first call. The panic strategy of these targets is `abort` (and the workspace
//!   release profile sets `panic = "abort"`), so no panic can unwind into C: the panic handler
//!   calls the C library's `abort()`.
//! - Nothing in this crate panics on its inputs: every pointer is checked for NULL, every
//!   string for UTF-8, every length against its buffer, and the core library reports corrupt
//!   data and exhausted space as errors.
//!
//! # Tasks, the platform lock and transactions
//!
//! One handle may serve several RTOS tasks when the config brings a lock (`lock`/`unlock`,
//! zero: none). Every call takes one level of it around its body, bounded by
//! `lock_timeout_ms` ([`CAIRN_ERR_TIMEOUT`] past it; the library never waits for anything else
//! while holding it, so it cannot deadlock by itself). The lock must be recursive: without a
//! thread identity from the platform, recursion is what tells the holder's own nested call
//! (refused at once with [`CAIRN_ERR_BUSY`] by the handle's `RefCell`, as a callback calling
//! back in is) from another task's call (which waits).
//!
//! The core's `Txn` borrows its `Database`, so a C transaction, which spans many calls, lives
//! inside the handle (`txn.rs`): one per handle, holding one lock level from
//! [`cairn_txn_begin`] to its commit or rollback, so other tasks wait for it instead of
//! seeing half of it. Every transaction call of the core is all or nothing (a failed call
//! undoes its own staged writes), so an error inside a transaction leaves it going; only
//! cairn_txn_log_event(), which is not a unit in the core, aborts it on a database error
//! (see `txn.rs`). [`cairn_close`] discards an open transaction. The core's own shared handle
//! (`cairndb::shared`, which lets other tasks read while a transaction is open) needs a clock,
//! a sleep and task identities from the platform; the C layer keeps the simpler rule of the
//! lock held from begin to end until its config carries those.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use cairndb::db::{Config, Database, IndexSpec, Key, Txn};
use cairndb::flash::{BlockDevice, CallbackDevice, FlashCallbacks};
use cairndb::query::FindOptions;
use cairndb::value::{self, Value};
use cairndb::Error;
use core::cell::{Cell, RefCell};
use core::ffi::{c_char, c_void, CStr};
use core::ptr::NonNull;

#[cfg(target_os = "none")]
mod device;

/// Where an over-aligned block starts inside a `malloc` result at `raw` padded by `align` plus
/// one pointer (see `device.rs`): the first `align`-aligned offset that leaves room for the
/// original pointer just below it. Always within `size_of::<*mut u8>()..=align + that`.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn over_aligned_offset(raw: usize, align: usize) -> usize {
    let base = raw + core::mem::size_of::<*mut u8>();
    let aligned = (base + align - 1) & !(align - 1);
    aligned - raw
}

// ---------------------------------------------------------------------------------------------
// Version

/// The runtime twin of `CAIRN_VERSION_NUMBER`: major * 1000000 + minor * 1000 + patch of the
/// library actually linked. Compare it with the header's macro to catch a mismatch.
///
/// Thread safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn cairn_version() -> i32 {
    VERSION_NUMBER
}

/// The runtime twin of `CAIRN_VERSION`: the library's version as text ("0.1.0"), a static
/// string the caller must not free.
///
/// Thread safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn cairn_version_string() -> *const c_char {
    VERSION_STRING.as_ptr().cast()
}

const VERSION_STRING: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

const fn parse_u32(s: &str) -> i32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0i32;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as i32;
        i += 1;
    }
    n
}

const VERSION_NUMBER: i32 = parse_u32(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
    + parse_u32(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
    + parse_u32(env!("CARGO_PKG_VERSION_PATCH"));

// ---------------------------------------------------------------------------------------------
// Error codes

/// Success.
pub const CAIRN_OK: i32 = 0;
/// The block device reported an I/O error (a flash callback returned an error).
pub const CAIRN_ERR_IO: i32 = -1;
/// Data on flash failed its authentication tag or checksum, or is structurally invalid.
pub const CAIRN_ERR_CORRUPT: i32 = -2;
/// The database is encrypted and the key or passphrase given does not open it.
pub const CAIRN_ERR_WRONG_KEY: i32 = -3;
/// The database is encrypted but no key was given, or a key was given for a plain database.
pub const CAIRN_ERR_KEY_MISMATCH: i32 = -4;
/// The flash (or a configured bound of the store) is full.
pub const CAIRN_ERR_NO_SPACE: i32 = -5;
/// No database exists on the device (format it first).
pub const CAIRN_ERR_NOT_FORMATTED: i32 = -6;
/// The on-flash format version is not one this build reads.
pub const CAIRN_ERR_UNSUPPORTED: i32 = -7;
/// The document, collection, namespace, key or index does not exist.
pub const CAIRN_ERR_NOT_FOUND: i32 = -8;
/// The object to create exists already.
pub const CAIRN_ERR_EXISTS: i32 = -9;
/// A collection, namespace, index or key name is empty, too long or has forbidden characters.
pub const CAIRN_ERR_INVALID_NAME: i32 = -10;
/// An argument is outside what the call accepts (also an invalid configuration or key).
pub const CAIRN_ERR_INVALID_ARGUMENT: i32 = -11;
/// A document, key or value is larger than the configured limit; also a query list past its
/// bound or a sort without a limit past `max_sort_docs`.
pub const CAIRN_ERR_TOO_LARGE: i32 = -12;
/// A document or filter nests deeper than the configured limit.
pub const CAIRN_ERR_TOO_DEEP: i32 = -13;
/// JSON text could not be parsed.
pub const CAIRN_ERR_JSON: i32 = -14;
/// A patch document is malformed (unknown operator, wrong operand type).
pub const CAIRN_ERR_INVALID_PATCH: i32 = -15;
/// A transaction's write set exceeds the configured bound.
pub const CAIRN_ERR_TXN_TOO_LARGE: i32 = -16;
/// A RAM allocation failed or a configured RAM bound was exceeded.
pub const CAIRN_ERR_NO_MEMORY: i32 = -17;
/// Another littlefs error.
pub const CAIRN_ERR_FS: i32 = -18;
/// A collection schema is malformed or uses an unsupported keyword.
pub const CAIRN_ERR_BAD_SCHEMA: i32 = -19;
/// A query filter or find option is malformed (unknown operator, wrong operand type, bad path).
pub const CAIRN_ERR_BAD_FILTER: i32 = -20;
/// A write would give a unique index a value another document holds already.
pub const CAIRN_ERR_UNIQUE: i32 = -21;
/// A document does not satisfy its collection's schema.
pub const CAIRN_ERR_SCHEMA_VIOLATION: i32 = -22;
/// Waiting for the platform lock or another task's transaction exceeded the timeout.
pub const CAIRN_ERR_TIMEOUT: i32 = -23;
/// A backup stream is tampered, truncated, keyed differently or not a backup.
pub const CAIRN_ERR_BAD_BACKUP: i32 = -24;
/// A backup chain is out of order, foreign, or its base is no longer served.
pub const CAIRN_ERR_BACKUP_CHAIN: i32 = -25;
/// A required pointer argument is NULL.
pub const CAIRN_ERR_NULL: i32 = -30;
/// A string argument is not valid UTF-8.
pub const CAIRN_ERR_UTF8: i32 = -31;
/// The caller's buffer is too small; the length needed was stored through the length pointer.
pub const CAIRN_ERR_BUFFER_TOO_SMALL: i32 = -32;
/// The handle is in use: a callback called back into the database it was called from, or
/// another owner's transaction is open.
pub const CAIRN_ERR_BUSY: i32 = -33;
/// An internal error (a bug in cairndb): the handle refuses every later call but
/// cairn_close().
pub const CAIRN_ERR_INTERNAL: i32 = -34;
/// A typed accessor found a value of another type at the path (cairn_doc_get_i64() on a
/// string, ...).
pub const CAIRN_ERR_TYPE: i32 = -35;
/// The transaction was aborted by an earlier error inside it (a failed cairn_txn_log_event():
/// every other transaction call is all or nothing): nothing of it will be committed; end it
/// with cairn_txn_rollback() (or cairn_txn_commit(), which also ends it).
pub const CAIRN_ERR_TXN_ABORTED: i32 = -36;

/// Return code of a flash callback for a bad block (littlefs's `LFS_ERR_CORRUPT`): the data is
/// relocated. Any other nonzero return code is an I/O error.
pub const CAIRN_FLASH_ERR_CORRUPT: i32 = -84;

/// The version of ::cairn_config_t this header describes (a zero `version` field means it).
/// Version 1 ended at `log`; version 2 added the lock fields; version 3 `platform_ctx`.
pub const CAIRN_CONFIG_VERSION: u32 = 3;

/// `lock_timeout_ms` value for waiting without a bound (the lock callback receives it
/// unchanged: map it to `portMAX_DELAY`, `K_FOREVER`, ...).
pub const CAIRN_WAIT_FOREVER: u32 = u32::MAX;
/// The lock timeout used when `lock_timeout_ms` is 0, in milliseconds.
pub const CAIRN_DEFAULT_LOCK_TIMEOUT_MS: u32 = 5000;

/// Log levels passed to the `log` callback: a call failed (one line per failed call).
pub const CAIRN_LOG_ERROR: i32 = 1;
/// A warning (nothing failed): an open transaction discarded by cairn_close().
pub const CAIRN_LOG_WARN: i32 = 2;
/// Informational: open, format, rekey, compact, restore, repair and close of a handle.
pub const CAIRN_LOG_INFO: i32 = 3;
/// Debugging detail: an event-log level only (cairn_log_event()); the log callback never
/// receives it.
pub const CAIRN_LOG_DEBUG: i32 = 4;

/// Length of a raw key in bytes.
pub const CAIRN_KEY_LEN: u32 = 32;
/// PBKDF2 iterations used when ::cairn_key_t's `kdf_iterations` is 0.
pub const CAIRN_DEFAULT_KDF_ITERATIONS: u32 = 10_000;

fn code_of(e: Error) -> i32 {
    match e {
        Error::Io => CAIRN_ERR_IO,
        Error::Corrupt => CAIRN_ERR_CORRUPT,
        Error::WrongKey => CAIRN_ERR_WRONG_KEY,
        Error::KeyMismatch => CAIRN_ERR_KEY_MISMATCH,
        Error::NoSpace => CAIRN_ERR_NO_SPACE,
        Error::NotFormatted => CAIRN_ERR_NOT_FORMATTED,
        Error::Unsupported => CAIRN_ERR_UNSUPPORTED,
        Error::NotFound => CAIRN_ERR_NOT_FOUND,
        Error::Exists => CAIRN_ERR_EXISTS,
        Error::InvalidName => CAIRN_ERR_INVALID_NAME,
        Error::InvalidArgument => CAIRN_ERR_INVALID_ARGUMENT,
        Error::TooLarge => CAIRN_ERR_TOO_LARGE,
        Error::TooDeep => CAIRN_ERR_TOO_DEEP,
        Error::Json => CAIRN_ERR_JSON,
        Error::InvalidPatch => CAIRN_ERR_INVALID_PATCH,
        Error::TxnTooLarge => CAIRN_ERR_TXN_TOO_LARGE,
        Error::NoMemory => CAIRN_ERR_NO_MEMORY,
        // littlefs's own no-space and no-memory codes keep their meaning.
        Error::Fs(-28) => CAIRN_ERR_NO_SPACE,
        Error::Fs(-12) => CAIRN_ERR_NO_MEMORY,
        Error::Fs(_) => CAIRN_ERR_FS,
        Error::BadSchema => CAIRN_ERR_BAD_SCHEMA,
        Error::BadFilter => CAIRN_ERR_BAD_FILTER,
        Error::Unique => CAIRN_ERR_UNIQUE,
        Error::SchemaViolation => CAIRN_ERR_SCHEMA_VIOLATION,
        Error::Timeout => CAIRN_ERR_TIMEOUT,
        Error::Busy => CAIRN_ERR_BUSY,
        Error::BadBackup => CAIRN_ERR_BAD_BACKUP,
        Error::BackupChain => CAIRN_ERR_BACKUP_CHAIN,
        // A variant added to the core without a code here yet.
        _ => CAIRN_ERR_INTERNAL,
    }
}

/// A static English description of `code` (any `CAIRN_OK`/`CAIRN_ERR_*` value; other values
/// give "unknown error"). Never NULL; the caller must not free it.
///
/// Thread safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn cairn_strerror(code: i32) -> *const c_char {
    strerror(code).as_ptr().cast()
}

fn strerror(code: i32) -> &'static str {
    match code {
        CAIRN_OK => "ok\0",
        CAIRN_ERR_IO => "flash I/O error\0",
        CAIRN_ERR_CORRUPT => "data on flash is corrupt\0",
        CAIRN_ERR_WRONG_KEY => "wrong key\0",
        CAIRN_ERR_KEY_MISMATCH => "encryption setting does not match the database\0",
        CAIRN_ERR_NO_SPACE => "no space left\0",
        CAIRN_ERR_NOT_FORMATTED => "no database on this device\0",
        CAIRN_ERR_UNSUPPORTED => "unsupported format version\0",
        CAIRN_ERR_NOT_FOUND => "not found\0",
        CAIRN_ERR_EXISTS => "already exists\0",
        CAIRN_ERR_INVALID_NAME => "invalid name\0",
        CAIRN_ERR_INVALID_ARGUMENT => "invalid argument\0",
        CAIRN_ERR_TOO_LARGE => "too large\0",
        CAIRN_ERR_TOO_DEEP => "nested too deeply\0",
        CAIRN_ERR_JSON => "invalid JSON\0",
        CAIRN_ERR_INVALID_PATCH => "invalid patch\0",
        CAIRN_ERR_TXN_TOO_LARGE => "transaction too large\0",
        CAIRN_ERR_NO_MEMORY => "out of memory\0",
        CAIRN_ERR_FS => "filesystem error\0",
        CAIRN_ERR_BAD_SCHEMA => "invalid schema\0",
        CAIRN_ERR_BAD_FILTER => "invalid filter\0",
        CAIRN_ERR_UNIQUE => "unique index violated\0",
        CAIRN_ERR_SCHEMA_VIOLATION => "schema violated\0",
        CAIRN_ERR_TIMEOUT => "timed out\0",
        CAIRN_ERR_BAD_BACKUP => "invalid backup\0",
        CAIRN_ERR_BACKUP_CHAIN => "broken backup chain\0",
        CAIRN_ERR_NULL => "NULL argument\0",
        CAIRN_ERR_UTF8 => "string is not valid UTF-8\0",
        CAIRN_ERR_BUFFER_TOO_SMALL => "buffer too small\0",
        CAIRN_ERR_BUSY => {
            "database busy: called from its own callback, or another transaction is open\0"
        }
        CAIRN_ERR_INTERNAL => "internal error\0",
        CAIRN_ERR_TYPE => "value has another type\0",
        CAIRN_ERR_TXN_ABORTED => "transaction aborted by an earlier error\0",
        _ => "unknown error\0",
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Reads `len` bytes at offset `off` of erase block `block` into `buf`. Returns 0, or
/// ::CAIRN_FLASH_ERR_CORRUPT for a bad block, or any other nonzero value for an I/O error.
/// Requests are always inside the geometry, aligned to `read_size`, and nonzero in length.
pub type cairn_read_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, block: u32, off: u32, buf: *mut u8, len: u32) -> i32,
>;
/// Programs `len` bytes from `buf` at offset `off` of block `block` (onto erased bytes;
/// NOR semantics: bits only go from 1 to 0). Aligned to `prog_size`. Return codes as for
/// ::cairn_read_fn.
pub type cairn_prog_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, block: u32, off: u32, buf: *const u8, len: u32) -> i32,
>;
/// Erases block `block` to 0xFF. Return codes as for ::cairn_read_fn.
pub type cairn_erase_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, block: u32) -> i32>;
/// Makes everything programmed so far durable. Return codes as for ::cairn_read_fn.
pub type cairn_sync_fn = Option<unsafe extern "C" fn(ctx: *mut c_void) -> i32>;
/// A monotonic clock (milliseconds suggested) that stamps each document's `_ts`.
pub type cairn_now_fn = Option<unsafe extern "C" fn(ctx: *mut c_void) -> u64>;
/// Fills `buf` with `len` random bytes from a cryptographic source; returns 0 on success.
pub type cairn_random_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> i32>;
/// Receives a NUL-terminated message at `level` (`CAIRN_LOG_*`); the text is valid only
/// during the call.
pub type cairn_log_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, level: i32, msg: *const c_char)>;
/// Takes the platform lock of a handle, waiting at most `timeout_ms` milliseconds
/// (::CAIRN_WAIT_FOREVER: no bound). Returns 0 when the lock is taken, any other value when
/// the wait timed out (the call then returns ::CAIRN_ERR_TIMEOUT).
///
/// The lock must be recursive: the task that holds it may take it again (a transaction holds
/// it from cairn_txn_begin() to its end, and each call inside takes it once more). FreeRTOS:
/// `xSemaphoreTakeRecursive` on a recursive mutex; Zephyr: `k_mutex_lock` (recursive as is);
/// POSIX: a `PTHREAD_MUTEX_RECURSIVE` mutex with `pthread_mutex_timedlock`. With a plain mutex,
/// a call made by the task holding the lock times out instead of returning ::CAIRN_ERR_BUSY.
pub type cairn_lock_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, timeout_ms: u32) -> i32>;
/// Releases one level of the platform lock taken by ::cairn_lock_fn, from the same task.
pub type cairn_unlock_fn = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// The `ctx` the clock callback receives. The core wants a `Send` clock (a database may move
/// between tasks); the C contract already covers it: callbacks run on whichever thread calls
/// into the handle, never concurrently for one handle.
struct ClockCtx(*mut c_void);

// SAFETY: see above; the pointer is only passed back to the C callback, never dereferenced.
unsafe impl Send for ClockCtx {}

impl ClockCtx {
    /// A method, so the closure captures the whole `Send` wrapper, not the raw field.
    fn ptr(&self) -> *mut c_void {
        self.0
    }
}

/// Everything cairn_open() needs: the flash device, the platform, and the limits. A zeroed
/// field means its default, so `cairn_config_t cfg = {0};` plus the device fields is a valid
/// configuration. cairn_open() copies the struct; `ctx`, `lock_ctx` and the callbacks must stay
/// valid until cairn_close().
///
/// Every callback is called from the thread that called into cairndb, never concurrently for
/// one handle (all of them but `lock`/`unlock` with the platform lock held), and must not call
/// back into the database it serves (that call returns ::CAIRN_ERR_BUSY).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_config_t {
    /// ::CAIRN_CONFIG_VERSION, or 0 for the same.
    pub version: u32,
    /// Passed unchanged as the first argument of the flash callbacks below (and of the
    /// clock, random and log callbacks when `platform_ctx` is NULL).
    pub ctx: *mut c_void,
    /// Required: reads from the flash.
    pub read: cairn_read_fn,
    /// Required: programs the flash.
    pub prog: cairn_prog_fn,
    /// Required: erases a block.
    pub erase: cairn_erase_fn,
    /// Optional: NULL means writes are durable as soon as `prog` returns.
    pub sync: cairn_sync_fn,
    /// Smallest read unit in bytes (required, nonzero).
    pub read_size: u32,
    /// Smallest program unit in bytes (required, nonzero).
    pub prog_size: u32,
    /// Erase block size in bytes, a multiple of `read_size` and `prog_size` (required).
    pub block_size: u32,
    /// Number of erase blocks (required).
    pub block_count: u32,
    /// littlefs cache size in bytes, a divisor of `block_size` and a multiple of `read_size`
    /// and `prog_size`. 0: 512 (clamped to the geometry).
    pub cache_size: u32,
    /// littlefs lookahead bitmap size in bytes. 0: 32.
    pub lookahead_size: u32,
    /// Erase cycles before littlefs moves a metadata pair (wear levelling); -1 disables.
    /// 0: 500.
    pub block_cycles: i32,
    /// Largest encoded document in bytes. 0: 1024.
    pub max_doc_bytes: u32,
    /// Deepest nesting of arrays and objects in a document. 0: 16.
    pub max_depth: u32,
    /// Longest collection, namespace or index name. 0: 32.
    pub max_name_len: u32,
    /// Longest key-value key in bytes. 0: 128.
    pub max_key_len: u32,
    /// Largest key-value value in bytes. 0: 1024.
    pub max_value_len: u32,
    /// Most documents a find keeps in RAM to sort when no index gives the order. 0: 64.
    pub max_sort_docs: u32,
    /// Optional clock: database time for `_ts` stamps, expiries (TTL) and operation latencies
    /// (milliseconds suggested; it may restart at each boot: database time never goes back).
    /// NULL: the time stands still within a boot (see cairn_set_time()).
    pub now_ms: cairn_now_fn,
    /// Optional random source; required to create a database (or rekey) with a passphrase,
    /// for the salt, and to write a passphrase backup without a salt of its own. Also the
    /// source of the database identity and backup ids (without it they are derived from the
    /// database's state; a failing call leaves zeros, the ids then rest on sequence numbers
    /// and time).
    pub random: cairn_random_fn,
    /// Optional log sink: every failed call logs one line at ::CAIRN_LOG_ERROR (a
    /// CAIRN_ERR_NOT_FOUND answer at ::CAIRN_LOG_DEBUG: it is an answer, not a fault); open,
    /// format, rekey, compact, restore, repair and close log at ::CAIRN_LOG_INFO.
    pub log: cairn_log_fn,
    /// Optional platform lock (version 2): set `lock` and `unlock` together (one without the
    /// other is ::CAIRN_ERR_INVALID_ARGUMENT) to share one handle between tasks. NULL: no
    /// locking; the handle is then for one task at a time.
    pub lock: cairn_lock_fn,
    /// Releases the platform lock (required with `lock`).
    pub unlock: cairn_unlock_fn,
    /// Passed unchanged as the first argument of `lock` and `unlock` (the mutex object).
    pub lock_ctx: *mut c_void,
    /// Longest wait for the lock, in milliseconds. 0: ::CAIRN_DEFAULT_LOCK_TIMEOUT_MS;
    /// ::CAIRN_WAIT_FOREVER: no bound.
    pub lock_timeout_ms: u32,
    /// Passed as the first argument of `now_ms`, `random` and `log` (version 3), so that
    /// platform glue keeps its state apart from the flash driver's `ctx`. NULL: those
    /// callbacks get `ctx`, as in versions 1 and 2.
    pub platform_ctx: *mut c_void,
}

impl cairn_config_t {
    /// The first argument of the clock, random and log callbacks.
    fn platform_ctx(&self) -> *mut c_void {
        if self.platform_ctx.is_null() {
            self.ctx
        } else {
            self.platform_ctx
        }
    }

    /// A copy of the caller's struct, reading only the fields its `version` has: a caller
    /// built against a version-1 header passes a shorter struct.
    ///
    /// # Safety
    /// `p` is NULL or points to a config of the version it declares.
    unsafe fn read(p: *const cairn_config_t) -> R<cairn_config_t> {
        if p.is_null() {
            return Err(CAIRN_ERR_NULL);
        }
        // SAFETY: every version starts with `version` (contract).
        let version = unsafe { p.cast::<u32>().read() };
        let len = match version {
            0 | CAIRN_CONFIG_VERSION => core::mem::size_of::<cairn_config_t>(),
            1 => core::mem::offset_of!(cairn_config_t, lock),
            2 => core::mem::offset_of!(cairn_config_t, platform_ctx),
            _ => return Err(CAIRN_ERR_INVALID_ARGUMENT),
        };
        // SAFETY: all-zero bytes are a valid config (NULL callbacks and pointers, zero sizes).
        let mut c: cairn_config_t = unsafe { core::mem::zeroed() };
        // SAFETY: the caller's struct has at least `len` bytes (its version's size).
        unsafe {
            core::ptr::copy_nonoverlapping(
                p.cast::<u8>(),
                (&mut c as *mut cairn_config_t).cast::<u8>(),
                len,
            )
        };
        Ok(c)
    }
}

/// A key for an encrypted database: a raw 32-byte key, or a passphrase (PBKDF2-HMAC-SHA256).
/// A NULL key pointer, or a zeroed struct, means no encryption. Setting both `raw` and
/// `passphrase` is ::CAIRN_ERR_INVALID_ARGUMENT. Only read during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_key_t {
    /// ::CAIRN_KEY_LEN bytes, or NULL.
    pub raw: *const u8,
    /// The passphrase bytes (need not be NUL-terminated), or NULL.
    pub passphrase: *const u8,
    /// Length of `passphrase` in bytes (nonzero when `passphrase` is set).
    pub passphrase_len: usize,
    /// PBKDF2 iterations when a database is created or rekeyed with a passphrase. 0:
    /// ::CAIRN_DEFAULT_KDF_ITERATIONS. Opening uses the value stored in the database.
    pub kdf_iterations: u32,
}

/// Statistics of an open database (cairn_stats()).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_stats_t {
    /// Transactions committed since open.
    pub commits: u64,
    /// WAL frames written since open.
    pub frames: u64,
    /// WAL folds into segment files since open.
    pub folds: u64,
    /// Segment merges since open.
    pub merges: u64,
    /// Root record writes since open.
    pub root_writes: u64,
    /// Total bytes of the live segment files.
    pub segment_bytes: u64,
    /// Live segment files.
    pub segments: u32,
    /// Bytes of committed data held in RAM (not yet folded into a segment).
    pub memtable_bytes: u32,
    /// Free erase blocks of the volume.
    pub free_blocks: u32,
    /// Erase blocks of the device.
    pub block_count: u32,
}

// ---------------------------------------------------------------------------------------------
// Boundary helpers

/// Runs `f`, turning a panic into [`CAIRN_ERR_INTERNAL`] on hosted targets. On bare-metal
/// targets panics abort (see the crate docs), so there is nothing to catch.
#[cfg(not(target_os = "none"))]
fn catch<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).ok()
}

#[cfg(target_os = "none")]
fn catch<R>(f: impl FnOnce() -> R) -> Option<R> {
    Some(f())
}

fn guard(f: impl FnOnce() -> Result<(), i32>) -> i32 {
    match catch(f) {
        Some(Ok(())) => CAIRN_OK,
        Some(Err(code)) => code,
        None => CAIRN_ERR_INTERNAL,
    }
}

type R<T> = Result<T, i32>;

fn db_err(e: Error) -> i32 {
    code_of(e)
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn text<'a>(p: *const c_char) -> R<&'a str> {
    if p.is_null() {
        return Err(CAIRN_ERR_NULL);
    }
    // SAFETY: the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| CAIRN_ERR_UTF8)
}

/// A byte-range argument; `len == 0` accepts NULL.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(p: *const c_void, len: usize) -> R<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(CAIRN_ERR_NULL);
    }
    if len > isize::MAX as usize {
        return Err(CAIRN_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: the caller's contract; nonzero length and non-NULL.
    Ok(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Copies `data` (plus a NUL when `nul`) into the caller's buffer, or reports the size needed.
///
/// # Safety
/// `buf` is NULL or valid for writes of `cap` bytes; `len_out` is NULL or valid for a write.
unsafe fn put(data: &[u8], nul: bool, buf: *mut c_void, cap: usize, len_out: *mut usize) -> R<()> {
    if buf.is_null() && cap != 0 {
        return Err(CAIRN_ERR_NULL);
    }
    if !len_out.is_null() {
        // SAFETY: the caller's contract.
        unsafe { len_out.write(data.len()) };
    }
    let need = data.len() + usize::from(nul);
    let buf = buf.cast::<u8>();
    if need > cap {
        if nul && cap > 0 {
            // SAFETY: cap > 0 and buf is valid for cap bytes.
            unsafe { buf.write(0) };
        }
        return Err(CAIRN_ERR_BUFFER_TOO_SMALL);
    }
    if need > 0 {
        // SAFETY: need <= cap; the regions cannot overlap (ours is a fresh Rust allocation).
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
            if nul {
                buf.add(data.len()).write(0);
            }
        }
    }
    Ok(())
}

/// Writes `v` through `out` when it is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
unsafe fn set<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: the caller's contract.
        unsafe { out.write(v) };
    }
}

fn json_text(cfg: &Config, text: &str) -> R<Value> {
    value::from_json(text.as_bytes(), cfg.max_depth).map_err(db_err)
}

/// Compact JSON text of `v`.
fn to_json(v: &Value) -> String {
    let mut s = String::new();
    value::to_json(v, &mut s);
    s
}

// ---------------------------------------------------------------------------------------------
// Handles

/// The platform part of the configuration kept by an open handle: the clock goes to the core
/// at open; the random source, the log sink and the lock stay here for the handle's life.
#[derive(Clone, Copy)]
struct Platform {
    ctx: *mut c_void,
    random: cairn_random_fn,
    log: cairn_log_fn,
    lock: cairn_lock_fn,
    unlock: cairn_unlock_fn,
    lock_ctx: *mut c_void,
    timeout_ms: u32,
}

impl Platform {
    fn of(c: &cairn_config_t) -> Platform {
        Platform {
            ctx: c.platform_ctx(),
            random: c.random,
            log: c.log,
            lock: c.lock,
            unlock: c.unlock,
            lock_ctx: c.lock_ctx,
            timeout_ms: match c.lock_timeout_ms {
                0 => CAIRN_DEFAULT_LOCK_TIMEOUT_MS,
                t => t,
            },
        }
    }

    /// Takes one level of the platform lock (nothing without one).
    fn enter(&self) -> R<()> {
        let Some(lock) = self.lock else {
            return Ok(());
        };
        // SAFETY: the config's contract for `lock`.
        match unsafe { lock(self.lock_ctx, self.timeout_ms) } {
            0 => Ok(()),
            _ => Err(CAIRN_ERR_TIMEOUT),
        }
    }

    /// Releases one level taken by [`Platform::enter`].
    fn leave(&self) {
        if let Some(unlock) = self.unlock {
            // SAFETY: the config's contract for `unlock`; this task holds the level.
            unsafe { unlock(self.lock_ctx) };
        }
    }

    /// Sends one line, built from `parts` and truncated to a fixed buffer, to the log sink.
    fn emit(&self, level: i32, parts: &[&[u8]]) {
        let Some(log) = self.log else { return };
        let mut line = [0u8; 128];
        let mut n = 0;
        for &b in parts.iter().flat_map(|p| p.iter()) {
            // A NUL inside a part would cut the line short; keep the rest readable.
            if n + 1 < line.len() && b != 0 {
                line[n] = b;
                n += 1;
            }
        }
        // SAFETY: the config's contract for `log`; the line is NUL-terminated (n < len).
        unsafe { log(self.ctx, level, line.as_ptr().cast()) };
    }

    /// "<function>: <description> (<code>)" at ::CAIRN_LOG_ERROR (::CAIRN_LOG_DEBUG for
    /// CAIRN_ERR_NOT_FOUND).
    fn log(&self, func: &str, code: i32) {
        let mut digits = [0u8; 12];
        let mut d = digits.len();
        let mut v = code.unsigned_abs();
        loop {
            d -= 1;
            digits[d] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if code < 0 {
            d -= 1;
            digits[d] = b'-';
        }
        // "Not found" answers a lookup; an error level would make every probe look like a fault.
        let level = if code == CAIRN_ERR_NOT_FOUND {
            CAIRN_LOG_DEBUG
        } else {
            CAIRN_LOG_ERROR
        };
        self.emit(
            level,
            &[
                func.as_bytes(),
                b": ",
                strerror(code).trim_end_matches('\0').as_bytes(),
                b" (",
                &digits[d..],
                b")",
            ],
        );
    }

    /// "<function>: <message>" at `level`.
    fn note(&self, level: i32, func: &str, msg: &str) {
        self.emit(level, &[func.as_bytes(), b": ", msg.as_bytes()]);
    }

    fn salt(&self) -> R<[u8; 16]> {
        let random = self.random.ok_or(CAIRN_ERR_INVALID_ARGUMENT)?;
        let mut salt = [0u8; 16];
        // SAFETY: the config's contract for `random`; `salt` is valid for 16 bytes.
        match unsafe { random(self.ctx, salt.as_mut_ptr(), salt.len()) } {
            0 => Ok(salt),
            _ => Err(CAIRN_ERR_IO),
        }
    }
}

type Db = Database<CallbackDevice>;

/// Where the handle's transaction stands.
enum Slot {
    /// No transaction: calls on the handle reach the database.
    Idle,
    /// cairn_txn_begin() succeeded: the transaction borrows the database (see [`State`]).
    Open(Txn<'static, CallbackDevice>),
    /// An error inside the transaction dropped its writes; it waits for commit or rollback.
    Aborted,
}

/// The database and its open transaction, if any.
///
/// `Txn` borrows the `Database` mutably, so a transaction that outlives one C call needs the
/// database at a fixed address and a borrow the compiler cannot see: the database lives in its
/// own allocation, owned through `db` (a raw pointer, so no reference to it exists while the
/// transaction's `&'static mut` does), and is reached only through [`State::db`], which refuses
/// while a transaction is open. The transaction is always dropped before the database.
struct State {
    db: NonNull<Db>,
    slot: Slot,
}

impl State {
    fn new(db: Db) -> State {
        State {
            db: NonNull::from(Box::leak(Box::new(db))),
            slot: Slot::Idle,
        }
    }

    /// The database for a call outside a transaction; ::CAIRN_ERR_BUSY while one is open.
    fn db(&mut self) -> R<&mut Db> {
        match self.slot {
            // SAFETY: no transaction borrows the database (Idle), and `&mut self` makes this
            // the only reference for its lifetime.
            Slot::Idle => Ok(unsafe { self.db.as_mut() }),
            Slot::Open(_) | Slot::Aborted => Err(CAIRN_ERR_BUSY),
        }
    }

    fn begin(&mut self) -> R<()> {
        if !matches!(self.slot, Slot::Idle) {
            return Err(CAIRN_ERR_BUSY);
        }
        // SAFETY: no other reference to the database exists (Idle, and every reference from
        // `db()` is bounded by a `&mut self` that has ended). The transaction is dropped
        // before the allocation is freed (`end`, `into_database`, `Drop`).
        let d: &'static mut Db = unsafe { &mut *self.db.as_ptr() };
        self.slot = Slot::Open(d.begin());
        Ok(())
    }

    /// The open transaction; ::CAIRN_ERR_TXN_ABORTED after an error in it, and
    /// ::CAIRN_ERR_INVALID_ARGUMENT when none is open (a transaction handle used after its end).
    fn txn(&mut self) -> R<&mut Txn<'static, CallbackDevice>> {
        match &mut self.slot {
            Slot::Open(t) => Ok(t),
            Slot::Aborted => Err(CAIRN_ERR_TXN_ABORTED),
            Slot::Idle => Err(CAIRN_ERR_INVALID_ARGUMENT),
        }
    }

    /// Ends the transaction slot, handing back what it held.
    fn end(&mut self) -> Slot {
        core::mem::replace(&mut self.slot, Slot::Idle)
    }

    fn has_txn(&self) -> bool {
        !matches!(self.slot, Slot::Idle)
    }

    /// The database, after dropping any open transaction.
    fn into_database(mut self) -> Db {
        self.slot = Slot::Idle;
        let p = self.db;
        core::mem::forget(self);
        // SAFETY: `p` came from Box::leak in `new`, nothing borrows it any more (Idle), and
        // `self` was forgotten so Drop will not free it again.
        *unsafe { Box::from_raw(p.as_ptr()) }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.slot = Slot::Idle;
        // SAFETY: as in `into_database`.
        drop(unsafe { Box::from_raw(self.db.as_ptr()) });
    }
}

/// An open database (opaque). Created by cairn_open(), cairn_format() or
/// cairn_open_or_format(); freed by cairn_close().
///
/// Thread safety: with a platform lock in the config (`lock`/`unlock`), one handle may be
/// shared by several tasks: every call takes the lock for its duration (waiting at most
/// `lock_timeout_ms`, else ::CAIRN_ERR_TIMEOUT), and a transaction holds it from
/// cairn_txn_begin() to its commit or rollback, so other tasks wait for it. Without a lock,
/// calls on one handle must not overlap: use it from one task, or serialise the calls.
/// cairn_close() must be the last call on a handle by any task. Handles on different devices
/// are independent.
pub struct cairn_db_t {
    state: RefCell<State>,
    platform: Platform,
    cfg: Config,
    poisoned: Cell<bool>,
    /// The address handed out as the handle's transaction.
    txn: cairn_txn_t,
}

/// A transaction (opaque): cairn_txn_begin() hands it out, cairn_txn_commit() or
/// cairn_txn_rollback() ends it. It lives inside its database handle, so a transaction
/// handle used after its end (while the database stays open and no other transaction is open)
/// gets ::CAIRN_ERR_INVALID_ARGUMENT rather than undefined behaviour.
pub struct cairn_txn_t {
    db: *const cairn_db_t,
}

impl cairn_db_t {
    /// Runs `f` on the handle's state with the checks every call shares: poisoned, re-entered
    /// from a callback (the RefCell), a panic (poisons the handle). No lock taken here.
    fn run(&self, f: impl FnOnce(&mut State) -> R<()>) -> i32 {
        if self.poisoned.get() {
            return CAIRN_ERR_INTERNAL;
        }
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return CAIRN_ERR_BUSY;
        };
        match catch(|| f(&mut state)) {
            Some(Ok(())) => CAIRN_OK,
            Some(Err(code)) => code,
            None => {
                self.poisoned.set(true);
                CAIRN_ERR_INTERNAL
            }
        }
    }

    /// [`cairn_db_t::run`] inside one level of the platform lock; logs a failure.
    fn call(&self, func: &str, f: impl FnOnce(&mut State) -> R<()>) -> i32 {
        let code = match self.platform.enter() {
            Ok(()) => {
                let code = self.run(f);
                self.platform.leave();
                code
            }
            Err(code) => code,
        };
        if code != CAIRN_OK {
            self.platform.log(func, code);
        }
        code
    }
}

/// Runs `f` on the database behind `db`, outside any transaction (::CAIRN_ERR_BUSY while the
/// handle has one open), with the checks of [`cairn_db_t::call`].
///
/// # Safety
/// `db` is NULL or a live handle from cairn_open().
unsafe fn with_db(db: *const cairn_db_t, func: &str, f: impl FnOnce(&mut Db) -> R<()>) -> i32 {
    // SAFETY: the caller's contract. Only shared references to the handle are made, so a
    // callback calling back in (with the same pointer) is refused by the RefCell, not UB.
    let Some(h) = (unsafe { db.as_ref() }) else {
        return CAIRN_ERR_NULL;
    };
    h.call(func, |s| f(s.db()?))
}

enum KeySpec<'a> {
    None,
    Raw(&'a [u8; 32]),
    Pass(&'a [u8], u32),
}

impl<'a> KeySpec<'a> {
    /// # Safety
    /// `k` is NULL or a valid key whose pointers outlive `'a`.
    unsafe fn read(k: *const cairn_key_t) -> R<KeySpec<'a>> {
        // SAFETY: the caller's contract.
        let Some(k) = (unsafe { k.as_ref() }) else {
            return Ok(KeySpec::None);
        };
        match (k.raw.is_null(), k.passphrase.is_null()) {
            (true, true) => Ok(KeySpec::None),
            (false, true) => {
                // SAFETY: the contract of `raw`: CAIRN_KEY_LEN readable bytes.
                Ok(KeySpec::Raw(unsafe { &*k.raw.cast::<[u8; 32]>() }))
            }
            (true, false) => {
                if k.passphrase_len == 0 {
                    return Err(CAIRN_ERR_INVALID_ARGUMENT);
                }
                // SAFETY: the contract of `passphrase`.
                let pass = unsafe { bytes(k.passphrase.cast(), k.passphrase_len)? };
                let iterations = match k.kdf_iterations {
                    0 => CAIRN_DEFAULT_KDF_ITERATIONS,
                    n => n,
                };
                Ok(KeySpec::Pass(pass, iterations))
            }
            (false, false) => Err(CAIRN_ERR_INVALID_ARGUMENT),
        }
    }

    fn needs_salt(&self) -> bool {
        matches!(self, KeySpec::Pass(..))
    }

    /// The core's key; `salt` is only used when creating (ignored on open).
    fn key(&self, salt: [u8; 16]) -> Key<'a> {
        match *self {
            KeySpec::None => Key::None,
            KeySpec::Raw(k) => Key::Raw(k),
            KeySpec::Pass(pass, iterations) => Key::Passphrase {
                pass,
                salt,
                iterations,
            },
        }
    }
}

fn core_config(c: &cairn_config_t) -> R<Config> {
    if c.version > CAIRN_CONFIG_VERSION {
        return Err(CAIRN_ERR_INVALID_ARGUMENT);
    }
    let mut cfg = Config::default();
    let size = |v: u32, default: usize| if v == 0 { default } else { v as usize };
    if c.cache_size != 0 {
        cfg.lfs.cache_size = c.cache_size;
    }
    if c.lookahead_size != 0 {
        cfg.lfs.lookahead_size = c.lookahead_size;
    }
    if c.block_cycles != 0 {
        cfg.lfs.block_cycles = c.block_cycles;
    }
    cfg.max_doc_bytes = size(c.max_doc_bytes, cfg.max_doc_bytes);
    cfg.max_depth = size(c.max_depth, cfg.max_depth);
    cfg.max_name_len = size(c.max_name_len, cfg.max_name_len);
    cfg.max_key_len = size(c.max_key_len, cfg.max_key_len);
    cfg.max_value_len = size(c.max_value_len, cfg.max_value_len);
    cfg.max_sort_docs = size(c.max_sort_docs, cfg.max_sort_docs);
    Ok(cfg)
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    Open,
    Format,
    OpenOrFormat,
    /// Open, dropping WAL frames that fail authentication (cairn_open_for_repair()).
    Repair,
}

/// # Safety
/// The contract of cairn_open().
pub(crate) unsafe fn open_impl(
    out: *mut *mut cairn_db_t,
    cfg: *const cairn_config_t,
    key: *const cairn_key_t,
    mode: Mode,
) -> i32 {
    if out.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: `out` is valid for a write (contract).
    unsafe { out.write(core::ptr::null_mut()) };
    // SAFETY: `cfg` is NULL or valid for its version (contract).
    let c = match unsafe { cairn_config_t::read(cfg) } {
        Ok(c) => c,
        Err(code) => return code,
    };
    let platform = Platform::of(&c);
    let func = match mode {
        Mode::Open => "cairn_open",
        Mode::Format => "cairn_format",
        Mode::OpenOrFormat => "cairn_open_or_format",
        Mode::Repair => "cairn_open_for_repair",
    };
    let mut formatted = mode == Mode::Format;
    let code = guard(|| {
        // SAFETY: `key` is NULL or valid (contract).
        let spec = unsafe { KeySpec::read(key)? };
        let config = core_config(&c)?;
        if c.lock.is_some() != c.unlock.is_some() {
            return Err(CAIRN_ERR_INVALID_ARGUMENT);
        }
        let callbacks = FlashCallbacks {
            ctx: c.ctx,
            read: c.read,
            prog: c.prog,
            erase: c.erase,
            sync: c.sync,
            read_size: c.read_size,
            prog_size: c.prog_size,
            block_size: c.block_size,
            block_count: c.block_count,
        };
        let new_dev = || {
            // SAFETY: cairn_open()'s contract on the callbacks and ctx (valid until close,
            // never unwinding, not re-entrant).
            unsafe { CallbackDevice::new(callbacks) }.ok_or(CAIRN_ERR_INVALID_ARGUMENT)
        };
        let format = |dev: CallbackDevice| -> R<Database<CallbackDevice>> {
            let salt = if spec.needs_salt() {
                platform.salt()?
            } else {
                [0; 16]
            };
            Database::format(dev, &config, &spec.key(salt)).map_err(|(e, _)| db_err(e))
        };
        let mut db = match mode {
            Mode::Format => format(new_dev()?)?,
            Mode::Repair => Database::open_for_repair(new_dev()?, &config, &spec.key([0; 16]))
                .map_err(|(e, _)| db_err(e))?,
            Mode::Open | Mode::OpenOrFormat => {
                match Database::open(new_dev()?, &config, &spec.key([0; 16])) {
                    Ok(db) => db,
                    Err((Error::NotFormatted, dev)) if mode == Mode::OpenOrFormat => {
                        formatted = true;
                        format(dev)?
                    }
                    Err((e, _)) => return Err(db_err(e)),
                }
            }
        };
        if let Some(now) = c.now_ms {
            let ctx = ClockCtx(c.platform_ctx());
            // SAFETY: the config's contract for `now_ms`.
            db.set_clock(Box::new(move || unsafe { now(ctx.ptr()) }));
        }
        if let Some(random) = c.random {
            let ctx = ClockCtx(c.platform_ctx());
            db.set_random(Box::new(move |buf: &mut [u8]| {
                // SAFETY: the config's contract for `random`; `buf` is valid for its length.
                if unsafe { random(ctx.ptr(), buf.as_mut_ptr(), buf.len()) } != 0 {
                    // The core cannot fail here: the identity then rests on the other
                    // inputs of the backup id (sequence numbers, time).
                    buf.fill(0);
                }
            }));
        }
        let handle = Box::into_raw(Box::new(cairn_db_t {
            state: RefCell::new(State::new(db)),
            platform,
            cfg: config,
            poisoned: Cell::new(false),
            txn: cairn_txn_t {
                db: core::ptr::null(),
            },
        }));
        // SAFETY: `handle` is a fresh allocation no reference points into yet; `out` is
        // valid for a write (contract).
        unsafe {
            (*handle).txn.db = handle;
            out.write(handle);
        }
        Ok(())
    });
    if code != CAIRN_OK {
        platform.log(func, code);
    } else if formatted {
        platform.note(
            CAIRN_LOG_INFO,
            func,
            "formatted the device, created a database",
        );
    } else {
        platform.note(CAIRN_LOG_INFO, func, "opened the database");
    }
    code
}

/// Opens the database on the device described by `cfg`.
///
/// @param db   receives the new handle, or NULL on failure. Ownership passes to the caller,
///             who frees it with cairn_close().
/// @param cfg  the device, platform and limits; copied. `cfg->ctx`, `cfg->lock_ctx` and the
///             callbacks must stay valid until cairn_close().
/// @param key  NULL (or zeroed) for a plain database, else the key it was created with; only
///             read during the call.
/// @retval CAIRN_OK                   opened.
/// @retval CAIRN_ERR_NULL             `db` or `cfg` is NULL.
/// @retval CAIRN_ERR_INVALID_ARGUMENT a required callback is NULL, `lock` is set without
///             `unlock` or the reverse, the geometry is invalid, a limit is unusable,
///             `cfg->version` is newer than this library, or the key sets both `raw` and
///             `passphrase` (or an empty passphrase).
/// @retval CAIRN_ERR_NOT_FORMATTED    no database on the device.
/// @retval CAIRN_ERR_WRONG_KEY        the key does not open it (nothing is written).
/// @retval CAIRN_ERR_KEY_MISMATCH     encrypted without a key given, or plain with a key.
/// @retval CAIRN_ERR_CORRUPT, CAIRN_ERR_UNSUPPORTED, CAIRN_ERR_IO, CAIRN_ERR_NO_MEMORY,
///             CAIRN_ERR_FS from the device and the image.
///
/// Thread safety: the device must not be in use by another handle.
///
/// # Safety
/// Pointers as documented above.
#[no_mangle]
pub unsafe extern "C" fn cairn_open(
    db: *mut *mut cairn_db_t,
    cfg: *const cairn_config_t,
    key: *const cairn_key_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { open_impl(db, cfg, key, Mode::Open) }
}

/// Formats the device (erasing everything on it) and creates an empty database with `key`.
/// Arguments and errors as cairn_open(), except CAIRN_ERR_NOT_FORMATTED and
/// CAIRN_ERR_WRONG_KEY; a passphrase key needs `cfg->random` for its salt
/// (CAIRN_ERR_INVALID_ARGUMENT without it, CAIRN_ERR_IO when it fails). CAIRN_ERR_NO_SPACE when
/// the device is too small.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_open().
#[no_mangle]
pub unsafe extern "C" fn cairn_format(
    db: *mut *mut cairn_db_t,
    cfg: *const cairn_config_t,
    key: *const cairn_key_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { open_impl(db, cfg, key, Mode::Format) }
}

/// Opens the database, or formats the device and creates one when none is there
/// (cairn_open() then cairn_format() on CAIRN_ERR_NOT_FORMATTED). Errors of both.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_open().
#[no_mangle]
pub unsafe extern "C" fn cairn_open_or_format(
    db: *mut *mut cairn_db_t,
    cfg: *const cairn_config_t,
    key: *const cairn_key_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { open_impl(db, cfg, key, Mode::OpenOrFormat) }
}

/// Unmounts cleanly and frees the handle. `cairn_close(NULL)` is a no-op returning CAIRN_OK.
/// Every committed write is already durable; closing only makes the next open cheaper. An open
/// transaction of the handle is discarded (nothing of it is written; logged at
/// ::CAIRN_LOG_WARN) and its hold on the platform lock released. The handle is freed whatever
/// the result, except for CAIRN_ERR_BUSY and CAIRN_ERR_TIMEOUT.
///
/// @retval CAIRN_OK                          closed (or `db` is NULL).
/// @retval CAIRN_ERR_BUSY                    called from one of this handle's callbacks;
///                                           nothing was freed.
/// @retval CAIRN_ERR_TIMEOUT                 the platform lock stayed held by another task
///                                           (a call in progress, or its transaction); nothing
///                                           was freed.
/// @retval CAIRN_ERR_IO, CAIRN_ERR_NO_SPACE, CAIRN_ERR_FS  the clean unmount failed; the
///                                           handle is freed anyway.
///
/// Thread safety: takes the platform lock like every call, but must be the last call on the
/// handle by any task: a task still waiting for the lock would wake on freed memory.
///
/// # Safety
/// `db` is NULL or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn cairn_close(db: *mut cairn_db_t) -> i32 {
    if db.is_null() {
        return CAIRN_OK;
    }
    let platform = {
        // SAFETY: a live handle (contract).
        let h = unsafe { &*db };
        let platform = h.platform;
        if let Err(code) = platform.enter() {
            platform.log("cairn_close", code);
            return code;
        }
        if h.state.try_borrow_mut().is_err() {
            platform.leave();
            platform.log("cairn_close", CAIRN_ERR_BUSY);
            return CAIRN_ERR_BUSY;
        }
        platform
    };
    // SAFETY: a live handle from Box::into_raw, not borrowed (checked above, under the lock).
    let h = unsafe { Box::from_raw(db) };
    let poisoned = h.poisoned.get();
    let state = h.state.into_inner();
    let had_txn = state.has_txn();
    let code = guard(|| {
        // Drops the transaction first: its write set goes, nothing of it reaches flash.
        let inner = state.into_database();
        if poisoned {
            // State in RAM is suspect after a panic: drop it without I/O, as a power cut would.
            let _device = inner.into_device();
            return Ok(());
        }
        let (r, _dev) = inner.close();
        r.map_err(db_err)
    });
    if had_txn {
        // The level cairn_txn_begin() kept.
        platform.leave();
        platform.note(
            CAIRN_LOG_WARN,
            "cairn_close",
            "discarded an open transaction",
        );
    }
    platform.leave();
    if code != CAIRN_OK {
        platform.log("cairn_close", code);
    } else {
        platform.note(CAIRN_LOG_INFO, "cairn_close", "closed");
    }
    code
}

// ---------------------------------------------------------------------------------------------
// Documents

/// Inserts a document, creating the collection if needed.
///
/// @param db    the handle.
/// @param coll  collection name (NUL-terminated UTF-8).
/// @param json  the document: a JSON object (NUL-terminated). `_id`, `_ver` and `_ts` are
///              assigned by the library.
/// @param id    receives the new document's `_id`; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll` or `json`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_JSON (not JSON), CAIRN_ERR_INVALID_ARGUMENT (JSON but not an object),
///         CAIRN_ERR_TOO_DEEP, CAIRN_ERR_TOO_LARGE,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_UNIQUE, CAIRN_ERR_SCHEMA_VIOLATION,
///         CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_INTERNAL.
/// On any error nothing is written.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented above.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_insert(
    db: *mut cairn_db_t,
    coll: *const c_char,
    json: *const c_char,
    id: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_insert", |d| {
            let coll = text(coll)?;
            let json = text(json)?;
            let new_id = d.insert_json(coll, json).map_err(db_err)?;
            set(id, new_id);
            Ok(())
        })
    }
}

/// Copies the document `id` of `coll` as NUL-terminated JSON text (with `_id`, `_ver`, `_ts`)
/// into `buf`.
///
/// @param buf  the caller's buffer of `cap` bytes; may be NULL when `cap` is 0 (a size query).
/// @param len  receives the JSON length without the NUL, also on CAIRN_ERR_BUFFER_TOO_SMALL
///             (then `cap` must be at least `*len + 1`); may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no such document or collection),
///         CAIRN_ERR_BUFFER_TOO_SMALL (`buf` then holds an empty string if `cap` > 0),
///         CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_WRONG_KEY, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `buf` is valid for writes of `cap` bytes; other pointers as documented.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_get", |d| {
            let coll = text(coll)?;
            let doc = d
                .get_json(coll, id)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(doc.as_bytes(), true, buf.cast(), cap, len)
        })
    }
}

/// Replaces the body of document `id` with `json` (a JSON object); `_ver` increases.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, and the errors of cairn_doc_insert(). Nothing is
///         written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as for cairn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_replace(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
    json: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_replace", |d| {
            let coll = text(coll)?;
            let doc = json_arg(d.config(), json)?;
            d.replace(coll, id, &doc).map_err(db_err)
        })
    }
}

/// # Safety
/// `p` as for [`text`].
unsafe fn json_arg(cfg: &Config, p: *const c_char) -> R<Value> {
    // SAFETY: forwarded contract.
    let t = unsafe { text(p)? };
    json_text(cfg, t)
}

/// Applies a patch (`{"$set":{..},"$unset":{..},"$inc":{..},"$push":{..},"$pull":{..}}`) to
/// document `id`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_INVALID_PATCH, CAIRN_ERR_JSON and the
///         errors of cairn_doc_insert(). Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as for cairn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_patch(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
    patch: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_patch", |d| {
            let coll = text(coll)?;
            let p = json_arg(d.config(), patch)?;
            d.patch(coll, id, &p).map_err(db_err)
        })
    }
}

/// Deletes document `id` of `coll`.
///
/// @retval CAIRN_OK (deleted), CAIRN_ERR_NOT_FOUND (no such document), CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as for cairn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_delete(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_delete", |d| {
            let coll = text(coll)?;
            match d.delete(coll, id).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

/// Stores the number of documents in `coll` (0 for a missing collection) in `*count`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll` or `count`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_count(
    db: *mut cairn_db_t,
    coll: *const c_char,
    count: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_count", |d| {
            if count.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let coll = text(coll)?;
            set(count, d.count(coll).map_err(db_err)?);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

/// Receives one result of cairn_find(): the document as JSON text, `len` bytes plus a NUL,
/// valid only during the call. Return 0 to continue; a positive value stops the search
/// (cairn_find() returns CAIRN_OK); a negative value stops it and cairn_find() returns that
/// value unchanged.
pub type cairn_find_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, json: *const c_char, len: usize) -> i32>;

/// Streams the documents of `coll` matching `filter` to `cb`, one call per document.
///
/// @param filter   a filter document (`{"temp":{"$gt":20}}`); NULL or "" matches everything.
/// @param options  NULL, "" or `{"sort":{"temp":-1},"skip":0,"limit":10,"projection":{..}}`.
/// @param cb       called once per result, in order (required).
/// @param ctx      passed to `cb` unchanged.
/// @retval CAIRN_OK, a negative value returned by `cb`, CAIRN_ERR_NULL (`db`, `coll`, `cb`),
///         CAIRN_ERR_UTF8, CAIRN_ERR_JSON, CAIRN_ERR_BAD_FILTER, CAIRN_ERR_TOO_DEEP,
///         CAIRN_ERR_TOO_LARGE (sort without limit past `max_sort_docs`),
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY (also when
///         `cb` calls into `db`).
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_find(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    options: *const c_char,
    cb: cairn_find_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_find", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let coll = text(coll)?;
            let fv = filter_arg(d.config(), filter)?;
            let opts = options_arg(options)?;
            let mut user: i32 = 0;
            let mut line = String::new();
            d.find(coll, &fv, &opts, &mut |doc| {
                line.clear();
                value::to_json(&doc, &mut line);
                line.push('\0');
                let n = line.len() - 1;
                user = cb(ctx, line.as_ptr().cast(), n);
                Ok(user == 0)
            })
            .map_err(db_err)?;
            if user < 0 {
                Err(user)
            } else {
                Ok(())
            }
        })
    }
}

/// # Safety
/// `p` as for [`text`].
unsafe fn filter_arg(cfg: &Config, p: *const c_char) -> R<Value> {
    if p.is_null() {
        return Ok(Value::Map(Default::default()));
    }
    // SAFETY: forwarded contract.
    let t = unsafe { text(p)? };
    if t.trim().is_empty() {
        return Ok(Value::Map(Default::default()));
    }
    json_text(cfg, t)
}

/// # Safety
/// `p` as for [`text`].
unsafe fn options_arg(p: *const c_char) -> R<FindOptions> {
    if p.is_null() {
        return Ok(FindOptions::default());
    }
    // SAFETY: forwarded contract.
    let t = unsafe { text(p)? };
    if t.trim().is_empty() {
        return Ok(FindOptions::default());
    }
    FindOptions::from_json(t.as_bytes(), &Default::default()).map_err(db_err)
}

/// Stores the number of documents of `coll` matching `filter` (NULL or "": all) in `*count`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll`, `count`), CAIRN_ERR_UTF8, CAIRN_ERR_JSON,
///         CAIRN_ERR_BAD_FILTER, CAIRN_ERR_TOO_DEEP, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_IO,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented.
#[no_mangle]
pub unsafe extern "C" fn cairn_find_count(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    count: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_find_count", |d| {
            if count.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let coll = text(coll)?;
            let fv = filter_arg(d.config(), filter)?;
            set(count, d.count_where(coll, &fv).map_err(db_err)?);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Key-value

/// Stores `value` under `key` in namespace `ns` (created if needed), replacing any old value.
///
/// @param key    `key_len` bytes (1 to `max_key_len`), any content.
/// @param value  `value_len` bytes (0 to `max_value_len`); may be NULL when `value_len` is 0.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_UTF8 (`ns`), CAIRN_ERR_INVALID_NAME (`ns`, or
///         an empty or too long key), CAIRN_ERR_TOO_LARGE (value), CAIRN_ERR_NO_SPACE,
///         CAIRN_ERR_IO, CAIRN_ERR_BUSY. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `key` and `value` are valid for reads of their lengths.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_put(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_put", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = bytes(value, value_len)?;
            d.kv_put(ns, k, v).map_err(db_err)
        })
    }
}

/// Copies the value of `key` in `ns` into `buf` (raw bytes, no NUL added).
///
/// @param buf  the caller's buffer of `cap` bytes; may be NULL when `cap` is 0.
/// @param len  receives the value's length, also on CAIRN_ERR_BUFFER_TOO_SMALL; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_BUFFER_TOO_SMALL, CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `buf` is valid for writes of `cap` bytes; `key` for reads of `key_len`.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_get(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_get", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = d
                .kv_get(ns, k)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(&v, false, buf, cap, len)
        })
    }
}

/// Deletes `key` from `ns`.
///
/// @retval CAIRN_OK (deleted), CAIRN_ERR_NOT_FOUND (no such key), CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `key` is valid for reads of `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_delete(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_delete", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            match d.kv_delete(ns, k).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

/// Stores whether `key` exists in `ns` in `*exists`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `ns`, `key`, `exists`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `key` is valid for reads of `key_len` bytes; `exists` for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_exists(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    exists: *mut bool,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_exists", |d| {
            if exists.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            set(exists, d.kv_exists(ns, k).map_err(db_err)?);
            Ok(())
        })
    }
}

/// Receives one key of cairn_kv_keys(): `len` raw bytes, valid only during the call. Return
/// values as for ::cairn_find_fn.
pub type cairn_kv_key_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, len: usize) -> i32>;

/// Calls `cb` with each key of `ns` that starts with `prefix`, in byte order (a missing
/// namespace has no keys).
///
/// @param prefix      `prefix_len` bytes; may be NULL when `prefix_len` is 0 (every key).
/// @param cb          called once per key (required).
/// @param ctx         passed to `cb` unchanged.
/// @retval CAIRN_OK, a negative value returned by `cb`, CAIRN_ERR_NULL (`db`, `ns`, `cb`, or
///         `prefix` with a nonzero length), CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY (also when `cb` calls into `db`).
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `prefix` is valid for reads of `prefix_len` bytes; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_keys(
    db: *mut cairn_db_t,
    ns: *const c_char,
    prefix: *const c_void,
    prefix_len: usize,
    cb: cairn_kv_key_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_keys", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let ns = text(ns)?;
            let prefix = bytes(prefix, prefix_len)?;
            let mut user: i32 = 0;
            d.kv_keys(ns, prefix, &mut |k| {
                user = cb(ctx, k.as_ptr(), k.len());
                Ok(user == 0)
            })
            .map_err(db_err)?;
            if user < 0 {
                Err(user)
            } else {
                Ok(())
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Indexes

/// Creates index `name` on `coll` over `n_fields` dotted field paths (most significant first,
/// at most 4) and fills it from the documents already there. Crash-safe: after a power cut the
/// index is complete or absent.
///
/// @param fields  an array of `n_fields` NUL-terminated paths ("room", "sensor.id").
/// @param unique  refuse two documents with the same indexed value(s).
/// @retval CAIRN_OK, CAIRN_ERR_EXISTS, CAIRN_ERR_UNIQUE (a duplicate exists; no index is
///         left), CAIRN_ERR_INVALID_ARGUMENT (0 or more than 4 fields, an empty path),
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_TOO_LARGE (more than 8 indexes), CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `fields` is valid for reads of `n_fields` pointers, each a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cairn_index_create(
    db: *mut cairn_db_t,
    coll: *const c_char,
    name: *const c_char,
    fields: *const *const c_char,
    n_fields: usize,
    unique: bool,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_index_create", |d| {
            let coll = text(coll)?;
            let name = text(name)?;
            if n_fields == 0 || n_fields > 4 {
                return Err(CAIRN_ERR_INVALID_ARGUMENT);
            }
            if fields.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let mut list: Vec<&str> = Vec::new();
            for i in 0..n_fields {
                list.push(text(*fields.add(i))?);
            }
            let spec = IndexSpec {
                fields: &list,
                unique,
                partial: None,
            };
            d.create_index(coll, name, &spec).map_err(db_err)
        })
    }
}

/// cairn_index_create() with the index given as JSON:
/// `{"fields":["room","temp"],"unique":false,"partial":{"temp":{"$exists":true}}}`
/// (`fields` required; a single string is one field; `partial` is a filter).
///
/// @retval the errors of cairn_index_create(), plus CAIRN_ERR_JSON, CAIRN_ERR_INVALID_ARGUMENT
///         for a spec of the wrong shape (unknown key, wrong type), CAIRN_ERR_BAD_FILTER for
///         a bad `partial`.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented.
#[no_mangle]
pub unsafe extern "C" fn cairn_index_create_json(
    db: *mut cairn_db_t,
    coll: *const c_char,
    name: *const c_char,
    spec: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_index_create_json", |d| {
            let coll = text(coll)?;
            let name = text(name)?;
            let spec = json_arg(d.config(), spec)?;
            let map = spec.as_map().ok_or(CAIRN_ERR_INVALID_ARGUMENT)?;
            if map
                .keys()
                .any(|k| !matches!(k, "fields" | "unique" | "partial"))
            {
                return Err(CAIRN_ERR_INVALID_ARGUMENT);
            }
            let fields: Vec<&str> = match map.get("fields") {
                Some(Value::Str(s)) => alloc::vec![s.as_str()],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().ok_or(CAIRN_ERR_INVALID_ARGUMENT))
                    .collect::<R<_>>()?,
                _ => return Err(CAIRN_ERR_INVALID_ARGUMENT),
            };
            let unique = match map.get("unique") {
                None => false,
                Some(v) => v.as_bool().ok_or(CAIRN_ERR_INVALID_ARGUMENT)?,
            };
            let partial = match map.get("partial") {
                None | Some(Value::Null) => None,
                Some(p @ Value::Map(_)) => Some(p),
                Some(_) => return Err(CAIRN_ERR_BAD_FILTER),
            };
            let spec = IndexSpec {
                fields: &fields,
                unique,
                partial,
            };
            d.create_index(coll, name, &spec).map_err(db_err)
        })
    }
}

/// Drops index `name` of `coll`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no such collection or index), CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Pointers as documented.
#[no_mangle]
pub unsafe extern "C" fn cairn_index_drop(
    db: *mut cairn_db_t,
    coll: *const c_char,
    name: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_index_drop", |d| {
            let coll = text(coll)?;
            let name = text(name)?;
            d.drop_index(coll, name).map_err(db_err)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Maintenance

/// Folds everything committed into segment files (a clean point: open is cheapest after it).
/// Committed data is durable without it.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cairn_flush(db: *mut cairn_db_t) -> i32 {
    // SAFETY: the documented contract.
    unsafe { with_db(db, "cairn_flush", |d| d.flush().map_err(db_err)) }
}

/// Merges all segments, reclaiming the space of deleted and overwritten data.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cairn_compact(db: *mut cairn_db_t) -> i32 {
    // SAFETY: the documented contract.
    let rc = unsafe { with_db(db, "cairn_compact", |d| d.compact().map_err(db_err)) };
    if rc == CAIRN_OK {
        // SAFETY: a live handle (the call succeeded on it).
        unsafe {
            (*db)
                .platform
                .note(CAIRN_LOG_INFO, "cairn_compact", "compacted")
        };
    }
    rc
}

/// Re-encrypts the whole database under `new_key` (NULL or zeroed: remove encryption),
/// atomically: after a power cut it opens with exactly one of the two keys.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_INVALID_ARGUMENT (bad key; a passphrase
///         without `cfg->random`), CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `new_key` is NULL or valid during the call.
#[no_mangle]
pub unsafe extern "C" fn cairn_rekey(db: *mut cairn_db_t, new_key: *const cairn_key_t) -> i32 {
    // SAFETY: the documented contract.
    let platform = unsafe { db.as_ref() }.map(|h| h.platform);
    // SAFETY: the documented contract.
    let rc = unsafe {
        with_db(db, "cairn_rekey", |d| {
            let spec = KeySpec::read(new_key)?;
            let salt = match (spec.needs_salt(), platform) {
                (true, Some(p)) => p.salt()?,
                _ => [0; 16],
            };
            d.rekey(&spec.key(salt)).map_err(db_err)
        })
    };
    if let (CAIRN_OK, Some(p)) = (rc, platform) {
        p.note(CAIRN_LOG_INFO, "cairn_rekey", "re-encrypted the database");
    }
    rc
}

/// Fills `*stats` with the database's statistics.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db` or `stats`), CAIRN_ERR_IO, CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `stats` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_stats(db: *mut cairn_db_t, stats: *mut cairn_stats_t) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_stats", |d| {
            if stats.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let s = d.stats();
            let free = d.free_blocks().map_err(db_err)?;
            let sat = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
            set(
                stats,
                cairn_stats_t {
                    commits: s.store.commits,
                    frames: s.store.frames,
                    folds: s.store.folds,
                    merges: s.store.merges,
                    root_writes: s.store.root_writes,
                    segment_bytes: s.segment_bytes,
                    segments: sat(s.segments),
                    memtable_bytes: sat(s.memtable_bytes),
                    free_blocks: free,
                    block_count: d.device().geometry().block_count,
                },
            );
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// RAM device

/// A flash device in RAM, owned by the library (opaque): for tests, host tools and volatile
/// mode. NOR semantics: erase sets 0xFF, program only clears bits.
///
/// Thread safety: as the handle using it.
pub struct cairn_ram_device_t {
    geometry: [u32; 4],
    data: Vec<u8>,
}

/// Creates an erased RAM device of `block_count` blocks of `block_size` bytes.
///
/// @param dev  receives the device (NULL on failure); free it with cairn_ram_device_free()
///             after closing every database on it.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_INVALID_ARGUMENT (a zero size, `block_size` not
///         a multiple of `read_size` and `prog_size`), CAIRN_ERR_NO_MEMORY.
///
/// Thread safety: as for the database handle using the device.
///
/// # Safety
/// `dev` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_ram_device_new(
    dev: *mut *mut cairn_ram_device_t,
    read_size: u32,
    prog_size: u32,
    block_size: u32,
    block_count: u32,
) -> i32 {
    if dev.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    unsafe { dev.write(core::ptr::null_mut()) };
    guard(|| {
        if read_size == 0
            || prog_size == 0
            || block_size == 0
            || block_count == 0
            || block_size % read_size != 0
            || block_size % prog_size != 0
        {
            return Err(CAIRN_ERR_INVALID_ARGUMENT);
        }
        let len = usize::try_from(u64::from(block_size) * u64::from(block_count))
            .map_err(|_| CAIRN_ERR_NO_MEMORY)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| CAIRN_ERR_NO_MEMORY)?;
        data.resize(len, 0xFF);
        let d = Box::new(cairn_ram_device_t {
            geometry: [read_size, prog_size, block_size, block_count],
            data,
        });
        // SAFETY: the documented contract.
        unsafe { dev.write(Box::into_raw(d)) };
        Ok(())
    })
}

/// Frees a RAM device. NULL is a no-op. No database may still be open on it.
///
/// Thread safety: as for the database handle using the device.
///
/// # Safety
/// `dev` is NULL or a live device, not used again.
#[no_mangle]
pub unsafe extern "C" fn cairn_ram_device_free(dev: *mut cairn_ram_device_t) {
    if !dev.is_null() {
        // SAFETY: a live device from Box::into_raw (contract).
        drop(unsafe { Box::from_raw(dev) });
    }
}

/// Points `cfg`'s device fields (`ctx`, `read`, `prog`, `erase`, `sync` and the geometry) at
/// `dev`, leaving every other field alone. The platform callbacks receive `dev` as their
/// `ctx` too unless `platform_ctx` is set.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL.
///
/// Thread safety: as for the database handle using the device.
///
/// # Safety
/// `dev` is a live device; `cfg` is valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn cairn_ram_device_config(
    dev: *mut cairn_ram_device_t,
    cfg: *mut cairn_config_t,
) -> i32 {
    if dev.is_null() || cfg.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract. Only the geometry is read through a shared reference.
    let g = unsafe { (*dev).geometry };
    // SAFETY: the documented contract.
    let cfg = unsafe { &mut *cfg };
    cfg.ctx = dev.cast();
    cfg.read = Some(ram_read);
    cfg.prog = Some(ram_prog);
    cfg.erase = Some(ram_erase);
    cfg.sync = None;
    cfg.read_size = g[0];
    cfg.prog_size = g[1];
    cfg.block_size = g[2];
    cfg.block_count = g[3];
    CAIRN_OK
}

/// The device's contents (`block_size * block_count` bytes, stored in `*len`): an image to
/// save, or to damage in a test. Valid until cairn_ram_device_free(); do not write to it while
/// a database is open on the device.
///
/// @return the bytes, or NULL when `dev` is NULL.
///
/// Thread safety: as for the database handle using the device.
///
/// # Safety
/// `dev` is NULL or a live device; `len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_ram_device_data(
    dev: *mut cairn_ram_device_t,
    len: *mut usize,
) -> *mut u8 {
    if dev.is_null() {
        // SAFETY: the documented contract.
        unsafe { set(len, 0) };
        return core::ptr::null_mut();
    }
    // SAFETY: a live device (contract); the Vec is not reallocated after creation.
    unsafe {
        let data = &mut (*dev).data;
        set(len, data.len());
        data.as_mut_ptr()
    }
}

/// The byte range of a request, or None when it leaves the device.
fn ram_range(
    dev: &cairn_ram_device_t,
    block: u32,
    off: u32,
    len: u32,
) -> Option<core::ops::Range<usize>> {
    let [_, _, block_size, block_count] = dev.geometry;
    if block >= block_count || u64::from(off) + u64::from(len) > u64::from(block_size) {
        return None;
    }
    let start = usize::try_from(u64::from(block) * u64::from(block_size) + u64::from(off)).ok()?;
    Some(start..start.checked_add(len as usize)?)
}

unsafe extern "C" fn ram_read(
    ctx: *mut c_void,
    block: u32,
    off: u32,
    buf: *mut u8,
    len: u32,
) -> i32 {
    // SAFETY: `ctx` is the device cairn_ram_device_config() stored; the device layer passes
    // a buffer valid for `len` bytes.
    let dev = unsafe { &*ctx.cast::<cairn_ram_device_t>() };
    let Some(r) = ram_range(dev, block, off, len) else {
        return CAIRN_ERR_IO;
    };
    // SAFETY: as above.
    unsafe { core::ptr::copy_nonoverlapping(dev.data[r].as_ptr(), buf, len as usize) };
    0
}

unsafe extern "C" fn ram_prog(
    ctx: *mut c_void,
    block: u32,
    off: u32,
    buf: *const u8,
    len: u32,
) -> i32 {
    // SAFETY: as in ram_read.
    let dev = unsafe { &mut *ctx.cast::<cairn_ram_device_t>() };
    let Some(r) = ram_range(dev, block, off, len) else {
        return CAIRN_ERR_IO;
    };
    // SAFETY: as in ram_read.
    let src = unsafe { core::slice::from_raw_parts(buf, len as usize) };
    for (d, s) in dev.data[r].iter_mut().zip(src) {
        *d &= *s;
    }
    0
}

unsafe extern "C" fn ram_erase(ctx: *mut c_void, block: u32) -> i32 {
    // SAFETY: as in ram_read.
    let dev = unsafe { &mut *ctx.cast::<cairn_ram_device_t>() };
    let Some(r) = ram_range(dev, block, 0, dev.geometry[2]) else {
        return CAIRN_ERR_IO;
    };
    dev.data[r].fill(0xFF);
    0
}

// ---------------------------------------------------------------------------------------------
// Heap

/// Allocates `size` bytes aligned to 8 (as `malloc`), or returns NULL.
pub type cairn_malloc_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>;
/// Frees a block from the matching ::cairn_malloc_fn.
pub type cairn_free_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void)>;

/// Routes the library's heap (bare-metal builds) through `alloc_fn`/`free_fn` instead of the
/// C library's `malloc`/`free`: an RTOS heap (`pvPortMalloc`/`vPortFree`, `k_malloc`/`k_free`)
/// or a dedicated pool. Process-wide, not per handle: the heap is shared by every handle.
/// Both NULL restores `malloc`/`free`. The C library's `malloc` and `free` must still exist
/// at link time (they are the default).
///
/// @param ctx  passed unchanged to both hooks.
/// @retval CAIRN_OK                   installed.
/// @retval CAIRN_ERR_INVALID_ARGUMENT one hook set without the other.
/// @retval CAIRN_ERR_BUSY             the library has allocated already: call this before any
///                                    other cairn_* function (blocks must go back to the
///                                    allocator they came from).
/// @retval CAIRN_ERR_UNSUPPORTED      a hosted build: the heap is the system allocator.
///
/// Thread safety: call once, at start-up, before any other task uses the library.
///
/// # Safety
/// The hooks must behave as `malloc`/`free` (8-byte alignment, NULL on failure), be callable
/// from any task that uses the library, and stay valid for the program's life.
#[no_mangle]
pub unsafe extern "C" fn cairn_set_allocator(
    alloc_fn: cairn_malloc_fn,
    free_fn: cairn_free_fn,
    ctx: *mut c_void,
) -> i32 {
    if alloc_fn.is_some() != free_fn.is_some() {
        return CAIRN_ERR_INVALID_ARGUMENT;
    }
    #[cfg(target_os = "none")]
    {
        match device::set_allocator(alloc_fn, free_fn, ctx) {
            Ok(()) => CAIRN_OK,
            Err(()) => CAIRN_ERR_BUSY,
        }
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = ctx;
        CAIRN_ERR_UNSUPPORTED
    }
}

// The rest of the API, in header order.
mod txn;
pub use txn::*;
mod doc;
pub use doc::*;
mod coll;
pub use coll::*;
mod expiry;
pub use expiry::*;
mod tags;
pub use tags::*;
mod batch;
pub use batch::*;
mod capped;
pub use capped::*;
mod backups;
pub use backups::*;
mod maint;
pub use maint::*;
#[cfg(not(target_os = "none"))]
mod file;
#[cfg(not(target_os = "none"))]
pub use file::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_aligned_blocks_fit_their_padding() {
        let ptr = core::mem::size_of::<*mut u8>();
        for align in [16usize, 32, 64, 4096] {
            for raw in (0..2 * align).step_by(4).map(|r| r + 0x2000_0000) {
                let off = over_aligned_offset(raw, align);
                assert_eq!((raw + off) % align, 0);
                assert!(off >= ptr, "room for the saved pointer");
                assert!(off <= align + ptr, "the block fits in size + align + ptr");
                assert_eq!((raw + off - ptr) % ptr, 0, "the saved pointer is aligned");
            }
        }
    }

    #[test]
    fn version_matches_the_package() {
        let s = unsafe { CStr::from_ptr(cairn_version_string()) };
        assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        let v = cairn_version();
        let parts: Vec<i32> = s
            .to_str()
            .unwrap()
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(v, parts[0] * 1_000_000 + parts[1] * 1000 + parts[2]);
    }

    /// A panic inside a call (a bug) comes back as CAIRN_ERR_INTERNAL, never unwinds into C;
    /// the handle then refuses every call but close, which frees it without flash I/O.
    #[test]
    fn a_panic_poisons_the_handle_and_close_still_frees_it() {
        unsafe {
            let mut dev = core::ptr::null_mut();
            assert_eq!(cairn_ram_device_new(&mut dev, 16, 16, 4096, 32), CAIRN_OK);
            let mut cfg: cairn_config_t = core::mem::zeroed();
            assert_eq!(cairn_ram_device_config(dev, &mut cfg), CAIRN_OK);
            let mut db = core::ptr::null_mut();
            assert_eq!(cairn_format(&mut db, &cfg, core::ptr::null()), CAIRN_OK);
            let rc = with_db(db, "test", |_| panic!("a bug"));
            assert_eq!(rc, CAIRN_ERR_INTERNAL);
            assert_eq!(cairn_flush(db), CAIRN_ERR_INTERNAL);
            assert_eq!(cairn_close(db), CAIRN_OK);
            // The device still holds the database as of the last commit.
            assert_eq!(cairn_open(&mut db, &cfg, core::ptr::null()), CAIRN_OK);
            assert_eq!(cairn_close(db), CAIRN_OK);
            cairn_ram_device_free(dev);
        }
    }

    #[test]
    fn every_error_has_a_distinct_code_and_text() {
        let all = [
            Error::Io,
            Error::Corrupt,
            Error::WrongKey,
            Error::KeyMismatch,
            Error::NoSpace,
            Error::NotFormatted,
            Error::Unsupported,
            Error::NotFound,
            Error::Exists,
            Error::InvalidName,
            Error::InvalidArgument,
            Error::TooLarge,
            Error::TooDeep,
            Error::Json,
            Error::InvalidPatch,
            Error::TxnTooLarge,
            Error::NoMemory,
            Error::Fs(-5),
            Error::BadSchema,
            Error::BadFilter,
            Error::Unique,
            Error::SchemaViolation,
            Error::Timeout,
            Error::BadBackup,
            Error::BackupChain,
        ];
        let mut codes: Vec<i32> = all.iter().map(|e| code_of(*e)).collect();
        codes.extend([
            CAIRN_ERR_NULL,
            CAIRN_ERR_UTF8,
            CAIRN_ERR_BUFFER_TOO_SMALL,
            CAIRN_ERR_BUSY,
            CAIRN_ERR_INTERNAL,
            CAIRN_ERR_TYPE,
            CAIRN_ERR_TXN_ABORTED,
        ]);
        for (i, c) in codes.iter().enumerate() {
            assert!(*c < 0);
            assert!(!codes[i + 1..].contains(c), "{c} twice");
            assert_ne!(strerror(*c), "unknown error\0", "{c}");
            assert!(strerror(*c).ends_with('\0'));
        }
        assert_eq!(strerror(1), "unknown error\0");
        assert_eq!(code_of(Error::Fs(-28)), CAIRN_ERR_NO_SPACE);
    }
}
