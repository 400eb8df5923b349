//! The OSD data path: `MOSDOp` (client → OSD) and `MOSDOpReply` (OSD → client).
//!
//! Layouts as Ceph 16, 18 and 20 send them (`src/messages/MOSDOp.h`, `MOSDOpReply.h`), checked
//! byte for byte against a capture of Ceph 20.2.4's `ceph_perf_msgr_client` talking to its
//! `ceph_perf_msgr_server` (`tests/data/ceph-perf/`):
//!
//! * `MOSDOp` version 8 (Ceph 16/18, and Ceph 20 towards a peer without `SERVER_SQUID`) and
//!   version 9 (Ceph 19+ towards a Squid-or-newer peer: v8 plus an OpenTelemetry span
//!   context), compat 3. The front holds the pg, object, flags, request id, traces and the
//!   fixed-size `ceph_osd_op`s; write payloads travel in the data segment, each op's
//!   `payload_len` bytes in op order (plus any message data the sender added directly).
//! * `MOSDOpReply` version 8, compat 2: result, versions, the ops with their return values.
//!
//! Every fixed-size piece is checked against the bytes present before anything is allocated;
//! more than [`MAX_OSD_OPS`] ops is [`DecodeError::TooLong`].

mod head;
pub use head::MOSDOpHead;

use super::{put_string, MessageFront};
use crate::encoding::{len_u32, DecodeError, Decoder, Encode};
use crate::msg::PRIO_DEFAULT;
use crate::payload::UTime;

/// `CEPH_MSG_OSD_OP`: [`MOSDOp`].
pub const MSG_OSD_OP: u16 = 0x2a;
/// `CEPH_MSG_OSD_OPREPLY`: [`MOSDOpReply`].
pub const MSG_OSD_OPREPLY: u16 = 0x2b;

/// `CEPH_OSD_OP_WRITE` (`CEPH_OSD_OP_MODE_WR | CEPH_OSD_OP_TYPE_DATA | 1`).
pub const OSD_OP_WRITE: u16 = 0x2201;
/// `CEPH_OSD_OP_READ`.
pub const OSD_OP_READ: u16 = 0x1201;
/// `CEPH_NOSNAP`: the head object, not a snapshot.
pub const NOSNAP: u64 = u64::MAX - 1;
/// `shard_id_t::NO_SHARD`.
pub const NO_SHARD: i8 = -1;
/// Most ops one message may carry here. Ceph's limit (`osd_max_ops`-like checks happen in the
/// OSD) is far lower in practice; a peer claiming more is refused before any allocation.
pub const MAX_OSD_OPS: usize = 1024;
/// Most snapshot ids a snap context may list here.
pub const MAX_SNAPS: usize = 65_536;

/// Encoded size of one `ceph_osd_op`.
pub const OSD_OP_LEN: usize = 38;
/// Size of the op-specific union inside `ceph_osd_op`.
pub const OSD_OP_ARGS_LEN: usize = 28;

/// `pg_t`: pool and placement seed (encoded as version 1: `u8 1, u64 pool, u32 seed,
/// i32 preferred` where `preferred` is always -1 since Firefly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgId {
    /// Pool id.
    pub pool: u64,
    /// Placement seed.
    pub seed: u32,
    /// Obsolete preferred OSD, -1.
    pub preferred: i32,
}

impl Default for PgId {
    fn default() -> Self {
        Self {
            pool: 0,
            seed: 0,
            preferred: -1,
        }
    }
}

impl PgId {
    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.pool);
        out.put_u32(self.seed);
        out.put_i32(self.preferred);
    }

    /// Decodes one `pg_t`.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = d.u8("pg_t version")?;
        if v != 1 {
            return Err(DecodeError::InvalidValue {
                what: "pg_t version",
                value: u64::from(v),
            });
        }
        Ok(Self {
            pool: d.u64("pg_t pool")?,
            seed: d.u32("pg_t seed")?,
            preferred: d.i32("pg_t preferred")?,
        })
    }
}

/// `spg_t`: a pg and an erasure-code shard (`ENCODE_START(1, 1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SPgId {
    /// The placement group.
    pub pgid: PgId,
    /// Shard, [`NO_SHARD`] for replicated pools.
    pub shard: i8,
}

impl Default for SPgId {
    fn default() -> Self {
        Self {
            pgid: PgId::default(),
            shard: NO_SHARD,
        }
    }
}

