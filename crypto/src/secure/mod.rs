//! Secure-mode frame protection (AES-128-GCM), msgr2.1 ("rev1") and msgr2.0 ("rev0").
//!
//! After the mode switch (the server's first secure frame is its AUTH_SIGNATURE, sent right
//! after AUTH_DONE) every frame of a secure connection is encrypted and authenticated with
//! AES-128-GCM: no AAD, 12-byte nonce, 16-byte tag after the ciphertext. Key and nonces come
//! from the 64-byte connection secret the authentication method produced
//! ([`ConnectionSecret`]); each direction has its own nonce sequence ([`next_nonce`]).
//!
//! On-wire layouts (the preamble is the crc-mode one, with logical segment lengths and its
//! crc; every segment is zero-padded to a multiple of 16 before encryption):
//!
//! - **rev1**: GCM#1 over `preamble(32) ‖ inline(48)` (the first 48 bytes of the padded first
//!   segment, zero-filled) → 96 bytes; GCM#2 over the rest of the padded first segment, only if
//!   it is longer than 48; GCM#3 over `pad(seg1) ‖ pad(seg2) ‖ pad(seg3) ‖ epilogue(16)`, only
//!   for multi-segment frames, where the epilogue is `late_status` (0x0E) and 15 zero bytes.
//!   Each operation consumes one nonce; the 64-bit counter in nonce bytes 4..12 advances.
//! - **rev0**: one GCM over `preamble ‖ pad(seg0..n) ‖ epilogue(16)` (`late_flags` = 0 and 15
//!   zero bytes) on every frame; the 32-bit field in nonce bytes 0..4 advances.
//!
//! [`SecureTx`] seals frames into a `Vec` in place (one AEAD call per contiguous unit, one key
//! schedule per direction) and refuses, rather than wraps, once its nonces are exhausted.
//! [`SecureRx`] is the incremental receiver, with the same `want`/`dest`/`advance`/`feed`
//! contract as the crc-mode [`FrameDecoder`](msgr2_codec::FrameDecoder). Two AES-GCM
//! implementations are available ([`Backend`]): aws-lc-rs (default) and, with the `rustcrypto`
//! feature, RustCrypto `aes-gcm`; they produce identical bytes.

mod backend;
mod nonce;
mod rx;
mod tx;

pub use backend::Backend;
pub use nonce::next_nonce;
pub use rx::{SecureFed, SecureRx, SecureWant, SecureWantKind, SCRATCH_RETAIN};
pub use tx::SecureTx;

use msgr2_codec::frame::{FrameError, Limits};
use msgr2_codec::Revision;
use thiserror::Error;

/// AES-128 key length.
pub const KEY_LEN: usize = 16;
/// GCM nonce (IV) length.
pub const NONCE_LEN: usize = 12;
/// GCM authentication tag length.
pub const TAG_LEN: usize = 16;
/// Segments are zero-padded to a multiple of this before encryption.
pub const BLOCK_LEN: usize = 16;
/// rev1: bytes of the (padded) first segment carried in the first GCM operation.
pub const INLINE_LEN: usize = 48;
/// Plaintext size of the secure epilogue (`late_status`/`late_flags` + 15 zero bytes).
pub const SECURE_EPILOGUE_LEN: usize = 16;
/// rev1: size on the wire of the first block (preamble + inline + tag).
pub const FIRST_BLOCK_LEN: usize = msgr2_codec::frame::PREAMBLE_LEN + INLINE_LEN + TAG_LEN;
/// Shortest connection secret that carries a key and both nonces (Ceph's secret is 64 bytes).
pub const MIN_SECRET_LEN: usize = KEY_LEN + 2 * NONCE_LEN;

/// Which end of the connection we are; decides which nonce is used for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The connecting side (Ceph: `crossed = false`): sends with nonce B, receives with A.
    Client,
    /// The accepting side (Ceph: `crossed = true`): sends with nonce A, receives with B.
    Server,
}

/// Why secure-mode sealing or opening failed. Every variant is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecureError {
    /// A GCM tag did not verify: the frame was tampered with, replayed, reordered or sealed
    /// with another key or nonce.
    #[error("frame authentication failed")]
    AuthFailed,
    /// The (decrypted) preamble is invalid or exceeds the [`Limits`]; see [`FrameError`].
    #[error("bad secure frame: {0}")]
    Frame(#[from] FrameError),
    /// rev1 `late_status` whose low nibble is neither complete (0xE) nor aborted (0x1).
    #[error("bad late_status {0:#04x}")]
    BadLateStatus(u8),
    /// rev0 `late_flags` with bits other than the aborted bit.
    #[error("bad late_flags {0:#04x}")]
    BadLateFlags(u8),
    /// Sending (or, from a misbehaving peer, receiving) would reuse a nonce: the 32-bit
    /// (rev0) or 64-bit (rev1) counter went all the way round. The connection must be
    /// re-established with a new secret.
    #[error("out of nonces: the connection must be re-established with a new secret")]
    NoncesExhausted,
    /// The connection secret is too short to hold a key and two nonces.
    #[error("connection secret of {len} bytes is shorter than {MIN_SECRET_LEN}")]
    ShortSecret {
        /// Length we were given.
        len: usize,
    },
    /// A frame to send has more than four segments.
    #[error("a frame has at most 4 segments, got {0}")]
    TooManySegments(usize),
    /// A segment to send does not fit the preamble's 32-bit length field.
    #[error("segment {index} of {len} bytes does not fit a u32 length")]
    SegmentTooLarge {
        /// Segment index.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The AES-GCM implementation refused an operation (key setup or an oversized input).
    #[error("AES-GCM backend failure")]
    Backend,
    /// This sender or receiver already failed; the connection must be closed.
    #[error("secure stream already failed: {0}")]
    Poisoned(Box<SecureError>),
}

/// The AES key and the two initial nonces taken from a connection secret.
///
/// Layout (`crypto_onwire.cc` `create_handler_pair`, kernel `setup_crypto`): bytes 0..16 are
/// the AES-128 key (both directions), 16..28 nonce A (server → client), 28..40 nonce B
/// (client → server); the rest of Ceph's 64-byte secret is unused.
#[derive(Clone)]
pub struct ConnectionSecret {
    key: [u8; KEY_LEN],
    server_to_client: [u8; NONCE_LEN],
    client_to_server: [u8; NONCE_LEN],
}

impl std::fmt::Debug for ConnectionSecret {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSecret").finish_non_exhaustive()
    }
}

