//! A full msgr2 handshake between two in-memory `msgr2_proto::Connection`s (banner, HELLO,
//! auth, AUTH_SIGNATURE, idents), pumped against each other with no sockets, for auth none +
//! crc mode and cephx + secure mode, both framing revisions; then one MESSAGE with a 4 KiB,
//! 64 KiB or 4 MiB data segment through the ready pair (sender framing + receiver decoding,
//! the protocol core's whole per-message cost without I/O).

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Banner;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_crypto::cephx::{
    CephxClientProvider, CephxServerProvider, MonServerContext, TicketStore,
};
use msgr2_crypto::keyring::{CryptoKey, Keyring};
use msgr2_proto::{Config, Connection, Event, Message, ModeConfig};

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (4 << 20, "4MiB")];

#[derive(Clone, Copy)]
enum Auth {
    NoneCrc,
    CephxSecure,
}

impl Auth {
    fn name(self) -> &'static str {
        match self {
            Auth::NoneCrc => "none_crc",
            Auth::CephxSecure => "cephx_secure",
        }
    }
}

struct Setup {
    client: Arc<Config>,
    server: Arc<Config>,
    server_addr: EntityAddr,
}

fn client_name() -> EntityName {
    "client.bench".parse().unwrap()
}

fn setup(auth: Auth, rev1: bool) -> Setup {
    let server_addr: EntityAddr = "v2:127.0.0.1:3300/0".parse().unwrap();
    let mut c = Config::new(client_name());
    let mut s = Config::new("mon.a".parse().unwrap());
    s.my_addrs = EntityAddrVec(vec![server_addr]);
    match auth {
        Auth::NoneCrc => {
            c.client_auth = Some(Arc::new(NoneClientProvider::new(client_name())));
            s.server_auth = Some(Arc::new(NoneServerProvider::new(4100)));
            c.modes = ModeConfig::all(vec![CON_MODE_CRC]);
        }
        Auth::CephxSecure => {
            let key = CryptoKey::generate().unwrap();
            let mut kr = Keyring::new();
            kr.insert(client_name(), key.clone());
            kr.set_caps(&client_name(), "mon", "allow *");
            let ctx = MonServerContext::new(Arc::new(kr)).unwrap();
            s.server_auth = Some(Arc::new(CephxServerProvider::new(Arc::new(ctx))));
            c.client_auth = Some(Arc::new(CephxClientProvider::new(
                client_name(),
                key,
                TicketStore::new(),
            )));
            c.modes = ModeConfig::all(vec![CON_MODE_SECURE]);
        }
    }
    if !rev1 {
        c.banner = Banner {
            supported: 0,
            required: 0,
        };
    }
    Setup {
        client: Arc::new(c),
        server: Arc::new(s),
        server_addr,
    }
}

fn pair(s: &Setup) -> (Connection, Connection) {
    let now = Instant::now();
    (
        Connection::client(s.client.clone(), s.server_addr, EntityType::Mon, 1, now),
        Connection::server(s.server.clone(), "127.0.0.1:40000".parse().unwrap(), 2, now),
    )
}

/// Moves bytes both ways until neither side has anything to send.
fn pump(a: &mut Connection, b: &mut Connection, buf: &mut Vec<u8>) {
    loop {
        buf.clear();
        a.poll_transmit(buf);
        let ab = !buf.is_empty();
        if ab {
            b.handle_input(buf).unwrap();
        }
        buf.clear();
        b.poll_transmit(buf);
        let ba = !buf.is_empty();
        if ba {
            a.handle_input(buf).unwrap();
        }
        if !ab && !ba {
            return;
        }
    }
}

fn ready_pair(s: &Setup) -> (Connection, Connection) {
    let (mut c, mut srv) = pair(s);
    let mut buf = Vec::new();
    pump(&mut c, &mut srv, &mut buf);
    assert!(matches!(c.poll_event(), Some(Event::Ready(_))));
    assert!(matches!(srv.poll_event(), Some(Event::Ready(_))));
    (c, srv)
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    for auth in [Auth::NoneCrc, Auth::CephxSecure] {
        for (rev1, rname) in [(true, "rev1"), (false, "rev0")] {
            let s = setup(auth, rev1);
            let mut buf = Vec::new();
            g.bench_function(BenchmarkId::new(auth.name(), rname), |b| {
                b.iter(|| {
                    let (mut cl, mut sv) = pair(&s);
                    pump(&mut cl, &mut sv, &mut buf);
                    black_box((cl.is_ready(), sv.is_ready()))
                })
            });
        }
    }
    g.finish();
}

fn message(c: &mut Criterion) {
    for auth in [Auth::NoneCrc, Auth::CephxSecure] {
        let s = setup(auth, true);
        let mut g = c.benchmark_group(format!("proto_message_{}", auth.name()));
        for (n, name) in SIZES {
            let (mut cl, mut sv) = ready_pair(&s);
            let mut m = Message::new(0x4d01, 1, 1, Vec::new());
            m.data = vec![0x5a; n].into();
            let mut buf = Vec::with_capacity(n + 4096);
            g.throughput(Throughput::Bytes(n as u64));
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_batched(
                    || m.clone(),
                    |m| {
                        cl.send_message(m).unwrap();
                        buf.clear();
                        cl.poll_transmit(&mut buf);
                        sv.handle_input(&buf).unwrap();
                        match sv.poll_event() {
                            Some(Event::Message(got)) => got.data.len(),
                            other => panic!("{other:?}"),
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
            // Drain acks so the pair does not accumulate state across sizes.
            pump(&mut cl, &mut sv, &mut buf);
        }
        g.finish();
    }
}

criterion_group! {name = benches; config = common::config(); targets = handshake, message}
criterion_main!(benches);
