//! A daemon's (or a long-lived client's) cephx identity in a real cluster: one session with a
//! real monitor over which it fetches the rotating service secrets (`CEPHX_GET_ROTATING_KEY`),
//! renews its AUTH (mon) ticket (`CEPHX_GET_AUTH_SESSION_KEY` with the old ticket, proven over
//! the login's server challenge) and its service tickets (`CEPHX_GET_PRINCIPAL_SESSION_KEY`,
//! authorized by the current AUTH ticket), all carried in `MAuth` and answered in
//! `MAuthReply`.
//!
//! The sans-IO pieces live in `msgr2_crypto::cephx` (request builders, reply parsers, the
//! [`RotatingKeyring`]); this module does the I/O and owns the clock: [`MonAuthSession::tick`]
//! takes `now` from its caller, [`MonAuthSession::spawn_renewer`] reads the wall clock on a
//! thread of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::encoding::DecodeError;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::messages::{MAuth, MAuthReply, MessageFront, MSG_AUTH_REPLY};
use msgr2_codec::payload::AUTH_CEPHX;
use msgr2_crypto::auth::AuthError;
use msgr2_crypto::cephx::{
    build_auth_renewal_request, build_rotating_request, build_ticket_renewal_request,
    handle_auth_renewal_reply, handle_ticket_renewal_reply, parse_rotating_reply, utime_of,
    AuthRenewal, AuthRenewalError, CephxClientProvider, RotatingKeyring, TicketStore,
};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use thiserror::Error;

use crate::error::EngineError;
use crate::{ConnHandle, Dispatcher, Messenger, MessengerBuilder};
use msgr2_proto::{Message, PeerInfo};

/// Why the monitor session failed.
#[derive(Debug, Error)]
pub enum MonAuthError {
    /// The keyring has no usable key for the entity.
    #[error("keyring: {0}")]
    Key(#[source] AuthError),
    /// The engine refused (start, connect, send).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The monitor connection failed or was reset.
    #[error("monitor connection failed: {0}")]
    Connection(crate::ConnError),
    /// The session's event queue was poisoned (a thread panicked holding it).
    #[error("monitor session: event queue poisoned")]
    QueuePoisoned,
    /// The messenger stopped under the session.
    #[error("monitor session: messenger stopped")]
    MessengerStopped,
    /// Nothing arrived within the timeout.
    #[error("timed out after {0:?} waiting for the monitor")]
    Timeout(Duration),
    /// The monitor answered the MAuth with an error.
    #[error("monitor refused the request: {result} {msg}")]
    Refused {
        /// Negative errno.
        result: i32,
        /// The monitor's status text.
        msg: String,
    },
    /// The MAuthReply front did not decode.
    #[error("malformed MAuthReply: {0}")]
    Decode(#[from] DecodeError),
    /// The cephx reply did not verify or decode.
    #[error("cephx reply: {0}")]
    Auth(#[from] AuthError),
    /// The AUTH ticket could not be renewed (no login state, or a bad reply).
    #[error(transparent)]
    AuthRenewal(#[from] AuthRenewalError),
}

enum Ev {
    Ready,
    Reply(Message),
    Failed(crate::ConnError),
}

struct Fwd(Sender<Ev>);

impl Dispatcher for Fwd {
    fn on_message(&mut self, _conn: &ConnHandle, msg: Message) {
        if msg.header.msg_type == MSG_AUTH_REPLY {
            let _ = self.0.send(Ev::Reply(msg));
        }
    }
    fn on_connect(&mut self, _conn: &ConnHandle, _peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready);
    }
    fn on_reset(&mut self, _conn: &ConnHandle, error: &crate::ConnError) {
        let _ = self.0.send(Ev::Failed(error.clone()));
    }
}

/// What one [`MonAuthSession::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// The AUTH ticket's renewal, if it was due: its new expiry and the services whose
    /// tickets came with it.
    pub auth: Option<AuthRenewal>,
    /// Secret ids now held, if the rotating secrets were refreshed.
    pub rotated: Option<Vec<u64>>,
    /// Services (`CEPH_ENTITY_TYPE_*`) whose tickets were renewed with
    /// `CEPHX_GET_PRINCIPAL_SESSION_KEY` (under the AUTH ticket then current).
    pub renewed: Vec<u32>,
}

/// A cephx session with a real monitor, kept for renewals. Its [`TicketStore`] holds the
/// tickets the login and renewals fetched (share it with a client provider to authorize
/// connections to OSDs); its [`RotatingKeyring`], when asked for, the rotating secrets of the
/// entity's own service.
pub struct MonAuthSession {
    messenger: Messenger,
    conn: ConnHandle,
    events: Mutex<Receiver<Ev>>,
    store: TicketStore,
    key: CryptoKey,
    want_keys: u32,
    rotating: Option<RotatingKeyring>,
    nonce: AtomicU64,
    timeout: Duration,
}

impl std::fmt::Debug for MonAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonAuthSession")
            .field("want_keys", &format_args!("{:#x}", self.want_keys))
            .field("rotating", &self.rotating)
            .finish()
    }
}

