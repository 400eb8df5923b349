//! `MonMap` (`src/mon/MonMap.{h,cc}`) and the `MMonMap` message that carries it.

use super::auth_policy::MonAuthPolicy;
use super::{put_string, put_string_map, put_strings, string_map, strings, Uuid, MIN_STRING};
use super::{CephStamp, MessageFront, MSG_MON_MAP};
use crate::addr::{AddrType, EntityAddr, EntityAddrVec};
use crate::encoding::{len_u32, DecodeError, Decoder, Encode};
use crate::msg::PRIO_HIGH;
use crate::payload::UTime;
use std::collections::BTreeMap;
use std::fmt;

/// `MonMap` encoding version Pacific through Reef write for peers with `SERVER_NAUTILUS` and
/// `MONENC`, which every msgr2 peer has; [`MonMap::encode`] writes it for a map without a
/// cephx policy.
pub const MONMAP_ENCODING_VERSION: u8 = 9;
/// The version Ceph 19.2.6 and later write: version 9 plus the cephx policy
/// ([`MonAuthPolicy`]); also the highest version [`MonMap::decode`] understands fully (newer
/// versions decode, their extra trailing fields are skipped).
pub const MONMAP_AUTH_VERSION: u8 = 10;
/// `struct_compat` Pacific writes with version 9.
const MONMAP_COMPAT: u8 = 6;
/// `mon_info_t` version Pacific writes for Nautilus-or-later peers, and its compat.
const MON_INFO_VERSION: u8 = 5;
const MON_INFO_COMPAT: u8 = 1;
/// `mon_info_t` version with `time_added` (Squid and later).
const MON_INFO_TIME_ADDED_VERSION: u8 = 6;
/// Highest `mon_info_t` version we decode fully (Ceph's `DECODE_START(6, ...)`).
const MON_INFO_SUPPORTED: u8 = 6;
/// Smallest encodings, for bounding hostile counts before allocating: an `entity_addr_t`,
/// a versioned struct header.
const MIN_ADDR: usize = crate::addr::MIN_ADDR_ENCODED_LEN;
const MIN_VERSIONED: usize = 6;
/// Smallest `map<string, mon_info_t>` entry: an empty name and a versioned header.
const MIN_MON_INFO_ENTRY: usize = MIN_STRING + MIN_VERSIONED;
/// Election strategy `CLASSIC`, the default for maps older than version 8.
const STRATEGY_CLASSIC: u8 = 1;

/// `ceph::features::mon` bits used to infer `min_mon_release` from maps older than v7.
const MON_FEATURE_KRAKEN: u64 = 1; // bit 0
const MON_FEATURE_LUMINOUS: u64 = 1 << 1;
const MON_FEATURE_MIMIC: u64 = 1 << 2;
const MON_FEATURE_NAUTILUS: u64 = 1 << 4;
const MON_FEATURE_OCTOPUS: u64 = 1 << 5;
const MON_FEATURE_PACIFIC: u64 = 1 << 6;
const MON_FEATURE_QUINCY: u64 = 1 << 8;
const MON_FEATURE_REEF: u64 = 1 << 9;
const MON_FEATURE_SQUID: u64 = 1 << 10;
const MON_FEATURE_TENTACLE: u64 = 1 << 11;

/// Ceph's lowercase name of a `ceph_release_t` value (`16` → `pacific`), `unknown` for 0 and
/// for values this table does not know, as `ceph_release_name()` does.
pub fn ceph_release_name(release: u8) -> &'static str {
    const NAMES: [&str; 21] = [
        "unknown",
        "argonaut",
        "bobtail",
        "cuttlefish",
        "dumpling",
        "emperor",
        "firefly",
        "giant",
        "hammer",
        "infernalis",
        "jewel",
        "kraken",
        "luminous",
        "mimic",
        "nautilus",
        "octopus",
        "pacific",
        "quincy",
        "reef",
        "squid",
        "tentacle",
    ];
    NAMES
        .get(usize::from(release))
        .copied()
        .unwrap_or("unknown")
}

