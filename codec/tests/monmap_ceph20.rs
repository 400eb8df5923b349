//! Monitor maps written by a real Ceph 20.2.4 monitor (`tests/data/ceph20`, see its README):
//! version 10 with the cluster's cephx policy and `mon_info_t` version 6. Each decodes, prints
//! exactly what Ceph's `monmaptool --print` printed, and re-encodes to the identical bytes.

#![allow(clippy::unwrap_used)]

use msgr2_codec::messages::{MonAuthPolicy, MonMap, CIPHER_AES, CIPHER_AES256KRB5};
use std::path::PathBuf;

fn data(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ceph20");
    std::fs::read(dir.join(name)).unwrap()
}

fn check(prefix: &str, policy: &MonAuthPolicy) {
    let bytes = data(&format!("{prefix}.bin"));
    let printed = String::from_utf8(data(&format!("{prefix}.print.txt"))).unwrap();
    let m = MonMap::decode(&bytes).unwrap();
    assert_eq!(bytes[0], 10, "{prefix}: a version 10 map");
    assert_eq!(m.auth.as_ref(), Some(policy), "{prefix}");
    assert_eq!(m.min_mon_release, 20);
    assert!(m.mon_info["a"].time_added.is_some());
    assert_eq!(m.to_string(), printed, "{prefix}");
    assert_eq!(m.to_bytes(), bytes, "{prefix}: re-encodes byte for byte");
}

#[test]
fn tentacle_default_map() {
    check(
        "monmap-aes256k",
        &MonAuthPolicy {
            auth_epoch: 0,
            service_cipher: CIPHER_AES256KRB5,
            allowed_ciphers: vec![CIPHER_AES256KRB5],
            preferred_cipher: CIPHER_AES256KRB5,
        },
    );
}

#[test]
fn two_cipher_map() {
    check(
        "monmap-two-ciphers",
        &MonAuthPolicy {
            auth_epoch: 0,
            service_cipher: CIPHER_AES,
            allowed_ciphers: vec![CIPHER_AES, CIPHER_AES256KRB5],
            preferred_cipher: CIPHER_AES,
        },
    );
}

/// A policy with more ciphers than bytes is a typed error, not an allocation.
#[test]
fn hostile_cipher_count_is_refused() {
    let mut bytes = data("monmap-aes256k.bin");
    let n = bytes.len();
    // the allowed-cipher count sits 12 bytes before the end (count, one cipher, preferred)
    bytes[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(MonMap::decode(&bytes).is_err());
}
