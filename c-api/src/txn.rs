//! Transactions: several reads and writes committed at once, or not at all.
//!
//! The core's `Txn` borrows the `Database`, so the open transaction is kept inside the handle
//! (see `State` in lib.rs): one transaction per handle, begun by cairn_txn_begin() and ended by
//! cairn_txn_commit() or cairn_txn_rollback(). The handle's platform lock is held from begin to
//! end, so other tasks wait (bounded by the lock timeout) instead of seeing half a transaction;
//! the task that holds it gets ::CAIRN_ERR_BUSY from calls on the handle itself.
//!
//! Nothing half-done is ever committed. Every transaction call of the core used here is all or
//! nothing: a call that fails undoes its own partial writes (an insert whose unique check fails
//! after it staged index entries leaves none behind), so a failed call leaves the transaction
//! as it was and the caller may go on and commit. The one call that is not a unit in the core,
//! cairn_txn_log_event() (it may create the event log before its insert fails), still aborts
//! the transaction on a database error: its staged writes are dropped at once, later calls on
//! it return ::CAIRN_ERR_TXN_ABORTED, and only ending it is left.

use super::*;
use cairndb::query::{Filter, Limits};

/// The open transaction of `txn`'s handle, for one call, under the platform lock. `f` sets
/// its `bool` when a call that is not all or nothing in the core failed after it may have
/// staged writes: the transaction is then aborted.
///
/// # Safety
/// `txn` is NULL or a transaction handle of a live database handle.
pub(crate) unsafe fn with_txn(
    txn: *const cairn_txn_t,
    func: &str,
    f: impl FnOnce(&mut Txn<'static, CallbackDevice>, &Config, &mut bool) -> R<()>,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(h) = (unsafe { txn_handle(txn) }) else {
        return CAIRN_ERR_NULL;
    };
    let cfg = h.cfg;
    h.call(func, |s| {
        let mut abort = false;
        let r = f(s.txn()?, &cfg, &mut abort);
        if abort {
            // Drops the staged writes now; the slot waits for commit or rollback.
            s.slot = Slot::Aborted;
        }
        r
    })
}

/// The database handle of a transaction handle.
///
/// # Safety
/// `txn` is NULL or a transaction handle of a live database handle.
unsafe fn txn_handle<'a>(txn: *const cairn_txn_t) -> Option<&'a cairn_db_t> {
    // SAFETY: the caller's contract: `txn` points into a live handle, whose `db` field points
    // back to it.
    unsafe { txn.as_ref().and_then(|t| t.db.as_ref()) }
}

/// An error of the database from a call that may leave part of its writes staged: aborts the
/// transaction.
pub(crate) fn fatal(abort: &mut bool) -> impl FnOnce(Error) -> i32 + '_ {
    move |e| {
        *abort = true;
        db_err(e)
    }
}

/// A document argument: JSON text (the core checks that it is an object within the nesting
/// limit).
///
/// # Safety
/// `p` as for [`text`].
pub(crate) unsafe fn doc_arg(cfg: &Config, p: *const c_char) -> R<Value> {
    // SAFETY: forwarded contract.
    unsafe { json_arg(cfg, p) }
}

/// Query limits as the core derives them from the configuration.
pub(crate) fn filter_limits(cfg: &Config) -> Limits {
    Limits {
        max_depth: cfg.max_depth.min(Limits::default().max_depth),
        ..Limits::default()
    }
}

/// Begins a transaction on `db`: its reads see its own writes, and nothing reaches flash
/// before cairn_txn_commit(). With a platform lock configured, the lock stays held by the
/// calling task until the transaction ends, so other tasks' calls wait for it (and get
/// CAIRN_ERR_TIMEOUT past the lock timeout). While it is open, calls on `db` itself return
/// CAIRN_ERR_BUSY: use the cairn_txn_* functions.
///
/// @param txn  receives the transaction (NULL on failure). It stays owned by `db`: end it
///             with cairn_txn_commit() or cairn_txn_rollback(); cairn_close() discards it.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db` or `txn`), CAIRN_ERR_BUSY (a transaction is open on
///         `db` already: one per handle; or called from a callback), CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: takes the handle's platform lock and keeps it until the transaction ends;
/// the transaction belongs to the calling task (the lock is the task's). Without a lock, calls
/// on one handle must not overlap.
///
/// # Safety
/// `db` is NULL or a live handle; `txn` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_begin(db: *mut cairn_db_t, txn: *mut *mut cairn_txn_t) -> i32 {
    if txn.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    unsafe { txn.write(core::ptr::null_mut()) };
    // SAFETY: the documented contract.
    let Some(h) = (unsafe { db.as_ref() }) else {
        return CAIRN_ERR_NULL;
    };
    if let Err(code) = h.platform.enter() {
        h.platform.log("cairn_txn_begin", code);
        return code;
    }
    let code = h.run(|s| s.begin());
    if code == CAIRN_OK {
        // The lock level taken above now belongs to the transaction.
        // SAFETY: the documented contract.
        unsafe { txn.write((&h.txn as *const cairn_txn_t).cast_mut()) };
    } else {
        h.platform.leave();
        h.platform.log("cairn_txn_begin", code);
    }
    code
}

