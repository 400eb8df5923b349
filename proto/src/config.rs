//! Connection configuration with Ceph's option names and defaults.
//!
//! Connection modes are ordered preference lists, chosen per (our type, peer type) exactly as
//! Ceph's `AuthRegistry::get_supported_modes` does; the server picks the first mode of the
//! client's list that it allows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::banner::Banner;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_codec::payload::{AUTH_NONE, CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::{ClientAuthProvider, ServerAuthProvider};
use thiserror::Error;

pub use crate::compression::{CompressMode, CompressionConfig};
pub use crate::throttle::Throttle;

/// `CEPH_FEATURE_MSG_ADDR2` (bit 59): required of every msgr2 peer.
pub const FEATURE_MSG_ADDR2: u64 = 1 << 59;
/// `ms_dispatch_throttle_bytes` default: 100 MiB.
pub const DISPATCH_THROTTLE_BYTES: u64 = 100 << 20;
/// The feature set a Pacific 16.2.15 daemon or client advertises.
pub const PACIFIC_FEATURES: u64 = 0x3f01_cfbd_fffd_ffff;
/// `CEPH_FEATURE_SERVER_QUINCY` (bit 33, incarnation 3): Ceph 17 and later.
pub const FEATURE_SERVER_QUINCY: u64 = 1 << 33;
/// `CEPH_FEATURE_CRUSH_MSR` (bit 38): CRUSH multi-step retry rules. Not advertised: we do not
/// decode CRUSH maps.
pub const FEATURE_CRUSH_MSR: u64 = 1 << 38;
/// `CEPH_FEATURE_NVMEOFHA` (bit 44) and `NVMEOFHAMAP` (bit 45): NVMe-oF gateway maps. Not
/// advertised: we do not speak the gateway monitor messages.
pub const FEATURE_NVMEOF: u64 = (1 << 44) | (1 << 45);
/// `CEPH_FEATURE_SERVER_SQUID` (bit 49): Ceph 19 and later.
pub const FEATURE_SERVER_SQUID: u64 = 1 << 49;
/// `CEPH_FEATURE_SERVER_TENTACLE` (bit 50): Ceph 20 and later; with it a monitor sends the
/// version 10 monitor map (cephx policy), which the codec decodes.
pub const FEATURE_SERVER_TENTACLE: u64 = 1 << 50;
/// What we advertise by default: Pacific's set plus the release bits of Quincy, Squid and
/// Tentacle (Reef's, bit 31, is already in Pacific's set as a reused retired bit). A Ceph
/// 20.2 daemon advertises `0x3f07_ffff_fffd_ffff`, which is this plus [`FEATURE_CRUSH_MSR`]
/// and [`FEATURE_NVMEOF`], features of maps and messages we do not implement.
pub const SUPPORTED_FEATURES: u64 =
    PACIFIC_FEATURES | FEATURE_SERVER_QUINCY | FEATURE_SERVER_SQUID | FEATURE_SERVER_TENTACLE;

/// A connection-mode list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid connection mode {0:?} (expected crc or secure)")]
pub struct ModeParseError(pub String);

/// Parses a Ceph mode option value (`"secure crc"`, `"crc,secure"`) into `CEPH_CON_MODE_*`
/// values in preference order. Words are separated as Ceph's `substr_do` separates them (`,`
/// `;` `=` and blanks). An unknown word is an error here; Ceph only logs "unknown connection
/// mode" and drops it, which turns a typo like `secrue crc` into a silent `crc`.
pub fn parse_modes(s: &str) -> Result<Vec<u32>, ModeParseError> {
    s.split(|c: char| c == ',' || c == ';' || c == '=' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "crc" => Ok(CON_MODE_CRC),
            "secure" => Ok(CON_MODE_SECURE),
            other => Err(ModeParseError(other.to_owned())),
        })
        .collect()
}

/// The six `ms_*_mode` options, with Ceph's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeConfig {
    /// `ms_client_mode` (default `crc secure`): a client talking to non-mon daemons.
    pub client: Vec<u32>,
    /// `ms_service_mode` (default `crc secure`): a non-mon daemon accepting clients.
    pub service: Vec<u32>,
    /// `ms_cluster_mode` (default `crc secure`): daemon ↔ daemon, and daemon → mon.
    pub cluster: Vec<u32>,
    /// `ms_mon_client_mode` (default `secure crc`): a client talking to mons.
    pub mon_client: Vec<u32>,
    /// `ms_mon_service_mode` (default `secure crc`): a mon accepting non-mons.
    pub mon_service: Vec<u32>,
    /// `ms_mon_cluster_mode` (default `secure crc`): mon ↔ mon.
    pub mon_cluster: Vec<u32>,
}

