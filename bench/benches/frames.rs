//! MESSAGE frame encode and decode per mode (crc rev1, crc rev0, secure rev1, secure rev0) for
//! a 41-byte header, a 200-byte front and a 4 KiB, 64 KiB or 4 MiB data segment.
//!
//! - crc encode: [`FrameParts::new`] (preamble, segment crcs, epilogue: what a gathering
//!   sender computes; the payload is not copied) and [`assemble`] (the same into one buffer).
//! - crc decode: [`FrameDecoder::feed`] (copy into the segment buffers, crc checks).
//! - secure encode: `SecureTx::seal_frame` into a reused buffer (copy + encrypt in place).
//! - secure decode: `SecureRx::feed` (copy, verify + decrypt in place).
//!
//! Throughput is per payload byte of the data segment.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msgr2_codec::frame::{
    assemble, FrameDecoder, FrameParts, Limits, Tag, ALIGN_DEFAULT, ALIGN_PAGE,
};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::Revision;
use msgr2_crypto::secure::{ConnectionSecret, Role};

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];
const REVS: [(Revision, &str); 2] = [(Revision::Rev1, "rev1"), (Revision::Rev0, "rev0")];

fn payload(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

fn header() -> [u8; 41] {
    MsgHeader2 {
        seq: 1,
        tid: 7,
        msg_type: 42,
        priority: 127,
        ..Default::default()
    }
    .to_bytes()
}

fn crc_mode(c: &mut Criterion) {
    let h = header();
    let front = [0x33u8; 200];
    for (rev, rname) in REVS {
        let mut g = c.benchmark_group(format!("frame_crc_{rname}"));
        for (n, name) in SIZES {
            let data = payload(n);
            let segs: [(&[u8], u16); 4] = [
                (&h, ALIGN_DEFAULT),
                (&front, ALIGN_DEFAULT),
                (&[], ALIGN_DEFAULT),
                (&data, ALIGN_PAGE),
            ];
            g.throughput(Throughput::Bytes(n as u64));
            g.bench_function(BenchmarkId::new("encode_parts", name), |b| {
                b.iter(|| FrameParts::new(rev, Tag::Message, black_box(&segs)))
            });
            let mut out = Vec::with_capacity(n + 512);
            g.bench_function(BenchmarkId::new("encode_assemble", name), |b| {
                b.iter(|| {
                    out.clear();
                    assemble(rev, Tag::Message, black_box(&segs), &mut out);
                    out.len()
                })
            });
            let mut wire = Vec::new();
            assemble(rev, Tag::Message, &segs, &mut wire);
            let mut d = FrameDecoder::new(rev, Limits::default());
            g.bench_function(BenchmarkId::new("decode", name), |b| {
                b.iter(|| {
                    let (used, f) = d.feed(black_box(&wire)).unwrap();
                    assert_eq!(used, wire.len());
                    f
                })
            });
        }
        g.finish();
    }
}

fn secure_mode(c: &mut Criterion) {
    let h = header();
    let front = [0x33u8; 200];
    let secret = ConnectionSecret::new(&(0..64).collect::<Vec<u8>>()).unwrap();
    for (rev, rname) in REVS {
        let mut g = c.benchmark_group(format!("frame_secure_{rname}"));
        for (n, name) in SIZES {
            let data = payload(n);
            let segs: [(&[u8], u16); 4] = [
                (&h, ALIGN_DEFAULT),
                (&front, ALIGN_DEFAULT),
                (&[], ALIGN_DEFAULT),
                (&data, ALIGN_PAGE),
            ];
            g.throughput(Throughput::Bytes(n as u64));
            let mut tx = secret.tx(Role::Client, rev).unwrap();
            let mut out = Vec::with_capacity(n + 512);
            g.bench_function(BenchmarkId::new("encode", name), |b| {
                b.iter(|| {
                    out.clear();
                    tx.seal_frame(Tag::Message, black_box(&segs), &mut out)
                        .unwrap();
                    out.len()
                })
            });
            // Frames are sealed in batches outside the timed region by a sender that stays in
            // step with the receiver (nonces advance per frame).
            let batch = ((16usize << 20) / n).clamp(1, 4096) as u64;
            let mut tx = secret.tx(Role::Client, rev).unwrap();
            let mut rx = secret.rx(Role::Server, rev, Limits::default()).unwrap();
            let mut wire = Vec::new();
            g.bench_function(BenchmarkId::new("decode", name), |b| {
                b.iter_custom(|iters| {
                    common::timed_open(iters, batch, &mut tx, &mut rx, &segs, &mut wire)
                })
            });
        }
        g.finish();
    }
}

criterion_group! {name = benches; config = common::config(); targets = crc_mode, secure_mode}
criterion_main!(benches);
