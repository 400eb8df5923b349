//! The provided-buffer ring (`IORING_REGISTER_PBUF_RING`) feeding multishot recv.
//!
//! The buffers are the arena's receive class; the kernel picks one per completion, so an idle
//! connection pins no memory. The reactor hands each buffer back (`recycle` + `commit`) as
//! soon as the protocol has consumed its bytes, which is within the same loop iteration.

use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The ring.
pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    mask: u16,
    tail: u16,
    base: *mut u8,
    buf_size: usize,
    count: u16,
    /// Buffer group id.
    pub bgid: u16,
}

impl BufRing {
    /// Registers a ring over `count` (a power of two, ≤ 32768) buffers of `buf_size` bytes at
    /// `base`, all initially available.
    ///
    /// # Safety
    /// `base..base + count * buf_size` must stay valid and unused by anything else until this
    /// ring is unregistered or `ring` is dropped.
    pub(crate) unsafe fn new(
        ring: &IoUring,
        base: *mut u8,
        buf_size: usize,
        count: u16,
        bgid: u16,
    ) -> std::io::Result<Self> {
        let map_len = (count as usize * std::mem::size_of::<BufRingEntry>()).max(4096);
        // SAFETY: a fresh private anonymous mapping (page aligned, as the kernel requires).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut me = Self {
            entries: p.cast(),
            map_len,
            mask: count - 1,
            tail: 0,
            base,
            buf_size,
            count,
            bgid,
        };
        // SAFETY: the entries mapping lives as long as `me` (unmapped in Drop, after the
        // reactor unregisters it or drops the ring).
        let r = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(p as u64, count, bgid, 0)
        };
        r?;
        for bid in 0..count {
            me.recycle(bid);
        }
        me.commit();
        Ok(me)
    }

    /// The bytes the kernel wrote into buffer `bid`.
    pub(crate) fn data(&self, bid: u16, len: usize) -> &[u8] {
        let bid = bid.min(self.count - 1) as usize;
        let len = len.min(self.buf_size);
        // SAFETY: buffer `bid` is inside the arena's receive region, the kernel completed a
        // recv of `len` bytes into it, and it is not back in the ring until `recycle`.
        unsafe { std::slice::from_raw_parts(self.base.add(bid * self.buf_size), len) }
    }

    /// Queues buffer `bid` for reuse (visible to the kernel after [`BufRing::commit`]).
    pub(crate) fn recycle(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: `idx < count` entries of the mapping; the kernel only reads entries between
        // its head and the published tail, and this one is past the published tail.
        let e = unsafe { &mut *self.entries.add(idx) };
        // SAFETY: the buffer address is inside the receive region.
        e.set_addr(unsafe { self.base.add(bid as usize * self.buf_size) } as u64);
        e.set_len(self.buf_size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes recycled buffers to the kernel.
    pub(crate) fn commit(&mut self) {
        // SAFETY: the tail field lives in the first entry of the mapping; the kernel reads it
        // concurrently, hence the atomic release store (entries written before it).
        unsafe {
            let t = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*t).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: our mapping; the reactor drops the ring (or unregisters the group) first.
        unsafe { libc::munmap(self.entries.cast(), self.map_len) };
    }
}
