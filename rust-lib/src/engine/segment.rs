//! Segments: immutable sorted runs of entries, one littlefs file each, written once front to
//! back and never modified. Pages are sealed one by one; leaves come in key order in the file,
//! and a static B+tree of internal pages (written bottom-up as leaves fill) indexes them, with
//! its root written last. A point lookup reads one page per tree level; a scan reads leaves in
//! file order and skips internal pages.

use crate::crypto::Sealer;
use crate::flash::BlockDevice;
use crate::format::{
    self, Reader, SegMeta, PAGE_HEADER, PAGE_INTERNAL, PAGE_LEAF, PAGE_LEN_PREFIX,
};
use crate::lfs::{FileId, Fs};
use crate::{Error, Result};
use alloc::vec::Vec;

/// Longest tree a lookup will follow before calling the segment corrupt (a hostile image could
/// otherwise make a lookup loop).
const MAX_DEPTH: usize = 12;

/// The littlefs path of segment file `n`: `/s` and eight hex digits.
pub struct SegPath([u8; 10]);

impl SegPath {
    pub fn new(n: u32) -> Self {
        let mut p = [0u8; 10];
        p[0] = b'/';
        p[1] = b's';
        for (i, slot) in p[2..].iter_mut().enumerate() {
            let nibble = (n >> (28 - 4 * i)) & 0xF;
            *slot = b"0123456789abcdef"[nibble as usize];
        }
        SegPath(p)
    }
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into the buffer.
        core::str::from_utf8(&self.0).unwrap_or("/s")
    }
}

/// Where a page record is: segment file number, its open handle, offset and whole length.
#[derive(Clone, Copy)]
pub struct PageAt {
    pub file: u32,
    pub fid: FileId,
    pub off: u32,
    pub len: u32,
}

/// Read the page record `at` into `buf` and open it; returns the plaintext page in `buf[..n]`.
pub fn read_page<D: BlockDevice>(
    fs: &mut Fs<D>,
    sealer: &Sealer,
    at: PageAt,
    max_record: usize,
    buf: &mut Vec<u8>,
) -> Result<usize> {
    let PageAt {
        file,
        fid,
        off,
        len,
    } = at;
    let len = len as usize;
    if len < PAGE_LEN_PREFIX + PAGE_HEADER + sealer.overhead() || len > max_record {
        return Err(Error::Corrupt);
    }
    buf.clear();
    buf.resize(len, 0);
    let got = fs.read_at(fid, off, buf)?;
    if got != len {
        return Err(Error::Corrupt);
    }
    let prefix = buf.get(..PAGE_LEN_PREFIX).ok_or(Error::Corrupt)?;
    let stored = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if stored != len {
        return Err(Error::Corrupt);
    }
    let body = buf.get_mut(PAGE_LEN_PREFIX..).ok_or(Error::Corrupt)?;
    let n = sealer.open(&format::page_aad(file, off), body)?;
    buf.copy_within(PAGE_LEN_PREFIX..PAGE_LEN_PREFIX + n, 0);
    buf.truncate(n);
    Ok(n)
}

/// Read the length prefix of the page record at `off`.
pub fn read_record_len<D: BlockDevice>(fs: &mut Fs<D>, fid: FileId, off: u32) -> Result<u32> {
    let mut p = [0u8; PAGE_LEN_PREFIX];
    if fs.read_at(fid, off, &mut p)? != PAGE_LEN_PREFIX {
        return Err(Error::Corrupt);
    }
    Ok(u32::from_le_bytes(p))
}

/// Descend from the root to the leaf that may hold `key`; leaves the plaintext leaf in `page`
/// and returns the leaf's (offset, record length).
fn descend<D: BlockDevice>(
    fs: &mut Fs<D>,
    sealer: &Sealer,
    fid: FileId,
    seg: &SegMeta,
    key: &[u8],
    max_record: usize,
    page: &mut Vec<u8>,
) -> Result<(u32, u32)> {
    let (mut off, mut len) = (seg.root_off, seg.root_len);
    for _ in 0..MAX_DEPTH {
        if u64::from(off) + u64::from(len) > u64::from(seg.bytes) {
            return Err(Error::Corrupt);
        }
        let at = PageAt {
            file: seg.file,
            fid,
            off,
            len,
        };
        read_page(fs, sealer, at, max_record, page)?;
        let (kind, count) = format::page_header(page)?;
        if kind == PAGE_LEAF {
            return Ok((off, len));
        }
        // The child to follow: the last one whose first key is <= key (the first if none is).
        let mut r = Reader::new(page.get(PAGE_HEADER..).ok_or(Error::Corrupt)?);
        let mut child = None;
        for i in 0..count {
            let e = format::read_internal_entry(&mut r)?;
            if i == 0 || e.first_key <= key {
                child = Some((e.off, e.len));
            } else {
                break;
            }
        }
        let (o, l) = child.ok_or(Error::Corrupt)?;
        // Children are always written before their parent.
        if o >= off {
            return Err(Error::Corrupt);
        }
        off = o;
        len = l;
    }
    Err(Error::Corrupt)
}

