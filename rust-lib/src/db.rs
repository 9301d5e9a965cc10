//! The public database API: collections of documents and key-value namespaces over the store.
//!
//! Every data operation runs in a transaction: [`Database`]'s own methods are one-operation
//! transactions, [`Database::transaction`] groups any number of them into one atomic commit.

use crate::crypto::{self, MasterKey, Sealer};
use crate::engine::{Store, StoreConfig, StoreStats, WriteSet};
use crate::flash::BlockDevice;
use crate::format::{self, CollMeta, RootHeader};
use crate::lfs::{Fs, LfsConfig};
use crate::value::{self, Map, Value};
use crate::{Error, Result};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

/// How the database is keyed. A database created with a key can only be opened with it.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// No encryption; every record still carries a CRC-32C.
    None,
    /// A raw 256-bit key.
    Raw(&'a [u8; 32]),
    /// PBKDF2-HMAC-SHA256 of a passphrase. `salt` and `iterations` are used when creating the
    /// database (give a random salt); on open, the values stored in the database are used.
    Passphrase {
        pass: &'a [u8],
        salt: [u8; 16],
        iterations: u32,
    },
}

/// Limits and tuning, all fixed at open. Every RAM buffer is sized from them.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub lfs: LfsConfig,
    pub store: StoreConfig,
    /// Largest encoded document (bytes).
    pub max_doc_bytes: usize,
    /// Deepest nesting of arrays and maps in a document.
    pub max_depth: usize,
    /// Longest collection or namespace name.
    pub max_name_len: usize,
    /// Longest key-value key.
    pub max_key_len: usize,
    /// Largest key-value value.
    pub max_value_len: usize,
    /// Entries fetched per refill by iterators (RAM per iterator = this many entries).
    pub iter_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        let store = StoreConfig::default();
        Config {
            // One open file per live segment plus the one being written, and the WAL.
            lfs: LfsConfig {
                max_open_files: store.max_segments + 2,
                ..LfsConfig::default()
            },
            store,
            max_doc_bytes: 1024,
            max_depth: value::DEFAULT_MAX_DEPTH,
            max_name_len: 32,
            max_key_len: 128,
            max_value_len: 1024,
            iter_batch: 8,
        }
    }
}

/// Database statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub store: StoreStats,
    pub segments: usize,
    pub segment_bytes: u64,
    pub memtable_bytes: usize,
}

/// A callback over live entries (key, value); returns false to stop.
type EntryFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// A collection's resolved id and metadata, cached across calls.
#[derive(Clone)]
struct CachedColl {
    name: String,
    id: u32,
}

const COLL_CACHE: usize = 4;

/// An open database.
pub struct Database<D: BlockDevice> {
    store: Store<D>,
    cfg: Config,
    clock: Option<Box<dyn FnMut() -> u64>>,
    last_ts: u64,
    colls: Vec<CachedColl>,
}

fn sealer_for(key: &Key<'_>, header: Option<&RootHeader>) -> Result<Sealer> {
    Ok(match key {
        Key::None => Sealer::plain(),
        Key::Raw(k) => Sealer::with_key(&MasterKey::from_bytes(k)),
        Key::Passphrase {
            pass,
            salt,
            iterations,
        } => {
            let (salt, iterations) = match header {
                Some(h) => (h.salt, h.kdf_iterations),
                None => (*salt, *iterations),
            };
            Sealer::with_key(&crypto::derive_from_passphrase(pass, &salt, iterations)?)
        }
    })
}

/// The littlefs configuration for `dev`: a zero `compact_thresh` becomes half a block (the
/// least littlefs accepts), so closing compacts every metadata log longer than that and the
/// next mount reads short logs.
fn lfs_config<D: BlockDevice>(cfg: &Config, dev: &D) -> LfsConfig {
    let mut lfs = cfg.lfs;
    if lfs.compact_thresh == 0 {
        lfs.compact_thresh = dev.geometry().block_size / 2;
    }
    lfs
}

fn new_header(key: &Key<'_>, sealer: &Sealer) -> RootHeader {
    let (flags, salt, iterations) = match key {
        Key::None => (0, [0; 16], 0),
        Key::Raw(_) => (format::FLAG_ENCRYPTED, [0; 16], 0),
        Key::Passphrase {
            salt, iterations, ..
        } => (
            format::FLAG_ENCRYPTED | format::FLAG_PASSPHRASE,
            *salt,
            *iterations,
        ),
    };
    RootHeader {
        version: format::FORMAT_VERSION,
        flags,
        kdf_iterations: iterations,
        salt,
        key_check: sealer.key_check(),
        generation: 0,
    }
}

