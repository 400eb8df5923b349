//! Named session scenarios in the deterministic simulator: every failure scenario diagrammed
//! in Ceph's `doc/dev/msgr2.rst` ("Example of failure scenarios") and the historical Ceph
//! messenger bugs, each checked on the wire transcript and on what the applications saw.

#![allow(clippy::unwrap_used)]

use crate::sim;

use std::time::Duration;

use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::Tag;
use msgr2_codec::payload::Control;
use msgr2_proto::{ExistingFate, Policy, PolicySet};
use sim::{peers, LinkPlan, Side, Sim};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn osd_pair(p: Policy) -> (Sim, usize, usize) {
    let mut sim = Sim::new();
    let a = sim.add_node("osd.0", peers(p.clone()), true, |_| {});
    let b = sim.add_node("osd.1", peers(p), true, |_| {});
    (sim, a, b)
}

/// A lossless client (not listening) and an OSD treating clients as a stateful server.
fn client_server(server_client_policy: Policy) -> (Sim, usize, usize) {
    let mut sim = Sim::new();
    let c = sim.add_node(
        "client.4",
        PolicySet::new(Policy::lossless_client(0)),
        false,
        |_| {},
    );
    let o = sim.add_node(
        "osd.1",
        PolicySet::new(Policy::lossless_peer(0)).with(EntityType::Client, server_client_policy),
        true,
        |_| {},
    );
    (sim, c, o)
}

fn ids(r: std::ops::Range<u64>) -> Vec<u64> {
    r.collect()
}

fn client_cookies(sim: &Sim) -> Vec<u64> {
    sim.frames(Tag::ClientIdent)
        .iter()
        .filter_map(|w| match &w.control {
            Some(Control::ClientIdent(c)) => Some(c.client_cookie),
            _ => None,
        })
        .collect()
}

fn server_cookies(sim: &Sim) -> Vec<u64> {
    sim.frames(Tag::ServerIdent)
        .iter()
        .filter_map(|w| match &w.control {
            Some(Control::ServerIdent(s)) => Some(s.server_cookie),
            _ => None,
        })
        .collect()
}

fn resets(sim: &Sim, tag_full: bool) -> usize {
    sim.frames(Tag::SessionReset)
        .iter()
        .filter(|w| matches!(&w.control, Some(Control::SessionReset(r)) if r.full == tag_full))
        .count()
}

#[test]
fn smoke_lossless_peer_delivers() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    for i in 0..5 {
        sim.send(a, b, i);
    }
    sim.run_for(5 * S);
    assert_eq!(sim.received(b, a), ids(0..5), "{}", sim.dump());
    assert!(sim.ready(a, b) && sim.ready(b, a), "{}", sim.dump());
}

// --- doc/dev/msgr2.rst, "Example of failure scenarios" -----------------------------------

/// Diagram 1: the client's first CLIENT_IDENT is lost; the client reconnects with the same
/// cookie and a plain CLIENT_IDENT (no session exists yet), the server answers SERVER_IDENT.
#[test]
fn rst_client_ident_lost_then_client_reconnects() {
    let (mut sim, c, o) = client_server(Policy::stateful_server(0));
    sim.plan([LinkPlan::cut_on(Side::Client, "SESSION_CONNECTING")]);
    for i in 0..3 {
        sim.send(c, o, i);
    }
    sim.run_for(5 * S);
    assert_eq!(sim.received(o, c), ids(0..3), "{}", sim.dump());
    let cookies = client_cookies(&sim);
    assert_eq!(cookies.len(), 1, "the first CLIENT_IDENT never arrived");
    assert_eq!(
        cookies[0],
        sim.session(c, o).unwrap().session().client_cookie()
    );
    assert!(sim.frames(Tag::SessionReconnect).is_empty());
    assert_eq!(sim.frames(Tag::ServerIdent).len(), 1);
    assert!(sim.nodes[c].app.resets.is_empty() && sim.nodes[o].app.resets.is_empty());
    assert_eq!(sim.nodes[o].app.lookups, vec![Ok(ExistingFate::None)]);
}

