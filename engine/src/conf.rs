//! A [`MessengerBuilder`] made from a resolved Ceph configuration ([`msgr2_conf`]): the
//! entity name, the six `ms_*_mode` options, the keyring found through the `keyring` search
//! list, and for servers the `ms_bind_*` / `public_addr` options as [`BindOptions`].

use std::net::SocketAddr;
use std::path::PathBuf;

use msgr2_codec::entity::{EntityName, EntityNameError};
use msgr2_conf::{ConfError, ResolvedConf};
use msgr2_crypto::keyring::{Keyring, KeyringError};
use thiserror::Error;

use crate::{BindOptions, MessengerBuilder};

/// Why a configuration could not be turned into a builder.
#[derive(Debug, Error)]
pub enum FromConfError {
    /// An option has a bad value (the error names the file and line).
    #[error(transparent)]
    Conf(#[from] ConfError),
    /// The entity name is not one the codec accepts.
    #[error("entity name: {0}")]
    Name(#[from] EntityNameError),
    /// The keyring the `keyring` option found could not be loaded.
    #[error("keyring {}: {source}", path.display())]
    Keyring {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyringError,
    },
}

fn port(conf: &ResolvedConf, option: &str, default: u16) -> Result<u16, ConfError> {
    let v = conf.get(option).unwrap_or_default();
    if v.is_empty() {
        return Ok(default);
    }
    v.parse().map_err(|_| ConfError::BadValue {
        origin: conf.origin(option),
        option: option.to_owned(),
        value: v,
        reason: "expected a port number".to_owned(),
    })
}

/// The `ms_bind_msgr1/2`, `ms_bind_ipv4/6`, `public_addr` and `ms_bind_port_min/max`
/// options for [`MessengerBuilder::bind`]. msgr1 is not implemented: Ceph's default
/// `ms_bind_msgr1 = true` binds msgr2 only (with a warning).
pub fn bind_options(conf: &ResolvedConf) -> Result<BindOptions, ConfError> {
    let d = BindOptions::default();
    let msgr1 = conf.get_bool("ms_bind_msgr1")?;
    if msgr1 {
        tracing::warn!("ms_bind_msgr1 is true, but msgr1 is not implemented: binding msgr2 only");
    }
    let public_addr = match conf.get("public_addr").unwrap_or_default().as_str() {
        "" => None,
        s => Some(
            s.parse::<SocketAddr>()
                .or_else(|_| {
                    s.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 0))
                })
                .map_err(|_| ConfError::BadValue {
                    origin: conf.origin("public_addr"),
                    option: "public_addr".to_owned(),
                    value: s.to_owned(),
                    reason: "expected an IP address, optionally with a port".to_owned(),
                })?,
        ),
    };
    Ok(BindOptions {
        ms_bind_msgr2: conf.get_bool("ms_bind_msgr2")?,
        ms_bind_msgr1: false,
        ms_bind_ipv4: conf.get_bool("ms_bind_ipv4")?,
        ms_bind_ipv6: conf.get_bool("ms_bind_ipv6")?,
        public_addr,
        ms_bind_port_min: port(conf, "ms_bind_port_min", d.ms_bind_port_min)?,
        ms_bind_port_max: port(conf, "ms_bind_port_max", d.ms_bind_port_max)?,
    })
}

impl MessengerBuilder {
    /// A builder for the conf's entity with its `ms_*_mode` options and, when the `keyring`
    /// search list finds a file, cephx with that keyring (otherwise auth none). Servers
    /// add `.bind(bind_options(conf)?)`; clients dial [`ResolvedConf::mon_addrs`].
    pub fn from_conf(conf: &ResolvedConf) -> Result<Self, FromConfError> {
        let name: EntityName = conf.entity.name().parse()?;
        let mut b = MessengerBuilder::new(name).modes(conf.modes()?);
        if let Some(path) = conf.keyring_path() {
            let keyring =
                Keyring::load(&path).map_err(|source| FromConfError::Keyring { path, source })?;
            b = b.keyring(keyring);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use msgr2_conf::{ConfFile, Entity, ResolveOptions};

    use super::*;

    fn conf(text: &str) -> ResolvedConf {
        ResolvedConf::from_file(
            ConfFile::parse(text, Path::new("/t/ceph.conf")).expect("parses"),
            "ceph",
            Entity::parse("osd.3").expect("name"),
            ResolveOptions { daemon: true },
        )
    }

    #[test]
    fn bind_options_from_conf() {
        let c = conf("[global]\nms_bind_ipv6 = true\nms bind ipv4 = false\n[osd.3]\npublic addr = 127.0.0.1\nms_bind_port_min = 7000\n");
        let o = bind_options(&c).expect("options");
        assert!(o.ms_bind_msgr2 && !o.ms_bind_msgr1 && o.ms_bind_ipv6 && !o.ms_bind_ipv4);
        assert_eq!(o.public_addr, Some("127.0.0.1:0".parse().expect("addr")));
        assert_eq!((o.ms_bind_port_min, o.ms_bind_port_max), (7000, 7568));
        let bad = conf("[osd]\nms_bind_port_max = lots\n");
        match bind_options(&bad) {
            Err(ConfError::BadValue { origin, .. }) => assert_eq!(origin, "/t/ceph.conf:2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builder_from_conf() {
        let c = conf("[global]\nms_cluster_mode = secure\nkeyring = /nonexistent/k\n");
        assert!(MessengerBuilder::from_conf(&c).is_ok());
        let bad = conf("[global]\nms_cluster_mode = fast\n");
        assert!(matches!(
            MessengerBuilder::from_conf(&bad),
            Err(FromConfError::Conf(ConfError::BadValue { .. }))
        ));
    }
}
