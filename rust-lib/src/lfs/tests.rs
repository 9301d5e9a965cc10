use super::*;
use crate::flash::RamFlash;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::println;

/// RamFlash with counters and fault injection.
struct TestFlash {
    ram: RamFlash,
    read_bytes: u64,
    prog_bytes: u64,
    erases: u64,
    /// Every prog fails with `Io` while set.
    fail_prog: bool,
    /// Blocks whose prog/erase report `Corrupt` (worn out).
    bad: Vec<u32>,
}

impl TestFlash {
    fn new(block_count: u32) -> Self {
        TestFlash {
            ram: RamFlash::new(geom(block_count)).expect("geometry"),
            read_bytes: 0,
            prog_bytes: 0,
            erases: 0,
            fail_prog: false,
            bad: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.read_bytes = 0;
        self.prog_bytes = 0;
        self.erases = 0;
    }

    fn counts(&self) -> (u64, u64, u64) {
        (self.read_bytes, self.prog_bytes, self.erases)
    }
}

impl BlockDevice for TestFlash {
    fn geometry(&self) -> Geometry {
        self.ram.geometry()
    }
    fn read(
        &mut self,
        block: u32,
        off: u32,
        buf: &mut [u8],
    ) -> core::result::Result<(), FlashError> {
        self.read_bytes += buf.len() as u64;
        self.ram.read(block, off, buf)
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> core::result::Result<(), FlashError> {
        if self.fail_prog {
            return Err(FlashError::Io);
        }
        if self.bad.contains(&block) {
            return Err(FlashError::Corrupt);
        }
        self.prog_bytes += data.len() as u64;
        self.ram.prog(block, off, data)
    }
    fn erase(&mut self, block: u32) -> core::result::Result<(), FlashError> {
        if self.bad.contains(&block) {
            return Err(FlashError::Corrupt);
        }
        self.erases += 1;
        self.ram.erase(block)
    }
}

fn geom(block_count: u32) -> Geometry {
    Geometry {
        read_size: 16,
        prog_size: 16,
        block_size: 4096,
        block_count,
    }
}

fn fresh_with(block_count: u32, cfg: &LfsConfig) -> Fs<TestFlash> {
    let dev = Fs::format(TestFlash::new(block_count), cfg)
        .map_err(|(e, _)| e)
        .expect("format");
    Fs::mount(dev, cfg).map_err(|(e, _)| e).expect("mount")
}

fn fresh() -> Fs<TestFlash> {
    fresh_with(256, &LfsConfig::default())
}

fn remount(fs: Fs<TestFlash>) -> Fs<TestFlash> {
    let (r, dev) = fs.unmount();
    r.expect("unmount");
    Fs::mount(dev, &LfsConfig::default())
        .map_err(|(e, _)| e)
        .expect("remount")
}

fn read(fs: &mut Fs<TestFlash>, path: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    fs.read_file(path, &mut out, 1 << 20)?;
    Ok(out)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn list(fs: &mut Fs<TestFlash>, path: &str) -> Result<Vec<(String, EntryKind, u32)>> {
    let mut v = Vec::new();
    fs.list_dir(path, &mut |n, k, s| {
        v.push((String::from(n), k, s));
        Ok(())
    })?;
    Ok(v)
}

#[test]
fn format_and_mount_empty() {
    let mut fs = fresh();
    assert_eq!(fs.geometry(), geom(256));
    assert_eq!(fs.cache_size(), 512);
    assert_eq!(fs.inline_max(), 512);
    assert_eq!(fs.attr_max(), 1022);
    assert_eq!(fs.used_blocks().unwrap(), 2);
    assert!(list(&mut fs, "/").unwrap().is_empty());
    assert!(fs.exists("/").unwrap());
    assert!(!fs.exists("nope").unwrap());
    fs.gc().unwrap();
}

#[test]
fn mount_of_blank_device_fails() {
    let (e, _dev) = Fs::mount(TestFlash::new(16), &LfsConfig::default())
        .err()
        .unwrap();
    assert_eq!(e, Error::Corrupt);
}

#[test]
fn write_read_rename_remove() {
    let mut fs = fresh();
    let small = pattern(100, 1);
    let big = pattern(10_000, 2);
    fs.write_file("a", &small).unwrap();
    fs.write_file("b", &big).unwrap();
    assert_eq!(read(&mut fs, "a").unwrap(), small);
    assert_eq!(read(&mut fs, "b").unwrap(), big);
    assert_eq!(fs.file_size("b").unwrap(), 10_000);

    // Too large for max_len: error, empty output.
    let mut out = vec![9u8; 3];
    assert_eq!(fs.read_file("b", &mut out, 9_999), Err(Error::TooLarge));
    assert!(out.is_empty());

    // Atomic replace.
    fs.rename("a", "b").unwrap();
    assert!(!fs.exists("a").unwrap());
    assert_eq!(read(&mut fs, "b").unwrap(), small);

    // Overwrite with an empty file.
    fs.write_file("b", &[]).unwrap();
    assert_eq!(read(&mut fs, "b").unwrap(), Vec::<u8>::new());

    fs.remove("b").unwrap();
    assert_eq!(read(&mut fs, "b"), Err(Error::NotFound));
    assert_eq!(fs.remove("b"), Err(Error::NotFound));
    assert_eq!(fs.rename("b", "c"), Err(Error::NotFound));
    assert_eq!(fs.file_size("b"), Err(Error::NotFound));
    assert_eq!(fs.used_blocks().unwrap(), 2);
}

#[test]
fn path_validation() {
    let mut fs = fresh();
    assert_eq!(fs.write_file("", b"x"), Err(Error::InvalidName));
    assert_eq!(fs.write_file("a\0b", b"x"), Err(Error::InvalidName));
    let long = "n".repeat(PATH_MAX + 1);
    assert_eq!(fs.write_file(&long, b"x"), Err(Error::InvalidName));
    assert_eq!(fs.exists(&long), Err(Error::InvalidName));

    // A component longer than name_max is refused by littlefs.
    let cfg = LfsConfig {
        name_max: 16,
        ..LfsConfig::default()
    };
    let mut fs = fresh_with(16, &cfg);
    assert_eq!(
        fs.write_file("0123456789abcdefg", b"x"),
        Err(Error::InvalidName)
    );
    fs.write_file("0123456789abcdef", b"x").unwrap();
    // Mounting with a smaller name_max than the superblock's is refused.
    let dev = fs.into_device();
    let cfg8 = LfsConfig { name_max: 8, ..cfg };
    let (e, dev) = Fs::mount(dev, &cfg8).err().unwrap();
    assert_eq!(e, Error::Fs(sys::lfs_error_LFS_ERR_INVAL));
    assert!(Fs::mount(dev, &cfg).is_ok());
}

#[test]
fn attributes() {
    let mut fs = fresh();
    fs.write_file("f", b"content").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(fs.get_attr("f", 7, &mut buf).unwrap(), None);
    assert_eq!(fs.get_attr("missing", 7, &mut buf), Err(Error::NotFound));
    assert_eq!(fs.set_attr("missing", 7, b"x"), Err(Error::NotFound));

    let a = pattern(40, 3);
    fs.set_attr("f", 7, &a).unwrap();
    assert_eq!(fs.get_attr("f", 7, &mut buf).unwrap(), Some(40));
    assert_eq!(&buf[..40], &a[..]);
    assert!(buf[40..].iter().all(|&b| b == 0));
    // Other ids are independent.
    assert_eq!(fs.get_attr("f", 8, &mut buf).unwrap(), None);

    // Overwrite with a longer value, read into a short buffer.
    let b = pattern(300, 4);
    fs.set_attr("f", 7, &b).unwrap();
    let mut short = [0u8; 10];
    assert_eq!(fs.get_attr("f", 7, &mut short).unwrap(), Some(300));
    assert_eq!(&short[..], &b[..10]);
    assert_eq!(fs.get_attr("f", 7, &mut []).unwrap(), Some(300));

    // Zero-length attribute exists.
    fs.set_attr("f", 9, &[]).unwrap();
    assert_eq!(fs.get_attr("f", 9, &mut buf).unwrap(), Some(0));

    // Limits.
    let max = vec![0xA5u8; ATTR_MAX];
    fs.set_attr("f", 10, &max).unwrap();
    let mut big = vec![0u8; 2000];
    assert_eq!(fs.get_attr("f", 10, &mut big).unwrap(), Some(ATTR_MAX));
    assert_eq!(&big[..ATTR_MAX], &max[..]);
    assert_eq!(
        fs.set_attr("f", 10, &[0u8; ATTR_MAX + 1]),
        Err(Error::TooLarge)
    );

    // Removal, also of an absent attribute.
    fs.remove_attr("f", 7).unwrap();
    assert_eq!(fs.get_attr("f", 7, &mut buf).unwrap(), None);
    fs.remove_attr("f", 7).unwrap();

    // On the root and on a directory.
    fs.set_attr("/", 1, b"root").unwrap();
    fs.mkdir("d").unwrap();
    fs.set_attr("d", 1, b"dir").unwrap();

    // Rewriting the file keeps its attributes; all survive a remount.
    fs.write_file("f", b"new").unwrap();
    let mut fs = remount(fs);
    assert_eq!(fs.get_attr("/", 1, &mut buf).unwrap(), Some(4));
    assert_eq!(&buf[..4], b"root");
    assert_eq!(fs.get_attr("d", 1, &mut buf).unwrap(), Some(3));
    assert_eq!(fs.get_attr("f", 10, &mut big).unwrap(), Some(ATTR_MAX));
    assert_eq!(read(&mut fs, "f").unwrap(), b"new");
}

#[test]
fn open_slots_exhausted_and_reused() {
    let cfg = LfsConfig {
        max_open_files: 2,
        ..LfsConfig::default()
    };
    let mut fs = fresh_with(64, &cfg);
    fs.write_file("r", b"hello world").unwrap();
    let a = fs.open("r", OpenMode::Read).unwrap();
    let b = fs.open("w", OpenMode::CreateTruncate).unwrap();
    assert_eq!(fs.open("x", OpenMode::Append), Err(Error::NoMemory));
    // read_file/write_file do not need a slot.
    fs.write_file("other", b"1").unwrap();
    assert_eq!(read(&mut fs, "r").unwrap(), b"hello world");

    // Mode checks.
    assert_eq!(fs.write(a, b"x"), Err(Error::InvalidArgument));
    assert_eq!(fs.read_at(b, 0, &mut [0u8; 4]), Err(Error::InvalidArgument));

    fs.close(a).unwrap();
    // Stale ids are rejected, also after the slot is reused.
    assert_eq!(fs.close(a), Err(Error::InvalidArgument));
    let c = fs.open("r", OpenMode::Read).unwrap();
    assert_eq!(c.index(), a.index());
    assert_ne!(c, a);
    assert_eq!(fs.read_at(a, 0, &mut [0u8; 4]), Err(Error::InvalidArgument));
    let mut buf = [0u8; 5];
    assert_eq!(fs.read_at(c, 6, &mut buf).unwrap(), 5);
    assert_eq!(&buf, b"world");
    assert_eq!(fs.read_at(c, 8, &mut buf).unwrap(), 3);
    assert_eq!(fs.read_at(c, 11, &mut buf).unwrap(), 0);
    assert_eq!(fs.read_at(c, u32::MAX, &mut buf).unwrap(), 0);
    assert_eq!(fs.read_at(c, 0, &mut buf).unwrap(), 5);
    assert_eq!(&buf, b"hello");

    // Ids out of range.
    let bogus = FileId {
        slot: 99,
        generation: 0,
    };
    assert_eq!(fs.close(bogus), Err(Error::InvalidArgument));
    assert_eq!(fs.size(bogus), Err(Error::InvalidArgument));
    fs.close(b).unwrap();
    fs.close(c).unwrap();
    // Opening a missing file for reading fails and leaves the slot free.
    assert_eq!(fs.open("missing", OpenMode::Read), Err(Error::NotFound));
    let d = fs.open("missing2", OpenMode::Append).unwrap();
    let e = fs.open("missing3", OpenMode::Append).unwrap();
    fs.close(d).unwrap();
    fs.close(e).unwrap();
    assert!(fs.exists("missing3").unwrap());

    // No slots at all.
    let cfg0 = LfsConfig {
        max_open_files: 0,
        ..LfsConfig::default()
    };
    let mut fs = fresh_with(16, &cfg0);
    assert_eq!(fs.open("x", OpenMode::Append), Err(Error::NoMemory));
}

#[test]
fn append_across_reopen_and_read_at() {
    let mut fs = fresh();
    let mut expect = Vec::new();
    for round in 0..4u8 {
        let f = fs.open("log", OpenMode::Append).unwrap();
        for i in 0..10u8 {
            let chunk = pattern(333, round * 10 + i);
            fs.write(f, &chunk).unwrap();
            expect.extend_from_slice(&chunk);
        }
        assert_eq!(fs.size(f).unwrap() as usize, expect.len());
        fs.sync(f).unwrap();
        fs.close(f).unwrap();
    }
    assert_eq!(read(&mut fs, "log").unwrap(), expect);
    let f = fs.open("log", OpenMode::Read).unwrap();
    assert_eq!(fs.size(f).unwrap() as usize, expect.len());
    let mut buf = vec![0u8; 1000];
    for &off in &[0usize, 4095, 4096, 7000, 12_000, expect.len() - 10] {
        let n = fs.read_at(f, off as u32, &mut buf).unwrap();
        let want = (expect.len() - off).min(1000);
        assert_eq!(n, want);
        assert_eq!(&buf[..n], &expect[off..off + n]);
    }
    fs.close(f).unwrap();

    // CreateTruncate replaces.
    let f = fs.open("log", OpenMode::CreateTruncate).unwrap();
    fs.write(f, b"short").unwrap();
    fs.close(f).unwrap();
    assert_eq!(read(&mut fs, "log").unwrap(), b"short");
}

#[test]
fn list_dir_entries() {
    let mut fs = fresh();
    fs.mkdir("d").unwrap();
    assert_eq!(fs.mkdir("d"), Err(Error::Exists));
    fs.write_file("d/x", &[1; 10]).unwrap();
    fs.write_file("d/y", &[1; 5000]).unwrap();
    fs.mkdir("d/sub").unwrap();
    fs.write_file("top", b"t").unwrap();
    assert_eq!(
        list(&mut fs, "/").unwrap(),
        vec![
            (String::from("d"), EntryKind::Dir, 0),
            (String::from("top"), EntryKind::File, 1)
        ]
    );
    assert_eq!(
        list(&mut fs, "d").unwrap(),
        vec![
            (String::from("sub"), EntryKind::Dir, 0),
            (String::from("x"), EntryKind::File, 10),
            (String::from("y"), EntryKind::File, 5000),
        ]
    );
    assert!(list(&mut fs, "d/sub").unwrap().is_empty());
    assert_eq!(list(&mut fs, "nope"), Err(Error::NotFound));
    assert_eq!(
        list(&mut fs, "top"),
        Err(Error::Fs(sys::lfs_error_LFS_ERR_NOTDIR))
    );
    assert_eq!(
        fs.file_size("d"),
        Err(Error::Fs(sys::lfs_error_LFS_ERR_ISDIR))
    );
    assert_eq!(
        fs.remove("d"),
        Err(Error::Fs(sys::lfs_error_LFS_ERR_NOTEMPTY))
    );

    // An error from the callback stops the walk, and the handle is closed again.
    let mut seen = 0;
    let r = fs.list_dir("d", &mut |_, _, _| {
        seen += 1;
        Err(Error::InvalidPatch)
    });
    assert_eq!(r, Err(Error::InvalidPatch));
    assert_eq!(seen, 1);
    assert_eq!(list(&mut fs, "d").unwrap().len(), 3);

    // A panicking callback leaves the filesystem usable (the guard closes the handle).
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = fs.list_dir("d", &mut |_, _, _| panic!("callback"));
    }));
    assert!(res.is_err());
    assert_eq!(list(&mut fs, "d").unwrap().len(), 3);
    fs.remove("d/sub").unwrap();
    fs.write_file("d/z", b"z").unwrap();
    assert_eq!(list(&mut fs, "d").unwrap().len(), 3);
}

