//! Power-loss campaign for backups, restore and compaction steps: a database in state B takes a
//! full backup, restores an older chain (state A) over itself, takes an incremental and
//! compacts step by step; power is cut at every flash operation of that sequence. After each
//! cut the database must open in state B (restore not switched yet) or A (switched), never a
//! mix, check clean, and keep working.

mod common;
use cairndb::db::{BackupKeySpec, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::Error;
use common::*;

const BLOCKS: u32 = 96;

struct Setup {
    image: Vec<u8>,
    chain: Vec<Vec<u8>>,
    /// The state the chain restores.
    a: Model,
    /// The state on the device before the sequence.
    b: Model,
}

fn run_ops(db: &mut Database<SimFlash>, model: &mut Model, rng: &mut Rng, n: u64) {
    for i in 0..n {
        let op = match model.gen_op(rng, i, false) {
            Op::Reopen => Op::Flush,
            op => op,
        };
        run_op(db, &op).expect("setup op");
        model.apply(&op);
    }
}

fn setup(seed: u64) -> Setup {
    let cfg = small_config();
    let mut db = Database::format(new_sim(BLOCKS), &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    let mut model = Model::default();
    let mut rng = Rng(seed);
    run_ops(&mut db, &mut model, &mut rng, 200);
    let mut full = Vec::new();
    db.backup_full(&mut full, &BackupKeySpec::Database)
        .expect("full");
    run_ops(&mut db, &mut model, &mut rng, 100);
    let mut inc = Vec::new();
    db.backup_incremental(&mut inc, &BackupKeySpec::Database)
        .expect("incremental");
    let a = model.clone();
    run_ops(&mut db, &mut model, &mut rng, 120);
    let (closed, dev) = db.close();
    closed.expect("close");
    Setup {
        image: dev.image().to_vec(),
        chain: vec![full, inc],
        a,
        b: model,
    }
}

/// The sequence under test. Returns whether the restore switched before it stopped.
fn sequence(
    db: &mut Database<SimFlash>,
    chain: &[Vec<u8>],
    restored: &mut bool,
) -> Result<(), Error> {
    while db.compact_step()? {}
    let mut scratch = Vec::new();
    db.backup_full(&mut scratch, &BackupKeySpec::Database)?;
    let mut streams: Vec<&[u8]> = chain.iter().map(|v| v.as_slice()).collect();
    db.restore(&mut streams, &BackupKeySpec::Database)?;
    *restored = true;
    let mut inc = Vec::new();
    db.backup_incremental(&mut inc, &BackupKeySpec::Database)?;
    while db.compact_step()? {}
    Ok(())
}

fn campaign(seed: u64) -> (u64, u64) {
    let s = setup(seed);
    let cfg = small_config();
    let geometry = geometry(BLOCKS);
    let open = |image: &[u8]| {
        let sim = SimFlash::from_image(geometry, image.to_vec()).expect("image");
        Database::open(sim, &cfg, &Key::Raw(&KEY_A))
            .map_err(|e| e.0)
            .expect("open")
    };
    // The uncut sequence, to count its flash operations.
    let mut db = open(&s.image);
    let start = db.device().ops();
    let mut restored = false;
    sequence(&mut db, &s.chain, &mut restored).expect("uncut sequence");
    let total = db.device().ops() - start;
    diff(&mut db, &s.a).expect("uncut result");
    let mut switched = 0;
    for n in 1..=total {
        let mut db = open(&s.image);
        db.device_mut().set_seed(n);
        db.device_mut().cut_power_after(n);
        let mut restored = false;
        let r = sequence(&mut db, &s.chain, &mut restored);
        assert!(r.is_err(), "seed {seed}: cut {n} never struck");
        let mut sim = db.into_device();
        assert_eq!(sim.violations(), 0);
        sim.restore_power();
        let mut db = Database::open(sim, &cfg, &Key::Raw(&KEY_A))
            .unwrap_or_else(|e| panic!("seed {seed} cut {n}: open {:?}", e.0));
        let as_b = diff(&mut db, &s.b);
        let as_a = diff(&mut db, &s.a);
        match (restored, as_a, as_b) {
            (_, Ok(()), _) => switched += 1,
            (false, Err(_), Ok(())) => {}
            (true, Err(e), _) => panic!("seed {seed} cut {n}: restore returned, state lost: {e}"),
            (false, Err(a), Err(b)) => panic!("seed {seed} cut {n}: neither state: A {a} / B {b}"),
        }
        let report = db.check().expect("check");
        assert!(report.is_clean(), "seed {seed} cut {n}: {report:?}");
        db.insert("a", &json(r#"{"after":"cut"}"#))
            .expect("write after recovery");
    }
    (total, switched)
}

#[test]
fn cuts_during_backup_restore_and_compaction_leave_one_whole_state() {
    let seeds = [0x5151_u64, 0xB00B, 0xCAFE, 0xD00D, 0xFACE, 0x1234];
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        seeds
            .iter()
            .map(|&seed| s.spawn(move || campaign(seed)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("campaign"))
            .collect()
    });
    let cuts: u64 = results.iter().map(|r| r.0).sum();
    let switched: u64 = results.iter().map(|r| r.1).sum();
    println!(
        "backup/restore/compaction power-loss campaign: {cuts} cut points, restored state after {switched}, old state after {}",
        cuts - switched
    );
    assert!(cuts >= 500, "only {cuts} cut points");
    assert!(switched > 0 && switched < cuts);
}
