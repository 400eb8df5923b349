//! Receive throttles: budgets of message bytes or counts that received messages hold until
//! the application lets go of them.
//!
//! Ceph throttles a message before reading its body (`throttle_message`, `throttle_bytes`,
//! `throttle_dispatch_queue`) and releases the reservation when the message is destroyed.
//! Here a [`Connection`](crate::Connection) stops reading new frames while any of its
//! throttles is full, reserves a message's size from every throttle once the message is
//! complete, and hands the reservation to the application inside the [`Message`] as a
//! [`ThrottleGuard`]: dropping the message (or calling [`Message::release_throttle`]) gives
//! the budget back. A throttle never blocks on output, so two peers cannot deadlock through
//! it: the only thing that unblocks a full throttle is the application releasing messages.
//!
//! Because the size of a secure-mode frame is only known after reading it, one message may
//! overshoot the budget (Ceph likewise admits a message larger than the whole budget when the
//! budget is not already exceeded). Memory held is therefore at most `max` plus one message,
//! and one message is bounded by [`Limits`](msgr2_codec::frame::Limits).
//!
//! [`Message`]: crate::Message
//! [`Message::release_throttle`]: crate::Message::release_throttle

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shareable budget (bytes or messages). `max == 0` means unlimited, as in Ceph.
#[derive(Debug)]
pub struct Throttle {
    max: AtomicU64,
    current: AtomicU64,
}

impl Throttle {
    /// A throttle allowing `max` units in flight (0: unlimited).
    pub fn new(max: u64) -> Self {
        Self {
            max: AtomicU64::new(max),
            current: AtomicU64::new(0),
        }
    }

    /// The budget.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the budget (Ceph's `reset_max`); connections re-check it at their next frame.
    pub fn set_max(&self, max: u64) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Units currently held by received messages.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Whether a connection must stop reading: the budget is used up.
    pub fn is_full(&self) -> bool {
        let max = self.max();
        max != 0 && self.current() >= max
    }

    /// Reserves `n` units unconditionally (the caller checked [`Throttle::is_full`] before
    /// reading the message).
    pub fn take(&self, n: u64) {
        self.current.fetch_add(n, Ordering::Relaxed);
    }

    /// Returns `n` units.
    pub fn put(&self, n: u64) {
        let _ = self
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }
}

/// A received message's reservation on its connection's throttles; released on drop.
#[derive(Debug, Default)]
pub struct ThrottleGuard {
    held: Vec<(Arc<Throttle>, u64)>,
}

impl ThrottleGuard {
    /// Reserves `amount` from each throttle and returns the guard holding them.
    pub(crate) fn take(throttles: impl IntoIterator<Item = (Arc<Throttle>, u64)>) -> Self {
        let held: Vec<_> = throttles.into_iter().filter(|(_, n)| *n > 0).collect();
        for (t, n) in &held {
            t.take(*n);
        }
        Self { held }
    }

    /// Total units held on `throttle` (for tests and accounting).
    pub fn held_on(&self, throttle: &Arc<Throttle>) -> u64 {
        self.held
            .iter()
            .filter(|(t, _)| Arc::ptr_eq(t, throttle))
            .map(|(_, n)| *n)
            .sum()
    }
}

impl Drop for ThrottleGuard {
    fn drop(&mut self) {
        for (t, n) in self.held.drain(..) {
            t.put(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_releases_on_drop() {
        let t = Arc::new(Throttle::new(10));
        assert!(!t.is_full());
        let g = ThrottleGuard::take([(t.clone(), 7)]);
        assert_eq!((t.current(), g.held_on(&t)), (7, 7));
        assert!(!t.is_full());
        let g2 = ThrottleGuard::take([(t.clone(), 7)]);
        assert!(
            t.is_full(),
            "overshoot by one message is allowed, then full"
        );
        drop(g);
        assert!(!t.is_full());
        drop(g2);
        assert_eq!(t.current(), 0);
        t.put(5);
        assert_eq!(t.current(), 0, "never underflows");
        let unlimited = Throttle::new(0);
        unlimited.take(u64::MAX / 2);
        assert!(!unlimited.is_full());
    }

    /// Ceph's `reset_max`: a new budget applies at once; 0 lifts it.
    #[test]
    fn set_max_changes_the_budget() {
        let t = Throttle::new(10);
        assert_eq!(t.max(), 10);
        t.take(15);
        assert!(t.is_full());
        t.set_max(20);
        assert_eq!(t.max(), 20);
        assert!(!t.is_full());
        t.set_max(15);
        assert!(t.is_full());
        t.set_max(0);
        assert!(!t.is_full());
    }
}
