//! # msgr2-engine (stub)
//!
//! Will hold the thread-per-core io_uring runtime (one pinned reactor and one ring per core,
//! registered buffer arenas, provided-buffer rings, zero-copy sends) and the public
//! `Messenger` API an OSD-style daemon embeds. The engine drives `msgr2-proto` and never
//! parses bytes itself. Tracked by the engine issue.
