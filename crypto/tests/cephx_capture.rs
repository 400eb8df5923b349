#![allow(clippy::unwrap_used)]
//! cephx against real Ceph 16.2.15 captures (`tests/data/captures/*cephx*`): every
//! connection's AUTH_REQUEST / AUTH_REQUEST_MORE is reproduced byte for byte, the client's
//! proof verifies with client.admin's key (and not with another key), AUTH_DONE decrypts to
//! the session key and connection secret recorded at capture time, and AUTH_SIGNATURE over
//! the pre-auth bytes matches both directions. Our mon-style server's AUTH_DONE for the same
//! request has exactly the real mon's layout (same length, readable by our client).

use std::path::PathBuf;
use std::sync::Arc;

use msgr2_codec::banner::BANNER_PREFIX_LEN;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};
use msgr2_codec::payload::{
    AuthDone, AuthReplyMore, AuthRequest, AuthRequestMore, AuthSignature, ControlPayload,
    AUTH_CEPHX, CON_MODE_CRC,
};
use msgr2_codec::Revision;
use msgr2_crypto::auth::{AuthError, ClientAuth, ServerAuth, ServerStep};
use msgr2_crypto::cephx::types::{
    CephXAuthenticate, CephXServerChallenge, CephXTicketBlob, CephxEncode,
};
use msgr2_crypto::cephx::{
    build_authenticate, parse_mon_auth_done, verify_authenticate, MonClientAuth, MonServerAuth,
    MonServerContext, TicketStore, DEFAULT_AUTH_TICKET_TTL, DEFAULT_SERVICE_TICKET_TTL,
    SERVICE_AUTH,
};
use msgr2_crypto::keyring::Keyring;
use msgr2_crypto::signature::auth_signature;

const PREFIXES: [&str; 3] = [
    "crc-cephx-ceph-s",
    "crc-cephx-lspools",
    "secure-cephx-lspools",
];

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/captures")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A crc-mode frame of the pre-auth phase: where it ends in the stream and its payload.
struct PlainFrame {
    end: usize,
    tag: Tag,
    seg: Vec<u8>,
}

