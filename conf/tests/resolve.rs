//! Parser and resolution unit tests (the `ceph-conf` oracle itself is
//! `bench/tests/conf_oracle.rs`).

use std::path::Path;

use msgr2_conf::{CephArgs, ConfError, ConfFile, Entity, ResolveOptions, ResolvedConf};

fn conf(text: &str, name: &str) -> ResolvedConf {
    let f = ConfFile::parse(text, Path::new("/t/ceph.conf")).expect("parses");
    ResolvedConf::from_file(
        f,
        "ceph",
        Entity::parse(name).expect("name"),
        ResolveOptions::default(),
    )
}

#[test]
fn precedence_and_spellings() {
    let text = "[global]\nms cluster  mode = g\nms-client-mode = dash\nmon host = 1.2.3.4\n[osd]\nms_cluster_mode = t\n[osd.3]\nms_cluster_mode = i\n";
    assert_eq!(
        conf(text, "osd.3").lookup("ms_cluster_mode").as_deref(),
        Some("i")
    );
    assert_eq!(
        conf(text, "osd.4").lookup("ms_cluster_mode").as_deref(),
        Some("t")
    );
    assert_eq!(
        conf(text, "client.admin")
            .lookup("ms cluster mode")
            .as_deref(),
        Some("g")
    );
    assert_eq!(
        conf(text, "client.admin").lookup("mon_host").as_deref(),
        Some("1.2.3.4")
    );
    // a dash in a file key is not an underscore; on the command line it is
    assert_eq!(conf(text, "client.admin").lookup("ms_client_mode"), None);
    assert_eq!(
        conf(text, "client.admin")
            .lookup("ms-client-mode")
            .as_deref(),
        Some("dash")
    );
    // lookup is the file only; get adds defaults
    let c = conf(text, "client.admin");
    assert_eq!(c.lookup("ms_mon_client_mode"), None);
    assert_eq!(c.get("ms_mon_client_mode").as_deref(), Some("secure crc"));
    assert!(c
        .show()
        .iter()
        .any(|(k, v)| k == "ms_bind_msgr2" && v == "true"));
    assert_eq!(c.mon_addrs().expect("mon_host").len(), 2);
}

#[test]
fn grammar() {
    let text = "; c\n[global] # h\nk1 = a \\\n b\nk2 = \"q # \\\" x\"\nk2 = 'last'  ; c\nk3 = x\\#y # c\nk4 =\n";
    let e = "client.admin";
    let c = conf(&text.replace("\"q # ", "\"q "), e);
    assert_eq!(c.lookup("k1").as_deref(), Some("a  b"));
    assert_eq!(c.lookup("k2").as_deref(), Some("last"));
    assert_eq!(c.lookup("k3").as_deref(), Some("x#y"));
    assert_eq!(c.lookup("k4").as_deref(), Some(""));
    let e = ConfFile::parse(text, Path::new("/t/x.conf")).expect_err("# in quotes");
    assert_eq!((e.line, e.column), (5, 9));
    assert!(e.to_string().starts_with("/t/x.conf:5:"), "{e}");
}

#[test]
fn errors_name_file_and_line() {
    let p = Path::new("/t/bad.conf");
    let e = ConfFile::parse("[global]\nk = v", p).expect_err("no newline at the end");
    assert_eq!(e.line, 2);
    let e = ConfFile::parse("[global]\nk v\n", p).expect_err("no =");
    assert_eq!(e.line, 2);
    let e = ConfFile::parse("k = v\n[global]\n", p).expect_err("key before a section");
    assert_eq!(e.line, 2);
    // ... unless it is the whole file: then it is in [global]
    let one = ConfFile::parse("k = v\n\n", p).expect("one line");
    assert_eq!(one.get("global", "k").map(|l| l.value.as_str()), Some("v"));
    assert!(ConfFile::parse("[global\n", p).is_err());
    let c = conf(
        "[global]\n\nms_bind_ipv6 = maybe\nms_client_mode = fast\n",
        "client.admin",
    );
    match c.get_bool("ms_bind_ipv6") {
        Err(ConfError::BadValue { origin, .. }) => assert_eq!(origin, "/t/ceph.conf:3"),
        other => panic!("{other:?}"),
    }
    match c.modes() {
        Err(ConfError::BadValue { origin, option, .. }) => {
            assert_eq!(
                (origin.as_str(), option.as_str()),
                ("/t/ceph.conf:4", "ms_client_mode")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(Entity::parse("rgw.x"), Err(ConfError::BadName(_))));
}

#[test]
fn metavariables() {
    let c = conf(
        "[global]\nrun dir = /r/$type\nadmin socket = $run_dir/$cluster-$name.asok\nk = ${id}x$idx $$ $ms_bind_msgr1\n",
        "osd.3",
    );
    assert_eq!(
        c.lookup("admin_socket").as_deref(),
        Some("/r/osd/ceph-osd.3.asok")
    );
    assert_eq!(c.lookup("k").as_deref(), Some("3x$idx $$ $ms_bind_msgr1"));
}

#[test]
fn search_path_overrides_and_keyring() {
    let dir = std::env::temp_dir().join(format!("msgr2-conf-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kr = dir.join("second.keyring");
    std::fs::write(&kr, "").expect("write");
    let file = dir.join("mycl.conf");
    std::fs::write(
        &file,
        format!(
            "[global]\nkeyring = {d}/first.keyring,{d}/second.keyring\nms_client_mode = secure\n[client.x]\nmon_host = 1.2.3.4\n",
            d = dir.display()
        ),
    )
    .expect("write");
    let words: Vec<String> = [
        "-c",
        file.to_str().expect("utf8"),
        "-i",
        "x",
        "--ms-client-mode=crc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (args, rest) = CephArgs::extract(&words, &[]).expect("args");
    assert!(rest.is_empty());
    let c = ResolvedConf::resolve(&args, ResolveOptions::default()).expect("resolves");
    assert_eq!(c.cluster, "mycl");
    assert_eq!(c.entity.name(), "client.x");
    assert_eq!(c.keyring_path().as_deref(), Some(kr.as_path()));
    assert_eq!(c.get("ms_client_mode").as_deref(), Some("crc"));
    assert_eq!(c.lookup("ms_client_mode").as_deref(), Some("secure"));
    assert_eq!(c.get("mon_host").as_deref(), Some("1.2.3.4"));
    let missing = CephArgs {
        conf: Some(dir.join("nope.conf").display().to_string()),
        ..CephArgs::default()
    };
    assert!(matches!(
        ResolvedConf::resolve(&missing, ResolveOptions::default()),
        Err(ConfError::NotFound(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explicit_is_only_what_the_file_or_a_flag_sets() {
    let text = "[osd.3]\nadmin socket = /s/$cluster-$name.asok\n";
    let c = conf(text, "osd.3");
    assert_eq!(
        c.explicit("admin_socket").as_deref(),
        Some("/s/ceph-osd.3.asok")
    );
    // the default exists, but nobody set it
    let other = conf(text, "osd.4");
    assert!(other.get("admin_socket").is_some());
    assert_eq!(other.explicit("admin_socket"), None);
    // a flag wins over the file
    let (args, _) = CephArgs::extract(
        &["--admin-socket".to_owned(), "/f/$name.asok".to_owned()],
        &[],
    )
    .expect("flags");
    let r = ResolvedConf::resolve(&args, ResolveOptions { daemon: true }).expect("resolves");
    assert_eq!(
        r.explicit("admin_socket").as_deref(),
        Some("/f/client.admin.asok")
    );
}