impl<D: BlockDevice> Database<D> {
    /// Format the device (erasing everything on it) and create an empty database.
    pub fn format(dev: D, cfg: &Config, key: &Key<'_>) -> core::result::Result<Self, (Error, D)> {
        let sealer = match sealer_for(key, None) {
            Ok(s) => s,
            Err(e) => return Err((e, dev)),
        };
        let header = new_header(key, &sealer);
        let lfs = lfs_config(cfg, &dev);
        let dev = Fs::format(dev, &lfs)?;
        let fs = Fs::mount(dev, &lfs)?;
        let store = Store::create(fs, sealer, header, cfg.store)?;
        Ok(Self::assemble(store, *cfg))
    }

    /// Open an existing database. A wrong key is [`Error::WrongKey`] and changes nothing.
    pub fn open(dev: D, cfg: &Config, key: &Key<'_>) -> core::result::Result<Self, (Error, D)> {
        let lfs = lfs_config(cfg, &dev);
        let fs = match Fs::mount(dev, &lfs) {
            Ok(fs) => fs,
            // No valid littlefs superblock: nothing was ever formatted here (or it is destroyed).
            Err((Error::Corrupt, dev)) => return Err((Error::NotFormatted, dev)),
            Err(e) => return Err(e),
        };
        let store = Store::open(fs, &|header| sealer_for(key, Some(header)), cfg.store)?;
        Ok(Self::assemble(store, *cfg))
    }

    /// Open the database, or format the device and create one when none is there.
    pub fn open_or_format(
        dev: D,
        cfg: &Config,
        key: &Key<'_>,
    ) -> core::result::Result<Self, (Error, D)> {
        match Self::open(dev, cfg, key) {
            Err((Error::NotFormatted, dev)) => Self::format(dev, cfg, key),
            other => other,
        }
    }

    fn assemble(store: Store<D>, cfg: Config) -> Self {
        Database {
            store,
            cfg,
            clock: None,
            last_ts: 0,
            colls: Vec::new(),
        }
    }

    /// Set the platform clock that stamps `_ts` (any monotonic unit; milliseconds suggested).
    /// Without one, `_ts` stays at the highest value seen.
    pub fn set_clock(&mut self, clock: Box<dyn FnMut() -> u64>) {
        self.clock = Some(clock);
    }

    /// Unmount cleanly and hand the device back.
    pub fn close(self) -> (Result<()>, D) {
        self.store.close()
    }

    /// Drop the database without any flash I/O, as a power cut would (tests use this).
    pub fn into_device(self) -> D {
        self.store.into_device()
    }

    pub fn device(&self) -> &D {
        self.store.device()
    }

    pub fn device_mut(&mut self) -> &mut D {
        self.store.device_mut()
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        let man = self.store.manifest();
        Stats {
            store: self.store.stats(),
            segments: man.segments.len(),
            segment_bytes: man.segments.iter().map(|s| u64::from(s.bytes)).sum(),
            memtable_bytes: self.store.memtable_bytes(),
        }
    }

    /// Free blocks of the volume.
    pub fn free_blocks(&mut self) -> Result<u32> {
        self.store.free_blocks()
    }

    /// Fold everything committed into segment files (a clean point; open is cheapest after it).
    pub fn flush(&mut self) -> Result<()> {
        self.store.fold()
    }

    /// Merge all segments, reclaiming the space of deleted and overwritten data.
    pub fn compact(&mut self) -> Result<()> {
        self.store.compact()
    }

    /// Release the RAM that can be rebuilt on demand (open files, caches, scratch buffers).
    pub fn release_caches(&mut self) -> Result<()> {
        self.colls.clear();
        self.store.release_caches()
    }

    /// Re-encrypt the whole database under a new key (or remove/add encryption), atomically: a
    /// power cut leaves it readable with exactly one of the two keys.
    pub fn rekey(&mut self, new_key: &Key<'_>) -> Result<()> {
        let sealer = sealer_for(new_key, None)?;
        let header = new_header(new_key, &sealer);
        self.store.rekey(sealer, header)
    }

