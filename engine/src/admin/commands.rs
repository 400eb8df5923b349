//! The admin-socket commands: Ceph's table (`help`, `get_command_descriptions`, `version`,
//! `perf dump`, `perf schema`, `config show`, `config get`, the legacy aliases `0`, `1`, `2`,
//! `perfcounters_dump`, `perfcounters_schema`) plus `messenger status`, answered as a Ceph
//! 16.2 / 20.2 daemon answers (bodies and error texts checked against real daemons).

use super::json::{Format, JsonWriter};
use super::perf::{self, ThrottleView, WorkerView};
use super::request::{self, ArgValue, Request};

/// `CEPH_ADMIN_SOCK_VERSION`: the answer to the legacy version request.
const SOCK_VERSION: &str = "2";

/// One command: prefix, Ceph command descriptor, help (empty: not listed by `help`).
struct Command {
    prefix: &'static str,
    desc: &'static str,
    help: &'static str,
}

/// Sorted by prefix, as Ceph's hook map is.
const COMMANDS: &[Command] = &[
    Command { prefix: "0", desc: "0", help: "" },
    Command { prefix: "1", desc: "1", help: "" },
    Command { prefix: "2", desc: "2", help: "" },
    Command {
        prefix: "config get",
        desc: "config get name=var,type=CephString",
        help: "config get <field>: get the config value",
    },
    Command {
        prefix: "config show",
        desc: "config show",
        help: "dump current config settings",
    },
    Command {
        prefix: "get_command_descriptions",
        desc: "get_command_descriptions",
        help: "list available commands",
    },
    Command {
        prefix: "help",
        desc: "help",
        help: "list available commands",
    },
    Command {
        prefix: "messenger status",
        desc: "messenger status",
        help: "msgr2-rs: each messenger's workers, connections per core, sessions and throttles",
    },
    Command {
        prefix: "perf dump",
        desc: "perf dump name=logger,type=CephString,req=false name=counter,type=CephString,req=false",
        help: "dump perfcounters value",
    },
    Command {
        prefix: "perf schema",
        desc: "perf schema name=logger,type=CephString,req=false name=counter,type=CephString,req=false",
        help: "dump perfcounters schema",
    },
    Command {
        prefix: "perfcounters_dump",
        desc: "perfcounters_dump",
        help: "",
    },
    Command {
        prefix: "perfcounters_schema",
        desc: "perfcounters_schema",
        help: "",
    },
    Command {
        prefix: "version",
        desc: "version",
        help: "get ceph version",
    },
];

/// A policy's throttles: (peer type, bytes (taken, max), messages (taken, max)).
pub(crate) type PolicyThrottle = (String, Option<(u64, u64)>, Option<(u64, u64)>);

/// One messenger as the commands see it (a snapshot taken for this request).
pub struct MessengerView {
    /// The label it was registered with (`public`, `cluster`, ...).
    pub label: String,
    /// Its entity name.
    pub name: String,
    /// Its bound addresses.
    pub addrs: String,
    /// Whether it has shut down.
    pub stopped: bool,
    /// Its reactors: (global worker number, CPU, counters).
    pub workers: Vec<(WorkerView, usize)>,
    /// Sessions in its registry.
    pub sessions: usize,
    /// Dispatch throttle: (taken, budget).
    pub dispatch_throttle: (u64, u64),
    /// Per-peer-type policy throttles: (peer type, bytes (taken, max), messages (taken, max)).
    pub policy_throttles: Vec<PolicyThrottle>,
}

/// What the daemon exposes.
pub struct DaemonView<'a> {
    /// `version` answer: (version, release, release_type).
    pub version: (&'a str, &'a str, &'a str),
    /// `config show` / `config get` pairs.
    pub config: &'a [(String, String)],
    /// Registered messengers.
    pub messengers: Vec<MessengerView>,
}

/// A command's outcome: output, or an errno with a reason (and possibly output).
struct Failure {
    errno: i32,
    reason: String,
}

