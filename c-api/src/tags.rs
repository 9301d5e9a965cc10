//! Tag queries: documents and key-value keys carrying all or any of a list of tags, and the
//! number of live items per tag. Tags are written with cairn_doc_insert_with() or
//! cairn_kv_put_with() (a document's are also its `_tags` field, which a patch may change).
//! Every query streams the tag index: RAM does not grow with the number of matches, and
//! expired items are left out.

use super::expiry::tag_list;
use super::*;
use cairndb::db::TagMatch;

/// Match mode of a tag query: items carrying every tag of the list.
pub const CAIRN_TAGS_ALL: i32 = 0;
/// Match mode of a tag query: items carrying at least one tag of the list (each item once).
pub const CAIRN_TAGS_ANY: i32 = 1;

/// Receives one tag of cairn_tag_counts() or cairn_kv_tag_counts(): `len` bytes plus a NUL,
/// valid only during the call, and how many live items carry it. Return values as for
/// ::cairn_find_fn.
pub type cairn_tag_count_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, tag: *const c_char, len: usize, count: u64) -> i32,
>;

/// The core's tag query for `mode` over `tags`.
fn tag_match<'a>(mode: i32, tags: &'a [&'a str]) -> R<TagMatch<'a>> {
    match mode {
        CAIRN_TAGS_ALL => Ok(TagMatch::All(tags)),
        CAIRN_TAGS_ANY => Ok(TagMatch::Any(tags)),
        _ => Err(CAIRN_ERR_INVALID_ARGUMENT),
    }
}

/// The result of a query whose callback may have stopped it with `user`.
fn user_result(user: i32) -> R<()> {
    if user < 0 {
        Err(user)
    } else {
        Ok(())
    }
}

/// Streams the documents of `coll` that carry the tags asked for to `cb` as JSON text.
/// ::CAIRN_TAGS_ALL gives them in `_id` order; ::CAIRN_TAGS_ANY in `_id` order tag by tag,
/// each document once.
///
/// @param mode    ::CAIRN_TAGS_ALL or ::CAIRN_TAGS_ANY.
/// @param tags    `n_tags` strings, or with `n_tags` 0 a NULL-terminated array: 1 to
///                ::CAIRN_MAX_TAGS valid tags (repeats are ignored).
/// @param cb      called once per document (required); return values as for ::cairn_find_fn.
/// @retval CAIRN_OK (also for a missing collection), a negative value returned by `cb`,
///         CAIRN_ERR_NULL (`db`, `coll`, `tags`, `cb`, a NULL tag among `n_tags`),
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_ARGUMENT (an unknown `mode`; no tag, more than
///         ::CAIRN_MAX_TAGS or an invalid one), CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_IO, CAIRN_ERR_BUSY (also when `cb` calls into `db`), CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated; `tags` as documented; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_find_tagged(
    db: *mut cairn_db_t,
    coll: *const c_char,
    mode: i32,
    tags: *const *const c_char,
    n_tags: usize,
    cb: cairn_find_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_find_tagged", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let coll = text(coll)?;
            if tags.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let list = tag_list(tags, n_tags)?;
            let m = tag_match(mode, &list)?;
            let mut user = 0;
            let mut line = String::new();
            d.find_tagged(coll, m, &mut |doc| {
                line.clear();
                value::to_json(&doc, &mut line);
                line.push('\0');
                user = cb(ctx, line.as_ptr().cast(), line.len() - 1);
                Ok(user == 0)
            })
            .map_err(db_err)?;
            user_result(user)
        })
    }
}

/// cairn_find_tagged() with each document as a handle lent for the call (read it with the
/// cairn_doc_get_* accessors; cairn_doc_dup() keeps it).
///
/// @retval as cairn_find_tagged().
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_find_tagged().
#[no_mangle]
pub unsafe extern "C" fn cairn_find_tagged_docs(
    db: *mut cairn_db_t,
    coll: *const c_char,
    mode: i32,
    tags: *const *const c_char,
    n_tags: usize,
    cb: cairn_find_doc_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_find_tagged_docs", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let coll = text(coll)?;
            if tags.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let list = tag_list(tags, n_tags)?;
            let m = tag_match(mode, &list)?;
            let mut user = 0;
            d.find_tagged(coll, m, &mut |v| {
                let doc = lend(v);
                user = cb(ctx, &doc);
                Ok(user == 0)
            })
            .map_err(db_err)?;
            user_result(user)
        })
    }
}

/// Calls `cb` with each key of namespace `ns` whose entry carries the tags asked for (key
/// order, per tag for ::CAIRN_TAGS_ANY, each key once).
///
/// @param cb  called once per key (required); the key is valid during the call only; return
///            values as for ::cairn_find_fn.
/// @retval as cairn_find_tagged() (a missing namespace has no keys).
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_find_tagged().
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_keys_tagged(
    db: *mut cairn_db_t,
    ns: *const c_char,
    mode: i32,
    tags: *const *const c_char,
    n_tags: usize,
    cb: cairn_kv_key_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_keys_tagged", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let ns = text(ns)?;
            if tags.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let list = tag_list(tags, n_tags)?;
            let m = tag_match(mode, &list)?;
            let mut user = 0;
            d.kv_keys_tagged(ns, m, &mut |k| {
                user = cb(ctx, k.as_ptr(), k.len());
                Ok(user == 0)
            })
            .map_err(db_err)?;
            user_result(user)
        })
    }
}

/// Runs `each` with a counting callback that hands every (tag, count) to `cb`.
fn count_tags(
    cb: cairn_tag_count_fn,
    ctx: *mut c_void,
    each: impl FnOnce(&mut dyn FnMut(&str, u64) -> cairndb::Result<bool>) -> cairndb::Result<()>,
) -> R<()> {
    let cb = cb.ok_or(CAIRN_ERR_NULL)?;
    let mut user = 0;
    let mut line = [0u8; CAIRN_TAG_BUF];
    each(&mut |tag, n| {
        // Tags are at most CAIRN_MAX_TAG_LEN bytes: a longer one would be corrupt.
        let t = tag.as_bytes();
        let dst = line.get_mut(..t.len()).ok_or(Error::Corrupt)?;
        dst.copy_from_slice(t);
        line[t.len()] = 0;
        // SAFETY: the callback's contract; `line` is NUL-terminated and lives for the call.
        user = unsafe { cb(ctx, line.as_ptr().cast(), t.len(), n) };
        Ok(user == 0)
    })
    .map_err(db_err)?;
    user_result(user)
}

/// Calls `cb` with each tag used in `coll` and how many live documents carry it, in tag byte
/// order (a missing collection has none).
///
/// @retval CAIRN_OK, a negative value returned by `cb`, CAIRN_ERR_NULL (`db`, `coll`, `cb`),
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY (also when `cb` calls into `db`), CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `coll` NUL-terminated; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_tag_counts(
    db: *mut cairn_db_t,
    coll: *const c_char,
    cb: cairn_tag_count_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_tag_counts", |d| {
            let coll = text(coll)?;
            count_tags(cb, ctx, |f| d.tag_counts(coll, f))
        })
    }
}

/// Calls `cb` with each tag used in namespace `ns` and how many live entries carry it, in tag
/// byte order.
///
/// @retval as cairn_tag_counts().
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `ns` NUL-terminated; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_kv_tag_counts(
    db: *mut cairn_db_t,
    ns: *const c_char,
    cb: cairn_tag_count_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_kv_tag_counts", |d| {
            let ns = text(ns)?;
            count_tags(cb, ctx, |f| d.kv_tag_counts(ns, f))
        })
    }
}
