//! On-wire compression (Quincy and later): the four codecs Ceph's messenger can negotiate,
//! in Ceph's exact formats, and the per-frame transform.
//!
//! Ceph compresses each segment of a frame separately with its `Compressor` plugin
//! (`src/compressor/`), whose formats are not the plain library formats:
//!
//! | id | method | on the wire (one segment) |
//! |---|---|---|
//! | 1 | snappy | a raw snappy block (varint length, no framing) |
//! | 2 | zlib | one "variation" byte (0 = zlib, 1 = ISA-L; ignored by the reader), then a raw deflate stream (`compressor_zlib_winsize` -15, level `compressor_zlib_level` 5) |
//! | 3 | zstd | `u32` LE uncompressed length, then one zstd frame (level `compressor_zstd_level` 1) |
//! | 4 | lz4 | `u32` block count, `count × (u32 raw_len, u32 compressed_len)`, then the blocks, each an LZ4 block that may refer back into the earlier blocks' output (`LZ4_compress_fast_continue`) |
//!
//! Id 0 is "none", 5 (brotli) is never built into Debian's Ceph and is not supported here.
//! Every decompressor knows its output size (or bounds it while inflating, zlib) before it
//! allocates: output beyond the caller's limit is [`CompressError::TooLarge`], never an
//! allocation.

mod frame;

pub use frame::{compress_segments, decompress_segments, FLAG_COMPRESSED};

use std::cell::RefCell;

use thiserror::Error;

/// `Compressor::COMP_ALG_NONE`: "no compression" in COMPRESSION_REQUEST/DONE.
pub const METHOD_NONE: u32 = 0;
/// zlib level Ceph uses by default (`compressor_zlib_level`).
pub const ZLIB_LEVEL: u32 = 5;
/// zstd level Ceph uses by default (`compressor_zstd_level`).
pub const ZSTD_LEVEL: i32 = 1;

/// A compression method, numbered as Ceph's `Compressor::CompressionAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Method {
    /// Raw snappy.
    Snappy = 1,
    /// Raw deflate behind a one-byte variation mark.
    Zlib = 2,
    /// zstd behind a `u32` length.
    Zstd = 3,
    /// Ceph's framing of LZ4 blocks.
    Lz4 = 4,
}

impl Method {
    /// Every supported method, by id.
    pub const ALL: [Method; 4] = [Method::Snappy, Method::Zlib, Method::Zstd, Method::Lz4];

    /// The method with wire id `v` (`None` for 0, brotli and unknown ids).
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|m| *m as u32 == v)
    }

    /// Ceph's name (`snappy`, `zlib`, `zstd`, `lz4`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Snappy => "snappy",
            Method::Zlib => "zlib",
            Method::Zstd => "zstd",
            Method::Lz4 => "lz4",
        }
    }

    /// The method named `s` (Ceph's `get_comp_alg_type`, without `none` and brotli).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why compressed data was rejected (or could not be produced). Fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompressError {
    /// The output would exceed the limit (the size was known or reached before allocating
    /// more than the limit).
    #[error("{method} output of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Method.
        method: Method,
        /// Claimed or reached output length.
        len: u64,
        /// Our limit.
        limit: u64,
    },
    /// The input ends before the format says it should.
    #[error("{method} input truncated")]
    Truncated {
        /// Method.
        method: Method,
    },
    /// The compressed data is malformed.
    #[error("{method} data corrupt: {what}")]
    Corrupt {
        /// Method.
        method: Method,
        /// What was wrong.
        what: &'static str,
    },
    /// The output length differs from the one the format announced.
    #[error("{method} output of {got} bytes, announced {announced}")]
    LengthMismatch {
        /// Method.
        method: Method,
        /// Announced length.
        announced: u64,
        /// Actual length.
        got: u64,
    },
    /// The compressor itself failed (only zstd can).
    #[error("{method} compression failed")]
    Compress {
        /// Method.
        method: Method,
    },
    /// A compressed frame arrived on a connection that negotiated no compression.
    #[error("compressed frame without negotiated compression")]
    NotNegotiated,
}

