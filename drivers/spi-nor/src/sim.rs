//! A simulated JEDEC SPI NOR chip, seen through an embedded-hal [`SpiDevice`] (feature `sim`).
//!
//! It decodes the byte stream of each transaction the way a chip does (chip select low for the
//! whole transaction; opcode, address, dummy and data bytes clocked in order; write commands
//! take effect when chip select rises) and models the behaviour drivers get wrong:
//! - a status register whose WIP bit stays set for a configurable number of RDSR polls after a
//!   program or erase, and a WEL latch set by WREN and cleared when a program or erase completes
//!   (or by WRDI, or a reset);
//! - program and erase commands ignored while WEL is clear;
//! - a page program that wraps inside its 256-byte page, keeping the last 256 bytes sent, and
//!   only clears bits (NOR AND); erase sets sectors (4 KiB) or blocks (64 KiB) to 0xFF;
//! - every command but RDSR ignored while busy, with MISO floating (reads 0xFF); 0xAB is
//!   ignored too but is no mistake (a driver must send it before it can know the chip's state);
//! - deep power-down (0xB9) in which only 0xAB is heard;
//! - 4-byte-address opcodes on chips over 16 MiB only;
//! - faults to inject: stuck busy, WREN not latching, a write-protected range, an absent chip.
//!
//! Anything a correct driver never does (a program or erase without WREN, a page program that
//! wraps, a command while busy or powered down, an unknown or malformed command, an address
//! beyond the chip) is a [`Violation`]: recorded, and in strict mode (the default) returned as
//! the transaction's error, so a test fails at the faulty transfer.

use crate::{
    opcode, BLOCK_SIZE, MAX_3BYTE_CAPACITY, PAGE_SIZE, SECTOR_SIZE, STATUS_WEL, STATUS_WIP,
};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use embedded_hal::spi::{self, ErrorKind, ErrorType, Operation, SpiDevice};

/// Most violations kept in the log (later ones are only counted).
const MAX_LOGGED: usize = 256;

/// What the chip looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// JEDEC id: manufacturer, memory type, capacity code.
    pub id: [u8; 3],
    /// Bytes; a whole number of 64 KiB blocks.
    pub capacity: u32,
    /// RDSR polls that see WIP after a page program.
    pub program_polls: u32,
    /// RDSR polls that see WIP after an erase.
    pub erase_polls: u32,
    /// Return violations as transaction errors (they are always recorded).
    pub strict: bool,
    /// Start in deep power-down, as firmware may have left the chip before a reset.
    pub powered_down: bool,
    /// When an ignored program or erase targets a protected range: `false` leaves WEL set (the
    /// command never completes), `true` clears it as if it had (some chips do; only read-back
    /// verification sees those).
    pub protect_clears_wel: bool,
}

impl SimConfig {
    /// A chip with this id and size, busy for 2 polls after a program and 3 after an erase,
    /// strict, powered up.
    pub fn new(id: [u8; 3], capacity: u32) -> Self {
        SimConfig {
            id,
            capacity,
            program_polls: 2,
            erase_polls: 3,
            strict: true,
            powered_down: false,
            protect_clears_wel: false,
        }
    }
}

/// A driver mistake the chip saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A program or erase while WEL was clear (the chip ignored it).
    WithoutWriteEnable {
        /// The command.
        opcode: u8,
    },
    /// A page program running past the end of its page (the chip wrapped to the page start).
    PageWrap {
        /// Start address.
        address: u32,
        /// Data bytes sent.
        len: usize,
    },
    /// A command other than RDSR while a program or erase was in progress (ignored; what was
    /// read is garbage).
    WhileBusy {
        /// The command.
        opcode: u8,
    },
    /// A command other than 0xAB in deep power-down (ignored).
    WhilePoweredDown {
        /// The command.
        opcode: u8,
    },
    /// An opcode this chip does not know (4-byte opcodes on a chip of 16 MiB or less).
    Unknown {
        /// The command.
        opcode: u8,
    },
    /// A command with the wrong number of bytes (short address, no data, bytes after an
    /// erase's address, 0x99 not right after 0x66): the chip ignored it.
    Malformed {
        /// The command.
        opcode: u8,
    },
    /// An address at or beyond the capacity (the chip ignores the high bits).
    OutOfRange {
        /// The command.
        opcode: u8,
        /// The address sent.
        address: u32,
    },
}

