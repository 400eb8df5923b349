//! Input: bytes through the framing, frames through the state machine, and the READY
//! data path (messages, acks, keepalives, session frames).

use super::*;

impl Connection {
    /// Consumes received bytes. On error the socket is dead: close it (a lossless
    /// connection keeps its session, see [`Event::Reconnect`]). Bytes that cannot be
    /// consumed yet (see [`Connection::wants_input`]) are kept and processed on a later call.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        self.check_alive()?;
        if !data.is_empty() {
            self.rx_since_tick = true;
        }
        if self.stash.is_empty() {
            let used = self.consume(data)?;
            if used < data.len() {
                self.stash.extend_from_slice(&data[used..]);
            }
        } else {
            let mut stash = std::mem::take(&mut self.stash);
            stash.extend_from_slice(data);
            let used = self.consume(&stash)?;
            stash.drain(..used);
            self.stash = stash;
        }
        if self.stash.len() > MAX_STASH {
            let e = ProtoError::InputOverrun(self.stash.len());
            self.stash = Vec::new();
            return Err(self.fault(e));
        }
        Ok(())
    }

    pub(super) fn consume(&mut self, mut data: &[u8]) -> Result<usize, ProtoError> {
        let total = data.len();
        while !data.is_empty() && !self.input_blocked() && self.error.is_none() {
            let used = match self.step_input(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fault(e)),
            };
            if used == 0 {
                break;
            }
            data = &data[used..];
        }
        Ok(total - data.len())
    }

    pub(super) fn throttles(&self) -> impl Iterator<Item = &Arc<Throttle>> {
        std::iter::once(&self.config.dispatch_throttle)
            .chain(self.policy.throttler_bytes.iter())
            .chain(self.policy.throttler_messages.iter())
    }

    pub(super) fn input_blocked(&self) -> bool {
        match &self.phase {
            Phase::AwaitLookup(_) => true,
            Phase::Ready => {
                self.rx.as_ref().is_some_and(|r| r.at_boundary())
                    && self.throttles().any(|t| t.is_full())
            }
            _ => false,
        }
    }

    pub(super) fn step_input(&mut self, data: &[u8]) -> Result<usize, ProtoError> {
        if let Phase::Banner { buf } = &mut self.phase {
            let need = if buf.len() < BANNER_PREFIX_LEN {
                BANNER_PREFIX_LEN - buf.len()
            } else {
                let mut prefix = [0u8; BANNER_PREFIX_LEN];
                prefix.copy_from_slice(&buf[..BANNER_PREFIX_LEN]);
                BANNER_PREFIX_LEN + Banner::decode_prefix(&prefix)? - buf.len()
            };
            let n = need.min(data.len());
            buf.extend_from_slice(&data[..n]);
            if let Some(t) = &mut self.transcript {
                t.rx.extend_from_slice(&data[..n]);
            }
            if buf.len() == BANNER_PREFIX_LEN {
                let mut prefix = [0u8; BANNER_PREFIX_LEN];
                prefix.copy_from_slice(buf);
                Banner::decode_prefix(&prefix)?;
            } else if buf.len() > BANNER_PREFIX_LEN && n == need {
                let peer = Banner::decode_payload(&buf[BANNER_PREFIX_LEN..])?;
                self.on_banner(peer)?;
            }
            return Ok(n);
        }
        let Some(rx) = self.rx.as_mut() else {
            return Err(ProtoError::PeerClosed("CLOSED"));
        };
        let (used, frame) = rx.feed(data)?;
        if let Some(t) = &mut self.transcript {
            t.rx.extend_from_slice(&data[..used]);
        }
        if let Some(f) = frame {
            self.on_frame(f)?;
        }
        Ok(used)
    }

    pub(super) fn on_banner(&mut self, peer: Banner) -> Result<(), ProtoError> {
        let ours = self.config.effective_banner();
        self.revision = Banner::negotiate(&ours, &peer)?;
        self.negotiate_compression = Banner::both_compress(&ours, &peer);
        trace!(revision = ?self.revision, "banner exchanged");
        self.tx = TxFraming::Crc(self.revision);
        self.rx = Some(RxFraming::crc(self.revision, self.config.limits));
        let none = EntityAddr {
            ty: AddrType::Msgr2,
            nonce: 0,
            sock: None,
        };
        let peer_addr = match self.role {
            Role::Client => self.target.unwrap_or(none),
            Role::Server => self
                .peer_socket
                .map_or(none, |s| EntityAddr::new(AddrType::Msgr2, s, 0)),
        };
        self.phase = Phase::ExpectHello;
        self.send_control(&p::Hello {
            entity_type: self.config.name.ty,
            peer_addr,
        })
    }

    /// Frames a control payload. On a ready connection, messages the application queued
    /// earlier go first, so the wire order follows the order things happened.
    pub(super) fn send_control<P: ControlPayload>(
        &mut self,
        payload: &P,
    ) -> Result<(), ProtoError> {
        if self.is_ready() {
            self.flush_session()?;
        }
        self.frame_control(payload)
    }

    pub(super) fn frame_control<P: ControlPayload>(
        &mut self,
        payload: &P,
    ) -> Result<(), ProtoError> {
        let bytes = payload.to_bytes();
        let start = self.out.len();
        self.frame_out(P::TAG, &[(&bytes, ALIGN_DEFAULT)])?;
        if let Some(t) = &mut self.transcript {
            t.tx.extend_from_slice(&self.out[start..]);
        }
        Ok(())
    }

    pub(super) fn on_frame(&mut self, f: Frame<Data>) -> Result<(), ProtoError> {
        let f = self.decompress_frame(f)?;
        let tag = f.tag();
        if tag == Tag::Message {
            return self.on_message(f);
        }
        let ctl = Control::decode(tag, f.segment(0))
            .map_err(|error| ProtoError::Payload { tag, error })?;
        trace!(state = self.state(), %tag, "frame");
        let phase = std::mem::replace(&mut self.phase, Phase::Busy);
        let state = phase.name();
        let unexpected = ProtoError::UnexpectedFrame { tag, state };
        match (phase, ctl) {
            (Phase::ExpectHello, Control::Hello(h)) => self.on_hello(h),
            (Phase::ExpectAuthReply { auth, tried }, c) => self.on_auth_reply(auth, tried, c),
            (Phase::ExpectAuthRequest { rejected }, Control::AuthRequest(r)) => {
                self.on_auth_request(r, rejected)
            }
            (Phase::ExpectAuthRequestMore { mut auth, con_mode }, Control::AuthRequestMore(r)) => {
                let step = auth.request_more(&r.auth_payload);
                self.on_server_step(step, auth, con_mode, 0)
            }
            (Phase::ExpectSignature, Control::AuthSignature(s)) => self.on_signature(s),
            (Phase::ExpectCompressionDone { requested }, Control::CompressionDone(d)) => {
                self.on_compression_done(requested, d)
            }
            (Phase::ExpectCompressionRequest, Control::CompressionRequest(r)) => {
                self.on_compression_request(r)
            }
            (Phase::ExpectServerIdent, Control::ServerIdent(s)) => self.on_server_ident(s),
            (Phase::ExpectServerIdent, Control::IdentMissingFeatures(m)) => {
                Err(ProtoError::MissingFeatures {
                    missing: m.features,
                })
            }
            (Phase::ExpectServerIdent | Phase::ExpectReconnectReply, Control::Wait(_)) => {
                Err(ProtoError::Wait)
            }
            (Phase::ExpectReconnectReply, c) => self.on_reconnect_reply(c, unexpected),
            (Phase::ExpectClientIdent, Control::ClientIdent(c)) => self.on_client_ident(c),
            (Phase::ExpectClientIdent, Control::SessionReconnect(r)) => self.on_reconnect(r),
            (Phase::Ready, c) => {
                self.phase = Phase::Ready;
                self.on_ready_control(c)
            }
            (p, _) => {
                self.phase = p;
                Err(unexpected)
            }
        }
    }

    pub(super) fn become_ready(&mut self, info: PeerInfo) -> Result<(), ProtoError> {
        debug!(peer = ?info.entity_type, mode = info.con_mode, revision = ?info.revision,
            reconnected = info.reconnected, in_seq = self.session.in_seq,
            out_seq = self.session.out_seq, "ready");
        self.peer = Some(info.clone());
        self.phase = Phase::Ready;
        self.session.attempt = 0;
        self.session.announced = true;
        self.deadline = None;
        self.last_rx = self.now;
        self.last_tx = self.now;
        self.events.push_back(Event::Ready(info));
        Ok(())
    }

    /// Frames what the session has to send: keepalive, queued messages, a standalone ACK.
    pub(super) fn flush_session(&mut self) -> Result<(), ProtoError> {
        if let Some(stamp) = self.keepalive.take() {
            self.frame_control(&p::Keepalive2 { timestamp: stamp })?;
        }
        while self.out_pieces_len + self.out.len() < TX_BATCH {
            let Some(mut m) = self.session.pop() else {
                break;
            };
            self.session.out_seq += 1;
            m.header.seq = self.session.out_seq;
            m.header.ack_seq = self.session.in_seq;
            self.session.ack_left = 0;
            let header = m.header.to_bytes();
            if let (true, true, None, TxFraming::Crc(rev)) = (
                self.vectored_tx,
                m.data.len() >= VECTORED_MIN,
                self.compression,
                &self.tx,
            ) {
                // Everything before the data segment, the data itself, then the epilogue.
                // The data's crc is often known already (it arrived in a verified segment,
                // or this is a replay) and is remembered for a replay.
                let data_crc = m.data.ensure_segment_crc();
                let segs: [(&[u8], u16); 4] = [
                    (&header, ALIGN_DEFAULT),
                    (&m.front, ALIGN_DEFAULT),
                    (&m.middle, ALIGN_DEFAULT),
                    (&m.data, ALIGN_PAGE),
                ];
                let known = [None, None, None, Some(data_crc)];
                let parts = FrameParts::with_crcs(*rev, Tag::Message, &segs, &known);
                let borrowed: [&[u8]; 4] = [&header, &m.front, &m.middle, &[]];
                for piece in parts.pieces(&borrowed) {
                    if piece.as_ptr() == parts.epilogue.as_ptr() {
                        break;
                    }
                    self.out.extend_from_slice(piece);
                }
                let data = if self.session.lossy {
                    std::mem::take(&mut m.data)
                } else {
                    m.data.clone()
                };
                self.out_pieces_len += self.out.len() + data.len();
                if !self.out.is_empty() {
                    self.out_pieces
                        .push(Data::from(std::mem::take(&mut self.out)));
                }
                self.out_pieces.push(data);
                self.out
                    .extend_from_slice(&parts.epilogue[..parts.epilogue_len]);
                if !self.session.lossy {
                    self.session.sent.push_back(m);
                }
                continue;
            }
            self.frame_out(
                Tag::Message,
                &[
                    (&header, ALIGN_DEFAULT),
                    (&m.front, ALIGN_DEFAULT),
                    (&m.middle, ALIGN_DEFAULT),
                    (&m.data, ALIGN_PAGE),
                ],
            )?;
            if !self.session.lossy {
                self.session.sent.push_back(m);
            }
        }
        if !self.session.lossy && self.session.ack_left > 0 && self.session.queued() == 0 {
            self.session.ack_left = 0;
            let seq = self.session.in_seq;
            self.frame_control(&p::Ack { seq })?;
        }
        Ok(())
    }

    /// An ack from the peer (frame or piggybacked): it may not cover messages never sent.
    pub(super) fn on_ack(&mut self, seq: u64) -> Result<(), ProtoError> {
        if seq > self.session.out_seq {
            return Err(ProtoError::AckBeyondSent {
                ack: seq,
                out_seq: self.session.out_seq,
            });
        }
        if !self.session.lossy {
            self.session.ack(seq);
        }
        Ok(())
    }

    pub(super) fn on_message(&mut self, f: Frame<Data>) -> Result<(), ProtoError> {
        if !self.is_ready() {
            return Err(ProtoError::UnexpectedFrame {
                tag: Tag::Message,
                state: self.state(),
            });
        }
        let header = MsgHeader2::decode(f.segment(0)).map_err(|error| ProtoError::Payload {
            tag: Tag::Message,
            error,
        })?;
        if header.seq <= self.session.in_seq {
            debug!(
                seq = header.seq,
                in_seq = self.session.in_seq,
                "dropping duplicate message"
            );
            return Ok(());
        }
        log_sequence_gap(header.seq, self.session.in_seq);
        self.on_ack(header.ack_seq)?;
        self.session.in_seq = header.seq;
        if !self.session.lossy {
            self.session.ack_left += 1;
        }
        let [_, front, middle, data] = f.segments;
        let size = (front.len() + middle.len() + data.len()) as u64;
        let mut held = vec![(self.config.dispatch_throttle.clone(), size)];
        if let Some(t) = &self.policy.throttler_bytes {
            held.push((t.clone(), size));
        }
        if let Some(t) = &self.policy.throttler_messages {
            held.push((t.clone(), 1));
        }
        self.events.push_back(Event::Message(Message {
            header,
            front: front.into_vec(),
            middle: middle.into_vec(),
            data,
            throttle: Some(Arc::new(ThrottleGuard::take(held))),
        }));
        Ok(())
    }

    pub(super) fn on_ready_control(&mut self, c: Control) -> Result<(), ProtoError> {
        match c {
            Control::Keepalive2(k) => {
                self.send_control(&p::Keepalive2Ack {
                    timestamp: k.timestamp,
                })?;
                self.events.push_back(Event::Keepalive(k.timestamp));
                Ok(())
            }
            Control::Keepalive2Ack(k) => {
                self.events.push_back(Event::KeepaliveAck(k.timestamp));
                Ok(())
            }
            Control::Ack(a) => self.on_ack(a.seq),
            other => Err(ProtoError::UnexpectedFrame {
                tag: other.tag(),
                state: "READY",
            }),
        }
    }
}

/// Logs a gap in the received sequence numbers: Ceph only logs it ("missed message?") and
/// accepts the message, and so do we.
fn log_sequence_gap(seq: u64, in_seq: u64) {
    if seq > in_seq + 1 {
        debug!(
            seq,
            in_seq, "missed message? (sequence gap tolerated as Ceph does)"
        );
    }
}
