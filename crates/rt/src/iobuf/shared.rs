//! [`SharedIoBuf`]: the shared, immutable, reference-counted buffer (EbbRT paper, "Network
//! Stack": an IOBuf the application keeps while the stack also holds it, e.g. for
//! retransmission, or one cached value sent to many clients).
//!
//! Clones share the storage and bump an atomic count, so they may travel to other cores.
//! Nothing can write through a shared buffer; it becomes unique again for free when it is the
//! last buffer over its storage, and by a counted copy otherwise.

use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, Range};
use core::ptr::NonNull;

use super::buf::IoBuf;
use super::counter::record_copy;
use super::error::NotEnoughRoom;
use super::storage::{Region, StorageKind};

/// A shared, immutable buffer: a view into storage that other buffers may also read.
///
/// Cloning is cheap (one atomic increment) and never copies bytes. Dereferences to the bytes in
/// view. See the [module documentation](crate::iobuf) for which operations copy.
pub struct SharedIoBuf {
    region: Region,
}

impl SharedIoBuf {
    /// An empty buffer; allocates nothing.
    pub const fn new() -> Self {
        SharedIoBuf { region: Region::empty() }
    }

    /// A buffer over `'static` bytes (a canned reply, a constant header): no allocation, no
    /// copy, no reference count. Its storage is [`StorageKind::Unowned`], so making it unique
    /// always copies.
    pub fn from_static(bytes: &'static [u8]) -> Self {
        SharedIoBuf { region: Region::from_static(bytes) }
    }

