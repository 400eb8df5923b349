//! Ceph's own messenger benchmark as our peer, both ways (issue 11): Ceph 20's
//! `ceph_perf_msgr_client` / `ceph_perf_msgr_server` (Debian `ceph-test`) and our
//! `msgr2 bench client|server --ceph-perf` in all four pairings, a short run each (2,000 ops
//! at 4 KiB and 64 KiB, 50 at 4 MiB, depth 16), through `perf-scripts/vs-ceph.sh --quick`.
//! It checks that every op is answered where the tools let us see it: our client counts its
//! replies by tid; our server reports, per connection, the MOSDOps Ceph's client sent and the
//! replies it queued; Ceph→Ceph must print Ceph's `Total op N` line.
//!
//! Needs the Ceph tools: by default from the project's Ceph 20 chroot (`tests/ceph/chroot.sh
//! create 20`: Debian sid, Ceph 20.2.x with `ceph-test`; running them needs root for
//! `chroot`), or any command prefix in `MSGR2_CEPH_TOOL_RUN`, or on PATH. A missing tool is a
//! failure, not a skip.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn four_pairs_with_ceph_perf_tools() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("perf-scripts/vs-ceph.sh"))
        .args(["--quick", "--runs", "1"])
        .env("MSGR2", env!("CARGO_BIN_EXE_msgr2"))
        .env("PORT", "3850");
    if let Some(run) = std::env::var_os("MSGR2_CEPH_TOOL_RUN") {
        cmd.env("CEPH_TOOL_RUN", run);
    }
    // Two cores at most here: server on the first, client on the second (or both on 0).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cmd.env("SERVER_CPU", "0")
        .env("CLIENT_CPU", if cpus > 1 { "1" } else { "0" });
    let out = cmd.output().expect("run perf-scripts/vs-ceph.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vs-ceph.sh failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    for pair in ["ceph→ceph", "ceph→ours", "ours→ceph", "ours→ours"] {
        for (size, ops) in [("4K", 2000), ("64K", 2000), ("4M", 50)] {
            let row = format!("| {pair} | {size} | {ops} |");
            assert!(
                stdout.contains(&row),
                "no row {row:?} in the table:\n{stdout}\n{stderr}"
            );
        }
    }
    assert!(
        stdout.contains("ceph version 20."),
        "table names Ceph 20:\n{stdout}"
    );
}
