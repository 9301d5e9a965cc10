//! Documents as handles: typed reads by dotted path, so C code need not parse JSON.
//!
//! A ::cairn_doc_t owns a decoded copy of one document; it is independent of the database
//! (it stays valid after cairn_close()) and is freed with cairn_doc_free(). The documents a
//! cairn_find_docs() callback receives are lent for the call only.

use super::*;

/// A decoded document (opaque): from cairn_doc_get_handle() or cairn_doc_dup() (owned by the
/// caller, freed with cairn_doc_free()), or lent to a ::cairn_find_doc_fn for one call.
///
/// Thread safety: independent of any database handle; one document must not be used by two
/// tasks at once (reads from several tasks at once are fine, cairn_doc_free() is not).
pub struct cairn_doc_t {
    v: Value,
}

/// Types reported by cairn_doc_type(): JSON `null`.
pub const CAIRN_TYPE_NULL: i32 = 0;
/// `true` or `false` (cairn_doc_get_bool()).
pub const CAIRN_TYPE_BOOL: i32 = 1;
/// A 64-bit integer (cairn_doc_get_i64(), cairn_doc_get_f64()).
pub const CAIRN_TYPE_INT: i32 = 2;
/// A 64-bit float (cairn_doc_get_f64()).
pub const CAIRN_TYPE_FLOAT: i32 = 3;
/// UTF-8 text (cairn_doc_get_str()).
pub const CAIRN_TYPE_STR: i32 = 4;
/// Raw bytes, `{"$binary":"<base64>"}` in JSON (cairn_doc_get_bytes()).
pub const CAIRN_TYPE_BYTES: i32 = 5;
/// An array: its elements are at paths "a.0", "a.1", ... (cairn_doc_len() counts them).
pub const CAIRN_TYPE_ARRAY: i32 = 6;
/// An object.
pub const CAIRN_TYPE_MAP: i32 = 7;

fn type_of(v: &Value) -> i32 {
    match v {
        Value::Null => CAIRN_TYPE_NULL,
        Value::Bool(_) => CAIRN_TYPE_BOOL,
        Value::Int(_) => CAIRN_TYPE_INT,
        Value::Float(_) => CAIRN_TYPE_FLOAT,
        Value::Str(_) => CAIRN_TYPE_STR,
        Value::Bytes(_) => CAIRN_TYPE_BYTES,
        Value::Array(_) => CAIRN_TYPE_ARRAY,
        Value::Map(_) => CAIRN_TYPE_MAP,
    }
}

/// The value at `path` in `doc`: "" is the document itself; otherwise dotted map keys and
/// decimal array indexes ("sensor.id", "tags.0").
///
/// # Safety
/// `doc` is NULL or a live document; `path` NULL or NUL-terminated; both outlive `'a`.
unsafe fn lookup<'a>(doc: *const cairn_doc_t, path: *const c_char) -> R<&'a Value> {
    // SAFETY: the caller's contract.
    let doc = unsafe { doc.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
    // SAFETY: the caller's contract.
    let path = unsafe { text(path)? };
    if path.is_empty() {
        return Ok(&doc.v);
    }
    value::get_path(&doc.v, path).ok_or(CAIRN_ERR_NOT_FOUND)
}

/// `v` as a document to lend to a callback for one call.
pub(crate) fn lend(v: Value) -> cairn_doc_t {
    cairn_doc_t { v }
}

/// Boxes `v` as an owned document for the caller.
///
/// # Safety
/// `out` is valid for a write.
unsafe fn hand_out(out: *mut *mut cairn_doc_t, v: Value) {
    // SAFETY: the caller's contract.
    unsafe { out.write(Box::into_raw(Box::new(cairn_doc_t { v }))) };
}

/// Reads document `id` of `coll` into a new document handle.
///
/// @param doc  receives the document (NULL on failure); the caller owns it and frees it with
///             cairn_doc_free(). It does not depend on `db` staying open.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_NULL (`db`, `coll`, `doc`), CAIRN_ERR_UTF8,
///         CAIRN_ERR_INVALID_NAME, CAIRN_ERR_CORRUPT, CAIRN_ERR_WRONG_KEY, CAIRN_ERR_IO,
///         CAIRN_ERR_NO_MEMORY, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `db` NULL or live; `coll` NULL or NUL-terminated; `doc` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_handle(
    db: *mut cairn_db_t,
    coll: *const c_char,
    id: u64,
    doc: *mut *mut cairn_doc_t,
) -> i32 {
    if doc.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    unsafe { doc.write(core::ptr::null_mut()) };
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_doc_get_handle", |d| {
            let coll = text(coll)?;
            let v = d
                .get(coll, id)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            hand_out(doc, v);
            Ok(())
        })
    }
}