impl SPgId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_versioned(1, 1, |o| {
            self.pgid.encode(o);
            o.put_u8(self.shard.to_le_bytes()[0]);
        });
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let (_, mut b) = d.versioned(1, "spg_t")?;
        Ok(Self {
            pgid: PgId::decode(&mut b)?,
            shard: i8::from_le_bytes([b.u8("spg_t shard")?]),
        })
    }
}

/// `osd_reqid_t`: who sent a request (`entity_name_t`), its tid and client incarnation
/// (`ENCODE_START(2, 2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ReqId {
    /// `entity_name_t` type (`CEPH_ENTITY_TYPE_CLIENT` = 8; 0 when unset).
    pub name_type: u8,
    /// `entity_name_t` number.
    pub name_num: i64,
    /// Request tid.
    pub tid: u64,
    /// Client incarnation.
    pub inc: i32,
}

impl ReqId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_versioned(2, 2, |o| {
            o.put_u8(self.name_type);
            o.put_i64(self.name_num);
            o.put_u64(self.tid);
            o.put_i32(self.inc);
        });
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let (_, mut b) = d.versioned(2, "osd_reqid_t")?;
        Ok(Self {
            name_type: b.u8("reqid name type")?,
            name_num: b.i64("reqid name num")?,
            tid: b.u64("reqid tid")?,
            inc: b.i32("reqid inc")?,
        })
    }
}

/// `blkin_trace_info`: the Zipkin/blkin trace ids every message carries when the
/// `BLKIN_TRACING` feature is shared (all of Ceph 16+); zero when not tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct BlkinTrace {
    /// Trace id.
    pub trace_id: u64,
    /// Span id.
    pub span_id: u64,
    /// Parent span id.
    pub parent_span_id: u64,
}

impl BlkinTrace {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.trace_id);
        out.put_u64(self.span_id);
        out.put_u64(self.parent_span_id);
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            trace_id: d.u64("blkin trace_id")?,
            span_id: d.u64("blkin span_id")?,
            parent_span_id: d.u64("blkin parent_span_id")?,
        })
    }
}

/// An `ENCODE_START` struct kept as its version, compat and body bytes: used for parts we
/// carry but do not interpret (the OpenTelemetry span context, a redirect), so they
/// re-encode byte-identically.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaqueStruct {
    /// `struct_v`.
    pub version: u8,
    /// `struct_compat`.
    pub compat: u8,
    /// The body (`struct_len` bytes).
    pub body: Vec<u8>,
}

impl OpaqueStruct {
    /// The span context Ceph sends when not tracing: `jspan_context` version 1 with
    /// `is_valid = false`.
    pub fn otel_invalid() -> Self {
        Self {
            version: 1,
            compat: 1,
            body: vec![0],
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_versioned(self.version, self.compat, |o| {
            o.extend_from_slice(&self.body)
        });
    }

    fn decode(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let version = d.u8(what)?;
        let compat = d.u8(what)?;
        let body = d.blob(what)?.to_vec();
        Ok(Self {
            version,
            compat,
            body,
        })
    }
}

/// `object_locator_t` (`ENCODE_START(6, 3)`): pool, key, namespace and hash position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectLocator {
    /// Pool id.
    pub pool: i64,
    /// Obsolete preferred OSD, -1.
    pub preferred: i32,
    /// Locator key (empty: use the object name).
    pub key: String,
    /// Namespace.
    pub nspace: String,
    /// Explicit hash position, -1 for "hash the name".
    pub hash: i64,
}

impl Default for ObjectLocator {
    fn default() -> Self {
        Self {
            pool: 0,
            preferred: -1,
            key: String::new(),
            nspace: String::new(),
            hash: -1,
        }
    }
}

impl ObjectLocator {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_versioned(6, 3, |o| {
            o.put_i64(self.pool);
            o.put_i32(self.preferred);
            put_string(o, &self.key);
            put_string(o, &self.nspace);
            o.put_i64(self.hash);
        });
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let (v, mut b) = d.versioned(6, "object_locator_t")?;
        if v < 6 {
            return Err(DecodeError::InvalidValue {
                what: "object_locator_t version",
                value: u64::from(v),
            });
        }
        Ok(Self {
            pool: b.i64("oloc pool")?,
            preferred: b.i32("oloc preferred")?,
            key: b.string("oloc key")?,
            nspace: b.string("oloc nspace")?,
            hash: b.i64("oloc hash")?,
        })
    }
}

/// `eversion_t`: `u64 version`, `u32 epoch` (raw, 12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct EVersion {
    /// Version within the epoch.
    pub version: u64,
    /// OSD map epoch.
    pub epoch: u32,
}

