//! Capped collections (a collection that keeps itself under a number of documents and/or
//! bytes by evicting its oldest documents in the same commit as the write that would exceed
//! it), collection totals, and the event log: a bounded record of what happened to the
//! database (rekeys, backups, restores, corruption found, repairs, and the application's own
//! events), kept in the reserved capped collection `_events`.

use super::*;
use cairndb::db::{CollectionOptions, Event, Level, MAX_EVENT_MSG};

/// Event code of a completed cairn_rekey() (level ::CAIRN_LOG_INFO).
pub const CAIRN_EVENT_REKEY: u32 = 1;
/// Event code of a backup written (message: kind, end sequence number, records, bytes).
pub const CAIRN_EVENT_BACKUP: u32 = 2;
/// Event code of a restore from a backup chain.
pub const CAIRN_EVENT_RESTORE: u32 = 3;
/// Event code of an integrity check that found problems (level ::CAIRN_LOG_WARN).
pub const CAIRN_EVENT_CORRUPTION: u32 = 4;
/// Event code of a repair (message: what it quarantined, fixed and rebuilt).
pub const CAIRN_EVENT_REPAIR: u32 = 5;
/// Longest event message kept, in bytes; a longer one is cut at a character boundary.
pub const CAIRN_MAX_EVENT_MSG: usize = 120;

const _: () = assert!(
    CAIRN_MAX_EVENT_MSG == MAX_EVENT_MSG
        && CAIRN_EVENT_REKEY == cairndb::db::EVENT_REKEY
        && CAIRN_EVENT_BACKUP == cairndb::db::EVENT_BACKUP
        && CAIRN_EVENT_RESTORE == cairndb::db::EVENT_RESTORE
        && CAIRN_EVENT_CORRUPTION == cairndb::db::EVENT_CORRUPTION
        && CAIRN_EVENT_REPAIR == cairndb::db::EVENT_REPAIR
);

/// Totals and caps of one collection (cairn_coll_stats()), exact and persisted.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_coll_stats_t {
    /// Documents stored (expired documents not yet swept included).
    pub docs: u64,
    /// Sum of the stored record lengths of the documents (header and encoded body; no keys,
    /// index entries or overheads).
    pub bytes: u64,
    /// The document cap; 0: none.
    pub max_docs: u64,
    /// The byte cap (of `bytes`); 0: none.
    pub max_bytes: u64,
    /// Documents evicted by a cap since the collection was created.
    pub evicted: u64,
}

/// One event of the event log, lent to a ::cairn_event_fn for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_event_t {
    /// Its order of logging (increases with every event).
    pub id: u64,
    /// Database time when it was logged.
    pub ts: u64,
    /// ::CAIRN_LOG_ERROR, ::CAIRN_LOG_WARN, ::CAIRN_LOG_INFO or ::CAIRN_LOG_DEBUG.
    pub level: i32,
    /// `CAIRN_EVENT_*` for the library's own events, else the application's code.
    pub code: u32,
    /// The message, NUL-terminated UTF-8.
    pub msg: *const c_char,
    /// Length of `msg` in bytes, without the NUL.
    pub msg_len: usize,
}

/// Receives one event of cairn_events(), valid only during the call. Return values as for
/// ::cairn_find_fn.
pub type cairn_event_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, event: *const cairn_event_t) -> i32>;

fn level_of(level: i32) -> R<Level> {
    match level {
        CAIRN_LOG_ERROR => Ok(Level::Error),
        CAIRN_LOG_WARN => Ok(Level::Warn),
        CAIRN_LOG_INFO => Ok(Level::Info),
        CAIRN_LOG_DEBUG => Ok(Level::Debug),
        _ => Err(CAIRN_ERR_INVALID_ARGUMENT),
    }
}

fn c_level(level: Level) -> i32 {
    match level {
        Level::Error => CAIRN_LOG_ERROR,
        Level::Warn => CAIRN_LOG_WARN,
        Level::Info => CAIRN_LOG_INFO,
        Level::Debug => CAIRN_LOG_DEBUG,
    }
}

/// A C cap: 0 is none.
fn cap(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// Creates an empty collection that keeps at most `max_docs` documents and `max_bytes` stored
/// bytes (0: no cap of that kind; both 0: an ordinary collection). An insert past a cap evicts
/// the oldest documents (lowest `_id`) in the same commit; a single document larger than
/// `max_bytes` is refused with CAIRN_ERR_TOO_LARGE.
///
/// @retval CAIRN_OK, CAIRN_ERR_EXISTS, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NULL, CAIRN_ERR_UTF8,
///         CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `name` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_coll_create_capped(
    db: *mut cairn_db_t,
    name: *const c_char,
    max_docs: u64,
    max_bytes: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_coll_create_capped", |d| {
            let name = text(name)?;
            let opts = CollectionOptions {
                max_docs: cap(max_docs),
                max_bytes: cap(max_bytes),
            };
            d.create_collection_with(name, &opts).map_err(db_err)
        })
    }
}