/// Frees a document handle. NULL is a no-op. Never pass a document lent to a
/// ::cairn_find_doc_fn.
///
/// Thread safety: no other task may be using `doc`.
///
/// # Safety
/// `doc` is NULL or an owned document, not used again.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_free(doc: *mut cairn_doc_t) {
    if !doc.is_null() {
        // SAFETY: an owned document from Box::into_raw (contract).
        drop(unsafe { Box::from_raw(doc) });
    }
}

/// Copies a document (for instance one lent to a ::cairn_find_doc_fn, to keep it).
///
/// @param out  receives the copy (NULL on failure), owned by the caller (cairn_doc_free()).
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// `doc` NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_dup(doc: *const cairn_doc_t, out: *mut *mut cairn_doc_t) -> i32 {
    if out.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    unsafe { out.write(core::ptr::null_mut()) };
    guard(|| {
        // SAFETY: the documented contract.
        let d = unsafe { doc.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
        // SAFETY: the documented contract.
        unsafe { hand_out(out, d.v.clone()) };
        Ok(())
    })
}

/// Copies the whole document as NUL-terminated JSON text into `buf` (as cairn_doc_get()).
///
/// @retval CAIRN_OK, CAIRN_ERR_BUFFER_TOO_SMALL (`*len` holds the length needed without the
///         NUL; `buf` an empty string if `cap` > 0), CAIRN_ERR_NULL, CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// `doc` NULL or live; `buf` valid for `cap` bytes; `len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_to_json(
    doc: *const cairn_doc_t,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: the documented contract.
        let d = unsafe { doc.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
        // SAFETY: the documented contract.
        unsafe { put(to_json(&d.v).as_bytes(), true, buf.cast(), cap, len) }
    })
}

/// Stores the type (`CAIRN_TYPE_*`) of the value at `path` in `*kind`.
///
/// @param path  dotted path: map keys and decimal array indexes ("sensor.id", "tags.0"); ""
///              is the document itself.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (nothing at `path`), CAIRN_ERR_NULL, CAIRN_ERR_UTF8,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// `doc` NULL or live; `path` NULL or NUL-terminated; `kind` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_type(
    doc: *const cairn_doc_t,
    path: *const c_char,
    kind: *mut i32,
) -> i32 {
    guard(|| {
        if kind.is_null() {
            return Err(CAIRN_ERR_NULL);
        }
        // SAFETY: the documented contract.
        let v = unsafe { lookup(doc, path)? };
        // SAFETY: the documented contract.
        unsafe { set(kind, type_of(v)) };
        Ok(())
    })
}

/// Stores the size of the value at `path` in `*len`: elements of an array, entries of an
/// object, bytes of a string (UTF-8, no NUL) or of a byte value.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_TYPE (a null, bool or number),
///         CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// As cairn_doc_type().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_len(
    doc: *const cairn_doc_t,
    path: *const c_char,
    len: *mut usize,
) -> i32 {
    guard(|| {
        if len.is_null() {
            return Err(CAIRN_ERR_NULL);
        }
        // SAFETY: the documented contract.
        let n = match unsafe { lookup(doc, path)? } {
            Value::Array(a) => a.len(),
            Value::Map(m) => m.len(),
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            _ => return Err(CAIRN_ERR_TYPE),
        };
        // SAFETY: the documented contract.
        unsafe { set(len, n) };
        Ok(())
    })
}

/// Reads the integer at `path` into `*out`. Floats are not converted (CAIRN_ERR_TYPE).
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (nothing at `path`), CAIRN_ERR_TYPE (another type;
///         `*out` untouched), CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// `doc` NULL or live; `path` NULL or NUL-terminated; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_i64(
    doc: *const cairn_doc_t,
    path: *const c_char,
    out: *mut i64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe { get_scalar(doc, path, out, Value::as_i64) }
}

