//! cephx auth providers: which methods a side offers and which exchange to start per peer.

use std::fmt;
use std::sync::Arc;

use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_CEPHX, AUTH_NONE};

use super::client::{AuthorizerClientAuth, MonClientAuth, DEFAULT_WANT_KEYS};
use super::server::{MonServerAuth, MonServerContext};
use super::tickets::TicketStore;
use crate::auth::{
    AuthError, ClientAuth, ClientAuthProvider, NoneClient, NoneServer, ServerAuth,
    ServerAuthProvider,
};
use crate::keyring::{CryptoKey, Keyring, KeyringError};

/// Client provider: cephx (optionally falling back to none). Mons get a [`MonClientAuth`]
/// login; every other peer an [`AuthorizerClientAuth`] from the shared [`TicketStore`].
pub struct CephxClientProvider {
    name: EntityName,
    key: CryptoKey,
    store: TicketStore,
    want_keys: u32,
    allow_none: bool,
}

impl fmt::Debug for CephxClientProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephxClientProvider")
            .field("name", &self.name.to_string())
            .field("want_keys", &format_args!("{:#x}", self.want_keys))
            .field("allow_none", &self.allow_none)
            .finish()
    }
}

impl CephxClientProvider {
    /// Authenticates as `name` with `key`; tickets go to (and come from) `store`.
    pub fn new(name: EntityName, key: CryptoKey, store: TicketStore) -> Self {
        Self {
            name,
            key,
            store,
            want_keys: DEFAULT_WANT_KEYS,
            allow_none: false,
        }
    }

    /// Like [`CephxClientProvider::new`] with `name`'s key from `keyring`.
    pub fn from_keyring(
        keyring: &Keyring,
        name: EntityName,
        store: TicketStore,
    ) -> Result<Self, AuthError> {
        let key = match keyring.key(&name) {
            Ok(k) => k.clone(),
            Err(KeyringError::UnusableKey {
                line,
                entity,
                source,
            }) => {
                return Err(AuthError::UnusableKey {
                    entity,
                    line,
                    source,
                })
            }
            Err(_) => return Err(AuthError::UnknownEntity(name.to_string())),
        };
        Ok(Self::new(name, key, store))
    }

    /// Also offer auth none after cephx (`auth_client_required = cephx, none`).
    pub fn with_auth_none(mut self, allow: bool) -> Self {
        self.allow_none = allow;
        self
    }

    /// Services to request tickets for at login (`other_keys`; AUTH is always included).
    pub fn with_want_keys(mut self, mask: u32) -> Self {
        self.want_keys = mask;
        self
    }

    /// The shared ticket store.
    pub fn store(&self) -> &TicketStore {
        &self.store
    }
}

impl ClientAuthProvider for CephxClientProvider {
    fn methods(&self) -> Vec<u32> {
        if self.allow_none {
            vec![AUTH_CEPHX, AUTH_NONE]
        } else {
            vec![AUTH_CEPHX]
        }
    }

    fn start(&self, method: u32, peer: EntityType) -> Option<Box<dyn ClientAuth>> {
        match method {
            AUTH_CEPHX if peer == EntityType::Mon => Some(Box::new(
                MonClientAuth::new(self.name.clone(), self.key.clone(), self.store.clone())
                    .with_want_keys(self.want_keys),
            )),
            AUTH_CEPHX => Some(Box::new(AuthorizerClientAuth::new(
                self.store.clone(),
                peer,
            ))),
            AUTH_NONE if self.allow_none => Some(Box::new(NoneClient {
                name: self.name.clone(),
                global_id: if peer == EntityType::Mon {
                    0
                } else {
                    self.store.global_id()
                },
                to_mon: peer == EntityType::Mon,
                shared_global_id: None,
            })),
            _ => None,
        }
    }
}

/// Mon-style server provider: cephx for every peer (optionally also none).
pub struct CephxServerProvider {
    ctx: Arc<MonServerContext>,
    allow_none: bool,
}

impl fmt::Debug for CephxServerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephxServerProvider")
            .field("ctx", &self.ctx)
            .field("allow_none", &self.allow_none)
            .finish()
    }
}

impl CephxServerProvider {
    /// A provider sharing `ctx` across connections.
    pub fn new(ctx: Arc<MonServerContext>) -> Self {
        Self {
            ctx,
            allow_none: false,
        }
    }

    /// Also accept auth none (crc mode only).
    pub fn with_auth_none(mut self, allow: bool) -> Self {
        self.allow_none = allow;
        self
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<MonServerContext> {
        &self.ctx
    }
}

impl ServerAuthProvider for CephxServerProvider {
    fn methods(&self, _peer: EntityType) -> Vec<u32> {
        if self.allow_none {
            vec![AUTH_CEPHX, AUTH_NONE]
        } else {
            vec![AUTH_CEPHX]
        }
    }

    fn start(&self, method: u32, _peer: EntityType) -> Option<Box<dyn ServerAuth>> {
        match method {
            AUTH_CEPHX => Some(Box::new(MonServerAuth::new(Arc::clone(&self.ctx)))),
            AUTH_NONE if self.allow_none => Some(Box::new(NoneServer {
                next_global_id: self.ctx.global_ids.next_id(),
            })),
            _ => None,
        }
    }
}
