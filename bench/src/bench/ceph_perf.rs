//! `msgr2 bench server --ceph-perf` / `msgr2 bench client --ceph-perf`: the workload of
//! Ceph's own messenger benchmark (`ceph_perf_msgr_server` / `ceph_perf_msgr_client`,
//! package `ceph-test`), so either side can be Ceph's tool and the other ours.
//!
//! * Server: bound as `osd.0`, auth none, crc mode, stateless-server policy towards clients;
//!   every incoming `MOSDOp` is answered with the `MOSDOpReply` Ceph's server sends: built
//!   from the op before its final decode, so it carries the request's tid, pg and flags (ack
//!   bits cleared), result 0, epoch 0, no oid and no ops.
//! * Client: `--jobs` connections (one per job, lossless-client policy, peer type OSD); each
//!   job sends `--ios` `MOSDOp` writes of `--size` zero bytes to `object-name` with up to
//!   `--depth + 1` unanswered (Ceph's client waits while `inflight > concurrency`). The
//!   first window is queued by the calling thread; every later op is sent by the reactor
//!   that owns the connection as replies arrive (no thread hop or wakeup per op). Unlike
//!   Ceph's client, which shuts its messenger down right after the last send, ours waits
//!   until every op is answered (each with tid 1..=ios; a reply for a tid not outstanding on
//!   that connection is [`CephPerfError::UnknownTid`]). It prints Ceph's line
//!   `Total op N run time Xus.` (N = ios, as Ceph prints it) and a JSON cell.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use msgr2_codec::encoding::DecodeError;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_codec::messages::{
    MOSDOp, MOSDOpHead, MOSDOpReply, MessageFront, ObjectLocator, PgId, SPgId, MSG_OSD_OP,
    MSG_OSD_OPREPLY, OSD_FLAG_ACK, OSD_FLAG_ONDISK, OSD_FLAG_ONNVRAM,
};
use msgr2_codec::payload::{AUTH_NONE, CON_MODE_CRC};
use msgr2_codec::Data;
use msgr2_crypto::auth::{AuthResult, NoneServer, ServerAuth, ServerAuthProvider, ServerStep};
use msgr2_engine::{ConnHandle, Dispatcher, Messenger, MessengerBuilder, ModeConfig, Policy};
use msgr2_proto::Message;
use serde_json::json;
use thiserror::Error;

/// Why a `--ceph-perf` run failed.
#[derive(Debug, Error)]
pub enum CephPerfError {
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// The engine could not start or connect.
    #[error("engine: {0}")]
    Engine(String),
    /// A peer's MOSDOp or MOSDOpReply front did not decode.
    #[error("bad {what} from peer: {source}")]
    Decode {
        /// `MOSDOp` or `MOSDOpReply`.
        what: &'static str,
        /// The decoder's error.
        source: DecodeError,
    },
    /// A reply named a tid that is not outstanding on its connection.
    #[error("reply for unknown tid {tid} on job {job}")]
    UnknownTid {
        /// The job (connection) index.
        job: usize,
        /// The tid in the reply.
        tid: u64,
    },
    /// The connection failed.
    #[error("job {job}: connection reset: {error}")]
    Reset {
        /// The job (connection) index.
        job: usize,
        /// What the engine reported.
        error: String,
    },
    /// Not every op was answered in time.
    #[error("job {job}: {answered} of {ios} ops answered after {secs} s")]
    Timeout {
        /// The job (connection) index.
        job: usize,
        /// Replies received.
        answered: u64,
        /// Ops sent.
        ios: u64,
        /// Seconds waited.
        secs: u64,
    },
}

/// Engine logs on stderr when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Frame limits big enough for `size`-byte writes.
fn limits(size: u64) -> Limits {
    let seg = u32::try_from(size.max(1 << 20)).unwrap_or(u32::MAX);
    Limits {
        max_message_segment: seg.max(Limits::default().max_message_segment),
        max_message_total: u64::from(seg).max(Limits::default().max_message_total),
        ..Limits::default()
    }
}

