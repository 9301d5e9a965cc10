//! The public API end to end on the strict simulated flash: CRUD, key-value, collections,
//! reopen, limits and bad input, keys, tampering.

mod common;
use cairndb::db::{Config, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::value::{Map, Value};
use cairndb::Error;
use common::*;

fn fresh(key: &Key<'_>) -> Database<SimFlash> {
    Database::format(new_sim(128), &Config::default(), key)
        .map_err(|e| e.0)
        .expect("format")
}

fn reopen(db: Database<SimFlash>, key: &Key<'_>) -> Database<SimFlash> {
    let (r, dev) = db.close();
    r.expect("close");
    Database::open(dev, &Config::default(), key)
        .map_err(|e| e.0)
        .expect("open")
}

#[test]
fn documents_crud_and_metadata() {
    let mut db = fresh(&Key::Raw(&KEY_A));
    let mut t = 100;
    db.set_clock(Box::new(move || {
        t += 5;
        t
    }));
    let a = db
        .insert_json("sensors", r#"{"room":"R101","temp":21.5,"ok":true}"#)
        .unwrap();
    let b = db
        .insert_json("sensors", r#"{"room":"R102","temp":19}"#)
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let doc = db.get("sensors", a).unwrap().unwrap();
    let m = doc.as_map().unwrap();
    assert_eq!(m.get("_id"), Some(&Value::Int(1)));
    assert_eq!(m.get("_ver"), Some(&Value::Int(1)));
    assert_eq!(m.get("_ts"), Some(&Value::Int(105)));
    assert_eq!(m.get("room"), Some(&Value::Str("R101".into())));
    db.patch(
        "sensors",
        a,
        &json(r#"{"$set":{"room":"R103","loc.floor":2},"$inc":{"temp":1},"$unset":{"ok":1}}"#),
    )
    .unwrap();
    let m = db.get("sensors", a).unwrap().unwrap();
    let m = m.as_map().unwrap();
    assert_eq!(m.get("_ver"), Some(&Value::Int(2)));
    assert_eq!(m.get("temp"), Some(&Value::Float(22.5)));
    assert_eq!(m.get("ok"), None);
    assert_eq!(
        m.get("loc")
            .and_then(|l| l.as_map())
            .and_then(|l| l.get("floor")),
        Some(&Value::Int(2))
    );
    db.replace("sensors", b, &json(r#"{"room":"R9","_id":77}"#))
        .unwrap();
    let m = db.get("sensors", b).unwrap().unwrap();
    assert_eq!(
        m.as_map().unwrap().get("_id"),
        Some(&Value::Int(2)),
        "_id cannot be replaced"
    );
    assert_eq!(db.replace("sensors", 99, &json("{}")), Err(Error::NotFound));
    assert_eq!(
        db.patch("sensors", 99, &json(r#"{"$set":{"a":1}}"#)),
        Err(Error::NotFound)
    );
    assert_eq!(
        db.patch("sensors", a, &json(r#"{"$bogus":{"a":1}}"#)),
        Err(Error::InvalidPatch)
    );
    assert_eq!(db.count("sensors").unwrap(), 2);
    assert!(db.delete("sensors", a).unwrap());
    assert!(!db.delete("sensors", a).unwrap());
    assert_eq!(db.get("sensors", a).unwrap(), None);
    assert_eq!(db.count("sensors").unwrap(), 1);
    // Ids are never reused, across a reopen too.
    let mut db = reopen(db, &Key::Raw(&KEY_A));
    assert_eq!(db.insert_json("sensors", r#"{"x":1}"#).unwrap(), 3);
    assert_eq!(db.count("sensors").unwrap(), 2);
    assert_eq!(db.get("missing", 1).unwrap(), None);
    assert_eq!(db.count("missing").unwrap(), 0);
}

#[test]
fn iteration_in_id_order_across_segments_and_memtable() {
    let mut db = fresh(&Key::None);
    for i in 0..300 {
        db.insert(
            "log",
            &json(&format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(40))),
        )
        .unwrap();
        if i % 7 == 0 {
            db.delete("log", i / 2 + 1).unwrap();
        }
    }
    assert!(
        db.stats().segments >= 2,
        "the test should span several segments"
    );
    let mut last = 0;
    let mut n = 0;
    for d in db.docs("log").unwrap() {
        let id = d
            .unwrap()
            .as_map()
            .unwrap()
            .get("_id")
            .unwrap()
            .as_i64()
            .unwrap();
        assert!(id > last);
        last = id;
        n += 1;
    }
    assert_eq!(n, db.count("log").unwrap());
}

#[test]
fn collections_list_create_drop() {
    let mut db = fresh(&Key::None);
    db.create_collection("b").unwrap();
    assert_eq!(db.create_collection("b"), Err(Error::Exists));
    db.insert("a", &json(r#"{"v":1}"#)).unwrap();
    assert_eq!(
        db.collections().unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    db.drop_collection("a").unwrap();
    assert_eq!(db.drop_collection("a"), Err(Error::NotFound));
    assert_eq!(db.collections().unwrap(), vec!["b".to_string()]);
    assert_eq!(db.get("a", 1).unwrap(), None);
    // A new collection of the same name starts empty.
    db.insert("a", &json(r#"{"v":2}"#)).unwrap();
    assert_eq!(db.count("a").unwrap(), 1);
    db.compact().unwrap();
    assert_eq!(db.docs("a").unwrap().count(), 1);
}

#[test]
fn key_value_namespaces() {
    let mut db = fresh(&Key::Raw(&KEY_A));
    db.kv_put("cfg", b"wifi/ssid", b"home").unwrap();
    db.kv_put("cfg", b"wifi/pass", b"secret").unwrap();
    db.kv_put("cfg", b"mqtt/host", b"broker").unwrap();
    db.kv_put("other", b"wifi/ssid", b"x").unwrap();
    assert_eq!(
        db.kv_get("cfg", b"wifi/ssid").unwrap().as_deref(),
        Some(&b"home"[..])
    );
    assert!(db.kv_exists("cfg", b"mqtt/host").unwrap());
    let mut keys = Vec::new();
    db.kv_keys("cfg", b"wifi/", &mut |k| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    assert_eq!(keys, vec![b"wifi/pass".to_vec(), b"wifi/ssid".to_vec()]);
    assert!(db.kv_delete("cfg", b"wifi/pass").unwrap());
    assert!(!db.kv_delete("cfg", b"wifi/pass").unwrap());
    let mut db = reopen(db, &Key::Raw(&KEY_A));
    assert_eq!(db.kv_get("cfg", b"wifi/pass").unwrap(), None);
    assert_eq!(
        db.kv_get("other", b"wifi/ssid").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        db.namespaces().unwrap(),
        vec!["cfg".to_string(), "other".to_string()]
    );
}

#[test]
fn transactions_are_atomic_and_read_their_writes() {
    let mut db = fresh(&Key::None);
    db.transaction(|t| {
        let id = t.insert("a", &json(r#"{"n":1}"#))?;
        assert!(
            t.get("a", id)?.is_some(),
            "a transaction sees its own insert"
        );
        t.kv_put("cfg", b"k", b"v")?;
        assert_eq!(t.kv_get("cfg", b"k")?.as_deref(), Some(&b"v"[..]));
        Ok(())
    })
    .unwrap();
    let r: Result<(), Error> = db.transaction(|t| {
        t.insert("a", &json(r#"{"n":2}"#))?;
        t.kv_put("cfg", b"k2", b"v")?;
        Err(Error::InvalidArgument)
    });
    assert_eq!(r, Err(Error::InvalidArgument));
    assert_eq!(db.count("a").unwrap(), 1);
    assert_eq!(db.kv_get("cfg", b"k2").unwrap(), None);
    let mut t = db.begin();
    t.insert("a", &json(r#"{"n":3}"#)).unwrap();
    drop(t);
    assert_eq!(db.count("a").unwrap(), 1);
    // A transaction larger than the WAL is refused whole.
    let big = json(&format!(r#"{{"p":"{}"}}"#, "y".repeat(900)));
    let r = db.transaction(|t| {
        for _ in 0..10 {
            t.insert("a", &big)?;
        }
        Ok(())
    });
    assert_eq!(r, Err(Error::TxnTooLarge));
    assert_eq!(db.count("a").unwrap(), 1);
}

#[test]
fn limits_and_bad_input() {
    let mut db = fresh(&Key::None);
    let huge = json(&format!(r#"{{"p":"{}"}}"#, "z".repeat(2000)));
    assert_eq!(db.insert("a", &huge), Err(Error::TooLarge));
    let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    assert!(matches!(db.insert_json("a", &deep), Err(Error::TooDeep)));
    assert_eq!(db.insert_json("a", "{not json"), Err(Error::Json));
    assert_eq!(db.insert("a", &Value::Int(3)), Err(Error::InvalidArgument));
    for bad in ["", "has space", "slash/no", &"n".repeat(40), "é"] {
        assert_eq!(
            db.insert(bad, &json("{}")),
            Err(Error::InvalidName),
            "{bad:?}"
        );
        assert_eq!(db.kv_put(bad, b"k", b"v"), Err(Error::InvalidName));
    }
    assert_eq!(db.kv_put("ns", b"", b"v"), Err(Error::InvalidName));
    assert_eq!(db.kv_put("ns", &[1; 200], b"v"), Err(Error::InvalidName));
    assert_eq!(db.kv_put("ns", b"k", &[1; 5000]), Err(Error::TooLarge));
    assert_eq!(db.count("a").unwrap(), 0);
}

#[test]
fn full_flash_then_delete_then_insert_again() {
    let mut db = Database::format(new_sim(40), &Config::default(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .unwrap();
    let doc = json(&format!(r#"{{"p":"{}"}}"#, "f".repeat(200)));
    let mut ids = Vec::new();
    let err = loop {
        match db.insert("a", &doc) {
            Ok(id) => ids.push(id),
            Err(e) => break e,
        }
        assert!(ids.len() < 100_000);
    };
    assert_eq!(err, Error::NoSpace);
    let stored = ids.len();
    assert!(stored > 100, "only {stored} documents fit");
    // Everything written before the error is still there, and deletes still work.
    assert_eq!(db.count("a").unwrap(), stored as u64);
    for id in &ids[..stored / 2] {
        assert!(db.delete("a", *id).unwrap());
    }
    let mut again = 0;
    while again < stored / 4 {
        db.insert("a", &doc).expect("insert after deletes");
        again += 1;
    }
    let db = reopen(db, &Key::Raw(&KEY_A));
    let mut db = db;
    assert_eq!(db.count("a").unwrap(), (stored - stored / 2 + again) as u64);
    assert_eq!(db.device().violations(), 0);
}

#[test]
fn wrong_key_and_mismatched_encryption_are_refused_without_changes() {
    let mut db = fresh(&Key::Raw(&KEY_A));
    db.insert("a", &json(r#"{"v":1}"#)).unwrap();
    let (r, dev) = db.close();
    r.unwrap();
    let image = dev.image().to_vec();
    let (e, dev) = Database::open(dev, &Config::default(), &Key::Raw(&KEY_B))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e, Error::WrongKey);
    let (e, dev) = Database::open(dev, &Config::default(), &Key::None)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e, Error::KeyMismatch);
    assert_eq!(dev.image(), &image[..], "a refused open changed the flash");
    let mut db = Database::open(dev, &Config::default(), &Key::Raw(&KEY_A))
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(db.count("a").unwrap(), 1);
    // A plain database refuses a key.
    let plain = fresh(&Key::None);
    let (_, dev) = plain.close();
    assert_eq!(
        Database::open(dev, &Config::default(), &Key::Raw(&KEY_A))
            .map(|_| ())
            .unwrap_err()
            .0,
        Error::KeyMismatch
    );
    // Blank flash is not a database.
    assert_eq!(
        Database::open(new_sim(16), &Config::default(), &Key::None)
            .map(|_| ())
            .unwrap_err()
            .0,
        Error::NotFormatted
    );
}

#[test]
fn passphrase_and_rekey() {
    let pass = Key::Passphrase {
        pass: b"correct horse",
        salt: [3; 16],
        iterations: 100,
    };
    let mut db = fresh(&pass);
    db.insert("a", &json(r#"{"v":1}"#)).unwrap();
    db.kv_put("n", b"k", b"v").unwrap();
    let db = reopen(
        db,
        &Key::Passphrase {
            pass: b"correct horse",
            salt: [0; 16],
            iterations: 1,
        },
    );
    let wrong = Key::Passphrase {
        pass: b"wrong",
        salt: [0; 16],
        iterations: 1,
    };
    let (_, dev) = db.close();
    assert_eq!(
        Database::open(dev, &Config::default(), &wrong)
            .map(|_| ())
            .unwrap_err()
            .0,
        Error::WrongKey
    );
    let mut db = fresh(&Key::Raw(&KEY_A));
    for i in 0..50 {
        db.insert("a", &json(&format!(r#"{{"v":{i}}}"#))).unwrap();
    }
    db.rekey(&Key::Raw(&KEY_B)).unwrap();
    assert_eq!(db.count("a").unwrap(), 50);
    db.insert("a", &json(r#"{"v":"after"}"#)).unwrap();
    let (_, dev) = db.close();
    let (e, dev) = Database::open(dev, &Config::default(), &Key::Raw(&KEY_A))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e, Error::WrongKey);
    let mut db = Database::open(dev, &Config::default(), &Key::Raw(&KEY_B))
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(db.count("a").unwrap(), 51);
    assert_eq!(db.docs("a").unwrap().count(), 51);
}

/// Find `needle` anywhere in the raw image.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encrypted_image_holds_no_plaintext() {
    let mut db = fresh(&Key::Raw(&KEY_A));
    for i in 0..120 {
        db.insert(
            "patients_secret",
            &json(&format!(
                r#"{{"name":"Alice Example {i}","diagnosis":"confidential-text"}}"#
            )),
        )
        .unwrap();
    }
    db.kv_put("wifi_config", b"ssid-of-home", b"hunter2-password")
        .unwrap();
    let mut db = reopen(db, &Key::Raw(&KEY_A));
    db.kv_put("wifi_config", b"ssid-in-wal", b"another-password")
        .unwrap();
    let image = db.into_device().into_image();
    for needle in [
        &b"Alice Example"[..],
        b"confidential",
        b"patients_secret",
        b"wifi_config",
        b"ssid-of-home",
        b"hunter2",
        b"ssid-in-wal",
        b"another-password",
        b"diagnosis",
    ] {
        assert!(
            !contains(&image, needle),
            "plaintext {:?} found on flash",
            String::from_utf8_lossy(needle)
        );
    }
    // The same data unencrypted is visible: the scan itself works.
    let mut plain = fresh(&Key::None);
    plain
        .kv_put("wifi_config", b"ssid-of-home", b"hunter2-password")
        .unwrap();
    let image = plain.into_device().into_image();
    assert!(contains(&image, b"hunter2-password"));
}

#[test]
fn tampered_bytes_are_errors_never_data() {
    // Build an image with data in segments and in the WAL.
    let mut db = fresh(&Key::Raw(&KEY_A));
    for i in 0..80 {
        db.insert("a", &json(&format!(r#"{{"v":{i},"s":"payload-{i}"}}"#)))
            .unwrap();
    }
    db.kv_put("n", b"k", b"v").unwrap();
    let (r, dev) = db.close();
    r.unwrap();
    let image = dev.into_image();
    let expected: Vec<Value> = {
        let mut db = Database::open(
            SimFlash::from_image(geometry(128), image.clone()).unwrap(),
            &Config::default(),
            &Key::Raw(&KEY_A),
        )
        .map_err(|e| e.0)
        .unwrap();
        db.docs("a").unwrap().map(|d| d.unwrap()).collect()
    };
    // Flip one byte at many positions across every used block: each open/read either fails
    // with an error or returns exactly the original data.
    let used: Vec<usize> = (0..image.len())
        .step_by(4096)
        .filter(|b| image[*b..*b + 4096].iter().any(|x| *x != 0xFF))
        .collect();
    let mut flips = 0;
    let mut detected = 0;
    let mut rolled_back = 0;
    for block in used {
        for off in (0..4096).step_by(97) {
            let pos = block + off;
            if image[pos] == 0xFF {
                continue;
            }
            let mut bad = image.clone();
            bad[pos] ^= 0x10;
            flips += 1;
            let outcome = (|| -> Result<Vec<Value>, Error> {
                let mut db = Database::open(
                    SimFlash::from_image(geometry(128), bad).unwrap(),
                    &Config::default(),
                    &Key::Raw(&KEY_A),
                )
                .map_err(|e| e.0)?;
                let docs = db.docs("a")?.collect::<Result<Vec<_>, _>>()?;
                db.kv_get("n", b"k")?;
                Ok(docs)
            })();
            match outcome {
                // littlefs cannot tell a damaged newest metadata commit from one torn by a power
                // cut, and falls back to the commit before it: an older, authentic state. What
                // must never happen is a changed or invented document.
                Ok(docs) => {
                    assert_eq!(
                        docs[..],
                        expected[..docs.len()],
                        "flip at {pos} returned changed data"
                    );
                    if docs.len() < expected.len() {
                        rolled_back += 1;
                    }
                }
                Err(_) => detected += 1,
            }
        }
    }
    println!("tamper scan: {flips} flipped bytes: {detected} reported as errors, {rolled_back} fell back to an older state, the rest read back unchanged");
    assert!(flips > 50 && detected > 0);
}

#[test]
fn plain_database_checksums_records() {
    let mut db = fresh(&Key::None);
    db.kv_put("n", b"key", b"checksummed-value").unwrap();
    // Enough data that the segment is larger than a littlefs inline file and gets its own block.
    for i in 0..60 {
        db.kv_put("n", format!("filler-{i}").as_bytes(), &[i; 24])
            .unwrap();
    }
    db.flush().unwrap();
    let (_, dev) = db.close();
    let image = dev.into_image();
    // Every copy of the value on flash (the segment page, stale WAL commits): a flipped bit is
    // an error or an older state, never a changed value.
    let mut errors = 0;
    let mut copies = 0;
    let mut from = 0;
    while let Some(p) = image[from..]
        .windows(17)
        .position(|w| w == b"checksummed-value")
    {
        let pos = from + p;
        from = pos + 1;
        copies += 1;
        let mut bad = image.clone();
        bad[pos] ^= 1;
        let r = Database::open(
            SimFlash::from_image(geometry(128), bad).unwrap(),
            &Config::default(),
            &Key::None,
        )
        .map_err(|e| e.0)
        .and_then(|mut db| db.kv_get("n", b"key"));
        match r {
            Err(_) => errors += 1,
            Ok(v) => assert!(
                v.is_none() || v.as_deref() == Some(&b"checksummed-value"[..]),
                "changed value returned: {v:?}"
            ),
        }
    }
    assert!(
        copies >= 1 && errors >= 1,
        "{copies} copies, {errors} detected"
    );
}

#[test]
fn nothing_is_lost_on_a_failed_call() {
    let mut db = fresh(&Key::None);
    db.insert("a", &json(r#"{"v":1}"#)).unwrap();
    let mut m = Map::new();
    m.insert("v".into(), Value::Str("x".repeat(3000)));
    assert_eq!(db.replace("a", 1, &Value::Map(m)), Err(Error::TooLarge));
    assert_eq!(
        db.get("a", 1).unwrap().unwrap().as_map().unwrap().get("v"),
        Some(&Value::Int(1))
    );
}

#[test]
fn a_failed_call_inside_a_transaction_leaves_nothing_behind() {
    use cairndb::db::IndexSpec;
    let mut db = fresh(&Key::Raw(&KEY_A));
    let spec = IndexSpec {
        fields: &["code"],
        unique: true,
        partial: None,
    };
    db.create_index("acct", "by_code", &spec).unwrap();
    db.insert("acct", &json(r#"{"code":"A"}"#)).unwrap();
    let big = "x".repeat(600);
    let mut padded = 0u64;
    db.transaction(|t| {
        t.insert("acct", &json(r#"{"code":"B"}"#))?;
        // A unique clash after the index upkeep staged entries: the call fails alone.
        assert_eq!(
            t.insert("acct", &json(r#"{"code":"A"}"#)),
            Err(Error::Unique)
        );
        // Past the commit bound: the call fails alone, the transaction stays usable.
        loop {
            let doc = json(&format!(r#"{{"code":"C{padded}","pad":"{big}"}}"#));
            match t.insert("acct", &doc) {
                Ok(_) => padded += 1,
                Err(Error::TxnTooLarge) => break,
                Err(e) => return Err(e),
            }
        }
        t.insert("acct", &json(r#"{"code":"D"}"#))?;
        Ok(())
    })
    .unwrap();
    assert!(padded < 3);
    assert_eq!(db.count("acct").unwrap(), 3 + padded);
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.index_entries, 3 + padded);
    let refused = format!(r#"{{"code":"C{padded}"}}"#);
    assert_eq!(db.count_where("acct", &json(&refused)).unwrap(), 0);
    assert_eq!(db.count_where("acct", &json(r#"{"code":"D"}"#)).unwrap(), 1);
}
