//! Hostile peers against our server on a real socket: each misbehaviour gets the connection
//! closed promptly, memory stays bounded, and a well-behaved client is still served.
//!
//! Every scenario runs twice: against the protocol core on the blocking driver
//! (`msgr2_engine::blocking`), and on the io_uring engine (`Messenger`, as `msgr2 server`
//! runs). The engine has no write timeout, so there a peer that never reads is dropped by the
//! send queue bound (`MessengerBuilder::send_queue_limit`).

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Banner;
use msgr2_codec::crc::crc32c;
use msgr2_codec::frame::Tag;
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload as p;
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_engine::blocking::BlockingConnection;
use msgr2_proto::{Config, Event, Message};
use msgr2_testpeer::{Peer, PeerError};

const HANDSHAKE_TIMEOUT: u64 = 2;

struct Server {
    addr: SocketAddr,
    me: EntityAddr,
    served: Arc<AtomicU64>,
    _engine: Option<msgr2_engine::Messenger>,
}

/// The same server on the io_uring engine (as `msgr2 server` runs).
fn engine_server() -> Server {
    struct Reply(Arc<AtomicU64>);
    impl msgr2_engine::Dispatcher for Reply {
        fn on_accept(&mut self, _: &msgr2_engine::ConnHandle, _: &msgr2_engine::PeerInfo) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn on_message(&mut self, conn: &msgr2_engine::ConnHandle, m: Message) {
            let mut r = Message::new(m.header.msg_type, 1, 1, vec![0; 4096]);
            r.header.tid = m.header.tid;
            let _ = conn.send(r);
        }
    }
    let served = Arc::new(AtomicU64::new(0));
    let s2 = served.clone();
    let m = msgr2_engine::MessengerBuilder::new("mon.a".parse().unwrap())
        .bind("v2:127.0.0.1:0")
        .gid(0)
        .server_auth(Arc::new(NoneServerProvider::new(1)))
        .handshake_timeout(Duration::from_secs(HANDSHAKE_TIMEOUT))
        // the engine has no write timeout: a peer that never reads is dropped at this bound
        .send_queue_limit(1024, 16 << 20)
        .arena_size(2 << 20)
        .arena_fallback(true)
        .dispatcher(move |_| Box::new(Reply(s2.clone())))
        .start()
        .unwrap();
    let me = *m.addrs().msgr2().unwrap();
    Server {
        addr: me.sock.unwrap(),
        me,
        served,
        _engine: Some(m),
    }
}

