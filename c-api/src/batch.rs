//! Batches: many writes in one atomic commit. Any error of any item writes nothing, and a
//! batch larger than one commit can carry fails with ::CAIRN_ERR_TXN_TOO_LARGE (split it).

use super::*;

/// One key-value pair of cairn_kv_put_many().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_kv_pair_t {
    /// `key_len` bytes (1 to `max_key_len`).
    pub key: *const c_void,
    /// Length of `key` in bytes.
    pub key_len: usize,
    /// `value_len` bytes; may be NULL when `value_len` is 0.
    pub value: *const c_void,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// One key of cairn_kv_delete_many().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_kv_key_t {
    /// `key_len` bytes.
    pub key: *const c_void,
    /// Length of `key` in bytes.
    pub key_len: usize,
}

/// The caller's array of `n` items; `n == 0` accepts NULL.
///
/// # Safety
/// `p` is NULL or valid for reads of `n` items for `'a`.
unsafe fn items<'a, T>(p: *const T, n: usize) -> R<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(CAIRN_ERR_NULL);
    }
    if n > isize::MAX as usize / core::mem::size_of::<T>().max(1) {
        return Err(CAIRN_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: the caller's contract; non-NULL and a size that fits the address space.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// Inserts every document of a JSON array (`[{...},{...}]`) into `coll` in one commit, in
/// order, and reports their new `_id`s. In a capped collection a later document of the batch
/// may evict an earlier one.
///
/// @param json   a JSON array of objects (NUL-terminated); `[]` inserts nothing.
/// @param ids    receives the `_id`s in array order, `cap` of them at most; may be NULL (no
///               ids wanted, any number of documents).
/// @param cap    the room in `ids`.
/// @param count  receives the number of documents in the array, also on
///               CAIRN_ERR_BUFFER_TOO_SMALL; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_BUFFER_TOO_SMALL (more documents than `cap`: nothing was
///         inserted), CAIRN_ERR_NULL (`db`, `coll`, `json`), CAIRN_ERR_UTF8, CAIRN_ERR_JSON,
///         CAIRN_ERR_INVALID_ARGUMENT (not an array, or an element not an object),
///         CAIRN_ERR_TOO_DEEP, CAIRN_ERR_TOO_LARGE, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_UNIQUE,
///         CAIRN_ERR_SCHEMA_VIOLATION, CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_NO_SPACE,
///         CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is
///         written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated; `ids` NULL or valid for writes of `cap` ids; `count` NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_insert_many(
    db: *mut cairn_db_t,
    coll: *const c_char,
    json: *const c_char,
    ids: *mut u64,
    cap: usize,
    count: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_insert_many", |d| {
            let coll = text(coll)?;
            let Value::Array(docs) = json_arg(d.config(), json)? else {
                return Err(CAIRN_ERR_INVALID_ARGUMENT);
            };
            set(count, docs.len());
            if !ids.is_null() && docs.len() > cap {
                return Err(CAIRN_ERR_BUFFER_TOO_SMALL);
            }
            let new = d.insert_many(coll, &docs).map_err(db_err)?;
            if !ids.is_null() {
                for (i, id) in new.iter().take(cap).enumerate() {
                    ids.add(i).write(*id);
                }
            }
            Ok(())
        })
    }
}

/// Deletes the documents of `coll` with these `_id`s in one commit (missing ones are skipped).
///
/// @param ids      `n` ids; may be NULL when `n` is 0.
/// @param deleted  receives how many of them existed; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll`, `ids` with `n` > 0), CAIRN_ERR_UTF8,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is
///         written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `ids` valid for reads of `n` ids; `deleted` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_delete_ids(
    db: *mut cairn_db_t,
    coll: *const c_char,
    ids: *const u64,
    n: usize,
    deleted: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_delete_ids", |d| {
            let coll = text(coll)?;
            let ids = items(ids, n)?;
            set(deleted, d.delete_ids(coll, ids).map_err(db_err)?);
            Ok(())
        })
    }
}

/// Stores every pair of `pairs` in namespace `ns` (created if needed) in one commit; a key
/// given twice keeps its last value. The entries have no expiry and no tags.
///
/// @param pairs  `n` pairs; may be NULL when `n` is 0.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `ns`, `pairs` with `n` > 0, a key or value pointer
///         with a nonzero length), CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME (`ns`, or an empty
///         or too long key), CAIRN_ERR_TOO_LARGE (a value), CAIRN_ERR_TXN_TOO_LARGE,
///         CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `pairs` valid for reads of `n` pairs, each valid for its lengths.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_put_many(
    db: *mut cairn_db_t,
    ns: *const c_char,
    pairs: *const cairn_kv_pair_t,
    n: usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_put_many", |d| {
            let ns = text(ns)?;
            let mut list: Vec<(&[u8], &[u8])> = Vec::with_capacity(n.min(64));
            for p in items(pairs, n)? {
                list.push((bytes(p.key, p.key_len)?, bytes(p.value, p.value_len)?));
            }
            d.kv_put_many(ns, &list).map_err(db_err)
        })
    }
}

/// Deletes these keys from namespace `ns` in one commit (missing ones are skipped).
///
/// @param keys     `n` keys; may be NULL when `n` is 0.
/// @param deleted  receives how many of them existed; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME (`ns`, or an empty
///         or too long key), CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is
///         written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `keys` valid for reads of `n` keys, each valid for its length; `deleted` NULL or valid for
/// a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_delete_many(
    db: *mut cairn_db_t,
    ns: *const c_char,
    keys: *const cairn_kv_key_t,
    n: usize,
    deleted: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_delete_many", |d| {
            let ns = text(ns)?;
            let mut list: Vec<&[u8]> = Vec::with_capacity(n.min(64));
            for k in items(keys, n)? {
                list.push(bytes(k.key, k.key_len)?);
            }
            set(deleted, d.kv_delete_many(ns, &list).map_err(db_err)?);
            Ok(())
        })
    }
}
