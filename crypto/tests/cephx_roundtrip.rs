#![allow(clippy::unwrap_used)]
//! In-memory cephx exchanges: our client against our mon-style server (crc and secure,
//! service tickets issued), then authorizers from the issued tickets against our OSD-style
//! verifier; plus the failure paths (wrong keys, missing tickets, reclaim rules, replays).

use std::sync::Arc;

use msgr2_codec::encoding::Encode;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_CEPHX, AUTH_NONE, CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::{
    AuthError, AuthResult, ClientAuth, ClientAuthProvider, ServerAuth, ServerAuthProvider,
    ServerStep, EACCES, EINVAL,
};
use msgr2_crypto::cephx::types::{
    put_sealed_struct, CephXAuthenticate, CephXAuthorize, CephXRequestHeader, CephXResponseHeader,
    CephXServerChallenge, CephXTicketBlob, CephxEncode, CEPHX_GET_AUTH_SESSION_KEY,
};
use msgr2_crypto::cephx::{
    build_authenticate, calc_client_server_challenge, AuthorizerClientAuth, AuthorizerServerAuth,
    CephxClientProvider, CephxServerProvider, KeyUsage, MonClientAuth, MonServerAuth,
    MonServerContext, ServiceSecrets, TicketStore, CONNECTION_SECRET_LEN, DEFAULT_WANT_KEYS,
};
use msgr2_crypto::keyring::{CryptoKey, Keyring};

pub(crate) fn admin() -> EntityName {
    "client.admin".parse().unwrap()
}

pub(crate) fn keyring() -> Keyring {
    let mut kr = Keyring::new();
    kr.insert(admin(), CryptoKey::generate().unwrap());
    kr.set_caps(&admin(), "mon", "allow *");
    kr.set_caps(&admin(), "osd", "allow rwx pool=rbd");
    kr.set_caps(&admin(), "mgr", "allow r");
    let nocaps: EntityName = "client.nocaps".parse().unwrap();
    kr.insert(nocaps.clone(), CryptoKey::generate().unwrap());
    kr.set_caps(&nocaps, "osd", "allow *");
    kr
}

pub(crate) fn context(kr: Keyring) -> Arc<MonServerContext> {
    Arc::new(MonServerContext::new(Arc::new(kr)).unwrap())
}

/// Drives a client against a server until AUTH_DONE or a rejection.
pub(crate) fn run(
    client: &mut dyn ClientAuth,
    server: &mut dyn ServerAuth,
    con_mode: u32,
) -> Result<(AuthResult, AuthResult), i32> {
    let mut step = server.request(con_mode, &client.request().unwrap());
    loop {
        match step {
            ServerStep::More(p) => {
                let next = client.reply_more(&p).unwrap();
                step = server.request_more(&next);
            }
            ServerStep::Done { payload, result } => {
                let c = client
                    .done(result.global_id, result.con_mode, &payload)
                    .unwrap();
                return Ok((c, result));
            }
            ServerStep::Reject(code) => return Err(code),
        }
    }
}

#[test]
fn mon_login_crc_and_secure_then_osd_and_mgr_authorizers() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);
    for mode in [CON_MODE_CRC, CON_MODE_SECURE] {
        let store = TicketStore::new();
        let mut client = MonClientAuth::new(admin(), key.clone(), store.clone());
        let mut server = MonServerAuth::new(ctx.clone());
        let (c, s) = run(&mut client, &mut server, mode).unwrap();
        assert_eq!(
            c,
            AuthResult {
                peer_name: None,
                ..s.clone()
            }
        );
        assert_eq!(s.peer_name, Some(admin()));
        assert_eq!(c.session_key.len(), 16);
        let secret_len = if mode == CON_MODE_SECURE {
            CONNECTION_SECRET_LEN
        } else {
            0
        };
        assert_eq!(c.connection_secret.len(), secret_len);
        assert_ne!(c.global_id, 0);
        assert_eq!(store.global_id(), c.global_id);
        assert_eq!(store.services(), vec![0x01, 0x04, 0x10, 0x20]);
        // Kept for renewing the AUTH ticket over this session.
        assert!(store.server_challenge().is_some());
        assert_eq!(
            store.get(EntityType::Auth).unwrap().session_key.secret(),
            c.session_key.as_slice()
        );
        assert_eq!(
            server.peer_caps().unwrap().caps_string().as_deref(),
            Some("allow *")
        );

        for (svc, caps) in [
            (EntityType::Osd, "allow rwx pool=rbd"),
            (EntityType::Mgr, "allow r"),
        ] {
            for amode in [CON_MODE_CRC, CON_MODE_SECURE] {
                let mut ac = AuthorizerClientAuth::new(store.clone(), svc);
                let mut asrv = AuthorizerServerAuth::new(svc, ctx.secrets.clone());
                let (c2, s2) = run(&mut ac, &mut asrv, amode).unwrap();
                assert_eq!(
                    c2,
                    AuthResult {
                        peer_name: None,
                        ..s2.clone()
                    }
                );
                assert_eq!(s2.peer_name, Some(admin()));
                assert_eq!(s2.global_id, c.global_id);
                let t = store.get(svc).unwrap();
                assert_eq!(c2.session_key.as_slice(), t.session_key.secret());
                let len = if amode == CON_MODE_SECURE {
                    CONNECTION_SECRET_LEN
                } else {
                    0
                };
                assert_eq!(c2.connection_secret.len(), len);
                assert_eq!(
                    asrv.peer_caps().unwrap().caps_string().as_deref(),
                    Some(caps)
                );
            }
        }
    }
}