/// The release Ceph infers for a map without `min_mon_release` (versions before 7) from its
/// persistent monitor features (`infer_ceph_release_from_mon_features`).
fn infer_release(persistent: u64) -> u8 {
    let has = |bit: u64| persistent & bit == bit;
    if has(MON_FEATURE_TENTACLE) {
        20
    } else if has(MON_FEATURE_SQUID) {
        19
    } else if has(MON_FEATURE_REEF) {
        18
    } else if has(MON_FEATURE_QUINCY) {
        17
    } else if has(MON_FEATURE_PACIFIC) {
        16
    } else if has(MON_FEATURE_OCTOPUS) {
        15
    } else if has(MON_FEATURE_NAUTILUS) {
        14
    } else if has(MON_FEATURE_MIMIC) {
        13
    } else if has(MON_FEATURE_LUMINOUS) {
        12
    } else if has(MON_FEATURE_KRAKEN) {
        11
    } else {
        0
    }
}

/// One monitor of a [`MonMap`] (`mon_info_t`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonInfo {
    /// Monitor name: `a` for `mon.a`.
    pub name: String,
    /// Addresses clients dial (typically `[v2:IP:3300/0,v1:IP:6789/0]`).
    pub public_addrs: EntityAddrVec,
    /// Connection preference among monitors, lower first (`mon_info_t` v2+; 0 otherwise).
    pub priority: u16,
    /// Weight for random choice among equal priorities (v4+; 0 otherwise).
    pub weight: u16,
    /// CRUSH location used by stretch mode, e.g. `{datacenter=dc1}` (v5+; empty otherwise).
    pub crush_loc: BTreeMap<String, String>,
    /// When the monitor joined the map (v6+, Squid and later); `None` encodes version 5.
    pub time_added: Option<UTime>,
}

impl MonInfo {
    /// Appends `mon_info_t` version 5 (compat 1), Pacific's form for msgr2 peers: name,
    /// address vector, priority, weight, CRUSH location; version 6 (Squid's) when
    /// [`MonInfo::time_added`] is set, which follows them.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let v = if self.time_added.is_some() {
            MON_INFO_TIME_ADDED_VERSION
        } else {
            MON_INFO_VERSION
        };
        out.put_versioned(v, MON_INFO_COMPAT, |b| {
            put_string(b, &self.name);
            self.public_addrs.encode(b);
            b.put_u16(self.priority);
            b.put_u16(self.weight);
            put_string_map(b, &self.crush_loc);
            if let Some(t) = self.time_added {
                put_utime(b, t);
            }
        });
    }

    /// Decodes any `mon_info_t` version whose compat is at most 6. Versions 1-2 (pre-Nautilus
    /// peers) carry a single legacy address, which becomes a one-element vector; fields a
    /// newer version appends are skipped.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let (v, mut b) = d.versioned(MON_INFO_SUPPORTED, "mon_info_t")?;
        let name = b.string("mon_info_t name")?;
        let public_addrs = EntityAddrVec::decode(&mut b)?;
        let priority = if v >= 2 {
            b.u16("mon_info_t priority")?
        } else {
            0
        };
        let weight = if v >= 4 {
            b.u16("mon_info_t weight")?
        } else {
            0
        };
        let crush_loc = if v >= 5 {
            string_map(&mut b, "mon_info_t crush_loc")?
        } else {
            BTreeMap::new()
        };
        let time_added = if v >= MON_INFO_TIME_ADDED_VERSION {
            Some(utime(&mut b, "mon_info_t time_added")?)
        } else {
            None
        };
        Ok(Self {
            name,
            public_addrs,
            priority,
            weight,
            crush_loc,
            time_added,
        })
    }
}

