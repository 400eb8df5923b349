//! The AES-128-GCM implementations behind [`SecureTx`](super::SecureTx) and
//! [`SecureRx`](super::SecureRx).
//!
//! Both are used only through whole-buffer, in-place operations with a detached tag and no
//! AAD, which is all msgr2 needs: every GCM operation covers one contiguous unit. The key
//! schedule is built once per direction, when the sender or receiver is created.

use super::{SecureError, KEY_LEN, NONCE_LEN, TAG_LEN};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};

/// Which AES-GCM implementation to use. Both produce identical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// aws-lc-rs (AWS-LC, hardware AES/CLMUL): the default and the fast one.
    #[default]
    AwsLc,
    /// RustCrypto `aes-gcm` 0.10 (pure Rust, uses AES-NI/CLMUL when available): an
    /// independent implementation to cross-check against.
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
}

impl Backend {
    /// Every backend compiled in.
    pub const ALL: &'static [Backend] = &[
        Backend::AwsLc,
        #[cfg(feature = "rustcrypto")]
        Backend::RustCrypto,
    ];

    /// A short name for logs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AwsLc => "aws-lc-rs",
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => "rustcrypto",
        }
    }
}

/// A keyed AES-128-GCM instance (plus, for rev0 receivers, a raw AES block cipher to peek at
/// the preamble).
pub(crate) enum Cipher {
    AwsLc {
        aead: Box<LessSafeKey>,
        ecb: Option<Box<EncryptingKey>>,
    },
    #[cfg(feature = "rustcrypto")]
    RustCrypto {
        aead: Box<aes_gcm::Aes128Gcm>,
        ecb: Option<Box<aes_gcm::aes::Aes128>>,
    },
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Cipher::AwsLc { .. } => "aws-lc-rs",
            #[cfg(feature = "rustcrypto")]
            Cipher::RustCrypto { .. } => "rustcrypto",
        };
        f.debug_tuple("Cipher").field(&name).finish()
    }
}