#[test]
fn authorizer_payload_layout() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);
    let store = TicketStore::new();
    run(
        &mut MonClientAuth::new(admin(), key, store.clone()),
        &mut MonServerAuth::new(ctx.clone()),
        1,
    )
    .unwrap();
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let p = ac.request().unwrap();
    let t = store.get(EntityType::Osd).unwrap();
    assert_eq!(p[0], 1);
    assert_eq!(
        u64::from_le_bytes(p[1..9].try_into().unwrap()),
        store.global_id()
    );
    assert_eq!(u32::from_le_bytes(p[9..13].try_into().unwrap()), 4);
    let tb = t.ticket.to_bytes();
    assert_eq!(&p[13..13 + tb.len()], tb.as_slice());
    // SEAL(K_s, CephXAuthorize v2): 9 + 18 bytes → 32 ciphertext bytes, length-prefixed.
    assert_eq!(p.len(), 13 + tb.len() + 4 + 32);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    let ServerStep::More(ch) = srv.request(CON_MODE_SECURE, &p) else {
        panic!()
    };
    assert_eq!(ch.len(), 32, "raw sealed CephXAuthorizeChallenge");
    let p2 = ac.reply_more(&ch).unwrap();
    assert_eq!(p2.len(), p.len());
    assert_eq!(&p2[..13 + tb.len()], &p[..13 + tb.len()]);
    let ServerStep::Done { payload, .. } = srv.request_more(&p2) else {
        panic!()
    };
    // AUTH_DONE frame payload 8 + 4 + 4 + 100 = 116 bytes, as observed from a real ceph-osd.
    assert_eq!(payload.len(), 4 + 96, "v2 reply with a 64-byte secret");
    ac.done(store.global_id(), CON_MODE_SECURE, &payload)
        .unwrap();

    // crc mode: v1 reply, frame payload 8 + 4 + 4 + 32 = 52 bytes as from a real ceph-osd.
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    let ServerStep::More(ch) = srv.request(CON_MODE_CRC, &ac.request().unwrap()) else {
        panic!()
    };
    let ServerStep::Done { payload, .. } = srv.request_more(&ac.reply_more(&ch).unwrap()) else {
        panic!()
    };
    assert_eq!(payload.len(), 4 + 32);
    assert!(ac
        .done(store.global_id(), CON_MODE_CRC, &payload)
        .unwrap()
        .connection_secret
        .is_empty());
}

