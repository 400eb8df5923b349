//! msgr2 frames in crc mode, both revisions.
//!
//! A frame is a [`Tag`] plus 1–4 segments. On the wire it starts with a 32-byte
//! [`Preamble`] (tag, segment count, four `{u32 len, u16 align}` descriptors, two reserved
//! bytes, crc32c with seed 0), followed by the segments and crcs in a revision-specific layout:
//!
//! - **rev1** (msgr2.1): `seg0 ‖ crc0` (only if `seg0` is non-empty), then, only for
//!   multi-segment frames, `seg1..n ‖ epilogue(13)` = `late_status(0x0E) ‖ crc[1..3]`.
//! - **rev0** (msgr2.0): `seg0..n ‖ epilogue(17)` = `late_flags ‖ crc[0..3]`, on every frame.
//!
//! [`assemble`] builds frames (as gather pieces or into a `Vec`), [`FrameDecoder`] takes bytes
//! in any split and tells the caller where the next bytes should land, so a data segment can
//! be received straight into a page-aligned buffer.

mod assemble;
mod decoder;
mod preamble;

pub use assemble::{assemble, FrameParts};
pub use decoder::{Fed, Frame, FrameDecoder, SegmentAlloc, VecAlloc, Want, WantKind};
pub use preamble::{Preamble, SegmentDesc};

use thiserror::Error;

/// Size of the preamble block.
pub const PREAMBLE_LEN: usize = 32;
/// Maximum number of segments in a frame.
pub const MAX_SEGMENTS: usize = 4;
/// Size of the rev1 crc-mode epilogue (only on multi-segment frames).
pub const EPILOGUE_REV1_LEN: usize = 13;
/// Size of the rev0 crc-mode epilogue (on every frame).
pub const EPILOGUE_REV0_LEN: usize = 17;
/// Alignment hint Ceph sends for control payloads and message header/front/middle.
pub const ALIGN_DEFAULT: u16 = 8;
/// Alignment hint Ceph sends for a message's data segment.
pub const ALIGN_PAGE: u16 = 4096;
/// rev1 `late_status` for a complete frame (what Ceph and the kernel send).
pub const LATE_STATUS_COMPLETE: u8 = 0x0E;
/// rev1 `late_status` low nibble for an aborted frame.
pub const LATE_STATUS_ABORTED: u8 = 0x01;
/// rev0 `late_flags` bit for an aborted frame.
pub const LATE_FLAG_ABORTED: u8 = 0x01;

/// Frame tags (Ceph `frames_v2.h` `Tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Tag {
    Hello = 1,
    AuthRequest = 2,
    AuthBadMethod = 3,
    AuthReplyMore = 4,
    AuthRequestMore = 5,
    AuthDone = 6,
    AuthSignature = 7,
    ClientIdent = 8,
    ServerIdent = 9,
    IdentMissingFeatures = 10,
    SessionReconnect = 11,
    SessionReset = 12,
    SessionRetry = 13,
    SessionRetryGlobal = 14,
    SessionReconnectOk = 15,
    Wait = 16,
    Message = 17,
    Keepalive2 = 18,
    Keepalive2Ack = 19,
    Ack = 20,
    /// Quincy+ only (both banners advertise compression).
    CompressionRequest = 21,
    /// Quincy+ only (both banners advertise compression).
    CompressionDone = 22,
}

impl Tag {
    /// Every tag, in wire order.
    pub const ALL: [Tag; 22] = [
        Tag::Hello,
        Tag::AuthRequest,
        Tag::AuthBadMethod,
        Tag::AuthReplyMore,
        Tag::AuthRequestMore,
        Tag::AuthDone,
        Tag::AuthSignature,
        Tag::ClientIdent,
        Tag::ServerIdent,
        Tag::IdentMissingFeatures,
        Tag::SessionReconnect,
        Tag::SessionReset,
        Tag::SessionRetry,
        Tag::SessionRetryGlobal,
        Tag::SessionReconnectOk,
        Tag::Wait,
        Tag::Message,
        Tag::Keepalive2,
        Tag::Keepalive2Ack,
        Tag::Ack,
        Tag::CompressionRequest,
        Tag::CompressionDone,
    ];

