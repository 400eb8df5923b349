//! Preamble decoding and banner parsing never panic; accepted preambles re-encode identically.
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::banner::Banner;
use msgr2_codec::frame::{Limits, Preamble};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 32 {
        let mut b = [0u8; 32];
        b.copy_from_slice(&data[..32]);
        if let Ok(p) = Preamble::decode(&b, &Limits::default()) {
            // reserved byte 27 is not kept; everything else must round trip
            let mut again = p.encode();
            again[27] = b[27];
            if b[27] == 0 {
                assert_eq!(again, b);
            }
        }
    }
    if data.len() >= 10 {
        let mut p = [0u8; 10];
        p.copy_from_slice(&data[..10]);
        let _ = Banner::decode_prefix(&p);
        let _ = Banner::decode_payload(&data[10..]);
    }
});
