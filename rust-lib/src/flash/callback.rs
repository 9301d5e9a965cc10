//! `CallbackDevice`: a block device made of C function pointers, for C firmware that brings
//! its own flash driver (the same shape as littlefs's `lfs_config` callbacks).
//!
//! Return codes of the callbacks: `0` is success, [`CALLBACK_ERR_CORRUPT`] (`-84`, littlefs's
//! `LFS_ERR_CORRUPT`) reports a bad block ([`FlashError::Corrupt`], littlefs relocates), any
//! other value is an I/O error ([`FlashError::Io`]).

use super::check::{geometry_ok, locate};
use super::{BlockDevice, FlashError, Geometry};
use core::ffi::c_void;

/// Return code of a callback for a bad block.
pub const CALLBACK_ERR_CORRUPT: i32 = -84;

/// Reads `len` bytes at `off` in `block` into `buf`.
pub type FlashReadFn =
    unsafe extern "C" fn(ctx: *mut c_void, block: u32, off: u32, buf: *mut u8, len: u32) -> i32;
/// Programs `len` bytes from `buf` at `off` in `block` (onto erased bytes).
pub type FlashProgFn =
    unsafe extern "C" fn(ctx: *mut c_void, block: u32, off: u32, buf: *const u8, len: u32) -> i32;
/// Erases `block` to 0xFF.
pub type FlashEraseFn = unsafe extern "C" fn(ctx: *mut c_void, block: u32) -> i32;
/// Makes everything programmed so far durable.
pub type FlashSyncFn = unsafe extern "C" fn(ctx: *mut c_void) -> i32;

/// The C description of a flash device: callbacks, their context, and the geometry.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FlashCallbacks {
    /// Passed unchanged as the first argument of every callback.
    pub ctx: *mut c_void,
    /// Required.
    pub read: Option<FlashReadFn>,
    /// Required.
    pub prog: Option<FlashProgFn>,
    /// Required.
    pub erase: Option<FlashEraseFn>,
    /// Optional; `None` means writes are durable as soon as `prog` returns.
    pub sync: Option<FlashSyncFn>,
    /// Smallest read unit in bytes.
    pub read_size: u32,
    /// Smallest program unit in bytes.
    pub prog_size: u32,
    /// Erase block size in bytes, a multiple of `read_size` and `prog_size`.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
}

/// A [`BlockDevice`] calling C functions. Every access is checked against the geometry
/// before a callback sees it, so the callbacks only ever get in-range, aligned, nonzero-length
/// requests (zero-length reads and programs succeed without a call).
///
/// Not `Send`/`Sync`: the context pointer says nothing about threads.
#[derive(Debug)]
pub struct CallbackDevice {
    ctx: *mut c_void,
    read: FlashReadFn,
    prog: FlashProgFn,
    erase: FlashEraseFn,
    sync: Option<FlashSyncFn>,
    geometry: Geometry,
}

fn rc(code: i32) -> Result<(), FlashError> {
    match code {
        0 => Ok(()),
        CALLBACK_ERR_CORRUPT => Err(FlashError::Corrupt),
        _ => Err(FlashError::Io),
    }
}

impl CallbackDevice {
    /// Wraps `cb`, or `None` when `read`, `prog` or `erase` is missing, a size or the block
    /// count is 0, or `block_size` is not a multiple of `read_size` and `prog_size`.
    ///
    /// # Safety
    ///
    /// For as long as the returned device (or anything it is moved into) lives:
    /// - each callback must be safe to call with `cb.ctx` and any block, offset and length
    ///   inside the geometry, and must not unwind;
    /// - `read` may write exactly `len` bytes to `buf` and `prog` may read exactly `len`
    ///   bytes from `buf`; neither may keep the pointer after returning;
    /// - `ctx` and whatever it points to must stay valid, and must not be used by anything
    ///   else in a way that races with the callbacks;
    /// - a callback must not call back into this device.
    pub unsafe fn new(cb: FlashCallbacks) -> Option<CallbackDevice> {
        let geometry = Geometry {
            read_size: cb.read_size,
            prog_size: cb.prog_size,
            block_size: cb.block_size,
            block_count: cb.block_count,
        };
        if !geometry_ok(&geometry) {
            return None;
        }
        Some(CallbackDevice {
            ctx: cb.ctx,
            read: cb.read?,
            prog: cb.prog?,
            erase: cb.erase?,
            sync: cb.sync,
            geometry,
        })
    }

