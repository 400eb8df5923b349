//! What a connection reports to its embedder: the accessors after each handshake step, the
//! session counters Ceph keeps in `ProtocolV2` (cookies, `connect_seq`, `global_seq`s,
//! `out_seq`/`in_seq`, the queue and the unacked list), the transmit bookkeeping and the
//! reconnect attempt counter.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{self as p, ControlPayload};
use msgr2_codec::Data;
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{
    Config, Connection, Event, Message, PeerInfo, Policy, PolicySet, ProtoError, Role, VECTORED_MIN,
};

fn osd_addr() -> EntityAddr {
    "v2:127.0.0.1:6800/77".parse().unwrap()
}

fn osd_addrs() -> EntityAddrVec {
    EntityAddrVec(vec![osd_addr(), "v1:127.0.0.1:6801/77".parse().unwrap()])
}

fn client_cfg(policy: Policy) -> Arc<Config> {
    let mut c = Config::new("client.4".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    c.policies = PolicySet::new(policy);
    c.nonce = 99;
    Arc::new(c)
}

fn server_cfg(policy: Policy) -> Arc<Config> {
    let mut c = Config::new("osd.3".parse().unwrap());
    c.my_addrs = osd_addrs();
    c.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
    c.policies = PolicySet::new(policy);
    Arc::new(c)
}

/// A client with `global_seq` 5 and a server with 9.
fn pair(cp: Policy, sp: Policy) -> (Connection, Connection) {
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

fn ready_pair(cp: Policy, sp: Policy) -> (Connection, Connection) {
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

#[test]
fn accessors_before_and_after_the_handshake() {
    let (mut c, mut s) = pair(Policy::lossless_client(0), Policy::stateful_server(0));
    // Client: everything it dialled is known at once.
    assert_eq!(c.role(), Role::Client);
    assert_eq!(c.peer_type(), Some(EntityType::Osd));
    assert_eq!(c.target(), Some(osd_addr()));
    assert_eq!(c.policy(), &Policy::lossless_client(0));
    assert_eq!(c.peer_addrs(), Some(EntityAddrVec(vec![osd_addr()])));
    assert_eq!(c.global_seq(), 5);
    assert!(c.peer().is_none() && c.error().is_none());
    assert!(
        c.holds_session(),
        "Ceph registers outgoing connections at once"
    );
    // Server: nothing about the peer until HELLO and CLIENT_IDENT.
    assert_eq!(s.role(), Role::Server);
    assert_eq!(
        (s.peer_type(), s.target(), s.peer_addrs()),
        (None, None, None)
    );
    assert_eq!(s.global_seq(), 9);
    assert!(
        !s.holds_session(),
        "accepted: registered once it sends SERVER_IDENT"
    );

    pump(&mut c, &mut s);
    let ci = ready_info(&mut c);
    let si = ready_info(&mut s);
    assert_eq!(c.peer(), Some(&ci));
    assert_eq!(s.peer(), Some(&si));
    assert_eq!(ci.addrs, osd_addrs());
    // The peer's addresses now come from its ident frame, not from what was dialled.
    assert_eq!(c.peer_addrs(), Some(osd_addrs()));
    assert_eq!(s.peer_addrs(), Some(si.addrs.clone()));
    assert_eq!(si.addrs.0.len(), 1);
    assert_eq!(s.peer_type(), Some(EntityType::Client));
    assert_eq!(s.policy(), &Policy::stateful_server(0));
    assert!(s.holds_session() && c.holds_session());
    // SERVER_IDENT carries a fresh global_seq above the one the connection started with.
    assert_eq!(s.global_seq(), 10);
    assert_eq!(c.global_seq(), 5);
    assert_eq!(c.session().peer_global_seq(), 10);
    assert_eq!(s.session().peer_global_seq(), 5);
    assert!(c.error().is_none() && s.error().is_none());

    // A fault keeps the first error; a closed connection holds no session.
    let e = c.handle_eof();
    assert!(matches!(e, ProtoError::PeerClosed("READY")), "{e:?}");
    assert!(matches!(c.error(), Some(ProtoError::PeerClosed("READY"))));
    let e2 = c.handle_socket_error("later");
    assert!(matches!(e2, ProtoError::Socket { .. }), "{e2:?}");
    assert!(matches!(c.error(), Some(ProtoError::PeerClosed("READY"))));
    let e = s.handle_socket_error("reset by peer");
    assert!(
        matches!(&e, ProtoError::Socket { state: "READY", what } if what == "reset by peer"),
        "{e:?}"
    );
    assert_eq!(s.error(), Some(&e));
    assert!(
        s.holds_session(),
        "a stateful server keeps the session in STANDBY"
    );
    assert_eq!(s.state(), "STANDBY");
    let _ = s.take_session();
    assert!(s.is_closed() && !s.holds_session());
}

#[test]
fn session_counters_follow_the_traffic() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    for (cs, ss) in [(c.session(), s.session()), (s.session(), c.session())] {
        assert!(!cs.is_lossy());
        assert_eq!(cs.client_cookie(), ss.client_cookie());
        assert_eq!(cs.server_cookie(), ss.server_cookie());
        assert_eq!((cs.connect_seq(), cs.attempt()), (0, 0));
    }
    // Cookies are random per session.
    let (c2, _s2) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    assert_ne!(c.session().client_cookie(), c2.session().client_cookie());
    assert_ne!(c.session().server_cookie(), c2.session().server_cookie());
    assert!(c.session().client_cookie() != 0 && c.session().server_cookie() != 0);

    let sizes = [(10, 0, 0), (3, 4, 5), (0, 0, 1000)];
    for (f, m, d) in sizes {
        c.send_message(msg(f, m, d)).unwrap();
    }
    assert_eq!(c.session().queued(), 3);
    assert_eq!(c.session().queued_bytes(), 10 + 3 + 4 + 5 + 1000);
    assert_eq!((c.session().out_seq(), c.session().unacked()), (0, 0));
    assert!(c.wants_transmit());
    let mut wire = Vec::new();
    let n = c.poll_transmit(&mut wire);
    assert_eq!(n, wire.len());
    assert!(n > 1000);
    assert_eq!((c.session().queued(), c.session().queued_bytes()), (0, 0));
    assert_eq!((c.session().out_seq(), c.session().unacked()), (3, 3));
    assert!(!c.wants_transmit());
    s.handle_input(&wire).unwrap();
    assert_eq!(s.session().in_seq(), 3);
    let got: Vec<Message> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 3);
    for (m, (f, mi, d)) in got.iter().zip(sizes) {
        assert_eq!(m.payload_len(), f + mi + d);
        let mut want = msg(f, mi, d);
        want.header = m.header;
        assert_eq!(m, &want);
    }
    // The receiver acknowledges; the sender drops what was acknowledged.
    assert!(s.wants_transmit(), "a lossless receiver owes an ACK");
    pump(&mut c, &mut s);
    assert_eq!((c.session().out_seq(), c.session().unacked()), (3, 0));
    assert!(!s.wants_transmit());
}

#[test]
fn messages_compare_by_header_and_payload_only() {
    let a = msg(3, 4, 5);
    assert_eq!(a, a.clone());
    let mut b = a.clone();
    b.header.tid = 7;
    assert_ne!(a, b);
    let mut b = a.clone();
    b.front.push(0);
    assert_ne!(a, b);
    let mut b = a.clone();
    b.middle.push(0);
    assert_ne!(a, b);
    let mut b = a.clone();
    b.data = vec![3u8; 6].into();
    assert_ne!(a, b);
    assert_eq!(a.payload_len(), 12);
    assert_eq!(msg(0, 0, 7).payload_len(), 7);
    assert_eq!(msg(2, 0, 0).payload_len(), 2);
}

#[test]
fn reconnect_attempts_count_and_back_off() {
    let now = Instant::now();
    let cfg = client_cfg(Policy::lossless_client(0));
    let (initial, max) = (cfg.initial_backoff, cfg.max_backoff);
    let mut c = Connection::client(cfg, osd_addr(), EntityType::Osd, 5, now);
    c.send_message(msg(1, 0, 0)).unwrap();
    // Failing before the session exists: attempt 1, 2, 3 with a doubling backoff, and
    // connect_seq stays 0 (ceph/ceph#25343).
    for attempt in 1..=3u32 {
        let e = c.handle_socket_error("refused");
        assert!(matches!(e, ProtoError::Socket { .. }));
        assert_eq!(c.state(), "BACKOFF");
        assert_eq!(c.session().attempt(), attempt);
        assert_eq!(c.session().connect_seq(), 0);
        let want = initial.saturating_mul(1 << (attempt - 1)).min(max);
        assert_eq!(c.poll_event(), Some(Event::Reconnect { delay: want }));
        assert_eq!(c.target(), Some(osd_addr()));
        let next = c.reconnect(5 + u64::from(attempt), now).unwrap();
        assert!(c.is_closed() && !c.holds_session());
        assert_eq!(next.global_seq(), 5 + u64::from(attempt));
        assert_eq!(next.session().attempt(), attempt);
        assert_eq!(next.session().queued(), 1);
        assert_eq!(next.policy(), &Policy::lossless_client(0));
        c = next;
    }
    // Ready: the counter is cleared; a fault of a ready session redials at once and bumps
    // connect_seq (the session has a server cookie).
    let mut s = Connection::server(
        server_cfg(Policy::stateful_server(0)),
        "127.0.0.1:40000".parse().unwrap(),
        9,
        now,
    );
    pump(&mut c, &mut s);
    assert!(c.is_ready());
    assert_eq!(c.session().attempt(), 0);
    while c.poll_event().is_some() {}
    c.handle_eof();
    assert_eq!(
        c.poll_event(),
        Some(Event::Reconnect {
            delay: Duration::ZERO
        })
    );
    assert_eq!((c.session().attempt(), c.session().connect_seq()), (0, 1));
}

/// A connection's unsent bytes are appended after what the caller's buffer already holds.
#[test]
fn poll_transmit_appends() {
    let (mut c, _s) = pair(Policy::lossy_client(0), Policy::stateless_server(0));
    let mut buf = b"xyz".to_vec();
    let n = c.poll_transmit(&mut buf);
    assert!(n > 0);
    assert_eq!(buf.len(), 3 + n);
    assert_eq!(&buf[..3], b"xyz");
    assert_eq!(&buf[3..11], b"ceph v2\n", "the banner follows");
    assert_eq!(c.poll_transmit(&mut buf), 0);
    assert_eq!(buf.len(), 3 + n);
}

/// A returned transmit buffer is reused only while the connection's own is empty and
/// smaller: pending bytes are never dropped, and the larger allocation is kept.
#[test]
fn recycled_transmit_buffers_keep_pending_bytes_and_capacity() {
    let (mut c, mut s) = pair(Policy::lossy_client(0), Policy::stateless_server(0));
    // The banner is pending: a recycled buffer must not replace it.
    c.recycle_transmit_buffer(Vec::with_capacity(1 << 20));
    let mut b = Vec::new();
    c.poll_transmit(&mut b);
    assert_eq!(&b[..8], b"ceph v2\n");
    s.handle_input(&b).unwrap();
    pump(&mut c, &mut s);
    assert!(c.is_ready());
    while s.poll_event().is_some() {}
    // Now empty: a big buffer is taken, a smaller one afterwards is not.
    c.recycle_transmit_buffer(b"junk".iter().copied().cycle().take(1 << 20).collect());
    c.recycle_transmit_buffer(Vec::with_capacity(100));
    c.send_message(msg(10, 0, 0)).unwrap();
    let mut b = Vec::new();
    let n = c.poll_transmit(&mut b);
    assert!(b.capacity() >= 1 << 20, "capacity {}", b.capacity());
    assert_eq!(b.len(), n);
    s.handle_input(&b).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Message(m)) if m.front == vec![1; 10]));
}

