//! A JEDEC SPI NOR flash driver over an embedded-hal 1.0 [`SpiDevice`], implementing the
//! `embedded-storage` [`NorFlash`] traits so that `cairndb::flash::NorFlashDevice` can put a
//! database on the chip (or a range of its sectors).
//!
//! It speaks the command set that 25-series serial NOR chips (Winbond W25Q, Macronix MX25,
//! GigaDevice GD25, ISSI IS25, Micron MT25Q, Adesto, ...) share: JEDEC id (0x9F), READ (0x03) or
//! FAST_READ (0x0B), WREN (0x06) + PAGE PROGRAM (0x02), 4 KiB SECTOR ERASE (0x20), optional
//! 64 KiB BLOCK ERASE (0xD8), RDSR (0x05) polling, release from deep power-down (0xAB), optional
//! software reset (0x66, 0x99). Chips over 16 MiB are addressed with the 4-byte-address
//! opcodes (0x13, 0x0C, 0x12, 0x21, 0xDC), never with the 4-byte address *mode* (0xB7), whose
//! state a chip reset or brown-out loses behind the driver's back.
//!
//! Rules it keeps, and why (see also docs/DESIGN.md, "SPI NOR driver"):
//! - a page program never crosses a 256-byte page: silicon wraps inside the page instead, which
//!   would write the tail over the page's start;
//! - after each WREN the status register must show WEL, and after each program or erase the
//!   chip must have cleared it: a chip that ignores writes (write-protected, powered down,
//!   unsoldered) is an error, not silent data loss;
//! - the status polling is bounded by a time budget per operation (counted in requested delay,
//!   so it ends even with a delay that does nothing): a stuck chip gives [`Error::Timeout`],
//!   never an endless loop;
//! - bounds and alignment are checked before any bus transfer;
//! - after any error, the next operation first waits for the chip to be idle, so no command
//!   reaches a chip still busy with an operation the error broke off.
//!
//! No heap, no `unsafe`, no panics.
//!
//! # Example
//! ```
//! use cairndb::db::{Config, Database, Key};
//! use cairndb::flash::NorFlashDevice;
//! use cairndb_spi_nor::{Capacity, SpiNor};
//! use embedded_hal::{delay::DelayNs, spi::SpiDevice};
//!
//! /// Opens the database on the chip behind `spi`, formatting it the first time.
//! fn open_db<SPI: SpiDevice, D: DelayNs>(
//!     spi: SPI,
//!     delay: D,
//!     key: &[u8; 32],
//! ) -> Result<Database<NorFlashDevice<SpiNor<SPI, D>>>, cairndb::Error> {
//!     // A W25Q128JV: 16 MiB, checked against the capacity byte of its JEDEC id.
//!     let config = cairndb_spi_nor::Config {
//!         capacity: Capacity::Checked(16 << 20),
//!         expected_id: Some([0xEF, 0x40, 0x18]),
//!         ..Default::default()
//!     };
//!     let flash = SpiNor::new(spi, delay, config).map_err(|_| cairndb::Error::Io)?;
//!     // The whole chip as littlefs blocks of 4 KiB (`with_range` keeps part for firmware).
//!     let dev = NorFlashDevice::new(flash).map_err(|_| cairndb::Error::InvalidArgument)?;
//!     Database::open_or_format(dev, &Config::default(), &Key::Raw(key)).map_err(|(e, _)| e)
//! }
//! # #[cfg(feature = "sim")]
//! # {
//! #     use cairndb_spi_nor::sim::{SimChip, SimConfig};
//! #     struct NoDelay;
//! #     impl DelayNs for NoDelay { fn delay_ns(&mut self, _: u32) {} }
//! #     let chip = SimChip::new(SimConfig::new([0xEF, 0x40, 0x18], 16 << 20)).unwrap();
//! #     let mut db = open_db(chip, NoDelay, &[7; 32]).unwrap();
//! #     db.kv_put("cfg", b"k", b"v").unwrap();
//! #     assert_eq!(db.kv_get("cfg", b"k").unwrap().as_deref(), Some(&b"v"[..]));
//! # }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "sim")]
extern crate alloc;

