//! Backups: full and incremental backup streams written to a writer callback (a file, a UART,
//! a socket) or to a raw partition of a second flash device, verified, and restored from a
//! chain (a full backup and the incrementals after it) atomically.
//!
//! A stream is sealed chunk by chunk under the database key, a separate raw backup key, a
//! passphrase, or (a plain database with no backup key) CRC-32C checksums; tampering,
//! truncation and reordering are detected (::CAIRN_ERR_BAD_BACKUP, ::CAIRN_ERR_BACKUP_CHAIN).
//! RAM is one chunk (2 KiB) and a record, whatever the size of the database.

use super::*;
use cairndb::backup::{
    BackupInfo, BackupKind, BackupSink, BackupSource, DeviceSink, DeviceSource, KeyMode,
};
use cairndb::db::BackupKeySpec;

/// Appends `len` bytes at `data` to the stream. Returns 0, or an error: a negative value stops
/// the backup and is returned unchanged by the backup call; a positive one becomes
/// ::CAIRN_ERR_IO.
pub type cairn_stream_write_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> i32>;
/// Reads up to `cap` bytes of the stream into `buf` and stores how many in `*len` (0 only at
/// the end of the stream). Returns 0, or an error as for ::cairn_stream_write_fn.
pub type cairn_stream_read_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, cap: usize, len: *mut usize) -> i32,
>;

/// Where a backup stream goes or comes from: a callback, or a raw partition of a flash device.
///
/// - A callback stream sets `write` (cairn_backup_full(), cairn_backup_incremental()) or `read`
///   (cairn_backup_verify(), cairn_restore()) and `ctx`; `device` stays NULL. A written stream
///   is complete when the backup call returns CAIRN_OK: make it durable then (`fflush`,
///   `fsync`); after an error, discard what was written.
/// - A partition stream sets `device` (a config whose device fields, `ctx` to `block_count`,
///   describe the flash: cairn_ram_device_config(), cairn_file_device_config() or the
///   firmware's driver) and the partition, `block_count` blocks from `first_block`; `write`
///   and `read` stay NULL. Writing erases each block just before programming it and syncs at
///   the end; the stream ends at its trailer, so the partition needs no length. It must not
///   overlap the volume of an open database.
///
/// Only read during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_stream_t {
    /// Writer callback (backups), or NULL.
    pub write: cairn_stream_write_fn,
    /// Reader callback (verify, restore), or NULL.
    pub read: cairn_stream_read_fn,
    /// Passed unchanged to `write` and `read`.
    pub ctx: *mut c_void,
    /// A flash device holding the stream on a partition, or NULL.
    pub device: *const cairn_config_t,
    /// First block of the partition on `device`.
    pub first_block: u32,
    /// Blocks of the partition.
    pub block_count: u32,
}

/// The key of a backup stream. A NULL pointer, or a zeroed struct, means the database's own
/// key (for a plain database: a plain, checksummed stream). Setting both `raw` and
/// `passphrase` is ::CAIRN_ERR_INVALID_ARGUMENT. Only read during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_backup_key_t {
    /// A separate raw backup key of ::CAIRN_KEY_LEN bytes, or NULL.
    pub raw: *const u8,
    /// A passphrase (need not be NUL-terminated), or NULL.
    pub passphrase: *const u8,
    /// Length of `passphrase` in bytes (nonzero when it is set).
    pub passphrase_len: usize,
    /// 16 bytes of PBKDF2 salt for writing a passphrase stream; NULL: 16 bytes from the
    /// config's `random` (::CAIRN_ERR_INVALID_ARGUMENT without one). Reading takes the salt
    /// from the stream and ignores this.
    pub salt: *const u8,
    /// PBKDF2 iterations when writing; when reading, the most the reader will spend (a stream
    /// asking for more is ::CAIRN_ERR_BAD_BACKUP). 0: ::CAIRN_DEFAULT_KDF_ITERATIONS.
    pub iterations: u32,
}