/// Diagram 2: SERVER_IDENT(b) is lost; the client (still without a server cookie) sends
/// CLIENT_IDENT(a) again, the server finds the session with the same client cookie, takes it
/// over ("continue establishment") and answers SERVER_IDENT(c) with a new cookie. A message
/// the server had queued in the meantime is delivered once.
#[test]
fn rst_server_ident_lost_then_client_reconnects() {
    let (mut sim, c, o) = client_server(Policy::stateful_server(0));
    sim.plan([LinkPlan::cut_on(Side::Server, "READY")]);
    sim.send(c, o, 0);
    // the server's application sends as soon as it has the session: in the same write as
    // SERVER_IDENT, which is lost
    sim.send_later(o, c, 100);
    sim.run_for(5 * S);
    assert_eq!(sim.received(o, c), vec![0], "{}", sim.dump());
    assert_eq!(sim.received(c, o), vec![100], "{}", sim.dump());
    let cc = client_cookies(&sim);
    assert_eq!(cc.len(), 2, "{}", sim.dump());
    assert_eq!(cc[0], cc[1], "the client kept its cookie");
    let sc = server_cookies(&sim);
    assert_eq!(sc.len(), 1, "SERVER_IDENT(b) was lost, only (c) arrived");
    assert_eq!(
        sim.nodes[o].app.lookups,
        vec![Ok(ExistingFate::None), Ok(ExistingFate::TakenOver)]
    );
    assert!(sim.frames(Tag::SessionReconnect).is_empty());
    assert!(sim.nodes[c].app.resets.is_empty() && sim.nodes[o].app.resets.is_empty());
}

/// Diagram 3 and ceph/ceph#26256 ("respect policy.resetcheck on cookie==0"): SERVER_IDENT
/// is lost and the *server* reconnects first (it has messages queued; lossless peers dial
/// both ways). The original client has the session but no server cookie, so it must answer
/// SESSION_RESET(full=false) — a full reset would drop the server's queued messages. The
/// server then sends CLIENT_IDENT with the client's own cookie (a), which continues the
/// session, answered by SERVER_IDENT(c).
#[test]
fn rst_server_ident_lost_then_server_reconnects_bug_26256() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([LinkPlan::cut_on(Side::Server, "READY")]);
    sim.send(a, b, 0);
    sim.send_later(b, a, 100);
    sim.run_for(5 * S);
    assert_eq!(sim.received(b, a), vec![0], "{}", sim.dump());
    assert_eq!(sim.received(a, b), vec![100], "{}", sim.dump());
    let rec = sim.frames(Tag::SessionReconnect);
    assert_eq!(rec.len(), 1, "{}", sim.dump());
    assert_eq!(
        (rec[0].from, rec[0].to),
        (b, a),
        "the server side reconnected"
    );
    assert_eq!(resets(&sim, false), 1, "SESSION_RESET(full=false)");
    assert_eq!(resets(&sim, true), 0, "never a full reset");
    let cc = client_cookies(&sim);
    assert_eq!(cc.len(), 2);
    assert_eq!(
        cc[0], cc[1],
        "the server re-sent the original client cookie"
    );
    assert!(sim.nodes[a].app.resets.is_empty() && sim.nodes[b].app.resets.is_empty());
    assert!(sim.ready(a, b) && sim.ready(b, a));
}

/// Diagram 4: the connection fails after the session is established; the client sends
/// SESSION_RECONNECT(a, b) and gets SESSION_RECONNECT_OK; messages in flight at the fault
/// are replayed with their original sequence numbers and delivered once.
#[test]
fn rst_established_fault_then_client_reconnects() {
    let (mut sim, c, o) = client_server(Policy::stateful_server(0));
    sim.plan([LinkPlan {
        delay: 20 * MS,
        cut_at: Some(1010 * MS),
        ..Default::default()
    }]);
    for i in 0..10 {
        sim.send_at(ms(i * 100) + MS, c, o, i);
        sim.send_at(ms(i * 100) + 2 * MS, o, c, i);
    }
    sim.run_for(5 * S);
    assert_eq!(sim.received(o, c), ids(0..10), "{}", sim.dump());
    assert_eq!(sim.received(c, o), ids(0..10), "{}", sim.dump());
    assert_eq!(sim.frames(Tag::SessionReconnect).len(), 1);
    assert_eq!(sim.frames(Tag::SessionReconnectOk).len(), 1);
    assert_eq!(server_cookies(&sim).len(), 1, "no new session");
    assert!(sim.nodes[c].app.readies.contains(&(o, true)), "reconnected");
    assert!(sim.nodes[c].app.resets.is_empty() && sim.nodes[o].app.resets.is_empty());
}

