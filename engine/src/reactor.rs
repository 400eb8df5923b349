//! One core's reactor: its io_uring, its connections, its arena, its loop.
//!
//! Every kernel operation has an entry in the core's op table; the entry's index is the
//! SQE's `user_data`, and the entry owns whatever memory the kernel may touch until the
//! operation's final completion (send batches, `msghdr`/iovec arrays, timespecs). A
//! connection is only freed once it is closing and none of its operations is outstanding.
//!
//! The loop, each iteration: reap every completion (recv data goes through the protocol and
//! the dispatcher at once, buffers go straight back to the provided-buffer ring), drain the
//! SPSC rings from the other cores and the injector, apply what dispatcher callbacks queued,
//! run due timers, then flush every connection with pending output as one send (or sendmsg)
//! per connection, and submit all of it with a single `io_uring_enter` that also reaps. When
//! nothing is pending it marks itself sleeping (so other cores know to kick its eventfd) and
//! blocks in `io_uring_enter` for one completion.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Revision;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_codec::payload::CON_MODE_SECURE;
use msgr2_codec::raw::{RawDecoder, RawHeader};
use msgr2_codec::Data;
use msgr2_proto::{Config, Connection, Event, ExistingFate, Lookup, Message, PeerInfo};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tracing::{debug, warn};

use crate::api::{
    bump, drop_by, Cmd, ConnHandle, CoreCounters, Dispatcher, Factory, Shared, CON_MODE_RAW,
    CURRENT, OUTBOX,
};
use crate::arena::{Arena, ArenaBuf, ClassSpec};
use crate::bufring::BufRing;
use crate::error::EngineError;

const IORING_SEND_ZC_REPORT_USAGE: u16 = 8;
const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
const IOV_MAX: usize = 1024;
/// Raw messages up to this size are copied into a staging buffer (one contiguous send);
/// larger payloads are sent from the caller's memory.
const RAW_COPY_MAX: usize = 16 << 10;
const STAGE_SIZE: usize = 64 << 10;
const RX_BUF: usize = 64 << 10;
const SLOT_DRAIN: u32 = u32::MAX - 1;
const NO_SLOT: u32 = u32::MAX;
/// In a batch of at least twice this many received messages on one connection, what the
/// first this many callbacks sent goes out before the rest are dispatched (a depth-16 window
/// then travels as two halves; 8 beat 6, which beat 4 and 2, on ceph-perf 4 KiB).
const EARLY_FLUSH_AFTER: usize = 8;
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
const MAX_FIXED_FILES: u64 = 16384;

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
fn injection_seed() -> u64 {
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

/// A fresh close-on-exec eventfd.
pub(crate) fn eventfd() -> Result<File, EngineError> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(EngineError::Io {
            op: "eventfd",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// A vector with a free list; indices are stable while occupied.
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
    fn insert(&mut self, v: T) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.items[i] = Some(v);
            i
        } else {
            self.items.push(Some(v));
            self.items.len() - 1
        }
    }
    fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i).and_then(|x| x.as_ref())
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i).and_then(|x| x.as_mut())
    }
    fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.items.get_mut(i).and_then(|x| x.take());
        if v.is_some() {
            self.len -= 1;
            self.free.push(i);
        }
        v
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Two distinct occupied entries at once.
    fn two_mut(&mut self, a: usize, b: usize) -> (Option<&mut T>, Option<&mut T>) {
        if a == b || a >= self.items.len() || b >= self.items.len() {
            return (None, None);
        }
        if a < b {
            let (x, y) = self.items.split_at_mut(b);
            (x[a].as_mut(), y[0].as_mut())
        } else {
            let (x, y) = self.items.split_at_mut(a);
            (y[0].as_mut(), x[b].as_mut())
        }
    }
    fn slots(&self) -> Vec<usize> {
        (0..self.items.len())
            .filter(|i| self.items[*i].is_some())
            .collect()
    }
}

/// Bytes queued for one send: kept alive (by the op table) until the kernel is done.
enum Chunk {
    Vec(Vec<u8>),
    /// Shared bytes (a message's data, a protocol output buffer).
    Data(Data),
    Arena(ArenaBuf),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Vec(v) => v,
            Chunk::Data(d) => d,
            Chunk::Arena(a) => a.as_slice(),
        }
    }
}

struct TxBatch {
    chunks: Vec<Chunk>,
    total: usize,
}

struct SendOp {
    /// Keeps the bytes alive until the kernel's final completion (or zero-copy notification).
    _batch: Rc<TxBatch>,
    hdr: libc::msghdr,
    iov: Vec<libc::iovec>,
}

// The boxed payloads are never read: they own memory the kernel uses until completion.
#[allow(dead_code)]
enum OpKind {
    Accept(usize),
    Recv,
    /// A targeted receive into a lent segment buffer (held here until the completion), at
    /// this offset.
    RecvInto(Data, usize),
    Connect,
    Send(Box<SendOp>),
    Cancel,
    EventFd,
    Timer(Box<types::Timespec>),
}

struct Op {
    kind: OpKind,
    slot: u32,
    gen: u32,
    /// A zero-copy send whose notification is still due.
    zc_notif_pending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// The socket is connecting.
    Connecting,
    /// The socket is live.
    Open,
    /// The socket is gone (shut down, operations cancelled) but the lossless session is
    /// kept: waiting for the reconnect timer (`reconnect_at`), a message to send (STANDBY) or
    /// the peer to reconnect.
    Faulted,
    /// An accepted connection waiting for its operations to finish before it moves to the
    /// core owning its session.
    Moving,
    /// Closing for good: freed once its operations completed.
    Closing,
}

struct Conn {
    id: u64,
    gen: u32,
    handle: ConnHandle,
    sock: OwnedFd,
    fixed: Option<u32>,
    proto: Option<Connection>,
    raw_rx: Option<RawDecoder>,
    raw_tx: Vec<Message>,
    state: St,
    ops: u32,
    recv_armed: bool,
    tx_batch: Option<Rc<TxBatch>>,
    tx_sent: usize,
    connect_addr: Option<Box<SockAddr>>,
    deadline: Option<Instant>,
    server: bool,
    peer_type: EntityType,
    peer_sock: Option<SocketAddr>,
    notify_reset: bool,
    draining: bool,
    dirty: bool,
    /// The multishot receive in flight (for cancelling it alone).
    recv_ud: Option<u64>,
    /// When a faulted lossless session dials again.
    reconnect_at: Option<Instant>,
    /// Registry keys this connection holds (see `Shared::sessions`).
    reg_keys: Vec<EntityAddr>,
    /// Moving: the target core, the lookup to answer there, hops so far.
    moving: Option<(usize, Lookup, u8)>,
    /// Closing without closing the handle: the session continues in another slot.
    detached: bool,
    /// Counted in `active_connections`.
    active: bool,
    /// Messages held back by `ms_inject_delay_*`, in arrival order, with their due times.
    delayed: VecDeque<(Instant, Message)>,
    /// A break point fires once the current batch is sent: shut the socket down then.
    break_after_send: bool,
    /// A targeted receive into a lent segment buffer is in flight (no multishot meanwhile).
    rx_loan: bool,
    /// A large segment is arriving: stop the multishot receive and lend when it has ended.
    loan_wanted: bool,
    /// Large messages are streaming: receive one provided buffer at a time (single-shot)
    /// rather than multishot, so that at most one buffer of the next large segment passes
    /// through a copy before its targeted receive starts. A multishot receive keeps filling
    /// buffers until its cancellation lands, which copied a large share of every 4 MiB
    /// message. Set when a targeted receive completes; cleared by a receive that filled its
    /// buffer without leading to one (small messages streaming go back to multishot).
    rx_single: bool,
}

/// Builds an SQE against the connection's fixed slot or, without one, its raw fd.
macro_rules! with_fd {
    ($conn:expr, |$fd:ident| $body:expr) => {
        match $conn.fixed {
            Some(s) => {
                let $fd = types::Fixed(s);
                $body
            }
            None => {
                let $fd = types::Fd($conn.sock.as_raw_fd());
                $body
            }
        }
    };
}

macro_rules! ctr {
    ($self:ident . $field:ident, $n:expr) => {
        bump(&$self.shared.cores[$self.idx].counters.$field, $n as u64)
    };
}

pub(crate) struct Reactor {
    // Dropped first: the ring must go before any memory it may reference.
    ring: IoUring,
    bufring: Option<BufRing>,
    arena: Arena,
    idx: usize,
    shared: Arc<Shared>,
    rc: Arc<ReactorConfig>,
    dispatcher: Box<dyn Dispatcher>,
    conns: Slab<Conn>,
    by_id: HashMap<u64, usize>,
    ops: Slab<Op>,
    next_gen: u32,
    fixed_files: u32,
    listeners: Vec<Socket>,
    dirty: Vec<usize>,
    overflow: Vec<VecDeque<Cmd>>,
    to_notify: Vec<bool>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    armed_timer: Option<(Instant, usize)>,
    efd_buf: Box<[u8; 8]>,
    efd_armed: bool,
    cqes: Vec<(u64, i32, u32)>,
    /// Targeted receives in flight: while one is, the reactor parks instead of spinning (it
    /// completes only once a whole chunk of a large segment is in, far longer than a spin).
    loans_out: usize,
    events: Vec<Event>,
    recycled: bool,
    stalled: Vec<usize>,
    next_accept_core: usize,
    shutting_down: bool,
    cancel_all_sent: bool,
    /// This core's break points, with the times each has left.
    breaks: Vec<BreakPoint>,
    /// A lookup raised by the connection whose events are being dispatched.
    pending_lookup: Option<Lookup>,
    /// xorshift state for fault injection.
    rng: u64,
}

