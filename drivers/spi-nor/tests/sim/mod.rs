//! A simulated JEDEC SPI NOR chip behind an embedded-hal `SpiDevice`: it decodes the command
//! bytes of each transaction as silicon does (chip select held for the whole transaction) and
//! records every misuse a driver could commit as a violation, which tests assert is zero.

#![allow(dead_code)]

use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use std::convert::Infallible;

pub const PAGE: usize = 256;
pub const SECTOR: usize = 4096;

pub struct Chip {
    pub mem: Vec<u8>,
    pub id: [u8; 3],
    /// Status polls the chip stays busy after a program or erase.
    pub busy_polls: u32,
    busy: u32,
    wel: bool,
    pub write_protected: bool,
    pub powered_down: bool,
    /// Stays busy forever (a dead chip) ...
    pub stuck: bool,
    /// ... from this many programs on.
    pub stuck_after_programs: Option<u32>,
    pub violations: Vec<String>,
    pub programs: u32,
    pub sector_erases: u32,
    pub block_erases: u32,
    pub bytes_read: u64,
}

impl Chip {
    pub fn new(capacity: usize, id: [u8; 3]) -> Self {
        Chip {
            mem: vec![0xFF; capacity],
            id,
            busy_polls: 3,
            busy: 0,
            wel: false,
            write_protected: false,
            powered_down: true,
            stuck: false,
            stuck_after_programs: None,
            violations: Vec::new(),
            programs: 0,
            sector_erases: 0,
            block_erases: 0,
            bytes_read: 0,
        }
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn addr(cmd: &[u8]) -> Option<usize> {
        match cmd {
            [_, a, b, c, ..] => Some(((*a as usize) << 16) | ((*b as usize) << 8) | *c as usize),
            _ => None,
        }
    }

    /// One chip-select cycle: the bytes written first (command, address, data), then what is
    /// read back.
    fn cycle(&mut self, written: &[u8], reads: &mut [&mut [u8]]) {
        let Some(&cmd) = written.first() else { return };
        if self.powered_down && cmd != 0xAB {
            self.violation(format!("command {cmd:#04x} while in deep power-down"));
            return;
        }
        let busy = self.busy > 0 || self.stuck;
        if busy && cmd != 0x05 {
            self.violation(format!("command {cmd:#04x} while busy"));
            return;
        }
        match cmd {
            0xAB => self.powered_down = false,
            0x9F => fill(reads, &self.id),
            0x05 => {
                let s = u8::from(busy) | (u8::from(self.wel) << 1);
                fill(reads, &[s]);
                if self.busy > 0 {
                    self.busy -= 1;
                }
            }
            0x06 => self.wel = !self.write_protected,
            0x03 | 0x0B => {
                let Some(a) = Self::addr(written) else {
                    return self.violation("short read command".into());
                };
                let skip = if cmd == 0x0B { 5 } else { 4 };
                if written.len() != skip {
                    self.violation(format!("read command of {} bytes", written.len()));
                }
                let mut at = a;
                for r in reads.iter_mut() {
                    for b in r.iter_mut() {
                        *b = self.mem[at % self.mem.len()];
                        at += 1;
                        self.bytes_read += 1;
                    }
                }
            }
            0x02 => {
                let Some(a) = Self::addr(written) else {
                    return self.violation("short program command".into());
                };
                if !self.wel {
                    return self.violation("page program without write enable".into());
                }
                let data = &written[4..];
                if a % PAGE + data.len() > PAGE {
                    self.violation(format!(
                        "page program of {} bytes at {a:#x} wraps",
                        data.len()
                    ));
                }
                let page = a - a % PAGE;
                for (i, d) in data.iter().enumerate() {
                    // Silicon wraps inside the page.
                    let at = page + (a % PAGE + i) % PAGE;
                    self.mem[at] &= d;
                }
                self.programs += 1;
                if self.stuck_after_programs == Some(self.programs) {
                    self.stuck = true;
                }
                self.wel = false;
                self.busy = self.busy_polls;
            }
            0x20 | 0xD8 => {
                let Some(a) = Self::addr(written) else {
                    return self.violation("short erase command".into());
                };
                if !self.wel {
                    return self.violation("erase without write enable".into());
                }
                let size = if cmd == 0x20 { SECTOR } else { 65536 };
                let start = a - a % size;
                self.mem[start..start + size].fill(0xFF);
                if cmd == 0x20 {
                    self.sector_erases += 1;
                } else {
                    self.block_erases += 1;
                }
                self.wel = false;
                self.busy = self.busy_polls;
            }
            other => self.violation(format!("unknown command {other:#04x}")),
        }
    }
}

fn fill(reads: &mut [&mut [u8]], src: &[u8]) {
    let mut i = 0;
    for r in reads.iter_mut() {
        for b in r.iter_mut() {
            *b = src.get(i).copied().unwrap_or(0xFF);
            i += 1;
        }
    }
}

impl ErrorType for Chip {
    type Error = Infallible;
}

impl SpiDevice for Chip {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        // Writes come first in every command this chip knows; reads follow.
        let mut written = Vec::new();
        let mut reads: Vec<&mut [u8]> = Vec::new();
        for op in ops.iter_mut() {
            match op {
                Operation::Write(w) => {
                    if !reads.is_empty() {
                        self.violation("write after read in one transaction".into());
                    }
                    written.extend_from_slice(w);
                }
                Operation::Read(r) => reads.push(r),
                Operation::Transfer(r, w) => {
                    written.extend_from_slice(w);
                    reads.push(r);
                }
                Operation::TransferInPlace(b) => {
                    written.extend_from_slice(b);
                    reads.push(b);
                }
                Operation::DelayNs(_) => {}
            }
        }
        self.cycle(&written, &mut reads);
        Ok(())
    }
}

/// A delay that only counts.
#[derive(Default)]
pub struct CountDelay(pub u64);

impl embedded_hal::delay::DelayNs for CountDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0 += u64::from(ns);
    }
}
