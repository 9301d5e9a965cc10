//! A JEDEC SPI NOR flash driver over an embedded-hal 1.0 [`SpiDevice`], implementing the
//! embedded-storage [`NorFlash`] traits, so that cairndb (through
//! `cairndb::flash::NorFlashDevice`) or anything else that speaks `NorFlash` runs on the
//! common 25-series serial flash chips (Winbond W25Q, Macronix MX25, GigaDevice GD25, ...).
//!
//! Only the command set every JEDEC chip shares is used: `0x9F` read id, `0xAB` release from
//! deep power-down, `0x05` read status, `0x06` write enable, `0x03`/`0x0B` read, `0x02` page
//! program, `0x20` 4 KiB sector erase and `0xD8` 64 KiB block erase, with 3-byte addresses
//! (chips up to 16 MiB; larger ones need 4-byte addressing, which this driver refuses rather
//! than silently reaching only the first 16 MiB).
//!
//! Rules that keep data safe, each against a real failure:
//! - a page program never crosses a 256-byte page: the chip would wrap to the start of the
//!   page and overwrite bytes the caller did not mean to touch;
//! - after write enable the status register must show WEL, else the chip is write-protected
//!   (WP# pin, block protection bits) and the program or erase would be silently dropped;
//! - busy polling is bounded (`max_polls`, with a delay between polls): a chip that never
//!   finishes is a [`Error::Timeout`], never a hung task;
//! - bounds and alignment are checked before any bus traffic.
//!
//! ```no_run
//! # fn demo<S: embedded_hal::spi::SpiDevice, D: embedded_hal::delay::DelayNs>(spi: S, delay: D) {
//! use cairndb_spi_nor::{Config, SpiNor};
//! let flash = SpiNor::new(spi, delay, Config::new(8 * 1024 * 1024)).ok().unwrap();
//! // The database on blocks 16.. of the chip; firmware data below.
//! let dev = cairndb::flash::NorFlashDevice::with_range(flash, 16, 2032).ok().unwrap();
//! # let _ = dev;
//! # }
//! ```

#![no_std]

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{Operation, SpiDevice};
use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Bytes per program page.
pub const PAGE_SIZE: u32 = 256;
/// Bytes per sector (the erase unit this driver exposes).
pub const SECTOR_SIZE: u32 = 4096;
/// Bytes per 64 KiB block (the optional faster erase).
pub const BLOCK_SIZE: u32 = 65536;
/// Largest capacity 3-byte addresses reach.
pub const MAX_CAPACITY: u32 = 1 << 24;

const CMD_READ: u8 = 0x03;
const CMD_FAST_READ: u8 = 0x0B;
const CMD_PAGE_PROGRAM: u8 = 0x02;
const CMD_SECTOR_ERASE: u8 = 0x20;
const CMD_BLOCK_ERASE: u8 = 0xD8;
const CMD_WRITE_ENABLE: u8 = 0x06;
const CMD_READ_STATUS: u8 = 0x05;
const CMD_READ_ID: u8 = 0x9F;
const CMD_RELEASE_POWER_DOWN: u8 = 0xAB;

const STATUS_WIP: u8 = 0x01;
const STATUS_WEL: u8 = 0x02;

/// Settings of a chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Capacity in bytes: a multiple of 4 KiB, at most 16 MiB.
    pub capacity: u32,
    /// When set, the JEDEC id (manufacturer, memory type, capacity code) must be this.
    pub expected_id: Option<[u8; 3]>,
    /// Check that the id's capacity code (2^n bytes) agrees with `capacity`.
    pub check_capacity: bool,
    /// Use FAST_READ (0x0B, one dummy byte) for reads: needed above about 50 MHz.
    pub fast_read: bool,
    /// Erase 64 KiB blocks with one command when a range covers them (faster on most chips).
    pub block_erase: bool,
    /// Most status polls before a program or erase is declared stuck.
    pub max_polls: u32,
    /// Delay between status polls, in microseconds.
    pub poll_delay_us: u32,
}