/// Kind of a backup: every live record.
pub const CAIRN_BACKUP_FULL: i32 = 0;
/// Kind of a backup: every change (deletions included) since its parent backup.
pub const CAIRN_BACKUP_INCREMENTAL: i32 = 1;
/// Protection of a stream: CRC-32C checksums only (detects damage, not deliberate change).
pub const CAIRN_BACKUP_PLAIN: i32 = 0;
/// Protection of a stream: encrypted and authenticated under a raw key (the database's own or
/// a separate backup key).
pub const CAIRN_BACKUP_KEYED: i32 = 1;
/// Protection of a stream: encrypted and authenticated under a passphrase (PBKDF2).
pub const CAIRN_BACKUP_PASSPHRASE: i32 = 2;
/// Length of database and backup identities in bytes.
pub const CAIRN_BACKUP_ID_LEN: usize = 16;

/// What a backup stream holds (cairn_backup_full(), cairn_backup_incremental(),
/// cairn_backup_verify()).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_backup_info_t {
    /// ::CAIRN_BACKUP_FULL or ::CAIRN_BACKUP_INCREMENTAL.
    pub kind: i32,
    /// ::CAIRN_BACKUP_PLAIN, ::CAIRN_BACKUP_KEYED or ::CAIRN_BACKUP_PASSPHRASE.
    pub key_mode: i32,
    /// Records in the stream.
    pub records: u64,
    /// Length of the stream in bytes.
    pub stream_len: u64,
    /// The sequence number the backup covers the database up to.
    pub end_seq: u64,
    /// The parent's `end_seq` (0 for a full backup).
    pub base_seq: u64,
    /// Database time when it was written.
    pub created: u64,
    /// The database's identity (the same in every backup of one database).
    pub db_id: [u8; CAIRN_BACKUP_ID_LEN],
    /// This backup's identity.
    pub backup_id: [u8; CAIRN_BACKUP_ID_LEN],
    /// The parent's identity (zero for a full backup).
    pub parent_id: [u8; CAIRN_BACKUP_ID_LEN],
}

/// The last backup this database took or was restored from (cairn_last_backup()).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_last_backup_t {
    /// ::CAIRN_BACKUP_FULL or ::CAIRN_BACKUP_INCREMENTAL.
    pub kind: i32,
    /// The sequence number it covers up to: the next incremental continues from here.
    pub end_seq: u64,
    /// Database time when it was written.
    pub created: u64,
    /// Its identity.
    pub backup_id: [u8; CAIRN_BACKUP_ID_LEN],
}

/// What cairn_restore() applied.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_restore_report_t {
    /// Streams applied (the full backup and its incrementals).
    pub streams: u32,
    /// Records applied.
    pub records: u64,
    /// The sequence number the database now stands at.
    pub end_seq: u64,
}

pub(crate) fn kind_code(k: BackupKind) -> i32 {
    match k {
        BackupKind::Full => CAIRN_BACKUP_FULL,
        BackupKind::Incremental => CAIRN_BACKUP_INCREMENTAL,
    }
}

fn info_of(i: &BackupInfo) -> cairn_backup_info_t {
    let h = &i.header;
    cairn_backup_info_t {
        kind: kind_code(h.kind),
        key_mode: match h.key_mode {
            KeyMode::Plain => CAIRN_BACKUP_PLAIN,
            KeyMode::Key => CAIRN_BACKUP_KEYED,
            KeyMode::Passphrase { .. } => CAIRN_BACKUP_PASSPHRASE,
        },
        records: i.records,
        stream_len: i.stream_len,
        end_seq: h.end_seq,
        base_seq: h.base_seq,
        created: h.created,
        db_id: h.db_id,
        backup_id: h.backup_id,
        parent_id: h.parent_id,
    }
}

/// A backup key read from C.
enum BKey<'a> {
    Database,
    Raw(&'a [u8; 32]),
    Pass {
        pass: &'a [u8],
        salt: Option<[u8; 16]>,
        iterations: u32,
    },
}

