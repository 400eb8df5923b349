//! # msgr2-proto
//!
//! The msgr2 protocol core, sans-IO in the quinn-proto style: a [`Connection`] is fed
//! received bytes ([`Connection::handle_input`]) and the current time
//! ([`Connection::handle_timeout`]), and is drained of bytes to send
//! ([`Connection::poll_transmit`]) and of [`Event`]s. It never touches a socket or a clock,
//! so every interleaving can be driven from a test.
//!
//! Today it covers the whole handshake (banner, HELLO, auth with AUTH_BAD_METHOD retry, the
//! crc/secure mode switch, AUTH_SIGNATURE both ways, CLIENT_IDENT/SERVER_IDENT) in both
//! framing revisions and both roles, and lossy message exchange (MESSAGE, KEEPALIVE2, ACK).
//! Lossless sessions (reconnect, races) are the session issue's work.

pub mod config;
mod connection;
pub mod error;
pub mod framing;
pub mod message;

pub use config::{Config, ModeConfig, Policy};
pub use connection::{Connection, Event, PeerInfo, Role};
pub use error::ProtoError;
pub use message::Message;