/// Diagram 5: the server restarted (lost the session); the client's SESSION_RECONNECT(a, b)
/// finds nothing and is answered SESSION_RESET(full). The client drops its session, tells
/// its application (remote reset) and starts over with a new cookie: CLIENT_IDENT(c),
/// SERVER_IDENT(d).
#[test]
fn rst_server_reset_then_client_reconnects() {
    let (mut sim, c, o) = client_server(Policy::stateful_server(0));
    sim.plan([LinkPlan {
        delay: 20 * MS,
        ..Default::default()
    }]);
    for i in 0..3 {
        sim.send(c, o, i);
    }
    sim.run_for(S);
    sim.restart(o);
    // queued on the old session: the full reset drops it, and says so
    sim.send(c, o, 3);
    sim.run_for(S);
    sim.send(c, o, 4);
    sim.run_for(5 * S);
    assert_eq!(sim.received(o, c), vec![0, 1, 2, 4], "{}", sim.dump());
    assert_eq!(resets(&sim, true), 1, "{}", sim.dump());
    let cc = client_cookies(&sim);
    assert_eq!(cc.len(), 2);
    assert_ne!(cc[0], cc[1], "a new session has a new cookie");
    assert_eq!(server_cookies(&sim).len(), 2);
    assert_eq!(sim.nodes[c].app.resets.len(), 1);
    let (_, remote, dropped, _) = sim.nodes[c].app.resets[0];
    assert!(remote, "the application is told of the remote reset");
    assert_eq!(dropped, 1, "#3 was dropped with the session");
}

/// Diagram 6: the client restarted; its CLIENT_IDENT(c) meets the server's session (a, b):
/// the peer restarted. With `resetcheck` (stateful server) the server resets its side —
/// dropping what it had queued for the old client and telling its application — and answers
/// SERVER_IDENT(d). Without `resetcheck` (lossless peer) the session is taken over as is.
#[test]
fn rst_client_reset_then_client_reconnects() {
    for (policy, resetcheck) in [
        (Policy::stateful_server(0), true),
        (Policy::lossless_peer(0), false),
    ] {
        let (mut sim, c, o) = client_server(policy);
        sim.send(c, o, 0);
        sim.run_for(S);
        // the server queues a message, then the client process restarts
        sim.send(o, c, 100);
        sim.restart(c);
        sim.send(c, o, 1);
        sim.run_for(5 * S);
        assert_eq!(sim.received(o, c), vec![0, 1], "{}", sim.dump());
        let cc = client_cookies(&sim);
        assert_eq!(cc.len(), 2);
        assert_ne!(cc[0], cc[1]);
        let server_resets = &sim.nodes[o].app.resets;
        if resetcheck {
            assert_eq!(server_resets.len(), 1, "{}", sim.dump());
            assert!(server_resets[0].1, "remote reset");
            assert!(sim.received(c, o).is_empty(), "queued message dropped");
        } else {
            assert!(server_resets.is_empty(), "{}", sim.dump());
        }
        assert!(sim.ready(c, o) && sim.ready(o, c));
    }
}

// --- historical Ceph bugs ----------------------------------------------------------------

/// ceph/ceph#25343 ("do not trigger RESETSESSION from connect fault during connection
/// phase"): a fault before the session exists must not bump connect_seq, or the server sees
/// a reconnect for a session it never had, resets it, and queued messages are lost. Here
/// three handshakes fail at different points; the client keeps connect_seq 0, never sends
/// SESSION_RECONNECT, and everything queued arrives.
#[test]
fn bug_25343_handshake_faults_do_not_bump_connect_seq() {
    let (mut sim, c, o) = client_server(Policy::stateful_server(0));
    sim.plan([
        LinkPlan::cut_on(Side::Client, "AUTH_CONNECTING"),
        LinkPlan::cut_on(Side::Client, "SESSION_CONNECTING"),
        LinkPlan::cut(40),
    ]);
    for i in 0..5 {
        sim.send(c, o, i);
    }
    sim.run_for(10 * S);
    assert_eq!(sim.received(o, c), ids(0..5), "{}", sim.dump());
    assert!(sim.frames(Tag::SessionReconnect).is_empty());
    assert!(sim.frames(Tag::SessionReset).is_empty());
    assert_eq!(sim.session(c, o).unwrap().session().connect_seq(), 0);
    assert!(sim.link_count() >= 4);
    assert!(sim.nodes[c].app.resets.is_empty() && sim.nodes[o].app.resets.is_empty());
}

