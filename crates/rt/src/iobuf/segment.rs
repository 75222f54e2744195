//! [`Segment`]: what a chain needs from the buffers it holds, so one [`IoBufChain`] type serves
//! both unique buffers (a receive path that may rewrite bytes in place) and shared ones (a send
//! queue that keeps data for retransmission).
//!
//! [`IoBufChain`]: super::IoBufChain

use core::ops::Deref;

use super::buf::IoBuf;
use super::shared::SharedIoBuf;

mod sealed {
    /// Keeps [`super::Segment`] implemented by this module's two buffer types only, so the chain
    /// can rely on their splitting never copying.
    pub trait Sealed {}
    impl Sealed for super::IoBuf {}
    impl Sealed for super::SharedIoBuf {}
}

/// A buffer that can be a segment of an [`IoBufChain`](super::IoBufChain): [`IoBuf`] or
/// [`SharedIoBuf`]. Every method but [`Segment::from_unique`] is the buffer's own method of the
/// same name and copies nothing.
pub trait Segment: Deref<Target = [u8]> + sealed::Sealed + Sized {
    /// Drops the first `n` bytes of the view; panics if `n` exceeds it.
    fn advance(&mut self, n: usize);
    /// Shortens the view to `len` bytes.
    fn truncate(&mut self, len: usize);
    /// Splits off the first `at` bytes of the view; panics if `at` exceeds it.
    fn split_to(&mut self, at: usize) -> Self;
    /// Bytes of room before the view.
    fn headroom(&self) -> usize;
    /// Converts a unique buffer into this kind (free for both kinds).
    fn from_unique(buf: IoBuf) -> Self;
}

impl Segment for IoBuf {
    fn advance(&mut self, n: usize) {
        IoBuf::advance(self, n);
    }

    fn truncate(&mut self, len: usize) {
        IoBuf::truncate(self, len);
    }

    fn split_to(&mut self, at: usize) -> Self {
        IoBuf::split_to(self, at)
    }

    fn headroom(&self) -> usize {
        IoBuf::headroom(self)
    }

    fn from_unique(buf: IoBuf) -> Self {
        buf
    }
}

impl Segment for SharedIoBuf {
    fn advance(&mut self, n: usize) {
        SharedIoBuf::advance(self, n);
    }

    fn truncate(&mut self, len: usize) {
        SharedIoBuf::truncate(self, len);
    }

    fn split_to(&mut self, at: usize) -> Self {
        SharedIoBuf::split_to(self, at)
    }

    fn headroom(&self) -> usize {
        SharedIoBuf::headroom(self)
    }

    fn from_unique(buf: IoBuf) -> Self {
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_generic<B: Segment>(mut buf: B, at: usize) -> (B, B) {
        let front = Segment::split_to(&mut buf, at);
        (front, buf)
    }

    #[test]
    fn both_kinds_split_through_the_trait() {
        let (front, back) = split_generic(IoBuf::copy_from_slice(b"abcd"), 1);
        assert_eq!((&*front, &*back), (&b"a"[..], &b"bcd"[..]));
        let (front, back) = split_generic(SharedIoBuf::from_static(b"abcd"), 3);
        assert_eq!((&*front, &*back), (&b"abc"[..], &b"d"[..]));
    }

    #[test]
    fn trait_methods_match_the_inherent_ones() {
        let mut unique = IoBuf::with_headroom(2, 4);
        unique.extend_from_slice(b"wxyz");
        Segment::advance(&mut unique, 1);
        Segment::truncate(&mut unique, 2);
        assert_eq!((&*unique, Segment::headroom(&unique)), (&b"xy"[..], 3));
        let mut shared = <SharedIoBuf as Segment>::from_unique(unique);
        Segment::advance(&mut shared, 1);
        Segment::truncate(&mut shared, 0);
        assert_eq!((shared.len(), Segment::headroom(&shared)), (0, 4));
    }
}
