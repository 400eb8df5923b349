//! # msgr2-crypto (stub)
//!
//! Will hold everything in msgr2 that needs a key: the secure-mode AES-128-GCM frame
//! protector (rev1 inline/remainder/tail operations and rev0 whole-frame operations, nonce
//! advance with exhaustion detection), the AUTH_SIGNATURE HMAC-SHA256 over the pre-auth
//! transcript, cephx (client login to a mon, service-ticket authorizers, mon-style server) and
//! keyring files. Tracked by the handshake-and-authentication issue; nothing is implemented
//! yet, so that no caller mistakes a placeholder for protection.
