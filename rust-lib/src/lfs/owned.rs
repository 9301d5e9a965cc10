//! Fallible heap allocations reached only through raw pointers.
//!
//! littlefs keeps raw pointers into its state (the config, caches, the list of open files), so
//! that state lives in allocations that never move and that Rust never reborrows as `Box`
//! (whose uniqueness would invalidate the pointers C holds). Allocation failure is reported,
//! not turned into an abort, because a microcontroller heap can run out.

use alloc::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

/// One heap-allocated `T`, freed (and dropped) with the handle.
pub(super) struct Owned<T> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

impl<T> Owned<T> {
    /// Moves `value` to the heap; gives it back when the allocation fails.
    pub(super) fn try_new(value: T) -> Result<Self, T> {
        let layout = Layout::new::<T>();
        let ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc(layout) };
            match NonNull::new(raw.cast::<T>()) {
                Some(p) => p,
                None => return Err(value),
            }
        };
        // SAFETY: `ptr` is a fresh allocation with `T`'s layout (or dangling and aligned for a
        // zero-sized `T`), so it is valid for one write of `T`.
        unsafe { ptr.as_ptr().write(value) };
        Ok(Owned {
            ptr,
            _owns: PhantomData,
        })
    }

    /// The stable address of the value; valid until the handle is dropped.
    pub(super) fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        let layout = Layout::new::<T>();
        // SAFETY: the value was written in `try_new` and is dropped exactly once, here; the
        // memory came from `alloc` with this layout when its size is non-zero.
        unsafe {
            ptr::drop_in_place(self.ptr.as_ptr());
            if layout.size() != 0 {
                dealloc(self.ptr.as_ptr().cast::<u8>(), layout);
            }
        }
    }
}

/// A zeroed byte buffer handed to littlefs (caches, lookahead bitmap).
pub(super) struct RawBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl RawBuf {
    /// A zeroed buffer of `len` bytes, or `None` when the allocation fails.
    pub(super) fn try_zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(RawBuf {
                ptr: NonNull::dangling(),
                len,
            });
        }
        let layout = Layout::array::<u8>(len).ok()?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        Some(RawBuf {
            ptr: NonNull::new(raw)?,
            len,
        })
    }

    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Ok(layout) = Layout::array::<u8>(self.len) {
            // SAFETY: allocated in `try_zeroed` with exactly this layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}
