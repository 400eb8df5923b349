#![allow(clippy::unwrap_used)]
//! Spec vectors (§3.6, §6.2, §6.3), an independent re-implementation of both secure layouts
//! straight from the spec (compared byte for byte with `SecureTx`), and backend cross-checks.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use msgr2_codec::frame::{Frame, Limits, Preamble, SegmentDesc, Tag, ALIGN_DEFAULT, ALIGN_PAGE};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{
    next_nonce, Backend, ConnectionSecret, Role, SecureRx, SecureTx, FIRST_BLOCK_LEN,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn secret_00_3f() -> ConnectionSecret {
    let s: Vec<u8> = (0u8..64).collect();
    ConnectionSecret::new(&s).unwrap()
}

#[test]
fn connection_secret_vectors() {
    let s = secret_00_3f();
    assert_eq!(hex(&s.tx_nonce(Role::Client)), "1c1d1e1f2021222324252627");
    assert_eq!(hex(&s.rx_nonce(Role::Client)), "101112131415161718191a1b");
    assert_eq!(hex(&s.tx_nonce(Role::Server)), "101112131415161718191a1b");
    assert_eq!(hex(&s.rx_nonce(Role::Server)), "1c1d1e1f2021222324252627");
    assert_eq!(hex(s.key()), "000102030405060708090a0b0c0d0e0f");
    assert!(ConnectionSecret::new(&[0u8; 39]).is_err());
}

#[test]
fn nonce_advance_vectors() {
    let n = secret_00_3f().tx_nonce(Role::Client);
    assert_eq!(
        hex(&next_nonce(&n, Revision::Rev1)),
        "1c1d1e1f2121222324252627"
    );
    assert_eq!(
        hex(&next_nonce(&n, Revision::Rev0)),
        "1d1d1e1f2021222324252627"
    );
    // A CLIENT_IDENT (2 GCM operations) then a KEEPALIVE2 (1) in rev1: counter + 3.
    let mut tx = secret_00_3f().tx(Role::Client, Revision::Rev1).unwrap();
    let mut out = Vec::new();
    tx.seal_frame(Tag::ClientIdent, &[(&[0u8; 123], 8)], &mut out)
        .unwrap();
    assert_eq!(hex(&tx.next_nonce()), "1c1d1e1f2221222324252627");
    tx.seal_frame(Tag::Keepalive2, &[(&[0u8; 8], 8)], &mut out)
        .unwrap();
    assert_eq!(hex(&tx.next_nonce()), "1c1d1e1f2321222324252627");
    // rev0: one operation per frame, first four bytes.
    let mut tx = secret_00_3f().tx(Role::Client, Revision::Rev0).unwrap();
    tx.seal_frame(Tag::ClientIdent, &[(&[0u8; 123], 8)], &mut out)
        .unwrap();
    assert_eq!(hex(&tx.next_nonce()), "1d1d1e1f2021222324252627");
}

#[test]
fn on_wire_sizes() {
    let s = secret_00_3f();
    for (tag, len, expect) in [
        (Tag::AuthSignature, 32, 96),
        (Tag::Keepalive2, 8, 96),
        (Tag::ClientIdent, 123, 192),
        (Tag::Wait, 0, 96),
    ] {
        let mut tx = s.tx(Role::Client, Revision::Rev1).unwrap();
        let mut out = Vec::new();
        let payload = vec![0x5a; len];
        tx.seal_frame(tag, &[(&payload, 8)], &mut out).unwrap();
        assert_eq!(out.len(), expect, "{tag}");
        assert_eq!(SecureTx::wire_len(Revision::Rev1, &[len]), expect);
    }
    assert_eq!(FIRST_BLOCK_LEN, 96);
}

/// The spec's layouts, written out independently with raw AES-GCM calls.
struct RawSealer {
    key: LessSafeKey,
    nonce: [u8; 12],
    rev: Revision,
}

impl RawSealer {
    fn new(key: &[u8; 16], nonce: [u8; 12], rev: Revision) -> Self {
        Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key).unwrap()),
            nonce,
            rev,
        }
    }
    fn op(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        let mut b = plaintext.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::empty(),
                &mut b,
            )
            .unwrap();
        out.extend_from_slice(&b);
        out.extend_from_slice(tag.as_ref());
        self.nonce = next_nonce(&self.nonce, self.rev);
    }
}

fn padded(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.resize(s.len().div_ceil(16) * 16, 0);
    v
}

fn raw_frame(raw: &mut RawSealer, tag: Tag, segs: &[(&[u8], u16)]) -> Vec<u8> {
    let descs: Vec<SegmentDesc> = segs
        .iter()
        .map(|(b, a)| SegmentDesc {
            len: b.len() as u32,
            align: *a,
        })
        .collect();
    let p = Preamble::new(tag, &descs);
    let n = usize::from(p.num_segments);
    let mut out = Vec::new();
    match raw.rev {
        Revision::Rev1 => {
            let p0 = padded(segs.first().map_or(&[][..], |s| s.0));
            let mut first = p.encode().to_vec();
            first.extend_from_slice(&p0[..p0.len().min(48)]);
            first.resize(80, 0);
            raw.op(&first, &mut out);
            if p0.len() > 48 {
                raw.op(&p0[48..], &mut out);
            }
            if n > 1 {
                let mut tail = Vec::new();
                for s in &segs[1..n] {
                    tail.extend_from_slice(&padded(s.0));
                }
                tail.push(0x0e);
                tail.extend_from_slice(&[0; 15]);
                raw.op(&tail, &mut out);
            }
        }
        Revision::Rev0 => {
            let mut all = p.encode().to_vec();
            for s in &segs[..n] {
                all.extend_from_slice(&padded(s.0));
            }
            all.extend_from_slice(&[0; 16]);
            raw.op(&all, &mut out);
        }
    }
    out
}

