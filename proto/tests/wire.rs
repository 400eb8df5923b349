#![allow(clippy::unwrap_used)]

//! Wire helpers for tests that read or forge the frames between two in-memory connections:
//! splitting a byte stream into its banner and frames, building a control frame, decoding
//! one (rev1, crc mode: what the handshake and crc sessions put on the wire).

use msgr2_codec::banner::Revision;
use msgr2_codec::frame::{assemble, FrameDecoder, Limits, Tag};
use msgr2_codec::payload::{Control, ControlPayload};

/// Splits one direction's byte stream into its banner and whole frames.
#[derive(Default)]
pub struct Splitter {
    pub banner_left: Option<usize>,
    pub buf: Vec<u8>,
    pub dec: Option<FrameDecoder>,
}

impl Splitter {
    /// Returns the raw bytes of each complete item (banner, then frames) with its tag.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<(Option<Tag>, Vec<u8>)> {
        let mut out = Vec::new();
        self.buf.extend_from_slice(bytes);
        loop {
            if self.dec.is_none() {
                if self.buf.len() < 10 {
                    return out;
                }
                let len = 10 + u16::from_le_bytes([self.buf[8], self.buf[9]]) as usize;
                self.banner_left.get_or_insert(len);
                if self.buf.len() < len {
                    return out;
                }
                out.push((None, self.buf.drain(..len).collect()));
                self.dec = Some(FrameDecoder::new(Revision::Rev1, Limits::default()));
                continue;
            }
            let dec = self.dec.as_mut().unwrap();
            let (used, f) = match dec.feed(&self.buf) {
                Ok(x) => x,
                Err(e) => panic!("{e} buf {:02x?}", &self.buf[..self.buf.len().min(80)]),
            };
            match f {
                Some(f) => out.push((Some(f.tag()), self.buf.drain(..used).collect())),
                None => {
                    // keep the bytes until the frame completes: restart from a fresh decoder
                    self.dec = Some(FrameDecoder::new(Revision::Rev1, Limits::default()));
                    return out;
                }
            }
        }
    }
}

/// A rev1 control frame carrying `payload`.
pub fn frame<P: ControlPayload>(payload: &P) -> Vec<u8> {
    let mut f = Vec::new();
    assemble(Revision::Rev1, P::TAG, &[(&payload.to_bytes(), 8)], &mut f);
    f
}

/// The control payload of one raw rev1 frame.
pub fn control_of(raw: &[u8]) -> Control {
    let mut d = FrameDecoder::new(Revision::Rev1, Limits::default());
    let (_, f) = d.feed(raw).unwrap();
    let f = f.unwrap();
    Control::decode(f.tag(), f.segment(0)).unwrap()
}
