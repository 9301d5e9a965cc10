//! Image files: the geometry (given or read from littlefs' superblock), the device (read-write
//! through `FileFlash`, or read-only), and an open database over it.
//!
//! An image is the raw flash and nothing else: block `b` is at byte `b * block_size`, so the
//! file size is `block_size * block_count`. littlefs records the block size and count in its
//! superblock (the magic `littlefs` near the start of block 0 and of block 1); read and program
//! sizes are not recorded anywhere and default to the QEMU board's (16 and 16).

use crate::error::{db_err, io_err, CliError, Res};
use crate::keys::{random_salt, KeyMaterial};
use cairndb::db::{Config, Database};
use cairndb::engine::Store;
use cairndb::flash::{BlockDevice, FileFlash, FlashError, Geometry};
use cairndb::format::{RootHeader, FLAG_ENCRYPTED, FLAG_PASSPHRASE};
use cairndb::lfs::{Fs, LfsConfig};
use cairndb::Error as DbError;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The QEMU board's read and program sizes (samples/freertos/board.c, `nor_config`).
pub const DEFAULT_READ_SIZE: u32 = 16;
pub const DEFAULT_PROG_SIZE: u32 = 16;
/// The block size `create` uses when none is given (a common NOR sector).
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// Largest root record read to learn the image's encryption before opening it.
const MAX_ROOT: usize = 16 * 1024;

/// Everything needed to open or create an image, from the command line.
#[derive(Debug, Clone)]
pub struct ImageOpts {
    pub block_size: Option<u32>,
    pub block_count: Option<u32>,
    pub read_size: u32,
    pub prog_size: u32,
    pub config: Config,
    pub key: KeyMaterial,
    pub kdf_iterations: u32,
    pub wall_clock: bool,
    /// fsync after every commit, not only at the end.
    pub sync_each: bool,
}

/// How a command uses the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The file is opened read-only; what the library writes stays in RAM and is dropped.
    ReadOnly,
    ReadWrite,
    /// Read-write, dropping WAL frames that fail authentication (before `repair`).
    Repair,
}

/// An image opened read-only: the file is never written. Programs and erases go to copies of
/// the blocks they touch, kept in RAM and discarded with the device, so everything the library
/// does on the side of a read (a database-time mark, an event) works and leaves no trace.
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: File,
    geometry: Geometry,
    /// Blocks written since open (block -> contents).
    changed: HashMap<u32, Vec<u8>>,
}

impl ReadOnlyFile {
    fn range(&self, block: u32, off: u32, len: usize) -> Result<(usize, usize), FlashError> {
        let end = u64::from(off) + u64::try_from(len).map_err(|_| FlashError::Io)?;
        if block >= self.geometry.block_count || end > u64::from(self.geometry.block_size) {
            return Err(FlashError::Io);
        }
        Ok((off as usize, end as usize))
    }

    /// The block's contents for a change, read from the file on the first one.
    fn changed_block(&mut self, block: u32) -> Result<&mut Vec<u8>, FlashError> {
        if !self.changed.contains_key(&block) {
            let mut b = vec![0u8; self.geometry.block_size as usize];
            self.read_file(block, 0, &mut b)?;
            self.changed.insert(block, b);
        }
        self.changed.get_mut(&block).ok_or(FlashError::Io)
    }

    fn read_file(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let pos = u64::from(block) * u64::from(self.geometry.block_size) + u64::from(off);
        self.file
            .seek(SeekFrom::Start(pos))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|_| FlashError::Io)
    }
}

impl BlockDevice for ReadOnlyFile {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let (a, b) = self.range(block, off, buf.len())?;
        match self.changed.get(&block).and_then(|c| c.get(a..b)) {
            Some(c) => {
                buf.copy_from_slice(c);
                Ok(())
            }
            None => self.read_file(block, off, buf),
        }
    }

    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let (a, b) = self.range(block, off, data.len())?;
        let blk = self.changed_block(block)?;
        for (c, d) in blk
            .get_mut(a..b)
            .ok_or(FlashError::Io)?
            .iter_mut()
            .zip(data)
        {
            *c &= *d; // NOR: a program only clears bits
        }
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        self.range(block, 0, 0)?;
        let size = self.geometry.block_size as usize;
        self.changed.insert(block, vec![0xFF; size]);
        Ok(())
    }
}

/// The image file, written in place. littlefs asks for a sync after each commit; by default
/// that is deferred to the end of the run (one `fsync` when the session closes): every write
/// reaches the file in order as it is made, so a `cairn` killed half-way leaves what a power
/// cut on the device would, and only a crash of the host itself could lose the order. With
/// `sync_each` every sync is an `fsync`, as on the device.
#[derive(Debug)]
pub struct ImageFile {
    flash: FileFlash,
    sync_each: bool,
}

