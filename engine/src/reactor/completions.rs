//! Completions: accept, connect, send, multishot receive and targeted large-segment
//! receives (loans), and input retried after a stall.

use super::*;

impl Reactor {
    pub(super) fn on_cqe(&mut self, ud: usize, res: i32, flags: u32) {
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

    pub(super) fn on_accept(&mut self, res: i32) {
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

    pub(super) fn on_connect_done(&mut self, slot: usize, gen: u32, res: i32) {
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
            let e = ConnError::Io {
                op: SocketOp::Connect(c.peer_sock),
                errno: -res,
            };
            self.fail(slot, e);
            return;
        }
        self.on_open(slot);
    }

    pub(super) fn on_send_done(&mut self, slot: usize, gen: u32, res: i32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        if matches!(c.state, St::Closing | St::Faulted { .. }) {
            c.tx_batch = None;
            c.tx_sent = 0;
            return;
        }
        if res < 0 {
            let e = ConnError::Io {
                op: SocketOp::Send,
                errno: -res,
            };
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

    pub(super) fn on_recv(&mut self, slot: usize, gen: u32, res: i32, flags: u32, more: bool) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        if !more {
            c.rx.recv_ended();
        }
        let bid = cqueue::buffer_select(flags);
        if res > 0 {
            ctr!(self.recv_bytes, res);
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if matches!(c.state, St::Closing | St::Faulted { .. }) {
            if let (Some(bid), Some(b)) = (bid, self.bufring.as_mut()) {
                b.recycle(bid);
                self.recycled = true;
            }
            return;
        }
        let moving = c.state.is_moving();
        if res > 0 {
            let (Some(bid), Some(br)) = (bid, self.bufring.as_mut()) else {
                self.close(slot, Some(ConnError::RecvWithoutBuffer));
                return;
            };
            let data = br.data(bid, res as usize);
            let mut err = None;
            let mut raw_msgs = Vec::new();
            if let Some(p) = c.proto.as_mut() {
                if let Err(e) = p.handle_input(data) {
                    err = Some(ConnError::from(e));
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
                            err = Some(ConnError::RawFraming(e));
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
                // (`Rx::full_buffer` ignores it while stopping for, or running, a loan.)
                if res as usize == RX_BUF {
                    c.rx.full_buffer();
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
                Some(p) => p.handle_eof().into(),
                None => ConnError::PeerClosed,
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
            ConnError::Io {
                op: SocketOp::Recv,
                errno: -res,
            },
        );
    }

    /// Receive-side zero copy: when a connection is inside a large data segment, the rest of
    /// the segment is received by one targeted `recv(MSG_WAITALL)` straight into the
    /// segment's page-aligned buffer (lent by the protocol, held by the operation) instead of
    /// passing through the provided buffers and being copied. The multishot receive is
    /// stopped first (one socket, one reader) and re-armed when the segment is in.
    pub(super) fn maybe_start_loan(&mut self, slot: usize) {
        let Some(min) = self.rc.zero_copy_recv_min else {
            return;
        };
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !c.state.is_open() || c.rx.is_loan() || c.draining {
            c.rx.abandon_loan();
            return;
        }
        let left = match (c.proto.as_ref(), c.raw_rx.as_ref()) {
            (Some(p), _) => p.rx_segment_left(),
            (None, Some(r)) => r.payload_left(),
            (None, None) => return,
        };
        if c.rx.is_armed() {
            // Stop the multishot receive only for a segment worth it (once).
            if left > 0 && left >= min {
                if let Some(ud) = c.rx.stop_for_loan() {
                    let gen = c.gen;
                    let cu = self.new_op(OpKind::Cancel, slot as u32, gen);
                    self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(cu));
                }
            }
            return;
        }
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
        c.rx.lent();
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
    pub(super) fn on_loan_done(&mut self, slot: usize, gen: u32, res: i32, buf: Data) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        c.rx.loan_done();
        let open = c.state.is_open();
        let n = usize::try_from(res).unwrap_or(0);
        let r = match (c.proto.as_mut(), c.raw_rx.as_mut()) {
            (Some(p), _) => {
                let r = p.return_rx_segment(buf, n).map_err(ConnError::from);
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
                Err(e) => Err(ConnError::RawFraming(e)),
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
                    Some(p) => p.handle_eof().into(),
                    None => ConnError::PeerClosed,
                };
                self.fail(slot, e);
            }
            r if r < 0 && r != -libc::ECANCELED => self.fail(
                slot,
                ConnError::Io {
                    op: SocketOp::Recv,
                    errno: -r,
                },
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
    pub(super) fn retry_input(&mut self, slot: usize) {
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
            self.fail(slot, e.into());
            return;
        }
        if still {
            // Retried next iteration (the loop does not sleep while anything is stalled).
            self.stalled.push(slot);
        }
    }
}
