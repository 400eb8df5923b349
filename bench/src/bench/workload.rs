//! The client workload of one connection, independent of the transport: keep `depth`
//! messages in flight, time each from send to reply, count the payload bytes that made it.
//!
//! A transport drives it: it asks [`ConnWorkload::next_send`] for tids to send (each is
//! stamped as it is handed out) and reports replies with [`ConnWorkload::on_reply`]. Once the
//! shared stop flag is raised no new tids are handed out and the connection drains.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use msgr2_codec::data::Data;

use super::error::BenchError;

/// Latency histogram: nanoseconds, 1 ns to 1 h, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant, valid bounds")
}

/// Payloads at least this large are recycled through a [`PayloadPool`] rather than copied
/// from the template for every message.
pub const POOL_MIN: usize = 128 << 10;

/// Message payloads for the client, without a copy per large message.
///
/// Every send needs a buffer of the cell's size. Small ones are copied from a template (an
/// allocation and a memcpy, like any application building a message). Copying a 4 MiB
/// template for every message would cost the client as much as a third of what the kernel's
/// send path does and blur the ratios to raw, so in a loopback run the server hands the
/// buffers it received back through this pool, as shared [`Data`] handles (no copy), and the
/// client sends them again (they hold the same bytes). Across processes the client falls
/// back to copying.
#[derive(Debug)]
pub struct PayloadPool {
    bufs: Mutex<Vec<Data>>,
    max_bytes: usize,
}

impl PayloadPool {
    /// A pool holding up to `max_bytes` of buffers.
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            bufs: Mutex::new(Vec::new()),
            max_bytes,
        })
    }

    /// Returns a received payload to the pool (dropped if small or the pool is full).
    pub fn give(&self, buf: Data) {
        if buf.len() < POOL_MIN {
            return;
        }
        if let Ok(mut b) = self.bufs.lock() {
            let held: usize = b.iter().map(|d| d.len()).sum();
            if held + buf.len() <= self.max_bytes {
                b.push(buf);
            }
        }
    }

    /// A payload of `template`'s size and contents: recycled if one is pooled.
    pub fn take(&self, template: &[u8]) -> Data {
        if template.len() >= POOL_MIN {
            if let Ok(mut b) = self.bufs.lock() {
                if let Some(i) = b.iter().rposition(|v| v.len() == template.len()) {
                    return b.swap_remove(i);
                }
            }
        }
        template.to_vec().into()
    }
}

/// A payload for the next message: from `pool` if there is one, else a copy of `template`.
pub fn payload_for(pool: Option<&PayloadPool>, template: &[u8]) -> Data {
    match pool {
        Some(p) => p.take(template),
        None => template.to_vec().into(),
    }
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

    #[test]
    fn pool_recycles_large_buffers_only() {
        let pool = PayloadPool::new(1 << 20);
        let big = vec![7u8; POOL_MIN];
        pool.give(vec![1u8; 100].into());
        pool.give(vec![9u8; POOL_MIN].into());
        pool.give(vec![9u8; 2 * POOL_MIN].into());
        assert_eq!(pool.take(&big), vec![9u8; POOL_MIN]);
        assert_eq!(pool.take(&big), big);
        assert_eq!(payload_for(None, &[1, 2]), vec![1, 2]);
        for _ in 0..100 {
            pool.give(vec![0; POOL_MIN].into());
        }
        assert!(pool.bufs.lock().map(|b| b.len()).unwrap_or(0) <= 8);
    }
}
