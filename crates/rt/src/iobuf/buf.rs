//! [`IoBuf`]: the unique, writable buffer (EbbRT paper, "Network Stack": the IOBuf a device
//! hands to the stack and the stack to the application).
//!
//! A unique buffer owns its region outright, so it may write into its view, into its tailroom
//! (appending data, or a device filling a receive frame) and into its headroom (prepending a
//! header after [`IoBuf::retreat`]). Splitting keeps both halves unique over disjoint regions.

use alloc::vec::Vec;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut, Range};
use core::ptr::NonNull;

use super::counter::record_copy;
use super::error::NotEnoughRoom;
use super::shared::SharedIoBuf;
use super::storage::{Region, StorageKind};

/// A unique, writable buffer: a view into a region of storage that no other buffer can reach.
///
/// Dereferences to the bytes in view (`&[u8]` and `&mut [u8]`). See the [module
/// documentation](crate::iobuf) for headroom, tailroom and which operations copy.
pub struct IoBuf {
    /// Invariant 3 of [`Region`] holds: this region overlaps no other live region and its storage
    /// is writable.
    region: Region,
}

impl IoBuf {
    /// An empty buffer with no room at all; allocates nothing.
    pub const fn new() -> Self {
        IoBuf { region: Region::empty() }
    }

    /// An empty buffer with `capacity` bytes of tailroom and no headroom, in one zeroed heap
    /// allocation (none if `capacity` is zero).
    ///
    /// # Panics
    ///
    /// If the size overflows `isize`.
    pub fn with_capacity(capacity: usize) -> Self {
        IoBuf::with_headroom(0, capacity)
    }

    /// An empty buffer with `headroom` bytes of headroom (for headers prepended later) and
    /// `capacity` bytes of tailroom, in one zeroed heap allocation that also holds the reference
    /// count.
    ///
    /// # Panics
    ///
    /// If the size overflows `isize`.
    pub fn with_headroom(headroom: usize, capacity: usize) -> Self {
        IoBuf { region: Region::heap(headroom, capacity) }
    }

