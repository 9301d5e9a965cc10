//! A cairndb database on the simulated chip through `cairndb::flash::NorFlashDevice`, with
//! encryption: format, documents and KV entries, close, reopen from the same chip, read back.

mod common;
use cairndb::db::{Config as DbConfig, Database, Key};
use cairndb::flash::{BlockDevice, NorFlashDevice};
use cairndb::value::{from_json, Value};
use cairndb_spi_nor::{opcode, Config};
use common::*;

const KEY: [u8; 32] = [0x3C; 32];

type Dev = NorFlashDevice<Nor>;

fn reopen(dev: Dev, key: &[u8; 32]) -> Result<Database<Dev>, cairndb::Error> {
    Database::open(dev, &DbConfig::default(), &Key::Raw(key)).map_err(|(e, _)| e)
}

#[test]
fn database_survives_close_and_reopen_on_the_chip() {
    let nor = open_chip(
        sim(ID_1M, 1 << 20),
        Config {
            block_erase: true,
            ..checked(1 << 20)
        },
    );
    let dev = NorFlashDevice::new(nor).expect("geometry");
    let g = dev.geometry();
    assert_eq!(
        (g.read_size, g.prog_size, g.block_size, g.block_count),
        (1, 1, 4096, 256)
    );
    let mut db = Database::format(dev, &DbConfig::default(), &Key::Raw(&KEY))
        .map_err(|(e, _)| e)
        .expect("format");
    let mut ids = Vec::new();
    for i in 0..200 {
        let doc = format!(r#"{{"room":"R{}","temp":{}.5,"n":{i}}}"#, i % 7, 18 + i % 9);
        ids.push(db.insert_json("readings", &doc).expect("insert"));
    }
    for i in 0..50u32 {
        db.kv_put("cfg", format!("key{i}").as_bytes(), &[i as u8; 40])
            .expect("kv_put");
    }
    db.patch(
        "readings",
        ids[3],
        &from_json(br#"{"$set":{"room":"lab"}}"#, 8).unwrap(),
    )
    .expect("patch");
    assert!(db.delete("readings", ids[4]).expect("delete"));
    db.transaction(|t| {
        t.insert("events", &from_json(br#"{"kind":"calibrated"}"#, 8)?)?;
        t.kv_put("cfg", b"calibrated", b"yes")
    })
    .expect("transaction");
    let (closed, dev) = db.close();
    closed.expect("close");

    // Same chip, new driver over it: the state lives on the chip only.
    let (chip, _) = dev.into_inner().release();
    let programmed = chip.counters().bytes_programmed;
    assert!(programmed > 0 && chip.counters().sector_erases > 0);
    assert!(chip.violations().is_empty(), "{:?}", chip.violations());
    // Encrypted: no plaintext of the documents on flash.
    assert!(!chip
        .memory()
        .windows(4)
        .any(|w| w == b"R101" || w == b"room"));
    let nor = open_chip(chip, checked(1 << 20));
    let dev = NorFlashDevice::new(nor).expect("geometry");

    // A wrong key is refused, the right one reads everything back.
    let dev = match Database::open(dev, &DbConfig::default(), &Key::Raw(&[0; 32])) {
        Err((cairndb::Error::WrongKey, dev)) => dev,
        Err((e, _)) => panic!("wrong key gave {e:?}"),
        Ok(_) => panic!("wrong key accepted"),
    };
    let mut db = reopen(dev, &KEY).expect("reopen");
    assert_eq!(db.count("readings").unwrap(), 199);
    assert_eq!(db.count("events").unwrap(), 1);
    for (i, id) in ids.iter().enumerate() {
        let doc = db.get("readings", *id).unwrap();
        if i == 4 {
            assert!(doc.is_none());
            continue;
        }
        let doc = doc.expect("document");
        let m = doc.as_map().unwrap();
        assert_eq!(m.get("n"), Some(&Value::Int(i as i64)));
        let room = if i == 3 {
            "lab".to_string()
        } else {
            format!("R{}", i % 7)
        };
        assert_eq!(m.get("room"), Some(&Value::Str(room)));
    }
    for i in 0..50u32 {
        assert_eq!(
            db.kv_get("cfg", format!("key{i}").as_bytes()).unwrap(),
            Some(vec![i as u8; 40])
        );
    }
    assert_eq!(
        db.kv_get("cfg", b"calibrated").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    // Still writable after the reopen, and every command on the bus was well-formed.
    db.kv_put("cfg", b"after", b"reopen").unwrap();
    let chip = db.device().inner().spi();
    assert!(chip.violations().is_empty(), "{:?}", chip.violations());
    assert!(chip.command_count(opcode::PAGE_PROGRAM) > 0);
    let (closed, _) = db.close();
    closed.unwrap();
}

#[test]
fn database_in_a_range_leaves_the_rest_of_the_chip_alone() {
    let mut chip = sim(ID_1M, 1 << 20);
    // Firmware image in the first 256 KiB.
    let image: Vec<u8> = (0..256u32 << 10).map(|i| (i % 253) as u8).collect();
    chip.memory_mut()[..image.len()].copy_from_slice(&image);
    let nor = open_chip(chip, Config::default());
    let dev = NorFlashDevice::with_range(nor, 64, 192).expect("range");
    let mut db = Database::format(dev, &DbConfig::default(), &Key::Raw(&KEY))
        .map_err(|(e, _)| e)
        .expect("format");
    for i in 0..100u32 {
        db.kv_put("log", &i.to_be_bytes(), &[0x5A; 100]).unwrap();
    }
    let (closed, dev) = db.close();
    closed.unwrap();
    let mut db = reopen(dev, &KEY).expect("reopen");
    assert_eq!(
        db.kv_get("log", &99u32.to_be_bytes()).unwrap(),
        Some(vec![0x5A; 100])
    );
    let chip = db.device().inner().spi();
    assert_eq!(&chip.memory()[..image.len()], &image[..]);
    assert!(chip.violations().is_empty());
}
