//! Secure mode and AUTH_SIGNATURE between two in-memory connections, with a stand-in auth
//! method that yields a fixed session key and connection secret (cephx itself is tested in
//! the crypto crate and against real Ceph).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::*;
use msgr2_proto::{Config, Connection, Event, Message, ModeConfig, ProtoError};

const METHOD: u32 = 2;

fn result(con_mode: u32, key: u8) -> AuthResult {
    AuthResult {
        global_id: 4242,
        con_mode,
        session_key: vec![key; 16],
        connection_secret: if con_mode == CON_MODE_SECURE {
            (0..64).collect()
        } else {
            vec![]
        },
        peer_name: Some("client.admin".parse().unwrap()),
    }
}

struct KeyClient(u8);
impl ClientAuth for KeyClient {
    fn method(&self) -> u32 {
        METHOD
    }
    fn request(&mut self) -> Result<Vec<u8>, AuthError> {
        Ok(b"hello".to_vec())
    }
    fn reply_more(&mut self, _: &[u8]) -> Result<Vec<u8>, AuthError> {
        Ok(b"more".to_vec())
    }
    fn done(&mut self, _: u64, con_mode: u32, _: &[u8]) -> Result<AuthResult, AuthError> {
        Ok(result(con_mode, self.0))
    }
}
struct KeyServer(u8, bool);
impl ServerAuth for KeyServer {
    fn method(&self) -> u32 {
        METHOD
    }
    fn request(&mut self, con_mode: u32, _: &[u8]) -> ServerStep {
        self.1 = con_mode == CON_MODE_SECURE;
        ServerStep::More(b"challenge".to_vec())
    }
    fn request_more(&mut self, _: &[u8]) -> ServerStep {
        let mode = if self.1 {
            CON_MODE_SECURE
        } else {
            CON_MODE_CRC
        };
        ServerStep::Done {
            payload: b"done".to_vec(),
            result: result(mode, self.0),
        }
    }
}
struct Provider(u8);
impl ClientAuthProvider for Provider {
    fn methods(&self) -> Vec<u32> {
        vec![METHOD]
    }
    fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn ClientAuth>> {
        Some(Box::new(KeyClient(self.0)))
    }
}
impl ServerAuthProvider for Provider {
    fn methods(&self, _: EntityType) -> Vec<u32> {
        vec![METHOD]
    }
    fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn ServerAuth>> {
        Some(Box::new(KeyServer(self.0, false)))
    }
}

fn mon() -> EntityAddr {
    "v2:127.0.0.1:3300/0".parse().unwrap()
}

fn configs(mode: u32, rev1: bool, client_key: u8) -> (Arc<Config>, Arc<Config>) {
    let mut c = Config::new("client.admin".parse().unwrap());
    c.client_auth = Some(Arc::new(Provider(client_key)));
    c.modes = ModeConfig::all(vec![mode]);
    if !rev1 {
        c.banner = Banner {
            supported: 0,
            required: 0,
        };
    }
    let mut s = Config::new("mon.a".parse().unwrap());
    s.my_addrs = EntityAddrVec(vec![mon()]);
    s.server_auth = Some(Arc::new(Provider(7)));
    (Arc::new(c), Arc::new(s))
}

fn pair(mode: u32, rev1: bool, client_key: u8) -> (Connection, Connection) {
    let (c, s) = configs(mode, rev1, client_key);
    let now = Instant::now();
    (
        Connection::client(c, mon(), EntityType::Mon, 1, now),
        Connection::server(s, "127.0.0.1:40000".parse().unwrap(), 2, now),
    )
}

fn pump(a: &mut Connection, b: &mut Connection, chunk: usize) -> Result<(), (char, ProtoError)> {
    fn one_way(
        from: &mut Connection,
        to: &mut Connection,
        chunk: usize,
    ) -> Result<bool, ProtoError> {
        let mut buf = Vec::new();
        from.poll_transmit(&mut buf);
        for piece in buf.chunks(chunk.max(1)) {
            to.handle_input(piece)?;
        }
        Ok(!buf.is_empty())
    }
    loop {
        let ab = one_way(a, b, chunk).map_err(|e| ('b', e))?;
        let ba = one_way(b, a, chunk).map_err(|e| ('a', e))?;
        if !ab && !ba {
            return Ok(());
        }
    }
}

