//! The soak server: echoes, checks and counts what each lossless or lossy session delivers.

use super::*;

/// A server-side connection's state.
#[derive(Default)]
pub(super) struct SrvConn {
    /// Last DATA sequence received on it.
    pub(super) last: u64,
    /// Next ECHO sequence on it (lossy connections number echoes per connection).
    pub(super) echo_next: u64,
}

pub(super) struct ServerInner {
    pub(super) seen: Bitmap,
    pub(super) data: StreamStats,
    /// Highest DATA sequence received (lossless order check).
    pub(super) last: u64,
    pub(super) lossy: bool,
    pub(super) conns: HashMap<u64, SrvConn>,
    /// Next ECHO sequence of the lossless session.
    pub(super) echo_next: u64,
    pub(super) echoes_sent: u64,
    pub(super) echo_bytes: u64,
    pub(super) resets: Vec<String>,
    pub(super) readies: u64,
    pub(super) resumed: u64,
    /// Faults the session survived (`on_fault`).
    pub(super) faults: u64,
    pub(super) accept_failures: u64,
    /// The client's FIN: how many DATA messages it sent.
    pub(super) fin: Option<u64>,
    pub(super) bye: bool,
    pub(super) first: Option<Instant>,
    pub(super) last_activity: Instant,
}

pub(super) struct ServerState {
    pub(super) inner: Mutex<ServerInner>,
    pub(super) pool: Arc<Vec<u8>>,
    pub(super) seed: u64,
}

impl ServerState {
    /// What the server saw, for FIN_ACK and its own report.
    pub(super) fn findings(&self, s: &ServerInner, sent: u64) -> Value {
        let lost = sent.saturating_sub(s.data.received);
        let (gaps, truncated) = s.seen.gaps(sent, 100_000);
        json!({
            "data": s.data.json(lost),
            "gaps": gaps.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
            "gaps_truncated": truncated,
            "echoes_sent": s.echoes_sent,
            "echo_bytes": s.echo_bytes,
            "resets": s.resets.len(),
            "reset_reasons": s.resets.iter().take(10).collect::<Vec<_>>(),
        })
    }
}

pub(super) struct ServerDispatcher {
    pub(super) st: Arc<ServerState>,
}

impl ServerDispatcher {
    pub(super) fn on_data(&self, s: &mut ServerInner, conn: &ConnHandle, msg: &Message) {
        let p = match check(msg, &self.st.pool) {
            Ok(p) => p,
            Err(e) => {
                s.data.corrupt += 1;
                s.data.problem(format!("corrupt DATA: {e}"));
                return;
            }
        };
        let lossy = p.flags & FLAG_LOSSY != 0;
        s.lossy |= lossy;
        let c = s.conns.entry(conn.id()).or_default();
        let prev_on_conn = std::mem::replace(&mut c.last, p.seq);
        if s.seen.set(p.seq) {
            s.data.duplicated += 1;
            s.data.problem(format!("DATA {} received twice", p.seq));
            return;
        }
        if lossy {
            // Within one connection the sequence is contiguous; a new connection may start
            // after a gap (the messages lost with the previous connection's reset).
            if prev_on_conn != 0 && p.seq != prev_on_conn + 1 {
                s.data.reordered += 1;
                s.data.problem(format!(
                    "DATA {} after {prev_on_conn} on one connection",
                    p.seq
                ));
            }
        } else if p.seq != s.last + 1 {
            s.data.reordered += 1;
            s.data.problem(format!(
                "DATA {} after {} (lossless session)",
                p.seq, s.last
            ));
        }
        s.last = s.last.max(p.seq);
        s.data.received += 1;
        s.data.bytes += p.len;
        // Answer with an ECHO acknowledging it.
        let eseq = if lossy {
            let c = s.conns.entry(conn.id()).or_default();
            c.echo_next += 1;
            c.echo_next
        } else {
            s.echo_next += 1;
            s.echo_next
        };
        let (len, off) = shape(self.st.seed, S_ECHO, eseq, usize::MAX);
        let echo = make(T_ECHO, p.flags, eseq, p.seq, len, off, &self.st.pool);
        if conn.send(echo).is_ok() {
            s.echoes_sent += 1;
            s.echo_bytes += len as u64;
        }
    }
}

