//! The `ceph-conf` oracle: for tricky conf files (`conf/tests/data/*.conf`) and entity
//! names, `msgr2 config -c FILE --name NAME --lookup KEY` prints the same text and exits with
//! the same status as Ceph's own `ceph-conf` with the same arguments, for every `ms_*`,
//! `mon_host` and `keyring` spelling and a few metavariable-heavy options; and for Ceph's
//! flags (`--name`/`--id` order, `--cluster`, `-m`, `--OPTION=VALUE`, `CEPH_ARGS`) with
//! `--lookup` and `--show-config-value` (defaults included). Ceph 16 (host) and Ceph 20
//! (chroot). A missing Ceph is a failure; `MSGR2_CEPH_VERSIONS` selects versions.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{root, wanted};

/// (conf file, entity) pairs: section precedence, spellings, metavariables, continuation
/// lines, comments, duplicates, quotes, spaced headings, `mon host`, unset options, and
/// files Ceph rejects (every lookup exits 1).
const CASES: &[(&str, &str)] = &[
    ("sections.conf", "osd.3"),
    ("sections.conf", "osd.4"),
    ("sections.conf", "client.admin"),
    ("sections.conf", "client.rgw"),
    ("sections.conf", "mon.a"),
    ("sections.conf", "mds.x"),
    ("sections.conf", "mgr.y"),
    ("spellings.conf", "client.admin"),
    ("spellings.conf", "mon.b"),
    ("metavars.conf", "osd.7"),
    ("metavars.conf", "client.admin"),
    ("metavars.conf", "mgr.x"),
    ("continuation.conf", "client.admin"),
    ("comments.conf", "client.admin"),
    ("comments.conf", "osd.0"),
    ("duplicates.conf", "osd.1"),
    ("duplicates.conf", "client.x"),
    ("quoted.conf", "client.admin"),
    ("spaced_sections.conf", "osd.3"),
    ("spaced_sections.conf", "client.admin"),
    ("monhost.conf", "client.admin"),
    ("monhost.conf", "osd.0"),
    ("empty.conf", "client.admin"),
    ("ids.conf", "osd.1"),
    ("ids.conf", "osd.10"),
    ("ids.conf", "client.1"),
    ("noeol.conf", "client.admin"),
    ("badquote.conf", "client.admin"),
    ("nosection.conf", "client.admin"),
    ("single_line.conf", "osd.2"),
    ("two_lines_no_section.conf", "client.admin"),
    ("crlf.conf", "client.admin"),
    ("trailing_blanks.conf", "client.admin"),
    ("trailing_comment.conf", "client.admin"),
    ("blank_lines.conf", "osd.0"),
];

/// Keys looked up in every case (spellings as written: `--lookup` turns whitespace into `_`
/// but keeps dashes and case).
const KEYS: &[&str] = &[
    "mon_host",
    "mon host",
    "mon-host",
    "keyring",
    "admin_socket",
    "run_dir",
    "log_file",
    "ms_bind_msgr1",
    "ms_bind_msgr2",
    "ms_bind_ipv4",
    "ms_bind_ipv6",
    "ms-bind-ipv6",
    "ms-bind-msgr1",
    "ms_cluster_mode",
    "ms_service_mode",
    "ms_client_mode",
    "ms_mon_cluster_mode",
    "ms_mon_service_mode",
    "ms_mon_client_mode",
    "ms__cluster_mode",
    "Ms_Client_Mode",
    "fsid",
];

/// Command-line cases: Ceph's flags and `CEPH_ARGS` (`{d}` is the data directory as the
/// tool sees it), each run by `ceph-conf` and by `msgr2 config` with the same words.
const FLAG_CASES: &[(&str, &str)] = &[
    ("-c {d}/ids.conf --name osd.10 --id 1 --lookup ms_cluster_mode", ""),
    ("-c {d}/ids.conf --id 1 --name osd.10 --lookup ms_cluster_mode", ""),
    ("-c {d}/ids.conf --id 1 --lookup keyring", "--name osd.3"),
    ("-c {d}/ids.conf --id 1 --lookup keyring", ""),
    ("--lookup ms_cluster_mode --name osd.1", "-c {d}/ids.conf"),
    ("-c {d}/nope.conf,{d}/metavars.conf --name osd.1 --lookup admin_socket", ""),
    ("-c {d}/nope.conf --name osd.1 --lookup admin_socket", ""),
    ("-c {d}/metavars.conf --cluster other --name osd.2 --lookup admin_socket", ""),
    ("-c {d}/metavars.conf --name mgr.x --lookup admin_socket", ""),
    ("-c {d}/sections.conf --name osd.3 --ms-cluster-mode=override --lookup ms_cluster_mode", ""),
    ("-c {d}/sections.conf --name osd.3 --ms-cluster-mode=override --show-config-value ms_cluster_mode", ""),
    ("-c {d}/sections.conf --name osd.3 --show-config-value ms_cluster_mode", "--ms_cluster_mode env"),
    ("-c {d}/sections.conf --name osd.3 --show-config-value ms_mon_client_mode", ""),
    ("-c {d}/sections.conf --name osd.3 --show-config-value ms_bind_msgr2", ""),
    ("-c {d}/sections.conf --name mds.a --show-config-value keyring", ""),
    ("-c {d}/empty.conf --name osd.5 --show-config-value keyring", ""),
    ("-c {d}/empty.conf --name osd.5 --show-config-value admin_socket", ""),
    ("-c {d}/empty.conf --name client.x --show-config-value ms_client_mode", ""),
    ("-c {d}/spellings.conf --show-config-value mon_host -m 10.9.9.9", ""),
    ("-c {d}/spellings.conf --show-config-value run_dir", ""),
];

