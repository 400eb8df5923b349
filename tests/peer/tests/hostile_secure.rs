//! Hostile peers against the io_uring engine server, part two: tampering in secure mode,
//! a wrong key, and the peak memory of a server whose peer never reads.
//!
//! - **Flipped bits** and **replayed frames** in secure mode (cephx, AES-128-GCM, msgr2.1 and
//!   msgr2.0): a legitimate client ([`BlockingConnection`] with a cephx keyring) talks to an
//!   engine [`Messenger`] through a TCP relay thread that, once the handshake is done, flips
//!   one bit of the next client→server chunk, or sends a recorded encrypted frame a second
//!   time. The server must reset the connection with a secure-mode error, never deliver the
//!   tampered or replayed message, and keep serving good clients.
//! - **Wrong key**: a client with the right entity name and another key is refused (-13) on
//!   both sides, and no session is created.
//! - **A peer that never reads**, against the engine server in a child process
//!   (`hostile_server`), so the server's own peak RSS (`VmHWM`) can be read: it stays bounded
//!   by `MessengerBuilder::send_queue_limit`.
//!
//! Each scenario prints one row of the reliability table and stores it (see
//! [`msgr2_testpeer::report`]): `target/reliability/hostile.md`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use msgr2_codec::addr::EntityAddr;
use msgr2_codec::banner::{Banner, Revision};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Tag;
use msgr2_codec::msg::MsgHeader2;
use msgr2_codec::payload::CON_MODE_SECURE;
use msgr2_crypto::auth::NoneClientProvider;
use msgr2_crypto::cephx::{CephxClientProvider, TicketStore};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_engine::blocking::{BlockingConnection, DriverError};
use msgr2_engine::{ConnError, ConnHandle, Dispatcher, Messenger, MessengerBuilder, PeerInfo};
use msgr2_proto::{Config, Event, Message, ModeConfig, ProtoError};
use msgr2_testpeer::report::{self, Row};
use msgr2_testpeer::Peer;

const WAIT: Duration = Duration::from_secs(5);
/// Data bytes of every test message (so a secure frame has a payload section besides the
/// preamble's inline bytes).
const MSG_BYTES: usize = 4096;

fn reliability_dir() -> std::path::PathBuf {
    report::dir(env!("CARGO_TARGET_TMPDIR"))
}

fn client_name() -> EntityName {
    "client.admin".parse().unwrap()
}

/// A keyring with `client.admin` (mon caps) under a fresh key.
fn keyring() -> Keyring {
    let mut kr = Keyring::new();
    kr.insert(client_name(), CryptoKey::generate().unwrap());
    assert!(kr.set_caps(&client_name(), "mon", "allow *"));
    kr
}

fn msg(tid: u64) -> Message {
    let mut m = Message::new(5, 1, 1, Vec::new());
    m.header.tid = tid;
    m.data = vec![tid as u8; MSG_BYTES].into();
    m
}

// ---------------------------------------------------------------------------------------
// The engine server, in this process (secure scenarios and the wrong key).

/// What the server's dispatcher saw, with the connection id.
#[derive(Debug, Clone)]
enum Ev {
    Accept(u64),
    Msg(u64, u64),
    Reset(u64, ConnError),
    Fault(u64, ConnError),
    AcceptFailed(Option<SocketAddr>, ConnError),
}

/// Reports every callback and echoes each message (same tid, `MSG_BYTES` of data).
struct Recorder(Sender<Ev>);

impl Dispatcher for Recorder {
    fn on_message(&mut self, conn: &ConnHandle, m: Message) {
        let _ = self.0.send(Ev::Msg(conn.id(), m.header.tid));
        let _ = conn.send(msg(m.header.tid));
    }
    fn on_accept(&mut self, conn: &ConnHandle, _: &PeerInfo) {
        let _ = self.0.send(Ev::Accept(conn.id()));
    }
    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Reset(conn.id(), error.clone()));
    }
    fn on_fault(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::Fault(conn.id(), error.clone()));
    }
    fn on_accept_failed(&mut self, peer: Option<SocketAddr>, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(Ev::AcceptFailed(peer, error.clone()));
    }
}

