//! Database time and expiry: every read path hides expired items before any sweep, sweeps
//! remove them in bounded commits, a unique index is not blocked by an expired holder, and
//! time never goes backwards across reboots (clean or cut), with no clock, with an uptime
//! clock that restarts at 0, and with wall time learned later.

mod common;
use cairndb::db::{Config, Database, IndexSpec, Key, SweepReport, WriteOptions};
use cairndb::flash::SimFlash;
use cairndb::query::FindOptions;
use cairndb::value::Value;
use cairndb::Error;
use common::*;

/// A settable counter the database can hold as its (Send) clock.
#[derive(Clone, Default)]
struct Cell(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Cell {
    fn new(v: u64) -> Self {
        Cell(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(v)))
    }
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn set(&self, v: u64) {
        self.0.store(v, std::sync::atomic::Ordering::SeqCst)
    }
}

fn fresh_with(cfg: &Config) -> Database<SimFlash> {
    Database::format(new_sim(128), cfg, &Key::None)
        .map_err(|e| e.0)
        .expect("format")
}

fn fresh() -> Database<SimFlash> {
    fresh_with(&Config::default())
}

/// A clock the test moves by hand.
fn manual_clock(db: &mut Database<SimFlash>, start: u64) -> Cell {
    let c = Cell::new(start);
    let c2 = c.clone();
    db.set_clock(Box::new(move || c2.get()));
    c
}

fn cut(db: Database<SimFlash>, cfg: &Config) -> Database<SimFlash> {
    Database::open(db.into_device(), cfg, &Key::None)
        .map_err(|e| e.0)
        .expect("open after cut")
}

fn clean(db: Database<SimFlash>, cfg: &Config) -> Database<SimFlash> {
    let (r, dev) = db.close();
    r.expect("close");
    Database::open(dev, cfg, &Key::None)
        .map_err(|e| e.0)
        .expect("open")
}

fn ttl(ms: u64) -> WriteOptions<'static> {
    WriteOptions {
        ttl: Some(ms),
        tags: &[],
    }
}

fn int(d: &Value, f: &str) -> i64 {
    d.as_map()
        .and_then(|m| m.get(f))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{f} in {d:?}"))
}

fn ids(db: &mut Database<SimFlash>, coll: &str, filter: &str, opts: &str) -> Vec<i64> {
    db.find_json(coll, filter, opts)
        .expect("find")
        .iter()
        .map(|d| int(d, "_id"))
        .collect()
}

