//! Unit tests of AUTH-ticket renewal against a mock mon that lays its reply out as Ceph's
//! `CephxServiceHandler::handle_request` (CEPHX_GET_AUTH_SESSION_KEY on an established
//! session) does.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use msgr2_codec::encoding::{Decoder, Encode};
use msgr2_codec::payload::UTime;

use super::*;
use crate::cephx::rotating::build_ticket_renewal_request;
use crate::cephx::seal::KeyUsage;
use crate::cephx::server::verify_authenticate;
use crate::cephx::tickets::ServiceTicket;
use crate::cephx::types::{
    encode_service_ticket_reply, unseal_struct, CephXAuthorize, CephXResponseHeader,
    CephXTicketBlob, CephxEncode, TicketGrant, CEPHX_GET_AUTH_SESSION_KEY,
};
use crate::key::KeyType;

const CHALLENGE: u64 = 0x1234_5678_9abc_def0;
const OSD: u32 = EntityType::Osd as u32;

fn grant(service_id: u32, session_key: &CryptoKey, secs: u32, secret_id: u64) -> TicketGrant {
    TicketGrant {
        service_id,
        session_key: session_key.clone(),
        validity: UTime { sec: secs, nsec: 0 },
        ticket: CephXTicketBlob {
            secret_id,
            blob: vec![secret_id as u8; 96],
        },
    }
}

/// A store as a login leaves it: global id, server challenge, an AUTH ticket.
fn logged_in(old_session: &CryptoKey, now: SystemTime) -> TicketStore {
    let store = TicketStore::new();
    store.set_global_id(4242);
    store.set_server_challenge(CHALLENGE);
    store.insert(ServiceTicket::from_grant(
        grant(SERVICE_AUTH, old_session, 20, 1),
        now,
    ));
    store
}

/// The mon's `result_bl`: header, the AUTH grant (session key under the principal's secret,
/// ticket blob under the old session key), empty `cbl`, `extra` under the new session key.
fn mon_reply(
    principal: &CryptoKey,
    old_session: &CryptoKey,
    new_session: &CryptoKey,
    extra: &[TicketGrant],
    status: i32,
) -> Vec<u8> {
    let mut out = CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status,
    }
    .to_bytes();
    let auth = grant(SERVICE_AUTH, new_session, 20, 2);
    encode_service_ticket_reply(&mut out, principal, &[auth], Some(old_session)).unwrap();
    out.put_blob(&[]);
    let mut extra_bl = Vec::new();
    if !extra.is_empty() {
        encode_service_ticket_reply(&mut extra_bl, new_session, extra, None).unwrap();
    }
    out.put_blob(&extra_bl);
    out
}

#[test]
fn renewal_round_trip_for_both_key_types() {
    for ty in [KeyType::Aes, KeyType::Aes256k] {
        let principal = CryptoKey::generate_of(ty).unwrap();
        let old = CryptoKey::generate_of(ty).unwrap();
        let new = CryptoKey::generate_of(ty).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let store = logged_in(&old, t0);
        let old_ticket = store.get_even_expired(EntityType::Auth).unwrap();

        // The request proves the secret over the login's challenge and presents the ticket.
        let req = build_auth_renewal_request(&principal, &store, OSD).unwrap();
        let a = verify_authenticate(&principal, CHALLENGE, &req).unwrap();
        assert_eq!(a.struct_v, 3);
        assert_eq!(a.old_ticket, old_ticket.ticket);
        assert_eq!(a.other_keys, SERVICE_AUTH | OSD);
        assert!(verify_authenticate(&principal, CHALLENGE + 1, &req).is_err());
        let other = CryptoKey::generate_of(ty).unwrap();
        assert!(verify_authenticate(&other, CHALLENGE, &req).is_err());

        // The reply replaces the AUTH ticket and brings the OSD ticket along.
        let bl = mon_reply(&principal, &old, &new, &[grant(OSD, &new, 10, 7)], 0);
        let t1 = t0 + Duration::from_secs(15);
        let r = handle_auth_renewal_reply(&principal, &store, &bl, t1).unwrap();
        assert_eq!(r.services, vec![SERVICE_AUTH, OSD]);
        assert_eq!(r.expires, t1 + Duration::from_secs(20));
        let auth = store.get_even_expired(EntityType::Auth).unwrap();
        assert!(auth.expires > old_ticket.expires);
        assert_eq!(auth.session_key, new);
        assert_eq!(auth.ticket.secret_id, 2);
        assert_eq!(
            store
                .get_even_expired(EntityType::Osd)
                .unwrap()
                .ticket
                .secret_id,
            7
        );
        assert_eq!(store.server_challenge(), Some(CHALLENGE));
        assert_eq!(store.global_id(), 4242);

        // Service-ticket renewals now present the new AUTH ticket, sealed with the new key.
        let p = build_ticket_renewal_request(&store, OSD, 99).unwrap();
        let mut d = Decoder::new(&p[2..]);
        assert_eq!(d.u8("v").unwrap(), 1);
        assert_eq!(d.u64("gid").unwrap(), 4242);
        assert_eq!(d.u32("svc").unwrap(), SERVICE_AUTH);
        assert_eq!(CephXTicketBlob::decode(&mut d).unwrap(), auth.ticket);
        let ct = d.blob("authorize").unwrap();
        let m: CephXAuthorize = unseal_struct(&new, KeyUsage::Authorize, ct).unwrap();
        assert_eq!(m.nonce, 99);
        assert!(unseal_struct::<CephXAuthorize>(&old, KeyUsage::Authorize, ct).is_err());

        // A second renewal builds on the first one's ticket and session key.
        let req2 = build_auth_renewal_request(&principal, &store, 0).unwrap();
        let a2 = verify_authenticate(&principal, CHALLENGE, &req2).unwrap();
        assert_eq!(a2.old_ticket, auth.ticket);
        assert_eq!(a2.other_keys, SERVICE_AUTH);
        // AUTH already in the wanted set stays in it (Ceph's `need |= AUTH`).
        let req3 = build_auth_renewal_request(&principal, &store, 0x35).unwrap();
        assert_eq!(
            verify_authenticate(&principal, CHALLENGE, &req3)
                .unwrap()
                .other_keys,
            0x35
        );
        assert_ne!(a2.client_challenge, a.client_challenge);
        let newer = CryptoKey::generate_of(ty).unwrap();
        let bl2 = mon_reply(&principal, &new, &newer, &[], 0);
        let r2 = handle_auth_renewal_reply(&principal, &store, &bl2, t1 + Duration::from_secs(15))
            .unwrap();
        assert_eq!(r2.services, vec![SERVICE_AUTH]);
        assert!(r2.expires > r.expires);
        assert_eq!(
            store
                .get_even_expired(EntityType::Auth)
                .unwrap()
                .session_key,
            newer
        );
    }
}

