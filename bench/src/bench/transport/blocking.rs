//! The blocking transport: std threads and blocking sockets, one thread per connection on
//! each side. msgr2 cells use [`BlockingConnection`]; raw cells a plain [`TcpStream`] with
//! [`RawDecoder`]. It makes no attempt at the engine's batching (one write per message, the
//! msgr2 driver copies each frame once more into its write buffer), so its ratios to raw are a
//! floor, not the engine's figures; it is here so the CLI works end to end without io_uring
//! and as a second opinion.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::data::Data;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_codec::raw::{RawDecoder, RawHeader};
use msgr2_crypto::auth::ServerAuthProvider;
use msgr2_crypto::cephx::{
    CephxClientProvider, CephxServerProvider, MonServerContext, TicketStore,
};
use msgr2_engine::blocking::BlockingConnection;
use msgr2_proto::{Config, Event, ModeConfig};

use super::{ClientConns, ConnectOptions, ServeOptions, Server, Target, Transport};
use crate::bench::cpu::pin_to;
use crate::bench::error::BenchError;
use crate::bench::spec::Mode;
use crate::bench::wire::{parse_stats_reply, server_answer, Kind, ServerStats};
use crate::bench::workload::{payload_for, ConnWorkload};

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits for a reply before giving up on the server.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle server connection waits for the next message.
const IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Receive staging buffer of a raw connection.
const RAW_BUF: usize = 256 << 10;

/// The blocking transport (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Blocking;

static GLOBAL_SEQ: AtomicU64 = AtomicU64::new(1);

fn next_global_seq() -> u64 {
    GLOBAL_SEQ.fetch_add(1, Ordering::Relaxed)
}

impl Transport for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn serve(&self, opts: &ServeOptions) -> Result<Box<dyn Server>, BenchError> {
        BlockingServer::start(opts).map(|s| Box::new(s) as Box<dyn Server>)
    }

    fn connect(
        &self,
        target: &Target,
        mode: Mode,
        opts: &ConnectOptions,
    ) -> Result<Box<dyn ClientConns>, BenchError> {
        match mode.con_mode() {
            None => {
                let mut conns = Vec::with_capacity(opts.conns);
                for _ in 0..opts.conns.max(1) {
                    let s = TcpStream::connect_timeout(&target.raw, HANDSHAKE_TIMEOUT)
                        .map_err(|e| BenchError::io(format!("connect to {}", target.raw), e))?;
                    conns.push(RawConn::new(s, opts.max_size)?);
                }
                Ok(Box::new(RawClient {
                    conns,
                    opts: opts.clone(),
                }))
            }
            Some(con_mode) => {
                let mut config = Config::new(opts.keys.client.clone());
                config.client_auth = Some(Arc::new(CephxClientProvider::new(
                    opts.keys.client.clone(),
                    opts.keys.key.clone(),
                    TicketStore::new(),
                )));
                config.modes = ModeConfig::all(vec![con_mode]);
                config.compression = mode.client_compression();
                config.nonce = std::process::id();
                let config = Arc::new(config);
                let mut conns = Vec::with_capacity(opts.conns);
                for _ in 0..opts.conns.max(1) {
                    let (c, info) = BlockingConnection::connect(
                        config.clone(),
                        target.msgr2,
                        EntityType::Mon,
                        next_global_seq(),
                        HANDSHAKE_TIMEOUT,
                    )?;
                    if info.con_mode != con_mode || info.compression != mode.compression() {
                        return Err(BenchError::Peer(format!(
                            "server chose connection mode {} instead of {mode}",
                            info.con_mode
                        )));
                    }
                    conns.push(c);
                }
                Ok(Box::new(Msgr2Client {
                    conns,
                    opts: opts.clone(),
                }))
            }
        }
    }
}

/// Pins the calling thread to `cores[i % len]`, reporting a failure once per process.
fn pin_round_robin(cores: &[usize], i: usize) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if cores.is_empty() {
        return;
    }
    if let Err(e) = pin_to(cores[i % cores.len()]) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("msgr2 bench: cannot pin threads ({e}); running unpinned");
        }
    }
}

fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T, BenchError>>>,
) -> Result<Vec<T>, BenchError> {
    let mut out = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(BenchError::Panic);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

// ---------------------------------------------------------------- msgr2 client

struct Msgr2Client {
    conns: Vec<BlockingConnection>,
    opts: ConnectOptions,
}

fn msgr2_next_message(
    c: &mut BlockingConnection,
) -> Result<(Kind, msgr2_proto::Message), BenchError> {
    loop {
        match c.next_event(REPLY_TIMEOUT)? {
            Event::Message(m) => {
                let kind = Kind::from_msg_type(m.header.msg_type).ok_or_else(|| {
                    BenchError::Peer(format!("unexpected message type {}", m.header.msg_type))
                })?;
                return Ok((kind, m));
            }
            Event::Keepalive(_) | Event::KeepaliveAck(_) => {}
            other => return Err(BenchError::Peer(format!("unexpected event {other:?}"))),
        }
    }
}

impl ClientConns for Msgr2Client {
    fn server_stats(&mut self) -> Result<ServerStats, BenchError> {
        let c = self
            .conns
            .first_mut()
            .ok_or_else(|| BenchError::Usage("no connections".into()))?;
        c.send(Kind::Stats.message(0, Vec::new()))?;
        loop {
            let (kind, m) = msgr2_next_message(c)?;
            if kind == Kind::StatsReply {
                return parse_stats_reply(&m.data);
            }
        }
    }

    fn run(&mut self, workloads: Vec<ConnWorkload>) -> Result<Vec<ConnWorkload>, BenchError> {
        let opts = &self.opts;
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .conns
                .iter_mut()
                .zip(workloads)
                .enumerate()
                .map(|(i, (c, mut w))| {
                    std::thread::Builder::new()
                        .name(format!("bench-cli-{i}"))
                        .spawn_scoped(s, move || {
                            pin_round_robin(&opts.cores, i);
                            let _cpu = opts.cpu.enter();
                            let data = super::payload(w.size() as usize);
                            loop {
                                while let Some(tid) = w.next_send(Instant::now()) {
                                    let p = payload_for(opts.recycle.as_deref(), &data);
                                    c.send(Kind::Data.message(tid, p))?;
                                }
                                if w.drained() {
                                    return Ok(w);
                                }
                                let (kind, m) = msgr2_next_message(c)?;
                                match kind {
                                    Kind::Reply => w.on_reply(m.header.tid, Instant::now())?,
                                    other => {
                                        return Err(BenchError::Peer(format!(
                                            "server sent {other:?} during the run"
                                        )))
                                    }
                                }
                            }
                        })
                        .map_err(|e| BenchError::io("spawn client thread", e))
                })
                .collect::<Result<_, _>>()?;
            join_all(handles)
        })
    }
}

// ---------------------------------------------------------------- raw connections

/// One raw-mode connection: writes are gathered header + payload, reads go through a staging
/// buffer except for the bulk of a large payload, which is received in place.
struct RawConn {
    stream: TcpStream,
    dec: RawDecoder,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl RawConn {
    fn new(stream: TcpStream, max_size: u64) -> Result<Self, BenchError> {
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::io("set TCP_NODELAY", e))?;
        Ok(Self {
            stream,
            dec: RawDecoder::new(u32::try_from(max_size).unwrap_or(u32::MAX)),
            buf: vec![0; RAW_BUF],
            pos: 0,
            len: 0,
        })
    }

    fn send(&mut self, kind: Kind, tid: u64, payload: &[u8]) -> Result<(), BenchError> {
        let len = u32::try_from(payload.len())
            .map_err(|_| BenchError::Usage("payload over 4 GiB".into()))?;
        let head = RawHeader {
            len,
            flags: kind.raw_flags(),
            tid,
        }
        .encode();
        let mut bufs = [IoSlice::new(&head), IoSlice::new(payload)];
        let mut bufs = &mut bufs[..];
        if payload.is_empty() {
            bufs = &mut bufs[..1];
        }
        while !bufs.is_empty() {
            match self.stream.write_vectored(bufs) {
                Ok(0) => {
                    return Err(BenchError::io(
                        "raw write",
                        std::io::Error::from(ErrorKind::WriteZero),
                    ))
                }
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(BenchError::io("raw write", e)),
            }
        }
        Ok(())
    }

