use cairndb::db::{Config, Database, Key};
use cairndb::flash::{Geometry, RamFlash};
use cairndb::value::from_json;

fn main() -> Result<(), cairndb::Error> {
    // Any BlockDevice works: RamFlash here; FileFlash, NorFlashDevice or C callbacks on a device.
    let flash = RamFlash::new(Geometry {
        read_size: 16,
        prog_size: 16,
        block_size: 4096,
        block_count: 64,
    })
    .ok_or(cairndb::Error::InvalidArgument)?;
    let key = [7u8; 32]; // from a secure element or a KDF in real firmware
    let mut db =
        Database::format(flash, &Config::default(), &Key::Raw(&key)).map_err(|(e, _)| e)?;

    // Documents: automatic _id, _ver and _ts; every call is durable when it returns.
    let id = db.insert_json("readings", r#"{"room":"R101","temp":21.5}"#)?;
    db.patch("readings", id, &from_json(br#"{"$inc":{"temp":0.5}}"#, 8)?)?;
    assert_eq!(
        db.get_json("readings", id)?.as_deref(),
        Some(r#"{"_id":1,"_ver":2,"_ts":0,"room":"R101","temp":22.0}"#)
    );

    // Key-value pairs in namespaces.
    db.kv_put("config", b"wifi/ssid", b"lab-net")?;
    assert_eq!(
        db.kv_get("config", b"wifi/ssid")?.as_deref(),
        Some(&b"lab-net"[..])
    );

    // Several writes, one atomic commit.
    db.transaction(|t| {
        t.insert("events", &from_json(br#"{"kind":"calibrated"}"#, 8)?)?;
        t.kv_put("config", b"calibrated", b"1")
    })?;

    // Reopen: everything is there; a wrong key is refused.
    let (closed, flash) = db.close();
    closed?;
    let mut db = Database::open(flash, &Config::default(), &Key::Raw(&key)).map_err(|(e, _)| e)?;
    assert_eq!(db.count("events")?, 1);
    let (_, flash) = db.close();
    let refused = Database::open(flash, &Config::default(), &Key::Raw(&[0; 32]));
    assert!(matches!(refused, Err((cairndb::Error::WrongKey, _))));
    Ok(())
}
