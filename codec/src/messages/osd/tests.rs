//! Unit tests of `osd.rs`.

use super::*;

/// `object_locator_t` decodes from version 6 up (newer versions append fields), and
/// refuses the pre-6 forms (no namespace or hash).
#[test]
fn object_locator_versions() {
    let l = ObjectLocator {
        pool: 3,
        key: "k".into(),
        ..ObjectLocator::default()
    };
    let mut b = Vec::new();
    l.encode(&mut b);
    assert_eq!(ObjectLocator::decode(&mut Decoder::new(&b)).unwrap(), l);
    b[0] = 7;
    assert_eq!(ObjectLocator::decode(&mut Decoder::new(&b)).unwrap(), l);
    b[0] = 5;
    assert!(matches!(
        ObjectLocator::decode(&mut Decoder::new(&b)),
        Err(DecodeError::InvalidValue { value: 5, .. })
    ));
}

#[test]
fn extent_ops_and_the_write_constructor() {
    let oloc = ObjectLocator {
        pool: 7,
        ..ObjectLocator::default()
    };
    let pgid = SPgId {
        pgid: PgId {
            pool: 7,
            seed: 0x1234,
            preferred: -1,
        },
        shard: NO_SHARD,
    };
    let w = MOSDOp::write("obj", oloc.clone(), pgid, 4096, 8192);
    assert_eq!((w.oid.as_str(), &w.oloc, w.pgid), ("obj", &oloc, pgid));
    assert_eq!(w.ops.len(), 1);
    assert_eq!(w.ops[0].op, OSD_OP_WRITE);
    assert_eq!(
        (w.ops[0].extent_offset(), w.ops[0].extent_length()),
        (4096, 8192)
    );
}

/// Ceph sends MOSDOp version 9 only to peers with both SERVER_SQUID bits (49 and 57).
#[test]
fn version_follows_the_squid_feature_mask() {
    assert_eq!(MOSDOp::version_for((1 << 49) | (1 << 57)), 9);
    assert_eq!(MOSDOp::version_for(1 << 49), 8);
    assert_eq!(MOSDOp::version_for(1 << 57), 8);
    assert_eq!(MOSDOp::version_for(0), 8);
}

/// The op and snapshot bounds are inclusive: exactly `MAX_OSD_OPS` ops and `MAX_SNAPS`
/// snapshots, with exactly the bytes they need, decode.
#[test]
fn op_and_snap_bounds_are_inclusive() {
    let b = vec![0u8; MAX_OSD_OPS * OSD_OP_LEN];
    assert_eq!(
        op_count(&mut Decoder::new(&b), MAX_OSD_OPS),
        Ok(MAX_OSD_OPS)
    );
    assert!(matches!(
        op_count(&mut Decoder::new(&b), MAX_OSD_OPS + 1),
        Err(DecodeError::TooLong { .. })
    ));
    assert_eq!(
        op_count(&mut Decoder::new(&b[1..]), MAX_OSD_OPS - 1),
        Ok(MAX_OSD_OPS - 1)
    );
    assert!(matches!(
        op_count(&mut Decoder::new(&b[1..]), MAX_OSD_OPS),
        Err(DecodeError::Truncated { .. })
    ));
    let mut m = MOSDOp {
        version: 8,
        snaps: vec![1; MAX_SNAPS],
        ..MOSDOp::default()
    };
    let mut f = Vec::new();
    m.encode_front(&mut f);
    assert_eq!(MOSDOp::decode_front(&f, 8).unwrap().snaps.len(), MAX_SNAPS);
    m.snaps.push(1);
    let mut f = Vec::new();
    m.encode_front(&mut f);
    assert!(matches!(
        MOSDOp::decode_front(&f, 8),
        Err(DecodeError::TooLong {
            what: "MOSDOp snaps",
            ..
        })
    ));
}

/// `MOSDOpReply(req, r, epoch, acktype)`: the request's oid, pg, ops (payload lengths
/// zeroed) and retry attempt, its flags with the ack bits replaced by `acktype`.
#[test]
fn reply_for_request() {
    let mut req = MOSDOp::write("obj", ObjectLocator::default(), SPgId::default(), 0, 10);
    req.pgid.pgid.seed = 42;
    req.flags = 0x20 | 0x1 | 0x4;
    req.retry_attempt = 2;
    req.ops[0].payload_len = 10;
    let r = MOSDOpReply::for_request(&req, -2, 77, OSD_FLAG_ONDISK);
    assert_eq!((r.oid.as_str(), r.pgid), ("obj", req.pgid.pgid));
    assert_eq!((r.result, r.osdmap_epoch, r.retry_attempt), (-2, 77, 2));
    assert_eq!(r.flags, 0x20 | OSD_FLAG_ONDISK);
    assert_eq!(r.ops.len(), 1);
    assert_eq!(r.ops[0].payload_len, 0);
    assert_eq!(r.rvals, vec![0]);
}
