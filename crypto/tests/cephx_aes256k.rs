#![allow(clippy::unwrap_used)]
//! cephx with `aes256k` keys (Ceph 20's default) against our own mon-style and OSD-style
//! servers: session-key and ticket types (the AUTH session key takes the client key's type, a
//! service session key the weaker of the client's and the service's), sizes of the aes256k
//! envelopes, key usages being enforced, global-id reclaim (TICKET_BLOB), and mixed set-ups.

use std::sync::Arc;

use msgr2_codec::encoding::Encode;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::{AuthResult, ClientAuth, ServerAuth, ServerStep, EACCES};
use msgr2_crypto::cephx::types::{put_sealed_struct, CephXAuthorize, CephxEncode};
use msgr2_crypto::cephx::{
    AuthorizerClientAuth, AuthorizerServerAuth, KeyUsage, MonClientAuth, MonServerAuth,
    MonServerContext, ServiceSecrets, TicketStore, CONNECTION_SECRET_LEN, DEFAULT_SERVICES,
};
use msgr2_crypto::keyring::{CryptoKey, KeyType, Keyring};

fn admin() -> EntityName {
    "client.admin".parse().unwrap()
}

fn keyring(ty: KeyType) -> Keyring {
    let mut kr = Keyring::new();
    kr.insert(admin(), CryptoKey::generate_of(ty).unwrap());
    kr.set_caps(&admin(), "mon", "allow *");
    kr.set_caps(&admin(), "osd", "allow *");
    kr.set_caps(&admin(), "mgr", "allow *");
    kr
}

