//! Front (segment 1) encodings of the Ceph messages a client needs to talk to a monitor.
//!
//! A MESSAGE frame carries `ceph_msg_header2` in segment 0, the type-specific *front* in
//! segment 1 and bulk data in segment 3 (see [`crate::msg`]). This module decodes and
//! encodes the fronts of the handful of messages a monitor client exchanges, with the layouts
//! of Ceph 16.2 "Pacific" (`src/messages/M*.h`, `src/mon/MonMap.cc`), checked against real
//! captures and a live 16.2.15 cluster:
//!
//! | type | message | direction | front |
//! |---|---|---|---|
//! | 0x04 | [`MMonMap`] | mon → client | blob holding an encoded [`MonMap`] |
//! | 0x05 | [`MMonGetMap`] | client → mon | empty |
//! | 0x0f | [`MMonSubscribe`] | client → mon | `map<string, {u64 start, u8 flags}>`, hostname |
//! | 0x10 | [`MMonSubscribeAck`] | mon → client | `u32 interval`, fsid (pre-Jewel clients only) |
//! | 0x32 | [`MMonCommand`] | client → mon | paxos prefix, fsid, `vector<string>` command; input in data |
//! | 0x33 | [`MMonCommandAck`] | mon → client | paxos prefix, `r`, `rs`, command; output in data |
//! | 0x3e | [`MConfig`] | mon → client | `map<string, string>` |
//! | 0x2a | [`MOSDOp`] | client → OSD | pg, object, ops (v8 Ceph 16/18, v9 Ceph 19+); write data in data |
//! | 0x2b | [`MOSDOpReply`] | OSD → client | result, versions, ops with return values |
//!
//! Every message type implements [`MessageFront`], which also carries the header fields Ceph
//! puts on the wire for it (type, version, compat version, priority); [`MessageFront::header`]
//! builds a `ceph_msg_header2` from them.
//!
//! Decoders are strict (trailing bytes are an error), return typed [`DecodeError`]s, never
//! panic, and check every count against the bytes actually present before allocating.

mod auth;
mod auth_policy;
mod mon;
mod monmap;
mod osd;
mod stamp;
mod uuid;

pub use auth::{MAuth, MAuthReply};
pub use auth_policy::{cipher_name, MonAuthPolicy, CIPHER_AES, CIPHER_AES256KRB5, CIPHER_NONE};
pub use mon::{
    MConfig, MMonCommand, MMonCommandAck, MMonGetMap, MMonSubscribe, MMonSubscribeAck, PaxosHeader,
    SubscribeItem, SUBSCRIBE_ONETIME,
};
pub use monmap::{
    ceph_release_name, MMonMap, MonInfo, MonMap, MONMAP_AUTH_VERSION, MONMAP_ENCODING_VERSION,
};
pub use osd::{
    BlkinTrace, EVersion, MOSDOp, MOSDOpHead, MOSDOpReply, ObjectLocator, OpaqueStruct, OsdOp,
    PgId, ReqId, SPgId, FEATURE_SERVER_SQUID, MAX_OSD_OPS, MAX_SNAPS, MSG_OSD_OP, MSG_OSD_OPREPLY,
    NOSNAP, NO_SHARD, OSD_FLAG_ACK, OSD_FLAG_ONDISK, OSD_FLAG_ONNVRAM, OSD_OP_ARGS_LEN, OSD_OP_LEN,
    OSD_OP_READ, OSD_OP_WRITE,
};
pub use stamp::CephStamp;
pub use uuid::{Uuid, UuidParseError};

use crate::encoding::{DecodeError, Decoder, Encode};
use crate::msg::MsgHeader2;
use std::collections::BTreeMap;

/// `CEPH_MSG_MON_MAP`: [`MMonMap`].
pub const MSG_MON_MAP: u16 = 0x04;
/// `CEPH_MSG_MON_GET_MAP`: [`MMonGetMap`].
pub const MSG_MON_GET_MAP: u16 = 0x05;
/// `CEPH_MSG_AUTH`: [`MAuth`].
pub const MSG_AUTH: u16 = 0x11;
/// `CEPH_MSG_AUTH_REPLY`: [`MAuthReply`].
pub const MSG_AUTH_REPLY: u16 = 0x12;
/// `CEPH_MSG_MON_SUBSCRIBE`: [`MMonSubscribe`].
pub const MSG_MON_SUBSCRIBE: u16 = 0x0f;
/// `CEPH_MSG_MON_SUBSCRIBE_ACK`: [`MMonSubscribeAck`].
pub const MSG_MON_SUBSCRIBE_ACK: u16 = 0x10;
/// `MSG_MON_COMMAND`: [`MMonCommand`].
pub const MSG_MON_COMMAND: u16 = 0x32;
/// `MSG_MON_COMMAND_ACK`: [`MMonCommandAck`].
pub const MSG_MON_COMMAND_ACK: u16 = 0x33;
/// `MSG_CONFIG`: [`MConfig`].
pub const MSG_CONFIG: u16 = 0x3e;

