//! The log-structured store under the database: an ordered map of byte keys to byte values with
//! atomic multi-key commits.
//!
//! - A commit is written as one or more WAL frames, each a littlefs custom attribute on the file
//!   `/wal` (one atomic metadata commit, no erase); the last frame carries the commit flag.
//! - Committed but unfolded mutations live in a RAM memtable bounded by the WAL's size.
//! - When the WAL is full, the memtable is folded into a new immutable segment file; segments are
//!   merged in tiers of `tier_fanout`.
//! - The root record `/cairn` (replaced atomically by rename) lists the live segments and the
//!   first unfolded WAL sequence number. It is the single point of truth after a power cut.
//!
//! docs/DESIGN.md gives the reasoning and invariants, docs/SPEC.md the byte layouts.

pub mod segment;

use crate::crypto::Sealer;
use crate::flash::BlockDevice;
use crate::format::{self, FrameHeader, Manifest, RootHeader, SegMeta, FRAME_HEADER};
use crate::lfs::{FileId, Fs, OpenMode};
use crate::{Error, Result};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use segment::SegPath;

pub const ROOT_PATH: &str = "/cairn";
const ROOT_TMP: &str = "/cairn.tmp";
pub const WAL_PATH: &str = "/wal";
/// littlefs's largest custom attribute.
pub const ATTR_MAX: usize = 1022;
/// Blocks littlefs needs besides file data: superblock and root directory pairs, and slack for
/// one metadata split.
const METADATA_BLOCKS: u32 = 6;
/// Most segments a manifest may list (bounds RAM when reading a hostile image).
const MAX_SEGMENTS_ON_FLASH: usize = 64;
/// Bytes of puts a deleting commit may carry per delete and still count as shrinking.
const SHRINK_PUT_ALLOWANCE: usize = 64;

/// A sorted set of pending writes: key -> Some(value) or None (delete).
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// Committed, unfolded writes: key -> (sequence number of the commit, value or None).
type MemTable = BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

/// Tuning of the store; every RAM buffer is sized from it.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// Target plaintext size of a segment page.
    pub page_size: usize,
    /// Number of WAL slots (littlefs attributes), at most 255.
    pub wal_slots: u8,
    /// Fold the WAL into a segment once its committed bytes reach this.
    pub wal_fold_bytes: usize,
    /// Largest WAL frame (an attribute), at most 1022.
    pub frame_max: usize,
    /// Largest sealed page record accepted when reading (bounds RAM on hostile images).
    pub max_record: usize,
    /// Merge this many segments of one tier into one of the next tier.
    pub tier_fanout: usize,
    /// Hard bound on live segments.
    pub max_segments: usize,
    /// Segment files kept open between calls (each costs one littlefs file cache).
    pub open_segments: usize,
    /// Blocks kept free for littlefs metadata and for folding deletes when the flash is full.
    pub reserve_blocks: u32,
    /// Repair mode: at open, a WAL frame that fails authentication ends the log (it and the
    /// frames after it are dropped and counted) instead of failing the open.
    pub salvage: bool,
    /// Run a full merge after a fold once deletions waiting in the upper segments reach this
    /// percentage of all segment entries (0: never automatically).
    pub auto_compact_percent: u8,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            page_size: 512,
            wal_slots: 32,
            wal_fold_bytes: 1536,
            frame_max: ATTR_MAX,
            max_record: 8192,
            tier_fanout: 4,
            max_segments: 16,
            open_segments: 8,
            reserve_blocks: 4,
            salvage: false,
            auto_compact_percent: 30,
        }
    }
}

/// Counters the statistics and benchmarks read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub commits: u64,
    pub frames: u64,
    pub folds: u64,
    pub merges: u64,
    pub root_writes: u64,
}

pub struct Store<D: BlockDevice> {
    fs: Fs<D>,
    sealer: Sealer,
    header: RootHeader,
    man: Manifest,
    cfg: StoreConfig,
    mem: MemTable,
    mem_bytes: usize,
    /// Sequence number of the next WAL frame.
    wal_next: u64,
    /// Committed frames and bytes since `man.wal_base`.
    wal_frames: usize,
    wal_bytes: usize,
    /// Segment files currently open for reading, least recently used first.
    open: Vec<(u32, FileId)>,
    page: Vec<u8>,
    /// Blocks in use as littlefs last counted them (None: not counted since open).
    used_blocks: Option<u32>,
    /// Root generation at the last reclaiming merge attempt (not retried until it changes).
    reclaim_tried: Option<u64>,
    /// WAL frames dropped at open in salvage mode.
    dropped_frames: u32,
    stats: StoreStats,
}

impl<D: BlockDevice> Store<D> {
    /// Create a new store on a freshly formatted littlefs volume.
    pub fn create(
        mut fs: Fs<D>,
        sealer: Sealer,
        header: RootHeader,
        cfg: StoreConfig,
    ) -> core::result::Result<Self, (Error, D)> {
        if let Err(e) = validate(&cfg).and_then(|_| fs.write_file(WAL_PATH, &[])) {
            return Err((e, fs.into_device()));
        }
        let mut s = Store::assemble(fs, sealer, header, Manifest::default(), cfg);
        if let Err(e) = s.write_root() {
            return Err((e, s.fs.into_device()));
        }
        Ok(s)
    }

    fn assemble(
        fs: Fs<D>,
        sealer: Sealer,
        header: RootHeader,
        man: Manifest,
        cfg: StoreConfig,
    ) -> Self {
        Store {
            fs,
            sealer,
            header,
            wal_next: man.wal_base,
            man,
            cfg,
            mem: MemTable::new(),
            mem_bytes: 0,
            wal_frames: 0,
            wal_bytes: 0,
            open: Vec::new(),
            page: Vec::new(),
            used_blocks: None,
            reclaim_tried: None,
            dropped_frames: 0,
            stats: StoreStats::default(),
        }
    }

    /// Read the root header without a key (to learn the KDF parameters and flags).
    pub fn read_header(fs: &mut Fs<D>, max_root: usize) -> Result<(RootHeader, Vec<u8>)> {
        let mut buf = Vec::new();
        match fs.read_file(ROOT_PATH, &mut buf, max_root) {
            Ok(()) => {}
            Err(Error::NotFound) => return Err(Error::NotFormatted),
            Err(Error::TooLarge) => return Err(Error::Corrupt),
            Err(e) => return Err(e),
        }
        let header = RootHeader::decode(&buf)?;
        Ok((header, buf))
    }

