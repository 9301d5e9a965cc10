//! A volatile in-memory flash: the in-RAM database mode. No checks, no counters
//! (the strict simulation with counters and power cuts is `SimFlash`).

use super::{BlockDevice, FlashError, Geometry};
use alloc::vec;
use alloc::vec::Vec;

/// Flash held in a heap buffer, erased to 0xFF.
pub struct RamFlash {
    geometry: Geometry,
    data: Vec<u8>,
}

impl RamFlash {
    /// A new erased device. Returns `None` when the geometry is invalid or too large.
    pub fn new(geometry: Geometry) -> Option<Self> {
        let len = usize::try_from(geometry.capacity()).ok()?;
        if geometry.block_size == 0 || geometry.read_size == 0 || geometry.prog_size == 0 {
            return None;
        }
        Some(RamFlash { geometry, data: vec![0xFF; len] })
    }

    /// The raw contents (an image of the device).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    fn range(&self, block: u32, off: u32, len: usize) -> Result<core::ops::Range<usize>, FlashError> {
        if block >= self.geometry.block_count {
            return Err(FlashError::Io);
        }
        let start = block as usize * self.geometry.block_size as usize + off as usize;
        let end = start.checked_add(len).ok_or(FlashError::Io)?;
        if off as usize + len > self.geometry.block_size as usize {
            return Err(FlashError::Io);
        }
        Ok(start..end)
    }
}

impl BlockDevice for RamFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let r = self.range(block, off, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let r = self.range(block, off, data.len())?;
        for (d, s) in self.data[r].iter_mut().zip(data) {
            *d &= *s;
        }
        Ok(())
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        let r = self.range(block, 0, self.geometry.block_size as usize)?;
        self.data[r].fill(0xFF);
        Ok(())
    }
}
