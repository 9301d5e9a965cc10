//! Integrity and upkeep: a full integrity check, repair (with an open that tolerates a damaged
//! log), compaction one bounded step at a time, and the statistics report as a plain struct.

use super::*;
use cairndb::db::OpStat;

/// What cairn_check() found: counts of what was examined and of problems. Zero problems
/// everywhere (`clean`) is a consistent database.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_check_report_t {
    /// Whether no problem was found (every problem count below is 0).
    pub clean: bool,
    /// Segment files walked.
    pub segments: u32,
    /// Segment pages read.
    pub pages: u32,
    /// Entries in the segments.
    pub entries: u64,
    /// Entries held from the write-ahead log (not yet folded into a segment).
    pub wal_entries: u32,
    /// Problem: pages that failed authentication or do not parse.
    pub bad_pages: u32,
    /// Problem: keys out of order, counts or sequence numbers that disagree with the manifest,
    /// or a page tree that does not lead to its segment's first and last keys.
    pub inconsistencies: u32,
    /// Problem: segment files the manifest lists and the file system does not have.
    pub missing_files: u32,
    /// Collections checked.
    pub collections: u32,
    /// Documents checked.
    pub documents: u64,
    /// Indexes checked.
    pub indexes: u32,
    /// Index entries checked.
    pub index_entries: u64,
    /// Problem: documents whose bytes authenticate but do not decode.
    pub unreadable_documents: u64,
    /// Problem: collections whose stored count or byte total differs from their documents.
    pub count_mismatches: u32,
    /// Problem: index entries a document should have and its index lacks.
    pub missing_index_entries: u64,
    /// Problem: index entries no document produces.
    pub stray_index_entries: u64,
}

/// What cairn_repair() did.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_repair_report_t {
    /// Segment pages that failed authentication and were left out (their entries are lost).
    pub pages_quarantined: u32,
    /// Write-ahead log frames dropped at open because they failed authentication
    /// (cairn_open_for_repair()).
    pub frames_dropped: u32,
    /// Documents that authenticate but do not decode, removed.
    pub documents_removed: u64,
    /// Collections whose document count was corrected.
    pub counts_fixed: u32,
    /// Indexes rebuilt from their documents.
    pub indexes_rebuilt: u32,
    /// Unique indexes dropped because their documents now clash.
    pub indexes_dropped: u32,
}

/// Calls of one operation class since open, and their latency in database time units (the
/// `now_ms` clock's; 0 without a clock).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_op_stat_t {
    /// Calls, failed ones included (calls inside a transaction count one by one).
    pub count: u64,
    /// Sum of their latencies.
    pub total_time: u64,
    /// The longest one.
    pub max_time: u64,
}

/// Everything cairn_statistics() reports, in one plain struct. Counters marked "since open"
/// live in RAM and restart at every open; the rest is persisted or measured at the call.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_statistics_t {
    /// Transactions committed since open.
    pub commits: u64,
    /// Write-ahead log frames written since open.
    pub frames: u64,
    /// Log folds into segment files since open.
    pub folds: u64,
    /// Segment merges since open.
    pub merges: u64,
    /// Root record writes since open.
    pub root_writes: u64,
    /// Live segment files.
    pub segments: u32,
    /// Bytes of committed data held in RAM (not yet folded into a segment).
    pub memtable_bytes: u32,
    /// Total bytes of the live segment files.
    pub segment_bytes: u64,
    /// Erase block size of the volume in bytes.
    pub block_size: u32,
    /// Erase blocks of the volume.
    pub block_count: u32,
    /// Blocks in use, counted by the file system at the call.
    pub used_blocks: u32,
    /// Free blocks (`block_count - used_blocks`).
    pub free_blocks: u32,
    /// Deletions waiting to be reclaimed by compaction, as a percentage of stored entries.
    pub garbage_percent: u32,
    /// Whether the device reports erase counts (the `wear_*` fields are 0 when not; a C
    /// callback device does not report them).
    pub has_wear: bool,
    /// Erase cycles of the least erased block.
    pub wear_min: u32,
    /// Erase cycles of the most erased block.
    pub wear_max: u32,
    /// Blocks counted for wear (the whole device).
    pub wear_blocks: u32,
    /// Mean erase cycles per block.
    pub wear_mean: f64,
    /// Erase cycles of all blocks together.
    pub wear_total: u64,
    /// Inserts since open.
    pub inserts: cairn_op_stat_t,
    /// Document and key-value reads since open.
    pub reads: cairn_op_stat_t,
    /// Replaces, patches, key-value puts and expiry changes since open.
    pub updates: cairn_op_stat_t,
    /// Document and key-value deletes since open (not evictions or sweeps).
    pub deletes: cairn_op_stat_t,
    /// Finds, counts and everything else built on a query, since open.
    pub finds: cairn_op_stat_t,
    /// Commits that wrote something, since open.
    pub commit_ops: cairn_op_stat_t,
    /// Calls of the classes above that returned an error, since open.
    pub failed: u64,
    /// Whether a backup was taken (or restored); the `last_backup_*` fields are 0 when not.
    pub has_last_backup: bool,
    /// ::CAIRN_BACKUP_FULL or ::CAIRN_BACKUP_INCREMENTAL.
    pub last_backup_kind: i32,
    /// The sequence number the last backup covers up to.
    pub last_backup_seq: u64,
    /// Database time when the last backup was written.
    pub last_backup_time: u64,
    /// Expired items physically removed (sweeps and unique-index writes), ever (persisted).
    pub expired_removed: u64,
    /// Integrity checks since open that found problems (each also logged as a
    /// ::CAIRN_EVENT_CORRUPTION event, which persists).
    pub corruption_events: u32,
}