    /// Open an existing store: read the root record (once), make the sealer its header asks
    /// for (the key derivation needs the header's salt), then replay the WAL.
    pub fn open(
        mut fs: Fs<D>,
        make_sealer: &dyn Fn(&RootHeader) -> Result<Sealer>,
        cfg: StoreConfig,
    ) -> core::result::Result<Self, (Error, D)> {
        let loaded = validate(&cfg).and_then(|_| Self::load_root(&mut fs, make_sealer, &cfg));
        let (header, man, sealer) = match loaded {
            Ok(x) => x,
            Err(e) => return Err((e, fs.into_device())),
        };
        let mut s = Store::assemble(fs, sealer, header, man, cfg);
        // Files a cut left listed as obsolete are removed with the next fold, not here: a
        // removal costs a directory lookup, and opening should read as little as it can.
        let res = s.replay_wal();
        match res {
            Ok(()) => Ok(s),
            Err(e) => Err((e, s.fs.into_device())),
        }
    }

    fn load_root(
        fs: &mut Fs<D>,
        make_sealer: &dyn Fn(&RootHeader) -> Result<Sealer>,
        cfg: &StoreConfig,
    ) -> Result<(RootHeader, Manifest, Sealer)> {
        let (header, mut buf) = Self::read_header(fs, max_root_len(cfg))?;
        let sealer = make_sealer(&header)?;
        let encrypted = header.flags & format::FLAG_ENCRYPTED != 0;
        if encrypted != sealer.is_encrypted() {
            return Err(Error::KeyMismatch);
        }
        if !crate::crypto::ct_eq(&sealer.key_check(), &header.key_check) {
            return Err(Error::WrongKey);
        }
        let aad = header.encode();
        let body = buf.get_mut(format::ROOT_HEADER..).ok_or(Error::Corrupt)?;
        let n = sealer.open(&aad, body)?;
        // A manifest written under another configuration may list more segments than this one
        // keeps; the merge policy brings the count back down.
        let man = Manifest::decode(body.get(..n).ok_or(Error::Corrupt)?, MAX_SEGMENTS_ON_FLASH)?;
        Ok((header, man, sealer))
    }