#[cfg(feature = "sim")]
pub mod sim;

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{Operation, SpiDevice};
use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Command opcodes of the common 25-series set.
pub mod opcode {
    /// Write Enable: sets WEL, which every program and erase needs.
    pub const WRITE_ENABLE: u8 = 0x06;
    /// Write Disable: clears WEL.
    pub const WRITE_DISABLE: u8 = 0x04;
    /// Read Status Register 1 (WIP bit 0, WEL bit 1).
    pub const READ_STATUS: u8 = 0x05;
    /// Read Data, 3-byte address.
    pub const READ: u8 = 0x03;
    /// Fast Read, 3-byte address and one dummy byte.
    pub const FAST_READ: u8 = 0x0B;
    /// Page Program, 3-byte address, 1 to 256 bytes inside one page.
    pub const PAGE_PROGRAM: u8 = 0x02;
    /// 4 KiB Sector Erase, 3-byte address.
    pub const SECTOR_ERASE: u8 = 0x20;
    /// 64 KiB Block Erase, 3-byte address.
    pub const BLOCK_ERASE: u8 = 0xD8;
    /// Read Data, 4-byte address.
    pub const READ_4B: u8 = 0x13;
    /// Fast Read, 4-byte address and one dummy byte.
    pub const FAST_READ_4B: u8 = 0x0C;
    /// Page Program, 4-byte address.
    pub const PAGE_PROGRAM_4B: u8 = 0x12;
    /// 4 KiB Sector Erase, 4-byte address.
    pub const SECTOR_ERASE_4B: u8 = 0x21;
    /// 64 KiB Block Erase, 4-byte address.
    pub const BLOCK_ERASE_4B: u8 = 0xDC;
    /// Read JEDEC id: manufacturer, memory type, capacity.
    pub const READ_JEDEC_ID: u8 = 0x9F;
    /// Enter deep power-down.
    pub const POWER_DOWN: u8 = 0xB9;
    /// Release from deep power-down.
    pub const RELEASE_POWER_DOWN: u8 = 0xAB;
    /// Enable Reset (must directly precede [`RESET`]).
    pub const RESET_ENABLE: u8 = 0x66;
    /// Reset Device.
    pub const RESET: u8 = 0x99;
}

/// Status register bit: a program or erase is in progress.
pub const STATUS_WIP: u8 = 0x01;
/// Status register bit: the write enable latch is set.
pub const STATUS_WEL: u8 = 0x02;
/// Program page: the unit a page program wraps inside.
pub const PAGE_SIZE: u32 = 256;
/// Sector: the smallest erase unit, and `NorFlash::ERASE_SIZE`.
pub const SECTOR_SIZE: u32 = 4096;
/// Block: the unit of the optional 64 KiB erase.
pub const BLOCK_SIZE: u32 = 65536;
/// Largest capacity reachable with 3-byte addresses.
pub const MAX_3BYTE_CAPACITY: u32 = 1 << 24;
/// Largest supported capacity: `NorFlash` offsets and the exclusive end of an erase are `u32`.
pub const MAX_CAPACITY: u32 = 1 << 31;

/// Wait after a software reset before the next command (tRST is 30 us on most chips).
const RESET_RECOVERY_US: u32 = 100;
/// Wait after entering deep power-down (tDP is 3 us on most chips).
const POWER_DOWN_US: u32 = 10;
/// Bytes read back per transfer when verifying (a stack buffer).
const VERIFY_CHUNK: usize = 32;

/// Where the capacity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// Decoded from the JEDEC id's capacity byte (see [`capacity_from_id`]).
    FromId,
    /// Given in bytes; must agree with the JEDEC id's capacity byte.
    Checked(u32),
    /// Given in bytes; the JEDEC id is not consulted (for chips whose id does not encode the
    /// size as a power of two, such as older Adesto/Atmel parts).
    Trusted(u32),
}

/// Upper bounds for each kind of busy period, in microseconds. Datasheets give maxima of about
/// 3 ms (page program), 400 ms (4 KiB erase) and 2 s (64 KiB erase); the defaults leave a
/// margin for worn or cold chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Page program.
    pub program_us: u32,
    /// 4 KiB sector erase.
    pub sector_erase_us: u32,
    /// 64 KiB block erase; also the wait for a chip found busy at init or after an error.
    pub block_erase_us: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            program_us: 10_000,
            sector_erase_us: 1_000_000,
            block_erase_us: 4_000_000,
        }
    }
}

