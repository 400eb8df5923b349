//! What a run measures: modes, sizes, core lists, and their command-line spellings.

use std::fmt;
use std::str::FromStr;

use msgr2_codec::compress::Method;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_proto::CompressionConfig;

use super::error::BenchError;

/// How bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// The kernel's ceiling: a plain blocking socket pair streaming 1 MiB writes, without our
    /// engine (see [`super::tcp`]); loopback runs only.
    Tcp,
    /// The baseline: a 16-byte header and the payload over TCP, no msgr2 framing.
    Raw,
    /// msgr2 crc mode (crc32c on preamble and segments).
    Crc,
    /// msgr2 secure mode (AES-128-GCM).
    Secure,
    /// msgr2 crc mode with on-wire compression (`crc+snappy`, `crc+zlib`, `crc+zstd`,
    /// `crc+lz4`): every frame of at least 1 KiB compressed, as Ceph's
    /// `ms_osd_compress_mode=force` does.
    CrcCompress(Method),
}

impl Mode {
    /// Every mode, baseline first.
    pub const ALL: [Mode; 8] = [
        Mode::Tcp,
        Mode::Raw,
        Mode::Crc,
        Mode::Secure,
        Mode::CrcCompress(Method::Snappy),
        Mode::CrcCompress(Method::Zlib),
        Mode::CrcCompress(Method::Zstd),
        Mode::CrcCompress(Method::Lz4),
    ];

    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Raw => "raw",
            Mode::Crc => "crc",
            Mode::Secure => "secure",
            Mode::CrcCompress(Method::Snappy) => "crc+snappy",
            Mode::CrcCompress(Method::Zlib) => "crc+zlib",
            Mode::CrcCompress(Method::Zstd) => "crc+zstd",
            Mode::CrcCompress(Method::Lz4) => "crc+lz4",
        }
    }

    /// `CEPH_CON_MODE_*` for the msgr2 modes.
    pub fn con_mode(self) -> Option<u32> {
        match self {
            Mode::Tcp | Mode::Raw => None,
            Mode::Crc | Mode::CrcCompress(_) => Some(CON_MODE_CRC),
            Mode::Secure => Some(CON_MODE_SECURE),
        }
    }

    /// The compression method of a `crc+METHOD` mode.
    pub fn compression(self) -> Option<Method> {
        match self {
            Mode::CrcCompress(m) => Some(m),
            _ => None,
        }
    }

    /// The bench client's compression settings: for `crc+METHOD`, force with that one method
    /// towards the bench server (a mon identity, hence [`CompressionConfig::peer_types`]).
    pub fn client_compression(self) -> CompressionConfig {
        let mut c = CompressionConfig::default();
        if let Some(m) = self.compression() {
            c.osd_mode = msgr2_proto::CompressMode::Force;
            c.osd_methods = vec![m as u32];
            c.peer_types = vec![EntityType::Mon];
        }
        c
    }
}

/// The bench server's compression settings: agree to any of the four methods a client asks
/// for (clients that do not ask get none).
pub fn server_compression() -> CompressionConfig {
    CompressionConfig {
        osd_mode: msgr2_proto::CompressMode::Force,
        osd_methods: Method::ALL.iter().map(|m| *m as u32).collect(),
        peer_types: vec![EntityType::Client],
        ..CompressionConfig::default()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Self, BenchError> {
        let t = s.trim();
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == t)
            .ok_or_else(|| {
                BenchError::Usage(format!(
                    "unknown mode {t:?} (expected tcp, raw, crc, secure, crc+snappy, crc+zlib, crc+zstd or crc+lz4)"
                ))
            })
    }
}

/// Largest message size accepted (the frame limits allow 256 MiB; a bench cell keeps
/// `depth` of these in flight per connection).
pub const MAX_SIZE: u64 = 256 << 20;

/// Parses one size: bytes, or a number with `K`, `M` or `G` (binary: `4K` = 4096), an optional
/// trailing `i`/`iB`/`B` accepted (`64KiB`).
pub fn parse_size(s: &str) -> Result<u64, BenchError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .or_else(|| lower.strip_suffix('i'))
        .unwrap_or(&lower);
    let (digits, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        _ => (body, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| BenchError::Usage(format!("bad size {t:?} (e.g. 4096, 4K, 64K, 4M)")))?;
    let v = n
        .checked_mul(mult)
        .filter(|v| *v <= MAX_SIZE)
        .ok_or_else(|| BenchError::Usage(format!("size {t:?} over the 256 MiB limit")))?;
    Ok(v)
}

/// Parses a comma-separated size list (`4K,64K,4M`).
pub fn parse_sizes(s: &str) -> Result<Vec<u64>, BenchError> {
    let v: Vec<u64> = s
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(parse_size)
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err(BenchError::Usage("--sizes is empty".into()));
    }
    Ok(v)
}

/// Parses a comma-separated mode list (`raw,crc,secure`), keeping the order given.
pub fn parse_modes(s: &str) -> Result<Vec<Mode>, BenchError> {
    let mut v: Vec<Mode> = Vec::new();
    for w in s.split(',').filter(|w| !w.trim().is_empty()) {
        let m: Mode = w.parse()?;
        if !v.contains(&m) {
            v.push(m);
        }
    }
    if v.is_empty() {
        return Err(BenchError::Usage("--modes is empty".into()));
    }
    Ok(v)
}

/// Parses a CPU list as `taskset` spells it: `0,1`, `0-3`, `0-3,8`.
pub fn parse_cores(s: &str) -> Result<Vec<usize>, BenchError> {
    let bad = || BenchError::Usage(format!("bad core list {s:?} (e.g. 0,1 or 0-3)"));
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if b < a || b - a > 4096 {
                    return Err(bad());
                }
                v.extend(a..=b);
            }
            None => v.push(part.parse().map_err(|_| bad())?),
        }
    }
    if v.is_empty() {
        return Err(bad());
    }
    Ok(v)
}

/// Splits the cores of a loopback run: the server takes the first half, the client the rest
/// (both share the only core of a one-core list).
pub fn split_cores(cores: &[usize]) -> (Vec<usize>, Vec<usize>) {
    if cores.len() < 2 {
        return (cores.to_vec(), cores.to_vec());
    }
    let half = cores.len() / 2;
    (cores[..half].to_vec(), cores[half..].to_vec())
}

/// A size as people write it: `4KiB`, `64KiB`, `4MiB`, or bytes.
pub fn size_label(n: u64) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_modes_cores() {
        assert_eq!(
            parse_sizes("4K,64K,4M").ok(),
            Some(vec![4096, 65536, 4 << 20])
        );
        assert_eq!(
            parse_sizes("100, 64KiB,1m").ok(),
            Some(vec![100, 65536, 1 << 20])
        );
        assert!(parse_size("1T").is_err());
        assert!(parse_size("512M").is_err());
        assert!(parse_size("x").is_err());
        assert_eq!(
            parse_modes("crc,raw,crc").ok(),
            Some(vec![Mode::Crc, Mode::Raw])
        );
        assert!(parse_modes("fast").is_err());
        assert_eq!(parse_cores("0-2,5").ok(), Some(vec![0, 1, 2, 5]));
        assert!(parse_cores("3-1").is_err());
        assert_eq!(split_cores(&[0, 1]), (vec![0], vec![1]));
        assert_eq!(split_cores(&[3]), (vec![3], vec![3]));
        assert_eq!(size_label(4096), "4KiB");
        assert_eq!(size_label(4 << 20), "4MiB");
        assert_eq!(size_label(1000), "1000B");
    }
}
