//! The session phase of the handshake: CLIENT_IDENT / SERVER_IDENT for new sessions,
//! SESSION_RECONNECT and its answers for resumed ones, WAIT for races, and the server's
//! lookup of an existing session with the same peer.

use std::cmp::Ordering;
use std::net::{IpAddr, SocketAddr};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::payload::{self as p, Control, IDENT_FLAG_LOSSY};
use msgr2_crypto::signature::verify_auth_signature;
use tracing::debug;

use super::{Connection, Event, PeerInfo, Pending, Phase, Role};
use crate::config::FEATURE_MSG_ADDR2;
use crate::error::ProtoError;
use crate::session::{
    client_reaction, decide_client_ident, decide_reconnect, race_order, ClientAction,
    ExistingState, ExistingView, IdentDecision, IncomingIdent, IncomingReconnect,
    ReconnectDecision, Session, SessionPeer, SessionReply,
};

/// A server connection's question to the embedder: which connection, if any, holds the
/// session with this peer? (Ceph's `lookup_conn(peer_addrs)`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The peer's addresses from its CLIENT_IDENT or SESSION_RECONNECT.
    pub peer_addrs: EntityAddrVec,
    /// It is a SESSION_RECONNECT (otherwise a CLIENT_IDENT).
    pub reconnect: bool,
}

impl Lookup {
    /// Whether `c` is a connection the embedder should offer: it holds a session
    /// ([`Connection::holds_session`]) with a peer whose known addresses overlap
    /// `peer_addrs`.
    pub fn matches(&self, c: &Connection) -> bool {
        c.holds_session()
            && c.peer_addrs()
                .is_some_and(|v| v.0.iter().any(|a| self.peer_addrs.contains(a)))
    }
}

/// What [`Connection::resolve_lookup`] did to the existing connection the embedder offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingFate {
    /// No existing connection was offered.
    None,
    /// Left as it was (possibly nudged to send a keepalive).
    Untouched,
    /// Its session now lives in the resolving connection; it is closed (without a reset):
    /// drop it and close its socket, and route the peer's traffic to the new connection.
    TakenOver,
    /// It was a lossy connection and has been stopped; its [`Event::Reset`] is queued on it.
    /// Drain its events, then drop it.
    Stopped,
}

impl Connection {
    /// A snapshot of this connection's session for a server deciding about a new connection
    /// from the same peer.
    pub fn existing_view(&self) -> ExistingView {
        let state = match self.phase {
            Phase::Closed => ExistingState::Closed,
            Phase::Ready => ExistingState::Ready,
            Phase::Standby => ExistingState::Standby,
            _ => ExistingState::Connecting,
        };
        self.session
            .view(state, self.policy.server, self.global_seq)
    }

    pub(super) fn on_signature(&mut self, s: p::AuthSignature) -> Result<(), ProtoError> {
        if !verify_auth_signature(self.session_key(), &self.signed_tx, &s.sha256) {
            return Err(ProtoError::BadSignature);
        }
        self.signed_tx = Vec::new();
        match (self.role, self.negotiate_compression) {
            (Role::Client, true) => self.send_compression_request(),
            (Role::Client, false) => self.start_session_connect(),
            (Role::Server, true) => {
                self.phase = Phase::ExpectCompressionRequest;
                Ok(())
            }
            (Role::Server, false) => {
                self.phase = Phase::ExpectClientIdent;
                Ok(())
            }
        }
    }

    /// Client: a session with a server cookie is resumed, anything else starts anew.
    pub(super) fn start_session_connect(&mut self) -> Result<(), ProtoError> {
        if self.session.server_cookie == 0 {
            self.send_client_ident()?;
            self.phase = Phase::ExpectServerIdent;
        } else {
            self.send_reconnect()?;
            self.phase = Phase::ExpectReconnectReply;
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
        EntityAddrVec(vec![EntityAddr::new(
            AddrType::Any,
            SocketAddr::new(ip, 0),
            self.local_nonce,
        )])
    }

    fn send_client_ident(&mut self) -> Result<(), ProtoError> {
        if !self.session.lossy && self.session.client_cookie == 0 {
            self.session.client_cookie = self.config.random.next_u64().max(1);
        }
        let target_addr = self.target.unwrap_or(EntityAddr {
            ty: AddrType::Msgr2,
            nonce: 0,
            sock: None,
        });
        let ident = p::ClientIdent {
            addrs: self.client_addrs(),
            target_addr,
            gid: self.config.gid.get(),
            global_seq: self.global_seq,
            supported_features: self.config.supported_features,
            required_features: self.policy.features_required | FEATURE_MSG_ADDR2,
            flags: if self.session.lossy {
                IDENT_FLAG_LOSSY
            } else {
                0
            },
            client_cookie: self.session.client_cookie,
        };
        self.send_control(&ident)
    }

    fn send_reconnect(&mut self) -> Result<(), ProtoError> {
        let r = p::SessionReconnect {
            addrs: self.client_addrs(),
            client_cookie: self.session.client_cookie,
            server_cookie: self.session.server_cookie,
            global_seq: self.global_seq,
            connect_seq: self.session.connect_seq,
            msg_seq: self.session.in_seq,
        };
        debug!(
            gs = r.global_seq,
            cs = r.connect_seq,
            ms = r.msg_seq,
            "sending reconnect"
        );
        self.send_control(&r)
    }

    fn peer_info(&self, reconnected: bool) -> PeerInfo {
        let (method, result) = self.auth.clone().unwrap_or_default();
        let (gid, addrs, features) = self
            .session
            .peer
            .as_ref()
            .map_or((-1, EntityAddrVec::default(), 0), |p| {
                (p.gid, p.addrs.clone(), p.features)
            });
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
            lossy: self.session.lossy,
            my_addr_seen_by_peer: self.my_addr_seen_by_peer,
            reconnected,
            compression: self.compression.map(|c| c.method),
        }
    }

