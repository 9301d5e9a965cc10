//! Full and incremental backups of a database, and atomic restore from a chain of them.
//!
//! A backup is the ordered map itself, streamed by the store in key order through the codec of
//! [`crate::backup`]: a full backup carries every live entry, an incremental every entry whose
//! newest version was written after its parent (deletions included). Restore hands each stream
//! of the chain to the store, which writes it as a segment beside the live data and switches the
//! root record once, after the last stream's trailer verified.

use super::{Database, Level, EVENT_BACKUP, EVENT_RESTORE};
use crate::backup::{
    check_link, BackupBase, BackupHeader, BackupInfo, BackupKey, BackupKind, BackupParams,
    BackupReader, BackupSink, BackupSource, BackupWriter, DEFAULT_CHUNK_SIZE, ID_LEN,
};
use crate::crypto::{MasterKey, Sealer, SALT_LEN};
use crate::flash::BlockDevice;
use crate::format::{self, Reader};
use crate::{Error, Result};
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use format::{CAT_DB_ID, CAT_LAST_BACKUP};

/// Which key protects a backup stream.
#[derive(Clone, Copy)]
pub enum BackupKeySpec<'a> {
    /// The database's own key (a plain database writes a checksummed plain stream).
    Database,
    /// A separate raw 256-bit backup key.
    Raw(&'a [u8; 32]),
    /// A key derived from a passphrase. Writing uses `salt` (give a random one) and
    /// `iterations`; reading takes both from the stream, `iterations` being the most it spends.
    Passphrase {
        pass: &'a [u8],
        salt: [u8; SALT_LEN],
        iterations: u32,
    },
}

/// The last backup this database took (persisted; an incremental continues it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastBackup {
    pub kind: BackupKind,
    pub end_seq: u64,
    pub backup_id: [u8; ID_LEN],
    /// Database time when it was taken.
    pub created: u64,
}

/// What [`Database::restore`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreReport {
    /// Streams applied (the full backup and its incrementals).
    pub streams: u32,
    pub records: u64,
    /// The sequence number the database now stands at.
    pub end_seq: u64,
}

/// A sealer for `spec`, owned, with the database's own sealer borrowed when it is that one.
enum KeyHolder<'a> {
    Db(&'a Sealer),
    Own(Sealer),
    Pass(&'a [u8], [u8; SALT_LEN], u32),
}

impl<'a> KeyHolder<'a> {
    fn new(spec: &BackupKeySpec<'a>, db: &'a Sealer) -> Self {
        match *spec {
            BackupKeySpec::Database => KeyHolder::Db(db),
            BackupKeySpec::Raw(k) => KeyHolder::Own(Sealer::with_key(&MasterKey::from_bytes(k))),
            BackupKeySpec::Passphrase {
                pass,
                salt,
                iterations,
            } => KeyHolder::Pass(pass, salt, iterations),
        }
    }

    fn key(&self) -> BackupKey<'_> {
        match self {
            KeyHolder::Db(s) if !s.is_encrypted() => BackupKey::Plain,
            KeyHolder::Db(s) => BackupKey::Sealer(s),
            KeyHolder::Own(s) => BackupKey::Sealer(s),
            KeyHolder::Pass(pass, salt, iterations) => BackupKey::Passphrase {
                pass,
                salt: *salt,
                iterations: *iterations,
            },
        }
    }
}

fn kind_name(k: BackupKind) -> &'static str {
    match k {
        BackupKind::Full => "full",
        BackupKind::Incremental => "incremental",
    }
}

fn encode_last(b: &LastBackup) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.push(match b.kind {
        BackupKind::Full => 0,
        BackupKind::Incremental => 1,
    });
    format::put_varint(&mut v, b.end_seq);
    v.extend_from_slice(&b.backup_id);
    format::put_varint(&mut v, b.created);
    v
}

fn decode_last(b: &[u8]) -> Result<LastBackup> {
    let mut r = Reader::new(b);
    let kind = match r.u8()? {
        0 => BackupKind::Full,
        1 => BackupKind::Incremental,
        _ => return Err(Error::Corrupt),
    };
    let last = LastBackup {
        kind,
        end_seq: r.varint()?,
        backup_id: r.array()?,
        created: r.varint()?,
    };
    if !r.is_empty() {
        return Err(Error::Corrupt);
    }
    Ok(last)
}

impl<D: BlockDevice> Database<D> {
    /// Set the platform's random source (used for the database identity and backup ids).
    pub fn set_random(&mut self, random: super::RandomFn) {
        self.random = Some(random);
    }