    /// Run `f` as one atomic transaction: committed if it returns Ok, discarded otherwise.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>) -> Result<R> {
        let mut txn = self.begin();
        let r = f(&mut txn)?;
        txn.commit()?;
        Ok(r)
    }

    /// Start a transaction. Dropping it without [`Txn::commit`] discards it.
    pub fn begin(&mut self) -> Txn<'_, D> {
        Txn {
            db: self,
            ws: WriteSet::new(),
            bytes: 0,
        }
    }

    fn now(&mut self) -> u64 {
        let t = self.clock.as_mut().map_or(0, |c| c());
        self.last_ts = self.last_ts.max(t);
        self.last_ts
    }

    // ------------------------------------------------------------------------------------------
    // One-operation conveniences.

    /// Insert a document (a map) into `coll`, creating the collection if needed; returns `_id`.
    pub fn insert(&mut self, coll: &str, doc: &Value) -> Result<u64> {
        self.transaction(|t| t.insert(coll, doc))
    }

    /// Insert a document given as JSON text.
    pub fn insert_json(&mut self, coll: &str, json: &str) -> Result<u64> {
        let doc = value::from_json(json.as_bytes(), self.cfg.max_depth)?;
        self.insert(coll, &doc)
    }

    /// The document with `_id == id`, with `_id`, `_ver` and `_ts` filled in.
    pub fn get(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        self.begin().get(coll, id)
    }

    /// The document as JSON text.
    pub fn get_json(&mut self, coll: &str, id: u64) -> Result<Option<String>> {
        Ok(self.get(coll, id)?.map(|v| {
            let mut s = String::new();
            value::to_json(&v, &mut s);
            s
        }))
    }

    /// Replace a document's body; `_ver` increases. [`Error::NotFound`] if it does not exist.
    pub fn replace(&mut self, coll: &str, id: u64, doc: &Value) -> Result<()> {
        self.transaction(|t| t.replace(coll, id, doc))
    }

    /// Apply `{"$set":..,"$unset":..,"$inc":..}` to a document. [`Error::NotFound`] if absent.
    pub fn patch(&mut self, coll: &str, id: u64, patch: &Value) -> Result<()> {
        self.transaction(|t| t.patch(coll, id, patch))
    }

    /// Delete a document; returns whether it existed.
    pub fn delete(&mut self, coll: &str, id: u64) -> Result<bool> {
        self.transaction(|t| t.delete(coll, id))
    }

    /// Number of documents in `coll` (0 for a missing collection).
    pub fn count(&mut self, coll: &str) -> Result<u64> {
        self.begin().count(coll)
    }

    /// Create an empty collection. [`Error::Exists`] if it exists.
    pub fn create_collection(&mut self, name: &str) -> Result<()> {
        self.transaction(|t| t.create_collection(name))
    }

    /// Drop a collection and all its documents. [`Error::NotFound`] if it does not exist.
    pub fn drop_collection(&mut self, name: &str) -> Result<()> {
        self.transaction(|t| t.drop_collection(name))
    }

    /// Names of all collections, in name order.
    pub fn collections(&mut self) -> Result<Vec<String>> {
        self.catalog_names(format::CAT_COLLECTION)
    }

    /// Names of all key-value namespaces, in name order.
    pub fn namespaces(&mut self) -> Result<Vec<String>> {
        self.catalog_names(format::CAT_NAMESPACE)
    }

    fn catalog_names(&mut self, kind: u8) -> Result<Vec<String>> {
        let prefix = [format::T_CATALOG, kind];
        let mut names = Vec::new();
        self.scan_prefix(&prefix, &mut |k, _| {
            let name = core::str::from_utf8(k.get(2..).ok_or(Error::Corrupt)?)
                .map_err(|_| Error::Corrupt)?;
            names.push(String::from(name));
            Ok(true)
        })?;
        Ok(names)
    }

    /// Visit every live entry under `prefix` in key order with bounded RAM; `f` returns false
    /// to stop.
    fn scan_prefix(&mut self, prefix: &[u8], f: &mut EntryFn<'_>) -> Result<()> {
        let end = format::prefix_end(prefix);
        let mut from = prefix.to_vec();
        let mut batch = Vec::new();
        loop {
            batch.clear();
            self.store.scan(
                &from,
                end.as_deref(),
                self.cfg.iter_batch.max(1),
                &mut batch,
            )?;
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            from = last.clone();
            from.push(0);
            for (k, v) in &batch {
                if !f(k, v)? {
                    return Ok(());
                }
            }
            if batch.len() < self.cfg.iter_batch.max(1) {
                return Ok(());
            }
        }
    }

    /// Documents of `coll` in `_id` order, streamed in batches of `iter_batch`.
    pub fn docs(&mut self, coll: &str) -> Result<DocIter<'_, D>> {
        let id = self.begin().collection_id(coll)?;
        Ok(DocIter {
            db: self,
            coll: id,
            next: 0,
            batch: Vec::new(),
            pos: 0,
            done: id.is_none(),
        })
    }

    /// Visit the documents of `coll` in `_id` order; `f` returns false to stop.
    pub fn for_each_doc(
        &mut self,
        coll: &str,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        for doc in self.docs(coll)? {
            if !f(doc?)? {
                break;
            }
        }
        Ok(())
    }

    // Key-value conveniences.

    /// Store `value` under `key` in namespace `ns` (created if needed).
    pub fn kv_put(&mut self, ns: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.transaction(|t| t.kv_put(ns, key, value))
    }

    pub fn kv_get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.begin().kv_get(ns, key)
    }

    pub fn kv_exists(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        Ok(self.kv_get(ns, key)?.is_some())
    }

    /// Delete `key`; returns whether it existed.
    pub fn kv_delete(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.transaction(|t| t.kv_delete(ns, key))
    }

    /// Visit the keys of `ns` that start with `prefix`, in byte order; `f` returns false to stop.
    pub fn kv_keys(
        &mut self,
        ns: &str,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        let Some(ns_id) = self.begin().namespace_id(ns)? else {
            return Ok(());
        };
        let mut p = format::kv_prefix(ns_id).to_vec();
        p.extend_from_slice(prefix);
        self.scan_prefix(&p, &mut |k, _| f(k.get(5..).ok_or(Error::Corrupt)?))
    }
}

