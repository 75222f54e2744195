//! [`IoBufChain`]: a sequence of buffers read as one byte stream (EbbRT paper, "Network Stack":
//! IOBufs are chained so the stack and the application pass whole messages around without
//! copying them into one place).
//!
//! A TCP receive queue is a chain of the frames' payloads; a request the 9P codec parses is a
//! chain it advances past the header and splits at the payload; a reply is a chain of a header
//! buffer and the cached value, handed to the device as a gather list. None of these copy.
//!
//! A chain never holds an empty segment: pushing one drops it, and operations that empty a
//! segment remove it. So the segments are exactly the runs of bytes in the stream.

use alloc::collections::vec_deque::{self, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::mem;

use super::buf::IoBuf;
use super::counter::record_copy;
use super::cursor::ChainCursor;
use super::error::UnexpectedEnd;
use super::segment::Segment;
use super::shared::SharedIoBuf;

/// A sequence of buffers of one kind (`B` is [`SharedIoBuf`] unless said otherwise, or
/// [`IoBuf`]) treated as a single byte stream.
///
/// Only the operations listed in the [module documentation](crate::iobuf) copy bytes; pushing,
/// popping, advancing, trimming, splitting and appending move buffers, not bytes.
pub struct IoBufChain<B: Segment = SharedIoBuf> {
    /// The segments in stream order, none of them empty.
    segments: VecDeque<B>,
    /// The sum of the segments' lengths.
    len: usize,
}

impl<B: Segment> IoBufChain<B> {
    /// An empty chain; allocates nothing.
    pub const fn new() -> Self {
        IoBufChain { segments: VecDeque::new(), len: 0 }
    }

    /// Total bytes in the chain.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chain holds no bytes (and so no segments).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many segments the chain holds.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends `buf` at the end of the stream; an empty `buf` is dropped.
    pub fn push_back(&mut self, buf: B) {
        if buf.is_empty() {
            return;
        }
        self.len += buf.len();
        self.segments.push_back(buf);
    }

    /// Puts `buf` at the start of the stream (a header in front of a payload); an empty `buf` is
    /// dropped.
    pub fn push_front(&mut self, buf: B) {
        if buf.is_empty() {
            return;
        }
        self.len += buf.len();
        self.segments.push_front(buf);
    }

    /// Removes and returns the first segment.
    pub fn pop_front(&mut self) -> Option<B> {
        let segment = self.segments.pop_front()?;
        self.len -= segment.len();
        Some(segment)
    }

    /// Removes and returns the last segment.
    pub fn pop_back(&mut self) -> Option<B> {
        let segment = self.segments.pop_back()?;
        self.len -= segment.len();
        Some(segment)
    }

    /// The first segment.
    pub fn front(&self) -> Option<&B> {
        self.segments.front()
    }

    /// The last segment.
    pub fn back(&self) -> Option<&B> {
        self.segments.back()
    }

    /// The segments in stream order.
    pub fn segments(&self) -> vec_deque::Iter<'_, B> {
        self.segments.iter()
    }

    /// The gather view: the bytes of each segment in stream order, for `writev`/`sendmsg`-style
    /// I/O or a device's descriptor list.
    pub fn slices(&self) -> Slices<'_, B> {
        Slices { segments: self.segments.iter() }
    }

    /// Fills `out` with the first `out.len()` slices of the gather view and returns how many it
    /// wrote (fewer when the chain has fewer segments), for building an I/O vector without
    /// allocating.
    pub fn gather<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        let mut written = 0;
        for (slot, slice) in out.iter_mut().zip(self.slices()) {
            *slot = slice;
            written += 1;
        }
        written
    }

    /// A cursor reading the stream from its first byte.
    pub fn cursor(&self) -> ChainCursor<'_, B> {
        ChainCursor::new(&self.segments, self.len)
    }

    /// Consumes the first `n` bytes of the stream, dropping the segments it exhausts and
    /// advancing into the next one. Copies nothing.
    ///
    /// # Panics
    ///
    /// If `n > self.len()`.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len, "cannot advance {n} bytes past a chain of {}", self.len);
        self.len -= n;
        let mut left = n;
        while let Some(front) = self.segments.front_mut() {
            if left < front.len() {
                if left > 0 {
                    front.advance(left);
                }
                return;
            }
            left -= front.len();
            self.segments.pop_front();
        }
    }

    /// Drops the last `n` bytes of the stream, dropping the segments it exhausts. Copies
    /// nothing.
    ///
    /// # Panics
    ///
    /// If `n > self.len()`.
    pub fn trim_end(&mut self, n: usize) {
        assert!(n <= self.len, "cannot trim {n} bytes from a chain of {}", self.len);
        self.len -= n;
        let mut left = n;
        while let Some(back) = self.segments.back_mut() {
            if left < back.len() {
                if left > 0 {
                    let keep = back.len() - left;
                    back.truncate(keep);
                }
                return;
            }
            left -= back.len();
            self.segments.pop_back();
        }
    }

    /// Shortens the stream to `len` bytes; no effect if it is already that short.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.trim_end(self.len - len);
        }
    }

    /// Splits off and returns the first `at` bytes of the stream as a chain of their own,
    /// splitting the segment the cut falls in. Copies nothing.
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_to(&mut self, at: usize) -> IoBufChain<B> {
        assert!(at <= self.len, "cannot split a chain of {} at {at}", self.len);
        if at == self.len {
            return mem::take(self);
        }
        let mut front = IoBufChain::new();
        while front.len < at {
            let left = at - front.len;
            let Some(segment) = self.segments.front_mut() else {
                unreachable!("the chain holds at least `at` bytes");
            };
            if left < segment.len() {
                front.push_back(segment.split_to(left));
            } else if let Some(whole) = self.segments.pop_front() {
                front.push_back(whole);
            }
        }
        self.len -= at;
        front
    }

    /// Splits off and returns the stream from byte `at` on; `self` keeps the first `at` bytes.
    /// Copies nothing.
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_off(&mut self, at: usize) -> IoBufChain<B> {
        let front = self.split_to(at);
        mem::replace(self, front)
    }

    /// Moves every segment of `other` to the end of this chain. Copies nothing.
    pub fn append(&mut self, mut other: IoBufChain<B>) {
        self.len += other.len;
        self.segments.append(&mut other.segments);
    }

    /// Copies the first `destination.len()` bytes of the stream into `destination` (counted),
    /// or fails without copying if the chain is shorter.
    pub fn copy_to_slice(&self, destination: &mut [u8]) -> Result<(), UnexpectedEnd> {
        self.cursor().copy_to_slice(destination)
    }

    /// Copies the whole stream into a new `Vec` (counted).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len);
        for slice in self.slices() {
            bytes.extend_from_slice(slice);
        }
        record_copy(self.len);
        bytes
    }

    /// Copies the whole stream into one new unique buffer (counted) with the headroom the first
    /// segment has, so a header can still be prepended to it.
    pub fn to_contiguous(&self) -> IoBuf {
        let headroom = self.front().map_or(0, |front| front.headroom());
        let mut buf = IoBuf::with_headroom(headroom, self.len);
        for slice in self.slices() {
            let tailroom = buf.tailroom_mut();
            tailroom[..slice.len()].copy_from_slice(slice);
            if buf.claim_tailroom(slice.len()).is_err() {
                unreachable!("the buffer was sized for the whole chain");
            }
        }
        record_copy(self.len);
        buf
    }

    /// Makes the stream one segment and returns its bytes. A chain of zero or one segment is
    /// left as it is; otherwise the stream is copied (counted) as by
    /// [`IoBufChain::to_contiguous`].
    pub fn make_contiguous(&mut self) -> &[u8] {
        if self.segments.len() > 1 {
            let merged = B::from_unique(self.to_contiguous());
            self.segments.clear();
            self.segments.push_back(merged);
        }
        self.segments.front().map_or(&[], |segment| &**segment)
    }

    /// Turns the stream into one buffer: the only segment as it is, an empty buffer for an
    /// empty chain, and otherwise a copy (counted) as by [`IoBufChain::to_contiguous`].
    pub fn into_contiguous(mut self) -> B {
        if self.segments.len() > 1 {
            return B::from_unique(self.to_contiguous());
        }
        self.segments.pop_front().unwrap_or_else(|| B::from_unique(IoBuf::new()))
    }
}

