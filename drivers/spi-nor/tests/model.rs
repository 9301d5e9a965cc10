//! Random reads, writes and erases through the driver against a plain byte array with NOR
//! semantics (program ANDs, erase sets 0xFF), on a strict simulated chip with random busy
//! times and driver options: every read must match the model, no protocol violation may occur.

mod common;
use cairndb_spi_nor::sim::{SimChip, SimConfig};
use cairndb_spi_nor::{Config, Error, SECTOR_SIZE};
use common::*;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use proptest::prelude::*;

/// 128 KiB: two 64 KiB blocks, so block erases and their mix with sector erases happen.
const CAP: u32 = 128 << 10;

#[derive(Debug, Clone)]
enum Op {
    Read { at: u32, len: usize },
    Write { at: u32, data: Vec<u8> },
    Erase { first: u32, sectors: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets and lengths around the interesting edges: page and sector boundaries, the end.
    let at = prop_oneof![
        0..CAP,
        (0..CAP / 256).prop_map(|p| p * 256 - (p > 0) as u32)
    ];
    prop_oneof![
        (at.clone(), 0usize..1200).prop_map(|(at, len)| Op::Read { at, len }),
        (at, prop::collection::vec(any::<u8>(), 0..700))
            .prop_map(|(at, data)| Op::Write { at, data }),
        // Block-aligned starts half the time, so whole 64 KiB runs come up.
        (
            prop_oneof![0..CAP / SECTOR_SIZE + 1, (0u32..3).prop_map(|b| b * 16)],
            0u32..34
        )
            .prop_map(|(first, sectors)| Op::Erase { first, sectors }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn driver_matches_a_byte_array(
        ops in prop::collection::vec(op(), 1..40),
        program_polls in 0u32..4,
        erase_polls in 0u32..6,
        fast_read: bool,
        block_erase: bool,
        verify: bool,
    ) {
        let mut c = SimConfig::new([0xC2, 0x20, 0x11], CAP);
        c.program_polls = program_polls;
        c.erase_polls = erase_polls;
        let mut nor = open_chip(
            SimChip::new(c).unwrap(),
            Config { fast_read, block_erase, verify, ..checked(CAP) },
        );
        let mut model = vec![0xFFu8; CAP as usize];
        for op in &ops {
            match op {
                Op::Read { at, len } => {
                    let mut buf = vec![0u8; *len];
                    let r = nor.read(*at, &mut buf);
                    if *at as usize + len > CAP as usize {
                        prop_assert_eq!(r, Err(Error::OutOfBounds));
                    } else {
                        prop_assert!(r.is_ok(), "{:?}", r);
                        prop_assert_eq!(&buf[..], &model[*at as usize..*at as usize + len]);
                    }
                }
                Op::Write { at, data } => {
                    let r = nor.write(*at, data);
                    if *at as usize + data.len() > CAP as usize {
                        prop_assert_eq!(r, Err(Error::OutOfBounds));
                    } else {
                        prop_assert!(r.is_ok(), "{:?}", r);
                        for (m, d) in model[*at as usize..].iter_mut().zip(data) {
                            *m &= d;
                        }
                    }
                }
                Op::Erase { first, sectors } => {
                    let from = first * SECTOR_SIZE;
                    let to = from + sectors * SECTOR_SIZE;
                    let r = nor.erase(from, to);
                    if to > CAP {
                        prop_assert_eq!(r, Err(Error::OutOfBounds));
                    } else {
                        prop_assert!(r.is_ok(), "{:?}", r);
                        model[from as usize..to as usize].fill(0xFF);
                    }
                }
            }
            prop_assert_eq!(nor.spi().violations(), &[]);
        }
        prop_assert!(nor.spi().memory() == &model[..], "chip and model differ");
    }
}
