//! `msgr2 server`: accept connections as a mon-style endpoint and print one JSON line per
//! event. It answers MMonGetMap with a monmap naming itself, so a real `ceph` client gets
//! past its first request; everything else is only reported.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityName;
use msgr2_codec::messages::{MMonMap, MessageFront, MonInfo, MonMap, Uuid, MSG_MON_GET_MAP};
use msgr2_codec::msg::msg_type_name;
use msgr2_codec::payload::{UTime, AUTH_CEPHX, CON_MODE_SECURE};
use msgr2_crypto::auth::{NoneServerProvider, ServerAuthProvider};
use msgr2_crypto::cephx::{CephxServerProvider, MonServerContext};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::blocking::BlockingConnection;
use msgr2_proto::config::parse_modes;
use msgr2_proto::{Config, Event, Message, ModeConfig};
use serde_json::{json, Value};

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

/// Runs the server until killed (or `--max-connections` have ended).
pub fn run(a: ServerArgs) -> Result<(), String> {
    let _ = a.events;
    let name: EntityName = a.name.parse().map_err(|e| format!("--name: {e}"))?;
    let mut addrs: EntityAddrVec = a
        .listen
        .parse()
        .map_err(|e| format!("--listen {:?}: {e}", a.listen))?;
    let v2 = *addrs.msgr2().ok_or_else(|| {
        format!(
            "--listen {:?} has no v2 address (msgr1 is not supported)",
            a.listen
        )
    })?;
    let sock = v2
        .sock
        .ok_or_else(|| format!("--listen {:?}: no IP/port", a.listen))?;
    let listener = TcpListener::bind(sock).map_err(|e| format!("bind {sock}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("bind {sock}: {e}"))?;
    for x in addrs.0.iter_mut() {
        if x.sock.is_some_and(|s| s.port() == 0 || s == sock) {
            *x = EntityAddr {
                sock: Some(bound),
                ..*x
            };
        }
    }
    let fsid: Uuid = a.fsid.parse().map_err(|e| format!("--fsid: {e}"))?;

    let mut config = Config::new(name.clone());
    config.gid = name.num().unwrap_or(0);
    config.my_addrs = addrs.clone();
    config.ready_timeout_secs = a.handshake_timeout;
    if let Some(m) = &a.mode {
        config.modes = ModeConfig::all(parse_modes(m).map_err(|e| format!("--mode: {e}"))?);
    }
    let provider: Arc<dyn ServerAuthProvider> = match &a.keyring {
        Some(path) => {
            let keyring =
                Keyring::load(path).map_err(|e| format!("keyring {}: {e}", path.display()))?;
            let ctx = MonServerContext::new(Arc::new(keyring))
                .map_err(|e| format!("keyring {}: {e}", path.display()))?;
            Arc::new(CephxServerProvider::new(Arc::new(ctx)))
        }
        None => Arc::new(NoneServerProvider::new(4100)),
    };
    config.server_auth = Some(provider);
    let config = Arc::new(config);

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
    let monmap = Arc::new(MMonMap::from_monmap(&monmap).front_bytes());

    let out = Arc::new(Out(Mutex::new(std::io::stdout())));
    out.event(json!({"event": "listening", "addrs": addrs.to_string(), "name": name.to_string()}));
    let global_seq = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                out.event(json!({"event": "accept_error", "error": e.to_string()}));
                continue;
            }
        };
        let peer = stream.peer_addr().map_err(|e| e.to_string())?;
        let (config, out, gs, ended, monmap) = (
            config.clone(),
            out.clone(),
            global_seq.clone(),
            ended.clone(),
            monmap.clone(),
        );
        threads.push(std::thread::spawn(move || {
            serve(
                config,
                stream,
                peer,
                gs.fetch_add(1, Ordering::Relaxed) + 1,
                &out,
                &monmap,
            );
            ended.fetch_add(1, Ordering::Relaxed);
        }));
        if let Some(max) = a.max_connections {
            if threads.len() as u64 >= max {
                break;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
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

fn serve(
    config: Arc<Config>,
    stream: std::net::TcpStream,
    peer: std::net::SocketAddr,
    gs: u64,
    out: &Out,
    monmap: &[u8],
) {
    // A peer that stops reading must not pin this thread forever: writes give up after the
    // handshake timeout and the connection is reset.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(config.ready_timeout_secs.max(1))));
    let (mut conn, info) = match BlockingConnection::accept(
        config,
        stream,
        peer,
        gs,
        Duration::from_secs(30),
    ) {
        Ok(x) => x,
        Err(e) => {
            out.event(json!({"event": "handshake_failed", "peer": peer.to_string(), "error": e.to_string()}));
            return;
        }
    };
    out.event(json!({
        "event": "accepted",
        "peer": peer.to_string(),
        "peer_name": info.name.as_ref().map(|n| n.to_string()),
        "peer_type": info.entity_type.as_str(),
        "peer_addrs": info.addrs.to_string(),
        "revision": match info.revision { msgr2_codec::Revision::Rev0 => "msgr2.0", msgr2_codec::Revision::Rev1 => "msgr2.1" },
        "mode": if info.con_mode == CON_MODE_SECURE { "secure" } else { "crc" },
        "auth": if info.auth_method == AUTH_CEPHX { "cephx" } else { "none" },
        "global_id": info.global_id,
    }));
    loop {
        match conn.next_event(Duration::from_secs(3600)) {
            Ok(Event::Message(m)) => {
                out.event(json!({
                    "event": "message",
                    "peer": peer.to_string(),
                    "type": m.header.msg_type,
                    "type_name": msg_type_name(m.header.msg_type),
                    "seq": m.header.seq,
                    "tid": m.header.tid,
                    "front_len": m.front.len(),
                    "middle_len": m.middle.len(),
                    "data_len": m.data.len(),
                }));
                if m.header.msg_type == MSG_MON_GET_MAP {
                    let reply = Message {
                        header: MMonMap::header(0),
                        front: monmap.to_vec(),
                        ..Default::default()
                    };
                    if let Err(e) = conn.send(reply) {
                        out.event(json!({"event": "reset", "peer": peer.to_string(), "error": e.to_string()}));
                        return;
                    }
                }
            }
            Ok(Event::Keepalive(_)) => {
                out.event(json!({"event": "keepalive", "peer": peer.to_string()}))
            }
            Ok(_) => {}
            Err(e) => {
                out.event(
                    json!({"event": "reset", "peer": peer.to_string(), "error": e.to_string()}),
                );
                return;
            }
        }
    }
}
