//! `SimFlash`: a strict simulated NOR flash for power-loss, wear and cost tests.
//!
//! It enforces the [`BlockDevice`] contract instead of trusting it: any access that breaks it
//! (misaligned, out of range, programming a word that is not erased) fails with
//! [`FlashError::Io`], changes nothing, and increments [`SimFlash::violations`], which tests
//! assert stays 0. On top of that it counts operations, simulates power cuts that tear the
//! interrupted operation the way real NOR does, wears blocks out, and injects faults. All
//! randomness comes from a seeded PRNG, so every run is reproducible.
//!
//! Accounting rules (what the counters mean):
//! - a call refused because power is cut, or because it is a violation, counts nowhere;
//! - every other call counts in [`SimFlash::stats`], and a `prog` or `erase` also in
//!   [`SimFlash::ops`], whatever its outcome (success, bad block, injected fault, power cut);
//! - [`SimFlash::erase_counts`] counts erase cycles a block went through: completed and
//!   interrupted erases, but not erases refused because the block is bad.

use super::check::{geometry_ok, locate_usize, try_filled};
use super::{BlockDevice, FlashError, Geometry};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// Operation counters of a [`SimFlash`]; see the module docs for what counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// `read` calls.
    pub reads: u64,
    /// Bytes read by those calls.
    pub bytes_read: u64,
    /// `prog` calls.
    pub progs: u64,
    /// Bytes passed to those calls.
    pub bytes_programmed: u64,
    /// `erase` calls.
    pub erases: u64,
    /// `sync` calls.
    pub syncs: u64,
}

impl FlashStats {
    /// What happened between `earlier` and `self` (field-wise difference, saturating at 0).
    pub fn since(&self, earlier: FlashStats) -> FlashStats {
        FlashStats {
            reads: self.reads.saturating_sub(earlier.reads),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            progs: self.progs.saturating_sub(earlier.progs),
            bytes_programmed: self
                .bytes_programmed
                .saturating_sub(earlier.bytes_programmed),
            erases: self.erases.saturating_sub(earlier.erases),
            syncs: self.syncs.saturating_sub(earlier.syncs),
        }
    }
}

/// SplitMix64: tiny, good enough to pick torn prefixes and bits, and any seed works.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=max` (the slight modulo bias does not matter here).
    fn up_to(&mut self, max: usize) -> usize {
        let r = self.next();
        match u64::try_from(max).ok().and_then(|m| m.checked_add(1)) {
            // The result is at most `max`, so it fits.
            Some(n) => usize::try_from(r % n).unwrap_or(max),
            None => usize::try_from(r).unwrap_or(max),
        }
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// Seed used until [`SimFlash::set_seed`] is called.
const DEFAULT_SEED: u64 = 0xCA1B_DB00_5EED_0001;

/// A strict simulated NOR flash held in memory; see the module docs.
#[derive(Clone)]
pub struct SimFlash {
    geometry: Geometry,
    data: Vec<u8>,
    erase_counts: Vec<u32>,
    /// Bad blocks, usually none or a few.
    bad: Vec<u32>,
    stats: FlashStats,
    violations: u64,
    ops: u64,
    /// Value of `ops` at which the pending power cut strikes.
    cut_at: Option<u64>,
    power_cut: bool,
    rng: SplitMix,
    wear_limit: Option<u32>,
    fail_prog: Option<FlashError>,
    fail_erase: Option<FlashError>,
}

impl fmt::Debug for SimFlash {
    // The image itself is left out: it is usually large and unreadable as a byte list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFlash")
            .field("geometry", &self.geometry)
            .field("stats", &self.stats)
            .field("ops", &self.ops)
            .field("violations", &self.violations)
            .field("power_cut", &self.power_cut)
            .field("cut_at", &self.cut_at)
            .field("wear_limit", &self.wear_limit)
            .field("bad", &self.bad)
            .finish_non_exhaustive()
    }
}

impl SimFlash {
    /// A new fully erased device. `None` when the geometry is invalid (a zero size, no blocks,
    /// a block size that is not a multiple of the read and program sizes) or too large to hold
    /// in memory.
    pub fn new(geometry: Geometry) -> Option<Self> {
        let len = usize::try_from(geometry.capacity()).ok()?;
        Self::from_image(geometry, try_filled(len, 0xFF)?)
    }