#[test]
fn secure_and_crc_with_a_session_key_both_revisions() {
    for (mode, rev1, chunk) in [
        (CON_MODE_SECURE, true, usize::MAX),
        (CON_MODE_SECURE, true, 1),
        (CON_MODE_SECURE, false, usize::MAX),
        (CON_MODE_SECURE, false, 5),
        (CON_MODE_CRC, true, 3),
        (CON_MODE_CRC, false, usize::MAX),
    ] {
        let (mut c, mut s) = pair(mode, rev1, 7);
        pump(&mut c, &mut s, chunk).unwrap();
        let Some(Event::Ready(info)) = c.poll_event() else {
            panic!("not ready: {mode} {rev1}")
        };
        assert_eq!(info.con_mode, mode);
        assert_eq!(
            info.revision,
            if rev1 { Revision::Rev1 } else { Revision::Rev0 }
        );
        assert!(matches!(s.poll_event(), Some(Event::Ready(_))));
        let mut m = Message::new(42, 1, 1, vec![1; 300]);
        m.data = (0..70_000u32).map(|i| i as u8).collect::<Vec<u8>>().into();
        c.send_message(m.clone()).unwrap();
        pump(&mut c, &mut s, 8192).unwrap();
        match s.poll_event() {
            Some(Event::Message(got)) => {
                assert_eq!((got.front, got.data), (m.front, m.data));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn wrong_session_key_fails_the_signature() {
    let (mut c, mut s) = pair(CON_MODE_CRC, true, 9); // client derives a different key
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert_eq!(err.1, ProtoError::BadSignature);
}

#[test]
fn tampered_pre_auth_bytes_fail_the_signature() {
    // The receiver ignores banner payload bytes beyond 16, but the transcript covers them:
    // a middlebox that adds one must be caught by AUTH_SIGNATURE.
    let (mut c, mut s) = pair(CON_MODE_CRC, true, 7);
    let mut buf = Vec::new();
    c.poll_transmit(&mut buf);
    buf[8] = 17;
    buf.insert(26, 0xAA);
    s.handle_input(&buf).unwrap();
    let err = pump(&mut c, &mut s, usize::MAX).unwrap_err();
    assert_eq!(err.1, ProtoError::BadSignature);
}

#[test]
fn flipped_bit_and_replay_in_secure_mode_are_fatal() {
    for rev1 in [true, false] {
        let (mut c, mut s) = pair(CON_MODE_SECURE, rev1, 7);
        pump(&mut c, &mut s, usize::MAX).unwrap();
        c.send_message(Message::new(42, 1, 1, vec![5; 100]))
            .unwrap();
        let mut frame = Vec::new();
        c.poll_transmit(&mut frame);
        let mut bad = frame.clone();
        bad[40] ^= 1;
        assert!(
            matches!(s.handle_input(&bad), Err(ProtoError::Secure(_))),
            "rev1={rev1}"
        );

        let (mut c, mut s) = pair(CON_MODE_SECURE, rev1, 7);
        pump(&mut c, &mut s, usize::MAX).unwrap();
        c.send_message(Message::new(42, 1, 1, vec![5; 100]))
            .unwrap();
        let mut frame = Vec::new();
        c.poll_transmit(&mut frame);
        s.handle_input(&frame).unwrap();
        // the same ciphertext again: the receiver's nonce moved on, so it cannot verify
        assert!(
            matches!(s.handle_input(&frame), Err(ProtoError::Secure(_))),
            "rev1={rev1}"
        );
    }
}

/// The negotiated mode decides the framing on the wire: a crc-mode frame carries the
/// message in clear, a secure-mode frame never does (both sides agreeing on the wrong
/// framing would pass every round-trip test).
#[test]
fn crc_frames_carry_the_payload_in_clear_and_secure_frames_do_not() {
    let marker = b"msgr2-rs plaintext marker, 0123456789".repeat(4);
    for (mode, rev1) in [
        (CON_MODE_CRC, true),
        (CON_MODE_CRC, false),
        (CON_MODE_SECURE, true),
        (CON_MODE_SECURE, false),
    ] {
        let (mut c, mut s) = pair(mode, rev1, 7);
        pump(&mut c, &mut s, usize::MAX).unwrap();
        c.send_message(Message::new(42, 1, 1, marker.clone()))
            .unwrap();
        let mut wire = Vec::new();
        c.poll_transmit(&mut wire);
        let in_clear = wire.windows(marker.len()).any(|w| w == marker.as_slice());
        assert_eq!(in_clear, mode == CON_MODE_CRC, "mode {mode} rev1 {rev1}");
        s.handle_input(&wire).unwrap();
        while let Some(ev) = s.poll_event() {
            if let Event::Message(m) = ev {
                assert_eq!(m.front, marker);
            }
        }
    }
}

/// Each side seals with the nonce Ceph assigns its role (the connecting side nonce B, the
/// accepting side nonce A): the client's frames open with the secret's server-side receiver
/// and not with a client-side one. (Two of our connections agreeing on swapped roles would
/// pass every round-trip test and fail against Ceph.)
#[test]
fn secure_frames_are_sealed_for_the_role_ceph_assigns() {
    use msgr2_codec::frame::{Limits, Tag};
    use msgr2_crypto::secure::{ConnectionSecret, Role};
    let marker = b"sealed for the server".to_vec();
    for rev1 in [true, false] {
        let (mut c, mut s) = pair(CON_MODE_SECURE, rev1, 7);
        let mut sent = Vec::new();
        loop {
            let mut b = Vec::new();
            c.poll_transmit(&mut b);
            s.handle_input(&b).unwrap();
            let mut b2 = Vec::new();
            s.poll_transmit(&mut b2);
            c.handle_input(&b2).unwrap();
            if b.is_empty() && b2.is_empty() {
                break;
            }
            sent.push(b);
        }
        c.send_message(Message::new(42, 1, 1, marker.clone()))
            .unwrap();
        let mut b = Vec::new();
        c.poll_transmit(&mut b);
        sent.push(b);
        let rev = if rev1 { Revision::Rev1 } else { Revision::Rev0 };
        let secret = ConnectionSecret::new(&result(CON_MODE_SECURE, 7).connection_secret).unwrap();
        // Decrypt from each point the client's secure bytes could start at.
        let opens = |role: Role| {
            (0..sent.len()).any(|k| {
                let bytes = sent[k..].concat();
                let mut rx = secret.rx(role, rev, Limits::default()).unwrap();
                let mut at = 0;
                while let Ok((used, frame)) = rx.feed(&bytes[at..]) {
                    at += used;
                    match frame {
                        Some(f) if f.tag() == Tag::Message => return f.segment(1) == &marker[..],
                        Some(_) => {}
                        None if used == 0 || at == bytes.len() => return false,
                        None => {}
                    }
                }
                false
            })
        };
        assert!(opens(Role::Server), "rev1 {rev1}");
        assert!(!opens(Role::Client), "rev1 {rev1}");
    }
}
