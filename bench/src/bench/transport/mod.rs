//! How bench messages travel, behind one small trait so that the workload, statistics and
//! output code never see a socket.
//!
//! A [`Transport`] starts a server ([`Transport::serve`]) that answers the bench protocol
//! ([`super::wire`]) in every mode at once (msgr2 on one address, raw on another), and opens
//! client connections in one mode ([`Transport::connect`]) that then run one
//! [`ConnWorkload`] each ([`ClientConns::run`]).

pub mod blocking;
pub mod engine;

use std::net::SocketAddr;
use std::sync::Arc;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityName;
use msgr2_codec::payload::UTime;
use msgr2_crypto::keyring::{CryptoKey, Keyring};

use super::cpu::CpuSide;
use super::error::BenchError;
use super::spec::Mode;
use super::workload::{ConnWorkload, PayloadPool};

/// Where a bench server can be reached.
#[derive(Debug, Clone)]
pub struct Target {
    /// The msgr2 address (crc and secure cells), nonce included.
    pub msgr2: EntityAddr,
    /// The raw-mode address (baseline cells).
    pub raw: SocketAddr,
}

/// Identities and keys of a run: the client authenticates with cephx in both msgr2 modes
/// (secure mode needs a session key; crc uses the same login so the two differ only in
/// framing).
#[derive(Debug, Clone)]
pub struct BenchKeys {
    /// The client's entity name.
    pub client: EntityName,
    /// The client's secret.
    pub key: CryptoKey,
    /// What the server knows: the client's key with `mon` caps.
    pub keyring: Arc<Keyring>,
}

impl BenchKeys {
    /// A fresh random key for `client.bench` (a run in one process).
    pub fn generate() -> Result<Self, BenchError> {
        let key = CryptoKey::generate().map_err(|e| BenchError::Keys(e.to_string()))?;
        Ok(Self::with_key(key))
    }

    /// The well-known bench key, so that `msgr2 bench server` and `msgr2 bench client` on two
    /// hosts agree without a keyring file. It protects nothing: use `--keyring` for anything
    /// but a benchmark.
    pub fn well_known() -> Self {
        Self::with_key(CryptoKey::new(
            UTime { sec: 0, nsec: 0 },
            *b"msgr2-rs bench!!",
        ))
    }

    /// `client.bench`'s key from a keyring file (the server trusts that key).
    pub fn from_keyring(path: &std::path::Path) -> Result<Self, BenchError> {
        let kr = Keyring::load(path)
            .map_err(|e| BenchError::Keys(format!("keyring {}: {e}", path.display())))?;
        let name = client_name();
        let key = kr
            .key(&name)
            .cloned()
            .map_err(|e| BenchError::Keys(format!("{}: {e}", path.display())))?;
        Ok(Self::with_key(key))
    }

    fn with_key(key: CryptoKey) -> Self {
        let client = client_name();
        let mut kr = Keyring::new();
        kr.insert(client.clone(), key.clone());
        kr.set_caps(&client, "mon", "allow *");
        Self {
            client,
            key,
            keyring: Arc::new(kr),
        }
    }
}

/// `client.bench`.
pub fn client_name() -> EntityName {
    EntityName {
        ty: msgr2_codec::entity::EntityType::Client,
        id: "bench".into(),
    }
}

/// What a server needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// msgr2 address vector to bind (port 0 picks one).
    pub listen: EntityAddrVec,
    /// Raw-mode address to bind (port 0 picks one).
    pub raw_listen: SocketAddr,
    /// Cores the server's threads are pinned to (round robin).
    pub cores: Vec<usize>,
    /// Keys it accepts.
    pub keys: BenchKeys,
    /// Where the server's threads account their CPU time.
    pub cpu: Arc<CpuSide>,
    /// Largest payload accepted.
    pub max_size: u64,
    /// Where received payloads go back to the client (loopback runs).
    pub recycle: Option<Arc<PayloadPool>>,
    /// Serve Ceph's admin socket at this (expanded) path (engine transport only).
    pub admin_socket: Option<std::path::PathBuf>,
}

/// What a client needs.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Number of connections.
    pub conns: usize,
    /// Cores the client's threads are pinned to (round robin).
    pub cores: Vec<usize>,
    /// Identity and key.
    pub keys: BenchKeys,
    /// Where the client's threads account their CPU time.
    pub cpu: Arc<CpuSide>,
    /// Largest payload that will be sent.
    pub max_size: u64,
    /// Recycled payloads (loopback runs).
    pub recycle: Option<Arc<PayloadPool>>,
}

/// A running bench server.
pub trait Server: Send {
    /// Where to reach it.
    fn target(&self) -> Target;
    /// Stops accepting and waits for the acceptors (connections end when clients close).
    fn shutdown(self: Box<Self>);
}

/// Work counters of a client transport (summed over its threads), where it keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// `io_uring_enter` calls (or write/read syscalls).
    pub enters: u64,
    /// Send operations submitted (each may carry many messages).
    pub send_ops: u64,
    /// Times a thread went to sleep waiting for work.
    pub sleeps: u64,
}

/// Open client connections of one cell.
pub trait ClientConns: Send {
    /// The client side's I/O counters so far, if the transport keeps them.
    fn io_counts(&self) -> Option<IoCounts> {
        None
    }
    /// Asks the server (over the first connection) for its side's CPU nanoseconds (and heap
    /// allocations, where it counts them) so far.
    fn server_stats(&mut self) -> Result<crate::bench::wire::ServerStats, BenchError>;
    /// Runs one workload per connection until every one of them has drained; returns them.
    fn run(&mut self, workloads: Vec<ConnWorkload>) -> Result<Vec<ConnWorkload>, BenchError>;
}

/// A way of moving bench messages.
pub trait Transport: Send + Sync {
    /// Its name (`--transport`).
    fn name(&self) -> &'static str;
    /// Starts a server answering all modes.
    fn serve(&self, opts: &ServeOptions) -> Result<Box<dyn Server>, BenchError>;
    /// Opens `opts.conns` connections in `mode`, handshakes done.
    fn connect(
        &self,
        target: &Target,
        mode: Mode,
        opts: &ConnectOptions,
    ) -> Result<Box<dyn ClientConns>, BenchError>;
}

/// The transport `msgr2 bench` uses unless `--transport` says otherwise: the engine once it
/// has landed, the blocking transport until then.
pub const DEFAULT_TRANSPORT: &str = if engine::AVAILABLE {
    "engine"
} else {
    "blocking"
};

/// The transport called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Transport>, BenchError> {
    match name {
        "blocking" => Ok(Box::new(blocking::Blocking)),
        "engine" => Ok(Box::new(engine::Engine)),
        other => Err(BenchError::Usage(format!(
            "unknown transport {other:?} (expected blocking or engine)"
        ))),
    }
}

/// A deterministic, incompressible-looking payload of `n` bytes.
pub fn payload(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}