impl Cipher {
    /// Builds the key schedule; `with_block` also prepares the raw block cipher used by
    /// [`Cipher::preamble_keystream`].
    pub(crate) fn new(
        backend: Backend,
        key: &[u8; KEY_LEN],
        with_block: bool,
    ) -> Result<Self, SecureError> {
        match backend {
            Backend::AwsLc => {
                let unbound =
                    UnboundKey::new(&AES_128_GCM, key).map_err(|_| SecureError::Backend)?;
                let ecb = if with_block {
                    let k =
                        UnboundCipherKey::new(&AES_128, key).map_err(|_| SecureError::Backend)?;
                    Some(Box::new(
                        EncryptingKey::ecb(k).map_err(|_| SecureError::Backend)?,
                    ))
                } else {
                    None
                };
                Ok(Cipher::AwsLc {
                    aead: Box::new(LessSafeKey::new(unbound)),
                    ecb,
                })
            }
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                use aes_gcm::aes::cipher::KeyInit as _;
                let aead = aes_gcm::Aes128Gcm::new(key.into());
                let ecb = with_block.then(|| Box::new(aes_gcm::aes::Aes128::new(key.into())));
                Ok(Cipher::RustCrypto {
                    aead: Box::new(aead),
                    ecb,
                })
            }
        }
    }

    /// Encrypts `in_out` in place with `nonce` (no AAD) and returns the tag.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SecureError> {
        match self {
            Cipher::AwsLc { aead, .. } => {
                let tag = aead
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(*nonce),
                        Aad::empty(),
                        in_out,
                    )
                    .map_err(|_| SecureError::Backend)?;
                let mut t = [0u8; TAG_LEN];
                t.copy_from_slice(tag.as_ref());
                Ok(t)
            }
            #[cfg(feature = "rustcrypto")]
            Cipher::RustCrypto { aead, .. } => {
                use aes_gcm::AeadInPlace as _;
                let tag = aead
                    .encrypt_in_place_detached(nonce.into(), b"", in_out)
                    .map_err(|_| SecureError::Backend)?;
                Ok(tag.into())
            }
        }
    }

    /// Authenticates and decrypts `ct_and_tag` (ciphertext followed by the 16-byte tag) in
    /// place; on success the plaintext is in `ct_and_tag[..len - 16]`. On failure nothing in
    /// the buffer may be used.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ct_and_tag: &mut [u8],
    ) -> Result<(), SecureError> {
        if ct_and_tag.len() < TAG_LEN {
            return Err(SecureError::AuthFailed);
        }
        match self {
            Cipher::AwsLc { aead, .. } => aead
                .open_in_place(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::empty(),
                    ct_and_tag,
                )
                .map(|_| ())
                .map_err(|_| SecureError::AuthFailed),
            #[cfg(feature = "rustcrypto")]
            Cipher::RustCrypto { aead, .. } => {
                use aes_gcm::AeadInPlace as _;
                let at = ct_and_tag.len() - TAG_LEN;
                let (ct, tag) = ct_and_tag.split_at_mut(at);
                aead.decrypt_in_place_detached(nonce.into(), b"", ct, (&*tag).into())
                    .map_err(|_| SecureError::AuthFailed)
            }
        }
    }

    /// The GCM keystream for the first 32 plaintext bytes under `nonce`: AES of the counter
    /// blocks `nonce ‖ 00000002` and `nonce ‖ 00000003` (GCM's J0 is `nonce ‖ 00000001` and
    /// is used for the tag). XOR-ing it into the first 32 ciphertext bytes yields the rev0
    /// preamble before the frame can be authenticated.
    pub(crate) fn preamble_keystream(
        &self,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<[u8; 32], SecureError> {
        let mut blocks = [0u8; 32];
        blocks[..NONCE_LEN].copy_from_slice(nonce);
        blocks[12..16].copy_from_slice(&2u32.to_be_bytes());
        blocks[16..16 + NONCE_LEN].copy_from_slice(nonce);
        blocks[28..32].copy_from_slice(&3u32.to_be_bytes());
        match self {
            Cipher::AwsLc { ecb, .. } => {
                let ecb = ecb.as_ref().ok_or(SecureError::Backend)?;
                ecb.less_safe_encrypt(&mut blocks, EncryptionContext::None)
                    .map_err(|_| SecureError::Backend)?;
            }
            #[cfg(feature = "rustcrypto")]
            Cipher::RustCrypto { ecb, .. } => {
                use aes_gcm::aes::cipher::BlockEncrypt as _;
                let ecb = ecb.as_ref().ok_or(SecureError::Backend)?;
                for chunk in blocks.chunks_exact_mut(16) {
                    ecb.encrypt_block(chunk.into());
                }
            }
        }
        Ok(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty plaintext seals to the tag alone, which opens; anything shorter than a tag
    /// is refused without reaching the backend.
    #[test]
    fn empty_plaintext_and_short_input() {
        for &b in Backend::ALL {
            let c = Cipher::new(b, &[3u8; 16], true).unwrap();
            let mut empty = Vec::new();
            let tag = c.seal(&[1u8; 12], &mut empty).unwrap();
            let mut ct: Vec<u8> = tag.as_ref().to_vec();
            assert_eq!(ct.len(), TAG_LEN);
            c.open(&[1u8; 12], &mut ct).unwrap();
            let mut short = ct[..TAG_LEN - 1].to_vec();
            assert_eq!(c.open(&[1u8; 12], &mut short), Err(SecureError::AuthFailed));
        }
    }

    /// Backend names are the ids benchmark results are filed under.
    #[test]
    fn names() {
        assert_eq!(Backend::AwsLc.name(), "aws-lc-rs");
        #[cfg(feature = "rustcrypto")]
        assert_eq!(Backend::RustCrypto.name(), "rustcrypto");
    }

    /// NIST GCM test case 4-style check: seal then open, tamper fails, on every backend, and
    /// the preamble keystream equals the first 32 bytes of a GCM encryption of zeros.
    #[test]
    fn seal_open_and_keystream() {
        let key = [7u8; 16];
        let nonce = [9u8; 12];
        for &b in Backend::ALL {
            let c = Cipher::new(b, &key, true).unwrap();
            let mut buf = vec![0u8; 64];
            let tag = c.seal(&nonce, &mut buf).unwrap();
            let ks = c.preamble_keystream(&nonce).unwrap();
            assert_eq!(&buf[..32], &ks[..], "{b:?}");
            let mut ct = buf.clone();
            ct.extend_from_slice(&tag);
            let mut ok = ct.clone();
            c.open(&nonce, &mut ok).unwrap();
            assert_eq!(&ok[..64], &[0u8; 64][..]);
            ct[3] ^= 1;
            assert_eq!(c.open(&nonce, &mut ct), Err(SecureError::AuthFailed));
        }
    }

    /// NIST SP 800-38D test case 3 (AES-128, 64-byte plaintext, no AAD).
    #[test]
    fn nist_vector() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let key: [u8; 16] = hex("feffe9928665731c6d6a8f9467308308").try_into().unwrap();
        let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255");
        let ct = hex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985");
        let tag = hex("4d5c2af327cd64a62cf35abd2ba6fab4");
        for &b in Backend::ALL {
            let c = Cipher::new(b, &key, false).unwrap();
            let mut buf = pt.clone();
            let t = c.seal(&nonce, &mut buf).unwrap();
            assert_eq!(buf, ct, "{b:?}");
            assert_eq!(&t[..], &tag[..], "{b:?}");
        }
    }
}
