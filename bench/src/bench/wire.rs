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

use super::cpu::{CoreFigures, CpuSide};
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
        Kind::Stats => Ok((Kind::StatsReply, stats_reply(cpu))),
        other => Err(BenchError::Peer(format!(
            "client sent {other:?}, which only a server sends"
        ))),
    }
}

/// What a server reports of its side in a `StatsReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// CPU nanoseconds of the server side's threads so far.
    pub cpu_ns: u64,
    /// Heap allocations of those threads so far, when the server counts them.
    pub allocs: Option<u64>,
    /// Per CPU: messages and CPU time of its reactor threads (engine transport).
    pub cores: Vec<CoreFigures>,
}

/// Most per-core entries a stats reply may carry.
const MAX_CORES: u64 = 4096;

/// The `StatsReply` payload for a side: little-endian `u64`s: CPU nanoseconds, allocations
/// (`u64::MAX`: not counted), the number of per-core entries, then per core its CPU,
/// messages and CPU nanoseconds.
pub fn stats_reply(cpu: &CpuSide) -> Vec<u8> {
    let cores = cpu.per_core();
    let mut words = vec![
        cpu.total_ns(),
        cpu.total_allocs().unwrap_or(u64::MAX),
        cores.len() as u64,
    ];
    for c in &cores {
        words.extend([c.cpu, c.msgs, c.cpu_ns]);
    }
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The figures in a `StatsReply` payload (see [`stats_reply`]; the first word alone, or the
/// first two, are accepted from older servers).
pub fn parse_stats_reply(payload: &[u8]) -> Result<ServerStats, BenchError> {
    let bad = || {
        BenchError::Peer(format!(
            "stats reply of {} bytes does not hold the stats words",
            payload.len()
        ))
    };
    if payload.len() % 8 != 0 || payload.is_empty() {
        return Err(bad());
    }
    let words: Vec<u64> = payload
        .chunks_exact(8)
        .filter_map(|b| <[u8; 8]>::try_from(b).ok().map(u64::from_le_bytes))
        .collect();
    let n = words.get(2).copied().unwrap_or(0);
    if n > MAX_CORES || (words.len() > 2 && words.len() as u64 != 3 + 3 * n) {
        return Err(bad());
    }
    Ok(ServerStats {
        cpu_ns: words[0],
        allocs: words.get(1).copied().filter(|&a| a != u64::MAX),
        cores: words
            .get(3..)
            .unwrap_or_default()
            .chunks_exact(3)
            .map(|c| CoreFigures {
                cpu: c[0],
                msgs: c[1],
                cpu_ns: c[2],
            })
            .collect(),
    })
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
        // a core of this thread's, counted
        let slot = cpu.register_core(3);
        slot.msgs.fetch_add(5, std::sync::atomic::Ordering::Relaxed);
        let s = parse_stats_reply(&stats_reply(&cpu)).expect("parses");
        assert_eq!(s.cores.len(), 1);
        assert_eq!((s.cores[0].cpu, s.cores[0].msgs), (3, 5));
        // older servers: CPU alone, CPU and allocations
        let old = parse_stats_reply(&7u64.to_le_bytes()).expect("one word");
        assert_eq!((old.cpu_ns, old.allocs, old.cores.len()), (7, None, 0));
        // a count of cores that the payload does not hold
        let mut lie = stats_reply(&cpu);
        lie[16] = 9;
        assert!(parse_stats_reply(&lie).is_err());
        assert!(server_answer(Kind::Reply, &cpu).is_err());
    }
}
