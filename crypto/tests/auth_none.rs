//! AUTH_NONE as Ceph's `AuthNoneClientHandler` / `AuthNoneServiceHandler` speak it: the
//! payload each side builds and accepts, the mode-byte ranges, the global id a monitor assigns
//! and the client remembers for daemons, and the errno each rejection carries.

use std::sync::atomic::Ordering;

use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{AUTH_CEPHX, AUTH_NONE, CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::{
    AuthError, AuthResult, ClientAuthProvider, NoneClient, NoneClientProvider, NoneServer,
    NoneServerProvider, ServerAuthProvider, ServerStep, AUTH_MODE_AUTHORIZER, AUTH_MODE_MON,
    AUTH_MODE_MON_MAX, EACCES, EINVAL, EOPNOTSUPP,
};
use msgr2_crypto::auth::{ClientAuth, ServerAuth};

fn name(s: &str) -> EntityName {
    s.parse().expect("entity name")
}

/// `u8 mode, EntityName, u64 global_id` with any mode byte.
fn payload(mode: u8, who: &str, gid: u64) -> Vec<u8> {
    let mut c = NoneClient {
        name: name(who),
        global_id: gid,
        to_mon: true,
        shared_global_id: None,
    };
    let mut p = c.request().expect("request");
    p[0] = mode;
    p
}

#[test]
fn errno_values_are_linux_negatives() {
    assert_eq!((EACCES, EINVAL, EOPNOTSUPP), (-13, -22, -95));
    assert_eq!(
        (AUTH_MODE_AUTHORIZER, AUTH_MODE_MON, AUTH_MODE_MON_MAX),
        (1, 10, 20)
    );
}

#[test]
fn client_payload_mode_byte_follows_the_peer() {
    let provider = NoneClientProvider::new(name("client.admin"));
    assert_eq!(provider.methods(), vec![AUTH_NONE]);
    assert!(provider.start(AUTH_CEPHX, EntityType::Mon).is_none());
    for (peer, mode) in [
        (EntityType::Mon, AUTH_MODE_MON),
        (EntityType::Osd, AUTH_MODE_AUTHORIZER),
        (EntityType::Mgr, AUTH_MODE_AUTHORIZER),
    ] {
        let mut c = provider.start(AUTH_NONE, peer).expect("auth none starts");
        assert_eq!(c.method(), AUTH_NONE);
        let p = c.request().expect("request");
        // mode, type 8 (client), "admin" (len 5), global id 0.
        let mut want = vec![mode, 8, 0, 0, 0, 5, 0, 0, 0];
        want.extend_from_slice(b"admin");
        want.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(p, want, "{peer:?}");
        assert_eq!(
            c.reply_more(&[1, 2, 3]),
            Err(AuthError::Unexpected("AUTH_REPLY_MORE with auth none"))
        );
    }
}

#[test]
fn global_id_from_the_monitor_goes_to_daemons() {
    let provider = NoneClientProvider::new(name("client.admin"));
    let mut to_mon = provider.start(AUTH_NONE, EntityType::Mon).expect("start");
    let done = to_mon
        .done(4123, CON_MODE_CRC, &[])
        .expect("auth none done");
    assert_eq!((done.global_id, done.con_mode), (4123, CON_MODE_CRC));
    assert!(done.session_key.is_empty() && done.connection_secret.is_empty());
    assert_eq!(provider.global_id.load(Ordering::Relaxed), 4123);
    // A daemon hears the assigned id; a (re)connection to a monitor asks afresh.
    let mut to_osd = provider.start(AUTH_NONE, EntityType::Osd).expect("start");
    let p = to_osd.request().expect("request");
    assert_eq!(p[p.len() - 8..], 4123u64.to_le_bytes());
    let mut again = provider.start(AUTH_NONE, EntityType::Mon).expect("start");
    let p = again.request().expect("request");
    assert_eq!(p[p.len() - 8..], 0u64.to_le_bytes());
    // A daemon's AUTH_DONE does not overwrite what the monitor assigned.
    to_osd.done(9, CON_MODE_CRC, &[]).expect("done");
    assert_eq!(provider.global_id.load(Ordering::Relaxed), 4123);
}

#[test]
fn server_accepts_authorizer_and_mon_modes_in_crc_only() {
    let mut s = NoneServer {
        next_global_id: 4100,
    };
    assert_eq!(s.method(), AUTH_NONE);
    for (mode, ok) in [
        (0u8, false),
        (AUTH_MODE_AUTHORIZER, true),
        (2, false),
        (AUTH_MODE_MON - 1, false),
        (AUTH_MODE_MON, true),
        (AUTH_MODE_MON_MAX - 1, true),
        (AUTH_MODE_MON_MAX, false),
        (255, false),
    ] {
        let step = s.request(CON_MODE_CRC, &payload(mode, "client.admin", 0));
        match (ok, step) {
            (true, ServerStep::Done { payload, result }) => {
                assert!(payload.is_empty());
                assert_eq!(
                    result,
                    AuthResult {
                        global_id: 4100,
                        con_mode: CON_MODE_CRC,
                        peer_name: Some(name("client.admin")),
                        ..Default::default()
                    }
                );
            }
            (false, ServerStep::Reject(e)) => assert_eq!(e, EINVAL, "mode {mode}"),
            (_, other) => panic!("mode {mode}: {other:?}"),
        }
    }
    // A client that already has a global id keeps it.
    match s.request(CON_MODE_CRC, &payload(AUTH_MODE_MON, "osd.3", 77)) {
        ServerStep::Done { result, .. } => {
            assert_eq!(result.global_id, 77);
            assert_eq!(result.peer_name, Some(name("osd.3")));
        }
        other => panic!("{other:?}"),
    }
    let good = payload(AUTH_MODE_MON, "client.admin", 0);
    assert_eq!(
        s.request(CON_MODE_SECURE, &good),
        ServerStep::Reject(EOPNOTSUPP)
    );
    assert_eq!(
        s.request(CON_MODE_CRC, &good[..good.len() - 1]),
        ServerStep::Reject(EINVAL)
    );
    assert_eq!(s.request_more(&good), ServerStep::Reject(EINVAL));
}

#[test]
fn server_provider_hands_out_increasing_global_ids() {
    let p = NoneServerProvider::new(4100);
    assert_eq!(p.methods(EntityType::Client), vec![AUTH_NONE]);
    assert!(p.start(AUTH_CEPHX, EntityType::Client).is_none());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut s = p.start(AUTH_NONE, EntityType::Client).expect("start");
        assert_eq!(s.method(), AUTH_NONE);
        match s.request(CON_MODE_CRC, &payload(AUTH_MODE_MON, "client.x", 0)) {
            ServerStep::Done { result, .. } => ids.push(result.global_id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids, vec![4100, 4101, 4102]);
    // Global id 0 means "none yet": never handed out.
    let zero = NoneServerProvider::new(0);
    let mut s = zero.start(AUTH_NONE, EntityType::Client).expect("start");
    match s.request(CON_MODE_CRC, &payload(AUTH_MODE_MON, "client.x", 0)) {
        ServerStep::Done { result, .. } => assert_eq!(result.global_id, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_result_debug_never_prints_key_material() {
    let r = AuthResult {
        global_id: 7,
        con_mode: CON_MODE_SECURE,
        session_key: vec![0xAB; 16],
        connection_secret: vec![0xCD; 64],
        peer_name: None,
    };
    let s = format!("{r:?}");
    assert!(s.contains("global_id: 7") && s.contains("connection_secret_len: 64"));
    assert!(!s.contains("171") && !s.contains("205"), "{s}");
}