/// Only data of at least VECTORED_MIN bytes leaves as its own gather piece.
#[test]
fn vectored_transmit_threshold() {
    assert_eq!(VECTORED_MIN, 16 << 10);
    let (mut c, mut s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    c.set_vectored_transmit(true);
    for (len, pieces_want) in [(100, 1), (VECTORED_MIN - 1, 1), (VECTORED_MIN, 3)] {
        c.send_message(msg(10, 0, len)).unwrap();
        let mut pieces: Vec<Data> = Vec::new();
        let n = c.poll_transmit_vectored(&mut pieces);
        assert_eq!(n, pieces.iter().map(|p| p.len()).sum::<usize>());
        assert_eq!(pieces.len(), pieces_want, "data of {len} bytes");
        for p in &pieces {
            s.handle_input(&p[..]).unwrap();
        }
        assert!(matches!(s.poll_event(), Some(Event::Message(m)) if m.data.len() == len));
    }
    assert_eq!(c.session().unacked(), 0, "lossy: nothing kept for replay");
    // Off again: everything is copied into one buffer.
    c.set_vectored_transmit(false);
    c.send_message(msg(10, 0, VECTORED_MIN * 2)).unwrap();
    let mut pieces: Vec<Data> = Vec::new();
    c.poll_transmit_vectored(&mut pieces);
    assert_eq!(pieces.len(), 1);
}

/// The ready connection's timers: the idle deadline runs from the last tick that saw input,
/// the automatic KEEPALIVE2 from the last tick that saw output; a keepalive carries the time
/// since the connection was created.
#[test]
fn idle_and_keepalive_timers() {
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    let mut cfg = Config::clone(&client_cfg(Policy::lossy_client(0)));
    cfg.idle_timeout = 10 * sec;
    cfg.keepalive_interval = Some(3 * sec);
    let mut c = Connection::client(Arc::new(cfg), osd_addr(), EntityType::Osd, 5, t0);
    let mut s = Connection::server(
        server_cfg(Policy::stateless_server(0)),
        "127.0.0.1:40000".parse().unwrap(),
        9,
        t0,
    );
    pump(&mut c, &mut s);
    assert!(c.is_ready());
    while s.poll_event().is_some() {}
    // Nothing ticked yet: both deadlines still count from creation.
    assert_eq!(c.poll_timeout(), Some(t0 + 3 * sec));
    // The first tick notes the handshake's traffic in both directions.
    c.handle_timeout(t0 + sec).unwrap();
    assert!(!c.wants_transmit(), "no keepalive is due yet");
    assert_eq!(c.poll_timeout(), Some(t0 + 4 * sec));
    // Polling with nothing to send is not output.
    assert_eq!(c.poll_transmit(&mut Vec::new()), 0);
    c.handle_timeout(t0 + 4 * sec - Duration::from_nanos(1))
        .unwrap();
    assert!(!c.wants_transmit());
    c.handle_timeout(t0 + 4 * sec).unwrap();
    assert!(c.wants_transmit(), "3 s without output: KEEPALIVE2");
    let mut b = Vec::new();
    c.poll_transmit(&mut b);
    s.handle_input(&b).unwrap();
    assert_eq!(
        s.poll_event(),
        Some(Event::Keepalive(msgr2_codec::payload::UTime {
            sec: 4,
            nsec: 0
        }))
    );
    // The peer's answer is not delivered: the idle deadline stays at 1 s + 10 s.
    c.handle_timeout(t0 + 5 * sec).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + 8 * sec));
    c.handle_timeout(t0 + 8 * sec).unwrap();
    let mut b = Vec::new();
    c.poll_transmit(&mut b);
    s.handle_input(&b).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Keepalive(_))));
    c.handle_timeout(t0 + 10 * sec).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + 11 * sec));
    c.handle_timeout(t0 + 11 * sec - Duration::from_nanos(1))
        .unwrap();
    let e = c.handle_timeout(t0 + 11 * sec).unwrap_err();
    assert_eq!(e, ProtoError::IdleTimeout(10 * sec));
    assert_eq!(c.poll_timeout(), None, "a closed connection has no timer");
    assert!(matches!(
        c.handle_timeout(t0 + 20 * sec),
        Err(ProtoError::Closed(_))
    ));
}

