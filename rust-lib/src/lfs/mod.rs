//! A thin, owned, safe wrapper over the littlefs C library (v2.9, through `littlefs2-sys`),
//! with the geometry chosen at run time.
//!
//! [`Fs`] owns the block device, littlefs' state and every buffer littlefs uses (no malloc in
//! C). Files are opened into a bounded table of slots, each with its own cache, and named by
//! [`FileId`]s that are checked on every use: a stale or out-of-range id is an
//! [`Error::InvalidArgument`], never undefined behaviour.
//!
//! littlefs is built with `LFS_NO_ASSERT`, so its preconditions (configuration values, open
//! modes, handle states) are checked here before any C call. Hostile images are littlefs'
//! responsibility: it bounds-checks every block address and checksums every commit, and the
//! tests mount garbage and bit-flipped images.
//!
//! A device method that panics aborts the program: panics cannot unwind through the C frames.
//!
//! For a `no_std` target, `lfs.c` needs `strspn`, `strcspn`, `strchr` and `__popcountsi2` at
//! link time (rustc links with `-nodefaultlibs`): link `-lc -lgcc` or provide them.

use crate::flash::{BlockDevice, FlashError, Geometry};
use crate::{Error, Result};
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr;
use littlefs2_sys as sys;

mod owned;
#[cfg(test)]
mod tests;

use owned::{Owned, RawBuf};

/// Longest path accepted, in bytes (littlefs' own name limit is per component).
pub const PATH_MAX: usize = 255;
/// Largest custom attribute littlefs stores, in bytes.
pub const ATTR_MAX: usize = sys::LFS_ATTR_MAX as usize;

/// Cache size used when [`LfsConfig::cache_size`] is 0 (clamped to the geometry).
const DEFAULT_CACHE: u32 = 512;
/// Lookahead size used when [`LfsConfig::lookahead_size`] is 0.
const DEFAULT_LOOKAHEAD: u32 = 32;

/// littlefs tuning. Geometry comes from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfsConfig {
    /// Size of each cache (read, program, one per open file), in bytes. 0: 512, clamped to a
    /// divisor of the block size that is a multiple of the read and program sizes. Otherwise
    /// it must be such a value. Also bounds the inline-file size.
    pub cache_size: u32,
    /// Lookahead bitmap size in bytes (8 blocks per byte). 0: 32.
    pub lookahead_size: u32,
    /// Erase cycles before a metadata pair is moved (wear levelling); -1 disables; 0 invalid.
    pub block_cycles: i32,
    /// Number of file slots for [`Fs::open`]. Each slot allocates a cache on first use.
    pub max_open_files: usize,
    /// Largest inline file, in bytes. 0: littlefs default (min(cache, 1022, metadata/8));
    /// `u32::MAX`: no inline files.
    pub inline_max: u32,
    /// Bytes of each metadata block used (bounds compaction time). 0: the whole block.
    pub metadata_max: u32,
    /// [`Fs::gc`] compacts metadata pairs filled beyond this many bytes. 0: littlefs default
    /// (~88 % of a block); `u32::MAX`: gc never compacts. Otherwise in block/2..=block.
    pub compact_thresh: u32,
    /// Longest file name, at most 255 (stored in the superblock at format). 0: 255.
    pub name_max: u32,
}

impl Default for LfsConfig {
    fn default() -> Self {
        LfsConfig {
            cache_size: 0,
            lookahead_size: DEFAULT_LOOKAHEAD,
            block_cycles: 500,
            max_open_files: 8,
            inline_max: 0,
            metadata_max: 0,
            compact_thresh: 0,
            name_max: 0,
        }
    }
}

/// An open file in an [`Fs`]. Becomes stale when closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    slot: usize,
    generation: u32,
}

impl FileId {
    /// The slot index, below [`LfsConfig::max_open_files`].
    pub fn index(self) -> usize {
        self.slot
    }
}

/// How [`Fs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Write only; created if missing, truncated if present (committed at sync/close).
    CreateTruncate,
    /// Write only; created if missing; every write appends.
    Append,
}

impl OpenMode {
    fn flags(self) -> c_int {
        let f = match self {
            OpenMode::Read => sys::lfs_open_flags_LFS_O_RDONLY,
            OpenMode::CreateTruncate => {
                sys::lfs_open_flags_LFS_O_WRONLY
                    | sys::lfs_open_flags_LFS_O_CREAT
                    | sys::lfs_open_flags_LFS_O_TRUNC
            }
            OpenMode::Append => {
                sys::lfs_open_flags_LFS_O_WRONLY
                    | sys::lfs_open_flags_LFS_O_CREAT
                    | sys::lfs_open_flags_LFS_O_APPEND
            }
        };
        // The flags are small positive constants.
        f as c_int
    }

