//! Backup streams: round trips in every key mode, every kind of damage (flipped bytes,
//! truncation, reordered, dropped or foreign chunks), keys, chains, and raw partitions on the
//! strict flash simulator including power cuts mid-write.

use cairndb::backup::{
    check_chain, check_link, peek_header, verify, BackupInfo, BackupKey, BackupKind, BackupParams,
    BackupReader, BackupWriter, DeviceSink, DeviceSource, KeyMode, HEADER_LEN, MAX_KEY_LEN,
    MAX_VALUE_LEN,
};
use cairndb::crypto::{MasterKey, Sealer, SALT_LEN};
use cairndb::flash::{Geometry, SimFlash};
use cairndb::Error;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Range;

type Rec = (Vec<u8>, u64, Option<Vec<u8>>);

const DB: [u8; 16] = [0xD1; 16];
const PASS: &[u8] = b"correct horse";
const SALT: [u8; SALT_LEN] = [0x5A; SALT_LEN];

fn sealer(b: u8) -> Sealer {
    Sealer::with_key(&MasterKey::from_bytes(&[b; 32]))
}

fn passphrase(pass: &[u8]) -> BackupKey<'_> {
    BackupKey::Passphrase {
        pass,
        salt: SALT,
        iterations: 3,
    }
}

/// Envelope overhead of each key mode.
fn overhead(key: &BackupKey<'_>) -> usize {
    match key {
        BackupKey::Plain => 4,
        BackupKey::Sealer(s) => s.overhead(),
        BackupKey::Passphrase { .. } => 16,
    }
}

fn write(key: &BackupKey<'_>, params: &BackupParams, recs: &[Rec]) -> (Vec<u8>, BackupInfo) {
    let mut out = Vec::new();
    let mut w = BackupWriter::new(&mut out, key, params).unwrap();
    for (k, s, v) in recs {
        w.push(k, *s, v.as_deref()).unwrap();
    }
    let info = w.finish().unwrap();
    assert_eq!(info.stream_len, out.len() as u64);
    (out, info)
}

