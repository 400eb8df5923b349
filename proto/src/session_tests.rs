//! Unit tests of `session.rs`.

use super::*;
use ExistingState::*;

fn ex() -> ExistingView {
    ExistingView {
        state: Connecting,
        lossy: false,
        policy_server: false,
        client_cookie: 7,
        server_cookie: 0,
        peer_global_seq: 5,
        connect_seq: 2,
        global_seq: 3,
    }
}
const IN: IncomingIdent = IncomingIdent {
    client_cookie: 9,
    global_seq: 10,
};
const LT: Ordering = Ordering::Less;
const GT: Ordering = Ordering::Greater;

// --- handle_existing_connection, one test per row --------------------------------------

#[test]
fn ident_row1_closed_existing_is_ignored() {
    let e = ExistingView {
        state: Closed,
        peer_global_seq: 99,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, true),
        IdentDecision::NewSession
    );
}

#[test]
fn ident_row2_replacing_gets_wait() {
    let e = ExistingView {
        state: Replacing,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, LT, true),
        IdentDecision::WaitReplacing
    );
}

#[test]
fn ident_row3_older_global_seq_is_stale() {
    let e = ExistingView {
        peer_global_seq: 11,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, LT, true),
        IdentDecision::CloseStale
    );
    // equal is not stale
    let e = ExistingView {
        peer_global_seq: 10,
        state: Ready,
        ..ex()
    };
    assert_ne!(
        decide_client_ident(&e, &IN, LT, true),
        IdentDecision::CloseStale
    );
}

#[test]
fn ident_row4_lossy_existing_is_replaced() {
    let e = ExistingView {
        lossy: true,
        state: Ready,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, false),
        IdentDecision::ReplaceLossy
    );
}

#[test]
fn ident_row5_cookie_change_means_peer_restarted() {
    let e = ExistingView {
        server_cookie: 3,
        state: Ready,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, true),
        IdentDecision::PeerRestarted { reset: true }
    );
    assert_eq!(
        decide_client_ident(&e, &IN, GT, false),
        IdentDecision::PeerRestarted { reset: false }
    );
}

#[test]
fn ident_row6_same_cookie_continues_establishment() {
    let e = ExistingView {
        client_cookie: 9,
        server_cookie: 3,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, true),
        IdentDecision::Continue
    );
    let e = ExistingView {
        client_cookie: 9,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, true),
        IdentDecision::Continue
    );
}

#[test]
fn ident_row7_ready_or_standby_is_taken_over() {
    for state in [Ready, Standby] {
        let e = ExistingView { state, ..ex() };
        assert_eq!(
            decide_client_ident(&e, &IN, GT, true),
            IdentDecision::TakeOverReady
        );
    }
}

#[test]
fn ident_row8_race_by_address_or_server_policy() {
    assert_eq!(
        decide_client_ident(&ex(), &IN, LT, true),
        IdentDecision::RaceWin
    );
    assert_eq!(
        decide_client_ident(&ex(), &IN, GT, true),
        IdentDecision::RaceLose
    );
    let e = ExistingView {
        policy_server: true,
        ..ex()
    };
    assert_eq!(
        decide_client_ident(&e, &IN, GT, true),
        IdentDecision::RaceWin
    );
    assert!(IdentDecision::RaceWin.takes_over() && !IdentDecision::RaceLose.takes_over());
}

// --- handle_reconnect, one test per row ------------------------------------------------

fn rex() -> ExistingView {
    ExistingView {
        server_cookie: 4,
        state: Ready,
        ..ex()
    }
}
const R: IncomingReconnect = IncomingReconnect {
    client_cookie: 7,
    global_seq: 10,
    connect_seq: 3,
};

#[test]
fn reconnect_row1_unknown_session_gets_full_reset() {
    assert_eq!(
        decide_reconnect(None, &R, LT, false),
        ReconnectDecision::Reset { full: true }
    );
}

#[test]
fn reconnect_row2_closed_existing_gets_full_reset() {
    let e = ExistingView {
        state: Closed,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, false),
        ReconnectDecision::Reset { full: true }
    );
}

#[test]
fn reconnect_row3_replacing_gets_retry_global() {
    let e = ExistingView {
        state: Replacing,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::RetryGlobal(5)
    );
}

#[test]
fn reconnect_row4_client_cookie_mismatch_resets_per_resetcheck() {
    let e = ExistingView {
        client_cookie: 8,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::Reset { full: true }
    );
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, false),
        ReconnectDecision::Reset { full: false }
    );
}

#[test]
fn reconnect_row5_no_server_cookie_resumes_establishment() {
    // ceph/ceph#26256: the reconnecting side knows the cookie, we never got SERVER_IDENT
    let e = ExistingView {
        server_cookie: 0,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::Reset { full: false }
    );
}

