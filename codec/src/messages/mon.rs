//! The small monitor-client messages: get-map, subscriptions, commands and config.

use super::{i16, put_string, put_string_map, put_strings, string_map, strings, MIN_STRING};
use super::{MessageFront, Uuid};
use super::{
    MSG_CONFIG, MSG_MON_COMMAND, MSG_MON_COMMAND_ACK, MSG_MON_GET_MAP, MSG_MON_SUBSCRIBE,
    MSG_MON_SUBSCRIBE_ACK,
};
use crate::encoding::{len_u32, DecodeError, Decoder, Encode};
use crate::msg::{PRIO_DEFAULT, PRIO_HIGH};
use std::collections::BTreeMap;

/// `MMonGetMap` (type 0x05): asks the monitor for its current [`super::MonMap`]; answered with
/// an [`super::MMonMap`]. Pacific clients send it first on every monitor session. The front
/// is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MMonGetMap;

impl MessageFront for MMonGetMap {
    const TYPE: u16 = MSG_MON_GET_MAP;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, _out: &mut Vec<u8>) {}

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        Decoder::new(front).finish("MMonGetMap")?;
        Ok(Self)
    }
}

/// `CEPH_SUBSCRIBE_ONETIME`: send one update past `start`, then drop the subscription.
pub const SUBSCRIBE_ONETIME: u8 = 1;

/// One subscription (`ceph_mon_subscribe_item`, packed: `u64 start`, `u8 flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscribeItem {
    /// First epoch wanted: 0 for "the current one", otherwise `have + 1`.
    pub start: u64,
    /// [`SUBSCRIBE_ONETIME`] or 0.
    pub flags: u8,
}

/// `MMonSubscribe` (type 0x0f): subscribes to maps and other updates by name (`monmap`,
/// `config`, `osdmap`, `mgrmap`, ...).
///
/// Front (version 2+): `map<string, ceph_mon_subscribe_item>`, then (version 3+) the
/// sender's hostname. A version 0/1 front (pre-`SUBSCRIBE2` peers) holds
/// `map<string, {u64 unused, u64 have, u8 onetime}>` and is converted as Ceph converts it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MMonSubscribe {
    /// What to subscribe to, by name, in name order.
    pub what: BTreeMap<String, SubscribeItem>,
    /// The sender's hostname (Ceph clients send their short host name; may be empty).
    pub hostname: String,
}

impl MessageFront for MMonSubscribe {
    const TYPE: u16 = MSG_MON_SUBSCRIBE;
    const HEAD_VERSION: u16 = 3;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, out: &mut Vec<u8>) {
        out.put_u32(len_u32(self.what.len()));
        for (name, item) in &self.what {
            put_string(out, name);
            out.put_u64(item.start);
            out.put_u8(item.flags);
        }
        put_string(out, &self.hostname);
    }

    fn decode_front(front: &[u8], header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let mut what = BTreeMap::new();
        let mut hostname = String::new();
        if header_version < 2 {
            let n = d.count(MIN_STRING + 17, "MMonSubscribe what")?;
            for _ in 0..n {
                let name = d.string("MMonSubscribe what name")?;
                d.u64("MMonSubscribe what unused")?;
                let have = d.u64("MMonSubscribe what have")?;
                let onetime = d.u8("MMonSubscribe what onetime")?;
                let item = SubscribeItem {
                    start: if have == 0 { 0 } else { have.wrapping_add(1) },
                    flags: if onetime != 0 { SUBSCRIBE_ONETIME } else { 0 },
                };
                what.insert(name, item);
            }
        } else {
            let n = d.count(MIN_STRING + 9, "MMonSubscribe what")?;
            for _ in 0..n {
                let name = d.string("MMonSubscribe what name")?;
                let item = SubscribeItem {
                    start: d.u64("MMonSubscribe what start")?,
                    flags: d.u8("MMonSubscribe what flags")?,
                };
                what.insert(name, item);
            }
            if header_version >= 3 {
                hostname = d.string("MMonSubscribe hostname")?;
            }
        }
        d.finish("MMonSubscribe")?;
        Ok(Self { what, hostname })
    }
}