impl Default for ModeConfig {
    fn default() -> Self {
        let crc_first = vec![CON_MODE_CRC, CON_MODE_SECURE];
        let secure_first = vec![CON_MODE_SECURE, CON_MODE_CRC];
        Self {
            client: crc_first.clone(),
            service: crc_first.clone(),
            cluster: crc_first,
            mon_client: secure_first.clone(),
            mon_service: secure_first.clone(),
            mon_cluster: secure_first,
        }
    }
}

impl ModeConfig {
    /// Every option set to the same list (what `--mode` means on the CLI).
    pub fn all(modes: Vec<u32>) -> Self {
        Self {
            client: modes.clone(),
            service: modes.clone(),
            cluster: modes.clone(),
            mon_client: modes.clone(),
            mon_service: modes.clone(),
            mon_cluster: modes,
        }
    }

    /// Sets an option by its Ceph name (`ms_client_mode`, …) from its text value.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ModeParseError> {
        let v = parse_modes(value)?;
        let slot = match option {
            "ms_client_mode" => &mut self.client,
            "ms_service_mode" => &mut self.service,
            "ms_cluster_mode" => &mut self.cluster,
            "ms_mon_client_mode" => &mut self.mon_client,
            "ms_mon_service_mode" => &mut self.mon_service,
            "ms_mon_cluster_mode" => &mut self.mon_cluster,
            other => return Err(ModeParseError(other.to_owned())),
        };
        *slot = v;
        Ok(())
    }

    /// The list that applies between `me` and `peer` (Ceph's `AuthRegistry::
    /// get_supported_modes`), with all but crc removed for auth none (it has no key): a
    /// client uses `ms_mon_client_mode` towards mons and `ms_client_mode` otherwise; a mon
    /// `ms_mon_cluster_mode` towards mons and `ms_mon_service_mode` otherwise; any other daemon
    /// `ms_cluster_mode` towards mons, mgrs, mdss and osds and `ms_service_mode` otherwise.
    pub fn for_peer(&self, me: EntityType, peer: EntityType, method: u32) -> Vec<u32> {
        use EntityType::{Client, Mds, Mgr, Mon, Osd};
        let list = match (me, peer) {
            (Client, Mon) => &self.mon_client,
            (Client, _) => &self.client,
            (Mon, Mon) => &self.mon_cluster,
            (Mon, _) => &self.mon_service,
            (_, Mon | Mgr | Mds | Osd) => &self.cluster,
            _ => &self.service,
        };
        list.iter()
            .copied()
            .filter(|m| method != AUTH_NONE || *m == CON_MODE_CRC)
            .collect()
    }
}

/// Per-peer-type policy (Ceph's `Messenger::Policy`): how a connection to a peer of one
/// entity type behaves on faults, and which throttles its received messages count against.
///
/// The six constructors are Ceph's named policies; the server dictates lossiness (SERVER_IDENT
/// flags), so a client's `lossy` is only its proposal.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Lossy: no session retention; a fault closes the connection and reports a reset.
    pub lossy: bool,
    /// Server: never reconnect from this end; after a fault wait (STANDBY) for the peer.
    pub server: bool,
    /// Standby: after a fault with nothing queued, do not reconnect until there is something
    /// to send.
    pub standby: bool,
    /// Reset check: when a peer presents a different session cookie (it restarted), reset
    /// our side of the session (dropping its queue) and tell the application; also what a
    /// server puts in SESSION_RESET's `full` on a client cookie mismatch.
    pub resetcheck: bool,
    /// Features the peer must support (`MSG_ADDR2` is always added).
    pub features_required: u64,
    /// A server registers its lossy clients' sessions too (Ceph's `register_lossy_clients`),
    /// so a second connection from the same client stops the first.
    pub register_lossy_clients: bool,
    /// Per-policy receive throttle on message bytes (Ceph `throttler_bytes`), shared by every
    /// connection using this policy. `None`: unthrottled.
    pub throttler_bytes: Option<Arc<Throttle>>,
    /// Per-policy receive throttle on message count (Ceph `throttler_messages`).
    pub throttler_messages: Option<Arc<Throttle>>,
}

