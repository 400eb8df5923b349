//! Ceph network addresses: `entity_addr_t`, `entity_addrvec_t` and their text forms.
//!
//! An `entity_addr_t` is a protocol type (`v1`/`v2`/`any`/...), a nonce identifying a process
//! instance, and a Linux `sockaddr` (IPv4 or IPv6). Ceph has two wire encodings for it:
//!
//! * the **new** encoding (marker byte 1, `ENCODE_START(1, 1)`), the only one used inside
//!   msgr2 frames: `u32 type`, `u32 nonce`, `u32 sockaddr_len`, then the raw Linux sockaddr
//!   whose family is little-endian and whose port/IP are in network order;
//! * the **legacy** encoding (marker byte 0): `u32 0`, `u32 nonce`, and a 128-byte
//!   `sockaddr_storage` whose family is *big*-endian. No type is carried.
//!
//! An `entity_addrvec_t` is marker 2 plus a vector of addresses; its decoder also accepts a
//! bare new-style (marker 1) or legacy (marker 0) address.
//!
//! Sources (paraphrased): Ceph `src/msg/msg_types.h` (`entity_addr_t::encode/decode`,
//! `decode_legacy_addr_after_marker`, `ceph_sockaddr_storage`), `src/msg/msg_types.cc`
//! (`entity_addr_t::parse`, `entity_addrvec_t::parse/decode`, `operator<<`), Ceph's
//! `include/types.h` (vector printing), and the kernel's `ceph_encode_entity_addr`.
//!
//! Ways this module knowingly differs from Ceph are listed on the items concerned; in short:
//! it cannot represent address families other than IPv4/IPv6/unspecified or unknown type
//! values (Ceph keeps them, we reject them with a typed error), it forgets bytes Ceph would
//! keep in the in-memory struct but never uses (`sin_zero`, data after an unspecified
//! family), and its text parser rejects out-of-range nonces where Ceph's `atoi` wraps.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

use thiserror::Error;

use crate::encoding::{len_u32, DecodeError, Decoder, Encode};