impl<'a> BKey<'a> {
    /// # Safety
    /// `k` is NULL or a valid key whose pointers outlive `'a`.
    unsafe fn read(k: *const cairn_backup_key_t) -> R<BKey<'a>> {
        // SAFETY: the caller's contract.
        let Some(k) = (unsafe { k.as_ref() }) else {
            return Ok(BKey::Database);
        };
        match (k.raw.is_null(), k.passphrase.is_null()) {
            (true, true) => Ok(BKey::Database),
            // SAFETY: the contract of `raw`: CAIRN_KEY_LEN readable bytes.
            (false, true) => Ok(BKey::Raw(unsafe { &*k.raw.cast::<[u8; 32]>() })),
            (true, false) => {
                if k.passphrase_len == 0 {
                    return Err(CAIRN_ERR_INVALID_ARGUMENT);
                }
                Ok(BKey::Pass {
                    // SAFETY: the contract of `passphrase`.
                    pass: unsafe { bytes(k.passphrase.cast(), k.passphrase_len)? },
                    // SAFETY: the contract of `salt`: 16 readable bytes when set.
                    salt: unsafe { k.salt.cast::<[u8; 16]>().as_ref() }.copied(),
                    iterations: match k.iterations {
                        0 => CAIRN_DEFAULT_KDF_ITERATIONS,
                        n => n,
                    },
                })
            }
            (false, false) => Err(CAIRN_ERR_INVALID_ARGUMENT),
        }
    }

    /// The core's key spec; a passphrase without a salt takes one from `platform` when
    /// `writing` (reading ignores the salt).
    fn spec(&self, platform: Option<&Platform>, writing: bool) -> R<BackupKeySpec<'a>> {
        Ok(match *self {
            BKey::Database => BackupKeySpec::Database,
            BKey::Raw(k) => BackupKeySpec::Raw(k),
            BKey::Pass {
                pass,
                salt,
                iterations,
            } => BackupKeySpec::Passphrase {
                pass,
                salt: match (salt, writing) {
                    (Some(s), _) => s,
                    (None, true) => platform.ok_or(CAIRN_ERR_NULL)?.salt()?,
                    (None, false) => [0; 16],
                },
                iterations,
            },
        })
    }
}

/// The flash device a partition stream names.
///
/// # Safety
/// `cfg` is a valid config whose device callbacks and `ctx` are usable for the call.
unsafe fn partition_device(cfg: *const cairn_config_t) -> R<CallbackDevice> {
    // SAFETY: the caller's contract.
    let c = unsafe { cairn_config_t::read(cfg)? };
    let callbacks = FlashCallbacks {
        ctx: c.ctx,
        read: c.read,
        prog: c.prog,
        erase: c.erase,
        sync: c.sync,
        read_size: c.read_size,
        prog_size: c.prog_size,
        block_size: c.block_size,
        block_count: c.block_count,
    };
    // SAFETY: the caller's contract; the device lives only for the call.
    unsafe { CallbackDevice::new(callbacks) }.ok_or(CAIRN_ERR_INVALID_ARGUMENT)
}

/// A C code reported by a callback, kept while the core sees an I/O error.
fn callback_code(rc: i32) -> i32 {
    if rc < 0 {
        rc
    } else {
        CAIRN_ERR_IO
    }
}

/// Where a backup goes: the caller's writer or a partition.
enum Sink {
    Writer {
        f: unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32,
        ctx: *mut c_void,
        code: Option<i32>,
    },
    Partition(DeviceSink<CallbackDevice>),
}

