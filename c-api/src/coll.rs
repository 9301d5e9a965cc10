//! Collections, namespaces, schemas and the rest of the query API: bulk updates and deletes,
//! distinct values, index listing and query plans. Results that are lists or documents come
//! back as JSON text in the caller's buffer (the cairn_doc_get() convention).

use super::*;

/// Receives one name of cairn_coll_list() or cairn_ns_list(): `len` bytes plus a NUL, valid
/// only during the call. Return values as for ::cairn_find_fn.
pub type cairn_name_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, name: *const c_char, len: usize) -> i32>;

/// Creates an empty collection (inserting into a missing collection creates it too).
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
pub unsafe extern "C" fn cairn_coll_create(db: *mut cairn_db_t, name: *const c_char) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_coll_create", |d| {
            let name = text(name)?;
            d.create_collection(name).map_err(db_err)
        })
    }
}

/// Drops a collection with all its documents, indexes and schema, in one commit. The space is
/// reclaimed by later merges (cairn_compact()).
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `name` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_coll_drop(db: *mut cairn_db_t, name: *const c_char) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_coll_drop", |d| {
            let name = text(name)?;
            d.drop_collection(name).map_err(db_err)
        })
    }
}

/// Calls `cb` for each name, NUL-terminated; stops as the callback asks.
///
/// # Safety
/// `cb` must not unwind.
unsafe fn each_name(names: &[String], cb: cairn_name_fn, ctx: *mut c_void) -> R<()> {
    let cb = cb.ok_or(CAIRN_ERR_NULL)?;
    let mut line = String::new();
    for name in names {
        line.clear();
        line.push_str(name);
        line.push('\0');
        // SAFETY: the callback's contract; `line` is NUL-terminated and lives for the call.
        let user = unsafe { cb(ctx, line.as_ptr().cast(), name.len()) };
        match user {
            0 => {}
            u if u < 0 => return Err(u),
            _ => break,
        }
    }
    Ok(())
}

/// Calls `cb` with the name of each collection, in name order.
///
/// @retval CAIRN_OK, a negative value returned by `cb`, CAIRN_ERR_NULL (`db`, `cb`),
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY (also when `cb` calls into `db`),
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_coll_list(
    db: *mut cairn_db_t,
    cb: cairn_name_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_coll_list", |d| {
            cb.ok_or(CAIRN_ERR_NULL)?;
            let names = d.collections().map_err(db_err)?;
            each_name(&names, cb, ctx)
        })
    }
}

/// Calls `cb` with the name of each key-value namespace, in name order.
///
/// @retval as cairn_coll_list().
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `cb` must not unwind.
#[no_mangle]
pub unsafe extern "C" fn cairn_ns_list(
    db: *mut cairn_db_t,
    cb: cairn_name_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_ns_list", |d| {
            cb.ok_or(CAIRN_ERR_NULL)?;
            let names = d.namespaces().map_err(db_err)?;
            each_name(&names, cb, ctx)
        })
    }
}

/// A filter a bulk write needs: required, "" or "{}" for every document.
///
/// # Safety
/// `p` as for [`text`].
unsafe fn bulk_filter(cfg: &Config, p: *const c_char) -> R<Value> {
    if p.is_null() {
        return Err(CAIRN_ERR_NULL);
    }
    // SAFETY: forwarded contract.
    unsafe { filter_arg(cfg, p) }
}

/// Applies `patch` (as cairn_doc_patch()) to every document of `coll` matching `filter`, in
/// one atomic commit: all of them or none.
///
/// @param filter  a filter document (required: "{}" patches every document).
/// @param count   receives how many documents were updated; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll`, `filter`, `patch`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_JSON, CAIRN_ERR_BAD_FILTER, CAIRN_ERR_INVALID_PATCH, CAIRN_ERR_TOO_DEEP,
///         CAIRN_ERR_TOO_LARGE, CAIRN_ERR_UNIQUE, CAIRN_ERR_SCHEMA_VIOLATION,
///         CAIRN_ERR_TXN_TOO_LARGE (too many documents for one commit), CAIRN_ERR_INVALID_NAME,
///         CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated; `count` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_update_many(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    patch: *const c_char,
    count: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_update_many", |d| {
            let coll = text(coll)?;
            let fv = bulk_filter(d.config(), filter)?;
            let p = json_arg(d.config(), patch)?;
            let n = d.update_many(coll, &fv, &p).map_err(db_err)?;
            set(count, n);
            Ok(())
        })
    }
}

/// Deletes every document of `coll` matching `filter`, in one atomic commit.
///
/// @param filter  a filter document (required: "{}" deletes every document).
/// @param count   receives how many documents were deleted; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `coll`, `filter`), CAIRN_ERR_UTF8, CAIRN_ERR_JSON,
///         CAIRN_ERR_BAD_FILTER, CAIRN_ERR_TOO_DEEP, CAIRN_ERR_TXN_TOO_LARGE,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated; `count` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_delete_many(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    count: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_delete_many", |d| {
            let coll = text(coll)?;
            let fv = bulk_filter(d.config(), filter)?;
            let n = d.delete_many(coll, &fv).map_err(db_err)?;
            set(count, n);
            Ok(())
        })
    }
}

