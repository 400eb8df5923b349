//! The `raw` baseline framing used by `msgr2 bench`: the same engine moving the same payload
//! bytes over TCP with no msgr2 framing, so that msgr2's cost can be measured as a ratio.
//!
//! A raw message is a 16-byte header, `u32 len` + `u32 flags` + `u64 tid` (little-endian),
//! followed by `len` payload bytes. There are no crcs, no encryption and no handshake.

use crate::data::{Data, PAGE};
use crate::encoding::{DecodeError, Decoder};
use crate::incremental::Incremental;

/// Size of the raw header.
pub const RAW_HEADER_LEN: usize = 16;

/// A raw message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawHeader {
    /// Payload length.
    pub len: u32,
    /// Free for the benchmark (e.g. "this is a reply").
    pub flags: u32,
    /// Transaction id.
    pub tid: u64,
}

impl RawHeader {
    /// The 16-byte wire form.
    pub fn encode(&self) -> [u8; RAW_HEADER_LEN] {
        let mut b = [0u8; RAW_HEADER_LEN];
        b[..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..].copy_from_slice(&self.tid.to_le_bytes());
        b
    }

    /// Decodes a header, rejecting lengths over `max_len`.
    pub fn decode(b: &[u8; RAW_HEADER_LEN], max_len: u32) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(b);
        let h = Self {
            len: d.u32("raw len")?,
            flags: d.u32("raw flags")?,
            tid: d.u64("raw tid")?,
        };
        if h.len > max_len {
            return Err(DecodeError::TooLong {
                what: "raw payload",
                len: u64::from(h.len),
                limit: u64::from(max_len),
            });
        }
        Ok(h)
    }
}

/// A complete raw message: header and payload (page-aligned from 4 KiB up, from the same
/// recycled buffers as msgr2 data segments: see [`crate::Data`]).
pub type RawMessage = (RawHeader, Data);

/// Incremental decoder for raw messages (any split of the input works).
#[derive(Debug)]
pub struct RawDecoder {
    max_len: u32,
    head: [u8; RAW_HEADER_LEN],
    /// Bytes of the current item (header or payload) received so far.
    filled: usize,
    current: Option<RawMessage>,
}

impl RawDecoder {
    /// A decoder accepting payloads up to `max_len` bytes.
    pub fn new(max_len: u32) -> Self {
        Self {
            max_len,
            head: [0; RAW_HEADER_LEN],
            filled: 0,
            current: None,
        }
    }

    /// The unfilled part of the current item (header or payload): receive into it, then call
    /// [`RawDecoder::advance`].
    pub fn dest(&mut self) -> &mut [u8] {
        match &mut self.current {
            // Payload buffers are allocated at their full length; `filled` counts how
            // much of the current item has arrived.
            Some((_, buf)) => &mut buf.make_mut()[self.filled..],
            None => &mut self.head[self.filled..],
        }
    }

    /// Records `n` bytes written into [`RawDecoder::dest`]; returns a complete message.
    pub fn advance(&mut self, n: usize) -> Result<Option<RawMessage>, DecodeError> {
        match &mut self.current {
            None => {
                self.filled += n;
                if self.filled < RAW_HEADER_LEN {
                    return Ok(None);
                }
                let h = RawHeader::decode(&self.head, self.max_len)?;
                self.filled = 0;
                if h.len == 0 {
                    return Ok(Some((h, Data::new())));
                }
                let len = h.len as usize;
                let buf = if len >= PAGE {
                    Data::for_overwrite_aligned(len)
                } else {
                    Data::from(vec![0; len])
                };
                self.current = Some((h, buf));
                Ok(None)
            }
            Some((h, buf)) => {
                self.filled += n;
                if self.filled < buf.len() {
                    return Ok(None);
                }
                let h = *h;
                let buf = std::mem::take(buf);
                self.current = None;
                self.filled = 0;
                Ok(Some((h, buf)))
            }
        }
    }

    /// Payload bytes of the current message still to come (0 between messages).
    pub fn payload_left(&self) -> usize {
        self.current
            .as_ref()
            .map_or(0, |(_, buf)| buf.len() - self.filled)
    }

    /// Lends the current payload's buffer when at least `min` bytes of it are still to come,
    /// with the offset the rest starts at, so it can be received into directly; give it back
    /// with [`RawDecoder::return_payload`].
    pub fn lend_payload(&mut self, min: usize) -> Option<(Data, usize)> {
        if self.payload_left() < min.max(1) {
            return None;
        }
        let (_, buf) = self.current.as_mut()?;
        Some((std::mem::take(buf), self.filled))
    }

