//! # msgr2-engine
//!
//! A thread-per-core io_uring runtime and the `Messenger` API an OSD-style daemon embeds. The
//! engine drives the sans-IO [`msgr2_proto::Connection`] (or, for the `raw` baseline, the
//! 16-byte [`msgr2_codec::raw`] framing) and never parses msgr2 bytes itself.
//!
//! ## Threads and rings
//! One reactor thread per chosen core, pinned with `core_affinity`. Each builds its own
//! io_uring with `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL`
//! (falling back to a plain ring with a warning when the kernel refuses), a sparse fixed-file
//! table for its sockets, its buffer arena registered once, and a provided-buffer ring.
//! Nothing but that thread ever touches the ring. Each loop iteration reaps every
//! completion, drains the cross-core queues, runs timers, then flushes every connection
//! with pending output (one send or sendmsg per connection carrying all its pending frames)
//! and submits everything with one `io_uring_enter` that also reaps.
//!
//! ## Buffers
//! The per-core arena (one mapping, registered with `IORING_REGISTER_BUFFERS`) has slab
//! classes of 4096-aligned slots handed out as reference-counted handles. Its receive class
//! backs the provided-buffer ring used by multishot recv on every connection; the staging
//! class coalesces small raw-mode messages into contiguous registered buffers.
//! msgr2 output is gathered, not copied, where the protocol allows: each connection runs
//! [`msgr2_proto::Connection::poll_transmit_vectored`], so in crc mode a message's data
//! (16 KiB and up) goes to `sendmsg` as its own iovec (a shared [`msgr2_codec::Data`], so a
//! lossless session's copy kept for replay is the same buffer), held by the batch until the
//! send completes; frame headers, crcs and small messages are coalesced around it. Secure
//! mode encrypts into the connection's buffer, so it copies. Received data segments land in
//! page-aligned buffers (copied once from the provided receive buffer).
//! `SEND_ZC` (with `IORING_SEND_ZC_REPORT_USAGE`, fixed buffers when the batch is one arena
//! slot) is used above [`MessengerBuilder::send_zc_threshold`]; it is off by default because
//! on loopback the kernel copies anyway and zero-copy measured slower (figures in
//! `bench/RESULTS.md`). The batch stays alive until the kernel's notification. A parked core
//! takes tens of microseconds to wake, so a reactor spins briefly before it parks
//! ([`MessengerBuilder::spin_before_park`]).
//!
//! ## Cross-core path
//! A connection, its protocol state and its queues live on one core. [`ConnHandle::send`]
//! on the owner's reactor (i.e. from its dispatcher) is applied directly after the callback
//! returns; from another core of the same messenger it goes through the per-core-pair SPSC
//! ring (one hop); from any other thread through the owner's injector queue. The target is
//! woken through its eventfd only when it announced that it sleeps (a flag checked after a
//! SeqCst fence on both sides), so a busy core is never interrupted.
//!
//! ## Accept steering and sessions
//! All listening sockets belong to the first core, which runs one multishot accept per
//! socket and deals accepted sockets round-robin over the cores (the fd crosses once, in the
//! core-pair ring, before any byte is read; the target registers it in its own fixed-file
//! table). Round-robin, not SO_REUSEPORT hashing, so that placement is deterministic and
//! balanced. A lossless peer's reconnect (SESSION_RECONNECT) or its side of a connection race
//! is only recognisable after the banner, HELLO and auth exchange, so it is handled where it
//! lands: the protocol pauses it (`Event::Lookup`), the reactor asks the messenger's session
//! table (`msgr2_proto::SessionTable`, peer address → core and connection, a mutex touched
//! only at handshake time), and
//! when the session lives on another core the live socket and its `Connection` (which is
//! `Send`) move there through the core-pair ring, once their operations finished. That is
//! Crimson's "mover" without its cross-core ordering sequence, since nothing else is in
//! flight for a connection that has not reached READY. A [`ConnHandle`] names the session, not
//! the socket: a lossless session survives faults (socket shut down, reconnect after Ceph's
//! backoff, replay of unacknowledged messages) under the same handle.
//!
//! ## Fault injection
//! Off by default: `ms_inject_socket_failures` ([`MessengerBuilder::inject_socket_failures`]:
//! shut the socket down after one in N socket operations, as Ceph does), `ms_inject_delay_*`
//! ([`MessengerBuilder::inject_delay`]) and named break points per protocol state
//! ([`MessengerBuilder::break_point`]). `tests/sessions.rs` and `msgr2 soak` use them.
//!
//! ## Errors
//! Configuration and start-up failures are [`EngineError`]s that name their fix. A
//! connection's failure reaches the [`Dispatcher`] as a [`ConnError`]: the protocol's own
//! [`msgr2_proto::ProtoError`] kept whole, a socket operation with its errno, or a session
//! reset with its cause and the number of messages it dropped.
//!
//! ## Layout
//! `dispatch.rs` (the [`Dispatcher`] trait), `api/` ([`MessengerBuilder`], [`Messenger`]),
//! `shared/` (what the application's threads and the reactors share: commands, per-core
//! queues and counters, [`ConnHandle`]), `options.rs` (every reactor's settings), `reactor/` (one core's loop, split by job: `event_loop`, `lifecycle`,
//! `sessions`, `conn`, `completions`, `events`, `send`, `slab`), `arena.rs` and `bufring.rs`
//! (registered memory, the provided-buffer ring), `spsc.rs` (core-pair queues), `bind.rs`, `conf.rs` (a builder from a Ceph conf), `admin/` (the admin socket),
//! `mon_auth.rs` (a daemon's cephx session with its mon), `blocking.rs` (a blocking driver
//! for tests and tools), `alloc_count.rs` (an opt-in counting allocator), `malloc.rs`. The
//! `unsafe` blocks are in the buffer and ring code (arena, provided buffers, core-pair
//! queues, the reactor's submissions), the allocator
//! wrapper and malloc tuning, each with its `// SAFETY:` argument.

pub mod admin;
pub mod alloc_count;
mod api;
mod arena;
mod bind;
pub mod blocking;
mod bufring;
mod conf;
mod dispatch;
mod error;
mod malloc;
pub mod mon_auth;
mod options;
mod reactor;
mod shared;
mod spsc;

pub use alloc_count::CountingAlloc;
pub use api::{Messenger, MessengerBuilder};
pub use bind::{BindOptions, BindSpec, MON_PORT_LEGACY, MON_PORT_MSGR2};
pub use conf::{bind_options, FromConfError};
pub use dispatch::{Dispatcher, CON_MODE_RAW};
pub use error::{BadListenAddr, ConnError, EngineError, NothingToBind, ResetCause, SocketOp};
pub use malloc::tune_malloc_for_large_messages;
pub use msgr2_codec::banner::Banner;
pub use msgr2_codec::compress::Method as CompressMethod;
pub use msgr2_codec::payload::UTime;
pub use msgr2_proto::{CompressMode, CompressionConfig, Message, ModeConfig, PeerInfo, Policy};
pub use options::{BreakAt, BreakPoint};
pub use shared::{ConnHandle, Counters};

/// KEEPALIVE2's stamp: the wall clock as a `utime_t` (the engine reads clocks; the protocol
/// core and codec never do).
pub(crate) fn wall_stamp() -> msgr2_codec::payload::UTime {
    msgr2_codec::payload::UTime::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}
