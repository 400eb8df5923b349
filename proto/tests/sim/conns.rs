//! The simulator's connections: dialling, closing, faults, protocol events and session
//! lookups (the embedder's duties, done as the engine does them, with the same
//! [`SessionTable`]).

use super::*;

impl Sim {
    /// Dials `to` from `from`, optionally carrying an existing connection forward.
    pub(super) fn dial(&mut self, from: usize, to: usize, carry: Option<usize>) -> usize {
        let target = self.nodes[to].addr.expect("dialled node does not listen");
        let peer_type = self.nodes[to].name.ty;
        let gs = self.next_gs(from);
        let now = self.now;
        let conn = match carry {
            Some(old) => match self.nodes[from].slots[old].conn.reconnect(gs, now) {
                Ok(c) => c,
                Err(e) => panic!("reconnect from slot {old}: {e}"),
            },
            None => Connection::client(self.nodes[from].config.clone(), target, peer_type, gs, now),
        };
        let slot = self.nodes[from].slots.len();
        self.nodes[from].slots.push(Slot {
            conn,
            link: None,
            side: Side::Client,
            peer: to,
            gone: false,
            reconnect_at: None,
            ghost: false,
            successor: None,
        });
        if let Some(old) = carry {
            self.nodes[from].slots[old].gone = true;
            self.nodes[from].slots[old].successor = Some(slot);
            self.nodes[from].sessions.transfer(old, slot);
        }
        self.register(from, slot, &[target]);
        let plan = self.plans.pop_front().unwrap_or_default();
        let link = self.links.len();
        let sgs = self.next_gs(to);
        let peer_sock = SocketAddr::from(([127, 0, 0, 1], 40000 + (link % 20000) as u16));
        let server = Connection::server(self.nodes[to].config.clone(), peer_sock, sgs, now);
        let sslot = self.nodes[to].slots.len();
        self.nodes[to].slots.push(Slot {
            conn: server,
            link: Some(link),
            side: Side::Server,
            peer: from,
            gone: false,
            reconnect_at: None,
            ghost: false,
            successor: None,
        });
        let ghost = plan.duplicate.then(|| {
            let ggs = self.next_gs(to);
            let g = Connection::server(self.nodes[to].config.clone(), peer_sock, ggs, now);
            let gslot = self.nodes[to].slots.len();
            self.nodes[to].slots.push(Slot {
                conn: g,
                link: Some(link),
                side: Side::Server,
                peer: from,
                gone: false,
                reconnect_at: None,
                ghost: true,
                successor: None,
            });
            (to, gslot)
        });
        self.nodes[from].slots[slot].link = Some(link);
        self.log(|| format!("link {link}: n{from}#{slot} → n{to}#{sslot} gs {gs} plan {plan:?}"));
        self.links.push(Link {
            client: (from, slot),
            server: (to, sslot),
            ghost,
            pipes: [
                Pipe {
                    q: VecDeque::new(),
                    fin: false,
                    tap: Tap::new(),
                },
                Pipe {
                    q: VecDeque::new(),
                    fin: false,
                    tap: Tap::new(),
                },
            ],
            plan,
            delivered: 0,
            closed: [false; 2],
            eof: [false; 2],
        });
        slot
    }

    /// The application drops a connection: its socket closes.
    pub(super) fn drop_slot(&mut self, node: usize, slot: usize) {
        let s = &mut self.nodes[node].slots[slot];
        if s.gone {
            return;
        }
        s.gone = true;
        let link = s.link;
        self.nodes[node].sessions.unregister(slot);
        self.close_side(node, slot, link);
    }

    /// `node`'s socket on `link` is closed (by error or by the application).
    pub(super) fn close_side(&mut self, node: usize, slot: usize, link: Option<usize>) {
        let Some(l) = link else { return };
        let now = self.now;
        let base = self.base;
        let link = &mut self.links[l];
        let silent = link.plan.blackhole || link.plan.silence_at.is_some_and(|t| base + t <= now);
        let dir = if link.client == (node, slot) {
            0
        } else if link.server == (node, slot) {
            1
        } else {
            return; // a ghost: its answers go nowhere anyway
        };
        if link.closed[dir] {
            return;
        }
        link.closed[dir] = true;
        // a silent network does not carry the FIN either
        link.pipes[dir].fin = !silent;
        link.pipes[1 - dir].q.clear();
    }

    /// Cuts a link: both sides see EOF at once, bytes in flight are lost.
    pub(super) fn cut(&mut self, l: usize) {
        self.log(|| format!("link {l}: CUT"));
        let (c, s, g) = {
            let link = &mut self.links[l];
            for p in &mut link.pipes {
                p.q.clear();
                p.fin = true;
            }
            link.closed = [true; 2];
            link.eof = [true; 2];
            (link.client, link.server, link.ghost)
        };
        for (n, i) in [Some(c), Some(s), g].into_iter().flatten() {
            self.eof(n, i);
        }
    }

