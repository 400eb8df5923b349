#![allow(clippy::unwrap_used)]
//! Tampered cephx payloads: random mutations (bit flips, truncation, insertion) of real
//! captured payloads and of our own exchanges must give errors or rejections, never panics;
//! tampering with authenticated parts must never be accepted.

use std::path::PathBuf;
use std::sync::Arc;

use msgr2_codec::banner::BANNER_PREFIX_LEN;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};
use msgr2_codec::payload::{AuthDone, AuthReplyMore, AuthRequest, AuthRequestMore, ControlPayload};
use msgr2_codec::Revision;
use msgr2_crypto::auth::{ClientAuth, ServerAuth, ServerStep};
use msgr2_crypto::cephx::types::CephXServerChallenge;
use msgr2_crypto::cephx::types::CephxEncode;
use msgr2_crypto::cephx::{
    parse_mon_auth_done, unseal, verify_authenticate, AuthorizerClientAuth, AuthorizerServerAuth,
    KeyUsage, MonClientAuth, MonServerAuth, MonServerContext, TicketStore,
};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use proptest::prelude::*;

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

fn admin() -> EntityName {
    "client.admin".parse().unwrap()
}

fn frames(stream: &[u8]) -> Vec<(Tag, Vec<u8>)> {
    let plen = u16::from_le_bytes([stream[8], stream[9]]) as usize;
    let mut off = BANNER_PREFIX_LEN + plen;
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut out = Vec::new();
    while let Ok((n, Some(f))) = dec.feed(&stream[off..]) {
        off += n;
        out.push((f.tag(), f.segment(0).to_vec()));
    }
    out
}

/// Real payloads of one connection (secure-cephx-lspools.conn2: other_keys with tickets and a
/// 64-byte secret; crc-cephx-ceph-s.conn1: 760-byte AUTH_DONE).
struct Real {
    key: CryptoKey,
    keyring: Arc<Keyring>,
    request: Vec<u8>,
    challenge: Vec<u8>,
    request_more: Vec<u8>,
    done: AuthDone,
}

fn real(prefix: &str, conn: u32) -> Real {
    let keyring = Arc::new(Keyring::load(captures().join(format!("{prefix}.keyring"))).unwrap());
    let c2s =
        frames(&std::fs::read(captures().join(format!("{prefix}.conn{conn}.c2s.bin"))).unwrap());
    let s2c =
        frames(&std::fs::read(captures().join(format!("{prefix}.conn{conn}.s2c.bin"))).unwrap());
    let get = |v: &[(Tag, Vec<u8>)], t| v.iter().find(|(x, _)| *x == t).unwrap().1.clone();
    Real {
        key: keyring.get(&admin()).unwrap().clone(),
        request: AuthRequest::decode(&get(&c2s, Tag::AuthRequest))
            .unwrap()
            .auth_payload,
        challenge: AuthReplyMore::decode(&get(&s2c, Tag::AuthReplyMore))
            .unwrap()
            .auth_payload,
        request_more: AuthRequestMore::decode(&get(&c2s, Tag::AuthRequestMore))
            .unwrap()
            .auth_payload,
        done: AuthDone::decode(&get(&s2c, Tag::AuthDone)).unwrap(),
        keyring,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(data: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = data.to_vec();
    for m in muts {
        let n = v.len().max(1);
        match *m {
            Mutation::Flip(i, x) if !v.is_empty() => v[i % n] ^= x,
            Mutation::Truncate(i) => v.truncate(i % n),
            Mutation::Insert(i, x) => v.insert(i % (v.len() + 1), x),
            Mutation::Remove(i) if !v.is_empty() => {
                v.remove(i % n);
            }
            _ => {}
        }
    }
    v
}

fn sc(r: &Real) -> u64 {
    CephXServerChallenge::from_bytes(&r.challenge)
        .unwrap()
        .server_challenge
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Client side: a mutated real AUTH_DONE never panics; whatever is accepted has a
    /// 16-byte session key.
    #[test]
    fn client_survives_mutated_auth_done(muts in proptest::collection::vec(mutation(), 1..4), which in 0..2usize) {
        let r = if which == 0 { real("secure-cephx-lspools", 2) } else { real("crc-cephx-ceph-s", 1) };
        let p = apply(&r.done.auth_payload, &muts);
        if let Ok(reply) = parse_mon_auth_done(&r.key, None, &p) {
            prop_assert_eq!(reply.auth.session_key.secret().len(), 16);
        }
        let mut c = MonClientAuth::new(admin(), r.key.clone(), TicketStore::new());
        c.request().unwrap();
        c.reply_more(&r.challenge).unwrap();
        let _ = c.done(r.done.global_id, r.done.con_mode, &p);
    }

    /// Server side: a mutated real AUTH_REQUEST_MORE never panics, and one whose challenge or
    /// proof bytes changed is never accepted.
    #[test]
    fn server_survives_mutated_authenticate(muts in proptest::collection::vec(mutation(), 1..4)) {
        let r = real("crc-cephx-lspools", 0);
        let p = apply(&r.request_more, &muts);
        let res = verify_authenticate(&r.key, sc(&r), &p);
        if p.len() >= 19 && p[3..19] != r.request_more[3..19] {
            prop_assert!(res.is_err());
        }
        // Through the state machine too (random server challenge: must reject).
        let ctx = Arc::new(MonServerContext::new(r.keyring.clone()).unwrap());
        let mut s = MonServerAuth::new(ctx);
        let req = apply(&r.request, &muts);
        if let ServerStep::More(_) = s.request(1, &req) {
            prop_assert!(matches!(s.request_more(&p), ServerStep::Reject(_)));
        }
    }

    /// Authorizer payloads (both rounds) and replies, mutated: no panics, and a mutated
    /// second round is accepted only if the mutation left the authenticated parts intact.
    #[test]
    fn authorizer_survives_mutations(muts in proptest::collection::vec(mutation(), 1..4), secure in any::<bool>()) {
        let (store, ctx) = logged_in();
        let mode = if secure { 2 } else { 1 };
        let mut c = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
        let first = c.request().unwrap();
        let mut s = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
        let _ = s.request(mode, &apply(&first, &muts));
        let mut s = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
        let ServerStep::More(ch) = s.request(mode, &first) else { panic!() };
        // Client against a mutated challenge.
        let mut c2 = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
        c2.request().unwrap();
        let _ = c2.reply_more(&apply(&ch, &muts));
        let second = c.reply_more(&ch).unwrap();
        let mutated = apply(&second, &muts);
        match s.request_more(&mutated) {
            ServerStep::Done { payload, .. } => {
                // Only possible if the sealed CephXAuthorize still opened to the right answer.
                prop_assert!(c.done(1, mode, &payload).is_ok());
            }
            ServerStep::Reject(_) => {}
            ServerStep::More(_) => prop_assert!(false, "no third round"),
        }
        // Client against a mutated AUTH_DONE.
        let mut c3 = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
        let mut s3 = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
        let ServerStep::More(ch3) = s3.request(mode, &c3.request().unwrap()) else { panic!() };
        let ServerStep::Done { payload, .. } = s3.request_more(&c3.reply_more(&ch3).unwrap()) else { panic!() };
        let _ = c3.done(1, mode, &apply(&payload, &muts));
    }

    /// `unseal` with arbitrary bytes and keys (of both types) never panics.
    #[test]
    fn unseal_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..80), k in any::<[u8; 32]>()) {
        let key = CryptoKey::new(Default::default(), k[..16].try_into().unwrap());
        let _ = unseal(&key, KeyUsage::None, &data);
        let key = CryptoKey::new_aes256k(Default::default(), k);
        let _ = unseal(&key, KeyUsage::Authorize, &data);
    }
}

