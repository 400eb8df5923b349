//! Messages as the application sees them.

use msgr2_codec::msg::{MsgHeader2, PRIO_DEFAULT};

/// One Ceph message: header plus its three payload parts.
///
/// `header.seq` and `header.ack_seq` are assigned by the connection when it sends; the rest
/// is the application's. Segment lengths are not part of the header: they travel in the frame
/// preamble.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// `ceph_msg_header2`.
    pub header: MsgHeader2,
    /// Front: the type-specific encoded payload.
    pub front: Vec<u8>,
    /// Middle (rarely used).
    pub middle: Vec<u8>,
    /// Data: bulk bytes, received page-aligned where the allocator allows.
    pub data: Vec<u8>,
}

impl Message {
    /// A message of `msg_type` with `front`, default priority and the given encoding versions.
    pub fn new(msg_type: u16, version: u16, compat_version: u16, front: Vec<u8>) -> Self {
        Self {
            header: MsgHeader2 {
                msg_type,
                version,
                compat_version,
                priority: PRIO_DEFAULT,
                ..Default::default()
            },
            front,
            ..Default::default()
        }
    }

    /// Total payload bytes.
    pub fn payload_len(&self) -> usize {
        self.front.len() + self.middle.len() + self.data.len()
    }
}