#[test]
fn garbage_images_do_not_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Random bytes everywhere.
    for _ in 0..4 {
        let mut dev = TestFlash::new(32);
        for b in 0..32 {
            let block: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
            dev.ram.erase(b).unwrap();
            dev.ram.prog(b, 0, &block).unwrap();
        }
        assert!(Fs::mount(dev, &LfsConfig::default()).is_err());
    }

    // A valid image with random bit flips and byte smears: mount may fail or succeed, and
    // whatever succeeds is then walked in full.
    let mut fs = fresh_with(32, &LfsConfig::default());
    fs.mkdir("d").unwrap();
    for i in 0..20 {
        let name = std::format!("d/f{i}");
        fs.write_file(&name, &pattern(if i % 3 == 0 { 3000 } else { 60 }, i as u8))
            .unwrap();
        fs.set_attr(&name, 1, &[i as u8; 30]).unwrap();
    }
    let image = fs.into_device().ram.as_bytes().to_vec();
    let rounds = 300;
    let mut mounted = 0;
    for round in 0..rounds {
        let mut img = image.clone();
        if round % 3 == 2 {
            // Valid blocks in the wrong places: checksums pass, structure lies (stale or
            // cyclic tails, pointers into data).
            for _ in 0..1 + rng.next() % 4 {
                let from = (rng.next() % 32) as usize * 4096;
                let to = (rng.next() % 32) as usize * 4096;
                let block = img[from..from + 4096].to_vec();
                img[to..to + 4096].copy_from_slice(&block);
            }
        } else {
            let flips = 1 + (rng.next() % 40) as usize;
            for _ in 0..flips {
                // Bias towards the superblock pair and the blocks after it.
                let limit = if round % 3 == 0 { 2 * 4096 } else { img.len() };
                let at = (rng.next() as usize) % limit;
                if rng.next() % 4 == 0 {
                    img[at] = rng.next() as u8;
                } else {
                    img[at] ^= 1 << (rng.next() % 8);
                }
            }
        }
        let mut dev = TestFlash::new(32);
        for b in 0..32u32 {
            let s = b as usize * 4096;
            dev.ram.prog(b, 0, &img[s..s + 4096]).unwrap();
        }
        let Ok(mut fs) = Fs::mount(dev, &LfsConfig::default()) else {
            continue;
        };
        mounted += 1;
        let _ = fs.used_blocks();
        let mut names = Vec::new();
        let _ = fs.list_dir("d", &mut |n, _, _| {
            names.push(String::from(n));
            Ok(())
        });
        let _ = list(&mut fs, "/");
        for n in &names {
            let p = std::format!("d/{n}");
            let mut out = Vec::new();
            let _ = fs.read_file(&p, &mut out, 1 << 16);
            let _ = fs.get_attr(&p, 1, &mut [0u8; 64]);
        }
        let _ = fs.write_file("d/new", &[7u8; 2000]);
        let _ = fs.remove("d/f0");
        let _ = fs.gc();
    }
    println!("damaged images that still mounted: {mounted} of {rounds}");
}