/// Reads records until the end or the first error; returns them and the outcome.
fn read_all(stream: &[u8], key: &BackupKey<'_>) -> (Vec<Rec>, Result<BackupInfo, Error>) {
    let mut got = Vec::new();
    let mut r = match BackupReader::open(stream, key) {
        Ok(r) => r,
        Err(e) => return (got, Err(e)),
    };
    loop {
        match r.next() {
            Ok(Some(rec)) => got.push((rec.key.to_vec(), rec.seq, rec.value.map(<[u8]>::to_vec))),
            Ok(None) => return (got, r.info().ok_or(Error::BadBackup)),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// A deterministic sorted record set: `n` keys, values of mixed sizes, some deletions.
fn records(n: usize, seed: u8, max_value: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let key = format!("k{:05}", i * 3 + usize::from(seed % 3)).into_bytes();
            let len = (i * 37 + usize::from(seed)) % (max_value + 1);
            let value = (i % 5 != 2).then(|| (0..len).map(|j| (j as u8) ^ seed).collect());
            (key, 1 + i as u64 * 2, value)
        })
        .collect()
}

fn params(chunk: u16, end_seq: u64, entropy: u8) -> BackupParams {
    let mut p = BackupParams::full(DB, end_seq);
    p.chunk_size = chunk;
    p.entropy = [entropy; 16];
    p.created = 1_700_000_000;
    p
}

/// Byte ranges of the frames (data chunks, then the trailer) of a well-formed stream.
fn frames(stream: &[u8], over: usize) -> Vec<Range<usize>> {
    let mut at = HEADER_LEN + over;
    let mut out = Vec::new();
    while at < stream.len() {
        let len = usize::from(u16::from_le_bytes([stream[at + 1], stream[at + 2]]));
        let end = at + 3 + len + over;
        out.push(at..end);
        at = end;
    }
    assert_eq!(at, stream.len());
    out
}

fn with_keys(f: impl Fn(&BackupKey<'_>)) {
    let s = sealer(0x11);
    for key in [BackupKey::Plain, BackupKey::Sealer(&s), passphrase(PASS)] {
        f(&key);
    }
}

fn arb_records() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::btree_map(
        prop::collection::vec(any::<u8>(), 0..40),
        (
            0u64..1000,
            prop::option::weighted(
                0.8,
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..64),
                    prop::collection::vec(any::<u8>(), 0..5000),
                ],
            ),
        ),
        0..60,
    )
    .prop_map(|m: BTreeMap<_, _>| m.into_iter().map(|(k, (s, v))| (k, s, v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn round_trip_any_records(
        recs in arb_records(),
        mode in 0u8..3,
        chunk in prop::sample::select(vec![64u16, 100, 2048, 4096]),
    ) {
        let s = sealer(0x22);
        let key = match mode {
            0 => BackupKey::Plain,
            1 => BackupKey::Sealer(&s),
            _ => passphrase(PASS),
        };
        let (stream, info) = write(&key, &params(chunk, 1000, 1), &recs);
        prop_assert_eq!(info.records, recs.len() as u64);
        prop_assert_eq!(info.max_seq, recs.iter().map(|r| r.1).max().unwrap_or(0));
        let (got, end) = read_all(&stream, &key);
        prop_assert_eq!(end, Ok(info));
        prop_assert_eq!(got, recs);
        prop_assert_eq!(verify(&stream[..], &key), Ok(info));
    }

    #[test]
    fn garbage_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 10 {
            // Past the magic and version, so the rest of the parser is exercised.
            bytes[..8].copy_from_slice(b"CAIRNBK\x01");
            bytes[8..10].copy_from_slice(&[1, 0]);
        }
        let s = sealer(0x22);
        for key in [BackupKey::Plain, BackupKey::Sealer(&s)] {
            prop_assert!(verify(&bytes[..], &key).is_err());
        }
    }

    #[test]
    fn random_damage_never_yields_wrong_records(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255, 1usize..9), 1..4),
        encrypted in any::<bool>(),
    ) {
        let s = sealer(0x33);
        let key = if encrypted { BackupKey::Sealer(&s) } else { BackupKey::Plain };
        let recs = records(25, 9, 90);
        let (good, _) = write(&key, &params(64, 100, 2), &recs);
        let mut bad = good.clone();
        for (at, x, len) in edits {
            let at = at.index(bad.len());
            for b in bad.iter_mut().skip(at).take(len) {
                *b ^= x;
            }
        }
        let (got, end) = read_all(&bad, &key);
        prop_assert!(end.is_err());
        prop_assert!(recs.starts_with(&got), "a damaged stream gave records never written");
    }
}

#[test]
fn largest_records_cross_many_chunks() {
    let big_key = vec![0xAB; MAX_KEY_LEN];
    let big_value: Vec<u8> = (0..MAX_VALUE_LEN).map(|i| (i % 251) as u8).collect();
    let recs: Vec<Rec> = vec![
        (vec![], 0, Some(vec![])),
        (vec![0x01], 4, None),
        (big_key.clone(), 5, Some(big_value.clone())),
        ([&big_key[1..], &[0xAC]].concat(), 6, Some(big_value)),
        (vec![0xFF; 3], 7, Some(vec![1, 2, 3])),
    ];
    with_keys(|key| {
        for chunk in [64, 4096] {
            let (stream, info) = write(key, &params(chunk, 7, 3), &recs);
            assert!(info.chunks >= (2 * MAX_VALUE_LEN / usize::from(chunk)) as u64);
            let (got, end) = read_all(&stream, key);
            assert_eq!(end, Ok(info));
            assert_eq!(got, recs);
        }
    });
}

