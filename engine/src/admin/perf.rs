//! `perf dump` and `perf schema` in Ceph's layout: one `AsyncMessenger::Worker-N` section per
//! reactor thread (Ceph's worker threads) with Ceph's counter names, types and descriptions
//! (as a Ceph 16.2 / 20.2 daemon prints them), one `msgr2_engine::Worker-N` section with the
//! io_uring engine's own counters, and one `throttle-msgr_dispatch_throttler-LABEL` section per
//! messenger. Sections are sorted by name, as Ceph's collection is.
//!
//! Ceph counters the engine does not measure (`msgr_running_*_time`, the latency averages,
//! the encrypted byte counts) are left out rather than reported as zero.

use crate::shared::Counters;

use super::json::JsonWriter;

/// Ceph's `PERFCOUNTER_U64`.
const U64: u8 = 2;
/// Ceph's `PERFCOUNTER_COUNTER`.
const COUNTER: u8 = 8;

/// One counter's schema.
struct Def {
    name: &'static str,
    /// Ceph's type bits.
    ty: u8,
    description: &'static str,
    bytes: bool,
    value: fn(&Counters) -> u64,
}

const fn counter(
    name: &'static str,
    description: &'static str,
    bytes: bool,
    value: fn(&Counters) -> u64,
) -> Def {
    Def {
        name,
        ty: U64 | COUNTER,
        description,
        bytes,
        value,
    }
}

const fn gauge(name: &'static str, description: &'static str, value: fn(&Counters) -> u64) -> Def {
    Def {
        name,
        ty: U64,
        description,
        bytes: false,
        value,
    }
}

/// The `AsyncMessenger::Worker-N` counters we keep, in Ceph's order, with Ceph's types
/// (`msgr_active_connections` is a counter there too) and descriptions.
const CEPH: &[Def] = &[
    counter(
        "msgr_recv_messages",
        "Network received messages",
        false,
        |c| c.msgr_recv_messages,
    ),
    counter("msgr_send_messages", "Network sent messages", false, |c| {
        c.msgr_send_messages
    }),
    counter("msgr_recv_bytes", "Network received bytes", true, |c| {
        c.msgr_recv_bytes
    }),
    counter("msgr_send_bytes", "Network sent bytes", true, |c| {
        c.msgr_send_bytes
    }),
    counter(
        "msgr_created_connections",
        "Created connection number",
        false,
        |c| c.msgr_created_connections,
    ),
    counter(
        "msgr_active_connections",
        "Active connection number",
        false,
        |c| c.msgr_active_connections,
    ),
];

