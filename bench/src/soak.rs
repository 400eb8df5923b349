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

// ---------------------------------------------------------------- message format

const MAGIC: u32 = 0x4b41_4f53; // "SOAK"
const FLAG_LOSSY: u32 = 1;
const FRONT_LEN: usize = 48;

/// Client → server: checked payload.
const T_DATA: u16 = 0x5301;
/// Server → client: checked payload acknowledging a DATA.
const T_ECHO: u16 = 0x5302;
/// Client → server: the end (front: JSON `{"sent": N}`).
const T_FIN: u16 = 0x5303;
/// Server → client: the server's findings (front: JSON).
const T_FIN_ACK: u16 = 0x5304;
/// Client → server: done, the server may exit.
const T_BYE: u16 = 0x5305;

/// Stream ids (they select the size distribution).
const S_DATA: u64 = 1;
const S_ECHO: u64 = 2;

/// Bytes of the pattern pool: the largest payload plus the offsets' spread.
const POOL_SPREAD: usize = 4096;
const MAX_PAYLOAD: usize = 4 << 20;
/// Sequence numbers beyond this are treated as corrupt (bounds the bitmap).
const MAX_SEQ: u64 = 1 << 34;

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fixed pattern every payload is a slice of (the same in every process).
fn pool() -> Arc<Vec<u8>> {
    let len = MAX_PAYLOAD + POOL_SPREAD;
    let mut v = Vec::with_capacity(len + 8);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(&mix(i ^ 0x50a4_50a4).to_le_bytes());
        i += 1;
    }
    v.truncate(len);
    Arc::new(v)
}

