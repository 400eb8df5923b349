//! Bad and hostile input, flow control and queueing between two in-memory connections: each
//! case ends in a typed error or the reply Ceph defines, never a panic, with memory bounded.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::wire::{control_of, frame, Splitter};
use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Revision;
use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::{assemble, FrameDecoder, FrameError, Limits, Preamble, SegmentDesc, Tag};
use msgr2_codec::msg::{MsgHeader2, PRIO_HIGH, PRIO_HIGHEST, PRIO_LOW};
use msgr2_codec::payload::{self as p, Control};
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{
    Config, Connection, Event, ExistingFate, Message, Policy, PolicySet, ProtoError, Throttle,
};

fn osd_addr() -> EntityAddr {
    "v2:127.0.0.1:6800/77".parse().unwrap()
}

fn client_cfg(policy: Policy, tweak: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut c = Config::new("client.4".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    c.policies = PolicySet::new(policy);
    c.nonce = 99;
    tweak(&mut c);
    Arc::new(c)
}

fn server_cfg(policy: Policy, tweak: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut c = Config::new("osd.3".parse().unwrap());
    c.my_addrs = EntityAddrVec(vec![osd_addr()]);
    c.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
    c.policies = PolicySet::new(policy);
    tweak(&mut c);
    Arc::new(c)
}

fn pair(c: Arc<Config>, s: Arc<Config>) -> (Connection, Connection) {
    let now = Instant::now();
    (
        Connection::client(c, osd_addr(), EntityType::Osd, 1, now),
        Connection::server(s, "127.0.0.1:40000".parse().unwrap(), 1, now),
    )
}

/// Shuttles whole frames both ways; `filter(from_client, tag)` may drop a frame.
fn pump_frames(
    c: &mut Connection,
    s: &mut Connection,
    mut keep: impl FnMut(bool, Option<Tag>) -> bool,
) -> Result<(), (bool, ProtoError)> {
    let (mut cs, mut ss) = (Splitter::default(), Splitter::default());
    loop {
        let mut moved = false;
        let mut b = Vec::new();
        c.poll_transmit(&mut b);
        for (tag, raw) in cs.push(&b) {
            moved = true;
            if keep(true, tag) {
                s.handle_input(&raw).map_err(|e| (false, e))?;
            }
        }
        let mut b = Vec::new();
        s.poll_transmit(&mut b);
        for (tag, raw) in ss.push(&b) {
            moved = true;
            if keep(false, tag) {
                c.handle_input(&raw).map_err(|e| (true, e))?;
            }
        }
        if !moved {
            return Ok(());
        }
    }
}

/// Shuttles raw bytes both ways until both are quiet (works at any point of a connection).
fn pump(c: &mut Connection, s: &mut Connection) -> Result<(), (bool, ProtoError)> {
    loop {
        let mut b = Vec::new();
        c.poll_transmit(&mut b);
        let mut moved = !b.is_empty();
        s.handle_input(&b).map_err(|e| (false, e))?;
        let mut b = Vec::new();
        s.poll_transmit(&mut b);
        moved |= !b.is_empty();
        c.handle_input(&b).map_err(|e| (true, e))?;
        if !moved {
            return Ok(());
        }
    }
}

fn message_frame(seq: u64, ack_seq: u64, front: &[u8]) -> Vec<u8> {
    let h = MsgHeader2 {
        seq,
        ack_seq,
        msg_type: 0x7fff,
        ..Default::default()
    }
    .to_bytes();
    let mut f = Vec::new();
    assemble(Revision::Rev1, Tag::Message, &[(&h, 8), (front, 8)], &mut f);
    f
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn ready_pair(policy_c: Policy, policy_s: Policy) -> (Connection, Connection) {
    let (mut c, mut s) = pair(client_cfg(policy_c, |_| {}), server_cfg(policy_s, |_| {}));
    pump(&mut c, &mut s).unwrap();
    assert!(c.is_ready() && s.is_ready());
    events(&mut c);
    events(&mut s);
    (c, s)
}

#[test]
fn message_before_ready_is_fatal_in_every_handshake_state() {
    // the server has verified the client's signature but not seen CLIENT_IDENT yet
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |_| {}),
        server_cfg(Policy::stateless_server(0), |_| {}),
    );
    pump_frames(&mut c, &mut s, |from_c, tag| {
        !(from_c && tag == Some(Tag::ClientIdent))
    })
    .unwrap();
    assert_eq!(s.state(), "SESSION_ACCEPTING");
    let err = s.handle_input(&message_frame(1, 0, b"x")).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnexpectedFrame {
            tag: Tag::Message,
            state: "SESSION_ACCEPTING"
        }
    );
    assert!(s.is_closed(), "a half-accepted connection keeps nothing");
    // and the client, waiting for SERVER_IDENT
    assert_eq!(c.state(), "SESSION_CONNECTING");
    let err = c.handle_input(&message_frame(1, 0, b"x")).unwrap_err();
    assert!(matches!(
        err,
        ProtoError::UnexpectedFrame {
            tag: Tag::Message,
            ..
        }
    ));
}

