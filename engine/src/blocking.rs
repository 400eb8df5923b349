//! A minimal blocking driver: one `Connection` over one `TcpStream`, one thread.
//!
//! It makes no attempt at throughput. It serves as the plain-socket baseline of `msgr2 bench
//! --transport blocking` and drives tests that script a single connection step by step
//! (`next_event`); applications, `msgr2 ping` and `msgr2 server` use the io_uring engine
//! ([`crate::Messenger`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgr2_codec::addr::EntityAddr;
use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::UTime;
use msgr2_proto::{Config, Connection, Event, Message, PeerInfo, ProtoError};
use thiserror::Error;

/// Why a blocking connection failed.
#[derive(Debug, Error)]
pub enum DriverError {
    /// The address has no socket address to connect to.
    #[error("address {0} has no IP and port")]
    NoSocket(String),
    /// Connecting, reading or writing failed.
    #[error("{op} {peer}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The peer.
        peer: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The protocol failed (typed, see [`ProtoError`]).
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// The protocol produced an event the driver did not expect at this point.
    #[error("unexpected event: {0}")]
    Unexpected(String),
    /// Nothing arrived within the caller's timeout.
    #[error("timed out after {0:?} waiting for the peer")]
    Timeout(Duration),
}

/// One connection driven with blocking socket calls.
pub struct BlockingConnection {
    stream: TcpStream,
    conn: Connection,
    peer: String,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl BlockingConnection {
    /// Connects to `target` (a msgr2 address, nonce included) and completes the handshake.
    pub fn connect(
        config: Arc<Config>,
        target: EntityAddr,
        peer_type: EntityType,
        global_seq: u64,
        timeout: Duration,
    ) -> Result<(Self, PeerInfo), DriverError> {
        let sock = target
            .sock
            .ok_or_else(|| DriverError::NoSocket(target.to_string()))?;
        let peer = target.to_string();
        let stream =
            TcpStream::connect_timeout(&sock, timeout).map_err(|source| DriverError::Io {
                op: "connect to",
                peer: peer.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let conn = Connection::client(config, target, peer_type, global_seq, Instant::now());
        Self::handshake(Self::wrap(stream, conn, peer), timeout)
    }

    /// Runs the client side of the handshake over `stream`, a socket already connected to
    /// something that forwards to `target` (a relay, a proxy). `target` is still the address
    /// the handshake names (HELLO, CLIENT_IDENT) and expects in the server's SERVER_IDENT, so
    /// the server sees a client that dialled it directly.
    pub fn connect_over(
        config: Arc<Config>,
        stream: TcpStream,
        target: EntityAddr,
        peer_type: EntityType,
        global_seq: u64,
        timeout: Duration,
    ) -> Result<(Self, PeerInfo), DriverError> {
        let _ = stream.set_nodelay(true);
        let peer = target.to_string();
        let conn = Connection::client(config, target, peer_type, global_seq, Instant::now());
        Self::handshake(Self::wrap(stream, conn, peer), timeout)
    }

    /// Runs the server side of the handshake on an accepted socket.
    pub fn accept(
        config: Arc<Config>,
        stream: TcpStream,
        peer_socket: SocketAddr,
        global_seq: u64,
        timeout: Duration,
    ) -> Result<(Self, PeerInfo), DriverError> {
        let _ = stream.set_nodelay(true);
        let conn = Connection::server(config, peer_socket, global_seq, Instant::now());
        Self::handshake(Self::wrap(stream, conn, peer_socket.to_string()), timeout)
    }

    fn wrap(stream: TcpStream, conn: Connection, peer: String) -> Self {
        Self {
            stream,
            conn,
            peer,
            out: Vec::new(),
            buf: vec![0; 256 << 10],
        }
    }

    fn handshake(mut me: Self, timeout: Duration) -> Result<(Self, PeerInfo), DriverError> {
        match me.next_event(timeout)? {
            Event::Ready(info) => Ok((me, info)),
            other => Err(DriverError::Unexpected(format!(
                "{other:?} before the handshake completed"
            ))),
        }
    }

    /// The protocol state machine (for negotiated details).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Queues and sends a message.
    pub fn send(&mut self, msg: Message) -> Result<(), DriverError> {
        self.conn.send_message(msg)?;
        self.flush()
    }

    /// Sends KEEPALIVE2 stamped with the wall clock.
    pub fn keepalive(&mut self) -> Result<UTime, DriverError> {
        let stamp = crate::wall_stamp();
        self.conn.send_keepalive(stamp)?;
        self.flush()?;
        Ok(stamp)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        self.out.clear();
        self.conn.poll_transmit(&mut self.out);
        if !self.out.is_empty() {
            let peer = self.peer.clone();
            self.stream
                .write_all(&self.out)
                .map_err(|source| DriverError::Io {
                    op: "write to",
                    peer,
                    source,
                })?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for the next event, sending whatever the protocol wants sent
    /// (including what it queued before failing, e.g. IDENT_MISSING_FEATURES).
    pub fn next_event(&mut self, timeout: Duration) -> Result<Event, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.flush()?;
            if let Some(ev) = self.conn.poll_event() {
                return Ok(ev);
            }
            let now = Instant::now();
            self.conn.handle_timeout(now)?;
            let mut wake = deadline;
            if let Some(t) = self.conn.poll_timeout() {
                wake = wake.min(t);
            }
            if now >= deadline {
                return Err(DriverError::Timeout(timeout));
            }
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            // Input stashed while the receive throttle was full: retry it (the application may
            // have released budget by dropping messages) before blocking on the socket.
            if self.conn.pending_input() > 0 {
                let before = self.conn.pending_input();
                if let Err(e) = self.conn.handle_input(&[]) {
                    let _ = self.flush();
                    return Err(e.into());
                }
                if self.conn.pending_input() < before {
                    continue;
                }
            }
            let _ = self.stream.set_read_timeout(Some(wait));
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Err(self.conn.handle_eof().into()),
                Ok(n) => {
                    let r = self.conn.handle_input(&self.buf[..n]);
                    if let Err(e) = r {
                        let _ = self.flush();
                        return Err(e.into());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(source) => {
                    return Err(DriverError::Io {
                        op: "read from",
                        peer: self.peer.clone(),
                        source,
                    })
                }
            }
        }
    }
}
