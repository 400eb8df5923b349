//! Every control payload decoder (selected by the first byte as the tag) never panics, and
//! whatever decodes re-encodes to bytes that decode to the same value. (Byte identity is not
//! required here: e.g. a sockaddr's padding is ignored on decode and written as zeros. The
//! capture tests check byte identity on everything real Ceph sends.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::Control;
use msgr2_codec::Tag;

fuzz_target!(|data: &[u8]| {
    let Some((&t, payload)) = data.split_first() else { return };
    let Some(tag) = Tag::from_u8(t) else { return };
    if tag == Tag::Message {
        if let Ok(h) = MsgHeader2::decode(payload) {
            assert_eq!(h.to_bytes().as_slice(), payload);
        }
        return;
    }
    if let Ok(c) = Control::decode(tag, payload) {
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(Control::decode(tag, &out).as_ref(), Ok(&c), "{tag} round trips");
    }
});
