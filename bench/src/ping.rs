//! `msgr2 ping`: connect to a real monitor, fetch the monmap, print it and what was
//! negotiated; optionally go on to an OSD with a service ticket and exchange a KEEPALIVE2.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::EntityAddr;
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::messages::{MMonGetMap, MMonMap, MessageFront, MSG_MON_MAP};
use msgr2_codec::monhost::parse_mon_host;
use msgr2_codec::payload::{AUTH_CEPHX, AUTH_NONE, CON_MODE_SECURE};
use msgr2_crypto::auth::NoneClientProvider;
use msgr2_crypto::cephx::{CephxClientProvider, TicketStore};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::blocking::BlockingConnection;
use msgr2_proto::config::parse_modes;
use msgr2_proto::{Config, Event, Message, ModeConfig, PeerInfo};

/// Options of `msgr2 ping`.
#[derive(clap::Args, Debug)]
pub struct PingArgs {
    /// Monitor address, in any form `mon_host` accepts (`127.0.0.1`, `v2:127.0.0.1:3300`,
    /// `[v2:…,v1:…]`, several separated by commas/spaces).
    #[arg(long)]
    mon: String,
    /// Entity name to authenticate as.
    #[arg(long, default_value = "client.admin")]
    name: String,
    /// Keyring holding the name's key; without one, auth none is used.
    #[arg(long)]
    keyring: Option<PathBuf>,
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

/// Runs the command; the error is one line for the user.
pub fn run(a: PingArgs) -> Result<(), String> {
    let name: EntityName = a.name.parse().map_err(|e| format!("--name: {e}"))?;
    let mut config = Config::new(name.clone());
    if let Some(m) = &a.mode {
        config.modes = ModeConfig::all(parse_modes(m).map_err(|e| format!("--mode: {e}"))?);
    }
    match a.rev {
        1 => {}
        0 => {
            config.banner = Banner {
                supported: 0,
                required: 0,
            }
        }
        other => return Err(format!("--rev {other}: expected 0 or 1")),
    }
    let store = TicketStore::new();
    config.client_auth = Some(match &a.keyring {
        Some(path) => {
            let keyring =
                Keyring::load(path).map_err(|e| format!("keyring {}: {e}", path.display()))?;
            Arc::new(
                CephxClientProvider::from_keyring(&keyring, name.clone(), store.clone())
                    .map_err(|e| format!("keyring {}: {e}", path.display()))?,
            )
        }
        None => Arc::new(NoneClientProvider { name: name.clone() }),
    });
    let config = Arc::new(config);
    let timeout = Duration::from_secs(a.timeout);

    let mons = parse_mon_host(&a.mon).map_err(|e| format!("--mon {:?}: {e}", a.mon))?;
    let targets: Vec<EntityAddr> = mons.iter().filter_map(|v| v.msgr2().copied()).collect();
    if targets.is_empty() {
        return Err(format!(
            "--mon {:?} has no msgr2 (v2) address; msgr1 is not supported",
            a.mon
        ));
    }
    let mut last_err = String::new();
    let mut global_seq = 0;
    for target in targets {
        global_seq += 1;
        let started = Instant::now();
        match BlockingConnection::connect(
            config.clone(),
            target,
            EntityType::Mon,
            global_seq,
            timeout,
        ) {
            Ok((mut conn, info)) => {
                let monmap =
                    fetch_monmap(&mut conn, timeout).map_err(|e| format!("mon {target}: {e}"))?;
                print!("{monmap}");
                println!(
                    "{} ({:.1} ms)",
                    describe(&format!("mon {target}"), &info),
                    started.elapsed().as_secs_f64() * 1e3
                );
                if let Some(osd) = &a.osd {
                    ping_osd(config.clone(), osd, global_seq + 1, timeout)?;
                }
                return Ok(());
            }
            Err(e) => last_err = format!("mon {target}: {e}"),
        }
    }
    Err(last_err)
}

fn fetch_monmap(
    conn: &mut BlockingConnection,
    timeout: Duration,
) -> Result<msgr2_codec::messages::MonMap, String> {
    conn.send(Message {
        header: MMonGetMap::header(0),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.next_event(left).map_err(|e| e.to_string())? {
            Event::Message(m) if m.header.msg_type == MSG_MON_MAP => {
                let mm = MMonMap::decode_front(&m.front, m.header.version)
                    .map_err(|e| format!("MMonMap: {e}"))?;
                return mm.decode_monmap().map_err(|e| format!("monmap: {e}"));
            }
            _ => continue,
        }
    }
}

fn ping_osd(
    config: Arc<Config>,
    osd: &str,
    global_seq: u64,
    timeout: Duration,
) -> Result<(), String> {
    let target: EntityAddr = osd.parse().map_err(|e| format!("--osd {osd:?}: {e}"))?;
    let started = Instant::now();
    let (mut conn, info) =
        BlockingConnection::connect(config, target, EntityType::Osd, global_seq, timeout)
            .map_err(|e| format!("osd {target}: {e}"))?;
    let stamp = conn.keepalive().map_err(|e| format!("osd {target}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn
            .next_event(left)
            .map_err(|e| format!("osd {target}: {e}"))?
        {
            Event::KeepaliveAck(s) if s == stamp => break,
            _ => continue,
        }
    }
    println!(
        "{} keepalive2 acked ({:.1} ms)",
        describe(&format!("osd.{} {target}", info.gid), &info),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
