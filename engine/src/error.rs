//! Typed engine errors. Every configuration or environment failure names its fix.

use std::net::{IpAddr, SocketAddr};

use msgr2_codec::addr::{AddrParseError, AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::encoding::DecodeError;
use msgr2_crypto::auth::AuthError;
use msgr2_crypto::key::KeyError;
use msgr2_proto::ProtoError;
use thiserror::Error;

/// Why the engine could not start or an operation failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The kernel refused to create an io_uring instance.
    #[error(
        "io_uring is unavailable ({source}): it is disabled by a seccomp profile (common in \
         containers: allow io_uring_setup/io_uring_enter/io_uring_register) or by \
         `sysctl kernel.io_uring_disabled` (set it to 0), or the kernel is older than 6.1; \
         run on a host where io_uring is allowed"
    )]
    UringUnavailable {
        /// The error from `io_uring_setup`.
        source: std::io::Error,
    },
    /// Registering the buffer arena needs more locked memory than `RLIMIT_MEMLOCK` allows.
    #[error(
        "registering the {need} byte buffer arena on core {core} exceeds RLIMIT_MEMLOCK \
         ({limit} bytes): raise it with `ulimit -l unlimited` (or `ulimit -l {need_kib}`), \
         `LimitMEMLOCK=infinity` in a systemd unit, or `--ulimit memlock=-1` for docker; or \
         allow the fallback with `MessengerBuilder::arena_fallback(true)` (unregistered \
         arena, no fixed-buffer zero-copy sends), or shrink it with \
         `MessengerBuilder::arena_size`"
    )]
    MemlockTooSmall {
        /// The core whose arena failed.
        core: usize,
        /// Bytes the arena needs locked.
        need: u64,
        /// The same in KiB, for `ulimit -l`.
        need_kib: u64,
        /// `RLIMIT_MEMLOCK` in bytes.
        limit: u64,
    },
    /// A requested core does not exist (or this process may not run on it).
    #[error(
        "core {core} does not exist or is not in this process's CPU set (available: \
         {available:?}); pick cores from that list"
    )]
    NoSuchCore {
        /// The requested core.
        core: usize,
        /// Cores this process may use.
        available: Vec<usize>,
    },
    /// The same core was listed twice.
    #[error("core {0} is listed twice in MessengerBuilder::cores")]
    DuplicateCore(usize),
    /// Every port of the bind range is taken.
    #[error(
        "no free port on {ip} in ms_bind_port_min..=ms_bind_port_max ({min}..={max}): free a \
         port or widen the range with BindOptions"
    )]
    NoFreePort {
        /// The IP we tried to bind.
        ip: IpAddr,
        /// `ms_bind_port_min`.
        min: u16,
        /// `ms_bind_port_max`.
        max: u16,
    },
    /// Binding a specific address failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// msgr1 was asked for; only msgr2 exists.
    #[error(
        "ms_bind_msgr1 / a v1: address was requested, but the legacy msgr1 protocol is not \
         implemented: bind v2 addresses only (ms_bind_msgr1 = false)"
    )]
    Msgr1Unsupported,
    /// The bind options leave nothing to bind.
    #[error("nothing to bind: {0}")]
    NothingToBind(NothingToBind),
    /// An address to listen on is unusable.
    #[error("bad address {text:?}: {reason}")]
    BadAddress {
        /// The text.
        text: String,
        /// Why.
        reason: BadListenAddr,
    },
    /// The target address vector has no msgr2 address with an IP and port.
    #[error("{0} has no v2 address with an IP and port to connect to")]
    NoMsgr2Address(EntityAddrVec),
    /// Our own key could not be used for cephx.
    #[error("auth: {0}")]
    Auth(#[source] AuthError),
    /// The keyring could not serve as a mon-style cephx server's.
    #[error("auth: {0}")]
    Keyring(#[source] KeyError),
    /// The messenger or the connection is shut down.
    #[error("the messenger is shut down")]
    Shutdown,
    /// The connection was closed (marked down, reset or failed).
    #[error("connection {0} is closed")]
    ConnectionClosed(u64),
    /// A reactor thread could not be spawned.
    #[error("reactor for core {core}: cannot spawn thread: {source}")]
    ReactorSpawn {
        /// The core.
        core: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// A reactor thread died while starting.
    #[error("reactor for core {0}: a reactor thread died during start")]
    ReactorDied(usize),
    /// The admin socket could not be opened.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// Another OS error, with what we were doing.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why the bind options leave nothing to bind, in an [`EngineError::NothingToBind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NothingToBind {
    /// `ms_bind_msgr2 = false`, and msgr1 does not exist here.
    #[error("ms_bind_msgr2 is false and msgr1 is not implemented")]
    Msgr2Off,
    /// The port range is empty.
    #[error("ms_bind_port_min {min} > ms_bind_port_max {max}")]
    EmptyPortRange {
        /// `ms_bind_port_min`.
        min: u16,
        /// `ms_bind_port_max`.
        max: u16,
    },
    /// `public_addr` is of an address family `ms_bind_ipv4`/`ms_bind_ipv6` turn off.
    #[error("public_addr {0} is of a family disabled by ms_bind_ipv4/ipv6")]
    FamilyOff(SocketAddr),
    /// Both address families are off.
    #[error("both ms_bind_ipv4 and ms_bind_ipv6 are false")]
    NoFamily,
}

/// Why an address to listen on is unusable, in an [`EngineError::BadAddress`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BadListenAddr {
    /// It does not parse.
    #[error(transparent)]
    Parse(#[from] AddrParseError),
    /// Not an address type one listens on.
    #[error("cannot listen on a {} address", .0.name())]
    Type(AddrType),
    /// No IP address in it.
    #[error("no IP address")]
    NoIp,
}

/// A socket operation named by a [`ConnError::Io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketOp {
    /// Creating the socket for this address.
    Create(SocketAddr),
    /// Connecting (to this address, when known).
    Connect(Option<SocketAddr>),
    /// Sending.
    Send,
    /// Receiving.
    Recv,
}

impl std::fmt::Display for SocketOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketOp::Create(a) => write!(f, "socket for {a}"),
            SocketOp::Connect(Some(a)) => write!(f, "connect to {a}"),
            SocketOp::Connect(None) => write!(f, "connect to "),
            SocketOp::Send => write!(f, "send"),
            SocketOp::Recv => write!(f, "recv"),
        }
    }
}

