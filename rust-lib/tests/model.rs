//! Model-based tests: random operation sequences against an in-memory model, with and without
//! encryption, with clean and unclean reopens in between.

mod common;
use cairndb::db::{Database, Key};
use common::*;
use proptest::prelude::*;

fn run(seed: u64, encrypted: bool, ops: u64) {
    let cfg = small_config();
    let key_a = if encrypted {
        Key::Raw(&KEY_A)
    } else {
        Key::None
    };
    let mut db = Database::format(new_sim(96), &cfg, &key_a)
        .map_err(|e| e.0)
        .expect("format");
    let mut model = Model::default();
    let mut rng = Rng(seed);
    for i in 0..ops {
        let op = model.gen_op(&mut rng, i, encrypted);
        match &op {
            Op::Rekey => run_rekey(&mut db, !model.key_b).expect("rekey"),
            Op::Reopen => {
                let key = if encrypted {
                    Key::Raw(if model.key_b { &KEY_B } else { &KEY_A })
                } else {
                    Key::None
                };
                let (closed, dev) = db.close();
                closed.expect("close");
                db = Database::open(dev, &cfg, &key)
                    .map_err(|e| e.0)
                    .expect("reopen");
            }
            other => run_op(&mut db, other).unwrap_or_else(|e| panic!("op {i} {other:?}: {e:?}")),
        }
        model.apply(&op);
        if rng.below(25) == 0 {
            // Reopen: cleanly, or as after a crash (no unmount, nothing flushed).
            let dev = if rng.below(2) == 0 {
                let (closed, dev) = db.close();
                closed.expect("close");
                dev
            } else {
                db.into_device()
            };
            let key = if encrypted {
                Key::Raw(if model.key_b { &KEY_B } else { &KEY_A })
            } else {
                Key::None
            };
            db = Database::open(dev, &cfg, &key)
                .map_err(|e| e.0)
                .expect("reopen");
        }
        if rng.below(40) == 0 {
            diff(&mut db, &model).unwrap_or_else(|e| panic!("after op {i}: {e}"));
        }
    }
    diff(&mut db, &model).expect("final state");
    assert_eq!(db.device().violations(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_histories_match_the_model(seed in any::<u64>(), encrypted in any::<bool>()) {
        run(seed, encrypted, 250);
    }
}

#[test]
fn long_history_encrypted() {
    run(7, true, 1500);
}

#[test]
fn long_history_plain() {
    run(11, false, 1500);
}