impl ImageFile {
    /// Make everything written so far durable.
    pub fn sync_now(&mut self) -> Result<(), FlashError> {
        self.flash.sync()
    }
}

/// The device under a session.
#[derive(Debug)]
pub enum Dev {
    ReadWrite(ImageFile),
    ReadOnly(ReadOnlyFile),
}

impl BlockDevice for Dev {
    fn geometry(&self) -> Geometry {
        match self {
            Dev::ReadWrite(d) => d.flash.geometry(),
            Dev::ReadOnly(d) => d.geometry(),
        }
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        match self {
            Dev::ReadWrite(d) => d.flash.read(block, off, buf),
            Dev::ReadOnly(d) => d.read(block, off, buf),
        }
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        match self {
            Dev::ReadWrite(d) => d.flash.prog(block, off, data),
            Dev::ReadOnly(d) => d.prog(block, off, data),
        }
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        match self {
            Dev::ReadWrite(d) => d.flash.erase(block),
            Dev::ReadOnly(d) => d.erase(block),
        }
    }
    fn sync(&mut self) -> Result<(), FlashError> {
        match self {
            Dev::ReadWrite(d) if d.sync_each => d.flash.sync(),
            Dev::ReadWrite(_) => Ok(()),
            Dev::ReadOnly(_) => Ok(()),
        }
    }
}

/// What littlefs' superblock says (the inline struct after the `littlefs` magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub version: u32,
    pub block_size: u32,
    pub block_count: u32,
    pub name_max: u32,
    pub file_max: u32,
    pub attr_max: u32,
}

impl Superblock {
    pub fn version_text(&self) -> String {
        format!("{}.{}", self.version >> 16, self.version & 0xffff)
    }
}

/// The superblock entry in the metadata block starting at `start`, if there is one: the magic
/// sits right after the revision count and one or two tags, and the superblock struct right
/// after the magic and its tag.
fn superblock_at(file: &mut File, start: u64) -> Option<Superblock> {
    let mut head = [0u8; 64];
    file.seek(SeekFrom::Start(start)).ok()?;
    file.read_exact(&mut head).ok()?;
    let m = head.windows(8).take(24).position(|w| w == b"littlefs")?;
    let s = head.get(m + 12..m + 36)?;
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            s.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let sb = Superblock {
        version: word(0)?,
        block_size: word(1)?,
        block_count: word(2)?,
        name_max: word(3)?,
        file_max: word(4)?,
        attr_max: word(5)?,
    };
    (sb.version >> 16 == 2 && sb.block_size >= 128 && sb.block_count > 0).then_some(sb)
}

/// The superblock of the image, from block 0, or from block 1 at a power-of-two block size
/// (when block 0 was being erased or rewritten).
pub fn find_superblock(path: &Path, len: u64, block_size: Option<u32>) -> Option<Superblock> {
    let mut file = File::open(path).ok()?;
    if let Some(sb) = superblock_at(&mut file, 0) {
        if block_size.is_none_or(|bs| bs == sb.block_size) {
            return Some(sb);
        }
    }
    let candidates: Vec<u32> = match block_size {
        Some(bs) => vec![bs],
        None => (7..=20).map(|p| 1u32 << p).collect(),
    };
    candidates
        .into_iter()
        .filter(|bs| u64::from(*bs) * 2 <= len)
        .find_map(|bs| superblock_at(&mut file, u64::from(bs)).filter(|sb| sb.block_size == bs))
}

/// The geometry of an existing image: the block size given or read from the superblock, the
/// block count from the file size (which must agree with the superblock).
pub fn existing_geometry(path: &Path, opts: &ImageOpts) -> Res<(Geometry, Option<Superblock>)> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let len = meta.len();
    if len == 0 {
        return Err(CliError::corrupt(format!(
            "{}: the image is empty",
            path.display()
        )));
    }
    let sb = find_superblock(path, len, opts.block_size);
    if let (Some(bs), None) = (opts.block_size, sb) {
        if let Some(found) = find_superblock(path, len, None) {
            return Err(CliError::corrupt(format!(
                "{}: its littlefs superblock says {}-byte blocks, --block-size says {bs}",
                path.display(),
                found.block_size
            )));
        }
    }
    let block_size = match (opts.block_size, sb) {
        (Some(bs), _) => bs,
        (None, Some(sb)) => sb.block_size,
        (None, None) => {
            return Err(CliError::corrupt(format!(
                "{}: no littlefs superblock found (blank or damaged image): give --block-size \
                 to open it anyway",
                path.display()
            )))
        }
    };
    if block_size == 0 || len % u64::from(block_size) != 0 {
        return Err(CliError::corrupt(format!(
            "{}: the image is {len} bytes, not a whole number of {block_size}-byte blocks",
            path.display()
        )));
    }
    let count = u32::try_from(len / u64::from(block_size))
        .map_err(|_| CliError::corrupt(format!("{}: too many blocks", path.display())))?;
    if let Some(want) = opts.block_count {
        if want != count {
            return Err(CliError::corrupt(format!(
                "{}: the image holds {count} blocks of {block_size} bytes, --block-count says \
                 {want}",
                path.display()
            )));
        }
    }
    if let Some(sb) = sb {
        if sb.block_count != count {
            return Err(CliError::corrupt(format!(
                "{}: the image holds {count} blocks of {block_size} bytes but its littlefs \
                 superblock says {} (a truncated or padded dump?)",
                path.display(),
                sb.block_count
            )));
        }
    }
    let g = Geometry {
        read_size: opts.read_size,
        prog_size: opts.prog_size,
        block_size,
        block_count: count,
    };
    check_geometry(&g)?;
    Ok((g, sb))
}