    /// A new heap buffer holding a copy of `bytes` (counted as a copy), with no headroom or
    /// tailroom.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        IoBuf { region: Region::heap_copy_of(0, bytes, 0) }
    }

    /// Takes over a `Vec`'s allocation without copying: the view is the vector's elements (its
    /// spare capacity, being uninitialized, is not offered as tailroom). The allocation is freed
    /// when the last buffer over it drops.
    pub fn from_vec(vec: Vec<u8>) -> Self {
        let mut vec = ManuallyDrop::new(vec);
        let (len, capacity) = (vec.len(), vec.capacity());
        if capacity == 0 {
            // Nothing was allocated, so there is nothing to keep or free.
            return IoBuf::new();
        }
        // SAFETY: a `Vec`'s pointer is never null; `as_mut_ptr` keeps the provenance of the whole
        // allocation.
        let base = unsafe { NonNull::new_unchecked(vec.as_mut_ptr()) };
        let give_back = move |base: NonNull<u8>, _: usize| {
            // SAFETY: `base`, `len` and `capacity` are the raw parts of the vector taken apart
            // above, which nothing has freed; its first `len` bytes are still initialized.
            drop(unsafe { Vec::from_raw_parts(base.as_ptr(), len, capacity) });
        };
        // SAFETY: the vector's allocation now belongs to this buffer (the `ManuallyDrop` will
        // never free it); its first `len` bytes are initialized and valid for reads and writes
        // until `give_back` rebuilds and drops the vector.
        let region = unsafe { Region::external(base, len, 0..len, true, give_back) };
        IoBuf { region }
    }

    /// Lends the memory `base .. base + capacity` (a device frame, a shared-memory ring slot) as
    /// a buffer showing `view`, without copying. `release(base, capacity)` is called exactly
    /// once, on the thread that drops the last buffer over the memory (this one, its split
    /// halves, its frozen clones), to give the memory back.
    ///
    /// # Safety
    ///
    /// From this call until `release` is called, `base .. base + capacity` must be valid for
    /// reads and writes, initialized, and read or written by nothing but the buffers made from
    /// this one.
    ///
    /// # Panics
    ///
    /// If `view` does not lie within `0 .. capacity`; `release` is then dropped uncalled.
    pub unsafe fn from_external<F>(
        base: NonNull<u8>,
        capacity: usize,
        view: Range<usize>,
        release: F,
    ) -> Self
    where
        F: FnOnce(NonNull<u8>, usize) + Send + 'static,
    {
        // SAFETY: the caller guarantees the memory is valid, initialized, writable and exclusive
        // to this buffer until `release` runs; a fresh region overlaps no other.
        IoBuf { region: unsafe { Region::external(base, capacity, view, true, release) } }
    }

    /// Bytes in view.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether no bytes are in view.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// Bytes of room before the view, for prepending.
    pub fn headroom(&self) -> usize {
        self.region.headroom()
    }

    /// Bytes of room after the view, for appending.
    pub fn tailroom(&self) -> usize {
        self.region.tailroom()
    }

    /// The kind of storage under this buffer.
    pub fn storage_kind(&self) -> StorageKind {
        self.region.kind()
    }

    /// The address of the first byte in view (to check that buffers share storage).
    pub fn as_ptr(&self) -> *const u8 {
        self.region.as_ptr()
    }

    /// The bytes in view.
    pub fn as_slice(&self) -> &[u8] {
        self.region.view()
    }

    /// The bytes in view, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: this is a unique buffer, so its region overlaps no other live region and its
        // storage is writable (the invariant of `IoBuf::region`).
        unsafe { self.region.view_mut() }
    }

    /// The tailroom, writable: fill it (a device writing a frame, an encoder writing a reply),
    /// then bring the written bytes into view with [`IoBuf::claim_tailroom`].
    pub fn tailroom_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { self.region.tailroom_mut() }
    }

    /// Grows the view `n` bytes into the tailroom (bytes written through
    /// [`IoBuf::tailroom_mut`], or whatever the region held before). Copies nothing.
    pub fn claim_tailroom(&mut self, n: usize) -> Result<(), NotEnoughRoom> {
        self.region.claim_tailroom(n)
    }

    /// Drops the first `n` bytes of the view into the headroom (consuming a parsed header).
    ///
    /// # Panics
    ///
    /// If `n > self.len()`.
    pub fn advance(&mut self, n: usize) {
        self.region.advance(n);
    }

    /// Grows the view `n` bytes back into the headroom, to write a header there through
    /// [`IoBuf::as_mut_slice`] (or to see again what [`IoBuf::advance`] dropped). Copies
    /// nothing; fails without change if the headroom is shorter than `n`.
    pub fn retreat(&mut self, n: usize) -> Result<(), NotEnoughRoom> {
        self.region.retreat(n)
    }

    /// Drops the last `n` bytes of the view into the tailroom.
    ///
    /// # Panics
    ///
    /// If `n > self.len()`.
    pub fn trim_end(&mut self, n: usize) {
        let len = self.len();
        assert!(n <= len, "cannot trim {n} bytes from a view of {len}");
        self.region.truncate(len - n);
    }

    /// Shortens the view to `len` bytes (the rest becomes tailroom); no effect if it is already
    /// that short.
    pub fn truncate(&mut self, len: usize) {
        self.region.truncate(len);
    }

    /// Splits off and returns the first `at` bytes of the view, without copying. The returned
    /// front keeps the headroom and has no tailroom; `self` keeps bytes `at..` and the tailroom
    /// and has no headroom, so neither half can reach the other's bytes.
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_to(&mut self, at: usize) -> IoBuf {
        IoBuf { region: self.region.split_to(at) }
    }

    /// Splits off and returns bytes `at..` of the view, without copying; `self` keeps the first
    /// `at` bytes. The halves have the same rooms as with [`IoBuf::split_to`].
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_off(&mut self, at: usize) -> IoBuf {
        IoBuf { region: self.region.split_off(at) }
    }

    /// Joins `back` onto the end of this buffer without copying, if the two were split from
    /// one buffer and still meet at the cut (this one has no tailroom, `back` no headroom), or
    /// if `back` is empty with no room at all. Otherwise returns `back` unchanged.
    pub fn try_join(&mut self, back: IoBuf) -> Result<(), IoBuf> {
        self.region.try_join(back.region).map_err(|region| IoBuf { region })
    }

    /// Makes sure at least `additional` bytes of tailroom are free. If not, moves the view into
    /// a new heap allocation with the same headroom and at least twice the old room after the
    /// view; that move is counted as a copy of the view.
    ///
    /// # Panics
    ///
    /// If the new size overflows `isize`.
    pub fn reserve(&mut self, additional: usize) {
        let tailroom = self.tailroom();
        if tailroom >= additional {
            return;
        }
        let len = self.len();
        let room_after = len.saturating_add(tailroom).saturating_mul(2);
        let needed = len.checked_add(additional).expect("IoBuf capacity overflows usize");
        let tailroom_after = room_after.max(needed) - len;
        self.region = Region::heap_copy_of(self.headroom(), self.as_slice(), tailroom_after);
    }

    /// Appends a copy of `bytes` (counted) into the tailroom, first reallocating as
    /// [`IoBuf::reserve`] does if the tailroom is too short.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        if self.try_extend_from_slice(bytes).is_err() {
            unreachable!("reserve left room for {} bytes", bytes.len());
        }
    }

    /// Appends a copy of `bytes` (counted) into the tailroom, or fails without change if the
    /// tailroom is too short; never reallocates (lent memory stays lent).
    pub fn try_extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), NotEnoughRoom> {
        let tailroom = self.tailroom_mut();
        let Some(destination) = tailroom.get_mut(..bytes.len()) else {
            return Err(NotEnoughRoom { requested: bytes.len(), available: tailroom.len() });
        };
        destination.copy_from_slice(bytes);
        record_copy(bytes.len());
        self.region.claim_tailroom(bytes.len())
    }

    /// Prepends a copy of `bytes` (counted) into the headroom, or fails without change if the
    /// headroom is too short. To build a header in place without a copy, [`IoBuf::retreat`] and
    /// write through [`IoBuf::as_mut_slice`] instead.
    pub fn prepend_slice(&mut self, bytes: &[u8]) -> Result<(), NotEnoughRoom> {
        self.retreat(bytes.len())?;
        self.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
        record_copy(bytes.len());
        Ok(())
    }

    /// Turns this buffer into a shared, immutable one over the same storage; free.
    pub fn freeze(self) -> SharedIoBuf {
        SharedIoBuf::from_region(self.region)
    }

    /// Copies the bytes in view into a new `Vec` (counted).
    pub fn to_vec(&self) -> Vec<u8> {
        record_copy(self.len());
        self.as_slice().to_vec()
    }

    /// Wraps a region that satisfies invariant 3 (`SharedIoBuf::try_into_unique` checks it).
    pub(super) fn from_region(region: Region) -> Self {
        debug_assert!(region.is_sole_writable_owner());
        IoBuf { region }
    }
}