#[test]
fn wrong_key_unknown_entity_and_missing_caps_are_eacces() {
    let kr = keyring();
    let ctx = context(kr.clone());
    let wrong = CryptoKey::generate().unwrap();
    let mut client = MonClientAuth::new(admin(), wrong.clone(), TicketStore::new());
    assert_eq!(
        run(&mut client, &mut MonServerAuth::new(ctx.clone()), 1).unwrap_err(),
        EACCES
    );
    let ghost: EntityName = "client.ghost".parse().unwrap();
    let mut client = MonClientAuth::new(ghost, wrong, TicketStore::new());
    assert_eq!(
        run(&mut client, &mut MonServerAuth::new(ctx.clone()), 1).unwrap_err(),
        EACCES
    );
    let nocaps: EntityName = "client.nocaps".parse().unwrap();
    let mut client = MonClientAuth::new(
        nocaps.clone(),
        kr.get(&nocaps).unwrap().clone(),
        TicketStore::new(),
    );
    assert_eq!(
        run(&mut client, &mut MonServerAuth::new(ctx.clone()), 1).unwrap_err(),
        EACCES
    );
    // Non-mon auth modes, garbage and out-of-order rounds.
    let mut s = MonServerAuth::new(ctx.clone());
    assert_eq!(s.request(1, &[1, 0, 0]), ServerStep::Reject(EACCES));
    let mut s = MonServerAuth::new(ctx);
    assert_eq!(s.request_more(&[0; 40]), ServerStep::Reject(EINVAL));
}

#[test]
fn client_typed_errors() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);

    let mut ac = AuthorizerClientAuth::new(TicketStore::new(), EntityType::Osd);
    assert_eq!(
        ac.request().unwrap_err(),
        AuthError::NoTicket(EntityType::Osd)
    );

    let mut c = MonClientAuth::new(admin(), key.clone(), TicketStore::new());
    assert!(matches!(c.done(1, 1, &[]), Err(AuthError::Unexpected(_))));
    c.request().unwrap();
    assert!(matches!(c.reply_more(&[1, 2]), Err(AuthError::Decode(_))));

    // A reply meant for someone else's key.
    let mut server = MonServerAuth::new(ctx.clone());
    let mut good = MonClientAuth::new(admin(), key.clone(), TicketStore::new());
    let ServerStep::More(ch) = server.request(1, &good.request().unwrap()) else {
        panic!()
    };
    let ServerStep::Done { payload, result } = server.request_more(&good.reply_more(&ch).unwrap())
    else {
        panic!()
    };
    let mut other = MonClientAuth::new(admin(), CryptoKey::generate().unwrap(), TicketStore::new());
    other.request().unwrap();
    other.reply_more(&ch).unwrap();
    assert!(matches!(
        other.done(result.global_id, 1, &payload),
        Err(AuthError::BadProof(_))
    ));

    // A mon error status.
    let mut c = MonClientAuth::new(admin(), key.clone(), TicketStore::new());
    c.request().unwrap();
    c.reply_more(
        &CephXServerChallenge {
            server_challenge: 9,
        }
        .to_bytes(),
    )
    .unwrap();
    let err = CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status: -13,
    }
    .to_bytes();
    assert_eq!(c.done(1, 1, &err).unwrap_err(), AuthError::PeerError(-13));
}

#[test]
fn authorizer_rejections() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);
    let store = TicketStore::new();
    run(
        &mut MonClientAuth::new(admin(), key, store.clone()),
        &mut MonServerAuth::new(ctx.clone()),
        1,
    )
    .unwrap();

    // Ticket for MGR presented to an OSD.
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Mgr);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    assert_eq!(
        srv.request(1, &ac.request().unwrap()),
        ServerStep::Reject(EACCES)
    );

    // A daemon with other secrets cannot open the ticket.
    let foreign = Arc::new(ServiceSecrets::generate(&[EntityType::Osd]).unwrap());
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, foreign);
    assert_eq!(
        srv.request(1, &ac.request().unwrap()),
        ServerStep::Reject(EACCES)
    );

    // Replaying the first round instead of answering the challenge.
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    let first = ac.request().unwrap();
    assert!(matches!(srv.request(1, &first), ServerStep::More(_)));
    assert_eq!(srv.request_more(&first), ServerStep::Reject(EACCES));

    // Wrong global id in the authorizer prefix.
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let mut p = ac.request().unwrap();
    p[1] ^= 1;
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    assert_eq!(srv.request(1, &p), ServerStep::Reject(EACCES));

    // An authorizer sealed with the wrong session key.
    let t = store.get(EntityType::Osd).unwrap();
    let mut p = Vec::new();
    p.put_u8(1);
    p.put_u64(store.global_id());
    p.put_u32(4);
    t.ticket.encode(&mut p);
    let bogus = CephXAuthorize {
        nonce: 1,
        have_challenge: false,
        server_challenge_plus_one: 0,
    };
    put_sealed_struct(
        &mut p,
        &CryptoKey::generate().unwrap(),
        KeyUsage::Authorize,
        &bogus,
    )
    .unwrap();
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    assert_eq!(srv.request(1, &p), ServerStep::Reject(EACCES));

    // The client rejects a reply with the wrong nonce and a challenge under another key.
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    let ServerStep::More(ch) = srv.request(1, &ac.request().unwrap()) else {
        panic!()
    };
    let mut ac2 = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    ac2.request().unwrap();
    let ServerStep::Done { payload, .. } = srv.request_more(&ac.reply_more(&ch).unwrap()) else {
        panic!()
    };
    // ac2 has a different nonce: the reply for ac does not verify for it.
    assert!(matches!(
        ac2.done(1, 1, &payload),
        Err(AuthError::BadProof(_))
    ));
    let mut ac3 = AuthorizerClientAuth::with_ticket(
        store.global_id(),
        EntityType::Osd,
        msgr2_crypto::cephx::ServiceTicket {
            session_key: CryptoKey::generate().unwrap(),
            ..t
        },
    );
    ac3.request().unwrap();
    assert!(matches!(ac3.reply_more(&ch), Err(AuthError::BadProof(_))));
}

