//! A throw-away real Ceph cluster for the interop tests, started with the project's own
//! `tests/ceph/cluster.sh` and stopped on drop. A missing Ceph is a failure, not a skip.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running cluster; stopped on drop.
pub struct Cluster {
    /// Its directory (conf, keyring, logs).
    pub dir: PathBuf,
    env: HashMap<String, String>,
    script: PathBuf,
}

impl Cluster {
    /// Starts a cluster named `name` with `cluster.sh start` options `args`.
    pub fn start(name: &str, args: &[&str]) -> Cluster {
        assert!(
            Command::new("which").arg("ceph-mon").output().unwrap().status.success(),
            "ceph-mon is not installed: run tests/run.sh (it installs Ceph via tests/ceph/install.sh)"
        );
        Self::start_with(root().join("tests/ceph/cluster.sh"), name, args)
    }

    /// Starts a Ceph 20 (Tentacle) cluster: `cluster.sh start DIR --ceph 20 ARGS`, or, when
    /// `MSGR2_CEPH20_CLUSTER` names another script with the same `start`/`env`/`run`/`stop`
    /// interface, that one.
    pub fn start_ceph20(name: &str, args: &[&str]) -> Cluster {
        let script = std::env::var_os("MSGR2_CEPH20_CLUSTER")
            .map_or_else(|| root().join("tests/ceph/cluster.sh"), PathBuf::from);
        let mut a = vec!["--ceph", "20"];
        a.extend_from_slice(args);
        Self::start_with(script, name, &a)
    }

    /// Runs `cmd` with the cluster's own Ceph binaries (`cluster.sh run DIR CMD...`: inside
    /// the chroot for Ceph 20); returns the child.
    pub fn run(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new(&self.script);
        c.arg("run").arg(&self.dir).args(cmd);
        c
    }

    fn start_with(script: PathBuf, name: &str, args: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!("msgr2-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster start failed:\n{}",
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
        Cluster { dir, env, script }
    }

    /// A variable from `cluster.sh env` (e.g. `MSGR2_CEPH_MON_HOST`).
    pub fn var(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} not in cluster env: {:?}", self.env.keys()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
        // MSGR2_KEEP_CLUSTER_DIR=1 keeps conf and logs for a post-mortem.
        if std::env::var_os("MSGR2_KEEP_CLUSTER_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