/// The crc-mode frames at the start of a stream, up to the first one that does not decode
/// (encrypted from there on in secure mode).
fn plain_frames(stream: &[u8]) -> Vec<PlainFrame> {
    let plen = u16::from_le_bytes([stream[8], stream[9]]) as usize;
    let mut off = BANNER_PREFIX_LEN + plen;
    let mut dec = FrameDecoder::new(Revision::Rev1, Limits::default());
    let mut out = Vec::new();
    while off < stream.len() {
        match dec.feed(&stream[off..]) {
            Ok((n, Some(f))) => {
                off += n;
                out.push(PlainFrame {
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

#[derive(Default, Debug)]
struct Expected {
    global_id: u64,
    con_mode: u32,
    session_key: Vec<u8>,
    connection_secret: Vec<u8>,
    client_sig: Vec<u8>,
    server_sig: Vec<u8>,
}

/// Parses `PREFIX.cephx.txt` into per-connection expectations.
fn expected(prefix: &str) -> Vec<(String, Expected)> {
    let text = std::fs::read_to_string(captures().join(format!("{prefix}.cephx.txt"))).unwrap();
    let mut out: Vec<(String, Expected)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            out.push((name.trim().to_string(), Expected::default()));
            continue;
        }
        let Some((_, e)) = out.last_mut() else {
            continue;
        };
        let last_hex = || line.rsplit(' ').next().unwrap().trim().to_string();
        if let Some(rest) = line.strip_prefix("AUTH_DONE: global_id=") {
            let mut w = rest.split_whitespace();
            e.global_id = w.next().unwrap().parse().unwrap();
            e.con_mode = w
                .next()
                .unwrap()
                .strip_prefix("con_mode=")
                .unwrap()
                .parse()
                .unwrap();
        } else if line.contains("ticket for service 32: session key") {
            e.session_key = unhex(&last_hex());
        } else if line.starts_with("connection secret") {
            e.connection_secret = unhex(line.split_once("): ").unwrap().1.trim());
        } else if line.starts_with("expected client AUTH_SIGNATURE") {
            e.client_sig = unhex(&last_hex());
        } else if line.starts_with("expected server AUTH_SIGNATURE") {
            e.server_sig = unhex(&last_hex());
        }
    }
    out
}

struct Conn {
    name: String,
    exp: Expected,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    c2s_frames: Vec<PlainFrame>,
    s2c_frames: Vec<PlainFrame>,
    keyring: Arc<Keyring>,
}

impl Conn {
    fn frame(frames: &[PlainFrame], tag: Tag) -> &PlainFrame {
        frames.iter().find(|f| f.tag == tag).unwrap()
    }
    fn c2s(&self, tag: Tag) -> &PlainFrame {
        Self::frame(&self.c2s_frames, tag)
    }
    fn s2c(&self, tag: Tag) -> &PlainFrame {
        Self::frame(&self.s2c_frames, tag)
    }
}

fn connections() -> Vec<Conn> {
    let mut out = Vec::new();
    for prefix in PREFIXES {
        let keyring =
            Arc::new(Keyring::load(captures().join(format!("{prefix}.keyring"))).unwrap());
        for (name, exp) in expected(prefix) {
            let c2s = std::fs::read(captures().join(format!("{name}.c2s.bin"))).unwrap();
            let s2c = std::fs::read(captures().join(format!("{name}.s2c.bin"))).unwrap();
            let c2s_frames = plain_frames(&c2s);
            let s2c_frames = plain_frames(&s2c);
            out.push(Conn {
                name,
                exp,
                c2s,
                s2c,
                c2s_frames,
                s2c_frames,
                keyring: keyring.clone(),
            });
        }
    }
    assert_eq!(out.len(), 8, "2 + 3 + 3 cephx connections");
    out
}

fn admin() -> EntityName {
    "client.admin".parse().unwrap()
}

#[test]
fn client_requests_are_byte_identical() {
    for c in connections() {
        let key = c.keyring.get(&admin()).unwrap().clone();
        let req = AuthRequest::decode(&c.c2s(Tag::AuthRequest).seg).unwrap();
        assert_eq!(req.method, AUTH_CEPHX);
        let mut client = MonClientAuth::new(admin(), key.clone(), TicketStore::new());
        assert_eq!(client.request().unwrap(), req.auth_payload, "{}", c.name);

        let more = AuthReplyMore::decode(&c.s2c(Tag::AuthReplyMore).seg).unwrap();
        let sc = CephXServerChallenge::from_bytes(&more.auth_payload).unwrap();
        assert_ne!(sc.server_challenge, 0);
        let real = AuthRequestMore::decode(&c.c2s(Tag::AuthRequestMore).seg)
            .unwrap()
            .auth_payload;
        assert_eq!(real.len(), 36);
        let auth = CephXAuthenticate::from_bytes(&real[2..]).unwrap();
        assert_eq!(auth.struct_v, 3);
        assert!(auth.old_ticket.blob.is_empty());
        assert_eq!(auth.other_keys & SERVICE_AUTH, SERVICE_AUTH);
        let ours = build_authenticate(
            &key,
            sc.server_challenge,
            auth.client_challenge,
            &CephXTicketBlob::default(),
            auth.other_keys,
        )
        .unwrap();
        assert_eq!(ours, real, "{}", c.name);
    }
}

#[test]
fn server_verifies_real_proofs() {
    for c in connections() {
        let key = c.keyring.get(&admin()).unwrap();
        let other = c.keyring.get(&"osd.0".parse().unwrap()).unwrap();
        let more = AuthReplyMore::decode(&c.s2c(Tag::AuthReplyMore).seg).unwrap();
        let sc = CephXServerChallenge::from_bytes(&more.auth_payload)
            .unwrap()
            .server_challenge;
        let real = AuthRequestMore::decode(&c.c2s(Tag::AuthRequestMore).seg)
            .unwrap()
            .auth_payload;
        let req = verify_authenticate(key, sc, &real).unwrap();
        assert_eq!(req.struct_v, 3);
        assert!(matches!(
            verify_authenticate(other, sc, &real),
            Err(AuthError::BadProof(_))
        ));
        assert!(matches!(
            verify_authenticate(key, sc ^ 1, &real),
            Err(AuthError::BadProof(_))
        ));
        assert!(verify_authenticate(key, sc, &real[..20]).is_err());
    }
}

#[test]
fn client_decrypts_real_auth_done() {
    for c in connections() {
        let key = c.keyring.get(&admin()).unwrap().clone();
        let done = AuthDone::decode(&c.s2c(Tag::AuthDone).seg).unwrap();
        assert_eq!(done.global_id, c.exp.global_id);
        assert_eq!(done.con_mode, c.exp.con_mode);

        // Through the ClientAuth state machine (our own client challenge is irrelevant to
        // AUTH_DONE processing).
        let store = TicketStore::new();
        let mut client = MonClientAuth::new(admin(), key.clone(), store.clone());
        client.request().unwrap();
        let more = AuthReplyMore::decode(&c.s2c(Tag::AuthReplyMore).seg).unwrap();
        client.reply_more(&more.auth_payload).unwrap();
        let res = client
            .done(done.global_id, done.con_mode, &done.auth_payload)
            .unwrap();
        assert_eq!(res.session_key, c.exp.session_key, "{}", c.name);
        assert_eq!(res.connection_secret, c.exp.connection_secret, "{}", c.name);
        assert_eq!(res.global_id, c.exp.global_id);
        assert_eq!(store.global_id(), c.exp.global_id);
        let auth = store.get(EntityType::Auth).unwrap();
        assert_eq!(auth.validity.sec, DEFAULT_AUTH_TICKET_TTL);
        assert_eq!(auth.ticket.blob.len(), 96, "AUTH ticket: 85 bytes sealed");

        // The pure parser agrees, and the extra tickets carry Pacific's service TTL.
        let reply = parse_mon_auth_done(&key, None, &done.auth_payload).unwrap();
        assert_eq!(
            reply.auth.session_key.secret(),
            c.exp.session_key.as_slice()
        );
        for g in &reply.extra {
            assert_eq!(g.validity.sec, DEFAULT_SERVICE_TICKET_TTL);
            assert!(store
                .get(EntityType::from_u32(g.service_id).unwrap())
                .is_some());
        }
        let req = AuthRequestMore::decode(&c.c2s(Tag::AuthRequestMore).seg).unwrap();
        let other_keys = CephXAuthenticate::from_bytes(&req.auth_payload[2..])
            .unwrap()
            .other_keys;
        let want: Vec<u32> = (0..32)
            .map(|b| 1u32 << b)
            .filter(|s| other_keys & s != 0 && *s != SERVICE_AUTH)
            .collect();
        let got: Vec<u32> = reply.extra.iter().map(|g| g.service_id).collect();
        assert_eq!(got, want, "{}: other_keys {other_keys:#x}", c.name);

        // Another entity's key cannot open it.
        let osd = c.keyring.get(&"osd.0".parse().unwrap()).unwrap();
        assert!(matches!(
            parse_mon_auth_done(osd, None, &done.auth_payload),
            Err(AuthError::BadProof(_))
        ));
    }
}

#[test]
fn auth_signatures_match_the_wire() {
    for c in connections() {
        let done_end = c.s2c(Tag::AuthDone).end;
        let more_end = c.c2s(Tag::AuthRequestMore).end;
        // Client signs what it received up to and including AUTH_DONE; server what it
        // received up to the last AUTH_REQUEST_MORE.
        let client_sig = auth_signature(&c.exp.session_key, &c.s2c[..done_end]);
        let server_sig = auth_signature(&c.exp.session_key, &c.c2s[..more_end]);
        assert_eq!(
            client_sig.as_slice(),
            c.exp.client_sig.as_slice(),
            "{}",
            c.name
        );
        assert_eq!(
            server_sig.as_slice(),
            c.exp.server_sig.as_slice(),
            "{}",
            c.name
        );
        if c.exp.con_mode == CON_MODE_CRC {
            let on_wire_c = AuthSignature::decode(&c.c2s(Tag::AuthSignature).seg).unwrap();
            let on_wire_s = AuthSignature::decode(&c.s2c(Tag::AuthSignature).seg).unwrap();
            assert_eq!(on_wire_c.sha256, client_sig, "{}", c.name);
            assert_eq!(on_wire_s.sha256, server_sig, "{}", c.name);
        } else {
            // Encrypted from the AUTH_SIGNATURE on: the plain frames stop right there.
            assert_eq!(c.s2c_frames.last().unwrap().tag, Tag::AuthDone);
            assert_eq!(c.c2s_frames.last().unwrap().tag, Tag::AuthRequestMore);
        }
    }
}

#[test]
fn our_server_reply_has_the_real_layout() {
    for c in connections() {
        let key = c.keyring.get(&admin()).unwrap().clone();
        let ctx = Arc::new(MonServerContext::new(c.keyring.clone()).unwrap());
        let mut server = MonServerAuth::new(ctx);
        let req = AuthRequest::decode(&c.c2s(Tag::AuthRequest).seg).unwrap();
        let done = AuthDone::decode(&c.s2c(Tag::AuthDone).seg).unwrap();
        let ServerStep::More(ch) = server.request(done.con_mode, &req.auth_payload) else {
            panic!()
        };
        assert_eq!(ch.len(), 9);
        let sc = CephXServerChallenge::from_bytes(&ch)
            .unwrap()
            .server_challenge;
        let real = AuthRequestMore::decode(&c.c2s(Tag::AuthRequestMore).seg)
            .unwrap()
            .auth_payload;
        let auth = CephXAuthenticate::from_bytes(&real[2..]).unwrap();
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
        assert_eq!(
            payload.len(),
            done.auth_payload.len(),
            "{}: AUTH_DONE layout",
            c.name
        );
        assert_eq!(
            result.connection_secret.len(),
            c.exp.connection_secret.len()
        );
        assert_eq!(result.peer_name, Some(admin()));
        let reply = parse_mon_auth_done(&key, None, &payload).unwrap();
        assert_eq!(
            reply.auth.session_key.secret(),
            result.session_key.as_slice()
        );
        assert_eq!(
            reply.connection_secret.unwrap_or_default(),
            result.connection_secret
        );
        assert_eq!(
            server.peer_caps().unwrap().caps_string().as_deref(),
            Some("allow *")
        );
    }
}
