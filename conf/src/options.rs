//! The options msgr2-rs knows: their types and Ceph's defaults (`common/options/*.yaml.in`).

/// How an option's value is typed (only what matters here: metavariables expand into
/// string options only, and booleans are checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    /// Free text; `$option` metavariables can name it.
    Str,
    /// `true`/`false` or an integer (0 is false).
    Bool,
    /// A signed integer.
    Int,
    /// Anything else Ceph checks (sizes, floats, UUIDs); kept as text here.
    Other,
}

/// One known option.
#[derive(Debug, Clone, Copy)]
pub struct OptDef {
    /// Canonical name (underscores).
    pub name: &'static str,
    /// Value type.
    pub ty: OptType,
    /// Ceph's default.
    pub default: &'static str,
    /// Ceph's `daemon_default`, used by daemons (and by `ceph-conf`) for the entity types
    /// the option gives one to.
    pub daemon_default: Option<&'static str>,
    /// Whether msgr2-rs acts on it (the others are known, so not warned about, but unused).
    pub used: bool,
}

const fn opt(name: &'static str, ty: OptType, default: &'static str, used: bool) -> OptDef {
    OptDef {
        name,
        ty,
        default,
        daemon_default: None,
        used,
    }
}

/// Ceph's default keyring search list for clients (`keyring` option; Ceph 16 adds a
/// trailing comma, Ceph 20 does not).
pub const KEYRING_DEFAULT: &str = "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin";

/// Ceph's default list of configuration files (`CEPH_CONF_FILE_DEFAULT`).
pub const CONF_FILE_DEFAULT: &str =
    "$data_dir/config,/etc/ceph/$cluster.conf,$home/.ceph/$cluster.conf,$cluster.conf";

/// The options msgr2-rs knows, by canonical name.
pub const OPTIONS: &[OptDef] = &[
    opt("mon_host", OptType::Str, "", true),
    OptDef {
        name: "keyring",
        ty: OptType::Str,
        default: KEYRING_DEFAULT,
        daemon_default: Some("/var/lib/ceph/$type/$cluster-$id/keyring"),
        used: true,
    },
    opt("key", OptType::Str, "", false),
    opt("keyfile", OptType::Str, "", false),
    opt("ms_bind_msgr1", OptType::Bool, "true", true),
    opt("ms_bind_msgr2", OptType::Bool, "true", true),
    opt("ms_bind_ipv4", OptType::Bool, "true", true),
    opt("ms_bind_ipv6", OptType::Bool, "false", true),
    opt("ms_cluster_mode", OptType::Str, "crc secure", true),
    opt("ms_service_mode", OptType::Str, "crc secure", true),
    opt("ms_client_mode", OptType::Str, "crc secure", true),
    opt("ms_mon_cluster_mode", OptType::Str, "secure crc", true),
    opt("ms_mon_service_mode", OptType::Str, "secure crc", true),
    opt("ms_mon_client_mode", OptType::Str, "secure crc", true),
    opt("ms_compress_secure", OptType::Bool, "false", false),
    opt("ms_osd_compress_mode", OptType::Str, "none", false),
    opt("ms_osd_compress_min_size", OptType::Int, "1024", false),
    opt(
        "ms_osd_compression_algorithm",
        OptType::Str,
        "snappy",
        false,
    ),
    opt("ms_type", OptType::Str, "async+posix", false),
    opt("ms_public_type", OptType::Str, "", false),
    opt("ms_cluster_type", OptType::Str, "", false),
    opt("ms_inject_socket_failures", OptType::Int, "0", false),
    opt(
        "ms_dispatch_throttle_bytes",
        OptType::Other,
        "104857600",
        false,
    ),
    opt("run_dir", OptType::Str, "/var/run/ceph", true),
    OptDef {
        name: "admin_socket",
        ty: OptType::Str,
        default: "$run_dir/$cluster-$name.$pid.$cctid.asok",
        daemon_default: Some("$run_dir/$cluster-$name.asok"),
        used: true,
    },
    opt("admin_socket_mode", OptType::Str, "", false),
    opt("host", OptType::Str, "", false),
    opt("fsid", OptType::Other, "", false),
    opt("public_addr", OptType::Other, "", true),
    opt("ms_bind_port_min", OptType::Int, "6800", true),
    opt("ms_bind_port_max", OptType::Int, "7568", true),
    opt("public_addrv", OptType::Other, "", false),
    opt("cluster_addr", OptType::Other, "", false),
    opt("public_network", OptType::Str, "", false),
    opt("cluster_network", OptType::Str, "", false),
    opt("mon_dns_srv_name", OptType::Str, "ceph-mon", false),
    opt("mon_initial_members", OptType::Str, "", false),
    opt(
        "mon_data",
        OptType::Str,
        "/var/lib/ceph/mon/$cluster-$id",
        false,
    ),
    opt(
        "osd_data",
        OptType::Str,
        "/var/lib/ceph/osd/$cluster-$id",
        false,
    ),
    opt(
        "mgr_data",
        OptType::Str,
        "/var/lib/ceph/mgr/$cluster-$id",
        false,
    ),
    opt(
        "mds_data",
        OptType::Str,
        "/var/lib/ceph/mds/$cluster-$id",
        false,
    ),
    opt("auth_supported", OptType::Str, "", false),
    opt("auth_cluster_required", OptType::Str, "cephx", false),
    opt("auth_service_required", OptType::Str, "cephx", false),
    opt("auth_client_required", OptType::Str, "cephx, none", false),
    opt(
        "auth_allow_insecure_global_id_reclaim",
        OptType::Bool,
        "true",
        false,
    ),
    opt("auth_service_ticket_ttl", OptType::Other, "3600", false),
    opt("auth_mon_ticket_ttl", OptType::Other, "43200", false),
    opt("log_file", OptType::Str, "", false),
    opt("log_to_file", OptType::Bool, "true", false),
    opt("log_to_stderr", OptType::Bool, "true", false),
    opt("err_to_stderr", OptType::Bool, "true", false),
    opt("pid_file", OptType::Str, "", false),
    opt("chdir", OptType::Str, "", false),
    opt("osd_objectstore", OptType::Str, "bluestore", false),
    opt("osd_pool_default_size", OptType::Int, "3", false),
    opt("osd_pool_default_min_size", OptType::Int, "0", false),
    opt("mon_allow_pool_delete", OptType::Bool, "false", false),
    opt("debug_ms", OptType::Other, "0/0", false),
    opt("debug_auth", OptType::Other, "1/5", false),
    opt("debug_mon", OptType::Other, "1/5", false),
    opt("debug_osd", OptType::Other, "1/5", false),
];

/// Looks an option up by its canonical (underscore) name.
pub fn find(name: &str) -> Option<&'static OptDef> {
    OPTIONS.iter().find(|o| o.name == name)
}