    pub(super) fn on_server_ident(&mut self, s: p::ServerIdent) -> Result<(), ProtoError> {
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
        let missing = (self.policy.features_required | FEATURE_MSG_ADDR2) & !s.supported_features;
        if missing != 0 {
            return Err(ProtoError::MissingFeatures { missing });
        }
        self.session.server_cookie = s.server_cookie;
        self.session.peer_global_seq = s.global_seq;
        self.session.lossy = s.flags & IDENT_FLAG_LOSSY != 0;
        self.session.peer = Some(SessionPeer {
            entity_type: self.peer_type_or_client(),
            gid: s.gid,
            addrs: s.addrs,
            features: s.supported_features & self.config.supported_features,
        });
        if self.session.lossy {
            self.session.sent.clear();
        }
        let info = self.peer_info(false);
        self.become_ready(info)
    }

    pub(super) fn on_reconnect_reply(
        &mut self,
        c: Control,
        unexpected: ProtoError,
    ) -> Result<(), ProtoError> {
        let reply = match c {
            Control::SessionReconnectOk(o) => SessionReply::ReconnectOk(o.msg_seq),
            Control::SessionRetry(r) => SessionReply::Retry(r.connect_seq),
            Control::SessionRetryGlobal(r) => SessionReply::RetryGlobal(r.global_seq),
            Control::SessionReset(r) => SessionReply::Reset { full: r.full },
            // WAIT never gets here: on_frame answers it in this phase and in ExpectServerIdent.
            _ => return Err(unexpected),
        };
        debug!(?reply, "reconnect reply");
        match client_reaction(reply, self.session.connect_seq, self.global_seq) {
            ClientAction::Resume { discard_up_to } => {
                self.session.discard_requeued_up_to(discard_up_to);
                let info = self.peer_info(true);
                self.become_ready(info)
            }
            ClientAction::Resend {
                connect_seq,
                global_seq,
            } => {
                self.session.connect_seq = connect_seq;
                if global_seq != self.global_seq {
                    // get_global_seq(x): above both the messenger's counter and x
                    self.global_seq = self.config.global_seq.next_after(global_seq - 1);
                }
                self.send_reconnect()?;
                self.phase = Phase::ExpectReconnectReply;
                Ok(())
            }
            ClientAction::NewSession { full } => {
                if full {
                    self.discard_session(true, true);
                } else {
                    self.session.server_cookie = 0;
                    self.session.connect_seq = 0;
                    self.session.in_seq = 0;
                }
                self.send_client_ident()?;
                self.phase = Phase::ExpectServerIdent;
                Ok(())
            }
            ClientAction::Wait => Err(ProtoError::Wait),
        }
    }

    pub(super) fn on_client_ident(&mut self, c: p::ClientIdent) -> Result<(), ProtoError> {
        if c.addrs
            .0
            .first()
            .is_none_or(|a| a.ty == AddrType::None && a.sock.is_none())
        {
            return Err(ProtoError::BadPeerAddrs(c.addrs.to_string()));
        }
        let ours = &self.config.my_addrs;
        if !ours.0.is_empty() && !ours.contains(&c.target_addr) {
            return Err(ProtoError::NotUs {
                target: c.target_addr.to_string(),
                ours: ours.to_string(),
            });
        }
        let required = self.policy.features_required | FEATURE_MSG_ADDR2;
        let missing = required & !c.supported_features;
        if missing != 0 {
            self.send_control(&p::IdentMissingFeatures { features: missing })?;
            return Err(ProtoError::MissingFeatures { missing });
        }
        self.await_lookup(Pending::Ident(c))
    }