/// `MMonSubscribeAck` (type 0x10): the renewal interval and the cluster fsid. A Pacific
/// monitor sends it only to peers without `CEPH_FEATURE_MON_STATEFUL_SUB` (older than
/// Jewel), so a msgr2 client never sees one (the captures have none); it is here for
/// completeness and for test servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MMonSubscribeAck {
    /// Seconds after which the subscriptions should be renewed.
    pub interval: u32,
    /// The cluster fsid.
    pub fsid: Uuid,
}

impl MessageFront for MMonSubscribeAck {
    const TYPE: u16 = MSG_MON_SUBSCRIBE_ACK;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_HIGH;

    fn encode_front(&self, out: &mut Vec<u8>) {
        out.put_u32(self.interval);
        self.fsid.encode(out);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let interval = d.u32("MMonSubscribeAck interval")?;
        let fsid = Uuid::decode(&mut d)?;
        d.finish("MMonSubscribeAck")?;
        Ok(Self { interval, fsid })
    }
}

/// The prefix every `PaxosServiceMessage` front starts with (`paxos_encode`): 18 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaxosHeader {
    /// Paxos version the sender has seen (0 from clients).
    pub version: u64,
    /// Unused since Cuttlefish; Ceph sends -1.
    pub deprecated_session_mon: i16,
    /// Unused; Ceph sends 0.
    pub deprecated_session_mon_tid: u64,
}

impl Default for PaxosHeader {
    /// What Ceph clients and monitors send: version 0, session mon -1, tid 0.
    fn default() -> Self {
        Self {
            version: 0,
            deprecated_session_mon: -1,
            deprecated_session_mon_tid: 0,
        }
    }
}

impl PaxosHeader {
    /// Appends the 18-byte prefix.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.version);
        out.extend_from_slice(&self.deprecated_session_mon.to_le_bytes());
        out.put_u64(self.deprecated_session_mon_tid);
    }

    /// Decodes the prefix.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: d.u64("PaxosServiceMessage version")?,
            deprecated_session_mon: i16(d, "PaxosServiceMessage session_mon")?,
            deprecated_session_mon_tid: d.u64("PaxosServiceMessage session_mon_tid")?,
        })
    }
}

/// `MMonCommand` (type 0x32): a command for the monitor, e.g. `ceph -s` sends
/// `{"prefix": "status"}`. Each element of `cmd` is one JSON object (Ceph clients send one);
/// the command's input (`-i FILE`) travels in the data segment, not in the front. The reply
/// is an [`MMonCommandAck`] with the same transaction id (`ceph_msg_header2::tid`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MMonCommand {
    /// Paxos prefix (clients send the default).
    pub paxos: PaxosHeader,
    /// The cluster fsid as the client knows it (from the monmap).
    pub fsid: Uuid,
    /// The command as JSON text.
    pub cmd: Vec<String>,
}

impl MMonCommand {
    /// A command as a Ceph client sends it: default paxos prefix, `fsid`, one JSON string.
    pub fn new(fsid: Uuid, json: impl Into<String>) -> Self {
        Self {
            paxos: PaxosHeader::default(),
            fsid,
            cmd: vec![json.into()],
        }
    }
}

impl MessageFront for MMonCommand {
    const TYPE: u16 = MSG_MON_COMMAND;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, out: &mut Vec<u8>) {
        self.paxos.encode(out);
        self.fsid.encode(out);
        put_strings(out, &self.cmd);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let paxos = PaxosHeader::decode(&mut d)?;
        let fsid = Uuid::decode(&mut d)?;
        let cmd = strings(&mut d, "MMonCommand cmd")?;
        d.finish("MMonCommand")?;
        Ok(Self { paxos, fsid, cmd })
    }
}

