//! crc32c with Ceph's seeds (`msgr2_codec::crc::crc32c`) over 4 KiB, 64 KiB and 4 MiB: the
//! per-byte cost crc mode adds to every data segment.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msgr2_codec::crc::crc32c;

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];

fn payload(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

fn crc(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc32c");
    for (n, name) in SIZES {
        let data = payload(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| crc32c(u32::MAX, black_box(&data)))
        });
    }
    g.finish();
}

criterion_group! {name = benches; config = common::config(); targets = crc}
criterion_main!(benches);
