//! cephx client side: login to a mon ([`MonClientAuth`]) and authorizers for OSD/MGR/MDS
//! ([`AuthorizerClientAuth`]).

use std::fmt;
use std::time::SystemTime;

use msgr2_codec::encoding::{Decoder, Encode};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_CEPHX, CON_MODE_SECURE};

use super::seal::{calc_client_server_challenge, unseal_blob, KeyUsage};
use super::tickets::{ServiceTicket, TicketStore};
use super::types::{
    decode_service_ticket_reply, put_sealed_struct, unseal_struct, unseal_struct_blob,
    CephXAuthenticate, CephXAuthorize, CephXAuthorizeChallenge, CephXAuthorizeReply,
    CephXRequestHeader, CephXResponseHeader, CephXServerChallenge, CephXTicketBlob, CephxEncode,
    TicketGrant, CEPHX_GET_AUTH_SESSION_KEY,
};
use crate::auth::{AuthError, AuthResult, ClientAuth, AUTH_MODE_AUTHORIZER, AUTH_MODE_MON};
use crate::keyring::CryptoKey;

/// `CEPH_ENTITY_TYPE_AUTH` as a service id.
pub const SERVICE_AUTH: u32 = EntityType::Auth as u32;
/// Default `other_keys`: AUTH | MON | OSD | MGR (0x35), what a daemon or long-lived client
/// wants so that it can talk to OSDs and MGRs without another round trip.
pub const DEFAULT_WANT_KEYS: u32 = EntityType::Auth as u32
    | EntityType::Mon as u32
    | EntityType::Osd as u32
    | EntityType::Mgr as u32;

pub(crate) fn random_u64() -> Result<u64, AuthError> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| AuthError::Crypto("random number generator failed"))?;
    Ok(u64::from_le_bytes(b))
}

/// Builds the AUTH_REQUEST_MORE payload of a mon login: `CephXRequestHeader(0x0100)` +
/// `CephXAuthenticate` v3 with the proof computed from `key` and both challenges.
pub fn build_authenticate(
    key: &CryptoKey,
    server_challenge: u64,
    client_challenge: u64,
    old_ticket: &CephXTicketBlob,
    other_keys: u32,
) -> Result<Vec<u8>, AuthError> {
    let proof = calc_client_server_challenge(key, server_challenge, client_challenge)?;
    let mut out = CephXRequestHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
    }
    .to_bytes();
    CephXAuthenticate {
        struct_v: 3,
        client_challenge,
        key: proof,
        old_ticket: old_ticket.clone(),
        other_keys,
    }
    .encode(&mut out);
    Ok(out)
}

/// The decoded AUTH_DONE payload of a mon login.
#[derive(Clone)]
pub struct MonAuthReply {
    /// The AUTH ticket; its session key is the connection's session key.
    pub auth: TicketGrant,
    /// The connection secret (`None` if the mon sent no `cbl`, i.e. `other_keys` was 0;
    /// empty in crc mode).
    pub connection_secret: Option<Vec<u8>>,
    /// Service tickets from `extra`.
    pub extra: Vec<TicketGrant>,
}

impl fmt::Debug for MonAuthReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonAuthReply")
            .field("auth", &self.auth)
            .field(
                "connection_secret_len",
                &self.connection_secret.as_ref().map(Vec::len),
            )
            .field("extra", &self.extra)
            .finish()
    }
}

