//! Pure byte encodings: varints, the ordered key space, WAL mutations, segment pages and the
//! root record. No I/O here; every decoder treats its input as hostile and returns
//! [`Error::Corrupt`] instead of panicking. docs/SPEC.md describes each layout.

use crate::{Error, Result};
use alloc::vec::Vec;

// ---------------------------------------------------------------------------------------------
// Varints (LEB128, at most 10 bytes for a u64)

/// Append `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Corrupt)?;
        self.pos += 1;
        Ok(b)
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Corrupt)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Corrupt)?;
        self.pos = end;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                // Reject non-canonical overlong encodings' overflow bits in the last byte.
                if shift == 63 && b > 1 {
                    return Err(Error::Corrupt);
                }
                return Ok(v);
            }
        }
        Err(Error::Corrupt)
    }
    pub fn varint_u32(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?).map_err(|_| Error::Corrupt)
    }
    /// A varint length followed by that many bytes.
    pub fn blob(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| Error::Corrupt)?;
        self.bytes(n)
    }
}

pub fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

// ---------------------------------------------------------------------------------------------
// The ordered key space. One sorted space holds everything, so one WAL frame or segment can carry
// a transaction that touches catalogs, documents and key-value entries at once.

/// Catalog: collection and namespace names, the id counter, dropped-id markers.
pub const T_CATALOG: u8 = 0x01;
/// Documents: `T_DOC, coll_id (BE u32), doc_id (BE u64)`.
pub const T_DOC: u8 = 0x03;
/// Key-value entries: `T_KV, ns_id (BE u32), key bytes`.
pub const T_KV: u8 = 0x04;
/// Secondary index entries: `T_INDEX, index_id (BE u32), encoded values, doc_id (BE u64)`.
pub const T_INDEX: u8 = 0x05;
/// Expiry index: `T_TTL, expiry (BE u64), target key` (a document or KV key), empty value.
pub const T_TTL: u8 = 0x06;
/// Tag index: `T_TAG, owner kind, owner id (BE u32), tag, 0x00, item`, empty value; the item is
/// a document id (BE u64) for [`TAG_DOC`] owners, the raw key for [`TAG_KV`] owners.
pub const T_TAG: u8 = 0x07;

pub const CAT_COLLECTION: u8 = b'c';
pub const CAT_NAMESPACE: u8 = b'n';
pub const CAT_NEXT_ID: u8 = b'q';
pub const CAT_DROPPED: u8 = b'x';
/// Index definitions: `T_CATALOG, 'i', coll_id (BE u32), index name`.
pub const CAT_INDEX: u8 = b'i';
/// Set while an index is being built: its value names the collection and index ids.
pub const CAT_BUILDING: u8 = b'b';
/// A collection's schema: `T_CATALOG, 's', coll_id (BE u32)`.
pub const CAT_SCHEMA: u8 = b's';
/// The database time's persisted high-water mark: `T_CATALOG, 't'` -> varint time.
pub const CAT_TIME: u8 = b't';
/// How many expired items were physically removed: `T_CATALOG, 'e'` -> varint count.
pub const CAT_EXPIRED: u8 = b'e';
/// The database identity (16 bytes, made at the first backup).
pub const CAT_DB_ID: u8 = b'u';
/// The last backup taken or restored: kind u8, varint end seq, backup id (16), varint created.
pub const CAT_LAST_BACKUP: u8 = b'B';

/// The catalog key of index `name` on collection `coll`.
pub fn index_def_key(coll: u32, name: &[u8]) -> Vec<u8> {
    let mut k = alloc::vec![T_CATALOG, CAT_INDEX];
    k.extend_from_slice(&coll.to_be_bytes());
    k.extend_from_slice(name);
    k
}

/// The prefix of every index definition of collection `coll`.
pub fn index_defs_prefix(coll: u32) -> [u8; 6] {
    let c = coll.to_be_bytes();
    [T_CATALOG, CAT_INDEX, c[0], c[1], c[2], c[3]]
}

pub fn catalog_key(kind: u8, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + name.len());
    k.push(T_CATALOG);
    k.push(kind);
    k.extend_from_slice(name);
    k
}

pub fn next_id_key() -> Vec<u8> {
    alloc::vec![T_CATALOG, CAT_NEXT_ID]
}

