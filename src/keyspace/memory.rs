//! used_memory: a counting global allocator over jemalloc.
//!
//! Every allocation is counted at jemalloc's size class, so `used_memory` is what the heap really
//! holds (as Redis's zmalloc counts usable sizes). Counts are striped per thread so the two worker
//! threads never share a cache line on the allocation path.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};

pub const STRIPES: usize = 16;

#[repr(align(64))]
struct Stripe(AtomicIsize);

static USED: [Stripe; STRIPES] = [const { Stripe(AtomicIsize::new(0)) }; STRIPES];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A small per-thread index used to stripe hot counters (allocator and stats).
#[inline]
pub fn thread_slot() -> usize {
    SLOT.try_with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let n = NEXT_SLOT.fetch_add(1, Relaxed) % STRIPES;
        s.set(n);
        n
    })
    .unwrap_or(0)
}

/// jemalloc's size class for a request of `n` bytes (lg_quantum 4: 8, 16, 32, 48 ... 128, then four
/// classes per doubling).
#[inline]
pub fn size_class(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return (n + 15) & !15;
    }
    let lg = usize::BITS - 1 - (n - 1).leading_zeros();
    let step = 1usize << (lg - 2);
    (n + step - 1) & !(step - 1)
}

/// Bytes the process holds on the heap right now.
pub fn used_memory() -> usize {
    USED.iter().map(|s| s.0.load(Relaxed)).sum::<isize>().max(0) as usize
}

#[inline]
fn account(delta: isize) {
    USED[thread_slot()].0.fetch_add(delta, Relaxed);
}

pub struct CountingJemalloc;

unsafe impl GlobalAlloc for CountingJemalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.alloc(layout);
        if !p.is_null() {
            account(size_class(layout.size().max(layout.align())) as isize);
        }
        p
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.alloc_zeroed(layout);
        if !p.is_null() {
            account(size_class(layout.size().max(layout.align())) as isize);
        }
        p
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        tikv_jemallocator::Jemalloc.dealloc(ptr, layout);
        account(-(size_class(layout.size().max(layout.align())) as isize));
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = tikv_jemallocator::Jemalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            let old = size_class(layout.size().max(layout.align())) as isize;
            let new = size_class(new_size.max(layout.align())) as isize;
            account(new - old);
        }
        p
    }
}

/// MEMORY PURGE: returns every arena's unused dirty pages to the kernel now.
pub fn purge() -> bool {
    // "arena.<MALLCTL_ARENAS_ALL>.purge", MALLCTL_ARENAS_ALL being 4096.
    // SAFETY: a void mallctl with a NUL-terminated name and no in/out values.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        ) == 0
    }
}

/// jemalloc-bg-thread: jemalloc's background threads return freed pages to the kernel over time
/// (its decay), so RSS comes back down after a burst, as in Redis where this is on by default.
pub fn set_background_thread(on: bool) -> bool {
    let mut value = on;
    // SAFETY: "background_thread" takes a bool; we pass a pointer to one and its size.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&mut value as *mut bool).cast(),
            std::mem::size_of::<bool>(),
        ) == 0
    }
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * page_size()
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_match_jemalloc() {
        for n in [
            1usize, 8, 9, 16, 17, 31, 32, 33, 48, 100, 128, 129, 160, 161, 200, 256, 257, 1000, 4096, 5000, 20000, 100_000,
        ] {
            let v: Vec<u8> = Vec::with_capacity(n);
            let usable = unsafe { tikv_jemallocator::usable_size(v.as_ptr()) };
            assert_eq!(size_class(n), usable, "size {n}");
        }
    }
}
