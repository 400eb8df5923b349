//! Ceph option names, values and defaults other than the connection modes (those are in
//! `modes.rs`): on-wire compression (`ms_osd_compress_*`, `ms_compress_secure`) and the
//! dispatch throttle.

#![allow(clippy::unwrap_used)]

use msgr2_codec::compress::Method;
use msgr2_codec::entity::EntityType;
use msgr2_proto::compression::CompressionConfigError;
use msgr2_proto::{CompressMode, CompressionConfig, Config};

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