/// The monitor map: which monitors a cluster has, where they listen, and the cluster fsid.
///
/// Decoded from every encoding Ceph has used (versions 1-9), including the pre-`MONENC`
/// forms with a 16-bit version and no length and the pre-Nautilus ones with legacy
/// addresses, filling in what old versions lack as Ceph does (ranks ordered by address,
/// `min_mon_release` inferred from the features, `CLASSIC` election strategy). Encoded as
/// Pacific encodes it for msgr2 peers: version 9, compat 6.
///
/// Invariant checked by the decoder: every name in `ranks` is a key of `mon_info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonMap {
    /// Cluster fsid.
    pub fsid: Uuid,
    /// Map epoch; 0 for a map made by `monmaptool --create`, 1 once a monitor has it.
    pub epoch: u32,
    /// When the map last changed.
    pub last_changed: UTime,
    /// When the map was created.
    pub created: UTime,
    /// Monitor features every monitor must have (`mon_feature_t`, v4+).
    pub persistent_features: u64,
    /// Optional monitor features (v4+).
    pub optional_features: u64,
    /// The monitors by name, in name order as Ceph's `std::map` keeps them.
    pub mon_info: BTreeMap<String, MonInfo>,
    /// Monitor names by rank (index = rank).
    pub ranks: Vec<String>,
    /// Oldest release the monitors run (`ceph_release_t`: 16 = pacific); see
    /// [`ceph_release_name`].
    pub min_mon_release: u8,
    /// Ranks removed since the last election epoch (v8+).
    pub removed_ranks: Vec<i32>,
    /// Election strategy: 1 classic, 2 disallow, 3 connectivity (v8+; 1 otherwise).
    pub election_strategy: u8,
    /// Monitors that may not become leader (v8+), in name order.
    pub disallowed_leaders: Vec<String>,
    /// Whether stretch mode is on (v9+).
    pub stretch_mode_enabled: bool,
    /// The stretch-mode tiebreaker monitor (v9+).
    pub tiebreaker_mon: String,
    /// Monitors marked down in stretch mode (v9+), in name order.
    pub stretch_marked_down_mons: Vec<String>,
    /// The cluster's cephx policy (v10+, Ceph 19.2.6 and later); `None` encodes version 9.
    pub auth: Option<MonAuthPolicy>,
}

