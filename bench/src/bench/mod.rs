//! `msgr2 bench`: throughput and latency of msgr2 crc and secure modes against a raw TCP
//! baseline moving the same bytes, in the same run.
//!
//! With no arguments it runs a loopback matrix (4 KiB, 64 KiB, 4 MiB × raw, crc, secure)
//! with the server and client in this process on different cores and prints one table row
//! per cell. `msgr2 bench server --listen …` and `msgr2 bench client --connect …` split the
//! two sides across processes or hosts with the same options and output.
//!
//! Workload: the client keeps `--depth` messages in flight on each of `--conns` connections;
//! each message is a data segment of the cell's size behind a small header; the server
//! answers each with a small reply carrying its tid. Latency is send → reply; throughput
//! counts payload bytes client → server (GB = 1e9 bytes). CPU seconds per GB come from the
//! per-thread CPU clocks of each side's threads ([`cpu`]). The transport is behind
//! [`transport::Transport`]; the workload, statistics and output code do not know which one
//! runs.

pub mod ceph_perf;
pub mod cpu;
pub mod error;
pub mod plot;
pub mod report;
pub mod spec;
pub mod tcp;
pub mod transport;
pub mod wire;
pub mod workload;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::{EntityAddr, EntityAddrVec};
use msgr2_codec::entity::{EntityName, EntityType};

use self::cpu::CpuSide;
use self::error::BenchError;
use self::report::{CellResult, Measure, RunInfo};
use self::spec::{size_label, Mode};
use self::transport::{
    BenchKeys, ConnectOptions, IoCounts, ServeOptions, Target, Transport, DEFAULT_TRANSPORT,
};
use self::workload::{new_histogram, ConnWorkload, PayloadPool, Progress};

/// Whether `msgr2_engine::tune_malloc_for_large_messages` took effect (reported in the JSON).
static MALLOC_TUNED: AtomicBool = AtomicBool::new(false);

/// Options of `msgr2 bench` (shared by its `server` and `client` forms).
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Run only one side (default: both, over loopback, in this process).
    #[command(subcommand)]
    side: Option<Side>,
    #[command(flatten)]
    opts: Opts,
}

