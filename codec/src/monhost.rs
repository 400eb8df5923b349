//! `mon_host` parsing: from the configured monitor list to the address vectors to dial.
//!
//! This follows Ceph's `MonMap::build_initial` → `init_with_ips` → `parse_ip_port_vec`
//! (`common/ceph_argparse.cc`) → `_add_ambiguous_addr` (`mon/MonMap.cc`) for a client
//! (`for_mkfs == false`):
//!
//! 1. The string is split on runs of spaces and `;` (not tabs). Each piece is a sequence of
//!    entries separated by single commas; an entry is an address (default type `ANY`) or a
//!    bracketed address vector `[v2:…,v1:…]` (default type `v2` inside). A trailing comma
//!    is allowed, a doubled or leading one is not.
//! 2. A vector of two or more addresses is one monitor, used exactly as written.
//! 3. A single address (or one-element vector) is *ambiguous* and expands as follows:
//!    * `v1:`/`v2:` prefix: kept; port 0 becomes 6789 (`v1`) or 3300 (`v2`);
//!    * no prefix (or `any:`) and port 6789: `v1` only; port 3300: `v2` only;
//!    * no prefix and no port (or port 0): **two monitor entries**, `v2:ip:3300` and
//!      `v1:ip:6789` (Ceph names them `noname-X` and `noname-X-legacy`; only `--mkfs`
//!      makes one monitor with both addresses);
//!    * no prefix and another port: two entries, `v2:ip:port` and `v1:ip:port`;
//!    * `-` (a `TYPE_NONE` address) is ignored.
//!
//!    An expanded address already present in an earlier entry is skipped (`contains`).
//!
//! The result is one [`EntityAddrVec`] per monitor-map entry, in the order Ceph adds them.
//! The order carries no meaning: Ceph ranks the initial entries by address and `MonClient`
//! hunts among them at random. A Ceph client dials every entry, each with the protocol of
//! its address, so `1.2.3.4` makes it try `v2:1.2.3.4:3300` and, as a separate "monitor",
//! `v1:1.2.3.4:6789`. A msgr2-only client should dial [`EntityAddrVec::msgr2`] of each entry
//! and skip entries that have none.
//!
//! Host names are out of scope: Ceph falls back to resolving the whole string with DNS
//! (`init_with_hosts`) when it does not parse as IP addresses; this crate does no I/O and
//! reports [`AddrParseError::HostName`] instead, so callers can resolve and retry. Inputs
//! that only glibc's resolver accepts (such as `127.1`) are rejected for the same reason.

use crate::addr::{AddrParseError, AddrType, EntityAddr, EntityAddrVec};

/// `CEPH_MON_PORT_IANA`: the IANA-assigned msgr2 monitor port, the default for `v2:`
/// monitor addresses.
pub const CEPH_MON_PORT: u16 = 3300;

/// `CEPH_MON_PORT_LEGACY`: the historical msgr1 monitor port, the default for `v1:`
/// monitor addresses.
pub const CEPH_MON_PORT_LEGACY: u16 = 6789;

/// Parses a `mon_host` value into the address vectors of the initial monitor map, one per
/// entry, following Ceph's rules (see the module documentation for the exact expansion).
///
/// Errors: syntax errors from the address parser; [`AddrParseError::HostName`] for DNS names
/// (not resolved here); [`AddrParseError::NoMonitors`] when nothing usable is listed;
/// [`AddrParseError::DuplicateAddr`] when an explicit vector repeats an address of an
/// earlier entry (Ceph asserts on that).
pub fn parse_mon_host(s: &str) -> Result<Vec<EntityAddrVec>, AddrParseError> {
    let mut entries: Vec<EntityAddrVec> = Vec::new();
    for item in s.split([' ', ';']).filter(|t| !t.is_empty()) {
        let mut rest = item;
        // Ceph does not require a comma between entries ("1.2.3.4-" is an address and a
        // `-`); only text at the start of an entry can be a host name.
        let mut at_entry_start = true;
        while !rest.is_empty() {
            let (v, n) = match parse_entry(rest, at_entry_start) {
                Ok(ok) => ok,
                Err(_) if !at_entry_start => {
                    return Err(AddrParseError::TrailingCharacters {
                        rest: rest.to_owned(),
                    })
                }
                Err(e) => return Err(e),
            };
            entries.push(v);
            rest = rest.get(n..).unwrap_or_default();
            at_entry_start = match rest.strip_prefix(',') {
                Some(r) => {
                    rest = r;
                    true
                }
                None => false,
            };
        }
    }
    if entries.is_empty() {
        return Err(AddrParseError::NoMonitors);
    }

    let mut mons: Vec<EntityAddrVec> = Vec::new();
    for entry in entries {
        if let [single] = entry.0.as_slice() {
            add_ambiguous(&mut mons, *single);
        } else {
            if let Some(dup) = entry.0.iter().find(|a| known(&mons, a)) {
                return Err(AddrParseError::DuplicateAddr {
                    addr: dup.to_string(),
                });
            }
            mons.push(entry);
        }
    }
    if mons.is_empty() {
        return Err(AddrParseError::NoMonitors);
    }
    Ok(mons)
}

