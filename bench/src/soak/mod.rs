//! `msgr2 soak`: a two-process reliability soak on the io_uring engine.
//!
//! A server (`--role server`) and a client (`--role client`) in separate processes exchange
//! messages over one session while the engine injects socket failures
//! (`--inject-failures N`, Ceph's `ms_inject_socket_failures`). The client sends `--messages`
//! DATA messages of mixed sizes (0 B … 1 MiB, deterministic from `--seed` and the sequence
//! number); the server checks each one and answers with an ECHO of its own (mixed sizes up to
//! 64 KiB) that acknowledges it, so both directions carry checked traffic and the echoes
//! release the client's in-flight window (`--window` messages, `--window-bytes` bytes).
//!
//! Every DATA/ECHO message carries, in its 48-byte front: a magic, flags, its sequence number,
//! the acknowledged sequence (echoes), the data length, the data's offset in a fixed pattern
//! pool, the crc32c of the data and a crc32c of the front itself. The receiver checks both
//! crcs and that the data equals the pool slice, so any corruption, truncation or swapped
//! payload is caught; sequence numbers catch losses, duplicates and reordering.
//!
//! At the end the client sends FIN; the server answers FIN_ACK with what it saw (received,
//! lost, duplicated, reordered, corrupt, the lost ranges, echoes sent) and the client answers
//! BYE. Both print a report (text or `--json`) with those figures, the engine's counters
//! (reconnects, resumed sessions, injected failures, ...), duration and throughput, and exit
//! non-zero when the run failed:
//!
//! - lossless (`lossless_peer` on both sides, the default): anything lost, duplicated,
//!   reordered or corrupt, or a session reset, fails the run;
//! - lossy (`--lossy`: the client is a `lossy_client`, the server a `stateless_server`):
//!   duplicates, reordering and corruption fail the run, and so does any loss that does not
//!   belong to a connection whose reset the client was told of (`Dispatcher::on_reset`).
//!   The client dials a new connection after each reset and carries on with new sequence
//!   numbers (nothing is resent, so a duplicate can only come from the messenger).
//!
//! `--mode secure` authenticates with cephx using a well-known throw-away key (the peers are
//! then mon-style entities, the only kind the engine's cephx server accepts); `--mode crc`
//! (the default) uses auth none.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::crc::crc32c;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{UTime, CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_engine::{
    ConnHandle, Counters, Dispatcher, EngineError, Message, Messenger, MessengerBuilder,
    ModeConfig, PeerInfo, Policy,
};
use serde_json::{json, Value};

mod client;
mod server;
mod wire;

use self::client::client;
use self::server::server;
use self::wire::*;

// ---------------------------------------------------------------- options and errors

/// Which side of the soak this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Accepts the client's session, checks DATA and answers ECHO.
    Server,
    /// Dials the server, sends DATA and checks ECHO.
    Client,
}

/// Connection mode of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SoakMode {
    /// msgr2 crc mode, auth none.
    Crc,
    /// msgr2 secure mode (AES-128-GCM), cephx with a well-known throw-away key.
    Secure,
}

impl SoakMode {
    fn name(self) -> &'static str {
        match self {
            SoakMode::Crc => "crc",
            SoakMode::Secure => "secure",
        }
    }
}