#[test]
fn bad_replies_are_typed_errors_and_store_nothing() {
    let principal = CryptoKey::generate().unwrap();
    let old = CryptoKey::generate().unwrap();
    let new = CryptoKey::generate().unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let store = logged_in(&old, t0);
    let before = store.get_even_expired(EntityType::Auth).unwrap();
    let unchanged = |store: &TicketStore| {
        assert_eq!(store.get_even_expired(EntityType::Auth).unwrap(), before);
        assert_eq!(store.services(), vec![SERVICE_AUTH]);
    };
    let good = mon_reply(&principal, &old, &new, &[grant(OSD, &new, 10, 7)], 0);

    // Every truncation fails but the one right after the AUTH part (a reply without `cbl`
    // and `extra`, which Ceph's parser accepts too), and so does a reply sealed for another
    // principal or with another old session key.
    let auth_end = mon_reply(&principal, &old, &new, &[], 0).len() - 8;
    for n in (0..good.len()).filter(|n| *n != auth_end) {
        let e = handle_auth_renewal_reply(&principal, &store, &good[..n], t0).unwrap_err();
        assert!(matches!(e, AuthRenewalError::Reply(_)), "{n}: {e:?}");
        unchanged(&store);
    }
    let stranger = CryptoKey::generate().unwrap();
    for bl in [
        mon_reply(&stranger, &old, &new, &[], 0),
        mon_reply(&principal, &stranger, &new, &[], 0),
    ] {
        assert!(matches!(
            handle_auth_renewal_reply(&principal, &store, &bl, t0),
            Err(AuthRenewalError::Reply(AuthError::BadProof(_)))
        ));
        unchanged(&store);
    }
    // The mon's refusal, and an answer to another request type.
    let mut refused = CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status: -13,
    }
    .to_bytes();
    refused.extend_from_slice(&good[6..]);
    assert!(matches!(
        handle_auth_renewal_reply(&principal, &store, &refused, t0),
        Err(AuthRenewalError::Reply(AuthError::PeerError(-13)))
    ));
    let mut other = good.clone();
    other[1] = 0x02;
    assert!(matches!(
        handle_auth_renewal_reply(&principal, &store, &other, t0),
        Err(AuthRenewalError::Reply(AuthError::Unexpected(_)))
    ));
    unchanged(&store);
    assert!(handle_auth_renewal_reply(&principal, &store, &good, t0).is_ok());
}

#[test]
fn renewal_needs_a_login() {
    let key = CryptoKey::generate().unwrap();
    let empty = TicketStore::new();
    assert!(matches!(
        build_auth_renewal_request(&key, &empty, 0),
        Err(AuthRenewalError::NoServerChallenge)
    ));
    empty.set_server_challenge(CHALLENGE);
    assert!(matches!(
        build_auth_renewal_request(&key, &empty, 0),
        Err(AuthRenewalError::NoAuthTicket)
    ));
    assert!(matches!(
        handle_auth_renewal_reply(&key, &empty, &[], SystemTime::now()),
        Err(AuthRenewalError::NoAuthTicket)
    ));
    empty.clear();
    assert_eq!(empty.server_challenge(), None);
}
