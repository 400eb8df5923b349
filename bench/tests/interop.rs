//! Interop with real Ceph 16.2.15: our client against a real `ceph-mon` and `ceph-osd`, and
//! the real `ceph` CLI against our server. Each test starts its own throw-away cluster with
//! `tests/ceph/cluster.sh` (installed by `tests/run.sh` via `tests/ceph/install.sh`). A missing
//! Ceph is a failure, not a skip.

#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn msgr2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msgr2"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `msgr2 ping` and checks it reached READY with `mode` and `revision`, printed the
/// cluster's fsid, and (with an OSD) got a KEEPALIVE2 ack.
fn ping_ok(c: &Cluster, extra: &[&str], mode: &str, revision: &str) -> String {
    let (ok, out, err) = run(msgr2()
        .args([
            "ping",
            "--mon",
            c.var("MSGR2_CEPH_MON_HOST"),
            "--timeout",
            "20",
        ])
        .args(extra));
    assert!(ok, "ping {extra:?} failed: {err}\n{out}");
    assert!(
        out.contains(&format!("fsid {}", c.var("MSGR2_CEPH_FSID"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("revision {revision} mode {mode}")),
        "{extra:?}: {out}"
    );
    assert!(out.contains("0: [v2:127.0.0.1:"), "{out}");
    out
}

fn ping_err(c: &Cluster, extra: &[&str]) -> String {
    let (ok, out, err) = run(msgr2()
        .args([
            "ping",
            "--mon",
            c.var("MSGR2_CEPH_MON_HOST"),
            "--timeout",
            "10",
        ])
        .args(extra));
    assert!(!ok, "ping {extra:?} should fail: {out}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    err
}

#[test]
fn client_against_real_cephx_mon_and_osd() {
    let c = Cluster::start("cephx", &["--auth", "cephx", "--mode", "crc,secure"]);
    let kr = c.var("MSGR2_CEPH_KEYRING").to_owned();
    let osd = c.var("MSGR2_CEPH_OSD_ADDR").to_owned();
    // fsid as the real CLI sees it
    let (ok, fsid, _) = run(Command::new("ceph")
        .env("CEPH_CONF", c.var("CEPH_CONF"))
        .arg("fsid"));
    assert!(ok);
    assert_eq!(fsid.trim(), c.var("MSGR2_CEPH_FSID"));
    for (mode, rev, revname) in [
        ("crc", "1", "msgr2.1"),
        ("secure", "1", "msgr2.1"),
        ("crc", "0", "msgr2.0"),
        ("secure", "0", "msgr2.0"),
    ] {
        let out = ping_ok(
            &c,
            &[
                "--keyring",
                &kr,
                "--mode",
                mode,
                "--rev",
                rev,
                "--osd",
                &osd,
            ],
            mode,
            revname,
        );
        assert!(out.contains("auth cephx"), "{out}");
        assert!(
            out.lines().any(|l| l.starts_with("osd.0 ")
                && l.contains(&format!("mode {mode}"))
                && l.contains("keepalive2 acked")),
            "{out}"
        );
    }
    // wrong key: a keyring whose client.admin key is not the cluster's
    let bad = c.dir.join("bad.keyring");
    std::fs::write(
        &bad,
        "[client.admin]\n\tkey = AQBmn1dnAAAAABAAxJ0YlOZrd6pT7wq7b8nz0w==\n",
    )
    .unwrap();
    let err = ping_err(&c, &["--keyring", bad.to_str().unwrap()]);
    assert!(err.contains("error -13") || err.contains("-13"), "{err}");
    // unknown entity
    let other = c.dir.join("other.keyring");
    std::fs::write(
        &other,
        "[client.nobody]\n\tkey = AQBmn1dnAAAAABAAxJ0YlOZrd6pT7wq7b8nz0w==\n",
    )
    .unwrap();
    let err = ping_err(
        &c,
        &[
            "--keyring",
            other.to_str().unwrap(),
            "--name",
            "client.nobody",
        ],
    );
    assert!(err.contains("-13") || err.contains("rejected"), "{err}");
    // auth none against a cephx-only mon: AUTH_BAD_METHOD, reported
    let err = ping_err(&c, &[]);
    assert!(
        err.contains("server rejected auth method 1") && err.contains("allows methods [2]"),
        "{err}"
    );
}

#[test]
fn client_against_real_auth_none_mon() {
    let c = Cluster::start(
        "none",
        &["--auth", "none", "--mode", "crc", "--osd", "none"],
    );
    for (rev, name) in [("1", "msgr2.1"), ("0", "msgr2.0")] {
        let out = ping_ok(&c, &["--rev", rev], "crc", name);
        assert!(out.contains("auth none"), "{out}");
    }
    // every form mon_host accepts reaches it
    let v2 = c.var("MSGR2_CEPH_MON_V2").to_owned();
    for form in [
        format!("v2:{v2}"),
        format!("v2:{v2}/0"),
        v2.clone(),
        format!("[v2:{v2}]"),
        format!("127.0.0.1:1, v2:{v2}"),
    ] {
        let (ok, out, err) = run(msgr2().args(["ping", "--mon", &form, "--timeout", "3"]));
        assert!(ok, "{form}: {err}");
        if ok {
            assert!(out.contains(c.var("MSGR2_CEPH_FSID")), "{form}: {out}");
        }
    }
    // secure mode with auth none is impossible: a clear error, as Ceph's EACCES
    let err = ping_err(&c, &["--mode", "secure"]);
    assert!(err.contains("secure mode needs cephx"), "{err}");
}

/// Our server, reading JSON events from its stdout.
struct OurServer {
    child: Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    addr: String,
}

impl OurServer {
    fn start(args: &[&str]) -> OurServer {
        let mut child = msgr2()
            .args(["server", "--listen", "[v2:127.0.0.1:0/0]", "--events"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    let _ = tx.send(v);
                }
            }
        });
        let first: serde_json::Value = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first["event"], "listening");
        let addr = first["addrs"].as_str().unwrap().to_owned();
        OurServer { child, lines, addr }
    }

    /// Waits for an event matching `pred`.
    fn wait(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(v) => seen.push(v),
                Err(_) => break,
            }
        }
        panic!("no {what} event; saw {seen:?}");
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `ceph` CLI against our server: `mon stat` cannot finish (we are not a full mon),
/// so it runs with a short timeout; what matters is what our server saw.
fn real_cli(addr: &str, args: &[&str]) -> Child {
    Command::new("ceph")
        .args(["-c", "/dev/null", "-m", addr, "--connect-timeout", "8"])
        .args(args)
        .args(["mon", "stat"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn expect_ready_and_getmap(s: &OurServer, mode: &str, auth: &str) {
    let acc = s.wait("accepted", |v| v["event"] == "accepted");
    assert_eq!(
        (acc["mode"].as_str(), acc["auth"].as_str()),
        (Some(mode), Some(auth)),
        "{acc}"
    );
    assert_eq!(acc["peer_name"], "client.admin");
    assert_eq!(acc["revision"], "msgr2.1");
    let m = s.wait("MMonGetMap", |v| v["event"] == "message");
    assert_eq!(
        (m["type"].as_u64(), m["seq"].as_u64()),
        (Some(5), Some(1)),
        "first message is MMonGetMap: {m}"
    );
}

#[test]
fn real_ceph_cli_against_our_server() {
    // auth none, crc
    let s = OurServer::start(&[]);
    let mut cli = real_cli(
        &s.addr,
        &[
            "--auth-client-required",
            "none",
            "--keyring",
            "/dev/null",
            "--ms-mon-client-mode",
            "crc",
        ],
    );
    expect_ready_and_getmap(&s, "crc", "none");
    let _ = cli.kill();
    let _ = cli.wait();
    drop(s);

    // cephx with a keyring we generate with the real ceph-authtool, crc and secure
    let dir = std::env::temp_dir().join(format!("msgr2-it-srv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kr = dir.join("keyring");
    // like a real mon, our server refuses entities without mon caps
    let (ok, _, err) = run(Command::new("ceph-authtool")
        .arg("--create-keyring")
        .arg(&kr)
        .args(["--gen-key", "-n", "client.admin", "--cap", "mon", "allow *"]));
    assert!(ok, "{err}");
    for mode in ["crc", "secure"] {
        let s = OurServer::start(&["--keyring", kr.to_str().unwrap()]);
        let mut cli = real_cli(
            &s.addr,
            &[
                "-n",
                "client.admin",
                "-k",
                kr.to_str().unwrap(),
                "--ms-mon-client-mode",
                mode,
            ],
        );
        expect_ready_and_getmap(&s, mode, "cephx");
        let _ = cli.kill();
        let _ = cli.wait();
    }
    // a client with the wrong key is refused (the CLI hunts; our server reports the failure)
    let bad = dir.join("bad.keyring");
    let (ok, _, _) = run(Command::new("ceph-authtool")
        .arg("--create-keyring")
        .arg(&bad)
        .args(["--gen-key", "-n", "client.admin"]));
    assert!(ok);
    let s = OurServer::start(&["--keyring", kr.to_str().unwrap()]);
    let mut cli = real_cli(
        &s.addr,
        &["-n", "client.admin", "-k", bad.to_str().unwrap()],
    );
    let f = s.wait("handshake failure", |v| {
        v["event"] == "handshake_failed" || v["event"] == "accepted"
    });
    assert_eq!(f["event"], "handshake_failed", "{f}");
    let _ = cli.kill();
    let _ = cli.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
