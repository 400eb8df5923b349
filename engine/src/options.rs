//! Engine settings every reactor gets, and the fault-injection plans.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_proto::Config;

/// Engine settings every core gets.
#[derive(Clone)]
pub(crate) struct ReactorConfig {
    pub raw: bool,
    pub proto: Option<Arc<Config>>,
    pub my_name: Option<EntityName>,
    pub limits: Limits,
    pub arena_bytes: usize,
    pub arena_fallback: bool,
    pub memlock_limit_override: Option<u64>,
    pub simulate_no_uring: bool,
    pub send_zc_threshold: Option<usize>,
    pub keepalive: Option<Duration>,
    pub handshake_timeout: Duration,
    pub ring_entries: u32,
    pub spin_before_park: Option<Duration>,
    /// `ms_inject_socket_failures`: one in this many socket operations fails (0: never).
    pub inject_socket_failures: u64,
    /// `ms_inject_delay_*`: delay the delivery of messages from these peer types.
    pub inject_delay: Option<InjectDelay>,
    /// `ms_initial_backoff`, `ms_max_backoff` (None: proto's defaults).
    pub backoff: Option<(Duration, Duration)>,
    /// Named break points (tests): cut a connection when it transmits in a protocol state.
    pub break_points: Vec<BreakPoint>,
    /// Receive the rest of a data segment with a targeted recv when at least this much of it
    /// is still to come (None: always through the provided buffers).
    pub zero_copy_recv_min: Option<usize>,
    /// A targeted receive asks for at most this many bytes (the rest of the segment follows
    /// in further ones), so the protocol checks each run's crc while it is still in cache.
    pub rx_loan_chunk: usize,
}

/// Where a [`BreakPoint`] cuts the connection relative to what it was about to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakAt {
    /// The bytes are never sent; the socket is shut down instead.
    BeforeSend,
    /// The bytes are sent, then the socket is shut down.
    AfterSend,
    /// Only the first half of the bytes is sent (in `READY`: mid-message), then the socket
    /// is shut down.
    MidSend,
}

/// A named break point: the first `times` times (per core) a connection of this messenger
/// transmits while in protocol state `state` (proto's Ceph-style names: `BANNER`, `HELLO`,
/// `AUTH_CONNECTING`, `AUTH_ACCEPTING`, `AUTH_SIGN`, `SESSION_CONNECTING`,
/// `SESSION_ACCEPTING`, `SESSION_RECONNECTING`, `READY`, …), the socket is cut at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakPoint {
    /// Protocol state name.
    pub state: String,
    /// Where to cut.
    pub at: BreakAt,
    /// How many times (per core).
    pub times: u32,
}

/// Ceph's `ms_inject_delay_type`, `ms_inject_delay_max` and `ms_inject_delay_probability`.
#[derive(Clone, Debug)]
pub(crate) struct InjectDelay {
    pub types: Vec<EntityType>,
    pub max: Duration,
    pub probability: f64,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            raw: false,
            proto: None,
            my_name: None,
            limits: Limits::default(),
            arena_bytes: 24 << 20,
            arena_fallback: false,
            memlock_limit_override: None,
            simulate_no_uring: false,
            send_zc_threshold: None,
            keepalive: None,
            handshake_timeout: Duration::from_secs(10),
            ring_entries: 1024,
            spin_before_park: Some(Duration::from_micros(100)),
            inject_socket_failures: 0,
            inject_delay: None,
            backoff: None,
            break_points: Vec::new(),
            zero_copy_recv_min: Some(256 << 10),
            rx_loan_chunk: 512 << 10,
        }
    }
}

/// A distinct seed per reactor (time, process and a counter), so repeated runs and every
/// messenger of a process inject different faults.
pub(crate) fn injection_seed() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut z = t
        ^ (u64::from(std::process::id()) << 40)
        ^ N.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}