/// AUTH_REQUEST_MORE with explicit fields, for the reclaim rules.
pub(crate) fn authenticate(
    key: &CryptoKey,
    sc: u64,
    struct_v: u8,
    old: CephXTicketBlob,
) -> Vec<u8> {
    let mut out = CephXRequestHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
    }
    .to_bytes();
    let proof = calc_client_server_challenge(key, sc, 77).unwrap();
    CephXAuthenticate {
        struct_v,
        client_challenge: 77,
        key: proof,
        old_ticket: old,
        other_keys: 0x35,
    }
    .encode(&mut out);
    out
}

pub(crate) fn mon_request(gid: u64) -> Vec<u8> {
    let mut p = vec![10u8];
    admin().encode(&mut p);
    p.put_u64(gid);
    p
}

pub(crate) fn challenge(step: ServerStep) -> u64 {
    let ServerStep::More(p) = step else {
        panic!("{step:?}")
    };
    CephXServerChallenge::from_bytes(&p)
        .unwrap()
        .server_challenge
}

#[test]
fn global_id_reclaim_rules() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);
    let store = TicketStore::new();
    let (first, _) = run(
        &mut MonClientAuth::new(admin(), key.clone(), store.clone()),
        &mut MonServerAuth::new(ctx.clone()),
        1,
    )
    .unwrap();
    let old_auth = store.get(EntityType::Auth).unwrap();

    // A proper reclaim keeps the global id; the new AUTH ticket comes encrypted with the old
    // session key (ticket_enc = 1) and our client opens it.
    let mut c = MonClientAuth::new(admin(), key.clone(), store.clone()).with_reclaim(true);
    let (second, _) = run(&mut c, &mut MonServerAuth::new(ctx.clone()), 2).unwrap();
    assert_eq!(second.global_id, first.global_id);
    assert_ne!(second.session_key, first.session_key);
    assert_eq!(second.connection_secret.len(), 64);
    assert_ne!(store.get(EntityType::Auth).unwrap().ticket, old_auth.ticket);

    // New global id but a ticket presented: EINVAL ("superfluous ticket").
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(1, &mon_request(0)));
    assert_eq!(
        s.request_more(&authenticate(&key, sc, 3, old_auth.ticket.clone())),
        ServerStep::Reject(EINVAL)
    );

    // Reclaim without a ticket: EACCES for v3, allowed for a legacy v2 client.
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(1, &mon_request(first.global_id)));
    assert_eq!(
        s.request_more(&authenticate(&key, sc, 3, CephXTicketBlob::default())),
        ServerStep::Reject(EACCES)
    );
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(1, &mon_request(first.global_id)));
    assert!(matches!(
        s.request_more(&authenticate(&key, sc, 2, CephXTicketBlob::default())),
        ServerStep::Done { .. }
    ));

    // Reclaim of a different global id with a valid ticket: EACCES.
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(1, &mon_request(first.global_id + 1000)));
    assert_eq!(
        s.request_more(&authenticate(&key, sc, 3, old_auth.ticket.clone())),
        ServerStep::Reject(EACCES)
    );

    // A ticket from another server (other secrets): EACCES.
    let other = context(keyring_with(&key));
    let mut s = MonServerAuth::new(other);
    let sc = challenge(s.request(1, &mon_request(first.global_id)));
    assert_eq!(
        s.request_more(&authenticate(&key, sc, 3, old_auth.ticket)),
        ServerStep::Reject(EACCES)
    );
}

