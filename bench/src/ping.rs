//! `msgr2 ping`: connect to a real monitor, fetch the monmap, print it and what was
//! negotiated; optionally go on to an OSD with a service ticket and exchange a KEEPALIVE2.
//!
//! It runs on the io_uring engine: a one-core [`Messenger`] (parking at once when idle, a
//! small arena that falls back to unregistered memory under a tight `RLIMIT_MEMLOCK`) whose
//! dispatcher forwards events to this thread, which waits for each step with `--timeout`.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::messages::{MMonGetMap, MMonMap, MessageFront, MonMap, MSG_MON_MAP};
use msgr2_codec::monhost::parse_mon_host;
use msgr2_codec::payload::{UTime, AUTH_CEPHX, AUTH_NONE, CON_MODE_SECURE};
use msgr2_conf::ResolvedConf;
use msgr2_crypto::auth::{ClientAuthProvider, NoneClientProvider};
use msgr2_crypto::cephx::{CephxClientProvider, TicketStore};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::{ConnHandle, Dispatcher, Messenger, MessengerBuilder};
use msgr2_proto::config::parse_modes;
use msgr2_proto::{Message, ModeConfig, PeerInfo};

/// Arena per core: plenty for a monmap and a keepalive, small enough to lock under the
/// default 8 MiB `RLIMIT_MEMLOCK` (and the fallback covers anything tighter).
const ARENA_BYTES: usize = 1 << 20;
/// The engine's own handshake deadline is kept behind ours, so that a slow peer is reported
/// by this command's "timed out" rather than as a protocol fault.
const ENGINE_TIMEOUT_SLACK: Duration = Duration::from_secs(5);

/// Options of `msgr2 ping`.
#[derive(clap::Args, Debug)]
pub struct PingArgs {
    /// Monitor address, in any form `mon_host` accepts (`127.0.0.1`, `v2:127.0.0.1:3300`,
    /// `[v2:…,v1:…]`, several separated by commas/spaces); default: `mon_host` from the
    /// conf (`-m` is Ceph's spelling). The entity (`-n/--name`, `-i/--id`, default
    /// `client.admin`) and keyring (`-k/--keyring`, else the conf's `keyring` search list;
    /// none found: auth none) come from Ceph's flags and conf.
    #[arg(long)]
    mon: Option<String>,
    /// Connection modes in preference order (`crc`, `secure`, `secure,crc`); default: Ceph's.
    #[arg(long)]
    mode: Option<String>,
    /// Framing revision to offer: 1 (msgr2.1) or 0 (msgr2.0 only).
    #[arg(long, default_value_t = 1)]
    rev: u8,
    /// Also connect to this OSD (its exact v2 address with nonce, as `ceph osd dump` shows)
    /// using a service ticket from the monitor, and exchange a KEEPALIVE2.
    #[arg(long)]
    osd: Option<String>,
    /// Seconds to wait for each step.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn rev_name(r: Revision) -> &'static str {
    match r {
        Revision::Rev0 => "msgr2.0",
        Revision::Rev1 => "msgr2.1",
    }
}

fn mode_name(m: u32) -> &'static str {
    if m == CON_MODE_SECURE {
        "secure"
    } else {
        "crc"
    }
}

fn method_name(m: u32) -> &'static str {
    match m {
        AUTH_CEPHX => "cephx",
        AUTH_NONE => "none",
        _ => "unknown",
    }
}

fn describe(what: &str, info: &PeerInfo) -> String {
    format!(
        "{what}: revision {} mode {} auth {} global_id {} features {:#x}",
        rev_name(info.revision),
        mode_name(info.con_mode),
        method_name(info.auth_method),
        info.global_id,
        info.features
    )
}

/// What the dispatcher forwards to the waiting thread, tagged with the connection id.
enum Ev {
    Ready(u64, PeerInfo),
    Message(u64, Message),
    KeepaliveAck(u64, UTime),
    /// Reset, or a fault the engine would retry: either way this attempt failed.
    Failed(u64, String),
}

