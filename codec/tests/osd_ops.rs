//! `MOSDOp` / `MOSDOpReply` against Ceph itself: every message of a capture of Ceph 20.2.4's
//! `ceph_perf_msgr_client` talking to its `ceph_perf_msgr_server` (crc mode, auth none;
//! `tests/data/ceph-perf/`) decodes, holds what the tools put in it, and re-encodes to the
//! identical bytes. Plus round-trip properties and bad input (truncated or oversized op
//! vectors) as typed errors.

#![allow(clippy::unwrap_used)]

use msgr2_codec::banner::BANNER_PREFIX_LEN;
use msgr2_codec::encoding::DecodeError;
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};
use msgr2_codec::messages::*;
use msgr2_codec::msg::{MsgHeader2, SEG_DATA, SEG_FRONT};
use msgr2_codec::payload::UTime;
use msgr2_codec::Revision;
use proptest::prelude::*;
use std::path::PathBuf;

const BANNER_LEN: usize = BANNER_PREFIX_LEN + 16;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ceph-perf")
}

/// (header, front, data length) of every MESSAGE frame in one direction.
fn messages(name: &str) -> Vec<(MsgHeader2, Vec<u8>, usize)> {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut pos = BANNER_LEN;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let (n, f) = dec.feed(&bytes[pos..]).unwrap();
        let f = f.unwrap_or_else(|| panic!("{name}: stream ends inside a frame at {pos}"));
        pos += n;
        if f.tag() == Tag::Message {
            out.push((
                MsgHeader2::decode(f.segment(0)).unwrap(),
                f.segment(SEG_FRONT).to_vec(),
                f.segment(SEG_DATA).len(),
            ));
        }
    }
    out
}

/// What `ceph_perf_msgr_client` sends: `MOSDOp(client_inc 0, tid 0, hobject "object-name"
/// in the default pg, epoch 0, flags 0)` plus `write(0, len)`, encoded with the connection's
/// features.
fn expected_op(len: u64, features: u64) -> MOSDOp {
    MOSDOp {
        features,
        ..MOSDOp::write(
            "object-name",
            ObjectLocator::default(),
            SPgId::default(),
            0,
            len,
        )
    }
}

#[test]
fn ceph_perf_capture_decodes_and_reencodes_identically() {
    const FEATURES: u64 = 0x3f07_ffff_fffd_ffff; // CLIENT_IDENT in the capture
    let mut ops_seen = 0;
    let mut replies_seen = 0;
    for (conn, size) in [("conn0", 4096u64), ("conn1", 65536)] {
        for (h, front, data_len) in messages(&format!("ceph-perf-msgr.{conn}.c2s.bin")) {
            assert_eq!(h.msg_type, MSG_OSD_OP);
            assert_eq!(h.version, 9, "Ceph 20 to a Squid+ peer sends v9");
            assert_eq!(h.compat_version, MOSDOp::COMPAT_VERSION);
            assert_eq!(h.priority, MOSDOp::PRIORITY);
            let m = MOSDOp::decode_front(&front, h.version).unwrap();
            assert_eq!(m, expected_op(size, FEATURES));
            assert_eq!(m.ops[0].extent_length(), data_len as u64);
            m.check_data(data_len).unwrap();
            assert_eq!(
                m.front_bytes(),
                front,
                "{conn} MOSDOp re-encodes identically"
            );
            let mut hh = m.header_for(h.tid);
            hh.seq = h.seq;
            hh.ack_seq = h.ack_seq;
            hh.flags = h.flags;
            assert_eq!(hh, h);
            ops_seen += 1;
        }
        for (h, front, data_len) in messages(&format!("ceph-perf-msgr.{conn}.s2c.bin")) {
            assert_eq!(h.msg_type, MSG_OSD_OPREPLY);
            assert_eq!(h.version, MOSDOpReply::HEAD_VERSION);
            assert_eq!(h.compat_version, MOSDOpReply::COMPAT_VERSION);
            assert_eq!(data_len, 0);
            let r = MOSDOpReply::decode_front(&front, h.version).unwrap();
            // The server answers before the op's final decode: no oid, no ops.
            assert_eq!(r, MOSDOpReply::default());
            assert_eq!(
                r.front_bytes(),
                front,
                "{conn} MOSDOpReply re-encodes identically"
            );
            replies_seen += 1;
        }
    }
    assert_eq!(ops_seen, 10, "8 × 4 KiB + 2 × 64 KiB ops");
    // ceph_perf_msgr_client shuts its messenger down right after the last send: only the
    // replies that arrived before that are on the wire.
    assert_eq!(replies_seen, 5);
}

