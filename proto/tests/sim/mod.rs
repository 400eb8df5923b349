//! A deterministic network simulator for msgr2 sessions: nodes (each a [`Config`] and the
//! connections it holds), TCP links made of two byte pipes, a simulated clock, and a script of
//! faults per link: cut after N delivered bytes, cut when one side transmits in a given state,
//! one-way delay, chunking, black holes (bytes vanish, no EOF), and duplicated connection
//! attempts (the client's bytes replayed on a second socket). No sockets, no threads, no wall
//! clock: the same script gives the same run.
//!
//! The simulator plays the embedder as the engine does: it answers [`Event::Lookup`] from
//! the node's [`SessionTable`] (the holder must still [`Lookup::matches`]), dials [`Event::Reconnect`] after the delay, drops
//! connections whose session moved, and routes the application's messages to the connection
//! that holds the session with the destination node (dialling one when there is none).

#![allow(dead_code, clippy::unwrap_used)]

mod conns;
mod step;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
use msgr2_codec::banner::Revision;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::{FrameDecoder, Limits, Tag};
use msgr2_codec::payload::Control;
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::session_table::registrable;
use msgr2_proto::{Config, Connection, Event, ExistingFate, Message, PolicySet, SessionTable};

/// Which end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The dialling end.
    Client,
    /// The accepting end.
    Server,
}

/// Faults for one link (links take plans in creation order; later links are reliable).
#[derive(Debug, Clone, Default)]
pub struct LinkPlan {
    /// Cut the link once this many bytes (both directions together) were delivered.
    pub cut_after: Option<usize>,
    /// Cut the link when `side` transmits while in state `.1` (those bytes are lost).
    pub cut_on_tx: Option<(Side, &'static str)>,
    /// One-way delay of every byte.
    pub delay: Duration,
    /// Deliver in pieces of at most this many bytes (0: as sent).
    pub chunk: usize,
    /// Bytes vanish and no EOF ever arrives.
    pub blackhole: bool,
    /// The network duplicates the connection attempt: the client's bytes are also replayed
    /// to a second accepted socket whose answers go nowhere.
    pub duplicate: bool,
    /// Cut the link at this time after the start (bytes in flight are lost).
    pub cut_at: Option<Duration>,
    /// From this time after the start, bytes vanish and no EOF arrives (the peer died
    /// without the network telling anyone).
    pub silence_at: Option<Duration>,
}

impl LinkPlan {
    /// Cut after `n` bytes.
    pub fn cut(n: usize) -> Self {
        Self {
            cut_after: Some(n),
            ..Default::default()
        }
    }
    /// Cut when `side` transmits in `state`.
    pub fn cut_on(side: Side, state: &'static str) -> Self {
        Self {
            cut_on_tx: Some((side, state)),
            ..Default::default()
        }
    }
}

/// A frame seen on the wire (crc mode), for transcript assertions.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Simulated time.
    pub at: Duration,
    /// Link number.
    pub link: usize,
    /// Sending node.
    pub from: usize,
    /// Receiving node.
    pub to: usize,
    /// Tag.
    pub tag: Tag,
    /// The decoded control payload (`None` for MESSAGE).
    pub control: Option<Control>,
}

struct Pipe {
    q: VecDeque<(Instant, Vec<u8>)>,
    /// The sender closed its socket: after the queue drains the receiver sees EOF.
    fin: bool,
    tap: Tap,
}

/// A passive crc-mode frame decoder on one direction of a link.
struct Tap {
    banner: Vec<u8>,
    dec: Option<FrameDecoder>,
    broken: bool,
}

