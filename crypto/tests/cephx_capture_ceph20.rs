#![allow(clippy::unwrap_used)]
//! cephx with `aes256k` keys against real Ceph 20.2.4 captures
//! (`tests/data/captures-ceph20/`, see its README): Ceph 20's own `ceph` CLI logging in to a
//! Ceph 20 mon whose keys are all `aes256k` (the default), in crc and in secure mode.
//!
//! Both sides are Ceph's C++, so these pin our aes256k cephx to Ceph's: the CLI's
//! HMAC-SHA256 challenge proof equals ours for the same challenges (and our server accepts
//! it), the mon's AUTH_DONE opens with the client key under TICKET_SESSION_KEY and the
//! connection secret under AUTH_CONNECTION_SECRET, the session keys are aes256k, and both
//! AUTH_SIGNATUREs on the wire are HMAC-SHA256 keyed with the 32-byte session key.

use std::path::PathBuf;
use std::sync::Arc;

use msgr2_codec::banner::BANNER_PREFIX_LEN;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};
use msgr2_codec::payload::{
    AuthDone, AuthReplyMore, AuthRequest, AuthRequestMore, AuthSignature, ControlPayload,
    CON_MODE_CRC, CON_MODE_SECURE,
};
use msgr2_codec::Revision;
use msgr2_crypto::auth::{AuthError, ClientAuth, ServerAuth, ServerStep};
use msgr2_crypto::cephx::types::{
    CephXAuthenticate, CephXServerChallenge, CephXTicketBlob, CephxEncode,
};
use msgr2_crypto::cephx::{
    build_authenticate, parse_mon_auth_done, verify_authenticate, MonClientAuth, MonServerAuth,
    MonServerContext, TicketStore, CONNECTION_SECRET_LEN, SERVICE_AUTH,
};
use msgr2_crypto::keyring::{KeyType, Keyring};
use msgr2_crypto::signature::auth_signature;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures-ceph20")
}

fn admin() -> EntityName {
    "client.admin".parse().unwrap()
}

struct Frame {
    end: usize,
    tag: Tag,
    seg: Vec<u8>,
}

/// The plain (pre-encryption) frames at the start of a stream.
fn plain_frames(stream: &[u8]) -> Vec<Frame> {
    let plen = u16::from_le_bytes([stream[8], stream[9]]) as usize;
    let mut off = BANNER_PREFIX_LEN + plen;
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut out = Vec::new();
    while off < stream.len() {
        match dec.feed(&stream[off..]) {
            Ok((n, Some(f))) => {
                off += n;
                out.push(Frame {
                    end: off,
                    tag: f.tag(),
                    seg: f.segment(0).to_vec(),
                });
            }
            _ => break,
        }
    }
    out
}

struct Capture {
    mode: u32,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    c2s_frames: Vec<Frame>,
    s2c_frames: Vec<Frame>,
}

impl Capture {
    fn load(stem: &str, mode: u32) -> Self {
        let c2s = std::fs::read(dir().join(format!("{stem}.conn0.c2s.bin"))).unwrap();
        let s2c = std::fs::read(dir().join(format!("{stem}.conn0.s2c.bin"))).unwrap();
        Self {
            mode,
            c2s_frames: plain_frames(&c2s),
            s2c_frames: plain_frames(&s2c),
            c2s,
            s2c,
        }
    }
    fn c2s(&self, tag: Tag) -> &Frame {
        self.c2s_frames.iter().find(|f| f.tag == tag).unwrap()
    }
    fn s2c(&self, tag: Tag) -> &Frame {
        self.s2c_frames.iter().find(|f| f.tag == tag).unwrap()
    }
    fn server_challenge(&self) -> u64 {
        let more = AuthReplyMore::decode(&self.s2c(Tag::AuthReplyMore).seg).unwrap();
        CephXServerChallenge::from_bytes(&more.auth_payload)
            .unwrap()
            .server_challenge
    }
    fn request_more(&self) -> Vec<u8> {
        AuthRequestMore::decode(&self.c2s(Tag::AuthRequestMore).seg)
            .unwrap()
            .auth_payload
    }
}

fn captures() -> [Capture; 2] {
    [
        Capture::load("crc-aes256k-ceph-s", CON_MODE_CRC),
        Capture::load("secure-aes256k-ceph-s", CON_MODE_SECURE),
    ]
}

fn keyring() -> Arc<Keyring> {
    let kr = Keyring::load(dir().join("aes256k.keyring")).unwrap();
    for e in kr.iter() {
        assert_eq!(e.key.key_type(), KeyType::Aes256k, "{}", e.name);
    }
    Arc::new(kr)
}

/// The CLI's proof is what we compute: HMAC-SHA256 of the challenge blob, folded.
#[test]
fn ceph20_proof_matches_ours() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap();
    let other = kr.get(&"osd.0".parse().unwrap()).unwrap();
    for c in captures() {
        let req = AuthRequest::decode(&c.c2s(Tag::AuthRequest).seg).unwrap();
        let mut client = MonClientAuth::new(admin(), key.clone(), TicketStore::new());
        assert_eq!(client.request().unwrap(), req.auth_payload);
        let sc = c.server_challenge();
        let real = c.request_more();
        assert_eq!(real.len(), 36);
        let auth = CephXAuthenticate::from_bytes(&real[2..]).unwrap();
        assert_eq!(auth.struct_v, 3);
        let ours = build_authenticate(
            key,
            sc,
            auth.client_challenge,
            &CephXTicketBlob::default(),
            auth.other_keys,
        )
        .unwrap();
        assert_eq!(ours, real, "byte-identical AUTH_REQUEST_MORE");
        verify_authenticate(key, sc, &real).unwrap();
        assert!(matches!(
            verify_authenticate(other, sc, &real),
            Err(AuthError::BadProof(_))
        ));
    }
}