/// Look `key` up in one segment: `Ok(None)` absent, `Ok(Some(None))` deleted here,
/// `Ok(Some(Some(v)))` present.
pub fn get<D: BlockDevice>(
    fs: &mut Fs<D>,
    sealer: &Sealer,
    fid: FileId,
    seg: &SegMeta,
    key: &[u8],
    max_record: usize,
    page: &mut Vec<u8>,
) -> Result<Option<Option<Vec<u8>>>> {
    if key < seg.min_key.as_slice() || key > seg.max_key.as_slice() {
        return Ok(None);
    }
    descend(fs, sealer, fid, seg, key, max_record, page)?;
    let (_, count) = format::page_header(page)?;
    let mut r = Reader::new(page.get(PAGE_HEADER..).ok_or(Error::Corrupt)?);
    for _ in 0..count {
        let e = format::read_leaf_entry(&mut r)?;
        match e.key.cmp(key) {
            core::cmp::Ordering::Less => continue,
            core::cmp::Ordering::Equal => return Ok(Some(e.value.map(|v| v.to_vec()))),
            core::cmp::Ordering::Greater => break,
        }
    }
    Ok(None)
}

/// A forward cursor over one segment's entries, holding one decoded leaf page.
pub struct Cursor {
    file: u32,
    fid: FileId,
    bytes: u32,
    page: Vec<u8>,
    /// Parse position in `page` of the current entry, entries left in the page.
    pos: usize,
    left: u16,
    /// File offset of the record after the current leaf.
    next_off: u32,
    done: bool,
    /// Salvage mode: skip pages that fail authentication instead of failing.
    tolerant: bool,
    skipped: u32,
}

impl Cursor {
    /// A cursor positioned at the first entry with key >= `start`.
    pub fn seek<D: BlockDevice>(
        fs: &mut Fs<D>,
        sealer: &Sealer,
        fid: FileId,
        seg: &SegMeta,
        start: &[u8],
        max_record: usize,
    ) -> Result<Self> {
        let mut c = Cursor {
            file: seg.file,
            fid,
            bytes: seg.bytes,
            page: Vec::new(),
            pos: PAGE_HEADER,
            left: 0,
            next_off: 0,
            done: false,
            tolerant: false,
            skipped: 0,
        };
        let (off, len) = descend(fs, sealer, fid, seg, start, max_record, &mut c.page)?;
        c.next_off = off.checked_add(len).ok_or(Error::Corrupt)?;
        let (_, count) = format::page_header(&c.page)?;
        c.left = count;
        // Skip entries below `start` in this leaf.
        while let Some((k, _, _)) = c.peek()? {
            if k >= start {
                break;
            }
            c.advance_in_page()?;
        }
        if c.left == 0 {
            c.load_next_leaf(fs, sealer, max_record)?;
        }
        Ok(c)
    }

    /// A salvage cursor from the first page, reading leaves in file order and skipping pages
    /// that fail authentication or do not parse (counted by [`Cursor::skipped`]). It stops
    /// at a length prefix that cannot be right, as nothing after it can be located.
    pub fn tolerant<D: BlockDevice>(
        fs: &mut Fs<D>,
        sealer: &Sealer,
        fid: FileId,
        seg: &SegMeta,
        max_record: usize,
    ) -> Result<Self> {
        let mut c = Cursor {
            file: seg.file,
            fid,
            bytes: seg.bytes,
            page: Vec::new(),
            pos: PAGE_HEADER,
            left: 0,
            next_off: 0,
            done: false,
            tolerant: true,
            skipped: 0,
        };
        c.load_next_leaf(fs, sealer, max_record)?;
        Ok(c)
    }

    /// Pages a tolerant cursor skipped.
    pub fn skipped(&self) -> u32 {
        self.skipped
    }

