//! [`Data`]: a message's data segment as an immutable, reference-counted byte buffer that is
//! page-aligned when it was received as a large data segment.
//!
//! Why: a storage daemon hands received data to `O_DIRECT` I/O or to a device that wants
//! 4096-aligned buffers, and a lossless session keeps every sent message until the peer
//! acknowledges it. With `Data`, a received data segment lands in 4096-aligned memory (see
//! [`DataAlloc`]) and clones share one buffer, so keeping a message for replay, or handing its
//! data to the socket as its own gather piece, copies nothing. Applications build one from a
//! `Vec<u8>` (no copy) and read it as `&[u8]` (`Deref`).
//!
//! Alignment without `unsafe`: the aligned form is a vector of 4096-byte pages whose type has
//! 4096-byte alignment; `bytemuck` views it as bytes.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::crc::{crc32c, SEGMENT_SEED};
use crate::frame::{SegmentAlloc, Tag};
use crate::pagepool::PagePool;

/// The page size data segments are aligned to (Ceph's `CEPH_PAGE_SIZE` on x86-64).
pub const PAGE: usize = 4096;

/// One page of memory, page-aligned.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// Page-aligned memory that goes back to [`PAGES`] when the last handle drops.
struct PageBuf(Vec<Page>);

impl Clone for PageBuf {
    fn clone(&self) -> Self {
        let mut pages = PAGES.take(self.0.len(), fresh_pages);
        pages[..self.0.len()].copy_from_slice(&self.0);
        Self(pages)
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        PAGES.give(std::mem::take(&mut self.0));
    }
}

/// Large received data segments' buffers, recycled (see [`crate::pagepool`]).
static PAGES: PagePool<Page> = PagePool::new(PAGE);

fn fresh_pages(n: usize) -> Vec<Page> {
    bytemuck::allocation::zeroed_vec(n)
}

#[derive(Clone)]
enum Repr {
    Vec(Arc<Vec<u8>>),
    Pages(Arc<PageBuf>, usize),
}

/// An immutable, cheaply cloneable byte buffer (see the module docs).
///
/// It may carry the crc32c of its bytes with msgr2's segment seed, known from the frame it
/// arrived in: sending the same data on (an OSD forwarding a client's write to its
/// replicas, a relay) then needs no second pass over it, as Ceph's bufferlist crc cache
/// does.
#[derive(Clone)]
pub struct Data {
    repr: Repr,
    /// crc32c of the bytes, seed [`SEGMENT_SEED`], when known.
    crc: Option<u32>,
}

impl Data {
    fn from_repr(repr: Repr) -> Self {
        Self { repr, crc: None }
    }

    /// The crc32c of the bytes with msgr2's segment seed (-1, no final xor), as a crc-mode
    /// frame carries it: the known value if this data arrived in a verified segment or was
    /// sent before, else computed now.
    pub fn segment_crc(&self) -> u32 {
        self.crc
            .unwrap_or_else(|| crc32c(SEGMENT_SEED, self.as_slice()))
    }

    /// The crc32c of the bytes with the segment seed, if already known (see
    /// [`Data::segment_crc`]).
    pub fn known_segment_crc(&self) -> Option<u32> {
        self.crc
    }

    /// [`Data::segment_crc`], remembered for the next time (a lossless session's replay,
    /// the same data sent to several peers).
    pub fn ensure_segment_crc(&mut self) -> u32 {
        let crc = self.segment_crc();
        self.crc = Some(crc);
        crc
    }

    /// Remembers `crc` as the segment crc of these bytes; only for values just computed or
    /// verified over exactly these bytes.
    pub(crate) fn remember_segment_crc(&mut self, crc: u32) {
        self.crc = Some(crc);
    }

    /// An empty buffer (allocates nothing).
    pub fn new() -> Self {
        Self::from_repr(Repr::Vec(Arc::new(Vec::new())))
    }

    /// `len` zero bytes starting on a page boundary (the pages are mapped lazily by the
    /// allocator's zeroed allocation, so a large buffer costs no up-front memset).
    pub fn zeroed_aligned(len: usize) -> Self {
        let pages = fresh_pages(len.div_ceil(PAGE));
        Self::from_repr(Repr::Pages(Arc::new(PageBuf(pages)), len))
    }

