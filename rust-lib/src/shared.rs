//! One database shared by several tasks: a platform lock with timeouts ([`RawLock`]), a handle
//! that serialises every call through it ([`Shared`]), and transactions a task keeps open
//! across several calls ([`Shared::begin`]), with detection and removal of transactions whose
//! task went away ("stale").
//!
//! Isolation, plainly: there is no multi-versioning. One call runs at a time (the lock), and at
//! most one detached transaction is open; while it is, only its owner writes (through
//! [`Shared::in_txn`]). Everyone else's writes wait, up to the timeout, and then fail with
//! [`Error::Busy`]; their reads go on and see the committed state only, never the open
//! transaction's writes. Nothing else commits while a detached transaction is open, so it sees
//! a state only it changes (serialisable, by exclusion rather than by versions).
//!
//! Waits are always bounded: taking the lock gives up after the timeout with
//! [`Error::Timeout`]; waiting for another owner's detached transaction gives up after the same
//! timeout with [`Error::Busy`]; a closure that calls back into the handle it runs in gets
//! [`Error::Busy`] at once (with a recursive lock) or [`Error::Timeout`] (with a plain one),
//! never a deadlock and never a second reference to the database.

use crate::db::{Config, Database, DocIter, IndexInfo, PendingTxn, Stats, Txn};
use crate::flash::BlockDevice;
use crate::query::{Filter, FindOptions};
use crate::schema::Violation;
use crate::value::Value;
use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::marker::PhantomData;

/// A platform mutex with a timeout, plus the two things waiting for another task's transaction
/// needs: a millisecond counter and a sleep.
///
/// It maps directly onto an RTOS mutex:
/// - FreeRTOS: `lock` = `xSemaphoreTake(m, pdMS_TO_TICKS(ms)) == pdTRUE` (or
///   `xSemaphoreTakeRecursive`), `unlock` = `xSemaphoreGive(m)`, `millis` =
///   `xTaskGetTickCount() * portTICK_PERIOD_MS`, `pause` = `vTaskDelay(pdMS_TO_TICKS(ms))`;
/// - Zephyr: `lock` = `k_mutex_lock(&m, K_MSEC(ms)) == 0`, `unlock` = `k_mutex_unlock(&m)`,
///   `millis` = `k_uptime_get_32()`, `pause` = `k_msleep(ms)`;
/// - C callbacks: each method calls a function pointer with the platform's context pointer.
///
/// # Safety
/// [`Shared`] hands out `&mut Database` on the strength of this lock, so an implementation
/// must guarantee:
/// - mutual exclusion between threads: while one thread holds the lock (a `lock` returned true
///   and its `unlock` has not run), `lock` returns true on no other thread. A lock that is not
///   `Sync` can only be reached from one thread and may always return true ([`NoLock`]);
/// - ordering: an `unlock` happens-before the `lock` that next succeeds (release/acquire; every
///   RTOS mutex and `std::sync::Mutex` give it);
/// - `unlock` is called only by the thread that holds the lock, once per successful `lock`.
///
/// A recursive mutex is fine: the handle itself refuses a call made from inside one of its own
/// closures before touching the database.
pub unsafe trait RawLock {
    /// Take the lock, waiting at most `timeout_ms` milliseconds (0: try once). Returns false
    /// when it timed out.
    fn lock(&self, timeout_ms: u32) -> bool;

    /// Release the lock taken by the last successful [`RawLock::lock`] of this thread.
    fn unlock(&self);

    /// A free-running millisecond counter (wrapping), used to bound waits for another task's
    /// transaction. It must advance with real time when [`RawLock::pause`] can return true.
    fn millis(&self) -> u32 {
        0
    }

    /// Sleep about `ms` milliseconds without holding the lock (returning earlier, for example
    /// when the lock is released, is fine). Returns false when waiting cannot help because no
    /// other task can run meanwhile; the caller then gives up at once. The default does that,
    /// so a lock with only `lock` and `unlock` is correct, merely impatient.
    fn pause(&self, ms: u32) -> bool {
        let _ = ms;
        false
    }
}

