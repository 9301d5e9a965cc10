//! Hostile images: random and mutated flash contents must produce errors, never a panic, a hang
//! or data that was never written.

mod common;
use cairndb::db::{Database, Key};
use cairndb::flash::SimFlash;
use common::*;
use proptest::prelude::*;
use std::sync::OnceLock;

const BLOCKS: u32 = 48;

/// A valid image with data in segments and in the WAL, plain or encrypted.
fn image(encrypted: bool) -> &'static Vec<u8> {
    static PLAIN: OnceLock<Vec<u8>> = OnceLock::new();
    static SEALED: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if encrypted { &SEALED } else { &PLAIN };
    cell.get_or_init(|| {
        let key = if encrypted {
            Key::Raw(&KEY_A)
        } else {
            Key::None
        };
        let mut db = Database::format(new_sim(BLOCKS), &small_config(), &key)
            .map_err(|e| e.0)
            .unwrap();
        for i in 0..150 {
            db.insert("a", &json(&format!(r#"{{"i":{i},"s":"text-{i}"}}"#)))
                .unwrap();
            db.kv_put("n", format!("k{}", i % 17).as_bytes(), &[i as u8; 9])
                .unwrap();
        }
        db.delete("a", 3).unwrap();
        db.into_device().into_image()
    })
}

/// Open and read everything; any error is fine, a panic or hang is not.
fn exercise(image: Vec<u8>, encrypted: bool) {
    let key = if encrypted {
        Key::Raw(&KEY_A)
    } else {
        Key::None
    };
    let Ok(mut db) = Database::open(
        SimFlash::from_image(geometry(BLOCKS), image).unwrap(),
        &small_config(),
        &key,
    ) else {
        return;
    };
    if let Ok(docs) = db.docs("a") {
        for d in docs.take(1000) {
            if d.is_err() {
                break;
            }
        }
    }
    let _ = db.get("a", 77);
    let _ = db.count("a");
    let _ = db.kv_keys("n", b"k", &mut |_| Ok(true));
    let _ = db.kv_get("n", b"k3");
    let _ = db.collections();
    let _ = db.insert("a", &json(r#"{"new":1}"#));
    let _ = db.compact();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mutated_images_never_panic(encrypted in any::<bool>(), edits in prop::collection::vec((0usize..(BLOCKS as usize * 4096), any::<u8>(), 1usize..24), 1..6)) {
        let mut img = image(encrypted).clone();
        for (pos, byte, len) in edits {
            for b in img.iter_mut().skip(pos).take(len) {
                *b ^= byte | 1;
            }
        }
        exercise(img, encrypted);
    }

    #[test]
    fn random_images_never_panic(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let img: Vec<u8> = (0..BLOCKS as usize * 4096).map(|_| rng.next() as u8).collect();
        exercise(img, false);
    }
}

#[test]
fn swapped_blocks_never_return_changed_data() {
    // Copy valid blocks over other blocks: pages sealed for one place must not be read in another.
    let base = image(true).clone();
    let used: Vec<usize> = (0..BLOCKS as usize)
        .filter(|b| base[b * 4096..(b + 1) * 4096].iter().any(|x| *x != 0xFF))
        .collect();
    // Every version ever written: the image's history is 150 inserts, then one delete.
    let written: Vec<_> = {
        let mut db = Database::format(new_sim(BLOCKS), &small_config(), &Key::Raw(&KEY_A))
            .map_err(|e| e.0)
            .unwrap();
        for i in 0..150 {
            db.insert("a", &json(&format!(r#"{{"i":{i},"s":"text-{i}"}}"#)))
                .unwrap();
        }
        db.docs("a").unwrap().map(|d| d.unwrap()).collect()
    };
    for &from in &used {
        for &to in used.iter().filter(|t| **t != from).take(6) {
            let mut img = base.clone();
            img.copy_within(from * 4096..(from + 1) * 4096, to * 4096);
            let Ok(mut db) = Database::open(
                SimFlash::from_image(geometry(BLOCKS), img).unwrap(),
                &small_config(),
                &Key::Raw(&KEY_A),
            ) else {
                continue;
            };
            let Ok(it) = db.docs("a") else { continue };
            let docs: Result<Vec<_>, _> = it.collect();
            if let Ok(docs) = docs {
                // An older authentic state (a littlefs fallback) at most; never a changed document.
                for d in &docs {
                    assert!(
                        written.contains(d),
                        "block {from}->{to}: a document never written: {d:?}"
                    );
                }
            }
        }
    }
}