    pub(super) fn eof(&mut self, node: usize, slot: usize) {
        let s = &mut self.nodes[node].slots[slot];
        if s.gone || s.conn.is_faulted() {
            return;
        }
        let e = s.conn.handle_eof();
        let st = s.conn.state();
        self.nodes[node].app.errors.push(e.to_string());
        self.log(|| format!("n{node}#{slot} eof: {e} → {st}"));
        self.after_fault(node, slot);
    }

    /// A connection failed: close its socket; drop it if it kept no session.
    pub(super) fn after_fault(&mut self, node: usize, slot: usize) {
        let link = self.nodes[node].slots[slot].link;
        self.close_side(node, slot, link);
        self.drain_events(node, slot);
        if self.nodes[node].slots[slot].conn.is_closed() {
            self.nodes[node].slots[slot].gone = true;
            self.nodes[node].sessions.unregister(slot);
        }
    }

    /// Records that `slot` holds the session with `addrs`, if the table keeps its session.
    fn register(&mut self, node: usize, slot: usize, addrs: &[EntityAddr]) {
        let n = &mut self.nodes[node];
        if registrable(&n.slots[slot].conn) {
            n.sessions.register(slot, addrs);
        }
    }

    pub(super) fn drain_events(&mut self, node: usize, slot: usize) {
        loop {
            let Some(ev) = self.nodes[node].slots[slot].conn.poll_event() else {
                break;
            };
            let peer = self.nodes[node].slots[slot].peer;
            let ghost = self.nodes[node].slots[slot].ghost;
            match ev {
                Event::Ready(info) => {
                    self.register(node, slot, &info.addrs.0);
                    if !ghost {
                        self.nodes[node].app.readies.push((peer, info.reconnected));
                    }
                    self.log(|| {
                        format!(
                            "n{node}#{slot} READY with n{peer} reconnected={} lossy={}",
                            info.reconnected, info.lossy
                        )
                    });
                }
                Event::Message(m) => {
                    let Some((from, to, id)) = decode(&m) else {
                        continue;
                    };
                    assert_eq!(to, node, "misrouted message");
                    self.nodes[node]
                        .app
                        .received
                        .entry(from)
                        .or_default()
                        .push(id);
                    self.log(|| {
                        format!("n{node}#{slot} got #{id} from n{from} seq {}", m.header.seq)
                    });
                }
                Event::Reset { remote, dropped } => {
                    self.nodes[node]
                        .app
                        .resets
                        .push((peer, remote, dropped, slot));
                    self.log(|| format!("n{node}#{slot} RESET remote={remote} dropped={dropped}"));
                }
                Event::Reconnect { delay } => {
                    let at = self.now + delay;
                    self.nodes[node].slots[slot].reconnect_at = Some(at);
                    self.log(|| format!("n{node}#{slot} reconnect in {delay:?}"));
                }
                Event::Lookup(l) => self.resolve(node, slot, l),
                Event::Keepalive(_) | Event::KeepaliveAck(_) => {}
            }
        }
    }

    pub(super) fn resolve(&mut self, node: usize, slot: usize, l: msgr2_proto::Lookup) {
        let n = &self.nodes[node];
        let peer = n.slots[slot].peer;
        let ex = n
            .sessions
            .lookup(&l, slot)
            .filter(|&j| !n.slots[j].gone && l.matches(&n.slots[j].conn));
        let (fate, state) = {
            let n = &mut self.nodes[node];
            match ex {
                Some(j) => {
                    let (a, b) = two_mut(&mut n.slots, slot, j);
                    let st = b.conn.state();
                    (a.conn.resolve_lookup(Some(&mut b.conn)), st)
                }
                None => (n.slots[slot].conn.resolve_lookup(None), "-"),
            }
        };
        self.log(|| {
            format!(
                "n{node}#{slot} lookup peer n{peer} reconnect={} existing={ex:?} ({state}) → {fate:?}",
                l.reconnect
            )
        });
        self.nodes[node]
            .app
            .lookups
            .push(fate.clone().map_err(|e| e.to_string()));
        match fate {
            Ok(ExistingFate::TakenOver) => {
                if let Some(j) = ex {
                    self.nodes[node].sessions.transfer(j, slot);
                    self.drop_slot(node, j);
                }
            }
            Ok(ExistingFate::Stopped) => {
                if let Some(j) = ex {
                    self.drain_events(node, j);
                    self.drop_slot(node, j);
                }
            }
            Ok(_) => {}
            Err(e) => {
                self.nodes[node].app.errors.push(e.to_string());
                self.after_fault(node, slot);
            }
        }
    }
}
