//! Database time, expiry (TTL) and write options: inserts and puts with a time to live and
//! tags, setting or clearing an expiry later, reading a key-value entry with its expiry and
//! tags, and the sweep that removes expired items. Expired items are invisible to every read
//! from the moment they expire; the sweep only reclaims their space.
//!
//! Times are database time (see cairn_now()): the config's `now_ms` clock (milliseconds
//! suggested) carried forward across reboots so it never goes back, or moved forward by
//! cairn_set_time(). A time to live is in the same unit.

use super::*;
use cairndb::db::{KvEntry, WriteOptions};
use cairndb::format::{MAX_TAGS, MAX_TAG_LEN};

/// Most tags an item may carry.
pub const CAIRN_MAX_TAGS: usize = 8;
/// Longest tag in bytes (tags are 1 to this many bytes of `[A-Za-z0-9_.:-]`).
pub const CAIRN_MAX_TAG_LEN: usize = 32;
/// Room for one tag and its NUL (::CAIRN_MAX_TAG_LEN + 1).
pub const CAIRN_TAG_BUF: usize = 33;

const _: () = assert!(
    CAIRN_MAX_TAGS == MAX_TAGS
        && CAIRN_MAX_TAG_LEN == MAX_TAG_LEN
        && CAIRN_TAG_BUF == CAIRN_MAX_TAG_LEN + 1
);

/// Expiry and tags of a write (cairn_doc_insert_with(), cairn_kv_put_with()). A zeroed struct,
/// or a NULL pointer, is a plain write. Only read during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_write_opts_t {
    /// Time to live from the write, in database time units (those of the config's `now_ms`
    /// clock: milliseconds); 0: never expires.
    pub ttl_ms: u64,
    /// Tags: an array of `n_tags` strings, or, with `n_tags` 0, a NULL-terminated array; NULL:
    /// none. At most ::CAIRN_MAX_TAGS, each 1 to ::CAIRN_MAX_TAG_LEN bytes of
    /// `[A-Za-z0-9_.:-]`, no repeats. A document's tags become its `_tags` field.
    pub tags: *const *const c_char,
    /// Number of strings in `tags`, or 0 for a NULL-terminated array.
    pub n_tags: usize,
}

/// A key-value entry's expiry and tags (cairn_kv_get_entry()).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_kv_meta_t {
    /// Database time from which the entry is expired; 0: it never expires.
    pub expires: u64,
    /// Number of tags in `tags`.
    pub n_tags: u32,
    /// The tags, NUL-terminated, in the order they were written; entries from `n_tags` on are
    /// empty strings.
    pub tags: [[c_char; CAIRN_TAG_BUF]; CAIRN_MAX_TAGS],
}

/// A list of tags given as `n` strings, or with `n` 0 as a NULL-terminated array (NULL: none).
/// More than [`MAX_TAGS`] is refused without reading past the limit.
///
/// # Safety
/// `tags` is NULL, or valid for `n` pointers (`n` > 0), or for pointers up to a NULL one or
/// [`MAX_TAGS`] + 1 of them; each non-NULL one a NUL-terminated string outliving `'a`.
pub(crate) unsafe fn tag_list<'a>(tags: *const *const c_char, n: usize) -> R<Vec<&'a str>> {
    let mut out = Vec::new();
    if tags.is_null() {
        return match n {
            0 => Ok(out),
            _ => Err(CAIRN_ERR_NULL),
        };
    }
    if n > MAX_TAGS {
        return Err(CAIRN_ERR_INVALID_ARGUMENT);
    }
    let limit = if n == 0 { MAX_TAGS + 1 } else { n };
    for i in 0..limit {
        // SAFETY: the caller's contract: `i` is within the array or at most its terminator.
        let p = unsafe { *tags.add(i) };
        if p.is_null() {
            if n == 0 {
                break;
            }
            return Err(CAIRN_ERR_NULL);
        }
        // SAFETY: the caller's contract.
        out.push(unsafe { text(p)? });
    }
    if out.len() > MAX_TAGS {
        return Err(CAIRN_ERR_INVALID_ARGUMENT);
    }
    Ok(out)
}

/// Write options read from C, owning the tag list the core's [`WriteOptions`] borrows.
pub(crate) struct Opts<'a> {
    ttl: Option<u64>,
    tags: Vec<&'a str>,
}

