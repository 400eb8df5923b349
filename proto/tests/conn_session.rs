//! What the session and ident phases establish, as the embedder sees it: negotiated and
//! required features, the gid a mon assigns, SESSION_RETRY_GLOBAL, the view a server
//! takes of an existing connection, receive throttle accounting, requeueing on faults,
//! permanent failures and what a server can redial.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{self as p, ControlPayload};
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{Config, Connection, Event, Message, PeerInfo, Policy, PolicySet, ProtoError};

pub(crate) fn osd_addr() -> EntityAddr {
    "v2:127.0.0.1:6800/77".parse().unwrap()
}

fn osd_addrs() -> EntityAddrVec {
    EntityAddrVec(vec![osd_addr(), "v1:127.0.0.1:6801/77".parse().unwrap()])
}

pub(crate) fn client_cfg(policy: Policy) -> Arc<Config> {
    let mut c = Config::new("client.4".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    c.policies = PolicySet::new(policy);
    c.nonce = 99;
    Arc::new(c)
}

pub(crate) fn server_cfg(policy: Policy) -> Arc<Config> {
    let mut c = Config::new("osd.3".parse().unwrap());
    c.my_addrs = osd_addrs();
    c.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
    c.policies = PolicySet::new(policy);
    Arc::new(c)
}

/// A client with `global_seq` 5 and a server with 9.
pub(crate) fn pair(cp: Policy, sp: Policy) -> (Connection, Connection) {
    let now = Instant::now();
    (
        Connection::client(client_cfg(cp), osd_addr(), EntityType::Osd, 5, now),
        Connection::server(server_cfg(sp), "127.0.0.1:40000".parse().unwrap(), 9, now),
    )
}

/// Shuttles raw bytes both ways until both are quiet.
fn pump(c: &mut Connection, s: &mut Connection) {
    loop {
        let mut b = Vec::new();
        let n = c.poll_transmit(&mut b);
        assert_eq!(n, b.len());
        let mut moved = n > 0;
        s.handle_input(&b).unwrap();
        let mut b = Vec::new();
        let n = s.poll_transmit(&mut b);
        assert_eq!(n, b.len());
        moved |= n > 0;
        c.handle_input(&b).unwrap();
        if !moved {
            return;
        }
    }
}

fn ready_info(c: &mut Connection) -> PeerInfo {
    loop {
        match c.poll_event() {
            Some(Event::Ready(i)) => return i,
            Some(_) => {}
            None => panic!("no Ready event"),
        }
    }
}

pub(crate) fn ready_pair(cp: Policy, sp: Policy) -> (Connection, Connection) {
    let (mut c, mut s) = pair(cp, sp);
    pump(&mut c, &mut s);
    assert!(c.is_ready() && s.is_ready());
    while c.poll_event().is_some() {}
    while s.poll_event().is_some() {}
    (c, s)
}

fn msg(front: usize, middle: usize, data: usize) -> Message {
    let mut m = Message::new(42, 1, 1, vec![1; front]);
    m.middle = vec![2; middle];
    m.data = vec![3u8; data].into();
    m
}

/// A received message holds its whole payload (front, middle and data) on the dispatch and
/// policy byte throttles and one unit on the policy message throttle, until dropped.
#[test]
fn received_messages_hold_their_size_on_every_throttle() {
    let dispatch = Arc::new(msgr2_proto::Throttle::new(0));
    let bytes = Arc::new(msgr2_proto::Throttle::new(0));
    let count = Arc::new(msgr2_proto::Throttle::new(0));
    let mut scfg = Config::clone(&server_cfg(Policy::stateless_server(0)));
    scfg.dispatch_throttle = dispatch.clone();
    scfg.policies = PolicySet::new(
        Policy::stateless_server(0).with_throttles(Some(bytes.clone()), Some(count.clone())),
    );
    let now = Instant::now();
    let mut c = Connection::client(
        client_cfg(Policy::lossy_client(0)),
        osd_addr(),
        EntityType::Osd,
        5,
        now,
    );
    let mut s = Connection::server(Arc::new(scfg), "127.0.0.1:40000".parse().unwrap(), 9, now);
    pump(&mut c, &mut s);
    while s.poll_event().is_some() {}
    c.send_message(msg(3, 4, 5)).unwrap();
    c.send_message(msg(10, 20, 0)).unwrap();
    pump(&mut c, &mut s);
    let held: Vec<Message> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(held.len(), 2);
    assert_eq!(
        (dispatch.current(), bytes.current(), count.current()),
        (42, 42, 2)
    );
    let g = held[0].throttle.as_ref().unwrap();
    assert_eq!(
        (g.held_on(&dispatch), g.held_on(&bytes), g.held_on(&count)),
        (12, 12, 1)
    );
    drop(held);
    assert_eq!(
        (dispatch.current(), bytes.current(), count.current()),
        (0, 0, 0)
    );
}

/// What a server deciding about a new connection from the same peer sees of an existing
/// one (Ceph's `exproto` state and session fields).
#[test]
fn existing_view_reports_state_and_session() {
    use msgr2_proto::session::ExistingState;
    let (mut c, mut s) = pair(Policy::lossless_client(0), Policy::stateful_server(0));
    assert_eq!(c.existing_view().state, ExistingState::Connecting);
    pump(&mut c, &mut s);
    let v = s.existing_view();
    assert_eq!(v.state, ExistingState::Ready);
    assert!(!v.lossy && v.policy_server);
    assert_eq!(v.client_cookie, s.session().client_cookie());
    assert_eq!(v.server_cookie, s.session().server_cookie());
    assert_eq!((v.peer_global_seq, v.connect_seq, v.global_seq), (5, 0, 10));
    let v = c.existing_view();
    assert_eq!(v.state, ExistingState::Ready);
    assert!(!v.policy_server);
    assert_eq!((v.peer_global_seq, v.global_seq), (10, 5));
    s.handle_eof();
    assert_eq!(s.existing_view().state, ExistingState::Standby);
    c.handle_eof();
    assert_eq!(c.state(), "BACKOFF");
    assert_eq!(c.existing_view().state, ExistingState::Connecting);
    let _ = s.take_session();
    assert_eq!(s.existing_view().state, ExistingState::Closed);
}

/// Ceph's `requeue_sent`: on a fault, sent but unacknowledged messages go back to the queue
/// (counted again, bytes included) and `out_seq` is rewound so they keep their numbers.
#[test]
fn a_fault_requeues_unacknowledged_messages() {
    let (mut c, _s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    for (f, m, d) in [(10, 0, 0), (3, 4, 5), (0, 0, 1000)] {
        c.send_message(msg(f, m, d)).unwrap();
    }
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    assert_eq!((c.session().queued(), c.session().queued_bytes()), (0, 0));
    assert_eq!((c.session().out_seq(), c.session().unacked()), (3, 3));
    c.handle_eof();
    assert_eq!(
        (c.session().queued(), c.session().queued_bytes()),
        (3, 1022)
    );
    assert_eq!((c.session().out_seq(), c.session().unacked()), (0, 0));
}

/// SESSION_RETRY_GLOBAL (Ceph's `handle_session_retry_global`): a reconnect carrying a
/// global_seq below the one the server saw is answered with that value; the client takes
/// `get_global_seq(value)` (above both it and its own counter) and reconnects again, which
/// the server accepts.
#[test]
fn session_retry_global_raises_the_global_seq() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    assert_eq!(s.session().peer_global_seq(), 5);
    c.handle_eof();
    // The session continues under a messenger whose counter is behind (e.g. restarted).
    let mut c2 = Connection::client_with_session(
        client_cfg(Policy::lossless_client(0)),
        osd_addr(),
        EntityType::Osd,
        c.take_session(),
        1,
        Instant::now(),
    );
    let mut scfg = Config::clone(&server_cfg(Policy::stateful_server(0)));
    scfg.session_lookup = true;
    let mut s2 = Connection::server(
        Arc::new(scfg),
        "127.0.0.1:40001".parse().unwrap(),
        20,
        Instant::now(),
    );
    let mut fates = Vec::new();
    for _ in 0..50 {
        let mut b = Vec::new();
        c2.poll_transmit(&mut b);
        s2.handle_input(&b).unwrap();
        while let Some(ev) = s2.poll_event() {
            if let Event::Lookup(l) = ev {
                assert!(l.reconnect);
                assert!(l.matches(&s));
                fates.push(s2.resolve_lookup(Some(&mut s)).unwrap());
            }
        }
        let mut b2 = Vec::new();
        s2.poll_transmit(&mut b2);
        c2.handle_input(&b2).unwrap();
        if b.is_empty() && b2.is_empty() {
            break;
        }
    }
    use msgr2_proto::ExistingFate;
    assert_eq!(
        fates,
        vec![ExistingFate::Untouched, ExistingFate::TakenOver]
    );
    assert!(c2.is_ready() && s2.is_ready());
    assert_eq!(c2.global_seq(), 6);
    assert_eq!(s2.session().peer_global_seq(), 6);
    assert!(s.is_closed());
}

/// A server refuses CLIENT_IDENT from a client lacking a feature its policy requires, or
/// MSG_ADDR2, which every msgr2 server requires (IDENT_MISSING_FEATURES).
#[test]
fn a_server_requires_its_policy_features_and_msg_addr2() {
    use msgr2_proto::config::{FEATURE_MSG_ADDR2, SUPPORTED_FEATURES};
    let bit17 = 1u64 << 17;
    assert_eq!(SUPPORTED_FEATURES & bit17, 0);
    let both = bit17 | FEATURE_MSG_ADDR2;
    for (client_lacks, req, want) in [
        (0, bit17, bit17),
        (FEATURE_MSG_ADDR2, both, both),
        (FEATURE_MSG_ADDR2, 0, FEATURE_MSG_ADDR2),
    ] {
        let mut ccfg = Config::clone(&client_cfg(Policy::lossless_client(0)));
        ccfg.supported_features &= !client_lacks;
        let now = Instant::now();
        let mut c = Connection::client(Arc::new(ccfg), osd_addr(), EntityType::Osd, 5, now);
        let mut s = Connection::server(
            server_cfg(Policy::stateful_server(req)),
            "127.0.0.1:40000".parse().unwrap(),
            9,
            now,
        );
        let mut err = None;
        for _ in 0..20 {
            let mut b = Vec::new();
            c.poll_transmit(&mut b);
            if let Err(e) = s.handle_input(&b) {
                err = Some(e);
                break;
            }
            let mut b = Vec::new();
            s.poll_transmit(&mut b);
            c.handle_input(&b).unwrap();
        }
        assert_eq!(err, Some(ProtoError::MissingFeatures { missing: want }));
        assert!(!s.is_ready());
    }
}

/// The features in force are the intersection of both sides' (each side's PeerInfo).
#[test]
fn negotiated_features_are_the_intersection() {
    use msgr2_proto::config::SUPPORTED_FEATURES;
    let dropped = 1u64 << 3;
    assert_ne!(SUPPORTED_FEATURES & dropped, 0);
    let mut ccfg = Config::clone(&client_cfg(Policy::lossless_client(0)));
    ccfg.supported_features = SUPPORTED_FEATURES & !dropped;
    let now = Instant::now();
    let mut c = Connection::client(Arc::new(ccfg), osd_addr(), EntityType::Osd, 5, now);
    let mut s = Connection::server(
        server_cfg(Policy::stateful_server(0)),
        "127.0.0.1:40000".parse().unwrap(),
        9,
        now,
    );
    pump(&mut c, &mut s);
    let want = SUPPORTED_FEATURES & !dropped;
    assert_eq!(ready_info(&mut c).features, want);
    assert_eq!(ready_info(&mut s).features, want);
}

/// A permanent handshake failure (no auth method) closes the connection and reports the
/// reset only when messages were dropped; a server-role connection that never reached
/// its ident has nothing to keep.
#[test]
fn permanent_failures_and_unannounced_servers_close() {
    for queued in [0usize, 2] {
        let mut ccfg = Config::clone(&client_cfg(Policy::lossless_client(0)));
        ccfg.client_auth = None;
        let now = Instant::now();
        let mut c = Connection::client(Arc::new(ccfg), osd_addr(), EntityType::Osd, 5, now);
        let mut s = Connection::server(
            server_cfg(Policy::stateful_server(0)),
            "127.0.0.1:40000".parse().unwrap(),
            9,
            now,
        );
        for _ in 0..queued {
            c.send_message(msg(1, 0, 0)).unwrap();
        }
        let mut err = None;
        for _ in 0..10 {
            let mut b = Vec::new();
            c.poll_transmit(&mut b);
            s.handle_input(&b).unwrap();
            let mut b = Vec::new();
            s.poll_transmit(&mut b);
            if let Err(e) = c.handle_input(&b) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ProtoError::NoAuth));
        assert!(c.is_closed());
        let ev: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        if queued == 0 {
            assert!(ev.is_empty(), "{ev:?}");
        } else {
            assert_eq!(
                ev,
                vec![Event::Reset {
                    remote: false,
                    dropped: queued
                }]
            );
        }
    }
    let mut s = Connection::server(
        server_cfg(Policy::stateful_server(0)),
        "127.0.0.1:40000".parse().unwrap(),
        9,
        Instant::now(),
    );
    s.send_message(msg(1, 0, 0)).unwrap();
    s.handle_eof();
    assert!(s.is_closed());
    assert_eq!(s.poll_event(), None, "no session was announced: no reset");
}