/// `msgr2 soak` options.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Which side this process is.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Server: the address to listen on (port 0 picks one). The bound address vector is the
    /// first line printed (`listening ADDRVEC`, or a JSON object with `--json`).
    #[arg(long, default_value = "v2:127.0.0.1:0")]
    pub listen: String,
    /// Client: the server's address vector, as the server printed it.
    #[arg(long)]
    pub connect: Option<String>,
    /// Client of a lossless run: where it listens, so that the server's side of the session
    /// can reconnect too (lossless_peer: either side reconnects).
    #[arg(long, default_value = "v2:127.0.0.1:0")]
    pub bind: String,
    /// Client: DATA messages to send.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Connection mode (both sides must agree).
    #[arg(long, value_enum, default_value_t = SoakMode::Crc)]
    pub mode: SoakMode,
    /// `ms_inject_socket_failures` for this process: after one in N socket operations the
    /// socket is shut down (0: off).
    #[arg(long, default_value_t = 0)]
    pub inject_failures: u64,
    /// Client: a lossy client (lossy_client towards the server, which treats it as a
    /// stateless_server) instead of a lossless peer session.
    #[arg(long)]
    pub lossy: bool,
    /// Seed of the message sizes and payload offsets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest DATA payload (bytes, at most 4 MiB).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_size: usize,
    /// Client: most DATA messages in flight (sent, not yet echoed). Default 2048, or 64
    /// with `--lossy` (a reset loses what is in flight, so a small window keeps most
    /// messages delivered).
    #[arg(long)]
    pub window: Option<u64>,
    /// Client: most DATA payload bytes in flight.
    #[arg(long, default_value_t = 64 << 20)]
    pub window_bytes: u64,
    /// CPUs for the reactors, comma-separated (default: every CPU available).
    #[arg(long, value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Fail when nothing moves for this many seconds (a hang).
    #[arg(long, default_value_t = 60)]
    pub stall_timeout: u64,
    /// Print the report as one JSON object (and the server's first line as JSON).
    #[arg(long)]
    pub json: bool,
}

/// Why a soak could not run, or failed its checks.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// Bad command-line options.
    #[error("{0}")]
    Usage(String),
    /// The messenger failed.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// Nothing moved for too long.
    #[error("stalled: {0}")]
    Stalled(String),
    /// The run completed but its checks failed (the report says which).
    #[error("soak failed: {0}")]
    Failed(String),
    /// Writing the report failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

// ---------------------------------------------------------------- shared pieces

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Per-direction findings of a receiver.
#[derive(Debug, Default, Clone)]
struct StreamStats {
    /// Distinct messages received intact.
    received: u64,
    duplicated: u64,
    reordered: u64,
    corrupt: u64,
    bytes: u64,
    /// First few problems, described.
    problems: Vec<String>,
}

impl StreamStats {
    fn problem(&mut self, s: String) {
        if self.problems.len() < 20 {
            self.problems.push(s);
        }
    }

    fn json(&self, lost: u64) -> Value {
        json!({
            "received": self.received,
            "lost": lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "corrupt": self.corrupt,
            "bytes": self.bytes,
            "problems": self.problems,
        })
    }
}

/// A set of sequence numbers.
#[derive(Debug, Default)]
struct Bitmap(Vec<u64>);

impl Bitmap {
    /// Sets `seq`; returns whether it was already set.
    fn set(&mut self, seq: u64) -> bool {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let was = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        was
    }