impl Sink {
    /// # Safety
    /// `s` is NULL or a valid stream (as documented for ::cairn_stream_t).
    unsafe fn of(s: *const cairn_stream_t) -> R<Sink> {
        // SAFETY: the caller's contract.
        let s = unsafe { s.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
        if s.device.is_null() {
            let f = s.write.ok_or(CAIRN_ERR_NULL)?;
            return Ok(Sink::Writer {
                f,
                ctx: s.ctx,
                code: None,
            });
        }
        if s.write.is_some() || s.read.is_some() {
            return Err(CAIRN_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller's contract.
        let dev = unsafe { partition_device(s.device)? };
        let sink = DeviceSink::new(dev, s.first_block, s.block_count).map_err(db_err)?;
        Ok(Sink::Partition(sink))
    }

    /// The C code for the core's error `e`: the writer's own when it failed.
    fn code(&self, e: Error) -> i32 {
        match self {
            Sink::Writer { code: Some(c), .. } => *c,
            _ => db_err(e),
        }
    }
}

impl BackupSink for Sink {
    fn write(&mut self, data: &[u8]) -> cairndb::Result<()> {
        match self {
            Sink::Writer { f, ctx, code } => {
                if data.is_empty() {
                    return Ok(());
                }
                // SAFETY: the writer's contract; `data` is valid for its length.
                match unsafe { f(*ctx, data.as_ptr(), data.len()) } {
                    0 => Ok(()),
                    rc => {
                        *code = Some(callback_code(rc));
                        Err(Error::Io)
                    }
                }
            }
            Sink::Partition(p) => p.write(data),
        }
    }

    fn flush(&mut self) -> cairndb::Result<()> {
        match self {
            Sink::Writer { .. } => Ok(()),
            Sink::Partition(p) => p.flush(),
        }
    }
}

/// Where a backup comes from: the caller's reader or a partition.
enum Source {
    Reader {
        f: unsafe extern "C" fn(*mut c_void, *mut u8, usize, *mut usize) -> i32,
        ctx: *mut c_void,
        code: Option<i32>,
    },
    Partition(DeviceSource<CallbackDevice>),
}

impl Source {
    /// # Safety
    /// `s` is NULL or a valid stream (as documented for ::cairn_stream_t).
    unsafe fn of(s: *const cairn_stream_t) -> R<Source> {
        // SAFETY: the caller's contract.
        let s = unsafe { s.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
        if s.device.is_null() {
            let f = s.read.ok_or(CAIRN_ERR_NULL)?;
            return Ok(Source::Reader {
                f,
                ctx: s.ctx,
                code: None,
            });
        }
        if s.write.is_some() || s.read.is_some() {
            return Err(CAIRN_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller's contract.
        let dev = unsafe { partition_device(s.device)? };
        let src = DeviceSource::new(dev, s.first_block, s.block_count).map_err(db_err)?;
        Ok(Source::Partition(src))
    }

    /// The reader's own code if it failed.
    fn code(&self) -> Option<i32> {
        match self {
            Source::Reader { code, .. } => *code,
            Source::Partition(_) => None,
        }
    }
}

impl BackupSource for Source {
    fn read(&mut self, buf: &mut [u8]) -> cairndb::Result<usize> {
        match self {
            Source::Reader { f, ctx, code } => {
                let mut n = 0usize;
                // SAFETY: the reader's contract; `buf` is valid for its length.
                let rc = unsafe { f(*ctx, buf.as_mut_ptr(), buf.len(), &mut n) };
                if rc != 0 {
                    *code = Some(callback_code(rc));
                    return Err(Error::Io);
                }
                if n > buf.len() {
                    // A reader claiming more than it was given room for.
                    *code = Some(CAIRN_ERR_IO);
                    return Err(Error::Io);
                }
                Ok(n)
            }
            Source::Partition(p) => p.read(buf),
        }
    }
}

/// A full or incremental backup of the database behind `db`.
///
/// # Safety
/// The contract of cairn_backup_full().
unsafe fn backup(
    db: *mut cairn_db_t,
    func: &str,
    incremental: bool,
    key: *const cairn_backup_key_t,
    to: *const cairn_stream_t,
    info: *mut cairn_backup_info_t,
) -> i32 {
    // SAFETY: the documented contract.
    let platform = unsafe { db.as_ref() }.map(|h| h.platform);
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, func, |d| {
            let k = BKey::read(key)?;
            let spec = k.spec(platform.as_ref(), true)?;
            let mut sink = Sink::of(to)?;
            let r = match incremental {
                false => d.backup_full(&mut sink, &spec),
                true => d.backup_incremental(&mut sink, &spec),
            };
            let i = r.map_err(|e| sink.code(e))?;
            set(info, info_of(&i));
            Ok(())
        })
    }
}

/// Writes a full backup (every live record, one consistent state) to `to`, and makes it the
/// base of the next cairn_backup_incremental(). Logs a ::CAIRN_EVENT_BACKUP event.
///
/// @param key   NULL: the database's key; else a separate raw key or a passphrase.
/// @param to    a writer callback or a partition (::cairn_stream_t).
/// @param info  receives what the stream holds; may be NULL.
/// @retval CAIRN_OK; a negative value returned by the writer (the backup stopped: discard
///         what was written); CAIRN_ERR_IO (the writer returned a positive value, or the
///         partition's flash failed); CAIRN_ERR_NO_SPACE (the partition is too small, or the
///         database's flash is full); CAIRN_ERR_NULL (`db`, `to`, its callback);
///         CAIRN_ERR_INVALID_ARGUMENT (a stream with both a callback and a device, a partition
///         off its device or an unusable device config, a key with both `raw` and
///         `passphrase`, a passphrase without salt or `random`); CAIRN_ERR_CORRUPT,
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. A failed backup leaves the
///         last backup as it was (the next incremental still continues it). The writer's own
///         calls into `db` get CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the whole backup (other tasks wait,
/// up to their lock timeout); the writer runs on the calling task. Without a lock, calls on
/// one handle must not overlap.
///
/// # Safety
/// `key` NULL or valid; `to` valid, its callbacks and device usable for the call; `info` NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_backup_full(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    to: *const cairn_stream_t,
    info: *mut cairn_backup_info_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { backup(db, "cairn_backup_full", false, key, to, info) }
}

/// Writes an incremental backup to `to`: every change (deletions included) since the last
/// backup this database took, full or incremental. Restore it after that one
/// (cairn_restore()). Logs a ::CAIRN_EVENT_BACKUP event.
///
/// @retval as cairn_backup_full(), plus CAIRN_ERR_BACKUP_CHAIN: no backup was taken yet, or
///         history since it is no longer complete (a restore or a repair came between): take a
///         full backup.
///
/// Thread safety: as cairn_backup_full().
///
/// # Safety
/// As cairn_backup_full().
#[no_mangle]
pub unsafe extern "C" fn cairn_backup_incremental(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    to: *const cairn_stream_t,
    info: *mut cairn_backup_info_t,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { backup(db, "cairn_backup_incremental", true, key, to, info) }
}

/// Reads a backup stream from `from` to its end and verifies all of it (every chunk
/// authenticated, the trailer's counts checked) without restoring anything.
///
/// @param key   as for writing it (the database's key when NULL).
/// @param from  a reader callback or a partition (::cairn_stream_t).
/// @param info  receives what the stream holds; may be NULL.
/// @retval CAIRN_OK; CAIRN_ERR_BAD_BACKUP (tampered, truncated, not a backup, or a
///         passphrase stream asking for more iterations than `key` allows);
///         CAIRN_ERR_WRONG_KEY; CAIRN_ERR_KEY_MISMATCH (a plain stream read with a key, or the
///         reverse); a negative value returned by the reader; CAIRN_ERR_IO; CAIRN_ERR_NULL;
///         CAIRN_ERR_INVALID_ARGUMENT (as for cairn_backup_full()); CAIRN_ERR_NO_MEMORY;
///         CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL. Nothing is written. The
///         reader's own calls into `db` get CAIRN_ERR_BUSY.
///
/// Thread safety: holds the handle's platform lock for the call (it needs the database's
/// key); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `key` NULL or valid; `from` valid, its callbacks and device usable for the call; `info`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_backup_verify(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    from: *const cairn_stream_t,
    info: *mut cairn_backup_info_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_backup_verify", |d| {
            let spec = BKey::read(key)?.spec(None, false)?;
            let mut src = Source::of(from)?;
            let r = d.verify_backup(&mut src, &spec);
            let i = r.map_err(|e| src.code().unwrap_or(db_err(e)))?;
            set(info, info_of(&i));
            Ok(())
        })
    }
}

