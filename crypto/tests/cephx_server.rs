#![allow(clippy::unwrap_used)]
//! Our cephx servers' answers that a well-behaved client of ours never provokes: the errnos
//! a mon sends, requests out of order or of the wrong type, expired tickets, wrong challenge
//! answers, the legacy reclaim leniency; plus the pieces they are built from (service
//! secrets, global ids).

use std::sync::Arc;

use msgr2_codec::encoding::Encode;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{AUTH_CEPHX, CON_MODE_CRC};
use msgr2_crypto::auth::{ClientAuth, ServerAuth, ServerStep, EACCES, EINVAL};
use msgr2_crypto::cephx::types::{
    put_sealed_struct, unseal_struct, CephXAuthorize, CephXAuthorizeChallenge, CephXTicketBlob,
    CephxEncode, CEPHX_GET_PRINCIPAL_SESSION_KEY,
};
use msgr2_crypto::cephx::{
    AuthorizerClientAuth, AuthorizerServerAuth, GlobalIdAllocator, KeyUsage, MonClientAuth,
    MonServerAuth, MonServerContext, ServiceSecrets, TicketStore,
};

use crate::cephx_roundtrip::{admin, authenticate, challenge, context, keyring, mon_request, run};

/// The mon's errnos as Ceph sends them: EPERM (-1) for an undecodable cephx request, EIO
/// (-5) when it holds no secret for a ticket it must seal; and a fresh server challenge for
/// every login.
#[test]
fn mon_errnos_and_fresh_challenges() {
    use msgr2_crypto::cephx::{EIO, EPERM};
    assert_eq!((EPERM, EIO), (-1, -5));
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr.clone());
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(CON_MODE_CRC, &mon_request(0)));
    assert_eq!(s.request_more(&[0x00]), ServerStep::Reject(-1));
    let mut s = MonServerAuth::new(ctx.clone());
    assert_ne!(challenge(s.request(CON_MODE_CRC, &mon_request(0))), sc);

    let mut no_secrets = MonServerContext::new(Arc::new(kr)).unwrap();
    no_secrets.secrets = Arc::new(ServiceSecrets::new());
    let mut s = MonServerAuth::new(Arc::new(no_secrets));
    let sc = challenge(s.request(CON_MODE_CRC, &mon_request(0)));
    assert_eq!(
        s.request_more(&authenticate(&key, sc, 3, CephXTicketBlob::default())),
        ServerStep::Reject(-5)
    );
}

#[test]
fn service_secrets_and_global_ids() {
    let s = ServiceSecrets::generate(&[EntityType::Osd, EntityType::Mon]).unwrap();
    assert_eq!(s.current(EntityType::Osd).unwrap().0, 1);
    assert!(s.get(EntityType::Mon, 1).is_some());
    assert!(s.current(EntityType::Mds).is_none());
    assert_ne!(
        s.get(EntityType::Osd, 1).unwrap().secret(),
        s.get(EntityType::Mon, 1).unwrap().secret()
    );
    let ids = GlobalIdAllocator::new(10);
    assert_eq!((ids.next_id(), ids.clone().next_id()), (10, 11));
    let ids = GlobalIdAllocator::new(0);
    assert_eq!(ids.next_id(), 1);
    let ids = GlobalIdAllocator::new(u64::MAX);
    assert_eq!(
        (ids.next_id(), ids.next_id()),
        (u64::MAX, 1),
        "0 is skipped"
    );
}

/// `auth_allow_insecure_global_id_reclaim` (on by default, as in Pacific) lets a legacy
/// (struct_v 2) client reclaim with a ticket that does not open: it gets a fresh session,
/// where a current client (v3) is refused.
#[test]
fn legacy_reclaim_with_a_bad_ticket_is_tolerated_only_when_insecure_reclaim_is_on() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let store = TicketStore::new();
    let (first, _) = run(
        &mut MonClientAuth::new(admin(), key.clone(), store.clone()),
        &mut MonServerAuth::new(context(kr.clone())),
        CON_MODE_CRC,
    )
    .unwrap();
    // Another mon (other secrets) cannot open the ticket.
    let ticket = store.get(EntityType::Auth).unwrap().ticket;
    for (struct_v, lenient, ok) in [(2, true, true), (3, true, false), (2, false, false)] {
        let mut ctx = MonServerContext::new(Arc::new(kr.clone())).unwrap();
        ctx.allow_insecure_global_id_reclaim = lenient;
        let mut s = MonServerAuth::new(Arc::new(ctx));
        let sc = challenge(s.request(CON_MODE_CRC, &mon_request(first.global_id)));
        let step = s.request_more(&authenticate(&key, sc, struct_v, ticket.clone()));
        if ok {
            assert!(matches!(step, ServerStep::Done { .. }), "{step:?}");
        } else {
            assert_eq!(step, ServerStep::Reject(EACCES), "v{struct_v} {lenient}");
        }
    }
}

/// A mon login must be CEPHX_GET_AUTH_SESSION_KEY; any other request type is EINVAL.
#[test]
fn a_mon_login_of_another_request_type_is_einval() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let mut s = MonServerAuth::new(context(kr));
    assert_eq!(s.method(), AUTH_CEPHX);
    let sc = challenge(s.request(CON_MODE_CRC, &mon_request(0)));
    let mut req = authenticate(&key, sc, 3, CephXTicketBlob::default());
    req[..2].copy_from_slice(&CEPHX_GET_PRINCIPAL_SESSION_KEY.to_le_bytes());
    assert_eq!(s.request_more(&req), ServerStep::Reject(EINVAL));
}