#[test]
fn every_flipped_byte_is_an_error() {
    let recs = records(12, 4, 60);
    with_keys(|key| {
        let over = overhead(key);
        let (good, info) = write(key, &params(64, 100, 5), &recs);
        assert!(info.chunks >= 5, "want several chunks, got {}", info.chunks);
        for at in 0..good.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[at] ^= x;
                let (got, end) = read_all(&bad, key);
                let err = end.expect_err(&format!("flip {x:#x} at {at} verified"));
                assert!(recs.starts_with(&got), "flip at {at} gave wrong records");
                if at >= HEADER_LEN + over {
                    assert_eq!(err, Error::BadBackup, "flip at {at}");
                } else {
                    assert!(
                        matches!(
                            err,
                            Error::BadBackup
                                | Error::WrongKey
                                | Error::KeyMismatch
                                | Error::Unsupported
                        ),
                        "flip at {at}: {err:?}"
                    );
                }
            }
        }
    });
}

#[test]
fn every_truncation_is_bad_backup() {
    let recs = records(12, 6, 60);
    with_keys(|key| {
        let (good, info) = write(key, &params(64, 100, 6), &recs);
        for cut in 0..good.len() {
            let (got, end) = read_all(&good[..cut], key);
            assert_eq!(end, Err(Error::BadBackup), "cut at {cut}");
            assert!(recs.starts_with(&got));
        }
        // Bytes after the trailer are not part of the stream (a partition holds old data
        // there): the reader stops at the trailer and reports the stream's own length.
        let mut longer = good.clone();
        longer.extend_from_slice(&[0xFF; 40]);
        assert_eq!(verify(&longer[..], key), Ok(info));
        assert_eq!(info.stream_len, good.len() as u64);
    });
}

#[test]
fn reordered_dropped_or_repeated_chunks_are_bad_backup() {
    let recs = records(20, 7, 60);
    with_keys(|key| {
        let over = overhead(key);
        let (good, _) = write(key, &params(64, 100, 7), &recs);
        let fr = frames(&good, over);
        assert!(fr.len() >= 6);
        let piece = |r: &Range<usize>| good[r.clone()].to_vec();
        let rebuild = |order: &[usize]| {
            let mut s = good[..HEADER_LEN + over].to_vec();
            for &i in order {
                s.extend_from_slice(&piece(&fr[i]));
            }
            s
        };
        let n = fr.len();
        let all: Vec<usize> = (0..n).collect();
        assert_eq!(verify(&rebuild(&all)[..], key).map(|i| i.records), Ok(20));
        let mut swapped = all.clone();
        swapped.swap(1, 2);
        let mut dropped = all.clone();
        dropped.remove(1);
        let mut repeated = all.clone();
        repeated.insert(2, 1);
        let mut no_last_chunk = all.clone();
        no_last_chunk.remove(n - 2);
        let trailer_early: Vec<usize> = vec![0, n - 1];
        for (what, order) in [
            ("swap", swapped),
            ("drop", dropped),
            ("repeat", repeated),
            ("drop last chunk", no_last_chunk),
            ("trailer early", trailer_early),
        ] {
            let (got, end) = read_all(&rebuild(&order), key);
            assert_eq!(end, Err(Error::BadBackup), "{what}");
            assert!(recs.starts_with(&got), "{what}");
        }
    });
}

#[test]
fn chunks_from_another_backup_are_bad_backup() {
    // Same records, same parameters, other entropy: only the backup identity differs.
    let recs = records(20, 8, 60);
    with_keys(|key| {
        let over = overhead(key);
        let (a, ia) = write(key, &params(64, 100, 1), &recs);
        let (b, ib) = write(key, &params(64, 100, 2), &recs);
        assert_ne!(ia.header.backup_id, ib.header.backup_id);
        let (fa, fb) = (frames(&a, over), frames(&b, over));
        assert_eq!(fa.len(), fb.len());
        for i in 0..fa.len() {
            assert_eq!(fa[i], fb[i], "same layout");
            let mut spliced = a.clone();
            spliced[fa[i].clone()].copy_from_slice(&b[fb[i].clone()]);
            if key.is_plain() {
                // Plain frames are not encrypted: the same plaintext, only the checksum differs.
                assert_eq!(
                    spliced[fa[i].start..fa[i].end - 4],
                    a[fa[i].start..fa[i].end - 4]
                );
            }
            let (got, end) = read_all(&spliced, key);
            assert_eq!(end, Err(Error::BadBackup), "frame {i} spliced");
            assert!(recs.starts_with(&got));
        }
        // B's header with A's body, and the reverse.
        let mut mixed = b[..HEADER_LEN + over].to_vec();
        mixed.extend_from_slice(&a[HEADER_LEN + over..]);
        assert_eq!(verify(&mixed[..], key), Err(Error::BadBackup));
    });
}

