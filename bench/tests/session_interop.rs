//! Sessions against a real Ceph monitor (16.2 from the host, 18.2 and 20.2 from the chroots of
//! `tests/ceph/chroot.sh`): over one connection of the io_uring engine's `Messenger` (cephx
//! client), store a 1 MiB value with `config-key set`
//! (the value travels in the MMonCommand's data segment, as `ceph config-key set KEY -i
//! FILE` sends it), read it back with the real `ceph` CLI, see the monitor's EFBIG refusal
//! reach the caller on a cluster with the default entry limit, and subscribe to the osdmap
//! and receive an MOSDMap. Ceph 20 runs in its defaults (aes256k keys), with `aes` keys, and
//! allowing both ciphers (a client of each key type). Each test starts its own throw-away
//! cluster with `tests/ceph/cluster.sh`; a missing Ceph is a failure, not a skip;
//! `MSGR2_CEPH_VERSIONS` limits the versions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{wanted, Cluster};

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::messages::{
    MMonCommand, MMonCommandAck, MMonSubscribe, MessageFront, SubscribeItem, Uuid,
    MSG_MON_COMMAND_ACK,
};
use msgr2_codec::monhost::parse_mon_host;
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::{ConnHandle, Dispatcher, Messenger, MessengerBuilder, PeerInfo};
use msgr2_proto::Message;

/// `CEPH_MSG_OSD_MAP`.
const MSG_OSD_MAP: u16 = 41;
/// `EFBIG` as a negative errno.
const EFBIG: i32 = -27;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards a messenger's connects and messages to the test thread.
struct Fwd {
    ready: Sender<PeerInfo>,
    msgs: Sender<Message>,
}

impl Dispatcher for Fwd {
    fn on_message(&mut self, _conn: &ConnHandle, msg: Message) {
        let _ = self.msgs.send(msg);
    }
    fn on_connect(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.ready.send(peer.clone());
    }
}

/// One engine connection to the monitor; received messages arrive on `rx`.
struct MonConn {
    m: Messenger,
    h: ConnHandle,
    rx: Receiver<Message>,
}

impl MonConn {
    fn send(&mut self, msg: Message) -> Result<(), msgr2_engine::EngineError> {
        self.h.send(msg)
    }

    /// The next message, or a panic after `within`.
    fn next_message(&mut self, within: Duration) -> Message {
        self.rx
            .recv_timeout(within)
            .expect("no message from the monitor")
    }
}

impl Cluster {
    /// Connects to the monitor as client.admin with cephx, as `msgr2 ping` does.
    fn connect(&self) -> MonConn {
        self.connect_as("client.admin", self.var("MSGR2_CEPH_KEYRING"))
    }

    /// Connects to the monitor as `name` with cephx and the key in `keyring`.
    fn connect_as(&self, name: &str, keyring: &str) -> MonConn {
        let name: EntityName = name.parse().unwrap();
        let keyring = Keyring::load(keyring).unwrap();
        let (ready, ready_rx) = channel();
        let (msgs, rx) = channel();
        let m = MessengerBuilder::new(name)
            .arena_size(4 << 20)
            .arena_fallback(true)
            .keyring(keyring)
            .dispatcher(move |_| {
                Box::new(Fwd {
                    ready: ready.clone(),
                    msgs: msgs.clone(),
                })
            })
            .start()
            .unwrap();
        let mons = parse_mon_host(self.var("MSGR2_CEPH_MON_HOST")).unwrap();
        let target = mons.iter().find_map(|v| v.msgr2().copied()).unwrap();
        let h = m
            .connect(&EntityAddrVec(vec![target]), EntityType::Mon)
            .unwrap();
        let info = ready_rx
            .recv_timeout(TIMEOUT)
            .expect("no READY from the monitor");
        assert_eq!(info.entity_type, EntityType::Mon);
        assert!(info.lossy, "a monitor serves clients with a lossy session");
        MonConn { m, h, rx }
    }

