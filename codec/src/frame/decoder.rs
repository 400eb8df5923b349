//! Incremental crc-mode frame decoder.
//!
//! The decoder is a small state machine over the frame layout. At every point it knows the
//! next item it needs (preamble, a segment, crc0, epilogue) and exposes the unfilled part of
//! that item as a destination slice, so the caller can either copy bytes in ([`feed`]) or
//! receive straight into it ([`dest`] + [`advance`]): a 4 MiB data segment lands in the buffer
//! its [`SegmentAlloc`] returned (page-aligned, registered, ...) with no intermediate copy.
//! Segment buffers are allocated only after the preamble passed its crc and the [`Limits`].
//! Each segment's crc32c is computed as its bytes arrive (over every [`advance`]d run, while
//! they are still in cache), not in a second pass once the whole segment is in.
//!
//! [`feed`]: FrameDecoder::feed
//! [`dest`]: FrameDecoder::dest
//! [`advance`]: FrameDecoder::advance

use super::{
    FrameError, Limits, Preamble, Tag, EPILOGUE_REV0_LEN, EPILOGUE_REV1_LEN, LATE_FLAG_ABORTED,
    LATE_STATUS_ABORTED, LATE_STATUS_COMPLETE, MAX_SEGMENTS, PREAMBLE_LEN,
};
use crate::banner::Revision;
use crate::crc::{crc32c, SEGMENT_SEED};
use crate::incremental::Incremental;

/// Supplies the buffers segments are received into.
pub trait SegmentAlloc {
    /// A segment buffer; `Default` is the empty segment and must not allocate.
    type Buf: AsRef<[u8]> + AsMut<[u8]> + Default;
    /// Returns a buffer of exactly `len` bytes for segment `index` of a `tag` frame, aligned
    /// to at least `align` if the allocator honours alignment hints.
    fn alloc(&mut self, tag: Tag, index: usize, len: usize, align: usize) -> Self::Buf;
    /// Called once a segment's bytes matched the crc32c (segment seed) its frame carried, so
    /// a buffer type that can keep it (see [`crate::Data::segment_crc`]) does.
    fn verified(_buf: &mut Self::Buf, _crc: u32) {}
}

/// Plain `Vec<u8>` segments (alignment hints ignored).
#[derive(Debug, Default, Clone, Copy)]
pub struct VecAlloc;

impl SegmentAlloc for VecAlloc {
    type Buf = Vec<u8>;
    fn alloc(&mut self, _tag: Tag, _index: usize, len: usize, _align: usize) -> Vec<u8> {
        vec![0; len]
    }
}

/// A complete, verified frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<B> {
    /// The preamble it came with.
    pub preamble: Preamble,
    /// Segment contents; indices `>= num_segments` are empty.
    pub segments: [B; MAX_SEGMENTS],
}

impl<B: AsRef<[u8]>> Frame<B> {
    /// The frame's tag.
    pub fn tag(&self) -> Tag {
        self.preamble.tag
    }
    /// Segment `i` (empty if not present).
    pub fn segment(&self, i: usize) -> &[u8] {
        self.segments.get(i).map_or(&[], |b| b.as_ref())
    }
}

/// What kind of bytes the decoder wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WantKind {
    /// The 32-byte preamble.
    Preamble,
    /// Segment `index` of a `tag` frame, with the sender's alignment hint.
    Segment {
        /// Frame tag.
        tag: Tag,
        /// Segment index.
        index: usize,
        /// Alignment hint from the preamble.
        align: u16,
    },
    /// rev1: the 4-byte crc of segment 0.
    Crc0,
    /// The epilogue.
    Epilogue,
}

/// The decoder's next need: `len` more bytes of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Bytes still missing for the current item.
    pub len: usize,
    /// What they are.
    pub kind: WantKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Preamble,
    Segment(usize),
    Crc0,
    Epilogue,
}