impl PartialEq for Policy {
    /// Flags and features compare by value, throttles by identity.
    fn eq(&self, o: &Self) -> bool {
        fn same(a: &Option<Arc<Throttle>>, b: &Option<Arc<Throttle>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        (
            self.lossy,
            self.server,
            self.standby,
            self.resetcheck,
            self.register_lossy_clients,
        ) == (
            o.lossy,
            o.server,
            o.standby,
            o.resetcheck,
            o.register_lossy_clients,
        ) && self.features_required == o.features_required
            && same(&self.throttler_bytes, &o.throttler_bytes)
            && same(&self.throttler_messages, &o.throttler_messages)
    }
}

impl Eq for Policy {}

impl Policy {
    const fn of(lossy: bool, server: bool, standby: bool, resetcheck: bool, req: u64) -> Self {
        Self {
            lossy,
            server,
            standby,
            resetcheck,
            features_required: req,
            register_lossy_clients: false,
            throttler_bytes: None,
            throttler_messages: None,
        }
    }

    /// A daemon accepting lossless sessions it never re-dials (OSD towards lossless
    /// clients): lossless, server, standby, resetcheck.
    pub const fn stateful_server(req: u64) -> Self {
        Self::of(false, true, true, true, req)
    }

    /// A daemon accepting lossy clients it does not track (mon towards clients): lossy,
    /// server.
    pub const fn stateless_server(req: u64) -> Self {
        Self::of(true, true, false, false, req)
    }

    /// A daemon accepting lossy clients it tracks (OSD towards clients): as
    /// [`Policy::stateless_server`], and a client's new connection replaces its old one.
    pub const fn stateless_registered_server(req: u64) -> Self {
        let mut p = Self::of(true, true, false, false, req);
        p.register_lossy_clients = true;
        p
    }

    /// Daemon ↔ daemon (OSD ↔ OSD cluster links): lossless, either side reconnects,
    /// standby, no reset check (the OSD layer detects restarts through maps).
    pub const fn lossless_peer(req: u64) -> Self {
        Self::of(false, false, true, false, req)
    }

    /// As [`Policy::lossless_peer`] but detecting peer restarts (mon ↔ mon).
    pub const fn lossless_peer_reuse(req: u64) -> Self {
        Self::of(false, false, true, true, req)
    }

    /// A client whose connections drop on faults (librados/CLI towards mons and OSDs).
    pub const fn lossy_client(req: u64) -> Self {
        Self::of(true, false, false, false, req)
    }

    /// A client keeping a lossless session (reconnects, replays unacknowledged messages).
    pub const fn lossless_client(req: u64) -> Self {
        Self::of(false, false, false, true, req)
    }

    /// The same policy with per-policy receive throttles (bytes, messages).
    pub fn with_throttles(
        mut self,
        bytes: Option<Arc<Throttle>>,
        messages: Option<Arc<Throttle>>,
    ) -> Self {
        self.throttler_bytes = bytes;
        self.throttler_messages = messages;
        self
    }
}

impl Default for Policy {
    /// Lossy client, as Ceph's default for clients (`Policy::lossy_client(0)`).
    fn default() -> Self {
        Self::lossy_client(0)
    }
}

/// The messenger-wide connection counter (Ceph's `AsyncMessenger::global_seq`): every
/// outgoing attempt and every SERVER_IDENT takes a fresh value, so a server can tell a stale
/// connection from a newer one. Shared by all connections with the same [`Config`].
#[derive(Debug, Default)]
pub struct GlobalSeq(AtomicU64);

impl GlobalSeq {
    /// The next value (`get_global_seq()`).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The next value above both the counter and `at_least` (`get_global_seq(x)`).
    pub fn next_after(&self, at_least: u64) -> u64 {
        self.observe(at_least);
        self.next()
    }

    /// Raises the counter to at least `v` (a value the embedder handed out itself).
    pub fn observe(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }

    /// The last value handed out.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Policies per peer entity type with a default (Ceph's `PolicySet`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySet {
    /// The policy for types without their own.
    pub default: Policy,
    /// Per-type policies.
    pub by_type: BTreeMap<EntityType, Policy>,
}

impl PolicySet {
    /// Every peer type gets `default`.
    pub fn new(default: Policy) -> Self {
        Self {
            default,
            by_type: BTreeMap::new(),
        }
    }

    /// The policy towards peers of type `peer`.
    pub fn get(&self, peer: EntityType) -> &Policy {
        self.by_type.get(&peer).unwrap_or(&self.default)
    }

    /// Sets the policy towards peers of type `peer`.
    pub fn set(&mut self, peer: EntityType, policy: Policy) -> &mut Self {
        self.by_type.insert(peer, policy);
        self
    }

