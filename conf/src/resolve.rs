//! Resolution: which file, which sections, which value, for one entity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::monhost::parse_mon_host;
use msgr2_proto::ModeConfig;

use crate::args::CephArgs;
use crate::expand::expand;
use crate::options::{self, OptType, CONF_FILE_DEFAULT};
use crate::parse::ConfFile;
use crate::ConfError;

/// Entity types Ceph accepts in a name.
const TYPES: &[&str] = &["auth", "mon", "osd", "mds", "mgr", "client"];
/// Types for which a daemon (and `ceph-conf`) uses an option's daemon default
/// (observed with `ceph-conf --show-config-value keyring`: osd and mds only).
const KEYRING_DAEMON_TYPES: &[&str] = &["osd", "mds"];
/// Expansion depth limit (loops between options).
const MAX_DEPTH: usize = 16;

/// An entity name split as Ceph's `EntityName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// `client`, `osd`, …
    pub ty: String,
    /// The ID (`admin`, `3`).
    pub id: String,
}

impl Entity {
    /// Parses `TYPE.ID`.
    pub fn parse(s: &str) -> Result<Self, ConfError> {
        let (ty, id) = s
            .split_once('.')
            .ok_or_else(|| ConfError::BadName(s.to_owned()))?;
        if !TYPES.contains(&ty) {
            return Err(ConfError::BadName(s.to_owned()));
        }
        Ok(Self {
            ty: ty.to_owned(),
            id: id.to_owned(),
        })
    }
    /// `TYPE.ID`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.ty, self.id)
    }
}

/// How to resolve.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResolveOptions {
    /// Use daemon defaults (as a daemon and `ceph-conf` do); clients leave this off.
    pub daemon: bool,
}

/// A configuration resolved for one entity.
#[derive(Debug, Clone)]
pub struct ResolvedConf {
    /// The cluster name (`--cluster`, else from the name of the `-c` file read, else `ceph`).
    pub cluster: String,
    /// The entity.
    pub entity: Entity,
    /// The file read, if any.
    pub file: Option<ConfFile>,
    overrides: BTreeMap<String, String>,
    daemon: bool,
}

fn home() -> String {
    std::env::var("HOME").unwrap_or_default()
}

fn short_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().split('.').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Ceph's rule: without `--cluster`, a conf file named `NAME.conf` names the cluster.
fn cluster_from_path(p: &str) -> String {
    let base = p.rsplit('/').next().unwrap_or(p);
    match base.find(".conf") {
        Some(end) => base[..end].to_owned(),
        None => "ceph".to_owned(),
    }
}

impl ResolvedConf {
    /// Resolves from Ceph flags (`CEPH_ARGS` words first, then the command line's, already
    /// merged into `args`) and `$CEPH_CONF`.
    pub fn resolve(args: &CephArgs, opts: ResolveOptions) -> Result<Self, ConfError> {
        let entity = match (&args.name, &args.id) {
            (Some(n), _) => Entity::parse(n)?,
            (None, Some(id)) => Entity {
                ty: "client".to_owned(),
                id: id.clone(),
            },
            (None, None) => Entity {
                ty: "client".to_owned(),
                id: "admin".to_owned(),
            },
        };
        let explicit = args
            .conf
            .clone()
            .or_else(|| std::env::var("CEPH_CONF").ok().filter(|s| !s.is_empty()));
        // The cluster name: `--cluster`, else (with `-c` only, not `$CEPH_CONF`: checked
        // with ceph-conf 16 and 20) from the name of the file read, else `ceph`.
        let cluster = args.cluster.clone().unwrap_or_else(|| "ceph".to_owned());
        let mut me = Self {
            cluster,
            entity,
            file: None,
            overrides: args.overrides.iter().cloned().collect(),
            daemon: opts.daemon,
        };
        let list = explicit
            .clone()
            .unwrap_or_else(|| CONF_FILE_DEFAULT.to_owned());
        for cand in list.split([',', ' ']).filter(|s| !s.is_empty()) {
            if cand.contains("$data_dir") {
                continue;
            }
            let path = PathBuf::from(me.expand(cand));
            if path.exists() {
                if args.cluster.is_none() && args.conf.is_some() {
                    me.cluster = cluster_from_path(cand);
                }
                me.file = Some(ConfFile::load(&path)?);
                break;
            }
        }
        if me.file.is_none() && explicit.is_some() {
            return Err(ConfError::NotFound(list));
        }
        me.warn_unknown();
        Ok(me)
    }

    /// Resolves a parsed file for an entity (tests and embedders).
    pub fn from_file(file: ConfFile, cluster: &str, entity: Entity, opts: ResolveOptions) -> Self {
        let me = Self {
            cluster: cluster.to_owned(),
            entity,
            file: Some(file),
            overrides: BTreeMap::new(),
            daemon: opts.daemon,
        };
        me.warn_unknown();
        me
    }

    /// The sections read for this entity, most specific first.
    pub fn sections(&self) -> [String; 3] {
        [
            self.entity.name(),
            self.entity.ty.clone(),
            "global".to_owned(),
        ]
    }

    fn warn_unknown(&self) {
        let Some(f) = &self.file else { return };
        for s in self.sections() {
            for (k, l) in f.sections.get(&s).into_iter().flatten() {
                if options::find(k).is_none() {
                    tracing::warn!(
                        "{}:{}: option {k} is unknown to msgr2-rs; ignored",
                        f.path.display(),
                        l.line
                    );
                }
            }
        }
    }

    /// The raw text and origin of a key in the file's sections for this entity.
    fn file_raw(&self, key: &str) -> Option<(String, String)> {
        let f = self.file.as_ref()?;
        self.sections().iter().find_map(|s| {
            f.get(s, key)
                .map(|l| (l.value.clone(), format!("{}:{}", f.path.display(), l.line)))
        })
    }