/// A server-role connection redials only a real msgr2 address of its peer: a client that
/// does not listen (port 0) cannot be dialled.
#[test]
fn a_server_cannot_dial_a_client_that_does_not_listen() {
    for addr in [None, Some("v2:0.0.0.0:6900/99"), Some("v2:127.0.0.1:0/99")] {
        let mut ccfg = Config::clone(&client_cfg(Policy::lossless_client(0)));
        if let Some(a) = addr {
            ccfg.my_addrs = EntityAddrVec(vec![a.parse().unwrap()]);
        }
        let now = Instant::now();
        let mut c = Connection::client(Arc::new(ccfg), osd_addr(), EntityType::Osd, 5, now);
        let mut s = Connection::server(
            server_cfg(Policy::lossless_peer(0)),
            "127.0.0.1:40000".parse().unwrap(),
            9,
            now,
        );
        pump(&mut c, &mut s);
        assert!(s.is_ready());
        s.send_message(msg(1, 0, 0)).unwrap();
        s.handle_eof();
        assert_eq!(s.state(), "STANDBY", "{addr:?}");
        assert!(matches!(
            s.reconnect(30, Instant::now()),
            Err(ProtoError::NoReconnectTarget)
        ));
    }
}

/// A client refuses SERVER_IDENT from a server lacking a feature the client's policy
/// requires, or MSG_ADDR2.
#[test]
fn a_client_requires_its_policy_features_and_msg_addr2() {
    use msgr2_proto::config::{FEATURE_MSG_ADDR2, SUPPORTED_FEATURES};
    let bit3 = 1u64 << 3;
    assert_ne!(SUPPORTED_FEATURES & bit3, 0);
    for (server_lacks, req, want) in [
        (bit3, bit3, bit3),
        (FEATURE_MSG_ADDR2, 0, FEATURE_MSG_ADDR2),
        (FEATURE_MSG_ADDR2, FEATURE_MSG_ADDR2, FEATURE_MSG_ADDR2),
    ] {
        let mut scfg = Config::clone(&server_cfg(Policy::stateful_server(0)));
        scfg.supported_features &= !server_lacks;
        let now = Instant::now();
        let mut c = Connection::client(
            client_cfg(Policy::lossless_client(req)),
            osd_addr(),
            EntityType::Osd,
            5,
            now,
        );
        let mut s = Connection::server(Arc::new(scfg), "127.0.0.1:40000".parse().unwrap(), 9, now);
        let mut err = None;
        for _ in 0..20 {
            let mut b = Vec::new();
            c.poll_transmit(&mut b);
            s.handle_input(&b).unwrap();
            let mut b = Vec::new();
            s.poll_transmit(&mut b);
            if let Err(e) = c.handle_input(&b) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ProtoError::MissingFeatures { missing: want }));
        assert!(!c.is_ready());
    }
}

