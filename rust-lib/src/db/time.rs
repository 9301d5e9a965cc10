//! Database time: a clock that never goes backwards, across reboots too, with or without a
//! real-time clock.
//!
//! The platform gives a monotonic counter (uptime milliseconds, say) that may restart at every
//! boot. Database time is `floor + (reading - base)`, where `floor` is where the database time
//! stood when the counter was first read (`base`). A high-water mark `M` is persisted so that
//! every time ever issued is `< M + step`: a transaction that would issue a time at or past
//! `M + step` writes the new mark (that time) in its own commit. At open, `floor = M + step`,
//! which is above every time issued before the reboot. `set_time` (wall time learned later)
//! moves the time forward, never back. docs/DESIGN.md "Time" states the invariant.

use super::{Database, Txn};
use crate::engine::WriteSet;
use crate::flash::BlockDevice;
use crate::format;
use crate::Result;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// The platform counter.
pub(super) type Source = Box<dyn FnMut() -> u64 + Send>;

/// The time state of an open database.
pub(super) struct Clock {
    source: Option<Source>,
    /// Database time at the reading `base`.
    floor: u64,
    /// The counter reading that corresponds to `floor` (None: not read since it was set).
    base: Option<u64>,
    /// The highest time handed out in this session.
    last: u64,
    /// The persisted high-water mark (None: never written).
    mark: Option<u64>,
    /// The slack the mark allows (at least 1).
    step: u64,
}

impl Clock {
    /// The clock of a database whose persisted mark is `mark`: it starts past every time
    /// issued before.
    pub(super) fn new(mark: Option<u64>, step: u64) -> Self {
        let step = step.max(1);
        let floor = mark.map_or(0, |m| m.saturating_add(step));
        Clock {
            source: None,
            floor,
            base: None,
            last: floor,
            mark,
            step,
        }
    }

    pub(super) fn set_source(&mut self, source: Source) {
        self.source = Some(source);
        self.base = None;
    }

    /// The current database time (never lower than any earlier result).
    pub(super) fn read(&mut self) -> u64 {
        let Some(src) = self.source.as_mut() else {
            return self.last;
        };
        let c = src();
        let base = match self.base {
            // The first reading of a new counter is also a lower bound: a counter that is a
            // real-time clock sets the time at once, an uptime counter changes nothing.
            None => {
                self.floor = self.last.max(c);
                c
            }
            // A counter that went backwards without a reopen: count on from where we are.
            Some(b) if c < b => {
                self.floor = self.last;
                c
            }
            Some(b) => b,
        };
        self.base = Some(base);
        let t = self.floor.saturating_add(c.saturating_sub(base));
        self.last = self.last.max(t);
        self.last
    }

    /// The database time if there is a platform counter (operation timing reads it).
    pub(super) fn reading(&mut self) -> Option<u64> {
        if self.source.is_some() {
            Some(self.read())
        } else {
            None
        }
    }

    /// Move the time forward to `wall` if it is ahead; never backwards.
    pub(super) fn set_time(&mut self, wall: u64) {
        let now = self.read();
        if wall > now {
            self.floor = wall;
            self.last = wall;
            // Time counts on from this moment: re-base on the reading that gave `now`, not on
            // an earlier one, or the time elapsed since that one would be added to `wall`.
            if let (Some(src), Some(_)) = (self.source.as_mut(), self.base) {
                self.base = Some(src());
            }
        }
    }

    /// Whether issuing time `t` needs a new mark written with it.
    pub(super) fn needs_mark(&self, t: u64) -> bool {
        self.mark.is_none_or(|m| t >= m.saturating_add(self.step))
    }

    /// The persisted mark changed under the clock (a restore): judge from it from now on.
    pub(super) fn set_persisted(&mut self, mark: Option<u64>) {
        self.mark = mark;
    }

    /// A commit carrying mark `m` succeeded.
    pub(super) fn marked(&mut self, m: u64) {
        self.mark = Some(self.mark.map_or(m, |old| old.max(m)));
    }
}

/// The catalog key of the time mark.
pub(super) fn mark_key() -> Vec<u8> {
    format::catalog_key(format::CAT_TIME, &[])
}

/// Read the persisted mark.
pub(super) fn load_mark(raw: Option<&[u8]>) -> Result<Option<u64>> {
    raw.map(|v| {
        let mut r = format::Reader::new(v);
        let m = r.varint()?;
        if !r.is_empty() {
            return Err(crate::Error::Corrupt);
        }
        Ok(m)
    })
    .transpose()
}

impl<D: BlockDevice> Database<D> {
    /// Set the platform clock: a monotonic counter (milliseconds suggested) that may restart
    /// at each boot, such as uptime. Database time advances with it from where it stood (its
    /// first reading also moves the time forward to it if it is ahead, so a real-time clock
    /// works too). Without a clock the time stands still between reboots and moves forward by
    /// `Config::time_step` at each reopen that follows issued times.
    pub fn set_clock(&mut self, clock: Box<dyn FnMut() -> u64 + Send>) {
        self.clock.set_source(clock);
    }

    /// Move database time forward to `wall` (wall time learned later, e.g. from the network)
    /// if it is ahead. Time never goes backwards: a `wall` behind the database time is
    /// ignored, and times already stamped are never changed.
    pub fn set_time(&mut self, wall: u64) {
        self.clock.set_time(wall);
    }

    /// The current database time (`_ts` stamps, expiry). Never lower than any time issued
    /// before, in this session or an earlier one. May commit the time mark (at most once per
    /// `Config::time_step` of database time, so once after each reopen).
    pub fn now(&mut self) -> Result<u64> {
        self.read_txn(|t| t.now())
    }

