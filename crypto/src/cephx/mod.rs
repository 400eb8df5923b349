//! cephx: Ceph's Kerberos-like authentication protocol, as carried by msgr2 auth frames.
//!
//! - [`seal`](mod@seal): encryption by key type (`aes`: AES-128-CBC with Ceph's fixed IV; `aes256k`:
//!   RFC 8009 with a per-purpose [`KeyUsage`]), the sealed-structure envelope and the
//!   client/server challenge proof.
//! - [`types`]: the wire structures (`CephXAuthenticate`, tickets, authorizers, …).
//! - [`MonClientAuth`]: a client's login to a mon (AUTH_MODE_MON): challenge, proof, AUTH
//!   ticket, connection secret and service tickets, stored in a shared [`TicketStore`].
//! - [`AuthorizerClientAuth`]: a client's authorizer towards an OSD/MGR/MDS, built from the
//!   stored service ticket.
//! - [`MonServerAuth`]: a mon-style server issuing tickets the way a Pacific mon does.
//! - [`AuthorizerServerAuth`]: authorizer verification for an OSD-style daemon.
//! - [`RotatingKeyring`], [`RotatingServerProvider`]: a daemon's rotating service secrets
//!   fetched from a real mon, and ticket renewal over the mon session (`rotating`).
//! - [`build_auth_renewal_request`], [`handle_auth_renewal_reply`]: renewal of the AUTH
//!   (mon) ticket over an established mon session (`renewal`).
//! - [`CephxClientProvider`], [`CephxServerProvider`]: the handshake's entry points.
//!
//! Tickets issued by [`MonServerAuth`] are sealed with its own [`ServiceSecrets`]; a real
//! Ceph daemon (which only knows the rotating secrets a real mon distributes) cannot read
//! them, our own services sharing the `ServiceSecrets` can.

mod client;
mod provider;
mod renewal;
mod rotating;
pub mod seal;
mod server;
mod tickets;
pub mod types;

pub use client::{
    build_authenticate, parse_mon_auth_done, AuthorizerClientAuth, MonAuthReply, MonClientAuth,
    DEFAULT_WANT_KEYS, SERVICE_AUTH,
};
pub use provider::{CephxClientProvider, CephxServerProvider};
pub use renewal::{
    build_auth_renewal_request, handle_auth_renewal_reply, AuthRenewal, AuthRenewalError,
};
pub use rotating::{
    build_rotating_request, build_ticket_renewal_request, handle_ticket_renewal_reply,
    parse_rotating_reply, utime_of, ExpiringCryptoKey, RotatingKeyring, RotatingSecrets,
    RotatingServerProvider, KEY_ROTATE_NUM,
};
pub use seal::{
    calc_client_server_challenge, decrypt, encrypt, seal, seal_blob, unseal, unseal_blob, KeyUsage,
    SealError,
};
pub use server::{
    verify_authenticate, AuthorizerServerAuth, GlobalIdAllocator, MonServerAuth, MonServerContext,
    SecretsSource, ServiceSecrets, CONNECTION_SECRET_LEN, DEFAULT_AUTH_TICKET_TTL,
    DEFAULT_SERVICES, DEFAULT_SERVICE_TICKET_TTL, EIO, EPERM, STATIC_SECRET_ID,
};
pub use tickets::{ServiceTicket, TicketStore};