    fn fsid(&self) -> Uuid {
        self.var("MSGR2_CEPH_FSID").parse().unwrap()
    }
}

/// A monitor's refusal of a command: its errno and status line.
#[derive(Debug)]
struct MonError {
    r: i32,
    rs: String,
}

impl std::fmt::Display for MonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "monitor returned {}: {}", self.r, self.rs)
    }
}

/// Sends an MMonCommand (`json`, input `data`) with transaction id `tid` and waits for its
/// MMonCommandAck: the status line and output data, or the monitor's error.
fn mon_command(
    conn: &mut MonConn,
    fsid: Uuid,
    tid: u64,
    json: &str,
    data: Vec<u8>,
) -> Result<(String, Vec<u8>), MonError> {
    let cmd = MMonCommand::new(fsid, json);
    conn.send(Message {
        header: MMonCommand::header(tid),
        front: cmd.front_bytes(),
        data: data.into(),
        ..Default::default()
    })
    .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.next_message(left) {
            m if m.header.msg_type == MSG_MON_COMMAND_ACK && m.header.tid == tid => {
                let ack = MMonCommandAck::decode_front(&m.front, m.header.version).unwrap();
                assert_eq!(ack.cmd, vec![json.to_owned()], "the ack echoes the command");
                return if ack.r == 0 {
                    Ok((ack.rs, m.data.to_vec()))
                } else {
                    Err(MonError {
                        r: ack.r,
                        rs: ack.rs,
                    })
                };
            }
            _ => continue,
        }
    }
}

/// 1 MiB of reproducible pseudo-random bytes (xorshift64*).
fn random_mib() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..(1 << 20) / 8)
        .flat_map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes()
        })
        .collect()
}

const SET: &str = r#"{"prefix": "config-key set", "key": "msgr2-test"}"#;

/// Who the session logs in as.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// client.admin of the cluster's keyring (the cluster's key type).
    Admin,
    /// client.aes: an `aes` key imported into a Ceph 20 cluster that also allows aes.
    Aes,
}

/// The 1 MiB config-key round trip and the osdmap subscription against a monitor of Ceph
/// `version` started with `keys` (`--key-type`, `--ciphers`), logged in as `client`.
fn config_key_round_trip(version: u32, label: &str, keys: &[&str], client: Client) {
    if !wanted(version) {
        return;
    }
    let c = Cluster::start_on(
        version,
        &format!("big{label}"),
        &[
            &[
                "--auth",
                "cephx",
                "--mode",
                "secure,crc",
                "--osd",
                "none",
                "--conf",
                "mon_config_key_max_entry_size=2097152",
            ],
            keys,
        ]
        .concat(),
    );
    let mut conn = match client {
        Client::Admin => c.connect(),
        Client::Aes => {
            let k = c.new_keyring("client.aes.keyring", "client.aes", Some("aes"));
            c.import(&k);
            c.connect_as("client.aes", &k)
        }
    };
    let value = random_mib();
    let (rs, _) = mon_command(&mut conn, c.fsid(), 1, SET, value.clone())
        .unwrap_or_else(|e| panic!("config-key set: {e}"));
    assert_eq!(rs, "set msgr2-test");
    // the real CLI reads back exactly the bytes we sent
    let out = c.dir.join("msgr2-test.out");
    let st = c
        .run("ceph")
        .args(["config-key", "get", "msgr2-test", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), value.len());
    assert!(got == value, "config-key get returned different bytes");
    // and our session reads it back too (output in the ack's data segment)
    let (_, data) = mon_command(
        &mut conn,
        c.fsid(),
        2,
        r#"{"prefix": "config-key get", "key": "msgr2-test"}"#,
        Vec::new(),
    )
    .unwrap();
    assert!(data == value);

    // subscribe to the osdmap: the monitor sends the current map as an MOSDMap
    let sub = MMonSubscribe {
        what: BTreeMap::from([("osdmap".to_owned(), SubscribeItem { start: 0, flags: 0 })]),
        hostname: "msgr2-test".to_owned(),
    };
    conn.send(Message {
        header: MMonSubscribe::header(0),
        front: sub.front_bytes(),
        ..Default::default()
    })
    .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let osdmap = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.next_message(left) {
            m if m.header.msg_type == MSG_OSD_MAP => break m,
            _ => continue,
        }
    };
    // MOSDMap front: fsid, then the maps; the fsid is the cluster's
    assert!(osdmap.front.len() > 16);
    assert_eq!(&osdmap.front[..16], &c.fsid().0[..]);
    // everything we sent went out, the replies came in, and nothing was dropped
    let k = conn.m.counters();
    assert_eq!(k.msgr_send_messages, 3);
    assert!(k.msgr_recv_messages >= 3);
    assert_eq!(k.dropped_messages, 0);
    assert_eq!(k.conns_mode_secure + k.conns_mode_crc, 1);
}

