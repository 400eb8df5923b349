//! Ceph's `encode()`/`decode()` primitives.
//!
//! All integers are little-endian. A `blob`/`string` is a `u32` length plus bytes, a vector is
//! a `u32` count plus elements, a map is a `u32` count plus key/value pairs. `ENCODE_START`
//! structs carry `u8 struct_v, u8 struct_compat, u32 struct_len` and decoders skip unknown
//! trailing bytes inside `struct_len`; old-style ("V1") structs carry only a leading `u8`
//! version.
//!
//! Decoding never trusts a length: every count and size is checked against the bytes that
//! are actually present before anything is allocated, so a peer claiming a 4 GiB blob gets
//! [`DecodeError::Truncated`], not an allocation.

use thiserror::Error;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before a field was complete.
    #[error("truncated: {what} needs {need} bytes at offset {offset}, {have} left")]
    Truncated {
        /// Field being decoded.
        what: &'static str,
        /// Offset in the payload where the field starts.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// Bytes were left over after a complete payload.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// Payload that was decoded.
        what: &'static str,
        /// Number of unread bytes.
        count: usize,
    },
    /// A field held a value outside its allowed set.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// Field name.
        what: &'static str,
        /// The offending value, for the log.
        value: u64,
    },
    /// A versioned struct is newer than we can read (its compat version is above ours).
    #[error("{what}: struct compat version {compat} is newer than supported {supported}")]
    UnsupportedVersion {
        /// Struct name.
        what: &'static str,
        /// `struct_compat` on the wire.
        compat: u8,
        /// Highest version we decode.
        supported: u8,
    },
    /// A length or count exceeds a limit we set.
    #[error("{what}: length {len} exceeds limit {limit}")]
    TooLong {
        /// Field name.
        what: &'static str,
        /// Claimed length.
        len: u64,
        /// Our limit.
        limit: u64,
    },
    /// A string was not valid UTF-8.
    #[error("{what}: not valid UTF-8")]
    BadUtf8 {
        /// Field name.
        what: &'static str,
    },
}

/// A read cursor over an encoded payload.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts decoding `buf` from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                need: n,
                have: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    /// Little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    /// Little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    /// Little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// Little-endian `i32`.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    /// Little-endian `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    /// A Ceph `bool`: one byte; any non-zero value is true, as in Ceph's decoder.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.u8(what)? != 0)
    }

    /// A `blob` (`u32` length + bytes), borrowed from the input.
    pub fn blob(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.bytes(len, what)
    }

    /// A `string` (`u32` length + UTF-8 bytes).
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.blob(what)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8 { what })
    }

    /// A vector count, checked so that `count * min_elem_size` bytes can still be present.
    pub fn count(
        &mut self,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        let need = n.saturating_mul(min_elem_size.max(1));
        if need > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                need,
                have: self.remaining(),
            });
        }
        Ok(n)
    }

    /// `vec<u32>`.
    pub fn vec_u32(&mut self, what: &'static str) -> Result<Vec<u32>, DecodeError> {
        let n = self.count(4, what)?;
        (0..n).map(|_| self.u32(what)).collect()
    }

    /// Reads an `ENCODE_START` header, checks `struct_compat <= supported`, and returns a
    /// decoder over exactly the struct body plus the struct version. The caller decodes what
    /// it knows from the returned decoder and ignores the rest (newer trailing fields).
    pub fn versioned(
        &mut self,
        supported: u8,
        what: &'static str,
    ) -> Result<(u8, Decoder<'a>), DecodeError> {
        let v = self.u8(what)?;
        let compat = self.u8(what)?;
        if compat > supported {
            return Err(DecodeError::UnsupportedVersion {
                what,
                compat,
                supported,
            });
        }
        let body = self.blob(what)?;
        Ok((v, Decoder::new(body)))
    }
}

/// Append-only encoding helpers for `Vec<u8>`, mirroring [`Decoder`].
pub trait Encode {
    /// `u8`.
    fn put_u8(&mut self, v: u8);
    /// Little-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Little-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Little-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Little-endian `i32`.
    fn put_i32(&mut self, v: i32);
    /// Little-endian `i64`.
    fn put_i64(&mut self, v: i64);
    /// A Ceph `bool`.
    fn put_bool(&mut self, v: bool);
    /// A `blob`: `u32` length + bytes.
    fn put_blob(&mut self, b: &[u8]);
    /// `vec<u32>`.
    fn put_vec_u32(&mut self, v: &[u32]);
    /// Writes an `ENCODE_START(v, compat)` header, runs `body`, and back-patches `struct_len`.
    fn put_versioned(&mut self, v: u8, compat: u8, body: impl FnOnce(&mut Self));
}

impl Encode for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
    fn put_blob(&mut self, b: &[u8]) {
        self.put_u32(len_u32(b.len()));
        self.extend_from_slice(b);
    }
    fn put_vec_u32(&mut self, v: &[u32]) {
        self.put_u32(len_u32(v.len()));
        for x in v {
            self.put_u32(*x);
        }
    }
    fn put_versioned(&mut self, v: u8, compat: u8, body: impl FnOnce(&mut Self)) {
        self.push(v);
        self.push(compat);
        let at = self.len();
        self.put_u32(0);
        body(self);
        let len = len_u32(self.len() - at - 4);
        self[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Converts a local length to the wire's `u32`.
///
/// Lengths we encode come from our own buffers; one above `u32::MAX` cannot be represented on
/// the wire at all, and is a bug in the caller rather than bad peer input.
pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("length exceeds the wire's u32 range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_and_remaining_track_reads() {
        let b = [1u8, 0, 0, 0, 9, 8];
        let mut d = Decoder::new(&b);
        assert_eq!((d.position(), d.remaining()), (0, 6));
        assert_eq!(d.u32("x"), Ok(1));
        assert_eq!((d.position(), d.remaining(), d.rest()), (4, 2, &b[4..]));
    }

    #[test]
    fn versioned_skips_unknown_trailing_fields() {
        let mut b = Vec::new();
        b.put_versioned(3, 1, |b| {
            b.put_u32(7);
            b.put_u64(99); // a field added by a newer version
        });
        b.put_u8(0xAB);
        let mut d = Decoder::new(&b);
        let (v, mut body) = d.versioned(1, "s").unwrap();
        assert_eq!(v, 3);
        assert_eq!(body.u32("x").unwrap(), 7);
        assert_eq!(d.u8("after").unwrap(), 0xAB);
        d.finish("s").unwrap();
    }

    #[test]
    fn versioned_rejects_newer_compat() {
        let mut b = Vec::new();
        b.put_versioned(5, 4, |b| b.put_u8(0));
        assert_eq!(
            Decoder::new(&b).versioned(3, "s").unwrap_err(),
            DecodeError::UnsupportedVersion {
                what: "s",
                compat: 4,
                supported: 3
            }
        );
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let b = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            Decoder::new(&b).vec_u32("v"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Decoder::new(&b).blob("b"),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
