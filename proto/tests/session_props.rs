//! Property tests over random fault schedules in the deterministic simulator.
//!
//! Lossless policies: every message sent is delivered exactly once and in order, no reset is
//! reported, and both sides end READY. Lossy policies: nothing is delivered twice, and every
//! message that is not delivered was on a session whose reset the application was told of.

#![allow(clippy::unwrap_used)]

use crate::sim;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use msgr2_codec::entity::EntityType;
use msgr2_proto::{Policy, PolicySet};
use proptest::prelude::*;
use sim::{peers, LinkPlan, Side, Sim};

const STATES_CLIENT: [&str; 6] = [
    "BANNER",
    "HELLO",
    "AUTH_CONNECTING",
    "SESSION_CONNECTING",
    "SESSION_RECONNECTING",
    "READY",
];
const STATES_SERVER: [&str; 5] = ["BANNER", "HELLO", "AUTH_SIGN", "SESSION_ACCEPTING", "READY"];

fn plan() -> impl Strategy<Value = LinkPlan> {
    let cut = prop_oneof![
        3 => Just((None, None, false)),
        6 => (0usize..4000).prop_map(|n| (Some(n), None, false)),
        3 => (0usize..STATES_CLIENT.len()).prop_map(|i| (None, Some((Side::Client, STATES_CLIENT[i])), false)),
        3 => (0usize..STATES_SERVER.len()).prop_map(|i| (None, Some((Side::Server, STATES_SERVER[i])), false)),
        1 => Just((None, None, true)),
    ];
    let timed = prop_oneof![
        8 => Just((None, None)),
        1 => (0u64..30_000).prop_map(|t| (Some(Duration::from_millis(t)), None)),
        1 => (0u64..30_000).prop_map(|t| (None, Some(Duration::from_millis(t)))),
    ];
    (
        cut,
        0u64..400,
        prop_oneof![Just(0usize), Just(1), Just(7), Just(100), Just(1500)],
        prop::bool::weighted(0.05),
        timed,
    )
        .prop_map(
            |((cut_after, cut_on_tx, blackhole), delay, chunk, duplicate, (cut_at, silence_at))| {
                LinkPlan {
                    cut_after,
                    cut_on_tx,
                    delay: Duration::from_millis(delay),
                    chunk,
                    blackhole,
                    duplicate,
                    cut_at,
                    silence_at,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Schedule {
    plans: Vec<LinkPlan>,
    /// (time ms, which ordered pair of nodes)
    sends: Vec<(u64, u8)>,
    /// 0: lossless peers, 1: lossless peers with resetcheck, 2: lossless client and
    /// stateful server, 3: three lossless peers
    policy: u8,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(plan(), 0..14),
        prop::collection::vec((0u64..25_000, any::<u8>()), 1..24),
        0u8..4,
    )
        .prop_map(|(plans, mut sends, policy)| {
            sends.sort_by_key(|s| s.0);
            Schedule {
                plans,
                sends,
                policy,
            }
        })
}

static RUNS: AtomicUsize = AtomicUsize::new(0);
static LONGEST_PLAN: AtomicUsize = AtomicUsize::new(0);
static MOST_LINKS: AtomicUsize = AtomicUsize::new(0);
static LOSSY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Keepalives and a short idle timeout so that silently dead links are noticed.
fn live(c: &mut msgr2_proto::Config) {
    c.keepalive_interval = Some(Duration::from_secs(2));
    c.idle_timeout = Duration::from_secs(10);
}

fn lossless_setup(policy: u8) -> (Sim, Vec<usize>) {
    let mut sim = Sim::new();
    sim.trace_limit = 4000;
    match policy {
        3 => {
            let p = peers(Policy::lossless_peer(0));
            let n = (0..3)
                .map(|i| sim.add_node(&format!("osd.{i}"), p.clone(), true, live))
                .collect();
            (sim, n)
        }
        0 | 1 => {
            let p = if policy == 0 {
                Policy::lossless_peer(0)
            } else {
                Policy::lossless_peer_reuse(0)
            };
            let a = sim.add_node("osd.0", peers(p.clone()), true, live);
            let b = sim.add_node("osd.1", peers(p), true, live);
            (sim, vec![a, b])
        }
        _ => {
            // a lossless client and a stateful server; the client does not listen
            let a = sim.add_node(
                "client.7",
                PolicySet::new(Policy::lossless_client(0)),
                false,
                live,
            );
            let b = sim.add_node(
                "osd.1",
                PolicySet::new(Policy::lossless_peer(0))
                    .with(EntityType::Client, Policy::stateful_server(0)),
                true,
                live,
            );
            (sim, vec![a, b])
        }
    }
}

fn run_lossless(s: &Schedule) -> Result<(), TestCaseError> {
    let (mut sim, nodes) = lossless_setup(s.policy);
    let pairs: Vec<(usize, usize)> = nodes
        .iter()
        .flat_map(|&a| nodes.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
        .collect();
    sim.plan(s.plans.iter().cloned());
    let mut sent = vec![0u64; pairs.len()];
    for &(t, p) in &s.sends {
        let k = p as usize % pairs.len();
        let (from, to) = pairs[k];
        sim.send_at(Duration::from_millis(t), from, to, sent[k]);
        sent[k] += 1;
    }
    // faults happen on the planned links; afterwards the network is reliable. A final
    // message on every pair makes sure parked (STANDBY) sessions come back.
    sim.run_until(Duration::from_secs(80));
    sim.heal();
    for (k, &(from, to)) in pairs.iter().enumerate() {
        sim.send_at(
            Duration::from_secs(90) + Duration::from_millis(k as u64),
            from,
            to,
            1_000_000,
        );
    }
    sim.run_until(Duration::from_secs(150));
    let ctx = || format!("schedule {s:?}\n{}", sim.tail());
    for (k, &(from, to)) in pairs.iter().enumerate() {
        let want: Vec<u64> = (0..sent[k]).chain([1_000_000]).collect();
        prop_assert_eq!(sim.received(to, from), want, "n{}→n{}\n{}", from, to, ctx());
        prop_assert!(
            sim.ready(from, to),
            "n{}→n{} not ready\n{}",
            from,
            to,
            ctx()
        );
    }
    for &n in &nodes {
        prop_assert!(
            sim.nodes[n].app.resets.is_empty(),
            "lossless session reported a reset: {:?}\n{}",
            sim.nodes[n].app.resets,
            ctx()
        );
    }
    RUNS.fetch_add(1, Ordering::Relaxed);
    LONGEST_PLAN.fetch_max(s.plans.len(), Ordering::Relaxed);
    MOST_LINKS.fetch_max(sim.link_count(), Ordering::Relaxed);
    Ok(())
}

fn run_lossy(s: &Schedule) -> Result<(), TestCaseError> {
    let mut sim = Sim::new();
    sim.trace_limit = 4000;
    let c = sim.add_node(
        "client.9",
        PolicySet::new(Policy::lossy_client(0)),
        false,
        live,
    );
    let o = sim.add_node(
        "osd.0",
        PolicySet::new(Policy::stateless_registered_server(0)),
        true,
        live,
    );
    sim.plan(s.plans.iter().cloned());
    for (i, &(t, _)) in s.sends.iter().enumerate() {
        sim.send_at(Duration::from_millis(t), c, o, i as u64);
    }
    sim.run_until(Duration::from_secs(80));
    sim.heal();
    sim.run_until(Duration::from_secs(150));
    let got = sim.received(o, c);
    let ctx = || format!("schedule {s:?}\n{}", sim.tail());
    let mut seen = std::collections::BTreeSet::new();
    for id in &got {
        prop_assert!(seen.insert(*id), "#{} delivered twice\n{}", id, ctx());
    }
    // order is preserved within what arrives
    let mut sorted = got.clone();
    sorted.sort_unstable();
    prop_assert_eq!(&got, &sorted, "out of order\n{}", ctx());
    let reset_slots: std::collections::BTreeSet<usize> =
        sim.nodes[c].app.resets.iter().map(|r| r.3).collect();
    for id in 0..s.sends.len() as u64 {
        if seen.contains(&id) {
            continue;
        }
        let slot = sim.nodes[c].sent_on[&(o, id)];
        let last = sim.last_carrier(c, slot);
        prop_assert!(
            reset_slots.contains(&last),
            "#{} lost on slot {} (carried to {}) without a reset\n{}",
            id,
            slot,
            last,
            ctx()
        );
    }
    LOSSY_RUNS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("MSGR2_SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn runner() -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn lossless_exactly_once_in_order() {
    let mut r = runner();
    let res = r.run(&schedule(), |s| run_lossless(&s));
    eprintln!(
        "lossless: {} schedules explored, longest {} planned link faults, most links {}",
        RUNS.load(Ordering::Relaxed),
        LONGEST_PLAN.load(Ordering::Relaxed),
        MOST_LINKS.load(Ordering::Relaxed),
    );
    if let Err(e) = res {
        panic!("{e}");
    }
}

#[test]
fn lossy_no_duplicates_and_resets_reported() {
    let mut r = runner();
    let res = r.run(&schedule(), |s| run_lossy(&s));
    eprintln!(
        "lossy: {} schedules explored",
        LOSSY_RUNS.load(Ordering::Relaxed)
    );
    if let Err(e) = res {
        panic!("{e}");
    }
}
