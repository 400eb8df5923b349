//! cephx cryptographic primitives: AES-128-CBC with Ceph's fixed IV, the sealed-structure
//! envelope (`encode_encrypt` / `decode_decrypt`) and the client/server challenge proof.
//!
//! Every cephx secret is a 16-byte AES key ([`CryptoKey`]). Ceph encrypts with AES-128-CBC,
//! IV `"cephsageyudagreg"`, PKCS#7 padding. A *sealed* structure is the ciphertext of
//! `u8 1, u64 AUTH_ENC_MAGIC, <encoding>`; the magic is what detects a wrong key. Ceph carries
//! it either raw ([`seal`], `encode_encrypt_enc_bl`) or as a length-prefixed blob
//! ([`seal_blob`], `encode_encrypt`).

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_128,
};
use aws_lc_rs::iv::FixedLength;
use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use thiserror::Error;

use crate::auth::AuthError;
use crate::keyring::CryptoKey;

/// `CEPH_AES_IV`: the fixed CBC initialisation vector of every cephx encryption.
pub const CEPH_AES_IV: &[u8; 16] = b"cephsageyudagreg";
/// `AUTH_ENC_MAGIC`: follows the version byte inside every sealed structure.
pub const AUTH_ENC_MAGIC: u64 = 0xff00_9cad_8826_aa55;
/// Version byte of the sealed envelope.
pub const SEAL_VERSION: u8 = 1;
/// AES block length.
const BLOCK: usize = 16;

/// Why sealing or unsealing failed. A wrong key shows up as [`SealError::BadPadding`] or
/// [`SealError::BadMagic`], never as a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// The AES implementation reported a failure.
    #[error("AES-CBC operation failed")]
    Cipher,
    /// The ciphertext is empty or not a whole number of AES blocks.
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    BadLength(usize),
    /// PKCS#7 padding did not verify (wrong key or tampering).
    #[error("bad padding in sealed data (wrong key?)")]
    BadPadding,
    /// The envelope's version byte is not 1.
    #[error("sealed data version {0}, expected 1 (wrong key?)")]
    BadVersion(u8),
    /// The envelope's magic is wrong (wrong key or tampering).
    #[error("bad AUTH_ENC_MAGIC in sealed data (wrong key?)")]
    BadMagic,
    /// The sealed bytes, or the structure inside, could not be decoded.
    #[error("sealed data: {0}")]
    Decode(#[from] DecodeError),
}

impl From<SealError> for AuthError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Cipher => AuthError::Crypto("AES-CBC operation failed"),
            SealError::Decode(d) => AuthError::Decode(d),
            other => AuthError::BadProof(other.to_string()),
        }
    }
}

fn iv() -> FixedLength<16> {
    FixedLength::from(*CEPH_AES_IV)
}

/// AES-128-CBC encryption with Ceph's IV and PKCS#7 padding (always 1–16 pad bytes).
pub fn aes_encrypt(key: &CryptoKey, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let k = UnboundCipherKey::new(&AES_128, key.secret()).map_err(|_| SealError::Cipher)?;
    let k = PaddedBlockEncryptingKey::cbc_pkcs7(k).map_err(|_| SealError::Cipher)?;
    let mut buf = Vec::with_capacity(plaintext.len() + BLOCK);
    buf.extend_from_slice(plaintext);
    k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv()))
        .map_err(|_| SealError::Cipher)?;
    Ok(buf)
}

/// AES-128-CBC decryption with Ceph's IV, checking PKCS#7 padding.
pub fn aes_decrypt(key: &CryptoKey, ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
    if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
        return Err(SealError::BadLength(ciphertext.len()));
    }
    let k = UnboundCipherKey::new(&AES_128, key.secret()).map_err(|_| SealError::Cipher)?;
    let k = PaddedBlockDecryptingKey::cbc_pkcs7(k).map_err(|_| SealError::Cipher)?;
    let mut buf = ciphertext.to_vec();
    let n = k
        .decrypt(&mut buf, DecryptionContext::Iv128(iv()))
        .map_err(|_| SealError::BadPadding)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// `encode_encrypt_enc_bl`: the raw ciphertext of `u8 1, u64 AUTH_ENC_MAGIC, payload`, where
/// `payload` is the encoding of the structure being sealed.
pub fn seal(key: &CryptoKey, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut plain = Vec::with_capacity(9 + payload.len());
    plain.put_u8(SEAL_VERSION);
    plain.put_u64(AUTH_ENC_MAGIC);
    plain.extend_from_slice(payload);
    aes_encrypt(key, &plain)
}

