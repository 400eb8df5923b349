//! On-wire compression against real Ceph 20 (Tentacle), both directions, every method:
//!
//! * our messenger, identifying as an OSD, dials a real `ceph-osd`'s heartbeat (back)
//!   messenger and exchanges MOSDPing PING / PING_REPLY (both padded to
//!   `osd_heartbeat_min_size`, 2000 bytes, so over `ms_osd_compress_min_size`): the OSD, run
//!   with `ms_osd_compress_mode=force` and `debug_ms=20`, must log the negotiation and its
//!   (de)compression of our frames, and echo our ping stamps byte for byte;
//! * Ceph 20's `ceph_perf_msgr_client` (`--ms_osd_compress_mode=force`) dials our server
//!   (an OSD identity) and sends MOSDOp writes, compressed; their data must arrive intact.
//!
//! The cluster comes from `tests/ceph/cluster.sh start DIR --ceph 20` (see
//! `common::Cluster::start_on`). A missing Ceph 20 is a failure, not a skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Cluster;
use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::AUTH_NONE;
use msgr2_crypto::auth::{AuthResult, ServerAuth, ServerAuthProvider, ServerStep};
use msgr2_engine::{
    CompressMethod, CompressionConfig, ConnHandle, Dispatcher, Message, MessengerBuilder, PeerInfo,
};

const T: Duration = Duration::from_secs(30);
/// `MSG_OSD_PING`.
const MSG_OSD_PING: u16 = 70;
/// `CEPH_MSG_OSD_OP`.
const MSG_OSD_OP: u16 = 42;
const PING: u8 = 4;
const PING_REPLY: u8 = 5;

enum Ev {
    Ready(PeerInfo),
    Msg(Message),
    Reset(msgr2_engine::ConnError),
}

struct Fwd(Sender<Ev>);

impl Dispatcher for Fwd {
    fn on_message(&mut self, _: &ConnHandle, msg: Message) {
        let _ = self.0.send(Ev::Msg(msg));
    }
    fn on_connect(&mut self, _: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready(peer.clone()));
    }
    fn on_accept(&mut self, _: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready(peer.clone()));
    }
    fn on_reset(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Reset(error.to_owned()));
    }
}

/// Ceph's `DummyAuthClientServer` (what `ceph_perf_msgr_*` use): AUTH_NONE with an empty
/// payload, accepted as is. Our AUTH_NONE server insists on the real payload (mode, name,
/// global_id), so the perf client needs this stand-in.
struct DummyAuth;

impl ServerAuth for DummyAuth {
    fn method(&self) -> u32 {
        AUTH_NONE
    }
    fn request(&mut self, con_mode: u32, _: &[u8]) -> ServerStep {
        ServerStep::Done {
            payload: Vec::new(),
            result: AuthResult {
                global_id: 1,
                con_mode,
                ..Default::default()
            },
        }
    }
    fn request_more(&mut self, _: &[u8]) -> ServerStep {
        ServerStep::Reject(22)
    }
}

impl ServerAuthProvider for DummyAuth {
    fn methods(&self, _: EntityType) -> Vec<u32> {
        vec![AUTH_NONE]
    }
    fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn ServerAuth>> {
        Some(Box::new(DummyAuth))
    }
}

fn compression(methods: &str) -> CompressionConfig {
    let mut c = CompressionConfig::default();
    c.set("ms_osd_compress_mode", "force").unwrap();
    c.set("ms_osd_compression_algorithm", methods).unwrap();
    c
}

fn messenger(name: &str, comp: CompressionConfig) -> (MessengerBuilder, Receiver<Ev>) {
    let (tx, rx) = channel();
    let b = MessengerBuilder::new(name.parse().unwrap())
        .cores(vec![0])
        .arena_size(8 << 20)
        .auth_none()
        .compression(comp)
        .dispatcher(move |_| Box::new(Fwd(tx.clone())));
    (b, rx)
}

fn fsid_bytes(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    b
}

/// MOSDPing v5 front, padded to `min_size` as Ceph pads it.
fn osd_ping(fsid: [u8; 16], op: u8, stamp: (u32, u32), mono: (u32, u32), min_size: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&fsid);
    f.extend_from_slice(&1u32.to_le_bytes()); // map_epoch
    f.push(op);
    f.extend_from_slice(&stamp.0.to_le_bytes());
    f.extend_from_slice(&stamp.1.to_le_bytes());
    let pad = min_size.saturating_sub(f.len() as u32);
    f.extend_from_slice(&pad.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes()); // up_from
    f.extend_from_slice(&mono.0.to_le_bytes()); // mono_ping_stamp
    f.extend_from_slice(&mono.1.to_le_bytes());
    f.extend_from_slice(&[0u8; 8]); // mono_send_stamp
    f.push(0); // delta_ub: none
    f.resize(f.len() + pad as usize, 0);
    f
}