impl IoBufChain<IoBuf> {
    /// The bytes of each segment, writable in place (to rewrite a header or compute a checksum
    /// into it); lengths cannot change through them, so the chain stays consistent.
    pub fn slices_mut(&mut self) -> SlicesMut<'_> {
        SlicesMut { segments: self.segments.iter_mut() }
    }

    /// Freezes every segment, giving a chain of shared buffers over the same storage; copies
    /// nothing.
    pub fn freeze(self) -> IoBufChain<SharedIoBuf> {
        IoBufChain {
            segments: self.segments.into_iter().map(IoBuf::freeze).collect(),
            len: self.len,
        }
    }
}

impl<B: Segment> Default for IoBufChain<B> {
    fn default() -> Self {
        IoBufChain::new()
    }
}

impl<B: Segment + Clone> Clone for IoBufChain<B> {
    /// Clones every segment (for shared buffers: one atomic increment each, no copy).
    fn clone(&self) -> Self {
        IoBufChain { segments: self.segments.clone(), len: self.len }
    }
}

impl<B: Segment> From<B> for IoBufChain<B> {
    /// A chain of the one buffer (none if it is empty).
    fn from(buf: B) -> Self {
        let mut chain = IoBufChain::new();
        chain.push_back(buf);
        chain
    }
}

