//! A daemon's rotating service secrets and ticket renewal over an established monitor
//! session (cephx requests carried in `MAuth`, answered in `MAuthReply`).
//!
//! A real mon seals the tickets it issues for a service (e.g. the OSDs) with that service's
//! *rotating* secret. A daemon of that service logs in as itself (`osd.N`), asks for the
//! secrets with `CEPHX_GET_ROTATING_KEY` (the reply is `RotatingSecrets` sealed with the
//! daemon's own key) and keeps previous/current/next in a [`RotatingKeyring`], from which
//! [`super::AuthorizerServerAuth`] opens clients' tickets. Nothing here reads a clock: every
//! time-dependent call takes `now`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::UTime;

use super::seal::KeyUsage;
use super::server::AuthorizerServerAuth;
use super::server::ServiceSecrets;
use super::tickets::{ServiceTicket, TicketStore};
use super::types::{
    decode_service_ticket_reply, get_utime, put_sealed_struct, put_utime, unseal_struct_blob,
    CephXAuthorize, CephXRequestHeader, CephXResponseHeader, CephxEncode,
    CEPHX_GET_PRINCIPAL_SESSION_KEY, CEPHX_GET_ROTATING_KEY,
};
use crate::auth::{AuthError, ServerAuth, ServerAuthProvider};
use crate::keyring::CryptoKey;
use msgr2_codec::payload::AUTH_CEPHX;

/// `KEY_ROTATE_NUM`: how many secrets a service keeps (previous, current, next).
pub const KEY_ROTATE_NUM: usize = 3;
/// `AUTH_MODE_AUTHORIZER`: the first byte of an authorizer.
const AUTH_MODE_AUTHORIZER: u8 = 1;

/// `ExpiringCryptoKey` (V1): one rotating secret and when it stops being current.
#[derive(Clone, PartialEq, Eq)]
pub struct ExpiringCryptoKey {
    /// The secret.
    pub key: CryptoKey,
    /// Its expiration (absolute).
    pub expiration: UTime,
}

impl fmt::Debug for ExpiringCryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringCryptoKey")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl CephxEncode for ExpiringCryptoKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        self.key.encode(out);
        put_utime(out, self.expiration);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("ExpiringCryptoKey v")?;
        Ok(Self {
            key: CryptoKey::decode(d)?,
            expiration: get_utime(d, "ExpiringCryptoKey expiration")?,
        })
    }
}

/// `RotatingSecrets` (V1): a service's secrets by secret id, and the highest id issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotatingSecrets {
    /// Secrets by secret id (ascending: previous, current, next).
    pub secrets: BTreeMap<u64, ExpiringCryptoKey>,
    /// The highest secret id.
    pub max_ver: u64,
}

impl CephxEncode for RotatingSecrets {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u32(u32::try_from(self.secrets.len()).unwrap_or(u32::MAX));
        for (id, k) in &self.secrets {
            out.put_u64(*id);
            k.encode(out);
        }
        out.put_u64(self.max_ver);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("RotatingSecrets v")?;
        // id (8) + v (1) + key (2 + 8 + 2) + expiration (8) at least.
        let n = d.count(29, "rotating secret count")?;
        let mut secrets = BTreeMap::new();
        for _ in 0..n {
            let id = d.u64("rotating secret id")?;
            secrets.insert(id, ExpiringCryptoKey::decode(d)?);
        }
        Ok(Self {
            secrets,
            max_ver: d.u64("RotatingSecrets max_ver")?,
        })
    }
}

impl RotatingSecrets {
    /// The current secret (`RotatingSecrets::current`: the second of three, else the first).
    pub fn current(&self) -> Option<(u64, &ExpiringCryptoKey)> {
        let mut it = self.secrets.iter();
        let first = it.next();
        it.next().or(first).map(|(id, k)| (*id, k))
    }

    /// Whether new secrets should be fetched at `now` (`need_new_secrets`): fewer than
    /// [`KEY_ROTATE_NUM`], or the current one has expired.
    pub fn need_new_secrets(&self, now: UTime) -> bool {
        if self.secrets.len() < KEY_ROTATE_NUM {
            return true;
        }
        self.current()
            .is_none_or(|(_, k)| (k.expiration.sec, k.expiration.nsec) <= (now.sec, now.nsec))
    }
}

/// The payload of an `MAuth` asking for the rotating secrets (`build_rotating_request`).
pub fn build_rotating_request() -> Vec<u8> {
    CephXRequestHeader {
        request_type: CEPHX_GET_ROTATING_KEY,
    }
    .to_bytes()
}

