//! Typed payloads of the control frames (every tag but MESSAGE).
//!
//! Field orders follow Ceph's `frames_v2.h` (verified against Pacific daemons, wire reference
//! §4.3). Control payloads have no version byte: the layout is fixed by the tag. Decoding is
//! strict: a short payload, an invalid value or trailing bytes are typed errors.

use crate::addr::{EntityAddr, EntityAddrVec};
use crate::encoding::{DecodeError, Decoder, Encode};
use crate::entity::EntityType;
use crate::frame::Tag;

/// `CEPH_AUTH_NONE`.
pub const AUTH_NONE: u32 = 1;
/// `CEPH_AUTH_CEPHX`.
pub const AUTH_CEPHX: u32 = 2;
/// `CEPH_CON_MODE_CRC`.
pub const CON_MODE_CRC: u32 = 1;
/// `CEPH_CON_MODE_SECURE`.
pub const CON_MODE_SECURE: u32 = 2;
/// `CEPH_MSG_CONNECT_LOSSY` in CLIENT_IDENT/SERVER_IDENT flags.
pub const IDENT_FLAG_LOSSY: u64 = 1;

/// `utime_t` / `ceph_timespec`: seconds and nanoseconds, `u32` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct UTime {
    /// Seconds since the epoch.
    pub sec: u32,
    /// Nanoseconds.
    pub nsec: u32,
}

impl UTime {
    /// The stamp for a time since the Unix epoch (seconds wrap at 2^32, as Ceph's `u32`).
    pub fn from_unix(since_epoch: std::time::Duration) -> Self {
        UTime {
            sec: since_epoch.as_secs() as u32,
            nsec: since_epoch.subsec_nanos(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.sec);
        out.put_u32(self.nsec);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sec: d.u32("utime sec")?,
            nsec: d.u32("utime nsec")?,
        })
    }
}

/// A control payload: its tag and its wire form.
pub trait ControlPayload: Sized {
    /// The frame tag carrying this payload.
    const TAG: Tag;
    /// Appends the wire form.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes from a cursor (without the trailing-bytes check).
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;
    /// Decodes a whole payload, rejecting trailing bytes.
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(payload);
        let v = Self::decode_from(&mut d)?;
        d.finish(Self::TAG.name())?;
        Ok(v)
    }
    /// The wire form as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// Defines a payload struct with its fields encoded in order.
macro_rules! payload {
    ($(#[$m:meta])* $name:ident = $tag:ident { $($(#[$fm:meta])* $f:ident : $t:ty => $enc:ident / $dec:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        impl ControlPayload for $name {
            const TAG: Tag = Tag::$tag;
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) { $( field::$enc(out, &self.$f); )* }
            #[allow(unused_variables)]
            fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $($f: field::$dec(d, concat!(stringify!($name), ".", stringify!($f)))?,)* })
            }
        }
    };
}

