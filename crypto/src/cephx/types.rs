//! cephx wire structures (`auth/cephx/CephxProtocol.h`, `auth/Auth.h`).
//!
//! Almost all of them are Ceph's "old style" structs: a leading `u8 struct_v` and no length,
//! so they cannot be skipped without being understood. Encoders write exactly the versions a
//! Pacific daemon writes; decoders accept what Pacific accepts (fields that only exist from a
//! given version on are read only when the version says so, and bytes after a complete struct
//! are ignored, as Ceph's decoders do).

use std::fmt;

use msgr2_codec::encoding::{DecodeError, Decoder, Encode};
use msgr2_codec::entity::EntityName;
use msgr2_codec::payload::UTime;

use super::seal::{seal, unseal, KeyUsage, SealError};
use crate::keyring::CryptoKey;

/// `CEPHX_GET_AUTH_SESSION_KEY`: the request type of the login round.
pub const CEPHX_GET_AUTH_SESSION_KEY: u16 = 0x0100;
/// `CEPHX_GET_PRINCIPAL_SESSION_KEY`: service tickets over an established session (MAuth).
pub const CEPHX_GET_PRINCIPAL_SESSION_KEY: u16 = 0x0200;
/// `CEPHX_GET_ROTATING_KEY`: rotating service secrets for daemons (MAuth).
pub const CEPHX_GET_ROTATING_KEY: u16 = 0x0400;
/// `CEPH_AUTH_UID_DEFAULT`: the `auid` every modern ticket carries.
pub const AUTH_UID_DEFAULT: u64 = u64::MAX;

/// A cephx structure with Ceph's encoding.
pub trait CephxEncode: Sized {
    /// Appends the encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes from a cursor; trailing bytes are left unread.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;
    /// The encoding as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
    /// Decodes from the start of `b`, ignoring trailing bytes (as Ceph does).
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Decoder::new(b))
    }
}

/// Seals a structure in the raw form (`encode_encrypt_enc_bl`).
pub fn seal_struct<T: CephxEncode>(
    key: &CryptoKey,
    usage: KeyUsage,
    v: &T,
) -> Result<Vec<u8>, SealError> {
    seal(key, usage, &v.to_bytes())
}

/// Opens a raw-form sealed structure (`decode_decrypt_enc_bl`).
pub fn unseal_struct<T: CephxEncode>(
    key: &CryptoKey,
    usage: KeyUsage,
    ct: &[u8],
) -> Result<T, SealError> {
    let plain = unseal(key, usage, ct)?;
    Ok(T::from_bytes(&plain)?)
}

/// Opens a length-prefixed sealed structure read from `d` (`decode_decrypt`).
pub fn unseal_struct_blob<T: CephxEncode>(
    key: &CryptoKey,
    usage: KeyUsage,
    d: &mut Decoder<'_>,
) -> Result<T, SealError> {
    let ct = d.blob("sealed blob")?;
    unseal_struct(key, usage, ct)
}

/// Appends a length-prefixed sealed structure (`encode_encrypt`).
pub fn put_sealed_struct<T: CephxEncode>(
    out: &mut Vec<u8>,
    key: &CryptoKey,
    usage: KeyUsage,
    v: &T,
) -> Result<(), SealError> {
    let ct = seal_struct(key, usage, v)?;
    out.put_blob(&ct);
    Ok(())
}

pub(crate) fn put_utime(out: &mut Vec<u8>, t: UTime) {
    out.put_u32(t.sec);
    out.put_u32(t.nsec);
}

pub(crate) fn get_utime(d: &mut Decoder<'_>, what: &'static str) -> Result<UTime, DecodeError> {
    Ok(UTime {
        sec: d.u32(what)?,
        nsec: d.u32(what)?,
    })
}

impl CephxEncode for CryptoKey {
    fn encode(&self, out: &mut Vec<u8>) {
        CryptoKey::encode(self, out);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        CryptoKey::decode(d)
    }
}

/// `CephXServerChallenge` (V1): the mon's AUTH_REPLY_MORE, a random non-zero challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXServerChallenge {
    /// The challenge the client's proof must cover.
    pub server_challenge: u64,
}

