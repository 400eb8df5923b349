//! The secure-mode opener never panics and never allocates past its limits on arbitrary
//! ciphertext, in both revisions, whole or split; and a frame sealed with the same key always
//! opens (so the fuzzer also explores valid frames: input bytes become segment contents).
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::frame::{Limits, Tag};
use msgr2_codec::Revision;
use msgr2_crypto::secure::{ConnectionSecret, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let rev = if sel & 1 == 0 { Revision::Rev1 } else { Revision::Rev0 };
    let secret: Vec<u8> = (0..64).collect();
    let s = ConnectionSecret::new(&secret).expect("64-byte secret");
    let limits = Limits { max_control_segment: 1 << 16, max_message_segment: 1 << 20, max_message_total: 1 << 20 };
    // 1. arbitrary bytes as ciphertext
    let mut rx = s.rx(Role::Server, rev, limits).expect("rx");
    let chunk = usize::from(sel >> 1) + 1;
    for piece in rest.chunks(chunk) {
        let mut p = piece;
        let mut ok = true;
        while !p.is_empty() {
            match rx.feed(p) {
                Ok((n, _)) => p = &p[n..],
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            break;
        }
    }
    // 2. the bytes as segments of a real frame: must round trip
    let cut = rest.len() / 2;
    let (a, b) = rest.split_at(cut);
    let mut tx = s.tx(Role::Client, rev).expect("tx");
    let mut wire = Vec::new();
    let h = [0u8; 41];
    tx.seal_frame(Tag::Message, &[(&h, 8), (a, 8), (&[], 8), (b, 4096)], &mut wire).expect("seal");
    let mut rx = s.rx(Role::Server, rev, limits).expect("rx");
    let (n, f) = rx.feed(&wire).expect("open what we sealed");
    assert_eq!(n, wire.len());
    let f = f.expect("a frame");
    assert_eq!((f.segment(1), f.segment(3)), (a, b));
});
