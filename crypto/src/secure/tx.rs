//! Sealing secure-mode frames.

use super::backend::{Backend, Cipher};
use super::nonce::NonceSeq;
use super::{SecureError, BLOCK_LEN, INLINE_LEN, KEY_LEN, NONCE_LEN, SECURE_EPILOGUE_LEN, TAG_LEN};
use msgr2_codec::frame::{
    Preamble, SegmentDesc, Tag, LATE_STATUS_COMPLETE, MAX_SEGMENTS, PREAMBLE_LEN,
};
use msgr2_codec::Revision;

fn pad(len: usize) -> usize {
    len.div_ceil(BLOCK_LEN) * BLOCK_LEN
}

/// The sending half of a secure connection: one key schedule and one nonce sequence.
///
/// Frames are appended to a caller-owned `Vec` as plaintext and encrypted there in place, so
/// the only copy of the payload is the one into the output buffer, and each GCM operation is a
/// single AEAD call over one contiguous range (the one-shot AEAD APIs need contiguous input,
/// which is why there is no zero-copy gather variant: a frame's GCM unit spans several
/// segments plus padding, and would have to be assembled anyway).
#[derive(Debug)]
pub struct SecureTx {
    revision: Revision,
    cipher: Cipher,
    nonce: NonceSeq,
    failed: Option<SecureError>,
}

impl SecureTx {
    /// A sender for `revision` starting at `nonce` (see
    /// [`ConnectionSecret::tx_nonce`](super::ConnectionSecret::tx_nonce)).
    pub fn new(
        backend: Backend,
        key: &[u8; KEY_LEN],
        nonce: [u8; NONCE_LEN],
        revision: Revision,
    ) -> Result<Self, SecureError> {
        Ok(Self {
            revision,
            cipher: Cipher::new(backend, key, false)?,
            nonce: NonceSeq::new(nonce, revision),
            failed: None,
        })
    }

    /// The framing revision this sender seals for.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The nonce the next GCM operation will use.
    pub fn next_nonce(&self) -> [u8; NONCE_LEN] {
        self.nonce.current()
    }

    /// GCM operations left before the nonce would wrap to its initial value (2^32 per rev0
    /// connection, 2^64 per rev1 connection).
    pub fn remaining_nonces(&self) -> u128 {
        self.nonce.remaining()
    }

    /// Skips `n` nonces without using them. Never reuses a nonce, but the peer's receiver must
    /// skip the same number to stay in step; meant for tests that need to start close to
    /// nonce exhaustion.
    pub fn skip_nonces(&mut self, n: u64) -> Result<(), SecureError> {
        self.nonce.skip(n)
    }

    /// Number of bytes [`SecureTx::seal_frame`] appends for segments of these lengths.
    pub fn wire_len(revision: Revision, segment_lens: &[usize]) -> usize {
        let n = segment_lens
            .iter()
            .rposition(|&l| l > 0)
            .map_or(1, |i| i + 1);
        let len0 = segment_lens.first().copied().unwrap_or(0);
        let rest: usize = segment_lens.iter().take(n).skip(1).map(|&l| pad(l)).sum();
        match revision {
            Revision::Rev1 => {
                let first = PREAMBLE_LEN + INLINE_LEN + TAG_LEN;
                let second = if pad(len0) > INLINE_LEN {
                    pad(len0) - INLINE_LEN + TAG_LEN
                } else {
                    0
                };
                let third = if n > 1 {
                    rest + SECURE_EPILOGUE_LEN + TAG_LEN
                } else {
                    0
                };
                first + second + third
            }
            Revision::Rev0 => PREAMBLE_LEN + pad(len0) + rest + SECURE_EPILOGUE_LEN + TAG_LEN,
        }
    }

    /// Appends one sealed frame to `out`: `tag` with `segments` (bytes, alignment hint),
    /// trailing empty segments dropped from the count as Ceph does.
    ///
    /// On error nothing is appended. [`SecureError::NoncesExhausted`] (checked for the whole
    /// frame before its first GCM operation, so a frame is never half-sealed) and backend
    /// failures are fatal: every later call fails too. Argument errors
    /// ([`SecureError::TooManySegments`], [`SecureError::SegmentTooLarge`]) consume nothing.
    pub fn seal_frame(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
        out: &mut Vec<u8>,
    ) -> Result<(), SecureError> {
        self.seal_frame_flags(tag, segments, 0, out)
    }

