//! Expiry (TTL) of documents and key-value entries, and the sweep that removes expired items.
//!
//! An item's expiry is an absolute database time, kept in the document header or the KV
//! envelope and mirrored by one `T_TTL` entry `(expiry BE, item key)` written in the same
//! commit. An item is expired once `expiry <= now`; from then on every read treats it as
//! absent, whether or not it is still stored. [`Database::sweep`] removes expired items in
//! expiry order, a bounded number per commit, and counts them (`01 'e'`).

use super::stats::OpClass;
use super::{check_user_name, Database, Txn};
use crate::flash::BlockDevice;
use crate::format;
use crate::value::Value;
use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// Expiry and tags of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    /// Time to live from the write, in database time units (None: never expires).
    pub ttl: Option<u64>,
    /// Tags: at most 8, each 1..=32 bytes of `[A-Za-z0-9_.:-]`, no repeats.
    pub tags: &'a [&'a str],
}

/// What one [`Database::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired documents and KV entries removed.
    pub removed: u64,
    /// Whether expired items remain (call again).
    pub more: bool,
}

/// A key-value entry with its expiry and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    /// Database time from which the entry is expired (None: never).
    pub expires: Option<u64>,
    pub tags: Vec<String>,
}

/// What is known of the earliest expiry entry. Writes only lower it, so a bound learned from
/// committed state stays true whatever happens to later transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    /// Not known yet: look.
    Unknown,
    /// No expiry entry exists.
    Empty,
    /// No expiry entry is earlier than this.
    AtLeast(u64),
}

impl Bound {
    fn lower(self, e: u64) -> Bound {
        match self {
            Bound::Unknown => Bound::Unknown,
            Bound::Empty => Bound::AtLeast(e),
            Bound::AtLeast(b) => Bound::AtLeast(b.min(e)),
        }
    }
}

/// A sweep attempt: done, or stopped because the item after the first `n` did not fit the
/// transaction (it is then redone with a budget of `n`).
enum SweepRun {
    /// What was removed, and the time it was judged at.
    Done(SweepReport, u64),
    TooLarge(usize),
}