pub fn check_geometry(g: &Geometry) -> Res<()> {
    let ok = g.read_size != 0
        && g.prog_size != 0
        && g.block_size >= 128
        && g.block_count >= 2
        && g.block_size % g.read_size == 0
        && g.block_size % g.prog_size == 0;
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "invalid geometry: {} blocks of {} bytes, read size {}, program size {} (blocks of \
             at least 128 bytes, at least 2 of them, multiples of the read and program sizes)",
            g.block_count, g.block_size, g.read_size, g.prog_size
        )))
    }
}

/// littlefs' configuration as the library sets it (a zero compaction threshold is half a
/// block), for mounting the volume outside a database.
pub fn lfs_config(cfg: &Config, g: &Geometry) -> LfsConfig {
    let mut lfs = cfg.lfs;
    if lfs.compact_thresh == 0 {
        lfs.compact_thresh = g.block_size / 2;
    }
    lfs
}

/// The encryption an image's root header declares.
pub fn encryption_text(h: &RootHeader) -> String {
    if h.flags & FLAG_PASSPHRASE != 0 {
        format!(
            "AES-256 + HMAC-SHA256, key from a passphrase (PBKDF2-HMAC-SHA256, {} iterations)",
            h.kdf_iterations
        )
    } else if h.flags & FLAG_ENCRYPTED != 0 {
        "AES-256 + HMAC-SHA256, raw 256-bit key".to_string()
    } else {
        "none (records carry CRC-32C)".to_string()
    }
}

/// Refuse, with a clear message, key options that cannot open an image of this header.
fn check_key_kind(h: &RootHeader, key: &KeyMaterial) -> Res<()> {
    let encrypted = h.flags & FLAG_ENCRYPTED != 0;
    let pass = h.flags & FLAG_PASSPHRASE != 0;
    match key {
        KeyMaterial::None if encrypted && pass => Err(CliError::key(
            "the image is encrypted with a passphrase: give --passphrase, --passphrase-file or \
             CAIRN_PASSPHRASE",
        )),
        KeyMaterial::None if encrypted => Err(CliError::key(
            "the image is encrypted with a raw key: give --key-file or --key-hex",
        )),
        KeyMaterial::Raw(_) | KeyMaterial::Pass(_) if !encrypted => Err(CliError::key(
            "the image is not encrypted: give no key options",
        )),
        KeyMaterial::Raw(_) if pass => Err(CliError::key(
            "the image's key comes from a passphrase: give --passphrase or --passphrase-file, \
             not a raw key",
        )),
        KeyMaterial::Pass(_) if !pass => Err(CliError::key(
            "the image is encrypted with a raw key: give --key-file or --key-hex, not a \
             passphrase",
        )),
        _ => Ok(()),
    }
}

/// Mount littlefs on `dev` (no write), or say why not.
pub fn mount(dev: Dev, cfg: &Config, path: &Path) -> Res<Fs<Dev>> {
    let g = dev.geometry();
    Fs::mount(dev, &lfs_config(cfg, &g)).map_err(|(e, _)| match e {
        DbError::Corrupt => CliError::corrupt(format!(
            "{}: no valid littlefs filesystem ({} blocks of {} bytes): blank, damaged, or \
             another geometry",
            path.display(),
            g.block_count,
            g.block_size
        )),
        DbError::Fs(code) => CliError::corrupt(format!(
            "{}: littlefs refuses to mount it (error {code}): its superblock does not match \
             the geometry ({} blocks of {} bytes)",
            path.display(),
            g.block_count,
            g.block_size
        )),
        e => db_err(e).context(path.display()),
    })
}

/// Open the device of an existing image.
pub fn open_device(path: &Path, g: Geometry, writable: bool, sync_each: bool) -> Res<Dev> {
    if writable {
        FileFlash::open(path, g)
            .map(|flash| Dev::ReadWrite(ImageFile { flash, sync_each }))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    CliError::corrupt(format!("{}: {e}", path.display()))
                }
                _ => io_err(path, e),
            })
    } else {
        let file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        Ok(Dev::ReadOnly(ReadOnlyFile {
            file,
            geometry: g,
            changed: HashMap::new(),
        }))
    }
}