    /// A new heap buffer holding a copy of `bytes` (counted), with no headroom or tailroom.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        SharedIoBuf { region: Region::heap_copy_of(0, bytes, 0) }
    }

    /// Takes over a `Vec`'s allocation without copying; see [`IoBuf::from_vec`].
    pub fn from_vec(vec: Vec<u8>) -> Self {
        IoBuf::from_vec(vec).freeze()
    }

    /// Lends read-only memory `base .. base + capacity` (a mapped file, a ring slot the peer
    /// wrote) as a buffer showing `view`, without copying. `release(base, capacity)` is called
    /// exactly once, on the thread that drops the last buffer over the memory. Buffers over it
    /// never write it: making one unique copies.
    ///
    /// # Safety
    ///
    /// From this call until `release` is called, `base .. base + capacity` must be valid for
    /// reads, initialized, and written by nobody.
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
        // SAFETY: the caller guarantees the memory is valid, initialized and unchanging until
        // `release` runs; `writable: false` keeps every buffer over it from writing it.
        SharedIoBuf { region: unsafe { Region::external(base, capacity, view, false, release) } }
    }

    /// Wraps a region; any region may be shared.
    pub(super) fn from_region(region: Region) -> Self {
        SharedIoBuf { region }
    }

    /// Bytes in view.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether no bytes are in view.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// Bytes of this buffer's region before the view ([`SharedIoBuf::retreat`] can show them).
    pub fn headroom(&self) -> usize {
        self.region.headroom()
    }

    /// Bytes of this buffer's region after the view (writable once the buffer is unique).
    pub fn tailroom(&self) -> usize {
        self.region.tailroom()
    }

    /// The kind of storage under this buffer.
    pub fn storage_kind(&self) -> StorageKind {
        self.region.kind()
    }

    /// How many buffers (shared clones and split halves, unique or shared) hold this buffer's
    /// storage; `None` for unowned storage, which is not counted. Another thread may change it
    /// right after it is read.
    pub fn ref_count(&self) -> Option<usize> {
        self.region.ref_count()
    }

    /// The address of the first byte in view (clones share it).
    pub fn as_ptr(&self) -> *const u8 {
        self.region.as_ptr()
    }

    /// The bytes in view.
    pub fn as_slice(&self) -> &[u8] {
        self.region.view()
    }

    /// Drops the first `n` bytes of the view into the headroom.
    ///
    /// # Panics
    ///
    /// If `n > self.len()`.
    pub fn advance(&mut self, n: usize) {
        self.region.advance(n);
    }

    /// Grows the view `n` bytes back into the headroom (to see again what
    /// [`SharedIoBuf::advance`] dropped); fails without change if the headroom is shorter.
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

    /// Shortens the view to `len` bytes; no effect if it is already that short.
    pub fn truncate(&mut self, len: usize) {
        self.region.truncate(len);
    }

    /// Splits off and returns the first `at` bytes of the view, without copying; the region is
    /// cut at the split point as for [`IoBuf::split_to`].
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_to(&mut self, at: usize) -> SharedIoBuf {
        SharedIoBuf { region: self.region.split_to(at) }
    }

    /// Splits off and returns bytes `at..` of the view, without copying; `self` keeps the first
    /// `at` bytes.
    ///
    /// # Panics
    ///
    /// If `at > self.len()`.
    pub fn split_off(&mut self, at: usize) -> SharedIoBuf {
        SharedIoBuf { region: self.region.split_off(at) }
    }

    /// Joins `back` onto the end of this buffer without copying, if the two were split from
    /// one buffer over owned storage and still meet at the cut; otherwise returns `back`
    /// unchanged. Buffers over `'static` bytes never join.
    pub fn try_join(&mut self, back: SharedIoBuf) -> Result<(), SharedIoBuf> {
        self.region.try_join(back.region).map_err(|region| SharedIoBuf { region })
    }

    /// Becomes unique without copying if this is the only buffer over writable storage (or it
    /// has no bytes at all); otherwise gives the shared buffer back.
    pub fn try_into_unique(self) -> Result<IoBuf, SharedIoBuf> {
        if self.region.is_sole_writable_owner() {
            Ok(IoBuf::from_region(self.region))
        } else {
            Err(self)
        }
    }

    /// Becomes unique: for free as [`SharedIoBuf::try_into_unique`] when possible, otherwise by
    /// copying the view (counted) into a new heap buffer with the same headroom and tailroom.
    pub fn into_unique(self) -> IoBuf {
        match self.try_into_unique() {
            Ok(unique) => unique,
            Err(shared) => IoBuf::from_region(Region::heap_copy_of(
                shared.headroom(),
                shared.as_slice(),
                shared.tailroom(),
            )),
        }
    }

    /// Copies the bytes in view into a new `Vec` (counted).
    pub fn to_vec(&self) -> Vec<u8> {
        record_copy(self.len());
        self.as_slice().to_vec()
    }
}

impl Clone for SharedIoBuf {
    /// Another buffer over the same bytes: one atomic increment, no copy.
    fn clone(&self) -> Self {
        SharedIoBuf { region: self.region.clone_for_sharing() }
    }
}

impl Default for SharedIoBuf {
    fn default() -> Self {
        SharedIoBuf::new()
    }
}

impl Deref for SharedIoBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedIoBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<IoBuf> for SharedIoBuf {
    /// Freezes the unique buffer; free.
    fn from(buf: IoBuf) -> Self {
        buf.freeze()
    }
}

impl From<Vec<u8>> for SharedIoBuf {
    /// Takes over the vector's allocation without copying.
    fn from(vec: Vec<u8>) -> Self {
        SharedIoBuf::from_vec(vec)
    }
}

