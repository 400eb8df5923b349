//! The per-core buffer arena: one anonymous mapping, registered once with the core's ring
//! (`IORING_REGISTER_BUFFERS`), carved into slab size classes.
//!
//! Each class is a contiguous run of equal, 4096-aligned slots and is registered as one
//! iovec, so a buffer's registered index is its class index. Buffers are handed out as
//! reference-counted [`ArenaBuf`] handles (single-core `Rc`: a buffer never leaves its core);
//! dropping the last handle returns the slot to its class's free list. The receive class
//! backs the provided-buffer ring instead of being handed out.
//!
//! Accounting: `in_use` counts the bytes of slots currently lent out (handles alive, ring
//! buffers between a completion and their recycling). After a clean shutdown it is zero; the
//! reactor checks that and reports a leak otherwise.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Page (and slot) alignment.
pub(crate) const PAGE: usize = 4096;

/// One size class: `count` slots of `size` bytes starting `offset` bytes into the mapping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassSpec {
    pub size: usize,
    pub count: usize,
}

struct Class {
    size: usize,
    offset: usize,
    count: usize,
    free: Vec<u32>,
}

struct Pool {
    base: NonNull<u8>,
    len: usize,
    classes: Vec<Class>,
    in_use: Arc<AtomicU64>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` is the mapping created in `Arena::new`; every handle keeps the
        // pool alive, so no reference into it remains, and the ring that registered it was
        // dropped first (the reactor drops the ring before the arena).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A per-core arena.
pub(crate) struct Arena {
    pool: Rc<RefCell<Pool>>,
    /// Whether the kernel has it registered (fixed-buffer ops allowed).
    pub registered: bool,
}

/// Which class backs the provided-buffer ring (always the first).
pub(crate) const RX_CLASS: usize = 0;

impl Arena {
    /// Maps an arena with `classes` (class 0 is the receive class). Memory is not yet
    /// registered; see [`Arena::iovecs`].
    pub(crate) fn new(classes: &[ClassSpec], in_use: Arc<AtomicU64>) -> std::io::Result<Self> {
        let mut specs = Vec::new();
        let mut offset = 0usize;
        for c in classes {
            let size = c.size.div_ceil(PAGE) * PAGE;
            specs.push(Class {
                size,
                offset,
                count: c.count,
                free: (0..c.count as u32).rev().collect(),
            });
            offset += size * c.count;
        }
        let len = offset.max(PAGE);
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `p` is our mapping; the hint only affects how the kernel backs it.
        unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self {
            pool: Rc::new(RefCell::new(Pool {
                base,
                len,
                classes: specs,
                in_use,
            })),
            registered: false,
        })
    }

    /// Total mapped bytes (what registration pins).
    pub(crate) fn len(&self) -> usize {
        self.pool.borrow().len
    }

    /// One iovec per class, for `register_buffers` (index = class).
    pub(crate) fn iovecs(&self) -> Vec<libc::iovec> {
        let p = self.pool.borrow();
        p.classes
            .iter()
            .map(|c| libc::iovec {
                // SAFETY: the offset is inside the mapping (computed from the class sizes).
                iov_base: unsafe { p.base.as_ptr().add(c.offset) }.cast(),
                iov_len: (c.size * c.count).max(1),
            })
            .collect()
    }

    /// Base pointer and slot size of the receive class (for the provided-buffer ring), and
    /// its slot count.
    pub(crate) fn rx_region(&self) -> (*mut u8, usize, usize) {
        let p = self.pool.borrow();
        let c = &p.classes[RX_CLASS];
        // SAFETY: the offset is inside the mapping.
        (unsafe { p.base.as_ptr().add(c.offset) }, c.size, c.count)
    }

    /// A buffer of at least `len` bytes from the smallest class that fits (class 0 excluded),
    /// or `None` when the fitting classes are exhausted.
    pub(crate) fn alloc(&self, len: usize) -> Option<ArenaBuf> {
        let mut p = self.pool.borrow_mut();
        let base = p.base;
        let (class, idx, size, offset) = p
            .classes
            .iter_mut()
            .enumerate()
            .skip(1)
            .filter(|(_, c)| c.size >= len)
            .find_map(|(i, c)| c.free.pop().map(|idx| (i, idx, c.size, c.offset)))?;
        p.in_use.fetch_add(size as u64, Ordering::Relaxed);
        // SAFETY: slot `idx` of `class` lies inside the mapping.
        let ptr = unsafe { base.as_ptr().add(offset + idx as usize * size) };
        Some(ArenaBuf {
            inner: Rc::new(BufInner {
                pool: Rc::clone(&self.pool),
                ptr,
                cap: size,
                class: class as u16,
                idx,
            }),
            len: 0,
        })
    }
}

struct BufInner {
    pool: Rc<RefCell<Pool>>,
    ptr: *mut u8,
    cap: usize,
    class: u16,
    idx: u32,
}

impl Drop for BufInner {
    fn drop(&mut self) {
        let mut p = self.pool.borrow_mut();
        p.in_use.fetch_sub(self.cap as u64, Ordering::Relaxed);
        if let Some(c) = p.classes.get_mut(self.class as usize) {
            c.free.push(self.idx);
        }
    }
}

/// A reference-counted handle to one arena slot (4096-aligned), with a fill length.
///
/// Clones share the slot; the slot returns to its class when the last clone drops. Handles
/// are core-local (`!Send`).
#[derive(Clone)]
pub(crate) struct ArenaBuf {
    inner: Rc<BufInner>,
    len: usize,
}

impl ArenaBuf {
    /// Capacity (the slot size).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// Registered buffer index (the class).
    pub(crate) fn buf_index(&self) -> u16 {
        self.inner.class
    }

    /// The filled bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is inside our slot, initialised by `extend` (the mapping
        // starts zeroed), and the slot is not lent to anyone else while a handle lives.
        unsafe { std::slice::from_raw_parts(self.inner.ptr, self.len) }
    }

    /// Appends bytes; returns how many fitted.
    pub(crate) fn extend(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.inner.cap - self.len);
        // SAFETY: the destination range is inside our slot. Writes through a shared slot are
        // only made before the buffer is handed to the kernel (the engine fills a staging
        // buffer, then submits it and never writes it again).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.inner.ptr.add(self.len), n);
        }
        self.len += n;
        n
    }

    /// Room left.
    pub(crate) fn remaining(&self) -> usize {
        self.inner.cap - self.len
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classes_alignment_and_accounting() {
        let in_use = Arc::new(AtomicU64::new(0));
        let a = Arena::new(
            &[
                ClassSpec {
                    size: 8192,
                    count: 2,
                },
                ClassSpec {
                    size: 4096,
                    count: 2,
                },
                ClassSpec {
                    size: 65536,
                    count: 1,
                },
            ],
            Arc::clone(&in_use),
        )
        .unwrap();
        assert_eq!(a.iovecs().len(), 3);
        let mut b = a.alloc(100).unwrap();
        assert_eq!(b.capacity(), 4096);
        assert_eq!(b.as_slice().as_ptr() as usize % PAGE, 0);
        assert_eq!(b.extend(&[7; 5000]), 4096);
        let c = a.alloc(5000).unwrap();
        assert_eq!(c.buf_index(), 2);
        assert!(a.alloc(5000).is_none());
        let b2 = b.clone();
        drop(b);
        assert_eq!(in_use.load(Ordering::Relaxed), 4096 + 65536);
        drop(b2);
        drop(c);
        assert_eq!(in_use.load(Ordering::Relaxed), 0);
        assert!(a.alloc(60000).is_some());
        assert_eq!(in_use.load(Ordering::Relaxed), 0);
    }
}
