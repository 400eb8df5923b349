//! Every control payload decoder (selected by the first byte as the tag) never panics, and
//! whatever decodes re-encodes to the identical bytes.
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
        assert_eq!(out, payload, "{tag} re-encodes identically");
    }
});