impl MonMap {
    /// The monitors in rank order with their ranks.
    pub fn mons(&self) -> impl Iterator<Item = (usize, &MonInfo)> + '_ {
        self.ranks
            .iter()
            .enumerate()
            .filter_map(|(rank, name)| self.mon_info.get(name).map(|m| (rank, m)))
    }

    /// Appends the version 9 encoding (the form a Pacific monitor sends to msgr2 peers), or
    /// version 10 (Tentacle's) when the map carries a cephx policy.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let v = if self.auth.is_some() {
            MONMAP_AUTH_VERSION
        } else {
            MONMAP_ENCODING_VERSION
        };
        out.put_versioned(v, MONMAP_COMPAT, |b| {
            self.fsid.encode(b);
            b.put_u32(self.epoch);
            put_utime(b, self.last_changed);
            put_utime(b, self.created);
            put_mon_feature(b, self.persistent_features);
            put_mon_feature(b, self.optional_features);
            b.put_u32(len_u32(self.mon_info.len()));
            for (name, info) in &self.mon_info {
                put_string(b, name);
                info.encode(b);
            }
            put_strings(b, &self.ranks);
            b.put_u8(self.min_mon_release);
            b.put_u32(len_u32(self.removed_ranks.len()));
            for r in &self.removed_ranks {
                b.put_i32(*r);
            }
            b.put_u8(self.election_strategy);
            put_strings(b, &self.disallowed_leaders);
            b.put_bool(self.stretch_mode_enabled);
            put_string(b, &self.tiebreaker_mon);
            put_strings(b, &self.stretch_marked_down_mons);
            if let Some(auth) = &self.auth {
                auth.encode(b);
            }
        });
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes a whole encoded map (e.g. [`MMonMap::monmap`], or a file written by
    /// `ceph mon getmap -o` / `monmaptool`); trailing bytes are an error.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(buf);
        let m = Self::decode_from(&mut d)?;
        d.finish("MonMap")?;
        Ok(m)
    }

    /// Decodes a map from a cursor (Ceph's `DECODE_START_LEGACY_COMPAT_LEN_16(9, 3, 3)`):
    /// versions 3 and later have `ENCODE_START`'s compat byte and length (fields a newer
    /// version appends are skipped; a compat above 9 is refused); versions 1 and 2 were
    /// written as a `u16` version with no length.
    pub fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = d.clone().u8("MonMap struct_v")?;
        if v >= 3 {
            let (v, mut body) = d.versioned(MONMAP_AUTH_VERSION, "MonMap")?;
            Self::decode_body(v, &mut body)
        } else {
            d.u8("MonMap struct_v")?;
            d.u8("MonMap struct_v high byte")?;
            Self::decode_body(v, d)
        }
    }

    /// The fields after the version header, for struct version `v`.
    fn decode_body(v: u8, d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let fsid = Uuid::decode(d)?;
        let epoch = d.u32("MonMap epoch")?;
        // Before v6 the map lists (name, single address) pairs.
        let mut mon_addr: BTreeMap<String, EntityAddr> = BTreeMap::new();
        if v == 1 {
            // vector<entity_inst_t>: entity_name_t (u8 type, i64 num) + address; the monitors
            // are named "0", "1", ... by position, as Ceph does.
            let n = d.count(9 + MIN_ADDR, "MonMap mon_inst")?;
            for i in 0..n {
                d.u8("MonMap mon_inst name type")?;
                d.i64("MonMap mon_inst name num")?;
                let addr = EntityAddr::decode(d)?;
                let c = char::from(b'0'.wrapping_add(i.to_le_bytes()[0]));
                mon_addr.insert(c.to_string(), addr);
            }
        } else if v < 6 {
            let n = d.count(MIN_STRING + MIN_ADDR, "MonMap mon_addr")?;
            for _ in 0..n {
                let name = d.string("MonMap mon_addr name")?;
                let addr = EntityAddr::decode(d)?;
                mon_addr.insert(name, addr);
            }
        }
        let last_changed = utime(d, "MonMap last_changed")?;
        let created = utime(d, "MonMap created")?;
        let (persistent_features, optional_features) = if v >= 4 {
            (mon_feature(d)?, mon_feature(d)?)
        } else {
            (0, 0)
        };
        let mut mon_info = BTreeMap::new();
        if v < 5 {
            for (name, addr) in mon_addr {
                let info = MonInfo {
                    name: name.clone(),
                    public_addrs: EntityAddrVec(vec![addr]),
                    ..MonInfo::default()
                };
                mon_info.insert(name, info);
            }
        } else {
            let n = d.count(MIN_MON_INFO_ENTRY, "MonMap mon_info")?;
            for _ in 0..n {
                let name = d.string("MonMap mon_info name")?;
                let info = MonInfo::decode(d)?;
                mon_info.insert(name, info);
            }
        }
        let ranks = if v < 6 {
            legacy_ranks(&mon_info)
        } else {
            strings(d, "MonMap ranks")?
        };
        let min_mon_release = if v >= 7 {
            d.u8("MonMap min_mon_release")?
        } else {
            infer_release(persistent_features)
        };
        let mut m = Self {
            fsid,
            epoch,
            last_changed,
            created,
            persistent_features,
            optional_features,
            mon_info,
            ranks,
            min_mon_release,
            removed_ranks: Vec::new(),
            election_strategy: STRATEGY_CLASSIC,
            disallowed_leaders: Vec::new(),
            stretch_mode_enabled: false,
            tiebreaker_mon: String::new(),
            stretch_marked_down_mons: Vec::new(),
            auth: None,
        };
        if v >= 8 {
            let n = d.count(4, "MonMap removed_ranks")?;
            m.removed_ranks = (0..n)
                .map(|_| d.i32("MonMap removed_ranks"))
                .collect::<Result<_, _>>()?;
            m.election_strategy = d.u8("MonMap strategy")?;
            m.disallowed_leaders = strings(d, "MonMap disallowed_leaders")?;
        }
        if v >= 9 {
            m.stretch_mode_enabled = d.bool("MonMap stretch_mode_enabled")?;
            m.tiebreaker_mon = d.string("MonMap tiebreaker_mon")?;
            m.stretch_marked_down_mons = strings(d, "MonMap stretch_marked_down_mons")?;
        }
        if v >= MONMAP_AUTH_VERSION {
            m.auth = Some(MonAuthPolicy::decode(d)?);
        }
        if let Some(rank) = m.ranks.iter().position(|n| !m.mon_info.contains_key(n)) {
            return Err(DecodeError::InvalidValue {
                what: "MonMap rank naming no monitor",
                value: rank as u64,
            });
        }
        Ok(m)
    }
}

/// Ranks of a map older than v6 (`calc_legacy_ranks`): monitors ordered by their legacy (or
/// else first) address, compared as Ceph compares `entity_addr_t` (bytewise in-memory
/// layout), then by name.
fn legacy_ranks(mon_info: &BTreeMap<String, MonInfo>) -> Vec<String> {
    let blank = EntityAddr {
        ty: AddrType::None,
        nonce: 0,
        sock: None,
    };
    let mut v: Vec<(&EntityAddr, &String)> = mon_info
        .iter()
        .map(|(name, m)| {
            let a = m.public_addrs.legacy().or(m.public_addrs.0.first());
            (a.unwrap_or(&blank), name)
        })
        .collect();
    v.sort_by(|a, b| a.0.race_cmp(b.0).then_with(|| a.1.cmp(b.1)));
    v.into_iter().map(|(_, n)| n.clone()).collect()
}