    /// Builder form of [`PolicySet::set`].
    pub fn with(mut self, peer: EntityType, policy: Policy) -> Self {
        self.set(peer, policy);
        self
    }
}

/// Everything a connection needs to know about its own side.
#[derive(Clone)]
pub struct Config {
    /// Our entity name (`client.admin`, `osd.0`, `mon.a`).
    pub name: EntityName,
    /// Our entity number as sent in idents (`-1` for clients that do not know it yet),
    /// shared by every connection made with this config: a client's becomes the global id its
    /// first monitor assigns, as Ceph's MonClient renames its messenger `client.<global_id>`.
    pub gid: SharedGid,
    /// Our bound addresses (servers) or empty (clients learn theirs from the peer's HELLO).
    pub my_addrs: EntityAddrVec,
    /// Nonce identifying this process instance (clients put it in their TYPE_ANY address).
    pub nonce: u32,
    /// Our banner (set `supported` to 0 to force msgr2.0 framing).
    pub banner: Banner,
    /// `CEPH_FEATURE_*` we support.
    pub supported_features: u64,
    /// Connection modes.
    pub modes: ModeConfig,
    /// Client-side authentication.
    pub client_auth: Option<Arc<dyn ClientAuthProvider>>,
    /// Server-side authentication.
    pub server_auth: Option<Arc<dyn ServerAuthProvider>>,
    /// Frame size limits.
    pub limits: Limits,
    /// Policy for each peer type (Ceph's `set_policy`/`set_default_policy`).
    pub policies: PolicySet,
    /// `ms_connection_ready_timeout` in seconds: the whole handshake must finish in this time.
    pub ready_timeout_secs: u64,
    /// `ms_connection_idle_timeout`: a ready connection on which nothing arrives for this long
    /// faults (Ceph's tick). Pair it with [`Config::keepalive_interval`] on both sides so a
    /// healthy but quiet peer is not mistaken for a dead one.
    pub idle_timeout: Duration,
    /// Send KEEPALIVE2 after this much transmit silence on a ready connection (`None`: only
    /// when the application asks, as Ceph's messenger itself does).
    pub keepalive_interval: Option<Duration>,
    /// `ms_initial_backoff`: first reconnect delay after a failed connection attempt.
    pub initial_backoff: Duration,
    /// `ms_max_backoff`: reconnect delay cap, and the delay after a WAIT.
    pub max_backoff: Duration,
    /// `ms_dispatch_throttle_bytes`: messenger-wide budget of received message bytes the
    /// application holds; shared by every connection with this config.
    pub dispatch_throttle: Arc<Throttle>,
    /// Largest number of messages queued (not yet written) on one session; beyond it
    /// [`crate::Connection::send_message`] fails with `QueueFull` instead of growing.
    pub max_queued_messages: usize,
    /// Largest number of payload bytes queued (not yet written) on one session.
    pub max_queued_bytes: u64,
    /// The messenger-wide `global_seq` counter. The `global_seq` passed to
    /// [`crate::Connection::client`] / [`crate::Connection::server`] raises it; SERVER_IDENT
    /// and SESSION_RETRY_GLOBAL take fresh values from it.
    pub global_seq: Arc<GlobalSeq>,
    /// Where session cookies and an unset nonce come from (seed it for exact replays).
    pub random: RandomSource,
    /// On-wire compression (`ms_osd_compress_*`, `ms_compress_secure`) and whether the banner
    /// advertises it.
    pub compression: CompressionConfig,
    /// Server side: ask the embedder for an existing session with the same peer
    /// ([`crate::Event::Lookup`]) when a CLIENT_IDENT or SESSION_RECONNECT arrives. Without it
    /// every peer is new and every reconnect is answered with SESSION_RESET(full).
    pub session_lookup: bool,
}

/// Our entity number, shared by the connections of one messenger (Ceph's `get_myname().num()`):
/// a daemon's is its id (`osd.3` → 3); a client's is -1 until a monitor assigns it a global
/// id, which then goes into every CLIENT_IDENT and SERVER_IDENT it sends.
#[derive(Debug, Clone)]
pub struct SharedGid(Arc<AtomicI64>);

impl SharedGid {
    /// A shared number starting at `gid`.
    pub fn new(gid: i64) -> Self {
        Self(Arc::new(AtomicI64::new(gid)))
    }