impl EVersion {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.version);
        out.put_u32(self.epoch);
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: d.u64("eversion version")?,
            epoch: d.u32("eversion epoch")?,
        })
    }
}

/// One `ceph_osd_op` (packed, 38 bytes): opcode, flags, the op-specific union and the length
/// of this op's input payload in the data segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct OsdOp {
    /// Opcode (`CEPH_OSD_OP_*`, e.g. [`OSD_OP_WRITE`]).
    pub op: u16,
    /// `CEPH_OSD_OP_FLAG_*`.
    pub flags: u32,
    /// The op-specific union, raw.
    pub args: [u8; OSD_OP_ARGS_LEN],
    /// Bytes of this op's input (request) payload in the data segment.
    pub payload_len: u32,
}

impl OsdOp {
    /// An extent op (`read`, `write`, ...): `offset`, `length`, truncate size 0, truncate seq 0.
    pub fn extent(op: u16, offset: u64, length: u64) -> Self {
        let mut args = [0u8; OSD_OP_ARGS_LEN];
        args[..8].copy_from_slice(&offset.to_le_bytes());
        args[8..16].copy_from_slice(&length.to_le_bytes());
        Self {
            op,
            flags: 0,
            args,
            payload_len: 0,
        }
    }

    /// The extent's offset (meaningful for extent ops).
    pub fn extent_offset(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.args[..8]);
        u64::from_le_bytes(b)
    }

    /// The extent's length (meaningful for extent ops).
    pub fn extent_length(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.args[8..16]);
        u64::from_le_bytes(b)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.op);
        out.put_u32(self.flags);
        out.extend_from_slice(&self.args);
        out.put_u32(self.payload_len);
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            op: d.u16("osd op")?,
            flags: d.u32("osd op flags")?,
            args: d.array("osd op args")?,
            payload_len: d.u32("osd op payload_len")?,
        })
    }
}

/// Reads an op count and checks it against [`MAX_OSD_OPS`] and the bytes present.
fn op_count(d: &mut Decoder<'_>, n: usize) -> Result<usize, DecodeError> {
    if n > MAX_OSD_OPS {
        return Err(DecodeError::TooLong {
            what: "osd op vector",
            len: n as u64,
            limit: MAX_OSD_OPS as u64,
        });
    }
    let need = n * OSD_OP_LEN;
    if need > d.remaining() {
        return Err(DecodeError::Truncated {
            what: "osd op vector",
            offset: d.position(),
            need,
            have: d.remaining(),
        });
    }
    Ok(n)
}

fn put_utime(out: &mut Vec<u8>, t: UTime) {
    out.put_u32(t.sec);
    out.put_u32(t.nsec);
}

fn utime(d: &mut Decoder<'_>) -> Result<UTime, DecodeError> {
    Ok(UTime {
        sec: d.u32("utime sec")?,
        nsec: d.u32("utime nsec")?,
    })
}

/// `MOSDOp` (type 0x2a): a client request to an OSD.
///
/// Front (version 8): `spg_t pgid`, `u32 hash`, `u32 osdmap_epoch`, `u32 flags`,
/// `osd_reqid_t reqid`, blkin trace; version 9 adds the OpenTelemetry span context here;
/// then `u32 client_inc`, `utime_t mtime`, `object_locator_t`, `object_t oid` (a string),
/// `u16 num_ops` + ops, `snapid_t snap`, `snap_seq`, `vector<snapid_t> snaps`,
/// `i32 retry_attempt`, `u64 features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MOSDOp {
    /// Encoding version: 8 or 9 (see [`MOSDOp::version_for`]).
    pub version: u16,
    /// Target placement group (actual pg and shard).
    pub pgid: SPgId,
    /// The object's raw hash.
    pub hash: u32,
    /// Sender's OSD map epoch.
    pub osdmap_epoch: u32,
    /// `CEPH_OSD_FLAG_*`.
    pub flags: u32,
    /// Explicit request id (zero: derived from the sender and header tid).
    pub reqid: ReqId,
    /// blkin trace.
    pub trace: BlkinTrace,
    /// OpenTelemetry span context (version 9 only; ignored when encoding version 8).
    pub otel_trace: OpaqueStruct,
    /// Client incarnation.
    pub client_inc: u32,
    /// Modification time for writes.
    pub mtime: UTime,
    /// Object locator.
    pub oloc: ObjectLocator,
    /// Object name.
    pub oid: String,
    /// The ops.
    pub ops: Vec<OsdOp>,
    /// Snapshot read from ([`NOSNAP`] for the head).
    pub snap: u64,
    /// Writer's snap context sequence.
    pub snap_seq: u64,
    /// Writer's snap context snapshots.
    pub snaps: Vec<u64>,
    /// Retry attempt, -1 when unknown.
    pub retry_attempt: i32,
    /// Sender's feature bits (0: use the connection's).
    pub features: u64,
}

