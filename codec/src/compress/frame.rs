//! The per-frame transform (Ceph's `FrameAssembler::asm_compress` / `disassemble_decompress`).
//!
//! Sending: when a frame's segments add up to at least the minimum size
//! (`ms_osd_compress_min_size`), every segment is compressed on its own (an empty segment
//! stays empty), the preamble carries the *compressed* lengths and byte 26 gets
//! [`FLAG_COMPRESSED`]. Compression happens before crcs are computed and before encryption,
//! so the crcs and the GCM tags cover the compressed bytes. Any frame can be compressed, the
//! control frames after the negotiation included, not only MESSAGE. Receiving undoes it after
//! the crcs (or tags) were checked.

use super::{compress, decompress, CompressError, Method};
use crate::frame::{Limits, Tag};

/// Preamble `flags` bit 0 (`FRAME_EARLY_DATA_COMPRESSED`): the segments are compressed.
pub const FLAG_COMPRESSED: u8 = 1;

/// Compresses every segment with `method` if their total length is at least `min_size`
/// (Ceph's rule: `m_init_onwire_size < m_min_size` → uncompressed). `None`: send the frame
/// uncompressed (too small, or the compressor failed, on which Ceph also falls back).
pub fn compress_segments(
    method: Method,
    segments: &[&[u8]],
    min_size: u64,
) -> Option<Vec<Vec<u8>>> {
    let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
    if total < min_size {
        return None;
    }
    segments
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            if !s.is_empty() {
                compress(method, s, &mut out).ok()?;
            }
            Some(out)
        })
        .collect()
}

/// Decompresses the segments of a received `tag` frame. Each output is bounded by `limits`
/// (per segment, and all segments of a MESSAGE together) before it is allocated.
pub fn decompress_segments(
    method: Method,
    tag: Tag,
    segments: &[&[u8]],
    limits: &Limits,
) -> Result<Vec<Vec<u8>>, CompressError> {
    let (per_segment, mut budget) = if tag == Tag::Message {
        (
            limits.max_message_segment as usize,
            usize::try_from(limits.max_message_total).unwrap_or(usize::MAX),
        )
    } else {
        (
            limits.max_control_segment as usize,
            limits.max_control_segment as usize,
        )
    };
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        if s.is_empty() {
            out.push(Vec::new());
            continue;
        }
        let d = decompress(method, s, per_segment.min(budget))?;
        budget -= d.len();
        out.push(d);
    }
    Ok(out)
}
