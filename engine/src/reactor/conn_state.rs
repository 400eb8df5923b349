//! A connection slot's lifecycle state ([`St`]) and its transitions.
//!
//! Connecting → Open → Closing is the plain life; a lossless session that faults goes Open
//! (or Connecting) → Faulted, and an accepted connection whose session lives on another core
//! goes Open → Moving. The reconnect time of a faulted session and the destination of a move
//! live in their variants, so they exist exactly while they mean something. What to submit
//! on a transition (cancellations, shutting the socket down) is the reactor's, beside the
//! call.

use std::time::Instant;

use msgr2_proto::Lookup;

/// A connection slot's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum St {
    /// The socket is connecting.
    Connecting,
    /// The socket is live.
    Open {
        /// A reconnect the protocol asked for before the socket was torn down: a fault found
        /// while handling received input is reported (its events, `Event::Reconnect` among
        /// them, dispatched) before the reactor's fault handling turns the slot
        /// [`St::Faulted`], which keeps this time. `None` while the protocol is healthy.
        reconnect_at: Option<Instant>,
    },
    /// The socket is gone (shut down, operations cancelled) but the lossless session is
    /// kept: waiting for the reconnect timer (`reconnect_at`), a message to send (STANDBY) or
    /// the peer to reconnect.
    Faulted {
        /// When the session dials again (`Event::Reconnect`); `None` once dialled, or when
        /// the protocol asked for no redial (it waits in STANDBY or for the peer).
        reconnect_at: Option<Instant>,
    },
    /// An accepted connection waiting for its operations to finish before it moves to the
    /// core owning its session.
    Moving {
        /// The core it moves to.
        target: usize,
        /// The session lookup to answer there.
        lookup: Lookup,
        /// Moves so far, this one included.
        hops: u8,
    },
    /// Closing for good: freed once its operations completed.
    Closing,
}

impl St {
    /// Whether the socket is live.
    pub(super) fn is_open(&self) -> bool {
        matches!(self, St::Open { .. })
    }

    /// Whether the slot is faulted (its lossless session kept).
    pub(super) fn is_faulted(&self) -> bool {
        matches!(self, St::Faulted { .. })
    }

    /// Whether the slot is moving to another core.
    pub(super) fn is_moving(&self) -> bool {
        matches!(self, St::Moving { .. })
    }

    /// The socket connected, or was accepted: it is live. A reconnect time already known
    /// (the slot faulted while its connect was completing) is kept.
    pub(super) fn open(&mut self) {
        let reconnect_at = match *self {
            St::Open { reconnect_at } | St::Faulted { reconnect_at } => reconnect_at,
            St::Connecting | St::Moving { .. } | St::Closing => None,
        };
        *self = St::Open { reconnect_at };
    }

    /// The socket of a live or connecting slot is torn down, its session kept: it turns
    /// [`St::Faulted`] (keeping a reconnect time already asked for). Returns whether it did;
    /// any other slot is left as it is.
    pub(super) fn fault(&mut self) -> bool {
        let reconnect_at = match *self {
            St::Open { reconnect_at } => reconnect_at,
            St::Connecting => None,
            St::Faulted { .. } | St::Moving { .. } | St::Closing => return false,
        };
        *self = St::Faulted { reconnect_at };
        true
    }

    /// The protocol asked to dial again at `at` (`Event::Reconnect`). Kept by a live or
    /// faulted slot; any other never dials again from this slot.
    pub(super) fn reconnect_at(&mut self, at: Instant) {
        if let St::Open { reconnect_at } | St::Faulted { reconnect_at } = self {
            *reconnect_at = Some(at);
        }
    }

    /// Whether a faulted slot's reconnect time has come (by `now`); if so it is consumed.
    pub(super) fn take_due_reconnect(&mut self, now: Instant) -> bool {
        match self {
            St::Faulted { reconnect_at } if reconnect_at.is_some_and(|t| t <= now) => {
                *reconnect_at = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_fault_keeps_a_reconnect_asked_for_while_open() {
        let now = Instant::now();
        let at = now + Duration::from_millis(5);
        let mut st = St::Connecting;
        st.open();
        assert_eq!(st, St::Open { reconnect_at: None });
        assert!(st.is_open());
        st.reconnect_at(at);
        assert!(st.is_open());
        // Only a faulted slot dials.
        assert!(!st.take_due_reconnect(at));
        assert!(st.fault());
        assert_eq!(
            st,
            St::Faulted {
                reconnect_at: Some(at)
            }
        );
        assert!(!st.fault());
        assert!(!st.take_due_reconnect(now));
        assert!(st.take_due_reconnect(at));
        assert_eq!(st, St::Faulted { reconnect_at: None });
        assert!(!st.take_due_reconnect(at + Duration::from_secs(1)));
    }

    #[test]
    fn a_connecting_slot_faults_without_a_reconnect_time() {
        let mut st = St::Connecting;
        assert!(st.fault());
        assert_eq!(st, St::Faulted { reconnect_at: None });
        let at = Instant::now();
        st.reconnect_at(at);
        assert_eq!(
            st,
            St::Faulted {
                reconnect_at: Some(at)
            }
        );
        // A connect completing after the teardown reopens it with the time kept.
        st.open();
        assert_eq!(
            st,
            St::Open {
                reconnect_at: Some(at)
            }
        );
    }

    #[test]
    fn closing_slots_neither_fault_nor_keep_reconnects() {
        let mut st = St::Closing;
        assert!(!st.fault());
        st.reconnect_at(Instant::now());
        assert_eq!(st, St::Closing);
        assert!(!st.take_due_reconnect(Instant::now()));
        assert!(!st.is_open() && !st.is_faulted() && !st.is_moving());
    }
}
