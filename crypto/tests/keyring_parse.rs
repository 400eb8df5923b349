#![allow(clippy::unwrap_used)]
//! Keyring files: the real capture keyrings (written by `ceph-authtool`), hand-written
//! variants exercising Ceph's `ConfFile` grammar, write → parse round trips and typed errors.

use std::path::PathBuf;

use msgr2_codec::entity::EntityName;
use msgr2_codec::payload::UTime;
use msgr2_crypto::keyring::{CryptoKey, KeyError, KeyType, Keyring, KeyringError};

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

fn name(s: &str) -> EntityName {
    s.parse().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn capture_keyrings_parse_and_print_identically() {
    for (prefix, admin_secret) in [
        ("crc-cephx-ceph-s", "ac22f4b32ed07db5c71abe13e1d93599"),
        ("crc-cephx-lspools", "33604392837ec215450f02ac109ee5b7"),
        ("secure-cephx-lspools", "6c20d437aaaf55a197e8bfcf079468f2"),
    ] {
        let path = captures().join(format!("{prefix}.keyring"));
        let text = std::fs::read_to_string(&path).unwrap();
        let kr = Keyring::load(&path).unwrap();
        assert_eq!(kr.len(), 4);
        assert_eq!(
            hex(kr.get(&name("client.admin")).unwrap().secret()),
            admin_secret
        );
        assert!(kr.get(&name("mon.")).is_some(), "[mon.] has an empty id");
        assert_eq!(kr.caps(&name("osd.0"), "mgr"), Some("allow profile osd"));
        assert_eq!(kr.caps(&name("client.admin"), "mds"), Some("allow *"));
        assert_eq!(kr.entry(&name("mgr.x")).unwrap().caps.len(), 3);
        // Ceph's KeyRing::print order and layout, byte for byte.
        assert_eq!(kr.to_keyring_string(), text);
        let order: Vec<String> = kr.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(order, ["mon.", "osd.0", "client.admin", "mgr.x"]);
    }
}

const KEY_A: &str = "AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==";
const KEY_B: &str = "AQBoRQJrUxfPIxAAWvRHH7RPkX+l9vM01BTevQ==";

#[test]
fn grammar_variants() {
    let text = concat!(
        "; a comment\n",
        "# another\n",
        "\n",
        "[global]\n",
        "   some option = ignored\n",
        "[client.admin]   ; trailing comment\n",
        "key=AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==   # inline comment\r\n",
        "   caps_mon   =   'allow *'  \n",
        "\tcaps    osd = \"allow rw \\\"quoted\\\" pool=a\"\n",
        "\tauid = 18446744073709551615\n",
        "caps mgr = allow \\\n",
        "  r\n",
        "[osd.3]\n",
        "key = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n",
        "key = AQBoRQJrUxfPIxAAWvRHH7RPkX+l9vM01BTevQ==\n",
        "[client.admin]\n",
        "caps mds = \"allow\"",
    );
    let kr = Keyring::parse(text).unwrap();
    assert_eq!(kr.len(), 2);
    let admin = name("client.admin");
    assert_eq!(kr.get(&admin).unwrap().to_base64(), KEY_A);
    assert_eq!(kr.caps(&admin, "mon"), Some("allow *"));
    assert_eq!(kr.caps(&admin, "osd"), Some("allow rw \"quoted\" pool=a"));
    assert_eq!(kr.caps(&admin, "mgr"), Some("allow   r"));
    assert_eq!(kr.caps(&admin, "mds"), Some("allow"), "sections merge");
    assert_eq!(
        kr.get(&name("osd.3")).unwrap().to_base64(),
        KEY_B,
        "last key wins"
    );
    // And the printed form parses back to the same keyring.
    assert_eq!(Keyring::parse(&kr.to_keyring_string()).unwrap(), kr);
}

#[test]
fn round_trip_generated() {
    let mut kr = Keyring::new();
    for n in [
        "client.admin",
        "osd.0",
        "mgr.x",
        "mon.",
        "client.rgw.gateway",
    ] {
        kr.insert(name(n), CryptoKey::generate().unwrap());
    }
    assert!(kr.set_caps(&name("client.admin"), "mon", "allow *"));
    assert!(kr.set_caps(&name("client.admin"), "osd", "allow rw pool=\"x\""));
    assert!(!kr.set_caps(&name("client.nobody"), "mon", "allow *"));
    let text = kr.to_keyring_string();
    assert_eq!(Keyring::parse(&text).unwrap(), kr);
    assert_eq!(
        kr.get(&name("client.rgw.gateway"))
            .unwrap()
            .to_base64()
            .len(),
        40
    );

    let path = std::env::temp_dir().join(format!("msgr2-keyring-test-{}", std::process::id()));
    kr.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "keyring must not be group/world readable");
    }
    assert_eq!(Keyring::load(&path).unwrap(), kr);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(Keyring::load(&path), Err(KeyringError::Io { .. })));
}