/// Forwards events to the thread running the command.
struct Fwd(Sender<Ev>);

impl Dispatcher for Fwd {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let _ = self.0.send(Ev::Message(conn.id(), msg));
    }
    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready(conn.id(), peer.clone()));
    }
    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Failed(conn.id(), error.to_string()));
    }
    fn on_fault(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Failed(conn.id(), error.to_string()));
    }
    fn on_keepalive_ack(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = self.0.send(Ev::KeepaliveAck(conn.id(), stamp));
    }
}

/// The running messenger and its event stream.
struct Client {
    messenger: Messenger,
    rx: Receiver<Ev>,
    timeout: Duration,
}

impl Client {
    fn start(
        name: EntityName,
        modes: Option<ModeConfig>,
        banner: Banner,
        auth: Arc<dyn ClientAuthProvider>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (tx, rx) = channel();
        let mut b = MessengerBuilder::new(name)
            .client_auth(auth)
            .banner(banner)
            .handshake_timeout(timeout + ENGINE_TIMEOUT_SLACK)
            .spin_before_park(None)
            .arena_size(ARENA_BYTES)
            .arena_fallback(true)
            .dispatcher(move |_cpu| Box::new(Fwd(tx.clone())));
        if let Some(m) = modes {
            b = b.modes(m);
        }
        // One reactor is plenty for two connections; any core this process may use will do.
        if let Some(core) = core_affinity::get_core_ids()
            .unwrap_or_default()
            .first()
            .map(|c| c.id)
        {
            b = b.cores(vec![core]);
        }
        let messenger = b.start().map_err(|e| e.to_string())?;
        Ok(Self {
            messenger,
            rx,
            timeout,
        })
    }

    /// Waits up to the timeout for an event of `conn` that `f` accepts. A reset or fault of
    /// `conn` is its error: a one-shot probe reports the cause rather than let the engine
    /// redial.
    fn wait<T>(&self, conn: &ConnHandle, mut f: impl FnMut(Ev) -> Option<T>) -> Result<T, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match self.rx.recv_timeout(left) {
                Ok(ev) => ev,
                Err(_) => {
                    conn.mark_down();
                    return Err(format!(
                        "timed out after {:?} waiting for the peer",
                        self.timeout
                    ));
                }
            };
            let id = match &ev {
                Ev::Ready(id, _) | Ev::Message(id, _) | Ev::KeepaliveAck(id, _) => *id,
                Ev::Failed(id, _) => *id,
            };
            if id != conn.id() {
                continue;
            }
            if let Ev::Failed(_, e) = ev {
                conn.mark_down();
                return Err(e);
            }
            if let Some(t) = f(ev) {
                return Ok(t);
            }
        }
    }

    /// Connects to `target` and waits for the handshake.
    fn connect(
        &self,
        target: EntityAddr,
        peer_type: EntityType,
    ) -> Result<(ConnHandle, PeerInfo), String> {
        let conn = self
            .messenger
            .connect(&EntityAddrVec(vec![target]), peer_type)
            .map_err(|e| e.to_string())?;
        let info = self.wait(&conn, |ev| match ev {
            Ev::Ready(_, info) => Some(info),
            _ => None,
        })?;
        Ok((conn, info))
    }
}

