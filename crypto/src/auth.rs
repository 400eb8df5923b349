//! The method-independent authentication interface the handshake drives, and AUTH_NONE.
//!
//! The msgr2 handshake carries opaque auth payloads in AUTH_REQUEST / AUTH_REPLY_MORE /
//! AUTH_REQUEST_MORE / AUTH_DONE. A [`ClientAuth`] produces and consumes the client's side of
//! one such exchange, a [`ServerAuth`] the server's. Both end in an [`AuthResult`]: the session
//! key that keys AUTH_SIGNATURE and the connection secret that keys secure mode.

use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_NONE, CON_MODE_CRC};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// `AUTH_MODE_AUTHORIZER`: first byte of an authorizer payload (client → OSD/MGR/MDS).
pub const AUTH_MODE_AUTHORIZER: u8 = 1;
/// `AUTH_MODE_MON`: first byte of a client → mon auth payload.
pub const AUTH_MODE_MON: u8 = 10;
/// Upper bound (exclusive) of the mon auth-mode range.
pub const AUTH_MODE_MON_MAX: u8 = 20;

/// `EACCES`, as a negative errno in AUTH_BAD_METHOD.
pub const EACCES: i32 = -13;
/// `EINVAL`.
pub const EINVAL: i32 = -22;
/// `EOPNOTSUPP`.
pub const EOPNOTSUPP: i32 = -95;

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// A payload from the peer could not be decoded.
    #[error("malformed auth payload: {0}")]
    Decode(#[from] DecodeError),
    /// The peer's proof, ticket or reply did not verify (wrong key, tampering).
    #[error("authentication failed: {0}")]
    BadProof(String),
    /// We have no key for the entity.
    #[error("no key for {0}")]
    UnknownEntity(String),
    /// Our keyring has the entity, but with a key we cannot use (type other than `aes` and
    /// `aes256k`, or a bad secret length).
    #[error("unusable key for {entity} (keyring line {line}): {source}")]
    UnusableKey {
        /// The entity.
        entity: String,
        /// The keyring line of its key.
        line: usize,
        /// Why the key cannot be used.
        source: crate::key::KeyError,
    },
    /// A ticket we need is missing or expired.
    #[error("no valid ticket for service {0}")]
    NoTicket(EntityType),
    /// A presented ticket has expired.
    #[error("expired ticket for service {0}")]
    TicketExpired(EntityType),
    /// A presented ticket was sealed with a secret we do not hold (rotated out long ago, or
    /// issued by another cluster).
    #[error("no secret {secret_id} for service {service:#x}")]
    UnknownSecret {
        /// `CEPH_ENTITY_TYPE_*` of the service.
        service: u32,
        /// The ticket's secret id.
        secret_id: u64,
    },
    /// The peer replied with an error status.
    #[error("peer returned error {0}")]
    PeerError(i32),
    /// The exchange went out of order (e.g. AUTH_DONE before the challenge round).
    #[error("unexpected auth step: {0}")]
    Unexpected(&'static str),
    /// A cipher operation failed.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

/// What a completed authentication yields.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthResult {
    /// Global id assigned by the server (AUTH_DONE).
    pub global_id: u64,
    /// Connection mode the server chose.
    pub con_mode: u32,
    /// Raw session key bytes: the AUTH_SIGNATURE HMAC key (empty with auth none).
    pub session_key: Vec<u8>,
    /// Connection secret: 64 bytes in secure mode, empty in crc mode.
    pub connection_secret: Vec<u8>,
    /// Server side: the authenticated peer's name.
    pub peer_name: Option<EntityName>,
}

impl std::fmt::Debug for AuthResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("AuthResult")
            .field("global_id", &self.global_id)
            .field("con_mode", &self.con_mode)
            .field("session_key_len", &self.session_key.len())
            .field("connection_secret_len", &self.connection_secret.len())
            .field("peer_name", &self.peer_name)
            .finish()
    }
}

/// The client side of one auth exchange on one connection.
pub trait ClientAuth: Send {
    /// The `CEPH_AUTH_*` method.
    fn method(&self) -> u32;
    /// The AUTH_REQUEST payload.
    fn request(&mut self) -> Result<Vec<u8>, AuthError>;
    /// Consumes an AUTH_REPLY_MORE payload and returns the AUTH_REQUEST_MORE payload.
    fn reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, AuthError>;
    /// Consumes AUTH_DONE and yields the keys.
    fn done(
        &mut self,
        global_id: u64,
        con_mode: u32,
        payload: &[u8],
    ) -> Result<AuthResult, AuthError>;
}

