//! One msgr2 connection, sans-IO: bytes in, bytes out, events, time passed in.
//!
//! The handshake is a sequence of phases, each with the data only it needs (rustls style):
//!
//! ```text
//! client: Banner → ExpectHello → ExpectAuthReply ⟲ → ExpectSignature → ExpectServerIdent → Ready
//! server: Banner → ExpectHello → ExpectAuthRequest ⟲ → ExpectSignature → ExpectClientIdent → Ready
//! ```
//!
//! Both sides send their banner at once and their HELLO as soon as the peer's banner fixed the
//! framing revision. Until authentication completes each side records the exact bytes it sent
//! and received; AUTH_SIGNATURE is an HMAC over them with the session key. The mode switch
//! (crc → secure) happens right after AUTH_DONE: the server switches after writing it, the
//! client after reading it, so AUTH_SIGNATURE is the first frame in the new mode both ways.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision, BANNER_PREFIX_LEN};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{Frame, Tag, ALIGN_DEFAULT, ALIGN_PAGE};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::{
    self as p, Control, ControlPayload, UTime, CON_MODE_SECURE, IDENT_FLAG_LOSSY,
};
use msgr2_crypto::auth::{AuthResult, ClientAuth, ServerAuth, ServerStep, EOPNOTSUPP};
use msgr2_crypto::signature::{auth_signature, verify_auth_signature};
use tracing::{debug, trace};

use crate::config::{Config, FEATURE_MSG_ADDR2};
use crate::error::ProtoError;
use crate::framing::{RxFraming, TxFraming};
use crate::message::Message;

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
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; messages can flow.
    Ready(PeerInfo),
    /// A message arrived.
    Message(Message),
    /// The peer sent KEEPALIVE2 (already answered).
    Keepalive(UTime),
    /// The peer answered our KEEPALIVE2.
    KeepaliveAck(UTime),
}

/// Exact pre-auth bytes, for AUTH_SIGNATURE.
#[derive(Default)]
struct Transcript {
    rx: Vec<u8>,
    tx: Vec<u8>,
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
    ExpectServerIdent,
    ExpectClientIdent,
    Ready,
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
            Phase::ExpectServerIdent => "SESSION_CONNECTING",
            Phase::ExpectClientIdent => "SESSION_ACCEPTING",
            Phase::Ready => "READY",
            Phase::Closed => "CLOSED",
        }
    }
}

/// How many AUTH_BAD_METHOD rounds a server tolerates before closing.
const MAX_AUTH_ATTEMPTS: u32 = 8;

