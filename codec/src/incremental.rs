//! The receive contract shared by every decoder in the stack (crc frames, secure frames, raw
//! baseline messages): the decoder exposes where the next bytes must go ([`dest`]) and is told
//! how many arrived ([`advance`]). A socket can receive straight into `dest` (zero-copy
//! landing of large segments); [`feed`] is the copying convenience built on the two.
//!
//! [`dest`]: Incremental::dest
//! [`advance`]: Incremental::advance
//! [`feed`]: Incremental::feed

/// An incremental decoder driven by "write into `dest`, then `advance`".
pub trait Incremental {
    /// What a completed item is (a frame, a raw message).
    type Item;
    /// Why decoding failed (fatal for the connection).
    type Error;

    /// The unfilled part of the current item.
    fn dest(&mut self) -> &mut [u8];

    /// Records that `n` bytes were written into [`Incremental::dest`]; returns an item when
    /// one completed.
    fn advance(&mut self, n: usize) -> Result<Option<Self::Item>, Self::Error>;

    /// Copies as much of `input` as needed, stopping right after a complete item so the caller
    /// can act on it (e.g. switch to secure mode after AUTH_DONE) before the next is parsed.
    /// Returns the bytes consumed and the item, if one completed. An empty `input` still
    /// reports a failed decoder's error.
    fn feed(&mut self, mut input: &[u8]) -> Result<(usize, Option<Self::Item>), Self::Error> {
        let start = input.len();
        loop {
            let dest = self.dest();
            let n = dest.len().min(input.len());
            dest[..n].copy_from_slice(&input[..n]);
            input = &input[n..];
            if let Some(item) = self.advance(n)? {
                return Ok((start - input.len(), Some(item)));
            }
            if input.is_empty() || n == 0 {
                // n == 0: the decoder takes nothing now (a segment buffer is lent out).
                return Ok((start - input.len(), None));
            }
        }
    }
}
