//! The parts of the Messenger API that `msgr2 ping` and `msgr2 server` rely on: a client auth
//! provider of the caller's own, a forced msgr2.0 banner, our gid in idents, keepalives in
//! both directions with their callbacks, the peer's socket address before READY, a refused
//! authentication reported by `on_reset` with its cause (not redialled), and a refused
//! connection reported by `on_fault` while the engine would redial it.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use msgr2_codec::banner::Revision;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_CEPHX, CON_MODE_SECURE};
use msgr2_crypto::auth::NoneClientProvider;
use msgr2_crypto::cephx::{CephxClientProvider, TicketStore};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_engine::{
    Banner, ConnHandle, Dispatcher, Message, MessengerBuilder, ModeConfig, PeerInfo, UTime,
};

const T: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Ev {
    Connected(ConnHandle, PeerInfo),
    Accepted(ConnHandle, PeerInfo),
    Keepalive(ConnHandle, UTime),
    KeepaliveAck(ConnHandle, UTime),
    Reset(ConnHandle, msgr2_engine::ConnError),
    Fault(ConnHandle, msgr2_engine::ConnError),
}

struct Fwd(Sender<Ev>);

impl Dispatcher for Fwd {
    fn on_message(&mut self, _conn: &ConnHandle, _msg: Message) {}
    fn on_connect(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Connected(conn.clone(), peer.clone()));
    }
    fn on_accept(&mut self, conn: &ConnHandle, peer: &PeerInfo) {
        let _ = self.0.send(Ev::Accepted(conn.clone(), peer.clone()));
    }
    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Reset(conn.clone(), error.to_owned()));
    }
    fn on_fault(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Fault(conn.clone(), error.to_owned()));
    }
    fn on_keepalive(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = self.0.send(Ev::Keepalive(conn.clone(), stamp));
    }
    fn on_keepalive_ack(&mut self, conn: &ConnHandle, stamp: UTime) {
        let _ = self.0.send(Ev::KeepaliveAck(conn.clone(), stamp));
    }
}

fn name(s: &str) -> EntityName {
    s.parse().unwrap()
}

fn builder(n: &str) -> (MessengerBuilder, Receiver<Ev>) {
    let (tx, rx) = channel();
    let b = MessengerBuilder::new(name(n))
        .cores(vec![0])
        .arena_size(1 << 20)
        .arena_fallback(true)
        .spin_before_park(None)
        .dispatcher(move |_| Box::new(Fwd(tx.clone())));
    (b, rx)
}

fn next(rx: &Receiver<Ev>) -> Ev {
    rx.recv_timeout(T).expect("no event")
}