/// Without an automatic keepalive, a ready connection's only timer is the idle deadline;
/// a faulted one (STANDBY) has none.
#[test]
fn idle_deadline_alone_and_none_when_faulted() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    let t = s.poll_timeout().unwrap();
    let idle = s.poll_timeout().unwrap();
    assert_eq!(t, idle);
    s.handle_timeout(t - Duration::from_secs(1)).unwrap();
    s.handle_eof();
    assert_eq!(s.state(), "STANDBY");
    assert_eq!(s.poll_timeout(), None);
    c.handle_eof();
    assert_eq!(c.state(), "BACKOFF");
    assert_eq!(c.poll_timeout(), None);
}

/// Receive-side zero copy: a ready crc connection inside a large data segment lends the
/// segment's buffer; the bytes written into it count as input (for the idle timer) once
/// returned, and the message arrives intact. Nothing is lent during the handshake or after
/// a fault.
#[test]
fn lent_rx_segments_complete_the_message() {
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    let mut scfg = Config::clone(&server_cfg(Policy::stateless_server(0)));
    scfg.idle_timeout = 100 * sec;
    let mut c = Connection::client(
        client_cfg(Policy::lossy_client(0)),
        osd_addr(),
        EntityType::Osd,
        5,
        t0,
    );
    let mut s = Connection::server(Arc::new(scfg), "127.0.0.1:40000".parse().unwrap(), 9, t0);
    // Handshake: the server is inside HELLO's payload segment, which is not lent.
    let mut hello = Vec::new();
    c.poll_transmit(&mut hello);
    let mut b = Vec::new();
    s.poll_transmit(&mut b);
    c.handle_input(&b).unwrap();
    c.poll_transmit(&mut hello);
    let banner_len = 10 + usize::from(u16::from_le_bytes([hello[8], hello[9]]));
    s.handle_input(&hello[..banner_len + 32 + 1]).unwrap();
    assert!(!s.is_ready());
    assert_eq!(s.rx_segment_left(), 0);
    assert!(s.lend_rx_segment(0).is_none());
    s.handle_input(&hello[banner_len + 33..]).unwrap();
    pump(&mut c, &mut s);
    assert!(s.is_ready());
    while s.poll_event().is_some() {}
    s.handle_timeout(t0 + sec).unwrap();

    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut m = Message::new(42, 1, 1, b"front".to_vec());
    m.data = data.clone().into();
    c.send_message(m).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    // Feed until inside the data segment.
    let mut pos = 0;
    while s.rx_segment_left() < 50_000 {
        s.handle_input(&wire[pos..pos + 64]).unwrap();
        pos += 64;
        assert!(pos < 1024, "never inside the data segment");
    }
    let left = s.rx_segment_left();
    s.handle_timeout(t0 + 2 * sec).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + 102 * sec));
    assert!(s.lend_rx_segment(left + 1).is_none(), "less than asked for");
    let (buf, off) = s.lend_rx_segment(left).unwrap();
    assert_eq!(s.rx_segment_left(), 0, "lent out");
    assert!(s.lend_rx_segment(0).is_none());
    // Given back empty: no input, the idle deadline stays.
    s.return_rx_segment(buf, 0).unwrap();
    s.handle_timeout(t0 + 3 * sec).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + 102 * sec));
    assert_eq!(s.rx_segment_left(), left);
    // Input pushed while the buffer is out is kept; until it is processed nothing is lent.
    let (buf, _) = s.lend_rx_segment(1).unwrap();
    s.handle_input(&wire[pos..pos + 100]).unwrap();
    assert_eq!(s.pending_input(), 100);
    s.return_rx_segment(buf, 0).unwrap();
    assert_eq!(s.rx_segment_left(), 0);
    assert!(s.lend_rx_segment(1).is_none());
    s.handle_input(&[]).unwrap();
    assert_eq!(s.pending_input(), 0);
    s.handle_timeout(t0 + 3 * sec + Duration::from_millis(500))
        .unwrap();
    pos += 100;
    let left = left - 100;
    assert_eq!(s.rx_segment_left(), left);
    let (mut buf, off2) = s.lend_rx_segment(1).unwrap();
    let off = off + 100;
    assert_eq!(off, off2);
    buf.make_mut()[off..off + left].copy_from_slice(&wire[pos..pos + left]);
    s.return_rx_segment(buf, left).unwrap();
    s.handle_timeout(t0 + 4 * sec).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + 104 * sec));
    s.handle_input(&wire[pos + left..]).unwrap();
    match s.poll_event() {
        Some(Event::Message(m)) => {
            assert_eq!(m.front, b"front");
            assert_eq!(m.data, data);
        }
        other => panic!("{other:?}"),
    }
    // After a fault nothing is lent, even inside a segment.
    let mut m = Message::new(42, 1, 1, Vec::new());
    m.data = data.clone().into();
    c.send_message(m).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    s.handle_input(&wire[..512]).unwrap();
    assert!(s.rx_segment_left() > 50_000);
    s.handle_socket_error("gone");
    assert_eq!(s.rx_segment_left(), 0);
    assert!(s.lend_rx_segment(0).is_none());
}