#[test]
fn v8_is_v9_without_the_otel_context() {
    let m9 = expected_op(4096, 1);
    let m8 = MOSDOp {
        version: 8,
        ..m9.clone()
    };
    let (f8, f9) = (m8.front_bytes(), m9.front_bytes());
    assert_eq!(f9.len(), f8.len() + 7);
    assert_eq!(MOSDOp::decode_front(&f8, 8).unwrap(), m8);
    assert!(MOSDOp::decode_front(&f8, 9).is_err());
    assert!(matches!(
        MOSDOp::decode_front(&f8, 7),
        Err(DecodeError::InvalidValue { .. })
    ));
    assert_eq!(MOSDOp::version_for(0x3f07_ffff_fffd_ffff), 9);
    assert_eq!(MOSDOp::version_for(0x3f01_cfbf_7ffd_ffff), 8);
}

#[test]
fn reply_for_request_copies_what_ceph_copies() {
    let mut req = expected_op(4096, 0);
    req.flags = 0x27;
    req.retry_attempt = 2;
    req.ops[0].payload_len = 4096;
    let r = MOSDOpReply::for_request(&req, -2, 7, OSD_FLAG_ONDISK);
    assert_eq!(r.oid, "object-name");
    assert_eq!(r.flags, 0x20 | OSD_FLAG_ONDISK);
    assert_eq!(r.ops[0].payload_len, 0);
    assert_eq!(r.rvals, vec![0]);
    assert_eq!(r.retry_attempt, 2);
    let f = r.front_bytes();
    assert_eq!(MOSDOpReply::decode_front(&f, 8).unwrap(), r);
}

/// Offset of `num_ops` in a v9 front with the given oid length.
fn num_ops_at(front_oid_len: usize) -> usize {
    24 + 12 + 27 + 24 + 7 + 4 + 8 + 34 + 4 + front_oid_len
}

#[test]
fn truncated_and_oversized_op_vectors_are_typed_errors() {
    let m = expected_op(4096, 0);
    let f = m.front_bytes();
    let at = num_ops_at(m.oid.len());
    assert_eq!(u16::from_le_bytes([f[at], f[at + 1]]), 1);
    // claims 2 ops, holds 1 (then snaps etc.): the vector check fails before allocating
    let mut two = f.clone();
    two[at] = 200;
    assert!(matches!(
        MOSDOp::decode_front(&two, 9),
        Err(DecodeError::Truncated {
            what: "osd op vector",
            ..
        })
    ));
    let mut huge = f.clone();
    huge[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        MOSDOp::decode_front(&huge, 9),
        Err(DecodeError::TooLong {
            what: "osd op vector",
            ..
        })
    ));
    for cut in 0..f.len() {
        assert!(MOSDOp::decode_front(&f[..cut], 9).is_err(), "cut at {cut}");
    }
    let mut reply = MOSDOpReply::for_request(&m, 0, 0, OSD_FLAG_ONDISK).front_bytes();
    for cut in 0..reply.len() {
        assert!(MOSDOpReply::decode_front(&reply[..cut], 8).is_err());
    }
    // reply num_ops: after oid (4 + 11), pg (17), flags (8), result (4), eversion (12), epoch (4)
    let at = 4 + 11 + 17 + 8 + 4 + 12 + 4;
    reply[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        MOSDOpReply::decode_front(&reply, 8),
        Err(DecodeError::TooLong { .. })
    ));
    // op payloads longer than the data segment
    let mut w = expected_op(4096, 0);
    w.ops[0].payload_len = 4096;
    assert!(w.check_data(4096).is_ok());
    assert!(matches!(
        w.check_data(100),
        Err(DecodeError::Truncated { .. })
    ));
}