impl Default for MOSDOp {
    fn default() -> Self {
        Self {
            version: Self::HEAD_VERSION,
            pgid: SPgId::default(),
            hash: 0,
            osdmap_epoch: 0,
            flags: 0,
            reqid: ReqId::default(),
            trace: BlkinTrace::default(),
            otel_trace: OpaqueStruct::otel_invalid(),
            client_inc: 0,
            mtime: UTime::default(),
            oloc: ObjectLocator::default(),
            oid: String::new(),
            ops: Vec::new(),
            snap: NOSNAP,
            snap_seq: 0,
            snaps: Vec::new(),
            retry_attempt: -1,
            features: 0,
        }
    }
}

/// `CEPH_FEATUREMASK_SERVER_SQUID`: bit 49 with incarnation 2 (bit 57), `ceph_features.h`.
pub const FEATURE_SERVER_SQUID: u64 = (1 << 49) | (1 << 57);

impl MOSDOp {
    /// The version Ceph picks for a peer with `features`: 9 if it has `SERVER_SQUID`, else 8.
    pub fn version_for(peer_features: u64) -> u16 {
        if peer_features & FEATURE_SERVER_SQUID == FEATURE_SERVER_SQUID {
            9
        } else {
            8
        }
    }

    /// A write of `len` bytes at `off` to `oid`, laid out like Ceph's `MOSDOp::write` (one
    /// [`OSD_OP_WRITE`] op whose payload travels as message data with `payload_len` 0).
    pub fn write(oid: &str, oloc: ObjectLocator, pgid: SPgId, off: u64, len: u64) -> Self {
        Self {
            oid: oid.to_owned(),
            oloc,
            pgid,
            ops: vec![OsdOp::extent(OSD_OP_WRITE, off, len)],
            ..Self::default()
        }
    }

    /// Sum of the ops' input payload lengths: the bytes of the data segment that belong to
    /// the ops. A data segment shorter than this is an error ([`MOSDOp::check_data`]).
    pub fn ops_payload_len(&self) -> u64 {
        self.ops.iter().map(|o| u64::from(o.payload_len)).sum()
    }

    /// Checks that a data segment of `data_len` bytes holds every op's input payload.
    pub fn check_data(&self, data_len: usize) -> Result<(), DecodeError> {
        let need = self.ops_payload_len();
        if need > data_len as u64 {
            return Err(DecodeError::Truncated {
                what: "MOSDOp op payloads in data",
                offset: 0,
                need: usize::try_from(need).unwrap_or(usize::MAX),
                have: data_len,
            });
        }
        Ok(())
    }

    /// The header for this message with its own version (8 or 9).
    pub fn header_for(&self, tid: u64) -> crate::msg::MsgHeader2 {
        let mut h = Self::header(tid);
        h.version = self.version;
        h
    }
}

