//! Ceph option names, values and defaults other than the connection modes (those are in
//! `modes.rs`): on-wire compression (`ms_osd_compress_*`, `ms_compress_secure`), the
//! dispatch throttle, Ceph's six named policies, and the messenger-wide counters
//! (`global_seq`, our entity number).

#![allow(clippy::unwrap_used)]

use msgr2_codec::compress::Method;
use msgr2_codec::entity::EntityType;
use msgr2_proto::compression::CompressionConfigError;
use std::sync::Arc;

use msgr2_proto::{
    CompressMode, CompressionConfig, Config, GlobalSeq, Policy, RandomSource, SharedGid, Throttle,
};

#[test]
fn dispatch_throttle_defaults_to_cephs_100_mib() {
    // `ms_dispatch_throttle_bytes` = 104857600.
    let c = Config::new("client.admin".parse().unwrap());
    assert_eq!(c.dispatch_throttle.max(), 104_857_600);
}

#[test]
fn compress_mode_takes_every_ceph_value() {
    for (text, mode) in [
        ("none", CompressMode::None),
        ("passive", CompressMode::Passive),
        ("aggressive", CompressMode::Aggressive),
        ("force", CompressMode::Force),
        (" force ", CompressMode::Force),
    ] {
        // Start from a mode other than the one set, so that each setting shows.
        for start in [CompressMode::None, CompressMode::Force] {
            let mut c = CompressionConfig {
                osd_mode: start,
                ..CompressionConfig::default()
            };
            c.set("ms_osd_compress_mode", text).unwrap();
            assert_eq!(c.osd_mode, mode, "{text:?}");
            assert_eq!(c.mode_for(EntityType::Osd, false), mode);
            assert_eq!(c.mode_for(EntityType::Client, false), CompressMode::None);
        }
    }
    let mut c = CompressionConfig::default();
    assert_eq!(
        c.set("ms_osd_compress_mode", "sometimes"),
        Err(CompressionConfigError::BadValue {
            option: "ms_osd_compress_mode",
            value: "sometimes".to_owned()
        })
    );
    assert_eq!(c.osd_mode, CompressMode::None);
}

#[test]
fn compress_secure_takes_cephs_booleans() {
    for (text, want) in [
        ("true", true),
        ("1", true),
        ("yes", true),
        ("on", true),
        ("false", false),
        ("0", false),
        ("no", false),
        ("off", false),
    ] {
        for start in [false, true] {
            let mut c = CompressionConfig {
                compress_secure: start,
                osd_mode: CompressMode::Force,
                ..CompressionConfig::default()
            };
            c.set("ms_compress_secure", text).unwrap();
            assert_eq!(c.compress_secure, want, "{text:?}");
            let secure_mode = if want {
                CompressMode::Force
            } else {
                CompressMode::None
            };
            assert_eq!(c.mode_for(EntityType::Osd, true), secure_mode);
            assert_eq!(c.mode_for(EntityType::Osd, false), CompressMode::Force);
        }
    }
    let mut c = CompressionConfig::default();
    assert!(matches!(
        c.set("ms_compress_secure", "maybe"),
        Err(CompressionConfigError::BadValue {
            option: "ms_compress_secure",
            ..
        })
    ));
}

#[test]
fn algorithm_min_size_and_unknown_options() {
    let mut c = CompressionConfig::default();
    assert_eq!(c.osd_methods, vec![Method::Snappy as u32]);
    assert_eq!(c.osd_min_size, 1024);
    c.set("ms_osd_compression_algorithm", "zstd lz4").unwrap();
    assert_eq!(c.osd_methods, vec![Method::Zstd as u32, Method::Lz4 as u32]);
    c.set("ms_osd_compress_min_size", " 4096 ").unwrap();
    assert_eq!(c.osd_min_size, 4096);
    assert!(matches!(
        c.set("ms_osd_compress_min_size", "4k"),
        Err(CompressionConfigError::BadValue { .. })
    ));
    assert_eq!(
        c.set("ms_osd_compress_level", "9"),
        Err(CompressionConfigError::UnknownOption(
            "ms_osd_compress_level".to_owned()
        ))
    );
}

#[test]
fn cephs_six_policies() {
    // (lossy, server, standby, resetcheck), as Ceph's Messenger::Policy constructors.
    let table = [
        (Policy::stateful_server(0), (false, true, true, true)),
        (Policy::stateless_server(0), (true, true, false, false)),
        (Policy::lossless_peer(0), (false, false, true, false)),
        (Policy::lossless_peer_reuse(0), (false, false, true, true)),
        (Policy::lossy_client(0), (true, false, false, false)),
        (Policy::lossless_client(0), (false, false, false, true)),
    ];
    for (i, (p, flags)) in table.iter().enumerate() {
        assert_eq!((p.lossy, p.server, p.standby, p.resetcheck), *flags, "#{i}");
        for (j, (q, _)) in table.iter().enumerate() {
            assert_eq!(p == q, i == j, "#{i} == #{j}");
        }
    }
    assert_eq!(Policy::default(), Policy::lossy_client(0));
}

#[test]
fn policies_compare_features_by_value_and_throttles_by_identity() {
    let base = Policy::lossless_peer(1);
    assert_eq!(base, Policy::lossless_peer(1));
    assert_ne!(base, Policy::lossless_peer(2));
    assert_ne!(
        Policy::stateless_server(0),
        Policy::stateless_registered_server(0)
    );
    let t = Arc::new(Throttle::new(100));
    let bytes_only = Policy {
        throttler_bytes: Some(t.clone()),
        ..base.clone()
    };
    let msgs_only = Policy {
        throttler_messages: Some(t.clone()),
        ..base.clone()
    };
    assert_ne!(base, bytes_only);
    assert_ne!(bytes_only, base);
    assert_ne!(base, msgs_only);
    assert_ne!(bytes_only, msgs_only);
    assert_eq!(bytes_only, bytes_only.clone());
    let other = Policy {
        throttler_bytes: Some(Arc::new(Throttle::new(100))),
        ..base.clone()
    };
    assert_ne!(bytes_only, other, "an equal limit is another throttle");
}

#[test]
fn global_seq_counts_like_cephs_get_global_seq() {
    let g = GlobalSeq::default();
    assert_eq!(g.current(), 0);
    assert_eq!(g.next(), 1);
    assert_eq!(g.next(), 2);
    assert_eq!(g.current(), 2);
    // get_global_seq(old): above both the counter and the value seen.
    assert_eq!(g.next_after(10), 11);
    assert_eq!(g.next_after(5), 12);
    g.observe(20);
    assert_eq!(g.current(), 20);
    g.observe(3);
    assert_eq!(g.current(), 20);
    assert_eq!(g.next(), 21);
}

#[test]
fn shared_gid_is_one_number_for_every_clone() {
    let a = SharedGid::new(-1);
    let b = a.clone();
    assert_eq!((a.get(), b.get()), (-1, -1));
    a.set(4123);
    assert_eq!(b.get(), 4123);
}

/// The seeded source is splitmix64 (Vigna's reference values from seed 0), one sequence
/// shared by every clone, so a simulation replays exactly; the system source differs per draw.
#[test]
fn random_source_is_splitmix64_or_the_system() {
    let r = RandomSource::seeded(0);
    let shared = r.clone();
    assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(shared.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    let sys = RandomSource::System;
    assert_ne!(sys.next_u64(), sys.next_u64());
}