fn keyring_with(key: &CryptoKey) -> Keyring {
    let mut kr = Keyring::new();
    kr.insert(admin(), key.clone());
    kr.set_caps(&admin(), "mon", "allow *");
    kr
}

#[test]
fn want_keys_control_extra_tickets_and_secret() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = context(kr);
    // AUTH only (what the Pacific CLI sends): cbl present, extra empty.
    let store = TicketStore::new();
    let mut c = MonClientAuth::new(admin(), key.clone(), store.clone()).with_want_keys(0);
    let (r, _) = run(
        &mut c,
        &mut MonServerAuth::new(ctx.clone()),
        CON_MODE_SECURE,
    )
    .unwrap();
    assert_eq!(r.connection_secret.len(), 64);
    assert_eq!(store.services(), vec![0x20]);
    // other_keys = 0 (a pre-nautilus client): no cbl, so no secure mode; the client says so.
    let mut s = MonServerAuth::new(ctx.clone());
    let sc = challenge(s.request(CON_MODE_SECURE, &mon_request(0)));
    let p = build_authenticate(&key, sc, 5, &CephXTicketBlob::default(), 0).unwrap();
    let ServerStep::Done { payload, result } = s.request_more(&p) else {
        panic!()
    };
    assert!(result.connection_secret.is_empty());
    let reply = msgr2_crypto::cephx::parse_mon_auth_done(&key, None, &payload).unwrap();
    assert!(reply.connection_secret.is_none() && reply.extra.is_empty());
    let mut c = MonClientAuth::new(admin(), key, TicketStore::new());
    c.request().unwrap();
    c.reply_more(
        &CephXServerChallenge {
            server_challenge: sc,
        }
        .to_bytes(),
    )
    .unwrap();
    assert!(matches!(
        c.done(result.global_id, CON_MODE_SECURE, &payload),
        Err(AuthError::Unexpected(_))
    ));
    assert_eq!(DEFAULT_WANT_KEYS, 0x35);
}

#[test]
fn providers() {
    let kr = keyring();
    let ctx = context(kr.clone());
    let store = TicketStore::new();
    let cp = CephxClientProvider::from_keyring(&kr, admin(), store.clone()).unwrap();
    assert_eq!(cp.methods(), vec![AUTH_CEPHX]);
    let cp = cp.with_auth_none(true);
    assert_eq!(cp.methods(), vec![AUTH_CEPHX, AUTH_NONE]);
    let sp = CephxServerProvider::new(ctx.clone());
    assert_eq!(sp.methods(EntityType::Client), vec![AUTH_CEPHX]);
    assert!(sp.start(AUTH_NONE, EntityType::Client).is_none());

    let mut c = cp.start(AUTH_CEPHX, EntityType::Mon).unwrap();
    let mut s = sp.start(AUTH_CEPHX, EntityType::Client).unwrap();
    let (r, _) = run(c.as_mut(), s.as_mut(), CON_MODE_SECURE).unwrap();
    assert_eq!(store.global_id(), r.global_id);

    // To an OSD the provider builds an authorizer from the stored ticket.
    let mut c = cp.start(AUTH_CEPHX, EntityType::Osd).unwrap();
    let mut s = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    run(c.as_mut(), &mut s, CON_MODE_CRC).unwrap();
    // No MDS ticket was requested: typed error.
    let mut c = cp.start(AUTH_CEPHX, EntityType::Mds).unwrap();
    assert_eq!(
        c.request().unwrap_err(),
        AuthError::NoTicket(EntityType::Mds)
    );
    // Auth none through both providers.
    let sp = sp.with_auth_none(true);
    let mut c = cp.start(AUTH_NONE, EntityType::Mon).unwrap();
    let mut s = sp.start(AUTH_NONE, EntityType::Client).unwrap();
    let (r, _) = run(c.as_mut(), s.as_mut(), CON_MODE_CRC).unwrap();
    assert!(r.session_key.is_empty());
    assert!(CephxClientProvider::from_keyring(&kr, "client.x".parse().unwrap(), store).is_err());
}

