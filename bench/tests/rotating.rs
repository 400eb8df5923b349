//! A daemon identity in a real cluster (Ceph 16 and 20): our OSD-style server logs in to a
//! real mon as `osd.N`, fetches the rotating service secrets and verifies the authorizers of
//! clients holding OSD tickets the real mon issued, challenge round included, in crc and
//! secure mode, while the mon rotates the secrets every few seconds
//! (`auth_service_ticket_ttl`). Across at least two rotations: fresh clients reach READY
//! before and after each rotation, a long-lived client session renews its tickets
//! (`CEPHX_GET_PRINCIPAL_SESSION_KEY`) and keeps its connection, a stale ticket is refused
//! (expired or rotated out: [`AuthError::TicketExpired`] / [`AuthError::UnknownSecret`]) and
//! so is a foreign one. The AUTH (mon) ticket lives only a few seconds
//! (`auth_mon_ticket_ttl`): both mon sessions renew it over the session
//! (`CEPHX_GET_AUTH_SESSION_KEY` with the old ticket) at least twice, its expiry moving forward
//! each time, and keep working under the new AUTH session key: the daemon fetches rotating
//! secrets after its second renewal, the client renews its OSD ticket
//! (`CEPHX_GET_PRINCIPAL_SESSION_KEY`) after its second and still reaches READY with it. A
//! missing Ceph is a failure, not a skip; `MSGR2_CEPH_VERSIONS` limits the versions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{wanted, Cluster};

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::monhost::parse_mon_host;
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::AuthError;
use msgr2_crypto::cephx::{
    CephxClientProvider, RotatingKeyring, RotatingServerProvider, ServiceTicket, TicketStore,
};
use msgr2_crypto::keyring::Keyring;
use msgr2_engine::mon_auth::MonAuthSession;
use msgr2_engine::{ConnHandle, Dispatcher, Messenger, MessengerBuilder, ModeConfig, PeerInfo};
use msgr2_proto::Message;

/// `auth_service_ticket_ttl` of the test clusters, seconds: the mon rotates the OSD secret
/// about this often (checked at its 5 s tick).
const TTL: u64 = 10;
/// `auth_mon_ticket_ttl` of the test clusters, seconds: the AUTH ticket's validity (renewed at
/// three quarters of it). Ceph enforces no minimum.
const MON_TTL: u64 = 12;
const TIMEOUT: Duration = Duration::from_secs(20);
const OSD_BIT: u32 = EntityType::Osd as u32;
const MON_BIT: u32 = EntityType::Mon as u32;

enum Ev {
    Ready(PeerInfo),
    Failed(String),
}

struct Fwd(Sender<Ev>);

impl Dispatcher for Fwd {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
    fn on_connect(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready(peer.clone()));
    }
    fn on_accept(&mut self, _conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Ready(peer.clone()));
    }
    fn on_reset(&mut self, _conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Failed(error.to_string()));
    }
    fn on_fault(&mut self, _conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Failed(error.to_string()));
    }
}

fn modes(mode: u32) -> ModeConfig {
    ModeConfig {
        client: vec![mode],
        service: vec![mode],
        ..ModeConfig::default()
    }
}

/// A client messenger authorizing with the tickets of `store`.
fn client(
    name: &EntityName,
    key: msgr2_crypto::keyring::CryptoKey,
    store: TicketStore,
    mode: u32,
) -> (Messenger, Receiver<Ev>) {
    let (tx, rx) = channel();
    let m = MessengerBuilder::new(name.clone())
        .cores(vec![0])
        .modes(modes(mode))
        .client_auth(Arc::new(CephxClientProvider::new(name.clone(), key, store)))
        .dispatcher(move |_| Box::new(Fwd(tx.clone())))
        .start()
        .unwrap();
    (m, rx)
}

