//! cephx decoders never panic on arbitrary payloads: the client's AUTH_DONE parser, the
//! mon-style server's request handling, the authorizer server (fixed secrets and a rotating
//! keyring), the rotating-secrets, ticket-renewal and AUTH-ticket renewal replies (the latter
//! against a store holding an AUTH ticket, so that the old session key is tried), and keyring
//! parsing, with
//! `aes` keys and (selector bit 0x20) `aes256k` keys, plus the aes256k cipher itself.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::ServerAuth;
use msgr2_crypto::cephx::{parse_mon_auth_done, AuthorizerServerAuth, MonServerAuth, MonServerContext, ServiceSecrets};
use msgr2_crypto::cephx::{unseal, KeyUsage};
use msgr2_crypto::cephx::types::CephxEncode;
use msgr2_crypto::cephx::{
    handle_auth_renewal_reply, handle_ticket_renewal_reply, parse_rotating_reply, RotatingKeyring,
    RotatingSecrets, ServiceTicket, TicketStore,
};
use msgr2_crypto::cephx::types::{CephXTicketBlob, TicketGrant};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_codec::payload::UTime;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let key = if sel & 0x20 != 0 {
        CryptoKey::new_aes256k(UTime { sec: 1, nsec: 0 }, [7; 32])
    } else {
        CryptoKey::new(UTime { sec: 1, nsec: 0 }, [7; 16])
    };
    match sel % 4 {
        0 => {
            let _ = parse_mon_auth_done(&key, None, rest);
            let _ = parse_rotating_reply(&key, rest);
            let _ = RotatingSecrets::from_bytes(rest);
            let _ = handle_ticket_renewal_reply(&TicketStore::new(), rest, std::time::UNIX_EPOCH);
            let store = TicketStore::new();
            store.set_server_challenge(1);
            store.insert(ServiceTicket::from_grant(
                TicketGrant {
                    service_id: 0x20,
                    session_key: key.clone(),
                    validity: UTime { sec: u32::MAX, nsec: 0 },
                    ticket: CephXTicketBlob::default(),
                },
                std::time::UNIX_EPOCH,
            ));
            let _ = handle_auth_renewal_reply(&key, &store, rest, std::time::UNIX_EPOCH);
            let _ = unseal(&key, KeyUsage::TicketSessionKey, rest);
            let _ = msgr2_crypto::aes256k::decrypt(&[7; 32], u32::from(sel), rest);
        }
        1 => {
            let mut kr = Keyring::new();
            kr.insert("client.admin".parse().expect("name"), key);
            let ctx = Arc::new(MonServerContext::with_secrets(Arc::new(kr), Arc::new(ServiceSecrets::new())));
            let mut s = MonServerAuth::new(ctx);
            let mode = if sel & 0x10 != 0 { CON_MODE_SECURE } else { CON_MODE_CRC };
            let cut = rest.len() / 2;
            let _ = s.request(mode, &rest[..cut]);
            let _ = s.request_more(&rest[cut..]);
        }
        2 => {
            let mut s = if sel & 0x40 != 0 {
                let k = RotatingKeyring::new(EntityType::Osd);
                if let Ok(r) = RotatingSecrets::from_bytes(rest) {
                    k.install(r);
                }
                AuthorizerServerAuth::new(EntityType::Osd, k)
            } else {
                AuthorizerServerAuth::new(EntityType::Osd, Arc::new(ServiceSecrets::new()))
            };
            let cut = rest.len() / 2;
            let _ = s.request(CON_MODE_SECURE, &rest[..cut]);
            let _ = s.request_more(&rest[cut..]);
        }
        _ => {
            if let Ok(t) = std::str::from_utf8(rest) {
                let _ = t.parse::<Keyring>();
            }
        }
    }
});
