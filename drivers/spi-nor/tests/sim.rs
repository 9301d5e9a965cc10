//! The simulated chip itself, driven with raw transactions: it must behave like silicon and
//! catch the driver mistakes it is there to catch.

mod common;
use cairndb_spi_nor::sim::{SimChip, SimConfig, SimError, Violation};
use cairndb_spi_nor::{opcode, STATUS_WEL, STATUS_WIP};
use common::*;
use embedded_hal::spi::{Operation, SpiDevice};

fn status(chip: &mut SimChip) -> u8 {
    let mut s = [0u8; 1];
    chip.transaction(&mut [
        Operation::Write(&[opcode::READ_STATUS]),
        Operation::Read(&mut s),
    ])
    .unwrap();
    s[0]
}

fn cmd(chip: &mut SimChip, bytes: &[u8]) -> Result<(), SimError> {
    chip.transaction(&mut [Operation::Write(bytes)])
}

fn read(chip: &mut SimChip, addr: u32, n: usize) -> Result<Vec<u8>, SimError> {
    let a = addr.to_be_bytes();
    let mut buf = vec![0u8; n];
    chip.transaction(&mut [
        Operation::Write(&[opcode::READ, a[1], a[2], a[3]]),
        Operation::Read(&mut buf),
    ])?;
    Ok(buf)
}

fn program(chip: &mut SimChip, addr: u32, data: &[u8]) -> Result<(), SimError> {
    let a = addr.to_be_bytes();
    chip.transaction(&mut [
        Operation::Write(&[opcode::PAGE_PROGRAM, a[1], a[2], a[3]]),
        Operation::Write(data),
    ])
}

/// Polls until idle; returns how many polls saw WIP.
fn wait(chip: &mut SimChip) -> u32 {
    let mut busy = 0;
    while status(chip) & STATUS_WIP != 0 {
        busy += 1;
        assert!(busy < 1000);
    }
    busy
}

fn lenient(capacity: u32) -> SimChip {
    let mut c = SimConfig::new(ID_1M, capacity);
    c.strict = false;
    SimChip::new(c).unwrap()
}

#[test]
fn every_operation_kind_clocks_the_same_byte_stream() {
    let mut chip = sim(ID_1M, 1 << 20);
    // Write + Read, Transfer (longer read than write), TransferInPlace: the same id.
    let mut a = [0u8; 3];
    chip.transaction(&mut [
        Operation::Write(&[opcode::READ_JEDEC_ID]),
        Operation::Read(&mut a),
    ])
    .unwrap();
    let mut b = [0u8; 4];
    chip.transaction(&mut [Operation::Transfer(&mut b, &[opcode::READ_JEDEC_ID])])
        .unwrap();
    let mut c = [opcode::READ_JEDEC_ID, 0, 0, 0];
    chip.transaction(&mut [Operation::DelayNs(500), Operation::TransferInPlace(&mut c)])
        .unwrap();
    assert_eq!(a, ID_1M);
    assert_eq!(b[1..], ID_1M);
    assert_eq!(c[1..], ID_1M);
    let n = chip.counters();
    assert_eq!((n.transactions, n.commands, n.delay_ns), (3, 3, 500));
    assert_eq!(chip.command_count(opcode::READ_JEDEC_ID), 3);
}

#[test]
fn program_needs_wren_and_clears_wel_when_done() {
    let mut chip = sim(ID_1M, 1 << 20);
    assert_eq!(
        program(&mut chip, 0, &[0x00]),
        Err(SimError::Violation(Violation::WithoutWriteEnable {
            opcode: opcode::PAGE_PROGRAM
        }))
    );
    assert_eq!(chip.memory()[0], 0xFF, "ignored without WEL");
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    assert_eq!(status(&mut chip), STATUS_WEL);
    program(&mut chip, 0, &[0x12, 0x34]).unwrap();
    // Busy for the configured 2 polls, WEL still set while busy, then both clear.
    assert_eq!(status(&mut chip), STATUS_WEL | STATUS_WIP);
    assert_eq!(wait(&mut chip), 1);
    assert_eq!(status(&mut chip), 0);
    assert_eq!(read(&mut chip, 0, 3).unwrap(), [0x12, 0x34, 0xFF]);
    // WEL does not survive the program: a second program without WREN is refused again.
    assert!(program(&mut chip, 2, &[0]).is_err());
    let n = chip.counters();
    assert_eq!((n.page_programs, n.bytes_programmed), (1, 2));
}

