//! Binding listening sockets with Ceph's `ms_bind_*` options and defaults.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::entity::{EntityName, EntityType};
use socket2::{Domain, Socket, Type};
use tracing::debug;

use crate::error::{BadListenAddr, EngineError, NothingToBind};

/// Ceph's msgr2 monitor port.
pub const MON_PORT_MSGR2: u16 = 3300;
/// Ceph's legacy monitor port.
pub const MON_PORT_LEGACY: u16 = 6789;

/// Ceph's binding options (16.2 names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOptions {
    /// `ms_bind_msgr2` (default true): bind a v2 address.
    pub ms_bind_msgr2: bool,
    /// `ms_bind_msgr1` (default false here; Ceph's default is true): the legacy protocol is
    /// not implemented, so true fails with [`EngineError::Msgr1Unsupported`].
    pub ms_bind_msgr1: bool,
    /// `ms_bind_ipv4` (default true).
    pub ms_bind_ipv4: bool,
    /// `ms_bind_ipv6` (default false); with `ms_bind_ipv4` too, both families are bound
    /// (dual stack, two addresses in the vector).
    pub ms_bind_ipv6: bool,
    /// `public_addr`: the IP (and optionally port) to bind and advertise; unset binds the
    /// wildcard of each enabled family.
    pub public_addr: Option<SocketAddr>,
    /// `ms_bind_port_min` (default 6800).
    pub ms_bind_port_min: u16,
    /// `ms_bind_port_max` (default 7300).
    pub ms_bind_port_max: u16,
}

impl Default for BindOptions {
    fn default() -> Self {
        Self {
            ms_bind_msgr2: true,
            ms_bind_msgr1: false,
            ms_bind_ipv4: true,
            ms_bind_ipv6: false,
            public_addr: None,
            ms_bind_port_min: 6800,
            ms_bind_port_max: 7300,
        }
    }
}

/// What to bind: an address vector text or options.
#[derive(Debug, Clone)]
pub enum BindSpec {
    /// An address vector (`[v2:127.0.0.1:0/0]`, `127.0.0.1:6800`); port 0 searches the
    /// default port range.
    Addrs(String),
    /// Ceph options.
    Options(BindOptions),
}

impl From<&str> for BindSpec {
    fn from(s: &str) -> Self {
        BindSpec::Addrs(s.to_owned())
    }
}
impl From<String> for BindSpec {
    fn from(s: String) -> Self {
        BindSpec::Addrs(s)
    }
}
impl From<&String> for BindSpec {
    fn from(s: &String) -> Self {
        BindSpec::Addrs(s.clone())
    }
}
impl From<BindOptions> for BindSpec {
    fn from(o: BindOptions) -> Self {
        BindSpec::Options(o)
    }
}

/// One socket to bind: IP, fixed port (or a range to search).
struct Want {
    ip: IpAddr,
    port: Option<u16>,
    min: u16,
    max: u16,
}

fn listen_on(sa: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(sa), Type::STREAM.cloexec(), None)?;
    s.set_reuse_address(true)?;
    if sa.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&sa.into())?;
    s.listen(512)?;
    Ok(s)
}

fn bind_one(w: &Want) -> Result<(Socket, SocketAddr), EngineError> {
    let bound = |s: &Socket| -> Result<SocketAddr, EngineError> {
        s.local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| EngineError::Io {
                op: "getsockname",
                source: std::io::Error::last_os_error(),
            })
    };
    if let Some(port) = w.port {
        let sa = SocketAddr::new(w.ip, port);
        let s = listen_on(sa).map_err(|source| EngineError::Bind {
            addr: sa.to_string(),
            source,
        })?;
        let a = bound(&s)?;
        return Ok((s, a));
    }
    for port in w.min..=w.max {
        let sa = SocketAddr::new(w.ip, port);
        match listen_on(sa) {
            Ok(s) => {
                let a = bound(&s)?;
                return Ok((s, a));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(source) => {
                return Err(EngineError::Bind {
                    addr: sa.to_string(),
                    source,
                })
            }
        }
    }
    Err(EngineError::NoFreePort {
        ip: w.ip,
        min: w.min,
        max: w.max,
    })
}