    fn writes(self) -> bool {
        !matches!(self, OpenMode::Read)
    }
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// Maps a negative littlefs code to the crate error.
fn fs_error(code: c_int) -> Error {
    match code {
        sys::lfs_error_LFS_ERR_NOENT => Error::NotFound,
        sys::lfs_error_LFS_ERR_NOSPC => Error::NoSpace,
        sys::lfs_error_LFS_ERR_CORRUPT => Error::Corrupt,
        sys::lfs_error_LFS_ERR_IO => Error::Io,
        sys::lfs_error_LFS_ERR_EXIST => Error::Exists,
        sys::lfs_error_LFS_ERR_NOMEM => Error::NoMemory,
        sys::lfs_error_LFS_ERR_NAMETOOLONG => Error::InvalidName,
        other => Error::Fs(other),
    }
}

fn check(code: c_int) -> Result<()> {
    if code < 0 {
        Err(fs_error(code))
    } else {
        Ok(())
    }
}

/// A NUL-terminated copy of a path, on the stack.
struct CPath {
    buf: [u8; PATH_MAX + 1],
}

impl CPath {
    fn new(path: &str) -> Result<Self> {
        let b = path.as_bytes();
        if b.is_empty() || b.len() > PATH_MAX || b.contains(&0) {
            return Err(Error::InvalidName);
        }
        let mut buf = [0u8; PATH_MAX + 1];
        buf[..b.len()].copy_from_slice(b);
        Ok(CPath { buf })
    }

    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

// ---- block-device callbacks ----------------------------------------------------------------

fn flash_rc(r: core::result::Result<(), FlashError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(FlashError::Corrupt) => sys::lfs_error_LFS_ERR_CORRUPT,
        Err(FlashError::Io) => sys::lfs_error_LFS_ERR_IO,
    }
}

/// The device behind a littlefs config.
///
/// # Safety
/// `c` must be the config of a live `Inner<D>` (its context points at that `Inner`'s device),
/// and no Rust reference to the device may be live: both hold while littlefs runs inside an
/// `Fs` method, which takes `&mut self` and holds no reference to the device across C calls.
unsafe fn device<'a, D>(c: *const sys::lfs_config) -> &'a mut D {
    // SAFETY: guaranteed by the caller; `ManuallyDrop<D>` has the layout of `D`.
    unsafe { &mut *(*c).context.cast::<D>() }
}

unsafe extern "C" fn bd_read<D: BlockDevice>(
    c: *const sys::lfs_config,
    block: sys::lfs_block_t,
    off: sys::lfs_off_t,
    buffer: *mut c_void,
    size: sys::lfs_size_t,
) -> c_int {
    if size == 0 {
        return 0;
    }
    // SAFETY: littlefs hands back the config of the `Fs` whose method is running.
    let dev = unsafe { device::<D>(c) };
    // SAFETY: littlefs passes a buffer valid for `size` bytes of writes, not aliased by Rust.
    let buf = unsafe { core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size as usize) };
    flash_rc(dev.read(block, off, buf))
}

unsafe extern "C" fn bd_prog<D: BlockDevice>(
    c: *const sys::lfs_config,
    block: sys::lfs_block_t,
    off: sys::lfs_off_t,
    buffer: *const c_void,
    size: sys::lfs_size_t,
) -> c_int {
    if size == 0 {
        return 0;
    }
    // SAFETY: as in `bd_read`.
    let dev = unsafe { device::<D>(c) };
    // SAFETY: littlefs passes a buffer valid for `size` bytes of reads (its program cache or
    // the caller's data, neither mutably borrowed by Rust during the call).
    let data = unsafe { core::slice::from_raw_parts(buffer.cast::<u8>(), size as usize) };
    flash_rc(dev.prog(block, off, data))
}

unsafe extern "C" fn bd_erase<D: BlockDevice>(
    c: *const sys::lfs_config,
    block: sys::lfs_block_t,
) -> c_int {
    // SAFETY: as in `bd_read`.
    let dev = unsafe { device::<D>(c) };
    flash_rc(dev.erase(block))
}

unsafe extern "C" fn bd_sync<D: BlockDevice>(c: *const sys::lfs_config) -> c_int {
    // SAFETY: as in `bd_read`.
    let dev = unsafe { device::<D>(c) };
    flash_rc(dev.sync())
}