    fn get(&self, seq: u64) -> bool {
        self.0
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Ranges of `1..=n` not set, at most `cap` of them (and whether more were left off).
    fn gaps(&self, n: u64, cap: usize) -> (Vec<(u64, u64)>, bool) {
        let mut out = Vec::new();
        let mut start = None;
        for s in 1..=n {
            match (self.get(s), start) {
                (false, None) => start = Some(s),
                (true, Some(a)) => {
                    if out.len() == cap {
                        return (out, true);
                    }
                    out.push((a, s - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(a) = start {
            if out.len() == cap {
                return (out, true);
            }
            out.push((a, n));
        }
        (out, false)
    }
}

fn counters_json(c: &Counters) -> Value {
    json!({
        "session_reconnects": c.session_reconnects,
        "sessions_resumed": c.sessions_resumed,
        "sessions_moved": c.sessions_moved,
        "injected_socket_failures": c.injected_socket_failures,
        "injected_delays": c.injected_delays,
        "connection_errors": c.connection_errors,
        "created_connections": c.msgr_created_connections,
        "dropped_messages": c.dropped_messages,
        "send_messages": c.msgr_send_messages,
        "recv_messages": c.msgr_recv_messages,
        "send_bytes": c.msgr_send_bytes,
        "recv_bytes": c.msgr_recv_bytes,
    })
}

/// Identities, keys and policies of both sides.
struct Setup {
    server_name: EntityName,
    client_name: EntityName,
    /// The entity type the client dials (`mon` with cephx, `osd` otherwise).
    peer_type: EntityType,
}

impl Setup {
    fn new(mode: SoakMode, lossy: bool) -> Self {
        // The engine's cephx server is mon-style: with secure mode both peers are mons.
        let ty = match mode {
            SoakMode::Crc => EntityType::Osd,
            SoakMode::Secure => EntityType::Mon,
        };
        let client_name = if lossy {
            EntityName::new(EntityType::Client, "soak")
        } else {
            EntityName::new(ty, "soak-client")
        };
        Self {
            server_name: EntityName::new(ty, "soak-server"),
            client_name,
            peer_type: ty,
        }
    }

    /// The well-known throw-away key for every soak name (it protects nothing): the server,
    /// the lossless client and the lossy client.
    fn keyring(&self) -> Keyring {
        let key = CryptoKey::new(UTime { sec: 0, nsec: 0 }, *b"msgr2-rs soak!!!");
        let mut kr = Keyring::new();
        let names = [
            self.server_name.clone(),
            EntityName::new(self.peer_type, "soak-client"),
            EntityName::new(EntityType::Client, "soak"),
        ];
        for n in &names {
            kr.insert(n.clone(), key.clone());
            kr.set_caps(n, "mon", "allow *");
        }
        kr
    }

    fn builder(&self, name: EntityName, args: &SoakArgs) -> MessengerBuilder {
        let mut b = MessengerBuilder::new(name)
            .arena_fallback(true)
            .inject_socket_failures(args.inject_failures)
            .spin_before_park(Some(Duration::from_micros(20)));
        if let Some(c) = &args.cores {
            b = b.cores(c.clone());
        }
        match args.mode {
            SoakMode::Crc => b.auth_none().modes(ModeConfig::all(vec![CON_MODE_CRC])),
            SoakMode::Secure => b
                .keyring(self.keyring())
                .modes(ModeConfig::all(vec![CON_MODE_SECURE])),
        }
    }
}

fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Runs `msgr2 soak`.
pub fn run(args: SoakArgs) -> Result<(), SoakError> {
    init_logging();
    if args.max_size > MAX_PAYLOAD {
        return Err(SoakError::Usage(format!(
            "--max-size is at most {MAX_PAYLOAD}"
        )));
    }
    match args.role {
        Role::Server => server(&args),
        Role::Client => client(&args),
    }
}

fn emit(args: &SoakArgs, report: &Value, text: &str) -> Result<(), SoakError> {
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{report}")?;
    } else {
        write!(out, "{text}")?;
    }
    out.flush()?;
    Ok(())
}

fn rate(n: u64, bytes: u64, d: Duration) -> (f64, f64) {
    let s = d.as_secs_f64().max(1e-9);
    (n as f64 / s, bytes as f64 / s / 1e6)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_round_trip_and_corruption_is_caught() {
        let pool = pool();
        for seq in 1..200 {
            let (len, off) = shape(7, S_DATA, seq, 1 << 20);
            assert!(len <= 1 << 20);
            let m = make(T_DATA, 0, seq, 3, len, off, &pool);
            let p = check(&m, &pool).unwrap();
            assert_eq!((p.seq, p.aux, p.len), (seq, 3, len as u64));
            if len > 0 {
                let mut bad = m.clone();
                bad.data.make_mut()[len / 2] ^= 1;
                assert!(check(&bad, &pool).is_err());
            }
            let mut bad = m.clone();
            bad.front[9] ^= 1;
            assert!(check(&bad, &pool).is_err());
        }
    }

    #[test]
    fn sizes_are_mixed() {
        let sizes: Vec<usize> = (1..10_000)
            .map(|s| shape(1, S_DATA, s, 1 << 20).0)
            .collect();
        assert!(sizes.contains(&0));
        assert!(sizes.iter().any(|&s| s > 512 << 10));
        assert!(sizes.iter().any(|&s| (1..=256).contains(&s)));
        assert_eq!(shape(1, S_DATA, 5, 1 << 20), shape(1, S_DATA, 5, 1 << 20));
    }

    #[test]
    fn gaps_are_ranges() {
        let mut b = Bitmap::default();
        for s in [1, 2, 5, 6, 9] {
            assert!(!b.set(s));
        }
        assert!(b.set(5));
        assert_eq!(b.gaps(10, 100), (vec![(3, 4), (7, 8), (10, 10)], false));
        assert_eq!(b.gaps(10, 1), (vec![(3, 4)], true));
    }
}
