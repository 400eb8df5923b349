//! Faults, session discard, reconnects and the large-segment receive loans.

use super::*;

impl Connection {
    pub(super) fn check_alive(&self) -> Result<(), ProtoError> {
        match &self.error {
            Some(e) => Err(ProtoError::Closed(Box::new(e.clone()))),
            None => Ok(()),
        }
    }

    /// Handles a fault per [`fault_action`] and returns `e`.
    pub(super) fn fault(&mut self, e: ProtoError) -> ProtoError {
        if self.is_faulted() {
            if self.error.is_none() {
                self.error = Some(e.clone());
            }
            return e;
        }
        debug!(state = self.state(), error = %e, "connection fault");
        self.error = Some(e.clone());
        let phase = match (&self.phase, self.role) {
            (Phase::Ready, _) => FaultPhase::Ready,
            (_, Role::Client) if matches!(e, ProtoError::Wait) => FaultPhase::Wait,
            (_, Role::Client) => FaultPhase::Connecting,
            (_, Role::Server) => FaultPhase::Accepting,
        };
        self.session.requeue_sent();
        self.session.ack_left = 0;
        let input = FaultInput {
            lossy: self.session.lossy,
            phase,
            queue_empty: self.session.queued() == 0,
            keepalive_pending: self.keepalive.is_some(),
            policy_server: self.policy.server,
            policy_standby: self.policy.standby,
            has_server_cookie: self.session.server_cookie != 0,
            attempt: self.session.attempt,
        };
        // A server-role connection that never took a session over has nothing to keep.
        let action = if phase == FaultPhase::Accepting && !self.session.announced {
            FaultAction::Close { reset: false }
        } else if e.is_permanent() {
            // Redialling cannot help (see `ProtoError::is_permanent`): fail for good, so the
            // embedder hears the cause instead of watching a silent reconnect loop.
            FaultAction::Close { reset: true }
        } else {
            fault_action(&input, self.config.initial_backoff, self.config.max_backoff)
        };
        match action {
            FaultAction::Close { reset } => {
                self.discard_session(reset, false);
                self.phase = Phase::Closed;
            }
            FaultAction::Standby => self.phase = Phase::Standby,
            FaultAction::Reconnect {
                delay,
                bump_connect_seq,
                attempt,
            } => {
                if self.can_dial() {
                    self.start_reconnect(delay, bump_connect_seq, attempt);
                } else {
                    self.phase = Phase::Standby;
                }
            }
        }
        e
    }

    pub(super) fn start_reconnect(&mut self, delay: Duration, bump: bool, attempt: u32) {
        if bump {
            self.session.connect_seq = self.session.connect_seq.saturating_add(1);
        }
        self.session.attempt = attempt;
        self.phase = Phase::Backoff;
        self.events.push_back(Event::Reconnect { delay });
    }

    /// Drops the session's queues; reports a reset when asked and the application knew of
    /// the session (or had messages in it).
    pub(super) fn discard_session(&mut self, report: bool, remote: bool) {
        let announced = self.session.announced;
        let dropped = self.session.reset();
        if report && (announced || dropped > 0) {
            self.events.push_back(Event::Reset { remote, dropped });
        }
    }

    /// Whether a faulted connection could dial the peer itself.
    pub(super) fn can_dial(&self) -> bool {
        self.reconnect_target().is_some()
    }

    pub(super) fn reconnect_target(&self) -> Option<EntityAddr> {
        match self.role {
            Role::Client => self.target,
            Role::Server => self
                .session
                .peer
                .as_ref()
                .and_then(|p| p.addrs.msgr2().copied())
                .filter(|a| !a.is_blank_ip() && a.port() != 0),
        }
    }

    /// Continues a faulted connection's session on a new client connection (after
    /// [`Event::Reconnect`], or to dial out of STANDBY). This connection is left closed. A
    /// server-role connection dials the peer's msgr2 address from its ident.
    pub fn reconnect(&mut self, global_seq: u64, now: Instant) -> Result<Connection, ProtoError> {
        if !matches!(self.phase, Phase::Backoff | Phase::Standby) {
            return Err(ProtoError::NotFaulted(self.state()));
        }
        let target = self
            .reconnect_target()
            .ok_or(ProtoError::NoReconnectTarget)?;
        let peer_type = self.peer_type_or_client();
        let session = std::mem::take(&mut self.session);
        self.phase = Phase::Closed;
        let mut c = Self::client_with_session(
            self.config.clone(),
            target,
            peer_type,
            session,
            global_seq,
            now,
        );
        c.policy = self.policy.clone();
        c.keepalive = self.keepalive.take();
        c.local_nonce = self.local_nonce;
        Ok(c)
    }

    /// Detaches the session (unacknowledged messages requeued) so the embedder can move it
    /// elsewhere; this connection is closed without reporting a reset.
    pub fn take_session(&mut self) -> Session {
        self.session.requeue_sent();
        self.session.ack_left = 0;
        self.phase = Phase::Closed;
        if self.error.is_none() {
            self.error = Some(ProtoError::Replaced);
        }
        std::mem::take(&mut self.session)
    }

    /// Receive-side zero copy (crc mode): when a ready connection is inside a segment (a
    /// message's data) with at least `min` bytes still to come and no input kept back, lends
    /// that segment's buffer (page-aligned for data segments) out with the offset of the next
    /// byte. Have the socket write the rest (`buf[offset..]`) straight into it, then give it
    /// back with [`Connection::return_rx_segment`]; meanwhile feed no input. The buffer is the
    /// caller's until then, so a fault or close in between cannot leave it dangling.
    pub fn lend_rx_segment(&mut self, min: usize) -> Option<(Data, usize)> {
        if !self.stash.is_empty() || self.error.is_some() || !self.is_ready() {
            return None;
        }
        self.rx.as_mut()?.lend_segment(min)
    }

    /// Bytes of the current segment still to come when [`Connection::lend_rx_segment`] could
    /// lend it now (0 otherwise): lets an embedder decide to stop its other reads first.
    pub fn rx_segment_left(&self) -> usize {
        if !self.stash.is_empty() || self.error.is_some() || !self.is_ready() {
            return 0;
        }
        self.rx.as_ref().map_or(0, |r| r.segment_left())
    }

    /// Gives back a buffer from [`Connection::lend_rx_segment`] with `n` more bytes written
    /// after its offset, and goes on decoding. On a closed connection it is simply dropped.
    pub fn return_rx_segment(&mut self, buf: Data, n: usize) -> Result<(), ProtoError> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(());
        };
        if n > 0 {
            self.rx_since_tick = true;
        }
        match rx.return_segment(buf, n) {
            Ok(Some(f)) => self.on_frame(f).map_err(|e| self.fault(e)),
            Ok(None) => Ok(()),
            Err(e) => Err(self.fault(e)),
        }
    }
}
