//! An OSD-style daemon skeleton: a public messenger for clients (lossy, stateless server)
//! and a cluster messenger for peers (lossless), both on every core; each client write is
//! replicated to two peer OSDs and acknowledged to the client once both replicas acked.
//!
//! `cargo run --release -p msgr2-engine --example osd_daemon -- [writes] [size]` runs the
//! primary (osd.0), two replicas (osd.1, osd.2) and a client in one process over loopback.
//! `--admin-socket PATH` (Ceph's metavariables expanded for osd.0) serves osd.0's public and
//! cluster messengers on Ceph's admin socket, and keeps them up after the run until stdin
//! closes, for `ceph daemon PATH perf dump`.
//!
//! `... --example osd_daemon -- --cluster CONF [--name osd.N] [--listen ADDR] [--mode
//! crc|secure] [--for SECS]` runs instead one daemon in a real cluster (see
//! `support/osd_cluster.rs`): logged in to its mon as `osd.N`, verifying clients' tickets with
//! the rotating secrets it fetches and renews.

#[path = "support/osd_cluster.rs"]
mod osd_cluster;

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_engine::{
    ConnHandle, Dispatcher, Message, Messenger, MessengerBuilder, PeerInfo, Policy,
};

const OSD_OP: u16 = 42; // CEPH_MSG_OSD_OP
const OSD_OPREPLY: u16 = 43; // CEPH_MSG_OSD_OPREPLY
const REPOP: u16 = 112; // MSG_OSD_REPOP
const REPOPREPLY: u16 = 113; // MSG_OSD_REPOPREPLY

fn name(s: &str) -> EntityName {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn reply(to: u16, tid: u64) -> Message {
    let mut m = Message::new(to, 1, 1, Vec::new());
    m.header.tid = tid;
    m
}

/// In-flight client writes: tid → (client connection, replica acks still missing).
type Inflight = Arc<Mutex<HashMap<u64, (ConnHandle, u32)>>>;

/// Public side of the primary: replicate each write to both peers.
struct Public {
    peers: Arc<Vec<ConnHandle>>,
    inflight: Inflight,
}

impl Dispatcher for Public {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        if msg.header.msg_type != OSD_OP {
            return;
        }
        let tid = msg.header.tid;
        if let Ok(mut m) = self.inflight.lock() {
            m.insert(tid, (conn.clone(), self.peers.len() as u32));
        }
        for p in self.peers.iter() {
            let mut rep = Message::new(REPOP, 1, 1, Vec::new());
            rep.header.tid = tid;
            rep.data = msg.data.clone();
            let _ = p.send(rep);
        }
    }
}

/// Cluster side of the primary: count replica acks, answer the client.
struct ClusterPrimary {
    inflight: Inflight,
}

impl Dispatcher for ClusterPrimary {
    fn on_message(&mut self, _conn: &ConnHandle, msg: Message) {
        if msg.header.msg_type != REPOPREPLY {
            return;
        }
        let done = self.inflight.lock().ok().and_then(|mut m| {
            let e = m.get_mut(&msg.header.tid)?;
            e.1 -= 1;
            (e.1 == 0).then(|| m.remove(&msg.header.tid)).flatten()
        });
        if let Some((client, _)) = done {
            let _ = client.send(reply(OSD_OPREPLY, msg.header.tid));
        }
    }
    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        eprintln!("cluster connection {} reset: {error}", conn.id());
    }
}

/// A replica: apply (here: drop) and acknowledge.
struct Replica;
impl Dispatcher for Replica {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        if msg.header.msg_type == REPOP {
            let _ = conn.send(reply(REPOPREPLY, msg.header.tid));
        }
    }
}

/// The client: count acknowledgements.
struct Client {
    acks: Sender<u64>,
    connected: Sender<()>,
}
impl Dispatcher for Client {
    fn on_message(&mut self, _conn: &ConnHandle, msg: Message) {
        let _ = self.acks.send(msg.header.tid);
    }
    fn on_connect(&mut self, _conn: &ConnHandle, _peer: &PeerInfo) {
        let _ = self.connected.send(());
    }
}