fn wants(name: &EntityName, spec: &BindSpec) -> Result<Vec<Want>, EngineError> {
    let defaults = BindOptions::default();
    match spec {
        BindSpec::Addrs(text) => {
            let v = EntityAddrVec::parse(text).map_err(|e| EngineError::BadAddress {
                text: text.clone(),
                reason: e.into(),
            })?;
            let mut out = Vec::new();
            for a in v.0 {
                match a.ty {
                    AddrType::Legacy => return Err(EngineError::Msgr1Unsupported),
                    AddrType::Msgr2 | AddrType::Any => {}
                    other => {
                        return Err(EngineError::BadAddress {
                            text: text.clone(),
                            reason: BadListenAddr::Type(other),
                        })
                    }
                }
                let sock = a.sock.ok_or_else(|| EngineError::BadAddress {
                    text: text.clone(),
                    reason: BadListenAddr::NoIp,
                })?;
                out.push(Want {
                    ip: sock.ip(),
                    port: (sock.port() != 0).then_some(sock.port()),
                    min: defaults.ms_bind_port_min,
                    max: defaults.ms_bind_port_max,
                });
            }
            Ok(out)
        }
        BindSpec::Options(o) => {
            if o.ms_bind_msgr1 {
                return Err(EngineError::Msgr1Unsupported);
            }
            if !o.ms_bind_msgr2 {
                return Err(EngineError::NothingToBind(NothingToBind::Msgr2Off));
            }
            if o.ms_bind_port_min > o.ms_bind_port_max {
                return Err(EngineError::NothingToBind(NothingToBind::EmptyPortRange {
                    min: o.ms_bind_port_min,
                    max: o.ms_bind_port_max,
                }));
            }
            // Monitors listen on the well-known port unless told otherwise.
            let fixed = |p: u16| -> Option<u16> {
                if p != 0 {
                    Some(p)
                } else if name.ty == EntityType::Mon {
                    Some(MON_PORT_MSGR2)
                } else {
                    None
                }
            };
            let mut out = Vec::new();
            match o.public_addr {
                Some(sa) => {
                    if (sa.is_ipv4() && !o.ms_bind_ipv4) || (sa.is_ipv6() && !o.ms_bind_ipv6) {
                        return Err(EngineError::NothingToBind(NothingToBind::FamilyOff(sa)));
                    }
                    out.push(Want {
                        ip: sa.ip(),
                        port: fixed(sa.port()),
                        min: o.ms_bind_port_min,
                        max: o.ms_bind_port_max,
                    });
                }
                None => {
                    if o.ms_bind_ipv4 {
                        out.push(Want {
                            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                            port: fixed(0),
                            min: o.ms_bind_port_min,
                            max: o.ms_bind_port_max,
                        });
                    }
                    if o.ms_bind_ipv6 {
                        out.push(Want {
                            ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                            port: fixed(0),
                            min: o.ms_bind_port_min,
                            max: o.ms_bind_port_max,
                        });
                    }
                    if out.is_empty() {
                        return Err(EngineError::NothingToBind(NothingToBind::NoFamily));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Binds every spec; returns the listening sockets and the address vector Ceph would report
/// (`v2:` addresses carrying our nonce).
pub(crate) fn bind_all(
    name: &EntityName,
    specs: &[BindSpec],
    nonce: u32,
) -> Result<(Vec<Socket>, EntityAddrVec), EngineError> {
    let mut socks = Vec::new();
    let mut addrs = Vec::new();
    for spec in specs {
        for w in wants(name, spec)? {
            let (s, a) = bind_one(&w)?;
            debug!(addr = %a, "listening");
            addrs.push(EntityAddr::new(AddrType::Msgr2, a, nonce));
            socks.push(s);
        }
    }
    Ok((socks, EntityAddrVec(addrs)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn options_and_errors() {
        let osd: EntityName = "osd.0".parse().unwrap();
        let o = BindOptions {
            ms_bind_msgr1: true,
            ..Default::default()
        };
        assert!(matches!(
            wants(&osd, &o.into()),
            Err(EngineError::Msgr1Unsupported)
        ));
        assert!(matches!(
            wants(&osd, &"[v1:127.0.0.1:6789/0]".into()),
            Err(EngineError::Msgr1Unsupported)
        ));
        let mon: EntityName = "mon.a".parse().unwrap();
        let w = wants(&mon, &BindOptions::default().into()).unwrap();
        assert_eq!(w[0].port, Some(MON_PORT_MSGR2));
        let dual = BindOptions {
            ms_bind_ipv6: true,
            ..Default::default()
        };
        assert_eq!(wants(&osd, &dual.into()).unwrap().len(), 2);
    }

    #[test]
    fn no_free_port_is_named() {
        let osd: EntityName = "osd.0".parse().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let o = BindOptions {
            public_addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            ms_bind_port_min: port,
            ms_bind_port_max: port,
            ..Default::default()
        };
        let e = bind_all(&osd, &[o.into()], 1).unwrap_err();
        assert!(matches!(e, EngineError::NoFreePort { .. }), "{e}");
        assert!(e.to_string().contains("ms_bind_port_min"));
    }
}