/// ceph/ceph#27359 ("fix the deadlock of lossless_peer connection"): both lossless peers
/// reconnect at once with equal connect_seq; one side must WAIT and the other win, and the
/// loser must come back with a higher connect_seq instead of both waiting forever.
#[test]
fn bug_27359_reconnect_race_converges() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([LinkPlan {
        delay: 5 * MS,
        cut_at: Some(505 * MS),
        ..Default::default()
    }]);
    for i in 0..6 {
        sim.send_at(ms(i * 100) + MS, a, b, i);
        sim.send_at(ms(i * 100) + MS, b, a, i);
    }
    sim.run_for(3 * S);
    assert_eq!(sim.received(b, a), ids(0..6), "{}", sim.dump());
    assert_eq!(sim.received(a, b), ids(0..6), "{}", sim.dump());
    let rec = sim.frames(Tag::SessionReconnect);
    assert!(rec.iter().any(|w| w.from == a) && rec.iter().any(|w| w.from == b));
    assert_eq!(sim.frames(Tag::Wait).len(), 1, "exactly one side waits");
    assert_eq!(
        sim.frames(Tag::Wait)[0].from,
        a,
        "osd.0 orders first and wins"
    );
    assert!(sim.ready(a, b) && sim.ready(b, a));
    assert!(sim.nodes[a].app.resets.is_empty() && sim.nodes[b].app.resets.is_empty());
}

/// The same race between two peers whose msgr2 addresses compare equal: Ceph's address rule
/// alone would make both sides WAIT forever; the total tie-break picks exactly one winner.
#[test]
fn race_with_identical_addresses_converges() {
    let mut sim = Sim::new();
    let p = peers(Policy::lossless_peer(0));
    let a = sim.add_node("osd.0", p.clone(), true, |_| {});
    let same = sim.nodes[a].config.my_addrs.clone();
    let b = sim.add_node("osd.1", p, true, |c| c.my_addrs = same.clone());
    sim.nodes[b].addr = sim.nodes[a].addr;
    sim.send(a, b, 0);
    sim.send(b, a, 0);
    sim.run_for(40 * S);
    assert_eq!(sim.received(b, a), vec![0], "{}", sim.dump());
    assert_eq!(sim.received(a, b), vec![0], "{}", sim.dump());
    assert!(sim.ready(a, b) && sim.ready(b, a), "{}", sim.dump());
}

/// ceph/ceph#25754, #26668 ("send keep alive if existing wins"): in a connection race the
/// existing connection wins, but it is dead (its packets vanish). The loser got WAIT and
/// backs off; the winner must notice on its own — its handshake times out
/// (`ms_connection_ready_timeout`) — and reconnect, so the session does not hang forever.
#[test]
fn bug_26668_race_winner_dead_is_detected() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([
        LinkPlan {
            blackhole: true,
            ..Default::default()
        },
        LinkPlan::default(),
    ]);
    sim.send(a, b, 0); // osd.0 → osd.1 on the dead link: this one wins the race
    sim.send_at(MS, b, a, 0); // osd.1 → osd.0: loses, gets WAIT
    sim.run_for(30 * S);
    assert_eq!(sim.frames(Tag::Wait).len(), 1, "{}", sim.dump());
    assert_eq!(sim.received(b, a), vec![0], "{}", sim.dump());
    assert_eq!(sim.received(a, b), vec![0], "{}", sim.dump());
    assert!(sim.nodes[a]
        .app
        .errors
        .iter()
        .any(|e| e.contains("handshake timed out")));
    assert!(sim.ready(a, b) && sim.ready(b, a));
}

/// The READY variant of the same lesson: the network silently drops everything (no EOF).
/// With keepalives and an idle timeout the dead connection faults and the session resumes
/// on a new one instead of hanging.
#[test]
fn silent_peer_faults_on_keepalive_timeout() {
    let mut sim = Sim::new();
    let p = peers(Policy::lossless_peer(0));
    let tweak = |c: &mut msgr2_proto::Config| {
        c.keepalive_interval = Some(S);
        c.idle_timeout = 5 * S;
    };
    let a = sim.add_node("osd.0", p.clone(), true, tweak);
    let b = sim.add_node("osd.1", p, true, tweak);
    sim.plan([LinkPlan {
        silence_at: Some(2 * S),
        ..Default::default()
    }]);
    sim.send(a, b, 0);
    sim.send_at(3 * S, a, b, 1);
    sim.run_for(20 * S);
    assert_eq!(sim.received(b, a), vec![0, 1], "{}", sim.dump());
    assert!(sim.nodes[a]
        .app
        .errors
        .iter()
        .any(|e| e.contains("peer silent")));
    assert_eq!(sim.frames(Tag::SessionReconnectOk).len(), 1);
    assert!(sim.ready(a, b) && sim.ready(b, a));
}