/// The server dictates lossiness (SERVER_IDENT flags): its policy decides both ends'
/// session, whatever the client proposed; a lossy server hands out no server cookie.
#[test]
fn a_lossy_server_makes_the_session_lossy() {
    let (c, s) = ready_pair(Policy::lossless_client(0), Policy::stateless_server(0));
    assert!(c.session().is_lossy() && s.session().is_lossy());
    assert_eq!(c.session().server_cookie(), 0);
    let (c, s) = ready_pair(Policy::lossy_client(0), Policy::stateful_server(0));
    assert!(!c.session().is_lossy() && !s.session().is_lossy());
}

/// A server answers AUTH_BAD_METHOD to each AUTH_REQUEST with a method it does not offer,
/// and gives up (AuthRejected, permanent) on the 8th.
#[test]
fn a_server_tolerates_seven_bad_auth_methods() {
    use msgr2_codec::banner::Revision;
    use msgr2_codec::frame::assemble;
    fn frame<P: ControlPayload>(payload: &P, out: &mut Vec<u8>) {
        assemble(Revision::Rev1, P::TAG, &[(&payload.to_bytes(), 8)], out);
    }
    let now = Instant::now();
    let mut s = Connection::server(
        server_cfg(Policy::stateless_server(0)),
        "127.0.0.1:40000".parse().unwrap(),
        9,
        now,
    );
    // Our banner, then HELLO.
    let mut banner = Vec::new();
    msgr2_codec::banner::Banner::OURS.encode(&mut banner);
    s.handle_input(&banner).unwrap();
    let mut hello = Vec::new();
    frame(
        &p::Hello {
            entity_type: EntityType::Client,
            peer_addr: osd_addr(),
        },
        &mut hello,
    );
    s.handle_input(&hello).unwrap();
    let bad = p::AuthRequest {
        method: 2,
        preferred_modes: vec![p::CON_MODE_CRC],
        auth_payload: Vec::new(),
    };
    for attempt in 1..=8 {
        let mut f = Vec::new();
        frame(&bad, &mut f);
        let r = s.handle_input(&f);
        if attempt < 8 {
            assert_eq!(r, Ok(()), "attempt {attempt}");
            assert_eq!(s.state(), "AUTH_ACCEPTING");
        } else {
            assert!(
                matches!(r, Err(ProtoError::AuthRejected { method: 2, .. })),
                "{r:?}"
            );
        }
    }
    assert!(s.is_closed());
}

