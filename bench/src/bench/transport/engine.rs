//! The io_uring engine transport: `msgr2_engine::Messenger`s with bench dispatchers.
//!
//! The server runs two messengers on the server cores: a msgr2 one (`mon.bench`, cephx,
//! crc and secure allowed) and a raw-baseline one (`.raw(true)`): the same engine moving the
//! same bytes with a 16-byte header and no msgr2 framing. Their dispatchers answer the bench
//! protocol ([`crate::bench::wire`]) on the core that owns each connection.
//!
//! The client starts one messenger per cell (mode fixed by its `ModeConfig`, or `.raw(true)`)
//! on the client cores and opens `--conns` connections. Each connection's [`ConnWorkload`]
//! lives in a slot that only the owning core's dispatcher touches while the cell runs: a reply
//! records the latency and refills the window from inside the callback, so the next sends
//! leave with the core's next submission, without a cross-thread hop.
//!
//! CPU: the reactor threads register themselves with the side's [`CpuSide`] from the
//! dispatcher factory, which the engine calls on each core's own thread.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_codec::payload::{CON_MODE_CRC, CON_MODE_SECURE};
use msgr2_engine::{
    ConnHandle, Dispatcher, EngineError, Message, Messenger, MessengerBuilder, ModeConfig, PeerInfo,
};

use super::{ClientConns, ConnectOptions, IoCounts, ServeOptions, Server, Target, Transport};
use crate::bench::cpu::{CoreSlot, CpuSide};
use crate::bench::error::BenchError;
use crate::bench::spec::Mode;
use crate::bench::wire::{parse_stats_reply, server_answer, Kind, ServerStats};
use crate::bench::workload::{payload_for, ConnWorkload, PayloadPool};

/// The engine transport (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Engine;

/// Whether this build has a usable engine transport.
pub const AVAILABLE: bool = true;

/// How long connecting (handshake included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the client waits without any reply before giving up on the server.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

fn engine_err(e: EngineError) -> BenchError {
    BenchError::Engine(e.to_string())
}

/// A messenger that would not start: say how to run without the engine.
fn start_err(e: EngineError) -> BenchError {
    BenchError::Engine(format!(
        "{e} (`--transport blocking` runs the bench without io_uring)"
    ))
}

fn limits(max_size: u64) -> Limits {
    let seg = u32::try_from(max_size.max(1 << 20)).unwrap_or(u32::MAX);
    Limits {
        max_message_segment: seg.max(Limits::default().max_message_segment),
        max_message_total: u64::from(seg).max(Limits::default().max_message_total),
        ..Limits::default()
    }
}

/// Registers the calling reactor thread on `core` with `cpu` and remembers its id.
fn register(cpu: &CpuSide, tids: &Mutex<Vec<i32>>, core: usize) -> Arc<CoreSlot> {
    let slot = cpu.register_core(core);
    if let Ok(mut t) = tids.lock() {
        t.push(slot.tid);
    }
    slot
}

impl Transport for Engine {
    fn name(&self) -> &'static str {
        "engine"
    }

    fn serve(&self, opts: &ServeOptions) -> Result<Box<dyn Server>, BenchError> {
        EngineServer::start(opts).map(|s| Box::new(s) as Box<dyn Server>)
    }

    fn connect(
        &self,
        target: &Target,
        mode: Mode,
        opts: &ConnectOptions,
    ) -> Result<Box<dyn ClientConns>, BenchError> {
        EngineClient::connect(target, mode, opts).map(|c| Box::new(c) as Box<dyn ClientConns>)
    }
}

// ---------------------------------------------------------------- server

struct ServerDispatcher {
    cpu: Arc<CpuSide>,
    core: Arc<CoreSlot>,
    recycle: Option<Arc<PayloadPool>>,
}

impl Dispatcher for ServerDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let Some(kind) = Kind::from_msg_type(msg.header.msg_type) else {
            conn.mark_down();
            return;
        };
        if kind == Kind::Data {
            self.core.msgs.fetch_add(1, Ordering::Relaxed);
        }
        match server_answer(kind, &self.cpu) {
            Ok((k, payload)) => {
                let _ = conn.send(k.message(msg.header.tid, payload));
                if let Some(pool) = &self.recycle {
                    pool.give(msg.data);
                }
            }
            Err(_) => conn.mark_down(),
        }
    }
}

struct EngineServer {
    target: Target,
    msgr2: Messenger,
    raw: Messenger,
    admin: Option<msgr2_engine::admin::AdminSocket>,
}

