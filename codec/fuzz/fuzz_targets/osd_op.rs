//! The `MOSDOp` and `MOSDOpReply` front decoders (header version from the first byte's low
//! nibble) never panic, and whatever decodes re-encodes to bytes that decode to the same value.
//! (Byte identity is not required: a `bool` byte above 1 or unknown trailing bytes inside a
//! versioned struct are accepted as Ceph accepts them; the capture test checks byte identity
//! on what Ceph really sends.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use msgr2_codec::messages::{MOSDOp, MOSDOpReply, MessageFront};

fuzz_target!(|data: &[u8]| {
    let Some((&v, front)) = data.split_first() else { return };
    let version = u16::from(v & 0x0f);
    if let Ok(m) = MOSDOp::decode_front(front, version) {
        let again = m.front_bytes();
        assert_eq!(MOSDOp::decode_front(&again, version).as_ref(), Ok(&m));
    }
    if let Ok(r) = MOSDOpReply::decode_front(front, version) {
        let again = r.front_bytes();
        assert_eq!(MOSDOpReply::decode_front(&again, version).as_ref(), Ok(&r));
    }
});