    /// The current number.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Replaces the number (seen by connections that send their ident afterwards).
    pub fn set(&self, gid: i64) {
        self.0.store(gid, Ordering::Relaxed);
    }
}

impl Config {
    /// A configuration with Ceph's defaults for `name`.
    pub fn new(name: EntityName) -> Self {
        let gid = if name.ty == EntityType::Client {
            -1
        } else {
            name.num().unwrap_or(-1)
        };
        Self {
            name,
            gid: SharedGid::new(gid),
            my_addrs: EntityAddrVec::default(),
            nonce: 0,
            banner: Banner::OURS,
            supported_features: SUPPORTED_FEATURES,
            modes: ModeConfig::default(),
            client_auth: None,
            server_auth: None,
            limits: Limits::default(),
            policies: PolicySet::default(),
            ready_timeout_secs: 10,
            idle_timeout: Duration::from_secs(900),
            keepalive_interval: None,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            dispatch_throttle: Arc::new(Throttle::new(DISPATCH_THROTTLE_BYTES)),
            max_queued_messages: 65536,
            max_queued_bytes: 1 << 30,
            session_lookup: false,
            compression: CompressionConfig::default(),
            global_seq: Arc::new(GlobalSeq::default()),
            random: RandomSource::System,
        }
    }
}

/// Where a connection's random values come from (session cookies, and the address nonce
/// when [`Config::nonce`] is 0): the system's RNG, or a seeded sequence so that a simulation
/// replays exactly. Cryptographic randomness (cephx challenges, secure-mode keys) belongs to
/// the auth providers and never comes from here.
#[derive(Debug, Clone, Default)]
pub enum RandomSource {
    /// The operating system's RNG.
    #[default]
    System,
    /// A deterministic sequence (splitmix64) from a seed, shared by every connection with
    /// this configuration.
    Seeded(Arc<AtomicU64>),
}

impl RandomSource {
    /// A deterministic source starting at `seed`.
    pub fn seeded(seed: u64) -> Self {
        RandomSource::Seeded(Arc::new(AtomicU64::new(seed)))
    }

    /// The next value.
    pub fn next_u64(&self) -> u64 {
        match self {
            RandomSource::System => {
                let mut b = [0u8; 8];
                // A failing system RNG leaves zeros; callers map 0 to 1 where zero matters.
                let _ = aws_lc_rs::rand::fill(&mut b);
                u64::from_le_bytes(b)
            }
            RandomSource::Seeded(state) => {
                let x = state
                    .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                    .wrapping_add(0x9e37_79b9_7f4a_7c15);
                let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                x ^ (x >> 31)
            }
        }
    }
}

impl Config {
    /// The banner actually sent: [`Config::banner`] without the compression bit when
    /// [`CompressionConfig::advertise`] is off.
    pub fn effective_banner(&self) -> Banner {
        let mut b = self.banner;
        if !self.compression.advertise {
            b.supported &= !msgr2_codec::banner::FEATURE_COMPRESSION;
        }
        b
    }

    /// The policy towards peers of type `peer`.
    pub fn policy(&self, peer: EntityType) -> Policy {
        self.policies.get(peer).clone()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("gid", &self.gid)
            .field("my_addrs", &self.my_addrs)
            .field("banner", &self.banner)
            .field("modes", &self.modes)
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our default set is a Ceph 20.2.4 daemon's less the features we do not implement.
    #[test]
    fn features_are_tentacles_less_what_we_lack() {
        assert_eq!(
            SUPPORTED_FEATURES | FEATURE_CRUSH_MSR | FEATURE_NVMEOF,
            0x3f07_ffff_fffd_ffff
        );
        assert_eq!(SUPPORTED_FEATURES & PACIFIC_FEATURES, PACIFIC_FEATURES);
    }

    #[test]
    fn mode_lists_follow_ceph() {
        assert_eq!(parse_modes("secure crc").unwrap(), vec![2, 1]);
        assert_eq!(parse_modes("crc,secure").unwrap(), vec![1, 2]);
        assert!(parse_modes("fast").is_err());
        let m = ModeConfig::default();
        assert_eq!(
            m.for_peer(EntityType::Client, EntityType::Mon, 2),
            vec![2, 1]
        );
        assert_eq!(
            m.for_peer(EntityType::Client, EntityType::Osd, 2),
            vec![1, 2]
        );
        assert_eq!(
            m.for_peer(EntityType::Client, EntityType::Mon, AUTH_NONE),
            vec![1]
        );
        assert_eq!(
            m.for_peer(EntityType::Mon, EntityType::Client, 2),
            vec![2, 1]
        );
        assert_eq!(
            m.for_peer(EntityType::Osd, EntityType::Client, 2),
            vec![1, 2]
        );
    }
}
