//! All integration tests of msgr2-crypto, built as one test binary: a change to the crate
//! rebuilds and links one test crate instead of one per file (the mutation-testing campaign
//! rebuilds per mutant). `autotests = false` in Cargo.toml: a new test file is a module here.

#[path = "auth_none.rs"]
mod auth_none;
#[path = "cephx_aes256k.rs"]
mod cephx_aes256k;
#[path = "cephx_capture.rs"]
mod cephx_capture;
#[path = "cephx_capture_ceph20.rs"]
mod cephx_capture_ceph20;
#[path = "cephx_roundtrip.rs"]
mod cephx_roundtrip;
#[path = "cephx_server.rs"]
mod cephx_server;
#[path = "cephx_tamper.rs"]
mod cephx_tamper;
#[path = "keyring_parse.rs"]
mod keyring_parse;
#[path = "secure_bad_input.rs"]
mod secure_bad_input;
#[path = "secure_capture.rs"]
mod secure_capture;
#[path = "secure_roundtrip.rs"]
mod secure_roundtrip;
#[path = "secure_vectors.rs"]
mod secure_vectors;
