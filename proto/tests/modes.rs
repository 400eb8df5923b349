//! The connection-mode options as Ceph applies them, table-driven: which of the six
//! `ms_*_mode` options governs each (our entity type, peer type, auth method), checked
//! against Ceph's `AuthRegistry::get_supported_methods` / `get_supported_modes`
//! (src/auth/AuthRegistry.cc), and `ModeConfig::set` for every option name and value shape.

use msgr2_codec::entity::EntityType;
use msgr2_codec::payload::{AUTH_CEPHX, AUTH_NONE, CON_MODE_CRC as C, CON_MODE_SECURE as S};
use msgr2_proto::config::{parse_modes, ModeParseError};
use msgr2_proto::ModeConfig;

/// The six options, each set to a list no other option has, so the chosen list names its
/// option.
const OPTIONS: [(&str, &str, &[u32]); 6] = [
    ("ms_client_mode", "crc", &[C]),
    ("ms_service_mode", "secure", &[S]),
    ("ms_cluster_mode", "crc secure", &[C, S]),
    ("ms_mon_client_mode", "secure,crc", &[S, C]),
    ("ms_mon_service_mode", "crc;crc", &[C, C]),
    ("ms_mon_cluster_mode", "secure secure", &[S, S]),
];

/// Ceph's table: (our type, peer type) → the option that applies.
const TABLE: &[(EntityType, EntityType, &str)] = {
    use EntityType::*;
    &[
        // i am a client: mon_client towards mons, client otherwise
        (Client, Mon, "ms_mon_client_mode"),
        (Client, Osd, "ms_client_mode"),
        (Client, Mds, "ms_client_mode"),
        (Client, Mgr, "ms_client_mode"),
        (Client, Client, "ms_client_mode"),
        (Client, Auth, "ms_client_mode"),
        // i am a mon: mon_cluster towards mons, mon_service towards anything else
        (Mon, Mon, "ms_mon_cluster_mode"),
        (Mon, Osd, "ms_mon_service_mode"),
        (Mon, Mds, "ms_mon_service_mode"),
        (Mon, Mgr, "ms_mon_service_mode"),
        (Mon, Client, "ms_mon_service_mode"),
        (Mon, Auth, "ms_mon_service_mode"),
        // i am another daemon: cluster towards daemons (mons included), service otherwise
        (Osd, Mon, "ms_cluster_mode"),
        (Osd, Osd, "ms_cluster_mode"),
        (Osd, Mds, "ms_cluster_mode"),
        (Osd, Mgr, "ms_cluster_mode"),
        (Osd, Client, "ms_service_mode"),
        (Osd, Auth, "ms_service_mode"),
        (Mgr, Mon, "ms_cluster_mode"),
        (Mgr, Mgr, "ms_cluster_mode"),
        (Mgr, Osd, "ms_cluster_mode"),
        (Mgr, Client, "ms_service_mode"),
        (Mds, Mon, "ms_cluster_mode"),
        (Mds, Osd, "ms_cluster_mode"),
        (Mds, Mds, "ms_cluster_mode"),
        (Mds, Client, "ms_service_mode"),
    ]
};

fn tagged() -> ModeConfig {
    let mut m = ModeConfig::default();
    for (name, value, _) in OPTIONS {
        m.set(name, value).expect("valid");
    }
    m
}

#[test]
fn every_entity_pair_uses_cephs_option() {
    let m = tagged();
    for &(me, peer, option) in TABLE {
        let (_, _, list) = OPTIONS
            .iter()
            .find(|o| o.0 == option)
            .expect("option in the table");
        assert_eq!(
            m.for_peer(me, peer, AUTH_CEPHX),
            list.to_vec(),
            "{me:?} → {peer:?} with cephx: {option}"
        );
        // auth none: Ceph keeps only crc, in the option's order
        let crc: Vec<u32> = list.iter().copied().filter(|&x| x == C).collect();
        assert_eq!(
            m.for_peer(me, peer, AUTH_NONE),
            crc,
            "{me:?} → {peer:?} with auth none: {option}"
        );
    }
}

#[test]
fn cephs_defaults() {
    let d = ModeConfig::default();
    use EntityType::*;
    // ms_client/service/cluster_mode default "crc secure"; the ms_mon_* ones "secure crc"
    assert_eq!(d.for_peer(Client, Osd, AUTH_CEPHX), [C, S]);
    assert_eq!(d.for_peer(Osd, Client, AUTH_CEPHX), [C, S]);
    assert_eq!(d.for_peer(Osd, Osd, AUTH_CEPHX), [C, S]);
    assert_eq!(d.for_peer(Osd, Mon, AUTH_CEPHX), [C, S]);
    assert_eq!(d.for_peer(Client, Mon, AUTH_CEPHX), [S, C]);
    assert_eq!(d.for_peer(Mon, Client, AUTH_CEPHX), [S, C]);
    assert_eq!(d.for_peer(Mon, Mon, AUTH_CEPHX), [S, C]);
    assert_eq!(d.for_peer(Client, Mon, AUTH_NONE), [C]);
}

#[test]
fn set_takes_every_option_and_cephs_separators() {
    for (name, _, _) in OPTIONS {
        for (value, want) in [
            ("secure crc", vec![S, C]),
            ("crc,secure", vec![C, S]),
            ("crc;secure", vec![C, S]),
            (" secure\tcrc ", vec![S, C]),
            ("secure=crc", vec![S, C]),
            ("crc", vec![C]),
            ("secure", vec![S]),
            // Ceph warns "no connection modes defined"; no mode can then be agreed
            ("", vec![]),
        ] {
            let mut m = ModeConfig::default();
            m.set(name, value).expect("valid value");
            let all = [
                &m.client,
                &m.service,
                &m.cluster,
                &m.mon_client,
                &m.mon_service,
                &m.mon_cluster,
            ];
            let i = OPTIONS.iter().position(|o| o.0 == name).expect("known");
            assert_eq!(*all[i], want, "{name} = {value:?}");
            // the others keep their defaults
            let d = ModeConfig::default();
            let defaults = [
                &d.client,
                &d.service,
                &d.cluster,
                &d.mon_client,
                &d.mon_service,
                &d.mon_cluster,
            ];
            for j in (0..6).filter(|&j| j != i) {
                assert_eq!(all[j], defaults[j], "{name} = {value:?} touched option {j}");
            }
        }
    }
}

#[test]
fn bad_values_and_names_are_typed_errors_and_change_nothing() {
    for (name, _, _) in OPTIONS {
        for (value, word) in [
            ("ssl", "ssl"),
            ("crc secrue", "secrue"),
            ("CRC", "CRC"),
            ("crc,,tls", "tls"),
        ] {
            let mut m = ModeConfig::default();
            assert_eq!(
                m.set(name, value),
                Err(ModeParseError(word.to_owned())),
                "{name} = {value:?}"
            );
            assert_eq!(m, ModeConfig::default(), "{name} = {value:?} changed it");
        }
    }
    let mut m = ModeConfig::default();
    for name in [
        "ms_mode",
        "ms_osd_mode",
        "ms-client-mode",
        "",
        "ms_client_modes",
    ] {
        assert_eq!(
            m.set(name, "crc"),
            Err(ModeParseError(name.to_owned())),
            "option {name:?}"
        );
    }
    assert_eq!(m, ModeConfig::default());
    assert_eq!(parse_modes("secure, crc"), Ok(vec![S, C]));
}