/// What [`FrameDecoder::feed`] returns: bytes consumed and the frame that completed, if any.
pub type Fed<B> = (usize, Option<Frame<B>>);

/// Incremental decoder for crc-mode frames of one direction of one connection.
#[derive(Debug)]
pub struct FrameDecoder<A: SegmentAlloc = VecAlloc> {
    revision: Revision,
    limits: Limits,
    alloc: A,
    stage: Stage,
    /// Small items (preamble, crc0, epilogue) accumulate here.
    small: [u8; PREAMBLE_LEN],
    /// Bytes of the current item received so far.
    filled: usize,
    preamble: Option<Preamble>,
    segments: [A::Buf; MAX_SEGMENTS],
    /// Running crc32c (segment seed) of the bytes of each segment received so far.
    crcs: [u32; MAX_SEGMENTS],
    failed: Option<FrameError>,
    aborted: u64,
    /// The current segment's buffer is lent out ([`FrameDecoder::lend_segment`]).
    lent: bool,
}

impl FrameDecoder<VecAlloc> {
    /// A decoder with `Vec` segments.
    pub fn new(revision: Revision, limits: Limits) -> Self {
        Self::with_alloc(revision, limits, VecAlloc)
    }
}

impl<A: SegmentAlloc> FrameDecoder<A> {
    /// A decoder using `alloc` for segment buffers.
    pub fn with_alloc(revision: Revision, limits: Limits, alloc: A) -> Self {
        Self {
            revision,
            limits,
            alloc,
            stage: Stage::Preamble,
            small: [0; PREAMBLE_LEN],
            filled: 0,
            preamble: None,
            segments: Default::default(),
            crcs: [SEGMENT_SEED; MAX_SEGMENTS],
            failed: None,
            aborted: 0,
            lent: false,
        }
    }

    /// The framing revision in force.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Changes the revision; only meaningful between frames.
    pub fn set_revision(&mut self, revision: Revision) {
        self.revision = revision;
    }

    /// Whether the decoder sits exactly on a frame boundary.
    pub fn at_boundary(&self) -> bool {
        self.stage == Stage::Preamble && self.filled == 0
    }

    /// Number of aborted frames that were verified and dropped.
    pub fn aborted_frames(&self) -> u64 {
        self.aborted
    }

    /// Access to the allocator (e.g. to read its accounting).
    pub fn allocator(&mut self) -> &mut A {
        &mut self.alloc
    }

    fn item_len(&self) -> usize {
        match self.stage {
            Stage::Preamble => PREAMBLE_LEN,
            Stage::Crc0 => 4,
            Stage::Epilogue => match self.revision {
                Revision::Rev0 => EPILOGUE_REV0_LEN,
                Revision::Rev1 => EPILOGUE_REV1_LEN,
            },
            Stage::Segment(i) => self.segments[i].as_ref().len(),
        }
    }

    /// What the decoder needs next.
    pub fn want(&self) -> Want {
        let kind = match self.stage {
            Stage::Preamble => WantKind::Preamble,
            Stage::Crc0 => WantKind::Crc0,
            Stage::Epilogue => WantKind::Epilogue,
            Stage::Segment(index) => {
                let p = self.preamble.as_ref();
                WantKind::Segment {
                    tag: p.map_or(Tag::Message, |p| p.tag),
                    index,
                    align: p.map_or(0, |p| p.segments[index].align),
                }
            }
        };
        Want {
            len: self.item_len() - self.filled,
            kind,
        }
    }

    /// The unfilled part of the current item: write received bytes here, then call
    /// [`FrameDecoder::advance`] with how many were written.
    pub fn dest(&mut self) -> &mut [u8] {
        if self.lent {
            return &mut [];
        }
        let len = self.item_len();
        let filled = self.filled;
        match self.stage {
            Stage::Segment(i) => &mut self.segments[i].as_mut()[filled..],
            _ => &mut self.small[filled..len],
        }
    }