/// While a receive throttle is full a ready connection reads nothing and cannot idle out
/// (the application, not the peer, is what it waits for); a faulted one wants no input.
#[test]
fn a_throttled_connection_neither_reads_nor_idles() {
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    let mut scfg = Config::clone(&server_cfg(Policy::stateless_server(0)));
    scfg.idle_timeout = 100 * sec;
    scfg.dispatch_throttle = Arc::new(msgr2_proto::Throttle::new(1));
    let mut c = Connection::client(
        client_cfg(Policy::lossy_client(0)),
        osd_addr(),
        EntityType::Osd,
        5,
        t0,
    );
    let mut s = Connection::server(Arc::new(scfg), "127.0.0.1:40000".parse().unwrap(), 9, t0);
    pump(&mut c, &mut s);
    while s.poll_event().is_some() {}
    assert!(s.wants_input());
    assert_eq!(s.poll_timeout(), Some(t0 + 100 * sec));
    c.send_message(msg(8, 0, 0)).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    let held = s.poll_event();
    assert!(matches!(held, Some(Event::Message(_))));
    assert_eq!(s.pending_input(), 0);
    assert!(!s.wants_input(), "the throttle is full");
    assert_eq!(s.poll_timeout(), None, "no idle deadline while throttled");
    s.handle_timeout(t0 + 500 * sec).unwrap();
    assert!(s.is_ready());
    drop(held);
    assert!(s.wants_input());
    assert_eq!(s.poll_timeout(), Some(t0 + 600 * sec));
    s.handle_eof();
    assert!(!s.wants_input() && s.pending_input() == 0);
    assert!(!c.wants_input() || c.error().is_none());
    c.handle_socket_error("gone");
    assert!(!c.wants_input());
}

