//! A backup ring: scheduled full and incremental backups kept on a raw flash partition, always
//! with one complete chain to restore from.
//!
//! The partition is cut into two chain areas, each of `slots` equal slots. A chain is a full
//! backup in slot 0 of its area followed by incrementals in slots 1, 2, …, each naming the one
//! before as its parent. [`BackupRing::backup`] appends an incremental to the chain the
//! database's last backup ends, and when that chain is full (or the database's history no
//! longer continues it) writes a new full backup into the *other* area: the chain in use is
//! never overwritten, so a power cut during any backup leaves the previous chain whole.
//!
//! Nothing but backup streams is stored on the partition. Which slots hold a chain is read
//! back from the streams' authenticated headers (parent links); a slot torn by a power cut or
//! left from an older generation breaks the link and ends the chain there.

use super::backups::BackupKeySpec;
use super::{Database, RestoreReport};
use crate::backup::{BackupHeader, BackupInfo, BackupKind, DeviceSink, DeviceSource};
use crate::flash::{BlockDevice, FlashError, Geometry};
use crate::{Error, Result};
use alloc::vec::Vec;
use core::cell::RefCell;

/// Most slots one chain area holds (a restore takes at most this many streams).
pub const MAX_RING_SLOTS: u32 = 16;

/// Where a ring lives: `block_count` blocks from `first_block` of a partition device, split
/// into two areas of `slots` slots each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupRing {
    pub first_block: u32,
    pub block_count: u32,
    /// Slots per chain area: one full backup and up to `slots - 1` incrementals (2 to 16).
    pub slots: u32,
}

/// What [`BackupRing::backup`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingBackup {
    /// The stream written (its kind says full or incremental).
    pub info: BackupInfo,
    /// Its chain area (0 or 1) and slot.
    pub area: u32,
    pub slot: u32,
}

/// The chains a ring holds, by their headers (not verified to their ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStatus {
    /// Linked streams found in each area (0: no chain).
    pub chain_len: [u32; 2],
    /// The area a restore would use first (the newest chain), if any chain exists.
    pub newest: Option<u32>,
    /// Blocks per slot.
    pub slot_blocks: u32,
}

/// A partition device shared by the several streams of one restore: each flash call borrows
/// it for that call only.
struct SharedDev<'a, P: BlockDevice>(&'a RefCell<P>);

impl<P: BlockDevice> BlockDevice for SharedDev<'_, P> {
    fn geometry(&self) -> Geometry {
        match self.0.try_borrow() {
            Ok(p) => p.geometry(),
            // Unreachable in practice (calls never overlap); a zero geometry is refused.
            Err(_) => Geometry {
                read_size: 0,
                prog_size: 0,
                block_size: 0,
                block_count: 0,
            },
        }
    }
    fn read(
        &mut self,
        block: u32,
        off: u32,
        buf: &mut [u8],
    ) -> core::result::Result<(), FlashError> {
        let mut p = self.0.try_borrow_mut().map_err(|_| FlashError::Io)?;
        p.read(block, off, buf)
    }
    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> core::result::Result<(), FlashError> {
        let mut p = self.0.try_borrow_mut().map_err(|_| FlashError::Io)?;
        p.prog(block, off, data)
    }
    fn erase(&mut self, block: u32) -> core::result::Result<(), FlashError> {
        let mut p = self.0.try_borrow_mut().map_err(|_| FlashError::Io)?;
        p.erase(block)
    }
    fn sync(&mut self) -> core::result::Result<(), FlashError> {
        let mut p = self.0.try_borrow_mut().map_err(|_| FlashError::Io)?;
        p.sync()
    }
}

impl BackupRing {
    /// A ring over `block_count` blocks from `first_block`, two areas of `slots` slots.
    /// [`Error::InvalidArgument`] when `slots` is outside 2..=16 or a slot would get no block.
    pub fn new(first_block: u32, block_count: u32, slots: u32) -> Result<Self> {
        let ring = BackupRing {
            first_block,
            block_count,
            slots,
        };
        ring.slot_blocks()?;
        Ok(ring)
    }