    /// Records that `n` bytes were written into [`FrameDecoder::dest`]. Returns a frame when
    /// one is complete and verified. Aborted frames are verified and dropped (counted in
    /// [`FrameDecoder::aborted_frames`]). After an error every call fails.
    pub fn advance(&mut self, n: usize) -> Result<Option<Frame<A::Buf>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(FrameError::Poisoned(Box::new(e.clone())));
        }
        if self.lent {
            return Ok(None);
        }
        let n = n.min(self.item_len() - self.filled);
        if let Stage::Segment(i) = self.stage {
            let run = &self.segments[i].as_ref()[self.filled..self.filled + n];
            self.crcs[i] = crc32c(self.crcs[i], run);
        }
        self.filled += n;
        if self.filled < self.item_len() {
            return Ok(None);
        }
        self.filled = 0;
        match self.step() {
            Ok(f) => Ok(f),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Receive-side zero copy: in the middle of a segment with at least `min` bytes still to
    /// come, lends that segment's buffer out together with the offset of the next byte, so
    /// the embedder can have the kernel write the rest straight into it. The buffer belongs to
    /// the embedder until [`FrameDecoder::return_segment`] (nothing the decoder holds can
    /// dangle meanwhile); while it is out, [`FrameDecoder::dest`] is empty and input is not
    /// consumed. `None` when not inside such a segment.
    pub fn lend_segment(&mut self, min: usize) -> Option<(A::Buf, usize)> {
        let left = self.segment_left();
        if left == 0 || left < min {
            return None;
        }
        let Stage::Segment(i) = self.stage else {
            return None;
        };
        self.lent = true;
        Some((std::mem::take(&mut self.segments[i]), self.filled))
    }

    /// Bytes of the current segment still to come, if [`FrameDecoder::lend_segment`] could
    /// lend it now; 0 otherwise.
    pub fn segment_left(&self) -> usize {
        match self.stage {
            Stage::Segment(_) if self.failed.is_none() && !self.lent => {
                self.item_len() - self.filled
            }
            _ => 0,
        }
    }

    /// Takes a lent segment buffer back with `n` more bytes written after the offset it was
    /// lent with, and continues as [`FrameDecoder::advance`] does.
    pub fn return_segment(
        &mut self,
        buf: A::Buf,
        n: usize,
    ) -> Result<Option<Frame<A::Buf>>, FrameError> {
        let Stage::Segment(i) = self.stage else {
            return Err(FrameError::NotLent);
        };
        if !self.lent {
            return Err(FrameError::NotLent);
        }
        self.segments[i] = buf;
        self.lent = false;
        self.advance(n)
    }

    /// Whether a segment buffer is lent out.
    pub fn is_lent(&self) -> bool {
        self.lent
    }

    /// Copies as much of `input` as the current frame needs, stopping right after a complete
    /// frame so the caller can act on it (e.g. switch to secure mode after AUTH_DONE) before
    /// the next frame is parsed. Returns the bytes consumed and the frame, if one completed.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed<A::Buf>, FrameError> {
        Incremental::feed(self, input)
    }

    /// Moves to the next stage after the current item is complete.
    fn step(&mut self) -> Result<Option<Frame<A::Buf>>, FrameError> {
        match self.stage {
            Stage::Preamble => {
                let mut b = [0u8; PREAMBLE_LEN];
                b.copy_from_slice(&self.small);
                let p = Preamble::decode(&b, &self.limits)?;
                self.crcs = [SEGMENT_SEED; MAX_SEGMENTS];
                for (i, d) in p.counted().iter().enumerate() {
                    self.segments[i] = if d.len == 0 {
                        A::Buf::default()
                    } else {
                        self.alloc
                            .alloc(p.tag, i, d.len as usize, usize::from(d.align))
                    };
                }
                self.preamble = Some(p);
                self.next_after(None)
            }
            Stage::Segment(i) => {
                if i == 0 && self.revision == Revision::Rev1 {
                    self.stage = Stage::Crc0;
                    return Ok(None);
                }
                self.next_after(Some(i))
            }
            Stage::Crc0 => {
                let wire = u32::from_le_bytes([
                    self.small[0],
                    self.small[1],
                    self.small[2],
                    self.small[3],
                ]);
                self.check_crc(0, wire)?;
                self.next_after(Some(0))
            }
            Stage::Epilogue => self.finish_epilogue(),
        }
    }

    /// Chooses the stage after segment `done` (or after the preamble when `None`).
    fn next_after(&mut self, done: Option<usize>) -> Result<Option<Frame<A::Buf>>, FrameError> {
        let p = self.preamble.ok_or(FrameError::BadSegmentCount(0))?;
        let n = usize::from(p.num_segments);
        let from = done.map_or(0, |i| i + 1);
        if let Some(i) = (from..n).find(|&i| p.segments[i].len > 0) {
            self.stage = Stage::Segment(i);
            return Ok(None);
        }
        let needs_epilogue = match self.revision {
            Revision::Rev0 => true,
            Revision::Rev1 => n > 1,
        };
        if needs_epilogue {
            self.stage = Stage::Epilogue;
            return Ok(None);
        }
        Ok(Some(self.take_frame(p)))
    }

    fn check_crc(&mut self, index: usize, wire: u32) -> Result<(), FrameError> {
        let computed = self.crcs[index];
        if wire != computed {
            return Err(FrameError::SegmentCrc {
                index,
                wire,
                computed,
            });
        }
        A::verified(&mut self.segments[index], computed);
        Ok(())
    }

    fn finish_epilogue(&mut self) -> Result<Option<Frame<A::Buf>>, FrameError> {
        let p = self.preamble.ok_or(FrameError::BadSegmentCount(0))?;
        let n = usize::from(p.num_segments);
        let e = self.small;
        let word = |at: usize| u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
        let aborted = match self.revision {
            Revision::Rev1 => {
                for i in 1..n {
                    self.check_crc(i, word(1 + (i - 1) * 4))?;
                }
                match e[0] & 0x0F {
                    LATE_STATUS_COMPLETE => false,
                    LATE_STATUS_ABORTED => true,
                    _ => return Err(FrameError::BadLateStatus(e[0])),
                }
            }
            Revision::Rev0 => {
                for i in 0..n {
                    self.check_crc(i, word(1 + i * 4))?;
                }
                if e[0] & !LATE_FLAG_ABORTED != 0 {
                    return Err(FrameError::BadLateFlags(e[0]));
                }
                e[0] & LATE_FLAG_ABORTED != 0
            }
        };
        let frame = self.take_frame(p);
        if aborted {
            self.aborted += 1;
            return Ok(None);
        }
        Ok(Some(frame))
    }

    fn take_frame(&mut self, preamble: Preamble) -> Frame<A::Buf> {
        self.stage = Stage::Preamble;
        self.preamble = None;
        Frame {
            preamble,
            segments: std::mem::take(&mut self.segments),
        }
    }
}

