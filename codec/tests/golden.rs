//! Golden vectors from the wire reference (§0.4, §3.8), verified against real Ceph.

#![allow(clippy::unwrap_used)]

use msgr2_codec::addr::{AddrType, EntityAddr};
use msgr2_codec::crc::crc32c;
use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::{assemble, FrameDecoder, Limits, Tag, ALIGN_DEFAULT};
use msgr2_codec::msg::{MsgHeader2, PRIO_DEFAULT};
use msgr2_codec::payload::{ControlPayload, Hello, Keepalive2, UTime};
use msgr2_codec::Revision;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn crc32c_vectors() {
    assert_eq!(crc32c(0, b"123456789"), 0x58e3fa20);
    assert_eq!(crc32c(0xFFFF_FFFF, b"123456789"), 0x1cf96d7c);
    assert_eq!(crc32c(0xFFFF_FFFF, b""), 0xffffffff);
}

#[test]
fn hello_rev1() {
    let wire = hex("01 01 24 00 00 00 08 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 3f bd 6b 06
         08 01 01 01 1c 00 00 00 02 00 00 00 00 00 00 00
         10 00 00 00 02 00 0c e4 0a 00 00 01 00 00 00 00
         00 00 00 00 f4 04 55 bc");
    let hello = Hello {
        entity_type: EntityType::Client,
        peer_addr: EntityAddr::new(AddrType::Msgr2, "10.0.0.1:3300".parse().unwrap(), 0),
    };
    let payload = hello.to_bytes();
    assert_eq!(payload.len(), 36);
    let mut out = Vec::new();
    assemble(
        Revision::Rev1,
        Tag::Hello,
        &[(&payload, ALIGN_DEFAULT)],
        &mut out,
    );
    assert_eq!(out, wire);
    let (n, f) = FrameDecoder::new(Revision::Rev1, Limits::default())
        .feed(&wire)
        .unwrap();
    assert_eq!(n, 72);
    assert_eq!(Hello::decode(f.unwrap().segment(0)).unwrap(), hello);
}

#[test]
fn keepalive2_rev1_and_rev0() {
    let ka = Keepalive2 {
        timestamp: UTime {
            sec: 1_700_000_000,
            nsec: 500_000_000,
        },
    };
    let rev1 = hex("12 01 08 00 00 00 08 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 d8 d5 f5 99
         00 f1 53 65 00 65 cd 1d 39 7f 34 4d");
    let rev0 = hex("12 01 08 00 00 00 08 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 d8 d5 f5 99
         00 f1 53 65 00 65 cd 1d 00 39 7f 34 4d 00 00 00 00 00 00 00 00 00 00 00 00");
    for (rev, wire) in [(Revision::Rev1, rev1), (Revision::Rev0, rev0)] {
        let mut out = Vec::new();
        assemble(
            rev,
            Tag::Keepalive2,
            &[(&ka.to_bytes(), ALIGN_DEFAULT)],
            &mut out,
        );
        assert_eq!(out, wire, "{rev:?}");
        let (n, f) = FrameDecoder::new(rev, Limits::default())
            .feed(&wire)
            .unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(Keepalive2::decode(f.unwrap().segment(0)).unwrap(), ka);
    }
}

#[test]
fn message_with_front_rev1() {
    let h = MsgHeader2 {
        seq: 1,
        msg_type: 5,
        priority: PRIO_DEFAULT,
        version: 1,
        ..Default::default()
    };
    let header = h.to_bytes();
    let mut out = Vec::new();
    assemble(
        Revision::Rev1,
        Tag::Message,
        &[(&header, 8), (b"hello", 8)],
        &mut out,
    );
    assert_eq!(out.len(), 95);
    assert_eq!(
        &out[..14],
        hex("11 02 29 00 00 00 08 00 05 00 00 00 08 00").as_slice()
    );
    assert_eq!(&out[32..73], header.as_slice());
    assert_eq!(
        &out[73..77],
        crc32c(0xFFFF_FFFF, &header).to_le_bytes().as_slice()
    );
    assert_eq!(&out[77..82], b"hello");
    let mut epi = vec![0x0e];
    epi.extend_from_slice(&crc32c(0xFFFF_FFFF, b"hello").to_le_bytes());
    epi.extend_from_slice(&[0; 8]);
    assert_eq!(&out[82..], epi.as_slice());
    let (_, f) = FrameDecoder::new(Revision::Rev1, Limits::default())
        .feed(&out)
        .unwrap();
    let f = f.unwrap();
    assert_eq!(MsgHeader2::decode(f.segment(0)).unwrap(), h);
    assert_eq!(f.segment(1), b"hello");
}

#[test]
fn wait_is_a_bare_preamble_in_rev1() {
    let mut out = Vec::new();
    assemble(Revision::Rev1, Tag::Wait, &[(&[], ALIGN_DEFAULT)], &mut out);
    assert_eq!(out.len(), 32);
    let mut rev0 = Vec::new();
    assemble(
        Revision::Rev0,
        Tag::Wait,
        &[(&[], ALIGN_DEFAULT)],
        &mut rev0,
    );
    assert_eq!(rev0.len(), 32 + 17);
    assert_eq!(
        &rev0[33..37],
        &[0xff; 4],
        "used-but-empty segment crc is 0xffffffff"
    );
    for (rev, b) in [(Revision::Rev1, out), (Revision::Rev0, rev0)] {
        let (n, f) = FrameDecoder::new(rev, Limits::default()).feed(&b).unwrap();
        assert_eq!((n, f.unwrap().tag()), (b.len(), Tag::Wait));
    }
}

#[test]
fn message_with_empty_front_and_data_uses_ffffffff_crc() {
    let h = MsgHeader2::default().to_bytes();
    let data = vec![7u8; 5000];
    let mut out = Vec::new();
    assemble(
        Revision::Rev1,
        Tag::Message,
        &[(&h, 8), (&[], 8), (&[], 8), (&data, 4096)],
        &mut out,
    );
    let epi = &out[out.len() - 13..];
    assert_eq!(epi[0], 0x0e);
    assert_eq!(&epi[1..9], &[0xff; 8]);
    let (_, f) = FrameDecoder::new(Revision::Rev1, Limits::default())
        .feed(&out)
        .unwrap();
    assert_eq!(f.unwrap().segment(3), data.as_slice());
}