impl Drop for ConnectionSecret {
    /// Best-effort wipe of the key material.
    fn drop(&mut self) {
        self.key.fill(0);
        self.server_to_client.fill(0);
        self.client_to_server.fill(0);
        std::hint::black_box(&self.key);
    }
}

impl ConnectionSecret {
    /// Splits a connection secret; fails with [`SecureError::ShortSecret`] if it is shorter
    /// than 40 bytes (as Ceph's `ceph_assert_always` would).
    pub fn new(secret: &[u8]) -> Result<Self, SecureError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecureError::ShortSecret { len: secret.len() });
        }
        let mut s = Self {
            key: [0; KEY_LEN],
            server_to_client: [0; NONCE_LEN],
            client_to_server: [0; NONCE_LEN],
        };
        s.key.copy_from_slice(&secret[..KEY_LEN]);
        s.server_to_client
            .copy_from_slice(&secret[KEY_LEN..KEY_LEN + NONCE_LEN]);
        s.client_to_server
            .copy_from_slice(&secret[KEY_LEN + NONCE_LEN..MIN_SECRET_LEN]);
        Ok(s)
    }

    /// The AES-128 key shared by both directions.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The initial nonce `role` sends with (client: B, server: A).
    pub fn tx_nonce(&self, role: Role) -> [u8; NONCE_LEN] {
        match role {
            Role::Client => self.client_to_server,
            Role::Server => self.server_to_client,
        }
    }

    /// The initial nonce `role` receives with (client: A, server: B).
    pub fn rx_nonce(&self, role: Role) -> [u8; NONCE_LEN] {
        match role {
            Role::Client => self.server_to_client,
            Role::Server => self.client_to_server,
        }
    }

    /// The sending half for `role`, using the default backend.
    pub fn tx(&self, role: Role, revision: Revision) -> Result<SecureTx, SecureError> {
        SecureTx::new(Backend::default(), &self.key, self.tx_nonce(role), revision)
    }

    /// The receiving half for `role`, using the default backend and `Vec` segments.
    pub fn rx(
        &self,
        role: Role,
        revision: Revision,
        limits: Limits,
    ) -> Result<SecureRx, SecureError> {
        SecureRx::new(
            Backend::default(),
            &self.key,
            self.rx_nonce(role),
            revision,
            limits,
        )
    }

    /// The receiving half for `role`, using the default backend and `alloc` for segment
    /// buffers (e.g. [`msgr2_codec::DataAlloc`] for page-aligned data segments).
    pub fn rx_with_alloc<A: msgr2_codec::frame::SegmentAlloc>(
        &self,
        role: Role,
        revision: Revision,
        limits: Limits,
        alloc: A,
    ) -> Result<SecureRx<A>, SecureError> {
        SecureRx::with_alloc(
            Backend::default(),
            &self.key,
            self.rx_nonce(role),
            revision,
            limits,
            alloc,
        )
    }
}

/// `len` rounded up to a multiple of [`BLOCK_LEN`], in `u64` so that no peer-supplied
/// 32-bit length can overflow.
pub(crate) fn pad16(len: u32) -> u64 {
    (u64::from(len) + (BLOCK_LEN as u64 - 1)) & !(BLOCK_LEN as u64 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_00_3f() -> Vec<u8> {
        (0u8..64).collect()
    }

    /// Spec §6.2 vector: secret 00..3f.
    #[test]
    fn secret_split_matches_spec() {
        let s = ConnectionSecret::new(&secret_00_3f()).unwrap();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&s.tx_nonce(Role::Client)), "1c1d1e1f2021222324252627");
        assert_eq!(hex(&s.rx_nonce(Role::Client)), "101112131415161718191a1b");
        assert_eq!(s.tx_nonce(Role::Server), s.rx_nonce(Role::Client));
        assert_eq!(s.rx_nonce(Role::Server), s.tx_nonce(Role::Client));
        assert_eq!(s.key()[..], secret_00_3f()[..16]);
        assert_eq!(format!("{s:?}"), "ConnectionSecret { .. }");
    }

    #[test]
    fn short_secret_is_rejected() {
        assert_eq!(
            ConnectionSecret::new(&[0; 39]).unwrap_err(),
            SecureError::ShortSecret { len: 39 }
        );
        assert!(ConnectionSecret::new(&[0; 40]).is_ok());
    }

    #[test]
    fn pad16_values() {
        assert_eq!(pad16(0), 0);
        assert_eq!(pad16(1), 16);
        assert_eq!(pad16(16), 16);
        assert_eq!(pad16(41), 48);
        assert_eq!(pad16(u32::MAX), 1 << 32);
    }
}
