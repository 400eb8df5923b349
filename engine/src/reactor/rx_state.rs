//! A connection's receive side as one state: what reads its socket (nothing, a
//! provided-buffer receive, or a targeted receive into a lent segment buffer) and whether the
//! next provided-buffer receive is multishot or single-shot.
//!
//! Every transition is a method here and none submits anything: the reactor submits the SQE
//! a transition calls for (arming a receive, cancelling it, the targeted receive) beside the
//! call. The tests below walk the transitions without io_uring.
//!
//! One socket has one reader: a targeted receive starts only once no provided-buffer receive
//! is in flight, and none is armed while it is ([`Rx::Loan`]). A large segment arriving under
//! an armed receive first stops that receive ([`Rx::Stopping`]); the loan starts when its
//! final completion came.

/// Which provided-buffer receive a connection arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecvMode {
    /// One multishot receive fills provided buffers until it ends or is cancelled: what small
    /// messages streaming want.
    Multishot,
    /// Large messages are streaming: receive one provided buffer at a time (single-shot)
    /// rather than multishot, so that at most one buffer of the next large segment passes
    /// through a copy before its targeted receive starts. A multishot receive keeps filling
    /// buffers until its cancellation lands, which copied a large share of every 4 MiB
    /// message. Entered when a targeted receive completes ([`Rx::loan_done`]); left by a
    /// receive that filled its buffer without leading to one ([`Rx::full_buffer`]: small
    /// messages streaming go back to multishot).
    SingleShot,
}

/// What reads a connection's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rx {
    /// Nothing reads the socket; the next provided-buffer receive is armed as `next`.
    Idle {
        /// The kind of receive to arm next.
        next: RecvMode,
    },
    /// A provided-buffer receive is in flight.
    Armed {
        /// The receive's `user_data` (for cancelling it alone).
        ud: u64,
        /// The kind it was armed as; the kind armed after it, unless a full buffer switched
        /// back to multishot meanwhile.
        mode: RecvMode,
    },
    /// A large segment is arriving: the provided-buffer receive `ud` is being cancelled, and
    /// the rest of the segment is lent once that receive has ended.
    Stopping {
        /// The receive's `user_data`.
        ud: u64,
        /// As in [`Rx::Armed`].
        mode: RecvMode,
    },
    /// A targeted receive into a lent segment buffer is in flight (no other receive
    /// meanwhile).
    Loan,
}

impl Default for Rx {
    /// A new connection: nothing armed yet, multishot first.
    fn default() -> Self {
        Rx::Idle {
            next: RecvMode::Multishot,
        }
    }
}

impl Rx {
    /// Whether a provided-buffer receive is in flight (stopping or not).
    pub(super) fn is_armed(&self) -> bool {
        matches!(self, Rx::Armed { .. } | Rx::Stopping { .. })
    }

    /// The provided-buffer receive in flight, if any.
    pub(super) fn armed_ud(&self) -> Option<u64> {
        match *self {
            Rx::Armed { ud, .. } | Rx::Stopping { ud, .. } => Some(ud),
            Rx::Idle { .. } | Rx::Loan => None,
        }
    }

    /// Whether a targeted receive is in flight.
    pub(super) fn is_loan(&self) -> bool {
        matches!(self, Rx::Loan)
    }

    /// The kind of receive to arm, when nothing reads the socket (else none may be armed).
    pub(super) fn next_to_arm(&self) -> Option<RecvMode> {
        match *self {
            Rx::Idle { next } => Some(next),
            Rx::Armed { .. } | Rx::Stopping { .. } | Rx::Loan => None,
        }
    }

    /// The receive [`Rx::next_to_arm`] allowed was submitted as `ud`.
    pub(super) fn armed(&mut self, ud: u64) {
        debug_assert!(matches!(self, Rx::Idle { .. }), "arming over {self:?}");
        if let Rx::Idle { next } = *self {
            *self = Rx::Armed { ud, mode: next };
        }
    }

    /// The provided-buffer receive ended (its final completion), or the socket was torn down
    /// (every operation on it is being cancelled, and nothing re-arms it): nothing is armed.
    /// A targeted receive in flight stays so until [`Rx::loan_done`].
    pub(super) fn recv_ended(&mut self) {
        if let Rx::Armed { mode, .. } | Rx::Stopping { mode, .. } = *self {
            *self = Rx::Idle { next: mode };
        }
    }

    /// A large segment is arriving under the armed receive: stop it. Returns the receive to
    /// cancel, or none when it is already being stopped (or nothing is armed).
    pub(super) fn stop_for_loan(&mut self) -> Option<u64> {
        match *self {
            Rx::Armed { ud, mode } => {
                *self = Rx::Stopping { ud, mode };
                Some(ud)
            }
            Rx::Stopping { .. } | Rx::Idle { .. } | Rx::Loan => None,
        }
    }

    /// No loan can start now (the connection is no longer open, is draining, or a loan is in
    /// flight): a receive being stopped counts as merely armed again, so that a later large
    /// segment stops it anew.
    pub(super) fn abandon_loan(&mut self) {
        if let Rx::Stopping { ud, mode } = *self {
            *self = Rx::Armed { ud, mode };
        }
    }

    /// A targeted receive was submitted (only ever with nothing else reading the socket).
    pub(super) fn lent(&mut self) {
        debug_assert!(matches!(self, Rx::Idle { .. }), "lending over {self:?}");
        *self = Rx::Loan;
    }

    /// A targeted receive completed: large messages are streaming, so the following
    /// provided-buffer receives are single-shot ([`RecvMode::SingleShot`]).
    pub(super) fn loan_done(&mut self) {
        match self {
            Rx::Loan | Rx::Idle { .. } => {
                *self = Rx::Idle {
                    next: RecvMode::SingleShot,
                }
            }
            Rx::Armed { mode, .. } | Rx::Stopping { mode, .. } => *mode = RecvMode::SingleShot,
        }
    }

