//! The public Messenger API: builder, dispatcher trait, connection handles, counters.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Banner;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_codec::payload::UTime;
use msgr2_crypto::auth::{
    ClientAuthProvider, NoneClientProvider, NoneServerProvider, ServerAuthProvider,
};
use msgr2_crypto::cephx::{
    CephxClientProvider, CephxServerProvider, MonServerContext, TicketStore,
};
use msgr2_crypto::keyring::Keyring;
use msgr2_proto::{
    CompressionConfig, Config, Connection, Lookup, Message, ModeConfig, PeerInfo, Policy,
};
use tracing::info;

use crate::bind::{bind_all, BindSpec};
use crate::error::EngineError;
use crate::reactor::{self, BreakAt, ReactorConfig};
use crate::spsc::Spsc;

/// `PeerInfo::con_mode` of a raw-baseline connection (no msgr2 framing at all).
pub const CON_MODE_RAW: u32 = 0;

/// Receives a core's connection events. One instance per core, created on that core by the
/// factory given to [`MessengerBuilder::dispatcher`]; it is only ever called from that core's
/// reactor thread, so it needs no locking and need not be `Send`.
///
/// Callbacks run inside the reactor loop: keep them short. [`ConnHandle::send`] called from a
/// callback is queued and applied when the callback returns (directly for connections of this
/// core, through the core-pair queue otherwise), before the next submission.
pub trait Dispatcher {
    /// A message arrived on `conn`.
    fn on_message(&mut self, conn: &ConnHandle, msg: Message);
    /// An outgoing connection completed its handshake.
    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = (conn, peer);
    }
    /// An accepted connection completed its handshake.
    fn on_accept(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = (conn, peer);
    }
    /// The connection failed (peer closed, protocol error, handshake timeout) and is closed,
    /// or its session was reset (a lossy connection faulted, the peer reset the session).
    /// Not called after [`ConnHandle::mark_down`] or at shutdown, nor for faults a lossless
    /// session survives (it reconnects and replays; [`Dispatcher::on_connect`] /
    /// [`Dispatcher::on_accept`] report it ready again with `reconnected` set).
    fn on_reset(&mut self, conn: &ConnHandle, error: &str) {
        let _ = (conn, error);
    }
    /// An accepted connection failed before its handshake completed (so the application never
    /// saw it): bad banner, failed authentication, handshake timeout, a stale or duplicate
    /// connection. `peer` is its socket address.
    fn on_accept_failed(&mut self, peer: Option<SocketAddr>, error: &str) {
        let _ = (peer, error);
    }
    /// The connection faulted with `error` but keeps its session, and the engine redials
    /// (after backoff): a lossless session, or a client connection that failed before its
    /// handshake completed (refused, timed out, dropped), which Ceph retries too. Purely
    /// informative, like Ceph's `ms_handle_refused`; a caller that would rather give up (a
    /// one-shot tool such as `msgr2 ping`) calls [`ConnHandle::mark_down`].
    fn on_fault(&mut self, conn: &ConnHandle, error: &str) {
        let _ = (conn, error);
    }
    /// The peer sent KEEPALIVE2 with `stamp` (already answered with KEEPALIVE2_ACK).
    fn on_keepalive(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = (conn, stamp);
    }
    /// The peer acknowledged our KEEPALIVE2 stamped `stamp` (see [`ConnHandle::keepalive`]).
    fn on_keepalive_ack(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = (conn, stamp);
    }
}

/// A dispatcher that drops everything (the default when none is configured).
struct NullDispatcher;
impl Dispatcher for NullDispatcher {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
}

pub(crate) type Factory = dyn Fn(usize) -> Box<dyn Dispatcher> + Send + Sync;

/// Work sent to a core.
pub(crate) enum Cmd {
    /// Queue a message on a connection.
    Send { id: u64, msg: Message },
    /// Close a connection without a reset callback.
    MarkDown { id: u64 },
    /// Send KEEPALIVE2 with this stamp (at once when ready, else once ready).
    Keepalive { id: u64, stamp: UTime },
    /// Open an outgoing connection owned by the target core.
    Connect {
        handle: ConnHandle,
        target: EntityAddr,
        peer_type: EntityType,
    },
    /// Take over an accepted socket.
    Adopt { fd: OwnedFd, peer: SocketAddr },
    /// Take over an accepted connection that is waiting for its session lookup, because the
    /// session it names lives on this core (see [`crate::reactor`], "Session lookup").
    MoveIn {
        fd: OwnedFd,
        proto: Box<Connection>,
        peer: Option<SocketAddr>,
        lookup: Lookup,
        hops: u8,
    },
    /// Drain and stop.
    Shutdown,
}

/// Per-core counters: written by their core only (plain load + store, no locked
/// instructions), summed on read.
#[derive(Default)]
pub(crate) struct CoreCounters {
    pub send_messages: AtomicU64,
    pub recv_messages: AtomicU64,
    pub send_bytes: AtomicU64,
    pub recv_bytes: AtomicU64,
    pub active_connections: AtomicU64,
    pub created_connections: AtomicU64,
    pub conns_crc: AtomicU64,
    pub conns_secure: AtomicU64,
    pub conns_raw: AtomicU64,
    pub conns_rev0: AtomicU64,
    pub conns_rev1: AtomicU64,
    pub connection_errors: AtomicU64,
    pub dropped_messages: AtomicU64,
    pub reconnects: AtomicU64,
    pub resumed: AtomicU64,
    pub moved: AtomicU64,
    pub injected_failures: AtomicU64,
    pub injected_delays: AtomicU64,
    pub zero_copy_recvs: AtomicU64,
    pub enters: AtomicU64,
    pub sqes: AtomicU64,
    pub cqes: AtomicU64,
    pub sleeps: AtomicU64,
    pub wakeups_sent: AtomicU64,
    pub cross_core_cmds: AtomicU64,
    pub send_ops: AtomicU64,
    pub zc_sends: AtomicU64,
    pub zc_copied: AtomicU64,
    pub recv_rearms: AtomicU64,
    pub arena_bytes: AtomicU64,
    pub arena_registered: AtomicU64,
    pub arena_leaked_bytes: AtomicU64,
    /// Bytes of arena slots currently lent out (shared with the arena).
    pub arena_in_use: Arc<AtomicU64>,
}