    /// Gives back a buffer from [`RawDecoder::lend_payload`] with `n` more bytes written after
    /// its offset; returns the message if that completed it.
    pub fn return_payload(
        &mut self,
        buf: Data,
        n: usize,
    ) -> Result<Option<RawMessage>, DecodeError> {
        let Some((_, slot)) = self.current.as_mut() else {
            return Ok(None);
        };
        *slot = buf;
        self.advance(n)
    }

    /// Copies from `input` until one message completes; returns bytes used and the message.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<RawMessage>), DecodeError> {
        Incremental::feed(self, input)
    }
}

impl Incremental for RawDecoder {
    type Item = RawMessage;
    type Error = DecodeError;
    fn dest(&mut self) -> &mut [u8] {
        RawDecoder::dest(self)
    }
    fn advance(&mut self, n: usize) -> Result<Option<RawMessage>, DecodeError> {
        RawDecoder::advance(self, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_when_exactly_min_bytes_are_to_come() {
        let mut d = RawDecoder::new(1 << 20);
        let h = RawHeader {
            len: 100,
            flags: 0,
            tid: 1,
        }
        .encode();
        assert_eq!(d.feed(&h).unwrap().0, RAW_HEADER_LEN);
        assert_eq!(d.payload_left(), 100);
        assert!(d.lend_payload(101).is_none());
        let (buf, off) = d.lend_payload(100).unwrap();
        assert_eq!((buf.len(), off), (100, 0));
    }

    #[test]
    fn header_length_limit_is_inclusive() {
        let h = RawHeader {
            len: 4096,
            flags: 2,
            tid: 9,
        };
        let b = h.encode();
        let back = RawHeader::decode(&b, 4096).unwrap();
        assert_eq!((back.len, back.flags, back.tid), (4096, 2, 9));
        assert_eq!(
            RawHeader::decode(&b, 4095).map(|h| h.len),
            Err(DecodeError::TooLong {
                what: "raw payload",
                len: 4096,
                limit: 4095
            })
        );
    }

    #[test]
    fn any_split_decodes_and_limits_hold() {
        let mut wire = Vec::new();
        for (i, len) in [0usize, 1, 100, 70_000].iter().enumerate() {
            wire.extend_from_slice(
                &RawHeader {
                    len: *len as u32,
                    flags: 1,
                    tid: i as u64,
                }
                .encode(),
            );
            wire.extend(std::iter::repeat_n(i as u8, *len));
        }
        for chunk in [1, 7, 16, 4096, usize::MAX] {
            let mut d = RawDecoder::new(1 << 20);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk.min(wire.len())) {
                let mut p = piece;
                while !p.is_empty() {
                    let (n, m) = d.feed(p).unwrap();
                    p = &p[n..];
                    got.extend(m);
                }
            }
            assert_eq!(
                got.iter().map(|m| (m.0.tid, m.1.len())).collect::<Vec<_>>(),
                vec![(0, 0), (1, 1), (2, 100), (3, 70_000)]
            );
        }
        let big = RawHeader {
            len: u32::MAX,
            flags: 0,
            tid: 0,
        }
        .encode();
        // a lent payload completes the message when given back filled
        let mut d = RawDecoder::new(1 << 20);
        let head = wire.len() - 70_000 + 5; // up to 5 bytes into tid 3's payload
        let mut p = &wire[..head];
        let mut done = 0;
        while !p.is_empty() {
            let (n, m) = d.feed(p).unwrap();
            p = &p[n..];
            done += usize::from(m.is_some());
        }
        assert_eq!(done, 3);
        assert_eq!(d.payload_left(), 70_000 - 5);
        assert!(d.lend_payload(80_000).is_none());
        let (mut buf, off) = d.lend_payload(4096).unwrap();
        assert!(buf.is_page_aligned());
        buf.make_mut()[off..].fill(3);
        let (h, p) = d.return_payload(buf, 70_000 - 5).unwrap().unwrap();
        assert_eq!((h.tid, p.len(), p[69_999]), (3, 70_000, 3));
        assert_eq!(d.payload_left(), 0);
        assert!(matches!(
            RawDecoder::new(1 << 20).feed(&big),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
