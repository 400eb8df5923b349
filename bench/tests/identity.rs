//! Our client's identity as a real OSD sees it: after logging in to the monitor, `msgr2 ping`
//! identifies itself to the OSD as `client.<global id the monitor assigned>`, with cephx and
//! with auth none, as a real `rados` client does (not as an anonymous `client.?`). The OSD's
//! own debug_ms log is the witness. Against Ceph 16, 18 and 20, each with its own throw-away
//! clusters from `tests/ceph/cluster.sh`; a missing Ceph is a failure, not a skip.

#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use std::process::Command;

/// Pings the cluster's mon and OSD; returns what it printed and the global id the mon
/// assigned.
fn ping(c: &Cluster, extra: &[&str]) -> (String, u64) {
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
    let gid = id.split_whitespace().next().unwrap().parse().unwrap();
    (text, gid)
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

/// With cephx and with auth none, the OSD sees our mon-assigned global id; the monmap
/// printout names the release as Ceph does, and (Ceph 20) carries the cephx policy.
fn identity(version: u32) {
    if !common::wanted(version) {
        return;
    }
    let release = match version {
        16 => "16 (pacific)",
        18 => "18 (reef)",
        _ => "20 (tentacle)",
    };
    for auth in ["cephx", "none"] {
        let c = Cluster::start_on(
            version,
            &format!("ident-{auth}"),
            &["--auth", auth, "--conf", "debug_ms=1"],
        );
        let kr = c.var("MSGR2_CEPH_KEYRING").to_owned();
        let extra: &[&str] = if auth == "cephx" {
            &["--keyring", &kr]
        } else {
            &[]
        };
        let (text, gid) = ping(&c, extra);
        assert!(gid > 0);
        assert_osd_saw(&c, gid);
        assert!(
            text.contains(&format!("min_mon_release {release}")),
            "{text}"
        );
        if version >= 20 {
            for line in [
                "auth_service_cipher aes256k",
                "auth_allowed_ciphers aes256k",
                "auth_preferred_cipher aes256k",
            ] {
                assert!(text.contains(line), "{line}: {text}");
            }
        } else {
            assert!(!text.contains("auth_epoch"), "{text}");
        }
    }
}

#[test]
fn ceph16_osd_sees_our_global_id() {
    identity(16);
}

#[test]
fn ceph18_osd_sees_our_global_id() {
    identity(18);
}

#[test]
fn ceph20_osd_sees_our_global_id() {
    identity(20);
}
