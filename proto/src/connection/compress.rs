//! The compression phase of the handshake (COMPRESSION_REQUEST / COMPRESSION_DONE, both
//! roles) and the frame transform of a connection that negotiated compression: frames out
//! are compressed before framing (crc or encryption), frames in are decompressed after they
//! were verified. See [`crate::compression`] for the rules.

use msgr2_codec::compress::{
    compress_segments, decompress_segments, CompressError, Method, FLAG_COMPRESSED,
};
use msgr2_codec::frame::{Frame, SegmentDesc, Tag, MAX_SEGMENTS};
use msgr2_codec::payload::{self as p, CON_MODE_SECURE};
use msgr2_codec::Data;
use tracing::debug;

use super::{Connection, Phase};
use crate::compression::ActiveCompression;
use crate::error::ProtoError;

impl Connection {
    fn con_mode_secure(&self) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|(_, r)| r.con_mode == CON_MODE_SECURE)
    }

    /// Client, right after the server's AUTH_SIGNATURE checked out.
    pub(super) fn send_compression_request(&mut self) -> Result<(), ProtoError> {
        let peer = self.peer_type_or_client();
        let cfg = &self.config.compression;
        let is_compress = cfg.mode_for(peer, self.con_mode_secure()).compresses();
        let preferred_methods = cfg.methods_for(peer);
        debug!(
            is_compress,
            ?preferred_methods,
            "sending compression request"
        );
        self.send_control(&p::CompressionRequest {
            is_compress,
            preferred_methods,
        })?;
        self.phase = Phase::ExpectCompressionDone {
            requested: is_compress,
        };
        Ok(())
    }

    /// Client: compression is on when both sides said so (Ceph's `handle_compression_done`).
    pub(super) fn on_compression_done(
        &mut self,
        requested: bool,
        d: p::CompressionDone,
    ) -> Result<(), ProtoError> {
        debug!(
            is_compress = d.is_compress,
            method = d.method,
            "compression done"
        );
        if requested && d.is_compress {
            let method =
                Method::from_u32(d.method).ok_or(ProtoError::CompressionMethod(d.method))?;
            let min_size = self
                .config
                .compression
                .min_size_for(self.peer_type_or_client());
            self.compression = Some(ActiveCompression { method, min_size });
        }
        self.start_session_connect()
    }

    /// Server: answers COMPRESSION_REQUEST, then waits for CLIENT_IDENT / SESSION_RECONNECT.
    pub(super) fn on_compression_request(
        &mut self,
        r: p::CompressionRequest,
    ) -> Result<(), ProtoError> {
        let peer = self.peer_type_or_client();
        let cfg = &self.config.compression;
        let (is_compress, method) = cfg.answer(
            peer,
            self.con_mode_secure(),
            r.is_compress,
            &r.preferred_methods,
        );
        let min_size = cfg.min_size_for(peer);
        debug!(
            requested = r.is_compress,
            preferred = ?r.preferred_methods,
            is_compress,
            method,
            "compression request"
        );
        self.send_control(&p::CompressionDone {
            is_compress,
            method,
        })?;
        // Our own list only holds methods we implement (or none).
        self.compression = Method::from_u32(method)
            .filter(|_| is_compress)
            .map(|method| ActiveCompression { method, min_size });
        self.phase = Phase::ExpectClientIdent;
        Ok(())
    }

    /// Frames one outgoing frame, compressed when compression is on and the frame is large
    /// enough.
    pub(super) fn frame_out(
        &mut self,
        tag: Tag,
        segments: &[(&[u8], u16)],
    ) -> Result<(), ProtoError> {
        if let Some(c) = self.compression {
            let raw: Vec<&[u8]> = segments.iter().map(|s| s.0).collect();
            if let Some(z) = compress_segments(c.method, &raw, c.min_size) {
                let zs: Vec<(&[u8], u16)> = z
                    .iter()
                    .zip(segments)
                    .map(|(b, (_, align))| (b.as_slice(), *align))
                    .collect();
                return self
                    .tx
                    .frame_flags(tag, &zs, FLAG_COMPRESSED, &mut self.out);
            }
        }
        self.tx.frame(tag, segments, &mut self.out)
    }

    /// Undoes compression on a received (already verified) frame; other frames pass as they
    /// are. A compressed frame without negotiated compression is an error (Ceph asserts).
    pub(super) fn decompress_frame(&self, f: Frame<Data>) -> Result<Frame<Data>, ProtoError> {
        if f.preamble.flags & FLAG_COMPRESSED == 0 {
            return Ok(f);
        }
        let c = self.compression.ok_or(CompressError::NotNegotiated)?;
        let n = usize::from(f.preamble.num_segments).min(MAX_SEGMENTS);
        let raw: Vec<&[u8]> = f.segments[..n].iter().map(|s| s.as_ref()).collect();
        let out = decompress_segments(c.method, f.tag(), &raw, &self.config.limits)?;
        let mut preamble = f.preamble;
        let mut segments: [Data; MAX_SEGMENTS] = Default::default();
        for (i, d) in out.into_iter().enumerate() {
            preamble.segments[i] = SegmentDesc {
                len: u32::try_from(d.len()).unwrap_or(u32::MAX),
                align: preamble.segments[i].align,
            };
            segments[i] = Data::from(d);
        }
        preamble.flags &= !FLAG_COMPRESSED;
        Ok(Frame { preamble, segments })
    }
}