#[test]
fn rev0_banner_gid_keepalives_and_peer_socket() {
    let rev0 = Banner {
        supported: 0,
        required: 0,
    };
    let (sb, srx) = builder("mon.a");
    let s = sb
        .bind("v2:127.0.0.1:0")
        .gid(0)
        .banner(rev0)
        .start()
        .unwrap();
    let (cb, crx) = builder("client.admin");
    let c = cb
        .client_auth(Arc::new(NoneClientProvider::new(name("client.admin"))))
        .start()
        .unwrap();
    let server_sock = s.addrs().msgr2().and_then(|a| a.sock);
    let conn = c.connect(&s.addrs(), EntityType::Mon).unwrap();
    assert_eq!(
        conn.peer_socket(),
        server_sock,
        "known before the handshake"
    );
    let info = match next(&crx) {
        Ev::Connected(h, info) => {
            assert_eq!(h, conn);
            info
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        info.revision,
        Revision::Rev0,
        "the server offered msgr2.0 only"
    );
    assert_eq!(info.gid, 0, "the server's gid() reaches its ident");
    let accepted = match next(&srx) {
        Ev::Accepted(h, info) => {
            assert_eq!(info.revision, Revision::Rev0);
            h
        }
        other => panic!("{other:?}"),
    };
    let from = accepted.peer_socket().unwrap();
    assert!(from.ip().is_loopback() && from.port() != 0, "{from}");

    let stamp = conn.keepalive().unwrap();
    match next(&srx) {
        Ev::Keepalive(h, st) => {
            assert_eq!(h, accepted);
            assert_eq!(st, stamp);
        }
        other => panic!("{other:?}"),
    }
    match next(&crx) {
        Ev::KeepaliveAck(h, st) => {
            assert_eq!(h, conn);
            assert_eq!(st, stamp);
        }
        other => panic!("{other:?}"),
    }
    // and the other way round, from the accepting side
    let stamp = accepted.keepalive().unwrap();
    assert!(matches!(next(&crx), Ev::Keepalive(_, st) if st == stamp));
    assert!(matches!(next(&srx), Ev::KeepaliveAck(_, st) if st == stamp));

    conn.mark_down();
    assert!(conn.keepalive().is_err(), "closed handles refuse");
    c.shutdown();
    s.shutdown();
}

#[test]
fn own_cephx_provider_and_a_refusal_with_its_cause() {
    let admin = name("client.admin");
    let mut kr = Keyring::new();
    kr.insert(admin.clone(), CryptoKey::generate().unwrap());
    assert!(kr.set_caps(&admin, "mon", "allow *"));
    let (sb, _srx) = builder("mon.a");
    let s = sb
        .bind("v2:127.0.0.1:0")
        .keyring(kr.clone())
        .start()
        .unwrap();

    // the caller's provider (and ticket store), secure mode
    let store = TicketStore::new();
    let (cb, crx) = builder("client.admin");
    let c = cb
        .client_auth(Arc::new(
            CephxClientProvider::from_keyring(&kr, admin.clone(), store).unwrap(),
        ))
        .modes(ModeConfig::all(vec![CON_MODE_SECURE]))
        .start()
        .unwrap();
    c.connect(&s.addrs(), EntityType::Mon).unwrap();
    match next(&crx) {
        Ev::Connected(_, info) => {
            assert_eq!(info.auth_method, AUTH_CEPHX);
            assert_eq!(info.con_mode, CON_MODE_SECURE);
        }
        other => panic!("{other:?}"),
    }
    c.shutdown();

    // a wrong key: the server refuses, the client reports why and does not redial
    let mut wrong = Keyring::new();
    wrong.insert(admin.clone(), CryptoKey::generate().unwrap());
    let (cb, crx) = builder("client.admin");
    let c = cb
        .client_auth(Arc::new(
            CephxClientProvider::from_keyring(&wrong, admin, TicketStore::new()).unwrap(),
        ))
        .start()
        .unwrap();
    let h = c.connect(&s.addrs(), EntityType::Mon).unwrap();
    match next(&crx) {
        Ev::Reset(r, e) => {
            assert_eq!(r, h);
            assert!(
                matches!(
                    e,
                    msgr2_engine::ConnError::Protocol(msgr2_proto::ProtoError::AuthRejected {
                        method: 2,
                        ..
                    })
                ),
                "{e:?}"
            );
            // Display keeps the wording
            assert!(
                e.to_string().contains("server rejected auth method 2"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(h.is_closed());
    // longer than the first reconnect backoff (200 ms): still the one connection
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(c.counters().msgr_created_connections, 1);
    assert!(crx.try_recv().is_err(), "nothing after the reset");
    c.shutdown();
    s.shutdown();
}

#[test]
fn a_refused_connect_is_reported_by_on_fault_and_mark_down_stops_the_retries() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    drop(taken);
    let (cb, crx) = builder("client.admin");
    let c = cb.start().unwrap();
    let addrs = format!("v2:127.0.0.1:{port}/0").parse().unwrap();
    let h = c.connect(&addrs, EntityType::Osd).unwrap();
    match next(&crx) {
        Ev::Fault(f, e) => {
            assert_eq!(f, h);
            assert_eq!(
                e,
                msgr2_engine::ConnError::Io {
                    op: msgr2_engine::SocketOp::Connect(Some(
                        format!("127.0.0.1:{port}").parse().unwrap()
                    )),
                    errno: libc::ECONNREFUSED,
                },
                "{e}"
            );
            assert!(e.to_string().starts_with("connect to 127.0.0.1"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    h.mark_down();
    std::thread::sleep(Duration::from_millis(600));
    assert!(crx.try_recv().is_err(), "no redial after mark_down");
    assert!(h.is_closed());
    c.shutdown();
}
