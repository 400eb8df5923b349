//! A process-wide, lock-free pool of page-aligned buffers for large received data segments.
//!
//! Why: every large data segment needs a fresh page-aligned buffer. From the allocator that
//! costs a memset of the whole buffer (a zeroed allocation out of recycled heap memory) or a
//! page fault per page (fresh memory): on loopback at 4 MiB per message, 10 % of the
//! receiving core, as much as the kernel's own copy into the buffer. Buffers come back here
//! when the last [`crate::Data`] handle on them drops, on whatever thread that is, and the
//! next segment of the same size class reuses one as it is: its old bytes are overwritten by
//! the segment before anyone sees them.
//!
//! Buffers are pooled by power-of-two page counts from [`MIN_PAGES`] (64 KiB) to
//! [`MAX_PAGES`] (16 MiB); each class keeps at most [`CLASS_BYTES`] (and at least two
//! buffers), so the pool holds at most about 150 MiB however the sizes mix. Each class is a
//! bounded lock-free queue: no lock on the data path.

use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// Smallest pooled buffer, in pages (64 KiB); smaller segments come from the allocator.
pub const MIN_PAGES: usize = 16;
/// Largest pooled buffer, in pages (16 MiB); larger segments come from the allocator.
pub const MAX_PAGES: usize = 4096;
/// Bytes each size class may keep.
pub const CLASS_BYTES: usize = 16 << 20;

const MIN_SHIFT: u32 = MIN_PAGES.trailing_zeros();
const MAX_SHIFT: u32 = MAX_PAGES.trailing_zeros();
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

/// One queue per size class.
struct Pool<T> {
    classes: Vec<ArrayQueue<Vec<T>>>,
}

impl<T> Pool<T> {
    fn new(page: usize) -> Self {
        let classes = (0..CLASSES)
            .map(|i| {
                let bytes = (MIN_PAGES << i) * page;
                ArrayQueue::new((CLASS_BYTES / bytes).max(2))
            })
            .collect();
        Self { classes }
    }
}

/// The size class of a buffer of `pages` pages: `Some((class, class_pages))` for pooled sizes.
fn class_of(pages: usize) -> Option<(usize, usize)> {
    if !(MIN_PAGES..=MAX_PAGES).contains(&pages) {
        return None;
    }
    let rounded = pages.next_power_of_two();
    Some(((rounded.trailing_zeros() - MIN_SHIFT) as usize, rounded))
}

/// A pool of `Vec<T>` buffers where `T` is one page; `make(n)` allocates a new buffer of `n`
/// pages when the pool has none.
pub(crate) struct PagePool<T: 'static> {
    pool: OnceLock<Pool<T>>,
    page: usize,
}

impl<T: 'static> PagePool<T> {
    /// An empty pool for pages of `page` bytes (allocated on first use).
    pub(crate) const fn new(page: usize) -> Self {
        Self {
            pool: OnceLock::new(),
            page,
        }
    }

    fn get(&self) -> &Pool<T> {
        self.pool.get_or_init(|| Pool::new(self.page))
    }

    /// A buffer of at least `pages` pages: a pooled one if its class has one (its bytes are
    /// stale), else `make(class pages)`. Sizes outside the pooled range get exactly `pages`.
    pub(crate) fn take(&self, pages: usize, make: impl FnOnce(usize) -> Vec<T>) -> Vec<T> {
        match class_of(pages) {
            Some((class, rounded)) => self.get().classes[class]
                .pop()
                .unwrap_or_else(|| make(rounded)),
            None => make(pages),
        }
    }

    /// Gives a buffer back; kept if its size is a class size and the class has room,
    /// otherwise freed.
    pub(crate) fn give(&self, buf: Vec<T>) {
        let n = buf.len();
        if let Some((class, rounded)) = class_of(n) {
            if rounded == n {
                // A full class drops the buffer (freed here).
                let _ = self.get().classes[class].push(buf);
            }
        }
    }

    /// Buffers currently pooled, per class (smallest first), for tests and counters.
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> Vec<usize> {
        self.get().classes.iter().map(ArrayQueue::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(15), None);
        assert_eq!(class_of(16), Some((0, 16)));
        assert_eq!(class_of(17), Some((1, 32)));
        assert_eq!(class_of(1024), Some((6, 1024)));
        assert_eq!(class_of(4096), Some((8, 4096)));
        assert_eq!(class_of(4097), None);
    }

    #[test]
    fn buffers_are_reused_and_bounded() {
        static P: PagePool<u8> = PagePool::new(4096);
        let a = P.take(1000, |n| vec![1u8; n]);
        assert_eq!(a.len(), 1024);
        let p = a.as_ptr();
        P.give(a);
        let b = P.take(1024, |n| vec![2u8; n]);
        assert_eq!(b.as_ptr(), p, "the pooled buffer comes back");
        assert_eq!(b[0], 1, "as it was: stale bytes, no memset");
        // a class keeps CLASS_BYTES: 4 MiB buffers -> 4 of them
        for _ in 0..10 {
            P.give(vec![0u8; 1024]);
        }
        assert_eq!(P.pooled()[6], 4);
        // odd sizes are not kept
        P.give(vec![0u8; 1000]);
        assert_eq!(P.pooled()[5], 0);
    }

    #[test]
    fn the_largest_class_is_pooled_too() {
        static P: PagePool<u8> = PagePool::new(4096);
        let a = P.take(MAX_PAGES, |n| vec![0u8; n]);
        assert_eq!(a.len(), MAX_PAGES);
        P.give(a);
        assert_eq!(P.pooled().len(), 9);
        assert_eq!(P.pooled()[8], 1);
        assert_eq!(P.take(MAX_PAGES + 1, |n| vec![0u8; n]).len(), MAX_PAGES + 1);
    }
}
