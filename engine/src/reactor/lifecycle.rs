//! Opening connections: accepted sockets become slots, dials create sockets.

use super::*;

impl Reactor {
    pub(super) fn new_conn(
        &mut self,
        handle: ConnHandle,
        sock: OwnedFd,
        proto: Option<Connection>,
        server: bool,
        peer_type: EntityType,
        peer_sock: Option<SocketAddr>,
    ) -> usize {
        let mut proto = proto;
        if let Some(p) = proto.as_mut() {
            p.set_vectored_transmit(true);
        }
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let id = handle.0.id;
        let raw_rx = self
            .rc
            .raw
            .then(|| RawDecoder::new(self.rc.limits.max_message_segment));
        let slot = self.conns.insert(Conn {
            id,
            gen,
            handle,
            sock,
            fixed: None,
            proto,
            raw_rx,
            raw_tx: Vec::new(),
            state: St::Connecting,
            ops: 0,
            rx: Rx::default(),
            tx_batch: None,
            tx_sent: 0,
            connect_addr: None,
            deadline: None,
            server,
            peer_type,
            peer_sock,
            notify_reset: true,
            draining: false,
            dirty: false,
            detached: false,
            active: true,
            delayed: VecDeque::new(),
            break_after_send: false,
        });
        self.by_id.insert(id, slot);
        if (slot as u32) < self.fixed_files {
            let fd = self.conns.get(slot).map(|c| c.sock.as_raw_fd());
            if let Some(fd) = fd {
                match self
                    .ring
                    .submitter()
                    .register_files_update(slot as u32, &[fd])
                {
                    Ok(_) => {
                        if let Some(c) = self.conns.get_mut(slot) {
                            c.fixed = Some(slot as u32);
                        }
                    }
                    Err(e) => debug!("fixed file slot {slot}: {e}; using the descriptor"),
                }
            }
        }
        ctr!(self.created_connections, 1);
        ctr!(self.active_connections, 1);
        self.update_deadline(slot);
        slot
    }

    pub(super) fn proto_config(&self) -> Arc<Config> {
        self.rc.proto.clone().unwrap_or_else(|| {
            Arc::new(Config::new(
                self.rc
                    .my_name
                    .clone()
                    .unwrap_or_else(|| EntityName::new(EntityType::Client, "admin")),
            ))
        })
    }

    pub(super) fn connect(
        &mut self,
        handle: ConnHandle,
        target: EntityAddr,
        peer_type: EntityType,
    ) {
        if self.shutting_down {
            handle.0.closed.store(true, Ordering::Relaxed);
            return;
        }
        let proto = (!self.rc.raw).then(|| {
            let cfg = self.proto_config();
            let gseq = cfg.global_seq.next();
            Connection::client(cfg, target, peer_type, gseq, Instant::now())
        });
        if let Some(slot) = self.dial(handle, target, proto, peer_type) {
            if !self.rc.raw {
                self.register(slot, &[target]);
            }
        }
    }

    /// Opens a socket to `target` carrying `proto` under `handle`. Without a slot (no address,
    /// no socket) the handle is closed and the failure reported.
    pub(super) fn dial(
        &mut self,
        handle: ConnHandle,
        target: EntityAddr,
        proto: Option<Connection>,
        peer_type: EntityType,
    ) -> Option<usize> {
        let fail = |me: &mut Self, h: &ConnHandle, e: ConnError| {
            h.0.closed.store(true, Ordering::Relaxed);
            ctr!(me.connection_errors, 1);
            me.dispatcher.on_reset(h, &e);
        };
        let Some(sa) = target.sock else {
            fail(self, &handle, ConnError::NoAddress(target));
            return None;
        };
        let sock = match Socket::new(Domain::for_address(sa), Type::STREAM.cloexec(), None) {
            Ok(s) => s,
            Err(e) => {
                let op = SocketOp::Create(sa);
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                fail(self, &handle, ConnError::Io { op, errno });
                return None;
            }
        };
        let _ = sock.set_nodelay(true);
        let slot = self.new_conn(handle, sock.into(), proto, false, peer_type, Some(sa));
        let addr = Box::new(SockAddr::from(sa));
        let (p, len) = (addr.as_ptr(), addr.len());
        let c = self.conns.get_mut(slot)?;
        c.connect_addr = Some(addr);
        let gen = c.gen;
        let e = with_fd!(c, |fd| opcode::Connect::new(fd, p.cast(), len).build());
        let ud = self.new_op(OpKind::Connect, slot as u32, gen);
        self.push_sqe(e.user_data(ud));
        Some(slot)
    }

    // ---- sessions: faults, reconnects, lookups ----------------------------------------------
    //
    // A `ConnHandle` names a *session*, not a socket. A lossless session survives a fault:
    // its socket is shut down and its slot turns `Faulted`; on `Event::Reconnect` a timer
    // dials again with `Connection::reconnect`, and the new slot takes over the handle (so
    // its id, under which the session table knows it) and any delayed messages, so the
    // application's handle keeps working.
    //
    // Session lookup. Accepted sockets are dealt round-robin before a byte is read, so a
    // peer's reconnect (or its side of a connection race) may land on a core other than the
    // one owning the session. When its CLIENT_IDENT / SESSION_RECONNECT arrives, proto pauses
    // it (`Event::Lookup`); the reactor asks the messenger's session table (`Shared::sessions`,
    // a `msgr2_proto::SessionTable` of addr → (core, conn id), the same one the protocol's
    // simulator uses, behind a mutex touched only at handshake time) who holds the session.
    // Here: resolve at once. Elsewhere: cancel its receive, wait for its operations, and hand
    // the live socket and its `Connection` (bytes received meanwhile are kept inside it) to
    // the owning core through the core-pair ring, which resolves it against the local
    // connection. We move the newcomer rather than the session because the session may be
    // busy (queues, sends in flight, cipher state), while the newcomer is idle by
    // construction: paused until the answer, and never yet seen by the application. A
    // connection is moved at most twice (the registry may change under it); then it is
    // resolved as new.
}