impl Tap {
    fn new() -> Self {
        Self {
            banner: Vec::new(),
            dec: None,
            broken: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Vec<(Tag, Option<Control>)> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        while self.dec.is_none() {
            let want = if self.banner.len() < 10 {
                10
            } else {
                10 + u16::from_le_bytes([self.banner[8], self.banner[9]]) as usize
            };
            let n = (want - self.banner.len()).min(data.len());
            self.banner.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.banner.len() > 10 && self.banner.len() == want {
                self.dec = Some(FrameDecoder::new(Revision::Rev1, Limits::default()));
            } else if data.is_empty() {
                return out;
            }
        }
        let Some(dec) = self.dec.as_mut() else {
            return out;
        };
        while !data.is_empty() {
            match dec.feed(data) {
                Ok((used, f)) => {
                    data = &data[used..];
                    if let Some(f) = f {
                        let tag = f.tag();
                        let c = if tag == Tag::Message {
                            None
                        } else {
                            Control::decode(tag, f.segment(0)).ok()
                        };
                        out.push((tag, c));
                    }
                }
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        out
    }
}

struct Link {
    client: (usize, usize),
    server: (usize, usize),
    /// A duplicated attempt's second server socket (receives the client's bytes too).
    ghost: Option<(usize, usize)>,
    /// 0: client → server, 1: server → client.
    pipes: [Pipe; 2],
    plan: LinkPlan,
    delivered: usize,
    /// Each side closed its socket.
    closed: [bool; 2],
    /// Each side was told EOF.
    eof: [bool; 2],
}

struct Slot {
    conn: Connection,
    link: Option<usize>,
    side: Side,
    peer: usize,
    gone: bool,
    reconnect_at: Option<Instant>,
    ghost: bool,
    /// The slot this one's session moved to on reconnect.
    successor: Option<usize>,
}

/// What the application at a node observed.
#[derive(Debug, Default, Clone)]
pub struct AppLog {
    /// Message ids received, per sending node, in arrival order.
    pub received: BTreeMap<usize, Vec<u64>>,
    /// Reset events: (peer node, remote, dropped, connection slot).
    pub resets: Vec<(usize, bool, usize, usize)>,
    /// Ready events: (peer node, reconnected).
    pub readies: Vec<(usize, bool)>,
    /// Lookups answered: (fate, error).
    pub lookups: Vec<Result<ExistingFate, String>>,
    /// Errors the connections reported (as text).
    pub errors: Vec<String>,
}

/// One simulated process.
pub struct Node {
    /// Entity name.
    pub name: EntityName,
    /// Its configuration.
    pub config: Arc<Config>,
    /// Its listening msgr2 address, if it listens.
    pub addr: Option<EntityAddr>,
    slots: Vec<Slot>,
    /// Which slot holds the session with a peer address (as the engine's registry).
    sessions: SessionTable<usize>,
    /// What its application saw.
    pub app: AppLog,
    /// For each message id sent to a node: the slot it was handed to.
    pub sent_on: BTreeMap<(usize, u64), usize>,
}

/// The simulator.
pub struct Sim {
    base: Instant,
    /// Current simulated time.
    pub now: Instant,
    /// The nodes.
    pub nodes: Vec<Node>,
    links: Vec<Link>,
    plans: VecDeque<LinkPlan>,
    sends: Vec<(Instant, usize, usize, u64)>,
    backlog: Vec<(usize, usize, u64)>,
    /// Frames delivered, in order.
    pub wire: Vec<Wire>,
    /// A human-readable trace (for failure messages).
    pub trace: Vec<String>,
    /// Stop tracing after this many lines (keeps property tests cheap).
    pub trace_limit: usize,
}

/// A message from `from` to `to` with id `id` (16-byte front).
pub fn msg(from: usize, to: usize, id: u64) -> Message {
    let mut front = Vec::with_capacity(16);
    front.extend_from_slice(&(from as u32).to_le_bytes());
    front.extend_from_slice(&(to as u32).to_le_bytes());
    front.extend_from_slice(&id.to_le_bytes());
    Message::new(0x7fff, 1, 1, front)
}

fn decode(m: &Message) -> Option<(usize, usize, u64)> {
    let f = &m.front;
    if f.len() != 16 {
        return None;
    }
    let from = u32::from_le_bytes(f[0..4].try_into().ok()?) as usize;
    let to = u32::from_le_bytes(f[4..8].try_into().ok()?) as usize;
    let id = u64::from_le_bytes(f[8..16].try_into().ok()?);
    Some((from, to, id))
}

fn two_mut<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    assert_ne!(i, j);
    if i < j {
        let (a, b) = v.split_at_mut(j);
        (&mut a[i], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(i);
        (&mut b[0], &mut a[j])
    }
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    /// An empty simulation at time zero.
    pub fn new() -> Self {
        let base = Instant::now();
        Self {
            base,
            now: base,
            nodes: Vec::new(),
            links: Vec::new(),
            plans: VecDeque::new(),
            sends: Vec::new(),
            backlog: Vec::new(),
            wire: Vec::new(),
            trace: Vec::new(),
            trace_limit: 20_000,
        }
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn log(&mut self, s: impl FnOnce() -> String) {
        if self.trace.len() < self.trace_limit {
            let t = self.elapsed().as_secs_f64();
            self.trace.push(format!("{t:9.3} {}", s()));
        }
    }

    /// The trace as one string.
    pub fn dump(&self) -> String {
        self.trace.join("\n")
    }

    /// Adds a node named `name` (e.g. `osd.1`) with `policies`; `listen`: it binds a msgr2
    /// address (port 6800 + index, nonce 1000 + index). `tweak` adjusts the config.
    pub fn add_node(
        &mut self,
        name: &str,
        policies: PolicySet,
        listen: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> usize {
        let idx = self.nodes.len();
        let name: EntityName = name.parse().unwrap();
        let mut c = Config::new(name.clone());
        c.gid.set(name.num().unwrap_or(idx as i64));
        c.nonce = 2000 + idx as u32;
        // cookies from a per-node seed: a schedule replays exactly
        c.random = msgr2_proto::config::RandomSource::seeded(0x5eed_0000 + idx as u64);
        c.client_auth = Some(Arc::new(NoneClientProvider::new(name.clone())));
        c.server_auth = Some(Arc::new(NoneServerProvider::new(4000 + idx as u64)));
        c.policies = policies;
        c.session_lookup = true;
        let addr = listen.then(|| {
            EntityAddr::new(
                AddrType::Msgr2,
                SocketAddr::from(([127, 0, 0, 1], 6800 + idx as u16)),
                1000 + idx as u32,
            )
        });
        if let Some(a) = addr {
            c.my_addrs = EntityAddrVec(vec![a]);
        }
        tweak(&mut c);
        self.nodes.push(Node {
            name,
            config: Arc::new(c),
            addr,
            slots: Vec::new(),
            sessions: SessionTable::new(),
            app: AppLog::default(),
            sent_on: BTreeMap::new(),
        });
        idx
    }

    /// Fault plans for the next links, in creation order.
    pub fn plan(&mut self, plans: impl IntoIterator<Item = LinkPlan>) {
        self.plans.extend(plans);
    }

    /// Has `from`'s application send `id` to `to` as soon as a session with `to` exists
    /// (without dialling).
    pub fn send_later(&mut self, from: usize, to: usize, id: u64) {
        self.backlog.push((from, to, id));
    }

    /// From now on the network is reliable: pending plans are dropped and live links lose
    /// their remaining faults (bytes already lost stay lost).
    pub fn heal(&mut self) {
        self.log(|| "network healed".into());
        self.plans.clear();
        for l in &mut self.links {
            l.plan.cut_after = None;
            l.plan.cut_on_tx = None;
            l.plan.blackhole = false;
            l.plan.duplicate = false;
            l.plan.cut_at = None;
            l.plan.silence_at = None;
        }
    }

    /// Cuts the link carrying `node`'s session with `peer` now.
    pub fn cut_session_link(&mut self, node: usize, peer: usize) {
        if let Some(l) = self
            .session_slot(node, peer)
            .and_then(|i| self.nodes[node].slots[i].link)
        {
            self.cut(l);
        }
    }

    /// Has `from`'s application send message `id` to `to` now. Towards a node that does
    /// not listen and with no session yet, the application holds the message until the peer
    /// connects.
    pub fn send(&mut self, from: usize, to: usize, id: u64) {
        let slot = match self.session_slot(from, to) {
            Some(s) => s,
            None if self.nodes[to].addr.is_none() => {
                self.log(|| format!("n{from} app holds #{id} for n{to} (no session)"));
                self.backlog.push((from, to, id));
                return;
            }
            None => self.dial(from, to, None),
        };
        let r = self.nodes[from].slots[slot]
            .conn
            .send_message(msg(from, to, id));
        if let Err(e) = r {
            self.nodes[from].app.errors.push(format!("send {id}: {e}"));
        }
        self.nodes[from].sent_on.insert((to, id), slot);
        let st = self.nodes[from].slots[slot].conn.state();
        self.log(|| format!("n{from} app send #{id} → n{to} on slot {slot} ({st})"));
        self.drain_events(from, slot);
    }

    /// Schedules `from` to send `id` to `to` at `at` after the start.
    pub fn send_at(&mut self, at: Duration, from: usize, to: usize, id: u64) {
        self.sends.push((self.base + at, from, to, id));
        self.sends.sort_by_key(|s| s.0);
    }

    /// The slot at `from` holding the session with node `to`.
    fn session_slot(&self, from: usize, to: usize) -> Option<usize> {
        let n = &self.nodes[from];
        let mut found: Vec<usize> = (0..n.slots.len())
            .filter(|&i| {
                let s = &n.slots[i];
                !s.gone && s.peer == to && s.conn.holds_session()
            })
            .collect();
        found.sort_by_key(|&i| (n.slots[i].conn.is_ready(), i));
        found.last().copied()
    }

    /// Drops every connection and session of `node` (a restart with the same address).
    pub fn restart(&mut self, node: usize) {
        self.log(|| format!("n{node} RESTART"));
        for i in 0..self.nodes[node].slots.len() {
            self.drop_slot(node, i);
        }
    }

    fn next_gs(&mut self, node: usize) -> u64 {
        self.nodes[node].config.global_seq.next()
    }

    /// Runs until `until` after the start (or until nothing is left to happen).
    pub fn run_until(&mut self, until: Duration) {
        let end = self.base + until;
        let mut spins = 0u32;
        while self.now <= end {
            if self.step() {
                spins += 1;
                assert!(
                    spins < 1_000_000,
                    "simulation does not settle:\n{}",
                    self.tail()
                );
                continue;
            }
            spins = 0;
            match self.next_wakeup() {
                Some(t) if t <= end => self.now = t.max(self.now),
                _ => break,
            }
        }
        if self.now < end {
            self.now = end;
        }
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    /// The last 200 trace lines.
    pub fn tail(&self) -> String {
        let n = self.trace.len();
        self.trace[n.saturating_sub(200)..].join("\n")
    }

    /// Message ids `to` received from `from`.
    pub fn received(&self, to: usize, from: usize) -> Vec<u64> {
        self.nodes[to]
            .app
            .received
            .get(&from)
            .cloned()
            .unwrap_or_default()
    }

    /// The connection at `node` holding the session with `peer`, if any.
    pub fn session(&self, node: usize, peer: usize) -> Option<&Connection> {
        self.session_slot(node, peer)
            .map(|i| &self.nodes[node].slots[i].conn)
    }

    /// Whether `node` has a READY connection holding its session with `peer`.
    pub fn ready(&self, node: usize, peer: usize) -> bool {
        self.session(node, peer).is_some_and(|c| c.is_ready())
    }

    /// Control frames of `tag` seen on the wire (optionally only from `from`).
    pub fn frames(&self, tag: Tag) -> Vec<&Wire> {
        self.wire.iter().filter(|w| w.tag == tag).collect()
    }

    /// Number of links created so far.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The slot that finally carried the session `slot` of `node` had (following reconnects).
    pub fn last_carrier(&self, node: usize, mut slot: usize) -> usize {
        while let Some(n) = self.nodes[node].slots[slot].successor {
            slot = n;
        }
        slot
    }

    /// Messages the application still holds because no session exists.
    pub fn held(&self) -> usize {
        self.backlog.len()
    }

    /// Live (not dropped) connections at `node`.
    pub fn live(&self, node: usize) -> usize {
        self.nodes[node].slots.iter().filter(|s| !s.gone).count()
    }

    /// Mutable access to the connection holding `node`'s session with `peer`.
    pub fn session_mut(&mut self, node: usize, peer: usize) -> Option<&mut Connection> {
        let i = self.session_slot(node, peer)?;
        Some(&mut self.nodes[node].slots[i].conn)
    }
}

/// Policies for daemons talking to each other losslessly (OSD cluster network).
pub fn peers(p: msgr2_proto::Policy) -> PolicySet {
    PolicySet::new(p.clone()).with(EntityType::Osd, p)
}
