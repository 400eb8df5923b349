//! Criterion benches: crc32c throughput and crc-mode frame encode/decode for 4 KiB, 64 KiB and
//! 4 MiB messages, both framing revisions.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msgr2_codec::crc::crc32c;
use msgr2_codec::frame::{assemble, FrameDecoder, FrameParts, Limits, Tag};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::Revision;
use std::hint::black_box;

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];

fn payload(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

fn bench_crc(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc32c");
    for (n, name) in SIZES {
        let data = payload(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| crc32c(!0, black_box(&data)))
        });
    }
    g.finish();
}

fn message(rev: Revision, data: &[u8]) -> (Vec<u8>, [u8; 41]) {
    let h = MsgHeader2 {
        seq: 1,
        msg_type: 42,
        priority: 127,
        ..Default::default()
    }
    .to_bytes();
    let mut wire = Vec::new();
    assemble(
        rev,
        Tag::Message,
        &[(&h, 8), (&[0u8; 200], 8), (&[], 8), (data, 4096)],
        &mut wire,
    );
    (wire, h)
}

fn bench_frames(c: &mut Criterion) {
    for rev in [Revision::Rev1, Revision::Rev0] {
        let label = if rev == Revision::Rev1 {
            "rev1"
        } else {
            "rev0"
        };
        let mut enc = c.benchmark_group(format!("frame_encode_{label}"));
        for (n, name) in SIZES {
            let data = payload(n);
            let h = MsgHeader2::default().to_bytes();
            let front = [0u8; 200];
            enc.throughput(Throughput::Bytes(n as u64));
            // What a gathering sender does: compute preamble, crcs and epilogue; no copy.
            enc.bench_function(BenchmarkId::new("parts", name), |b| {
                b.iter(|| {
                    FrameParts::new(
                        rev,
                        Tag::Message,
                        black_box(&[(&h, 8), (&front, 8), (&[], 8), (&data, 4096)]),
                    )
                })
            });
        }
        enc.finish();
        let mut dec = c.benchmark_group(format!("frame_decode_{label}"));
        for (n, name) in SIZES {
            let data = payload(n);
            let (wire, _) = message(rev, &data);
            dec.throughput(Throughput::Bytes(n as u64));
            // Decoding includes the copy into the segment buffer (the feed path) and crc checks.
            let mut d = FrameDecoder::new(rev, Limits::default());
            dec.bench_function(BenchmarkId::new("feed", name), |b| {
                b.iter(|| {
                    let (used, f) = d.feed(black_box(&wire)).expect("valid frame");
                    assert_eq!(used, wire.len());
                    f
                })
            });
        }
        dec.finish();
    }
}

criterion_group!(benches, bench_crc, bench_frames);
criterion_main!(benches);