/// A message whose front this module can encode and decode, with the header fields Ceph
/// uses when sending it.
pub trait MessageFront: Sized {
    /// Message type (`ceph_msg_header2::type`).
    const TYPE: u16;
    /// Encoding version Ceph writes in the header (its `HEAD_VERSION`).
    const HEAD_VERSION: u16;
    /// Compat version as it appears on the wire. Ceph's `Message::encode` replaces a compat
    /// version of 0 ("not specified") with the head version, so messages that declare no
    /// `COMPAT_VERSION` show up with compat = version.
    const COMPAT_VERSION: u16;
    /// Priority Ceph's usual sender gives it: clients send with the messenger default
    /// (`CEPH_MSG_PRIO_DEFAULT`, 127); `ceph-mon` sets its default send priority to
    /// `CEPH_MSG_PRIO_HIGH` (196), so everything a monitor sends carries 196.
    const PRIORITY: u16;

    /// Appends the front.
    fn encode_front(&self, out: &mut Vec<u8>);

    /// Decodes a whole front. `header_version` is `ceph_msg_header2::version`: a few
    /// messages change layout with it (e.g. [`MMonSubscribe`] before version 2).
    fn decode_front(front: &[u8], header_version: u16) -> Result<Self, DecodeError>;

    /// The front as a new buffer.
    fn front_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_front(&mut v);
        v
    }

    /// A `ceph_msg_header2` for this message type with transaction id `tid`: type, priority,
    /// version and compat version filled in; `seq` and `ack_seq` are left 0 for the
    /// messenger to set when it sends the frame.
    fn header(tid: u64) -> MsgHeader2 {
        MsgHeader2 {
            tid,
            msg_type: Self::TYPE,
            priority: Self::PRIORITY,
            version: Self::HEAD_VERSION,
            compat_version: Self::COMPAT_VERSION,
            ..MsgHeader2::default()
        }
    }
}

// --- shared field codecs ---------------------------------------------------------------------

/// Minimum encoded size of a `string` (its `u32` length).
const MIN_STRING: usize = 4;

/// Appends a `string`.
fn put_string(out: &mut Vec<u8>, s: &str) {
    out.put_blob(s.as_bytes());
}

/// Appends a `vector<string>` (also the layout of `set<string>`).
fn put_strings(out: &mut Vec<u8>, v: &[String]) {
    out.put_u32(crate::encoding::len_u32(v.len()));
    for s in v {
        put_string(out, s);
    }
}

/// Decodes a `vector<string>` / `set<string>`; the count is checked against the input first.
fn strings(d: &mut Decoder<'_>, what: &'static str) -> Result<Vec<String>, DecodeError> {
    let n = d.count(MIN_STRING, what)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(d.string(what)?);
    }
    Ok(v)
}

/// Appends a `map<string, string>`.
fn put_string_map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    out.put_u32(crate::encoding::len_u32(m.len()));
    for (k, v) in m {
        put_string(out, k);
        put_string(out, v);
    }
}

/// Decodes a `map<string, string>`. As in Ceph, a repeated key keeps the last value.
fn string_map(
    d: &mut Decoder<'_>,
    what: &'static str,
) -> Result<BTreeMap<String, String>, DecodeError> {
    let n = d.count(2 * MIN_STRING, what)?;
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let k = d.string(what)?;
        let v = d.string(what)?;
        m.insert(k, v);
    }
    Ok(m)
}

/// Decodes a little-endian `i16`.
fn i16(d: &mut Decoder<'_>, what: &'static str) -> Result<i16, DecodeError> {
    Ok(i16::from_le_bytes(d.array(what)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `map<string, string>` count is bounded by 8 bytes (two empty strings) per entry
    /// before anything is allocated.
    #[test]
    fn string_map_count_is_bounded_by_two_strings_per_entry() {
        let mut m = BTreeMap::new();
        m.insert("k".to_owned(), "v".to_owned());
        m.insert(String::new(), String::new());
        let mut b = Vec::new();
        put_string_map(&mut b, &m);
        assert_eq!(string_map(&mut Decoder::new(&b), "m"), Ok(m));
        // Two entries claimed, 10 bytes left: refused for want of 16.
        let mut b = 2u32.to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 10]);
        assert_eq!(
            string_map(&mut Decoder::new(&b), "m"),
            Err(DecodeError::Truncated {
                what: "m",
                offset: 4,
                need: 16,
                have: 10
            })
        );
    }
}
