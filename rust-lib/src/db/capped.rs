//! Capped collections: a collection created with a cap on its documents and/or bytes keeps
//! itself under the cap by evicting its oldest documents (lowest `_id`) in the same commit as
//! the write that would exceed it. Eviction goes through the delete path, so indexes, the count
//! and the byte total stay exact; every collection's totals live in its [`CollMeta`].

use super::{check_user_name, Database, Txn};
use crate::flash::BlockDevice;
use crate::format::{self, CollMeta};
use crate::{Error, Result};
use alloc::vec::Vec;

/// Caps of a collection, fixed when it is created. `None`: no cap of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionOptions {
    /// Most documents kept; an insert past it evicts the oldest.
    pub max_docs: Option<u64>,
    /// Most stored bytes kept (the sum of the stored documents' record lengths, see
    /// [`CollStats::bytes`]); a write past it evicts the oldest others. A single document
    /// larger than this is refused with [`Error::TooLarge`].
    pub max_bytes: Option<u64>,
}

/// Totals of one collection, all exact and persisted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollStats {
    /// Documents stored.
    pub docs: u64,
    /// Sum of the stored record lengths of the documents (document header and encoded body,
    /// without keys, index entries or the store's overheads).
    pub bytes: u64,
    pub max_docs: Option<u64>,
    pub max_bytes: Option<u64>,
    /// Documents removed by a cap since the collection was created.
    pub evicted: u64,
}

fn cap(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// [`Error::TooLarge`] when a document of `raw.len()` bytes alone exceeds the byte cap.
pub(super) fn check_fits(m: &CollMeta, raw: &[u8]) -> Result<()> {
    if m.max_bytes != 0 && raw.len() as u64 > m.max_bytes {
        return Err(Error::TooLarge);
    }
    Ok(())
}

fn over_caps(m: &CollMeta) -> bool {
    (m.max_docs != 0 && m.count > m.max_docs) || (m.max_bytes != 0 && m.bytes > m.max_bytes)
}

impl<D: BlockDevice> Txn<'_, D> {
    /// Create an empty collection with caps. [`Error::Exists`] if it exists,
    /// [`Error::InvalidArgument`] for a zero cap.
    pub fn create_collection_with(&mut self, name: &str, opts: &CollectionOptions) -> Result<()> {
        check_user_name(name)?;
        self.create_capped(name, opts)
    }

    /// [`Txn::create_collection_with`] without the reserved-name check.
    pub(super) fn create_capped(&mut self, name: &str, opts: &CollectionOptions) -> Result<()> {
        if opts.max_docs == Some(0) || opts.max_bytes == Some(0) {
            return Err(Error::InvalidArgument);
        }
        if self.collection_id(name)?.is_some() {
            return Err(Error::Exists);
        }
        let cid = self.new_collection(name)?;
        let m = CollMeta {
            max_docs: opts.max_docs.unwrap_or(0),
            max_bytes: opts.max_bytes.unwrap_or(0),
            ..CollMeta::default()
        };
        self.set_meta(cid, m)
    }

    /// The totals and caps of collection `name`. [`Error::NotFound`] if it does not exist.
    pub fn collection_stats(&mut self, name: &str) -> Result<CollStats> {
        let cid = self.collection_id(name)?.ok_or(Error::NotFound)?;
        let m = self.meta(cid)?;
        Ok(CollStats {
            docs: m.count,
            bytes: m.bytes,
            max_docs: cap(m.max_docs),
            max_bytes: cap(m.max_bytes),
            evicted: m.evicted,
        })
    }

    /// Remove a stored document (`old` is its stored record) with its index entries, and take
    /// it out of the totals in `m` (written back by the caller).
    pub(super) fn remove_doc(
        &mut self,
        cid: u32,
        id: u64,
        old: &[u8],
        m: &mut CollMeta,
    ) -> Result<()> {
        self.update_indexes(cid, id, Some(old), None)?;
        self.write(format::doc_key(cid, id), None)?;
        m.count = m.count.saturating_sub(1);
        m.bytes = m.bytes.saturating_sub(old.len() as u64);
        Ok(())
    }

    /// Write a new record `raw` over document `id` (stored record `old`), keeping indexes and
    /// totals exact and the collection under its byte cap.
    pub(super) fn rewrite_doc(
        &mut self,
        cid: u32,
        id: u64,
        old: &[u8],
        raw: Vec<u8>,
    ) -> Result<()> {
        let before = self.meta(cid)?;
        check_fits(&before, &raw)?;
        let mut m = before;
        m.bytes = m
            .bytes
            .saturating_sub(old.len() as u64)
            .saturating_add(raw.len() as u64);
        self.update_indexes(cid, id, Some(old), Some(&raw))?;
        self.write(format::doc_key(cid, id), Some(raw))?;
        self.evict_over_caps(cid, &mut m, id)?;
        // A rewrite of the same length changes no total: the metadata stays as it is.
        if m != before {
            self.set_meta(cid, m)?;
        }
        Ok(())
    }

    /// Evict the oldest documents other than `keep` until `m` is within its caps. Each
    /// eviction is a delete in this transaction, so it commits with the write that caused it
    /// (or fails it with [`Error::TxnTooLarge`] when too many would not fit one commit).
    pub(super) fn evict_over_caps(&mut self, cid: u32, m: &mut CollMeta, keep: u64) -> Result<()> {
        while over_caps(m) {
            let Some((id, raw)) = self.oldest_doc(cid, m.first_id, keep)? else {
                // Only `keep` is left and it fits (checked before writing): the totals disagree
                // with the documents.
                return Err(Error::Corrupt);
            };
            self.remove_doc(cid, id, &raw, m)?;
            m.evicted = m.evicted.saturating_add(1);
            // Nothing is left below the evicted document, except `keep` if it was skipped.
            let floor = if id < keep {
                id.saturating_add(1)
            } else {
                keep
            };
            m.first_id = m.first_id.max(floor);
        }
        Ok(())
    }

    /// Whether document `id` of `coll` still exists, when an earlier write of this transaction
    /// may have evicted it (always true outside capped collections, without a read).
    pub(super) fn still_there(&mut self, coll: &str, id: u64) -> Result<bool> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(false);
        };
        if !self.meta(cid)?.is_capped() {
            return Ok(true);
        }
        Ok(self.read(&format::doc_key(cid, id))?.is_some())
    }

    /// The live document with the lowest `_id` from `from` on, other than `keep`.
    fn oldest_doc(&mut self, cid: u32, from: u64, keep: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let end = format::docs_end(cid);
        let mut found = None;
        self.scan_range(&format::doc_key(cid, from), Some(&end), &mut |k, v| {
            let id = format::doc_id_of(cid, k).ok_or(Error::Corrupt)?;
            if id == keep {
                return Ok(true);
            }
            found = Some((id, v.to_vec()));
            Ok(false)
        })?;
        Ok(found)
    }
}