    /// `len` bytes starting on a page boundary, for a receiver to fill completely before
    /// anyone reads them: a recycled buffer (holding stale bytes of an earlier segment) when
    /// the pool has one of this size class, else a zeroed one. This is what [`DataAlloc`]
    /// gives a large data segment.
    pub fn for_overwrite_aligned(len: usize) -> Self {
        let pages = PAGES.take(len.div_ceil(PAGE), fresh_pages);
        Self::from_repr(Repr::Pages(Arc::new(PageBuf(pages)), len))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.repr {
            Repr::Vec(v) => v,
            Repr::Pages(p, len) => &bytemuck::cast_slice::<Page, u8>(&p.0)[..*len],
        }
    }

    /// Mutable bytes, copying first if another clone shares the buffer.
    pub fn make_mut(&mut self) -> &mut [u8] {
        self.crc = None;
        match &mut self.repr {
            Repr::Vec(v) => Arc::make_mut(v).as_mut_slice(),
            Repr::Pages(p, len) => {
                &mut bytemuck::cast_slice_mut::<Page, u8>(Arc::make_mut(p).0.as_mut_slice())[..*len]
            }
        }
    }

    /// Whether the bytes start on a page boundary.
    pub fn is_page_aligned(&self) -> bool {
        (self.as_slice().as_ptr() as usize) % PAGE == 0
    }

    /// Whether other clones share this buffer.
    pub fn is_shared(&self) -> bool {
        match &self.repr {
            Repr::Vec(v) => Arc::strong_count(v) > 1,
            Repr::Pages(p, _) => Arc::strong_count(p) > 1,
        }
    }

    /// The bytes as a `Vec` (no copy when this is the only handle on a `Vec`-built buffer).
    pub fn into_vec(self) -> Vec<u8> {
        match self.repr {
            Repr::Vec(v) => Arc::try_unwrap(v).unwrap_or_else(|v| v.as_ref().clone()),
            Repr::Pages(..) => self.as_slice().to_vec(),
        }
    }
}

