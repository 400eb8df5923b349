//! The authentication phase (HELLO, AUTH_REQUEST/REPLY rounds, AUTH_BAD_METHOD retry,
//! AUTH_DONE and the crc/secure mode switch), both roles.

use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{self as p, Control, CON_MODE_SECURE};
use msgr2_crypto::auth::{ClientAuth, ServerAuth, ServerStep, EOPNOTSUPP};
use msgr2_crypto::signature::auth_signature;
use tracing::debug;

use super::{Connection, Phase, Role, MAX_AUTH_ATTEMPTS};
use crate::error::ProtoError;

impl Connection {
    pub(super) fn my_type(&self) -> EntityType {
        self.config.name.ty
    }

    pub(super) fn peer_type_or_client(&self) -> EntityType {
        self.peer_type.unwrap_or(EntityType::Client)
    }

    pub(super) fn on_hello(&mut self, h: p::Hello) -> Result<(), ProtoError> {
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
                self.policy = self.config.policy(h.entity_type);
                self.session.lossy = self.policy.lossy;
                self.my_addr_seen_by_peer = Some(h.peer_addr);
                self.phase = Phase::ExpectAuthRequest { rejected: 0 };
                Ok(())
            }
        }
    }

    pub(super) fn send_auth_request(
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

    pub(super) fn on_auth_reply(
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
                // A client is `client.<global_id>` from here on (Ceph's MonClient renames its
                // messenger), in this connection's CLIENT_IDENT and every later one.
                if self.my_type() == EntityType::Client
                    && self.peer_type_or_client() == EntityType::Mon
                    && result.global_id != 0
                {
                    self.config
                        .gid
                        .set(i64::try_from(result.global_id).unwrap_or(-1));
                }
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

    pub(super) fn on_auth_request(
        &mut self,
        r: p::AuthRequest,
        rejected: u32,
    ) -> Result<(), ProtoError> {
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

    pub(super) fn bad_method(
        &mut self,
        method: u32,
        result: i32,
        rejected: u32,
    ) -> Result<(), ProtoError> {
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

    pub(super) fn on_server_step(
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

    pub(super) fn switch_mode(&mut self, con_mode: u32, secret: &[u8]) -> Result<(), ProtoError> {
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

    pub(super) fn session_key(&self) -> &[u8] {
        self.auth.as_ref().map_or(&[], |(_, r)| &r.session_key)
    }
}