pub fn dropped_key(id: u32) -> Vec<u8> {
    let mut k = alloc::vec![T_CATALOG, CAT_DROPPED];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The id under which a collection's metadata (next id, count) is stored: the last key of the
/// collection's document range. Written by every insert and delete, it sits next to the newest
/// documents, so a segment folded from a run of inserts spans only the new ids (plus this key)
/// and a point read skips segments by their key range.
pub const META_ID: u64 = u64::MAX;

pub fn coll_meta_key(coll: u32) -> Vec<u8> {
    doc_key(coll, META_ID)
}

/// The end (exclusive) of collection `coll`'s documents: its metadata key.
pub fn docs_end(coll: u32) -> Vec<u8> {
    doc_key(coll, META_ID)
}

pub fn doc_prefix(coll: u32) -> [u8; 5] {
    let c = coll.to_be_bytes();
    [T_DOC, c[0], c[1], c[2], c[3]]
}

pub fn doc_key(coll: u32, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.extend_from_slice(&doc_prefix(coll));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The document id of a document key, if `key` is one of collection `coll` (its metadata key
/// is not a document).
pub fn doc_id_of(coll: u32, key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&doc_prefix(coll)[..])?;
    let b: [u8; 8] = rest.try_into().ok()?;
    Some(u64::from_be_bytes(b)).filter(|id| *id != META_ID)
}

pub fn kv_prefix(ns: u32) -> [u8; 5] {
    let n = ns.to_be_bytes();
    [T_KV, n[0], n[1], n[2], n[3]]
}

pub fn kv_key(ns: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + key.len());
    k.extend_from_slice(&kv_prefix(ns));
    k.extend_from_slice(key);
    k
}

/// The owning collection, namespace or index id of a document, KV, index, expiry or tag key
/// (used to purge dropped ones).
pub fn owner_of(key: &[u8]) -> Option<u32> {
    let at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = key.get(i..i + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    };
    match key.first() {
        Some(&T_DOC) | Some(&T_KV) | Some(&T_INDEX) => at(1),
        // An expiry entry belongs to its target's owner.
        Some(&T_TTL) => match key.get(9) {
            Some(&T_DOC) | Some(&T_KV) => at(10),
            _ => None,
        },
        Some(&T_TAG) => at(2),
        _ => None,
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xFF {
            *last += 1;
            return Some(end);
        }
        end.pop();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Expiry and tag index keys.

/// The expiry entry of `target` (a document or KV key) expiring at `exp`.
pub fn ttl_key(exp: u64, target: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + target.len());
    k.push(T_TTL);
    k.extend_from_slice(&exp.to_be_bytes());
    k.extend_from_slice(target);
    k
}

/// The end (exclusive) of the expiry entries of items expired at time `now` (expiry <= now).
pub fn ttl_end(now: u64) -> Vec<u8> {
    match now.checked_add(1) {
        Some(n) => {
            let mut k = alloc::vec![T_TTL];
            k.extend_from_slice(&n.to_be_bytes());
            k
        }
        None => alloc::vec![T_TTL + 1],
    }
}

/// The expiry and target key of an expiry entry.
pub fn ttl_parts(key: &[u8]) -> Result<(u64, &[u8])> {
    if key.first() != Some(&T_TTL) {
        return Err(Error::Corrupt);
    }
    let exp: [u8; 8] = key
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Corrupt)?;
    let target = key.get(9..).ok_or(Error::Corrupt)?;
    if target.is_empty() {
        return Err(Error::Corrupt);
    }
    Ok((u64::from_be_bytes(exp), target))
}

/// Tag owner kind: a collection's documents.
pub const TAG_DOC: u8 = b'd';
/// Tag owner kind: a namespace's key-value entries.
pub const TAG_KV: u8 = b'k';
/// Most tags one document or KV entry carries.
pub const MAX_TAGS: usize = 8;
/// Longest tag (bytes).
pub const MAX_TAG_LEN: usize = 32;

/// Whether `tag` is 1..=[`MAX_TAG_LEN`] bytes of `[A-Za-z0-9_.:-]` (so never a 0x00, the tag
/// index's separator).
pub fn valid_tag(tag: &[u8]) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The prefix of every tag entry of one collection ([`TAG_DOC`]) or namespace ([`TAG_KV`]).
pub fn tag_prefix(kind: u8, owner: u32) -> [u8; 6] {
    let o = owner.to_be_bytes();
    [T_TAG, kind, o[0], o[1], o[2], o[3]]
}

/// The prefix of the entries of one tag of an owner.
pub fn tag_run_prefix(kind: u8, owner: u32, tag: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + tag.len());
    k.extend_from_slice(&tag_prefix(kind, owner));
    k.extend_from_slice(tag);
    k.push(0);
    k
}