#[test]
fn no_space_then_recovery() {
    let mut fs = fresh_with(16, &LfsConfig::default());
    let data = pattern(4000, 5);
    let mut n = 0;
    let err = loop {
        match fs.write_file(&std::format!("f{n}"), &data) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100);
    };
    assert_eq!(err, Error::NoSpace);
    assert!(n >= 8, "only {n} files fit");
    // The failed write left at most an empty file behind.
    let failed = std::format!("f{n}");
    if fs.exists(&failed).unwrap() {
        assert_eq!(fs.file_size(&failed).unwrap(), 0);
    }
    fs.remove("f0").unwrap();
    fs.remove("f1").unwrap();
    fs.write_file(&failed, &data).unwrap();
    let mut fs = remount(fs);
    assert_eq!(read(&mut fs, &failed).unwrap(), data);
    assert_eq!(read(&mut fs, "f2").unwrap(), data);

    // A failed write of an existing file keeps its old contents.
    let mut fs = fresh_with(16, &LfsConfig::default());
    fs.write_file("keep", b"old").unwrap();
    let huge = vec![1u8; 16 * 4096];
    assert_eq!(fs.write_file("keep", &huge), Err(Error::NoSpace));
    assert_eq!(read(&mut fs, "keep").unwrap(), b"old");
}