/// Length and pool offset of message `seq` of `stream`: mixed sizes from 0 B to `max`.
fn shape(seed: u64, stream: u64, seq: u64, max: usize) -> (usize, usize) {
    let h = mix(seed ^ stream.rotate_left(56) ^ mix(seq));
    let h2 = mix(h);
    let r = h % 100;
    let (lo, hi): (u64, u64) = match stream {
        S_DATA => match r {
            0..=4 => (0, 0),
            5..=39 => (1, 256),
            40..=69 => (257, 4096),
            70..=91 => (4097, 65536),
            92..=98 => (65537, 262_144),
            _ => (262_145, 1 << 20),
        },
        _ => match r {
            0..=9 => (0, 0),
            10..=59 => (1, 256),
            60..=89 => (257, 4096),
            _ => (4097, 65536),
        },
    };
    let len = (lo + h2 % (hi - lo + 1)).min(max as u64) as usize;
    let off = ((h2 >> 40) % POOL_SPREAD as u64) as usize;
    (len, off)
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn get32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn get64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A DATA or ECHO message.
fn make(
    msg_type: u16,
    flags: u32,
    seq: u64,
    aux: u64,
    len: usize,
    off: usize,
    pool: &[u8],
) -> Message {
    let data = pool[off..off + len].to_vec();
    let dcrc = crc32c(0xffff_ffff, &data);
    let mut front = Vec::with_capacity(FRONT_LEN);
    put32(&mut front, MAGIC);
    put32(&mut front, flags);
    put64(&mut front, seq);
    put64(&mut front, aux);
    put64(&mut front, len as u64);
    put64(&mut front, off as u64);
    put32(&mut front, dcrc);
    let fcrc = crc32c(0xffff_ffff, &front);
    put32(&mut front, fcrc);
    let mut m = Message::new(msg_type, 1, 1, front);
    m.header.tid = seq;
    m.data = data.into();
    m
}

/// What a checked DATA/ECHO message carries.
struct Parsed {
    flags: u32,
    seq: u64,
    aux: u64,
    len: u64,
}

/// Checks a DATA/ECHO message's front and payload; the error describes the corruption.
fn check(msg: &Message, pool: &[u8]) -> Result<Parsed, String> {
    let f = &msg.front;
    if f.len() != FRONT_LEN {
        return Err(format!("front of {} bytes", f.len()));
    }
    if get32(f, 0) != MAGIC {
        return Err("bad magic".into());
    }
    if crc32c(0xffff_ffff, &f[..FRONT_LEN - 4]) != get32(f, FRONT_LEN - 4) {
        return Err("front crc mismatch".into());
    }
    let p = Parsed {
        flags: get32(f, 4),
        seq: get64(f, 8),
        aux: get64(f, 16),
        len: get64(f, 24),
    };
    let off = get64(f, 32);
    if p.seq == 0 || p.seq > MAX_SEQ {
        return Err(format!("sequence {} out of range", p.seq));
    }
    if msg.data.len() as u64 != p.len {
        return Err(format!(
            "message {}: {} data bytes, front says {}",
            p.seq,
            msg.data.len(),
            p.len
        ));
    }
    if crc32c(0xffff_ffff, &msg.data) != get32(f, 40) {
        return Err(format!("message {}: data crc mismatch", p.seq));
    }
    let ok = usize::try_from(off)
        .ok()
        .and_then(|o| pool.get(o..o.checked_add(msg.data.len())?))
        .is_some_and(|s| s == msg.data.as_slice());
    if !ok {
        return Err(format!(
            "message {}: payload differs from its pattern",
            p.seq
        ));
    }
    if msg.header.tid != p.seq {
        return Err(format!("message {}: tid {}", p.seq, msg.header.tid));
    }
    Ok(p)
}

/// A control message with a JSON front.
fn control(msg_type: u16, v: &Value) -> Message {
    Message::new(msg_type, 1, 1, v.to_string().into_bytes())
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

// ---------------------------------------------------------------- server

/// A server-side connection's state.
#[derive(Default)]
struct SrvConn {
    /// Last DATA sequence received on it.
    last: u64,
    /// Next ECHO sequence on it (lossy connections number echoes per connection).
    echo_next: u64,
}

struct ServerInner {
    seen: Bitmap,
    data: StreamStats,
    /// Highest DATA sequence received (lossless order check).
    last: u64,
    lossy: bool,
    conns: HashMap<u64, SrvConn>,
    /// Next ECHO sequence of the lossless session.
    echo_next: u64,
    echoes_sent: u64,
    echo_bytes: u64,
    resets: Vec<String>,
    readies: u64,
    resumed: u64,
    /// Faults the session survived (`on_fault`).
    faults: u64,
    accept_failures: u64,
    /// The client's FIN: how many DATA messages it sent.
    fin: Option<u64>,
    bye: bool,
    first: Option<Instant>,
    last_activity: Instant,
}

struct ServerState {
    inner: Mutex<ServerInner>,
    pool: Arc<Vec<u8>>,
    seed: u64,
}

impl ServerState {
    /// What the server saw, for FIN_ACK and its own report.
    fn findings(&self, s: &ServerInner, sent: u64) -> Value {
        let lost = sent.saturating_sub(s.data.received);
        let (gaps, truncated) = s.seen.gaps(sent, 100_000);
        json!({
            "data": s.data.json(lost),
            "gaps": gaps.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
            "gaps_truncated": truncated,
            "echoes_sent": s.echoes_sent,
            "echo_bytes": s.echo_bytes,
            "resets": s.resets.len(),
            "reset_reasons": s.resets.iter().take(10).collect::<Vec<_>>(),
        })
    }
}

struct ServerDispatcher {
    st: Arc<ServerState>,
}

impl ServerDispatcher {
    fn on_data(&self, s: &mut ServerInner, conn: &ConnHandle, msg: &Message) {
        let p = match check(msg, &self.st.pool) {
            Ok(p) => p,
            Err(e) => {
                s.data.corrupt += 1;
                s.data.problem(format!("corrupt DATA: {e}"));
                return;
            }
        };
        let lossy = p.flags & FLAG_LOSSY != 0;
        s.lossy |= lossy;
        let c = s.conns.entry(conn.id()).or_default();
        let prev_on_conn = std::mem::replace(&mut c.last, p.seq);
        if s.seen.set(p.seq) {
            s.data.duplicated += 1;
            s.data.problem(format!("DATA {} received twice", p.seq));
            return;
        }
        if lossy {
            // Within one connection the sequence is contiguous; a new connection may start
            // after a gap (the messages lost with the previous connection's reset).
            if prev_on_conn != 0 && p.seq != prev_on_conn + 1 {
                s.data.reordered += 1;
                s.data.problem(format!(
                    "DATA {} after {prev_on_conn} on one connection",
                    p.seq
                ));
            }
        } else if p.seq != s.last + 1 {
            s.data.reordered += 1;
            s.data.problem(format!(
                "DATA {} after {} (lossless session)",
                p.seq, s.last
            ));
        }
        s.last = s.last.max(p.seq);
        s.data.received += 1;
        s.data.bytes += p.len;
        // Answer with an ECHO acknowledging it.
        let eseq = if lossy {
            let c = s.conns.entry(conn.id()).or_default();
            c.echo_next += 1;
            c.echo_next
        } else {
            s.echo_next += 1;
            s.echo_next
        };
        let (len, off) = shape(self.st.seed, S_ECHO, eseq, usize::MAX);
        let echo = make(T_ECHO, p.flags, eseq, p.seq, len, off, &self.st.pool);
        if conn.send(echo).is_ok() {
            s.echoes_sent += 1;
            s.echo_bytes += len as u64;
        }
    }
}

impl Dispatcher for ServerDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let st = Arc::clone(&self.st);
        let mut g = lock(&st.inner);
        let s = &mut *g;
        let now = Instant::now();
        s.last_activity = now;
        s.first.get_or_insert(now);
        match msg.header.msg_type {
            T_DATA => self.on_data(s, conn, &msg),
            T_FIN => {
                let sent = serde_json::from_slice::<Value>(&msg.front)
                    .ok()
                    .and_then(|v| v["sent"].as_u64());
                match sent {
                    Some(n) if n <= MAX_SEQ => {
                        s.fin = Some(n);
                        let f = self.st.findings(s, n);
                        let _ = conn.send(control(T_FIN_ACK, &f));
                    }
                    _ => {
                        s.data.corrupt += 1;
                        s.data.problem("unreadable FIN".into());
                    }
                }
            }
            T_BYE => s.bye = true,
            t => {
                s.data.corrupt += 1;
                s.data.problem(format!("unexpected message type {t:#x}"));
            }
        }
    }

    fn on_accept(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        let mut s = lock(&self.st.inner);
        s.readies += 1;
        if peer.reconnected {
            s.resumed += 1;
        }
    }

    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        self.on_accept(conn, peer);
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let mut s = lock(&self.st.inner);
        s.conns.remove(&conn.id());
        s.resets.push(error.to_string());
    }

    fn on_fault(&mut self, _conn: &ConnHandle, _error: &msgr2_engine::ConnError) {
        lock(&self.st.inner).faults += 1;
    }

    fn on_accept_failed(
        &mut self,
        _peer: Option<std::net::SocketAddr>,
        _error: &msgr2_engine::ConnError,
    ) {
        lock(&self.st.inner).accept_failures += 1;
    }
}

