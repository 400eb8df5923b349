//! The framing in force on one connection: crc mode (either revision) until the mode switch,
//! then crc or secure. One value per direction, switched together at the mode switch.

use msgr2_codec::banner::Revision;
use msgr2_codec::frame::{Fed, Frame, FrameDecoder, FrameParts, Limits, Tag};
use msgr2_codec::{Data, DataAlloc};
use msgr2_crypto::secure::{ConnectionSecret, Role as SecureRole, SecureError, SecureRx, SecureTx};

use crate::error::ProtoError;

fn secure_err(e: SecureError) -> ProtoError {
    ProtoError::Secure(e)
}

/// Outgoing framing.
pub enum TxFraming {
    /// crc mode in the given revision.
    Crc(Revision),
    /// Secure mode (AES-128-GCM).
    Secure(Box<SecureTx>),
}

impl TxFraming {
    /// Appends one frame to `out`.
    pub fn frame(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
        out: &mut Vec<u8>,
    ) -> Result<(), ProtoError> {
        self.frame_flags(tag, segments, 0, out)
    }

    /// Appends one frame with preamble `flags` (byte 26) to `out`.
    pub fn frame_flags(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
        flags: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtoError> {
        match self {
            TxFraming::Crc(rev) => {
                append_crc_frame(*rev, tag, segments, flags, out);
                Ok(())
            }
            TxFraming::Secure(tx) => tx
                .seal_frame_flags(tag, segments, flags, out)
                .map_err(secure_err),
        }
    }
}

/// [`msgr2_codec::frame::assemble`] without its per-frame piece lists (two small allocations per frame, which
/// showed in 4 KiB streaming profiles): the same bytes appended straight to `out`.
fn append_crc_frame(
    rev: Revision,
    tag: Tag,
    segments: &[(&[u8], u16)],
    flags: u8,
    out: &mut Vec<u8>,
) {
    let mut parts = FrameParts::new(rev, tag, segments);
    if flags != 0 {
        parts = parts.with_flags(flags);
    }
    out.reserve(parts.wire_len());
    out.extend_from_slice(&parts.preamble_bytes);
    let n = usize::from(parts.preamble.num_segments);
    for (i, (seg, _)) in segments.iter().take(n).enumerate() {
        out.extend_from_slice(seg);
        if i == 0 && parts.has_crc0() {
            out.extend_from_slice(&parts.crc0);
        }
    }
    out.extend_from_slice(&parts.epilogue[..parts.epilogue_len]);
}

/// Incoming framing.
pub enum RxFraming {
    /// crc mode.
    Crc(Box<FrameDecoder<DataAlloc>>),
    /// Secure mode (AES-128-GCM).
    Secure(Box<SecureRx<DataAlloc>>),
}

impl RxFraming {
    /// crc-mode decoding (every connection starts with it).
    pub fn crc(rev: Revision, limits: Limits) -> Self {
        RxFraming::Crc(Box::new(FrameDecoder::with_alloc(
            rev,
            limits,
            DataAlloc::default(),
        )))
    }

    /// Whether the decoder sits between frames.
    pub fn at_boundary(&self) -> bool {
        match self {
            RxFraming::Crc(d) => d.at_boundary(),
            RxFraming::Secure(d) => d.at_boundary(),
        }
    }

    /// Feeds bytes; stops after one complete frame.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed<Data>, ProtoError> {
        match self {
            RxFraming::Crc(d) => Ok(d.feed(input)?),
            RxFraming::Secure(d) => d.feed(input).map_err(secure_err),
        }
    }
}

impl RxFraming {
    /// Crc mode: lends the current segment's buffer out when at least `min` bytes of it are
    /// still to come (see [`FrameDecoder::lend_segment`]). Secure mode never lends: its
    /// segments are decrypted after the tag arrives.
    pub fn lend_segment(&mut self, min: usize) -> Option<(Data, usize)> {
        match self {
            RxFraming::Crc(d) => d.lend_segment(min),
            RxFraming::Secure(_) => None,
        }
    }

    /// Bytes of the current segment still to come if it could be lent (crc mode), else 0.
    pub fn segment_left(&self) -> usize {
        match self {
            RxFraming::Crc(d) => d.segment_left(),
            RxFraming::Secure(_) => 0,
        }
    }

    /// Takes a lent segment buffer back with `n` more bytes in it.
    pub fn return_segment(
        &mut self,
        buf: Data,
        n: usize,
    ) -> Result<Option<Frame<Data>>, ProtoError> {
        match self {
            RxFraming::Crc(d) => Ok(d.return_segment(buf, n)?),
            RxFraming::Secure(_) => Err(ProtoError::Frame(msgr2_codec::frame::FrameError::NotLent)),
        }
    }

    /// Secure-mode decoding of what `role`'s peer sends.
    pub fn secure(
        secret: &ConnectionSecret,
        role: SecureRole,
        rev: Revision,
        limits: Limits,
    ) -> Result<Self, ProtoError> {
        Ok(RxFraming::Secure(Box::new(
            secret
                .rx_with_alloc(role, rev, limits, DataAlloc::default())
                .map_err(secure_err)?,
        )))
    }
}

/// Secure-mode framing for both directions from the connection secret.
pub(crate) fn secure(
    rev: Revision,
    secret: &[u8],
    is_server: bool,
    limits: Limits,
) -> Result<(TxFraming, RxFraming), ProtoError> {
    let role = if is_server {
        SecureRole::Server
    } else {
        SecureRole::Client
    };
    let s = ConnectionSecret::new(secret).map_err(secure_err)?;
    let tx = s.tx(role, rev).map_err(secure_err)?;
    let rx = s
        .rx_with_alloc(role, rev, limits, DataAlloc::default())
        .map_err(secure_err)?;
    Ok((
        TxFraming::Secure(Box::new(tx)),
        RxFraming::Secure(Box::new(rx)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgr2_codec::frame::assemble;

    #[test]
    fn append_crc_frame_matches_assemble() {
        let a = vec![1u8; 53];
        let b = vec![2u8; 7];
        let d = vec![3u8; 5000];
        let cases: [&[(&[u8], u16)]; 5] = [
            &[(&a, 8)],
            &[(&a, 8), (&b, 8), (&[], 8), (&d, 4096)],
            &[(&[], 8), (&b, 8)],
            &[(&a, 8), (&[], 8), (&[], 8), (&[], 4096)],
            &[],
        ];
        for rev in [Revision::Rev0, Revision::Rev1] {
            for segs in cases {
                let (mut x, mut y) = (vec![9u8], vec![9u8]);
                assemble(rev, Tag::Message, segs, &mut x);
                append_crc_frame(rev, Tag::Message, segs, 0, &mut y);
                assert_eq!(x, y);
            }
        }
    }
}
