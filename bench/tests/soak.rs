//! `msgr2 soak` across two processes on loopback: a lossless session under injected socket
//! failures on both sides (nothing lost, duplicated, reordered or corrupt; reconnects
//! survived), a lossy client (no duplicates, every loss explained by a reported reset) and a
//! secure-mode lossless run.
//!
//! Short by default; `MSGR2_SOAK_MESSAGES=1000000` makes every scenario that long (build with
//! `--release` for that). Each test prints one markdown row (scenario, load, faults injected,
//! messages, lost / duplicated, result) and the rows of all scenarios are written to
//! `target/reliability/soak.md` (`$MSGR2_RELIABILITY_DIR/soak.md` if set).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn msgr2() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_msgr2"))
}

/// Messages of a scenario: `MSGR2_SOAK_MESSAGES` if set, else `default`.
fn messages(default: u64) -> u64 {
    std::env::var("MSGR2_SOAK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A soak process, killed (by its own handle) if the test gives up on it.
struct Proc {
    child: Child,
    what: &'static str,
}

impl Proc {
    fn spawn(what: &'static str, args: &[String]) -> Self {
        let child = Command::new(msgr2())
            .arg("soak")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child, what }
    }

    /// Waits up to `limit` for the exit; returns (success, stdout rest, stderr).
    fn finish(
        mut self,
        out: Option<BufReader<ChildStdout>>,
        limit: Duration,
    ) -> (bool, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "{} did not finish within {limit:?}; stderr: {err}",
                self.what
            );
        };
        let mut text = String::new();
        match out {
            Some(mut o) => {
                o.read_to_string(&mut text).unwrap();
            }
            None => {
                if let Some(mut o) = self.child.stdout.take() {
                    o.read_to_string(&mut text).unwrap();
                }
            }
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.success(), text, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One soak scenario.
struct Scenario {
    name: &'static str,
    mode: &'static str,
    lossy: bool,
    messages: u64,
    inject_server: u64,
    inject_client: u64,
}

/// Both sides' JSON reports.
struct Outcome {
    server: Value,
    client: Value,
}

fn last_json(text: &str, what: &str) -> Value {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report from the {what}: {text}"));
    serde_json::from_str(line).unwrap()
}

fn run(sc: &Scenario) -> Outcome {
    let common = |inject: u64| {
        vec![
            "--json".to_owned(),
            "--mode".to_owned(),
            sc.mode.to_owned(),
            "--inject-failures".to_owned(),
            inject.to_string(),
            "--stall-timeout".to_owned(),
            "30".to_owned(),
        ]
    };
    let mut sargs = common(sc.inject_server);
    sargs.extend(["--role", "server", "--listen", "v2:127.0.0.1:0"].map(String::from));
    let mut server = Proc::spawn("server", &sargs);
    let mut out = BufReader::new(server.child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let listening: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("server's first line {first:?}: {e}"));
    let addrs = listening["addrs"].as_str().unwrap().to_owned();
    let mut cargs = common(sc.inject_client);
    cargs.extend(
        [
            "--role",
            "client",
            "--connect",
            &addrs,
            "--messages",
            &sc.messages.to_string(),
        ]
        .map(String::from),
    );
    if sc.lossy {
        cargs.push("--lossy".into());
    }
    let client = Proc::spawn("client", &cargs);
    let limit = Duration::from_secs(90 + sc.messages / 500);
    let (cok, ctext, cerr) = client.finish(None, limit);
    let (sok, stext, serr) = server.finish(Some(out), Duration::from_secs(30));
    let client_v = last_json(&ctext, "client");
    let server_v = last_json(&stext, "server");
    println!("client: {client_v}\nserver: {server_v}");
    assert!(
        cok && sok,
        "soak failed (client ok {cok}, server ok {sok})\nclient: {client_v}\nclient stderr: {cerr}\nserver: {server_v}\nserver stderr: {serr}"
    );
    Outcome {
        server: server_v,
        client: client_v,
    }
}

fn n(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap()
}

/// One row of the reliability table.
fn row(sc: &Scenario, o: &Outcome) -> String {
    let (c, s) = (&o.client, &o.server);
    let injected = n(c, &["counters", "injected_socket_failures"])
        + n(s, &["counters", "injected_socket_failures"]);
    let reconnects =
        n(c, &["counters", "session_reconnects"]) + n(s, &["counters", "session_reconnects"]);
    let gb = (n(c, &["bytes_sent"]) + n(c, &["bytes_received"])) as f64 / 1e9;
    let load = format!(
        "2 processes, {}{}, DATA 0 B–1 MiB + ECHO 0 B–64 KiB, {gb:.2} GB in {:.1} s ({:.0} msg/s)",
        sc.mode,
        if sc.lossy {
            ", lossy_client → stateless_server"
        } else {
            ", lossless_peer"
        },
        f(c, "duration_s"),
        f(c, "msgs_per_s")
    );
    let every = |x: u64| {
        if x == 0 {
            "off".to_owned()
        } else {
            format!("1/{x}")
        }
    };
    let faults = if sc.lossy {
        format!(
            "socket failures server {} client {}: {injected} injected, {} resets, {} connections",
            every(sc.inject_server),
            every(sc.inject_client),
            n(c, &["client_resets"]),
            n(c, &["connections"])
        )
    } else {
        format!(
            "socket failures server {} client {}: {injected} injected, {reconnects} reconnects, {} resumed",
            every(sc.inject_server),
            every(sc.inject_client),
            n(c, &["counters", "sessions_resumed"]) + n(s, &["counters", "sessions_resumed"])
        )
    };
    let msgs = format!(
        "{} DATA + {} ECHO",
        n(c, &["sent"]),
        n(c, &["echoes_sent_by_server"])
    );
    let lost_dup = if sc.lossy {
        format!(
            "{} DATA + {} ECHO lost (all at resets; {} unexplained) / {} dup / {} reordered",
            n(c, &["data", "lost"]),
            n(c, &["echo", "lost"]),
            n(c, &["lost_without_reset"]),
            n(c, &["duplicated"]),
            n(c, &["reordered"])
        )
    } else {
        format!(
            "{} / {} (reordered {}, corrupt {})",
            n(c, &["lost"]),
            n(c, &["duplicated"]),
            n(c, &["reordered"]),
            n(c, &["corrupt"])
        )
    };
    let result = c["result"].as_str().unwrap_or("?").to_owned();
    format!(
        "| {} | {load} | {faults} | {msgs} | {lost_dup} | {result} |",
        sc.name
    )
}

const TABLE_HEADER: &str = "| scenario | load | faults injected | messages | lost / duplicated | result |\n|---|---|---|---|---|---|";

/// `$MSGR2_RELIABILITY_DIR/soak.md`, else `target/reliability/soak.md`.
fn report_path() -> PathBuf {
    let dir = match std::env::var_os("MSGR2_RELIABILITY_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("reliability"),
    };
    dir.join("soak.md")
}

/// Stores the scenario's row beside the report and rewrites the report from every
/// scenario's latest row (tests run in parallel and one at a time alike).
fn record(sc: &Scenario, row: &str) {
    println!("\n{TABLE_HEADER}\n{row}");
    let path = report_path();
    let dir = path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("soak.{}.rows", sc.name)),
        format!("{row}\n"),
    )
    .unwrap();
    let mut rows: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("soak.") && n.ends_with(".rows")
        })
        .collect();
    rows.sort();
    let mut doc = format!(
        "<!-- written by bench/tests/soak.rs (cargo test -p msgr2-bench --test soak; \
         MSGR2_SOAK_MESSAGES for the long run); binary {} -->\n{TABLE_HEADER}\n",
        msgr2().display()
    );
    for r in rows {
        doc += &std::fs::read_to_string(r).unwrap_or_default();
    }
    // Several tests write at once: write a temporary file and rename it over the report.
    let tmp = dir.join(format!("soak.md.{}.tmp", sc.name));
    std::fs::write(&tmp, doc).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Two lossless peers, failures injected on both sides every few hundred socket operations.