/// An open transaction: reads see its own writes; nothing reaches flash before
/// [`Txn::commit`]; dropping it discards everything.
pub struct Txn<'a, D: BlockDevice> {
    db: &'a mut Database<D>,
    ws: WriteSet,
    bytes: usize,
}

impl<D: BlockDevice> Txn<'_, D> {
    /// Make every write of this transaction durable at once.
    pub fn commit(self) -> Result<()> {
        let touched_catalog = self
            .ws
            .keys()
            .any(|k| k.first() == Some(&format::T_CATALOG));
        if touched_catalog {
            self.db.colls.clear();
        }
        self.db.store.commit(self.ws)
    }

    /// Discard the transaction (the same as dropping it).
    pub fn rollback(self) {}

    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.ws.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.db.store.get(key),
        }
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<()> {
        let add = key.len() + value.as_ref().map_or(0, |v| v.len()) + 8;
        if self.bytes + add > self.db.store.max_commit_bytes() {
            return Err(Error::TxnTooLarge);
        }
        self.bytes += add;
        self.ws.insert(key, value);
        Ok(())
    }

    fn check_name(&self, name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= self.db.cfg.max_name_len
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidName)
        }
    }

    fn catalog_id(&mut self, kind: u8, name: &str) -> Result<Option<u32>> {
        self.check_name(name)?;
        if kind == format::CAT_COLLECTION
            && !self
                .ws
                .keys()
                .any(|k| k.first() == Some(&format::T_CATALOG))
        {
            if let Some(c) = self.db.colls.iter().find(|c| c.name == name) {
                return Ok(Some(c.id));
            }
        }
        let id = match self.read(&format::catalog_key(kind, name.as_bytes()))? {
            Some(v) => Some(format::decode_u32(&v)?),
            None => None,
        };
        if let (Some(id), format::CAT_COLLECTION) = (id, kind) {
            if !self
                .ws
                .contains_key(&format::catalog_key(kind, name.as_bytes()))
            {
                if self.db.colls.len() >= COLL_CACHE {
                    self.db.colls.remove(0);
                }
                self.db.colls.push(CachedColl {
                    name: String::from(name),
                    id,
                });
            }
        }
        Ok(id)
    }

    fn create_catalog(&mut self, kind: u8, name: &str) -> Result<u32> {
        let next = match self.read(&format::next_id_key())? {
            Some(v) => format::decode_u32(&v)?,
            None => 1,
        };
        let after = next.checked_add(1).ok_or(Error::NoSpace)?;
        self.write(format::next_id_key(), Some(format::encode_u32(after)))?;
        self.write(
            format::catalog_key(kind, name.as_bytes()),
            Some(format::encode_u32(next)),
        )?;
        Ok(next)
    }

    fn collection_id(&mut self, name: &str) -> Result<Option<u32>> {
        self.catalog_id(format::CAT_COLLECTION, name)
    }

    fn namespace_id(&mut self, name: &str) -> Result<Option<u32>> {
        self.catalog_id(format::CAT_NAMESPACE, name)
    }

    fn meta(&mut self, coll: u32) -> Result<CollMeta> {
        match self.read(&format::coll_meta_key(coll))? {
            Some(v) => CollMeta::decode(&v),
            None => Ok(CollMeta {
                next_id: 1,
                count: 0,
            }),
        }
    }

    fn set_meta(&mut self, coll: u32, m: CollMeta) -> Result<()> {
        self.write(format::coll_meta_key(coll), Some(m.encode()))
    }

    pub fn create_collection(&mut self, name: &str) -> Result<()> {
        if self.collection_id(name)?.is_some() {
            return Err(Error::Exists);
        }
        let id = self.create_catalog(format::CAT_COLLECTION, name)?;
        self.set_meta(
            id,
            CollMeta {
                next_id: 1,
                count: 0,
            },
        )
    }

    /// Drop a collection: its name goes now; its documents become unreachable at once and their
    /// space is reclaimed by the next full merge.
    pub fn drop_collection(&mut self, name: &str) -> Result<()> {
        let id = self.collection_id(name)?.ok_or(Error::NotFound)?;
        self.write(
            format::catalog_key(format::CAT_COLLECTION, name.as_bytes()),
            None,
        )?;
        self.write(format::coll_meta_key(id), None)?;
        self.write(format::dropped_key(id), Some(Vec::new()))
    }

    fn encode_doc(&mut self, doc: &Value, ver: u64) -> Result<Vec<u8>> {
        let map = doc.as_map().ok_or(Error::InvalidArgument)?;
        if doc.depth() > self.db.cfg.max_depth {
            return Err(Error::TooDeep);
        }
        // The automatic fields live in the key and the header, never in the body.
        let mut body = map.clone();
        for f in ["_id", "_ver", "_ts"] {
            body.remove(f);
        }
        let ts = self.db.now();
        let mut out = Vec::new();
        format::encode_doc_header(&mut out, ver, ts);
        value::encode(&Value::Map(body), &mut out)?;
        if out.len() > self.db.cfg.max_doc_bytes {
            return Err(Error::TooLarge);
        }
        Ok(out)
    }

    fn decode_doc(&self, id: u64, raw: &[u8]) -> Result<Value> {
        let (ver, ts, body) = format::decode_doc_header(raw)?;
        let Value::Map(body) = value::decode(body, self.db.cfg.max_depth)? else {
            return Err(Error::Corrupt);
        };
        let mut doc = Map::with_capacity(body.len() + 3);
        // Ids, versions and times are below 2^63 in practice; saturate rather than wrap.
        let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        doc.insert(String::from("_id"), int(id));
        doc.insert(String::from("_ver"), int(ver));
        doc.insert(String::from("_ts"), int(ts));
        doc.extend(body);
        Ok(Value::Map(doc))
    }

    /// Insert a document (a map); returns its new `_id`.
    pub fn insert(&mut self, coll: &str, doc: &Value) -> Result<u64> {
        let raw = self.encode_doc(doc, 1)?;
        let cid = match self.collection_id(coll)? {
            Some(id) => id,
            None => {
                let id = self.create_catalog(format::CAT_COLLECTION, coll)?;
                self.set_meta(
                    id,
                    CollMeta {
                        next_id: 1,
                        count: 0,
                    },
                )?;
                id
            }
        };
        let mut m = self.meta(cid)?;
        let id = m.next_id;
        m.next_id = id.checked_add(1).ok_or(Error::NoSpace)?;
        m.count += 1;
        self.write(format::doc_key(cid, id), Some(raw))?;
        self.set_meta(cid, m)?;
        Ok(id)
    }

    pub fn get(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(None);
        };
        match self.read(&format::doc_key(cid, id))? {
            Some(raw) => Ok(Some(self.decode_doc(id, &raw)?)),
            None => Ok(None),
        }
    }

    fn current(&mut self, coll: &str, id: u64) -> Result<(u32, u64, Map)> {
        let cid = self.collection_id(coll)?.ok_or(Error::NotFound)?;
        let raw = self
            .read(&format::doc_key(cid, id))?
            .ok_or(Error::NotFound)?;
        let (ver, _, body) = format::decode_doc_header(&raw)?;
        let Value::Map(body) = value::decode(body, self.db.cfg.max_depth)? else {
            return Err(Error::Corrupt);
        };
        Ok((cid, ver, body))
    }

    pub fn replace(&mut self, coll: &str, id: u64, doc: &Value) -> Result<()> {
        let (cid, ver, _) = self.current(coll, id)?;
        let raw = self.encode_doc(doc, ver.saturating_add(1))?;
        self.write(format::doc_key(cid, id), Some(raw))
    }

    pub fn patch(&mut self, coll: &str, id: u64, patch: &Value) -> Result<()> {
        let (cid, ver, mut body) = self.current(coll, id)?;
        value::apply_patch(&mut body, patch, self.db.cfg.max_depth)?;
        let raw = self.encode_doc(&Value::Map(body), ver.saturating_add(1))?;
        self.write(format::doc_key(cid, id), Some(raw))
    }

    pub fn delete(&mut self, coll: &str, id: u64) -> Result<bool> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(false);
        };
        let key = format::doc_key(cid, id);
        if self.read(&key)?.is_none() {
            return Ok(false);
        }
        let mut m = self.meta(cid)?;
        m.count = m.count.saturating_sub(1);
        self.write(key, None)?;
        self.set_meta(cid, m)?;
        Ok(true)
    }

    pub fn count(&mut self, coll: &str) -> Result<u64> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(0);
        };
        Ok(self.meta(cid)?.count)
    }

    fn check_kv(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if key.is_empty() || key.len() > self.db.cfg.max_key_len {
            return Err(Error::InvalidName);
        }
        if value.is_some_and(|v| v.len() > self.db.cfg.max_value_len) {
            return Err(Error::TooLarge);
        }
        Ok(())
    }

    pub fn kv_put(&mut self, ns: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_kv(key, Some(value))?;
        let nid = match self.namespace_id(ns)? {
            Some(id) => id,
            None => self.create_catalog(format::CAT_NAMESPACE, ns)?,
        };
        self.write(format::kv_key(nid, key), Some(value.to_vec()))
    }

    pub fn kv_get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_kv(key, None)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(None);
        };
        self.read(&format::kv_key(nid, key))
    }

    pub fn kv_delete(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.check_kv(key, None)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(false);
        };
        let k = format::kv_key(nid, key);
        if self.read(&k)?.is_none() {
            return Ok(false);
        }
        self.write(k, None)?;
        Ok(true)
    }
}

