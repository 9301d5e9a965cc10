//! Segments: immutable sorted runs of entries, one littlefs file each, written once front to
//! back and never modified. Pages are sealed one by one; leaves come in key order in the file,
//! and a static B+tree of internal pages (written bottom-up as leaves fill) indexes them, with
//! its root written last. A point lookup reads one page per tree level; a scan reads leaves in
//! file order and skips internal pages.
//!
//! With the feature `compress`, a page whose entries shrink under LZ4 is stored compressed (a
//! flag in its sealed kind byte); every reader goes through [`read_page`], which expands it.

use crate::crypto::Sealer;
use crate::flash::BlockDevice;
use crate::format::{
    self, Reader, SegMeta, PAGE_COMPRESSED, PAGE_HEADER, PAGE_INTERNAL, PAGE_LEAF, PAGE_LEN_PREFIX,
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
    open_record(sealer, file, off, max_record, buf, COMPRESS)
}

/// Whether this build writes compressed pages and can read them.
const COMPRESS: bool = cfg!(feature = "compress");

/// The LZ4 hash table the writer keeps between pages (8 KiB, allocated at the first page).
#[cfg(feature = "compress")]
type Table = lz4_flex::block::CompressTable;
#[cfg(not(feature = "compress"))]
type Table = core::convert::Infallible;

/// Largest plaintext page a record of `max_record` bytes carries uncompressed. A compressed
/// page may not expand beyond it: compression never changes which pages a configuration can
/// read, and a hostile length cannot make a read allocate more.
fn max_plain(sealer: &Sealer, max_record: usize) -> usize {
    max_record.saturating_sub(PAGE_LEN_PREFIX + sealer.overhead())
}

