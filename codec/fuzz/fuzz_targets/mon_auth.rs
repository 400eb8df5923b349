//! The `MAuth` and `MAuthReply` front decoders (renewals and rotating secrets over a mon
//! session) never panic, and whatever decodes re-encodes to bytes that decode to the same
//! value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::messages::{MAuth, MAuthReply, MessageFront};

fuzz_target!(|front: &[u8]| {
    if let Ok(m) = MAuth::decode_front(front, 1) {
        let again = m.front_bytes();
        assert_eq!(MAuth::decode_front(&again, 1).as_ref(), Ok(&m));
    }
    if let Ok(r) = MAuthReply::decode_front(front, 1) {
        let again = r.front_bytes();
        assert_eq!(MAuthReply::decode_front(&again, 1).as_ref(), Ok(&r));
    }
});
