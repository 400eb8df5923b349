//! Pieces shared by the criterion benches.

#![allow(dead_code, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use msgr2_codec::frame::Tag;
use msgr2_crypto::secure::{SecureRx, SecureTx};

/// The suite's criterion settings: short enough for a 2-core CI machine.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Times `iters` secure-frame opens: frames are sealed in batches of up to `batch` outside the
/// timed region by a sender that stays in step with the receiver (nonces advance per frame),
/// and only the receiver's `feed` of each batch is timed.
pub fn timed_open(
    iters: u64,
    batch: u64,
    tx: &mut SecureTx,
    rx: &mut SecureRx,
    segs: &[(&[u8], u16)],
    wire: &mut Vec<u8>,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(batch);
        wire.clear();
        for _ in 0..k {
            tx.seal_frame(Tag::Message, segs, wire).unwrap();
        }
        let start = Instant::now();
        let mut input = &wire[..];
        while !input.is_empty() {
            let (used, f) = rx.feed(input).unwrap();
            input = &input[used..];
            black_box(f);
        }
        total += start.elapsed();
        left -= k;
    }
    total
}
