//! [`ChainCursor`]: reads a chain's stream in place, across segment boundaries (EbbRT paper,
//! "Network Stack": the application is handed IOBufs and parses them where they lie).
//!
//! A protocol parser reads its header fields through a cursor, then splits the payload off the
//! chain at [`ChainCursor::position`] without copying it. Reading a fixed-size field assembles
//! at most that field's bytes on the stack, and only when the field straddles two segments;
//! such reads decode a value and do not count as copies. [`ChainCursor::copy_to_slice`], which
//! copies a run of payload out, does count.
//!
//! Reads past the end return [`UnexpectedEnd`] and leave the cursor where it was: bytes from a
//! peer never make a parser panic.

use alloc::collections::VecDeque;

use super::counter::record_copy;
use super::error::UnexpectedEnd;
use super::segment::Segment;

/// A read position in an [`IoBufChain`](super::IoBufChain).
///
/// Borrows the chain, so the chain cannot change while the cursor reads it.
pub struct ChainCursor<'a, B> {
    segments: &'a VecDeque<B>,
    /// The segment holding the next byte (`segments.len()` at the end of the stream).
    index: usize,
    /// The next byte's offset in that segment; always less than its length before the end.
    offset: usize,
    /// Bytes read or skipped so far.
    position: usize,
    /// Bytes left to read.
    remaining: usize,
}

/// Generates the integer readers of [`ChainCursor`] from [`ChainCursor::read_array`].
macro_rules! integer_readers {
    ($($(#[$doc:meta])* $name:ident -> $int:ty, $from_bytes:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self) -> Result<$int, UnexpectedEnd> {
                self.read_array().map(<$int>::$from_bytes)
            }
        )*
    };
}

impl<'a, B: Segment> ChainCursor<'a, B> {
    /// A cursor at the first byte of `segments`, which hold `len` bytes and no empty segment.
    pub(super) fn new(segments: &'a VecDeque<B>, len: usize) -> Self {
        ChainCursor { segments, index: 0, offset: 0, position: 0, remaining: len }
    }

    /// Bytes read or skipped since the cursor was made: where to split the chain to take what
    /// follows.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// The unread bytes of the current segment, borrowed from the chain (empty at the end).
    pub fn chunk(&self) -> &'a [u8] {
        let segments: &'a VecDeque<B> = self.segments;
        segments.get(self.index).map_or(&[], |segment| &segment[self.offset..])
    }

    /// Moves past `n` bytes, or fails without moving if fewer remain.
    pub fn skip(&mut self, n: usize) -> Result<(), UnexpectedEnd> {
        self.check_remaining(n)?;
        self.skip_within_bounds(n);
        Ok(())
    }

    /// Returns the next `N` bytes without moving, or fails if fewer remain.
    pub fn peek_array<const N: usize>(&self) -> Result<[u8; N], UnexpectedEnd> {
        self.check_remaining(N)?;
        if let Some(bytes) = self.chunk().first_chunk::<N>() {
            return Ok(*bytes);
        }
        let mut bytes = [0u8; N];
        self.fill_from_here(&mut bytes);
        Ok(bytes)
    }

    /// Reads the next `N` bytes (a fixed-size field such as an address), or fails without
    /// moving if fewer remain. Not counted as a copy.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], UnexpectedEnd> {
        let bytes = self.peek_array::<N>()?;
        self.skip_within_bounds(N);
        Ok(bytes)
    }

    integer_readers! {
        /// Reads one byte.
        read_u8 -> u8, from_be_bytes;
        /// Reads a big-endian (network order) `u16`.
        read_u16_be -> u16, from_be_bytes;
        /// Reads a little-endian `u16`.
        read_u16_le -> u16, from_le_bytes;
        /// Reads a big-endian (network order) `u32`.
        read_u32_be -> u32, from_be_bytes;
        /// Reads a little-endian `u32` (9P's byte order).
        read_u32_le -> u32, from_le_bytes;
        /// Reads a big-endian (network order) `u64`.
        read_u64_be -> u64, from_be_bytes;
        /// Reads a little-endian `u64`.
        read_u64_le -> u64, from_le_bytes;
    }

    /// Copies the next `destination.len()` bytes into `destination` (counted) and moves past
    /// them, or fails without copying or moving if fewer remain.
    pub fn copy_to_slice(&mut self, destination: &mut [u8]) -> Result<(), UnexpectedEnd> {
        self.check_remaining(destination.len())?;
        self.fill_from_here(destination);
        record_copy(destination.len());
        self.skip_within_bounds(destination.len());
        Ok(())
    }

    fn check_remaining(&self, requested: usize) -> Result<(), UnexpectedEnd> {
        if requested > self.remaining {
            return Err(UnexpectedEnd { requested, remaining: self.remaining });
        }
        Ok(())
    }

    /// Fills `destination` from the bytes at the cursor, without moving; the caller has checked
    /// that enough remain.
    fn fill_from_here(&self, destination: &mut [u8]) {
        let mut filled = 0;
        let mut offset = self.offset;
        for segment in self.segments.range(self.index..) {
            if filled == destination.len() {
                break;
            }
            let available = &segment[offset..];
            let take = available.len().min(destination.len() - filled);
            destination[filled..filled + take].copy_from_slice(&available[..take]);
            filled += take;
            offset = 0;
        }
    }

    /// Moves past `n` bytes; the caller has checked that enough remain.
    fn skip_within_bounds(&mut self, n: usize) {
        self.position += n;
        self.remaining -= n;
        let mut left = n;
        while left > 0 {
            let in_segment = self.segments[self.index].len() - self.offset;
            if left < in_segment {
                self.offset += left;
                return;
            }
            left -= in_segment;
            self.index += 1;
            self.offset = 0;
        }
    }
}