impl EngineServer {
    fn start(opts: &ServeOptions) -> Result<Self, BenchError> {
        let tids = Arc::new(Mutex::new(Vec::new()));
        let factory = |opts: &ServeOptions| {
            let (cpu, recycle, tids) = (opts.cpu.clone(), opts.recycle.clone(), tids.clone());
            move |core: usize| {
                let core = register(&cpu, &tids, core);
                Box::new(ServerDispatcher {
                    core,
                    cpu: cpu.clone(),
                    recycle: recycle.clone(),
                }) as Box<dyn Dispatcher>
            }
        };
        let name = EntityName::new(EntityType::Mon, "bench");
        let msgr2 = MessengerBuilder::new(name.clone())
            .bind(opts.listen.to_string().as_str())
            .cores(opts.cores.clone())
            .keyring((*opts.keys.keyring).clone())
            .modes(ModeConfig::all(vec![CON_MODE_CRC, CON_MODE_SECURE]))
            .compression(crate::bench::spec::server_compression())
            .limits(limits(opts.max_size))
            .dispatcher(factory(opts))
            .start()
            .map_err(start_err)?;
        let raw = MessengerBuilder::new(name)
            .raw(true)
            .bind(opts.raw_listen.to_string().as_str())
            .cores(opts.cores.clone())
            .limits(limits(opts.max_size))
            .dispatcher(factory(opts))
            .start()
            .map_err(start_err)?;
        let v2 = *msgr2
            .addrs()
            .msgr2()
            .ok_or_else(|| BenchError::Engine("server bound no v2 address".into()))?;
        let raw_sock = raw
            .addrs()
            .0
            .iter()
            .find_map(|a| a.sock)
            .ok_or_else(|| BenchError::Engine("raw server bound no address".into()))?;
        let admin = match &opts.admin_socket {
            Some(path) => {
                let a = msgr2_engine::admin::AdminSocket::bind(path)?;
                let name = EntityName::new(EntityType::Mon, "bench");
                let mut config = crate::asok::process_options(&name);
                config.push(("name".into(), name.to_string()));
                config.push(("admin_socket".into(), path.display().to_string()));
                config.push(("ms_mon_service_mode".into(), "crc secure".into()));
                config.push(("auth_service_required".into(), "cephx".into()));
                a.set_config(config);
                a.add_messenger("msgr2", &msgr2);
                a.add_messenger("raw", &raw);
                Some(a)
            }
            None => None,
        };
        Ok(Self {
            target: Target {
                msgr2: v2,
                raw: raw_sock,
            },
            msgr2,
            raw,
            admin,
        })
    }
}

impl Server for EngineServer {
    fn target(&self) -> Target {
        self.target.clone()
    }

    fn shutdown(self: Box<Self>) {
        if let Some(a) = self.admin {
            a.shutdown();
        }
        let _ = self.msgr2.shutdown();
        let _ = self.raw.shutdown();
    }
}

// ---------------------------------------------------------------- client

/// Rare events the cell's driver waits for.
#[derive(Default)]
struct Waits {
    connected: usize,
    drained: usize,
    stats: Option<ServerStats>,
    error: Option<String>,
}

/// What the client's dispatchers share with the driver.
struct ClientShared {
    /// Connection id → slot.
    index: OnceLock<HashMap<u64, usize>>,
    /// One workload per connection, touched by its owning core while the cell runs.
    slots: Vec<Mutex<Option<ConnWorkload>>>,
    template: Mutex<Arc<Vec<u8>>>,
    recycle: Option<Arc<PayloadPool>>,
    waits: Mutex<Waits>,
    cv: Condvar,
}

impl ClientShared {
    fn signal(&self, f: impl FnOnce(&mut Waits)) {
        if let Ok(mut w) = self.waits.lock() {
            f(&mut w);
        }
        self.cv.notify_all();
    }

