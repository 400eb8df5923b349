//! On-wire compression settings and their negotiation (Ceph's `CompressorRegistry`).
//!
//! Ceph (Quincy and later) compresses only connections to and from OSDs: the mode, methods
//! and minimum size all come from the `ms_osd_*` options and apply when the *peer* is an OSD
//! (a client dialling an OSD, an OSD dialling an OSD, an OSD accepting an OSD; an OSD accepting
//! a client never compresses). Secure connections compress only with `ms_compress_secure`.
//!
//! The exchange (when both banners carry `CEPH_MSGR2_FEATURE_COMPRESSION`) comes right after
//! AUTH_SIGNATURE, before CLIENT_IDENT / SESSION_RECONNECT, on every new connection (a
//! reconnect negotiates again): the client sends COMPRESSION_REQUEST(`is_compress` = its mode
//! for this peer is not none, `preferred_methods` = its method list for this peer); the
//! server answers COMPRESSION_DONE(true, m) where m is the first of the client's methods it
//! also allows, when its own mode for the client is not none, and (false, 0) otherwise. The
//! client compresses when both said true. Each side turns compression on after the
//! COMPRESSION_DONE frame, so that frame itself is never compressed.

use msgr2_codec::compress::{Method, METHOD_NONE};
use msgr2_codec::entity::EntityType;
use thiserror::Error;

/// `ms_osd_compress_mode` values (Ceph's `Compressor::CompressionMode` names). Any mode but
/// `none` compresses every frame of at least the minimum size; Ceph's messenger does not
/// distinguish `passive`, `aggressive` and `force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressMode {
    /// Never compress (the default).
    #[default]
    None,
    /// `passive`.
    Passive,
    /// `aggressive`.
    Aggressive,
    /// `force`.
    Force,
}

impl CompressMode {
    /// Whether frames are compressed in this mode.
    pub fn compresses(self) -> bool {
        self != CompressMode::None
    }
}

/// A compression option could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompressionConfigError {
    /// Unknown option name.
    #[error("unknown compression option {0:?}")]
    UnknownOption(String),
    /// Bad value for the option.
    #[error("invalid value {value:?} for {option}")]
    BadValue {
        /// Option name.
        option: &'static str,
        /// The value given.
        value: String,
    },
}

/// The `ms_osd_compress_*` and `ms_compress_secure` options, with Ceph's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionConfig {
    /// Advertise `CEPH_MSGR2_FEATURE_COMPRESSION` in the banner (default true, as Quincy+).
    /// Off, the banner is Pacific's and no negotiation ever happens.
    pub advertise: bool,
    /// `ms_osd_compress_mode` (default `none`).
    pub osd_mode: CompressMode,
    /// `ms_osd_compression_algorithm` (default `snappy`), as wire ids in preference order; an
    /// empty or all-unknown list means `[none]` (0), as Ceph parses it.
    pub osd_methods: Vec<u32>,
    /// `ms_osd_compress_min_size` (default 1024): frames whose segments add up to less are
    /// sent uncompressed.
    pub osd_min_size: u64,
    /// `ms_compress_secure` (default false): also compress secure-mode connections.
    pub compress_secure: bool,
    /// Peer types the `ms_osd_*` settings apply to (default: OSD only, as Ceph hardcodes in
    /// `CompressorRegistry`). Adding others is an extension: Ceph daemons never answer a
    /// client's COMPRESSION_REQUEST with compression, but a Ceph client does compress when a
    /// server agrees.
    pub peer_types: Vec<EntityType>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            advertise: true,
            osd_mode: CompressMode::None,
            osd_methods: vec![Method::Snappy as u32],
            osd_min_size: 1024,
            compress_secure: false,
            peer_types: vec![EntityType::Osd],
        }
    }
}

