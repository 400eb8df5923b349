//! `msgr2 dump` on the real captures: every crc capture decodes in both directions, JSON is
//! one valid object per frame, and a damaged stream fails naming the offset and the reason.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

fn dump(c2s: &Path, s2c: &Path, json: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msgr2"));
    cmd.arg("dump").arg(c2s).arg(s2c);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run msgr2")
}

fn pairs() -> Vec<(String, PathBuf, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(captures())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            let stem = n.strip_suffix(".c2s.bin")?.to_owned();
            Some((
                stem.clone(),
                captures().join(&n),
                captures().join(format!("{stem}.s2c.bin")),
            ))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_capture_dumps_and_json_is_valid() {
    let mut frames = 0;
    for (stem, c2s, s2c) in pairs() {
        let text = dump(&c2s, &s2c, false);
        assert!(
            text.status.success(),
            "{stem}: {}",
            String::from_utf8_lossy(&text.stderr)
        );
        let json = dump(&c2s, &s2c, true);
        assert!(json.status.success(), "{stem}");
        let out = String::from_utf8(json.stdout).unwrap();
        let objs: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            objs.len(),
            String::from_utf8(text.stdout).unwrap().lines().count()
        );
        for o in &objs {
            assert!(
                o["frame"].is_string() && o["offset"].is_u64() && o["len"].is_u64(),
                "{o}"
            );
        }
        let encrypted = objs.iter().filter(|o| o["frame"] == "ENCRYPTED").count();
        if stem.starts_with("secure") {
            assert_eq!(encrypted, 2, "{stem}: both directions switch to ciphertext");
        } else {
            assert_eq!(encrypted, 0, "{stem}: crc captures decode completely");
            // offsets + lengths tile each stream exactly
            for (dir, path) in [("c2s", &c2s), ("s2c", &s2c)] {
                let end = objs
                    .iter()
                    .filter(|o| o["dir"] == dir)
                    .map(|o| o["offset"].as_u64().unwrap() + o["len"].as_u64().unwrap())
                    .max();
                assert_eq!(
                    end,
                    Some(std::fs::metadata(path).unwrap().len()),
                    "{stem} {dir}"
                );
            }
        }
        frames += objs.len();
    }
    assert!(frames > 170, "{frames}");
}

#[test]
fn damaged_stream_fails_with_offset_and_reason() {
    let (_, c2s, s2c) = pairs()
        .into_iter()
        .find(|p| p.0 == "crc-authnone-lspools.conn2")
        .unwrap();
    let mut bytes = std::fs::read(&c2s).unwrap();
    bytes[26 + 40] ^= 0xff; // inside the HELLO payload
    let dir = std::env::temp_dir().join(format!("msgr2-dump-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.c2s.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let out = dump(&bad, &s2c, false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c2s: cannot decode at offset 26:") && err.contains("segment 0 crc mismatch"),
        "{err}"
    );
    // truncated stream
    std::fs::write(&bad, &bytes[..100]).unwrap();
    let out = dump(&bad, &s2c, false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decode at offset"));
    // not msgr2 at all
    std::fs::write(&bad, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let out = dump(&bad, &s2c, false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad banner prefix"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secure_captures_decrypt_with_their_keyring() {
    for (stem, c2s, s2c) in pairs().into_iter().filter(|p| p.0.starts_with("secure")) {
        let prefix = stem.rsplit_once('.').unwrap().0;
        let kr = captures().join(format!("{prefix}.keyring"));
        let out = Command::new(env!("CARGO_BIN_EXE_msgr2"))
            .arg("dump")
            .arg(&c2s)
            .arg(&s2c)
            .arg("--json")
            .arg("--keyring")
            .arg(&kr)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{stem}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objs: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(objs.iter().all(|o| o["frame"] != "ENCRYPTED"), "{stem}");
        for (dir, path) in [("c2s", &c2s), ("s2c", &s2c)] {
            let end = objs
                .iter()
                .filter(|o| o["dir"] == dir)
                .map(|o| o["offset"].as_u64().unwrap() + o["len"].as_u64().unwrap())
                .max();
            assert_eq!(
                end,
                Some(std::fs::metadata(path).unwrap().len()),
                "{stem} {dir}"
            );
        }
        let tags: Vec<&str> = objs
            .iter()
            .filter(|o| o["dir"] == "c2s")
            .map(|o| o["frame"].as_str().unwrap())
            .collect();
        assert_eq!(
            &tags[..6],
            [
                "BANNER",
                "HELLO",
                "AUTH_REQUEST",
                "AUTH_REQUEST_MORE",
                "AUTH_SIGNATURE",
                "CLIENT_IDENT"
            ]
        );
        assert!(objs.iter().any(|o| o["type_name"] == "mon_map"), "{stem}");
    }
    // the wrong keyring is a clear error
    let (_, c2s, s2c) = pairs()
        .into_iter()
        .find(|p| p.0.starts_with("secure"))
        .unwrap();
    let other = captures().join("crc-cephx-lspools.keyring");
    let out = Command::new(env!("CARGO_BIN_EXE_msgr2"))
        .arg("dump")
        .arg(&c2s)
        .arg(&s2c)
        .arg("--keyring")
        .arg(&other)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AUTH_DONE with client.admin's key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Ceph 20.2.4 secure capture (`tests/data/captures-ceph20`, aes256k keys): the
/// connection secret comes out of an aes256k AUTH_DONE and every frame decrypts.
#[test]
fn ceph20_aes256k_secure_capture_decrypts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures-ceph20");
    let out = Command::new(env!("CARGO_BIN_EXE_msgr2"))
        .arg("dump")
        .arg(dir.join("secure-aes256k-ceph-s.conn0.c2s.bin"))
        .arg(dir.join("secure-aes256k-ceph-s.conn0.s2c.bin"))
        .arg("--json")
        .arg("--keyring")
        .arg(dir.join("aes256k.keyring"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objs: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(objs.iter().all(|o| o["frame"] != "ENCRYPTED"));
    let frames: Vec<&str> = objs.iter().map(|o| o["frame"].as_str().unwrap()).collect();
    assert!(frames.contains(&"CLIENT_IDENT"), "{frames:?}");
    assert!(frames.contains(&"COMPRESSION_DONE"), "{frames:?}");
}