/// `encode_encrypt`: [`seal`] as a blob (`u32` length + ciphertext).
pub fn seal_blob(key: &CryptoKey, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    let ct = seal(key, payload)?;
    let mut out = Vec::with_capacity(4 + ct.len());
    out.put_blob(&ct);
    Ok(out)
}

/// Appends [`seal_blob`]`(key, payload)` to `out`.
pub fn put_sealed(out: &mut Vec<u8>, key: &CryptoKey, payload: &[u8]) -> Result<(), SealError> {
    let ct = seal(key, payload)?;
    out.put_blob(&ct);
    Ok(())
}

/// Inverse of [`seal`]: decrypts, checks the version byte and the magic, and returns the
/// payload (the encoding of the sealed structure).
pub fn unseal(key: &CryptoKey, ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
    let plain = aes_decrypt(key, ciphertext)?;
    let mut d = Decoder::new(&plain);
    let v = d.u8("sealed version")?;
    let magic = d.u64("sealed magic")?;
    // Check the magic first: with a wrong key the version byte is random too, and the magic
    // is the meaningful diagnosis.
    if magic != AUTH_ENC_MAGIC {
        return Err(SealError::BadMagic);
    }
    if v != SEAL_VERSION {
        return Err(SealError::BadVersion(v));
    }
    Ok(d.rest().to_vec())
}

/// Inverse of [`seal_blob`], reading the blob from `d`.
pub fn unseal_blob(key: &CryptoKey, d: &mut Decoder<'_>) -> Result<Vec<u8>, SealError> {
    let ct = d.blob("sealed blob")?;
    unseal(key, ct)
}

/// `cephx_calc_client_server_challenge`: the client's proof of its secret.
///
/// Seals `CephXChallengeBlob { u64 server_challenge, u64 client_challenge }` in the
/// length-prefixed form (`u32 32` + 32 bytes) and XORs that buffer as little-endian `u64`
/// words, the 4-byte prefix included and the trailing partial word ignored.
pub fn calc_client_server_challenge(
    key: &CryptoKey,
    server_challenge: u64,
    client_challenge: u64,
) -> Result<u64, SealError> {
    let mut blob = Vec::with_capacity(16);
    blob.put_u64(server_challenge);
    blob.put_u64(client_challenge);
    let enc = seal_blob(key, &blob)?;
    Ok(enc.chunks_exact(8).fold(0u64, |k, w| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        k ^ u64::from_le_bytes(b)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgr2_codec::payload::UTime;

    fn key(b: u8) -> CryptoKey {
        CryptoKey::new(UTime::default(), [b; 16])
    }

    #[test]
    fn seal_round_trip_and_sizes() {
        let k = key(7);
        for n in 0..40 {
            let p: Vec<u8> = (0..n as u8).collect();
            let ct = seal(&k, &p).unwrap();
            // 9-byte envelope + payload, padded to the next block (always at least one byte).
            assert_eq!(ct.len(), (9 + n) / 16 * 16 + 16);
            assert_eq!(unseal(&k, &ct).unwrap(), p);
        }
        let mut d_src = seal_blob(&k, b"abc").unwrap();
        d_src.push(0xEE);
        let mut d = Decoder::new(&d_src);
        assert_eq!(unseal_blob(&k, &mut d).unwrap(), b"abc");
        assert_eq!(d.rest(), &[0xEE]);
    }

    #[test]
    fn wrong_key_and_garbage_are_errors() {
        let ct = seal(&key(1), b"secret stuff").unwrap();
        for b in 2..50u8 {
            let e = unseal(&key(b), &ct).unwrap_err();
            assert!(
                matches!(e, SealError::BadPadding | SealError::BadMagic),
                "{e:?}"
            );
        }
        assert_eq!(unseal(&key(1), &[]), Err(SealError::BadLength(0)));
        assert_eq!(unseal(&key(1), &ct[..15]), Err(SealError::BadLength(15)));
        // A single block decrypting to valid padding but too short for the envelope.
        let short = aes_encrypt(&key(1), &[1, 2, 3]).unwrap();
        assert!(matches!(unseal(&key(1), &short), Err(SealError::Decode(_))));
    }

    #[test]
    fn proof_uses_prefixed_form() {
        let k = key(3);
        let enc = seal_blob(&k, &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(enc.len(), 36);
        assert_eq!(&enc[..4], &[32, 0, 0, 0]);
        let mut x = 0u64;
        for i in 0..4 {
            x ^= u64::from_le_bytes(enc[i * 8..i * 8 + 8].try_into().unwrap());
        }
        assert_eq!(calc_client_server_challenge(&k, 1, 2).unwrap(), x);
    }
}
