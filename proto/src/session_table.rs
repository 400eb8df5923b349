//! The embedder's registry of sessions: which connection holds the session with a peer
//! address, answering a server connection's [`Lookup`] (Ceph's `conns` map and
//! `lookup_conn`). One implementation for every embedder, so the engine and the simulator
//! in this crate's tests choose the same existing connection.
//!
//! Rules, as Ceph's `AsyncMessenger` has them:
//! - Lossless sessions are registered ([`registrable`]): they are the ones a peer resumes
//!   or races for. Lossy ones only on a server whose policy registers lossy clients
//!   ([`crate::Policy::stateless_registered_server`], an OSD's towards clients), where a
//!   client's new connection stops its old one; otherwise lossy connections to one peer may
//!   coexist (Ceph's `stateless_server` does not register them either; unlike Ceph, our
//!   dialling side never registers lossy ones, so a client may hold several).
//! - The first holder of an address keeps it (Ceph's `accept_conn` refuses a second live
//!   entry, and `reuse_connection` moves a new socket into the registered connection, so
//!   the entry never changes hands except by a take-over).
//! - A take-over or a reconnect under a new identity moves every address of the old holder
//!   to the new one ([`SessionTable::transfer`]); closing a holder drops its addresses.
//!
//! The table only maps addresses to caller-chosen ids (a slab index, a handle id, a core
//! and id): checking that the holder can be offered ([`Lookup::matches`], not closing)
//! stays with the caller, which owns the connections. No sockets, no clocks, no locks.

use std::collections::HashMap;
use std::hash::Hash;

use msgr2_codec::addr::EntityAddr;

use crate::connection::{Connection, Lookup, Role};

/// Whether `c`'s session belongs in a [`SessionTable`]: lossless sessions, and the lossy
/// sessions a server accepts under a policy that registers lossy clients.
pub fn registrable(c: &Connection) -> bool {
    !c.session().is_lossy() || (c.role() == Role::Server && c.policy().register_lossy_clients)
}

/// Which connection (by the caller's id) holds the session with each peer address.
#[derive(Debug, Clone)]
pub struct SessionTable<Id> {
    holders: HashMap<EntityAddr, Id>,
    keys: HashMap<Id, Vec<EntityAddr>>,
}

impl<Id> Default for SessionTable<Id> {
    fn default() -> Self {
        Self {
            holders: HashMap::new(),
            keys: HashMap::new(),
        }
    }
}