/// Copies the distinct values of `field` (a dotted path) among the documents matching
/// `filter` into `buf`, as a NUL-terminated JSON array in value order (null, booleans,
/// numbers, strings, ...; an array field contributes each element). At most 64 values: more
/// is CAIRN_ERR_TOO_LARGE.
///
/// @param filter  NULL or "" matches every document.
/// @param len     receives the JSON length without the NUL, also on
///                CAIRN_ERR_BUFFER_TOO_SMALL; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_BUFFER_TOO_SMALL, CAIRN_ERR_NULL (`db`, `coll`, `field`),
///         CAIRN_ERR_UTF8, CAIRN_ERR_JSON, CAIRN_ERR_BAD_FILTER (also a bad `field`),
///         CAIRN_ERR_TOO_LARGE, CAIRN_ERR_TOO_DEEP, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// Strings NUL-terminated or NULL as documented; `buf` valid for `cap` bytes; `len` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_distinct(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    field: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_distinct", |d| {
            let coll = text(coll)?;
            let field = text(field)?;
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(CAIRN_ERR_BAD_FILTER);
            }
            let fv = filter_arg(d.config(), filter)?;
            let values = d.distinct(coll, &fv, field).map_err(db_err)?;
            put(
                to_json(&Value::Array(values)).as_bytes(),
                true,
                buf.cast(),
                cap,
                len,
            )
        })
    }
}

/// Sets the JSON Schema (a subset: `type`, `enum`, `minimum`, `maximum`, `maxLength`,
/// `required`, `properties`, `additionalProperties`, `items`; docs/SPEC.md, "Document
/// validation") every later write to `coll` must satisfy,
/// creating the collection if needed; `schema` NULL removes it. Documents already stored are
/// not re-checked.
///
/// @retval CAIRN_OK, CAIRN_ERR_BAD_SCHEMA, CAIRN_ERR_JSON, CAIRN_ERR_TOO_DEEP,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_NULL (`db`, `coll`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL. Nothing is written on error.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `coll` NUL-terminated; `schema` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cairn_schema_set(
    db: *mut cairn_db_t,
    coll: *const c_char,
    schema: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_schema_set", |d| {
            let coll = text(coll)?;
            let s = match schema.is_null() {
                true => None,
                false => Some(json_arg(d.config(), schema)?),
            };
            d.set_schema(coll, s.as_ref()).map_err(db_err)
        })
    }
}

/// Copies the schema of `coll` (as the library normalised it) into `buf` as NUL-terminated
/// JSON.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no schema, or no such collection),
///         CAIRN_ERR_BUFFER_TOO_SMALL (`*len` holds the length needed), CAIRN_ERR_NULL,
///         CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `coll` NUL-terminated; `buf` valid for `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_schema_get(
    db: *mut cairn_db_t,
    coll: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_schema_get", |d| {
            let coll = text(coll)?;
            let s = d.schema(coll).map_err(db_err)?.ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(to_json(&s).as_bytes(), true, buf.cast(), cap, len)
        })
    }
}

/// Copies what the last CAIRN_ERR_SCHEMA_VIOLATION on this handle was about, as
/// NUL-terminated JSON `{"field":"loc.floor","rule":"maximum"}` (`field` "" for the document
/// itself).
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no violation yet), CAIRN_ERR_BUFFER_TOO_SMALL,
///         CAIRN_ERR_NULL, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `buf` valid for `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_schema_violation(
    db: *mut cairn_db_t,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_schema_violation", |d| {
            let v = d.last_violation().ok_or(CAIRN_ERR_NOT_FOUND)?;
            let mut m = value::Map::new();
            m.insert(String::from("field"), Value::Str(v.field.clone()));
            m.insert(String::from("rule"), Value::Str(String::from(v.rule)));
            put(
                to_json(&Value::Map(m)).as_bytes(),
                true,
                buf.cast(),
                cap,
                len,
            )
        })
    }
}

/// Copies the indexes of `coll` into `buf` as a NUL-terminated JSON array, in name order:
/// `[{"name":"by_room","fields":["room"],"unique":false,"partial":null,"multikey":false}]`
/// (`[]` for a collection without indexes or a missing collection).
///
/// @retval CAIRN_OK, CAIRN_ERR_BUFFER_TOO_SMALL, CAIRN_ERR_NULL, CAIRN_ERR_UTF8,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `coll` NUL-terminated; `buf` valid for `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_index_list(
    db: *mut cairn_db_t,
    coll: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_index_list", |d| {
            let coll = text(coll)?;
            let list = d.list_indexes(coll).map_err(db_err)?;
            let mut out = Vec::with_capacity(list.len());
            for i in list {
                let mut m = value::Map::with_capacity(5);
                m.insert(String::from("name"), Value::Str(i.name));
                m.insert(
                    String::from("fields"),
                    Value::Array(i.fields.into_iter().map(Value::Str).collect()),
                );
                m.insert(String::from("unique"), Value::Bool(i.unique));
                m.insert(String::from("partial"), i.partial.unwrap_or(Value::Null));
                m.insert(String::from("multikey"), Value::Bool(i.multikey));
                out.push(Value::Map(m));
            }
            put(
                to_json(&Value::Array(out)).as_bytes(),
                true,
                buf.cast(),
                cap,
                len,
            )
        })
    }
}

/// Copies the plan cairn_find() would use for `filter` and `options` into `buf` as
/// NUL-terminated JSON, `{"access":"scan"|"index", ...}` (see docs/SPEC.md, "Query language").
/// Reads no document.
///
/// @retval CAIRN_OK, CAIRN_ERR_BUFFER_TOO_SMALL, CAIRN_ERR_NULL (`db`, `coll`),
///         CAIRN_ERR_UTF8, CAIRN_ERR_JSON, CAIRN_ERR_BAD_FILTER, CAIRN_ERR_TOO_DEEP,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY,
///         CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_find() for the query; `buf` valid for `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_explain(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    options: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_explain", |d| {
            let coll = text(coll)?;
            let fv = filter_arg(d.config(), filter)?;
            let opts = options_arg(options)?;
            let plan = d.explain(coll, &fv, &opts).map_err(db_err)?;
            put(to_json(&plan).as_bytes(), true, buf.cast(), cap, len)
        })
    }
}
