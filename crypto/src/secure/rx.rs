//! Incremental receiver for secure-mode frames.
//!
//! [`SecureRx`] mirrors the crc-mode [`FrameDecoder`](msgr2_codec::FrameDecoder): it always
//! knows the next item it needs and exposes the unfilled part as [`SecureRx::dest`], so bytes
//! can be copied in ([`SecureRx::feed`]) or received straight into it
//! ([`SecureRx::dest`] + [`SecureRx::advance`]); [`SecureRx::feed`] stops right after every
//! complete frame. Nothing is allocated for a frame before its preamble has passed its crc
//! and the [`Limits`]; nothing is handed out before its GCM tag verified.
//!
//! Items, per revision:
//! - **rev1**: the 96-byte first block (preamble ‖ inline ‖ tag), decrypted and verified
//!   before the preamble is even parsed; then, if the padded first segment exceeds 48 bytes,
//!   its remainder ‖ tag; then, for multi-segment frames, the tail
//!   `pad(seg1..3) ‖ epilogue ‖ tag`.
//! - **rev0**: the 32-byte encrypted preamble, read with the GCM keystream (AES of
//!   `nonce ‖ 00000002`, `nonce ‖ 00000003`) to learn the lengths — unauthenticated until the
//!   end of the frame, so it is used only to size the read, bounded by the [`Limits`] — then
//!   `pad(seg0..n) ‖ epilogue ‖ tag`, after which the whole frame is opened in one AEAD call.
//!
//! **The one copy.** Each GCM unit must be contiguous for a one-shot AEAD call, but a
//! multi-segment unit also holds padding, the epilogue and the tag, which do not fit the
//! exact-length buffers a [`SegmentAlloc`] hands out. So the rev1 first-segment remainder, the
//! rev1 tail and the rev0 body are received into one reusable scratch buffer, decrypted there
//! in place, and each segment is then copied once into its [`SegmentAlloc`] buffer (allocated
//! only after the tag verified; aborted frames allocate nothing). The rev1 inline part (at
//! most 48 bytes) is copied out of the first block the same way. The scratch buffer keeps its
//! size between frames (up to [`SCRATCH_RETAIN`] bytes) so steady-state receiving does not
//! allocate for it.

use super::backend::{Backend, Cipher};
use super::nonce::NonceSeq;
use super::{
    pad16, SecureError, FIRST_BLOCK_LEN, INLINE_LEN, KEY_LEN, NONCE_LEN, SECURE_EPILOGUE_LEN,
    TAG_LEN,
};
use msgr2_codec::frame::{
    Frame, FrameError, Limits, Preamble, SegmentAlloc, Tag, VecAlloc, LATE_FLAG_ABORTED,
    LATE_STATUS_ABORTED, LATE_STATUS_COMPLETE, MAX_SEGMENTS, PREAMBLE_LEN,
};
use msgr2_codec::incremental::Incremental;
use msgr2_codec::Revision;

/// Scratch space kept between frames; a larger scratch buffer is released after its frame.
pub const SCRATCH_RETAIN: usize = 8 << 20;

/// What [`SecureRx::feed`] returns: bytes consumed and the frame that completed, if any.
pub type SecureFed<B> = (usize, Option<Frame<B>>);

/// What kind of bytes the receiver wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureWantKind {
    /// rev1: the 96-byte first block (preamble ‖ inline ‖ tag); rev0: the 32-byte encrypted
    /// preamble.
    FirstBlock,
    /// rev1: the rest of the padded first segment of a `tag` frame, and its tag.
    FirstSegmentRest {
        /// Frame tag.
        tag: Tag,
    },
    /// rev1: padded segments 1..n, the epilogue and the tag of a `tag` frame.
    Tail {
        /// Frame tag.
        tag: Tag,
    },
    /// rev0: all padded segments, the epilogue and the tag of a `tag` frame.
    Body {
        /// Frame tag.
        tag: Tag,
    },
}

/// The receiver's next need: `len` more bytes of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureWant {
    /// Bytes still missing for the current item.
    pub len: usize,
    /// What they are.
    pub kind: SecureWantKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    First,
    Seg0Rest,
    Tail,
    Body,
}

/// The receiving half of a secure connection: one key schedule, one nonce sequence, and an
/// incremental frame decoder generic over where segments are stored.
pub struct SecureRx<A: SegmentAlloc = VecAlloc> {
    revision: Revision,
    limits: Limits,
    alloc: A,
    cipher: Cipher,
    nonce: NonceSeq,
    stage: Stage,
    /// The first block (rev1: 96 bytes; rev0: the 32-byte preamble).
    first: [u8; FIRST_BLOCK_LEN],
    /// Bytes of the current item received so far.
    filled: usize,
    /// Ciphertext of the current scratch item (see the module docs), at `scratch_off`.
    scratch: Vec<u8>,
    scratch_off: usize,
    scratch_len: usize,
    preamble: Option<Preamble>,
    seg0: A::Buf,
    failed: Option<SecureError>,
    aborted: u64,
}