    /// Blocks per slot.
    pub fn slot_blocks(&self) -> Result<u32> {
        if !(2..=MAX_RING_SLOTS).contains(&self.slots) {
            return Err(Error::InvalidArgument);
        }
        match self.block_count / (2 * self.slots) {
            0 => Err(Error::InvalidArgument),
            n => Ok(n),
        }
    }

    /// First block of `slot` in `area`.
    fn slot_start(&self, area: u32, slot: u32) -> Result<u32> {
        let n = self.slot_blocks()?;
        area.checked_mul(self.slots)
            .and_then(|s| s.checked_add(slot))
            .and_then(|s| s.checked_mul(n))
            .and_then(|s| s.checked_add(self.first_block))
            .ok_or(Error::InvalidArgument)
    }

    /// The linked headers of `area`: slot 0 a full backup, each next slot's parent the slot
    /// before. Only headers are read (authenticated); bodies are not verified. The flag tells
    /// whether slot 0 holds a stream under another key (a wrong key, or a chain from before
    /// a rekey).
    fn chain_headers<D: BlockDevice, P: BlockDevice>(
        &self,
        db: &Database<D>,
        part: &mut P,
        area: u32,
        key: &BackupKeySpec<'_>,
    ) -> Result<(Vec<BackupHeader>, bool)> {
        let n = self.slot_blocks()?;
        let mut chain: Vec<BackupHeader> = Vec::new();
        let mut other_key = false;
        for slot in 0..self.slots {
            let src = DeviceSource::new(&mut *part, self.slot_start(area, slot)?, n)?;
            let header = match db.peek_backup(src, key) {
                Ok(h) => h,
                // Erased, torn or foreign bytes: the chain ends before this slot.
                Err(Error::WrongKey | Error::KeyMismatch) => {
                    other_key = slot == 0;
                    break;
                }
                Err(Error::BadBackup) => break,
                Err(e) => return Err(e),
            };
            let linked = match chain.last() {
                None => header.kind == BackupKind::Full,
                Some(prev) => {
                    header.kind == BackupKind::Incremental
                        && header.parent_id == prev.backup_id
                        && header.base_seq == prev.end_seq
                        && header.db_id == prev.db_id
                }
            };
            if !linked {
                break;
            }
            chain.try_reserve(1).map_err(|_| Error::NoMemory)?;
            chain.push(header);
        }
        Ok((chain, other_key))
    }

    /// Both areas' chains.
    fn chains<D: BlockDevice, P: BlockDevice>(
        &self,
        db: &Database<D>,
        part: &mut P,
        key: &BackupKeySpec<'_>,
    ) -> Result<([Vec<BackupHeader>; 2], bool)> {
        let (a, ka) = self.chain_headers(db, part, 0, key)?;
        let (b, kb) = self.chain_headers(db, part, 1, key)?;
        Ok(([a, b], ka || kb))
    }

    /// Which area holds the newer chain: the one whose last stream was written later
    /// (database time never goes back; equal times fall back on the sequence number). Not
    /// the newer full backup: a full written just before a power cut, whose record in the
    /// database was lost, is followed by incrementals in the other area.
    fn newest(a: &[BackupHeader], b: &[BackupHeader]) -> Option<u32> {
        match (a.last(), b.last()) {
            (None, None) => None,
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (Some(x), Some(y)) => {
                if (y.created, y.end_seq) > (x.created, x.end_seq) {
                    Some(1)
                } else {
                    Some(0)
                }
            }
        }
    }

    /// The chains on the partition, by their headers.
    pub fn status<D: BlockDevice, P: BlockDevice>(
        &self,
        db: &Database<D>,
        part: &mut P,
        key: &BackupKeySpec<'_>,
    ) -> Result<RingStatus> {
        let ([a, b], _) = self.chains(db, part, key)?;
        Ok(RingStatus {
            chain_len: [a.len() as u32, b.len() as u32],
            newest: Self::newest(&a, &b),
            slot_blocks: self.slot_blocks()?,
        })
    }

