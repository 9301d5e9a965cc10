//! Backups, restore, check, repair, rekey and compaction.

use crate::cli::{BackupArgs, BackupKeyOpts, RekeyArgs, RestoreArgs, VerifyArgs};
use crate::error::{db_err_ro, io_err, CliError, Res, EXIT_CORRUPT};
use crate::image::{encryption_text, ImageOpts, Session};
use crate::keys::{self, random_salt, KeyMaterial};
use crate::out::Out;
use cairndb::backup::{self, BackupInfo, BackupKind, IoSink, IoSource, KeyMode};
use cairndb::db::{CheckReport, RepairReport};
use cairndb::format::{FLAG_ENCRYPTED, FLAG_PASSPHRASE};
use cairndb::Error as DbError;
use indicatif::ProgressBar;
use serde_json::json;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

fn backup_key(k: &BackupKeyOpts) -> Res<KeyMaterial> {
    let given = [
        k.backup_key_file.is_some(),
        k.backup_key_hex.is_some(),
        k.backup_passphrase.is_some(),
        k.backup_passphrase_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(CliError::usage("give at most one backup key option"));
    }
    keys::resolve(
        k.backup_key_file.as_ref(),
        k.backup_key_hex.as_deref(),
        k.backup_passphrase.as_deref(),
        k.backup_passphrase_file.as_ref(),
    )
}

/// A writer that advances a progress bar by the bytes written.
struct Counting<'a, W: Write> {
    inner: W,
    bar: &'a ProgressBar,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that advances a progress bar by the bytes read.
struct CountingRead<'a, R: Read> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn kind(k: BackupKind) -> &'static str {
    match k {
        BackupKind::Full => "full",
        BackupKind::Incremental => "incremental",
    }
}

fn key_mode(m: KeyMode) -> String {
    match m {
        KeyMode::Plain => "plain (CRC-32C)".into(),
        KeyMode::Key => "raw key".into(),
        KeyMode::Passphrase { iterations, .. } => {
            format!("passphrase (PBKDF2, {iterations} iterations)")
        }
    }
}

fn info_json(path: &Path, i: &BackupInfo) -> serde_json::Value {
    let h = &i.header;
    json!({"file": path.display().to_string(), "kind": kind(h.kind), "key": key_mode(h.key_mode),
           "records": i.records, "bytes": i.stream_len, "base_seq": h.base_seq,
           "end_seq": h.end_seq, "created": h.created,
           "backup_id": keys::to_hex(&h.backup_id), "parent_id": keys::to_hex(&h.parent_id),
           "db_id": keys::to_hex(&h.db_id)})
}

fn info_text(path: &Path, i: &BackupInfo) -> String {
    let h = &i.header;
    format!(
        "{}: {} backup, {} record(s), {} bytes, sequence {}..{}, key: {}",
        path.display(),
        kind(h.kind),
        i.records,
        i.stream_len,
        h.base_seq,
        h.end_seq,
        key_mode(h.key_mode)
    )
}

/// A backup error, naming the stream(s).
fn backup_err(ro: bool, e: DbError, files: &str) -> CliError {
    match e {
        DbError::BadBackup => CliError::corrupt(format!(
            "{files}: not a valid backup stream (damaged, truncated, or written with another key)"
        )),
        DbError::BackupChain => CliError::corrupt(format!(
            "{files}: not a chain this database can take (a full backup first, then its \
             incrementals in order; an incremental needs an earlier backup of this database)"
        )),
        DbError::WrongKey => CliError::key(format!("{files}: the backup key does not open it")),
        e => db_err_ro(ro, e).context(files),
    }
}

pub fn backup(s: &mut Session, a: &BackupArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let key = backup_key(&a.key)?;
    if a.output.exists() && !a.force {
        return Err(CliError::failed(format!(
            "{}: exists already (give --force to overwrite it)",
            a.output.display()
        )));
    }
    let salt = random_salt()?;
    let spec = key.backup_key(salt, opts.kdf_iterations);
    let file = File::create(&a.output).map_err(|e| io_err(&a.output, e))?;
    let bar = out.bar(None, "backing up", true);
    let mut sink = IoSink(Counting {
        inner: BufWriter::with_capacity(1 << 16, file),
        bar: &bar,
    });
    let ro = s.read_only;
    let r = if a.incremental {
        s.db.backup_incremental(&mut sink, &spec)
    } else {
        s.db.backup_full(&mut sink, &spec)
    };
    bar.finish_and_clear();
    let synced = sink
        .0
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all());
    let name = a.output.display().to_string();
    let info = match (r, synced) {
        (Ok(info), Ok(())) => info,
        (Err(e), _) => {
            let _ = std::fs::remove_file(&a.output);
            let e = match e {
                DbError::BackupChain => CliError::failed(
                    "no earlier backup to continue (or history since it is gone): take a full \
                     backup",
                ),
                e => backup_err(ro, e, &name),
            };
            return Err(e);
        }
        (Ok(_), Err(e)) => {
            let _ = std::fs::remove_file(&a.output);
            return Err(io_err(&a.output, e));
        }
    };
    out.emit(info_json(&a.output, &info), || info_text(&a.output, &info));
    Ok(())
}

