//! Integrity check and repair of a whole database.
//!
//! `check` reads everything once: every segment page is authenticated by the store, then every
//! document is decoded and its index entries looked up, and every index entry is traced back to
//! a document that produces it. RAM stays at one scan batch plus one document.
//! `repair` salvages what the store can read, recounts collections and rebuilds every index.

use super::{building_key, building_value, Database, Level, EVENT_CORRUPTION, EVENT_REPAIR};
use crate::engine::StoreCheck;
use crate::flash::BlockDevice;
use crate::format;
use crate::index::{self, IndexDef};
use crate::{Error, Result};
use alloc::vec::Vec;

/// What [`Database::check`] found. Counts of problems; zero everywhere is a clean database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Page-level findings of the store (authentication, order, tree shape).
    pub store: StoreCheck,
    pub collections: u32,
    pub documents: u64,
    pub indexes: u32,
    pub index_entries: u64,
    /// Documents whose bytes authenticate but do not decode.
    pub unreadable_documents: u64,
    /// Collections whose stored document count or byte total differs from the documents
    /// present.
    pub count_mismatches: u32,
    /// Index entries a document should have and the index lacks.
    pub missing_index_entries: u64,
    /// Index entries no document produces.
    pub stray_index_entries: u64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.store.is_clean()
            && self.unreadable_documents == 0
            && self.count_mismatches == 0
            && self.missing_index_entries == 0
            && self.stray_index_entries == 0
    }
}

/// What [`Database::repair`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Segment pages that failed authentication and were left out (their entries are lost).
    pub pages_quarantined: u32,
    /// WAL frames dropped at open because they failed authentication.
    pub frames_dropped: u32,
    /// Documents that authenticate but do not decode, removed.
    pub documents_removed: u64,
    /// Collections whose document count was corrected.
    pub counts_fixed: u32,
    /// Indexes rebuilt from their documents.
    pub indexes_rebuilt: u32,
    /// Unique indexes that could not be rebuilt because documents now clash (dropped).
    pub indexes_dropped: u32,
}