impl CephxEncode for CephXServerChallenge {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.server_challenge);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("CephXServerChallenge v")?;
        Ok(Self {
            server_challenge: d.u64("server_challenge")?,
        })
    }
}

/// `CephXRequestHeader`: the request type in front of every cephx request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXRequestHeader {
    /// `CEPHX_GET_*`.
    pub request_type: u16,
}

impl CephxEncode for CephXRequestHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.request_type);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            request_type: d.u16("CephXRequestHeader")?,
        })
    }
}

/// `CephXResponseHeader`: request type echoed plus a status (0 or a negative errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXResponseHeader {
    /// `CEPHX_GET_*` being answered.
    pub request_type: u16,
    /// 0 on success.
    pub status: i32,
}

impl CephxEncode for CephXResponseHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.request_type);
        out.put_i32(self.status);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            request_type: d.u16("CephXResponseHeader type")?,
            status: d.i32("CephXResponseHeader status")?,
        })
    }
}

/// `CephXTicketBlob` (V1): a ticket as the client holds it — opaque bytes sealed with the
/// service's secret number `secret_id` (`u64::MAX` = the service's static key).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CephXTicketBlob {
    /// Which rotating service secret sealed `blob`.
    pub secret_id: u64,
    /// `SEAL_RAW(service_secret, CephXServiceTicketInfo)`; empty for "no ticket".
    pub blob: Vec<u8>,
}

impl fmt::Debug for CephXTicketBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephXTicketBlob")
            .field("secret_id", &self.secret_id)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

impl CephxEncode for CephXTicketBlob {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.secret_id);
        out.put_blob(&self.blob);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("CephXTicketBlob v")?;
        Ok(Self {
            secret_id: d.u64("ticket secret_id")?,
            blob: d.blob("ticket blob")?.to_vec(),
        })
    }
}

/// `CephXAuthenticate`: the client's login request (after a [`CephXRequestHeader`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CephXAuthenticate {
    /// Encoding version; Pacific clients send 3 (2 and 3 encode alike; 3 promises that
    /// `old_ticket` is filled whenever a global id is reclaimed).
    pub struct_v: u8,
    /// The client's random challenge.
    pub client_challenge: u64,
    /// The proof, see [`super::calc_client_server_challenge`].
    pub key: u64,
    /// The previous AUTH ticket when reclaiming a global id, else empty.
    pub old_ticket: CephXTicketBlob,
    /// Services wanted in the same round trip (`CEPH_ENTITY_TYPE_*` bits; v2+).
    pub other_keys: u32,
}

impl CephxEncode for CephXAuthenticate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.struct_v);
        out.put_u64(self.client_challenge);
        out.put_u64(self.key);
        self.old_ticket.encode(out);
        if self.struct_v >= 2 {
            out.put_u32(self.other_keys);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let struct_v = d.u8("CephXAuthenticate v")?;
        let client_challenge = d.u64("client_challenge")?;
        let key = d.u64("client proof")?;
        let old_ticket = CephXTicketBlob::decode(d)?;
        let other_keys = if struct_v >= 2 {
            d.u32("other_keys")?
        } else {
            0
        };
        Ok(Self {
            struct_v,
            client_challenge,
            key,
            old_ticket,
            other_keys,
        })
    }
}

/// `CephXServiceTicket` (V1): what the client can read of a ticket — the session key and how
/// long it is valid. Sealed with the client's secret (AUTH) or the AUTH session key (others).
#[derive(Clone, PartialEq, Eq)]
pub struct CephXServiceTicket {
    /// The session key shared with the service.
    pub session_key: CryptoKey,
    /// Validity, relative (`utime` used as a duration).
    pub validity: UTime,
}

impl fmt::Debug for CephXServiceTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephXServiceTicket")
            .field("validity", &self.validity)
            .finish()
    }
}

impl CephxEncode for CephXServiceTicket {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        self.session_key.encode(out);
        put_utime(out, self.validity);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("CephXServiceTicket v")?;
        Ok(Self {
            session_key: CryptoKey::decode(d)?,
            validity: get_utime(d, "validity")?,
        })
    }
}

