//! Block devices: the media cairndb stores its littlefs volume on.
//!
//! The contract every implementation keeps (littlefs relies on it for power-loss safety):
//! - `erase(b)` sets every byte of block `b` to 0xFF;
//! - `prog` is only called on erased bytes, at offsets and lengths that are multiples of
//!   `prog_size`; it may only clear bits (NOR semantics); a power cut during `prog` may leave
//!   the programmed range partly written, but never touches bytes outside it;
//! - `read` is called at offsets and lengths that are multiples of `read_size`;
//! - a power cut during `erase` may leave the block in any state;
//! - once `sync` returns, everything programmed before it is durable.
//!
//! An implementation returns [`FlashError::Corrupt`] from `prog`/`erase` for a worn-out block,
//! which makes littlefs relocate the data, and [`FlashError::Io`] for anything else, including
//! a call that breaks the contract above (out of range, misaligned): implementations check
//! their arguments and never panic on them.
//!
//! Devices provided here:
//! - [`RamFlash`]: volatile memory, for the in-RAM database mode;
//! - [`SimFlash`]: a strict simulated NOR flash with counters, power cuts, wear-out and fault
//!   injection, used by the power-loss and cost tests;
//! - [`NorFlashDevice`]: any `embedded_storage` `NorFlash` driver, or a range of its blocks;
//! - [`CallbackDevice`]: C function pointers ([`FlashCallbacks`]) for C firmware;
//! - `FileFlash` (feature `std`): an image file on the host.

/// Flash geometry in bytes and blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Smallest read unit.
    pub read_size: u32,
    /// Smallest program unit (a "word" of the simulated NOR flash).
    pub prog_size: u32,
    /// Erase unit.
    pub block_size: u32,
    /// Number of erase blocks.
    pub block_count: u32,
}

impl Geometry {
    /// Total capacity in bytes.
    pub fn capacity(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }
}

/// Why a device operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Generic I/O failure (bus error, timeout, power cut in a simulation).
    Io,
    /// The block is bad (program or erase verify failed); littlefs relocates.
    Corrupt,
}

/// A flash device, addressed by block and offset within the block.
pub trait BlockDevice {
    /// The device geometry; must not change while the device is in use.
    fn geometry(&self) -> Geometry;
    /// Read `buf.len()` bytes from `block` at `off`.
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError>;
    /// Program `data` into erased bytes of `block` at `off`.
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError>;
    /// Erase `block` to 0xFF.
    fn erase(&mut self, block: u32) -> Result<(), FlashError>;
    /// Make everything programmed so far durable.
    fn sync(&mut self) -> Result<(), FlashError> {
        Ok(())
    }
    /// Erase cycles `block` has been through, for wear statistics; `None` when the device does
    /// not track it (or `block` is out of range).
    fn erase_count(&self, block: u32) -> Option<u32> {
        let _ = block;
        None
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        (**self).read(block, off, buf)
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        (**self).prog(block, off, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        (**self).erase(block)
    }
    fn sync(&mut self) -> Result<(), FlashError> {
        (**self).sync()
    }
    fn erase_count(&self, block: u32) -> Option<u32> {
        (**self).erase_count(block)
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for alloc::boxed::Box<D> {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        (**self).read(block, off, buf)
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        (**self).prog(block, off, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        (**self).erase(block)
    }
    fn sync(&mut self) -> Result<(), FlashError> {
        (**self).sync()
    }
    fn erase_count(&self, block: u32) -> Option<u32> {
        (**self).erase_count(block)
    }
}

mod callback;
mod check;
#[cfg(feature = "std")]
mod file;
mod nor;
mod ram;
mod sim;

pub use callback::{
    CallbackDevice, FlashCallbacks, FlashEraseFn, FlashProgFn, FlashReadFn, FlashSyncFn,
    CALLBACK_ERR_CORRUPT,
};
#[cfg(feature = "std")]
pub use file::FileFlash;
pub use nor::NorFlashDevice;
pub use ram::RamFlash;
pub use sim::{FlashStats, SimFlash};
