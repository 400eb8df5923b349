//! Multi-host tests on one machine: the `msgr2` CLI and a real Ceph mon in separate network
//! namespaces, talking through a router namespace that loses, delays and reorders packets.
//!
//! Topology (`tests/netns/netns.sh up`): `PREFIX-a` (198.18.1.1, the servers) ↔ veth ↔
//! `PREFIX-r` (forwarding router) ↔ veth ↔ `PREFIX-b` (198.18.2.1, the clients). Every packet
//! between the hosts crosses the router's FORWARD chain, where the impairments live:
//!
//! * **loss**: `iptables -m statistic --mode random --probability P -j DROP`, real IP-level
//!   loss in both directions that TCP must detect and retransmit;
//! * **delay and reordering**: `-j NFQUEUE`, answered by [`nfqueue::Delayer`] in this process,
//!   which accepts each packet only after `delay + uniform(0, jitter)`, so packets overtake
//!   each other. This kernel has no `sch_netem`, so `tc netem` is not available.
//!
//! Loss scenarios make the hosts send one MTU per packet (`gso_max_segs 1`), so 2 % means 2 %
//! of 1500-byte packets; otherwise veth carries TCP's GSO packets (up to 64 KiB) whole. The
//! veth path reorders a little by itself (per-CPU backlogs), so even "none" shows retransmits;
//! the D-SACK count says how many were spurious. See `tests/netns/README.md`.
//!
//! Scenarios: `msgr2 bench server` in A and `msgr2 bench client` in B, in crc and secure mode,
//! under each impairment; `msgr2 ping` from B to real `ceph-mon`s (cephx and auth none,
//! crc and secure, plus a memstore OSD via `--osd`) started in A by `tests/ceph/cluster.sh
//! --ip`; and `msgr2 soak` (a lossless session, the server in A, the client in B) in crc and
//! secure mode, with and without injected socket failures on both sides. Each scenario prints
//! one markdown table row and the table is written to `target/reliability/netns.md`
//! (`MSGR2_NETNS_REPORT` to change the path).
//!
//! Lost/duplicated: a bench client exits 0 only if every message it sent got exactly one reply
//! (a reply to a tid not in flight is an error, and a cell ends only when nothing is in flight),
//! and every frame passed its integrity check on the way (crc32c of each segment in crc mode,
//! the AES-GCM tag in secure mode), so "0 / 0" is what a passing run proves. The soak checks
//! more: every DATA and ECHO payload byte, sequence numbers (lost, duplicated, reordered) and
//! that the session was never reset; both processes exit 0 only if all of that held, and the
//! test also reads their `--json` reports.
//!
//! Needs root, `ip netns`, veth and iptables' statistic match and NFQUEUE target
//! (`netns.sh check`). With `CI` set, their absence fails the tests; elsewhere they skip with
//! a message.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "netns/net.rs"]
mod net;
#[path = "netns/nfqueue.rs"]
mod nfqueue;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use net::*;
use nfqueue::Delayer;

/// The server namespace's address.
const A_IP: &str = "198.18.1.1";
/// The NFQUEUE number the router's rule uses.
const QUEUE: u16 = 0;

/// One test at a time: each has its own namespaces, but the figures of two running at once on
/// a two-core machine would mean little.
static SERIAL: Mutex<()> = Mutex::new(());

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn script() -> PathBuf {
    common::root().join("tests/netns/netns.sh")
}

/// The `msgr2` binary: this build's, or `MSGR2_NETNS_BIN` (e.g. a release build, for figures).
fn msgr2() -> PathBuf {
    std::env::var_os("MSGR2_NETNS_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_msgr2")), PathBuf::from)
}

/// Whether namespaces, veth and the iptables features work here. In CI their absence is a
/// failure; elsewhere the caller skips.
fn netns_available() -> bool {
    let why = match Command::new("bash").arg(script()).arg("check").output() {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => format!("cannot run netns.sh: {e}"),
    };
    assert!(
        !ci(),
        "network namespaces unavailable in CI: {why} (tests/run.sh installs iptables)"
    );
    println!("SKIP: network namespaces unavailable here: {why}");
    false
}

/// Runs `cmd` to completion or kills it (by its own pid) after `timeout`.
fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "timed out after {timeout:?}: {cmd:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

