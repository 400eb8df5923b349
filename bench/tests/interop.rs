//! Interop with real Ceph 16.2, 18.2 and 20.2: our client against a real `ceph-mon` and
//! `ceph-osd`, and that version's real `ceph` CLI and python3-rados against our server. Ceph 16
//! runs from the host's packages, 18 and 20 from the chroots of `tests/ceph/chroot.sh` (both
//! prepared by `tests/run.sh`). Each test starts one throw-away cluster with
//! `tests/ceph/cluster.sh` and runs every cell of its configuration against it; a failed cell
//! does not stop the others, the test fails at the end naming each. Ceph 20 is tested in its
//! defaults (aes256k keys only), with every key `aes`, and with both ciphers allowed (clients
//! of each key type). A missing Ceph is a failure, not a skip; `MSGR2_CEPH_VERSIONS` limits
//! the versions (e.g. `MSGR2_CEPH_VERSIONS=20`).

#![allow(clippy::unwrap_used)]

mod common;

use common::{wanted, Cells, Cluster};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The python3-rados probe, fed on stdin to the python3 of the Ceph under test.
const RADOS_PROBE: &str = include_str!("../../tests/ceph/rados_probe.py");

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
    if extra.contains(&"--osd") {
        assert!(
            out.lines().any(|l| l.starts_with("osd.0 ")
                && l.contains(&format!("mode {mode}"))
                && l.contains("keepalive2 acked")),
            "{out}"
        );
    }
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

/// `ceph fsid` with the cluster's own CLI (its version, its conf and admin keyring).
fn cli_fsid(c: &Cluster) {
    let (ok, fsid, err) = run(c.run("ceph").arg("fsid"));
    assert!(ok, "{err}");
    assert_eq!(fsid.trim(), c.var("MSGR2_CEPH_FSID"));
}

/// Who the cephx cells log in as.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// client.admin of the cluster's keyring: a key of the cluster's key type.
    Admin,
    /// client.aes: an `aes` key made with `ceph-authtool --key-type aes` and imported into a
    /// Ceph 20 cluster whose monmap also allows aes.
    Aes,
}