fn arb_op() -> impl Strategy<Value = OsdOp> {
    (
        any::<u16>(),
        any::<u32>(),
        prop::array::uniform28(any::<u8>()),
        any::<u32>(),
    )
        .prop_map(|(op, flags, args, payload_len)| OsdOp {
            op,
            flags,
            args,
            payload_len,
        })
}

fn arb_mosdop() -> impl Strategy<Value = MOSDOp> {
    (
        (
            8u16..=9,
            any::<u64>(),
            any::<u32>(),
            any::<i8>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (
            any::<u8>(),
            any::<i64>(),
            any::<u64>(),
            any::<i32>(),
            any::<[u64; 3]>(),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            "[a-z]{0,12}",
            "[a-z]{0,4}",
            any::<i64>(),
        ),
        (
            prop::collection::vec(arb_op(), 0..5),
            prop::collection::vec(any::<u64>(), 0..4),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<i32>(),
            any::<u64>(),
            any::<bool>(),
        ),
    )
        .prop_map(|(a, b, c, d, e)| MOSDOp {
            version: a.0,
            pgid: SPgId {
                pgid: PgId {
                    pool: a.1,
                    seed: a.2,
                    preferred: -1,
                },
                shard: a.3,
            },
            hash: a.4,
            osdmap_epoch: a.5,
            flags: c.0,
            reqid: ReqId {
                name_type: b.0,
                name_num: b.1,
                tid: b.2,
                inc: b.3,
            },
            trace: BlkinTrace {
                trace_id: b.4[0],
                span_id: b.4[1],
                parent_span_id: b.4[2],
            },
            otel_trace: if e.4 {
                OpaqueStruct::otel_invalid()
            } else {
                OpaqueStruct {
                    version: 1,
                    compat: 1,
                    body: vec![1; 26],
                }
            },
            client_inc: c.1,
            mtime: UTime { sec: c.1, nsec: 5 },
            oloc: ObjectLocator {
                pool: c.4,
                preferred: -1,
                key: c.3.clone(),
                nspace: c.3,
                hash: -1,
            },
            oid: c.2,
            ops: d.0,
            snap: e.0,
            snap_seq: e.1,
            snaps: d.1,
            retry_attempt: e.2,
            features: e.3,
        })
}

proptest! {
    #[test]
    fn mosdop_round_trips(m in arb_mosdop()) {
        let mut m = m;
        if m.version == 8 {
            m.otel_trace = OpaqueStruct::otel_invalid();
        }
        let f = m.front_bytes();
        prop_assert_eq!(MOSDOp::decode_front(&f, m.version).unwrap(), m);
    }

    #[test]
    fn mosdopreply_round_trips(
        ops in prop::collection::vec(arb_op(), 0..5),
        oid in "[a-z]{0,12}",
        flags in any::<i64>(),
        result in any::<i32>(),
        uv in any::<u64>(),
        redirect in prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
    ) {
        let r = MOSDOpReply {
            oid,
            flags,
            result,
            rvals: ops.iter().map(|o| o.flags as i32).collect(),
            ops,
            user_version: uv,
            replay_version: EVersion { version: uv, epoch: 3 },
            redirect: redirect.map(|body| OpaqueStruct { version: 1, compat: 1, body }),
            ..MOSDOpReply::default()
        };
        let f = r.front_bytes();
        prop_assert_eq!(MOSDOpReply::decode_front(&f, 8).unwrap(), r);
    }

    #[test]
    fn mosdop_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), v in 7u16..11) {
        let _ = MOSDOp::decode_front(&bytes, v);
        let _ = MOSDOpReply::decode_front(&bytes, v);
    }
}
