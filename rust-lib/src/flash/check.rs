//! Argument checks shared by the adapters: geometry sanity, and bounds and alignment of an
//! access. Everything uses checked arithmetic so no argument can make an adapter panic.

use super::Geometry;
use alloc::vec::Vec;

/// Whether `g` is usable by littlefs: nonzero sizes, at least one block, and a block size that
/// is a whole number of read and program units.
pub(crate) fn geometry_ok(g: &Geometry) -> bool {
    g.read_size != 0
        && g.prog_size != 0
        && g.block_size != 0
        && g.block_count != 0
        && g.block_size % g.read_size == 0
        && g.block_size % g.prog_size == 0
}

/// The byte offset from the start of the device of an access of `len` bytes at `off` in
/// `block`, or `None` when the access leaves the block, the block does not exist, or `off` or
/// `len` is not a multiple of `align`.
pub(crate) fn locate(g: &Geometry, block: u32, off: u32, len: usize, align: u32) -> Option<u64> {
    if block >= g.block_count || align == 0 {
        return None;
    }
    let len = u64::try_from(len).ok()?;
    let off = u64::from(off);
    let align = u64::from(align);
    if off.checked_add(len)? > u64::from(g.block_size) || off % align != 0 || len % align != 0 {
        return None;
    }
    // Cannot overflow: both factors are below 2^32.
    Some(u64::from(block) * u64::from(g.block_size) + off)
}

/// `locate` converted to an index into an in-memory image.
pub(crate) fn locate_usize(
    g: &Geometry,
    block: u32,
    off: u32,
    len: usize,
    align: u32,
) -> Option<usize> {
    usize::try_from(locate(g, block, off, len, align)?).ok()
}

/// A vector of `len` copies of `value`, or `None` if the allocation fails: a huge geometry
/// must not abort the program.
pub(crate) fn try_filled<T: Clone>(len: usize, value: T) -> Option<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, value);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry {
        read_size: 4,
        prog_size: 8,
        block_size: 64,
        block_count: 3,
    };

    #[test]
    fn geometry_rules() {
        assert!(geometry_ok(&G));
        assert!(!geometry_ok(&Geometry { read_size: 0, ..G }));
        assert!(!geometry_ok(&Geometry { prog_size: 0, ..G }));
        assert!(!geometry_ok(&Geometry { block_size: 0, ..G }));
        assert!(!geometry_ok(&Geometry {
            block_count: 0,
            ..G
        }));
        assert!(!geometry_ok(&Geometry {
            block_size: 60,
            ..G
        }));
    }

    #[test]
    fn locate_bounds_and_alignment() {
        assert_eq!(locate(&G, 0, 0, 64, 8), Some(0));
        assert_eq!(locate(&G, 2, 56, 8, 8), Some(184));
        assert_eq!(locate(&G, 2, 64, 0, 8), Some(192));
        assert_eq!(locate(&G, 3, 0, 8, 8), None);
        assert_eq!(locate(&G, 0, 60, 8, 4), None);
        assert_eq!(locate(&G, 0, 4, 8, 8), None);
        assert_eq!(locate(&G, 0, 0, 4, 8), None);
        assert_eq!(locate(&G, u32::MAX, u32::MAX, usize::MAX, 1), None);
        assert_eq!(locate(&G, 0, u32::MAX, 1, 1), None);
        assert_eq!(locate(&G, 0, 0, 8, 0), None);
    }
}
