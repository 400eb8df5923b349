//! cephx server side: a mon-style login server ([`MonServerAuth`]) and authorizer
//! verification for an OSD-style daemon ([`AuthorizerServerAuth`]).
//!
//! Tickets are sealed with [`ServiceSecrets`]. A real Ceph cluster distributes *rotating*
//! service secrets from the mons to the daemons; this implementation does not, so tickets
//! issued by [`MonServerAuth`] can only be read by services that share its `ServiceSecrets`
//! (our own daemons), not by a real `ceph-osd`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{UTime, AUTH_CEPHX, CON_MODE_SECURE};

use super::client::SERVICE_AUTH;
use super::rotating::RotatingKeyring;
use super::seal::{calc_client_server_challenge, seal, KeyUsage};
use super::types::{
    encode_service_ticket_reply, put_sealed_struct, seal_struct, unseal_struct, unseal_struct_blob,
    AuthCapsInfo, AuthTicket, CephXAuthenticate, CephXAuthorize, CephXAuthorizeChallenge,
    CephXAuthorizeReply, CephXRequestHeader, CephXResponseHeader, CephXServerChallenge,
    CephXServiceTicketInfo, CephXTicketBlob, CephxEncode, TicketGrant, AUTH_UID_DEFAULT,
    CEPHX_GET_AUTH_SESSION_KEY,
};
use crate::auth::{
    AuthError, AuthResult, ServerAuth, ServerStep, AUTH_MODE_AUTHORIZER, AUTH_MODE_MON,
    AUTH_MODE_MON_MAX, EACCES, EINVAL,
};
use crate::keyring::{utime_now, CryptoKey, KeyError, KeyType, Keyring};

/// `EPERM`: Ceph's answer to an undecodable cephx request.
pub const EPERM: i32 = -1;
/// `EIO`: internal failure (no service secret, RNG failure).
pub const EIO: i32 = -5;
/// Connection secret length in secure mode (`AuthConnectionMeta::get_connection_secret_length`).
pub const CONNECTION_SECRET_LEN: usize = 64;
/// `auth_mon_ticket_ttl` default: 72 h.
pub const DEFAULT_AUTH_TICKET_TTL: u32 = 72 * 3600;
/// `auth_service_ticket_ttl` default: 1 h.
pub const DEFAULT_SERVICE_TICKET_TTL: u32 = 3600;
/// Secret id meaning "the service's static key" in a ticket blob.
pub const STATIC_SECRET_ID: u64 = u64::MAX;
/// Services a [`MonServerContext`] issues tickets for by default.
pub const DEFAULT_SERVICES: [EntityType; 5] = [
    EntityType::Auth,
    EntityType::Mon,
    EntityType::Osd,
    EntityType::Mgr,
    EntityType::Mds,
];

fn random_bytes(n: usize) -> Option<Vec<u8>> {
    let mut v = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut v).ok()?;
    Some(v)
}

fn random_u64() -> Option<u64> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

fn utime_add(t: UTime, secs: u32) -> UTime {
    UTime {
        sec: t.sec.saturating_add(secs),
        nsec: t.nsec,
    }
}

fn service_id(t: EntityType) -> u32 {
    u32::from(t as u8)
}

/// The secrets that seal service tickets, by service and secret id.
///
/// The id under which the largest secret id is stored is the *current* one, used to issue
/// tickets; older ids still open tickets issued earlier. [`STATIC_SECRET_ID`] may hold a
/// service's static key (a ticket with that id is opened with it, as Ceph does).
#[derive(Clone, Default)]
pub struct ServiceSecrets {
    by_service: BTreeMap<u32, BTreeMap<u64, CryptoKey>>,
}

impl fmt::Debug for ServiceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: BTreeMap<u32, Vec<u64>> = self
            .by_service
            .iter()
            .map(|(s, m)| (*s, m.keys().copied().collect()))
            .collect();
        f.debug_struct("ServiceSecrets")
            .field("secret_ids", &ids)
            .finish()
    }
}