/// Reads the number at `path` into `*out`: a float, or an integer converted (integers beyond
/// 2^53 round).
///
/// @retval as cairn_doc_get_i64().
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// As cairn_doc_get_i64().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_f64(
    doc: *const cairn_doc_t,
    path: *const c_char,
    out: *mut f64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe { get_scalar(doc, path, out, Value::as_f64) }
}

/// Reads the boolean at `path` into `*out`.
///
/// @retval as cairn_doc_get_i64().
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// As cairn_doc_get_i64().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_bool(
    doc: *const cairn_doc_t,
    path: *const c_char,
    out: *mut bool,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe { get_scalar(doc, path, out, Value::as_bool) }
}

/// # Safety
/// As cairn_doc_get_i64().
unsafe fn get_scalar<T>(
    doc: *const cairn_doc_t,
    path: *const c_char,
    out: *mut T,
    conv: fn(&Value) -> Option<T>,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(CAIRN_ERR_NULL);
        }
        // SAFETY: the caller's contract.
        let v = unsafe { lookup(doc, path)? };
        let x = conv(v).ok_or(CAIRN_ERR_TYPE)?;
        // SAFETY: the caller's contract.
        unsafe { set(out, x) };
        Ok(())
    })
}

/// Copies the string at `path` into `buf` as NUL-terminated UTF-8.
///
/// @param buf  the caller's buffer of `cap` bytes; may be NULL when `cap` is 0 (a size query).
/// @param len  receives the string's length without the NUL, also on
///             CAIRN_ERR_BUFFER_TOO_SMALL; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_TYPE, CAIRN_ERR_BUFFER_TOO_SMALL (`buf`
///         then holds an empty string if `cap` > 0), CAIRN_ERR_NULL, CAIRN_ERR_UTF8 (`path`),
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// `doc` NULL or live; `path` NULL or NUL-terminated; `buf` valid for `cap` bytes; `len`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_str(
    doc: *const cairn_doc_t,
    path: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: the documented contract.
        let v = unsafe { lookup(doc, path)? };
        let s = v.as_str().ok_or(CAIRN_ERR_TYPE)?;
        // SAFETY: the documented contract.
        unsafe { put(s.as_bytes(), true, buf.cast(), cap, len) }
    })
}

/// Copies the byte value (JSON `{"$binary":"<base64>"}`) at `path` into `buf` (raw bytes, no
/// NUL added).
///
/// @param len  receives the value's length, also on CAIRN_ERR_BUFFER_TOO_SMALL; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_TYPE (strings are not bytes: use
///         cairn_doc_get_str()), CAIRN_ERR_BUFFER_TOO_SMALL, CAIRN_ERR_NULL, CAIRN_ERR_UTF8,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: as for reading `doc`.
///
/// # Safety
/// As cairn_doc_get_str().
#[no_mangle]
pub unsafe extern "C" fn cairn_doc_get_bytes(
    doc: *const cairn_doc_t,
    path: *const c_char,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: the documented contract.
        let v = unsafe { lookup(doc, path)? };
        let b = v.as_bytes().ok_or(CAIRN_ERR_TYPE)?;
        // SAFETY: the documented contract.
        unsafe { put(b, false, buf, cap, len) }
    })
}

/// Receives one result of cairn_find_docs(), lent for the call only (never free it; copy it
/// with cairn_doc_dup() to keep it). Return values as for ::cairn_find_fn.
pub type cairn_find_doc_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, doc: *const cairn_doc_t) -> i32>;

/// cairn_find() with each result as a document handle instead of JSON text: read it with
/// the cairn_doc_get_* accessors.
///
/// @retval as cairn_find().
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// As cairn_find().
#[no_mangle]
pub unsafe extern "C" fn cairn_find_docs(
    db: *mut cairn_db_t,
    coll: *const c_char,
    filter: *const c_char,
    options: *const c_char,
    cb: cairn_find_doc_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_find_docs", |d| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let coll = text(coll)?;
            let fv = filter_arg(d.config(), filter)?;
            let opts = options_arg(options)?;
            let mut user: i32 = 0;
            d.find(coll, &fv, &opts, &mut |v| {
                let doc = cairn_doc_t { v };
                user = cb(ctx, &doc);
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