#[test]
fn crypto_key_encoding() {
    let k = CryptoKey::from_base64(KEY_A).unwrap();
    let b = k.to_bytes();
    assert_eq!(b.len(), 28);
    assert_eq!(&b[..2], &[1, 0], "type AES");
    assert_eq!(&b[10..12], &[16, 0], "secret length");
    assert_eq!(
        k.created,
        UTime {
            sec: u32::from_le_bytes(b[2..6].try_into().unwrap()),
            nsec: k.created.nsec
        }
    );
    assert!(KEY_A.starts_with("AQ"));
    // Unpadded base64 is accepted, like ceph_unarmor.
    assert_eq!(
        CryptoKey::from_base64(KEY_A.trim_end_matches('=')).unwrap(),
        k
    );
    let g = CryptoKey::generate().unwrap();
    assert_ne!(g.secret(), CryptoKey::generate().unwrap().secret());
    assert!(!format!("{g:?}").contains(&hex(g.secret())));
}

fn err(text: &str) -> KeyringError {
    Keyring::parse(text).unwrap_err()
}

#[test]
fn typed_errors() {
    assert!(matches!(
        err("[client.a]\nkey = !!!notbase64\n"),
        KeyringError::BadKey {
            line: 2,
            source: KeyError::Base64,
            ..
        }
    ));
    assert!(matches!(
        err("[client.a]\nkey = AQBoRQJr\n"),
        KeyringError::BadKey {
            source: KeyError::Truncated(6),
            ..
        }
    ));
    assert!(matches!(
        err("[client.a]\nkey =\n"),
        KeyringError::BadKey { .. }
    ));
    assert!(matches!(
        err(&format!("[client.a]\nkey = {KEY_A}\nsecret = x\n")),
        KeyringError::UnknownSetting { line: 3, .. }
    ));
    assert!(matches!(
        err("[bogus.a]\n"),
        KeyringError::BadEntityName { line: 1, .. }
    ));
    assert!(matches!(
        err("[noperiod]\n"),
        KeyringError::BadEntityName { .. }
    ));
    assert!(matches!(
        err("[client.a\n"),
        KeyringError::Syntax { line: 1, .. }
    ));
    assert!(matches!(
        err("[client.a] junk\n"),
        KeyringError::Syntax { .. }
    ));
    assert!(matches!(
        err(&format!("key = {KEY_A}\n")),
        KeyringError::Syntax { .. }
    ));
    assert!(matches!(
        err("[client.a]\njust words\n"),
        KeyringError::Syntax { line: 2, .. }
    ));
    assert!(matches!(
        err("[client.a]\ncaps mon = \"allow *\n"),
        KeyringError::Syntax { .. }
    ));
    assert!(matches!(
        err("[client.a]\ncaps mon = \"allow\" x\n"),
        KeyringError::Syntax { .. }
    ));
    assert!(matches!(
        err("[client.a]\ncaps mon = \"allow *\"\n"),
        KeyringError::MissingKey(_)
    ));
    // An empty file is an empty keyring.
    assert!(Keyring::parse("").unwrap().is_empty());
    assert!(Keyring::parse("# only a comment").unwrap().is_empty());
}