#[test]
fn session_frames_in_the_wrong_state_are_fatal() {
    // SESSION_RECONNECT_OK to a client that sent CLIENT_IDENT (not SESSION_RECONNECT)
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossless_client(0), |_| {}),
        server_cfg(Policy::stateful_server(0), |_| {}),
    );
    pump_frames(&mut c, &mut s, |from_c, tag| {
        !(from_c && tag == Some(Tag::ClientIdent))
    })
    .unwrap();
    let err = c
        .handle_input(&frame(&p::SessionReconnectOk { msg_seq: 3 }))
        .unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnexpectedFrame {
            tag: Tag::SessionReconnectOk,
            state: "SESSION_CONNECTING"
        }
    );
    // SESSION_RESET sent to a server
    let err = s
        .handle_input(&frame(&p::SessionReset { full: true }))
        .unwrap_err();
    assert!(matches!(
        err,
        ProtoError::UnexpectedFrame {
            tag: Tag::SessionReset,
            ..
        }
    ));
    // WAIT, SERVER_IDENT and HELLO on a ready connection
    for f in [
        frame(&p::Wait {}),
        frame(&p::SessionRetry { connect_seq: 1 }),
        frame(&p::Hello {
            entity_type: EntityType::Osd,
            peer_addr: osd_addr(),
        }),
    ] {
        let (mut c, _s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
        let err = c.handle_input(&f).unwrap_err();
        assert!(
            matches!(err, ProtoError::UnexpectedFrame { state: "READY", .. }),
            "{err:?}"
        );
    }
}

#[test]
fn ack_for_a_seq_never_sent_is_a_typed_error() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    c.send_message(Message::new(1, 1, 1, vec![1])).unwrap();
    pump(&mut c, &mut s).unwrap();
    assert_eq!(c.session().out_seq(), 1);
    let err = c.handle_input(&frame(&p::Ack { seq: 5 })).unwrap_err();
    assert_eq!(err, ProtoError::AckBeyondSent { ack: 5, out_seq: 1 });
    // a lossless session survives the fault for a reconnect
    assert_eq!(c.state(), "BACKOFF");
    // the same via a MESSAGE's piggybacked ack_seq
    let (_c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    let err = s.handle_input(&message_frame(1, 9, b"x")).unwrap_err();
    assert_eq!(err, ProtoError::AckBeyondSent { ack: 9, out_seq: 0 });
}