impl<A: SegmentAlloc> std::fmt::Debug for SecureRx<A> {
    /// Shows the decoder state, never buffered plaintext or key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureRx")
            .field("revision", &self.revision)
            .field("cipher", &self.cipher)
            .field("nonce", &self.nonce)
            .field("stage", &self.stage)
            .field("filled", &self.filled)
            .field("preamble", &self.preamble)
            .field("aborted", &self.aborted)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl SecureRx<VecAlloc> {
    /// A receiver with `Vec` segments, starting at `nonce` (see
    /// [`ConnectionSecret::rx_nonce`](super::ConnectionSecret::rx_nonce)).
    pub fn new(
        backend: Backend,
        key: &[u8; KEY_LEN],
        nonce: [u8; NONCE_LEN],
        revision: Revision,
        limits: Limits,
    ) -> Result<Self, SecureError> {
        Self::with_alloc(backend, key, nonce, revision, limits, VecAlloc)
    }
}

fn to_usize(v: u64, tag: Tag) -> Result<usize, SecureError> {
    usize::try_from(v).map_err(|_| {
        SecureError::Frame(FrameError::SegmentTooLong {
            tag,
            index: 0,
            len: v,
            limit: usize::MAX as u64,
        })
    })
}

impl<A: SegmentAlloc> SecureRx<A> {
    /// A receiver using `alloc` for segment buffers.
    pub fn with_alloc(
        backend: Backend,
        key: &[u8; KEY_LEN],
        nonce: [u8; NONCE_LEN],
        revision: Revision,
        limits: Limits,
        alloc: A,
    ) -> Result<Self, SecureError> {
        Ok(Self {
            revision,
            limits,
            alloc,
            cipher: Cipher::new(backend, key, revision == Revision::Rev0)?,
            nonce: NonceSeq::new(nonce, revision),
            stage: Stage::First,
            first: [0; FIRST_BLOCK_LEN],
            filled: 0,
            scratch: Vec::new(),
            scratch_off: 0,
            scratch_len: 0,
            preamble: None,
            seg0: A::Buf::default(),
            failed: None,
            aborted: 0,
        })
    }

    /// The framing revision in force.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The nonce the next GCM operation will use.
    pub fn next_nonce(&self) -> [u8; NONCE_LEN] {
        self.nonce.current()
    }

    /// Skips `n` nonces, to stay in step with a sender that did the same
    /// ([`SecureTx::skip_nonces`](super::SecureTx::skip_nonces)); meant for tests. Only valid
    /// on a frame boundary.
    pub fn skip_nonces(&mut self, n: u64) -> Result<(), SecureError> {
        self.nonce.skip(n)
    }

    /// Whether the receiver sits exactly on a frame boundary.
    pub fn at_boundary(&self) -> bool {
        self.stage == Stage::First && self.filled == 0
    }

    /// Number of aborted frames that were verified and dropped.
    pub fn aborted_frames(&self) -> u64 {
        self.aborted
    }