/// Executes one request text and returns the reply body.
pub fn execute(text: &str, view: &DaemonView<'_>) -> String {
    let req = match request::parse(text) {
        Ok(r) => r,
        Err(e) => return request::error_body(libc::EINVAL, &e.to_string(), ""),
    };
    let Some(cmd) = COMMANDS.iter().find(|c| c.prefix == req.prefix) else {
        return request::error_body(
            libc::EINVAL,
            &format!("unknown command prefix {}", req.prefix),
            "",
        );
    };
    if !validates(cmd.desc, &req) {
        return request::error_body(libc::EINVAL, "invalid command json", "");
    }
    let format = Format::from_request(req.format.as_deref());
    match run(cmd.prefix, &req, format, view) {
        Ok(body) => body,
        Err(f) => request::error_body(f.errno, &f.reason, ""),
    }
}

/// Ceph's `validate_cmd`: every described argument is present when required and of its
/// type (all ours are strings).
fn validates(desc: &str, req: &Request) -> bool {
    desc.split(' ').filter(|w| w.contains('=')).all(|word| {
        let kv: Vec<(&str, &str)> = word.split(',').filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| kv.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
        let Some(name) = get("name") else {
            return true;
        };
        match req.args.get(name) {
            None => get("req") == Some("false"),
            Some(ArgValue::Str(_)) => true,
            Some(_) => false,
        }
    })
}

fn run(
    prefix: &str,
    req: &Request,
    format: Format,
    view: &DaemonView<'_>,
) -> Result<String, Failure> {
    let mut w = JsonWriter::new(format);
    match prefix {
        "0" => return Ok(SOCK_VERSION.to_owned()),
        "version" => {
            w.open_object("version");
            w.string("version", view.version.0);
            w.string("release", view.version.1);
            w.string("release_type", view.version.2);
        }
        "help" => {
            w.open_object("help");
            for c in COMMANDS.iter().filter(|c| !c.help.is_empty()) {
                w.string(c.prefix, c.help);
            }
        }
        "get_command_descriptions" => descriptions(&mut w),
        "perf dump" | "perfcounters_dump" | "1" | "perf schema" | "perfcounters_schema" | "2" => {
            let schema = matches!(prefix, "perf schema" | "perfcounters_schema" | "2");
            let workers: Vec<WorkerView> = view
                .messengers
                .iter()
                .flat_map(|m| m.workers.iter())
                .map(|(v, _)| WorkerView {
                    index: v.index,
                    counters: v.counters.clone(),
                })
                .collect();
            let throttles: Vec<ThrottleView> = view
                .messengers
                .iter()
                .map(|m| ThrottleView {
                    label: m.label.clone(),
                    val: m.dispatch_throttle.0,
                    max: m.dispatch_throttle.1,
                })
                .collect();
            perf::write(
                &mut w,
                &workers,
                &throttles,
                schema,
                req.str_arg("logger"),
                req.str_arg("counter"),
            );
        }
        "config show" => {
            w.open_object("config");
            for (k, v) in config_sorted(view.config) {
                w.string(k, v);
            }
        }
        "config get" => {
            let var = req.str_arg("var").unwrap_or_default();
            let found = view
                .config
                .iter()
                .rev()
                .find(|(k, _)| normalize(k) == normalize(var));
            match found {
                Some((_, v)) => {
                    w.open_object("config");
                    w.string(var, v);
                }
                None => {
                    return Err(Failure {
                        errno: libc::ENOENT,
                        reason: format!("error getting '{var}': (2) No such file or directory"),
                    })
                }
            }
        }
        "messenger status" => status(&mut w, view),
        _ => {
            return Err(Failure {
                errno: libc::EINVAL,
                reason: format!("unknown command prefix {prefix}"),
            })
        }
    }
    Ok(w.finish())
}

/// Ceph treats spaces, dashes and underscores in option names alike on lookup.
fn normalize(name: &str) -> String {
    name.replace([' ', '-'], "_")
}