impl Config {
    /// Defaults for a chip of `capacity` bytes: plain READ, sector erases only, polls every
    /// 100 µs for up to 5 s (a 64 KiB erase takes up to 2 s on common parts).
    pub const fn new(capacity: u32) -> Self {
        Config {
            capacity,
            expected_id: None,
            check_capacity: false,
            fast_read: false,
            block_erase: false,
            max_polls: 50_000,
            poll_delay_us: 100,
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus failed.
    Spi(E),
    /// No chip answers (id all 0x00 or 0xFF), or it is not the expected one.
    WrongChip([u8; 3]),
    /// The configuration is unusable (capacity zero, not a multiple of 4 KiB, over 16 MiB,
    /// or not what the id says).
    BadConfig,
    /// Outside the chip.
    OutOfBounds,
    /// An erase range not on sector boundaries.
    NotAligned,
    /// Write enable did not take: the chip is write-protected.
    WriteProtected,
    /// The chip stayed busy for `max_polls` polls.
    Timeout,
}

impl<E: core::fmt::Debug> NorFlashError for Error<E> {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Error::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Error::NotAligned => NorFlashErrorKind::NotAligned,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// A JEDEC SPI NOR chip.
#[derive(Debug)]
pub struct SpiNor<SPI, D> {
    spi: SPI,
    delay: D,
    config: Config,
    id: [u8; 3],
}

impl<SPI: SpiDevice, D: DelayNs> SpiNor<SPI, D> {
    /// Wakes the chip from deep power-down, reads its id and checks it and the configuration.
    /// Gives the bus and delay back with the error.
    #[allow(clippy::type_complexity)]
    pub fn new(spi: SPI, delay: D, config: Config) -> Result<Self, (Error<SPI::Error>, SPI, D)> {
        let mut nor = SpiNor {
            spi,
            delay,
            config,
            id: [0; 3],
        };
        match nor.init() {
            Ok(()) => Ok(nor),
            Err(e) => Err((e, nor.spi, nor.delay)),
        }
    }

    fn init(&mut self) -> Result<(), Error<SPI::Error>> {
        let cap = self.config.capacity;
        if cap == 0 || cap % SECTOR_SIZE != 0 || cap > MAX_CAPACITY {
            return Err(Error::BadConfig);
        }
        self.spi
            .write(&[CMD_RELEASE_POWER_DOWN])
            .map_err(Error::Spi)?;
        // tRES1 is at most a few µs on common parts.
        self.delay.delay_us(50);
        let mut id = [0u8; 3];
        self.spi
            .transaction(&mut [Operation::Write(&[CMD_READ_ID]), Operation::Read(&mut id)])
            .map_err(Error::Spi)?;
        self.id = id;
        if id == [0; 3] || id == [0xFF; 3] {
            return Err(Error::WrongChip(id));
        }
        if self.config.expected_id.is_some_and(|want| want != id) {
            return Err(Error::WrongChip(id));
        }
        if self.config.check_capacity {
            let code = u32::from(id[2]);
            if code >= 32 || 1u32 << code != cap {
                return Err(Error::BadConfig);
            }
        }
        Ok(())
    }

    /// The JEDEC id read at init: manufacturer, memory type, capacity code.
    pub fn jedec_id(&self) -> [u8; 3] {
        self.id
    }

    /// The bus and delay back.
    pub fn release(self) -> (SPI, D) {
        (self.spi, self.delay)
    }

    fn status(&mut self) -> Result<u8, Error<SPI::Error>> {
        let mut s = [0u8; 1];
        self.spi
            .transaction(&mut [
                Operation::Write(&[CMD_READ_STATUS]),
                Operation::Read(&mut s),
            ])
            .map_err(Error::Spi)?;
        Ok(s[0])
    }

    /// Polls until the chip is idle, at most `max_polls` times.
    fn wait_idle(&mut self) -> Result<(), Error<SPI::Error>> {
        for _ in 0..self.config.max_polls.max(1) {
            if self.status()? & STATUS_WIP == 0 {
                return Ok(());
            }
            self.delay.delay_us(self.config.poll_delay_us);
        }
        Err(Error::Timeout)
    }

    /// Write enable, checked: a protected chip ignores it and would drop the next command.
    fn write_enable(&mut self) -> Result<(), Error<SPI::Error>> {
        self.spi.write(&[CMD_WRITE_ENABLE]).map_err(Error::Spi)?;
        if self.status()? & STATUS_WEL == 0 {
            return Err(Error::WriteProtected);
        }
        Ok(())
    }

    fn check_range(&self, offset: u32, len: usize) -> Result<(), Error<SPI::Error>> {
        let len = u32::try_from(len).map_err(|_| Error::OutOfBounds)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.config.capacity => Ok(()),
            _ => Err(Error::OutOfBounds),
        }
    }

    fn command(cmd: u8, addr: u32) -> [u8; 4] {
        let a = addr.to_be_bytes();
        [cmd, a[1], a[2], a[3]]
    }

    /// Reads `buf.len()` bytes from `offset`.
    pub fn read_at(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        self.wait_idle()?;
        if self.config.fast_read {
            let c = Self::command(CMD_FAST_READ, offset);
            let cmd = [c[0], c[1], c[2], c[3], 0];
            self.spi
                .transaction(&mut [Operation::Write(&cmd), Operation::Read(buf)])
                .map_err(Error::Spi)
        } else {
            let cmd = Self::command(CMD_READ, offset);
            self.spi
                .transaction(&mut [Operation::Write(&cmd), Operation::Read(buf)])
                .map_err(Error::Spi)
        }
    }

    /// Programs `data` at `offset` (NOR: bits only go from 1 to 0), page by page.
    pub fn program_at(&mut self, offset: u32, data: &[u8]) -> Result<(), Error<SPI::Error>> {
        self.check_range(offset, data.len())?;
        let mut addr = offset;
        let mut rest = data;
        while !rest.is_empty() {
            // Never cross a page: the chip would wrap inside it.
            let room = (PAGE_SIZE - addr % PAGE_SIZE) as usize;
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            self.wait_idle()?;
            self.write_enable()?;
            let cmd = Self::command(CMD_PAGE_PROGRAM, addr);
            self.spi
                .transaction(&mut [Operation::Write(&cmd), Operation::Write(chunk)])
                .map_err(Error::Spi)?;
            self.wait_idle()?;
            addr = addr.saturating_add(chunk.len() as u32);
            rest = tail;
        }
        Ok(())
    }

    /// Erases `from..to` (sector aligned) to 0xFF, with 64 KiB block erases where the range
    /// covers whole blocks and the config allows them.
    pub fn erase_range(&mut self, from: u32, to: u32) -> Result<(), Error<SPI::Error>> {
        if from > to || to > self.config.capacity {
            return Err(Error::OutOfBounds);
        }
        if from % SECTOR_SIZE != 0 || to % SECTOR_SIZE != 0 {
            return Err(Error::NotAligned);
        }
        let mut addr = from;
        while addr < to {
            let block = self.config.block_erase
                && addr % BLOCK_SIZE == 0
                && to.checked_sub(addr).is_some_and(|n| n >= BLOCK_SIZE);
            let (cmd, step) = if block {
                (CMD_BLOCK_ERASE, BLOCK_SIZE)
            } else {
                (CMD_SECTOR_ERASE, SECTOR_SIZE)
            };
            self.wait_idle()?;
            self.write_enable()?;
            self.spi
                .write(&Self::command(cmd, addr))
                .map_err(Error::Spi)?;
            self.wait_idle()?;
            addr = addr.saturating_add(step);
        }
        Ok(())
    }
}

impl<SPI: SpiDevice, D: DelayNs> ErrorType for SpiNor<SPI, D> {
    type Error = Error<SPI::Error>;
}

impl<SPI: SpiDevice, D: DelayNs> ReadNorFlash for SpiNor<SPI, D> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.read_at(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.config.capacity as usize
    }
}

impl<SPI: SpiDevice, D: DelayNs> NorFlash for SpiNor<SPI, D> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR_SIZE as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.erase_range(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.program_at(offset, bytes)
    }
}

/// NOR can program bits from 1 to 0 again over programmed bytes.
impl<SPI: SpiDevice, D: DelayNs> MultiwriteNorFlash for SpiNor<SPI, D> {}
