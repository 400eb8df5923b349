//! Shared helpers for the codec's integration tests: the real Ceph captures.
#![allow(dead_code, missing_docs)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

/// Directory of the real captures (copied from Ceph 16.2.15 recordings).
pub fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

/// One recorded connection: name and both directions.
pub struct Conn {
    pub prefix: String,
    pub conn: String,
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
}

/// Every recorded connection, sorted by name.
pub fn connections() -> Vec<Conn> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(captures_dir())
        .expect("captures dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c2s.bin"))
        .collect();
    names.sort();
    for n in names {
        let stem = n.trim_end_matches(".c2s.bin");
        let (prefix, conn) = stem.rsplit_once('.').unwrap();
        let dir = captures_dir();
        out.push(Conn {
            prefix: prefix.to_owned(),
            conn: conn.to_owned(),
            c2s: std::fs::read(dir.join(format!("{stem}.c2s.bin"))).unwrap(),
            s2c: std::fs::read(dir.join(format!("{stem}.s2c.bin"))).unwrap(),
        });
    }
    assert!(
        out.len() >= 12,
        "expected the 12 recorded connections, found {}",
        out.len()
    );
    out
}

/// One frame line of a `frames.txt` listing: direction, offset, tag name, segment lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub dir: String,
    pub offset: usize,
    pub tag: String,
    pub segs: Vec<u32>,
}

/// The independent Python decoder's listing for `prefix`/`conn`.
pub fn listing(prefix: &str, conn: &str) -> Vec<Listed> {
    let text =
        std::fs::read_to_string(captures_dir().join(format!("{prefix}.frames.txt"))).unwrap();
    let mut cur = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("conn") {
            cur = format!("conn{}", rest.split(':').next().unwrap());
            continue;
        }
        if cur != conn {
            continue;
        }
        let t = line.trim();
        let Some((dir, rest)) = t.split_once(" @ ") else {
            continue;
        };
        let (off, rest) = rest.split_once(':').unwrap();
        let mut words = rest.split_whitespace();
        let tag = words.next().unwrap().to_owned();
        if tag == "no" {
            continue; // "no valid crc-mode preamble here": start of ciphertext
        }
        let segs = rest
            .split_once("segs=[")
            .unwrap()
            .1
            .split_once(']')
            .unwrap()
            .0;
        out.push(Listed {
            dir: dir.to_owned(),
            offset: off.trim().parse().unwrap(),
            tag,
            segs: segs.split(", ").map(|s| s.parse().unwrap()).collect(),
        });
    }
    out
}