/// Connects `m` to the OSD at `osd`: Ok(peer) at READY, Err(first failure) otherwise.
fn reach(
    m: &Messenger,
    rx: &Receiver<Ev>,
    osd: &EntityAddrVec,
) -> (ConnHandle, Result<PeerInfo, String>) {
    let h = m.connect(osd, EntityType::Osd).unwrap();
    let r = match rx.recv_timeout(TIMEOUT) {
        Ok(Ev::Ready(p)) => Ok(p),
        Ok(Ev::Failed(e)) => Err(e),
        Err(_) => Err("timeout".into()),
    };
    if r.is_err() {
        h.mark_down();
    }
    (h, r)
}

fn max_id(ids: &[u64]) -> u64 {
    ids.iter().copied().max().unwrap_or(0)
}

fn run(version: u32) {
    let t0 = Instant::now();
    let ttl = format!("auth_service_ticket_ttl={TTL}");
    let mon_ttl = format!("auth_mon_ticket_ttl={MON_TTL}");
    // A nearly full disk must not stop the mon (it refuses to start under 5 % free).
    let c = Cluster::start_on(
        version,
        "rotating",
        &[
            "--osd",
            "none",
            "--conf",
            &ttl,
            "--conf",
            &mon_ttl,
            "--conf",
            "mon_data_avail_crit=1",
        ],
    );
    let mons: EntityAddrVec = {
        let all = parse_mon_host(c.var("MSGR2_CEPH_MON_HOST")).unwrap();
        EntityAddrVec(vec![*all.iter().find_map(|v| v.msgr2()).unwrap()])
    };
    // The daemon's identity: osd.7, imported into the cluster.
    let osd_keyring_path = c.new_keyring("osd.7.keyring", "osd.7", None);
    c.import(&osd_keyring_path);
    let osd_name: EntityName = "osd.7".parse().unwrap();
    let osd_keyring = Keyring::load(&osd_keyring_path).unwrap();
    let rotating = RotatingKeyring::new(EntityType::Osd);
    let daemon = Arc::new(
        MonAuthSession::connect(
            MessengerBuilder::new(osd_name.clone()).cores(vec![1]),
            osd_name.clone(),
            &osd_keyring,
            &mons,
            MON_BIT | OSD_BIT,
            Some(rotating.clone()),
            TIMEOUT,
        )
        .unwrap(),
    );
    let first_ids = rotating.secret_ids();
    eprintln!("ceph {version}: osd.7 holds rotating secrets {first_ids:?}");
    assert!(!first_ids.is_empty());
    let daemon_first = daemon.store().get(EntityType::Osd).unwrap().expires;
    let auth_expiry = |s: &MonAuthSession| s.store().get_even_expired(EntityType::Auth).unwrap();
    let first_auth = auth_expiry(&daemon);
    assert!(
        (1..=MON_TTL).contains(&u64::from(first_auth.validity.sec)),
        "ceph {version}: the daemon's AUTH ticket is valid {:?}",
        first_auth.validity
    );
    let _renewer = daemon.spawn_renewer(Duration::from_secs(1), Duration::from_secs(2));

    // Our OSD-style server, one per mode, verifying with the rotating keyring.
    let mut servers = Vec::new();
    for mode in [CON_MODE_CRC, CON_MODE_SECURE] {
        let (tx, rx) = channel();
        let sock = "127.0.0.1:0".parse().unwrap();
        let m = MessengerBuilder::new(osd_name.clone())
            .cores(vec![0])
            .modes(modes(mode))
            .bind(EntityAddrVec(vec![EntityAddr::new(AddrType::Msgr2, sock, 0)]).to_string())
            .server_auth(Arc::new(RotatingServerProvider::new(rotating.clone())))
            .dispatcher(move |_| Box::new(Fwd(tx.clone())))
            .start()
            .unwrap();
        let addrs = m.addrs();
        servers.push((mode, m, rx, addrs));
    }

    // client.admin's long-lived mon session with an OSD ticket from the real mon.
    let admin: EntityName = "client.admin".parse().unwrap();
    let admin_keyring = Keyring::load(c.var("MSGR2_CEPH_KEYRING")).unwrap();
    let admin_key = admin_keyring.get(&admin).unwrap().clone();
    let session = MonAuthSession::connect(
        MessengerBuilder::new(admin.clone()).cores(vec![1]),
        admin.clone(),
        &admin_keyring,
        &mons,
        MON_BIT | OSD_BIT,
        None,
        TIMEOUT,
    )
    .unwrap();
    let first_ticket: ServiceTicket = session.store().get(EntityType::Osd).unwrap();
    eprintln!(
        "ceph {version}: first OSD ticket: secret {} valid {:?}",
        first_ticket.ticket.secret_id, first_ticket.validity
    );

    // Long-lived sessions, one per mode, opened now and checked at the end.
    let mut long = Vec::new();
    for (mode, _, srx, addrs) in &servers {
        let (m, rx) = client(&admin, admin_key.clone(), session.store().clone(), *mode);
        let (h, r) = reach(&m, &rx, addrs);
        let p = r.unwrap_or_else(|e| panic!("ceph {version} mode {mode}: first READY: {e}"));
        assert_eq!(p.con_mode, *mode);
        assert!(matches!(srx.recv_timeout(TIMEOUT), Ok(Ev::Ready(_))));
        long.push((m, rx, h));
    }

    // Rounds until two rotations were seen (and the first ticket expired), a fresh client
    // reaching READY in each mode at each round.
    let mut rotations = 0;
    let mut last_max = max_id(&first_ids);
    let mut renewals = 0;
    let mut rounds = 0;
    // AUTH renewals: the client session's (from `tick`) and the daemon's (its renewer thread,
    // seen as its AUTH ticket's expiry moving forward); then proof the sessions still work.
    let mut session_auth = Vec::new();
    let mut renewed_after_auth = false;
    let mut daemon_auth = vec![first_auth.expires];
    let mut rotated_after_auth = false;
    let deadline = Instant::now() + Duration::from_secs(8 * TTL);
    while rotations < 2
        || !first_ticket.is_expired(SystemTime::now())
        || !renewed_after_auth
        || !rotated_after_auth
    {
        assert!(
            Instant::now() < deadline,
            "ceph {version}: only {rotations} rotations seen"
        );
        let before = auth_expiry(&session);
        let out = session
            .tick(SystemTime::now(), Duration::ZERO)
            .unwrap_or_else(|e| panic!("ceph {version} round {rounds}: tick: {e}"));
        if !out.renewed.is_empty() {
            renewals += 1;
            renewed_after_auth |= session_auth.len() >= 2;
        }
        if let Some(a) = &out.auth {
            let now = auth_expiry(&session);
            assert_eq!(now.expires, a.expires);
            assert!(
                now.expires > before.expires && now.session_key != before.session_key,
                "ceph {version}: AUTH renewal did not replace the ticket"
            );
            session_auth.push(a.expires);
            eprintln!(
                "ceph {version}: client AUTH ticket renewed at {:?} (secret {}, with {:?})",
                t0.elapsed(),
                now.ticket.secret_id,
                a.services
            );
        }
        let d = auth_expiry(&daemon).expires;
        if daemon_auth.last().is_some_and(|l| d > *l) {
            daemon_auth.push(d);
            eprintln!(
                "ceph {version}: osd.7 AUTH ticket renewed by {:?}",
                t0.elapsed()
            );
        }
        for (mode, _, srx, addrs) in &servers {
            let (m, rx) = client(&admin, admin_key.clone(), session.store().clone(), *mode);
            let (h, r) = reach(&m, &rx, addrs);
            let t = session.store().get_even_expired(EntityType::Osd).unwrap();
            let p = r.unwrap_or_else(|e| {
                panic!(
                    "ceph {version} mode {mode} round {rounds}: READY refused ({e}) with ticket secret {} while osd holds {:?}; rejections {:?}",
                    t.ticket.secret_id,
                    rotating.secret_ids(),
                    rotating.rejections()
                )
            });
            assert_eq!(p.con_mode, *mode);
            assert_eq!(p.entity_type, EntityType::Osd);
            while srx.try_recv().is_ok() {}
            h.mark_down();
            m.shutdown();
        }
        let ids = rotating.secret_ids();
        if max_id(&ids) > last_max {
            rotations += 1;
            rotated_after_auth |= daemon_auth.len() >= 3;
            eprintln!(
                "ceph {version}: rotation {rotations} at {:?}: {ids:?}",
                t0.elapsed()
            );
            last_max = max_id(&ids);
        }
        rounds += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        renewals >= 1,
        "ceph {version}: the client's OSD ticket was never renewed"
    );
    assert!(session_auth.len() >= 2 && daemon_auth.len() >= 3);
    let daemon_now = daemon.store().get(EntityType::Osd).unwrap().expires;
    assert!(
        daemon_now > daemon_first,
        "ceph {version}: the daemon's own OSD ticket was never renewed"
    );

    // A stale ticket: the first one, expired by now (and perhaps rotated out). Our client
    // would not present an expired ticket, so its local expiry is pushed out: the server
    // must refuse it on the expiry sealed inside.
    let _ = rotating.rejections();
    for (mode, _, _, addrs) in &servers {
        let store = TicketStore::new();
        store.set_global_id(session.store().global_id());
        let mut stale = first_ticket.clone();
        stale.expires = SystemTime::now() + Duration::from_secs(3600);
        stale.renew_after = stale.expires;
        store.insert(stale);
        let (m, rx) = client(&admin, admin_key.clone(), store, *mode);
        let (_, r) = reach(&m, &rx, addrs);
        assert!(r.is_err(), "ceph {version}: stale ticket reached READY");
        m.shutdown();
        let rej = rotating.rejections();
        assert!(
            rej.iter().any(|e| matches!(
                e,
                AuthError::TicketExpired(EntityType::Osd) | AuthError::UnknownSecret { .. }
            )),
            "ceph {version}: stale ticket refused for {rej:?}"
        );
    }
    // A foreign ticket: sealed with a secret id this cluster never issued.
    {
        let mut t = session.store().get(EntityType::Osd).unwrap();
        t.ticket.secret_id += 1000;
        let store = TicketStore::new();
        store.set_global_id(session.store().global_id());
        store.insert(t);
        let (m, rx) = client(&admin, admin_key.clone(), store, CON_MODE_CRC);
        let (_, r) = reach(&m, &rx, &servers[0].3);
        assert!(r.is_err(), "ceph {version}: foreign ticket reached READY");
        m.shutdown();
        let rej = rotating.rejections();
        assert!(
            rej.iter()
                .any(|e| matches!(e, AuthError::UnknownSecret { .. })),
            "ceph {version}: foreign ticket refused for {rej:?}"
        );
    }
    // The long-lived sessions are still up: no reset was reported.
    for (m, rx, _h) in long {
        assert!(
            !rx.try_iter().any(|e| matches!(e, Ev::Failed(_))),
            "ceph {version}: a long-lived session dropped"
        );
        m.shutdown();
    }
    eprintln!(
        "ceph {version}: {rotations} rotations, {rounds} rounds x 2 modes READY, {renewals} ticket renewals, AUTH renewals: client {} osd.7 {}, in {:?}",
        session_auth.len(),
        daemon_auth.len() - 1,
        t0.elapsed()
    );
    for (_, m, _, _) in servers {
        m.shutdown();
    }
    session.shutdown();
}

#[test]
fn ceph16_rotating_secrets() {
    if wanted(16) {
        run(16);
    }
}

#[test]
fn ceph20_rotating_secrets() {
    if wanted(20) {
        run(20);
    }
}
