//! `msgr2`: the msgr2-rs command-line tool.
//!
//! Today it has `dump`, which decodes captured msgr2 byte streams. `bench`, `ping` and
//! `server` arrive with the engine and handshake work.

mod dump;

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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Dump {
            client_to_server,
            server_to_client,
            json,
        } => match dump::run(&client_to_server, &server_to_client, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("msgr2 dump: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