impl<B> Clone for ChainCursor<'_, B> {
    /// Another cursor at the same position (to look ahead and come back).
    fn clone(&self) -> Self {
        ChainCursor {
            segments: self.segments,
            index: self.index,
            offset: self.offset,
            position: self.position,
            remaining: self.remaining,
        }
    }
}

impl<B> core::fmt::Debug for ChainCursor<'_, B> {
    /// Shows the position and what remains, never the bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChainCursor")
            .field("position", &self.position)
            .field("remaining", &self.remaining)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iobuf::counter::thread_meter::ThreadCopyMeter;
    use crate::iobuf::{IoBufChain, SharedIoBuf};
    use alloc::format;

    fn chain_of(parts: &[&'static [u8]]) -> IoBufChain {
        parts.iter().map(|part| SharedIoBuf::from_static(part)).collect()
    }

    #[test]
    fn integers_straddling_segments_read_without_counting() {
        let chain = chain_of(&[b"\x12", b"\x34\x56", b"\x78\x9a\xbc\xde\xf0\x11\x22", b"\x33"]);
        let meter = ThreadCopyMeter::start();
        let mut cursor = chain.cursor();
        assert_eq!(cursor.read_u16_be(), Ok(0x1234));
        assert_eq!(cursor.read_u32_le(), Ok(0xbc9a_7856));
        assert_eq!(cursor.read_u64_be(), Err(UnexpectedEnd { requested: 8, remaining: 5 }));
        assert_eq!(cursor.position(), 6);
        assert_eq!(cursor.read_u8(), Ok(0xde));
        assert_eq!(cursor.read_u32_be(), Ok(0xf011_2233));
        assert_eq!((cursor.remaining(), cursor.position()), (0, 11));
        assert_eq!(cursor.read_u8(), Err(UnexpectedEnd { requested: 1, remaining: 0 }));
        assert_eq!(meter.bytes(), 0);
    }

    #[test]
    fn every_integer_width_and_order() {
        let chain = chain_of(&[
            b"\x01\x02\x01\x02",
            b"\x01\x02\x03\x04\x01\x02\x03\x04",
            b"\x01\x02\x03\x04\x05\x06\x07\x08",
            b"\x01\x02\x03\x04\x05\x06\x07\x08",
        ]);
        let mut cursor = chain.cursor();
        assert_eq!(cursor.read_u16_be(), Ok(0x0102));
        assert_eq!(cursor.read_u16_le(), Ok(0x0201));
        assert_eq!(cursor.read_u32_be(), Ok(0x0102_0304));
        assert_eq!(cursor.read_u32_le(), Ok(0x0403_0201));
        assert_eq!(cursor.read_u64_be(), Ok(0x0102_0304_0506_0708));
        assert_eq!(cursor.read_u64_le(), Ok(0x0807_0605_0403_0201));
        assert_eq!(cursor.remaining(), 0);
    }

    #[test]
    fn peek_does_not_move_and_read_array_does() {
        let chain = chain_of(&[b"ab", b"cdef"]);
        let mut cursor = chain.cursor();
        assert_eq!(cursor.peek_array::<3>(), Ok(*b"abc"));
        assert_eq!(cursor.position(), 0);
        assert_eq!(cursor.read_array::<0>(), Ok([]));
        assert_eq!(cursor.read_array::<5>(), Ok(*b"abcde"));
        assert_eq!(cursor.peek_array::<2>(), Err(UnexpectedEnd { requested: 2, remaining: 1 }));
        assert_eq!(cursor.remaining(), 1);
    }

    #[test]
    fn chunk_borrows_the_current_segment() {
        let chain = chain_of(&[b"abc", b"de"]);
        let mut cursor = chain.cursor();
        assert_eq!(cursor.chunk(), b"abc");
        cursor.skip(1).expect("5 bytes");
        assert_eq!(cursor.chunk(), b"bc");
        assert_eq!(
            cursor.chunk().as_ptr(),
            chain.front().map(|s| s.as_ptr().wrapping_add(1)).expect("a segment")
        );
        cursor.skip(2).expect("4 bytes left");
        assert_eq!(cursor.chunk(), b"de");
        cursor.skip(2).expect("2 bytes left");
        assert_eq!(cursor.chunk(), b"");
    }

    #[test]
    fn skip_past_the_end_fails_without_moving() {
        let chain = chain_of(&[b"abc", b"de"]);
        let mut cursor = chain.cursor();
        cursor.skip(0).expect("skipping nothing");
        assert_eq!(cursor.skip(6), Err(UnexpectedEnd { requested: 6, remaining: 5 }));
        assert_eq!((cursor.position(), cursor.remaining()), (0, 5));
        cursor.skip(5).expect("exactly the chain");
        assert_eq!(cursor.remaining(), 0);
    }

    #[test]
    fn copy_to_slice_counts_and_moves() {
        let chain = chain_of(&[b"abc", b"de", b"f"]);
        let mut cursor = chain.cursor();
        cursor.skip(1).expect("6 bytes");
        let meter = ThreadCopyMeter::start();
        let mut middle = [0u8; 4];
        cursor.copy_to_slice(&mut middle).expect("5 bytes left");
        assert_eq!((&middle, meter.bytes(), cursor.position()), (b"bcde", 4, 5));
        let mut too_long = [0u8; 2];
        assert_eq!(
            cursor.copy_to_slice(&mut too_long),
            Err(UnexpectedEnd { requested: 2, remaining: 1 })
        );
        assert_eq!(meter.bytes(), 4);
        cursor.copy_to_slice(&mut []).expect("copying nothing");
        assert_eq!(meter.bytes(), 4);
    }

    #[test]
    fn cursor_over_an_empty_chain() {
        let chain: IoBufChain = IoBufChain::new();
        let mut cursor = chain.cursor();
        assert_eq!((cursor.remaining(), cursor.chunk()), (0, &b""[..]));
        assert!(cursor.read_u8().is_err());
        assert_eq!(cursor.read_array::<0>(), Ok([]));
    }

    #[test]
    fn header_parsed_then_payload_split_off_without_copying() {
        // A 9P-style message: size[4] type[1] tag[2] then the payload, little-endian.
        let mut chain = chain_of(&[b"\x0e\x00", b"\x00\x00\x75\x01", b"\x00pay", b"load"]);
        let meter = ThreadCopyMeter::start();
        let mut cursor = chain.cursor();
        let size = cursor.read_u32_le().expect("size");
        let kind = cursor.read_u8().expect("type");
        let tag = cursor.read_u16_le().expect("tag");
        let header_len = cursor.position();
        let mut lookahead = cursor.clone();
        assert_eq!(lookahead.read_array::<3>(), Ok(*b"pay"));
        assert_eq!(cursor.remaining(), 7);
        assert_eq!((size, kind, tag, header_len), (14, 0x75, 1, 7));
        chain.advance(header_len);
        let payload = chain.split_to(7);
        assert_eq!(meter.bytes(), 0);
        assert_eq!(payload.slices().collect::<alloc::vec::Vec<_>>(), [&b"pay"[..], &b"load"[..]]);
        assert_eq!(format!("{:?}", payload.cursor()), "ChainCursor { position: 0, remaining: 7 }");
    }
}