fn response_header(d: &mut Decoder<'_>, want: u16) -> Result<(), AuthError> {
    let h = CephXResponseHeader::decode(d)?;
    if h.request_type != want {
        return Err(AuthError::Unexpected(
            "MAuthReply for another cephx request",
        ));
    }
    if h.status != 0 {
        return Err(AuthError::PeerError(h.status));
    }
    Ok(())
}

/// Opens the `result_bl` of the `MAuthReply` to [`build_rotating_request`] with the daemon's
/// own key.
pub fn parse_rotating_reply(
    own_key: &CryptoKey,
    result_bl: &[u8],
) -> Result<RotatingSecrets, AuthError> {
    let mut d = Decoder::new(result_bl);
    response_header(&mut d, CEPHX_GET_ROTATING_KEY)?;
    Ok(unseal_struct_blob(
        own_key,
        KeyUsage::RotatingSecret,
        &mut d,
    )?)
}

/// The payload of an `MAuth` renewing the service tickets in `keys` (a
/// `CEPH_ENTITY_TYPE_*` mask) over an established session (`CEPHX_GET_PRINCIPAL_SESSION_KEY`):
/// an authorizer built from the stored AUTH ticket, then `CephXServiceTicketRequest`.
pub fn build_ticket_renewal_request(
    store: &TicketStore,
    keys: u32,
    nonce: u64,
) -> Result<Vec<u8>, AuthError> {
    let auth = store
        .get_even_expired(EntityType::Auth)
        .ok_or(AuthError::NoTicket(EntityType::Auth))?;
    let mut out = CephXRequestHeader {
        request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
    }
    .to_bytes();
    out.put_u8(AUTH_MODE_AUTHORIZER);
    out.put_u64(store.global_id());
    out.put_u32(u32::from(EntityType::Auth as u8));
    auth.ticket.encode(&mut out);
    let msg = CephXAuthorize {
        nonce,
        have_challenge: false,
        server_challenge_plus_one: 0,
    };
    put_sealed_struct(&mut out, &auth.session_key, KeyUsage::Authorize, &msg)?;
    out.put_u8(1);
    out.put_u32(keys);
    Ok(out)
}

/// Stores the tickets of the `MAuthReply` to [`build_ticket_renewal_request`], received at
/// `now`; returns the services renewed.
pub fn handle_ticket_renewal_reply(
    store: &TicketStore,
    result_bl: &[u8],
    now: SystemTime,
) -> Result<Vec<u32>, AuthError> {
    let auth = store
        .get_even_expired(EntityType::Auth)
        .ok_or(AuthError::NoTicket(EntityType::Auth))?;
    let mut d = Decoder::new(result_bl);
    response_header(&mut d, CEPHX_GET_PRINCIPAL_SESSION_KEY)?;
    let grants = decode_service_ticket_reply(&mut d, &auth.session_key, None)?;
    let mut renewed = Vec::with_capacity(grants.len());
    for g in grants {
        renewed.push(g.service_id);
        store.insert(ServiceTicket::from_grant(g, now));
    }
    Ok(renewed)
}

/// `SystemTime` as a `UTime` (saturating).
pub fn utime_of(t: SystemTime) -> UTime {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    UTime {
        sec: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
        nsec: d.subsec_nanos(),
    }
}

struct KeyringInner {
    secrets: Arc<ServiceSecrets>,
    rotating: RotatingSecrets,
}

/// A daemon's rotating keyring (`RotatingKeyRing`), shared by the connection that refreshes
/// it and every verifier: the secrets of one service by secret id. Installing new secrets
/// replaces the set atomically; verifiers already running keep the snapshot they took.
/// It also records why authorizers were refused ([`RotatingKeyring::rejections`]).
#[derive(Clone)]
pub struct RotatingKeyring {
    service: EntityType,
    inner: Arc<RwLock<KeyringInner>>,
    rejections: Arc<Mutex<Vec<AuthError>>>,
}

impl fmt::Debug for RotatingKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingKeyring")
            .field("service", &self.service)
            .field("secret_ids", &self.secret_ids())
            .finish()
    }
}

impl RotatingKeyring {
    /// An empty keyring for `service` (e.g. [`EntityType::Osd`]).
    pub fn new(service: EntityType) -> Self {
        Self {
            service,
            inner: Arc::new(RwLock::new(KeyringInner {
                secrets: Arc::new(ServiceSecrets::new()),
                rotating: RotatingSecrets::default(),
            })),
            rejections: Arc::default(),
        }
    }

    /// The service whose secrets these are.
    pub fn service(&self) -> EntityType {
        self.service
    }