/// The tag entry of `item` (a BE document id or a raw KV key) under `tag`.
pub fn tag_key(kind: u8, owner: u32, tag: &[u8], item: &[u8]) -> Vec<u8> {
    let mut k = tag_run_prefix(kind, owner, tag);
    k.extend_from_slice(item);
    k
}

/// The tag and item of a tag entry (the key minus its 6-byte owner prefix).
pub fn tag_parts(key: &[u8]) -> Result<(&[u8], &[u8])> {
    let rest = key.get(6..).ok_or(Error::Corrupt)?;
    let sep = rest.iter().position(|&b| b == 0).ok_or(Error::Corrupt)?;
    let tag = rest.get(..sep).ok_or(Error::Corrupt)?;
    let item = rest.get(sep + 1..).ok_or(Error::Corrupt)?;
    if !valid_tag(tag) || item.is_empty() {
        return Err(Error::Corrupt);
    }
    Ok((tag, item))
}

// ---------------------------------------------------------------------------------------------
// Records stored under keys.

/// A collection's metadata record (under [`coll_meta_key`]): its id counter, its exact totals
/// and its caps. Written in the same commit as every document write of the collection, so the
/// totals always agree with the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollMeta {
    /// The `_id` the next insert takes (ids are never reused).
    pub next_id: u64,
    /// Documents stored.
    pub count: u64,
    /// Sum of the stored record lengths (header + encoded body) of the documents.
    pub bytes: u64,
    /// Documents removed by a cap since the collection was created.
    pub evicted: u64,
    /// No document has a lower `_id` (a lower bound, raised by eviction): where the search
    /// for the oldest document starts, so it does not walk over the tombstones of evicted ones.
    pub first_id: u64,
    /// Most documents kept (0: no cap).
    pub max_docs: u64,
    /// Most bytes (as `bytes` counts them) kept (0: no cap).
    pub max_bytes: u64,
}

impl Default for CollMeta {
    fn default() -> Self {
        CollMeta {
            next_id: 1,
            count: 0,
            bytes: 0,
            evicted: 0,
            first_id: 1,
            max_docs: 0,
            max_bytes: 0,
        }
    }
}

impl CollMeta {
    /// Whether a cap applies to the collection.
    pub fn is_capped(&self) -> bool {
        self.max_docs != 0 || self.max_bytes != 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        for x in [
            self.next_id,
            self.count,
            self.bytes,
            self.evicted,
            self.first_id,
            self.max_docs,
            self.max_bytes,
        ] {
            put_varint(&mut v, x);
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        let m = CollMeta {
            next_id: r.varint()?,
            count: r.varint()?,
            bytes: r.varint()?,
            evicted: r.varint()?,
            first_id: r.varint()?,
            max_docs: r.varint()?,
            max_bytes: r.varint()?,
        };
        if !r.is_empty() || m.first_id > m.next_id || m.count >= m.next_id {
            return Err(Error::Corrupt);
        }
        Ok(m)
    }
}

pub fn encode_u32(v: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    put_varint(&mut out, u64::from(v));
    out
}

pub fn decode_u32(b: &[u8]) -> Result<u32> {
    let mut r = Reader::new(b);
    let v = r.varint_u32()?;
    if !r.is_empty() {
        return Err(Error::Corrupt);
    }
    Ok(v)
}

/// Document header flag: an expiry follows.
pub const DOC_HAS_EXPIRY: u8 = 0x01;

/// The header stored before a document's encoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocHeader {
    /// `_ver`: 1 on insert, +1 on every replace or patch.
    pub ver: u64,
    /// `_ts`: database time of the last write.
    pub ts: u64,
    /// `_exp`: database time from which the document is expired (None: never).
    pub exp: Option<u64>,
}

/// Document header: varint ver, varint ts, flags u8, [varint expiry].
pub fn encode_doc_header(out: &mut Vec<u8>, h: &DocHeader) {
    put_varint(out, h.ver);
    put_varint(out, h.ts);
    match h.exp {
        Some(e) => {
            out.push(DOC_HAS_EXPIRY);
            put_varint(out, e);
        }
        None => out.push(0),
    }
}

/// The header and the body bytes of a stored document.
pub fn decode_doc_header(b: &[u8]) -> Result<(DocHeader, &[u8])> {
    let mut r = Reader::new(b);
    let ver = r.varint()?;
    let ts = r.varint()?;
    let exp = match r.u8()? {
        0 => None,
        DOC_HAS_EXPIRY => Some(r.varint()?),
        _ => return Err(Error::Corrupt),
    };
    let body = b.get(r.pos()..).ok_or(Error::Corrupt)?;
    Ok((DocHeader { ver, ts, exp }, body))
}

