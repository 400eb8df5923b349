//! The soak client: streams numbered messages on every connection, checks the echoes and
//! reports what was lost, duplicated or reordered.

use super::*;

/// One client connection (lossless: the one session; lossy: one per reset).
#[derive(Debug, Default)]
pub(super) struct CliConn {
    /// The reset reported for it (`on_reset`).
    pub(super) reset: Option<String>,
    /// Next ECHO sequence expected on it (lossy).
    pub(super) echo_next: u64,
    /// ECHOs received on it.
    pub(super) acks: u64,
}

pub(super) struct ClientInner {
    pub(super) echo: StreamStats,
    /// Next ECHO sequence expected on the lossless session.
    pub(super) echo_next: u64,
    /// DATA sent and not yet echoed: (seq, payload bytes).
    pub(super) unacked: VecDeque<(u64, u64)>,
    pub(super) inflight_bytes: u64,
    pub(super) conns: HashMap<u64, CliConn>,
    pub(super) fin_ack: Option<Value>,
    pub(super) readies: u64,
    pub(super) resumed: u64,
    /// Faults the session survived (`on_fault`).
    pub(super) faults: u64,
    pub(super) accepts: u64,
    /// Bumped by every message and reset: the stall detector's clock.
    pub(super) progress: u64,
}

pub(super) struct ClientState {
    pub(super) inner: Mutex<ClientInner>,
    pub(super) cv: Condvar,
    pub(super) pool: Arc<Vec<u8>>,
    pub(super) lossy: bool,
}

impl ClientInner {
    pub(super) fn acked_through(&mut self, seq: u64) {
        while let Some(&(s, len)) = self.unacked.front() {
            if s > seq {
                break;
            }
            self.unacked.pop_front();
            self.inflight_bytes -= len;
        }
    }
}

pub(super) struct ClientDispatcher {
    pub(super) st: Arc<ClientState>,
}

impl ClientDispatcher {
    pub(super) fn on_echo(&self, s: &mut ClientInner, conn: &ConnHandle, msg: &Message) {
        let p = match check(msg, &self.st.pool) {
            Ok(p) => p,
            Err(e) => {
                s.echo.corrupt += 1;
                s.echo.problem(format!("corrupt ECHO: {e}"));
                return;
            }
        };
        let c = s.conns.entry(conn.id()).or_default();
        c.acks += 1;
        let next = if self.st.lossy {
            &mut c.echo_next
        } else {
            &mut s.echo_next
        };
        let expected = *next + 1;
        if p.seq == expected {
            *next = p.seq;
        } else if p.seq < expected {
            s.echo.duplicated += 1;
            s.echo
                .problem(format!("ECHO {} again (expected {expected})", p.seq));
            return;
        } else {
            *next = p.seq;
            s.echo.reordered += 1;
            s.echo
                .problem(format!("ECHO {} when {expected} was expected", p.seq));
        }
        s.echo.received += 1;
        s.echo.bytes += p.len;
        s.acked_through(p.aux);
    }
}

impl Dispatcher for ClientDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let st = Arc::clone(&self.st);
        let mut g = lock(&st.inner);
        let s = &mut *g;
        s.progress += 1;
        match msg.header.msg_type {
            T_ECHO => self.on_echo(s, conn, &msg),
            T_FIN_ACK => match serde_json::from_slice::<Value>(&msg.front) {
                Ok(v) => s.fin_ack = Some(v),
                Err(e) => {
                    s.echo.corrupt += 1;
                    s.echo.problem(format!("unreadable FIN_ACK: {e}"));
                }
            },
            t => {
                s.echo.corrupt += 1;
                s.echo.problem(format!("unexpected message type {t:#x}"));
            }
        }
        drop(g);
        st.cv.notify_all();
    }

    fn on_connect(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        // Not progress for the stall detector: a session that keeps reconnecting without
        // delivering anything is stuck.
        let mut s = lock(&self.st.inner);
        s.readies += 1;
        if peer.reconnected {
            s.resumed += 1;
        }
    }

    fn on_accept(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        lock(&self.st.inner).accepts += 1;
        self.on_connect(conn, peer);
    }

    fn on_fault(&mut self, _conn: &ConnHandle, _error: &msgr2_engine::ConnError) {
        lock(&self.st.inner).faults += 1;
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let mut s = lock(&self.st.inner);
        s.progress += 1;
        s.conns.entry(conn.id()).or_default().reset = Some(error.to_string());
        drop(s);
        self.st.cv.notify_all();
    }
}