    /// Takes the next scheduled backup: an incremental appended to the chain that ends with
    /// the database's last backup, or, when that chain is full, missing or no longer
    /// continued by the database, a full backup into the other area (never the area in use).
    pub fn backup<D: BlockDevice, P: BlockDevice>(
        &self,
        db: &mut Database<D>,
        part: &mut P,
        key: &BackupKeySpec<'_>,
    ) -> Result<RingBackup> {
        let n = self.slot_blocks()?;
        let (chains, _) = self.chains(db, part, key)?;
        let last = db.last_backup()?;
        // The area whose chain ends with the database's last backup: an incremental continues
        // it while a slot is left.
        let current = last.and_then(|lb| {
            (0..2u32).find(|&a| {
                chains
                    .get(a as usize)
                    .and_then(|c| c.last())
                    .is_some_and(|h| h.backup_id == lb.backup_id)
            })
        });
        if let Some(area) = current {
            let slot = chains.get(area as usize).map_or(0, |c| c.len() as u32);
            if slot < self.slots {
                let sink = DeviceSink::new(&mut *part, self.slot_start(area, slot)?, n)?;
                match db.backup_incremental(sink, key) {
                    Ok(info) => return Ok(RingBackup { info, area, slot }),
                    // History no longer continues the chain: start a new one below.
                    Err(Error::BackupChain) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // A full backup goes where it destroys nothing needed: away from the area in use, or
        // (with no area in use) over the older chain.
        let area = match current {
            Some(a) => 1 - a,
            None => match Self::newest(&chains[0], &chains[1]) {
                Some(newest) => 1 - newest,
                None => 0,
            },
        };
        let sink = DeviceSink::new(&mut *part, self.slot_start(area, 0)?, n)?;
        let info = db.backup_full(sink, key)?;
        Ok(RingBackup {
            info,
            area,
            slot: 0,
        })
    }

    /// Restores the newest chain that verifies: every stream of it is verified to its end
    /// first, so a chain whose tail was torn by a power cut restores up to its last whole
    /// stream, and a torn full backup falls back on the other area's chain. The restore itself
    /// is atomic ([`Database::restore`]). [`Error::NotFound`] when the ring holds no chain,
    /// [`Error::WrongKey`] when it holds streams under another key only.
    pub fn restore<D: BlockDevice, P: BlockDevice>(
        &self,
        db: &mut Database<D>,
        part: &mut P,
        key: &BackupKeySpec<'_>,
    ) -> Result<RestoreReport> {
        let n = self.slot_blocks()?;
        let (mut chains, other_key) = self.chains(db, part, key)?;
        // Keep each chain's prefix whose streams verify completely.
        for (area, chain) in chains.iter_mut().enumerate() {
            let mut whole = 0;
            for slot in 0..chain.len() as u32 {
                let src = DeviceSource::new(&mut *part, self.slot_start(area as u32, slot)?, n)?;
                match db.verify_backup(src, key) {
                    Ok(_) => whole += 1,
                    Err(Error::BadBackup) => break,
                    Err(e) => return Err(e),
                }
            }
            chain.truncate(whole);
        }
        let area = match Self::newest(&chains[0], &chains[1]) {
            Some(a) => a,
            None if other_key => return Err(Error::WrongKey),
            None => return Err(Error::NotFound),
        };
        let len = chains.get(area as usize).map_or(0, |c| c.len() as u32);
        let shared = RefCell::new(part);
        let mut sources = Vec::new();
        sources
            .try_reserve_exact(len as usize)
            .map_err(|_| Error::NoMemory)?;
        for slot in 0..len {
            sources.push(DeviceSource::new(
                SharedDev(&shared),
                self.slot_start(area, slot)?,
                n,
            )?);
        }
        db.restore(&mut sources, key)
    }
}
