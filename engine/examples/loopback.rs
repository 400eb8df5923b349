//! Loopback streaming through the engine, for syscall and throughput measurements.
//!
//! `cargo run --release -p msgr2-engine --example loopback -- [raw|crc|secure] [size] [secs]
//! [conns] [depth]`: a server messenger on core 1 acknowledges every message with an empty
//! one, a client messenger on core 0 keeps `depth` messages of `size` bytes in flight on each
//! of `conns` connections. Prints messages/s, GB/s and the engine's counters per message
//! (`io_uring_enter` calls, eventfd wakeups, send operations). Calls
//! [`msgr2_engine::tune_malloc_for_large_messages`] unless `MSGR2_NO_MALLOC_TUNING` is set.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_engine::{ConnHandle, Dispatcher, Message, MessengerBuilder, ModeConfig, PeerInfo};

struct Acker;
impl Dispatcher for Acker {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let mut ack = Message::new(2, 1, 1, Vec::new());
        ack.header.tid = msg.header.tid;
        let _ = conn.send(ack);
    }
}

struct Streamer {
    payload: Arc<Vec<u8>>,
    depth: usize,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Streamer {
    fn one(&self, conn: &ConnHandle, tid: u64) {
        let mut m = Message::new(1, 1, 1, Vec::new());
        m.header.tid = tid;
        m.data = self.payload.as_ref().clone().into();
        let _ = conn.send(m);
    }
}

impl Dispatcher for Streamer {
    fn on_connect(&mut self, conn: &ConnHandle, _peer: &PeerInfo) {
        for t in 0..self.depth as u64 {
            self.one(conn, t);
        }
    }
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !self.stop.load(Ordering::Relaxed) {
            self.one(conn, msg.header.tid + self.depth as u64);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("MSGR2_NO_MALLOC_TUNING").is_none() {
        msgr2_engine::tune_malloc_for_large_messages();
    }
    let mode = args.first().map_or("crc", String::as_str).to_owned();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let depth: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(64);
    let name = |s: &str| -> EntityName { s.parse().unwrap_or_else(|e| panic!("{e}")) };
    let mut kr = Keyring::new();
    let client = name("client.admin");
    kr.insert(
        client.clone(),
        CryptoKey::generate().unwrap_or_else(|e| panic!("{e}")),
    );
    kr.set_caps(&client, "mon", "allow *");
    let (srv_name, peer_type) = if mode == "secure" {
        ("mon.a", EntityType::Mon)
    } else {
        ("osd.0", EntityType::Osd)
    };
    let modes = ModeConfig::all(vec![if mode == "secure" {
        CON_MODE_SECURE
    } else {
        CON_MODE_CRC
    }]);
    let configure = |b: MessengerBuilder| {
        let b = b.raw(mode == "raw").modes(modes.clone());
        if mode == "secure" {
            b.keyring(kr.clone())
        } else {
            b
        }
    };
    let server = configure(MessengerBuilder::new(name(srv_name)))
        .cores(vec![1])
        .bind("v2:127.0.0.1:0")
        .dispatcher(|_| Box::new(Acker))
        .start()
        .unwrap_or_else(|e| panic!("server: {e}"));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let payload = Arc::new(vec![0x5au8; size]);
    let (d2, s2) = (Arc::clone(&done), Arc::clone(&stop));
    let cl = configure(MessengerBuilder::new(client))
        .cores(vec![0])
        .dispatcher(move |_| {
            Box::new(Streamer {
                payload: Arc::clone(&payload),
                depth,
                done: Arc::clone(&d2),
                stop: Arc::clone(&s2),
            })
        })
        .start()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let _h: Vec<_> = (0..conns)
        .map(|_| {
            cl.connect(&server.addrs(), peer_type)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (c0, s0, n0) = (
        cl.counters(),
        server.counters(),
        done.load(Ordering::Relaxed),
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let el = t0.elapsed().as_secs_f64();
    let (c1, s1, n1) = (
        cl.counters(),
        server.counters(),
        done.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    let n = (n1 - n0) as f64;
    println!(
        "mode={mode} size={size} conns={conns} depth={depth}: {:.0} msg/s, {:.3} GB/s",
        n / el,
        n * size as f64 / el / 1e9
    );
    for (side, a, b) in [("client", &c0, &c1), ("server", &s0, &s1)] {
        println!(
            "  {side}: enters/msg {:.3}  wakeups/msg {:.4}  send_ops/msg {:.3}  cqes/msg {:.3}  sleeps/msg {:.3}  zc {} (copied {})",
            (b.ring_enters - a.ring_enters) as f64 / n,
            (b.wakeups_sent - a.wakeups_sent) as f64 / n,
            (b.send_ops - a.send_ops) as f64 / n,
            (b.ring_cqes - a.ring_cqes) as f64 / n,
            (b.reactor_sleeps - a.reactor_sleeps) as f64 / n,
            b.zc_sends - a.zc_sends,
            b.zc_copied - a.zc_copied,
        );
    }
    let sc = server.shutdown();
    let cc = cl.shutdown();
    println!(
        "  arena in use after shutdown: {} / {}",
        sc.arena_in_use_bytes, cc.arena_in_use_bytes
    );
}
