//! On-wire compression between two in-memory connections: the COMPRESSION_REQUEST/DONE
//! exchange by peer type and mode, compressed frames both ways with every method, the
//! min-size rule, Pacific peers (no exchange), and hostile compressed frames.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::compress::{CompressError, Method, FLAG_COMPRESSED};
use msgr2_codec::entity::EntityType;
use msgr2_codec::frame::{assemble, FrameParts, Tag, ALIGN_DEFAULT};
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{CompressMode, Config, Connection, Event, Message, ProtoError, SharedGid};

fn osd0() -> EntityAddr {
    "v2:127.0.0.1:6800/77".parse().unwrap()
}

/// osd.1 (client side) and osd.0 (server side), auth none, with the given compression
/// settings applied to both.
fn configs(mode: &str, methods: &str, min: u64, rev1: bool) -> (Arc<Config>, Arc<Config>) {
    let mut c = Config::new("osd.1".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    let mut s = Config::new("osd.0".parse().unwrap());
    s.my_addrs = EntityAddrVec(vec![osd0()]);
    s.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
    for cfg in [&mut c, &mut s] {
        cfg.compression.set("ms_osd_compress_mode", mode).unwrap();
        cfg.compression
            .set("ms_osd_compression_algorithm", methods)
            .unwrap();
        cfg.compression.osd_min_size = min;
        if !rev1 {
            cfg.banner.supported &= !msgr2_codec::banner::FEATURE_REVISION_1;
        }
    }
    (Arc::new(c), Arc::new(s))
}

fn pair(c: Arc<Config>, s: Arc<Config>, peer: EntityType) -> (Connection, Connection) {
    let now = Instant::now();
    (
        Connection::client(c, osd0(), peer, 1, now),
        Connection::server(s, "127.0.0.1:40000".parse().unwrap(), 2, now),
    )
}

/// Moves bytes both ways until quiet; returns the bytes each way.
fn pump(a: &mut Connection, b: &mut Connection) -> Result<(usize, usize), (char, ProtoError)> {
    let (mut ab_total, mut ba_total) = (0, 0);
    loop {
        let mut buf = Vec::new();
        a.poll_transmit(&mut buf);
        ab_total += buf.len();
        b.handle_input(&buf).map_err(|e| ('b', e))?;
        let mut buf2 = Vec::new();
        b.poll_transmit(&mut buf2);
        ba_total += buf2.len();
        a.handle_input(&buf2).map_err(|e| ('a', e))?;
        if buf.is_empty() && buf2.is_empty() {
            return Ok((ab_total, ba_total));
        }
    }
}

fn ready(c: &mut Connection) -> msgr2_proto::PeerInfo {
    loop {
        match c.poll_event() {
            Some(Event::Ready(i)) => return i,
            Some(_) => {}
            None => panic!("no ready event"),
        }
    }
}

fn messages(c: &mut Connection) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn big_message(n: usize) -> Message {
    let front: Vec<u8> = b"ping ".iter().copied().cycle().take(n).collect();
    let mut m = Message::new(70, 4, 4, front);
    m.data = msgr2_codec::Data::from(vec![7u8; n]);
    m
}

#[test]
fn every_method_compresses_both_ways_in_both_revisions() {
    for rev1 in [true, false] {
        for m in Method::ALL {
            let (cc, sc) = configs("force", m.name(), 1024, rev1);
            let (mut c, mut s) = pair(cc, sc, EntityType::Osd);
            pump(&mut c, &mut s).unwrap();
            let (ci, si) = (ready(&mut c), ready(&mut s));
            assert_eq!((ci.compression, si.compression), (Some(m), Some(m)));
            assert_eq!(
                ci.revision,
                if rev1 { Revision::Rev1 } else { Revision::Rev0 }
            );
            c.send_message(big_message(100_000)).unwrap();
            s.send_message(big_message(50_000)).unwrap();
            let (up, down) = pump(&mut c, &mut s).unwrap();
            assert!(up < 20_000 && down < 20_000, "{m}: {up} / {down} bytes");
            let got = messages(&mut s);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].front, big_message(100_000).front);
            assert_eq!(got[0].data.as_slice(), &vec![7u8; 100_000][..]);
            let got = messages(&mut c);
            assert_eq!(got[0].front, big_message(50_000).front);
        }
    }
}

