//! Ceph's own CLI against our admin sockets: `ceph daemon SOCK perf dump | perf schema |
//! config show | config get | help | version` and `ceph --admin-daemon SOCK help` against
//! `msgr2 server`, `msgr2 bench server` and the example OSD daemon, with Ceph 16 (the host's)
//! and Ceph 18 / 20 (their chroots); the dumped counters equal what the process itself
//! reports in the same run; an unknown command is refused by the CLI as by a Ceph daemon
//! (exit 22); bad raw requests get Ceph's error shape and the socket stays usable; the socket
//! is mode 0600. A missing Ceph is a failure; `MSGR2_CEPH_VERSIONS` selects versions.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root, wanted, Cells};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// A socket directory, removed on drop (also when a cell fails).
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where sockets go for Ceph `version`: (directory on the host, the same inside its chroot).
fn sock_dir(version: u32, tag: &str) -> (Dir, String) {
    let inside = format!("/tmp/msgr2-asok-{tag}-{}", std::process::id());
    let host = if version == 16 {
        PathBuf::from(&inside)
    } else {
        let out = Command::new(root().join("tests/ceph/chroot.sh"))
            .args(["path", &version.to_string()])
            .output()
            .unwrap();
        let r = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(format!("{}{inside}", r.trim()))
    };
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(&host).unwrap();
    (Dir(host), inside)
}