impl<D: BlockDevice> Database<D> {
    /// Collection ids, from one scan of the catalog.
    fn collection_ids(&mut self) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        self.scan_prefix(&[format::T_CATALOG, format::CAT_COLLECTION], &mut |_, v| {
            ids.push(format::decode_u32(v)?);
            Ok(true)
        })?;
        Ok(ids)
    }

    /// Walk the whole database and report every inconsistency found. A page that fails
    /// authentication is counted, not fatal. It writes nothing, except an event in the event
    /// log when it finds a problem (best effort).
    pub fn check(&mut self) -> Result<CheckReport> {
        let mut r = CheckReport {
            store: self.store.check()?,
            ..CheckReport::default()
        };
        for cid in self.collection_ids()? {
            r.collections += 1;
            let defs = self.begin().indexes(cid)?;
            r.indexes += defs.len() as u32;
            let (mut present, mut bytes) = (0u64, 0u64);
            let meta_key = format::coll_meta_key(cid);
            let prefix = format::doc_prefix(cid);
            let res = self.for_each_batch(&prefix, &mut |db, batch| {
                for (k, raw) in batch {
                    if *k == meta_key {
                        continue;
                    }
                    let id = format::doc_id_of(cid, k).ok_or(Error::Corrupt)?;
                    present += 1;
                    bytes = bytes.saturating_add(raw.len() as u64);
                    let t = db.begin();
                    if t.decode_doc(id, raw).is_err() {
                        r.unreadable_documents += 1;
                        continue;
                    }
                    let mut wanted = Vec::new();
                    for def in &defs {
                        match t.doc_entries(def, id, Some(raw)) {
                            Ok((keys, _)) => wanted.extend(keys),
                            Err(_) => r.unreadable_documents += 1,
                        }
                    }
                    for key in wanted {
                        if db.store.get(&key)?.is_none() {
                            r.missing_index_entries += 1;
                        }
                    }
                }
                Ok(true)
            });
            match res {
                Ok(()) => {}
                // A page of this collection failed: the store check counted it.
                Err(Error::Corrupt) => continue,
                Err(e) => return Err(e),
            }
            r.documents += present;
            let meta = self.begin().meta(cid)?;
            if meta.count != present || meta.bytes != bytes {
                r.count_mismatches += 1;
            }
            for def in &defs {
                let res = self.for_each_batch(&def.prefix(), &mut |db, batch| {
                    for (k, _) in batch {
                        r.index_entries += 1;
                        if !db.entry_is_backed(cid, def, k)? {
                            r.stray_index_entries += 1;
                        }
                    }
                    Ok(true)
                });
                match res {
                    Ok(()) | Err(Error::Corrupt) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !r.is_clean() {
            let msg = alloc::format!(
                "check: {} bad pages, {} inconsistencies, {} unreadable docs, {} count, {} missing and {} stray index entries",
                r.store.bad_pages,
                r.store.inconsistencies + r.store.missing_files,
                r.unreadable_documents,
                r.count_mismatches,
                r.missing_index_entries,
                r.stray_index_entries
            );
            self.corruption_events = self.corruption_events.saturating_add(1);
            let _ = self.log_event(Level::Warn, EVENT_CORRUPTION, &msg);
        }
        Ok(r)
    }

    /// Whether index entry `key` of `def` is one its document produces.
    fn entry_is_backed(&mut self, cid: u32, def: &IndexDef, key: &[u8]) -> Result<bool> {
        let id = index::doc_id_of_entry(key)?;
        let Some(raw) = self.store.get(&format::doc_key(cid, id))? else {
            return Ok(false);
        };
        let t = self.begin();
        Ok(match t.doc_entries(def, id, Some(&raw)) {
            Ok((keys, _)) => keys.iter().any(|k| k.as_slice() == key),
            Err(_) => false,
        })
    }

    /// One bounded step of compaction (one merge of segments); returns whether another step
    /// would merge more. A background task calls it until false; [`Database::compact`] does
    /// all steps at once.
    pub fn compact_step(&mut self) -> Result<bool> {
        self.store.compact_step()
    }

    /// Deletions waiting to be reclaimed, as a percentage of stored entries (an estimate; a
    /// full merge runs by itself past `StoreConfig::auto_compact_percent`).
    pub fn garbage_percent(&self) -> u8 {
        self.store.garbage_percent()
    }

    /// Open a database whose WAL may hold frames that fail authentication: they (and the
    /// frames after them) are dropped instead of failing the open. Follow with
    /// [`Database::repair`].
    pub fn open_for_repair(
        dev: D,
        cfg: &super::Config,
        key: &super::Key<'_>,
    ) -> core::result::Result<Self, (Error, D)> {
        let mut cfg = *cfg;
        cfg.store.salvage = true;
        Self::open(dev, &cfg, key)
    }

    /// Bring the database back to a consistent state: leave out segment pages that fail
    /// authentication (their entries are lost and counted), remove documents that do not
    /// decode, recount every collection and rebuild every index. Each step is crash-safe; a
    /// cut repair can simply be run again.
    pub fn repair(&mut self) -> Result<RepairReport> {
        let mut rep = RepairReport {
            frames_dropped: self.store.dropped_frames(),
            ..RepairReport::default()
        };
        if !self.store.check()?.is_clean() {
            rep.pages_quarantined = self.store.salvage()?;
        }
        self.release_caches()?;
        for cid in self.collection_ids()? {
            // Documents that do not decode go, then the count is made true.
            let (mut present, mut bytes) = (0u64, 0u64);
            let mut bad: Vec<u64> = Vec::new();
            let meta_key = format::coll_meta_key(cid);
            let prefix = format::doc_prefix(cid);
            self.for_each_batch(&prefix, &mut |db, batch| {
                for (k, raw) in batch {
                    if *k == meta_key {
                        continue;
                    }
                    let id = format::doc_id_of(cid, k).ok_or(Error::Corrupt)?;
                    if db.begin().decode_doc(id, raw).is_err() {
                        bad.push(id);
                    } else {
                        present += 1;
                        bytes = bytes.saturating_add(raw.len() as u64);
                    }
                    // Bound RAM: remove as we go in small commits.
                    if bad.len() >= 16 {
                        db.remove_raw_docs(cid, &mut bad)?;
                    }
                }
                Ok(true)
            })?;
            rep.documents_removed += bad.len() as u64;
            self.remove_raw_docs(cid, &mut bad)?;
            let fixed = self.transaction(|t| {
                let mut m = t.meta(cid)?;
                if m.count == present && m.bytes == bytes {
                    return Ok(false);
                }
                m.count = present;
                m.bytes = bytes;
                t.set_meta(cid, m)?;
                Ok(true)
            })?;
            rep.counts_fixed += u32::from(fixed);
            let defs = self.begin().indexes(cid)?;
            for def in defs {
                if self.rebuild_index(cid, &def)? {
                    rep.indexes_rebuilt += 1;
                } else {
                    rep.indexes_dropped += 1;
                }
            }
        }
        self.store.compact()?;
        let msg = alloc::format!(
            "repair: {} pages and {} frames quarantined, {} docs removed, {} counts fixed, {} indexes rebuilt, {} dropped",
            rep.pages_quarantined,
            rep.frames_dropped,
            rep.documents_removed,
            rep.counts_fixed,
            rep.indexes_rebuilt,
            rep.indexes_dropped
        );
        let _ = self.log_event(Level::Warn, EVENT_REPAIR, &msg);
        Ok(rep)
    }

    /// Delete raw document records (they do not decode, so no index entry can be computed;
    /// the index rebuild that follows removes theirs).
    fn remove_raw_docs(&mut self, cid: u32, ids: &mut Vec<u64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.transaction(|t| {
            for id in ids.iter() {
                t.write(format::doc_key(cid, *id), None)?;
            }
            Ok(())
        })?;
        ids.clear();
        Ok(())
    }

    /// Replace index `def` by a fresh build under a new id (the old entries are purged with the
    /// old id). Returns false if a unique index now finds a clash (the index is then dropped).
    fn rebuild_index(&mut self, cid: u32, def: &IndexDef) -> Result<bool> {
        let mut fresh = self.transaction(|t| {
            t.forget_index(cid, def)?;
            let fresh = IndexDef {
                id: t.allocate_id()?,
                name: def.name.clone(),
                fields: def.fields.clone(),
                unique: def.unique,
                partial: def.partial.clone(),
                multikey: false,
            };
            t.write(
                format::index_def_key(cid, def.name.as_bytes()),
                Some(fresh.encode()?),
            )?;
            t.write(
                building_key(),
                Some(building_value(fresh.id, cid, &def.name)),
            )?;
            Ok(fresh)
        })?;
        match self.fill_index(cid, &mut fresh) {
            Ok(()) => {
                self.transaction(|t| {
                    t.write(
                        format::index_def_key(cid, def.name.as_bytes()),
                        Some(fresh.encode()?),
                    )?;
                    t.write(building_key(), None)
                })?;
                Ok(true)
            }
            Err(Error::Unique) => {
                self.abandon_index_build()?;
                Ok(false)
            }
            Err(e) => {
                self.abandon_index_build()?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{lfs_config, Config, Database, Key};
    use super::*;
    use crate::db::IndexSpec;
    use crate::flash::{Geometry, RamFlash};
    use crate::lfs::Fs;
    use crate::value::{from_json, Value};

    fn geometry() -> Geometry {
        Geometry {
            read_size: 16,
            prog_size: 16,
            block_size: 4096,
            block_count: 64,
        }
    }

    fn json(s: &str) -> Value {
        from_json(s.as_bytes(), 16).unwrap()
    }

    const KEY: [u8; 32] = [7; 32];

    /// A database with two indexed collections, folded into segments.
    fn populated() -> Database<RamFlash> {
        let cfg = Config::default();
        let mut db = Database::format(RamFlash::new(geometry()).unwrap(), &cfg, &Key::Raw(&KEY))
            .map_err(|e| e.0)
            .unwrap();
        let spec = IndexSpec {
            fields: &["t"],
            unique: false,
            partial: None,
        };
        db.create_index("r", "by_t", &spec).unwrap();
        db.create_index(
            "s",
            "by_t",
            &IndexSpec {
                unique: true,
                ..spec
            },
        )
        .unwrap();
        for i in 0..60 {
            db.insert(
                "r",
                &json(&alloc::format!(r#"{{"t":{},"pad":"{:040}"}}"#, i % 7, i)),
            )
            .unwrap();
            db.insert("s", &json(&alloc::format!(r#"{{"t":{i}}}"#)))
                .unwrap();
        }
        db.delete("r", 3).unwrap();
        db.flush().unwrap();
        db
    }

    #[test]
    fn a_consistent_database_checks_clean() {
        let mut db = populated();
        let r = db.check().unwrap();
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.collections, 2);
        assert_eq!(r.documents, 119);
        assert_eq!(r.indexes, 2);
        assert_eq!(r.index_entries, 119);
        assert!(r.store.pages > 2);
    }

    #[test]
    fn check_finds_and_repair_fixes_index_and_count_damage() {
        let mut db = populated();
        let cid = db.begin().collection_id("r").unwrap().unwrap();
        let def = db.begin().indexes(cid).unwrap().remove(0);
        let (keys, _) = {
            let raw = db.store.get(&format::doc_key(cid, 5)).unwrap().unwrap();
            db.begin().doc_entries(&def, 5, Some(&raw)).unwrap()
        };
        // An entry lost, a stray entry for a document that does not exist, a wrong count.
        db.transaction(|t| {
            t.write(keys[0].clone(), None)?;
            let mut stray = def.prefix().to_vec();
            stray.extend_from_slice(&[0x20; 3]);
            stray.extend_from_slice(&999u64.to_be_bytes());
            t.write(stray, Some(Vec::new()))?;
            let mut m = t.meta(cid)?;
            m.count -= 5;
            t.set_meta(cid, m)
        })
        .unwrap();
        let r = db.check().unwrap();
        assert_eq!(r.missing_index_entries, 1, "{r:?}");
        assert_eq!(r.stray_index_entries, 1);
        assert_eq!(r.count_mismatches, 1);
        assert!(!r.is_clean());
        let rep = db.repair().unwrap();
        assert_eq!(rep.counts_fixed, 1);
        assert_eq!(rep.indexes_rebuilt, 2);
        assert_eq!(rep.pages_quarantined, 0);
        let r = db.check().unwrap();
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(db.count("r").unwrap(), 59);
        let found = db.count_where("r", &json(r#"{"t":5}"#)).unwrap();
        assert_eq!(found, 8);
    }

    /// Flip a byte in the body of page record `page` of segment file `path` through
    /// littlefs, as flash decay would.
    fn damage_file(db: Database<RamFlash>, path: &str, page: usize) -> RamFlash {
        let cfg = Config::default();
        let dev = db.close().1;
        let lfs = lfs_config(&cfg, &dev);
        let mut fs = Fs::mount(dev, &lfs).map_err(|e| e.0).unwrap();
        let mut buf = Vec::new();
        fs.read_file(path, &mut buf, 1 << 20).unwrap();
        let mut at = 0usize;
        for _ in 0..page {
            at += u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        }
        buf[at + 20] ^= 0x40;
        fs.write_file(path, &buf).unwrap();
        fs.unmount().1
    }

    fn segment_files(db: &Database<RamFlash>) -> Vec<u32> {
        db.store
            .manifest()
            .segments
            .iter()
            .map(|s| s.file)
            .collect()
    }

    #[test]
    fn a_damaged_page_is_reported_then_quarantined_by_repair() {
        let mut db = populated();
        db.compact().unwrap();
        let file = segment_files(&db)[0];
        let path = crate::engine::segment::SegPath::new(file);
        // The third page: a leaf of documents, not the catalog's.
        let dev = damage_file(db, path.as_str(), 2);
        let cfg = Config::default();
        let mut db = Database::open(dev, &cfg, &Key::Raw(&KEY))
            .map_err(|e| e.0)
            .unwrap();
        let r = db.check().unwrap();
        assert_eq!(r.store.bad_pages, 1, "{r:?}");
        assert!(!r.is_clean());
        let rep = db.repair().unwrap();
        assert_eq!(rep.pages_quarantined, 1);
        let r = db.check().unwrap();
        assert!(r.is_clean(), "{r:?}");
        // Everything outside the lost page is still there, and counts agree with it.
        let left = db.count("r").unwrap() + db.count("s").unwrap();
        assert!(left > 90 && left < 119, "{left}");
        // The check and the repair each logged an event.
        assert_eq!(db.count(crate::db::EVENTS).unwrap(), 2);
        assert_eq!(r.documents, left + 2);
    }

    #[test]
    fn a_damaged_wal_frame_fails_open_but_opens_for_repair() {
        let mut db = populated();
        db.insert("r", &json(r#"{"t":1}"#)).unwrap();
        db.insert("r", &json(r#"{"t":2}"#)).unwrap();
        let seq = db.store.last_seq();
        let cfg = Config::default();
        let dev = db.close().1;
        // A clean close folds the WAL; write a forged frame where replay will look.
        let lfs = lfs_config(&cfg, &dev);
        let mut fs = Fs::mount(dev, &lfs).map_err(|e| e.0).unwrap();
        let next = seq + 1;
        let mut frame = Vec::new();
        frame.extend_from_slice(
            &format::FrameHeader {
                seq: next,
                index: 0,
                flags: format::FRAME_COMMIT,
            }
            .encode(),
        );
        frame.extend_from_slice(&[0xEE; 40]);
        let s = (next % u64::from(cfg.store.wal_slots)) as u8;
        fs.set_attr(crate::engine::WAL_PATH, s, &frame).unwrap();
        let dev = fs.unmount().1;
        let dev = match Database::open(dev, &cfg, &Key::Raw(&KEY)) {
            Err((Error::Corrupt, dev)) => dev,
            Err((e, _)) => panic!("{e:?}"),
            Ok(_) => panic!("a forged frame was accepted"),
        };
        let mut db = Database::open_for_repair(dev, &cfg, &Key::Raw(&KEY))
            .map_err(|e| e.0)
            .unwrap();
        let rep = db.repair().unwrap();
        assert_eq!(rep.frames_dropped, 1);
        assert_eq!(db.count("r").unwrap(), 61);
        let dev = db.close().1;
        let mut db = Database::open(dev, &cfg, &Key::Raw(&KEY))
            .map_err(|e| e.0)
            .unwrap();
        assert!(db.check().unwrap().is_clean());
        db.insert("r", &json(r#"{"t":3}"#)).unwrap();
        assert_eq!(db.count("r").unwrap(), 62);
    }
}