/// The reply Ceph's `ceph_perf_msgr_server` sends for an op with this `head` (see the
/// module docs).
pub fn ceph_perf_reply(head: &MOSDOpHead) -> MOSDOpReply {
    MOSDOpReply {
        pgid: head.pgid.pgid,
        flags: i64::from(head.flags) & !(OSD_FLAG_ONDISK | OSD_FLAG_ONNVRAM | OSD_FLAG_ACK),
        ..MOSDOpReply::default()
    }
}

/// Auth none as Ceph's `DummyAuthClientServer` (what both perf tools use) does it: its client
/// sends an *empty* AUTH_REQUEST payload, not AUTH_NONE's `mode, name, global_id`, and its
/// server accepts anything with global id 0. An AUTH_NONE payload (our client, Ceph's
/// regular clients) is handled as usual.
struct DummyAuthProvider;

impl ServerAuthProvider for DummyAuthProvider {
    fn methods(&self, _peer: EntityType) -> Vec<u32> {
        vec![AUTH_NONE]
    }
    fn start(&self, method: u32, _peer: EntityType) -> Option<Box<dyn ServerAuth>> {
        (method == AUTH_NONE).then(|| Box::new(DummyAuth) as Box<dyn ServerAuth>)
    }
}

struct DummyAuth;

impl ServerAuth for DummyAuth {
    fn method(&self) -> u32 {
        AUTH_NONE
    }
    fn request(&mut self, con_mode: u32, payload: &[u8]) -> ServerStep {
        if payload.is_empty() && con_mode == CON_MODE_CRC {
            return ServerStep::Done {
                payload: Vec::new(),
                result: AuthResult {
                    con_mode,
                    ..AuthResult::default()
                },
            };
        }
        NoneServer { next_global_id: 0 }.request(con_mode, payload)
    }
    fn request_more(&mut self, payload: &[u8]) -> ServerStep {
        NoneServer { next_global_id: 0 }.request_more(payload)
    }
}

/// Server-side counters.
#[derive(Default)]
struct ServerStats {
    ops: AtomicU64,
    bad: AtomicU64,
}

struct OsdEndpoint {
    stats: Arc<ServerStats>,
    /// Per connection: (MOSDOps received, replies queued).
    conns: HashMap<u64, (u64, u64)>,
    /// The last reply front built, with the (pg, flags) it answers: a client's ops mostly
    /// share both, so most replies are a copy of it instead of an encoding.
    last_reply: Option<((PgId, u32), Vec<u8>)>,
}