/// Runs the command; the error is one line for the user.
pub fn run(a: PingArgs, conf: &ResolvedConf) -> Result<(), String> {
    let name: EntityName = conf
        .entity
        .name()
        .parse()
        .map_err(|e| format!("--name: {e}"))?;
    let modes = match &a.mode {
        Some(m) => Some(ModeConfig::all(
            parse_modes(m).map_err(|e| format!("--mode: {e}"))?,
        )),
        None => Some(conf.modes().map_err(|e| e.to_string())?),
    };
    let keyring_path = conf.keyring_path();
    let banner = match a.rev {
        1 => Banner::OURS,
        0 => Banner {
            supported: 0,
            required: 0,
        },
        other => return Err(format!("--rev {other}: expected 0 or 1")),
    };
    // One provider (one ticket store) for every connection: the OSD's service ticket comes
    // from the monitor login.
    let auth: Arc<dyn ClientAuthProvider> = match &keyring_path {
        Some(path) => {
            let keyring =
                Keyring::load(path).map_err(|e| format!("keyring {}: {e}", path.display()))?;
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
            Arc::new(
                CephxClientProvider::from_keyring(&keyring, name.clone(), TicketStore::new())
                    .map_err(|e| format!("keyring {}: {e}", path.display()))?,
            )
        }
        None => Arc::new(NoneClientProvider::new(name.clone())),
    };
    let timeout = Duration::from_secs(a.timeout);

    let mon = match &a.mon {
        Some(m) => m.clone(),
        None => conf.get("mon_host").unwrap_or_default(),
    };
    if mon.trim().is_empty() {
        return Err("no monitor: pass --mon or -m, or set mon_host in the conf".to_owned());
    }
    let mons = parse_mon_host(&mon).map_err(|e| format!("mon_host {mon:?}: {e}"))?;
    let targets: Vec<EntityAddr> = mons.iter().filter_map(|v| v.msgr2().copied()).collect();
    if targets.is_empty() {
        return Err(format!(
            "mon_host {mon:?} has no msgr2 (v2) address; msgr1 is not supported"
        ));
    }
    let osd = match &a.osd {
        Some(osd) => Some(
            osd.parse::<EntityAddr>()
                .map_err(|e| format!("--osd {osd:?}: {e}"))?,
        ),
        None => None,
    };
    let client = Client::start(name, modes, banner, auth, timeout)?;
    let mut last_err = String::new();
    for target in targets {
        let started = Instant::now();
        match client.connect(target, EntityType::Mon) {
            Ok((conn, info)) => {
                let monmap =
                    fetch_monmap(&client, &conn).map_err(|e| format!("mon {target}: {e}"))?;
                print!("{monmap}");
                println!(
                    "{} ({:.1} ms)",
                    describe(&format!("mon {target}"), &info),
                    started.elapsed().as_secs_f64() * 1e3
                );
                if let Some(osd) = osd {
                    ping_osd(&client, osd)?;
                }
                client.messenger.shutdown();
                return Ok(());
            }
            Err(e) => last_err = format!("mon {target}: {e}"),
        }
    }
    Err(last_err)
}

fn fetch_monmap(client: &Client, conn: &ConnHandle) -> Result<MonMap, String> {
    conn.send(Message {
        header: MMonGetMap::header(0),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let m = client.wait(conn, |ev| match ev {
        Ev::Message(_, m) if m.header.msg_type == MSG_MON_MAP => Some(m),
        _ => None,
    })?;
    let mm =
        MMonMap::decode_front(&m.front, m.header.version).map_err(|e| format!("MMonMap: {e}"))?;
    mm.decode_monmap().map_err(|e| format!("monmap: {e}"))
}

fn ping_osd(client: &Client, target: EntityAddr) -> Result<(), String> {
    let started = Instant::now();
    let (conn, info) = client
        .connect(target, EntityType::Osd)
        .map_err(|e| format!("osd {target}: {e}"))?;
    let stamp = conn.keepalive().map_err(|e| format!("osd {target}: {e}"))?;
    client
        .wait(&conn, |ev| match ev {
            Ev::KeepaliveAck(_, s) if s == stamp => Some(()),
            _ => None,
        })
        .map_err(|e| format!("osd {target}: {e}"))?;
    println!(
        "{} keepalive2 acked ({:.1} ms)",
        describe(&format!("osd.{} {target}", info.gid), &info),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