/// `AuthCapsInfo` (V1): the capabilities a ticket grants. `caps` is the encoding of the caps
/// *string* (`u32` length + text), as Ceph stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthCapsInfo {
    /// Legacy "allow everything" flag (always false from modern mons).
    pub allow_all: bool,
    /// Encoded caps string, or empty.
    pub caps: Vec<u8>,
}

impl AuthCapsInfo {
    /// Caps from a caps string (`"allow *"`), encoded as Ceph stores them.
    pub fn from_caps_string(s: &str) -> Self {
        let mut caps = Vec::new();
        caps.put_blob(s.as_bytes());
        Self {
            allow_all: false,
            caps,
        }
    }

    /// The caps string, if `caps` holds a well-formed one.
    pub fn caps_string(&self) -> Option<String> {
        Decoder::new(&self.caps).string("caps").ok()
    }
}

impl CephxEncode for AuthCapsInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_bool(self.allow_all);
        out.put_blob(&self.caps);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("AuthCapsInfo v")?;
        Ok(Self {
            allow_all: d.bool("allow_all")?,
            caps: d.blob("caps")?.to_vec(),
        })
    }
}

/// `AuthTicket` (encoded as v2): who the ticket is for and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTicket {
    /// The authenticated entity.
    pub name: EntityName,
    /// Its global id.
    pub global_id: u64,
    /// Legacy owner id; always [`AUTH_UID_DEFAULT`].
    pub auid: u64,
    /// Issue time.
    pub created: UTime,
    /// Expiry time (absolute).
    pub expires: UTime,
    /// Capabilities for the service.
    pub caps: AuthCapsInfo,
    /// Flags (0).
    pub flags: u32,
}

impl CephxEncode for AuthTicket {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(2);
        self.name.encode(out);
        out.put_u64(self.global_id);
        out.put_u64(self.auid);
        put_utime(out, self.created);
        put_utime(out, self.expires);
        self.caps.encode(out);
        out.put_u32(self.flags);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = d.u8("AuthTicket v")?;
        let name = EntityName::decode(d)?;
        let global_id = d.u64("ticket global_id")?;
        let auid = if v >= 2 {
            d.u64("auid")?
        } else {
            AUTH_UID_DEFAULT
        };
        Ok(Self {
            name,
            global_id,
            auid,
            created: get_utime(d, "ticket created")?,
            expires: get_utime(d, "ticket expires")?,
            caps: AuthCapsInfo::decode(d)?,
            flags: d.u32("ticket flags")?,
        })
    }
}

/// `CephXServiceTicketInfo` (V1): the inside of a ticket blob, readable only by the service.
#[derive(Clone, PartialEq, Eq)]
pub struct CephXServiceTicketInfo {
    /// Who and until when.
    pub ticket: AuthTicket,
    /// The session key the client also received.
    pub session_key: CryptoKey,
}

impl fmt::Debug for CephXServiceTicketInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephXServiceTicketInfo")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl CephxEncode for CephXServiceTicketInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        self.ticket.encode(out);
        self.session_key.encode(out);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("CephXServiceTicketInfo v")?;
        Ok(Self {
            ticket: AuthTicket::decode(d)?,
            session_key: CryptoKey::decode(d)?,
        })
    }
}

/// `CephXAuthorize` (v2): the sealed part of an authorizer, proving possession of the
/// ticket's session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXAuthorize {
    /// Random per-authorizer nonce; the reply must carry `nonce + 1`.
    pub nonce: u64,
    /// Whether `server_challenge_plus_one` answers a server challenge.
    pub have_challenge: bool,
    /// The server's challenge plus one.
    pub server_challenge_plus_one: u64,
}

impl CephxEncode for CephXAuthorize {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(2);
        out.put_u64(self.nonce);
        out.put_bool(self.have_challenge);
        out.put_u64(self.server_challenge_plus_one);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = d.u8("CephXAuthorize v")?;
        let nonce = d.u64("authorize nonce")?;
        let (have_challenge, server_challenge_plus_one) = if v >= 2 {
            (
                d.bool("have_challenge")?,
                d.u64("server_challenge_plus_one")?,
            )
        } else {
            (false, 0)
        };
        Ok(Self {
            nonce,
            have_challenge,
            server_challenge_plus_one,
        })
    }
}

