//! # msgr2-crypto
//!
//! Everything in msgr2 that needs a key:
//! - [`secure`]: secure-mode frame protection (AES-128-GCM) for msgr2.1 and msgr2.0, with
//!   keys and nonces derived from the connection secret and a fault, never a wrap, when
//!   nonces run out.
//! - [`signature`]: the AUTH_SIGNATURE HMAC-SHA256 over the pre-auth transcript.
//! - [`key`]: `CryptoKey`, of type `aes` (AES-128-CBC) or `aes256k` (Ceph 20's default).
//! - [`aes256k`]: the RFC 8009 aes256-cts-hmac-sha384-192 cipher of `aes256k` keys.
//! - [`keyring`]: Ceph keyring files.
//! - [`cephx`]: the cephx protocol: client login to a mon, service-ticket authorizers, the
//!   mon-style server, and authorizer verification for an OSD-style server.
//! - [`auth`]: the method-independent interface the handshake drives (`ClientAuth`,
//!   `ServerAuth`) and AUTH_NONE.

pub mod aes256k;
pub mod auth;
pub mod cephx;
pub mod key;
pub mod keyring;
pub mod secure;
pub mod signature;