/// A message queued on a parked (STANDBY) non-server connection dials out at once; the
/// resumed session bumps `connect_seq` only when it exists on the server (a server cookie).
#[test]
fn standby_dials_out_for_a_new_message() {
    let (mut c, _s) = ready_pair(Policy::lossless_peer(0), Policy::lossless_peer(0));
    c.handle_eof();
    assert_eq!(c.state(), "STANDBY", "nothing to send: park");
    assert_eq!(c.poll_event(), None);
    c.send_message(msg(1, 0, 0)).unwrap();
    assert_eq!(c.state(), "BACKOFF");
    assert_eq!(
        c.poll_event(),
        Some(Event::Reconnect {
            delay: Duration::ZERO
        })
    );
    assert_eq!(c.session().connect_seq(), 1);
    // Never connected: no server cookie, connect_seq stays 0.
    let (mut c, _s) = pair(Policy::lossless_peer(0), Policy::lossless_peer(0));
    c.handle_socket_error("refused");
    assert_eq!(c.state(), "STANDBY");
    c.send_message(msg(1, 0, 0)).unwrap();
    assert_eq!(c.state(), "BACKOFF");
    assert_eq!(c.session().connect_seq(), 0);
}

/// Lossless sessions keep a vectored message for replay (sharing its data).
#[test]
fn vectored_lossless_messages_are_kept_for_replay() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    c.set_vectored_transmit(true);
    c.send_message(msg(10, 0, VECTORED_MIN)).unwrap();
    let mut pieces: Vec<Data> = Vec::new();
    c.poll_transmit_vectored(&mut pieces);
    assert_eq!(pieces.len(), 3);
    assert_eq!((c.session().out_seq(), c.session().unacked()), (1, 1));
    for p in &pieces {
        s.handle_input(&p[..]).unwrap();
    }
    assert!(matches!(s.poll_event(), Some(Event::Message(m)) if m.data.len() == VECTORED_MIN));
    pump(&mut c, &mut s);
    assert_eq!(c.session().unacked(), 0);
}

