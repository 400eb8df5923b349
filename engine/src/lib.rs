//! # msgr2-engine
//!
//! Will hold the thread-per-core io_uring runtime (one pinned reactor and one ring per core,
//! registered buffer arenas, provided-buffer rings, zero-copy sends) and the public
//! `Messenger` API an OSD-style daemon embeds; the engine drives `msgr2-proto` and never
//! parses bytes itself. That is the engine issue's work.
//!
//! Until then [`blocking`] drives one `msgr2_proto::Connection` over a blocking
//! `std::net::TcpStream`: enough for the `msgr2 ping` / `msgr2 server` tools and the real-Ceph
//! interop tests of the handshake.

pub mod blocking;
