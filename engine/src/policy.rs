//! Per-peer-type policies behind the plain function pointer `msgr2_proto::Config::policy`.
//!
//! A function pointer cannot capture the builder's table, but proto only calls it on the
//! thread driving the connection, which for the engine is always one of the messenger's own
//! reactor threads. Each reactor installs its messenger's table in a thread-local at start,
//! and [`lookup`] (the pointer handed to proto) reads it. Types without an entry get proto's
//! default (`Policy::lossy_client`).

use std::cell::RefCell;
use std::collections::HashMap;

use msgr2_codec::entity::EntityType;
use msgr2_proto::Policy;

thread_local! {
    static TABLE: RefCell<HashMap<EntityType, Policy>> = RefCell::new(HashMap::new());
}

/// Installs this thread's table (called once by each reactor thread).
pub(crate) fn install(table: HashMap<EntityType, Policy>) {
    TABLE.with(|t| *t.borrow_mut() = table);
}

/// The policy towards `peer` on this thread.
pub(crate) fn lookup(peer: EntityType) -> Policy {
    TABLE.with(|t| t.borrow().get(&peer).cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_thread_tables() {
        install(HashMap::from([(EntityType::Osd, Policy::lossless_peer(0))]));
        assert!(!lookup(EntityType::Osd).lossy);
        assert!(lookup(EntityType::Client).lossy);
        let other = std::thread::spawn(|| lookup(EntityType::Osd).lossy);
        assert!(other.join().unwrap_or(false));
    }
}
