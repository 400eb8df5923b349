//! The client side of the admin-socket protocol (what `ceph daemon SOCK ...` does): for tools
//! and tests that query a socket without Ceph's CLI.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends `req` as it is (a JSON command ended by NUL or newline, or anything else) to the
/// admin socket at `path`, and returns the reply's body, or `None` when the socket closed
/// without answering (as it does for an oversized request). A reply that is not UTF-8 is
/// converted lossily; `timeout` bounds each read.
pub fn request(path: &Path, req: &[u8], timeout: Duration) -> std::io::Result<Option<String>> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    // The server may close before reading everything (too long a request): that is an answer.
    let _ = s.write_all(req);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}
