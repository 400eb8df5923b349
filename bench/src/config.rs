//! `msgr2 config`: Ceph's configuration as this tool resolves it, answering as `ceph-conf`
//! does (`--lookup` reads the conf file only; `--show-config-value` adds the command line
//! and defaults), so the two can be compared by script.

use std::process::ExitCode;

use msgr2_conf::{CephArgs, ResolveOptions, ResolvedConf};

/// Options of `msgr2 config` (besides Ceph's `-c`, `-n`, `-i`, `--cluster`, `--OPTION`).
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Print the value the conf file gives OPTION for the entity (sections `[TYPE.ID]`,
    /// `[TYPE]`, `[global]`), metavariables expanded; exit status 1 when it is not set.
    #[arg(long, value_name = "OPTION")]
    lookup: Option<String>,
    /// Print OPTION's effective value: command line, conf file or Ceph's default.
    #[arg(long, value_name = "OPTION")]
    show_config_value: Option<String>,
    /// Print every known option's effective value, one `name = value` per line.
    #[arg(long)]
    show: bool,
}

/// Runs the command: exit status 0 with the value, 1 when unset or on an error (as
/// `ceph-conf`).
pub fn run(a: ConfigArgs, ceph: &CephArgs) -> ExitCode {
    // ceph-conf runs with daemon defaults; so do we, to answer the same.
    let conf = match ResolvedConf::resolve(ceph, ResolveOptions { daemon: true }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("msgr2 config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = |v: Option<String>| match v {
        Some(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    };
    if let Some(k) = &a.lookup {
        return answer(conf.lookup(k));
    }
    if let Some(k) = &a.show_config_value {
        return match conf.get(k) {
            Some(v) => answer(Some(v)),
            None => {
                eprintln!("failed to get config option '{k}': option not found");
                ExitCode::FAILURE
            }
        };
    }
    if a.show {
        for (k, v) in conf.show() {
            println!("{k} = {v}");
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("msgr2 config: give --lookup OPTION, --show-config-value OPTION or --show");
    ExitCode::FAILURE
}
