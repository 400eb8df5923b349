//! `CryptoKey`: a Ceph secret of type `aes` (1) or `aes256k` (2).
//!
//! A key is a type, a creation time and a secret. Its binary encoding (`u16 type, utime
//! created, u16 len, secret`) is what keyring files carry in base64 and what cephx embeds in
//! tickets:
//!
//! | type | name | secret | encoding | base64 |
//! |---|---|---|---|---|
//! | 1 `CEPH_CRYPTO_AES` | `aes` | 16 bytes (AES-128-CBC, fixed IV) | 28 bytes | 40 characters, `AQ…` |
//! | 2 `CEPH_CRYPTO_AES256KRB5` | `aes256k` | 32 bytes (RFC 8009, see [`crate::aes256k`]) | 44 bytes | 60 characters, `Ag…` |
//!
//! Ceph 20 creates every key as `aes256k`; Ceph up to 19.2.5 knows only `aes`. Ceph accepts a
//! secret longer than its type needs (and never creates one); we accept exactly 16 or 32
//! bytes. Type 0 (`none`) is not usable for cephx.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::payload::UTime;
use thiserror::Error;

/// `CEPH_CRYPTO_AES`: AES-128-CBC keys (`aes`).
pub const CRYPTO_AES: u16 = 1;
/// `CEPH_CRYPTO_AES256KRB5`: RFC 8009 aes256-cts-hmac-sha384-192 keys (`aes256k`).
pub const CRYPTO_AES256KRB5: u16 = 2;
/// Length of an AES-128 secret.
pub const AES_KEY_LEN: usize = 16;
/// Length of an aes256k secret.
pub const AES256K_KEY_LEN: usize = crate::aes256k::KEY_LEN;
/// Length of the binary encoding of an `aes` [`CryptoKey`].
pub const CRYPTO_KEY_ENCODED_LEN: usize = 2 + 8 + 2 + AES_KEY_LEN;
/// Length of the binary encoding of an `aes256k` [`CryptoKey`].
pub const AES256K_KEY_ENCODED_LEN: usize = 2 + 8 + 2 + AES256K_KEY_LEN;

/// Standard base64 that, like Ceph's `ceph_unarmor`, does not insist on `=` padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The kind of a [`CryptoKey`], ordered from weaker to stronger (a mon issues a service
/// session key of the weaker of the client's and the service's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyType {
    /// `aes` (type 1): AES-128-CBC with Ceph's fixed IV and PKCS#7 padding.
    Aes,
    /// `aes256k` (type 2): AES-256-CTS-HMAC-SHA384-192 with per-usage derived keys.
    Aes256k,
}

impl KeyType {
    /// The `CEPH_CRYPTO_*` number.
    pub const fn as_u16(self) -> u16 {
        match self {
            KeyType::Aes => CRYPTO_AES,
            KeyType::Aes256k => CRYPTO_AES256KRB5,
        }
    }

    /// The type of a `CEPH_CRYPTO_*` number, if supported.
    pub const fn from_u16(ty: u16) -> Option<Self> {
        match ty {
            CRYPTO_AES => Some(KeyType::Aes),
            CRYPTO_AES256KRB5 => Some(KeyType::Aes256k),
            _ => None,
        }
    }

    /// Secret length of this type.
    pub const fn secret_len(self) -> usize {
        match self {
            KeyType::Aes => AES_KEY_LEN,
            KeyType::Aes256k => AES256K_KEY_LEN,
        }
    }

    /// Ceph's name (`aes`, `aes256k`), as in `auth_allowed_ciphers` and `--key-type`.
    pub const fn name(self) -> &'static str {
        match self {
            KeyType::Aes => "aes",
            KeyType::Aes256k => "aes256k",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyType {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "aes" => Ok(KeyType::Aes),
            "aes256k" | "recommended" => Ok(KeyType::Aes256k),
            _ => Err(KeyError::UnknownTypeName(s.to_owned())),
        }
    }
}

/// Why a key could not be decoded or generated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text is not valid base64.
    #[error("key is not valid base64")]
    Base64,
    /// The encoding ended early.
    #[error("key encoding truncated at {0} bytes")]
    Truncated(usize),
    /// Bytes follow the secret.
    #[error("{0} trailing bytes after the key encoding")]
    TrailingBytes(usize),
    /// The key type is neither `aes` (1) nor `aes256k` (2).
    #[error("unsupported key type {0} (supported: aes = 1, aes256k = 2)")]
    UnsupportedType(u16),
    /// The secret length does not match the key type.
    #[error("{ty} secret must be {} bytes, not {len}", ty.secret_len())]
    BadLength {
        /// The key's type.
        ty: KeyType,
        /// The length found.
        len: u16,
    },
    /// A key type name other than `aes` or `aes256k`.
    #[error("unknown key type {0:?} (expected aes or aes256k)")]
    UnknownTypeName(String),
    /// The system random generator failed.
    #[error("random number generator failed")]
    Random,
}

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Aes([u8; AES_KEY_LEN]),
    Aes256k([u8; AES256K_KEY_LEN]),
}

