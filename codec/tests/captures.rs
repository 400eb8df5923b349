//! Every frame of every real Ceph capture decodes, matches the independent listing, and
//! re-encodes to the identical bytes; any split of the byte stream decodes the same.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{connections, listing, Listed};
use msgr2_codec::banner::{Banner, BANNER_PREFIX_LEN};
use msgr2_codec::frame::{assemble, Frame, FrameDecoder, Limits, Tag};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::{Control, CON_MODE_SECURE};
use msgr2_codec::Revision;
use proptest::prelude::*;

const BANNER_LEN: usize = BANNER_PREFIX_LEN + 16;

/// Decodes frames from `bytes` (after the banner) until the end, or until the mode switches
/// to secure; returns (offset, wire length, frame).
fn frames(
    bytes: &[u8],
    stop_after: impl Fn(&[Frame<Vec<u8>>]) -> bool,
) -> Vec<(usize, usize, Frame<Vec<u8>>)> {
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut pos = BANNER_LEN;
    while pos < bytes.len() {
        let (n, f) = dec
            .feed(&bytes[pos..])
            .unwrap_or_else(|e| panic!("offset {pos}: {e}"));
        let f = f.unwrap_or_else(|| panic!("stream ends inside a frame at {pos}"));
        out.push((pos, n, f.clone()));
        seen.push(f);
        pos += n;
        if stop_after(&seen) {
            break;
        }
    }
    out
}

fn is_secure(frames: &[Frame<Vec<u8>>]) -> bool {
    frames.iter().any(|f| {
        matches!(Control::decode(f.tag(), f.segment(0)), Ok(Control::AuthDone(d)) if d.con_mode == CON_MODE_SECURE)
    })
}

/// Number of server auth replies (AUTH_REPLY_MORE/BAD_METHOD/DONE) in `frames`.
fn auth_replies(frames: &[Frame<Vec<u8>>]) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(
                f.tag(),
                Tag::AuthReplyMore | Tag::AuthBadMethod | Tag::AuthDone
            )
        })
        .count()
}

/// Frames of one direction: (offset, wire length, frame).
type Decoded = Vec<(usize, usize, Frame<Vec<u8>>)>;

fn decode_both(c: &common::Conn) -> (Decoded, Decoded) {
    let s2c = frames(&c.s2c, is_secure);
    let server: Vec<_> = s2c.iter().map(|x| x.2.clone()).collect();
    let secure = is_secure(&server);
    let replies = auth_replies(&server);
    let c2s = frames(&c.c2s, |seen| {
        secure
            && seen
                .iter()
                .filter(|f| matches!(f.tag(), Tag::AuthRequest | Tag::AuthRequestMore))
                .count()
                >= replies
    });
    (c2s, s2c)
}

#[test]
fn banners_are_pacifics() {
    for c in connections() {
        for b in [&c.c2s, &c.s2c] {
            let mut p = [0u8; BANNER_PREFIX_LEN];
            p.copy_from_slice(&b[..BANNER_PREFIX_LEN]);
            assert_eq!(Banner::decode_prefix(&p).unwrap(), 16);
            assert_eq!(
                Banner::decode_payload(&b[BANNER_PREFIX_LEN..BANNER_LEN]).unwrap(),
                Banner::PACIFIC
            );
        }
    }
}

#[test]
fn every_frame_matches_the_independent_listing() {
    let mut total = 0;
    for c in connections() {
        let (c2s, s2c) = decode_both(&c);
        let ours: Vec<Listed> = [("c2s", &c2s), ("s2c", &s2c)]
            .iter()
            .flat_map(|(dir, fs)| {
                fs.iter().map(move |(off, _, f)| Listed {
                    dir: dir.to_string(),
                    offset: *off,
                    tag: f.tag().name().to_owned(),
                    segs: f.preamble.counted().iter().map(|s| s.len).collect(),
                })
            })
            .collect();
        assert_eq!(ours, listing(&c.prefix, &c.conn), "{}.{}", c.prefix, c.conn);
        if !c.prefix.starts_with("secure") {
            // crc captures: the whole stream is frames.
            assert_eq!(c2s.last().map(|x| x.0 + x.1), Some(c.c2s.len()));
            assert_eq!(s2c.last().map(|x| x.0 + x.1), Some(c.s2c.len()));
        }
        total += ours.len();
    }
    assert!(total > 150, "decoded only {total} frames");
}