impl ServiceSecrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh random `aes` secret (secret id 1) for each of `services`.
    pub fn generate(services: &[EntityType]) -> Result<Self, KeyError> {
        Self::generate_of(services, KeyType::Aes)
    }

    /// A fresh random secret of type `ty` (secret id 1) for each of `services` (Ceph 20's
    /// `auth_service_cipher` is `aes256k`).
    pub fn generate_of(services: &[EntityType], ty: KeyType) -> Result<Self, KeyError> {
        let mut s = Self::new();
        for &svc in services {
            s.insert(svc, 1, CryptoKey::generate_of(ty)?);
        }
        Ok(s)
    }

    /// Adds a secret.
    pub fn insert(&mut self, service: EntityType, secret_id: u64, key: CryptoKey) {
        self.by_service
            .entry(service_id(service))
            .or_default()
            .insert(secret_id, key);
    }

    /// The secret `secret_id` of `service`.
    pub fn get(&self, service: EntityType, secret_id: u64) -> Option<&CryptoKey> {
        self.get_by_id(service_id(service), secret_id)
    }

    fn get_by_id(&self, service: u32, secret_id: u64) -> Option<&CryptoKey> {
        self.by_service.get(&service)?.get(&secret_id)
    }

    /// The current (highest, static key excluded) secret of `service` and its id.
    pub fn current(&self, service: EntityType) -> Option<(u64, &CryptoKey)> {
        self.current_by_id(service_id(service))
    }

    fn current_by_id(&self, service: u32) -> Option<(u64, &CryptoKey)> {
        self.by_service
            .get(&service)?
            .range(..STATIC_SECRET_ID)
            .next_back()
            .map(|(id, k)| (*id, k))
    }
}

/// Hands out global ids, shared by all connections of a server. Never returns 0.
#[derive(Clone, Debug)]
pub struct GlobalIdAllocator(Arc<AtomicU64>);

impl GlobalIdAllocator {
    /// Ids start at `first` (0 is skipped).
    pub fn new(first: u64) -> Self {
        Self(Arc::new(AtomicU64::new(first.max(1))))
    }

    /// The next id.
    pub fn next_id(&self) -> u64 {
        loop {
            let id = self.0.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }
}

impl Default for GlobalIdAllocator {
    /// Starts at 4096, near where a fresh Pacific mon starts.
    fn default() -> Self {
        Self::new(4096)
    }
}

/// Everything a mon-style server shares across connections.
pub struct MonServerContext {
    /// Entity secrets and caps. An entity needs non-empty `mon` caps to log in, as with Ceph.
    pub keyring: Arc<Keyring>,
    /// Secrets sealing the tickets this server issues (AUTH tickets included).
    pub secrets: Arc<ServiceSecrets>,
    /// Source of new global ids.
    pub global_ids: GlobalIdAllocator,
    /// Validity of AUTH tickets, seconds (`auth_mon_ticket_ttl`).
    pub auth_ticket_ttl: u32,
    /// Validity of service tickets, seconds (`auth_service_ticket_ttl`).
    pub service_ticket_ttl: u32,
    /// `auth_allow_insecure_global_id_reclaim` (Pacific default true): lets *legacy*
    /// (`CephXAuthenticate` v < 3) clients reclaim a global id without a valid ticket.
    pub allow_insecure_global_id_reclaim: bool,
}

impl fmt::Debug for MonServerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonServerContext")
            .field("entities", &self.keyring.len())
            .field("secrets", &self.secrets)
            .field("auth_ticket_ttl", &self.auth_ticket_ttl)
            .field("service_ticket_ttl", &self.service_ticket_ttl)
            .finish()
    }
}