/// A run of DATA sequence numbers sent on one connection.
#[derive(Debug)]
pub(super) struct Epoch {
    pub(super) conn: u64,
    pub(super) first: u64,
    pub(super) last: u64,
}

/// Waits on the client's condition variable until `done` holds, failing after `stall` without
/// progress (or after `limit` in total, if given).
pub(super) fn wait_until(
    st: &ClientState,
    stall: Duration,
    limit: Option<Duration>,
    what: &str,
    mut done: impl FnMut(&mut ClientInner) -> bool,
) -> Result<bool, SoakError> {
    let started = Instant::now();
    let mut g = lock(&st.inner);
    let mut seen = g.progress;
    let mut since = Instant::now();
    loop {
        if done(&mut g) {
            return Ok(true);
        }
        if limit.is_some_and(|l| started.elapsed() > l) {
            return Ok(false);
        }
        if g.progress != seen {
            seen = g.progress;
            since = Instant::now();
        } else if since.elapsed() > stall {
            return Err(SoakError::Stalled(format!(
                "{what}: nothing happened for {stall:?} ({} ECHOs received, {} DATA unacknowledged)",
                g.echo.received,
                g.unacked.len()
            )));
        }
        g = match st.cv.wait_timeout(g, Duration::from_millis(50)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

pub(super) fn client(args: &SoakArgs) -> Result<(), SoakError> {
    let connect = args
        .connect
        .as_deref()
        .ok_or_else(|| SoakError::Usage("--role client needs --connect ADDRVEC".into()))?;
    let server: EntityAddrVec = connect
        .parse()
        .map_err(|e| SoakError::Usage(format!("--connect {connect}: {e}")))?;
    let setup = Setup::new(args.mode, args.lossy);
    let st = Arc::new(ClientState {
        inner: Mutex::new(ClientInner {
            echo: StreamStats::default(),
            echo_next: 0,
            unacked: VecDeque::new(),
            inflight_bytes: 0,
            conns: HashMap::new(),
            fin_ack: None,
            readies: 0,
            resumed: 0,
            faults: 0,
            accepts: 0,
            progress: 0,
        }),
        cv: Condvar::new(),
        pool: pool(),
        lossy: args.lossy,
    });
    let st2 = Arc::clone(&st);
    let mut b = setup
        .builder(setup.client_name.clone(), args)
        .dispatcher(move |_| {
            Box::new(ClientDispatcher {
                st: Arc::clone(&st2),
            }) as Box<dyn Dispatcher>
        });
    b = if args.lossy {
        b.policy(setup.peer_type, Policy::lossy_client(0))
    } else {
        b.policy(setup.peer_type, Policy::lossless_peer(0))
            .bind(args.bind.as_str())
    };
    let m = b.start()?;
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let flags = if args.lossy { FLAG_LOSSY } else { 0 };
    let started = Instant::now();
    let mut epochs: Vec<Epoch> = Vec::new();
    let mut bytes_sent = 0u64;
    let run = pump(
        args,
        &m,
        &server,
        &setup,
        &st,
        stall,
        flags,
        &mut epochs,
        &mut bytes_sent,
    );
    let duration = started.elapsed();
    // Figures before shutting down (our shutdown is a fault for the peer).
    let counters = m.counters();
    let report = client_report(args, &st, &epochs, bytes_sent, duration, &counters, run);
    let (value, text, failures) = report;
    emit(args, &value, &text)?;
    let _ = m.shutdown();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SoakError::Failed(failures.join("; ")))
    }
}

pub(super) fn reset_of(st: &ClientState, conn: &ConnHandle) -> bool {
    lock(&st.inner)
        .conns
        .get(&conn.id())
        .is_some_and(|c| c.reset.is_some())
}

/// Opens a connection and records it.
pub(super) fn dial(
    m: &Messenger,
    server: &EntityAddrVec,
    setup: &Setup,
    st: &ClientState,
) -> Result<ConnHandle, SoakError> {
    let c = m.connect(server, setup.peer_type)?;
    lock(&st.inner).conns.entry(c.id()).or_default();
    Ok(c)
}

/// Sends every DATA message, waits for the echoes, and exchanges FIN / FIN_ACK / BYE.
#[allow(clippy::too_many_arguments)]
pub(super) fn pump(
    args: &SoakArgs,
    m: &Messenger,
    server: &EntityAddrVec,
    setup: &Setup,
    st: &ClientState,
    stall: Duration,
    flags: u32,
    epochs: &mut Vec<Epoch>,
    bytes_sent: &mut u64,
) -> Result<(), SoakError> {
    let n = args.messages;
    let mut seq = 1u64;
    let mut conn = dial(m, server, setup, st)?;
    epochs.push(Epoch {
        conn: conn.id(),
        first: 1,
        last: 0,
    });
    loop {
        // Send on this connection until done or it resets (lossy).
        let mut lost_conn = false;
        while seq <= n {
            let cid = conn.id();
            let (len, off) = shape(args.seed, S_DATA, seq, args.max_size);
            let window = args
                .window
                .unwrap_or(if args.lossy { 64 } else { 2048 })
                .max(1);
            let wb = args.window_bytes;
            let lossy = args.lossy;
            wait_until(st, stall, None, "sending", |s| {
                (lossy && s.conns.get(&cid).is_some_and(|c| c.reset.is_some()))
                    || (s.unacked.len() < window as usize
                        && (s.inflight_bytes + len as u64 <= wb || s.unacked.is_empty()))
            })?;
            if args.lossy && (reset_of(st, &conn) || conn.is_closed()) {
                lost_conn = true;
                break;
            }
            let msg = make(T_DATA, flags, seq, 0, len, off, &st.pool);
            {
                let mut s = lock(&st.inner);
                s.unacked.push_back((seq, len as u64));
                s.inflight_bytes += len as u64;
            }
            if let Err(e) = conn.send(msg) {
                if !args.lossy {
                    return Err(SoakError::Failed(format!(
                        "the lossless session closed at DATA {seq}: {e}"
                    )));
                }
                let mut s = lock(&st.inner);
                s.unacked.pop_back();
                s.inflight_bytes -= len as u64;
                lost_conn = true;
                break;
            }
            *bytes_sent += len as u64;
            if let Some(e) = epochs.last_mut() {
                e.last = seq;
            }
            seq += 1;
        }
        if !lost_conn {
            // Everything sent: wait for the echoes (lossy: or the connection's reset).
            let cid = conn.id();
            let lossy = args.lossy;
            wait_until(st, stall, None, "waiting for the last ECHOs", |s| {
                s.unacked.is_empty()
                    || (lossy && s.conns.get(&cid).is_some_and(|c| c.reset.is_some()))
            })?;
            if !(args.lossy && reset_of(st, &conn)) {
                break;
            }
        }
        if !args.lossy {
            return Err(SoakError::Failed("the lossless session closed".into()));
        }
        // Lossy: the connection reset. Wait for its reset callback (the losses are checked
        // against it), forget what it had in flight and dial again.
        let _ = wait_until(st, stall, Some(Duration::from_secs(5)), "reset", |s| {
            s.conns.get(&conn.id()).is_some_and(|c| c.reset.is_some())
        })?;
        {
            let mut s = lock(&st.inner);
            s.unacked.clear();
            s.inflight_bytes = 0;
        }
        conn.mark_down();
        conn = dial(m, server, setup, st)?;
        epochs.push(Epoch {
            conn: conn.id(),
            first: seq,
            last: seq - 1,
        });
        if seq > n {
            break;
        }
    }
    // FIN / FIN_ACK (lossy: retried on a new connection after a reset).
    let mut attempts = 0;
    loop {
        attempts += 1;
        if conn.send(control(T_FIN, &json!({ "sent": n }))).is_ok() {
            let cid = conn.id();
            let got = wait_until(st, stall, Some(Duration::from_secs(10)), "FIN", |s| {
                s.fin_ack.is_some() || s.conns.get(&cid).is_some_and(|c| c.reset.is_some())
            })?;
            if got && lock(&st.inner).fin_ack.is_some() {
                break;
            }
        }
        if !args.lossy || attempts >= 20 {
            return Err(SoakError::Failed(format!(
                "no FIN_ACK after {attempts} attempt(s)"
            )));
        }
        conn.mark_down();
        conn = dial(m, server, setup, st)?;
    }
    let _ = conn.send(control(T_BYE, &json!({})));
    // Let the BYE leave before the caller shuts down.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// The client's report: JSON, text and the list of failures (empty: the run passed).
pub(super) fn client_report(
    args: &SoakArgs,
    st: &ClientState,
    epochs: &[Epoch],
    bytes_sent: u64,
    duration: Duration,
    counters: &Counters,
    run: Result<(), SoakError>,
) -> (Value, String, Vec<String>) {
    let s = lock(&st.inner);
    let mut failures = Vec::new();
    if let Err(e) = &run {
        failures.push(e.to_string());
    }
    let peer = s.fin_ack.clone().unwrap_or(Value::Null);
    let d = &peer["data"];
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let sent = epochs.last().map_or(0, |e| e.last);
    let data_lost = num(d, "lost");
    let echoes_sent = num(&peer, "echoes_sent");
    let echo_lost = echoes_sent.saturating_sub(s.echo.received);
    let client_resets = s.conns.values().filter(|c| c.reset.is_some()).count() as u64;
    // Lossy: every lost DATA must belong to a connection whose reset was reported, and every
    // connection that was not reset got all its echoes.
    let mut unexplained = 0u64;
    if args.lossy {
        let reset = |conn: u64| s.conns.get(&conn).is_some_and(|c| c.reset.is_some());
        if let Some(gaps) = peer["gaps"].as_array() {
            for g in gaps {
                let (a, b) = (g[0].as_u64().unwrap_or(0), g[1].as_u64().unwrap_or(0));
                for e in epochs {
                    let (lo, hi) = (a.max(e.first), b.min(e.last));
                    if lo <= hi && !reset(e.conn) {
                        unexplained += hi - lo + 1;
                    }
                }
            }
        }
        for e in epochs {
            let n = (e.last + 1).saturating_sub(e.first);
            let acks = s.conns.get(&e.conn).map_or(0, |c| c.acks);
            if !reset(e.conn) && acks < n {
                unexplained += n - acks;
            }
        }
        if peer["gaps_truncated"].as_bool() == Some(true) {
            failures.push("the server's list of lost ranges was truncated".into());
        }
    }
    let dup = num(d, "duplicated") + s.echo.duplicated;
    let reord = num(d, "reordered") + s.echo.reordered;
    let corrupt = num(d, "corrupt") + s.echo.corrupt;
    let lost = data_lost + echo_lost;
    if peer.is_null() {
        failures.push("no findings from the server".into());
    }
    if dup + reord + corrupt > 0 {
        failures.push(format!(
            "{dup} duplicated, {reord} reordered, {corrupt} corrupt"
        ));
    }
    if !args.lossy {
        if lost > 0 {
            failures.push(format!("{lost} lost on a lossless session"));
        }
        let resets = client_resets + num(&peer, "resets");
        if resets > 0 {
            failures.push(format!("{resets} resets of a lossless session"));
        }
    } else if unexplained > 0 {
        failures.push(format!(
            "{unexplained} messages lost without a reported reset"
        ));
    }
    if sent != args.messages && run.is_ok() {
        failures.push(format!("sent {sent} of {}", args.messages));
    }
    let ok = failures.is_empty();
    let (mps, mbps) = rate(sent, bytes_sent + s.echo.bytes, duration);
    let value = json!({
        "role": "client",
        "mode": args.mode.name(),
        "lossy": args.lossy,
        "seed": args.seed,
        "messages": args.messages,
        "sent": sent,
        "received": num(d, "received") + s.echo.received,
        "lost": lost,
        "duplicated": dup,
        "reordered": reord,
        "corrupt": corrupt,
        "lost_without_reset": unexplained,
        "data": d,
        "echo": s.echo.json(echo_lost),
        "echoes_sent_by_server": echoes_sent,
        "connections": epochs.len(),
        "client_resets": client_resets,
        "server_resets": num(&peer, "resets"),
        "readies": s.readies,
        "sessions_resumed_seen": s.resumed,
        "faults_survived": s.faults,
        "accepted_from_server": s.accepts,
        "inject_failures_every": args.inject_failures,
        "counters": counters_json(counters),
        "duration_s": duration.as_secs_f64(),
        "bytes_sent": bytes_sent,
        "bytes_received": s.echo.bytes,
        "msgs_per_s": mps,
        "mb_per_s": mbps,
        "result": if ok { "ok" } else { "FAIL" },
        "failures": failures,
    });
    let text = format!(
        "client ({}, {}): sent {sent} DATA ({} connection(s)); server received {}, lost {data_lost}; \
         ECHOs received {} of {echoes_sent}; duplicated {dup}, reordered {reord}, corrupt {corrupt}, \
         lost without reset {unexplained}; resets client {client_resets} server {}; \
         reconnects {} resumed {} moved {} injected failures {} connection errors {}; \
         {:.1} s, {mps:.0} msg/s, {mbps:.1} MB/s; {}\n",
        args.mode.name(),
        if args.lossy { "lossy" } else { "lossless" },
        epochs.len(),
        num(d, "received"),
        s.echo.received,
        num(&peer, "resets"),
        counters.session_reconnects,
        counters.sessions_resumed,
        counters.sessions_moved,
        counters.injected_socket_failures,
        counters.connection_errors,
        duration.as_secs_f64(),
        if ok { "ok".to_owned() } else { format!("FAIL: {}", failures.join("; ")) },
    );
    (value, text, failures)
}