#[test]
fn reconnect_with_unknown_cookies_gets_full_reset() {
    // a lossless session with cookies, then its connection dies
    let (mut c, s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    c.send_message(Message::new(1, 1, 1, vec![1])).unwrap();
    c.send_message(Message::new(1, 1, 1, vec![2])).unwrap();
    let mut lost = Vec::new();
    c.poll_transmit(&mut lost); // written, never delivered
    let _ = c.handle_eof();
    assert_eq!(c.state(), "BACKOFF");
    assert!(matches!(events(&mut c)[..], [Event::Reconnect { .. }]));
    drop(s);
    // a server that has never heard of the session, with and without lookups
    for lookups in [true, false] {
        let mut old = Connection::client_with_session(
            client_cfg(Policy::lossless_client(0), |_| {}),
            osd_addr(),
            EntityType::Osd,
            c.take_session(),
            2,
            Instant::now(),
        );
        let mut s2 = Connection::server(
            server_cfg(Policy::stateful_server(0), |c| c.session_lookup = lookups),
            "127.0.0.1:40001".parse().unwrap(),
            9,
            Instant::now(),
        );
        let mut replies = Vec::new();
        let mut ss = Splitter::default();
        let mut cs = Splitter::default();
        loop {
            let mut b = Vec::new();
            old.poll_transmit(&mut b);
            let mut moved = false;
            for (_, raw) in cs.push(&b) {
                moved = true;
                s2.handle_input(&raw).unwrap();
                while let Some(ev) = s2.poll_event() {
                    if let Event::Lookup(l) = ev {
                        assert!(l.reconnect || replies.contains(&Tag::SessionReset));
                        assert_eq!(s2.resolve_lookup(None).unwrap(), ExistingFate::None);
                    }
                }
            }
            let mut b = Vec::new();
            s2.poll_transmit(&mut b);
            for (tag, raw) in ss.push(&b) {
                moved = true;
                if let Some(t) = tag {
                    if t == Tag::SessionReset {
                        let f = control_of(&raw);
                        assert_eq!(f, Control::SessionReset(p::SessionReset { full: true }));
                    }
                    replies.push(t);
                }
                old.handle_input(&raw).unwrap();
            }
            if !moved {
                break;
            }
        }
        assert!(replies.contains(&Tag::SessionReset), "{replies:?}");
        assert!(old.is_ready() && s2.is_ready());
        // the client learned its session is gone, with the two unacknowledged messages
        let ev = events(&mut old);
        assert!(
            ev.contains(&Event::Reset {
                remote: true,
                dropped: 2
            }) || !lookups,
            "{ev:?}"
        );
        c = old;
        let _ = c.handle_eof();
    }
}

#[test]
fn huge_front_length_is_refused_before_any_allocation() {
    let (_c, mut s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    let pre = Preamble::new(
        Tag::Message,
        &[
            SegmentDesc { len: 41, align: 8 },
            SegmentDesc {
                len: 0x8000_0000,
                align: 8,
            },
        ],
    )
    .encode();
    let err = s.handle_input(&pre).unwrap_err();
    assert!(
        matches!(err, ProtoError::Frame(FrameError::SegmentTooLong { .. })),
        "{err:?}"
    );
    assert!(matches!(
        s.handle_input(&[0; 64]),
        Err(ProtoError::Closed(_))
    ));
}

#[test]
fn receive_throttle_stops_reading_until_the_application_lets_go() {
    let throttle = Arc::new(Throttle::new(1000));
    let t = throttle.clone();
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |_| {}),
        server_cfg(Policy::stateless_server(0), move |c| {
            c.dispatch_throttle = t
        }),
    );
    pump(&mut c, &mut s).unwrap();
    events(&mut s);
    // a message larger than the whole budget is admitted when the budget is free (Ceph's
    // rule), the next one waits
    let mut big = Message::new(1, 1, 1, vec![]);
    big.data = vec![7; 4000].into();
    c.send_message(big).unwrap();
    c.send_message(Message::new(2, 1, 1, vec![1; 10])).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    let mut ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert_eq!(throttle.current(), 4000);
    assert!(!s.wants_input());
    assert!(s.pending_input() > 0);
    // more input is kept, not parsed
    s.handle_input(&[]).unwrap();
    assert!(events(&mut s).is_empty());
    // the application drops the message: the budget returns, reading resumes
    ev.clear();
    assert_eq!(throttle.current(), 0);
    assert!(s.wants_input() || s.pending_input() > 0);
    s.handle_input(&[]).unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[..], [Event::Message(m)] if m.header.msg_type == 2));
    assert_eq!(s.pending_input(), 0);
    // per-policy message throttle: one message at a time
    let msgs = Arc::new(Throttle::new(1));
    let m2 = msgs.clone();
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |_| {}),
        server_cfg(
            Policy::stateless_server(0).with_throttles(None, Some(m2)),
            |_| {},
        ),
    );
    pump(&mut c, &mut s).unwrap();
    events(&mut s);
    for i in 0..3 {
        c.send_message(Message::new(i, 1, 1, vec![])).unwrap();
    }
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    let mut first = events(&mut s);
    assert_eq!(first.len(), 1);
    if let Event::Message(m) = &mut first[0] {
        m.release_throttle();
    }
    s.handle_input(&[]).unwrap();
    assert_eq!(events(&mut s).len(), 1);
    assert_eq!(msgs.current(), 0, "the event was dropped with its message");
}