/// The lock of a database used by a single task: taking it always succeeds, waiting for another
/// task's transaction never helps. Not `Sync`, so a [`Shared`] using it cannot be shared
/// between threads (it can still be moved to one).
#[derive(Debug, Default)]
pub struct NoLock {
    one_thread: PhantomData<Cell<()>>,
}

impl NoLock {
    pub const fn new() -> Self {
        NoLock {
            one_thread: PhantomData,
        }
    }
}

// SAFETY: `NoLock` is not `Sync`, so every `lock` and `unlock` of one value comes from one
// thread; there is no other thread to exclude, and nothing to order.
unsafe impl RawLock for NoLock {
    fn lock(&self, _timeout_ms: u32) -> bool {
        true
    }

    fn unlock(&self) {}
}

#[cfg(feature = "std")]
pub use std_lock::StdLock;

#[cfg(feature = "std")]
mod std_lock {
    use super::RawLock;
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::{Duration, Instant};

    /// A [`RawLock`] for hosted targets: a flag under a `std` mutex, waited for on a condition
    /// variable, so timeouts are honoured and sleepers wake when the lock is released. Not
    /// recursive: a nested call times out (the handle then reports [`crate::Error::Timeout`]).
    #[derive(Debug)]
    pub struct StdLock {
        state: Mutex<State>,
        changed: Condvar,
        epoch: Instant,
    }

    #[derive(Debug, Default)]
    struct State {
        held: bool,
        /// Releases so far: a pause ends early when it moves.
        releases: u64,
    }

    impl Default for StdLock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl StdLock {
        pub fn new() -> Self {
            StdLock {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                epoch: Instant::now(),
            }
        }

        /// The state, ignoring poisoning: nothing panics while holding it, and a flag and a
        /// counter cannot be left half-updated.
        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Wait on the condition variable until `done` holds or `ms` pass; returns the guard
        /// and whether `done` held.
        fn wait_until<'a>(
            &self,
            mut g: MutexGuard<'a, State>,
            ms: u32,
            done: impl Fn(&State) -> bool,
        ) -> (MutexGuard<'a, State>, bool) {
            let deadline = Instant::now().checked_add(Duration::from_millis(u64::from(ms)));
            while !done(&g) {
                let left = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()),
                    None => Duration::MAX,
                };
                if left.is_zero() {
                    return (g, false);
                }
                g = match self.changed.wait_timeout(g, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            (g, true)
        }
    }

    // SAFETY: `held` is only read and set under the std mutex, which gives the ordering; `lock`
    // returns true only after setting `held` from false, so two threads never both hold it.
    unsafe impl RawLock for StdLock {
        fn lock(&self, timeout_ms: u32) -> bool {
            let (mut g, free) = self.wait_until(self.state(), timeout_ms, |s| !s.held);
            if free {
                g.held = true;
            }
            free
        }

        fn unlock(&self) {
            let mut g = self.state();
            g.held = false;
            g.releases = g.releases.wrapping_add(1);
            drop(g);
            self.changed.notify_all();
        }

        fn millis(&self) -> u32 {
            // A wrapping counter by definition: keep the low 32 bits.
            (self.epoch.elapsed().as_millis() & u128::from(u32::MAX)) as u32
        }

        fn pause(&self, ms: u32) -> bool {
            let g = self.state();
            let seen = g.releases;
            let _ = self.wait_until(g, ms, |s| s.releases != seen);
            true
        }
    }
}