/// Decodes and decrypts a mon's AUTH_DONE payload (`CephXResponseHeader`, service ticket
/// reply sealed with the client's `key`, then optional `cbl` and `extra` sealed with the new
/// session key). `old_session_key` opens a reclaimed AUTH ticket (`ticket_enc = 1`).
pub fn parse_mon_auth_done(
    key: &CryptoKey,
    old_session_key: Option<&CryptoKey>,
    payload: &[u8],
) -> Result<MonAuthReply, AuthError> {
    let mut d = Decoder::new(payload);
    let h = CephXResponseHeader::decode(&mut d)?;
    if h.request_type != CEPHX_GET_AUTH_SESSION_KEY {
        return Err(AuthError::Unexpected(
            "cephx reply to a different request type",
        ));
    }
    if h.status != 0 {
        return Err(AuthError::PeerError(h.status));
    }
    let grants = decode_service_ticket_reply(&mut d, key, old_session_key)?;
    let auth = grants
        .into_iter()
        .find(|g| g.service_id == SERVICE_AUTH)
        .ok_or(AuthError::Unexpected("cephx reply without an AUTH ticket"))?;
    let mut connection_secret = None;
    let mut extra = Vec::new();
    if d.remaining() > 0 {
        let cbl = d.blob("cbl")?;
        let extra_bl = d.blob("extra tickets")?;
        if !cbl.is_empty() {
            // `cbl` holds `encode_encrypt` output: itself a length-prefixed ciphertext.
            let plain = unseal_blob(
                &auth.session_key,
                KeyUsage::AuthConnectionSecret,
                &mut Decoder::new(cbl),
            )?;
            connection_secret = Some(Decoder::new(&plain).blob("connection secret")?.to_vec());
        }
        if !extra_bl.is_empty() {
            extra =
                decode_service_ticket_reply(&mut Decoder::new(extra_bl), &auth.session_key, None)?;
        }
    }
    Ok(MonAuthReply {
        auth,
        connection_secret,
        extra,
    })
}

/// Stores the tickets of a [`MonAuthReply`] received at `now` (the AUTH ticket, then the
/// service tickets of `extra`, an AUTH entry there aside: the AUTH ticket is the first part's);
/// returns the service ids stored, AUTH first. Shared by the login and AUTH-ticket renewal.
pub(crate) fn store_mon_auth_reply(
    store: &TicketStore,
    reply: MonAuthReply,
    now: SystemTime,
) -> Vec<u32> {
    let mut stored = vec![reply.auth.service_id];
    store.insert(ServiceTicket::from_grant(reply.auth, now));
    for g in reply.extra {
        if g.service_id != SERVICE_AUTH {
            stored.push(g.service_id);
            store.insert(ServiceTicket::from_grant(g, now));
        }
    }
    stored
}

enum MonState {
    Init,
    Requested {
        reclaim: Option<(CephXTicketBlob, CryptoKey)>,
    },
    Authenticating {
        old_session_key: Option<CryptoKey>,
        server_challenge: u64,
    },
    Done,
}

/// Client side of a cephx login to a monitor (AUTH_MODE_MON).
///
/// AUTH_REQUEST = `u8 10, EntityName, u64 global_id`; AUTH_REPLY_MORE carries the mon's
/// challenge and is answered with [`build_authenticate`]; AUTH_DONE is decoded with
/// [`parse_mon_auth_done`] and its tickets and global id go to the [`TicketStore`].
pub struct MonClientAuth {
    name: EntityName,
    key: CryptoKey,
    store: TicketStore,
    want_keys: u32,
    reclaim: bool,
    state: MonState,
}

impl fmt::Debug for MonClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonClientAuth")
            .field("name", &self.name.to_string())
            .field("want_keys", &format_args!("{:#x}", self.want_keys))
            .field("reclaim", &self.reclaim)
            .finish()
    }
}

impl MonClientAuth {
    /// A login as `name` with secret `key`, storing the results in `store`. Asks for a fresh
    /// global id and for [`DEFAULT_WANT_KEYS`].
    pub fn new(name: EntityName, key: CryptoKey, store: TicketStore) -> Self {
        Self {
            name,
            key,
            store,
            want_keys: DEFAULT_WANT_KEYS,
            reclaim: false,
            state: MonState::Init,
        }
    }

    /// Sets `other_keys` (AUTH is always added: without a non-zero mask the mon sends no
    /// connection secret and secure mode is impossible).
    pub fn with_want_keys(mut self, mask: u32) -> Self {
        self.want_keys = mask | SERVICE_AUTH;
        self
    }

