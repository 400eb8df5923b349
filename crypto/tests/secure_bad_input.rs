#![allow(clippy::unwrap_used)]
//! Hostile and broken input: tampering, replay, reordering, truncation, oversized length
//! claims, bad epilogues, nonce exhaustion.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use msgr2_codec::frame::{
    Frame, FrameError, Limits, Preamble, SegmentAlloc, SegmentDesc, Tag, ALIGN_DEFAULT,
};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{next_nonce, Backend, SecureError, SecureRx, SecureTx};

const KEY: [u8; 16] = [0x42; 16];
const NONCE: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const REVS: [Revision; 2] = [Revision::Rev0, Revision::Rev1];

fn tx(rev: Revision) -> SecureTx {
    SecureTx::new(Backend::AwsLc, &KEY, NONCE, rev).unwrap()
}

fn rx(rev: Revision) -> SecureRx {
    SecureRx::new(Backend::AwsLc, &KEY, NONCE, rev, Limits::default()).unwrap()
}

/// A small two-segment MESSAGE: every GCM unit of rev1 is present (seg0 of 60 bytes spills
/// past the inline 48).
fn small_message(rev: Revision) -> Vec<u8> {
    let mut out = Vec::new();
    tx(rev)
        .seal_frame(
            Tag::Message,
            &[(&[0x11; 60], 8), (&[0x22; 20], 8)],
            &mut out,
        )
        .unwrap();
    out
}

/// Feeds everything; returns the frames produced before the first error, and the error.
fn feed_until_error(
    rx: &mut SecureRx,
    mut input: &[u8],
) -> (Vec<Frame<Vec<u8>>>, Option<SecureError>) {
    let mut frames = Vec::new();
    while !input.is_empty() {
        match rx.feed(input) {
            Ok((n, f)) => {
                input = &input[n..];
                frames.extend(f);
            }
            Err(e) => return (frames, Some(e)),
        }
    }
    (frames, None)
}

#[test]
fn every_flipped_bit_is_rejected() {
    for rev in REVS {
        let wire = small_message(rev);
        assert_eq!(wire.len(), if rev == Revision::Rev1 { 192 } else { 160 });
        for pos in 0..wire.len() {
            for bit in 0..8 {
                let mut bad = wire.clone();
                bad[pos] ^= 1 << bit;
                let mut r = rx(rev);
                let (frames, err) = feed_until_error(&mut r, &bad);
                assert!(
                    frames.is_empty(),
                    "{rev:?} byte {pos} bit {bit} gave a frame"
                );
                let err = err.unwrap();
                if rev == Revision::Rev0 && pos < 32 {
                    // rev0 must peek at the preamble before it can authenticate the frame;
                    // the preamble crc catches the flip first, as in Ceph.
                    assert!(
                        matches!(err, SecureError::Frame(FrameError::PreambleCrc { .. })),
                        "{rev:?} byte {pos}: {err:?}"
                    );
                } else {
                    assert_eq!(err, SecureError::AuthFailed, "{rev:?} byte {pos} bit {bit}");
                }
                assert!(matches!(r.feed(&wire), Err(SecureError::Poisoned(_))));
            }
        }
    }
}

#[test]
fn replayed_and_reordered_frames_are_rejected() {
    for rev in REVS {
        let mut t = tx(rev);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        t.seal_frame(Tag::Keepalive2, &[(&[1; 8], 8)], &mut a)
            .unwrap();
        t.seal_frame(Tag::Keepalive2, &[(&[2; 8], 8)], &mut b)
            .unwrap();
        // Replay.
        let mut r = rx(rev);
        let (frames, err) = feed_until_error(&mut r, &a);
        assert_eq!((frames.len(), err), (1, None));
        let (frames, err) = feed_until_error(&mut r, &a);
        assert!(frames.is_empty());
        if rev == Revision::Rev0 {
            // The replayed preamble decrypts to garbage under the next nonce.
            assert!(matches!(err, Some(SecureError::Frame(_))), "{err:?}");
        } else {
            assert_eq!(err, Some(SecureError::AuthFailed));
        }
        // Reorder.
        let mut r = rx(rev);
        let (frames, err) = feed_until_error(&mut r, &b);
        assert!(frames.is_empty() && err.is_some());
        // In order: fine.
        let mut r = rx(rev);
        let mut both = a.clone();
        both.extend_from_slice(&b);
        let (frames, err) = feed_until_error(&mut r, &both);
        assert_eq!((frames.len(), err), (2, None));
        assert_eq!(frames[1].segment(0), &[2; 8]);
    }
}

#[test]
fn truncated_stream_yields_no_frame() {
    for rev in REVS {
        let wire = small_message(rev);
        for cut in 0..wire.len() {
            let mut r = rx(rev);
            let (n, f) = r.feed(&wire[..cut]).unwrap();
            assert_eq!(n, cut);
            assert!(f.is_none());
            assert_eq!(r.at_boundary(), cut == 0);
            // The rest completes it.
            let (n, f) = r.feed(&wire[cut..]).unwrap();
            assert_eq!(n, wire.len() - cut);
            assert!(f.is_some());
        }
    }
}

