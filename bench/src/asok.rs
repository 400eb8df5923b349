//! `--admin-socket PATH` of `msgr2 server` and `msgr2 bench server`: Ceph's metavariables
//! expanded for the process's entity, and the options `config show` reports besides the
//! messenger's own.

use std::path::PathBuf;

use msgr2_codec::entity::EntityName;
use msgr2_conf::{CephArgs, ConfError, ResolveOptions, ResolvedConf};
use msgr2_engine::admin::MetaVars;

/// The admin socket path the process's conf names for `name` (Ceph's sections `[TYPE.ID]`,
/// `[TYPE]`, `[global]` and metavariables, as a daemon resolves them: `msgr2 server -c FILE
/// --name osd.3` opens `admin socket` of `[osd.3]`), or `None` when neither the file nor
/// a flag sets `admin_socket` (Ceph's daemon default is not acted on: a tool does not open
/// `/var/run/ceph/...` unasked). Conf errors (a bad file, `-c` naming none) are returned.
/// `flag` (`--admin-socket`) wins when given.
pub fn from_flag_or_conf(
    flag: Option<&str>,
    ceph: &CephArgs,
    name: &EntityName,
) -> Result<Option<String>, ConfError> {
    if let Some(p) = flag {
        return Ok(Some(p.to_owned()));
    }
    let mut args = ceph.clone();
    args.name = Some(name.to_string());
    args.id = None;
    let conf = ResolvedConf::resolve(&args, ResolveOptions { daemon: true })?;
    Ok(conf.explicit("admin_socket"))
}

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