impl Default for Data {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for Data {
    fn as_mut(&mut self) -> &mut [u8] {
        self.make_mut()
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Self {
        Self::from_repr(Repr::Vec(Arc::new(v)))
    }
}

impl From<&[u8]> for Data {
    fn from(v: &[u8]) -> Self {
        Self::from(v.to_vec())
    }
}

impl From<Data> for Vec<u8> {
    fn from(d: Data) -> Self {
        d.into_vec()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("len", &self.len())
            .field("page_aligned", &self.is_page_aligned())
            .finish()
    }
}

impl PartialEq for Data {
    fn eq(&self, o: &Self) -> bool {
        self.as_slice() == o.as_slice()
    }
}

impl Eq for Data {}

impl PartialEq<[u8]> for Data {
    fn eq(&self, o: &[u8]) -> bool {
        self.as_slice() == o
    }
}

impl PartialEq<Vec<u8>> for Data {
    fn eq(&self, o: &Vec<u8>) -> bool {
        self.as_slice() == o.as_slice()
    }
}

impl PartialEq<Data> for Vec<u8> {
    fn eq(&self, o: &Data) -> bool {
        self.as_slice() == o.as_slice()
    }
}

/// Segment buffers for [`crate::FrameDecoder`] (and the secure receiver) as [`Data`]: a
/// segment that asks for page alignment (the data segment of a MESSAGE frame) and is at least
/// `min_aligned` bytes lands in page-aligned memory; everything else in a plain `Vec`.
#[derive(Debug, Clone, Copy)]
pub struct DataAlloc {
    /// Smallest segment worth a page-aligned buffer.
    pub min_aligned: usize,
}

impl Default for DataAlloc {
    fn default() -> Self {
        Self { min_aligned: PAGE }
    }
}

impl SegmentAlloc for DataAlloc {
    type Buf = Data;
    fn verified(buf: &mut Data, crc: u32) {
        buf.remember_segment_crc(crc);
    }
    fn alloc(&mut self, _tag: Tag, _index: usize, len: usize, align: usize) -> Data {
        if align >= PAGE && len >= self.min_aligned {
            Data::for_overwrite_aligned(len)
        } else {
            Data::from(vec![0; len])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_shared_and_converted() {
        let mut d = Data::zeroed_aligned(10_000);
        assert_eq!(d.len(), 10_000);
        assert!(d.is_page_aligned());
        d.make_mut()[9_999] = 7;
        let c = d.clone();
        assert!(c.is_shared());
        assert_eq!(c[9_999], 7);
        assert_eq!(c.as_ptr(), d.as_ptr(), "clones share the buffer");
        let v = vec![1u8, 2, 3];
        let p = v.as_ptr();
        let d = Data::from(v);
        assert_eq!(d, vec![1, 2, 3]);
        let back = d.into_vec();
        assert_eq!(
            back.as_ptr(),
            p,
            "a sole Vec handle converts back without a copy"
        );
        assert_eq!(Data::new().len(), 0);
        let mut a = DataAlloc::default();
        assert!(a.alloc(Tag::Message, 3, 8192, PAGE).is_page_aligned());
        assert_eq!(a.alloc(Tag::Message, 1, 100, 8).len(), 100);
    }

    #[test]
    fn sharing_counts_other_handles_only() {
        for d in [Data::from(vec![1u8; 100]), Data::zeroed_aligned(100)] {
            assert!(!d.is_shared());
            let c = d.clone();
            assert!(d.is_shared() && c.is_shared());
            drop(c);
            assert!(!d.is_shared());
        }
        // Small heap buffers are not page-aligned (malloc aligns them to 16 bytes); of four,
        // at least one is not by chance.
        let small: Vec<Data> = (0..4).map(|i| Data::from(vec![i; 100])).collect();
        assert!(small.iter().any(|d| !d.is_page_aligned()));
    }

    #[test]
    fn alloc_aligns_only_large_segments_that_ask() {
        let mut a = DataAlloc::default();
        let pages = |d: &Data| matches!(d.repr, Repr::Pages(..));
        assert!(pages(&a.alloc(Tag::Message, 3, PAGE, PAGE)));
        assert!(!pages(&a.alloc(Tag::Message, 3, PAGE - 1, PAGE)));
        assert!(!pages(&a.alloc(Tag::Message, 1, 2 * PAGE, 8)));
    }

    #[test]
    fn conversions_and_recycled_pages() {
        let d = Data::from(&[4u8, 5][..]);
        assert_eq!(d.as_slice(), &[4, 5]);
        let shorter = Data::from(vec![4u8]);
        assert!(d != shorter);
        assert_eq!(Vec::from(d), vec![4, 5]);
        // A dropped page buffer goes back to the pool (8 MiB: a size no other test uses).
        let class = 7; // 2048 pages
        let a = Data::for_overwrite_aligned(8 << 20);
        let pooled = PAGES.pooled()[class];
        drop(a);
        assert_eq!(PAGES.pooled()[class], pooled + 1);
    }

    #[test]
    fn compares_by_bytes_with_slices_and_vecs() {
        let d = Data::from(vec![1u8, 2, 3]);
        let aligned = {
            let mut a = Data::zeroed_aligned(3);
            a.make_mut().copy_from_slice(&[1, 2, 3]);
            a
        };
        assert_eq!(d, aligned);
        assert!(d == *[1u8, 2, 3].as_slice());
        assert!(d != *[1u8, 2, 4].as_slice());
        assert!(d == vec![1u8, 2, 3]);
        assert!(d != vec![1u8, 2]);
        assert!(vec![1u8, 2, 3] == d);
        assert!(vec![3u8, 2, 1] != d);
    }

    #[test]
    fn segment_crc_is_remembered_and_forgotten_on_change() {
        let mut d = Data::from(b"hello".to_vec());
        let want = crc32c(SEGMENT_SEED, b"hello");
        assert_eq!(d.known_segment_crc(), None);
        assert_eq!(d.segment_crc(), want);
        assert_eq!(
            d.known_segment_crc(),
            None,
            "segment_crc alone remembers nothing"
        );
        assert_eq!(d.ensure_segment_crc(), want);
        assert_eq!(d.known_segment_crc(), Some(want));
        // A decoder's verified crc is trusted as is.
        <DataAlloc as SegmentAlloc>::verified(&mut d, 0x1234_5678);
        assert_eq!(d.known_segment_crc(), Some(0x1234_5678));
        assert_eq!(d.segment_crc(), 0x1234_5678);
        d.make_mut()[0] = b'j';
        assert_eq!(d.known_segment_crc(), None);
        assert_eq!(d.segment_crc(), crc32c(SEGMENT_SEED, b"jello"));
    }
}
