//! Shared by the driver tests: a delay that only counts, and chips and drivers in common shapes.
#![allow(dead_code)]

use cairndb_spi_nor::sim::{SimChip, SimConfig};
use cairndb_spi_nor::{Capacity, Config, SpiNor};
use embedded_hal::delay::DelayNs;
use std::cell::Cell;
use std::rc::Rc;

/// A delay that returns at once and adds up what it was asked to wait; clones share the sums,
/// so a test keeps one while the driver owns another.
#[derive(Debug, Default, Clone)]
pub struct Clock {
    ns: Rc<Cell<u64>>,
    calls: Rc<Cell<u64>>,
}

impl Clock {
    /// Nanoseconds asked for so far.
    pub fn ns(&self) -> u64 {
        self.ns.get()
    }
    /// Delay calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }
    pub fn reset(&self) {
        self.ns.set(0);
        self.calls.set(0);
    }
}

impl DelayNs for Clock {
    fn delay_ns(&mut self, ns: u32) {
        self.ns.set(self.ns.get() + u64::from(ns));
        self.calls.set(self.calls.get() + 1);
    }
}

/// A W25Q80-like id: Winbond, SPI NOR, 1 MiB.
pub const ID_1M: [u8; 3] = [0xEF, 0x40, 0x14];
/// A W25Q256-like id: 32 MiB.
pub const ID_32M: [u8; 3] = [0xEF, 0x40, 0x19];

pub fn sim(id: [u8; 3], capacity: u32) -> SimChip {
    SimChip::new(SimConfig::new(id, capacity)).expect("sim chip")
}

pub type Nor = SpiNor<SimChip, Clock>;

pub fn open_chip(chip: SimChip, config: Config) -> Nor {
    open_with(chip, Clock::default(), config)
}

pub fn open_with(chip: SimChip, clock: Clock, config: Config) -> Nor {
    match SpiNor::new(chip, clock, config) {
        Ok(n) => n,
        Err((e, chip, _)) => panic!("init: {e:?}; violations {:?}", chip.violations()),
    }
}

/// A 1 MiB chip behind the driver with the default configuration.
pub fn nor_1m() -> Nor {
    open_chip(sim(ID_1M, 1 << 20), Config::default())
}

pub fn checked(capacity: u32) -> Config {
    Config {
        capacity: Capacity::Checked(capacity),
        ..Config::default()
    }
}

/// Fails the test if the chip saw any protocol violation.
pub fn assert_clean(nor: &Nor) {
    assert_eq!(
        nor.spi().violations(),
        &[],
        "the driver broke the SPI NOR protocol"
    );
    assert_eq!(nor.spi().violation_count(), 0);
}