/// `name` and `cluster` first, then the rest by name (Ceph's `show_config` order); a name given
/// twice shows its last value.
fn config_sorted(config: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in config {
        map.insert(k.as_str(), v.as_str());
    }
    let mut out = Vec::with_capacity(map.len());
    for first in ["name", "cluster"] {
        if let Some(v) = map.remove(first) {
            out.push((first, v));
        }
    }
    out.extend(map);
    out
}

/// `get_command_descriptions`: `cmdNNN` objects with `sig` (words and argument objects) and
/// `help`, as Ceph 16 prints them (`"req": "false"`).
fn descriptions(w: &mut JsonWriter) {
    w.open_object("command_descriptions");
    for (i, c) in COMMANDS.iter().enumerate() {
        w.open_object(&format!("cmd{i:03}"));
        w.open_array("sig");
        for word in c.desc.split(' ') {
            if !word.contains(['=', ',']) {
                w.string("arg", word);
                continue;
            }
            let mut kv: Vec<(&str, &str)> =
                word.split(',').filter_map(|p| p.split_once('=')).collect();
            kv.sort();
            let name = kv
                .iter()
                .find(|(k, _)| *k == "name")
                .map_or("", |(_, v)| *v);
            w.open_object(name);
            for (k, v) in kv {
                w.string(k, v);
            }
            w.close();
        }
        w.close();
        w.string("help", c.help);
        w.close();
    }
}

