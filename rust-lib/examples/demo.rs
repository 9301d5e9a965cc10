//! Host demo: a sensor log in an encrypted database stored in an image file. It writes,
//! queries, reopens the image and reads everything back, then shows that a wrong key is
//! refused. Run with `cargo xtask demo`.

use cairndb::db::{Config, Database, Key};
use cairndb::flash::{FileFlash, Geometry};
use cairndb::value::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("cairndb-demo-{}.img", std::process::id()));
    let geometry = Geometry {
        read_size: 16,
        prog_size: 16,
        block_size: 4096,
        block_count: 256,
    };
    let key = [0x42u8; 32];
    let cfg = Config::default();

    println!(
        "cairndb demo: a 1 MiB NOR flash image at {}",
        path.display()
    );
    let dev = FileFlash::create(&path, geometry)?;
    let mut db = Database::format(dev, &cfg, &Key::Raw(&key)).map_err(|e| e.0)?;
    let mut clock = 1_700_000_000_000u64;
    db.set_clock(Box::new(move || {
        clock += 1_000;
        clock
    }));

    for i in 0..200u32 {
        let room = ["R101", "R102", "R103"][(i % 3) as usize];
        let json = format!(
            r#"{{"room":"{room}","temp":{:.1},"seq":{i}}}"#,
            19.0 + f64::from(i % 40) / 10.0
        );
        db.insert_json("readings", &json)?;
    }
    db.kv_put("config", b"wifi/ssid", b"lab-net")?;
    db.kv_put("config", b"sample_period_ms", b"1000")?;
    db.transaction(|t| {
        let id = t.insert(
            "events",
            &cairndb::value::from_json(br#"{"kind":"calibrated","by":"demo"}"#, 8)?,
        )?;
        t.kv_put("config", b"last_event", &id.to_le_bytes())
    })?;
    println!(
        "inserted {} readings, {} event, 3 settings",
        db.count("readings")?,
        db.count("events")?
    );

    let doc = db.get_json("readings", 42)?.unwrap_or_default();
    println!("get readings/42 -> {doc}");
    db.patch(
        "readings",
        42,
        &cairndb::value::from_json(br#"{"$inc":{"temp":0.5},"$set":{"checked":true}}"#, 8)?,
    )?;
    println!(
        "patched  -> {}",
        db.get_json("readings", 42)?.unwrap_or_default()
    );
    db.delete("readings", 41)?;

    // A scan: readings of room R102 above 22 degrees.
    let mut hot = 0;
    db.for_each_doc("readings", &mut |d| {
        let m = d.as_map().ok_or(cairndb::Error::Corrupt)?;
        if m.get("room") == Some(&Value::Str("R102".into()))
            && m.get("temp").and_then(|t| t.as_f64()).unwrap_or(0.0) > 22.0
        {
            hot += 1;
        }
        Ok(true)
    })?;
    println!("scan: {hot} readings from R102 above 22.0");

    let stats = db.stats();
    println!(
        "store: {} segments, {} bytes in segments, {} WAL commits, {} folds, {} merges",
        stats.segments,
        stats.segment_bytes,
        stats.store.commits,
        stats.store.folds,
        stats.store.merges
    );
    let (r, _dev) = db.close();
    r?;

    println!("reopening the image ...");
    let dev = FileFlash::open(&path, geometry)?;
    let mut db = Database::open(dev, &cfg, &Key::Raw(&key)).map_err(|e| e.0)?;
    println!(
        "found {} readings (reading 41 deleted: {}), ssid = {}",
        db.count("readings")?,
        db.get("readings", 41)?.is_none(),
        String::from_utf8_lossy(&db.kv_get("config", b"wifi/ssid")?.unwrap_or_default())
    );
    println!(
        "readings/42 after reopen -> {}",
        db.get_json("readings", 42)?.unwrap_or_default()
    );
    let (r, _dev) = db.close();
    r?;

    let dev = FileFlash::open(&path, geometry)?;
    match Database::open(dev, &cfg, &Key::Raw(&[0x13; 32])) {
        Err((cairndb::Error::WrongKey, _)) => {
            println!("open with a wrong key: refused (WrongKey), as it must be")
        }
        Err((e, _)) => return Err(format!("wrong key gave {e}").into()),
        Ok(_) => return Err("a wrong key opened the database".into()),
    }
    std::fs::remove_file(&path)?;
    println!("demo done");
    Ok(())
}
