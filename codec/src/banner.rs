//! The msgr2 banner: `ceph v2\n`, a `u16` payload length, and the supported/required msgr2
//! feature bits (a namespace separate from `CEPH_FEATURE_*`).
//!
//! The framing revision is chosen from the *peer's* supported bits alone (Ceph's
//! `_handle_peer_banner_payload`): msgr2.1 iff both sides support `REVISION_1`.

use thiserror::Error;

use crate::encoding::Encode;

/// The 8-byte banner prefix.
pub const BANNER_PREFIX: &[u8; 8] = b"ceph v2\n";
/// The msgr1 banner prefix, recognised to give a clear error.
pub const MSGR1_PREFIX: &[u8; 8] = b"ceph v02";
/// Prefix plus the `u16` payload length.
pub const BANNER_PREFIX_LEN: usize = 10;
/// Largest banner payload we accept (Ceph sends 16; the field is a `u16`).
pub const MAX_BANNER_PAYLOAD: usize = 4096;

/// `CEPH_MSGR2_FEATURE_REVISION_1`: the peer speaks msgr2.1 framing.
pub const FEATURE_REVISION_1: u64 = 1; // bit 0
/// `CEPH_MSGR2_FEATURE_COMPRESSION` (Quincy+): COMPRESSION_REQUEST/DONE after authentication
/// and compressed frames (see [`crate::compress`]).
pub const FEATURE_COMPRESSION: u64 = 1 << 1;
/// The msgr2 features this implementation can speak (what Quincy and later advertise).
pub const SUPPORTED_FEATURES: u64 = FEATURE_REVISION_1 | FEATURE_COMPRESSION;

/// Framing revision used for every frame after the banners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Revision {
    /// msgr2.0: 17-byte epilogue on every frame, one GCM op per secure frame.
    Rev0,
    /// msgr2.1: inline first-segment crc, epilogue only for multi-segment frames.
    Rev1,
}

/// Why a banner was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BannerError {
    /// The peer speaks the legacy msgr1 protocol.
    #[error("peer speaks msgr1 (banner \"ceph v027\"), not msgr2")]
    Msgr1,
    /// The first 8 bytes are not `ceph v2\n`.
    #[error("bad banner prefix {0:02x?} (expected \"ceph v2\\n\")")]
    BadPrefix([u8; 8]),
    /// The payload is shorter than the two feature words.
    #[error("banner payload of {0} bytes is shorter than 16")]
    ShortPayload(usize),
    /// The payload length is beyond what we accept.
    #[error("banner payload length {0} exceeds {MAX_BANNER_PAYLOAD}")]
    PayloadTooLong(usize),
    /// The peer requires msgr2 features we do not implement.
    #[error("peer requires msgr2 features {missing:#x} that we lack")]
    PeerRequiresMissing {
        /// The bits the peer requires and we lack.
        missing: u64,
    },
    /// We require features the peer lacks.
    #[error("peer lacks required msgr2 features {missing:#x}")]
    PeerLacksRequired {
        /// The bits we require and the peer lacks.
        missing: u64,
    },
}

/// A decoded banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banner {
    /// The sender's supported msgr2 features.
    pub supported: u64,
    /// The features the sender requires of us.
    pub required: u64,
}

impl Banner {
    /// The banner this implementation sends by default (supported = REVISION_1 |
    /// COMPRESSION, required = 0), byte-identical to Quincy's and later.
    pub const OURS: Banner = Banner {
        supported: SUPPORTED_FEATURES,
        required: 0,
    };

    /// Pacific's banner (supported = REVISION_1 only): a peer that never negotiates
    /// compression.
    pub const PACIFIC: Banner = Banner {
        supported: FEATURE_REVISION_1,
        required: 0,
    };

    /// Whether both banners advertise on-wire compression (then the client must send
    /// COMPRESSION_REQUEST right after AUTH_SIGNATURE and the server must wait for it).
    pub fn both_compress(ours: &Banner, peer: &Banner) -> bool {
        ours.supported & peer.supported & FEATURE_COMPRESSION != 0
    }

