//! A volatile in-memory flash: the in-RAM database mode. No checks; one erase counter per
//! block (4 bytes each, for wear statistics), no other counters (the strict simulation with
//! counters and power cuts is `SimFlash`).

use super::check::{locate_usize, try_filled};
use super::{BlockDevice, FlashError, Geometry};
use alloc::vec::Vec;

/// Flash held in a heap buffer, erased to 0xFF.
pub struct RamFlash {
    geometry: Geometry,
    data: Vec<u8>,
    erases: Vec<u32>,
}

impl RamFlash {
    /// A new erased device. Returns `None` when the geometry is invalid or too large.
    pub fn new(geometry: Geometry) -> Option<Self> {
        let len = usize::try_from(geometry.capacity()).ok()?;
        if geometry.block_size == 0 || geometry.read_size == 0 || geometry.prog_size == 0 {
            return None;
        }
        Some(RamFlash {
            geometry,
            data: try_filled(len, 0xFF)?,
            erases: try_filled(usize::try_from(geometry.block_count).ok()?, 0)?,
        })
    }

    /// The raw contents (an image of the device).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Bounds only (this device trusts alignment); checked arithmetic so no argument panics,
    /// also on 32-bit targets where `block * block_size + off` can overflow `usize`.
    fn range(
        &self,
        block: u32,
        off: u32,
        len: usize,
    ) -> Result<core::ops::Range<usize>, FlashError> {
        let start = locate_usize(&self.geometry, block, off, len, 1).ok_or(FlashError::Io)?;
        let end = start.checked_add(len).ok_or(FlashError::Io)?;
        Ok(start..end)
    }
}

impl BlockDevice for RamFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn erase_count(&self, block: u32) -> Option<u32> {
        self.erases.get(usize::try_from(block).ok()?).copied()
    }
    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let r = self.range(block, off, buf.len())?;
        buf.copy_from_slice(self.data.get(r).ok_or(FlashError::Io)?);
        Ok(())
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let r = self.range(block, off, data.len())?;
        for (d, s) in self
            .data
            .get_mut(r)
            .ok_or(FlashError::Io)?
            .iter_mut()
            .zip(data)
        {
            *d &= *s;
        }
        Ok(())
    }
    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        let len = usize::try_from(self.geometry.block_size).map_err(|_| FlashError::Io)?;
        let r = self.range(block, 0, len)?;
        self.data.get_mut(r).ok_or(FlashError::Io)?.fill(0xFF);
        if let Some(c) = usize::try_from(block)
            .ok()
            .and_then(|b| self.erases.get_mut(b))
        {
            *c = c.saturating_add(1);
        }
        Ok(())
    }
}
