//! The reactor's ring and loop: set-up, submission, the op table, waking and sleeping,
//! commands from the application and the other cores, shutdown.

use super::*;

impl Reactor {
    pub(super) fn new(
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

    pub(super) fn c(&self) -> &CoreCounters {
        &self.shared.cores[self.idx].counters
    }

    // ---- submission helpers -------------------------------------------------------------

    pub(super) fn push_sqe(&mut self, e: squeue::Entry) {
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

    pub(super) fn new_op(&mut self, kind: OpKind, slot: u32, gen: u32) -> u64 {
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
    pub(super) fn end_op(&mut self, ud: usize) -> Option<Op> {
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

    pub(super) fn enter(&mut self, want: u32) {
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

    pub(super) fn arm_eventfd(&mut self) {
        let fd = self.shared.cores[self.idx].eventfd.as_raw_fd();
        let ud = self.new_op(OpKind::EventFd, NO_SLOT, 0);
        let e = opcode::Read::new(types::Fd(fd), self.efd_buf.as_mut_ptr(), 8)
            .build()
            .user_data(ud);
        self.push_sqe(e);
        self.efd_armed = true;
    }

    pub(super) fn arm_accept(&mut self, i: usize) {
        let fd = self.listeners[i].as_raw_fd();
        let ud = self.new_op(OpKind::Accept(i), NO_SLOT, 0);
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ud);
        self.push_sqe(e);
    }

    pub(super) fn arm_recv(&mut self, slot: usize) {
        let Some(bgid) = self.bufring.as_ref().map(|b| b.bgid) else {
            return;
        };
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !c.state.is_open() {
            return;
        }
        let Some(mode) = c.rx.next_to_arm() else {
            return;
        };
        let gen = c.gen;
        let e = if mode == RecvMode::SingleShot {
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
            c.rx.armed(ud);
        }
        self.push_sqe(e.user_data(ud));
    }

    pub(super) fn arm_timer(&mut self) {
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

    pub(super) fn run(&mut self) {
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

    pub(super) fn finish(&mut self) {
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
    pub(super) fn spin(&mut self) -> bool {
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

    pub(super) fn inbound_pending(&self) -> bool {
        let me = self.idx;
        if self.shared.cores[me].injected.load(Ordering::Acquire) {
            return true;
        }
        (0..self.shared.cores.len()).any(|s| s != me && !self.shared.queues[s][me].is_empty_hint())
    }

    pub(super) fn reap(&mut self) -> bool {
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

    pub(super) fn drain_inbound(&mut self) -> bool {
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
    pub(super) fn drain_outbox(&mut self) {
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

    pub(super) fn send_remote(&mut self, target: usize, cmd: Cmd) {
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
    pub(super) fn push_remote(&mut self) -> bool {
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

    pub(super) fn apply(&mut self, cmd: Cmd) {
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
                        self.close(slot, Some(e.into()));
                        return;
                    }
                    if c.state.is_faulted() {
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
                    Some(Err(e)) => self.close(slot, Some(e.into())),
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

    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // Stop accepting.
        let accepts: Vec<u64> = (self.ops.slots().into_iter())
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
            if matches!(c.state, St::Connecting | St::Faulted { .. }) {
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
}
