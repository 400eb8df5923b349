//! Results: per-cell figures, the table, the JSON document and the machine description.

use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::cpu::CoreFigures;
use super::spec::{size_label, Mode};
use super::transport::IoCounts;

/// What the client measured in one cell.
#[derive(Debug)]
pub struct Measure {
    /// Payload bytes acknowledged (client → server direction).
    pub bytes: u64,
    /// Messages acknowledged.
    pub msgs: u64,
    /// Wall time from the first send to the last reply, seconds.
    pub elapsed_s: f64,
    /// Send → reply latencies, ns.
    pub hist: Histogram<u64>,
    /// CPU nanoseconds of the client side's threads during the cell.
    pub client_cpu_ns: u64,
    /// CPU nanoseconds of the server side's threads during the cell (as the server reported).
    pub server_cpu_ns: u64,
    /// Heap allocations of the client side's threads during the cell (counting allocator).
    pub client_allocs: Option<u64>,
    /// Heap allocations of the server side's threads during the cell, as it reported them.
    pub server_allocs: Option<u64>,
    /// Heap bytes the process kept per connection once the cell's connections were up (both
    /// ends in a loopback run, the client's in `bench client`), counting allocator.
    pub heap_bytes_per_conn: Option<f64>,
    /// Per side and CPU: what its reactor threads did during the cell (engine transport).
    pub per_core: Vec<CoreCell>,
    /// The client transport's I/O counters during the cell, where it keeps them.
    pub client_io: Option<IoCounts>,
    /// CPUs kept busy by other processes during the cell, on average (0 = a quiet machine).
    pub other_cpus: Option<f64>,
}

/// One row of the result: a (size, mode) cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// Message payload size, bytes.
    pub size: u64,
    /// Mode.
    pub mode: Mode,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Messages moved.
    pub msgs: u64,
    /// Measured seconds.
    pub elapsed_s: f64,
    /// Payload throughput, GB/s (1e9 bytes).
    pub gbps: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// 99.9th percentile latency, µs.
    pub p999_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// Whether round trips were timed: the `tcp` cell is a one-way stream and has no
    /// latency (its percentiles are 0 here, `null` in JSON and `-` in the table).
    pub latency_measured: bool,
    /// Client CPU seconds per GB moved.
    pub cpu_s_per_gb_client: f64,
    /// Server CPU seconds per GB moved.
    pub cpu_s_per_gb_server: f64,
    /// Throughput relative to the raw cell of the same size in this run.
    pub ratio_to_raw: Option<f64>,
    /// Median latency relative to the raw cell of the same size in this run.
    pub p50_ratio_to_raw: Option<f64>,
    /// Throughput relative to the `tcp` cell (the kernel's single-stream ceiling) of the
    /// same size in this run.
    pub ratio_to_tcp: Option<f64>,
    /// Client `io_uring_enter` calls, send operations and sleeps per message (engine).
    pub client_io_per_msg: Option<(f64, f64, f64)>,
    /// CPUs kept busy by other processes during the cell, on average.
    pub other_cpus: Option<f64>,
    /// Heap allocations per message on the client and the server side (engine transport,
    /// counting allocator), messages counted once per round trip.
    pub allocs_per_msg: (Option<f64>, Option<f64>),
    /// See [`Measure::heap_bytes_per_conn`].
    pub heap_bytes_per_conn: Option<f64>,
    /// See [`Measure::per_core`].
    pub per_core: Vec<CoreCell>,
}

/// What one side's reactor threads on one CPU did during a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreCell {
    /// `client` or `server`.
    pub side: &'static str,
    /// The CPU.
    pub cpu: u64,
    /// Messages handled there (data received by the server, replies by the client).
    pub msgs: u64,
    /// CPU nanoseconds its threads used.
    pub cpu_ns: u64,
}

/// The per-CPU figures of `side` during a cell, from snapshots before and after it.
pub fn per_core_delta(
    side: &'static str,
    before: &[CoreFigures],
    after: &[CoreFigures],
) -> Vec<CoreCell> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.cpu == a.cpu);
            CoreCell {
                side,
                cpu: a.cpu,
                msgs: a.msgs.saturating_sub(b.map_or(0, |b| b.msgs)),
                cpu_ns: a.cpu_ns.saturating_sub(b.map_or(0, |b| b.cpu_ns)),
            }
        })
        .collect()
}