    /// A provided-buffer receive filled its whole buffer and started no targeted receive:
    /// small messages are streaming, which the multishot receive serves better. (A short one,
    /// the socket run dry e.g. between two large messages, keeps single-shot: the caller does
    /// not report it.) No effect while stopping for or running a loan.
    pub(super) fn full_buffer(&mut self) {
        match self {
            Rx::Idle { next: mode } | Rx::Armed { mode, .. } => *mode = RecvMode::Multishot,
            Rx::Stopping { .. } | Rx::Loan => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: RecvMode = RecvMode::Multishot;
    const SINGLE: RecvMode = RecvMode::SingleShot;

    #[test]
    fn a_new_connection_arms_multishot() {
        let mut rx = Rx::default();
        assert_eq!(rx.next_to_arm(), Some(MULTI));
        assert!(!rx.is_armed() && !rx.is_loan());
        rx.armed(7);
        assert_eq!(rx, Rx::Armed { ud: 7, mode: MULTI });
        assert!(rx.is_armed());
        assert_eq!(rx.armed_ud(), Some(7));
        assert_eq!(rx.next_to_arm(), None);
    }

    #[test]
    fn a_large_segment_stops_the_receive_once_then_lends() {
        let mut rx = Rx::Armed { ud: 3, mode: MULTI };
        assert_eq!(rx.stop_for_loan(), Some(3));
        assert!(matches!(rx, Rx::Stopping { .. }) && rx.is_armed());
        assert_eq!(rx.armed_ud(), Some(3));
        // A second completion of the same multishot receive cancels nothing more.
        assert_eq!(rx.stop_for_loan(), None);
        // Still filling buffers until the cancellation lands: no switch to multishot.
        rx.full_buffer();
        assert_eq!(rx, Rx::Stopping { ud: 3, mode: MULTI });
        assert_eq!(rx.next_to_arm(), None);
        rx.recv_ended();
        assert_eq!(rx, Rx::Idle { next: MULTI });
        rx.lent();
        assert!(rx.is_loan() && !rx.is_armed());
        assert_eq!(rx.armed_ud(), None);
        assert_eq!(rx.next_to_arm(), None);
        assert_eq!(rx.stop_for_loan(), None);
    }

    #[test]
    fn after_a_loan_receives_are_single_shot_until_a_full_buffer() {
        let mut rx = Rx::Loan;
        // A receive ending (a stale one after a teardown) leaves the loan alone.
        rx.recv_ended();
        assert_eq!(rx, Rx::Loan);
        rx.full_buffer();
        assert_eq!(rx, Rx::Loan);
        rx.loan_done();
        assert_eq!(rx.next_to_arm(), Some(SINGLE));
        rx.armed(9);
        assert_eq!(
            rx,
            Rx::Armed {
                ud: 9,
                mode: SINGLE
            }
        );
        rx.recv_ended();
        // A short receive (not reported) keeps single-shot...
        assert_eq!(rx.next_to_arm(), Some(SINGLE));
        // ...a full one that started no loan goes back to multishot.
        rx.full_buffer();
        assert_eq!(rx.next_to_arm(), Some(MULTI));
    }

    #[test]
    fn abandoning_a_loan_lets_a_later_segment_stop_the_receive_again() {
        let mut rx = Rx::Armed { ud: 5, mode: MULTI };
        assert_eq!(rx.stop_for_loan(), Some(5));
        rx.abandon_loan();
        assert_eq!(rx, Rx::Armed { ud: 5, mode: MULTI });
        assert_eq!(rx.stop_for_loan(), Some(5));
        // Abandoning is a no-op elsewhere.
        for mut other in [
            Rx::Idle { next: SINGLE },
            Rx::Loan,
            Rx::Armed {
                ud: 1,
                mode: SINGLE,
            },
        ] {
            let before = other;
            other.abandon_loan();
            assert_eq!(other, before);
        }
    }

    #[test]
    fn a_teardown_forgets_the_receive_and_keeps_the_mode() {
        for mode in [MULTI, SINGLE] {
            for mut rx in [Rx::Armed { ud: 2, mode }, Rx::Stopping { ud: 2, mode }] {
                rx.recv_ended();
                assert_eq!(rx, Rx::Idle { next: mode });
                rx.recv_ended();
                assert_eq!(rx, Rx::Idle { next: mode });
            }
        }
    }

    #[test]
    fn a_full_buffer_switches_an_armed_receive_back_to_multishot() {
        let mut rx = Rx::Armed {
            ud: 4,
            mode: SINGLE,
        };
        rx.full_buffer();
        assert_eq!(rx, Rx::Armed { ud: 4, mode: MULTI });
        rx.recv_ended();
        assert_eq!(rx.next_to_arm(), Some(MULTI));
    }

    #[test]
    fn a_loan_completion_sets_single_shot_whatever_else_is_armed() {
        let mut rx = Rx::Armed { ud: 8, mode: MULTI };
        rx.loan_done();
        assert_eq!(
            rx,
            Rx::Armed {
                ud: 8,
                mode: SINGLE
            }
        );
        let mut rx = Rx::Stopping { ud: 8, mode: MULTI };
        rx.loan_done();
        assert_eq!(
            rx,
            Rx::Stopping {
                ud: 8,
                mode: SINGLE
            }
        );
        let mut rx = Rx::Idle { next: MULTI };
        rx.loan_done();
        assert_eq!(rx, Rx::Idle { next: SINGLE });
    }
}