impl MonServerContext {
    /// A context with fresh random service secrets for [`DEFAULT_SERVICES`], ids from 4096
    /// and Pacific's default TTLs. The service secrets are `aes256k` if any key of the keyring
    /// is (a Ceph 20 cluster, whose `auth_service_cipher` is `aes256k`), else `aes` (as
    /// before Ceph 20), so that an `aes256k` client gets `aes256k` service tickets and an
    /// `aes`-only keyring gets exactly what a Pacific mon issues.
    pub fn new(keyring: Arc<Keyring>) -> Result<Self, KeyError> {
        let ty = keyring
            .iter()
            .map(|e| e.key.key_type())
            .max()
            .unwrap_or(KeyType::Aes);
        Ok(Self::with_secrets(
            keyring,
            Arc::new(ServiceSecrets::generate_of(&DEFAULT_SERVICES, ty)?),
        ))
    }

    /// A context with the given service secrets (share them with the daemons that must accept
    /// the tickets).
    pub fn with_secrets(keyring: Arc<Keyring>, secrets: Arc<ServiceSecrets>) -> Self {
        Self {
            keyring,
            secrets,
            global_ids: GlobalIdAllocator::default(),
            auth_ticket_ttl: DEFAULT_AUTH_TICKET_TTL,
            service_ticket_ttl: DEFAULT_SERVICE_TICKET_TTL,
            allow_insecure_global_id_reclaim: true,
        }
    }
}

/// Checks a client's `CephXRequestHeader` + `CephXAuthenticate` against `key` and the server
/// challenge that was sent; returns the request on success.
pub fn verify_authenticate(
    key: &CryptoKey,
    server_challenge: u64,
    payload: &[u8],
) -> Result<CephXAuthenticate, AuthError> {
    let mut d = Decoder::new(payload);
    let h = CephXRequestHeader::decode(&mut d)?;
    if h.request_type != CEPHX_GET_AUTH_SESSION_KEY {
        return Err(AuthError::Unexpected(
            "cephx request other than GET_AUTH_SESSION_KEY",
        ));
    }
    let req = CephXAuthenticate::decode(&mut d)?;
    let expected = calc_client_server_challenge(key, server_challenge, req.client_challenge)?;
    if expected != req.key {
        return Err(AuthError::BadProof(
            "client proof does not match (wrong key?)".into(),
        ));
    }
    Ok(req)
}

/// Opens a ticket blob of `service` with `secrets`.
fn open_ticket(
    secrets: &ServiceSecrets,
    service: u32,
    blob: &CephXTicketBlob,
) -> Result<CephXServiceTicketInfo, AuthError> {
    if blob.blob.is_empty() {
        return Err(AuthError::BadProof("empty ticket".into()));
    }
    let key = secrets
        .get_by_id(service, blob.secret_id)
        .ok_or(AuthError::UnknownSecret {
            service,
            secret_id: blob.secret_id,
        })?;
    Ok(unseal_struct(key, KeyUsage::TicketInfo, &blob.blob)?)
}

enum MonServerState {
    Init,
    Challenged {
        name: EntityName,
        global_id: u64,
        is_new: bool,
        server_challenge: u64,
    },
    Done,
}

/// Mon-style cephx server for one connection: answers AUTH_REQUEST with a challenge, checks
/// the client's proof and global-id reclaim, and issues the AUTH ticket, the connection secret
/// and the requested service tickets exactly as a Pacific mon lays them out.
pub struct MonServerAuth {
    ctx: Arc<MonServerContext>,
    con_mode: u32,
    state: MonServerState,
    caps: Option<AuthCapsInfo>,
}

impl fmt::Debug for MonServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonServerAuth")
            .field("con_mode", &self.con_mode)
            .finish()
    }
}

impl MonServerAuth {
    /// A server for one connection.
    pub fn new(ctx: Arc<MonServerContext>) -> Self {
        Self {
            ctx,
            con_mode: 0,
            state: MonServerState::Init,
            caps: None,
        }
    }

    /// After success: the peer's `mon` caps (Ceph's `peer_caps_info`).
    pub fn peer_caps(&self) -> Option<&AuthCapsInfo> {
        self.caps.as_ref()
    }