/// Compresses `input` in Ceph's format for `method`, appending to `out`.
pub fn compress(method: Method, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressError> {
    match method {
        Method::Snappy => {
            append_with(out, snap::raw::max_compress_len(input.len()), |buf| {
                snap::raw::Encoder::new().compress(input, buf).ok()
            })
            .ok_or(CompressError::Compress { method })?;
        }
        Method::Zlib => {
            // Variation mark 0 (zlib), then raw deflate.
            out.push(0);
            deflate_raw(input, out).map_err(|_| CompressError::Compress { method })?;
        }
        Method::Zstd => {
            let len = u32::try_from(input.len()).map_err(|_| CompressError::Compress { method })?;
            out.extend_from_slice(&len.to_le_bytes());
            append_with(out, zstd::zstd_safe::compress_bound(input.len()), |buf| {
                ZSTD_TX.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.is_none() {
                        *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
                    }
                    c.as_mut()?.compress_to_buffer(input, buf).ok()
                })
            })
            .ok_or(CompressError::Compress { method })?;
        }
        Method::Lz4 => {
            // One block: Ceph makes its input contiguous first, so it sends one block too.
            let raw = u32::try_from(input.len()).map_err(|_| CompressError::Compress { method })?;
            let at = out.len();
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&raw.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            let n = append_with(
                out,
                lz4_flex::block::get_maximum_output_size(input.len()),
                |buf| lz4_flex::block::compress_into(input, buf).ok(),
            )
            .ok_or(CompressError::Compress { method })?;
            let n = u32::try_from(n).map_err(|_| CompressError::Compress { method })?;
            out[at + 8..at + 12].copy_from_slice(&n.to_le_bytes());
        }
    }
    Ok(())
}

/// Appends up to `bound` bytes written by `write` (which returns how many it wrote) to `out`;
/// returns that count, or `None` (with `out` as it was) when `write` failed.
fn append_with(
    out: &mut Vec<u8>,
    bound: usize,
    write: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Option<usize> {
    let start = out.len();
    out.resize(start + bound, 0);
    let n = write(&mut out[start..]);
    out.truncate(start + n.unwrap_or(0));
    n
}

/// Decompresses one segment compressed by Ceph with `method`. Output longer than `limit`
/// bytes is [`CompressError::TooLarge`], detected before allocating more than `limit`.
pub fn decompress(method: Method, input: &[u8], limit: usize) -> Result<Vec<u8>, CompressError> {
    let too_large = |len: u64| CompressError::TooLarge {
        method,
        len,
        limit: limit as u64,
    };
    match method {
        Method::Snappy => {
            let len = snap::raw::decompress_len(input).map_err(|_| CompressError::Corrupt {
                method,
                what: "bad length header",
            })?;
            if len > limit {
                return Err(too_large(len as u64));
            }
            let mut out = vec![0u8; len];
            let n = snap::raw::Decoder::new()
                .decompress(input, &mut out)
                .map_err(|_| CompressError::Corrupt {
                    method,
                    what: "bad snappy block",
                })?;
            if n != len {
                return Err(CompressError::LengthMismatch {
                    method,
                    announced: len as u64,
                    got: n as u64,
                });
            }
            Ok(out)
        }
        Method::Zlib => inflate_raw(input, limit),
        Method::Zstd => {
            let (head, body) = split_u32(input).ok_or(CompressError::Truncated { method })?;
            let len = head as usize;
            if len > limit {
                return Err(too_large(u64::from(head)));
            }
            let mut out = vec![0u8; len];
            let n = ZSTD_RX
                .with(|d| {
                    let mut d = d.borrow_mut();
                    if d.is_none() {
                        *d = Some(zstd::bulk::Decompressor::new()?);
                    }
                    match d.as_mut() {
                        Some(d) => d.decompress_to_buffer(body, &mut out[..]),
                        None => Err(std::io::ErrorKind::Other.into()),
                    }
                })
                .map_err(|_| CompressError::Corrupt {
                    method,
                    what: "bad zstd frame or longer than announced",
                })?;
            if n != len {
                return Err(CompressError::LengthMismatch {
                    method,
                    announced: u64::from(head),
                    got: n as u64,
                });
            }
            Ok(out)
        }
        Method::Lz4 => lz4_decompress(input, limit),
    }
}

thread_local! {
    /// Per-thread zstd and deflate contexts: creating them per segment (as Ceph does) costs
    /// more than compressing a 4 KiB message.
    static ZSTD_TX: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static ZSTD_RX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    static DEFLATE: RefCell<Option<flate2::Compress>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<flate2::Decompress>> = const { RefCell::new(None) };
}

/// Raw deflate of `input` appended to `out` (level [`ZLIB_LEVEL`], window 2^15).
fn deflate_raw(input: &[u8], out: &mut Vec<u8>) -> Result<(), flate2::CompressError> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    DEFLATE.with(|c| {
        let mut c = c.borrow_mut();
        let c = c.get_or_insert_with(|| Compress::new(Compression::new(ZLIB_LEVEL), false));
        c.reset();
        loop {
            // Since the reset, `total_in` counts the input consumed.
            let rest = usize::try_from(c.total_in())
                .ok()
                .and_then(|used| input.get(used..))
                .unwrap_or_default();
            out.reserve(rest.len() / 2 + 64);
            if c.compress_vec(rest, out, FlushCompress::Finish)? == Status::StreamEnd {
                return Ok(());
            }
        }
    })
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (h, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*h), rest))
}