/// The two-process forms.
#[derive(clap::Subcommand, Debug)]
enum Side {
    /// Serve bench clients until killed: msgr2 (crc and secure) on `--listen`, raw on
    /// `--raw-listen`.
    Server {
        /// msgr2 address vector to listen on, e.g. `[v2:0.0.0.0:3300/0]` (port 0 picks one).
        #[arg(long)]
        listen: String,
        /// Raw-mode `IP:PORT` (default: the msgr2 port + 1 on the same IP; ephemeral if the
        /// msgr2 port is 0).
        #[arg(long)]
        raw_listen: Option<String>,
        /// Act as Ceph's `ceph_perf_msgr_server` instead: `osd.0`, auth none, crc, answering
        /// every MOSDOp with Ceph's MOSDOpReply (msgr2 only, no raw listener).
        #[arg(long)]
        ceph_perf: bool,
        /// Serve Ceph's admin socket here (`ceph daemon PATH perf dump`), metavariables
        /// expanded for the server's entity (`mon.bench`; `osd.0` with `--ceph-perf`).
        #[arg(long, value_name = "PATH")]
        admin_socket: Option<String>,
    },
    /// Run the cells against a `msgr2 bench server`.
    Client {
        /// The server's msgr2 address, as `msgr2 bench server` printed it.
        #[arg(long)]
        connect: String,
        /// The server's raw-mode `IP:PORT` (default: msgr2 port + 1).
        #[arg(long)]
        raw_connect: Option<String>,
        /// Act as Ceph's `ceph_perf_msgr_client` instead: MOSDOp writes to an OSD-style
        /// server (Ceph's `ceph_perf_msgr_server` or ours), `--depth` as its concurrency.
        #[arg(long)]
        ceph_perf: bool,
        /// `--ceph-perf`: connections, one job each.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// `--ceph-perf`: ops per job.
        #[arg(long, default_value_t = 10_000)]
        ios: u64,
        /// `--ceph-perf`: data bytes per op (K/M/G: binary units).
        #[arg(long, default_value = "4K")]
        size: String,
        /// `--ceph-perf`: seconds to wait for the last replies.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(clap::Args, Debug)]
struct Opts {
    /// Message sizes (bytes, or with K/M/G: binary units).
    #[arg(long, global = true, default_value = "4K,64K,4M")]
    sizes: String,
    /// Modes to run: `tcp` (the kernel's ceiling: a plain socket pair, loopback only), `raw`
    /// (our engine without msgr2, the baseline of the ×raw ratios), `crc`, `secure`.
    #[arg(long, global = true, default_value = "tcp,raw,crc,secure")]
    modes: String,
    /// Connections per cell.
    #[arg(long, global = true, default_value_t = 1)]
    conns: usize,
    /// Messages in flight per connection.
    #[arg(long, global = true, default_value_t = 16)]
    depth: usize,
    /// Seconds per cell.
    #[arg(long, global = true, default_value_t = 5.0)]
    duration: f64,
    /// CPUs to use (`0,1`, `0-3`); a loopback run gives the first half to the server and the
    /// rest to the client. Default: every CPU this process may use.
    #[arg(long, global = true)]
    cores: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Draw throughput and latency against size, per mode, into this SVG file.
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    /// Round trips at depth 1 (latency) instead of streaming at `--depth`.
    #[arg(long, global = true)]
    ping_pong: bool,
    /// How bytes move: `engine` (io_uring) or `blocking` (std threads and sockets).
    #[arg(long, global = true, default_value = DEFAULT_TRANSPORT)]
    transport: String,
    /// Keyring holding `client.bench`'s key (default: a fresh key for a loopback run, the
    /// well-known bench key for server/client runs).
    #[arg(long, global = true)]
    keyring: Option<PathBuf>,
}

/// A validated run plan.
#[derive(Debug, Clone)]
struct Plan {
    sizes: Vec<u64>,
    modes: Vec<Mode>,
    conns: usize,
    depth: usize,
    duration: Duration,
}

impl Opts {
    fn plan(&self) -> Result<Plan, BenchError> {
        let sizes = spec::parse_sizes(&self.sizes)?;
        let mut modes = spec::parse_modes(&self.modes)?;
        // Raw first, so every row can show its ratio as soon as it is printed.
        modes.sort();
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 86_400.0) {
            return Err(BenchError::Usage(format!(
                "--duration {} (expected seconds > 0)",
                self.duration
            )));
        }
        if self.conns == 0 || self.conns > 4096 {
            return Err(BenchError::Usage("--conns must be 1..=4096".into()));
        }
        if self.depth == 0 || self.depth > 65_536 {
            return Err(BenchError::Usage("--depth must be 1..=65536".into()));
        }
        let depth = if self.ping_pong { 1 } else { self.depth };
        let in_flight = sizes
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            .saturating_mul((depth * self.conns) as u64);
        if in_flight > 8 << 30 {
            return Err(BenchError::Usage(format!(
                "{} in flight (size × depth × conns) is over 8 GiB",
                size_label(in_flight)
            )));
        }
        Ok(Plan {
            sizes,
            modes,
            conns: self.conns,
            depth,
            duration: Duration::from_secs_f64(self.duration),
        })
    }

    fn cores(&self) -> Result<Vec<usize>, BenchError> {
        match &self.cores {
            Some(s) => spec::parse_cores(s),
            None => Ok(cpu::allowed_cpus()),
        }
    }
}

/// Runs `msgr2 bench` as the command line asked.
/// `ceph` holds Ceph's flags: the conf they find names a server's admin socket when
/// `--admin-socket` does not.
pub fn run(a: BenchArgs, ceph: &msgr2_conf::CephArgs) -> Result<(), String> {
    // Large messages: keep freed multi-MiB buffers on the heap for the next message instead of
    // page-faulting fresh mmaps in (what a daemon moving large messages would do too).
    if std::env::var_os("MSGR2_NO_MALLOC_TUNING").is_none() {
        MALLOC_TUNED.store(
            msgr2_engine::tune_malloc_for_large_messages(),
            Ordering::Relaxed,
        );
    }
    let r = match &a.side {
        None => run_local(&a.opts),
        Some(Side::Server {
            listen,
            ceph_perf,
            admin_socket,
            ..
        }) if *ceph_perf => server_admin_socket(admin_socket, ceph, &CEPH_PERF_SERVER)
            .and_then(|p| run_ceph_perf_server(&a.opts, listen, p.as_deref())),
        Some(Side::Server {
            listen,
            raw_listen,
            admin_socket,
            ..
        }) => server_admin_socket(admin_socket, ceph, &BENCH_SERVER)
            .and_then(|p| run_server(&a.opts, listen, raw_listen.as_deref(), p.as_deref())),
        Some(Side::Client {
            connect,
            ceph_perf: true,
            jobs,
            ios,
            size,
            timeout,
            ..
        }) => run_ceph_perf_client(&a.opts, connect, *jobs, *ios, size, *timeout),
        Some(Side::Client {
            connect,
            raw_connect,
            ..
        }) => run_client(&a.opts, connect, raw_connect.as_deref()),
    };
    r.map_err(|e| e.to_string())
}

fn keys(opts: &Opts, local: bool) -> Result<BenchKeys, BenchError> {
    match &opts.keyring {
        Some(p) => BenchKeys::from_keyring(p),
        None if local => BenchKeys::generate(),
        None => Ok(BenchKeys::well_known()),
    }
}

fn run_local(opts: &Opts) -> Result<(), BenchError> {
    let plan = opts.plan()?;
    let transport = transport::by_name(&opts.transport)?;
    let (server_cores, client_cores) = spec::split_cores(&opts.cores()?);
    let keys = keys(opts, true)?;
    let max_size = plan.sizes.iter().copied().max().unwrap_or(0);
    // Room for every connection's window of the largest size, twice.
    let pool = PayloadPool::new(
        (max_size as usize)
            .saturating_mul(plan.depth * plan.conns * 2)
            .min(1 << 30),
    );
    let server = transport.serve(&ServeOptions {
        listen: parse_addrvec("[v2:127.0.0.1:0/0]")?,
        raw_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cores: server_cores.clone(),
        keys: keys.clone(),
        cpu: CpuSide::new(),
        max_size,
        recycle: Some(pool.clone()),
        admin_socket: None,
    })?;
    let target = server.target();
    let info = RunInfo {
        role: "local",
        transport: transport.name(),
        conns: plan.conns,
        depth: plan.depth,
        duration_s: plan.duration.as_secs_f64(),
        ping_pong: opts.ping_pong,
        server_cores,
        client_cores: client_cores.clone(),
        malloc_tuned: MALLOC_TUNED.load(Ordering::Relaxed),
    };
    let copts = ConnectOptions {
        conns: plan.conns,
        cores: client_cores,
        keys,
        cpu: CpuSide::new(),
        max_size,
        recycle: Some(pool),
    };
    let r = run_cells(transport.as_ref(), &target, &plan, &copts, &info, opts);
    server.shutdown();
    r
}

fn run_client(opts: &Opts, connect: &str, raw_connect: Option<&str>) -> Result<(), BenchError> {
    let plan = opts.plan()?;
    let transport = transport::by_name(&opts.transport)?;
    let msgr2 = target_addr(connect)?;
    let sock = msgr2
        .sock
        .ok_or_else(|| BenchError::Usage(format!("--connect {connect:?} has no IP and port")))?;
    let raw = match raw_connect {
        Some(s) => parse_sock(s, "--raw-connect")?,
        None => SocketAddr::new(sock.ip(), sock.port().wrapping_add(1)),
    };
    let cores = opts.cores()?;
    let info = RunInfo {
        role: "client",
        transport: transport.name(),
        conns: plan.conns,
        depth: plan.depth,
        duration_s: plan.duration.as_secs_f64(),
        ping_pong: opts.ping_pong,
        server_cores: Vec::new(),
        client_cores: cores.clone(),
        malloc_tuned: MALLOC_TUNED.load(Ordering::Relaxed),
    };
    let copts = ConnectOptions {
        conns: plan.conns,
        cores,
        keys: keys(opts, false)?,
        cpu: CpuSide::new(),
        max_size: plan.sizes.iter().copied().max().unwrap_or(0),
        recycle: None,
    };
    run_cells(
        transport.as_ref(),
        &Target { msgr2, raw },
        &plan,
        &copts,
        &info,
        opts,
    )
}

/// The entity `msgr2 bench server` runs as.
const BENCH_SERVER: (EntityType, &str) = (EntityType::Mon, "bench");
/// The entity `msgr2 bench server --ceph-perf` runs as (as Ceph's `ceph_perf_msgr_server`).
const CEPH_PERF_SERVER: (EntityType, &str) = (EntityType::Osd, "0");

/// `--admin-socket`, else the `admin socket` the conf sets for the server's entity.
fn server_admin_socket(
    flag: &Option<String>,
    ceph: &msgr2_conf::CephArgs,
    entity: &(EntityType, &str),
) -> Result<Option<String>, BenchError> {
    let name = EntityName::new(entity.0, entity.1);
    crate::asok::from_flag_or_conf(flag.as_deref(), ceph, &name)
        .map_err(|e| BenchError::Usage(e.to_string()))
}

/// `msgr2 bench server --ceph-perf`: serves until killed.
fn run_ceph_perf_server(
    opts: &Opts,
    listen: &str,
    admin_socket: Option<&str>,
) -> Result<(), BenchError> {
    ceph_perf::init_logging();
    let addrs = parse_addrvec(listen)?;
    let cores = opts.cores()?;
    let m = ceph_perf::start_server(&addrs.to_string(), cores.clone())
        .map_err(|e| BenchError::Engine(e.to_string()))?;
    // Kept open until the process is killed.
    let _asok = match admin_socket {
        Some(p) => {
            let name = EntityName::new(CEPH_PERF_SERVER.0, CEPH_PERF_SERVER.1);
            let path = crate::asok::expand(p, &name);
            let a = msgr2_engine::admin::AdminSocket::bind(&path)?;
            let mut config = crate::asok::process_options(&name);
            config.push(("name".into(), name.to_string()));
            config.push(("admin_socket".into(), path.display().to_string()));
            config.push(("ms_cluster_mode".into(), "crc".into()));
            config.push(("ms_service_mode".into(), "crc".into()));
            config.push(("auth_service_required".into(), "none".into()));
            a.set_config(config);
            a.add_messenger("server", &m);
            Some(a)
        }
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "msgr2 bench server --ceph-perf: osd.0 at {} (cores {:?})",
        m.addrs(),
        cores
    );
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `msgr2 bench client --ceph-perf`: one run; prints Ceph's line (stderr, as Ceph does) and
/// our JSON cell (stdout).
fn run_ceph_perf_client(
    opts: &Opts,
    connect: &str,
    jobs: usize,
    ios: u64,
    size: &str,
    timeout: u64,
) -> Result<(), BenchError> {
    ceph_perf::init_logging();
    let addrs = parse_addrvec(connect)?;
    let size = spec::parse_size(size)?;
    let plan = ceph_perf::ClientPlan {
        jobs,
        depth: opts.depth as u64,
        ios,
        size,
        cores: opts.cores()?,
        timeout: Duration::from_secs(timeout),
    };
    let r = ceph_perf::run_client(&addrs, &plan).map_err(|e| BenchError::Peer(e.to_string()))?;
    let (line, cell) = ceph_perf::report(&plan, &r);
    eprintln!("{line}");
    println!("{cell}");
    if let Some(p) = &opts.json {
        std::fs::write(p, format!("{cell}\n")).map_err(|source| BenchError::Io {
            op: format!("write {}", p.display()),
            source,
        })?;
    }
    Ok(())
}

fn run_server(
    opts: &Opts,
    listen: &str,
    raw_listen: Option<&str>,
    admin_socket: Option<&str>,
) -> Result<(), BenchError> {
    let transport = transport::by_name(&opts.transport)?;
    let addrs = parse_addrvec(listen)?;
    let sock = addrs
        .msgr2()
        .and_then(|a| a.sock)
        .ok_or_else(|| BenchError::Usage(format!("--listen {listen:?} has no v2 IP:PORT")))?;
    let raw_listen = match raw_listen {
        Some(s) => parse_sock(s, "--raw-listen")?,
        None if sock.port() == 0 => SocketAddr::new(sock.ip(), 0),
        None => SocketAddr::new(sock.ip(), sock.port().wrapping_add(1)),
    };
    let cores = opts.cores()?;
    let server = transport.serve(&ServeOptions {
        listen: addrs,
        raw_listen,
        cores: cores.clone(),
        keys: keys(opts, false)?,
        cpu: CpuSide::new(),
        // A server does not know the client's sizes: accept up to the frame limit.
        max_size: spec::MAX_SIZE,
        recycle: None,
        admin_socket: admin_socket
            .map(|p| crate::asok::expand(p, &EntityName::new(BENCH_SERVER.0, BENCH_SERVER.1))),
    })?;
    let t = server.target();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "msgr2 bench server: msgr2 [{}] raw {} (transport {}, cores {:?})",
        t.msgr2,
        t.raw,
        transport.name(),
        cores
    );
    let _ = writeln!(
        out,
        "client: msgr2 bench client --connect '[{}]' --raw-connect {}",
        t.msgr2, t.raw
    );
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}

fn parse_addrvec(s: &str) -> Result<EntityAddrVec, BenchError> {
    let t = s.trim();
    let v = if t.starts_with('[') {
        t.parse::<EntityAddrVec>().map_err(|e| e.to_string())
    } else {
        t.parse::<EntityAddr>()
            .map(|a| EntityAddrVec(vec![a]))
            .map_err(|e| e.to_string())
    };
    v.map_err(|e| BenchError::Usage(format!("address {s:?}: {e}")))
}

fn target_addr(s: &str) -> Result<EntityAddr, BenchError> {
    parse_addrvec(s)?
        .msgr2()
        .copied()
        .ok_or_else(|| BenchError::Usage(format!("{s:?} has no v2 address")))
}

fn parse_sock(s: &str, opt: &str) -> Result<SocketAddr, BenchError> {
    s.trim()
        .parse()
        .map_err(|e| BenchError::Usage(format!("{opt} {s:?}: {e} (expected IP:PORT)")))
}

/// Writes the progress line to stderr: redrawn in place on a terminal, one line per cell
/// otherwise.
struct ProgressLine {
    tty: bool,
}

impl ProgressLine {
    fn update(&self, text: &str) {
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K{text}");
            let _ = e.flush();
        }
    }