struct SecureServer {
    m: Messenger,
    addr: EntityAddr,
    events: Receiver<Ev>,
}

/// An engine server (`mon.a`) accepting the entities of `kr` with cephx, secure mode only.
fn secure_server(kr: &Keyring) -> SecureServer {
    let (tx, events) = channel();
    let tx = Mutex::new(tx);
    let m = MessengerBuilder::new("mon.a".parse().unwrap())
        .bind("v2:127.0.0.1:0")
        .gid(0)
        .keyring(kr.clone())
        .modes(ModeConfig::all(vec![CON_MODE_SECURE]))
        .handshake_timeout(Duration::from_secs(3))
        .arena_size(2 << 20)
        .arena_fallback(true)
        .spin_before_park(None)
        .dispatcher(move |_| Box::new(Recorder(tx.lock().unwrap().clone())))
        .start()
        .unwrap();
    let addr = *m.addrs().msgr2().unwrap();
    SecureServer { m, addr, events }
}

impl SecureServer {
    /// Waits for the first event `f` accepts; everything seen meanwhile (that one included)
    /// goes to `seen`.
    fn wait_for(&self, seen: &mut Vec<Ev>, f: impl Fn(&Ev) -> bool) -> Ev {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) => {
                    seen.push(ev.clone());
                    if f(&ev) {
                        return ev;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no such server event; saw {seen:?}"),
                Err(e) => panic!("{e}: saw {seen:?}"),
            }
        }
    }

    /// Events that arrive within `d` (to prove something did *not* happen).
    fn drain_for(&self, seen: &mut Vec<Ev>, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(ev) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            seen.push(ev);
        }
    }
}

/// The Config of a cephx client (`client.admin` from `kr`) in secure mode, offering `banner`.
fn secure_client_config(kr: &Keyring, banner: Banner) -> Arc<Config> {
    let mut c = Config::new(client_name());
    c.client_auth = Some(Arc::new(
        CephxClientProvider::from_keyring(kr, client_name(), TicketStore::new()).unwrap(),
    ));
    c.modes = ModeConfig::all(vec![CON_MODE_SECURE]);
    c.banner = banner;
    Arc::new(c)
}

/// Sends `tid` and waits for its echo.
fn round_trip(c: &mut BlockingConnection, tid: u64) {
    c.send(msg(tid)).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match c.next_event(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Message(m)) => {
                assert_eq!(m.header.tid, tid);
                assert_eq!(m.data.len(), MSG_BYTES);
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("round trip {tid}: {e}"),
        }
    }
}

/// Reads until the connection fails; the error (the server closed it).
fn client_sees_close(c: &mut BlockingConnection) -> DriverError {
    let deadline = Instant::now() + WAIT;
    loop {
        match c.next_event(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Message(m)) => panic!("unexpected reply {}", m.header.tid),
            Ok(_) => {}
            Err(DriverError::Timeout(_)) => panic!("the server did not close the connection"),
            Err(e) => return e,
        }
    }
}

/// A good secure client (direct, no relay) still completes the handshake and is answered;
/// its events are consumed (up to the reset its close causes), so the next scenario starts
/// from a quiet server.
fn good_secure_client_works(s: &SecureServer, kr: &Keyring, banner: Banner) {
    let (mut c, info) = BlockingConnection::connect(
        secure_client_config(kr, banner),
        s.addr,
        EntityType::Mon,
        1,
        WAIT,
    )
    .unwrap();
    assert_eq!(info.con_mode, CON_MODE_SECURE);
    let mut seen = Vec::new();
    let id = accepted(s, &mut seen);
    round_trip(&mut c, 777);
    drop(c);
    s.wait_for(&mut seen, |e| matches!(e, Ev::Reset(i, _) if *i == id));
    assert_eq!(deliveries(&seen, id, 777), 1, "{seen:?}");
}

// ---------------------------------------------------------------------------------------
// The relay: a man in the middle on loopback.