/// The root header of the database in a mounted volume.
pub fn read_header(fs: &mut Fs<Dev>, path: &Path) -> Res<RootHeader> {
    Store::read_header(fs, MAX_ROOT)
        .map(|(h, _)| h)
        .map_err(|e| match e {
            DbError::NotFormatted => CliError::corrupt(format!(
                "{}: a littlefs volume without a cairndb database",
                path.display()
            )),
            e => db_err(e).context(path.display()),
        })
}

/// An open database on an image file.
pub struct Session {
    pub db: Database<Dev>,
    pub path: PathBuf,
    pub geometry: Geometry,
    pub superblock: Option<Superblock>,
    pub header: RootHeader,
    pub read_only: bool,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn platform(db: &mut Database<Dev>, opts: &ImageOpts) {
    db.set_random(Box::new(|buf| {
        // Without a random source the library derives ids from the database's state.
        let _ = getrandom::fill(buf);
    }));
    if opts.wall_clock {
        db.set_clock(Box::new(wall_ms));
    }
}

impl Session {
    /// Open the database of an existing image.
    pub fn open(path: &Path, opts: &ImageOpts, mode: Mode) -> Res<Session> {
        let (g, sb) = existing_geometry(path, opts)?;
        // Learn the encryption first, read-only, to explain a key that cannot fit.
        let mut fs = mount(open_device(path, g, false, false)?, &opts.config, path)?;
        let header = read_header(&mut fs, path)?;
        drop(fs.into_device());
        check_key_kind(&header, &opts.key)?;
        let dev = open_device(path, g, mode != Mode::ReadOnly, opts.sync_each)?;
        let key = opts.key.key([0; 16], opts.kdf_iterations);
        let opened = match mode {
            Mode::Repair => Database::open_for_repair(dev, &opts.config, &key),
            _ => Database::open(dev, &opts.config, &key),
        };
        let mut db = opened.map_err(|(e, _)| match e {
            DbError::WrongKey => CliError::key(format!(
                "{}: wrong key: {} does not open this image",
                path.display(),
                opts.key.describe()
            )),
            e => db_err(e).context(path.display()),
        })?;
        platform(&mut db, opts);
        Ok(Session {
            db,
            path: path.to_path_buf(),
            geometry: g,
            superblock: sb,
            header,
            read_only: mode == Mode::ReadOnly,
        })
    }

    /// Create a new image file of `g` and format an empty database in it.
    pub fn create(path: &Path, opts: &ImageOpts, g: Geometry, force: bool) -> Res<Session> {
        check_geometry(&g)?;
        if path.exists() && !force {
            return Err(CliError::failed(format!(
                "{}: exists already (give --force to overwrite it)",
                path.display()
            )));
        }
        let dev = FileFlash::create(path, g).map_err(|e| io_err(path, e))?;
        let salt = random_salt()?;
        let key = opts.key.key(salt, opts.kdf_iterations);
        let dev = Dev::ReadWrite(ImageFile {
            flash: dev,
            sync_each: opts.sync_each,
        });
        let mut db = match Database::format(dev, &opts.config, &key) {
            Ok(db) => db,
            Err((e, dev)) => {
                drop(dev);
                let _ = std::fs::remove_file(path);
                return Err(db_err(e).context(path.display()));
            }
        };
        platform(&mut db, opts);
        // Read the header back as a reader of the image would (it is what `info` shows).
        let header = {
            let dev = open_device(path, g, false, false)?;
            let mut fs = mount(dev, &opts.config, path)?;
            let h = read_header(&mut fs, path)?;
            drop(fs.into_device());
            h
        };
        Ok(Session {
            db,
            path: path.to_path_buf(),
            geometry: g,
            superblock: find_superblock(path, g.capacity(), Some(g.block_size)),
            header,
            read_only: false,
        })
    }

    /// Close: a read-write session unmounts cleanly (folding the log); a read-only one drops
    /// everything without a write.
    pub fn close(self) -> Res<()> {
        if self.read_only {
            drop(self.db.into_device());
            return Ok(());
        }
        let (r, mut dev) = self.db.close();
        let synced = match &mut dev {
            Dev::ReadWrite(f) => f.sync_now(),
            Dev::ReadOnly(_) => Ok(()),
        };
        drop(dev);
        r.map_err(|e| db_err(e).context(format!("closing {}", self.path.display())))?;
        synced.map_err(|_| CliError::failed(format!("{}: fsync failed", self.path.display())))
    }

    /// A library error from this session, with a hint when a read-only session was asked to
    /// write.
    pub fn err(&self, e: DbError) -> CliError {
        crate::error::db_err_ro(self.read_only, e)
    }
}
