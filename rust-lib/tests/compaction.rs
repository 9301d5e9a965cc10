//! Compaction: the automatic trigger reclaims deleted space, and compaction steps converge one
//! merge at a time.

mod common;
use cairndb::db::{Database, Key};
use common::*;

fn db_with(auto: u8) -> Database<cairndb::flash::SimFlash> {
    let mut cfg = small_config();
    cfg.store.auto_compact_percent = auto;
    cfg.store.max_segments = 16;
    cfg.store.tier_fanout = 8;
    cfg.lfs.max_open_files = 18;
    Database::format(new_sim(96), &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format")
}

fn fill_and_delete(db: &mut Database<cairndb::flash::SimFlash>) {
    for i in 0..300 {
        db.insert("a", &json(&format!(r#"{{"n":{i},"pad":"{:060}"}}"#, i)))
            .expect("insert");
    }
    db.flush().expect("flush");
    for id in 1..=270 {
        db.delete("a", id).expect("delete");
    }
    db.flush().expect("flush");
}

#[test]
fn deletions_past_the_threshold_trigger_a_full_merge_by_themselves() {
    let mut manual = db_with(0);
    fill_and_delete(&mut manual);
    let mut auto = db_with(30);
    fill_and_delete(&mut auto);
    let (m, a) = (manual.stats(), auto.stats());
    println!(
        "after 300 inserts and 270 deletes: manual {} segments / {} bytes (garbage {}%), auto {} segments / {} bytes",
        m.segments,
        m.segment_bytes,
        manual.garbage_percent(),
        a.segments,
        a.segment_bytes
    );
    assert!(
        manual.garbage_percent() >= 30,
        "the workload crosses the threshold"
    );
    assert!(m.segments > 1);
    assert!(
        auto.garbage_percent() < 30,
        "below the threshold after its merge"
    );
    assert!(a.segment_bytes * 2 < m.segment_bytes, "space reclaimed");
    assert_eq!(auto.count("a").expect("count"), 30);
    assert!(auto.check().expect("check").is_clean());
}

#[test]
fn compaction_steps_converge_one_merge_at_a_time() {
    let mut db = db_with(0);
    fill_and_delete(&mut db);
    let before = db.stats();
    let mut steps = 0;
    let mut last_segments = before.segments;
    while db.compact_step().expect("step") {
        steps += 1;
        let s = db.stats().segments;
        assert!(s < last_segments, "each step merges");
        last_segments = s;
    }
    steps += 1;
    let after = db.stats();
    assert_eq!(after.segments, 1);
    assert!(
        steps < before.segments,
        "{steps} steps for {} segments",
        before.segments
    );
    assert!(after.segment_bytes < before.segment_bytes / 3);
    assert!(!db.compact_step().expect("idle step"), "nothing left to do");
    assert_eq!(db.count("a").expect("count"), 30);
    assert!(db.check().expect("check").is_clean());
}
