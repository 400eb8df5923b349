//! Sessions: the state that outlives one TCP connection, and every session decision as a
//! small pure function.
//!
//! A [`Session`] holds what Ceph keeps in a `ProtocolV2` object across sockets: the two
//! cookies, `connect_seq`, the peer's `global_seq`, `out_seq`/`in_seq`, the sent-but-unacked
//! list and the per-priority out queues. A [`Connection`](crate::Connection) carries one
//! session; when a lossless connection faults the session stays in the faulted connection
//! (Ceph's STANDBY, or the backoff before a reconnect) until the embedder moves it onto a new
//! connection ([`Connection::reconnect`](crate::Connection::reconnect)) or a new connection
//! from the peer adopts it ([`Connection::resolve_lookup`](crate::Connection::resolve_lookup)).
//!
//! The decisions are Ceph Pacific's (`ProtocolV2::handle_existing_connection`,
//! `handle_reconnect`, `handle_session_*`, `_fault`), each a function from a few values to an
//! enum, tested row by row below:
//!
//! * [`decide_client_ident`]: a server receives CLIENT_IDENT and already has a session with
//!   that peer.
//! * [`decide_reconnect`]: a server receives SESSION_RECONNECT.
//! * [`client_reaction`]: a client receives the server's answer to SESSION_RECONNECT.
//! * [`fault_action`]: what a connection does when its socket fails.
//! * [`backoff`]: the reconnect delay after `n` failed attempts.
//! * [`race_order`]: who wins a connection race (Ceph's address order, made total).

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityType;
use msgr2_codec::msg::PRIO_HIGHEST;

use crate::message::Message;

/// The session state shared by all connections that carry it, one after another.
///
/// Cookies are named after the roles of the connection that *created* the session, not of
/// the connection carrying it now: after a fault either side of a lossless peer-to-peer
/// session may be the one that reconnects.
#[derive(Debug, Default)]
pub struct Session {
    /// Lossless unless the server said lossy.
    pub(crate) lossy: bool,
    pub(crate) client_cookie: u64,
    pub(crate) server_cookie: u64,
    pub(crate) connect_seq: u64,
    pub(crate) peer_global_seq: u64,
    /// Server: the peer's `msg_seq` from the SESSION_RECONNECT being accepted.
    pub(crate) message_seq: u64,
    pub(crate) out_seq: u64,
    pub(crate) in_seq: u64,
    /// Messages received since we last told the peer our `in_seq` (lossless only).
    pub(crate) ack_left: u64,
    /// Sent but not acknowledged (lossless only), in seq order.
    pub(crate) sent: VecDeque<Message>,
    /// Not yet written, per priority.
    pub(crate) queue: BTreeMap<u16, VecDeque<Message>>,
    pub(crate) queued_messages: usize,
    pub(crate) queued_bytes: u64,
    /// Consecutive failed connection attempts (for [`backoff`]); 0 after success.
    pub(crate) attempt: u32,
    /// What the last successful handshake established about the peer.
    pub(crate) peer: Option<SessionPeer>,
    /// The application was told this session is ready (so a reset must be reported).
    pub(crate) announced: bool,
}

/// What a session remembers about its peer between connections (a SESSION_RECONNECT_OK does
/// not repeat it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPeer {
    pub entity_type: EntityType,
    pub gid: i64,
    pub addrs: EntityAddrVec,
    pub features: u64,
}

impl Session {
    /// A new, empty session (`lossy` is the local policy's proposal).
    pub fn new(lossy: bool) -> Self {
        Self {
            lossy,
            ..Default::default()
        }
    }

    /// Whether the session is lossy (after the handshake: as the server dictated).
    pub fn is_lossy(&self) -> bool {
        self.lossy
    }

    /// The client cookie (0 until a lossless CLIENT_IDENT was sent or received).
    pub fn client_cookie(&self) -> u64 {
        self.client_cookie
    }

    /// The server cookie (0 until a lossless SERVER_IDENT was sent or received).
    pub fn server_cookie(&self) -> u64 {
        self.server_cookie
    }

    /// Reconnect attempt counter (`connect_seq`).
    pub fn connect_seq(&self) -> u64 {
        self.connect_seq
    }