/// Single-writer add.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Single-writer subtract.
#[inline]
pub(crate) fn drop_by(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

/// A snapshot of the messenger's counters, summed over its cores. The `msgr_*` names are
/// Ceph's (`MsgrPerfCounters.h`); the rest describe the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Messages queued for sending.
    pub msgr_send_messages: u64,
    /// Messages received and dispatched.
    pub msgr_recv_messages: u64,
    /// Bytes written to sockets (framing included).
    pub msgr_send_bytes: u64,
    /// Bytes read from sockets (framing included).
    pub msgr_recv_bytes: u64,
    /// Connections currently open.
    pub msgr_active_connections: u64,
    /// Connections created (outgoing and accepted).
    pub msgr_created_connections: u64,
    /// Ready connections by negotiated mode: crc.
    pub conns_mode_crc: u64,
    /// Ready connections by negotiated mode: secure.
    pub conns_mode_secure: u64,
    /// Ready connections by negotiated mode: raw baseline.
    pub conns_mode_raw: u64,
    /// Ready connections by framing revision: msgr2.0.
    pub conns_rev0: u64,
    /// Ready connections by framing revision: msgr2.1.
    pub conns_rev1: u64,
    /// Connections that failed (reset, protocol error, connect failure).
    pub connection_errors: u64,
    /// Messages dropped because their connection was already closed.
    pub dropped_messages: u64,
    /// Reconnection attempts of lossless sessions after a fault (new sockets dialled).
    pub session_reconnects: u64,
    /// Connections that became ready by resuming an existing session (SESSION_RECONNECT_OK
    /// on the client, or a reconnect taken over on the server).
    pub sessions_resumed: u64,
    /// Accepted connections moved to the core owning their session before resuming it.
    pub sessions_moved: u64,
    /// Socket failures injected by `ms_inject_socket_failures`.
    pub injected_socket_failures: u64,
    /// Message deliveries delayed by `ms_inject_delay_*`.
    pub injected_delays: u64,
    /// Targeted receives straight into a data segment's page-aligned buffer.
    pub zero_copy_recvs: u64,
    /// `io_uring_enter` calls.
    pub ring_enters: u64,
    /// Submission entries pushed.
    pub ring_sqes: u64,
    /// Completions reaped.
    pub ring_cqes: u64,
    /// Times a reactor went to sleep waiting for completions.
    pub reactor_sleeps: u64,
    /// eventfd writes to wake a sleeping core.
    pub wakeups_sent: u64,
    /// Commands that crossed cores (sends, connects, adopted sockets).
    pub cross_core_cmds: u64,
    /// Send/sendmsg operations submitted.
    pub send_ops: u64,
    /// Zero-copy sends submitted.
    pub zc_sends: u64,
    /// Zero-copy sends the kernel reported it copied anyway (`IORING_NOTIF_USAGE_ZC_COPIED`).
    pub zc_copied: u64,
    /// Multishot receives re-armed (buffer ring ran dry, or the kernel ended them).
    pub recv_rearms: u64,
    /// Arena bytes mapped, all cores.
    pub arena_bytes: u64,
    /// Cores whose arena is registered with their ring.
    pub arena_registered_cores: u64,
    /// Arena bytes lent out right now (0 when idle and after shutdown).
    pub arena_in_use_bytes: u64,
    /// Arena bytes still lent out when a core stopped (a leak; should be 0).
    pub arena_leaked_bytes: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, c: &CoreCounters) {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.msgr_send_messages += l(&c.send_messages);
        self.msgr_recv_messages += l(&c.recv_messages);
        self.msgr_send_bytes += l(&c.send_bytes);
        self.msgr_recv_bytes += l(&c.recv_bytes);
        self.msgr_active_connections += l(&c.active_connections);
        self.msgr_created_connections += l(&c.created_connections);
        self.conns_mode_crc += l(&c.conns_crc);
        self.conns_mode_secure += l(&c.conns_secure);
        self.conns_mode_raw += l(&c.conns_raw);
        self.conns_rev0 += l(&c.conns_rev0);
        self.conns_rev1 += l(&c.conns_rev1);
        self.connection_errors += l(&c.connection_errors);
        self.dropped_messages += l(&c.dropped_messages);
        self.session_reconnects += l(&c.reconnects);
        self.sessions_resumed += l(&c.resumed);
        self.sessions_moved += l(&c.moved);
        self.injected_socket_failures += l(&c.injected_failures);
        self.injected_delays += l(&c.injected_delays);
        self.zero_copy_recvs += l(&c.zero_copy_recvs);
        self.ring_enters += l(&c.enters);
        self.ring_sqes += l(&c.sqes);
        self.ring_cqes += l(&c.cqes);
        self.reactor_sleeps += l(&c.sleeps);
        self.wakeups_sent += l(&c.wakeups_sent);
        self.cross_core_cmds += l(&c.cross_core_cmds);
        self.send_ops += l(&c.send_ops);
        self.zc_sends += l(&c.zc_sends);
        self.zc_copied += l(&c.zc_copied);
        self.recv_rearms += l(&c.recv_rearms);
        self.arena_bytes += l(&c.arena_bytes);
        self.arena_registered_cores += l(&c.arena_registered);
        self.arena_in_use_bytes += l(&c.arena_in_use);
        self.arena_leaked_bytes += l(&c.arena_leaked_bytes);
    }
}

/// What one core shares with the others.
pub(crate) struct CoreShared {
    pub cpu: usize,
    pub eventfd: File,
    pub sleeping: AtomicBool,
    pub injector: Mutex<Vec<Cmd>>,
    pub injected: AtomicBool,
    pub counters: CoreCounters,
}