impl<D: BlockDevice> Database<D> {
    /// Create an empty collection with caps ([`CollectionOptions`]). [`Error::Exists`] if it
    /// exists, [`Error::InvalidArgument`] for a zero cap.
    pub fn create_collection_with(&mut self, name: &str, opts: &CollectionOptions) -> Result<()> {
        self.transaction(|t| t.create_collection_with(name, opts))
    }

    /// The caps `name` was created with. [`Error::NotFound`] if it does not exist.
    pub fn collection_options(&mut self, name: &str) -> Result<CollectionOptions> {
        let s = self.collection_stats(name)?;
        Ok(CollectionOptions {
            max_docs: s.max_docs,
            max_bytes: s.max_bytes,
        })
    }

    /// Documents, bytes, caps and evictions of `name`, read from its metadata record (no
    /// scan). [`Error::NotFound`] if it does not exist.
    pub fn collection_stats(&mut self, name: &str) -> Result<CollStats> {
        self.begin().collection_stats(name)
    }

    /// Count the documents of `name` and their stored bytes by reading every one of them (a
    /// full scan with bounded RAM), independently of the totals [`Database::collection_stats`]
    /// reads: for consistency checks. `(0, 0)` for a missing collection.
    pub fn recount(&mut self, name: &str) -> Result<(u64, u64)> {
        let Some(cid) = self.begin().collection_id(name)? else {
            return Ok((0, 0));
        };
        let (mut docs, mut bytes) = (0u64, 0u64);
        let prefix = format::doc_prefix(cid);
        self.scan_prefix(&prefix, &mut |k, v| {
            if format::doc_id_of(cid, k).is_some() {
                docs += 1;
                bytes = bytes.saturating_add(v.len() as u64);
            }
            Ok(true)
        })?;
        Ok((docs, bytes))
    }
}
