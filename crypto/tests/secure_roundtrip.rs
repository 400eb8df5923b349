#![allow(clippy::unwrap_used)]
//! Property tests: random frames sealed with `SecureTx` and fed to `SecureRx` in random
//! splits come back identical, for both revisions and every pair of backends.

use msgr2_codec::frame::{
    Frame, Limits, Preamble, SegmentAlloc, SegmentDesc, Tag, ALIGN_DEFAULT, ALIGN_PAGE,
};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{Backend, SecureRx, SecureTx};
use proptest::prelude::*;

/// Deterministic filler so large segments cost no strategy time.
fn fill(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Debug, Clone)]
struct TestFrame {
    tag: Tag,
    segments: Vec<(Vec<u8>, u16)>,
}

impl TestFrame {
    fn refs(&self) -> Vec<(&[u8], u16)> {
        self.segments.iter().map(|(b, a)| (&b[..], *a)).collect()
    }
    fn expected(&self) -> Frame<Vec<u8>> {
        let descs: Vec<SegmentDesc> = self
            .segments
            .iter()
            .map(|(b, a)| SegmentDesc {
                len: b.len() as u32,
                align: *a,
            })
            .collect();
        let preamble = Preamble::new(self.tag, &descs);
        let mut segments: [Vec<u8>; 4] = Default::default();
        for (i, s) in segments
            .iter_mut()
            .enumerate()
            .take(usize::from(preamble.num_segments))
        {
            *s = self.segments[i].0.clone();
        }
        Frame { preamble, segments }
    }
}

fn seg0_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(16),
        Just(47),
        Just(48),
        Just(49),
        Just(64),
        0usize..200,
    ]
}

fn control_frame() -> impl Strategy<Value = TestFrame> {
    let tags: Vec<Tag> = Tag::ALL
        .iter()
        .copied()
        .filter(|&t| t != Tag::Message)
        .collect();
    (prop::sample::select(tags), seg0_len(), any::<u64>()).prop_map(|(tag, len, seed)| TestFrame {
        tag,
        segments: vec![(fill(len, seed), ALIGN_DEFAULT)],
    })
}

fn message_frame() -> impl Strategy<Value = TestFrame> {
    (
        seg0_len(),
        prop_oneof![Just(0usize), 0usize..600],
        prop_oneof![3 => Just(0usize), 1 => 0usize..40],
        prop_oneof![Just(0usize), 0usize..5000, 0usize..=100 * 1024],
        1usize..=4,
        any::<u64>(),
    )
        .prop_map(|(h, f, m, d, count, seed)| {
            let lens = [h, f, m, d];
            let aligns = [ALIGN_DEFAULT, ALIGN_DEFAULT, ALIGN_DEFAULT, ALIGN_PAGE];
            TestFrame {
                tag: Tag::Message,
                segments: (0..count)
                    .map(|i| (fill(lens[i], seed.wrapping_add(i as u64)), aligns[i]))
                    .collect(),
            }
        })
}

fn frames() -> impl Strategy<Value = Vec<TestFrame>> {
    prop::collection::vec(prop_oneof![control_frame(), message_frame()], 1..5)
}

const KEY: [u8; 16] = *b"0123456789abcdef";
const NONCE: [u8; 12] = [
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2,
];

fn seal_all(backend: Backend, rev: Revision, frames: &[TestFrame]) -> Vec<u8> {
    // The nonce starts near the 32-bit and 64-bit carries, so they are exercised too.
    let mut tx = SecureTx::new(backend, &KEY, NONCE, rev).unwrap();
    let mut wire = Vec::new();
    for f in frames {
        tx.seal_frame(f.tag, &f.refs(), &mut wire).unwrap();
    }
    wire
}

/// Feeds `wire` in the given split sizes (cycled), collecting frames.
fn feed_split<A: SegmentAlloc>(
    rx: &mut SecureRx<A>,
    wire: &[u8],
    splits: &[usize],
) -> Vec<Frame<A::Buf>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < wire.len() {
        let end = (at + splits[k % splits.len()]).min(wire.len());
        k += 1;
        let mut chunk = &wire[at..end];
        while !chunk.is_empty() {
            let (n, f) = rx.feed(chunk).unwrap();
            chunk = &chunk[n..];
            if let Some(f) = f {
                out.push(f);
            }
        }
        at = end;
    }
    out
}

/// Receives `wire` through `dest`/`advance`, writing at most `step` bytes at a time.
fn dest_advance(rx: &mut SecureRx, wire: &[u8], step: usize) -> Vec<Frame<Vec<u8>>> {
    let mut out = Vec::new();
    let mut input = wire;
    while !input.is_empty() {
        let want = rx.want();
        let d = rx.dest();
        assert_eq!(d.len(), want.len);
        let n = d.len().min(step).min(input.len());
        d[..n].copy_from_slice(&input[..n]);
        input = &input[n..];
        if let Some(f) = rx.advance(n).unwrap() {
            out.push(f);
        }
    }
    out
}

fn check(rev: Revision, frames: &[TestFrame], splits: &[usize], sealer: Backend, opener: Backend) {
    let wire = seal_all(sealer, rev, frames);
    let expected: Vec<Frame<Vec<u8>>> = frames.iter().map(TestFrame::expected).collect();
    let lens: usize = frames
        .iter()
        .map(|f| {
            let l: Vec<usize> = f.segments.iter().map(|s| s.0.len()).collect();
            SecureTx::wire_len(rev, &l)
        })
        .sum();
    assert_eq!(wire.len(), lens);

    let mut rx = SecureRx::new(opener, &KEY, NONCE, rev, Limits::default()).unwrap();
    let got = feed_split(&mut rx, &wire, splits);
    assert_eq!(got, expected);
    assert!(rx.at_boundary());

    let mut rx = SecureRx::new(opener, &KEY, NONCE, rev, Limits::default()).unwrap();
    let got = dest_advance(&mut rx, &wire, splits[0]);
    assert_eq!(got, expected);
    assert!(rx.at_boundary());
}