/// Starts an accept loop answering every MESSAGE with a 4 KiB reply (so a peer that never
/// reads fills its socket).
fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let me = EntityAddr::new(msgr2_codec::addr::AddrType::Msgr2, addr, 0);
    let mut c = Config::new("mon.a".parse().unwrap());
    c.gid.set(0);
    c.my_addrs = EntityAddrVec(vec![me]);
    c.server_auth = Some(Arc::new(NoneServerProvider::new(1)));
    c.ready_timeout_secs = HANDSHAKE_TIMEOUT;
    let config = Arc::new(c);
    let served = Arc::new(AtomicU64::new(0));
    let s2 = served.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let (config, served) = (config.clone(), s2.clone());
            std::thread::spawn(move || {
                let peer = stream.peer_addr().unwrap();
                let _ = stream.set_write_timeout(Some(Duration::from_secs(HANDSHAKE_TIMEOUT)));
                let Ok((mut conn, _)) = BlockingConnection::accept(
                    config,
                    stream,
                    peer,
                    i as u64 + 1,
                    Duration::from_secs(30),
                ) else {
                    return;
                };
                served.fetch_add(1, Ordering::Relaxed);
                while let Ok(ev) = conn.next_event(Duration::from_secs(30)) {
                    if let Event::Message(m) = ev {
                        let mut r = Message::new(m.header.msg_type, 1, 1, vec![0; 4096]);
                        r.header.tid = m.header.tid;
                        if conn.send(r).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        me,
        served,
        _engine: None,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn closed_within(peer: &mut Peer, secs: u64) -> Duration {
    match peer.expect_closed(Duration::from_secs(secs)) {
        Ok(t) => t,
        Err(e) => panic!("not closed within {secs}s: {e:?}"),
    }
}

/// A good client still gets served: the handshake completes and a message is answered.
fn good_client_works(s: &Server) {
    let mut c = Config::new("client.admin".parse().unwrap());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    let (mut conn, _) = BlockingConnection::connect(
        Arc::new(c),
        s.me,
        msgr2_codec::entity::EntityType::Mon,
        1,
        Duration::from_secs(5),
    )
    .unwrap();
    conn.send(Message::new(5, 1, 1, vec![])).unwrap();
    assert!(matches!(
        conn.next_event(Duration::from_secs(5)).unwrap(),
        Event::Message(_)
    ));
}

fn garbage_and_msgr1_banners_are_closed_at_once(s: &Server) {
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"ceph v027\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        &[0xff; 64],
    ] {
        let mut p = Peer::connect(s.addr).unwrap();
        p.send_raw(bytes).unwrap();
        assert!(closed_within(&mut p, 2) < Duration::from_secs(1));
    }
    good_client_works(s);
}

fn slow_loris_is_closed_by_the_handshake_timeout(s: &Server) {
    let mut p = Peer::connect(s.addr).unwrap();
    p.send_raw(b"ceph v2").unwrap();
    let t = closed_within(&mut p, HANDSHAKE_TIMEOUT + 5);
    assert!(
        t >= Duration::from_millis(HANDSHAKE_TIMEOUT * 1000 - 300),
        "{t:?}"
    );
}

fn giant_segment_wrong_crc_and_wrong_state_are_closed(s: &Server) {
    let before = rss_kib();
    // a preamble (valid crc) claiming a 4 GiB segment
    let mut p = Peer::connect(s.addr).unwrap();
    p.send_banner(Banner::OURS).unwrap();
    p.expect_banner(Banner::OURS, Duration::from_secs(2))
        .unwrap();
    let mut pre = vec![Tag::Message as u8, 4];
    for l in [41u32, 0, 0, u32::MAX] {
        pre.extend_from_slice(&l.to_le_bytes());
        pre.extend_from_slice(&8u16.to_le_bytes());
    }
    pre.extend_from_slice(&[0, 0]);
    let crc = crc32c(0, &pre);
    pre.extend_from_slice(&crc.to_le_bytes());
    p.send_raw(&pre).unwrap();
    p.send_raw(&[0u8; 65536]).unwrap();
    closed_within(&mut p, 2);
    assert!(rss_kib() < before + 64 * 1024, "no 4 GiB allocation");

    // a HELLO with a flipped crc
    let mut p = Peer::connect(s.addr).unwrap();
    p.send_banner(Banner::OURS).unwrap();
    p.expect_banner(Banner::OURS, Duration::from_secs(2))
        .unwrap();
    let hello = p::Hello {
        entity_type: msgr2_codec::entity::EntityType::Client,
        peer_addr: s.me,
    };
    let mut f = p.frame_bytes(Tag::Hello, &[(&p::ControlPayload::to_bytes(&hello), 8)]);
    let n = f.len();
    f[n - 1] ^= 0x80;
    p.send_raw(&f).unwrap();
    closed_within(&mut p, 2);

    // a KEEPALIVE2 before HELLO, and a MESSAGE before READY
    for tag in [Tag::Keepalive2, Tag::Message] {
        let mut p = Peer::connect(s.addr).unwrap();
        p.send_banner(Banner::OURS).unwrap();
        p.expect_banner(Banner::OURS, Duration::from_secs(2))
            .unwrap();
        let body = if tag == Tag::Message {
            MsgHeader2::default().to_bytes().to_vec()
        } else {
            vec![0; 8]
        };
        let f = p.frame_bytes(tag, &[(&body, 8)]);
        p.send_raw(&f).unwrap();
        closed_within(&mut p, 2);
    }
    good_client_works(s);
}

fn scripted_client_reaches_ready_then_a_replayed_message_is_dropped(s: &Server) {
    let mut p = Peer::connect(s.addr).unwrap();
    let ident = p.handshake_none(s.me, Duration::from_secs(2)).unwrap();
    assert!(ident.addrs.contains(&s.me));
    let h = MsgHeader2 {
        seq: 1,
        msg_type: 5,
        priority: 127,
        version: 1,
        compat_version: 1,
        ..Default::default()
    }
    .to_bytes();
    let f = p.frame_bytes(Tag::Message, &[(&h, 8)]);
    p.send_raw(&f).unwrap();
    p.send_raw(&f).unwrap(); // same seq again: dropped, not answered twice
    let r = p.expect_frame(Duration::from_secs(2)).unwrap();
    assert_eq!(r.tag(), Tag::Message);
    assert!(matches!(
        p.expect_frame(Duration::from_millis(500)),
        Err(PeerError::Timeout)
    ));
}

fn half_open_flood_times_out_and_good_clients_are_still_served(s: &Server) {
    let flood: Vec<Peer> = (0..200).map(|_| Peer::connect(s.addr).unwrap()).collect();
    good_client_works(s);
    let start = Instant::now();
    for mut p in flood {
        let left = (HANDSHAKE_TIMEOUT + 10).saturating_sub(start.elapsed().as_secs());
        closed_within(&mut p, left.max(1));
    }
    assert!(start.elapsed() < Duration::from_secs(HANDSHAKE_TIMEOUT + 10));
    assert!(s.served.load(Ordering::Relaxed) >= 1);
}

fn a_peer_that_never_reads_is_dropped_with_memory_bounded(s: &Server) {
    let before = rss_kib();
    let mut p = Peer::connect(s.addr).unwrap();
    p.handshake_none(s.me, Duration::from_secs(2)).unwrap();
    // ask for 4 KiB replies forever without reading a byte of them
    let start = Instant::now();
    let mut seq = 1u64;
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(HANDSHAKE_TIMEOUT + 8) {
        let h = MsgHeader2 {
            seq,
            msg_type: 5,
            priority: 127,
            version: 1,
            compat_version: 1,
            ..Default::default()
        }
        .to_bytes();
        let f = p.frame_bytes(Tag::Message, &[(&h, 8)]);
        seq += 1;
        if p.send_raw(&f).is_err() {
            closed = true;
            break;
        }
        if seq % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(closed, "the server gave up on a peer that never reads");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "server memory grew by {grown} KiB");
}

/// Each scenario against the blocking driver and against the engine.
macro_rules! on_both {
    ($($t:ident),* $(,)?) => {
        mod blocking {
            $(#[test] fn $t() { super::$t(&super::server()) })*
        }
        mod engine {
            $(#[test] fn $t() { super::$t(&super::engine_server()) })*
        }
    };
}

on_both!(
    garbage_and_msgr1_banners_are_closed_at_once,
    slow_loris_is_closed_by_the_handshake_timeout,
    giant_segment_wrong_crc_and_wrong_state_are_closed,
    scripted_client_reaches_ready_then_a_replayed_message_is_dropped,
    half_open_flood_times_out_and_good_clients_are_still_served,
    a_peer_that_never_reads_is_dropped_with_memory_bounded,
);
