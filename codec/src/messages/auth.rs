//! `MAuth` / `MAuthReply`: authentication requests over an established monitor session
//! (cephx ticket renewal and a daemon's rotating service secrets).

use super::{put_string, MessageFront, PaxosHeader};
use super::{MSG_AUTH, MSG_AUTH_REPLY};
use crate::encoding::{DecodeError, Decoder, Encode};
use crate::msg::{PRIO_DEFAULT, PRIO_HIGH};

/// `MAuth` (type 0x11): an auth method's request to the monitor after the session is up,
/// e.g. cephx `CEPHX_GET_ROTATING_KEY` or `CEPHX_GET_PRINCIPAL_SESSION_KEY`.
///
/// Front: paxos prefix, `u32 protocol`, `bufferlist auth_payload`, `u32 monmap_epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MAuth {
    /// Paxos prefix (clients send the default).
    pub paxos: PaxosHeader,
    /// The auth method (`CEPH_AUTH_CEPHX` = 2).
    pub protocol: u32,
    /// The method's request.
    pub auth_payload: Vec<u8>,
    /// The monmap epoch the sender knows (0 if none).
    pub monmap_epoch: u32,
}

impl MessageFront for MAuth {
    const TYPE: u16 = MSG_AUTH;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, out: &mut Vec<u8>) {
        self.paxos.encode(out);
        out.put_u32(self.protocol);
        out.put_blob(&self.auth_payload);
        out.put_u32(self.monmap_epoch);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let paxos = PaxosHeader::decode(&mut d)?;
        let protocol = d.u32("MAuth protocol")?;
        let auth_payload = d.blob("MAuth auth_payload")?.to_vec();
        // Ceph reads the epoch only when present.
        let monmap_epoch = if d.remaining() > 0 {
            d.u32("MAuth monmap_epoch")?
        } else {
            0
        };
        d.finish("MAuth")?;
        Ok(Self {
            paxos,
            protocol,
            auth_payload,
            monmap_epoch,
        })
    }
}

/// `MAuthReply` (type 0x12): the monitor's answer to an [`MAuth`].
///
/// Front: `u32 protocol`, `i32 result`, `u64 global_id`, `bufferlist result_bl`,
/// `string result_msg`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MAuthReply {
    /// The auth method.
    pub protocol: u32,
    /// 0 or a negative errno.
    pub result: i32,
    /// The session's global id.
    pub global_id: u64,
    /// The method's reply.
    pub result_bl: Vec<u8>,
    /// A human-readable status.
    pub result_msg: String,
}

impl MessageFront for MAuthReply {
    const TYPE: u16 = MSG_AUTH_REPLY;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_HIGH;

    fn encode_front(&self, out: &mut Vec<u8>) {
        out.put_u32(self.protocol);
        out.put_i32(self.result);
        out.put_u64(self.global_id);
        out.put_blob(&self.result_bl);
        put_string(out, &self.result_msg);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let r = Self {
            protocol: d.u32("MAuthReply protocol")?,
            result: d.i32("MAuthReply result")?,
            global_id: d.u64("MAuthReply global_id")?,
            result_bl: d.blob("MAuthReply result_bl")?.to_vec(),
            result_msg: d.string("MAuthReply result_msg")?,
        };
        d.finish("MAuthReply")?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let a = MAuth {
            paxos: PaxosHeader::default(),
            protocol: 2,
            auth_payload: vec![0, 4],
            monmap_epoch: 1,
        };
        let mut f = Vec::new();
        a.encode_front(&mut f);
        assert_eq!(f.len(), 18 + 4 + 4 + 2 + 4);
        assert_eq!(MAuth::decode_front(&f, 1).unwrap(), a);
        // Without the trailing monmap epoch (older senders) it reads as 0.
        let no_epoch = MAuth::decode_front(&f[..f.len() - 4], 1).unwrap();
        assert_eq!(no_epoch.monmap_epoch, 0);
        assert_eq!(no_epoch.auth_payload, vec![0, 4]);
        let r = MAuthReply {
            protocol: 2,
            result: 0,
            global_id: 4100,
            result_bl: vec![1, 2, 3],
            result_msg: String::new(),
        };
        let mut f = Vec::new();
        r.encode_front(&mut f);
        assert_eq!(MAuthReply::decode_front(&f, 1).unwrap(), r);
        assert!(MAuthReply::decode_front(&f[..f.len() - 1], 1).is_err());
    }
}
