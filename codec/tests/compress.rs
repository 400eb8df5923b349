//! On-wire compression codecs: round trips, Ceph's framing of each method, and hostile input
//! (bounded output, typed errors, no panics).

use msgr2_codec::compress::{
    compress, compress_segments, decompress, decompress_segments, CompressError, Method,
};
use msgr2_codec::frame::{Limits, Tag};
use proptest::prelude::*;

fn text(n: usize) -> Vec<u8> {
    b"osd_heartbeat ping padding 0123456789 "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

fn roundtrip(m: Method, data: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    compress(m, data, &mut c).expect("compress");
    let d = decompress(m, &c, data.len()).expect("decompress");
    assert_eq!(d, data, "{m} round trip");
    c
}

#[test]
fn every_method_round_trips_and_shrinks_text() {
    for m in Method::ALL {
        for n in [1usize, 7, 100, 2000, 4096, 65536, 300_000] {
            let data = text(n);
            let c = roundtrip(m, &data);
            if n >= 2000 {
                assert!(c.len() < n / 4, "{m}: {n} -> {}", c.len());
            }
        }
    }
}

#[test]
fn ceph_framing_of_each_method() {
    let data = text(5000);
    let mut c = Vec::new();
    compress(Method::Zlib, &data, &mut c).unwrap();
    assert_eq!(c[0], 0, "zlib variation mark 0");
    // The rest is a raw deflate stream (no zlib header).
    let mut d = flate2::read::DeflateDecoder::new(&c[1..]);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut d, &mut out).unwrap();
    assert_eq!(out, data);
    // ISA-L's mark (1) reads the same.
    c[0] = 1;
    assert_eq!(decompress(Method::Zlib, &c, 5000).unwrap(), data);

    let mut c = Vec::new();
    compress(Method::Zstd, &data, &mut c).unwrap();
    assert_eq!(u32::from_le_bytes(c[..4].try_into().unwrap()), 5000);
    assert_eq!(zstd::decode_all(&c[4..]).unwrap(), data);

    let mut c = Vec::new();
    compress(Method::Lz4, &data, &mut c).unwrap();
    assert_eq!(u32::from_le_bytes(c[..4].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(c[4..8].try_into().unwrap()), 5000);
    assert_eq!(
        u32::from_le_bytes(c[8..12].try_into().unwrap()) as usize,
        c.len() - 12
    );

    let mut c = Vec::new();
    compress(Method::Snappy, &data, &mut c).unwrap();
    assert_eq!(snap::raw::Decoder::new().decompress_vec(&c).unwrap(), data);
}

/// Ceph's LZ4 compressor streams one block per buffer of a fragmented bufferlist; later blocks
/// refer back into earlier ones.
#[test]
fn lz4_chained_blocks_decode() {
    let a = text(3000);
    let mut b = text(2500);
    b[100] = b'!';
    let ca = lz4_flex::block::compress(&a);
    let cb = lz4_flex::block::compress_with_dict(&b, &a);
    let mut wire = Vec::new();
    wire.extend_from_slice(&2u32.to_le_bytes());
    for (raw, c) in [(a.len(), &ca), (b.len(), &cb)] {
        wire.extend_from_slice(&(raw as u32).to_le_bytes());
        wire.extend_from_slice(&(c.len() as u32).to_le_bytes());
    }
    wire.extend_from_slice(&ca);
    wire.extend_from_slice(&cb);
    let out = decompress(Method::Lz4, &wire, 10_000).unwrap();
    assert_eq!(&out[..3000], &a[..]);
    assert_eq!(&out[3000..], &b[..]);
}

#[test]
fn claimed_sizes_over_the_limit_are_refused_before_allocating() {
    // zstd: a 4 GiB length prefix.
    let e = decompress(Method::Zstd, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3], 1 << 20).unwrap_err();
    assert!(matches!(
        e,
        CompressError::TooLarge {
            method: Method::Zstd,
            len: 0xffff_ffff,
            ..
        }
    ));
    // snappy: a varint claiming 4 GiB - 1.
    let e = decompress(Method::Snappy, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0], 1 << 20).unwrap_err();
    assert!(matches!(
        e,
        CompressError::TooLarge {
            method: Method::Snappy,
            ..
        }
    ));
    // lz4: two blocks of 3 GiB each.
    let mut w = 2u32.to_le_bytes().to_vec();
    for _ in 0..2 {
        w.extend_from_slice(&(3u32 << 30).to_le_bytes());
        w.extend_from_slice(&0u32.to_le_bytes());
    }
    let e = decompress(Method::Lz4, &w, 1 << 20).unwrap_err();
    assert!(
        matches!(e, CompressError::TooLarge { method: Method::Lz4, len, .. } if len == 6 << 30)
    );
    // lz4: a count the input cannot hold.
    let e = decompress(Method::Lz4, &u32::MAX.to_le_bytes(), 1 << 20).unwrap_err();
    assert_eq!(
        e,
        CompressError::Truncated {
            method: Method::Lz4
        }
    );
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let zeros = vec![0u8; 4 << 20];
    for m in Method::ALL {
        let mut c = Vec::new();
        compress(m, &zeros, &mut c).unwrap();
        assert!(c.len() < 300_000, "{m} {}", c.len());
        let e = decompress(m, &c, 64 << 10).unwrap_err();
        assert!(
            matches!(e, CompressError::TooLarge { method, .. } if method == m),
            "{m}: {e}"
        );
        // Exactly at the limit is fine.
        assert_eq!(decompress(m, &c, 4 << 20).unwrap().len(), 4 << 20);
    }
}