/// Everything the cores of one messenger share.
pub(crate) struct Shared {
    /// Unique per messenger in this process (thread-local routing key).
    pub id: usize,
    pub cores: Vec<CoreShared>,
    /// `queues[from][to]`: the SPSC ring from core `from` to core `to` (unused when equal).
    pub queues: Vec<Vec<Spsc<Cmd>>>,
    pub next_conn: AtomicU64,
    pub next_core: AtomicUsize,
    pub stopped: AtomicBool,
    /// Which connection holds the session with a peer address: `addr → (core, conn id)`
    /// (Ceph's `lookup_conn`). Touched only when a connection is dialled, becomes ready or
    /// closes, and when an accepted one identifies itself: never on the data path.
    pub sessions: Mutex<HashMap<EntityAddr, (usize, u64)>>,
}

impl Shared {
    /// Wakes core `idx` if it sleeps (or is about to).
    pub(crate) fn notify(&self, idx: usize, from: Option<&CoreCounters>) {
        fence(Ordering::SeqCst);
        let c = &self.cores[idx];
        if c.sleeping.load(Ordering::Relaxed) && c.sleeping.swap(false, Ordering::AcqRel) {
            let _ = (&c.eventfd).write(&1u64.to_ne_bytes());
            if let Some(f) = from {
                bump(&f.wakeups_sent, 1);
            }
        }
    }

    /// Queues `cmd` for core `idx` from a thread that is not one of our reactors.
    pub(crate) fn inject(&self, idx: usize, cmd: Cmd) {
        let c = &self.cores[idx];
        match c.injector.lock() {
            Ok(mut q) => q.push(cmd),
            Err(poisoned) => poisoned.into_inner().push(cmd),
        }
        c.injected.store(true, Ordering::Release);
        self.notify(idx, None);
    }
}

thread_local! {
    /// On a reactor thread: (messenger id, core index).
    pub(crate) static CURRENT: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
    /// Commands issued by dispatcher callbacks on this reactor thread: (target core, cmd).
    pub(crate) static OUTBOX: RefCell<Vec<(usize, Cmd)>> = const { RefCell::new(Vec::new()) };
}

/// Routes a command to core `idx`: through the thread-local outbox on our own reactors (the
/// reactor applies it directly or pushes it on the core-pair SPSC ring), else through the
/// target's injector.
pub(crate) fn route(shared: &Arc<Shared>, idx: usize, cmd: Cmd) {
    if let Some((mid, _me)) = CURRENT.get() {
        if mid == shared.id {
            OUTBOX.with(|o| o.borrow_mut().push((idx, cmd)));
            return;
        }
    }
    shared.inject(idx, cmd);
}

pub(crate) struct ConnShared {
    pub id: u64,
    pub core: usize,
    pub shared: Arc<Shared>,
    pub info: OnceLock<PeerInfo>,
    pub closed: AtomicBool,
    /// The peer's socket address: the target we dial, or where an accepted socket came from.
    pub peer_sock: Option<SocketAddr>,
}

/// A cheap, cloneable handle to one connection, usable from any thread.
///
/// The connection lives on one core (its owner). [`ConnHandle::send`] on that core's reactor
/// is applied directly; from another core it crosses once, through the core-pair SPSC ring;
/// from any other thread it goes through the owner's injector queue. Messages sent from one
/// thread to one connection keep their order.
#[derive(Clone)]
pub struct ConnHandle(pub(crate) Arc<ConnShared>);

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.0.id)
            .field("core", &self.core())
            .finish()
    }
}

impl PartialEq for ConnHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for ConnHandle {}

impl ConnHandle {
    /// Queues `msg`. Fails only if the connection or the messenger is already closed; a
    /// connection that fails later reports it through [`Dispatcher::on_reset`].
    ///
    /// In raw mode only `header.tid`, `header.msg_type` (carried in the raw flags) and `data`
    /// travel; `front` and `middle` are not sent.
    pub fn send(&self, msg: Message) -> Result<(), EngineError> {
        if self.0.closed.load(Ordering::Relaxed) {
            return Err(EngineError::ConnectionClosed(self.0.id));
        }
        if self.0.shared.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::Shutdown);
        }
        route(
            &self.0.shared,
            self.0.core,
            Cmd::Send { id: self.0.id, msg },
        );
        Ok(())
    }

    /// Sends KEEPALIVE2 stamped with the wall clock (at once when the connection is ready,
    /// otherwise as soon as it is) and returns the stamp; the peer's answer arrives as
    /// [`Dispatcher::on_keepalive_ack`] with the same stamp. Fails only if the connection or
    /// the messenger is already closed. Raw-mode connections have no keepalives: nothing is
    /// sent and no ack comes.
    pub fn keepalive(&self) -> Result<UTime, EngineError> {
        if self.0.closed.load(Ordering::Relaxed) {
            return Err(EngineError::ConnectionClosed(self.0.id));
        }
        if self.0.shared.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::Shutdown);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = UTime {
            sec: now.as_secs() as u32,
            nsec: now.subsec_nanos(),
        };
        route(
            &self.0.shared,
            self.0.core,
            Cmd::Keepalive {
                id: self.0.id,
                stamp,
            },
        );
        Ok(stamp)
    }

    /// Closes the connection, dropping whatever is still queued, without a reset callback.
    pub fn mark_down(&self) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            route(&self.0.shared, self.0.core, Cmd::MarkDown { id: self.0.id });
        }
    }

    /// The CPU (as given to [`MessengerBuilder::cores`]) of the core that owns the connection.
    pub fn core(&self) -> usize {
        self.0.shared.cores[self.0.core].cpu
    }

    /// Unique id within the messenger.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// What the handshake negotiated (mode, revision, features, peer identity), once ready.
    /// `con_mode` is [`CON_MODE_RAW`] on raw-baseline connections.
    pub fn peer_info(&self) -> Option<&PeerInfo> {
        self.0.info.get()
    }

    /// The peer's socket address: the address dialled by [`Messenger::connect`], or where an
    /// accepted connection came from. Known before the handshake completes (unlike
    /// [`ConnHandle::peer_info`]), so it can name a peer whose handshake failed.
    pub fn peer_socket(&self) -> Option<SocketAddr> {
        self.0.peer_sock
    }

    /// Whether the connection is closed (failed, marked down or shut down).
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Relaxed)
    }
}

