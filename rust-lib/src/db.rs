//! The public database API: collections of documents and key-value namespaces over the store.
//!
//! Every data operation runs in a transaction: [`Database`]'s own methods are one-operation
//! transactions, [`Database::transaction`] groups any number of them into one atomic commit.

use crate::crypto::{self, MasterKey, Sealer};
use crate::engine::{Store, StoreConfig, StoreStats, WriteSet};
use crate::flash::BlockDevice;
use crate::format::{self, CollMeta, RootHeader};
use crate::index::{self, IndexDef};
use crate::lfs::{Fs, LfsConfig};
use crate::planner::{self, Access, Plan};
use crate::query::{compare_docs, Distinct, Filter, FindOptions, Limits as FilterLimits, Order};
use crate::schema::{Schema, Violation};
use crate::value::{self, Map, Value};
use crate::{Error, Result};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

mod backups;
mod batch;
mod capped;
mod events;
mod expiry;
mod maint;
mod ring;
mod stats;
mod tags;
mod time;

pub use backups::{BackupKeySpec, LastBackup, RestoreReport};
pub use expiry::{KvEntry, SweepReport, WriteOptions};
pub use maint::{CheckReport, RepairReport};
pub use ring::{BackupRing, RingBackup, RingStatus, MAX_RING_SLOTS};
pub use tags::TagMatch;

use capped::check_fits;
pub use capped::{CollStats, CollectionOptions};
pub use events::{
    Event, Level, EVENTS, EVENT_BACKUP, EVENT_CORRUPTION, EVENT_REKEY, EVENT_REPAIR, EVENT_RESTORE,
    MAX_EVENT_MSG,
};
pub use stats::{OpStat, OpStats, Space, Statistics, Wear};

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
    /// Most documents a find holds to sort in memory when no index gives the order.
    pub max_sort_docs: usize,
    /// Capacity (documents) of the event log [`EVENTS`], fixed when the log is first written;
    /// 0 turns the event log off.
    pub event_log_docs: u64,
    /// How far database time may run past its persisted mark before the mark is rewritten
    /// (in clock units; also how far the time jumps at a reopen). See [`Database::now`].
    pub time_step: u64,
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
            iter_batch: 16,
            max_sort_docs: 64,
            event_log_docs: 64,
            time_step: 60_000,
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
/// A callback over batches of live entries, given the database between batches; returns false
/// to stop.
type BatchFn<'a, D> = dyn FnMut(&mut Database<D>, &[(Vec<u8>, Vec<u8>)]) -> Result<bool> + 'a;

/// A collection's resolved id and metadata, cached across calls.
#[derive(Clone)]
struct CachedColl {
    name: String,
    id: u32,
}

const COLL_CACHE: usize = 4;
/// Most indexes one collection may have.
pub const MAX_INDEXES: usize = 8;

/// What [`Database::list_indexes`] reports of an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    pub fields: Vec<String>,
    pub unique: bool,
    pub partial: Option<Value>,
    pub multikey: bool,
}

/// The platform's random source: fills the buffer with random bytes.
pub type RandomFn = Box<dyn FnMut(&mut [u8]) + Send>;

/// An open database.
pub struct Database<D: BlockDevice> {
    store: Store<D>,
    cfg: Config,
    clock: time::Clock,
    /// What is known of the earliest expiry entry (spares a seek when nothing has expired).
    expiry_bound: expiry::Bound,
    colls: Vec<CachedColl>,
    /// Index definitions of recently used collections.
    indexes: Vec<(u32, Vec<IndexDef>)>,
    /// Schemas of recently used collections (None: no schema).
    schemas: Vec<(u32, Option<Schema>)>,
    /// The field and rule of the last [`Error::SchemaViolation`].
    last_violation: Option<Violation>,
    /// The platform's random source, if it gave one.
    random: Option<RandomFn>,
    /// Integrity checks since open that found problems.
    corruption_events: u32,
    /// Operation counters since open (RAM only).
    ops: OpStats,
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
        Ok(Self::assemble(store, *cfg, None))
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
        let mut store = Store::open(fs, &|header| sealer_for(key, Some(header)), cfg.store)?;
        // Time starts past every time issued before (see `time`).
        let mark = match store
            .get(&time::mark_key())
            .and_then(|m| time::load_mark(m.as_deref()))
        {
            Ok(m) => m,
            Err(e) => return Err((e, store.into_device())),
        };
        let mut db = Self::assemble(store, *cfg, mark);
        // An index build cut by power loss: drop the half-built index. (Opened for repair,
        // an unreadable page is left to the repair.)
        match db.abandon_index_build() {
            Ok(()) => {}
            Err(Error::Corrupt) if cfg.store.salvage => {}
            Err(e) => return Err((e, db.into_device())),
        }
        Ok(db)
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

    fn assemble(store: Store<D>, cfg: Config, mark: Option<u64>) -> Self {
        Database {
            store,
            clock: time::Clock::new(mark, cfg.time_step),
            expiry_bound: expiry::Bound::Unknown,
            cfg,
            colls: Vec::new(),
            indexes: Vec::new(),
            schemas: Vec::new(),
            last_violation: None,
            random: None,
            corruption_events: 0,
            ops: OpStats::default(),
        }
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
        self.indexes.clear();
        self.schemas.clear();
        self.store.release_caches()
    }

    /// Re-encrypt the whole database under a new key (or remove/add encryption), atomically: a
    /// power cut leaves it readable with exactly one of the two keys.
    pub fn rekey(&mut self, new_key: &Key<'_>) -> Result<()> {
        let sealer = sealer_for(new_key, None)?;
        let header = new_header(new_key, &sealer);
        self.store.rekey(sealer, header)?;
        // Best effort: the rekey is done whether or not its event can be written.
        let _ = self.log_event(Level::Info, EVENT_REKEY, "database rekeyed");
        Ok(())
    }