/// The server's next move after an auth payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send AUTH_REPLY_MORE with this payload.
    More(Vec<u8>),
    /// Send AUTH_DONE with this payload; authentication succeeded.
    Done {
        /// AUTH_DONE auth payload.
        payload: Vec<u8>,
        /// Keys and peer identity.
        result: AuthResult,
    },
    /// Send AUTH_BAD_METHOD with this negative errno.
    Reject(i32),
}

/// The server side of one auth exchange on one connection.
pub trait ServerAuth: Send {
    /// The `CEPH_AUTH_*` method.
    fn method(&self) -> u32;
    /// Handles AUTH_REQUEST's payload; `con_mode` is the mode already chosen for the
    /// connection (it decides the connection secret's length).
    fn request(&mut self, con_mode: u32, payload: &[u8]) -> ServerStep;
    /// Handles AUTH_REQUEST_MORE's payload.
    fn request_more(&mut self, payload: &[u8]) -> ServerStep;
}

/// Which methods and modes a side offers; AUTH_BAD_METHOD and mode choice use it.
pub trait ClientAuthProvider: Send + Sync {
    /// Methods in preference order (`auth_client_required`).
    fn methods(&self) -> Vec<u32>;
    /// Starts an exchange with `method` towards a peer of type `peer`.
    fn start(&self, method: u32, peer: EntityType) -> Option<Box<dyn ClientAuth>>;
}

/// Server-side counterpart of [`ClientAuthProvider`].
pub trait ServerAuthProvider: Send + Sync {
    /// Methods accepted from a peer of type `peer` (`auth_service_required` /
    /// `auth_cluster_required`).
    fn methods(&self, peer: EntityType) -> Vec<u32>;
    /// Starts an exchange with `method`.
    fn start(&self, method: u32, peer: EntityType) -> Option<Box<dyn ServerAuth>>;
}

/// AUTH_NONE, client side: `u8 mode, EntityName, u64 global_id`, completed by AUTH_DONE.
#[derive(Debug, Clone)]
pub struct NoneClient {
    /// Our name.
    pub name: EntityName,
    /// Previous global id (0 for a fresh one); to a daemon, the one the monitor assigned.
    pub global_id: u64,
    /// Whether the peer is a mon (AUTH_MODE_MON) or a daemon (authorizer form).
    pub to_mon: bool,
    /// Where the global id a monitor assigns is kept for later connections (the
    /// [`NoneClientProvider`]'s), as Ceph's MonClient keeps it for its authorizers.
    pub shared_global_id: Option<Arc<AtomicU64>>,
}

impl ClientAuth for NoneClient {
    fn method(&self) -> u32 {
        AUTH_NONE
    }
    fn request(&mut self) -> Result<Vec<u8>, AuthError> {
        let mut p = Vec::new();
        p.put_u8(if self.to_mon {
            AUTH_MODE_MON
        } else {
            AUTH_MODE_AUTHORIZER
        });
        self.name.encode(&mut p);
        p.put_u64(self.global_id);
        Ok(p)
    }
    fn reply_more(&mut self, _payload: &[u8]) -> Result<Vec<u8>, AuthError> {
        Err(AuthError::Unexpected("AUTH_REPLY_MORE with auth none"))
    }
    fn done(
        &mut self,
        global_id: u64,
        con_mode: u32,
        _payload: &[u8],
    ) -> Result<AuthResult, AuthError> {
        self.global_id = global_id;
        if let (true, Some(shared)) = (self.to_mon, &self.shared_global_id) {
            shared.store(global_id, Ordering::Relaxed);
        }
        Ok(AuthResult {
            global_id,
            con_mode,
            ..Default::default()
        })
    }
}

/// AUTH_NONE, server side: accepts anyone, in crc mode only; assigns global ids from a counter
/// supplied by the caller.
#[derive(Debug, Clone)]
pub struct NoneServer {
    /// The global id to hand out when the client has none.
    pub next_global_id: u64,
}

