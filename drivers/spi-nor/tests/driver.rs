//! The driver against the strict simulated chip: each command, then every error path. The chip
//! is strict, so any protocol mistake (program without WREN, a wrapping page program, a command
//! while busy or powered down) already fails the operation; `assert_clean` checks the log too.

mod common;
use cairndb_spi_nor::sim::{SimChip, SimConfig};
use cairndb_spi_nor::{opcode, Capacity, Config, Error, SpiNor, Timeouts, STATUS_WEL, STATUS_WIP};
use common::*;
use embedded_storage::nor_flash::{
    MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn init_err(chip: SimChip, config: Config) -> Error<cairndb_spi_nor::sim::SimError> {
    match SpiNor::new(chip, Clock::default(), config) {
        Ok(_) => panic!("init succeeded"),
        Err((e, _, _)) => e,
    }
}

#[test]
fn init_releases_power_down_then_reads_the_id() {
    let mut c = SimConfig::new(ID_1M, 1 << 20);
    c.powered_down = true;
    let nor = open_chip(
        SimChip::new(c).unwrap(),
        Config {
            expected_id: Some(ID_1M),
            ..checked(1 << 20)
        },
    );
    assert_eq!(nor.jedec_id(), ID_1M);
    assert_eq!(nor.size(), 1 << 20);
    assert_eq!(nor.capacity(), 1 << 20);
    assert!(!nor.four_byte_addressing());
    let chip = nor.spi();
    assert!(!chip.is_powered_down());
    for (op, n) in [
        (opcode::RELEASE_POWER_DOWN, 1),
        (opcode::READ_STATUS, 2),
        (opcode::READ_JEDEC_ID, 1),
    ] {
        assert_eq!(chip.command_count(op), n, "opcode {op:#04x}");
    }
    assert_eq!(chip.counters().commands, 4);
    assert_clean(&nor);
}

#[test]
fn init_waits_out_an_operation_left_running() {
    let mut chip = sim(ID_1M, 1 << 20);
    chip.start_busy(40);
    let nor = open_chip(chip, Config::default());
    // 40 polls see it busy (the first is init's absent-chip check), one sees it idle; nothing
    // else reached the busy chip (it would have been a violation).
    assert_eq!(nor.spi().command_count(opcode::READ_STATUS), 41);
    assert_clean(&nor);
}

#[test]
fn software_reset_at_init() {
    let mut chip = sim(ID_1M, 1 << 20);
    // A WEL left set by the previous firmware is cleared by the reset.
    chip.transaction_write_enable();
    let mut nor = open_chip(
        chip,
        Config {
            reset: true,
            ..Config::default()
        },
    );
    assert_eq!(nor.spi().command_count(opcode::RESET_ENABLE), 1);
    assert_eq!(nor.spi().command_count(opcode::RESET), 1);
    assert_eq!(nor.status().unwrap(), 0);
    assert_clean(&nor);
}

/// A helper on the chip for the test above: WREN as raw firmware would send it.
trait RawWren {
    fn transaction_write_enable(&mut self);
}
impl RawWren for SimChip {
    fn transaction_write_enable(&mut self) {
        use embedded_hal::spi::{Operation, SpiDevice};
        self.transaction(&mut [Operation::Write(&[opcode::WRITE_ENABLE])])
            .unwrap();
        assert_eq!(self.status(), STATUS_WEL);
    }
}

#[test]
fn read_is_one_transaction_across_pages_and_sectors() {
    for fast in [false, true] {
        let mut chip = sim(ID_1M, 1 << 20);
        let data = pattern(10_000, 7);
        chip.memory_mut()[3000..13_000].copy_from_slice(&data);
        let mut nor = open_chip(
            chip,
            Config {
                fast_read: fast,
                ..Config::default()
            },
        );
        nor.spi_mut().reset_counters();
        let mut buf = vec![0u8; 10_000];
        nor.read(3000, &mut buf).unwrap();
        assert_eq!(buf, data);
        let chip = nor.spi();
        let (used, unused) = if fast {
            (opcode::FAST_READ, opcode::READ)
        } else {
            (opcode::READ, opcode::FAST_READ)
        };
        assert_eq!(chip.command_count(used), 1);
        assert_eq!(chip.command_count(unused), 0);
        assert_eq!(chip.counters().transactions, 1);
        assert_eq!(chip.counters().bytes_read, 10_000);
        assert_clean(&nor);
    }
}

#[test]
fn write_splits_at_every_page_boundary() {
    let mut nor = nor_1m();
    nor.spi_mut().reset_counters();
    let data = pattern(1000, 3);
    nor.write(200, &data).unwrap();
    // 200..256, 256..512, 512..768, 768..1024, 1024..1200.
    let chip = nor.spi();
    assert_eq!(chip.counters().page_programs, 5);
    assert_eq!(chip.command_count(opcode::WRITE_ENABLE), 5);
    assert_eq!(chip.counters().bytes_programmed, 1000);
    assert_eq!(chip.memory()[200..1200], data[..]);
    assert!(chip.memory()[..200].iter().all(|&b| b == 0xFF));
    assert!(chip.memory()[1200..2048].iter().all(|&b| b == 0xFF));
    // Busy 2 polls per program, plus the WEL check after each WREN.
    assert_eq!(chip.command_count(opcode::READ_STATUS), 5 * (1 + 3));
    assert_clean(&nor);
    // A page-aligned full page is one program.
    nor.spi_mut().reset_counters();
    nor.write(4096, &[0x11; 256]).unwrap();
    assert_eq!(nor.spi().counters().page_programs, 1);
    assert_clean(&nor);
}

#[test]
fn programming_again_clears_more_bits() {
    let mut nor = nor_1m();
    nor.write(77, &[0xF0, 0xAA]).unwrap();
    nor.write(77, &[0x3F, 0xFF]).unwrap();
    let mut b = [0u8; 2];
    nor.read(77, &mut b).unwrap();
    assert_eq!(b, [0x30, 0xAA]);
    fn multiwrite<F: MultiwriteNorFlash>(_: &F) {}
    multiwrite(&nor);
    assert_clean(&nor);
}

#[test]
fn erase_by_sectors_or_blocks() {
    for block_erase in [false, true] {
        let mut chip = sim(ID_1M, 1 << 20);
        chip.memory_mut().fill(0x00);
        let mut nor = open_chip(
            chip,
            Config {
                block_erase,
                ..Config::default()
            },
        );
        nor.spi_mut().reset_counters();
        // 60 KiB .. 200 KiB: one sector, two whole blocks, two sectors.
        nor.erase(60 << 10, 200 << 10).unwrap();
        let chip = nor.spi();
        let mem = chip.memory();
        assert!(mem[60 << 10..200 << 10].iter().all(|&b| b == 0xFF));
        assert!(mem[..60 << 10].iter().all(|&b| b == 0));
        assert!(mem[200 << 10..].iter().all(|&b| b == 0));
        let n = chip.counters();
        if block_erase {
            assert_eq!((n.sector_erases, n.block_erases), (3, 2));
        } else {
            assert_eq!((n.sector_erases, n.block_erases), (35, 0));
        }
        assert_clean(&nor);
    }
}

#[test]
fn status_polls_back_off_and_stay_few() {
    let mut c = SimConfig::new(ID_1M, 1 << 20);
    c.program_polls = 6;
    c.erase_polls = 50;
    let clock = Clock::default();
    let mut nor = open_with(SimChip::new(c).unwrap(), clock.clone(), Config::default());
    assert_eq!(clock.calls(), 1, "only the wake-up wait at init");
    nor.spi_mut().reset_counters();
    clock.reset();
    nor.write(0, &[1]).unwrap();
    // The WEL check, 6 busy polls, the idle one; waits between the busy ones of 10, 20, 40, 80,
    // 100 (the cap: 1/100 of the 10 ms budget) and 100 us.
    assert_eq!(nor.spi().command_count(opcode::READ_STATUS), 8);
    assert_eq!(clock.ns(), 350_000);
    nor.spi_mut().reset_counters();
    clock.reset();
    nor.erase(0, 4096).unwrap();
    assert_eq!(nor.spi().command_count(opcode::READ_STATUS), 52);
    // Doubling from 10 us to the 10 ms cap (1/100 of 1 s), then steps of 10 ms.
    let mut want = 0u64;
    let mut step = 10u64;
    for _ in 0..50 {
        want += step;
        step = (step * 2).min(10_000);
    }
    assert_eq!(clock.ns(), want * 1000);
    assert_clean(&nor);
}

#[test]
fn chips_over_16_mib_get_4_byte_opcodes() {
    for fast in [false, true] {
        let mut nor = open_chip(
            sim(ID_32M, 32 << 20),
            Config {
                fast_read: fast,
                block_erase: true,
                ..checked(32 << 20)
            },
        );
        assert!(nor.four_byte_addressing());
        let at = (20 << 20) + 250;
        let data = pattern(600, 9);
        nor.write(at, &data).unwrap();
        let mut buf = vec![0u8; 600];
        nor.read(at, &mut buf).unwrap();
        assert_eq!(buf, data);
        // Not aliased into the low 16 MiB.
        assert_eq!(nor.spi().memory()[(4 << 20) + 250], 0xFF);
        assert_eq!(nor.spi().memory()[at as usize], data[0]);
        nor.erase(20 << 20, (21 << 20) + 4096).unwrap();
        assert!(nor.spi().memory()[20 << 20..(21 << 20) + 4096]
            .iter()
            .all(|&b| b == 0xFF));
        let chip = nor.spi();
        let read4 = if fast {
            opcode::FAST_READ_4B
        } else {
            opcode::READ_4B
        };
        for op in [
            read4,
            opcode::PAGE_PROGRAM_4B,
            opcode::SECTOR_ERASE_4B,
            opcode::BLOCK_ERASE_4B,
        ] {
            assert!(chip.command_count(op) > 0, "{op:#04x} used");
        }
        for op in [
            opcode::READ,
            opcode::FAST_READ,
            opcode::PAGE_PROGRAM,
            opcode::SECTOR_ERASE,
            opcode::BLOCK_ERASE,
        ] {
            assert_eq!(chip.command_count(op), 0, "{op:#04x} unused");
        }
        assert_eq!(chip.counters().block_erases, 16);
        assert_eq!(chip.counters().sector_erases, 1);
        assert_clean(&nor);
    }
}

#[test]
fn power_down_then_any_operation_wakes_the_chip() {
    let mut nor = nor_1m();
    nor.write(10, &[0x42]).unwrap();
    nor.power_down().unwrap();
    assert!(nor.spi().is_powered_down());
    let mut b = [0u8; 1];
    nor.read(10, &mut b).unwrap();
    assert_eq!(b, [0x42]);
    assert!(!nor.spi().is_powered_down());
    nor.power_down().unwrap();
    nor.write(11, &[0x43]).unwrap();
    nor.power_down().unwrap();
    nor.erase(0, 4096).unwrap();
    assert_eq!(nor.spi().command_count(opcode::POWER_DOWN), 3);
    assert_clean(&nor);
}

#[test]
fn empty_operations_send_nothing() {
    let mut nor = nor_1m();
    nor.spi_mut().reset_counters();
    nor.read(5, &mut []).unwrap();
    nor.write(1 << 20, &[]).unwrap();
    nor.erase(4096, 4096).unwrap();
    assert_eq!(nor.spi().counters().transactions, 0);
}

#[test]
fn bounds_and_alignment_are_checked_before_the_bus() {
    let mut nor = nor_1m();
    nor.spi_mut().reset_counters();
    let end = 1u32 << 20;
    let mut buf = [0u8; 2];
    let cases: Vec<(Error<_>, NorFlashErrorKind)> = vec![
        (
            nor.read(end - 1, &mut buf).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.read(u32::MAX, &mut buf).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.write(end, &[0]).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.write(end - 1, &[0, 0]).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.erase(0, end + 4096).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.erase(8192, 4096).unwrap_err(),
            NorFlashErrorKind::OutOfBounds,
        ),
        (
            nor.erase(1, 4096).unwrap_err(),
            NorFlashErrorKind::NotAligned,
        ),
        (
            nor.erase(0, 4095).unwrap_err(),
            NorFlashErrorKind::NotAligned,
        ),
    ];
    for (e, kind) in cases {
        assert_eq!(e.kind(), kind, "{e:?}");
        assert!(matches!(e, Error::OutOfBounds | Error::NotAligned));
    }
    assert_eq!(nor.spi().counters().transactions, 0);
    // The last byte is in bounds.
    nor.read(end - 2, &mut buf).unwrap();
    nor.write(end - 1, &[0]).unwrap();
    nor.erase(end - 4096, end).unwrap();
    assert_clean(&nor);
}

#[test]
fn absent_chip_is_no_device() {
    for level in [0x00, 0xFF] {
        let mut chip = sim(ID_1M, 1 << 20);
        chip.set_absent(Some(level));
        match SpiNor::new(chip, Clock::default(), Config::default()) {
            Err((Error::NoDevice, chip, _)) => {
                // The bus is given back, and little was tried on it.
                assert!(chip.counters().transactions <= 4, "{level:#x}");
            }
            Err((e, _, _)) => panic!("{level:#x}: {e:?}"),
            Ok(_) => panic!("{level:#x}: a missing chip was accepted"),
        }
    }
    // An id of a grounded manufacturer byte is no chip either.
    assert_eq!(
        init_err(sim([0, 0x40, 0x14], 1 << 20), Config::default()),
        Error::NoDevice
    );
}

#[test]
fn id_and_capacity_checks() {
    assert_eq!(
        init_err(
            sim(ID_1M, 1 << 20),
            Config {
                expected_id: Some([0xC2, 0x20, 0x14]),
                ..Config::default()
            }
        ),
        Error::WrongId { found: ID_1M }
    );
    assert_eq!(
        init_err(sim(ID_1M, 1 << 20), checked(2 << 20)),
        Error::CapacityMismatch {
            configured: 2 << 20,
            code: 0x14
        }
    );
    // An Adesto-style id whose third byte is no size.
    let adesto = [0x1F, 0x84, 0x01];
    assert_eq!(
        init_err(sim(adesto, 1 << 20), Config::default()),
        Error::UnknownCapacity { code: 0x01 }
    );
    let nor = open_chip(
        sim(adesto, 1 << 20),
        Config {
            capacity: Capacity::Trusted(1 << 20),
            ..Config::default()
        },
    );
    assert_eq!(nor.size(), 1 << 20);
    // Impossible configured sizes are refused before touching the bus.
    for c in [0, 1000, (1 << 20) + 1, u32::MAX] {
        let cfg = Config {
            capacity: Capacity::Trusted(c),
            ..Config::default()
        };
        match SpiNor::new(sim(ID_1M, 1 << 20), Clock::default(), cfg) {
            Err((Error::InvalidCapacity, chip, _)) => assert_eq!(chip.counters().transactions, 0),
            other => panic!("{c}: {:?}", other.err().map(|e| e.0)),
        }
    }
    // The 512 Mbit+ codes.
    assert_eq!(cairndb_spi_nor::capacity_from_id(0x19), Some(32 << 20));
    assert_eq!(cairndb_spi_nor::capacity_from_id(0x20), Some(64 << 20));
    assert_eq!(cairndb_spi_nor::capacity_from_id(0x22), Some(256 << 20));
    assert_eq!(cairndb_spi_nor::capacity_from_id(0x23), None);
}

#[test]
fn stuck_busy_times_out_within_its_budget() {
    let clock = Clock::default();
    let mut nor = open_with(sim(ID_1M, 1 << 20), clock.clone(), Config::default());
    nor.write(0, &[0xAB]).unwrap();
    nor.spi_mut().hang_next_operation();
    clock.reset();
    nor.spi_mut().reset_counters();
    assert_eq!(nor.write(256, &[0x00]), Err(Error::Timeout));
    // 10 ms of asked-for delay, in few polls.
    assert_eq!(clock.ns(), 10_000_000);
    let polls = nor.spi().command_count(opcode::READ_STATUS);
    assert!(polls < 120, "{polls} polls");
    // The next operation waits for the chip instead of reading from a busy one: it times out
    // too (after the longest budget), without any command the chip would ignore.
    clock.reset();
    let mut b = [0u8; 1];
    assert_eq!(nor.read(0, &mut b), Err(Error::Timeout));
    assert_eq!(clock.ns(), 4_000_000_000);
    assert_clean(&nor);
    // Unstuck, the chip finishes and the driver carries on.
    nor.spi_mut().set_stuck_busy(false);
    nor.read(0, &mut b).unwrap();
    assert_eq!(b, [0xAB]);
    nor.write(512, &[0x01]).unwrap();
    assert_eq!(
        nor.spi().memory()[256],
        0x00,
        "the stuck program did complete"
    );
    assert_clean(&nor);
}

#[test]
fn stuck_busy_at_init_times_out() {
    let mut chip = sim(ID_1M, 1 << 20);
    chip.set_stuck_busy(true);
    let clock = Clock::default();
    match SpiNor::new(chip, clock.clone(), Config::default()) {
        Err((Error::Timeout, chip, _)) => {
            assert_eq!(chip.command_count(opcode::READ_JEDEC_ID), 0);
            assert!(chip.command_count(opcode::READ_STATUS) < 500);
            assert!(chip.violations().is_empty());
        }
        other => panic!("{:?}", other.err().map(|e| e.0)),
    }
    // Budget 4 s plus the 50 us wake-up wait.
    assert_eq!(clock.ns(), 4_000_050_000);
}

#[test]
fn a_short_budget_is_honoured() {
    let clock = Clock::default();
    let mut nor = open_with(
        sim(ID_1M, 1 << 20),
        clock.clone(),
        Config {
            timeouts: Timeouts {
                program_us: 1,
                sector_erase_us: 1,
                block_erase_us: 1,
            },
            poll_start_us: 0,
            ..Config::default()
        },
    );
    nor.spi_mut().hang_next_operation();
    clock.reset();
    assert_eq!(nor.erase(0, 4096), Err(Error::Timeout));
    assert_eq!(clock.ns(), 1000);
}

#[test]
fn write_protected_area_is_an_error() {
    let mut nor = nor_1m();
    nor.spi_mut().set_protected(Some(0..64 << 10));
    assert_eq!(nor.write(100, &[0x00]), Err(Error::WriteProtected));
    assert_eq!(nor.erase(0, 4096), Err(Error::WriteProtected));
    // WEL was cleared behind the refused command; nothing changed.
    assert_eq!(nor.status().unwrap() & (STATUS_WEL | STATUS_WIP), 0);
    assert!(nor.spi().memory().iter().all(|&b| b == 0xFF));
    assert_eq!(nor.spi().command_count(opcode::WRITE_DISABLE), 2);
    // Outside the protected range all is well.
    nor.write(64 << 10, &[0x00]).unwrap();
    nor.erase(64 << 10, 68 << 10).unwrap();
    assert_clean(&nor);
}

#[test]
fn write_enable_that_does_not_latch_is_an_error() {
    let mut nor = nor_1m();
    nor.spi_mut().set_wren_ignored(true);
    nor.spi_mut().reset_counters();
    assert_eq!(nor.write(0, &[0x00]), Err(Error::WriteEnable));
    assert_eq!(nor.erase(0, 4096), Err(Error::WriteEnable));
    assert_eq!(nor.spi().command_count(opcode::PAGE_PROGRAM), 0);
    assert_eq!(nor.spi().command_count(opcode::SECTOR_ERASE), 0);
    // A chip that vanished (MISO pulled down) reads as WEL clear too.
    nor.spi_mut().set_wren_ignored(false);
    nor.spi_mut().set_absent(Some(0x00));
    assert_eq!(nor.write(0, &[0x00]), Err(Error::WriteEnable));
    // Pulled up, it looks busy forever.
    nor.spi_mut().set_absent(Some(0xFF));
    assert_eq!(nor.write(0, &[0x00]), Err(Error::Timeout));
    nor.spi_mut().set_absent(None);
    nor.write(0, &[0x00]).unwrap();
    assert_clean(&nor);
}

#[test]
fn verify_catches_what_the_wel_check_cannot() {
    let chip = || {
        let mut c = SimConfig::new(ID_1M, 1 << 20);
        c.protect_clears_wel = true;
        let mut chip = SimChip::new(c).unwrap();
        chip.memory_mut()[..4096].fill(0x00);
        chip.set_protected(Some(0..8192));
        chip
    };
    // Without verification a chip that drops the command and clears WEL goes unnoticed.
    let mut nor = open_chip(chip(), Config::default());
    nor.write(8000, &[0x00; 50]).unwrap();
    nor.erase(0, 4096).unwrap();
    assert_eq!(nor.spi().memory()[0], 0x00, "the erase never happened");
    assert_eq!(nor.spi().memory()[8000], 0xFF, "the program never happened");
    let mut nor = open_chip(
        chip(),
        Config {
            verify: true,
            ..Config::default()
        },
    );
    assert_eq!(nor.erase(0, 4096), Err(Error::Verify { address: 0 }));
    assert_eq!(
        nor.write(8000, &[0x0F; 2]),
        Err(Error::Verify { address: 8000 })
    );
    // Verified operations that do land pass, including programs over already cleared bits.
    nor.erase(8192, 12288).unwrap();
    nor.write(8190, &pattern(300, 1)[..2]).unwrap_err();
    nor.write(8192, &pattern(300, 1)).unwrap();
    nor.write(8192, &[0x00]).unwrap();
    assert_eq!(nor.spi().memory()[8193..8492], pattern(300, 1)[1..]);
    assert_eq!(nor.spi().memory()[8192], 0x00);
    assert_clean(&nor);
}

#[test]
fn bus_errors_reach_the_caller() {
    // A non-strict chip never errors; a strict one errors on a violation. Make one happen
    // under the driver by leaving the chip in power-down behind its back.
    let mut nor = nor_1m();
    {
        use embedded_hal::spi::{Operation, SpiDevice};
        nor.spi_mut()
            .transaction(&mut [Operation::Write(&[opcode::POWER_DOWN])])
            .unwrap();
    }
    let mut b = [0u8; 4];
    let e = nor.read(0, &mut b).unwrap_err();
    assert!(matches!(e, Error::Spi(_)), "{e:?}");
    assert_eq!(e.kind(), NorFlashErrorKind::Other);
    assert!(!format!("{e}").is_empty());
}
