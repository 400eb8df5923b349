//! The namespaces, impairments and processes the multi-host tests run in, and their
//! report rows.

use super::*;

/// What the router does to every packet, in both directions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Impairment {
    /// Drop probability.
    pub(crate) loss: f64,
    /// Fixed delay and maximum extra (uniform) delay per packet.
    pub(crate) delay: Option<(Duration, Duration)>,
    /// Hosts send one MTU (1500 bytes) per packet, as on a wire; otherwise veth carries TCP's
    /// GSO packets of up to 64 KiB whole and each counts (is dropped, delayed) as one.
    pub(crate) mtu: bool,
}

impl Impairment {
    pub(crate) const NONE: Self = Self {
        loss: 0.0,
        delay: None,
        mtu: false,
    };

    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.loss > 0.0 {
            parts.push(format!("loss {:.0} %", self.loss * 100.0));
        }
        if let Some((d, j)) = self.delay {
            parts.push(format!(
                "delay {} ms + 0-{} ms jitter (reorders)",
                d.as_millis(),
                j.as_millis()
            ));
        }
        let packets = if self.mtu {
            "1500-byte packets"
        } else {
            "GSO packets ≤ 64 KiB"
        };
        if parts.is_empty() {
            format!("none ({packets})")
        } else {
            format!("{} each way ({packets})", parts.join(", "))
        }
    }
}

/// Router counters and TCP retransmissions over one scenario.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NetFigures {
    /// Packets (GSO super-packets count once) the router passed on.
    pub(crate) forwarded: u64,
    pub(crate) dropped: u64,
    pub(crate) delayed: u64,
    pub(crate) reordered: u64,
    pub(crate) retrans: u64,
    pub(crate) spurious: u64,
}

impl NetFigures {
    pub(crate) fn describe(&self) -> String {
        let mut s = format!(
            "router: {} pkts, {} dropped",
            self.forwarded + self.dropped,
            self.dropped
        );
        if self.delayed > 0 {
            s += &format!(", {} delayed, {} reordered", self.delayed, self.reordered);
        }
        s + &format!(
            "; TCP retransmits {} ({} spurious per D-SACK)",
            self.retrans, self.spurious
        )
    }
}

/// Cleans up after earlier runs of this file that were killed before their drops ran: stops
/// the clusters in `msgr2-nt-NAME-PID` directories whose PID is gone (`cluster.sh stop` signals
/// only its own daemons), then deletes the namespaces of dead PIDs (`netns.sh gc`).
pub(crate) fn gc_stale() {
    let tmp = std::env::temp_dir();
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("msgr2-nt-")
            .and_then(|r| r.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new(common::root().join("tests/ceph/cluster.sh"))
            .arg("stop")
            .arg(e.path())
            .output();
        let _ = std::fs::remove_dir_all(e.path());
    }
    let _ = Command::new("bash").arg(script()).arg("gc").output();
}

