//! `msgr2 bench` end to end on short runs: the JSON has the documented shape and every cell
//! moved data (its speed is not judged here), the plot is well-formed SVG, the two-process
//! form works, ping-pong runs at depth 1, and bad options fail cleanly.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn msgr2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msgr2"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msgr2-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const CELL_KEYS: [&str; 10] = [
    "size",
    "mode",
    "gbps",
    "msgs_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "cpu_s_per_gb_client",
    "cpu_s_per_gb_server",
    "ratio_to_raw",
];

/// Checks the document's shape and that every (size, mode) cell moved data.
fn machine_is_engine(doc: &Value) -> bool {
    doc["machine"]["transport"] == "engine"
}

fn check_doc(doc: &Value, sizes: &[u64], modes: &[&str]) {
    let machine = doc["machine"].as_object().expect("machine object");
    for k in [
        "kernel",
        "logical_cpus",
        "date",
        "transport",
        "conns",
        "depth",
    ] {
        assert!(machine.contains_key(k), "machine.{k} missing: {machine:?}");
    }
    let cells = doc["cells"].as_array().expect("cells array");
    assert_eq!(cells.len(), sizes.len() * modes.len(), "{cells:?}");
    for &size in sizes {
        for &mode in modes {
            let c = cells
                .iter()
                .find(|c| c["size"] == size && c["mode"] == mode)
                .unwrap_or_else(|| panic!("no cell {size} {mode}: {cells:?}"));
            for k in CELL_KEYS {
                assert!(c.get(k).is_some(), "cell {size} {mode} lacks {k}: {c}");
            }
            for k in &CELL_KEYS[2..] {
                if mode == "tcp" && k.ends_with("_us") {
                    continue;
                }
                let v = c[k]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{k} not a number: {c}"));
                assert!(v.is_finite() && v >= 0.0, "{k} = {v}: {c}");
            }
            assert!(c["gbps"].as_f64().unwrap() > 0.0, "moved nothing: {c}");
            assert!(
                c["msgs_per_s"].as_f64().unwrap() > 0.0,
                "moved nothing: {c}"
            );
            assert!(c["bytes"].as_u64().unwrap() >= size, "moved nothing: {c}");
            if mode == "tcp" {
                // A one-way stream: no round trips, no latency.
                assert!(c["p50_us"].is_null(), "tcp latency: {c}");
                continue;
            }
            assert!(c["p50_us"].as_f64().unwrap() > 0.0, "no latency: {c}");
            // The bench binary counts heap allocations on each side (engine transport).
            if machine_is_engine(doc) {
                for k in [
                    "allocs_per_msg_client",
                    "allocs_per_msg_server",
                    "heap_bytes_per_conn",
                ] {
                    assert!(c[k].as_f64().is_some_and(f64::is_finite), "{k}: {c}");
                }
                // per CPU, both sides: the server on CPU 0, the client on CPU 1 (2+ CPUs)
                let per_core = c["per_core"].as_array().expect("per_core");
                for side in ["server", "client"] {
                    let mine: Vec<_> = per_core.iter().filter(|p| p["side"] == side).collect();
                    assert!(!mine.is_empty(), "no {side} cores: {c}");
                    let msgs: f64 = mine.iter().filter_map(|p| p["msgs_per_s"].as_f64()).sum();
                    assert!(msgs > 0.0, "{side} handled nothing: {c}");
                }
            }
            assert!(
                c["p50_us"].as_f64().unwrap() <= c["p999_us"].as_f64().unwrap(),
                "percentiles out of order: {c}"
            );
            if mode == "raw" {
                assert_eq!(c["ratio_to_raw"].as_f64(), Some(1.0));
            }
        }
    }
}

fn check_svg(path: &PathBuf) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let count = |tag: &str| doc.descendants().filter(|n| n.has_tag_name(tag)).count();
    assert!(count("text") > 4, "no labels");
    assert!(count("polyline") + count("path") > 0, "no lines");
    assert!(count("circle") > 0, "no points");
}

#[test]
fn loopback_json_and_plot() {
    let json = scratch("loop.json");
    let svg = scratch("loop.svg");
    let out = msgr2()
        .args([
            "bench",
            "--sizes",
            "4K,64K",
            "--duration",
            "0.3",
            "--depth",
            "4",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The table: a header and one row per cell.
    assert!(stdout.contains("GB/s"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| ["tcp", "raw", "crc", "secure"]
                .iter()
                .any(|m| l.contains(&format!("KiB {m}"))))
            .count(),
        8,
        "{stdout}"
    );
    // The progress went to stderr.
    // The default modes: the kernel's ceiling (tcp) and ours.
    assert!(stderr.contains("[8/8]"), "{stderr}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The io_uring engine is the default transport.
    assert_eq!(doc["machine"]["transport"], "engine");
    check_doc(&doc, &[4096, 65536], &["tcp", "raw", "crc", "secure"]);
    check_svg(&svg);
}

#[test]
fn blocking_transport_ping_pong() {
    let json = scratch("pp.json");
    let out = msgr2()
        .args([
            "bench",
            "--transport",
            "blocking",
            "--ping-pong",
            "--sizes",
            "4K",
            "--modes",
            "crc,raw",
            "--duration",
            "0.2",
            "--conns",
            "2",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["machine"]["workload"], "ping-pong");
    assert_eq!(doc["machine"]["depth"], 1);
    assert_eq!(doc["machine"]["transport"], "blocking");
    check_doc(&doc, &[4096], &["raw", "crc"]);
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Server and client cores: apart when the machine has two CPUs or more.
fn side_cores() -> (&'static str, &'static str) {
    match std::thread::available_parallelism().map(|n| n.get()) {
        Ok(n) if n >= 2 => ("0", "1"),
        _ => ("0", "0"),
    }
}

#[test]
fn server_and_client_processes() {
    let (server_core, client_core) = side_cores();
    let mut server = Killed(
        msgr2()
            .args([
                "bench",
                "server",
                "--listen",
                "[v2:127.0.0.1:0/0]",
                "--cores",
                server_core,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let _banner = lines.next().unwrap().unwrap();
    let hint = lines.next().unwrap().unwrap();
    // "client: msgr2 bench client --connect '[v2:…]' --raw-connect IP:PORT"
    let args: Vec<String> = hint
        .split_whitespace()
        .skip(4)
        .map(|w| w.trim_matches('\'').to_owned())
        .collect();
    assert_eq!(args[0], "--connect", "{hint}");
    assert_eq!(args[2], "--raw-connect", "{hint}");
    let json = scratch("cs.json");
    let out = msgr2()
        .args(["bench", "client"])
        .args(&args)
        .args(["--sizes", "4K", "--duration", "0.2", "--cores", client_core])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["machine"]["role"], "client");
    check_doc(&doc, &[4096], &["raw", "crc", "secure"]);
    // The server's CPU came over the wire.
    assert!(doc["cells"][0]["cpu_s_per_gb_server"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_options_fail_cleanly() {
    for args in [
        &["bench", "--sizes", "1T"][..],
        &["bench", "--modes", "fast"],
        &["bench", "--duration", "0"],
        &["bench", "--transport", "carrier-pigeon"],
        &["bench", "--cores", "3-1"],
    ] {
        let out = msgr2().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("msgr2 bench: "), "{args:?}: {err}");
    }
}