#[test]
fn lossless_soak_survives_injected_socket_failures() {
    let sc = Scenario {
        name: "lossless-crc",
        mode: "crc",
        lossy: false,
        messages: messages(40_000),
        inject_server: 300,
        inject_client: 300,
    };
    let o = run(&sc);
    let (c, s) = (&o.client, &o.server);
    for k in ["lost", "duplicated", "reordered", "corrupt"] {
        assert_eq!(n(c, &[k]), 0, "{k}: {c}");
    }
    assert_eq!(n(c, &["sent"]), sc.messages);
    assert_eq!(n(s, &["data", "received"]), sc.messages);
    assert_eq!(n(c, &["echo", "received"]), sc.messages);
    assert!(
        n(c, &["counters", "injected_socket_failures"])
            + n(s, &["counters", "injected_socket_failures"])
            > 0,
        "faults were injected"
    );
    assert!(
        n(c, &["counters", "sessions_resumed"]) + n(s, &["counters", "sessions_resumed"]) > 0,
        "the session was resumed after faults"
    );
    record(&sc, &row(&sc, &o));
}

/// A lossy client: resets lose messages, never duplicate them, and every loss is reported.
#[test]
fn lossy_client_soak_reports_every_loss_as_a_reset() {
    let sc = Scenario {
        name: "lossy-client-crc",
        mode: "crc",
        lossy: true,
        messages: messages(20_000),
        inject_server: 300,
        inject_client: 300,
    };
    let o = run(&sc);
    let c = &o.client;
    for k in ["duplicated", "reordered", "corrupt", "lost_without_reset"] {
        assert_eq!(n(c, &[k]), 0, "{k}: {c}");
    }
    assert_eq!(n(c, &["sent"]), sc.messages);
    assert!(
        n(c, &["client_resets"]) > 0,
        "faults reset the lossy connection"
    );
    assert!(
        n(c, &["connections"]) > 1,
        "the client dialled again after resets"
    );
    record(&sc, &row(&sc, &o));
}

/// The lossless soak in secure mode (cephx, AES-GCM): replay after reconnects re-seals.
#[test]
fn secure_lossless_soak() {
    let sc = Scenario {
        name: "lossless-secure",
        mode: "secure",
        lossy: false,
        messages: messages(15_000),
        inject_server: 300,
        inject_client: 300,
    };
    let o = run(&sc);
    let c = &o.client;
    for k in ["lost", "duplicated", "reordered", "corrupt"] {
        assert_eq!(n(c, &[k]), 0, "{k}: {c}");
    }
    assert_eq!(n(c, &["echo", "received"]), sc.messages);
    record(&sc, &row(&sc, &o));
}