    /// Access to the allocator (e.g. to read its accounting).
    pub fn allocator(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// Bytes currently held by the scratch buffer (see the module docs), for memory
    /// accounting.
    pub fn scratch_capacity(&self) -> usize {
        self.scratch.capacity()
    }

    fn item_len(&self) -> usize {
        match self.stage {
            Stage::First => match self.revision {
                Revision::Rev1 => FIRST_BLOCK_LEN,
                Revision::Rev0 => PREAMBLE_LEN,
            },
            Stage::Seg0Rest | Stage::Tail | Stage::Body => self.scratch_len,
        }
    }

    /// What the receiver needs next.
    pub fn want(&self) -> SecureWant {
        let tag = self.preamble.map_or(Tag::Message, |p| p.tag);
        let kind = match self.stage {
            Stage::First => SecureWantKind::FirstBlock,
            Stage::Seg0Rest => SecureWantKind::FirstSegmentRest { tag },
            Stage::Tail => SecureWantKind::Tail { tag },
            Stage::Body => SecureWantKind::Body { tag },
        };
        SecureWant {
            len: self.item_len() - self.filled,
            kind,
        }
    }

    /// The unfilled part of the current item: write received bytes here, then call
    /// [`SecureRx::advance`] with how many were written.
    pub fn dest(&mut self) -> &mut [u8] {
        let len = self.item_len();
        let filled = self.filled;
        match self.stage {
            Stage::First => &mut self.first[filled..len],
            _ => {
                let off = self.scratch_off;
                &mut self.scratch[off + filled..off + len]
            }
        }
    }

    /// Records that `n` bytes were written into [`SecureRx::dest`]. Returns a frame when one
    /// is complete and verified. Aborted frames are verified and dropped (counted in
    /// [`SecureRx::aborted_frames`]). After an error every call fails.
    pub fn advance(&mut self, n: usize) -> Result<Option<Frame<A::Buf>>, SecureError> {
        if let Some(e) = &self.failed {
            return Err(SecureError::Poisoned(Box::new(e.clone())));
        }
        let n = n.min(self.item_len() - self.filled);
        self.filled += n;
        if self.filled < self.item_len() {
            return Ok(None);
        }
        self.filled = 0;
        match self.step() {
            Ok(f) => Ok(f),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Copies as much of `input` as the current frame needs, stopping right after a complete
    /// frame so the caller can act on it before the next frame is parsed. Returns the bytes
    /// consumed and the frame, if one completed.
    pub fn feed(&mut self, input: &[u8]) -> Result<SecureFed<A::Buf>, SecureError> {
        Incremental::feed(self, input)
    }

    /// The nonce for the next GCM operation, refusing one that would repeat (a peer that
    /// wrapped its counter).
    fn take_nonce(&mut self) -> Result<[u8; NONCE_LEN], SecureError> {
        self.nonce.reserve(1)?;
        Ok(self.nonce.take())
    }

    /// Makes the scratch item `off..off + len` available.
    fn prepare_scratch(&mut self, off: usize, len: usize) {
        let total = off + len;
        if self.scratch.len() < total {
            self.scratch.resize(total, 0);
        }
        self.scratch_off = off;
        self.scratch_len = len;
    }

    fn step(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        match (self.stage, self.revision) {
            (Stage::First, Revision::Rev1) => self.first_block_rev1(),
            (Stage::First, Revision::Rev0) => self.preamble_rev0(),
            (Stage::Seg0Rest, _) => self.seg0_rest(),
            (Stage::Tail, _) => self.tail_rev1(),
            (Stage::Body, _) => self.body_rev0(),
        }
    }

    fn current_preamble(&self) -> Result<Preamble, SecureError> {
        self.preamble
            .ok_or(SecureError::Frame(FrameError::BadSegmentCount(0)))
    }

    fn first_block_rev1(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        let nonce = self.take_nonce()?;
        self.cipher.open(&nonce, &mut self.first)?;
        let mut b = [0u8; PREAMBLE_LEN];
        b.copy_from_slice(&self.first[..PREAMBLE_LEN]);
        let p = Preamble::decode(&b, &self.limits)?;
        self.preamble = Some(p);
        let len0 = p.segments[0].len;
        let padded0 = pad16(len0);
        if padded0 > INLINE_LEN as u64 {
            let rest = to_usize(padded0 - INLINE_LEN as u64 + TAG_LEN as u64, p.tag)?;
            self.prepare_scratch(0, rest);
            self.stage = Stage::Seg0Rest;
            return Ok(None);
        }
        let len0 = len0 as usize; // <= 48
        self.seg0 = self.alloc_segment(&p, 0);
        self.seg0
            .as_mut()
            .copy_from_slice(&self.first[PREAMBLE_LEN..PREAMBLE_LEN + len0]);
        self.after_seg0(p)
    }

    fn seg0_rest(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        let p = self.current_preamble()?;
        let nonce = self.take_nonce()?;
        let len = self.scratch_len;
        self.cipher.open(&nonce, &mut self.scratch[..len])?;
        let len0 = to_usize(u64::from(p.segments[0].len), p.tag)?;
        let mut seg0 = self.alloc_segment(&p, 0);
        {
            let dst = seg0.as_mut();
            dst[..INLINE_LEN].copy_from_slice(&self.first[PREAMBLE_LEN..PREAMBLE_LEN + INLINE_LEN]);
            dst[INLINE_LEN..].copy_from_slice(&self.scratch[..len0 - INLINE_LEN]);
        }
        self.seg0 = seg0;
        self.after_seg0(p)
    }

    fn after_seg0(&mut self, p: Preamble) -> Result<Option<Frame<A::Buf>>, SecureError> {
        let n = usize::from(p.num_segments);
        if n == 1 {
            let mut segments: [A::Buf; MAX_SEGMENTS] = Default::default();
            segments[0] = std::mem::take(&mut self.seg0);
            return Ok(Some(self.finish(p, segments)));
        }
        let padded: u64 = p.counted()[1..].iter().map(|d| pad16(d.len)).sum();
        let len = to_usize(padded + (SECURE_EPILOGUE_LEN + TAG_LEN) as u64, p.tag)?;
        self.prepare_scratch(0, len);
        self.stage = Stage::Tail;
        Ok(None)
    }

    fn tail_rev1(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        let p = self.current_preamble()?;
        let nonce = self.take_nonce()?;
        let len = self.scratch_len;
        self.cipher.open(&nonce, &mut self.scratch[..len])?;
        let status = self.scratch[len - TAG_LEN - SECURE_EPILOGUE_LEN];
        let aborted = match status & 0x0F {
            LATE_STATUS_COMPLETE => false,
            LATE_STATUS_ABORTED => true,
            _ => return Err(SecureError::BadLateStatus(status)),
        };
        if aborted {
            return Ok(self.drop_aborted());
        }
        let mut segments: [A::Buf; MAX_SEGMENTS] = Default::default();
        segments[0] = std::mem::take(&mut self.seg0);
        self.split_scratch(&p, 1, 0, &mut segments)?;
        Ok(Some(self.finish(p, segments)))
    }

    fn preamble_rev0(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        // Peek with the nonce the whole-frame operation will use; it is taken at the end.
        self.nonce.reserve(1)?;
        let ks = self.cipher.preamble_keystream(&self.nonce.current())?;
        let mut b = [0u8; PREAMBLE_LEN];
        for (i, x) in b.iter_mut().enumerate() {
            *x = self.first[i] ^ ks[i];
        }
        let p = Preamble::decode(&b, &self.limits)?;
        self.preamble = Some(p);
        let padded: u64 = p.counted().iter().map(|d| pad16(d.len)).sum();
        let len = to_usize(padded + (SECURE_EPILOGUE_LEN + TAG_LEN) as u64, p.tag)?;
        self.prepare_scratch(PREAMBLE_LEN, len);
        self.scratch[..PREAMBLE_LEN].copy_from_slice(&self.first[..PREAMBLE_LEN]);
        self.stage = Stage::Body;
        Ok(None)
    }

    fn body_rev0(&mut self) -> Result<Option<Frame<A::Buf>>, SecureError> {
        let p = self.current_preamble()?;
        let nonce = self.take_nonce()?;
        let total = PREAMBLE_LEN + self.scratch_len;
        self.cipher.open(&nonce, &mut self.scratch[..total])?;
        let flags = self.scratch[total - TAG_LEN - SECURE_EPILOGUE_LEN];
        if flags & !LATE_FLAG_ABORTED != 0 {
            return Err(SecureError::BadLateFlags(flags));
        }
        if flags & LATE_FLAG_ABORTED != 0 {
            return Ok(self.drop_aborted());
        }
        let mut segments: [A::Buf; MAX_SEGMENTS] = Default::default();
        self.split_scratch(&p, 0, PREAMBLE_LEN, &mut segments)?;
        Ok(Some(self.finish(p, segments)))
    }

    /// Copies counted segments `from..n` out of the decrypted scratch buffer, which holds
    /// them padded, starting at `off`.
    fn split_scratch(
        &mut self,
        p: &Preamble,
        from: usize,
        mut off: usize,
        segments: &mut [A::Buf; MAX_SEGMENTS],
    ) -> Result<(), SecureError> {
        for (i, d) in p.counted().iter().enumerate().skip(from) {
            let len = to_usize(u64::from(d.len), p.tag)?;
            let mut buf = self.alloc_segment(p, i);
            buf.as_mut().copy_from_slice(&self.scratch[off..off + len]);
            segments[i] = buf;
            off += to_usize(pad16(d.len), p.tag)?;
        }
        Ok(())
    }

    fn alloc_segment(&mut self, p: &Preamble, index: usize) -> A::Buf {
        let d = p.segments[index];
        if d.len == 0 {
            A::Buf::default()
        } else {
            self.alloc
                .alloc(p.tag, index, d.len as usize, usize::from(d.align))
        }
    }

    fn drop_aborted(&mut self) -> Option<Frame<A::Buf>> {
        self.aborted += 1;
        self.seg0 = A::Buf::default();
        self.reset();
        None
    }

    fn finish(&mut self, preamble: Preamble, segments: [A::Buf; MAX_SEGMENTS]) -> Frame<A::Buf> {
        self.reset();
        Frame { preamble, segments }
    }

    fn reset(&mut self) {
        self.stage = Stage::First;
        self.preamble = None;
        self.scratch_len = 0;
        self.scratch_off = 0;
        if self.scratch.len() > SCRATCH_RETAIN {
            self.scratch = Vec::new();
        }
    }
}

impl<A: SegmentAlloc> Incremental for SecureRx<A> {
    type Item = Frame<A::Buf>;
    type Error = SecureError;
    fn dest(&mut self) -> &mut [u8] {
        SecureRx::dest(self)
    }
    fn advance(&mut self, n: usize) -> Result<Option<Frame<A::Buf>>, SecureError> {
        SecureRx::advance(self, n)
    }
}