    /// Reclaims the store's global id, presenting its previous AUTH ticket (CVE-2021-20288
    /// rules), instead of asking for a fresh one. Falls back to a fresh id when the store has
    /// no global id or no AUTH ticket.
    pub fn with_reclaim(mut self, reclaim: bool) -> Self {
        self.reclaim = reclaim;
        self
    }
}

impl ClientAuth for MonClientAuth {
    fn method(&self) -> u32 {
        AUTH_CEPHX
    }

    fn request(&mut self) -> Result<Vec<u8>, AuthError> {
        let mut global_id = 0;
        let mut reclaim = None;
        if self.reclaim && self.store.global_id() != 0 {
            if let Some(t) = self.store.get_even_expired(EntityType::Auth) {
                global_id = self.store.global_id();
                reclaim = Some((t.ticket, t.session_key));
            }
        }
        let mut p = Vec::new();
        p.put_u8(AUTH_MODE_MON);
        self.name.encode(&mut p);
        p.put_u64(global_id);
        self.state = MonState::Requested { reclaim };
        Ok(p)
    }

    fn reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, AuthError> {
        let MonState::Requested { reclaim } = std::mem::replace(&mut self.state, MonState::Done)
        else {
            return Err(AuthError::Unexpected(
                "AUTH_REPLY_MORE before AUTH_REQUEST or twice",
            ));
        };
        let ch = CephXServerChallenge::from_bytes(payload)?;
        let client_challenge = random_u64()?;
        let (old_ticket, old_session_key) = match reclaim {
            Some((t, k)) => (t, Some(k)),
            None => (CephXTicketBlob::default(), None),
        };
        let out = build_authenticate(
            &self.key,
            ch.server_challenge,
            client_challenge,
            &old_ticket,
            self.want_keys,
        )?;
        self.state = MonState::Authenticating {
            old_session_key,
            server_challenge: ch.server_challenge,
        };
        Ok(out)
    }

    fn done(
        &mut self,
        global_id: u64,
        con_mode: u32,
        payload: &[u8],
    ) -> Result<AuthResult, AuthError> {
        let MonState::Authenticating {
            old_session_key,
            server_challenge,
        } = std::mem::replace(&mut self.state, MonState::Done)
        else {
            return Err(AuthError::Unexpected(
                "AUTH_DONE before the cephx challenge round",
            ));
        };
        let mut reply = parse_mon_auth_done(&self.key, old_session_key.as_ref(), payload)?;
        let connection_secret = reply.connection_secret.take().unwrap_or_default();
        if con_mode == CON_MODE_SECURE && connection_secret.is_empty() {
            return Err(AuthError::Unexpected(
                "secure mode chosen but the mon sent no connection secret",
            ));
        }
        let session_key = reply.auth.session_key.secret().to_vec();
        self.store.set_global_id(global_id);
        self.store.set_server_challenge(server_challenge);
        store_mon_auth_reply(&self.store, reply, SystemTime::now());
        Ok(AuthResult {
            global_id,
            con_mode,
            session_key,
            connection_secret,
            peer_name: None,
        })
    }
}

enum AuthorizerState {
    Init,
    Requested,
    Done,
}

/// Client side of a cephx authorizer towards an OSD, MGR or MDS (AUTH_MODE_AUTHORIZER),
/// built from the service's ticket in a [`TicketStore`].
pub struct AuthorizerClientAuth {
    store: Option<TicketStore>,
    service: EntityType,
    global_id: u64,
    ticket: Option<ServiceTicket>,
    nonce: u64,
    /// `u8 1, u64 global_id, u32 service_id, CephXTicketBlob` — reused for the second round.
    base: Vec<u8>,
    state: AuthorizerState,
}

impl fmt::Debug for AuthorizerClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizerClientAuth")
            .field("service", &self.service)
            .field("global_id", &self.global_id)
            .finish()
    }
}