/// The mon's AUTH_DONE opens with the client's aes256k key; every ticket's session key is
/// aes256k (AUTH: the client's type; services: Ceph 20's aes256k service cipher).
#[test]
fn ceph20_auth_done_decrypts() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    for c in captures() {
        let done = AuthDone::decode(&c.s2c(Tag::AuthDone).seg).unwrap();
        assert_eq!(done.con_mode, c.mode);
        let reply = parse_mon_auth_done(&key, None, &done.auth_payload).unwrap();
        assert_eq!(reply.auth.session_key.key_type(), KeyType::Aes256k);
        let secret_len = if c.mode == CON_MODE_SECURE {
            CONNECTION_SECRET_LEN
        } else {
            0
        };
        assert_eq!(
            reply.connection_secret.as_ref().map(Vec::len),
            Some(secret_len)
        );
        let other_keys = CephXAuthenticate::from_bytes(&c.request_more()[2..])
            .unwrap()
            .other_keys;
        let want: Vec<u32> = (0..32)
            .map(|b| 1u32 << b)
            .filter(|s| other_keys & s != 0 && *s != SERVICE_AUTH)
            .collect();
        let got: Vec<u32> = reply.extra.iter().map(|g| g.service_id).collect();
        assert_eq!(got, want);
        for g in &reply.extra {
            assert_eq!(g.session_key.key_type(), KeyType::Aes256k);
        }
        // Through the state machine, into a ticket store.
        let store = TicketStore::new();
        let mut client = MonClientAuth::new(admin(), key.clone(), store.clone());
        client.request().unwrap();
        client
            .reply_more(
                &AuthReplyMore::decode(&c.s2c(Tag::AuthReplyMore).seg)
                    .unwrap()
                    .auth_payload,
            )
            .unwrap();
        let res = client
            .done(done.global_id, done.con_mode, &done.auth_payload)
            .unwrap();
        assert_eq!(res.session_key.len(), 32);
        assert_eq!(res.session_key, reply.auth.session_key.secret());
        assert!(store.get(EntityType::Auth).is_some());
        // Another aes256k key cannot open it.
        let osd = kr.get(&"osd.0".parse().unwrap()).unwrap();
        assert!(matches!(
            parse_mon_auth_done(osd, None, &done.auth_payload),
            Err(AuthError::BadProof(_))
        ));
    }
}

/// AUTH_SIGNATURE is HMAC-SHA256 keyed with the whole 32-byte aes256k session key.
#[test]
fn ceph20_auth_signatures() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap();
    let c = &captures()[0];
    let done = AuthDone::decode(&c.s2c(Tag::AuthDone).seg).unwrap();
    let reply = parse_mon_auth_done(key, None, &done.auth_payload).unwrap();
    let sk = reply.auth.session_key.secret();
    let client_sig = auth_signature(sk, &c.s2c[..c.s2c(Tag::AuthDone).end]);
    let server_sig = auth_signature(sk, &c.c2s[..c.c2s(Tag::AuthRequestMore).end]);
    let wire_c = AuthSignature::decode(&c.c2s(Tag::AuthSignature).seg).unwrap();
    let wire_s = AuthSignature::decode(&c.s2c(Tag::AuthSignature).seg).unwrap();
    assert_eq!(wire_c.sha256, client_sig);
    assert_eq!(wire_s.sha256, server_sig);
    // Secure mode: encrypted from AUTH_SIGNATURE on.
    let s = &captures()[1];
    assert_eq!(s.s2c_frames.last().unwrap().tag, Tag::AuthDone);
}

/// Our mon-style server, given the same keyring and the CLI's request, answers with exactly
/// the real mon's AUTH_DONE layout.
#[test]
fn our_server_reply_has_the_ceph20_layout() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    for c in captures() {
        let ctx = Arc::new(MonServerContext::new(kr.clone()).unwrap());
        let mut server = MonServerAuth::new(ctx);
        let req = AuthRequest::decode(&c.c2s(Tag::AuthRequest).seg).unwrap();
        let ServerStep::More(ch) = server.request(c.mode, &req.auth_payload) else {
            panic!()
        };
        let sc = CephXServerChallenge::from_bytes(&ch)
            .unwrap()
            .server_challenge;
        let auth = CephXAuthenticate::from_bytes(&c.request_more()[2..]).unwrap();
        let ours = build_authenticate(
            &key,
            sc,
            auth.client_challenge,
            &auth.old_ticket,
            auth.other_keys,
        )
        .unwrap();
        let ServerStep::Done { payload, result } = server.request_more(&ours) else {
            panic!()
        };
        let done = AuthDone::decode(&c.s2c(Tag::AuthDone).seg).unwrap();
        assert_eq!(payload.len(), done.auth_payload.len(), "AUTH_DONE layout");
        assert_eq!(result.session_key.len(), 32);
    }
}
