//! Tags on documents and key-value entries, and the tag index that answers tag queries.
//!
//! A document's tags are its body field `_tags` (an array of strings); a KV entry's are in its
//! envelope. Each (owner, tag, item) has one key in the `T_TAG` key space, written in the same
//! commit as the item, so queries stream the index: all-of follows the first tag's entries and
//! checks the item's other tags; any-of follows each tag's entries in turn and skips an item
//! that carries an earlier tag of the query, so nothing is returned twice and no set of seen
//! items is kept. Expired items are left out.

use super::{Database, Txn};
use crate::flash::BlockDevice;
use crate::format::{self, MAX_TAGS};
use crate::value::{Map, Value};
use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// Which tags an item must carry.
#[derive(Debug, Clone, Copy)]
pub enum TagMatch<'a> {
    /// Every one of these tags.
    All(&'a [&'a str]),
    /// At least one of these tags.
    Any(&'a [&'a str]),
}

/// Tags a document or entry is written with: at most [`MAX_TAGS`], each valid, no repeats.
pub(super) fn check_tags(tags: &[&str]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::InvalidArgument);
    }
    for (i, t) in tags.iter().enumerate() {
        if !format::valid_tag(t.as_bytes()) || tags.get(..i).is_some_and(|p| p.contains(t)) {
            return Err(Error::InvalidArgument);
        }
    }
    Ok(())
}

/// The tags of a document body (its `_tags` field), checked:
/// [`Error::InvalidArgument`] unless it is absent or an array of valid, distinct tags.
pub(super) fn doc_tags(body: &Map) -> Result<heapless::Vec<&str, MAX_TAGS>> {
    let mut out = heapless::Vec::new();
    let Some(v) = body.get("_tags") else {
        return Ok(out);
    };
    let arr = v.as_array().ok_or(Error::InvalidArgument)?;
    for t in arr {
        let t = t.as_str().ok_or(Error::InvalidArgument)?;
        if !format::valid_tag(t.as_bytes()) || out.contains(&t) {
            return Err(Error::InvalidArgument);
        }
        out.push(t).map_err(|_| Error::InvalidArgument)?;
    }
    Ok(out)
}

/// The tags of a stored document (its raw header and body).
pub(super) fn stored_doc_tags(raw: &[u8], max_depth: usize) -> Result<Vec<String>> {
    let (_, body) = format::decode_doc_header(raw)?;
    let body = crate::value::decode(body, max_depth)?;
    let map = body.as_map().ok_or(Error::Corrupt)?;
    let tags = doc_tags(map).map_err(|_| Error::Corrupt)?;
    Ok(tags.iter().map(|t| String::from(*t)).collect())
}

/// Whether a decoded document carries `tag`.
fn has_tag(doc: &Value, tag: &str) -> bool {
    doc.as_map()
        .and_then(|m| m.get("_tags"))
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|t| t.as_str() == Some(tag)))
}

/// The tags of a query, checked and without repeats; and whether all are required.
fn query_tags<'a>(m: &TagMatch<'a>) -> Result<(bool, heapless::Vec<&'a str, MAX_TAGS>)> {
    let (all, list) = match m {
        TagMatch::All(l) => (true, *l),
        TagMatch::Any(l) => (false, *l),
    };
    if list.is_empty() || list.len() > MAX_TAGS {
        return Err(Error::InvalidArgument);
    }
    let mut tags = heapless::Vec::new();
    for t in list {
        if !format::valid_tag(t.as_bytes()) {
            return Err(Error::InvalidArgument);
        }
        if !tags.contains(t) {
            tags.push(*t).map_err(|_| Error::InvalidArgument)?;
        }
    }
    Ok((all, tags))
}

impl<D: BlockDevice> Database<D> {
    /// Stream the documents of `coll` carrying the tags `m` asks for, expired ones excluded;
    /// `f` returns false to stop. All-of comes in `_id` order; any-of in `_id` order per tag,
    /// tag by tag, each document once. RAM does not grow with the matches.
    /// [`Error::InvalidArgument`] for an empty list, more than 8 tags or an invalid tag.
    pub fn find_tagged(
        &mut self,
        coll: &str,
        m: TagMatch<'_>,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.find_tagged(coll, m, f))
    }

