//! `NorFlashDevice`: a [`BlockDevice`] over any `embedded_storage` [`NorFlash`] driver
//! (internal MCU flash, SPI NOR drivers from HALs), optionally limited to a range of its
//! erase blocks so the database can share the chip with firmware or other data.

use super::check::{geometry_ok, locate};
use super::{BlockDevice, FlashError, Geometry};
use embedded_storage::nor_flash::{NorFlash, NorFlashError};

/// A [`NorFlash`] seen as a block device: one block per `ERASE_SIZE`, reads in `READ_SIZE`
/// units, programs in `WRITE_SIZE` units.
#[derive(Debug)]
pub struct NorFlashDevice<F> {
    flash: F,
    geometry: Geometry,
    /// Byte address of the first block of the range on the underlying flash.
    base: u32,
}

/// `NorFlash` has no bad-block notion: `NotAligned`/`OutOfBounds` would be our own bugs (we
/// check both before calling) and `Other` is device-specific, so everything is `Io`.
fn nor_error<E: NorFlashError>(_: E) -> FlashError {
    FlashError::Io
}

impl<F: NorFlash> NorFlashDevice<F> {
    /// The whole flash as a device. Gives the flash back when its geometry is unusable (a zero
    /// or over-4-GiB unit size, an erase size that is not a multiple of the read and write
    /// sizes, or not a single whole block).
    pub fn new(flash: F) -> Result<Self, F> {
        let blocks = flash
            .capacity()
            .checked_div(F::ERASE_SIZE)
            .and_then(|n| u32::try_from(n).ok());
        match blocks {
            Some(n) => Self::with_range(flash, 0, n),
            None => Err(flash),
        }
    }

    /// Blocks `first_block .. first_block + block_count` of the flash as a device whose block 0
    /// is `first_block`. Gives the flash back when the geometry is unusable (see
    /// [`NorFlashDevice::new`]), the range is empty or exceeds the capacity, or its end is not
    /// addressable with the 32-bit offsets of `NorFlash`.
    pub fn with_range(flash: F, first_block: u32, block_count: u32) -> Result<Self, F> {
        let sizes = (
            u32::try_from(F::READ_SIZE),
            u32::try_from(F::WRITE_SIZE),
            u32::try_from(F::ERASE_SIZE),
        );
        let (Ok(read_size), Ok(prog_size), Ok(block_size)) = sizes else {
            return Err(flash);
        };
        let geometry = Geometry {
            read_size,
            prog_size,
            block_size,
            block_count,
        };
        let end = first_block
            .checked_add(block_count)
            .map(|b| u64::from(b) * u64::from(block_size));
        let capacity = u64::try_from(flash.capacity()).unwrap_or(u64::MAX);
        // Erase takes an exclusive end address, so the range's end itself must fit in a u32.
        let fits = end.is_some_and(|e| e <= capacity && e <= u64::from(u32::MAX));
        let base = first_block.checked_mul(block_size);
        match base {
            Some(base) if fits && geometry_ok(&geometry) => Ok(NorFlashDevice {
                flash,
                geometry,
                base,
            }),
            _ => Err(flash),
        }
    }

    /// The underlying flash.
    pub fn inner(&self) -> &F {
        &self.flash
    }

    /// The underlying flash, mutably (for driver-specific calls; keep away from the range).
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the underlying flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The first block of the range on the underlying flash.
    pub fn first_block(&self) -> u32 {
        // `base` is `first_block * block_size` and the block size is nonzero.
        self.base.checked_div(self.geometry.block_size).unwrap_or(0)
    }

    /// Absolute flash address of a checked access.
    fn address(&self, block: u32, off: u32, len: usize, align: u32) -> Result<u32, FlashError> {
        let rel = locate(&self.geometry, block, off, len, align).ok_or(FlashError::Io)?;
        rel.checked_add(u64::from(self.base))
            .and_then(|a| u32::try_from(a).ok())
            .ok_or(FlashError::Io)
    }
}