/// Replaces the whole database by the state a backup chain describes: `chain[0]` a full
/// backup, each next one an incremental continuing the one before (at most 16 streams).
/// Atomic: every stream is read and verified to its end while the new state is written
/// beside the old one, then one root write switches; a power cut or any error before leaves
/// the database exactly as it was. The restored database continues the chain: its next
/// incremental follows the chain's last backup. Logs a ::CAIRN_EVENT_RESTORE event.
///
/// @param key     the key of every stream of the chain.
/// @param chain   `n` streams (reader callbacks or partitions), in chain order.
/// @param report  receives what was applied; may be NULL.
/// @retval CAIRN_OK; CAIRN_ERR_BACKUP_CHAIN (the first is not a full backup, or one does not
///         continue the one before: reordered, missing, or of another database);
///         CAIRN_ERR_BAD_BACKUP; CAIRN_ERR_WRONG_KEY; CAIRN_ERR_KEY_MISMATCH; a negative value
///         returned by a reader; CAIRN_ERR_IO; CAIRN_ERR_NO_SPACE (the flash cannot hold the
///         old and the new state side by side); CAIRN_ERR_NULL (`db`, `chain`, a stream's
///         callback); CAIRN_ERR_INVALID_ARGUMENT (`n` 0 or above 16, and as for
///         cairn_backup_full()); CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT, CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call; without a lock, calls on one
/// handle must not overlap.
///
/// # Safety
/// `key` NULL or valid; `chain` valid for reads of `n` streams, each as for
/// cairn_backup_verify(); `report` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_restore(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    chain: *const cairn_stream_t,
    n: usize,
    report: *mut cairn_restore_report_t,
) -> i32 {
    // SAFETY: the documented contract.
    let rc = unsafe {
        with_db(db, "cairn_restore", |d| {
            let spec = BKey::read(key)?.spec(None, false)?;
            if chain.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            if n == 0 || n > d.config().store.max_segments {
                return Err(CAIRN_ERR_INVALID_ARGUMENT);
            }
            let mut sources = Vec::with_capacity(n);
            for i in 0..n {
                sources.push(Source::of(chain.add(i))?);
            }
            let r = d.restore(&mut sources, &spec);
            let rep = r.map_err(|e| {
                let user = sources.iter().find_map(Source::code);
                user.unwrap_or(db_err(e))
            })?;
            set(
                report,
                cairn_restore_report_t {
                    streams: rep.streams,
                    records: rep.records,
                    end_seq: rep.end_seq,
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
                .note(CAIRN_LOG_INFO, "cairn_restore", "restored a backup chain")
        };
    }
    rc
}

/// Fills `*last` with the last backup this database took (or was restored from): what the
/// next cairn_backup_incremental() continues.
///
/// @retval CAIRN_OK, CAIRN_ERR_NOT_FOUND (no backup yet), CAIRN_ERR_NULL (`db`, `last`),
///         CAIRN_ERR_CORRUPT, CAIRN_ERR_IO, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call (CAIRN_ERR_TIMEOUT when it
/// is not free in time; see ::cairn_db_t); without a lock, calls on one handle must not overlap.
///
/// # Safety
/// `last` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_last_backup(
    db: *mut cairn_db_t,
    last: *mut cairn_last_backup_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_last_backup", |d| {
            if last.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let b = d
                .last_backup()
                .map_err(db_err)?
                .ok_or(CAIRN_ERR_NOT_FOUND)?;
            set(
                last,
                cairn_last_backup_t {
                    kind: kind_code(b.kind),
                    end_seq: b.end_seq,
                    created: b.created,
                    backup_id: b.backup_id,
                },
            );
            Ok(())
        })
    }
}