    /// 16 bytes from the platform's random source, or, without one, a hash of what makes this
    /// moment of this database distinct (key check, salt, sequence number, time, `salt_in`).
    fn entropy(&mut self, salt_in: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Some(r) = self.random.as_mut() {
            r(&mut out);
            return out;
        }
        let header = *self.store.header();
        let mut h = Sha256::new();
        h.update(b"cairndb/v1/entropy");
        h.update(header.key_check);
        h.update(header.salt);
        h.update(header.generation.to_le_bytes());
        h.update(self.store.last_seq().to_le_bytes());
        h.update(self.peek_time().to_le_bytes());
        h.update(salt_in);
        out.copy_from_slice(&h.finalize()[..16]);
        out
    }

    /// The database's identity: 16 bytes made at its first backup and carried by every backup
    /// (a restore keeps it). Backups of another database are refused by its chain checks.
    pub fn db_id(&mut self) -> Result<[u8; ID_LEN]> {
        let key = format::catalog_key(CAT_DB_ID, &[]);
        if let Some(v) = self.store.get(&key)? {
            return v.as_slice().try_into().map_err(|_| Error::Corrupt);
        }
        let id = self.entropy(b"db-id");
        self.transaction(|t| t.write(key.clone(), Some(id.to_vec())))?;
        Ok(id)
    }

    /// The last backup taken of this database (or restored into it), if any.
    pub fn last_backup(&mut self) -> Result<Option<LastBackup>> {
        match self.store.get(&format::catalog_key(CAT_LAST_BACKUP, &[]))? {
            Some(v) => Ok(Some(decode_last(&v)?)),
            None => Ok(None),
        }
    }

    /// Write a full backup (every live entry) to `sink`.
    pub fn backup_full<S: BackupSink>(
        &mut self,
        sink: S,
        key: &BackupKeySpec<'_>,
    ) -> Result<BackupInfo> {
        self.backup(sink, key, None)
    }

    /// Write an incremental backup to `sink`: every change since the last backup this
    /// database took (full or incremental), deletions included. [`Error::BackupChain`] when
    /// there is none, or when history since it is no longer complete (a restore or a repair
    /// came between): take a full backup.
    pub fn backup_incremental<S: BackupSink>(
        &mut self,
        sink: S,
        key: &BackupKeySpec<'_>,
    ) -> Result<BackupInfo> {
        let last = self.last_backup()?.ok_or(Error::BackupChain)?;
        let base = BackupBase {
            seq: last.end_seq,
            id: last.backup_id,
        };
        self.backup(sink, key, Some(base))
    }

    /// Write an incremental backup continuing `parent` (a backup of this database the caller
    /// kept), instead of the last one taken.
    pub fn backup_incremental_from<S: BackupSink>(
        &mut self,
        parent: &BackupHeader,
        sink: S,
        key: &BackupKeySpec<'_>,
    ) -> Result<BackupInfo> {
        if parent.db_id != self.db_id()? {
            return Err(Error::BackupChain);
        }
        self.backup(sink, key, Some(parent.as_base()))
    }

    fn backup<S: BackupSink>(
        &mut self,
        sink: S,
        spec: &BackupKeySpec<'_>,
        base: Option<BackupBase>,
    ) -> Result<BackupInfo> {
        let db_id = self.db_id()?;
        // Reading the time may commit the time mark: do it before fixing the end of the backup.
        let created = self.now()?;
        let entropy = self.entropy(b"backup");
        if base.is_some_and(|b| b.seq < self.store.incr_floor() || b.seq > self.store.last_seq()) {
            return Err(Error::BackupChain);
        }
        let end_seq = self.store.last_seq();
        let params = BackupParams {
            db_id,
            base,
            end_seq,
            created,
            entropy,
            chunk_size: DEFAULT_CHUNK_SIZE,
        };
        let since = base.map(|b| b.seq);
        let batch_len = self.cfg.iter_batch.max(1);
        // The store is borrowed mutably while streaming: work with a copy of its sealer.
        let db_sealer = self.store.sealer().clone();
        let holder = KeyHolder::new(spec, &db_sealer);
        let mut w = BackupWriter::new(sink, &holder.key(), &params)?;
        let mut from: Vec<u8> = Vec::new();
        let mut batch = Vec::new();
        loop {
            batch.clear();
            self.store
                .scan_changes(since, &from, batch_len, &mut batch)?;
            for (k, seq, v) in &batch {
                w.push(k, *seq, v.as_deref())?;
            }
            match batch.last() {
                Some((k, _, _)) if batch.len() == batch_len => {
                    from = k.clone();
                    from.push(0);
                }
                _ => break,
            }
        }
        let info = w.finish()?;
        // Deletions after this backup must now survive merges for the next incremental.
        self.store.retain_after(end_seq)?;
        let last = LastBackup {
            kind: info.header.kind,
            end_seq,
            backup_id: info.header.backup_id,
            created: info.header.created,
        };
        let msg = alloc::format!(
            "{} backup to seq {} ({} records, {} bytes)",
            kind_name(info.header.kind),
            end_seq,
            info.records,
            info.stream_len
        );
        self.transaction(|t| {
            t.write(
                format::catalog_key(CAT_LAST_BACKUP, &[]),
                Some(encode_last(&last)),
            )?;
            t.log_event(Level::Info, EVENT_BACKUP, &msg)
        })?;
        Ok(info)
    }

