//! Per-thread CPU accounting and core pinning.
//!
//! Each side of a run (client, server) has a [`CpuSide`]: the threads working for that side
//! register themselves, and the side's CPU time is the sum of their per-thread CPU clocks
//! (user + system, read from `/proc/self/task/TID/schedstat`, or `stat` ticks where schedstat
//! is missing). A thread that exits adds its final figure to the side's tally first, so short
//! lived per-connection threads are counted too. Kernel work done on a thread's behalf (the
//! TCP send path, loopback receive processing in softirq context on the sending CPU) lands in
//! that thread's system time, which is what "CPU seconds per GB" is meant to include.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use msgr2_engine::alloc_count;

/// `USER_HZ`: the unit of the tick counts in `/proc/*/stat`, fixed at 100 by the Linux ABI on
/// every architecture this project targets (it is not the kernel's `CONFIG_HZ`).
const USER_HZ: u64 = 100;

/// The kernel thread id of the calling thread, from the `/proc/thread-self` link
/// (`PID/task/TID`); 0 if procfs is unavailable. (No `unsafe` outside the engine's buffer and
/// ring code, so no `gettid(2)` call here.)
pub fn gettid() -> i32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`).
pub fn own_thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of thread `tid` of this process in nanoseconds, or `None` if it has exited.
pub fn thread_cpu_ns(tid: i32) -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|f| f.parse().ok()) {
            return Some(ns);
        }
    }
    // Fallback: utime + stime in clock ticks (fields 14 and 15, after the `(comm)` field).
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime).saturating_mul(1_000_000_000) / USER_HZ)
}

/// CPU seconds so far of the whole machine (every CPU's non-idle time) and of this process,
/// from `/proc/stat` and `/proc/self/stat`. Their difference over a cell is the CPU that other
/// processes took meanwhile: the measure of how quiet the machine was.
pub fn machine_and_self_cpu_s() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| cpu.get(i))
        .sum();
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &me[me.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let mine: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz = USER_HZ as f64;
    Some((busy as f64 / hz, mine as f64 / hz))
}

/// The threads of one side and the CPU time of those that already exited, and the
/// allocation-counter slots of its threads (when the counting allocator is installed).
#[derive(Debug, Default)]
pub struct CpuSide {
    live: Mutex<Vec<i32>>,
    exited_ns: AtomicU64,
    alloc_slots: Mutex<Vec<usize>>,
    cores: Mutex<Vec<Arc<CoreSlot>>>,
}

/// One reactor thread of a side: the CPU it runs on, its kernel thread id, and the bench
/// messages it handled (bumped by its dispatcher).
#[derive(Debug)]
pub struct CoreSlot {
    cpu: usize,
    /// The thread's kernel id.
    pub tid: i32,
    /// Messages handled on this thread so far.
    pub msgs: AtomicU64,
}

/// What one CPU of a side did so far: messages handled and CPU nanoseconds of its reactor
/// threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreFigures {
    /// The CPU.
    pub cpu: u64,
    /// Messages handled.
    pub msgs: u64,
    /// CPU nanoseconds of its threads.
    pub cpu_ns: u64,
}

/// Registration of the calling thread with a [`CpuSide`]; dropping it (on the same thread)
/// moves the thread's CPU time into the side's tally of exited threads.
#[derive(Debug)]
pub struct CpuGuard {
    side: Arc<CpuSide>,
    tid: i32,
}

impl CpuSide {
    /// A new, empty side.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts the calling thread's heap allocations as this side's (for good: the counter
    /// slot of a thread is never reused, so an exited thread's count stays).
    pub fn count_allocs_of_this_thread(&self) {
        let slot = alloc_count::current_thread_slot();
        if let Ok(mut s) = self.alloc_slots.lock() {
            if !s.contains(&slot) {
                s.push(slot);
            }
        }
    }

    /// Heap allocations so far of the side's threads, or `None` without the counting
    /// allocator (or with no thread counted).
    pub fn total_allocs(&self) -> Option<u64> {
        let s = self.alloc_slots.lock().ok()?;
        (alloc_count::installed() && !s.is_empty())
            .then(|| s.iter().map(|&i| alloc_count::slot_allocations(i)).sum())
    }

    /// Registers the calling thread as the side's reactor on `cpu`: its CPU time, its heap
    /// allocations and the per-core figures (its dispatcher bumps the returned slot's
    /// messages).
    pub fn register_core(&self, cpu: usize) -> Arc<CoreSlot> {
        let tid = gettid();
        self.register(tid);
        self.count_allocs_of_this_thread();
        let slot = Arc::new(CoreSlot {
            cpu,
            tid,
            msgs: AtomicU64::new(0),
        });
        if let Ok(mut c) = self.cores.lock() {
            c.push(slot.clone());
        }
        slot
    }

    /// Per CPU, in CPU order: messages and CPU time so far of the side's reactor threads there.
    pub fn per_core(&self) -> Vec<CoreFigures> {
        let Ok(c) = self.cores.lock() else {
            return Vec::new();
        };
        let mut by_cpu: std::collections::BTreeMap<usize, CoreFigures> = Default::default();
        for s in c.iter() {
            let f = by_cpu.entry(s.cpu).or_insert(CoreFigures {
                cpu: s.cpu as u64,
                msgs: 0,
                cpu_ns: 0,
            });
            f.msgs += s.msgs.load(Ordering::Relaxed);
            f.cpu_ns += thread_cpu_ns(s.tid).unwrap_or(0);
        }
        by_cpu.into_values().collect()
    }

    /// Registers the calling thread until the guard drops.
    pub fn enter(self: &Arc<Self>) -> CpuGuard {
        self.count_allocs_of_this_thread();
        let tid = gettid();
        if let Ok(mut l) = self.live.lock() {
            l.push(tid);
        }
        CpuGuard {
            side: self.clone(),
            tid,
        }
    }

    /// Registers a long-lived thread (an engine core thread, say) by its kernel id.
    pub fn register(&self, tid: i32) {
        if let Ok(mut l) = self.live.lock() {
            if !l.contains(&tid) {
                l.push(tid);
            }
        }
    }

    /// Stops counting a registered thread, keeping what it used so far.
    pub fn forget(&self, tid: i32) {
        if let Ok(mut l) = self.live.lock() {
            let ns = thread_cpu_ns(tid).unwrap_or(0);
            self.exited_ns.fetch_add(ns, Ordering::AcqRel);
            l.retain(|t| *t != tid);
        }
    }

    /// Total CPU nanoseconds of the side's threads, live and exited.
    ///
    /// Read under the side's lock, so a thread leaving at the same moment is counted exactly
    /// once (as live or as exited).
    pub fn total_ns(&self) -> u64 {
        let Ok(live) = self.live.lock() else {
            return self.exited_ns.load(Ordering::Acquire);
        };
        let mut total = self.exited_ns.load(Ordering::Acquire);
        for &tid in live.iter() {
            total = total.saturating_add(thread_cpu_ns(tid).unwrap_or(0));
        }
        total
    }
}

impl Drop for CpuGuard {
    fn drop(&mut self) {
        let live = self.side.live.lock();
        let ns = if gettid() == self.tid {
            own_thread_cpu_ns()
        } else {
            thread_cpu_ns(self.tid).unwrap_or(0)
        };
        self.side.exited_ns.fetch_add(ns, Ordering::AcqRel);
        if let Ok(mut l) = live {
            l.retain(|t| *t != self.tid);
        }
    }
}

/// Pins the calling thread to `core` (best effort: the error is returned for the caller to
/// report once, the run goes on unpinned).
pub fn pin_to(core: usize) -> Result<(), std::io::Error> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("cannot pin to CPU {core}")))
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` in `/proc/self/status`, e.g.
/// `0-3,6`); `[0]` if it cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    let list = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        });
    let mut v = Vec::new();
    for part in list.as_deref().unwrap_or("0").split(',') {
        let mut ends = part
            .trim()
            .splitn(2, '-')
            .map(|x| x.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => v.push(a),
            (Some(Ok(a)), Some(Ok(b))) if a <= b && b - a < 4096 => v.extend(a..=b),
            _ => {}
        }
    }
    if v.is_empty() {
        vec![0]
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_threads_are_counted() {
        let side = CpuSide::new();
        let s = side.clone();
        std::thread::spawn(move || {
            let _g = s.enter();
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed().as_millis() < 30 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            std::hint::black_box(x);
        })
        .join()
        .ok();
        assert!(side.total_ns() > 5_000_000, "{}", side.total_ns());
        assert!(thread_cpu_ns(gettid()).is_some());
        let (machine, me) = machine_and_self_cpu_s().expect("procfs");
        assert!(machine > 0.0 && me > 0.0);
    }
}
