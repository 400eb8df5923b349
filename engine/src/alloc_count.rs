//! A counting global allocator, for measuring heap allocations per message.
//!
//! [`CountingAlloc`] forwards to the system allocator and counts every `alloc`,
//! `alloc_zeroed` and `realloc` per thread. A program opts in with
//! `#[global_allocator] static A: msgr2_engine::CountingAlloc = msgr2_engine::CountingAlloc;`
//! (the `msgr2` bench binary does, to report allocations per message on each side); the
//! engine itself never depends on it.
//!
//! Each thread counts into its own cache-line-sized slot, taken on its first allocation, so
//! counting costs a thread-local read and an uncontended relaxed add. A thread reads its slot
//! number with [`current_thread_slot`] and anyone reads a slot's total with
//! [`slot_allocations`]; slots are never reused, so the totals of exited threads stay
//! readable. Threads beyond [`SLOTS`]` - 1` share the last slot. Each slot also keeps the
//! bytes its thread allocated minus those it freed, so [`live_heap_bytes`] tells how much
//! heap something (say, a thousand connections) keeps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// How many per-thread slots there are (the last is shared by any further threads).
pub const SLOTS: usize = 256;

/// One thread's counters: allocations, and the bytes it allocated minus the bytes it freed
/// (wrapping: memory freed by another thread than the one that allocated it makes single
/// slots negative, their sum is right).
#[repr(align(64))]
struct Slot {
    allocs: AtomicU64,
    net_bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only the array initialiser uses it
const EMPTY: Slot = Slot {
    allocs: AtomicU64::new(0),
    net_bytes: AtomicU64::new(0),
};
static COUNTS: [Slot; SLOTS] = [EMPTY; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's slot; `usize::MAX` until its first allocation.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_slot() -> usize {
    MY_SLOT
        .try_with(|s| {
            let v = s.get();
            if v != usize::MAX {
                return v;
            }
            let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1);
            s.set(n);
            n
        })
        // thread-local storage already torn down (thread exit): the shared slot
        .unwrap_or(SLOTS - 1)
}

/// Counts an allocation of `grown` more bytes.
fn count(grown: usize) {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    let s = &COUNTS[my_slot()];
    s.allocs.fetch_add(1, Ordering::Relaxed);
    s.net_bytes.fetch_add(grown as u64, Ordering::Relaxed);
}

/// Counts `n` bytes freed (or given back by a shrinking `realloc`).
fn freed(n: usize) {
    COUNTS[my_slot()]
        .net_bytes
        .fetch_sub(n as u64, Ordering::Relaxed);
}

/// The system allocator, counting allocations per thread (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; counting touches only atomics and a `const`-initialised
// thread-local `Cell` (neither allocates, so there is no re-entry).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed(layout.size());
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // counted as if it succeeds (a failed realloc is an allocation-failure abort anyway)
        count(new_size);
        freed(layout.size());
        // SAFETY: `ptr` came from `System` through this allocator with `layout`; the caller
        // upholds `GlobalAlloc::realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Whether a [`CountingAlloc`] is the global allocator (it has counted an allocation).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// The calling thread's slot (for [`slot_allocations`] from any thread later).
pub fn current_thread_slot() -> usize {
    my_slot()
}

/// Allocations counted in `slot` so far (0 for a slot out of range).
pub fn slot_allocations(slot: usize) -> u64 {
    COUNTS
        .get(slot)
        .map_or(0, |s| s.allocs.load(Ordering::Relaxed))
}

/// Heap bytes allocated and not yet freed, process-wide (all threads), as far as the counting
/// allocator saw them: the difference between two readings is what was kept in between.
pub fn live_heap_bytes() -> i64 {
    COUNTS.iter().fold(0u64, |a, s| {
        a.wrapping_add(s.net_bytes.load(Ordering::Relaxed))
    }) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_thread_and_stay_readable() {
        let me = current_thread_slot();
        assert_eq!(me, current_thread_slot());
        let (other, n) = std::thread::spawn(|| (current_thread_slot(), slot_allocations(0)))
            .join()
            .expect("thread");
        let _ = n;
        assert_ne!(me, other);
        assert_eq!(slot_allocations(SLOTS + 5), 0);
    }
}