fn backend_pair() -> impl Strategy<Value = (Backend, Backend)> {
    (
        prop::sample::select(Backend::ALL.to_vec()),
        prop::sample::select(Backend::ALL.to_vec()),
    )
}

fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..20, 1usize..200, 1usize..70_000], 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rev1_round_trip(frames in frames(), splits in splits(), (s, o) in backend_pair()) {
        check(Revision::Rev1, &frames, &splits, s, o);
    }

    #[test]
    fn rev0_round_trip(frames in frames(), splits in splits(), (s, o) in backend_pair()) {
        check(Revision::Rev0, &frames, &splits, s, o);
    }
}

/// Every first-segment size around the inline boundary, with and without a tail, fed one
/// byte at a time.
#[test]
fn inline_boundaries_byte_at_a_time() {
    for rev in [Revision::Rev0, Revision::Rev1] {
        for len0 in (0..=80).chain([95, 96, 97, 128, 1000]) {
            for tail in [0usize, 1, 16, 17] {
                let mut segments = vec![(fill(len0, len0 as u64), ALIGN_DEFAULT)];
                if tail > 0 {
                    segments.push((fill(tail, 9), ALIGN_DEFAULT));
                }
                let f = TestFrame {
                    tag: if tail > 0 { Tag::Message } else { Tag::Hello },
                    segments,
                };
                for &b in Backend::ALL {
                    check(rev, std::slice::from_ref(&f), &[1], b, b);
                }
            }
        }
    }
}

/// A `SegmentAlloc` that records what it was asked for.
#[derive(Default)]
struct Recording(Vec<(Tag, usize, usize, usize)>);

impl SegmentAlloc for Recording {
    type Buf = Vec<u8>;
    fn alloc(&mut self, tag: Tag, index: usize, len: usize, align: usize) -> Vec<u8> {
        self.0.push((tag, index, len, align));
        vec![0; len]
    }
}

#[test]
fn segments_come_from_the_allocator_with_hints() {
    let data = fill(10_000, 3);
    let header = fill(41, 4);
    let f = TestFrame {
        tag: Tag::Message,
        segments: vec![
            (header, ALIGN_DEFAULT),
            (Vec::new(), ALIGN_DEFAULT),
            (Vec::new(), ALIGN_DEFAULT),
            (data, ALIGN_PAGE),
        ],
    };
    for rev in [Revision::Rev0, Revision::Rev1] {
        let wire = seal_all(Backend::AwsLc, rev, std::slice::from_ref(&f));
        let mut rx = SecureRx::with_alloc(
            Backend::AwsLc,
            &KEY,
            NONCE,
            rev,
            Limits::default(),
            Recording::default(),
        )
        .unwrap();
        let got = feed_split(&mut rx, &wire, &[wire.len()]);
        assert_eq!(got, vec![f.expected()]);
        assert_eq!(
            rx.allocator().0,
            vec![(Tag::Message, 0, 41, 8), (Tag::Message, 3, 10_000, 4096)]
        );
    }
}

/// The receiver keeps its scratch buffer between frames (no allocation per frame in the
/// steady state) up to `SCRATCH_RETAIN`, and lets a larger one go after its frame.
#[test]
fn scratch_is_kept_between_frames_up_to_the_retain_limit() {
    use msgr2_crypto::secure::SCRATCH_RETAIN;
    assert_eq!(SCRATCH_RETAIN, 8 << 20);
    let small = TestFrame {
        tag: Tag::Message,
        segments: vec![
            (fill(41, 1), ALIGN_DEFAULT),
            (fill(70_000, 2), ALIGN_DEFAULT),
        ],
    };
    let big = TestFrame {
        tag: Tag::Message,
        segments: vec![
            (fill(41, 1), ALIGN_DEFAULT),
            (fill(SCRATCH_RETAIN + 4096, 3), ALIGN_DEFAULT),
        ],
    };
    for rev in [Revision::Rev0, Revision::Rev1] {
        let wire = seal_all(Backend::AwsLc, rev, &[small.clone(), big.clone()]);
        let mut rx = SecureRx::new(Backend::AwsLc, &KEY, NONCE, rev, Limits::default()).unwrap();
        assert_eq!(rx.next_nonce(), NONCE);
        let mut at = 0;
        let mut kept = Vec::new();
        while at < wire.len() {
            let (n, f) = rx.feed(&wire[at..]).unwrap();
            at += n;
            if f.is_some() {
                kept.push(rx.scratch_capacity());
            }
        }
        assert_eq!(kept.len(), 2);
        // The receiver's nonce has moved on exactly as far as the sender's.
        let mut tx = SecureTx::new(Backend::AwsLc, &KEY, NONCE, rev).unwrap();
        for f in [&small, &big] {
            tx.seal_frame(f.tag, &f.refs(), &mut Vec::new()).unwrap();
        }
        assert_eq!(rx.next_nonce(), tx.next_nonce());
        assert_ne!(rx.next_nonce(), NONCE);
        assert!(kept[0] > 0, "{rev:?}: scratch let go after a small frame");
        assert_eq!(kept[1], 0, "{rev:?}: a scratch over the limit is kept");
    }
}