/// The simulated chip's SPI error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// The first violation of the transaction (strict mode).
    Violation(Violation),
}

impl spi::Error for SimError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Violation(v) => write!(f, "SPI NOR protocol violation: {v:?}"),
        }
    }
}

/// Activity counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Transactions (chip-select cycles).
    pub transactions: u64,
    /// Opcodes received (ignored ones included).
    pub commands: u64,
    /// RDSR transactions.
    pub status_polls: u64,
    /// Data bytes sent to the host by read commands.
    pub bytes_read: u64,
    /// Data bytes of accepted page programs.
    pub bytes_programmed: u64,
    /// Accepted page programs.
    pub page_programs: u64,
    /// Accepted 4 KiB erases.
    pub sector_erases: u64,
    /// Accepted 64 KiB erases.
    pub block_erases: u64,
    /// Nanoseconds of `Operation::DelayNs` inside transactions.
    pub delay_ns: u64,
}

/// The chip. Give it to the driver as its SPI device; inspect it through the driver's `spi()`.
#[derive(Debug, Clone)]
pub struct SimChip {
    config: SimConfig,
    mem: Vec<u8>,
    wel: bool,
    /// RDSR polls left before the current operation completes.
    busy_polls: u32,
    stuck_busy: bool,
    /// The next operation sets `stuck_busy`.
    hang_next: bool,
    powered_down: bool,
    wren_ignored: bool,
    protected: Option<Range<u32>>,
    /// `Some(level)`: no chip; MISO reads `level`.
    absent: Option<u8>,
    /// The previous transaction was RESET ENABLE.
    reset_armed: bool,
    counters: Counters,
    per_opcode: [u64; 256],
    violations: Vec<Violation>,
    violation_count: u64,
    /// Per-transaction decoding state.
    txn: Txn,
}

/// What the chip has decoded of the transaction in progress.
#[derive(Debug, Clone)]
struct Txn {
    /// Bytes clocked so far.
    pos: u64,
    opcode: u8,
    /// The command is ignored (busy, powered down, unknown): MISO floats.
    ignored: bool,
    /// Opcode and the bytes after it, up to 6.
    header: [u8; 6],
    /// Page buffer of a page program: 0xFF where nothing was sent.
    page: [u8; PAGE_SIZE as usize],
    /// Data bytes of a page program.
    data_len: usize,
    /// First violation seen in this transaction.
    violation: Option<Violation>,
}

impl Txn {
    fn new() -> Self {
        Txn {
            pos: 0,
            opcode: 0,
            ignored: false,
            header: [0; 6],
            page: [0xFF; PAGE_SIZE as usize],
            data_len: 0,
            violation: None,
        }
    }
}

/// How a command's bytes are laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Opcode only.
    Plain,
    /// Opcode then status bytes out.
    Status,
    /// Opcode then id bytes out.
    Id,
    /// Opcode, 3 dummy bytes, then the electronic signature (0xAB).
    Release,
    /// Opcode, address, `dummy` bytes, then data out.
    Read { addr: u8, dummy: u8 },
    /// Opcode, address, then data in.
    Program { addr: u8 },
    /// Opcode, address; `size` bytes erased.
    Erase { addr: u8, size: u32 },
}