#[test]
fn reconnect_row6_stale_global_seq_retries_global() {
    let e = ExistingView {
        peer_global_seq: 11,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::RetryGlobal(11)
    );
    // An equal global_seq is not stale.
    let e = ExistingView {
        peer_global_seq: 10,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, GT, true),
        ReconnectDecision::Accept { race: false }
    );
}

#[test]
fn reconnect_row7_stale_connect_seq_retries() {
    let e = ExistingView {
        connect_seq: 4,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::Retry(4)
    );
}

#[test]
fn reconnect_row8_equal_connect_seq_is_a_race() {
    let e = ExistingView {
        connect_seq: 3,
        state: Connecting,
        ..rex()
    };
    assert_eq!(
        decide_reconnect(Some(&e), &R, GT, true),
        ReconnectDecision::Wait
    );
    assert_eq!(
        decide_reconnect(Some(&e), &R, LT, true),
        ReconnectDecision::Accept { race: true }
    );
    let s = ExistingView {
        policy_server: true,
        ..e
    };
    assert_eq!(
        decide_reconnect(Some(&s), &R, GT, true),
        ReconnectDecision::Accept { race: true }
    );
}

#[test]
fn reconnect_row9_newer_connect_seq_is_accepted() {
    assert_eq!(
        decide_reconnect(Some(&rex()), &R, GT, true),
        ReconnectDecision::Accept { race: false }
    );
}

// --- client reactions --------------------------------------------------------------------

#[test]
fn client_reactions() {
    assert_eq!(
        client_reaction(SessionReply::ReconnectOk(4), 2, 9),
        ClientAction::Resume { discard_up_to: 4 }
    );
    assert_eq!(
        client_reaction(SessionReply::Retry(5), 2, 9),
        ClientAction::Resend {
            connect_seq: 6,
            global_seq: 9
        }
    );
    assert_eq!(
        client_reaction(SessionReply::RetryGlobal(20), 2, 9),
        ClientAction::Resend {
            connect_seq: 2,
            global_seq: 21
        }
    );
    assert_eq!(
        client_reaction(SessionReply::RetryGlobal(3), 2, 9),
        ClientAction::Resend {
            connect_seq: 2,
            global_seq: 10
        },
        "get_global_seq(x) is max(counter, x) + 1"
    );
    assert_eq!(
        client_reaction(SessionReply::Reset { full: true }, 2, 9),
        ClientAction::NewSession { full: true }
    );
    assert_eq!(
        client_reaction(SessionReply::Reset { full: false }, 2, 9),
        ClientAction::NewSession { full: false }
    );
    assert_eq!(
        client_reaction(SessionReply::Wait, 2, 9),
        ClientAction::Wait
    );
}

// --- _fault ------------------------------------------------------------------------------

fn fi(phase: FaultPhase) -> FaultInput {
    FaultInput {
        lossy: false,
        phase,
        queue_empty: false,
        keepalive_pending: false,
        policy_server: false,
        policy_standby: false,
        has_server_cookie: true,
        attempt: 0,
    }
}
const I: Duration = Duration::from_millis(200);
const M: Duration = Duration::from_secs(15);

#[test]
fn fault_row1_lossy_closes_with_reset_except_while_connecting() {
    for p in [FaultPhase::Ready, FaultPhase::Accepting, FaultPhase::Wait] {
        let f = FaultInput {
            lossy: true,
            ..fi(p)
        };
        assert_eq!(
            fault_action(&f, I, M),
            FaultAction::Close { reset: true },
            "{p:?}"
        );
    }
    let f = FaultInput {
        lossy: true,
        ..fi(FaultPhase::Connecting)
    };
    assert!(matches!(
        fault_action(&f, I, M),
        FaultAction::Reconnect { .. }
    ));
}

#[test]
fn fault_row2_half_accepted_with_nothing_queued_closes() {
    let f = FaultInput {
        queue_empty: true,
        ..fi(FaultPhase::Accepting)
    };
    assert_eq!(fault_action(&f, I, M), FaultAction::Close { reset: false });
}

#[test]
fn fault_row3_standby_when_idle() {
    let f = FaultInput {
        policy_standby: true,
        queue_empty: true,
        ..fi(FaultPhase::Ready)
    };
    assert_eq!(fault_action(&f, I, M), FaultAction::Standby);
    // a pending keepalive or a WAIT keeps it reconnecting
    let f2 = FaultInput {
        keepalive_pending: true,
        ..f
    };
    assert!(matches!(
        fault_action(&f2, I, M),
        FaultAction::Reconnect { .. }
    ));
    let f3 = FaultInput {
        phase: FaultPhase::Wait,
        ..f
    };
    assert!(matches!(
        fault_action(&f3, I, M),
        FaultAction::Reconnect { .. }
    ));
}