struct Ping {
    fsid: [u8; 16],
    op: u8,
    stamp: [u8; 8],
    mono: [u8; 8],
}

fn parse_ping(f: &[u8]) -> Ping {
    Ping {
        fsid: f[..16].try_into().unwrap(),
        op: f[20],
        stamp: f[21..29].try_into().unwrap(),
        mono: f[37..45].try_into().unwrap(),
    }
}

fn osd_dump(c: &Cluster) -> serde_json::Value {
    let out = c
        .run("ceph")
        .args(["osd", "dump", "-f", "json", "--connect-timeout", "20"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ceph osd dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn v2_addr(addrvec: &serde_json::Value) -> EntityAddrVec {
    let a = addrvec["addrvec"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "v2")
        .unwrap();
    format!("v2:{}/{}", a["addr"].as_str().unwrap(), a["nonce"])
        .parse()
        .unwrap()
}

fn log(c: &Cluster, file: &str) -> String {
    std::fs::read_to_string(c.dir.join("log").join(file)).unwrap_or_default()
}

#[test]
fn our_osd_identity_compresses_with_a_ceph20_osd() {
    let c = Cluster::start_on(
        20,
        "comp-osd",
        &[
            "--auth",
            "none",
            "--osd",
            "memstore",
            "--conf",
            "ms_osd_compress_mode=force",
            "--conf",
            "ms_osd_compression_algorithm=snappy zlib zstd lz4",
            "--conf",
            "debug_ms=20",
        ],
    );
    let dump = osd_dump(&c);
    let fsid = fsid_bytes(dump["fsid"].as_str().unwrap());
    let hb_back = v2_addr(&dump["osds"][0]["heartbeat_back_addrs"]);
    for (i, m) in CompressMethod::ALL.into_iter().enumerate() {
        let (b, rx) = messenger(&format!("osd.{}", 10 + i), compression(m.name()));
        let msgr = b.start().unwrap();
        let conn = msgr.connect(&hb_back, EntityType::Osd).unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let stamp = (now.as_secs() as u32, now.subsec_nanos());
        let mono = (1234 + i as u32, 567_890);
        let front = osd_ping(fsid, PING, stamp, mono, 2000);
        assert_eq!(front.len(), 2000 + 25);
        conn.send(Message::new(MSG_OSD_PING, 5, 4, front.clone()))
            .unwrap();
        let deadline = Instant::now() + T;
        let (mut info, mut reply) = (None, None);
        while reply.is_none() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ev::Ready(p)) => info = Some(p),
                Ok(Ev::Msg(m)) if m.header.msg_type == MSG_OSD_PING => reply = Some(m),
                Ok(Ev::Msg(_)) => {}
                Ok(Ev::Reset(e)) => panic!("{m}: reset: {e}"),
                Err(e) => panic!("{m}: no PING_REPLY: {e}\n{}", log(&c, "osd.0.log")),
            }
        }
        let info = info.unwrap();
        assert_eq!(info.compression, Some(m), "{m}: negotiated");
        assert_eq!(info.entity_type, EntityType::Osd);
        let reply = reply.unwrap();
        let r = parse_ping(&reply.front);
        assert_eq!(r.op, PING_REPLY, "{m}");
        assert_eq!(r.fsid, fsid);
        // Our stamps came back byte for byte, through both directions of compression.
        assert_eq!(r.stamp, front[21..29], "{m}: ping_stamp echoed");
        assert_eq!(r.mono, front[37..45], "{m}: mono_ping_stamp echoed");
        assert!(
            reply.front.len() >= 2000,
            "{m}: reply padded to osd_heartbeat_min_size: {}",
            reply.front.len()
        );
        msgr.shutdown();
    }
    // The OSD's own account.
    let osd = log(&c, "osd.0.log");
    for m in CompressMethod::ALL {
        let req = format!(
            "CompressionRequestFrame(is_compress=1, preferred_methods=[{}])",
            m as u32
        );
        assert!(osd.contains(&req), "OSD log lacks {req}");
        let pick = format!("Compressor(pick_method={m})");
        assert!(osd.contains(&pick), "OSD log lacks {pick}");
    }
    let rx_lines = osd
        .lines()
        .filter(|l| l.contains("decompress compressed.length()="))
        .count();
    let tx_lines = osd
        .lines()
        .filter(|l| l.contains("compress uncompressed.length()="))
        .count();
    assert!(
        rx_lines >= 4 && tx_lines >= 4,
        "OSD decompressed {rx_lines} and compressed {tx_lines} segments"
    );
}

