//! Backups and restore through the database: round trips over random histories with chains of
//! incrementals, chain and stream damage refused without touching the database, partitions of a
//! second device, and the limits of incremental history.

mod common;
use cairndb::backup::{DeviceSink, DeviceSource};
use cairndb::db::{BackupKeySpec, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::Error;
use common::*;

type Db = Database<SimFlash>;

fn fresh(key: &[u8; 32]) -> Db {
    Database::format(new_sim(96), &small_config(), &Key::Raw(key))
        .map_err(|e| e.0)
        .expect("format")
}

/// Run `n` workload operations (no rekeys; a reopen becomes a flush) on `db` and `model`.
fn run_ops(db: &mut Db, model: &mut Model, rng: &mut Rng, n: u64, base: u64) {
    for i in base..base + n {
        let op = match model.gen_op(rng, i, false) {
            Op::Reopen => Op::Flush,
            op => op,
        };
        run_op(db, &op).unwrap_or_else(|e| panic!("op {i} {op:?}: {e:?}"));
        model.apply(&op);
    }
}

fn restore_into(db: &mut Db, chain: &[Vec<u8>], key: &BackupKeySpec<'_>) -> Result<(), Error> {
    let mut streams: Vec<&[u8]> = chain.iter().map(|v| v.as_slice()).collect();
    db.restore(&mut streams, key).map(|_| ())
}

#[test]
fn restore_of_every_prefix_of_an_incremental_chain_matches_its_history() {
    for seed in [1u64, 0xABCD, 0x5EED] {
        let mut db = fresh(&KEY_A);
        let mut model = Model::default();
        let mut rng = Rng(seed);
        let mut chain: Vec<Vec<u8>> = Vec::new();
        let mut states: Vec<Model> = Vec::new();
        for round in 0..4u64 {
            run_ops(&mut db, &mut model, &mut rng, 70, round * 70);
            let mut stream = Vec::new();
            let info = if round == 0 {
                db.backup_full(&mut stream, &BackupKeySpec::Database)
            } else {
                db.backup_incremental(&mut stream, &BackupKeySpec::Database)
            }
            .expect("backup");
            assert_eq!(info.stream_len as usize, stream.len());
            let verified = db
                .verify_backup(stream.as_slice(), &BackupKeySpec::Database)
                .expect("verify");
            assert_eq!(verified.records, info.records);
            chain.push(stream);
            states.push(model.clone());
        }
        // An incremental carries only what changed: far less than the whole database.
        let mut whole = Vec::new();
        db.backup_full(&mut whole, &BackupKeySpec::Database)
            .expect("full");
        assert!(
            chain[3].len() < whole.len(),
            "seed {seed}: incremental {} vs full {}",
            chain[3].len(),
            whole.len()
        );
        // Back to back, an incremental holds only the previous backup's own bookkeeping: its
        // record, its event and the event log's metadata.
        let mut idle = Vec::new();
        let info = db
            .backup_incremental(&mut idle, &BackupKeySpec::Database)
            .expect("idle incremental");
        assert_eq!(info.records, 3, "seed {seed}");
        for k in 0..chain.len() {
            let mut target = fresh(&KEY_A);
            restore_into(&mut target, &chain[..=k], &BackupKeySpec::Database)
                .unwrap_or_else(|e| panic!("seed {seed} restore {k}: {e:?}"));
            diff(&mut target, &states[k]).unwrap_or_else(|e| panic!("seed {seed} k {k}: {e}"));
            assert!(target.check().expect("check").is_clean());
            // The restored database keeps working and survives a reopen.
            let dev = target.close().1;
            let mut target = Database::open(dev, &small_config(), &Key::Raw(&KEY_A))
                .map_err(|e| e.0)
                .expect("reopen");
            diff(&mut target, &states[k]).expect("after reopen");
        }
        // Restoring over the live database itself goes back in time, then continues: an
        // incremental taken after the restore extends the restored chain.
        restore_into(&mut db, &chain[..2], &BackupKeySpec::Database).expect("restore in place");
        let mut model = states[1].clone();
        diff(&mut db, &model).expect("in place");
        run_ops(&mut db, &mut model, &mut rng, 50, 1000);
        let mut next = Vec::new();
        db.backup_incremental(&mut next, &BackupKeySpec::Database)
            .expect("incremental after restore");
        let mut target = fresh(&KEY_A);
        restore_into(
            &mut target,
            &[chain[0].clone(), chain[1].clone(), next],
            &BackupKeySpec::Database,
        )
        .expect("restore extended chain");
        diff(&mut target, &model).expect("extended chain");
        // The chain that continued past the restore point no longer applies after it.
        let mut target = fresh(&KEY_A);
        let mut bad = chain[..3].to_vec();
        let mut tail = Vec::new();
        db.backup_incremental(&mut tail, &BackupKeySpec::Database)
            .expect("another");
        bad.push(tail);
        assert_eq!(
            restore_into(&mut target, &bad, &BackupKeySpec::Database),
            Err(Error::BackupChain)
        );
    }
}

/// A database with a short chain (full, incremental, incremental) and the models after each.
fn with_chain() -> (Db, Vec<Vec<u8>>, Vec<Model>) {
    let mut db = fresh(&KEY_A);
    let mut model = Model::default();
    let mut rng = Rng(77);
    let mut chain = Vec::new();
    let mut states = Vec::new();
    for round in 0..3u64 {
        run_ops(&mut db, &mut model, &mut rng, 40, round * 40);
        let mut s = Vec::new();
        if round == 0 {
            db.backup_full(&mut s, &BackupKeySpec::Database)
        } else {
            db.backup_incremental(&mut s, &BackupKeySpec::Database)
        }
        .expect("backup");
        chain.push(s);
        states.push(model.clone());
    }
    (db, chain, states)
}

#[test]
fn broken_chains_and_damaged_streams_are_refused_and_change_nothing() {
    let (_, chain, states) = with_chain();
    let mut target = fresh(&KEY_A);
    let mut model = Model::default();
    run_ops(&mut target, &mut model, &mut Rng(9), 30, 0);
    let spec = BackupKeySpec::Database;
    let reordered = vec![chain[0].clone(), chain[2].clone(), chain[1].clone()];
    assert_eq!(
        restore_into(&mut target, &reordered, &spec),
        Err(Error::BackupChain)
    );
    let gap = vec![chain[0].clone(), chain[2].clone()];
    assert_eq!(
        restore_into(&mut target, &gap, &spec),
        Err(Error::BackupChain)
    );
    let headless = vec![chain[1].clone()];
    assert_eq!(
        restore_into(&mut target, &headless, &spec),
        Err(Error::BackupChain)
    );
    // A chain of another database.
    let (_, other, _) = {
        let mut db = fresh(&KEY_A);
        let mut m = Model::default();
        run_ops(&mut db, &mut m, &mut Rng(1234), 20, 0);
        let mut s = Vec::new();
        db.backup_full(&mut s, &spec).expect("backup");
        (db, vec![s], m)
    };
    let foreign = vec![other[0].clone(), chain[1].clone()];
    assert_eq!(
        restore_into(&mut target, &foreign, &spec),
        Err(Error::BackupChain)
    );
    // Damage anywhere in the last stream, truncation, wrong key.
    let last = chain[2].len();
    for at in [0, 10, 150, last / 2, last - 1] {
        let mut damaged = chain.clone();
        damaged[2][at] ^= 0x20;
        let r = restore_into(&mut target, &damaged, &spec);
        assert!(
            matches!(
                r,
                Err(Error::BadBackup | Error::WrongKey | Error::Unsupported)
            ),
            "byte {at}: {r:?}"
        );
    }
    let mut cut = chain.clone();
    cut[2].truncate(last - 5);
    assert_eq!(
        restore_into(&mut target, &cut, &spec),
        Err(Error::BadBackup)
    );
    assert_eq!(
        restore_into(&mut target, &chain, &BackupKeySpec::Raw(&KEY_B)),
        Err(Error::WrongKey)
    );
    // After all that, the target still holds exactly its own data and works.
    diff(&mut target, &model).expect("target untouched");
    assert!(target.check().expect("check").is_clean());
    restore_into(&mut target, &chain, &spec).expect("the good chain");
    diff(&mut target, &states[2]).expect("restored");
}

#[test]
fn separate_backup_keys_and_plain_databases() {
    let mut db = fresh(&KEY_A);
    let mut model = Model::default();
    run_ops(&mut db, &mut model, &mut Rng(5), 60, 0);
    let backup_key = [0x42u8; 32];
    let pass = BackupKeySpec::Passphrase {
        pass: b"correct horse",
        salt: [3; 16],
        iterations: 64,
    };
    for spec in [BackupKeySpec::Raw(&backup_key), pass] {
        let mut s = Vec::new();
        db.backup_full(&mut s, &spec).expect("backup");
        // Restored into a plain database: the backup key, not the database key, opens it.
        let mut plain = Database::format(new_sim(96), &small_config(), &Key::None)
            .map_err(|e| e.0)
            .expect("format");
        assert_eq!(
            restore_into(&mut plain, &[s.clone()], &BackupKeySpec::Database),
            Err(Error::KeyMismatch)
        );
        restore_into(&mut plain, &[s], &spec).expect("restore");
        diff(&mut plain, &model).expect("plain target");
    }
    // A plain database's backup is checksummed plain text.
    let mut plain = Database::format(new_sim(96), &small_config(), &Key::None)
        .map_err(|e| e.0)
        .expect("format");
    plain.kv_put("cfg", b"k", b"visible").expect("put");
    let mut s = Vec::new();
    plain
        .backup_full(&mut s, &BackupKeySpec::Database)
        .expect("backup");
    assert!(s.windows(7).any(|w| w == b"visible"));
    let mut enc = Vec::new();
    db.kv_put("cfg", b"k", b"visible").expect("put");
    db.backup_full(&mut enc, &BackupKeySpec::Database)
        .expect("backup");
    assert!(!enc.windows(7).any(|w| w == b"visible"));
}

#[test]
fn backups_to_a_partition_of_a_second_device() {
    let (mut db, _, mut states) = with_chain();
    let mut model = states.pop().expect("state");
    for i in 0..60 {
        let op = Op::Insert("a", json(&format!(r#"{{"n":{i},"pad":"{:0100}"}}"#, i)));
        run_op(&mut db, &op).expect("insert");
        model.apply(&op);
    }
    let mut second = new_sim(16);
    let sink = DeviceSink::new(&mut second, 2, 10).expect("partition");
    let info = db
        .backup_full(sink, &BackupKeySpec::Database)
        .expect("backup to partition");
    assert!(info.stream_len > 4096, "spans blocks");
    assert_eq!(second.violations(), 0);
    let mut target = fresh(&KEY_A);
    let mut streams = [DeviceSource::new(&mut second, 2, 10).expect("source")];
    target
        .restore(&mut streams, &BackupKeySpec::Database)
        .expect("restore from partition");
    diff(&mut target, &model).expect("restored from partition");
}

#[test]
fn an_incremental_needs_complete_history_since_its_parent() {
    let mut db = fresh(&KEY_A);
    let spec = BackupKeySpec::Database;
    let mut empty = Vec::new();
    assert_eq!(
        db.backup_incremental(&mut empty, &spec),
        Err(Error::BackupChain),
        "no parent yet"
    );
    for i in 0..40 {
        db.insert("a", &json(&format!(r#"{{"n":{i}}}"#)))
            .expect("insert");
    }
    let mut first = Vec::new();
    let first_info = db.backup_full(&mut first, &spec).expect("full");
    for id in 1..=20 {
        db.delete("a", id).expect("delete");
    }
    let mut second = Vec::new();
    db.backup_full(&mut second, &spec).expect("second full");
    // The deletes are older than the newest backup: a full merge may drop them now, after which
    // an incremental from the first backup could not carry them.
    db.compact().expect("compact");
    let mut inc = Vec::new();
    assert_eq!(
        db.backup_incremental_from(&first_info.header, &mut inc, &spec),
        Err(Error::BackupChain)
    );
    // From the newest backup it works, and deletions after it survive compaction.
    for id in 21..=30 {
        db.delete("a", id).expect("delete");
    }
    db.compact().expect("compact");
    let mut inc = Vec::new();
    let info = db.backup_incremental(&mut inc, &spec).expect("incremental");
    assert!(info.records >= 10, "deletes carried: {info:?}");
    let mut target = fresh(&KEY_A);
    restore_into(&mut target, &[second, inc], &spec).expect("restore");
    assert_eq!(target.count("a").expect("count"), 10);
    assert_eq!(target.get("a", 25).expect("get"), None);
    assert!(target.get("a", 35).expect("get").is_some());
}

#[test]
fn time_never_goes_back_across_a_restore_of_an_older_backup() {
    let mut db = fresh(&KEY_A);
    db.insert("a", &json(r#"{"n":1}"#)).expect("insert");
    let mut old = Vec::new();
    db.backup_full(&mut old, &BackupKeySpec::Database)
        .expect("backup");
    db.set_time(5_000_000);
    db.insert("a", &json(r#"{"n":2}"#)).expect("insert");
    restore_into(&mut db, &[old], &BackupKeySpec::Database).expect("restore");
    let id = db.insert("a", &json(r#"{"n":3}"#)).expect("insert");
    let stamped = db.get("a", id).expect("get").expect("doc");
    let ts = stamped
        .as_map()
        .and_then(|m| m.get("_ts"))
        .and_then(|v| v.as_i64());
    assert_eq!(ts, Some(5_000_000), "time did not go back in this session");
    // A power cut, then a reopen: the time starts past everything issued before.
    let dev = db.into_device();
    let mut db = Database::open(dev, &small_config(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("reopen");
    assert!(db.now().expect("now") > 5_000_000);
}

/// A sink that fails once it has taken `left` bytes (a UART or card going away).
struct FailingSink {
    left: usize,
}

impl cairndb::backup::BackupSink for FailingSink {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.left {
            return Err(Error::Io);
        }
        self.left -= data.len();
        Ok(())
    }
}

#[test]
fn a_sink_failing_mid_backup_changes_nothing() {
    let (mut db, _, states) = with_chain();
    let before = db.last_backup().expect("last").expect("a backup was taken");
    let r = db.backup_incremental(FailingSink { left: 200 }, &BackupKeySpec::Database);
    assert_eq!(r.map(|_| ()), Err(Error::Io));
    assert_eq!(db.last_backup().expect("last"), Some(before));
    diff(&mut db, &states[2]).expect("data untouched");
    // The chain still continues from the last complete backup.
    let mut inc = Vec::new();
    let info = db
        .backup_incremental(&mut inc, &BackupKeySpec::Database)
        .expect("incremental");
    assert_eq!(info.header.base_seq, before.end_seq);
}

#[test]
fn a_restore_that_does_not_fit_leaves_the_database_as_it_was() {
    let cfg = small_config();
    let mut target = Database::format(new_sim(20), &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    let mut model = Model::default();
    // Fill the small volume until writes are refused, then thin it a little.
    // Random text, so page compression cannot make room either.
    let mut rng = Rng(99);
    let pad = |rng: &mut Rng| -> String {
        (0..25)
            .map(|_| format!("{:08x}", rng.next() as u32))
            .collect()
    };
    let mut i = 0u64;
    loop {
        let p = pad(&mut rng);
        let op = Op::Insert("a", json(&format!(r#"{{"n":{i},"pad":"{p}"}}"#)));
        match run_op(&mut target, &op) {
            Ok(()) => model.apply(&op),
            Err(Error::NoSpace) => break,
            Err(e) => panic!("fill: {e:?}"),
        }
        i += 1;
    }
    // A chain whose full backup holds far more than the free space.
    let mut src = fresh(&KEY_A);
    for j in 0..400 {
        let p = pad(&mut rng);
        src.insert("b", &json(&format!(r#"{{"n":{j},"pad":"{p}"}}"#)))
            .expect("insert");
    }
    let mut full = Vec::new();
    src.backup_full(&mut full, &BackupKeySpec::Database)
        .expect("full");
    let r = restore_into(&mut target, &[full], &BackupKeySpec::Database);
    assert!(
        matches!(r, Err(Error::NoSpace) | Err(Error::Fs(-28))),
        "{r:?}"
    );
    diff(&mut target, &model).expect("target untouched");
    let dev = target.close().1;
    let mut target = Database::open(dev, &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("reopen");
    diff(&mut target, &model).expect("after reopen");
    assert!(target.check().expect("check").is_clean());
}

#[test]
fn a_restore_that_leaves_the_flash_too_full_for_more_writes_still_reports_success() {
    let cfg = small_config();
    let mut target = Database::format(new_sim(20), &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    target.insert("a", &json(r#"{"n":0}"#)).expect("insert");
    let mut rng = Rng(7);
    let mut src = fresh(&KEY_A);
    let mut model = Model::default();
    for j in 0..110u64 {
        let p: String = (0..25)
            .map(|_| format!("{:08x}", rng.next() as u32))
            .collect();
        let op = Op::Insert("b", json(&format!(r#"{{"n":{j},"pad":"{p}"}}"#)));
        run_op(&mut src, &op).expect("insert");
        model.apply(&op);
    }
    let mut full = Vec::new();
    src.backup_full(&mut full, &BackupKeySpec::Database)
        .expect("full");
    // The restored data fits beside the old, but leaves too little room for ordinary writes:
    // the restore's own bookkeeping commit cannot be made, and the restore is still done.
    restore_into(&mut target, &[full], &BackupKeySpec::Database).expect("restore switched");
    assert_eq!(
        target.insert("a", &json(r#"{"n":1}"#)).map(|_| ()),
        Err(Error::NoSpace),
        "the volume is as full as this test needs"
    );
    diff(&mut target, &model).expect("restored state");
    let dev = target.close().1;
    let mut target = Database::open(dev, &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("reopen");
    diff(&mut target, &model).expect("after reopen");
    assert!(target.check().expect("check").is_clean());
}