/// A frame to send: tag and (bytes, alignment) segments.
type Sample = (Tag, Vec<(Vec<u8>, u16)>);

fn sample_frames() -> Vec<Sample> {
    let bytes = |len: usize, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    let mut v = Vec::new();
    for len0 in [0usize, 1, 15, 16, 17, 32, 47, 48, 49, 63, 64, 65, 123, 500] {
        v.push((Tag::AuthRequest, vec![(bytes(len0, 1), ALIGN_DEFAULT)]));
    }
    for (h, f, m, d) in [
        (41, 0, 0, 0),
        (41, 5, 0, 0),
        (41, 205, 0, 0),
        (41, 0, 0, 4096),
        (41, 100, 3, 8192),
        (41, 0, 7, 0),
        (0, 0, 0, 33),
        (64, 1, 1, 1),
        (49, 48, 47, 65536 + 3),
    ] {
        v.push((
            Tag::Message,
            vec![
                (bytes(h, 2), ALIGN_DEFAULT),
                (bytes(f, 3), ALIGN_DEFAULT),
                (bytes(m, 4), ALIGN_DEFAULT),
                (bytes(d, 5), ALIGN_PAGE),
            ],
        ));
    }
    v
}

fn as_refs(segs: &[(Vec<u8>, u16)]) -> Vec<(&[u8], u16)> {
    segs.iter().map(|(b, a)| (&b[..], *a)).collect()
}

/// `SecureTx` output equals the independent spec layout for every sample, both revisions,
/// both backends; and every backend opens every backend's frames.
#[test]
fn layout_matches_spec_and_backends_agree() {
    let s = secret_00_3f();
    let frames = sample_frames();
    for rev in [Revision::Rev0, Revision::Rev1] {
        let mut raw = RawSealer::new(s.key(), s.tx_nonce(Role::Client), rev);
        let mut expect = Vec::new();
        for (tag, segs) in &frames {
            expect.extend(raw_frame(&mut raw, *tag, &as_refs(segs)));
        }
        for &sealer in Backend::ALL {
            let mut tx = SecureTx::new(sealer, s.key(), s.tx_nonce(Role::Client), rev).unwrap();
            let mut wire = Vec::new();
            for (tag, segs) in &frames {
                let before = wire.len();
                tx.seal_frame(*tag, &as_refs(segs), &mut wire).unwrap();
                let lens: Vec<usize> = segs.iter().map(|s| s.0.len()).collect();
                assert_eq!(wire.len() - before, SecureTx::wire_len(rev, &lens));
            }
            assert!(
                wire == expect,
                "{rev:?} {} differs from spec",
                sealer.name()
            );
            for &opener in Backend::ALL {
                let mut rx = SecureRx::new(
                    opener,
                    s.key(),
                    s.rx_nonce(Role::Server),
                    rev,
                    Limits::default(),
                )
                .unwrap();
                let mut input = &wire[..];
                for (tag, segs) in &frames {
                    let (n, f) = rx.feed(input).unwrap();
                    input = &input[n..];
                    let f: Frame<Vec<u8>> = f.unwrap();
                    assert_eq!(f.tag(), *tag);
                    for (i, (b, _)) in segs.iter().enumerate() {
                        assert_eq!(f.segment(i), &b[..]);
                    }
                }
                assert!(input.is_empty() && rx.at_boundary());
            }
        }
    }
}

/// The spec's KEEPALIVE2 example payload sealed with secret 00..3f: both backends and the raw
/// spec layout agree, and the decrypted preamble is exactly the crc-mode one from §3.8.
#[test]
fn keepalive2_secure_matches_crc_preamble() {
    let payload = [0x00, 0xf1, 0x53, 0x65, 0x00, 0x65, 0xcd, 0x1d];
    let s = secret_00_3f();
    let mut outs = Vec::new();
    for &b in Backend::ALL {
        let mut tx = SecureTx::new(b, s.key(), s.tx_nonce(Role::Client), Revision::Rev1).unwrap();
        let mut out = Vec::new();
        tx.seal_frame(Tag::Keepalive2, &[(&payload, 8)], &mut out)
            .unwrap();
        outs.push(out);
    }
    let mut raw = RawSealer::new(s.key(), s.tx_nonce(Role::Client), Revision::Rev1);
    let expect = raw_frame(&mut raw, Tag::Keepalive2, &[(&payload, 8)]);
    for o in &outs {
        assert_eq!(o, &expect);
    }
    // The plaintext of the first block is the crc-mode preamble plus the zero-filled payload.
    let mut rx = s
        .rx(Role::Server, Revision::Rev1, Limits::default())
        .unwrap();
    let (n, f) = rx.feed(&expect).unwrap();
    assert_eq!(n, 96);
    let f = f.unwrap();
    assert_eq!(
        hex(&f.preamble.encode()),
        concat!(
            "12010800000008000000000000000000",
            "000000000000000000000000d8d5f599"
        )
    );
    assert_eq!(f.segment(0), &payload);
}
