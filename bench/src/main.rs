//! `msgr2`: the msgr2-rs command-line tool.
//!
//! `dump` decodes captured msgr2 byte streams; `ping` and `server` talk to real Ceph on the
//! io_uring engine; `bench` measures throughput and latency (raw, crc, secure).

mod asok;
mod bench;
mod dump;
mod ping;
mod server;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// msgr2-rs: Ceph messenger v2 in Rust.
#[derive(Parser)]
#[command(name = "msgr2", version, about)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
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
        Cmd::Ping(a) => report("ping", ping::run(a)),
        Cmd::Server(a) => report("server", server::run(a)),
        Cmd::Bench(a) => report("bench", bench::run(a)),
        Cmd::Soak(a) => report("soak", soak::run(a).map_err(|e| e.to_string())),
    }
}