    /// A device holding `image` (for example one saved with [`SimFlash::into_image`]).
    /// `None` when the geometry is invalid or the image length is not its capacity.
    pub fn from_image(geometry: Geometry, image: Vec<u8>) -> Option<Self> {
        if !geometry_ok(&geometry) || u64::try_from(image.len()).ok()? != geometry.capacity() {
            return None;
        }
        let blocks = usize::try_from(geometry.block_count).ok()?;
        Some(SimFlash {
            geometry,
            data: image,
            erase_counts: try_filled(blocks, 0)?,
            bad: Vec::new(),
            stats: FlashStats::default(),
            violations: 0,
            ops: 0,
            cut_at: None,
            power_cut: false,
            rng: SplitMix(DEFAULT_SEED),
            wear_limit: None,
            fail_prog: None,
            fail_erase: None,
        })
    }

    /// The raw contents of the whole device.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// Raw mutable access for tamper and bit-rot tests; bypasses every check and counter.
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The raw contents, consuming the device.
    pub fn into_image(self) -> Vec<u8> {
        self.data
    }

    /// Operation counters since creation or the last [`SimFlash::reset_stats`].
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// Zeroes [`SimFlash::stats`]; leaves `ops`, violations and wear alone.
    pub fn reset_stats(&mut self) {
        self.stats = FlashStats::default();
    }

    /// Contract violations seen so far (each also failed with `Io`).
    pub fn violations(&self) -> u64 {
        self.violations
    }

    /// Mutating operations (`prog` and `erase`) counted since creation; never reset, so a
    /// workload's count can be used to place a power cut at each of its operations.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Erase cycles per block since creation.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_counts
    }

    /// The lowest and highest erase count over all blocks.
    pub fn wear_spread(&self) -> (u32, u32) {
        let min = self.erase_counts.iter().copied().min().unwrap_or(0);
        let max = self.erase_counts.iter().copied().max().unwrap_or(0);
        (min, max)
    }

    /// Seeds the PRNG that decides how an interrupted operation tears.
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = SplitMix(seed);
    }

    /// Arms a power cut: the `n`-th mutating operation from now (1 = the next one) is torn and
    /// fails with `Io`, and from then on every operation fails with `Io` until
    /// [`SimFlash::restore_power`]. `n == 0` cuts the power at once. Replaces any cut armed
    /// before.
    pub fn cut_power_after(&mut self, n: u64) {
        if n == 0 {
            self.power_cut = true;
            self.cut_at = None;
        } else {
            // Saturating: a cut that far away never strikes, which is what such an `n` means.
            self.cut_at = Some(self.ops.saturating_add(n));
        }
    }

    /// Whether the power is cut (every operation fails).
    pub fn power_is_cut(&self) -> bool {
        self.power_cut
    }

    /// Powers the device back on and disarms any pending cut. The contents stay as the cut
    /// left them.
    pub fn restore_power(&mut self) {
        self.power_cut = false;
        self.cut_at = None;
    }

    /// Erase cycles a block survives; the next erase of a block that has been through that
    /// many fails with `Corrupt` and the block stays bad. `None` (the default) = no wear-out.
    pub fn set_wear_limit(&mut self, cycles: Option<u32>) {
        self.wear_limit = cycles;
    }

    /// Whether `block` has gone bad (worn out or marked).
    pub fn is_bad(&self, block: u32) -> bool {
        self.bad.contains(&block)
    }

    /// Marks `block` bad: its progs and erases fail with `Corrupt` from now on; reads still
    /// work. Returns `false` if the block does not exist.
    pub fn mark_bad(&mut self, block: u32) -> bool {
        if block >= self.geometry.block_count {
            return false;
        }
        if !self.is_bad(block) {
            self.bad.push(block);
        }
        true
    }

    /// Makes the next valid `prog` fail with `err` without writing anything.
    pub fn fail_next_prog(&mut self, err: FlashError) {
        self.fail_prog = Some(err);
    }

    /// Makes the next valid `erase` fail with `err`, leaving the block unchanged (the block
    /// does not go bad; use [`SimFlash::mark_bad`] for that).
    pub fn fail_next_erase(&mut self, err: FlashError) {
        self.fail_erase = Some(err);
    }

    fn violation(&mut self) -> FlashError {
        self.violations = self.violations.saturating_add(1);
        FlashError::Io
    }

    fn block_range(&self, block: u32) -> Option<Range<usize>> {
        let len = usize::try_from(self.geometry.block_size).ok()?;
        let start = locate_usize(&self.geometry, block, 0, len, 1)?;
        Some(start..start.checked_add(len)?)
    }

    /// Counts one mutating operation and reports whether the armed power cut strikes it.
    fn count_op(&mut self) -> bool {
        self.ops = self.ops.saturating_add(1);
        if self.cut_at == Some(self.ops) {
            self.cut_at = None;
            self.power_cut = true;
            true
        } else {
            false
        }
    }

    /// An interrupted prog onto erased words: a random prefix of whole words lands, then a
    /// random subset of the bits the next word would clear (bits only go 1 -> 0).
    fn tear_prog(&mut self, range: Range<usize>, data: &[u8]) {
        let word = usize::try_from(self.geometry.prog_size).unwrap_or(1).max(1);
        let words = data.len() / word;
        let landed = self.rng.up_to(words).saturating_mul(word);
        let rng = &mut self.rng;
        let Some(dst) = self.data.get_mut(range) else {
            return;
        };
        for (i, (d, s)) in dst.iter_mut().zip(data).enumerate() {
            if i < landed {
                *d &= *s;
            } else if i < landed.saturating_add(word) {
                // Clears a bit only where the data has a 0 and the random mask a 1.
                *d &= *s | !rng.byte();
            } else {
                break;
            }
        }
    }

    /// An interrupted erase: a random prefix of the block is erased, the byte after it is
    /// partly erased (random bits go 0 -> 1), the rest is untouched.
    fn tear_erase(&mut self, range: Range<usize>) {
        let erased = self.rng.up_to(range.len());
        let boundary_bits = self.rng.byte();
        let Some(dst) = self.data.get_mut(range) else {
            return;
        };
        let (done, rest) = dst.split_at_mut(erased.min(dst.len()));
        done.fill(0xFF);
        if let Some(b) = rest.first_mut() {
            *b |= boundary_bits;
        }
    }

    fn bump_erase_count(&mut self, block: u32) {
        if let Some(c) = usize::try_from(block)
            .ok()
            .and_then(|b| self.erase_counts.get_mut(b))
        {
            *c = c.saturating_add(1);
        }
    }
}

