//! `--admin-socket PATH` of `msgr2 server` and `msgr2 bench server`: Ceph's metavariables
//! expanded for the process's entity, and the options `config show` reports besides the
//! messenger's own.

use std::path::PathBuf;

use msgr2_codec::entity::EntityName;
use msgr2_engine::admin::MetaVars;

/// `path` with `$cluster`, `$name`, `$type`, `$id`, `$run_dir`, `$pid`, ... expanded for
/// `name` in cluster `ceph` (Ceph's defaults; `$run_dir` is `/var/run/ceph`).
pub fn expand(path: &str, name: &EntityName) -> PathBuf {
    PathBuf::from(MetaVars::new(name.clone()).expand(path))
}

/// The process-level options shown by `config show`: `cluster`, `run_dir`, `pid`.
pub fn process_options(name: &EntityName) -> Vec<(String, String)> {
    let v = MetaVars::new(name.clone());
    vec![
        ("cluster".into(), v.cluster.clone()),
        ("run_dir".into(), v.expand(&v.run_dir)),
        ("host".into(), v.host.clone()),
    ]
}