    /// Replace the whole database by the state a backup chain describes: `chain[0]` a full
    /// backup, each next one an incremental continuing the one before. Atomic: every stream is
    /// read and verified to its trailer while the new state is written beside the old, then
    /// one root write switches; a cut or any error before leaves the database as it was.
    /// A broken, reordered or foreign chain is [`Error::BackupChain`]; a damaged stream
    /// [`Error::BadBackup`]; a wrong key [`Error::WrongKey`].
    pub fn restore<S: BackupSource>(
        &mut self,
        chain: &mut [S],
        key: &BackupKeySpec<'_>,
    ) -> Result<RestoreReport> {
        let n = chain.len();
        let holder_sealer = self.store.sealer().clone();
        let holder = KeyHolder::new(key, &holder_sealer);
        let bkey = holder.key();
        let mut prev: Option<BackupHeader> = None;
        let mut records = 0u64;
        let res = self.store.restore(n, &mut |i, sink| {
            let src = chain.get_mut(i).ok_or(Error::InvalidArgument)?;
            let mut r = BackupReader::open(src, &bkey)?;
            let h = *r.header();
            match &prev {
                None if h.kind != BackupKind::Full => return Err(Error::BackupChain),
                None => {}
                Some(p) => check_link(p, &h)?,
            }
            while let Some(rec) = r.next()? {
                sink.add(rec.key, rec.seq, rec.value)?;
                records += 1;
            }
            r.finish()?;
            prev = Some(h);
            Ok(h.end_seq)
        });
        res?;
        // The store switched: the restore has happened. What follows is bookkeeping whose
        // failure (a full flash, say) must not report it as failed.
        self.colls.clear();
        self.indexes.clear();
        self.schemas.clear();
        // The restored history carries its own (older) time mark: the next time issued past it
        // must write a new one, or a reboot could start the time below times issued now. If it
        // cannot be read, assume none: the next commit then writes one.
        let mark = self
            .store
            .get(&super::time::mark_key())
            .and_then(|m| super::time::load_mark(m.as_deref()));
        self.clock.set_persisted(mark.unwrap_or(None));
        let last = prev.ok_or(Error::InvalidArgument)?;
        // A half-built index in the restored state is dropped here or at the next open.
        let _ = self.abandon_index_build();
        // The restored state is the chain's last backup: the next incremental continues it. If
        // this record cannot be written, the restored one names an older backup, below the
        // restored history's floor, and an incremental is refused (`BackupChain`), never wrong.
        let lb = LastBackup {
            kind: last.kind,
            end_seq: last.end_seq,
            backup_id: last.backup_id,
            created: last.created,
        };
        let msg = alloc::format!(
            "restored {} backups to seq {} ({} records)",
            n,
            last.end_seq,
            records
        );
        let _ = self.transaction(|t| {
            t.write(
                format::catalog_key(CAT_LAST_BACKUP, &[]),
                Some(encode_last(&lb)),
            )?;
            t.log_event(Level::Info, EVENT_RESTORE, &msg)
        });
        Ok(RestoreReport {
            streams: n as u32,
            records,
            end_seq: last.end_seq,
        })
    }
}

impl<D: BlockDevice> Database<D> {
    /// Verify a backup stream completely without restoring it (every chunk authenticated, the
    /// trailer's counts checked); returns what it holds.
    pub fn verify_backup<S: BackupSource>(
        &self,
        source: S,
        key: &BackupKeySpec<'_>,
    ) -> Result<BackupInfo> {
        let holder = KeyHolder::new(key, self.store.sealer());
        crate::backup::verify(source, &holder.key())
    }

    /// The authenticated header of a backup stream, without reading its body (which may still
    /// be torn or damaged: [`Database::verify_backup`] reads it all).
    pub fn peek_backup<S: BackupSource>(
        &self,
        source: S,
        key: &BackupKeySpec<'_>,
    ) -> Result<BackupHeader> {
        let holder = KeyHolder::new(key, self.store.sealer());
        BackupReader::open(source, &holder.key()).map(|r| *r.header())
    }
}
