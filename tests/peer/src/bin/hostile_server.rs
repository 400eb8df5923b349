//! `hostile_server`: an io_uring engine server (a [`Messenger`](msgr2_engine::Messenger) bound on 127.0.0.1) in a
//! process of its own, for the hostile-peer tests that measure the server's memory: its
//! `/proc/<pid>/status` (`VmHWM`, `VmRSS`) holds the server alone, without the test's own
//! allocations mixed in.
//!
//! Usage: `hostile_server REPLY_BYTES QUEUE_MESSAGES QUEUE_BYTES`. Auth none, Ceph's default
//! modes; every MESSAGE is answered with a reply of `REPLY_BYTES` data bytes (same type and
//! tid), and `MessengerBuilder::send_queue_limit(QUEUE_MESSAGES, QUEUE_BYTES)` bounds what
//! one connection may have queued. Prints `listening <addrvec>`, then one line per
//! dispatcher event (`accept <peer>`, `message <tid>`, `reset <error>`, `accept_failed
//! <error>`, `fault <error>`), and exits when its stdin closes.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgr2_crypto::auth::NoneServerProvider;
use msgr2_engine::{ConnHandle, Dispatcher, MessengerBuilder, PeerInfo};
use msgr2_proto::Message;

/// One line per event on the shared stdout.
struct Events {
    out: Arc<Mutex<std::io::Stdout>>,
    reply_bytes: usize,
}

impl Events {
    fn line(&self, s: &str) {
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "{}", s.replace('\n', " "));
            let _ = o.flush();
        }
    }
}

impl Dispatcher for Events {
    fn on_message(&mut self, conn: &ConnHandle, m: Message) {
        self.line(&format!("message {}", m.header.tid));
        let mut r = Message::new(m.header.msg_type, 1, 1, Vec::new());
        r.header.tid = m.header.tid;
        r.data = vec![0x5a; self.reply_bytes].into();
        let _ = conn.send(r);
    }
    fn on_accept(&mut self, conn: &ConnHandle, _: &PeerInfo) {
        let peer = conn
            .peer_socket()
            .map(|s| s.to_string())
            .unwrap_or_default();
        self.line(&format!("accept {peer}"));
    }
    fn on_reset(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        self.line(&format!("reset {error}"));
    }
    fn on_fault(&mut self, _: &ConnHandle, error: &msgr2_engine::ConnError) {
        self.line(&format!("fault {error}"));
    }
    fn on_accept_failed(&mut self, _: Option<SocketAddr>, error: &msgr2_engine::ConnError) {
        self.line(&format!("accept_failed {error}"));
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {:?}", args[i]))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reply_bytes: usize = arg(&args, 0, "REPLY_BYTES")?;
    let queue_messages: usize = arg(&args, 1, "QUEUE_MESSAGES")?;
    let queue_bytes: u64 = arg(&args, 2, "QUEUE_BYTES")?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let o2 = out.clone();
    let m = MessengerBuilder::new("mon.a".parse().map_err(|e| format!("{e}"))?)
        .bind("v2:127.0.0.1:0")
        .gid(0)
        .server_auth(Arc::new(NoneServerProvider::new(1)))
        .handshake_timeout(Duration::from_secs(2))
        .send_queue_limit(queue_messages, queue_bytes)
        .arena_size(2 << 20)
        .arena_fallback(true)
        .spin_before_park(None)
        .dispatcher(move |_| {
            Box::new(Events {
                out: o2.clone(),
                reply_bytes,
            })
        })
        .start()
        .map_err(|e| e.to_string())?;
    if let Ok(mut o) = out.lock() {
        let _ = writeln!(o, "listening {}", m.addrs());
        let _ = o.flush();
    }
    // Runs until the parent closes our stdin (or dies).
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    m.shutdown();
    Ok(())
}
