//! Segment page compression (feature `compress`) through the database: a sensor workload read
//! back after a reopen and a full merge, under both envelopes. It prints the figures quoted in
//! docs/DESIGN.md ("Page compression"); run it with and without the feature to compare:
//! `cargo test -p cairndb [--features compress] --test compress -- --nocapture`.

mod common;
use cairndb::db::{Config, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::value::{self, Value};
use common::*;

const DOCS: u64 = 2_000;

/// A JSON document as a sensor node logs it: a few fixed names, slowly moving readings.
fn sensor_doc(rng: &mut Rng, i: u64) -> String {
    format!(
        r#"{{"sensor":"env-{:02}","site":"greenhouse-{}","ts":{},"temperature":{:.2},"humidity":{:.1},"battery":{:.2},"status":"{}"}}"#,
        i % 16,
        1 + i % 3,
        1_700_000_000 + 60 * i,
        18.0 + rng.below(800) as f64 / 100.0,
        40.0 + rng.below(300) as f64 / 10.0,
        3.3 + rng.below(90) as f64 / 100.0,
        if rng.below(50) == 0 {
            "low-battery"
        } else {
            "ok"
        },
    )
}

struct Figures {
    body_bytes: u64,
    inserted_programmed: u64,
    inserted_erases: u64,
    flushed_segment_bytes: u64,
    compacted_segment_bytes: u64,
    segments: usize,
}

/// Insert the workload one document per call, flush, reopen, merge everything, check every
/// document, and return what it cost.
fn run(key: &Key<'_>, page_size: usize) -> Figures {
    let mut cfg = Config::default();
    cfg.store.page_size = page_size;
    let mut db = Database::format(new_sim(256), &cfg, key)
        .map_err(|e| e.0)
        .expect("format");
    db.device_mut().reset_stats();
    let mut rng = Rng(42);
    let mut docs = Vec::new();
    let mut body_bytes = 0u64;
    for i in 0..DOCS {
        let text = sensor_doc(&mut rng, i);
        let v = value::from_json(text.as_bytes(), 16).expect("json");
        let mut enc = Vec::new();
        value::encode(&v, &mut enc).expect("encode");
        body_bytes += enc.len() as u64;
        assert_eq!(db.insert_json("env", &text).expect("insert"), i + 1);
        docs.push(v);
    }
    db.flush().expect("flush");
    let flash = db.device().stats();
    let flushed = db.stats().segment_bytes;

    let (r, dev) = db.close();
    r.expect("close");
    let mut db = Database::open(dev, &cfg, key)
        .map_err(|e| e.0)
        .expect("reopen");
    db.compact().expect("compact");
    let stats = db.stats();
    for (i, want) in docs.iter().enumerate() {
        let got = db.get("env", i as u64 + 1).expect("get").expect("present");
        let got = got.as_map().expect("map");
        for (k, v) in want.as_map().expect("map").iter() {
            assert_eq!(got.get(k), Some(v), "doc {} field {k}", i + 1);
        }
    }
    assert_eq!(db.count("env").expect("count"), DOCS);
    let found = db
        .find_json("env", r#"{"status":"low-battery"}"#, "{}")
        .expect("find");
    let want = docs
        .iter()
        .filter(|d| d.as_map().unwrap().get("status") == Some(&Value::Str("low-battery".into())))
        .count();
    assert!(want > 0);
    assert_eq!(found.len(), want);
    Figures {
        body_bytes,
        inserted_programmed: flash.bytes_programmed,
        inserted_erases: flash.erases,
        flushed_segment_bytes: flushed,
        compacted_segment_bytes: stats.segment_bytes,
        segments: stats.segments,
    }
}

fn report(name: &str, page_size: usize, f: &Figures) {
    println!(
        "compress={} {name} page_size={page_size}: {DOCS} docs, {} B of encoded bodies; \
         inserting + flush: {} B programmed, {} erases; segments {} B after flush, {} B in {} \
         segment(s) after compact",
        cfg!(feature = "compress"),
        f.body_bytes,
        f.inserted_programmed,
        f.inserted_erases,
        f.flushed_segment_bytes,
        f.compacted_segment_bytes,
        f.segments,
    );
}

#[test]
fn sensor_workload_round_trips_with_its_figures() {
    assert_eq!(Config::default().store.page_size, 512);
    for (name, key) in [("plain", Key::None), ("encrypted", Key::Raw(&KEY_A))] {
        let f = run(&key, 512);
        report(name, 512, &f);
        // Keys, sequence numbers, versions, timestamps, page headers, index pages and the
        // envelopes come on top of the bodies: only compression brings the segments below them.
        if cfg!(feature = "compress") {
            assert!(
                f.compacted_segment_bytes < f.body_bytes,
                "{name}: {} B of segments for {} B of bodies",
                f.compacted_segment_bytes,
                f.body_bytes
            );
        } else {
            assert!(f.compacted_segment_bytes > f.body_bytes, "{name}");
        }
    }
}

/// The same workload at other page sizes (larger pages give LZ4 more to match against).
#[test]
fn other_page_sizes_round_trip() {
    for page_size in [256, 1024, 2048] {
        let f = run(&Key::None, page_size);
        report("plain", page_size, &f);
        assert_eq!(f.segments, 1);
    }
}

/// A database reopened under the other envelope is refused as before: compression sits inside
/// the envelope and changes nothing about keys.
#[test]
fn compressed_pages_keep_the_key_checks() {
    let cfg = Config::default();
    let mut db = Database::format(new_sim(64), &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("format");
    let mut rng = Rng(7);
    for i in 0..200 {
        db.insert_json("env", &sensor_doc(&mut rng, i))
            .expect("insert");
    }
    db.flush().expect("flush");
    let (r, dev) = db.close();
    r.expect("close");
    let dev: SimFlash = match Database::open(dev, &cfg, &Key::Raw(&KEY_B)) {
        Err((e, dev)) => {
            assert_eq!(e, cairndb::Error::WrongKey);
            dev
        }
        Ok(_) => panic!("opened under the wrong key"),
    };
    let mut db = Database::open(dev, &cfg, &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .expect("open");
    assert_eq!(db.count("env").expect("count"), 200);
    let doc = db.get("env", 200).expect("get").expect("present");
    assert!(doc.as_map().unwrap().get("temperature").is_some());
}