impl Timeouts {
    fn longest(&self) -> u32 {
        self.program_us
            .max(self.sector_erase_us)
            .max(self.block_erase_us)
    }
}

/// Driver configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The chip's size.
    pub capacity: Capacity,
    /// When set, `new` refuses a chip whose JEDEC id differs.
    pub expected_id: Option<[u8; 3]>,
    /// Read with FAST_READ (one dummy byte) instead of READ: needed above the READ command's
    /// clock limit (around 50 MHz on most chips).
    pub fast_read: bool,
    /// Erase aligned 64 KiB runs with one BLOCK ERASE instead of sixteen sector erases.
    pub block_erase: bool,
    /// Software-reset the chip (0x66, 0x99) at init, after it is idle: brings back a chip left in
    /// an odd mode (continuous read, QPI on some parts) by firmware before an MCU reset.
    pub reset: bool,
    /// Read back every program and erase and compare. Catches chips that silently ignore a
    /// command to a protected area *and* clear WEL, which the WEL check alone cannot see.
    pub verify: bool,
    /// Busy budgets.
    pub timeouts: Timeouts,
    /// First delay between status polls (0 counts as 1); it doubles up to 1/100 of the
    /// operation's budget.
    pub poll_start_us: u32,
    /// Wait after releasing deep power-down (tRES1: 3 us on Winbond, up to 30 us elsewhere).
    pub wake_us: u32,
}

impl Default for Config {
    /// Capacity from the JEDEC id, READ, sector erases only, no reset, no verify.
    fn default() -> Self {
        Config {
            capacity: Capacity::FromId,
            expected_id: None,
            fast_read: false,
            block_erase: false,
            reset: false,
            verify: false,
            timeouts: Timeouts::default(),
            poll_start_us: 10,
            wake_us: 50,
        }
    }
}

/// Why an operation failed. `E` is the SPI device's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI transfer failed.
    Spi(E),
    /// The access leaves the chip.
    OutOfBounds,
    /// An erase range not on sector boundaries.
    NotAligned,
    /// Nothing answers: the JEDEC manufacturer byte or the status register reads as a floating
    /// or grounded line.
    NoDevice,
    /// The JEDEC id differs from [`Config::expected_id`].
    WrongId {
        /// The id the chip reported.
        found: [u8; 3],
    },
    /// [`Capacity::FromId`] and the id's capacity byte means no size this driver knows.
    UnknownCapacity {
        /// The capacity byte.
        code: u8,
    },
    /// [`Capacity::Checked`] disagrees with the id's capacity byte.
    CapacityMismatch {
        /// The configured size in bytes.
        configured: u32,
        /// The id's capacity byte.
        code: u8,
    },
    /// A configured capacity that is zero, not a whole number of sectors or over
    /// [`MAX_CAPACITY`].
    InvalidCapacity,
    /// WEL did not latch after WREN: the chip is write-inhibited (supply below its write
    /// threshold, hardware-locked) or does not listen.
    WriteEnable,
    /// The chip ignored a program or erase (WEL was still set when it went idle): the area is
    /// write-protected by the status register's block-protect bits or a lock.
    WriteProtected,
    /// Read-back after a program or erase differs ([`Config::verify`]).
    Verify {
        /// First address of the chunk that differed.
        address: u32,
    },
    /// The chip stayed busy past the operation's budget.
    Timeout,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "SPI error: {e:?}"),
            Error::OutOfBounds => f.write_str("access outside the chip"),
            Error::NotAligned => f.write_str("erase range not on 4 KiB sector boundaries"),
            Error::NoDevice => f.write_str("no SPI NOR chip answers"),
            Error::WrongId { found } => write!(f, "unexpected JEDEC id {found:02X?}"),
            Error::UnknownCapacity { code } => write!(f, "unknown capacity code {code:#04x}"),
            Error::CapacityMismatch { configured, code } => write!(
                f,
                "configured capacity {configured} disagrees with capacity code {code:#04x}"
            ),
            Error::InvalidCapacity => f.write_str("invalid configured capacity"),
            Error::WriteEnable => f.write_str("write enable latch did not set"),
            Error::WriteProtected => f.write_str("chip ignored a program or erase (protected)"),
            Error::Verify { address } => write!(f, "read-back differs at {address:#x}"),
            Error::Timeout => f.write_str("chip stayed busy past its time budget"),
        }
    }
}