/// A callback over entries that gets the transaction too; returns false to stop.
type BatchFn<'f, 't, D> = dyn FnMut(&mut Txn<'t, D>, &[u8], &[u8]) -> Result<bool> + 'f;

fn expired_key() -> Vec<u8> {
    format::catalog_key(format::CAT_EXPIRED, &[])
}

impl<D: BlockDevice> Database<D> {
    /// Insert a document with an expiry and tags (`opts.tags` become its `_tags`; giving both
    /// is [`Error::InvalidArgument`]). Returns its `_id`.
    pub fn insert_with(&mut self, coll: &str, doc: &Value, opts: &WriteOptions<'_>) -> Result<u64> {
        self.transaction(|t| t.insert_with(coll, doc, opts))
    }

    /// Set a document's expiry to `ttl` from now, or clear it (None). Its `_ver` and `_ts` stay.
    /// [`Error::NotFound`] if it does not exist or has expired.
    pub fn set_expiry(&mut self, coll: &str, id: u64, ttl: Option<u64>) -> Result<()> {
        self.transaction(|t| t.set_expiry(coll, id, ttl))
    }

    /// Store `value` under `key` with an expiry and tags (replacing the whole entry).
    pub fn kv_put_with(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        opts: &WriteOptions<'_>,
    ) -> Result<()> {
        self.transaction(|t| t.kv_put_with(ns, key, value, opts))
    }

    /// The entry under `key` with its expiry and tags (None: absent or expired).
    pub fn kv_get_entry(&mut self, ns: &str, key: &[u8]) -> Result<Option<KvEntry>> {
        self.read_txn(|t| t.kv_get_entry(ns, key))
    }

    /// Set an entry's expiry to `ttl` from now, or clear it (None); returns whether the entry
    /// exists (and has not expired).
    pub fn kv_set_expiry(&mut self, ns: &str, key: &[u8], ttl: Option<u64>) -> Result<bool> {
        self.transaction(|t| t.kv_set_expiry(ns, key, ttl))
    }

    /// Physically remove up to `budget` expired items (documents with their index and tag
    /// entries, KV entries), oldest expiry first, in one commit. Reads hide expired items
    /// before any sweep; sweeping reclaims their space and keeps `count` cheap. RAM is bounded
    /// by the transaction size; a sweep that would outgrow it removes fewer and reports `more`.
    pub fn sweep(&mut self, budget: usize) -> Result<SweepReport> {
        let mut limit = budget;
        loop {
            let mut t = self.begin();
            match t.sweep_run(limit) {
                Ok(SweepRun::Done(report, now)) => {
                    t.commit()?;
                    if !report.more {
                        // Nothing expires at or before `now` any more.
                        self.expiry_bound = match self.expiry_bound {
                            Bound::AtLeast(b) if b > now => Bound::AtLeast(b),
                            Bound::Empty => Bound::Empty,
                            _ => Bound::AtLeast(now.saturating_add(1)),
                        };
                    }
                    return Ok(report);
                }
                Ok(SweepRun::TooLarge(0)) => {
                    t.keep_time();
                    return Err(Error::TxnTooLarge);
                }
                // The first `n` items fit: redo with them only (they come first again: later
                // expiries sort after them).
                Ok(SweepRun::TooLarge(n)) => limit = n,
                Err(e) => {
                    t.keep_time();
                    return Err(e);
                }
            }
        }
    }

    /// How many expired items sweeps (and unique-index writes) have removed, ever.
    pub fn expired_removed(&mut self) -> Result<u64> {
        self.read_txn(|t| t.expired_removed())
    }
}

impl<D: BlockDevice> Txn<'_, D> {
    /// The expiry of an item written now with `ttl` to live.
    fn expiry_after(&mut self, ttl: Option<u64>) -> Result<Option<u64>> {
        match ttl {
            None => Ok(None),
            Some(ttl) => Ok(Some(
                self.now()?.checked_add(ttl).ok_or(Error::InvalidArgument)?,
            )),
        }
    }

    /// See [`Database::insert_with`].
    pub fn insert_with(&mut self, coll: &str, doc: &Value, opts: &WriteOptions<'_>) -> Result<u64> {
        self.timed(OpClass::Insert, |t| {
            check_user_name(coll)?;
            t.insert_with_entry(coll, doc, opts)
        })
    }

    fn insert_with_entry(
        &mut self,
        coll: &str,
        doc: &Value,
        opts: &WriteOptions<'_>,
    ) -> Result<u64> {
        super::tags::check_tags(opts.tags)?;
        let exp = self.expiry_after(opts.ttl)?;
        if opts.tags.is_empty() {
            return self.insert_doc(coll, doc, exp);
        }
        let mut body = doc.as_map().ok_or(Error::InvalidArgument)?.clone();
        if body.contains_key("_tags") {
            return Err(Error::InvalidArgument);
        }
        let tags = opts.tags.iter().map(|t| Value::Str(String::from(*t)));
        body.insert(String::from("_tags"), Value::Array(tags.collect()));
        self.insert_doc(coll, &Value::Map(body), exp)
    }

    /// See [`Database::set_expiry`].
    pub fn set_expiry(&mut self, coll: &str, id: u64, ttl: Option<u64>) -> Result<()> {
        self.timed(OpClass::Update, |t| {
            check_user_name(coll)?;
            t.set_expiry_entry(coll, id, ttl)
        })
    }

    fn set_expiry_entry(&mut self, coll: &str, id: u64, ttl: Option<u64>) -> Result<()> {
        let (cid, old, mut h, _) = self.current(coll, id)?;
        h.exp = self.expiry_after(ttl)?;
        let (_, body) = format::decode_doc_header(&old)?;
        let mut raw = Vec::with_capacity(old.len() + 10);
        format::encode_doc_header(&mut raw, &h);
        raw.extend_from_slice(body);
        if raw.len() > self.db.cfg.max_doc_bytes {
            return Err(Error::TooLarge);
        }
        // Indexes too: an index or a partial filter may use `_exp`.
        self.update_indexes(cid, id, Some(&old), Some(&raw))?;
        self.write(format::doc_key(cid, id), Some(raw))
    }

    /// Keep the expiry and tag entries of document `id` in step with its change from `old` to
    /// `new` (raw stored forms; None: absent).
    pub(super) fn update_extras(
        &mut self,
        cid: u32,
        id: u64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        let exp_of = |raw: Option<&[u8]>| -> Result<Option<u64>> {
            Ok(match raw {
                Some(r) => format::decode_doc_header(r)?.0.exp,
                None => None,
            })
        };
        let (old_exp, new_exp) = (exp_of(old)?, exp_of(new)?);
        if old_exp != new_exp {
            let key = format::doc_key(cid, id);
            self.update_ttl(&key, old_exp, new_exp)?;
        }
        self.update_doc_tags(cid, id, old, new)
    }

    fn update_ttl(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) -> Result<()> {
        if let Some(e) = old {
            self.write(format::ttl_key(e, key), None)?;
        }
        if let Some(e) = new {
            self.db.expiry_bound = self.db.expiry_bound.lower(e);
            self.write(format::ttl_key(e, key), Some(Vec::new()))?;
        }
        Ok(())
    }

    /// Keep the expiry and tag entries of KV `key` in step with its envelope going from `old`
    /// to `new`.
    pub(super) fn update_kv_extras(
        &mut self,
        nid: u32,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        let old = old.map(format::decode_kv).transpose()?;
        let new = new.map(format::decode_kv).transpose()?;
        let (old_exp, new_exp) = (
            old.as_ref().and_then(|r| r.exp),
            new.as_ref().and_then(|r| r.exp),
        );
        if old_exp != new_exp {
            self.update_ttl(&format::kv_key(nid, key), old_exp, new_exp)?;
        }
        let none: &[&[u8]] = &[];
        self.update_kv_tags(
            nid,
            key,
            old.as_ref().map_or(none, |r| &r.tags[..]),
            new.as_ref().map_or(none, |r| &r.tags[..]),
        )
    }

    /// See [`Database::kv_put_with`].
    pub fn kv_put_with(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        opts: &WriteOptions<'_>,
    ) -> Result<()> {
        self.timed(OpClass::Update, |t| {
            check_user_name(ns)?;
            t.kv_put_entry(ns, key, value, opts)
        })
    }

    fn kv_put_entry(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        opts: &WriteOptions<'_>,
    ) -> Result<()> {
        self.check_kv(key, Some(value))?;
        super::tags::check_tags(opts.tags)?;
        let exp = self.expiry_after(opts.ttl)?;
        let nid = match self.namespace_id(ns)? {
            Some(id) => id,
            None => self.create_catalog(format::CAT_NAMESPACE, ns)?,
        };
        let k = format::kv_key(nid, key);
        let old = self.read(&k)?;
        let tags: Vec<&[u8]> = opts.tags.iter().map(|t| t.as_bytes()).collect();
        let mut v = Vec::with_capacity(value.len() + 12);
        format::encode_kv(&mut v, exp, &tags, value);
        self.update_kv_extras(nid, key, old.as_deref(), Some(&v))?;
        self.write(k, Some(v))
    }

    /// See [`Database::kv_get_entry`].
    pub fn kv_get_entry(&mut self, ns: &str, key: &[u8]) -> Result<Option<KvEntry>> {
        self.check_kv(key, None)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(None);
        };
        let Some(raw) = self.read(&format::kv_key(nid, key))? else {
            return Ok(None);
        };
        let rec = format::decode_kv(&raw)?;
        if self.expired(rec.exp)? {
            return Ok(None);
        }
        let tags = rec
            .tags
            .iter()
            .map(|t| core::str::from_utf8(t).map(String::from))
            .collect::<core::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::Corrupt)?;
        Ok(Some(KvEntry {
            value: rec.value.to_vec(),
            expires: rec.exp,
            tags,
        }))
    }

    /// See [`Database::kv_set_expiry`].
    pub fn kv_set_expiry(&mut self, ns: &str, key: &[u8], ttl: Option<u64>) -> Result<bool> {
        self.timed(OpClass::Update, |t| {
            check_user_name(ns)?;
            t.kv_set_expiry_entry(ns, key, ttl)
        })
    }

    fn kv_set_expiry_entry(&mut self, ns: &str, key: &[u8], ttl: Option<u64>) -> Result<bool> {
        self.check_kv(key, None)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(false);
        };
        let k = format::kv_key(nid, key);
        let Some(old) = self.read(&k)? else {
            return Ok(false);
        };
        let rec = format::decode_kv(&old)?;
        if self.expired(rec.exp)? {
            return Ok(false);
        }
        let exp = self.expiry_after(ttl)?;
        let mut v = Vec::with_capacity(old.len() + 10);
        format::encode_kv(&mut v, exp, &rec.tags, rec.value);
        self.update_kv_extras(nid, key, Some(&old), Some(&v))?;
        self.write(k, Some(v))?;
        Ok(true)
    }

    /// Visit the live keys of `ns` starting with `prefix`, in byte order.
    pub fn kv_keys(
        &mut self,
        ns: &str,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(());
        };
        let mut p = format::kv_prefix(nid).to_vec();
        p.extend_from_slice(prefix);
        let end = format::prefix_end(&p);
        self.batched(&p, end.as_deref(), &mut |t, k, v| {
            if t.expired(format::decode_kv(v)?.exp)? {
                return Ok(true);
            }
            f(k.get(5..).ok_or(Error::Corrupt)?)
        })
    }

    /// The first expiry entry's time, if any.
    fn first_expiry(&mut self) -> Result<Option<u64>> {
        let mut first = None;
        self.scan_range(&[format::T_TTL], Some(&[format::T_TTL + 1]), &mut |k, _| {
            first = Some(format::ttl_parts(k)?.0);
            Ok(false)
        })?;
        Ok(first)
    }

    /// Whether any item is expired but not yet swept (reads the time only if anything
    /// expires at all, and flash only if something may have expired).
    pub(super) fn any_expired(&mut self) -> Result<bool> {
        if !self.may_have_expired()? {
            return Ok(false);
        }
        let first = self.first_expiry()?;
        // Learn the bound only from what is committed (this transaction may still roll back
        // a delete of an earlier entry).
        if !self.ws.keys().any(|k| k.first() == Some(&format::T_TTL)) {
            self.db.expiry_bound = first.map_or(Bound::Empty, Bound::AtLeast);
        }
        match first {
            None => Ok(false),
            Some(e) => Ok(e <= self.now()?),
        }
    }

    /// Whether the bound on expiries leaves room for an expired item (no flash read).
    fn may_have_expired(&mut self) -> Result<bool> {
        match self.db.expiry_bound {
            Bound::Empty => Ok(false),
            Bound::AtLeast(b) => Ok(b <= self.now()?),
            Bound::Unknown => Ok(true),
        }
    }

    /// How many documents of collection `cid` are expired but not yet swept.
    pub(super) fn expired_docs(&mut self, cid: u32) -> Result<u64> {
        if !self.any_expired()? {
            return Ok(0);
        }
        let end = format::ttl_end(self.now()?);
        let mut n = 0u64;
        self.scan_range(&[format::T_TTL], Some(&end), &mut |k, _| {
            let (_, target) = format::ttl_parts(k)?;
            if format::doc_id_of(cid, target).is_some() {
                n += 1;
            }
            Ok(true)
        })?;
        Ok(n)
    }

    /// Remove a stored document with its index, tag and expiry entries.
    fn remove_expired_doc(&mut self, cid: u32, id: u64, raw: &[u8]) -> Result<()> {
        let mut m = self.meta(cid)?;
        self.remove_doc(cid, id, raw, &mut m)?;
        self.set_meta(cid, m)
    }

    /// If document `id` of `cid` is expired, remove it (as a sweep would) and say so.
    pub(super) fn evict_if_expired(&mut self, cid: u32, id: u64) -> Result<bool> {
        let Some(raw) = self.read(&format::doc_key(cid, id))? else {
            return Ok(false);
        };
        if !self.expired(format::decode_doc_header(&raw)?.0.exp)? {
            return Ok(false);
        }
        self.remove_expired_doc(cid, id, &raw)?;
        self.add_expired(1)?;
        Ok(true)
    }

    /// See [`Database::expired_removed`].
    pub fn expired_removed(&mut self) -> Result<u64> {
        match self.read(&expired_key())? {
            None => Ok(0),
            Some(v) => {
                let mut r = format::Reader::new(&v);
                let n = r.varint()?;
                if !r.is_empty() {
                    return Err(Error::Corrupt);
                }
                Ok(n)
            }
        }
    }

    fn add_expired(&mut self, n: u64) -> Result<()> {
        let total = self.expired_removed()?.saturating_add(n);
        let mut v = Vec::with_capacity(10);
        format::put_varint(&mut v, total);
        self.write(expired_key(), Some(v))
    }

    /// Remove the item an expiry entry names. Returns whether an item was removed (an entry
    /// left by a dropped collection is only deleted itself).
    fn remove_expired(&mut self, entry: &[u8]) -> Result<bool> {
        let (exp, target) = format::ttl_parts(entry)?;
        let target = target.to_vec();
        let owner = format::owner_of(&target).ok_or(Error::Corrupt)?;
        match target.first() {
            Some(&format::T_DOC) => {
                let id = format::doc_id_of(owner, &target).ok_or(Error::Corrupt)?;
                // A dropped collection's documents go with the next full merge.
                if self.read(&format::coll_meta_key(owner))?.is_none() {
                    self.write(entry.to_vec(), None)?;
                    return Ok(false);
                }
                let raw = self.read(&target)?.ok_or(Error::Corrupt)?;
                if format::decode_doc_header(&raw)?.0.exp != Some(exp) {
                    return Err(Error::Corrupt);
                }
                self.remove_expired_doc(owner, id, &raw)?;
            }
            Some(&format::T_KV) => {
                let raw = self.read(&target)?.ok_or(Error::Corrupt)?;
                if format::decode_kv(&raw)?.exp != Some(exp) {
                    return Err(Error::Corrupt);
                }
                let key = target.get(5..).ok_or(Error::Corrupt)?;
                self.update_kv_extras(owner, key, Some(&raw), None)?;
                self.write(target.clone(), None)?;
            }
            _ => return Err(Error::Corrupt),
        }
        Ok(true)
    }

    /// One sweep attempt over at most `limit` expiry entries.
    fn sweep_run(&mut self, limit: usize) -> Result<SweepRun> {
        let now = self.now()?;
        if !self.may_have_expired()? {
            return Ok(SweepRun::Done(SweepReport::default(), now));
        }
        let end = format::ttl_end(now);
        let max = self.db.store.max_commit_bytes();
        // Room kept for the removal count (a key and a varint).
        let reserve = 32;
        let (mut done, mut removed, mut more, mut too_large) = (0usize, 0u64, false, false);
        let mut largest = 0usize;
        self.batched(&[format::T_TTL], Some(&end), &mut |t, k, _| {
            // Stop before an item like the largest so far could overflow the commit.
            if done >= limit || (done > 0 && t.bytes + 2 * largest + reserve > max) {
                more = true;
                return Ok(false);
            }
            let before = t.bytes;
            match t.remove_expired(k) {
                Ok(r) => {
                    done += 1;
                    removed += u64::from(r);
                    largest = largest.max(t.bytes.saturating_sub(before));
                    Ok(true)
                }
                Err(Error::TxnTooLarge) => {
                    too_large = true;
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })?;
        if too_large {
            return Ok(SweepRun::TooLarge(done));
        }
        if removed > 0 {
            match self.add_expired(removed) {
                Err(Error::TxnTooLarge) => return Ok(SweepRun::TooLarge(done.saturating_sub(1))),
                r => r?,
            }
        }
        Ok(SweepRun::Done(SweepReport { removed, more }, now))
    }
}

impl<'t, D: BlockDevice> Txn<'t, D> {
    /// Visit live entries of `[start, end)` as this transaction sees them, one batch at a time,
    /// with the transaction at hand (so `f` may read and write).
    pub(super) fn batched(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        f: &mut BatchFn<'_, 't, D>,
    ) -> Result<()> {
        let n = self.db.cfg.iter_batch.max(1);
        let mut from = start.to_vec();
        loop {
            let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(n);
            self.scan_range(&from, end, &mut |k, v| {
                batch.push((k.to_vec(), v.to_vec()));
                Ok(batch.len() < n)
            })?;
            for (k, v) in &batch {
                if !f(self, k, v)? {
                    return Ok(());
                }
            }
            match batch.last() {
                Some((k, _)) if batch.len() == n => {
                    from = k.clone();
                    from.push(0);
                }
                _ => return Ok(()),
            }
        }
    }
}