#[test]
fn unmount_and_remount_preserve_data() {
    let mut fs = fresh();
    fs.write_file("a", b"alpha").unwrap();
    fs.mkdir("dir").unwrap();
    fs.write_file("dir/b", &pattern(9000, 6)).unwrap();
    // Open files are synced by unmount.
    let f = fs.open("open", OpenMode::Append).unwrap();
    fs.write(f, b"unsynced until unmount").unwrap();
    let mut fs = remount(fs);
    assert_eq!(read(&mut fs, "a").unwrap(), b"alpha");
    assert_eq!(read(&mut fs, "dir/b").unwrap(), pattern(9000, 6));
    assert_eq!(read(&mut fs, "open").unwrap(), b"unsynced until unmount");
    // The old FileId is meaningless in the new mount.
    assert_eq!(fs.write(f, b"x"), Err(Error::InvalidArgument));
}

#[test]
fn into_device_without_unmount_then_remount() {
    let mut fs = fresh();
    fs.write_file("durable", b"yes").unwrap();
    let f = fs.open("synced", OpenMode::Append).unwrap();
    fs.write(f, b"one").unwrap();
    fs.sync(f).unwrap();
    fs.write(f, b"two").unwrap();
    let g = fs.open("lost", OpenMode::CreateTruncate).unwrap();
    fs.write(g, &pattern(6000, 7)).unwrap();
    let dev = fs.into_device();
    let mut fs = Fs::mount(dev, &LfsConfig::default())
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(read(&mut fs, "durable").unwrap(), b"yes");
    assert_eq!(read(&mut fs, "synced").unwrap(), b"one");
    // Created at open, contents never committed.
    assert_eq!(fs.file_size("lost").unwrap(), 0);
    // The blocks written for "lost" are free again.
    fs.write_file("after", &pattern(6000, 8)).unwrap();
    assert_eq!(read(&mut fs, "after").unwrap(), pattern(6000, 8));
}