impl<E: fmt::Debug> NorFlashError for Error<E> {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Error::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Error::NotAligned => NorFlashErrorKind::NotAligned,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// The size in bytes a JEDEC capacity byte announces: `2^code` for codes 0x0C..=0x1F (4 KiB
/// to 2 GiB), and `2^(code - 6)` for 0x20..=0x22, the codes Winbond, Micron and Cypress use for
/// 512 Mbit to 2 Gbit parts. `None` for anything else.
pub fn capacity_from_id(code: u8) -> Option<u32> {
    let exp = match code {
        0x0C..=0x1F => u32::from(code),
        0x20..=0x22 => u32::from(code) - 6,
        _ => return None,
    };
    1u32.checked_shl(exp)
}

/// A command header: opcode, address, optional dummy byte.
struct Header {
    buf: [u8; 6],
    len: usize,
}

impl Header {
    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }
}

/// A JEDEC SPI NOR chip behind an SPI device.
///
/// `D` times the status polls: the driver sleeps between them (doubling the interval from
/// [`Config::poll_start_us`]), and bounds them by the sum of the delays it asked for, so the
/// bound holds even when `D` returns at once (it then becomes a bound on the number of polls).
#[derive(Debug)]
pub struct SpiNor<SPI, D> {
    spi: SPI,
    delay: D,
    config: Config,
    id: [u8; 3],
    capacity: u32,
    four_byte: bool,
    /// The last operation failed: the chip may still be busy with it.
    unsettled: bool,
    /// `power_down` was called; the next operation wakes the chip first.
    powered_down: bool,
}

impl<SPI: SpiDevice, D: DelayNs> SpiNor<SPI, D> {
    /// Wakes the chip from deep power-down, waits for a program or erase left running by
    /// firmware before an MCU reset, optionally resets it, reads and checks its JEDEC id and
    /// settles its capacity. Gives the SPI device and delay back on failure.
    #[allow(clippy::type_complexity)]
    pub fn new(spi: SPI, delay: D, config: Config) -> Result<Self, (Error<SPI::Error>, SPI, D)> {
        let mut nor = SpiNor {
            spi,
            delay,
            config,
            id: [0; 3],
            capacity: 0,
            four_byte: false,
            unsettled: false,
            powered_down: false,
        };
        match nor.init() {
            Ok(()) => Ok(nor),
            Err(e) => Err((e, nor.spi, nor.delay)),
        }
    }

    fn init(&mut self) -> Result<(), Error<SPI::Error>> {
        let configured = match self.config.capacity {
            Capacity::FromId => None,
            Capacity::Checked(c) | Capacity::Trusted(c) => Some(c),
        };
        if configured.is_some_and(|c| !capacity_ok(c)) {
            return Err(Error::InvalidCapacity);
        }
        // A chip in deep power-down ignores everything but this.
        self.wake()?;
        // All ones cannot be a real status while idle-or-busy with an operation we know of: it
        // is a floating MISO, and polling it would only end in a timeout.
        if self.read_status()? == 0xFF {
            return Err(Error::NoDevice);
        }
        // The chip keeps programming or erasing through an MCU reset; it ignores the id read
        // until it is done.
        self.wait_ready(self.config.timeouts.longest())?;
        if self.config.reset {
            self.command(opcode::RESET_ENABLE)?;
            self.command(opcode::RESET)?;
            self.delay.delay_us(RESET_RECOVERY_US);
        }
        let mut id = [0u8; 3];
        self.transact(&mut [
            Operation::Write(&[opcode::READ_JEDEC_ID]),
            Operation::Read(&mut id),
        ])?;
        // 0x00 and 0xFF are no JEDEC manufacturer (a grounded or floating MISO).
        if id[0] == 0x00 || id[0] == 0xFF {
            return Err(Error::NoDevice);
        }
        if self.config.expected_id.is_some_and(|e| e != id) {
            return Err(Error::WrongId { found: id });
        }
        let code = id[2];
        let capacity = match self.config.capacity {
            Capacity::FromId => capacity_from_id(code)
                .filter(|&c| capacity_ok(c))
                .ok_or(Error::UnknownCapacity { code })?,
            Capacity::Checked(c) => {
                if capacity_from_id(code) != Some(c) {
                    return Err(Error::CapacityMismatch {
                        configured: c,
                        code,
                    });
                }
                c
            }
            Capacity::Trusted(c) => c,
        };
        self.id = id;
        self.capacity = capacity;
        self.four_byte = capacity > MAX_3BYTE_CAPACITY;
        Ok(())
    }

