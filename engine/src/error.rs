//! Typed engine errors. Every configuration or environment failure names its fix.

use std::net::IpAddr;

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
    NothingToBind(String),
    /// An address string did not parse.
    #[error("bad address {text:?}: {reason}")]
    BadAddress {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// The target address vector has no msgr2 address with an IP and port.
    #[error("{0} has no v2 address with an IP and port to connect to")]
    NoMsgr2Address(String),
    /// Authentication could not be configured.
    #[error("auth: {0}")]
    Auth(String),
    /// The messenger or the connection is shut down.
    #[error("the messenger is shut down")]
    Shutdown,
    /// The connection was closed (marked down, reset or failed).
    #[error("connection {0} is closed")]
    ConnectionClosed(u64),
    /// A reactor thread could not be started or died.
    #[error("reactor for core {core}: {reason}")]
    Reactor {
        /// The core.
        core: usize,
        /// What happened.
        reason: String,
    },
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