/// A Ceph 20 keyring mixing `aes256k` (`Ag…`), `aes` (`AQ…`) and unusable keys: the usable
/// ones load, an unusable one is skipped (with a warning) and is a typed error only when it is
/// the entity asked for.
#[test]
fn mixed_key_types() {
    let text = concat!(
        "[mon.]\n",
        "\tkey = AgAAAAAAAAAAACAAbUBNN/r3n53w0zVo0yBmmADrSDZHLqigJtFrcYJGDFI=\n",
        "\tcaps mon = \"allow *\"\n",
        "[client.old]\n",
        "\tkey = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n",
        // A CEPH_CRYPTO_NONE key (type 0).
        "[client.none]\n",
        "\tkey = AABoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n",
        // Type 2 with a 16-byte secret.
        "[client.short]\n",
        "\tkey = AgBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n",
    );
    let kr = Keyring::parse(text).unwrap();
    assert_eq!(kr.len(), 2);
    let mon = kr.key(&name("mon.")).unwrap();
    assert_eq!(mon.key_type(), KeyType::Aes256k);
    assert_eq!(mon.secret().len(), 32);
    assert_eq!(
        kr.key(&name("client.old")).unwrap().key_type(),
        KeyType::Aes
    );
    assert!(matches!(
        kr.key(&name("client.none")),
        Err(KeyringError::UnusableKey {
            line: 7,
            source: KeyError::UnsupportedType(0),
            ..
        })
    ));
    assert!(matches!(
        kr.key(&name("client.short")),
        Err(KeyringError::UnusableKey {
            line: 9,
            source: KeyError::BadLength {
                ty: KeyType::Aes256k,
                len: 16
            },
            ..
        })
    ));
    assert!(matches!(
        kr.key(&name("client.nobody")),
        Err(KeyringError::NoEntry(_))
    ));
    let skipped: Vec<String> = kr.unusable().map(|u| u.name.to_string()).collect();
    assert_eq!(skipped, ["client.none", "client.short"]);
    // Printing keeps the usable entries, byte for byte as Ceph prints them.
    let again = Keyring::parse(&kr.to_keyring_string()).unwrap();
    assert_eq!(again.key(&name("mon.")).unwrap(), mon);
    // The cephx provider reports the unusable key, not "no key".
    let e = msgr2_crypto::cephx::CephxClientProvider::from_keyring(
        &kr,
        name("client.none"),
        msgr2_crypto::cephx::TicketStore::new(),
    )
    .unwrap_err();
    assert!(matches!(
        e,
        msgr2_crypto::auth::AuthError::UnusableKey {
            source: KeyError::UnsupportedType(0),
            ..
        }
    ));
}

#[test]
fn insert_remove_and_from_str() {
    let text = "[client.admin]\n\tkey = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n";
    let mut k: Keyring = text.parse().unwrap();
    assert_eq!(k.len(), 1);
    assert!(!k.is_empty());
    assert_eq!(k.to_keyring_string(), text);
    let admin = name("client.admin");
    let e = k.remove(&admin).unwrap();
    assert_eq!(
        e.key.to_base64(),
        "AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ=="
    );
    assert!(k.remove(&admin).is_none());
    assert!(k.is_empty());
    assert!(Keyring::new().is_empty());
}

/// Backslash-newline joins lines (Ceph's ConfFile), also on the file's last line.
#[test]
fn line_continuations() {
    let text = "[client.admin]\n\tkey = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n\tcaps mon = \"allow \\\nr\"\n";
    let k: Keyring = text.parse().unwrap();
    let e = k.iter().next().unwrap();
    assert_eq!(e.caps["mon"], "allow r");
    // The backslash itself goes: what follows on the next line is read as if it had been
    // there, so a `;` starts a comment rather than being escaped.
    let text = "[client.admin]\n\tkey = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\n\tcaps mon = allow r \\\n; a comment\n";
    let k: Keyring = text.parse().unwrap();
    assert_eq!(k.iter().next().unwrap().caps["mon"], "allow r");
    let last = "[client.admin]\n\tkey = AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ==\\";
    let k: Keyring = last.parse().unwrap();
    assert_eq!(
        k.get(&name("client.admin")).unwrap().to_base64(),
        "AQBoRQJrRyhnIBAArCL0sy7QfbXHGr4T4dk1mQ=="
    );
}