/// Linux `AF_INET`: the family value Ceph writes for IPv4 on every platform.
const AF_INET: u16 = 2;
/// Linux `AF_INET6`: the family value Ceph writes for IPv6 (Windows builds translate to it).
const AF_INET6: u16 = 10;
/// `sizeof(struct sockaddr_in)` on Linux.
const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)` on Linux; also the size of the union inside `entity_addr_t`.
const SOCKADDR_IN6_LEN: usize = 28;
/// `sizeof(struct sockaddr_storage)`, the legacy encoding's fixed sockaddr size.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// Smallest possible new-style `entity_addr_t` encoding (marker, header, 12 body bytes,
/// `sockaddr_len` 0); used to bound vector counts before allocating.
pub(crate) const MIN_ADDR_ENCODED_LEN: usize = 1 + 6 + 12;

/// Length of [`EntityAddr::race_key`]: `sizeof(entity_addr_t)` on Linux (type, nonce, and the
/// 28-byte sockaddr union).
pub const RACE_KEY_LEN: usize = 8 + SOCKADDR_IN6_LEN;

/// `entity_addr_t::type`: which messenger protocol an address speaks.
///
/// The type is part of the address identity: a monitor's `v2:` and `v1:` addresses differ
/// only in type and port, and peers match addresses exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AddrType {
    /// `TYPE_NONE`: no address; printed as `-`.
    None = 0,
    /// `TYPE_LEGACY`: msgr1 (`v1:`).
    Legacy = 1,
    /// `TYPE_MSGR2`: msgr2 (`v2:`).
    Msgr2 = 2,
    /// `TYPE_ANY`: either protocol; printed without a prefix, parsed from `any:`. Clients
    /// that do not listen announce themselves with this type.
    Any = 3,
    /// `TYPE_CIDR`: a blocklist range whose nonce holds the prefix length; printed `cidr:`
    /// and never produced by the text parser.
    Cidr = 4,
}

impl AddrType {
    /// Maps a wire value to a type; `None` for values Ceph does not define.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Legacy,
            2 => Self::Msgr2,
            3 => Self::Any,
            4 => Self::Cidr,
            _ => return None,
        })
    }

    /// Ceph's `get_type_name`: `none`, `v1`, `v2`, `any`, `cidr` (the text prefix without
    /// the colon), for log output that matches Ceph's.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Legacy => "v1",
            Self::Msgr2 => "v2",
            Self::Any => "any",
            Self::Cidr => "cidr",
        }
    }
}

/// An `entity_addr_t`: protocol type, instance nonce and socket address.
///
/// `sock` is `None` for an address whose sockaddr family is unspecified (`AF_UNSPEC`, e.g. a
/// default-constructed Ceph address). For IPv6, `flowinfo` and `scope_id` are carried on the
/// wire: `flowinfo()` is taken as the logical flow label and written in network order,
/// `scope_id()` is written little-endian, as Ceph on a little-endian Linux host copies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityAddr {
    /// Protocol type.
    pub ty: AddrType,
    /// Process-instance nonce (a random value or pid; 0 for Pacific monitors).
    pub nonce: u32,
    /// IP address and port; `None` when the family is unspecified.
    pub sock: Option<SocketAddr>,
}

impl EntityAddr {
    /// An address of type `ty` at `sock` with instance `nonce`.
    pub fn new(ty: AddrType, sock: SocketAddr, nonce: u32) -> Self {
        Self {
            ty,
            nonce,
            sock: Some(sock),
        }
    }

    /// The 28-byte sockaddr union as Ceph holds it in memory (family little-endian, or
    /// big-endian when `family_be`, as the legacy encoding wants), and the length Ceph's
    /// `get_sockaddr_len()` reports for it: 16 for IPv4, 28 for IPv6 and 28 (the union size)
    /// for an unspecified family.
    fn sockaddr_union(&self, family_be: bool) -> ([u8; SOCKADDR_IN6_LEN], usize) {
        let mut u = [0u8; SOCKADDR_IN6_LEN];
        let (family, len) = match self.sock {
            None => (0u16, SOCKADDR_IN6_LEN),
            Some(SocketAddr::V4(a)) => {
                u[2..4].copy_from_slice(&a.port().to_be_bytes());
                u[4..8].copy_from_slice(&a.ip().octets());
                (AF_INET, SOCKADDR_IN_LEN)
            }
            Some(SocketAddr::V6(a)) => {
                u[2..4].copy_from_slice(&a.port().to_be_bytes());
                u[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
                u[8..24].copy_from_slice(&a.ip().octets());
                u[24..28].copy_from_slice(&a.scope_id().to_le_bytes());
                (AF_INET6, SOCKADDR_IN6_LEN)
            }
        };
        let fam = if family_be {
            family.to_be_bytes()
        } else {
            family.to_le_bytes()
        };
        u[0..2].copy_from_slice(&fam);
        (u, len)
    }

    /// Appends the new encoding (marker 1), the form used in every msgr2 frame.
    ///
    /// Layout: `01`, `ENCODE_START(1, 1)` header, `u32 type`, `u32 nonce`,
    /// `u32 sockaddr_len`, then `sockaddr_len` bytes of the Linux sockaddr: `u16 family`
    /// (LE), port (BE), and for IPv4 the address plus 8 zero bytes (16 in all), for IPv6
    /// flowinfo (BE), address and scope id (LE) (28 in all). Like Ceph and the kernel, an
    /// address without a sockaddr is written with `sockaddr_len` 28 and an all-zero sockaddr
    /// (47 bytes in all), because `get_sockaddr_len()` reports the union size for
    /// `AF_UNSPEC`; `ANY` is written as is (we assume a Nautilus-or-later peer).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (u, len) = self.sockaddr_union(false);
        out.put_u8(1);
        out.put_versioned(1, 1, |b| {
            b.put_u32(self.ty as u32);
            b.put_u32(self.nonce);
            b.put_u32(len_u32(len));
            b.extend_from_slice(&u[..len]);
        });
    }

    /// Appends the legacy encoding (marker 0) used for peers without
    /// `CEPH_FEATURE_MSG_ADDR2` and in old map encodings: `u32 0`, `u32 nonce`, and a
    /// 128-byte `sockaddr_storage` whose family is **big-endian**, followed by the raw
    /// sockaddr body and zero padding (136 bytes in all). The type is not carried.
    pub fn encode_legacy(&self, out: &mut Vec<u8>) {
        let (u, _) = self.sockaddr_union(true);
        out.put_u32(0);
        out.put_u32(self.nonce);
        out.extend_from_slice(&u);
        out.resize(out.len() + (SOCKADDR_STORAGE_LEN - SOCKADDR_IN6_LEN), 0);
    }

    /// Decodes an address in the new (marker 1) or legacy (marker 0) encoding.
    ///
    /// Errors, all typed: another marker, a `struct_compat` above 1, an unknown type value,
    /// a `sockaddr_len` of 1, a `sockaddr_len` larger than the family's sockaddr (16 for
    /// IPv4, 28 otherwise), a family other than unspecified/IPv4/IPv6, and truncation.
    /// Unknown trailing bytes inside `struct_len` are skipped. As in Ceph, a `sockaddr_len`
    /// shorter than the family's sockaddr is accepted and the missing bytes read as zero.
    pub fn decode(d: &mut Decoder) -> Result<Self, DecodeError> {
        match d.u8("entity_addr_t marker")? {
            0 => Self::decode_legacy_after_marker(d),
            1 => Self::decode_new_after_marker(d),
            m => Err(DecodeError::InvalidValue {
                what: "entity_addr_t marker",
                value: m.into(),
            }),
        }
    }

    /// The new encoding after its marker byte.
    fn decode_new_after_marker(d: &mut Decoder) -> Result<Self, DecodeError> {
        let (_v, mut body) = d.versioned(1, "entity_addr_t")?;
        let raw_ty = body.u32("entity_addr_t type")?;
        let ty = AddrType::from_u32(raw_ty).ok_or(DecodeError::InvalidValue {
            what: "entity_addr_t type",
            value: raw_ty.into(),
        })?;
        let nonce = body.u32("entity_addr_t nonce")?;
        let elen = body.u32("entity_addr_t sockaddr_len")?;
        if elen == 0 {
            return Ok(Self {
                ty,
                nonce,
                sock: None,
            });
        }
        if elen < 2 {
            return Err(DecodeError::InvalidValue {
                what: "entity_addr_t sockaddr_len",
                value: elen.into(),
            });
        }
        let family = body.u16("entity_addr_t sockaddr family")?;
        let max = match family {
            AF_INET => SOCKADDR_IN_LEN,
            AF_INET6 | 0 => SOCKADDR_IN6_LEN,
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "entity_addr_t sockaddr family",
                    value: other.into(),
                })
            }
        };
        if elen as usize > max {
            return Err(DecodeError::TooLong {
                what: "entity_addr_t sockaddr_len",
                len: elen.into(),
                limit: max as u64,
            });
        }
        let raw = body.bytes(elen as usize - 2, "entity_addr_t sockaddr")?;
        let mut rest = [0u8; SOCKADDR_IN6_LEN - 2];
        rest[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            ty,
            nonce,
            sock: sock_from_parts(family, &rest),
        })
    }

    /// The legacy encoding after its marker byte: three ignored bytes, the nonce and a
    /// 128-byte `sockaddr_storage` with a big-endian family. The type becomes `Legacy`, or
    /// `None` when the family is unspecified (as in current Ceph).
    fn decode_legacy_after_marker(d: &mut Decoder) -> Result<Self, DecodeError> {
        d.bytes(3, "entity_addr_t legacy marker")?;
        let nonce = d.u32("entity_addr_t legacy nonce")?;
        let ss = d.bytes(
            SOCKADDR_STORAGE_LEN,
            "entity_addr_t legacy sockaddr_storage",
        )?;
        let family = u16::from_be_bytes([ss[0], ss[1]]);
        let mut rest = [0u8; SOCKADDR_IN6_LEN - 2];
        rest.copy_from_slice(&ss[2..SOCKADDR_IN6_LEN]);
        match family {
            0 => Ok(Self {
                ty: AddrType::None,
                nonce,
                sock: None,
            }),
            AF_INET | AF_INET6 => Ok(Self {
                ty: AddrType::Legacy,
                nonce,
                sock: sock_from_parts(family, &rest),
            }),
            other => Err(DecodeError::InvalidValue {
                what: "entity_addr_t legacy sockaddr family",
                value: other.into(),
            }),
        }
    }

    /// The bytes Ceph's `operator<`/`operator==` compare with `memcmp` (spec §8.6): the
    /// in-memory `entity_addr_t` of a little-endian Linux host.
    ///
    /// Layout (36 bytes): `u32 type` LE, `u32 nonce` LE, then the 28-byte sockaddr union:
    /// `u16 family` LE (host order), port BE, then for IPv4 the address and zeros, for IPv6
    /// flowinfo BE, address, scope id LE; all zero without a sockaddr. Comparing keys
    /// bytewise therefore orders first by type, then by the nonce's *little-endian bytes*
    /// (not its numeric value), then family, port, IP. Ceph uses this order to decide which
    /// side of a connection race wins, so an implementation must reproduce it exactly.
    pub fn race_key(&self) -> [u8; RACE_KEY_LEN] {
        let mut k = [0u8; RACE_KEY_LEN];
        k[0..4].copy_from_slice(&(self.ty as u32).to_le_bytes());
        k[4..8].copy_from_slice(&self.nonce.to_le_bytes());
        k[8..].copy_from_slice(&self.sockaddr_union(false).0);
        k
    }

    /// Ceph's `memcmp` ordering of two addresses (see [`EntityAddr::race_key`]); used to
    /// resolve connection races the way Ceph does. Deliberately not `Ord`: it is a wire
    /// convention, not a natural order.
    pub fn race_cmp(&self, other: &Self) -> Ordering {
        self.race_key().cmp(&other.race_key())
    }

    /// Ceph's `is_blank_ip`: true for `0.0.0.0`, `::` or no sockaddr at all. A blank address
    /// must not be dialled and tells a server to learn the peer's address from the socket.
    pub fn is_blank_ip(&self) -> bool {
        match self.sock {
            None => true,
            Some(s) => s.ip().is_unspecified(),
        }
    }

    /// The port, or 0 without a sockaddr (as Ceph's `get_port`).
    pub fn port(&self) -> u16 {
        self.sock.map_or(0, |s| s.port())
    }

    /// The same address with another port, e.g. to apply a default port. Without a
    /// sockaddr there is no port to set and the address is returned unchanged (Ceph would
    /// abort).
    pub fn with_port(mut self, port: u16) -> Self {
        if let Some(s) = self.sock.as_mut() {
            s.set_port(port);
        }
        self
    }

    /// The same address with another type, e.g. to turn an ambiguous `any:` address into
    /// the `v2:` or `v1:` address that will be dialled.
    pub fn with_type(mut self, ty: AddrType) -> Self {
        self.ty = ty;
        self
    }

    /// True when the sockaddr is IPv6.
    fn is_ipv6(&self) -> bool {
        matches!(self.sock, Some(SocketAddr::V6(_)))
    }

    /// Parses a whole string as one address, with type `Msgr2` when no prefix is given
    /// (Ceph's `TYPE_DEFAULT`). See [`EntityAddr::parse_with_default`] for the syntax.
    pub fn parse(s: &str) -> Result<Self, AddrParseError> {
        let (a, n) = Self::parse_with_default(s, AddrType::Msgr2)?;
        match s.get(n..) {
            Some("") => Ok(a),
            rest => Err(AddrParseError::TrailingCharacters {
                rest: rest.unwrap_or_default().to_owned(),
            }),
        }
    }

    /// Parses one address at the start of `s` as Ceph's `entity_addr_t::parse` does and
    /// returns it with the number of bytes consumed, so that vector and `mon_host` parsers
    /// can continue after it. `default` is the type when no prefix is given.
    ///
    /// Syntax: `-` alone is a `None` address (one byte consumed). Otherwise an optional
    /// `v1:`, `v2:` or `any:` prefix, an optional `[`, then the longest run of digits and
    /// dots if it is an IPv4 address, else the longest run of hex digits and colons if it is
    /// an IPv6 address (so IPv6 text with an embedded dotted quad is not accepted, exactly as
    /// in Ceph), the `]` if `[` was given (brackets are allowed around IPv4 too), then an
    /// optional `:port` and an optional `/nonce`. An empty port or nonce means 0, as with
    /// Ceph's `atoi`. A port above 65535 is an error; so is a nonce above `u32::MAX` (Ceph
    /// wraps it modulo 2^32). Without a port the port is 0.
    pub fn parse_with_default(s: &str, default: AddrType) -> Result<(Self, usize), AddrParseError> {
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(AddrParseError::Empty);
        }
        let (ty, mut i) = if b.starts_with(b"v1:") {
            (AddrType::Legacy, 3)
        } else if b.starts_with(b"v2:") {
            (AddrType::Msgr2, 3)
        } else if b.starts_with(b"any:") {
            (AddrType::Any, 4)
        } else if b[0] == b'-' {
            return Ok((
                Self {
                    ty: AddrType::None,
                    nonce: 0,
                    sock: None,
                },
                1,
            ));
        } else {
            (default, 0)
        };

        let brackets = b.get(i) == Some(&b'[');
        if brackets {
            i += 1;
        }
        let run4 = run_len(b, i, |c| c.is_ascii_digit() || c == b'.');
        let run6 = run_len(b, i, |c| c.is_ascii_hexdigit() || c == b':');
        let ip: IpAddr = if let Ok(v4) = s[i..i + run4].parse::<Ipv4Addr>() {
            i += run4;
            v4.into()
        } else if let Ok(v6) = s[i..i + run6].parse::<Ipv6Addr>() {
            i += run6;
            v6.into()
        } else {
            return Err(AddrParseError::BadIp {
                text: word_at(s, i),
            });
        };
        if brackets {
            if b.get(i) != Some(&b']') {
                return Err(AddrParseError::UnclosedBracket { text: s.to_owned() });
            }
            i += 1;
        }

        let mut port = 0u16;
        if b.get(i) == Some(&b':') {
            i += 1;
            let n = run_len(b, i, |c| c.is_ascii_digit());
            let digits = &s[i..i + n];
            if n > 0 {
                port = digits.parse::<u16>().map_err(|_| AddrParseError::BadPort {
                    port: digits.to_owned(),
                })?;
            }
            i += n;
        }

        let mut nonce = 0u32;
        if b.get(i) == Some(&b'/') {
            i += 1;
            let n = run_len(b, i, |c| c.is_ascii_digit());
            let digits = &s[i..i + n];
            if n > 0 {
                nonce = digits
                    .parse::<u32>()
                    .map_err(|_| AddrParseError::BadNonce {
                        nonce: digits.to_owned(),
                    })?;
            }
            i += n;
        }

        Ok((
            Self {
                ty,
                nonce,
                sock: Some(SocketAddr::new(ip, port)),
            },
            i,
        ))
    }
}

/// Builds a socket address from a family and the 26 sockaddr bytes after it.
fn sock_from_parts(family: u16, rest: &[u8; SOCKADDR_IN6_LEN - 2]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([rest[0], rest[1]]);
    match family {
        AF_INET => {
            let ip = Ipv4Addr::new(rest[2], rest[3], rest[4], rest[5]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        AF_INET6 => {
            let flowinfo = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&rest[6..22]);
            let scope_id = u32::from_le_bytes([rest[22], rest[23], rest[24], rest[25]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                octets.into(),
                port,
                flowinfo,
                scope_id,
            )))
        }
        _ => None,
    }
}

/// Length of the run of bytes from `at` that satisfy `pred`.
fn run_len(b: &[u8], at: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(at..)
        .map_or(0, |t| t.iter().take_while(|&&c| pred(c)).count())
}

/// The text at `at` up to the next separator, for error messages.
fn word_at(s: &str, at: usize) -> String {
    let t = s.get(at..).unwrap_or_default();
    let end = t.find([',', ']', ';', ' ']).unwrap_or(t.len());
    t[..end].to_owned()
}

/// IPv6 text exactly as glibc's `inet_ntop` writes it, which is what Ceph prints.
///
/// It differs from Rust's `Display` in one respect: an address whose first six groups are
/// zero (`::a.b.c.d`, IPv4-compatible) or first five zero and the sixth `ffff`
/// (`::ffff:a.b.c.d`, IPv4-mapped) ends in a dotted quad. Otherwise both compress the first
/// longest run of two or more zero groups and print lowercase hex without leading zeros.
struct Ntop6(Ipv6Addr);

impl fmt::Display for Ntop6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0.segments();
        let (mut best_base, mut best_len) = (None::<usize>, 0usize);
        let mut i = 0;
        while i < w.len() {
            if w[i] == 0 {
                let start = i;
                while i < w.len() && w[i] == 0 {
                    i += 1;
                }
                if i - start > best_len {
                    best_base = Some(start);
                    best_len = i - start;
                }
            } else {
                i += 1;
            }
        }
        if best_len < 2 {
            best_base = None;
        }
        for (i, word) in w.iter().enumerate() {
            if let Some(base) = best_base {
                if (base..base + best_len).contains(&i) {
                    if i == base {
                        f.write_str(":")?;
                    }
                    continue;
                }
            }
            if i != 0 {
                f.write_str(":")?;
            }
            if i == 6
                && best_base == Some(0)
                && (best_len == 6 || (best_len == 5 && w[5] == 0xffff))
            {
                let o = self.0.octets();
                return write!(f, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            }
            write!(f, "{word:x}")?;
        }
        if best_base.is_some_and(|base| base + best_len == w.len()) {
            f.write_str(":")?;
        }
        Ok(())
    }
}

/// Prints exactly like Ceph's `operator<<(ostream&, const entity_addr_t&)`:
/// `-` for `None`; otherwise `v1:`/`v2:`/`cidr:` (no prefix for `Any`), then `a.b.c.d:port`
/// or `[ipv6]:port` (glibc `inet_ntop` text), then `/nonce`. An address without a sockaddr
/// prints Ceph's `(unrecognized address family 0)` in place of the IP and port, e.g.
/// `v2:(unrecognized address family 0)/0`. IPv6 flowinfo and scope id are not printed.
impl fmt::Display for EntityAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            AddrType::None => return f.write_str("-"),
            AddrType::Any => {}
            t => write!(f, "{}:", t.name())?,
        }
        match self.sock {
            None => f.write_str("(unrecognized address family 0)")?,
            Some(SocketAddr::V4(a)) => write!(f, "{}:{}", a.ip(), a.port())?,
            Some(SocketAddr::V6(a)) => write!(f, "[{}]:{}", Ntop6(*a.ip()), a.port())?,
        }
        write!(f, "/{}", self.nonce)
    }
}

/// Parses with [`EntityAddr::parse`]: default type `Msgr2`, whole string consumed.
impl FromStr for EntityAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An `entity_addrvec_t`: all the addresses one endpoint listens on (typically a `v2:` and
/// a `v1:` address), as announced in SERVER_IDENT and stored in monmaps and osdmaps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EntityAddrVec(pub Vec<EntityAddr>);

impl EntityAddrVec {
    /// Appends marker 2, the `u32` count and each address in the new encoding (Ceph's form
    /// for peers with `CEPH_FEATURE_MSG_ADDR2`, which every msgr2 peer has).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(2);
        out.put_u32(len_u32(self.0.len()));
        for a in &self.0 {
            a.encode(out);
        }
    }

    /// Decodes marker 2 (a vector whose elements may each be new or legacy encodings), or a
    /// single new-style (marker 1) or legacy (marker 0) address as a one-element vector.
    /// Other markers are an error. The count is checked against the remaining bytes (at
    /// least 19 per address) before anything is allocated.
    pub fn decode(d: &mut Decoder) -> Result<Self, DecodeError> {
        match d.u8("entity_addrvec_t marker")? {
            0 => Ok(Self(vec![EntityAddr::decode_legacy_after_marker(d)?])),
            1 => Ok(Self(vec![EntityAddr::decode_new_after_marker(d)?])),
            2 => {
                let n = d.count(MIN_ADDR_ENCODED_LEN, "entity_addrvec_t count")?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(EntityAddr::decode(d)?);
                }
                Ok(Self(v))
            }
            m => Err(DecodeError::InvalidValue {
                what: "entity_addrvec_t marker",
                value: m.into(),
            }),
        }
    }

    /// True if `a` is exactly (type, nonce, sockaddr) one of the addresses; a client uses it
    /// to check that SERVER_IDENT's addresses contain the address it dialled.
    pub fn contains(&self, a: &EntityAddr) -> bool {
        self.0.iter().any(|x| x == a)
    }

    /// The first `v2:` address, the one a msgr2 client dials.
    pub fn msgr2(&self) -> Option<&EntityAddr> {
        self.0.iter().find(|a| a.ty == AddrType::Msgr2)
    }

    /// The first `v1:` address, for msgr1 peers and legacy encodings.
    pub fn legacy(&self) -> Option<&EntityAddr> {
        self.0.iter().find(|a| a.ty == AddrType::Legacy)
    }

    /// Parses a whole string as an address vector: `[addr,addr,...]` or a single address
    /// (default type `Msgr2` in both). See [`EntityAddrVec::parse_prefix`].
    pub fn parse(s: &str) -> Result<Self, AddrParseError> {
        let (v, n) = Self::parse_prefix(s)?;
        match s.get(n..) {
            Some("") => Ok(v),
            rest => Err(AddrParseError::TrailingCharacters {
                rest: rest.unwrap_or_default().to_owned(),
            }),
        }
    }

    /// Parses a vector at the start of `s` as Ceph's `entity_addrvec_t::parse` does and
    /// returns it with the number of bytes consumed (for `mon_host` parsing).
    ///
    /// A leading `[` starts a bracketed list unless the text parses as a bracketed IPv6
    /// address (`[::1]:3300`), which is a single address. Inside brackets addresses are
    /// separated by single commas, without spaces, and the list must be non-empty and end
    /// with `]`. Unprefixed addresses get type `Msgr2`.
    pub fn parse_prefix(s: &str) -> Result<(Self, usize), AddrParseError> {
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(AddrParseError::Empty);
        }
        let bracketed = b[0] == b'['
            && !matches!(
                EntityAddr::parse_with_default(s, AddrType::Msgr2),
                Ok((a, _)) if a.is_ipv6()
            );
        if !bracketed {
            let (a, n) = EntityAddr::parse_with_default(s, AddrType::Msgr2)?;
            return Ok((Self(vec![a]), n));
        }
        let mut v = Vec::new();
        let mut i = 1;
        loop {
            match b.get(i) {
                None => return Err(AddrParseError::UnclosedVector { text: s.to_owned() }),
                Some(b']') if v.is_empty() => return Err(AddrParseError::EmptyVector),
                Some(_) => {}
            }
            let (a, n) = EntityAddr::parse_with_default(&s[i..], AddrType::Msgr2)?;
            v.push(a);
            i += n;
            if b.get(i) == Some(&b',') {
                i += 1;
            } else {
                break;
            }
        }
        if b.get(i) != Some(&b']') {
            return Err(AddrParseError::UnclosedVector { text: s.to_owned() });
        }
        Ok((Self(v), i + 1))
    }
}

/// Prints like Ceph's `operator<<(ostream&, const entity_addrvec_t&)`: nothing for an empty
/// vector, the bare address for one element, `[a,b,...]` (comma, no space) otherwise.
impl fmt::Display for EntityAddrVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => Ok(()),
            [a] => a.fmt(f),
            all => {
                f.write_str("[")?;
                for (i, a) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    a.fmt(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Parses with [`EntityAddrVec::parse`]: whole string consumed; an empty string is an error
/// (Ceph's parser also rejects it, although it prints an empty vector as nothing).
impl FromStr for EntityAddrVec {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why address text (an address, an address vector or a `mon_host` value) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddrParseError {
    /// The text (or the part where an address was expected) was empty.
    #[error("empty address")]
    Empty,
    /// No IPv4 or IPv6 address where one was expected.
    #[error("no IPv4 or IPv6 address at {text:?}")]
    BadIp {
        /// The text where the address should have been.
        text: String,
    },
    /// An address opened with `[` but no `]` followed the IP.
    #[error("missing ']' after the IP address in {text:?}")]
    UnclosedBracket {
        /// The address text.
        text: String,
    },
    /// The port does not fit in 16 bits.
    #[error("port {port} is above 65535")]
    BadPort {
        /// The port digits.
        port: String,
    },
    /// The nonce does not fit in 32 bits.
    #[error("nonce {nonce} is above 4294967295")]
    BadNonce {
        /// The nonce digits.
        nonce: String,
    },
    /// Text followed a complete address or vector.
    #[error("unexpected {rest:?} after the address")]
    TrailingCharacters {
        /// The unparsed rest.
        rest: String,
    },
    /// A bracketed address vector had no closing `]` after its last address.
    #[error("address vector {text:?} is not closed by ']'")]
    UnclosedVector {
        /// The vector text.
        text: String,
    },
    /// `[]`: an address vector must hold at least one address.
    #[error("empty address vector")]
    EmptyVector,
    /// A `mon_host` entry is a DNS name. Ceph would resolve it (`init_with_hosts`); this
    /// crate does no I/O, so callers must resolve names themselves and pass IP addresses.
    #[error("{host:?} is a host name; host names are not resolved here, give IP addresses")]
    HostName {
        /// The host name as written.
        host: String,
    },
    /// `mon_host` yielded no monitor address (empty, only separators, or only `-`).
    #[error("mon_host lists no usable monitor address")]
    NoMonitors,
    /// An explicit address vector in `mon_host` repeats an address of an earlier monitor
    /// (Ceph's `MonMap::add` asserts on this).
    #[error("address {addr} is listed for more than one monitor")]
    DuplicateAddr {
        /// The repeated address, printed Ceph-style.
        addr: String,
    },
}

#[cfg(test)]
#[path = "addr_tests.rs"]
mod tests;
