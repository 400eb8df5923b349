//! The cluster's cephx policy that a version 10 [`super::MonMap`] carries (Ceph 19.2.6 and
//! later): which cipher service tickets use, which key types may authenticate, which one new
//! keys get, and the epoch of that policy. `ceph mon dump` prints it after the monitors.

use crate::encoding::{DecodeError, Decoder, Encode};
use std::fmt;

/// `CEPH_CRYPTO_NONE`.
pub const CIPHER_NONE: u32 = 0;
/// `CEPH_CRYPTO_AES`: cephx key type 1, AES-128-CBC (`aes`, deprecated since Tentacle).
pub const CIPHER_AES: u32 = 1;
/// `CEPH_CRYPTO_AES256KRB5`: cephx key type 2 (`aes256k`), Tentacle's default.
pub const CIPHER_AES256KRB5: u32 = 2;

/// Ceph's name of a cephx cipher (`CryptoManager::get_key_type_name`): `none`, `aes`,
/// `aes256k`, and `unknown` for values it does not know.
pub fn cipher_name(cipher: u32) -> &'static str {
    match cipher {
        CIPHER_NONE => "none",
        CIPHER_AES => "aes",
        CIPHER_AES256KRB5 => "aes256k",
        _ => "unknown",
    }
}

/// The cephx policy fields of a version 10 monitor map, in their wire order: `epoch_t
/// auth_epoch`, `u32 auth_service_cipher`, `vector<u32> auth_allowed_ciphers` (sorted, as
/// the monitor keeps it), `u32 auth_preferred_cipher`. Checked byte for byte against maps
/// written by Ceph 20.2.4's monitor and `monmaptool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonAuthPolicy {
    /// Epoch of the cephx policy.
    pub auth_epoch: u32,
    /// Cipher of the rotating service secrets, i.e. of the tickets daemons verify.
    pub service_cipher: u32,
    /// Key types allowed to authenticate.
    pub allowed_ciphers: Vec<u32>,
    /// Key type new keys get.
    pub preferred_cipher: u32,
}

impl Default for MonAuthPolicy {
    /// Tentacle's defaults for a new cluster: aes256k everywhere.
    fn default() -> Self {
        Self {
            auth_epoch: 0,
            service_cipher: CIPHER_AES256KRB5,
            allowed_ciphers: vec![CIPHER_AES256KRB5],
            preferred_cipher: CIPHER_AES256KRB5,
        }
    }
}

impl MonAuthPolicy {
    /// Appends the four fields.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.auth_epoch);
        out.put_u32(self.service_cipher);
        out.put_u32(crate::encoding::len_u32(self.allowed_ciphers.len()));
        for c in &self.allowed_ciphers {
            out.put_u32(*c);
        }
        out.put_u32(self.preferred_cipher);
    }

    /// Decodes the four fields; the cipher count is checked against the bytes present.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let auth_epoch = d.u32("MonMap auth_epoch")?;
        let service_cipher = d.u32("MonMap auth_service_cipher")?;
        let n = d.count(4, "MonMap auth_allowed_ciphers")?;
        let allowed_ciphers = (0..n)
            .map(|_| d.u32("MonMap auth_allowed_ciphers"))
            .collect::<Result<_, _>>()?;
        let preferred_cipher = d.u32("MonMap auth_preferred_cipher")?;
        Ok(Self {
            auth_epoch,
            service_cipher,
            allowed_ciphers,
            preferred_cipher,
        })
    }

    /// Whether keys of type `cipher` may authenticate.
    pub fn allows(&self, cipher: u32) -> bool {
        self.allowed_ciphers.contains(&cipher)
    }
}

/// Prints the four lines `ceph mon dump` prints for the policy (each ending in a newline):
///
/// ```text
/// auth_epoch 0
/// auth_service_cipher aes256k
/// auth_allowed_ciphers aes, aes256k
/// auth_preferred_cipher aes256k
/// ```
impl fmt::Display for MonAuthPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "auth_epoch {}", self.auth_epoch)?;
        writeln!(
            f,
            "auth_service_cipher {}",
            cipher_name(self.service_cipher)
        )?;
        let allowed: Vec<&str> = self
            .allowed_ciphers
            .iter()
            .map(|c| cipher_name(*c))
            .collect();
        writeln!(f, "auth_allowed_ciphers {}", allowed.join(", "))?;
        writeln!(
            f,
            "auth_preferred_cipher {}",
            cipher_name(self.preferred_cipher)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_names_and_allowed_types() {
        assert_eq!(
            [0, 1, 2, 3].map(cipher_name),
            ["none", "aes", "aes256k", "unknown"]
        );
        let p = MonAuthPolicy {
            allowed_ciphers: vec![CIPHER_AES256KRB5],
            ..MonAuthPolicy::default()
        };
        assert!(p.allows(CIPHER_AES256KRB5));
        assert!(!p.allows(CIPHER_AES));
    }
}