/// The reactor thread's body.
pub(crate) fn run(
    idx: usize,
    shared: Arc<Shared>,
    rc: Arc<ReactorConfig>,
    listeners: Vec<Socket>,
    factory: Arc<Factory>,
    ready: mpsc::Sender<Result<(), EngineError>>,
) {
    let cpu = shared.cores[idx].cpu;
    CURRENT.set(Some((shared.id, idx)));
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        warn!(cpu, "could not pin the reactor thread to its core");
    }
    let mut r = match Reactor::new(idx, Arc::clone(&shared), rc, listeners) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    r.dispatcher = factory(cpu);
    let _ = ready.send(Ok(()));
    drop(ready);
    r.run();
}

fn build_ring(rc: &ReactorConfig, cpu: usize) -> Result<IoUring, EngineError> {
    if rc.simulate_no_uring {
        return Err(EngineError::UringUnavailable {
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        });
    }
    let entries = rc.ring_entries;
    let r = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all()
        .setup_cqsize(entries * 8)
        .build(entries);
    match r {
        Ok(r) => Ok(r),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            warn!(
                cpu,
                "the kernel refused SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN ({e}); using a \
                 plain ring (expect more task-work interrupts)"
            );
            IoUring::builder()
                .setup_cqsize(entries * 8)
                .build(entries)
                .map_err(|source| EngineError::UringUnavailable { source })
        }
        Err(source) => Err(EngineError::UringUnavailable { source }),
    }
}

fn memlock_limit() -> (u64, bool) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } == 0;
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    (if ok { rl.rlim_cur } else { 0 }, root)
}

fn nofile_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_cur
    } else {
        1024
    }
}

impl Reactor {
    fn new(
        idx: usize,
        shared: Arc<Shared>,
        rc: Arc<ReactorConfig>,
        listeners: Vec<Socket>,
    ) -> Result<Self, EngineError> {
        let cpu = shared.cores[idx].cpu;
        let ring = build_ring(&rc, cpu)?;
        let counters: &CoreCounters = &shared.cores[idx].counters;

        // The arena: two thirds receive buffers (a power of two of them), the rest staging.
        let rx_count = ((rc.arena_bytes * 2 / 3) / RX_BUF)
            .clamp(8, 32768)
            .next_power_of_two()
            .min(32768);
        let rx_count = if rx_count * RX_BUF > rc.arena_bytes * 2 / 3 && rx_count > 8 {
            rx_count / 2
        } else {
            rx_count
        };
        let stage_count = (rc.arena_bytes.saturating_sub(rx_count * RX_BUF) / STAGE_SIZE).max(4);
        let mut arena = Arena::new(
            &[
                ClassSpec {
                    size: RX_BUF,
                    count: rx_count,
                },
                ClassSpec {
                    size: STAGE_SIZE,
                    count: stage_count,
                },
            ],
            Arc::clone(&counters.arena_in_use),
        )
        .map_err(|source| EngineError::Io {
            op: "mmap arena",
            source,
        })?;
        let need = arena.len() as u64;
        bump(&counters.arena_bytes, need);
        let (limit, privileged) = match rc.memlock_limit_override {
            Some(l) => (l, false),
            None => memlock_limit(),
        };
        let too_small = |limit: u64| EngineError::MemlockTooSmall {
            core: cpu,
            need,
            need_kib: need.div_ceil(1024),
            limit,
        };
        let fits = privileged || limit == libc::RLIM_INFINITY || need <= limit;
        let reg_err = if fits {
            let iov = arena.iovecs();
            // SAFETY: the iovecs describe the arena mapping, which outlives the ring (the ring
            // is dropped first, see the field order of `Reactor`).
            match unsafe { ring.submitter().register_buffers(&iov) } {
                Ok(()) => None,
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => Some(too_small(limit)),
                Err(source) => Some(EngineError::Io {
                    op: "register_buffers",
                    source,
                }),
            }
        } else {
            Some(too_small(limit))
        };
        match reg_err {
            None => {
                arena.registered = true;
                bump(&counters.arena_registered, 1);
            }
            Some(e @ EngineError::MemlockTooSmall { .. }) if rc.arena_fallback => {
                warn!(cpu, "{e}; continuing with an unregistered arena");
            }
            Some(e) => return Err(e),
        }

        let (base, size, count) = arena.rx_region();
        // SAFETY: the receive class is reserved for the ring (`Arena::alloc` never hands it
        // out) and the arena outlives the ring.
        let bufring =
            unsafe { BufRing::new(&ring, base, size, count as u16, 0) }.map_err(|source| {
                EngineError::Io {
                    op: "register provided-buffer ring (needs Linux 5.19+)",
                    source,
                }
            })?;

        let want_files = nofile_limit().min(MAX_FIXED_FILES) as u32;
        let fixed_files = match ring.submitter().register_files_sparse(want_files) {
            Ok(()) => want_files,
            Err(e) => {
                warn!(cpu, "no fixed-file table ({e}); using plain descriptors");
                0
            }
        };
        let n = shared.cores.len();
        let mut r = Self {
            ring,
            bufring: Some(bufring),
            arena,
            idx,
            shared,
            rc,
            dispatcher: Box::new(Null),
            conns: Slab::new(),
            by_id: HashMap::new(),
            ops: Slab::new(),
            next_gen: 1,
            fixed_files,
            listeners,
            dirty: Vec::new(),
            overflow: (0..n).map(|_| VecDeque::new()).collect(),
            to_notify: vec![false; n],
            timers: BinaryHeap::new(),
            armed_timer: None,
            efd_buf: Box::new([0; 8]),
            efd_armed: false,
            cqes: Vec::with_capacity(1024),
            loans_out: 0,
            events: Vec::new(),
            recycled: false,
            stalled: Vec::new(),
            next_accept_core: idx,
            shutting_down: false,
            cancel_all_sent: false,
            pending_lookup: None,
            breaks: Vec::new(),
            rng: injection_seed(),
        };
        r.breaks = r.rc.break_points.clone();
        r.arm_eventfd();
        for i in 0..r.listeners.len() {
            r.arm_accept(i);
        }
        Ok(r)
    }

    fn c(&self) -> &CoreCounters {
        &self.shared.cores[self.idx].counters
    }

    // ---- submission helpers -------------------------------------------------------------

    fn push_sqe(&mut self, e: squeue::Entry) {
        loop {
            // SAFETY: every pointer in an entry refers to memory owned by its op-table entry,
            // by a boxed field of its connection, or by the reactor (eventfd buffer), and all
            // of those live until the operation's final completion has been reaped.
            let r = unsafe { self.ring.submission().push(&e) };
            if r.is_ok() {
                return;
            }
            // The submission queue is full: hand it to the kernel and retry.
            self.enter(0);
        }
    }

    fn new_op(&mut self, kind: OpKind, slot: u32, gen: u32) -> u64 {
        if let Some(c) = self.conns.get_mut(slot as usize) {
            if c.gen == gen {
                c.ops += 1;
            }
        }
        self.ops.insert(Op {
            kind,
            slot,
            gen,
            zc_notif_pending: false,
        }) as u64
    }

    /// Frees an op; returns it.
    fn end_op(&mut self, ud: usize) -> Option<Op> {
        let op = self.ops.remove(ud)?;
        if op.slot != NO_SLOT {
            if let Some(c) = self.conns.get_mut(op.slot as usize) {
                if c.gen == op.gen {
                    c.ops = c.ops.saturating_sub(1);
                }
            }
        }
        Some(op)
    }