/// Appends a `utime_t`.
fn put_utime(out: &mut Vec<u8>, t: UTime) {
    out.put_u32(t.sec);
    out.put_u32(t.nsec);
}

/// Decodes a `utime_t`.
fn utime(d: &mut Decoder<'_>, what: &'static str) -> Result<UTime, DecodeError> {
    Ok(UTime {
        sec: d.u32(what)?,
        nsec: d.u32(what)?,
    })
}

/// Appends a `mon_feature_t` (`ENCODE_START(1, 1)` around a `u64`).
fn put_mon_feature(out: &mut Vec<u8>, features: u64) {
    out.put_versioned(1, 1, |b| b.put_u64(features));
}

/// Decodes a `mon_feature_t`.
fn mon_feature(d: &mut Decoder<'_>) -> Result<u64, DecodeError> {
    let (_, mut b) = d.versioned(1, "mon_feature_t")?;
    b.u64("mon_feature_t features")
}

/// Prints like `ceph mon dump` / `monmaptool --print` (Ceph's `MonMap::print`), one line per
/// field and per monitor in rank order, each ending in a newline:
///
/// ```text
/// epoch 1
/// fsid 3fd7664a-4f10-46ad-85bd-b499f6274c5b
/// last_changed 2026-11-22T01:29:12.718297+0000
/// created 2026-11-22T01:29:12.718297+0000
/// min_mon_release 16 (pacific)
/// election_strategy: 1
/// 0: [v2:127.0.0.1:13600/0,v1:127.0.0.1:13601/0] mon.a
/// ```
///
/// Stretch mode adds `stretch_mode_enabled 1` and `tiebreaker_mon NAME`; stretch mode or
/// disallowed leaders add `disallowed_leaders a,b`; a monitor with a CRUSH location gets
/// `; crush_location {k=v,...}` after its name; a version 10 map ends with its cephx policy
/// (see [`MonAuthPolicy`]'s `Display`). Times print as [`CephStamp`] (UTC).
impl fmt::Display for MonMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "epoch {}", self.epoch)?;
        writeln!(f, "fsid {}", self.fsid)?;
        writeln!(f, "last_changed {}", CephStamp(self.last_changed))?;
        writeln!(f, "created {}", CephStamp(self.created))?;
        writeln!(
            f,
            "min_mon_release {} ({})",
            self.min_mon_release,
            ceph_release_name(self.min_mon_release)
        )?;
        writeln!(f, "election_strategy: {}", self.election_strategy)?;
        if self.stretch_mode_enabled {
            writeln!(f, "stretch_mode_enabled 1")?;
            writeln!(f, "tiebreaker_mon {}", self.tiebreaker_mon)?;
        }
        if self.stretch_mode_enabled || !self.disallowed_leaders.is_empty() {
            writeln!(
                f,
                "disallowed_leaders {}",
                self.disallowed_leaders.join(",")
            )?;
        }
        for (rank, m) in self.mons() {
            write!(f, "{rank}: {} mon.{}", m.public_addrs, self.ranks[rank])?;
            if !m.crush_loc.is_empty() {
                f.write_str("; crush_location {")?;
                for (i, (k, v)) in m.crush_loc.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")?;
            }
            writeln!(f)?;
        }
        if let Some(auth) = &self.auth {
            write!(f, "{auth}")?;
        }
        Ok(())
    }
}

/// `MMonMap` (type 0x04): the monitor's answer to [`super::MMonGetMap`] and to a `monmap`
/// subscription. The front is one blob holding an encoded [`MonMap`]; it is kept as bytes so
/// that a relayed map is forwarded unchanged, and decoded on demand with
/// [`MMonMap::decode_monmap`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MMonMap {
    /// The encoded monitor map (for msgr2 peers always the version 9 form).
    pub monmap: Vec<u8>,
}

impl MMonMap {
    /// Wraps the encoding of `map`.
    pub fn from_monmap(map: &MonMap) -> Self {
        Self {
            monmap: map.to_bytes(),
        }
    }

    /// Decodes the carried map.
    pub fn decode_monmap(&self) -> Result<MonMap, DecodeError> {
        MonMap::decode(&self.monmap)
    }
}

impl MessageFront for MMonMap {
    const TYPE: u16 = MSG_MON_MAP;
    const HEAD_VERSION: u16 = 1;
    const COMPAT_VERSION: u16 = 1;
    const PRIORITY: u16 = PRIO_HIGH;