    /// The peer's `global_seq` as of its last ident or reconnect.
    pub fn peer_global_seq(&self) -> u64 {
        self.peer_global_seq
    }

    /// Last message seq assigned to a sent message.
    pub fn out_seq(&self) -> u64 {
        self.out_seq
    }

    /// Last message seq received.
    pub fn in_seq(&self) -> u64 {
        self.in_seq
    }

    /// Messages sent and not yet acknowledged (always 0 when lossy).
    pub fn unacked(&self) -> usize {
        self.sent.len()
    }

    /// Messages queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued_messages
    }

    /// Payload bytes queued and not yet written.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Consecutive failed connection attempts since the session was last ready.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub(crate) fn push(&mut self, m: Message) {
        self.queued_messages += 1;
        self.queued_bytes += m.payload_len() as u64;
        self.queue
            .entry(m.header.priority)
            .or_default()
            .push_back(m);
    }

    /// The next message to write: highest priority first, FIFO within a priority.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let mut entry = self.queue.last_entry()?;
        let m = entry.get_mut().pop_front();
        if entry.get().is_empty() {
            entry.remove();
        }
        if let Some(m) = &m {
            self.queued_messages -= 1;
            self.queued_bytes = self.queued_bytes.saturating_sub(m.payload_len() as u64);
        }
        m
    }

    /// Ceph's `requeue_sent`: unacknowledged messages go back to the front of the highest
    /// priority queue, in order, and `out_seq` is rewound so they are re-sent with their
    /// original sequence numbers.
    pub(crate) fn requeue_sent(&mut self) {
        if self.sent.is_empty() {
            return;
        }
        self.out_seq -= self.sent.len() as u64;
        while let Some(m) = self.sent.pop_back() {
            self.queued_messages += 1;
            self.queued_bytes += m.payload_len() as u64;
            self.queue.entry(PRIO_HIGHEST).or_default().push_front(m);
        }
    }

    /// Ceph's `discard_requeued_up_to`: drops requeued messages the peer already has
    /// (`seq <= seq`), advancing `out_seq` past them.
    pub(crate) fn discard_requeued_up_to(&mut self, seq: u64) {
        let Some(q) = self.queue.get_mut(&PRIO_HIGHEST) else {
            return;
        };
        while let Some(m) = q.front() {
            if m.header.seq == 0 || m.header.seq > seq {
                break;
            }
            let len = m.payload_len() as u64;
            q.pop_front();
            self.queued_messages -= 1;
            self.queued_bytes = self.queued_bytes.saturating_sub(len);
            self.out_seq += 1;
        }
        if q.is_empty() {
            self.queue.remove(&PRIO_HIGHEST);
        }
    }

    /// Drops sent messages the peer acknowledged. Returns how many.
    pub(crate) fn ack(&mut self, seq: u64) -> usize {
        let mut n = 0;
        while self.sent.front().is_some_and(|m| m.header.seq <= seq) {
            self.sent.pop_front();
            n += 1;
        }
        n
    }

    /// Ceph's `reset_session`/`discard_out_queue`: forget everything. Returns how many
    /// messages were dropped.
    pub(crate) fn reset(&mut self) -> usize {
        let dropped = self.sent.len() + self.queued_messages;
        let lossy = self.lossy;
        *self = Session::new(lossy);
        dropped
    }

    /// A snapshot for [`decide_client_ident`] / [`decide_reconnect`].
    pub(crate) fn view(
        &self,
        state: ExistingState,
        policy_server: bool,
        global_seq: u64,
    ) -> ExistingView {
        ExistingView {
            state,
            lossy: self.lossy,
            policy_server,
            client_cookie: self.client_cookie,
            server_cookie: self.server_cookie,
            peer_global_seq: self.peer_global_seq,
            connect_seq: self.connect_seq,
            global_seq,
        }
    }
}

/// What an existing connection to the same peer is doing (Ceph's `exproto->state`, reduced
/// to what the decisions look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingState {
    /// Closed: as good as absent.
    Closed,
    /// In the middle of being replaced by another connection (Ceph's `replacing`). Our
    /// replacement is atomic, so a [`Connection`](crate::Connection) never reports it; the
    /// row is kept so the tables match Ceph's.
    Replacing,
    /// Ready: messages flow.
    Ready,
    /// Faulted, session parked, waiting (Ceph's STANDBY).
    Standby,
    /// Anything else: handshaking in either role, backing off, or WAITing.
    Connecting,
}

