//! `msgr2 server`: accept connections as a mon-style endpoint and print one JSON line per
//! event. It answers MMonGetMap with a monmap naming itself, so a real `ceph` client gets
//! past its first request; everything else is only reported.
//!
//! It runs on the io_uring engine: a [`Messenger`] on every core this process may use, whose
//! per-core dispatchers print the events (one line at a time, through a shared stdout lock;
//! this is not a data path).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityName;
use msgr2_codec::messages::{
    MMonMap, MessageFront, MonAuthPolicy, MonInfo, MonMap, Uuid, MSG_MON_GET_MAP,
};
use msgr2_codec::msg::msg_type_name;
use msgr2_codec::payload::{UTime, AUTH_CEPHX, CON_MODE_SECURE};
use msgr2_conf::CephArgs;
use msgr2_crypto::auth::{NoneServerProvider, ServerAuthProvider};
use msgr2_crypto::cephx::{CephxServerProvider, MonServerContext};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::{ConnHandle, Dispatcher, Messenger, MessengerBuilder};
use msgr2_proto::config::{parse_modes, FEATURE_SERVER_TENTACLE};
use msgr2_proto::{Message, ModeConfig, PeerInfo};
use serde_json::{json, Value};

/// Arena per core: small enough to lock under the default 8 MiB `RLIMIT_MEMLOCK` on two
/// cores (and the fallback covers anything tighter); a mon-style endpoint moves little data.
const ARENA_BYTES: usize = 2 << 20;
/// Replies queued on one connection and not yet written: beyond this the peer is not reading
/// and is dropped (the engine has no write timeout).
const SEND_QUEUE_MESSAGES: usize = 1024;
/// The same bound in payload bytes.
const SEND_QUEUE_BYTES: u64 = 16 << 20;

/// Options of `msgr2 server`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address vector to listen on, e.g. `[v2:127.0.0.1:3300/0]` (port 0 picks a free port;
    /// the bound vector is printed first).
    #[arg(long)]
    listen: String,
    /// Our entity name.
    #[arg(long, default_value = "mon.a")]
    name: String,
    /// Keyring with the keys of the clients we accept (cephx); without one, auth none.
    #[arg(long)]
    keyring: Option<PathBuf>,
    /// Modes we allow, in preference order (`crc`, `secure`, `secure,crc`); default: Ceph's.
    #[arg(long)]
    mode: Option<String>,
    /// Fsid to put in the monmap we hand out.
    #[arg(long, default_value = "2d5f1f62-2d35-4c36-9c2a-0b1c5a6d7e8f")]
    fsid: String,
    /// Print events as JSON lines (the default output; kept for scripts that ask for it).
    #[arg(long)]
    events: bool,
    /// `ms_connection_ready_timeout`: seconds a peer has to complete the handshake.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
    /// Stop after this many connections have ended (default: run until killed).
    #[arg(long)]
    max_connections: Option<u64>,
    /// Serve Ceph's admin socket here (`ceph daemon PATH perf dump`); Ceph's metavariables
    /// are expanded (`$run_dir/$cluster-$name.asok` is Ceph's default path). Default: the
    /// `admin socket` the conf sets for `--name` (`-c FILE`, `$CEPH_CONF`, ...), else none.
    #[arg(long, value_name = "PATH")]
    admin_socket: Option<String>,
}

/// The monitor map in the two forms a Ceph 20 monitor sends: version 10 with the cluster's
/// cephx policy to peers with `SERVER_TENTACLE`, version 9 to older ones.
struct MonMapFronts {
    /// Version 9 (Pacific through Squid).
    v9: Vec<u8>,
    /// Version 10 (Tentacle).
    v10: Vec<u8>,
}

impl MonMapFronts {
    /// The front for a peer advertising `features`.
    fn for_features(&self, features: u64) -> &[u8] {
        if features & FEATURE_SERVER_TENTACLE != 0 {
            &self.v10
        } else {
            &self.v9
        }
    }
}

struct Out(Mutex<std::io::Stdout>);

impl Out {
    fn event(&self, v: Value) {
        if let Ok(mut o) = self.0.lock() {
            let _ = writeln!(o, "{v}");
            let _ = o.flush();
        }
    }
}

/// One core's dispatcher: reports events, answers MMonGetMap, counts ended connections.
struct MonEndpoint {
    out: Arc<Out>,
    /// The encoded MMonMap fronts, set once the bound addresses are known (before the
    /// "listening" line, so before any client can know where to connect).
    monmap: Arc<OnceLock<MonMapFronts>>,
    ended: Arc<AtomicU64>,
    max_connections: Option<u64>,
    done: Sender<()>,
}