#[test]
fn every_read_path_hides_expired_items_before_any_sweep() {
    let mut db = fresh();
    let clock = manual_clock(&mut db, 1_000);
    db.create_index(
        "s",
        "by_room",
        &IndexSpec {
            fields: &["room"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    // Ids 1 and 3 expire at 1_100; 2 and 4 never.
    let short = WriteOptions {
        ttl: Some(100),
        tags: &["hot"],
    };
    let keep = WriteOptions {
        ttl: None,
        tags: &["hot"],
    };
    for (i, o) in [&short, &keep, &short, &keep].into_iter().enumerate() {
        let room = if i < 2 { "A" } else { "B" };
        let doc = json(&format!(r#"{{"room":"{room}","n":{i}}}"#));
        db.insert_with("s", &doc, o).unwrap();
    }
    db.kv_put_with("kv", b"gone", b"1", &ttl(100)).unwrap();
    db.kv_put_with("kv", b"stays", b"2", &ttl(1_000)).unwrap();
    db.kv_put("kv", b"plain", b"3").unwrap();
    let d1 = db.get("s", 1).unwrap().unwrap();
    assert_eq!(int(&d1, "_exp"), 1_100);
    assert_eq!(int(&d1, "_ts"), 1_000);
    assert!(db
        .get("s", 2)
        .unwrap()
        .unwrap()
        .as_map()
        .unwrap()
        .get("_exp")
        .is_none());
    assert_eq!(db.count("s").unwrap(), 4);
    assert_eq!(ids(&mut db, "s", "{}", ""), [1, 2, 3, 4]);

    clock.set(1_099);
    assert_eq!(db.count("s").unwrap(), 4);
    clock.set(1_100);
    let commits = db.stats().store.commits;

    // Documents.
    assert_eq!(db.get("s", 1).unwrap(), None);
    assert_eq!(db.get_json("s", 3).unwrap(), None);
    assert!(db.get("s", 2).unwrap().is_some());
    assert_eq!(db.count("s").unwrap(), 2);
    assert_eq!(ids(&mut db, "s", "{}", ""), [2, 4]);
    assert_eq!(ids(&mut db, "s", r#"{"room":"A"}"#, ""), [2]);
    let plan = db
        .explain("s", &json(r#"{"room":"B"}"#), &FindOptions::default())
        .unwrap();
    assert_eq!(
        plan.as_map().unwrap().get("access"),
        Some(&Value::Str("index".into()))
    );
    assert_eq!(ids(&mut db, "s", r#"{"room":"B"}"#, ""), [4]);
    assert_eq!(ids(&mut db, "s", "{}", r#"{"sort":{"room":-1}}"#), [4, 2]);
    assert_eq!(
        db.count_where("s", &json(r#"{"n":{"$gte":0}}"#)).unwrap(),
        2
    );
    let all = json("{}");
    let first = db.first("s", &all, &FindOptions::default()).unwrap();
    assert_eq!(first.map(|d| int(&d, "_id")), Some(2));
    assert_eq!(db.last("s", &all).unwrap().map(|d| int(&d, "_id")), Some(4));
    assert_eq!(
        db.pluck("s", &all, "n", &FindOptions::default()).unwrap(),
        [Value::Int(1), Value::Int(3)]
    );
    assert_eq!(
        db.distinct("s", &all, "room").unwrap(),
        [Value::Str("A".into()), Value::Str("B".into())]
    );
    let iterated: Vec<i64> = db
        .docs("s")
        .unwrap()
        .map(|d| int(&d.unwrap(), "_id"))
        .collect();
    assert_eq!(iterated, [2, 4]);
    let mut visited = Vec::new();
    db.for_each_doc("s", &mut |d| {
        visited.push(int(&d, "_id"));
        Ok(true)
    })
    .unwrap();
    assert_eq!(visited, [2, 4]);
    let mut tagged = Vec::new();
    db.find_tagged("s", cairndb::db::TagMatch::All(&["hot"]), &mut |d| {
        tagged.push(int(&d, "_id"));
        Ok(true)
    })
    .unwrap();
    assert_eq!(tagged, [2, 4]);
    let mut counts = Vec::new();
    db.tag_counts("s", &mut |t, n| {
        counts.push((t.to_string(), n));
        Ok(true)
    })
    .unwrap();
    assert_eq!(counts, [("hot".to_string(), 2)]);
    // Inside a transaction too.
    db.transaction(|t| {
        assert_eq!(t.get("s", 3)?, None);
        assert_eq!(t.count("s")?, 2);
        Ok(())
    })
    .unwrap();

    // Reads committed nothing (the time stayed under its persisted mark).
    assert_eq!(db.stats().store.commits, commits);

    // Writes treat them as absent.
    assert_eq!(db.replace("s", 1, &json("{}")), Err(Error::NotFound));
    assert_eq!(
        db.patch("s", 1, &json(r#"{"$set":{"x":1}}"#)),
        Err(Error::NotFound)
    );
    assert_eq!(db.set_expiry("s", 1, None), Err(Error::NotFound));
    assert_eq!(db.delete("s", 1), Ok(false));
    assert_eq!(
        db.update_many("s", &all, &json(r#"{"$inc":{"n":10}}"#)),
        Ok(2)
    );
    assert_eq!(db.delete_many("s", &json(r#"{"room":"B"}"#)), Ok(1));
    assert_eq!(ids(&mut db, "s", "{}", ""), [2]);

    // Key-value entries.
    assert_eq!(db.kv_get("kv", b"gone").unwrap(), None);
    assert!(!db.kv_exists("kv", b"gone").unwrap());
    assert_eq!(db.kv_get_entry("kv", b"gone").unwrap(), None);
    assert_eq!(db.kv_set_expiry("kv", b"gone", None), Ok(false));
    assert_eq!(db.kv_delete("kv", b"gone"), Ok(false));
    let mut keys = Vec::new();
    db.kv_keys("kv", b"", &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    assert_eq!(keys, [b"plain".to_vec(), b"stays".to_vec()]);
    let e = db.kv_get_entry("kv", b"stays").unwrap().unwrap();
    assert_eq!((e.value, e.expires), (b"2".to_vec(), Some(2_000)));
    assert_eq!(db.namespaces().unwrap(), ["kv"]);

    // All of it physically still there until a sweep; count stays right after it.
    assert_eq!(db.expired_removed().unwrap(), 0);
    let r = db.sweep(100).unwrap();
    assert_eq!(
        r,
        SweepReport {
            removed: 3,
            more: false
        }
    );
    assert_eq!(db.expired_removed().unwrap(), 3);
    assert_eq!(db.count("s").unwrap(), 1);
    assert_eq!(ids(&mut db, "s", r#"{"room":"A"}"#, ""), [2]);
    // Overwriting an expired KV entry is a fresh put.
    db.kv_put_with("kv", b"stays", b"x", &ttl(5)).unwrap();
    clock.set(1_200);
    db.kv_put("kv", b"stays", b"y").unwrap();
    assert_eq!(db.kv_get("kv", b"stays").unwrap(), Some(b"y".to_vec()));
    assert_eq!(db.sweep(10).unwrap().removed, 0);
}

#[test]
fn set_expiry_and_kv_set_expiry_move_and_clear_deadlines() {
    let mut db = fresh();
    let clock = manual_clock(&mut db, 0);
    let id = db.insert("c", &json(r#"{"a":1}"#)).unwrap();
    db.set_expiry("c", id, Some(50)).unwrap();
    let d = db.get("c", id).unwrap().unwrap();
    assert_eq!((int(&d, "_exp"), int(&d, "_ver")), (50, 1));
    db.set_expiry("c", id, Some(500)).unwrap();
    clock.set(100);
    assert!(db.get("c", id).unwrap().is_some());
    // A replace and a patch keep the expiry.
    db.replace("c", id, &json(r#"{"a":2,"_exp":7}"#)).unwrap();
    db.patch("c", id, &json(r#"{"$inc":{"a":1}}"#)).unwrap();
    let d = db.get("c", id).unwrap().unwrap();
    assert_eq!((int(&d, "_exp"), int(&d, "a")), (500, 3));
    assert_eq!(
        db.patch("c", id, &json(r#"{"$set":{"_exp":1}}"#)),
        Err(Error::InvalidPatch)
    );
    db.set_expiry("c", id, None).unwrap();
    clock.set(10_000);
    assert!(db.get("c", id).unwrap().is_some());
    assert_eq!(db.sweep(10).unwrap().removed, 0);

    db.kv_put_with("n", b"k", b"v", &ttl(10)).unwrap();
    assert_eq!(db.kv_set_expiry("n", b"k", None), Ok(true));
    clock.set(20_000);
    assert_eq!(db.kv_get("n", b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.kv_set_expiry("n", b"k", Some(1)), Ok(true));
    assert_eq!(db.kv_set_expiry("n", b"none", Some(1)), Ok(false));
    clock.set(20_001);
    assert_eq!(db.kv_get("n", b"k").unwrap(), None);
    assert_eq!(db.sweep(10).unwrap().removed, 1);
    // An overflowing deadline is refused.
    assert_eq!(
        db.kv_put_with("n", b"k", b"v", &ttl(u64::MAX)),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn a_unique_index_is_not_blocked_by_an_expired_holder() {
    let mut db = fresh();
    let clock = manual_clock(&mut db, 0);
    db.create_index(
        "u",
        "by_sn",
        &IndexSpec {
            fields: &["sn"],
            unique: true,
            partial: None,
        },
    )
    .unwrap();
    db.create_index(
        "u",
        "by_x",
        &IndexSpec {
            fields: &["x"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    let old = db
        .insert_with("u", &json(r#"{"sn":"A1","x":1}"#), &ttl(10))
        .unwrap();
    assert_eq!(
        db.insert("u", &json(r#"{"sn":"A1","x":2}"#)),
        Err(Error::Unique)
    );
    clock.set(10);
    // The expired holder is removed in the same commit as the new document.
    let new = db.insert("u", &json(r#"{"sn":"A1","x":1}"#)).unwrap();
    assert_ne!(old, new);
    assert_eq!(db.expired_removed().unwrap(), 1);
    assert_eq!(db.count("u").unwrap(), 1);
    assert_eq!(ids(&mut db, "u", r#"{"x":1}"#, ""), [new as i64]);
    assert_eq!(db.sweep(10).unwrap().removed, 0);
    // A live holder still blocks.
    assert_eq!(db.insert("u", &json(r#"{"sn":"A1"}"#)), Err(Error::Unique));
    // An index built later skips expired documents, so they cannot block it either.
    db.insert_with("u", &json(r#"{"sn":"B","y":5}"#), &ttl(1))
        .unwrap();
    db.insert("u", &json(r#"{"sn":"C","y":5}"#)).unwrap();
    clock.set(11);
    db.create_index(
        "u",
        "by_y",
        &IndexSpec {
            fields: &["y"],
            unique: true,
            partial: None,
        },
    )
    .unwrap();
    assert_eq!(db.sweep(10).unwrap().removed, 1);
    assert_eq!(db.count_where("u", &json(r#"{"y":5}"#)).unwrap(), 1);
}

#[test]
fn sweep_budgets_report_more_and_keep_indexes_and_counts_exact() {
    let mut db = fresh();
    let clock = manual_clock(&mut db, 0);
    db.create_index(
        "c",
        "by_n",
        &IndexSpec {
            fields: &["n"],
            unique: false,
            partial: None,
        },
    )
    .unwrap();
    // 10 documents and 5 entries expire at 100..=114, 5 documents never.
    for i in 0..15u64 {
        clock.set(i);
        let doc = json(&format!(r#"{{"n":{i}}}"#));
        if i < 10 {
            db.insert_with(
                "c",
                &doc,
                &WriteOptions {
                    ttl: Some(100),
                    tags: &["t"],
                },
            )
            .unwrap();
        } else {
            db.kv_put_with("k", format!("k{i}").as_bytes(), b"v", &ttl(100))
                .unwrap();
            db.insert("c", &doc).unwrap();
        }
    }
    assert_eq!(db.sweep(5).unwrap(), SweepReport::default());
    clock.set(104);
    // Five documents (expiries 100..=104) have expired.
    assert_eq!(db.count("c").unwrap(), 10);
    assert_eq!(
        db.sweep(3).unwrap(),
        SweepReport {
            removed: 3,
            more: true
        }
    );
    assert_eq!(db.count("c").unwrap(), 10);
    assert_eq!(
        db.sweep(2).unwrap(),
        SweepReport {
            removed: 2,
            more: false
        }
    );
    assert_eq!(db.sweep(0).unwrap(), SweepReport::default());
    clock.set(1_000);
    assert_eq!(db.count("c").unwrap(), 5);
    assert_eq!(
        db.sweep(0).unwrap(),
        SweepReport {
            removed: 0,
            more: true
        }
    );
    let mut total = 0;
    loop {
        let r = db.sweep(4).unwrap();
        assert!(r.removed <= 4);
        total += r.removed;
        if !r.more {
            break;
        }
    }
    assert_eq!(total, 10);
    assert_eq!(db.expired_removed().unwrap(), 15);
    assert_eq!(db.count("c").unwrap(), 5);
    // The index holds only live documents: an index scan over all of them reads no entry
    // whose document is gone (that would be Corrupt).
    assert_eq!(
        ids(&mut db, "c", r#"{"n":{"$gte":0}}"#, ""),
        [11, 12, 13, 14, 15]
    );
    let mut tags = 0;
    db.tag_counts("c", &mut |_, _| {
        tags += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(tags, 0);
    // Swept items stay gone across a reopen; the counter is persisted.
    let mut db = clean(db, &Config::default());
    assert_eq!(db.expired_removed().unwrap(), 15);
    assert_eq!(db.count("c").unwrap(), 5);
    assert_eq!(db.sweep(100).unwrap(), SweepReport::default());
}

#[test]
fn a_sweep_larger_than_a_transaction_removes_what_fits() {
    let cfg = small_config();
    let mut db = fresh_with(&cfg);
    let clock = manual_clock(&mut db, 0);
    for i in 0..40 {
        let doc = json(&format!(r#"{{"n":{i},"pad":"{}"}}"#, "p".repeat(20)));
        db.insert_with("c", &doc, &ttl(10)).unwrap();
    }
    clock.set(10);
    let first = db.sweep(usize::MAX).unwrap();
    assert!(first.removed > 0 && first.removed < 40, "{first:?}");
    assert!(first.more);
    let mut total = first.removed;
    loop {
        let r = db.sweep(usize::MAX).unwrap();
        assert!(r.removed > 0);
        total += r.removed;
        if !r.more {
            break;
        }
    }
    assert_eq!(total, 40);
    assert_eq!(db.count("c").unwrap(), 0);
    assert_eq!(db.expired_removed().unwrap(), 40);
}

#[test]
fn a_sweep_redoes_with_fewer_items_when_an_item_overflows_the_commit() {
    let cfg = small_config();
    let mut db = fresh_with(&cfg);
    let clock = manual_clock(&mut db, 0);
    // A small item first (about 170 bytes to remove), then one whose removal alone fills most
    // of a 700-byte commit (eight indexes over one long field, about 590 bytes): the headroom
    // judged by the first does not stop the sweep, the second overflows, and the sweep is
    // redone with the first only.
    db.insert_with(
        "small",
        &json("{}"),
        &WriteOptions {
            ttl: Some(10),
            tags: &["tag-aaaaaa", "tag-bbbbbb", "tag-cccccc"],
        },
    )
    .unwrap();
    for i in 0..8 {
        db.create_index(
            "big",
            &format!("i{i}"),
            &IndexSpec {
                fields: &["s"],
                unique: false,
                partial: None,
            },
        )
        .unwrap();
    }
    let long = "s".repeat(40);
    db.insert_with("big", &json(&format!(r#"{{"s":"{long}"}}"#)), &ttl(11))
        .unwrap();
    clock.set(20);
    let r = db.sweep(10).unwrap();
    assert_eq!(
        r,
        SweepReport {
            removed: 1,
            more: true
        }
    );
    assert_eq!(db.count("small").unwrap(), 0);
    assert_eq!(
        db.sweep(10).unwrap(),
        SweepReport {
            removed: 1,
            more: false
        }
    );
    assert_eq!(db.expired_removed().unwrap(), 2);
    assert_eq!(
        db.count_where("big", &json(&format!(r#"{{"s":"{long}"}}"#)))
            .unwrap(),
        0
    );
}

#[test]
fn a_dropped_collections_expiry_entries_are_cleared_without_counting() {
    let mut db = fresh();
    let clock = manual_clock(&mut db, 0);
    db.insert_with("gone", &json("{}"), &ttl(5)).unwrap();
    db.insert_with("kept", &json("{}"), &ttl(5)).unwrap();
    db.drop_collection("gone").unwrap();
    db.insert_with("gone", &json("{}"), &ttl(50)).unwrap();
    clock.set(5);
    assert_eq!(db.count("gone").unwrap(), 1);
    assert_eq!(
        db.sweep(10).unwrap(),
        SweepReport {
            removed: 1,
            more: false
        }
    );
    assert_eq!(db.count("gone").unwrap(), 1);
    assert_eq!(db.count("kept").unwrap(), 0);
    db.compact().unwrap();
    assert_eq!(db.sweep(10).unwrap(), SweepReport::default());
}

#[test]
fn time_without_a_clock_moves_one_step_per_reboot_and_expires_across_it() {
    let cfg = Config::default();
    let step = cfg.time_step;
    let mut db = fresh();
    assert_eq!(db.now().unwrap(), 0);
    let a = db.insert_with("c", &json("{}"), &ttl(step / 2)).unwrap();
    let b = db.insert_with("c", &json("{}"), &ttl(step * 3)).unwrap();
    assert_eq!(int(&db.get("c", a).unwrap().unwrap(), "_ts"), 0);
    // A power cut: the time restarts past everything issued.
    let mut db = cut(db, &cfg);
    assert_eq!(db.now().unwrap(), step);
    assert_eq!(db.get("c", a).unwrap(), None);
    assert!(db.get("c", b).unwrap().is_some());
    let c = db.insert("c", &json("{}")).unwrap();
    assert_eq!(int(&db.get("c", c).unwrap().unwrap(), "_ts"), step as i64);
    let mut db = clean(db, &cfg);
    assert_eq!(db.now().unwrap(), 2 * step);
    // A reboot with no time issued leaves the time where it was.
    let mut db = cut(db, &cfg);
    let t = db.now().unwrap();
    assert_eq!(t, 3 * step);
    let mut db = cut(db, &cfg);
    assert_eq!(db.now().unwrap(), 4 * step);
    assert_eq!(db.get("c", b).unwrap(), None);
    assert_eq!(db.count("c").unwrap(), 1);
}

#[test]
fn an_uptime_clock_that_restarts_at_zero_never_takes_time_backwards() {
    let cfg = Config::default();
    let step = cfg.time_step;
    let mut db = fresh();
    let up = manual_clock(&mut db, 0);
    let mut issued: Vec<u64> = Vec::new();
    let mut ttl_ids = Vec::new();
    for boot in 0..4u64 {
        for i in 0..20u64 {
            up.set(i * 10_000);
            let id = db.insert_with("c", &json("{}"), &ttl(25_000)).unwrap();
            let ts = int(&db.get("c", id).unwrap().unwrap(), "_ts") as u64;
            assert!(issued.last().is_none_or(|&l| ts > l), "boot {boot}: {ts}");
            issued.push(ts);
            ttl_ids.push((id, ts + 25_000));
        }
        // Expiry follows database time, not the uptime.
        let now = db.now().unwrap();
        for (id, exp) in &ttl_ids {
            assert_eq!(db.get("c", *id).unwrap().is_some(), *exp > now);
        }
        db = if boot % 2 == 0 {
            cut(db, &cfg)
        } else {
            clean(db, &cfg)
        };
        // The counter restarts at 0 with the device.
        up.set(0);
        let u = up.clone();
        db.set_clock(Box::new(move || u.get()));
        let last = *issued.last().unwrap();
        let t = db.now().unwrap();
        assert!(t > last, "time went back: {t} <= {last}");
        assert!(t <= last + step, "jumped too far: {t}");
    }
}

#[test]
fn the_mark_rides_in_write_commits_and_bounds_the_jump_at_reopen() {
    let cfg = Config::default();
    let step = cfg.time_step;
    let mut db = fresh();
    let up = manual_clock(&mut db, 1_000);
    db.insert("c", &json("{}")).unwrap();
    let before = db.stats().store.commits;
    // Writes over less than a step: one commit each, no extra ones for the mark.
    for i in 1..=50u64 {
        up.set(1_000 + i * 1_000);
        db.insert("c", &json("{}")).unwrap();
    }
    assert_eq!(db.stats().store.commits - before, 50);
    // The mark is still the first time (1_000): the next boot starts at 1_000 + step.
    let mut db = cut(db, &cfg);
    assert_eq!(db.now().unwrap(), 1_000 + step);
    // Past a step, the mark moves with a write's commit.
    let u = up.clone();
    db.set_clock(Box::new(move || u.get()));
    up.set(0);
    db.insert("c", &json("{}")).unwrap();
    up.set(step + 5);
    let before = db.stats().store.commits;
    db.insert("c", &json("{}")).unwrap();
    assert_eq!(db.stats().store.commits - before, 1);
    let mut db = cut(db, &cfg);
    assert_eq!(db.now().unwrap(), 1_000 + 2 * step + 5 + step);
}

#[test]
fn reads_that_pass_the_mark_persist_it_even_when_their_transaction_fails() {
    let cfg = Config::default();
    let step = cfg.time_step;
    let mut db = fresh();
    let up = manual_clock(&mut db, 0);
    db.insert("c", &json("{}")).unwrap();
    up.set(3 * step);
    let seen = db.transaction(|t| t.now()).unwrap();
    assert_eq!(seen, 3 * step);
    up.set(5 * step);
    let r: Result<(), Error> = db.transaction(|t| {
        t.now()?;
        Err(Error::InvalidArgument)
    });
    assert_eq!(r, Err(Error::InvalidArgument));
    let mut db = cut(db, &cfg);
    assert_eq!(db.now().unwrap(), 6 * step);
}

#[test]
fn set_time_moves_time_forward_only() {
    let cfg = Config::default();
    let mut db = fresh();
    let up = manual_clock(&mut db, 10);
    let wall = 1_700_000_000_000u64;
    assert_eq!(db.now().unwrap(), 10);
    let early = db.insert_with("c", &json("{}"), &ttl(1_000)).unwrap();
    db.set_time(wall);
    assert_eq!(db.now().unwrap(), wall);
    // Learned wall time expires what was due before it.
    assert_eq!(db.get("c", early).unwrap(), None);
    up.set(110);
    assert_eq!(db.now().unwrap(), wall + 100);
    db.set_time(wall - 5_000);
    assert_eq!(db.now().unwrap(), wall + 100);
    let id = db.insert("c", &json("{}")).unwrap();
    assert_eq!(
        int(&db.get("c", id).unwrap().unwrap(), "_ts"),
        (wall + 100) as i64
    );
    let mut db = cut(db, &cfg);
    assert!(db.now().unwrap() > wall + 100);
    // Without a clock, set_time alone drives the time.
    db.set_time(wall + 10 * cfg.time_step);
    assert_eq!(db.now().unwrap(), wall + 10 * cfg.time_step);
}