/// A Ceph `CryptoKey`: type, creation time and secret.
///
/// `Debug` shows only the type and creation time; use [`CryptoKey::secret`] or
/// [`CryptoKey::to_base64`] explicitly when the secret itself is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoKey {
    /// When the key was created (informational; part of the encoding).
    pub created: UTime,
    secret: Secret,
}

impl fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoKey")
            .field("type", &self.key_type().name())
            .field("created", &self.created)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl CryptoKey {
    /// An `aes` key from its parts.
    pub fn new(created: UTime, secret: [u8; AES_KEY_LEN]) -> Self {
        Self {
            created,
            secret: Secret::Aes(secret),
        }
    }

    /// An `aes256k` key from its parts.
    pub fn new_aes256k(created: UTime, secret: [u8; AES256K_KEY_LEN]) -> Self {
        Self {
            created,
            secret: Secret::Aes256k(secret),
        }
    }

    /// A key of type `ty` from a secret of the right length.
    pub fn from_secret(ty: KeyType, created: UTime, secret: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::BadLength {
            ty,
            len: u16::try_from(secret.len()).unwrap_or(u16::MAX),
        };
        Ok(match ty {
            KeyType::Aes => Self::new(created, secret.try_into().map_err(|_| bad())?),
            KeyType::Aes256k => Self::new_aes256k(created, secret.try_into().map_err(|_| bad())?),
        })
    }

    /// A fresh random `aes` key created now.
    pub fn generate() -> Result<Self, KeyError> {
        Self::generate_of(KeyType::Aes)
    }

    /// A fresh random key of type `ty` created now (what `ceph-authtool --gen-key` and the
    /// mon's `generate_secret` produce).
    pub fn generate_of(ty: KeyType) -> Result<Self, KeyError> {
        let mut secret = vec![0u8; ty.secret_len()];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| KeyError::Random)?;
        Self::from_secret(ty, utime_now(), &secret)
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self.secret {
            Secret::Aes(_) => KeyType::Aes,
            Secret::Aes256k(_) => KeyType::Aes256k,
        }
    }

    /// The raw secret: 16 bytes (`aes`) or 32 bytes (`aes256k`). For a session key, this is
    /// the HMAC key of AUTH_SIGNATURE.
    pub fn secret(&self) -> &[u8] {
        match &self.secret {
            Secret::Aes(s) => s,
            Secret::Aes256k(s) => s,
        }
    }

    /// Appends Ceph's encoding: `u16 type, utime created, u16 len, secret`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let s = self.secret();
        out.put_u16(self.key_type().as_u16());
        out.put_u32(self.created.sec);
        out.put_u32(self.created.nsec);
        out.put_u16(s.len() as u16);
        out.extend_from_slice(s);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(AES256K_KEY_ENCODED_LEN);
        self.encode(&mut v);
        v
    }

    /// Decodes a key embedded in a cephx structure; an unsupported type or a secret of the
    /// wrong length for its type is [`DecodeError::InvalidValue`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let ty = d.u16("CryptoKey type")?;
        let kt = KeyType::from_u16(ty).ok_or(DecodeError::InvalidValue {
            what: "CryptoKey type",
            value: u64::from(ty),
        })?;
        let created = UTime {
            sec: d.u32("CryptoKey created")?,
            nsec: d.u32("CryptoKey created")?,
        };
        let len = d.u16("CryptoKey len")?;
        if usize::from(len) != kt.secret_len() {
            return Err(DecodeError::InvalidValue {
                what: "CryptoKey len",
                value: u64::from(len),
            });
        }
        let secret = d.bytes(usize::from(len), "CryptoKey secret")?;
        Self::from_secret(kt, created, secret).map_err(|_| DecodeError::InvalidValue {
            what: "CryptoKey len",
            value: u64::from(len),
        })
    }

    /// Decodes exactly one key encoding (no trailing bytes), with a keyring-oriented error.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        if b.len() < 12 {
            return Err(KeyError::Truncated(b.len()));
        }
        let ty = u16::from_le_bytes([b[0], b[1]]);
        let kt = KeyType::from_u16(ty).ok_or(KeyError::UnsupportedType(ty))?;
        let len = u16::from_le_bytes([b[10], b[11]]);
        if usize::from(len) != kt.secret_len() {
            return Err(KeyError::BadLength { ty: kt, len });
        }
        let need = 12 + kt.secret_len();
        if b.len() < need {
            return Err(KeyError::Truncated(b.len()));
        }
        if b.len() > need {
            return Err(KeyError::TrailingBytes(b.len() - need));
        }
        let created = UTime {
            sec: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            nsec: u32::from_le_bytes([b[6], b[7], b[8], b[9]]),
        };
        Self::from_secret(kt, created, &b[12..])
    }

    /// Parses the base64 form used in keyring files and `--key` options (surrounding
    /// whitespace is ignored).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = B64.decode(s.trim()).map_err(|_| KeyError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// The base64 form (`AQ…` or `Ag…`), as written in keyring files.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }
}

