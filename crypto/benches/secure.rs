#![allow(clippy::unwrap_used)]
//! Secure-mode (rev1) throughput: sealing and opening MESSAGE frames with a 41-byte header
//! and a 4 KiB, 64 KiB or 4 MiB data segment, for each AES-GCM backend.
//!
//! "open" feeds the sealed bytes to `SecureRx::feed` (copy into the receive buffer, verify +
//! decrypt in place, copy into the `Vec` segment), i.e. the whole receive path minus the
//! socket.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msgr2_codec::frame::{Limits, Tag, ALIGN_DEFAULT, ALIGN_PAGE};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{Backend, SecureRx, SecureTx};

const KEY: [u8; 16] = [0x5c; 16];
const NONCE: [u8; 12] = [7; 12];
const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];

fn limits() -> Limits {
    Limits {
        max_message_segment: 64 << 20,
        max_message_total: 64 << 20,
        ..Limits::default()
    }
}

fn seal(c: &mut Criterion) {
    let header = [0x11u8; 41];
    let mut g = c.benchmark_group("secure_rev1_seal");
    for (size, name) in SIZES {
        let data = vec![0xa5u8; size];
        let segs: [(&[u8], u16); 4] = [
            (&header, ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&data, ALIGN_PAGE),
        ];
        g.throughput(Throughput::Bytes(size as u64));
        for &backend in Backend::ALL {
            g.bench_function(BenchmarkId::new(backend.name(), name), |b| {
                let mut tx = SecureTx::new(backend, &KEY, NONCE, Revision::Rev1).unwrap();
                let mut out = Vec::with_capacity(size + 256);
                b.iter(|| {
                    out.clear();
                    tx.seal_frame(Tag::Message, &segs, &mut out).unwrap();
                    black_box(out.len());
                });
            });
        }
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let header = [0x11u8; 41];
    let mut g = c.benchmark_group("secure_rev1_open");
    for (size, name) in SIZES {
        let data = vec![0xa5u8; size];
        let segs: [(&[u8], u16); 4] = [
            (&header, ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&data, ALIGN_PAGE),
        ];
        // Frames are sealed in batches outside the timed region by a sender that lives as long
        // as the receiver, so their nonces stay in step and the receiver keeps its buffers.
        let batch = ((16usize << 20) / size).clamp(1, 4096) as u64;
        g.throughput(Throughput::Bytes(size as u64));
        for &backend in Backend::ALL {
            g.bench_function(BenchmarkId::new(backend.name(), name), |b| {
                let mut tx = SecureTx::new(backend, &KEY, NONCE, Revision::Rev1).unwrap();
                let mut rx = SecureRx::new(backend, &KEY, NONCE, Revision::Rev1, limits()).unwrap();
                let mut wire = Vec::new();
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(batch);
                        wire.clear();
                        for _ in 0..k {
                            tx.seal_frame(Tag::Message, &segs, &mut wire).unwrap();
                        }
                        let start = Instant::now();
                        let mut input = &wire[..];
                        while !input.is_empty() {
                            let (n, f) = rx.feed(input).unwrap();
                            input = &input[n..];
                            black_box(f);
                        }
                        total += start.elapsed();
                        left -= k;
                    }
                    total
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