impl ServerAuth for NoneServer {
    fn method(&self) -> u32 {
        AUTH_NONE
    }
    fn request(&mut self, con_mode: u32, payload: &[u8]) -> ServerStep {
        if con_mode != CON_MODE_CRC {
            return ServerStep::Reject(EOPNOTSUPP);
        }
        let parsed = (|| -> Result<(EntityName, u64), DecodeError> {
            let mut d = Decoder::new(payload);
            let mode = d.u8("auth mode")?;
            if mode != AUTH_MODE_AUTHORIZER && !(AUTH_MODE_MON..AUTH_MODE_MON_MAX).contains(&mode) {
                return Err(DecodeError::InvalidValue {
                    what: "auth mode",
                    value: u64::from(mode),
                });
            }
            let name = EntityName::decode(&mut d)?;
            let gid = d.u64("global_id")?;
            Ok((name, gid))
        })();
        match parsed {
            Ok((name, gid)) => {
                let global_id = if gid == 0 { self.next_global_id } else { gid };
                ServerStep::Done {
                    payload: Vec::new(),
                    result: AuthResult {
                        global_id,
                        con_mode,
                        peer_name: Some(name),
                        ..Default::default()
                    },
                }
            }
            Err(_) => ServerStep::Reject(EINVAL),
        }
    }
    fn request_more(&mut self, _payload: &[u8]) -> ServerStep {
        ServerStep::Reject(EINVAL)
    }
}

/// Client provider offering only AUTH_NONE (`auth_client_required = none`). The global id a
/// monitor assigns is remembered and sent to daemons (OSDs, MDSs, ...) in the AUTH_NONE
/// authorizer, as Ceph's clients do, so a daemon sees `client.4123` rather than an
/// anonymous client.
#[derive(Debug, Clone)]
pub struct NoneClientProvider {
    /// Our name, sent in the auth payload.
    pub name: EntityName,
    /// The global id the last monitor exchange assigned (0 before one).
    pub global_id: Arc<AtomicU64>,
}

impl NoneClientProvider {
    /// A provider for `name` that has no global id yet.
    pub fn new(name: EntityName) -> Self {
        Self {
            name,
            global_id: Arc::default(),
        }
    }
}

impl ClientAuthProvider for NoneClientProvider {
    fn methods(&self) -> Vec<u32> {
        vec![AUTH_NONE]
    }
    fn start(&self, method: u32, peer: EntityType) -> Option<Box<dyn ClientAuth>> {
        (method == AUTH_NONE).then(|| {
            let to_mon = peer == EntityType::Mon;
            Box::new(NoneClient {
                name: self.name.clone(),
                global_id: if to_mon {
                    0
                } else {
                    self.global_id.load(Ordering::Relaxed)
                },
                to_mon,
                shared_global_id: Some(self.global_id.clone()),
            }) as Box<dyn ClientAuth>
        })
    }
}

/// Server provider accepting only AUTH_NONE; hands out global ids from a shared counter.
#[derive(Debug, Default)]
pub struct NoneServerProvider {
    next_global_id: std::sync::atomic::AtomicU64,
}

impl NoneServerProvider {
    /// Global ids start after `first - 1` (Ceph mons start near 4100).
    pub fn new(first: u64) -> Self {
        Self {
            next_global_id: std::sync::atomic::AtomicU64::new(first),
        }
    }
}

impl ServerAuthProvider for NoneServerProvider {
    fn methods(&self, _peer: EntityType) -> Vec<u32> {
        vec![AUTH_NONE]
    }
    fn start(&self, method: u32, _peer: EntityType) -> Option<Box<dyn ServerAuth>> {
        (method == AUTH_NONE).then(|| {
            let next_global_id = self
                .next_global_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .max(1);
            Box::new(NoneServer { next_global_id }) as Box<dyn ServerAuth>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AUTH_REQUEST payload the real `ceph` CLI sends with auth none (capture
    /// `crc-authnone-*`): 0a, client, "admin", global_id 0.
    #[test]
    fn none_request_matches_ceph() {
        let mut c = NoneClient {
            name: "client.admin".parse().unwrap(),
            global_id: 0,
            to_mon: true,
            shared_global_id: None,
        };
        let p = c.request().unwrap();
        assert_eq!(p.len(), 22);
        assert_eq!(&p[..5], &[0x0a, 8, 0, 0, 0]);
        let mut s = NoneServer {
            next_global_id: 4100,
        };
        match s.request(CON_MODE_CRC, &p) {
            ServerStep::Done { result, payload } => {
                assert!(payload.is_empty());
                assert_eq!(result.global_id, 4100);
                assert_eq!(result.peer_name.unwrap().to_string(), "client.admin");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.request(2, &p), ServerStep::Reject(EOPNOTSUPP));
        assert_eq!(
            s.request(CON_MODE_CRC, &p[..10]),
            ServerStep::Reject(EINVAL)
        );
    }
}