/// Ends the transaction: commits it (`commit`) or drops it.
///
/// # Safety
/// As [`with_txn`].
unsafe fn end_txn(txn: *mut cairn_txn_t, func: &str, commit: bool) -> i32 {
    // SAFETY: the caller's contract.
    let Some(h) = (unsafe { txn_handle(txn) }) else {
        return CAIRN_ERR_NULL;
    };
    if let Err(code) = h.platform.enter() {
        h.platform.log(func, code);
        return code;
    }
    let mut ended = false;
    let code = match h.state.try_borrow_mut() {
        Err(_) => CAIRN_ERR_BUSY,
        Ok(mut s) => match s.end() {
            Slot::Idle => CAIRN_ERR_INVALID_ARGUMENT,
            slot => {
                ended = true;
                match slot {
                    // After a panic only the clean-up is done.
                    _ if h.poisoned.get() => CAIRN_ERR_INTERNAL,
                    Slot::Open(t) if commit => match catch(|| t.commit()) {
                        Some(Ok(())) => CAIRN_OK,
                        Some(Err(e)) => db_err(e),
                        None => {
                            h.poisoned.set(true);
                            CAIRN_ERR_INTERNAL
                        }
                    },
                    Slot::Aborted if commit => CAIRN_ERR_TXN_ABORTED,
                    _ => CAIRN_OK,
                }
            }
        },
    };
    h.platform.leave();
    if ended {
        // The level cairn_txn_begin() kept.
        h.platform.leave();
    }
    if code != CAIRN_OK {
        h.platform.log(func, code);
    }
    code
}

/// Commits every write of the transaction at once (one atomic commit: after a power cut all
/// of them are there or none) and ends it, releasing the platform lock it held.
///
/// @retval CAIRN_OK                committed and ended.
/// @retval CAIRN_ERR_TXN_ABORTED   an earlier failed cairn_txn_log_event() aborted it: nothing
///         was written; ended.
/// @retval CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_TXN_TOO_LARGE, CAIRN_ERR_FS  the commit
///         failed: nothing was written; ended.
/// @retval CAIRN_ERR_INTERNAL      the handle is poisoned: nothing was written; ended.
/// @retval CAIRN_ERR_NULL          `txn` is NULL.
/// @retval CAIRN_ERR_INVALID_ARGUMENT  no transaction is open on the handle (ended already).
/// @retval CAIRN_ERR_BUSY          called from a callback of the handle; nothing changed.
/// @retval CAIRN_ERR_TIMEOUT       another task holds the lock (it is not this task's
///         transaction); nothing changed.
///
/// Thread safety: call it from the task that began the transaction.
///
/// # Safety
/// `txn` is NULL or a transaction handle of a live database handle.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_commit(txn: *mut cairn_txn_t) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { end_txn(txn, "cairn_txn_commit", true) }
}

/// Discards every write of the transaction and ends it, releasing the platform lock it held.
///
/// @retval CAIRN_OK (also for an aborted transaction), CAIRN_ERR_INTERNAL (poisoned handle;
///         ended all the same), CAIRN_ERR_NULL, CAIRN_ERR_INVALID_ARGUMENT (none open),
///         CAIRN_ERR_BUSY (from a callback; nothing changed), CAIRN_ERR_TIMEOUT (another
///         task holds the lock; nothing changed).
///
/// Thread safety: call it from the task that began the transaction.
///
/// # Safety
/// `txn` is NULL or a transaction handle of a live database handle.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_rollback(txn: *mut cairn_txn_t) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { end_txn(txn, "cairn_txn_rollback", false) }
}