impl<Id: Copy + Eq + Hash> SessionTable<Id> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `id` holds the session with `addrs` (those with a socket address; a
    /// blank or typeless address names no peer). An address another id already holds stays
    /// with it. Returns how many addresses `id` holds afterwards.
    pub fn register(&mut self, id: Id, addrs: &[EntityAddr]) -> usize {
        for a in addrs.iter().filter(|a| a.sock.is_some()) {
            if *self.holders.entry(*a).or_insert(id) != id {
                continue;
            }
            let held = self.keys.entry(id).or_default();
            if !held.contains(a) {
                held.push(*a);
            }
        }
        self.keys.get(&id).map_or(0, Vec::len)
    }

    /// `id` no longer holds any session (its connection closed for good).
    pub fn unregister(&mut self, id: Id) {
        for a in self.keys.remove(&id).unwrap_or_default() {
            if self.holders.get(&a) == Some(&id) {
                self.holders.remove(&a);
            }
        }
    }

    /// The session `from` held now lives in `to` (a take-over, or a reconnect under a new
    /// id): its addresses move, ahead of any `to` registered itself.
    pub fn transfer(&mut self, from: Id, to: Id) {
        if from == to {
            return;
        }
        let moved = self.keys.remove(&from).unwrap_or_default();
        if moved.is_empty() {
            return;
        }
        let mut held = self.keys.remove(&to).unwrap_or_default();
        held.retain(|a| !moved.contains(a));
        for a in &moved {
            self.holders.insert(*a, to);
        }
        let mut all = moved;
        all.extend(held);
        self.keys.insert(to, all);
    }

    /// The holder to offer for `l`, asked by the connection `me`: the holder of the first
    /// of the peer's addresses (in the order the peer sent them) held by another id.
    pub fn lookup(&self, l: &Lookup, me: Id) -> Option<Id> {
        l.peer_addrs
            .0
            .iter()
            .filter_map(|a| self.holders.get(a))
            .find(|&&h| h != me)
            .copied()
    }

    /// Who holds the session with `addr`.
    pub fn holder(&self, addr: &EntityAddr) -> Option<Id> {
        self.holders.get(addr).copied()
    }

    /// The addresses `id` holds, in registration order.
    pub fn addrs_of(&self, id: Id) -> &[EntityAddr] {
        self.keys.get(&id).map_or(&[], Vec::as_slice)
    }

    /// How many connections hold a session.
    pub fn sessions(&self) -> usize {
        self.keys.len()
    }

    /// No session is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use msgr2_codec::addr::EntityAddrVec;

    fn addr(s: &str) -> EntityAddr {
        s.parse().unwrap()
    }

    fn lookup(addrs: &[&str]) -> Lookup {
        Lookup {
            peer_addrs: EntityAddrVec(addrs.iter().map(|a| addr(a)).collect()),
            reconnect: false,
        }
    }

    const V2: &str = "v2:10.0.0.1:6800/7";
    const V1: &str = "v1:10.0.0.1:6801/7";

    #[test]
    fn first_holder_keeps_each_address() {
        let mut t = SessionTable::new();
        assert_eq!(t.register(1, &[addr(V2), addr(V1)]), 2);
        assert_eq!(
            t.register(1, &[addr(V2)]),
            2,
            "registering again changes nothing"
        );
        assert_eq!(t.register(2, &[addr(V2), addr("v2:10.0.0.2:6800/0")]), 1);
        assert_eq!(t.holder(&addr(V2)), Some(1));
        assert_eq!(t.holder(&addr("v2:10.0.0.2:6800/0")), Some(2));
        assert_eq!(t.sessions(), 2);
        // A blank address names no peer.
        let blank = EntityAddr {
            sock: None,
            ..addr(V2)
        };
        assert_eq!(t.register(3, &[blank]), 0);
        assert_eq!(t.sessions(), 2);
    }

    #[test]
    fn lookup_takes_the_first_address_held_by_another() {
        let mut t = SessionTable::new();
        t.register(1, &[addr(V1)]);
        t.register(2, &[addr(V2)]);
        assert_eq!(t.lookup(&lookup(&[V2, V1]), 9), Some(2));
        assert_eq!(t.lookup(&lookup(&[V1, V2]), 9), Some(1));
        assert_eq!(t.lookup(&lookup(&[V2, V1]), 2), Some(1), "never itself");
        assert_eq!(t.lookup(&lookup(&["v2:10.0.0.9:1/1"]), 9), None);
    }

    #[test]
    fn unregister_and_transfer() {
        let mut t = SessionTable::new();
        t.register(1, &[addr(V2), addr(V1)]);
        t.register(2, &[addr("v2:10.0.0.2:6800/0")]);
        t.transfer(1, 2);
        assert_eq!(t.holder(&addr(V2)), Some(2));
        assert_eq!(t.holder(&addr(V1)), Some(2));
        assert_eq!(t.addrs_of(2).len(), 3);
        assert!(t.addrs_of(1).is_empty());
        t.transfer(1, 3);
        assert_eq!(t.holder(&addr(V1)), Some(2), "nothing to move");
        t.transfer(2, 2);
        assert_eq!(t.addrs_of(2).len(), 3);
        t.unregister(2);
        assert!(t.is_empty());
        assert_eq!(t.holder(&addr(V2)), None);
        // Unregistering an id that holds nothing leaves others alone.
        t.register(4, &[addr(V2)]);
        t.unregister(5);
        assert_eq!(t.holder(&addr(V2)), Some(4));
    }
}
