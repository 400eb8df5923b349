//! Our client's identity as a real OSD sees it: after logging in to the monitor, `msgr2 ping`
//! identifies itself to the OSD as `client.<global id the monitor assigned>`, with cephx and
//! with auth none, as a real `rados` client does (not as an anonymous `client.?`). The OSD's
//! own debug_ms log is the witness. Each test starts its own throw-away cluster with
//! `tests/ceph/cluster.sh`; a missing Ceph is a failure, not a skip.

#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use std::process::Command;

/// Pings the cluster's mon and OSD and returns the global id the mon assigned.
fn ping_global_id(c: &Cluster, extra: &[&str]) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_msgr2"))
        .args([
            "ping",
            "--mon",
            c.var("MSGR2_CEPH_MON_HOST"),
            "--timeout",
            "20",
        ])
        .args(["--osd", c.var("MSGR2_CEPH_OSD_ADDR")])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ping failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mon = text.lines().find(|l| l.starts_with("mon ")).unwrap();
    let id = mon.split("global_id ").nth(1).unwrap();
    id.split_whitespace().next().unwrap().parse().unwrap()
}

/// The OSD's log names the connection `client.<gid>` once it is READY.
fn assert_osd_saw(c: &Cluster, gid: u64) {
    let log = c.dir.join("log/osd.0.log");
    let want = format!("ready entity=client.{gid} ");
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let seen: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ready entity="))
        .collect();
    panic!("the OSD never logged {want:?}; it logged: {seen:#?}");
}

#[test]
fn osd_sees_our_global_id_with_cephx() {
    let c = Cluster::start("ident-cephx", &["--auth", "cephx", "--conf", "debug_ms=1"]);
    let kr = c.var("MSGR2_CEPH_KEYRING").to_owned();
    let gid = ping_global_id(&c, &["--keyring", &kr]);
    assert!(gid > 0);
    assert_osd_saw(&c, gid);
}

#[test]
fn osd_sees_our_global_id_with_auth_none() {
    let c = Cluster::start("ident-none", &["--auth", "none", "--conf", "debug_ms=1"]);
    let gid = ping_global_id(&c, &[]);
    assert!(gid > 0);
    assert_osd_saw(&c, gid);
}
