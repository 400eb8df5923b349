//! Typed connection errors. Every one of them closes the connection.

use msgr2_codec::banner::BannerError;
use msgr2_codec::compress::CompressError;
use msgr2_codec::encoding::DecodeError;
use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::{FrameError, Tag};
use msgr2_crypto::auth::AuthError;
use msgr2_crypto::secure::SecureError;
use thiserror::Error;

/// Why a connection failed. Match on the variants (the causes from the codec and crypto
/// crates are kept whole); more variants may come, so keep a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The peer's banner was unacceptable.
    #[error("banner: {0}")]
    Banner(#[from] BannerError),
    /// A frame failed to decode or verify (crc mode).
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// A secure-mode frame failed to decrypt or verify, or nonces ran out.
    #[error("secure mode: {0}")]
    Secure(#[source] SecureError),
    /// A compressed frame failed to decompress (corrupt, too large, or compression was never
    /// negotiated).
    #[error("compression: {0}")]
    Compression(#[from] CompressError),
    /// The server chose a compression method we do not implement.
    #[error("server chose compression method {0}, which we do not implement")]
    CompressionMethod(u32),
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
    /// The socket failed (connect refused, send or receive error, or an injected fault): the
    /// embedder's description.
    #[error("socket error in state {state}: {what}")]
    Socket {
        /// Protocol state when it happened.
        state: &'static str,
        /// What failed.
        what: String,
    },
    /// No longer produced (sessions are supported); kept so matches on it still compile.
    #[error("session frame {0} is not supported on this connection")]
    SessionUnsupported(Tag),
    /// The server answered WAIT: its own connection to us wins a race. The session backs off
    /// for `ms_max_backoff` and retries.
    #[error("peer answered WAIT (its connection to us wins the race)")]
    Wait,
    /// A CLIENT_IDENT older than the session the server already has with that peer
    /// (`global_seq` below the one it last saw): the connection is dropped.
    #[error("stale connection: peer global_seq {global_seq} is older than {existing}")]
    StaleConnection {
        /// This connection's global_seq.
        global_seq: u64,
        /// The newest global_seq the existing session saw.
        existing: u64,
    },
    /// The session moved to another connection (or this lossy one was replaced by a new
    /// connection from the same peer).
    #[error("connection replaced by a newer connection to the same peer")]
    Replaced,
    /// Nothing arrived on a ready connection for `ms_connection_idle_timeout`.
    #[error("peer silent for {0:?}")]
    IdleTimeout(std::time::Duration),
    /// The session's send queue is at its bound.
    #[error("send queue full ({messages} messages, {bytes} bytes queued)")]
    QueueFull {
        /// Messages queued.
        messages: usize,
        /// Bytes queued.
        bytes: u64,
    },
    /// The peer acknowledged a message sequence number we never sent.
    #[error("peer acknowledged seq {ack} but we sent only up to {out_seq}")]
    AckBeyondSent {
        /// The ack.
        ack: u64,
        /// Our out_seq.
        out_seq: u64,
    },
    /// More input was pushed than a throttled or paused connection may buffer.
    #[error("{0} bytes of input buffered while input was paused")]
    InputOverrun(usize),
    /// [`crate::Connection::resolve_lookup`] without a pending [`crate::Event::Lookup`].
    #[error("no session lookup pending (state {0})")]
    NoLookupPending(&'static str),
    /// [`crate::Connection::reconnect`] on a connection that did not fault.
    #[error("cannot reconnect from state {0}")]
    NotFaulted(&'static str),
    /// A faulted server-side connection does not know a dialable address of its peer.
    #[error("no address to reconnect to")]
    NoReconnectTarget,
    /// CLIENT_IDENT or SESSION_RECONNECT without usable peer addresses.
    #[error("peer sent unusable addresses {0}")]
    BadPeerAddrs(String),
    /// The connection already failed.
    #[error("connection closed: {0}")]
    Closed(Box<ProtoError>),
}

impl ProtoError {
    /// Whether redialling the same peer with the same configuration cannot succeed: the
    /// server refused every auth method we can offer (AUTH_BAD_METHOD, e.g. -13 for a wrong
    /// key or an unknown entity), or we have no auth or no usable connection mode. Such a
    /// fault closes the connection whatever its policy, where other handshake faults of a
    /// client are retried with backoff. Ceph does the same with a failed auth request
    /// (`stop()` in `send_auth_request`), and its MonClient gives up on AUTH_BAD_METHOD
    /// rather than let the connection redial.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProtoError::AuthRejected { .. } | ProtoError::NoAuth | ProtoError::NoUsableMode { .. }
        )
    }
}