fn logged_in() -> (TicketStore, Arc<MonServerContext>) {
    let mut kr = Keyring::new();
    let key = CryptoKey::generate().unwrap();
    kr.insert(admin(), key.clone());
    kr.set_caps(&admin(), "mon", "allow *");
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    let store = TicketStore::new();
    let mut c = MonClientAuth::new(admin(), key, store.clone());
    let mut s = MonServerAuth::new(ctx.clone());
    let ServerStep::More(ch) = s.request(1, &c.request().unwrap()) else {
        panic!()
    };
    let ServerStep::Done { payload, result } = s.request_more(&c.reply_more(&ch).unwrap()) else {
        panic!()
    };
    c.done(result.global_id, 1, &payload).unwrap();
    (store, ctx)
}

/// Deterministic tampering: every truncation of a real AUTH_DONE short of the end of the AUTH
/// ticket is an error, and flipping any byte of the sealed CephXServiceTicket's first block
/// (version, magic) is an error.
#[test]
fn truncations_and_magic_flips_are_errors() {
    for (prefix, conn) in [("crc-cephx-ceph-s", 0), ("secure-cephx-lspools", 1)] {
        let r = real(prefix, conn);
        let p = &r.done.auth_payload;
        // header 6 + v 1 + n 4 + service 4 + v 1 + blob len 4 + 48 + ticket_enc 1 + 4 + 109
        let auth_end = 6 + 1 + 4 + 4 + 1 + 4 + 48 + 1 + 4 + 109;
        for n in 0..auth_end {
            assert!(
                parse_mon_auth_done(&r.key, None, &p[..n]).is_err(),
                "{prefix}: truncated to {n}"
            );
        }
        let ct_start = 6 + 1 + 4 + 4 + 1 + 4;
        for i in ct_start..ct_start + 16 {
            for bit in 0..8 {
                let mut q = p.clone();
                q[i] ^= 1 << bit;
                assert!(
                    parse_mon_auth_done(&r.key, None, &q).is_err(),
                    "{prefix}: flip {i}/{bit}"
                );
            }
        }
    }
}