/// The current wall-clock time as a `utime_t` (saturating at the `u32` range).
pub(crate) fn utime_now() -> UTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UTime {
        sec: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
        nsec: d.subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ADMIN: &str = "AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==";
    /// The RFC 8009 test key as an aes256k keyring key (created = 0).
    const RFC_AES256K: &str = "AgAAAAAAAAAAACAAbUBNN/r3n53w0zVo0yBmmADrSDZHLqigJtFrcYJGDFI=";

    /// `auth_allowed_ciphers` / `--key-type` names, both ways.
    #[test]
    fn key_type_names() {
        for (t, name, len) in [(KeyType::Aes, "aes", 16), (KeyType::Aes256k, "aes256k", 32)] {
            assert_eq!(
                (t.name(), t.to_string(), t.secret_len()),
                (name, name.to_owned(), len)
            );
            assert_eq!(name.parse::<KeyType>().unwrap(), t);
        }
        assert!("des".parse::<KeyType>().is_err());
    }

    /// `from_bytes` errors: a bare header claiming the wrong length is `BadLength`, extra
    /// bytes are counted; `utime_now` is the wall clock.
    #[test]
    fn from_bytes_errors_and_the_clock() {
        let mut header = vec![1u8, 0];
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            CryptoKey::from_bytes(&header).unwrap_err(),
            KeyError::BadLength {
                ty: KeyType::Aes,
                len: 0
            }
        );
        let mut b = CryptoKey::from_base64(ADMIN).unwrap().to_bytes();
        b.extend_from_slice(&[0; 3]);
        assert_eq!(
            CryptoKey::from_bytes(&b).unwrap_err(),
            KeyError::TrailingBytes(3)
        );
        assert!(utime_now().sec > 1_700_000_000);
    }

    #[test]
    fn key_base64_round_trip() {
        let k = CryptoKey::from_base64(ADMIN).unwrap();
        assert_eq!(k.key_type(), KeyType::Aes);
        assert_eq!(k.to_base64(), ADMIN);
        assert_eq!(k.to_bytes().len(), CRYPTO_KEY_ENCODED_LEN);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.to_lowercase().contains("ac22f4"));

        let k = CryptoKey::from_base64(RFC_AES256K).unwrap();
        assert_eq!(k.key_type(), KeyType::Aes256k);
        assert_eq!(k.secret().len(), 32);
        assert_eq!(k.secret()[..4], [0x6d, 0x40, 0x4d, 0x37]);
        assert_eq!(k.to_base64(), RFC_AES256K);
        assert_eq!(k.to_bytes().len(), AES256K_KEY_ENCODED_LEN);
        let enc = k.to_bytes();
        assert_eq!(CryptoKey::decode(&mut Decoder::new(&enc)).unwrap(), k);
        let g = CryptoKey::generate_of(KeyType::Aes256k).unwrap();
        assert!(g.to_base64().starts_with("Ag"));
        assert_eq!(g.to_base64().len(), 60);
    }

    #[test]
    fn key_errors() {
        assert_eq!(CryptoKey::from_base64("not base64!"), Err(KeyError::Base64));
        assert_eq!(CryptoKey::from_base64("AQBo"), Err(KeyError::Truncated(3)));
        let mut b = CryptoKey::from_base64(ADMIN).unwrap().to_bytes();
        b[0] = 3;
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::UnsupportedType(3)));
        b[0] = 0;
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::UnsupportedType(0)));
        b[0] = 2;
        // Type 2 with a 16-byte secret.
        assert_eq!(
            CryptoKey::from_bytes(&b),
            Err(KeyError::BadLength {
                ty: KeyType::Aes256k,
                len: 16
            })
        );
        b[0] = 1;
        b[10] = 32;
        assert_eq!(
            CryptoKey::from_bytes(&b),
            Err(KeyError::BadLength {
                ty: KeyType::Aes,
                len: 32
            })
        );
        b[10] = 16;
        b.push(0);
        assert_eq!(CryptoKey::from_bytes(&b), Err(KeyError::TrailingBytes(1)));
        // A 31-byte aes256k secret.
        let mut b = CryptoKey::from_base64(RFC_AES256K).unwrap().to_bytes();
        b[10] = 31;
        b.pop();
        assert!(matches!(
            CryptoKey::from_bytes(&b),
            Err(KeyError::BadLength { len: 31, .. })
        ));
        let mut d = Decoder::new(&b);
        assert!(CryptoKey::decode(&mut d).is_err());
        assert_eq!("AES256K".parse::<KeyType>(), Ok(KeyType::Aes256k));
        assert!("des".parse::<KeyType>().is_err());
        assert!(KeyType::Aes < KeyType::Aes256k);
    }
}
