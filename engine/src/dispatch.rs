//! The [`Dispatcher`] trait: how an application hears about its connections.

use std::net::SocketAddr;

use msgr2_codec::payload::UTime;
use msgr2_proto::{Message, PeerInfo};

use crate::error::ConnError;

use crate::shared::ConnHandle;

pub(crate) type Factory = dyn Fn(usize) -> Box<dyn Dispatcher> + Send + Sync;

/// `PeerInfo::con_mode` of a raw-baseline connection (no msgr2 framing at all).
pub const CON_MODE_RAW: u32 = 0;

/// Receives a core's connection events. One instance per core, created on that core by the
/// factory given to [`MessengerBuilder::dispatcher`](crate::MessengerBuilder::dispatcher); it is only ever called from that core's
/// reactor thread, so it needs no locking and need not be `Send`.
///
/// Callbacks run inside the reactor loop: keep them short. [`ConnHandle::send`] called from a
/// callback is queued and applied when the callback returns (directly for connections of this
/// core, through the core-pair queue otherwise), before the next submission.
pub trait Dispatcher {
    /// A message arrived on `conn`.
    fn on_message(&mut self, conn: &ConnHandle, msg: Message);
    /// An outgoing connection completed its handshake.
    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = (conn, peer);
    }
    /// An accepted connection completed its handshake.
    fn on_accept(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = (conn, peer);
    }
    /// The connection failed (peer closed, protocol error, handshake timeout) and is closed,
    /// or its session was reset (a lossy connection faulted, the peer reset the session).
    /// Not called after [`ConnHandle::mark_down`] or at shutdown, nor for faults a lossless
    /// session survives (it reconnects and replays; [`Dispatcher::on_connect`] /
    /// [`Dispatcher::on_accept`] report it ready again with `reconnected` set).
    fn on_reset(&mut self, conn: &ConnHandle, error: &ConnError) {
        let _ = (conn, error);
    }
    /// An accepted connection failed before its handshake completed (so the application never
    /// saw it): bad banner, failed authentication, handshake timeout, a stale or duplicate
    /// connection. `peer` is its socket address.
    fn on_accept_failed(&mut self, peer: Option<SocketAddr>, error: &ConnError) {
        let _ = (peer, error);
    }
    /// The connection faulted with `error` but keeps its session, and the engine redials
    /// (after backoff): a lossless session, or a client connection that failed before its
    /// handshake completed (refused, timed out, dropped), which Ceph retries too. Purely
    /// informative, like Ceph's `ms_handle_refused`; a caller that would rather give up (a
    /// one-shot tool such as `msgr2 ping`) calls [`ConnHandle::mark_down`].
    fn on_fault(&mut self, conn: &ConnHandle, error: &ConnError) {
        let _ = (conn, error);
    }
    /// The peer sent KEEPALIVE2 with `stamp` (already answered with KEEPALIVE2_ACK).
    fn on_keepalive(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = (conn, stamp);
    }
    /// The peer acknowledged our KEEPALIVE2 stamped `stamp` (see [`ConnHandle::keepalive`]).
    fn on_keepalive_ack(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = (conn, stamp);
    }
}

/// A dispatcher that drops everything (the default when none is configured).
pub(crate) struct NullDispatcher;
impl Dispatcher for NullDispatcher {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
}