/// ceph/ceph#16009 ("fix very rarely send_message racing with fault"): a lossless
/// connection that faults before it is ready, with nothing queued, used to be stopped, and
/// a message sent at that moment was silently dropped. Here messages sent while the first
/// connection is failing and while a parked (STANDBY) session waits are all delivered.
#[test]
fn bug_16009_message_sent_during_fault_is_not_lost() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([LinkPlan::cut_on(Side::Client, "HELLO")]);
    sim.send(a, b, 0);
    // the first connection fails in its handshake and backs off: send into it
    sim.run_for(10 * MS);
    assert_eq!(sim.session(a, b).unwrap().state(), "BACKOFF");
    sim.send(a, b, 1);
    sim.run_for(2 * S);
    assert_eq!(sim.received(b, a), vec![0, 1], "{}", sim.dump());
    // now park both sides: cut an idle, fully acknowledged session
    sim.cut_session_link(a, b);
    sim.run_for(S);
    assert_eq!(
        sim.session(a, b).unwrap().state(),
        "STANDBY",
        "{}",
        sim.dump()
    );
    assert_eq!(sim.session(b, a).unwrap().state(), "STANDBY");
    sim.send(a, b, 2);
    sim.send(b, a, 0);
    sim.run_for(2 * S);
    assert_eq!(sim.received(b, a), vec![0, 1, 2], "{}", sim.dump());
    assert_eq!(sim.received(a, b), vec![0], "{}", sim.dump());
    assert!(sim.nodes[a].app.resets.is_empty() && sim.nodes[b].app.resets.is_empty());
}

// --- more races and network misbehaviour --------------------------------------------------

/// Both peers dial each other at the same instant with new sessions: one incoming
/// connection wins at both ends (the one from the lower address), the other gets WAIT.
#[test]
fn both_directions_at_once() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([
        LinkPlan {
            delay: 10 * MS,
            ..Default::default()
        },
        LinkPlan {
            delay: 10 * MS,
            ..Default::default()
        },
    ]);
    for i in 0..3 {
        sim.send(a, b, i);
        sim.send(b, a, i);
    }
    sim.run_for(30 * S);
    assert_eq!(sim.received(b, a), ids(0..3), "{}", sim.dump());
    assert_eq!(sim.received(a, b), ids(0..3), "{}", sim.dump());
    // osd.0 orders first: its connection wins at osd.1 (taking osd.1's fresh session over),
    // osd.1's connection gets WAIT at osd.0 (usually never delivered: osd.1 already dropped
    // that socket)
    assert_eq!(sim.nodes[b].app.lookups, vec![Ok(ExistingFate::TakenOver)]);
    assert_eq!(sim.nodes[a].app.lookups, vec![Ok(ExistingFate::Untouched)]);
    assert_eq!(sim.frames(Tag::ServerIdent).len(), 1, "one session");
    assert!(sim.ready(a, b) && sim.ready(b, a));
    assert_eq!(
        sim.live(a),
        1,
        "one connection left per side: {}",
        sim.dump()
    );
    assert_eq!(sim.live(b), 1);
}

/// The network duplicates a connection attempt: the client's bytes reach a second socket
/// at the server. The phantom takes the session over (same cookie), the real client's
/// connection is dropped, the client reconnects and takes it back; nothing is lost or
/// delivered twice.
#[test]
fn duplicate_connection_attempt_is_harmless() {
    let (mut sim, a, b) = osd_pair(Policy::lossless_peer(0));
    sim.plan([LinkPlan {
        duplicate: true,
        delay: 5 * MS,
        ..Default::default()
    }]);
    for i in 0..5 {
        sim.send_at(ms(i * 50), a, b, i);
        sim.send_at(ms(i * 50) + MS, b, a, i);
    }
    sim.run_for(20 * S);
    assert_eq!(sim.received(b, a), ids(0..5), "{}", sim.dump());
    assert_eq!(sim.received(a, b), ids(0..5), "{}", sim.dump());
    assert!(sim.ready(a, b) && sim.ready(b, a), "{}", sim.dump());
    assert!(sim.nodes[a].app.resets.is_empty() && sim.nodes[b].app.resets.is_empty());
}