/// Parses `ms_osd_compression_algorithm` like Ceph's `_parse_method_list`: words split on
/// `;,= \t`, unknown names skipped, an empty result becomes `[none]`.
pub fn parse_methods(s: &str) -> Vec<u32> {
    let mut v: Vec<u32> = s
        .split([';', ',', '=', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .filter_map(|w| match w {
            "none" => Some(METHOD_NONE),
            other => Method::from_name(other).map(|m| m as u32),
        })
        .collect();
    if v.is_empty() {
        v.push(METHOD_NONE);
    }
    v
}

impl CompressionConfig {
    /// Sets an option by its Ceph name from its text value (`ms_osd_compress_mode`,
    /// `ms_osd_compression_algorithm`, `ms_osd_compress_min_size`, `ms_compress_secure`).
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), CompressionConfigError> {
        let bad = |option: &'static str| CompressionConfigError::BadValue {
            option,
            value: value.to_owned(),
        };
        match option {
            "ms_osd_compress_mode" => {
                self.osd_mode = match value.trim() {
                    "none" => CompressMode::None,
                    "passive" => CompressMode::Passive,
                    "aggressive" => CompressMode::Aggressive,
                    "force" => CompressMode::Force,
                    _ => return Err(bad("ms_osd_compress_mode")),
                }
            }
            "ms_osd_compression_algorithm" => self.osd_methods = parse_methods(value),
            "ms_osd_compress_min_size" => {
                self.osd_min_size = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("ms_osd_compress_min_size"))?
            }
            "ms_compress_secure" => {
                self.compress_secure = match value.trim() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(bad("ms_compress_secure")),
                }
            }
            other => return Err(CompressionConfigError::UnknownOption(other.to_owned())),
        }
        Ok(())
    }

    /// Ceph's `get_mode(peer_type, is_secure)`.
    pub fn mode_for(&self, peer: EntityType, secure: bool) -> CompressMode {
        if secure && !self.compress_secure {
            return CompressMode::None;
        }
        if self.peer_types.contains(&peer) {
            self.osd_mode
        } else {
            CompressMode::None
        }
    }

    /// Ceph's `get_methods(peer_type)`: what a client offers (empty for non-OSD peers).
    pub fn methods_for(&self, peer: EntityType) -> Vec<u32> {
        if self.peer_types.contains(&peer) {
            self.osd_methods.clone()
        } else {
            Vec::new()
        }
    }

    /// Ceph's `get_min_compression_size(peer_type)` (0 for non-OSD peers, which never
    /// compress anyway).
    pub fn min_size_for(&self, peer: EntityType) -> u64 {
        if self.peer_types.contains(&peer) {
            self.osd_min_size
        } else {
            0
        }
    }

    /// Ceph's `pick_method`: the first of the client's `preferred` methods that we allow
    /// for `peer` ([`METHOD_NONE`] if none).
    pub fn pick_method(&self, peer: EntityType, preferred: &[u32]) -> u32 {
        let allowed = self.methods_for(peer);
        preferred
            .iter()
            .copied()
            .find(|m| allowed.contains(m))
            .unwrap_or(METHOD_NONE)
    }

    /// Server side of the exchange: the COMPRESSION_DONE answer (`is_compress`, method) to a
    /// COMPRESSION_REQUEST from a `peer` on a (`secure`) connection.
    pub fn answer(
        &self,
        peer: EntityType,
        secure: bool,
        is_compress: bool,
        preferred: &[u32],
    ) -> (bool, u32) {
        if self.mode_for(peer, secure).compresses() && is_compress {
            let m = self.pick_method(peer, preferred);
            (m != METHOD_NONE, m)
        } else {
            (false, METHOD_NONE)
        }
    }
}

/// Compression in force on a connection (both directions use the same method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveCompression {
    /// The negotiated method.
    pub method: Method,
    /// Frames below this total size go uncompressed.
    pub min_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_ceph() {
        let mut c = CompressionConfig::default();
        assert_eq!(c.methods_for(EntityType::Osd), vec![1]);
        assert_eq!(c.mode_for(EntityType::Osd, false), CompressMode::None);
        assert_eq!(c.answer(EntityType::Osd, false, true, &[1]), (false, 0));
        c.set("ms_osd_compress_mode", "force").unwrap();
        c.set("ms_osd_compression_algorithm", "zstd, lz4 bogus")
            .unwrap();
        assert_eq!(c.osd_methods, vec![3, 4]);
        assert_eq!(c.answer(EntityType::Osd, false, true, &[4, 3]), (true, 4));
        assert_eq!(c.answer(EntityType::Osd, false, true, &[1]), (false, 0));
        assert_eq!(c.answer(EntityType::Osd, false, false, &[3]), (false, 0));
        assert_eq!(c.answer(EntityType::Client, false, true, &[3]), (false, 0));
        assert_eq!(c.answer(EntityType::Osd, true, true, &[3]), (false, 0));
        c.set("ms_compress_secure", "true").unwrap();
        assert_eq!(c.answer(EntityType::Osd, true, true, &[3]), (true, 3));
        assert_eq!(parse_methods(""), vec![0]);
        assert_eq!(parse_methods("brotli"), vec![0]);
        assert!(c.set("ms_osd_compress_mode", "sometimes").is_err());
        assert!(c.set("ms_osd_compress_min_size", "-1").is_err());
        assert!(c.set("ms_bogus", "1").is_err());
    }
}
