//! Renewal of the AUTH (mon) ticket over an established monitor session, as Ceph's
//! `MonClient::_check_auth_tickets` does once the ticket is past three quarters of its
//! validity (`auth_mon_ticket_ttl`).
//!
//! The request is the login's second round again, carried in an `MAuth`:
//! `CephXRequestHeader(CEPHX_GET_AUTH_SESSION_KEY)` + `CephXAuthenticate` v3 with a fresh
//! client challenge, the proof over the *login's* server challenge (the mon keeps it for the
//! session) and the principal's secret, `old_ticket` = the current AUTH ticket and
//! `other_keys` = AUTH plus the services also due. The mon checks the proof, opens the old
//! ticket (its global id must match the session's) and answers in the `MAuthReply`'s
//! `result_bl` with the login's layout: the new AUTH ticket's `CephXServiceTicket` sealed with
//! the principal's secret, its ticket blob sealed with the *old* AUTH session key
//! (`ticket_enc = 1`), possibly followed by `cbl` and the other tickets sealed with the *new*
//! AUTH session key (Ceph 16 and 20 mons send neither over `MAuth`, and Ceph's `MonClient`
//! would not read them: the other services due are then renewed with
//! `CEPHX_GET_PRINCIPAL_SESSION_KEY`). From then on the new AUTH ticket and session key
//! authorize `CEPHX_GET_PRINCIPAL_SESSION_KEY` requests and open their replies.
//!
//! Building and parsing reuse the login's [`build_authenticate`] and
//! [`parse_mon_auth_done`], so `aes` and `aes256k` principals are handled alike.

use std::fmt;
use std::time::SystemTime;

use msgr2_codec::entity::EntityType;
use thiserror::Error;

use super::client::{
    build_authenticate, parse_mon_auth_done, random_u64, store_mon_auth_reply, SERVICE_AUTH,
};
use super::tickets::TicketStore;
use crate::auth::AuthError;
use crate::keyring::CryptoKey;

/// Why an AUTH-ticket renewal could not be built or its reply not be used.
#[derive(Debug, Error)]
pub enum AuthRenewalError {
    /// The store holds no AUTH ticket (no successful mon login yet).
    #[error("no AUTH ticket to renew (no mon login yet)")]
    NoAuthTicket,
    /// The store holds no server challenge from a mon login to prove the secret against.
    #[error("no server challenge recorded from the mon login")]
    NoServerChallenge,
    /// The request could not be built (proof computation, random generator).
    #[error("building the AUTH renewal request: {0}")]
    Request(#[source] AuthError),
    /// The mon's reply was an error status, did not decode or did not open with the
    /// principal's secret and the old AUTH session key.
    #[error("AUTH renewal reply: {0}")]
    Reply(#[source] AuthError),
}

/// What an AUTH-ticket renewal stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRenewal {
    /// When the new AUTH ticket expires (local clock at receipt + its validity).
    pub expires: SystemTime,
    /// Services (`CEPH_ENTITY_TYPE_*`) whose tickets were stored, AUTH first, then those the
    /// mon sent along (`other_keys`).
    pub services: Vec<u32>,
}

impl fmt::Debug for AuthRenewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRenewal")
            .field("expires", &self.expires)
            .field("services", &self.services)
            .finish()
    }
}

/// The payload of an `MAuth` renewing the AUTH ticket of `store` (which must hold the AUTH
/// ticket and the server challenge of a mon login) with the principal's secret `key`, also
/// asking for the services in `other_keys` (AUTH is always added, as Ceph's `need` has it).
pub fn build_auth_renewal_request(
    key: &CryptoKey,
    store: &TicketStore,
    other_keys: u32,
) -> Result<Vec<u8>, AuthRenewalError> {
    let server_challenge = store
        .server_challenge()
        .ok_or(AuthRenewalError::NoServerChallenge)?;
    let auth = store
        .get_even_expired(EntityType::Auth)
        .ok_or(AuthRenewalError::NoAuthTicket)?;
    let client_challenge = random_u64().map_err(AuthRenewalError::Request)?;
    build_authenticate(
        key,
        server_challenge,
        client_challenge,
        &auth.ticket,
        other_keys | SERVICE_AUTH,
    )
    .map_err(AuthRenewalError::Request)
}

/// Opens the `result_bl` of the `MAuthReply` to [`build_auth_renewal_request`], received at
/// `now`, with the principal's secret `key` and the AUTH session key still in `store`, and
/// stores the new AUTH ticket (and any other tickets sent along). Nothing is stored unless
/// the whole reply verifies.
pub fn handle_auth_renewal_reply(
    key: &CryptoKey,
    store: &TicketStore,
    result_bl: &[u8],
    now: SystemTime,
) -> Result<AuthRenewal, AuthRenewalError> {
    let old = store
        .get_even_expired(EntityType::Auth)
        .ok_or(AuthRenewalError::NoAuthTicket)?;
    let reply = parse_mon_auth_done(key, Some(&old.session_key), result_bl)
        .map_err(AuthRenewalError::Reply)?;
    let services = store_mon_auth_reply(store, reply, now);
    let expires = store
        .get_even_expired(EntityType::Auth)
        .map_or(now, |t| t.expires);
    Ok(AuthRenewal { expires, services })
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