    /// Global-id reclaim rules (`CephxServiceHandler::verify_old_ticket`). Returns the old
    /// session key to encrypt the new ticket with, or a negative errno.
    fn verify_old_ticket(
        &self,
        req: &CephXAuthenticate,
        global_id: u64,
        is_new: bool,
    ) -> Result<Option<CryptoKey>, i32> {
        let may_be_omitted = req.struct_v < 3;
        let lenient = self.ctx.allow_insecure_global_id_reclaim && may_be_omitted;
        if is_new {
            if !req.old_ticket.blob.is_empty() {
                tracing::debug!("cephx: superfluous ticket presented with a new global id");
                return Err(EINVAL);
            }
            return Ok(None);
        }
        if req.old_ticket.blob.is_empty() {
            return if lenient { Ok(None) } else { Err(EACCES) };
        }
        match open_ticket(&self.ctx.secrets, SERVICE_AUTH, &req.old_ticket) {
            Ok(info) if info.ticket.global_id == global_id => Ok(Some(info.session_key)),
            _ if lenient => Ok(None),
            _ => {
                tracing::debug!(global_id, "cephx: reclaim with a bad or mismatching ticket");
                Err(EACCES)
            }
        }
    }

    fn finish(
        &mut self,
        name: EntityName,
        global_id: u64,
        is_new: bool,
        server_challenge: u64,
        payload: &[u8],
    ) -> Result<ServerStep, i32> {
        let ctx = Arc::clone(&self.ctx);
        let mut hd = Decoder::new(payload);
        match CephXRequestHeader::decode(&mut hd) {
            Ok(h) if h.request_type == CEPHX_GET_AUTH_SESSION_KEY => {}
            Ok(_) => return Err(EINVAL),
            Err(_) => return Err(EPERM),
        }
        if CephXAuthenticate::decode(&mut hd).is_err() {
            return Err(EPERM);
        }
        let entry = ctx.keyring.entry(&name).ok_or(EACCES)?;
        let req = verify_authenticate(&entry.key, server_challenge, payload).map_err(|e| {
            tracing::debug!(entity = %name, error = %e, "cephx: login rejected");
            EACCES
        })?;
        let ticket_enc_key = self.verify_old_ticket(&req, global_id, is_new)?;

        let now = utime_now();
        // As Ceph's `KeyServer::build_session_auth_info`: the AUTH session key has the type of
        // the client's key.
        let client_type = entry.key.key_type();
        let session_key = CryptoKey::generate_of(client_type).map_err(|_| EIO)?;
        let auth_ticket = AuthTicket {
            name: name.clone(),
            global_id,
            auid: AUTH_UID_DEFAULT,
            created: now,
            expires: utime_add(now, ctx.auth_ticket_ttl),
            caps: AuthCapsInfo::default(),
            flags: 0,
        };
        let auth_grant = self.grant(
            SERVICE_AUTH,
            auth_ticket.clone(),
            session_key.clone(),
            ctx.auth_ticket_ttl,
        )?;

        let mut out = CephXResponseHeader {
            request_type: CEPHX_GET_AUTH_SESSION_KEY,
            status: 0,
        }
        .to_bytes();
        encode_service_ticket_reply(&mut out, &entry.key, &[auth_grant], ticket_enc_key.as_ref())
            .map_err(|_| EIO)?;

        // Like Ceph: no (or empty) mon caps, no login.
        let mon_caps = entry
            .caps
            .get("mon")
            .filter(|c| !c.is_empty())
            .ok_or(EACCES)?;
        self.caps = Some(AuthCapsInfo::from_caps_string(mon_caps));

        let mut connection_secret = Vec::new();
        if req.other_keys != 0 {
            // "nautilus+ client": connection secret and service tickets in the same reply.
            if self.con_mode == CON_MODE_SECURE {
                connection_secret = random_bytes(CONNECTION_SECRET_LEN).ok_or(EIO)?;
            }
            let mut secret_enc = Vec::new();
            secret_enc.put_blob(&connection_secret);
            let cbl =
                seal(&session_key, KeyUsage::AuthConnectionSecret, &secret_enc).map_err(|_| EIO)?;
            let mut cbl_blob = Vec::new();
            cbl_blob.put_blob(&cbl);
            out.put_blob(&cbl_blob);

            let mut grants = Vec::new();
            for bit in 0..32 {
                let svc = 1u32 << bit;
                if req.other_keys & svc == 0
                    || svc == SERVICE_AUTH
                    || ctx.secrets.current_by_id(svc).is_none()
                {
                    continue;
                }
                let mut t = auth_ticket.clone();
                t.created = now;
                t.expires = utime_add(now, ctx.service_ticket_ttl);
                // Mon tickets keep the (blank) parent caps, as in Ceph.
                if svc != service_id(EntityType::Mon) {
                    let caps_name = u8::try_from(svc)
                        .ok()
                        .and_then(EntityType::from_u8)
                        .map(EntityType::as_str);
                    t.caps = match caps_name.and_then(|n| entry.caps.get(n)) {
                        Some(c) => AuthCapsInfo::from_caps_string(c),
                        None => AuthCapsInfo::default(),
                    };
                }
                // A service session key is of the weaker of the client's and the service
                // secret's types (`CephxKeyServer`'s `min(requested, service cipher)`).
                let svc_type = ctx
                    .secrets
                    .current_by_id(svc)
                    .map_or(client_type, |(_, k)| k.key_type());
                let k = CryptoKey::generate_of(client_type.min(svc_type)).map_err(|_| EIO)?;
                grants.push(self.grant(svc, t, k, ctx.service_ticket_ttl)?);
            }
            let mut extra = Vec::new();
            if !grants.is_empty() {
                encode_service_ticket_reply(&mut extra, &session_key, &grants, None)
                    .map_err(|_| EIO)?;
            }
            out.put_blob(&extra);
        }
        Ok(ServerStep::Done {
            payload: out,
            result: AuthResult {
                global_id,
                con_mode: self.con_mode,
                session_key: session_key.secret().to_vec(),
                connection_secret,
                peer_name: Some(name),
            },
        })
    }

