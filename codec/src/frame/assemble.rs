//! Building crc-mode frames.
//!
//! [`FrameParts`] holds everything a frame needs besides the segment bytes themselves
//! (preamble, first-segment crc, epilogue), so a sender can gather
//! `preamble ‖ seg0 ‖ crc0 ‖ seg1.. ‖ epilogue` into one `writev`/`sendmsg` without copying
//! the segments. [`assemble`] is the copying convenience.

use super::{
    Preamble, SegmentDesc, Tag, EPILOGUE_REV0_LEN, EPILOGUE_REV1_LEN, LATE_STATUS_COMPLETE,
    MAX_SEGMENTS, PREAMBLE_LEN,
};
use crate::banner::Revision;
use crate::crc::{crc32c, SEGMENT_SEED};

/// The non-segment bytes of one crc-mode frame.
#[derive(Debug, Clone)]
pub struct FrameParts {
    /// Revision the frame is laid out for.
    pub revision: Revision,
    /// The preamble that was encoded.
    pub preamble: Preamble,
    /// Preamble bytes.
    pub preamble_bytes: [u8; PREAMBLE_LEN],
    /// rev1: crc of segment 0, sent right after it when it is non-empty.
    pub crc0: [u8; 4],
    /// Epilogue bytes (the first [`FrameParts::epilogue_len`] are used).
    pub epilogue: [u8; EPILOGUE_REV0_LEN],
    /// 0, 13 (rev1 multi-segment) or 17 (rev0).
    pub epilogue_len: usize,
}

impl FrameParts {
    /// Computes preamble, crcs and epilogue for `segments` (bytes, alignment hint).
    ///
    /// Trailing empty segments are dropped from the count; crcs are Ceph's (seed -1).
    pub fn new(revision: Revision, tag: Tag, segments: &[(&[u8], u16)]) -> Self {
        Self::with_crcs(revision, tag, segments, &[])
    }

    /// [`FrameParts::new`] with segment crcs the caller already knows (`known[i]`, seed -1,
    /// e.g. from [`crate::Data::segment_crc`]); the others are computed.
    pub fn with_crcs(
        revision: Revision,
        tag: Tag,
        segments: &[(&[u8], u16)],
        known: &[Option<u32>],
    ) -> Self {
        assert!(
            segments.len() <= MAX_SEGMENTS,
            "a frame has at most 4 segments"
        );
        let mut descs = [SegmentDesc::default(); MAX_SEGMENTS];
        for (d, (b, align)) in descs.iter_mut().zip(segments) {
            d.len = crate::encoding::len_u32(b.len());
            d.align = *align;
        }
        let preamble = Preamble::new(tag, &descs[..segments.len()]);
        let n = usize::from(preamble.num_segments);
        let crc = |i: usize| match known.get(i).copied().flatten() {
            Some(c) => c,
            None => segments
                .get(i)
                .map_or(SEGMENT_SEED, |s| crc32c(SEGMENT_SEED, s.0)),
        };
        let mut epilogue = [0u8; EPILOGUE_REV0_LEN];
        let mut crc0 = [0u8; 4];
        let epilogue_len = match revision {
            Revision::Rev1 => {
                crc0 = crc(0).to_le_bytes();
                if n > 1 {
                    epilogue[0] = LATE_STATUS_COMPLETE;
                    for i in 1..n {
                        epilogue[1 + (i - 1) * 4..1 + i * 4].copy_from_slice(&crc(i).to_le_bytes());
                    }
                    EPILOGUE_REV1_LEN
                } else {
                    0
                }
            }
            Revision::Rev0 => {
                for i in 0..n {
                    epilogue[1 + i * 4..5 + i * 4].copy_from_slice(&crc(i).to_le_bytes());
                }
                EPILOGUE_REV0_LEN
            }
        };
        Self {
            revision,
            preamble,
            preamble_bytes: preamble.encode(),
            crc0,
            epilogue,
            epilogue_len,
        }
    }

    /// The same parts with preamble byte 26 (`flags`) set, e.g. to
    /// [`crate::compress::FLAG_COMPRESSED`].
    pub fn with_flags(mut self, flags: u8) -> Self {
        self.preamble.flags = flags;
        self.preamble_bytes = self.preamble.encode();
        self
    }

    /// Whether rev1's crc0 follows segment 0.
    pub fn has_crc0(&self) -> bool {
        self.revision == Revision::Rev1 && self.preamble.segments[0].len > 0
    }

    /// The wire pieces in order, segments borrowed from `segments` (which must be the ones
    /// passed to [`FrameParts::new`]).
    pub fn pieces<'a>(&'a self, segments: &[&'a [u8]]) -> Vec<&'a [u8]> {
        let n = usize::from(self.preamble.num_segments);
        let mut v: Vec<&'a [u8]> = Vec::with_capacity(n + 3);
        v.push(&self.preamble_bytes);
        for (i, s) in segments.iter().take(n).enumerate() {
            if !s.is_empty() {
                v.push(s);
            }
            if i == 0 && self.has_crc0() {
                v.push(&self.crc0);
            }
        }
        if self.epilogue_len > 0 {
            v.push(&self.epilogue[..self.epilogue_len]);
        }
        v
    }

    /// Total bytes on the wire.
    pub fn wire_len(&self) -> usize {
        let seg: u64 = self.preamble.total_len();
        PREAMBLE_LEN + seg as usize + if self.has_crc0() { 4 } else { 0 } + self.epilogue_len
    }
}

/// Appends one complete crc-mode frame to `out`.
pub fn assemble(revision: Revision, tag: Tag, segments: &[(&[u8], u16)], out: &mut Vec<u8>) {
    let parts = FrameParts::new(revision, tag, segments);
    let segs: Vec<&[u8]> = segments.iter().map(|s| s.0).collect();
    out.reserve(parts.wire_len());
    for p in parts.pieces(&segs) {
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wire_len` and `pieces` describe exactly the bytes `assemble` writes, for both
    /// revisions, one to four segments and empty ones among them; pieces are never empty.
    #[test]
    fn wire_len_and_pieces_match_the_assembled_frame() {
        let (a, b, c) = ([1u8; 10], [2u8; 3], [3u8; 700]);
        let layouts: [&[(&[u8], u16)]; 5] = [
            &[(&a, 8)],
            &[(&[], 8)],
            &[(&a, 8), (&b, 8)],
            &[(&[], 8), (&b, 8), (&[], 8), (&c, 4096)],
            &[(&a, 8), (&b, 8), (&c, 8), (&a, 4096)],
        ];
        for rev in [Revision::Rev0, Revision::Rev1] {
            for segs in layouts {
                let mut wire = Vec::new();
                assemble(rev, Tag::Message, segs, &mut wire);
                let parts = FrameParts::new(rev, Tag::Message, segs);
                let borrowed: Vec<&[u8]> = segs.iter().map(|s| s.0).collect();
                let pieces = parts.pieces(&borrowed);
                assert_eq!(parts.wire_len(), wire.len(), "{rev:?} {}", segs.len());
                assert!(pieces.iter().all(|p| !p.is_empty()));
                assert_eq!(pieces.concat(), wire);
            }
        }
    }
}
