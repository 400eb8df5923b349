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
//!
//! The reactor's methods live beside this file by job: `event_loop` (ring set-up, the loop,
//! submission, the op table, commands, shutdown), `lifecycle` (accepted and dialled sockets
//! becoming slots), `sessions` (registry, faults that keep a session, reconnects, lookups,
//! moves between cores), `conn` (delivery, injected faults and delays, deadlines, closing),
//! `completions` (what each kind of completion does), `events` (protocol events to the
//! dispatcher, timers), `send` (send batches) and `slab` (the slot table). A connection's
//! state enums and their transitions are in `conn_state` (its lifecycle) and `rx_state`
//! (its receive side). This file holds the types they share.

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
use msgr2_codec::payload::CON_MODE_SECURE;
use msgr2_codec::raw::{RawDecoder, RawHeader};
use msgr2_codec::Data;
use msgr2_proto::{
    Config, Connection, Event, ExistingFate, Lookup, Message, PeerInfo, SessionTable,
};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tracing::{debug, warn};

use crate::arena::{Arena, ArenaBuf, ClassSpec};
use crate::bufring::BufRing;
use crate::dispatch::{Dispatcher, Factory, CON_MODE_RAW};
use crate::error::{ConnError, EngineError, ResetCause, SocketOp};
use crate::options::*;
use crate::shared::{bump, drop_by, Cmd, ConnHandle, CoreCounters, Shared, CURRENT, OUTBOX};

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

struct Conn {
    id: u64,
    gen: u32,
    handle: ConnHandle,
    sock: OwnedFd,
    fixed: Option<u32>,
    proto: Option<Connection>,
    raw_rx: Option<RawDecoder>,
    raw_tx: Vec<Message>,
    /// Its lifecycle (see `conn_state`).
    state: St,
    ops: u32,
    /// What reads the socket (see `rx_state`).
    rx: Rx,
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
    /// Closing without closing the handle: the session continues in another slot.
    detached: bool,
    /// Counted in `active_connections`.
    active: bool,
    /// Messages held back by `ms_inject_delay_*`, in arrival order, with their due times.
    delayed: VecDeque<(Instant, Message)>,
    /// A break point fires once the current batch is sent: shut the socket down then.
    break_after_send: bool,
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

mod completions;
mod conn;
mod conn_state;
mod event_loop;
mod events;
mod lifecycle;
mod rx_state;
mod send;
mod sessions;
mod slab;

use self::conn_state::St;
use self::rx_state::{RecvMode, Rx};
use self::send::raw_message;
use self::slab::Slab;

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

struct Null;
impl Dispatcher for Null {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
}
