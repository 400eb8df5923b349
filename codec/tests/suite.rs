//! All integration tests of msgr2-codec, built as one test binary: a change to the crate
//! rebuilds and links one test crate instead of one per file (the mutation-testing campaign
//! rebuilds per mutant). `autotests = false` in Cargo.toml: a new test file is a module here.

#[path = "bad_input.rs"]
mod bad_input;
#[path = "captures.rs"]
mod captures;
mod common;
#[path = "compress.rs"]
mod compress;
#[path = "golden.rs"]
mod golden;
#[path = "messages.rs"]
mod messages;
#[path = "monmap_ceph20.rs"]
mod monmap_ceph20;
#[path = "osd_ops.rs"]
mod osd_ops;
#[path = "roundtrip.rs"]
mod roundtrip;
