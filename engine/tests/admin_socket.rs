//! The admin socket over its real UNIX socket (Ceph's CLI against it is tested in
//! `bench/tests/admin_socket.rs`): counters in the dump equal the engine's after real traffic,
//! Ceph's error shapes, a request too long closed unanswered, the socket still usable after
//! bad requests, mode 0600, a stale socket replaced, a live one refused, the file removed at
//! shutdown, two messengers numbered as consecutive workers.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use msgr2_engine::admin::{AdminError, AdminSocket};
use msgr2_engine::{ConnHandle, Dispatcher, EngineError, Message, MessengerBuilder, PeerInfo};

const T: Duration = Duration::from_secs(30);

fn sock_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("msgr2-asok-{tag}-{}.asok", std::process::id()))
}

/// Sends `req` raw and returns the reply body, or None if the socket closed unanswered.
fn raw(path: &Path, req: &[u8]) -> Option<String> {
    msgr2_engine::admin::request(path, req, T).unwrap()
}

fn cmd(path: &Path, json: &str) -> serde_json::Value {
    let body = raw(path, format!("{json}\0").as_bytes()).unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

struct Fwd(Sender<()>);
impl Dispatcher for Fwd {
    fn on_message(&mut self, _c: &ConnHandle, _m: Message) {
        let _ = self.0.send(());
    }
    fn on_connect(&mut self, _c: &ConnHandle, _p: &PeerInfo) {
        let _ = self.0.send(());
    }
}

#[test]
fn dump_matches_engine_counters_and_errors_have_cephs_shape() {
    let path = sock_path("dump");
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = channel();
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .take(2)
        .collect();
    let server = MessengerBuilder::new("osd.3".parse().unwrap())
        .bind("v2:127.0.0.1:0")
        .cores(cores.clone())
        .arena_size(2 << 20)
        .arena_fallback(true)
        .admin_socket(&path, "server", vec![("mon_host".into(), "x".into())])
        .dispatcher(move |_| Box::new(Fwd(tx.clone())))
        .start()
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let (ctx, crx) = channel();
    let client = MessengerBuilder::new("client.admin".parse().unwrap())
        .cores(vec![cores[0]])
        .arena_size(2 << 20)
        .arena_fallback(true)
        .dispatcher(move |_| Box::new(Fwd(ctx.clone())))
        .start()
        .unwrap();
    let conn = client
        .connect(&server.addrs(), msgr2_codec::entity::EntityType::Osd)
        .unwrap();
    crx.recv_timeout(T).unwrap();
    const N: u64 = 25;
    for i in 0..N {
        conn.send(Message::new(42, 1, 1, vec![i as u8; 100]))
            .unwrap();
    }
    for _ in 0..N {
        rx.recv_timeout(T).unwrap();
    }
    let engine = server.core_counters();
    let dump = cmd(&path, r#"{"prefix": "perf dump", "format": "json"}"#);
    let mut recv = 0;
    for (i, (_cpu, c)) in engine.iter().enumerate() {
        let w = &dump[format!("AsyncMessenger::Worker-{i}")];
        assert_eq!(w["msgr_recv_messages"], c.msgr_recv_messages, "{dump}");
        assert_eq!(w["msgr_active_connections"], c.msgr_active_connections);
        recv += w["msgr_recv_messages"].as_u64().unwrap();
    }
    assert_eq!(recv, N);
    assert_eq!(server.counters().msgr_recv_messages, N);
    assert!(
        dump["msgr2_engine::Worker-0"]["ring_enters"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        dump["throttle-msgr_dispatch_throttler-server"]["max"],
        100 << 20
    );
    let schema = cmd(&path, r#"{"prefix": "perf schema"}"#);
    assert_eq!(
        schema["AsyncMessenger::Worker-1"]["msgr_recv_bytes"]["units"],
        "bytes"
    );
    let status = cmd(&path, r#"{"prefix": "messenger status"}"#);
    assert_eq!(status["messengers"][0]["active_connections"], 1);
    assert_eq!(
        status["messengers"][0]["cores"].as_array().unwrap().len(),
        2
    );
    let show = cmd(&path, r#"{"prefix": "config show"}"#);
    assert_eq!(show["name"], "osd.3");
    assert_eq!(show["mon_host"], "x");
    assert_eq!(show["admin_socket"], path.display().to_string());
    assert_eq!(
        cmd(
            &path,
            r#"{"prefix": "config get", "var": "ms_cluster_mode"}"#
        )["ms_cluster_mode"],
        "crc secure"
    );

    // Bad requests: Ceph's answers, and the socket keeps answering.
    assert_eq!(
        raw(&path, b"garbage\0").unwrap(),
        "ERROR: (22) Invalid argument\ninvalid json\n"
    );
    assert_eq!(
        raw(&path, b"{\"prefix\": \"foo bar\"}\n").unwrap(),
        "ERROR: (22) Invalid argument\nunknown command prefix foo bar\n"
    );
    assert_eq!(raw(&path, &vec![b'x'; 100_000]), None);
    assert_eq!(raw(&path, b"{\"prefix\": \"he"), None);
    assert_eq!(raw(&path, &[0, 0, 0, 0]).unwrap(), "2");
    assert_eq!(
        cmd(&path, r#"{"prefix": "version"}"#)["release"],
        "msgr2-rs"
    );

    client.shutdown();
    server.shutdown();
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn stale_socket_is_replaced_live_one_refused() {
    let path = sock_path("stale");
    let _ = std::fs::remove_file(&path);
    // A socket file nobody listens on any more.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let a = AdminSocket::bind(&path).unwrap();
    assert_eq!(cmd(&path, r#"{"prefix": "0"}"#), 2);
    match AdminSocket::bind(&path) {
        Err(AdminError::InUse(p)) => assert_eq!(p, path),
        other => panic!("expected InUse, got {other:?}"),
    }
    // Through the builder it is a typed engine error.
    let e = MessengerBuilder::new("osd.1".parse().unwrap())
        .cores(vec![core_affinity::get_core_ids().unwrap()[0].id])
        .arena_size(2 << 20)
        .arena_fallback(true)
        .admin_socket(&path, "x", vec![])
        .start()
        .unwrap_err();
    assert!(matches!(e, EngineError::Admin(AdminError::InUse(_))), "{e}");
    a.shutdown();
    assert!(!path.exists());

    let file = sock_path("file");
    std::fs::write(&file, b"not a socket").unwrap();
    assert!(matches!(
        AdminSocket::bind(&file),
        Err(AdminError::NotASocket(_))
    ));
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn two_messengers_are_consecutive_workers() {
    let path = sock_path("two");
    let _ = std::fs::remove_file(&path);
    let cpu = core_affinity::get_core_ids().unwrap()[0].id;
    let mk = |n: &str| {
        MessengerBuilder::new(n.parse().unwrap())
            .cores(vec![cpu])
            .arena_size(2 << 20)
            .arena_fallback(true)
            .start()
            .unwrap()
    };
    let (public, cluster) = (mk("osd.0"), mk("osd.0"));
    let a = AdminSocket::bind(&path).unwrap();
    a.add_messenger("public", &public);
    a.add_messenger("cluster", &cluster);
    let d = cmd(&path, r#"{"prefix": "perf dump"}"#);
    assert!(d.get("AsyncMessenger::Worker-0").is_some());
    assert!(d.get("AsyncMessenger::Worker-1").is_some());
    assert!(d.get("AsyncMessenger::Worker-2").is_none());
    assert!(d.get("throttle-msgr_dispatch_throttler-cluster").is_some());
    let s = cmd(&path, r#"{"prefix": "messenger status"}"#);
    assert_eq!(s["messengers"][1]["label"], "cluster");
    assert_eq!(
        s["messengers"][1]["cores"][0]["worker"],
        "AsyncMessenger::Worker-1"
    );
    drop(a);
    assert!(!path.exists());
}