fn open_streams<'a>(
    files: &[PathBuf],
    bar: &'a ProgressBar,
) -> Res<Vec<IoSource<CountingRead<'a, BufReader<File>>>>> {
    files
        .iter()
        .map(|p| {
            let f = File::open(p).map_err(|e| io_err(p, e))?;
            Ok(IoSource(CountingRead {
                inner: BufReader::with_capacity(1 << 16, f),
                bar,
            }))
        })
        .collect()
}

fn total_len(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most PBKDF2 iterations a passphrase stream may ask for when read (a hostile stream
/// cannot make reading it arbitrarily slow).
fn max_read_iterations(opts: &ImageOpts) -> u32 {
    opts.kdf_iterations.max(1_000_000)
}

pub fn restore(s: &mut Session, a: &RestoreArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let key = backup_key(&a.key)?;
    let spec = key.backup_key([0; 16], max_read_iterations(opts));
    let bar = out.bar(Some(total_len(&a.files)), "restoring", true);
    let mut streams = open_streams(&a.files, &bar)?;
    let ro = s.read_only;
    let r = s.db.restore(&mut streams, &spec);
    bar.finish_and_clear();
    let rep = r.map_err(|e| backup_err(ro, e, &names(&a.files)))?;
    out.emit(
        json!({"streams": rep.streams, "records": rep.records, "end_seq": rep.end_seq}),
        || {
            format!(
                "restored {} stream(s), {} record(s); the database is at sequence {}",
                rep.streams, rep.records, rep.end_seq
            )
        },
    );
    Ok(())
}

pub fn verify(s: &mut Session, a: &VerifyArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let key = backup_key(&a.key)?;
    let spec = key.backup_key([0; 16], max_read_iterations(opts));
    let bar = out.bar(Some(total_len(&a.files)), "verifying", true);
    let streams = open_streams(&a.files, &bar)?;
    let ro = s.read_only;
    let mut infos = Vec::new();
    for (p, src) in a.files.iter().zip(streams) {
        let r = s.db.verify_backup(src, &spec);
        match r {
            Ok(i) => infos.push(i),
            Err(e) => {
                bar.finish_and_clear();
                return Err(backup_err(ro, e, &p.display().to_string()));
            }
        }
    }
    bar.finish_and_clear();
    if infos.len() > 1 {
        backup::check_chain(&infos).map_err(|e| backup_err(ro, e, &names(&a.files)))?;
    }
    let j = json!({"chain": infos.len() > 1, "streams": a.files.iter().zip(&infos)
        .map(|(p, i)| info_json(p, i)).collect::<Vec<_>>()});
    out.emit(j, || {
        let mut t: String = a
            .files
            .iter()
            .zip(&infos)
            .map(|(p, i)| format!("{}\n", info_text(p, i)))
            .collect();
        t.push_str(if infos.len() > 1 {
            "ok: every stream verifies and they form a chain"
        } else {
            "ok: the stream verifies"
        });
        t
    });
    Ok(())
}

fn check_json(r: &CheckReport) -> serde_json::Value {
    json!({"clean": r.is_clean(), "segments": r.store.segments, "pages": r.store.pages,
           "entries": r.store.entries, "wal_entries": r.store.wal_entries,
           "bad_pages": r.store.bad_pages, "inconsistencies": r.store.inconsistencies,
           "missing_files": r.store.missing_files, "collections": r.collections,
           "documents": r.documents, "indexes": r.indexes, "index_entries": r.index_entries,
           "unreadable_documents": r.unreadable_documents,
           "count_mismatches": r.count_mismatches,
           "missing_index_entries": r.missing_index_entries,
           "stray_index_entries": r.stray_index_entries})
}

fn check_text(r: &CheckReport) -> String {
    let mut t = format!(
        "checked {} segment(s), {} page(s), {} entries ({} in the log); {} collection(s), {} \
         document(s), {} index(es) with {} entries\n",
        r.store.segments,
        r.store.pages,
        r.store.entries,
        r.store.wal_entries,
        r.collections,
        r.documents,
        r.indexes,
        r.index_entries
    );
    let problems = [
        (r.store.bad_pages as u64, "page(s) fail authentication"),
        (r.store.inconsistencies as u64, "structural inconsistencies"),
        (r.store.missing_files as u64, "segment file(s) missing"),
        (r.unreadable_documents, "document(s) do not decode"),
        (r.count_mismatches as u64, "collection count(s) disagree"),
        (r.missing_index_entries, "index entries missing"),
        (r.stray_index_entries, "stray index entries"),
    ];
    let found: Vec<String> = problems
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    if found.is_empty() {
        t.push_str("ok: no problem found");
    } else {
        t.push_str(&format!("PROBLEMS: {}", found.join("; ")));
    }
    t
}

fn repair_json(r: &RepairReport) -> serde_json::Value {
    json!({"pages_quarantined": r.pages_quarantined, "frames_dropped": r.frames_dropped,
           "documents_removed": r.documents_removed, "counts_fixed": r.counts_fixed,
           "indexes_rebuilt": r.indexes_rebuilt, "indexes_dropped": r.indexes_dropped})
}

fn repair_text(r: &RepairReport) -> String {
    format!(
        "repaired: {} page(s) quarantined, {} log frame(s) dropped, {} document(s) removed, {} \
         count(s) fixed, {} index(es) rebuilt, {} dropped",
        r.pages_quarantined,
        r.frames_dropped,
        r.documents_removed,
        r.counts_fixed,
        r.indexes_rebuilt,
        r.indexes_dropped
    )
}

pub fn check(s: &mut Session, repair_too: bool, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let r = s.db.check().map_err(|e| db_err_ro(ro, e))?;
    if r.is_clean() || !repair_too {
        out.emit(check_json(&r), || check_text(&r));
        if !r.is_clean() {
            return Err(CliError::corrupt(
                "check found problems (`repair` fixes what it can)",
            ));
        }
        return Ok(());
    }
    let rep = s.db.repair().map_err(|e| db_err_ro(ro, e))?;
    let after = s.db.check().map_err(|e| db_err_ro(ro, e))?;
    out.emit(
        json!({"check": check_json(&r), "repair": repair_json(&rep),
               "after": check_json(&after)}),
        || {
            format!(
                "{}\n{}\nafter the repair: {}",
                check_text(&r),
                repair_text(&rep),
                check_text(&after)
            )
        },
    );
    if after.is_clean() {
        Ok(())
    } else {
        Err(CliError::corrupt("problems remain after the repair"))
    }
}

pub fn repair(s: &mut Session, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let rep = s.db.repair().map_err(|e| db_err_ro(ro, e))?;
    let after = s.db.check().map_err(|e| db_err_ro(ro, e))?;
    out.emit(
        json!({"repair": repair_json(&rep), "after": check_json(&after)}),
        || format!("{}\n{}", repair_text(&rep), check_text(&after)),
    );
    if after.is_clean() {
        Ok(())
    } else {
        Err(CliError::new(
            EXIT_CORRUPT,
            "problems remain after the repair",
        ))
    }
}

pub fn rekey(s: &mut Session, a: &RekeyArgs, out: &Out, opts: &ImageOpts) -> Res<()> {
    let given = [
        a.new_key_file.is_some(),
        a.new_key_hex.is_some(),
        a.new_passphrase.is_some(),
        a.new_passphrase_file.is_some(),
        a.plain,
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(CliError::usage(
            "rekey: give exactly one of --new-key-file, --new-key-hex, --new-passphrase, \
             --new-passphrase-file, --plain",
        ));
    }
    let new = keys::resolve(
        a.new_key_file.as_ref(),
        a.new_key_hex.as_deref(),
        a.new_passphrase.as_deref(),
        a.new_passphrase_file.as_ref(),
    )?;
    let salt = random_salt()?;
    let ro = s.read_only;
    s.db.rekey(&new.key(salt, opts.kdf_iterations))
        .map_err(|e| db_err_ro(ro, e))?;
    // The header as it now is (what `info` would show).
    let mut h = s.header;
    h.flags = match &new {
        KeyMaterial::None => 0,
        KeyMaterial::Raw(_) => FLAG_ENCRYPTED,
        KeyMaterial::Pass(_) => FLAG_ENCRYPTED | FLAG_PASSPHRASE,
    };
    h.kdf_iterations = if matches!(new, KeyMaterial::Pass(_)) {
        opts.kdf_iterations
    } else {
        0
    };
    s.header = h;
    out.emit(json!({"encryption": encryption_text(&h)}), || {
        format!("rekeyed: {}", encryption_text(&h))
    });
    Ok(())
}

pub fn compact(s: &mut Session, out: &Out) -> Res<()> {
    let ro = s.read_only;
    let e = |e| db_err_ro(ro, e);
    let before = s.db.space().map_err(e)?;
    let garbage = s.db.garbage_percent();
    let t = std::time::Instant::now();
    s.db.compact().map_err(e)?;
    let after = s.db.space().map_err(e)?;
    let secs = t.elapsed().as_secs_f64();
    out.emit(
        json!({"used_blocks_before": before.used_blocks, "used_blocks_after": after.used_blocks,
               "garbage_percent_before": garbage, "seconds": secs}),
        || {
            format!(
                "compacted in {secs:.2} s: {} -> {} blocks used ({}% garbage before)",
                before.used_blocks, after.used_blocks, garbage
            )
        },
    );
    Ok(())
}