    /// Maps a wire byte to a tag.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1..=22 => Some(Self::ALL[usize::from(v) - 1]),
            _ => None,
        }
    }

    /// Ceph's name for the tag (as in its logs).
    pub fn name(self) -> &'static str {
        match self {
            Tag::Hello => "HELLO",
            Tag::AuthRequest => "AUTH_REQUEST",
            Tag::AuthBadMethod => "AUTH_BAD_METHOD",
            Tag::AuthReplyMore => "AUTH_REPLY_MORE",
            Tag::AuthRequestMore => "AUTH_REQUEST_MORE",
            Tag::AuthDone => "AUTH_DONE",
            Tag::AuthSignature => "AUTH_SIGNATURE",
            Tag::ClientIdent => "CLIENT_IDENT",
            Tag::ServerIdent => "SERVER_IDENT",
            Tag::IdentMissingFeatures => "IDENT_MISSING_FEATURES",
            Tag::SessionReconnect => "SESSION_RECONNECT",
            Tag::SessionReset => "SESSION_RESET",
            Tag::SessionRetry => "SESSION_RETRY",
            Tag::SessionRetryGlobal => "SESSION_RETRY_GLOBAL",
            Tag::SessionReconnectOk => "SESSION_RECONNECT_OK",
            Tag::Wait => "WAIT",
            Tag::Message => "MESSAGE",
            Tag::Keepalive2 => "KEEPALIVE2",
            Tag::Keepalive2Ack => "KEEPALIVE2_ACK",
            Tag::Ack => "ACK",
            Tag::CompressionRequest => "COMPRESSION_REQUEST",
            Tag::CompressionDone => "COMPRESSION_DONE",
        }
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bounds on what a peer may make us allocate, checked on the preamble before any segment
/// buffer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest segment of a control (non-MESSAGE) frame.
    pub max_control_segment: u32,
    /// Largest single segment of a MESSAGE frame.
    pub max_message_segment: u32,
    /// Largest sum of all segments of one MESSAGE frame.
    pub max_message_total: u64,
}

impl Default for Limits {
    /// 1 MiB for control payloads (a cephx AUTH_DONE is under 4 KiB), 256 MiB per message
    /// segment and in total (Ceph's `osd_max_write_size` is 90 MiB; the kernel caps data at
    /// 64 MiB).
    fn default() -> Self {
        Self {
            max_control_segment: 1 << 20,
            max_message_segment: 256 << 20,
            max_message_total: 256 << 20,
        }
    }
}

/// Why a frame was rejected. Every variant is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The preamble's crc32c does not match its first 28 bytes.
    #[error("preamble crc mismatch: wire {wire:#010x}, computed {computed:#010x}")]
    PreambleCrc {
        /// crc on the wire.
        wire: u32,
        /// crc we computed.
        computed: u32,
    },
    /// `num_segments` outside 1..=4.
    #[error("bad segment count {0} (must be 1..=4)")]
    BadSegmentCount(u8),
    /// [`FrameDecoder::return_segment`] without a segment lent out (an embedder bug).
    #[error("no segment buffer is lent out")]
    NotLent,
    /// The last counted segment is empty (only allowed for single-segment frames).
    #[error("last counted segment {index} is empty")]
    EmptyLastSegment {
        /// Index of the empty segment.
        index: usize,
    },
    /// Unknown tag byte.
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    /// A segment is longer than the configured limit.
    #[error("{tag} segment {index} of {len} bytes exceeds the limit of {limit}")]
    SegmentTooLong {
        /// Frame tag.
        tag: Tag,
        /// Segment index.
        index: usize,
        /// Claimed length.
        len: u64,
        /// Our limit.
        limit: u64,
    },
    /// A segment's crc32c does not match.
    #[error("segment {index} crc mismatch: wire {wire:#010x}, computed {computed:#010x}")]
    SegmentCrc {
        /// Segment index.
        index: usize,
        /// crc on the wire.
        wire: u32,
        /// crc we computed.
        computed: u32,
    },
    /// rev1 `late_status` other than complete (0xE) or aborted (0x1) in its low nibble.
    #[error("bad late_status {0:#04x}")]
    BadLateStatus(u8),
    /// rev0 `late_flags` with unknown bits.
    #[error("bad late_flags {0:#04x}")]
    BadLateFlags(u8),
    /// A control frame arrived with more than one segment.
    #[error("{tag} control frame has {count} segments (expected 1)")]
    ControlSegments {
        /// Frame tag.
        tag: Tag,
        /// Segment count in the preamble.
        count: u8,
    },
    /// The decoder already failed; the connection must be closed.
    #[error("decoder already failed: {0}")]
    Poisoned(Box<FrameError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tag's wire byte is its position in `ALL` (1-based) and it prints as Ceph's name.
    #[test]
    fn tags_round_trip_and_print_cephs_names() {
        for (i, t) in Tag::ALL.iter().enumerate() {
            let v = u8::try_from(i + 1).unwrap();
            assert_eq!(*t as u8, v);
            assert_eq!(Tag::from_u8(v), Some(*t));
            assert_eq!(t.to_string(), t.name());
        }
        assert_eq!(Tag::Message.to_string(), "MESSAGE");
        assert_eq!(Tag::from_u8(0), None);
        assert_eq!(Tag::from_u8(23), None);
    }
}