/// How authentication is configured.
#[derive(Clone)]
enum AuthSpec {
    None,
    Keyring(Keyring),
}

/// Builds a [`Messenger`].
pub struct MessengerBuilder {
    name: EntityName,
    binds: Vec<BindSpec>,
    cores: Option<Vec<usize>>,
    auth: AuthSpec,
    modes: ModeConfig,
    policies: HashMap<EntityType, Policy>,
    raw: bool,
    factory: Option<Arc<Factory>>,
    client_auth: Option<Arc<dyn ClientAuthProvider>>,
    server_auth: Option<Arc<dyn ServerAuthProvider>>,
    banner: Option<Banner>,
    gid: Option<i64>,
    nonce: Option<u32>,
    send_queue_limit: Option<(usize, u64)>,
    dispatch_throttle_bytes: Option<u64>,
    compression: CompressionConfig,
    admin: Option<AdminSpec>,
    pub(crate) rc: ReactorConfig,
}

/// The admin socket a builder opens for its messenger.
struct AdminSpec {
    path: std::path::PathBuf,
    label: String,
    config: Vec<(String, String)>,
}

impl MessengerBuilder {
    /// A messenger for entity `name` with Ceph's defaults: no listening address, every
    /// available core, auth none, Ceph's mode lists, lossy policies, msgr2 framing.
    pub fn new(name: EntityName) -> Self {
        let mut rc = ReactorConfig::default();
        if std::env::var_os("MSGR2_ENGINE_DISABLE_URING").is_some_and(|v| v != "0") {
            rc.simulate_no_uring = true;
        }
        if let Some(v) = std::env::var("MSGR2_ENGINE_MEMLOCK_LIMIT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.memlock_limit_override = Some(v);
        }
        if let Ok(v) = std::env::var("MSGR2_ZERO_COPY_RECV_MIN") {
            // "off" (or anything not a number) disables targeted receives.
            rc.zero_copy_recv_min = v.parse().ok();
        }
        if let Some(v) = std::env::var("MSGR2_RX_LOAN_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.rx_loan_chunk = v;
        }
        if let Some(v) = std::env::var("MSGR2_SEND_ZC_THRESHOLD")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.send_zc_threshold = Some(v);
        }
        Self {
            name,
            binds: Vec::new(),
            cores: None,
            auth: AuthSpec::None,
            modes: ModeConfig::default(),
            policies: HashMap::new(),
            raw: false,
            factory: None,
            client_auth: None,
            server_auth: None,
            banner: None,
            gid: None,
            nonce: None,
            send_queue_limit: None,
            dispatch_throttle_bytes: None,
            compression: CompressionConfig::default(),
            admin: None,
            rc,
        }
    }

    /// Adds addresses to listen on: an address vector string (`[v2:127.0.0.1:6800/0]`,
    /// `v2:127.0.0.1:0`, `127.0.0.1:0`; port 0 picks a free port in
    /// `ms_bind_port_min..=ms_bind_port_max`) or [`BindOptions`] with Ceph's `ms_bind_*`
    /// options. May be called more than once.
    pub fn bind(mut self, spec: impl Into<BindSpec>) -> Self {
        self.binds.push(spec.into());
        self
    }

    /// The cores to run on, one pinned reactor thread each (default: every core this process
    /// may use).
    pub fn cores(mut self, cores: Vec<usize>) -> Self {
        self.cores = Some(cores);
        self
    }

    /// Authenticate with AUTH_NONE (both roles). This is the default.
    pub fn auth_none(mut self) -> Self {
        self.auth = AuthSpec::None;
        self
    }

    /// Authenticate with cephx from `keyring`: as a client with our own entry (if present),
    /// and as a mon-style server for the entities in it (they need `mon` caps), so peers
    /// dialling us should use [`EntityType::Mon`] as the peer type.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.auth = AuthSpec::Keyring(keyring);
        self
    }

    /// The client-side authentication provider, replacing the one [`MessengerBuilder::auth_none`]
    /// or [`MessengerBuilder::keyring`] would make. Every outgoing connection of the messenger
    /// uses this one provider, so a cephx provider's `TicketStore` is shared: the service
    /// tickets a monitor login fetched authorize later connections to OSDs (what `msgr2 ping
    /// --osd` does), and errors in building it stay the caller's to word.
    pub fn client_auth(mut self, provider: Arc<dyn ClientAuthProvider>) -> Self {
        self.client_auth = Some(provider);
        self
    }

    /// The server-side authentication provider for accepted connections, replacing the one
    /// [`MessengerBuilder::auth_none`] or [`MessengerBuilder::keyring`] would make.
    pub fn server_auth(mut self, provider: Arc<dyn ServerAuthProvider>) -> Self {
        self.server_auth = Some(provider);
        self
    }

    /// The banner's feature bits (default: [`Banner::OURS`], offering msgr2.1 and
    /// compression).
    /// `Banner { supported: 0, required: 0 }` forces msgr2.0 framing on every connection.
    pub fn banner(mut self, banner: Banner) -> Self {
        self.banner = Some(banner);
        self
    }

    /// On-wire compression (Quincy+): `ms_osd_compress_mode`, `ms_osd_compression_algorithm`,
    /// `ms_osd_compress_min_size`, `ms_compress_secure` (set them by name with
    /// [`CompressionConfig::set`]). Default: Ceph's (advertised, never compressing).
    /// Compression applies to connections whose peer is an OSD, as in Ceph.
    pub fn compression(mut self, compression: CompressionConfig) -> Self {
        self.compression = compression;
        self
    }

    /// Our entity number as sent in idents (Ceph's `entity_name_t::num`: a monitor sends its
    /// rank, an OSD its id). Default: the numeric id of the entity name, `-1` for clients and
    /// for names without one (`mon.a`).
    pub fn gid(mut self, gid: i64) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Per-connection bound on messages queued but not yet written: beyond `messages` or
    /// `bytes` of payload, [`ConnHandle::send`] fails the connection (reset with "send queue
    /// full"), so a peer that stops reading cannot make us buffer without limit. Default:
    /// 65536 messages, 1 GiB.
    pub fn send_queue_limit(mut self, messages: usize, bytes: u64) -> Self {
        self.send_queue_limit = Some((messages, bytes));
        self
    }

    /// Receive the rest of a message's data segment with one targeted `recv` straight into
    /// its page-aligned buffer (no copy through the provided receive buffers) when at least
    /// `bytes` of it are still to come; `None` turns it off. Crc mode only (secure mode
    /// decrypts after the tag). Default 256 KiB; `MSGR2_ZERO_COPY_RECV_MIN=off` (or a size)
    /// in the environment overrides it, for comparisons.
    pub fn zero_copy_recv_min(mut self, bytes: Option<usize>) -> Self {
        self.rc.zero_copy_recv_min = bytes;
        self
    }

    /// `ms_dispatch_throttle_bytes`: messenger-wide budget of received message bytes not yet
    /// released by the application (dropping a [`Message`] releases it); a connection whose
    /// message would exceed it stops reading until bytes are released. Default 100 MiB, as in
    /// Ceph. Per-peer-type byte and message throttles come with the [`Policy`].
    pub fn dispatch_throttle_bytes(mut self, bytes: u64) -> Self {
        self.dispatch_throttle_bytes = Some(bytes);
        self
    }

    /// Connection modes (`ms_*_mode`).
    pub fn modes(mut self, modes: ModeConfig) -> Self {
        self.modes = modes;
        self
    }

    /// The nonce in our addresses (default: 0 for a monitor, random otherwise). Ceph's tools
    /// that bind a fixed address, such as `ceph_perf_msgr_server` (nonce 0), are dialled with
    /// that nonce, and a server refuses a peer that names another one.
    pub fn nonce(mut self, nonce: u32) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Policy towards peers of type `peer` (Ceph's `Messenger::Policy`: lossy/lossless,
    /// server, standby, resetcheck, required features, receive throttles). Types without one
    /// get `Policy::lossy_client(0)`.
    pub fn policy(mut self, peer: EntityType, policy: Policy) -> Self {
        self.policies.insert(peer, policy);
        self
    }

    /// Use the raw baseline transport (16-byte header + payload, no handshake, no msgr2
    /// framing) instead of msgr2.
    pub fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    /// The per-core dispatcher factory, called once on each core's thread with the core's CPU.
    pub fn dispatcher(
        mut self,
        factory: impl Fn(usize) -> Box<dyn Dispatcher> + Send + Sync + 'static,
    ) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// Opens Ceph's admin socket at `path` (metavariables already expanded, e.g. with
    /// [`crate::admin::MetaVars::expand`]) when the messenger starts, registered under `label`
    /// (its dispatch throttle's section is `throttle-msgr_dispatch_throttler-LABEL`), and closes
    /// it at shutdown. `config show` answers this builder's options with Ceph's names
    /// ([`MessengerBuilder::effective_options`]) followed by `extra_config`. For several
    /// messengers behind one socket, open a [`crate::admin::AdminSocket`] and call
    /// [`crate::admin::AdminSocket::add_messenger`] instead.
    pub fn admin_socket(
        mut self,
        path: impl Into<std::path::PathBuf>,
        label: &str,
        extra_config: Vec<(String, String)>,
    ) -> Self {
        self.admin = Some(AdminSpec {
            path: path.into(),
            label: label.to_owned(),
            config: extra_config,
        });
        self
    }

    /// This builder's settings as Ceph options (name, value): `name`, the six `ms_*_mode`
    /// lists, `ms_dispatch_throttle_bytes`, `ms_connection_ready_timeout`,
    /// `ms_initial_backoff`, `ms_max_backoff`, `ms_async_op_threads` (cores),
    /// `ms_inject_socket_failures`, the bind options when given as [`crate::BindOptions`], and
    /// the compression options; for `config show` / `config get`.
    pub fn effective_options(&self) -> Vec<(String, String)> {
        let modes = |v: &[u32]| {
            v.iter()
                .map(|m| match *m {
                    msgr2_codec::payload::CON_MODE_SECURE => "secure",
                    _ => "crc",
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        let mut o: Vec<(String, String)> = vec![
            ("name".into(), self.name.to_string()),
            ("ms_client_mode".into(), modes(&self.modes.client)),
            ("ms_service_mode".into(), modes(&self.modes.service)),
            ("ms_cluster_mode".into(), modes(&self.modes.cluster)),
            ("ms_mon_client_mode".into(), modes(&self.modes.mon_client)),
            ("ms_mon_service_mode".into(), modes(&self.modes.mon_service)),
            ("ms_mon_cluster_mode".into(), modes(&self.modes.mon_cluster)),
            (
                "ms_dispatch_throttle_bytes".into(),
                self.dispatch_throttle_bytes
                    .unwrap_or(msgr2_proto::config::DISPATCH_THROTTLE_BYTES)
                    .to_string(),
            ),
            (
                "ms_connection_ready_timeout".into(),
                self.rc.handshake_timeout.as_secs().to_string(),
            ),
            (
                "ms_inject_socket_failures".into(),
                self.rc.inject_socket_failures.to_string(),
            ),
            ("ms_bind_msgr1".into(), "false".into()),
        ];
        if let Some((initial, max)) = self.rc.backoff {
            o.push(("ms_initial_backoff".into(), secs(initial)));
            o.push(("ms_max_backoff".into(), secs(max)));
        }
        if let Some(c) = &self.cores {
            o.push(("ms_async_op_threads".into(), c.len().to_string()));
        }
        for b in &self.binds {
            if let BindSpec::Options(b) = b {
                o.push(("ms_bind_msgr2".into(), b.ms_bind_msgr2.to_string()));
                o.push(("ms_bind_ipv4".into(), b.ms_bind_ipv4.to_string()));
                o.push(("ms_bind_ipv6".into(), b.ms_bind_ipv6.to_string()));
                o.push(("ms_bind_port_min".into(), b.ms_bind_port_min.to_string()));
                o.push(("ms_bind_port_max".into(), b.ms_bind_port_max.to_string()));
                if let Some(a) = b.public_addr {
                    o.push(("public_addr".into(), a.to_string()));
                }
            }
        }
        o
    }

    /// Frame limits (default: 256 MiB per message).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.rc.limits = limits;
        self
    }

    /// Bytes of the per-core buffer arena (rounded; default 24 MiB: 16 MiB of 64 KiB receive
    /// buffers plus send staging). Registration pins it: RLIMIT_MEMLOCK must allow it.
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.rc.arena_bytes = bytes;
        self
    }

    /// When the arena cannot be registered (RLIMIT_MEMLOCK), run with an unregistered arena
    /// and a warning instead of failing (default: fail with the fix in the error).
    pub fn arena_fallback(mut self, allow: bool) -> Self {
        self.rc.arena_fallback = allow;
        self
    }

    /// Use SEND_ZC for sends of at least `bytes` (None: never, the default — on loopback the
    /// kernel copies anyway and zero-copy is slower; see the crate docs for the numbers).
    pub fn send_zc_threshold(mut self, bytes: Option<usize>) -> Self {
        self.rc.send_zc_threshold = bytes;
        self
    }

    /// Send KEEPALIVE2 on a ready msgr2 connection after this much transmit silence (proto's
    /// `keepalive_interval`; default: off, as in Ceph).
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.rc.keepalive = interval;
        self
    }

    /// How long an idle reactor spins (checking its rings without syscalls) before it parks
    /// in `io_uring_enter` (default 100 µs; `None` or zero parks at once, saving CPU on idle
    /// messengers at the price of a cross-CPU wakeup per lull).
    pub fn spin_before_park(mut self, d: Option<Duration>) -> Self {
        self.rc.spin_before_park = d;
        self
    }

    /// `ms_connection_ready_timeout`: the handshake must finish within this (default 10 s).
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.rc.handshake_timeout = t;
        self
    }

    /// `ms_initial_backoff` and `ms_max_backoff`: the first reconnect delay of a faulted
    /// lossless session (doubling per failed attempt) and its cap, which is also the wait
    /// after a WAIT (defaults 0.2 s and 15 s, Ceph's).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.rc.backoff = Some((initial, max));
        self
    }

    /// `ms_inject_socket_failures`: after one in `n` socket operations (receives and sends)
    /// shut the socket down, as Ceph does, so both ends go through their fault handling
    /// (lossy sessions reset, lossless ones reconnect and replay). 0 (the default) is off.
    /// For tests and soak runs.
    pub fn inject_socket_failures(mut self, n: u64) -> Self {
        self.rc.inject_socket_failures = n;
        self
    }

    /// Adds a named break point (tests): the first `times` times (per core) one of this
    /// messenger's connections transmits in protocol state `state` (`HELLO`,
    /// `AUTH_CONNECTING`, `SESSION_RECONNECTING`, `READY`, …), its socket is cut
    /// [`BreakAt::BeforeSend`], [`BreakAt::AfterSend`] or [`BreakAt::MidSend`] (mid-message in
    /// `READY`). Counted in `injected_socket_failures`.
    pub fn break_point(mut self, state: &str, at: BreakAt, times: u32) -> Self {
        self.rc.break_points.push(crate::reactor::BreakPoint {
            state: state.to_owned(),
            at,
            times,
        });
        self
    }

    /// `ms_inject_delay_type`, `ms_inject_delay_max`, `ms_inject_delay_probability`: hold
    /// back the delivery of a message from a peer of one of `types` with `probability` for
    /// up to `max` (messages behind it wait too, so order is kept). Off by default.
    pub fn inject_delay(mut self, types: Vec<EntityType>, max: Duration, probability: f64) -> Self {
        self.rc.inject_delay =
            (!types.is_empty() && probability > 0.0).then_some(crate::reactor::InjectDelay {
                types,
                max,
                probability,
            });
        self
    }

    /// Test knob: behave as if `io_uring_setup` were refused (also
    /// `MSGR2_ENGINE_DISABLE_URING=1`).
    #[doc(hidden)]
    pub fn simulate_no_uring(mut self) -> Self {
        self.rc.simulate_no_uring = true;
        self
    }

    /// Test knob: behave as if RLIMIT_MEMLOCK were `bytes` for an unprivileged user (also
    /// `MSGR2_ENGINE_MEMLOCK_LIMIT`).
    #[doc(hidden)]
    pub fn simulate_memlock_limit(mut self, bytes: u64) -> Self {
        self.rc.memlock_limit_override = Some(bytes);
        self
    }

    fn proto_config(&self, my_addrs: EntityAddrVec, nonce: u32) -> Result<Config, EngineError> {
        let mut c = Config::new(self.name.clone());
        c.my_addrs = my_addrs;
        c.nonce = nonce;
        c.modes = self.modes.clone();
        c.limits = self.rc.limits;
        c.ready_timeout_secs = self.rc.handshake_timeout.as_secs().max(1);
        match &self.auth {
            AuthSpec::None => {
                c.client_auth = Some(Arc::new(NoneClientProvider::new(self.name.clone())));
                c.server_auth = Some(Arc::new(NoneServerProvider::new(4096)));
            }
            AuthSpec::Keyring(k) => {
                if k.get(&self.name).is_some() {
                    let p =
                        CephxClientProvider::from_keyring(k, self.name.clone(), TicketStore::new())
                            .map_err(|e| EngineError::Auth(e.to_string()))?;
                    c.client_auth = Some(Arc::new(p));
                }
                let ctx = MonServerContext::new(Arc::new(k.clone()))
                    .map_err(|e| EngineError::Auth(e.to_string()))?;
                c.server_auth = Some(Arc::new(CephxServerProvider::new(Arc::new(ctx))));
            }
        }
        if let Some(p) = &self.client_auth {
            c.client_auth = Some(Arc::clone(p));
        }
        if let Some(p) = &self.server_auth {
            c.server_auth = Some(Arc::clone(p));
        }
        if let Some(b) = self.banner {
            c.banner = b;
        }
        c.compression = self.compression.clone();
        if let Some(g) = self.gid {
            c.gid.set(g);
        }
        if let Some((messages, bytes)) = self.send_queue_limit {
            c.max_queued_messages = messages;
            c.max_queued_bytes = bytes;
        }
        if let Some(b) = self.dispatch_throttle_bytes {
            c.dispatch_throttle = Arc::new(msgr2_proto::throttle::Throttle::new(b));
        }
        for (t, p) in &self.policies {
            c.policies.set(*t, p.clone());
        }
        c.keepalive_interval = self.rc.keepalive;
        if let Some((initial, max)) = self.rc.backoff {
            c.initial_backoff = initial;
            c.max_backoff = max;
        }
        // The reactors answer lookups from the messenger's session registry, so a reconnect or
        // a racing connection from a known peer resumes (or replaces) its session.
        c.session_lookup = true;
        Ok(c)
    }

    /// Binds, starts one pinned reactor per core and returns once every core is running (or
    /// with the first core's error).
    pub fn start(self) -> Result<Messenger, EngineError> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let cores = match &self.cores {
            Some(c) if !c.is_empty() => c.clone(),
            _ => available.clone(),
        };
        if cores.is_empty() {
            return Err(EngineError::NoSuchCore { core: 0, available });
        }
        for (i, c) in cores.iter().enumerate() {
            if !available.contains(c) {
                return Err(EngineError::NoSuchCore {
                    core: *c,
                    available,
                });
            }
            if cores[..i].contains(c) {
                return Err(EngineError::DuplicateCore(*c));
            }
        }
        let nonce = match self.nonce {
            Some(n) => n,
            None if self.name.ty == EntityType::Mon => 0,
            None => random_nonce(),
        };
        let (listeners, addrs) = bind_all(&self.name, &self.binds, nonce)?;
        let proto = Arc::new(self.proto_config(addrs.clone(), nonce)?);
        let n = cores.len();
        let mut core_shared = Vec::with_capacity(n);
        for &cpu in &cores {
            core_shared.push(CoreShared {
                cpu,
                eventfd: reactor::eventfd()?,
                sleeping: AtomicBool::new(false),
                injector: Mutex::new(Vec::new()),
                injected: AtomicBool::new(false),
                counters: CoreCounters::default(),
            });
        }
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cores: core_shared,
            queues: (0..n)
                .map(|_| (0..n).map(|_| Spsc::new(4096)).collect())
                .collect(),
            next_conn: AtomicU64::new(1),
            next_core: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            sessions: Mutex::new(HashMap::new()),
        });
        let mut rc = self.rc.clone();
        rc.raw = self.raw;
        let proto_keep = Arc::clone(&proto);
        rc.proto = Some(proto);
        rc.my_name = Some(self.name.clone());
        let rc = Arc::new(rc);
        let factory: Arc<Factory> = self
            .factory
            .clone()
            .unwrap_or_else(|| Arc::new(|_| Box::new(NullDispatcher) as Box<dyn Dispatcher>));
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        let mut listeners = Some(listeners);
        for (idx, &cpu) in cores.iter().enumerate() {
            let shared = Arc::clone(&shared);
            let rc = Arc::clone(&rc);
            let factory = Arc::clone(&factory);
            let tx = tx.clone();
            let ls = if idx == 0 {
                listeners.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            let t = std::thread::Builder::new()
                .name(format!("msgr2-{}-{cpu}", self.name))
                .spawn(move || reactor::run(idx, shared, rc, ls, factory, tx))
                .map_err(|e| EngineError::Reactor {
                    core: cpu,
                    reason: format!("cannot spawn thread: {e}"),
                })?;
            threads.push(t);
        }
        drop(tx);
        let mut first_err = None;
        for _ in 0..n {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(EngineError::Reactor {
                        core: cores[0],
                        reason: "a reactor thread died during start".into(),
                    });
                    break;
                }
            }
        }
        let mut m = Messenger {
            shared,
            threads,
            addrs,
            proto: proto_keep,
            name: self.name.clone(),
            admin: None,
        };
        if let Some(e) = first_err {
            m.stop();
            return Err(e);
        }
        if let Some(spec) = &self.admin {
            let admin = crate::admin::AdminSocket::bind(&spec.path)?;
            let mut config = self.effective_options();
            config.push(("admin_socket".into(), spec.path.display().to_string()));
            config.extend(spec.config.iter().cloned());
            admin.set_config(config);
            admin.add_messenger(&spec.label, &m);
            m.admin = Some(admin);
        }
        info!(name = %self.name, addrs = %m.addrs, cores = ?cores, raw = self.raw, "messenger started");
        Ok(m)
    }
}