    /// Run `f` as one atomic transaction: committed if it returns Ok, discarded otherwise.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&mut Txn<'_, D>) -> Result<R>) -> Result<R> {
        let mut txn = self.begin();
        match f(&mut txn) {
            Ok(r) => {
                txn.commit()?;
                Ok(r)
            }
            Err(e) => {
                txn.keep_time();
                Err(e)
            }
        }
    }

    /// Start a transaction. Dropping it without [`Txn::commit`] discards it.
    pub fn begin(&mut self) -> Txn<'_, D> {
        Txn {
            db: self,
            ws: WriteSet::new(),
            bytes: 0,
            now: None,
            mark: None,
            first_reading: None,
        }
    }

    /// Continue a transaction set aside with [`Txn::suspend`]. Its reads see the store as it is
    /// now, overlaid with its own writes; so resume it only while nothing else has committed
    /// since it was suspended, or its writes (counts, index entries, unique checks) may rest on
    /// a state that is gone. [`crate::shared::Shared`] guarantees that with its one-writer rule.
    pub fn resume(&mut self, pending: PendingTxn) -> Txn<'_, D> {
        let mut t = self.begin();
        t.ws = pending.ws;
        t.bytes = pending.bytes;
        t
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

    /// The document with `_id == id`, with `_id`, `_ver` and `_ts` (and `_exp` if it expires)
    /// filled in. An expired document is absent.
    pub fn get(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        self.read_txn(|t| t.get(coll, id))
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

    /// Number of documents in `coll` (0 for a missing collection), expired ones excluded.
    pub fn count(&mut self, coll: &str) -> Result<u64> {
        self.read_txn(|t| t.count(coll))
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
        self.for_each_batch(prefix, &mut |_, batch| {
            for (k, v) in batch {
                if !f(k, v)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Visit every live entry under `prefix` a batch of `iter_batch` at a time; `f` gets the
    /// database between batches (so it may read or commit) and returns false to stop.
    fn for_each_batch(&mut self, prefix: &[u8], f: &mut BatchFn<'_, D>) -> Result<()> {
        let end = format::prefix_end(prefix);
        self.for_each_batch_in(prefix, end.as_deref(), f)
    }

    /// [`Database::for_each_batch`] over the keys `start <= key < end`.
    fn for_each_batch_in(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        f: &mut BatchFn<'_, D>,
    ) -> Result<()> {
        let n = self.cfg.iter_batch.max(1);
        let mut from = start.to_vec();
        let mut batch = Vec::new();
        loop {
            batch.clear();
            self.store.scan(&from, end, n, &mut batch)?;
            if !f(self, &batch)? {
                return Ok(());
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
            now: None,
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

    // ------------------------------------------------------------------------------------------
    // Validation

    /// Validate every later write to `coll` against `schema` (a JSON Schema subset, see
    /// docs/SPEC.md "Document validation"); `None` removes it. Documents already stored are not
    /// re-checked.
    pub fn set_schema(&mut self, coll: &str, schema: Option<&Value>) -> Result<()> {
        let encoded = match schema {
            Some(v) => {
                let compiled = Schema::from_value(v, self.cfg.max_depth)?;
                let mut out = Vec::new();
                value::encode(&compiled.to_value(), &mut out)?;
                Some(out)
            }
            None => None,
        };
        check_user_name(coll)?;
        self.transaction(|t| {
            let cid = match t.collection_id(coll)? {
                Some(id) => id,
                None => t.new_collection(coll)?,
            };
            t.write(schema_key(cid), encoded)
        })
    }

    /// The schema of `coll`, if it has one.
    pub fn schema(&mut self, coll: &str) -> Result<Option<Value>> {
        let mut t = self.begin();
        let Some(cid) = t.collection_id(coll)? else {
            return Ok(None);
        };
        Ok(t.schema_of(cid)?.map(|s| s.to_value()))
    }

    /// The field and rule behind the last [`Error::SchemaViolation`].
    pub fn last_violation(&self) -> Option<&Violation> {
        self.last_violation.as_ref()
    }

    // ------------------------------------------------------------------------------------------
    // Queries

    /// Stream the documents of `coll` matching `filter` (a filter document, see docs/SPEC.md
    /// "Query language") with `opts` applied, to `f`; `f` returns false to stop. Without a sort,
    /// documents come in the plan's order (`_id` order for a scan, index order through an
    /// index; [`Database::explain`] tells which). RAM is bounded:
    /// documents stream one batch at a time, except that a sort no index provides keeps at most
    /// `skip + limit` documents (or `max_sort_docs` without a limit: [`Error::TooLarge`] past it).
    pub fn find(
        &mut self,
        coll: &str,
        filter: &Value,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        let compiled = Filter::from_value(filter, &self.filter_limits())?;
        self.read_txn(|t| t.find(coll, &compiled, Some(filter), opts, f))
    }

    /// [`Database::find`] with a filter built in Rust ([`Filter`]'s builder). Partial indexes
    /// are used only by filters given as documents.
    pub fn find_with(
        &mut self,
        coll: &str,
        filter: &Filter,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.find(coll, filter, None, opts, f))
    }

    /// [`Database::find`] with the filter and options as JSON text, collecting the results.
    pub fn find_json(&mut self, coll: &str, filter: &str, opts: &str) -> Result<Vec<Value>> {
        let fv = value::from_json(filter.as_bytes(), self.cfg.max_depth)?;
        let opts = if opts.trim().is_empty() {
            FindOptions::default()
        } else {
            FindOptions::from_json(opts.as_bytes(), &self.filter_limits())?
        };
        let mut out = Vec::new();
        self.find(coll, &fv, &opts, &mut |d| {
            out.push(d);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The plan a find would use, as a document: `{"access":"scan"|"index", ...}`.
    pub fn explain(&mut self, coll: &str, filter: &Value, opts: &FindOptions) -> Result<Value> {
        let compiled = Filter::from_value(filter, &self.filter_limits())?;
        let mut t = self.begin();
        let Some(cid) = t.collection_id(coll)? else {
            return Ok(Plan {
                access: Access::Scan,
                ordered: true,
            }
            .explain(!opts.sort.is_empty()));
        };
        let defs = t.indexes(cid)?;
        Ok(planner::plan(&defs, &compiled, Some(filter), opts)?.explain(!opts.sort.is_empty()))
    }

    /// Number of documents matching `filter`.
    pub fn count_where(&mut self, coll: &str, filter: &Value) -> Result<u64> {
        let mut n = 0u64;
        self.find(coll, filter, &FindOptions::default(), &mut |_| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    /// The first matching document in the options' order (`_id` order when they have no sort).
    pub fn first(
        &mut self,
        coll: &str,
        filter: &Value,
        opts: &FindOptions,
    ) -> Result<Option<Value>> {
        let mut opts = opts.clone();
        if opts.sort.is_empty() {
            opts.sort.push((String::from("_id"), Order::Asc));
        }
        opts.limit = Some(1);
        let mut found = None;
        self.find(coll, filter, &opts, &mut |d| {
            found = Some(d);
            Ok(false)
        })?;
        Ok(found)
    }

    /// The matching document with the highest `_id`.
    pub fn last(&mut self, coll: &str, filter: &Value) -> Result<Option<Value>> {
        let opts = FindOptions {
            sort: alloc::vec![(String::from("_id"), Order::Desc)],
            limit: Some(1),
            ..FindOptions::default()
        };
        self.first(coll, filter, &opts)
    }

    /// The value of `field` in each matching document that has it, in result order.
    pub fn pluck(
        &mut self,
        coll: &str,
        filter: &Value,
        field: &str,
        opts: &FindOptions,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        self.find(coll, filter, opts, &mut |d| {
            if let Some(v) = value::get_path(&d, field) {
                out.push(v.clone());
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// The distinct values of `field` among matching documents (at most `max_list` of them).
    pub fn distinct(&mut self, coll: &str, filter: &Value, field: &str) -> Result<Vec<Value>> {
        let mut d = Distinct::new(self.filter_limits().max_list);
        let mut err = Ok(());
        self.find(coll, filter, &FindOptions::default(), &mut |doc| {
            if let Err(e) = d.push_field(&doc, field) {
                err = Err(e);
                return Ok(false);
            }
            Ok(true)
        })?;
        err?;
        Ok(d.into_values())
    }

    /// Apply `patch` (`$set $unset $inc $push $pull`) to every matching document, atomically:
    /// all of them or none. Returns how many were updated (in a capped collection, a match
    /// evicted by the growth of an earlier one is not updated).
    pub fn update_many(&mut self, coll: &str, filter: &Value, patch: &Value) -> Result<u64> {
        let compiled = Filter::from_value(filter, &self.filter_limits())?;
        self.transaction(|t| {
            let ids = t.matching_ids(coll, &compiled, Some(filter))?;
            let mut n = 0u64;
            for id in &ids {
                if !t.still_there(coll, *id)? {
                    continue;
                }
                t.patch(coll, *id, patch)?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Delete every matching document, atomically. Returns how many were deleted.
    pub fn delete_many(&mut self, coll: &str, filter: &Value) -> Result<u64> {
        let compiled = Filter::from_value(filter, &self.filter_limits())?;
        self.transaction(|t| {
            let ids = t.matching_ids(coll, &compiled, Some(filter))?;
            for id in &ids {
                t.delete(coll, *id)?;
            }
            Ok(ids.len() as u64)
        })
    }

    // ------------------------------------------------------------------------------------------
    // Secondary indexes

    /// Limits for filters (partial indexes, queries) derived from the configuration.
    fn filter_limits(&self) -> FilterLimits {
        FilterLimits {
            max_depth: self.cfg.max_depth.min(FilterLimits::default().max_depth),
            ..FilterLimits::default()
        }
    }

    /// Create a secondary index on `fields` (dotted paths, most significant first) of `coll`
    /// and fill it from the documents already there. Crash-safe: after a power cut the index is
    /// either complete or absent. [`Error::Unique`] (and no index) if a unique index finds a
    /// duplicate.
    pub fn create_index(&mut self, coll: &str, name: &str, spec: &IndexSpec<'_>) -> Result<()> {
        if spec.fields.is_empty() || spec.fields.len() > index::MAX_FIELDS {
            return Err(Error::InvalidArgument);
        }
        if spec
            .fields
            .iter()
            .any(|f| f.is_empty() || f.split('.').any(str::is_empty))
        {
            return Err(Error::InvalidArgument);
        }
        if let Some(p) = spec.partial {
            Filter::from_value(p, &self.filter_limits())?;
        }
        check_user_name(coll)?;
        // A build that failed earlier in this session and whose clean-up failed too: drop it
        // now, or the new build's marker would replace its marker and expose it half-built.
        self.abandon_index_build()?;
        let (cid, mut def) = self.transaction(|t| {
            t.check_name(name)?;
            let cid = match t.collection_id(coll)? {
                Some(id) => id,
                None => t.new_collection(coll)?,
            };
            if t.read(&format::index_def_key(cid, name.as_bytes()))?
                .is_some()
            {
                return Err(Error::Exists);
            }
            if t.indexes(cid)?.len() >= MAX_INDEXES {
                return Err(Error::TooLarge);
            }
            let def = IndexDef {
                id: t.allocate_id()?,
                name: String::from(name),
                fields: spec.fields.iter().map(|f| String::from(*f)).collect(),
                unique: spec.unique,
                partial: spec.partial.cloned(),
                multikey: false,
            };
            t.write(
                format::index_def_key(cid, name.as_bytes()),
                Some(def.encode()?),
            )?;
            t.write(building_key(), Some(building_value(def.id, cid, name)))?;
            Ok((cid, def))
        })?;
        match self.fill_index(cid, &mut def) {
            Ok(()) => self.transaction(|t| {
                t.write(
                    format::index_def_key(cid, name.as_bytes()),
                    Some(def.encode()?),
                )?;
                t.write(building_key(), None)
            }),
            Err(e) => {
                self.abandon_index_build()?;
                Err(e)
            }
        }
    }

    /// Index every document of `cid`, a few per commit, so no transaction outgrows the WAL.
    fn fill_index(&mut self, cid: u32, def: &mut IndexDef) -> Result<()> {
        let end = format::docs_end(cid);
        let budget = self.store.max_commit_bytes() / 2;
        self.for_each_batch_in(&format::doc_key(cid, 0), Some(&end), &mut |db, batch| {
            let mut t = db.begin();
            for (k, raw) in batch {
                let id = format::doc_id_of(cid, k).ok_or(Error::Corrupt)?;
                // An expired document stays expired (time never goes back): never index it.
                if t.expired(format::decode_doc_header(raw)?.0.exp)? {
                    continue;
                }
                let (keys, multikey) = t.doc_entries(def, id, Some(raw))?;
                let need: usize = keys.iter().map(|k| k.len() + 8).sum();
                if t.bytes + need > budget && !t.ws.is_empty() {
                    t.commit()?;
                    t = db.begin();
                }
                for key in keys {
                    if def.unique && !index::is_all_null(&key) {
                        t.check_unique(&key, id, None)?;
                    }
                    t.write(key, Some(Vec::new()))?;
                }
                def.multikey |= multikey;
            }
            t.commit()?;
            Ok(true)
        })
    }

    /// Drop an index whose build did not finish (a failed build, or one cut by power loss).
    fn abandon_index_build(&mut self) -> Result<()> {
        let Some(v) = self.store.get(&building_key())? else {
            return Ok(());
        };
        let (id, cid, name) = parse_building(&v)?;
        self.transaction(|t| {
            t.write(format::index_def_key(cid, name.as_bytes()), None)?;
            t.write(format::dropped_key(id), Some(Vec::new()))?;
            t.write(building_key(), None)
        })
    }

    /// Drop an index. [`Error::NotFound`] if `coll` has no index `name`.
    pub fn drop_index(&mut self, coll: &str, name: &str) -> Result<()> {
        check_user_name(coll)?;
        self.transaction(|t| {
            let cid = t.collection_id(coll)?.ok_or(Error::NotFound)?;
            let def = t
                .indexes(cid)?
                .into_iter()
                .find(|d| d.name == name)
                .ok_or(Error::NotFound)?;
            t.forget_index(cid, &def)
        })
    }

    /// The indexes of `coll`, in name order (empty for a missing collection).
    pub fn list_indexes(&mut self, coll: &str) -> Result<Vec<IndexInfo>> {
        let mut t = self.begin();
        let Some(cid) = t.collection_id(coll)? else {
            return Ok(Vec::new());
        };
        Ok(t.indexes(cid)?
            .into_iter()
            .map(|d| IndexInfo {
                name: d.name,
                fields: d.fields,
                unique: d.unique,
                partial: d.partial,
                multikey: d.multikey,
            })
            .collect())
    }

    // Key-value conveniences.

    /// Store `value` under `key` in namespace `ns` (created if needed), without expiry or tags
    /// (a put replaces the whole entry).
    pub fn kv_put(&mut self, ns: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.transaction(|t| t.kv_put(ns, key, value))
    }

    /// The value under `key` (None: absent or expired).
    pub fn kv_get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read_txn(|t| t.kv_get(ns, key))
    }

    pub fn kv_exists(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        Ok(self.kv_get(ns, key)?.is_some())
    }

    /// Delete `key`; returns whether it existed.
    pub fn kv_delete(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.transaction(|t| t.kv_delete(ns, key))
    }

    /// Visit the keys of `ns` that start with `prefix`, in byte order, expired ones excluded;
    /// `f` returns false to stop.
    pub fn kv_keys(
        &mut self,
        ns: &str,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.read_txn(|t| t.kv_keys(ns, prefix, f))
    }
}

/// What a new index covers.
#[derive(Debug, Clone, Copy)]
pub struct IndexSpec<'a> {
    /// Dotted field paths, most significant first (at most 4).
    pub fields: &'a [&'a str],
    /// Refuse a second document with the same indexed value(s).
    pub unique: bool,
    /// Index only the documents matching this filter.
    pub partial: Option<&'a Value>,
}

/// Names starting with `_` belong to the system (the event log [`EVENTS`]): users read them
/// but do not write them.
fn check_user_name(name: &str) -> Result<()> {
    if name.starts_with('_') {
        Err(Error::InvalidName)
    } else {
        Ok(())
    }
}

/// The catalog key of collection `cid`'s schema.
fn schema_key(cid: u32) -> Vec<u8> {
    format::catalog_key(format::CAT_SCHEMA, &cid.to_be_bytes())
}

fn building_key() -> Vec<u8> {
    format::catalog_key(format::CAT_BUILDING, &[])
}

/// The in-progress marker: index id, collection id, index name.
fn building_value(id: u32, cid: u32, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    format::put_varint(&mut v, u64::from(id));
    format::put_varint(&mut v, u64::from(cid));
    v.extend_from_slice(name.as_bytes());
    v
}

fn parse_building(v: &[u8]) -> Result<(u32, u32, String)> {
    let mut r = format::Reader::new(v);
    let id = r.varint_u32()?;
    let cid = r.varint_u32()?;
    let name = core::str::from_utf8(v.get(r.pos()..).ok_or(Error::Corrupt)?)
        .map_err(|_| Error::Corrupt)?;
    Ok((id, cid, String::from(name)))
}

/// The writes of a suspended transaction ([`Txn::suspend`]), held outside the database.
/// Its RAM is bounded like an open transaction's: by the store's largest commit.
#[derive(Clone, Default)]
pub struct PendingTxn {
    ws: WriteSet,
    bytes: usize,
}

impl PendingTxn {
    /// Keys written (puts and deletes).
    pub fn writes(&self) -> usize {
        self.ws.len()
    }

    /// Bytes counted against the commit bound so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether it holds no write.
    pub fn is_empty(&self) -> bool {
        self.ws.is_empty()
    }
}

/// An open transaction: reads see its own writes; nothing reaches flash before
/// [`Txn::commit`]; dropping it discards everything.
pub struct Txn<'a, D: BlockDevice> {
    db: &'a mut Database<D>,
    ws: WriteSet,
    bytes: usize,
    /// This transaction's time, read at first use.
    now: Option<u64>,
    /// The time mark this transaction writes, if its time reached past the persisted one.
    mark: Option<u64>,
    /// A clock reading taken by the call in progress (its timing), to be this transaction's
    /// time if it needs one, so timing costs no extra reading.
    first_reading: Option<u64>,
}

/// A transaction's state before a call, restored if the call fails.
struct Savepoint {
    ws: WriteSet,
    bytes: usize,
    now: Option<u64>,
    mark: Option<u64>,
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
            self.db.indexes.clear();
            self.db.schemas.clear();
        }
        if self.ws.is_empty() {
            return Ok(());
        }
        let t0 = self.db.op_start();
        let r = self.db.store.commit(self.ws);
        self.db.op_end(stats::OpClass::Commit, t0, r.is_err());
        r?;
        if let Some(m) = self.mark {
            self.db.clock.marked(m);
        }
        Ok(())
    }

    /// Discard the transaction (the same as dropping it).
    pub fn rollback(self) {}

    /// Set the transaction aside, writes and all, releasing the database; continue it with
    /// [`Database::resume`]. Nothing is written. The database's caches never hold a suspended
    /// transaction's writes (a transaction puts there only values it read from the store, and
    /// uses them only while its writes leave the catalog alone), so other readers meanwhile see
    /// the committed state only.
    pub fn suspend(self) -> PendingTxn {
        PendingTxn {
            ws: self.ws,
            bytes: self.bytes,
        }
    }

    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.ws.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.db.store.get(key),
        }
    }

    /// What a failed call returns the transaction to (see `Txn::timed`).
    fn savepoint(&self) -> Savepoint {
        Savepoint {
            ws: self.ws.clone(),
            bytes: self.bytes,
            now: self.now,
            mark: self.mark,
        }
    }

    fn rollback_to(&mut self, s: Savepoint) {
        self.ws = s.ws;
        self.bytes = s.bytes;
        self.now = s.now;
        self.mark = s.mark;
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<()> {
        let cost = |v: &Option<Vec<u8>>| key.len() + v.as_ref().map_or(0, |v| v.len()) + 8;
        // A key written again (a collection's metadata in a batch) replaces its earlier cost.
        let earlier = self.ws.get(&key).map_or(0, cost);
        let bytes = self.bytes.saturating_sub(earlier) + cost(&value);
        if bytes > self.db.store.max_commit_bytes() {
            return Err(Error::TxnTooLarge);
        }
        self.bytes = bytes;
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

    /// A fresh id for a collection, namespace or index; ids are never reused.
    fn allocate_id(&mut self) -> Result<u32> {
        let next = match self.read(&format::next_id_key())? {
            Some(v) => format::decode_u32(&v)?,
            None => 1,
        };
        let after = next.checked_add(1).ok_or(Error::NoSpace)?;
        self.write(format::next_id_key(), Some(format::encode_u32(after)))?;
        Ok(next)
    }

    fn create_catalog(&mut self, kind: u8, name: &str) -> Result<u32> {
        let id = self.allocate_id()?;
        self.write(
            format::catalog_key(kind, name.as_bytes()),
            Some(format::encode_u32(id)),
        )?;
        Ok(id)
    }

    fn new_collection(&mut self, name: &str) -> Result<u32> {
        let id = self.create_catalog(format::CAT_COLLECTION, name)?;
        self.set_meta(id, CollMeta::default())?;
        Ok(id)
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
            None => Ok(CollMeta::default()),
        }
    }

    fn set_meta(&mut self, coll: u32, m: CollMeta) -> Result<()> {
        self.write(format::coll_meta_key(coll), Some(m.encode()))
    }

    pub fn create_collection(&mut self, name: &str) -> Result<()> {
        check_user_name(name)?;
        if self.collection_id(name)?.is_some() {
            return Err(Error::Exists);
        }
        self.new_collection(name).map(|_| ())
    }

    /// Drop a collection: its name goes now; its documents become unreachable at once and their
    /// space is reclaimed by the next full merge.
    pub fn drop_collection(&mut self, name: &str) -> Result<()> {
        check_user_name(name)?;
        let id = self.collection_id(name)?.ok_or(Error::NotFound)?;
        for def in self.indexes(id)? {
            self.forget_index(id, &def)?;
        }
        if self.read(&schema_key(id))?.is_some() {
            self.write(schema_key(id), None)?;
        }
        self.write(
            format::catalog_key(format::CAT_COLLECTION, name.as_bytes()),
            None,
        )?;
        self.write(format::coll_meta_key(id), None)?;
        self.write(format::dropped_key(id), Some(Vec::new()))
    }

    fn encode_doc(&mut self, doc: &Value, ver: u64, exp: Option<u64>) -> Result<Vec<u8>> {
        let map = doc.as_map().ok_or(Error::InvalidArgument)?;
        if doc.depth() > self.db.cfg.max_depth {
            return Err(Error::TooDeep);
        }
        tags::doc_tags(map)?;
        // The automatic fields live in the key and the header, never in the body.
        let mut body = map.clone();
        for f in value::RESERVED_FIELDS {
            body.remove(f);
        }
        let ts = self.now()?;
        let mut out = Vec::new();
        format::encode_doc_header(&mut out, &format::DocHeader { ver, ts, exp });
        value::encode(&Value::Map(body), &mut out)?;
        if out.len() > self.db.cfg.max_doc_bytes {
            return Err(Error::TooLarge);
        }
        Ok(out)
    }

    fn decode_doc(&self, id: u64, raw: &[u8]) -> Result<Value> {
        let (h, body) = format::decode_doc_header(raw)?;
        let Value::Map(body) = value::decode(body, self.db.cfg.max_depth)? else {
            return Err(Error::Corrupt);
        };
        let mut doc = Map::with_capacity(body.len() + 4);
        // Ids, versions and times are below 2^63 in practice; saturate rather than wrap.
        let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        doc.insert(String::from("_id"), int(id));
        doc.insert(String::from("_ver"), int(h.ver));
        doc.insert(String::from("_ts"), int(h.ts));
        if let Some(e) = h.exp {
            doc.insert(String::from("_exp"), int(e));
        }
        doc.extend(body);
        Ok(Value::Map(doc))
    }

    /// The document decoded, or None if it is expired at this transaction's time.
    fn live_doc(&mut self, id: u64, raw: &[u8]) -> Result<Option<Value>> {
        if self.expired(format::decode_doc_header(raw)?.0.exp)? {
            return Ok(None);
        }
        self.decode_doc(id, raw).map(Some)
    }

    /// Insert a document (a map); returns its new `_id`. In a capped collection the oldest
    /// documents make room in the same commit.
    pub fn insert(&mut self, coll: &str, doc: &Value) -> Result<u64> {
        self.timed(stats::OpClass::Insert, |t| {
            check_user_name(coll)?;
            t.insert_doc(coll, doc, None)
        })
    }

    /// [`Txn::insert`] with an expiry, without the reserved-name check (the system's own
    /// collections use it directly).
    fn insert_doc(&mut self, coll: &str, doc: &Value, exp: Option<u64>) -> Result<u64> {
        let raw = self.encode_doc(doc, 1, exp)?;
        let cid = match self.collection_id(coll)? {
            Some(id) => id,
            None => self.new_collection(coll)?,
        };
        self.validate(cid, doc)?;
        let id = self.meta(cid)?.next_id;
        // Index upkeep may remove expired documents (a unique value they held): read the
        // metadata after it.
        self.update_indexes(cid, id, None, Some(&raw))?;
        let mut m = self.meta(cid)?;
        m.next_id = id.checked_add(1).ok_or(Error::NoSpace)?;
        check_fits(&m, &raw)?;
        m.count = m.count.saturating_add(1);
        m.bytes = m.bytes.saturating_add(raw.len() as u64);
        self.write(format::doc_key(cid, id), Some(raw))?;
        self.evict_over_caps(cid, &mut m, id)?;
        self.set_meta(cid, m)?;
        Ok(id)
    }

    pub fn get(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        self.timed(stats::OpClass::Read, |t| t.get_doc(coll, id))
    }

    fn get_doc(&mut self, coll: &str, id: u64) -> Result<Option<Value>> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(None);
        };
        match self.read(&format::doc_key(cid, id))? {
            Some(raw) => self.live_doc(id, &raw),
            None => Ok(None),
        }
    }

    /// The compiled schema of collection `cid` (cached between transactions).
    fn schema_of(&mut self, cid: u32) -> Result<Option<Schema>> {
        let dirty = self
            .ws
            .keys()
            .any(|k| k.first() == Some(&format::T_CATALOG));
        if !dirty {
            if let Some((_, s)) = self.db.schemas.iter().find(|(c, _)| *c == cid) {
                return Ok(s.clone());
            }
        }
        let schema = match self.read(&schema_key(cid))? {
            Some(raw) => Some(
                Schema::from_value(
                    &value::decode(&raw, self.db.cfg.max_depth)?,
                    self.db.cfg.max_depth,
                )
                .map_err(|_| Error::Corrupt)?,
            ),
            None => None,
        };
        if !dirty {
            if self.db.schemas.len() >= COLL_CACHE {
                self.db.schemas.remove(0);
            }
            self.db.schemas.push((cid, schema.clone()));
        }
        Ok(schema)
    }

    /// Check a document body against the collection's schema, remembering the violation.
    fn validate(&mut self, cid: u32, doc: &Value) -> Result<()> {
        if let Some(schema) = self.schema_of(cid)? {
            if let Err(v) = schema.validate(doc) {
                self.db.last_violation = Some(v);
                return Err(Error::SchemaViolation);
            }
        }
        Ok(())
    }

    /// The stored bytes, header and body of a document that must exist (and not be expired).
    fn current(&mut self, coll: &str, id: u64) -> Result<(u32, Vec<u8>, format::DocHeader, Map)> {
        let cid = self.collection_id(coll)?.ok_or(Error::NotFound)?;
        let raw = self
            .read(&format::doc_key(cid, id))?
            .ok_or(Error::NotFound)?;
        let (h, body) = format::decode_doc_header(&raw)?;
        if self.expired(h.exp)? {
            return Err(Error::NotFound);
        }
        let Value::Map(body) = value::decode(body, self.db.cfg.max_depth)? else {
            return Err(Error::Corrupt);
        };
        Ok((cid, raw, h, body))
    }

    /// Replace a document's body (its expiry stays). In a capped collection, growth past
    /// `max_bytes` evicts the oldest other documents in the same commit.
    pub fn replace(&mut self, coll: &str, id: u64, doc: &Value) -> Result<()> {
        self.timed(stats::OpClass::Update, |t| {
            check_user_name(coll)?;
            t.replace_doc(coll, id, doc)
        })
    }

    fn replace_doc(&mut self, coll: &str, id: u64, doc: &Value) -> Result<()> {
        let (cid, old, h, _) = self.current(coll, id)?;
        self.validate(cid, doc)?;
        let raw = self.encode_doc(doc, h.ver.saturating_add(1), h.exp)?;
        self.rewrite_doc(cid, id, &old, raw)
    }

    /// Apply a patch to a document (its expiry stays; see [`Database::patch`]); growth evicts
    /// as [`Txn::replace`] does.
    pub fn patch(&mut self, coll: &str, id: u64, patch: &Value) -> Result<()> {
        self.timed(stats::OpClass::Update, |t| {
            check_user_name(coll)?;
            t.patch_doc(coll, id, patch)
        })
    }

    fn patch_doc(&mut self, coll: &str, id: u64, patch: &Value) -> Result<()> {
        let (cid, old, h, mut body) = self.current(coll, id)?;
        value::apply_patch(&mut body, patch, self.db.cfg.max_depth)?;
        let body = Value::Map(body);
        self.validate(cid, &body)?;
        let raw = self.encode_doc(&body, h.ver.saturating_add(1), h.exp)?;
        self.rewrite_doc(cid, id, &old, raw)
    }

    /// Delete a document; returns whether it existed (an expired one does not: it is left to
    /// [`Database::sweep`]).
    pub fn delete(&mut self, coll: &str, id: u64) -> Result<bool> {
        self.timed(stats::OpClass::Delete, |t| {
            check_user_name(coll)?;
            t.delete_doc(coll, id)
        })
    }

    fn delete_doc(&mut self, coll: &str, id: u64) -> Result<bool> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(false);
        };
        let Some(old) = self.read(&format::doc_key(cid, id))? else {
            return Ok(false);
        };
        if self.expired(format::decode_doc_header(&old)?.0.exp)? {
            return Ok(false);
        }
        let mut m = self.meta(cid)?;
        self.remove_doc(cid, id, &old, &mut m)?;
        self.set_meta(cid, m)?;
        Ok(true)
    }

    /// Number of documents in `coll`, expired ones excluded.
    pub fn count(&mut self, coll: &str) -> Result<u64> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(0);
        };
        let all = self.meta(cid)?.count;
        Ok(all.saturating_sub(self.expired_docs(cid)?))
    }

    // ------------------------------------------------------------------------------------------
    // Queries

    /// Find inside this transaction (it sees its own writes). See [`Database::find`].
    pub fn find(
        &mut self,
        coll: &str,
        filter: &Filter,
        query: Option<&Value>,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        self.timed(stats::OpClass::Find, |t| {
            t.find_docs(coll, filter, query, opts, f)
        })
    }

    fn find_docs(
        &mut self,
        coll: &str,
        filter: &Filter,
        query: Option<&Value>,
        opts: &FindOptions,
        f: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        let Some(cid) = self.collection_id(coll)? else {
            return Ok(());
        };
        let defs = self.indexes(cid)?;
        let plan = planner::plan(&defs, filter, query, opts)?;
        let skip = opts.skip;
        let limit = opts.limit.unwrap_or(u64::MAX);
        if limit == 0 {
            return Ok(());
        }
        let project = |d: Value| match &opts.projection {
            Some(p) => p.apply(&d),
            None => d,
        };
        if opts.sort.is_empty() || plan.ordered {
            let (mut skipped, mut sent) = (0u64, 0u64);
            return self.candidates(cid, &plan, &defs, filter, &mut |d| {
                if skipped < skip {
                    skipped += 1;
                    return Ok(true);
                }
                sent += 1;
                Ok(f(project(d))? && sent < limit)
            });
        }
        // Sort in memory, keeping only the best `skip + limit` (bounded).
        let keep = usize::try_from(skip.saturating_add(limit))
            .unwrap_or(usize::MAX)
            .min(self.db.cfg.max_sort_docs.saturating_add(1));
        let mut top: Vec<Value> = Vec::new();
        let mut overflow = false;
        let sort = &opts.sort;
        let max_sort = self.db.cfg.max_sort_docs;
        self.candidates(cid, &plan, &defs, filter, &mut |d| {
            let pos =
                top.partition_point(|x| compare_docs(sort, x, &d) != core::cmp::Ordering::Greater);
            if top.len() < keep {
                top.insert(pos, d);
            } else if pos < top.len() {
                top.insert(pos, d);
                top.pop();
            }
            if top.len() > max_sort {
                overflow = true;
                return Ok(false);
            }
            Ok(true)
        })?;
        if overflow {
            return Err(Error::TooLarge);
        }
        for d in top
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        {
            if !f(project(d))? {
                break;
            }
        }
        Ok(())
    }

    /// Ids of matching documents (for update_many/delete_many; bounded by the transaction size).
    fn matching_ids(
        &mut self,
        coll: &str,
        filter: &Filter,
        query: Option<&Value>,
    ) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        let limit = self.db.store.max_commit_bytes();
        self.find(coll, filter, query, &FindOptions::default(), &mut |d| {
            let id = d
                .as_map()
                .and_then(|m| m.get("_id"))
                .and_then(Value::as_i64)
                .ok_or(Error::Corrupt)?;
            ids.push(id as u64);
            // Each document costs at least its key in the commit: stop early when it can't fit.
            if ids.len() * 13 > limit {
                return Err(Error::TxnTooLarge);
            }
            Ok(true)
        })?;
        Ok(ids)
    }

    /// Every document the plan reads that matches `filter`, in the plan's order.
    fn candidates(
        &mut self,
        cid: u32,
        plan: &Plan,
        defs: &[IndexDef],
        filter: &Filter,
        g: &mut dyn FnMut(Value) -> Result<bool>,
    ) -> Result<()> {
        let n = self.db.cfg.iter_batch.max(1);
        match &plan.access {
            Access::Scan => {
                let end = Some(format::docs_end(cid));
                let mut from = format::doc_key(cid, 0);
                loop {
                    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                    self.scan_range(&from, end.as_deref(), &mut |k, v| {
                        batch.push((k.to_vec(), v.to_vec()));
                        Ok(batch.len() < n)
                    })?;
                    for (k, raw) in &batch {
                        let id = format::doc_id_of(cid, k).ok_or(Error::Corrupt)?;
                        let Some(doc) = self.live_doc(id, raw)? else {
                            continue;
                        };
                        if filter.matches(&doc) && !g(doc)? {
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
            Access::Index {
                lo,
                hi,
                multikey,
                def_id,
                ..
            } => {
                let def = defs
                    .iter()
                    .find(|d| d.id == *def_id)
                    .ok_or(Error::Corrupt)?;
                let mut from = lo.clone();
                loop {
                    let mut keys: Vec<Vec<u8>> = Vec::new();
                    self.scan_range(&from, hi.as_deref(), &mut |k, _| {
                        keys.push(k.to_vec());
                        Ok(keys.len() < n)
                    })?;
                    for k in &keys {
                        let id = index::doc_id_of_entry(k)?;
                        let Some(raw) = self.read(&format::doc_key(cid, id))? else {
                            // An entry without its document: the index disagrees with the data.
                            return Err(Error::Corrupt);
                        };
                        let Some(doc) = self.live_doc(id, &raw)? else {
                            continue;
                        };
                        if *multikey {
                            // Emit a document at its first entry inside the bounds only.
                            let (entries, _) = index::entries(def, &doc, id)?;
                            let first = entries.iter().find(|e| {
                                e.as_slice() >= lo.as_slice()
                                    && hi.as_deref().is_none_or(|h| e.as_slice() < h)
                            });
                            if first != Some(k) {
                                continue;
                            }
                        }
                        if filter.matches(&doc) && !g(doc)? {
                            return Ok(());
                        }
                    }
                    match keys.last() {
                        Some(k) if keys.len() == n => {
                            from = k.clone();
                            from.push(0);
                        }
                        _ => return Ok(()),
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Secondary indexes

    /// Live entries in `[start, end)` as this transaction sees them: the store's, overlaid with
    /// the transaction's own writes. Bounded RAM: one batch at a time.
    fn scan_range(&mut self, start: &[u8], end: Option<&[u8]>, f: &mut EntryFn<'_>) -> Result<()> {
        let n = self.db.cfg.iter_batch.max(1);
        let mut from = start.to_vec();
        let mut batch = Vec::new();
        loop {
            batch.clear();
            self.db.store.scan(&from, end, n, &mut batch)?;
            let store_done = batch.len() < n;
            // This round covers [from, round_end): up to the batch's last key, or to `end`.
            let round_end: Option<Vec<u8>> = if store_done {
                end.map(|e| e.to_vec())
            } else {
                batch.last().map(|(k, _)| {
                    let mut k = k.clone();
                    k.push(0);
                    k
                })
            };
            let upper = match &round_end {
                Some(e) => core::ops::Bound::Excluded(e.clone()),
                None => core::ops::Bound::Unbounded,
            };
            let mut own = self
                .ws
                .range((core::ops::Bound::Included(from.clone()), upper))
                .peekable();
            let mut stored = batch.iter().peekable();
            loop {
                let take_own = match (own.peek(), stored.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some((ok, _)), Some((sk, _))) => ok.as_slice() <= sk.as_slice(),
                };
                if take_own {
                    let Some((k, v)) = own.next() else { break };
                    if stored.peek().is_some_and(|(sk, _)| sk == k) {
                        stored.next();
                    }
                    if let Some(v) = v {
                        if !f(k, v)? {
                            return Ok(());
                        }
                    }
                } else {
                    let Some((k, v)) = stored.next() else { break };
                    if !f(k, v)? {
                        return Ok(());
                    }
                }
            }
            match round_end {
                Some(e) if !store_done => from = e,
                _ => return Ok(()),
            }
        }
    }

    /// The index definitions of collection `cid` (cached between transactions).
    fn indexes(&mut self, cid: u32) -> Result<Vec<IndexDef>> {
        let dirty = self
            .ws
            .keys()
            .any(|k| k.first() == Some(&format::T_CATALOG));
        if !dirty {
            if let Some((_, defs)) = self.db.indexes.iter().find(|(c, _)| *c == cid) {
                return Ok(defs.clone());
            }
        }
        let prefix = format::index_defs_prefix(cid);
        let end = format::prefix_end(&prefix);
        let max_depth = self.db.cfg.max_depth;
        let building = self.read(&format::catalog_key(format::CAT_BUILDING, &[]))?;
        let mut defs = Vec::new();
        self.scan_range(&prefix, end.as_deref(), &mut |k, v| {
            let name = core::str::from_utf8(k.get(prefix.len()..).ok_or(Error::Corrupt)?)
                .map_err(|_| Error::Corrupt)?;
            let def = IndexDef::decode(name, v, max_depth)?;
            if defs.len() >= MAX_INDEXES {
                return Err(Error::Corrupt);
            }
            defs.push(def);
            Ok(true)
        })?;
        // An index still being built is neither used nor maintained: it is absent.
        if let Some(b) = building {
            let (id, _, _) = parse_building(&b)?;
            defs.retain(|d| d.id != id);
        }
        if !dirty {
            if self.db.indexes.len() >= COLL_CACHE {
                self.db.indexes.remove(0);
            }
            self.db.indexes.push((cid, defs.clone()));
        }
        Ok(defs)
    }

    fn in_partial(&self, def: &IndexDef, doc: &Value) -> Result<bool> {
        match &def.partial {
            None => Ok(true),
            Some(p) => Ok(Filter::from_value(p, &self.db.filter_limits())?.matches(doc)),
        }
    }

    /// Index entries of a stored document (None: no document).
    fn doc_entries(
        &self,
        def: &IndexDef,
        id: u64,
        raw: Option<&[u8]>,
    ) -> Result<(Vec<Vec<u8>>, bool)> {
        let Some(raw) = raw else {
            return Ok((Vec::new(), false));
        };
        let doc = self.decode_doc(id, raw)?;
        if !self.in_partial(def, &doc)? {
            return Ok((Vec::new(), false));
        }
        index::entries(def, &doc, id)
    }

    /// Keep every index of `cid` in step with a document going from `old` to `new`, in this
    /// same transaction. A unique index refuses a value another document holds.
    fn update_indexes(
        &mut self,
        cid: u32,
        id: u64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        self.update_extras(cid, id, old, new)?;
        for mut def in self.indexes(cid)? {
            let (old_keys, _) = self.doc_entries(&def, id, old)?;
            let (new_keys, multikey) = self.doc_entries(&def, id, new)?;
            for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
                self.write(k.clone(), None)?;
            }
            for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
                if def.unique && !index::is_all_null(k) {
                    self.check_unique(k, id, Some(cid))?;
                }
                self.write(k.clone(), Some(Vec::new()))?;
            }
            if multikey && !def.multikey {
                def.multikey = true;
                self.write(
                    format::index_def_key(cid, def.name.as_bytes()),
                    Some(def.encode()?),
                )?;
            }
        }
        Ok(())
    }

    /// Fail with [`Error::Unique`] if another document holds the value of entry `key`. With
    /// `evict_in` (the collection), an expired holder is no obstacle: it is removed in this
    /// transaction, as a sweep would.
    fn check_unique(&mut self, key: &[u8], id: u64, evict_in: Option<u32>) -> Result<()> {
        let prefix = index::value_part(key).to_vec();
        let end = format::prefix_end(&prefix);
        loop {
            let mut clash = None;
            self.scan_range(&prefix, end.as_deref(), &mut |k, _| {
                // Only an entry of exactly this value (the key minus its 8-byte doc id).
                if k.len() == key.len() {
                    let other = index::doc_id_of_entry(k)?;
                    if other != id {
                        clash = Some(other);
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
            match (clash, evict_in) {
                (None, _) => return Ok(()),
                (Some(other), Some(cid)) if self.evict_if_expired(cid, other)? => {}
                (Some(_), _) => return Err(Error::Unique),
            }
        }
    }

    /// Remove an index's definition now; its entries become unreachable at once and are
    /// purged by the next full merge.
    fn forget_index(&mut self, cid: u32, def: &IndexDef) -> Result<()> {
        self.write(format::index_def_key(cid, def.name.as_bytes()), None)?;
        self.write(format::dropped_key(def.id), Some(Vec::new()))
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

    /// Store `value` under `key` in namespace `ns` (created if needed; no expiry, no tags: a
    /// put replaces the whole entry).
    pub fn kv_put(&mut self, ns: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.kv_put_with(ns, key, value, &WriteOptions::default())
    }

    /// The value under `key` (None: absent or expired).
    pub fn kv_get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.timed(stats::OpClass::Read, |t| {
            Ok(t.kv_get_entry(ns, key)?.map(|e| e.value))
        })
    }

    /// Delete `key`; returns whether it existed (an expired entry does not: it is left to
    /// [`Database::sweep`]).
    pub fn kv_delete(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.timed(stats::OpClass::Delete, |t| {
            check_user_name(ns)?;
            t.kv_delete_entry(ns, key)
        })
    }

    fn kv_delete_entry(&mut self, ns: &str, key: &[u8]) -> Result<bool> {
        self.check_kv(key, None)?;
        let Some(nid) = self.namespace_id(ns)? else {
            return Ok(false);
        };
        let k = format::kv_key(nid, key);
        let Some(old) = self.read(&k)? else {
            return Ok(false);
        };
        if self.expired(format::decode_kv(&old)?.exp)? {
            return Ok(false);
        }
        self.update_kv_extras(nid, key, Some(&old), None)?;
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
    /// The time expiry is judged at, read when first needed.
    now: Option<u64>,
}

impl<D: BlockDevice> Iterator for DocIter<'_, D> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            match self.next_stored()? {
                Ok((id, raw)) => match self.is_live(&raw) {
                    Ok(true) => {
                        let txn = self.db.begin();
                        return Some(txn.decode_doc(id, &raw));
                    }
                    Ok(false) => continue,
                    Err(e) => return Some(Err(e)),
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<D: BlockDevice> DocIter<'_, D> {
    /// Whether a stored document is not expired.
    fn is_live(&mut self, raw: &[u8]) -> Result<bool> {
        let Some(exp) = format::decode_doc_header(raw)?.0.exp else {
            return Ok(true);
        };
        let now = match self.now {
            Some(n) => n,
            None => {
                let n = self.db.now()?;
                self.now = Some(n);
                n
            }
        };
        Ok(exp > now)
    }

    /// The next stored document, expired or not.
    fn next_stored(&mut self) -> Option<Result<(u64, Vec<u8>)>> {
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
        Some(Ok((id, raw.clone())))
    }
}
