//! Handshake transcripts between two in-memory connections: every phase, both revisions,
//! every byte split, and the failure cases each with its typed error.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{UTime, AUTH_NONE, CON_MODE_CRC};
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{Config, Connection, Event, Message, ProtoError};

fn mon_addr() -> EntityAddr {
    "v2:127.0.0.1:3300/0".parse().unwrap()
}

fn none_client(rev1: bool) -> Arc<Config> {
    let mut c = Config::new("client.admin".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    if !rev1 {
        c.banner = Banner {
            supported: 0,
            required: 0,
        };
    }
    Arc::new(c)
}

fn none_server() -> Arc<Config> {
    let mut c = Config::new("mon.a".parse().unwrap());
    c.gid.set(0);
    c.my_addrs = EntityAddrVec(vec![mon_addr(), "v1:127.0.0.1:6789/0".parse().unwrap()]);
    c.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
    Arc::new(c)
}

/// Shuttles bytes between the two until neither has anything to send, delivering at most
/// `chunk` bytes per call. Returns the first error from either side.
fn pump(a: &mut Connection, b: &mut Connection, chunk: usize) -> Result<(), (char, ProtoError)> {
    fn one_way(
        from: &mut Connection,
        to: &mut Connection,
        chunk: usize,
    ) -> Result<bool, ProtoError> {
        let mut buf = Vec::new();
        from.poll_transmit(&mut buf);
        for piece in buf.chunks(chunk.max(1)) {
            to.handle_input(piece)?;
        }
        Ok(!buf.is_empty())
    }
    loop {
        let ab = one_way(a, b, chunk).map_err(|e| ('b', e))?;
        let ba = one_way(b, a, chunk).map_err(|e| ('a', e))?;
        if !ab && !ba {
            return Ok(());
        }
    }
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn pair(client: Arc<Config>, server: Arc<Config>) -> (Connection, Connection) {
    let now = Instant::now();
    let c = Connection::client(client, mon_addr(), EntityType::Mon, 1, now);
    let s = Connection::server(server, "127.0.0.1:50000".parse().unwrap(), 7, now);
    (c, s)
}

#[test]
fn auth_none_crc_both_revisions_every_split() {
    for rev1 in [true, false] {
        for chunk in [1, 2, 3, 7, 31, 32, 33, 100, usize::MAX] {
            let (mut c, mut s) = pair(none_client(rev1), none_server());
            pump(&mut c, &mut s, chunk).unwrap();
            assert!(c.is_ready() && s.is_ready(), "rev1={rev1} chunk={chunk}");
            let Some(Event::Ready(ci)) = c.poll_event() else {
                panic!("client ready event")
            };
            let Some(Event::Ready(si)) = s.poll_event() else {
                panic!("server ready event")
            };
            let want_rev = if rev1 { Revision::Rev1 } else { Revision::Rev0 };
            assert_eq!((ci.revision, si.revision), (want_rev, want_rev));
            assert_eq!((ci.con_mode, ci.auth_method), (CON_MODE_CRC, AUTH_NONE));
            assert_eq!(ci.entity_type, EntityType::Mon);
            assert_eq!(si.entity_type, EntityType::Client);
            assert_eq!(si.name.as_ref().unwrap().to_string(), "client.admin");
            assert_eq!(ci.global_id, 4100);
            assert!(ci.lossy, "the server dictates lossy for clients");
            assert_eq!(ci.addrs, none_server().my_addrs);
            // the client announced itself as TYPE_ANY with the IP the server saw
            assert_eq!(
                si.addrs.0[0].to_string().split('/').next().unwrap(),
                "127.0.0.1:0"
            );
        }
    }
}

#[test]
fn messages_and_keepalives_flow_both_ways() {
    let (mut c, mut s) = pair(none_client(true), none_server());
    // queued before ready: sent once ready, in order
    c.send_message(Message::new(5, 1, 1, vec![])).unwrap();
    pump(&mut c, &mut s, usize::MAX).unwrap();
    let mut m = Message::new(4, 1, 1, b"monmap".to_vec());
    m.data = vec![9; 100_000].into();
    s.send_message(m).unwrap();
    c.send_keepalive(UTime { sec: 5, nsec: 6 }).unwrap();
    pump(&mut c, &mut s, 4096).unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[1], Event::Message(m) if m.header.msg_type == 5 && m.header.seq == 1));
    assert!(matches!(
        &ev[2],
        Event::Keepalive(UTime { sec: 5, nsec: 6 })
    ));
    let ev = events(&mut c);
    match &ev[1] {
        Event::Message(m) => {
            assert_eq!(
                (m.header.seq, m.header.ack_seq, m.front.as_slice()),
                (1, 1, &b"monmap"[..])
            );
            assert_eq!(m.data.len(), 100_000);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &ev[2],
        Event::KeepaliveAck(UTime { sec: 5, nsec: 6 })
    ));
}