/// An authorizer exchange is one request, one challenge answer: anything else out of
/// order is EINVAL; a wrong or missing answer to the challenge, or an expired ticket, is
/// EACCES.
#[test]
fn authorizer_rounds_challenge_answers_and_expiry() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr.clone());
    let store = TicketStore::new();
    run(
        &mut MonClientAuth::new(admin(), key.clone(), store.clone()),
        &mut MonServerAuth::new(ctx.clone()),
        CON_MODE_CRC,
    )
    .unwrap();
    let osd = || AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    assert_eq!(osd().method(), AUTH_CEPHX);
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let first = ac.request().unwrap();
    assert_eq!(osd().request_more(&first), ServerStep::Reject(EINVAL));
    let mut srv = osd();
    assert!(matches!(
        srv.request(CON_MODE_CRC, &first),
        ServerStep::More(_)
    ));
    assert_eq!(
        srv.request(CON_MODE_CRC, &first),
        ServerStep::Reject(EINVAL)
    );
    let mut srv = osd();
    let ServerStep::More(ch2) = srv.request(CON_MODE_CRC, &first) else {
        panic!()
    };
    assert!(matches!(
        srv.request_more(&ac.reply_more(&ch2).unwrap()),
        ServerStep::Done { .. }
    ));
    assert_eq!(
        srv.request(CON_MODE_CRC, &first),
        ServerStep::Reject(EINVAL)
    );
    assert_eq!(srv.request_more(&first), ServerStep::Reject(EINVAL));

    // Hand-made answers: right key, but the challenge not answered or answered wrong.
    let t = store.get(EntityType::Osd).unwrap();
    let answer = |have_challenge: bool, plus_one: u64| {
        let mut p = Vec::new();
        p.put_u8(1);
        p.put_u64(store.global_id());
        p.put_u32(4);
        t.ticket.encode(&mut p);
        let m = CephXAuthorize {
            nonce: 5,
            have_challenge,
            server_challenge_plus_one: plus_one,
        };
        put_sealed_struct(&mut p, &t.session_key, KeyUsage::Authorize, &m).unwrap();
        p
    };
    for (have, off) in [(true, 0), (false, 1), (true, 2)] {
        let mut srv = osd();
        let ServerStep::More(ch) = srv.request(CON_MODE_CRC, &first) else {
            panic!()
        };
        let c: CephXAuthorizeChallenge =
            unseal_struct(&t.session_key, KeyUsage::AuthorizeChallenge, &ch).unwrap();
        let step = srv.request_more(&answer(have, c.server_challenge.wrapping_add(off)));
        if have && off == 1 {
            assert!(matches!(step, ServerStep::Done { .. }));
        } else {
            assert_eq!(step, ServerStep::Reject(EACCES), "{have} {off}");
        }
    }
    let mut srv = osd();
    let ServerStep::More(ch) = srv.request(CON_MODE_CRC, &first) else {
        panic!()
    };
    let c: CephXAuthorizeChallenge =
        unseal_struct(&t.session_key, KeyUsage::AuthorizeChallenge, &ch).unwrap();
    assert!(matches!(
        srv.request_more(&answer(true, c.server_challenge.wrapping_add(1))),
        ServerStep::Done { .. }
    ));

    // Tickets issued with a zero lifetime have expired by the time they are presented.
    let mut short = MonServerContext::new(Arc::new(kr)).unwrap();
    short.service_ticket_ttl = 0;
    let short = Arc::new(short);
    let store = TicketStore::new();
    run(
        &mut MonClientAuth::new(admin(), key, store.clone()),
        &mut MonServerAuth::new(short.clone()),
        CON_MODE_CRC,
    )
    .unwrap();
    let expired = store.get_even_expired(EntityType::Osd).unwrap();
    let mut ac = AuthorizerClientAuth::with_ticket(store.global_id(), EntityType::Osd, expired);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, short.secrets.clone());
    assert_eq!(
        srv.request(CON_MODE_CRC, &ac.request().unwrap()),
        ServerStep::Reject(EACCES)
    );
}

/// `with_want_keys` always adds AUTH and never drops it when the mask already names it.
#[test]
fn want_keys_always_include_auth() {
    use msgr2_crypto::cephx::types::{CephXAuthenticate, CephXServerChallenge};
    let key = keyring().get(&admin()).unwrap().clone();
    for (mask, want) in [(0x35, 0x35), (0x15, 0x35), (0, 0x20), (0x20, 0x20)] {
        let mut c =
            MonClientAuth::new(admin(), key.clone(), TicketStore::new()).with_want_keys(mask);
        c.request().unwrap();
        let p = c
            .reply_more(
                &CephXServerChallenge {
                    server_challenge: 9,
                }
                .to_bytes(),
            )
            .unwrap();
        let mut d = msgr2_codec::encoding::Decoder::new(&p[2..]);
        assert_eq!(
            CephXAuthenticate::decode(&mut d).unwrap().other_keys,
            want,
            "{mask:#x}"
        );
    }
}