/// A monitor of Ceph `version` (with `keys`) with the default config-key entry limit
/// refuses 1 MiB with EFBIG and its own message; the connection stays usable.
fn oversized_config_key_refused(version: u32, label: &str, keys: &[&str]) {
    if !wanted(version) {
        return;
    }
    let c = Cluster::start_on(
        version,
        &format!("efbig{label}"),
        &[&["--auth", "cephx", "--mode", "crc", "--osd", "none"], keys].concat(),
    );
    let mut conn = c.connect();
    let err = mon_command(&mut conn, c.fsid(), 7, SET, random_mib()).unwrap_err();
    assert_eq!(err.r, EFBIG, "{err}");
    assert!(
        err.rs.contains("entry size limited to 65536 bytes"),
        "the monitor's own message reaches the caller: {err}"
    );
    // the connection is still usable after the refusal
    let (rs, _) = mon_command(&mut conn, c.fsid(), 8, SET, b"small".to_vec()).unwrap();
    assert_eq!(rs, "set msgr2-test");
}

#[test]
fn ceph16_config_key_of_one_mib_round_trips() {
    config_key_round_trip(16, "", &[], Client::Admin);
}

#[test]
fn ceph16_oversized_config_key_is_refused_with_the_mons_message() {
    oversized_config_key_refused(16, "", &[]);
}

#[test]
fn ceph18_config_key_of_one_mib_round_trips() {
    config_key_round_trip(18, "", &[], Client::Admin);
}

#[test]
fn ceph18_oversized_config_key_is_refused_with_the_mons_message() {
    oversized_config_key_refused(18, "", &[]);
}

/// Ceph 20 with every key `aes` (monmap: aes only).
#[test]
fn ceph20_aes_keys_config_key_of_one_mib_round_trips() {
    config_key_round_trip(20, "-aes", &["--key-type", "aes"], Client::Admin);
}

#[test]
fn ceph20_aes_keys_oversized_config_key_is_refused() {
    oversized_config_key_refused(20, "-aes", &["--key-type", "aes"]);
}

/// Ceph 20 in its defaults (aes256k keys only).
#[test]
fn ceph20_default_aes256k_config_key_of_one_mib_round_trips() {
    config_key_round_trip(20, "-aes256k", &[], Client::Admin);
}

#[test]
fn ceph20_default_aes256k_oversized_config_key_is_refused() {
    oversized_config_key_refused(20, "-aes256k", &[]);
}

/// Ceph 20 allowing both ciphers: a client with an `aes` key.
#[test]
fn ceph20_two_ciphers_aes_client_config_key_of_one_mib_round_trips() {
    config_key_round_trip(20, "-both-aes", &["--ciphers", "aes256k,aes"], Client::Aes);
}

/// Ceph 20 allowing both ciphers: client.admin with its aes256k key.
#[test]
fn ceph20_two_ciphers_aes256k_client_config_key_of_one_mib_round_trips() {
    config_key_round_trip(
        20,
        "-both-aes256k",
        &["--ciphers", "aes256k,aes"],
        Client::Admin,
    );
}
