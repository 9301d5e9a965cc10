//! Power-loss campaign: a mixed workload (inserts, patches, replaces, deletes, KV puts and
//! deletes, multi-document transactions, collection drops, flushes, compactions and rekeys) is
//! cut at thousands of distinct flash operations on the strict simulated NOR flash. After each
//! cut the database must open and hold exactly the state before or after the interrupted
//! operation: every completed write present, nothing partial visible.

mod common;
use cairndb::db::{Database, Key};
use common::*;

const OPS: u64 = 260;
const BLOCKS: u32 = 96;

/// Run the workload from a freshly formatted device. Returns the model before the operation in
/// flight when the power went, that operation, and the device.
fn run(
    cut_after: Option<u64>,
    seed: u64,
    tear_seed: u64,
) -> (Model, Option<Op>, cairndb::flash::SimFlash, u64) {
    let cfg = small_config();
    let mut sim = new_sim(BLOCKS);
    sim.set_seed(tear_seed);
    let mut db = Database::format(sim, &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    let start_ops = db.device().ops();
    if let Some(n) = cut_after {
        db.device_mut().cut_power_after(n);
    }
    let mut model = Model::default();
    let mut rng = Rng(seed);
    for i in 0..OPS {
        let op = model.gen_op(&mut rng, i, true);
        let res = match &op {
            Op::Rekey => run_rekey(&mut db, !model.key_b),
            Op::Reopen => {
                let (closed, dev) = db.close();
                if let Err(e) = closed {
                    assert!(
                        dev.power_is_cut(),
                        "close failed without a power cut: {e:?}"
                    );
                    return (model, Some(op), dev, 0);
                }
                match Database::open(dev, &cfg, &Key::Raw(&model.key())) {
                    Ok(reopened) => {
                        db = reopened;
                        Ok(())
                    }
                    Err((e, dev)) => {
                        assert!(dev.power_is_cut(), "open failed without a power cut: {e:?}");
                        return (model, Some(op), dev, 0);
                    }
                }
            }
            other => run_op(&mut db, other),
        };
        match res {
            Ok(()) => model.apply(&op),
            Err(e) => {
                assert!(
                    db.device().power_is_cut(),
                    "op {i} {op:?} failed without a power cut: {e:?}"
                );
                let used = db.device().ops() - start_ops;
                return (model, Some(op), db.into_device(), used);
            }
        }
    }
    let used = db.device().ops() - start_ops;
    (model, None, db.into_device(), used)
}

/// Cut at every flash operation of one workload; returns (cut points, in-flight op survived).
fn campaign(seed: u64) -> (u64, u64, u64) {
    let (full_model, _, sim, total_ops) = run(None, seed, 0);
    assert_eq!(sim.violations(), 0, "the workload broke the flash contract");
    // Check the uncut run itself against the model.
    let mut db = Database::open(sim, &small_config(), &Key::Raw(&full_model.key()))
        .map_err(|e| e.0)
        .expect("open");
    diff(&mut db, &full_model).expect("uncut run matches the model");

    let mut tried = 0u64;
    let mut in_flight_applied = 0u64;
    for n in 1..=total_ops {
        let (before, op, sim, _) = run(Some(n), seed, n);
        let op = op.unwrap_or_else(|| panic!("seed {seed:#x}: cut at op {n} never struck"));
        assert_eq!(sim.violations(), 0);
        let mut sim = sim;
        sim.restore_power();
        let mut after = before.clone();
        after.apply(&op);
        // Exactly one of the two states, under that state's key.
        let cfg = small_config();
        let mut ok = None;
        let mut errors = Vec::new();
        let mut dev = Some(sim);
        for (m, name) in [(&before, "before"), (&after, "after")] {
            let s = dev.take().expect("device");
            match Database::open(s, &cfg, &Key::Raw(&m.key())) {
                Ok(mut db) => {
                    let d = diff(&mut db, m);
                    dev = Some(db.into_device());
                    match d {
                        Ok(()) => {
                            ok = Some(name);
                            break;
                        }
                        Err(e) => errors.push(format!("{name}: {e}")),
                    }
                }
                Err((e, s)) => {
                    errors.push(format!("{name}: open {e:?}"));
                    dev = Some(s);
                }
            }
        }
        let which = ok.unwrap_or_else(|| {
            panic!("seed {seed:#x} cut {n} during {op:?}: no committed state: {errors:?}")
        });
        let m = if which == "after" {
            in_flight_applied += 1;
            &after
        } else {
            &before
        };
        // The recovered database keeps working.
        let mut db = Database::open(dev.take().expect("device"), &cfg, &Key::Raw(&m.key()))
            .map_err(|e| e.0)
            .expect("reopen");
        db.insert("a", &json(r#"{"after":"cut"}"#))
            .expect("write after recovery");
        tried += 1;
    }
    (tried, total_ops, in_flight_applied)
}

#[test]
fn every_cut_point_recovers_to_a_committed_state() {
    let seeds = [0xC0FFEE_u64, 0xBEEF, 0xF00D];
    let results: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
        seeds
            .iter()
            .map(|&seed| s.spawn(move || campaign(seed)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("campaign"))
            .collect()
    });
    let tried: u64 = results.iter().map(|r| r.0).sum();
    let survived: u64 = results.iter().map(|r| r.2).sum();
    println!("power-loss campaign: {tried} distinct cut points ({} workloads of {OPS} operations, every flash operation cut once); the interrupted operation survived {survived} times, was rolled back {} times", seeds.len(), tried - survived);
    assert!(tried >= 2_000, "only {tried} cut points");
}