fn random_nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) as u32).max(1)
}

/// A running messenger: one pinned reactor per core.
pub struct Messenger {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: EntityAddrVec,
    proto: Arc<Config>,
    name: EntityName,
    /// The admin socket opened by [`MessengerBuilder::admin_socket`].
    admin: Option<crate::admin::AdminSocket>,
}

/// A read-only view of a messenger for the admin socket: the same relaxed counter loads as
/// [`Messenger::counters`], the session registry's size and the throttles.
#[derive(Clone)]
pub(crate) struct Probe {
    shared: Arc<Shared>,
    proto: Arc<Config>,
    name: EntityName,
    addrs: EntityAddrVec,
}

impl Probe {
    pub(crate) fn core_count(&self) -> usize {
        self.shared.cores.len()
    }
    pub(crate) fn name(&self) -> String {
        self.name.to_string()
    }
    pub(crate) fn addrs(&self) -> String {
        self.addrs.to_string()
    }
    pub(crate) fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }
    /// (CPU, counters) per core.
    pub(crate) fn core_counters(&self) -> Vec<(usize, Counters)> {
        core_counters(&self.shared)
    }
    pub(crate) fn sessions(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .map(|s| s.len())
            .unwrap_or_else(|p| p.into_inner().len())
    }
    pub(crate) fn dispatch_throttle(&self) -> (u64, u64) {
        let t = &self.proto.dispatch_throttle;
        (t.current(), t.max())
    }
    /// Per peer type with a policy throttle: (type, bytes (taken, max), messages (taken, max)).
    pub(crate) fn policy_throttles(&self) -> Vec<crate::admin::commands::PolicyThrottle> {
        let state = |t: &Option<Arc<msgr2_proto::throttle::Throttle>>| {
            t.as_ref().map(|t| (t.current(), t.max()))
        };
        self.proto
            .policies
            .by_type
            .iter()
            .filter(|(_, p)| p.throttler_bytes.is_some() || p.throttler_messages.is_some())
            .map(|(ty, p)| {
                (
                    ty.as_str().to_owned(),
                    state(&p.throttler_bytes),
                    state(&p.throttler_messages),
                )
            })
            .collect()
    }
}