fn run(
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

fn login(ctx: &Arc<MonServerContext>, key: &CryptoKey, mode: u32) -> (TicketStore, AuthResult) {
    let store = TicketStore::new();
    let mut client = MonClientAuth::new(admin(), key.clone(), store.clone());
    let (c, s) = run(&mut client, &mut MonServerAuth::new(ctx.clone()), mode).unwrap();
    assert_eq!(c.session_key, s.session_key);
    assert_eq!(c.connection_secret, s.connection_secret);
    (store, c)
}

#[test]
fn aes256k_login_and_authorizers() {
    let kr = keyring(KeyType::Aes256k);
    let key = kr.get(&admin()).unwrap().clone();
    // An aes256k keyring gives aes256k service secrets (Ceph 20's auth_service_cipher).
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    assert_eq!(
        ctx.secrets.current(EntityType::Osd).unwrap().1.key_type(),
        KeyType::Aes256k
    );
    for mode in [CON_MODE_CRC, CON_MODE_SECURE] {
        let (store, c) = login(&ctx, &key, mode);
        // The session key (the AUTH_SIGNATURE HMAC key) is the 32-byte aes256k secret.
        assert_eq!(c.session_key.len(), 32);
        let want = if mode == CON_MODE_SECURE {
            CONNECTION_SECRET_LEN
        } else {
            0
        };
        assert_eq!(c.connection_secret.len(), want);
        for svc in [
            EntityType::Auth,
            EntityType::Mon,
            EntityType::Osd,
            EntityType::Mgr,
        ] {
            let t = store.get(svc).unwrap();
            assert_eq!(t.session_key.key_type(), KeyType::Aes256k, "{svc:?}");
        }
        for svc in [EntityType::Osd, EntityType::Mgr] {
            for amode in [CON_MODE_CRC, CON_MODE_SECURE] {
                let mut ac = AuthorizerClientAuth::new(store.clone(), svc);
                let mut asrv = AuthorizerServerAuth::new(svc, ctx.secrets.clone());
                let (c2, s2) = run(&mut ac, &mut asrv, amode).unwrap();
                assert_eq!(c2.session_key, s2.session_key);
                assert_eq!(c2.session_key.len(), 32);
                assert_eq!(c2.connection_secret, s2.connection_secret);
                let want = if amode == CON_MODE_SECURE {
                    CONNECTION_SECRET_LEN
                } else {
                    0
                };
                assert_eq!(c2.connection_secret.len(), want);
            }
        }
    }
}

/// Sizes of the aes256k envelopes: `16 (confounder) + 9 (version, magic) + payload + 24 (tag)`.
#[test]
fn aes256k_authorizer_sizes() {
    let kr = keyring(KeyType::Aes256k);
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    let (store, _) = login(&ctx, &key, CON_MODE_SECURE);
    let t = store.get(EntityType::Osd).unwrap();
    // CephXServiceTicketInfo with a 44-byte aes256k key inside (85 + 16 plain bytes) and the
    // osd caps "allow *" (4 + 7 more).
    assert_eq!(t.ticket.blob.len(), 16 + 9 + 101 + 11 + 24);
    let tb = t.ticket.to_bytes();
    let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
    let p = ac.request().unwrap();
    // CephXAuthorize v2 is 18 bytes.
    assert_eq!(p.len(), 13 + tb.len() + 4 + 16 + 9 + 18 + 24);
    let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
    let ServerStep::More(ch) = srv.request(CON_MODE_SECURE, &p) else {
        panic!()
    };
    assert_eq!(
        ch.len(),
        16 + 9 + 9 + 24,
        "raw sealed CephXAuthorizeChallenge"
    );
    let ServerStep::Done { payload, .. } = srv.request_more(&ac.reply_more(&ch).unwrap()) else {
        panic!()
    };
    // v2 reply: 1 + 8 + 4 + 64 bytes inside.
    assert_eq!(payload.len(), 4 + 16 + 9 + 77 + 24);
    ac.done(store.global_id(), CON_MODE_SECURE, &payload)
        .unwrap();
}

/// The key usage is part of the key: an authorizer sealed for another usage is rejected.
#[test]
fn aes256k_wrong_usage_is_rejected() {
    let kr = keyring(KeyType::Aes256k);
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    let (store, _) = login(&ctx, &key, CON_MODE_CRC);
    let t = store.get(EntityType::Osd).unwrap();
    let msg = CephXAuthorize {
        nonce: 7,
        have_challenge: false,
        server_challenge_plus_one: 0,
    };
    for (usage, ok) in [
        (KeyUsage::Authorize, true),
        (KeyUsage::AuthorizeReply, false),
        (KeyUsage::None, false),
    ] {
        let mut p = Vec::new();
        p.put_u8(1);
        p.put_u64(store.global_id());
        p.put_u32(4);
        t.ticket.encode(&mut p);
        put_sealed_struct(&mut p, &t.session_key, usage, &msg).unwrap();
        let mut srv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
        let step = srv.request(CON_MODE_CRC, &p);
        assert_eq!(matches!(step, ServerStep::More(_)), ok, "{usage:?}");
        if !ok {
            assert_eq!(step, ServerStep::Reject(EACCES));
        }
    }
}

/// Global-id reclaim: the new AUTH ticket comes sealed (TICKET_BLOB) under the old aes256k
/// session key.
#[test]
fn aes256k_global_id_reclaim() {
    let kr = keyring(KeyType::Aes256k);
    let key = kr.get(&admin()).unwrap().clone();
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    let (store, first) = login(&ctx, &key, CON_MODE_CRC);
    let mut c = MonClientAuth::new(admin(), key.clone(), store.clone()).with_reclaim(true);
    let (again, s) = run(
        &mut c,
        &mut MonServerAuth::new(ctx.clone()),
        CON_MODE_SECURE,
    )
    .unwrap();
    assert_eq!(again.global_id, first.global_id);
    assert_eq!(s.global_id, first.global_id);
    assert_ne!(again.session_key, first.session_key);
    assert_eq!(again.session_key.len(), 32);
}

/// A mixed cluster (Ceph 20 with `auth_allowed_ciphers aes256k,aes`): an `aes` client gets
/// `aes` tickets even from aes256k services; an aes256k client of `aes` services gets an
/// aes256k AUTH ticket and `aes` service tickets. Both log in and pass the authorizer.
#[test]
fn mixed_key_types() {
    let old: EntityName = "client.old".parse().unwrap();
    let mut kr = keyring(KeyType::Aes256k);
    kr.insert(old.clone(), CryptoKey::generate_of(KeyType::Aes).unwrap());
    kr.set_caps(&old, "mon", "allow r");
    kr.set_caps(&old, "osd", "allow *");
    let old_key = kr.get(&old).unwrap().clone();
    let new_key = kr.get(&admin()).unwrap().clone();
    let kr = Arc::new(kr);
    let aes256k_ctx = Arc::new(MonServerContext::new(kr.clone()).unwrap());
    let aes_ctx = Arc::new(MonServerContext::with_secrets(
        kr,
        Arc::new(ServiceSecrets::generate_of(&DEFAULT_SERVICES, KeyType::Aes).unwrap()),
    ));
    for (ctx, name, key, auth_ty, svc_ty) in [
        (&aes256k_ctx, &old, &old_key, KeyType::Aes, KeyType::Aes),
        (&aes_ctx, &admin(), &new_key, KeyType::Aes256k, KeyType::Aes),
        (
            &aes256k_ctx,
            &admin(),
            &new_key,
            KeyType::Aes256k,
            KeyType::Aes256k,
        ),
        (&aes_ctx, &old, &old_key, KeyType::Aes, KeyType::Aes),
    ] {
        let store = TicketStore::new();
        let mut client = MonClientAuth::new(name.clone(), key.clone(), store.clone());
        let (c, _) = run(
            &mut client,
            &mut MonServerAuth::new(ctx.clone()),
            CON_MODE_SECURE,
        )
        .unwrap();
        assert_eq!(c.session_key.len(), auth_ty.secret_len());
        assert_eq!(
            store.get(EntityType::Auth).unwrap().session_key.key_type(),
            auth_ty
        );
        let osd = store.get(EntityType::Osd).unwrap();
        assert_eq!(osd.session_key.key_type(), svc_ty, "{name} osd ticket");
        let mut ac = AuthorizerClientAuth::new(store.clone(), EntityType::Osd);
        let mut asrv = AuthorizerServerAuth::new(EntityType::Osd, ctx.secrets.clone());
        let (c2, _) = run(&mut ac, &mut asrv, CON_MODE_SECURE).unwrap();
        assert_eq!(c2.session_key.len(), svc_ty.secret_len());
    }
}

/// A wrong aes256k key (or an aes key with the same name) fails the login with EACCES.
#[test]
fn aes256k_wrong_key_is_eacces() {
    let kr = keyring(KeyType::Aes256k);
    let ctx = Arc::new(MonServerContext::new(Arc::new(kr)).unwrap());
    for wrong in [
        CryptoKey::generate_of(KeyType::Aes256k).unwrap(),
        CryptoKey::generate_of(KeyType::Aes).unwrap(),
    ] {
        let mut client = MonClientAuth::new(admin(), wrong, TicketStore::new());
        let r = run(
            &mut client,
            &mut MonServerAuth::new(ctx.clone()),
            CON_MODE_CRC,
        );
        assert_eq!(r.err(), Some(EACCES));
    }
}
