//! The incremental decoder never panics, never allocates beyond its limits, and gives the same
//! result whether the input arrives whole or in the chunk sizes the fuzzer picks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::frame::{FrameDecoder, Limits};
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::Control;
use msgr2_codec::Revision;

fn run(rev: Revision, data: &[u8], chunk: usize) -> Result<Vec<(u8, Vec<Vec<u8>>)>, ()> {
    let limits = Limits { max_control_segment: 1 << 16, max_message_segment: 1 << 20, max_message_total: 1 << 20 };
    let mut d = FrameDecoder::new(rev, limits);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        let mut p = piece;
        while !p.is_empty() {
            let (n, f) = d.feed(p).map_err(|_| ())?;
            p = &p[n..];
            if let Some(f) = f {
                if f.tag() == msgr2_codec::Tag::Message {
                    let _ = MsgHeader2::decode(f.segment(0));
                } else {
                    let _ = Control::decode(f.tag(), f.segment(0));
                }
                out.push((f.tag() as u8, f.segments.iter().map(|s| s.clone()).collect()));
            }
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let rev = if sel & 1 == 0 { Revision::Rev1 } else { Revision::Rev0 };
    let chunk = usize::from(sel >> 1) + 1;
    let whole = run(rev, rest, usize::MAX);
    let split = run(rev, rest, chunk);
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(()), Err(())) => {}
        // the whole input may end inside a frame only if split does too; both see the same bytes
        _ => panic!("whole and split decoding disagree"),
    }
});