impl AuthorizerClientAuth {
    /// An authorizer for `service` that takes the ticket and global id from `store` when the
    /// request is built ([`AuthError::NoTicket`] then if there is no unexpired ticket).
    pub fn new(store: TicketStore, service: EntityType) -> Self {
        Self {
            store: Some(store),
            service,
            global_id: 0,
            ticket: None,
            nonce: 0,
            base: Vec::new(),
            state: AuthorizerState::Init,
        }
    }

    /// An authorizer from an explicit ticket.
    pub fn with_ticket(global_id: u64, service: EntityType, ticket: ServiceTicket) -> Self {
        Self {
            store: None,
            service,
            global_id,
            ticket: Some(ticket),
            nonce: 0,
            base: Vec::new(),
            state: AuthorizerState::Init,
        }
    }

    fn session_key(&self) -> Result<&CryptoKey, AuthError> {
        self.ticket
            .as_ref()
            .map(|t| &t.session_key)
            .ok_or(AuthError::NoTicket(self.service))
    }

    fn build(
        &self,
        have_challenge: bool,
        server_challenge_plus_one: u64,
    ) -> Result<Vec<u8>, AuthError> {
        let key = self.session_key()?;
        let mut out = self.base.clone();
        let msg = CephXAuthorize {
            nonce: self.nonce,
            have_challenge,
            server_challenge_plus_one,
        };
        put_sealed_struct(&mut out, key, KeyUsage::Authorize, &msg)?;
        Ok(out)
    }
}

impl ClientAuth for AuthorizerClientAuth {
    fn method(&self) -> u32 {
        AUTH_CEPHX
    }

    fn request(&mut self) -> Result<Vec<u8>, AuthError> {
        if let Some(store) = &self.store {
            self.ticket = Some(
                store
                    .get(self.service)
                    .ok_or(AuthError::NoTicket(self.service))?,
            );
            self.global_id = store.global_id();
        }
        let ticket = self
            .ticket
            .as_ref()
            .ok_or(AuthError::NoTicket(self.service))?;
        let mut base = Vec::new();
        base.put_u8(AUTH_MODE_AUTHORIZER);
        base.put_u64(self.global_id);
        base.put_u32(u32::from(self.service as u8));
        ticket.ticket.encode(&mut base);
        self.base = base;
        self.nonce = random_u64()?;
        let out = self.build(false, 0)?;
        self.state = AuthorizerState::Requested;
        Ok(out)
    }

    fn reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, AuthorizerState::Requested) {
            return Err(AuthError::Unexpected("authorizer challenge out of order"));
        }
        // Like Ceph's `add_challenge`: an empty challenge leaves have_challenge unset.
        if payload.is_empty() {
            return self.build(false, 0);
        }
        let ch: CephXAuthorizeChallenge =
            unseal_struct(self.session_key()?, KeyUsage::AuthorizeChallenge, payload)?;
        self.build(true, ch.server_challenge.wrapping_add(1))
    }

    fn done(
        &mut self,
        global_id: u64,
        con_mode: u32,
        payload: &[u8],
    ) -> Result<AuthResult, AuthError> {
        if !matches!(self.state, AuthorizerState::Requested) {
            return Err(AuthError::Unexpected("authorizer AUTH_DONE out of order"));
        }
        self.state = AuthorizerState::Done;
        let key = self.session_key()?.clone();
        let reply: CephXAuthorizeReply =
            unseal_struct_blob(&key, KeyUsage::AuthorizeReply, &mut Decoder::new(payload))?;
        if reply.nonce_plus_one != self.nonce.wrapping_add(1) {
            return Err(AuthError::BadProof(
                "authorizer reply nonce mismatch".into(),
            ));
        }
        if con_mode == CON_MODE_SECURE && reply.connection_secret.is_empty() {
            return Err(AuthError::Unexpected(
                "secure mode chosen but the service sent no connection secret",
            ));
        }
        Ok(AuthResult {
            global_id,
            con_mode,
            session_key: key.secret().to_vec(),
            connection_secret: reply.connection_secret,
            peer_name: None,
        })
    }
}