// ---- configuration ---------------------------------------------------------------------------

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Rejects geometries littlefs cannot use (its own asserts are compiled out).
fn check_geometry(g: &Geometry) -> Result<()> {
    let ok = g.read_size != 0
        && g.prog_size != 0
        && g.block_size >= 128
        && g.block_size % g.read_size == 0
        && g.block_size % g.prog_size == 0
        && g.block_count >= 2;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

/// The cache size: `want`, checked, or the default clamped to the geometry.
fn resolve_cache(g: &Geometry, want: u32) -> Result<u32> {
    let (r, p) = (u64::from(g.read_size), u64::from(g.prog_size));
    let unit = u32::try_from(r / gcd(r, p) * p).map_err(|_| Error::InvalidArgument)?;
    if want != 0 {
        return if want % unit == 0 && g.block_size % want == 0 {
            Ok(want)
        } else {
            Err(Error::InvalidArgument)
        };
    }
    // The block size is a multiple of both sizes, hence of `unit`, so `unit` always fits.
    let limit = DEFAULT_CACHE.max(unit);
    let mut best = unit;
    let mut c = unit;
    while c <= limit {
        if g.block_size % c == 0 {
            best = c;
        }
        match c.checked_add(unit) {
            Some(n) => c = n,
            None => break,
        }
    }
    Ok(best)
}

/// Fills and validates the littlefs config (everything but the context and buffers).
fn build_config<D: BlockDevice>(g: &Geometry, cfg: &LfsConfig) -> Result<sys::lfs_config> {
    check_geometry(g)?;
    let cache = resolve_cache(g, cfg.cache_size)?;
    let lookahead = if cfg.lookahead_size == 0 {
        DEFAULT_LOOKAHEAD
    } else {
        cfg.lookahead_size
    };
    let bs = g.block_size;
    let metadata_ok = cfg.metadata_max == 0
        || (cfg.metadata_max >= 128
            && cfg.metadata_max <= bs
            && cfg.metadata_max % g.prog_size == 0
            && cfg.metadata_max % g.read_size == 0);
    let meta = if cfg.metadata_max == 0 {
        bs
    } else {
        cfg.metadata_max
    };
    let inline_ok = cfg.inline_max == 0
        || cfg.inline_max == u32::MAX
        || (cfg.inline_max <= cache
            && cfg.inline_max as usize <= ATTR_MAX
            && cfg.inline_max <= meta / 8);
    let compact_ok = cfg.compact_thresh == 0
        || cfg.compact_thresh == u32::MAX
        || (cfg.compact_thresh >= bs / 2 && cfg.compact_thresh <= bs);
    let ok = metadata_ok
        && inline_ok
        && compact_ok
        && cfg.block_cycles != 0
        && cfg.name_max <= sys::LFS_NAME_MAX;
    if !ok {
        return Err(Error::InvalidArgument);
    }
    Ok(sys::lfs_config {
        context: ptr::null_mut(),
        read: Some(bd_read::<D>),
        prog: Some(bd_prog::<D>),
        erase: Some(bd_erase::<D>),
        sync: Some(bd_sync::<D>),
        read_size: g.read_size,
        prog_size: g.prog_size,
        block_size: bs,
        block_count: g.block_count,
        block_cycles: cfg.block_cycles,
        cache_size: cache,
        lookahead_size: lookahead,
        compact_thresh: cfg.compact_thresh,
        read_buffer: ptr::null_mut(),
        prog_buffer: ptr::null_mut(),
        lookahead_buffer: ptr::null_mut(),
        name_max: cfg.name_max,
        file_max: 0,
        attr_max: 0,
        metadata_max: cfg.metadata_max,
        inline_max: cfg.inline_max,
    })
}

// ---- state -----------------------------------------------------------------------------------

/// A littlefs file handle with its config and cache; never moves while open.
struct FileSlot {
    file: sys::lfs_file_t,
    fcfg: sys::lfs_file_config,
    _cache: RawBuf,
}

impl FileSlot {
    fn try_new(cache_size: u32) -> Option<Owned<FileSlot>> {
        let cache = RawBuf::try_zeroed(cache_size as usize)?;
        let fcfg = sys::lfs_file_config {
            buffer: cache.as_ptr().cast(),
            attrs: ptr::null_mut(),
            attr_count: 0,
        };
        Owned::try_new(FileSlot {
            file: Default::default(),
            fcfg,
            _cache: cache,
        })
        .ok()
    }
}

/// Bookkeeping of one slot of the open-file table.
struct SlotEntry {
    /// Allocated on first use and kept, so reopening allocates nothing.
    slot: Option<Owned<FileSlot>>,
    /// Bumped on close; a [`FileId`] carries the generation it was opened in.
    generation: u32,
    mode: Option<OpenMode>,
    /// The error of a failed write or sync. littlefs clears its own error flag on the next
    /// successful write, after which a sync would commit a file missing the failed chunk, so
    /// a poisoned handle refuses writes and syncs, and close discards its unsynced changes.
    poison: Option<Error>,
}

struct Inner<D> {
    lfs: sys::lfs_t,
    cfg: sys::lfs_config,
    /// The handle used by `list_dir`, closed before it returns (also when unwinding).
    dir: sys::lfs_dir_t,
    /// Reached by the C callbacks through `cfg.context`; dropped by `Fs::drop` or moved out.
    dev: ManuallyDrop<D>,
    geometry: Geometry,
    _read_buf: RawBuf,
    _prog_buf: RawBuf,
    _lookahead: RawBuf,
    /// The handle used by `read_file`/`write_file`, so they work with every slot in use.
    scratch: Owned<FileSlot>,
    slots: Vec<SlotEntry>,
}

/// A mounted littlefs volume that owns its device.
pub struct Fs<D: BlockDevice> {
    inner: Owned<Inner<D>>,
}

// SAFETY: `Fs` exclusively owns the device and all of littlefs' state; the raw pointers inside
// only point into that owned state, so moving it to another thread moves everything together.
unsafe impl<D: BlockDevice + Send> Send for Fs<D> {}

impl<D: BlockDevice> Drop for Fs<D> {
    fn drop(&mut self) {
        // SAFETY: the device is dropped once, here; `into_device` forgets `self` instead.
        // littlefs needs no unmount, and the rest of `Inner` is freed with `inner`.
        unsafe { ManuallyDrop::drop(&mut (*self.inner.as_ptr()).dev) };
    }
}

impl<D: BlockDevice> Fs<D> {
    /// Allocates the state for `dev`; littlefs itself is not initialised yet.
    fn build(dev: D, cfg: &LfsConfig) -> core::result::Result<Self, (Error, D)> {
        let geometry = dev.geometry();
        let mut lcfg = match build_config::<D>(&geometry, cfg) {
            Ok(c) => c,
            Err(e) => return Err((e, dev)),
        };
        let cache = lcfg.cache_size;
        let bufs = (
            RawBuf::try_zeroed(cache as usize),
            RawBuf::try_zeroed(cache as usize),
            RawBuf::try_zeroed(lcfg.lookahead_size as usize),
            FileSlot::try_new(cache),
        );
        let (Some(rb), Some(pb), Some(la), Some(scratch)) = bufs else {
            return Err((Error::NoMemory, dev));
        };
        let mut slots = Vec::new();
        if slots.try_reserve_exact(cfg.max_open_files).is_err() {
            return Err((Error::NoMemory, dev));
        }
        slots.extend((0..cfg.max_open_files).map(|_| SlotEntry {
            slot: None,
            generation: 0,
            mode: None,
            poison: None,
        }));
        // Heap buffers do not move with `Inner`, so they can be set before boxing.
        lcfg.read_buffer = rb.as_ptr().cast();
        lcfg.prog_buffer = pb.as_ptr().cast();
        lcfg.lookahead_buffer = la.as_ptr().cast();
        let inner = Inner {
            lfs: Default::default(),
            cfg: lcfg,
            dir: Default::default(),
            dev: ManuallyDrop::new(dev),
            geometry,
            _read_buf: rb,
            _prog_buf: pb,
            _lookahead: la,
            scratch,
            slots,
        };
        let inner = match Owned::try_new(inner) {
            Ok(i) => i,
            Err(i) => return Err((Error::NoMemory, ManuallyDrop::into_inner(i.dev))),
        };
        let p = inner.as_ptr();
        // SAFETY: `p` is the live, never-moving allocation; the context must point into it.
        unsafe { (*p).cfg.context = (&raw mut (*p).dev).cast() };
        Ok(Fs { inner })
    }

    fn lfs(&self) -> *mut sys::lfs_t {
        // SAFETY: `inner` is live while `self` is; no reference is created.
        unsafe { &raw mut (*self.inner.as_ptr()).lfs }
    }

    fn lcfg(&self) -> *const sys::lfs_config {
        // SAFETY: as in `lfs`.
        unsafe { &raw const (*self.inner.as_ptr()).cfg }
    }

    fn scratch(&self) -> *mut FileSlot {
        // SAFETY: as in `lfs`; the scratch slot lives as long as `inner`.
        unsafe { (*self.inner.as_ptr()).scratch.as_ptr() }
    }

    fn entries(&mut self) -> &mut Vec<SlotEntry> {
        // SAFETY: littlefs never touches this field (only the slots it points to), and `&mut
        // self` makes this the only reference to it.
        unsafe { &mut (*self.inner.as_ptr()).slots }
    }

    /// Formats `dev` (erasing what littlefs needs) and gives it back.
    pub fn format(dev: D, cfg: &LfsConfig) -> core::result::Result<D, (Error, D)> {
        let fs = Self::build(dev, cfg)?;
        // SAFETY: the config and its buffers live in `fs` for the whole call; littlefs
        // deinitialises itself before returning.
        let rc = unsafe { sys::lfs_format(fs.lfs(), fs.lcfg()) };
        let dev = fs.into_device();
        match check(rc) {
            Ok(()) => Ok(dev),
            Err(e) => Err((e, dev)),
        }
    }

    /// Mounts the volume on `dev`. A blank or damaged device fails (typically
    /// [`Error::Corrupt`]; a superblock for another geometry gives `Fs(LFS_ERR_INVAL)`).
    pub fn mount(dev: D, cfg: &LfsConfig) -> core::result::Result<Self, (Error, D)> {
        let fs = Self::build(dev, cfg)?;
        // SAFETY: as in `format`; on success littlefs keeps pointers into `fs`'s allocation,
        // which never moves and outlives every later call.
        let rc = unsafe { sys::lfs_mount(fs.lfs(), fs.lcfg()) };
        match check(rc) {
            Ok(()) => Ok(fs),
            Err(e) => Err((e, fs.into_device())),
        }
    }

    /// Closes every open file (syncing it), unmounts, and gives the device back. The first
    /// error is reported; the device is returned in every case.
    pub fn unmount(mut self) -> (Result<()>, D) {
        let mut result = Ok(());
        for i in 0..self.entries().len() {
            if self.entries()[i].mode.is_some() {
                let r = self.close_slot(i);
                result = result.and(r);
            }
        }
        // SAFETY: mounted state; no file is open any more.
        let rc = unsafe { sys::lfs_unmount(self.lfs()) };
        (result.and(check(rc)), self.into_device())
    }

    /// Gives the device back without any flash I/O: unsynced data is lost, as after a power
    /// cut. littlefs needs no unmount; the next mount recovers.
    pub fn into_device(self) -> D {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `inner` is read out exactly once; the device is
        // moved out once and `Inner` never drops it, then the rest is freed.
        unsafe {
            let inner = ptr::read(&this.inner);
            let dev = ManuallyDrop::take(&mut (*inner.as_ptr()).dev);
            drop(inner);
            dev
        }
    }

    /// The device (to read counters in tests).
    pub fn device(&self) -> &D {
        // SAFETY: `&self` excludes any C call, so no callback holds the device.
        unsafe { &(*self.inner.as_ptr()).dev }
    }

    /// The device, mutably (for fault injection in tests).
    pub fn device_mut(&mut self) -> &mut D {
        // SAFETY: `&mut self` excludes any C call for the borrow's lifetime.
        unsafe { &mut (*self.inner.as_ptr()).dev }
    }

    /// The device geometry.
    pub fn geometry(&self) -> Geometry {
        // SAFETY: plain read of a field nothing else writes.
        unsafe { (*self.inner.as_ptr()).geometry }
    }

    /// The cache size in use (per cache: read, program, and one per open file).
    pub fn cache_size(&self) -> u32 {
        // SAFETY: plain read; littlefs never writes its config.
        unsafe { (*self.inner.as_ptr()).cfg.cache_size }
    }

    /// The largest file stored inline in its directory's metadata.
    pub fn inline_max(&self) -> u32 {
        // SAFETY: plain read of a value littlefs set at mount; no C call is running.
        unsafe { (*self.inner.as_ptr()).lfs.inline_max }
    }

    /// The largest custom attribute this volume accepts (1022 unless the superblock says less).
    pub fn attr_max(&self) -> u32 {
        // SAFETY: as in `inline_max`.
        unsafe { (*self.inner.as_ptr()).lfs.attr_max }
    }

    // ---- whole-file operations -------------------------------------------------------------

    /// Replaces `out` with the contents of the file at `path`. [`Error::TooLarge`] when the
    /// file is longer than `max_len` (then `out` is left empty).
    pub fn read_file(&mut self, path: &str, out: &mut Vec<u8>, max_len: usize) -> Result<()> {
        out.clear();
        let cpath = CPath::new(path)?;
        let (lfs, slot) = (self.lfs(), self.scratch());
        // SAFETY: mounted state; the scratch slot is closed (every use closes it before
        // returning), never moves, and its config points at its own cache.
        let res = unsafe {
            let file = &raw mut (*slot).file;
            let rc = sys::lfs_file_opencfg(
                lfs,
                file,
                cpath.as_ptr(),
                OpenMode::Read.flags(),
                &raw const (*slot).fcfg,
            );
            check(rc)?;
            let res = read_all(lfs, file, out, max_len);
            // A read-only close does no flash I/O.
            res.and(check(sys::lfs_file_close(lfs, file)))
        };
        if res.is_err() {
            out.clear();
        }
        res
    }

    /// Creates or truncates the file at `path`, writes `data`, and closes it. littlefs commits
    /// the new contents at close, so after a power cut the file holds the old or the new
    /// contents (a file that did not exist may appear empty: the create commits at open). On a
    /// write error the old contents are kept.
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let cpath = CPath::new(path)?;
        let (lfs, slot) = (self.lfs(), self.scratch());
        // SAFETY: as in `read_file`.
        unsafe {
            let file = &raw mut (*slot).file;
            let rc = sys::lfs_file_opencfg(
                lfs,
                file,
                cpath.as_ptr(),
                OpenMode::CreateTruncate.flags(),
                &raw const (*slot).fcfg,
            );
            check(rc)?;
            let res = write_all(lfs, file, data);
            if res.is_err() {
                // Make close discard the partial contents instead of committing them.
                (*file).flags |= sys::lfs_open_flags_LFS_F_ERRED;
            }
            let rc = sys::lfs_file_close(lfs, file);
            res.and(check(rc))
        }
    }

    /// Renames `from` to `to`, atomically replacing a file (or an empty directory) at `to`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let (a, b) = (CPath::new(from)?, CPath::new(to)?);
        // SAFETY: mounted state; both paths are NUL-terminated and outlive the call.
        check(unsafe { sys::lfs_rename(self.lfs(), a.as_ptr(), b.as_ptr()) })
    }

    /// Removes a file or an empty directory.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let p = CPath::new(path)?;
        // SAFETY: mounted state; NUL-terminated path.
        check(unsafe { sys::lfs_remove(self.lfs(), p.as_ptr()) })
    }

    fn stat(&mut self, path: &str) -> Result<sys::lfs_info> {
        let p = CPath::new(path)?;
        let mut info = sys::lfs_info::default();
        // SAFETY: mounted state; NUL-terminated path; `info` is a valid out-parameter.
        check(unsafe { sys::lfs_stat(self.lfs(), p.as_ptr(), &mut info) })?;
        Ok(info)
    }

    /// Whether a file or directory exists at `path`.
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        match self.stat(path) {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The size of the file at `path` as last committed (`Fs(LFS_ERR_ISDIR)` for a directory).
    pub fn file_size(&mut self, path: &str) -> Result<u32> {
        let info = self.stat(path)?;
        if u32::from(info.type_) == sys::lfs_type_LFS_TYPE_DIR {
            return Err(Error::Fs(sys::lfs_error_LFS_ERR_ISDIR));
        }
        Ok(info.size)
    }

    /// Creates a directory ([`Error::Exists`] if something is there).
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        let p = CPath::new(path)?;
        // SAFETY: mounted state; NUL-terminated path.
        check(unsafe { sys::lfs_mkdir(self.lfs(), p.as_ptr()) })
    }

    /// Calls `f(name, kind, size)` for each entry of the directory at `path` (in littlefs'
    /// order: sorted by name), skipping `.` and `..`. Sizes of directories are 0. An error from
    /// `f` stops the walk and is returned. A name that is not UTF-8 gives [`Error::Corrupt`].
    pub fn list_dir(
        &mut self,
        path: &str,
        f: &mut dyn FnMut(&str, EntryKind, u32) -> Result<()>,
    ) -> Result<()> {
        let p = CPath::new(path)?;
        let lfs = self.lfs();
        // SAFETY: `inner` is live; no reference is created.
        let dir = unsafe { &raw mut (*self.inner.as_ptr()).dir };
        // SAFETY: mounted state; the directory handle is closed (see `DirGuard`) and never
        // moves.
        check(unsafe { sys::lfs_dir_open(lfs, dir, p.as_ptr()) })?;

        /// Closes the handle on every exit, unwinding included, so it never stays linked.
        struct DirGuard(*mut sys::lfs_t, *mut sys::lfs_dir_t);
        impl Drop for DirGuard {
            fn drop(&mut self) {
                // SAFETY: the handle was opened on this littlefs and is still open; closing
                // only unlinks it (no flash I/O, always 0).
                unsafe { sys::lfs_dir_close(self.0, self.1) };
            }
        }
        let _guard = DirGuard(lfs, dir);

        let mut info = sys::lfs_info::default();
        loop {
            // SAFETY: the handle is open; `info` is a valid out-parameter.
            let rc = unsafe { sys::lfs_dir_read(lfs, dir, &mut info) };
            check(rc)?;
            if rc == 0 {
                return Ok(());
            }
            let name = info_name(&info)?;
            if name == "." || name == ".." {
                continue;
            }
            let (kind, size) = if u32::from(info.type_) == sys::lfs_type_LFS_TYPE_DIR {
                (EntryKind::Dir, 0)
            } else {
                (EntryKind::File, info.size)
            };
            f(name, kind, size)?;
        }
    }

    // ---- custom attributes -----------------------------------------------------------------

    /// Reads attribute `id` of `path` into `buf`. `None` when absent; otherwise its full
    /// length, which may exceed `buf.len()` (then only `buf.len()` bytes were copied; a shorter
    /// attribute leaves the rest of `buf` zeroed).
    pub fn get_attr(&mut self, path: &str, id: u8, buf: &mut [u8]) -> Result<Option<usize>> {
        let p = CPath::new(path)?;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        // SAFETY: mounted state; `buf` is valid for `len` bytes of writes (littlefs writes at
        // most min(len, attr_max)).
        let rc =
            unsafe { sys::lfs_getattr(self.lfs(), p.as_ptr(), id, buf.as_mut_ptr().cast(), len) };
        match rc {
            sys::lfs_error_LFS_ERR_NOATTR => Ok(None),
            rc if rc < 0 => Err(fs_error(rc)),
            // Non-negative: the stored length (at most 1022).
            rc => Ok(Some(rc as usize)),
        }
    }

    /// Sets attribute `id` of `path` to `data` in one atomic metadata commit (no erase unless
    /// the metadata block compacts). [`Error::TooLarge`] beyond [`Fs::attr_max`].
    pub fn set_attr(&mut self, path: &str, id: u8, data: &[u8]) -> Result<()> {
        let p = CPath::new(path)?;
        if data.len() > self.attr_max() as usize {
            return Err(Error::TooLarge);
        }
        // SAFETY: mounted state; `data` is valid for its length, which fits in u32 (checked).
        check(unsafe {
            sys::lfs_setattr(
                self.lfs(),
                p.as_ptr(),
                id,
                data.as_ptr().cast(),
                data.len() as u32,
            )
        })
    }

    /// Removes attribute `id` of `path` (no error if it was absent).
    pub fn remove_attr(&mut self, path: &str, id: u8) -> Result<()> {
        let p = CPath::new(path)?;
        // SAFETY: mounted state; NUL-terminated path.
        check(unsafe { sys::lfs_removeattr(self.lfs(), p.as_ptr(), id) })
    }

    // ---- open files ------------------------------------------------------------------------

    /// Opens `path` in a free slot. [`Error::NoMemory`] when every slot is in use.
    pub fn open(&mut self, path: &str, mode: OpenMode) -> Result<FileId> {
        let p = CPath::new(path)?;
        let lfs = self.lfs();
        let cache = self.cache_size();
        let entries = self.entries();
        let idx = entries
            .iter()
            .position(|e| e.mode.is_none())
            .ok_or(Error::NoMemory)?;
        let e = &mut entries[idx];
        let slot = match &e.slot {
            Some(s) => s.as_ptr(),
            None => {
                let s = FileSlot::try_new(cache).ok_or(Error::NoMemory)?;
                e.slot.insert(s).as_ptr()
            }
        };
        // SAFETY: mounted state; the slot is closed (its entry has no mode), never moves while
        // open, and its config points at its own cache. On failure littlefs unlinks it.
        check(unsafe {
            sys::lfs_file_opencfg(
                lfs,
                &raw mut (*slot).file,
                p.as_ptr(),
                mode.flags(),
                &raw const (*slot).fcfg,
            )
        })?;
        e.mode = Some(mode);
        e.poison = None;
        Ok(FileId {
            slot: idx,
            generation: e.generation,
        })
    }

    /// The open handle for `f`: its littlefs file, mode and poison.
    fn handle(&mut self, f: FileId) -> Result<(*mut sys::lfs_file_t, OpenMode, Option<Error>)> {
        let e = self.entries().get(f.slot).ok_or(Error::InvalidArgument)?;
        match (e.mode, &e.slot) {
            (Some(mode), Some(slot)) if e.generation == f.generation => {
                // SAFETY: the slot is live; no reference is created.
                let file = unsafe { &raw mut (*slot.as_ptr()).file };
                Ok((file, mode, e.poison))
            }
            _ => Err(Error::InvalidArgument),
        }
    }

    fn poison(&mut self, f: FileId, err: Error) -> Error {
        if let Some(e) = self.entries().get_mut(f.slot) {
            e.poison = Some(err);
        }
        err
    }

    /// Reads up to `buf.len()` bytes at `off` of a file opened with [`OpenMode::Read`];
    /// returns the count (short only at end of file, 0 at or past it).
    pub fn read_at(&mut self, f: FileId, off: u32, buf: &mut [u8]) -> Result<usize> {
        let (file, mode, _) = self.handle(f)?;
        if mode != OpenMode::Read {
            return Err(Error::InvalidArgument);
        }
        let lfs = self.lfs();
        // SAFETY: `file` is open on this littlefs (checked by `handle`).
        let size = unsafe { sys::lfs_file_size(lfs, file) };
        check(size)?;
        // Non-negative, so it fits in u32; `off < size` keeps the seek within i32.
        let size = size as u32;
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min((size - off) as usize);
        // SAFETY: as above; `off < size <= i32::MAX`.
        check(unsafe {
            sys::lfs_file_seek(
                lfs,
                file,
                off as i32,
                sys::lfs_whence_flags_LFS_SEEK_SET as c_int,
            )
        })?;
        let mut done = 0;
        while done < want {
            let rest = &mut buf[done..want];
            // SAFETY: as above; `rest` is valid for its length, which is below 2^31.
            let n = unsafe {
                sys::lfs_file_read(lfs, file, rest.as_mut_ptr().cast(), rest.len() as u32)
            };
            check(n)?;
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }

    /// Writes all of `data` to a file opened for writing (at the end for
    /// [`OpenMode::Append`]). Durable after [`Fs::sync`] or [`Fs::close`]. After an error the
    /// handle is poisoned: writes and syncs return that error and close discards the changes
    /// made since the last sync.
    pub fn write(&mut self, f: FileId, data: &[u8]) -> Result<()> {
        let (file, mode, poison) = self.handle(f)?;
        if !mode.writes() {
            return Err(Error::InvalidArgument);
        }
        if let Some(e) = poison {
            return Err(e);
        }
        // SAFETY: `file` is open for writing on this littlefs (checked by `handle`).
        let res = unsafe { write_all(self.lfs(), file, data) };
        res.map_err(|e| self.poison(f, e))
    }

    /// The current size of an open file, unsynced writes included.
    pub fn size(&mut self, f: FileId) -> Result<u32> {
        let (file, _, _) = self.handle(f)?;
        // SAFETY: `file` is open on this littlefs.
        let n = unsafe { sys::lfs_file_size(self.lfs(), file) };
        check(n)?;
        Ok(n as u32)
    }

    /// Commits an open file's writes (one metadata commit; data blocks are synced first).
    pub fn sync(&mut self, f: FileId) -> Result<()> {
        let (file, _, poison) = self.handle(f)?;
        if let Some(e) = poison {
            return Err(e);
        }
        // SAFETY: `file` is open on this littlefs.
        let rc = unsafe { sys::lfs_file_sync(self.lfs(), file) };
        check(rc).map_err(|e| self.poison(f, e))
    }

    /// Syncs and closes an open file. The slot is freed even when this returns an error.
    pub fn close(&mut self, f: FileId) -> Result<()> {
        self.handle(f)?;
        self.close_slot(f.slot)
    }

    fn close_slot(&mut self, idx: usize) -> Result<()> {
        let lfs = self.lfs();
        let Some(e) = self.entries().get_mut(idx) else {
            return Err(Error::InvalidArgument);
        };
        let Some(slot) = &e.slot else {
            return Err(Error::InvalidArgument);
        };
        if e.mode.is_none() {
            return Err(Error::InvalidArgument);
        }
        let slot = slot.as_ptr();
        let poison = e.poison.take();
        e.mode = None;
        e.generation = e.generation.wrapping_add(1);
        // SAFETY: the slot is open on this littlefs; close always unlinks it.
        let rc = unsafe {
            let file = &raw mut (*slot).file;
            if poison.is_some() {
                // Skip the sync: the handle's state is not safe to commit.
                (*file).flags |= sys::lfs_open_flags_LFS_F_ERRED;
            }
            sys::lfs_file_close(lfs, file)
        };
        match poison {
            Some(e) => Err(e),
            None => check(rc),
        }
    }

    // ---- whole volume ----------------------------------------------------------------------

    /// Blocks in use (a full traversal of the filesystem).
    pub fn used_blocks(&mut self) -> Result<u32> {
        // SAFETY: mounted state.
        let n = unsafe { sys::lfs_fs_size(self.lfs()) };
        check(n)?;
        Ok(n as u32)
    }

    /// Ahead-of-time housekeeping (`lfs_fs_gc`): finishes interrupted operations, compacts
    /// metadata beyond `compact_thresh`, and fills the block allocator's lookahead.
    pub fn gc(&mut self) -> Result<()> {
        // SAFETY: mounted state.
        check(unsafe { sys::lfs_fs_gc(self.lfs()) })
    }
}

