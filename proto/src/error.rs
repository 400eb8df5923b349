//! Typed connection errors. Every one of them closes the connection.

use msgr2_codec::banner::BannerError;
use msgr2_codec::encoding::DecodeError;
use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::{FrameError, Tag};
use msgr2_crypto::auth::AuthError;
use thiserror::Error;

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// The peer's banner was unacceptable.
    #[error("banner: {0}")]
    Banner(#[from] BannerError),
    /// A frame failed to decode or verify (crc mode).
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// A secure-mode frame failed to decrypt or verify, or nonces ran out.
    #[error("secure mode: {0}")]
    Secure(String),
    /// A payload did not decode.
    #[error("{tag} payload: {error}")]
    Payload {
        /// Frame tag.
        tag: Tag,
        /// The decode error.
        error: DecodeError,
    },
    /// A legal frame arrived in a state where it is not allowed.
    #[error("unexpected {tag} frame in state {state}")]
    UnexpectedFrame {
        /// Frame tag.
        tag: Tag,
        /// Our state.
        state: &'static str,
    },
    /// The peer is not the entity type we expected.
    #[error("peer is a {got}, expected a {expected}")]
    WrongPeerType {
        /// What we dialled.
        expected: EntityType,
        /// What the peer's HELLO said.
        got: EntityType,
    },
    /// Our authentication method failed locally (bad reply, wrong key, missing ticket).
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
    /// The server rejected every method we could offer.
    #[error("server rejected auth method {method} with error {result}; server allows methods {allowed_methods:?} and modes {allowed_modes:?}")]
    AuthRejected {
        /// The last method tried.
        method: u32,
        /// The server's negative errno.
        result: i32,
        /// Methods the server allows.
        allowed_methods: Vec<u32>,
        /// Modes the server allows.
        allowed_modes: Vec<u32>,
    },
    /// We have no auth method configured for this role.
    #[error("no authentication configured for this side")]
    NoAuth,
    /// None of our configured modes can be used with this auth method (secure needs a key).
    #[error("no configured connection mode is usable with auth method {method} (secure mode needs cephx)")]
    NoUsableMode {
        /// The auth method.
        method: u32,
    },
    /// The server chose a connection mode we did not offer.
    #[error("server chose connection mode {0}, which we did not offer")]
    BadMode(u32),
    /// The peer's AUTH_SIGNATURE does not match our transcript (tampering or wrong key).
    #[error("peer's AUTH_SIGNATURE does not match the pre-auth transcript")]
    BadSignature,
    /// The server lacks features we require or we lack features it requires.
    #[error("missing required features {missing:#x}")]
    MissingFeatures {
        /// The missing `CEPH_FEATURE_*` bits.
        missing: u64,
    },
    /// The client targeted an address that is not ours.
    #[error("peer is trying to reach {target}, which is not one of our addresses {ours}")]
    NotUs {
        /// The client's target.
        target: String,
        /// Our addresses.
        ours: String,
    },
    /// The server's addresses do not contain the one we connected to.
    #[error("server addresses {addrs} do not include the address we connected to ({target})")]
    ServerAddrMismatch {
        /// What we connected to.
        target: String,
        /// What the server said it is.
        addrs: String,
    },
    /// The handshake did not complete within `ms_connection_ready_timeout`.
    #[error("handshake timed out in state {0}")]
    HandshakeTimeout(&'static str),
    /// The peer closed the connection.
    #[error("peer closed the connection in state {0}")]
    PeerClosed(&'static str),
    /// A session-resumption frame we do not handle yet (lossless sessions).
    #[error("session frame {0} is not supported on this connection")]
    SessionUnsupported(Tag),
    /// The connection already failed.
    #[error("connection closed: {0}")]
    Closed(Box<ProtoError>),
}