fn data_dir() -> PathBuf {
    root().join("conf/tests/data")
}

/// stdout and exit status.
fn answer(c: &mut Command) -> (String, Option<i32>) {
    let out = c.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

fn ours(dir: &Path, file: &str, name: &str, key: &str) -> (String, Option<i32>) {
    answer(
        Command::new(env!("CARGO_BIN_EXE_msgr2"))
            .args(["config", "-c"])
            .arg(dir.join(file))
            .args(["--name", name, "--lookup", key])
            .env_remove("CEPH_ARGS")
            .env_remove("CEPH_CONF"),
    )
}

/// Compares every case with `ceph(file_dir, file, name, key)`; the conf files are found in
/// `ceph_dir` by Ceph and in `our_dir` by us (same basenames: the cluster name comes from it).
fn compare(
    version: u32,
    our_dir: &Path,
    mut ceph: impl FnMut(&str, &str, &str) -> Command,
) -> usize {
    let mut diffs = Vec::new();
    let mut n = 0;
    for (file, name) in CASES {
        for key in KEYS {
            let theirs = answer(&mut ceph(file, name, key));
            let mine = ours(our_dir, file, name, key);
            n += 1;
            if theirs != mine {
                diffs.push(format!(
                    "{file} --name {name} --lookup {key:?}: ceph-conf {theirs:?}, msgr2 {mine:?}"
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "Ceph {version}: {} of {n} lookups differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!(
        "Ceph {version}: {} cases x {} keys = {n} lookups agree",
        CASES.len(),
        KEYS.len()
    );
    n
}

/// Runs [`FLAG_CASES`]: `ceph(words, ceph_args)` is Ceph's command.
fn compare_flags(version: u32, ceph_dir: &str, mut ceph: impl FnMut(&[String], &str) -> Command) {
    let ours_dir = data_dir();
    let mut diffs = Vec::new();
    for (words, env) in FLAG_CASES {
        let split = |s: &str, d: &str| -> Vec<String> {
            s.split_whitespace().map(|w| w.replace("{d}", d)).collect()
        };
        let theirs = answer(&mut ceph(
            &split(words, ceph_dir),
            &split(env, ceph_dir).join(" "),
        ));
        let od = ours_dir.to_str().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_msgr2"));
        c.arg("config")
            .args(split(words, od))
            .env("CEPH_ARGS", split(env, od).join(" "))
            .env_remove("CEPH_CONF");
        let mine = answer(&mut c);
        if theirs != mine {
            diffs.push(format!(
                "{words:?} CEPH_ARGS={env:?}: ceph-conf {theirs:?}, msgr2 {mine:?}"
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "Ceph {version}: {} of {} flag cases differ:\n{}",
        diffs.len(),
        FLAG_CASES.len(),
        diffs.join("\n")
    );
}

#[test]
fn ceph16_conf_oracle() {
    if !wanted(16) {
        return;
    }
    assert!(
        Command::new("which")
            .arg("ceph-conf")
            .output()
            .unwrap()
            .status
            .success(),
        "ceph-conf is not installed: run tests/run.sh (it installs Ceph via tests/ceph/install.sh)"
    );
    let dir = data_dir();
    compare_flags(16, dir.to_str().unwrap(), |words, env| {
        let mut c = Command::new("ceph-conf");
        c.args(words).env("CEPH_ARGS", env).env_remove("CEPH_CONF");
        c
    });
    compare(16, &dir, |file, name, key| {
        let mut c = Command::new("ceph-conf");
        c.arg("-c")
            .arg(dir.join(file))
            .args(["--name", name, "--lookup", key])
            .env_remove("CEPH_ARGS")
            .env_remove("CEPH_CONF");
        c
    });
}

#[test]
fn ceph20_conf_oracle() {
    if !wanted(20) {
        return;
    }
    let chroot = root().join("tests/ceph/chroot.sh");
    assert!(
        Command::new(&chroot)
            .args(["check", "20"])
            .status()
            .unwrap()
            .success(),
        "the Ceph 20 chroot is not built: run tests/ceph/chroot.sh create 20 (tests/run.sh does)"
    );
    let out = Command::new(&chroot).args(["path", "20"]).output().unwrap();
    let croot = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    // /tmp is not bind-mounted into the chroot: copy the files into its own /tmp.
    let inner = format!("/tmp/msgr2-conf-oracle-{}", std::process::id());
    let outer = croot.join(inner.trim_start_matches('/'));
    std::fs::create_dir_all(&outer).unwrap();
    for e in std::fs::read_dir(data_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, outer.join(p.file_name().unwrap())).unwrap();
    }
    let dir = data_dir();
    let r = std::panic::catch_unwind(|| {
        compare_flags(20, &inner, |words, env| {
            let mut c = Command::new(&chroot);
            c.args(["run", "20", "env", &format!("CEPH_ARGS={env}"), "ceph-conf"])
                .args(words);
            c
        });
        compare(20, &dir, |file, name, key| {
            let mut c = Command::new(&chroot);
            c.args(["run", "20", "ceph-conf", "-c"])
                .arg(format!("{inner}/{file}"))
                .args(["--name", name, "--lookup", key]);
            c
        })
    });
    let _ = std::fs::remove_dir_all(&outer);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}