/// Fills `*stats` with the totals and caps of collection `name`, read from its metadata (no
/// scan).
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no such collection), CAIRN_ERR_NULL (`db`, `name`,
///         `stats`), CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `name` NUL-terminated; `stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_coll_stats(
    db: *mut cairn_db_t,
    name: *const c_char,
    stats: *mut cairn_coll_stats_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_coll_stats", |d| {
            if stats.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let name = text(name)?;
            let s = d.collection_stats(name).map_err(db_err)?;
            set(
                stats,
                cairn_coll_stats_t {
                    docs: s.docs,
                    bytes: s.bytes,
                    max_docs: s.max_docs.unwrap_or(0),
                    max_bytes: s.max_bytes.unwrap_or(0),
                    evicted: s.evicted,
                },
            );
            Ok(())
        })
    }
}

/// Appends an event to the event log in its own commit (the oldest events are evicted past
/// the log's capacity, 64 events). Use codes of your own from 1000 up; `CAIRN_EVENT_*` are the
/// library's.
///
/// @param level  ::CAIRN_LOG_ERROR, ::CAIRN_LOG_WARN, ::CAIRN_LOG_INFO or ::CAIRN_LOG_DEBUG.
/// @param msg    NUL-terminated UTF-8; cut to ::CAIRN_MAX_EVENT_MSG bytes.
/// @retval CAIRN_OK, CAIRN_ERR_INVALID_ARGUMENT (another `level`), CAIRN_ERR_NULL (`db`,
///         `msg`), CAIRN_ERR_UTF8, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `msg` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_log_event(
    db: *mut cairn_db_t,
    level: i32,
    code: u32,
    msg: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_log_event", |d| {
            let level = level_of(level)?;
            let msg = text(msg)?;
            d.log_event(level, code, msg).map_err(db_err)
        })
    }
}

/// cairn_log_event() inside a transaction: the event commits (or not) with the writes it
/// records. Unlike every other transaction call, a database error here aborts the transaction
/// (the first event may have created the log before the failure).
///
/// @retval CAIRN_OK; CAIRN_ERR_INVALID_ARGUMENT, CAIRN_ERR_NULL and CAIRN_ERR_UTF8 leave the
///         transaction going; CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT abort
///         it (later calls return CAIRN_ERR_TXN_ABORTED). Transaction errors as
///         cairn_txn_doc_insert().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// `txn` as for cairn_txn_commit(); `msg` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_log_event(
    txn: *mut cairn_txn_t,
    level: i32,
    code: u32,
    msg: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_log_event", |t, _, abort| {
            let level = level_of(level)?;
            let msg = text(msg)?;
            t.log_event(level, code, msg).map_err(fatal(abort))
        })
    }
}

/// Calls `cb` with the newest events at `min_level` or more severe, newest first, at most
/// `limit` of them (RAM: at most `limit` events). The log is also a collection, `_events`,
/// readable with cairn_find() (`{"level":..,"code":..,"msg":..}` with its core levels 0-3).
///
/// @param min_level  ::CAIRN_LOG_ERROR (errors only) to ::CAIRN_LOG_DEBUG (everything).
/// @retval CAIRN_OK, a negative value returned by `cb`, CAIRN_ERR_NULL (`db`, `cb`),
///         CAIRN_ERR_INVALID_ARGUMENT (another `min_level`), CAIRN_ERR_NO_MEMORY,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY (also when `cb` calls into `db`),
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_events(
    db: *mut cairn_db_t,
    min_level: i32,
    limit: u32,
    cb: cairn_event_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_events", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let min = level_of(min_level)?;
            let events: Vec<Event> = d.events(min, limit as usize).map_err(db_err)?;
            let mut line = String::new();
            for e in events {
                line.clear();
                line.push_str(&e.msg);
                line.push('\0');
                let ev = cairn_event_t {
                    id: e.id,
                    ts: e.ts,
                    level: c_level(e.level),
                    code: e.code,
                    msg: line.as_ptr().cast(),
                    msg_len: e.msg.len(),
                };
                match cb(ctx, &ev) {
                    0 => {}
                    u if u < 0 => return Err(u),
                    _ => break,
                }
            }
            Ok(())
        })
    }
}
