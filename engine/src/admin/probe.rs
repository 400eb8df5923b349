//! A read-only view of a running messenger (for the admin socket).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::entity::EntityName;
use msgr2_proto::Config;

use crate::shared::{core_counters, Counters, Shared};

/// A read-only view of a messenger for the admin socket: the same relaxed counter loads as
/// [`crate::Messenger::counters`], the session registry's size and the throttles.
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) shared: Arc<Shared>,
    pub(crate) proto: Arc<Config>,
    pub(crate) name: EntityName,
    pub(crate) addrs: EntityAddrVec,
}

impl Probe {
    pub(crate) fn core_count(&self) -> usize {
        self.shared.cores.len()
    }
    pub(crate) fn name(&self) -> String {
        self.name.to_string()
    }
    pub(crate) fn addrs(&self) -> String {
        self.addrs.to_string()
    }
    pub(crate) fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }
    /// (CPU, counters) per core.
    pub(crate) fn core_counters(&self) -> Vec<(usize, Counters)> {
        core_counters(&self.shared)
    }
    pub(crate) fn sessions(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .map(|s| s.sessions())
            .unwrap_or_else(|p| p.into_inner().sessions())
    }
    pub(crate) fn dispatch_throttle(&self) -> (u64, u64) {
        let t = &self.proto.dispatch_throttle;
        (t.current(), t.max())
    }
    /// Per peer type with a policy throttle: (type, bytes (taken, max), messages (taken, max)).
    pub(crate) fn policy_throttles(&self) -> Vec<super::commands::PolicyThrottle> {
        let state = |t: &Option<Arc<msgr2_proto::throttle::Throttle>>| {
            t.as_ref().map(|t| (t.current(), t.max()))
        };
        self.proto
            .policies
            .by_type
            .iter()
            .filter(|(_, p)| p.throttler_bytes.is_some() || p.throttler_messages.is_some())
            .map(|(ty, p)| {
                (
                    ty.as_str().to_owned(),
                    state(&p.throttler_bytes),
                    state(&p.throttler_messages),
                )
            })
            .collect()
    }
}