/// Queued messages are framed in batches: once TX_BATCH (4 MiB) bytes wait in the transmit
/// buffer the rest stays queued for the next call.
#[test]
fn messages_are_framed_in_batches_of_4_mib() {
    const TX_BATCH: usize = 4 << 20;
    let (mut c, mut s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    c.send_message(msg(100, 0, 0)).unwrap();
    let mut b = Vec::new();
    let overhead = c.poll_transmit(&mut b) - 100;
    s.handle_input(&b).unwrap();
    // A first message that fills the batch exactly, then a small one.
    c.send_message(msg(TX_BATCH - overhead, 0, 0)).unwrap();
    c.send_message(msg(1, 0, 0)).unwrap();
    let mut b = Vec::new();
    assert_eq!(c.poll_transmit(&mut b), TX_BATCH);
    assert_eq!(c.session().queued(), 1);
    assert!(c.wants_transmit());
    s.handle_input(&b).unwrap();
    let mut b = Vec::new();
    assert_eq!(c.poll_transmit(&mut b), overhead + 1);
    s.handle_input(&b).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.payload_len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![100, TX_BATCH - overhead, 1]);
}

/// A throttle is checked between frames only: a frame already being read when the budget
/// fills (another connection sharing it, or a smaller `max`) is read to its end and
/// delivered; the next one waits (Ceph throttles before reading a message).
#[test]
fn a_frame_in_progress_is_finished_when_the_throttle_fills() {
    let throttle = Arc::new(msgr2_proto::Throttle::new(1000));
    let mut scfg = Config::clone(&server_cfg(Policy::stateless_server(0)));
    scfg.dispatch_throttle = throttle.clone();
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
    c.send_message(msg(100, 0, 0)).unwrap();
    c.send_message(msg(200, 0, 0)).unwrap();
    c.send_message(msg(300, 0, 0)).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    // The first message and half of the second.
    let first_len = (wire.len() - 300 - 200 - 100) / 3 + 100;
    s.handle_input(&wire[..first_len + 50]).unwrap();
    let first = s.poll_event();
    assert!(matches!(&first, Some(Event::Message(m)) if m.front.len() == 100));
    assert_eq!(throttle.current(), 100);
    throttle.set_max(50);
    assert!(throttle.is_full());
    s.handle_input(&wire[first_len + 50..]).unwrap();
    let second = s.poll_event();
    assert!(matches!(&second, Some(Event::Message(m)) if m.front.len() == 200));
    assert!(s.poll_event().is_none(), "the third waits for the budget");
    assert!(s.pending_input() > 0);
    drop((first, second));
    s.handle_input(&[]).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Message(m)) if m.front.len() == 300));
}

