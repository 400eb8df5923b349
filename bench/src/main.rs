//! `msgr2`: the msgr2-rs command-line tool.
//!
//! `dump` decodes captured msgr2 byte streams; `ping` and `server` talk to real Ceph on the
//! io_uring engine; `bench` measures throughput and latency (raw, crc, secure).

mod asok;
mod bench;
mod config;
mod dump;
mod ping;
mod server;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Counts heap allocations per thread, so `msgr2 bench` reports allocations per message on
/// each side (`allocs_per_msg_client` / `_server` in its JSON); otherwise the system
/// allocator.
#[global_allocator]
static ALLOC: msgr2_engine::CountingAlloc = msgr2_engine::CountingAlloc;
use msgr2_conf::{CephArgs, ResolveOptions, ResolvedConf};

/// msgr2-rs: Ceph messenger v2 in Rust.
#[derive(Parser)]
#[command(
    name = "msgr2",
    version,
    about,
    after_help = "Every subcommand also takes Ceph's flags (after the subcommand, or in CEPH_ARGS): \
-c/--conf FILE, --cluster NAME, -n/--name TYPE.ID, -i/--id ID, -k/--keyring FILE, -m MONHOST, \
--OPTION=VALUE for Ceph options; ping and config read the conf ($CEPH_CONF, \
/etc/ceph/$cluster.conf, ~/.ceph/$cluster.conf, $cluster.conf)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Decode a captured connection (two byte streams) and print every frame.
    Dump {
        /// Client → server bytes (e.g. `conn0.c2s.bin`).
        client_to_server: PathBuf,
        /// Server → client bytes (e.g. `conn0.s2c.bin`).
        server_to_client: PathBuf,
        /// Print one JSON object per frame instead of text.
        #[arg(long)]
        json: bool,
        /// Keyring with the client's key: decrypts a secure-mode (cephx) capture.
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Answer as `ceph-conf`: `msgr2 config -c FILE --name NAME --lookup OPTION`.
    Config(config::ConfigArgs),
    /// Connect to a real monitor, fetch and print its monmap and what was negotiated.
    Ping(ping::PingArgs),
    /// Accept connections as a mon-style endpoint and print one JSON line per event.
    Server(server::ServerArgs),
    /// Throughput and latency: raw TCP vs msgr2 crc vs secure, on loopback (no arguments) or
    /// across processes and hosts (`bench server` / `bench client`).
    Bench(bench::BenchArgs),
    /// Reliability soak between two processes (`--role server` / `--role client`) under
    /// injected socket failures: proves nothing lost, duplicated, reordered or corrupted.
    Soak(soak::SoakArgs),
}

fn report(cmd: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msgr2 {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Takes Ceph's flags (`CEPH_ARGS` first, then the command line) out of the arguments of
/// any subcommand; flags a subcommand defines itself (`--name`, `--keyring` of `server`
/// and `dump`, `--fsid` of `server`, `--admin-socket` of `server` and `bench server`) stay
/// with it.
fn split_ceph_args() -> Result<(CephArgs, Vec<String>), String> {
    let mut words: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if words.len() < 2 || words[1].starts_with('-') {
        return Ok((CephArgs::default(), words));
    }
    let head: Vec<String> = words.drain(..2).collect();
    let owned: &[&str] = match head[1].as_str() {
        "ping" | "config" => &[],
        _ => &["name", "keyring", "fsid", "admin_socket"],
    };
    let mut all = CephArgs::env_words();
    all.extend(words);
    let (ceph, rest) = CephArgs::extract(&all, owned).map_err(|e| e.to_string())?;
    Ok((ceph, head.into_iter().chain(rest).collect()))
}

/// Logs on stderr: `RUST_LOG` if set, else the conf reader's warnings (unknown options).
fn init_conf_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("msgr2_conf=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let (ceph, argv) = match split_ceph_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("msgr2: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(argv);
    if matches!(cli.cmd, Cmd::Config(_) | Cmd::Ping(_)) {
        init_conf_logging();
    }
    match cli.cmd {
        Cmd::Config(a) => config::run(a, &ceph),
        Cmd::Dump {
            client_to_server,
            server_to_client,
            json,
            keyring,
        } => report(
            "dump",
            dump::run(
                &client_to_server,
                &server_to_client,
                keyring.as_deref(),
                json,
            )
            .map_err(|e| e.to_string()),
        ),
        Cmd::Ping(a) => report(
            "ping",
            ResolvedConf::resolve(&ceph, ResolveOptions::default())
                .map_err(|e| e.to_string())
                .and_then(|conf| ping::run(a, &conf)),
        ),
        Cmd::Server(a) => report("server", server::run(a, &ceph)),
        Cmd::Bench(a) => report("bench", bench::run(a, &ceph)),
        Cmd::Soak(a) => report("soak", soak::run(a).map_err(|e| e.to_string())),
    }
}