#[test]
fn input_pushed_past_a_full_throttle_is_bounded() {
    let throttle = Arc::new(Throttle::new(1));
    let t = throttle.clone();
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |_| {}),
        server_cfg(Policy::stateless_server(0), move |c| {
            c.dispatch_throttle = t
        }),
    );
    pump(&mut c, &mut s).unwrap();
    events(&mut s);
    c.send_message(Message::new(1, 1, 1, vec![1; 8])).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    let _held = events(&mut s);
    // an embedder that ignores wants_input() and keeps pushing: 64 MiB are kept, not more
    let chunk = vec![0u8; 8 << 20];
    for _ in 0..8 {
        s.handle_input(&chunk).unwrap();
    }
    assert_eq!(s.pending_input(), 64 << 20);
    assert_eq!(
        s.handle_input(&[0]),
        Err(ProtoError::InputOverrun((64 << 20) + 1))
    );
    assert_eq!(s.pending_input(), 0);
}

#[test]
fn send_queue_is_bounded() {
    let (mut c, _s) = pair(
        client_cfg(Policy::lossless_client(0), |c| {
            c.max_queued_messages = 2;
            c.max_queued_bytes = 100;
        }),
        server_cfg(Policy::stateful_server(0), |_| {}),
    );
    c.send_message(Message::new(1, 1, 1, vec![0; 10])).unwrap();
    c.send_message(Message::new(1, 1, 1, vec![0; 10])).unwrap();
    assert_eq!(
        c.send_message(Message::new(1, 1, 1, vec![])),
        Err(ProtoError::QueueFull {
            messages: 2,
            bytes: 20
        })
    );
    let (mut c, _s) = pair(
        client_cfg(Policy::lossless_client(0), |c| c.max_queued_bytes = 100),
        server_cfg(Policy::stateful_server(0), |_| {}),
    );
    c.send_message(Message::new(1, 1, 1, vec![0; 90])).unwrap();
    assert!(matches!(
        c.send_message(Message::new(1, 1, 1, vec![0; 11])),
        Err(ProtoError::QueueFull { .. })
    ));
    // Exactly at the byte bound is still accepted.
    c.send_message(Message::new(1, 1, 1, vec![0; 10])).unwrap();
    assert_eq!(c.session().queued_bytes(), 100);
}

#[test]
fn priorities_highest_first_fifo_within() {
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |_| {}),
        server_cfg(Policy::stateless_server(0), |_| {}),
    );
    for (prio, ty) in [
        (PRIO_LOW, 1),
        (PRIO_HIGH, 2),
        (127, 3),
        (PRIO_HIGH, 4),
        (PRIO_HIGHEST, 5),
        (PRIO_LOW, 6),
    ] {
        let mut m = Message::new(ty, 1, 1, vec![]);
        m.header.priority = prio;
        c.send_message(m).unwrap();
    }
    pump(&mut c, &mut s).unwrap();
    let got: Vec<(u16, u64)> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.header.msg_type, m.header.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(5, 1), (2, 2), (4, 3), (3, 4), (1, 5), (6, 6)]);
}

