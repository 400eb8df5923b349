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
mod input;
mod lifecycle;

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

impl Connection {
    fn new(role: Role, config: Arc<Config>, global_seq: u64, now: Instant) -> Self {
        let mut out = Vec::with_capacity(256);
        config.effective_banner().encode(&mut out);
        config.global_seq.observe(global_seq);
        let deadline = Some(now + Duration::from_secs(config.ready_timeout_secs));
        let local_nonce = if config.nonce != 0 {
            config.nonce
        } else {
            (config.random.next_u64() as u32).max(1)
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
}