fn server(args: &SoakArgs) -> Result<(), SoakError> {
    // The server accepts either kind of client: a lossless peer of the mode's entity type or
    // a lossy `client.*`.
    let setup = Setup::new(args.mode, false);
    let st = Arc::new(ServerState {
        inner: Mutex::new(ServerInner {
            seen: Bitmap::default(),
            data: StreamStats::default(),
            last: 0,
            lossy: false,
            conns: HashMap::new(),
            echo_next: 0,
            echoes_sent: 0,
            echo_bytes: 0,
            resets: Vec::new(),
            readies: 0,
            resumed: 0,
            faults: 0,
            accept_failures: 0,
            fin: None,
            bye: false,
            first: None,
            last_activity: Instant::now(),
        }),
        pool: pool(),
        seed: args.seed,
    });
    let st2 = Arc::clone(&st);
    let m = setup
        .builder(setup.server_name.clone(), args)
        .bind(args.listen.as_str())
        .policy(setup.peer_type, Policy::lossless_peer(0))
        .policy(EntityType::Client, Policy::stateless_server(0))
        .dispatcher(move |_| {
            Box::new(ServerDispatcher {
                st: Arc::clone(&st2),
            }) as Box<dyn Dispatcher>
        })
        .start()?;
    {
        let addrs = m.addrs().to_string();
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", json!({"event": "listening", "addrs": addrs}))?;
        } else {
            writeln!(out, "listening {addrs}")?;
        }
        out.flush()?;
    }
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let linger = Duration::from_secs(3);
    let started = Instant::now();
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(50));
        let s = lock(&st.inner);
        let idle = s.last_activity.elapsed();
        if s.bye {
            break Ok(());
        }
        if s.fin.is_some() && idle > linger {
            // FIN answered; the BYE was lost (lossy) or the client went away.
            break Ok(());
        }
        if s.first.is_none() && started.elapsed() > stall {
            break Err(SoakError::Stalled(format!(
                "no message from a client within {stall:?}"
            )));
        }
        if s.first.is_some() && idle > stall {
            break Err(SoakError::Stalled(format!(
                "no message for {stall:?} after {} DATA received; counters {:?}",
                s.data.received,
                m.counters()
            )));
        }
    };
    // Figures before shutting down (our shutdown is a fault for the peer).
    let counters = m.counters();
    let s = lock(&st.inner);
    let duration = match s.first {
        Some(f) => s.last_activity.saturating_duration_since(f),
        None => Duration::ZERO,
    };
    let sent = s.fin.unwrap_or(s.last);
    let lost = sent.saturating_sub(s.data.received);
    let (mps, mbps) = rate(s.data.received, s.data.bytes + s.echo_bytes, duration);
    let mut failures = Vec::new();
    if s.fin.is_none() {
        failures.push("no FIN from the client".to_owned());
    }
    if s.data.duplicated + s.data.reordered + s.data.corrupt > 0 {
        failures.push("duplicated, reordered or corrupt DATA".to_owned());
    }
    if !s.lossy && lost > 0 {
        failures.push(format!("{lost} DATA lost on a lossless session"));
    }
    if !s.lossy && !s.resets.is_empty() {
        failures.push(format!("{} resets of a lossless session", s.resets.len()));
    }
    if let Err(e) = &outcome {
        failures.push(e.to_string());
    }
    let ok = failures.is_empty();
    let mut report = st.findings(&s, sent);
    if let Value::Object(o) = &mut report {
        o.remove("gaps");
        o.insert("role".into(), json!("server"));
        o.insert("mode".into(), json!(args.mode.name()));
        o.insert("lossy".into(), json!(s.lossy));
        o.insert("messages".into(), json!(sent));
        o.insert(
            "gaps_count".into(),
            json!(s.seen.gaps(sent, usize::MAX).0.len()),
        );
        o.insert("readies".into(), json!(s.readies));
        o.insert("sessions_resumed_seen".into(), json!(s.resumed));
        o.insert("faults_survived".into(), json!(s.faults));
        o.insert("accept_failures".into(), json!(s.accept_failures));
        o.insert("inject_failures_every".into(), json!(args.inject_failures));
        o.insert("counters".into(), counters_json(&counters));
        o.insert("duration_s".into(), json!(duration.as_secs_f64()));
        o.insert("msgs_per_s".into(), json!(mps));
        o.insert("mb_per_s".into(), json!(mbps));
        o.insert("result".into(), json!(if ok { "ok" } else { "FAIL" }));
        o.insert("failures".into(), json!(failures));
    }
    let text = format!(
        "server ({}, {}): received {} of {sent} DATA, lost {lost}, duplicated {}, reordered {}, corrupt {}; \
         echoes sent {}; resets {}; reconnects {} resumed {} moved {} injected failures {} connection errors {}; \
         {:.1} s, {mps:.0} msg/s, {mbps:.1} MB/s; {}\n",
        args.mode.name(),
        if s.lossy { "lossy" } else { "lossless" },
        s.data.received,
        s.data.duplicated,
        s.data.reordered,
        s.data.corrupt,
        s.echoes_sent,
        s.resets.len(),
        counters.session_reconnects,
        counters.sessions_resumed,
        counters.sessions_moved,
        counters.injected_socket_failures,
        counters.connection_errors,
        duration.as_secs_f64(),
        if ok { "ok".to_owned() } else { format!("FAIL: {}", failures.join("; ")) },
    );
    drop(s);
    emit(args, &report, &text)?;
    let _ = m.shutdown();
    if ok {
        Ok(())
    } else {
        Err(SoakError::Failed(failures.join("; ")))
    }
}