#[test]
fn lossless_receiver_acks_when_idle_and_sender_trims() {
    let (mut c, mut s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    for i in 0..3 {
        c.send_message(Message::new(1, 1, 1, vec![i])).unwrap();
    }
    let mut b = Vec::new();
    c.poll_transmit(&mut b);
    s.handle_input(&b).unwrap();
    assert_eq!(c.session().unacked(), 3);
    // nothing to send back: the server writes a standalone ACK(3)
    assert!(s.wants_transmit());
    let mut b = Vec::new();
    s.poll_transmit(&mut b);
    let mut sp = Splitter {
        dec: Some(FrameDecoder::new(Revision::Rev1, Limits::default())),
        ..Default::default()
    };
    let frames = sp.push(&b);
    assert_eq!(frames.len(), 1);
    assert_eq!(control_of(&frames[0].1), Control::Ack(p::Ack { seq: 3 }));
    c.handle_input(&b).unwrap();
    assert_eq!(c.session().unacked(), 0);
    assert!(!s.wants_transmit(), "one ack is enough");
    // lossy sessions never send ACK frames
    let (mut c, mut s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    c.send_message(Message::new(1, 1, 1, vec![])).unwrap();
    pump(&mut c, &mut s).unwrap();
    assert!(!s.wants_transmit());
    assert_eq!(c.session().unacked(), 0);
}

#[test]
fn gaps_are_tolerated_and_duplicates_dropped() {
    let (_c, mut s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    s.handle_input(&message_frame(1, 0, b"a")).unwrap();
    s.handle_input(&message_frame(4, 0, b"b")).unwrap(); // 2 and 3 never came (aborted)
    s.handle_input(&message_frame(3, 0, b"c")).unwrap(); // old: dropped
    s.handle_input(&message_frame(4, 0, b"d")).unwrap(); // duplicate: dropped
    let seqs: Vec<u64> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.header.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 4]);
    assert_eq!(s.session().in_seq(), 4);
}

#[test]
fn idle_peer_faults_and_lossy_reports_reset() {
    let (mut c, _s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    let t0 = Instant::now();
    let deadline = c.poll_timeout().unwrap();
    assert!(deadline >= t0 + Duration::from_secs(899));
    // the first tick only learns that input arrived since the last one
    c.handle_timeout(deadline).unwrap();
    let deadline = c.poll_timeout().unwrap();
    let err = c.handle_timeout(deadline).unwrap_err();
    assert_eq!(err, ProtoError::IdleTimeout(Duration::from_secs(900)));
    assert_eq!(
        events(&mut c),
        vec![Event::Reset {
            remote: false,
            dropped: 0
        }]
    );
    assert!(c.is_closed());
}

#[test]
fn keepalives_are_sent_on_their_own_and_answered() {
    let (mut c, mut s) = pair(
        client_cfg(Policy::lossy_client(0), |c| {
            c.keepalive_interval = Some(Duration::from_secs(5))
        }),
        server_cfg(Policy::stateless_server(0), |_| {}),
    );
    // queued before READY: sent once ready (Ceph queues it the same way)
    c.send_keepalive(p::UTime { sec: 1, nsec: 2 }).unwrap();
    pump(&mut c, &mut s).unwrap();
    assert!(events(&mut s).contains(&Event::Keepalive(p::UTime { sec: 1, nsec: 2 })));
    assert!(events(&mut c).contains(&Event::KeepaliveAck(p::UTime { sec: 1, nsec: 2 })));
    // ticks: the first notes the handshake's traffic, the next finds 5 s of silence
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t).unwrap();
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t).unwrap();
    assert!(c.wants_transmit());
    pump(&mut c, &mut s).unwrap();
    assert!(events(&mut s)
        .iter()
        .any(|e| matches!(e, Event::Keepalive(_))));
}

#[test]
fn resolve_lookup_without_a_lookup_is_an_error() {
    let (mut c, _s) = ready_pair(Policy::lossy_client(0), Policy::stateless_server(0));
    assert_eq!(
        c.resolve_lookup(None),
        Err(ProtoError::NoLookupPending("READY"))
    );
    assert!(matches!(
        c.reconnect(5, Instant::now()),
        Err(ProtoError::NotFaulted("READY"))
    ));
}