    /// The next complete message; `Ok(None)` on a clean end of stream between messages.
    fn recv(&mut self) -> Result<Option<(Kind, u64, Data)>, BenchError> {
        loop {
            if self.pos < self.len {
                let (n, m) = self.dec.feed(&self.buf[self.pos..self.len])?;
                self.pos += n;
                if let Some((h, p)) = m {
                    return Ok(Some((kind_of(&h)?, h.tid, p)));
                }
                continue;
            }
            let Self {
                stream, dec, buf, ..
            } = self;
            let dest = dec.dest();
            if dest.len() >= RAW_BUF / 4 {
                // The rest of a large payload: receive it in place.
                let n = read_some(stream, dest)?;
                if n == 0 {
                    return Err(BenchError::Peer("end of stream inside a message".into()));
                }
                if let Some((h, p)) = self.dec.advance(n)? {
                    return Ok(Some((kind_of(&h)?, h.tid, p)));
                }
                continue;
            }
            let n = read_some(stream, buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.pos = 0;
            self.len = n;
        }
    }
}

fn kind_of(h: &RawHeader) -> Result<Kind, BenchError> {
    Kind::from_raw_flags(h.flags)
        .ok_or_else(|| BenchError::Peer(format!("raw message with flags {:#x}", h.flags)))
}

fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> Result<usize, BenchError> {
    loop {
        match s.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(BenchError::io("raw read", e)),
        }
    }
}

struct RawClient {
    conns: Vec<RawConn>,
    opts: ConnectOptions,
}

fn raw_expect(c: &mut RawConn) -> Result<(Kind, u64, Data), BenchError> {
    c.recv()?
        .ok_or_else(|| BenchError::Peer("server closed the connection".into()))
}

impl ClientConns for RawClient {
    fn server_stats(&mut self) -> Result<ServerStats, BenchError> {
        let c = self
            .conns
            .first_mut()
            .ok_or_else(|| BenchError::Usage("no connections".into()))?;
        c.send(Kind::Stats, 0, &[])?;
        loop {
            let (kind, _, p) = raw_expect(c)?;
            if kind == Kind::StatsReply {
                return parse_stats_reply(&p);
            }
        }
    }

    fn run(&mut self, workloads: Vec<ConnWorkload>) -> Result<Vec<ConnWorkload>, BenchError> {
        let opts = &self.opts;
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .conns
                .iter_mut()
                .zip(workloads)
                .enumerate()
                .map(|(i, (c, mut w))| {
                    std::thread::Builder::new()
                        .name(format!("bench-cli-{i}"))
                        .spawn_scoped(s, move || {
                            pin_round_robin(&opts.cores, i);
                            let _cpu = opts.cpu.enter();
                            let data = super::payload(w.size() as usize);
                            loop {
                                while let Some(tid) = w.next_send(Instant::now()) {
                                    c.send(Kind::Data, tid, &data)?;
                                }
                                if w.drained() {
                                    return Ok(w);
                                }
                                match raw_expect(c)? {
                                    (Kind::Reply, tid, _) => w.on_reply(tid, Instant::now())?,
                                    (other, _, _) => {
                                        return Err(BenchError::Peer(format!(
                                            "server sent {other:?} during the run"
                                        )))
                                    }
                                }
                            }
                        })
                        .map_err(|e| BenchError::io("spawn client thread", e))
                })
                .collect::<Result<_, _>>()?;
            join_all(handles)
        })
    }
}

// ---------------------------------------------------------------- server

struct BlockingServer {
    target: Target,
    stop: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
}