#[test]
fn small_frames_stay_uncompressed_below_the_min_size() {
    let (cc, sc) = configs("force", "snappy", 1024, true);
    let (mut c, mut s) = pair(cc, sc, EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    ready(&mut c);
    ready(&mut s);
    // 41 + 900 + 0 + 0 = 941 < 1024: sent as is (header and front on the wire).
    let m = Message::new(70, 1, 1, vec![0xab; 900]);
    c.send_message(m).unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    assert_eq!(wire[26], 0, "flags byte of an uncompressed frame");
    assert!(wire.len() > 900);
    s.handle_input(&wire).unwrap();
    assert_eq!(messages(&mut s)[0].front, vec![0xab; 900]);
    // 41 + 1000 >= 1024: compressed.
    c.send_message(Message::new(70, 1, 1, vec![0xab; 1000]))
        .unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    assert_eq!(wire[26], FLAG_COMPRESSED);
    assert!(wire.len() < 200, "{}", wire.len());
    s.handle_input(&wire).unwrap();
    assert_eq!(messages(&mut s)[0].front, vec![0xab; 1000]);
}

#[test]
fn negotiation_outcomes_follow_ceph() {
    // Compression only towards OSD peers; a client identity never gets it.
    let (cc, sc) = configs("force", "snappy", 0, true);
    let mut cc2 = (*cc).clone();
    cc2.name = "client.admin".parse().unwrap();
    cc2.gid = SharedGid::new(-1);
    let (mut c, mut s) = pair(Arc::new(cc2), sc.clone(), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, None, "osd server: client peer");
    assert_eq!(ready(&mut s).compression, None);

    // The client does not want it: DONE(false).
    let (cn, _) = configs("none", "snappy", 0, true);
    let (mut c, mut s) = pair(cn, sc.clone(), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, None);
    assert_eq!(ready(&mut s).compression, None);

    // The server does not allow the client's methods.
    let (cz, _) = configs("force", "zstd", 0, true);
    let (mut c, mut s) = pair(cz, sc.clone(), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, None);

    // The server picks the first of the client's list that it allows.
    let (cl, _) = configs("force", "lz4,zstd,snappy", 0, true);
    let (_, sl) = configs("force", "snappy zstd", 0, true);
    let (mut c, mut s) = pair(cl, sl, EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, Some(Method::Zstd));

    // A Pacific peer (no banner bit): no exchange at all, and the handshake still works.
    let (cp, sp) = configs("force", "snappy", 0, true);
    let mut cp2 = (*cp).clone();
    cp2.banner = Banner::PACIFIC;
    let (mut c, mut s) = pair(Arc::new(cp2), sp.clone(), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, None);
    let mut sp2 = (*sp).clone();
    sp2.compression.advertise = false;
    let (mut c, mut s) = pair(cp, Arc::new(sp2), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut s).compression, None);
    assert_eq!(CompressMode::default(), CompressMode::None);
}

