//! Address decoders (binary and text, including mon_host) never panic; decoded values
//! round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::monhost::parse_mon_host;
use msgr2_codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(data);
    if let Ok(v) = EntityAddrVec::decode(&mut d) {
        let mut out = Vec::new();
        v.encode(&mut out);
        let mut d2 = Decoder::new(&out);
        assert_eq!(EntityAddrVec::decode(&mut d2).ok(), Some(v));
    }
    let mut d = Decoder::new(data);
    let _ = EntityAddr::decode(&mut d);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(a) = s.parse::<EntityAddr>() {
            let _ = a.to_string().parse::<EntityAddr>();
        }
        let _ = s.parse::<EntityAddrVec>();
        let _ = parse_mon_host(s);
    }
});