#[test]
fn io_errors_poison_the_handle() {
    let mut fs = fresh();
    let f = fs.open("f", OpenMode::Append).unwrap();
    fs.write(f, b"committed").unwrap();
    fs.sync(f).unwrap();
    fs.device_mut().fail_prog = true;
    // 5000 bytes overflow the inline limit and the cache, so littlefs programs.
    assert_eq!(fs.write(f, &pattern(5000, 9)), Err(Error::Io));
    fs.device_mut().fail_prog = false;
    assert_eq!(fs.write(f, b"more"), Err(Error::Io));
    assert_eq!(fs.sync(f), Err(Error::Io));
    assert_eq!(fs.close(f), Err(Error::Io));
    assert_eq!(fs.close(f), Err(Error::InvalidArgument));
    assert_eq!(read(&mut fs, "f").unwrap(), b"committed");

    // write_file under I/O errors keeps the old contents.
    fs.device_mut().fail_prog = true;
    assert_eq!(fs.write_file("f", &pattern(5000, 1)), Err(Error::Io));
    fs.device_mut().fail_prog = false;
    assert_eq!(read(&mut fs, "f").unwrap(), b"committed");
    let fs = remount(fs);
    drop(fs);
}

#[test]
fn bad_blocks_are_relocated() {
    let mut fs = fresh_with(64, &LfsConfig::default());
    // Every block from 2 to 20 goes bad; littlefs must route around them.
    fs.device_mut().bad = (2..20).collect();
    for i in 0..5u8 {
        fs.write_file(&std::format!("f{i}"), &pattern(5000, i))
            .unwrap();
    }
    let mut fs = remount(fs);
    for i in 0..5u8 {
        assert_eq!(
            read(&mut fs, &std::format!("f{i}")).unwrap(),
            pattern(5000, i)
        );
    }
}