/// A connection attempt delayed past the client's handshake timeout arrives after the
/// client's second attempt established the session: its CLIENT_IDENT carries an older
/// global_seq and is closed as stale without touching the session.
#[test]
fn delayed_stale_connection_is_closed() {
    let mut sim = Sim::new();
    let c = sim.add_node(
        "client.4",
        PolicySet::new(Policy::lossless_client(0)),
        false,
        |c| c.ready_timeout_secs = 13,
    );
    let o = sim.add_node(
        "osd.1",
        PolicySet::new(Policy::stateful_server(0)),
        true,
        |c| c.ready_timeout_secs = 60,
    );
    // 2 s each way: the client's CLIENT_IDENT leaves at 12 s (after the compression
    // exchange) and lands at 14 s, after the client gave up (13 s) and established the
    // session on a second connection
    sim.plan([LinkPlan {
        delay: 2 * S,
        ..Default::default()
    }]);
    sim.send(c, o, 0);
    sim.run_for(30 * S);
    assert_eq!(sim.received(o, c), vec![0], "{}", sim.dump());
    assert!(
        sim.nodes[o]
            .app
            .lookups
            .iter()
            .any(|l| matches!(l, Err(e) if e.contains("stale"))),
        "{:?}\n{}",
        sim.nodes[o].app.lookups,
        sim.dump()
    );
    assert!(sim.ready(c, o) && sim.ready(o, c));
    assert!(sim.nodes[c].app.resets.is_empty() && sim.nodes[o].app.resets.is_empty());
}

/// Lossy: a fault closes the connection on both sides, each application is told of the
/// reset, and the next message starts a brand-new session (CLIENT_IDENT, cookies 0).
#[test]
fn lossy_fault_reports_reset_and_starts_over() {
    let mut sim = Sim::new();
    let c = sim.add_node(
        "client.9",
        PolicySet::new(Policy::lossy_client(0)),
        false,
        |_| {},
    );
    let o = sim.add_node(
        "osd.0",
        PolicySet::new(Policy::stateless_registered_server(0)),
        true,
        |_| {},
    );
    sim.plan([LinkPlan {
        delay: 10 * MS,
        cut_at: Some(505 * MS),
        ..Default::default()
    }]);
    for i in 0..10 {
        sim.send_at(ms(i * 100), c, o, i);
    }
    sim.run_for(5 * S);
    let got = sim.received(o, c);
    assert!(
        got.len() < 10 && got.windows(2).all(|w| w[0] < w[1]),
        "{got:?}"
    );
    assert!(got.ends_with(&[6, 7, 8, 9]), "{got:?}\n{}", sim.dump());
    assert_eq!(sim.nodes[c].app.resets.len(), 1);
    assert_eq!(sim.nodes[o].app.resets.len(), 1);
    assert!(sim.frames(Tag::SessionReconnect).is_empty());
    assert_eq!(client_cookies(&sim), vec![0, 0]);
    assert_eq!(server_cookies(&sim), vec![0, 0]);
}

/// Lossy: the old connection is still READY at the server (the network never told it the
/// client went away) when the same client connects again: the old one is stopped, its reset
/// reported, and the new one serves the client.
#[test]
fn lossy_existing_connection_is_replaced() {
    let mut sim = Sim::new();
    let c = sim.add_node(
        "client.9",
        PolicySet::new(Policy::lossy_client(0)),
        false,
        |_| {},
    );
    let o = sim.add_node(
        "osd.0",
        PolicySet::new(Policy::stateless_registered_server(0)),
        true,
        |_| {},
    );
    sim.plan([LinkPlan {
        silence_at: Some(S),
        ..Default::default()
    }]);
    sim.send(c, o, 0);
    sim.run_for(2 * S);
    sim.restart(c); // the client's socket closes, but the server never hears of it
    sim.send(c, o, 1);
    sim.run_for(2 * S);
    assert_eq!(sim.received(o, c), vec![0, 1], "{}", sim.dump());
    assert!(sim.nodes[o]
        .app
        .lookups
        .contains(&Ok(ExistingFate::Stopped)));
    assert_eq!(sim.nodes[o].app.resets.len(), 1);
}