#[test]
fn every_frame_reencodes_to_identical_bytes() {
    for c in connections() {
        let (c2s, s2c) = decode_both(&c);
        for (stream, fs) in [(&c.c2s, &c2s), (&c.s2c, &s2c)] {
            for (off, len, f) in fs.iter() {
                let wire = &stream[*off..*off + *len];
                let n = usize::from(f.preamble.num_segments);
                if f.tag() == Tag::Message {
                    let h = MsgHeader2::decode(f.segment(0)).unwrap();
                    assert_eq!(h.to_bytes().as_slice(), f.segment(0));
                } else {
                    let ctl = Control::decode(f.tag(), f.segment(0)).unwrap_or_else(|e| {
                        panic!("{}.{} @{off} {}: {e}", c.prefix, c.conn, f.tag())
                    });
                    let mut payload = Vec::new();
                    ctl.encode(&mut payload);
                    assert_eq!(
                        payload,
                        f.segment(0),
                        "{} payload re-encode @{off}",
                        f.tag()
                    );
                }
                let segs: Vec<(&[u8], u16)> = (0..n)
                    .map(|i| (f.segment(i), f.preamble.segments[i].align))
                    .collect();
                let mut out = Vec::new();
                assemble(Revision::Rev1, f.tag(), &segs, &mut out);
                assert_eq!(
                    out, wire,
                    "{}.{} frame @{off} re-assembles identically",
                    c.prefix, c.conn
                );
            }
        }
    }
}

/// Decodes a stream fed in the given chunk sizes (cycled) and returns the frames.
fn decode_chunked(bytes: &[u8], chunks: &[usize]) -> Vec<Frame<Vec<u8>>> {
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut out = Vec::new();
    let mut pos = BANNER_LEN;
    let mut k = 0;
    while pos < bytes.len() {
        let step = chunks[k % chunks.len()].max(1);
        k += 1;
        let mut chunk = &bytes[pos..bytes.len().min(pos.saturating_add(step))];
        pos += chunk.len();
        while !chunk.is_empty() {
            let (n, f) = dec.feed(chunk).unwrap();
            chunk = &chunk[n..];
            out.extend(f);
        }
    }
    assert!(dec.at_boundary());
    out
}

fn crc_streams() -> Vec<Vec<u8>> {
    connections()
        .into_iter()
        .filter(|c| !c.prefix.starts_with("secure"))
        .flat_map(|c| [c.c2s, c.s2c])
        .collect()
}

#[test]
fn one_byte_at_a_time_and_every_two_way_split() {
    for s in crc_streams() {
        let whole = decode_chunked(&s, &[usize::MAX]);
        assert_eq!(decode_chunked(&s, &[1]), whole);
        if s.len() < 4000 {
            for cut in BANNER_LEN..s.len() {
                assert_eq!(
                    decode_chunked(&s, &[cut - BANNER_LEN, usize::MAX]),
                    whole,
                    "cut {cut}"
                );
            }
        }
    }
}

/// Receiving straight into `dest()` (the zero-copy path) gives the same frames.
#[test]
fn dest_advance_path_matches_feed() {
    for s in crc_streams() {
        let whole = decode_chunked(&s, &[usize::MAX]);
        let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
        let mut out = Vec::new();
        let mut pos = BANNER_LEN;
        while pos < s.len() {
            let want = dec.want();
            let dest = dec.dest();
            assert_eq!(dest.len(), want.len);
            let n = dest.len().min(s.len() - pos).min(777);
            dest[..n].copy_from_slice(&s[pos..pos + n]);
            pos += n;
            out.extend(dec.advance(n).unwrap());
        }
        assert_eq!(out, whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_splits_decode_identically(chunks in prop::collection::vec(1usize..300, 1..20), pick in 0usize..1000) {
        let streams = crc_streams();
        let s = &streams[pick % streams.len()];
        prop_assert_eq!(decode_chunked(s, &chunks), decode_chunked(s, &[usize::MAX]));
    }
}