/// The engine's own counters (`msgr2_engine::Worker-N`).
const ENGINE: &[Def] = &[
    gauge("conns_mode_crc", "Ready connections in crc mode", |c| {
        c.conns_mode_crc
    }),
    gauge(
        "conns_mode_secure",
        "Ready connections in secure mode",
        |c| c.conns_mode_secure,
    ),
    gauge("conns_mode_raw", "Ready raw-baseline connections", |c| {
        c.conns_mode_raw
    }),
    gauge("conns_rev0", "Ready connections framed as msgr2.0", |c| {
        c.conns_rev0
    }),
    gauge("conns_rev1", "Ready connections framed as msgr2.1", |c| {
        c.conns_rev1
    }),
    counter("connection_errors", "Connections that failed", false, |c| {
        c.connection_errors
    }),
    counter(
        "dropped_messages",
        "Messages dropped on closed connections",
        false,
        |c| c.dropped_messages,
    ),
    counter(
        "session_reconnects",
        "Reconnection attempts of lossless sessions",
        false,
        |c| c.session_reconnects,
    ),
    counter(
        "sessions_resumed",
        "Connections that resumed a session",
        false,
        |c| c.sessions_resumed,
    ),
    counter(
        "sessions_moved",
        "Accepted connections moved to their session's core",
        false,
        |c| c.sessions_moved,
    ),
    counter(
        "injected_socket_failures",
        "Socket failures injected (ms_inject_socket_failures)",
        false,
        |c| c.injected_socket_failures,
    ),
    counter(
        "injected_delays",
        "Deliveries delayed (ms_inject_delay_*)",
        false,
        |c| c.injected_delays,
    ),
    counter(
        "zero_copy_recvs",
        "Targeted receives into a data segment's buffer",
        false,
        |c| c.zero_copy_recvs,
    ),
    counter("ring_enters", "io_uring_enter calls", false, |c| {
        c.ring_enters
    }),
    counter("ring_sqes", "Submission queue entries pushed", false, |c| {
        c.ring_sqes
    }),
    counter("ring_cqes", "Completions reaped", false, |c| c.ring_cqes),
    counter(
        "reactor_sleeps",
        "Times the reactor parked waiting for completions",
        false,
        |c| c.reactor_sleeps,
    ),
    counter(
        "wakeups_sent",
        "eventfd writes to wake a sleeping core",
        false,
        |c| c.wakeups_sent,
    ),
    counter(
        "cross_core_cmds",
        "Commands that crossed cores",
        false,
        |c| c.cross_core_cmds,
    ),
    counter(
        "send_ops",
        "send/sendmsg operations submitted",
        false,
        |c| c.send_ops,
    ),
    counter("zc_sends", "Zero-copy sends submitted", false, |c| {
        c.zc_sends
    }),
    counter(
        "zc_copied",
        "Zero-copy sends the kernel copied anyway",
        false,
        |c| c.zc_copied,
    ),
    counter("recv_rearms", "Multishot receives re-armed", false, |c| {
        c.recv_rearms
    }),
    Def {
        name: "arena_bytes",
        ty: U64,
        description: "Buffer arena bytes mapped",
        bytes: true,
        value: |c| c.arena_bytes,
    },
    gauge(
        "arena_registered",
        "1 if the arena is registered with the ring",
        |c| c.arena_registered_cores,
    ),
    Def {
        name: "arena_in_use_bytes",
        ty: U64,
        description: "Arena bytes lent out",
        bytes: true,
        value: |c| c.arena_in_use_bytes,
    },
    Def {
        name: "arena_leaked_bytes",
        ty: U64,
        description: "Arena bytes still lent out when the core stopped",
        bytes: true,
        value: |c| c.arena_leaked_bytes,
    },
];

/// A throttle's state: Ceph's `val` and `max`.
const THROTTLE: &[(&str, &str)] = &[
    ("val", "Currently taken slots"),
    ("max", "Max value for throttle"),
];

/// What `perf dump` / `perf schema` show for one worker thread.
pub struct WorkerView {
    /// Global worker number N.
    pub index: usize,
    /// That core's counters.
    pub counters: Counters,
}

/// One messenger's dispatch throttle.
pub struct ThrottleView {
    /// `throttle-msgr_dispatch_throttler-LABEL`.
    pub label: String,
    /// Units taken.
    pub val: u64,
    /// Budget.
    pub max: u64,
}