impl CellResult {
    /// Derives the figures of a cell from what was measured.
    pub fn new(size: u64, mode: Mode, m: &Measure) -> Self {
        let secs = m.elapsed_s.max(1e-9);
        let us = |q: f64| {
            if m.hist.is_empty() {
                0.0
            } else {
                m.hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let per_gb = |ns: u64| {
            if m.bytes == 0 {
                0.0
            } else {
                // (ns / 1e9) seconds / (bytes / 1e9) GB
                ns as f64 / m.bytes as f64
            }
        };
        Self {
            size,
            mode,
            bytes: m.bytes,
            msgs: m.msgs,
            elapsed_s: m.elapsed_s,
            gbps: m.bytes as f64 / secs / 1e9,
            msgs_per_s: m.msgs as f64 / secs,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: if m.hist.is_empty() {
                0.0
            } else {
                m.hist.max() as f64 / 1000.0
            },
            latency_measured: !m.hist.is_empty(),
            cpu_s_per_gb_client: per_gb(m.client_cpu_ns),
            cpu_s_per_gb_server: per_gb(m.server_cpu_ns),
            ratio_to_raw: None,
            p50_ratio_to_raw: None,
            ratio_to_tcp: None,
            other_cpus: m.other_cpus,
            heap_bytes_per_conn: m.heap_bytes_per_conn,
            per_core: m.per_core.clone(),
            allocs_per_msg: {
                let per =
                    |a: Option<u64>| a.filter(|_| m.msgs > 0).map(|a| a as f64 / m.msgs as f64);
                (per(m.client_allocs), per(m.server_allocs))
            },
            client_io_per_msg: m.client_io.filter(|_| m.msgs > 0).map(|io| {
                let n = m.msgs as f64;
                (
                    io.enters as f64 / n,
                    io.send_ops as f64 / n,
                    io.sleeps as f64 / n,
                )
            }),
        }
    }

    /// The cell as JSON (the field names first).
    pub fn to_json(&self) -> Value {
        let lat = |v: f64| self.latency_measured.then(|| round(v, 2));
        json!({
            "size": self.size,
            "mode": self.mode.name(),
            "gbps": round(self.gbps, 4),
            "msgs_per_s": round(self.msgs_per_s, 1),
            "p50_us": lat(self.p50_us),
            "p99_us": lat(self.p99_us),
            "p999_us": lat(self.p999_us),
            "cpu_s_per_gb_client": round(self.cpu_s_per_gb_client, 4),
            "cpu_s_per_gb_server": round(self.cpu_s_per_gb_server, 4),
            "ratio_to_raw": self.ratio_to_raw.map(|r| round(r, 3)),
            "p50_ratio_to_raw": self.p50_ratio_to_raw.map(|r| round(r, 3)),
            "ratio_to_tcp": self.ratio_to_tcp.map(|r| round(r, 3)),
            "max_us": lat(self.max_us),
            "bytes": self.bytes,
            "msgs": self.msgs,
            "elapsed_s": round(self.elapsed_s, 3),
            "client_ring_enters_per_msg": self.client_io_per_msg.map(|x| round(x.0, 3)),
            "client_send_ops_per_msg": self.client_io_per_msg.map(|x| round(x.1, 3)),
            "client_sleeps_per_msg": self.client_io_per_msg.map(|x| round(x.2, 3)),
            "other_cpus_busy": self.other_cpus.map(|x| round(x, 2)),
            "allocs_per_msg_client": self.allocs_per_msg.0.map(|x| round(x, 3)),
            "allocs_per_msg_server": self.allocs_per_msg.1.map(|x| round(x, 3)),
            "heap_bytes_per_conn": self.heap_bytes_per_conn.map(|x| round(x, 0)),
            "per_core": self.per_core.iter().map(|c| json!({
                "side": c.side,
                "cpu": c.cpu,
                "msgs_per_s": round(c.msgs as f64 / self.elapsed_s.max(1e-9), 1),
                "cpu_busy": round(c.cpu_ns as f64 / 1e9 / self.elapsed_s.max(1e-9), 3),
            })).collect::<Vec<_>>(),
        })
    }
}

fn round(x: f64, digits: i32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

/// Sets each cell's ratios to the raw cell of the same size, where there is one that moved
/// data.
pub fn fill_ratios(cells: &mut [CellResult]) {
    let raws: Vec<(u64, f64, f64)> = cells
        .iter()
        .filter(|c| c.mode == Mode::Raw && c.gbps > 0.0)
        .map(|c| (c.size, c.gbps, c.p50_us))
        .collect();
    let tcps: Vec<(u64, f64)> = cells
        .iter()
        .filter(|c| c.mode == Mode::Tcp && c.gbps > 0.0)
        .map(|c| (c.size, c.gbps))
        .collect();
    for c in cells.iter_mut() {
        if let Some((_, g, p)) = raws.iter().find(|(s, _, _)| *s == c.size) {
            c.ratio_to_raw = Some(c.gbps / g);
            c.p50_ratio_to_raw = (*p > 0.0 && c.p50_us > 0.0).then(|| c.p50_us / p);
        }
        if let Some((_, g)) = tcps.iter().find(|(s, _)| *s == c.size) {
            c.ratio_to_tcp = Some(c.gbps / g);
        }
    }
}

/// The table's header line.
pub fn table_header() -> String {
    format!(
        "{:>7} {:<7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6}",
        "size",
        "mode",
        "GB/s",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "cpu cli",
        "cpu srv",
        "×raw",
        "p50×raw",
        "×tcp"
    )
}

/// One table line.
pub fn table_row(c: &CellResult) -> String {
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
    let lat = |v: f64| {
        if c.latency_measured {
            format!("{v:.1}")
        } else {
            "-".to_owned()
        }
    };
    format!(
        "{:>7} {:<7} {:>8.3} {:>10.0} {:>9} {:>9} {:>9} {:>8.3} {:>8.3} {:>6} {:>6} {:>6}",
        size_label(c.size),
        c.mode.name(),
        c.gbps,
        c.msgs_per_s,
        lat(c.p50_us),
        lat(c.p99_us),
        lat(c.p999_us),
        c.cpu_s_per_gb_client,
        c.cpu_s_per_gb_server,
        ratio(c.ratio_to_raw),
        ratio(c.p50_ratio_to_raw),
        ratio(c.ratio_to_tcp),
    )
}

/// A note under the table saying what the columns mean.
pub const TABLE_NOTE: &str = "GB = 1e9 bytes of payload client→server; latency = send → reply; \
cpu cli/srv = CPU seconds per GB on each side; ×raw = throughput (and p50) over the raw cell \
of the same size in this run; ×tcp = throughput over the tcp cell (a plain blocking socket \
pair, 1 MiB writes and reads: the kernel's single-stream ceiling) of this run";

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let s = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    s.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn mem_total_gib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb / (1024.0 * 1024.0) * 10.0).round() / 10.0)
}