#[test]
fn config_validation() {
    let bad = |cfg: LfsConfig| {
        let (e, _) = Fs::format(TestFlash::new(16), &cfg).err().unwrap();
        assert_eq!(e, Error::InvalidArgument, "{cfg:?}");
    };
    let d = LfsConfig::default();
    bad(LfsConfig {
        cache_size: 100,
        ..d
    });
    bad(LfsConfig { cache_size: 8, ..d });
    bad(LfsConfig {
        cache_size: 8192,
        ..d
    });
    bad(LfsConfig {
        block_cycles: 0,
        ..d
    });
    bad(LfsConfig { name_max: 256, ..d });
    bad(LfsConfig {
        inline_max: 1024,
        cache_size: 1024,
        ..d
    });
    bad(LfsConfig {
        inline_max: 600,
        ..d
    });
    bad(LfsConfig {
        metadata_max: 5000,
        ..d
    });
    bad(LfsConfig {
        metadata_max: 1000,
        ..d
    });
    bad(LfsConfig {
        compact_thresh: 100,
        ..d
    });
    bad(LfsConfig {
        compact_thresh: 5000,
        ..d
    });

    // Accepted extremes.
    for cfg in [
        LfsConfig {
            cache_size: 16,
            block_cycles: -1,
            lookahead_size: 0,
            ..d
        },
        LfsConfig {
            cache_size: 4096,
            inline_max: u32::MAX,
            compact_thresh: u32::MAX,
            ..d
        },
        LfsConfig {
            metadata_max: 1024,
            inline_max: 128,
            compact_thresh: 2048,
            ..d
        },
    ] {
        let mut fs = fresh_with(16, &cfg);
        fs.write_file("x", &pattern(700, 1)).unwrap();
        fs.set_attr("x", 1, &[1; 100]).unwrap();
        fs.gc().unwrap();
        assert_eq!(read(&mut fs, "x").unwrap(), pattern(700, 1));
    }

    // Bad geometries.
    let g = |read_size, prog_size, block_size, block_count| Geometry {
        read_size,
        prog_size,
        block_size,
        block_count,
    };
    for geo in [
        g(0, 16, 4096, 8),
        g(16, 0, 4096, 8),
        g(16, 16, 64, 8),
        g(16, 48, 4096, 8),
        g(16, 16, 4096, 1),
    ] {
        assert_eq!(check_geometry(&geo), Err(Error::InvalidArgument), "{geo:?}");
    }

    // Default cache clamping.
    assert_eq!(resolve_cache(&g(16, 16, 4096, 8), 0), Ok(512));
    assert_eq!(resolve_cache(&g(16, 16, 256, 8), 0), Ok(256));
    assert_eq!(resolve_cache(&g(1, 1, 4096, 8), 0), Ok(512));
    assert_eq!(resolve_cache(&g(16, 48, 4800, 8), 0), Ok(480));
    assert_eq!(resolve_cache(&g(1024, 2048, 8192, 8), 0), Ok(2048));
    assert_eq!(resolve_cache(&g(16, 16, 128 * 1024, 8), 0), Ok(512));
    assert_eq!(resolve_cache(&g(24, 24, 1200, 8), 0), Ok(240));
}

