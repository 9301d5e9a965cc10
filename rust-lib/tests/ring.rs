//! The backup ring: scheduled backups on a partition rotate between two chain areas, a restore
//! takes the newest chain that verifies, and a power cut at any flash operation of a backup
//! leaves a chain that restores the last completed backup.

mod common;
use cairndb::db::{BackupKeySpec, BackupRing, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::Error;
use common::*;

type Db = Database<SimFlash>;

const KEY: BackupKeySpec<'static> = BackupKeySpec::Database;

fn fresh() -> Db {
    Database::format(new_sim(96), &small_config(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format")
}

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

/// What a fresh device restored from the ring holds must be `expected`.
fn assert_restores(ring: &BackupRing, part: &mut SimFlash, expected: &Model) {
    let mut target = fresh();
    ring.restore(&mut target, part, &KEY).expect("restore");
    diff(&mut target, expected).unwrap_or_else(|e| panic!("restored state differs: {e}"));
}

#[test]
fn backups_rotate_between_two_chains_and_each_restores_its_state() {
    let ring = BackupRing::new(0, 48, 3).expect("ring");
    assert_eq!(ring.slot_blocks().unwrap(), 8);
    let mut part = new_sim(48);
    let mut db = fresh();
    let mut model = Model::default();
    let mut rng = Rng(7);
    let mut placed = Vec::new();
    for round in 0..8u64 {
        run_ops(&mut db, &mut model, &mut rng, 40, round * 40);
        let b = ring.backup(&mut db, &mut part, &KEY).expect("backup");
        placed.push((b.area, b.slot, b.info.header.kind));
        let status = ring.status(&db, &mut part, &KEY).expect("status");
        assert_eq!(status.newest, Some(b.area), "round {round}");
        assert_eq!(status.chain_len[b.area as usize], b.slot + 1);
        assert_restores(&ring, &mut part, &model);
    }
    use cairndb::backup::BackupKind::{Full, Incremental};
    assert_eq!(
        placed,
        [
            (0, 0, Full),
            (0, 1, Incremental),
            (0, 2, Incremental),
            (1, 0, Full),
            (1, 1, Incremental),
            (1, 2, Incremental),
            (0, 0, Full),
            (0, 1, Incremental),
        ]
    );
    // The chain in area 1 still restores the state of its last backup (round 5) but is older:
    // a restore takes area 0's.
    let status = ring.status(&db, &mut part, &KEY).unwrap();
    assert_eq!(status.chain_len, [2, 3]);
}

#[test]
fn after_a_restore_from_the_ring_the_next_backup_continues_its_chain() {
    let ring = BackupRing::new(0, 48, 4).unwrap();
    let mut part = new_sim(48);
    let mut db = fresh();
    let mut model = Model::default();
    let mut rng = Rng(11);
    run_ops(&mut db, &mut model, &mut rng, 50, 0);
    ring.backup(&mut db, &mut part, &KEY).unwrap();
    run_ops(&mut db, &mut model, &mut rng, 50, 50);
    ring.backup(&mut db, &mut part, &KEY).unwrap();
    let saved = model.clone();
    // Changes after the last backup are lost by the restore.
    run_ops(&mut db, &mut model, &mut rng, 50, 100);
    ring.restore(&mut db, &mut part, &KEY)
        .expect("restore in place");
    diff(&mut db, &saved).unwrap();
    let mut model = saved;
    run_ops(&mut db, &mut model, &mut rng, 30, 150);
    let b = ring.backup(&mut db, &mut part, &KEY).unwrap();
    assert_eq!(
        (b.area, b.slot),
        (0, 2),
        "an incremental after the restored chain"
    );
    assert_restores(&ring, &mut part, &model);
}

#[test]
fn a_damaged_tail_restores_up_to_the_last_whole_stream() {
    let ring = BackupRing::new(0, 48, 3).unwrap();
    let slot = ring.slot_blocks().unwrap() as usize * 4096;
    let mut part = new_sim(48);
    let mut db = fresh();
    let mut model = Model::default();
    let mut rng = Rng(3);
    run_ops(&mut db, &mut model, &mut rng, 60, 0);
    ring.backup(&mut db, &mut part, &KEY).unwrap();
    let first = model.clone();
    run_ops(&mut db, &mut model, &mut rng, 60, 60);
    let b = ring.backup(&mut db, &mut part, &KEY).unwrap();
    assert_eq!((b.area, b.slot), (0, 1));
    // Flip a byte inside the incremental's body (past its header).
    let at = slot + (b.info.stream_len as usize) / 2 + 200;
    part.image_mut()[at] ^= 0x40;
    assert_restores(&ring, &mut part, &first);
    // A damaged full backup leaves no chain in its area: the other one is used.
    part.image_mut()[at] ^= 0x40;
    run_ops(&mut db, &mut model, &mut rng, 60, 120);
    ring.backup(&mut db, &mut part, &KEY).unwrap(); // slot 2
    let in_area0 = model.clone();
    run_ops(&mut db, &mut model, &mut rng, 60, 180);
    let b = ring.backup(&mut db, &mut part, &KEY).unwrap();
    assert_eq!((b.area, b.slot), (1, 0));
    let full_at = 3 * slot + 200;
    part.image_mut()[full_at] ^= 0x01;
    assert_restores(&ring, &mut part, &in_area0);
}

#[test]
fn an_empty_ring_a_wrong_key_and_bad_shapes_are_errors() {
    assert_eq!(
        BackupRing::new(0, 48, 1).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        BackupRing::new(0, 48, 17).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        BackupRing::new(0, 5, 3).unwrap_err(),
        Error::InvalidArgument
    );
    let off_device = BackupRing::new(40, 48, 3).unwrap();
    let mut part = new_sim(48);
    let mut db = fresh();
    assert_eq!(
        off_device.backup(&mut db, &mut part, &KEY).unwrap_err(),
        Error::InvalidArgument
    );
    let ring = BackupRing::new(0, 48, 3).unwrap();
    assert_eq!(
        ring.restore(&mut db, &mut part, &KEY).unwrap_err(),
        Error::NotFound
    );
    db.kv_put("n", b"k", b"v").unwrap();
    ring.backup(&mut db, &mut part, &KEY).unwrap();
    let other = BackupKeySpec::Raw(&KEY_B);
    assert_eq!(
        ring.restore(&mut db, &mut part, &other).unwrap_err(),
        Error::WrongKey
    );
    assert_eq!(db.kv_get("n", b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// Cuts the power at every flash operation of a backup, of the partition and then of the
/// database's own flash (the backup's closing commit), and reboots: the database reopens, the
/// ring restores the last completed backup (the one before the cut, or the cut one when its
/// last write had landed), and the next backup succeeds and restores the current state.
#[test]
fn a_power_cut_at_any_point_of_a_backup_keeps_a_restorable_chain() {
    let ring = BackupRing::new(0, 24, 2).unwrap();
    let mut part = new_sim(24);
    let mut db = fresh();
    let mut model = Model::default();
    let mut rng = Rng(0xC0FFEE);
    let mut cuts = [0u32; 2];
    // Full, incremental, full into area 1, incremental, full over area 0, incremental.
    for round in 0..6u64 {
        let before = model.clone();
        run_ops(&mut db, &mut model, &mut rng, 60, round * 60);
        let db_image = db.device().image().to_vec();
        let part_image = part.image().to_vec();
        let reopen = |image: &[u8]| {
            Database::open(
                SimFlash::from_image(geometry(96), image.to_vec()).unwrap(),
                &small_config(),
                &Key::Raw(&KEY_A),
            )
            .map_err(|e| e.0)
            .unwrap()
        };
        for on_db in [false, true] {
            let mut n = 1u64;
            loop {
                let mut p = SimFlash::from_image(geometry(24), part_image.clone()).unwrap();
                let mut d = reopen(&db_image);
                if on_db {
                    d.device_mut().cut_power_after(n);
                } else {
                    p.cut_power_after(n);
                }
                let res = ring.backup(&mut d, &mut p, &KEY);
                let cut = p.power_is_cut() || d.device().power_is_cut();
                p.restore_power();
                if !cut {
                    res.expect("backup without a cut");
                    d.device_mut().restore_power(); // disarm the cut that never struck
                    if on_db {
                        part = p;
                        db = d;
                    }
                    break;
                }
                cuts[on_db as usize] += 1;
                // Reboot: the database reopens from what its flash holds.
                let mut dev = d.into_device();
                dev.restore_power();
                let mut d = reopen(dev.image());
                if round > 0 || res.is_ok() {
                    let mut target = fresh();
                    let mut probe = p.clone();
                    ring.restore(&mut target, &mut probe, &KEY)
                        .unwrap_or_else(|e| panic!("round {round} cut {n}: restore: {e:?}"));
                    if diff(&mut target, &before).is_err() {
                        diff(&mut target, &model).unwrap_or_else(|e| {
                            panic!("round {round} cut {n}: restored neither state: {e}")
                        });
                    }
                }
                ring.backup(&mut d, &mut p, &KEY)
                    .unwrap_or_else(|e| panic!("round {round} cut {n}: backup after cut: {e:?}"));
                assert_restores(&ring, &mut p, &model);
                n += 1;
            }
        }
    }
    assert!(cuts[0] > 60 && cuts[1] > 10, "too few cut points: {cuts:?}");
    eprintln!(
        "backup ring: {} cuts of the partition, {} of the database, each left a restorable chain",
        cuts[0], cuts[1]
    );
}