#[test]
fn server_without_the_clients_method_rejects_with_bad_method() {
    // server only accepts cephx (an empty-method provider stands in); client only has none
    struct CephxOnly;
    impl msgr2_crypto::auth::ServerAuthProvider for CephxOnly {
        fn methods(&self, _: EntityType) -> Vec<u32> {
            vec![2]
        }
        fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn msgr2_crypto::auth::ServerAuth>> {
            None
        }
    }
    let mut sc = (*none_server()).clone();
    sc.server_auth = Some(Arc::new(CephxOnly));
    let (mut c, mut s) = pair(none_client(true), Arc::new(sc));
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert_eq!(err.0, 'a', "the client gives up");
    assert!(err.1.is_permanent());
    match err.1 {
        ProtoError::AuthRejected {
            method,
            result,
            allowed_methods,
            ..
        } => {
            assert_eq!((method, result, allowed_methods), (AUTH_NONE, -95, vec![2]));
        }
        other => panic!("{other:?}"),
    }
    // a permanent fault: the (lossy) client closes for good instead of redialling
    assert!(c.is_closed(), "state {}", c.state());
    assert!(
        !std::iter::from_fn(|| c.poll_event()).any(|e| matches!(e, Event::Reconnect { .. })),
        "no reconnect after a refusal"
    );
}

#[test]
fn mode_mismatch_is_rejected() {
    let mut sc = (*none_server()).clone();
    sc.modes = msgr2_proto::ModeConfig::all(vec![2]); // secure only, impossible with auth none
    let (mut c, mut s) = pair(none_client(true), Arc::new(sc));
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert!(
        matches!(err.1, ProtoError::AuthRejected { result: -95, .. }),
        "{err:?}"
    );
}

#[test]
fn wrong_peer_type_and_target_address_are_caught() {
    let now = Instant::now();
    let mut c = Connection::client(none_client(true), mon_addr(), EntityType::Osd, 1, now);
    let mut s = Connection::server(none_server(), "127.0.0.1:50000".parse().unwrap(), 7, now);
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert_eq!(
        err.1,
        ProtoError::WrongPeerType {
            expected: EntityType::Osd,
            got: EntityType::Mon
        }
    );
    // not permanent: a connecting client backs off and redials, as Ceph's does
    assert!(!err.1.is_permanent());
    assert!(!c.is_closed(), "state {}", c.state());

    let wrong: EntityAddr = "v2:127.0.0.1:3301/0".parse().unwrap();
    let mut c = Connection::client(none_client(true), wrong, EntityType::Mon, 1, now);
    let mut s = Connection::server(none_server(), "127.0.0.1:50000".parse().unwrap(), 7, now);
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert!(matches!(err.1, ProtoError::NotUs { .. }), "{err:?}");
}

#[test]
fn missing_features_get_ident_missing_features() {
    let mut cc = (*none_client(true)).clone();
    cc.supported_features = 0; // no MSG_ADDR2
    let (mut c, mut s) = pair(Arc::new(cc), none_server());
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    // the server reports it and closes; the client sees IDENT_MISSING_FEATURES
    assert_eq!(err.1, ProtoError::MissingFeatures { missing: 1 << 59 });
}

#[test]
fn frames_in_the_wrong_state_are_fatal() {
    use msgr2_codec::frame::{assemble, Tag};
    let (mut c, mut s) = pair(none_client(true), none_server());
    let mut buf = Vec::new();
    c.poll_transmit(&mut buf);
    s.handle_input(&buf).unwrap();
    // a KEEPALIVE2 instead of HELLO
    let mut f = Vec::new();
    assemble(Revision::Rev1, Tag::Keepalive2, &[(&[0; 8], 8)], &mut f);
    let err = s.handle_input(&f).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnexpectedFrame {
            tag: Tag::Keepalive2,
            state: "HELLO"
        }
    );
    // and the connection stays dead
    assert!(matches!(s.handle_input(&f), Err(ProtoError::Closed(_))));
    // a MESSAGE before READY
    let (mut c, mut s) = pair(none_client(true), none_server());
    let mut buf = Vec::new();
    c.poll_transmit(&mut buf);
    s.handle_input(&buf).unwrap();
    let mut f = Vec::new();
    let h = msgr2_codec::msg::MsgHeader2::default().to_bytes();
    assemble(Revision::Rev1, Tag::Message, &[(&h, 8)], &mut f);
    assert!(matches!(
        s.handle_input(&f),
        Err(ProtoError::UnexpectedFrame {
            tag: Tag::Message,
            ..
        })
    ));
}