trait IsPlain {
    fn is_plain(&self) -> bool;
}
impl IsPlain for BackupKey<'_> {
    fn is_plain(&self) -> bool {
        matches!(self, BackupKey::Plain)
    }
}

#[test]
fn keys_wrong_mismatched_or_too_costly() {
    let recs = records(5, 1, 30);
    let (a, b) = (sealer(0xA0), sealer(0xB0));
    let p = params(256, 100, 1);
    let (by_a, _) = write(&BackupKey::Sealer(&a), &p, &recs);
    let (by_pass, info) = write(&passphrase(PASS), &p, &recs);
    let (plain, _) = write(&BackupKey::Plain, &p, &recs);
    let open = |s: &[u8], k: &BackupKey<'_>| BackupReader::open(s, k).err();

    assert_eq!(open(&by_a, &BackupKey::Sealer(&b)), Some(Error::WrongKey));
    assert_eq!(
        open(&by_pass, &passphrase(b"wrong horse")),
        Some(Error::WrongKey)
    );
    assert_eq!(
        open(&by_pass, &BackupKey::Sealer(&a)),
        Some(Error::WrongKey)
    );
    // The same passphrase with another salt gives another key; reading uses the header's.
    let other_salt = BackupKey::Passphrase {
        pass: PASS,
        salt: [0; SALT_LEN],
        iterations: 3,
    };
    assert_eq!(verify(&by_pass[..], &other_salt), Ok(info));
    // The key derived from the passphrase opens it as a raw key too.
    let derived =
        Sealer::with_key(&cairndb::crypto::derive_from_passphrase(PASS, &SALT, 3).unwrap());
    assert_eq!(verify(&by_pass[..], &BackupKey::Sealer(&derived)), Ok(info));

    assert_eq!(open(&by_a, &BackupKey::Plain), Some(Error::KeyMismatch));
    assert_eq!(
        open(&by_a, &BackupKey::Sealer(&Sealer::plain())),
        Some(Error::KeyMismatch)
    );
    assert_eq!(open(&by_a, &passphrase(PASS)), Some(Error::KeyMismatch));
    assert_eq!(
        open(&plain, &BackupKey::Sealer(&a)),
        Some(Error::KeyMismatch)
    );
    assert_eq!(open(&plain, &passphrase(PASS)), Some(Error::KeyMismatch));
    assert!(verify(&plain[..], &BackupKey::Sealer(&Sealer::plain())).is_ok());

    // A reader refuses to spend more PBKDF2 iterations than its ceiling.
    let cheap = BackupKey::Passphrase {
        pass: PASS,
        salt: SALT,
        iterations: 2,
    };
    assert_eq!(open(&by_pass, &cheap), Some(Error::BadBackup));
    assert_eq!(
        open(&by_pass, &passphrase(b"")),
        Some(Error::InvalidArgument)
    );

    // The header can be inspected before a key is chosen.
    let h = peek_header(&by_pass).unwrap();
    assert_eq!(
        h.key_mode,
        KeyMode::Passphrase {
            salt: SALT,
            iterations: 3
        }
    );
    assert_eq!(h, info.header);
    assert_eq!(peek_header(&by_a).unwrap().key_mode, KeyMode::Key);
    assert_eq!(peek_header(&plain).unwrap().key_mode, KeyMode::Plain);
    // Encrypted streams hide the records: no key bytes appear in the clear.
    assert!(!by_a.windows(6).any(|w| w == b"k00004"));
    assert!(plain.windows(6).any(|w| w == b"k00004"));
}