    /// [`SecureTx::seal_frame`] with preamble byte 26 (`flags`) set, e.g. to
    /// `FLAG_COMPRESSED` for segments that were compressed before sealing.
    pub fn seal_frame_flags(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
        flags: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), SecureError> {
        if let Some(e) = &self.failed {
            return Err(SecureError::Poisoned(Box::new(e.clone())));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(SecureError::TooManySegments(segments.len()));
        }
        let mut descs = [SegmentDesc::default(); MAX_SEGMENTS];
        for (index, (d, (bytes, align))) in descs.iter_mut().zip(segments).enumerate() {
            d.len = u32::try_from(bytes.len()).map_err(|_| SecureError::SegmentTooLarge {
                index,
                len: bytes.len(),
            })?;
            d.align = *align;
        }
        let mut preamble = Preamble::new(tag, &descs[..segments.len()]);
        preamble.flags = flags;
        let n = usize::from(preamble.num_segments);
        let seg = |i: usize| segments.get(i).map_or(&[][..], |s| s.0);
        let ops = match self.revision {
            Revision::Rev1 => 1 + usize::from(pad(seg(0).len()) > INLINE_LEN) + usize::from(n > 1),
            Revision::Rev0 => 1,
        };
        if let Err(e) = self.nonce.reserve(ops) {
            self.failed = Some(e.clone());
            return Err(e);
        }
        let lens: Vec<usize> = (0..n).map(|i| seg(i).len()).collect();
        out.reserve(Self::wire_len(self.revision, &lens));
        let start = out.len();
        let result = match self.revision {
            Revision::Rev1 => self.seal_rev1(&preamble.encode(), n, &seg, out),
            Revision::Rev0 => self.seal_rev0(&preamble.encode(), n, &seg, out),
        };
        if let Err(e) = result {
            out.truncate(start);
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn seal_rev1<'a>(
        &mut self,
        preamble: &[u8; PREAMBLE_LEN],
        n: usize,
        seg: &impl Fn(usize) -> &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SecureError> {
        let seg0 = seg(0);
        // GCM#1: preamble ‖ first 48 bytes of the padded first segment.
        let at = out.len();
        out.extend_from_slice(preamble);
        let inline = seg0.len().min(INLINE_LEN);
        out.extend_from_slice(&seg0[..inline]);
        out.resize(at + PREAMBLE_LEN + INLINE_LEN, 0);
        self.seal_from(out, at)?;
        // GCM#2: the rest of the padded first segment.
        if pad(seg0.len()) > INLINE_LEN {
            let at = out.len();
            out.extend_from_slice(&seg0[INLINE_LEN..]);
            out.resize(at + pad(seg0.len()) - INLINE_LEN, 0);
            self.seal_from(out, at)?;
        }
        // GCM#3: padded later segments ‖ epilogue.
        if n > 1 {
            let at = out.len();
            for i in 1..n {
                Self::push_padded(out, seg(i));
            }
            let mut epilogue = [0u8; SECURE_EPILOGUE_LEN];
            epilogue[0] = LATE_STATUS_COMPLETE;
            out.extend_from_slice(&epilogue);
            self.seal_from(out, at)?;
        }
        Ok(())
    }

    fn seal_rev0<'a>(
        &mut self,
        preamble: &[u8; PREAMBLE_LEN],
        n: usize,
        seg: &impl Fn(usize) -> &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SecureError> {
        let at = out.len();
        out.extend_from_slice(preamble);
        for i in 0..n {
            Self::push_padded(out, seg(i));
        }
        // Epilogue: late_flags = 0 (complete), 15 zero bytes.
        out.extend_from_slice(&[0u8; SECURE_EPILOGUE_LEN]);
        self.seal_from(out, at)
    }

    fn push_padded(out: &mut Vec<u8>, s: &[u8]) {
        let at = out.len();
        out.extend_from_slice(s);
        out.resize(at + pad(s.len()), 0);
    }

    /// One GCM operation over `out[from..]`, in place, tag appended.
    fn seal_from(&mut self, out: &mut Vec<u8>, from: usize) -> Result<(), SecureError> {
        let nonce = self.nonce.take();
        let tag = self.cipher.seal(&nonce, &mut out[from..])?;
        out.extend_from_slice(&tag);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §3.6 sizes.
    #[test]
    fn wire_lengths() {
        let r1 = Revision::Rev1;
        assert_eq!(SecureTx::wire_len(r1, &[32]), 96); // AUTH_SIGNATURE
        assert_eq!(SecureTx::wire_len(r1, &[8]), 96); // KEEPALIVE2
        assert_eq!(SecureTx::wire_len(r1, &[123]), 192); // CLIENT_IDENT
        assert_eq!(SecureTx::wire_len(r1, &[0]), 96);
        assert_eq!(SecureTx::wire_len(r1, &[48]), 96);
        assert_eq!(SecureTx::wire_len(r1, &[49]), 96 + 16 + 16);
        assert_eq!(SecureTx::wire_len(r1, &[41, 205]), 336);
        assert_eq!(SecureTx::wire_len(r1, &[41, 0, 0, 0]), 96);
        assert_eq!(SecureTx::wire_len(r1, &[41, 0, 0, 4096]), 96 + 4096 + 32);
        let r0 = Revision::Rev0;
        assert_eq!(SecureTx::wire_len(r0, &[32]), 32 + 32 + 32);
        assert_eq!(SecureTx::wire_len(r0, &[0]), 32 + 32);
    }

    #[test]
    fn sealed_sizes_match_wire_len_and_nonces_advance() {
        let key = [1u8; 16];
        let n0 = [2u8; 12];
        for (rev, lens, ops) in [
            (Revision::Rev1, vec![32usize], 1u64),
            (Revision::Rev1, vec![123], 2),
            (Revision::Rev1, vec![41, 205], 2),
            (Revision::Rev1, vec![100, 0, 0, 1], 3),
            (Revision::Rev0, vec![100, 0, 0, 1], 1),
        ] {
            let mut tx = SecureTx::new(Backend::AwsLc, &key, n0, rev).unwrap();
            let data: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0xab; l]).collect();
            let segs: Vec<(&[u8], u16)> = data.iter().map(|d| (&d[..], 8)).collect();
            let mut out = vec![1, 2, 3];
            tx.seal_frame(Tag::Message, &segs, &mut out).unwrap();
            assert_eq!(out.len() - 3, SecureTx::wire_len(rev, &lens));
            assert_eq!(&out[..3], &[1, 2, 3]);
            let mut expect = NonceSeq::new(n0, rev);
            expect.skip(ops).unwrap();
            assert_eq!(tx.next_nonce(), expect.current(), "{lens:?}");
        }
    }

    #[test]
    fn argument_errors() {
        let mut tx = SecureTx::new(Backend::AwsLc, &[0; 16], [0; 12], Revision::Rev1).unwrap();
        let mut out = Vec::new();
        let e = [0u8; 0];
        let five = [(&e[..], 8u16); 5];
        assert_eq!(
            tx.seal_frame(Tag::Message, &five, &mut out),
            Err(SecureError::TooManySegments(5))
        );
        assert!(out.is_empty());
        // Still usable afterwards.
        tx.seal_frame(Tag::Keepalive2, &[(&[0u8; 8], 8)], &mut out)
            .unwrap();
        assert_eq!(out.len(), 96);
    }

    #[test]
    fn exhaustion_is_checked_per_frame_and_poisons() {
        let mut tx = SecureTx::new(Backend::AwsLc, &[0; 16], [0; 12], Revision::Rev1).unwrap();
        tx.skip_nonces(u64::MAX - 1).unwrap(); // 2 operations left
        let mut out = Vec::new();
        let big = [7u8; 100];
        let three_ops = [(&big[..], 8u16), (&big[..], 8)];
        assert_eq!(
            tx.seal_frame(Tag::Message, &three_ops, &mut out),
            Err(SecureError::NoncesExhausted)
        );
        assert!(out.is_empty());
        assert!(matches!(
            tx.seal_frame(Tag::Keepalive2, &[(&[0u8; 8], 8)], &mut out),
            Err(SecureError::Poisoned(_))
        ));
        assert!(out.is_empty());
    }
}