/// Settings of a [`Shared`] handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedConfig {
    /// How long a call waits for the lock, and a write for another owner's detached
    /// transaction, before failing ([`Error::Timeout`], [`Error::Busy`]). Per call:
    /// [`Shared::within`].
    pub timeout_ms: u32,
    /// A detached transaction open longer than this (in database clock units, see
    /// [`Database::set_clock`]) is stale: any other writer aborts it. `None`: never stale.
    /// Needs a clock: without one the database time stands still and nothing ages.
    pub stale_after: Option<u64>,
    /// Longest sleep between two looks at another owner's detached transaction.
    pub poll_ms: u32,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            timeout_ms: 5_000,
            stale_after: None,
            poll_ms: 10,
        }
    }
}

/// What [`Shared::open_transaction`] reports of the open detached transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnInfo {
    /// The owner given to [`Shared::begin`].
    pub owner: u32,
    /// Database time at begin.
    pub started: u64,
    /// Database time since begin.
    pub age: u64,
    /// Keys written so far.
    pub writes: usize,
    /// Bytes counted against the commit bound so far.
    pub bytes: usize,
}

/// The open detached transaction.
struct Detached {
    owner: u32,
    serial: u64,
    started: u64,
    pending: PendingTxn,
}

/// Everything the lock guards.
struct Inner<D: BlockDevice> {
    db: Database<D>,
    open: Option<Detached>,
    /// Serial of the last detached transaction begun (tokens of older ones are dead).
    serial: u64,
    stale_aborts: u64,
}

impl<D: BlockDevice> Inner<D> {
    fn info(&mut self) -> Option<TxnInfo> {
        let now = self.db.peek_time();
        self.open.as_ref().map(|d| TxnInfo {
            owner: d.owner,
            started: d.started,
            age: now.saturating_sub(d.started),
            writes: d.pending.writes(),
            bytes: d.pending.bytes(),
        })
    }

    /// Abort the open detached transaction if it is stale; returns what it was.
    fn reap(&mut self, stale_after: Option<u64>) -> Option<TxnInfo> {
        let limit = stale_after?;
        let info = self.info()?;
        if info.age <= limit {
            return None;
        }
        self.open = None;
        self.stale_aborts = self.stale_aborts.saturating_add(1);
        Some(info)
    }
}

/// A database handle shared by tasks; see the module documentation for what it guarantees.
///
/// Put it in a `static` (or an `Arc`) and call it from any task. Each call takes the lock for
/// its whole duration, closure included; keep closures short.
pub struct Shared<D: BlockDevice, L: RawLock> {
    lock: L,
    /// Set while a call holds the database: a call from inside one of its closures (on the same
    /// thread, through a recursive lock, or with [`NoLock`]) sees it and is refused. Only read
    /// or written while holding the lock.
    entered: Cell<bool>,
    cfg: SharedConfig,
    inner: UnsafeCell<Inner<D>>,
}

// SAFETY: the handle is the mutex pattern. `inner` and `entered` are touched only through a
// `Held`, which exists only between a successful `lock.lock` and its `unlock` (the RawLock
// contract: one thread at a time, with release/acquire ordering between them), and only when
// `entered` was clear, so at most one `Held`, hence at most one `&mut Inner`, exists at any time
// on any thread. The database thus moves between threads (needs `Database<D>: Send`) but is
// never used by two at once. Closures get `&mut Database` or `&mut Txn` for their call only
// (higher-ranked lifetimes keep them from escaping). `L: Sync` because every thread calls it.
unsafe impl<D: BlockDevice, L: RawLock + Sync> Sync for Shared<D, L> where Database<D>: Send {}

/// Proof of holding the lock; releases it when dropped (panics included).
struct Held<'s, D: BlockDevice, L: RawLock> {
    shared: &'s Shared<D, L>,
}

impl<D: BlockDevice, L: RawLock> Held<'_, D, L> {
    fn inner(&mut self) -> &mut Inner<D> {
        // SAFETY: a `Held` exists only while this thread holds the lock with `entered` set by
        // it (see `Shared::hold`), so no other reference to `inner` exists: other threads wait
        // for the lock, and calls from inside this call's closure are refused by `entered`
        // before they reach this. The result borrows `self` mutably, so this `Held` gives out
        // one at a time.
        unsafe { &mut *self.shared.inner.get() }
    }
}

