//! All integration tests of msgr2-proto, built as one test binary: a change to the crate
//! rebuilds and links one test crate instead of one per file (the mutation-testing campaign
//! rebuilds per mutant). `autotests = false` in Cargo.toml: a new test file is a module here.

#[path = "bad_input.rs"]
mod bad_input;
#[path = "compression.rs"]
mod compression;
#[path = "conn_api.rs"]
mod conn_api;
#[path = "conn_session.rs"]
mod conn_session;
#[path = "handshake.rs"]
mod handshake;
#[path = "modes.rs"]
mod modes;
#[path = "options.rs"]
mod options;
#[path = "replies.rs"]
mod replies;
#[path = "scenarios.rs"]
mod scenarios;
#[path = "secure.rs"]
mod secure;
#[path = "session_props.rs"]
mod session_props;
#[path = "sim/mod.rs"]
mod sim;
#[path = "wire.rs"]
mod wire;