    pub(super) fn on_reconnect(&mut self, r: p::SessionReconnect) -> Result<(), ProtoError> {
        if r.addrs.0.is_empty() {
            return Err(ProtoError::BadPeerAddrs(r.addrs.to_string()));
        }
        self.await_lookup(Pending::Reconnect(r))
    }

    fn await_lookup(&mut self, pending: Pending) -> Result<(), ProtoError> {
        if self.config.session_lookup {
            let (peer_addrs, reconnect) = match &pending {
                Pending::Ident(c) => (c.addrs.clone(), false),
                Pending::Reconnect(r) => (r.addrs.clone(), true),
            };
            self.phase = Phase::AwaitLookup(Box::new(pending));
            self.events.push_back(Event::Lookup(Lookup {
                peer_addrs,
                reconnect,
            }));
            Ok(())
        } else {
            self.phase = Phase::ExpectClientIdent;
            self.resolve(pending, None).map(|_| ())
        }
    }

    /// Answers [`Event::Lookup`]: `existing` is the connection holding this peer's session
    /// (see [`Lookup::matches`]), or `None`. Runs Ceph's decision table
    /// ([`decide_client_ident`] / [`decide_reconnect`]), replies to the peer, and may take
    /// the existing session over or stop the existing connection (see the returned
    /// [`ExistingFate`]). Then processes input that arrived meanwhile; a failure there shows
    /// in [`Connection::is_faulted`] and this connection's events, not in the result, so the
    /// fate of `existing` is never lost. An error means this connection is finished (e.g. a
    /// stale duplicate): close its socket.
    pub fn resolve_lookup(
        &mut self,
        existing: Option<&mut Connection>,
    ) -> Result<ExistingFate, ProtoError> {
        self.check_alive()?;
        if !matches!(self.phase, Phase::AwaitLookup(_)) {
            return Err(ProtoError::NoLookupPending(self.state()));
        }
        let Phase::AwaitLookup(pending) =
            std::mem::replace(&mut self.phase, Phase::ExpectClientIdent)
        else {
            return Err(ProtoError::NoLookupPending("SESSION_ACCEPTING"));
        };
        let fate = match self.resolve(*pending, existing) {
            Ok(f) => f,
            Err(e) => return Err(self.fault(e)),
        };
        if let Err(e) = self.handle_input(&[]) {
            debug!(error = %e, "input kept during the lookup failed");
        }
        Ok(fate)
    }

    fn race(&self, peer_addrs: &EntityAddrVec, incoming: (u64, u64), e: &ExistingView) -> Ordering {
        race_order(
            peer_addrs.msgr2(),
            self.config.my_addrs.msgr2(),
            incoming,
            (e.global_seq, e.client_cookie),
        )
    }

    fn resolve(
        &mut self,
        pending: Pending,
        existing: Option<&mut Connection>,
    ) -> Result<ExistingFate, ProtoError> {
        let existing = existing.filter(|e| !e.is_closed());
        match pending {
            Pending::Ident(c) => self.resolve_ident(c, existing),
            Pending::Reconnect(r) => self.resolve_reconnect(r, existing),
        }
    }

    fn resolve_ident(
        &mut self,
        c: p::ClientIdent,
        existing: Option<&mut Connection>,
    ) -> Result<ExistingFate, ProtoError> {
        let Some(e) = existing else {
            self.session = Session::new(self.policy.lossy);
            self.adopt_ident(&c);
            self.send_server_ident()?;
            return Ok(ExistingFate::None);
        };
        let view = e.existing_view();
        let incoming = IncomingIdent {
            client_cookie: c.client_cookie,
            global_seq: c.global_seq,
        };
        let race = self.race(&c.addrs, (c.global_seq, c.client_cookie), &view);
        let decision = decide_client_ident(&view, &incoming, race, self.policy.resetcheck);
        debug!(?decision, ?view, "client ident with an existing session");
        match decision {
            IdentDecision::NewSession => {
                self.session = Session::new(self.policy.lossy);
                self.adopt_ident(&c);
                self.send_server_ident()?;
                Ok(ExistingFate::Untouched)
            }
            IdentDecision::WaitReplacing => {
                self.send_control(&p::Wait {})?;
                Ok(ExistingFate::Untouched)
            }
            IdentDecision::CloseStale => Err(ProtoError::StaleConnection {
                global_seq: c.global_seq,
                existing: view.peer_global_seq,
            }),
            IdentDecision::ReplaceLossy => {
                e.stop_replaced();
                self.session = Session::new(self.policy.lossy);
                self.adopt_ident(&c);
                self.send_server_ident()?;
                Ok(ExistingFate::Stopped)
            }
            IdentDecision::RaceLose => {
                // make sure the winning connection is alive (ceph/ceph#25754, #26668)
                if e.keepalive.is_none() {
                    e.keepalive = Some(e.stamp());
                }
                self.send_control(&p::Wait {})?;
                Ok(ExistingFate::Untouched)
            }
            d => {
                self.session = e.take_session();
                if let IdentDecision::PeerRestarted { reset: true } = d {
                    self.discard_session(true, true);
                }
                self.session.announced = true;
                self.adopt_ident(&c);
                self.send_server_ident()?;
                Ok(ExistingFate::TakenOver)
            }
        }
    }

