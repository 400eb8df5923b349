#![allow(clippy::unwrap_used)]
//! Real Ceph 16.2.15 secure-mode (rev1) streams: decrypt every frame after the mode switch
//! with `SecureRx`, check it against the capture-time listing, then re-seal the frames with
//! `SecureTx` and require byte-identical output.

use std::path::PathBuf;

use msgr2_codec::banner::{Banner, BANNER_PREFIX_LEN};
use msgr2_codec::frame::{Frame, FrameDecoder, Limits, Tag};
use msgr2_codec::{MsgHeader2, Revision};
use msgr2_crypto::secure::{Backend, ConnectionSecret, Role, SecureRx, SecureTx};

const PREFIX: &str = "secure-cephx-lspools";

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One line of the capture-time listing: `c2s @   248: AUTH_SIGNATURE segs=[32] ...`.
#[derive(Debug)]
struct Listed {
    offset: usize,
    tag: String,
    segs: Vec<u32>,
    msg: Option<(u16, u64)>,
}

#[derive(Debug, Default)]
struct ConnInfo {
    secret: Vec<u8>,
    client_sig: Vec<u8>,
    server_sig: Vec<u8>,
    c2s: Vec<Listed>,
    s2c: Vec<Listed>,
}

fn parse_listing_line(rest: &str) -> Listed {
    // "@   248: AUTH_SIGNATURE    segs=[32] (96 bytes, GCM tag ok)"
    let rest = rest.trim_start_matches('@').trim_start();
    let (off, rest) = rest.split_once(':').unwrap();
    let mut words = rest.split_whitespace();
    let tag = words.next().unwrap().to_string();
    let segs_txt = rest
        .split_once("segs=[")
        .unwrap()
        .1
        .split_once(']')
        .unwrap()
        .0;
    let segs = segs_txt
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_string)
    };
    let msg = field("msg_type=0x").map(|t| {
        (
            u16::from_str_radix(&t, 16).unwrap(),
            field("seq=").unwrap().parse().unwrap(),
        )
    });
    Listed {
        offset: off.trim().parse().unwrap(),
        tag,
        segs,
        msg,
    }
}

fn parse_cephx() -> Vec<ConnInfo> {
    let text = std::fs::read_to_string(captures().join(format!("{PREFIX}.cephx.txt"))).unwrap();
    let mut conns: Vec<ConnInfo> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("### ") {
            conns.push(ConnInfo::default());
            continue;
        }
        let Some(c) = conns.last_mut() else { continue };
        if let Some(h) = t.strip_prefix("connection secret (64 bytes): ") {
            c.secret = unhex(h.trim());
        } else if t.starts_with("expected client AUTH_SIGNATURE") {
            c.client_sig = unhex(t.rsplit(" = ").next().unwrap());
        } else if t.starts_with("expected server AUTH_SIGNATURE") {
            c.server_sig = unhex(t.rsplit(" = ").next().unwrap());
        } else if let Some(rest) = t.strip_prefix("c2s ") {
            c.c2s.push(parse_listing_line(rest));
        } else if let Some(rest) = t.strip_prefix("s2c ") {
            c.s2c.push(parse_listing_line(rest));
        }
    }
    conns
}

/// Decodes the crc-mode prefix of a stream (banner, then rev1 frames) until `stop` says the
/// mode switch follows the frame just decoded. Returns the switch offset and the frames.
fn crc_prefix(bytes: &[u8], mut stop: impl FnMut(Tag) -> bool) -> (usize, Vec<Tag>) {
    let mut prefix = [0u8; BANNER_PREFIX_LEN];
    prefix.copy_from_slice(&bytes[..BANNER_PREFIX_LEN]);
    let payload = Banner::decode_prefix(&prefix).unwrap();
    let mut at = BANNER_PREFIX_LEN + payload;
    Banner::decode_payload(&bytes[BANNER_PREFIX_LEN..at]).unwrap();
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut tags = Vec::new();
    loop {
        let (n, frame) = dec.feed(&bytes[at..]).unwrap();
        at += n;
        let frame = frame.expect("stream ended inside the crc-mode part");
        tags.push(frame.tag());
        if stop(frame.tag()) {
            assert!(dec.at_boundary());
            return (at, tags);
        }
    }
}

/// Decrypts a whole secure stream in one `feed` per frame; returns (offset, frame) pairs.
fn open_all(rx: &mut SecureRx, bytes: &[u8]) -> Vec<(usize, Frame<Vec<u8>>)> {
    let mut at = 0;
    let mut frames = Vec::new();
    while at < bytes.len() {
        let start = at;
        let (n, frame) = rx.feed(&bytes[at..]).unwrap();
        at += n;
        frames.push((start, frame.expect("incomplete frame at end of capture")));
    }
    assert_eq!(at, bytes.len());
    assert!(rx.at_boundary());
    frames
}

/// The same stream through `dest`/`advance`, `chunk` bytes at a time.
fn open_chunked(rx: &mut SecureRx, bytes: &[u8], chunk: usize) -> Vec<Frame<Vec<u8>>> {
    let mut frames = Vec::new();
    let mut input = bytes;
    while !input.is_empty() {
        let dest = rx.dest();
        let n = dest.len().min(chunk).min(input.len());
        dest[..n].copy_from_slice(&input[..n]);
        input = &input[n..];
        if let Some(f) = rx.advance(n).unwrap() {
            frames.push(f);
        }
    }
    assert!(rx.at_boundary());
    frames
}