fn cluster(n: &str) -> MessengerBuilder {
    MessengerBuilder::new(name(n))
        .policy(EntityType::Osd, Policy::lossless_peer(0))
        .bind("v2:127.0.0.1:0")
        .arena_size(8 << 20)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--cluster") {
        return osd_cluster::run(&args[1..]);
    }
    let asok = match args.iter().position(|a| a == "--admin-socket") {
        Some(i) if i + 1 < args.len() => Some(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        Some(_) => return Err("--admin-socket needs a PATH".into()),
        None => None,
    };
    let writes: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4096);

    let replicas: Vec<Messenger> = ["osd.1", "osd.2"]
        .iter()
        .map(|n| cluster(n).dispatcher(|_| Box::new(Replica)).start())
        .collect::<Result<_, _>>()?;

    let inflight: Inflight = Arc::default();
    let inf = Arc::clone(&inflight);
    let cluster0 = cluster("osd.0")
        .dispatcher(move |_| {
            Box::new(ClusterPrimary {
                inflight: Arc::clone(&inf),
            })
        })
        .start()?;
    let peers: Arc<Vec<ConnHandle>> = Arc::new(
        replicas
            .iter()
            .map(|r| cluster0.connect(&r.addrs(), EntityType::Osd))
            .collect::<Result<_, _>>()?,
    );
    let (p2, inf) = (Arc::clone(&peers), Arc::clone(&inflight));
    let public = MessengerBuilder::new(name("osd.0"))
        .policy(EntityType::Client, Policy::stateless_server(0))
        .bind("v2:127.0.0.1:0")
        .arena_size(8 << 20)
        .dispatcher(move |_| {
            Box::new(Public {
                peers: Arc::clone(&p2),
                inflight: Arc::clone(&inf),
            })
        })
        .start()?;
    let asok = match asok {
        Some(p) => {
            let osd0 = name("osd.0");
            let path = msgr2_engine::admin::MetaVars::new(osd0.clone()).expand(&p);
            let a = msgr2_engine::admin::AdminSocket::bind(&path)?;
            a.set_config(vec![
                ("name".into(), osd0.to_string()),
                ("cluster".into(), "ceph".into()),
                ("admin_socket".into(), path.clone()),
            ]);
            a.add_messenger("public", &public);
            a.add_messenger("cluster", &cluster0);
            println!("admin socket {path}");
            Some(a)
        }
        None => None,
    };
    println!(
        "osd.0 public {} cluster {}; replicas {} {}",
        public.addrs(),
        cluster0.addrs(),
        replicas[0].addrs(),
        replicas[1].addrs()
    );

    let (atx, arx) = channel();
    let (ctx, crx) = channel();
    let client = MessengerBuilder::new(name("client.admin"))
        .policy(EntityType::Osd, Policy::lossy_client(0))
        .arena_size(8 << 20)
        .dispatcher(move |_| {
            Box::new(Client {
                acks: atx.clone(),
                connected: ctx.clone(),
            })
        })
        .start()?;
    let conns: Vec<ConnHandle> = (0..4)
        .map(|_| client.connect(&public.addrs(), EntityType::Osd))
        .collect::<Result<_, _>>()?;
    for _ in &conns {
        crx.recv_timeout(Duration::from_secs(10))?;
    }
    let t0 = Instant::now();
    let window = 256u64;
    let send = |tid: u64| {
        let mut m = Message::new(OSD_OP, 8, 3, Vec::new());
        m.header.tid = tid;
        m.data = vec![tid as u8; size].into();
        conns[(tid % conns.len() as u64) as usize].send(m)
    };
    let mut next = 0;
    while next < window.min(writes) {
        send(next)?;
        next += 1;
    }
    for _ in 0..writes {
        arx.recv_timeout(Duration::from_secs(10))?;
        if next < writes {
            send(next)?;
            next += 1;
        }
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{writes} replicated writes of {size} bytes: {:.0} writes/s, {:.1} MB/s client payload",
        writes as f64 / el,
        writes as f64 * size as f64 / el / 1e6
    );
    let c = cluster0.counters();
    println!(
        "cluster messenger: {} sent, {} received, cross-core commands {}",
        c.msgr_send_messages, c.msgr_recv_messages, c.cross_core_cmds
    );
    if let Some(a) = asok {
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        a.shutdown();
    }
    client.shutdown();
    public.shutdown();
    cluster0.shutdown();
    for r in replicas {
        r.shutdown();
    }
    Ok(())
}