    /// Builds one grant: the ticket sealed with the service's current secret.
    fn grant(
        &self,
        service: u32,
        ticket: AuthTicket,
        session_key: CryptoKey,
        ttl: u32,
    ) -> Result<TicketGrant, i32> {
        let (secret_id, secret) = self.ctx.secrets.current_by_id(service).ok_or(EIO)?;
        let info = CephXServiceTicketInfo {
            ticket,
            session_key: session_key.clone(),
        };
        let blob = seal_struct(secret, KeyUsage::TicketInfo, &info).map_err(|_| EIO)?;
        Ok(TicketGrant {
            service_id: service,
            session_key,
            validity: UTime { sec: ttl, nsec: 0 },
            ticket: CephXTicketBlob { secret_id, blob },
        })
    }
}

impl ServerAuth for MonServerAuth {
    fn method(&self) -> u32 {
        AUTH_CEPHX
    }

    fn request(&mut self, con_mode: u32, payload: &[u8]) -> ServerStep {
        if !matches!(self.state, MonServerState::Init) {
            return ServerStep::Reject(EINVAL);
        }
        self.con_mode = con_mode;
        let parsed = (|| -> Result<(EntityName, u64), DecodeError> {
            let mut d = Decoder::new(payload);
            let mode = d.u8("auth mode")?;
            if !(AUTH_MODE_MON..AUTH_MODE_MON_MAX).contains(&mode) {
                return Err(DecodeError::InvalidValue {
                    what: "auth mode",
                    value: u64::from(mode),
                });
            }
            Ok((EntityName::decode(&mut d)?, d.u64("global_id")?))
        })();
        let Ok((name, gid)) = parsed else {
            // Ceph's mon answers undecodable requests and non-mon modes with EACCES.
            return ServerStep::Reject(EACCES);
        };
        // Unknown entities are rejected only after the challenge round, as Ceph does, so the
        // reply does not reveal which names exist.
        let (global_id, is_new) = if gid == 0 {
            (self.ctx.global_ids.next_id(), true)
        } else {
            (gid, false)
        };
        let server_challenge = loop {
            match random_u64() {
                Some(0) => continue,
                Some(c) => break c,
                None => return ServerStep::Reject(EIO),
            }
        };
        self.state = MonServerState::Challenged {
            name,
            global_id,
            is_new,
            server_challenge,
        };
        ServerStep::More(CephXServerChallenge { server_challenge }.to_bytes())
    }

