//! Delay and reordering without `tc netem`: a userspace NFQUEUE listener.
//!
//! This kernel has no `sch_netem` (and no modules to load), so the router namespace hands
//! every forwarded packet to NFQUEUE (`iptables -j NFQUEUE --queue-bypass`, see
//! `tests/netns/netns.sh impair --queue`). This thread enters the router's namespace, binds
//! the queue over netfilter netlink, and gives each packet its `NF_ACCEPT` verdict only once
//! the packet's delay has passed: `delay` plus a uniformly random `jitter`. NFQUEUE takes
//! verdicts in any order and re-injects packets in verdict order, so packets whose jitter
//! differs by more than their gap overtake each other: real IP-level reordering that TCP must
//! sort out. Only packet metadata is copied to userspace (`NFQNL_COPY_META`), and GSO packets
//! are queued whole (`NFQA_CFG_F_GSO`), so the cost per packet is small.
//!
//! The protocol is plain netlink (`linux/netfilter/nfnetlink_queue.h`), spoken through
//! `rustix` without `unsafe`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{
    bind, recv, sendto, socket_with, sockopt, AddressFamily, RecvFlags, SendFlags, SocketFlags,
    SocketType,
};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_META: u8 = 1;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NFQA_CFG_F_GSO: u32 = 4;
const NF_ACCEPT: u32 = 1;
/// Packets the kernel may hold for us before it fails open (accepts without waiting).
const QUEUE_MAXLEN: u32 = 16_384;

/// What the delayer did, readable while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Packets received from the queue.
    pub packets: AtomicU64,
    /// Packets released before one that arrived earlier (overtakers).
    pub reordered: AtomicU64,
    /// Most packets held at once.
    pub max_held: AtomicU64,
}

/// A running delayer; [`Delayer::stop`] (or drop) releases every held packet and unbinds.
pub struct Delayer {
    stop: Arc<AtomicBool>,
    /// Live counters.
    pub stats: Arc<Stats>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl Delayer {
    /// Starts delaying queue `queue` of the network namespace `/run/netns/{netns}` by
    /// `delay` + uniform `[0, jitter]` per packet. Returns once the queue is bound (or failed).
    pub fn start(netns: &str, queue: u16, delay: Duration, jitter: Duration) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{netns}");
        let (st, sp) = (stats.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("nfqueue-{queue}"))
            .spawn(move || {
                let sock = match setup(&path, queue) {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                let r = run(&sock, queue, delay, jitter, &sp, &st);
                let _ = send_config(&sock, queue, &[cmd_attr(NFQNL_CFG_CMD_UNBIND)]);
                r
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop,
                stats,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("nfqueue thread died during setup")),
        }
    }

    /// Releases everything held, unbinds the queue and returns the thread's result.
    pub fn stop(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("nfqueue thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Enters the namespace, opens the netlink socket and configures the queue.
fn setup(netns_path: &str, queue: u16) -> io::Result<OwnedFd> {
    let ns = File::open(netns_path)?;
    // Only this thread moves; the rest of the test process stays where it is.
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
    let sock = socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(netlink::NETFILTER),
    )?;
    bind(&sock, &SocketAddrNetlink::new(0, 0))?;
    if sockopt::set_socket_recv_buffer_size_force(&sock, 16 << 20).is_err() {
        sockopt::set_socket_recv_buffer_size(&sock, 16 << 20)?;
    }
    send_config(&sock, queue, &[cmd_attr(NFQNL_CFG_CMD_BIND)])?;
    let mut params = 0u32.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_META);
    let flags = NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN;
    send_config(
        &sock,
        queue,
        &[
            (NFQA_CFG_PARAMS, params),
            (NFQA_CFG_QUEUE_MAXLEN, QUEUE_MAXLEN.to_be_bytes().to_vec()),
            (NFQA_CFG_FLAGS, flags.to_be_bytes().to_vec()),
            (NFQA_CFG_MASK, flags.to_be_bytes().to_vec()),
        ],
    )?;
    Ok(sock)
}

fn cmd_attr(cmd: u8) -> (u16, Vec<u8>) {
    // struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
    (NFQA_CFG_CMD, vec![cmd, 0, 0, 0])
}

/// Appends one netlink message: header, `nfgenmsg` for `queue`, attributes.
fn push_msg(buf: &mut Vec<u8>, msg_type: u16, flags: u16, queue: u16, attrs: &[(u16, Vec<u8>)]) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]); // nlmsg_len, patched below
    buf.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg_type).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // seq
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
                                                // struct nfgenmsg { u8 family (AF_UNSPEC); u8 version (NFNETLINK_V0); be16 res_id; }
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&queue.to_be_bytes());
    for (ty, data) in attrs {
        let len = 4 + data.len();
        buf.extend_from_slice(&(len as u16).to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(data);
        buf.resize(buf.len() + (4 - len % 4) % 4, 0);
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn kernel() -> SocketAddrNetlink {
    SocketAddrNetlink::new(0, 0)
}

/// Sends a config message and waits for the kernel's ack (packets that arrive meanwhile are
/// not expected: the queue is configured before traffic starts).
fn send_config(sock: &OwnedFd, queue: u16, attrs: &[(u16, Vec<u8>)]) -> io::Result<()> {
    let mut msg = Vec::new();
    push_msg(
        &mut msg,
        NFQNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        queue,
        attrs,
    );
    sendto(sock, &msg, SendFlags::empty(), &kernel())?;
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if !wait_readable(sock, deadline.saturating_duration_since(Instant::now()))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no ack from nfnetlink_queue",
            ));
        }
        let (_, n) = recv(sock, &mut buf[..], RecvFlags::DONTWAIT)?;
        for (ty, body) in messages(&buf[..n]) {
            if ty == NLMSG_ERROR && body.len() >= 4 {
                let err = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                return if err == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-err))
                };
            }
        }
    }
}