/// Counts allocations; must stay at zero for refused frames.
#[derive(Default)]
struct Counting(usize);

impl SegmentAlloc for Counting {
    type Buf = Vec<u8>;
    fn alloc(&mut self, _tag: Tag, _index: usize, len: usize, _align: usize) -> Vec<u8> {
        self.0 += 1;
        vec![0; len]
    }
}

/// Raw AES-GCM over `plaintext` with `nonce`, ciphertext ‖ tag.
fn raw_seal(nonce: [u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &KEY).unwrap());
    let mut b = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut b)
        .unwrap();
    b.extend_from_slice(tag.as_ref());
    b
}

fn preamble_bytes(tag: Tag, lens: &[u32]) -> [u8; 32] {
    let mut segments = [SegmentDesc::default(); 4];
    for (d, &l) in segments.iter_mut().zip(lens) {
        d.len = l;
        d.align = ALIGN_DEFAULT;
    }
    Preamble {
        tag,
        num_segments: lens.len() as u8,
        segments,
        flags: 0,
    }
    .encode()
}

/// A correctly encrypted first block (rev1: 96 bytes; rev0: 32 bytes) around `preamble`.
fn first_block(rev: Revision, preamble: [u8; 32]) -> Vec<u8> {
    let mut pt = preamble.to_vec();
    pt.resize(80, 0);
    let sealed = raw_seal(NONCE, &pt);
    match rev {
        Revision::Rev1 => sealed,
        // The first 32 bytes of GCM ciphertext do not depend on what follows.
        Revision::Rev0 => sealed[..32].to_vec(),
    }
}

#[test]
fn huge_length_claims_are_refused_before_allocation() {
    for rev in REVS {
        for (tag, lens) in [
            (Tag::Message, vec![41u32, 0, 0, u32::MAX]),
            (Tag::Message, vec![u32::MAX]),
            (Tag::Message, vec![41, u32::MAX, u32::MAX, u32::MAX]),
            (Tag::AuthRequest, vec![2 << 20]),
        ] {
            let mut r = SecureRx::with_alloc(
                Backend::AwsLc,
                &KEY,
                NONCE,
                rev,
                Limits::default(),
                Counting::default(),
            )
            .unwrap();
            let block = first_block(rev, preamble_bytes(tag, &lens));
            let err = r.feed(&block).unwrap_err();
            assert!(
                matches!(err, SecureError::Frame(FrameError::SegmentTooLong { .. })),
                "{rev:?} {lens:?}: {err:?}"
            );
            assert_eq!(r.allocator().0, 0);
            assert_eq!(r.scratch_capacity(), 0);
        }
    }
}

