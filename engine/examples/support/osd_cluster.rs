//! `osd_daemon --cluster CONF [--name osd.N] [--listen ADDR] [--mode crc|secure] [--for SECS]`:
//! the daemon as a member of a real cluster. It logs in to the cluster's mon as `osd.N` with
//! its keyring, fetches the rotating OSD secrets and keeps them fresh (as well as its own
//! tickets) on a renewal thread, and serves clients holding OSD tickets the real mon issued
//! on its public address (answering each `MOSDOp` with an empty `MOSDOpReply`). When the
//! conf sets `admin socket` for it, it serves Ceph's admin socket there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_conf::{ConfFile, Entity, ResolveOptions, ResolvedConf};
use msgr2_crypto::cephx::{RotatingKeyring, RotatingServerProvider};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::mon_auth::MonAuthSession;
use msgr2_engine::{
    ConnHandle, Dispatcher, Message, MessengerBuilder, ModeConfig, PeerInfo, Policy,
};

/// What the daemon takes from its conf.
struct ClusterConf {
    /// `mon_host`.
    mons: Vec<EntityAddrVec>,
    /// The first existing file of the `keyring` list.
    keyring: PathBuf,
    /// `admin socket`, when the conf sets it.
    admin_socket: Option<String>,
}

/// `mon_host`, the keyring path and the admin socket for `name` from the conf file `path`,
/// resolved as a Ceph daemon does (sections `[osd.N]`, `[osd]`, `[global]`, metavariables,
/// the `keyring` search list).
fn read_cluster_conf(
    path: &str,
    name: &EntityName,
) -> Result<ClusterConf, Box<dyn std::error::Error>> {
    let file = ConfFile::load(Path::new(path))?;
    let conf = ResolvedConf::from_file(
        file,
        "ceph",
        Entity::parse(&name.to_string())?,
        ResolveOptions { daemon: true },
    );
    let keyring = conf
        .keyring_path()
        .ok_or_else(|| format!("{path}: no existing keyring for {name}"))?;
    Ok(ClusterConf {
        mons: conf.mon_addrs()?,
        keyring,
        admin_socket: conf.explicit("admin_socket"),
    })
}

struct Serve;

impl Dispatcher for Serve {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        if msg.header.msg_type == super::OSD_OP {
            let _ = conn.send(super::reply(super::OSD_OPREPLY, msg.header.tid));
        }
    }
    fn on_accept(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        println!(
            "client {} ready (global_id {}, mode {})",
            peer.name
                .as_ref()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            peer.global_id,
            if peer.con_mode == CON_MODE_SECURE {
                "secure"
            } else {
                "crc"
            }
        );
    }
}

fn flag<'a>(args: &'a [String], f: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == f)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Runs the cluster mode with the arguments after `--cluster`.
pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let conf = args.first().ok_or("--cluster needs a conf file")?;
    let name: EntityName = flag(args, "--name").unwrap_or("osd.0").parse()?;
    let listen = flag(args, "--listen").unwrap_or("v2:127.0.0.1:0");
    let mode = match flag(args, "--mode").unwrap_or("crc") {
        "secure" => CON_MODE_SECURE,
        _ => CON_MODE_CRC,
    };
    let run_for = flag(args, "--for").map(str::parse::<u64>).transpose()?;
    let cc = read_cluster_conf(conf, &name)?;
    let mons: EntityAddrVec = EntityAddrVec(
        cc.mons
            .iter()
            .filter_map(|v| v.msgr2().copied())
            .take(1)
            .collect(),
    );
    let keyring = Keyring::load(&cc.keyring)?;
    let rotating = RotatingKeyring::new(EntityType::Osd);
    let session = Arc::new(MonAuthSession::connect(
        MessengerBuilder::new(name.clone()),
        name.clone(),
        &keyring,
        &mons,
        EntityType::Mon as u32 | EntityType::Osd as u32 | EntityType::Mgr as u32,
        Some(rotating.clone()),
        Duration::from_secs(30),
    )?);
    let renewer = session.spawn_renewer(Duration::from_secs(1), Duration::from_secs(5));
    let mut public = MessengerBuilder::new(name.clone());
    if let Some(path) = &cc.admin_socket {
        // as a Ceph daemon: the socket its conf names (metavariables already expanded)
        println!("admin socket {path}");
        let extra = vec![("mon_host".to_owned(), mons.to_string())];
        public = public.admin_socket(path, "client", extra);
    }
    let public = public
        .policy(EntityType::Client, Policy::stateless_server(0))
        .modes(ModeConfig {
            service: vec![mode],
            ..ModeConfig::default()
        })
        .bind(listen)
        .server_auth(Arc::new(RotatingServerProvider::new(rotating.clone())))
        .dispatcher(|_| Box::new(Serve))
        .start()?;
    println!(
        "{name} public {}; rotating secrets {:?}",
        public.addrs(),
        rotating.secret_ids()
    );
    let t0 = Instant::now();
    let mut ids = rotating.secret_ids();
    while run_for.is_none_or(|s| t0.elapsed() < Duration::from_secs(s)) {
        std::thread::sleep(Duration::from_millis(500));
        let now = rotating.secret_ids();
        if now != ids {
            println!("rotating secrets {now:?}");
            ids = now;
        }
        for e in rotating.rejections() {
            println!("refused: {e}");
        }
    }
    renewer.stop();
    public.shutdown();
    if let Ok(s) = Arc::try_unwrap(session) {
        s.shutdown();
    }
    Ok(())
}