impl BlockingServer {
    fn start(opts: &ServeOptions) -> Result<Self, BenchError> {
        if opts.admin_socket.is_some() {
            return Err(BenchError::Usage(
                "--admin-socket needs the engine transport (--transport engine)".into(),
            ));
        }
        let v2 = *opts
            .listen
            .msgr2()
            .ok_or_else(|| BenchError::Usage(format!("{} has no v2 address", opts.listen)))?;
        let sock = v2
            .sock
            .ok_or_else(|| BenchError::Usage(format!("{} has no IP and port", opts.listen)))?;
        let l2 = TcpListener::bind(sock).map_err(|e| BenchError::io(format!("bind {sock}"), e))?;
        let bound = l2
            .local_addr()
            .map_err(|e| BenchError::io(format!("bind {sock}"), e))?;
        let lraw = TcpListener::bind(opts.raw_listen)
            .map_err(|e| BenchError::io(format!("bind {}", opts.raw_listen), e))?;
        let raw_bound = lraw
            .local_addr()
            .map_err(|e| BenchError::io(format!("bind {}", opts.raw_listen), e))?;
        let nonce = std::process::id().max(1);
        let me = EntityAddr::new(AddrType::Msgr2, bound, nonce);

        let name = EntityName::new(EntityType::Mon, "bench");
        let mut config = Config::new(name);
        config.gid.set(0);
        config.my_addrs = EntityAddrVec(vec![me]);
        config.nonce = nonce;
        config.modes = ModeConfig::all(vec![CON_MODE_CRC, CON_MODE_SECURE]);
        config.compression = crate::bench::spec::server_compression();
        let ctx = MonServerContext::new(opts.keys.keyring.clone())
            .map_err(|e| BenchError::Keys(e.to_string()))?;
        config.server_auth =
            Some(Arc::new(CephxServerProvider::new(Arc::new(ctx))) as Arc<dyn ServerAuthProvider>);
        let config = Arc::new(config);

        let stop = Arc::new(AtomicBool::new(false));
        let next_core = Arc::new(AtomicUsize::new(0));
        let mut acceptors = Vec::new();
        {
            let (stop, opts, next_core) = (stop.clone(), opts.clone(), next_core.clone());
            acceptors.push(
                std::thread::Builder::new()
                    .name("bench-accept-v2".into())
                    .spawn(move || {
                        for s in l2.incoming() {
                            if stop.load(Ordering::Acquire) {
                                break;
                            }
                            let Ok(s) = s else { continue };
                            let Ok(peer) = s.peer_addr() else { continue };
                            let (config, opts) = (config.clone(), opts.clone());
                            let i = next_core.fetch_add(1, Ordering::Relaxed);
                            let _ = std::thread::Builder::new()
                                .name(format!("bench-srv-{i}"))
                                .spawn(move || serve_msgr2(config, s, peer, &opts, i));
                        }
                    })
                    .map_err(|e| BenchError::io("spawn acceptor", e))?,
            );
        }
        {
            let (stop, opts) = (stop.clone(), opts.clone());
            acceptors.push(
                std::thread::Builder::new()
                    .name("bench-accept-raw".into())
                    .spawn(move || {
                        for s in lraw.incoming() {
                            if stop.load(Ordering::Acquire) {
                                break;
                            }
                            let Ok(s) = s else { continue };
                            let opts = opts.clone();
                            let i = next_core.fetch_add(1, Ordering::Relaxed);
                            let _ = std::thread::Builder::new()
                                .name(format!("bench-srv-{i}"))
                                .spawn(move || serve_raw(s, &opts, i));
                        }
                    })
                    .map_err(|e| BenchError::io("spawn acceptor", e))?,
            );
        }
        Ok(Self {
            target: Target {
                msgr2: me,
                raw: raw_bound,
            },
            stop,
            acceptors,
        })
    }
}

fn serve_msgr2(
    config: Arc<Config>,
    stream: TcpStream,
    peer: SocketAddr,
    opts: &ServeOptions,
    i: usize,
) {
    pin_round_robin(&opts.cores, i);
    let _cpu = opts.cpu.enter();
    let Ok((mut c, _)) =
        BlockingConnection::accept(config, stream, peer, next_global_seq(), HANDSHAKE_TIMEOUT)
    else {
        return;
    };
    // Ends when the client closes (or breaks the protocol).
    let _ = (|| -> Result<(), BenchError> {
        loop {
            if let Event::Message(m) = c.next_event(IDLE_TIMEOUT)? {
                let kind = Kind::from_msg_type(m.header.msg_type).ok_or_else(|| {
                    BenchError::Peer(format!("message type {}", m.header.msg_type))
                })?;
                let (k, p) = server_answer(kind, &opts.cpu)?;
                c.send(k.message(m.header.tid, p))?;
                if let Some(pool) = &opts.recycle {
                    pool.give(m.data);
                }
            }
        }
    })();
}

fn serve_raw(stream: TcpStream, opts: &ServeOptions, i: usize) {
    pin_round_robin(&opts.cores, i);
    let _cpu = opts.cpu.enter();
    let Ok(mut c) = RawConn::new(stream, opts.max_size) else {
        return;
    };
    let _ = (|| -> Result<(), BenchError> {
        while let Some((kind, tid, _)) = c.recv()? {
            let (k, p) = server_answer(kind, &opts.cpu)?;
            c.send(k, tid, &p)?;
        }
        Ok(())
    })();
}

impl Server for BlockingServer {
    fn target(&self) -> Target {
        self.target.clone()
    }

    fn shutdown(self: Box<Self>) {
        self.stop.store(true, Ordering::Release);
        // Wake both acceptors with a connection they will drop.
        if let Some(s) = self.target.msgr2.sock {
            let _ = TcpStream::connect_timeout(&wake_addr(s), Duration::from_secs(1));
        }
        let _ = TcpStream::connect_timeout(&wake_addr(self.target.raw), Duration::from_secs(1));
        for h in self.acceptors {
            let _ = h.join();
        }
    }
}

/// A listener bound to the unspecified address is woken through loopback.
fn wake_addr(mut s: SocketAddr) -> SocketAddr {
    if s.ip().is_unspecified() {
        s.set_ip(if s.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    s
}