/// Why a session was reset, in a [`ConnError::SessionReset`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetCause {
    /// The peer reset it (SESSION_RESET, or it did not know the session).
    ByPeer,
    /// We did, after this protocol error (when one is known).
    LocalFault(Option<ProtoError>),
}

impl std::fmt::Display for ResetCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResetCause::ByPeer => write!(f, "by the peer"),
            ResetCause::LocalFault(Some(e)) => write!(f, "local fault: {e}"),
            ResetCause::LocalFault(None) => write!(f, "local fault"),
        }
    }
}

/// Why a connection failed or its session was reset: what [`crate::Dispatcher::on_reset`],
/// [`crate::Dispatcher::on_fault`] and [`crate::Dispatcher::on_accept_failed`] receive. Match
/// on the variants (the protocol's own [`ProtoError`] is kept whole); the text is for logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The protocol failed: the peer's bytes, its auth, a timeout, a full send queue, ...
    #[error(transparent)]
    Protocol(#[from] ProtoError),
    /// A socket operation failed with this OS error number.
    #[error("{op}: {}", std::io::Error::from_raw_os_error(*errno))]
    Io {
        /// The operation.
        op: SocketOp,
        /// The OS error number (`errno`).
        errno: i32,
    },
    /// The address to dial has no IP and port.
    #[error("{0} has no IP and port")]
    NoAddress(EntityAddr),
    /// The peer closed a raw-mode connection (msgr2 connections report
    /// [`ProtoError::PeerClosed`] with the protocol state instead).
    #[error("peer closed the connection")]
    PeerClosed,
    /// A raw-mode peer sent bytes that do not frame.
    #[error("raw framing: {0}")]
    RawFraming(DecodeError),
    /// A raw-mode message is too large for its 32-bit length.
    #[error("raw message of {0} bytes is too large")]
    RawTooLarge(usize),
    /// The session was reset; the messages still queued on it were dropped.
    #[error("session reset ({cause}, {dropped} queued messages dropped)")]
    SessionReset {
        /// Who reset it, and why.
        cause: ResetCause,
        /// Messages queued and never delivered.
        dropped: usize,
    },
    /// A session to reconnect had no address to dial.
    #[error("reconnect without a target address")]
    NoReconnectTarget,
    /// The connection closed while its session lookup was resolved.
    #[error("connection closed after its session lookup")]
    ClosedAfterLookup,
    /// The kernel completed a receive without a provided buffer (an engine invariant broke).
    #[error("recv completed without a buffer")]
    RecvWithoutBuffer,
}

impl ConnError {
    /// The protocol error behind this failure, if there is one: the error itself, or the
    /// local fault that reset a session (`SessionReset { cause: LocalFault(Some(e)), .. }`).
    pub fn protocol_error(&self) -> Option<&ProtoError> {
        match self {
            ConnError::Protocol(e) => Some(e),
            ConnError::SessionReset {
                cause: ResetCause::LocalFault(Some(e)),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_errors_keep_their_wording_and_their_cause() {
        let io = ConnError::Io {
            op: SocketOp::Send,
            errno: libc::EPIPE,
        };
        assert_eq!(io.to_string(), "send: Broken pipe (os error 32)");
        let peer = ConnError::SessionReset {
            cause: ResetCause::ByPeer,
            dropped: 3,
        };
        assert_eq!(
            peer.to_string(),
            "session reset (by the peer, 3 queued messages dropped)"
        );
        assert_eq!(peer.protocol_error(), None);
        let local = ConnError::SessionReset {
            cause: ResetCause::LocalFault(Some(ProtoError::PeerClosed("READY"))),
            dropped: 0,
        };
        assert_eq!(
            local.to_string(),
            "session reset (local fault: peer closed the connection in state READY, 0 queued \
             messages dropped)"
        );
        assert_eq!(
            local.protocol_error(),
            Some(&ProtoError::PeerClosed("READY"))
        );
        assert_eq!(
            ConnError::Protocol(ProtoError::PeerClosed("READY")).protocol_error(),
            Some(&ProtoError::PeerClosed("READY"))
        );
    }
}