/// A msgr2 connection state machine.
pub struct Connection {
    role: Role,
    config: Arc<Config>,
    phase: Phase,
    tx: TxFraming,
    rx: Option<RxFraming>,
    revision: Revision,
    out: Vec<u8>,
    transcript: Option<Transcript>,
    events: VecDeque<Event>,
    /// Client: the peer type we dialled; server: learned from HELLO.
    peer_type: Option<EntityType>,
    /// Client: the exact address we connected to.
    target: Option<EntityAddr>,
    /// Server: the client's socket address (sent back in HELLO).
    peer_socket: Option<SocketAddr>,
    my_addr_seen_by_peer: Option<EntityAddr>,
    auth: Option<(u32, AuthResult)>,
    /// The bytes we sent before authentication completed; the peer's AUTH_SIGNATURE covers them.
    signed_tx: Vec<u8>,
    peer: Option<PeerInfo>,
    global_seq: u64,
    out_seq: u64,
    in_seq: u64,
    pending: VecDeque<Message>,
    deadline: Option<Instant>,
    error: Option<ProtoError>,
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
        config.banner.encode(&mut out);
        let deadline = Some(now + Duration::from_secs(config.ready_timeout_secs));
        Self {
            role,
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
            events: VecDeque::new(),
            peer_type: None,
            target: None,
            peer_socket: None,
            my_addr_seen_by_peer: None,
            auth: None,
            signed_tx: Vec::new(),
            peer: None,
            global_seq,
            out_seq: 0,
            in_seq: 0,
            pending: VecDeque::new(),
            deadline,
            error: None,
            config,
        }
    }

    /// A client connection to `target` (the peer's exact msgr2 address, nonce included), a
    /// peer of type `peer_type`. `global_seq` comes from the messenger's counter.
    pub fn client(
        config: Arc<Config>,
        target: EntityAddr,
        peer_type: EntityType,
        global_seq: u64,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(Role::Client, config, global_seq, now);
        c.target = Some(target);
        c.peer_type = Some(peer_type);
        c
    }

    /// A server connection accepted from `peer_socket`.
    pub fn server(
        config: Arc<Config>,
        peer_socket: SocketAddr,
        global_seq: u64,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(Role::Server, config, global_seq, now);
        c.peer_socket = Some(peer_socket);
        c
    }

    /// Ceph's name for the current state.
    pub fn state(&self) -> &'static str {
        self.phase.name()
    }

    /// Whether messages flow.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// What the handshake established (after [`Event::Ready`]).
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// Moves pending outgoing bytes into `buf` (appending). Returns how many.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        n
    }

    /// Whether there are bytes to send.
    pub fn wants_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Connection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_ready() {
            None
        } else {
            self.deadline
        }
    }

    /// Fails the connection if the handshake deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtoError> {
        self.check_alive()?;
        match self.deadline {
            Some(d) if now >= d && !self.is_ready() => {
                Err(self.fail(ProtoError::HandshakeTimeout(self.state())))
            }
            _ => Ok(()),
        }
    }

    /// The peer closed its side: a typed error naming where it happened.
    pub fn handle_eof(&mut self) -> ProtoError {
        let e = ProtoError::PeerClosed(self.state());
        self.fail(e)
    }

    /// Queues a message; it is sent once the connection is ready. Returns nothing: sequence
    /// numbers are assigned at send time.
    pub fn send_message(&mut self, msg: Message) -> Result<(), ProtoError> {
        self.check_alive()?;
        self.pending.push_back(msg);
        if self.is_ready() {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Sends KEEPALIVE2 with `stamp` (only once ready).
    pub fn send_keepalive(&mut self, stamp: UTime) -> Result<(), ProtoError> {
        self.check_alive()?;
        if !self.is_ready() {
            return Err(ProtoError::UnexpectedFrame {
                tag: Tag::Keepalive2,
                state: self.state(),
            });
        }
        self.send_control(&p::Keepalive2 { timestamp: stamp })
    }

    fn check_alive(&self) -> Result<(), ProtoError> {
        match &self.error {
            Some(e) => Err(ProtoError::Closed(Box::new(e.clone()))),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: ProtoError) -> ProtoError {
        debug!(state = self.state(), error = %e, "connection failed");
        self.phase = Phase::Closed;
        self.error = Some(e.clone());
        e
    }

    /// Consumes received bytes. On error the connection is dead: close the socket.
    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<(), ProtoError> {
        self.check_alive()?;
        while !data.is_empty() {
            let used = match self.step_input(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            data = &data[used..];
        }
        Ok(())
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
        self.revision = Banner::negotiate(&self.config.banner, &peer)?;
        trace!(revision = ?self.revision, "banner exchanged");
        self.tx = TxFraming::Crc(self.revision);
        self.rx = Some(RxFraming::crc(self.revision, self.config.limits));
        let peer_addr = match self.role {
            Role::Client => self.target.unwrap_or(EntityAddr {
                ty: AddrType::Msgr2,
                nonce: 0,
                sock: None,
            }),
            Role::Server => match self.peer_socket {
                Some(s) => EntityAddr::new(AddrType::Msgr2, s, 0),
                None => EntityAddr {
                    ty: AddrType::Msgr2,
                    nonce: 0,
                    sock: None,
                },
            },
        };
        self.phase = Phase::ExpectHello;
        self.send_control(&p::Hello {
            entity_type: self.config.name.ty,
            peer_addr,
        })
    }

    fn send_control<P: ControlPayload>(&mut self, payload: &P) -> Result<(), ProtoError> {
        let bytes = payload.to_bytes();
        let start = self.out.len();
        self.tx
            .frame(P::TAG, &[(&bytes, ALIGN_DEFAULT)], &mut self.out)?;
        if let Some(t) = &mut self.transcript {
            t.tx.extend_from_slice(&self.out[start..]);
        }
        Ok(())
    }

    fn on_frame(&mut self, f: Frame<Vec<u8>>) -> Result<(), ProtoError> {
        let tag = f.tag();
        if tag == Tag::Message {
            return self.on_message(f);
        }
        let ctl = Control::decode(tag, f.segment(0))
            .map_err(|error| ProtoError::Payload { tag, error })?;
        trace!(state = self.state(), %tag, "frame");
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
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
            (Phase::ExpectServerIdent, Control::ServerIdent(s)) => self.on_server_ident(s),
            (Phase::ExpectServerIdent, Control::IdentMissingFeatures(m)) => {
                Err(ProtoError::MissingFeatures {
                    missing: m.features,
                })
            }
            (Phase::ExpectServerIdent, c) if is_session_frame(c.tag()) => {
                Err(ProtoError::SessionUnsupported(c.tag()))
            }
            (Phase::ExpectClientIdent, Control::ClientIdent(c)) => self.on_client_ident(c),
            (Phase::Ready, c) => {
                self.phase = Phase::Ready;
                self.on_ready_control(c)
            }
            _ => Err(unexpected),
        }
    }
}

fn is_session_frame(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Wait
            | Tag::SessionReset
            | Tag::SessionRetry
            | Tag::SessionRetryGlobal
            | Tag::SessionReconnectOk
    )
}

impl Connection {
    fn my_type(&self) -> EntityType {
        self.config.name.ty
    }

    fn peer_type_or_client(&self) -> EntityType {
        self.peer_type.unwrap_or(EntityType::Client)
    }

    fn on_hello(&mut self, h: p::Hello) -> Result<(), ProtoError> {
        match self.role {
            Role::Client => {
                let expected = self.peer_type_or_client();
                if expected != EntityType::Any && h.entity_type != expected {
                    return Err(ProtoError::WrongPeerType {
                        expected,
                        got: h.entity_type,
                    });
                }
                self.peer_type = Some(h.entity_type);
                self.my_addr_seen_by_peer = Some(h.peer_addr);
                let provider = self.config.client_auth.clone().ok_or(ProtoError::NoAuth)?;
                let method = *provider.methods().first().ok_or(ProtoError::NoAuth)?;
                let auth = provider
                    .start(method, h.entity_type)
                    .ok_or(ProtoError::NoAuth)?;
                self.send_auth_request(auth, vec![method])
            }
            Role::Server => {
                self.peer_type = Some(h.entity_type);
                self.my_addr_seen_by_peer = Some(h.peer_addr);
                self.phase = Phase::ExpectAuthRequest { rejected: 0 };
                Ok(())
            }
        }
    }

    fn send_auth_request(
        &mut self,
        mut auth: Box<dyn ClientAuth>,
        tried: Vec<u32>,
    ) -> Result<(), ProtoError> {
        let method = auth.method();
        let preferred_modes =
            self.config
                .modes
                .for_peer(self.my_type(), self.peer_type_or_client(), method);
        if preferred_modes.is_empty() {
            return Err(ProtoError::NoUsableMode { method });
        }
        let auth_payload = auth.request()?;
        self.send_control(&p::AuthRequest {
            method,
            preferred_modes,
            auth_payload,
        })?;
        self.phase = Phase::ExpectAuthReply { auth, tried };
        Ok(())
    }

    fn on_auth_reply(
        &mut self,
        mut auth: Box<dyn ClientAuth>,
        mut tried: Vec<u32>,
        c: Control,
    ) -> Result<(), ProtoError> {
        match c {
            Control::AuthReplyMore(r) => {
                let auth_payload = auth.reply_more(&r.auth_payload)?;
                self.send_control(&p::AuthRequestMore { auth_payload })?;
                self.phase = Phase::ExpectAuthReply { auth, tried };
                Ok(())
            }
            Control::AuthBadMethod(b) => {
                debug!(method = b.method, result = b.result, allowed = ?b.allowed_methods, "auth bad method");
                let provider = self.config.client_auth.clone().ok_or(ProtoError::NoAuth)?;
                let (me, peer) = (self.my_type(), self.peer_type_or_client());
                let next = provider.methods().into_iter().find(|m| {
                    b.allowed_methods.contains(m)
                        && !tried.contains(m)
                        && self
                            .config
                            .modes
                            .for_peer(me, peer, *m)
                            .iter()
                            .any(|x| b.allowed_modes.contains(x))
                });
                let Some(method) = next.and_then(|m| provider.start(m, peer).map(|a| (m, a)))
                else {
                    return Err(ProtoError::AuthRejected {
                        method: b.method,
                        result: b.result,
                        allowed_methods: b.allowed_methods,
                        allowed_modes: b.allowed_modes,
                    });
                };
                tried.push(method.0);
                self.send_auth_request(method.1, tried)
            }
            Control::AuthDone(d) => {
                let offered = self.config.modes.for_peer(
                    self.my_type(),
                    self.peer_type_or_client(),
                    auth.method(),
                );
                if !offered.contains(&d.con_mode) {
                    return Err(ProtoError::BadMode(d.con_mode));
                }
                let result = auth.done(d.global_id, d.con_mode, &d.auth_payload)?;
                let t = self.transcript.take().unwrap_or_default();
                self.signed_tx = t.tx;
                self.switch_mode(d.con_mode, &result.connection_secret)?;
                let sha256 = auth_signature(&result.session_key, &t.rx);
                self.auth = Some((auth.method(), result));
                self.send_control(&p::AuthSignature { sha256 })?;
                self.phase = Phase::ExpectSignature;
                Ok(())
            }
            other => Err(ProtoError::UnexpectedFrame {
                tag: other.tag(),
                state: "AUTH_CONNECTING",
            }),
        }
    }

    fn on_auth_request(&mut self, r: p::AuthRequest, rejected: u32) -> Result<(), ProtoError> {
        let provider = self.config.server_auth.clone().ok_or(ProtoError::NoAuth)?;
        let peer = self.peer_type_or_client();
        if !provider.methods(peer).contains(&r.method) {
            return self.bad_method(r.method, EOPNOTSUPP, rejected);
        }
        let allowed = self.config.modes.for_peer(self.my_type(), peer, r.method);
        let Some(con_mode) = r
            .preferred_modes
            .iter()
            .copied()
            .find(|m| allowed.contains(m))
        else {
            return self.bad_method(r.method, EOPNOTSUPP, rejected);
        };
        let Some(mut auth) = provider.start(r.method, peer) else {
            return self.bad_method(r.method, EOPNOTSUPP, rejected);
        };
        let step = auth.request(con_mode, &r.auth_payload);
        self.on_server_step(step, auth, con_mode, rejected)
    }

    fn bad_method(&mut self, method: u32, result: i32, rejected: u32) -> Result<(), ProtoError> {
        let provider = self.config.server_auth.clone().ok_or(ProtoError::NoAuth)?;
        let peer = self.peer_type_or_client();
        let allowed_methods = provider.methods(peer);
        let allowed_modes = allowed_methods
            .first()
            .map(|m| self.config.modes.for_peer(self.my_type(), peer, *m))
            .unwrap_or_default();
        self.send_control(&p::AuthBadMethod {
            method,
            result,
            allowed_methods: allowed_methods.clone(),
            allowed_modes: allowed_modes.clone(),
        })?;
        if rejected + 1 >= MAX_AUTH_ATTEMPTS {
            return Err(ProtoError::AuthRejected {
                method,
                result,
                allowed_methods,
                allowed_modes,
            });
        }
        self.phase = Phase::ExpectAuthRequest {
            rejected: rejected + 1,
        };
        Ok(())
    }

    fn on_server_step(
        &mut self,
        step: ServerStep,
        auth: Box<dyn ServerAuth>,
        con_mode: u32,
        rejected: u32,
    ) -> Result<(), ProtoError> {
        match step {
            ServerStep::More(auth_payload) => {
                self.send_control(&p::AuthReplyMore { auth_payload })?;
                self.phase = Phase::ExpectAuthRequestMore { auth, con_mode };
                Ok(())
            }
            ServerStep::Done { payload, result } => {
                self.send_control(&p::AuthDone {
                    global_id: result.global_id,
                    con_mode,
                    auth_payload: payload,
                })?;
                let t = self.transcript.take().unwrap_or_default();
                self.signed_tx = t.tx;
                self.switch_mode(con_mode, &result.connection_secret)?;
                let sha256 = auth_signature(&result.session_key, &t.rx);
                self.auth = Some((auth.method(), result));
                self.send_control(&p::AuthSignature { sha256 })?;
                self.phase = Phase::ExpectSignature;
                Ok(())
            }
            ServerStep::Reject(errno) => self.bad_method(auth.method(), errno, rejected),
        }
    }

    fn switch_mode(&mut self, con_mode: u32, secret: &[u8]) -> Result<(), ProtoError> {
        if con_mode == CON_MODE_SECURE {
            let (tx, rx) = crate::framing::secure(
                self.revision,
                secret,
                self.role == Role::Server,
                self.config.limits,
            )?;
            self.tx = tx;
            self.rx = Some(rx);
        }
        Ok(())
    }

    fn session_key(&self) -> &[u8] {
        self.auth.as_ref().map_or(&[], |(_, r)| &r.session_key)
    }

    fn on_signature(&mut self, s: p::AuthSignature) -> Result<(), ProtoError> {
        if !verify_auth_signature(self.session_key(), &self.signed_tx, &s.sha256) {
            return Err(ProtoError::BadSignature);
        }
        self.signed_tx = Vec::new();
        match self.role {
            Role::Client => {
                self.send_client_ident()?;
                self.phase = Phase::ExpectServerIdent;
            }
            Role::Server => self.phase = Phase::ExpectClientIdent,
        }
        Ok(())
    }

    /// Our address vector for CLIENT_IDENT: the configured one, or (for a client that does not
    /// listen) one TYPE_ANY address with the IP the peer saw, port 0 and our nonce.
    fn client_addrs(&self) -> EntityAddrVec {
        if !self.config.my_addrs.0.is_empty() {
            return self.config.my_addrs.clone();
        }
        let ip = self
            .my_addr_seen_by_peer
            .and_then(|a| a.sock)
            .map_or(IpAddr::from([0, 0, 0, 0]), |s| s.ip());
        let nonce = if self.config.nonce != 0 {
            self.config.nonce
        } else {
            (random_u64() as u32).max(1)
        };
        EntityAddrVec(vec![EntityAddr::new(
            AddrType::Any,
            SocketAddr::new(ip, 0),
            nonce,
        )])
    }

    fn send_client_ident(&mut self) -> Result<(), ProtoError> {
        let peer = self.peer_type_or_client();
        let policy = (self.config.policy)(peer);
        let target_addr = self.target.unwrap_or(EntityAddr {
            ty: AddrType::Msgr2,
            nonce: 0,
            sock: None,
        });
        let ident = p::ClientIdent {
            addrs: self.client_addrs(),
            target_addr,
            gid: self.config.gid,
            global_seq: self.global_seq,
            supported_features: self.config.supported_features,
            required_features: policy.features_required | FEATURE_MSG_ADDR2,
            flags: if policy.lossy { IDENT_FLAG_LOSSY } else { 0 },
            client_cookie: random_u64().max(1),
        };
        self.send_control(&ident)
    }

    fn peer_info(&self, gid: i64, addrs: EntityAddrVec, features: u64, lossy: bool) -> PeerInfo {
        let (method, result) = self.auth.clone().unwrap_or_default();
        PeerInfo {
            entity_type: self.peer_type_or_client(),
            gid,
            addrs,
            name: result.peer_name,
            features,
            revision: self.revision,
            con_mode: result.con_mode,
            auth_method: method,
            global_id: result.global_id,
            lossy,
            my_addr_seen_by_peer: self.my_addr_seen_by_peer,
        }
    }

    fn on_server_ident(&mut self, s: p::ServerIdent) -> Result<(), ProtoError> {
        let target = self.target.unwrap_or(EntityAddr {
            ty: AddrType::Msgr2,
            nonce: 0,
            sock: None,
        });
        if !s.addrs.contains(&target) {
            return Err(ProtoError::ServerAddrMismatch {
                target: target.to_string(),
                addrs: s.addrs.to_string(),
            });
        }
        let missing = s.required_features & !self.config.supported_features;
        if missing != 0 {
            return Err(ProtoError::MissingFeatures { missing });
        }
        let policy = (self.config.policy)(self.peer_type_or_client());
        let missing = (policy.features_required | FEATURE_MSG_ADDR2) & !s.supported_features;
        if missing != 0 {
            return Err(ProtoError::MissingFeatures { missing });
        }
        let info = self.peer_info(
            s.gid,
            s.addrs,
            s.supported_features & self.config.supported_features,
            s.flags & IDENT_FLAG_LOSSY != 0,
        );
        self.become_ready(info)
    }

    fn on_client_ident(&mut self, c: p::ClientIdent) -> Result<(), ProtoError> {
        let ours = &self.config.my_addrs;
        if !ours.0.is_empty() && !ours.contains(&c.target_addr) {
            return Err(ProtoError::NotUs {
                target: c.target_addr.to_string(),
                ours: ours.to_string(),
            });
        }
        let policy = (self.config.policy)(self.peer_type_or_client());
        let required = policy.features_required | FEATURE_MSG_ADDR2;
        let missing = required & !c.supported_features;
        if missing != 0 {
            self.send_control(&p::IdentMissingFeatures { features: missing })?;
            return Err(ProtoError::MissingFeatures { missing });
        }
        let ident = p::ServerIdent {
            addrs: self.config.my_addrs.clone(),
            gid: self.config.gid,
            global_seq: self.global_seq,
            supported_features: self.config.supported_features,
            required_features: required,
            flags: if policy.lossy { IDENT_FLAG_LOSSY } else { 0 },
            server_cookie: if policy.lossy { 0 } else { random_u64().max(1) },
        };
        self.send_control(&ident)?;
        let info = self.peer_info(
            c.gid,
            c.addrs,
            c.supported_features & self.config.supported_features,
            policy.lossy,
        );
        self.become_ready(info)
    }

    fn become_ready(&mut self, info: PeerInfo) -> Result<(), ProtoError> {
        debug!(peer = ?info.entity_type, mode = info.con_mode, revision = ?info.revision, "ready");
        self.peer = Some(info.clone());
        self.phase = Phase::Ready;
        self.events.push_back(Event::Ready(info));
        self.flush_pending()
    }

    fn flush_pending(&mut self) -> Result<(), ProtoError> {
        while let Some(mut m) = self.pending.pop_front() {
            self.out_seq += 1;
            m.header.seq = self.out_seq;
            m.header.ack_seq = self.in_seq;
            let header = m.header.to_bytes();
            self.tx.frame(
                Tag::Message,
                &[
                    (&header, ALIGN_DEFAULT),
                    (&m.front, ALIGN_DEFAULT),
                    (&m.middle, ALIGN_DEFAULT),
                    (&m.data, ALIGN_PAGE),
                ],
                &mut self.out,
            )?;
        }
        Ok(())
    }

    fn on_message(&mut self, f: Frame<Vec<u8>>) -> Result<(), ProtoError> {
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
        if header.seq <= self.in_seq {
            debug!(
                seq = header.seq,
                in_seq = self.in_seq,
                "dropping duplicate message"
            );
            return Ok(());
        }
        self.in_seq = header.seq;
        let [_, front, middle, data] = f.segments;
        self.events.push_back(Event::Message(Message {
            header,
            front,
            middle,
            data,
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
            Control::Ack(_) => Ok(()),
            other => Err(ProtoError::UnexpectedFrame {
                tag: other.tag(),
                state: "READY",
            }),
        }
    }
}