/// Controls of one relay, shared with its forwarding threads.
#[derive(Default)]
struct RelayCtl {
    /// Flip bit 4 of the byte at this offset (clamped to the chunk) in the next client→server
    /// chunk.
    flip_at: Mutex<Option<usize>>,
    /// Client→server bytes forwarded while recording.
    recording: Mutex<Option<Vec<u8>>>,
    /// The server-side socket, written under this lock (forwarded chunks and injections).
    upstream: Mutex<Option<TcpStream>>,
    /// Client→server bytes forwarded.
    forwarded: AtomicU64,
}

/// Forwards one connection between a client and `server`, with faults on demand.
struct Relay {
    addr: SocketAddr,
    ctl: Arc<RelayCtl>,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let ctl = Arc::new(RelayCtl::default());
        let c2 = ctl.clone();
        std::thread::spawn(move || {
            let Ok((mut client, _)) = l.accept() else {
                return;
            };
            let up = TcpStream::connect(server).unwrap();
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            *c2.upstream.lock().unwrap() = Some(up.try_clone().unwrap());
            // server → client, untouched
            let (mut up_r, mut cl_w) = (up.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_r, &mut cl_w);
                let _ = cl_w.shutdown(Shutdown::Both);
                let _ = up_r.shutdown(Shutdown::Both);
            });
            // client → server, with the faults
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &mut buf[..n];
                if let Some(at) = c2.flip_at.lock().unwrap().take() {
                    chunk[at.min(n - 1)] ^= 0x10;
                }
                if let Some(r) = c2.recording.lock().unwrap().as_mut() {
                    r.extend_from_slice(chunk);
                }
                c2.forwarded.fetch_add(n as u64, Ordering::Relaxed);
                let mut g = c2.upstream.lock().unwrap();
                if g.as_mut().unwrap().write_all(chunk).is_err() {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
        });
        Relay { addr, ctl }
    }

    /// A cephx secure client through this relay, handshake done (no fault yet).
    fn client(&self, kr: &Keyring, banner: Banner, target: EntityAddr) -> BlockingConnection {
        let stream = TcpStream::connect(self.addr).unwrap();
        let (c, info) = BlockingConnection::connect_over(
            secure_client_config(kr, banner),
            stream,
            target,
            EntityType::Mon,
            1,
            WAIT,
        )
        .unwrap();
        assert_eq!(info.con_mode, CON_MODE_SECURE);
        let want = if banner == Banner::OURS {
            Revision::Rev1
        } else {
            Revision::Rev0
        };
        assert_eq!(info.revision, want);
        c
    }

    fn flip_next(&self, at: usize) {
        *self.ctl.flip_at.lock().unwrap() = Some(at);
    }

    fn record(&self) {
        *self.ctl.recording.lock().unwrap() = Some(Vec::new());
    }

    fn take_recording(&self) -> Vec<u8> {
        self.ctl.recording.lock().unwrap().take().unwrap()
    }

    /// Sends `bytes` to the server as if the client had sent them.
    fn inject(&self, bytes: &[u8]) {
        let mut g = self.ctl.upstream.lock().unwrap();
        g.as_mut().unwrap().write_all(bytes).unwrap();
    }
}