/// Opens the database on `cfg` (as cairn_open()) even when its write-ahead log holds frames
/// that fail authentication: they, and the frames after them, are dropped instead of failing
/// the open (counted by cairn_repair()). Follow with cairn_repair(). Nothing else differs
/// from cairn_open(): a database that needs no repair opens as usual.
///
/// @retval as cairn_open().
///
/// Thread safety: the device must not be in use by another handle.
///
/// # Safety
/// As cairn_open().
#[no_mangle]
pub unsafe extern "C" fn cairn_open_for_repair(
    db: *mut *mut cairn_db_t,
    cfg: *const cairn_config_t,
    key: *const cairn_key_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { open_impl(db, cfg, key, Mode::Repair) }
}

/// Walks the whole database and fills `*report` with every inconsistency found: every segment
/// page authenticated, every document decoded and its index entries looked up, every index
/// entry traced back to its document. A damaged page is counted, not fatal. RAM stays at one
/// scan batch and one document. Writes nothing, except a ::CAIRN_EVENT_CORRUPTION event when
/// it finds a problem.
///
/// @retval CAIRN_OK (whatever was found: see `report->clean`), CAIRN_ERR_NULL (`db`,
///         `report`), CAIRN_ERR_IO, CAIRN_ERR_CORRUPT (a structure the walk needs is
///         unreadable), CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the whole walk (other tasks wait, up
/// to their lock timeout); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `report` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_check(
    db: *mut cairn_db_t,
    report: *mut cairn_check_report_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_check", |d| {
            if report.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let r = d.check().map_err(db_err)?;
            set(
                report,
                cairn_check_report_t {
                    clean: r.is_clean(),
                    segments: r.store.segments,
                    pages: r.store.pages,
                    entries: r.store.entries,
                    wal_entries: r.store.wal_entries,
                    bad_pages: r.store.bad_pages,
                    inconsistencies: r.store.inconsistencies,
                    missing_files: r.store.missing_files,
                    collections: r.collections,
                    documents: r.documents,
                    indexes: r.indexes,
                    index_entries: r.index_entries,
                    unreadable_documents: r.unreadable_documents,
                    count_mismatches: r.count_mismatches,
                    missing_index_entries: r.missing_index_entries,
                    stray_index_entries: r.stray_index_entries,
                },
            );
            Ok(())
        })
    }
}