/// Two lossless peers with one-message receive throttles and tiny send queues, each
/// holding every received message until its reply is queued: input never waits for output,
/// so the exchange completes instead of deadlocking.
#[test]
fn tight_throttles_and_queues_do_not_deadlock_two_lossless_peers() {
    let tc = Arc::new(Throttle::new(1));
    let ts = Arc::new(Throttle::new(1));
    let (mut c, mut s) = pair(
        client_cfg(
            Policy::lossless_client(0).with_throttles(None, Some(tc)),
            |c| c.max_queued_messages = 2,
        ),
        server_cfg(
            Policy::stateful_server(0).with_throttles(None, Some(ts)),
            |c| c.max_queued_messages = 2,
        ),
    );
    const N: u16 = 200;
    let mut next = 0u16;
    let (mut got_c, mut got_s) = (0u16, 0u16);
    // replies not queued yet (the queue was full), with the message they answer
    let mut pending_c: Vec<(Message, Message)> = Vec::new();
    let mut pending_s: Vec<(Message, Message)> = Vec::new();
    for _round in 0..100_000 {
        // the client keeps offering new requests
        while next < N && c.send_message(Message::new(next, 1, 1, vec![])).is_ok() {
            next += 1;
        }
        pump(&mut c, &mut s).unwrap();
        for (conn, got, pending, answers) in [
            (&mut s, &mut got_s, &mut pending_s, true),
            (&mut c, &mut got_c, &mut pending_c, false),
        ] {
            while let Some(ev) = conn.poll_event() {
                if let Event::Message(m) = ev {
                    *got += 1;
                    let reply = Message::new(m.header.msg_type, 1, 1, vec![1]);
                    pending.push((m, reply));
                }
            }
            // answer what we hold; a held message is released once its reply is queued
            let mut keep = Vec::new();
            for (held, reply) in pending.drain(..) {
                // the client does not answer the server's answers
                if !answers {
                    drop(held);
                    continue;
                }
                match conn.send_message(reply.clone()) {
                    Ok(()) => drop(held),
                    Err(ProtoError::QueueFull { .. }) => keep.push((held, reply)),
                    Err(e) => panic!("{e}"),
                }
            }
            *pending = keep;
            conn.handle_input(&[]).unwrap();
        }
        if got_s == N && got_c == N {
            return;
        }
    }
    panic!("stuck: server got {got_s}, client got {got_c} of {N}");
}

/// Vectored transmit: large message data leaves as its own piece (lossy sessions hand the
/// buffer over, lossless ones share it with the copy kept for replay), and the pieces
/// concatenated are the same frames the peer decodes.
#[test]
fn vectored_transmit_moves_large_data() {
    for (cp, sp, moved) in [
        (Policy::lossy_client(0), Policy::stateless_server(0), true),
        (Policy::lossless_client(0), Policy::stateful_server(0), true),
    ] {
        let (mut c, mut s) = pair(client_cfg(cp, |_| {}), server_cfg(sp, |_| {}));
        c.set_vectored_transmit(true);
        pump(&mut c, &mut s).unwrap();
        assert!(c.is_ready() && s.is_ready());
        while s.poll_event().is_some() {}
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let small = vec![3u8; 100];
        for (i, d) in [&big, &small, &big].into_iter().enumerate() {
            let mut m = Message::new(42, 0, 0, vec![i as u8; 10]);
            m.header.tid = i as u64;
            m.data = d.clone().into();
            c.send_message(m).unwrap();
        }
        let mut pieces = Vec::new();
        let n = c.poll_transmit_vectored(&mut pieces);
        assert_eq!(n, pieces.iter().map(|p| p.len()).sum::<usize>());
        let data_pieces = pieces.iter().filter(|p| p.len() == big.len()).count();
        assert_eq!(data_pieces, if moved { 2 } else { 0 });
        assert!(!c.wants_transmit());
        // Deliver in odd chunks.
        let wire: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        for chunk in wire.chunks(4093) {
            s.handle_input(chunk).unwrap();
        }
        let mut got = Vec::new();
        while let Some(ev) = s.poll_event() {
            if let Event::Message(m) = ev {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 3);
        for (i, (m, d)) in got.iter().zip([&big, &small, &big]).enumerate() {
            assert_eq!(m.header.tid, i as u64);
            assert_eq!(&m.data, d);
            assert_eq!(m.front, vec![i as u8; 10]);
        }
        // The contiguous path still drains pieces queued for the vectored one.
        let mut m = Message::new(42, 0, 0, Vec::new());
        m.data = big.clone().into();
        c.send_message(m).unwrap();
        let mut b = Vec::new();
        c.poll_transmit(&mut b);
        s.handle_input(&b).unwrap();
        let mut n = 0;
        while let Some(ev) = s.poll_event() {
            if let Event::Message(m) = ev {
                assert_eq!(m.data, big);
                n += 1;
            }
        }
        assert_eq!(n, 1);
    }
}
