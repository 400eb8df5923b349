//! The simulator's clock and wire: one step moves bytes, fires timers or delivers what a
//! link plan lets through.

use super::*;

impl Sim {
    /// One round: transmit, deliver due bytes, fire due timers. Returns whether anything
    /// happened.
    pub(super) fn step(&mut self) -> bool {
        let mut progress = false;
        // scheduled application sends
        while self.sends.first().is_some_and(|s| s.0 <= self.now) {
            let (_, from, to, id) = self.sends.remove(0);
            self.send(from, to, id);
            progress = true;
        }
        // held messages whose peer has connected meanwhile
        let mut i = 0;
        while i < self.backlog.len() {
            let (from, to, id) = self.backlog[i];
            if self.session_slot(from, to).is_some() {
                self.backlog.remove(i);
                self.send(from, to, id);
                progress = true;
            } else {
                i += 1;
            }
        }
        // transmit
        for node in 0..self.nodes.len() {
            for slot in 0..self.nodes[node].slots.len() {
                progress |= self.transmit(node, slot);
            }
        }
        // timed cuts
        for l in 0..self.links.len() {
            if let Some(t) = self.links[l].plan.cut_at {
                if self.base + t <= self.now {
                    self.links[l].plan.cut_at = None;
                    if !self.links[l].closed.iter().all(|c| *c) {
                        self.cut(l);
                        progress = true;
                    }
                }
            }
        }
        // deliver
        for l in 0..self.links.len() {
            for dir in 0..2 {
                progress |= self.deliver(l, dir);
            }
        }
        // timers
        for node in 0..self.nodes.len() {
            for slot in 0..self.nodes[node].slots.len() {
                progress |= self.timers(node, slot);
            }
        }
        progress
    }

    pub(super) fn transmit(&mut self, node: usize, slot: usize) -> bool {
        let s = &mut self.nodes[node].slots[slot];
        if s.gone || s.conn.is_faulted() || !s.conn.wants_transmit() {
            return false;
        }
        let Some(l) = s.link else { return false };
        let state = s.conn.state();
        let side = s.side;
        let ghost = s.ghost;
        let mut buf = Vec::new();
        s.conn.poll_transmit(&mut buf);
        self.drain_events(node, slot);
        if buf.is_empty() || ghost {
            return !buf.is_empty();
        }
        let dir = if side == Side::Client { 0 } else { 1 };
        let link = &mut self.links[l];
        if link.closed[dir] {
            return true;
        }
        if let Some((cs, cstate)) = link.plan.cut_on_tx {
            if cs == side && cstate == state {
                link.plan.cut_on_tx = None;
                self.log(|| format!("link {l}: {side:?} tx in {state} lost"));
                self.cut(l);
                return true;
            }
        }
        if link.plan.blackhole
            || link
                .plan
                .silence_at
                .is_some_and(|t| self.base + t <= self.now)
        {
            return true;
        }
        let at = self.now + link.plan.delay;
        link.pipes[dir].q.push_back((at, buf));
        true
    }

    pub(super) fn deliver(&mut self, l: usize, dir: usize) -> bool {
        let mut progress = false;
        loop {
            let now = self.now;
            let link = &mut self.links[l];
            let (to, from) = if dir == 0 {
                (link.server, link.client)
            } else {
                (link.client, link.server)
            };
            let ghost = link.ghost;
            let Some((at, _)) = link.pipes[dir].q.front() else {
                // drained: pass on a FIN
                if link.pipes[dir].fin && !link.eof[1 - dir] {
                    link.eof[1 - dir] = true;
                    self.eof(to.0, to.1);
                    if dir == 0 {
                        if let Some(g) = ghost {
                            self.eof(g.0, g.1);
                        }
                    }
                    return true;
                }
                return progress;
            };
            if *at > now {
                return progress;
            }
            let Some((_, mut bytes)) = link.pipes[dir].q.pop_front() else {
                return progress;
            };
            let chunk = if link.plan.chunk == 0 {
                bytes.len()
            } else {
                link.plan.chunk.min(bytes.len())
            };
            if chunk < bytes.len() {
                let rest = bytes.split_off(chunk);
                link.pipes[dir].q.push_front((now, rest));
            }
            let mut cut_now = false;
            if let Some(limit) = link.plan.cut_after {
                let budget = limit.saturating_sub(link.delivered);
                if bytes.len() >= budget {
                    bytes.truncate(budget);
                    cut_now = true;
                }
            }
            link.delivered += bytes.len();
            let frames = link.pipes[dir].tap.feed(&bytes);
            for (tag, control) in frames {
                let at = now - self.base;
                self.wire.push(Wire {
                    at,
                    link: l,
                    from: from.0,
                    to: to.0,
                    tag,
                    control,
                });
            }
            progress = true;
            if !bytes.is_empty() {
                self.input(to.0, to.1, &bytes);
                if dir == 0 {
                    if let Some(g) = ghost {
                        self.input(g.0, g.1, &bytes);
                    }
                }
            }
            if cut_now {
                self.cut(l);
                return true;
            }
        }
    }

    pub(super) fn input(&mut self, node: usize, slot: usize, bytes: &[u8]) {
        let s = &mut self.nodes[node].slots[slot];
        if s.gone || s.conn.is_faulted() {
            return;
        }
        let r = s.conn.handle_input(bytes);
        let st = s.conn.state();
        match r {
            Ok(()) => self.drain_events(node, slot),
            Err(e) => {
                self.log(|| format!("n{node}#{slot} input error: {e} → {st}"));
                self.nodes[node].app.errors.push(e.to_string());
                self.after_fault(node, slot);
            }
        }
    }

    pub(super) fn timers(&mut self, node: usize, slot: usize) -> bool {
        let now = self.now;
        let s = &mut self.nodes[node].slots[slot];
        if s.gone {
            return false;
        }
        if let Some(at) = s.reconnect_at {
            if at <= now {
                s.reconnect_at = None;
                if s.conn.state() == "BACKOFF" {
                    let peer = s.peer;
                    let new = self.dial(node, peer, Some(slot));
                    self.log(|| format!("n{node}#{slot} reconnects as #{new}"));
                    return true;
                }
            }
        }
        let s = &mut self.nodes[node].slots[slot];
        if s.conn.is_faulted() {
            return false;
        }
        if s.conn.poll_timeout().is_some_and(|t| t <= now) {
            match s.conn.handle_timeout(now) {
                Ok(()) => self.drain_events(node, slot),
                Err(e) => {
                    self.log(|| format!("n{node}#{slot} timeout: {e}"));
                    self.nodes[node].app.errors.push(e.to_string());
                    self.after_fault(node, slot);
                }
            }
            return true;
        }
        false
    }

    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some(s) = self.sends.first() {
            min(s.0);
        }
        for link in &self.links {
            if let Some(c) = link.plan.cut_at {
                min(self.base + c);
            }
            for p in &link.pipes {
                if let Some((at, _)) = p.q.front() {
                    min(*at);
                }
            }
        }
        for n in &self.nodes {
            for s in &n.slots {
                if s.gone {
                    continue;
                }
                if let Some(r) = s.reconnect_at {
                    min(r);
                }
                if !s.conn.is_faulted() {
                    if let Some(p) = s.conn.poll_timeout() {
                        min(p);
                    }
                }
            }
        }
        t
    }
}