/// Per-type field codecs used by the `payload!` macro.
mod field {
    use super::*;
    pub fn put_u32(o: &mut Vec<u8>, v: &u32) {
        o.put_u32(*v)
    }
    pub fn put_u64(o: &mut Vec<u8>, v: &u64) {
        o.put_u64(*v)
    }
    pub fn put_i32(o: &mut Vec<u8>, v: &i32) {
        o.put_i32(*v)
    }
    pub fn put_i64(o: &mut Vec<u8>, v: &i64) {
        o.put_i64(*v)
    }
    pub fn put_bool(o: &mut Vec<u8>, v: &bool) {
        o.put_bool(*v)
    }
    pub fn put_blob(o: &mut Vec<u8>, v: &[u8]) {
        o.put_blob(v)
    }
    pub fn put_vec_u32(o: &mut Vec<u8>, v: &[u32]) {
        o.put_vec_u32(v)
    }
    pub fn put_raw32(o: &mut Vec<u8>, v: &[u8; 32]) {
        o.extend_from_slice(v)
    }
    pub fn put_addr(o: &mut Vec<u8>, v: &EntityAddr) {
        v.encode(o)
    }
    pub fn put_addrvec(o: &mut Vec<u8>, v: &EntityAddrVec) {
        v.encode(o)
    }
    pub fn put_utime(o: &mut Vec<u8>, v: &UTime) {
        v.encode(o)
    }
    pub fn put_etype(o: &mut Vec<u8>, v: &EntityType) {
        o.put_u8(*v as u8)
    }
    pub fn u32(d: &mut Decoder<'_>, w: &'static str) -> Result<u32, DecodeError> {
        d.u32(w)
    }
    pub fn u64(d: &mut Decoder<'_>, w: &'static str) -> Result<u64, DecodeError> {
        d.u64(w)
    }
    pub fn i32(d: &mut Decoder<'_>, w: &'static str) -> Result<i32, DecodeError> {
        d.i32(w)
    }
    pub fn i64(d: &mut Decoder<'_>, w: &'static str) -> Result<i64, DecodeError> {
        d.i64(w)
    }
    pub fn bool(d: &mut Decoder<'_>, w: &'static str) -> Result<bool, DecodeError> {
        match d.u8(w)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::InvalidValue {
                what: w,
                value: u64::from(v),
            }),
        }
    }
    pub fn blob(d: &mut Decoder<'_>, w: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(d.blob(w)?.to_vec())
    }
    pub fn vec_u32(d: &mut Decoder<'_>, w: &'static str) -> Result<Vec<u32>, DecodeError> {
        d.vec_u32(w)
    }
    pub fn raw32(d: &mut Decoder<'_>, w: &'static str) -> Result<[u8; 32], DecodeError> {
        d.array(w)
    }
    pub fn addr(d: &mut Decoder<'_>, _w: &'static str) -> Result<EntityAddr, DecodeError> {
        EntityAddr::decode(d)
    }
    pub fn addrvec(d: &mut Decoder<'_>, _w: &'static str) -> Result<EntityAddrVec, DecodeError> {
        EntityAddrVec::decode(d)
    }
    pub fn utime(d: &mut Decoder<'_>, _w: &'static str) -> Result<UTime, DecodeError> {
        UTime::decode(d)
    }
    pub fn etype(d: &mut Decoder<'_>, w: &'static str) -> Result<EntityType, DecodeError> {
        EntityType::decode_u8(d, w)
    }
}