    fn request_more(&mut self, payload: &[u8]) -> ServerStep {
        let MonServerState::Challenged {
            name,
            global_id,
            is_new,
            server_challenge,
        } = std::mem::replace(&mut self.state, MonServerState::Done)
        else {
            return ServerStep::Reject(EINVAL);
        };
        match self.finish(name, global_id, is_new, server_challenge, payload) {
            Ok(step) => step,
            Err(code) => ServerStep::Reject(code),
        }
    }
}

/// What a verified authorizer yields.
struct VerifiedAuthorizer {
    info: CephXServiceTicketInfo,
    msg: CephXAuthorize,
}

/// Authorizer verification for an OSD/MGR/MDS-style daemon (`cephx_verify_authorizer`):
/// opens the ticket with the service secret named by its `secret_id`, checks its global id
/// and expiry, opens `CephXAuthorize` with the ticket's session key, challenges the client
/// once, and replies with `CephXAuthorizeReply` (v2 with a 64-byte connection secret in
/// secure mode, v1 in crc mode).
pub struct AuthorizerServerAuth {
    service: EntityType,
    secrets: SecretsSource,
    con_mode: u32,
    challenge: Option<u64>,
    caps: Option<AuthCapsInfo>,
    done: bool,
}

impl fmt::Debug for AuthorizerServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizerServerAuth")
            .field("service", &self.service)
            .field("con_mode", &self.con_mode)
            .finish()
    }
}

impl AuthorizerServerAuth {
    /// A verifier for tickets of `service` (e.g. `EntityType::Osd`) opened with `secrets`
    /// (fixed [`ServiceSecrets`] or a daemon's [`RotatingKeyring`]).
    pub fn new(service: EntityType, secrets: impl Into<SecretsSource>) -> Self {
        Self {
            service,
            secrets: secrets.into(),
            con_mode: 0,
            challenge: None,
            caps: None,
            done: false,
        }
    }

    /// After success: the caps carried by the client's ticket for this service.
    pub fn peer_caps(&self) -> Option<&AuthCapsInfo> {
        self.caps.as_ref()
    }

    fn verify(&self, payload: &[u8]) -> Result<VerifiedAuthorizer, AuthError> {
        let mut d = Decoder::new(payload);
        let v = d.u8("authorizer v")?;
        if !(AUTH_MODE_AUTHORIZER..AUTH_MODE_MON).contains(&v) {
            return Err(AuthError::Unexpected("not an authorizer"));
        }
        let global_id = d.u64("authorizer global_id")?;
        let svc = d.u32("authorizer service_id")?;
        if svc != service_id(self.service) {
            return Err(AuthError::NoTicket(self.service));
        }
        let ticket = CephXTicketBlob::decode(&mut d)?;
        let info = open_ticket(&self.secrets.snapshot(), svc, &ticket)?;
        if info.ticket.global_id != global_id {
            return Err(AuthError::BadProof("ticket global_id mismatch".into()));
        }
        let now = utime_now();
        if (info.ticket.expires.sec, info.ticket.expires.nsec) < (now.sec, now.nsec) {
            return Err(AuthError::TicketExpired(self.service));
        }
        let msg: CephXAuthorize =
            unseal_struct_blob(&info.session_key, KeyUsage::Authorize, &mut d)?;
        Ok(VerifiedAuthorizer { info, msg })
    }
}