#[test]
fn page_program_wraps_inside_the_page_like_silicon() {
    let mut chip = lenient(1 << 20);
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    let data: Vec<u8> = (0..32).collect();
    program(&mut chip, 0x1F0, &data).unwrap();
    wait(&mut chip);
    // The first 16 bytes land at the end of page 0x100, the rest at its start, not in 0x200.
    assert_eq!(chip.memory()[0x1F0..0x200], data[..16]);
    assert_eq!(chip.memory()[0x100..0x110], data[16..]);
    assert!(chip.memory()[0x200..0x210].iter().all(|&b| b == 0xFF));
    assert_eq!(
        chip.violations(),
        &[Violation::PageWrap {
            address: 0x1F0,
            len: 32
        }]
    );
    // More than a page: only the last 256 bytes sent stay in the page buffer.
    chip.clear_violations();
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    let long: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    program(&mut chip, 0x400, &long).unwrap();
    wait(&mut chip);
    for i in 0..256usize {
        // Byte k went to 0x400 + k mod 256; the later one overwrote the buffer slot.
        let k = if i < 44 { i + 256 } else { i };
        assert_eq!(chip.memory()[0x400 + i], long[k], "offset {i}");
    }
    // A strict chip turns the wrap into the transaction's error.
    let mut strict = sim(ID_1M, 1 << 20);
    cmd(&mut strict, &[opcode::WRITE_ENABLE]).unwrap();
    assert!(matches!(
        program(&mut strict, 0xFF, &[1, 2]),
        Err(SimError::Violation(Violation::PageWrap { .. }))
    ));
}

#[test]
fn program_only_clears_bits_and_erase_sets_ones() {
    let mut chip = sim(ID_1M, 1 << 20);
    for (byte, want) in [(0xF0, 0xF0), (0x3C, 0x30), (0xFF, 0x30)] {
        cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
        program(&mut chip, 0x1234, &[byte]).unwrap();
        wait(&mut chip);
        assert_eq!(chip.memory()[0x1234], want);
    }
    chip.memory_mut()[0x10000] = 0;
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    // Any address inside the sector selects it.
    cmd(&mut chip, &[opcode::SECTOR_ERASE, 0x00, 0x1F, 0xFF]).unwrap();
    assert_eq!(wait(&mut chip), 3);
    assert!(chip.memory()[0x1000..0x2000].iter().all(|&b| b == 0xFF));
    assert_eq!(chip.memory()[0x10000], 0, "outside the sector");
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    cmd(&mut chip, &[opcode::BLOCK_ERASE, 0x01, 0x80, 0x00]).unwrap();
    wait(&mut chip);
    assert_eq!(chip.memory()[0x10000], 0xFF);
    let n = chip.counters();
    assert_eq!((n.sector_erases, n.block_erases), (1, 1));
    // An erase with a byte too many is not executed.
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    assert_eq!(
        cmd(&mut chip, &[opcode::SECTOR_ERASE, 0, 0, 0, 0]),
        Err(SimError::Violation(Violation::Malformed {
            opcode: opcode::SECTOR_ERASE
        }))
    );
    assert_eq!(chip.counters().sector_erases, 1);
}

#[test]
fn reading_while_busy_returns_garbage_and_is_flagged() {
    let mut chip = lenient(1 << 20);
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    program(&mut chip, 0, &[0x00; 4]).unwrap();
    // No status poll: the chip is still programming and does not answer the read.
    assert_eq!(read(&mut chip, 0, 4).unwrap(), [0xFF; 4]);
    assert_eq!(
        chip.violations(),
        &[Violation::WhileBusy {
            opcode: opcode::READ
        }]
    );
    wait(&mut chip);
    assert_eq!(read(&mut chip, 0, 4).unwrap(), [0x00; 4]);
    // Strict: the read itself fails.
    let mut strict = sim(ID_1M, 1 << 20);
    strict.start_busy(1);
    assert!(read(&mut strict, 0, 1).is_err());
}