impl PartialEq for SharedIoBuf {
    /// Buffers are equal when the bytes in view are.
    fn eq(&self, other: &SharedIoBuf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedIoBuf {}

impl PartialEq<[u8]> for SharedIoBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl fmt::Debug for SharedIoBuf {
    /// Shows the sizes, the storage kind and the reference count, never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedIoBuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .field("storage", &self.storage_kind())
            .field("refs", &self.ref_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iobuf::counter::thread_meter::ThreadCopyMeter;
    use alloc::format;
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicUsize, Ordering};

    fn shared(headroom: usize, bytes: &[u8], tailroom: usize) -> SharedIoBuf {
        let mut buf = IoBuf::with_headroom(headroom, bytes.len() + tailroom);
        buf.extend_from_slice(bytes);
        buf.freeze()
    }

    #[test]
    fn shared_buffers_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SharedIoBuf>();
    }

    #[test]
    fn freeze_and_clone_share_storage_without_copying() {
        let mut unique = IoBuf::with_capacity(16);
        unique.extend_from_slice(b"shared bytes");
        let address = unique.as_ptr();
        let meter = ThreadCopyMeter::start();
        let first = unique.freeze();
        let second = first.clone();
        assert_eq!(meter.bytes(), 0);
        assert_eq!((first.as_ptr(), second.as_ptr()), (address, address));
        assert_eq!(first.ref_count(), Some(2));
        assert_eq!(second.as_slice(), b"shared bytes");
        drop(first);
        assert_eq!(second.ref_count(), Some(1));
    }

    #[test]
    fn sole_buffer_becomes_unique_for_free() {
        let buf = shared(4, b"abc", 2);
        let address = buf.as_ptr();
        let meter = ThreadCopyMeter::start();
        let mut unique = buf.try_into_unique().expect("the only buffer");
        assert_eq!(meter.bytes(), 0);
        assert_eq!(unique.as_ptr(), address);
        assert_eq!((unique.headroom(), unique.tailroom()), (4, 2));
        unique.as_mut_slice()[0] = b'A';
        assert_eq!(unique.as_slice(), b"Abc");
    }

    #[test]
    fn buffer_with_clones_copies_to_become_unique() {
        let buf = shared(4, b"abc", 2);
        let clone = buf.clone();
        let buf = buf.try_into_unique().expect_err("a clone is alive");
        let meter = ThreadCopyMeter::start();
        let mut unique = buf.into_unique();
        assert_eq!(meter.bytes(), 3);
        assert_ne!(unique.as_ptr(), clone.as_ptr());
        assert_eq!((unique.headroom(), unique.tailroom()), (4, 2));
        unique.as_mut_slice().fill(b'z');
        assert_eq!(clone.as_slice(), b"abc", "the clone is untouched by the copy's writes");
    }

    #[test]
    fn split_sibling_keeps_a_half_from_becoming_unique() {
        let mut back = shared(0, b"headbody", 0);
        let front = back.split_to(4);
        let back = back.try_into_unique().expect_err("the front half still holds the storage");
        drop(front);
        assert!(back.try_into_unique().is_ok());
    }

    #[test]
    fn static_bytes_allocate_nothing_and_copy_to_become_unique() {
        static GREETING: &[u8] = b"HTTP/1.1 200 OK\r\n";
        let mut buf = SharedIoBuf::from_static(GREETING);
        assert_eq!((buf.as_ptr(), buf.storage_kind()), (GREETING.as_ptr(), StorageKind::Unowned));
        assert_eq!(buf.ref_count(), None);
        let clone = buf.clone();
        assert_eq!(clone.as_ptr(), GREETING.as_ptr());
        let status = buf.split_off(9);
        assert_eq!((buf.as_slice(), status.as_slice()), (&b"HTTP/1.1 "[..], &b"200 OK\r\n"[..]));
        let meter = ThreadCopyMeter::start();
        let unique = clone.into_unique();
        assert_eq!(meter.bytes(), GREETING.len() as u64);
        assert_eq!(unique.as_slice(), GREETING);
        let empty = SharedIoBuf::from_static(b"").try_into_unique().expect("nothing to alias");
        assert!(empty.is_empty());
    }

    #[test]
    fn split_advance_retreat_and_trim_on_shared_buffers() {
        let mut buf = shared(2, b"0123456789", 2);
        let meter = ThreadCopyMeter::start();
        buf.advance(2);
        assert_eq!((buf.as_slice(), buf.headroom()), (&b"23456789"[..], 4));
        buf.retreat(2).expect("4 bytes of headroom");
        assert_eq!(buf.as_slice(), b"0123456789");
        assert_eq!(buf.retreat(3), Err(NotEnoughRoom { requested: 3, available: 2 }));
        buf.trim_end(2);
        assert_eq!((buf.as_slice(), buf.tailroom()), (&b"01234567"[..], 4));
        buf.truncate(5);
        let front = buf.split_to(2);
        let back = buf.split_off(1);
        assert_eq!(meter.bytes(), 0);
        let parts = (front.as_slice(), buf.as_slice(), back.as_slice());
        assert_eq!(parts, (&b"01"[..], &b"2"[..], &b"34"[..]));
        assert_eq!((front.headroom(), front.tailroom()), (2, 0));
        assert_eq!((back.headroom(), back.tailroom()), (0, 7));
    }

    #[test]
    fn shared_halves_join_back() {
        let mut buf = shared(0, b"abcdef", 0);
        let address = buf.as_ptr();
        let back = buf.split_off(2);
        buf.try_join(back).expect("adjacent halves");
        assert_eq!((buf.as_ptr(), buf.as_slice()), (address, &b"abcdef"[..]));
        assert_eq!(buf.ref_count(), Some(1));
        let mut greeting = SharedIoBuf::from_static(b"hello");
        let tail = greeting.split_off(2);
        assert!(greeting.try_join(tail).is_err(), "unowned storage never joins");
    }

    #[test]
    fn read_only_external_memory_is_released_once_and_never_made_unique_in_place() {
        static PAGE: [u8; 16] = [9; 16];
        static RELEASES: AtomicUsize = AtomicUsize::new(0);
        let base = NonNull::from(&PAGE).cast::<u8>();
        // SAFETY: a static is valid, initialized and never written.
        let buf = unsafe {
            SharedIoBuf::from_external(base, 16, 4..12, |_, capacity| {
                assert_eq!(capacity, 16);
                RELEASES.fetch_add(1, Ordering::SeqCst);
            })
        };
        assert_eq!((buf.len(), buf.headroom(), buf.tailroom()), (8, 4, 4));
        assert_eq!(buf.storage_kind(), StorageKind::External);
        let buf = buf.try_into_unique().expect_err("read-only memory cannot become unique");
        let unique = buf.into_unique();
        assert_eq!(unique.storage_kind(), StorageKind::Heap);
        assert_eq!(RELEASES.load(Ordering::SeqCst), 1);
        assert_eq!(unique.as_slice(), &[9; 8]);
    }

    #[test]
    fn release_hook_runs_once_across_many_clones() {
        let releases = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&releases);
        let mut vec = alloc::vec![1u8; 10];
        let base = NonNull::new(vec.as_mut_ptr()).expect("vec pointer");
        // SAFETY: `vec` outlives every buffer below and is not touched meanwhile.
        let buf = unsafe {
            SharedIoBuf::from_external(base, 10, 0..10, move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
        };
        let clones: Vec<SharedIoBuf> = (0..100).map(|_| buf.clone()).collect();
        drop(buf);
        assert_eq!(releases.load(Ordering::SeqCst), 0);
        drop(clones);
        assert_eq!(releases.load(Ordering::SeqCst), 1);
        drop(vec);
    }

    #[test]
    fn debug_shows_sizes_and_refs_not_bytes() {
        let buf = shared(1, &[7; 4096], 0);
        let _clone = buf.clone();
        assert_eq!(
            format!("{buf:?}"),
            "SharedIoBuf { len: 4096, headroom: 1, tailroom: 0, storage: Heap, refs: Some(2) }"
        );
    }

    #[test]
    fn to_vec_counts_and_equality_compares_bytes() {
        let buf = SharedIoBuf::from_static(b"xyz");
        let meter = ThreadCopyMeter::start();
        assert_eq!(buf.to_vec(), b"xyz");
        assert_eq!(meter.bytes(), 3);
        assert_eq!(buf, shared(3, b"xyz", 0));
        assert_eq!(&buf, &b"xyz"[..]);
        assert_eq!(SharedIoBuf::default(), SharedIoBuf::new());
    }
}