/// zlib: skip the variation byte, inflate a raw deflate stream, growing the output in
/// steps and never past `limit + 1` bytes of capacity.
fn inflate_raw(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressError> {
    use flate2::Decompress;
    let method = Method::Zlib;
    let Some((_variation, rest)) = input.split_first() else {
        return Err(CompressError::Truncated { method });
    };
    INFLATE.with(|d| {
        let mut d = d.borrow_mut();
        let d = d.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        inflate_with(d, rest, limit)
    })
}

fn inflate_with(
    d: &mut flate2::Decompress,
    mut rest: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CompressError> {
    use flate2::{FlushDecompress, Status};
    let method = Method::Zlib;
    let cap = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(rest.len().saturating_mul(4).max(64).min(cap));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return Err(CompressError::TooLarge {
                    method,
                    len: out.len() as u64,
                    limit: limit as u64,
                });
            }
            out.reserve_exact(grow_step(out.len(), cap));
        }
        let (in0, out0) = (d.total_in(), out.len());
        let status = d
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|_| CompressError::Corrupt {
                method,
                what: "bad deflate stream",
            })?;
        let used = usize::try_from(d.total_in() - in0).unwrap_or(rest.len());
        rest = rest.get(used..).unwrap_or_default();
        if out.len() > limit {
            return Err(CompressError::TooLarge {
                method,
                len: out.len() as u64,
                limit: limit as u64,
            });
        }
        match status {
            Status::StreamEnd => {
                if !rest.is_empty() {
                    return Err(CompressError::Corrupt {
                        method,
                        what: "bytes after the end of the deflate stream",
                    });
                }
                return Ok(out);
            }
            Status::Ok | Status::BufError => {
                if used == 0 && out.len() == out0 && out.len() < out.capacity() {
                    return Err(CompressError::Truncated { method });
                }
            }
        }
    }
}

/// How much a full inflate buffer of `len` bytes grows: doubling from 4 KiB, never past `cap`
/// (`len < cap`).
fn grow_step(len: usize, cap: usize) -> usize {
    len.max(4096).min(cap - len)
}

/// lz4: Ceph's block list; every block may refer back into the output of the ones before.
fn lz4_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressError> {
    let method = Method::Lz4;
    let (count, mut rest) = split_u32(input).ok_or(CompressError::Truncated { method })?;
    let count = count as usize;
    if count > rest.len() / 8 {
        return Err(CompressError::Truncated { method });
    }
    let mut pairs = Vec::with_capacity(count);
    let (mut total_raw, mut total_comp) = (0u64, 0u64);
    for _ in 0..count {
        let (raw, r) = split_u32(rest).ok_or(CompressError::Truncated { method })?;
        let (comp, r) = split_u32(r).ok_or(CompressError::Truncated { method })?;
        rest = r;
        total_raw += u64::from(raw);
        total_comp += u64::from(comp);
        pairs.push((raw as usize, comp as usize));
    }
    if total_raw > limit as u64 {
        return Err(CompressError::TooLarge {
            method,
            len: total_raw,
            limit: limit as u64,
        });
    }
    if total_comp != rest.len() as u64 {
        return Err(CompressError::LengthMismatch {
            method,
            announced: total_comp,
            got: rest.len() as u64,
        });
    }
    let mut out = vec![0u8; total_raw as usize];
    let mut at = 0usize;
    for (raw, comp) in pairs {
        let (block, r) = rest.split_at(comp);
        rest = r;
        let (done, todo) = out.split_at_mut(at);
        let dict = &done[done.len().saturating_sub(64 << 10)..];
        let n = lz4_flex::block::decompress_into_with_dict(block, &mut todo[..raw], dict).map_err(
            |_| CompressError::Corrupt {
                method,
                what: "bad lz4 block",
            },
        )?;
        if n != raw {
            return Err(CompressError::LengthMismatch {
                method,
                announced: raw as u64,
                got: n as u64,
            });
        }
        at += raw;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_cephs() {
        assert_eq!(Method::from_u32(1), Some(Method::Snappy));
        assert_eq!(Method::from_u32(4), Some(Method::Lz4));
        assert_eq!(Method::from_u32(0), None);
        assert_eq!(Method::from_u32(5), None);
        assert_eq!(Method::from_name("zstd"), Some(Method::Zstd));
        assert_eq!(Method::from_name("brotli"), None);
    }
}
