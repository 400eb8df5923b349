//! The client's ticket store: what a mon login yields and later authorizers consume.
//!
//! A successful [`super::MonClientAuth`] exchange stores the AUTH ticket and any service
//! tickets (MON/OSD/MGR/…) here, plus the global id the mon assigned. An
//! [`super::AuthorizerClientAuth`] towards an OSD then takes the OSD ticket from the same
//! store. The store is shared (`Arc<Mutex<…>>`): authentication is not on the data path.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::UTime;

use super::types::{CephXTicketBlob, TicketGrant};
use crate::keyring::CryptoKey;

/// A ticket for one service, with the session key that goes with it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceTicket {
    /// `CEPH_ENTITY_TYPE_*` of the service (0x20 for AUTH).
    pub service_id: u32,
    /// Session key shared with the service (HMAC key of AUTH_SIGNATURE there).
    pub session_key: CryptoKey,
    /// The opaque ticket, presented verbatim in authorizers.
    pub ticket: CephXTicketBlob,
    /// Validity the issuer granted.
    pub validity: UTime,
    /// When the ticket expires (local clock at receipt + validity).
    pub expires: SystemTime,
    /// When to renew (expiry minus a quarter of the validity, as Ceph's client does).
    pub renew_after: SystemTime,
}

impl fmt::Debug for ServiceTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTicket")
            .field("service_id", &self.service_id)
            .field("ticket", &self.ticket)
            .field("validity", &self.validity)
            .field("expires", &self.expires)
            .finish()
    }
}

impl ServiceTicket {
    /// A ticket received `now` from a grant.
    pub fn from_grant(grant: TicketGrant, now: SystemTime) -> Self {
        let validity = Duration::from_secs(u64::from(grant.validity.sec))
            + Duration::from_nanos(u64::from(grant.validity.nsec));
        // Peer-supplied validity: no arithmetic that could panic on overflow.
        let expires = now.checked_add(validity).unwrap_or(now);
        let renew_after = expires
            .checked_sub(Duration::from_secs(u64::from(grant.validity.sec) / 4))
            .unwrap_or(now);
        Self {
            service_id: grant.service_id,
            session_key: grant.session_key,
            ticket: grant.ticket,
            validity: grant.validity,
            expires,
            renew_after,
        }
    }

    /// Whether the ticket has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires
    }

    /// Whether the ticket should be renewed at `now`.
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        now >= self.renew_after
    }
}

#[derive(Default)]
struct Inner {
    global_id: u64,
    /// The mon's `CephXServerChallenge` of the last login (0: none; a mon never sends 0).
    server_challenge: u64,
    tickets: BTreeMap<u32, ServiceTicket>,
}

/// Shared, thread-safe store of a client's tickets and global id.
#[derive(Clone, Default)]
pub struct TicketStore {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for TicketStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        f.debug_struct("TicketStore")
            .field("global_id", &g.global_id)
            .field("services", &g.tickets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TicketStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (every update is a single insert), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The global id from the last successful mon login (0 before any).
    pub fn global_id(&self) -> u64 {
        self.lock().global_id
    }

    /// Records the global id the mon assigned.
    pub fn set_global_id(&self, global_id: u64) {
        self.lock().global_id = global_id;
    }

    /// The server challenge of the last successful mon login, kept for renewing the AUTH
    /// ticket over the same session (Ceph's `CephxClientHandler::server_challenge`).
    pub fn server_challenge(&self) -> Option<u64> {
        Some(self.lock().server_challenge).filter(|c| *c != 0)
    }

    /// Records the server challenge of a successful mon login.
    pub fn set_server_challenge(&self, challenge: u64) {
        self.lock().server_challenge = challenge;
    }

    /// The unexpired ticket for `service`, if any.
    pub fn get(&self, service: EntityType) -> Option<ServiceTicket> {
        let now = SystemTime::now();
        self.lock()
            .tickets
            .get(&u32::from(service as u8))
            .filter(|t| !t.is_expired(now))
            .cloned()
    }

    /// The ticket for `service` even if expired (an expired AUTH ticket still proves a global
    /// id when reclaiming it).
    pub fn get_even_expired(&self, service: EntityType) -> Option<ServiceTicket> {
        self.lock().tickets.get(&u32::from(service as u8)).cloned()
    }

    /// Adds or replaces the ticket for its service.
    pub fn insert(&self, ticket: ServiceTicket) {
        self.lock().tickets.insert(ticket.service_id, ticket);
    }

    /// Removes the ticket for `service`.
    pub fn remove(&self, service: EntityType) -> Option<ServiceTicket> {
        self.lock().tickets.remove(&u32::from(service as u8))
    }

    /// Forgets everything (tickets, global id and server challenge).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.tickets.clear();
        g.global_id = 0;
        g.server_challenge = 0;
    }

    /// Service ids of the stored tickets.
    pub fn services(&self) -> Vec<u32> {
        self.lock().tickets.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    /// A ticket valid for 3600.5 s expires then and wants renewal a quarter of its whole
    /// seconds (900 s) earlier, as Ceph's client does.
    #[test]
    fn expiry_and_renewal_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = ServiceTicket::from_grant(
            TicketGrant {
                service_id: 4,
                session_key: CryptoKey::generate().unwrap(),
                validity: UTime {
                    sec: 3600,
                    nsec: 500_000_000,
                },
                ticket: CephXTicketBlob::default(),
            },
            now,
        );
        let expires = now + Duration::from_millis(3_600_500);
        assert_eq!(t.expires, expires);
        assert_eq!(t.renew_after, expires - Duration::from_secs(900));
        assert!(!t.needs_renewal(t.renew_after - Duration::from_nanos(1)));
        assert!(t.needs_renewal(t.renew_after));
        assert!(!t.is_expired(expires - Duration::from_nanos(1)));
        assert!(t.is_expired(expires));
    }

    #[test]
    fn remove_takes_the_ticket_out() {
        let store = TicketStore::new();
        let key = CryptoKey::generate().unwrap();
        let grant = TicketGrant {
            service_id: 4,
            session_key: key.clone(),
            validity: UTime { sec: 3600, nsec: 0 },
            ticket: CephXTicketBlob::default(),
        };
        store.insert(ServiceTicket::from_grant(grant, SystemTime::now()));
        assert!(store.remove(EntityType::Mgr).is_none());
        assert_eq!(store.remove(EntityType::Osd).unwrap().session_key, key);
        assert!(store.get_even_expired(EntityType::Osd).is_none());
        assert!(store.remove(EntityType::Osd).is_none());
    }
}