/// A section of the dump, before sorting.
enum Section<'a> {
    Ceph(&'a WorkerView),
    Engine(&'a WorkerView),
    Throttle(&'a ThrottleView),
}

/// Writes `perf dump` (`schema` false) or `perf schema` into `w`, limited to section `logger`
/// and counter `counter` when given (Ceph's filters; an unknown name gives `{}`).
pub fn write(
    w: &mut JsonWriter,
    workers: &[WorkerView],
    throttles: &[ThrottleView],
    schema: bool,
    logger: Option<&str>,
    counter: Option<&str>,
) {
    let mut sections: Vec<(String, Section<'_>)> = Vec::new();
    for v in workers {
        sections.push((
            format!("AsyncMessenger::Worker-{}", v.index),
            Section::Ceph(v),
        ));
        sections.push((
            format!("msgr2_engine::Worker-{}", v.index),
            Section::Engine(v),
        ));
    }
    for t in throttles {
        sections.push((
            format!("throttle-msgr_dispatch_throttler-{}", t.label),
            Section::Throttle(t),
        ));
    }
    sections.sort_by(|a, b| a.0.cmp(&b.0));
    w.open_object("perfcounter_collection");
    for (name, s) in &sections {
        if logger.is_some_and(|l| l != name) {
            continue;
        }
        w.open_object(name);
        let wanted = |n: &str| counter.is_none_or(|c| c == n);
        match s {
            Section::Ceph(v) | Section::Engine(v) => {
                let defs = if matches!(s, Section::Ceph(_)) {
                    CEPH
                } else {
                    ENGINE
                };
                for d in defs.iter().filter(|d| wanted(d.name)) {
                    if schema {
                        write_schema(w, d.name, d.ty, d.description, d.bytes);
                    } else {
                        w.unsigned(d.name, (d.value)(&v.counters));
                    }
                }
            }
            Section::Throttle(t) => {
                for (n, desc) in THROTTLE.iter().filter(|(n, _)| wanted(n)) {
                    if schema {
                        write_schema(w, n, U64, desc, false);
                    } else {
                        w.unsigned(n, if *n == "val" { t.val } else { t.max });
                    }
                }
            }
        }
        w.close();
    }
    w.close();
}

/// One counter's schema object, Ceph's fields in Ceph's order.
fn write_schema(w: &mut JsonWriter, name: &str, ty: u8, description: &str, bytes: bool) {
    w.open_object(name);
    w.int("type", i64::from(ty));
    w.string(
        "metric_type",
        if ty & COUNTER != 0 {
            "counter"
        } else {
            "gauge"
        },
    );
    w.string("value_type", "integer");
    w.string("description", description);
    w.string("nick", "");
    w.int("priority", 0);
    w.string("units", if bytes { "bytes" } else { "none" });
    w.close();
}

#[cfg(test)]
mod tests {
    use super::super::json::Format;
    use super::*;

    fn views() -> (Vec<WorkerView>, Vec<ThrottleView>) {
        let a = Counters {
            msgr_recv_messages: 7,
            msgr_recv_bytes: 4096,
            ..Counters::default()
        };
        let b = Counters::default();
        (
            vec![
                WorkerView {
                    index: 0,
                    counters: a,
                },
                WorkerView {
                    index: 1,
                    counters: b,
                },
            ],
            vec![ThrottleView {
                label: "server".into(),
                val: 3,
                max: 100,
            }],
        )
    }

    fn dump(schema: bool, logger: Option<&str>, counter: Option<&str>) -> serde_json::Value {
        let (wv, tv) = views();
        let mut w = JsonWriter::new(Format::Json);
        write(&mut w, &wv, &tv, schema, logger, counter);
        serde_json::from_str(&w.finish()).expect("json")
    }

    #[test]
    fn dump_has_ceph_sections_and_names() {
        let d = dump(false, None, None);
        assert_eq!(d["AsyncMessenger::Worker-0"]["msgr_recv_messages"], 7);
        assert_eq!(d["AsyncMessenger::Worker-0"]["msgr_recv_bytes"], 4096);
        assert_eq!(d["AsyncMessenger::Worker-1"]["msgr_recv_messages"], 0);
        assert_eq!(d["msgr2_engine::Worker-1"]["ring_enters"], 0);
        assert_eq!(d["throttle-msgr_dispatch_throttler-server"]["val"], 3);
        assert_eq!(d["throttle-msgr_dispatch_throttler-server"]["max"], 100);
    }

    #[test]
    fn filters() {
        let d = dump(
            false,
            Some("AsyncMessenger::Worker-0"),
            Some("msgr_recv_bytes"),
        );
        assert_eq!(
            d,
            serde_json::json!({"AsyncMessenger::Worker-0": {"msgr_recv_bytes": 4096}})
        );
        assert_eq!(dump(false, Some("nope"), None), serde_json::json!({}));
    }

    #[test]
    fn schema_matches_ceph() {
        let s = dump(
            true,
            Some("AsyncMessenger::Worker-0"),
            Some("msgr_send_bytes"),
        );
        assert_eq!(
            s["AsyncMessenger::Worker-0"]["msgr_send_bytes"],
            serde_json::json!({"type": 10, "metric_type": "counter", "value_type": "integer",
                "description": "Network sent bytes", "nick": "", "priority": 0, "units": "bytes"})
        );
    }
}