    /// The JEDEC id read at init: manufacturer, memory type, capacity code.
    pub fn jedec_id(&self) -> [u8; 3] {
        self.id
    }

    /// The chip's size in bytes.
    pub fn size(&self) -> u32 {
        self.capacity
    }

    /// Whether commands carry 4-byte addresses (chips over 16 MiB).
    pub fn four_byte_addressing(&self) -> bool {
        self.four_byte
    }

    /// Reads status register 1 (see [`STATUS_WIP`], [`STATUS_WEL`]).
    pub fn status(&mut self) -> Result<u8, Error<SPI::Error>> {
        self.ready()?;
        self.read_status()
    }

    /// Puts the chip into deep power-down (a few uA) once it is idle. Any later operation wakes
    /// it first.
    pub fn power_down(&mut self) -> Result<(), Error<SPI::Error>> {
        self.ready()?;
        self.command(opcode::POWER_DOWN)?;
        self.delay.delay_us(POWER_DOWN_US);
        self.powered_down = true;
        Ok(())
    }

    /// The SPI device.
    pub fn spi(&self) -> &SPI {
        &self.spi
    }

    /// The SPI device, mutably (for chip-specific commands; leave the chip idle and out of
    /// deep power-down).
    pub fn spi_mut(&mut self) -> &mut SPI {
        &mut self.spi
    }

    /// Gives the SPI device and the delay back.
    pub fn release(self) -> (SPI, D) {
        (self.spi, self.delay)
    }

    fn transact(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Error<SPI::Error>> {
        self.spi.transaction(ops).map_err(Error::Spi)
    }

    fn command(&mut self, op: u8) -> Result<(), Error<SPI::Error>> {
        self.transact(&mut [Operation::Write(&[op])])
    }

    fn read_status(&mut self) -> Result<u8, Error<SPI::Error>> {
        let mut s = [0u8; 1];
        self.transact(&mut [
            Operation::Write(&[opcode::READ_STATUS]),
            Operation::Read(&mut s),
        ])?;
        Ok(s[0])
    }

    fn wake(&mut self) -> Result<(), Error<SPI::Error>> {
        self.command(opcode::RELEASE_POWER_DOWN)?;
        self.delay.delay_us(self.config.wake_us);
        self.powered_down = false;
        Ok(())
    }

    /// Before an operation: wake the chip, and after a failed operation wait until it is idle.
    fn ready(&mut self) -> Result<(), Error<SPI::Error>> {
        if self.powered_down {
            self.wake()?;
        }
        if self.unsettled {
            self.wait_ready(self.config.timeouts.longest())?;
            self.unsettled = false;
        }
        Ok(())
    }

    /// Polls RDSR until WIP clears, with a delay that doubles from `poll_start_us` up to 1/100
    /// of the budget (so a finished operation is noticed within about 1% of its worst case, and
    /// a short one within its own duration). Ends with `Timeout` once the delays asked for add
    /// up to `budget_us`. Returns the last status.
    fn wait_ready(&mut self, budget_us: u32) -> Result<u8, Error<SPI::Error>> {
        let mut waited: u32 = 0;
        let mut step = self.config.poll_start_us.max(1);
        let cap = (budget_us / 100).max(step);
        loop {
            let status = self.read_status()?;
            if status & STATUS_WIP == 0 {
                return Ok(status);
            }
            // Every pass adds at least 1 to `waited`, so this is reached.
            let left = budget_us.saturating_sub(waited);
            if left == 0 {
                return Err(Error::Timeout);
            }
            let d = step.min(left);
            self.delay.delay_us(d);
            waited = waited.saturating_add(d);
            step = step.saturating_mul(2).min(cap);
        }
    }

    /// WREN, then check that WEL latched.
    fn write_enable(&mut self) -> Result<(), Error<SPI::Error>> {
        self.command(opcode::WRITE_ENABLE)?;
        if self.read_status()? & STATUS_WEL == 0 {
            return Err(Error::WriteEnable);
        }
        Ok(())
    }

    /// Waits for the program or erase just issued; a chip that went idle with WEL still set
    /// never ran it (protected area), so clear WEL and report it.
    fn finish(&mut self, budget_us: u32) -> Result<(), Error<SPI::Error>> {
        if self.wait_ready(budget_us)? & STATUS_WEL != 0 {
            self.command(opcode::WRITE_DISABLE)?;
            return Err(Error::WriteProtected);
        }
        Ok(())
    }

    /// Opcode (3- or 4-byte variant), address, and a dummy byte if asked.
    fn header(&self, op3: u8, op4: u8, addr: u32, dummy: bool) -> Header {
        let a = addr.to_be_bytes();
        let (buf, len) = if self.four_byte {
            ([op4, a[0], a[1], a[2], a[3], 0], 5)
        } else {
            ([op3, a[1], a[2], a[3], 0, 0], 4)
        };
        Header {
            buf,
            len: if dummy { len + 1 } else { len },
        }
    }

    /// `offset .. offset + len` lies on the chip.
    fn in_bounds(&self, offset: u32, len: usize) -> bool {
        u64::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(u64::from(offset)))
            .is_some_and(|end| end <= u64::from(self.capacity))
    }