// ---------------------------------------------------------------- client

/// One client connection (lossless: the one session; lossy: one per reset).
#[derive(Debug, Default)]
struct CliConn {
    /// The reset reported for it (`on_reset`).
    reset: Option<String>,
    /// Next ECHO sequence expected on it (lossy).
    echo_next: u64,
    /// ECHOs received on it.
    acks: u64,
}

struct ClientInner {
    echo: StreamStats,
    /// Next ECHO sequence expected on the lossless session.
    echo_next: u64,
    /// DATA sent and not yet echoed: (seq, payload bytes).
    unacked: VecDeque<(u64, u64)>,
    inflight_bytes: u64,
    conns: HashMap<u64, CliConn>,
    fin_ack: Option<Value>,
    readies: u64,
    resumed: u64,
    /// Faults the session survived (`on_fault`).
    faults: u64,
    accepts: u64,
    /// Bumped by every message and reset: the stall detector's clock.
    progress: u64,
}

struct ClientState {
    inner: Mutex<ClientInner>,
    cv: Condvar,
    pool: Arc<Vec<u8>>,
    lossy: bool,
}

impl ClientInner {
    fn acked_through(&mut self, seq: u64) {
        while let Some(&(s, len)) = self.unacked.front() {
            if s > seq {
                break;
            }
            self.unacked.pop_front();
            self.inflight_bytes -= len;
        }
    }
}