/// A peer that sends a compressed frame without negotiating, or a decompression bomb.
#[test]
fn hostile_compressed_frames_are_typed_errors() {
    let (cc, sc) = configs("none", "snappy", 0, true);
    let (mut c, mut s) = pair(cc, sc, EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    ready(&mut s);
    let parts = FrameParts::new(
        Revision::Rev1,
        Tag::Keepalive2,
        &[(&[1u8; 8], ALIGN_DEFAULT)],
    )
    .with_flags(FLAG_COMPRESSED);
    let mut wire = Vec::new();
    for p in parts.pieces(&[&[1u8; 8]]) {
        wire.extend_from_slice(p);
    }
    let e = s.handle_input(&wire).unwrap_err();
    assert_eq!(e, ProtoError::Compression(CompressError::NotNegotiated));

    // A 200 KiB zstd bomb in a KEEPALIVE2 with a 64 KiB control limit.
    let (cc, sc) = configs("force", "zstd", 0, true);
    let mut sc2 = (*sc).clone();
    sc2.limits.max_control_segment = 64 << 10;
    let (mut c, mut s) = pair(cc, Arc::new(sc2), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut s).compression, Some(Method::Zstd));
    let mut bomb = Vec::new();
    msgr2_codec::compress::compress(Method::Zstd, &vec![0u8; 200 << 10], &mut bomb).unwrap();
    let parts = FrameParts::new(Revision::Rev1, Tag::Keepalive2, &[(&bomb, ALIGN_DEFAULT)])
        .with_flags(FLAG_COMPRESSED);
    let mut wire = Vec::new();
    for p in parts.pieces(&[&bomb]) {
        wire.extend_from_slice(p);
    }
    let e = s.handle_input(&wire).unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::Compression(CompressError::TooLarge { limit: 65536, .. })
        ),
        "{e}"
    );
    // Garbage claiming to be snappy.
    let (cc, sc) = configs("force", "snappy", 0, true);
    let (mut c, mut s) = pair(cc, sc, EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    ready(&mut s);
    let junk = [0x05u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let mut wire = Vec::new();
    assemble(
        Revision::Rev1,
        Tag::Ack,
        &[(&junk, ALIGN_DEFAULT)],
        &mut wire,
    );
    wire = {
        let parts = FrameParts::new(Revision::Rev1, Tag::Ack, &[(&junk, ALIGN_DEFAULT)])
            .with_flags(FLAG_COMPRESSED);
        parts.pieces(&[&junk]).concat()
    };
    assert!(matches!(
        s.handle_input(&wire).unwrap_err(),
        ProtoError::Compression(_)
    ));
}

/// Compression is per connection: a lossless session that reconnects negotiates it again on
/// the new connection (before SESSION_RECONNECT).
#[test]
fn a_reconnect_negotiates_again() {
    let (cc, sc) = configs("force", "lz4", 0, true);
    let mut cc2 = (*cc).clone();
    cc2.policies = msgr2_proto::PolicySet::new(msgr2_proto::Policy::lossless_peer(0));
    let cc = Arc::new(cc2);
    let mut sc2 = (*sc).clone();
    sc2.policies = msgr2_proto::PolicySet::new(msgr2_proto::Policy::lossless_peer(0));
    let sc = Arc::new(sc2);
    let (mut c, mut s) = pair(cc, sc.clone(), EntityType::Osd);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(ready(&mut c).compression, Some(Method::Lz4));
    // The message is written but the connection dies before it is acknowledged.
    c.send_message(big_message(10_000)).unwrap();
    let mut lost = Vec::new();
    c.poll_transmit(&mut lost);
    c.handle_eof();
    assert!(std::iter::from_fn(|| c.poll_event()).any(|e| matches!(e, Event::Reconnect { .. })));
    let now = Instant::now();
    let mut c2 = c.reconnect(10, now).unwrap();
    let mut s2 = Connection::server(sc, "127.0.0.1:40001".parse().unwrap(), 3, now);
    pump(&mut c2, &mut s2).unwrap();
    assert_eq!(ready(&mut c2).compression, Some(Method::Lz4));
    assert_eq!(ready(&mut s2).compression, Some(Method::Lz4));
    // (Without a session lookup the server answered SESSION_RESET, so the session restarted.)
    c2.send_message(big_message(10_000)).unwrap();
    let (up, _) = pump(&mut c2, &mut s2).unwrap();
    assert!(up < 2_000, "{up} bytes");
    let got = messages(&mut s2);
    assert_eq!(got.last().unwrap().front, big_message(10_000).front);
}

mod secure {
    use super::*;
    use msgr2_codec::payload::CON_MODE_SECURE;
    use msgr2_crypto::auth::*;
    use msgr2_proto::ModeConfig;

    fn result(con_mode: u32) -> AuthResult {
        AuthResult {
            global_id: 9,
            con_mode,
            session_key: vec![3; 16],
            connection_secret: (0..64).collect(),
            peer_name: Some("osd.1".parse().unwrap()),
        }
    }
    struct K;
    impl ClientAuth for K {
        fn method(&self) -> u32 {
            2
        }
        fn request(&mut self) -> Result<Vec<u8>, AuthError> {
            Ok(vec![1])
        }
        fn reply_more(&mut self, _: &[u8]) -> Result<Vec<u8>, AuthError> {
            Ok(vec![2])
        }
        fn done(&mut self, _: u64, con_mode: u32, _: &[u8]) -> Result<AuthResult, AuthError> {
            Ok(result(con_mode))
        }
    }
    impl ServerAuth for K {
        fn method(&self) -> u32 {
            2
        }
        fn request(&mut self, con_mode: u32, _: &[u8]) -> ServerStep {
            ServerStep::Done {
                payload: vec![],
                result: result(con_mode),
            }
        }
        fn request_more(&mut self, _: &[u8]) -> ServerStep {
            ServerStep::Reject(22)
        }
    }
    impl ClientAuthProvider for K {
        fn methods(&self) -> Vec<u32> {
            vec![2]
        }
        fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn ClientAuth>> {
            Some(Box::new(K))
        }
    }
    impl ServerAuthProvider for K {
        fn methods(&self, _: EntityType) -> Vec<u32> {
            vec![2]
        }
        fn start(&self, _: u32, _: EntityType) -> Option<Box<dyn ServerAuth>> {
            Some(Box::new(K))
        }
    }

    /// Secure connections compress only with `ms_compress_secure` on both sides; then the
    /// segments are compressed before they are sealed.
    #[test]
    fn secure_mode_needs_ms_compress_secure() {
        for (client_secure, server_secure, want) in [
            (false, true, None),
            (true, false, None),
            (true, true, Some(Method::Zstd)),
        ] {
            let (cc, sc) = configs("force", "zstd", 1024, true);
            let (mut cc, mut sc) = ((*cc).clone(), (*sc).clone());
            cc.client_auth = Some(Arc::new(K));
            sc.server_auth = Some(Arc::new(K));
            cc.modes = ModeConfig::all(vec![CON_MODE_SECURE]);
            sc.modes = ModeConfig::all(vec![CON_MODE_SECURE]);
            cc.compression.compress_secure = client_secure;
            sc.compression.compress_secure = server_secure;
            let (mut c, mut s) = pair(Arc::new(cc), Arc::new(sc), EntityType::Osd);
            pump(&mut c, &mut s).unwrap();
            let info = ready(&mut c);
            assert_eq!(info.con_mode, CON_MODE_SECURE);
            assert_eq!(info.compression, want);
            c.send_message(big_message(40_000)).unwrap();
            let (up, _) = pump(&mut c, &mut s).unwrap();
            assert_eq!(up < 10_000, want.is_some(), "{up} bytes");
            assert_eq!(messages(&mut s)[0].data.as_slice(), &vec![7u8; 40_000][..]);
        }
    }
}
