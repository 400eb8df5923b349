//! [`MessengerBuilder`]: every option of a messenger, and starting its reactors.

use super::*;

/// How authentication is configured.
#[derive(Clone)]
enum AuthSpec {
    None,
    Keyring(Keyring),
}

/// Builds a [`Messenger`].
pub struct MessengerBuilder {
    name: EntityName,
    binds: Vec<BindSpec>,
    cores: Option<Vec<usize>>,
    auth: AuthSpec,
    modes: ModeConfig,
    policies: HashMap<EntityType, Policy>,
    raw: bool,
    factory: Option<Arc<Factory>>,
    client_auth: Option<Arc<dyn ClientAuthProvider>>,
    server_auth: Option<Arc<dyn ServerAuthProvider>>,
    banner: Option<Banner>,
    gid: Option<i64>,
    nonce: Option<u32>,
    send_queue_limit: Option<(usize, u64)>,
    dispatch_throttle_bytes: Option<u64>,
    compression: CompressionConfig,
    admin: Option<AdminSpec>,
    pub(crate) rc: ReactorConfig,
}

/// The admin socket a builder opens for its messenger.
struct AdminSpec {
    path: std::path::PathBuf,
    label: String,
    config: Vec<(String, String)>,
}

impl MessengerBuilder {
    /// A messenger for entity `name` with Ceph's defaults: no listening address, every
    /// available core, auth none, Ceph's mode lists, lossy policies, msgr2 framing.
    pub fn new(name: EntityName) -> Self {
        let mut rc = ReactorConfig::default();
        if std::env::var_os("MSGR2_ENGINE_DISABLE_URING").is_some_and(|v| v != "0") {
            rc.simulate_no_uring = true;
        }
        if let Some(v) = std::env::var("MSGR2_ENGINE_MEMLOCK_LIMIT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.memlock_limit_override = Some(v);
        }
        if let Ok(v) = std::env::var("MSGR2_ZERO_COPY_RECV_MIN") {
            // "off" (or anything not a number) disables targeted receives.
            rc.zero_copy_recv_min = v.parse().ok();
        }
        if let Some(v) = std::env::var("MSGR2_RX_LOAN_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.rx_loan_chunk = v;
        }
        if let Some(v) = std::env::var("MSGR2_SEND_ZC_THRESHOLD")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rc.send_zc_threshold = Some(v);
        }
        Self {
            name,
            binds: Vec::new(),
            cores: None,
            auth: AuthSpec::None,
            modes: ModeConfig::default(),
            policies: HashMap::new(),
            raw: false,
            factory: None,
            client_auth: None,
            server_auth: None,
            banner: None,
            gid: None,
            nonce: None,
            send_queue_limit: None,
            dispatch_throttle_bytes: None,
            compression: CompressionConfig::default(),
            admin: None,
            rc,
        }
    }

    /// Adds addresses to listen on: an address vector string (`[v2:127.0.0.1:6800/0]`,
    /// `v2:127.0.0.1:0`, `127.0.0.1:0`; port 0 picks a free port in
    /// `ms_bind_port_min..=ms_bind_port_max`) or [`BindOptions`](crate::BindOptions) with Ceph's `ms_bind_*`
    /// options. May be called more than once.
    pub fn bind(mut self, spec: impl Into<BindSpec>) -> Self {
        self.binds.push(spec.into());
        self
    }

    /// The cores to run on, one pinned reactor thread each (default: every core this process
    /// may use).
    pub fn cores(mut self, cores: Vec<usize>) -> Self {
        self.cores = Some(cores);
        self
    }

    /// Authenticate with AUTH_NONE (both roles). This is the default.
    pub fn auth_none(mut self) -> Self {
        self.auth = AuthSpec::None;
        self
    }

    /// Authenticate with cephx from `keyring`: as a client with our own entry (if present),
    /// and as a mon-style server for the entities in it (they need `mon` caps), so peers
    /// dialling us should use [`EntityType::Mon`] as the peer type.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.auth = AuthSpec::Keyring(keyring);
        self
    }

    /// The client-side authentication provider, replacing the one [`MessengerBuilder::auth_none`]
    /// or [`MessengerBuilder::keyring`] would make. Every outgoing connection of the messenger
    /// uses this one provider, so a cephx provider's `TicketStore` is shared: the service
    /// tickets a monitor login fetched authorize later connections to OSDs (what `msgr2 ping
    /// --osd` does), and errors in building it stay the caller's to word.
    pub fn client_auth(mut self, provider: Arc<dyn ClientAuthProvider>) -> Self {
        self.client_auth = Some(provider);
        self
    }

    /// The server-side authentication provider for accepted connections, replacing the one
    /// [`MessengerBuilder::auth_none`] or [`MessengerBuilder::keyring`] would make.
    pub fn server_auth(mut self, provider: Arc<dyn ServerAuthProvider>) -> Self {
        self.server_auth = Some(provider);
        self
    }

    /// The banner's feature bits (default: [`Banner::OURS`], offering msgr2.1 and
    /// compression).
    /// `Banner { supported: 0, required: 0 }` forces msgr2.0 framing on every connection.
    pub fn banner(mut self, banner: Banner) -> Self {
        self.banner = Some(banner);
        self
    }

    /// On-wire compression (Quincy+): `ms_osd_compress_mode`, `ms_osd_compression_algorithm`,
    /// `ms_osd_compress_min_size`, `ms_compress_secure` (set them by name with
    /// [`CompressionConfig::set`]). Default: Ceph's (advertised, never compressing).
    /// Compression applies to connections whose peer is an OSD, as in Ceph.
    pub fn compression(mut self, compression: CompressionConfig) -> Self {
        self.compression = compression;
        self
    }

    /// Our entity number as sent in idents (Ceph's `entity_name_t::num`: a monitor sends its
    /// rank, an OSD its id). Default: the numeric id of the entity name, `-1` for clients and
    /// for names without one (`mon.a`).
    pub fn gid(mut self, gid: i64) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Per-connection bound on messages queued but not yet written: beyond `messages` or
    /// `bytes` of payload, [`ConnHandle::send`] fails the connection (reset with "send queue
    /// full"), so a peer that stops reading cannot make us buffer without limit. Default:
    /// 65536 messages, 1 GiB.
    pub fn send_queue_limit(mut self, messages: usize, bytes: u64) -> Self {
        self.send_queue_limit = Some((messages, bytes));
        self
    }

    /// Receive the rest of a message's data segment with one targeted `recv` straight into
    /// its page-aligned buffer (no copy through the provided receive buffers) when at least
    /// `bytes` of it are still to come; `None` turns it off. Crc mode only (secure mode
    /// decrypts after the tag). Default 256 KiB; `MSGR2_ZERO_COPY_RECV_MIN=off` (or a size)
    /// in the environment overrides it, for comparisons.
    pub fn zero_copy_recv_min(mut self, bytes: Option<usize>) -> Self {
        self.rc.zero_copy_recv_min = bytes;
        self
    }

    /// `ms_dispatch_throttle_bytes`: messenger-wide budget of received message bytes not yet
    /// released by the application (dropping a [`Message`](msgr2_proto::Message) releases it); a connection whose
    /// message would exceed it stops reading until bytes are released. Default 100 MiB, as in
    /// Ceph. Per-peer-type byte and message throttles come with the [`Policy`].
    pub fn dispatch_throttle_bytes(mut self, bytes: u64) -> Self {
        self.dispatch_throttle_bytes = Some(bytes);
        self
    }

    /// Connection modes (`ms_*_mode`).
    pub fn modes(mut self, modes: ModeConfig) -> Self {
        self.modes = modes;
        self
    }

    /// The nonce in our addresses (default: 0 for a monitor, random otherwise). Ceph's tools
    /// that bind a fixed address, such as `ceph_perf_msgr_server` (nonce 0), are dialled with
    /// that nonce, and a server refuses a peer that names another one.
    pub fn nonce(mut self, nonce: u32) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Policy towards peers of type `peer` (Ceph's `Messenger::Policy`: lossy/lossless,
    /// server, standby, resetcheck, required features, receive throttles). Types without one
    /// get `Policy::lossy_client(0)`.
    pub fn policy(mut self, peer: EntityType, policy: Policy) -> Self {
        self.policies.insert(peer, policy);
        self
    }

    /// Use the raw baseline transport (16-byte header + payload, no handshake, no msgr2
    /// framing) instead of msgr2.
    pub fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    /// The per-core dispatcher factory, called once on each core's thread with the core's CPU.
    pub fn dispatcher(
        mut self,
        factory: impl Fn(usize) -> Box<dyn Dispatcher> + Send + Sync + 'static,
    ) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// Opens Ceph's admin socket at `path` (metavariables already expanded, e.g. with
    /// [`crate::admin::MetaVars::expand`]) when the messenger starts, registered under `label`
    /// (its dispatch throttle's section is `throttle-msgr_dispatch_throttler-LABEL`), and closes
    /// it at shutdown. `config show` answers this builder's options with Ceph's names
    /// ([`MessengerBuilder::effective_options`]) followed by `extra_config`. For several
    /// messengers behind one socket, open a [`crate::admin::AdminSocket`] and call
    /// [`crate::admin::AdminSocket::add_messenger`] instead.
    pub fn admin_socket(
        mut self,
        path: impl Into<std::path::PathBuf>,
        label: &str,
        extra_config: Vec<(String, String)>,
    ) -> Self {
        self.admin = Some(AdminSpec {
            path: path.into(),
            label: label.to_owned(),
            config: extra_config,
        });
        self
    }

    /// This builder's settings as Ceph options (name, value): `name`, the six `ms_*_mode`
    /// lists, `ms_dispatch_throttle_bytes`, `ms_connection_ready_timeout`,
    /// `ms_initial_backoff`, `ms_max_backoff`, `ms_async_op_threads` (cores),
    /// `ms_inject_socket_failures`, the bind options when given as [`crate::BindOptions`], and
    /// the compression options; for `config show` / `config get`.
    pub fn effective_options(&self) -> Vec<(String, String)> {
        let modes = |v: &[u32]| {
            v.iter()
                .map(|m| match *m {
                    msgr2_codec::payload::CON_MODE_SECURE => "secure",
                    _ => "crc",
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        let mut o: Vec<(String, String)> = vec![
            ("name".into(), self.name.to_string()),
            ("ms_client_mode".into(), modes(&self.modes.client)),
            ("ms_service_mode".into(), modes(&self.modes.service)),
            ("ms_cluster_mode".into(), modes(&self.modes.cluster)),
            ("ms_mon_client_mode".into(), modes(&self.modes.mon_client)),
            ("ms_mon_service_mode".into(), modes(&self.modes.mon_service)),
            ("ms_mon_cluster_mode".into(), modes(&self.modes.mon_cluster)),
            (
                "ms_dispatch_throttle_bytes".into(),
                self.dispatch_throttle_bytes
                    .unwrap_or(msgr2_proto::config::DISPATCH_THROTTLE_BYTES)
                    .to_string(),
            ),
            (
                "ms_connection_ready_timeout".into(),
                self.rc.handshake_timeout.as_secs().to_string(),
            ),
            (
                "ms_inject_socket_failures".into(),
                self.rc.inject_socket_failures.to_string(),
            ),
            ("ms_bind_msgr1".into(), "false".into()),
        ];
        if let Some((initial, max)) = self.rc.backoff {
            o.push(("ms_initial_backoff".into(), secs(initial)));
            o.push(("ms_max_backoff".into(), secs(max)));
        }
        if let Some(c) = &self.cores {
            o.push(("ms_async_op_threads".into(), c.len().to_string()));
        }
        for b in &self.binds {
            if let BindSpec::Options(b) = b {
                o.push(("ms_bind_msgr2".into(), b.ms_bind_msgr2.to_string()));
                o.push(("ms_bind_ipv4".into(), b.ms_bind_ipv4.to_string()));
                o.push(("ms_bind_ipv6".into(), b.ms_bind_ipv6.to_string()));
                o.push(("ms_bind_port_min".into(), b.ms_bind_port_min.to_string()));
                o.push(("ms_bind_port_max".into(), b.ms_bind_port_max.to_string()));
                if let Some(a) = b.public_addr {
                    o.push(("public_addr".into(), a.to_string()));
                }
            }
        }
        o
    }

    /// Frame limits (default: 256 MiB per message).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.rc.limits = limits;
        self
    }

    /// Bytes of the per-core buffer arena (rounded; default 24 MiB: 16 MiB of 64 KiB receive
    /// buffers plus send staging). Registration pins it: RLIMIT_MEMLOCK must allow it.
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.rc.arena_bytes = bytes;
        self
    }

    /// When the arena cannot be registered (RLIMIT_MEMLOCK), run with an unregistered arena
    /// and a warning instead of failing (default: fail with the fix in the error).
    pub fn arena_fallback(mut self, allow: bool) -> Self {
        self.rc.arena_fallback = allow;
        self
    }

    /// Use SEND_ZC for sends of at least `bytes` (None: never, the default — on loopback the
    /// kernel copies anyway and zero-copy is slower; see the crate docs for the numbers).
    pub fn send_zc_threshold(mut self, bytes: Option<usize>) -> Self {
        self.rc.send_zc_threshold = bytes;
        self
    }

    /// Send KEEPALIVE2 on a ready msgr2 connection after this much transmit silence (proto's
    /// `keepalive_interval`; default: off, as in Ceph).
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.rc.keepalive = interval;
        self
    }

    /// How long an idle reactor spins (checking its rings without syscalls) before it parks
    /// in `io_uring_enter` (default 100 µs; `None` or zero parks at once, saving CPU on idle
    /// messengers at the price of a cross-CPU wakeup per lull).
    pub fn spin_before_park(mut self, d: Option<Duration>) -> Self {
        self.rc.spin_before_park = d;
        self
    }

    /// `ms_connection_ready_timeout`: the handshake must finish within this (default 10 s).
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.rc.handshake_timeout = t;
        self
    }

    /// `ms_initial_backoff` and `ms_max_backoff`: the first reconnect delay of a faulted
    /// lossless session (doubling per failed attempt) and its cap, which is also the wait
    /// after a WAIT (defaults 0.2 s and 15 s, Ceph's).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.rc.backoff = Some((initial, max));
        self
    }

    /// `ms_inject_socket_failures`: after one in `n` socket operations (receives and sends)
    /// shut the socket down, as Ceph does, so both ends go through their fault handling
    /// (lossy sessions reset, lossless ones reconnect and replay). 0 (the default) is off.
    /// For tests and soak runs.
    pub fn inject_socket_failures(mut self, n: u64) -> Self {
        self.rc.inject_socket_failures = n;
        self
    }

    /// Adds a named break point (tests): the first `times` times (per core) one of this
    /// messenger's connections transmits in protocol state `state` (`HELLO`,
    /// `AUTH_CONNECTING`, `SESSION_RECONNECTING`, `READY`, …), its socket is cut
    /// [`BreakAt::BeforeSend`], [`BreakAt::AfterSend`] or [`BreakAt::MidSend`] (mid-message in
    /// `READY`). Counted in `injected_socket_failures`.
    pub fn break_point(mut self, state: &str, at: BreakAt, times: u32) -> Self {
        self.rc.break_points.push(crate::options::BreakPoint {
            state: state.to_owned(),
            at,
            times,
        });
        self
    }

    /// `ms_inject_delay_type`, `ms_inject_delay_max`, `ms_inject_delay_probability`: hold
    /// back the delivery of a message from a peer of one of `types` with `probability` for
    /// up to `max` (messages behind it wait too, so order is kept). Off by default.
    pub fn inject_delay(mut self, types: Vec<EntityType>, max: Duration, probability: f64) -> Self {
        self.rc.inject_delay =
            (!types.is_empty() && probability > 0.0).then_some(crate::options::InjectDelay {
                types,
                max,
                probability,
            });
        self
    }

    /// Test knob: behave as if `io_uring_setup` were refused (also
    /// `MSGR2_ENGINE_DISABLE_URING=1`).
    #[doc(hidden)]
    pub fn simulate_no_uring(mut self) -> Self {
        self.rc.simulate_no_uring = true;
        self
    }

    /// Test knob: behave as if RLIMIT_MEMLOCK were `bytes` for an unprivileged user (also
    /// `MSGR2_ENGINE_MEMLOCK_LIMIT`).
    #[doc(hidden)]
    pub fn simulate_memlock_limit(mut self, bytes: u64) -> Self {
        self.rc.memlock_limit_override = Some(bytes);
        self
    }

    fn proto_config(&self, my_addrs: EntityAddrVec, nonce: u32) -> Result<Config, EngineError> {
        let mut c = Config::new(self.name.clone());
        c.my_addrs = my_addrs;
        c.nonce = nonce;
        c.modes = self.modes.clone();
        c.limits = self.rc.limits;
        c.ready_timeout_secs = self.rc.handshake_timeout.as_secs().max(1);
        match &self.auth {
            AuthSpec::None => {
                c.client_auth = Some(Arc::new(NoneClientProvider::new(self.name.clone())));
                c.server_auth = Some(Arc::new(NoneServerProvider::new(4096)));
            }
            AuthSpec::Keyring(k) => {
                if k.get(&self.name).is_some() {
                    let p =
                        CephxClientProvider::from_keyring(k, self.name.clone(), TicketStore::new())
                            .map_err(EngineError::Auth)?;
                    c.client_auth = Some(Arc::new(p));
                }
                let ctx =
                    MonServerContext::new(Arc::new(k.clone())).map_err(EngineError::Keyring)?;
                c.server_auth = Some(Arc::new(CephxServerProvider::new(Arc::new(ctx))));
            }
        }
        if let Some(p) = &self.client_auth {
            c.client_auth = Some(Arc::clone(p));
        }
        if let Some(p) = &self.server_auth {
            c.server_auth = Some(Arc::clone(p));
        }
        if let Some(b) = self.banner {
            c.banner = b;
        }
        c.compression = self.compression.clone();
        if let Some(g) = self.gid {
            c.gid.set(g);
        }
        if let Some((messages, bytes)) = self.send_queue_limit {
            c.max_queued_messages = messages;
            c.max_queued_bytes = bytes;
        }
        if let Some(b) = self.dispatch_throttle_bytes {
            c.dispatch_throttle = Arc::new(msgr2_proto::throttle::Throttle::new(b));
        }
        for (t, p) in &self.policies {
            c.policies.set(*t, p.clone());
        }
        c.keepalive_interval = self.rc.keepalive;
        if let Some((initial, max)) = self.rc.backoff {
            c.initial_backoff = initial;
            c.max_backoff = max;
        }
        // The reactors answer lookups from the messenger's session registry, so a reconnect or
        // a racing connection from a known peer resumes (or replaces) its session.
        c.session_lookup = true;
        Ok(c)
    }

    /// Binds, starts one pinned reactor per core and returns once every core is running (or
    /// with the first core's error).
    pub fn start(self) -> Result<Messenger, EngineError> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let cores = match &self.cores {
            Some(c) if !c.is_empty() => c.clone(),
            _ => available.clone(),
        };
        if cores.is_empty() {
            return Err(EngineError::NoSuchCore { core: 0, available });
        }
        for (i, c) in cores.iter().enumerate() {
            if !available.contains(c) {
                return Err(EngineError::NoSuchCore {
                    core: *c,
                    available,
                });
            }
            if cores[..i].contains(c) {
                return Err(EngineError::DuplicateCore(*c));
            }
        }
        let nonce = match self.nonce {
            Some(n) => n,
            None if self.name.ty == EntityType::Mon => 0,
            None => random_nonce(),
        };
        let (listeners, addrs) = bind_all(&self.name, &self.binds, nonce)?;
        let proto = Arc::new(self.proto_config(addrs.clone(), nonce)?);
        let n = cores.len();
        let mut core_shared = Vec::with_capacity(n);
        for &cpu in &cores {
            core_shared.push(CoreShared {
                cpu,
                eventfd: reactor::eventfd()?,
                sleeping: AtomicBool::new(false),
                injector: Mutex::new(Vec::new()),
                injected: AtomicBool::new(false),
                counters: CoreCounters::default(),
            });
        }
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cores: core_shared,
            queues: (0..n)
                .map(|_| (0..n).map(|_| Spsc::new(4096)).collect())
                .collect(),
            next_conn: AtomicU64::new(1),
            next_core: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            sessions: Mutex::new(SessionTable::new()),
        });
        let mut rc = self.rc.clone();
        rc.raw = self.raw;
        let proto_keep = Arc::clone(&proto);
        rc.proto = Some(proto);
        rc.my_name = Some(self.name.clone());
        let rc = Arc::new(rc);
        let factory: Arc<Factory> = self
            .factory
            .clone()
            .unwrap_or_else(|| Arc::new(|_| Box::new(NullDispatcher) as Box<dyn Dispatcher>));
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        let mut listeners = Some(listeners);
        for (idx, &cpu) in cores.iter().enumerate() {
            let shared = Arc::clone(&shared);
            let rc = Arc::clone(&rc);
            let factory = Arc::clone(&factory);
            let tx = tx.clone();
            let ls = if idx == 0 {
                listeners.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            let t = std::thread::Builder::new()
                .name(format!("msgr2-{}-{cpu}", self.name))
                .spawn(move || reactor::run(idx, shared, rc, ls, factory, tx))
                .map_err(|source| EngineError::ReactorSpawn { core: cpu, source })?;
            threads.push(t);
        }
        drop(tx);
        let mut first_err = None;
        for _ in 0..n {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(EngineError::ReactorDied(cores[0]));
                    break;
                }
            }
        }
        let mut m = Messenger {
            shared,
            threads,
            addrs,
            proto: proto_keep,
            name: self.name.clone(),
            admin: None,
        };
        if let Some(e) = first_err {
            m.stop();
            return Err(e);
        }
        if let Some(spec) = &self.admin {
            let admin = crate::admin::AdminSocket::bind(&spec.path)?;
            let mut config = self.effective_options();
            config.push(("admin_socket".into(), spec.path.display().to_string()));
            config.extend(spec.config.iter().cloned());
            admin.set_config(config);
            admin.add_messenger(&spec.label, &m);
            m.admin = Some(admin);
        }
        info!(name = %self.name, addrs = %m.addrs, cores = ?cores, raw = self.raw, "messenger started");
        Ok(m)
    }
}

fn random_nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) as u32).max(1)
}