#[test]
fn header_fields_round_trip() {
    let s = sealer(0x44);
    let mut p = params(512, 77, 9);
    p.created = 0xDEAD_BEEF;
    let (stream, info) = write(&BackupKey::Sealer(&s), &p, &[(b"x".to_vec(), 77, None)]);
    let r = BackupReader::open(&stream[..], &BackupKey::Sealer(&s)).unwrap();
    let h = *r.header();
    assert_eq!(h, info.header);
    assert_eq!(
        (
            h.kind,
            h.db_id,
            h.base_seq,
            h.end_seq,
            h.created,
            h.chunk_size
        ),
        (BackupKind::Full, DB, 0, 77, 0xDEAD_BEEF, 512)
    );
    assert_eq!(h.key_check, s.key_check());
    assert_eq!(h.parent_id, [0; 16]);
    assert_eq!((info.records, info.max_seq, info.chunks), (1, 77, 1));
}

#[test]
fn chains_are_checked() {
    let key = BackupKey::Plain;
    let full = write(&key, &params(64, 10, 1), &records(3, 1, 5)).1;
    let inc = |parent: &BackupInfo, end: u64, e: u8| {
        let mut p = BackupParams::incremental(&parent.header, end);
        p.entropy = [e; 16];
        // An empty range (nothing new) carries no records.
        let recs: Vec<Rec> = if end > parent.header.end_seq {
            vec![(b"z".to_vec(), end, None)]
        } else {
            vec![]
        };
        write(&key, &p, &recs).1
    };
    let i1 = inc(&full, 20, 1);
    let i2 = inc(&i1, 30, 2);
    let i3 = inc(&i2, 30, 3); // nothing new: an empty range is fine
    assert_eq!(i1.header.base_seq, 10);
    assert_eq!(check_chain(&[full]), Ok(()));
    assert_eq!(check_chain(&[full, i1, i2, i3]), Ok(()));
    assert_eq!(check_chain(&[full.header, i1.header]), Ok(()));
    assert_eq!(check_link(&i1.header, &i2.header), Ok(()));

    // Another database with the same sequence numbers.
    let mut foreign_p = BackupParams::incremental(&i1.header, 30);
    foreign_p.db_id = [0xEE; 16];
    let foreign = write(&key, &foreign_p, &[]).1;
    // A full backup of the same state taken again, and an incremental continuing it.
    let full_again = write(&key, &params(64, 10, 2), &records(3, 1, 5)).1;
    let i1_other_parent = inc(&full_again, 20, 1);

    let broken: [(&str, Vec<BackupInfo>); 9] = [
        ("empty", vec![]),
        ("incremental first", vec![i1, i2]),
        ("gap", vec![full, i2]),
        ("reorder", vec![full, i2, i1]),
        ("repeat", vec![full, i1, i1]),
        ("two fulls", vec![full, full_again]),
        ("foreign db", vec![full, i1, foreign]),
        ("other parent", vec![full, i1_other_parent]),
        ("continues the wrong full", vec![full_again, i1]),
    ];
    for (what, chain) in broken {
        assert_eq!(check_chain(&chain), Err(Error::BackupChain), "{what}");
    }
}

#[test]
fn incremental_streams_carry_deletions_and_check_their_range() {
    let key = BackupKey::Plain;
    let full = write(&key, &params(64, 10, 1), &records(3, 1, 5)).1;
    let p = BackupParams::incremental(&full.header, 20);
    let recs = vec![
        (b"a".to_vec(), 11, None),
        (b"b".to_vec(), 20, Some(b"new".to_vec())),
    ];
    let (stream, info) = write(&key, &p, &recs);
    assert_eq!(info.header.kind, BackupKind::Incremental);
    let (got, end) = read_all(&stream, &key);
    assert_eq!((got, end), (recs, Ok(info)));
}

fn geometry(read: u32, prog: u32, block: u32, count: u32) -> Geometry {
    Geometry {
        read_size: read,
        prog_size: prog,
        block_size: block,
        block_count: count,
    }
}