impl<'a> Opts<'a> {
    /// # Safety
    /// `p` is NULL or a valid options struct whose tags satisfy [`tag_list`].
    pub(crate) unsafe fn read(p: *const cairn_write_opts_t) -> R<Opts<'a>> {
        // SAFETY: the caller's contract.
        let Some(o) = (unsafe { p.as_ref() }) else {
            return Ok(Opts {
                ttl: None,
                tags: Vec::new(),
            });
        };
        Ok(Opts {
            ttl: ttl(o.ttl_ms),
            // SAFETY: the caller's contract.
            tags: unsafe { tag_list(o.tags, o.n_tags)? },
        })
    }

    pub(crate) fn get(&self) -> WriteOptions<'_> {
        WriteOptions {
            ttl: self.ttl,
            tags: &self.tags,
        }
    }
}

/// A C time to live: 0 is none.
fn ttl(ms: u64) -> Option<u64> {
    (ms != 0).then_some(ms)
}

/// The C view of an entry's expiry and tags.
fn kv_meta(e: &KvEntry) -> cairn_kv_meta_t {
    let mut m = cairn_kv_meta_t {
        expires: e.expires.unwrap_or(0),
        n_tags: 0,
        tags: [[0; CAIRN_TAG_BUF]; CAIRN_MAX_TAGS],
    };
    for (slot, tag) in m.tags.iter_mut().zip(&e.tags) {
        // Tags are at most MAX_TAG_LEN bytes (checked when written): the NUL always fits.
        for (d, s) in slot.iter_mut().zip(tag.bytes().take(CAIRN_MAX_TAG_LEN)) {
            *d = s as c_char;
        }
        m.n_tags += 1;
    }
    m
}

/// Inserts a document (as cairn_doc_insert()) with a time to live and tags.
///
/// @param opts  NULL or zeroed: a plain insert. With tags, `json` must not have a `_tags`
///              field of its own.
/// @param id    receives the new `_id`; may be NULL.
/// @retval CAIRN_OK, the errors of cairn_doc_insert(), plus CAIRN_ERR_INVALID_ARGUMENT (an
///         invalid, repeated or ninth tag; tags given both ways), CAIRN_ERR_NULL (a NULL tag
///         among `n_tags`), CAIRN_ERR_UTF8 (a tag). Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated; `opts` NULL or valid (its tag array as documented); `id` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_insert_with(
    db: *mut cairn_db_t,
    coll: *const c_char,
    json: *const c_char,
    opts: *const cairn_write_opts_t,
    id: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_insert_with", |d| {
            let coll = text(coll)?;
            let doc = json_arg(d.config(), json)?;
            let o = Opts::read(opts)?;
            set(id, d.insert_with(coll, &doc, &o.get()).map_err(db_err)?);
            Ok(())
        })
    }
}

/// Stores a key-value entry (as cairn_kv_put()) with a time to live and tags, replacing the
/// whole entry (a plain cairn_kv_put() over it drops its expiry and tags).
///
/// @retval CAIRN_OK, the errors of cairn_kv_put(), plus the option errors of
///         cairn_doc_insert_with(). Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_kv_put(); `opts` as for cairn_doc_insert_with().
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_put_with(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    opts: *const cairn_write_opts_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_put_with", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = bytes(value, value_len)?;
            let o = Opts::read(opts)?;
            d.kv_put_with(ns, k, v, &o.get()).map_err(db_err)
        })
    }
}

/// Sets document `id` of `coll` to expire `ttl_ms` from now (database time units), or, with
/// `ttl_ms` 0, clears its expiry. Its `_ver` and `_ts` stay; its `_exp` field shows the expiry.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no such document, or it has expired already),
///         CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_INVALID_ARGUMENT
///         (the expiry would pass the end of time), CAIRN_ERR_TOO_LARGE, CAIRN_ERR_NO_SPACE,
///         CAIRN_ERR_IO, CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `coll` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_set_expiry(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
    ttl_ms: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_set_expiry", |d| {
            let coll = text(coll)?;
            d.set_expiry(coll, id, ttl(ttl_ms)).map_err(db_err)
        })
    }
}

/// Sets key-value entry `key` of `ns` to expire `ttl_ms` from now, or, with `ttl_ms` 0,
/// clears its expiry. Its value and tags stay.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no such entry, or it has expired already),
///         CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME (`ns`, or an empty or too
///         long key), CAIRN_ERR_INVALID_ARGUMENT, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is
///         written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `key` valid for reads of `key_len` bytes; `ns` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_set_expiry(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    ttl_ms: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_set_expiry", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            match d.kv_set_expiry(ns, k, ttl(ttl_ms)).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

/// cairn_kv_get() that also reports the entry's expiry and tags.
///
/// @param meta  receives the expiry and tags on success; may be NULL.
/// @retval as cairn_kv_get() (an expired entry is CAIRN_ERR_NOT_FOUND); `*meta` is written
///         only on CAIRN_OK.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_kv_get(); `meta` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_get_entry(
    db: *mut cairn_db_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    meta: *mut cairn_kv_meta_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_get_entry", |d| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let e = d
                .kv_get_entry(ns, k)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(&e.value, false, buf, cap, len)?;
            set(meta, kv_meta(&e));
            Ok(())
        })
    }
}

