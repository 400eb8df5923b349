//! Sessions: the registry, faults that keep a lossless session, reconnects, lookups of
//! existing sessions and moves of connections between cores.

use super::*;

impl Reactor {
    /// The messenger's session table (see `Shared::sessions`).
    fn sessions(&self) -> std::sync::MutexGuard<'_, SessionTable<(usize, u64)>> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records that this connection holds the session with `addrs`, if its session is one
    /// the table keeps (`msgr2_proto::session_table::registrable`: lossless ones, and lossy
    /// ones accepted under a policy that registers lossy clients; our own lossy dials are
    /// never registered, so several may go to one peer, e.g. for benchmarks).
    pub(super) fn register(&mut self, slot: usize, addrs: &[EntityAddr]) {
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.proto
            .as_ref()
            .is_some_and(msgr2_proto::session_table::registrable)
        {
            let id = (self.idx, c.id);
            self.sessions().register(id, addrs);
        }
    }

    /// The connection `id` of this core holds no session any more.
    pub(super) fn unregister(&self, id: u64) {
        self.sessions().unregister((self.idx, id));
    }

    /// A connection's socket or protocol failed with `e`. A lossless session survives (its
    /// socket is torn down; it reconnects or waits in STANDBY); anything else closes.
    pub(super) fn fail(&mut self, slot: usize, e: ConnError) {
        let shutting_down = self.shutting_down;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if matches!(c.state, St::Closing | St::Faulted { .. }) {
            return;
        }
        let moving = c.state.is_moving();
        if let Some(p) = c.proto.as_mut() {
            if !p.is_faulted() {
                let _ = p.handle_socket_error(e.to_string());
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
    pub(super) fn teardown_socket(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !c.state.fault() {
            return;
        }
        c.rx.recv_ended();
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
    pub(super) fn do_reconnect(&mut self, slot: usize) {
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
                self.close(slot, Some(e.into()));
                return;
            }
        };
        let Some(target) = new.target() else {
            self.close(slot, Some(ConnError::NoReconnectTarget));
            return;
        };
        let handle = c.handle.clone();
        let id = c.id;
        let peer_type = c.peer_type;
        let delayed = std::mem::take(&mut c.delayed);
        c.detached = true;
        ctr!(self.reconnects, 1);
        self.close(slot, None);
        // The new socket carries the same handle, so the same id: the table needs no change.
        match self.dial(handle, target, Some(new), peer_type) {
            Some(ns) => {
                if let Some(n) = self.conns.get_mut(ns) {
                    n.delayed = delayed;
                }
                self.schedule_delayed(ns);
            }
            None => self.unregister(id),
        }
    }

    /// Answers an accepted connection's `Event::Lookup` (see "Session lookup" above).
    pub(super) fn on_lookup(&mut self, slot: usize, l: Lookup, hops: u8) {
        const MAX_HOPS: u8 = 2;
        let Some(my_id) = self.conns.get(slot).map(|c| c.id) else {
            return;
        };
        let found = self.sessions().lookup(&l, (self.idx, my_id));
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

    pub(super) fn resolve_here(&mut self, slot: usize, ex: Option<usize>) {
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
                self.close(slot, Some(e.into()));
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
            self.close(slot, Some(ConnError::ClosedAfterLookup));
            return;
        }
        self.update_deadline(slot);
        self.mark_dirty(slot);
    }

    /// Dispatches whatever events the connection's protocol queued.
    pub(super) fn drain_proto_events(&mut self, slot: usize) {
        if let Some(p) = self.conns.get_mut(slot).and_then(|c| c.proto.as_mut()) {
            while let Some(ev) = p.poll_event() {
                self.events.push(ev);
            }
        }
        self.dispatch_events(slot);
    }

    /// The new connection in `n` took over the session of `e`: the application's handle for
    /// that session (its id in the session table, its delayed messages) now names `n`.
    pub(super) fn take_over(&mut self, n: usize, e: usize) {
        let Some(ec) = self.conns.get_mut(e) else {
            return;
        };
        let h = ec.handle.clone();
        let delayed = std::mem::take(&mut ec.delayed);
        let peer_type = ec.peer_type;
        ec.detached = true;
        ec.notify_reset = false;
        self.close(e, None);
        let Some(nc) = self.conns.get_mut(n) else {
            self.unregister(h.0.id);
            return;
        };
        let temp = std::mem::replace(&mut nc.handle, h.clone());
        temp.0.closed.store(true, Ordering::Relaxed);
        nc.id = h.0.id;
        nc.delayed = delayed;
        nc.peer_type = peer_type;
        if self.by_id.get(&temp.0.id) == Some(&n) {
            self.by_id.remove(&temp.0.id);
        }
        self.by_id.insert(h.0.id, n);
        // Anything the new connection registered under its own id is now the session's.
        let core = self.idx;
        self.sessions().transfer((core, temp.0.id), (core, h.0.id));
        self.schedule_delayed(n);
    }

    /// Starts moving an accepted connection to `core` (see "Session lookup").
    pub(super) fn start_move(&mut self, slot: usize, core: usize, l: Lookup, hops: u8) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.state = St::Moving {
            target: core,
            lookup: l,
            hops: hops + 1,
        };
        let gen = c.gen;
        if let Some(ud) = c.rx.armed_ud() {
            let cu = self.new_op(OpKind::Cancel, slot as u32, gen);
            self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(cu));
        }
        self.maybe_finalize(slot);
    }

    /// The moving connection has no operation left: hand it to its new core.
    pub(super) fn finish_move(&mut self, slot: usize) {
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
        let (
            St::Moving {
                target,
                lookup,
                hops,
            },
            Some(proto),
        ) = (c.state, c.proto)
        else {
            return;
        };
        ctr!(self.moved, 1);
        self.send_remote(
            target,
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
    pub(super) fn move_in(
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

    pub(super) fn new_handle(&self, peer_sock: Option<SocketAddr>) -> ConnHandle {
        let id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        ConnHandle(Arc::new(crate::shared::ConnShared {
            id,
            core: self.idx,
            shared: Arc::clone(&self.shared),
            info: std::sync::OnceLock::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            peer_sock,
        }))
    }

    // ---- fault injection (`ms_inject_*`) -----------------------------------------------------
}