fn peer(conn: &ConnHandle) -> String {
    conn.peer_socket()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

impl Dispatcher for MonEndpoint {
    fn on_accept(&mut self, conn: &ConnHandle, info: &PeerInfo) {
        self.out.event(json!({
            "event": "accepted",
            "peer": peer(conn),
            "peer_name": info.name.as_ref().map(|n| n.to_string()),
            "peer_type": info.entity_type.as_str(),
            "peer_addrs": info.addrs.to_string(),
            "revision": match info.revision { msgr2_codec::Revision::Rev0 => "msgr2.0", msgr2_codec::Revision::Rev1 => "msgr2.1" },
            "mode": if info.con_mode == CON_MODE_SECURE { "secure" } else { "crc" },
            "auth": if info.auth_method == AUTH_CEPHX { "cephx" } else { "none" },
            "global_id": info.global_id,
        }));
    }

    fn on_message(&mut self, conn: &ConnHandle, m: Message) {
        self.out.event(json!({
            "event": "message",
            "peer": peer(conn),
            "type": m.header.msg_type,
            "type_name": msg_type_name(m.header.msg_type),
            "seq": m.header.seq,
            "tid": m.header.tid,
            "front_len": m.front.len(),
            "middle_len": m.middle.len(),
            "data_len": m.data.len(),
        }));
        if m.header.msg_type == MSG_MON_GET_MAP {
            let Some(fronts) = self.monmap.get() else {
                return;
            };
            let features = conn.peer_info().map_or(0, |i| i.features);
            let reply = Message {
                header: MMonMap::header(0),
                front: fronts.for_features(features).to_vec(),
                ..Default::default()
            };
            // A failure to queue means the connection is already closed; its reset is (or
            // was) reported by `on_reset`.
            let _ = conn.send(reply);
        }
    }

    fn on_keepalive(&mut self, conn: &ConnHandle, _stamp: UTime) {
        self.out
            .event(json!({"event": "keepalive", "peer": peer(conn)}));
    }

    fn on_accept_failed(&mut self, peer: Option<SocketAddr>, error: &msgr2_engine::ConnError) {
        let peer = peer.map(|s| s.to_string()).unwrap_or_default();
        self.out
            .event(json!({"event": "handshake_failed", "peer": peer, "error": error.to_string()}));
        self.ended();
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        self.out
            .event(json!({"event": "reset", "peer": peer(conn), "error": error.to_string()}));
        self.ended();
    }
}

impl MonEndpoint {
    /// Counts a connection that ended; the last one allowed by --max-connections stops us.
    fn ended(&self) {
        let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_connections.is_some_and(|max| ended >= max) {
            let _ = self.done.send(());
        }
    }
}

/// Runs the server until killed (or `--max-connections` have ended).
/// `ceph` holds Ceph's flags (`-c`, `--cluster`, `--OPTION VALUE`, `CEPH_ARGS`): the conf
/// they find names the admin socket when `--admin-socket` does not.
pub fn run(a: ServerArgs, ceph: &CephArgs) -> Result<(), String> {
    let _ = a.events;
    let name: EntityName = a.name.parse().map_err(|e| format!("--name: {e}"))?;
    let admin_socket = crate::asok::from_flag_or_conf(a.admin_socket.as_deref(), ceph, &name)
        .map_err(|e| e.to_string())?;
    let listen: EntityAddrVec = a
        .listen
        .parse()
        .map_err(|e| format!("--listen {:?}: {e}", a.listen))?;
    let v2 = *listen.msgr2().ok_or_else(|| {
        format!(
            "--listen {:?} has no v2 address (msgr1 is not supported)",
            a.listen
        )
    })?;
    let sock = v2
        .sock
        .ok_or_else(|| format!("--listen {:?}: no IP/port", a.listen))?;
    let fsid: Uuid = a.fsid.parse().map_err(|e| format!("--fsid: {e}"))?;
    let mut auth_policy = MonAuthPolicy::default();
    let provider: Arc<dyn ServerAuthProvider> = match &a.keyring {
        Some(path) => {
            let keyring =
                Keyring::load(path).map_err(|e| format!("keyring {}: {e}", path.display()))?;
            auth_policy = policy_for(&keyring);
            // Entries whose key we cannot use were left out; say so (the library only logs it).
            for u in keyring.unusable() {
                eprintln!(
                    "msgr2: keyring {}: skipping [{}] (line {}): {}",
                    path.display(),
                    u.name,
                    u.line,
                    u.error
                );
            }
            let ctx = MonServerContext::new(Arc::new(keyring))
                .map_err(|e| format!("keyring {}: {e}", path.display()))?;
            Arc::new(CephxServerProvider::new(Arc::new(ctx)))
        }
        None => Arc::new(NoneServerProvider::new(4100)),
    };

    let out = Arc::new(Out(Mutex::new(std::io::stdout())));
    let monmap_front = Arc::new(OnceLock::new());
    let ended = Arc::new(AtomicU64::new(0));
    let (done, finished) = channel();
    let mut b = MessengerBuilder::new(name.clone())
        // Only the v2 address is ours to bind; any other entry of --listen is advertised as
        // given (msgr1 is not implemented).
        .bind(EntityAddrVec(vec![EntityAddr::new(AddrType::Msgr2, sock, 0)]).to_string())
        .gid(name.num().unwrap_or(0))
        .server_auth(provider)
        .handshake_timeout(Duration::from_secs(a.handshake_timeout))
        // A peer that asks and never reads its replies is dropped at this bound.
        .send_queue_limit(SEND_QUEUE_MESSAGES, SEND_QUEUE_BYTES)
        .spin_before_park(None)
        .arena_size(ARENA_BYTES)
        .arena_fallback(true);
    if let Some(m) = &a.mode {
        b = b.modes(ModeConfig::all(
            parse_modes(m).map_err(|e| format!("--mode: {e}"))?,
        ));
    }
    let factory = {
        let (out, monmap, ended) = (out.clone(), monmap_front.clone(), ended.clone());
        let max_connections = a.max_connections;
        move |_cpu| {
            Box::new(MonEndpoint {
                out: out.clone(),
                monmap: monmap.clone(),
                ended: ended.clone(),
                max_connections,
                done: done.clone(),
            }) as Box<dyn Dispatcher>
        }
    };
    if let Some(p) = &admin_socket {
        let mut extra = crate::asok::process_options(&name);
        if let Some(k) = &a.keyring {
            extra.push(("keyring".into(), k.display().to_string()));
            extra.push(("auth_service_required".into(), "cephx".into()));
        } else {
            extra.push(("auth_service_required".into(), "none".into()));
        }
        extra.push(("fsid".into(), a.fsid.clone()));
        b = b.admin_socket(crate::asok::expand(p, &name), "server", extra);
    }
    let messenger: Messenger = b.dispatcher(factory).start().map_err(|e| e.to_string())?;

    // The vector we hand out: --listen with its v2 entry (port 0 resolved) as bound.
    let bound = messenger.addrs().msgr2().and_then(|a| a.sock);
    let mut addrs = listen;
    for x in addrs.0.iter_mut() {
        if x.ty == AddrType::Msgr2 && x.sock == Some(sock) {
            x.sock = bound.or(x.sock);
        }
    }
    let mon_id = if name.id.is_empty() {
        "a".to_owned()
    } else {
        name.id.clone()
    };
    let monmap = MonMap {
        fsid,
        epoch: 1,
        last_changed: now(),
        created: now(),
        mon_info: BTreeMap::from([(
            mon_id.clone(),
            MonInfo {
                name: mon_id.clone(),
                public_addrs: addrs.clone(),
                ..Default::default()
            },
        )]),
        ranks: vec![mon_id],
        min_mon_release: 16,
        election_strategy: 1,
        ..Default::default()
    };
    let v9 = MMonMap::from_monmap(&monmap).front_bytes();
    let monmap = MonMap {
        min_mon_release: 20,
        auth: Some(auth_policy),
        ..monmap
    };
    let v10 = MMonMap::from_monmap(&monmap).front_bytes();
    let _ = monmap_front.set(MonMapFronts { v9, v10 });
    if let Some(asok) = messenger.admin_socket() {
        // Known once bound: the address vector we hand out, as Ceph's mon_host would list us.
        asok.set_option("mon_host", &addrs.to_string());
        asok.set_option("public_addrv", &addrs.to_string());
    }
    out.event(json!({"event": "listening", "addrs": addrs.to_string(), "name": name.to_string()}));
    // Returns when --max-connections have ended (or, without it, only if every reactor
    // stopped, which drops the senders).
    let _ = finished.recv();
    messenger.shutdown();
    Ok(())
}

fn now() -> UTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UTime {
        sec: d.as_secs() as u32,
        nsec: d.subsec_nanos(),
    }
}

/// The cephx policy a Ceph 20 monitor with these keys would hand out: the key types present
/// are the allowed ciphers (Tentacle's defaults, aes256k only, for an empty keyring), and the
/// strongest of them is preferred and used for service tickets (as `MonServerContext` makes
/// aes256k service secrets when any key is aes256k).
fn policy_for(keyring: &Keyring) -> MonAuthPolicy {
    let mut allowed: Vec<u32> = keyring
        .iter()
        .map(|e| u32::from(e.key.key_type().as_u16()))
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    match allowed.last() {
        Some(&best) => MonAuthPolicy {
            auth_epoch: 0,
            service_cipher: best,
            preferred_cipher: best,
            allowed_ciphers: allowed,
        },
        None => MonAuthPolicy::default(),
    }
}