/// Physically removes up to `budget` expired items (documents with their index and tag
/// entries, key-value entries), earliest expiry first, in one atomic commit. Reads hide expired
/// items already; sweeping reclaims their space (call it from a maintenance task). A sweep
/// that would outgrow one commit removes fewer and reports `more`.
///
/// @param removed  receives how many items were removed; may be NULL.
/// @param more     receives whether expired items remain (call again); may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_TXN_TOO_LARGE (a single item does not fit one
///         commit), CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `removed` and `more` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_sweep(
    db: *mut cairn_db_t,
    budget: u32,
    removed: *mut u64,
    more: *mut bool,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_sweep", |d| {
            let r = d.sweep(budget as usize).map_err(db_err)?;
            set(removed, r.removed);
            set(more, r.more);
            Ok(())
        })
    }
}

/// Moves database time forward to `wall` (wall time learned later, from the network or an
/// RTC), if it is ahead. Time never goes backwards: a `wall` behind the database time is
/// ignored, and times already stamped never change. Nothing is written.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn cairn_set_time(db: *mut cairn_db_t, wall: u64) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_set_time", |d| {
            d.set_time(wall);
            Ok(())
        })
    }
}

/// Stores the current database time (what `_ts` stamps and expiries use) in `*now`: never lower
/// than any time issued before, in this session or an earlier one. May commit the persisted
/// time mark (at most once per minute of database time, and once after each open).
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `now`), CAIRN_ERR_IO, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `now` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_now(db: *mut cairn_db_t, now: *mut u64) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_now", |d| {
            if now.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            set(now, d.now().map_err(db_err)?);
            Ok(())
        })
    }
}

/// cairn_doc_insert_with() inside a transaction.
///
/// @retval as cairn_txn_doc_insert(), plus the option errors of cairn_doc_insert_with(): a
///         failed call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_doc_insert_with(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_insert_with(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    json: *const c_char,
    opts: *const cairn_write_opts_t,
    id: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_insert_with", |t, cfg, _| {
            let coll = text(coll)?;
            let doc = doc_arg(cfg, json)?;
            let o = Opts::read(opts)?;
            set(id, t.insert_with(coll, &doc, &o.get()).map_err(db_err)?);
            Ok(())
        })
    }
}

/// cairn_kv_put_with() inside a transaction.
///
/// @retval as cairn_txn_kv_put(), plus the option errors of cairn_doc_insert_with(): a failed
///         call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_put_with(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_put_with(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    opts: *const cairn_write_opts_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_put_with", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = bytes(value, value_len)?;
            let o = Opts::read(opts)?;
            t.kv_put_with(ns, k, v, &o.get()).map_err(db_err)
        })
    }
}

/// cairn_doc_set_expiry() inside a transaction (it sees the transaction's own writes).
///
/// @retval as cairn_doc_set_expiry(), plus the transaction errors of cairn_txn_doc_insert(): a
///         failed call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_doc_set_expiry(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_set_expiry(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    id: u64,
    ttl_ms: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_set_expiry", |t, _, _| {
            let coll = text(coll)?;
            t.set_expiry(coll, id, ttl(ttl_ms)).map_err(db_err)
        })
    }
}

/// cairn_kv_set_expiry() inside a transaction.
///
/// @retval as cairn_kv_set_expiry(), plus the transaction errors of cairn_txn_doc_insert(): a
///         failed call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_set_expiry(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_set_expiry(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    ttl_ms: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_set_expiry", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            match t.kv_set_expiry(ns, k, ttl(ttl_ms)).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

/// cairn_kv_get_entry() inside a transaction: sees its own writes.
///
/// @retval as cairn_kv_get_entry(), plus the transaction errors of cairn_txn_doc_get().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_get_entry(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_get_entry(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    meta: *mut cairn_kv_meta_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_get_entry", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let e = t
                .kv_get_entry(ns, k)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(&e.value, false, buf, cap, len)?;
            set(meta, kv_meta(&e));
            Ok(())
        })
    }
}

/// Stores the transaction's time in `*now`: read at its first use and then fixed, so every
/// stamp and expiry judgement of the transaction uses the same time.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_TXN_TOO_LARGE (no room for the time mark), and
///         the transaction errors of cairn_txn_doc_get(). The transaction goes on after any
///         error.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// `txn` as for cairn_txn_commit(); `now` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_now(txn: *mut cairn_txn_t, now: *mut u64) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_now", |t, _, _| {
            if now.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            set(now, t.now().map_err(db_err)?);
            Ok(())
        })
    }
}