/// `CephXAuthorizeChallenge` (V1): the service's challenge to an authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXAuthorizeChallenge {
    /// Random challenge.
    pub server_challenge: u64,
}

impl CephxEncode for CephXAuthorizeChallenge {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.server_challenge);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u8("CephXAuthorizeChallenge v")?;
        Ok(Self {
            server_challenge: d.u64("authorize server_challenge")?,
        })
    }
}

/// `CephXAuthorizeReply`: v1 (`nonce + 1`) or, when a connection secret follows, v2.
#[derive(Clone, PartialEq, Eq)]
pub struct CephXAuthorizeReply {
    /// The authorizer's nonce plus one.
    pub nonce_plus_one: u64,
    /// Connection secret (v2 only; empty means v1 is encoded, as Ceph does).
    pub connection_secret: Vec<u8>,
}

impl fmt::Debug for CephXAuthorizeReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CephXAuthorizeReply")
            .field("nonce_plus_one", &self.nonce_plus_one)
            .field("connection_secret_len", &self.connection_secret.len())
            .finish()
    }
}

impl CephxEncode for CephXAuthorizeReply {
    fn encode(&self, out: &mut Vec<u8>) {
        let v = if self.connection_secret.is_empty() {
            1
        } else {
            2
        };
        out.put_u8(v);
        out.put_u64(self.nonce_plus_one);
        if v >= 2 {
            out.put_blob(&self.connection_secret);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = d.u8("CephXAuthorizeReply v")?;
        let nonce_plus_one = d.u64("nonce_plus_one")?;
        let connection_secret = if v >= 2 {
            d.blob("connection_secret")?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Self {
            nonce_plus_one,
            connection_secret,
        })
    }
}

/// One entry of a service ticket reply, as issued or received.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketGrant {
    /// `CEPH_ENTITY_TYPE_*` of the service.
    pub service_id: u32,
    /// The session key for that service.
    pub session_key: CryptoKey,
    /// Validity (relative).
    pub validity: UTime,
    /// The opaque ticket to present to the service.
    pub ticket: CephXTicketBlob,
}

impl fmt::Debug for TicketGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketGrant")
            .field("service_id", &self.service_id)
            .field("validity", &self.validity)
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// `cephx_build_service_ticket_reply`: `u8 1, u32 n`, then per grant `u32 service_id, u8 1,
/// SEAL(principal_key, TICKET_SESSION_KEY, CephXServiceTicket), u8 ticket_enc, ticket`. The
/// ticket is `blob(CephXTicketBlob)`, or, when `ticket_enc_key` is given (global-id reclaim),
/// `SEAL(ticket_enc_key, TICKET_BLOB, blob(CephXTicketBlob))`.
pub fn encode_service_ticket_reply(
    out: &mut Vec<u8>,
    principal_key: &CryptoKey,
    grants: &[TicketGrant],
    ticket_enc_key: Option<&CryptoKey>,
) -> Result<(), SealError> {
    out.put_u8(1);
    out.put_u32(u32::try_from(grants.len()).unwrap_or(u32::MAX));
    for g in grants {
        out.put_u32(g.service_id);
        out.put_u8(1);
        let msg = CephXServiceTicket {
            session_key: g.session_key.clone(),
            validity: g.validity,
        };
        put_sealed_struct(out, principal_key, KeyUsage::TicketSessionKey, &msg)?;
        let mut ticket_bl = Vec::new();
        ticket_bl.put_blob(&g.ticket.to_bytes());
        match ticket_enc_key {
            Some(k) => {
                out.put_u8(1);
                let ct = seal(k, KeyUsage::TicketBlob, &ticket_bl)?;
                out.put_blob(&ct);
            }
            None => {
                out.put_u8(0);
                out.extend_from_slice(&ticket_bl);
            }
        }
    }
    Ok(())
}