/// A backup ring (cairn_ring_backup()): `block_count` blocks from `first_block` of `device`,
/// split into two chain areas of `slots` slots (2 to ::CAIRN_RING_MAX_SLOTS). Each chain is a
/// full backup followed by incrementals; a new full backup always goes to the area not in use,
/// so one complete chain survives a power cut at any moment. Only read during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_ring_t {
    /// The flash holding the ring (device fields of a config, as for ::cairn_stream_t). It must
    /// not overlap the volume of an open database.
    pub device: *const cairn_config_t,
    /// First block of the ring on `device`.
    pub first_block: u32,
    /// Blocks of the ring: at least `2 * slots`; each slot gets `block_count / (2 * slots)`.
    pub block_count: u32,
    /// Slots per chain area.
    pub slots: u32,
}

/// Most slots per chain area of a ::cairn_ring_t.
pub const CAIRN_RING_MAX_SLOTS: u32 = cairndb::db::MAX_RING_SLOTS;

/// What a ring holds (cairn_ring_status()).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct cairn_ring_status_t {
    /// Linked backups found in each chain area (0: none), by their headers.
    pub chain_len: [u32; 2],
    /// The area a restore would use (the newer chain), or -1 when the ring holds none.
    pub newest: i32,
    /// Blocks per slot.
    pub slot_blocks: u32,
}