impl Dispatcher for ServerDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let st = Arc::clone(&self.st);
        let mut g = lock(&st.inner);
        let s = &mut *g;
        let now = Instant::now();
        s.last_activity = now;
        s.first.get_or_insert(now);
        match msg.header.msg_type {
            T_DATA => self.on_data(s, conn, &msg),
            T_FIN => {
                let sent = serde_json::from_slice::<Value>(&msg.front)
                    .ok()
                    .and_then(|v| v["sent"].as_u64());
                match sent {
                    Some(n) if n <= MAX_SEQ => {
                        s.fin = Some(n);
                        let f = self.st.findings(s, n);
                        let _ = conn.send(control(T_FIN_ACK, &f));
                    }
                    _ => {
                        s.data.corrupt += 1;
                        s.data.problem("unreadable FIN".into());
                    }
                }
            }
            T_BYE => s.bye = true,
            t => {
                s.data.corrupt += 1;
                s.data.problem(format!("unexpected message type {t:#x}"));
            }
        }
    }

    fn on_accept(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        let mut s = lock(&self.st.inner);
        s.readies += 1;
        if peer.reconnected {
            s.resumed += 1;
        }
    }

    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        self.on_accept(conn, peer);
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let mut s = lock(&self.st.inner);
        s.conns.remove(&conn.id());
        s.resets.push(error.to_string());
    }

    fn on_fault(&mut self, _conn: &ConnHandle, _error: &msgr2_engine::ConnError) {
        lock(&self.st.inner).faults += 1;
    }

    fn on_accept_failed(
        &mut self,
        _peer: Option<std::net::SocketAddr>,
        _error: &msgr2_engine::ConnError,
    ) {
        lock(&self.st.inner).accept_failures += 1;
    }
}