impl Default for IoBuf {
    fn default() -> Self {
        IoBuf::new()
    }
}

impl Deref for IoBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for IoBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for IoBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for IoBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl From<Vec<u8>> for IoBuf {
    /// Takes over the vector's allocation without copying; see [`IoBuf::from_vec`].
    fn from(vec: Vec<u8>) -> Self {
        IoBuf::from_vec(vec)
    }
}

impl PartialEq for IoBuf {
    /// Buffers are equal when the bytes in view are.
    fn eq(&self, other: &IoBuf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for IoBuf {}

impl PartialEq<[u8]> for IoBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl fmt::Debug for IoBuf {
    /// Shows the sizes and the storage kind, never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoBuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .field("storage", &self.storage_kind())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iobuf::counter::thread_meter::ThreadCopyMeter;
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::sync::Arc;
    use alloc::vec;
    use core::sync::atomic::{AtomicUsize, Ordering};

    fn filled(headroom: usize, bytes: &[u8], tailroom: usize) -> IoBuf {
        let mut buf = IoBuf::with_headroom(headroom, bytes.len() + tailroom);
        buf.extend_from_slice(bytes);
        buf
    }

    #[test]
    fn unique_buffers_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IoBuf>();
    }

    #[test]
    fn new_buffer_is_empty_and_allocates_nothing() {
        let buf = IoBuf::new();
        assert!(buf.is_empty());
        assert_eq!((buf.headroom(), buf.tailroom()), (0, 0));
        assert_eq!(buf.storage_kind(), StorageKind::Unowned);
        assert_eq!(IoBuf::with_capacity(0).storage_kind(), StorageKind::Unowned);
        assert_eq!(IoBuf::default(), IoBuf::new());
    }

    #[test]
    fn with_headroom_gives_the_asked_rooms() {
        let buf = IoBuf::with_headroom(64, 1500);
        assert_eq!((buf.headroom(), buf.len(), buf.tailroom()), (64, 0, 1500));
        assert_eq!(buf.storage_kind(), StorageKind::Heap);
    }

    #[test]
    fn tailroom_written_in_place_is_claimed_without_a_copy() {
        let mut buf = IoBuf::with_capacity(8);
        let meter = ThreadCopyMeter::start();
        buf.tailroom_mut()[..3].copy_from_slice(b"abc");
        buf.claim_tailroom(3).expect("room for 3");
        assert_eq!(meter.bytes(), 0);
        assert_eq!(buf.as_slice(), b"abc");
        assert_eq!(buf.claim_tailroom(6), Err(NotEnoughRoom { requested: 6, available: 5 }));
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn header_written_after_retreat_is_not_a_copy() {
        let mut buf = filled(4, b"payload", 0);
        let meter = ThreadCopyMeter::start();
        buf.retreat(4).expect("4 bytes of headroom");
        buf.as_mut_slice()[..4].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        assert_eq!(meter.bytes(), 0);
        assert_eq!(buf.as_slice(), b"\xde\xad\xbe\xefpayload");
        assert_eq!(buf.headroom(), 0);
    }

    #[test]
    fn retreat_beyond_headroom_fails_and_changes_nothing() {
        let mut buf = filled(2, b"xy", 0);
        assert_eq!(buf.retreat(3), Err(NotEnoughRoom { requested: 3, available: 2 }));
        assert_eq!((buf.headroom(), buf.as_slice()), (2, &b"xy"[..]));
        buf.retreat(0).expect("retreating nothing always works");
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn advance_then_retreat_sees_the_same_bytes_again() {
        let mut buf = filled(0, b"header:body", 0);
        buf.advance(7);
        assert_eq!(buf.as_slice(), b"body");
        assert_eq!(buf.headroom(), 7);
        buf.retreat(7).expect("advanced bytes are headroom");
        assert_eq!(buf.as_slice(), b"header:body");
    }

    #[test]
    fn advance_and_trim_to_empty_and_by_zero() {
        let mut buf = filled(0, b"abcd", 0);
        buf.advance(0);
        buf.trim_end(0);
        assert_eq!(buf.as_slice(), b"abcd");
        buf.trim_end(1);
        assert_eq!((buf.as_slice(), buf.tailroom()), (&b"abc"[..], 1));
        buf.advance(3);
        assert!(buf.is_empty());
        assert_eq!((buf.headroom(), buf.tailroom()), (3, 1));
    }

    #[test]
    #[should_panic(expected = "cannot advance 5 bytes")]
    fn advance_past_the_view_panics() {
        filled(0, b"abcd", 8).advance(5);
    }

    #[test]
    #[should_panic(expected = "cannot trim 5 bytes")]
    fn trim_past_the_view_panics() {
        filled(0, b"abcd", 8).trim_end(5);
    }

    #[test]
    #[should_panic(expected = "cannot split at 5")]
    fn split_past_the_view_panics() {
        filled(0, b"abcd", 8).split_to(5);
    }

    #[test]
    fn truncate_only_shortens() {
        let mut buf = filled(0, b"abcdef", 2);
        buf.truncate(10);
        assert_eq!(buf.len(), 6);
        buf.truncate(2);
        assert_eq!((buf.as_slice(), buf.tailroom()), (&b"ab"[..], 6));
    }

    #[test]
    fn split_to_cuts_the_region_so_halves_cannot_grow_into_each_other() {
        let mut back = filled(3, b"headbody", 5);
        let start = back.as_ptr();
        let meter = ThreadCopyMeter::start();
        let mut front = back.split_to(4);
        assert_eq!(meter.bytes(), 0);
        assert_eq!(front.as_slice(), b"head");
        assert_eq!(back.as_slice(), b"body");
        assert_eq!(front.as_ptr(), start);
        assert_eq!(back.as_ptr(), start.wrapping_add(4));
        assert_eq!((front.headroom(), front.tailroom()), (3, 0));
        assert_eq!((back.headroom(), back.tailroom()), (0, 5));
        assert!(back.retreat(1).is_err());
        assert!(front.claim_tailroom(1).is_err());
        assert!(front.try_extend_from_slice(b"!").is_err());
        // Writing one half leaves the other alone.
        front.as_mut_slice().fill(b'H');
        back.as_mut_slice().fill(b'B');
        assert_eq!((front.as_slice(), back.as_slice()), (&b"HHHH"[..], &b"BBBB"[..]));
    }

    #[test]
    fn split_off_keeps_the_front() {
        let mut front = filled(2, b"abcdef", 1);
        let back = front.split_off(2);
        assert_eq!((front.as_slice(), front.headroom(), front.tailroom()), (&b"ab"[..], 2, 0));
        assert_eq!((back.as_slice(), back.headroom(), back.tailroom()), (&b"cdef"[..], 0, 1));
    }

    #[test]
    fn split_at_zero_and_at_len() {
        let mut buf = filled(1, b"abc", 1);
        let empty_front = buf.split_to(0);
        assert!(empty_front.is_empty());
        assert_eq!((empty_front.headroom(), empty_front.tailroom()), (1, 0));
        assert_eq!((buf.as_slice(), buf.headroom()), (&b"abc"[..], 0));
        let empty_back = buf.split_off(3);
        assert!(empty_back.is_empty());
        assert_eq!((empty_back.headroom(), empty_back.tailroom()), (0, 1));
        assert_eq!((buf.as_slice(), buf.tailroom()), (&b"abc"[..], 0));
        let mut empty = IoBuf::new();
        assert!(empty.split_to(0).is_empty());
        assert!(empty.split_off(0).is_empty());
    }

    #[test]
    fn split_halves_join_back_without_a_copy() {
        let mut buf = filled(2, b"0123456789", 3);
        let start = buf.as_ptr();
        let meter = ThreadCopyMeter::start();
        let mut middle = buf.split_off(3);
        let back = middle.split_off(4);
        middle.try_join(back).expect("adjacent halves");
        buf.try_join(middle).expect("adjacent halves");
        assert_eq!(meter.bytes(), 0);
        assert_eq!(buf.as_slice(), b"0123456789");
        assert_eq!((buf.as_ptr(), buf.headroom(), buf.tailroom()), (start, 2, 3));
    }

    #[test]
    fn try_join_hands_back_what_does_not_meet() {
        let mut first = filled(0, b"abc", 0);
        let other = filled(0, b"def", 0);
        let other = first.try_join(other).expect_err("different storage");
        assert_eq!(other.as_slice(), b"def");
        let mut front = filled(0, b"abcdef", 0);
        let mut back = front.split_off(3);
        back.advance(1);
        let back = front.try_join(back).expect_err("back no longer starts at the cut");
        assert_eq!((front.as_slice(), back.as_slice()), (&b"abc"[..], &b"ef"[..]));
    }

    #[test]
    fn extend_from_slice_counts_the_bytes_and_grows_when_needed() {
        let mut buf = IoBuf::with_headroom(8, 4);
        let meter = ThreadCopyMeter::start();
        buf.extend_from_slice(b"abcd");
        assert_eq!(meter.bytes(), 4);
        let before = buf.as_ptr();
        buf.extend_from_slice(b"ef");
        // Reallocation moves the 4 bytes in view, then the 2 new ones are copied in.
        assert_eq!(meter.bytes(), 4 + 4 + 2);
        assert_ne!(buf.as_ptr(), before);
        assert_eq!(buf.as_slice(), b"abcdef");
        assert_eq!(buf.headroom(), 8);
        assert!(buf.tailroom() >= 2);
    }

    #[test]
    fn try_extend_from_slice_never_reallocates() {
        let mut buf = IoBuf::with_capacity(3);
        assert_eq!(
            buf.try_extend_from_slice(b"abcd"),
            Err(NotEnoughRoom { requested: 4, available: 3 })
        );
        assert!(buf.is_empty());
        buf.try_extend_from_slice(b"abc").expect("fits exactly");
        assert_eq!(buf.as_slice(), b"abc");
    }

    #[test]
    fn reserve_keeps_room_it_already_has() {
        let mut buf = IoBuf::with_headroom(4, 16);
        let before = buf.as_ptr();
        let meter = ThreadCopyMeter::start();
        buf.reserve(16);
        assert_eq!((buf.as_ptr(), meter.bytes()), (before, 0));
        buf.reserve(17);
        assert_eq!(buf.headroom(), 4);
        assert!(buf.tailroom() >= 17);
        assert_eq!(meter.bytes(), 0, "an empty view moves no bytes");
    }

    #[test]
    fn prepend_slice_counts_and_respects_headroom() {
        let mut buf = filled(3, b"data", 0);
        let meter = ThreadCopyMeter::start();
        assert_eq!(buf.prepend_slice(b"hdrs"), Err(NotEnoughRoom { requested: 4, available: 3 }));
        buf.prepend_slice(b"hdr").expect("3 bytes of headroom");
        assert_eq!(meter.bytes(), 3);
        assert_eq!(buf.as_slice(), b"hdrdata");
    }

    #[test]
    fn copy_constructors_and_to_vec_count() {
        let meter = ThreadCopyMeter::start();
        let buf = IoBuf::copy_from_slice(b"hello");
        assert_eq!(meter.bytes(), 5);
        assert_eq!(buf.to_vec(), b"hello");
        assert_eq!(meter.bytes(), 10);
    }

    #[test]
    fn from_vec_takes_the_allocation_without_a_copy() {
        let mut vec = Vec::with_capacity(32);
        vec.extend_from_slice(b"vector bytes");
        let address = vec.as_ptr();
        let meter = ThreadCopyMeter::start();
        let mut buf = IoBuf::from(vec);
        assert_eq!(meter.bytes(), 0);
        assert_eq!((buf.as_ptr(), buf.as_slice()), (address, &b"vector bytes"[..]));
        assert_eq!(buf.storage_kind(), StorageKind::External);
        assert_eq!(buf.tailroom(), 0, "spare capacity is uninitialized and not offered");
        buf.as_mut_slice()[0] = b'V';
        let back = buf.split_off(6);
        drop(buf);
        assert_eq!(back.as_slice(), b" bytes");
        assert!(IoBuf::from_vec(Vec::new()).is_empty());
    }

    /// A release hook for memory leaked from a `Box<[u8]>`: rebuilds and drops the box, and
    /// counts the call in `releases`.
    fn return_leaked_box(releases: Arc<AtomicUsize>) -> impl FnOnce(NonNull<u8>, usize) + Send {
        move |base, capacity| {
            let slice = core::ptr::slice_from_raw_parts_mut(base.as_ptr(), capacity);
            // SAFETY: the tests pass the pointer and length of a box they leaked, once.
            drop(unsafe { Box::from_raw(slice) });
            releases.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn external_release_runs_once_when_the_last_half_drops() {
        let releases = Arc::new(AtomicUsize::new(0));
        let frame = vec![0u8; 64].into_boxed_slice();
        let base = NonNull::from(Box::leak(frame)).cast::<u8>();
        let release = return_leaked_box(Arc::clone(&releases));
        // SAFETY: the leaked frame is valid and initialized, and only this buffer touches it
        // until the hook turns it back into a box.
        let mut buf = unsafe { IoBuf::from_external(base, 64, 16..16, release) };
        assert_eq!((buf.headroom(), buf.tailroom()), (16, 48));
        buf.extend_from_slice(b"frame");
        let tail = buf.split_off(2);
        let frozen = tail.freeze();
        let clone = frozen.clone();
        drop(buf);
        drop(frozen);
        assert_eq!(releases.load(Ordering::SeqCst), 0);
        assert_eq!(clone.as_slice(), b"ame");
        drop(clone);
        assert_eq!(releases.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn external_release_runs_on_the_thread_that_drops_last() {
        let releases = Arc::new(AtomicUsize::new(0));
        let base = NonNull::from(Box::leak(vec![5u8; 8].into_boxed_slice())).cast::<u8>();
        let release = return_leaked_box(Arc::clone(&releases));
        // SAFETY: the leaked frame is valid and initialized, and only this buffer touches it
        // until the hook turns it back into a box.
        let buf = unsafe { IoBuf::from_external(base, 8, 0..8, release) };
        let shared = buf.freeze();
        let clones: Vec<SharedIoBuf> = (0..4).map(|_| shared.clone()).collect();
        drop(shared);
        let threads: Vec<_> = clones
            .into_iter()
            .map(|clone| std::thread::spawn(move || assert_eq!(clone.as_slice(), &[5u8; 8])))
            .collect();
        for thread in threads {
            thread.join().expect("reader thread panicked");
        }
        assert_eq!(releases.load(Ordering::SeqCst), 1);
    }

    #[test]
    #[should_panic(expected = "is not within the lent region")]
    fn external_view_outside_the_region_panics() {
        let mut memory = [0u8; 4];
        let base = NonNull::from(&mut memory).cast::<u8>();
        // SAFETY: the constructor panics before the buffer exists.
        let _ = unsafe { IoBuf::from_external(base, 4, 2..6, |_, _| {}) };
    }

    #[test]
    fn debug_shows_sizes_not_bytes() {
        let buf = filled(2, &[0xAB; 1000], 3);
        let text = format!("{buf:?}");
        assert_eq!(text, "IoBuf { len: 1000, headroom: 2, tailroom: 3, storage: Heap }");
    }

    #[test]
    fn equality_compares_the_bytes_in_view() {
        let a = filled(5, b"same", 0);
        let b = filled(0, b"same", 9);
        assert_eq!(a, b);
        assert_eq!(&a, &b"same"[..]);
        assert_ne!(a, filled(0, b"diff", 0));
    }
}