impl<D: BlockDevice, L: RawLock> Drop for Held<'_, D, L> {
    fn drop(&mut self) {
        self.shared.entered.set(false);
        self.shared.lock.unlock();
    }
}

impl<D: BlockDevice, L: RawLock> Shared<D, L> {
    pub fn new(db: Database<D>, lock: L, cfg: SharedConfig) -> Self {
        Shared {
            lock,
            entered: Cell::new(false),
            cfg,
            inner: UnsafeCell::new(Inner {
                db,
                open: None,
                serial: 0,
                stale_aborts: 0,
            }),
        }
    }

    pub fn config(&self) -> &SharedConfig {
        &self.cfg
    }

    /// The database, without locking: `&mut self` proves no other task can reach it.
    pub fn get_mut(&mut self) -> &mut Database<D> {
        &mut self.inner.get_mut().db
    }

    /// The database back (to close it). An open detached transaction is discarded.
    pub fn into_inner(self) -> Database<D> {
        self.inner.into_inner().db
    }

    /// Calls that wait at most `timeout_ms` instead of the configured timeout.
    pub fn within(&self, timeout_ms: u32) -> Within<'_, D, L> {
        Within {
            shared: self,
            timeout_ms,
        }
    }

    fn dflt(&self) -> Within<'_, D, L> {
        self.within(self.cfg.timeout_ms)
    }

    /// Take the lock within `timeout_ms`.
    fn hold(&self, timeout_ms: u32) -> Result<Held<'_, D, L>> {
        if !self.lock.lock(timeout_ms) {
            return Err(Error::Timeout);
        }
        if self.entered.get() {
            // A call from inside one of this handle's closures: the outer call holds the
            // database. Give back the (recursive) lock and refuse.
            self.lock.unlock();
            return Err(Error::Busy);
        }
        self.entered.set(true);
        Ok(Held { shared: self })
    }

    /// Full access to the database (any call, writes included) with the lock held. A write
    /// access: waits for another owner's detached transaction (see [`Shared::transaction`]).
    pub fn with<R>(&self, f: impl FnOnce(&mut Database<D>) -> Result<R>) -> Result<R> {
        self.dflt().with(f)
    }

    /// Reads of the committed state with the lock held; never waits for a detached
    /// transaction, never sees its writes.
    pub fn read<R>(&self, f: impl FnOnce(&mut Reader<'_, D>) -> Result<R>) -> Result<R> {
        self.dflt().read(f)
    }

    /// Run `f` as one atomic transaction with the lock held ([`Database::transaction`]). While
    /// another owner's detached transaction is open it waits up to the timeout, then fails with
    /// [`Error::Busy`]; a stale one is aborted instead.
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>) -> Result<R> {
        self.dflt().transaction(f)
    }

    /// Open a detached transaction for `owner` (any id that names the task). At most one is
    /// open: another owner's open transaction is waited for up to the timeout, then
    /// [`Error::Busy`], unless it is stale, when it is aborted (and counted in
    /// [`Shared::stale_aborts`]). `owner`'s own open transaction is [`Error::Busy`] at once.
    /// Dropping the token aborts the transaction.
    pub fn begin(&self, owner: u32) -> Result<TxnToken<'_, D, L>> {
        self.dflt().begin(owner)
    }

    /// Run `f` inside the detached transaction: it sees the transaction's writes, and its own
    /// writes join them. All or nothing per call: if `f` fails (a write past the size bound
    /// included: [`Error::TxnTooLarge`]) the transaction is left as it was before the call and
    /// stays usable. [`Error::NotFound`] if the transaction was aborted (as stale).
    ///
    /// Return errors from `f`: an error swallowed inside it may leave that operation's writes
    /// half made (an insert's index entries without the document), which this call keeps.
    pub fn in_txn<R>(
        &self,
        token: &TxnToken<'_, D, L>,
        f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>,
    ) -> Result<R> {
        self.dflt().in_txn(token, f)
    }

    /// Commit the detached transaction atomically. The token is spent once the lock is taken,
    /// whatever the outcome (a failed commit discards, as [`Txn::commit`] does); after
    /// [`Error::Timeout`] it is intact and the commit can be retried. [`Error::NotFound`] if
    /// the transaction was aborted (as stale): none of its writes happened.
    pub fn commit(&self, token: &mut TxnToken<'_, D, L>) -> Result<()> {
        self.dflt().commit(token)
    }

    /// Discard the detached transaction. Returns false if it was gone already (aborted as
    /// stale). The token is spent unless the lock timed out.
    pub fn abort(&self, token: &mut TxnToken<'_, D, L>) -> Result<bool> {
        self.dflt().abort(token)
    }

    /// The open detached transaction, if any: owner, start, age, size.
    pub fn open_transaction(&self) -> Result<Option<TxnInfo>> {
        self.dflt().open_transaction()
    }

    /// Abort the open detached transaction if it is stale; returns what it was.
    pub fn abort_stale(&self) -> Result<Option<TxnInfo>> {
        self.dflt().abort_stale()
    }

    /// Stale detached transactions aborted so far (by other writers or [`Shared::abort_stale`]).
    pub fn stale_aborts(&self) -> Result<u64> {
        self.dflt().stale_aborts()
    }
}

