//! A throw-away real Ceph cluster for the interop tests, started with the project's own
//! `tests/ceph/cluster.sh` and stopped on drop: Ceph 16 from the host's packages, Ceph 18 and
//! 20 from the chroots of `tests/ceph/chroot.sh`. A missing Ceph is a failure, not a skip; only
//! a version left out of `MSGR2_CEPH_VERSIONS` (e.g. `MSGR2_CEPH_VERSIONS=16,20`) is skipped.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Ceph major versions the interop tests run against.
pub const VERSIONS: [u32; 3] = [16, 18, 20];

/// True if `MSGR2_CEPH_VERSIONS` (a comma or space separated list, default every one of
/// [`VERSIONS`]) selects Ceph `version`; otherwise prints why the test does nothing.
pub fn wanted(version: u32) -> bool {
    let Ok(list) = std::env::var("MSGR2_CEPH_VERSIONS") else {
        return true;
    };
    let on = list
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .any(|s| s.trim() == version.to_string());
    if !on {
        eprintln!("skipped: MSGR2_CEPH_VERSIONS={list} leaves out Ceph {version}");
    }
    on
}

/// A running cluster; stopped on drop.
pub struct Cluster {
    /// Its directory (conf, keyring, logs); visible at the same path inside its chroot.
    pub dir: PathBuf,
    env: HashMap<String, String>,
}

impl Cluster {
    /// Starts a cluster named `name` with `cluster.sh start` options `args` (Ceph 16 unless
    /// `args` hold `--ceph`).
    pub fn start(name: &str, args: &[&str]) -> Cluster {
        if !args.contains(&"--ceph") {
            assert!(
                Command::new("which").arg("ceph-mon").output().unwrap().status.success(),
                "ceph-mon is not installed: run tests/run.sh (it installs Ceph via tests/ceph/install.sh)"
            );
        }
        let dir = std::env::temp_dir().join(format!("msgr2-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = root().join("tests/ceph/cluster.sh");
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster start {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&script).arg("env").arg(&dir).output().unwrap();
        let env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Cluster { dir, env }
    }

    /// Starts a cluster of Ceph `version` (16, 18 or 20): `cluster.sh start --ceph VERSION`.
    pub fn start_on(version: u32, name: &str, args: &[&str]) -> Cluster {
        let v = version.to_string();
        let all: Vec<&str> = ["--ceph", v.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        Cluster::start(&format!("{name}-{version}"), &all)
    }

    /// A variable from `cluster.sh env` (e.g. `MSGR2_CEPH_MON_HOST`).
    pub fn var(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} not in cluster env: {:?}", self.env.keys()))
    }

    /// The Ceph major version it runs (16, 18 or 20).
    pub fn version(&self) -> u32 {
        self.var("MSGR2_CEPH_VERSION").parse().unwrap()
    }

    /// `program` of this cluster's Ceph (`ceph`, `ceph-authtool`, `python3` with rados, ...)
    /// with `CEPH_CONF` set, through `cluster.sh run` (inside the chroot for Ceph 18 / 20).
    /// The process keeps the pid of the returned command, so killing it kills `program`.
    pub fn run(&self, program: &str) -> Command {
        let mut c = Command::new(root().join("tests/ceph/cluster.sh"));
        c.arg("run").arg(&self.dir).arg(program);
        c
    }

    /// A path in the cluster's directory, as a string (the same inside its chroot).
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    /// A new keyring `file` in the cluster's directory holding a fresh key for `name`, made
    /// by this Ceph's own `ceph-authtool` (`key_type` aes / aes256k: Ceph 20 only) with mon
    /// caps `allow *` and osd caps `allow *`.
    pub fn new_keyring(&self, file: &str, name: &str, key_type: Option<&str>) -> String {
        let path = self.path(file);
        let mut c = self.run("ceph-authtool");
        c.args([path.as_str(), "--create-keyring", "--gen-key", "-n", name]);
        if let Some(t) = key_type {
            c.args(["--key-type", t]);
        }
        c.args(["--cap", "mon", "allow *", "--cap", "osd", "allow *"]);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "ceph-authtool {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// Adds the entity of keyring `path` to the cluster (`ceph auth import`).
    pub fn import(&self, path: &str) {
        let out = self
            .run("ceph")
            .args(["auth", "import", "-i", path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ceph auth import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("tests/ceph/cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
        // MSGR2_KEEP_CLUSTER_DIR=1 keeps conf and logs for a post-mortem.
        if std::env::var_os("MSGR2_KEEP_CLUSTER_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The cells of one interop test: each runs to the end even when another failed, and the
/// test fails once at the end, naming every failed cell.
pub struct Cells {
    label: String,
    total: usize,
    failed: Vec<String>,
}

impl Cells {
    /// Cells reported under `label` (e.g. `Ceph 20 aes256k`).
    pub fn new(label: impl Into<String>) -> Cells {
        Cells {
            label: label.into(),
            total: 0,
            failed: Vec::new(),
        }
    }

    /// Runs cell `name`: a panic inside `f` marks it failed.
    pub fn cell(&mut self, name: &str, f: impl FnOnce()) {
        self.total += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => eprintln!("cell ok: {} / {name}", self.label),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                eprintln!("cell FAILED: {} / {name}: {msg}", self.label);
                self.failed.push(format!("{name}: {msg}"));
            }
        }
    }

    /// Fails the test if any cell failed.
    pub fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "{}: {} of {} cells failed:\n{}",
            self.label,
            self.failed.len(),
            self.total,
            self.failed.join("\n")
        );
    }
}