/// A snapshot of the existing session with a peer, as the decision tables need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingView {
    /// What the existing connection is doing.
    pub state: ExistingState,
    /// The existing session is lossy.
    pub lossy: bool,
    /// The existing connection's policy has `server` set (it never re-dials).
    pub policy_server: bool,
    /// The existing session's client cookie.
    pub client_cookie: u64,
    /// The existing session's server cookie.
    pub server_cookie: u64,
    /// The peer's global_seq as the existing session last saw it.
    pub peer_global_seq: u64,
    /// The existing session's connect_seq.
    pub connect_seq: u64,
    /// The existing connection's own global_seq (only used to break address ties).
    pub global_seq: u64,
}

/// Who wins a connection race, from the accepting side's point of view: `Less` means the
/// peer's address orders before ours, so the peer's incoming connection wins.
///
/// Ceph compares the two msgr2 addresses with `memcmp` ([`EntityAddr::race_cmp`]). Equal
/// addresses (two peers without a msgr2 address, or a misconfiguration) would make both
/// sides answer WAIT forever in Ceph; we break the tie so that exactly one side wins: the
/// connection with the higher `global_seq`, then the higher client cookie. The result is
/// antisymmetric: evaluated on the other side with the roles swapped it gives the opposite
/// answer, unless every input is equal.
pub fn race_order(
    peer: Option<&EntityAddr>,
    me: Option<&EntityAddr>,
    incoming: (u64, u64),
    existing: (u64, u64),
) -> Ordering {
    let by_addr = match (peer, me) {
        (Some(p), Some(m)) => p.race_cmp(m),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    // incoming (gs, cookie) larger → the peer counts as "smaller" (its connection wins)
    by_addr.then_with(|| existing.cmp(&incoming))
}

/// The incoming CLIENT_IDENT's session-relevant fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingIdent {
    /// Its client cookie.
    pub client_cookie: u64,
    /// Its global_seq.
    pub global_seq: u64,
}

/// What a server does with CLIENT_IDENT when a session with that peer exists
/// (`handle_existing_connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentDecision {
    /// The existing connection is closed: start a new session (SERVER_IDENT).
    NewSession,
    /// The existing connection is being replaced: answer WAIT.
    WaitReplacing,
    /// The existing session saw a newer connection from this peer: this one is stale;
    /// close it without a reply.
    CloseStale,
    /// The existing session is lossy: stop it (reporting its reset) and start a new one.
    ReplaceLossy,
    /// Both cookies are set and the client cookie changed: the peer restarted. Take the
    /// session over, resetting it first when `reset` (policy `resetcheck`).
    PeerRestarted {
        /// Reset the old session (drop its queues, tell the application).
        reset: bool,
    },
    /// Same client cookie: establishment was interrupted before SERVER_IDENT arrived; take
    /// the session over.
    Continue,
    /// The existing connection is READY or STANDBY: take its session over.
    TakeOverReady,
    /// Connection race, this (incoming) connection wins: take the session over.
    RaceWin,
    /// Connection race, the existing connection wins: answer WAIT and nudge the existing
    /// connection with a keepalive so a dead one is noticed.
    RaceLose,
}

impl IdentDecision {
    /// Whether the incoming connection takes the existing session over.
    pub fn takes_over(self) -> bool {
        matches!(
            self,
            IdentDecision::PeerRestarted { .. }
                | IdentDecision::Continue
                | IdentDecision::TakeOverReady
                | IdentDecision::RaceWin
        )
    }
}