#[test]
fn bad_banner_and_msgr1_and_timeouts() {
    let (_, mut s) = pair(none_client(true), none_server());
    assert!(matches!(
        s.handle_input(b"ceph v027\0\0"),
        Err(ProtoError::Banner(msgr2_codec::BannerError::Msgr1))
    ));
    // The banner prefix is checked as soon as its 10 bytes are in, however they arrive.
    let (_, mut s) = pair(none_client(true), none_server());
    for chunk in [&b"cep"[..], b"h v", b"027"] {
        s.handle_input(chunk).unwrap();
    }
    assert!(matches!(
        s.handle_input(b"\0\0\0"),
        Err(ProtoError::Banner(msgr2_codec::BannerError::Msgr1))
    ));
    let (_, mut s) = pair(none_client(true), none_server());
    assert!(matches!(
        s.handle_input(b"GET / HTTP/1.1\r\n"),
        Err(ProtoError::Banner(_))
    ));
    // slow loris: half a banner, then the deadline passes
    let start = Instant::now();
    let mut s = Connection::server(none_server(), "127.0.0.1:1".parse().unwrap(), 1, start);
    s.handle_input(b"ceph v2").unwrap();
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(10)));
    s.handle_timeout(start + Duration::from_secs(9)).unwrap();
    assert_eq!(
        s.handle_timeout(start + Duration::from_secs(10)),
        Err(ProtoError::HandshakeTimeout("BANNER"))
    );
    // peer closes mid-handshake
    let (mut c, mut s) = pair(none_client(true), none_server());
    let mut buf = Vec::new();
    c.poll_transmit(&mut buf);
    s.handle_input(&buf).unwrap();
    assert_eq!(s.handle_eof(), ProtoError::PeerClosed("HELLO"));
}

#[test]
fn duplicate_messages_are_dropped() {
    let (mut c, mut s) = pair(none_client(true), none_server());
    pump(&mut c, &mut s, usize::MAX).unwrap();
    events(&mut s);
    c.send_message(Message::new(5, 1, 1, vec![1])).unwrap();
    let mut first = Vec::new();
    c.poll_transmit(&mut first);
    s.handle_input(&first).unwrap();
    s.handle_input(&first).unwrap(); // replayed in crc mode: same seq → silently dropped
    assert_eq!(events(&mut s).len(), 1);
}

/// Ceph's MonClient renames its messenger `client.<global_id>` once a mon authenticated it:
/// that gid goes into this and every later CLIENT_IDENT. Other peers and a global_id beyond
/// i64 change nothing (the gid stays -1).
#[test]
fn a_mon_assigns_the_clients_gid() {
    let mut seen = Vec::new();
    for (server, peer, first) in [
        ("mon.a", EntityType::Mon, 4100),
        ("osd.1", EntityType::Osd, 4100),
        ("mon.a", EntityType::Mon, u64::MAX - 1),
        ("mon.a", EntityType::Mon, u64::MAX),
    ] {
        let client = none_client(true);
        assert_eq!(client.gid.get(), -1);
        let mut s = Config::new(server.parse().unwrap());
        s.my_addrs = EntityAddrVec(vec![mon_addr()]);
        s.server_auth = Some(Arc::new(NoneServerProvider::new(first)));
        let now = Instant::now();
        let mut c = Connection::client(client.clone(), mon_addr(), peer, 1, now);
        let mut s = Connection::server(Arc::new(s), "127.0.0.1:50000".parse().unwrap(), 7, now);
        pump(&mut c, &mut s, usize::MAX).unwrap();
        let Some(Event::Ready(ci)) = c.poll_event() else {
            panic!("client ready event")
        };
        let want = match (peer, ci.global_id) {
            (EntityType::Mon, g) if g != 0 => i64::try_from(g).unwrap_or(-1),
            _ => -1,
        };
        seen.push((peer, ci.global_id, want));
        assert_eq!(client.gid.get(), want, "{server} {}", ci.global_id);
        let Some(Event::Ready(si)) = s.poll_event() else {
            panic!("server ready event")
        };
        assert_eq!(si.gid, want, "the CLIENT_IDENT carried it");
    }
    // The cases above include a rename and a global_id beyond i64.
    assert!(seen.iter().any(|&(_, g, w)| g != 0 && w == g as i64));
    assert!(
        seen.iter().any(|&(_, g, _)| g > i64::MAX as u64),
        "{seen:?}"
    );
}