impl BlockDevice for SimFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn erase_count(&self, block: u32) -> Option<u32> {
        self.erase_counts.get(usize::try_from(block).ok()?).copied()
    }

    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        if self.power_cut {
            return Err(FlashError::Io);
        }
        let Some(start) = locate_usize(
            &self.geometry,
            block,
            off,
            buf.len(),
            self.geometry.read_size,
        ) else {
            return Err(self.violation());
        };
        let Some(src) = start
            .checked_add(buf.len())
            .and_then(|end| self.data.get(start..end))
        else {
            return Err(self.violation());
        };
        buf.copy_from_slice(src);
        self.stats.reads = self.stats.reads.saturating_add(1);
        self.stats.bytes_read = self.stats.bytes_read.saturating_add(buf.len() as u64);
        Ok(())
    }

    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        if self.power_cut {
            return Err(FlashError::Io);
        }
        let range = locate_usize(
            &self.geometry,
            block,
            off,
            data.len(),
            self.geometry.prog_size,
        )
        .and_then(|start| Some(start..start.checked_add(data.len())?));
        let Some(range) = range.filter(|r| r.end <= self.data.len()) else {
            return Err(self.violation());
        };
        let bad = self.is_bad(block);
        // The range is whole words, so "every byte erased" is "every word erased". A bad
        // block's contents are undefined, so there it is not a violation.
        if !bad
            && !self
                .data
                .get(range.clone())
                .is_some_and(|s| s.iter().all(|&b| b == 0xFF))
        {
            return Err(self.violation());
        }
        self.stats.progs = self.stats.progs.saturating_add(1);
        self.stats.bytes_programmed = self
            .stats
            .bytes_programmed
            .saturating_add(data.len() as u64);
        if self.count_op() {
            if !bad {
                self.tear_prog(range, data);
            }
            return Err(FlashError::Io);
        }
        if let Some(err) = self.fail_prog.take() {
            return Err(err);
        }
        if bad {
            return Err(FlashError::Corrupt);
        }
        if let Some(dst) = self.data.get_mut(range) {
            for (d, s) in dst.iter_mut().zip(data) {
                *d &= *s;
            }
        }
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        if self.power_cut {
            return Err(FlashError::Io);
        }
        let Some(range) = self.block_range(block).filter(|r| r.end <= self.data.len()) else {
            return Err(self.violation());
        };
        let bad = self.is_bad(block);
        self.stats.erases = self.stats.erases.saturating_add(1);
        if self.count_op() {
            if !bad {
                self.tear_erase(range);
                self.bump_erase_count(block);
            }
            return Err(FlashError::Io);
        }
        if let Some(err) = self.fail_erase.take() {
            return Err(err);
        }
        if bad {
            return Err(FlashError::Corrupt);
        }
        let cycles = usize::try_from(block)
            .ok()
            .and_then(|b| self.erase_counts.get(b))
            .copied()
            .unwrap_or(0);
        if self.wear_limit.is_some_and(|limit| cycles >= limit) {
            // Worn out: the erase fails verification and the block is retired for good.
            self.bad.push(block);
            return Err(FlashError::Corrupt);
        }
        if let Some(dst) = self.data.get_mut(range) {
            dst.fill(0xFF);
        }
        self.bump_erase_count(block);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), FlashError> {
        if self.power_cut {
            return Err(FlashError::Io);
        }
        self.stats.syncs = self.stats.syncs.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const G: Geometry = Geometry {
        read_size: 4,
        prog_size: 8,
        block_size: 256,
        block_count: 4,
    };

    fn dev() -> SimFlash {
        SimFlash::new(G).unwrap()
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn construction() {
        let d = dev();
        assert_eq!(d.geometry(), G);
        assert_eq!(d.image().len(), 1024);
        assert!(d.image().iter().all(|&b| b == 0xFF));
        assert_eq!(d.erase_counts(), &[0, 0, 0, 0]);
        assert_eq!(d.wear_spread(), (0, 0));
        assert!(SimFlash::new(Geometry { read_size: 0, ..G }).is_none());
        assert!(SimFlash::new(Geometry { prog_size: 0, ..G }).is_none());
        assert!(SimFlash::new(Geometry { block_size: 0, ..G }).is_none());
        assert!(SimFlash::new(Geometry {
            block_count: 0,
            ..G
        })
        .is_none());
        assert!(SimFlash::new(Geometry {
            block_size: 100,
            ..G
        })
        .is_none());
        assert!(SimFlash::from_image(G, vec![0; 1023]).is_none());
        let img = pattern(1024, 1);
        let d = SimFlash::from_image(G, img.clone()).unwrap();
        assert_eq!(d.image(), &img[..]);
        assert_eq!(d.into_image(), img);
    }

    #[test]
    fn program_read_erase_round_trip() {
        let mut d = dev();
        let data = pattern(64, 3);
        d.prog(1, 32, &data).unwrap();
        let mut buf = vec![0; 64];
        d.read(1, 32, &mut buf).unwrap();
        assert_eq!(buf, data);
        assert_eq!(&d.image()[256 + 32..256 + 96], &data[..]);
        // Neighbouring words untouched.
        assert!(d.image()[..256 + 32].iter().all(|&b| b == 0xFF));
        assert!(d.image()[256 + 96..].iter().all(|&b| b == 0xFF));
        // Adjacent erased words can still be programmed.
        d.prog(1, 96, &[0; 8]).unwrap();
        d.erase(1).unwrap();
        assert!(d.image().iter().all(|&b| b == 0xFF));
        d.prog(1, 32, &data).unwrap();
        d.sync().unwrap();
        assert_eq!(d.violations(), 0);
    }

    #[test]
    fn violations_are_refused_and_counted() {
        let mut d = dev();
        d.prog(0, 0, &[0x0F; 8]).unwrap();
        let before = d.image().to_vec();
        let stats = d.stats();
        let ops = d.ops();
        let mut buf = [0u8; 8];
        let cases: [(&str, Result<(), FlashError>); 15] = [
            ("double program", d.prog(0, 0, &[0x00; 8])),
            ("same value again", d.prog(0, 0, &[0x0F; 8])),
            ("word overlapping", d.prog(0, 0, &[0xFF; 16])),
            ("misaligned prog offset", d.prog(0, 4, &[0; 8])),
            ("misaligned prog length", d.prog(0, 8, &[0; 4])),
            ("prog past block end", d.prog(0, 248, &[0; 16])),
            ("prog block out of range", d.prog(4, 0, &[0; 8])),
            ("prog huge offset", d.prog(0, u32::MAX, &[0; 8])),
            ("prog huge block", d.prog(u32::MAX, 0, &[0; 8])),
            ("misaligned read offset", d.read(0, 2, &mut buf[..4])),
            ("misaligned read length", d.read(0, 0, &mut buf[..6])),
            ("read past block end", d.read(0, 252, &mut buf)),
            ("read block out of range", d.read(4, 0, &mut buf)),
            ("erase out of range", d.erase(4)),
            ("erase huge block", d.erase(u32::MAX)),
        ];
        for (what, r) in cases {
            assert_eq!(r, Err(FlashError::Io), "{what}");
        }
        assert_eq!(d.violations(), 15);
        assert_eq!(
            d.image(),
            &before[..],
            "violations must not change the medium"
        );
        assert_eq!(d.stats(), stats, "violations are not counted as operations");
        assert_eq!(d.ops(), ops);
        // A word programmed to all-0xFF is still erased as far as the medium can tell.
        d.prog(0, 8, &[0xFF; 8]).unwrap();
        d.prog(0, 8, &[0x00; 8]).unwrap();
        assert_eq!(d.violations(), 15);
    }

    #[test]
    fn counters_are_exact() {
        let mut d = dev();
        let mut buf = [0u8; 12];
        d.read(0, 0, &mut buf).unwrap();
        d.read(3, 244, &mut buf).unwrap();
        d.prog(0, 0, &[0; 16]).unwrap();
        d.prog(0, 16, &[0; 8]).unwrap();
        d.prog(2, 0, &[]).unwrap();
        d.erase(0).unwrap();
        d.erase(0).unwrap();
        d.erase(3).unwrap();
        d.sync().unwrap();
        let s = d.stats();
        assert_eq!(
            s,
            FlashStats {
                reads: 2,
                bytes_read: 24,
                progs: 3,
                bytes_programmed: 24,
                erases: 3,
                syncs: 1
            }
        );
        assert_eq!(d.ops(), 6);
        assert_eq!(d.erase_counts(), &[2, 0, 0, 1]);
        assert_eq!(d.wear_spread(), (0, 2));

        let mark = d.stats();
        d.prog(1, 0, &[0; 32]).unwrap();
        d.read(1, 0, &mut buf[..4]).unwrap();
        assert_eq!(
            d.stats().since(mark),
            FlashStats {
                reads: 1,
                bytes_read: 4,
                progs: 1,
                bytes_programmed: 32,
                erases: 0,
                syncs: 0
            }
        );
        assert_eq!(
            mark.since(d.stats()),
            FlashStats::default(),
            "saturates, never panics"
        );
        d.reset_stats();
        assert_eq!(d.stats(), FlashStats::default());
        assert_eq!(d.ops(), 7, "ops survive reset_stats");
        assert_eq!(d.erase_counts(), &[2, 0, 0, 1], "wear survives reset_stats");
    }

    const STEPS: u64 = 5;

    /// A small workload: program three records in block 0, erase block 1, program it.
    fn step(d: &mut SimFlash, i: u64) -> Result<(), FlashError> {
        match i {
            0 => d.prog(0, 0, &pattern(16, 1)),
            1 => d.prog(0, 16, &pattern(32, 2)),
            2 => d.erase(1),
            3 => d.prog(1, 0, &pattern(64, 3)),
            _ => d.prog(0, 48, &pattern(8, 4)),
        }
    }

    fn workload(d: &mut SimFlash) -> Result<(), FlashError> {
        (0..STEPS).try_for_each(|i| step(d, i))
    }

    /// The image once the first `n` steps have completed without a cut.
    fn reference_after(n: u64) -> Vec<u8> {
        let mut r = SimFlash::from_image(G, prefilled()).unwrap();
        (0..n).for_each(|i| step(&mut r, i).unwrap());
        r.into_image()
    }

    /// Block 1 starts with old data so an interrupted erase is visible.
    fn prefilled() -> Vec<u8> {
        let mut img = vec![0xFF; 1024];
        img[256..512].copy_from_slice(&pattern(256, 9));
        img
    }

    #[test]
    fn power_cut_at_every_op() {
        let mut d = SimFlash::from_image(G, prefilled()).unwrap();
        workload(&mut d).unwrap();
        let total = d.ops();
        assert_eq!(total, STEPS);
        for n in 1..=total {
            for seed in 0..20 {
                let mut d = SimFlash::from_image(G, prefilled()).unwrap();
                d.set_seed(seed);
                d.cut_power_after(n);
                assert!(!d.power_is_cut());
                assert_eq!(workload(&mut d), Err(FlashError::Io));
                assert!(d.power_is_cut());
                assert_eq!(d.ops(), n, "the workload stops at the cut");
                assert_eq!(d.violations(), 0);
                let before = reference_after(n - 1);
                let after = reference_after(n);
                let img = d.image();
                for (i, ((&got, &old), &new)) in img.iter().zip(&before).zip(&after).enumerate() {
                    if old == new {
                        assert_eq!(
                            got, old,
                            "op {n} seed {seed}: byte {i} outside the op changed"
                        );
                    } else if old == 0xFF {
                        // Torn prog: only bits the op clears may be cleared.
                        assert_eq!(got & new, new, "op {n} seed {seed}: byte {i} set a bit");
                        assert_eq!(got | old, old);
                    } else {
                        // Torn erase: bits only go 0 -> 1.
                        assert_eq!(got & old, old, "op {n} seed {seed}: byte {i} cleared a bit");
                    }
                }
                // Everything fails while the power is out, and nothing is counted.
                let stats = d.stats();
                let mut buf = [0u8; 4];
                assert_eq!(d.read(0, 0, &mut buf), Err(FlashError::Io));
                assert_eq!(d.prog(2, 0, &[0; 8]), Err(FlashError::Io));
                assert_eq!(d.erase(2), Err(FlashError::Io));
                assert_eq!(d.sync(), Err(FlashError::Io));
                assert_eq!(d.stats(), stats);
                assert_eq!(d.ops(), n);
                assert_eq!(d.violations(), 0);
                d.restore_power();
                assert!(!d.power_is_cut());
                d.read(0, 0, &mut buf).unwrap();
                d.erase(2).unwrap();
                d.prog(2, 0, &[0; 8]).unwrap();
            }
        }
    }

    #[test]
    fn torn_prog_is_prefix_then_partial_word() {
        let mut partial_seen = false;
        for seed in 0..64 {
            let mut d = dev();
            d.set_seed(seed);
            d.cut_power_after(1);
            let data = vec![0u8; 64];
            assert_eq!(d.prog(2, 64, &data), Err(FlashError::Io));
            let img = &d.image()[512 + 64..512 + 128];
            let landed = img.iter().take_while(|&&b| b == 0).count() / 8 * 8;
            // After the whole words: at most one partly written word, then erased bytes.
            assert!(
                img[landed + 8.min(64 - landed)..]
                    .iter()
                    .all(|&b| b == 0xFF),
                "seed {seed}"
            );
            if landed < 64 && img[landed..landed + 8].iter().any(|&b| b != 0xFF) {
                partial_seen = true;
            }
            assert!(d.image()[..512 + 64]
                .iter()
                .chain(&d.image()[512 + 128..])
                .all(|&b| b == 0xFF));
        }
        assert!(partial_seen, "some seed must tear a word");
    }

    #[test]
    fn torn_erase_and_wear() {
        let mut d = SimFlash::from_image(G, prefilled()).unwrap();
        d.set_seed(7);
        d.cut_power_after(1);
        assert_eq!(d.erase(1), Err(FlashError::Io));
        assert_eq!(
            d.erase_counts(),
            &[0, 1, 0, 0],
            "an interrupted erase still wears"
        );
        assert_eq!(d.stats().erases, 1);
        let old = pattern(256, 9);
        let img = &d.image()[256..512];
        let erased = img.iter().take_while(|&&b| b == 0xFF).count();
        for i in erased..256 {
            assert_eq!(img[i] & old[i], old[i]);
            if i > erased {
                assert_eq!(img[i], old[i], "only the boundary byte is partly erased");
            }
        }
    }

    #[test]
    fn cut_now_and_rearm() {
        let mut d = dev();
        d.cut_power_after(0);
        assert!(d.power_is_cut());
        assert_eq!(d.prog(0, 0, &[0; 8]), Err(FlashError::Io));
        assert_eq!(d.ops(), 0);
        d.restore_power();
        // A pending cut is disarmed by restore_power.
        d.cut_power_after(2);
        d.restore_power();
        for i in 0..4 {
            d.prog(0, i * 8, &[0; 8]).unwrap();
        }
        // A far-away cut never strikes and never overflows.
        d.cut_power_after(u64::MAX);
        d.erase(0).unwrap();
        assert!(!d.power_is_cut());
        // Re-arming replaces the previous cut.
        d.cut_power_after(1);
        d.cut_power_after(3);
        d.prog(0, 0, &[0; 8]).unwrap();
        d.prog(0, 8, &[0; 8]).unwrap();
        assert_eq!(d.prog(0, 16, &[0; 8]), Err(FlashError::Io));
        assert!(d.power_is_cut());
        assert_eq!(d.violations(), 0);
    }

    #[test]
    fn deterministic_given_seed() {
        let run = |seed: u64| {
            let mut d = SimFlash::from_image(G, prefilled()).unwrap();
            d.set_seed(seed);
            d.cut_power_after(2);
            d.prog(0, 0, &[0; 128]).unwrap();
            let _ = d.prog(0, 128, &[0; 128]);
            d.restore_power();
            d.cut_power_after(1);
            let _ = d.erase(1);
            d.into_image()
        };
        assert_eq!(run(42), run(42));
        assert_eq!(run(0), run(0));
        let outcomes: Vec<Vec<u8>> = (0..8).map(run).collect();
        assert!(
            outcomes.iter().any(|o| *o != outcomes[0]),
            "seeds must matter"
        );
        // The default seed is deterministic too.
        let plain = || {
            let mut d = dev();
            d.cut_power_after(1);
            let _ = d.prog(3, 0, &[0; 256]);
            d.into_image()
        };
        assert_eq!(plain(), plain());
    }

    #[test]
    fn wear_limit_retires_blocks() {
        let mut d = dev();
        d.set_wear_limit(Some(3));
        for _ in 0..3 {
            d.erase(2).unwrap();
        }
        assert_eq!(d.erase(2), Err(FlashError::Corrupt));
        assert!(d.is_bad(2));
        assert_eq!(d.erase(2), Err(FlashError::Corrupt), "stays bad");
        assert_eq!(d.prog(2, 0, &[0; 8]), Err(FlashError::Corrupt));
        let mut buf = [0u8; 8];
        d.read(2, 0, &mut buf).unwrap();
        // Lifting the limit does not heal a bad block.
        d.set_wear_limit(None);
        assert_eq!(d.erase(2), Err(FlashError::Corrupt));
        assert_eq!(d.erase_counts(), &[0, 0, 3, 0]);
        assert_eq!(d.wear_spread(), (0, 3));
        d.erase(1).unwrap();
        d.prog(1, 0, &[0; 8]).unwrap();
        assert_eq!(
            d.stats().erases,
            7,
            "refused erases of a bad block still count"
        );
        assert_eq!(d.violations(), 0);
        assert!(d.mark_bad(0));
        assert!(!d.mark_bad(4));
        assert_eq!(d.erase(0), Err(FlashError::Corrupt));
    }

    #[test]
    fn injected_faults() {
        let mut d = dev();
        d.fail_next_prog(FlashError::Corrupt);
        assert_eq!(d.prog(0, 0, &[0; 8]), Err(FlashError::Corrupt));
        assert!(d.image().iter().all(|&b| b == 0xFF));
        d.prog(0, 0, &[0; 8]).unwrap();
        d.fail_next_erase(FlashError::Io);
        assert_eq!(d.erase(0), Err(FlashError::Io));
        assert_eq!(&d.image()[..8], &[0; 8]);
        assert!(!d.is_bad(0));
        d.erase(0).unwrap();
        assert_eq!(d.ops(), 4);
        assert_eq!(d.erase_counts(), &[1, 0, 0, 0]);
        assert_eq!(d.violations(), 0);
        d.image_mut()[5] = 0x12;
        let mut buf = [0u8; 8];
        d.read(0, 4, &mut buf[..4]).unwrap();
        assert_eq!(buf[1], 0x12);
    }

    #[test]
    fn clone_is_a_snapshot() {
        let mut d = dev();
        d.prog(0, 0, &[1; 8]).unwrap();
        let snap = d.clone();
        d.erase(0).unwrap();
        assert_eq!(snap.image()[0], 1);
        assert_eq!(snap.ops(), 1);
        assert!(format!("{snap:?}").contains("SimFlash"));
    }
}