/// Ceph's `handle_existing_connection` as a table. `race` is [`race_order`] (peer vs us);
/// `resetcheck` is the accepting policy's.
pub fn decide_client_ident(
    existing: &ExistingView,
    incoming: &IncomingIdent,
    race: Ordering,
    resetcheck: bool,
) -> IdentDecision {
    use IdentDecision::*;
    if existing.state == ExistingState::Closed {
        return NewSession;
    }
    if existing.state == ExistingState::Replacing {
        return WaitReplacing;
    }
    if existing.peer_global_seq > incoming.global_seq {
        return CloseStale;
    }
    if existing.lossy {
        return ReplaceLossy;
    }
    if existing.server_cookie != 0
        && existing.client_cookie != 0
        && existing.client_cookie != incoming.client_cookie
    {
        return PeerRestarted { reset: resetcheck };
    }
    if existing.client_cookie == incoming.client_cookie {
        return Continue;
    }
    if matches!(
        existing.state,
        ExistingState::Ready | ExistingState::Standby
    ) {
        return TakeOverReady;
    }
    if race == Ordering::Less || existing.policy_server {
        RaceWin
    } else {
        RaceLose
    }
}

/// The incoming SESSION_RECONNECT's fields the server decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingReconnect {
    /// Its client cookie.
    pub client_cookie: u64,
    /// Its global_seq.
    pub global_seq: u64,
    /// Its connect_seq.
    pub connect_seq: u64,
}

/// A server's answer to SESSION_RECONNECT (`handle_reconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconnectDecision {
    /// SESSION_RESET: `full` drops the client's whole session; not full only restarts
    /// establishment (the client keeps its queue and sends CLIENT_IDENT).
    Reset {
        /// SESSION_RESET's `full`.
        full: bool,
    },
    /// SESSION_RETRY_GLOBAL with our stored peer global_seq.
    RetryGlobal(u64),
    /// SESSION_RETRY with our connect_seq.
    Retry(u64),
    /// WAIT: our own reconnect in the other direction wins the race.
    Wait,
    /// Take the session over and answer SESSION_RECONNECT_OK; `race` when it won a
    /// reconnect race.
    Accept {
        /// Decided by the race rule.
        race: bool,
    },
}

/// Ceph's `handle_reconnect` as a table. `existing` is `None` when we have no session with
/// the peer; `race` is [`race_order`] (peer vs us); `resetcheck` the accepting policy's.
pub fn decide_reconnect(
    existing: Option<&ExistingView>,
    r: &IncomingReconnect,
    race: Ordering,
    resetcheck: bool,
) -> ReconnectDecision {
    use ReconnectDecision::*;
    let Some(e) = existing else {
        return Reset { full: true };
    };
    match e.state {
        ExistingState::Closed => return Reset { full: true },
        ExistingState::Replacing => return RetryGlobal(e.peer_global_seq),
        _ => {}
    }
    if e.client_cookie != r.client_cookie {
        return Reset { full: resetcheck };
    }
    if e.server_cookie == 0 {
        return Reset { full: false };
    }
    if e.peer_global_seq > r.global_seq {
        return RetryGlobal(e.peer_global_seq);
    }
    if e.connect_seq > r.connect_seq {
        return Retry(e.connect_seq);
    }
    if e.connect_seq == r.connect_seq {
        if race == Ordering::Greater && !e.policy_server {
            return Wait;
        }
        return Accept { race: true };
    }
    Accept { race: false }
}

/// A server's answer to SESSION_RECONNECT, as the client receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionReply {
    /// SESSION_RECONNECT_OK with the server's in_seq.
    ReconnectOk(u64),
    /// SESSION_RETRY with the server's connect_seq.
    Retry(u64),
    /// SESSION_RETRY_GLOBAL with the server's stored global_seq for us.
    RetryGlobal(u64),
    /// SESSION_RESET.
    Reset {
        /// Drop the whole session.
        full: bool,
    },
    /// WAIT.
    Wait,
}

/// What the client does next (`handle_reconnect_ok`, `handle_session_retry(_global)`,
/// `handle_session_reset`, `handle_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// Drop requeued messages with `seq <= discard_up_to` and go READY.
    Resume {
        /// The server's in_seq.
        discard_up_to: u64,
    },
    /// Send SESSION_RECONNECT again with these counters.
    Resend {
        /// New connect_seq.
        connect_seq: u64,
        /// New global_seq.
        global_seq: u64,
    },
    /// Start a new session with CLIENT_IDENT; when `full`, first discard the whole session
    /// (queues, seqs, cookies) and report a remote reset, otherwise clear only the server
    /// cookie, connect_seq and in_seq.
    NewSession {
        /// Full reset.
        full: bool,
    },
    /// Fault and retry after the maximum backoff: the peer's connection to us wins.
    Wait,
}