/// Prints what the engine's primitives cost on this geometry (not asserted: figures for the
/// design). Run with `--nocapture`.
#[test]
fn measure_costs() {
    let mut fs = fresh();
    let m = |fs: &mut Fs<TestFlash>, what: &str, op: &mut dyn FnMut(&mut Fs<TestFlash>)| {
        fs.device_mut().reset();
        op(fs);
        let (r, p, e) = fs.device().counts();
        println!("{what:<48} read {r:>7} B  prog {p:>6} B  erases {e}");
    };
    fs.write_file("holder", b"").unwrap();
    let rec = pattern(64, 1);
    m(&mut fs, "set_attr 64 B (first)", &mut |fs| {
        fs.set_attr("holder", 1, &rec).unwrap()
    });
    m(&mut fs, "set_attr 64 B (overwrite)", &mut |fs| {
        fs.set_attr("holder", 1, &rec).unwrap()
    });
    m(&mut fs, "set_attr 64 B (new id)", &mut |fs| {
        fs.set_attr("holder", 2, &rec).unwrap()
    });
    m(&mut fs, "set_attr 64 B on /", &mut |fs| {
        fs.set_attr("/", 1, &rec).unwrap()
    });
    m(&mut fs, "get_attr 64 B", &mut |fs| {
        fs.get_attr("holder", 1, &mut [0u8; 64]).unwrap();
    });
    m(&mut fs, "remove_attr (present)", &mut |fs| {
        fs.remove_attr("holder", 2).unwrap()
    });
    m(&mut fs, "remove_attr (absent)", &mut |fs| {
        fs.remove_attr("holder", 2).unwrap()
    });
    // Averages over many overwrites on a fresh volume, compactions included: the number of
    // live attributes sets how much each compaction copies and how often it comes.
    for ids in [1u64, 8, 40] {
        let mut fs = fresh();
        fs.write_file("holder", b"").unwrap();
        let n = 800u64;
        fs.device_mut().reset();
        for i in 0..n {
            fs.set_attr("holder", (i % ids) as u8, &pattern(64, i as u8))
                .unwrap();
        }
        let (r, p, e) = fs.device().counts();
        println!(
            "set_attr 64 B, average of {n}, {ids:>2} live ids       read {:>7} B  prog {:>6} B  erases {:.4}",
            r / n,
            p / n,
            e as f64 / n as f64
        );
    }
    m(&mut fs, "write_file 64 B (create)", &mut |fs| {
        fs.write_file("small", &rec).unwrap()
    });
    m(&mut fs, "write_file 64 B (overwrite)", &mut |fs| {
        fs.write_file("small", &rec).unwrap()
    });
    m(&mut fs, "write_file 4096 B (create)", &mut |fs| {
        fs.write_file("block", &pattern(4096, 2)).unwrap()
    });
    m(&mut fs, "rename over existing", &mut |fs| {
        fs.write_file("tmp", &rec).unwrap();
        fs.rename("tmp", "small").unwrap();
    });
    let mut id = None;
    m(&mut fs, "open Read (4 KiB file)", &mut |fs| {
        id = Some(fs.open("block", OpenMode::Read).unwrap())
    });
    let f = id.unwrap();
    m(&mut fs, "read_at 64 B at 1000", &mut |fs| {
        fs.read_at(f, 1000, &mut [0u8; 64]).unwrap();
    });
    m(&mut fs, "close Read", &mut |fs| fs.close(f).unwrap());
    m(&mut fs, "open Append (new)", &mut |fs| {
        id = Some(fs.open("log", OpenMode::Append).unwrap())
    });
    let f = id.unwrap();
    m(&mut fs, "append 4096 B + sync", &mut |fs| {
        fs.write(f, &pattern(4096, 3)).unwrap();
        fs.sync(f).unwrap();
    });
    m(&mut fs, "append 64 B + sync", &mut |fs| {
        fs.write(f, &rec).unwrap();
        fs.sync(f).unwrap();
    });
    m(&mut fs, "close Append", &mut |fs| fs.close(f).unwrap());
    m(&mut fs, "used_blocks (traversal)", &mut |fs| {
        fs.used_blocks().unwrap();
    });
    m(&mut fs, "gc", &mut |fs| fs.gc().unwrap());
    let mut dev = fs.into_device();
    dev.reset();
    let mut fs = Fs::mount(dev, &LfsConfig::default())
        .map_err(|(e, _)| e)
        .unwrap();
    let (r, p, e) = fs.device().counts();
    println!("{:<48} read {r:>7} B  prog {p:>6} B  erases {e}", "mount");
    m(&mut fs, "first write_file 4096 B after mount", &mut |fs| {
        fs.write_file("block2", &pattern(4096, 4)).unwrap()
    });
}
