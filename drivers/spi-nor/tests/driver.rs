//! The driver against the simulated chip: every command, the safety rules (no page wrap, write
//! enable checked, bounded polling, bounds), a property test against a byte-array model, and a
//! cairndb database living on the chip.

mod sim;
use cairndb_spi_nor::{Config, Error, SpiNor};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use proptest::prelude::*;
use sim::{Chip, CountDelay};

const CAP: usize = 256 * 1024;
const W25Q16: [u8; 3] = [0xEF, 0x40, 0x15];

fn open(chip: &mut Chip) -> SpiNor<&mut Chip, CountDelay> {
    SpiNor::new(chip, CountDelay::default(), Config::new(CAP as u32))
        .map_err(|(e, _, _)| e)
        .expect("init")
}

#[test]
fn init_wakes_the_chip_and_reads_its_id() {
    let mut chip = Chip::new(CAP, W25Q16);
    let nor = open(&mut chip);
    assert_eq!(nor.jedec_id(), W25Q16);
    let _ = nor.release();
    assert!(!chip.powered_down);
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
}

#[test]
fn an_absent_or_unexpected_chip_and_a_bad_config_are_refused() {
    let mut absent = Chip::new(CAP, [0xFF; 3]);
    let r = SpiNor::new(&mut absent, CountDelay::default(), Config::new(CAP as u32));
    assert!(matches!(
        r,
        Err((Error::WrongChip([0xFF, 0xFF, 0xFF]), _, _))
    ));
    let mut chip = Chip::new(CAP, W25Q16);
    let mut cfg = Config::new(CAP as u32);
    cfg.expected_id = Some([0xC2, 0x20, 0x15]);
    assert!(matches!(
        SpiNor::new(&mut chip, CountDelay::default(), cfg),
        Err((Error::WrongChip(W25Q16), _, _))
    ));
    // 0x15 is 2 MiB: a config saying 256 KiB disagrees.
    let mut cfg = Config::new(CAP as u32);
    cfg.check_capacity = true;
    assert!(matches!(
        SpiNor::new(&mut chip, CountDelay::default(), cfg),
        Err((Error::BadConfig, _, _))
    ));
    for cap in [0, 1000, 32 << 20] {
        assert!(matches!(
            SpiNor::new(&mut chip, CountDelay::default(), Config::new(cap)),
            Err((Error::BadConfig, _, _))
        ));
    }
}

#[test]
fn programs_are_split_at_page_boundaries() {
    let mut chip = Chip::new(CAP, W25Q16);
    let mut nor = open(&mut chip);
    let data: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
    nor.write(200, &data).unwrap();
    let mut back = vec![0u8; 700];
    nor.read(200, &mut back).unwrap();
    assert_eq!(back, data);
    let _ = nor.release();
    // 200..256, 256..512, 512..768, 768..900: four page programs, none wrapping.
    assert_eq!(chip.programs, 4);
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
}

#[test]
fn erases_use_sectors_or_blocks_and_check_alignment() {
    let mut chip = Chip::new(CAP, W25Q16);
    let mut cfg = Config::new(CAP as u32);
    cfg.block_erase = true;
    let mut nor = SpiNor::new(&mut chip, CountDelay::default(), cfg)
        .map_err(|(e, _, _)| e)
        .unwrap();
    nor.write(70_000, &[0; 16]).unwrap();
    assert_eq!(nor.erase(4096, 4096 * 3), Ok(()));
    assert_eq!(nor.erase(65536, 65536 * 2 + 4096), Ok(())); // one block + one sector
    let mut b = [0u8; 16];
    nor.read(70_000, &mut b).unwrap();
    assert_eq!(b, [0xFF; 16]);
    assert_eq!(nor.erase(100, 4096), Err(Error::NotAligned));
    assert_eq!(nor.erase(0, CAP as u32 + 4096), Err(Error::OutOfBounds));
    assert_eq!(nor.erase(8192, 4096), Err(Error::OutOfBounds));
    let _ = nor.release();
    assert_eq!((chip.sector_erases, chip.block_erases), (3, 1));
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
}

#[test]
fn out_of_bounds_is_refused_before_any_bus_traffic() {
    let mut chip = Chip::new(CAP, W25Q16);
    let mut nor = open(&mut chip);
    let mut b = [0u8; 8];
    assert_eq!(nor.read(CAP as u32 - 4, &mut b), Err(Error::OutOfBounds));
    assert_eq!(nor.write(u32::MAX - 2, &[0; 8]), Err(Error::OutOfBounds));
    let _ = nor.release();
    assert_eq!(chip.bytes_read, 0);
    assert_eq!(chip.programs, 0);
}

#[test]
fn a_write_protected_chip_is_an_error_not_a_silent_drop() {
    let mut chip = Chip::new(CAP, W25Q16);
    chip.write_protected = true;
    let mut nor = open(&mut chip);
    assert_eq!(nor.write(0, &[0x12]), Err(Error::WriteProtected));
    assert_eq!(nor.erase(0, 4096), Err(Error::WriteProtected));
    let _ = nor.release();
    assert_eq!(chip.programs + chip.sector_erases, 0);
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
}