/// A counter from `/proc/net/snmp`-style text: a `group` header line of names followed by a
/// `group` line of values.
pub(crate) fn counter(text: &str, group: &str, name: &str) -> u64 {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(group)).collect();
    lines
        .chunks(2)
        .filter_map(|p| Some((p.first()?, p.get(1)?)))
        .find_map(|(h, v)| {
            h.split_whitespace()
                .zip(v.split_whitespace())
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Three namespaces built by `netns.sh up`, torn down (after killing the processes this
/// test started in them) on drop.
pub(crate) struct Net {
    pub(crate) prefix: String,
    pub(crate) children: Vec<Child>,
    pub(crate) delayer: Option<Delayer>,
    pub(crate) impairment: Impairment,
    pub(crate) retrans0: (u64, u64),
}

impl Net {
    pub(crate) fn up(tag: &str) -> Net {
        gc_stale();
        let prefix = format!("msgr2nt-{tag}-{}", std::process::id());
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &prefix])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "netns.sh up {prefix}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Net {
            prefix,
            children: Vec::new(),
            delayer: None,
            impairment: Impairment::NONE,
            retrans0: (0, 0),
        }
    }

    pub(crate) fn ns(&self, side: char) -> String {
        format!("{}-{side}", self.prefix)
    }

    /// `program` run inside namespace `side` (`a`, `r` or `b`).
    pub(crate) fn cmd(&self, side: char, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(side)]).arg(program);
        c
    }

    /// Starts a long-running process in `side`; it is killed when the `Net` drops.
    pub(crate) fn spawn(&mut self, side: char, program: &Path, args: &[&str]) -> &mut Child {
        let child = self
            .cmd(side, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.last_mut().unwrap()
    }

    /// Installs `imp` on the router and zeroes the counters.
    pub(crate) fn impair(&mut self, imp: Impairment) {
        if let Some(d) = self.delayer.take() {
            d.stop().unwrap();
        }
        let mut args = vec!["impair".to_owned(), self.prefix.clone()];
        if imp.loss > 0.0 {
            args.extend(["--loss".into(), format!("{}", imp.loss)]);
        }
        if let Some((delay, jitter)) = imp.delay {
            // Listen before packets are queued: with --queue-bypass nothing waits meanwhile.
            self.delayer = Some(
                Delayer::start(&self.ns('r'), QUEUE, delay, jitter)
                    .unwrap_or_else(|e| panic!("NFQUEUE delayer in {}: {e}", self.ns('r'))),
            );
            args.extend(["--queue".into(), QUEUE.to_string()]);
        }
        if imp.mtu {
            args.extend(["--gso-segs".into(), "1".into()]);
        }
        let out = Command::new("bash")
            .arg(script())
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "netns.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.impairment = imp;
        self.retrans0 = self.retrans();
    }

    /// TCP segments retransmitted so far by both hosts, and of those the ones the receiver
    /// reported as already received (D-SACK: spurious, typically after reordering).
    pub(crate) fn retrans(&self) -> (u64, u64) {
        let mut total = (0, 0);
        for side in ['a', 'b'] {
            let out = self
                .cmd(side, "cat")
                .args(["/proc/net/snmp", "/proc/net/netstat"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            total.0 += counter(&text, "Tcp:", "RetransSegs");
            total.1 += counter(&text, "TcpExt:", "TCPDSACKRecvSegs");
        }
        total
    }

    /// Router counters and retransmissions since the last [`Net::impair`].
    pub(crate) fn figures(&self) -> NetFigures {
        let retrans = self.retrans();
        let (delayed, reordered) = self.delayer.as_ref().map_or((0, 0), |d| {
            (
                d.stats.packets.load(std::sync::atomic::Ordering::Relaxed),
                d.stats.reordered.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        // After the delayer: iptables counts a packet before it is queued.
        let out = Command::new("bash")
            .arg(script())
            .args(["counters", &self.prefix])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let num = |k: &str| -> u64 {
            let mut it = text.split_whitespace();
            while let Some(w) = it.next() {
                if w == k {
                    return it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
            0
        };
        NetFigures {
            forwarded: num("queued") + num("accepted"),
            dropped: num("dropped"),
            delayed,
            reordered,
            retrans: retrans.0.saturating_sub(self.retrans0.0),
            spurious: retrans.1.saturating_sub(self.retrans0.1),
        }
    }

    /// Checks that the impairment really happened during a scenario.
    pub(crate) fn check_impaired(&self, f: &NetFigures) -> Result<(), String> {
        let imp = self.impairment;
        if f.forwarded == 0 {
            return Err(format!("nothing crossed the router: {f:?}"));
        }
        if imp.loss > 0.0 && f.dropped == 0 {
            return Err(format!("loss set but nothing dropped: {f:?}"));
        }
        if let Some((_, jitter)) = imp.delay {
            if f.delayed == 0 {
                return Err(format!("delay set but nothing queued: {f:?}"));
            }
            if !jitter.is_zero() && f.delayed > 1000 && f.reordered == 0 {
                return Err(format!("jitter but no reordering: {f:?}"));
            }
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.delayer.take() {
            let _ = d.stop();
        }
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.prefix])
            .output();
    }
}

/// One row of the reliability table.
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) impairment: String,
    pub(crate) messages: String,
    pub(crate) lost_dup: String,
    pub(crate) result: String,
    pub(crate) figures: String,
}

impl Row {
    pub(crate) fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.scenario, self.impairment, self.messages, self.lost_dup, self.result, self.figures
        )
    }
}

pub(crate) const TABLE_HEADER: &str = "| scenario | impairment | messages | lost / duplicated | result | figures |\n|---|---|---|---|---|---|";

/// Where the table goes: `MSGR2_NETNS_REPORT`, else `target/reliability/netns.md`.
pub(crate) fn report_path() -> PathBuf {
    match std::env::var_os("MSGR2_NETNS_REPORT") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("reliability/netns.md"),
    }
}

/// Stores `group`'s rows beside the report and rewrites the report from every group's rows
/// (so each test can run alone and the file still holds the latest rows of both).
pub(crate) fn write_report(group: &str, rows: &[Row]) {
    let path = report_path();
    let dir = path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let rows_text: String = rows.iter().map(|r| r.markdown() + "\n").collect();
    std::fs::write(dir.join(format!("{stem}.{group}.rows")), rows_text).unwrap();
    let mut groups: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{stem}.")) && n.ends_with(".rows")
        })
        .collect();
    groups.sort();
    let mut doc = format!(
        "<!-- written by bench/tests/netns.rs ({}); binary {}; kernel {} -->\n{TABLE_HEADER}\n",
        "cargo test -p msgr2-bench --test netns",
        msgr2().display(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    for g in groups {
        doc += &std::fs::read_to_string(g).unwrap_or_default();
    }
    std::fs::write(&path, doc).unwrap();
    println!("\nwritten to {}", path.display());
}

pub(crate) fn print_rows(title: &str, rows: &[Row]) {
    println!("\n{title}\n{TABLE_HEADER}");
    for r in rows {
        println!("{}", r.markdown());
    }
}

/// A `msgr2 soak --role server` inside namespace A, killed (by its own pid) if the test gives
/// up on it; otherwise it exits after the client's BYE and [`SoakServer::finish`] reads its
/// report.
pub(crate) struct SoakServer {
    pub(crate) child: Child,
    pub(crate) addrs: String,
    pub(crate) stdout: Option<std::thread::JoinHandle<String>>,
    pub(crate) stderr: Option<std::thread::JoinHandle<String>>,
}

impl SoakServer {
    pub(crate) fn start(net: &Net, mode: &str, inject: u64) -> Result<SoakServer, String> {
        let listen = format!("v2:{A_IP}:0");
        let mut child = net
            .cmd('a', msgr2())
            .args(["soak", "--role", "server", "--listen", &listen, "--json"])
            .args(["--mode", mode, "--inject-failures", &inject.to_string()])
            .args(["--stall-timeout", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn soak server: {e}"))?;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut err = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        // The first line is `{"event":"listening","addrs":"v2:198.18.1.1:PORT/NONCE"}`.
        let mut first = String::new();
        let _ = out.read_line(&mut first);
        let stdout = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }));
        let mut server = SoakServer {
            child,
            addrs: String::new(),
            stdout,
            stderr,
        };
        let v: Value = serde_json::from_str(&first)
            .map_err(|e| format!("soak server's first line {first:?}: {e}"))?;
        server.addrs = v["addrs"]
            .as_str()
            .filter(|a| a.contains(A_IP))
            .ok_or_else(|| format!("soak server not listening on {A_IP}: {first:?}"))?
            .to_owned();
        Ok(server)
    }

    /// Waits up to `limit` for the server to exit; returns its JSON report.
    pub(crate) fn finish(mut self, limit: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().map_err(|e| e.to_string())? {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().map(|t| t.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
        let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
        let Some(status) = status else {
            return Err(format!(
                "soak server did not exit within {limit:?}; stderr: {stderr}"
            ));
        };
        let report = last_json(&stdout, "server")?;
        if !status.success() {
            return Err(format!(
                "soak server exited with {status}: {report}\nstderr: {stderr}"
            ));
        }
        Ok(report)
    }
}

impl Drop for SoakServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
