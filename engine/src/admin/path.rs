//! Ceph's metavariables in option values such as `admin_socket`
//! (`$run_dir/$cluster-$name.asok`): `$cluster`, `$type`, `$id`, `$num`, `$name`, `$host`,
//! `$pid`, `$run_dir`, `$home`, also as `${var}`. Unknown variables stay as written.

use msgr2_codec::entity::EntityName;

/// Ceph's default `admin_socket`.
pub const DEFAULT_ADMIN_SOCKET: &str = "$run_dir/$cluster-$name.asok";
/// Ceph's default `run_dir`.
pub const DEFAULT_RUN_DIR: &str = "/var/run/ceph";

/// The values the metavariables expand to.
#[derive(Debug, Clone)]
pub struct MetaVars {
    /// `$cluster` (default `ceph`).
    pub cluster: String,
    /// `$name`, `$type`, `$id`, `$num`.
    pub name: EntityName,
    /// `$run_dir` (default `/var/run/ceph`; may itself hold metavariables).
    pub run_dir: String,
    /// `$pid` (default: this process).
    pub pid: u32,
    /// `$host` (default: the short host name).
    pub host: String,
}

impl MetaVars {
    /// Ceph's defaults for entity `name`: cluster `ceph`, run_dir `/var/run/ceph`, this
    /// process's pid and host name.
    pub fn new(name: EntityName) -> MetaVars {
        MetaVars {
            cluster: "ceph".into(),
            name,
            run_dir: DEFAULT_RUN_DIR.into(),
            pid: std::process::id(),
            host: short_hostname(),
        }
    }

    fn value(&self, var: &str) -> Option<String> {
        Some(match var {
            "cluster" => self.cluster.clone(),
            "type" => self.name.ty.as_str().to_owned(),
            "id" | "num" => self.name.id.clone(),
            "name" => self.name.to_string(),
            "host" => self.host.clone(),
            "pid" => self.pid.to_string(),
            "home" => std::env::var("HOME").unwrap_or_default(),
            // run_dir may use the other variables (not itself).
            "run_dir" => expand_with(&self.run_dir, self, false),
            _ => return None,
        })
    }

    /// `text` with every known metavariable expanded.
    pub fn expand(&self, text: &str) -> String {
        expand_with(text, self, true)
    }
}

fn expand_with(text: &str, vars: &MetaVars, allow_run_dir: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], e + 2),
                None => ("", 0),
            }
        } else {
            let e = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..e], e)
        };
        let v = (!name.is_empty() && (allow_run_dir || name != "run_dir"))
            .then(|| vars.value(name))
            .flatten();
        match v {
            Some(v) => {
                out.push_str(&v);
                rest = &after[len..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The host name up to its first dot (Ceph's `$host`).
fn short_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().split('.').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> MetaVars {
        MetaVars {
            cluster: "ceph".into(),
            name: "osd.3".parse().expect("name"),
            run_dir: "/run/$cluster".into(),
            pid: 42,
            host: "node1".into(),
        }
    }

    #[test]
    fn ceph_default_path() {
        let mut v = vars();
        v.run_dir = DEFAULT_RUN_DIR.into();
        assert_eq!(
            v.expand(DEFAULT_ADMIN_SOCKET),
            "/var/run/ceph/ceph-osd.3.asok"
        );
    }

    #[test]
    fn every_variable() {
        let v = vars();
        assert_eq!(
            v.expand("$run_dir/$cluster-$type.$id-$num@$host.$pid.asok"),
            "/run/ceph/ceph-osd.3-3@node1.42.asok"
        );
        assert_eq!(v.expand("/x/${name}_${pid}.asok"), "/x/osd.3_42.asok");
        assert_eq!(v.expand("/x/$unknown/${nope}/$"), "/x/$unknown/${nope}/$");
        assert_eq!(v.expand("/x/${name"), "/x/${name");
    }

    #[test]
    fn run_dir_does_not_recurse() {
        let mut v = vars();
        v.run_dir = "/r/$run_dir".into();
        assert_eq!(v.expand("$run_dir/a"), "/r/$run_dir/a");
    }
}