    /// The context pointer given to the callbacks.
    pub fn ctx(&self) -> *mut c_void {
        self.ctx
    }

    /// A checked access as the `u32` length the callbacks take.
    fn check(&self, block: u32, off: u32, len: usize, align: u32) -> Result<u32, FlashError> {
        locate(&self.geometry, block, off, len, align).ok_or(FlashError::Io)?;
        // Inside a block, so no longer than `block_size`, a u32.
        u32::try_from(len).map_err(|_| FlashError::Io)
    }
}

impl BlockDevice for CallbackDevice {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let len = self.check(block, off, buf.len(), self.geometry.read_size)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: `new`'s contract; the request is inside the geometry and `buf` is valid for
        // writes of `len` bytes for the whole call.
        rc(unsafe { (self.read)(self.ctx, block, off, buf.as_mut_ptr(), len) })
    }

    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let len = self.check(block, off, data.len(), self.geometry.prog_size)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: `new`'s contract; the request is inside the geometry and `data` is valid for
        // reads of `len` bytes for the whole call.
        rc(unsafe { (self.prog)(self.ctx, block, off, data.as_ptr(), len) })
    }

    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        if block >= self.geometry.block_count {
            return Err(FlashError::Io);
        }
        // SAFETY: `new`'s contract; the block exists.
        rc(unsafe { (self.erase)(self.ctx, block) })
    }

    fn sync(&mut self) -> Result<(), FlashError> {
        match self.sync {
            // SAFETY: `new`'s contract.
            Some(sync) => rc(unsafe { sync(self.ctx) }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const BLOCK: u32 = 64;
    const BLOCKS: u32 = 4;

    /// The C side: a RAM flash with a scripted return code and a call log.
    struct Mem {
        data: Vec<u8>,
        rc: i32,
        syncs: u32,
        calls: Vec<(char, u32, u32, u32)>,
    }

    unsafe fn mem<'a>(ctx: *mut c_void) -> &'a mut Mem {
        // SAFETY: every test passes a live, exclusively used `Mem` as the context.
        unsafe { &mut *ctx.cast::<Mem>() }
    }

    fn at(block: u32, off: u32) -> usize {
        (block * BLOCK + off) as usize
    }

    unsafe extern "C" fn read(
        ctx: *mut c_void,
        block: u32,
        off: u32,
        buf: *mut u8,
        len: u32,
    ) -> i32 {
        // SAFETY: the device passes a buffer valid for `len` bytes.
        let (m, buf) = unsafe { (mem(ctx), core::slice::from_raw_parts_mut(buf, len as usize)) };
        m.calls.push(('r', block, off, len));
        buf.copy_from_slice(&m.data[at(block, off)..at(block, off) + len as usize]);
        m.rc
    }

    unsafe extern "C" fn prog(
        ctx: *mut c_void,
        block: u32,
        off: u32,
        buf: *const u8,
        len: u32,
    ) -> i32 {
        // SAFETY: the device passes a buffer valid for `len` bytes.
        let (m, buf) = unsafe { (mem(ctx), core::slice::from_raw_parts(buf, len as usize)) };
        m.calls.push(('p', block, off, len));
        for (d, s) in m.data[at(block, off)..].iter_mut().zip(buf) {
            *d &= *s;
        }
        m.rc
    }

    unsafe extern "C" fn erase(ctx: *mut c_void, block: u32) -> i32 {
        // SAFETY: see `mem`.
        let m = unsafe { mem(ctx) };
        m.calls.push(('e', block, 0, 0));
        m.data[at(block, 0)..at(block + 1, 0)].fill(0xFF);
        m.rc
    }

    unsafe extern "C" fn sync(ctx: *mut c_void) -> i32 {
        // SAFETY: see `mem`.
        let m = unsafe { mem(ctx) };
        m.syncs += 1;
        m.rc
    }

    fn new_mem() -> Mem {
        Mem {
            data: vec![0xFF; (BLOCK * BLOCKS) as usize],
            rc: 0,
            syncs: 0,
            calls: Vec::new(),
        }
    }

    /// The callbacks over `m`. Tests keep using the same raw pointer for their own accesses
    /// so no reference invalidates the one the device holds.
    fn callbacks(m: *mut Mem) -> FlashCallbacks {
        FlashCallbacks {
            ctx: m.cast(),
            read: Some(read),
            prog: Some(prog),
            erase: Some(erase),
            sync: Some(sync),
            read_size: 4,
            prog_size: 8,
            block_size: BLOCK,
            block_count: BLOCKS,
        }
    }

    #[test]
    fn validation() {
        let mut m = new_mem();
        let ok = callbacks(&mut m);
        let bad = [
            FlashCallbacks { read: None, ..ok },
            FlashCallbacks { prog: None, ..ok },
            FlashCallbacks { erase: None, ..ok },
            FlashCallbacks { read_size: 0, ..ok },
            FlashCallbacks { prog_size: 0, ..ok },
            FlashCallbacks {
                block_size: 0,
                ..ok
            },
            FlashCallbacks {
                block_count: 0,
                ..ok
            },
            FlashCallbacks {
                block_size: 60,
                ..ok
            },
            FlashCallbacks {
                read_size: 24,
                prog_size: 24,
                ..ok
            },
        ];
        for cb in bad {
            // SAFETY: the callbacks are never called: construction fails.
            assert!(unsafe { CallbackDevice::new(cb) }.is_none(), "{cb:?}");
        }
        // SAFETY: `m` outlives the device and is only used through it.
        let d = unsafe { CallbackDevice::new(FlashCallbacks { sync: None, ..ok }) }.unwrap();
        assert_eq!(
            d.geometry(),
            Geometry {
                read_size: 4,
                prog_size: 8,
                block_size: 64,
                block_count: 4
            }
        );
        assert_eq!(d.ctx(), ok.ctx);
    }

    #[test]
    fn round_trip_and_checks() {
        let mut m = new_mem();
        // SAFETY: `m` outlives the device and is not touched while the device is in use.
        let mut d = unsafe { CallbackDevice::new(callbacks(&mut m)) }.unwrap();
        d.prog(1, 8, &[0x5A; 16]).unwrap();
        let mut buf = [0u8; 24];
        d.read(1, 4, &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0xFF; 4]);
        assert_eq!(&buf[4..20], &[0x5A; 16]);
        d.erase(1).unwrap();
        d.sync().unwrap();
        // Zero-length requests succeed without a call.
        d.read(0, 0, &mut []).unwrap();
        d.prog(0, 0, &[]).unwrap();
        // Refused before any callback: out of range, misaligned, past the block.
        assert_eq!(d.read(4, 0, &mut buf[..4]), Err(FlashError::Io));
        assert_eq!(d.read(0, 2, &mut buf[..4]), Err(FlashError::Io));
        assert_eq!(d.read(0, 48, &mut buf), Err(FlashError::Io));
        assert_eq!(d.prog(0, 4, &[0; 8]), Err(FlashError::Io));
        assert_eq!(d.prog(0, 0, &[0; 12]), Err(FlashError::Io));
        assert_eq!(d.prog(u32::MAX, u32::MAX, &[0; 8]), Err(FlashError::Io));
        assert_eq!(d.erase(4), Err(FlashError::Io));
        // The device is done with `m` from here on.
        assert_eq!(
            m.calls,
            vec![('p', 1, 8, 16), ('r', 1, 4, 24), ('e', 1, 0, 0)]
        );
        assert_eq!(m.syncs, 1);
        assert!(m.data.iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn return_codes() {
        let mut m = new_mem();
        let ctx: *mut Mem = &mut m;
        // SAFETY: `m` outlives the device; the test touches it only through `ctx`, between
        // device calls.
        let mut d = unsafe { CallbackDevice::new(callbacks(ctx)) }.unwrap();
        // SAFETY: as above.
        let set = |code: i32| unsafe { (*ctx).rc = code };
        for (code, want) in [
            (0, Ok(())),
            (CALLBACK_ERR_CORRUPT, Err(FlashError::Corrupt)),
            (-5, Err(FlashError::Io)),
            (1, Err(FlashError::Io)),
            (i32::MIN, Err(FlashError::Io)),
        ] {
            set(code);
            assert_eq!(d.erase(0), want, "erase rc {code}");
            assert_eq!(d.prog(0, 0, &[0xFF; 8]), want, "prog rc {code}");
            assert_eq!(d.read(0, 0, &mut [0u8; 4]), want, "read rc {code}");
            assert_eq!(d.sync(), want, "sync rc {code}");
        }
        let mut m2 = new_mem();
        m2.rc = -5;
        // SAFETY: as above.
        let mut no_sync = unsafe {
            CallbackDevice::new(FlashCallbacks {
                sync: None,
                ..callbacks(&mut m2)
            })
        }
        .unwrap();
        assert_eq!(no_sync.sync(), Ok(()), "a missing sync is a no-op");
    }
}
