//! The decompressing receive path: a frame read by the crc-mode decoder, then (as a
//! compressed frame) decompressed segment by segment under the frame limits. Never panics,
//! never allocates past the limits; and whatever we compress comes back identical.
//!
//! Input: byte 0 picks the method (low 2 bits) and the mode (bit 2: raw frame bytes for
//! the decoder, else a round trip of the rest through compress/decompress).
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::banner::Revision;
use msgr2_codec::compress::{compress_segments, decompress, decompress_segments, Method};
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};

const LIMITS: Limits = Limits {
    max_control_segment: 64 << 10,
    max_message_segment: 1 << 20,
    max_message_total: 2 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let method = Method::ALL[usize::from(sel & 3)];
    if sel & 4 != 0 {
        // Frame bytes as a peer would send them, decompressed after verification.
        let mut d = FrameDecoder::new(Revision::Rev1, LIMITS);
        let mut input = rest;
        while !input.is_empty() {
            let Ok((used, frame)) = d.feed(input) else {
                return;
            };
            input = &input[used..];
            if let Some(f) = frame {
                let n = usize::from(f.preamble.num_segments);
                let segs: Vec<&[u8]> = f.segments[..n].iter().map(|s| s.as_slice()).collect();
                if let Ok(out) = decompress_segments(method, f.tag(), &segs, &LIMITS) {
                    let total: usize = out.iter().map(Vec::len).sum();
                    assert!(total as u64 <= LIMITS.max_message_total);
                }
            }
            if used == 0 {
                return;
            }
        }
        return;
    }
    // Hostile bytes straight into the decompressor.
    if let Ok(out) = decompress(method, rest, 4096) {
        assert!(out.len() <= 4096);
    }
    // Our own output always comes back.
    let half = rest.len() / 2;
    let segs: [&[u8]; 2] = [&rest[..half], &rest[half..]];
    if let Some(z) = compress_segments(method, &segs, 0) {
        let zs: Vec<&[u8]> = z.iter().map(Vec::as_slice).collect();
        let back = decompress_segments(method, Tag::Message, &zs, &LIMITS).expect("own output");
        assert_eq!(back[0], segs[0]);
        assert_eq!(back[1], segs[1]);
    }
});