fn check_against_listing(frames: &[(usize, Frame<Vec<u8>>)], listed: &[Listed]) {
    assert_eq!(frames.len(), listed.len());
    for ((off, f), l) in frames.iter().zip(listed) {
        assert_eq!(*off, l.offset);
        assert_eq!(f.tag().name(), l.tag);
        let segs: Vec<u32> = f.preamble.counted().iter().map(|d| d.len).collect();
        assert_eq!(segs, l.segs, "at {off}");
        assert_eq!(l.msg.is_some(), f.tag() == Tag::Message, "at {off}");
        if let Some((msg_type, seq)) = l.msg {
            let h = MsgHeader2::decode(f.segment(0)).unwrap();
            assert_eq!((h.msg_type, h.seq), (msg_type, seq), "at {off}");
        }
    }
}

fn reseal(
    backend: Backend,
    secret: &ConnectionSecret,
    sender: Role,
    frames: &[(usize, Frame<Vec<u8>>)],
) -> Vec<u8> {
    let mut tx = SecureTx::new(
        backend,
        secret.key(),
        secret.tx_nonce(sender),
        Revision::Rev1,
    )
    .unwrap();
    let mut out = Vec::new();
    for (_, f) in frames {
        let segs: Vec<(&[u8], u16)> = f
            .preamble
            .counted()
            .iter()
            .enumerate()
            .map(|(i, d)| (f.segment(i), d.align))
            .collect();
        tx.seal_frame(f.tag(), &segs, &mut out).unwrap();
    }
    out
}

#[test]
fn real_capture_decrypts_and_reseals_identically() {
    let conns = parse_cephx();
    assert_eq!(conns.len(), 3);
    assert_eq!(
        Backend::ALL.len(),
        2,
        "both backends must be compiled in tests"
    );
    for (i, info) in conns.iter().enumerate() {
        let read = |dir: &str| {
            std::fs::read(captures().join(format!("{PREFIX}.conn{i}.{dir}.bin"))).unwrap()
        };
        let c2s = read("c2s");
        let s2c = read("s2c");
        let secret = ConnectionSecret::new(&info.secret).unwrap();

        // Server → client: crc mode up to and including AUTH_DONE.
        let (s2c_switch, s2c_crc) = crc_prefix(&s2c, |t| t == Tag::AuthDone);
        let reply_more = s2c_crc.iter().filter(|&&t| t == Tag::AuthReplyMore).count();
        // Client → server: crc mode up to its last AUTH_REQUEST_MORE (one per AUTH_REPLY_MORE).
        let mut seen = 0;
        let (c2s_switch, _) = crc_prefix(&c2s, |t| match t {
            Tag::AuthRequest => reply_more == 0,
            Tag::AuthRequestMore => {
                seen += 1;
                seen == reply_more
            }
            _ => false,
        });
        assert_eq!(c2s_switch, info.c2s[0].offset, "conn{i}");
        assert_eq!(s2c_switch, info.s2c[0].offset, "conn{i}");

        for &backend in Backend::ALL {
            for (bytes, switch, receiver, listed, sig, first_ident) in [
                (
                    &c2s,
                    c2s_switch,
                    Role::Server,
                    &info.c2s,
                    &info.client_sig,
                    Tag::ClientIdent,
                ),
                (
                    &s2c,
                    s2c_switch,
                    Role::Client,
                    &info.s2c,
                    &info.server_sig,
                    Tag::ServerIdent,
                ),
            ] {
                let secure = &bytes[switch..];
                let mut rx = SecureRx::new(
                    backend,
                    secret.key(),
                    secret.rx_nonce(receiver),
                    Revision::Rev1,
                    Limits::default(),
                )
                .unwrap();
                let frames = open_all(&mut rx, secure);
                let frames: Vec<(usize, Frame<Vec<u8>>)> =
                    frames.into_iter().map(|(o, f)| (o + switch, f)).collect();
                check_against_listing(&frames, listed);
                assert_eq!(frames[0].1.tag(), Tag::AuthSignature);
                assert_eq!(frames[0].1.segment(0), &sig[..], "AUTH_SIGNATURE payload");
                assert_eq!(frames[1].1.tag(), first_ident);
                assert!(frames.len() > 2);
                assert!(frames[2..].iter().all(|(_, f)| f.tag() == Tag::Message));

                // Byte at a time and in odd chunks through dest/advance: same frames.
                for chunk in [1, 7, 97] {
                    let mut rx = SecureRx::new(
                        backend,
                        secret.key(),
                        secret.rx_nonce(receiver),
                        Revision::Rev1,
                        Limits::default(),
                    )
                    .unwrap();
                    let again = open_chunked(&mut rx, secure, chunk);
                    let expect: Vec<&Frame<Vec<u8>>> = frames.iter().map(|(_, f)| f).collect();
                    let got: Vec<&Frame<Vec<u8>>> = again.iter().collect();
                    assert_eq!(got, expect, "conn{i} chunk {chunk}");
                }

                // Re-seal with a fresh sender from the same start: identical bytes.
                let sender = match receiver {
                    Role::Server => Role::Client,
                    Role::Client => Role::Server,
                };
                let resealed = reseal(backend, &secret, sender, &frames);
                assert!(
                    resealed == secure,
                    "conn{i} {sender:?} re-seal with {} differs from the capture",
                    backend.name()
                );
            }
        }
    }
}
