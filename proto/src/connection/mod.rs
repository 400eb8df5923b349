//! One msgr2 connection, sans-IO: bytes in, bytes out, events, time passed in.
//!
//! The handshake is a sequence of phases, each with the data only it needs (rustls style):
//!
//! ```text
//! client: Banner → ExpectHello → ExpectAuthReply ⟲ → ExpectSignature [→ ExpectCompressionDone]
//!           → ExpectServerIdent (CLIENT_IDENT sent)          → Ready
//!           → ExpectReconnectReply (SESSION_RECONNECT sent) ⟲ → Ready
//! server: Banner → ExpectHello → ExpectAuthRequest ⟲ → ExpectSignature
//!           [→ ExpectCompressionRequest] → ExpectClientIdent [→ AwaitLookup] ⟲ → Ready
//! after a fault: Backoff (reconnect pending) | Standby (session parked) | Closed
//! ```
//!
//! Both sides send their banner at once and their HELLO as soon as the peer's banner fixed the
//! framing revision. Until authentication completes each side records the exact bytes it sent
//! and received; AUTH_SIGNATURE is an HMAC over them with the session key. The mode switch
//! (crc → secure) happens right after AUTH_DONE: the server switches after writing it, the
//! client after reading it, so AUTH_SIGNATURE is the first frame in the new mode both ways.
//! When both banners advertise compression, COMPRESSION_REQUEST/DONE follow AUTH_SIGNATURE
//! on every new connection ([`crate::compression`]).
//!
//! Every connection carries a [`Session`]. Lossless sessions survive faults: the faulted
//! connection keeps the session (requeued, original sequence numbers) and tells the embedder
//! to reconnect ([`Event::Reconnect`]) or parks it ([`Connection::state`] `STANDBY`); a new
//! connection from the peer can take it over ([`Event::Lookup`],
//! [`Connection::resolve_lookup`]). Session decisions live in [`crate::session`].

mod auth;
mod compress;
mod ident;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision, BANNER_PREFIX_LEN};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{Frame, FrameParts, Tag, ALIGN_DEFAULT, ALIGN_PAGE};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::{self as p, Control, ControlPayload, UTime};
use msgr2_codec::Data;
use msgr2_crypto::auth::{AuthResult, ClientAuth, ServerAuth};
use tracing::{debug, trace};

use crate::compression::ActiveCompression;
use crate::config::{Config, Policy};
use crate::error::ProtoError;
use crate::framing::{RxFraming, TxFraming};
use crate::message::Message;
use crate::session::{fault_action, FaultAction, FaultInput, FaultPhase, Session};
use crate::throttle::{Throttle, ThrottleGuard};

pub use ident::{ExistingFate, Lookup};

/// Which end of the TCP connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected.
    Client,
    /// We accepted.
    Server,
}

/// What the handshake established about the peer and the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Peer entity type (from HELLO).
    pub entity_type: EntityType,
    /// Peer entity number (from the ident frame).
    pub gid: i64,
    /// Peer's addresses (from the ident frame).
    pub addrs: EntityAddrVec,
    /// Authenticated peer name (server side, when the auth method names it).
    pub name: Option<EntityName>,
    /// Negotiated `CEPH_FEATURE_*` bits (ours ∩ peer's).
    pub features: u64,
    /// Framing revision.
    pub revision: Revision,
    /// `CEPH_CON_MODE_*` in force.
    pub con_mode: u32,
    /// `CEPH_AUTH_*` used.
    pub auth_method: u32,
    /// Global id from AUTH_DONE.
    pub global_id: u64,
    /// Whether the session is lossy (dictated by the server).
    pub lossy: bool,
    /// Our own address as the peer saw it (from its HELLO).
    pub my_addr_seen_by_peer: Option<EntityAddr>,
    /// The session was resumed (SESSION_RECONNECT_OK) rather than started: messages queued
    /// before the fault continue with their original sequence numbers.
    pub reconnected: bool,
    /// On-wire compression negotiated on this connection (both directions), if any.
    pub compression: Option<msgr2_codec::compress::Method>,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; messages can flow.
    Ready(PeerInfo),
    /// A message arrived. It holds a receive-throttle reservation until dropped.
    Message(Message),
    /// The peer sent KEEPALIVE2 (already answered).
    Keepalive(UTime),
    /// The peer answered our KEEPALIVE2.
    KeepaliveAck(UTime),
    /// The session with the peer was reset: `dropped` queued or unacknowledged messages were
    /// discarded and the peer starts from scratch. `remote`: the peer asked for it
    /// (SESSION_RESET(full)) or we detected it restarted; otherwise a lossy connection
    /// faulted or was replaced (Ceph's `ms_handle_remote_reset` / `ms_handle_reset`).
    Reset {
        /// Peer-initiated.
        remote: bool,
        /// Messages discarded.
        dropped: usize,
    },
    /// This lossless connection faulted and its session should continue on a new client
    /// connection after `delay`: call [`Connection::reconnect`].
    Reconnect {
        /// Backoff before dialling.
        delay: Duration,
    },
    /// Server side with [`Config::session_lookup`]: the peer identified itself; find the
    /// connection holding this peer's session (if any) and call
    /// [`Connection::resolve_lookup`]. Input is paused until then.
    Lookup(Lookup),
}

/// Exact pre-auth bytes, for AUTH_SIGNATURE.
#[derive(Default)]
struct Transcript {
    rx: Vec<u8>,
    tx: Vec<u8>,
}

enum Pending {
    Ident(p::ClientIdent),
    Reconnect(p::SessionReconnect),
}