/// Documents of one collection in `_id` order; holds at most `iter_batch` of them in RAM.
pub struct DocIter<'a, D: BlockDevice> {
    db: &'a mut Database<D>,
    coll: Option<u32>,
    next: u64,
    batch: Vec<(Vec<u8>, Vec<u8>)>,
    pos: usize,
    done: bool,
}

impl<D: BlockDevice> Iterator for DocIter<'_, D> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        let coll = self.coll?;
        if self.pos >= self.batch.len() {
            if self.done {
                return None;
            }
            self.batch.clear();
            self.pos = 0;
            let start = format::doc_key(coll, self.next);
            let end = Some(format::docs_end(coll));
            let n = self.db.cfg.iter_batch.max(1);
            if let Err(e) = self
                .db
                .store
                .scan(&start, end.as_deref(), n, &mut self.batch)
            {
                self.done = true;
                return Some(Err(e));
            }
            if self.batch.len() < n {
                self.done = true;
            }
            match self
                .batch
                .last()
                .and_then(|(k, _)| format::doc_id_of(coll, k))
            {
                Some(last) => match last.checked_add(1) {
                    Some(n) => self.next = n,
                    None => self.done = true,
                },
                None => return None,
            }
        }
        let (k, raw) = self.batch.get(self.pos)?;
        self.pos += 1;
        let Some(id) = format::doc_id_of(coll, k) else {
            return Some(Err(Error::Corrupt));
        };
        let txn = Txn {
            db: &mut *self.db,
            ws: WriteSet::new(),
            bytes: 0,
        };
        let raw = raw.clone();
        Some(txn.decode_doc(id, &raw))
    }
}