impl MonAuthSession {
    /// Logs in to the monitor at `mons` as `name` with its key from `keyring`, asking for the
    /// service tickets in `want_keys` (a `CEPH_ENTITY_TYPE_*` mask). With `rotating`, fetches
    /// that keyring's service secrets before returning (the entity must be a daemon of that
    /// service, e.g. `osd.N` for [`EntityType::Osd`]). `builder` configures the messenger
    /// (cores, modes); its auth provider is replaced.
    pub fn connect(
        builder: MessengerBuilder,
        name: EntityName,
        keyring: &Keyring,
        mons: &EntityAddrVec,
        want_keys: u32,
        rotating: Option<RotatingKeyring>,
        timeout: Duration,
    ) -> Result<Self, MonAuthError> {
        let store = TicketStore::new();
        let key = provider_key(keyring, &name)?;
        let provider = CephxClientProvider::from_keyring(keyring, name, store.clone())
            .map_err(MonAuthError::Key)?
            .with_want_keys(want_keys | EntityType::Auth as u32);
        let (tx, rx) = channel();
        let messenger = builder
            .client_auth(Arc::new(provider))
            .dispatcher(move |_| Box::new(Fwd(tx.clone())))
            .start()?;
        let conn = messenger.connect(mons, EntityType::Mon)?;
        let s = Self {
            messenger,
            conn,
            events: Mutex::new(rx),
            store,
            key,
            want_keys,
            rotating,
            nonce: AtomicU64::new(0),
            timeout,
        };
        s.wait(|e| matches!(e, Ev::Ready).then_some(()))?;
        if s.rotating.is_some() {
            s.fetch_rotating()?;
        }
        Ok(s)
    }

    /// The tickets (shared; clones see renewals).
    pub fn store(&self) -> &TicketStore {
        &self.store
    }

    /// The rotating keyring, if this session keeps one.
    pub fn rotating(&self) -> Option<&RotatingKeyring> {
        self.rotating.as_ref()
    }

    fn wait<T>(&self, mut f: impl FnMut(Ev) -> Option<T>) -> Result<T, MonAuthError> {
        let rx = self
            .events
            .lock()
            .map_err(|_| MonAuthError::QueuePoisoned)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ev::Failed(e)) => return Err(MonAuthError::Connection(e)),
                Ok(ev) => {
                    if let Some(v) = f(ev) {
                        return Ok(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(MonAuthError::Timeout(self.timeout)),
                Err(RecvTimeoutError::Disconnected) => return Err(MonAuthError::MessengerStopped),
            }
        }
    }

    /// Sends one cephx request in an MAuth and returns the reply's `result_bl`.
    fn call(&self, payload: Vec<u8>) -> Result<Vec<u8>, MonAuthError> {
        let m = MAuth {
            protocol: AUTH_CEPHX,
            auth_payload: payload,
            ..MAuth::default()
        };
        let mut front = Vec::new();
        m.encode_front(&mut front);
        self.conn.send(Message {
            header: MAuth::header(0),
            front,
            ..Message::default()
        })?;
        let msg = self.wait(|e| match e {
            Ev::Reply(m) => Some(m),
            _ => None,
        })?;
        let r = MAuthReply::decode_front(&msg.front, msg.header.version)?;
        if r.result != 0 {
            return Err(MonAuthError::Refused {
                result: r.result,
                msg: r.result_msg,
            });
        }
        Ok(r.result_bl)
    }

