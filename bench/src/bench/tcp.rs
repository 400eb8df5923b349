//! The `tcp` mode: the kernel's own single-stream ceiling, measured in the same run as the
//! other modes and without our engine.
//!
//! One thread pinned to the server's first core reads, one pinned to the client's first core
//! writes, over a plain blocking loopback socket pair, in [`CHUNK`]-byte writes and reads
//! (like `iperf3 -l 1M`: with 128 KiB reads the same link moves about half as much, so the
//! size matters). No framing, no replies, no latency: the figure every other mode's GB/s can
//! be held against. "Messages" are the bytes divided by the cell's size, so the row lines up
//! with the others.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cpu;
use super::error::BenchError;
use super::report::Measure;
use super::workload::new_histogram;

/// Bytes per write and per read.
pub const CHUNK: usize = 1 << 20;

/// Streams for `duration` from a writer on `client_core` to a reader on `server_core`.
pub fn measure(
    size: u64,
    duration: Duration,
    server_core: Option<usize>,
    client_core: Option<usize>,
) -> Result<Measure, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::io("tcp: bind", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::io("tcp: bind", e))?;
    let stop = AtomicBool::new(false);
    let load0 = cpu::machine_and_self_cpu_s();
    let t0 = Instant::now();
    let (sent, (received, server_ns), client_ns) = std::thread::scope(|s| {
        let reader = s.spawn(|| -> Result<(u64, u64), BenchError> {
            if let Some(c) = server_core {
                let _ = cpu::pin_to(c);
            }
            let (mut sock, _) = listener
                .accept()
                .map_err(|e| BenchError::io("tcp: accept", e))?;
            let c0 = cpu::own_thread_cpu_ns();
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0u64;
            loop {
                match sock.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => n += k as u64,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(BenchError::io("tcp: read", e)),
                }
            }
            Ok((n, cpu::own_thread_cpu_ns().saturating_sub(c0)))
        });
        let writer = s.spawn(|| -> Result<(u64, u64), BenchError> {
            if let Some(c) = client_core {
                let _ = cpu::pin_to(c);
            }
            let mut sock =
                TcpStream::connect(addr).map_err(|e| BenchError::io("tcp: connect", e))?;
            let c0 = cpu::own_thread_cpu_ns();
            let buf = vec![0x5au8; CHUNK];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sock.write_all(&buf)
                    .map_err(|e| BenchError::io("tcp: write", e))?;
                n += CHUNK as u64;
            }
            let ns = cpu::own_thread_cpu_ns().saturating_sub(c0);
            drop(sock);
            Ok((n, ns))
        });
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let w = writer
            .join()
            .map_err(|_| BenchError::Peer("tcp: writer panicked".into()))?;
        let r = reader
            .join()
            .map_err(|_| BenchError::Peer("tcp: reader panicked".into()))?;
        let (sent, client_ns) = w?;
        Ok::<_, BenchError>((sent, r?, client_ns))
    })?;
    let elapsed = t0.elapsed().as_secs_f64();
    let load1 = cpu::machine_and_self_cpu_s();
    if received != sent {
        return Err(BenchError::Peer(format!(
            "tcp: {sent} bytes written, {received} read"
        )));
    }
    Ok(Measure {
        bytes: received,
        msgs: received / size.max(1),
        elapsed_s: elapsed,
        hist: new_histogram(),
        client_cpu_ns: client_ns,
        client_allocs: None,
        server_allocs: None,
        heap_bytes_per_conn: None,
        per_core: Vec::new(),
        server_cpu_ns: server_ns,
        client_io: None,
        other_cpus: load0
            .zip(load1)
            .map(|((m0, s0), (m1, s1))| ((m1 - m0) - (s1 - s0)).max(0.0) / elapsed.max(1e-9)),
    })
}
