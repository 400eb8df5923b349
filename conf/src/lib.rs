//! Ceph's configuration, as Ceph's tools and daemons read it: `ceph.conf` files
//! ([`parse`]), the sections that apply to an entity (`[TYPE.ID]`, then `[TYPE]`, then
//! `[global]`), metavariables (`$cluster`, `$type`, `$id`, `$name`, `$host`, `$num`,
//! `$home`, `$pid`, `$cctid` and `$OPTION` for string options), the search path
//! (`-c`, `$CEPH_CONF`, `/etc/ceph/$cluster.conf`, `~/.ceph/$cluster.conf`,
//! `$cluster.conf`), `CEPH_ARGS` and command-line overrides ([`args`]).
//!
//! [`ResolvedConf::lookup`] answers as `ceph-conf --lookup` (file only);
//! [`ResolvedConf::get`] as `ceph-conf --show-config-value` (override, file, default).

#![forbid(unsafe_code)]

pub mod args;
mod expand;
pub mod options;
pub mod parse;
mod resolve;

pub use args::CephArgs;
pub use parse::{normalize_cli_key, normalize_key, ConfFile, ParseError};
pub use resolve::{Entity, ResolveOptions, ResolvedConf};

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong reading configuration.
#[derive(Debug, Error)]
pub enum ConfError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid `ceph.conf` text.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// None of the configuration files given (`-c`/`CEPH_CONF`) exists.
    #[error("unable to open config file from search list {0}")]
    NotFound(String),
    /// An entity name is not `TYPE.ID` with a Ceph type.
    #[error("error parsing '{0}': expected string of the form TYPE.ID, valid types are: auth, mon, osd, mds, mgr, client")]
    BadName(String),
    /// A flag that takes a value came last.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A value does not fit its option's type (or is not a valid mode list / address).
    #[error("{origin}: bad value '{value}' for {option}: {reason}")]
    BadValue {
        /// Where it was set: `FILE:LINE`, `the command line` or `the default`.
        origin: String,
        /// The option.
        option: String,
        /// The value (expanded).
        value: String,
        /// Why it is bad.
        reason: String,
    },
    /// No monitor address is configured (`mon_host`, `-m`).
    #[error("no monitors configured: set mon_host in the conf file or pass -m")]
    NoMonHost,
}