    pub fn header(&self) -> &RootHeader {
        &self.header
    }
    pub fn manifest(&self) -> &Manifest {
        &self.man
    }
    pub fn stats(&self) -> StoreStats {
        self.stats
    }
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }
    pub fn fs(&mut self) -> &mut Fs<D> {
        &mut self.fs
    }
    pub fn device(&self) -> &D {
        self.fs.device()
    }
    pub fn device_mut(&mut self) -> &mut D {
        self.fs.device_mut()
    }
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }
    /// Bytes held by the RAM memtable.
    pub fn memtable_bytes(&self) -> usize {
        self.mem_bytes
    }

    /// Unmount cleanly and hand the device back.
    /// Fold the WAL (so the next open reads only the root record), let littlefs compact the
    /// metadata logs that grew past `compact_thresh` (so the next mount reads short logs), then
    /// unmount.
    pub fn close(mut self) -> (Result<()>, D) {
        let folded = self.fold().and_then(|_| self.fs.gc());
        let closed = self.close_files().and(folded);
        let (r, dev) = self.fs.unmount();
        (closed.and(r), dev)
    }

    /// Drop everything without touching the flash (what a power cut does).
    pub fn into_device(self) -> D {
        self.fs.into_device()
    }

    /// Release the RAM that can be rebuilt: open segment files and scratch buffers.
    pub fn release_caches(&mut self) -> Result<()> {
        self.close_files()?;
        self.page = Vec::new();
        Ok(())
    }

    fn close_files(&mut self) -> Result<()> {
        let mut res = Ok(());
        for (_, fid) in self.open.drain(..) {
            if let Err(e) = self.fs.close(fid) {
                res = Err(e);
            }
        }
        res
    }

    // ------------------------------------------------------------------------------------------
    // WAL

    fn frame_payload(&self) -> usize {
        self.cfg
            .frame_max
            .saturating_sub(FRAME_HEADER + self.sealer.overhead())
    }

    fn slot(&self, seq: u64) -> u8 {
        (seq % u64::from(self.cfg.wal_slots)) as u8
    }

    /// Largest mutation stream one commit may carry.
    pub fn max_commit_bytes(&self) -> usize {
        self.cfg
            .wal_fold_bytes
            .min(self.frame_payload() * usize::from(self.cfg.wal_slots))
    }

    fn replay_wal(&mut self) -> Result<()> {
        let mut frame = alloc::vec![0u8; self.cfg.frame_max];
        let mut txn: Vec<u8> = Vec::new();
        let mut seq = self.man.wal_base;
        let mut txn_first = seq;
        let mut txn_frames = 0usize;
        let limit = u64::from(self.cfg.wal_slots);
        for _ in 0..limit {
            let slot = self.slot(seq);
            let n = match self.fs.get_attr(WAL_PATH, slot, &mut frame) {
                Ok(Some(n)) if n <= frame.len() && n >= FRAME_HEADER => n,
                Ok(Some(_)) => return Err(Error::Corrupt),
                Ok(None) => break,
                // A cut between a fold's root write and the WAL's reset: the WAL is empty.
                Err(Error::NotFound) => {
                    self.fs.write_file(WAL_PATH, &[])?;
                    break;
                }
                Err(e) => return Err(e),
            };
            let hb: [u8; FRAME_HEADER] = frame[..FRAME_HEADER]
                .try_into()
                .map_err(|_| Error::Corrupt)?;
            let h = FrameHeader::decode(&hb)?;
            // A frame from an older round, or one that does not continue the transaction being
            // read (left over from a transaction cut by power loss), ends the log.
            if h.seq != seq || u64::from(h.index) != seq - txn_first {
                break;
            }
            let body = frame.get_mut(FRAME_HEADER..n).ok_or(Error::Corrupt)?;
            let plain = match self.sealer.open(&format::frame_aad(&hb), body) {
                Ok(p) => p,
                Err(Error::Corrupt) if self.cfg.salvage => {
                    return self.drop_wal_tail(txn_first);
                }
                Err(e) => return Err(e),
            };
            txn.extend_from_slice(body.get(..plain).ok_or(Error::Corrupt)?);
            if txn.len() > self.max_commit_bytes() {
                return Err(Error::Corrupt);
            }
            txn_frames += 1;
            seq += 1;
            if h.is_commit() {
                let mut ws = WriteSet::new();
                format::for_each_mutation(&txn, &mut |k, v| {
                    ws.insert(k.to_vec(), v.map(|v| v.to_vec()));
                    Ok(())
                })?;
                self.apply(ws, txn_first);
                self.wal_bytes += txn.len();
                self.wal_frames += txn_frames;
                self.wal_next = seq;
                txn.clear();
                txn_frames = 0;
                txn_first = seq;
            }
        }
        Ok(())
    }

    /// Apply a committed write set, `seq` being the sequence number of its first WAL frame.
    /// Salvage: forget the WAL from the transaction starting at `seq` on. The frames after
    /// it are still in their slots, so jump a whole round of slots past them and fold now,
    /// which replaces the WAL holder file.
    fn drop_wal_tail(&mut self, seq: u64) -> Result<()> {
        let slots = u64::from(self.cfg.wal_slots);
        let mut dropped = 0u32;
        let mut probe = alloc::vec![0u8; self.cfg.frame_max];
        for i in 0..slots {
            if let Ok(Some(n)) = self.fs.get_attr(WAL_PATH, self.slot(seq + i), &mut probe) {
                let h = probe
                    .get(..FRAME_HEADER.min(n))
                    .and_then(|b| <[u8; FRAME_HEADER]>::try_from(b).ok());
                if h.and_then(|h| FrameHeader::decode(&h).ok())
                    .is_some_and(|h| h.seq >= seq)
                {
                    dropped += 1;
                }
            }
        }
        self.dropped_frames = dropped.max(1);
        self.wal_next = seq + slots;
        self.fold()
    }

    fn apply(&mut self, ws: WriteSet, seq: u64) {
        for (k, v) in ws {
            let add = k.len() + v.as_ref().map_or(0, |v| v.len()) + 16;
            if let Some((_, old)) = self.mem.insert(k, (seq, v)) {
                self.mem_bytes = self.mem_bytes.saturating_sub(old.map_or(0, |o| o.len()));
                // The key was counted already.
                self.mem_bytes += add.saturating_sub(16);
            } else {
                self.mem_bytes += add;
            }
        }
    }

    /// Commit a write set atomically and durably.
    pub fn commit(&mut self, ws: WriteSet) -> Result<()> {
        if ws.is_empty() {
            return Ok(());
        }
        let mut stream = Vec::new();
        let (mut deletes, mut put_bytes) = (0usize, 0usize);
        for (k, v) in &ws {
            match v {
                Some(v) => put_bytes += k.len() + v.len(),
                None => deletes += 1,
            }
            format::put_mutation(&mut stream, k, v.as_deref());
        }
        // A commit that mostly deletes (its puts are only bookkeeping such as a collection's
        // count) is admitted even when the flash is full: that is how space comes back.
        let shrinking = deletes > 0 && put_bytes <= deletes * SHRINK_PUT_ALLOWANCE;
        if stream.len() > self.max_commit_bytes() {
            return Err(Error::TxnTooLarge);
        }
        let payload = self.frame_payload().max(1);
        let frames = stream.len().div_ceil(payload);
        if self.wal_frames + frames > usize::from(self.cfg.wal_slots)
            || self.wal_bytes + stream.len() > self.cfg.wal_fold_bytes
        {
            self.fold()?;
        }
        if !shrinking {
            self.check_room()?;
        }
        let seq = self.wal_next;
        let mut frame = Vec::with_capacity(self.cfg.frame_max);
        for (i, chunk) in stream.chunks(payload).enumerate() {
            let h = FrameHeader {
                seq: self.wal_next + i as u64,
                index: u16::try_from(i).map_err(|_| Error::TxnTooLarge)?,
                flags: if i + 1 == frames {
                    format::FRAME_COMMIT
                } else {
                    0
                },
            };
            let hb = h.encode();
            frame.clear();
            frame.extend_from_slice(&hb);
            frame.extend_from_slice(chunk);
            frame.resize(FRAME_HEADER + chunk.len() + self.sealer.overhead(), 0);
            let n = self.sealer.seal(
                &format::frame_aad(&hb),
                &mut frame[FRAME_HEADER..],
                chunk.len(),
            )?;
            let slot = self.slot(h.seq);
            let record = &frame[..FRAME_HEADER + n];
            match self.fs.set_attr(WAL_PATH, slot, record) {
                // A fold's WAL reset failed between removing and recreating the holder file:
                // everything before was folded, so recreate it and write the frame again.
                Err(Error::NotFound) => {
                    self.fs.write_file(WAL_PATH, &[])?;
                    self.fs.set_attr(WAL_PATH, slot, record)?;
                }
                r => r?,
            }
            self.stats.frames += 1;
        }
        self.wal_next += frames as u64;
        self.wal_frames += frames;
        self.wal_bytes += stream.len();
        self.apply(ws, seq);
        self.stats.commits += 1;
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Reads

    /// The newest value of `key` (None: absent or deleted).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some((_, v)) = self.mem.get(key) {
            return Ok(v.clone());
        }
        if key == format::time_mark_key() {
            if let Some(v) = &self.man.time_mark {
                return Ok(Some(v.clone()));
            }
        }
        let mut page = core::mem::take(&mut self.page);
        let res = self.get_in_segments(key, &mut page);
        self.page = page;
        res
    }

    fn get_in_segments(&mut self, key: &[u8], page: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
        for i in 0..self.man.segments.len() {
            let seg = &self.man.segments[i];
            if key < seg.min_key.as_slice() || key > seg.max_key.as_slice() {
                continue;
            }
            let file = seg.file;
            let fid = self.seg_file(file, &[])?;
            let seg = &self.man.segments[i];
            if let Some(v) = segment::get(
                &mut self.fs,
                &self.sealer,
                fid,
                seg,
                key,
                self.cfg.max_record,
                page,
            )? {
                return Ok(v);
            }
        }
        Ok(None)
    }

    /// An open handle on segment `file`, from the small LRU of open files. Files in `pinned`
    /// (held by a cursor) are never closed to make room; the LRU may then grow past its bound
    /// until [`Store::trim_open`].
    fn seg_file(&mut self, file: u32, pinned: &[u32]) -> Result<FileId> {
        if let Some(pos) = self.open.iter().position(|(f, _)| *f == file) {
            let e = self.open.remove(pos);
            self.open.push(e);
            return Ok(e.1);
        }
        if self.open.len() >= self.cfg.open_segments.max(1) {
            if let Some(pos) = self.open.iter().position(|(f, _)| !pinned.contains(f)) {
                let (_, fid) = self.open.remove(pos);
                self.fs.close(fid)?;
            }
        }
        let fid = match self.fs.open(SegPath::new(file).as_str(), OpenMode::Read) {
            Ok(f) => f,
            // The manifest names a file littlefs does not have.
            Err(Error::NotFound) => return Err(Error::Corrupt),
            Err(e) => return Err(e),
        };
        self.open.push((file, fid));
        Ok(fid)
    }

    /// Close least recently used files beyond the configured bound.
    fn trim_open(&mut self) -> Result<()> {
        while self.open.len() > self.cfg.open_segments.max(1) {
            let (_, fid) = self.open.remove(0);
            self.fs.close(fid)?;
        }
        Ok(())
    }

    fn forget_file(&mut self, file: u32) -> Result<()> {
        if let Some(pos) = self.open.iter().position(|(f, _)| *f == file) {
            let (_, fid) = self.open.remove(pos);
            self.fs.close(fid)?;
        }
        Ok(())
    }

    /// Up to `limit` live entries with `start <= key < end`, in key order, merged across the
    /// memtable and every segment. Bounded RAM: one page per segment plus the result.
    pub fn scan(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        out: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        // Only the segments whose key range meets [start, end) need a cursor.
        let segs: Vec<usize> = (0..self.man.segments.len())
            .filter(|&i| {
                let seg = &self.man.segments[i];
                seg.max_key.as_slice() >= start && end.is_none_or(|e| seg.min_key.as_slice() < e)
            })
            .collect();
        let mut merged = self.merged_cursor(start, &segs)?;
        let res = (|| {
            while out.len() < limit {
                let Some((k, _, v)) = merged.next(self)? else {
                    break;
                };
                if end.is_some_and(|e| k.as_slice() >= e) {
                    break;
                }
                if let Some(v) = v {
                    out.push((k, v));
                }
            }
            Ok(())
        })();
        merged.release(self);
        res
    }

    /// A merge of the memtable and the segments `segs` (indexes, newest first), from `start`.
    fn merged_cursor(&mut self, start: &[u8], segs: &[usize]) -> Result<Merged> {
        let mut cursors = Vec::with_capacity(segs.len());
        let pinned: Vec<u32> = segs
            .iter()
            .filter_map(|i| self.man.segments.get(*i).map(|s| s.file))
            .collect();
        for &i in segs {
            let file = self.man.segments.get(i).ok_or(Error::Corrupt)?.file;
            let fid = self.seg_file(file, &pinned)?;
            let seg = &self.man.segments[i];
            cursors.push(segment::Cursor::seek(
                &mut self.fs,
                &self.sealer,
                fid,
                seg,
                start,
                self.cfg.max_record,
            )?);
        }
        Ok(Merged {
            mem_from: Some(start.to_vec()),
            cursors,
        })
    }

    // ------------------------------------------------------------------------------------------
    // Changes and backups

    /// Sequence number of the newest commit (0: none yet). Every entry carries the number of
    /// the commit that wrote it.
    pub fn last_seq(&self) -> u64 {
        self.wal_next.saturating_sub(1)
    }

    /// Incremental reads since `s` are complete only for `s >= incr_floor()`.
    pub fn incr_floor(&self) -> u64 {
        self.man.incr_floor
    }

    /// Keep deletions newer than `seq` through merges (called when a backup up to `seq` is
    /// complete, so the next incremental can carry them). One root write.
    pub fn retain_after(&mut self, seq: u64) -> Result<()> {
        if self.man.retain_after == seq {
            return Ok(());
        }
        let mut man = self.man.clone();
        man.retain_after = seq;
        self.install(man)
    }

    /// Up to `limit` entries with key >= `start` whose newest version was written after
    /// commit `since`, deletions included, in key order: the body of an incremental backup.
    /// With `since == None`, every live entry (a full backup). Segments wholly older than
    /// `since` are not read.
    pub fn scan_changes(
        &mut self,
        since: Option<u64>,
        start: &[u8],
        limit: usize,
        out: &mut Vec<format::OwnedEntry>,
    ) -> Result<()> {
        if since.is_some_and(|s| s < self.man.incr_floor) {
            return Err(Error::BackupChain);
        }
        let segs: Vec<usize> = (0..self.man.segments.len())
            .filter(|&i| {
                let seg = &self.man.segments[i];
                seg.max_key.as_slice() >= start && since.is_none_or(|s| seg.max_seq > s)
            })
            .collect();
        let mut merged = self.merged_cursor(start, &segs)?;
        let res = (|| {
            while out.len() < limit {
                let Some((k, seq, v)) = merged.next(self)? else {
                    break;
                };
                // A version not newer than `since` is unchanged (or shadowed by one that is).
                let wanted = match since {
                    Some(s) => seq > s,
                    None => v.is_some(),
                };
                if wanted {
                    out.push((k, seq, v));
                }
            }
            Ok(())
        })();
        merged.release(self);
        res
    }

    /// Replace the whole store by the sorted entry streams `fill(i, sink)` writes for
    /// `i in 0..streams` (oldest first: a full backup then its incrementals), atomically: the
    /// new segments are written beside the old ones and one root write switches. A cut or an
    /// error before that switch leaves the old store untouched. `fill` returns the highest
    /// sequence number its stream covers.
    pub fn restore(
        &mut self,
        streams: usize,
        fill: &mut dyn FnMut(usize, &mut RestoreSink<'_, D>) -> Result<u64>,
    ) -> Result<()> {
        if streams == 0 || streams > self.cfg.max_segments {
            return Err(Error::InvalidArgument);
        }
        self.close_files()?;
        let first = self.man.next_file;
        let mut metas = Vec::new();
        let mut written = Vec::new();
        let mut end_seq = 0u64;
        let res = (|| {
            for i in 0..streams {
                let file = first.wrapping_add(i as u32);
                let path = SegPath::new(file);
                let fid = self.fs.open(path.as_str(), OpenMode::CreateTruncate)?;
                written.push(file);
                let mut sink = RestoreSink {
                    fs: &mut self.fs,
                    sealer: &self.sealer,
                    w: segment::Writer::new(file, fid, self.cfg.page_size),
                };
                let filled = fill(i, &mut sink);
                let RestoreSink { w, .. } = sink;
                let finished = filled.and_then(|end| {
                    end_seq = end_seq.max(end);
                    w.finish(&mut self.fs, &self.sealer, 0)
                });
                let closed = self.fs.close(fid);
                match (finished, closed) {
                    (Ok(Some(m)), Ok(())) => metas.push(m),
                    (Ok(None), Ok(())) => {}
                    (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            for f in written {
                let _ = self.fs.remove(SegPath::new(f).as_str());
            }
            return Err(e);
        }
        let mut man = self.man.clone();
        man.obsolete.extend(man.segments.iter().map(|s| s.file));
        // Restored entries keep their sequence numbers; empty streams left empty files.
        man.obsolete.extend(
            written
                .iter()
                .filter(|f| !metas.iter().any(|m| m.file == **f)),
        );
        metas.reverse();
        man.segments = metas;
        man.next_file = first.wrapping_add(streams as u32);
        // Past every frame the old WAL may hold and every restored sequence number.
        man.wal_base = self.wal_next.max(end_seq.saturating_add(1)) + u64::from(self.cfg.wal_slots);
        // History before the restored state is gone: the next incremental starts here.
        man.retain_after = end_seq;
        man.incr_floor = end_seq;
        // The restored segments hold their own time mark.
        man.time_mark = None;
        // The root write is the switch. Until it returns, the old store stands.
        let old = core::mem::replace(&mut self.man, man);
        if let Err(e) = self.write_root() {
            self.man = old;
            for f in written {
                let _ = self.fs.remove(SegPath::new(f).as_str());
            }
            return Err(e);
        }
        // From here the restore has happened: what follows is housekeeping that a later root
        // write or fold redoes, so its errors must not report the restore as failed.
        self.mem.clear();
        self.mem_bytes = 0;
        self.wal_next = self.man.wal_base;
        // Old files the removal misses stay listed as obsolete in the manifest.
        let _ = self.remove_obsolete();
        // Old frames left in a WAL that could not be replaced are below `wal_base`: never read.
        if self.reset_wal().is_err() {
            self.wal_frames = 0;
            self.wal_bytes = 0;
        }
        self.used_blocks = None;
        let _ = self.maybe_merge();
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Integrity

    /// Read and authenticate every page of every segment, checking key order, entry counts and
    /// sequence bounds against the manifest. Findings are counted, not fatal; I/O errors are.
    pub fn check(&mut self) -> Result<StoreCheck> {
        let mut report = StoreCheck {
            segments: self.man.segments.len() as u32,
            wal_entries: self.mem.len() as u32,
            ..StoreCheck::default()
        };
        self.close_files()?;
        let mut page = Vec::new();
        for i in 0..self.man.segments.len() {
            let seg = self.man.segments[i].clone();
            let fid = match self
                .fs
                .open(SegPath::new(seg.file).as_str(), OpenMode::Read)
            {
                Ok(f) => f,
                Err(Error::NotFound) => {
                    report.missing_files += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let res = check_segment(
                &mut self.fs,
                &self.sealer,
                fid,
                &seg,
                self.cfg.max_record,
                &mut page,
                &mut report,
            );
            self.fs.close(fid)?;
            res?;
        }
        Ok(report)
    }

    /// Rewrite everything readable into one new segment, skipping pages that fail
    /// authentication (their entries are lost; an older version of such a key, if one is
    /// readable, shows again). Returns the number of pages skipped.
    pub fn salvage(&mut self) -> Result<u32> {
        self.fold()?;
        self.close_files()?;
        let file = self.man.next_file;
        let path = SegPath::new(file);
        let fid = self.fs.open(path.as_str(), OpenMode::CreateTruncate)?;
        let mut w = segment::Writer::new(file, fid, self.cfg.page_size);
        let mut skipped = 0u32;
        let res = (|| {
            let mut cursors = Vec::new();
            for seg in self.man.segments.clone() {
                let sfid = match self
                    .fs
                    .open(SegPath::new(seg.file).as_str(), OpenMode::Read)
                {
                    Ok(f) => f,
                    Err(Error::NotFound) => continue,
                    Err(e) => return Err(e),
                };
                self.open.push((seg.file, sfid));
                cursors.push(segment::Cursor::tolerant(
                    &mut self.fs,
                    &self.sealer,
                    sfid,
                    &seg,
                    self.cfg.max_record,
                )?);
            }
            let mut merged = Merged {
                mem_from: None,
                cursors,
            };
            loop {
                let next = merged.next(self);
                let Some((k, seq, v)) = next? else { break };
                if let Some(v) = v {
                    w.add(&mut self.fs, &self.sealer, &k, seq, Some(&v))?;
                }
            }
            skipped = merged.cursors.iter().map(|c| c.skipped()).sum();
            let meta = w.finish(&mut self.fs, &self.sealer, 0)?;
            Ok(meta)
        })();
        self.close_files()?;
        let closed = self.fs.close(fid);
        let meta = match (res, closed) {
            (Ok(m), Ok(())) => m,
            (Err(e), _) | (Ok(_), Err(e)) => {
                let _ = self.fs.remove(path.as_str());
                return Err(e);
            }
        };
        let mut man = self.man.clone();
        man.next_file = file.wrapping_add(1);
        man.obsolete.extend(man.segments.iter().map(|s| s.file));
        man.segments.clear();
        match meta {
            Some(m) => man.segments.push(m),
            None => man.obsolete.push(file),
        }
        // Deletions were dropped: an incremental backup must restart from a full one.
        man.incr_floor = self.last_seq();
        self.install(man)?;
        self.used_blocks = None;
        Ok(skipped)
    }

    /// WAL frames the last open dropped because they failed authentication (salvage mode).
    pub fn dropped_frames(&self) -> u32 {
        self.dropped_frames
    }

    // ------------------------------------------------------------------------------------------
    // Folding and merging

    /// Drop every frame of the WAL at once by replacing its holder file: live attributes are
    /// copied by each littlefs compaction of the directory, so stale ones must not pile up.
    /// Only called once the root record says they are folded.
    fn reset_wal(&mut self) -> Result<()> {
        self.fs.remove(WAL_PATH)?;
        self.fs.write_file(WAL_PATH, &[])?;
        self.wal_frames = 0;
        self.wal_bytes = 0;
        Ok(())
    }

    /// Fold the memtable into a new segment and empty the WAL. Idempotent when the WAL is empty.
    pub fn fold(&mut self) -> Result<()> {
        if self.mem.is_empty() {
            if self.man.wal_base != self.wal_next {
                self.man.wal_base = self.wal_next;
                self.write_root()?;
                self.reset_wal()?;
            }
            return Ok(());
        }
        // Folded alone (no segment older than the memtable), deletes shadow nothing and go.
        let w = self.write_merged(0..0, true, 0, None)?;
        let mut man = self.man.clone();
        man.next_file = w.file.wrapping_add(1);
        man.wal_base = self.wal_next;
        man.incr_floor = man.incr_floor.max(w.discarded);
        if let Some((_, v)) = self.mem.get(format::time_mark_key().as_slice()) {
            man.time_mark = v.clone();
        }
        match w.meta {
            Some(m) => man.segments.insert(0, m),
            None => man.obsolete.push(w.file),
        }
        self.install(man)?;
        self.mem.clear();
        self.mem_bytes = 0;
        self.reset_wal()?;
        self.stats.folds += 1;
        self.used_blocks = None;
        self.maybe_merge()?;
        self.maybe_compact()
    }

    /// Deletions waiting above the bottom segment, as a percentage of all segment entries:
    /// what a full merge would reclaim at least (overwritten values come on top).
    pub fn garbage_percent(&self) -> u8 {
        let segs = &self.man.segments;
        let entries: u64 = segs.iter().map(|s| u64::from(s.entries)).sum();
        let upper = segs.len().saturating_sub(1);
        let dead: u64 = segs[..upper].iter().map(|s| u64::from(s.tombstones)).sum();
        if entries == 0 {
            return 0;
        }
        u8::try_from(dead.saturating_mul(100) / entries).unwrap_or(100)
    }

    fn maybe_compact(&mut self) -> Result<()> {
        let pct = self.cfg.auto_compact_percent;
        if pct == 0 || self.man.segments.len() < 2 || self.garbage_percent() < pct {
            return Ok(());
        }
        let range = 0..self.man.segments.len();
        if self.merge_fits(&range)? {
            self.merge(range)?;
        }
        Ok(())
    }

    /// One bounded step of compaction: the merge the tiering policy wants next, else the two
    /// newest segments. A step rewrites only the segments it merges (the last step of a
    /// series rewrites the live data once). Returns whether another step would merge more.
    pub fn compact_step(&mut self) -> Result<bool> {
        self.fold()?;
        let range = match self.pick_merge() {
            Some(r) => r,
            None if self.man.segments.len() >= 2 => 0..2,
            None => return Ok(false),
        };
        if !self.merge_fits(&range)? {
            return Err(Error::NoSpace);
        }
        self.merge(range)?;
        Ok(self.man.segments.len() > 1)
    }

    /// Write one new segment merging segments `range` (newest first) and, with `from_mem`, the
    /// memtable above them, sealed with `out` (the store's sealer when None). Nothing is
    /// installed: the caller makes the result durable. On error the partial file is removed.
    fn write_merged(
        &mut self,
        range: core::ops::Range<usize>,
        from_mem: bool,
        level: u8,
        out: Option<&Sealer>,
    ) -> Result<Written> {
        let bottom = range.end == self.man.segments.len();
        let file = self.man.next_file;
        let path = SegPath::new(file);
        let fid = self.fs.open(path.as_str(), OpenMode::CreateTruncate)?;
        let w = segment::Writer::new(file, fid, self.cfg.page_size);
        let segs: Vec<usize> = range.collect();
        let res = match self.merged_cursor(&[], &segs) {
            Ok(mut merged) => {
                if !from_mem {
                    merged.mem_from = None;
                }
                let r = self.drain_into(&mut merged, w, bottom, level, out);
                merged.release(self);
                r
            }
            Err(e) => Err(e),
        };
        let closed = self.fs.close(fid);
        match (res, closed) {
            (Ok((meta, discarded)), Ok(())) => Ok(Written {
                file,
                meta,
                discarded,
            }),
            (Err(e), _) | (Ok(_), Err(e)) => {
                let _ = self.fs.remove(path.as_str());
                Err(e)
            }
        }
    }

    /// Feed a merge's entries to a segment writer. A bottom merge (nothing older below it)
    /// drops deletes, and purges dropped collections and indexes with their markers, except
    /// what the last backup's retention keeps. Returns the segment and the highest sequence
    /// number of anything discarded.
    fn drain_into(
        &mut self,
        merged: &mut Merged,
        mut w: segment::Writer,
        bottom: bool,
        level: u8,
        out: Option<&Sealer>,
    ) -> Result<(Option<SegMeta>, u64)> {
        let retain_after = self.man.retain_after;
        let mut discarded = 0u64;
        let mut dropped: heapless::Vec<u32, 16> = heapless::Vec::new();
        while let Some((k, seq, v)) = merged.next(self)? {
            if bottom && seq <= retain_after {
                if v.is_none() {
                    discarded = discarded.max(seq);
                    continue;
                }
                // Markers of dropped owners sort before their data: purge both.
                if k.len() == 6 && k[0] == format::T_CATALOG && k[1] == format::CAT_DROPPED {
                    let id = u32::from_be_bytes([k[2], k[3], k[4], k[5]]);
                    if dropped.push(id).is_ok() {
                        discarded = discarded.max(seq);
                        continue;
                    }
                }
            }
            if bottom && format::owner_of(&k).is_some_and(|o| dropped.contains(&o)) {
                continue;
            }
            w.add(
                &mut self.fs,
                out.unwrap_or(&self.sealer),
                &k,
                seq,
                v.as_deref(),
            )?;
        }
        let meta = w.finish(&mut self.fs, out.unwrap_or(&self.sealer), level)?;
        Ok((meta, discarded))
    }

    /// Make `man` the durable manifest, then remove the files it made obsolete.
    fn install(&mut self, man: Manifest) -> Result<()> {
        let old = core::mem::replace(&mut self.man, man);
        if let Err(e) = self.write_root() {
            self.man = old;
            return Err(e);
        }
        self.remove_obsolete()
    }

    /// Remove the files the durable manifest lists as replaced. They stay listed on flash until
    /// the next root write, so a cut before their removal only delays it to the next open.
    fn remove_obsolete(&mut self) -> Result<()> {
        let obsolete = core::mem::take(&mut self.man.obsolete);
        for (i, f) in obsolete.iter().enumerate() {
            let removed = self.forget_file(*f).and_then(|_| {
                match self.fs.remove(SegPath::new(*f).as_str()) {
                    Ok(()) | Err(Error::NotFound) => Ok(()),
                    Err(e) => Err(e),
                }
            });
            if let Err(e) = removed {
                self.man.obsolete = obsolete[i..].to_vec();
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_root(&mut self) -> Result<()> {
        let mut header = self.header;
        header.generation = header.generation.wrapping_add(1);
        let hb = header.encode();
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&hb);
        self.man.encode(&mut buf);
        let plain = buf.len() - format::ROOT_HEADER;
        buf.resize(buf.len() + self.sealer.overhead(), 0);
        let n = self
            .sealer
            .seal(&hb, &mut buf[format::ROOT_HEADER..], plain)?;
        buf.truncate(format::ROOT_HEADER + n);
        if buf.len() > max_root_len(&self.cfg) {
            return Err(Error::TooLarge);
        }
        self.fs.write_file(ROOT_TMP, &buf)?;
        self.fs.rename(ROOT_TMP, ROOT_PATH)?;
        self.header = header;
        self.stats.root_writes += 1;
        Ok(())
    }

    /// The next merge the tiering policy wants: a contiguous range of segment indexes.
    fn pick_merge(&self) -> Option<core::ops::Range<usize>> {
        let segs = &self.man.segments;
        let fanout = self.cfg.tier_fanout.max(2);
        // Segments are newest first with non-decreasing tiers: find the first full tier.
        let mut groups = Vec::new();
        let mut i = 0;
        while i < segs.len() {
            let level = segs[i].level;
            let mut j = i;
            while j < segs.len() && segs[j].level == level {
                j += 1;
            }
            if j - i >= fanout {
                return Some(i..j);
            }
            groups.push(i..j);
            i = j;
        }
        if segs.len() > self.cfg.max_segments {
            // Too many segments: promote the newest tier that has two or more, else merge the
            // two newest segments. Either way the result moves up, so the bound holds without
            // rewriting one growing segment at every fold.
            return Some(groups.into_iter().find(|g| g.len() >= 2).unwrap_or(0..2));
        }
        None
    }

    fn maybe_merge(&mut self) -> Result<()> {
        while let Some(range) = self.pick_merge() {
            if !self.merge_fits(&range)? {
                break;
            }
            self.merge(range)?;
        }
        Ok(())
    }

    /// Free blocks of the volume (counted by littlefs once per change of the segment set).
    pub fn free_blocks(&mut self) -> Result<u32> {
        let used = match self.used_blocks {
            Some(u) => u,
            None => {
                let u = self.fs.used_blocks()?;
                self.used_blocks = Some(u);
                u
            }
        };
        Ok(self.fs.geometry().block_count.saturating_sub(used))
    }

    fn blocks_of(&self, bytes: u64) -> u32 {
        let bs = u64::from(self.fs.geometry().block_size.max(1));
        // littlefs CTZ lists spend a few pointer words per block; one spare block covers it.
        u32::try_from(bytes.div_ceil(bs) + 1).unwrap_or(u32::MAX)
    }

    /// Whether `need` blocks are free. Counting littlefs's used blocks walks the whole volume,
    /// so the manifest's estimate answers first while the flash is far from full.
    fn has_free(&mut self, need: u32) -> Result<bool> {
        if self.used_blocks.is_none() {
            let estimate: u32 = self
                .man
                .segments
                .iter()
                .map(|s| self.blocks_of(u64::from(s.bytes)))
                .fold(METADATA_BLOCKS, u32::saturating_add);
            let total = self.fs.geometry().block_count;
            if total.saturating_sub(estimate) >= need.saturating_mul(2) {
                return Ok(true);
            }
        }
        Ok(self.free_blocks()? >= need)
    }

    fn merge_fits(&mut self, range: &core::ops::Range<usize>) -> Result<bool> {
        let bytes: u64 = self.man.segments[range.clone()]
            .iter()
            .map(|s| u64::from(s.bytes))
            .sum();
        let need = self
            .blocks_of(bytes)
            .saturating_add(self.cfg.reserve_blocks);
        self.has_free(need)
    }

    /// Free blocks a write that adds data needs: room to fold the WAL into a segment of its own
    /// and then still merge everything (that segment included) into one, plus the reserve.
    fn room_needed(&self) -> u32 {
        let total: u64 = self.man.segments.iter().map(|s| u64::from(s.bytes)).sum();
        let wal = self.cfg.wal_fold_bytes as u64;
        self.blocks_of(total + wal)
            .saturating_add(self.blocks_of(wal))
            .saturating_add(self.cfg.reserve_blocks)
    }

    /// Refuse writes that add data once a full merge could no longer run: past that point space
    /// could never be reclaimed. Before refusing, fold and try a full merge once per segment
    /// set: its output is at most its input, usually less, and one that runs out of space
    /// changes nothing.
    fn check_room(&mut self) -> Result<()> {
        if self.has_free(self.room_needed())? {
            return Ok(());
        }
        if self.reclaim_tried != Some(self.header.generation) {
            self.fold()?;
            if self.man.segments.len() > 1 {
                match self.merge(0..self.man.segments.len()) {
                    Ok(()) | Err(Error::NoSpace) => {}
                    Err(e) => return Err(e),
                }
            }
            self.reclaim_tried = Some(self.header.generation);
            if self.free_blocks()? >= self.room_needed() {
                return Ok(());
            }
        }
        Err(Error::NoSpace)
    }

    /// Merge every segment (a full compaction): drops deleted and superseded entries.
    pub fn compact(&mut self) -> Result<()> {
        self.fold()?;
        if self.man.segments.len() > 1 || self.man.segments.first().is_some_and(|s| s.entries > 0) {
            let range = 0..self.man.segments.len();
            if !self.merge_fits(&range)? {
                return Err(Error::NoSpace);
            }
            self.merge(range)?;
        }
        Ok(())
    }

    /// Merge segments `range` (newest first) into one.
    fn merge(&mut self, range: core::ops::Range<usize>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let inputs = &self.man.segments[range.clone()];
        let top = inputs.iter().map(|s| s.level).max().unwrap_or(0);
        // A whole tier merged moves up one tier; a mixed group stays at its highest tier.
        let level = if inputs.len() >= 2 && inputs.iter().all(|s| s.level == top) {
            top.saturating_add(1)
        } else {
            top
        };
        let w = self.write_merged(range.clone(), false, level, None)?;
        let mut man = self.man.clone();
        man.next_file = w.file.wrapping_add(1);
        man.incr_floor = man.incr_floor.max(w.discarded);
        man.obsolete
            .extend(man.segments[range.clone()].iter().map(|s| s.file));
        match w.meta {
            Some(m) => {
                man.segments.splice(range, core::iter::once(m));
            }
            None => {
                man.segments.drain(range);
                man.obsolete.push(w.file);
            }
        }
        self.install(man)?;
        self.stats.merges += 1;
        self.used_blocks = None;
        Ok(())
    }

    /// Re-encrypt everything under a new sealer and header, atomically: one full merge written
    /// with the new key, then one root write that switches both.
    pub fn rekey(&mut self, sealer: Sealer, mut header: RootHeader) -> Result<()> {
        self.fold()?;
        let range = 0..self.man.segments.len();
        if !self.merge_fits(&range)? {
            return Err(Error::NoSpace);
        }
        let w = self.write_merged(range, false, 0, Some(&sealer))?;
        let mut man = self.man.clone();
        man.next_file = w.file.wrapping_add(1);
        man.incr_floor = man.incr_floor.max(w.discarded);
        let replaced: Vec<u32> = man.segments.iter().map(|s| s.file).collect();
        man.obsolete.extend(replaced);
        man.segments.clear();
        match w.meta {
            Some(m) => man.segments.push(m),
            None => man.obsolete.push(w.file),
        }
        // Frames left in WAL slots were sealed with the old key: start past a whole round of
        // slots so none of them can ever be read as current.
        man.wal_base = self.wal_next + u64::from(self.cfg.wal_slots);
        header.generation = self.header.generation;
        let old = (
            core::mem::replace(&mut self.sealer, sealer),
            self.header,
            core::mem::replace(&mut self.man, man),
        );
        self.header = header;
        if let Err(e) = self.write_root() {
            self.sealer = old.0;
            self.header = old.1;
            self.man = old.2;
            return Err(e);
        }
        self.wal_next = self.man.wal_base;
        self.reset_wal()?;
        self.close_files()?;
        self.used_blocks = None;
        self.remove_obsolete()
    }
}

/// Where a restore writes one stream: a segment writer fed in key order.
pub struct RestoreSink<'a, D: BlockDevice> {
    fs: &'a mut Fs<D>,
    sealer: &'a Sealer,
    w: segment::Writer,
}

impl<D: BlockDevice> RestoreSink<'_, D> {
    /// Add the next entry; keys must strictly increase (else [`Error::InvalidArgument`]).
    pub fn add(&mut self, key: &[u8], seq: u64, value: Option<&[u8]>) -> Result<()> {
        self.w.add(self.fs, self.sealer, key, seq, value)
    }
}

/// What [`Store::check`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCheck {
    pub segments: u32,
    pub pages: u32,
    pub entries: u64,
    /// Unfolded entries held from the WAL (authenticated when the store opened).
    pub wal_entries: u32,
    /// Pages that failed authentication or do not parse.
    pub bad_pages: u32,
    /// Keys out of order, counts or sequence numbers that disagree with the manifest, or a
    /// tree that does not lead to the segment's first and last keys.
    pub inconsistencies: u32,
    /// Segment files the manifest lists and littlefs does not have.
    pub missing_files: u32,
}

impl StoreCheck {
    pub fn is_clean(&self) -> bool {
        self.bad_pages == 0 && self.inconsistencies == 0 && self.missing_files == 0
    }
}

/// Walk one segment front to back by its length prefixes.
fn check_segment<D: BlockDevice>(
    fs: &mut Fs<D>,
    sealer: &Sealer,
    fid: FileId,
    seg: &SegMeta,
    max_record: usize,
    page: &mut Vec<u8>,
    report: &mut StoreCheck,
) -> Result<()> {
    let mut off = 0u32;
    let mut entries = 0u64;
    let mut last: Option<Vec<u8>> = None;
    let mut bad = false;
    while off < seg.bytes {
        let len = match segment::read_record_len(fs, fid, off) {
            Ok(l) if l > 0 && u64::from(off) + u64::from(l) <= u64::from(seg.bytes) => l,
            Ok(_) | Err(Error::Corrupt) => {
                // No way to find the next page: the rest of the file is unreadable.
                report.bad_pages += 1;
                bad = true;
                break;
            }
            Err(e) => return Err(e),
        };
        report.pages += 1;
        let at = segment::PageAt {
            file: seg.file,
            fid,
            off,
            len,
        };
        off += len;
        match segment::read_page(fs, sealer, at, max_record, page) {
            Ok(_) => {}
            Err(Error::Corrupt | Error::WrongKey) => {
                report.bad_pages += 1;
                bad = true;
                continue;
            }
            Err(e) => return Err(e),
        }
        let parsed = (|| {
            let (kind, count) = format::page_header(page)?;
            let mut r = format::Reader::new(page.get(format::PAGE_HEADER..).ok_or(Error::Corrupt)?);
            for _ in 0..count {
                if kind == format::PAGE_LEAF {
                    let e = format::read_leaf_entry(&mut r)?;
                    if last.as_deref().is_some_and(|l| e.key <= l) || e.seq > seg.max_seq {
                        report.inconsistencies += 1;
                    }
                    last = Some(e.key.to_vec());
                    entries += 1;
                } else {
                    format::read_internal_entry(&mut r)?;
                }
            }
            if !r.is_empty() {
                return Err(Error::Corrupt);
            }
            Ok(())
        })();
        if parsed.is_err() {
            report.bad_pages += 1;
            bad = true;
        }
    }
    report.entries += entries;
    if !bad {
        if entries != u64::from(seg.entries) {
            report.inconsistencies += 1;
        }
        // The tree must lead to both ends.
        for key in [&seg.min_key, &seg.max_key] {
            match segment::get(fs, sealer, fid, seg, key, max_record, page) {
                Ok(Some(_)) => {}
                Ok(None) | Err(Error::Corrupt) => report.inconsistencies += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// A segment file written by a merge, not yet installed.
struct Written {
    file: u32,
    /// None: the merge produced no entries (the caller removes the empty file).
    meta: Option<SegMeta>,
    /// Highest sequence number of a deletion or purge the merge discarded (0: none).
    discarded: u64,
}

fn validate(cfg: &StoreConfig) -> Result<()> {
    let ok = cfg.page_size >= 64
        && cfg.wal_slots >= 2
        && cfg.frame_max > FRAME_HEADER + 64
        && cfg.frame_max <= ATTR_MAX
        && cfg.tier_fanout >= 2
        && cfg.max_segments >= cfg.tier_fanout
        && cfg.max_record >= cfg.page_size;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// Largest root record: header, a full manifest and the tag.
fn max_root_len(_cfg: &StoreConfig) -> usize {
    format::ROOT_HEADER + 64 + (MAX_SEGMENTS_ON_FLASH + 1) * (40 + 2 * 300) + 64
}

/// A k-way merge of the memtable (optionally) and a range of segments, newest first: for each
/// key the newest version wins. Yields tombstones as `None` so merges can keep them.
struct Merged {
    /// Next memtable key to yield from (None: memtable not part of this merge or exhausted).
    mem_from: Option<Vec<u8>>,
    cursors: Vec<segment::Cursor>,
}

impl Merged {
    fn next<D: BlockDevice>(&mut self, store: &mut Store<D>) -> Result<Option<format::OwnedEntry>> {
        // The smallest key among all sources.
        let mut best: Option<Vec<u8>> = None;
        let mem_entry = match &self.mem_from {
            Some(from) => store
                .mem
                .range(from.clone()..)
                .next()
                .map(|(k, v)| (k.clone(), v.clone())),
            None => None,
        };
        if let Some((k, _)) = &mem_entry {
            best = Some(k.clone());
        }
        for c in &self.cursors {
            if let Some((k, _, _)) = c.peek()? {
                if best.as_deref().is_none_or(|b| k < b) {
                    best = Some(k.to_vec());
                }
            }
        }
        let Some(key) = best else { return Ok(None) };
        // Take the newest version and step every source past this key.
        let mut newest: Option<(u64, Option<Vec<u8>>)> = None;
        if let Some((k, v)) = mem_entry {
            if k == key {
                newest = Some(v);
                let mut next = k;
                next.push(0);
                self.mem_from = Some(next);
            }
        }
        for c in &mut self.cursors {
            let hit = match c.peek()? {
                Some((k, seq, v)) if k == key.as_slice() => {
                    if newest.is_none() {
                        newest = Some((seq, v.map(|v| v.to_vec())));
                    }
                    true
                }
                _ => false,
            };
            if hit {
                c.advance(&mut store.fs, &store.sealer, store.cfg.max_record)?;
            }
        }
        let (seq, value) = newest.unwrap_or((0, None));
        Ok(Some((key, seq, value)))
    }

    /// Done with the cursors: let the open-file LRU shrink back to its bound.
    fn release<D: BlockDevice>(self, store: &mut Store<D>) {
        drop(self.cursors);
        // Closing a read-only file cannot lose data; an error here resurfaces on next use.
        let _ = store.trim_open();
    }
}