    fn enter(&mut self, want: u32) {
        let to_submit = self.ring.submission().len() as u32;
        ctr!(self.enters, 1);
        ctr!(self.sqes, to_submit);
        // SAFETY: no argument struct is passed; every queued SQE upholds `push_sqe`'s
        // invariant.
        let r = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                want,
                io_uring::EnterFlags::GETEVENTS.bits(),
                None,
            )
        };
        if let Err(e) = r {
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ETIME) => {}
                _ => warn!(error = %e, "io_uring_enter failed"),
            }
        }
    }

    fn arm_eventfd(&mut self) {
        let fd = self.shared.cores[self.idx].eventfd.as_raw_fd();
        let ud = self.new_op(OpKind::EventFd, NO_SLOT, 0);
        let e = opcode::Read::new(types::Fd(fd), self.efd_buf.as_mut_ptr(), 8)
            .build()
            .user_data(ud);
        self.push_sqe(e);
        self.efd_armed = true;
    }

    fn arm_accept(&mut self, i: usize) {
        let fd = self.listeners[i].as_raw_fd();
        let ud = self.new_op(OpKind::Accept(i), NO_SLOT, 0);
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ud);
        self.push_sqe(e);
    }

    fn arm_recv(&mut self, slot: usize) {
        let Some(bgid) = self.bufring.as_ref().map(|b| b.bgid) else {
            return;
        };
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.recv_armed || c.state != St::Open || c.rx_loan {
            return;
        }
        c.loan_wanted = false;
        c.recv_armed = true;
        let gen = c.gen;
        let e = if c.rx_single {
            with_fd!(c, |fd| opcode::Recv::new(
                fd,
                std::ptr::null_mut(),
                RX_BUF as u32
            )
            .buf_group(bgid)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT))
        } else {
            with_fd!(c, |fd| opcode::RecvMulti::new(fd, bgid).build())
        };
        let ud = self.new_op(OpKind::Recv, slot as u32, gen);
        if let Some(c) = self.conns.get_mut(slot) {
            c.recv_ud = Some(ud);
        }
        self.push_sqe(e.user_data(ud));
    }

    fn arm_timer(&mut self) {
        let Some(Reverse((when, _, _))) = self.timers.peek().copied() else {
            return;
        };
        if self.armed_timer.is_some_and(|(t, _)| t <= when) {
            return;
        }
        let d = when.saturating_duration_since(Instant::now());
        let ts = Box::new(
            types::Timespec::new()
                .sec(d.as_secs())
                .nsec(d.subsec_nanos()),
        );
        let p: *const types::Timespec = &*ts;
        let ud = self.new_op(OpKind::Timer(ts), NO_SLOT, 0);
        self.armed_timer = Some((when, ud as usize));
        self.push_sqe(opcode::Timeout::new(p).build().user_data(ud));
    }

    // ---- the loop -------------------------------------------------------------------------

    fn run(&mut self) {
        loop {
            let mut busy = !self.stalled.is_empty();
            for slot in std::mem::take(&mut self.stalled) {
                self.mark_dirty(slot);
            }
            busy |= self.reap();
            busy |= self.drain_inbound();
            self.drain_outbox();
            self.run_timers();
            self.flush_dirty();
            self.drain_outbox();
            busy |= self.push_remote();
            if let Some(b) = self.bufring.as_mut() {
                if self.recycled {
                    b.commit();
                    self.recycled = false;
                }
            }
            if self.shutting_down && self.conns.is_empty() {
                if !self.cancel_all_sent {
                    self.cancel_all_sent = true;
                    self.efd_armed = false;
                    let ud = self.new_op(OpKind::Cancel, NO_SLOT, 0);
                    let e = opcode::AsyncCancel2::new(types::CancelBuilder::any())
                        .build()
                        .user_data(ud);
                    self.push_sqe(e);
                } else if self.ops.is_empty() {
                    break;
                }
            }
            if !self.cancel_all_sent {
                self.arm_timer();
            }
            if busy || !self.dirty.is_empty() {
                self.enter(0);
                continue;
            }
            if self.spin() {
                self.enter(0);
                continue;
            }
            let me = &self.shared.cores[self.idx];
            me.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.inbound_pending() {
                self.shared.cores[self.idx]
                    .sleeping
                    .store(false, Ordering::Relaxed);
                self.enter(0);
                continue;
            }
            ctr!(self.sleeps, 1);
            self.enter(1);
            self.shared.cores[self.idx]
                .sleeping
                .store(false, Ordering::Relaxed);
        }
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(b) = self.bufring.take() {
            let _ = self.ring.submitter().unregister_buf_ring(b.bgid);
            drop(b);
        }
        let leaked = self.c().arena_in_use.load(Ordering::Relaxed);
        if leaked != 0 {
            warn!(
                bytes = leaked,
                "arena slots still lent out when the core stopped"
            );
            ctr!(self.arena_leaked_bytes, leaked);
        }
        debug!(core = self.shared.cores[self.idx].cpu, "reactor stopped");
    }

    /// Busy-waits up to `spin_before_park` for work (kernel task work flagged in the SQ ring,
    /// completions, or cross-core commands) without a syscall. Waking a parked core costs a
    /// cross-CPU wakeup (about 80 µs each way on this VM, the same as blocking sockets), so a
    /// short spin keeps streaming pipelines from paying it on every lull.
    fn spin(&mut self) -> bool {
        let Some(budget) = self.rc.spin_before_park.filter(|d| !d.is_zero()) else {
            return false;
        };
        if self.shutting_down || self.loans_out > 0 {
            return false;
        }
        let until = Instant::now() + budget;
        let mut i = 0u32;
        loop {
            if self.ring.submission().taskrun()
                || !self.ring.completion().is_empty()
                || self.inbound_pending()
            {
                return true;
            }
            i = i.wrapping_add(1);
            if i % 64 == 0 && Instant::now() >= until {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    fn inbound_pending(&self) -> bool {
        let me = self.idx;
        if self.shared.cores[me].injected.load(Ordering::Acquire) {
            return true;
        }
        (0..self.shared.cores.len()).any(|s| s != me && !self.shared.queues[s][me].is_empty_hint())
    }

    fn reap(&mut self) -> bool {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        for cqe in self.ring.completion() {
            cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        let n = cqes.len();
        ctr!(self.cqes, n);
        for &(ud, res, flags) in &cqes {
            self.on_cqe(ud as usize, res, flags);
        }
        self.cqes = cqes;
        n > 0
    }

    fn drain_inbound(&mut self) -> bool {
        let me = self.idx;
        let n = self.shared.cores.len();
        let mut any = false;
        for s in 0..n {
            if s == me {
                continue;
            }
            let shared = Arc::clone(&self.shared);
            for _ in 0..8192 {
                // SAFETY: this reactor thread is the only consumer of `queues[s][me]`.
                let Some(cmd) = (unsafe { shared.queues[s][me].pop() }) else {
                    break;
                };
                any = true;
                self.apply(cmd);
            }
        }
        if self.shared.cores[me].injected.swap(false, Ordering::AcqRel) {
            let cmds = match self.shared.cores[me].injector.lock() {
                Ok(mut q) => std::mem::take(&mut *q),
                Err(p) => std::mem::take(&mut *p.into_inner()),
            };
            any |= !cmds.is_empty();
            for cmd in cmds {
                self.apply(cmd);
            }
        }
        any
    }

    /// Applies what dispatcher callbacks queued on this thread.
    fn drain_outbox(&mut self) {
        loop {
            let batch = OUTBOX.with(|o| std::mem::take(&mut *o.borrow_mut()));
            if batch.is_empty() {
                return;
            }
            for (target, cmd) in batch {
                if target == self.idx {
                    self.apply(cmd);
                } else {
                    self.send_remote(target, cmd);
                }
            }
        }
    }

    fn send_remote(&mut self, target: usize, cmd: Cmd) {
        ctr!(self.cross_core_cmds, 1);
        self.to_notify[target] = true;
        if self.overflow[target].is_empty() {
            // SAFETY: this reactor thread is the only producer of `queues[idx][target]`.
            match unsafe { self.shared.queues[self.idx][target].push(cmd) } {
                Ok(()) => {}
                Err(cmd) => self.overflow[target].push_back(cmd),
            }
        } else {
            self.overflow[target].push_back(cmd);
        }
    }

    /// Moves overflow into the rings and wakes targets; true if overflow remains.
    fn push_remote(&mut self) -> bool {
        let mut left = false;
        for t in 0..self.overflow.len() {
            while let Some(cmd) = self.overflow[t].pop_front() {
                // SAFETY: this reactor thread is the only producer of `queues[idx][t]`.
                if let Err(cmd) = unsafe { self.shared.queues[self.idx][t].push(cmd) } {
                    self.overflow[t].push_front(cmd);
                    left = true;
                    break;
                }
            }
            if self.to_notify[t] {
                self.to_notify[t] = false;
                let shared = Arc::clone(&self.shared);
                shared.notify(t, Some(&shared.cores[self.idx].counters));
            }
        }
        left
    }

    // ---- commands -------------------------------------------------------------------------

    fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Send { id, msg } => {
                let Some(&slot) = self.by_id.get(&id) else {
                    ctr!(self.dropped_messages, 1);
                    return;
                };
                let raw = self.rc.raw;
                let Some(c) = self.conns.get_mut(slot) else {
                    return;
                };
                if c.state == St::Closing {
                    ctr!(self.dropped_messages, 1);
                    return;
                }
                ctr!(self.send_messages, 1);
                if raw {
                    c.raw_tx.push(msg);
                } else if let Some(p) = c.proto.as_mut() {
                    if let Err(e) = p.send_message(msg) {
                        self.close(slot, Some(e.to_string()));
                        return;
                    }
                    if c.state == St::Faulted {
                        // A parked (STANDBY) client session asks to dial again.
                        while let Some(ev) = p.poll_event() {
                            self.events.push(ev);
                        }
                        self.dispatch_events(slot);
                        return;
                    }
                }
                self.mark_dirty(slot);
            }
            Cmd::MarkDown { id } => {
                if let Some(&slot) = self.by_id.get(&id) {
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.notify_reset = false;
                        c.delayed.clear();
                    }
                    self.close(slot, None);
                }
            }
            Cmd::Keepalive { id, stamp } => {
                let Some(&slot) = self.by_id.get(&id) else {
                    return;
                };
                let r = self
                    .conns
                    .get_mut(slot)
                    .filter(|c| c.state != St::Closing)
                    .and_then(|c| c.proto.as_mut())
                    .map(|p| p.send_keepalive(stamp));
                match r {
                    Some(Ok(())) => self.mark_dirty(slot),
                    Some(Err(e)) => self.close(slot, Some(e.to_string())),
                    None => {}
                }
            }
            Cmd::Connect {
                handle,
                target,
                peer_type,
            } => self.connect(handle, target, peer_type),
            Cmd::Adopt { fd, peer } => self.adopt(fd, peer),
            Cmd::MoveIn {
                fd,
                proto,
                peer,
                lookup,
                hops,
            } => self.move_in(fd, *proto, peer, lookup, hops),
            Cmd::Shutdown => self.begin_shutdown(),
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // Stop accepting.
        let accepts: Vec<u64> = (0..self.ops.items.len())
            .filter(|i| matches!(self.ops.get(*i).map(|o| &o.kind), Some(OpKind::Accept(_))))
            .map(|i| i as u64)
            .collect();
        for ud in accepts {
            let cu = self.new_op(OpKind::Cancel, NO_SLOT, 0);
            self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(cu));
        }
        for slot in self.conns.slots() {
            let Some(c) = self.conns.get_mut(slot) else {
                continue;
            };
            c.notify_reset = false;
            c.draining = true;
            if matches!(c.state, St::Connecting | St::Faulted) {
                self.close(slot, None);
            } else {
                self.mark_dirty(slot);
            }
        }
        if !self.conns.is_empty() {
            self.timers
                .push(Reverse((Instant::now() + DRAIN_DEADLINE, SLOT_DRAIN, 0)));
        }
    }

    fn new_conn(
        &mut self,
        handle: ConnHandle,
        sock: OwnedFd,
        proto: Option<Connection>,
        server: bool,
        peer_type: EntityType,
        peer_sock: Option<SocketAddr>,
    ) -> usize {
        let mut proto = proto;
        if let Some(p) = proto.as_mut() {
            p.set_vectored_transmit(true);
        }
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let id = handle.0.id;
        let raw_rx = self
            .rc
            .raw
            .then(|| RawDecoder::new(self.rc.limits.max_message_segment));
        let slot = self.conns.insert(Conn {
            id,
            gen,
            handle,
            sock,
            fixed: None,
            proto,
            raw_rx,
            raw_tx: Vec::new(),
            state: St::Connecting,
            ops: 0,
            recv_armed: false,
            tx_batch: None,
            tx_sent: 0,
            connect_addr: None,
            deadline: None,
            server,
            peer_type,
            peer_sock,
            notify_reset: true,
            draining: false,
            dirty: false,
            recv_ud: None,
            reconnect_at: None,
            reg_keys: Vec::new(),
            moving: None,
            detached: false,
            active: true,
            delayed: VecDeque::new(),
            break_after_send: false,
            rx_loan: false,
            loan_wanted: false,
            rx_single: false,
        });
        self.by_id.insert(id, slot);
        if (slot as u32) < self.fixed_files {
            let fd = self.conns.get(slot).map(|c| c.sock.as_raw_fd());
            if let Some(fd) = fd {
                match self
                    .ring
                    .submitter()
                    .register_files_update(slot as u32, &[fd])
                {
                    Ok(_) => {
                        if let Some(c) = self.conns.get_mut(slot) {
                            c.fixed = Some(slot as u32);
                        }
                    }
                    Err(e) => debug!("fixed file slot {slot}: {e}; using the descriptor"),
                }
            }
        }
        ctr!(self.created_connections, 1);
        ctr!(self.active_connections, 1);
        self.update_deadline(slot);
        slot
    }

    fn proto_config(&self) -> Arc<Config> {
        self.rc.proto.clone().unwrap_or_else(|| {
            Arc::new(Config::new(
                self.rc
                    .my_name
                    .clone()
                    .unwrap_or_else(|| EntityName::new(EntityType::Client, "admin")),
            ))
        })
    }

    fn connect(&mut self, handle: ConnHandle, target: EntityAddr, peer_type: EntityType) {
        if self.shutting_down {
            handle.0.closed.store(true, Ordering::Relaxed);
            return;
        }
        let proto = (!self.rc.raw).then(|| {
            let cfg = self.proto_config();
            let gseq = cfg.global_seq.next();
            Connection::client(cfg, target, peer_type, gseq, Instant::now())
        });
        if let Some(slot) = self.dial(handle, target, proto, peer_type) {
            if !self.rc.raw {
                self.register(slot, &[target]);
            }
        }
    }

    /// Opens a socket to `target` carrying `proto` under `handle`. Without a slot (no address,
    /// no socket) the handle is closed and the failure reported.
    fn dial(
        &mut self,
        handle: ConnHandle,
        target: EntityAddr,
        proto: Option<Connection>,
        peer_type: EntityType,
    ) -> Option<usize> {
        let fail = |me: &mut Self, h: &ConnHandle, e: String| {
            h.0.closed.store(true, Ordering::Relaxed);
            ctr!(me.connection_errors, 1);
            me.dispatcher.on_reset(h, &e);
        };
        let Some(sa) = target.sock else {
            fail(self, &handle, format!("{target} has no IP and port"));
            return None;
        };
        let sock = match Socket::new(Domain::for_address(sa), Type::STREAM.cloexec(), None) {
            Ok(s) => s,
            Err(e) => {
                fail(self, &handle, format!("socket for {sa}: {e}"));
                return None;
            }
        };
        let _ = sock.set_nodelay(true);
        let slot = self.new_conn(handle, sock.into(), proto, false, peer_type, Some(sa));
        let addr = Box::new(SockAddr::from(sa));
        let (p, len) = (addr.as_ptr(), addr.len());
        let c = self.conns.get_mut(slot)?;
        c.connect_addr = Some(addr);
        let gen = c.gen;
        let e = with_fd!(c, |fd| opcode::Connect::new(fd, p.cast(), len).build());
        let ud = self.new_op(OpKind::Connect, slot as u32, gen);
        self.push_sqe(e.user_data(ud));
        Some(slot)
    }

    // ---- sessions: faults, reconnects, lookups ----------------------------------------------
    //
    // A `ConnHandle` names a *session*, not a socket. A lossless session survives a fault:
    // its socket is shut down and its slot turns `Faulted`; on `Event::Reconnect` a timer
    // dials again with `Connection::reconnect`, and the new slot takes over the handle, the
    // registry keys and any delayed messages, so the application's handle keeps working.
    //
    // Session lookup. Accepted sockets are dealt round-robin before a byte is read, so a
    // peer's reconnect (or its side of a connection race) may land on a core other than the
    // one owning the session. When its CLIENT_IDENT / SESSION_RECONNECT arrives, proto pauses
    // it (`Event::Lookup`); the reactor asks the messenger's registry (`Shared::sessions`,
    // addr → (core, conn id), a mutex touched only at handshake time) who holds the session.
    // Here: resolve at once. Elsewhere: cancel its receive, wait for its operations, and hand
    // the live socket and its `Connection` (bytes received meanwhile are kept inside it) to
    // the owning core through the core-pair ring, which resolves it against the local
    // connection. We move the newcomer rather than the session because the session may be
    // busy (queues, sends in flight, cipher state), while the newcomer is idle by
    // construction: paused until the answer, and never yet seen by the application. A
    // connection is moved at most twice (the registry may change under it); then it is
    // resolved as new.

    /// Records that this connection holds the session with `addrs` (first holder wins).
    /// Only lossless sessions are registered: they are the ones a peer resumes or races for
    /// (Ceph keeps one connection per peer address; we also allow several lossy connections
    /// to one peer, e.g. for benchmarks, and those must not replace each other).
    fn register(&mut self, slot: usize, addrs: &[EntityAddr]) {
        let core = self.idx;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.proto.as_ref().is_none_or(|p| p.session().is_lossy()) {
            return;
        }
        let mut reg = match self.shared.sessions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for a in addrs {
            if a.sock.is_none() || c.reg_keys.contains(a) {
                continue;
            }
            let v = reg.entry(*a).or_insert((core, c.id));
            if v.1 == c.id {
                *v = (core, c.id);
                c.reg_keys.push(*a);
            }
        }
    }

    fn unregister_keys(&self, id: u64, keys: &[EntityAddr]) {
        if keys.is_empty() {
            return;
        }
        let mut reg = match self.shared.sessions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for k in keys {
            if reg.get(k).is_some_and(|v| v.1 == id) {
                reg.remove(k);
            }
        }
    }

    /// A connection's socket or protocol failed with `e`. A lossless session survives (its
    /// socket is torn down; it reconnects or waits in STANDBY); anything else closes.
    fn fail(&mut self, slot: usize, e: String) {
        let shutting_down = self.shutting_down;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if matches!(c.state, St::Closing | St::Faulted) {
            return;
        }
        let moving = c.state == St::Moving;
        if let Some(p) = c.proto.as_mut() {
            if !p.is_faulted() {
                let _ = p.handle_socket_error(e.clone());
            }
            while let Some(ev) = p.poll_event() {
                self.events.push(ev);
            }
            if !p.is_closed() && !moving && !shutting_down {
                debug!(conn = c.id, error = %e, state = p.state(), "connection fault, session kept");
                let h = c.handle.clone();
                ctr!(self.connection_errors, 1);
                self.teardown_socket(slot);
                self.dispatch_events(slot);
                self.dispatcher.on_fault(&h, &e);
                return;
            }
            self.dispatch_events(slot);
        }
        self.close(slot, Some(e));
    }

    /// Shuts the socket down (the peer notices at once) and cancels its operations, keeping
    /// the slot and its session.
    fn teardown_socket(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !matches!(c.state, St::Open | St::Connecting) {
            return;
        }
        c.state = St::Faulted;
        c.recv_armed = false;
        c.recv_ud = None;
        let _ = SockRef::from(&c.sock).shutdown(std::net::Shutdown::Both);
        let gen = c.gen;
        let cancel = (c.ops > 0).then(|| {
            with_fd!(c, |fd| opcode::AsyncCancel2::new(
                types::CancelBuilder::fd(fd).all()
            )
            .build())
        });
        if std::mem::take(&mut c.active) {
            drop_by(&self.c().active_connections, 1);
        }
        if let Some(e) = cancel {
            let ud = self.new_op(OpKind::Cancel, slot as u32, gen);
            self.push_sqe(e.user_data(ud));
        }
    }

    /// The reconnect timer of a faulted lossless session fired: dial a new connection that
    /// carries the session (SESSION_RECONNECT) under the same handle.
    fn do_reconnect(&mut self, slot: usize) {
        if self.shutting_down {
            self.close(slot, None);
            return;
        }
        let gseq = self.proto_config().global_seq.next();
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(p) = c.proto.as_mut() else {
            return;
        };
        let new = match p.reconnect(gseq, Instant::now()) {
            Ok(n) => n,
            Err(e) => {
                self.close(slot, Some(e.to_string()));
                return;
            }
        };
        let Some(target) = new.target() else {
            self.close(slot, Some("reconnect without a target address".into()));
            return;
        };
        let handle = c.handle.clone();
        let id = c.id;
        let peer_type = c.peer_type;
        let keys = std::mem::take(&mut c.reg_keys);
        let delayed = std::mem::take(&mut c.delayed);
        c.detached = true;
        ctr!(self.reconnects, 1);
        self.close(slot, None);
        match self.dial(handle, target, Some(new), peer_type) {
            Some(ns) => {
                if let Some(n) = self.conns.get_mut(ns) {
                    n.reg_keys = keys;
                    n.delayed = delayed;
                }
                self.schedule_delayed(ns);
            }
            None => self.unregister_keys(id, &keys),
        }
    }

    /// Answers an accepted connection's `Event::Lookup` (see "Session lookup" above).
    fn on_lookup(&mut self, slot: usize, l: Lookup, hops: u8) {
        const MAX_HOPS: u8 = 2;
        let Some(my_id) = self.conns.get(slot).map(|c| c.id) else {
            return;
        };
        let found = {
            let reg = match self.shared.sessions.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            l.peer_addrs
                .0
                .iter()
                .filter_map(|a| reg.get(a))
                .find(|v| v.1 != my_id)
                .copied()
        };
        match found {
            Some((core, _)) if core != self.idx && hops < MAX_HOPS => {
                self.start_move(slot, core, l, hops)
            }
            Some((core, id)) if core == self.idx => {
                let ex = self.by_id.get(&id).copied().filter(|&e| {
                    e != slot
                        && self
                            .conns
                            .get(e)
                            .filter(|c| c.state != St::Closing)
                            .and_then(|c| c.proto.as_ref())
                            .is_some_and(|p| l.matches(p))
                });
                self.resolve_here(slot, ex);
            }
            _ => self.resolve_here(slot, None),
        }
    }

    fn resolve_here(&mut self, slot: usize, ex: Option<usize>) {
        let fate = match ex {
            Some(e) => match self.conns.two_mut(slot, e) {
                (Some(n), Some(x)) => match (n.proto.as_mut(), x.proto.as_mut()) {
                    (Some(n), Some(x)) => n.resolve_lookup(Some(x)),
                    _ => return,
                },
                _ => return,
            },
            None => match self.conns.get_mut(slot).and_then(|c| c.proto.as_mut()) {
                Some(n) => n.resolve_lookup(None),
                None => return,
            },
        };
        debug!(slot, existing = ?ex, fate = ?fate, "session lookup resolved");
        match (fate, ex) {
            (Err(e), _) => {
                self.drain_proto_events(slot);
                self.close(slot, Some(e.to_string()));
                return;
            }
            (Ok(ExistingFate::TakenOver), Some(e)) => self.take_over(slot, e),
            (Ok(ExistingFate::Stopped), Some(e)) => {
                self.drain_proto_events(e);
                if let Some(c) = self.conns.get_mut(e) {
                    c.notify_reset = false;
                }
                self.close(e, None);
            }
            (Ok(_), Some(e)) => self.mark_dirty(e),
            (Ok(_), None) => {}
        }
        self.drain_proto_events(slot);
        if self
            .conns
            .get(slot)
            .and_then(|c| c.proto.as_ref())
            .is_some_and(|p| p.is_closed())
        {
            self.close(
                slot,
                Some("connection closed after its session lookup".into()),
            );
            return;
        }
        self.update_deadline(slot);
        self.mark_dirty(slot);
    }

    /// Dispatches whatever events the connection's protocol queued.
    fn drain_proto_events(&mut self, slot: usize) {
        if let Some(p) = self.conns.get_mut(slot).and_then(|c| c.proto.as_mut()) {
            while let Some(ev) = p.poll_event() {
                self.events.push(ev);
            }
        }
        self.dispatch_events(slot);
    }

    /// The new connection in `n` took over the session of `e`: the application's handle for
    /// that session (and its registry keys, delayed messages) now names `n`.
    fn take_over(&mut self, n: usize, e: usize) {
        let Some(ec) = self.conns.get_mut(e) else {
            return;
        };
        let h = ec.handle.clone();
        let keys = std::mem::take(&mut ec.reg_keys);
        let delayed = std::mem::take(&mut ec.delayed);
        let peer_type = ec.peer_type;
        ec.detached = true;
        ec.notify_reset = false;
        self.close(e, None);
        let Some(nc) = self.conns.get_mut(n) else {
            self.unregister_keys(h.0.id, &keys);
            return;
        };
        let temp = std::mem::replace(&mut nc.handle, h.clone());
        temp.0.closed.store(true, Ordering::Relaxed);
        nc.id = h.0.id;
        nc.reg_keys = keys;
        nc.delayed = delayed;
        nc.peer_type = peer_type;
        if self.by_id.get(&temp.0.id) == Some(&n) {
            self.by_id.remove(&temp.0.id);
        }
        self.by_id.insert(h.0.id, n);
        self.schedule_delayed(n);
    }

    /// Starts moving an accepted connection to `core` (see "Session lookup").
    fn start_move(&mut self, slot: usize, core: usize, l: Lookup, hops: u8) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.state = St::Moving;
        c.moving = Some((core, l, hops + 1));
        let gen = c.gen;
        if let Some(ud) = c.recv_ud {
            let cu = self.new_op(OpKind::Cancel, slot as u32, gen);
            self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(cu));
        }
        self.maybe_finalize(slot);
    }

    /// The moving connection has no operation left: hand it to its new core.
    fn finish_move(&mut self, slot: usize) {
        let Some(c) = self.conns.remove(slot) else {
            return;
        };
        if let Some(f) = c.fixed {
            let _ = self.ring.submitter().register_files_update(f, &[-1]);
        }
        if self.by_id.get(&c.id) == Some(&slot) {
            self.by_id.remove(&c.id);
        }
        if c.active {
            drop_by(&self.c().active_connections, 1);
        }
        c.handle.0.closed.store(true, Ordering::Relaxed);
        let (Some((core, lookup, hops)), Some(proto)) = (c.moving, c.proto) else {
            return;
        };
        ctr!(self.moved, 1);
        self.send_remote(
            core,
            Cmd::MoveIn {
                fd: c.sock,
                proto: Box::new(proto),
                peer: c.peer_sock,
                lookup,
                hops,
            },
        );
    }

    /// Takes over a connection another core moved here for its session lookup.
    fn move_in(
        &mut self,
        fd: OwnedFd,
        proto: Connection,
        peer: Option<SocketAddr>,
        lookup: Lookup,
        hops: u8,
    ) {
        if self.shutting_down {
            return;
        }
        let handle = self.new_handle(peer);
        let slot = self.new_conn(handle, fd, Some(proto), true, EntityType::Client, peer);
        // Already counted where it was accepted.
        drop_by(&self.c().created_connections, 1);
        self.on_open(slot);
        self.on_lookup(slot, lookup, hops);
    }

    fn new_handle(&self, peer_sock: Option<SocketAddr>) -> ConnHandle {
        let id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        ConnHandle(Arc::new(crate::api::ConnShared {
            id,
            core: self.idx,
            shared: Arc::clone(&self.shared),
            info: std::sync::OnceLock::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            peer_sock,
        }))
    }

    // ---- fault injection (`ms_inject_*`) -----------------------------------------------------

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A break point for a connection transmitting in `state`, if one is armed (consumed).
    fn hit_break_point(&mut self, state: &str) -> Option<BreakAt> {
        let b = self
            .breaks
            .iter_mut()
            .find(|b| b.times > 0 && b.state == state)?;
        b.times -= 1;
        Some(b.at)
    }

    /// `ms_inject_socket_failures`: after one in N socket operations, shut the socket down
    /// as Ceph does (both ends see a real failure and go through their fault handling).
    fn maybe_inject_failure(&mut self, slot: usize) {
        let n = self.rc.inject_socket_failures;
        if n == 0 || self.rand() % n != 0 {
            return;
        }
        if let Some(c) = self.conns.get(slot).filter(|c| c.state == St::Open) {
            debug!(conn = c.id, "injecting a socket failure");
            let _ = SockRef::from(&c.sock).shutdown(std::net::Shutdown::Both);
            ctr!(self.injected_failures, 1);
        }
    }

    /// Delivers a received message, or holds it back (`ms_inject_delay_*`): once one message
    /// of a connection is held, the following ones queue behind it so order is kept.
    fn deliver(&mut self, slot: usize, h: &ConnHandle, m: Message) {
        if let Some(d) = self.rc.inject_delay.clone() {
            let now = Instant::now();
            let Some(c) = self.conns.get(slot) else {
                return;
            };
            let held = !c.delayed.is_empty();
            let pick = d.types.contains(&c.peer_type)
                && (self.rand() as f64 / u64::MAX as f64) < d.probability;
            if held || pick {
                let extra = d.max.mul_f64(self.rand() as f64 / u64::MAX as f64);
                let Some(c) = self.conns.get_mut(slot) else {
                    return;
                };
                let due = c.delayed.back().map_or(now, |b| b.0).max(now + extra);
                c.delayed.push_back((due, m));
                if pick {
                    ctr!(self.injected_delays, 1);
                }
                self.schedule_delayed(slot);
                return;
            }
        }
        ctr!(self.recv_messages, 1);
        self.dispatcher.on_message(h, m);
        // Apply what the callback sent now, not after the whole completion batch: otherwise a
        // burst of small requests (one recv batch holds thousands) piles up its replies in
        // the outbox before the send queue bound sees any of them, and a peer that never
        // reads makes us hold (requests per batch × reply size). Once the bound fails the
        // connection, later replies are refused at `ConnHandle::send` and freed at once.
        self.drain_outbox();
    }

    fn schedule_delayed(&mut self, slot: usize) {
        if let Some(c) = self.conns.get(slot) {
            if let Some((due, _)) = c.delayed.front() {
                self.timers.push(Reverse((*due, slot as u32, c.gen)));
            }
        }
    }

    /// Delivers held messages that are due (all of them when `all`).
    fn release_delayed(&mut self, slot: usize, now: Instant, all: bool) {
        loop {
            let Some(c) = self.conns.get_mut(slot) else {
                return;
            };
            if !c.delayed.front().is_some_and(|(t, _)| all || *t <= now) {
                break;
            }
            let Some((_, m)) = c.delayed.pop_front() else {
                break;
            };
            let h = c.handle.clone();
            ctr!(self.recv_messages, 1);
            self.dispatcher.on_message(&h, m);
        }
        self.schedule_delayed(slot);
    }

    fn adopt(&mut self, fd: OwnedFd, peer: SocketAddr) {
        if self.shutting_down {
            return;
        }
        let handle = self.new_handle(Some(peer));
        let proto = match (&self.rc.proto, self.rc.raw) {
            (Some(cfg), false) => {
                let gseq = cfg.global_seq.next();
                Some(Connection::server(
                    Arc::clone(cfg),
                    peer,
                    gseq,
                    Instant::now(),
                ))
            }
            _ => None,
        };
        let slot = self.new_conn(handle, fd, proto, true, EntityType::Client, Some(peer));
        self.on_open(slot);
    }

    /// The socket is connected (or accepted): start receiving and, in raw mode, report ready.
    fn on_open(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.state = St::Open;
        let raw = c.proto.is_none();
        self.arm_recv(slot);
        if raw {
            let Some(c) = self.conns.get(slot) else {
                return;
            };
            let info = PeerInfo {
                entity_type: c.peer_type,
                gid: -1,
                addrs: EntityAddrVec(
                    c.peer_sock
                        .map(|s| vec![EntityAddr::new(AddrType::Any, s, 0)])
                        .unwrap_or_default(),
                ),
                name: None,
                features: 0,
                revision: Revision::Rev1,
                con_mode: CON_MODE_RAW,
                auth_method: 0,
                global_id: 0,
                lossy: true,
                my_addr_seen_by_peer: None,
                reconnected: false,
                compression: None,
            };
            let h = c.handle.clone();
            let server = c.server;
            let _ = h.0.info.set(info.clone());
            ctr!(self.conns_raw, 1);
            if server {
                self.dispatcher.on_accept(&h, &info);
            } else {
                self.dispatcher.on_connect(&h, &info);
            }
        }
        self.mark_dirty(slot);
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn update_deadline(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let d = c.proto.as_ref().and_then(|p| p.poll_timeout());
        if d != c.deadline {
            c.deadline = d;
            if let Some(d) = d {
                self.timers.push(Reverse((d, slot as u32, c.gen)));
            }
        }
    }

    fn close(&mut self, slot: usize, err: Option<String>) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.state == St::Closing {
            return;
        }
        c.state = St::Closing;
        let detached = c.detached;
        if !detached {
            c.handle.0.closed.store(true, Ordering::Relaxed);
        }
        c.raw_tx.clear();
        let notify = c.notify_reset;
        let h = c.handle.clone();
        let gen = c.gen;
        let has_ops = c.ops > 0;
        let cancel = has_ops.then(|| {
            with_fd!(c, |fd| opcode::AsyncCancel2::new(
                types::CancelBuilder::fd(fd).all()
            )
            .build())
        });
        let (server, peer_sock) = (c.server, c.peer_sock);
        let was_active = std::mem::take(&mut c.active);
        let keys = std::mem::take(&mut c.reg_keys);
        let id = c.id;
        if was_active {
            drop_by(&self.c().active_connections, 1);
        }
        if !detached {
            self.unregister_keys(id, &keys);
            // Messages already received (held by `ms_inject_delay_*`) are delivered
            // (`mark_down` dropped them already).
            self.release_delayed(slot, Instant::now(), true);
        }
        if let Some(e) = err {
            debug!(conn = h.0.id, error = %e, "connection failed");
            ctr!(self.connection_errors, 1);
            if notify {
                if server && h.0.info.get().is_none() {
                    // Never became a session the application knew of.
                    self.dispatcher.on_accept_failed(peer_sock, &e);
                } else {
                    self.dispatcher.on_reset(&h, &e);
                }
            }
        }
        if let Some(e) = cancel {
            let ud = self.new_op(OpKind::Cancel, slot as u32, gen);
            self.push_sqe(e.user_data(ud));
        }
        self.maybe_finalize(slot);
    }

    fn maybe_finalize(&mut self, slot: usize) {
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.ops != 0 {
            return;
        }
        match c.state {
            St::Closing => {}
            St::Moving => return self.finish_move(slot),
            _ => return,
        }
        if let Some(c) = self.conns.remove(slot) {
            if let Some(f) = c.fixed {
                let _ = self.ring.submitter().register_files_update(f, &[-1]);
            }
            if self.by_id.get(&c.id) == Some(&slot) {
                self.by_id.remove(&c.id);
            }
            // Dropping `c` closes the socket; its batches were released with their ops.
        }
    }

    // ---- completions ----------------------------------------------------------------------

    fn on_cqe(&mut self, ud: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let Some(op) = self.ops.get_mut(ud) else {
            return;
        };
        if op.zc_notif_pending && cqueue::notif(flags) {
            if (res as u32) & IORING_NOTIF_USAGE_ZC_COPIED != 0 {
                ctr!(self.zc_copied, 1);
            }
            let slot = op.slot as usize;
            self.end_op(ud);
            self.maybe_finalize(slot);
            return;
        }
        let (slot, gen) = (op.slot, op.gen);
        match &op.kind {
            OpKind::EventFd => {
                self.end_op(ud);
                if !self.cancel_all_sent {
                    self.arm_eventfd();
                }
            }
            OpKind::Timer(_) => {
                if self.armed_timer.is_some_and(|(_, u)| u == ud) {
                    self.armed_timer = None;
                }
                self.end_op(ud);
            }
            OpKind::Cancel => {
                self.end_op(ud);
                if slot != NO_SLOT {
                    self.maybe_finalize(slot as usize);
                }
            }
            OpKind::Accept(i) => {
                let i = *i;
                if !more {
                    self.end_op(ud);
                }
                self.on_accept(res);
                if !more && !self.shutting_down {
                    if res < 0 && res != -libc::ECANCELED {
                        warn!(error = %std::io::Error::from_raw_os_error(-res), "accept");
                    }
                    self.arm_accept(i);
                }
            }
            OpKind::Connect => {
                self.end_op(ud);
                self.on_connect_done(slot as usize, gen, res);
            }
            OpKind::Recv => {
                if !more {
                    self.end_op(ud);
                }
                self.on_recv(slot as usize, gen, res, flags, more);
                self.maybe_finalize(slot as usize);
            }
            OpKind::RecvInto(..) => {
                self.loans_out = self.loans_out.saturating_sub(1);
                let loan = match self.end_op(ud).map(|o| o.kind) {
                    Some(OpKind::RecvInto(buf, _)) => Some(buf),
                    _ => None,
                };
                if let Some(buf) = loan {
                    self.on_loan_done(slot as usize, gen, res, buf);
                }
                self.maybe_finalize(slot as usize);
            }
            OpKind::Send(_) => {
                let zc_more = more;
                if zc_more {
                    if let Some(op) = self.ops.get_mut(ud) {
                        op.zc_notif_pending = true;
                    }
                } else {
                    self.end_op(ud);
                }
                self.on_send_done(slot as usize, gen, res);
                self.maybe_finalize(slot as usize);
            }
        }
    }

    fn on_accept(&mut self, res: i32) {
        if res < 0 {
            return;
        }
        // SAFETY: a successful accept completion hands us a new descriptor nobody owns.
        let fd = unsafe { OwnedFd::from_raw_fd(res as RawFd) };
        if self.shutting_down {
            return;
        }
        let sref = SockRef::from(&fd);
        let _ = sref.set_nodelay(true);
        let Some(peer) = sref.peer_addr().ok().and_then(|a| a.as_socket()) else {
            return;
        };
        let n = self.shared.cores.len();
        let target = self.next_accept_core % n;
        self.next_accept_core = self.next_accept_core.wrapping_add(1);
        if target == self.idx {
            self.adopt(fd, peer);
        } else {
            self.send_remote(target, Cmd::Adopt { fd, peer });
        }
    }

    fn on_connect_done(&mut self, slot: usize, gen: u32, res: i32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        c.connect_addr = None;
        if c.state == St::Closing {
            self.maybe_finalize(slot);
            return;
        }
        if res < 0 {
            let e = format!(
                "connect to {}: {}",
                c.peer_sock.map(|s| s.to_string()).unwrap_or_default(),
                std::io::Error::from_raw_os_error(-res)
            );
            self.fail(slot, e);
            return;
        }
        self.on_open(slot);
    }

    fn on_send_done(&mut self, slot: usize, gen: u32, res: i32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        if matches!(c.state, St::Closing | St::Faulted) {
            c.tx_batch = None;
            c.tx_sent = 0;
            return;
        }
        if res < 0 {
            let e = format!("send: {}", std::io::Error::from_raw_os_error(-res));
            self.fail(slot, e);
            return;
        }
        ctr!(self.send_bytes, res);
        self.maybe_inject_failure(slot);
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.tx_sent += res as usize;
        let total = c.tx_batch.as_ref().map_or(0, |b| b.total);
        if c.tx_sent < total {
            self.submit_send(slot);
            return;
        }
        c.tx_sent = 0;
        if std::mem::take(&mut c.break_after_send) {
            let _ = SockRef::from(&c.sock).shutdown(std::net::Shutdown::Both);
            c.tx_batch = None;
            return;
        }
        if let Some(b) = c.tx_batch.take() {
            // Give the protocol's output buffer (the batch's last piece) back for reuse when
            // nothing else holds it.
            if let Ok(mut b) = Rc::try_unwrap(b) {
                if let (Some(Chunk::Data(d)), Some(p)) = (b.chunks.pop(), c.proto.as_mut()) {
                    if !d.is_shared() && d.len() <= 8 << 20 {
                        p.recycle_transmit_buffer(d.into_vec());
                    }
                }
            }
        }
        self.mark_dirty(slot);
    }

    fn on_recv(&mut self, slot: usize, gen: u32, res: i32, flags: u32, more: bool) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        if !more {
            c.recv_armed = false;
            c.recv_ud = None;
        }
        let bid = cqueue::buffer_select(flags);
        if res > 0 {
            ctr!(self.recv_bytes, res);
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if matches!(c.state, St::Closing | St::Faulted) {
            if let (Some(bid), Some(b)) = (bid, self.bufring.as_mut()) {
                b.recycle(bid);
                self.recycled = true;
            }
            return;
        }
        let moving = c.state == St::Moving;
        if res > 0 {
            let (Some(bid), Some(br)) = (bid, self.bufring.as_mut()) else {
                self.close(slot, Some("recv completed without a buffer".into()));
                return;
            };
            let data = br.data(bid, res as usize);
            let mut err = None;
            let mut raw_msgs = Vec::new();
            if let Some(p) = c.proto.as_mut() {
                if let Err(e) = p.handle_input(data) {
                    err = Some(e.to_string());
                }
                while let Some(ev) = p.poll_event() {
                    self.events.push(ev);
                }
            } else if let Some(dec) = c.raw_rx.as_mut() {
                let mut d = data;
                while !d.is_empty() {
                    match dec.feed(d) {
                        Ok((n, m)) => {
                            d = &d[n..];
                            if let Some((h, payload)) = m {
                                raw_msgs.push(raw_message(h, payload));
                            }
                        }
                        Err(e) => {
                            err = Some(format!("raw framing: {e}"));
                            break;
                        }
                    }
                }
            }
            br.recycle(bid);
            self.recycled = true;
            for m in raw_msgs {
                self.events.push(Event::Message(m));
            }
            self.dispatch_events(slot);
            if let Some(e) = err {
                self.fail(slot, e);
                return;
            }
            if moving {
                return;
            }
            self.maybe_inject_failure(slot);
            self.update_deadline(slot);
            self.maybe_start_loan(slot);
            if let Some(c) = self.conns.get_mut(slot) {
                // A full buffer that started no targeted receive: small messages are
                // streaming, which the multishot receive serves better. A short one (the
                // socket ran dry, e.g. between two large messages) keeps single-shot.
                if !c.rx_loan && !c.loan_wanted && res as usize == RX_BUF {
                    c.rx_single = false;
                }
            }
            if self
                .conns
                .get(slot)
                .and_then(|c| c.proto.as_ref())
                .is_some_and(|p| p.wants_transmit())
            {
                self.mark_dirty(slot);
            }
            if !more || self.conns.get(slot).is_some_and(|c| c.draining) {
                if !more {
                    ctr!(self.recv_rearms, 1);
                }
                self.mark_dirty(slot);
            }
            return;
        }
        if res == 0 {
            let e = match c.proto.as_mut() {
                Some(p) => p.handle_eof().to_string(),
                None => "peer closed the connection".to_string(),
            };
            self.fail(slot, e);
            return;
        }
        if res == -libc::ENOBUFS {
            // The buffer ring ran dry; buffers are recycled this iteration, re-arm in flush.
            ctr!(self.recv_rearms, 1);
            self.mark_dirty(slot);
            return;
        }
        if res == -libc::ECANCELED {
            // Stopped for a targeted receive (see `maybe_start_loan`), or closing.
            self.maybe_start_loan(slot);
            self.mark_dirty(slot);
            return;
        }
        self.fail(
            slot,
            format!("recv: {}", std::io::Error::from_raw_os_error(-res)),
        );
    }

    /// Receive-side zero copy: when a connection is inside a large data segment, the rest of
    /// the segment is received by one targeted `recv(MSG_WAITALL)` straight into the
    /// segment's page-aligned buffer (lent by the protocol, held by the operation) instead of
    /// passing through the provided buffers and being copied. The multishot receive is
    /// stopped first (one socket, one reader) and re-armed when the segment is in.
    fn maybe_start_loan(&mut self, slot: usize) {
        let Some(min) = self.rc.zero_copy_recv_min else {
            return;
        };
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.state != St::Open || c.rx_loan || c.draining {
            c.loan_wanted = false;
            return;
        }
        let left = match (c.proto.as_ref(), c.raw_rx.as_ref()) {
            (Some(p), _) => p.rx_segment_left(),
            (None, Some(r)) => r.payload_left(),
            (None, None) => return,
        };
        if c.recv_armed {
            // Stop the multishot receive only for a segment worth it.
            if !c.loan_wanted && left > 0 && left >= min {
                c.loan_wanted = true;
                if let Some(ud) = c.recv_ud {
                    let gen = c.gen;
                    let cu = self.new_op(OpKind::Cancel, slot as u32, gen);
                    self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(cu));
                }
            }
            return;
        }
        c.loan_wanted = false;
        let lent = match (c.proto.as_mut(), c.raw_rx.as_mut()) {
            (Some(p), _) => p.lend_rx_segment(min),
            (None, Some(r)) => r.lend_payload(min),
            (None, None) => None,
        };
        let Some((mut buf, off)) = lent else {
            return;
        };
        let rest = &mut buf.make_mut()[off..];
        // One chunk, unless what would remain after it is too short for another loan.
        let chunk = self.rc.rx_loan_chunk.max(1);
        let len = if rest.len() >= chunk.saturating_add(min) {
            chunk
        } else {
            rest.len()
        };
        let (ptr, len) = (rest.as_mut_ptr(), len as u32);
        c.rx_loan = true;
        let gen = c.gen;
        let e = with_fd!(c, |fd| opcode::Recv::new(fd, ptr, len)
            .flags(libc::MSG_WAITALL)
            .build());
        ctr!(self.zero_copy_recvs, 1);
        self.loans_out += 1;
        let ud = self.new_op(OpKind::RecvInto(buf, off), slot as u32, gen);
        self.push_sqe(e.user_data(ud));
    }

    /// A targeted receive completed: give the buffer back to the protocol and go on.
    fn on_loan_done(&mut self, slot: usize, gen: u32, res: i32, buf: Data) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        c.rx_loan = false;
        c.rx_single = true;
        let open = c.state == St::Open;
        let n = usize::try_from(res).unwrap_or(0);
        let r = match (c.proto.as_mut(), c.raw_rx.as_mut()) {
            (Some(p), _) => {
                let r = p.return_rx_segment(buf, n).map_err(|e| e.to_string());
                while let Some(ev) = p.poll_event() {
                    self.events.push(ev);
                }
                r
            }
            (None, Some(dec)) => match dec.return_payload(buf, n) {
                Ok(m) => {
                    if let Some((h, payload)) = m {
                        self.events.push(Event::Message(raw_message(h, payload)));
                    }
                    Ok(())
                }
                Err(e) => Err(format!("raw framing: {e}")),
            },
            (None, None) => return,
        };
        if !open {
            self.events.clear();
            return;
        }
        if res > 0 {
            ctr!(self.recv_bytes, res);
        }
        self.dispatch_events(slot);
        if let Err(e) = r {
            self.fail(slot, e);
            return;
        }
        match res {
            0 => {
                let e = match self.conns.get_mut(slot).and_then(|c| c.proto.as_mut()) {
                    Some(p) => p.handle_eof().to_string(),
                    None => "peer closed the connection".to_string(),
                };
                self.fail(slot, e);
            }
            r if r < 0 && r != -libc::ECANCELED => self.fail(
                slot,
                format!("recv: {}", std::io::Error::from_raw_os_error(-r)),
            ),
            _ => {
                self.maybe_inject_failure(slot);
                self.update_deadline(slot);
                // A short receive continues the same segment; otherwise back to multishot.
                self.maybe_start_loan(slot);
                self.mark_dirty(slot);
            }
        }
    }

    /// Feeds stashed input again (proto keeps bytes it could not consume while a receive
    /// throttle was full); stays dirty until the stash drains.
    fn retry_input(&mut self, slot: usize) {
        let Some(p) = self.conns.get_mut(slot).and_then(|c| c.proto.as_mut()) else {
            return;
        };
        let r = p.handle_input(&[]);
        while let Some(ev) = p.poll_event() {
            self.events.push(ev);
        }
        let still = p.pending_input() > 0;
        self.dispatch_events(slot);
        if let Err(e) = r {
            self.fail(slot, e.to_string());
            return;
        }
        if still {
            // Retried next iteration (the loop does not sleep while anything is stalled).
            self.stalled.push(slot);
        }
    }

    /// In a long batch of received messages, sends what the first [`EARLY_FLUSH_AFTER`]
    /// callbacks queued on this connection before dispatching the rest: the peer starts on
    /// those replies while we work through the batch, instead of the whole window bouncing
    /// between the two sides as one block.
    fn early_flush(&mut self, slot: usize) {
        let ready = self
            .conns
            .get(slot)
            .is_some_and(|c| c.dirty && c.state == St::Open && c.tx_batch.is_none());
        if ready {
            self.flush_one(slot);
            self.enter(0);
        }
    }

    fn dispatch_events(&mut self, slot: usize) {
        if self.events.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        let Some(c) = self.conns.get(slot) else {
            events.clear();
            self.events = events;
            return;
        };
        let h = c.handle.clone();
        let server = c.server;
        let total = events.len();
        let mut delivered = 0usize;
        for ev in events.drain(..) {
            match ev {
                Event::Message(m) => {
                    self.deliver(slot, &h, m);
                    delivered += 1;
                    if delivered == EARLY_FLUSH_AFTER && total >= 2 * EARLY_FLUSH_AFTER {
                        self.early_flush(slot);
                    }
                }
                Event::Ready(info) => {
                    match info.con_mode {
                        CON_MODE_SECURE => ctr!(self.conns_secure, 1),
                        _ => ctr!(self.conns_crc, 1),
                    }
                    match info.revision {
                        Revision::Rev0 => ctr!(self.conns_rev0, 1),
                        Revision::Rev1 => ctr!(self.conns_rev1, 1),
                    }
                    if info.reconnected {
                        ctr!(self.resumed, 1);
                    }
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.peer_type = info.entity_type;
                    }
                    let _ = h.0.info.set(info.clone());
                    self.register(slot, &info.addrs.0);
                    if server {
                        self.dispatcher.on_accept(&h, &info);
                    } else {
                        self.dispatcher.on_connect(&h, &info);
                    }
                }
                Event::Reset { remote, dropped } => {
                    // A local fault names its cause (the close that follows reports nothing
                    // more: this is the one callback the application gets).
                    let cause = self
                        .conns
                        .get(slot)
                        .and_then(|c| c.proto.as_ref())
                        .and_then(|p| p.error())
                        .filter(|_| !remote)
                        .map(|e| format!("local fault: {e}"));
                    let e = format!(
                        "session reset ({}, {dropped} queued messages dropped)",
                        cause.as_deref().unwrap_or(if remote {
                            "by the peer"
                        } else {
                            "local fault"
                        })
                    );
                    let notify = self.conns.get_mut(slot).is_some_and(|c| {
                        let n = c.notify_reset;
                        c.notify_reset = false;
                        n
                    });
                    if notify {
                        self.dispatcher.on_reset(&h, &e);
                    }
                }
                Event::Reconnect { delay } => {
                    let at = Instant::now() + delay;
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.reconnect_at = Some(at);
                        let gen = c.gen;
                        self.timers.push(Reverse((at, slot as u32, gen)));
                    }
                }
                Event::Lookup(l) => self.pending_lookup = Some(l),
                Event::Keepalive(stamp) => self.dispatcher.on_keepalive(&h, stamp),
                Event::KeepaliveAck(stamp) => self.dispatcher.on_keepalive_ack(&h, stamp),
            }
        }
        self.events = events;
        if let Some(l) = self.pending_lookup.take() {
            self.on_lookup(slot, l, 0);
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    fn run_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((when, slot, gen))) = self.timers.peek().copied() {
            if when > now {
                break;
            }
            self.timers.pop();
            match slot {
                SLOT_DRAIN => {
                    for s in self.conns.slots() {
                        self.close(s, None);
                    }
                }
                _ => {
                    let s = slot as usize;
                    let Some(c) = self.conns.get_mut(s) else {
                        continue;
                    };
                    if c.gen != gen || c.state == St::Closing {
                        continue;
                    }
                    if c.state == St::Faulted && c.reconnect_at.is_some_and(|t| t <= now) {
                        c.reconnect_at = None;
                        self.do_reconnect(s);
                        continue;
                    }
                    if c.delayed.front().is_some_and(|(t, _)| *t <= now) {
                        self.release_delayed(s, now, false);
                    }
                    let Some(c) = self.conns.get_mut(s) else {
                        continue;
                    };
                    if c.deadline != Some(when) || !matches!(c.state, St::Open | St::Connecting) {
                        continue;
                    }
                    c.deadline = None;
                    let r = c.proto.as_mut().map(|p| p.handle_timeout(now));
                    if let Some(Err(e)) = r {
                        self.fail(s, e.to_string());
                    } else {
                        self.update_deadline(s);
                    }
                }
            }
        }
    }

    // ---- sending --------------------------------------------------------------------------

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut i = 0;
        while i < dirty.len() {
            let slot = dirty[i];
            i += 1;
            self.flush_one(slot);
            if !self.dirty.is_empty() {
                dirty.append(&mut self.dirty);
            }
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn flush_one(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.dirty = false;
        if c.state != St::Open {
            return;
        }
        if c.proto.as_ref().is_some_and(|p| p.pending_input() > 0) {
            self.retry_input(slot);
        }
        if !self.conns.get(slot).is_some_and(|c| c.recv_armed) {
            // Nothing reads the socket: a targeted receive if a large segment is arriving,
            // else the multishot receive.
            self.maybe_start_loan(slot);
            self.arm_recv(slot);
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.tx_batch.is_some() {
            return;
        }
        let mut chunks = Vec::new();
        if let Some(p) = c.proto.as_mut() {
            if p.wants_transmit() {
                // Gather pieces: frame parts coalesced, large crc-mode message data moved in
                // uncopied (lossy sessions; see `Connection::set_vectored_transmit`).
                let mut pieces = Vec::new();
                p.poll_transmit_vectored(&mut pieces);
                chunks.extend(pieces.into_iter().map(Chunk::Data));
            }
        } else if !c.raw_tx.is_empty() {
            let msgs = std::mem::take(&mut c.raw_tx);
            match raw_chunks(&self.arena, msgs) {
                Ok(ch) => chunks = ch,
                Err(e) => {
                    self.close(slot, Some(e));
                    return;
                }
            }
        }
        let state = self
            .conns
            .get(slot)
            .and_then(|c| c.proto.as_ref())
            .map(|p| p.state());
        let hit = match state {
            Some(st) if !chunks.is_empty() => self.hit_break_point(st),
            _ => None,
        };
        if let Some(at) = hit {
            let Some(c) = self.conns.get_mut(slot) else {
                return;
            };
            ctr!(self.injected_failures, 1);
            debug!(conn = c.id, state = ?state, ?at, "break point");
            match at {
                BreakAt::BeforeSend => {
                    let _ = SockRef::from(&c.sock).shutdown(std::net::Shutdown::Both);
                    return;
                }
                BreakAt::AfterSend => c.break_after_send = true,
                BreakAt::MidSend => {
                    let mut flat: Vec<u8> =
                        chunks.iter().flat_map(|c| c.bytes()).copied().collect();
                    flat.truncate(flat.len().div_ceil(2));
                    chunks = vec![Chunk::Vec(flat)];
                    c.break_after_send = true;
                }
            }
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let total: usize = chunks.iter().map(|c| c.bytes().len()).sum();
        if total == 0 {
            // Draining: a lossless session closes once the peer acknowledged everything it
            // was sent (closing earlier could reset the socket with data in flight; the
            // drain deadline bounds the wait).
            let acked = c
                .proto
                .as_ref()
                .is_none_or(|p| !p.is_ready() || p.session().unacked() == 0);
            if c.draining && acked {
                self.close(slot, None);
            }
            return;
        }
        c.tx_batch = Some(Rc::new(TxBatch { chunks, total }));
        c.tx_sent = 0;
        self.submit_send(slot);
        // Transmitting moves proto's keepalive deadline.
        self.update_deadline(slot);
    }

    /// Submits the rest of the connection's current batch as one send or sendmsg.
    fn submit_send(&mut self, slot: usize) {
        let registered = self.arena.registered;
        let zc_min = self.rc.send_zc_threshold;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(batch) = c.tx_batch.clone() else {
            return;
        };
        let gen = c.gen;
        let mut skip = c.tx_sent;
        let mut iov = Vec::new();
        let mut single_arena = None;
        for ch in &batch.chunks {
            let b = ch.bytes();
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let rest = &b[skip..];
            skip = 0;
            if iov.is_empty() {
                if let Chunk::Arena(a) = ch {
                    single_arena = Some(a.buf_index());
                }
            }
            iov.push(libc::iovec {
                iov_base: rest.as_ptr() as *mut libc::c_void,
                iov_len: rest.len(),
            });
            if iov.len() == IOV_MAX {
                break;
            }
        }
        if iov.is_empty() {
            return;
        }
        let len: usize = iov.iter().map(|v| v.iov_len).sum();
        let zc = zc_min.is_some_and(|t| len >= t);
        const FLAGS: i32 = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;
        // SAFETY: an all-zero msghdr is a valid empty header.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut op = Box::new(SendOp {
            _batch: Rc::clone(&batch),
            hdr: {
                hdr.msg_iovlen = 0;
                hdr
            },
            iov,
        });
        op.hdr.msg_iov = op.iov.as_mut_ptr();
        op.hdr.msg_iovlen = op.iov.len();
        let single = op.iov.len() == 1;
        let (p, l) = (op.iov[0].iov_base as *const u8, op.iov[0].iov_len as u32);
        let hdr_ptr: *const libc::msghdr = &op.hdr;
        let e = match (single, zc) {
            (true, false) => with_fd!(c, |fd| opcode::Send::new(fd, p, l).flags(FLAGS).build()),
            (true, true) => {
                let idx = single_arena.filter(|_| registered);
                with_fd!(c, |fd| opcode::SendZc::new(fd, p, l)
                    .buf_index(idx)
                    .flags(FLAGS)
                    .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                    .build())
            }
            (false, false) => with_fd!(c, |fd| opcode::SendMsg::new(fd, hdr_ptr)
                .flags(FLAGS as u32)
                .build()),
            (false, true) => with_fd!(c, |fd| opcode::SendMsgZc::new(fd, hdr_ptr)
                .flags(FLAGS as u32)
                .ioprio(IORING_SEND_ZC_REPORT_USAGE)
                .build()),
        };
        ctr!(self.send_ops, 1);
        if zc {
            ctr!(self.zc_sends, 1);
        }
        let ud = self.new_op(OpKind::Send(op), slot as u32, gen);
        self.push_sqe(e.user_data(ud));
    }
}