#[test]
fn debug_output_has_no_secrets() {
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let hex: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
    let ctx = context(kr.clone());
    let store = TicketStore::new();
    let (r, _) = run(
        &mut MonClientAuth::new(admin(), key.clone(), store.clone()),
        &mut MonServerAuth::new(ctx.clone()),
        2,
    )
    .unwrap();
    let sess: String = r.session_key.iter().map(|b| format!("{b:02x}")).collect();
    let dump = format!(
        "{kr:?} {key:?} {store:?} {:?} {ctx:?} {r:?} {:?}",
        store.get(EntityType::Osd).unwrap(),
        ctx.secrets
    );
    for needle in [&hex, &sess, &key.to_base64()] {
        assert!(!dump.contains(needle.as_str()), "{dump}");
    }
    let dec: String = format!("{:?}", key.secret());
    assert!(!dump.contains(&dec[1..dec.len() - 1]));
}

/// `auth_client_required = cephx[, none]`: which exchange starts towards which peer.
#[test]
fn client_provider_methods_and_starts() {
    let key = CryptoKey::generate().unwrap();
    let store = TicketStore::new();
    let p = CephxClientProvider::new(admin(), key.clone(), store.clone());
    assert_eq!(p.methods(), vec![AUTH_CEPHX]);
    assert!(p.start(AUTH_NONE, EntityType::Mon).is_none());
    assert!(p.start(99, EntityType::Mon).is_none());
    let to_mon = p.start(AUTH_CEPHX, EntityType::Mon).unwrap();
    assert_eq!(to_mon.method(), AUTH_CEPHX);
    let to_osd = p.start(AUTH_CEPHX, EntityType::Osd).unwrap();
    assert_eq!(to_osd.method(), AUTH_CEPHX);
    // Towards a mon the first payload is a mon-mode request; towards a daemon, an authorizer
    // (which needs a ticket this empty store lacks).
    let mut to_mon = to_mon;
    assert_eq!(to_mon.request().unwrap()[0], 10);
    let mut to_osd = to_osd;
    assert!(matches!(
        to_osd.request(),
        Err(AuthError::NoTicket(EntityType::Osd))
    ));
    let p = CephxClientProvider::new(admin(), key, store).with_auth_none(true);
    assert_eq!(p.methods(), vec![AUTH_CEPHX, AUTH_NONE]);
    let mut none = p.start(AUTH_NONE, EntityType::Mon).unwrap();
    assert_eq!(none.method(), AUTH_NONE);
    assert_eq!(none.request().unwrap()[0], 10);
    let mut none = p.start(AUTH_NONE, EntityType::Osd).unwrap();
    assert_eq!(none.request().unwrap()[0], 1);
    assert!(std::ptr::eq(p.store(), p.store()));
}

/// The global id a first request names: 0 unless reclaiming one the store holds, with its
/// AUTH ticket (cephx), or, for auth none, the store's id towards a daemon and 0 to a mon.
#[test]
fn first_requests_name_the_global_id_only_when_they_should() {
    fn gid_of(req: &[u8]) -> u64 {
        u64::from_le_bytes(req[req.len() - 8..].try_into().unwrap())
    }
    let kr = keyring();
    let key = kr.get(&admin()).unwrap().clone();
    let store = TicketStore::new();
    let (first, _) = run(
        &mut MonClientAuth::new(admin(), key.clone(), store.clone()),
        &mut MonServerAuth::new(context(kr)),
        CON_MODE_CRC,
    )
    .unwrap();
    assert_ne!(first.global_id, 0);
    let mut fresh = MonClientAuth::new(admin(), key.clone(), store.clone());
    assert_eq!(gid_of(&fresh.request().unwrap()), 0);
    let mut reclaim = MonClientAuth::new(admin(), key.clone(), store.clone()).with_reclaim(true);
    assert_eq!(gid_of(&reclaim.request().unwrap()), first.global_id);
    let mut nothing_to_reclaim =
        MonClientAuth::new(admin(), key.clone(), TicketStore::new()).with_reclaim(true);
    assert_eq!(gid_of(&nothing_to_reclaim.request().unwrap()), 0);

    let p = CephxClientProvider::new(admin(), key, store).with_auth_none(true);
    let mut to_mon = p.start(AUTH_NONE, EntityType::Mon).unwrap();
    assert_eq!(gid_of(&to_mon.request().unwrap()), 0);
    let mut to_osd = p.start(AUTH_NONE, EntityType::Osd).unwrap();
    assert_eq!(gid_of(&to_osd.request().unwrap()), first.global_id);
}