enum Phase {
    Banner {
        buf: Vec<u8>,
    },
    ExpectHello,
    ExpectAuthReply {
        auth: Box<dyn ClientAuth>,
        tried: Vec<u32>,
    },
    ExpectAuthRequest {
        rejected: u32,
    },
    ExpectAuthRequestMore {
        auth: Box<dyn ServerAuth>,
        con_mode: u32,
    },
    ExpectSignature,
    ExpectCompressionDone {
        requested: bool,
    },
    ExpectCompressionRequest,
    ExpectServerIdent,
    ExpectReconnectReply,
    ExpectClientIdent,
    AwaitLookup(Box<Pending>),
    /// Transient while a handshake frame is processed (its phase moved out).
    Busy,
    Ready,
    Backoff,
    Standby,
    Closed,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Banner { .. } => "BANNER",
            Phase::ExpectHello => "HELLO",
            Phase::ExpectAuthReply { .. } => "AUTH_CONNECTING",
            Phase::ExpectAuthRequest { .. } => "AUTH_ACCEPTING",
            Phase::ExpectAuthRequestMore { .. } => "AUTH_ACCEPTING_MORE",
            Phase::ExpectSignature => "AUTH_SIGN",
            Phase::ExpectCompressionDone { .. } => "COMPRESSION_CONNECTING",
            Phase::ExpectCompressionRequest => "COMPRESSION_ACCEPTING",
            Phase::ExpectServerIdent => "SESSION_CONNECTING",
            Phase::ExpectReconnectReply => "SESSION_RECONNECTING",
            Phase::ExpectClientIdent => "SESSION_ACCEPTING",
            Phase::AwaitLookup(_) => "SESSION_LOOKUP",
            Phase::Busy => "HANDSHAKE",
            Phase::Ready => "READY",
            Phase::Backoff => "BACKOFF",
            Phase::Standby => "STANDBY",
            Phase::Closed => "CLOSED",
        }
    }

    /// A handshake phase (the socket is live, READY not reached).
    fn handshaking(&self) -> bool {
        !matches!(
            self,
            Phase::Ready | Phase::Backoff | Phase::Standby | Phase::Closed
        )
    }
}

/// How many AUTH_BAD_METHOD rounds a server tolerates before closing.
const MAX_AUTH_ATTEMPTS: u32 = 8;
/// Stop framing queued messages once this many bytes wait in the transmit buffer; the rest
/// stays queued (and counts against the queue bound) until the embedder drains it.
const TX_BATCH: usize = 4 << 20;
/// Message data at least this large is sent as its own gather piece under vectored transmit.
pub const VECTORED_MIN: usize = 16 << 10;
/// Input handed to a connection that cannot consume it (throttled, awaiting a lookup) is
/// kept up to this much; beyond it the connection fails (the embedder ignored
/// [`Connection::wants_input`]).
const MAX_STASH: usize = 64 << 20;

/// A msgr2 connection state machine.
pub struct Connection {
    role: Role,
    config: Arc<Config>,
    policy: Policy,
    phase: Phase,
    tx: TxFraming,
    rx: Option<RxFraming>,
    revision: Revision,
    out: Vec<u8>,
    /// Gather pieces framed before `out` (vectored transmit): in wire order, then `out`.
    out_pieces: Vec<Data>,
    /// Bytes in `out_pieces`.
    out_pieces_len: usize,
    /// Whether large message data may be sent as its own gather piece (see
    /// [`Connection::poll_transmit_vectored`]).
    vectored_tx: bool,
    transcript: Option<Transcript>,
    events: VecDeque<Event>,
    /// Client: the peer type we dialled; server: learned from HELLO.
    peer_type: Option<EntityType>,
    /// Client: the exact address we connected to.
    target: Option<EntityAddr>,
    /// Server: the client's socket address (sent back in HELLO).
    peer_socket: Option<std::net::SocketAddr>,
    my_addr_seen_by_peer: Option<EntityAddr>,
    auth: Option<(u32, AuthResult)>,
    /// The bytes we sent before authentication completed; the peer's AUTH_SIGNATURE covers them.
    signed_tx: Vec<u8>,
    peer: Option<PeerInfo>,
    global_seq: u64,
    session: Session,
    /// Our nonce for a TYPE_ANY client address (stable across reconnects of a session).
    local_nonce: u32,
    /// Input received but not consumed yet (throttled or awaiting a lookup).
    stash: Vec<u8>,
    /// Handshake deadline.
    deadline: Option<Instant>,
    created: Instant,
    now: Instant,
    last_rx: Instant,
    last_tx: Instant,
    rx_since_tick: bool,
    tx_since_tick: bool,
    /// A KEEPALIVE2 to send once ready.
    keepalive: Option<UTime>,
    error: Option<ProtoError>,
    /// Both banners advertised compression: COMPRESSION_REQUEST/DONE follow AUTH_SIGNATURE.
    negotiate_compression: bool,
    /// Compression in force (after COMPRESSION_DONE).
    compression: Option<ActiveCompression>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // A failing system RNG leaves zeros; callers map 0 to 1 where zero is meaningful.
    let _ = aws_lc_rs::rand::fill(&mut b);
    u64::from_le_bytes(b)
}