    /// The current entry, if any.
    pub fn peek(&self) -> Result<Option<format::Entry<'_>>> {
        if self.done || self.left == 0 {
            return Ok(None);
        }
        let rest = self.page.get(self.pos..).ok_or(Error::Corrupt)?;
        let e = format::read_leaf_entry(&mut Reader::new(rest))?;
        Ok(Some((e.key, e.seq, e.value)))
    }

    fn advance_in_page(&mut self) -> Result<()> {
        let rest = self.page.get(self.pos..).ok_or(Error::Corrupt)?;
        let mut r = Reader::new(rest);
        format::read_leaf_entry(&mut r)?;
        self.pos += r.pos();
        self.left = self.left.saturating_sub(1);
        Ok(())
    }

    /// In salvage mode, whether every entry of the loaded leaf parses in order.
    fn leaf_parses(&self) -> bool {
        let Some(rest) = self.page.get(PAGE_HEADER..) else {
            return false;
        };
        let mut r = Reader::new(rest);
        let mut last: Option<&[u8]> = None;
        for _ in 0..self.left {
            match format::read_leaf_entry(&mut r) {
                Ok(e) if last.is_none_or(|l| e.key > l) => last = Some(e.key),
                _ => return false,
            }
        }
        true
    }

    /// Move past the current entry.
    pub fn advance<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        max_record: usize,
    ) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if self.left > 0 {
            self.advance_in_page()?;
        }
        if self.left == 0 {
            self.load_next_leaf(fs, sealer, max_record)?;
        }
        Ok(())
    }

    /// Load the next leaf in file order, skipping internal pages.
    fn load_next_leaf<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        max_record: usize,
    ) -> Result<()> {
        loop {
            if self.next_off >= self.bytes {
                self.done = true;
                return Ok(());
            }
            let off = self.next_off;
            let len = match read_record_len(fs, self.fid, off) {
                Ok(l) => l,
                Err(Error::Corrupt) if self.tolerant => {
                    self.skipped += 1;
                    self.done = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if len == 0 || u64::from(off) + u64::from(len) > u64::from(self.bytes) {
                if self.tolerant {
                    self.skipped += 1;
                    self.done = true;
                    return Ok(());
                }
                return Err(Error::Corrupt);
            }
            let at = PageAt {
                file: self.file,
                fid: self.fid,
                off,
                len,
            };
            self.next_off = off.checked_add(len).ok_or(Error::Corrupt)?;
            match read_page(fs, sealer, at, max_record, &mut self.page) {
                Ok(_) => {}
                Err(Error::Corrupt | Error::WrongKey) if self.tolerant => {
                    self.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let (kind, count) = match format::page_header(&self.page) {
                Ok(h) => h,
                Err(_) if self.tolerant => {
                    self.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if kind == PAGE_LEAF && count > 0 {
                self.pos = PAGE_HEADER;
                self.left = count;
                if self.tolerant && !self.leaf_parses() {
                    self.skipped += 1;
                    self.left = 0;
                    continue;
                }
                return Ok(());
            }
        }
    }
}

/// One level of the index being built: a partly filled internal page.
struct Level {
    body: Vec<u8>,
    count: u16,
    first_key: Vec<u8>,
    /// Whether a page of this level has been written already (so it is not the root).
    written: bool,
    /// The last entry added, which is the root when it is alone on the top level.
    last: (u32, u32),
}

/// Writes one segment file front to back.
pub struct Writer {
    file: u32,
    fid: FileId,
    off: u32,
    page_size: usize,
    leaf: Vec<u8>,
    leaf_count: u16,
    leaf_first: Vec<u8>,
    levels: Vec<Level>,
    record: Vec<u8>,
    entries: u32,
    min_key: Vec<u8>,
    max_key: Vec<u8>,
    max_seq: u64,
    tombstones: u32,
}

impl Writer {
    pub fn new(file: u32, fid: FileId, page_size: usize) -> Self {
        Writer {
            file,
            fid,
            off: 0,
            page_size,
            leaf: Vec::new(),
            leaf_count: 0,
            leaf_first: Vec::new(),
            levels: Vec::new(),
            record: Vec::new(),
            entries: 0,
            min_key: Vec::new(),
            max_key: Vec::new(),
            max_seq: 0,
            tombstones: 0,
        }
    }

    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Add the next entry; keys must come in strictly increasing order.
    pub fn add<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        key: &[u8],
        seq: u64,
        value: Option<&[u8]>,
    ) -> Result<()> {
        if self.entries > 0 && key <= self.max_key.as_slice() {
            return Err(Error::InvalidArgument);
        }
        let len = format::leaf_entry_len(key, seq, value);
        if self.leaf_count > 0
            && (PAGE_HEADER + self.leaf.len() + len > self.page_size || self.leaf_count == u16::MAX)
        {
            self.flush_leaf(fs, sealer)?;
        }
        if self.leaf_count == 0 {
            self.leaf_first.clear();
            self.leaf_first.extend_from_slice(key);
        }
        format::put_leaf_entry(&mut self.leaf, key, seq, value);
        self.leaf_count += 1;
        self.max_seq = self.max_seq.max(seq);
        if value.is_none() {
            self.tombstones = self.tombstones.saturating_add(1);
        }
        if self.entries == 0 {
            self.min_key = key.to_vec();
        }
        self.max_key.clear();
        self.max_key.extend_from_slice(key);
        self.entries = self.entries.checked_add(1).ok_or(Error::TooLarge)?;
        Ok(())
    }

    fn write_page<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        kind: u8,
        count: u16,
        body_of: impl FnOnce(&Self) -> &[u8],
    ) -> Result<(u32, u32)> {
        let off = self.off;
        let mut rec = core::mem::take(&mut self.record);
        rec.clear();
        rec.extend_from_slice(&[0; PAGE_LEN_PREFIX]);
        rec.push(kind);
        rec.extend_from_slice(&count.to_le_bytes());
        rec.extend_from_slice(body_of(self));
        let plain = rec.len() - PAGE_LEN_PREFIX;
        rec.resize(rec.len() + sealer.overhead(), 0);
        let sealed = sealer.seal(
            &format::page_aad(self.file, off),
            &mut rec[PAGE_LEN_PREFIX..],
            plain,
        )?;
        let total = PAGE_LEN_PREFIX + sealed;
        rec.truncate(total);
        let total32 = u32::try_from(total).map_err(|_| Error::TooLarge)?;
        rec[..PAGE_LEN_PREFIX].copy_from_slice(&total32.to_le_bytes());
        let res = fs.write(self.fid, &rec);
        self.record = rec;
        res?;
        self.off = off.checked_add(total32).ok_or(Error::TooLarge)?;
        Ok((off, total32))
    }

    fn flush_leaf<D: BlockDevice>(&mut self, fs: &mut Fs<D>, sealer: &Sealer) -> Result<()> {
        let count = self.leaf_count;
        let (off, len) = self.write_page(fs, sealer, PAGE_LEAF, count, |w| &w.leaf)?;
        self.leaf.clear();
        self.leaf_count = 0;
        let first = core::mem::take(&mut self.leaf_first);
        let r = self.push_index(fs, sealer, 0, &first, off, len);
        self.leaf_first = first;
        r
    }

    /// Write index level `level`'s pending page and index it one level up.
    fn flush_level<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        level: usize,
    ) -> Result<()> {
        let count = self.levels.get(level).ok_or(Error::Corrupt)?.count;
        let (off, len) =
            self.write_page(fs, sealer, PAGE_INTERNAL, count, |w| &w.levels[level].body)?;
        let lv = &mut self.levels[level];
        lv.written = true;
        lv.body.clear();
        lv.count = 0;
        let up_key = core::mem::take(&mut lv.first_key);
        self.push_index(fs, sealer, level + 1, &up_key, off, len)
    }

    fn push_index<D: BlockDevice>(
        &mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        level: usize,
        key: &[u8],
        off: u32,
        len: u32,
    ) -> Result<()> {
        let mut key = key.to_vec();
        loop {
            if level >= MAX_DEPTH {
                return Err(Error::TooLarge);
            }
            if self.levels.len() <= level {
                self.levels.push(Level {
                    body: Vec::new(),
                    count: 0,
                    first_key: Vec::new(),
                    written: false,
                    last: (0, 0),
                });
            }
            let elen = format::varint_len(key.len() as u64) + key.len() + 10;
            let lv = &self.levels[level];
            if lv.count > 0
                && (PAGE_HEADER + lv.body.len() + elen > self.page_size || lv.count == u16::MAX)
            {
                // This level's page is full: write it and index it one level up, then retry.
                self.flush_level(fs, sealer, level)?;
                continue;
            }
            let lv = &mut self.levels[level];
            if lv.count == 0 {
                lv.first_key = core::mem::take(&mut key);
                format::put_internal_entry(&mut lv.body, &lv.first_key, off, len);
            } else {
                format::put_internal_entry(&mut lv.body, &key, off, len);
            }
            lv.count += 1;
            lv.last = (off, len);
            // One entry is added per call; the loop only retries after a flush.
            return Ok(());
        }
    }

    /// Write the remaining pages and return the segment's manifest entry, or None when no
    /// entry was added (the caller removes the file).
    pub fn finish<D: BlockDevice>(
        mut self,
        fs: &mut Fs<D>,
        sealer: &Sealer,
        level: u8,
    ) -> Result<Option<SegMeta>> {
        if self.entries == 0 {
            return Ok(None);
        }
        if self.leaf_count > 0 {
            self.flush_leaf(fs, sealer)?;
        }
        let mut l = 0;
        let root = loop {
            let top = l + 1 == self.levels.len();
            let lv = self.levels.get(l).ok_or(Error::Corrupt)?;
            if top && !lv.written && lv.count == 1 {
                break lv.last;
            }
            if lv.count > 0 {
                self.flush_level(fs, sealer, l)?;
            }
            l += 1;
        };
        Ok(Some(SegMeta {
            file: self.file,
            level,
            bytes: self.off,
            entries: self.entries,
            root_off: root.0,
            root_len: root.1,
            min_key: self.min_key,
            max_key: self.max_key,
            max_seq: self.max_seq,
            tombstones: self.tombstones,
        }))
    }
}