/// The 1-minute load average when the run started: other work on the machine skews figures.
fn loadavg() -> Option<f64> {
    read_trim("/proc/loadavg")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The run's settings, for the `machine` object.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `local`, `client` or `server`.
    pub role: &'static str,
    /// Transport name.
    pub transport: &'static str,
    /// Connections per cell.
    pub conns: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Seconds per cell.
    pub duration_s: f64,
    /// Depth-1 round trips.
    pub ping_pong: bool,
    /// Server cores (loopback run) or none.
    pub server_cores: Vec<usize>,
    /// Client cores.
    pub client_cores: Vec<usize>,
    /// glibc malloc tuned for large messages (`MSGR2_NO_MALLOC_TUNING` unset).
    pub malloc_tuned: bool,
}

/// The `machine` object: where and how the run happened.
pub fn machine_json(run: &RunInfo) -> Value {
    json!({
        "hostname": read_trim("/proc/sys/kernel/hostname"),
        "kernel": read_trim("/proc/sys/kernel/osrelease"),
        "cpu_model": cpu_model(),
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "mem_total_gib": mem_total_gib(),
        "date": utc_now(),
        "msgr2_version": env!("CARGO_PKG_VERSION"),
        "commit": git_commit(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "role": run.role,
        "transport": run.transport,
        "conns": run.conns,
        "depth": run.depth,
        "duration_s": run.duration_s,
        "workload": if run.ping_pong { "ping-pong" } else { "stream" },
        "loadavg_1m": loadavg(),
        "malloc_tuned_for_large_messages": run.malloc_tuned,
        "server_cores": run.server_cores,
        "client_cores": run.client_cores,
    })
}

/// The whole JSON document.
pub fn document(run: &RunInfo, cells: &[CellResult]) -> Value {
    json!({
        "machine": machine_json(run),
        "cells": cells.iter().map(CellResult::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::new_histogram;

    fn measure(bytes: u64, ns: u64) -> Measure {
        let mut hist = new_histogram();
        hist.saturating_record(ns);
        Measure {
            bytes,
            msgs: bytes / 4096,
            elapsed_s: 1.0,
            hist,
            client_cpu_ns: bytes / 2,
            client_allocs: None,
            server_allocs: None,
            heap_bytes_per_conn: None,
            per_core: Vec::new(),
            server_cpu_ns: bytes,
            client_io: Some(IoCounts {
                enters: bytes / 4096 / 2,
                send_ops: 0,
                sleeps: 0,
            }),
            other_cpus: Some(0.25),
        }
    }

    #[test]
    fn figures_ratios_and_json() {
        let mut cells = vec![
            CellResult::new(4096, Mode::Raw, &measure(2_000_000_000, 10_000)),
            CellResult::new(4096, Mode::Crc, &measure(1_000_000_000, 20_000)),
            CellResult::new(65536, Mode::Crc, &measure(4096, 20_000)),
        ];
        fill_ratios(&mut cells);
        assert_eq!(cells[0].gbps, 2.0);
        assert_eq!(cells[1].ratio_to_raw, Some(0.5));
        assert!(cells[1]
            .p50_ratio_to_raw
            .is_some_and(|r| (r - 2.0).abs() < 0.01));
        assert_eq!(cells[2].ratio_to_raw, None);
        assert_eq!(cells[1].cpu_s_per_gb_client, 0.5);
        assert_eq!(cells[1].cpu_s_per_gb_server, 1.0);
        let j = cells[1].to_json();
        assert_eq!(j["mode"], "crc");
        assert_eq!(j["gbps"], 1.0);
        assert!(table_row(&cells[1]).contains("0.50"));
        assert_eq!(j["client_ring_enters_per_msg"], 0.5);
        assert_eq!(j["other_cpus_busy"], 0.25);
        assert_eq!(utc_now().len(), 20);
    }
}
