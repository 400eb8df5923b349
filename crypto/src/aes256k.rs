//! `aes256k` (`CEPH_CRYPTO_AES256KRB5`, key type 2): Kerberos
//! `aes256-cts-hmac-sha384-192` (RFC 8009, enctype 20), as Ceph 20's `CryptoAES256KRB5` and
//! Linux 7.0's libceph (`crypto_krb5` with `KRB5_ENCTYPE_AES256_CTS_HMAC_SHA384_192`) use it.
//!
//! Per *key usage* (a `u32` naming the purpose, see [`crate::cephx::KeyUsage`]) two keys are
//! derived from the 32-byte secret with RFC 8009's `KDF-HMAC-SHA2`:
//!
//! ```text
//! Ke = HMAC-SHA-384(secret, 00000001 | BE32(usage) | AA | 00 | BE32(256))[..32]
//! Ki = HMAC-SHA-384(secret, 00000001 | BE32(usage) | 55 | 00 | BE32(192))[..24]
//! ```
//!
//! A message is `C | H` with a fresh 16-byte random confounder `N`:
//!
//! ```text
//! C = AES-256-CBC-CS3(Ke, IV = 0^16, N | plaintext)     (ciphertext stealing, RFC 3962)
//! H = HMAC-SHA-384(Ki, 0^16 | C)[..24]
//! ```
//!
//! so the ciphertext is `16 + len + 24` bytes, and decryption checks `H` (in constant time)
//! before anything else. There is no padding and no fixed IV, unlike the type-1 `aes` key.

use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use thiserror::Error;

/// Length of an aes256k secret.
pub const KEY_LEN: usize = 32;
/// AES block length, also the confounder length.
pub const BLOCK_LEN: usize = 16;
/// Length of the truncated HMAC-SHA-384 integrity tag.
pub const MAC_LEN: usize = 24;
/// Shortest valid ciphertext: a confounder and a tag.
pub const MIN_CIPHERTEXT_LEN: usize = BLOCK_LEN + MAC_LEN;
/// RFC 8009 key-derivation constant of the encryption key `Ke`.
const KE_CONSTANT: u8 = 0xAA;
/// RFC 8009 key-derivation constant of the integrity key `Ki`.
const KI_CONSTANT: u8 = 0x55;

/// Why an aes256k operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Aes256kError {
    /// The ciphertext is shorter than a confounder plus a tag.
    #[error("aes256k ciphertext of {0} bytes is shorter than {MIN_CIPHERTEXT_LEN}")]
    TooShort(usize),
    /// The HMAC did not verify: wrong key, wrong key usage or tampering.
    #[error("aes256k integrity check failed (wrong key or key usage?)")]
    BadMac,
    /// The AES implementation or the random generator reported a failure.
    #[error("aes256k cipher operation failed")]
    Cipher,
}

/// The two keys derived from a secret for one key usage.
struct UsageKeys {
    ke: [u8; 32],
    ki: [u8; MAC_LEN],
}

/// RFC 8009 `KDF-HMAC-SHA2(secret, usage | constant, bits)`, truncated to `out.len()` bytes
/// (at most 48).
fn kdf(secret: &[u8], usage: u32, constant: u8, out: &mut [u8]) {
    let mut block = [0u8; 14];
    block[..4].copy_from_slice(&1u32.to_be_bytes());
    block[4..8].copy_from_slice(&usage.to_be_bytes());
    block[8] = constant;
    block[9] = 0;
    let bits = u32::try_from(out.len() * 8).unwrap_or(u32::MAX);
    block[10..].copy_from_slice(&bits.to_be_bytes());
    let k = hmac::Key::new(hmac::HMAC_SHA384, secret);
    let tag = hmac::sign(&k, &block);
    out.copy_from_slice(&tag.as_ref()[..out.len()]);
}

fn usage_keys(secret: &[u8], usage: u32) -> UsageKeys {
    let mut ke = [0u8; 32];
    let mut ki = [0u8; MAC_LEN];
    kdf(secret, usage, KE_CONSTANT, &mut ke);
    kdf(secret, usage, KI_CONSTANT, &mut ki);
    UsageKeys { ke, ki }
}