impl SimChip {
    /// A blank chip (all 0xFF). `None` if the capacity is zero, not a whole number of 64 KiB
    /// blocks, over 2 GiB, or cannot be allocated.
    pub fn new(config: SimConfig) -> Option<Self> {
        let c = config.capacity;
        if c == 0 || c % BLOCK_SIZE != 0 || c > crate::MAX_CAPACITY {
            return None;
        }
        let len = usize::try_from(c).ok()?;
        let mut mem = Vec::new();
        mem.try_reserve_exact(len).ok()?;
        mem.resize(len, 0xFF);
        Some(SimChip {
            config,
            mem,
            wel: false,
            busy_polls: 0,
            stuck_busy: false,
            hang_next: false,
            powered_down: config.powered_down,
            wren_ignored: false,
            protected: None,
            absent: None,
            reset_armed: false,
            counters: Counters::default(),
            per_opcode: [0; 256],
            violations: Vec::new(),
            violation_count: 0,
            txn: Txn::new(),
        })
    }

    /// The array.
    pub fn memory(&self) -> &[u8] {
        &self.mem
    }

    /// The array, to preload contents.
    pub fn memory_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Status register 1 as RDSR would read it now.
    pub fn status(&self) -> u8 {
        let mut s = 0;
        if self.wel {
            s |= STATUS_WEL;
        }
        if self.busy() {
            s |= STATUS_WIP;
        }
        s
    }

    /// In deep power-down.
    pub fn is_powered_down(&self) -> bool {
        self.powered_down
    }

    /// Counters since creation (or the last [`SimChip::reset_counters`]).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// How many times `opcode` was received.
    pub fn command_count(&self, opcode: u8) -> u64 {
        self.per_opcode
            .get(usize::from(opcode))
            .copied()
            .unwrap_or(0)
    }

