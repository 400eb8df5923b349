//! # msgr2-proto (stub)
//!
//! Will hold the sans-IO msgr2 state machines in the quinn-proto style: a `Connection` fed
//! with `handle_input(&[u8])` and `handle_timeout(now)`, drained with `poll_transmit` and
//! `poll_event`, one type per handshake state, and the session rules (cookies, global_seq,
//! connect_seq, reconnect, races) as small pure functions. It never touches a socket or a
//! clock. Tracked by the handshake and session issues.