    fn adopt_ident(&mut self, c: &p::ClientIdent) {
        self.session.client_cookie = c.client_cookie;
        self.session.peer_global_seq = c.global_seq;
        self.session.peer = Some(SessionPeer {
            entity_type: self.peer_type_or_client(),
            gid: c.gid,
            addrs: c.addrs.clone(),
            features: c.supported_features & self.config.supported_features,
        });
    }

    fn resolve_reconnect(
        &mut self,
        r: p::SessionReconnect,
        existing: Option<&mut Connection>,
    ) -> Result<ExistingFate, ProtoError> {
        let view = existing.as_ref().map(|e| e.existing_view());
        let incoming = IncomingReconnect {
            client_cookie: r.client_cookie,
            global_seq: r.global_seq,
            connect_seq: r.connect_seq,
        };
        let race = view.map_or(Ordering::Equal, |v| {
            self.race(&r.addrs, (r.global_seq, r.client_cookie), &v)
        });
        let decision = decide_reconnect(view.as_ref(), &incoming, race, self.policy.resetcheck);
        debug!(?decision, ?view, "reconnect");
        let fate = if view.is_some() {
            ExistingFate::Untouched
        } else {
            ExistingFate::None
        };
        match (decision, existing) {
            (ReconnectDecision::Reset { full }, _) => {
                self.send_control(&p::SessionReset { full })?;
                Ok(fate)
            }
            (ReconnectDecision::RetryGlobal(global_seq), _) => {
                self.send_control(&p::SessionRetryGlobal { global_seq })?;
                Ok(fate)
            }
            (ReconnectDecision::Retry(connect_seq), _) => {
                self.send_control(&p::SessionRetry { connect_seq })?;
                Ok(fate)
            }
            (ReconnectDecision::Wait, _) => {
                self.send_control(&p::Wait {})?;
                Ok(fate)
            }
            (ReconnectDecision::Accept { .. }, Some(e)) => {
                self.session = e.take_session();
                self.session.connect_seq = r.connect_seq;
                self.session.message_seq = r.msg_seq;
                self.session.peer_global_seq = r.global_seq;
                let peer_type = self.peer_type_or_client();
                match &mut self.session.peer {
                    Some(p) => p.addrs = r.addrs.clone(),
                    None => {
                        self.session.peer = Some(SessionPeer {
                            entity_type: peer_type,
                            gid: -1,
                            addrs: r.addrs.clone(),
                            features: self.config.supported_features,
                        })
                    }
                }
                self.send_reconnect_ok()?;
                Ok(ExistingFate::TakenOver)
            }
            (ReconnectDecision::Accept { .. }, None) => {
                self.send_control(&p::SessionReset { full: true })?;
                Ok(ExistingFate::None)
            }
        }
    }

    /// Stops a lossy connection replaced by a new one from the same peer.
    fn stop_replaced(&mut self) {
        self.discard_session(true, false);
        self.phase = Phase::Closed;
        if self.error.is_none() {
            self.error = Some(ProtoError::Replaced);
        }
    }

    fn send_server_ident(&mut self) -> Result<(), ProtoError> {
        self.session.discard_requeued_up_to(0);
        self.session.in_seq = 0;
        self.session.ack_left = 0;
        self.session.lossy = self.policy.lossy;
        self.session.server_cookie = if self.policy.lossy {
            0
        } else {
            self.config.random.next_u64().max(1)
        };
        // a fresh value: newer than any connection we dialled before (stale detection)
        self.global_seq = self.config.global_seq.next();
        let ident = p::ServerIdent {
            addrs: self.config.my_addrs.clone(),
            gid: self.config.gid.get(),
            global_seq: self.global_seq,
            supported_features: self.config.supported_features,
            required_features: self.policy.features_required | FEATURE_MSG_ADDR2,
            flags: if self.policy.lossy {
                IDENT_FLAG_LOSSY
            } else {
                0
            },
            server_cookie: self.session.server_cookie,
        };
        self.send_control(&ident)?;
        let info = self.peer_info(false);
        self.become_ready(info)
    }

    fn send_reconnect_ok(&mut self) -> Result<(), ProtoError> {
        let ms = self.session.message_seq;
        self.session.discard_requeued_up_to(ms);
        let msg_seq = self.session.in_seq;
        self.send_control(&p::SessionReconnectOk { msg_seq })?;
        let info = self.peer_info(true);
        self.become_ready(info)
    }
}
