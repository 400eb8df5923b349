//! On-wire compression through the io_uring engine: two OSD messengers over loopback with
//! `ms_osd_compress_mode=force`, every method, messages echoed back byte for byte (the
//! zero-copy receive path lends the *compressed* data segment, decompression follows).

#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use msgr2_codec::entity::EntityType;
use msgr2_engine::{
    CompressMethod, CompressionConfig, ConnHandle, Dispatcher, Message, MessengerBuilder, PeerInfo,
};

const T: Duration = Duration::from_secs(30);

enum Ev {
    Connected(PeerInfo),
    Msg(Message),
    Reset(msgr2_engine::ConnError),
}

struct Fwd {
    tx: Sender<Ev>,
    echo: bool,
}

impl Dispatcher for Fwd {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        if self.echo {
            let _ = conn.send(msg);
        } else {
            let _ = self.tx.send(Ev::Msg(msg));
        }
    }
    fn on_connect(&mut self, _: &ConnHandle, peer: &PeerInfo) {
        let _ = self.tx.send(Ev::Connected(peer.clone()));
    }
    fn on_reset(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        let _ = self.tx.send(Ev::Reset(error.to_owned()));
    }
}

fn builder(n: &str, echo: bool, comp: &CompressionConfig) -> (MessengerBuilder, Receiver<Ev>) {
    let (tx, rx) = channel();
    let b = MessengerBuilder::new(n.parse().unwrap())
        .cores(vec![0])
        .arena_size(8 << 20)
        .compression(comp.clone())
        .dispatcher(move |_| {
            Box::new(Fwd {
                tx: tx.clone(),
                echo,
            })
        });
    (b, rx)
}

/// Compressible but not trivially so.
fn text(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefgh"[(i / 7 + usize::from(seed)) % 8])
        .collect()
}

/// Incompressible-looking.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn osd_messengers_compress_with_every_method() {
    for m in CompressMethod::ALL {
        let mut comp = CompressionConfig::default();
        comp.set("ms_osd_compress_mode", "force").unwrap();
        comp.set("ms_osd_compression_algorithm", m.name()).unwrap();
        let (sb, _srx) = builder("osd.0", true, &comp);
        let (cb, crx) = builder("osd.1", false, &comp);
        let s = sb.bind("v2:127.0.0.1:0").start().unwrap();
        let c = cb.start().unwrap();
        let conn = c.connect(&s.addrs(), EntityType::Osd).unwrap();
        let sizes = [0usize, 10, 4096, 300_000, 2 << 20];
        let mut sent = Vec::new();
        for (i, len) in sizes.iter().enumerate() {
            let mut msg = Message::new(70, 4, 4, text(*len / 3, i as u8));
            msg.header.tid = i as u64;
            msg.data = text(*len, i as u8 + 1).into();
            sent.push(msg.clone());
            conn.send(msg).unwrap();
        }
        let mut msg = Message::new(70, 4, 4, b"noise".to_vec());
        msg.header.tid = 99;
        msg.data = noise(1 << 20, 7).into();
        sent.push(msg.clone());
        conn.send(msg).unwrap();
        let deadline = Instant::now() + T;
        let mut got = Vec::new();
        let mut info = None;
        while got.len() < sent.len() {
            match crx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ev::Connected(p)) => info = Some(p),
                Ok(Ev::Msg(msg)) => got.push(msg),
                Ok(Ev::Reset(e)) => panic!("{m}: reset {e}"),
                Err(e) => panic!("{m}: {} of {} messages: {e}", got.len(), sent.len()),
            }
        }
        assert_eq!(info.unwrap().compression, Some(m));
        for (a, b) in sent.iter().zip(&got) {
            assert_eq!(a.header.tid, b.header.tid);
            assert_eq!(a.front, b.front, "{m} tid {}", a.header.tid);
            assert!(a.data == b.data, "{m} tid {} data differs", a.header.tid);
        }
        let payload: u64 = sent.iter().map(|x| x.payload_len() as u64).sum();
        let cc = c.counters();
        assert!(
            cc.msgr_send_bytes < payload / 2,
            "{m}: {} bytes on the wire for {payload}",
            cc.msgr_send_bytes
        );
        s.shutdown();
        c.shutdown();
    }
}
