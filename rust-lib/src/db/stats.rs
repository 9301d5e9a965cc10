//! Statistics: operation counters and latencies (RAM only, since open), space and wear of the
//! flash, and the store's counters, gathered into one report by [`Database::statistics`].

use super::{Database, Stats, Txn};
use crate::flash::BlockDevice;
use crate::Result;

/// The operation classes counted. Each public transaction call falls in one class; a one-call
/// [`Database`] method is that call plus a [`OpClass::Commit`].
#[derive(Debug, Clone, Copy)]
pub(super) enum OpClass {
    Insert,
    /// `get` and `kv_get`.
    Read,
    /// `replace`, `patch` and `kv_put`.
    Update,
    /// `delete` and `kv_delete`.
    Delete,
    Find,
    /// A commit that wrote something.
    Commit,
}

/// Calls of one class and their latency in database clock units ([`Database::set_clock`];
/// latencies stay 0 without a clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStat {
    /// Calls, failed ones included.
    pub count: u64,
    /// Sum of their latencies.
    pub total_time: u64,
    /// The longest one.
    pub max_time: u64,
}

/// Operation counters, kept in RAM since the database was opened (not persisted: they restart
/// at zero with every open). Calls inside a transaction count one by one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    pub inserts: OpStat,
    /// `get` and `kv_get`.
    pub reads: OpStat,
    /// `replace`, `patch` and `kv_put`.
    pub updates: OpStat,
    /// `delete` and `kv_delete` (not evictions).
    pub deletes: OpStat,
    /// `find` and everything built on it (`first`, `count_where`, `update_many`'s search...).
    pub finds: OpStat,
    /// Commits that wrote something.
    pub commits: OpStat,
    /// Calls of any class above that returned an error.
    pub failed: u64,
}

impl OpStats {
    fn class(&mut self, c: OpClass) -> &mut OpStat {
        match c {
            OpClass::Insert => &mut self.inserts,
            OpClass::Read => &mut self.reads,
            OpClass::Update => &mut self.updates,
            OpClass::Delete => &mut self.deletes,
            OpClass::Find => &mut self.finds,
            OpClass::Commit => &mut self.commits,
        }
    }
}

/// Space of the volume in erase blocks, counted by littlefs at the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    pub block_size: u32,
    pub block_count: u32,
    pub used_blocks: u32,
    pub free_blocks: u32,
}

/// Erase cycles over the device's blocks, as the device reports them
/// ([`BlockDevice::erase_count`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Wear {
    /// The least erased block's cycles.
    pub min: u32,
    /// The most erased block's cycles.
    pub max: u32,
    /// Mean cycles per block.
    pub mean: f64,
    /// Cycles of all blocks together.
    pub total: u64,
    /// Blocks counted (the whole device).
    pub blocks: u32,
}

/// Everything [`Database::statistics`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Statistics {
    /// The store's counters and sizes ([`Database::stats`]).
    pub stats: Stats,
    pub space: Space,
    /// `None` when the device does not count erases.
    pub wear: Option<Wear>,
    pub ops: OpStats,
    /// The last backup taken (or restored), persisted.
    pub last_backup: Option<super::LastBackup>,
    /// Expired items physically removed (sweeps and unique-index writes), persisted.
    pub expired_removed: u64,
    /// Integrity checks since open that found problems (each also logged as an
    /// [`EVENT_CORRUPTION`](super::EVENT_CORRUPTION) event, which persists).
    pub corruption_events: u32,
}

impl<D: BlockDevice> Database<D> {
    /// Read the clock at the start of a counted call (None without a clock).
    pub(super) fn op_start(&mut self) -> Option<u64> {
        self.clock.reading()
    }

    /// Count a call of `class` that started at `t0`.
    pub(super) fn op_end(&mut self, class: OpClass, t0: Option<u64>, failed: bool) {
        let dt = match (t0, self.clock.reading()) {
            (Some(t0), Some(t1)) => t1.saturating_sub(t0),
            _ => 0,
        };
        let s = self.ops.class(class);
        s.count = s.count.saturating_add(1);
        s.total_time = s.total_time.saturating_add(dt);
        s.max_time = s.max_time.max(dt);
        if failed {
            self.ops.failed = self.ops.failed.saturating_add(1);
        }
    }

    /// Operation counters since open (see [`OpStats`]).
    pub fn op_stats(&self) -> OpStats {
        self.ops
    }

    /// Space of the volume. Counting used blocks walks littlefs's metadata (reads, no writes).
    pub fn space(&mut self) -> Result<Space> {
        let g = self.store.device().geometry();
        let used = self.store.fs().used_blocks()?.min(g.block_count);
        Ok(Space {
            block_size: g.block_size,
            block_count: g.block_count,
            used_blocks: used,
            free_blocks: g.block_count - used,
        })
    }

    /// Erase wear over all blocks, or `None` when the device does not count erases. Streams
    /// over the blocks (no RAM per block).
    pub fn wear(&self) -> Option<Wear> {
        let dev = self.store.device();
        let blocks = dev.geometry().block_count;
        let (mut min, mut max, mut total) = (u32::MAX, 0u32, 0u64);
        for b in 0..blocks {
            let c = dev.erase_count(b)?;
            min = min.min(c);
            max = max.max(c);
            total = total.saturating_add(u64::from(c));
        }
        if blocks == 0 {
            return None;
        }
        Some(Wear {
            min,
            max,
            mean: total as f64 / f64::from(blocks),
            total,
            blocks,
        })
    }

    /// The full statistics report: store counters, space, wear and operation counters.
    pub fn statistics(&mut self) -> Result<Statistics> {
        Ok(Statistics {
            stats: self.stats(),
            space: self.space()?,
            wear: self.wear(),
            ops: self.ops,
            last_backup: self.last_backup()?,
            expired_removed: self.expired_removed()?,
            corruption_events: self.corruption_events,
        })
    }
}

impl<D: BlockDevice> Txn<'_, D> {
    /// Run one public call of `class` as a unit, counting and timing it. A call that fails
    /// leaves the transaction exactly as it was before the call (its partial writes, such as
    /// index entries of a document that then did not fit, are undone), so a caller may handle
    /// the error and still commit. The write set is bounded by one commit, so the copy is small.
    pub(super) fn timed<R>(
        &mut self,
        class: OpClass,
        f: impl FnOnce(&mut Self) -> Result<R>,
    ) -> Result<R> {
        let t0 = self.db.op_start();
        if self.now.is_none() {
            self.first_reading = t0;
        }
        let saved = self.savepoint();
        let r = f(self);
        self.first_reading = None;
        if r.is_err() {
            self.rollback_to(saved);
        }
        self.db.op_end(class, t0, r.is_err());
        r
    }
}