struct ClientDispatcher {
    st: Arc<ClientState>,
}

impl ClientDispatcher {
    fn on_echo(&self, s: &mut ClientInner, conn: &ConnHandle, msg: &Message) {
        let p = match check(msg, &self.st.pool) {
            Ok(p) => p,
            Err(e) => {
                s.echo.corrupt += 1;
                s.echo.problem(format!("corrupt ECHO: {e}"));
                return;
            }
        };
        let c = s.conns.entry(conn.id()).or_default();
        c.acks += 1;
        let next = if self.st.lossy {
            &mut c.echo_next
        } else {
            &mut s.echo_next
        };
        let expected = *next + 1;
        if p.seq == expected {
            *next = p.seq;
        } else if p.seq < expected {
            s.echo.duplicated += 1;
            s.echo
                .problem(format!("ECHO {} again (expected {expected})", p.seq));
            return;
        } else {
            *next = p.seq;
            s.echo.reordered += 1;
            s.echo
                .problem(format!("ECHO {} when {expected} was expected", p.seq));
        }
        s.echo.received += 1;
        s.echo.bytes += p.len;
        s.acked_through(p.aux);
    }
}

impl Dispatcher for ClientDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let st = Arc::clone(&self.st);
        let mut g = lock(&st.inner);
        let s = &mut *g;
        s.progress += 1;
        match msg.header.msg_type {
            T_ECHO => self.on_echo(s, conn, &msg),
            T_FIN_ACK => match serde_json::from_slice::<Value>(&msg.front) {
                Ok(v) => s.fin_ack = Some(v),
                Err(e) => {
                    s.echo.corrupt += 1;
                    s.echo.problem(format!("unreadable FIN_ACK: {e}"));
                }
            },
            t => {
                s.echo.corrupt += 1;
                s.echo.problem(format!("unexpected message type {t:#x}"));
            }
        }
        drop(g);
        st.cv.notify_all();
    }

    fn on_connect(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        // Not progress for the stall detector: a session that keeps reconnecting without
        // delivering anything is stuck.
        let mut s = lock(&self.st.inner);
        s.readies += 1;
        if peer.reconnected {
            s.resumed += 1;
        }
    }

    fn on_accept(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        lock(&self.st.inner).accepts += 1;
        self.on_connect(conn, peer);
    }

    fn on_fault(&mut self, _conn: &ConnHandle, _error: &msgr2_engine::ConnError) {
        lock(&self.st.inner).faults += 1;
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let mut s = lock(&self.st.inner);
        s.progress += 1;
        s.conns.entry(conn.id()).or_default().reset = Some(error.to_string());
        drop(s);
        self.st.cv.notify_all();
    }
}

/// A run of DATA sequence numbers sent on one connection.
#[derive(Debug)]
struct Epoch {
    conn: u64,
    first: u64,
    last: u64,
}

