//! `ceph_msg_header2`, the first segment of every MESSAGE frame, and message constants.
//!
//! The header is a packed 41-byte struct. Segment lengths are not in it: they come from the
//! preamble (front = segment 1, middle = 2, data = 3), and the source entity comes from the
//! handshake.

use crate::encoding::{DecodeError, Decoder, Encode};

/// Encoded size of [`MsgHeader2`].
pub const MSG_HEADER2_LEN: usize = 41;

/// `CEPH_MSG_PRIO_LOW`.
pub const PRIO_LOW: u16 = 64;
/// `CEPH_MSG_PRIO_DEFAULT`.
pub const PRIO_DEFAULT: u16 = 127;
/// `CEPH_MSG_PRIO_HIGH`.
pub const PRIO_HIGH: u16 = 196;
/// `CEPH_MSG_PRIO_HIGHEST`.
pub const PRIO_HIGHEST: u16 = 255;

/// Index of the front segment in a MESSAGE frame.
pub const SEG_FRONT: usize = 1;
/// Index of the middle segment.
pub const SEG_MIDDLE: usize = 2;
/// Index of the data segment (sent with a 4096 alignment hint).
pub const SEG_DATA: usize = 3;

/// `ceph_msg_header2` (packed, little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MsgHeader2 {
    /// Per-session sequence number, assigned by the messenger.
    pub seq: u64,
    /// Transaction id, set by the application.
    pub tid: u64,
    /// Message type (`CEPH_MSG_*`).
    pub msg_type: u16,
    /// Dispatch priority.
    pub priority: u16,
    /// Encoding version of the front.
    pub version: u16,
    /// Always 0 in practice.
    pub data_pre_padding_len: u32,
    /// Data placement hint (page offset).
    pub data_off: u16,
    /// Piggybacked ack: the sender's in_seq.
    pub ack_seq: u64,
    /// msgr1 footer flags copied by Ceph (not checked by anyone in msgr2).
    pub flags: u8,
    /// Oldest decoder version that can read the front.
    pub compat_version: u16,
    /// Reserved, 0.
    pub reserved: u16,
}

impl MsgHeader2 {
    /// Appends the 41-byte wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.seq);
        out.put_u64(self.tid);
        out.put_u16(self.msg_type);
        out.put_u16(self.priority);
        out.put_u16(self.version);
        out.put_u32(self.data_pre_padding_len);
        out.put_u16(self.data_off);
        out.put_u64(self.ack_seq);
        out.put_u8(self.flags);
        out.put_u16(self.compat_version);
        out.put_u16(self.reserved);
    }

    /// The wire form as an array.
    pub fn to_bytes(&self) -> [u8; MSG_HEADER2_LEN] {
        let mut v = Vec::with_capacity(MSG_HEADER2_LEN);
        self.encode(&mut v);
        let mut out = [0u8; MSG_HEADER2_LEN];
        out.copy_from_slice(&v);
        out
    }

    /// Decodes exactly 41 bytes (a longer or shorter segment 0 is an error).
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(b);
        let h = Self {
            seq: d.u64("msg seq")?,
            tid: d.u64("msg tid")?,
            msg_type: d.u16("msg type")?,
            priority: d.u16("msg priority")?,
            version: d.u16("msg version")?,
            data_pre_padding_len: d.u32("msg data_pre_padding_len")?,
            data_off: d.u16("msg data_off")?,
            ack_seq: d.u64("msg ack_seq")?,
            flags: d.u8("msg flags")?,
            compat_version: d.u16("msg compat_version")?,
            reserved: d.u16("msg reserved")?,
        };
        d.finish("ceph_msg_header2")?;
        Ok(h)
    }
}

/// Ceph's name for a message type, for logs and `msgr2 dump`.
pub fn msg_type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x01 => "shutdown",
        0x02 => "ping",
        0x04 => "mon_map",
        0x05 => "mon_get_map",
        0x06 => "mon_get_osdmap",
        0x07 => "mon_metadata",
        0x0d => "statfs",
        0x0e => "statfs_reply",
        0x0f => "mon_subscribe",
        0x10 => "mon_subscribe_ack",
        0x11 => "auth",
        0x12 => "auth_reply",
        0x13 => "mon_get_version",
        0x14 => "mon_get_version_reply",
        0x29 => "osd_map",
        0x2a => "osd_op",
        0x2b => "osd_opreply",
        0x2c => "watch_notify",
        0x32 => "mon_command",
        0x33 => "mon_command_ack",
        0x3e => "config",
        0x3f => "get_config",
        0x700 => "mgr_open",
        0x704 => "mgr_map",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names Ceph's messages print as (`Message::get_type_name`), by `CEPH_MSG_*` /
    /// `MSG_*` value.
    #[test]
    fn message_type_names() {
        let table: [(u16, &str); 24] = [
            (0x01, "shutdown"),
            (0x02, "ping"),
            (0x04, "mon_map"),
            (0x05, "mon_get_map"),
            (0x06, "mon_get_osdmap"),
            (0x07, "mon_metadata"),
            (0x0d, "statfs"),
            (0x0e, "statfs_reply"),
            (0x0f, "mon_subscribe"),
            (0x10, "mon_subscribe_ack"),
            (0x11, "auth"),
            (0x12, "auth_reply"),
            (0x13, "mon_get_version"),
            (0x14, "mon_get_version_reply"),
            (0x29, "osd_map"),
            (0x2a, "osd_op"),
            (0x2b, "osd_opreply"),
            (0x2c, "watch_notify"),
            (0x32, "mon_command"),
            (0x33, "mon_command_ack"),
            (0x3e, "config"),
            (0x3f, "get_config"),
            (0x700, "mgr_open"),
            (0x704, "mgr_map"),
        ];
        for (t, name) in table {
            assert_eq!(msg_type_name(t), Some(name), "{t:#x}");
        }
        for t in [0, 3, 0x2d, 0x701, 0xffff] {
            assert_eq!(msg_type_name(t), None, "{t:#x}");
        }
    }
}