impl AuthorizerServerAuth {
    fn refuse(&self, e: AuthError) -> ServerStep {
        tracing::debug!(error = %e, "cephx: authorizer rejected");
        if let SecretsSource::Rotating(k) = &self.secrets {
            k.record_rejection(e);
        }
        ServerStep::Reject(EACCES)
    }
}

/// Where an [`AuthorizerServerAuth`] finds service secrets.
#[derive(Debug, Clone)]
pub enum SecretsSource {
    /// A fixed set (our own mon-style server's).
    Fixed(Arc<ServiceSecrets>),
    /// A daemon's rotating keyring, refreshed from a real mon; refusals are recorded in it.
    Rotating(RotatingKeyring),
}

impl SecretsSource {
    fn snapshot(&self) -> Arc<ServiceSecrets> {
        match self {
            Self::Fixed(s) => Arc::clone(s),
            Self::Rotating(k) => k.snapshot(),
        }
    }
}

impl From<Arc<ServiceSecrets>> for SecretsSource {
    fn from(s: Arc<ServiceSecrets>) -> Self {
        Self::Fixed(s)
    }
}

impl From<RotatingKeyring> for SecretsSource {
    fn from(k: RotatingKeyring) -> Self {
        Self::Rotating(k)
    }
}

impl ServerAuth for AuthorizerServerAuth {
    fn method(&self) -> u32 {
        AUTH_CEPHX
    }

    fn request(&mut self, con_mode: u32, payload: &[u8]) -> ServerStep {
        if self.challenge.is_some() || self.done {
            return ServerStep::Reject(EINVAL);
        }
        self.con_mode = con_mode;
        let v = match self.verify(payload) {
            Ok(v) => v,
            Err(e) => return self.refuse(e),
        };
        let Some(server_challenge) = random_u64() else {
            return ServerStep::Reject(EIO);
        };
        match seal_struct(
            &v.info.session_key,
            KeyUsage::AuthorizeChallenge,
            &CephXAuthorizeChallenge { server_challenge },
        ) {
            Ok(ct) => {
                self.challenge = Some(server_challenge);
                ServerStep::More(ct)
            }
            Err(_) => ServerStep::Reject(EIO),
        }
    }

    fn request_more(&mut self, payload: &[u8]) -> ServerStep {
        let Some(challenge) = self.challenge.take() else {
            return ServerStep::Reject(EINVAL);
        };
        self.done = true;
        let v = match self.verify(payload) {
            Ok(v) => v,
            Err(e) => return self.refuse(e),
        };
        if !v.msg.have_challenge || v.msg.server_challenge_plus_one != challenge.wrapping_add(1) {
            tracing::debug!("cephx: authorizer challenge answer mismatch");
            return ServerStep::Reject(EACCES);
        }
        let connection_secret = if self.con_mode == CON_MODE_SECURE {
            match random_bytes(CONNECTION_SECRET_LEN) {
                Some(s) => s,
                None => return ServerStep::Reject(EIO),
            }
        } else {
            Vec::new()
        };
        let reply = CephXAuthorizeReply {
            nonce_plus_one: v.msg.nonce.wrapping_add(1),
            connection_secret: connection_secret.clone(),
        };
        let mut out = Vec::new();
        if put_sealed_struct(
            &mut out,
            &v.info.session_key,
            KeyUsage::AuthorizeReply,
            &reply,
        )
        .is_err()
        {
            return ServerStep::Reject(EIO);
        }
        self.caps = Some(v.info.ticket.caps.clone());
        ServerStep::Done {
            payload: out,
            result: AuthResult {
                global_id: v.info.ticket.global_id,
                con_mode: self.con_mode,
                session_key: v.info.session_key.secret().to_vec(),
                connection_secret,
                peer_name: Some(v.info.ticket.name),
            },
        }
    }
}