impl OsdEndpoint {
    /// Prints one JSON line for a connection that ended: how many ops it sent and how many
    /// we answered (the CI test's witness that a Ceph client's every op was answered).
    fn ended(&mut self, conn: &ConnHandle, error: &str) {
        let (ops, replied) = self.conns.remove(&conn.id()).unwrap_or_default();
        let line = json!({
            "event": "closed",
            "peer": conn.peer_socket().map(|s| s.to_string()),
            "ops": ops,
            "replied": replied,
            "error": error,
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Dispatcher for OsdEndpoint {
    fn on_message(&mut self, conn: &ConnHandle, m: Message) {
        if m.header.msg_type != MSG_OSD_OP {
            return;
        }
        // Like Ceph's server, answer from the leading fields alone (no allocation per op).
        match MOSDOp::decode_head(&m.front, m.header.version) {
            Ok(head) => {
                let key = (head.pgid.pgid, head.flags);
                let front = match &self.last_reply {
                    Some((k, front)) if *k == key => front.clone(),
                    _ => {
                        let front = ceph_perf_reply(&head).front_bytes();
                        self.last_reply = Some((key, front.clone()));
                        front
                    }
                };
                let msg = Message {
                    header: MOSDOpReply::header(m.header.tid),
                    front,
                    ..Default::default()
                };
                self.stats.ops.fetch_add(1, Ordering::Relaxed);
                let counts = self.conns.entry(conn.id()).or_default();
                counts.0 += 1;
                if conn.send(msg).is_ok() {
                    counts.1 += 1;
                }
            }
            Err(e) => {
                self.stats.bad.fetch_add(1, Ordering::Relaxed);
                let err = CephPerfError::Decode {
                    what: "MOSDOp",
                    source: e,
                };
                tracing::warn!(peer = ?conn.peer_socket(), "{err}; closing the connection");
                conn.mark_down();
                self.ended(conn, &err.to_string());
            }
        }
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        self.ended(conn, &error.to_string());
    }
}

/// Starts the `--ceph-perf` server on `listen` (an address vector) on `cores`.
pub fn start_server(listen: &str, cores: Vec<usize>) -> Result<Messenger, CephPerfError> {
    let stats = Arc::new(ServerStats::default());
    MessengerBuilder::new(EntityName::new(EntityType::Osd, "0"))
        .bind(listen)
        .nonce(0)
        .cores(cores)
        .auth_none()
        .server_auth(Arc::new(DummyAuthProvider))
        .modes(ModeConfig::all(vec![CON_MODE_CRC]))
        .policy(EntityType::Client, Policy::stateless_server(0))
        .limits(limits(256 << 20))
        .dispatcher(move |_core| {
            Box::new(OsdEndpoint {
                stats: Arc::clone(&stats),
                conns: HashMap::new(),
                last_reply: None,
            }) as Box<dyn Dispatcher>
        })
        .start()
        .map_err(|e| CephPerfError::Engine(e.to_string()))
}

/// What `msgr2 bench client --ceph-perf` runs.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Connections (jobs), each driven from the reactor that owns it.
    pub jobs: usize,
    /// Ceph's "concurrency": a job waits while more than this many ops are unanswered.
    pub depth: u64,
    /// Ops per job.
    pub ios: u64,
    /// Data bytes per op.
    pub size: u64,
    /// Cores for our reactors.
    pub cores: Vec<usize>,
    /// How long to wait for the last replies.
    pub timeout: Duration,
}

/// What every op of a job shares: the encoded front, the header's version and the data.
struct OpTemplate {
    op: MOSDOp,
    front: Vec<u8>,
    data: Data,
    ios: u64,
    depth: u64,
}

/// One job's state, shared by the thread that starts it and the reactor that owns its
/// connection: the reactor sends every op after the first window from its dispatcher, as
/// replies arrive (no thread hop per op), and wakes the starting thread only at the end.
struct Job {
    index: usize,
    state: Mutex<JobState>,
    cond: Condvar,
}

#[derive(Default)]
struct JobState {
    /// Set before the first send.
    template: Option<Arc<OpTemplate>>,
    /// Tids sent and not yet answered, oldest first.
    outstanding: VecDeque<u64>,
    /// The next tid to send (tids are 1..=ios).
    next_tid: u64,
    answered: u64,
    /// When the last op was queued.
    sent_at: Option<Instant>,
    /// When the last reply arrived.
    done_at: Option<Instant>,
    error: Option<CephPerfError>,
}

impl JobState {
    /// Sends ops while at most `depth` are unanswered (so up to `depth + 1` in flight, as
    /// Ceph's client, which waits while `inflight > concurrency`).
    fn fill_window(&mut self, conn: &ConnHandle) {
        let Some(t) = self.template.clone() else {
            return;
        };
        while self.next_tid <= t.ios
            && self.outstanding.len() as u64 <= t.depth
            && self.error.is_none()
        {
            let tid = self.next_tid;
            self.next_tid += 1;
            self.outstanding.push_back(tid);
            let msg = Message {
                header: t.op.header_for(tid),
                front: t.front.clone(),
                data: t.data.clone(),
                ..Default::default()
            };
            if let Err(e) = conn.send(msg) {
                self.error = Some(CephPerfError::Engine(e.to_string()));
            }
            if tid == t.ios {
                self.sent_at = Some(Instant::now());
            }
        }
    }

    /// Whether the starting thread has something to wake up for.
    fn finished(&self) -> bool {
        self.error.is_some() || self.done_at.is_some()
    }
}

struct OsdClient {
    jobs: Arc<RwLock<HashMap<u64, Arc<Job>>>>,
    /// This reactor's jobs, looked up once per connection.
    mine: HashMap<u64, Arc<Job>>,
}

impl OsdClient {
    fn job(&mut self, conn: &ConnHandle) -> Option<Arc<Job>> {
        if let Some(j) = self.mine.get(&conn.id()) {
            return Some(Arc::clone(j));
        }
        let j = self.jobs.read().ok()?.get(&conn.id()).cloned()?;
        self.mine.insert(conn.id(), Arc::clone(&j));
        Some(j)
    }
}

impl Dispatcher for OsdClient {
    fn on_message(&mut self, conn: &ConnHandle, m: Message) {
        if m.header.msg_type != MSG_OSD_OPREPLY {
            return;
        }
        let Some(job) = self.job(conn) else { return };
        let Ok(mut st) = job.state.lock() else { return };
        if let Err(e) = MOSDOpReply::decode_front(&m.front, m.header.version) {
            st.error.get_or_insert(CephPerfError::Decode {
                what: "MOSDOpReply",
                source: e,
            });
        } else if let Some(pos) = st.outstanding.iter().position(|t| *t == m.header.tid) {
            // Replies come in order on one connection: this is almost always the front.
            st.outstanding.remove(pos);
            st.answered += 1;
            let ios = st.template.as_ref().map_or(0, |t| t.ios);
            if st.answered >= ios {
                st.done_at = Some(Instant::now());
            } else {
                st.fill_window(conn);
            }
        } else {
            st.error.get_or_insert(CephPerfError::UnknownTid {
                job: job.index,
                tid: m.header.tid,
            });
        }
        let wake = st.finished();
        drop(st);
        if wake {
            job.cond.notify_all();
        }
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let Some(job) = self.job(conn) else { return };
        if let Ok(mut st) = job.state.lock() {
            st.error.get_or_insert(CephPerfError::Reset {
                job: job.index,
                error: error.to_string(),
            });
        }
        job.cond.notify_all();
    }
}

/// Result of a client run.
#[derive(Debug, Clone)]
pub struct ClientResult {
    /// Wall time from the first send to the last reply.
    pub elapsed: Duration,
    /// Wall time from the first send to the last send (what Ceph's client measures).
    pub send_elapsed: Duration,
    /// Replies received over all jobs.
    pub answered: u64,
}

/// Runs the client against `addrs` (a `v2:IP:PORT` or address vector).
pub fn run_client(
    addrs: &msgr2_codec::addr::EntityAddrVec,
    plan: &ClientPlan,
) -> Result<ClientResult, CephPerfError> {
    if plan.jobs == 0 || plan.ios == 0 {
        return Err(CephPerfError::Usage(
            "--jobs and --ios must be at least 1".into(),
        ));
    }
    let jobs_map: Arc<RwLock<HashMap<u64, Arc<Job>>>> = Arc::default();
    let for_dispatch = Arc::clone(&jobs_map);
    let messenger = MessengerBuilder::new(EntityName::new(EntityType::Client, "0"))
        .cores(plan.cores.clone())
        .auth_none()
        .modes(ModeConfig::all(vec![CON_MODE_CRC]))
        .policy(EntityType::Osd, Policy::lossless_client(0))
        .limits(limits(plan.size))
        .dispatcher(move |_core| {
            Box::new(OsdClient {
                jobs: Arc::clone(&for_dispatch),
                mine: HashMap::new(),
            }) as Box<dyn Dispatcher>
        })
        .start()
        .map_err(|e| CephPerfError::Engine(e.to_string()))?;
    let mut conns = Vec::with_capacity(plan.jobs);
    for index in 0..plan.jobs {
        let conn = messenger
            .connect(addrs, EntityType::Osd)
            .map_err(|e| CephPerfError::Engine(e.to_string()))?;
        let job = Arc::new(Job {
            index,
            state: Mutex::default(),
            cond: Condvar::new(),
        });
        if let Ok(mut m) = jobs_map.write() {
            m.insert(conn.id(), Arc::clone(&job));
        }
        conns.push((conn, job));
    }
    // Handshakes first (Ceph's client sleeps 1 s after connecting for the same reason).
    let deadline = Instant::now() + Duration::from_secs(10);
    for (conn, job) in &conns {
        while conn.peer_info().is_none() {
            if Instant::now() > deadline || conn.is_closed() {
                return Err(CephPerfError::Reset {
                    job: job.index,
                    error: "handshake did not complete in 10 s".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut data = Data::zeroed_aligned(usize::try_from(plan.size).unwrap_or(usize::MAX));
    // Every op sends the same buffer: its crc is computed once and travels with the clones,
    // as Ceph's client's shared bufferptr keeps its crc in the buffer's crc cache.
    data.ensure_segment_crc();
    let lock_err = || CephPerfError::Engine("job state lock poisoned".into());
    let start = Instant::now();
    for (conn, job) in &conns {
        let features = conn.peer_info().map_or(0, |i| i.features);
        let op = MOSDOp {
            version: MOSDOp::version_for(features),
            features,
            ..MOSDOp::write(
                "object-name",
                ObjectLocator::default(),
                SPgId::default(),
                0,
                plan.size,
            )
        };
        let front = op.front_bytes();
        let mut st = job.state.lock().map_err(|_| lock_err())?;
        st.template = Some(Arc::new(OpTemplate {
            op,
            front,
            data: data.clone(),
            ios: plan.ios,
            depth: plan.depth,
        }));
        st.next_tid = 1;
        st.fill_window(conn);
    }
    let mut out = ClientResult {
        elapsed: Duration::ZERO,
        send_elapsed: Duration::ZERO,
        answered: 0,
    };
    let deadline = Instant::now() + plan.timeout;
    let mut failed = None;
    for (_, job) in &conns {
        let mut st = job.state.lock().map_err(|_| lock_err())?;
        while !st.finished() {
            let now = Instant::now();
            if now >= deadline {
                st.error = Some(CephPerfError::Timeout {
                    job: job.index,
                    answered: st.answered,
                    ios: plan.ios,
                    secs: plan.timeout.as_secs(),
                });
                break;
            }
            st = job
                .cond
                .wait_timeout(st, deadline - now)
                .map_err(|_| lock_err())?
                .0;
        }
        if let Some(e) = st.error.take() {
            failed.get_or_insert(e);
            break;
        }
        let since =
            |t: Option<Instant>| t.map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
        out.send_elapsed = out.send_elapsed.max(since(st.sent_at));
        out.elapsed = out.elapsed.max(since(st.done_at));
        out.answered += st.answered;
    }
    let _ = messenger.shutdown();
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Ceph's output line and our JSON cell for a finished run.
pub fn report(plan: &ClientPlan, r: &ClientResult) -> (String, serde_json::Value) {
    let ops = plan.ios * plan.jobs as u64;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let line = format!(
        " Total op {} run time {}us.",
        plan.ios,
        r.elapsed.as_micros()
    );
    let cell = json!({
        "workload": "ceph-perf",
        "jobs": plan.jobs,
        "depth": plan.depth,
        "ios": plan.ios,
        "size": plan.size,
        "ops": ops,
        "answered": r.answered,
        "run_time_us": r.elapsed.as_micros() as u64,
        "send_time_us": r.send_elapsed.as_micros() as u64,
        "msgs_per_s": ops as f64 / secs,
        "gb_per_s": (ops * plan.size) as f64 / secs / 1e9,
    });
    (line, cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_matches_what_ceph_perf_server_sends() {
        // Ceph's server answered the captured ops (flags 0, default pg) with the all-default
        // reply (tests/data/ceph-perf); flags lose the ack bits.
        let mut op = MOSDOp::write("o", ObjectLocator::default(), SPgId::default(), 0, 1);
        let head = |op: &MOSDOp| MOSDOp::decode_head(&op.front_bytes(), op.version).expect("ok");
        assert_eq!(ceph_perf_reply(&head(&op)), MOSDOpReply::default());
        op.flags = 0x25;
        assert_eq!(ceph_perf_reply(&head(&op)).flags, 0x20);
    }
}