#[test]
fn deep_power_down_hears_only_release() {
    let mut c = SimConfig::new(ID_1M, 1 << 20);
    c.powered_down = true;
    let mut chip = SimChip::new(c).unwrap();
    assert!(chip.is_powered_down());
    let mut id = [0u8; 3];
    assert!(chip
        .transaction(&mut [
            Operation::Write(&[opcode::READ_JEDEC_ID]),
            Operation::Read(&mut id)
        ])
        .is_err());
    assert_eq!(id, [0xFF; 3], "MISO floats in power-down");
    // 0xAB with three dummy bytes also clocks out the old electronic signature.
    let mut res = [opcode::RELEASE_POWER_DOWN, 0, 0, 0, 0];
    chip.transaction(&mut [Operation::TransferInPlace(&mut res)])
        .unwrap();
    assert_eq!(res[4], 0x13);
    assert!(!chip.is_powered_down());
    cmd(&mut chip, &[opcode::POWER_DOWN]).unwrap();
    assert!(chip.is_powered_down());
}

#[test]
fn reset_needs_reset_enable_right_before() {
    let mut chip = sim(ID_1M, 1 << 20);
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    assert_eq!(
        cmd(&mut chip, &[opcode::RESET]),
        Err(SimError::Violation(Violation::Malformed {
            opcode: opcode::RESET
        }))
    );
    assert_eq!(status(&mut chip), STATUS_WEL, "not reset");
    cmd(&mut chip, &[opcode::RESET_ENABLE]).unwrap();
    cmd(&mut chip, &[opcode::RESET]).unwrap();
    assert_eq!(status(&mut chip), 0);
}

#[test]
fn four_byte_opcodes_exist_only_above_16_mib() {
    let mut small = sim(ID_1M, 1 << 20);
    assert_eq!(
        cmd(&mut small, &[opcode::READ_4B, 0, 0, 0, 0]),
        Err(SimError::Violation(Violation::Unknown {
            opcode: opcode::READ_4B
        }))
    );
    let mut big = sim(ID_32M, 32 << 20);
    big.memory_mut()[(20 << 20) + 1] = 0x5A;
    let mut buf = [0u8; 2];
    big.transaction(&mut [
        Operation::Write(&[opcode::FAST_READ_4B, 0x01, 0x40, 0x00, 0x00, 0x00]),
        Operation::Read(&mut buf),
    ])
    .unwrap();
    assert_eq!(buf, [0xFF, 0x5A]);
    // A 3-byte read on the big chip reaches only the low 16 MiB.
    big.memory_mut()[0x40_0001] = 0xA5;
    big.transaction(&mut [
        Operation::Write(&[opcode::READ, 0x40, 0x00, 0x00]),
        Operation::Read(&mut buf),
    ])
    .unwrap();
    assert_eq!(buf, [0xFF, 0xA5]);
}

#[test]
fn addresses_past_the_end_are_flagged() {
    let mut chip = lenient(1 << 20);
    // Starting beyond the array, and streaming past its end: both wrap, both flagged.
    assert_eq!(read(&mut chip, 1 << 20, 1).unwrap(), [0xFF]);
    assert_eq!(read(&mut chip, (1 << 20) - 1, 2).unwrap(), [0xFF, 0xFF]);
    assert_eq!(
        chip.violations(),
        &[
            Violation::OutOfRange {
                opcode: opcode::READ,
                address: 1 << 20
            },
            Violation::OutOfRange {
                opcode: opcode::READ,
                address: 1 << 20
            }
        ]
    );
}

#[test]
fn injected_faults() {
    let mut chip = sim(ID_1M, 1 << 20);
    chip.set_wren_ignored(true);
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    assert_eq!(status(&mut chip), 0);
    chip.set_wren_ignored(false);
    chip.set_protected(Some(0..0x1000));
    cmd(&mut chip, &[opcode::WRITE_ENABLE]).unwrap();
    program(&mut chip, 0x10, &[0]).unwrap();
    assert_eq!(status(&mut chip), STATUS_WEL, "ignored, never completed");
    assert_eq!(chip.memory()[0x10], 0xFF);
    chip.set_stuck_busy(true);
    for _ in 0..100 {
        assert_eq!(status(&mut chip) & STATUS_WIP, STATUS_WIP);
    }
    chip.set_stuck_busy(false);
    chip.set_absent(Some(0x00));
    assert_eq!(status(&mut chip), 0x00);
    chip.set_absent(Some(0xFF));
    assert_eq!(status(&mut chip), 0xFF);
    chip.set_absent(None);
    assert_eq!(status(&mut chip), STATUS_WEL);
    chip.power_cycle();
    assert_eq!(status(&mut chip), 0);
}

#[test]
fn odd_capacities_are_refused() {
    for c in [0, 4096, (1 << 20) + 4096] {
        assert!(SimChip::new(SimConfig::new(ID_1M, c)).is_none(), "{c}");
    }
}