impl Connection {
    fn new(role: Role, config: Arc<Config>, global_seq: u64, now: Instant) -> Self {
        let mut out = Vec::with_capacity(256);
        config.effective_banner().encode(&mut out);
        config.global_seq.observe(global_seq);
        let deadline = Some(now + Duration::from_secs(config.ready_timeout_secs));
        let local_nonce = if config.nonce != 0 {
            config.nonce
        } else {
            (random_u64() as u32).max(1)
        };
        Self {
            role,
            policy: Policy::default(),
            phase: Phase::Banner {
                buf: Vec::with_capacity(BANNER_PREFIX_LEN + 16),
            },
            tx: TxFraming::Crc(Revision::Rev1),
            rx: None,
            revision: Revision::Rev1,
            transcript: Some(Transcript {
                rx: Vec::new(),
                tx: out.clone(),
            }),
            out,
            out_pieces: Vec::new(),
            out_pieces_len: 0,
            vectored_tx: false,
            events: VecDeque::new(),
            peer_type: None,
            target: None,
            peer_socket: None,
            my_addr_seen_by_peer: None,
            auth: None,
            signed_tx: Vec::new(),
            peer: None,
            global_seq,
            session: Session::new(true),
            local_nonce,
            stash: Vec::new(),
            deadline,
            created: now,
            now,
            last_rx: now,
            last_tx: now,
            rx_since_tick: false,
            tx_since_tick: false,
            keepalive: None,
            error: None,
            negotiate_compression: false,
            compression: None,
            config,
        }
    }

    /// A client connection to `target` (the peer's exact msgr2 address, nonce included), a
    /// peer of type `peer_type`, starting a new session under `config.policies`.
    /// `global_seq` comes from the messenger's counter.
    pub fn client(
        config: Arc<Config>,
        target: EntityAddr,
        peer_type: EntityType,
        global_seq: u64,
        now: Instant,
    ) -> Self {
        let policy = config.policy(peer_type);
        let session = Session::new(policy.lossy);
        Self::client_with_session(config, target, peer_type, session, global_seq, now)
    }

    /// A client connection carrying an existing `session` (from [`Connection::take_session`]
    /// or a faulted connection): the handshake ends with SESSION_RECONNECT when the session
    /// has a server cookie, CLIENT_IDENT otherwise, and queued messages keep their order and
    /// sequence numbers.
    pub fn client_with_session(
        config: Arc<Config>,
        target: EntityAddr,
        peer_type: EntityType,
        session: Session,
        global_seq: u64,
        now: Instant,
    ) -> Self {
        let policy = config.policy(peer_type);
        let mut c = Self::new(Role::Client, config, global_seq, now);
        c.target = Some(target);
        c.peer_type = Some(peer_type);
        c.policy = policy;
        c.session = session;
        c
    }

    /// A server connection accepted from `peer_socket`.
    pub fn server(
        config: Arc<Config>,
        peer_socket: std::net::SocketAddr,
        global_seq: u64,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(Role::Server, config, global_seq, now);
        c.peer_socket = Some(peer_socket);
        c
    }