    /// Waits until `done` gives a value (`Ok(None)` after `timeout`); an error recorded by a
    /// dispatcher ends the wait.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&mut Waits) -> Option<T>,
    ) -> Result<Option<T>, BenchError> {
        let deadline = Instant::now() + timeout;
        let mut w = self
            .waits
            .lock()
            .map_err(|_| BenchError::Engine("poisoned lock".into()))?;
        loop {
            if let Some(e) = w.error.take() {
                return Err(BenchError::Peer(e));
            }
            if let Some(v) = done(&mut w) {
                return Ok(Some(v));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            w = self
                .cv
                .wait_timeout(w, deadline - now)
                .map_err(|_| BenchError::Engine("poisoned lock".into()))?
                .0;
        }
    }

    /// [`ClientShared::wait_for`], a timeout being an error about `what`.
    fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        done: impl FnMut(&mut Waits) -> Option<T>,
    ) -> Result<T, BenchError> {
        self.wait_for(timeout, done)?
            .ok_or_else(|| BenchError::Peer(format!("timed out {what} after {timeout:?}")))
    }

    fn send_window(&self, conn: &ConnHandle, w: &mut ConnWorkload, template: &[u8]) {
        while let Some(tid) = w.next_send(Instant::now()) {
            let data = payload_for(self.recycle.as_deref(), template);
            if let Err(e) = conn.send(Kind::Data.message(tid, data)) {
                self.signal(|s| {
                    s.error.get_or_insert(format!("send: {e}"));
                });
                return;
            }
        }
    }
}

struct ClientDispatcher {
    shared: Arc<ClientShared>,
    core: Arc<CoreSlot>,
    template: Arc<Vec<u8>>,
}

impl Dispatcher for ClientDispatcher {
    fn on_message(&mut self, conn: &ConnHandle, msg: Message) {
        let sh = &self.shared;
        match Kind::from_msg_type(msg.header.msg_type) {
            Some(Kind::Reply) => {
                let now = Instant::now();
                self.core.msgs.fetch_add(1, Ordering::Relaxed);
                let Some(&slot) = sh.index.get().and_then(|m| m.get(&conn.id())) else {
                    return;
                };
                let Some(cell) = sh.slots.get(slot) else {
                    return;
                };
                let Ok(mut guard) = cell.lock() else { return };
                let Some(w) = guard.as_mut() else { return };
                if let Err(e) = w.on_reply(msg.header.tid, now) {
                    sh.signal(|s| {
                        s.error.get_or_insert(e.to_string());
                    });
                    return;
                }
                if w.size() as usize != self.template.len() {
                    if let Ok(t) = sh.template.lock() {
                        self.template = t.clone();
                    }
                }
                sh.send_window(conn, w, &self.template);
                if w.drained() {
                    sh.signal(|s| s.drained += 1);
                }
            }
            Some(Kind::StatsReply) => {
                let r = parse_stats_reply(&msg.data);
                sh.signal(|s| match r {
                    Ok(v) => s.stats = Some(v),
                    Err(e) => {
                        s.error.get_or_insert(e.to_string());
                    }
                });
            }
            other => {
                let what = format!("server sent {other:?} (type {})", msg.header.msg_type);
                sh.signal(|s| {
                    s.error.get_or_insert(what);
                });
            }
        }
    }

    fn on_connect(&mut self, _conn: &ConnHandle, _peer: &PeerInfo) {
        self.shared.signal(|s| s.connected += 1);
    }

    fn on_reset(&mut self, conn: &ConnHandle, error: &msgr2_engine::ConnError) {
        let what = format!("connection {} failed: {error}", conn.id());
        self.shared.signal(|s| {
            s.error.get_or_insert(what);
        });
    }
}

struct EngineClient {
    messenger: Option<Messenger>,
    conns: Vec<ConnHandle>,
    shared: Arc<ClientShared>,
    cpu: Arc<CpuSide>,
    tids: Arc<Mutex<Vec<i32>>>,
}