/// KV envelope flag: an expiry follows.
pub const KV_HAS_EXPIRY: u8 = 0x01;
/// KV envelope flag: tags follow.
pub const KV_HAS_TAGS: u8 = 0x02;

/// A decoded KV envelope, borrowing the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRecord<'a> {
    pub exp: Option<u64>,
    pub tags: heapless::Vec<&'a [u8], MAX_TAGS>,
    pub value: &'a [u8],
}

/// KV envelope: flags u8, [varint expiry], [u8 count, count tag blobs], then the value.
pub fn encode_kv(out: &mut Vec<u8>, exp: Option<u64>, tags: &[&[u8]], value: &[u8]) {
    let mut flags = 0;
    if exp.is_some() {
        flags |= KV_HAS_EXPIRY;
    }
    if !tags.is_empty() {
        flags |= KV_HAS_TAGS;
    }
    out.push(flags);
    if let Some(e) = exp {
        put_varint(out, e);
    }
    if !tags.is_empty() {
        // Callers pass at most MAX_TAGS tags.
        out.push(tags.len().min(MAX_TAGS) as u8);
        for t in tags.iter().take(MAX_TAGS) {
            put_blob(out, t);
        }
    }
    out.extend_from_slice(value);
}

pub fn decode_kv(b: &[u8]) -> Result<KvRecord<'_>> {
    let mut r = Reader::new(b);
    let flags = r.u8()?;
    if flags & !(KV_HAS_EXPIRY | KV_HAS_TAGS) != 0 {
        return Err(Error::Corrupt);
    }
    let exp = if flags & KV_HAS_EXPIRY != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let mut tags = heapless::Vec::new();
    if flags & KV_HAS_TAGS != 0 {
        let n = r.u8()?;
        if n == 0 || usize::from(n) > MAX_TAGS {
            return Err(Error::Corrupt);
        }
        for _ in 0..n {
            let t = r.blob()?;
            if !valid_tag(t) || tags.contains(&t) {
                return Err(Error::Corrupt);
            }
            tags.push(t).map_err(|_| Error::Corrupt)?;
        }
    }
    let value = b.get(r.pos()..).ok_or(Error::Corrupt)?;
    Ok(KvRecord { exp, tags, value })
}

// ---------------------------------------------------------------------------------------------
// Mutations: the body of a transaction in the WAL. A transaction's mutations form one byte
// stream that is cut into WAL frames at arbitrary points.

pub const OP_PUT: u8 = 1;
pub const OP_DEL: u8 = 2;

pub fn put_mutation(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.push(OP_PUT);
            put_blob(out, key);
            put_blob(out, v);
        }
        None => {
            out.push(OP_DEL);
            put_blob(out, key);
        }
    }
}

/// A borrowed entry: key, commit sequence number and value (None = deleted).
pub type Entry<'a> = (&'a [u8], u64, Option<&'a [u8]>);
/// An owned entry: key, sequence number of the commit that wrote it, value (None = deleted).
pub type OwnedEntry = (Vec<u8>, u64, Option<Vec<u8>>);
/// A callback over mutations.
pub type MutationFn<'a> = dyn FnMut(&[u8], Option<&[u8]>) -> Result<()> + 'a;

/// Decode a whole mutation stream, calling `f(key, value)` for each (value None = delete).
pub fn for_each_mutation(stream: &[u8], f: &mut MutationFn<'_>) -> Result<()> {
    let mut r = Reader::new(stream);
    while !r.is_empty() {
        match r.u8()? {
            OP_PUT => {
                let k = r.blob()?;
                let v = r.blob()?;
                f(k, Some(v))?;
            }
            OP_DEL => {
                let k = r.blob()?;
                f(k, None)?;
            }
            _ => return Err(Error::Corrupt),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// WAL frames. Each frame is one littlefs custom attribute on the WAL holder file:
//   seq u64 LE | index u16 LE (position within its transaction) | flags u8 | sealed body
// The 11-byte header is authenticated as associated data.

pub const FRAME_HEADER: usize = 11;
pub const FRAME_COMMIT: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub seq: u64,
    pub index: u16,
    pub flags: u8,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER] {
        let mut h = [0u8; FRAME_HEADER];
        h[..8].copy_from_slice(&self.seq.to_le_bytes());
        h[8..10].copy_from_slice(&self.index.to_le_bytes());
        h[10] = self.flags;
        h
    }
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        Ok(FrameHeader {
            seq: u64::from_le_bytes(r.array()?),
            index: u16::from_le_bytes(r.array()?),
            flags: r.u8()?,
        })
    }
    pub fn is_commit(&self) -> bool {
        self.flags & FRAME_COMMIT != 0
    }
}