    fn encode_front(&self, out: &mut Vec<u8>) {
        out.put_blob(&self.monmap);
    }

    fn decode_front(front: &[u8], _header_version: u16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let monmap = d.blob("MMonMap monmap")?.to_vec();
        d.finish("MMonMap")?;
        Ok(Self { monmap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn addr(s: &str) -> EntityAddrVec {
        EntityAddrVec::from_str(s).unwrap()
    }

    fn sample() -> MonMap {
        let mut m = MonMap {
            fsid: "3fd7664a-4f10-46ad-85bd-b499f6274c5b".parse().unwrap(),
            epoch: 3,
            last_changed: UTime {
                sec: 1_795_320_742,
                nsec: 788_276_000,
            },
            created: UTime {
                sec: 1_795_320_715,
                nsec: 946_826_000,
            },
            persistent_features: 0xff,
            min_mon_release: 16,
            election_strategy: 1,
            ..MonMap::default()
        };
        for (name, a) in [
            ("b", "[v2:127.0.0.1:3301/0,v1:127.0.0.1:6790/0]"),
            ("a", "[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0]"),
        ] {
            m.mon_info.insert(
                name.into(),
                MonInfo {
                    name: name.into(),
                    public_addrs: addr(a),
                    ..MonInfo::default()
                },
            );
            m.ranks.insert(0, name.into());
        }
        m
    }

    #[test]
    fn round_trip_and_print() {
        let m = sample();
        let b = m.to_bytes();
        assert_eq!(&b[..2], &[9, 6]);
        assert_eq!(MonMap::decode(&b).unwrap(), m);
        assert_eq!(
            m.to_string(),
            "epoch 3\nfsid 3fd7664a-4f10-46ad-85bd-b499f6274c5b\n\
             last_changed 2026-11-22T04:12:22.788276+0000\n\
             created 2026-11-22T04:11:55.946826+0000\n\
             min_mon_release 16 (pacific)\nelection_strategy: 1\n\
             0: [v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0] mon.a\n\
             1: [v2:127.0.0.1:3301/0,v1:127.0.0.1:6790/0] mon.b\n"
        );
    }

    #[test]
    fn unknown_trailing_fields_are_skipped() {
        let mut m = sample();
        m.auth = Some(MonAuthPolicy::default());
        let mut b = m.to_bytes();
        b.extend_from_slice(&[0xAA; 5]); // fields of a hypothetical v11
        b[0] = 11;
        let len = u32::from_le_bytes([b[2], b[3], b[4], b[5]]) + 5;
        b[2..6].copy_from_slice(&len.to_le_bytes());
        assert_eq!(MonMap::decode(&b).unwrap(), m);
    }

    #[test]
    fn newer_compat_and_dangling_ranks_are_refused() {
        let mut b = sample().to_bytes();
        b[1] = 11;
        assert!(matches!(
            MonMap::decode(&b),
            Err(DecodeError::UnsupportedVersion { compat: 11, .. })
        ));
        let mut m = sample();
        m.ranks.push("zz".into());
        assert!(matches!(
            MonMap::decode(&m.to_bytes()),
            Err(DecodeError::InvalidValue { value: 2, .. })
        ));
    }

    /// A version 2 map (pre-MONENC: `u16` version, no length, `map<name, addr>` with legacy
    /// addresses): ranks are ordered by address, not by name.
    #[test]
    fn legacy_v2_map() {
        let mut b = vec![2, 0];
        b.extend_from_slice(&[7; 16]);
        b.put_u32(5);
        b.put_u32(2);
        for (name, port) in [("x", 6790u16), ("y", 6789)] {
            put_string(&mut b, name);
            let a = EntityAddr::parse(&format!("v1:10.0.0.1:{port}/0")).unwrap();
            a.encode_legacy(&mut b);
        }
        put_utime(&mut b, UTime { sec: 1, nsec: 2 });
        put_utime(&mut b, UTime { sec: 3, nsec: 4 });
        let m = MonMap::decode(&b).unwrap();
        assert_eq!(m.epoch, 5);
        assert_eq!(m.ranks, ["y", "x"]);
        assert_eq!(m.min_mon_release, 0);
        assert_eq!(m.election_strategy, 1);
        assert_eq!(
            m.to_string(),
            "epoch 5\nfsid 07070707-0707-0707-0707-070707070707\n\
             last_changed 1.000000\ncreated 3.000000\n\
             min_mon_release 0 (unknown)\nelection_strategy: 1\n\
             0: v1:10.0.0.1:6789/0 mon.y\n1: v1:10.0.0.1:6790/0 mon.x\n"
        );
    }

    /// A version 1 map (`vector<entity_inst_t>`): monitors are named by position.
    #[test]
    fn legacy_v1_map() {
        let mut b = vec![1, 0];
        b.extend_from_slice(&[0; 16]);
        b.put_u32(1);
        b.put_u32(1);
        b.put_u8(1); // entity type mon
        b.put_i64(0);
        EntityAddr::parse("v1:10.0.0.1:6789/0")
            .unwrap()
            .encode_legacy(&mut b);
        put_utime(&mut b, UTime::default());
        put_utime(&mut b, UTime::default());
        let m = MonMap::decode(&b).unwrap();
        assert_eq!(m.ranks, ["0"]);
        assert_eq!(
            m.mon_info["0"].public_addrs.to_string(),
            "v1:10.0.0.1:6789/0"
        );
    }

    /// Version 6 (Nautilus): `mon_info` and explicit ranks, no `min_mon_release` (inferred
    /// from the features) nor the later fields; version 7 adds `min_mon_release`. Built from
    /// the version 9 encoding without its tail (19 bytes for `sample`).
    #[test]
    fn v6_and_v7_maps() {
        // Ranks not in address order, so that explicit ranks differ from legacy ones.
        let mut m = sample();
        m.ranks.reverse();
        for (v, cut) in [(6u8, 19usize), (7, 18)] {
            let mut b = m.to_bytes();
            b.truncate(b.len() - cut);
            b[0] = v;
            b[1] = 3;
            let len = u32::try_from(b.len() - 6).unwrap();
            b[2..6].copy_from_slice(&len.to_le_bytes());
            assert_eq!(MonMap::decode(&b).unwrap(), m, "v{v}");
        }
    }

    /// Version 5 (Mimic): a `map<name, addr>` before the stamps, then `mon_info`; ranks in
    /// address order.
    #[test]
    fn v5_map() {
        let want = sample();
        let mut b = Vec::new();
        b.put_versioned(5, 3, |b| {
            want.fsid.encode(b);
            b.put_u32(want.epoch);
            b.put_u32(2);
            for name in ["a", "b"] {
                put_string(b, name);
                want.mon_info[name].public_addrs.0[0].encode(b);
            }
            put_utime(b, want.last_changed);
            put_utime(b, want.created);
            put_mon_feature(b, want.persistent_features);
            put_mon_feature(b, want.optional_features);
            b.put_u32(2);
            for (name, info) in &want.mon_info {
                put_string(b, name);
                info.encode(b);
            }
        });
        let m = MonMap::decode(&b).unwrap();
        assert_eq!(m.mon_info, want.mon_info);
        assert_eq!(m.ranks, ["a", "b"]);
        assert_eq!(m.min_mon_release, 16);
    }

    /// A legacy map whose entries are as small as they can be (empty sockaddr) still fits
    /// the count bound.
    #[test]
    fn legacy_map_with_minimal_addresses() {
        let mut b = vec![2, 0];
        b.extend_from_slice(&[1; 16]);
        b.put_u32(2);
        b.put_u32(2);
        for name in ["a", "b"] {
            put_string(&mut b, name);
            b.extend_from_slice(&[1, 1, 1, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        put_utime(&mut b, UTime::default());
        put_utime(&mut b, UTime::default());
        let m = MonMap::decode(&b).unwrap();
        assert_eq!(m.mon_info.len(), 2);
        assert_eq!(m.mon_info["a"].name, "a");
    }

    #[test]
    fn disallowed_leaders_print_without_stretch_mode() {
        let mut m = sample();
        m.disallowed_leaders = vec!["a".into(), "b".into()];
        assert!(m.to_string().contains("\ndisallowed_leaders a,b\n"));
        assert!(!m.to_string().contains("tiebreaker_mon"));
    }

    #[test]
    fn release_names() {
        assert_eq!(ceph_release_name(16), "pacific");
        assert_eq!(ceph_release_name(20), "tentacle");
        assert_eq!(infer_release(0xfff), 20);
        assert_eq!(ceph_release_name(0), "unknown");
        assert_eq!(ceph_release_name(200), "unknown");
        assert_eq!(infer_release(0xff), 16);
        assert_eq!(infer_release(0x1f), 14);
    }
}