impl MessageFront for MOSDOp {
    const TYPE: u16 = MSG_OSD_OP;
    const HEAD_VERSION: u16 = 9;
    const COMPAT_VERSION: u16 = 3;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, out: &mut Vec<u8>) {
        self.pgid.encode(out);
        out.put_u32(self.hash);
        out.put_u32(self.osdmap_epoch);
        out.put_u32(self.flags);
        self.reqid.encode(out);
        self.trace.encode(out);
        if self.version >= 9 {
            self.otel_trace.encode(out);
        }
        out.put_u32(self.client_inc);
        put_utime(out, self.mtime);
        self.oloc.encode(out);
        put_string(out, &self.oid);
        let n = u16::try_from(self.ops.len()).expect("more than 65535 ops in one MOSDOp");
        out.put_u16(n);
        for op in &self.ops {
            op.encode(out);
        }
        out.put_u64(self.snap);
        out.put_u64(self.snap_seq);
        out.put_u32(len_u32(self.snaps.len()));
        for s in &self.snaps {
            out.put_u64(*s);
        }
        out.put_i32(self.retry_attempt);
        out.put_u64(self.features);
    }

    fn decode_front(front: &[u8], header_version: u16) -> Result<Self, DecodeError> {
        if !(8..=9).contains(&header_version) {
            return Err(DecodeError::InvalidValue {
                what: "MOSDOp version (8 or 9 supported)",
                value: u64::from(header_version),
            });
        }
        let mut d = Decoder::new(front);
        let pgid = SPgId::decode(&mut d)?;
        let hash = d.u32("MOSDOp hash")?;
        let osdmap_epoch = d.u32("MOSDOp osdmap_epoch")?;
        let flags = d.u32("MOSDOp flags")?;
        let reqid = ReqId::decode(&mut d)?;
        let trace = BlkinTrace::decode(&mut d)?;
        let otel_trace = if header_version >= 9 {
            OpaqueStruct::decode(&mut d, "MOSDOp otel trace")?
        } else {
            OpaqueStruct::otel_invalid()
        };
        let client_inc = d.u32("MOSDOp client_inc")?;
        let mtime = utime(&mut d)?;
        let oloc = ObjectLocator::decode(&mut d)?;
        let oid = d.string("MOSDOp oid")?;
        let n = usize::from(d.u16("MOSDOp num_ops")?);
        let n = op_count(&mut d, n)?;
        let ops = (0..n)
            .map(|_| OsdOp::decode(&mut d))
            .collect::<Result<Vec<_>, _>>()?;
        let snap = d.u64("MOSDOp snap")?;
        let snap_seq = d.u64("MOSDOp snap_seq")?;
        let ns = d.count(8, "MOSDOp snaps")?;
        if ns > MAX_SNAPS {
            return Err(DecodeError::TooLong {
                what: "MOSDOp snaps",
                len: ns as u64,
                limit: MAX_SNAPS as u64,
            });
        }
        let snaps = (0..ns)
            .map(|_| d.u64("MOSDOp snap id"))
            .collect::<Result<Vec<_>, _>>()?;
        let retry_attempt = d.i32("MOSDOp retry_attempt")?;
        let features = d.u64("MOSDOp features")?;
        d.finish("MOSDOp")?;
        Ok(Self {
            version: header_version,
            pgid,
            hash,
            osdmap_epoch,
            flags,
            reqid,
            trace,
            otel_trace,
            client_inc,
            mtime,
            oloc,
            oid,
            ops,
            snap,
            snap_seq,
            snaps,
            retry_attempt,
            features,
        })
    }
}

/// `MOSDOpReply` (type 0x2b): an OSD's answer to an [`MOSDOp`], matched by the header tid.
///
/// Front (version 8): `object_t oid`, `pg_t pgid`, `i64 flags`, `i32 result`,
/// `eversion_t bad_replay_version`, `u32 osdmap_epoch`, `u32 num_ops` + ops,
/// `i32 retry_attempt`, one `i32 rval` per op, `eversion_t replay_version`,
/// `u64 user_version`, `bool do_redirect` (+ `request_redirect_t`), blkin trace. Output
/// payloads travel in the data segment (each op's `payload_len` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MOSDOpReply {
    /// Object name (as the request named it).
    pub oid: String,
    /// Placement group.
    pub pgid: PgId,
    /// `CEPH_OSD_FLAG_*` of the request, with the ack type (`ONDISK`/`ACK`) set.
    pub flags: i64,
    /// Result: 0 or a negative errno.
    pub result: i32,
    /// Legacy replay version.
    pub bad_replay_version: EVersion,
    /// OSD map epoch.
    pub osdmap_epoch: u32,
    /// The request's ops (payload lengths now describe output data).
    pub ops: Vec<OsdOp>,
    /// The request's retry attempt.
    pub retry_attempt: i32,
    /// One return value per op (same length as `ops`).
    pub rvals: Vec<i32>,
    /// Version of the object after the op.
    pub replay_version: EVersion,
    /// User-visible version.
    pub user_version: u64,
    /// `request_redirect_t` when the OSD redirects the client.
    pub redirect: Option<OpaqueStruct>,
    /// blkin trace.
    pub trace: BlkinTrace,
}

impl Default for MOSDOpReply {
    fn default() -> Self {
        Self {
            oid: String::new(),
            pgid: PgId::default(),
            flags: 0,
            result: 0,
            bad_replay_version: EVersion::default(),
            osdmap_epoch: 0,
            ops: Vec::new(),
            retry_attempt: -1,
            rvals: Vec::new(),
            replay_version: EVersion::default(),
            user_version: 0,
            redirect: None,
            trace: BlkinTrace::default(),
        }
    }
}

