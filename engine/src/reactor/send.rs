//! Output: building each dirty connection's send batch (msgr2 frames or raw chunks) and
//! submitting it as one send, sendmsg or zero-copy send.

use super::*;

impl Reactor {
    pub(super) fn flush_dirty(&mut self) {
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

    pub(super) fn flush_one(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.dirty = false;
        if !c.state.is_open() {
            return;
        }
        if c.proto.as_ref().is_some_and(|p| p.pending_input() > 0) {
            self.retry_input(slot);
        }
        if !self.conns.get(slot).is_some_and(|c| c.rx.is_armed()) {
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
    pub(super) fn submit_send(&mut self, slot: usize) {
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
pub(super) fn raw_message(h: RawHeader, payload: Data) -> Message {
    let mut msg = Message::default();
    msg.header.tid = h.tid;
    msg.header.msg_type = h.flags as u16;
    msg.data = payload;
    msg
}

/// Frames raw messages: small ones (header and payload) are copied into 64 KiB staging
/// buffers from the arena (so a burst of 4 KiB messages is one contiguous send), large
/// payloads are sent from the caller's memory behind their header.
pub(super) fn raw_chunks(arena: &Arena, msgs: Vec<Message>) -> Result<Vec<Chunk>, ConnError> {
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
        let len = u32::try_from(m.data.len()).map_err(|_| ConnError::RawTooLarge(m.data.len()))?;
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