/// Associated data binding a WAL frame body to its header.
pub fn frame_aad(header: &[u8; FRAME_HEADER]) -> [u8; 4 + FRAME_HEADER] {
    let mut a = [0u8; 4 + FRAME_HEADER];
    a[..4].copy_from_slice(b"wal1");
    a[4..].copy_from_slice(header);
    a
}

// ---------------------------------------------------------------------------------------------
// Segment pages. A segment file is a sequence of `len u32 LE | sealed page` records. A page is
//   kind u8 | count u16 LE | entries
// leaf entry:     key blob | flag u8 (0 put, 1 tombstone) | [value blob]
// internal entry: first-key blob | child offset varint | child length varint
// A compressed page (feature `compress`) sets PAGE_COMPRESSED in the kind byte and stores
//   kind | 0x80 u8 | count u16 LE | entries length varint | LZ4 block of the entries

pub const PAGE_LEAF: u8 = 0;
pub const PAGE_INTERNAL: u8 = 1;
/// Flag in the (sealed, so authenticated) kind byte: the entries are an LZ4 block preceded by
/// their uncompressed length as a varint.
pub const PAGE_COMPRESSED: u8 = 0x80;
pub const PAGE_HEADER: usize = 3;
pub const PAGE_LEN_PREFIX: usize = 4;

/// Associated data binding a page to its file and position, so pages cannot be swapped.
pub fn page_aad(file: u32, offset: u32) -> [u8; 12] {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(b"seg1");
    a[4..8].copy_from_slice(&file.to_le_bytes());
    a[8..].copy_from_slice(&offset.to_le_bytes());
    a
}

pub fn leaf_entry_len(key: &[u8], seq: u64, value: Option<&[u8]>) -> usize {
    varint_len(key.len() as u64)
        + key.len()
        + 1
        + varint_len(seq)
        + value.map_or(0, |v| varint_len(v.len() as u64) + v.len())
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A leaf entry: key blob, kind (0 put, 1 delete), the sequence number of the commit that
/// wrote it (incremental backups select by it), then the value blob of a put.
pub fn put_leaf_entry(out: &mut Vec<u8>, key: &[u8], seq: u64, value: Option<&[u8]>) {
    put_blob(out, key);
    out.push(u8::from(value.is_none()));
    put_varint(out, seq);
    if let Some(v) = value {
        put_blob(out, v);
    }
}

pub fn put_internal_entry(out: &mut Vec<u8>, first_key: &[u8], off: u32, len: u32) {
    put_blob(out, first_key);
    put_varint(out, u64::from(off));
    put_varint(out, u64::from(len));
}

/// A parsed page header.
pub fn page_header(page: &[u8]) -> Result<(u8, u16)> {
    let mut r = Reader::new(page);
    let kind = r.u8()?;
    let count = u16::from_le_bytes(r.array()?);
    if kind != PAGE_LEAF && kind != PAGE_INTERNAL {
        return Err(Error::Corrupt);
    }
    Ok((kind, count))
}

/// One entry of a leaf page, borrowed from the page buffer.
pub struct LeafEntry<'a> {
    pub key: &'a [u8],
    pub seq: u64,
    pub value: Option<&'a [u8]>,
}

pub fn read_leaf_entry<'a>(r: &mut Reader<'a>) -> Result<LeafEntry<'a>> {
    let key = r.blob()?;
    let kind = r.u8()?;
    let seq = r.varint()?;
    let value = match kind {
        0 => Some(r.blob()?),
        1 => None,
        _ => return Err(Error::Corrupt),
    };
    Ok(LeafEntry { key, seq, value })
}

pub struct InternalEntry<'a> {
    pub first_key: &'a [u8],
    pub off: u32,
    pub len: u32,
}

pub fn read_internal_entry<'a>(r: &mut Reader<'a>) -> Result<InternalEntry<'a>> {
    Ok(InternalEntry {
        first_key: r.blob()?,
        off: r.varint_u32()?,
        len: r.varint_u32()?,
    })
}

// ---------------------------------------------------------------------------------------------
// The root record (file `cairn`): a plaintext header that says how to get the key, followed by
// the sealed manifest. Replaced atomically (write `cairn.tmp`, rename over `cairn`).

