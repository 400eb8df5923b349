//! The framing in force on one connection: crc mode (either revision) until the mode switch,
//! then crc or secure. One value per direction, switched together at the mode switch.

use msgr2_codec::banner::Revision;
use msgr2_codec::frame::{assemble, Fed, FrameDecoder, Limits, Tag, VecAlloc};
use msgr2_crypto::secure::{ConnectionSecret, Role as SecureRole, SecureRx, SecureTx};

use crate::error::ProtoError;

fn secure_err(e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Secure(e.to_string())
}

/// Outgoing framing.
pub enum TxFraming {
    /// crc mode in the given revision.
    Crc(Revision),
    /// Secure mode (AES-128-GCM).
    Secure(Box<SecureTx>),
}

impl TxFraming {
    /// Appends one frame to `out`.
    pub fn frame(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
        out: &mut Vec<u8>,
    ) -> Result<(), ProtoError> {
        match self {
            TxFraming::Crc(rev) => {
                assemble(*rev, tag, segments, out);
                Ok(())
            }
            TxFraming::Secure(tx) => tx.seal_frame(tag, segments, out).map_err(secure_err),
        }
    }
}

/// Incoming framing.
pub enum RxFraming {
    /// crc mode.
    Crc(Box<FrameDecoder<VecAlloc>>),
    /// Secure mode (AES-128-GCM).
    Secure(Box<SecureRx<VecAlloc>>),
}

impl RxFraming {
    /// crc-mode decoding (every connection starts with it).
    pub fn crc(rev: Revision, limits: Limits) -> Self {
        RxFraming::Crc(Box::new(FrameDecoder::new(rev, limits)))
    }

    /// Whether the decoder sits between frames.
    pub fn at_boundary(&self) -> bool {
        match self {
            RxFraming::Crc(d) => d.at_boundary(),
            RxFraming::Secure(d) => d.at_boundary(),
        }
    }

    /// Feeds bytes; stops after one complete frame.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed<Vec<u8>>, ProtoError> {
        match self {
            RxFraming::Crc(d) => Ok(d.feed(input)?),
            RxFraming::Secure(d) => d.feed(input).map_err(secure_err),
        }
    }
}

impl RxFraming {
    /// Secure-mode decoding of what `role`'s peer sends.
    pub fn secure(
        secret: &ConnectionSecret,
        role: SecureRole,
        rev: Revision,
        limits: Limits,
    ) -> Result<Self, ProtoError> {
        Ok(RxFraming::Secure(Box::new(
            secret.rx(role, rev, limits).map_err(secure_err)?,
        )))
    }
}

/// Secure-mode framing for both directions from the connection secret.
pub(crate) fn secure(
    rev: Revision,
    secret: &[u8],
    is_server: bool,
    limits: Limits,
) -> Result<(TxFraming, RxFraming), ProtoError> {
    let role = if is_server {
        SecureRole::Server
    } else {
        SecureRole::Client
    };
    let s = ConnectionSecret::new(secret).map_err(secure_err)?;
    let tx = s.tx(role, rev).map_err(secure_err)?;
    let rx = s.rx(role, rev, limits).map_err(secure_err)?;
    Ok((
        TxFraming::Secure(Box::new(tx)),
        RxFraming::Secure(Box::new(rx)),
    ))
}