#[test]
fn fault_row4_server_policy_always_stands_by() {
    let f = FaultInput {
        policy_server: true,
        ..fi(FaultPhase::Ready)
    };
    assert_eq!(fault_action(&f, I, M), FaultAction::Standby);
}

#[test]
fn fault_row5_ready_reconnects_at_once_with_connect_seq_bump() {
    let f = FaultInput {
        attempt: 5,
        ..fi(FaultPhase::Ready)
    };
    assert_eq!(
        fault_action(&f, I, M),
        FaultAction::Reconnect {
            delay: Duration::ZERO,
            bump_connect_seq: true,
            attempt: 0
        }
    );
}

#[test]
fn fault_row6_connecting_backs_off_and_bumps_only_with_a_server_cookie() {
    let f = FaultInput {
        has_server_cookie: false,
        ..fi(FaultPhase::Connecting)
    };
    assert_eq!(
        fault_action(&f, I, M),
        FaultAction::Reconnect {
            delay: I,
            bump_connect_seq: false,
            attempt: 1
        },
        "ceph/ceph#25343: no connect_seq bump before a session exists"
    );
    let f = FaultInput {
        attempt: 3,
        ..fi(FaultPhase::Connecting)
    };
    assert_eq!(
        fault_action(&f, I, M),
        FaultAction::Reconnect {
            delay: I * 8,
            bump_connect_seq: true,
            attempt: 4
        }
    );
    let f = FaultInput {
        attempt: 1,
        ..fi(FaultPhase::Wait)
    };
    assert_eq!(
        fault_action(&f, I, M),
        FaultAction::Reconnect {
            delay: M,
            bump_connect_seq: true,
            attempt: 2
        },
        "WAIT backs off the maximum and bumps connect_seq (ceph/ceph#27359)"
    );
}

#[test]
fn backoff_doubles_to_the_cap() {
    let d: Vec<_> = (0..10).map(|a| backoff(a, I, M)).collect();
    assert_eq!(d[0], Duration::ZERO);
    assert_eq!(d[1], Duration::from_millis(200));
    assert_eq!(d[2], Duration::from_millis(400));
    assert_eq!(d[7], Duration::from_millis(12800));
    assert_eq!(d[8], M);
    assert_eq!(backoff(u32::MAX, I, M), M);
}

#[test]
fn race_order_is_ceph_address_order_then_total() {
    let a: EntityAddr = "v2:10.0.0.1:6800/1"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    let b: EntityAddr = "v2:10.0.0.1:6800/256"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    // nonce little-endian bytes: 256 = 00 01.. orders before 1 = 01 00..
    assert_eq!(
        race_order(Some(&b), Some(&a), (1, 1), (9, 9)),
        Ordering::Less
    );
    assert_eq!(
        race_order(Some(&a), Some(&b), (1, 1), (9, 9)),
        Ordering::Greater
    );
    // tie on the address: the higher incoming global_seq wins, and the mirror loses
    assert_eq!(
        race_order(Some(&a), Some(&a), (5, 0), (4, 0)),
        Ordering::Less
    );
    assert_eq!(
        race_order(Some(&a), Some(&a), (4, 0), (5, 0)),
        Ordering::Greater
    );
    // then the cookie
    assert_eq!(race_order(None, None, (5, 8), (5, 7)), Ordering::Less);
    assert_eq!(race_order(None, None, (5, 7), (5, 8)), Ordering::Greater);
}

#[test]
fn requeue_and_discard_keep_original_seqs() {
    let mut s = Session::new(false);
    for i in 1..=5u64 {
        let mut m = Message::new(1, 1, 1, vec![i as u8]);
        m.header.seq = i;
        s.sent.push_back(m);
    }
    s.out_seq = 5;
    s.push(Message::new(2, 1, 1, vec![]));
    assert_eq!(s.ack(2), 2);
    s.requeue_sent();
    assert_eq!((s.out_seq, s.queued()), (2, 4));
    s.discard_requeued_up_to(3);
    assert_eq!((s.out_seq, s.queued()), (3, 3));
    let order: Vec<u64> = std::iter::from_fn(|| s.pop())
        .map(|m| m.header.seq)
        .collect();
    assert_eq!(order, vec![4, 5, 0], "requeued first, fresh message after");
}

#[test]
fn priorities_highest_first_fifo_within() {
    let mut s = Session::new(true);
    for (p, t) in [(64, 1), (196, 2), (127, 3), (196, 4), (64, 5)] {
        let mut m = Message::new(t, 1, 1, vec![]);
        m.header.priority = p;
        s.push(m);
    }
    let order: Vec<u16> = std::iter::from_fn(|| s.pop())
        .map(|m| m.header.msg_type)
        .collect();
    assert_eq!(order, vec![2, 4, 3, 1, 5]);
}