#[test]
fn a_chip_stuck_busy_times_out_with_bounded_polling() {
    let mut chip = Chip::new(CAP, W25Q16);
    let mut cfg = Config::new(CAP as u32);
    cfg.max_polls = 20;
    cfg.poll_delay_us = 10;
    chip.stuck_after_programs = Some(1);
    let mut nor = SpiNor::new(&mut chip, CountDelay::default(), cfg)
        .map_err(|(e, _, _)| e)
        .unwrap();
    // The program itself is issued, then the chip never finishes it.
    assert_eq!(nor.write(0, &[0]), Err(Error::Timeout));
    assert_eq!(nor.write(16, &[0]), Err(Error::Timeout));
    let mut b = [0u8; 1];
    assert_eq!(nor.read(0, &mut b), Err(Error::Timeout));
    let (_, delay) = nor.release();
    // Three timeouts of 20 polls 10 µs apart, plus the 50 µs wake-up at init: bounded.
    assert_eq!(delay.0, 3 * 20 * 10_000 + 50_000);
}

#[test]
fn fast_read_sends_a_dummy_byte() {
    let mut chip = Chip::new(CAP, W25Q16);
    let mut cfg = Config::new(CAP as u32);
    cfg.fast_read = true;
    let mut nor = SpiNor::new(&mut chip, CountDelay::default(), cfg)
        .map_err(|(e, _, _)| e)
        .unwrap();
    nor.write(4000, b"hello, flash").unwrap();
    let mut b = [0u8; 12];
    nor.read(4000, &mut b).unwrap();
    assert_eq!(&b, b"hello, flash");
    let _ = nor.release();
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
}

#[derive(Debug, Clone)]
enum Step {
    Write(u32, Vec<u8>),
    Erase(u32, u32),
    Read(u32, u16),
}

fn step() -> impl Strategy<Value = Step> {
    let cap = CAP as u32;
    prop_oneof![
        (
            0..cap - 1024,
            proptest::collection::vec(any::<u8>(), 1..1024)
        )
            .prop_map(|(a, d)| Step::Write(a, d)),
        (0..64u32, 1..4u32).prop_map(|(s, n)| Step::Erase(s * 4096, (s + n).min(64) * 4096)),
        (0..cap - 2048, 1..2048u16).prop_map(|(a, n)| Step::Read(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_sequences_match_a_byte_array(steps in proptest::collection::vec(step(), 1..40)) {
        let mut chip = Chip::new(CAP, W25Q16);
        let mut model = vec![0xFFu8; CAP];
        {
            let mut nor = open(&mut chip);
            for s in &steps {
                match s {
                    Step::Write(a, d) => {
                        nor.write(*a, d).unwrap();
                        for (i, b) in d.iter().enumerate() {
                            model[*a as usize + i] &= b;
                        }
                    }
                    Step::Erase(f, t) => {
                        nor.erase(*f, *t).unwrap();
                        model[*f as usize..*t as usize].fill(0xFF);
                    }
                    Step::Read(a, n) => {
                        let mut b = vec![0u8; *n as usize];
                        nor.read(*a, &mut b).unwrap();
                        prop_assert_eq!(&b[..], &model[*a as usize..*a as usize + *n as usize]);
                    }
                }
            }
        }
        prop_assert!(chip.violations.is_empty(), "{:?}", chip.violations);
        prop_assert!(chip.mem == model);
    }
}

#[test]
fn an_encrypted_database_lives_on_the_chip_across_a_reopen() {
    use cairndb::db::{Config as DbConfig, Database, Key};
    use cairndb::flash::NorFlashDevice;
    let key = [0x42u8; 32];
    let mut chip = Chip::new(CAP, W25Q16);
    chip.busy_polls = 1;
    let mut cfg = DbConfig::default();
    cfg.lfs.cache_size = 256;
    {
        let nor = open(&mut chip);
        // The first 8 sectors stay the firmware's; the database gets the other 56.
        let dev = NorFlashDevice::with_range(nor, 8, 56).ok().expect("range");
        let mut db = Database::format(dev, &cfg, &Key::Raw(&key))
            .map_err(|e| e.0)
            .expect("format");
        for i in 0..50 {
            let doc = cairndb::value::from_json(
                format!("{{\"n\":{i},\"name\":\"sensor-{i}\"}}").as_bytes(),
                8,
            )
            .unwrap();
            db.insert("things", &doc).expect("insert");
        }
        db.kv_put("cfg", b"mode", b"eco").expect("kv");
        let (r, _) = db.close();
        r.expect("close");
    }
    assert!(
        chip.mem[..8 * 4096].iter().all(|&b| b == 0xFF),
        "firmware area touched"
    );
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
    let nor = open(&mut chip);
    let dev = NorFlashDevice::with_range(nor, 8, 56).ok().expect("range");
    let mut db = Database::open(dev, &cfg, &Key::Raw(&key))
        .map_err(|e| e.0)
        .expect("reopen");
    assert_eq!(db.count("things").unwrap(), 50);
    assert_eq!(
        db.kv_get("cfg", b"mode").unwrap().as_deref(),
        Some(&b"eco"[..])
    );
    drop(db);
    assert!(chip.violations.is_empty(), "{:?}", chip.violations);
    assert!(chip.programs > 0 && chip.sector_erases > 0);
}
