//! `msgr2 ping` with no flags at all reaches a real Ceph 16 mon with cephx, finding
//! everything through conf discovery: `CEPH_CONF` names the test cluster's `ceph.conf`,
//! whose `mon_host`, `ms_*_mode` and `keyring` options do the rest (the host's `/etc/ceph`
//! is left alone). Then the same with `CEPH_ARGS` carrying `-c` and `--name`, and with the
//! `--cluster`/`$cluster.conf` layout in the working directory. A missing Ceph is a failure.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{wanted, Cluster};

fn ping(c: &Cluster, setup: impl FnOnce(&mut Command)) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msgr2"));
    cmd.env_remove("CEPH_ARGS").env_remove("CEPH_CONF");
    setup(&mut cmd);
    let out = cmd.output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "ping failed: {se}\n{so}");
    assert!(
        so.contains(&format!("fsid {}", c.var("MSGR2_CEPH_FSID"))),
        "{so}"
    );
    assert!(so.contains("auth cephx"), "{so}");
    so
}

#[test]
fn ceph16_ping_from_conf_discovery() {
    if !wanted(16) {
        return;
    }
    let c = Cluster::start("confping", &["--osd", "none", "--mode", "secure,crc"]);
    let conf = c.path("ceph.conf");
    // CEPH_CONF only: mon_host, keyring and the modes ("secure crc") from the file.
    let out = ping(&c, |cmd| {
        cmd.arg("ping").env("CEPH_CONF", &conf);
    });
    assert!(out.contains("mode secure"), "{out}");
    // CEPH_ARGS with Ceph's flags; a command-line override of the mode wins over the file.
    let out = ping(&c, |cmd| {
        cmd.args(["ping", "--ms-mon-client-mode", "crc"])
            .env("CEPH_ARGS", format!("-c {conf} --name client.admin"));
    });
    assert!(out.contains("mode crc"), "{out}");
    // The $cluster.conf layout: --cluster NAME finds NAME.conf in the working directory.
    std::fs::copy(&conf, c.dir.join("disc.conf")).unwrap();
    ping(&c, |cmd| {
        cmd.args(["ping", "--cluster", "disc"]).current_dir(&c.dir);
    });
}