/// `CEPH_OSD_FLAG_ACK`.
pub const OSD_FLAG_ACK: i64 = 0x1;
/// `CEPH_OSD_FLAG_ONNVRAM`.
pub const OSD_FLAG_ONNVRAM: i64 = 0x2;
/// `CEPH_OSD_FLAG_ONDISK`.
pub const OSD_FLAG_ONDISK: i64 = 0x4;

impl MOSDOpReply {
    /// The reply Ceph's `MOSDOpReply(req, r, epoch, acktype, ignore_out_data)` builds for
    /// `req`: its oid, pg, ops (payload lengths zeroed) and retry attempt, the request's
    /// flags without `ONDISK|ONNVRAM|ACK` plus `acktype`.
    pub fn for_request(req: &MOSDOp, result: i32, epoch: u32, acktype: i64) -> Self {
        let ops: Vec<OsdOp> = req
            .ops
            .iter()
            .map(|o| OsdOp {
                payload_len: 0,
                ..*o
            })
            .collect();
        Self {
            oid: req.oid.clone(),
            pgid: req.pgid.pgid,
            flags: (i64::from(req.flags) & !(OSD_FLAG_ONDISK | OSD_FLAG_ONNVRAM | OSD_FLAG_ACK))
                | acktype,
            result,
            osdmap_epoch: epoch,
            rvals: vec![0; ops.len()],
            ops,
            retry_attempt: req.retry_attempt,
            ..Self::default()
        }
    }
}

impl MessageFront for MOSDOpReply {
    const TYPE: u16 = MSG_OSD_OPREPLY;
    const HEAD_VERSION: u16 = 8;
    const COMPAT_VERSION: u16 = 2;
    const PRIORITY: u16 = PRIO_DEFAULT;

    fn encode_front(&self, out: &mut Vec<u8>) {
        put_string(out, &self.oid);
        self.pgid.encode(out);
        out.put_i64(self.flags);
        out.put_i32(self.result);
        self.bad_replay_version.encode(out);
        out.put_u32(self.osdmap_epoch);
        out.put_u32(len_u32(self.ops.len()));
        for op in &self.ops {
            op.encode(out);
        }
        out.put_i32(self.retry_attempt);
        for i in 0..self.ops.len() {
            out.put_i32(self.rvals.get(i).copied().unwrap_or(0));
        }
        self.replay_version.encode(out);
        out.put_u64(self.user_version);
        out.put_bool(self.redirect.is_some());
        if let Some(r) = &self.redirect {
            r.encode(out);
        }
        self.trace.encode(out);
    }

    fn decode_front(front: &[u8], header_version: u16) -> Result<Self, DecodeError> {
        if header_version != 8 {
            return Err(DecodeError::InvalidValue {
                what: "MOSDOpReply version (8 supported)",
                value: u64::from(header_version),
            });
        }
        let mut d = Decoder::new(front);
        let oid = d.string("MOSDOpReply oid")?;
        let pgid = PgId::decode(&mut d)?;
        let flags = d.i64("MOSDOpReply flags")?;
        let result = d.i32("MOSDOpReply result")?;
        let bad_replay_version = EVersion::decode(&mut d)?;
        let osdmap_epoch = d.u32("MOSDOpReply osdmap_epoch")?;
        let n = d.u32("MOSDOpReply num_ops")? as usize;
        let n = op_count(&mut d, n)?;
        let ops = (0..n)
            .map(|_| OsdOp::decode(&mut d))
            .collect::<Result<Vec<_>, _>>()?;
        let retry_attempt = d.i32("MOSDOpReply retry_attempt")?;
        let rvals = (0..n)
            .map(|_| d.i32("MOSDOpReply rval"))
            .collect::<Result<Vec<_>, _>>()?;
        let replay_version = EVersion::decode(&mut d)?;
        let user_version = d.u64("MOSDOpReply user_version")?;
        let redirect = if d.bool("MOSDOpReply do_redirect")? {
            Some(OpaqueStruct::decode(&mut d, "MOSDOpReply redirect")?)
        } else {
            None
        };
        let trace = BlkinTrace::decode(&mut d)?;
        d.finish("MOSDOpReply")?;
        Ok(Self {
            oid,
            pgid,
            flags,
            result,
            bad_replay_version,
            osdmap_epoch,
            ops,
            retry_attempt,
            rvals,
            replay_version,
            user_version,
            redirect,
            trace,
        })
    }
}

#[cfg(test)]
mod tests;