/// Runs Ceph 20's `ceph_perf_msgr_client` against `addr` (8 MOSDOp writes of `len` zero
/// bytes, all in flight at once) asking for compression with `method`; returns its log.
fn perf_client(c: &Cluster, addr: std::net::SocketAddr, method: &str, len: usize) -> String {
    let logf = c.dir.join(format!("perf-client-{method}.log"));
    let _ = std::fs::remove_file(&logf);
    let out = c
        .run("ceph_perf_msgr_client")
        .args([
            &format!("v2:{addr}"),
            "1",
            "64",
            "8",
            "0",
            &len.to_string(),
            "--ms_osd_compress_mode=force",
            &format!("--ms_osd_compression_algorithm={method}"),
            "--debug_ms=20",
            &format!("--log_file={}", logf.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{method}: perf client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&logf).unwrap_or_default()
}

/// Waits for the connection and the MOSDOps that made it before the client shut down.
fn collect_ops(rx: &Receiver<Ev>, what: &str) -> (PeerInfo, Vec<Message>) {
    let deadline = Instant::now() + T;
    let (mut info, mut ops) = (None, Vec::new());
    while info.is_none() || ops.is_empty() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ev::Ready(p)) => info = Some(p),
            Ok(Ev::Msg(m)) => ops.push(m),
            Ok(Ev::Reset(_)) => {}
            Err(e) => panic!("{what}: {} ops: {e}", ops.len()),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(ev) = rx.try_recv() {
        if let Ev::Msg(m) = ev {
            ops.push(m);
        }
    }
    (info.unwrap(), ops)
}

/// Ceph's client (an entity of type client) asks an "OSD" for compression. Ceph's rule, which
/// our server follows by default, is to refuse: a daemon compresses only with OSD peers. With
/// clients added to [`CompressionConfig::peer_types`] our server agrees, and the Ceph client
/// then compresses every MOSDOp: their data must arrive intact, for every method.
#[test]
fn ceph20_client_against_our_osd_server() {
    let c = Cluster::start_on(20, "comp-srv", &["--auth", "none", "--osd", "none"]);
    let len = 65536usize;
    // Ceph's rule: no compression for a client peer.
    let (b, rx) = messenger("osd.3", compression("snappy"));
    let msgr = b
        .server_auth(std::sync::Arc::new(DummyAuth))
        .nonce(0)
        .bind("v2:127.0.0.1:0")
        .start()
        .unwrap();
    let clog = perf_client(&c, msgr.addrs().0[0].sock.unwrap(), "snappy", len);
    assert!(
        clog.contains("CompressionDoneFrame(is_compress=0, method=0)"),
        "Ceph rule: refused"
    );
    let (info, ops) = collect_ops(&rx, "uncompressed");
    assert_eq!(info.compression, None);
    assert!(ops.iter().all(|o| o.data.len() == len));
    msgr.shutdown();

    for m in CompressMethod::ALL {
        let mut comp = compression(m.name());
        comp.peer_types.push(EntityType::Client);
        let (b, rx) = messenger("osd.3", comp);
        let msgr = b
            .server_auth(std::sync::Arc::new(DummyAuth))
            .nonce(0)
            .bind("v2:127.0.0.1:0")
            .start()
            .unwrap();
        let clog = perf_client(&c, msgr.addrs().0[0].sock.unwrap(), m.name(), len);
        let done = format!("CompressionDoneFrame(is_compress=1, method={})", m as u32);
        assert!(clog.contains(&done), "{m}: client log lacks {done}");
        let (info, ops) = collect_ops(&rx, m.name());
        assert_eq!(info.compression, Some(m), "{m}");
        assert_eq!(info.entity_type, EntityType::Client);
        for op in &ops {
            assert_eq!(op.header.msg_type, MSG_OSD_OP);
            assert_eq!(op.data.len(), len, "{m}");
            assert!(op.data.iter().all(|b| *b == 0), "{m}: write data intact");
        }
        let compressed = clog
            .lines()
            .filter(|l| l.contains("compress uncompressed.length()="))
            .count();
        assert!(
            compressed >= ops.len(),
            "{m}: client compressed {compressed} segments"
        );
        msgr.shutdown();
    }
}