/// cairn_doc_insert() inside a transaction: the `_id` is assigned now, the document is
/// written at commit.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_JSON, CAIRN_ERR_INVALID_ARGUMENT
///         (not an object), CAIRN_ERR_TOO_DEEP, CAIRN_ERR_TOO_LARGE, CAIRN_ERR_INVALID_NAME,
///         CAIRN_ERR_UNIQUE, CAIRN_ERR_SCHEMA_VIOLATION, CAIRN_ERR_TXN_TOO_LARGE (the
///         transaction cannot hold more), CAIRN_ERR_IO, CAIRN_ERR_CORRUPT: the call changed
///         nothing and the transaction goes on (commit what it holds, or roll it back).
///         CAIRN_ERR_TXN_ABORTED (an earlier cairn_txn_log_event() failed),
///         CAIRN_ERR_INVALID_ARGUMENT (ended), CAIRN_ERR_BUSY (from a callback),
///         CAIRN_ERR_TIMEOUT (another task's lock), CAIRN_ERR_INTERNAL.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// `txn` as for cairn_txn_commit(); strings NUL-terminated; `id` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_insert(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    json: *const c_char,
    id: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_insert", |t, cfg, _| {
            let coll = text(coll)?;
            let doc = doc_arg(cfg, json)?;
            let new_id = t.insert(coll, &doc).map_err(db_err)?;
            set(id, new_id);
            Ok(())
        })
    }
}

/// cairn_doc_get() inside a transaction: sees the transaction's own writes.
///
/// @retval as cairn_doc_get(), plus CAIRN_ERR_TXN_ABORTED, CAIRN_ERR_INVALID_ARGUMENT
///         (ended), CAIRN_ERR_TIMEOUT. The transaction goes on after any error.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_doc_get(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_get(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    id: u64,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_get", |t, _, _| {
            let coll = text(coll)?;
            let doc = t
                .get(coll, id)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(to_json(&doc).as_bytes(), true, buf.cast(), cap, len)
        })
    }
}

/// cairn_doc_replace() inside a transaction.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND and the errors of cairn_txn_doc_insert(): a failed
///         call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_txn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_replace(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    id: u64,
    json: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_replace", |t, cfg, _| {
            let coll = text(coll)?;
            let doc = doc_arg(cfg, json)?;
            t.replace(coll, id, &doc).map_err(db_err)
        })
    }
}

/// cairn_doc_patch() inside a transaction.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_INVALID_PATCH (the patch does not apply
///         to the document) and the errors of cairn_txn_doc_insert(): a failed call changes
///         nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_txn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_patch(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    id: u64,
    patch: *const c_char,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_patch", |t, cfg, _| {
            let coll = text(coll)?;
            let p = json_arg(cfg, patch)?;
            t.patch(coll, id, &p).map_err(db_err)
        })
    }
}

/// cairn_doc_delete() inside a transaction.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND and the errors of cairn_txn_doc_insert(): a failed
///         call changes nothing and the transaction goes on.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_txn_doc_insert().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_delete(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    id: u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_delete", |t, _, _| {
            let coll = text(coll)?;
            match t.delete(coll, id).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

/// cairn_doc_count() inside a transaction (counts its own inserts and deletes).
///
/// @retval as cairn_doc_count(), plus the transaction errors of cairn_txn_doc_get().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// `txn` as for cairn_txn_commit(); `count` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_doc_count(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    count: *mut u64,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_doc_count", |t, _, _| {
            if count.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let coll = text(coll)?;
            set(count, t.count(coll).map_err(db_err)?);
            Ok(())
        })
    }
}

/// cairn_find() inside a transaction: the results include its own writes.
///
/// @retval as cairn_find() (a query never aborts the transaction), plus
///         CAIRN_ERR_TXN_ABORTED, CAIRN_ERR_INVALID_ARGUMENT (ended), CAIRN_ERR_TIMEOUT.
///         `cb` calling into the transaction or its handle gets CAIRN_ERR_BUSY.
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_find(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_find(
    txn: *mut cairn_txn_t,
    coll: *const c_char,
    filter: *const c_char,
    options: *const c_char,
    cb: cairn_find_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_find", |t, cfg, _| {
            let cb = cb.ok_or(CAIRN_ERR_NULL)?;
            let coll = text(coll)?;
            let fv = filter_arg(cfg, filter)?;
            let opts = options_arg(options)?;
            let compiled = Filter::from_value(&fv, &filter_limits(cfg)).map_err(db_err)?;
            let mut user: i32 = 0;
            let mut line = String::new();
            t.find(coll, &compiled, Some(&fv), &opts, &mut |doc| {
                line.clear();
                value::to_json(&doc, &mut line);
                line.push('\0');
                user = cb(ctx, line.as_ptr().cast(), line.len() - 1);
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

/// cairn_kv_put() inside a transaction.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_UTF8, CAIRN_ERR_INVALID_NAME (`ns`, or an
///         empty or too long key), CAIRN_ERR_TOO_LARGE (value), CAIRN_ERR_TXN_TOO_LARGE,
///         CAIRN_ERR_IO, CAIRN_ERR_CORRUPT: a failed call changes nothing and the transaction
///         goes on. Transaction errors as cairn_txn_doc_insert().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_put(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_put(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_put", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = bytes(value, value_len)?;
            t.kv_put(ns, k, v).map_err(db_err)
        })
    }
}

