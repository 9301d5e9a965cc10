//! Bare-metal glue (`target_os = "none"`): the heap is the C library's `malloc`/`free`, and a
//! panic (a bug: nothing here panics on its inputs) calls the C library's `abort()`.
//!
//! `malloc` is only trusted for `MALLOC_ALIGN` (8 on the ARM EABI); larger alignments
//! over-allocate and keep the original pointer just below the aligned block.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
    fn abort() -> !;
}

const MALLOC_ALIGN: usize = 8;

struct CMalloc;

unsafe impl GlobalAlloc for CMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain C malloc; a NULL result is the allocation failure signal.
            return unsafe { malloc(layout.size()) }.cast();
        }
        let slack = layout.align() + core::mem::size_of::<*mut c_void>();
        let Some(total) = layout.size().checked_add(slack) else {
            return core::ptr::null_mut();
        };
        // SAFETY: as above.
        let raw = unsafe { malloc(total) }.cast::<u8>();
        if raw.is_null() {
            return raw;
        }
        let p = raw.wrapping_add(crate::over_aligned_offset(raw as usize, layout.align()));
        // SAFETY: `p - size_of::<ptr>()` is inside the allocation (at least `raw`), and
        // aligned for a pointer since `p` is aligned to more than a pointer.
        unsafe { p.cast::<*mut u8>().sub(1).write(raw) };
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from malloc in `alloc`.
            unsafe { free(ptr.cast()) };
        } else {
            // SAFETY: `alloc` stored the malloc pointer just below `ptr`.
            unsafe { free(ptr.cast::<*mut u8>().sub(1).read().cast()) };
        }
    }
}

#[global_allocator]
static ALLOC: CMalloc = CMalloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: the C library's abort never returns.
    unsafe { abort() }
}