    /// Fetches the rotating secrets now; returns the secret ids held.
    pub fn fetch_rotating(&self) -> Result<Vec<u64>, MonAuthError> {
        let Some(k) = &self.rotating else {
            return Ok(Vec::new());
        };
        let bl = self.call(build_rotating_request())?;
        let secrets = parse_rotating_reply(&self.key, &bl)?;
        k.install(secrets);
        Ok(k.secret_ids())
    }

    /// Renews the service tickets in `keys` now; returns the services renewed.
    pub fn renew_tickets(&self, keys: u32, now: SystemTime) -> Result<Vec<u32>, MonAuthError> {
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed) ^ now_nanos(now);
        let req = build_ticket_renewal_request(&self.store, keys, nonce)?;
        let bl = self.call(req)?;
        Ok(handle_ticket_renewal_reply(&self.store, &bl, now)?)
    }

    /// Renews the AUTH ticket now (`CEPHX_GET_AUTH_SESSION_KEY` over this session, with the
    /// current AUTH ticket as `old_ticket`), also asking for the services in `keys`. The new
    /// AUTH ticket and session key replace the old ones in the [`TicketStore`]: later
    /// service-ticket renewals present it, and their replies open with its session key.
    pub fn renew_auth(&self, keys: u32, now: SystemTime) -> Result<AuthRenewal, MonAuthError> {
        let req = build_auth_renewal_request(&self.key, &self.store, keys)?;
        let bl = self.call(req)?;
        Ok(handle_auth_renewal_reply(&self.key, &self.store, &bl, now)?)
    }

    /// Services of `want_keys` (AUTH aside) whose tickets are missing or past their renewal
    /// point at `now`.
    fn services_due(&self, now: SystemTime) -> u32 {
        let mut due = 0u32;
        for bit in 0..8 {
            let ty = 1u32 << bit;
            if self.want_keys & ty == 0 || ty == EntityType::Auth as u32 {
                continue;
            }
            let Some(service) = EntityType::from_u32(ty) else {
                continue;
            };
            if self
                .store
                .get_even_expired(service)
                .is_none_or(|t| t.needs_renewal(now))
            {
                due |= ty;
            }
        }
        due
    }

    /// Renews what is due at `now`, in Ceph's order: the AUTH ticket past three quarters of
    /// its validity (asking for the services also due, as Ceph's `need` does), the rotating
    /// secrets when the current one is within `margin` of expiry (or fewer than three are
    /// held), and the service tickets of `want_keys` still past their renewal point (Ceph's:
    /// three quarters of the validity).
    pub fn tick(&self, now: SystemTime, margin: Duration) -> Result<TickOutcome, MonAuthError> {
        let mut out = TickOutcome::default();
        if self
            .store
            .get_even_expired(EntityType::Auth)
            .is_some_and(|t| t.needs_renewal(now))
        {
            out.auth = Some(self.renew_auth(self.services_due(now), now)?);
        }
        if let Some(k) = &self.rotating {
            if k.need_new_secrets(utime_of(now + margin)) {
                out.rotated = Some(self.fetch_rotating()?);
            }
        }
        let due = self.services_due(now);
        if due != 0 {
            out.renewed = self.renew_tickets(due, now)?;
        }
        Ok(out)
    }

    /// Calls [`MonAuthSession::tick`] every `period` on a thread of its own (with the wall
    /// clock), until the returned [`Renewer`] is stopped or dropped. Failures are logged and
    /// retried at the next period.
    pub fn spawn_renewer(self: &Arc<Self>, period: Duration, margin: Duration) -> Renewer {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(self), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match s.tick(SystemTime::now(), margin) {
                    Ok(o) if o != TickOutcome::default() => {
                        tracing::info!(auth = ?o.auth, rotated = ?o.rotated, renewed = ?o.renewed, "cephx: renewed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cephx: renewal failed"),
                }
                let until = Instant::now() + period;
                while !st.load(Ordering::Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Renewer {
            stop,
            handle: Some(handle),
        }
    }

    /// Closes the session.
    pub fn shutdown(self) {
        self.messenger.shutdown();
    }
}

/// A running renewal thread ([`MonAuthSession::spawn_renewer`]); stops when dropped.
#[derive(Debug)]
pub struct Renewer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Renewer {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn now_nanos(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn provider_key(keyring: &Keyring, name: &EntityName) -> Result<CryptoKey, MonAuthError> {
    keyring
        .get(name)
        .cloned()
        .ok_or_else(|| MonAuthError::Key(AuthError::UnknownEntity(name.to_string())))
}