impl<A: SegmentAlloc> Incremental for FrameDecoder<A> {
    type Item = Frame<A::Buf>;
    type Error = FrameError;
    fn dest(&mut self) -> &mut [u8] {
        FrameDecoder::dest(self)
    }
    fn advance(&mut self, n: usize) -> Result<Option<Frame<A::Buf>>, FrameError> {
        FrameDecoder::advance(self, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::assemble;

    fn frame(rev: Revision, seg: &[u8]) -> Vec<u8> {
        let mut w = Vec::new();
        assemble(rev, Tag::Message, &[(seg, 8), (b"xy", 8)], &mut w);
        w
    }

    /// Boundaries, revision switches and the aborted count seen from outside.
    #[test]
    fn boundary_revision_and_counters() {
        let mut d = FrameDecoder::new(Revision::Rev1, Limits::default());
        assert!(d.at_boundary());
        assert_eq!(d.aborted_frames(), 0);
        let w = frame(Revision::Rev1, &[7; 100]);
        assert_eq!(d.feed(&w[..5]).unwrap(), (5, None));
        assert!(!d.at_boundary(), "inside the preamble");
        assert_eq!(
            d.feed(&w[5..PREAMBLE_LEN]).unwrap(),
            (PREAMBLE_LEN - 5, None)
        );
        assert!(!d.at_boundary(), "between the preamble and segment 0");
        let (n, f) = d.feed(&w[PREAMBLE_LEN..]).unwrap();
        assert_eq!(
            (n, f.map(|f| f.segments[0].clone())),
            (w.len() - PREAMBLE_LEN, Some(vec![7; 100]))
        );
        assert!(d.at_boundary());
        // After switching, rev0 frames (no crc0, a 17-byte epilogue) decode.
        d.set_revision(Revision::Rev0);
        assert_eq!(d.revision(), Revision::Rev0);
        let w = frame(Revision::Rev0, &[8; 50]);
        let (n, f) = d.feed(&w).unwrap();
        assert_eq!(
            (n, f.map(|f| f.segments[1].clone())),
            (w.len(), Some(b"xy".to_vec()))
        );
    }

    /// A caller reporting more bytes than `dest` held is clamped to the current item.
    #[test]
    fn advance_is_clamped_to_the_current_item() {
        let mut d = FrameDecoder::new(Revision::Rev1, Limits::default());
        let w = frame(Revision::Rev1, &[9; 100]);
        let mut at = 0;
        let mut got = None;
        while got.is_none() && at < w.len() {
            let dest = d.dest();
            let n = dest.len().min(7).min(w.len() - at);
            dest[..n].copy_from_slice(&w[at..at + n]);
            at += n;
            // The first write of each item is reported exactly, the rest over-reported.
            got = d.advance(if n == 7 { n } else { n + 1000 }).unwrap();
        }
        assert_eq!(got.map(|f| f.segments[0].clone()), Some(vec![9; 100]));
        assert_eq!(at, w.len());
    }

    /// Lending: only inside a segment with at least `min` (and at least one) bytes to come,
    /// once at a time; the decoder reports how much is left and whether a buffer is out.
    #[test]
    fn lending_bounds_and_state() {
        let mut d = FrameDecoder::new(Revision::Rev1, Limits::default());
        let w = frame(Revision::Rev1, &[5; 100]);
        assert_eq!(d.segment_left(), 0, "in the preamble");
        assert!(d.lend_segment(0).is_none());
        d.feed(&w[..PREAMBLE_LEN + 40]).unwrap();
        assert_eq!(d.segment_left(), 60);
        assert!(!d.is_lent());
        assert!(d.lend_segment(61).is_none());
        let (buf, off) = d.lend_segment(60).unwrap();
        assert_eq!((buf.len(), off), (100, 40));
        assert!(d.is_lent());
        assert_eq!(d.segment_left(), 0, "nothing more to lend while lent");
        assert!(d.lend_segment(1).is_none());
        let mut buf = buf;
        buf[40..].copy_from_slice(&w[PREAMBLE_LEN + 40..PREAMBLE_LEN + 100]);
        assert_eq!(
            d.return_segment(buf, 60)
                .unwrap()
                .map(|f| f.segments[0].clone()),
            None
        );
        assert!(!d.is_lent());
        assert_eq!(
            d.return_segment(Vec::new(), 0).unwrap_err(),
            FrameError::NotLent
        );
        // Segment 0 is done (crc0 next): nothing to lend at its end.
        assert_eq!(d.segment_left(), 0);
        assert!(d.lend_segment(0).is_none());
        let (_, f) = d.feed(&w[PREAMBLE_LEN + 100..]).unwrap();
        assert_eq!(f.map(|f| f.segments[0].clone()), Some(vec![5; 100]));
    }
}
