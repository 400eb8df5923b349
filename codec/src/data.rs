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

use crate::frame::{SegmentAlloc, Tag};

/// The page size data segments are aligned to (Ceph's `CEPH_PAGE_SIZE` on x86-64).
pub const PAGE: usize = 4096;

/// One page of memory, page-aligned.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

#[derive(Clone)]
enum Repr {
    Vec(Arc<Vec<u8>>),
    Pages(Arc<Vec<Page>>, usize),
}

/// An immutable, cheaply cloneable byte buffer (see the module docs).
#[derive(Clone)]
pub struct Data(Repr);

impl Data {
    /// An empty buffer (allocates nothing).
    pub fn new() -> Self {
        Self(Repr::Vec(Arc::new(Vec::new())))
    }

    /// `len` zero bytes starting on a page boundary (the pages are mapped lazily by the
    /// allocator's zeroed allocation, so a large buffer costs no up-front memset).
    pub fn zeroed_aligned(len: usize) -> Self {
        let pages: Vec<Page> = bytemuck::allocation::zeroed_vec(len.div_ceil(PAGE));
        Self(Repr::Pages(Arc::new(pages), len))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Vec(v) => v,
            Repr::Pages(p, len) => &bytemuck::cast_slice::<Page, u8>(p)[..*len],
        }
    }

    /// Mutable bytes, copying first if another clone shares the buffer.
    pub fn make_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Repr::Vec(v) => Arc::make_mut(v).as_mut_slice(),
            Repr::Pages(p, len) => {
                &mut bytemuck::cast_slice_mut::<Page, u8>(Arc::make_mut(p).as_mut_slice())[..*len]
            }
        }
    }

    /// Whether the bytes start on a page boundary.
    pub fn is_page_aligned(&self) -> bool {
        (self.as_slice().as_ptr() as usize) % PAGE == 0
    }

    /// Whether other clones share this buffer.
    pub fn is_shared(&self) -> bool {
        match &self.0 {
            Repr::Vec(v) => Arc::strong_count(v) > 1,
            Repr::Pages(p, _) => Arc::strong_count(p) > 1,
        }
    }

    /// The bytes as a `Vec` (no copy when this is the only handle on a `Vec`-built buffer).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
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
        Self(Repr::Vec(Arc::new(v)))
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
    fn alloc(&mut self, _tag: Tag, _index: usize, len: usize, align: usize) -> Data {
        if align >= PAGE && len >= self.min_aligned {
            Data::zeroed_aligned(len)
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
}
