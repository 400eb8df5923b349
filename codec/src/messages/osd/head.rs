//! The leading fields of an `MOSDOp` front, decoded without the rest.
//!
//! Ceph's OSD decodes an `MOSDOp` in two steps: on receipt only the pg, hash, map epoch,
//! flags, request id and traces (`MOSDOp::decode_payload`), the object, ops and snap context
//! later (`finish_decode`). Whoever answers from the first step alone (Ceph's
//! `ceph_perf_msgr_server`, our `--ceph-perf` server) needs no allocation per op.

use super::{BlkinTrace, MOSDOp, ReqId, SPgId};
use crate::encoding::{DecodeError, Decoder};

/// The fields of an `MOSDOp` front before its object locator (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MOSDOpHead {
    /// Target placement group (actual pg and shard).
    pub pgid: SPgId,
    /// The object's raw hash.
    pub hash: u32,
    /// Sender's OSD map epoch.
    pub osdmap_epoch: u32,
    /// `CEPH_OSD_FLAG_*`.
    pub flags: u32,
    /// Explicit request id.
    pub reqid: ReqId,
    /// blkin trace.
    pub trace: BlkinTrace,
}

impl MOSDOp {
    /// Decodes only the leading fields of a version 8 or 9 front (Ceph's first decoding
    /// step); the rest of the front is not looked at. [`MessageFront::decode_front`] checks
    /// the whole front.
    ///
    /// [`MessageFront::decode_front`]: crate::messages::MessageFront::decode_front
    pub fn decode_head(front: &[u8], header_version: u16) -> Result<MOSDOpHead, DecodeError> {
        if !(8..=9).contains(&header_version) {
            return Err(DecodeError::InvalidValue {
                what: "MOSDOp version (8 or 9 supported)",
                value: u64::from(header_version),
            });
        }
        let mut d = Decoder::new(front);
        Ok(MOSDOpHead {
            pgid: SPgId::decode(&mut d)?,
            hash: d.u32("MOSDOp hash")?,
            osdmap_epoch: d.u32("MOSDOp osdmap_epoch")?,
            flags: d.u32("MOSDOp flags")?,
            reqid: ReqId::decode(&mut d)?,
            trace: BlkinTrace::decode(&mut d)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{MessageFront, ObjectLocator};

    #[test]
    fn head_matches_the_full_decode() {
        let mut op = MOSDOp::write("obj", ObjectLocator::default(), SPgId::default(), 0, 9);
        op.flags = 0x25;
        op.hash = 7;
        op.osdmap_epoch = 3;
        for v in [8, 9] {
            op.version = v;
            let front = op.front_bytes();
            let full = MOSDOp::decode_front(&front, v).expect("valid");
            let head = MOSDOp::decode_head(&front, v).expect("valid");
            assert_eq!(head.pgid, full.pgid);
            assert_eq!((head.hash, head.osdmap_epoch, head.flags), (7, 3, 0x25));
            assert_eq!((head.reqid, head.trace), (full.reqid, full.trace));
            assert!(MOSDOp::decode_head(&front[..10], v).is_err());
        }
        assert!(MOSDOp::decode_head(&[], 7).is_err());
    }
}
