//! Ceph's command-line flags and `CEPH_ARGS`: `-c/--conf`, `--cluster`, `-n/--name`,
//! `-i/--id`, `-k/--keyring`, `-m`, and `--OPTION=VALUE` / `--OPTION VALUE` for any known
//! option (dashes and underscores alike, as Ceph's `ceph_argparse` treats them).

use crate::options::{self, OptType};
use crate::parse::normalize_cli_key;
use crate::ConfError;

/// The Ceph flags found on a command line (with `CEPH_ARGS` in front, so the command line
/// wins as in Ceph).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CephArgs {
    /// `-c`/`--conf`: configuration file(s), comma-separated.
    pub conf: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `-n`/`--name` (`TYPE.ID`).
    pub name: Option<String>,
    /// `-i`/`--id` (the ID, of type `client` unless `--name` gives one).
    pub id: Option<String>,
    /// Option overrides in order (`-k` is `keyring`, `-m` is `mon_host`); later wins.
    pub overrides: Vec<(String, String)>,
}

impl CephArgs {
    /// Takes Ceph's flags out of `args` (the words after the program and subcommand names)
    /// and returns them with the remaining words. Long flags named in `owned` (canonical
    /// option spelling, e.g. `"keyring"`) belong to the subcommand and are left alone.
    pub fn extract(args: &[String], owned: &[&str]) -> Result<(Self, Vec<String>), ConfError> {
        let mut me = CephArgs::default();
        let mut rest = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                rest.extend(args[i..].iter().cloned());
                break;
            }
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if a.starts_with("--") => (f, Some(v.to_owned())),
                _ => (a.as_str(), None),
            };
            let key = if let Some(long) = flag.strip_prefix("--") {
                normalize_cli_key(long)
            } else {
                match flag {
                    "-c" => "conf".to_owned(),
                    "-n" => "name".to_owned(),
                    "-i" => "id".to_owned(),
                    "-k" => "keyring".to_owned(),
                    "-m" => "mon_host".to_owned(),
                    _ => {
                        rest.push(a.clone());
                        i += 1;
                        continue;
                    }
                }
            };
            let short = !flag.starts_with("--");
            let known = matches!(key.as_str(), "conf" | "cluster" | "name" | "id")
                || options::find(&key).is_some();
            if !known || (!short && owned.contains(&key.as_str())) {
                rest.push(a.clone());
                i += 1;
                continue;
            }
            let is_bool = options::find(&key).is_some_and(|o| o.ty == OptType::Bool);
            let value = match inline {
                Some(v) => v,
                None => match args.get(i + 1) {
                    Some(v) if !(is_bool && v.starts_with('-')) => {
                        i += 1;
                        v.clone()
                    }
                    _ if is_bool => "true".to_owned(),
                    _ => return Err(ConfError::MissingValue(flag.to_owned())),
                },
            };
            match key.as_str() {
                "conf" => me.conf = Some(value),
                "cluster" => me.cluster = Some(value),
                // as Ceph: `--id` keeps the type of an earlier `--name`, a later `--name`
                // replaces both
                "name" => {
                    me.name = Some(value);
                    me.id = None;
                }
                "id" => match &me.name {
                    Some(n) => {
                        let ty = n.split_once('.').map_or(n.as_str(), |(t, _)| t);
                        me.name = Some(format!("{ty}.{value}"));
                    }
                    None => me.id = Some(value),
                },
                _ => me.overrides.push((key, value)),
            }
            i += 1;
        }
        Ok((me, rest))
    }

    /// Splits `CEPH_ARGS` into words (on whitespace, as Ceph's `env_to_vec`).
    pub fn env_words() -> Vec<String> {
        std::env::var("CEPH_ARGS")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_and_overrides() {
        let (a, rest) = CephArgs::extract(
            &w("-c x.conf --name osd.3 --ms-bind-ipv6 --ms_cluster_mode=secure -m 1.2.3.4 --timeout 5 -k K --osd v2:1"),
            &[],
        )
        .expect("parses");
        assert_eq!(a.conf.as_deref(), Some("x.conf"));
        assert_eq!(a.name.as_deref(), Some("osd.3"));
        assert_eq!(
            a.overrides,
            vec![
                ("ms_bind_ipv6".to_owned(), "true".to_owned()),
                ("ms_cluster_mode".to_owned(), "secure".to_owned()),
                ("mon_host".to_owned(), "1.2.3.4".to_owned()),
                ("keyring".to_owned(), "K".to_owned()),
            ]
        );
        assert_eq!(rest, w("--timeout 5 --osd v2:1"));
    }

    #[test]
    fn owned_flags_stay() {
        let (a, rest) =
            CephArgs::extract(&w("--keyring K --name mon.a -i x"), &["keyring", "name"])
                .expect("parses");
        assert_eq!(a.id.as_deref(), Some("x"));
        assert!(a.overrides.is_empty());
        assert_eq!(rest, w("--keyring K --name mon.a"));
    }

    #[test]
    fn id_after_name_keeps_the_type() {
        let (a, _) = CephArgs::extract(&w("--name osd.3 --id 4"), &[]).expect("parses");
        assert_eq!((a.name.as_deref(), a.id.as_deref()), (Some("osd.4"), None));
        let (a, _) = CephArgs::extract(&w("--id 4 --name osd.3"), &[]).expect("parses");
        assert_eq!((a.name.as_deref(), a.id.as_deref()), (Some("osd.3"), None));
    }

    #[test]
    fn missing_value() {
        assert!(matches!(
            CephArgs::extract(&w("-c"), &[]),
            Err(ConfError::MissingValue(_))
        ));
    }
}