/// cairn_kv_get() inside a transaction: sees its own writes.
///
/// @retval as cairn_kv_get(), plus the transaction errors of cairn_txn_doc_get().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_get(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_get(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_get", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            let v = t
                .kv_get(ns, k)
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            put(&v, false, buf, cap, len)
        })
    }
}

/// cairn_kv_delete() inside a transaction.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND, CAIRN_ERR_INVALID_NAME, CAIRN_ERR_TXN_TOO_LARGE,
///         CAIRN_ERR_IO, CAIRN_ERR_CORRUPT: a failed call changes nothing and the transaction
///         goes on. Transaction errors as cairn_txn_doc_insert().
///
/// Thread safety: the transaction's task only (see cairn_txn_begin()).
///
/// # Safety
/// As cairn_kv_delete(), with `txn` as for cairn_txn_commit().
#[no_mangle]
pub unsafe extern "C" fn cairn_txn_kv_delete(
    txn: *mut cairn_txn_t,
    ns: *const c_char,
    key: *const c_void,
    key_len: usize,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_txn(txn, "cairn_txn_kv_delete", |t, _, _| {
            let ns = text(ns)?;
            let k = bytes(key, key_len)?;
            match t.kv_delete(ns, k).map_err(db_err)? {
                true => Ok(()),
                false => Err(CAIRN_ERR_NOT_FOUND),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicI32, Ordering};

    unsafe extern "C" fn lock(ctx: *mut c_void, _timeout_ms: u32) -> i32 {
        // SAFETY: the test passes an AtomicI32 as the lock context.
        unsafe { &*ctx.cast::<AtomicI32>() }.fetch_add(1, Ordering::SeqCst);
        0
    }

    unsafe extern "C" fn unlock(ctx: *mut c_void) {
        // SAFETY: as in `lock`.
        unsafe { &*ctx.cast::<AtomicI32>() }.fetch_sub(1, Ordering::SeqCst);
    }

    /// A panic inside a transaction (a bug) poisons the handle, yet the transaction can still
    /// be ended: its writes are dropped and the lock level it held is released.
    #[test]
    fn a_panic_inside_a_transaction_still_ends_it_and_releases_the_lock() {
        let depth = AtomicI32::new(0);
        unsafe {
            let mut dev = core::ptr::null_mut();
            assert_eq!(cairn_ram_device_new(&mut dev, 16, 16, 4096, 32), CAIRN_OK);
            let mut cfg: cairn_config_t = core::mem::zeroed();
            assert_eq!(cairn_ram_device_config(dev, &mut cfg), CAIRN_OK);
            cfg.lock = Some(lock);
            cfg.unlock = Some(unlock);
            cfg.lock_ctx = (&depth as *const AtomicI32).cast_mut().cast();
            let mut db = core::ptr::null_mut();
            assert_eq!(cairn_format(&mut db, &cfg, core::ptr::null()), CAIRN_OK);
            let mut txn = core::ptr::null_mut();
            assert_eq!(cairn_txn_begin(db, &mut txn), CAIRN_OK);
            assert_eq!(depth.load(Ordering::SeqCst), 1);
            let ins =
                cairn_txn_doc_insert(txn, c"c".as_ptr(), c"{}".as_ptr(), core::ptr::null_mut());
            assert_eq!(ins, CAIRN_OK);
            let rc = with_txn(txn, "test", |_, _, _| panic!("a bug"));
            assert_eq!(rc, CAIRN_ERR_INTERNAL);
            assert_eq!(
                depth.load(Ordering::SeqCst),
                1,
                "each call releases its own level"
            );
            let ins =
                cairn_txn_doc_insert(txn, c"c".as_ptr(), c"{}".as_ptr(), core::ptr::null_mut());
            assert_eq!(ins, CAIRN_ERR_INTERNAL);
            assert_eq!(cairn_txn_commit(txn), CAIRN_ERR_INTERNAL);
            assert_eq!(
                depth.load(Ordering::SeqCst),
                0,
                "the transaction's level is released"
            );
            assert_eq!(cairn_txn_rollback(txn), CAIRN_ERR_INVALID_ARGUMENT);
            assert_eq!(cairn_close(db), CAIRN_OK);
            assert_eq!(depth.load(Ordering::SeqCst), 0);
            // Nothing of the transaction reached the flash.
            let mut count = 99u64;
            assert_eq!(cairn_open(&mut db, &cfg, core::ptr::null()), CAIRN_OK);
            assert_eq!(cairn_doc_count(db, c"c".as_ptr(), &mut count), CAIRN_OK);
            assert_eq!(count, 0);
            assert_eq!(cairn_close(db), CAIRN_OK);
            cairn_ram_device_free(dev);
        }
    }
}