payload!(
    /// HELLO: the sender's entity type and the peer's address as the sender sees it.
    Hello = Hello {
        /// Sender's entity type.
        entity_type: EntityType => put_etype / etype,
        /// The receiver's address as seen by the sender.
        peer_addr: EntityAddr => put_addr / addr,
    }
);
payload!(
    /// AUTH_REQUEST: method, preferred connection modes, method-specific payload.
    AuthRequest = AuthRequest {
        /// `CEPH_AUTH_*`.
        method: u32 => put_u32 / u32,
        /// `CEPH_CON_MODE_*` in preference order.
        preferred_modes: Vec<u32> => put_vec_u32 / vec_u32,
        /// Method-specific request.
        auth_payload: Vec<u8> => put_blob / blob,
    }
);
payload!(
    /// AUTH_BAD_METHOD: the rejected method, the error and what the server allows.
    AuthBadMethod = AuthBadMethod {
        /// The rejected method.
        method: u32 => put_u32 / u32,
        /// Negative errno (e.g. -95 EOPNOTSUPP, -13 EACCES).
        result: i32 => put_i32 / i32,
        /// Methods the server accepts.
        allowed_methods: Vec<u32> => put_vec_u32 / vec_u32,
        /// Modes the server accepts.
        allowed_modes: Vec<u32> => put_vec_u32 / vec_u32,
    }
);
payload!(
    /// AUTH_REPLY_MORE: another round of the auth method (e.g. a cephx challenge).
    AuthReplyMore = AuthReplyMore {
        /// Method-specific payload.
        auth_payload: Vec<u8> => put_blob / blob,
    }
);
payload!(
    /// AUTH_REQUEST_MORE: the client's answer to AUTH_REPLY_MORE.
    AuthRequestMore = AuthRequestMore {
        /// Method-specific payload.
        auth_payload: Vec<u8> => put_blob / blob,
    }
);
payload!(
    /// AUTH_DONE: authentication succeeded; the server's chosen mode.
    AuthDone = AuthDone {
        /// Global id assigned by the server.
        global_id: u64 => put_u64 / u64,
        /// `CEPH_CON_MODE_*` chosen by the server.
        con_mode: u32 => put_u32 / u32,
        /// Method-specific payload (cephx tickets, connection secret).
        auth_payload: Vec<u8> => put_blob / blob,
    }
);
payload!(
    /// AUTH_SIGNATURE: HMAC-SHA256 over the pre-auth bytes the sender received.
    AuthSignature = AuthSignature {
        /// The 32-byte HMAC (all zero with auth none).
        sha256: [u8; 32] => put_raw32 / raw32,
    }
);
payload!(
    /// CLIENT_IDENT: the client's identity for a new session.
    ClientIdent = ClientIdent {
        /// The client's own addresses.
        addrs: EntityAddrVec => put_addrvec / addrvec,
        /// The exact server address being connected to.
        target_addr: EntityAddr => put_addr / addr,
        /// Entity number (`-1` before a client knows it).
        gid: i64 => put_i64 / i64,
        /// Messenger-wide connection attempt counter.
        global_seq: u64 => put_u64 / u64,
        /// `CEPH_FEATURE_*` supported.
        supported_features: u64 => put_u64 / u64,
        /// `CEPH_FEATURE_*` required of the server.
        required_features: u64 => put_u64 / u64,
        /// [`IDENT_FLAG_LOSSY`].
        flags: u64 => put_u64 / u64,
        /// Non-zero for lossless sessions.
        client_cookie: u64 => put_u64 / u64,
    }
);
payload!(
    /// SERVER_IDENT: the server's identity; it dictates lossiness.
    ServerIdent = ServerIdent {
        /// The server's addresses (must contain the client's `target_addr`).
        addrs: EntityAddrVec => put_addrvec / addrvec,
        /// Entity number.
        gid: i64 => put_i64 / i64,
        /// Server's global_seq.
        global_seq: u64 => put_u64 / u64,
        /// `CEPH_FEATURE_*` supported.
        supported_features: u64 => put_u64 / u64,
        /// `CEPH_FEATURE_*` required of the client.
        required_features: u64 => put_u64 / u64,
        /// [`IDENT_FLAG_LOSSY`].
        flags: u64 => put_u64 / u64,
        /// Non-zero for lossless sessions.
        server_cookie: u64 => put_u64 / u64,
    }
);
payload!(
    /// IDENT_MISSING_FEATURES: features the server requires and the client lacks.
    IdentMissingFeatures = IdentMissingFeatures {
        /// The missing feature bits.
        features: u64 => put_u64 / u64,
    }
);
payload!(
    /// SESSION_RECONNECT: resume a lossless session.
    SessionReconnect = SessionReconnect {
        /// The client's addresses.
        addrs: EntityAddrVec => put_addrvec / addrvec,
        /// Client cookie of the session.
        client_cookie: u64 => put_u64 / u64,
        /// Server cookie of the session.
        server_cookie: u64 => put_u64 / u64,
        /// Fresh global_seq.
        global_seq: u64 => put_u64 / u64,
        /// Reconnect attempt counter.
        connect_seq: u64 => put_u64 / u64,
        /// Last message seq the client received.
        msg_seq: u64 => put_u64 / u64,
    }
);
payload!(
    /// SESSION_RESET: the server has no (usable) session; start a new one.
    SessionReset = SessionReset {
        /// Full reset: discard queues and sequence numbers too.
        full: bool => put_bool / bool,
    }
);
payload!(
    /// SESSION_RETRY: retry the reconnect with a higher connect_seq.
    SessionRetry = SessionRetry {
        /// The server's connect_seq.
        connect_seq: u64 => put_u64 / u64,
    }
);
payload!(
    /// SESSION_RETRY_GLOBAL: retry the reconnect with a higher global_seq.
    SessionRetryGlobal = SessionRetryGlobal {
        /// The server's stored peer global_seq.
        global_seq: u64 => put_u64 / u64,
    }
);
payload!(
    /// SESSION_RECONNECT_OK: the session resumed.
    SessionReconnectOk = SessionReconnectOk {
        /// Last message seq the server received.
        msg_seq: u64 => put_u64 / u64,
    }
);
payload!(
    /// WAIT: a racing connection in the other direction wins; back off.
    Wait = Wait {}
);
payload!(
    /// KEEPALIVE2: liveness probe with the sender's clock.
    Keepalive2 = Keepalive2 {
        /// Sender's wall clock.
        timestamp: UTime => put_utime / utime,
    }
);
payload!(
    /// KEEPALIVE2_ACK: echo of a KEEPALIVE2 stamp.
    Keepalive2Ack = Keepalive2Ack {
        /// The stamp being acknowledged.
        timestamp: UTime => put_utime / utime,
    }
);
payload!(
    /// ACK: highest in-order message seq received.
    Ack = Ack {
        /// The acknowledged seq.
        seq: u64 => put_u64 / u64,
    }
);
payload!(
    /// COMPRESSION_REQUEST (Quincy+): the client's compression wish, right after AUTH_SIGNATURE.
    CompressionRequest = CompressionRequest {
        /// Whether compression is wanted.
        is_compress: bool => put_bool / bool,
        /// Compression methods in preference order.
        preferred_methods: Vec<u32> => put_vec_u32 / vec_u32,
    }
);
payload!(
    /// COMPRESSION_DONE (Quincy+): the server's answer to COMPRESSION_REQUEST.
    CompressionDone = CompressionDone {
        /// Whether compression is on.
        is_compress: bool => put_bool / bool,
        /// The chosen method.
        method: u32 => put_u32 / u32,
    }
);