    /// Replaces the secrets with `r` (as fetched from the mon).
    pub fn install(&self, r: RotatingSecrets) {
        let mut s = ServiceSecrets::new();
        for (id, k) in &r.secrets {
            s.insert(self.service, *id, k.key.clone());
        }
        let ids: Vec<u64> = r.secrets.keys().copied().collect();
        if let Ok(mut g) = self.inner.write() {
            g.secrets = Arc::new(s);
            g.rotating = r;
        }
        tracing::debug!(service = ?self.service, ?ids, "cephx: rotating secrets installed");
    }

    /// The secrets now (cheap: a shared pointer).
    pub fn snapshot(&self) -> Arc<ServiceSecrets> {
        self.inner
            .read()
            .map(|g| Arc::clone(&g.secrets))
            .unwrap_or_default()
    }

    /// The secret ids held, ascending.
    pub fn secret_ids(&self) -> Vec<u64> {
        self.inner
            .read()
            .map(|g| g.rotating.secrets.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether to fetch new secrets at `now` (no secrets, fewer than three, or the current
    /// one expired).
    pub fn need_new_secrets(&self, now: UTime) -> bool {
        self.inner
            .read()
            .map(|g| g.rotating.need_new_secrets(now))
            .unwrap_or(true)
    }

    /// Records why an authorizer was refused.
    pub fn record_rejection(&self, e: AuthError) {
        if let Ok(mut r) = self.rejections.lock() {
            r.push(e);
        }
    }

    /// Takes the refusals recorded so far.
    pub fn rejections(&self) -> Vec<AuthError> {
        self.rejections
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Server-side provider of a daemon in a real cluster: cephx authorizers only, verified with
/// the daemon's [`RotatingKeyring`] (the challenge round included).
#[derive(Debug, Clone)]
pub struct RotatingServerProvider {
    keyring: RotatingKeyring,
}

impl RotatingServerProvider {
    /// A provider verifying tickets of `keyring`'s service.
    pub fn new(keyring: RotatingKeyring) -> Self {
        Self { keyring }
    }
}

impl ServerAuthProvider for RotatingServerProvider {
    fn methods(&self, _peer: EntityType) -> Vec<u32> {
        vec![AUTH_CEPHX]
    }

    fn start(&self, method: u32, _peer: EntityType) -> Option<Box<dyn ServerAuth>> {
        (method == AUTH_CEPHX).then(|| {
            Box::new(AuthorizerServerAuth::new(
                self.keyring.service(),
                self.keyring.clone(),
            )) as Box<dyn ServerAuth>
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cephx::types::put_sealed_struct;

    fn secrets() -> RotatingSecrets {
        let mut r = RotatingSecrets::default();
        for id in 4..7u64 {
            r.secrets.insert(
                id,
                ExpiringCryptoKey {
                    key: CryptoKey::generate().unwrap(),
                    expiration: UTime {
                        sec: 1000 * id as u32,
                        nsec: 0,
                    },
                },
            );
        }
        r.max_ver = 6;
        r
    }

    #[test]
    fn rotating_reply_round_trip() {
        let own = CryptoKey::generate().unwrap();
        let r = secrets();
        let mut bl = CephXResponseHeader {
            request_type: CEPHX_GET_ROTATING_KEY,
            status: 0,
        }
        .to_bytes();
        put_sealed_struct(&mut bl, &own, KeyUsage::RotatingSecret, &r).unwrap();
        let got = parse_rotating_reply(&own, &bl).unwrap();
        assert_eq!(got, r);
        assert_eq!(got.current().unwrap().0, 5);
        assert!(!got.need_new_secrets(UTime { sec: 4999, nsec: 0 }));
        assert!(got.need_new_secrets(UTime { sec: 5000, nsec: 0 }));
        let other = CryptoKey::generate().unwrap();
        assert!(parse_rotating_reply(&other, &bl).is_err());
        for n in 0..bl.len() {
            assert!(parse_rotating_reply(&own, &bl[..n]).is_err());
        }
        let k = RotatingKeyring::new(EntityType::Osd);
        assert!(k.need_new_secrets(UTime::default()));
        k.install(got);
        assert_eq!(k.secret_ids(), vec![4, 5, 6]);
        assert!(k.snapshot().get(EntityType::Osd, 5).is_some());
    }

    #[test]
    fn renewal_request_needs_auth_ticket() {
        let store = TicketStore::new();
        assert!(matches!(
            build_ticket_renewal_request(&store, 0x4, 1),
            Err(AuthError::NoTicket(EntityType::Auth))
        ));
    }

    #[test]
    fn need_new_secrets_until_three_are_held() {
        let mut r = secrets();
        assert!(!r.need_new_secrets(UTime { sec: 0, nsec: 0 }));
        r.secrets.remove(&6);
        // Two unexpired secrets are still too few.
        assert!(r.need_new_secrets(UTime { sec: 0, nsec: 0 }));
        assert!(RotatingSecrets::default().need_new_secrets(UTime::default()));
    }

    #[test]
    fn rotating_request_is_the_bare_header() {
        let req = build_rotating_request();
        let mut d = Decoder::new(&req);
        assert_eq!(
            CephXRequestHeader::decode(&mut d).unwrap().request_type,
            CEPHX_GET_ROTATING_KEY
        );
        assert_eq!(req, [0x00, 0x04]);
    }

    #[test]
    fn renewal_reply_stores_each_ticket_and_names_the_services() {
        use crate::cephx::types::{encode_service_ticket_reply, CephXTicketBlob, TicketGrant};
        let session = CryptoKey::generate().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let store = TicketStore::new();
        let grant = |service_id: u32, key: &CryptoKey, secret_id: u64| TicketGrant {
            service_id,
            session_key: key.clone(),
            validity: UTime { sec: 600, nsec: 0 },
            ticket: CephXTicketBlob {
                secret_id,
                blob: vec![secret_id as u8; 40],
            },
        };
        store.insert(ServiceTicket::from_grant(grant(0x20, &session, 1), now));
        let (osd_key, mgr_key) = (
            CryptoKey::generate().unwrap(),
            CryptoKey::generate().unwrap(),
        );
        let mut bl = CephXResponseHeader {
            request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
            status: 0,
        }
        .to_bytes();
        let grants = [grant(0x4, &osd_key, 7), grant(0x10, &mgr_key, 8)];
        encode_service_ticket_reply(&mut bl, &session, &grants, None).unwrap();
        assert_eq!(
            handle_ticket_renewal_reply(&store, &bl, now).unwrap(),
            vec![0x4, 0x10]
        );
        let osd = store.get_even_expired(EntityType::Osd).unwrap();
        assert_eq!((osd.session_key, osd.ticket.secret_id), (osd_key, 7));
        assert_eq!(
            store
                .get_even_expired(EntityType::Mgr)
                .unwrap()
                .ticket
                .secret_id,
            8
        );
        // Another request's reply, or one sealed with another key, stores nothing.
        let other = TicketStore::new();
        other.insert(ServiceTicket::from_grant(grant(0x20, &mgr_key, 1), now));
        assert!(handle_ticket_renewal_reply(&other, &bl, now).is_err());
        assert!(other.get_even_expired(EntityType::Osd).is_none());
        assert!(matches!(
            handle_ticket_renewal_reply(&TicketStore::new(), &bl, now),
            Err(AuthError::NoTicket(EntityType::Auth))
        ));
    }

    #[test]
    fn utime_of_system_times() {
        assert_eq!(
            utime_of(UNIX_EPOCH + Duration::new(5, 7)),
            UTime { sec: 5, nsec: 7 }
        );
        assert_eq!(utime_of(UNIX_EPOCH), UTime::default());
        assert_eq!(
            utime_of(UNIX_EPOCH + Duration::from_secs(1 << 40)).sec,
            u32::MAX
        );
    }

    #[test]
    fn keyring_freshness_and_rejections() {
        let k = RotatingKeyring::new(EntityType::Osd);
        assert_eq!(k.service(), EntityType::Osd);
        k.install(secrets());
        assert!(!k.need_new_secrets(UTime { sec: 10, nsec: 0 }));
        assert!(k.need_new_secrets(UTime { sec: 5000, nsec: 0 }));
        assert!(k.rejections().is_empty());
        k.record_rejection(AuthError::NoTicket(EntityType::Osd));
        k.clone().record_rejection(AuthError::PeerError(-13));
        assert_eq!(
            k.rejections(),
            vec![
                AuthError::NoTicket(EntityType::Osd),
                AuthError::PeerError(-13)
            ]
        );
        assert!(k.rejections().is_empty());
    }

    #[test]
    fn rotating_provider_offers_cephx_only() {
        let p = RotatingServerProvider::new(RotatingKeyring::new(EntityType::Osd));
        for peer in [EntityType::Client, EntityType::Osd, EntityType::Mon] {
            assert_eq!(p.methods(peer), vec![AUTH_CEPHX]);
        }
        assert_eq!(
            p.start(AUTH_CEPHX, EntityType::Client).unwrap().method(),
            AUTH_CEPHX
        );
        assert!(p
            .start(msgr2_codec::payload::AUTH_NONE, EntityType::Client)
            .is_none());
        assert!(p.start(0, EntityType::Client).is_none());
    }
}
