//! Process-wide allocator tuning for large messages (opt-in).
//!
//! Every received message's data is a fresh `Vec` handed to the dispatcher (which owns and
//! drops it), and senders typically build a fresh `Vec` per message. With glibc's defaults a
//! multi-MiB allocation is an `mmap` (or heap memory trimmed back to the kernel after the
//! previous free), so every such message page-faults its whole buffer in again: on loopback
//! at 4 MiB that was ≈ 7 % of both cores (`exc_page_fault`, `clear_page`, `unmap_page_range`).
//! Keeping allocations up to 64 MiB on the heap and never trimming below 1 GiB makes the
//! freed buffer of one message the buffer of the next.

/// Tunes glibc malloc (mmap threshold 64 MiB, trim threshold 1 GiB, top pad 64 MiB) so large
/// message buffers are recycled instead of being page-faulted in per message. Process-wide,
/// so it is the embedder's call: daemons and benchmarks moving large messages want it. Returns
/// whether the allocator accepted it (always `false` off glibc).
pub fn tune_malloc_for_large_messages() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ok = true;
        for (param, value) in [
            (libc::M_MMAP_THRESHOLD, 64 << 20),
            (libc::M_TRIM_THRESHOLD, 1 << 30),
            (libc::M_TOP_PAD, 64 << 20),
        ] {
            // SAFETY: mallopt takes plain integers and is thread-safe in glibc.
            ok &= unsafe { libc::mallopt(param, value) } == 1;
        }
        ok
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