/// Any control payload, dispatched on its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Control {
    Hello(Hello),
    AuthRequest(AuthRequest),
    AuthBadMethod(AuthBadMethod),
    AuthReplyMore(AuthReplyMore),
    AuthRequestMore(AuthRequestMore),
    AuthDone(AuthDone),
    AuthSignature(AuthSignature),
    ClientIdent(ClientIdent),
    ServerIdent(ServerIdent),
    IdentMissingFeatures(IdentMissingFeatures),
    SessionReconnect(SessionReconnect),
    SessionReset(SessionReset),
    SessionRetry(SessionRetry),
    SessionRetryGlobal(SessionRetryGlobal),
    SessionReconnectOk(SessionReconnectOk),
    Wait(Wait),
    Keepalive2(Keepalive2),
    Keepalive2Ack(Keepalive2Ack),
    Ack(Ack),
    CompressionRequest(CompressionRequest),
    CompressionDone(CompressionDone),
}

/// Error for [`Control::decode`] on the MESSAGE tag.
pub const NOT_CONTROL: DecodeError = DecodeError::InvalidValue {
    what: "control tag",
    value: 17,
};

macro_rules! control_dispatch {
    ($($v:ident),*) => {
        impl Control {
            /// Decodes the payload of a control frame with `tag`. MESSAGE is not a control
            /// frame and gives [`NOT_CONTROL`].
            pub fn decode(tag: Tag, payload: &[u8]) -> Result<Self, DecodeError> {
                match tag {
                    $(Tag::$v => Ok(Control::$v($v::decode(payload)?)),)*
                    Tag::Message => Err(NOT_CONTROL),
                }
            }
            /// The frame tag.
            pub fn tag(&self) -> Tag {
                match self { $(Control::$v(_) => Tag::$v,)* }
            }
            /// Appends the payload's wire form.
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self { $(Control::$v(p) => p.encode(out),)* }
            }
        }
        $(impl From<$v> for Control { fn from(p: $v) -> Self { Control::$v(p) } })*
    };
}

control_dispatch!(
    Hello,
    AuthRequest,
    AuthBadMethod,
    AuthReplyMore,
    AuthRequestMore,
    AuthDone,
    AuthSignature,
    ClientIdent,
    ServerIdent,
    IdentMissingFeatures,
    SessionReconnect,
    SessionReset,
    SessionRetry,
    SessionRetryGlobal,
    SessionReconnectOk,
    Wait,
    Keepalive2,
    Keepalive2Ack,
    Ack,
    CompressionRequest,
    CompressionDone
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds wrap at 2^32 as Ceph's `utime_t` (u32 seconds) does; nanoseconds are kept.
    #[test]
    fn utime_from_unix_time() {
        let t = UTime::from_unix(std::time::Duration::new(1_700_000_000, 123_456_789));
        assert_eq!((t.sec, t.nsec), (1_700_000_000, 123_456_789));
        let t = UTime::from_unix(std::time::Duration::new((1 << 32) + 5, 7));
        assert_eq!((t.sec, t.nsec), (5, 7));
    }
}
