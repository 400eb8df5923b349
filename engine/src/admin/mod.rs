//! Ceph's admin socket: a UNIX socket answering `ceph daemon SOCK CMD` /
//! `ceph --admin-daemon SOCK CMD` with `perf dump`, `perf schema`, `config show`,
//! `config get`, `version`, `help` and `messenger status`.
//!
//! One [`AdminSocket`] serves a daemon (like Ceph's, one per `CephContext`); messengers
//! register with it ([`AdminSocket::add_messenger`], or [`crate::MessengerBuilder::admin_socket`]
//! for a one-messenger daemon). Each messenger's reactor threads are Ceph's worker threads:
//! `AsyncMessenger::Worker-N`, numbered across messengers in registration order.
//!
//! The socket has its own thread, which answers one connection at a time (as Ceph does) with
//! read and write timeouts. It reads counters as [`crate::Messenger::counters`] does (relaxed
//! loads of per-core atomics), so it never blocks a reactor. The socket file is created with
//! mode 0600 before it listens; a stale socket at the path (nobody answering) is replaced, a
//! live one is an error; the file is removed at shutdown if it is still ours.

mod client;
pub(crate) mod commands;
mod json;
mod path;
mod perf;
mod probe;
mod request;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use socket2::{Domain, SockAddr, Socket, Type};
use thiserror::Error;
use tracing::{debug, info, warn};

pub(crate) use self::probe::Probe;

pub use client::request;
pub use path::{MetaVars, DEFAULT_ADMIN_SOCKET, DEFAULT_RUN_DIR};
pub use request::MAX_REQUEST;

/// How long one client may take to send its request or read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the admin socket could not be opened.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The path does not fit a `sockaddr_un`.
    #[error("admin socket path {path:?} is {len} bytes; the limit is 107")]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Another live process answers on the path.
    #[error("admin socket {0:?} is in use by a running process")]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("admin socket path {0:?} exists and is not a socket")]
    NotASocket(PathBuf),
    /// An OS call failed.
    #[error("admin socket {path:?}: {op}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What `version` answers: Ceph prints `version`, `release` and `release_type`.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// `version` (default: this crate's version).
    pub version: String,
    /// `release` (default `msgr2-rs`).
    pub release: String,
    /// `release_type` (default `dev`).
    pub release_type: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            release: "msgr2-rs".to_owned(),
            release_type: "dev".to_owned(),
        }
    }
}

/// A registered messenger.
struct Registered {
    label: String,
    probe: Probe,
    /// Global number of its first worker.
    first_worker: usize,
}

/// State shared with the socket thread.
struct Inner {
    messengers: Mutex<Vec<Registered>>,
    config: Mutex<Vec<(String, String)>>,
    version: Mutex<VersionInfo>,
}

/// A running admin socket; closed (thread joined, file removed) on [`AdminSocket::shutdown`]
/// or drop.
pub struct AdminSocket {
    inner: Arc<Inner>,
    path: PathBuf,
    /// (device, inode) of the socket file we created.
    ident: (u64, u64),
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AdminSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSocket")
            .field("path", &self.path)
            .finish()
    }
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> AdminError {
    let path = path.to_owned();
    move |source| AdminError::Io { path, op, source }
}