fn revisions() -> [(Banner, &'static str); 2] {
    [
        (Banner::OURS, "msgr2.1"),
        (
            Banner {
                supported: 0,
                required: 0,
            },
            "msgr2.0",
        ),
    ]
}

/// The id of the connection the server accepted next.
fn accepted(s: &SecureServer, seen: &mut Vec<Ev>) -> u64 {
    match s.wait_for(seen, |e| matches!(e, Ev::Accept(_))) {
        Ev::Accept(id) => id,
        _ => unreachable!(),
    }
}

/// The error the server reset connection `id` with.
fn reset_of(s: &SecureServer, seen: &mut Vec<Ev>, id: u64) -> ConnError {
    match s.wait_for(
        seen,
        |e| matches!(e, Ev::Reset(i, _) | Ev::Fault(i, _) if *i == id),
    ) {
        Ev::Reset(_, e) => e,
        Ev::Fault(_, e) => panic!("the server kept the session after a tampered frame: {e}"),
        _ => unreachable!(),
    }
}

fn deliveries(seen: &[Ev], id: u64, tid: u64) -> usize {
    seen.iter()
        .filter(|e| matches!(e, Ev::Msg(i, t) if *i == id && *t == tid))
        .count()
}

#[test]
fn secure_mode_flipped_bit_resets_the_connection() {
    let kr = keyring();
    let s = secure_server(&kr);
    let start = Instant::now();
    let (mut conns, mut sent, mut delivered_bad) = (0, 0, 0);
    let mut errors = Vec::new();
    for (banner, rev) in revisions() {
        // where the bit goes in the tampered chunk (one message frame): the preamble block,
        // the middle of the payload, the last byte (the payload's GCM tag)
        for (at, what) in [(0, "preamble"), (2000, "payload"), (usize::MAX, "tag")] {
            let relay = Relay::start(s.addr.sock.unwrap());
            let mut c = relay.client(&kr, banner, s.addr);
            let mut seen = Vec::new();
            let id = accepted(&s, &mut seen);
            round_trip(&mut c, 1);
            relay.flip_next(at);
            c.send(msg(2)).unwrap();
            sent += 2;
            conns += 1;
            let err = reset_of(&s, &mut seen, id);
            assert!(
                matches!(err.protocol_error(), Some(ProtoError::Secure(_))),
                "{rev} {what}: {err:?}"
            );
            let client_err = client_sees_close(&mut c);
            s.drain_for(&mut seen, Duration::from_millis(100));
            assert_eq!(deliveries(&seen, id, 1), 1, "{seen:?}");
            assert_eq!(
                deliveries(&seen, id, 2),
                0,
                "tampered message delivered: {seen:?}"
            );
            delivered_bad += deliveries(&seen, id, 2);
            println!("{rev} bit flip in the {what}: server reset: {err}; client: {client_err}");
            errors.push(err.to_string());
        }
        good_secure_client_works(&s, &kr, banner);
    }
    let counters = s.m.shutdown();
    assert_eq!(counters.conns_rev0, 4);
    assert_eq!(counters.conns_rev1, 4);
    // the crc figures differ per run: keep the kinds of error
    let mut errors: Vec<String> = errors
        .iter()
        .map(|e| e.split(": wire").next().unwrap().to_owned())
        .collect();
    errors.sort();
    errors.dedup();
    report::write(
        &reliability_dir(),
        "secure-flipped-bit",
        &Row {
            scenario: "secure mode (cephx, AES-GCM), one bit flipped in a client→server frame after the handshake, through a relay".into(),
            load: format!("{conns} connections (msgr2.1 and msgr2.0), {MSG_BYTES} B messages"),
            faults: "6 bit flips: preamble, payload, GCM tag × 2 revisions".into(),
            messages: format!("{sent} sent, {} delivered", sent - conns),
            lost_dup: format!("0 / 0 ({delivered_bad} tampered delivered)"),
            result: format!(
                "pass: every connection reset by the server ({}), good client served after, {:.1} s",
                errors.join("; "),
                start.elapsed().as_secs_f64()
            ),
        },
    )
    .unwrap();
}

#[test]
fn secure_mode_replayed_frame_resets_without_double_delivery() {
    let kr = keyring();
    let s = secure_server(&kr);
    let start = Instant::now();
    let (mut conns, mut replayed_bytes) = (0, 0);
    let mut errors = Vec::new();
    for (banner, rev) in revisions() {
        let relay = Relay::start(s.addr.sock.unwrap());
        let mut c = relay.client(&kr, banner, s.addr);
        let mut seen = Vec::new();
        let id = accepted(&s, &mut seen);
        round_trip(&mut c, 1);
        // record the encrypted frame(s) of message 2, then send them again
        relay.record();
        round_trip(&mut c, 2);
        let frame = relay.take_recording();
        assert!(frame.len() > MSG_BYTES, "{}", frame.len());
        replayed_bytes += frame.len();
        relay.inject(&frame);
        conns += 1;
        let err = reset_of(&s, &mut seen, id);
        assert!(
            matches!(err.protocol_error(), Some(ProtoError::Secure(_))),
            "{rev}: {err:?}"
        );
        let client_err = client_sees_close(&mut c);
        s.drain_for(&mut seen, Duration::from_millis(100));
        assert_eq!(deliveries(&seen, id, 1), 1, "{seen:?}");
        assert_eq!(
            deliveries(&seen, id, 2),
            1,
            "replayed message delivered twice: {seen:?}"
        );
        println!(
            "{rev} replay of {} bytes: server reset: {err}; client: {client_err}; forwarded {}",
            frame.len(),
            relay.ctl.forwarded.load(Ordering::Relaxed)
        );
        errors.push(err.to_string());
        good_secure_client_works(&s, &kr, banner);
    }
    s.m.shutdown();
    let mut errors: Vec<String> = errors
        .iter()
        .map(|e| e.split(": wire").next().unwrap().to_owned())
        .collect();
    errors.sort();
    errors.dedup();
    report::write(
        &reliability_dir(),
        "secure-replayed-frame",
        &Row {
            scenario: "secure mode (cephx, AES-GCM), a recorded encrypted MESSAGE frame sent again after its echo, through a relay".into(),
            load: format!("{conns} connections (msgr2.1 and msgr2.0), {MSG_BYTES} B messages"),
            faults: format!("{conns} replays ({replayed_bytes} bytes)"),
            messages: format!("{} sent, {} delivered", 2 * conns, 2 * conns),
            lost_dup: "0 / 0 (replayed message not delivered again)".into(),
            result: format!(
                "pass: reset by the server ({}), good client served after, {:.1} s",
                errors.join("; "),
                start.elapsed().as_secs_f64()
            ),
        },
    )
    .unwrap();
}

/// A client messenger's view of its connection.
#[derive(Debug)]
enum ClientEv {
    Connect,
    Reset(ConnError),
    Fault(ConnError),
}

struct ClientRecorder(Sender<ClientEv>);

impl Dispatcher for ClientRecorder {
    fn on_message(&mut self, _: &ConnHandle, _: Message) {}
    fn on_connect(&mut self, _: &ConnHandle, _: &PeerInfo) {
        let _ = self.0.send(ClientEv::Connect);
    }
    fn on_reset(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(ClientEv::Reset(error.clone()));
    }
    fn on_fault(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.0.send(ClientEv::Fault(error.clone()));
    }
}

#[test]
fn auth_with_a_wrong_key_is_refused_on_both_sides() {
    let kr = keyring();
    let s = secure_server(&kr);
    let start = Instant::now();
    // the right entity name, another key
    let mut bad = Keyring::new();
    bad.insert(client_name(), CryptoKey::generate().unwrap());
    let mut seen = Vec::new();
    let mut server_errors = Vec::new();

    // 1. the blocking driver: a typed AuthRejected with -EACCES
    for (banner, _) in revisions() {
        let r = BlockingConnection::connect(
            secure_client_config(&bad, banner),
            s.addr,
            EntityType::Mon,
            1,
            WAIT,
        );
        match r {
            Err(DriverError::Proto(ProtoError::AuthRejected { result, .. })) => {
                assert_eq!(result, -13)
            }
            Err(e) => panic!("expected AuthRejected(-13), got {e}"),
            Ok(_) => panic!("a wrong key was accepted"),
        }
        match s.wait_for(&mut seen, |e| matches!(e, Ev::AcceptFailed(..))) {
            Ev::AcceptFailed(peer, e) => {
                assert!(peer.is_some(), "{e}");
                server_errors.push(e.to_string())
            }
            _ => unreachable!(),
        }
    }

    // 2. an engine client: its connection is closed (not redialled) with the cause
    let (tx, crx) = channel();
    let tx = Mutex::new(tx);
    let cm = MessengerBuilder::new(client_name())
        .keyring(bad)
        .modes(ModeConfig::all(vec![CON_MODE_SECURE]))
        .arena_size(2 << 20)
        .arena_fallback(true)
        .spin_before_park(None)
        .dispatcher(move |_| Box::new(ClientRecorder(tx.lock().unwrap().clone())))
        .start()
        .unwrap();
    let h = cm.connect(&s.m.addrs(), EntityType::Mon).unwrap();
    let client_err = match crx.recv_timeout(WAIT).unwrap() {
        ClientEv::Reset(e) => e,
        ClientEv::Fault(e) => panic!("kept for a redial after a permanent failure: {e}"),
        ClientEv::Connect => panic!("connected with a wrong key"),
    };
    assert!(
        matches!(
            client_err,
            ConnError::Protocol(ProtoError::AuthRejected { result: -13, .. })
        ),
        "{client_err:?}"
    );
    match s.wait_for(&mut seen, |e| matches!(e, Ev::AcceptFailed(..))) {
        Ev::AcceptFailed(_, e) => server_errors.push(e.to_string()),
        _ => unreachable!(),
    }
    // not redialled: nothing more on either side
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.is_closed());
    let more: Vec<ClientEv> = crx.try_iter().collect();
    assert!(more.is_empty(), "{more:?}");
    s.drain_for(&mut seen, Duration::from_millis(100));
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Ev::Accept(_) | Ev::Msg(..))),
        "a session was created: {seen:?}"
    );
    let cc = cm.shutdown();
    assert_eq!(cc.session_reconnects, 0);
    for e in &server_errors {
        println!("server: {e}");
    }
    println!("engine client: {client_err}");

    // a good client is still served, and only it became a session
    good_secure_client_works(&s, &kr, Banner::OURS);
    let sc = s.m.counters();
    assert_eq!(sc.conns_mode_secure, 1, "{sc:?}");
    s.m.shutdown();
    server_errors.sort();
    server_errors.dedup();
    report::write(
        &reliability_dir(),
        "wrong-key",
        &Row {
            scenario: "cephx auth with the right entity name and a wrong key".into(),
            load: "3 connections (blocking msgr2.1, msgr2.0; engine client)".into(),
            faults: "3 wrong keys".into(),
            messages: "0".into(),
            lost_dup: "n/a (no session created)".into(),
            result: format!(
                "pass: client AuthRejected -13 / reset `{client_err}`, no redial; server on_accept_failed `{}`; good client served after, {:.1} s",
                server_errors.join("; "),
                start.elapsed().as_secs_f64()
            ),
        },
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// A peer that never reads, against the engine server in a child process.

/// `hostile_server` as a child; its stdout lines arrive on `lines`.
struct ChildServer {
    child: Child,
    addr: EntityAddr,
    lines: Receiver<String>,
}

impl ChildServer {
    fn start(reply_bytes: usize, queue_messages: usize, queue_bytes: u64) -> ChildServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hostile_server"))
            .args([
                reply_bytes.to_string(),
                queue_messages.to_string(),
                queue_bytes.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(WAIT).unwrap();
        let vec: msgr2_codec::addr::EntityAddrVec =
            first.strip_prefix("listening ").unwrap().parse().unwrap();
        let addr = *vec.msgr2().unwrap();
        ChildServer { child, addr, lines }
    }

    /// `field` (`VmHWM`, `VmRSS`) of the child, KiB.
    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// Waits for a line starting with `prefix`; the lines seen (that one last).
    fn wait_line(&self, prefix: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    let hit = l.starts_with(prefix);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(e) => panic!(
                    "no {prefix:?} line ({e}); last lines: {:?}",
                    &seen[seen.len().saturating_sub(5)..]
                ),
            }
        }
    }

    /// Closes its stdin (it shuts down) and reaps it; kills it (by pid) if it hangs.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "hostile_server exited with {st}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("hostile_server did not stop when its stdin closed");
    }
}