pub const MAGIC: [u8; 8] = *b"CAIRNDB\x01";
pub const FORMAT_VERSION: u16 = 2;
pub const ROOT_HEADER: usize = 8 + 2 + 2 + 4 + 16 + 16 + 8;
pub const FLAG_ENCRYPTED: u16 = 0x0001;
pub const FLAG_PASSPHRASE: u16 = 0x0002;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootHeader {
    pub version: u16,
    pub flags: u16,
    pub kdf_iterations: u32,
    pub salt: [u8; 16],
    pub key_check: [u8; 16],
    /// Incremented on every root write; also binds the manifest to this header.
    pub generation: u64,
}

impl RootHeader {
    pub fn encode(&self) -> [u8; ROOT_HEADER] {
        let mut h = [0u8; ROOT_HEADER];
        h[..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&self.version.to_le_bytes());
        h[10..12].copy_from_slice(&self.flags.to_le_bytes());
        h[12..16].copy_from_slice(&self.kdf_iterations.to_le_bytes());
        h[16..32].copy_from_slice(&self.salt);
        h[32..48].copy_from_slice(&self.key_check);
        h[48..56].copy_from_slice(&self.generation.to_le_bytes());
        h
    }
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        if r.array::<8>()? != MAGIC {
            return Err(Error::NotFormatted);
        }
        let version = u16::from_le_bytes(r.array()?);
        if version != FORMAT_VERSION {
            return Err(Error::Unsupported);
        }
        Ok(RootHeader {
            version,
            flags: u16::from_le_bytes(r.array()?),
            kdf_iterations: u32::from_le_bytes(r.array()?),
            salt: r.array()?,
            key_check: r.array()?,
            generation: u64::from_le_bytes(r.array()?),
        })
    }
}

/// A live segment as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegMeta {
    pub file: u32,
    /// Tier: 0 for a fold of the WAL, n+1 for a merge of tier-n segments.
    pub level: u8,
    pub bytes: u32,
    pub entries: u32,
    pub root_off: u32,
    pub root_len: u32,
    pub min_key: Vec<u8>,
    pub max_key: Vec<u8>,
    /// Highest commit sequence number of any entry (incremental backups skip older segments).
    pub max_seq: u64,
    /// Deletion entries it holds (the compaction trigger counts them).
    pub tombstones: u32,
}

/// What the root record protects: where everything is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The first WAL sequence number not yet folded into a segment.
    pub wal_base: u64,
    /// The next segment file number.
    pub next_file: u32,
    /// Live segments, newest first.
    pub segments: Vec<SegMeta>,
    /// Segment files replaced by this manifest, still to be removed.
    pub obsolete: Vec<u32>,
    /// Deletions with a sequence number above this survive bottom merges, so an incremental
    /// backup since the last backup still sees them. u64::MAX: no backup taken, keep none.
    pub retain_after: u64,
    /// An incremental backup since `s` is complete only for `s >= incr_floor`: deletions (and
    /// purged collections) at or below it may be gone.
    pub incr_floor: u64,
    /// The value of the time mark key ([`time_mark_key`]) as of the last fold, so opening
    /// needs no segment read to learn the time (None: not known here, look in the segments).
    pub time_mark: Option<Vec<u8>>,
}

/// The catalog key of the database time's persisted mark (`01 't'`). The store keeps its
/// newest folded value in the manifest.
pub fn time_mark_key() -> [u8; 2] {
    [T_CATALOG, CAT_TIME]
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            wal_base: 0,
            next_file: 0,
            segments: Vec::new(),
            obsolete: Vec::new(),
            retain_after: u64::MAX,
            incr_floor: 0,
            time_mark: None,
        }
    }
}