/// The message a raw header and payload stand for (the raw flags carry the message type).
fn raw_message(h: RawHeader, payload: Data) -> Message {
    let mut msg = Message::default();
    msg.header.tid = h.tid;
    msg.header.msg_type = h.flags as u16;
    msg.data = payload;
    msg
}

/// Frames raw messages: small ones (header and payload) are copied into 64 KiB staging
/// buffers from the arena (so a burst of 4 KiB messages is one contiguous send), large
/// payloads are sent from the caller's memory behind their header.
fn raw_chunks(arena: &Arena, msgs: Vec<Message>) -> Result<Vec<Chunk>, String> {
    let mut chunks = Vec::new();
    let mut stage: Option<Chunk> = None;
    fn put(arena: &Arena, chunks: &mut Vec<Chunk>, stage: &mut Option<Chunk>, mut d: &[u8]) {
        while !d.is_empty() {
            let room = match stage {
                Some(Chunk::Arena(a)) => a.remaining(),
                Some(Chunk::Vec(v)) => STAGE_SIZE.saturating_sub(v.len()),
                Some(Chunk::Data(_)) | None => 0,
            };
            if room == 0 {
                if let Some(s) = stage.take() {
                    chunks.push(s);
                }
                *stage = Some(match arena.alloc(STAGE_SIZE) {
                    Some(a) => Chunk::Arena(a),
                    None => Chunk::Vec(Vec::with_capacity(STAGE_SIZE)),
                });
                continue;
            }
            let n = room.min(d.len());
            match stage {
                Some(Chunk::Arena(a)) => {
                    a.extend(&d[..n]);
                }
                Some(Chunk::Vec(v)) => v.extend_from_slice(&d[..n]),
                Some(Chunk::Data(_)) | None => {}
            }
            d = &d[n..];
        }
    }
    for m in msgs {
        let len = u32::try_from(m.data.len())
            .map_err(|_| format!("raw message of {} bytes is too large", m.data.len()))?;
        let h = RawHeader {
            len,
            flags: u32::from(m.header.msg_type),
            tid: m.header.tid,
        }
        .encode();
        put(arena, &mut chunks, &mut stage, &h);
        if m.data.len() <= RAW_COPY_MAX {
            put(arena, &mut chunks, &mut stage, &m.data);
        } else {
            if let Some(s) = stage.take() {
                chunks.push(s);
            }
            chunks.push(Chunk::Data(m.data));
        }
    }
    if let Some(s) = stage.take() {
        chunks.push(s);
    }
    Ok(chunks)
}

struct Null;
impl Dispatcher for Null {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
}
