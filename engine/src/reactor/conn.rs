//! One connection's life after it opened: fault injection, delivery (and delayed delivery),
//! deadlines, closing and freeing its slot.

use super::*;

impl Reactor {
    pub(super) fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A break point for a connection transmitting in `state`, if one is armed (consumed).
    pub(super) fn hit_break_point(&mut self, state: &str) -> Option<BreakAt> {
        let b = self
            .breaks
            .iter_mut()
            .find(|b| b.times > 0 && b.state == state)?;
        b.times -= 1;
        Some(b.at)
    }

    /// `ms_inject_socket_failures`: after one in N socket operations, shut the socket down
    /// as Ceph does (both ends see a real failure and go through their fault handling).
    pub(super) fn maybe_inject_failure(&mut self, slot: usize) {
        let n = self.rc.inject_socket_failures;
        if n == 0 || self.rand() % n != 0 {
            return;
        }
        if let Some(c) = self.conns.get(slot).filter(|c| c.state.is_open()) {
            debug!(conn = c.id, "injecting a socket failure");
            let _ = SockRef::from(&c.sock).shutdown(std::net::Shutdown::Both);
            ctr!(self.injected_failures, 1);
        }
    }

    /// Delivers a received message, or holds it back (`ms_inject_delay_*`): once one message
    /// of a connection is held, the following ones queue behind it so order is kept.
    pub(super) fn deliver(&mut self, slot: usize, h: &ConnHandle, m: Message) {
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

    pub(super) fn schedule_delayed(&mut self, slot: usize) {
        if let Some(c) = self.conns.get(slot) {
            if let Some((due, _)) = c.delayed.front() {
                self.timers.push(Reverse((*due, slot as u32, c.gen)));
            }
        }
    }

    /// Delivers held messages that are due (all of them when `all`).
    pub(super) fn release_delayed(&mut self, slot: usize, now: Instant, all: bool) {
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

    pub(super) fn adopt(&mut self, fd: OwnedFd, peer: SocketAddr) {
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
    pub(super) fn on_open(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.state.open();
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

    pub(super) fn mark_dirty(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    pub(super) fn update_deadline(&mut self, slot: usize) {
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

    pub(super) fn close(&mut self, slot: usize, err: Option<ConnError>) {
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
        let id = c.id;
        if was_active {
            drop_by(&self.c().active_connections, 1);
        }
        if !detached {
            self.unregister(id);
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

    pub(super) fn maybe_finalize(&mut self, slot: usize) {
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.ops != 0 {
            return;
        }
        match c.state {
            St::Closing => {}
            St::Moving { .. } => return self.finish_move(slot),
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
}