#[test]
fn partition_round_trip_with_odd_geometries() {
    let recs = records(40, 2, 200);
    let s = sealer(0x55);
    let key = BackupKey::Sealer(&s);
    for g in [
        geometry(1, 1, 512, 16),
        geometry(5, 3, 300, 40),
        geometry(8, 24, 480, 30),
        geometry(16, 16, 4096, 6),
        geometry(512, 512, 4096, 6),
    ] {
        let mut dev = SimFlash::new(g).unwrap();
        let (first, count) = (1, g.block_count - 2);
        let mut sink = DeviceSink::new(&mut dev, first, count).unwrap();
        let p = params(100, 100, 4);
        let mut w = BackupWriter::new(&mut sink, &key, &p).unwrap();
        for (k, q, v) in &recs {
            w.push(k, *q, v.as_deref()).unwrap();
        }
        let info = w.finish().unwrap();
        assert!(
            info.stream_len > u64::from(g.block_size),
            "{g:?}: stream fits one block"
        );
        drop(sink);
        assert_eq!(dev.violations(), 0, "{g:?}");
        // Nothing outside the partition was touched.
        let bs = g.block_size as usize;
        assert!(dev.image()[..bs].iter().all(|&b| b == 0xFF));
        assert!(dev.image()[bs * (g.block_count as usize - 1)..]
            .iter()
            .all(|&b| b == 0xFF));
        // The stream is stored byte for byte, right at the partition start.
        let mut copy = Vec::new();
        let mut w = BackupWriter::new(&mut copy, &key, &p).unwrap();
        for (k, q, v) in &recs {
            w.push(k, *q, v.as_deref()).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(&dev.image()[bs..bs + copy.len()], &copy[..], "{g:?}");

        let mut got = Vec::new();
        let src = DeviceSource::new(&mut dev, first, count).unwrap();
        let mut r = BackupReader::open(src, &key).unwrap();
        while let Some(rec) = r.next().unwrap() {
            got.push((rec.key.to_vec(), rec.seq, rec.value.map(<[u8]>::to_vec)));
        }
        assert_eq!(r.info(), Some(info));
        drop(r);
        assert_eq!(got, recs, "{g:?}");
        assert_eq!(dev.violations(), 0, "{g:?}");
    }
}

#[test]
fn partition_too_small_is_no_space() {
    let mut dev = SimFlash::new(geometry(4, 8, 256, 8)).unwrap();
    let mut sink = DeviceSink::new(&mut dev, 6, 2).unwrap();
    let mut w = BackupWriter::new(&mut sink, &BackupKey::Plain, &params(64, 100, 1)).unwrap();
    let mut err = None;
    for (k, q, v) in records(40, 1, 100) {
        if let Err(e) = w.push(&k, q, v.as_deref()) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(Error::NoSpace));
    assert_eq!(
        w.push(b"zzz", 99, None),
        Err(Error::NoSpace),
        "the stream stays broken"
    );
    assert_eq!(w.finish().err(), Some(Error::NoSpace));
    drop(sink);
    assert_eq!(dev.violations(), 0);
    let src = DeviceSource::new(&mut dev, 6, 2).unwrap();
    assert_eq!(verify(src, &BackupKey::Plain).err(), Some(Error::BadBackup));
}

/// Writes `recs` onto blocks 1..(count-1) of `dev`; returns the info or the first error.
fn write_partition(
    dev: &mut SimFlash,
    key: &BackupKey<'_>,
    p: &BackupParams,
    recs: &[Rec],
) -> Result<BackupInfo, Error> {
    let count = dev.image().len() as u32 / 256 - 2;
    let mut sink = DeviceSink::new(&mut *dev, 1, count)?;
    let mut w = BackupWriter::new(&mut sink, key, p)?;
    for (k, q, v) in recs {
        w.push(k, *q, v.as_deref())?;
    }
    w.finish()
}

fn read_partition(
    dev: &mut SimFlash,
    key: &BackupKey<'_>,
) -> (Vec<Rec>, Result<BackupInfo, Error>) {
    let count = dev.image().len() as u32 / 256 - 2;
    let mut got = Vec::new();
    let src = DeviceSource::new(&mut *dev, 1, count).unwrap();
    let mut r = match BackupReader::open(src, key) {
        Ok(r) => r,
        Err(e) => return (got, Err(e)),
    };
    loop {
        match r.next() {
            Ok(Some(rec)) => got.push((rec.key.to_vec(), rec.seq, rec.value.map(<[u8]>::to_vec))),
            Ok(None) => return (got, r.info().ok_or(Error::BadBackup)),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[test]
fn power_cut_mid_write_is_detected() {
    let s = sealer(0x66);
    let key = BackupKey::Sealer(&s);
    let g = geometry(4, 8, 256, 12);
    let old_recs = records(30, 3, 60);
    let new_recs = records(30, 4, 60);
    let old_p = params(64, 100, 1);
    let new_p = params(64, 100, 2);
    // The partition holds an older backup (or nothing) when the new one is written over it.
    for with_old in [false, true] {
        let mut base = SimFlash::new(g).unwrap();
        let old_info = if with_old {
            Some(write_partition(&mut base, &key, &old_p, &old_recs).unwrap())
        } else {
            None
        };
        let start = base.ops();
        let mut probe = base.clone();
        let new_info = write_partition(&mut probe, &key, &new_p, &new_recs).unwrap();
        let total = probe.ops() - start;
        assert!(total > 10, "want a stream of many flash operations");
        let mut bad_backup = 0;
        for n in 1..=total {
            for seed in [1, 2] {
                let mut dev = base.clone();
                dev.set_seed(seed * 1000 + n);
                dev.cut_power_after(n);
                assert_eq!(
                    write_partition(&mut dev, &key, &new_p, &new_recs).err(),
                    Some(Error::Io),
                    "cut at op {n}"
                );
                dev.restore_power();
                assert_eq!(dev.violations(), 0);
                let (got, end) = read_partition(&mut dev, &key);
                match end {
                    Err(e) => {
                        assert_eq!(e, Error::BadBackup, "cut at op {n}");
                        bad_backup += 1;
                        assert!(
                            new_recs.starts_with(&got) || old_recs.starts_with(&got),
                            "cut at {n}: records of neither backup"
                        );
                    }
                    // A torn operation may still have landed completely (the last prog), or
                    // not have touched the old backup at all (the first erase).
                    Ok(info) if Some(info) == old_info => assert_eq!(got, old_recs),
                    Ok(info) => {
                        assert_eq!(info, new_info, "cut at {n}");
                        assert_eq!(got, new_recs);
                    }
                }
            }
        }
        assert!(
            bad_backup >= 2 * (total - 2),
            "{bad_backup} of {}",
            2 * total
        );
    }
}

#[test]
fn erased_or_zeroed_partition_is_bad_backup() {
    for fill in [0xFFu8, 0x00] {
        let mut dev = SimFlash::from_image(geometry(4, 8, 256, 4), vec![fill; 1024]).unwrap();
        let src = DeviceSource::new(&mut dev, 0, 4).unwrap();
        assert_eq!(verify(src, &BackupKey::Plain).err(), Some(Error::BadBackup));
    }
    assert_eq!(
        verify(&[][..], &BackupKey::Plain).err(),
        Some(Error::BadBackup)
    );
}

#[cfg(feature = "std")]
#[test]
fn std_io_adapters_round_trip() {
    use cairndb::backup::{IoSink, IoSource};
    let recs = records(50, 5, 300);
    let s = sealer(0x77);
    let key = BackupKey::Sealer(&s);
    let mut file = Vec::new();
    let mut w = BackupWriter::new(IoSink(&mut file), &key, &params(2048, 100, 1)).unwrap();
    for (k, q, v) in &recs {
        w.push(k, *q, v.as_deref()).unwrap();
    }
    let info = w.finish().unwrap();
    let src = IoSource(std::io::Cursor::new(&file));
    assert_eq!(verify(src, &key), Ok(info));
    let (got, _) = read_all(&file, &key);
    assert_eq!(got, recs);
}