impl<B: Segment> FromIterator<B> for IoBufChain<B> {
    /// A chain of the buffers in order, dropping the empty ones.
    fn from_iter<I: IntoIterator<Item = B>>(buffers: I) -> Self {
        let mut chain = IoBufChain::new();
        chain.extend(buffers);
        chain
    }
}

impl<B: Segment> Extend<B> for IoBufChain<B> {
    /// Pushes each buffer at the back, dropping the empty ones.
    fn extend<I: IntoIterator<Item = B>>(&mut self, buffers: I) {
        for buf in buffers {
            self.push_back(buf);
        }
    }
}

impl<B: Segment> IntoIterator for IoBufChain<B> {
    type Item = B;
    type IntoIter = vec_deque::IntoIter<B>;

    /// The segments in stream order.
    fn into_iter(self) -> Self::IntoIter {
        self.segments.into_iter()
    }
}

impl<B: Segment> fmt::Debug for IoBufChain<B> {
    /// Shows the length and the segment count, never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoBufChain")
            .field("len", &self.len)
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// The gather view of a chain: the bytes of each segment in stream order
/// ([`IoBufChain::slices`]).
pub struct Slices<'a, B> {
    segments: vec_deque::Iter<'a, B>,
}

impl<'a, B: Segment> Iterator for Slices<'a, B> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.segments.next().map(|segment| &**segment)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.segments.size_hint()
    }
}

impl<B: Segment> DoubleEndedIterator for Slices<'_, B> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.segments.next_back().map(|segment| &**segment)
    }
}

impl<B: Segment> ExactSizeIterator for Slices<'_, B> {}

/// The writable bytes of each segment of a unique chain ([`IoBufChain::slices_mut`]).
pub struct SlicesMut<'a> {
    segments: vec_deque::IterMut<'a, IoBuf>,
}

impl<'a> Iterator for SlicesMut<'a> {
    type Item = &'a mut [u8];

    fn next(&mut self) -> Option<&'a mut [u8]> {
        self.segments.next().map(IoBuf::as_mut_slice)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.segments.size_hint()
    }
}

