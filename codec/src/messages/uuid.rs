//! `uuid_d` (`src/include/uuid.h`): a cluster fsid and the like.

use crate::encoding::{DecodeError, Decoder};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A 16-byte UUID as Ceph encodes it: the raw bytes in text order (`encode_raw`), no length
/// and no version byte. Printed in the usual lowercase `8-4-4-4-12` form, like `ceph fsid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, which Ceph prints as `00000000-0000-0000-0000-000000000000` and uses
    /// for "no fsid" (e.g. before a client has learnt the cluster's).
    pub const NIL: Self = Self([0; 16]);

    /// Appends the 16 raw bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    /// Reads 16 raw bytes.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self(d.array("uuid")?))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a UUID string was rejected by [`Uuid::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid uuid {text:?}: want 32 hex digits as 8-4-4-4-12")]
pub struct UuidParseError {
    /// The rejected text.
    pub text: String,
}

/// Parses the canonical `8-4-4-4-12` hex form (either case), as `ceph -s` and `ceph fsid`
/// print it; anything else is an error.
impl FromStr for Uuid {
    type Err = UuidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UuidParseError { text: s.to_owned() };
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(err());
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < b.len() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b[i] != b'-' {
                    return Err(err());
                }
                i += 1;
                continue;
            }
            let hi = hex(b[i]).ok_or_else(err)?;
            let lo = b.get(i + 1).copied().and_then(hex).ok_or_else(err)?;
            let slot = out.get_mut(n).ok_or_else(err)?;
            *slot = hi << 4 | lo;
            n += 1;
            i += 2;
        }
        if n != 16 {
            return Err(err());
        }
        Ok(Self(out))
    }
}

/// Value of one hex digit.
fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let s = "3fd7664a-4f10-46ad-85bd-b499f6274c5b";
        let u: Uuid = s.parse().unwrap();
        assert_eq!(u.0[0], 0x3f);
        assert_eq!(u.0[15], 0x5b);
        assert_eq!(u.to_string(), s);
        assert_eq!(
            "3FD7664A-4F10-46AD-85BD-B499F6274C5B".parse::<Uuid>(),
            Ok(u)
        );
        assert_eq!(
            Uuid::NIL.to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn bad_text_is_rejected() {
        for s in [
            "",
            "3fd7664a4f1046ad85bdb499f6274c5b",
            "3fd7664a-4f10-46ad-85bd-b499f6274c5",
            "3fd7664a-4f10-46ad-85bd-b499f6274c5bb",
            "3fd7664a-4f10-46ad-85bd_b499f6274c5b",
            "3fd7664a-4f10-46ad-85bd-b499f6274c5g",
            "3fd7664-a4f10-46ad-85bd-b499f6274c5b",
        ] {
            assert!(s.parse::<Uuid>().is_err(), "{s:?}");
        }
    }
}
