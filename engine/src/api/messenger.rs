//! A running [`Messenger`]: addresses, connecting, counters, shutdown.

use super::*;

/// A running messenger: one pinned reactor per core.
pub struct Messenger {
    pub(super) shared: Arc<Shared>,
    pub(super) threads: Vec<JoinHandle<()>>,
    pub(super) addrs: EntityAddrVec,
    pub(super) proto: Arc<Config>,
    pub(super) name: EntityName,
    /// The admin socket opened by [`MessengerBuilder::admin_socket`].
    pub(super) admin: Option<crate::admin::AdminSocket>,
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
            .ok_or_else(|| EngineError::NoMsgr2Address(addrs.clone()))?;
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

    pub(crate) fn probe(&self) -> crate::admin::Probe {
        crate::admin::Probe {
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

    pub(super) fn stop(&self) {
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