    fn start(&self, label: &str) {
        if self.tty {
            self.update(&format!("{label} connecting…"));
        } else {
            eprintln!("{label}");
        }
    }

    fn clear(&self) {
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
        }
    }
}

fn run_cells(
    transport: &dyn Transport,
    target: &Target,
    plan: &Plan,
    copts: &ConnectOptions,
    info: &RunInfo,
    opts: &Opts,
) -> Result<(), BenchError> {
    let progress = ProgressLine {
        tty: std::io::stderr().is_terminal(),
    };
    let total = plan.sizes.len() * plan.modes.len();
    let mut out = std::io::stdout();
    let server_cores = if info.role == "client" {
        "remote".to_owned()
    } else {
        format!("{:?}", info.server_cores)
    };
    let _ = writeln!(
        out,
        "msgr2 bench: transport {}, {} conn(s) × depth {}{}, {:.1} s per cell, cores server {} client {:?}",
        info.transport,
        plan.conns,
        plan.depth,
        if opts.ping_pong { " (ping-pong)" } else { "" },
        plan.duration.as_secs_f64(),
        server_cores,
        info.client_cores,
    );
    let _ = writeln!(out, "{}", report::table_header());
    let _ = out.flush();
    let mut cells: Vec<CellResult> = Vec::with_capacity(total);
    for &size in &plan.sizes {
        for &mode in &plan.modes {
            let label = format!(
                "msgr2 bench: [{}/{total}] {} {}",
                cells.len() + 1,
                size_label(size),
                mode
            );
            progress.start(&label);
            let r = if mode == Mode::Tcp {
                if info.role == "client" {
                    // Across hosts the ceiling is the network's: iperf3 measures it.
                    progress.clear();
                    continue;
                }
                tcp::measure(
                    size,
                    plan.duration,
                    info.server_cores.first().copied(),
                    info.client_cores.first().copied(),
                )
            } else {
                run_cell(transport, target, size, mode, plan, copts, &|t| {
                    progress.update(&format!("{label} {t}"))
                })
            };
            progress.clear();
            let m =
                r.map_err(|e| BenchError::Peer(format!("cell {} {mode}: {e}", size_label(size))))?;
            cells.push(CellResult::new(size, mode, &m));
            report::fill_ratios(&mut cells);
            if let Some(c) = cells.last() {
                let _ = writeln!(out, "{}", report::table_row(c));
                let _ = out.flush();
            }
        }
    }
    let _ = writeln!(out, "{}", report::TABLE_NOTE);
    if let Some(path) = &opts.json {
        let doc = report::document(info, &cells);
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| BenchError::io(format!("write {}", path.display()), e))?;
    }
    if let Some(path) = &opts.plot {
        let title = format!(
            "msgr2 bench ({}, {} conn × depth {}, {})",
            info.transport,
            plan.conns,
            plan.depth,
            report::utc_now()
        );
        plot::draw(path, &title, &cells)?;
    }
    Ok(())
}

