//! Bare-metal glue (`target_os = "none"`): the heap is the C library's `malloc`/`free`, and a
//! panic (a bug: nothing here panics on its inputs) calls the C library's `abort()`.
//!
//! `malloc` is only trusted for `MALLOC_ALIGN` (8 on the ARM EABI); larger alignments
//! over-allocate and keep the original pointer just below the aligned block.
//!
//! A firmware may route the heap elsewhere (an RTOS heap: `pvPortMalloc`, `k_malloc`) with
//! cairn_set_allocator() before its first call into the library; the hooks are kept in three
//! atomics (plain loads and stores, which every Cortex-M has).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
    fn abort() -> !;
}

const MALLOC_ALIGN: usize = 8;

/// The firmware's hooks (null: the C library's malloc/free) and their context.
static HOOK_ALLOC: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static HOOK_FREE: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static HOOK_CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// Set by the first allocation: from then on the hooks may not change (a block must go back
/// to the allocator it came from).
static USED: AtomicBool = AtomicBool::new(false);

type AllocHook = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type FreeHook = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// Installs (or with `None` removes) the allocation hooks; `Err` once anything was allocated.
pub(crate) fn set_allocator(
    alloc: Option<AllocHook>,
    free: Option<FreeHook>,
    ctx: *mut c_void,
) -> Result<(), ()> {
    if USED.load(Ordering::Acquire) {
        return Err(());
    }
    HOOK_CTX.store(ctx, Ordering::Relaxed);
    HOOK_FREE.store(
        free.map_or(core::ptr::null_mut(), |f| f as *mut c_void),
        Ordering::Relaxed,
    );
    HOOK_ALLOC.store(
        alloc.map_or(core::ptr::null_mut(), |f| f as *mut c_void),
        Ordering::Release,
    );
    Ok(())
}

/// The heap: the hook when installed, else the C library's malloc.
unsafe fn raw_alloc(size: usize) -> *mut c_void {
    USED.store(true, Ordering::Release);
    let hook = HOOK_ALLOC.load(Ordering::Acquire);
    if hook.is_null() {
        // SAFETY: plain C malloc; a NULL result is the allocation failure signal.
        return unsafe { malloc(size) };
    }
    // SAFETY: a non-null HOOK_ALLOC was stored from an `AllocHook` in `set_allocator`.
    let f: AllocHook = unsafe { core::mem::transmute::<*mut c_void, AllocHook>(hook) };
    // SAFETY: the hook's contract (cairn_set_allocator()).
    unsafe { f(HOOK_CTX.load(Ordering::Relaxed), size) }
}

unsafe fn raw_free(p: *mut c_void) {
    let hook = HOOK_FREE.load(Ordering::Acquire);
    if hook.is_null() {
        // SAFETY: `p` came from malloc (no hook was installed before the first allocation).
        return unsafe { free(p) };
    }
    // SAFETY: a non-null HOOK_FREE was stored from a `FreeHook` in `set_allocator`.
    let f: FreeHook = unsafe { core::mem::transmute::<*mut c_void, FreeHook>(hook) };
    // SAFETY: the hook's contract; `p` came from the matching allocation hook.
    unsafe { f(HOOK_CTX.load(Ordering::Relaxed), p) }
}

struct CMalloc;

unsafe impl GlobalAlloc for CMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: the heap's contract; a NULL result is the allocation failure signal.
            return unsafe { raw_alloc(layout.size()) }.cast();
        }
        let slack = layout.align() + core::mem::size_of::<*mut c_void>();
        let Some(total) = layout.size().checked_add(slack) else {
            return core::ptr::null_mut();
        };
        // SAFETY: as above.
        let raw = unsafe { raw_alloc(total) }.cast::<u8>();
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
            // SAFETY: `ptr` came from raw_alloc in `alloc`.
            unsafe { raw_free(ptr.cast()) };
        } else {
            // SAFETY: `alloc` stored the raw_alloc pointer just below `ptr`.
            unsafe { raw_free(ptr.cast::<*mut u8>().sub(1).read().cast()) };
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
