//! What a client does with the answers a server may give that a well-behaved pair of our
//! own connections never produces: AUTH_BAD_METHOD naming only methods already tried, and
//! SESSION_RETRY or WAIT to a SESSION_RECONNECT. The server's answer is forged on the wire.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::Tag;
use msgr2_codec::payload::{self as p, Control, AUTH_NONE, CON_MODE_CRC};
use msgr2_proto::{Config, Connection, Event, Policy, ProtoError};

use crate::conn_session::{client_cfg, osd_addr, pair, ready_pair, server_cfg};
use crate::wire::{control_of, frame, Splitter};

/// Forwards whole frames from `from` to `to` until `stop(tag)` holds for a frame `from`
/// sends (that frame is returned, not forwarded) or both sides are quiet.
fn forward_until(
    c: &mut Connection,
    s: &mut Connection,
    (cs, ss): (&mut Splitter, &mut Splitter),
    mut on_server_event: impl FnMut(&mut Connection, Event),
    stop_client: impl Fn(Tag) -> bool,
    stop_server: impl Fn(Tag) -> bool,
) -> Option<(bool, Vec<u8>)> {
    loop {
        let mut moved = false;
        let mut b = Vec::new();
        c.poll_transmit(&mut b);
        for (tag, raw) in cs.push(&b) {
            moved = true;
            if tag.is_some_and(&stop_client) {
                return Some((true, raw));
            }
            s.handle_input(&raw).unwrap();
            while let Some(ev) = s.poll_event() {
                on_server_event(s, ev);
            }
        }
        let mut b = Vec::new();
        s.poll_transmit(&mut b);
        for (tag, raw) in ss.push(&b) {
            moved = true;
            if tag.is_some_and(&stop_server) {
                return Some((false, raw));
            }
            c.handle_input(&raw).unwrap();
        }
        if !moved {
            return None;
        }
    }
}

/// A server that refuses the one method we offer and allows only that method again is a
/// rejection, not a loop of retries (`tried` filters the methods AUTH_BAD_METHOD allows).
#[test]
fn auth_bad_method_allowing_only_tried_methods_is_a_rejection() {
    let (mut c, mut s) = pair(Policy::lossy_client(0), Policy::stateless_server(0));
    let (mut cs, mut ss) = (Splitter::default(), Splitter::default());
    let stopped = forward_until(
        &mut c,
        &mut s,
        (&mut cs, &mut ss),
        |_, _| {},
        |_| false,
        |t| t == Tag::AuthDone,
    );
    assert!(matches!(stopped, Some((false, _))), "{stopped:?}");
    let bad = p::AuthBadMethod {
        method: AUTH_NONE,
        result: -13,
        allowed_methods: vec![AUTH_NONE],
        allowed_modes: vec![CON_MODE_CRC],
    };
    let err = c.handle_input(&frame(&bad)).unwrap_err();
    assert!(
        matches!(
            &err,
            ProtoError::AuthRejected { method: AUTH_NONE, result: -13, allowed_methods, .. }
                if allowed_methods == &[AUTH_NONE]
        ),
        "{err:?}"
    );
}

/// A lossless client reconnecting to a server with session lookups; returns both sides
/// stopped at the moment the server asks the embedder about the session, with the client's
/// SESSION_RECONNECT delivered.
fn reconnecting() -> (Connection, Connection, Splitter, p::SessionReconnect) {
    let (mut c, s) = ready_pair(Policy::lossless_client(0), Policy::stateful_server(0));
    c.handle_eof();
    drop(s);
    let mut old = Connection::client_with_session(
        client_cfg(Policy::lossless_client(0)),
        osd_addr(),
        EntityType::Osd,
        c.take_session(),
        2,
        Instant::now(),
    );
    let mut cfg = Config::clone(&server_cfg(Policy::stateful_server(0)));
    cfg.session_lookup = true;
    let mut s2 = Connection::server(
        std::sync::Arc::new(cfg),
        "127.0.0.1:40001".parse().unwrap(),
        9,
        Instant::now(),
    );
    let (mut cs, mut ss) = (Splitter::default(), Splitter::default());
    let Some((true, raw)) = forward_until(
        &mut old,
        &mut s2,
        (&mut cs, &mut ss),
        |_, _| {},
        |t| t == Tag::SessionReconnect,
        |_| false,
    ) else {
        panic!("no SESSION_RECONNECT")
    };
    let Control::SessionReconnect(r) = control_of(&raw) else {
        panic!()
    };
    (old, s2, cs, r)
}

/// SESSION_RETRY: the client reconnects again with the server's connect_seq + 1 (and the
/// same cookies and global_seq); WAIT: the attempt ends with [`ProtoError::Wait`], the
/// client backing off until the server's own connection attempt settles the race.
#[test]
fn session_retry_and_wait_answer_a_reconnect() {
    let (mut old, _s2, mut cs, first) = reconnecting();
    old.handle_input(&frame(&p::SessionRetry { connect_seq: 7 }))
        .unwrap();
    let mut b = Vec::new();
    old.poll_transmit(&mut b);
    let frames = cs.push(&b);
    assert_eq!(frames.len(), 1);
    let Control::SessionReconnect(second) = control_of(&frames[0].1) else {
        panic!("{:?}", frames[0].0)
    };
    assert_eq!(second.connect_seq, 8);
    assert_eq!(
        (
            second.client_cookie,
            second.server_cookie,
            second.global_seq
        ),
        (first.client_cookie, first.server_cookie, first.global_seq)
    );
    assert_eq!(old.state(), "SESSION_RECONNECTING");

    let (mut old, _s2, _cs, _) = reconnecting();
    assert_eq!(
        old.handle_input(&frame(&p::Wait {})).unwrap_err(),
        ProtoError::Wait
    );
}
