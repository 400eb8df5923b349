//! Messages as the application sees them.

use std::sync::Arc;

use msgr2_codec::msg::{MsgHeader2, PRIO_DEFAULT};
use msgr2_codec::Data;

use crate::throttle::ThrottleGuard;

/// One Ceph message: header plus its three payload parts.
///
/// `header.seq` and `header.ack_seq` are assigned by the connection when it sends; the rest
/// is the application's. Segment lengths are not part of the header: they travel in the frame
/// preamble. `header.priority` picks the send queue (highest first, FIFO within one).
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// `ceph_msg_header2`.
    pub header: MsgHeader2,
    /// Front: the type-specific encoded payload.
    pub front: Vec<u8>,
    /// Middle (rarely used).
    pub middle: Vec<u8>,
    /// Data: bulk bytes. Received data segments of a page or more are page-aligned
    /// ([`Data::is_page_aligned`]); clones share the buffer, so a lossless session keeps a
    /// sent message for replay without copying it. Build one with `Vec::into()`.
    pub data: Data,
    /// Received messages: the reservation this message holds on its connection's receive
    /// throttles (dispatch and policy throttles). It is released when the last clone of the
    /// message is dropped or [`Message::release_throttle`] is called; until then a
    /// connection whose throttles are full reads no further frames. `None` on messages the
    /// application builds.
    pub throttle: Option<Arc<ThrottleGuard>>,
}

impl PartialEq for Message {
    /// Header and payload; the throttle reservation is not part of a message's value.
    fn eq(&self, o: &Self) -> bool {
        self.header == o.header
            && self.front == o.front
            && self.middle == o.middle
            && self.data == o.data
    }
}

impl Eq for Message {}

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

    /// Gives this message's receive-throttle reservation back now (Ceph releases it when
    /// dispatch finishes), letting its connection read further messages. Other clones keep
    /// the reservation alive until they drop too.
    pub fn release_throttle(&mut self) {
        self.throttle = None;
    }
}