    /// Zeroes the counters.
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
        self.per_opcode = [0; 256];
    }

    /// Violations seen (the first 256).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many violations were seen in all.
    pub fn violation_count(&self) -> u64 {
        self.violation_count
    }

    /// Forgets the violations seen.
    pub fn clear_violations(&mut self) {
        self.violations.clear();
        self.violation_count = 0;
    }

    /// Keep WIP set from now until cleared again (a chip found busy that never finishes).
    pub fn set_stuck_busy(&mut self, stuck: bool) {
        self.stuck_busy = stuck;
    }

    /// Start a busy period of `polls` RDSR polls now (an operation left running before a reset).
    pub fn start_busy(&mut self, polls: u32) {
        self.busy_polls = polls;
    }

    /// The next program or erase never completes: WIP stays set until
    /// `set_stuck_busy(false)`, after which it takes its configured polls.
    pub fn hang_next_operation(&mut self) {
        self.hang_next = true;
    }

    /// WREN does not latch (supply below the write-inhibit threshold).
    pub fn set_wren_ignored(&mut self, ignored: bool) {
        self.wren_ignored = ignored;
    }

    /// Programs and erases touching `range` are ignored (block-protect bits).
    pub fn set_protected(&mut self, range: Option<Range<u32>>) {
        self.protected = range;
    }

    /// `Some(level)`: the chip is gone and MISO reads `level` (0xFF pulled up or floating, 0x00
    /// pulled down); `None`: it is back.
    pub fn set_absent(&mut self, level: Option<u8>) {
        self.absent = level;
    }

    /// A power cycle: WEL clear, not busy, not in power-down; the array is kept.
    pub fn power_cycle(&mut self) {
        self.wel = false;
        self.busy_polls = 0;
        self.powered_down = false;
        self.reset_armed = false;
    }

    fn busy(&self) -> bool {
        self.stuck_busy || self.busy_polls > 0
    }

    /// The layout of `op`, or `None` if this chip does not know it.
    fn kind(&self, op: u8) -> Option<Kind> {
        let big = self.config.capacity > MAX_3BYTE_CAPACITY;
        Some(match op {
            opcode::WRITE_ENABLE
            | opcode::WRITE_DISABLE
            | opcode::POWER_DOWN
            | opcode::RESET_ENABLE
            | opcode::RESET => Kind::Plain,
            opcode::READ_STATUS => Kind::Status,
            opcode::READ_JEDEC_ID => Kind::Id,
            opcode::RELEASE_POWER_DOWN => Kind::Release,
            opcode::READ => Kind::Read { addr: 3, dummy: 0 },
            opcode::FAST_READ => Kind::Read { addr: 3, dummy: 1 },
            opcode::PAGE_PROGRAM => Kind::Program { addr: 3 },
            opcode::SECTOR_ERASE => Kind::Erase {
                addr: 3,
                size: SECTOR_SIZE,
            },
            opcode::BLOCK_ERASE => Kind::Erase {
                addr: 3,
                size: BLOCK_SIZE,
            },
            opcode::READ_4B if big => Kind::Read { addr: 4, dummy: 0 },
            opcode::FAST_READ_4B if big => Kind::Read { addr: 4, dummy: 1 },
            opcode::PAGE_PROGRAM_4B if big => Kind::Program { addr: 4 },
            opcode::SECTOR_ERASE_4B if big => Kind::Erase {
                addr: 4,
                size: SECTOR_SIZE,
            },
            opcode::BLOCK_ERASE_4B if big => Kind::Erase {
                addr: 4,
                size: BLOCK_SIZE,
            },
            _ => return None,
        })
    }

    fn violate(&mut self, v: Violation) {
        self.violation_count = self.violation_count.saturating_add(1);
        if self.violations.len() < MAX_LOGGED {
            self.violations.push(v);
        }
        if self.txn.violation.is_none() {
            self.txn.violation = Some(v);
        }
    }

    /// The address in the header (bytes 1..=n), or `None` if it has not all been clocked in.
    fn header_address(&self, n: u8) -> Option<u32> {
        let bytes = self.txn.header.get(1..=usize::from(n))?;
        if self.txn.pos <= u64::from(n) {
            return None;
        }
        Some(bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
    }

    /// An address reduced to the array (the chip ignores the high bits), flagging the overflow.
    fn wrap_address(&mut self, address: u32) -> u32 {
        if address >= self.config.capacity {
            let opcode = self.txn.opcode;
            self.violate(Violation::OutOfRange { opcode, address });
        }
        // The capacity is a power of two times 64 KiB in practice; modulo works for any size.
        address % self.config.capacity.max(1)
    }

    fn byte_at(&self, addr: u64) -> u8 {
        usize::try_from(addr % u64::from(self.config.capacity.max(1)))
            .ok()
            .and_then(|i| self.mem.get(i).copied())
            .unwrap_or(0xFF)
    }

    /// Chip select falls.
    fn begin(&mut self) {
        self.txn = Txn::new();
        self.counters.transactions = self.counters.transactions.saturating_add(1);
    }

    /// One byte clocked: `mosi` in, the returned byte out.
    fn clock(&mut self, mosi: u8) -> u8 {
        if let Some(level) = self.absent {
            return level;
        }
        let pos = self.txn.pos;
        self.txn.pos = pos.saturating_add(1);
        if let Some(slot) = usize::try_from(pos)
            .ok()
            .and_then(|p| self.txn.header.get_mut(p))
        {
            *slot = mosi;
        }
        if pos == 0 {
            self.opcode_in(mosi);
            return 0xFF;
        }
        if self.txn.ignored {
            return 0xFF;
        }
        let Some(kind) = self.kind(self.txn.opcode) else {
            return 0xFF;
        };
        match kind {
            Kind::Plain | Kind::Erase { .. } => 0xFF,
            Kind::Status => self.status(),
            Kind::Id => usize::try_from(pos.saturating_sub(1))
                .ok()
                .and_then(|i| self.config.id.get(i).copied())
                .unwrap_or(0xFF),
            // The old "electronic signature": the capacity code minus one on Winbond parts.
            Kind::Release => {
                if pos >= 4 {
                    self.config.id[2].wrapping_sub(1)
                } else {
                    0xFF
                }
            }
            Kind::Read { addr, dummy } => {
                let first = 1 + u64::from(addr) + u64::from(dummy);
                if pos < first {
                    return 0xFF;
                }
                let Some(start) = self.header_address(addr) else {
                    return 0xFF;
                };
                if pos == first {
                    self.wrap_address(start);
                } else if offset(start, pos, first) == u64::from(self.config.capacity) {
                    // Streaming on past the last byte: the chip wraps to address 0.
                    let opcode = self.txn.opcode;
                    self.violate(Violation::OutOfRange {
                        opcode,
                        address: self.config.capacity,
                    });
                }
                self.counters.bytes_read = self.counters.bytes_read.saturating_add(1);
                self.byte_at(offset(start, pos, first))
            }
            Kind::Program { addr } => {
                let first = 1 + u64::from(addr);
                if pos >= first {
                    if let Some(start) = self.header_address(addr) {
                        // The page buffer wraps: byte k goes to (start + k) mod 256.
                        let i = offset(start, pos, first) % u64::from(PAGE_SIZE);
                        if let Some(b) = usize::try_from(i)
                            .ok()
                            .and_then(|i| self.txn.page.get_mut(i))
                        {
                            *b = mosi;
                        }
                        self.txn.data_len = self.txn.data_len.saturating_add(1);
                    }
                }
                0xFF
            }
        }
    }

    /// The first byte of a transaction.
    fn opcode_in(&mut self, op: u8) {
        self.txn.opcode = op;
        self.counters.commands = self.counters.commands.saturating_add(1);
        if let Some(c) = self.per_opcode.get_mut(usize::from(op)) {
            *c = c.saturating_add(1);
        }
        if self.powered_down && op != opcode::RELEASE_POWER_DOWN {
            self.txn.ignored = true;
            self.violate(Violation::WhilePoweredDown { opcode: op });
        } else if self.busy() && op != opcode::READ_STATUS && op != opcode::RELEASE_POWER_DOWN {
            // 0xAB while busy is ignored without harm (a busy chip is not powered down, and a
            // driver cannot tell the two apart before waking it), so it is no mistake.
            self.txn.ignored = true;
            self.violate(Violation::WhileBusy { opcode: op });
        } else if self.busy() && op == opcode::RELEASE_POWER_DOWN {
            self.txn.ignored = true;
        } else if self.kind(op).is_none() {
            self.txn.ignored = true;
            self.violate(Violation::Unknown { opcode: op });
        }
    }

    /// Chip select rises: write commands take effect.
    fn end(&mut self) {
        if self.absent.is_some() || self.txn.pos == 0 {
            return;
        }
        let op = self.txn.opcode;
        let was_armed = core::mem::replace(&mut self.reset_armed, false);
        if self.txn.ignored {
            return;
        }
        let Some(kind) = self.kind(op) else {
            return;
        };
        let len = self.txn.pos;
        match kind {
            Kind::Status => {
                self.counters.status_polls = self.counters.status_polls.saturating_add(1);
                if !self.stuck_busy && self.busy_polls > 0 {
                    self.busy_polls = self.busy_polls.saturating_sub(1);
                    if self.busy_polls == 0 {
                        self.wel = false;
                    }
                }
            }
            Kind::Plain if len != 1 => self.violate(Violation::Malformed { opcode: op }),
            Kind::Plain => match op {
                opcode::WRITE_ENABLE => self.wel = !self.wren_ignored,
                opcode::WRITE_DISABLE => self.wel = false,
                opcode::POWER_DOWN => self.powered_down = true,
                opcode::RESET_ENABLE => self.reset_armed = true,
                opcode::RESET if was_armed => {
                    self.wel = false;
                    self.busy_polls = 0;
                }
                _ => self.violate(Violation::Malformed { opcode: op }),
            },
            Kind::Release => self.powered_down = false,
            Kind::Id | Kind::Read { .. } => {}
            Kind::Program { addr } => self.program(op, addr),
            Kind::Erase { addr, size } => {
                if len != 1 + u64::from(addr) {
                    self.violate(Violation::Malformed { opcode: op });
                } else {
                    self.erase(op, addr, size);
                }
            }
        }
    }

    fn protects(&self, from: u32, len: u32) -> bool {
        self.protected
            .as_ref()
            .is_some_and(|p| from < p.end && p.start < from.saturating_add(len))
    }

    /// A protected target: the command is dropped; WEL stays set unless configured otherwise.
    fn refuse_protected(&mut self) {
        if self.config.protect_clears_wel {
            self.wel = false;
        }
    }

    fn start_operation(&mut self, polls: u32) {
        if core::mem::take(&mut self.hang_next) {
            self.stuck_busy = true;
            self.busy_polls = polls.max(1);
        } else if polls == 0 {
            self.wel = false;
        } else {
            self.busy_polls = polls;
        }
    }

    fn program(&mut self, op: u8, addr_len: u8) {
        let (Some(start), true) = (self.header_address(addr_len), self.txn.data_len > 0) else {
            self.violate(Violation::Malformed { opcode: op });
            return;
        };
        if !self.wel {
            self.violate(Violation::WithoutWriteEnable { opcode: op });
            return;
        }
        let start = self.wrap_address(start);
        let len = self.txn.data_len;
        let in_page = start % PAGE_SIZE;
        if len > PAGE_SIZE.saturating_sub(in_page) as usize {
            self.violate(Violation::PageWrap {
                address: start,
                len,
            });
        }
        let base = start.saturating_sub(in_page);
        if self.protects(base, PAGE_SIZE) {
            self.refuse_protected();
            return;
        }
        let page = self.txn.page;
        if let Some(dst) = usize::try_from(base)
            .ok()
            .and_then(|b| self.mem.get_mut(b..b.saturating_add(page.len())))
        {
            for (d, s) in dst.iter_mut().zip(page.iter()) {
                *d &= *s;
            }
        }
        let n = len.min(PAGE_SIZE as usize) as u64;
        self.counters.bytes_programmed = self.counters.bytes_programmed.saturating_add(n);
        self.counters.page_programs = self.counters.page_programs.saturating_add(1);
        self.start_operation(self.config.program_polls);
    }

    fn erase(&mut self, op: u8, addr_len: u8, size: u32) {
        let Some(addr) = self.header_address(addr_len) else {
            self.violate(Violation::Malformed { opcode: op });
            return;
        };
        if !self.wel {
            self.violate(Violation::WithoutWriteEnable { opcode: op });
            return;
        }
        let addr = self.wrap_address(addr);
        // The chip ignores the address bits inside the unit.
        let base = addr.saturating_sub(addr % size);
        if self.protects(base, size) {
            self.refuse_protected();
            return;
        }
        if let Some(dst) = usize::try_from(base).ok().and_then(|b| {
            let n = usize::try_from(size).ok()?;
            self.mem.get_mut(b..b.checked_add(n)?)
        }) {
            dst.fill(0xFF);
        }
        if size == BLOCK_SIZE {
            self.counters.block_erases = self.counters.block_erases.saturating_add(1);
        } else {
            self.counters.sector_erases = self.counters.sector_erases.saturating_add(1);
        }
        self.start_operation(self.config.erase_polls);
    }
}