/// `messenger status`.
fn status(w: &mut JsonWriter, view: &DaemonView<'_>) {
    w.open_object("messenger_status");
    w.open_array("messengers");
    for m in &view.messengers {
        w.open_object("messenger");
        w.string("label", &m.label);
        w.string("name", &m.name);
        w.string("addrs", &m.addrs);
        w.bool("stopped", m.stopped);
        w.unsigned("sessions", m.sessions as u64);
        let total: u64 = m
            .workers
            .iter()
            .map(|(v, _)| v.counters.msgr_active_connections)
            .sum();
        w.unsigned("active_connections", total);
        w.open_array("cores");
        for (v, cpu) in &m.workers {
            w.open_object("core");
            w.string("worker", &format!("AsyncMessenger::Worker-{}", v.index));
            w.unsigned("cpu", *cpu as u64);
            w.unsigned("active_connections", v.counters.msgr_active_connections);
            w.unsigned("created_connections", v.counters.msgr_created_connections);
            w.unsigned("conns_crc", v.counters.conns_mode_crc);
            w.unsigned("conns_secure", v.counters.conns_mode_secure);
            w.unsigned("conns_raw", v.counters.conns_mode_raw);
            w.close();
        }
        w.close();
        w.open_object("throttles");
        w.open_object("ms_dispatch_throttle_bytes");
        w.unsigned("val", m.dispatch_throttle.0);
        w.unsigned("max", m.dispatch_throttle.1);
        w.close();
        for (peer, bytes, msgs) in &m.policy_throttles {
            w.open_object(&format!("policy_{peer}"));
            for (n, t) in [("bytes", bytes), ("messages", msgs)] {
                if let Some((val, max)) = t {
                    w.open_object(n);
                    w.unsigned("val", *val);
                    w.unsigned("max", *max);
                    w.close();
                }
            }
            w.close();
        }
        w.close();
        w.close();
    }
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Counters;

    fn view(config: &[(String, String)]) -> DaemonView<'_> {
        let c = Counters {
            msgr_recv_messages: 5,
            ..Counters::default()
        };
        DaemonView {
            version: ("0.1.0", "msgr2-rs", "dev"),
            config,
            messengers: vec![MessengerView {
                label: "server".into(),
                name: "mon.a".into(),
                addrs: "[v2:127.0.0.1:3300/0]".into(),
                stopped: false,
                workers: vec![(
                    WorkerView {
                        index: 0,
                        counters: c,
                    },
                    3,
                )],
                sessions: 1,
                dispatch_throttle: (0, 100),
                policy_throttles: vec![("osd".into(), Some((1, 2)), None)],
            }],
        }
    }

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    #[test]
    fn errors_have_cephs_shape() {
        let cfg = vec![];
        let v = view(&cfg);
        assert_eq!(
            execute("{\"prefix\": \"foo\"}", &v),
            "ERROR: (22) Invalid argument\nunknown command prefix foo\n"
        );
        assert_eq!(
            execute("garbage", &v),
            "ERROR: (22) Invalid argument\ninvalid json\n"
        );
        assert_eq!(
            execute("{\"prefix\": 3}", &v),
            "ERROR: (22) Invalid argument\ninvalid json, missing format and/or prefix\n"
        );
        assert_eq!(
            execute("{}", &v),
            "ERROR: (22) Invalid argument\nunknown command prefix \n"
        );
        assert_eq!(
            execute("{\"prefix\": \"config get\"}", &v),
            "ERROR: (22) Invalid argument\ninvalid command json\n"
        );
        assert_eq!(
            execute("{\"prefix\": \"config get\", \"var\": 5}", &v),
            "ERROR: (22) Invalid argument\ninvalid command json\n"
        );
        assert_eq!(
            execute("{\"prefix\": \"config get\", \"var\": \"nope\"}", &v),
            "ERROR: (2) No such file or directory\nerror getting 'nope': (2) No such file or directory\n"
        );
        assert_eq!(execute("{\"prefix\": \"0\"}", &v), "2");
    }

    #[test]
    fn version_and_config() {
        let cfg = vec![
            ("ms_cluster_mode".to_owned(), "crc secure".to_owned()),
            ("name".to_owned(), "mon.a".to_owned()),
            ("admin_socket".to_owned(), "/run/x.asok".to_owned()),
            ("cluster".to_owned(), "ceph".to_owned()),
        ];
        let v = view(&cfg);
        assert_eq!(
            execute("{\"prefix\": \"version\"}", &v),
            "{\n    \"version\": \"0.1.0\",\n    \"release\": \"msgr2-rs\",\n    \"release_type\": \"dev\"\n}\n"
        );
        assert_eq!(
            execute("{\"prefix\": \"config show\", \"format\": \"json\"}", &v),
            r#"{"name":"mon.a","cluster":"ceph","admin_socket":"/run/x.asok","ms_cluster_mode":"crc secure"}"#
        );
        assert_eq!(
            json(&execute(
                "{\"prefix\": \"config get\", \"var\": \"ms-cluster-mode\"}",
                &v
            )),
            serde_json::json!({"ms-cluster-mode": "crc secure"})
        );
    }

    #[test]
    fn help_descriptions_perf_status() {
        let cfg = vec![];
        let v = view(&cfg);
        let h = json(&execute("{\"prefix\": \"help\"}", &v));
        assert_eq!(h["perf dump"], "dump perfcounters value");
        assert!(h.get("0").is_none());
        let d = json(&execute("{\"prefix\": \"get_command_descriptions\"}", &v));
        assert_eq!(
            d["cmd003"],
            serde_json::json!({"sig": ["config", "get", {"name": "var", "type": "CephString"}],
                "help": "config get <field>: get the config value"})
        );
        assert_eq!(
            d["cmd008"]["sig"][2],
            serde_json::json!({"name": "logger", "req": "false", "type": "CephString"})
        );
        for p in ["perf dump", "1", "perfcounters_dump"] {
            let p = json(&execute(&format!("{{\"prefix\": \"{p}\"}}"), &v));
            assert_eq!(p["AsyncMessenger::Worker-0"]["msgr_recv_messages"], 5);
        }
        let s = json(&execute("{\"prefix\": \"2\"}", &v));
        assert_eq!(
            s["AsyncMessenger::Worker-0"]["msgr_recv_messages"]["type"],
            10
        );
        let st = json(&execute("{\"prefix\": \"messenger status\"}", &v));
        assert_eq!(st["messengers"][0]["cores"][0]["cpu"], 3);
        assert_eq!(
            st["messengers"][0]["throttles"]["policy_osd"]["bytes"]["max"],
            2
        );
    }
}