    /// The 26-byte wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(BANNER_PREFIX);
        out.put_u16(16);
        out.put_u64(self.supported);
        out.put_u64(self.required);
    }

    /// Checks the 10-byte prefix and returns the payload length to read next.
    pub fn decode_prefix(prefix: &[u8; BANNER_PREFIX_LEN]) -> Result<usize, BannerError> {
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&prefix[..8]);
        if &magic != BANNER_PREFIX {
            return Err(if &magic == MSGR1_PREFIX {
                BannerError::Msgr1
            } else {
                BannerError::BadPrefix(magic)
            });
        }
        let len = usize::from(u16::from_le_bytes([prefix[8], prefix[9]]));
        if len < 16 {
            return Err(BannerError::ShortPayload(len));
        }
        if len > MAX_BANNER_PAYLOAD {
            return Err(BannerError::PayloadTooLong(len));
        }
        Ok(len)
    }

    /// Decodes the payload (extra bytes after the two words are ignored, as Ceph does).
    pub fn decode_payload(payload: &[u8]) -> Result<Self, BannerError> {
        if payload.len() < 16 {
            return Err(BannerError::ShortPayload(payload.len()));
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&payload[..8]);
        let supported = u64::from_le_bytes(w);
        w.copy_from_slice(&payload[8..16]);
        let required = u64::from_le_bytes(w);
        Ok(Self {
            supported,
            required,
        })
    }

    /// Checks compatibility of our banner with the peer's and picks the framing revision.
    pub fn negotiate(ours: &Banner, peer: &Banner) -> Result<Revision, BannerError> {
        let missing = peer.required & !ours.supported;
        if missing != 0 {
            return Err(BannerError::PeerRequiresMissing { missing });
        }
        let missing = ours.required & !peer.supported;
        if missing != 0 {
            return Err(BannerError::PeerLacksRequired { missing });
        }
        Ok(
            if ours.supported & peer.supported & FEATURE_REVISION_1 != 0 {
                Revision::Rev1
            } else {
                Revision::Rev0
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact bytes Pacific sends (wire reference §2.1).
    const PACIFIC: [u8; 26] = [
        0x63, 0x65, 0x70, 0x68, 0x20, 0x76, 0x32, 0x0a, 0x10, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0,
    ];

    /// The payload length bounds are inclusive: 16 (Ceph's) and `MAX_BANNER_PAYLOAD` pass.
    #[test]
    fn payload_length_bounds() {
        let prefix = |len: u16| {
            let mut p = [0u8; BANNER_PREFIX_LEN];
            p[..8].copy_from_slice(BANNER_PREFIX);
            p[8..].copy_from_slice(&len.to_le_bytes());
            p
        };
        assert_eq!(Banner::decode_prefix(&prefix(16)), Ok(16));
        assert_eq!(
            Banner::decode_prefix(&prefix(MAX_BANNER_PAYLOAD as u16)),
            Ok(MAX_BANNER_PAYLOAD)
        );
        assert_eq!(
            Banner::decode_prefix(&prefix(MAX_BANNER_PAYLOAD as u16 + 1)),
            Err(BannerError::PayloadTooLong(MAX_BANNER_PAYLOAD + 1))
        );
        assert_eq!(
            Banner::decode_prefix(&prefix(15)),
            Err(BannerError::ShortPayload(15))
        );
    }

    #[test]
    fn pacific_bytes() {
        let mut b = Vec::new();
        Banner::PACIFIC.encode(&mut b);
        assert_eq!(b, PACIFIC);
        let mut p = [0u8; 10];
        p.copy_from_slice(&PACIFIC[..10]);
        assert_eq!(Banner::decode_prefix(&p).unwrap(), 16);
        assert_eq!(
            Banner::decode_payload(&PACIFIC[10..]).unwrap(),
            Banner::PACIFIC
        );
        // Ours is Quincy's and later: supported = REVISION_1 | COMPRESSION.
        let mut b = Vec::new();
        Banner::OURS.encode(&mut b);
        let mut quincy = PACIFIC;
        quincy[10] = 3;
        assert_eq!(b, quincy);
        assert!(Banner::both_compress(&Banner::OURS, &Banner::OURS));
        assert!(!Banner::both_compress(&Banner::OURS, &Banner::PACIFIC));
    }

    #[test]
    fn revision_choice() {
        let rev0_peer = Banner {
            supported: 0,
            required: 0,
        };
        assert_eq!(
            Banner::negotiate(&Banner::OURS, &Banner::OURS),
            Ok(Revision::Rev1)
        );
        assert_eq!(
            Banner::negotiate(&Banner::OURS, &rev0_peer),
            Ok(Revision::Rev0)
        );
        assert_eq!(
            Banner::negotiate(&rev0_peer, &Banner::OURS),
            Ok(Revision::Rev0)
        );
    }

    #[test]
    fn bad_banners() {
        assert_eq!(
            Banner::decode_prefix(b"ceph v027\0"),
            Err(BannerError::Msgr1)
        );
        assert!(matches!(
            Banner::decode_prefix(b"GET / HTTP"),
            Err(BannerError::BadPrefix(_))
        ));
        assert_eq!(
            Banner::decode_prefix(b"ceph v2\n\x08\x00"),
            Err(BannerError::ShortPayload(8))
        );
        assert_eq!(
            Banner::decode_payload(&[0; 15]),
            Err(BannerError::ShortPayload(15))
        );
        let needy = Banner {
            supported: 7,
            required: 4,
        };
        assert_eq!(
            Banner::negotiate(&Banner::OURS, &needy),
            Err(BannerError::PeerRequiresMissing { missing: 4 })
        );
        let strict = Banner {
            supported: 1,
            required: 1,
        };
        assert_eq!(
            Banner::negotiate(
                &strict,
                &Banner {
                    supported: 0,
                    required: 0
                }
            ),
            Err(BannerError::PeerLacksRequired { missing: 1 })
        );
    }
}
