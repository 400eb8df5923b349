//! # msgr2-testpeer
//!
//! A scripted msgr2 peer on a real TCP socket, in the spirit of h2's mock peer: tests read
//! like transcripts (`send_banner`, `expect_frame`, `send_control`, `expect_closed`) and can
//! do what no well-behaved implementation does: send garbage, stop mid-banner, lie about
//! lengths, corrupt crcs, replay frames, or never read.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use msgr2_codec::banner::{Banner, Revision, BANNER_PREFIX_LEN};
use msgr2_codec::frame::{assemble, Frame, Limits, Tag, ALIGN_DEFAULT};
use msgr2_codec::payload::ControlPayload;
use msgr2_proto::framing::RxFraming;

/// How a scripted step failed (tests assert on these).
#[derive(Debug)]
pub enum PeerError {
    /// The other side closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// Bytes arrived that do not decode.
    Garbage(String),
    /// A socket error.
    Io(std::io::Error),
}

/// A scripted peer.
pub struct Peer {
    stream: TcpStream,
    rx: Option<RxFraming>,
    revision: Revision,
    inbox: Vec<u8>,
}

impl Peer {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            rx: None,
            revision: Revision::Rev1,
            inbox: Vec::new(),
        })
    }

    /// The underlying socket (e.g. to shut down one direction).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b)
    }

    /// Sends our banner.
    pub fn send_banner(&mut self, banner: Banner) -> std::io::Result<()> {
        let mut b = Vec::new();
        banner.encode(&mut b);
        self.send_raw(&b)
    }

    fn read_some(&mut self, deadline: Instant) -> Result<(), PeerError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PeerError::Timeout);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(PeerError::Io)?;
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(PeerError::Closed),
            Ok(n) => {
                self.inbox.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(PeerError::Timeout)
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                Err(PeerError::Closed)
            }
            Err(e) => Err(PeerError::Io(e)),
        }
    }

    /// Reads the peer's banner and sets the framing revision from it and `ours`.
    pub fn expect_banner(&mut self, ours: Banner, within: Duration) -> Result<Banner, PeerError> {
        let deadline = Instant::now() + within;
        while self.inbox.len() < BANNER_PREFIX_LEN + 16 {
            self.read_some(deadline)?;
        }
        let mut prefix = [0u8; BANNER_PREFIX_LEN];
        prefix.copy_from_slice(&self.inbox[..BANNER_PREFIX_LEN]);
        let len = Banner::decode_prefix(&prefix).map_err(|e| PeerError::Garbage(e.to_string()))?;
        while self.inbox.len() < BANNER_PREFIX_LEN + len {
            self.read_some(deadline)?;
        }
        let b = Banner::decode_payload(&self.inbox[BANNER_PREFIX_LEN..BANNER_PREFIX_LEN + len])
            .map_err(|e| PeerError::Garbage(e.to_string()))?;
        self.inbox.drain(..BANNER_PREFIX_LEN + len);
        self.revision =
            Banner::negotiate(&ours, &b).map_err(|e| PeerError::Garbage(e.to_string()))?;
        self.rx = Some(RxFraming::crc(self.revision, Limits::default()));
        Ok(b)
    }

    /// The framing revision in force.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// A crc-mode frame's bytes in the current revision.
    pub fn frame_bytes(&self, tag: Tag, segments: &[(&[u8], u16)]) -> Vec<u8> {
        let mut out = Vec::new();
        assemble(self.revision, tag, segments, &mut out);
        out
    }

    /// Sends a control payload as a crc-mode frame.
    pub fn send_control<P: ControlPayload>(&mut self, p: &P) -> std::io::Result<()> {
        let b = p.to_bytes();
        let f = self.frame_bytes(P::TAG, &[(&b, ALIGN_DEFAULT)]);
        self.send_raw(&f)
    }

    /// Waits for the next complete frame.
    pub fn expect_frame(
        &mut self,
        within: Duration,
    ) -> Result<Frame<msgr2_codec::Data>, PeerError> {
        let deadline = Instant::now() + within;
        loop {
            if !self.inbox.is_empty() {
                let rx = self
                    .rx
                    .as_mut()
                    .ok_or_else(|| PeerError::Garbage("no banner yet".into()))?;
                let (used, f) = rx
                    .feed(&self.inbox)
                    .map_err(|e| PeerError::Garbage(e.to_string()))?;
                self.inbox.drain(..used);
                if let Some(f) = f {
                    return Ok(f);
                }
            }
            self.read_some(deadline)?;
        }
    }

    /// Waits for a control frame of type `P`.
    pub fn expect_control<P: ControlPayload>(&mut self, within: Duration) -> Result<P, PeerError> {
        let f = self.expect_frame(within)?;
        if f.tag() != P::TAG {
            return Err(PeerError::Garbage(format!(
                "expected {}, got {}",
                P::TAG,
                f.tag()
            )));
        }
        P::decode(f.segment(0)).map_err(|e| PeerError::Garbage(e.to_string()))
    }

    /// Reads and discards until the other side closes; `Ok(elapsed)` if it did within `within`.
    pub fn expect_closed(&mut self, within: Duration) -> Result<Duration, PeerError> {
        let start = Instant::now();
        let deadline = start + within;
        loop {
            match self.read_some(deadline) {
                Ok(()) => self.inbox.clear(),
                Err(PeerError::Closed) => return Ok(start.elapsed()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Peer {
    /// Plays a well-behaved client up to READY with auth none and crc mode (msgr2.1), so a
    /// test can misbehave afterwards. `target` is the server's exact msgr2 address.
    pub fn handshake_none(
        &mut self,
        target: msgr2_codec::addr::EntityAddr,
        within: Duration,
    ) -> Result<msgr2_codec::payload::ServerIdent, PeerError> {
        use msgr2_codec::addr::{AddrType, EntityAddr, EntityAddrVec};
        use msgr2_codec::entity::{EntityName, EntityType};
        use msgr2_codec::payload as p;
        // A Pacific banner: no COMPRESSION_REQUEST/DONE after AUTH_SIGNATURE.
        self.send_banner(Banner::PACIFIC).map_err(PeerError::Io)?;
        self.expect_banner(Banner::PACIFIC, within)?;
        let io = PeerError::Io;
        self.send_control(&p::Hello {
            entity_type: EntityType::Client,
            peer_addr: target,
        })
        .map_err(io)?;
        let _: p::Hello = self.expect_control(within)?;
        let name = EntityName::new(EntityType::Client, "admin");
        let mut auth = vec![msgr2_crypto::auth::AUTH_MODE_MON];
        name.encode(&mut auth);
        auth.extend_from_slice(&0u64.to_le_bytes());
        self.send_control(&p::AuthRequest {
            method: p::AUTH_NONE,
            preferred_modes: vec![p::CON_MODE_CRC],
            auth_payload: auth,
        })
        .map_err(PeerError::Io)?;
        let _: p::AuthDone = self.expect_control(within)?;
        self.send_control(&p::AuthSignature { sha256: [0; 32] })
            .map_err(PeerError::Io)?;
        let _: p::AuthSignature = self.expect_control(within)?;
        let me = EntityAddr::new(
            AddrType::Any,
            "127.0.0.1:0"
                .parse()
                .map_err(|_| PeerError::Garbage("addr".into()))?,
            4242,
        );
        self.send_control(&p::ClientIdent {
            addrs: EntityAddrVec(vec![me]),
            target_addr: target,
            gid: -1,
            global_seq: 1,
            supported_features: msgr2_proto::config::PACIFIC_FEATURES,
            required_features: msgr2_proto::config::FEATURE_MSG_ADDR2,
            flags: p::IDENT_FLAG_LOSSY,
            client_cookie: 7,
        })
        .map_err(PeerError::Io)?;
        self.expect_control(within)
    }
}

/// The reliability table (`| scenario | load | faults injected | messages | lost/duplicated |
/// result |`) that the hostile-peer tests fill, one row per scenario.
///
/// Each scenario stores its row in `<dir>/hostile.<scenario>.rows` and then rewrites
/// `<dir>/hostile.md` from every stored row (sorted by file name, written to a temporary file
/// and renamed), so tests running in parallel, or alone, never clobber each other's rows.
pub mod report {
    use std::path::{Path, PathBuf};

    /// The table's header lines.
    pub const HEADER: &str = "| scenario | load | faults injected | messages | lost/duplicated | result |\n|---|---|---|---|---|---|";

    /// Where the table goes: `$MSGR2_RELIABILITY_DIR`, else `reliability/` beside the
    /// caller's `CARGO_TARGET_TMPDIR` (so `target/reliability`).
    pub fn dir(cargo_target_tmpdir: &str) -> PathBuf {
        match std::env::var_os("MSGR2_RELIABILITY_DIR") {
            Some(d) => PathBuf::from(d),
            None => Path::new(cargo_target_tmpdir)
                .parent()
                .unwrap_or(Path::new("."))
                .join("reliability"),
        }
    }

    /// One row of the table.
    #[derive(Debug, Clone)]
    pub struct Row {
        /// What misbehaves.
        pub scenario: String,
        /// Connections, message sizes, duration.
        pub load: String,
        /// What was injected (bit flips, replays, wrong keys, bytes never read).
        pub faults: String,
        /// Messages sent / delivered.
        pub messages: String,
        /// Messages lost and duplicated.
        pub lost_dup: String,
        /// The outcome with its figures.
        pub result: String,
    }

    impl Row {
        /// The markdown line (pipes in cells are escaped).
        pub fn markdown(&self) -> String {
            let cells = [
                &self.scenario,
                &self.load,
                &self.faults,
                &self.messages,
                &self.lost_dup,
                &self.result,
            ];
            let cells: Vec<String> = cells
                .iter()
                .map(|c| c.replace('|', "\\|").replace('\n', " "))
                .collect();
            format!("| {} |", cells.join(" | "))
        }
    }

    /// Prints `row`, stores it as `<dir>/hostile.<key>.rows` and rewrites `<dir>/hostile.md`.
    /// Returns the table's path.
    pub fn write(dir: &Path, key: &str, row: &Row) -> std::io::Result<PathBuf> {
        println!("{HEADER}\n{}", row.markdown());
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("hostile.{key}.rows")),
            row.markdown() + "\n",
        )?;
        let mut rows: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("hostile.") && n.ends_with(".rows")
            })
            .collect();
        rows.sort();
        let mut doc = format!(
            "<!-- written by tests/peer/tests/hostile_secure.rs (cargo test -p msgr2-testpeer); one row per scenario -->\n{HEADER}\n"
        );
        for r in rows {
            doc += &std::fs::read_to_string(r).unwrap_or_default();
        }
        let path = dir.join("hostile.md");
        let tmp = dir.join(format!("hostile.md.{}.{key}.tmp", std::process::id()));
        std::fs::write(&tmp, doc)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}
