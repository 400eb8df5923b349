//! Protocol events to the dispatcher, and timers.

use super::*;

impl Reactor {
    /// In a long batch of received messages, sends what the first [`EARLY_FLUSH_AFTER`]
    /// callbacks queued on this connection before dispatching the rest: the peer starts on
    /// those replies while we work through the batch, instead of the whole window bouncing
    /// between the two sides as one block.
    fn early_flush(&mut self, slot: usize) {
        let ready = self
            .conns
            .get(slot)
            .is_some_and(|c| c.dirty && c.state.is_open() && c.tx_batch.is_none());
        if ready {
            self.flush_one(slot);
            self.enter(0);
        }
    }

    pub(super) fn dispatch_events(&mut self, slot: usize) {
        if self.events.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        let Some(c) = self.conns.get(slot) else {
            events.clear();
            self.events = events;
            return;
        };
        let h = c.handle.clone();
        let server = c.server;
        let total = events.len();
        let mut delivered = 0usize;
        for ev in events.drain(..) {
            match ev {
                Event::Message(m) => {
                    self.deliver(slot, &h, m);
                    delivered += 1;
                    if delivered == EARLY_FLUSH_AFTER && total >= 2 * EARLY_FLUSH_AFTER {
                        self.early_flush(slot);
                    }
                }
                Event::Ready(info) => {
                    match info.con_mode {
                        CON_MODE_SECURE => ctr!(self.conns_secure, 1),
                        _ => ctr!(self.conns_crc, 1),
                    }
                    match info.revision {
                        Revision::Rev0 => ctr!(self.conns_rev0, 1),
                        Revision::Rev1 => ctr!(self.conns_rev1, 1),
                    }
                    if info.reconnected {
                        ctr!(self.resumed, 1);
                    }
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.peer_type = info.entity_type;
                    }
                    let _ = h.0.info.set(info.clone());
                    self.register(slot, &info.addrs.0);
                    if server {
                        self.dispatcher.on_accept(&h, &info);
                    } else {
                        self.dispatcher.on_connect(&h, &info);
                    }
                }
                Event::Reset { remote, dropped } => {
                    // A local fault names its cause (the close that follows reports nothing
                    // more: this is the one callback the application gets).
                    let cause = if remote {
                        ResetCause::ByPeer
                    } else {
                        ResetCause::LocalFault(
                            self.conns
                                .get(slot)
                                .and_then(|c| c.proto.as_ref())
                                .and_then(|p| p.error())
                                .cloned(),
                        )
                    };
                    let e = ConnError::SessionReset { cause, dropped };
                    let notify = self.conns.get_mut(slot).is_some_and(|c| {
                        let n = c.notify_reset;
                        c.notify_reset = false;
                        n
                    });
                    if notify {
                        self.dispatcher.on_reset(&h, &e);
                    }
                }
                Event::Reconnect { delay } => {
                    let at = Instant::now() + delay;
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.state.reconnect_at(at);
                        let gen = c.gen;
                        self.timers.push(Reverse((at, slot as u32, gen)));
                    }
                }
                Event::Lookup(l) => self.pending_lookup = Some(l),
                Event::Keepalive(stamp) => self.dispatcher.on_keepalive(&h, stamp),
                Event::KeepaliveAck(stamp) => self.dispatcher.on_keepalive_ack(&h, stamp),
            }
        }
        self.events = events;
        if let Some(l) = self.pending_lookup.take() {
            self.on_lookup(slot, l, 0);
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    pub(super) fn run_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((when, slot, gen))) = self.timers.peek().copied() {
            if when > now {
                break;
            }
            self.timers.pop();
            match slot {
                SLOT_DRAIN => {
                    for s in self.conns.slots() {
                        self.close(s, None);
                    }
                }
                _ => {
                    let s = slot as usize;
                    let Some(c) = self.conns.get_mut(s) else {
                        continue;
                    };
                    if c.gen != gen || c.state == St::Closing {
                        continue;
                    }
                    if c.state.take_due_reconnect(now) {
                        self.do_reconnect(s);
                        continue;
                    }
                    if c.delayed.front().is_some_and(|(t, _)| *t <= now) {
                        self.release_delayed(s, now, false);
                    }
                    let Some(c) = self.conns.get_mut(s) else {
                        continue;
                    };
                    if c.deadline != Some(when)
                        || !matches!(c.state, St::Open { .. } | St::Connecting)
                    {
                        continue;
                    }
                    c.deadline = None;
                    let r = c.proto.as_mut().map(|p| p.handle_timeout(now));
                    if let Some(Err(e)) = r {
                        self.fail(s, e.into());
                    } else {
                        self.update_deadline(s);
                    }
                }
            }
        }
    }

    // ---- sending --------------------------------------------------------------------------
}
