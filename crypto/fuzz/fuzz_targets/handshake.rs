//! The handshake state machine, fed arbitrary bytes from a peer at any point (after a valid
//! banner or from the first byte), in both roles, never panics and only fails with a typed
//! error; afterwards the connection stays failed.
#![no_main]
use std::sync::Arc;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use msgr2_codec::addr::EntityAddrVec;
use msgr2_codec::banner::Banner;
use msgr2_codec::entity::EntityType;
use msgr2_crypto::auth::{NoneClientProvider, NoneServerProvider};
use msgr2_proto::{Config, Connection};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let now = Instant::now();
    let mut conn = if sel & 1 == 0 {
        let mut c = Config::new("mon.a".parse().expect("name"));
        c.my_addrs = EntityAddrVec(vec!["v2:127.0.0.1:3300/0".parse().expect("addr")]);
        c.server_auth = Some(Arc::new(NoneServerProvider::new(1)));
        Connection::server(Arc::new(c), "127.0.0.1:5000".parse().expect("sock"), 1, now)
    } else {
        let mut c = Config::new("client.admin".parse().expect("name"));
        c.client_auth = Some(Arc::new(NoneClientProvider::new(c.name.clone())));
        Connection::client(Arc::new(c), "v2:127.0.0.1:3300/0".parse().expect("addr"), EntityType::Mon, 1, now)
    };
    if sel & 2 != 0 {
        let mut b = Vec::new();
        Banner::OURS.encode(&mut b);
        let _ = conn.handle_input(&b);
    }
    let chunk = usize::from(sel >> 2) + 1;
    let mut failed = false;
    for piece in rest.chunks(chunk) {
        if conn.handle_input(piece).is_err() {
            failed = true;
            break;
        }
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
        while conn.poll_event().is_some() {}
    }
    if failed {
        assert!(conn.handle_input(b"x").is_err());
    }
});
