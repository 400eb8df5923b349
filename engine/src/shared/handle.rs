//! State shared between the application and the reactors: per-core queues and wake-ups,
//! command routing, and connection handles.

use super::*;

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
    /// Which connection holds the session with a peer address, by `(core, conn id)`
    /// (Ceph's `lookup_conn`; the rules are `msgr2_proto::SessionTable`'s). Touched only when
    /// a connection is dialled, becomes ready or closes, and when an accepted one identifies
    /// itself: never on the data path.
    pub sessions: Mutex<SessionTable<(usize, u64)>>,
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
    /// connection that fails later reports it through [`crate::Dispatcher::on_reset`].
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
    /// [`crate::Dispatcher::on_keepalive_ack`] with the same stamp. Fails only if the connection or
    /// the messenger is already closed. Raw-mode connections have no keepalives: nothing is
    /// sent and no ack comes.
    pub fn keepalive(&self) -> Result<UTime, EngineError> {
        if self.0.closed.load(Ordering::Relaxed) {
            return Err(EngineError::ConnectionClosed(self.0.id));
        }
        if self.0.shared.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::Shutdown);
        }
        let stamp = crate::wall_stamp();
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

    /// The CPU (as given to [`MessengerBuilder::cores`](crate::MessengerBuilder::cores)) of the core that owns the connection.
    pub fn core(&self) -> usize {
        self.0.shared.cores[self.0.core].cpu
    }

    /// Unique id within the messenger.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// What the handshake negotiated (mode, revision, features, peer identity), once ready.
    /// `con_mode` is [`CON_MODE_RAW`](crate::CON_MODE_RAW) on raw-baseline connections.
    pub fn peer_info(&self) -> Option<&PeerInfo> {
        self.0.info.get()
    }

    /// The peer's socket address: the address dialled by [`Messenger::connect`](crate::Messenger::connect), or where an
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