/// Runs one cell: connect, snapshot CPU on both sides, run the workloads for the cell's
/// duration, drain, snapshot again.
fn run_cell(
    transport: &dyn Transport,
    target: &Target,
    size: u64,
    mode: Mode,
    plan: &Plan,
    copts: &ConnectOptions,
    show: &(dyn Fn(&str) + Sync),
) -> Result<Measure, BenchError> {
    let heap0 = msgr2_engine::alloc_count::live_heap_bytes();
    let mut conns = transport.connect(target, mode, copts)?;
    // What the connections keep on the heap once up (both ends when the server runs in this
    // process): before any workload or statistics exist.
    let heap_per_conn = msgr2_engine::alloc_count::installed().then(|| {
        let grown = msgr2_engine::alloc_count::live_heap_bytes() - heap0;
        grown as f64 / plan.conns.max(1) as f64
    });
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<Progress>> = (0..plan.conns)
        .map(|_| Arc::new(Progress::default()))
        .collect();
    let workloads: Vec<ConnWorkload> = progress
        .iter()
        .map(|p| ConnWorkload::new(size, plan.depth, stop.clone(), p.clone()))
        .collect();
    let s0 = conns.server_stats()?;
    let a0 = copts.cpu.total_allocs();
    let pc0 = copts.cpu.per_core();
    let io0 = conns.io_counts();
    let c0 = copts.cpu.total_ns();
    let load0 = cpu::machine_and_self_cpu_s();
    let t0 = Instant::now();
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let mut last = Instant::now();
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
                let el = t0.elapsed();
                if el >= plan.duration {
                    stop.store(true, Ordering::Release);
                }
                if last.elapsed() >= Duration::from_millis(250) {
                    last = Instant::now();
                    let bytes: u64 = progress
                        .iter()
                        .map(|p| p.bytes.load(Ordering::Relaxed))
                        .sum();
                    let msgs: u64 = progress
                        .iter()
                        .map(|p| p.msgs.load(Ordering::Relaxed))
                        .sum();
                    let secs = el.as_secs_f64().max(1e-9);
                    show(&format!(
                        "{:.1}/{:.1} s  {:.3} GB/s  {:.0} msgs/s{}",
                        secs.min(plan.duration.as_secs_f64()),
                        plan.duration.as_secs_f64(),
                        bytes as f64 / secs / 1e9,
                        msgs as f64 / secs,
                        if el >= plan.duration {
                            "  draining"
                        } else {
                            ""
                        }
                    ));
                }
            }
        });
        let r = conns.run(workloads);
        stop.store(true, Ordering::Release);
        done.store(true, Ordering::Release);
        r
    });
    let elapsed = t0.elapsed();
    let load1 = cpu::machine_and_self_cpu_s();
    let c1 = copts.cpu.total_ns();
    let a1 = copts.cpu.total_allocs();
    let pc1 = copts.cpu.per_core();
    let io1 = conns.io_counts();
    let workloads = result?;
    let s1 = conns.server_stats()?;
    drop(conns);
    let mut hist = new_histogram();
    let (mut bytes, mut msgs) = (0, 0);
    for w in &workloads {
        bytes += w.bytes;
        msgs += w.msgs;
        hist.add(&w.hist)
            .map_err(|e| BenchError::Peer(format!("histogram merge: {e}")))?;
    }
    Ok(Measure {
        bytes,
        msgs,
        elapsed_s: elapsed.as_secs_f64(),
        hist,
        client_cpu_ns: c1.saturating_sub(c0),
        server_cpu_ns: s1.cpu_ns.saturating_sub(s0.cpu_ns),
        client_allocs: a0.zip(a1).map(|(a, b)| b.saturating_sub(a)),
        server_allocs: s0.allocs.zip(s1.allocs).map(|(a, b)| b.saturating_sub(a)),
        heap_bytes_per_conn: heap_per_conn,
        per_core: report::per_core_delta("server", &s0.cores, &s1.cores)
            .into_iter()
            .chain(report::per_core_delta("client", &pc0, &pc1))
            .collect(),
        client_io: io0.zip(io1).map(|(a, b)| IoCounts {
            enters: b.enters.saturating_sub(a.enters),
            send_ops: b.send_ops.saturating_sub(a.send_ops),
            sleeps: b.sleeps.saturating_sub(a.sleeps),
        }),
        other_cpus: load0.zip(load1).map(|((m0, s0), (m1, s1))| {
            ((m1 - m0) - (s1 - s0)).max(0.0) / elapsed.as_secs_f64().max(1e-9)
        }),
    })
}