/// Check and open the whole page record in `buf` (length prefix included), sealed for `file`
/// at `off`, and leave the plaintext page in `buf[..n]`, expanded if it was stored compressed.
/// `compress` says whether compressed pages are readable: without it they are refused with
/// [`Error::Unsupported`] rather than misread. The buffer grows to at most the record plus
/// [`max_plain`].
fn open_record(
    sealer: &Sealer,
    file: u32,
    off: u32,
    max_record: usize,
    buf: &mut Vec<u8>,
    compress: bool,
) -> Result<usize> {
    let len = buf.len();
    let prefix: [u8; PAGE_LEN_PREFIX] = buf
        .get(..PAGE_LEN_PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or(Error::Corrupt)?;
    if u32::from_le_bytes(prefix) as usize != len {
        return Err(Error::Corrupt);
    }
    let body = buf.get_mut(PAGE_LEN_PREFIX..).ok_or(Error::Corrupt)?;
    let n = sealer.open(&format::page_aad(file, off), body)?;
    let end = PAGE_LEN_PREFIX.checked_add(n).ok_or(Error::Corrupt)?;
    buf.truncate(end);
    let head: [u8; PAGE_HEADER] = buf
        .get(PAGE_LEN_PREFIX..PAGE_LEN_PREFIX + PAGE_HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or(Error::Corrupt)?;
    let [kind, c0, c1] = head;
    if kind & PAGE_COMPRESSED == 0 {
        buf.copy_within(PAGE_LEN_PREFIX..end, 0);
        buf.truncate(n);
        return Ok(n);
    }
    let kind = kind & !PAGE_COMPRESSED;
    if kind != PAGE_LEAF && kind != PAGE_INTERNAL {
        return Err(Error::Corrupt);
    }
    if !compress {
        return Err(Error::Unsupported);
    }
    let packed = buf
        .get(PAGE_LEN_PREFIX + PAGE_HEADER..)
        .ok_or(Error::Corrupt)?;
    let mut r = Reader::new(packed);
    let raw = usize::try_from(r.varint()?).map_err(|_| Error::Corrupt)?;
    let lz_at = PAGE_LEN_PREFIX + PAGE_HEADER + r.pos();
    // The bound is checked before anything is allocated for the expanded page.
    let out_len = PAGE_HEADER
        .checked_add(raw)
        .filter(|&l| l <= max_plain(sealer, max_record))
        .ok_or(Error::Corrupt)?;
    buf.resize(end + out_len, 0);
    let (src, dst) = buf.split_at_mut_checked(end).ok_or(Error::Corrupt)?;
    let (dst_head, dst_body) = dst
        .split_at_mut_checked(PAGE_HEADER)
        .ok_or(Error::Corrupt)?;
    dst_head.copy_from_slice(&[kind, c0, c1]);
    let lz = src.get(lz_at..).ok_or(Error::Corrupt)?;
    if lz4_decode(lz, dst_body)? != raw {
        return Err(Error::Corrupt);
    }
    buf.copy_within(end.., 0);
    buf.truncate(out_len);
    Ok(out_len)
}

/// Expand the LZ4 block `src` into `dst`; returns the bytes written. Any malformed block
/// (including one that would overrun `dst`) is [`Error::Corrupt`].
#[cfg(feature = "compress")]
fn lz4_decode(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    lz4_flex::block::decompress_into(src, dst).map_err(|_| Error::Corrupt)
}

#[cfg(not(feature = "compress"))]
fn lz4_decode(_src: &[u8], _dst: &mut [u8]) -> Result<usize> {
    Err(Error::Unsupported)
}

/// Append the compressed form of a page (`kind` with [`PAGE_COMPRESSED`], `count`, the length
/// of `body`, the LZ4 block of `body`) to `rec` if it is shorter than the plain page; returns
/// whether it did (otherwise `rec` is left as it was).
#[cfg(feature = "compress")]
fn pack(table: &mut Table, kind: u8, count: u16, body: &[u8], rec: &mut Vec<u8>) -> bool {
    // The 8 KiB table serves inputs below 64 KiB; larger pages stay plain rather than have
    // the encoder allocate its 16 KiB one.
    if body.len() >= usize::from(u16::MAX) {
        return false;
    }
    let head = rec.len();
    rec.push(kind | PAGE_COMPRESSED);
    rec.extend_from_slice(&count.to_le_bytes());
    format::put_varint(rec, body.len() as u64);
    let at = rec.len();
    rec.resize(at + lz4_flex::block::get_maximum_output_size(body.len()), 0);
    let packed = rec
        .get_mut(at..)
        .and_then(|out| lz4_flex::block::compress_into_with_table(body, out, table).ok());
    match packed {
        Some(n) if at + n < head + PAGE_HEADER + body.len() => {
            rec.truncate(at + n);
            true
        }
        _ => {
            rec.truncate(head);
            false
        }
    }
}

#[cfg(not(feature = "compress"))]
fn pack(table: &mut Table, _kind: u8, _count: u16, _body: &[u8], _rec: &mut Vec<u8>) -> bool {
    match *table {}
}

/// A fresh hash table for [`pack`], or None when this build does not compress.
#[cfg(feature = "compress")]
fn new_table() -> Option<Table> {
    Some(lz4_flex::block::CompressTable::small())
}

#[cfg(not(feature = "compress"))]
fn new_table() -> Option<Table> {
    None
}

/// Build in `rec` the record of a page sealed for `file` at `off`: the length prefix, then
/// the envelope of the page, with its entries compressed when `table` is given and that makes
/// the page shorter. Returns the record length.
#[allow(clippy::too_many_arguments)]
fn seal_record(
    sealer: &Sealer,
    file: u32,
    off: u32,
    kind: u8,
    count: u16,
    body: &[u8],
    table: Option<&mut Table>,
    rec: &mut Vec<u8>,
) -> Result<u32> {
    rec.clear();
    rec.extend_from_slice(&[0; PAGE_LEN_PREFIX]);
    let packed = table.is_some_and(|t| pack(t, kind, count, body, rec));
    if !packed {
        rec.push(kind);
        rec.extend_from_slice(&count.to_le_bytes());
        rec.extend_from_slice(body);
    }
    let plain = rec.len() - PAGE_LEN_PREFIX;
    rec.resize(rec.len() + sealer.overhead(), 0);
    let env = rec
        .get_mut(PAGE_LEN_PREFIX..)
        .ok_or(Error::InvalidArgument)?;
    let sealed = sealer.seal(&format::page_aad(file, off), env, plain)?;
    let total = PAGE_LEN_PREFIX + sealed;
    rec.truncate(total);
    let total32 = u32::try_from(total).map_err(|_| Error::TooLarge)?;
    if let Some(p) = rec.get_mut(..PAGE_LEN_PREFIX) {
        p.copy_from_slice(&total32.to_le_bytes());
    }
    Ok(total32)
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
    /// Whether pages are compressed when that shrinks them (the feature `compress`).
    compress: bool,
    table: Option<Table>,
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
            compress: COMPRESS,
            table: None,
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
        let mut table = match self.table.take() {
            Some(t) => Some(t),
            None if self.compress => new_table(),
            None => None,
        };
        let sealed = seal_record(
            sealer,
            self.file,
            off,
            kind,
            count,
            body_of(self),
            table.as_mut(),
            &mut rec,
        );
        self.table = table;
        let fid = self.fid;
        let res = sealed.and_then(|total32| {
            fs.write(fid, &rec)?;
            Ok(total32)
        });
        self.record = rec;
        let total32 = res?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use alloc::format;
    use alloc::vec;
    #[cfg(feature = "compress")]
    use proptest::prelude::*;

    const FILE: u32 = 7;
    const OFF: u32 = 1234;
    const MAX_RECORD: usize = 8192;

    fn sealers() -> [Sealer; 2] {
        [
            Sealer::plain(),
            Sealer::with_key(&MasterKey::from_bytes(&[0x42; 32])),
        ]
    }

    /// Leaf entries of sensor documents: the redundancy compression is for.
    fn sensor_leaf(n: u64) -> Vec<u8> {
        let mut body = Vec::new();
        for i in 0..n {
            let mut key = vec![3, 0, 0, 0, 1];
            key.extend_from_slice(&(100 + i).to_be_bytes());
            let value = format!(
                r#"{{"sensor":"temp-{:02}","site":"greenhouse-2","ts":{},"celsius":21.{},"status":"ok"}}"#,
                i % 4,
                1_700_000_000 + 60 * i,
                i % 10
            );
            format::put_leaf_entry(&mut body, &key, 1000 + i, Some(value.as_bytes()));
        }
        body
    }

    /// Bytes with no repeats for LZ4 to find.
    #[cfg(feature = "compress")]
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn page(kind: u8, count: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![kind];
        p.extend_from_slice(&count.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    /// The record of a page as the writer builds it, compressing when `compress` is set.
    fn seal(sealer: &Sealer, kind: u8, count: u16, body: &[u8], compress: bool) -> Vec<u8> {
        let mut table = if compress { new_table() } else { None };
        assert_eq!(table.is_some(), compress && COMPRESS);
        let mut rec = Vec::new();
        let len = seal_record(
            sealer,
            FILE,
            OFF,
            kind,
            count,
            body,
            table.as_mut(),
            &mut rec,
        )
        .expect("seal");
        assert_eq!(len as usize, rec.len());
        rec
    }

    /// A record sealing `plain` as it is: hand-made pages, valid envelopes.
    fn seal_plaintext(sealer: &Sealer, plain: &[u8]) -> Vec<u8> {
        let mut rec = vec![0; PAGE_LEN_PREFIX];
        rec.extend_from_slice(plain);
        rec.resize(rec.len() + sealer.overhead(), 0);
        let n = sealer
            .seal(
                &format::page_aad(FILE, OFF),
                &mut rec[PAGE_LEN_PREFIX..],
                plain.len(),
            )
            .unwrap();
        let total = (PAGE_LEN_PREFIX + n) as u32;
        rec[..PAGE_LEN_PREFIX].copy_from_slice(&total.to_le_bytes());
        rec
    }

    /// The plaintext inside a record's envelope, not expanded.
    fn stored_plaintext(sealer: &Sealer, rec: &[u8]) -> Vec<u8> {
        let mut b = rec[PAGE_LEN_PREFIX..].to_vec();
        let n = sealer.open(&format::page_aad(FILE, OFF), &mut b).unwrap();
        b.truncate(n);
        b
    }

    fn open(sealer: &Sealer, rec: &[u8], compress: bool) -> Result<Vec<u8>> {
        let mut buf = rec.to_vec();
        let n = open_record(sealer, FILE, OFF, MAX_RECORD, &mut buf, compress)?;
        assert_eq!(n, buf.len());
        Ok(buf)
    }

    /// A compressed page by hand: `count` 1, the claimed entries length, then `block`.
    fn packed_page(kind: u8, claimed: u64, block: &[u8]) -> Vec<u8> {
        let mut p = vec![kind | PAGE_COMPRESSED, 1, 0];
        format::put_varint(&mut p, claimed);
        p.extend_from_slice(block);
        p
    }

    /// An LZ4 block holding `lit` (under 15 bytes) as literals only.
    fn literal_block(lit: &[u8]) -> Vec<u8> {
        assert!(lit.len() < 15);
        let mut b = vec![(lit.len() as u8) << 4];
        b.extend_from_slice(lit);
        b
    }

    #[test]
    fn uncompressed_pages_open_in_every_build() {
        for sealer in &sealers() {
            let body = sensor_leaf(6);
            let rec = seal(sealer, PAGE_LEAF, 6, &body, false);
            assert_eq!(stored_plaintext(sealer, &rec)[0], PAGE_LEAF);
            for compress in [false, true] {
                assert_eq!(open(sealer, &rec, compress), Ok(page(PAGE_LEAF, 6, &body)));
            }
        }
    }

    #[test]
    fn a_build_without_the_feature_refuses_compressed_pages() {
        // The entries of a one-entry leaf, stored as an LZ4 block of literals.
        let mut entry = Vec::new();
        format::put_leaf_entry(&mut entry, b"k1", 9, Some(b"value"));
        let block = literal_block(&entry);
        for sealer in &sealers() {
            let rec = seal_plaintext(sealer, &packed_page(PAGE_LEAF, entry.len() as u64, &block));
            assert_eq!(open(sealer, &rec, false), Err(Error::Unsupported));
            // This build's own reader: expands with the feature, refuses without it.
            let mut buf = rec.clone();
            let got = read_back(sealer, &mut buf);
            if COMPRESS {
                assert_eq!(got, Ok(page(PAGE_LEAF, 1, &entry)));
            } else {
                assert_eq!(got, Err(Error::Unsupported));
            }
        }
    }

    /// What [`read_page`] does once the record is in the buffer.
    fn read_back(sealer: &Sealer, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
        let n = open_record(sealer, FILE, OFF, MAX_RECORD, buf, COMPRESS)?;
        Ok(buf[..n].to_vec())
    }

    #[test]
    fn a_compressed_flag_on_an_unknown_kind_is_corrupt() {
        for sealer in &sealers() {
            let rec = seal_plaintext(sealer, &packed_page(2, 1, &literal_block(b"x")));
            for compress in [false, true] {
                assert_eq!(open(sealer, &rec, compress), Err(Error::Corrupt));
            }
        }
    }

    #[cfg(feature = "compress")]
    #[test]
    fn compressible_pages_are_stored_compressed() {
        for sealer in &sealers() {
            for (kind, n) in [(PAGE_LEAF, 7u16), (PAGE_INTERNAL, 3)] {
                let body = sensor_leaf(u64::from(n));
                let rec = seal(sealer, kind, n, &body, true);
                let plain = seal(sealer, kind, n, &body, false);
                assert!(
                    rec.len() * 10 < plain.len() * 7,
                    "{} of {} bytes",
                    rec.len(),
                    plain.len()
                );
                assert_eq!(stored_plaintext(sealer, &rec)[0], kind | PAGE_COMPRESSED);
                assert_eq!(open(sealer, &rec, true), Ok(page(kind, n, &body)));
                // The same page read by a build without the feature.
                assert_eq!(open(sealer, &rec, false), Err(Error::Unsupported));
            }
        }
    }

    #[cfg(feature = "compress")]
    #[test]
    fn pages_that_do_not_shrink_are_stored_plain() {
        for sealer in &sealers() {
            for body in [
                noise(400),
                noise(3),
                Vec::new(),
                b"abcdefghijklmnop".to_vec(),
            ] {
                let rec = seal(sealer, PAGE_LEAF, 1, &body, true);
                assert_eq!(rec, seal(sealer, PAGE_LEAF, 1, &body, false));
                assert_eq!(stored_plaintext(sealer, &rec)[0], PAGE_LEAF);
                assert_eq!(open(sealer, &rec, true), Ok(page(PAGE_LEAF, 1, &body)));
            }
        }
    }

    #[cfg(feature = "compress")]
    #[test]
    fn every_byte_flip_of_a_compressed_record_is_rejected() {
        for sealer in &sealers() {
            let body = sensor_leaf(5);
            let rec = seal(sealer, PAGE_LEAF, 5, &body, true);
            assert_eq!(
                stored_plaintext(sealer, &rec)[0] & PAGE_COMPRESSED,
                PAGE_COMPRESSED
            );
            for i in 0..rec.len() {
                for mask in [0x01u8, 0x80, 0xFF] {
                    let mut bad = rec.clone();
                    bad[i] ^= mask;
                    for compress in [false, true] {
                        assert_eq!(
                            open(sealer, &bad, compress),
                            Err(Error::Corrupt),
                            "byte {i} ^ {mask:#x}"
                        );
                    }
                }
            }
        }
    }

    #[cfg(feature = "compress")]
    #[test]
    fn a_huge_claimed_size_is_rejected_before_allocating() {
        let block = literal_block(b"abc");
        for sealer in &sealers() {
            let bound = max_plain(sealer, MAX_RECORD) - PAGE_HEADER;
            for claimed in [
                u64::MAX,
                u64::MAX - 2,
                u64::from(u32::MAX),
                1 << 40,
                bound as u64 + 1,
            ] {
                let rec = seal_plaintext(sealer, &packed_page(PAGE_LEAF, claimed, &block));
                let mut buf = rec.clone();
                buf.shrink_to_fit();
                let cap = buf.capacity();
                assert_eq!(
                    open_record(sealer, FILE, OFF, MAX_RECORD, &mut buf, true),
                    Err(Error::Corrupt),
                    "claimed {claimed}"
                );
                assert_eq!(buf.capacity(), cap, "claimed {claimed}: the buffer grew");
            }
            // At the bound the claim is allowed, and fails only because the block is short.
            let rec = seal_plaintext(sealer, &packed_page(PAGE_LEAF, bound as u64, &block));
            assert_eq!(open(sealer, &rec, true), Err(Error::Corrupt));
        }
    }

    #[cfg(feature = "compress")]
    #[test]
    fn a_malformed_block_is_corrupt() {
        for sealer in &sealers() {
            let cases: [(u64, Vec<u8>); 8] = [
                // The claimed length differs from what the block holds.
                (4, literal_block(b"abc")),
                (2, literal_block(b"abc")),
                (0, literal_block(b"abc")),
                // No block at all; a token promising more literals than follow.
                (3, Vec::new()),
                (3, vec![0x30, b'a']),
                // A match at offset zero, and one reaching before the output.
                (9, vec![0x10, b'a', 0x00, 0x00]),
                (9, vec![0x10, b'a', 0x05, 0x00]),
                // A length extension byte missing.
                (40, vec![0xF0]),
            ];
            for (claimed, block) in cases {
                let rec = seal_plaintext(sealer, &packed_page(PAGE_LEAF, claimed, &block));
                assert_eq!(
                    open(sealer, &rec, true),
                    Err(Error::Corrupt),
                    "{claimed} {block:?}"
                );
            }
            // The page header cut short before the length varint.
            let rec = seal_plaintext(sealer, &[PAGE_LEAF | PAGE_COMPRESSED, 1, 0]);
            assert_eq!(open(sealer, &rec, true), Err(Error::Corrupt));
            let rec = seal_plaintext(sealer, &[PAGE_LEAF | PAGE_COMPRESSED, 1]);
            assert_eq!(open(sealer, &rec, true), Err(Error::Corrupt));
        }
    }

    #[cfg(feature = "compress")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the entries, what is written reads back as the plain page, and it is never
        /// longer than the plain record.
        #[test]
        fn pages_round_trip(
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..900),
                proptest::collection::vec(0u8..4, 0..900),
            ],
            count in any::<u16>(),
            leaf in any::<bool>(),
        ) {
            let kind = if leaf { PAGE_LEAF } else { PAGE_INTERNAL };
            for sealer in &sealers() {
                let rec = seal(sealer, kind, count, &body, true);
                let plain = seal(sealer, kind, count, &body, false);
                prop_assert!(rec.len() <= plain.len());
                prop_assert_eq!(open(sealer, &rec, true), Ok(page(kind, count, &body)));
            }
        }
    }
}