/// The impairments every scenario runs under.
fn impairments() -> Vec<Impairment> {
    let delay = Some((Duration::from_millis(10), Duration::from_millis(5)));
    vec![
        Impairment::NONE,
        Impairment {
            loss: 0.02,
            delay: None,
            mtu: true,
        },
        Impairment {
            loss: 0.0,
            delay,
            mtu: false,
        },
        Impairment {
            loss: 0.02,
            delay,
            mtu: true,
        },
    ]
}

/// Size labels as the bench prints them.
fn size_label(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

/// `msgr2 bench server` in A, `msgr2 bench client` in B, crc and secure, under every
/// impairment; every message is answered exactly once and the figures are recorded.
#[test]
fn bench_across_namespaces() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !netns_available() {
        return;
    }
    let t0 = Instant::now();
    let mut net = Net::up("bench");
    let listen = format!("[v2:{A_IP}:3300/0]");
    let server = net.spawn('a', &msgr2(), &["bench", "server", "--listen", &listen]);
    // The server prints its address once it listens.
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains(A_IP),
        "bench server did not start: {first:?}"
    );
    let sizes: [u64; 2] = [64 << 10, 1 << 20];
    let sizes_arg = "64K,1M";
    let json = std::env::temp_dir().join(format!("msgr2-netns-{}.json", std::process::id()));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for imp in impairments() {
        for mode in ["crc", "secure"] {
            net.impair(imp);
            let _ = std::fs::remove_file(&json);
            let started = Instant::now();
            let mut cmd = net.cmd('b', msgr2());
            cmd.args(["bench", "client", "--connect", &listen])
                .args(["--modes", mode, "--sizes", sizes_arg])
                .args(["--duration", "1.5", "--depth", "8"])
                .arg("--json")
                .arg(&json);
            let r = run_timeout(&mut cmd, Duration::from_secs(40));
            let figures = net.figures();
            let scenario = format!("bench {mode}, 1 conn × depth 8");
            let mut row = Row {
                scenario: scenario.clone(),
                impairment: imp.describe(),
                messages: "-".into(),
                lost_dup: "-".into(),
                result: "FAIL".into(),
                figures: figures.describe(),
            };
            let checked = (|| -> Result<(), String> {
                let out = r?;
                if !out.status.success() {
                    return Err(format!(
                        "client failed: {}\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                let doc: Value = serde_json::from_str(
                    &std::fs::read_to_string(&json).map_err(|e| format!("json: {e}"))?,
                )
                .map_err(|e| format!("json: {e}"))?;
                let cells = doc["cells"].as_array().ok_or("no cells")?;
                let mut total = 0;
                let mut per = Vec::new();
                let mut fig = Vec::new();
                for &size in &sizes {
                    let c = cells
                        .iter()
                        .find(|c| c["size"] == size && c["mode"] == mode)
                        .ok_or_else(|| format!("no {size} {mode} cell: {cells:?}"))?;
                    let msgs = c["msgs"].as_u64().ok_or("msgs")?;
                    if msgs == 0 || c["bytes"].as_u64() != Some(msgs * size) {
                        return Err(format!("cell moved nothing or miscounted: {c}"));
                    }
                    total += msgs;
                    per.push(format!("{msgs} × {}", size_label(size)));
                    fig.push(format!(
                        "{}: {:.3} GB/s, p50 {:.1} ms, p99 {:.1} ms",
                        size_label(size),
                        c["gbps"].as_f64().unwrap_or(0.0),
                        c["p50_us"].as_f64().unwrap_or(0.0) / 1e3,
                        c["p99_us"].as_f64().unwrap_or(0.0) / 1e3,
                    ));
                    if let Some((d, _)) = imp.delay {
                        // Every round trip crosses the router twice.
                        let p50 = c["p50_us"].as_f64().unwrap_or(0.0);
                        if p50 < 2.0 * d.as_secs_f64() * 1e6 {
                            return Err(format!("p50 {p50} µs below the added delay: {c}"));
                        }
                    }
                }
                row.messages = format!("{total} ({})", per.join(", "));
                row.lost_dup = "0 / 0".into();
                row.figures = format!("{}; {}", fig.join("; "), figures.describe());
                Ok(())
            })();
            match checked.and_then(|()| net.check_impaired(&figures)) {
                Ok(()) => row.result = "pass".into(),
                Err(e) => failures.push(format!("{scenario} / {}: {e}", imp.describe())),
            }
            println!(
                "{} ({:.1} s)",
                row.markdown(),
                started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
    }
    let _ = std::fs::remove_file(&json);
    drop(net);
    print_rows(
        &format!(
            "msgr2 bench across namespaces ({:.0} s)",
            t0.elapsed().as_secs_f64()
        ),
        &rows,
    );
    write_report("1-bench", &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A cluster started inside namespace A by `cluster.sh --ip`; stopped on drop.
struct NsCluster {
    dir: PathBuf,
    env: std::collections::HashMap<String, String>,
}

impl NsCluster {
    fn start(net: &Net, name: &str, args: &[&str]) -> NsCluster {
        let dir = std::env::temp_dir().join(format!("msgr2-nt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = common::root().join("tests/ceph/cluster.sh");
        let mut c = NsCluster {
            dir: dir.clone(),
            env: Default::default(),
        };
        let out = run_timeout(
            net.cmd('a', "bash")
                .arg(&script)
                .arg("start")
                .arg(&dir)
                .args(["--ip", A_IP])
                .args(args),
            Duration::from_secs(90),
        )
        .unwrap();
        assert!(
            out.status.success(),
            "cluster start in {} failed:\n{}",
            net.ns('a'),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&script).arg("env").arg(&dir).output().unwrap();
        c.env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        c
    }

    fn var(&self, k: &str) -> &str {
        self.env.get(k).map_or("", String::as_str)
    }
}

impl Drop for NsCluster {
    fn drop(&mut self) {
        let _ = Command::new(common::root().join("tests/ceph/cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The "(12.3 ms)" a successful `msgr2 ping` prints after the mon line.
fn ping_ms(stdout: &str, peer: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with(peer))?;
    let inner = line.rsplit_once('(')?.1.strip_suffix(" ms)")?;
    inner.parse().ok()
}

fn summary_ms(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(f64::total_cmp);
    format!(
        "{:.1} / {:.1} / {:.1} ms",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

/// `msgr2 ping` from B to real ceph-mons (and a memstore OSD) in A, under every impairment.
#[test]
fn ceph_mon_across_namespaces() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !netns_available() {
        return;
    }
    let have_ceph = Command::new("which")
        .arg("ceph-mon")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_ceph {
        assert!(
            !ci(),
            "ceph-mon is not installed: tests/run.sh installs it (tests/ceph/install.sh)"
        );
        println!("SKIP: ceph-mon is not installed (tests/ceph/install.sh)");
        return;
    }
    let t0 = Instant::now();
    let mut net = Net::up("ceph");
    // Clusters drop (stop) before the namespaces they run in.
    let cephx = NsCluster::start(
        &net,
        "cephx",
        &[
            "--mode",
            "crc,secure",
            "--osd",
            "memstore",
            "--port-base",
            "3300",
        ],
    );
    let none = NsCluster::start(
        &net,
        "none",
        &[
            "--auth",
            "none",
            "--mode",
            "crc",
            "--osd",
            "none",
            "--port-base",
            "3400",
        ],
    );
    let keyring = cephx.dir.join("keyring");
    let keyring = keyring.to_str().unwrap();
    let osd = cephx.var("MSGR2_CEPH_OSD_ADDR").to_owned();
    assert!(osd.contains(A_IP), "OSD not on {A_IP}: {osd:?}");
    struct Case<'a> {
        name: &'a str,
        mon: String,
        fsid: String,
        args: Vec<&'a str>,
        expect: &'a str,
    }
    let mon_cephx = format!("v2:{}", cephx.var("MSGR2_CEPH_MON_V2"));
    let cases = [
        Case {
            name: "ping auth none, crc",
            mon: format!("v2:{}", none.var("MSGR2_CEPH_MON_V2")),
            fsid: none.var("MSGR2_CEPH_FSID").to_owned(),
            args: vec!["--mode", "crc"],
            expect: "mode crc auth none",
        },
        Case {
            name: "ping cephx, crc, + OSD",
            mon: mon_cephx.clone(),
            fsid: cephx.var("MSGR2_CEPH_FSID").to_owned(),
            args: vec!["--keyring", keyring, "--mode", "crc", "--osd", &osd],
            expect: "mode crc auth cephx",
        },
        Case {
            name: "ping cephx, secure, + OSD",
            mon: mon_cephx.clone(),
            fsid: cephx.var("MSGR2_CEPH_FSID").to_owned(),
            args: vec!["--keyring", keyring, "--mode", "secure", "--osd", &osd],
            expect: "mode secure auth cephx",
        },
    ];
    const PINGS: usize = 5;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for imp in impairments() {
        for case in &cases {
            net.impair(imp);
            let started = Instant::now();
            let mut ok = 0;
            let mut ms = Vec::new();
            let mut errors = Vec::new();
            for _ in 0..PINGS {
                let mut cmd = net.cmd('b', msgr2());
                cmd.args(["ping", "--mon", &case.mon, "--timeout", "20"])
                    .args(&case.args);
                match run_timeout(&mut cmd, Duration::from_secs(45)) {
                    Ok(out) => {
                        let stdout = String::from_utf8_lossy(&out.stdout);
                        let good = out.status.success()
                            && stdout.contains(&format!("fsid {}", case.fsid))
                            && stdout.contains(case.expect);
                        if good {
                            ok += 1;
                            if let Some(v) = ping_ms(&stdout, "mon ") {
                                ms.push(v);
                            }
                        } else {
                            errors
                                .push(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            let figures = net.figures();
            let osd_note = if case.args.contains(&"--osd") {
                " + OSD keepalive"
            } else {
                ""
            };
            let row = Row {
                scenario: format!("{} (real ceph-mon 16.2)", case.name),
                impairment: imp.describe(),
                messages: format!("{ok}/{PINGS} monmaps{osd_note}"),
                lost_dup: if ok == PINGS { "0 / 0" } else { "-" }.into(),
                result: if errors.is_empty() { "pass" } else { "FAIL" }.into(),
                figures: format!(
                    "mon handshake + monmap min / median / max {}; {}",
                    summary_ms(&mut ms),
                    figures.describe()
                ),
            };
            if !errors.is_empty() {
                failures.push(format!(
                    "{} / {}: {}",
                    case.name,
                    imp.describe(),
                    errors.join("\n---\n")
                ));
            } else if imp.loss > 0.0 && figures.dropped == 0 {
                // Few packets per ping: loss may miss a whole case; noted, not failed.
                println!("note: no packet of {} was dropped", case.name);
            }
            println!(
                "{} ({:.1} s)",
                row.markdown(),
                started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
    }
    drop(none);
    drop(cephx);
    drop(net);
    print_rows(
        &format!(
            "msgr2 ping to real Ceph across namespaces ({:.0} s)",
            t0.elapsed().as_secs_f64()
        ),
        &rows,
    );
    write_report("2-ceph", &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The last line of `text` that is a JSON object: a soak's `--json` report.
fn last_json(text: &str, what: &str) -> Result<Value, String> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("no JSON report from the soak {what}: {text:?}"))?;
    serde_json::from_str(line).map_err(|e| format!("soak {what} report {line:?}: {e}"))
}

/// `v[path…]` as a number, or an error naming what is missing.
fn num(v: &Value, path: &[&str]) -> Result<u64, String> {
    path.iter()
        .fold(v, |x, p| &x[*p])
        .as_u64()
        .ok_or_else(|| format!("{path:?} missing in {v}"))
}

/// `msgr2 soak` between two processes in separate namespaces: the server in A, the client in
/// B (listening on B's address too, so that either side of the lossless session can
/// reconnect), crc and secure, with and without injected socket failures on both sides, under
/// no impairment, 2 % loss and delay with reordering. The soak checks every payload, sequence
/// number and crc itself and exits non-zero on any loss, duplicate, reordering, corruption or
/// session reset; the test reads both reports and asserts the same.
#[test]
fn soak_across_namespaces() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !netns_available() {
        return;
    }
    // DATA messages per run (0 B to 64 KiB each; the server answers each with an ECHO of
    // 0 B to 64 KiB). `MSGR2_NETNS_SOAK_MESSAGES` for longer runs.
    let messages: u64 = std::env::var("MSGR2_NETNS_SOAK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    const MAX_SIZE: &str = "65536";
    // `--inject-failures` of the injecting runs: one in N socket operations fails. Delayed
    // packets arrive in smaller pieces (about ten times the socket operations for the same
    // bytes) and every reconnect costs several delayed round trips, so the delayed runs
    // inject less often: still ten-odd faults per run, in a few seconds rather than 20.
    let inject_every = |imp: &Impairment| if imp.delay.is_some() { 200 } else { 100 };
    let t0 = Instant::now();
    let mut net = Net::up("soak");
    let bind = "v2:198.18.2.1:0";
    let runs: [(&str, bool); 3] = [("crc", false), ("crc", true), ("secure", true)];
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut seed = 0u64;
    for imp in impairments().into_iter().take(3) {
        for &(mode, injecting) in &runs {
            let inject = if injecting { inject_every(&imp) } else { 0 };
            seed += 1;
            net.impair(imp);
            let started = Instant::now();
            let scenario = format!(
                "soak {mode}, lossless, 2 processes{}",
                if inject > 0 {
                    format!(", socket failures 1/{inject} both sides")
                } else {
                    String::new()
                }
            );
            let mut row = Row {
                scenario: scenario.clone(),
                impairment: imp.describe(),
                messages: "-".into(),
                lost_dup: "-".into(),
                result: "FAIL".into(),
                figures: "-".into(),
            };
            let checked = (|| -> Result<(), String> {
                let server = SoakServer::start(&net, mode, inject)?;
                let mut cmd = net.cmd('b', msgr2());
                cmd.args(["soak", "--role", "client", "--json"])
                    .args(["--connect", &server.addrs, "--bind", bind])
                    .args(["--mode", mode, "--inject-failures", &inject.to_string()])
                    .args(["--messages", &messages.to_string(), "--max-size", MAX_SIZE])
                    .args(["--seed", &seed.to_string(), "--stall-timeout", "30"]);
                let client = run_timeout(&mut cmd, Duration::from_secs(90 + messages / 100));
                let server = server.finish(Duration::from_secs(30));
                let out = client?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let c = last_json(&stdout, "client")?;
                if !out.status.success() {
                    return Err(format!(
                        "soak client exited with {}: {c}\nstderr: {}\nserver: {server:?}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                let s = server?;
                for (who, v) in [("client", &c), ("server", &s)] {
                    if v["result"] != "ok" {
                        return Err(format!("soak {who} result {}: {v}", v["result"]));
                    }
                }
                for k in ["lost", "duplicated", "reordered", "corrupt"] {
                    if num(&c, &[k])? != 0 || num(&s, &["data", k])? != 0 {
                        return Err(format!("{k} ≠ 0:\nclient {c}\nserver {s}"));
                    }
                }
                if num(&c, &["sent"])? != messages
                    || num(&s, &["data", "received"])? != messages
                    || num(&c, &["echo", "received"])? != messages
                {
                    return Err(format!("not every DATA and ECHO arrived:\n{c}\n{s}"));
                }
                let resets = num(&c, &["client_resets"])? + num(&c, &["server_resets"])?;
                if resets != 0 {
                    return Err(format!("{resets} resets of a lossless session: {c}"));
                }
                let both = |k: &str| -> Result<u64, String> {
                    Ok(num(&c, &["counters", k])? + num(&s, &["counters", k])?)
                };
                let injected = both("injected_socket_failures")?;
                let reconnects = both("session_reconnects")?;
                let resumed = both("sessions_resumed")?;
                if inject > 0 && (injected == 0 || resumed == 0) {
                    return Err(format!(
                        "failures injected {injected}, sessions resumed {resumed}: \
                         want both > 0\n{c}\n{s}"
                    ));
                }
                let bytes = num(&c, &["bytes_sent"])? + num(&c, &["bytes_received"])?;
                row.messages = format!("{messages} DATA + {messages} ECHO (0-64 KiB each)");
                row.lost_dup = format!(
                    "0 / 0 (reordered {}, corrupt {})",
                    num(&c, &["reordered"])?,
                    num(&c, &["corrupt"])?
                );
                let duration = c["duration_s"].as_f64().unwrap_or(0.0);
                row.figures = format!(
                    "{:.1} MB in {duration:.1} s ({:.0} msg/s, {:.1} MB/s); \
                     {injected} failures injected, {reconnects} reconnects, {resumed} resumed",
                    bytes as f64 / 1e6,
                    c["msgs_per_s"].as_f64().unwrap_or(0.0),
                    c["mb_per_s"].as_f64().unwrap_or(0.0),
                );
                Ok(())
            })();
            let figures = net.figures();
            row.figures = if row.figures == "-" {
                figures.describe()
            } else {
                format!("{}; {}", row.figures, figures.describe())
            };
            match checked.and_then(|()| net.check_impaired(&figures)) {
                Ok(()) => row.result = "pass".into(),
                Err(e) => failures.push(format!("{scenario} / {}: {e}", imp.describe())),
            }
            println!(
                "{} ({:.1} s)",
                row.markdown(),
                started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
    }
    drop(net);
    print_rows(
        &format!(
            "msgr2 soak across namespaces ({:.0} s)",
            t0.elapsed().as_secs_f64()
        ),
        &rows,
    );
    write_report("3-soak", &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
