//! The public Messenger API: builder, dispatcher trait, connection handles, counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::banner::Banner;
use msgr2_codec::entity::{EntityName, EntityType};
use msgr2_codec::frame::Limits;
use msgr2_crypto::auth::{
    ClientAuthProvider, NoneClientProvider, NoneServerProvider, ServerAuthProvider,
};
use msgr2_crypto::cephx::{
    CephxClientProvider, CephxServerProvider, MonServerContext, TicketStore,
};
use msgr2_crypto::keyring::Keyring;
use msgr2_proto::{CompressionConfig, Config, ModeConfig, Policy, SessionTable};
use tracing::info;

use crate::bind::{bind_all, BindSpec};
use crate::error::EngineError;
use crate::options::{BreakAt, ReactorConfig};
use crate::reactor;
use crate::spsc::Spsc;

use crate::dispatch::{Dispatcher, Factory, NullDispatcher};
use crate::shared::*;

mod builder;
mod messenger;

pub use self::builder::MessengerBuilder;
pub use self::messenger::Messenger;