/// The calls of a [`Shared`] handle with their own timeout ([`Shared::within`]).
pub struct Within<'s, D: BlockDevice, L: RawLock> {
    shared: &'s Shared<D, L>,
    timeout_ms: u32,
}

impl<D: BlockDevice, L: RawLock> Clone for Within<'_, D, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: BlockDevice, L: RawLock> Copy for Within<'_, D, L> {}

impl<'s, D: BlockDevice, L: RawLock> Within<'s, D, L> {
    /// Milliseconds left of this call's timeout, counted from `start` (None: over). The counter
    /// must pass the timeout, not just reach it: it may have ticked just after `start` was read,
    /// and reaching it could then cut the wait short by up to a millisecond.
    fn left(&self, start: u32) -> Option<u32> {
        let spent = self.shared.lock.millis().wrapping_sub(start);
        self.timeout_ms.checked_sub(spent)
    }

    /// The lock, for a writer: once no other owner's detached transaction is open (a stale one
    /// is aborted). `owner`: the caller's own transaction is refused at once.
    fn hold_writer(&self, owner: Option<u32>) -> Result<Held<'s, D, L>> {
        let lock = &self.shared.lock;
        let start = lock.millis();
        loop {
            let mut held = self.shared.hold(self.left(start).unwrap_or(0))?;
            let inner = held.inner();
            match &inner.open {
                None => return Ok(held),
                Some(d) if Some(d.owner) == owner => return Err(Error::Busy),
                Some(_) => {
                    if inner.reap(self.shared.cfg.stale_after).is_some() {
                        return Ok(held);
                    }
                }
            }
            drop(held);
            let nap = match self.left(start) {
                Some(left) if self.timeout_ms > 0 => left.clamp(1, self.shared.cfg.poll_ms.max(1)),
                _ => return Err(Error::Busy),
            };
            if !lock.pause(nap) {
                return Err(Error::Busy);
            }
        }
    }

    /// The token must come from this handle and be live.
    fn check(&self, token: &TxnToken<'_, D, L>) -> Result<()> {
        if !core::ptr::eq(token.shared, self.shared) {
            return Err(Error::InvalidArgument);
        }
        if token.spent {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// See [`Shared::with`].
    pub fn with<R>(&self, f: impl FnOnce(&mut Database<D>) -> Result<R>) -> Result<R> {
        let mut held = self.hold_writer(None)?;
        f(&mut held.inner().db)
    }

    /// See [`Shared::read`].
    pub fn read<R>(&self, f: impl FnOnce(&mut Reader<'_, D>) -> Result<R>) -> Result<R> {
        let mut held = self.shared.hold(self.timeout_ms)?;
        f(&mut Reader {
            db: &mut held.inner().db,
        })
    }

    /// See [`Shared::transaction`].
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>) -> Result<R> {
        let mut held = self.hold_writer(None)?;
        held.inner().db.transaction(f)
    }

    /// See [`Shared::begin`].
    pub fn begin(&self, owner: u32) -> Result<TxnToken<'s, D, L>> {
        let mut held = self.hold_writer(Some(owner))?;
        let inner = held.inner();
        // Serials only tell tokens apart; 2^64 begins do not happen.
        inner.serial = inner.serial.wrapping_add(1);
        let serial = inner.serial;
        let started = inner.db.peek_time();
        inner.open = Some(Detached {
            owner,
            serial,
            started,
            pending: PendingTxn::default(),
        });
        Ok(TxnToken {
            shared: self.shared,
            owner,
            serial,
            spent: false,
        })
    }

    /// See [`Shared::in_txn`].
    pub fn in_txn<R>(
        &self,
        token: &TxnToken<'_, D, L>,
        f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>,
    ) -> Result<R> {
        self.check(token)?;
        let mut held = self.shared.hold(self.timeout_ms)?;
        let Inner { db, open, .. } = held.inner();
        let d = match open {
            Some(d) if d.serial == token.serial => d,
            _ => return Err(Error::NotFound),
        };
        // Work on a copy: if `f` fails, the transaction stays as it was (panics included).
        let mut txn = db.resume(d.pending.clone());
        let r = f(&mut txn)?;
        d.pending = txn.suspend();
        Ok(r)
    }

    /// See [`Shared::commit`].
    pub fn commit(&self, token: &mut TxnToken<'_, D, L>) -> Result<()> {
        self.check(token)?;
        let mut held = self.shared.hold(self.timeout_ms)?;
        token.spent = true;
        let inner = held.inner();
        let d = inner
            .open
            .take_if(|d| d.serial == token.serial)
            .ok_or(Error::NotFound)?;
        inner.db.resume(d.pending).commit()
    }

    /// See [`Shared::abort`].
    pub fn abort(&self, token: &mut TxnToken<'_, D, L>) -> Result<bool> {
        self.check(token)?;
        let mut held = self.shared.hold(self.timeout_ms)?;
        token.spent = true;
        let inner = held.inner();
        Ok(inner.open.take_if(|d| d.serial == token.serial).is_some())
    }

    /// See [`Shared::open_transaction`].
    pub fn open_transaction(&self) -> Result<Option<TxnInfo>> {
        Ok(self.shared.hold(self.timeout_ms)?.inner().info())
    }

    /// See [`Shared::abort_stale`].
    pub fn abort_stale(&self) -> Result<Option<TxnInfo>> {
        let stale_after = self.shared.cfg.stale_after;
        Ok(self.shared.hold(self.timeout_ms)?.inner().reap(stale_after))
    }

    /// See [`Shared::stale_aborts`].
    pub fn stale_aborts(&self) -> Result<u64> {
        Ok(self.shared.hold(self.timeout_ms)?.inner().stale_aborts)
    }
}