    /// The current database time for measuring ages (stale transactions), without issuing it:
    /// nothing is stamped with it, so no mark is needed and nothing is written.
    pub(crate) fn peek_time(&mut self) -> u64 {
        self.clock.read()
    }

    /// Run a read-only operation; commit only the time mark it may have set. A full flash
    /// does not fail a read: the mark then waits for a later commit (see docs/DESIGN.md).
    pub(super) fn read_txn<R>(
        &mut self,
        f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>,
    ) -> Result<R> {
        let mut t = self.begin();
        match f(&mut t) {
            Ok(r) => match t.commit() {
                Ok(()) | Err(crate::Error::NoSpace) => Ok(r),
                Err(e) => Err(e),
            },
            Err(e) => {
                t.keep_time();
                Err(e)
            }
        }
    }
}

impl<D: BlockDevice> Txn<'_, D> {
    /// This transaction's time: read once, at first use, then fixed. If it reaches past the
    /// persisted mark, the new mark joins this transaction's writes.
    pub fn now(&mut self) -> Result<u64> {
        if let Some(t) = self.now {
            return Ok(t);
        }
        let t = match self.first_reading.take() {
            Some(t) => t,
            None => self.db.clock.read(),
        };
        if self.db.clock.needs_mark(t) {
            let mut v = Vec::with_capacity(10);
            format::put_varint(&mut v, t);
            self.write(mark_key(), Some(v))?;
            self.mark = Some(t);
        }
        self.now = Some(t);
        Ok(t)
    }

    /// Whether an item with expiry `exp` is expired at this transaction's time (reads the time
    /// only for items that have an expiry).
    pub(super) fn expired(&mut self, exp: Option<u64>) -> Result<bool> {
        match exp {
            None => Ok(false),
            Some(e) => Ok(e <= self.now()?),
        }
    }

    /// A transaction that failed after reading the time: commit the mark alone (best effort),
    /// so the times its reads used are still covered after a reboot.
    pub(super) fn keep_time(self) {
        if let Some(m) = self.mark {
            let mut ws = WriteSet::new();
            let mut v = Vec::with_capacity(10);
            format::put_varint(&mut v, m);
            ws.insert(mark_key(), Some(v));
            if self.db.store.commit(ws).is_ok() {
                self.db.clock.marked(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A settable counter the database can hold as its (Send) clock.
    #[derive(Clone, Default)]
    struct Cell(alloc::sync::Arc<core::sync::atomic::AtomicU64>);

    impl Cell {
        fn new(v: u64) -> Self {
            Cell(alloc::sync::Arc::new(core::sync::atomic::AtomicU64::new(v)))
        }
        fn get(&self) -> u64 {
            self.0.load(core::sync::atomic::Ordering::SeqCst)
        }
        fn set(&self, v: u64) {
            self.0.store(v, core::sync::atomic::Ordering::SeqCst)
        }
    }

    fn counter(c: &Cell) -> Source {
        let c = c.clone();
        Box::new(move || c.get())
    }

    #[test]
    fn set_time_counts_on_from_the_moment_it_is_set() {
        let c = Cell::new(1_000_000);
        let mut k = Clock::new(None, 60);
        let src = c.clone();
        k.set_source(Box::new(move || src.get()));
        assert_eq!(k.read(), 1_000_000);
        c.set(1_000_500);
        k.set_time(2_000_000);
        assert_eq!(k.read(), 2_000_000);
        c.set(1_000_700);
        assert_eq!(k.read(), 2_000_200);
    }

    #[test]
    fn time_is_floor_plus_elapsed_and_never_goes_back() {
        let c = Cell::new(500);
        let mut k = Clock::new(Some(1_000), 60);
        assert_eq!(k.read(), 1_060);
        k.set_source(counter(&c));
        // An uptime reading below the floor changes nothing.
        assert_eq!(k.read(), 1_060);
        c.set(530);
        assert_eq!(k.read(), 1_090);
        // A counter that restarts without a reopen: time holds, then advances again.
        c.set(10);
        assert_eq!(k.read(), 1_090);
        c.set(15);
        assert_eq!(k.read(), 1_095);
    }

    #[test]
    fn a_first_reading_ahead_sets_the_time_and_set_time_only_moves_forward() {
        let c = Cell::new(1_700_000);
        let mut k = Clock::new(None, 60);
        assert_eq!(k.read(), 0);
        k.set_source(counter(&c));
        assert_eq!(k.read(), 1_700_000);
        k.set_time(5);
        assert_eq!(k.read(), 1_700_000);
        k.set_time(2_000_000);
        assert_eq!(k.read(), 2_000_000);
        c.set(1_700_010);
        assert_eq!(k.read(), 2_000_010);
        let mut none = Clock::new(Some(7), 3);
        none.set_time(100);
        assert_eq!(none.read(), 100);
        none.set_time(50);
        assert_eq!(none.read(), 100);
    }

    #[test]
    fn the_mark_is_needed_once_per_step() {
        let mut k = Clock::new(None, 10);
        assert!(k.needs_mark(0));
        k.marked(0);
        assert!(!k.needs_mark(9));
        assert!(k.needs_mark(10));
        k.marked(10);
        k.marked(4);
        assert!(!k.needs_mark(19));
        assert_eq!(Clock::new(Some(10), 10).read(), 20);
        // A zero step is one.
        let k = Clock::new(Some(5), 0);
        assert!(!k.needs_mark(5));
        assert!(k.needs_mark(6));
    }
}