#[test]
fn control_frame_with_two_segments_is_rejected() {
    for rev in REVS {
        let mut out = Vec::new();
        tx(rev)
            .seal_frame(Tag::AuthRequest, &[(&[1; 4], 8), (&[2; 4], 8)], &mut out)
            .unwrap();
        let err = rx(rev).feed(&out).unwrap_err();
        assert!(
            matches!(err, SecureError::Frame(FrameError::ControlSegments { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn wrong_direction_nonce_fails() {
    let wire = small_message(Revision::Rev1);
    let mut r = SecureRx::new(
        Backend::AwsLc,
        &KEY,
        next_nonce(&NONCE, Revision::Rev1),
        Revision::Rev1,
        Limits::default(),
    )
    .unwrap();
    assert_eq!(r.feed(&wire).unwrap_err(), SecureError::AuthFailed);
}

/// Hand-built rev1 MESSAGE (header + front) with a chosen `late_status`.
fn rev1_with_status(nonce: [u8; 12], status: u8, front: &[u8]) -> Vec<u8> {
    let header = [7u8; 41];
    let p = preamble_bytes(Tag::Message, &[41, front.len() as u32]);
    let mut first = p.to_vec();
    first.extend_from_slice(&header);
    first.resize(80, 0);
    let mut out = raw_seal(nonce, &first);
    let mut tail = front.to_vec();
    tail.resize(front.len().div_ceil(16) * 16, 0);
    tail.push(status);
    tail.extend_from_slice(&[0; 15]);
    out.extend(raw_seal(next_nonce(&nonce, Revision::Rev1), &tail));
    out
}

/// Hand-built rev0 KEEPALIVE2 with chosen `late_flags`.
fn rev0_with_flags(nonce: [u8; 12], flags: u8) -> Vec<u8> {
    let mut pt = preamble_bytes(Tag::Keepalive2, &[8]).to_vec();
    pt.extend_from_slice(&[9; 8]);
    pt.resize(48, 0);
    pt.push(flags);
    pt.extend_from_slice(&[0; 15]);
    raw_seal(nonce, &pt)
}

#[test]
fn late_status_handling() {
    let n2 = next_nonce(&next_nonce(&NONCE, Revision::Rev1), Revision::Rev1);
    for (status, outcome) in [
        (0x0e, Ok(true)),
        (0x1e, Ok(true)), // only the low nibble counts
        (0xee, Ok(true)),
        (0x01, Ok(false)), // aborted: verified, then dropped
        (0x00, Err(SecureError::BadLateStatus(0x00))),
        (0x0f, Err(SecureError::BadLateStatus(0x0f))),
    ] {
        let mut wire = rev1_with_status(NONCE, status, b"front!");
        // A normal frame after it must still decode (nonces stayed in step).
        wire.extend(rev1_with_status(n2, 0x0e, b"next"));
        let mut r = rx(Revision::Rev1);
        let (frames, err) = feed_until_error(&mut r, &wire);
        match outcome {
            Ok(delivered) => {
                assert_eq!(err, None, "status {status:#x}");
                assert_eq!(frames.len(), if delivered { 2 } else { 1 });
                assert_eq!(r.aborted_frames(), u64::from(!delivered));
                assert_eq!(frames.last().unwrap().segment(1), b"next");
                if delivered {
                    assert_eq!(frames[0].segment(1), b"front!");
                }
            }
            Err(e) => {
                assert!(frames.is_empty());
                assert_eq!(err, Some(e));
            }
        }
    }
    let n1 = next_nonce(&NONCE, Revision::Rev0);
    for (flags, outcome) in [
        (0u8, Ok(true)),
        (1, Ok(false)),
        (2, Err(SecureError::BadLateFlags(2))),
    ] {
        let mut wire = rev0_with_flags(NONCE, flags);
        wire.extend(rev0_with_flags(n1, 0));
        let mut r = rx(Revision::Rev0);
        let (frames, err) = feed_until_error(&mut r, &wire);
        match outcome {
            Ok(delivered) => {
                assert_eq!(err, None);
                assert_eq!(frames.len(), if delivered { 2 } else { 1 });
                assert_eq!(r.aborted_frames(), u64::from(!delivered));
            }
            Err(e) => assert_eq!(err, Some(e)),
        }
    }
}

#[test]
fn rev0_nonce_exhaustion_refuses_instead_of_wrapping() {
    let mut t = tx(Revision::Rev0);
    let mut r = rx(Revision::Rev0);
    t.skip_nonces((1 << 32) - 2).unwrap();
    r.skip_nonces((1 << 32) - 2).unwrap();
    assert_eq!(t.remaining_nonces(), 2);
    let mut out = Vec::new();
    for i in 0..2u8 {
        assert_ne!(t.next_nonce(), NONCE);
        t.seal_frame(Tag::Keepalive2, &[(&[i; 8], 8)], &mut out)
            .unwrap();
    }
    // The next nonce would be the initial one again.
    assert_eq!(t.next_nonce(), NONCE);
    let len = out.len();
    assert_eq!(
        t.seal_frame(Tag::Keepalive2, &[(&[9; 8], 8)], &mut out),
        Err(SecureError::NoncesExhausted)
    );
    assert_eq!(out.len(), len, "nothing appended");
    assert!(matches!(
        t.seal_frame(Tag::Keepalive2, &[(&[9; 8], 8)], &mut out),
        Err(SecureError::Poisoned(_))
    ));
    // The two frames before exhaustion are fine.
    let (frames, err) = feed_until_error(&mut r, &out);
    assert_eq!((frames.len(), err), (2, None));
    // A peer that wrapped would make us reuse its initial nonce: refused too.
    let mut again = Vec::new();
    tx(Revision::Rev0)
        .seal_frame(Tag::Keepalive2, &[(&[0; 8], 8)], &mut again)
        .unwrap();
    assert_eq!(r.feed(&again).unwrap_err(), SecureError::NoncesExhausted);
}

#[test]
fn rev1_nonce_exhaustion_counts_operations() {
    let mut t = tx(Revision::Rev1);
    t.skip_nonces(u64::MAX - 2).unwrap(); // 3 operations left
    let mut out = Vec::new();
    let big = [5u8; 100];
    // 3 operations: first block, first-segment rest, tail.
    t.seal_frame(Tag::Message, &[(&big, 8), (&big, 8)], &mut out)
        .unwrap();
    assert_eq!(t.remaining_nonces(), 0);
    assert_eq!(
        t.seal_frame(Tag::Keepalive2, &[(&[0; 8], 8)], &mut Vec::new()),
        Err(SecureError::NoncesExhausted)
    );
    let mut r = rx(Revision::Rev1);
    r.skip_nonces(u64::MAX - 2).unwrap();
    let (frames, err) = feed_until_error(&mut r, &out);
    assert_eq!((frames.len(), err), (1, None));
    assert_eq!(frames[0].segment(1), &big);
    // One operation left: a one-segment frame whose first segment fits inline (48 bytes
    // exactly) needs only the first block, and goes out.
    let mut t = tx(Revision::Rev1);
    t.skip_nonces(u64::MAX).unwrap();
    assert_eq!(t.remaining_nonces(), 1);
    t.seal_frame(Tag::Hello, &[(&[7u8; 48], 8)], &mut Vec::new())
        .unwrap();
    assert_eq!(t.remaining_nonces(), 0);
}