pub(super) fn server(args: &SoakArgs) -> Result<(), SoakError> {
    // The server accepts either kind of client: a lossless peer of the mode's entity type or
    // a lossy `client.*`.
    let setup = Setup::new(args.mode, false);
    let st = Arc::new(ServerState {
        inner: Mutex::new(ServerInner {
            seen: Bitmap::default(),
            data: StreamStats::default(),
            last: 0,
            lossy: false,
            conns: HashMap::new(),
            echo_next: 0,
            echoes_sent: 0,
            echo_bytes: 0,
            resets: Vec::new(),
            readies: 0,
            resumed: 0,
            faults: 0,
            accept_failures: 0,
            fin: None,
            bye: false,
            first: None,
            last_activity: Instant::now(),
        }),
        pool: pool(),
        seed: args.seed,
    });
    let st2 = Arc::clone(&st);
    let m = setup
        .builder(setup.server_name.clone(), args)
        .bind(args.listen.as_str())
        .policy(setup.peer_type, Policy::lossless_peer(0))
        .policy(EntityType::Client, Policy::stateless_server(0))
        .dispatcher(move |_| {
            Box::new(ServerDispatcher {
                st: Arc::clone(&st2),
            }) as Box<dyn Dispatcher>
        })
        .start()?;
    {
        let addrs = m.addrs().to_string();
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", json!({"event": "listening", "addrs": addrs}))?;
        } else {
            writeln!(out, "listening {addrs}")?;
        }
        out.flush()?;
    }
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let linger = Duration::from_secs(3);
    let started = Instant::now();
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(50));
        let s = lock(&st.inner);
        let idle = s.last_activity.elapsed();
        if s.bye {
            break Ok(());
        }
        if s.fin.is_some() && idle > linger {
            // FIN answered; the BYE was lost (lossy) or the client went away.
            break Ok(());
        }
        if s.first.is_none() && started.elapsed() > stall {
            break Err(SoakError::Stalled(format!(
                "no message from a client within {stall:?}"
            )));
        }
        if s.first.is_some() && idle > stall {
            break Err(SoakError::Stalled(format!(
                "no message for {stall:?} after {} DATA received; counters {:?}",
                s.data.received,
                m.counters()
            )));
        }
    };
    // Figures before shutting down (our shutdown is a fault for the peer).
    let counters = m.counters();
    let s = lock(&st.inner);
    let duration = match s.first {
        Some(f) => s.last_activity.saturating_duration_since(f),
        None => Duration::ZERO,
    };
    let sent = s.fin.unwrap_or(s.last);
    let lost = sent.saturating_sub(s.data.received);
    let (mps, mbps) = rate(s.data.received, s.data.bytes + s.echo_bytes, duration);
    let mut failures = Vec::new();
    if s.fin.is_none() {
        failures.push("no FIN from the client".to_owned());
    }
    if s.data.duplicated + s.data.reordered + s.data.corrupt > 0 {
        failures.push("duplicated, reordered or corrupt DATA".to_owned());
    }
    if !s.lossy && lost > 0 {
        failures.push(format!("{lost} DATA lost on a lossless session"));
    }
    if !s.lossy && !s.resets.is_empty() {
        failures.push(format!("{} resets of a lossless session", s.resets.len()));
    }
    if let Err(e) = &outcome {
        failures.push(e.to_string());
    }
    let ok = failures.is_empty();
    let mut report = st.findings(&s, sent);
    if let Value::Object(o) = &mut report {
        o.remove("gaps");
        o.insert("role".into(), json!("server"));
        o.insert("mode".into(), json!(args.mode.name()));
        o.insert("lossy".into(), json!(s.lossy));
        o.insert("messages".into(), json!(sent));
        o.insert(
            "gaps_count".into(),
            json!(s.seen.gaps(sent, usize::MAX).0.len()),
        );
        o.insert("readies".into(), json!(s.readies));
        o.insert("sessions_resumed_seen".into(), json!(s.resumed));
        o.insert("faults_survived".into(), json!(s.faults));
        o.insert("accept_failures".into(), json!(s.accept_failures));
        o.insert("inject_failures_every".into(), json!(args.inject_failures));
        o.insert("counters".into(), counters_json(&counters));
        o.insert("duration_s".into(), json!(duration.as_secs_f64()));
        o.insert("msgs_per_s".into(), json!(mps));
        o.insert("mb_per_s".into(), json!(mbps));
        o.insert("result".into(), json!(if ok { "ok" } else { "FAIL" }));
        o.insert("failures".into(), json!(failures));
    }
    let text = format!(
        "server ({}, {}): received {} of {sent} DATA, lost {lost}, duplicated {}, reordered {}, corrupt {}; \
         echoes sent {}; resets {}; reconnects {} resumed {} moved {} injected failures {} connection errors {}; \
         {:.1} s, {mps:.0} msg/s, {mbps:.1} MB/s; {}\n",
        args.mode.name(),
        if s.lossy { "lossy" } else { "lossless" },
        s.data.received,
        s.data.duplicated,
        s.data.reordered,
        s.data.corrupt,
        s.echoes_sent,
        s.resets.len(),
        counters.session_reconnects,
        counters.sessions_resumed,
        counters.sessions_moved,
        counters.injected_socket_failures,
        counters.connection_errors,
        duration.as_secs_f64(),
        if ok { "ok".to_owned() } else { format!("FAIL: {}", failures.join("; ")) },
    );
    drop(s);
    emit(args, &report, &text)?;
    let _ = m.shutdown();
    if ok {
        Ok(())
    } else {
        Err(SoakError::Failed(failures.join("; ")))
    }
}