/// Three lossless peers talking all-to-all while links fail in every way the simulator
/// knows; every pair ends with its messages delivered exactly once, in order.
#[test]
fn three_peers_all_to_all_with_faults() {
    let mut sim = Sim::new();
    let p = peers(Policy::lossless_peer(0));
    let tweak = |c: &mut msgr2_proto::Config| {
        c.keepalive_interval = Some(2 * S);
        c.idle_timeout = 10 * S;
    };
    let n: Vec<usize> = (0..3)
        .map(|i| sim.add_node(&format!("osd.{i}"), p.clone(), true, tweak))
        .collect();
    sim.plan([
        LinkPlan::cut(300),
        LinkPlan::cut_on(Side::Server, "READY"),
        LinkPlan {
            duplicate: true,
            ..Default::default()
        },
        LinkPlan {
            blackhole: true,
            ..Default::default()
        },
        LinkPlan {
            cut_at: Some(3 * S),
            delay: 30 * MS,
            ..Default::default()
        },
        LinkPlan::cut_on(Side::Client, "SESSION_RECONNECTING"),
        LinkPlan {
            silence_at: Some(6 * S),
            chunk: 7,
            ..Default::default()
        },
        LinkPlan::cut(5000),
    ]);
    for k in 0..20u64 {
        for (i, &from) in n.iter().enumerate() {
            for &to in &n {
                if from != to {
                    sim.send_at(ms(k * 400 + i as u64 * 7), from, to, k);
                }
            }
        }
    }
    sim.run_until(60 * S);
    sim.heal();
    for &from in &n {
        for &to in &n {
            if from != to {
                sim.send_at(70 * S, from, to, 1000);
            }
        }
    }
    sim.run_until(150 * S);
    for &from in &n {
        for &to in &n {
            if from != to {
                let want: Vec<u64> = (0..20).chain([1000]).collect();
                assert_eq!(
                    sim.received(to, from),
                    want,
                    "n{from}→n{to}\n{}",
                    sim.tail()
                );
                assert!(
                    sim.ready(from, to),
                    "n{from}→n{to} not ready\n{}",
                    sim.tail()
                );
            }
        }
        assert!(sim.nodes[from].app.resets.is_empty(), "{}", sim.tail());
    }
}

/// The simulator seeds each node's `Config::random`: the same schedule gives the same
/// cookies and the same log, so a failing schedule replays exactly.
#[test]
fn a_seeded_schedule_replays_exactly() {
    let run = || {
        let (mut sim, c, o) = client_server(Policy::stateful_server(0));
        sim.plan([LinkPlan::cut_on(Side::Client, "SESSION_CONNECTING")]);
        for i in 0..3 {
            sim.send(c, o, i);
        }
        sim.run_for(5 * S);
        (client_cookies(&sim), server_cookies(&sim), sim.dump())
    };
    let (a, b) = (run(), run());
    assert!(!a.0.is_empty() && !a.1.is_empty());
    assert_eq!(a.0, b.0, "client cookies");
    assert_eq!(a.1, b.1, "server cookies");
    assert_eq!(a.2, b.2, "logs");
}

/// CLIENT_IDENT and SERVER_IDENT carry the sender's required features: its policy's plus
/// MSG_ADDR2, which every msgr2 peer requires.
#[test]
fn ident_frames_require_msg_addr2_and_the_policy_features() {
    use msgr2_proto::config::{FEATURE_MSG_ADDR2, FEATURE_SERVER_QUINCY};
    for req in [
        FEATURE_SERVER_QUINCY,
        FEATURE_SERVER_QUINCY | FEATURE_MSG_ADDR2,
    ] {
        let (mut sim, a, b) = osd_pair(Policy::lossless_peer(req));
        sim.send(a, b, 0);
        sim.run_for(5 * S);
        assert_eq!(sim.received(b, a), ids(0..1), "{}", sim.dump());
        let want = FEATURE_SERVER_QUINCY | FEATURE_MSG_ADDR2;
        let mut seen = 0;
        for w in sim.frames(Tag::ClientIdent) {
            if let Some(Control::ClientIdent(c)) = &w.control {
                assert_eq!(c.required_features, want);
                seen += 1;
            }
        }
        for w in sim.frames(Tag::ServerIdent) {
            if let Some(Control::ServerIdent(s)) = &w.control {
                assert_eq!(s.required_features, want);
                seen += 1;
            }
        }
        assert_eq!(seen, 2);
    }
}