    fn default_of(&self, name: &str) -> Option<String> {
        let o = options::find(name)?;
        let daemon = self.daemon
            && (name != "keyring" || KEYRING_DAEMON_TYPES.contains(&self.entity.ty.as_str()));
        Some(match (daemon, o.daemon_default) {
            (true, Some(d)) => d.to_owned(),
            _ => o.default.to_owned(),
        })
    }

    /// Unexpanded effective value and where it came from.
    fn raw(&self, option: &str) -> Option<(String, String)> {
        let key = crate::parse::normalize_key(option);
        if let Some(v) = self.overrides.get(&crate::parse::normalize_cli_key(&key)) {
            return Some((v.clone(), "the command line".to_owned()));
        }
        if let Some(r) = self.file_raw(&key) {
            return Some(r);
        }
        self.default_of(&key).map(|d| (d, "the default".to_owned()))
    }

    fn meta(&self, var: &str) -> Option<(String, bool)> {
        let e = &self.entity;
        Some(match var {
            "cluster" => (self.cluster.clone(), false),
            "type" => (e.ty.clone(), false),
            "name" => (e.name(), false),
            "id" | "num" => (e.id.clone(), false),
            "host" => {
                let h = self.raw("host").map(|r| r.0).unwrap_or_default();
                (if h.is_empty() { short_hostname() } else { h }, false)
            }
            "home" => (home(), false),
            "pid" => (std::process::id().to_string(), false),
            "cctid" => ("0".to_owned(), false),
            _ => {
                let o = options::find(var)?;
                if o.ty != OptType::Str {
                    return None;
                }
                (self.raw(var)?.0, true)
            }
        })
    }

    /// Expands metavariables in `value` for this entity.
    pub fn expand(&self, value: &str) -> String {
        expand(value, &|v| self.meta(v), MAX_DEPTH)
    }

    /// As `ceph-conf --lookup KEY`: the first of `[TYPE.ID]`, `[TYPE]`, `[global]` in the
    /// file that sets the key, expanded; `None` when the file does not set it.
    pub fn lookup(&self, key: &str) -> Option<String> {
        self.file_raw(key).map(|(v, _)| self.expand(&v))
    }

    /// As `ceph-conf --show-config-value OPTION`: command line, else file, else Ceph's
    /// default, expanded; `None` for an option neither set nor known.
    pub fn get(&self, option: &str) -> Option<String> {
        self.raw(option).map(|(v, _)| self.expand(&v))
    }

    /// The option's value, expanded, when the command line or the file sets it (`None` when
    /// only Ceph's default applies): for options whose default a tool should not act on by
    /// itself, e.g. `admin_socket`.
    pub fn explicit(&self, option: &str) -> Option<String> {
        let key = crate::parse::normalize_key(option);
        let v = match self.overrides.get(&crate::parse::normalize_cli_key(&key)) {
            Some(v) => v.clone(),
            None => self.file_raw(&key)?.0,
        };
        Some(self.expand(&v))
    }

    /// Every known option's effective value, by name (for `config show`).
    pub fn show(&self) -> Vec<(String, String)> {
        options::OPTIONS
            .iter()
            .filter_map(|o| Some((o.name.to_owned(), self.get(o.name)?)))
            .collect()
    }

    /// Where an option's effective value comes from: `FILE:LINE`, `the command line` or
    /// `the default` (for error messages).
    pub fn origin(&self, option: &str) -> String {
        self.raw(option).map(|r| r.1).unwrap_or_default()
    }

    fn bad(&self, option: &str, value: &str, reason: impl Into<String>) -> ConfError {
        ConfError::BadValue {
            origin: self.origin(option),
            option: option.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// A boolean option (Ceph: `true`/`false`, or an integer, non-zero meaning true).
    pub fn get_bool(&self, option: &str) -> Result<bool, ConfError> {
        let v = self.get(option).unwrap_or_default();
        match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            s => s
                .parse::<i64>()
                .map(|n| n != 0)
                .map_err(|_| self.bad(option, s, "expected true, false or an integer")),
        }
    }

    /// The six `ms_*_mode` options as a [`ModeConfig`].
    pub fn modes(&self) -> Result<ModeConfig, ConfError> {
        let mut m = ModeConfig::default();
        for o in [
            "ms_client_mode",
            "ms_service_mode",
            "ms_cluster_mode",
            "ms_mon_client_mode",
            "ms_mon_service_mode",
            "ms_mon_cluster_mode",
        ] {
            let v = self.get(o).unwrap_or_default();
            m.set(o, &v).map_err(|e| self.bad(o, &v, e.to_string()))?;
        }
        Ok(m)
    }

    /// The initial monitors from `mon_host` (Ceph's expansion rules, see
    /// [`msgr2_codec::monhost`]).
    pub fn mon_addrs(&self) -> Result<Vec<EntityAddrVec>, ConfError> {
        let v = self.get("mon_host").unwrap_or_default();
        if v.trim().is_empty() {
            return Err(ConfError::NoMonHost);
        }
        parse_mon_host(&v).map_err(|e| self.bad("mon_host", &v, e.to_string()))
    }

    /// The first existing file of the `keyring` list (separators as Ceph's
    /// `get_str_list`: `,`, `;`, `=`, blanks).
    pub fn keyring_path(&self) -> Option<PathBuf> {
        let v = self.get("keyring")?;
        v.split([',', ';', '=', ' ', '\t'])
            .filter(|s| !s.is_empty())
            .map(Path::new)
            .find(|p| p.exists())
            .map(Path::to_path_buf)
    }
}