/// A server refuses CLIENT_IDENT whose first address is blank (Ceph compares it with
/// `entity_addr_t()`); a typed address without an IP (nothing to dial) is accepted.
#[test]
fn a_blank_client_address_is_refused() {
    use msgr2_codec::addr::AddrType;
    for (ty, ok) in [(AddrType::None, false), (AddrType::Msgr2, true)] {
        let addr = EntityAddr {
            ty,
            nonce: 0,
            sock: None,
        };
        let mut ccfg = Config::clone(&client_cfg(Policy::lossless_client(0)));
        ccfg.my_addrs = EntityAddrVec(vec![addr]);
        let now = Instant::now();
        let mut c = Connection::client(Arc::new(ccfg), osd_addr(), EntityType::Osd, 5, now);
        let mut s = Connection::server(
            server_cfg(Policy::stateful_server(0)),
            "127.0.0.1:40000".parse().unwrap(),
            9,
            now,
        );
        let mut err = None;
        for _ in 0..20 {
            let mut b = Vec::new();
            c.poll_transmit(&mut b);
            if let Err(e) = s.handle_input(&b) {
                err = Some(e);
                break;
            }
            let mut b = Vec::new();
            s.poll_transmit(&mut b);
            c.handle_input(&b).unwrap();
        }
        if ok {
            assert_eq!(err, None);
            assert!(s.is_ready());
            assert_eq!(s.peer_addrs(), Some(EntityAddrVec(vec![addr])));
        } else {
            assert!(matches!(err, Some(ProtoError::BadPeerAddrs(_))), "{err:?}");
        }
    }
}