/// The core ring and its partition device.
///
/// # Safety
/// `ring` NULL or valid, its device usable for the call.
unsafe fn ring_of(ring: *const cairn_ring_t) -> R<(cairndb::db::BackupRing, CallbackDevice)> {
    // SAFETY: the caller's contract.
    let r = unsafe { ring.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
    if r.device.is_null() {
        return Err(CAIRN_ERR_NULL);
    }
    let core = cairndb::db::BackupRing::new(r.first_block, r.block_count, r.slots)
        .map_err(|_| CAIRN_ERR_INVALID_ARGUMENT)?;
    // SAFETY: the caller's contract for `device`.
    let dev = unsafe { partition_device(r.device)? };
    Ok((core, dev))
}

/// Takes the next scheduled backup into the ring: an incremental appended to the chain that
/// ends with the database's last backup, or, when that chain is full, missing, or no longer
/// continued (a restore or repair came between), a full backup into the other area. Logs a
/// ::CAIRN_EVENT_BACKUP event.
///
/// @param area  receives the chain area written (0 or 1); may be NULL.
/// @param slot  receives the slot written (0: a full backup); may be NULL.
/// @retval as cairn_backup_full() (CAIRN_ERR_INVALID_ARGUMENT also for a ring shape that
///         gives a slot no block or a ring off its device; CAIRN_ERR_NO_SPACE: a backup
///         larger than a slot). On error the ring's complete chains are untouched.
///
/// Thread safety: as cairn_backup_full().
///
/// # Safety
/// `key` NULL or valid; `ring` valid, its device usable for the call; `info`, `area`, `slot`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_ring_backup(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    ring: *const cairn_ring_t,
    info: *mut cairn_backup_info_t,
    area: *mut u32,
    slot: *mut u32,
) -> i32 {
    // SAFETY: the documented contract.
    let platform = unsafe { db.as_ref() }.map(|h| h.platform);
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_ring_backup", |d| {
            let spec = BKey::read(key)?.spec(platform.as_ref(), true)?;
            let (ring, mut dev) = ring_of(ring)?;
            let b = ring.backup(d, &mut dev, &spec).map_err(db_err)?;
            set(info, info_of(&b.info));
            set(area, b.area);
            set(slot, b.slot);
            Ok(())
        })
    }
}

/// Restores the ring's newest chain that verifies to its end: a chain whose last backup was
/// torn by a power cut restores up to the backup before; a torn full backup falls back on the
/// other area's chain. Atomic as cairn_restore(); the next cairn_ring_backup() continues the
/// restored chain. Logs a ::CAIRN_EVENT_RESTORE event.
///
/// @retval as cairn_restore(), plus CAIRN_ERR_NOT_FOUND (the ring holds no chain) and
///         CAIRN_ERR_WRONG_KEY (it holds backups under another key only).
///
/// Thread safety: as cairn_restore().
///
/// # Safety
/// `key` NULL or valid; `ring` valid, its device usable for the call; `report` NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_ring_restore(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    ring: *const cairn_ring_t,
    report: *mut cairn_restore_report_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_ring_restore", |d| {
            let spec = BKey::read(key)?.spec(None, false)?;
            let (ring, mut dev) = ring_of(ring)?;
            let rep = ring.restore(d, &mut dev, &spec).map_err(db_err)?;
            set(
                report,
                cairn_restore_report_t {
                    streams: rep.streams,
                    records: rep.records,
                    end_seq: rep.end_seq,
                },
            );
            Ok(())
        })
    }
}

/// Reads which chains the ring holds, from the backups' authenticated headers (bodies are not
/// verified; cairn_ring_restore() verifies them). Nothing is written.
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL, CAIRN_ERR_INVALID_ARGUMENT (as for cairn_ring_backup()),
///         CAIRN_ERR_IO, CAIRN_ERR_NO_MEMORY, CAIRN_ERR_BUSY, CAIRN_ERR_TIMEOUT,
///         CAIRN_ERR_INTERNAL.
///
/// Thread safety: holds the handle's platform lock for the call.
///
/// # Safety
/// `key` NULL or valid; `ring` valid, its device usable for the call; `status` valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn cairn_ring_status(
    db: *mut cairn_db_t,
    key: *const cairn_backup_key_t,
    ring: *const cairn_ring_t,
    status: *mut cairn_ring_status_t,
) -> i32 {
    // SAFETY: the documented contract.
    unsafe {
        with_db(db, "cairn_ring_status", |d| {
            if status.is_null() {
                return Err(CAIRN_ERR_NULL);
            }
            let spec = BKey::read(key)?.spec(None, false)?;
            let (ring, mut dev) = ring_of(ring)?;
            let s = ring.status(d, &mut dev, &spec).map_err(db_err)?;
            set(
                status,
                cairn_ring_status_t {
                    chain_len: s.chain_len,
                    newest: s.newest.map_or(-1, |a| a as i32),
                    slot_blocks: s.slot_blocks,
                },
            );
            Ok(())
        })
    }
}
