//! GCM nonce sequences.
//!
//! A nonce is `u32 fixed (LE) ‖ u64 counter (LE)`. rev1 increments the 64-bit counter (bytes
//! 4..12) after every GCM operation; rev0 increments the 32-bit field (bytes 0..4) instead,
//! so it comes back to its start after 2^32 operations. Ceph's sender refuses ("out of
//! nonces") to use the initial nonce a second time; [`NonceSeq`] does the same on both
//! directions, and checks a whole frame's worth of operations before the first one so a frame
//! is never half-sealed.

use super::{SecureError, NONCE_LEN};
use msgr2_codec::Revision;

/// The nonce that follows `nonce` in `revision`'s sequence (one GCM operation later).
///
/// rev1: `1c1d1e1f 2021222324252627` → `1c1d1e1f 2121222324252627`;
/// rev0: `1c1d1e1f 2021222324252627` → `1d1d1e1f 2021222324252627`.
pub fn next_nonce(nonce: &[u8; NONCE_LEN], revision: Revision) -> [u8; NONCE_LEN] {
    advance(nonce, revision, 1)
}

/// `nonce` advanced by `n` operations (modulo the counter's width).
fn advance(nonce: &[u8; NONCE_LEN], revision: Revision, n: u64) -> [u8; NONCE_LEN] {
    let mut out = *nonce;
    match revision {
        Revision::Rev1 => {
            let mut c = [0u8; 8];
            c.copy_from_slice(&nonce[4..]);
            let v = u64::from_le_bytes(c).wrapping_add(n);
            out[4..].copy_from_slice(&v.to_le_bytes());
        }
        Revision::Rev0 => {
            let v =
                u32::from_le_bytes([nonce[0], nonce[1], nonce[2], nonce[3]]).wrapping_add(n as u32);
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// The nonce state of one direction, with wrap detection.
#[derive(Clone)]
pub(crate) struct NonceSeq {
    revision: Revision,
    current: [u8; NONCE_LEN],
    /// Operations performed since the initial nonce.
    used: u128,
}

impl std::fmt::Debug for NonceSeq {
    /// Shows the revision and how many nonces were used, not the nonce itself (it is derived
    /// from the connection secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSeq")
            .field("revision", &self.revision)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl NonceSeq {
    pub(crate) fn new(initial: [u8; NONCE_LEN], revision: Revision) -> Self {
        Self {
            revision,
            current: initial,
            used: 0,
        }
    }

    /// Number of distinct nonces in the sequence: 2^32 (rev0) or 2^64 (rev1).
    fn period(&self) -> u128 {
        match self.revision {
            Revision::Rev0 => 1 << 32,
            Revision::Rev1 => 1 << 64,
        }
    }

    /// Operations left before the initial nonce would come round again.
    pub(crate) fn remaining(&self) -> u128 {
        self.period() - self.used
    }

    /// Fails unless `ops` more operations can run without reusing a nonce.
    pub(crate) fn reserve(&self, ops: usize) -> Result<(), SecureError> {
        if ops as u128 > self.remaining() {
            return Err(SecureError::NoncesExhausted);
        }
        Ok(())
    }

    /// The nonce for the next operation; the caller must have [`reserve`](Self::reserve)d it.
    pub(crate) fn take(&mut self) -> [u8; NONCE_LEN] {
        debug_assert!(self.remaining() > 0, "nonce taken without reserve");
        let n = self.current;
        self.current = advance(&self.current, self.revision, 1);
        self.used += 1;
        n
    }

    /// The nonce the next operation will use.
    pub(crate) fn current(&self) -> [u8; NONCE_LEN] {
        self.current
    }

    /// Skips `n` nonces without using them (never reuses one).
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), SecureError> {
        if u128::from(n) > self.remaining() {
            return Err(SecureError::NoncesExhausted);
        }
        self.current = advance(&self.current, self.revision, n);
        self.used += u128::from(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: [u8; 12] = [
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
    ];

    /// Spec §6.3 examples.
    #[test]
    fn advance_examples() {
        assert_eq!(
            next_nonce(&N, Revision::Rev1),
            [0x1c, 0x1d, 0x1e, 0x1f, 0x21, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27]
        );
        assert_eq!(
            next_nonce(&N, Revision::Rev0),
            [0x1d, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27]
        );
        let mut carry = [0xff; 12];
        carry[0] = 0x01;
        assert_eq!(
            next_nonce(&carry, Revision::Rev1),
            [0x01, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            next_nonce(&carry, Revision::Rev0),
            [0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn rev0_wraps_after_2_pow_32() {
        let mut s = NonceSeq::new(N, Revision::Rev0);
        s.skip((1 << 32) - 2).unwrap();
        s.reserve(2).unwrap();
        assert_eq!(s.reserve(3), Err(SecureError::NoncesExhausted));
        let a = s.take();
        let b = s.take();
        assert_ne!(a, N);
        assert_ne!(b, N);
        assert_eq!(s.current(), N, "next would be the initial nonce again");
        assert_eq!(s.reserve(1), Err(SecureError::NoncesExhausted));
        assert_eq!(s.skip(1), Err(SecureError::NoncesExhausted));
        // Skipping exactly every nonce left is allowed; none is then left.
        let mut t = NonceSeq::new(N, Revision::Rev0);
        t.skip(1 << 32).unwrap();
        assert_eq!(t.reserve(1), Err(SecureError::NoncesExhausted));
    }

    #[test]
    fn rev1_wraps_after_2_pow_64() {
        let mut s = NonceSeq::new(N, Revision::Rev1);
        s.skip(u64::MAX).unwrap();
        s.reserve(1).unwrap();
        s.take();
        assert_eq!(s.current(), N);
        assert_eq!(s.reserve(1), Err(SecureError::NoncesExhausted));
    }
}
