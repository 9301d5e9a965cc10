//! A host image file as a flash device (hosted builds only: the bare-metal library has no
//! file system to offer). Host tools and tests create, fill and read device images from C
//! with it; bytes map one to one (block `b` at offset `b * block_size`), programs AND into the
//! existing bytes as NOR flash does, erases write 0xFF, sync is `fsync`.

use super::*;
use cairndb::flash::{FileFlash, FlashError, Geometry};

/// The geometry of a flash device or image.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct cairn_geometry_t {
    /// Smallest read unit in bytes (nonzero).
    pub read_size: u32,
    /// Smallest program unit in bytes (nonzero).
    pub prog_size: u32,
    /// Erase block size in bytes, a multiple of `read_size` and `prog_size`.
    pub block_size: u32,
    /// Number of erase blocks (nonzero).
    pub block_count: u32,
}

/// A flash image in a host file (opaque). Hosted builds only.
///
/// Thread safety: as the handle using it.
pub struct cairn_file_device_t {
    flash: FileFlash,
}

/// Opens the image file `path` as a flash device of `geometry`, or creates it erased (all
/// 0xFF) when the file does not exist. Hosted builds only (absent from the bare-metal
/// library).
///
/// @param dev  receives the device (NULL on failure); close it with cairn_file_device_close()
///             after closing every database on it.
/// @retval CAIRN_OK, CAIRN_ERR_NULL (`path`, `geometry`, `dev`), CAIRN_ERR_UTF8 (`path`),
///         CAIRN_ERR_INVALID_ARGUMENT (an invalid geometry, or an existing file whose size is
///         not `block_size * block_count`), CAIRN_ERR_IO (the file cannot be opened or
///         created), CAIRN_ERR_INTERNAL.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `path` NULL or NUL-terminated; `geometry` NULL or valid; `dev` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cairn_file_device_open(
    path: *const c_char,
    geometry: *const cairn_geometry_t,
    dev: *mut *mut cairn_file_device_t,
) -> i32 {
    if dev.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    unsafe { dev.write(core::ptr::null_mut()) };
    guard(|| {
        // SAFETY: the documented contract.
        let path = unsafe { text(path)? };
        // SAFETY: the documented contract.
        let g = unsafe { geometry.as_ref() }.ok_or(CAIRN_ERR_NULL)?;
        let geometry = Geometry {
            read_size: g.read_size,
            prog_size: g.prog_size,
            block_size: g.block_size,
            block_count: g.block_count,
        };
        let opened = match std::path::Path::new(path).exists() {
            true => FileFlash::open(path, geometry),
            false => FileFlash::create(path, geometry),
        };
        let flash = opened.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                CAIRN_ERR_INVALID_ARGUMENT
            }
            _ => CAIRN_ERR_IO,
        })?;
        let d = Box::new(cairn_file_device_t { flash });
        // SAFETY: the documented contract.
        unsafe { dev.write(Box::into_raw(d)) };
        Ok(())
    })
}

/// Syncs and closes the image file and frees the device. NULL is a no-op returning CAIRN_OK.
/// No database may still be open on it.
///
/// @retval CAIRN_OK, CAIRN_ERR_IO (the final sync failed; the device is freed anyway).
///
/// Thread safety: as for the database handle that used the device.
///
/// # Safety
/// `dev` is NULL or a live device, not used again.
#[no_mangle]
pub unsafe extern "C" fn cairn_file_device_close(dev: *mut cairn_file_device_t) -> i32 {
    if dev.is_null() {
        return CAIRN_OK;
    }
    // SAFETY: a live device from Box::into_raw (contract).
    let mut d = unsafe { Box::from_raw(dev) };
    guard(move || d.flash.sync().map_err(|_| CAIRN_ERR_IO))
}

/// Points `cfg`'s device fields (`ctx`, `read`, `prog`, `erase`, `sync` and the geometry) at
/// `dev`, leaving every other field alone (as cairn_ram_device_config()).
///
/// @retval CAIRN_OK, CAIRN_ERR_NULL.
///
/// Thread safety: as for the database handle using the device.
///
/// # Safety
/// `dev` is a live device; `cfg` is valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn cairn_file_device_config(
    dev: *mut cairn_file_device_t,
    cfg: *mut cairn_config_t,
) -> i32 {
    if dev.is_null() || cfg.is_null() {
        return CAIRN_ERR_NULL;
    }
    // SAFETY: the documented contract.
    let g = unsafe { (*dev).flash.geometry() };
    // SAFETY: the documented contract.
    let cfg = unsafe { &mut *cfg };
    cfg.ctx = dev.cast();
    cfg.read = Some(file_read);
    cfg.prog = Some(file_prog);
    cfg.erase = Some(file_erase);
    cfg.sync = Some(file_sync);
    cfg.read_size = g.read_size;
    cfg.prog_size = g.prog_size;
    cfg.block_size = g.block_size;
    cfg.block_count = g.block_count;
    CAIRN_OK
}

fn flash_code(r: Option<Result<(), FlashError>>) -> i32 {
    match r {
        Some(Ok(())) => 0,
        Some(Err(FlashError::Corrupt)) => CAIRN_FLASH_ERR_CORRUPT,
        Some(Err(_)) | None => CAIRN_ERR_IO,
    }
}

unsafe extern "C" fn file_read(
    ctx: *mut c_void,
    block: u32,
    off: u32,
    buf: *mut u8,
    len: u32,
) -> i32 {
    // SAFETY: `ctx` is the device cairn_file_device_config() stored; the device layer passes
    // a buffer valid for `len` bytes.
    let (dev, buf) = unsafe {
        (
            &mut *ctx.cast::<cairn_file_device_t>(),
            core::slice::from_raw_parts_mut(buf, len as usize),
        )
    };
    flash_code(catch(|| dev.flash.read(block, off, buf)))
}

unsafe extern "C" fn file_prog(
    ctx: *mut c_void,
    block: u32,
    off: u32,
    buf: *const u8,
    len: u32,
) -> i32 {
    // SAFETY: as in file_read.
    let (dev, data) = unsafe {
        (
            &mut *ctx.cast::<cairn_file_device_t>(),
            core::slice::from_raw_parts(buf, len as usize),
        )
    };
    flash_code(catch(|| dev.flash.prog(block, off, data)))
}

unsafe extern "C" fn file_erase(ctx: *mut c_void, block: u32) -> i32 {
    // SAFETY: as in file_read.
    let dev = unsafe { &mut *ctx.cast::<cairn_file_device_t>() };
    flash_code(catch(|| dev.flash.erase(block)))
}

unsafe extern "C" fn file_sync(ctx: *mut c_void) -> i32 {
    // SAFETY: as in file_read.
    let dev = unsafe { &mut *ctx.cast::<cairn_file_device_t>() };
    flash_code(catch(|| dev.flash.sync()))
}
