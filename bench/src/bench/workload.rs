//! The client workload of one connection, independent of the transport: keep `depth`
//! messages in flight, time each from send to reply, count the payload bytes that made it.
//!
//! A transport drives it: it asks [`ConnWorkload::next_send`] for tids to send (each is
//! stamped as it is handed out) and reports replies with [`ConnWorkload::on_reply`]. Once the
//! shared stop flag is raised no new tids are handed out and the connection drains.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::error::BenchError;

/// Latency histogram: nanoseconds, 1 ns to 1 h, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant, valid bounds")
}

/// Bytes completed by one connection, readable from the progress thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Payload bytes acknowledged so far.
    pub bytes: AtomicU64,
    /// Messages acknowledged so far.
    pub msgs: AtomicU64,
}

/// The workload state of one client connection.
#[derive(Debug)]
pub struct ConnWorkload {
    size: u64,
    depth: usize,
    inflight: VecDeque<(u64, Instant)>,
    next_tid: u64,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    /// Send → reply latencies in nanoseconds.
    pub hist: Histogram<u64>,
    /// Payload bytes acknowledged.
    pub bytes: u64,
    /// Messages acknowledged.
    pub msgs: u64,
}

impl ConnWorkload {
    /// A workload sending `size`-byte messages with up to `depth` in flight until `stop`.
    pub fn new(size: u64, depth: usize, stop: Arc<AtomicBool>, progress: Arc<Progress>) -> Self {
        Self {
            size,
            depth: depth.max(1),
            inflight: VecDeque::with_capacity(depth.max(1)),
            next_tid: 1,
            stop,
            progress,
            hist: new_histogram(),
            bytes: 0,
            msgs: 0,
        }
    }

    /// Payload size of each message.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next tid to send now, if the window has room and the run is not stopping; the
    /// message counts as sent at `now`.
    pub fn next_send(&mut self, now: Instant) -> Option<u64> {
        if self.inflight.len() >= self.depth || self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let tid = self.next_tid;
        self.next_tid += 1;
        self.inflight.push_back((tid, now));
        Some(tid)
    }

    /// Records the reply to `tid`, received at `now`.
    pub fn on_reply(&mut self, tid: u64, now: Instant) -> Result<(), BenchError> {
        let pos = match self.inflight.front() {
            Some((t, _)) if *t == tid => 0,
            _ => self
                .inflight
                .iter()
                .position(|(t, _)| *t == tid)
                .ok_or_else(|| BenchError::Peer(format!("reply to tid {tid}, not in flight")))?,
        };
        let Some((_, sent)) = self.inflight.remove(pos) else {
            return Err(BenchError::Peer(format!(
                "reply to tid {tid}, not in flight"
            )));
        };
        let ns = now.saturating_duration_since(sent).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(ns);
        self.bytes += self.size;
        self.msgs += 1;
        self.progress.bytes.fetch_add(self.size, Ordering::Relaxed);
        self.progress.msgs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Stopping and nothing left in flight: the connection is done.
    pub fn drained(&self) -> bool {
        self.inflight.is_empty() && self.stop.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_replies_and_drain() {
        let stop = Arc::new(AtomicBool::new(false));
        let p = Arc::new(Progress::default());
        let mut w = ConnWorkload::new(4096, 2, stop.clone(), p.clone());
        let t = Instant::now();
        assert_eq!(w.next_send(t), Some(1));
        assert_eq!(w.next_send(t), Some(2));
        assert_eq!(w.next_send(t), None);
        assert!(w.on_reply(7, t).is_err());
        w.on_reply(2, t + std::time::Duration::from_micros(5))
            .expect("in flight");
        assert_eq!(w.next_send(t), Some(3));
        stop.store(true, Ordering::Relaxed);
        assert_eq!(w.next_send(t), None);
        w.on_reply(1, t).expect("in flight");
        assert!(!w.drained());
        w.on_reply(3, t).expect("in flight");
        assert!(w.drained());
        assert_eq!((w.bytes, w.msgs), (3 * 4096, 3));
        assert_eq!(p.bytes.load(Ordering::Relaxed), 3 * 4096);
        assert!(w.hist.value_at_quantile(1.0) >= 5000);
    }
}