impl Manifest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.wal_base);
        put_varint(out, u64::from(self.next_file));
        put_varint(out, self.segments.len() as u64);
        for s in &self.segments {
            put_varint(out, u64::from(s.file));
            out.push(s.level);
            put_varint(out, u64::from(s.bytes));
            put_varint(out, u64::from(s.entries));
            put_varint(out, u64::from(s.root_off));
            put_varint(out, u64::from(s.root_len));
            put_blob(out, &s.min_key);
            put_blob(out, &s.max_key);
            put_varint(out, s.max_seq);
            put_varint(out, u64::from(s.tombstones));
        }
        put_varint(out, self.obsolete.len() as u64);
        for f in &self.obsolete {
            put_varint(out, u64::from(*f));
        }
        put_varint(out, self.retain_after);
        put_varint(out, self.incr_floor);
        match &self.time_mark {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_blob(out, v);
            }
        }
    }

    pub fn decode(b: &[u8], max_segments: usize) -> Result<Self> {
        let mut r = Reader::new(b);
        let wal_base = r.varint()?;
        let next_file = r.varint_u32()?;
        let n = r.varint()?;
        // Bound the count by what the bytes could hold before allocating anything.
        if n > max_segments as u64 || n > b.len() as u64 {
            return Err(Error::Corrupt);
        }
        let mut segments = Vec::with_capacity(n as usize);
        for _ in 0..n {
            segments.push(SegMeta {
                file: r.varint_u32()?,
                level: r.u8()?,
                bytes: r.varint_u32()?,
                entries: r.varint_u32()?,
                root_off: r.varint_u32()?,
                root_len: r.varint_u32()?,
                min_key: r.blob()?.to_vec(),
                max_key: r.blob()?.to_vec(),
                max_seq: r.varint()?,
                tombstones: r.varint_u32()?,
            });
        }
        let n = r.varint()?;
        if n > b.len() as u64 {
            return Err(Error::Corrupt);
        }
        let mut obsolete = Vec::with_capacity(n as usize);
        for _ in 0..n {
            obsolete.push(r.varint_u32()?);
        }
        let retain_after = r.varint()?;
        let incr_floor = r.varint()?;
        let time_mark = match r.u8()? {
            0 => None,
            1 => Some(r.blob()?.to_vec()),
            _ => return Err(Error::Corrupt),
        };
        if !r.is_empty() {
            return Err(Error::Corrupt);
        }
        Ok(Manifest {
            wal_base,
            next_file,
            segments,
            obsolete,
            retain_after,
            incr_floor,
            time_mark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_rejects_garbage() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Reader::new(&out).varint().unwrap(), v);
        }
        assert_eq!(Reader::new(&[0x80; 11]).varint(), Err(Error::Corrupt));
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).varint(),
            Err(Error::Corrupt)
        );
        assert_eq!(Reader::new(&[]).varint(), Err(Error::Corrupt));
    }

    #[test]
    fn doc_keys_sort_by_collection_then_id() {
        assert!(doc_key(1, 5) < doc_key(1, 6));
        assert!(doc_key(1, u64::MAX) < doc_key(2, 0));
        assert_eq!(doc_id_of(7, &doc_key(7, 42)), Some(42));
        assert_eq!(doc_id_of(8, &doc_key(7, 42)), None);
        assert_eq!(owner_of(&kv_key(9, b"k")), Some(9));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(alloc::vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn mutations_round_trip_and_reject_unknown_ops() {
        let mut s = Vec::new();
        put_mutation(&mut s, b"a", Some(b"1"));
        put_mutation(&mut s, b"b", None);
        let mut seen = Vec::new();
        for_each_mutation(&s, &mut |k, v| {
            seen.push((k.to_vec(), v.map(|v| v.to_vec())));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            alloc::vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)]
        );
        assert_eq!(
            for_each_mutation(&[9], &mut |_, _| Ok(())),
            Err(Error::Corrupt)
        );
        assert_eq!(
            for_each_mutation(&[1, 5, b'a'], &mut |_, _| Ok(())),
            Err(Error::Corrupt)
        );
    }

    #[test]
    fn doc_headers_and_kv_envelopes_round_trip_and_reject_garbage() {
        for exp in [None, Some(0), Some(1_700_000_000_000)] {
            let h = DocHeader {
                ver: 3,
                ts: 99,
                exp,
            };
            let mut b = Vec::new();
            encode_doc_header(&mut b, &h);
            b.push(7);
            let (d, body) = decode_doc_header(&b).unwrap();
            assert_eq!((d, body), (h, &[7u8][..]));
            for cut in 0..b.len() - 1 {
                assert!(decode_doc_header(&b[..cut]).is_err());
            }
        }
        assert_eq!(decode_doc_header(&[1, 1, 2]), Err(Error::Corrupt));
        let mut b = Vec::new();
        encode_kv(&mut b, Some(500), &[b"a", b"x:1"], b"val");
        let r = decode_kv(&b).unwrap();
        assert_eq!(r.exp, Some(500));
        assert_eq!(&r.tags[..], &[&b"a"[..], &b"x:1"[..]]);
        assert_eq!(r.value, b"val");
        let mut plain = Vec::new();
        encode_kv(&mut plain, None, &[], b"");
        assert_eq!(plain, [0]);
        assert_eq!(decode_kv(&plain).unwrap().value, b"");
        // Unknown flags, a zero or oversized tag count, a bad or repeated tag.
        assert_eq!(decode_kv(&[4]), Err(Error::Corrupt));
        assert_eq!(decode_kv(&[2, 0]), Err(Error::Corrupt));
        assert_eq!(decode_kv(&[2, 9]), Err(Error::Corrupt));
        assert_eq!(decode_kv(&[2, 1, 1, 0]), Err(Error::Corrupt));
        assert_eq!(decode_kv(&[2, 2, 1, b'a', 1, b'a']), Err(Error::Corrupt));
        assert!(decode_kv(&[]).is_err());
    }

    #[test]
    fn expiry_and_tag_keys() {
        let target = doc_key(7, 42);
        let k = ttl_key(1000, &target);
        assert_eq!(ttl_parts(&k).unwrap(), (1000, &target[..]));
        assert!(k < ttl_end(1000) && k >= ttl_end(999));
        assert_eq!(ttl_end(u64::MAX), alloc::vec![T_TTL + 1]);
        assert_eq!(owner_of(&k), Some(7));
        assert_eq!(owner_of(&ttl_key(5, &kv_key(9, b"k"))), Some(9));
        assert!(ttl_parts(&[T_TTL, 0, 0]).is_err());
        let t = tag_key(TAG_KV, 9, b"ab", b"key");
        assert_eq!(tag_parts(&t).unwrap(), (&b"ab"[..], &b"key"[..]));
        assert_eq!(owner_of(&t), Some(9));
        // A tag sorts before its extensions: "a" entries end before "ab" ones start.
        let a_end = prefix_end(&tag_run_prefix(TAG_DOC, 1, b"a")).unwrap();
        assert!(tag_key(TAG_DOC, 1, b"a", &[0xFF; 8]) < a_end);
        assert!(a_end <= tag_key(TAG_DOC, 1, b"ab", &[0; 8]));
        assert!(tag_parts(&tag_prefix(TAG_DOC, 1)).is_err());
        assert!(valid_tag(b"Zone-3.a_b:c"));
        for bad in [&b""[..], b"a b", b"\xc3\xa9", &[b'a'; 33]] {
            assert!(!valid_tag(bad));
        }
    }

    #[test]
    fn manifest_round_trip_and_bounds() {
        let m = Manifest {
            wal_base: 77,
            next_file: 9,
            segments: alloc::vec![SegMeta {
                file: 8,
                level: 1,
                bytes: 4096,
                entries: 40,
                root_off: 3000,
                root_len: 200,
                min_key: alloc::vec![3, 0, 0, 0, 1],
                max_key: alloc::vec![4, 9],
                max_seq: 1234,
                tombstones: 3,
            }],
            obsolete: alloc::vec![6, 7],
            retain_after: 900,
            incr_floor: 17,
            time_mark: Some(alloc::vec![5, 6]),
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(Manifest::decode(&b, 8).unwrap(), m);
        assert_eq!(Manifest::decode(&b, 0), Err(Error::Corrupt));
        for cut in 0..b.len() {
            assert!(Manifest::decode(&b[..cut], 8).is_err());
        }
    }

    #[test]
    fn coll_meta_round_trip_and_rejects_garbage() {
        let m = CollMeta {
            next_id: 300,
            count: 64,
            bytes: 5000,
            evicted: 235,
            first_id: 236,
            max_docs: 64,
            max_bytes: 0,
        };
        let b = m.encode();
        assert_eq!(CollMeta::decode(&b).unwrap(), m);
        assert!(m.is_capped() && !CollMeta::default().is_capped());
        for cut in 0..b.len() {
            assert_eq!(CollMeta::decode(&b[..cut]), Err(Error::Corrupt));
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(CollMeta::decode(&long), Err(Error::Corrupt));
        // Totals that cannot be: more documents than ids ever issued, a start past the end.
        for bad in [
            CollMeta { count: 300, ..m },
            CollMeta { first_id: 301, ..m },
        ] {
            assert_eq!(CollMeta::decode(&bad.encode()), Err(Error::Corrupt));
        }
    }

    #[test]
    fn root_header_round_trip() {
        let h = RootHeader {
            version: FORMAT_VERSION,
            flags: FLAG_ENCRYPTED,
            kdf_iterations: 1000,
            salt: [7; 16],
            key_check: [9; 16],
            generation: 3,
        };
        assert_eq!(RootHeader::decode(&h.encode()).unwrap(), h);
        let mut bad = h.encode();
        bad[0] ^= 1;
        assert_eq!(RootHeader::decode(&bad), Err(Error::NotFormatted));
        let mut newer = h.encode();
        newer[8] = 3;
        assert_eq!(RootHeader::decode(&newer), Err(Error::Unsupported));
    }
}
