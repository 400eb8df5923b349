//! # msgr2-codec
//!
//! Byte-exact encoding of Ceph's messenger v2 (msgr2) wire protocol, as shipped by Ceph
//! 16.2 "Pacific" and the Linux kernel client. This crate is pure: no I/O, no threads, no
//! clock, no cryptography other than crc32c.
//!
//! What lives here:
//! - [`crc`]: crc32c with Ceph's seeding (raw register, no implicit inversions).
//! - [`encoding`]: Ceph's `encode()`/`decode()` primitives, including `ENCODE_START`
//!   versioned structs.
//! - [`entity`], [`addr`], [`monhost`]: entity names, `entity_addr_t`/`entity_addrvec_t` and
//!   their text forms, and `mon_host` parsing with Ceph's default ports.
//! - [`banner`]: the `ceph v2\n` banner and framing-revision choice.
//! - [`frame`]: the 32-byte preamble, rev0/rev1 crc-mode assembly and an incremental,
//!   zero-copy-capable decoder.
//! - [`compress`]: on-wire compression (Quincy+) in Ceph's per-method formats.
//! - [`payload`], [`msg`]: typed control-frame payloads and `ceph_msg_header2`.
//!
//! Every decoder returns a typed error for malformed input; none panics and none allocates
//! more than a configured limit, whatever a peer claims.

pub mod addr;
pub mod banner;
pub mod compress;
pub mod crc;
pub mod data;
pub mod encoding;
pub mod entity;
pub mod frame;
pub mod incremental;
pub mod messages;
pub mod monhost;
pub mod msg;
pub mod pagepool;
pub mod payload;
pub mod raw;

pub use addr::{AddrType, EntityAddr, EntityAddrVec};
pub use banner::{Banner, BannerError, Revision};
pub use data::{Data, DataAlloc};
pub use encoding::{DecodeError, Decoder};
pub use entity::{EntityName, EntityType};
pub use frame::{FrameDecoder, FrameError, Limits, Preamble, Tag};
pub use msg::MsgHeader2;
