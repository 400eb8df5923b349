//! A bounded single-producer single-consumer ring, one per ordered pair of cores.
//!
//! The producer is the reactor thread of the source core, the consumer the reactor thread of
//! the target core; nothing else touches a given queue (the engine guarantees it by
//! construction, [`Spsc::push`] and [`Spsc::pop`] state it as their safety contract). Head
//! and tail sit on their own cache lines and each side caches the other's index, so a push or
//! pop is one relaxed load, one write and one release store in the common case.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pads a value to a cache line (two, against adjacent-line prefetch).
#[repr(align(128))]
struct Padded<T>(T);

/// Bounded SPSC queue.
pub(crate) struct Spsc<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next slot to read (written by the consumer).
    head: Padded<AtomicUsize>,
    /// Consumer's cached copy of `tail`.
    tail_cache: Padded<Cell<usize>>,
    /// Next slot to write (written by the producer).
    tail: Padded<AtomicUsize>,
    /// Producer's cached copy of `head`.
    head_cache: Padded<Cell<usize>>,
}

// SAFETY: values move from the producer thread to the consumer thread (T: Send); each slot is
// accessed by exactly one side at a time, handed over with release/acquire on head/tail; the
// `Cell` caches are each touched by one side only (the push/pop contracts).
unsafe impl<T: Send> Send for Spsc<T> {}
// SAFETY: as above; shared references are used by exactly one producer and one consumer.
unsafe impl<T: Send> Sync for Spsc<T> {}

impl<T> Spsc<T> {
    /// A queue holding up to `capacity` (rounded up to a power of two) items.
    pub(crate) fn new(capacity: usize) -> Self {
        let cap = capacity.max(2).next_power_of_two();
        let slots = (0..cap)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        Self {
            slots,
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail_cache: Padded(Cell::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            head_cache: Padded(Cell::new(0)),
        }
    }

    /// Appends `v`, or gives it back when the queue is full.
    ///
    /// # Safety
    /// Only one thread (the producer) may ever call `push` on a given queue.
    pub(crate) unsafe fn push(&self, v: T) -> Result<(), T> {
        let tail = self.tail.0.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.head_cache.0.get()) > self.mask {
            self.head_cache.0.set(self.head.0.load(Ordering::Acquire));
            if tail.wrapping_sub(self.head_cache.0.get()) > self.mask {
                return Err(v);
            }
        }
        // SAFETY: the slot at `tail` is free (the consumer's head is past it, checked above)
        // and only the producer writes slots; the release store below publishes it.
        unsafe { (*self.slots[tail & self.mask].get()).write(v) };
        self.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Removes the oldest item.
    ///
    /// # Safety
    /// Only one thread (the consumer) may ever call `pop` on a given queue.
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let head = self.head.0.load(Ordering::Relaxed);
        if head == self.tail_cache.0.get() {
            self.tail_cache.0.set(self.tail.0.load(Ordering::Acquire));
            if head == self.tail_cache.0.get() {
                return None;
            }
        }
        // SAFETY: `head != tail` so the producer initialised this slot and published it with
        // its release store (acquired above); we move the value out exactly once and then
        // hand the slot back with the release store below.
        let v = unsafe { (*self.slots[head & self.mask].get()).assume_init_read() };
        self.head.0.store(head.wrapping_add(1), Ordering::Release);
        Some(v)
    }

    /// Whether the queue looks empty (any thread; a hint for the sleep check).
    pub(crate) fn is_empty_hint(&self) -> bool {
        self.head.0.load(Ordering::Acquire) == self.tail.0.load(Ordering::Acquire)
    }
}

impl<T> Drop for Spsc<T> {
    fn drop(&mut self) {
        let tail = *self.tail.0.get_mut();
        let mut head = *self.head.0.get_mut();
        while head != tail {
            // SAFETY: slots in head..tail are initialised and no other thread exists any more
            // (we have `&mut self`).
            unsafe { self.slots[head & self.mask].get_mut().assume_init_drop() };
            head = head.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_across_threads_and_full() {
        let q = Arc::new(Spsc::new(8));
        // SAFETY: this thread is the only producer until the spawn below, and the only
        // consumer of these pops.
        unsafe {
            for i in 0..8 {
                q.push(i).unwrap();
            }
            assert_eq!(q.push(99), Err(99));
            for i in 0..8 {
                assert_eq!(q.pop(), Some(i));
            }
            assert_eq!(q.pop(), None);
        }
        let p = Arc::clone(&q);
        let t = std::thread::spawn(move || {
            for i in 0..20_000u64 {
                let mut v = i;
                // SAFETY: this thread is the only producer now.
                while let Err(back) = unsafe { p.push(v) } {
                    v = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < 20_000u64 {
            // SAFETY: the test thread is the only consumer.
            if let Some(v) = unsafe { q.pop() } {
                assert_eq!(v, next);
                next += 1;
            } else {
                std::thread::yield_now();
            }
        }
        t.join().unwrap();
        // Leftover items are dropped with the queue.
        let q2 = Spsc::new(4);
        // SAFETY: single thread.
        unsafe { q2.push(String::from("x")).unwrap() };
    }
}