    /// Stream the keys of namespace `ns` carrying the tags `m` asks for (in key order per tag,
    /// as [`Database::find_tagged`]), expired ones excluded.
    pub fn kv_keys_tagged(
        &mut self,
        ns: &str,
        m: TagMatch<'_>,
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.kv_keys_tagged(ns, m, f))
    }

    /// Each tag used in `coll` with how many live documents carry it, in tag byte order;
    /// `f` returns false to stop.
    pub fn tag_counts(
        &mut self,
        coll: &str,
        f: &mut dyn FnMut(&str, u64) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.tag_counts(coll, f))
    }

    /// Each tag used in namespace `ns` with how many live entries carry it, in tag order.
    pub fn kv_tag_counts(
        &mut self,
        ns: &str,
        f: &mut dyn FnMut(&str, u64) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.kv_tag_counts(ns, f))
    }
}

impl<D: BlockDevice> Txn<'_, D> {
    /// Keep the tag entries of document `id` in step with its change from `old` to `new`.
    pub(super) fn update_doc_tags(
        &mut self,
        cid: u32,
        id: u64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        let depth = self.db.cfg.max_depth;
        let old = old.map_or(Ok(Vec::new()), |r| stored_doc_tags(r, depth))?;
        let new = new.map_or(Ok(Vec::new()), |r| stored_doc_tags(r, depth))?;
        let item = id.to_be_bytes();
        for t in old.iter().filter(|t| !new.contains(t)) {
            self.write(
                format::tag_key(format::TAG_DOC, cid, t.as_bytes(), &item),
                None,
            )?;
        }
        for t in new.iter().filter(|t| !old.contains(t)) {
            self.write(
                format::tag_key(format::TAG_DOC, cid, t.as_bytes(), &item),
                Some(Vec::new()),
            )?;
        }
        Ok(())
    }

    /// Keep the tag entries of KV `key` in step with its envelope going from `old` to `new`.
    pub(super) fn update_kv_tags(
        &mut self,
        nid: u32,
        key: &[u8],
        old: &[&[u8]],
        new: &[&[u8]],
    ) -> Result<()> {
        for t in old.iter().filter(|t| !new.contains(t)) {
            self.write(format::tag_key(format::TAG_KV, nid, t, key), None)?;
        }
        for t in new.iter().filter(|t| !old.contains(t)) {
            self.write(
                format::tag_key(format::TAG_KV, nid, t, key),
                Some(Vec::new()),
            )?;
        }
        Ok(())
    }

    /// See [`Database::find_tagged`].
    pub fn find_tagged(
        &mut self,
        coll: &str,
        m: TagMatch<'_>,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        let (all, tags) = query_tags(&m)?;
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(());
        };
        let runs = if all { 1 } else { tags.len() };
        for i in 0..runs {
            let Some(tag) = tags.get(i) else { break };
            let earlier = tags.get(..i).unwrap_or(&[]);
            let prefix = format::tag_run_prefix(format::TAG_DOC, cid, tag.as_bytes());
            let end = format::prefix_end(&prefix);
            let mut stop = false;
            self.batched(&prefix, end.as_deref(), &mut |t, k, _| {
                let (_, item) = format::tag_parts(k)?;
                let id = u64::from_be_bytes(item.try_into().map_err(|_| Error::Corrupt)?);
                // An entry without its document: the index disagrees with the data.
                let raw = t.read(&format::doc_key(cid, id))?.ok_or(Error::Corrupt)?;
                let Some(doc) = t.live_doc(id, &raw)? else {
                    return Ok(true);
                };
                let keep = if all {
                    tags.iter().all(|q| has_tag(&doc, q))
                } else {
                    !earlier.iter().any(|q| has_tag(&doc, q))
                };
                if keep && !f(doc)? {
                    stop = true;
                    return Ok(false);
                }
                Ok(true)
            })?;
            if stop {
                break;
            }
        }
        Ok(())
    }

    /// See [`Database::kv_keys_tagged`].
    pub fn kv_keys_tagged(
        &mut self,
        ns: &str,
        m: TagMatch<'_>,
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        let (all, tags) = query_tags(&m)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(());
        };
        let runs = if all { 1 } else { tags.len() };
        for i in 0..runs {
            let Some(tag) = tags.get(i) else { break };
            let earlier = tags.get(..i).unwrap_or(&[]);
            let prefix = format::tag_run_prefix(format::TAG_KV, nid, tag.as_bytes());
            let end = format::prefix_end(&prefix);
            let mut stop = false;
            self.batched(&prefix, end.as_deref(), &mut |t, k, _| {
                let (_, item) = format::tag_parts(k)?;
                let raw = t.read(&format::kv_key(nid, item))?.ok_or(Error::Corrupt)?;
                let rec = format::decode_kv(&raw)?;
                if t.expired(rec.exp)? {
                    return Ok(true);
                }
                let has = |q: &&str| rec.tags.contains(&q.as_bytes());
                let keep = if all {
                    tags.iter().all(has)
                } else {
                    !earlier.iter().any(has)
                };
                if keep && !f(item)? {
                    stop = true;
                    return Ok(false);
                }
                Ok(true)
            })?;
            if stop {
                break;
            }
        }
        Ok(())
    }

    /// See [`Database::tag_counts`].
    pub fn tag_counts(
        &mut self,
        coll: &str,
        f: &mut dyn FnMut(&str, u64) -> Result<bool>,
    ) -> Result<()> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(());
        };
        self.count_runs(format::TAG_DOC, cid, f)
    }

    /// See [`Database::kv_tag_counts`].
    pub fn kv_tag_counts(
        &mut self,
        ns: &str,
        f: &mut dyn FnMut(&str, u64) -> Result<bool>,
    ) -> Result<()> {
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(());
        };
        self.count_runs(format::TAG_KV, nid, f)
    }

    /// Stream an owner's tag entries, counting live items per run of one tag.
    fn count_runs(
        &mut self,
        kind: u8,
        owner: u32,
        f: &mut dyn FnMut(&str, u64) -> Result<bool>,
    ) -> Result<()> {
        // Only when something has expired must each item be looked at.
        let check = self.any_expired()?;
        let prefix = format::tag_prefix(kind, owner);
        let end = format::prefix_end(&prefix);
        let mut run: Option<(String, u64)> = None;
        let mut stop = false;
        self.batched(&prefix, end.as_deref(), &mut |t, k, _| {
            let (tag, item) = format::tag_parts(k)?;
            let live = !check || t.item_live(kind, owner, item)?;
            match run.as_mut() {
                Some((r, n)) if r.as_bytes() == tag => *n += u64::from(live),
                _ => {
                    if let Some((r, n)) = run.take() {
                        if n > 0 && !f(&r, n)? {
                            stop = true;
                            return Ok(false);
                        }
                    }
                    // Tags are checked ASCII, so this never fails on a valid key.
                    let tag = core::str::from_utf8(tag).map_err(|_| Error::Corrupt)?;
                    run = Some((String::from(tag), u64::from(live)));
                }
            }
            Ok(true)
        })?;
        if let (false, Some((r, n))) = (stop, run) {
            if n > 0 {
                f(&r, n)?;
            }
        }
        Ok(())
    }

    /// Whether the document or KV entry a tag entry names is there and not expired.
    fn item_live(&mut self, kind: u8, owner: u32, item: &[u8]) -> Result<bool> {
        if kind == format::TAG_DOC {
            let id = u64::from_be_bytes(item.try_into().map_err(|_| Error::Corrupt)?);
            let raw = self
                .read(&format::doc_key(owner, id))?
                .ok_or(Error::Corrupt)?;
            let exp = format::decode_doc_header(&raw)?.0.exp;
            Ok(!self.expired(exp)?)
        } else {
            let raw = self
                .read(&format::kv_key(owner, item))?
                .ok_or(Error::Corrupt)?;
            let exp = format::decode_kv(&raw)?.exp;
            Ok(!self.expired(exp)?)
        }
    }
}