    /// Runs `f` between the pre-operation checks and the bookkeeping that makes the next
    /// operation wait out whatever a failure left running.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), Error<SPI::Error>>,
    ) -> Result<(), Error<SPI::Error>> {
        self.ready()?;
        let r = f(self);
        self.unsettled = r.is_err();
        r
    }

    fn read_raw(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        let h = if self.config.fast_read {
            self.header(opcode::FAST_READ, opcode::FAST_READ_4B, offset, true)
        } else {
            self.header(opcode::READ, opcode::READ_4B, offset, false)
        };
        self.spi
            .transaction(&mut [Operation::Write(h.as_slice()), Operation::Read(buf)])
            .map_err(Error::Spi)
    }

    /// One page program; `data` lies inside one page (the caller splits).
    fn program_page(&mut self, addr: u32, data: &[u8]) -> Result<(), Error<SPI::Error>> {
        self.write_enable()?;
        let h = self.header(opcode::PAGE_PROGRAM, opcode::PAGE_PROGRAM_4B, addr, false);
        self.spi
            .transaction(&mut [Operation::Write(h.as_slice()), Operation::Write(data)])
            .map_err(Error::Spi)?;
        self.finish(self.config.timeouts.program_us)?;
        if self.config.verify {
            // Every 0 bit asked for must read 0 (bits already 0 may stay 0: NOR AND).
            self.verify(addr, data.len(), |i, got| {
                data.get(i).is_some_and(|&want| got & !want == 0)
            })?;
        }
        Ok(())
    }

    /// One sector or block erase at `addr` of `size` bytes.
    fn erase_unit(&mut self, addr: u32, size: u32) -> Result<(), Error<SPI::Error>> {
        let (op3, op4, budget) = if size == BLOCK_SIZE {
            (
                opcode::BLOCK_ERASE,
                opcode::BLOCK_ERASE_4B,
                self.config.timeouts.block_erase_us,
            )
        } else {
            (
                opcode::SECTOR_ERASE,
                opcode::SECTOR_ERASE_4B,
                self.config.timeouts.sector_erase_us,
            )
        };
        self.write_enable()?;
        let h = self.header(op3, op4, addr, false);
        self.transact_header(&h)?;
        self.finish(budget)?;
        if self.config.verify {
            let len = usize::try_from(size).map_err(|_| Error::OutOfBounds)?;
            self.verify(addr, len, |_, got| got == 0xFF)?;
        }
        Ok(())
    }

    fn transact_header(&mut self, h: &Header) -> Result<(), Error<SPI::Error>> {
        self.spi
            .transaction(&mut [Operation::Write(h.as_slice())])
            .map_err(Error::Spi)
    }

    /// Reads `len` bytes from `addr` in small chunks and checks each byte with `ok(index, byte)`.
    fn verify(
        &mut self,
        addr: u32,
        len: usize,
        ok: impl Fn(usize, u8) -> bool,
    ) -> Result<(), Error<SPI::Error>> {
        let mut buf = [0u8; VERIFY_CHUNK];
        let mut done = 0usize;
        while done < len {
            let n = len.saturating_sub(done).min(VERIFY_CHUNK);
            let at = u32::try_from(done)
                .ok()
                .and_then(|d| addr.checked_add(d))
                .ok_or(Error::OutOfBounds)?;
            let chunk = buf.get_mut(..n).ok_or(Error::OutOfBounds)?;
            self.read_raw(at, chunk)?;
            let bad = chunk
                .iter()
                .enumerate()
                .any(|(i, &b)| !ok(done.saturating_add(i), b));
            if bad {
                return Err(Error::Verify { address: at });
            }
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

/// A size this driver can address: whole sectors, at most [`MAX_CAPACITY`].
fn capacity_ok(c: u32) -> bool {
    c != 0 && c % SECTOR_SIZE == 0 && c <= MAX_CAPACITY
}

impl<SPI: SpiDevice, D: DelayNs> ErrorType for SpiNor<SPI, D> {
    type Error = Error<SPI::Error>;
}

impl<SPI: SpiDevice, D: DelayNs> ReadNorFlash for SpiNor<SPI, D> {
    const READ_SIZE: usize = 1;

    /// One READ (or FAST_READ) transaction: the chip streams across pages and sectors.
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if !self.in_bounds(offset, bytes.len()) {
            return Err(Error::OutOfBounds);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.guarded(|nor| nor.read_raw(offset, bytes))
    }

    fn capacity(&self) -> usize {
        usize::try_from(self.capacity).unwrap_or(usize::MAX)
    }
}

impl<SPI: SpiDevice, D: DelayNs> NorFlash for SpiNor<SPI, D> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR_SIZE as usize;

    /// Sector erases, or block erases over aligned 64 KiB runs when [`Config::block_erase`].
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if from > to || to > self.capacity {
            return Err(Error::OutOfBounds);
        }
        if from % SECTOR_SIZE != 0 || to % SECTOR_SIZE != 0 {
            return Err(Error::NotAligned);
        }
        self.guarded(|nor| {
            let mut addr = from;
            while addr < to {
                let left = to.saturating_sub(addr);
                let size = if nor.config.block_erase && addr % BLOCK_SIZE == 0 && left >= BLOCK_SIZE
                {
                    BLOCK_SIZE
                } else {
                    SECTOR_SIZE
                };
                nor.erase_unit(addr, size)?;
                addr = addr.saturating_add(size);
            }
            Ok(())
        })
    }

    /// Page programs split at every 256-byte page boundary.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if !self.in_bounds(offset, bytes.len()) {
            return Err(Error::OutOfBounds);
        }
        self.guarded(|nor| {
            let mut addr = offset;
            let mut rest = bytes;
            while !rest.is_empty() {
                // 1..=256: the bytes left in the page `addr` is in.
                let room = usize::try_from(PAGE_SIZE - addr % PAGE_SIZE).unwrap_or(1);
                let (page, tail) = rest
                    .split_at_checked(room.min(rest.len()))
                    .ok_or(Error::OutOfBounds)?;
                nor.program_page(addr, page)?;
                // In bounds: `offset + bytes.len() <= capacity <= 2^31`.
                addr = addr.saturating_add(u32::try_from(page.len()).unwrap_or(PAGE_SIZE));
                rest = tail;
            }
            Ok(())
        })
    }
}

/// NOR programming only clears bits, and a page program over bytes that are already
/// programmed clears the further bits asked for without disturbing the others, so writing a
/// location more than once without an erase is allowed. (Parts with internal ECC restrict this
/// per ECC unit; check the datasheet before relying on it there.)
impl<SPI: SpiDevice, D: DelayNs> MultiwriteNorFlash for SpiNor<SPI, D> {}
