//! Why a bench run failed.

use msgr2_codec::encoding::DecodeError;
use msgr2_engine::blocking::DriverError;
use msgr2_proto::ProtoError;
use thiserror::Error;

/// A bench run failed.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// A socket or file operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The blocking msgr2 driver failed.
    #[error("msgr2 connection: {0}")]
    Driver(#[from] DriverError),
    /// The msgr2 protocol failed.
    #[error("msgr2 protocol: {0}")]
    Proto(#[from] ProtoError),
    /// A raw-mode header was malformed.
    #[error("raw framing: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent something the bench protocol does not allow.
    #[error("peer: {0}")]
    Peer(String),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// The admin socket could not be opened.
    #[error(transparent)]
    Admin(#[from] msgr2_engine::admin::AdminError),
    /// Setting up keys failed.
    #[error("keys: {0}")]
    Keys(String),
    /// Writing the JSON output failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing the plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// A worker thread panicked.
    #[error("a worker thread panicked")]
    Panic,
}

impl BenchError {
    /// Wraps an I/O error with what we were doing.
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }
}