/// `MMonCommandAck` (type 0x33): the result of an [`MMonCommand`] with the same tid.
/// `r` is 0 or a negative Linux errno, `rs` the status line the `ceph` CLI prints on stderr;
/// the command's output (what `ceph` prints on stdout, e.g. the `ceph -s` text or JSON) is in
/// the data segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MMonCommandAck {
    /// Paxos prefix.
    pub paxos: PaxosHeader,
    /// Result: 0 or `-errno` (`errorcode32_t`; Linux numbering on the wire).
    pub r: i32,
    /// Human-readable status, often empty on success.
    pub rs: String,
    /// The command being answered, echoed back.
    pub cmd: Vec<String>,
}

impl MessageFront for MMonCommandAck {
    const TYPE: u16 = MSG_MON_COMMAND_ACK;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_HIGH;

    fn encode_front(&self, out: &mut Vec<u8>) {
        self.paxos.encode(out);
        out.put_i32(self.r);
        put_string(out, &self.rs);
        put_strings(out, &self.cmd);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let paxos = PaxosHeader::decode(&mut d)?;
        let r = d.i32("MMonCommandAck r")?;
        let rs = d.string("MMonCommandAck rs")?;
        let cmd = strings(&mut d, "MMonCommandAck cmd")?;
        d.finish("MMonCommandAck")?;
        Ok(Self { paxos, r, rs, cmd })
    }
}

/// `MConfig` (type 0x3e): the configuration the monitor's config database holds for this
/// client, as option name → value text. Sent after a `config` subscription (during the
/// bootstrap connection every librados client makes) and whenever it changes; empty on a
/// fresh cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MConfig {
    /// Options, in name order.
    pub config: BTreeMap<String, String>,
}

impl MessageFront for MConfig {
    const TYPE: u16 = MSG_CONFIG;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_HIGH;

    fn encode_front(&self, out: &mut Vec<u8>) {
        put_string_map(out, &self.config);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let config = string_map(&mut d, "MConfig config")?;
        d.finish("MConfig")?;
        Ok(Self { config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_subscribe_format_is_converted() {
        let mut b = Vec::new();
        b.put_u32(2);
        for (name, have, onetime) in [("monmap", 0u64, 0u8), ("osdmap", 7, 1)] {
            put_string(&mut b, name);
            b.put_u64(0);
            b.put_u64(have);
            b.put_u8(onetime);
        }
        let m = MMonSubscribe::decode_front(&b, 1).unwrap();
        assert_eq!(m.what["monmap"], SubscribeItem { start: 0, flags: 0 });
        assert_eq!(m.what["osdmap"], SubscribeItem { start: 8, flags: 1 });
        assert_eq!(m.hostname, "");
    }

    #[test]
    fn version_2_subscribe_has_no_hostname() {
        let mut m = MMonSubscribe::default();
        m.what.insert("config".into(), SubscribeItem::default());
        let mut b = m.front_bytes();
        b.truncate(b.len() - 4); // drop the (empty) hostname
        assert_eq!(MMonSubscribe::decode_front(&b, 2).unwrap(), m);
        assert!(MMonSubscribe::decode_front(&b, 3).is_err());
    }

    #[test]
    fn subscribe_ack_and_get_map() {
        let a = MMonSubscribeAck {
            interval: 300,
            fsid: Uuid([9; 16]),
        };
        let b = a.front_bytes();
        assert_eq!(b.len(), 20);
        assert_eq!(MMonSubscribeAck::decode_front(&b, 1).unwrap(), a);
        assert!(MMonGetMap.front_bytes().is_empty());
        assert_eq!(
            MMonGetMap::decode_front(&[0], 1),
            Err(DecodeError::TrailingBytes {
                what: "MMonGetMap",
                count: 1
            })
        );
    }

    #[test]
    fn header_carries_the_wire_fields() {
        let h = MMonCommand::header(7);
        assert_eq!(
            (h.tid, h.msg_type, h.priority, h.version, h.compat_version),
            (7, 0x32, 127, 1, 1)
        );
        assert_eq!((h.seq, h.ack_seq), (0, 0));
    }
}