/// One entry at the start of `s`: an address of default type `ANY`, else an address vector.
/// On failure, a host name is reported as such when `may_be_host`.
fn parse_entry(s: &str, may_be_host: bool) -> Result<(EntityAddrVec, usize), AddrParseError> {
    let addr_err = match EntityAddr::parse_with_default(s, AddrType::Any) {
        Ok((a, n)) => return Ok((EntityAddrVec(vec![a]), n)),
        Err(e) => e,
    };
    let vec_err = match EntityAddrVec::parse_prefix(s) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if let Some(host) = host_name(s).filter(|_| may_be_host) {
        return Err(AddrParseError::HostName { host });
    }
    Err(if s.starts_with('[') {
        vec_err
    } else {
        addr_err
    })
}

/// If the entry at the start of `s` (up to the next comma) is a DNS name, optionally with a
/// `v1:`/`v2:`/`any:` prefix and a `:port`, returns the name.
fn host_name(s: &str) -> Option<String> {
    let word = s.split(',').next().unwrap_or_default();
    let word = ["v1:", "v2:", "any:"]
        .iter()
        .find_map(|p| word.strip_prefix(p))
        .unwrap_or(word);
    let host = match word.split_once(':') {
        Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
        Some(_) => return None,
        None => word,
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let valid = host.len() <= 253
        && host.bytes().any(|c| c.is_ascii_alphabetic())
        && host
            .strip_suffix('.')
            .unwrap_or(host)
            .split('.')
            .all(label_ok);
    valid.then(|| host.to_owned())
}

/// True if an earlier entry already holds exactly this address (Ceph's `MonMap::contains`).
fn known(mons: &[EntityAddrVec], a: &EntityAddr) -> bool {
    mons.iter().any(|v| v.contains(a))
}

/// Adds `a` as a one-address entry unless an entry already holds it.
fn add_unique(mons: &mut Vec<EntityAddrVec>, a: EntityAddr) {
    if !known(mons, &a) {
        mons.push(EntityAddrVec(vec![a]));
    }
}

/// Ceph's `_add_ambiguous_addr` for a client (`for_mkfs == false`).
fn add_ambiguous(mons: &mut Vec<EntityAddrVec>, a: EntityAddr) {
    match a.ty {
        AddrType::Legacy if a.port() == 0 => add_unique(mons, a.with_port(CEPH_MON_PORT_LEGACY)),
        AddrType::Msgr2 if a.port() == 0 => add_unique(mons, a.with_port(CEPH_MON_PORT)),
        AddrType::Legacy | AddrType::Msgr2 => add_unique(mons, a),
        AddrType::Any => match a.port() {
            CEPH_MON_PORT_LEGACY => add_unique(mons, a.with_type(AddrType::Legacy)),
            CEPH_MON_PORT => add_unique(mons, a.with_type(AddrType::Msgr2)),
            0 => {
                add_unique(mons, a.with_type(AddrType::Msgr2).with_port(CEPH_MON_PORT));
                add_unique(
                    mons,
                    a.with_type(AddrType::Legacy)
                        .with_port(CEPH_MON_PORT_LEGACY),
                );
            }
            _ => {
                add_unique(mons, a.with_type(AddrType::Msgr2));
                add_unique(mons, a.with_type(AddrType::Legacy));
            }
        },
        // `-` parses as TYPE_NONE; Ceph ignores it ("wth"). CIDR cannot come from the parser.
        AddrType::None | AddrType::Cidr => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vecs(list: &[&str]) -> Vec<EntityAddrVec> {
        list.iter()
            .map(|s| EntityAddrVec::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            ("127.0.0.1", &["v2:127.0.0.1:3300/0", "v1:127.0.0.1:6789/0"]),
            ("127.0.0.1:3300", &["v2:127.0.0.1:3300/0"]),
            ("127.0.0.1:6789", &["v1:127.0.0.1:6789/0"]),
            (
                "127.0.0.1:1234",
                &["v2:127.0.0.1:1234/0", "v1:127.0.0.1:1234/0"],
            ),
            (
                "127.0.0.1:0",
                &["v2:127.0.0.1:3300/0", "v1:127.0.0.1:6789/0"],
            ),
            ("v2:127.0.0.1", &["v2:127.0.0.1:3300/0"]),
            ("v1:127.0.0.1", &["v1:127.0.0.1:6789/0"]),
            ("v1:127.0.0.1:3300", &["v1:127.0.0.1:3300/0"]),
            (
                "any:127.0.0.1",
                &["v2:127.0.0.1:3300/0", "v1:127.0.0.1:6789/0"],
            ),
            ("127.0.0.1:6789/5", &["v1:127.0.0.1:6789/5"]),
            (
                "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]",
                &["[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0]"],
            ),
            (
                "[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0] [v2:1.2.3.5:3300/0,v1:1.2.3.5:6789/0]",
                &[
                    "[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0]",
                    "[v2:1.2.3.5:3300/0,v1:1.2.3.5:6789/0]",
                ],
            ),
            (
                "1.2.3.4,1.2.3.5",
                &[
                    "v2:1.2.3.4:3300/0",
                    "v1:1.2.3.4:6789/0",
                    "v2:1.2.3.5:3300/0",
                    "v1:1.2.3.5:6789/0",
                ],
            ),
            (
                "1.2.3.4;1.2.3.5",
                &[
                    "v2:1.2.3.4:3300/0",
                    "v1:1.2.3.4:6789/0",
                    "v2:1.2.3.5:3300/0",
                    "v1:1.2.3.5:6789/0",
                ],
            ),
            (
                "  1.2.3.4:3300 ;; 1.2.3.5:3300,  ",
                &["v2:1.2.3.4:3300/0", "v2:1.2.3.5:3300/0"],
            ),
            ("[::1]:3300", &["v2:[::1]:3300/0"]),
            ("::1", &["v2:[::1]:3300/0", "v1:[::1]:6789/0"]),
            ("[::1]", &["v2:[::1]:3300/0", "v1:[::1]:6789/0"]),
            ("v2:[::1]:3300", &["v2:[::1]:3300/0"]),
            ("v1:[::1]", &["v1:[::1]:6789/0"]),
            (
                "[v2:[::1]:3300,v1:[::1]:6789]",
                &["[v2:[::1]:3300/0,v1:[::1]:6789/0]"],
            ),
            // a one-element vector is ambiguous again; inside brackets the default type is v2
            ("[1.2.3.4,1.2.3.5]", &["[v2:1.2.3.4:0/0,v2:1.2.3.5:0/0]"]),
            ("[v1:1.2.3.4]", &["v1:1.2.3.4:6789/0"]),
            // duplicates of single addresses are dropped, as MonMap::contains does
            ("1.2.3.4:3300,v2:1.2.3.4", &["v2:1.2.3.4:3300/0"]),
            (
                "[v2:1.2.3.4:3300,v1:1.2.3.4:6789] 1.2.3.4",
                &["[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0]"],
            ),
            // `-` is ignored
            ("-,1.2.3.4:3300", &["v2:1.2.3.4:3300/0"]),
            // Ceph needs no comma between entries
            (
                "1.2.3.4:3300[v2:1.2.3.5:3300,v1:1.2.3.5:6789]",
                &["v2:1.2.3.4:3300/0", "[v2:1.2.3.5:3300/0,v1:1.2.3.5:6789/0]"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mon_host(input).unwrap(), vecs(want), "{input:?}");
        }
    }

    #[test]
    fn bad_inputs() {
        use AddrParseError as E;
        let s = |x: &str| x.to_owned();
        let cases: Vec<(&str, E)> = vec![
            ("", E::NoMonitors),
            (" ; ;", E::NoMonitors),
            ("-", E::NoMonitors),
            (
                "mon.example.com",
                E::HostName {
                    host: s("mon.example.com"),
                },
            ),
            (
                "localhost:6789",
                E::HostName {
                    host: s("localhost"),
                },
            ),
            ("v2:mon-a:3300", E::HostName { host: s("mon-a") }),
            (
                "1.2.3.4,ceph-mon",
                E::HostName {
                    host: s("ceph-mon"),
                },
            ),
            ("1.2.3.4:99999", E::BadPort { port: s("99999") }),
            (
                "1.2.3.4:1/99999999999",
                E::BadNonce {
                    nonce: s("99999999999"),
                },
            ),
            ("1.2.3.4,,1.2.3.5", E::BadIp { text: s("") }),
            (",1.2.3.4", E::BadIp { text: s("") }),
            ("1.2.3.4x", E::TrailingCharacters { rest: s("x") }),
            (
                "1.2.3.4\t1.2.3.5",
                E::TrailingCharacters {
                    rest: s("\t1.2.3.5"),
                },
            ),
            ("1.2.3.4-x", E::TrailingCharacters { rest: s("x") }),
            ("1.2.3", E::BadIp { text: s("1.2.3") }),
            (
                "[v2:1.2.3.4:3300",
                E::UnclosedVector {
                    text: s("[v2:1.2.3.4:3300"),
                },
            ),
            ("[]", E::EmptyVector),
            ("[::1", E::UnclosedVector { text: s("[::1") }),
            ("fe80::1%eth0", E::TrailingCharacters { rest: s("%eth0") }),
            (
                "1.2.3.4 [v2:1.2.3.4:3300,v1:1.2.3.4:6789]",
                E::DuplicateAddr {
                    addr: s("v2:1.2.3.4:3300/0"),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mon_host(input).unwrap_err(), want, "{input:?}");
        }
    }

    /// Text that is no valid DNS name (RFC 1123 labels of 1 to 63 letters, digits, `-`, `_`,
    /// not starting or ending with `-`) or has a non-numeric port is a bad address, not a host
    /// name to resolve.
    #[test]
    fn only_valid_dns_names_are_host_names() {
        let long = "a".repeat(64);
        let long_label = format!("{long}.example.com");
        for input in [
            "mon-a:33x0",
            "mon!a.example.com",
            "mon.-bad.com",
            "mon.bad-.com",
            "mon..example.com",
            long_label.as_str(),
        ] {
            let e = parse_mon_host(input).unwrap_err();
            assert!(
                !matches!(e, AddrParseError::HostName { .. }),
                "{input:?}: {e:?}"
            );
        }
        let ok = format!("{}.example.com", "a".repeat(63));
        assert_eq!(
            parse_mon_host(&format!("mon_1.{ok}")).unwrap_err(),
            AddrParseError::HostName {
                host: format!("mon_1.{ok}")
            }
        );
    }

    #[test]
    fn printed_monitors_parse_back() {
        for input in [
            "127.0.0.1",
            "127.0.0.1:1234",
            "v1:127.0.0.1",
            "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]",
            "[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0] [v2:1.2.3.5:3300/0,v1:1.2.3.5:6789/0]",
            "::1",
            "[::1]:3300",
            "v2:[2001:db8::7]:3300/9",
        ] {
            for mon in parse_mon_host(input).unwrap() {
                let text = mon.to_string();
                assert_eq!(EntityAddrVec::parse(&text).unwrap(), mon, "{text}");
                // and fed back as mon_host it names the same single monitor
                assert_eq!(parse_mon_host(&text).unwrap(), vec![mon.clone()], "{text}");
            }
        }
    }

    #[test]
    fn msgr2_targets() {
        let mons =
            parse_mon_host("1.2.3.4 [v2:1.2.3.5:3300,v1:1.2.3.5:6789] 1.2.3.6:6789").unwrap();
        let v2: Vec<String> = mons
            .iter()
            .filter_map(|m| m.msgr2())
            .map(|a| a.to_string())
            .collect();
        assert_eq!(v2, ["v2:1.2.3.4:3300/0", "v2:1.2.3.5:3300/0"]);
    }
}