/// Reads a whole open file into `out` (empty on entry).
///
/// # Safety
/// `file` must be open for reading on the mounted `lfs`.
unsafe fn read_all(
    lfs: *mut sys::lfs_t,
    file: *mut sys::lfs_file_t,
    out: &mut Vec<u8>,
    max_len: usize,
) -> Result<()> {
    // SAFETY: guaranteed by the caller.
    let size = unsafe { sys::lfs_file_size(lfs, file) };
    check(size)?;
    let size = size as usize;
    if size > max_len {
        return Err(Error::TooLarge);
    }
    out.try_reserve_exact(size).map_err(|_| Error::NoMemory)?;
    out.resize(size, 0);
    let mut done = 0;
    while done < size {
        let rest = &mut out[done..];
        // SAFETY: as above; `rest` is valid for its length, which is below 2^31.
        let n =
            unsafe { sys::lfs_file_read(lfs, file, rest.as_mut_ptr().cast(), rest.len() as u32) };
        check(n)?;
        if n == 0 {
            // Shorter than its recorded size.
            return Err(Error::Corrupt);
        }
        done += n as usize;
    }
    Ok(())
}

/// Writes all of `data` to an open file.
///
/// # Safety
/// `file` must be open for writing on the mounted `lfs`.
unsafe fn write_all(lfs: *mut sys::lfs_t, file: *mut sys::lfs_file_t, data: &[u8]) -> Result<()> {
    // Chunks keep each length within littlefs' signed 32-bit return value.
    for chunk in data.chunks(1 << 30) {
        let mut rest = chunk;
        while !rest.is_empty() {
            // SAFETY: guaranteed by the caller; `rest` is valid for its length (< 2^31).
            let n =
                unsafe { sys::lfs_file_write(lfs, file, rest.as_ptr().cast(), rest.len() as u32) };
            check(n)?;
            if n == 0 {
                // littlefs writes everything or fails; never loop forever.
                return Err(Error::Io);
            }
            rest = &rest[(n as usize).min(rest.len())..];
        }
    }
    Ok(())
}

/// The entry name in `info`, bounded by the array (a hostile image may leave it unterminated).
fn info_name(info: &sys::lfs_info) -> Result<&str> {
    // SAFETY: `c_char` and `u8` have the same size and alignment; the array is initialised.
    let bytes =
        unsafe { core::slice::from_raw_parts(info.name.as_ptr().cast::<u8>(), info.name.len()) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..len]).map_err(|_| Error::Corrupt)
}