/// `HMAC-SHA-384(Ki, 0^16 | c)[..24]`: the cipher state (IV, all zero) is covered too.
fn mac(ki: &[u8], c: &[u8]) -> [u8; MAC_LEN] {
    let k = hmac::Key::new(hmac::HMAC_SHA384, ki);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(&[0u8; BLOCK_LEN]);
    ctx.update(c);
    let tag = ctx.sign();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

fn zero_iv() -> FixedLength<16> {
    FixedLength::from([0u8; 16])
}

/// AES-256-CBC without padding, IV 0; `buf` is a whole number of blocks.
fn cbc_encrypt(ke: &[u8], buf: &mut [u8]) -> Result<(), Aes256kError> {
    let k = UnboundCipherKey::new(&AES_256, ke).map_err(|_| Aes256kError::Cipher)?;
    let k = EncryptingKey::cbc(k).map_err(|_| Aes256kError::Cipher)?;
    k.less_safe_encrypt(buf, EncryptionContext::Iv128(zero_iv()))
        .map_err(|_| Aes256kError::Cipher)?;
    Ok(())
}

/// AES-256-CBC decryption without padding, IV 0; `buf` is a whole number of blocks.
fn cbc_decrypt(ke: &[u8], buf: &mut [u8]) -> Result<(), Aes256kError> {
    let k = UnboundCipherKey::new(&AES_256, ke).map_err(|_| Aes256kError::Cipher)?;
    let k = DecryptingKey::cbc(k).map_err(|_| Aes256kError::Cipher)?;
    k.decrypt(buf, DecryptionContext::Iv128(zero_iv()))
        .map_err(|_| Aes256kError::Cipher)?;
    Ok(())
}

/// One raw AES-256 block decryption.
fn block_decrypt(ke: &[u8], block: &mut [u8; BLOCK_LEN]) -> Result<(), Aes256kError> {
    let k = UnboundCipherKey::new(&AES_256, ke).map_err(|_| Aes256kError::Cipher)?;
    let k = DecryptingKey::ecb(k).map_err(|_| Aes256kError::Cipher)?;
    k.decrypt(block, DecryptionContext::None)
        .map_err(|_| Aes256kError::Cipher)?;
    Ok(())
}

/// CBC-CS3 encryption of `p` (at least one block) with IV 0: CBC over the zero-padded input,
/// then the last two ciphertext blocks swapped and the result cut to `p.len()`.
fn cts_encrypt(ke: &[u8], p: &[u8]) -> Result<Vec<u8>, Aes256kError> {
    let n = p.len();
    let blocks = n.div_ceil(BLOCK_LEN);
    let mut buf = vec![0u8; blocks * BLOCK_LEN];
    buf[..n].copy_from_slice(p);
    cbc_encrypt(ke, &mut buf)?;
    if blocks >= 2 {
        let (head, last) = buf.split_at_mut((blocks - 1) * BLOCK_LEN);
        let prev = &mut head[(blocks - 2) * BLOCK_LEN..];
        prev.swap_with_slice(&mut last[..BLOCK_LEN]);
    }
    buf.truncate(n);
    Ok(buf)
}

/// Inverse of [`cts_encrypt`].
fn cts_decrypt(ke: &[u8], c: &[u8]) -> Result<Vec<u8>, Aes256kError> {
    let n = c.len();
    let blocks = n.div_ceil(BLOCK_LEN);
    if blocks < 2 {
        let mut buf = c.to_vec();
        cbc_decrypt(ke, &mut buf)?;
        return Ok(buf);
    }
    // c = c_1 .. c_{m-2} | c_m | c_{m-1}[..r]
    let r = n - (blocks - 1) * BLOCK_LEN;
    let full = (blocks - 2) * BLOCK_LEN;
    let mut d = [0u8; BLOCK_LEN];
    d.copy_from_slice(&c[full..full + BLOCK_LEN]);
    block_decrypt(ke, &mut d)?; // P_m (zero-padded) XOR c_{m-1}
    let tail = &c[full + BLOCK_LEN..];
    let mut buf = Vec::with_capacity(blocks * BLOCK_LEN);
    buf.extend_from_slice(&c[..full]);
    // c_{m-1} = tail | the bytes of D where P_m was padded with zeros.
    buf.extend_from_slice(tail);
    buf.extend_from_slice(&d[r..]);
    let last: Vec<u8> = d[..r].iter().zip(tail).map(|(a, b)| a ^ b).collect();
    cbc_decrypt(ke, &mut buf)?;
    buf.extend_from_slice(&last);
    Ok(buf)
}

/// Encrypts `plaintext` under `secret` for `usage` with the given confounder (Ceph allows a
/// chosen confounder only in tests; use [`encrypt`]).
pub fn encrypt_with_confounder(
    secret: &[u8],
    usage: u32,
    confounder: &[u8; BLOCK_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, Aes256kError> {
    let keys = usage_keys(secret, usage);
    let mut p = Vec::with_capacity(BLOCK_LEN + plaintext.len());
    p.extend_from_slice(confounder);
    p.extend_from_slice(plaintext);
    let mut out = cts_encrypt(&keys.ke, &p)?;
    let h = mac(&keys.ki, &out);
    out.extend_from_slice(&h);
    Ok(out)
}

/// Encrypts `plaintext` under `secret` for `usage` with a fresh random confounder:
/// `16 + plaintext.len() + 24` bytes.
pub fn encrypt(secret: &[u8], usage: u32, plaintext: &[u8]) -> Result<Vec<u8>, Aes256kError> {
    let mut confounder = [0u8; BLOCK_LEN];
    aws_lc_rs::rand::fill(&mut confounder).map_err(|_| Aes256kError::Cipher)?;
    encrypt_with_confounder(secret, usage, &confounder, plaintext)
}

/// Verifies and decrypts a ciphertext of [`encrypt`]; returns the plaintext without the
/// confounder.
pub fn decrypt(secret: &[u8], usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, Aes256kError> {
    if ciphertext.len() < MIN_CIPHERTEXT_LEN {
        return Err(Aes256kError::TooShort(ciphertext.len()));
    }
    let keys = usage_keys(secret, usage);
    let (c, h) = ciphertext.split_at(ciphertext.len() - MAC_LEN);
    let expected = mac(&keys.ki, c);
    aws_lc_rs::constant_time::verify_slices_are_equal(&expected, h)
        .map_err(|_| Aes256kError::BadMac)?;
    let mut p = cts_decrypt(&keys.ke, c)?;
    p.drain(..BLOCK_LEN);
    Ok(p)
}

/// `HMAC-SHA-256` keyed with the whole raw secret (Ceph's `CryptoKey::hmac_sha256`, the
/// kernel's `ceph_hmac_sha256`): the cephx challenge proof of non-`aes` keys.
pub fn hmac_sha256(secret: &[u8], data: &[u8]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hx(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8009 appendix A's aes256-cts-hmac-sha384-192 base key (also Ceph's
    /// `src/test/crypto.cc` and the kernel's `crypto/krb5/selftest_data.c`).
    const RFC_KEY: &str = "6D404D37FAF79F9DF0D33568D320669800EB4836472EA8A026D16B7182460C52";

    /// RFC 8009 appendix A, "Sample encryptions" for enctype 20, key usage 2: (confounder,
    /// plaintext length of the counting bytes 00 01 02 .., ciphertext).
    const VECTORS: [(&str, usize, &str); 4] = [
        (
            "F764E9FA15C276478B2C7D0C4E5F58E4",
            0,
            "41F53FA5BFE7026D91FAF9BE959195A058707273A96A40F0A01960621AC612748B9BBFBE7EB4CE3C",
        ),
        (
            "B80D3251C1F6471494256FFE712D0B9A",
            6,
            "4ED7B37C2BCAC8F74F23C1CF07E62BC7B75FB3F637B9F559C7F664F69EAB7B6092237526EA0D1F61\
             CB20D69D10F2",
        ),
        (
            "53BF8A0D105265D4E276428624CE5E63",
            16,
            "BC47FFEC7998EB91E8115CF8D19DAC4BBBE2E163E87DD37F49BECA92027764F68CF51F14D798C227\
             3F35DF574D1F932E40C4FF255B36A266",
        ),
        (
            "763E65367E864F02F55153C7E3B58AF1",
            21,
            "40013E2DF58E8751957D2878BCD2D6FE101CCFD556CB1EAE79DB3C3EE86429F2B2A602AC86FEF6EC\
             B647D6295FAE077A1FEB517508D2C16B4192E01F62",
        ),
    ];

    fn counting(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    #[test]
    fn rfc8009_derived_keys_usage_2() {
        let key = hx(RFC_KEY);
        let k = usage_keys(&key, 2);
        assert_eq!(
            k.ke.to_vec(),
            hx("56AB22BEE63D82D7BC5227F6773F8EA7A5EB1C825160C38312980C442E5C7E49")
        );
        assert_eq!(
            k.ki.to_vec(),
            hx("69B16514E3CD8E56B82010D5C73012B622C4D00FFC23ED1F")
        );
        let mut kc = [0u8; 24];
        kdf(&key, 2, 0x99, &mut kc);
        assert_eq!(
            kc.to_vec(),
            hx("EF5718BE86CC84963D8BBB5031E9F5C4BA41F28FAF69E73D")
        );
    }

    #[test]
    fn rfc8009_encryption_vectors() {
        let key = hx(RFC_KEY);
        for (conf, len, ct) in VECTORS {
            let conf: [u8; 16] = hx(conf).try_into().unwrap();
            let got = encrypt_with_confounder(&key, 2, &conf, &counting(len)).unwrap();
            assert_eq!(got, hx(ct), "length {len}");
            assert_eq!(decrypt(&key, 2, &got).unwrap(), counting(len));
            // The key usage is part of the key: another usage does not verify.
            assert_eq!(decrypt(&key, 3, &got), Err(Aes256kError::BadMac));
        }
    }

    /// Longer messages (five CTS blocks, partial and exact last block), computed independently
    /// with Python's `cryptography` (AES-256-CBC + manual CS3 swap + HMAC-SHA-384) for key
    /// usage 4, the RFC key and confounder a0..af.
    #[test]
    fn longer_cts_vectors() {
        let key = hx(RFC_KEY);
        let conf: [u8; 16] = hx("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf").try_into().unwrap();
        for (len, ct) in [
            (
                53,
                "ca0522838c12dfd084d33a407bf109a3e80556051f828e1fe307f9392d7cba733b6510a90ea5abbd\
                 ea280d562a78bac74eb2626fe95091e7be6f0f759a8bf17b0bdff321a656ca4738330db2aa0d3a2e\
                 fd5902db3852fecbc2be298fd6",
            ),
            (
                64,
                "ca0522838c12dfd084d33a407bf109a3e80556051f828e1fe307f9392d7cba733b6510a90ea5abbd\
                 ea280d562a78bac7890dadd0da9838a25c00514c275511000bdff321a626f7044cae44ffc3ad8de1\
                 646067624725c1e101f6743674defcbf7c96332c08179340",
            ),
        ] {
            let got = encrypt_with_confounder(&key, 4, &conf, &counting(len)).unwrap();
            assert_eq!(got, hx(ct), "length {len}");
            assert_eq!(decrypt(&key, 4, &got).unwrap(), counting(len));
        }
    }

    #[test]
    fn round_trips_and_rejections() {
        let key = [7u8; KEY_LEN];
        for len in 0..70 {
            let p = counting(len);
            let c = encrypt(&key, 0x30, &p).unwrap();
            assert_eq!(c.len(), BLOCK_LEN + len + MAC_LEN);
            assert_eq!(decrypt(&key, 0x30, &c).unwrap(), p);
            // Random confounder: two encryptions differ.
            assert_ne!(encrypt(&key, 0x30, &p).unwrap(), c);
            for i in [0, c.len() / 2, c.len() - 1] {
                let mut bad = c.clone();
                bad[i] ^= 1;
                assert_eq!(decrypt(&key, 0x30, &bad), Err(Aes256kError::BadMac));
            }
            let mut other = key;
            other[31] ^= 1;
            assert_eq!(decrypt(&other, 0x30, &c), Err(Aes256kError::BadMac));
        }
        assert_eq!(decrypt(&key, 0, &[0; 39]), Err(Aes256kError::TooShort(39)));
    }

    /// `hmac_sha256`: Ceph's `src/test/crypto.cc` AES256KRB5 HMAC vectors (secret
    /// 00112233..ff) and RFC 4231 test case 2.
    #[test]
    fn hmac_sha256_vectors() {
        let s = hx("00112233445566778899aabbccddeeff");
        assert_eq!(
            hmac_sha256(&s, b"blablabla").to_vec(),
            hx("42c7027e8be06dca2c0b444373fefdbeac5b4034eca44a69de3a291634ed8df9")
        );
        assert_eq!(
            hmac_sha256(&s, b"testing1234blablabla").to_vec(),
            hx("4bd3ac394acc9706dd09e65c68add4cf092ccda1e799e35c527385bd7973c698")
        );
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?").to_vec(),
            hx("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }
}
