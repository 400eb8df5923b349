//! Table-driven hostile input: each case asserts the specific typed error.

#![allow(clippy::unwrap_used)]

use msgr2_codec::banner::{Banner, BannerError};
use msgr2_codec::crc::crc32c;
use msgr2_codec::encoding::DecodeError;
use msgr2_codec::frame::{assemble, FrameDecoder, FrameError, Limits, SegmentAlloc, Tag};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::{Ack, AuthRequest, Control, ControlPayload, Hello, SessionReset};
use msgr2_codec::Revision;

/// A preamble with arbitrary fields and a correct crc.
fn preamble(tag: u8, n: u8, lens: [u32; 4]) -> Vec<u8> {
    let mut b = vec![tag, n];
    for l in lens {
        b.extend_from_slice(&l.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
    }
    b.extend_from_slice(&[0, 0]);
    let crc = crc32c(0, &b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(rev: Revision, bytes: &[u8]) -> Result<Option<Tag>, FrameError> {
    let mut d = FrameDecoder::new(rev, Limits::default());
    let (_, f) = d.feed(bytes)?;
    Ok(f.map(|f| f.tag()))
}

fn frame(rev: Revision, tag: Tag, segs: &[&[u8]]) -> Vec<u8> {
    let s: Vec<(&[u8], u16)> = segs.iter().map(|s| (*s, 8)).collect();
    let mut out = Vec::new();
    assemble(rev, tag, &s, &mut out);
    out
}

#[test]
fn banner_errors() {
    assert_eq!(
        Banner::decode_prefix(b"xxxx v2\n\x10\x00"),
        Err(BannerError::BadPrefix(*b"xxxx v2\n"))
    );
    assert_eq!(
        Banner::decode_prefix(b"ceph v027\x00"),
        Err(BannerError::Msgr1)
    );
    assert_eq!(
        Banner::decode_prefix(b"ceph v2\n\x04\x00"),
        Err(BannerError::ShortPayload(4))
    );
    assert_eq!(
        Banner::decode_prefix(b"ceph v2\n\xff\xff"),
        Err(BannerError::PayloadTooLong(65535))
    );
    assert_eq!(
        Banner::decode_payload(&[1, 0, 0]),
        Err(BannerError::ShortPayload(3))
    );
    assert_eq!(
        Banner::negotiate(
            &Banner::OURS,
            &Banner {
                supported: 0x7,
                required: 0x4
            }
        ),
        Err(BannerError::PeerRequiresMissing { missing: 0x4 })
    );
}

#[test]
fn preamble_errors() {
    let mut bad_crc = preamble(1, 1, [4, 0, 0, 0]);
    bad_crc[28] ^= 1;
    let cases: Vec<(&str, Vec<u8>, FrameError)> = vec![
        (
            "num_segments 0",
            preamble(1, 0, [4, 0, 0, 0]),
            FrameError::BadSegmentCount(0),
        ),
        (
            "num_segments 5",
            preamble(17, 5, [4, 4, 4, 4]),
            FrameError::BadSegmentCount(5),
        ),
        (
            "empty last segment",
            preamble(17, 2, [41, 0, 0, 0]),
            FrameError::EmptyLastSegment { index: 1 },
        ),
        (
            "unknown tag 0",
            preamble(0, 1, [4, 0, 0, 0]),
            FrameError::UnknownTag(0),
        ),
        (
            "unknown tag 99",
            preamble(99, 1, [4, 0, 0, 0]),
            FrameError::UnknownTag(99),
        ),
        (
            "control frame with 2 segments",
            preamble(1, 2, [4, 4, 0, 0]),
            FrameError::ControlSegments {
                tag: Tag::Hello,
                count: 2,
            },
        ),
        (
            "control segment over the limit",
            preamble(2, 1, [2 << 20, 0, 0, 0]),
            FrameError::SegmentTooLong {
                tag: Tag::AuthRequest,
                index: 0,
                len: 2 << 20,
                limit: 1 << 20,
            },
        ),
        (
            "message segment of 4 GiB",
            preamble(17, 4, [41, 0, 0, u32::MAX]),
            FrameError::SegmentTooLong {
                tag: Tag::Message,
                index: 3,
                len: u64::from(u32::MAX),
                limit: 256 << 20,
            },
        ),
        (
            "message total over the limit",
            preamble(17, 4, [41, 200 << 20, 0, 200 << 20]),
            FrameError::SegmentTooLong {
                tag: Tag::Message,
                index: 3,
                len: 41 + (400 << 20),
                limit: 256 << 20,
            },
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(decode(Revision::Rev1, &bytes), Err(want), "{name}");
    }
    assert!(matches!(
        decode(Revision::Rev1, &bad_crc),
        Err(FrameError::PreambleCrc { .. })
    ));
}

/// An allocator that records every request: a hostile preamble must never reach it.
#[derive(Default)]
struct Recorder(Vec<usize>);
impl SegmentAlloc for Recorder {
    type Buf = Vec<u8>;
    fn alloc(&mut self, _: Tag, _: usize, len: usize, _: usize) -> Vec<u8> {
        self.0.push(len);
        vec![0; len]
    }
}

#[test]
fn four_gib_claim_allocates_nothing() {
    let mut d = FrameDecoder::with_alloc(Revision::Rev1, Limits::default(), Recorder::default());
    let err = d.feed(&preamble(17, 4, [41, 0, 0, u32::MAX])).unwrap_err();
    assert!(matches!(err, FrameError::SegmentTooLong { .. }));
    assert!(d.allocator().0.is_empty());
    // and the decoder stays failed
    assert!(matches!(d.feed(&[0]), Err(FrameError::Poisoned(_))));
}

#[test]
fn segment_crc_and_late_status_errors() {
    for rev in [Revision::Rev1, Revision::Rev0] {
        let good = frame(rev, Tag::Ack, &[&[1, 0, 0, 0, 0, 0, 0, 0]]);
        let mut bad = good.clone();
        bad[33] ^= 0x40; // flip a payload bit
        assert!(
            matches!(
                decode(rev, &bad),
                Err(FrameError::SegmentCrc { index: 0, .. })
            ),
            "{rev:?}"
        );
    }
    let hdr = MsgHeader2::default().to_bytes();
    let msg = frame(Revision::Rev1, Tag::Message, &[&hdr, b"front"]);
    let epi = msg.len() - 13;
    let mut corrupt_front = msg.clone();
    corrupt_front[epi - 1] ^= 1;
    assert!(matches!(
        decode(Revision::Rev1, &corrupt_front),
        Err(FrameError::SegmentCrc { index: 1, .. })
    ));
    for (status, want) in [
        (0x00, Some(FrameError::BadLateStatus(0x00))),
        (0x0F, Some(FrameError::BadLateStatus(0x0F))),
        (0x1E, None),
    ] {
        let mut m = msg.clone();
        m[epi] = status;
        match want {
            Some(e) => assert_eq!(decode(Revision::Rev1, &m), Err(e)),
            None => assert_eq!(
                decode(Revision::Rev1, &m),
                Ok(Some(Tag::Message)),
                "high nibble is reserved"
            ),
        }
    }
    let rev0 = frame(Revision::Rev0, Tag::Message, &[&hdr, b"front"]);
    let mut m = rev0.clone();
    let at = rev0.len() - 17;
    m[at] = 0x80;
    assert_eq!(
        decode(Revision::Rev0, &m),
        Err(FrameError::BadLateFlags(0x80))
    );
}

#[test]
fn aborted_frames_are_verified_then_dropped() {
    let hdr = MsgHeader2::default().to_bytes();
    for (rev, status, epi_len) in [
        (Revision::Rev1, 0x01u8, 13usize),
        (Revision::Rev0, 0x01, 17),
    ] {
        let mut aborted = frame(rev, Tag::Message, &[&hdr, b"front"]);
        let at = aborted.len() - epi_len;
        aborted[at] = status;
        let next = frame(rev, Tag::Ack, &[&7u64.to_le_bytes()]);
        let mut d = FrameDecoder::new(rev, Limits::default());
        let mut stream = aborted.clone();
        stream.extend_from_slice(&next);
        let (n, f) = d.feed(&stream).unwrap();
        assert_eq!((n, f.map(|f| f.tag())), (stream.len(), Some(Tag::Ack)));
        assert_eq!(d.aborted_frames(), 1);
        // an aborted frame with a bad crc is still an error
        let mut bad = aborted.clone();
        bad[at - 1] ^= 1;
        assert!(matches!(
            decode(rev, &bad),
            Err(FrameError::SegmentCrc { .. })
        ));
    }
}

#[test]
fn payload_errors() {
    assert!(matches!(
        Ack::decode(&[1, 2, 3]),
        Err(DecodeError::Truncated { .. })
    ));
    assert_eq!(
        Ack::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 9]),
        Err(DecodeError::TrailingBytes {
            what: "ACK",
            count: 1
        })
    );
    assert!(matches!(
        SessionReset::decode(&[2]),
        Err(DecodeError::InvalidValue { .. })
    ));
    // HELLO with an unknown entity type
    let mut h = Hello {
        entity_type: msgr2_codec::EntityType::Mon,
        peer_addr: "v2:1.2.3.4:3300/0".parse().unwrap(),
    }
    .to_bytes();
    h[0] = 0x77;
    assert!(matches!(
        Hello::decode(&h),
        Err(DecodeError::InvalidValue {
            what: "Hello.entity_type",
            value: 0x77
        })
    ));
    // AUTH_REQUEST whose blob claims 4 GiB
    let mut a = AuthRequest {
        method: 2,
        preferred_modes: vec![2, 1],
        auth_payload: vec![1; 4],
    }
    .to_bytes();
    let l = a.len();
    a[l - 8..l - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        AuthRequest::decode(&a),
        Err(DecodeError::Truncated { .. })
    ));
    // mode vector claiming 2^32-1 entries
    let a = [2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        AuthRequest::decode(&a),
        Err(DecodeError::Truncated { .. })
    ));
    // MESSAGE is not a control payload; a 40-byte msg header is truncated, 42 has trailing bytes
    assert!(Control::decode(Tag::Message, &[]).is_err());
    assert!(matches!(
        MsgHeader2::decode(&[0; 40]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        MsgHeader2::decode(&[0; 42]),
        Err(DecodeError::TrailingBytes { .. })
    ));
}