/// Waits on the client's condition variable until `done` holds, failing after `stall` without
/// progress (or after `limit` in total, if given).
fn wait_until(
    st: &ClientState,
    stall: Duration,
    limit: Option<Duration>,
    what: &str,
    mut done: impl FnMut(&mut ClientInner) -> bool,
) -> Result<bool, SoakError> {
    let started = Instant::now();
    let mut g = lock(&st.inner);
    let mut seen = g.progress;
    let mut since = Instant::now();
    loop {
        if done(&mut g) {
            return Ok(true);
        }
        if limit.is_some_and(|l| started.elapsed() > l) {
            return Ok(false);
        }
        if g.progress != seen {
            seen = g.progress;
            since = Instant::now();
        } else if since.elapsed() > stall {
            return Err(SoakError::Stalled(format!(
                "{what}: nothing happened for {stall:?} ({} ECHOs received, {} DATA unacknowledged)",
                g.echo.received,
                g.unacked.len()
            )));
        }
        g = match st.cv.wait_timeout(g, Duration::from_millis(50)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

fn client(args: &SoakArgs) -> Result<(), SoakError> {
    let connect = args
        .connect
        .as_deref()
        .ok_or_else(|| SoakError::Usage("--role client needs --connect ADDRVEC".into()))?;
    let server: EntityAddrVec = connect
        .parse()
        .map_err(|e| SoakError::Usage(format!("--connect {connect}: {e}")))?;
    let setup = Setup::new(args.mode, args.lossy);
    let st = Arc::new(ClientState {
        inner: Mutex::new(ClientInner {
            echo: StreamStats::default(),
            echo_next: 0,
            unacked: VecDeque::new(),
            inflight_bytes: 0,
            conns: HashMap::new(),
            fin_ack: None,
            readies: 0,
            resumed: 0,
            faults: 0,
            accepts: 0,
            progress: 0,
        }),
        cv: Condvar::new(),
        pool: pool(),
        lossy: args.lossy,
    });
    let st2 = Arc::clone(&st);
    let mut b = setup
        .builder(setup.client_name.clone(), args)
        .dispatcher(move |_| {
            Box::new(ClientDispatcher {
                st: Arc::clone(&st2),
            }) as Box<dyn Dispatcher>
        });
    b = if args.lossy {
        b.policy(setup.peer_type, Policy::lossy_client(0))
    } else {
        b.policy(setup.peer_type, Policy::lossless_peer(0))
            .bind(args.bind.as_str())
    };
    let m = b.start()?;
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let flags = if args.lossy { FLAG_LOSSY } else { 0 };
    let started = Instant::now();
    let mut epochs: Vec<Epoch> = Vec::new();
    let mut bytes_sent = 0u64;
    let run = pump(
        args,
        &m,
        &server,
        &setup,
        &st,
        stall,
        flags,
        &mut epochs,
        &mut bytes_sent,
    );
    let duration = started.elapsed();
    // Figures before shutting down (our shutdown is a fault for the peer).
    let counters = m.counters();
    let report = client_report(args, &st, &epochs, bytes_sent, duration, &counters, run);
    let (value, text, failures) = report;
    emit(args, &value, &text)?;
    let _ = m.shutdown();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SoakError::Failed(failures.join("; ")))
    }
}

fn reset_of(st: &ClientState, conn: &ConnHandle) -> bool {
    lock(&st.inner)
        .conns
        .get(&conn.id())
        .is_some_and(|c| c.reset.is_some())
}

/// Opens a connection and records it.
fn dial(
    m: &Messenger,
    server: &EntityAddrVec,
    setup: &Setup,
    st: &ClientState,
) -> Result<ConnHandle, SoakError> {
    let c = m.connect(server, setup.peer_type)?;
    lock(&st.inner).conns.entry(c.id()).or_default();
    Ok(c)
}

/// Sends every DATA message, waits for the echoes, and exchanges FIN / FIN_ACK / BYE.
#[allow(clippy::too_many_arguments)]
fn pump(
    args: &SoakArgs,
    m: &Messenger,
    server: &EntityAddrVec,
    setup: &Setup,
    st: &ClientState,
    stall: Duration,
    flags: u32,
    epochs: &mut Vec<Epoch>,
    bytes_sent: &mut u64,
) -> Result<(), SoakError> {
    let n = args.messages;
    let mut seq = 1u64;
    let mut conn = dial(m, server, setup, st)?;
    epochs.push(Epoch {
        conn: conn.id(),
        first: 1,
        last: 0,
    });
    loop {
        // Send on this connection until done or it resets (lossy).
        let mut lost_conn = false;
        while seq <= n {
            let cid = conn.id();
            let (len, off) = shape(args.seed, S_DATA, seq, args.max_size);
            let window = args
                .window
                .unwrap_or(if args.lossy { 64 } else { 2048 })
                .max(1);
            let wb = args.window_bytes;
            let lossy = args.lossy;
            wait_until(st, stall, None, "sending", |s| {
                (lossy && s.conns.get(&cid).is_some_and(|c| c.reset.is_some()))
                    || (s.unacked.len() < window as usize
                        && (s.inflight_bytes + len as u64 <= wb || s.unacked.is_empty()))
            })?;
            if args.lossy && (reset_of(st, &conn) || conn.is_closed()) {
                lost_conn = true;
                break;
            }
            let msg = make(T_DATA, flags, seq, 0, len, off, &st.pool);
            {
                let mut s = lock(&st.inner);
                s.unacked.push_back((seq, len as u64));
                s.inflight_bytes += len as u64;
            }
            if let Err(e) = conn.send(msg) {
                if !args.lossy {
                    return Err(SoakError::Failed(format!(
                        "the lossless session closed at DATA {seq}: {e}"
                    )));
                }
                let mut s = lock(&st.inner);
                s.unacked.pop_back();
                s.inflight_bytes -= len as u64;
                lost_conn = true;
                break;
            }
            *bytes_sent += len as u64;
            if let Some(e) = epochs.last_mut() {
                e.last = seq;
            }
            seq += 1;
        }
        if !lost_conn {
            // Everything sent: wait for the echoes (lossy: or the connection's reset).
            let cid = conn.id();
            let lossy = args.lossy;
            wait_until(st, stall, None, "waiting for the last ECHOs", |s| {
                s.unacked.is_empty()
                    || (lossy && s.conns.get(&cid).is_some_and(|c| c.reset.is_some()))
            })?;
            if !(args.lossy && reset_of(st, &conn)) {
                break;
            }
        }
        if !args.lossy {
            return Err(SoakError::Failed("the lossless session closed".into()));
        }
        // Lossy: the connection reset. Wait for its reset callback (the losses are checked
        // against it), forget what it had in flight and dial again.
        let _ = wait_until(st, stall, Some(Duration::from_secs(5)), "reset", |s| {
            s.conns.get(&conn.id()).is_some_and(|c| c.reset.is_some())
        })?;
        {
            let mut s = lock(&st.inner);
            s.unacked.clear();
            s.inflight_bytes = 0;
        }
        conn.mark_down();
        conn = dial(m, server, setup, st)?;
        epochs.push(Epoch {
            conn: conn.id(),
            first: seq,
            last: seq - 1,
        });
        if seq > n {
            break;
        }
    }
    // FIN / FIN_ACK (lossy: retried on a new connection after a reset).
    let mut attempts = 0;
    loop {
        attempts += 1;
        if conn.send(control(T_FIN, &json!({ "sent": n }))).is_ok() {
            let cid = conn.id();
            let got = wait_until(st, stall, Some(Duration::from_secs(10)), "FIN", |s| {
                s.fin_ack.is_some() || s.conns.get(&cid).is_some_and(|c| c.reset.is_some())
            })?;
            if got && lock(&st.inner).fin_ack.is_some() {
                break;
            }
        }
        if !args.lossy || attempts >= 20 {
            return Err(SoakError::Failed(format!(
                "no FIN_ACK after {attempts} attempt(s)"
            )));
        }
        conn.mark_down();
        conn = dial(m, server, setup, st)?;
    }
    let _ = conn.send(control(T_BYE, &json!({})));
    // Let the BYE leave before the caller shuts down.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// The client's report: JSON, text and the list of failures (empty: the run passed).
fn client_report(
    args: &SoakArgs,
    st: &ClientState,
    epochs: &[Epoch],
    bytes_sent: u64,
    duration: Duration,
    counters: &Counters,
    run: Result<(), SoakError>,
) -> (Value, String, Vec<String>) {
    let s = lock(&st.inner);
    let mut failures = Vec::new();
    if let Err(e) = &run {
        failures.push(e.to_string());
    }
    let peer = s.fin_ack.clone().unwrap_or(Value::Null);
    let d = &peer["data"];
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let sent = epochs.last().map_or(0, |e| e.last);
    let data_lost = num(d, "lost");
    let echoes_sent = num(&peer, "echoes_sent");
    let echo_lost = echoes_sent.saturating_sub(s.echo.received);
    let client_resets = s.conns.values().filter(|c| c.reset.is_some()).count() as u64;
    // Lossy: every lost DATA must belong to a connection whose reset was reported, and every
    // connection that was not reset got all its echoes.
    let mut unexplained = 0u64;
    if args.lossy {
        let reset = |conn: u64| s.conns.get(&conn).is_some_and(|c| c.reset.is_some());
        if let Some(gaps) = peer["gaps"].as_array() {
            for g in gaps {
                let (a, b) = (g[0].as_u64().unwrap_or(0), g[1].as_u64().unwrap_or(0));
                for e in epochs {
                    let (lo, hi) = (a.max(e.first), b.min(e.last));
                    if lo <= hi && !reset(e.conn) {
                        unexplained += hi - lo + 1;
                    }
                }
            }
        }
        for e in epochs {
            let n = (e.last + 1).saturating_sub(e.first);
            let acks = s.conns.get(&e.conn).map_or(0, |c| c.acks);
            if !reset(e.conn) && acks < n {
                unexplained += n - acks;
            }
        }
        if peer["gaps_truncated"].as_bool() == Some(true) {
            failures.push("the server's list of lost ranges was truncated".into());
        }
    }
    let dup = num(d, "duplicated") + s.echo.duplicated;
    let reord = num(d, "reordered") + s.echo.reordered;
    let corrupt = num(d, "corrupt") + s.echo.corrupt;
    let lost = data_lost + echo_lost;
    if peer.is_null() {
        failures.push("no findings from the server".into());
    }
    if dup + reord + corrupt > 0 {
        failures.push(format!(
            "{dup} duplicated, {reord} reordered, {corrupt} corrupt"
        ));
    }
    if !args.lossy {
        if lost > 0 {
            failures.push(format!("{lost} lost on a lossless session"));
        }
        let resets = client_resets + num(&peer, "resets");
        if resets > 0 {
            failures.push(format!("{resets} resets of a lossless session"));
        }
    } else if unexplained > 0 {
        failures.push(format!(
            "{unexplained} messages lost without a reported reset"
        ));
    }
    if sent != args.messages && run.is_ok() {
        failures.push(format!("sent {sent} of {}", args.messages));
    }
    let ok = failures.is_empty();
    let (mps, mbps) = rate(sent, bytes_sent + s.echo.bytes, duration);
    let value = json!({
        "role": "client",
        "mode": args.mode.name(),
        "lossy": args.lossy,
        "seed": args.seed,
        "messages": args.messages,
        "sent": sent,
        "received": num(d, "received") + s.echo.received,
        "lost": lost,
        "duplicated": dup,
        "reordered": reord,
        "corrupt": corrupt,
        "lost_without_reset": unexplained,
        "data": d,
        "echo": s.echo.json(echo_lost),
        "echoes_sent_by_server": echoes_sent,
        "connections": epochs.len(),
        "client_resets": client_resets,
        "server_resets": num(&peer, "resets"),
        "readies": s.readies,
        "sessions_resumed_seen": s.resumed,
        "faults_survived": s.faults,
        "accepted_from_server": s.accepts,
        "inject_failures_every": args.inject_failures,
        "counters": counters_json(counters),
        "duration_s": duration.as_secs_f64(),
        "bytes_sent": bytes_sent,
        "bytes_received": s.echo.bytes,
        "msgs_per_s": mps,
        "mb_per_s": mbps,
        "result": if ok { "ok" } else { "FAIL" },
        "failures": failures,
    });
    let text = format!(
        "client ({}, {}): sent {sent} DATA ({} connection(s)); server received {}, lost {data_lost}; \
         ECHOs received {} of {echoes_sent}; duplicated {dup}, reordered {reord}, corrupt {corrupt}, \
         lost without reset {unexplained}; resets client {client_resets} server {}; \
         reconnects {} resumed {} moved {} injected failures {} connection errors {}; \
         {:.1} s, {mps:.0} msg/s, {mbps:.1} MB/s; {}\n",
        args.mode.name(),
        if args.lossy { "lossy" } else { "lossless" },
        epochs.len(),
        num(d, "received"),
        s.echo.received,
        num(&peer, "resets"),
        counters.session_reconnects,
        counters.sessions_resumed,
        counters.sessions_moved,
        counters.injected_socket_failures,
        counters.connection_errors,
        duration.as_secs_f64(),
        if ok { "ok".to_owned() } else { format!("FAIL: {}", failures.join("; ")) },
    );
    (value, text, failures)
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
