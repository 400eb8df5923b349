//! Per-core counters: the atomics each reactor bumps, and their public snapshot.

use super::*;

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

pub(crate) fn core_counters(shared: &Shared) -> Vec<(usize, Counters)> {
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
