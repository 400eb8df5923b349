//! The io_uring engine transport: client and server `msgr2_engine::Messenger`s with a bench
//! `Dispatcher` each (raw cells through a messenger built with `.raw(true)`).
//!
//! The engine's `Messenger` API has not landed in `msgr2-engine` yet; until it does this
//! transport reports that and `--transport blocking` (the default meanwhile) is used.

use super::{ClientConns, ConnectOptions, ServeOptions, Server, Target, Transport};
use crate::bench::error::BenchError;
use crate::bench::spec::Mode;

/// The engine transport (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Engine;

/// Whether this build has a usable engine transport.
pub const AVAILABLE: bool = false;

fn unavailable() -> BenchError {
    BenchError::Engine(
        "the io_uring engine's Messenger API has not landed in msgr2-engine yet; \
         use --transport blocking"
            .into(),
    )
}

impl Transport for Engine {
    fn name(&self) -> &'static str {
        "engine"
    }

    fn serve(&self, _opts: &ServeOptions) -> Result<Box<dyn Server>, BenchError> {
        Err(unavailable())
    }

    fn connect(
        &self,
        _target: &Target,
        _mode: Mode,
        _opts: &ConnectOptions,
    ) -> Result<Box<dyn ClientConns>, BenchError> {
        Err(unavailable())
    }
}