/// Auth none, crc: a message answered.
fn good_crc_client_works(addr: EntityAddr) {
    let mut c = Config::new(client_name());
    c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
    let (mut conn, _) =
        BlockingConnection::connect(Arc::new(c), addr, EntityType::Mon, 1, WAIT).unwrap();
    conn.send(Message::new(5, 1, 1, vec![])).unwrap();
    loop {
        match conn.next_event(WAIT).unwrap() {
            Event::Message(_) => return,
            _ => continue,
        }
    }
}

#[test]
fn a_peer_that_never_reads_keeps_the_server_peak_rss_bounded() {
    const REPLY: usize = 64 << 10;
    const QUEUE_MESSAGES: usize = 1024;
    const QUEUE_BYTES: u64 = 16 << 20;
    let start = Instant::now();
    let s = ChildServer::start(REPLY, QUEUE_MESSAGES, QUEUE_BYTES);
    // warm up: one good client exchange, so the baseline includes a served connection
    good_crc_client_works(s.addr);
    s.wait_line("reset", WAIT);
    let base_hwm = s.status_kib("VmHWM");
    let base_rss = s.status_kib("VmRSS");

    // ask for 64 KiB replies as fast as possible and never read one
    let mut p = Peer::connect(s.addr.sock.unwrap()).unwrap();
    p.handshake_none(s.addr, WAIT).unwrap();
    let mut seq = 1u64;
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(15) {
        let h = MsgHeader2 {
            seq,
            tid: seq,
            msg_type: 5,
            priority: 127,
            version: 1,
            compat_version: 1,
            ..Default::default()
        }
        .to_bytes();
        let f = p.frame_bytes(Tag::Message, &[(&h, 8)]);
        if p.send_raw(&f).is_err() {
            closed = true;
            break;
        }
        seq += 1;
        if seq % 256 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(closed, "the server never dropped a peer that does not read");
    let lines = s.wait_line("reset", WAIT);
    let reset = lines.last().unwrap().clone();
    assert!(reset.contains("send queue full"), "{reset}");
    let answered = lines.iter().filter(|l| l.starts_with("message")).count();
    let hwm = s.status_kib("VmHWM");
    let rss = s.status_kib("VmRSS");
    let peak_growth = hwm.saturating_sub(base_hwm);
    println!(
        "requests sent {}, answered {answered}; VmHWM {base_hwm} → {hwm} KiB (+{peak_growth}), VmRSS {base_rss} → {rss} KiB; {reset}",
        seq - 1
    );
    // the queue bound (16 MiB) plus one transmit batch and allocator slack; before replies
    // were applied per message, a burst took this to +68..+131 MiB
    let bound_kib = (QUEUE_BYTES >> 10) * 3 / 2 + 8 * 1024;
    assert!(
        peak_growth < bound_kib,
        "peak RSS grew by {peak_growth} KiB (bound {bound_kib} KiB)"
    );
    // and the server still serves
    good_crc_client_works(s.addr);
    s.wait_line("reset", WAIT);
    s.stop();
    report::write(
        &reliability_dir(),
        "never-reads-peak-rss",
        &Row {
            scenario: "a peer that asks for 64 KiB replies and never reads (engine server in a child process)".into(),
            load: format!(
                "1 connection, {} requests; send_queue_limit {QUEUE_MESSAGES} msgs / {} MiB",
                seq - 1,
                QUEUE_BYTES >> 20
            ),
            faults: "receive window never drained".into(),
            messages: format!("{} requests, {answered} answered (queued)", seq - 1),
            lost_dup: "n/a (peer dropped)".into(),
            result: format!(
                "pass: reset `{}`; server VmHWM {} → {} MiB (+{:.1} MiB peak), VmRSS after {:.1} MiB; good client served after, {:.1} s",
                reset.trim_start_matches("reset "),
                base_hwm >> 10,
                hwm >> 10,
                peak_growth as f64 / 1024.0,
                rss as f64 / 1024.0,
                start.elapsed().as_secs_f64()
            ),
        },
    )
    .unwrap();
}