/// The array address of byte `pos` of a transaction whose data starts at byte `first` and
/// address `start`.
fn offset(start: u32, pos: u64, first: u64) -> u64 {
    u64::from(start).saturating_add(pos.saturating_sub(first))
}

impl ErrorType for SimChip {
    type Error = SimError;
}

impl SpiDevice for SimChip {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SimError> {
        self.begin();
        for op in operations.iter_mut() {
            match op {
                Operation::Write(w) => {
                    for &b in w.iter() {
                        self.clock(b);
                    }
                }
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = self.clock(0x00);
                    }
                }
                Operation::Transfer(r, w) => {
                    // The longer buffer sets the length: reads past `w` clock out 0x00, bytes
                    // read past `r` are dropped.
                    let n = r.len().max(w.len());
                    for i in 0..n {
                        let out = self.clock(w.get(i).copied().unwrap_or(0x00));
                        if let Some(b) = r.get_mut(i) {
                            *b = out;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = self.clock(*b);
                    }
                }
                Operation::DelayNs(ns) => {
                    self.counters.delay_ns = self.counters.delay_ns.saturating_add(u64::from(*ns));
                }
            }
        }
        self.end();
        match self.txn.violation {
            Some(v) if self.config.strict => Err(SimError::Violation(v)),
            _ => Ok(()),
        }
    }
}