impl AdminSocket {
    /// Creates the socket at `path` (mode 0600, replacing a stale socket) and starts serving.
    pub fn bind(path: impl Into<PathBuf>) -> Result<AdminSocket, AdminError> {
        let path = path.into();
        let listener = listen(&path)?;
        let meta = std::fs::metadata(&path).map_err(io_err(&path, "stat"))?;
        let stop =
            eventfd(0, EventfdFlags::CLOEXEC).map_err(|e| io_err(&path, "eventfd")(e.into()))?;
        let stop_rx = stop.try_clone().map_err(io_err(&path, "dup"))?;
        let inner = Arc::new(Inner {
            messengers: Mutex::new(Vec::new()),
            config: Mutex::new(Vec::new()),
            version: Mutex::new(VersionInfo::default()),
        });
        let thread = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("msgr2-admin".into())
                .spawn(move || serve(listener, stop_rx, inner))
                .map_err(io_err(&path, "spawn thread"))?
        };
        info!(path = %path.display(), "admin socket listening");
        Ok(AdminSocket {
            inner,
            path,
            ident: (meta.dev(), meta.ino()),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shows `messenger`'s counters, sessions and throttles under `label` (its dispatch
    /// throttle is `throttle-msgr_dispatch_throttler-LABEL`). Its workers get the next numbers.
    pub fn add_messenger(&self, label: &str, messenger: &crate::Messenger) {
        self.add_probe(label, messenger.probe());
    }

    pub(crate) fn add_probe(&self, label: &str, probe: Probe) {
        let mut m = lock(&self.inner.messengers);
        let first_worker = m
            .last()
            .map_or(0, |r| r.first_worker + r.probe.core_count());
        m.push(Registered {
            label: label.to_owned(),
            probe,
            first_worker,
        });
    }

    /// Replaces what `config show` and `config get` answer: (Ceph option name, value) pairs.
    pub fn set_config(&self, pairs: Vec<(String, String)>) {
        *lock(&self.inner.config) = pairs;
    }

    /// Adds or replaces one option shown by `config show` / `config get`.
    pub fn set_option(&self, name: &str, value: &str) {
        let mut c = lock(&self.inner.config);
        c.retain(|(k, _)| k != name);
        c.push((name.to_owned(), value.to_owned()));
    }

    /// Replaces what `version` answers.
    pub fn set_version(&self, v: VersionInfo) {
        *lock(&self.inner.version) = v;
    }

    /// Stops serving, joins the thread and removes the socket file if it is still ours.
    pub fn shutdown(mut self) {
        self.close();
    }

    fn close(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
        let _ = t.join();
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.ident {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        debug!(path = %self.path.display(), "admin socket closed");
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds `path` with mode 0600 before listening, replacing a stale socket.
fn listen(path: &Path) -> Result<UnixListener, AdminError> {
    let len = path.as_os_str().len();
    if len > 107 {
        return Err(AdminError::PathTooLong {
            path: path.to_owned(),
            len,
        });
    }
    let addr = SockAddr::unix(path).map_err(io_err(path, "socket address"))?;
    let sock =
        Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(io_err(path, "socket"))?;
    if let Err(e) = sock.bind(&addr) {
        if e.kind() != std::io::ErrorKind::AddrInUse {
            return Err(io_err(path, "bind")(e));
        }
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path, "stat"))?;
        if !meta.file_type().is_socket() {
            return Err(AdminError::NotASocket(path.to_owned()));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(AdminError::InUse(path.to_owned()));
        }
        warn!(path = %path.display(), "removing stale admin socket");
        std::fs::remove_file(path).map_err(io_err(path, "remove stale socket"))?;
        sock.bind(&addr).map_err(io_err(path, "bind"))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(path, "chmod 0600"))?;
    sock.listen(16).map_err(io_err(path, "listen"))?;
    Ok(UnixListener::from(sock))
}

/// The socket thread: waits for a connection or the stop signal, answers one at a time.
fn serve(listener: UnixListener, stop: OwnedFd, inner: Arc<Inner>) {
    loop {
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::new(&stop, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                warn!(error = %e, "admin socket: poll failed; closing");
                return;
            }
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => answer(stream, &inner),
            Err(e) => warn!(error = %e, "admin socket: accept failed"),
        }
    }
}

/// Reads one request, answers it, closes.
fn answer(mut stream: UnixStream, inner: &Inner) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let incoming = match request::read_request(&mut stream) {
        Ok(i) => i,
        Err(e) => {
            // Ceph closes such a connection without an answer.
            warn!(error = %e, "admin socket: bad request, closing");
            return;
        }
    };
    let text = incoming.text();
    let body = {
        let config = lock(&inner.config).clone();
        let version = lock(&inner.version).clone();
        let view = commands::DaemonView {
            version: (&version.version, &version.release, &version.release_type),
            config: &config,
            messengers: snapshot(inner),
        };
        commands::execute(&text, &view)
    };
    debug!(request = %text, bytes = body.len(), "admin socket request");
    if let Err(e) = stream.write_all(&request::frame(body.as_bytes())) {
        debug!(error = %e, "admin socket: writing the reply failed");
    }
}

/// The registered messengers' state, read now.
fn snapshot(inner: &Inner) -> Vec<commands::MessengerView> {
    let regs = lock(&inner.messengers);
    regs.iter()
        .map(|r| {
            let p = &r.probe;
            commands::MessengerView {
                label: r.label.clone(),
                name: p.name(),
                addrs: p.addrs(),
                stopped: p.stopped(),
                workers: p
                    .core_counters()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (cpu, counters))| {
                        (
                            perf::WorkerView {
                                index: r.first_worker + i,
                                counters,
                            },
                            cpu,
                        )
                    })
                    .collect(),
                sessions: p.sessions(),
                dispatch_throttle: p.dispatch_throttle(),
                policy_throttles: p.policy_throttles(),
            }
        })
        .collect()
}