/// Ceph `version`'s `ceph` CLI (host or chroot); fails if it is missing.
fn ceph(version: u32) -> Command {
    if version == 16 {
        assert!(
            Command::new("which")
                .arg("ceph")
                .output()
                .unwrap()
                .status
                .success(),
            "the ceph CLI is not installed: run tests/run.sh (tests/ceph/install.sh)"
        );
        Command::new("ceph")
    } else {
        let ok = Command::new(root().join("tests/ceph/chroot.sh"))
            .args(["check", &version.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "the Ceph {version} chroot is missing: tests/ceph/chroot.sh create {version}"
        );
        let mut c = Command::new(root().join("tests/ceph/chroot.sh"));
        c.args(["run", &version.to_string(), "ceph"]);
        c
    }
}

/// Runs `ceph <args>`: (exit code, stdout, stderr).
fn run(version: u32, args: &[&str]) -> (i32, String, String) {
    let out = ceph(version).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ceph daemon SOCK <cmd...>` parsed as JSON.
fn daemon(version: u32, sock: &str, cmd: &[&str]) -> Value {
    let mut args = vec!["daemon", sock];
    args.extend_from_slice(cmd);
    let (rc, out, err) = run(version, &args);
    assert_eq!(rc, 0, "ceph daemon {cmd:?}: {err}{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ceph daemon {cmd:?}: {e}: {out}"))
}

/// The raw reply to `req`, or None when the socket closed unanswered.
fn raw(path: &std::path::Path, req: &[u8]) -> Option<String> {
    msgr2_engine::admin::request(path, req, T).unwrap()
}

/// Kills and reaps a child on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads stdout lines until one satisfies `f` (returned).
fn wait_line(out: &mut BufReader<ChildStdout>, f: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "process ended before the expected line");
        if f(&line) {
            return line;
        }
        assert!(start.elapsed() < T, "timed out waiting for a line");
    }
}

fn sum(dump: &Value, workers: &[u64], counter: &str) -> u64 {
    workers
        .iter()
        .map(|w| {
            dump[format!("AsyncMessenger::Worker-{w}")][counter]
                .as_u64()
                .unwrap()
        })
        .sum()
}

/// The worker numbers of messenger `label` in `messenger status`.
fn workers_of(status: &Value, label: &str) -> Vec<u64> {
    status["messengers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["label"] == label)
        .flat_map(|m| m["cores"].as_array().unwrap().iter())
        .map(|c| {
            c["worker"].as_str().unwrap()["AsyncMessenger::Worker-".len()..]
                .parse()
                .unwrap()
        })
        .collect()
}

/// What every socket must answer, whatever the process.
fn common_checks(v: u32, host: &PathBuf, sock: &str, name: &str) {
    let mode = std::fs::metadata(host).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let help = daemon(v, sock, &["help"]);
    for c in [
        "perf dump",
        "perf schema",
        "config show",
        "config get",
        "version",
        "messenger status",
    ] {
        assert!(help.get(c).is_some(), "help lacks {c}: {help}");
    }
    let (rc, out, err) = run(v, &["--admin-daemon", sock, "help"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), help);
    let ver = daemon(v, sock, &["version"]);
    assert_eq!(ver["release"], "msgr2-rs");
    let (rc, out, _) = run(v, &["daemon", sock, "version", "-f", "json"]);
    assert_eq!(rc, 0);
    assert!(!out.contains('\n'), "compact json: {out}");
    let show = daemon(v, sock, &["config", "show"]);
    assert_eq!(show["name"], name);
    // The path the process opened (for a chroot's CLI, the host's path of the same socket).
    let opened = host.display().to_string();
    assert_eq!(show["admin_socket"].as_str().unwrap(), opened);
    let get = daemon(v, sock, &["config", "get", "admin_socket"]);
    assert_eq!(get["admin_socket"].as_str().unwrap(), opened);
    let schema = daemon(v, sock, &["perf", "schema"]);
    let s = &schema["AsyncMessenger::Worker-0"]["msgr_send_bytes"];
    assert_eq!(s["type"], 10);
    assert_eq!(s["units"], "bytes");
    assert_eq!(s["description"], "Network sent bytes");
    // Ceph's filters: one section, one counter.
    let one = daemon(
        v,
        sock,
        &[
            "perf",
            "dump",
            "AsyncMessenger::Worker-0",
            "msgr_recv_bytes",
        ],
    );
    assert_eq!(one.as_object().unwrap().len(), 1, "{one}");
    assert!(
        one["AsyncMessenger::Worker-0"]["msgr_recv_bytes"].is_u64(),
        "{one}"
    );
    // Errors: what a Ceph daemon does.
    let (rc, out, err) = run(v, &["daemon", sock, "no", "such", "command"]);
    assert_eq!(rc, 22, "{out}{err}");
    assert!(err.contains("admin_socket: invalid command"), "{err}");
    let (rc, out, _) = run(v, &["daemon", sock, "config", "get", "no_such_option"]);
    assert_eq!(rc, 0);
    assert_eq!(
        out.trim_end(),
        "ERROR: (2) No such file or directory\nerror getting 'no_such_option': (2) No such file or directory"
    );
    assert_eq!(
        raw(host, b"garbage\0").unwrap(),
        "ERROR: (22) Invalid argument\ninvalid json\n"
    );
    assert_eq!(
        raw(host, b"{\"prefix\": \"no such\"}\n").unwrap(),
        "ERROR: (22) Invalid argument\nunknown command prefix no such\n"
    );
    assert_eq!(
        raw(host, &vec![b'{'; 1 << 20]),
        None,
        "huge request answered"
    );
    // Still serving after all of that.
    assert_eq!(daemon(v, sock, &["version"]), ver);
}

/// A conf file in `dir` whose `admin socket` for `name` is `DIR/$cluster-$name.asok` (set in
/// `[TYPE.ID]`, over other values in `[TYPE]` and `[global]`, spelled both ways).
fn conf_naming_socket(dir: &std::path::Path, name: &str) -> PathBuf {
    let ty = name.split('.').next().unwrap();
    let conf = dir.join("ceph.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "[global]\nadmin socket = /nonexistent/$name.asok\n\
             [{ty}]\nadmin_socket = {d}/wrong-$name.asok\n\
             [{name}]\nadmin socket = {d}/$cluster-$name.asok\n"
        ),
    )
    .unwrap();
    conf
}

/// `msgr2 server -c FILE --name mon.a` opens the socket `[mon.a]` of FILE names (a mon-style
/// endpoint: `msgr2 ping` wants a mon).
fn msgr2_server(v: u32) {
    let (dir_guard, inside) = sock_dir(v, "server");
    let dir = dir_guard.0.clone();
    let conf = conf_naming_socket(&dir, "mon.a");
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_msgr2"))
            .args(["server", "--listen", "v2:127.0.0.1:0", "--name", "mon.a"])
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let line = wait_line(&mut out, |l| l.contains("\"listening\""));
    let addrs = serde_json::from_str::<Value>(&line).unwrap()["addrs"]
        .as_str()
        .unwrap()
        .to_owned();
    let host = dir.join("ceph-mon.a.asok");
    let sock = format!("{inside}/ceph-mon.a.asok");
    // Traffic of our own: `msgr2 ping` fetches the monmap (MMonGetMap).
    let ping = Command::new(env!("CARGO_BIN_EXE_msgr2"))
        .args(["ping", "--mon", &addrs])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    // The server printed one "message" event per message it received.
    let mut messages = 0u64;
    let start = Instant::now();
    loop {
        let l = wait_line(&mut out, |_| true);
        if l.contains("\"message\"") {
            messages += 1;
        }
        if l.contains("\"reset\"") || start.elapsed() > T {
            break;
        }
    }
    let status = daemon(v, &sock, &["messenger", "status"]);
    let dump = daemon(v, &sock, &["perf", "dump"]);
    let w = workers_of(&status, "server");
    assert!(messages > 0);
    assert_eq!(sum(&dump, &w, "msgr_recv_messages"), messages, "{dump}");
    assert_eq!(sum(&dump, &w, "msgr_created_connections"), 1, "{dump}");
    assert!(sum(&dump, &w, "msgr_send_bytes") > 0);
    let mon_host = daemon(v, &sock, &["config", "get", "mon_host"]);
    assert_eq!(mon_host["mon_host"].as_str().unwrap(), addrs);
    common_checks(v, &host, &sock, "mon.a");
    drop(child);
    drop(dir_guard);
}

/// `msgr2 bench server` with `--admin-socket`; with `--ceph-perf`, from `$CEPH_CONF`
/// instead (its `[osd.0]`).
fn bench_server(v: u32, ceph_perf: bool) {
    let (dir_guard, inside) = sock_dir(v, if ceph_perf { "perf" } else { "bench" });
    let dir = dir_guard.0.clone();
    let name = if ceph_perf { "osd.0" } else { "mon.bench" };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msgr2"));
    cmd.args(["bench", "server", "--listen", "v2:127.0.0.1:0"]);
    let file = if ceph_perf {
        cmd.arg("--ceph-perf")
            .env("CEPH_CONF", conf_naming_socket(&dir, name));
        format!("ceph-{name}.asok")
    } else {
        cmd.arg("--admin-socket").arg(dir.join("$name.asok"));
        format!("{name}.asok")
    };
    let mut child = Proc(cmd.stdout(Stdio::piped()).spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let line = wait_line(&mut out, |l| l.starts_with("msgr2 bench server"));
    let host = dir.join(&file);
    let sock = format!("{inside}/{file}");
    let label = if ceph_perf { "server" } else { "msgr2" };
    let status = daemon(v, &sock, &["messenger", "status"]);
    let w = workers_of(&status, label);
    assert!(!w.is_empty(), "{status}");
    if !ceph_perf {
        // `msgr2 bench client` against it; the dump then shows its messages.
        let addr = line
            .split("msgr2 [")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .unwrap()
            .to_owned();
        let c = Command::new(env!("CARGO_BIN_EXE_msgr2"))
            .args(["bench", "client", "--connect", &addr, "--modes", "crc"])
            .args(["--sizes", "4K", "--duration", "0.3", "--cores", "0"])
            .output()
            .unwrap();
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
        let dump = daemon(v, &sock, &["perf", "dump"]);
        assert!(sum(&dump, &w, "msgr_recv_messages") > 100, "{dump}");
        assert!(sum(&dump, &w, "msgr_created_connections") >= 1, "{dump}");
        assert!(workers_of(&status, "raw").len() == w.len());
    }
    common_checks(v, &host, &sock, name);
    drop(child);
    drop(dir_guard);
}

fn osd_daemon(v: u32) {
    let example = example_osd_daemon();
    let (dir_guard, inside) = sock_dir(v, "osd");
    let dir = dir_guard.0.clone();
    let mut child = Proc(
        Command::new(example)
            .args(["2000", "4096", "--admin-socket"])
            .arg(dir.join("$cluster-$name.asok"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    wait_line(&mut out, |l| l.contains("replicated writes"));
    let line = wait_line(&mut out, |l| l.starts_with("cluster messenger:"));
    // "cluster messenger: S sent, R received, ..."
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let (sent, received) = (nums[0], nums[1]);
    let sock = format!("{inside}/ceph-osd.0.asok");
    let host = dir.join("ceph-osd.0.asok");
    let status = daemon(v, &sock, &["messenger", "status"]);
    let dump = daemon(v, &sock, &["perf", "dump"]);
    let public = workers_of(&status, "public");
    let cluster = workers_of(&status, "cluster");
    assert_eq!(sum(&dump, &public, "msgr_recv_messages"), 2000, "{dump}");
    assert_eq!(sum(&dump, &public, "msgr_send_messages"), 2000, "{dump}");
    assert_eq!(sum(&dump, &cluster, "msgr_send_messages"), sent, "{dump}");
    assert_eq!(
        sum(&dump, &cluster, "msgr_recv_messages"),
        received,
        "{dump}"
    );
    common_checks(v, &host, &sock, "osd.0");
    // Closing stdin shuts the daemon down, which removes the socket.
    drop(child.0.stdin.take());
    let st = child.0.wait().unwrap();
    assert!(st.success());
    assert!(!host.exists(), "socket left behind");
    drop(dir_guard);
}

/// Builds (once) and returns the `osd_daemon` example of the engine.
fn example_osd_daemon() -> PathBuf {
    // The profile of this test's own binaries (a no-op when the example is fresh).
    let release = env!("CARGO_BIN_EXE_msgr2").contains("/release/");
    let out = Command::new(env!("CARGO"))
        .arg("build")
        .args(release.then_some("--release"))
        .args([
            "--locked",
            "-p",
            "msgr2-engine",
            "--example",
            "osd_daemon",
            "--message-format=json",
        ])
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the osd_daemon example failed"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"]["name"] == "osd_daemon")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .expect("osd_daemon executable")
}

fn all(v: u32) {
    if !wanted(v) {
        return;
    }
    let mut cells = Cells::new(format!("Ceph {v} admin socket"));
    cells.cell("msgr2 server", || msgr2_server(v));
    cells.cell("msgr2 bench server", || bench_server(v, false));
    cells.cell("msgr2 bench server --ceph-perf", || bench_server(v, true));
    cells.cell("osd_daemon example", || osd_daemon(v));
    cells.finish();
}

#[test]
fn ceph16_admin_socket() {
    all(16);
}

#[test]
fn ceph18_admin_socket() {
    all(18);
}

#[test]
fn ceph20_admin_socket() {
    all(20);
}
