//! What a `#![no_std]` plugin needs from a runtime: an allocator and a panic handler.
//!
//! The allocator only bumps a pointer through linear memory and never frees. That is right
//! here: credgate instantiates a plugin afresh for every call and throws the instance away
//! afterwards, so a call's garbage disappears with its instance, and allocation is as cheap as
//! it can be. Memory grows page by page up to the host's cap; past it, allocation fails and
//! the call traps.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

const PAGE: usize = 65_536;

struct Bump;

/// Next free address; 0 until the first allocation (then `__heap_base`, from the linker).
static NEXT: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    static __heap_base: u8;
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = NEXT.load(Ordering::Relaxed);
        if next == 0 {
            // Only the address of the linker-provided symbol is taken, never its value.
            next = core::ptr::addr_of!(__heap_base) as usize;
        }
        let start = match next.checked_add(layout.align() - 1) {
            Some(n) => n & !(layout.align() - 1),
            None => return core::ptr::null_mut(),
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        let have = core::arch::wasm32::memory_size(0) * PAGE;
        if end > have {
            let pages = (end - have).div_ceil(PAGE);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
        }
        NEXT.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // A trap: credgate fails the call with `provider_error` and reports the plugin.
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocation entry point: the host calls it to place arguments (the
/// request, the credential) in the plugin's memory. Served by the same bump allocator.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_len, align) else {
        core::arch::wasm32::unreachable()
    };
    // SAFETY: `layout` has a non-zero size.
    let new = unsafe { ALLOCATOR.alloc(layout) };
    if new.is_null() {
        core::arch::wasm32::unreachable();
    }
    if !old.is_null() && old_len > 0 {
        // SAFETY: the host passes a live allocation of `old_len` bytes; the new one is at
        // least as large and does not overlap it (the bump pointer only moves forward).
        unsafe { core::ptr::copy_nonoverlapping(old, new, old_len.min(new_len)) };
    }
    new
}