/// The right to use one detached transaction ([`Shared::begin`]). Dropping it aborts the
/// transaction (if the lock cannot be had within the configured timeout, the transaction stays
/// open until it is stale).
pub struct TxnToken<'s, D: BlockDevice, L: RawLock> {
    shared: &'s Shared<D, L>,
    owner: u32,
    serial: u64,
    /// Committed or aborted through this token (or found gone).
    spent: bool,
}

impl<D: BlockDevice, L: RawLock> TxnToken<'_, D, L> {
    /// The owner given to [`Shared::begin`].
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Whether a commit or abort has used the token up.
    pub fn is_spent(&self) -> bool {
        self.spent
    }
}

impl<D: BlockDevice, L: RawLock> Drop for TxnToken<'_, D, L> {
    fn drop(&mut self) {
        if self.spent {
            return;
        }
        // Best effort: without the lock the transaction waits to be found stale.
        if let Ok(mut held) = self.shared.hold(self.shared.cfg.timeout_ms) {
            let serial = self.serial;
            let _ = held.inner().open.take_if(|d| d.serial == serial);
        }
    }
}

/// The read calls of a database, for [`Shared::read`]: they see the committed state.
pub struct Reader<'a, D: BlockDevice> {
    db: &'a mut Database<D>,
}

impl<D: BlockDevice> Reader<'_, D> {
    pub fn get(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        self.db.get(coll, id)
    }

    pub fn get_json(&mut self, coll: &str, id: u64) -> Result<Option<String>> {
        self.db.get_json(coll, id)
    }

    pub fn count(&mut self, coll: &str) -> Result<u64> {
        self.db.count(coll)
    }

    pub fn collections(&mut self) -> Result<Vec<String>> {
        self.db.collections()
    }

    pub fn namespaces(&mut self) -> Result<Vec<String>> {
        self.db.namespaces()
    }

    pub fn docs(&mut self, coll: &str) -> Result<DocIter<'_, D>> {
        self.db.docs(coll)
    }

    pub fn for_each_doc(
        &mut self,
        coll: &str,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.db.for_each_doc(coll, f)
    }

    pub fn schema(&mut self, coll: &str) -> Result<Option<Value>> {
        self.db.schema(coll)
    }

    pub fn find(
        &mut self,
        coll: &str,
        filter: &Value,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.db.find(coll, filter, opts, f)
    }

    pub fn find_with(
        &mut self,
        coll: &str,
        filter: &Filter,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.db.find_with(coll, filter, opts, f)
    }

    pub fn find_json(&mut self, coll: &str, filter: &str, opts: &str) -> Result<Vec<Value>> {
        self.db.find_json(coll, filter, opts)
    }

    pub fn explain(&mut self, coll: &str, filter: &Value, opts: &FindOptions) -> Result<Value> {
        self.db.explain(coll, filter, opts)
    }

    pub fn count_where(&mut self, coll: &str, filter: &Value) -> Result<u64> {
        self.db.count_where(coll, filter)
    }

    pub fn first(
        &mut self,
        coll: &str,
        filter: &Value,
        opts: &FindOptions,
    ) -> Result<Option<Value>> {
        self.db.first(coll, filter, opts)
    }

    pub fn last(&mut self, coll: &str, filter: &Value) -> Result<Option<Value>> {
        self.db.last(coll, filter)
    }

    pub fn pluck(
        &mut self,
        coll: &str,
        filter: &Value,
        field: &str,
        opts: &FindOptions,
    ) -> Result<Vec<Value>> {
        self.db.pluck(coll, filter, field, opts)
    }

    pub fn distinct(&mut self, coll: &str, filter: &Value, field: &str) -> Result<Vec<Value>> {
        self.db.distinct(coll, filter, field)
    }

    pub fn list_indexes(&mut self, coll: &str) -> Result<Vec<IndexInfo>> {
        self.db.list_indexes(coll)
    }

    pub fn kv_get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.kv_get(ns, key)
    }

    pub fn kv_exists(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.db.kv_exists(ns, key)
    }

    pub fn kv_keys(
        &mut self,
        ns: &str,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.db.kv_keys(ns, prefix, f)
    }

    pub fn stats(&self) -> Stats {
        self.db.stats()
    }

    pub fn config(&self) -> &Config {
        self.db.config()
    }

    pub fn last_violation(&self) -> Option<&Violation> {
        self.db.last_violation()
    }
}
