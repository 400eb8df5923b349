//! The 32-byte preamble block common to every mode and revision.

use super::{FrameError, Limits, Tag, MAX_SEGMENTS, PREAMBLE_LEN};
use crate::crc::{crc32c, PREAMBLE_SEED};

/// One segment descriptor: logical (unpadded) length and the receiver's alignment hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentDesc {
    /// Length in bytes.
    pub len: u32,
    /// Alignment hint (8 for control/header/front/middle, 4096 for message data).
    pub align: u16,
}

/// A decoded or to-be-sent preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// Frame tag.
    pub tag: Tag,
    /// Number of segments on the wire (trailing empty segments are not counted; at least 1).
    pub num_segments: u8,
    /// Descriptors; those at indices `>= num_segments` are zero.
    pub segments: [SegmentDesc; MAX_SEGMENTS],
    /// Byte 26: reserved in Pacific (`flags` in Quincy+, bit 0 = compressed).
    pub flags: u8,
}

impl Preamble {
    /// Builds the preamble for `segments` (length, alignment), dropping trailing empty
    /// segments as Ceph's `calc_num_segments` does. Panics if more than 4 are given: the
    /// caller controls that number.
    pub fn new(tag: Tag, segments: &[SegmentDesc]) -> Self {
        assert!(
            segments.len() <= MAX_SEGMENTS,
            "a frame has at most 4 segments"
        );
        let n = segments
            .iter()
            .rposition(|s| s.len > 0)
            .map_or(1, |i| i + 1);
        let mut descs = [SegmentDesc::default(); MAX_SEGMENTS];
        let k = n.min(segments.len());
        descs[..k].copy_from_slice(&segments[..k]);
        if segments.is_empty() {
            descs[0].align = super::ALIGN_DEFAULT;
        }
        Self {
            tag,
            num_segments: n as u8,
            segments: descs,
            flags: 0,
        }
    }

    /// The counted segment descriptors.
    pub fn counted(&self) -> &[SegmentDesc] {
        &self.segments[..usize::from(self.num_segments)]
    }

    /// Sum of the counted segment lengths.
    pub fn total_len(&self) -> u64 {
        self.counted().iter().map(|s| u64::from(s.len)).sum()
    }

    /// The wire form, crc included.
    pub fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut b = [0u8; PREAMBLE_LEN];
        b[0] = self.tag as u8;
        b[1] = self.num_segments;
        for (i, s) in self.segments.iter().enumerate() {
            let at = 2 + i * 6;
            b[at..at + 4].copy_from_slice(&s.len.to_le_bytes());
            b[at + 4..at + 6].copy_from_slice(&s.align.to_le_bytes());
        }
        b[26] = self.flags;
        let crc = crc32c(PREAMBLE_SEED, &b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a preamble: crc, segment count, empty last segment, tag, and
    /// lengths against `limits`. Nothing is allocated here, whatever the lengths claim.
    pub fn decode(b: &[u8; PREAMBLE_LEN], limits: &Limits) -> Result<Self, FrameError> {
        let wire = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
        let computed = crc32c(PREAMBLE_SEED, &b[..28]);
        if wire != computed {
            return Err(FrameError::PreambleCrc { wire, computed });
        }
        let n = b[1];
        if n == 0 || usize::from(n) > MAX_SEGMENTS {
            return Err(FrameError::BadSegmentCount(n));
        }
        let mut segments = [SegmentDesc::default(); MAX_SEGMENTS];
        for (i, s) in segments.iter_mut().enumerate() {
            let at = 2 + i * 6;
            s.len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            s.align = u16::from_le_bytes([b[at + 4], b[at + 5]]);
        }
        let last = usize::from(n) - 1;
        if n > 1 && segments[last].len == 0 {
            return Err(FrameError::EmptyLastSegment { index: last });
        }
        let tag = Tag::from_u8(b[0]).ok_or(FrameError::UnknownTag(b[0]))?;
        let p = Self {
            tag,
            num_segments: n,
            segments,
            flags: b[26],
        };
        p.check_limits(limits)?;
        Ok(p)
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), FrameError> {
        let (per_segment, total) = if self.tag == Tag::Message {
            (
                u64::from(limits.max_message_segment),
                limits.max_message_total,
            )
        } else {
            if self.num_segments != 1 {
                return Err(FrameError::ControlSegments {
                    tag: self.tag,
                    count: self.num_segments,
                });
            }
            (
                u64::from(limits.max_control_segment),
                u64::from(limits.max_control_segment),
            )
        };
        for (index, s) in self.counted().iter().enumerate() {
            if u64::from(s.len) > per_segment {
                return Err(FrameError::SegmentTooLong {
                    tag: self.tag,
                    index,
                    len: u64::from(s.len),
                    limit: per_segment,
                });
            }
        }
        if self.total_len() > total {
            return Err(FrameError::SegmentTooLong {
                tag: self.tag,
                index: usize::from(self.num_segments) - 1,
                len: self.total_len(),
                limit: total,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(len: u32) -> SegmentDesc {
        SegmentDesc { len, align: 8 }
    }

    /// Every limit is inclusive: a segment or frame of exactly the limit passes, one byte
    /// more is `SegmentTooLong`.
    #[test]
    fn limits_are_inclusive() {
        let limits = Limits {
            max_control_segment: 100,
            max_message_segment: 1000,
            max_message_total: 1500,
        };
        let decode = |tag, segs: &[SegmentDesc]| {
            Preamble::decode(&Preamble::new(tag, segs).encode(), &limits)
        };
        assert!(decode(Tag::Hello, &[seg(100)]).is_ok());
        assert!(matches!(
            decode(Tag::Hello, &[seg(101)]),
            Err(FrameError::SegmentTooLong {
                len: 101,
                limit: 100,
                ..
            })
        ));
        assert!(decode(Tag::Message, &[seg(1000), seg(500)]).is_ok());
        assert!(matches!(
            decode(Tag::Message, &[seg(1001)]),
            Err(FrameError::SegmentTooLong {
                len: 1001,
                limit: 1000,
                ..
            })
        ));
        assert!(matches!(
            decode(Tag::Message, &[seg(1000), seg(501)]),
            Err(FrameError::SegmentTooLong {
                index: 1,
                len: 1501,
                limit: 1500,
                ..
            })
        ));
    }
}