    /// Ceph's name for the current state (`BACKOFF`/`STANDBY`: faulted, session kept).
    pub fn state(&self) -> &'static str {
        self.phase.name()
    }

    /// Whether messages flow.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Whether the connection is finished for good (no session left in it).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the socket of this connection is unusable: the connection faulted (possibly
    /// keeping its session for a reconnect) or closed.
    pub fn is_faulted(&self) -> bool {
        matches!(self.phase, Phase::Backoff | Phase::Standby | Phase::Closed)
    }

    /// Why the connection faulted (the first error; kept for a reconnect, if any), once it has.
    pub fn error(&self) -> Option<&ProtoError> {
        self.error.as_ref()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The policy in force towards the peer (servers learn the peer type from HELLO).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What the handshake established (after [`Event::Ready`]).
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The session this connection carries.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The peer's entity type (client: as dialled; server: from HELLO).
    pub fn peer_type(&self) -> Option<EntityType> {
        self.peer_type
    }

    /// The address this client connection dialled.
    pub fn target(&self) -> Option<EntityAddr> {
        self.target
    }

    /// This connection's `global_seq` (it changes on SESSION_RETRY_GLOBAL; a messenger
    /// should keep its counter at least this high).
    pub fn global_seq(&self) -> u64 {
        self.global_seq
    }

    /// The peer's addresses as far as known: from the last ident frame, else (client) the
    /// dialled address.
    pub fn peer_addrs(&self) -> Option<EntityAddrVec> {
        match (&self.session.peer, self.target) {
            (Some(p), _) if !p.addrs.0.is_empty() => Some(p.addrs.clone()),
            (_, Some(t)) => Some(EntityAddrVec(vec![t])),
            _ => None,
        }
    }

    /// Whether this connection represents a session with its peer for the purposes of a
    /// server's lookup (Ceph registers outgoing connections at once and accepted ones when
    /// they reply with SERVER_IDENT or SESSION_RECONNECT_OK).
    pub fn holds_session(&self) -> bool {
        match self.phase {
            Phase::Closed => false,
            _ => self.role == Role::Client || self.session.announced,
        }
    }

    /// Moves pending outgoing bytes into `buf` (appending). Returns how many. On a ready
    /// connection this frames queued messages (highest priority first, in batches of a few
    /// MiB), a pending KEEPALIVE2 and, on lossless sessions with nothing else to send, a
    /// standalone ACK. Call it when the socket can take more.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.prepare_transmit();
        if self.out_pieces.is_empty() && buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.reserve(n);
            for p in self.out_pieces.drain(..) {
                buf.extend_from_slice(&p);
            }
            self.out_pieces_len = 0;
            buf.append(&mut self.out);
        }
        n
    }

    /// Frames what a ready session has to send; returns the bytes waiting (pieces and buffer).
    fn prepare_transmit(&mut self) -> usize {
        if self.is_ready() {
            if let Err(e) = self.flush_session() {
                self.fault(e);
            }
        }
        let n = self.out_pieces_len + self.out.len();
        if n > 0 {
            self.tx_since_tick = true;
        }
        n
    }

    /// Enables vectored transmit: from now on, in crc mode, the data segment of a large
    /// message ([`VECTORED_MIN`] bytes or more) is not copied into the transmit buffer but
    /// handed out as its own piece by [`Connection::poll_transmit_vectored`] (a clone of the
    /// message's [`Data`], sharing its buffer; a lossless session keeps the message for
    /// replay as well). ([`Connection::poll_transmit`] still works and copies.) Secure mode
    /// always encrypts into the buffer.
    pub fn set_vectored_transmit(&mut self, on: bool) {
        self.vectored_tx = on;
    }

    /// Gives back a transmit buffer handed out by [`Connection::poll_transmit_vectored`] once
    /// it was sent, so its capacity is reused for the next frames (kept only while the
    /// connection's own buffer is empty and smaller).
    pub fn recycle_transmit_buffer(&mut self, mut buf: Vec<u8>) {
        if self.out.is_empty() && buf.capacity() > self.out.capacity() {
            buf.clear();
            self.out = buf;
        }
    }

    /// Like [`Connection::poll_transmit`], but appends the bytes to send as gather pieces in
    /// wire order (small frame parts coalesced; large message data moved in as is). Returns
    /// the number of bytes appended.
    pub fn poll_transmit_vectored(&mut self, pieces: &mut Vec<Data>) -> usize {
        let n = self.prepare_transmit();
        pieces.append(&mut self.out_pieces);
        self.out_pieces_len = 0;
        if !self.out.is_empty() {
            pieces.push(Data::from(std::mem::take(&mut self.out)));
        }
        n
    }

    /// Whether there are bytes to send (or messages/acks that would become bytes).
    pub fn wants_transmit(&self) -> bool {
        !self.out.is_empty()
            || !self.out_pieces.is_empty()
            || (self.is_ready()
                && (self.session.queued() > 0
                    || self.keepalive.is_some()
                    || (!self.session.lossy && self.session.ack_left > 0)))
    }

    /// Whether the connection wants more input now. `false` while its receive throttles are
    /// full, while it waits for [`Connection::resolve_lookup`], and once it faulted: stop
    /// reading the socket then. After dropping received messages (releasing throttle) or
    /// resolving a lookup, call [`Connection::handle_input`] with an empty slice to process
    /// bytes it kept.
    pub fn wants_input(&self) -> bool {
        self.error.is_none() && self.stash.is_empty() && !self.input_blocked()
    }

    /// Bytes handed to [`Connection::handle_input`] and not consumed yet.
    pub fn pending_input(&self) -> usize {
        self.stash.len()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Connection::handle_timeout`] must be called next: the handshake deadline
    /// (`ms_connection_ready_timeout`), then while ready the idle deadline
    /// (`ms_connection_idle_timeout`) and the next automatic KEEPALIVE2.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase.handshaking() {
            return self.deadline;
        }
        if !self.is_ready() {
            return None;
        }
        let mut t = None::<Instant>;
        if !self.input_blocked() && self.stash.is_empty() {
            t = Some(self.last_rx + self.config.idle_timeout);
        }
        if let Some(i) = self.config.keepalive_interval {
            let k = self.last_tx + i;
            t = Some(t.map_or(k, |t| t.min(k)));
        }
        t
    }

    /// Advances time: fails a handshake past its deadline, faults a ready connection on
    /// which nothing arrived for `idle_timeout`, and schedules automatic keepalives. The
    /// connection has no clock: traffic since the previous call counts as happening `now`,
    /// so call it at least at [`Connection::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtoError> {
        self.check_alive()?;
        self.now = now;
        if std::mem::take(&mut self.rx_since_tick) || self.input_blocked() {
            self.last_rx = now;
        }
        if std::mem::take(&mut self.tx_since_tick) {
            self.last_tx = now;
        }
        if self.phase.handshaking() {
            if let Some(d) = self.deadline {
                if now >= d {
                    let e = ProtoError::HandshakeTimeout(self.state());
                    return Err(self.fault(e));
                }
            }
            return Ok(());
        }
        if !self.is_ready() {
            return Ok(());
        }
        if now >= self.last_rx + self.config.idle_timeout && self.stash.is_empty() {
            let e = ProtoError::IdleTimeout(self.config.idle_timeout);
            return Err(self.fault(e));
        }
        if let Some(i) = self.config.keepalive_interval {
            if now >= self.last_tx + i && self.keepalive.is_none() {
                self.keepalive = Some(self.stamp());
                self.last_tx = now;
            }
        }
        Ok(())
    }

    /// A keepalive stamp from the connection's clock (time since it was created).
    fn stamp(&self) -> UTime {
        let d = self.now.saturating_duration_since(self.created);
        UTime {
            sec: d.as_secs() as u32,
            nsec: d.subsec_nanos(),
        }
    }

    /// The peer closed its side: a typed error naming where it happened. A lossless
    /// connection keeps its session (see [`Event::Reconnect`]).
    pub fn handle_eof(&mut self) -> ProtoError {
        let e = ProtoError::PeerClosed(self.state());
        self.fault(e)
    }

    /// The socket failed for a reason other than an orderly close (connect refused, a send
    /// or receive error, an injected fault): faults the connection like
    /// [`Connection::handle_eof`] (a lossless one keeps its session) and returns the typed
    /// error.
    pub fn handle_socket_error(&mut self, what: impl Into<String>) -> ProtoError {
        let e = ProtoError::Socket {
            state: self.state(),
            what: what.into(),
        };
        self.fault(e)
    }

    /// Queues a message (by `header.priority`); it is written once the connection is ready.
    /// Sequence numbers are assigned when it is written. On a faulted lossless connection
    /// the message joins the session's queue (and a parked non-server session asks to
    /// reconnect). Fails with `QueueFull` when the session's queue bound is reached: the
    /// caller decides whether to wait or drop; nothing blocks.
    pub fn send_message(&mut self, mut msg: Message) -> Result<(), ProtoError> {
        if matches!(self.phase, Phase::Closed) {
            self.check_alive()?;
            return Err(ProtoError::Closed(Box::new(ProtoError::PeerClosed(
                "CLOSED",
            ))));
        }
        let bytes = msg.payload_len() as u64;
        if self.session.queued() >= self.config.max_queued_messages
            || self.session.queued_bytes() + bytes > self.config.max_queued_bytes
        {
            return Err(ProtoError::QueueFull {
                messages: self.session.queued(),
                bytes: self.session.queued_bytes(),
            });
        }
        msg.header.seq = 0;
        msg.throttle = None;
        self.session.push(msg);
        if matches!(self.phase, Phase::Standby) && !self.policy.server && self.can_dial() {
            self.start_reconnect(Duration::ZERO, self.session.server_cookie != 0, 0);
        }
        Ok(())
    }

    /// Sends KEEPALIVE2 with `stamp`: at once when ready, otherwise as soon as the connection
    /// becomes ready (Ceph queues it the same way).
    pub fn send_keepalive(&mut self, stamp: UTime) -> Result<(), ProtoError> {
        if matches!(self.phase, Phase::Closed) {
            self.check_alive()?;
        }
        self.keepalive = Some(stamp);
        Ok(())
    }

    fn check_alive(&self) -> Result<(), ProtoError> {
        match &self.error {
            Some(e) => Err(ProtoError::Closed(Box::new(e.clone()))),
            None => Ok(()),
        }
    }

    /// Handles a fault per [`fault_action`] and returns `e`.
    fn fault(&mut self, e: ProtoError) -> ProtoError {
        if self.is_faulted() {
            if self.error.is_none() {
                self.error = Some(e.clone());
            }
            return e;
        }
        debug!(state = self.state(), error = %e, "connection fault");
        self.error = Some(e.clone());
        let phase = match (&self.phase, self.role) {
            (Phase::Ready, _) => FaultPhase::Ready,
            (_, Role::Client) if matches!(e, ProtoError::Wait) => FaultPhase::Wait,
            (_, Role::Client) => FaultPhase::Connecting,
            (_, Role::Server) => FaultPhase::Accepting,
        };
        self.session.requeue_sent();
        self.session.ack_left = 0;
        let input = FaultInput {
            lossy: self.session.lossy,
            phase,
            queue_empty: self.session.queued() == 0,
            keepalive_pending: self.keepalive.is_some(),
            policy_server: self.policy.server,
            policy_standby: self.policy.standby,
            has_server_cookie: self.session.server_cookie != 0,
            attempt: self.session.attempt,
        };
        // A server-role connection that never took a session over has nothing to keep.
        let action = if phase == FaultPhase::Accepting && !self.session.announced {
            FaultAction::Close { reset: false }
        } else if e.is_permanent() {
            // Redialling cannot help (see `ProtoError::is_permanent`): fail for good, so the
            // embedder hears the cause instead of watching a silent reconnect loop.
            FaultAction::Close { reset: true }
        } else {
            fault_action(&input, self.config.initial_backoff, self.config.max_backoff)
        };
        match action {
            FaultAction::Close { reset } => {
                self.discard_session(reset, false);
                self.phase = Phase::Closed;
            }
            FaultAction::Standby => self.phase = Phase::Standby,
            FaultAction::Reconnect {
                delay,
                bump_connect_seq,
                attempt,
            } => {
                if self.can_dial() {
                    self.start_reconnect(delay, bump_connect_seq, attempt);
                } else {
                    self.phase = Phase::Standby;
                }
            }
        }
        e
    }

    fn start_reconnect(&mut self, delay: Duration, bump: bool, attempt: u32) {
        if bump {
            self.session.connect_seq = self.session.connect_seq.saturating_add(1);
        }
        self.session.attempt = attempt;
        self.phase = Phase::Backoff;
        self.events.push_back(Event::Reconnect { delay });
    }

    /// Drops the session's queues; reports a reset when asked and the application knew of
    /// the session (or had messages in it).
    fn discard_session(&mut self, report: bool, remote: bool) {
        let announced = self.session.announced;
        let dropped = self.session.reset();
        if report && (announced || dropped > 0) {
            self.events.push_back(Event::Reset { remote, dropped });
        }
    }

    /// Whether a faulted connection could dial the peer itself.
    fn can_dial(&self) -> bool {
        self.reconnect_target().is_some()
    }

    fn reconnect_target(&self) -> Option<EntityAddr> {
        match self.role {
            Role::Client => self.target,
            Role::Server => self
                .session
                .peer
                .as_ref()
                .and_then(|p| p.addrs.msgr2().copied())
                .filter(|a| !a.is_blank_ip() && a.port() != 0),
        }
    }

    /// Continues a faulted connection's session on a new client connection (after
    /// [`Event::Reconnect`], or to dial out of STANDBY). This connection is left closed. A
    /// server-role connection dials the peer's msgr2 address from its ident.
    pub fn reconnect(&mut self, global_seq: u64, now: Instant) -> Result<Connection, ProtoError> {
        if !matches!(self.phase, Phase::Backoff | Phase::Standby) {
            return Err(ProtoError::NotFaulted(self.state()));
        }
        let target = self
            .reconnect_target()
            .ok_or(ProtoError::NoReconnectTarget)?;
        let peer_type = self.peer_type_or_client();
        let session = std::mem::take(&mut self.session);
        self.phase = Phase::Closed;
        let mut c = Self::client_with_session(
            self.config.clone(),
            target,
            peer_type,
            session,
            global_seq,
            now,
        );
        c.policy = self.policy.clone();
        c.keepalive = self.keepalive.take();
        c.local_nonce = self.local_nonce;
        Ok(c)
    }

    /// Detaches the session (unacknowledged messages requeued) so the embedder can move it
    /// elsewhere; this connection is closed without reporting a reset.
    pub fn take_session(&mut self) -> Session {
        self.session.requeue_sent();
        self.session.ack_left = 0;
        self.phase = Phase::Closed;
        if self.error.is_none() {
            self.error = Some(ProtoError::Replaced);
        }
        std::mem::take(&mut self.session)
    }

    /// Receive-side zero copy (crc mode): when a ready connection is inside a segment (a
    /// message's data) with at least `min` bytes still to come and no input kept back, lends
    /// that segment's buffer (page-aligned for data segments) out with the offset of the next
    /// byte. Have the socket write the rest (`buf[offset..]`) straight into it, then give it
    /// back with [`Connection::return_rx_segment`]; meanwhile feed no input. The buffer is the
    /// caller's until then, so a fault or close in between cannot leave it dangling.
    pub fn lend_rx_segment(&mut self, min: usize) -> Option<(Data, usize)> {
        if !self.stash.is_empty() || self.error.is_some() || !self.is_ready() {
            return None;
        }
        self.rx.as_mut()?.lend_segment(min)
    }

    /// Bytes of the current segment still to come when [`Connection::lend_rx_segment`] could
    /// lend it now (0 otherwise): lets an embedder decide to stop its other reads first.
    pub fn rx_segment_left(&self) -> usize {
        if !self.stash.is_empty() || self.error.is_some() || !self.is_ready() {
            return 0;
        }
        self.rx.as_ref().map_or(0, |r| r.segment_left())
    }

    /// Gives back a buffer from [`Connection::lend_rx_segment`] with `n` more bytes written
    /// after its offset, and goes on decoding. On a closed connection it is simply dropped.
    pub fn return_rx_segment(&mut self, buf: Data, n: usize) -> Result<(), ProtoError> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(());
        };
        if n > 0 {
            self.rx_since_tick = true;
        }
        match rx.return_segment(buf, n) {
            Ok(Some(f)) => self.on_frame(f).map_err(|e| self.fault(e)),
            Ok(None) => Ok(()),
            Err(e) => Err(self.fault(e)),
        }
    }

    /// Consumes received bytes. On error the socket is dead: close it (a lossless
    /// connection keeps its session, see [`Event::Reconnect`]). Bytes that cannot be
    /// consumed yet (see [`Connection::wants_input`]) are kept and processed on a later call.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        self.check_alive()?;
        if !data.is_empty() {
            self.rx_since_tick = true;
        }
        if self.stash.is_empty() {
            let used = self.consume(data)?;
            if used < data.len() {
                self.stash.extend_from_slice(&data[used..]);
            }
        } else {
            let mut stash = std::mem::take(&mut self.stash);
            stash.extend_from_slice(data);
            let used = self.consume(&stash)?;
            stash.drain(..used);
            self.stash = stash;
        }
        if self.stash.len() > MAX_STASH {
            let e = ProtoError::InputOverrun(self.stash.len());
            self.stash = Vec::new();
            return Err(self.fault(e));
        }
        Ok(())
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<usize, ProtoError> {
        let total = data.len();
        while !data.is_empty() && !self.input_blocked() && self.error.is_none() {
            let used = match self.step_input(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fault(e)),
            };
            if used == 0 {
                break;
            }
            data = &data[used..];
        }
        Ok(total - data.len())
    }

    fn throttles(&self) -> impl Iterator<Item = &Arc<Throttle>> {
        std::iter::once(&self.config.dispatch_throttle)
            .chain(self.policy.throttler_bytes.iter())
            .chain(self.policy.throttler_messages.iter())
    }

    fn input_blocked(&self) -> bool {
        match &self.phase {
            Phase::AwaitLookup(_) => true,
            Phase::Ready => {
                self.rx.as_ref().is_some_and(|r| r.at_boundary())
                    && self.throttles().any(|t| t.is_full())
            }
            _ => false,
        }
    }

    fn step_input(&mut self, data: &[u8]) -> Result<usize, ProtoError> {
        if let Phase::Banner { buf } = &mut self.phase {
            let need = if buf.len() < BANNER_PREFIX_LEN {
                BANNER_PREFIX_LEN - buf.len()
            } else {
                let mut prefix = [0u8; BANNER_PREFIX_LEN];
                prefix.copy_from_slice(&buf[..BANNER_PREFIX_LEN]);
                BANNER_PREFIX_LEN + Banner::decode_prefix(&prefix)? - buf.len()
            };
            let n = need.min(data.len());
            buf.extend_from_slice(&data[..n]);
            if let Some(t) = &mut self.transcript {
                t.rx.extend_from_slice(&data[..n]);
            }
            if buf.len() == BANNER_PREFIX_LEN {
                let mut prefix = [0u8; BANNER_PREFIX_LEN];
                prefix.copy_from_slice(buf);
                Banner::decode_prefix(&prefix)?;
            } else if buf.len() > BANNER_PREFIX_LEN && n == need {
                let peer = Banner::decode_payload(&buf[BANNER_PREFIX_LEN..])?;
                self.on_banner(peer)?;
            }
            return Ok(n);
        }
        let Some(rx) = self.rx.as_mut() else {
            return Err(ProtoError::PeerClosed("CLOSED"));
        };
        let (used, frame) = rx.feed(data)?;
        if let Some(t) = &mut self.transcript {
            t.rx.extend_from_slice(&data[..used]);
        }
        if let Some(f) = frame {
            self.on_frame(f)?;
        }
        Ok(used)
    }

    fn on_banner(&mut self, peer: Banner) -> Result<(), ProtoError> {
        let ours = self.config.effective_banner();
        self.revision = Banner::negotiate(&ours, &peer)?;
        self.negotiate_compression = Banner::both_compress(&ours, &peer);
        trace!(revision = ?self.revision, "banner exchanged");
        self.tx = TxFraming::Crc(self.revision);
        self.rx = Some(RxFraming::crc(self.revision, self.config.limits));
        let none = EntityAddr {
            ty: AddrType::Msgr2,
            nonce: 0,
            sock: None,
        };
        let peer_addr = match self.role {
            Role::Client => self.target.unwrap_or(none),
            Role::Server => self
                .peer_socket
                .map_or(none, |s| EntityAddr::new(AddrType::Msgr2, s, 0)),
        };
        self.phase = Phase::ExpectHello;
        self.send_control(&p::Hello {
            entity_type: self.config.name.ty,
            peer_addr,
        })
    }

    /// Frames a control payload. On a ready connection, messages the application queued
    /// earlier go first, so the wire order follows the order things happened.
    fn send_control<P: ControlPayload>(&mut self, payload: &P) -> Result<(), ProtoError> {
        if self.is_ready() {
            self.flush_session()?;
        }
        self.frame_control(payload)
    }

    fn frame_control<P: ControlPayload>(&mut self, payload: &P) -> Result<(), ProtoError> {
        let bytes = payload.to_bytes();
        let start = self.out.len();
        self.frame_out(P::TAG, &[(&bytes, ALIGN_DEFAULT)])?;
        if let Some(t) = &mut self.transcript {
            t.tx.extend_from_slice(&self.out[start..]);
        }
        Ok(())
    }

    fn on_frame(&mut self, f: Frame<Data>) -> Result<(), ProtoError> {
        let f = self.decompress_frame(f)?;
        let tag = f.tag();
        if tag == Tag::Message {
            return self.on_message(f);
        }
        let ctl = Control::decode(tag, f.segment(0))
            .map_err(|error| ProtoError::Payload { tag, error })?;
        trace!(state = self.state(), %tag, "frame");
        let phase = std::mem::replace(&mut self.phase, Phase::Busy);
        let state = phase.name();
        let unexpected = ProtoError::UnexpectedFrame { tag, state };
        match (phase, ctl) {
            (Phase::ExpectHello, Control::Hello(h)) => self.on_hello(h),
            (Phase::ExpectAuthReply { auth, tried }, c) => self.on_auth_reply(auth, tried, c),
            (Phase::ExpectAuthRequest { rejected }, Control::AuthRequest(r)) => {
                self.on_auth_request(r, rejected)
            }
            (Phase::ExpectAuthRequestMore { mut auth, con_mode }, Control::AuthRequestMore(r)) => {
                let step = auth.request_more(&r.auth_payload);
                self.on_server_step(step, auth, con_mode, 0)
            }
            (Phase::ExpectSignature, Control::AuthSignature(s)) => self.on_signature(s),
            (Phase::ExpectCompressionDone { requested }, Control::CompressionDone(d)) => {
                self.on_compression_done(requested, d)
            }
            (Phase::ExpectCompressionRequest, Control::CompressionRequest(r)) => {
                self.on_compression_request(r)
            }
            (Phase::ExpectServerIdent, Control::ServerIdent(s)) => self.on_server_ident(s),
            (Phase::ExpectServerIdent, Control::IdentMissingFeatures(m)) => {
                Err(ProtoError::MissingFeatures {
                    missing: m.features,
                })
            }
            (Phase::ExpectServerIdent | Phase::ExpectReconnectReply, Control::Wait(_)) => {
                Err(ProtoError::Wait)
            }
            (Phase::ExpectReconnectReply, c) => self.on_reconnect_reply(c, unexpected),
            (Phase::ExpectClientIdent, Control::ClientIdent(c)) => self.on_client_ident(c),
            (Phase::ExpectClientIdent, Control::SessionReconnect(r)) => self.on_reconnect(r),
            (Phase::Ready, c) => {
                self.phase = Phase::Ready;
                self.on_ready_control(c)
            }
            (p, _) => {
                self.phase = p;
                Err(unexpected)
            }
        }
    }

    fn become_ready(&mut self, info: PeerInfo) -> Result<(), ProtoError> {
        debug!(peer = ?info.entity_type, mode = info.con_mode, revision = ?info.revision,
            reconnected = info.reconnected, in_seq = self.session.in_seq,
            out_seq = self.session.out_seq, "ready");
        self.peer = Some(info.clone());
        self.phase = Phase::Ready;
        self.session.attempt = 0;
        self.session.announced = true;
        self.deadline = None;
        self.last_rx = self.now;
        self.last_tx = self.now;
        self.events.push_back(Event::Ready(info));
        Ok(())
    }

    /// Frames what the session has to send: keepalive, queued messages, a standalone ACK.
    fn flush_session(&mut self) -> Result<(), ProtoError> {
        if let Some(stamp) = self.keepalive.take() {
            self.frame_control(&p::Keepalive2 { timestamp: stamp })?;
        }
        while self.out_pieces_len + self.out.len() < TX_BATCH {
            let Some(mut m) = self.session.pop() else {
                break;
            };
            self.session.out_seq += 1;
            m.header.seq = self.session.out_seq;
            m.header.ack_seq = self.session.in_seq;
            self.session.ack_left = 0;
            let header = m.header.to_bytes();
            if let (true, true, None, TxFraming::Crc(rev)) = (
                self.vectored_tx,
                m.data.len() >= VECTORED_MIN,
                self.compression,
                &self.tx,
            ) {
                // Everything before the data segment, the data itself, then the epilogue.
                // The data's crc is often known already (it arrived in a verified segment,
                // or this is a replay) and is remembered for a replay.
                let data_crc = m.data.ensure_segment_crc();
                let segs: [(&[u8], u16); 4] = [
                    (&header, ALIGN_DEFAULT),
                    (&m.front, ALIGN_DEFAULT),
                    (&m.middle, ALIGN_DEFAULT),
                    (&m.data, ALIGN_PAGE),
                ];
                let known = [None, None, None, Some(data_crc)];
                let parts = FrameParts::with_crcs(*rev, Tag::Message, &segs, &known);
                let borrowed: [&[u8]; 4] = [&header, &m.front, &m.middle, &[]];
                for piece in parts.pieces(&borrowed) {
                    if piece.as_ptr() == parts.epilogue.as_ptr() {
                        break;
                    }
                    self.out.extend_from_slice(piece);
                }
                let data = if self.session.lossy {
                    std::mem::take(&mut m.data)
                } else {
                    m.data.clone()
                };
                self.out_pieces_len += self.out.len() + data.len();
                if !self.out.is_empty() {
                    self.out_pieces
                        .push(Data::from(std::mem::take(&mut self.out)));
                }
                self.out_pieces.push(data);
                self.out
                    .extend_from_slice(&parts.epilogue[..parts.epilogue_len]);
                if !self.session.lossy {
                    self.session.sent.push_back(m);
                }
                continue;
            }
            self.frame_out(
                Tag::Message,
                &[
                    (&header, ALIGN_DEFAULT),
                    (&m.front, ALIGN_DEFAULT),
                    (&m.middle, ALIGN_DEFAULT),
                    (&m.data, ALIGN_PAGE),
                ],
            )?;
            if !self.session.lossy {
                self.session.sent.push_back(m);
            }
        }
        if !self.session.lossy && self.session.ack_left > 0 && self.session.queued() == 0 {
            self.session.ack_left = 0;
            let seq = self.session.in_seq;
            self.frame_control(&p::Ack { seq })?;
        }
        Ok(())
    }

    /// An ack from the peer (frame or piggybacked): it may not cover messages never sent.
    fn on_ack(&mut self, seq: u64) -> Result<(), ProtoError> {
        if seq > self.session.out_seq {
            return Err(ProtoError::AckBeyondSent {
                ack: seq,
                out_seq: self.session.out_seq,
            });
        }
        if !self.session.lossy {
            self.session.ack(seq);
        }
        Ok(())
    }

    fn on_message(&mut self, f: Frame<Data>) -> Result<(), ProtoError> {
        if !self.is_ready() {
            return Err(ProtoError::UnexpectedFrame {
                tag: Tag::Message,
                state: self.state(),
            });
        }
        let header = MsgHeader2::decode(f.segment(0)).map_err(|error| ProtoError::Payload {
            tag: Tag::Message,
            error,
        })?;
        if header.seq <= self.session.in_seq {
            debug!(
                seq = header.seq,
                in_seq = self.session.in_seq,
                "dropping duplicate message"
            );
            return Ok(());
        }
        if header.seq > self.session.in_seq + 1 {
            debug!(
                seq = header.seq,
                in_seq = self.session.in_seq,
                "missed message? (sequence gap tolerated as Ceph does)"
            );
        }
        self.on_ack(header.ack_seq)?;
        self.session.in_seq = header.seq;
        if !self.session.lossy {
            self.session.ack_left += 1;
        }
        let [_, front, middle, data] = f.segments;
        let size = (front.len() + middle.len() + data.len()) as u64;
        let mut held = vec![(self.config.dispatch_throttle.clone(), size)];
        if let Some(t) = &self.policy.throttler_bytes {
            held.push((t.clone(), size));
        }
        if let Some(t) = &self.policy.throttler_messages {
            held.push((t.clone(), 1));
        }
        self.events.push_back(Event::Message(Message {
            header,
            front: front.into_vec(),
            middle: middle.into_vec(),
            data,
            throttle: Some(Arc::new(ThrottleGuard::take(held))),
        }));
        Ok(())
    }

    fn on_ready_control(&mut self, c: Control) -> Result<(), ProtoError> {
        match c {
            Control::Keepalive2(k) => {
                self.send_control(&p::Keepalive2Ack {
                    timestamp: k.timestamp,
                })?;
                self.events.push_back(Event::Keepalive(k.timestamp));
                Ok(())
            }
            Control::Keepalive2Ack(k) => {
                self.events.push_back(Event::KeepaliveAck(k.timestamp));
                Ok(())
            }
            Control::Ack(a) => self.on_ack(a.seq),
            other => Err(ProtoError::UnexpectedFrame {
                tag: other.tag(),
                state: "READY",
            }),
        }
    }
}