/// Inverse of [`encode_service_ticket_reply`] (`CephXTicketManager::verify_service_ticket_reply`).
/// `ticket_enc_key` opens tickets sent with `ticket_enc = 1`; without it they are an error.
pub fn decode_service_ticket_reply(
    d: &mut Decoder<'_>,
    principal_key: &CryptoKey,
    ticket_enc_key: Option<&CryptoKey>,
) -> Result<Vec<TicketGrant>, SealError> {
    d.u8("service_ticket_reply v")?;
    // Each grant takes at least 4 + 1 + 4 + 1 + 4 bytes.
    let n = d.count(14, "service ticket count")?;
    let mut grants = Vec::with_capacity(n);
    for _ in 0..n {
        let service_id = d.u32("service_id")?;
        d.u8("service_ticket v")?;
        let msg: CephXServiceTicket =
            unseal_struct_blob(principal_key, KeyUsage::TicketSessionKey, d)?;
        let ticket_enc = d.u8("ticket_enc")?;
        let ticket = if ticket_enc != 0 {
            let key = ticket_enc_key.ok_or(SealError::Decode(DecodeError::InvalidValue {
                what: "ticket_enc without a previous session key",
                value: u64::from(ticket_enc),
            }))?;
            let ct = d.blob("encrypted ticket")?;
            let plain = unseal(key, KeyUsage::TicketBlob, ct)?;
            let mut pd = Decoder::new(&plain);
            let bl = pd.blob("ticket bl")?;
            CephXTicketBlob::from_bytes(bl)?
        } else {
            let bl = d.blob("ticket bl")?;
            CephXTicketBlob::from_bytes(bl)?
        };
        grants.push(TicketGrant {
            service_id,
            session_key: msg.session_key,
            validity: msg.validity,
            ticket,
        });
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CryptoKey inside a cephx structure is its own encoding (type, created, secret).
    #[test]
    fn crypto_key_as_a_cephx_field() {
        let k = CryptoKey::generate().unwrap();
        let mut as_field = vec![0xEE];
        CephxEncode::encode(&k, &mut as_field);
        let mut plain = vec![0xEE];
        k.encode(&mut plain);
        assert_eq!(as_field, plain);
        assert!(as_field.len() > 16);
        let mut d = Decoder::new(&as_field[1..]);
        assert_eq!(<CryptoKey as CephxEncode>::decode(&mut d).unwrap(), k);
    }

    #[test]
    fn sizes_match_ceph() {
        assert_eq!(CephXTicketBlob::default().to_bytes().len(), 13);
        let auth = CephXAuthenticate {
            struct_v: 3,
            client_challenge: 1,
            key: 2,
            old_ticket: CephXTicketBlob::default(),
            other_keys: 0x20,
        };
        let mut p = CephXRequestHeader {
            request_type: CEPHX_GET_AUTH_SESSION_KEY,
        }
        .to_bytes();
        auth.encode(&mut p);
        assert_eq!(p.len(), 36);
        assert_eq!(CephXAuthenticate::from_bytes(&p[2..]).unwrap(), auth);
        let t = AuthTicket {
            name: "client.admin".parse().unwrap(),
            global_id: 4101,
            auid: AUTH_UID_DEFAULT,
            created: UTime::default(),
            expires: UTime::default(),
            caps: AuthCapsInfo::default(),
            flags: 0,
        };
        let info = CephXServiceTicketInfo {
            ticket: t.clone(),
            session_key: CryptoKey::new(UTime::default(), [1; 16]),
        };
        // 85 bytes inside, 96 sealed, 109 as a ticket blob: the size a Pacific mon sends.
        assert_eq!(info.to_bytes().len(), 85);
        assert_eq!(
            CephXServiceTicketInfo::from_bytes(&info.to_bytes()).unwrap(),
            info
        );
        let caps = AuthCapsInfo::from_caps_string("allow *");
        assert_eq!(caps.caps_string().as_deref(), Some("allow *"));
    }

    #[test]
    fn authorize_reply_versions() {
        let v1 = CephXAuthorizeReply {
            nonce_plus_one: 5,
            connection_secret: vec![],
        };
        assert_eq!(v1.to_bytes(), [1, 5, 0, 0, 0, 0, 0, 0, 0]);
        let v2 = CephXAuthorizeReply {
            nonce_plus_one: 5,
            connection_secret: vec![9; 64],
        };
        let b = v2.to_bytes();
        assert_eq!(b[0], 2);
        assert_eq!(b.len(), 1 + 8 + 4 + 64);
        assert_eq!(CephXAuthorizeReply::from_bytes(&b).unwrap(), v2);
    }
}