impl<F: NorFlash> BlockDevice for NorFlashDevice<F> {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        let addr = self.address(block, off, buf.len(), self.geometry.read_size)?;
        self.flash.read(addr, buf).map_err(nor_error)
    }

    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let addr = self.address(block, off, data.len(), self.geometry.prog_size)?;
        self.flash.write(addr, data).map_err(nor_error)
    }

    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        let from = self.address(block, 0, 0, 1)?;
        // In range: `with_range` checked that the end of the last block fits in a u32.
        let to = from
            .checked_add(self.geometry.block_size)
            .ok_or(FlashError::Io)?;
        self.flash.erase(from, to).map_err(nor_error)
    }

    // NorFlash writes are complete when `write` returns, so `sync` is the default no-op.
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use embedded_storage::nor_flash::{
        check_erase, check_read, check_write, ErrorType, NorFlashErrorKind, ReadNorFlash,
    };

    /// A minimal NOR flash: 8 sectors of 256 bytes, byte reads, 4-byte writes, strict.
    struct TestNor {
        data: Vec<u8>,
        calls: Vec<(char, u32, u32)>,
        fail: Option<NorFlashErrorKind>,
    }

    impl TestNor {
        fn new() -> Self {
            TestNor {
                data: vec![0xFF; 2048],
                calls: Vec::new(),
                fail: None,
            }
        }
    }

    impl ErrorType for TestNor {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for TestNor {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            check_read(self, offset, bytes.len())?;
            self.calls.push(('r', offset, bytes.len() as u32));
            if let Some(e) = self.fail.take() {
                return Err(e);
            }
            let o = offset as usize;
            bytes.copy_from_slice(&self.data[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.data.len()
        }
    }

    impl NorFlash for TestNor {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 256;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            check_erase(self, from, to)?;
            self.calls.push(('e', from, to));
            if let Some(e) = self.fail.take() {
                return Err(e);
            }
            self.data[from as usize..to as usize].fill(0xFF);
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            check_write(self, offset, bytes.len())?;
            self.calls.push(('w', offset, bytes.len() as u32));
            if let Some(e) = self.fail.take() {
                return Err(e);
            }
            let o = offset as usize;
            let dst = &mut self.data[o..o + bytes.len()];
            if dst.iter().any(|&b| b != 0xFF) {
                return Err(NorFlashErrorKind::Other);
            }
            dst.copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn whole_flash_geometry_and_round_trip() {
        let mut d = NorFlashDevice::new(TestNor::new()).ok().unwrap();
        assert_eq!(
            d.geometry(),
            Geometry {
                read_size: 1,
                prog_size: 4,
                block_size: 256,
                block_count: 8
            }
        );
        assert_eq!(d.first_block(), 0);
        d.prog(7, 252, &[1, 2, 3, 4]).unwrap();
        let mut buf = [0u8; 5];
        d.read(7, 251, &mut buf).unwrap();
        assert_eq!(buf, [0xFF, 1, 2, 3, 4]);
        d.erase(7).unwrap();
        d.sync().unwrap();
        let flash = d.into_inner();
        assert!(flash.data.iter().all(|&b| b == 0xFF));
        assert_eq!(
            flash.calls,
            vec![('w', 2044, 4), ('r', 2043, 5), ('e', 1792, 2048)]
        );
    }

    #[test]
    fn sub_range_is_offset_and_confined() {
        let mut d = NorFlashDevice::with_range(TestNor::new(), 2, 3)
            .ok()
            .unwrap();
        assert_eq!(d.geometry().block_count, 3);
        assert_eq!(d.first_block(), 2);
        d.prog(0, 0, &[0xAA; 8]).unwrap();
        d.erase(2).unwrap();
        assert_eq!(d.inner().data[512], 0xAA);
        // Outside the range, misaligned or too long: refused before reaching the driver.
        let mut buf = [0u8; 4];
        assert_eq!(d.read(3, 0, &mut buf), Err(FlashError::Io));
        assert_eq!(d.prog(3, 0, &[0; 4]), Err(FlashError::Io));
        assert_eq!(d.erase(3), Err(FlashError::Io));
        assert_eq!(d.erase(u32::MAX), Err(FlashError::Io));
        assert_eq!(d.prog(0, 2, &[0; 4]), Err(FlashError::Io));
        assert_eq!(d.prog(0, 8, &[0; 3]), Err(FlashError::Io));
        assert_eq!(d.read(2, 250, &mut [0u8; 8]), Err(FlashError::Io));
        assert_eq!(d.read(0, u32::MAX, &mut buf), Err(FlashError::Io));
        assert_eq!(d.inner().calls, vec![('w', 512, 8), ('e', 1024, 1280)]);
    }

    #[test]
    fn invalid_ranges_give_the_flash_back() {
        let f = NorFlashDevice::with_range(TestNor::new(), 6, 3)
            .err()
            .unwrap();
        let f = NorFlashDevice::with_range(f, 0, 0).err().unwrap();
        let f = NorFlashDevice::with_range(f, u32::MAX, 2).err().unwrap();
        let f = NorFlashDevice::with_range(f, 1 << 30, 1).err().unwrap();
        assert!(NorFlashDevice::with_range(f, 6, 2).is_ok());
    }

    #[test]
    fn driver_errors_map_to_io() {
        let mut d = NorFlashDevice::new(TestNor::new()).ok().unwrap();
        for kind in [
            NorFlashErrorKind::Other,
            NorFlashErrorKind::NotAligned,
            NorFlashErrorKind::OutOfBounds,
        ] {
            d.inner_mut().fail = Some(kind);
            assert_eq!(d.erase(0), Err(FlashError::Io));
        }
        d.inner_mut().fail = Some(NorFlashErrorKind::Other);
        assert_eq!(d.read(0, 0, &mut [0u8; 4]), Err(FlashError::Io));
        d.prog(0, 0, &[0; 4]).unwrap();
        // The driver refuses a double write; that surfaces as Io too.
        assert_eq!(d.prog(0, 0, &[0; 4]), Err(FlashError::Io));
    }

    /// A driver with a geometry littlefs cannot use.
    struct OddNor;
    impl ErrorType for OddNor {
        type Error = core::convert::Infallible;
    }
    impl ReadNorFlash for OddNor {
        const READ_SIZE: usize = 3;
        fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), Self::Error> {
            Ok(())
        }
        fn capacity(&self) -> usize {
            1024
        }
    }
    impl NorFlash for OddNor {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 256;
        fn erase(&mut self, _: u32, _: u32) -> Result<(), Self::Error> {
            Ok(())
        }
        fn write(&mut self, _: u32, _: &[u8]) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn unusable_geometry_is_refused() {
        assert!(NorFlashDevice::new(OddNor).is_err());
    }
}