/// Brings the database back to a consistent state: leaves out segment pages that fail
/// authentication (their entries are lost, and counted), removes documents that do not
/// decode, recounts every collection, rebuilds every index, then compacts. Each step is
/// crash-safe; a cut repair can simply be run again. Breaks the incremental backup chain
/// (take a full backup after it). Logs a ::CAIRN_EVENT_REPAIR event.
///
/// @param report  receives what was done; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT (what
///         repair cannot get past: the catalog itself), CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the whole repair; without a lock,
/// calls on one handle must not overlap.
///
/// # Safety
/// `report` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_repair(
    db: *mut cairn_db_t,
    report: *mut cairn_repair_report_t,
) -> i32 {
    // SAFETY: the documented contract.
    let rc = unsafe {
        with_db(db, "cairn_repair", |d| {
            let r = d.repair().map_err(db_err)?;
            set(
                report,
                cairn_repair_report_t {
                    pages_quarantined: r.pages_quarantined,
                    frames_dropped: r.frames_dropped,
                    documents_removed: r.documents_removed,
                    counts_fixed: r.counts_fixed,
                    indexes_rebuilt: r.indexes_rebuilt,
                    indexes_dropped: r.indexes_dropped,
                },
            );
            Ok(())
        })
    };
    if rc == CAIRN_OK {
        // SAFETY: a live handle (the call succeeded on it).
        unsafe {
            (*db)
                .platform
                .note(CAIRN_LOG_INFO, "cairn_repair", "repaired the database")
        };
    }
    rc
}

/// One bounded step of compaction (one merge of segments), for a background task that calls
/// it until `*more` is false; cairn_compact() does every step at once.
///
/// @param more  receives whether another step would merge more; may be NULL.
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_NO_SPACE, CAIRN_ERR_IO, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the step only, so other tasks' calls
/// run between steps; without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `more` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_compact_step(db: *mut cairn_db_t, more: *mut bool) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_compact_step", |d| {
            set(more, d.compact_step().map_err(db_err)?);
            Ok(())
        })
    }
}

/// Stores the deletions waiting to be reclaimed, as a percentage of stored entries (an
/// estimate: compact when it grows; a full merge runs by itself past a threshold), in
/// `*percent`.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `percent`), CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `percent` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_garbage_percent(db: *mut cairn_db_t, percent: *mut u32) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_garbage_percent", |d| {
            if percent.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            set(percent, u32::from(d.garbage_percent()));
            Ok(())
        })
    }
}

fn op(s: OpStat) -> cairn_op_stat_t {
    cairn_op_stat_t {
        count: s.count,
        total_time: s.total_time,
        max_time: s.max_time,
    }
}

/// Fills `*stats` with the full statistics report: the store's counters, space, wear,
/// operation counters and latencies, the last backup, expired items removed and corruption
/// events. Counting used blocks walks the file system's metadata (reads only).
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`db`, `stats`), CAIRN_ERR_IO, CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_FS, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_statistics(
    db: *mut cairn_db_t,
    stats: *mut cairn_statistics_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_statistics", |d| {
            if stats.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let s = d.statistics().map_err(db_err)?;
            let sat = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
            let w = s.wear.unwrap_or_default();
            let b = s.last_backup;
            set(
                stats,
                cairn_statistics_t {
                    commits: s.stats.store.commits,
                    frames: s.stats.store.frames,
                    folds: s.stats.store.folds,
                    merges: s.stats.store.merges,
                    root_writes: s.stats.store.root_writes,
                    segments: sat(s.stats.segments),
                    memtable_bytes: sat(s.stats.memtable_bytes),
                    segment_bytes: s.stats.segment_bytes,
                    block_size: s.space.block_size,
                    block_count: s.space.block_count,
                    used_blocks: s.space.used_blocks,
                    free_blocks: s.space.free_blocks,
                    garbage_percent: u32::from(d.garbage_percent()),
                    has_wear: s.wear.is_some(),
                    wear_min: w.min,
                    wear_max: w.max,
                    wear_blocks: w.blocks,
                    wear_mean: w.mean,
                    wear_total: w.total,
                    inserts: op(s.ops.inserts),
                    reads: op(s.ops.reads),
                    updates: op(s.ops.updates),
                    deletes: op(s.ops.deletes),
                    finds: op(s.ops.finds),
                    commit_ops: op(s.ops.commits),
                    failed: s.ops.failed,
                    has_last_backup: b.is_some(),
                    last_backup_kind: b.map_or(0, |b| backups::kind_code(b.kind)),
                    last_backup_seq: b.map_or(0, |b| b.end_seq),
                    last_backup_time: b.map_or(0, |b| b.created),
                    expired_removed: s.expired_removed,
                    corruption_events: s.corruption_events,
                },
            );
            Ok(())
        })
    }
}