/// Every cephx cell against one cluster of Ceph `version`, started with `--auth cephx --mode
/// crc,secure` plus `keys` (`--key-type`, `--ciphers`): the version's CLI, our client to the
/// mon and the OSD in crc/secure x rev 1/rev 0, a wrong key, an unknown entity, auth none
/// refused, then the version's `ceph` CLI and python3-rados against our server (crc, secure,
/// a wrong key), all as `client`.
fn cephx_matrix(version: u32, label: &str, keys: &[&str], client: Client) {
    if !wanted(version) {
        return;
    }
    let c = Cluster::start_on(
        version,
        &format!("cephx{label}"),
        &[&["--auth", "cephx", "--mode", "crc,secure"], keys].concat(),
    );
    let mut cells = Cells::new(format!(
        "Ceph {} cephx {label} ({client} client; keys {}, monmap ciphers {})",
        c.var("MSGR2_CEPH_RELEASE"),
        c.var("MSGR2_CEPH_KEY_TYPE"),
        c.var("MSGR2_CEPH_CIPHERS"),
        client = if client == Client::Aes {
            "aes"
        } else {
            "admin"
        },
    ));
    let (name, kr, key_type) = match client {
        Client::Admin => (
            "client.admin",
            c.var("MSGR2_CEPH_KEYRING").to_owned(),
            c.var("MSGR2_CEPH_KEY_TYPE").to_owned(),
        ),
        Client::Aes => {
            let k = c.new_keyring("client.aes.keyring", "client.aes", Some("aes"));
            c.import(&k);
            ("client.aes", k, "aes".to_owned())
        }
    };
    // wrong keys of the same type as the client's (ceph-authtool --key-type: Ceph 20 only)
    let kt = (version >= 20).then_some(key_type.as_str());
    let osd = c.var("MSGR2_CEPH_OSD_ADDR").to_owned();

    cells.cell("the version's ceph CLI: ceph fsid", || cli_fsid(&c));
    for (mode, rev, revname) in [
        ("crc", "1", "msgr2.1"),
        ("secure", "1", "msgr2.1"),
        ("crc", "0", "msgr2.0"),
        ("secure", "0", "msgr2.0"),
    ] {
        cells.cell(&format!("msgr2 ping mon+osd {mode} rev {rev}"), || {
            let out = ping_ok(
                &c,
                &[
                    "--name",
                    name,
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
        });
    }
    cells.cell("msgr2 ping with a wrong key: -13", || {
        let bad = c.new_keyring("bad.keyring", name, kt);
        let err = ping_err(&c, &["--keyring", &bad, "--name", name]);
        assert!(err.contains("-13"), "{err}");
    });
    cells.cell("msgr2 ping as an unknown entity: refused", || {
        let other = c.new_keyring("other.keyring", "client.nobody", kt);
        let err = ping_err(&c, &["--keyring", &other, "--name", "client.nobody"]);
        assert!(err.contains("-13") || err.contains("rejected"), "{err}");
    });
    cells.cell(
        "msgr2 ping with auth none: AUTH_BAD_METHOD reported",
        || {
            let err = ping_err(&c, &[]);
            assert!(
                err.contains("server rejected auth method 1") && err.contains("allows methods [2]"),
                "{err}"
            );
        },
    );

    // the other direction: this version's clients against our server, with the same key
    let id = name.strip_prefix("client.").unwrap();
    for mode in ["crc", "secure"] {
        cells.cell(&format!("ceph CLI -> msgr2 server, cephx {mode}"), || {
            let s = OurServer::start(&["--keyring", &kr]);
            let _cli = real_cli(
                &c,
                &s.addr,
                &["-n", name, "-k", &kr, "--ms-mon-client-mode", mode],
            );
            expect_ready_and_getmap(&s, mode, "cephx", name);
        });
        cells.cell(
            &format!("python3-rados -> msgr2 server, cephx {mode}"),
            || {
                let s = OurServer::start(&["--keyring", &kr]);
                let _py = rados_probe(&c, &s.addr, "cephx", mode, &kr, id);
                expect_ready_and_getmap(&s, mode, "cephx", name);
            },
        );
    }
    cells.cell("ceph CLI with a wrong key -> msgr2 server: refused", || {
        let bad = c.new_keyring("bad-cli.keyring", name, kt);
        let s = OurServer::start(&["--keyring", &kr]);
        let _cli = real_cli(&c, &s.addr, &["-n", name, "-k", &bad]);
        let f = s.wait("handshake failure", |v| {
            v["event"] == "handshake_failed" || v["event"] == "accepted"
        });
        assert_eq!(f["event"], "handshake_failed", "{f}");
    });
    drop(c);
    cells.finish();
}

/// Every auth-none cell against one cluster of Ceph `version` (`--auth none --mode crc`, with
/// an OSD): our client to the mon and the OSD in rev 1 and rev 0, every `mon_host` form,
/// secure mode refused, then the version's `ceph` CLI and python3-rados against our server.
fn none_matrix(version: u32) {
    if !wanted(version) {
        return;
    }
    let c = Cluster::start_on(version, "none", &["--auth", "none", "--mode", "crc"]);
    let mut cells = Cells::new(format!("Ceph {} auth none", c.var("MSGR2_CEPH_RELEASE")));
    let osd = c.var("MSGR2_CEPH_OSD_ADDR").to_owned();
    cells.cell("the version's ceph CLI: ceph fsid", || cli_fsid(&c));
    for (rev, revname) in [("1", "msgr2.1"), ("0", "msgr2.0")] {
        cells.cell(&format!("msgr2 ping mon+osd crc rev {rev}"), || {
            let out = ping_ok(&c, &["--rev", rev, "--osd", &osd], "crc", revname);
            assert!(out.contains("auth none"), "{out}");
        });
    }
    cells.cell("every mon_host form reaches the mon", || {
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
            assert!(out.contains(c.var("MSGR2_CEPH_FSID")), "{form}: {out}");
        }
    });
    cells.cell("secure mode with auth none: a clear error", || {
        // impossible without a session key, as Ceph's EACCES
        let err = ping_err(&c, &["--mode", "secure"]);
        assert!(err.contains("secure mode needs cephx"), "{err}");
    });
    cells.cell("ceph CLI -> msgr2 server, auth none crc", || {
        let s = OurServer::start(&[]);
        let _cli = real_cli(
            &c,
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
        expect_ready_and_getmap(&s, "crc", "none", "client.admin");
    });
    cells.cell("python3-rados -> msgr2 server, auth none crc", || {
        let s = OurServer::start(&[]);
        let _py = rados_probe(&c, &s.addr, "none", "crc", "/dev/null", "admin");
        expect_ready_and_getmap(&s, "crc", "none", "client.admin");
    });
    drop(c);
    cells.finish();
}

#[test]
fn ceph16_cephx_client_and_server() {
    cephx_matrix(16, "", &[], Client::Admin);
}

#[test]
fn ceph16_auth_none_client_and_server() {
    none_matrix(16);
}

#[test]
fn ceph18_cephx_client_and_server() {
    cephx_matrix(18, "", &[], Client::Admin);
}

#[test]
fn ceph18_auth_none_client_and_server() {
    none_matrix(18);
}

/// Ceph 20 with every key `aes` and a monmap allowing only aes: what a pre-aes256k client
/// needs.
#[test]
fn ceph20_aes_keys_cephx_client_and_server() {
    cephx_matrix(20, "-aes", &["--key-type", "aes"], Client::Admin);
}

/// Ceph 20 in its defaults: aes256k keys, a monmap allowing only aes256k.
#[test]
fn ceph20_default_aes256k_cephx_client_and_server() {
    cephx_matrix(20, "-aes256k", &[], Client::Admin);
}

/// Ceph 20 allowing both ciphers (an upgraded cluster): a client with an `aes` key.
#[test]
fn ceph20_two_ciphers_aes_client() {
    cephx_matrix(20, "-both-aes", &["--ciphers", "aes256k,aes"], Client::Aes);
}

/// Ceph 20 allowing both ciphers: client.admin with its default aes256k key.
#[test]
fn ceph20_two_ciphers_aes256k_client() {
    cephx_matrix(
        20,
        "-both-aes256k",
        &["--ciphers", "aes256k,aes"],
        Client::Admin,
    );
}

#[test]
fn ceph20_auth_none_client_and_server() {
    none_matrix(20);
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

/// A client process, killed when dropped (it cannot finish against our server).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The cluster version's real `ceph` CLI against our server: `mon stat` cannot finish (we
/// are not a full mon); what matters is what our server saw.
fn real_cli(c: &Cluster, addr: &str, args: &[&str]) -> Peer {
    Peer(
        c.run("ceph")
            .args(["-c", "/dev/null", "-m", addr, "--connect-timeout", "8"])
            .args(args)
            .args(["mon", "stat"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The cluster version's python3-rados connecting to our server as client.`id`.
fn rados_probe(c: &Cluster, addr: &str, auth: &str, mode: &str, keyring: &str, id: &str) -> Peer {
    let mut child = c
        .run("python3")
        .args(["-", addr, auth, mode, keyring, id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // python3 reads the whole script before it runs it; closing stdin ends it
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(RADOS_PROBE.as_bytes()).unwrap();
    drop(stdin);
    Peer(child)
}

fn expect_ready_and_getmap(s: &OurServer, mode: &str, auth: &str, peer: &str) {
    let acc = s.wait("accepted", |v| v["event"] == "accepted");
    assert_eq!(
        (acc["mode"].as_str(), acc["auth"].as_str()),
        (Some(mode), Some(auth)),
        "{acc}"
    );
    assert_eq!(acc["peer_name"], peer);
    assert_eq!(acc["revision"], "msgr2.1");
    let m = s.wait("MMonGetMap", |v| v["event"] == "message");
    assert_eq!(
        (m["type"].as_u64(), m["seq"].as_u64()),
        (Some(5), Some(1)),
        "first message is MMonGetMap: {m}"
    );
}
