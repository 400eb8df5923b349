//! AES-128-GCM seal and open per backend (aws-lc-rs, and RustCrypto `aes-gcm` through the
//! crypto crate's `rustcrypto` feature), rev1 MESSAGE frames with a 41-byte header and a
//! 4 KiB, 64 KiB or 4 MiB data segment. Throughput is per data byte.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msgr2_codec::frame::{Limits, Tag, ALIGN_DEFAULT, ALIGN_PAGE};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{Backend, ConnectionSecret, Role, SecureRx, SecureTx};

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];

fn secret() -> ConnectionSecret {
    ConnectionSecret::new(&(0..64).map(|i| i * 3).collect::<Vec<u8>>()).unwrap()
}

fn tx(b: Backend, s: &ConnectionSecret) -> SecureTx {
    SecureTx::new(b, s.key(), s.tx_nonce(Role::Client), Revision::Rev1).unwrap()
}

fn rx(b: Backend, s: &ConnectionSecret) -> SecureRx {
    SecureRx::new(
        b,
        s.key(),
        s.rx_nonce(Role::Server),
        Revision::Rev1,
        Limits::default(),
    )
    .unwrap()
}

fn seal_open(c: &mut Criterion) {
    let header = [0x11u8; 41];
    let s = secret();
    for (size, name) in SIZES {
        let data = vec![0xa5u8; size];
        let segs: [(&[u8], u16); 4] = [
            (&header, ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&[], ALIGN_DEFAULT),
            (&data, ALIGN_PAGE),
        ];
        let mut g = c.benchmark_group(format!("seal_open_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        for &backend in Backend::ALL {
            let mut t = tx(backend, &s);
            let mut out = Vec::with_capacity(size + 256);
            g.bench_function(BenchmarkId::new("seal", backend.name()), |b| {
                b.iter(|| {
                    out.clear();
                    t.seal_frame(Tag::Message, black_box(&segs), &mut out)
                        .unwrap();
                    out.len()
                })
            });
            let batch = ((16usize << 20) / size).clamp(1, 4096) as u64;
            let mut t = tx(backend, &s);
            let mut r = rx(backend, &s);
            let mut wire = Vec::new();
            g.bench_function(BenchmarkId::new("open", backend.name()), |b| {
                b.iter_custom(|iters| {
                    common::timed_open(iters, batch, &mut t, &mut r, &segs, &mut wire)
                })
            });
        }
        g.finish();
    }
}

criterion_group! {name = benches; config = common::config(); targets = seal_open}
criterion_main!(benches);