/// The client's reaction to `reply`, given its current `connect_seq` and `global_seq`.
pub fn client_reaction(reply: SessionReply, connect_seq: u64, global_seq: u64) -> ClientAction {
    match reply {
        SessionReply::ReconnectOk(seq) => ClientAction::Resume { discard_up_to: seq },
        SessionReply::Retry(cs) => ClientAction::Resend {
            connect_seq: cs.saturating_add(1),
            global_seq,
        },
        SessionReply::RetryGlobal(gs) => ClientAction::Resend {
            connect_seq,
            global_seq: gs.max(global_seq).saturating_add(1),
        },
        SessionReply::Reset { full } => ClientAction::NewSession { full },
        SessionReply::Wait => ClientAction::Wait,
    }
}

/// Where a connection was when it faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPhase {
    /// Client role, handshake not finished (START_CONNECT … SESSION_RECONNECTING).
    Connecting,
    /// Client role, the server answered WAIT.
    Wait,
    /// Server role, handshake not finished (START_ACCEPT … SESSION_ACCEPTING).
    Accepting,
    /// READY (either role).
    Ready,
}

/// Inputs of [`fault_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInput {
    /// The session is lossy.
    pub lossy: bool,
    /// Where the fault happened.
    pub phase: FaultPhase,
    /// Nothing queued for the peer (after requeueing unacknowledged messages).
    pub queue_empty: bool,
    /// A KEEPALIVE2 is waiting to be sent.
    pub keepalive_pending: bool,
    /// Policy `server`.
    pub policy_server: bool,
    /// Policy `standby`.
    pub policy_standby: bool,
    /// The session has a server cookie (a reconnect would be SESSION_RECONNECT).
    pub has_server_cookie: bool,
    /// Failed attempts so far (the session's `attempt`).
    pub attempt: u32,
}

/// What a faulted connection does (`ProtocolV2::_fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Close. `reset`: the session is discarded and the application told (lossy).
    Close {
        /// Report a reset.
        reset: bool,
    },
    /// Keep the session parked (STANDBY) until the peer reconnects, or (non-server) until
    /// there is something to send.
    Standby,
    /// Reconnect after `delay`; bump connect_seq first when asked.
    Reconnect {
        /// Backoff delay.
        delay: Duration,
        /// Increment connect_seq.
        bump_connect_seq: bool,
        /// The attempt counter to store.
        attempt: u32,
    },
}

/// Ceph's `_fault` as a table. Note (ceph/ceph#25343) that a fault before the session
/// exists (no server cookie) does not bump connect_seq: bumping it made the server answer
/// SESSION_RESET and the client drop its queue.
pub fn fault_action(f: &FaultInput, initial: Duration, max: Duration) -> FaultAction {
    if f.lossy && f.phase != FaultPhase::Connecting {
        return FaultAction::Close { reset: true };
    }
    if f.phase == FaultPhase::Accepting && f.queue_empty {
        return FaultAction::Close { reset: false };
    }
    if f.policy_standby && f.queue_empty && !f.keepalive_pending && f.phase != FaultPhase::Wait {
        return FaultAction::Standby;
    }
    if f.policy_server {
        return FaultAction::Standby;
    }
    if f.phase == FaultPhase::Ready {
        return FaultAction::Reconnect {
            delay: Duration::ZERO,
            bump_connect_seq: f.has_server_cookie,
            attempt: 0,
        };
    }
    let attempt = f.attempt.saturating_add(1);
    let delay = if f.phase == FaultPhase::Wait {
        max
    } else {
        backoff(attempt, initial, max)
    };
    FaultAction::Reconnect {
        delay,
        bump_connect_seq: f.has_server_cookie,
        attempt,
    }
}

/// Reconnect delay after `attempt` consecutive failed attempts: none for the first
/// reconnect after a ready connection broke (attempt 0), then `initial` doubling up to `max`
/// (`ms_initial_backoff` 0.2 s → `ms_max_backoff` 15 s).
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let shift = (attempt - 1).min(31);
    initial.saturating_mul(1u32 << shift).min(max)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