/// A server waiting for the embedder's lookup reads nothing further: input is kept until
/// the lookup is resolved.
#[test]
fn input_waits_while_a_lookup_is_pending() {
    let mut scfg = Config::clone(&server_cfg(Policy::stateful_server(0)));
    scfg.session_lookup = true;
    let now = Instant::now();
    let mut c = Connection::client(
        client_cfg(Policy::lossless_client(0)),
        osd_addr(),
        EntityType::Osd,
        5,
        now,
    );
    let mut s = Connection::server(Arc::new(scfg), "127.0.0.1:40000".parse().unwrap(), 9, now);
    pump(&mut c, &mut s);
    assert_eq!(s.state(), "SESSION_LOOKUP");
    let lookup = match s.poll_event() {
        Some(Event::Lookup(l)) => l,
        other => panic!("{other:?}"),
    };
    assert!(!lookup.reconnect);
    assert!(!s.wants_input());
    // The client's next frame (a KEEPALIVE2) arrives early.
    let stamp = msgr2_codec::payload::UTime { sec: 7, nsec: 8 };
    let mut early = Vec::new();
    msgr2_codec::frame::assemble(
        msgr2_codec::banner::Revision::Rev1,
        msgr2_codec::frame::Tag::Keepalive2,
        &[(&p::Keepalive2 { timestamp: stamp }.to_bytes(), 8)],
        &mut early,
    );
    s.handle_input(&early).unwrap();
    assert_eq!(s.pending_input(), early.len());
    assert!(!s.wants_input());
    assert_eq!(s.poll_event(), None);
    assert_eq!(
        s.resolve_lookup(None).unwrap(),
        msgr2_proto::ExistingFate::None
    );
    assert!(s.is_ready());
    assert_eq!(s.pending_input(), 0);
    assert!(matches!(s.poll_event(), Some(Event::Ready(_))));
    assert_eq!(s.poll_event(), Some(Event::Keepalive(stamp)));
}