impl ExactSizeIterator for SlicesMut<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iobuf::counter::thread_meter::ThreadCopyMeter;
    use alloc::format;
    use alloc::vec;

    fn shared(bytes: &[u8]) -> SharedIoBuf {
        SharedIoBuf::copy_from_slice(bytes)
    }

    fn chain_of(parts: &[&[u8]]) -> IoBufChain {
        parts.iter().map(|part| shared(part)).collect()
    }

    fn bytes_of<B: Segment>(chain: &IoBufChain<B>) -> Vec<u8> {
        chain.slices().flatten().copied().collect()
    }

    #[test]
    fn push_and_pop_keep_the_length_and_drop_empty_buffers() {
        let mut chain = IoBufChain::new();
        chain.push_back(shared(b"world"));
        chain.push_front(shared(b"hello "));
        chain.push_back(SharedIoBuf::new());
        chain.push_front(SharedIoBuf::from_static(b""));
        assert_eq!((chain.len(), chain.segment_count()), (11, 2));
        assert_eq!(bytes_of(&chain), b"hello world");
        assert_eq!(chain.front().map(|s| s.len()), Some(6));
        assert_eq!(chain.back().map(|s| s.len()), Some(5));
        assert_eq!(chain.pop_back().as_deref(), Some(&b"world"[..]));
        assert_eq!(chain.pop_front().as_deref(), Some(&b"hello "[..]));
        assert!(chain.is_empty());
        assert!(chain.pop_front().is_none() && chain.pop_back().is_none());
    }

    #[test]
    fn advance_across_segments_drops_the_exhausted_ones() {
        let mut chain = chain_of(&[b"ab", b"cde", b"f"]);
        let meter = ThreadCopyMeter::start();
        chain.advance(0);
        assert_eq!(chain.segment_count(), 3);
        chain.advance(2);
        assert_eq!((bytes_of(&chain), chain.segment_count()), (b"cdef".to_vec(), 2));
        chain.advance(3);
        assert_eq!((bytes_of(&chain), chain.segment_count()), (b"f".to_vec(), 1));
        chain.advance(1);
        assert!(chain.is_empty() && chain.segment_count() == 0);
        assert_eq!(meter.bytes(), 0);
    }

    #[test]
    fn advance_into_the_middle_of_a_segment() {
        let mut chain = chain_of(&[b"abc", b"defg"]);
        chain.advance(4);
        assert_eq!((bytes_of(&chain), chain.len(), chain.segment_count()), (b"efg".to_vec(), 3, 1));
        assert_eq!(chain.front().map(|s| s.headroom()), Some(1));
    }

    #[test]
    #[should_panic(expected = "cannot advance 4 bytes past a chain of 3")]
    fn advance_past_the_chain_panics() {
        chain_of(&[b"ab", b"c"]).advance(4);
    }

    #[test]
    fn trim_end_and_truncate_across_segments() {
        let mut chain = chain_of(&[b"ab", b"cde", b"fg"]);
        chain.trim_end(0);
        assert_eq!(chain.segment_count(), 3);
        chain.trim_end(3);
        assert_eq!((bytes_of(&chain), chain.segment_count()), (b"abcd".to_vec(), 2));
        chain.truncate(10);
        assert_eq!(chain.len(), 4);
        chain.truncate(2);
        assert_eq!((bytes_of(&chain), chain.segment_count()), (b"ab".to_vec(), 1));
        chain.truncate(0);
        assert!(chain.is_empty() && chain.segment_count() == 0);
    }

    #[test]
    fn split_to_in_the_middle_of_a_segment_shares_its_storage() {
        let mut chain = chain_of(&[b"head", b"er+payload", b"tail"]);
        let second_segment = chain.segments().nth(1).map(|s| s.as_ptr()).expect("3 segments");
        let meter = ThreadCopyMeter::start();
        let header = chain.split_to(7);
        assert_eq!(meter.bytes(), 0);
        assert_eq!(bytes_of(&header), b"header+");
        assert_eq!(bytes_of(&chain), b"payloadtail");
        assert_eq!((header.len(), chain.len()), (7, 11));
        assert_eq!(header.back().map(|s| s.as_ptr()), Some(second_segment));
        assert_eq!(chain.front().map(|s| s.as_ptr()), Some(second_segment.wrapping_add(3)));
    }

    #[test]
    fn split_at_zero_at_a_boundary_and_at_the_end() {
        let mut chain = chain_of(&[b"ab", b"cd"]);
        let nothing = chain.split_to(0);
        assert!(nothing.is_empty() && nothing.segment_count() == 0);
        let first = chain.split_to(2);
        assert_eq!((first.segment_count(), chain.segment_count()), (1, 1));
        let rest = chain.split_to(2);
        assert!(chain.is_empty());
        assert_eq!(bytes_of(&rest), b"cd");
        let mut empty: IoBufChain = IoBufChain::new();
        assert!(empty.split_to(0).is_empty() && empty.split_off(0).is_empty());
    }

    #[test]
    fn split_off_keeps_the_front() {
        let mut chain = chain_of(&[b"abc", b"def"]);
        let back = chain.split_off(4);
        assert_eq!((bytes_of(&chain), bytes_of(&back)), (b"abcd".to_vec(), b"ef".to_vec()));
        let end = chain.split_off(4);
        assert!(end.is_empty());
        assert_eq!(chain.len(), 4);
    }

    #[test]
    #[should_panic(expected = "cannot split a chain of 2 at 3")]
    fn split_past_the_chain_panics() {
        chain_of(&[b"ab"]).split_to(3);
    }

    #[test]
    fn append_moves_segments_without_copying() {
        let mut chain = chain_of(&[b"ab"]);
        let other = chain_of(&[b"cd", b"e"]);
        let meter = ThreadCopyMeter::start();
        chain.append(other);
        chain.append(IoBufChain::new());
        assert_eq!(meter.bytes(), 0);
        assert_eq!(
            (bytes_of(&chain), chain.segment_count(), chain.len()),
            (b"abcde".to_vec(), 3, 5)
        );
    }

    #[test]
    fn gather_fills_an_io_vector() {
        let chain = chain_of(&[b"a", b"bc", b"def"]);
        let mut vector: [&[u8]; 2] = [&[]; 2];
        assert_eq!(chain.gather(&mut vector), 2);
        assert_eq!(vector, [&b"a"[..], &b"bc"[..]]);
        let mut roomy: [&[u8]; 5] = [&[]; 5];
        assert_eq!(chain.gather(&mut roomy), 3);
        assert_eq!(chain.slices().len(), 3);
        assert_eq!(chain.slices().next_back(), Some(&b"def"[..]));
    }

    #[test]
    fn copying_operations_count_exactly_the_bytes_they_copy() {
        let mut chain = chain_of(&[b"abc", b"de"]);
        let meter = ThreadCopyMeter::start();
        assert_eq!(chain.to_vec(), b"abcde");
        assert_eq!(meter.bytes(), 5);
        let mut first_four = [0u8; 4];
        chain.copy_to_slice(&mut first_four).expect("5 bytes in the chain");
        assert_eq!((&first_four, meter.bytes()), (b"abcd", 9));
        let mut too_many = [0u8; 6];
        assert_eq!(
            chain.copy_to_slice(&mut too_many),
            Err(UnexpectedEnd { requested: 6, remaining: 5 })
        );
        assert_eq!(meter.bytes(), 9);
        assert_eq!(chain.make_contiguous(), b"abcde");
        assert_eq!((chain.segment_count(), meter.bytes()), (1, 14));
        assert_eq!(chain.make_contiguous(), b"abcde", "one segment is already contiguous");
        assert_eq!(meter.bytes(), 14);
    }

    #[test]
    fn to_contiguous_keeps_the_first_segments_headroom() {
        let mut first = IoBuf::with_headroom(14, 3);
        first.extend_from_slice(b"abc");
        let chain: IoBufChain = [first.freeze(), shared(b"def")].into_iter().collect();
        let meter = ThreadCopyMeter::start();
        let buf = chain.to_contiguous();
        assert_eq!(meter.bytes(), 6);
        assert_eq!((buf.as_slice(), buf.headroom(), buf.tailroom()), (&b"abcdef"[..], 14, 0));
    }

    #[test]
    fn into_contiguous_copies_only_when_there_are_several_segments() {
        let single = shared(b"only");
        let address = single.as_ptr();
        let several = chain_of(&[b"ab", b"c"]);
        let meter = ThreadCopyMeter::start();
        let buf = IoBufChain::from(single).into_contiguous();
        assert_eq!((buf.as_ptr(), meter.bytes()), (address, 0));
        assert!(IoBufChain::<SharedIoBuf>::new().into_contiguous().is_empty());
        let merged = several.into_contiguous();
        assert_eq!((merged.as_slice(), meter.bytes()), (&b"abc"[..], 3));
        let mut empty: IoBufChain = IoBufChain::new();
        assert_eq!(empty.make_contiguous(), b"");
    }

    #[test]
    fn unique_chains_write_in_place_and_freeze_without_copying() {
        let mut chain: IoBufChain<IoBuf> =
            [IoBuf::copy_from_slice(b"abc"), IoBuf::copy_from_slice(b"de")].into_iter().collect();
        let addresses: Vec<*const u8> = chain.segments().map(|s| s.as_ptr()).collect();
        let meter = ThreadCopyMeter::start();
        for slice in chain.slices_mut() {
            slice.make_ascii_uppercase();
        }
        let frozen = chain.freeze();
        assert_eq!(meter.bytes(), 0);
        assert_eq!(bytes_of(&frozen), b"ABCDE");
        assert_eq!(frozen.segments().map(|s| s.as_ptr()).collect::<Vec<_>>(), addresses);
    }

    #[test]
    fn clone_shares_every_segment() {
        let chain = chain_of(&[b"ab", b"cd"]);
        let meter = ThreadCopyMeter::start();
        let clone = chain.clone();
        assert_eq!(meter.bytes(), 0);
        for (original, copy) in chain.segments().zip(clone.segments()) {
            assert_eq!(original.as_ptr(), copy.as_ptr());
            assert_eq!(original.ref_count(), Some(2));
        }
    }

    #[test]
    fn into_iter_and_extend_move_segments() {
        let chain = chain_of(&[b"ab", b"cd"]);
        let mut rebuilt: IoBufChain = IoBufChain::default();
        rebuilt.extend(chain);
        assert_eq!(bytes_of(&rebuilt), b"abcd");
        let segments: Vec<SharedIoBuf> = rebuilt.into_iter().collect();
        assert_eq!(segments.len(), 2);
    }

    #[test]
    fn debug_shows_length_and_segment_count() {
        let chain = chain_of(&[&vec![0u8; 10_000], b"x"]);
        assert_eq!(format!("{chain:?}"), "IoBufChain { len: 10001, segments: 2 }");
    }
}