impl EngineClient {
    fn connect(target: &Target, mode: Mode, opts: &ConnectOptions) -> Result<Self, BenchError> {
        let n = opts.conns.max(1);
        let shared = Arc::new(ClientShared {
            index: OnceLock::new(),
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            template: Mutex::new(Arc::new(Vec::new())),
            recycle: opts.recycle.clone(),
            waits: Mutex::new(Waits::default()),
            cv: Condvar::new(),
        });
        let tids = Arc::new(Mutex::new(Vec::new()));
        let factory = {
            let (shared, cpu, tids) = (shared.clone(), opts.cpu.clone(), tids.clone());
            move |core: usize| {
                let core = register(&cpu, &tids, core);
                Box::new(ClientDispatcher {
                    core,
                    shared: shared.clone(),
                    template: Arc::new(Vec::new()),
                }) as Box<dyn Dispatcher>
            }
        };
        let mut b = MessengerBuilder::new(opts.keys.client.clone())
            .cores(opts.cores.clone())
            .limits(limits(opts.max_size))
            .dispatcher(factory);
        let peer = match mode.con_mode() {
            None => {
                b = b.raw(true);
                EntityAddrVec(vec![EntityAddr::new(AddrType::Msgr2, target.raw, 0)])
            }
            Some(m) => {
                b = b
                    .keyring((*opts.keys.keyring).clone())
                    .modes(ModeConfig::all(vec![m]))
                    .compression(mode.client_compression());
                EntityAddrVec(vec![target.msgr2])
            }
        };
        let messenger = b.start().map_err(start_err)?;
        let mut me = Self {
            messenger: None,
            conns: Vec::with_capacity(n),
            shared: shared.clone(),
            cpu: opts.cpu.clone(),
            tids,
        };
        for _ in 0..n {
            me.conns.push(
                messenger
                    .connect(&peer, EntityType::Mon)
                    .map_err(engine_err)?,
            );
        }
        me.messenger = Some(messenger);
        let index = me
            .conns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id(), i))
            .collect();
        let _ = shared.index.set(index);
        shared.wait(CONNECT_TIMEOUT, "connecting", |w| {
            (w.connected >= n).then_some(())
        })?;
        if let Some(want) = mode.con_mode() {
            for c in &me.conns {
                let got = c.peer_info().map(|i| i.con_mode);
                let comp = c.peer_info().and_then(|i| i.compression);
                if got != Some(want) || comp != mode.compression() {
                    return Err(BenchError::Peer(format!(
                        "negotiated mode {got:?} (compression {comp:?}) instead of {mode}"
                    )));
                }
            }
        }
        Ok(me)
    }
}

impl ClientConns for EngineClient {
    fn io_counts(&self) -> Option<IoCounts> {
        let c = self.messenger.as_ref()?.counters();
        Some(IoCounts {
            enters: c.ring_enters,
            send_ops: c.send_ops,
            sleeps: c.reactor_sleeps,
        })
    }

    fn server_stats(&mut self) -> Result<ServerStats, BenchError> {
        let c = self
            .conns
            .first()
            .ok_or_else(|| BenchError::Usage("no connections".into()))?;
        self.shared.signal(|s| s.stats = None);
        c.send(Kind::Stats.message(0, Vec::new()))
            .map_err(engine_err)?;
        self.shared
            .wait(STALL_TIMEOUT, "for the server's CPU figure", |w| {
                w.stats.take()
            })
    }

    fn run(&mut self, workloads: Vec<ConnWorkload>) -> Result<Vec<ConnWorkload>, BenchError> {
        let n = workloads.len().min(self.conns.len());
        let size = workloads.first().map_or(0, |w| w.size() as usize);
        let template = Arc::new(super::payload(size));
        if let Ok(mut t) = self.shared.template.lock() {
            *t = template.clone();
        }
        self.shared.signal(|s| s.drained = 0);
        // Park every workload first, then open the windows: replies may come back at once.
        for (slot, w) in self.shared.slots.iter().zip(workloads) {
            if let Ok(mut g) = slot.lock() {
                *g = Some(w);
            }
        }
        for (slot, c) in self.shared.slots.iter().zip(&self.conns) {
            if let Ok(mut g) = slot.lock() {
                if let Some(w) = g.as_mut() {
                    self.shared.send_window(c, w, &template);
                }
            }
        }
        // Wait until every connection drained, failing if the server stops answering.
        let total_msgs = |sh: &ClientShared| -> u64 {
            sh.slots
                .iter()
                .filter_map(|s| s.lock().ok().and_then(|g| g.as_ref().map(|w| w.msgs)))
                .sum()
        };
        let mut last = total_msgs(&self.shared);
        let mut idle_since = Instant::now();
        let r = loop {
            match self
                .shared
                .wait_for(Duration::from_secs(1), |w| (w.drained >= n).then_some(()))
            {
                Ok(Some(())) => break Ok(()),
                Ok(None) => {
                    let now = total_msgs(&self.shared);
                    if now != last {
                        last = now;
                        idle_since = Instant::now();
                    } else if idle_since.elapsed() >= STALL_TIMEOUT {
                        break Err(BenchError::Peer(format!(
                            "no reply from the server for {STALL_TIMEOUT:?}"
                        )));
                    }
                }
                Err(e) => break Err(e),
            }
        };
        r?;
        Ok(self
            .shared
            .slots
            .iter()
            .filter_map(|s| s.lock().ok().and_then(|mut g| g.take()))
            .collect())
    }
}

impl Drop for EngineClient {
    fn drop(&mut self) {
        if let Some(m) = self.messenger.take() {
            let _ = m.shutdown();
        }
        if let Ok(t) = self.tids.lock() {
            for &tid in t.iter() {
                self.cpu.forget(tid);
            }
        }
    }
}
