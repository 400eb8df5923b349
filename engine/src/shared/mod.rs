//! State shared between the application's threads and the reactors: commands, per-core
//! queues and counters, connection handles, and the read-only probe.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use msgr2_codec::addr::EntityAddr;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::UTime;
use msgr2_proto::{Connection, Lookup, Message, PeerInfo, SessionTable};

use crate::error::EngineError;
use crate::spsc::Spsc;

mod counters;
mod handle;

pub use self::counters::Counters;
pub(crate) use self::counters::{bump, core_counters, drop_by, CoreCounters};
pub use self::handle::ConnHandle;
pub(crate) use self::handle::{route, ConnShared, CoreShared, Shared, CURRENT, OUTBOX};

/// Work sent to a core.
pub(crate) enum Cmd {
    /// Queue a message on a connection.
    Send { id: u64, msg: Message },
    /// Close a connection without a reset callback.
    MarkDown { id: u64 },
    /// Send KEEPALIVE2 with this stamp (at once when ready, else once ready).
    Keepalive { id: u64, stamp: UTime },
    /// Open an outgoing connection owned by the target core.
    Connect {
        handle: ConnHandle,
        target: EntityAddr,
        peer_type: EntityType,
    },
    /// Take over an accepted socket.
    Adopt { fd: OwnedFd, peer: SocketAddr },
    /// Take over an accepted connection that is waiting for its session lookup, because the
    /// session it names lives on this core (see the reactor's "Session lookup").
    MoveIn {
        fd: OwnedFd,
        proto: Box<Connection>,
        peer: Option<SocketAddr>,
        lookup: Lookup,
        hops: u8,
    },
    /// Drain and stop.
    Shutdown,
}
