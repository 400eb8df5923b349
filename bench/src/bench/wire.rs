//! The bench's own little protocol, the same over every transport and mode.
//!
//! The client sends `Data` messages (a data segment of the cell size; in msgr2 modes the
//! `ceph_msg_header2` is the small header, in raw mode the 16-byte [`RawHeader`]); the server
//! answers each with a `Reply` carrying the same tid and no payload. `Stats` asks the server
//! for its side's CPU time so far; the `StatsReply` carries it as a little-endian `u64` of
//! nanoseconds, followed by the side's heap allocations (another `u64`) when the server
//! counts them (see `msgr2_engine::alloc_count`). The client asks before and after each cell, so the server's CPU per GB is
//! known even when it runs in another process or on another host.
//!
//! [`RawHeader`]: msgr2_codec::raw::RawHeader

use msgr2_codec::data::Data;
use msgr2_proto::Message;

use super::cpu::CpuSide;
use super::error::BenchError;

/// A bench message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Client → server: the payload being measured.
    Data,
    /// Server → client: acknowledges `Data` with the same tid.
    Reply,
    /// Client → server: "how much CPU has your side used?".
    Stats,
    /// Server → client: 8 bytes, the server side's CPU nanoseconds.
    StatsReply,
}

/// msgr2 message types of the bench kinds (unused by Ceph).
const MSG_TYPES: [(Kind, u16); 4] = [
    (Kind::Data, 0x4d01),
    (Kind::Reply, 0x4d02),
    (Kind::Stats, 0x4d03),
    (Kind::StatsReply, 0x4d04),
];

impl Kind {
    /// The msgr2 `msg_type`.
    pub fn msg_type(self) -> u16 {
        MSG_TYPES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or(0, |(_, t)| *t)
    }

    /// The kind of a msgr2 `msg_type`.
    pub fn from_msg_type(t: u16) -> Option<Self> {
        MSG_TYPES.iter().find(|(_, x)| *x == t).map(|(k, _)| *k)
    }

    /// The raw header `flags` value.
    pub fn raw_flags(self) -> u32 {
        u32::from(self.msg_type())
    }

    /// The kind of a raw header `flags` value.
    pub fn from_raw_flags(f: u32) -> Option<Self> {
        u16::try_from(f).ok().and_then(Self::from_msg_type)
    }

    /// A msgr2 message of this kind.
    pub fn message(self, tid: u64, data: impl Into<Data>) -> Message {
        let mut m = Message::new(self.msg_type(), 1, 1, Vec::new());
        m.header.tid = tid;
        m.data = data.into();
        m
    }
}

/// What the server sends back for a message of `kind` (its payload is not needed).
pub fn server_answer(kind: Kind, cpu: &CpuSide) -> Result<(Kind, Vec<u8>), BenchError> {
    match kind {
        Kind::Data => Ok((Kind::Reply, Vec::new())),
        Kind::Stats => {
            let mut p = cpu.total_ns().to_le_bytes().to_vec();
            if let Some(a) = cpu.total_allocs() {
                p.extend_from_slice(&a.to_le_bytes());
            }
            Ok((Kind::StatsReply, p))
        }
        other => Err(BenchError::Peer(format!(
            "client sent {other:?}, which only a server sends"
        ))),
    }
}

/// What a server reports of its side in a `StatsReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// CPU nanoseconds of the server side's threads so far.
    pub cpu_ns: u64,
    /// Heap allocations of those threads so far, when the server counts them.
    pub allocs: Option<u64>,
}

/// The figures in a `StatsReply` payload: CPU nanoseconds as a little-endian `u64`, then
/// optionally the allocation count as another.
pub fn parse_stats_reply(payload: &[u8]) -> Result<ServerStats, BenchError> {
    let word = |i: usize| {
        payload
            .get(i * 8..i * 8 + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    match payload.len() {
        8 | 16 => Ok(ServerStats {
            cpu_ns: word(0).unwrap_or_default(),
            allocs: word(1),
        }),
        n => Err(BenchError::Peer(format!(
            "stats reply of {n} bytes (expected 8 or 16)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_server_answers() {
        for (k, _) in MSG_TYPES {
            assert_eq!(Kind::from_msg_type(k.msg_type()), Some(k));
            assert_eq!(Kind::from_raw_flags(k.raw_flags()), Some(k));
        }
        assert_eq!(Kind::from_raw_flags(1 << 20), None);
        let cpu = CpuSide::new();
        assert_eq!(
            server_answer(Kind::Data, &cpu).ok(),
            Some((Kind::Reply, vec![]))
        );
        let (k, p) = server_answer(Kind::Stats, &cpu).expect("stats");
        assert_eq!(k, Kind::StatsReply);
        assert!(parse_stats_reply(&p).is_ok());
        assert!(parse_stats_reply(&[1, 2]).is_err());
        assert!(server_answer(Kind::Reply, &cpu).is_err());
    }
}
