//! # msgr2-proto
//!
//! The msgr2 protocol core, sans-IO in the quinn-proto style: a [`Connection`] is fed
//! received bytes ([`Connection::handle_input`]) and the current time
//! ([`Connection::handle_timeout`]), and is drained of bytes to send
//! ([`Connection::poll_transmit`]) and of [`Event`]s. It never touches a socket or a clock,
//! so every interleaving can be driven from a test.
//!
//! It covers the whole handshake (banner, HELLO, auth with AUTH_BAD_METHOD retry, the
//! crc/secure mode switch, AUTH_SIGNATURE both ways, CLIENT_IDENT/SERVER_IDENT) in both
//! framing revisions and both roles, and sessions as Ceph defines them per peer type
//! ([`Policy`]): lossy ones that reset on faults, lossless ones that reconnect
//! (SESSION_RECONNECT), replay unacknowledged messages with their original sequence numbers,
//! and resolve connection races. Every session decision is a pure function in [`session`].
//! Received messages hold receive-throttle reservations ([`throttle`]); send queues are
//! bounded.

//! ## Embedding
//!
//! * Read the socket only while [`Connection::wants_input`]; after dropping received
//!   messages (their [`ThrottleGuard`] releases the receive throttles) or answering a lookup,
//!   call [`Connection::handle_input`] with an empty slice to process bytes it kept.
//! * Call [`Connection::poll_transmit`] when the socket can take more; it frames queued
//!   messages in batches.
//! * Call [`Connection::handle_timeout`] at [`Connection::poll_timeout`].
//! * On an error, close the socket. A lossless connection keeps its session: on
//!   [`Event::Reconnect`] wait the delay and call [`Connection::reconnect`]; a `STANDBY`
//!   connection waits for the peer (or for [`Connection::send_message`] to ask for a
//!   reconnect). Keep one connection per peer in a registry: it answers [`Event::Lookup`]
//!   ([`Lookup::matches`], [`Connection::resolve_lookup`]) when
//!   [`Config::session_lookup`] is on, and a connection whose session was taken over
//!   ([`ExistingFate::TakenOver`]) is replaced by the one that took it.
//! * One [`Config`] per messenger: it carries the shared `global_seq` counter and the
//!   dispatch throttle.
//!
//! `tests/sim` in this crate is a complete (simulated) embedder.

pub mod compression;
pub mod config;
mod connection;
pub mod error;
pub mod framing;
pub mod message;
pub mod session;
pub mod session_table;
pub mod throttle;

pub use compression::{CompressMode, CompressionConfig};
pub use config::{Config, GlobalSeq, ModeConfig, Policy, PolicySet, RandomSource, SharedGid};
pub use connection::{Connection, Event, ExistingFate, Lookup, PeerInfo, Role, VECTORED_MIN};
pub use error::ProtoError;
pub use message::Message;
pub use session::Session;
pub use session_table::SessionTable;
pub use throttle::{Throttle, ThrottleGuard};