fn core_counters(shared: &Shared) -> Vec<(usize, Counters)> {
    shared
        .cores
        .iter()
        .map(|core| {
            let mut c = Counters::default();
            c.add(&core.counters);
            (core.cpu, c)
        })
        .collect()
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("addrs", &self.addrs.to_string())
            .field("cores", &self.cpus())
            .finish()
    }
}

impl Messenger {
    /// The bound address vector, printed the way Ceph prints it (`[v2:127.0.0.1:6800/1234]`).
    pub fn addrs(&self) -> EntityAddrVec {
        self.addrs.clone()
    }

    /// The CPUs the reactors run on.
    pub fn cpus(&self) -> Vec<usize> {
        self.shared.cores.iter().map(|c| c.cpu).collect()
    }

    /// Opens a connection to `addrs` (its v2 address; in raw mode, its first address with an
    /// IP and port), a peer of type `peer_type`. Returns at once; the handshake completes on
    /// the owning core ([`Dispatcher::on_connect`]), and messages sent meanwhile are queued.
    ///
    /// Called on one of this messenger's reactors, the connection is owned by that core (so
    /// the caller's sends need no hop); otherwise cores are chosen round-robin.
    pub fn connect(
        &self,
        addrs: &EntityAddrVec,
        peer_type: EntityType,
    ) -> Result<ConnHandle, EngineError> {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::Shutdown);
        }
        let target = addrs
            .msgr2()
            .or_else(|| addrs.0.iter().find(|a| a.ty == msgr2_codec::AddrType::Any))
            .filter(|a| a.sock.is_some())
            .copied()
            .ok_or_else(|| EngineError::NoMsgr2Address(addrs.to_string()))?;
        let n = self.shared.cores.len();
        let core = match CURRENT.get() {
            Some((mid, me)) if mid == self.shared.id => me,
            _ => self.shared.next_core.fetch_add(1, Ordering::Relaxed) % n,
        };
        let handle = ConnHandle(Arc::new(ConnShared {
            id: self.shared.next_conn.fetch_add(1, Ordering::Relaxed),
            core,
            shared: Arc::clone(&self.shared),
            info: OnceLock::new(),
            closed: AtomicBool::new(false),
            peer_sock: target.sock,
        }));
        route(
            &self.shared,
            core,
            Cmd::Connect {
                handle: handle.clone(),
                target,
                peer_type,
            },
        );
        Ok(handle)
    }

    /// Counters of each core: (CPU, counters), in core order (the order of the
    /// `AsyncMessenger::Worker-N` sections of its admin socket).
    pub fn core_counters(&self) -> Vec<(usize, Counters)> {
        core_counters(&self.shared)
    }

    /// The admin socket opened by [`MessengerBuilder::admin_socket`], to add options or other
    /// messengers to it.
    pub fn admin_socket(&self) -> Option<&crate::admin::AdminSocket> {
        self.admin.as_ref()
    }

    pub(crate) fn probe(&self) -> Probe {
        Probe {
            shared: Arc::clone(&self.shared),
            proto: Arc::clone(&self.proto),
            name: self.name.clone(),
            addrs: self.addrs.clone(),
        }
    }

    /// Counters summed over the cores.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for core in &self.shared.cores {
            c.add(&core.counters);
        }
        c
    }

    fn stop(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for i in 0..self.shared.cores.len() {
            self.shared.inject(i, Cmd::Shutdown);
        }
    }

    /// Graceful shutdown: stops accepting, flushes what every connection already queued
    /// (bounded by a 5 s drain deadline), closes the connections without reset callbacks,
    /// waits for every kernel operation to complete and joins the reactors. Returns the final
    /// counters (`arena_in_use_bytes` and `arena_leaked_bytes` are 0 after a clean stop).
    pub fn shutdown(mut self) -> Counters {
        self.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(a) = self.admin.take() {
            a.shutdown();
        }
        self.counters()
    }
}

impl Drop for Messenger {
    fn drop(&mut self) {
        self.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