/// The netlink messages of one datagram: (type, body after the 16-byte header).
fn messages(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            break;
        }
        out.push((u16::from_ne_bytes([buf[4], buf[5]]), &buf[16..len]));
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    out
}

/// The packet id of an `NFQNL_MSG_PACKET` body (after `nfgenmsg`).
fn packet_id(body: &[u8]) -> Option<u32> {
    let mut attrs = body.get(4..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == NFQA_PACKET_HDR && len >= 8 {
            return Some(u32::from_be_bytes([attrs[4], attrs[5], attrs[6], attrs[7]]));
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

fn wait_readable(sock: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    match poll(&mut fds, Some(&ts)) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// xorshift64*: jitter needs no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Receives packets, holds each until its release time, then accepts it.
fn run(
    sock: &OwnedFd,
    queue: u16,
    delay: Duration,
    jitter: Duration,
    stop: &AtomicBool,
    stats: &Stats,
) -> io::Result<()> {
    let t0 = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()) << 17 | 1);
    // (release time since t0 in ns, arrival sequence, packet id), soonest first.
    let mut held: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut max_released_seq: Option<u64> = None;
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(64 * 32);
    let jitter_ns = jitter.as_nanos() as u64;
    let delay_ns = delay.as_nanos() as u64;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now = t0.elapsed().as_nanos() as u64;
        // Release what is due (everything when stopping), verdicts batched into one datagram.
        while let Some(&Reverse((at, s, id))) = held.peek() {
            if at > now && !stopping {
                break;
            }
            held.pop();
            if max_released_seq.is_some_and(|m| s < m) {
                stats.reordered.fetch_add(1, Ordering::Relaxed);
            }
            max_released_seq = Some(max_released_seq.map_or(s, |m| m.max(s)));
            let mut v = NF_ACCEPT.to_be_bytes().to_vec();
            v.extend_from_slice(&id.to_be_bytes());
            push_msg(
                &mut out,
                NFQNL_MSG_VERDICT,
                NLM_F_REQUEST,
                queue,
                &[(NFQA_VERDICT_HDR, v)],
            );
            if out.len() >= 60 * 32 {
                sendto(sock, &out, SendFlags::empty(), &kernel())?;
                out.clear();
            }
        }
        if !out.is_empty() {
            sendto(sock, &out, SendFlags::empty(), &kernel())?;
            out.clear();
        }
        if stopping {
            return Ok(());
        }
        let wait = held.peek().map_or(Duration::from_millis(20), |r| {
            Duration::from_nanos(r.0 .0.saturating_sub(now)).min(Duration::from_millis(20))
        });
        if !wait_readable(sock, wait)? {
            continue;
        }
        // Drain what is queued without blocking.
        loop {
            let n = match recv(sock, &mut buf[..], RecvFlags::DONTWAIT) {
                Ok((_, n)) => n,
                Err(rustix::io::Errno::AGAIN) => break,
                // The socket overflowed: those packets were dropped by the kernel (loss).
                Err(rustix::io::Errno::NOBUFS) => continue,
                Err(e) => return Err(e.into()),
            };
            let arrived = t0.elapsed().as_nanos() as u64;
            for (ty, body) in messages(&buf[..n]) {
                if ty != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                    continue;
                }
                let Some(id) = packet_id(body) else { continue };
                let at = arrived + delay_ns + rng.below(jitter_ns + 1);
                held.push(Reverse((at, seq, id)));
                seq += 1;
                stats.packets.fetch_add(1, Ordering::Relaxed);
            }
            stats
                .max_held
                .fetch_max(held.len() as u64, Ordering::Relaxed);
        }
    }
}