/// A zlib bomb stops with exactly `limit + 1` bytes inflated: the output buffer never grows
/// past that.
#[test]
fn zlib_output_never_grows_past_the_limit() {
    let mut c = Vec::new();
    compress(Method::Zlib, &vec![0u8; 1 << 20], &mut c).unwrap();
    for limit in [10_000, 64 << 10, 100_001] {
        let e = decompress(Method::Zlib, &c, limit).unwrap_err();
        assert_eq!(
            e,
            CompressError::TooLarge {
                method: Method::Zlib,
                len: limit as u64 + 1,
                limit: limit as u64
            }
        );
    }
}

/// Incompressible input (larger compressed than the output space deflate is first given, so
/// it takes several passes), appended after bytes already in the buffer, round-trips through
/// every method.
#[test]
fn incompressible_input_round_trips_after_a_prefix() {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for m in Method::ALL {
        let mut c = b"prefix".to_vec();
        compress(m, &data, &mut c).unwrap();
        assert_eq!(&c[..6], b"prefix", "{m}");
        assert_eq!(decompress(m, &c[6..], data.len()).unwrap(), data, "{m}");
    }
}

/// Ceph's compressor names, as `ms_osd_compression_algorithm` and the admin socket print them.
#[test]
fn methods_print_as_ceph_names() {
    let names: Vec<String> = Method::ALL.iter().map(|m| m.to_string()).collect();
    assert_eq!(names, ["snappy", "zlib", "zstd", "lz4"]);
    for m in Method::ALL {
        assert_eq!(Method::from_name(&m.to_string()), Some(m));
    }
}

#[test]
fn truncated_and_corrupt_input_is_a_typed_error() {
    let data = text(20_000);
    for m in Method::ALL {
        let mut c = Vec::new();
        compress(m, &data, &mut c).unwrap();
        for cut in [0, 1, 3, 5, c.len() / 2, c.len() - 1] {
            assert!(
                decompress(m, &c[..cut], 1 << 20).is_err(),
                "{m} cut at {cut}"
            );
        }
        let mut bad = c.clone();
        bad.extend_from_slice(b"trailing");
        assert!(decompress(m, &bad, 1 << 20).is_err(), "{m} trailing bytes");
    }
}

#[test]
fn frame_transform_follows_the_min_size_rule() {
    let h = text(41);
    let front = text(600);
    let data = text(500);
    let segs: [&[u8]; 4] = [&h, &front, &[], &data];
    assert!(compress_segments(Method::Snappy, &segs, 1142).is_none());
    let c = compress_segments(Method::Snappy, &segs, 1141).expect("compressed at the min size");
    assert_eq!(c.len(), 4);
    assert!(c[2].is_empty(), "an empty segment stays empty");
    let borrowed: Vec<&[u8]> = c.iter().map(|v| v.as_slice()).collect();
    let d =
        decompress_segments(Method::Snappy, Tag::Message, &borrowed, &Limits::default()).unwrap();
    assert_eq!(d, vec![h.clone(), front.clone(), vec![], data.clone()]);
    // The frame limits bound the output: 1000 bytes per control segment.
    let limits = Limits {
        max_control_segment: 500,
        max_message_segment: 550,
        max_message_total: 1000,
    };
    let e = decompress_segments(Method::Snappy, Tag::Message, &borrowed, &limits).unwrap_err();
    assert!(
        matches!(e, CompressError::TooLarge { limit: 550, .. }),
        "{e}"
    );
    let limits = Limits {
        max_message_segment: 1000,
        ..limits
    };
    // 41 + 600 fit, the data segment (500) would pass 1000 in total.
    let e = decompress_segments(Method::Snappy, Tag::Message, &borrowed, &limits).unwrap_err();
    assert!(
        matches!(e, CompressError::TooLarge { limit: 359, .. }),
        "{e}"
    );
    let e =
        decompress_segments(Method::Snappy, Tag::Keepalive2, &borrowed[1..2], &limits).unwrap_err();
    assert!(
        matches!(e, CompressError::TooLarge { limit: 500, .. }),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..9000), m in 0usize..4) {
        let m = Method::ALL[m];
        let mut c = Vec::new();
        compress(m, &data, &mut c).unwrap();
        prop_assert_eq!(decompress(m, &c, data.len()).unwrap(), data);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600), m in 0usize..4) {
        let _ = decompress(Method::ALL[m], &data, 1 << 16);
    }
}
