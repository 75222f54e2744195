//! The storage under IOBufs: control blocks with the reference count, the three storage kinds,
//! and [`Region`], the raw view that both buffer types are built on.
//!
//! EbbRT's IOBuf "manages ownership of a region of memory as well as a view of a part of it"
//! (paper, "Network Stack"). Here ownership is a reference-counted [`ControlBlock`] and the
//! view is a [`Region`]: the part of the storage one buffer may touch, plus the part of that it
//! currently shows.
//!
//! # Invariants every `Region` keeps
//!
//! 1. `base .. base + capacity` lies inside storage that stays valid and initialized for reads
//!    while the region's control block is alive (forever for unowned storage).
//! 2. `head + len <= capacity`.
//! 3. A region held by a unique buffer ([`super::IoBuf`]) overlaps no other live region, and its
//!    storage is writable. Splitting cuts the region at the split point, so the halves are
//!    disjoint; only a region that is the sole holder of its control block may be handed to a
//!    unique buffer by [`Region::is_sole_writable_owner`].
//!
//! The unsafe mutable accessors ([`Region::view_mut`], [`Region::tailroom_mut`]) rely on
//! invariant 3, which only `IoBuf` can promise.

use alloc::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use alloc::boxed::Box;
use core::ops::Range;
use core::ptr::NonNull;
use core::slice;
use core::sync::atomic::{fence, AtomicUsize, Ordering};

use super::counter::record_copy;
use super::error::NotEnoughRoom;

/// Where the bytes of a buffer live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// One heap allocation holding the reference count and the bytes together.
    Heap,
    /// Bytes no buffer owns or frees: `'static` data, or no bytes at all (an empty buffer that
    /// allocated nothing). Never written.
    Unowned,
    /// Memory lent by someone else (a device frame, a shared-memory ring slot, a `Vec`), given
    /// back through its release hook when the last buffer over it drops.
    External,
}

/// The most references one control block may have; beyond it a clone panics instead of letting
/// the count wrap (which would free storage still in use).
const MAX_REFS: usize = isize::MAX as usize;

/// The header of every owned storage: a reference count and how to give the storage back.
///
/// It is the first field of a `#[repr(C)]` block specific to the storage kind, so a pointer to
/// the block is a pointer to its control block and `release` can cast back.
#[repr(C)]
struct ControlBlock {
    /// Live regions over this storage, unique or shared.
    refs: AtomicUsize,
    /// Frees or returns the storage; called once, by whoever drops the last reference.
    release: unsafe fn(NonNull<ControlBlock>),
    /// Which kind of storage this block heads.
    kind: StorageKind,
    /// Whether the bytes may be written by a sole owner (false for read-only lent memory).
    writable: bool,
}

impl ControlBlock {
    fn new(release: unsafe fn(NonNull<ControlBlock>), kind: StorageKind, writable: bool) -> Self {
        ControlBlock { refs: AtomicUsize::new(1), release, kind, writable }
    }
}

/// Heap storage: the control block, then (in the same allocation) `capacity` bytes.
#[repr(C)]
struct HeapBlock {
    control: ControlBlock,
    capacity: usize,
}

/// Returns the layout of a heap block with `capacity` bytes and the offset of its first byte.
///
/// # Panics
///
/// If the total size overflows `isize`.
fn heap_layout(capacity: usize) -> (Layout, usize) {
    let bytes = Layout::array::<u8>(capacity).expect("IoBuf capacity overflows isize");
    let (layout, data_offset) =
        Layout::new::<HeapBlock>().extend(bytes).expect("IoBuf capacity overflows isize");
    (layout.pad_to_align(), data_offset)
}

/// The `release` of heap storage: frees the allocation.
///
/// # Safety
///
/// `control` heads a `HeapBlock` allocated by [`Region::heap`] whose last reference is gone.
unsafe fn release_heap(control: NonNull<ControlBlock>) {
    let block = control.cast::<HeapBlock>();
    // SAFETY: the caller guarantees `control` heads a live `HeapBlock`; nobody else holds a
    // reference to it any more.
    let capacity = unsafe { (*block.as_ptr()).capacity };
    let (layout, _) = heap_layout(capacity);
    // SAFETY: the block was allocated by `alloc_zeroed` with exactly this layout (the same
    // capacity gives the same layout), and it is freed once, by the last reference.
    unsafe { dealloc(block.as_ptr().cast::<u8>(), layout) };
}

/// External storage: the control block, the lent region and the hook that gives it back.
#[repr(C)]
struct ExternalBlock<F> {
    control: ControlBlock,
    base: NonNull<u8>,
    capacity: usize,
    release: F,
}

/// The `release` of external storage: frees the block and calls the lender's hook.
///
/// # Safety
///
/// `control` heads an `ExternalBlock<F>` boxed by [`Region::external`] (with this same `F`)
/// whose last reference is gone.
unsafe fn release_external<F: FnOnce(NonNull<u8>, usize)>(control: NonNull<ControlBlock>) {
    // SAFETY: the caller guarantees the block came from `Box::into_raw` of an
    // `ExternalBlock<F>` (`Region::external` stores `release_external::<F>` next to it) and that
    // this is the one and only release.
    let block = unsafe { Box::from_raw(control.cast::<ExternalBlock<F>>().as_ptr()) };
    let ExternalBlock { base, capacity, release, .. } = *block;
    release(base, capacity);
}

/// The part of some storage one buffer may touch (`base .. base + capacity`) and the part of
/// that it shows (`head .. head + len`), holding one reference to the storage.
///
/// See the module documentation for the invariants.
pub(crate) struct Region {
    base: NonNull<u8>,
    capacity: usize,
    head: usize,
    len: usize,
    block: Option<NonNull<ControlBlock>>,
}

impl Region {
    /// A region of no bytes that owns nothing.
    pub(crate) const fn empty() -> Self {
        Region { base: NonNull::dangling(), capacity: 0, head: 0, len: 0, block: None }
    }

    /// A fresh, zeroed heap region of `headroom + tailroom` bytes with an empty view after the
    /// headroom. Allocates nothing when both are zero.
    ///
    /// # Panics
    ///
    /// If the size overflows `isize`; calls the allocation error handler if memory runs out.
    pub(crate) fn heap(headroom: usize, tailroom: usize) -> Self {
        let capacity = headroom.checked_add(tailroom).expect("IoBuf capacity overflows usize");
        if capacity == 0 {
            return Region::empty();
        }
        let (layout, data_offset) = heap_layout(capacity);
        // SAFETY: `layout` has a non-zero size (it holds at least the `HeapBlock`).
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(raw) = NonNull::new(raw) else { handle_alloc_error(layout) };
        let block = raw.cast::<HeapBlock>();
        // SAFETY: `raw` is a fresh allocation of `layout`, which starts with a `HeapBlock` and is
        // aligned for it.
        unsafe {
            block.as_ptr().write(HeapBlock {
                control: ControlBlock::new(release_heap, StorageKind::Heap, true),
                capacity,
            });
        }
        // SAFETY: `data_offset + capacity <= layout.size()`, so the result stays inside the
        // allocation; the bytes there were zeroed, hence initialized (invariant 1).
        let base = unsafe { raw.add(data_offset) };
        Region { base, capacity, head: headroom, len: 0, block: Some(block.cast()) }
    }

    /// A fresh heap region holding a copy of `bytes`, all in view, with `headroom` bytes before
    /// them and `tailroom` after; the copy is counted.
    ///
    /// # Panics
    ///
    /// As for [`Region::heap`].
    pub(crate) fn heap_copy_of(headroom: usize, bytes: &[u8], tailroom: usize) -> Self {
        let room_after = bytes.len().checked_add(tailroom).expect("IoBuf capacity overflows usize");
        let mut region = Region::heap(headroom, room_after);
        region.len = bytes.len();
        // SAFETY: the region was just allocated, so nothing else can reach it, and heap storage
        // is writable.
        unsafe { region.view_mut() }.copy_from_slice(bytes);
        record_copy(bytes.len());
        region
    }

    /// A region over `'static` bytes, all of them in view, with no headroom or tailroom.
    pub(crate) fn from_static(bytes: &'static [u8]) -> Self {
        Region {
            base: NonNull::from(bytes).cast::<u8>(),
            capacity: bytes.len(),
            head: 0,
            len: bytes.len(),
            block: None,
        }
    }

    /// A region over lent memory `base .. base + capacity` showing `view`, which calls
    /// `release(base, capacity)` when its last reference drops.
    ///
    /// # Safety
    ///
    /// From now until `release` is called, `base .. base + capacity` must be valid for reads
    /// (and for writes when `writable`), initialized, and touched by nobody but the buffers over
    /// this region.
    ///
    /// # Panics
    ///
    /// If `view` does not lie within `0 .. capacity` (the hook is then dropped uncalled).
    pub(crate) unsafe fn external<F>(
        base: NonNull<u8>,
        capacity: usize,
        view: Range<usize>,
        writable: bool,
        release: F,
    ) -> Self
    where
        F: FnOnce(NonNull<u8>, usize) + Send + 'static,
    {
        assert!(
            view.start <= view.end && view.end <= capacity,
            "IoBuf view {view:?} is not within the lent region of {capacity} bytes"
        );
        let block = Box::new(ExternalBlock {
            control: ControlBlock::new(release_external::<F>, StorageKind::External, writable),
            base,
            capacity,
            release,
        });
        // SAFETY: `Box::into_raw` never returns null.
        let block = unsafe { NonNull::new_unchecked(Box::into_raw(block)) };
        Region {
            base,
            capacity,
            head: view.start,
            len: view.end - view.start,
            block: Some(block.cast()),
        }
    }

    fn control(&self) -> Option<&ControlBlock> {
        // SAFETY: this region holds a reference, so the control block is alive; only its atomic
        // count is ever mutated while references exist, so a shared borrow is sound.
        self.block.map(|block| unsafe { &*block.as_ptr() })
    }

    /// Takes one more reference to the storage (for a new region over it).
    fn retain(&self) {
        if let Some(control) = self.control() {
            // Relaxed suffices: the new reference is made from an existing one, which keeps the
            // storage alive meanwhile (the same reasoning as `Arc::clone`).
            let previous = control.refs.fetch_add(1, Ordering::Relaxed);
            assert!(previous < MAX_REFS, "IoBuf reference count overflow");
        }
    }

    /// The kind of storage under this region.
    pub(crate) fn kind(&self) -> StorageKind {
        self.control().map_or(StorageKind::Unowned, |control| control.kind)
    }

    /// How many regions share this storage (`None` for unowned storage, which is not counted).
    pub(crate) fn ref_count(&self) -> Option<usize> {
        self.control().map(|control| control.refs.load(Ordering::Acquire))
    }

    /// Whether this region may become (or stay) a unique buffer's: it is the only reference to
    /// writable storage, or it has no bytes at all to alias.
    pub(crate) fn is_sole_writable_owner(&self) -> bool {
        if self.capacity == 0 {
            return true;
        }
        // Acquire pairs with the Release decrement of every other reference that has dropped,
        // so whatever those buffers did happens before this one writes.
        self.control()
            .is_some_and(|control| control.writable && control.refs.load(Ordering::Acquire) == 1)
    }

    /// Another region with the same bounds over the same storage. Sound only for shared
    /// buffers: the copy aliases this region.
    pub(crate) fn clone_for_sharing(&self) -> Self {
        self.retain();
        Region {
            base: self.base,
            capacity: self.capacity,
            head: self.head,
            len: self.len,
            block: self.block,
        }
    }

    /// Bytes in view.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the region before the view.
    pub(crate) fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes of the region after the view.
    pub(crate) fn tailroom(&self) -> usize {
        self.capacity - self.head - self.len
    }

    /// The address of the first byte in view.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        // SAFETY: `head <= capacity`, so this stays within (or one past) the region.
        unsafe { self.base.as_ptr().add(self.head) }
    }

    /// The bytes in view.
    pub(crate) fn view(&self) -> &[u8] {
        // SAFETY: the view lies within the region (invariant 2), whose bytes are valid and
        // initialized (invariant 1); no unique buffer can write them meanwhile, because a unique
        // region overlaps no other (invariant 3) and this `&self` borrow stops this region's own
        // unique owner from writing.
        unsafe { slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// The bytes in view, writable.
    ///
    /// # Safety
    ///
    /// The caller is a unique buffer: this region overlaps no other live region and its storage
    /// is writable (invariant 3).
    pub(crate) unsafe fn view_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `view`, and the caller guarantees no other region can reach these bytes
        // and that they may be written; `&mut self` excludes other borrows of this region.
        unsafe { slice::from_raw_parts_mut(self.base.as_ptr().add(self.head), self.len) }
    }

    /// The tailroom bytes, writable.
    ///
    /// # Safety
    ///
    /// As for [`Region::view_mut`].
    pub(crate) unsafe fn tailroom_mut(&mut self) -> &mut [u8] {
        let end = self.head + self.len;
        // SAFETY: `end .. capacity` lies within the region; the caller guarantees exclusivity and
        // writability as for `view_mut`.
        unsafe { slice::from_raw_parts_mut(self.base.as_ptr().add(end), self.capacity - end) }
    }

    /// Drops the first `n` bytes of the view into the headroom.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the view.
    pub(crate) fn advance(&mut self, n: usize) {
        assert!(n <= self.len, "cannot advance {n} bytes past a view of {}", self.len);
        self.head += n;
        self.len -= n;
    }

    /// Grows the view `n` bytes back into the headroom.
    pub(crate) fn retreat(&mut self, n: usize) -> Result<(), NotEnoughRoom> {
        if n > self.head {
            return Err(NotEnoughRoom { requested: n, available: self.head });
        }
        self.head -= n;
        self.len += n;
        Ok(())
    }

    /// Grows the view `n` bytes into the tailroom.
    pub(crate) fn claim_tailroom(&mut self, n: usize) -> Result<(), NotEnoughRoom> {
        let available = self.tailroom();
        if n > available {
            return Err(NotEnoughRoom { requested: n, available });
        }
        self.len += n;
        Ok(())
    }

    /// Shortens the view to `len` bytes (the rest becomes tailroom); no effect if it is shorter.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Cuts the region before view byte `at`: returns the front (its headroom, view bytes
    /// `..at`, no tailroom) and keeps the back (no headroom, view bytes `at..`, its tailroom).
    ///
    /// # Panics
    ///
    /// If `at` exceeds the view.
    pub(crate) fn split_to(&mut self, at: usize) -> Region {
        assert!(at <= self.len, "cannot split at {at} in a view of {}", self.len);
        let cut = self.head + at;
        self.retain();
        let front =
            Region { base: self.base, capacity: cut, head: self.head, len: at, block: self.block };
        // SAFETY: `cut <= capacity`, so the new base stays within (or one past) the region.
        self.base = unsafe { self.base.add(cut) };
        self.capacity -= cut;
        self.head = 0;
        self.len -= at;
        front
    }

    /// Cuts the region after view byte `at`: keeps the front and returns the back (see
    /// [`Region::split_to`]).
    ///
    /// # Panics
    ///
    /// If `at` exceeds the view.
    pub(crate) fn split_off(&mut self, at: usize) -> Region {
        let front = self.split_to(at);
        core::mem::replace(self, front)
    }

    /// Joins `back` onto the end of this region if the two were cut from one region and still
    /// meet at the cut (this one has no tailroom, `back` no headroom), or if `back` is an empty
    /// region with no room at all; otherwise hands `back` back unchanged. Unowned storage never joins: two `'static` slices that happen to be
    /// adjacent may be different objects.
    pub(crate) fn try_join(&mut self, back: Region) -> Result<(), Region> {
        if back.capacity == 0 {
            // Nothing to join (e.g. the empty back half of a buffer that never allocated):
            // dropping `back` releases whatever reference it held.
            return Ok(());
        }
        let meets = self.block.is_some()
            && self.block == back.block
            && self.tailroom() == 0
            && back.head == 0
            && self.base.as_ptr().wrapping_add(self.capacity) == back.base.as_ptr();
        if !meets {
            return Err(back);
        }
        self.capacity += back.capacity;
        self.len += back.len;
        // `back`'s reference is released by its drop; this region keeps its own.
        Ok(())
    }
}

impl core::fmt::Debug for Region {
    /// Shows the sizes and the storage kind, never the bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Region")
            .field("headroom", &self.headroom())
            .field("len", &self.len)
            .field("tailroom", &self.tailroom())
            .field("storage", &self.kind())
            .finish()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let Some(block) = self.block else { return };
        let Some(control) = self.control() else { return };
        // Release publishes this region's use of the storage to whoever releases it; the last
        // one acquires all of them before handing the storage back (the `Arc` protocol).
        if control.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let release = control.release;
        // SAFETY: this was the last reference, so nobody else can reach the storage; `release`
        // was stored with the block by the constructor of its kind and matches it.
        unsafe { release(block) };
    }
}

// SAFETY: a region is a pointer into storage kept alive by an atomic reference count; moving it
// to another thread moves that reference. Its storage's release hook is `Send` (required by
// `Region::external`), and heap storage is freed with the global allocator, which any thread may
// use.
unsafe impl Send for Region {}

// SAFETY: through `&Region` one can only read the view and the atomic count; writes need `&mut`
// and invariant 3.
unsafe impl Sync for Region {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::AtomicUsize;

    #[test]
    fn heap_region_starts_zeroed_with_its_headroom() {
        let mut region = Region::heap(16, 48);
        assert_eq!((region.headroom(), region.len(), region.tailroom()), (16, 0, 48));
        assert_eq!(region.kind(), StorageKind::Heap);
        assert_eq!(region.ref_count(), Some(1));
        assert!(region.is_sole_writable_owner());
        region.retreat(16).expect("16 bytes of headroom");
        region.claim_tailroom(48).expect("48 bytes of tailroom");
        assert!(region.view().iter().all(|&byte| byte == 0));
    }

    #[test]
    fn zero_sized_heap_region_allocates_nothing() {
        let region = Region::heap(0, 0);
        assert_eq!(region.kind(), StorageKind::Unowned);
        assert_eq!(region.ref_count(), None);
    }

    #[test]
    fn static_region_is_unowned_and_not_writable() {
        let region = Region::from_static(b"abc");
        assert_eq!(region.view(), b"abc");
        assert_eq!(region.kind(), StorageKind::Unowned);
        assert!(!region.is_sole_writable_owner());
    }

    #[test]
    fn split_regions_share_the_count_and_release_once() {
        let released = Arc::new(AtomicUsize::new(0));
        let mut memory = [7u8; 32];
        let base = NonNull::from(&mut memory).cast::<u8>();
        let hook_count = Arc::clone(&released);
        // SAFETY: `memory` outlives the regions (all dropped below) and nothing else touches it.
        let mut back = unsafe {
            Region::external(base, 32, 4..20, true, move |_, _| {
                hook_count.fetch_add(1, Ordering::SeqCst);
            })
        };
        let front = back.split_to(6);
        assert_eq!(back.ref_count(), Some(2));
        assert!(!back.is_sole_writable_owner());
        assert_eq!((front.headroom(), front.len(), front.tailroom()), (4, 6, 0));
        assert_eq!((back.headroom(), back.len(), back.tailroom()), (0, 10, 12));
        drop(front);
        assert_eq!(released.load(Ordering::SeqCst), 0);
        assert!(back.is_sole_writable_owner());
        drop(back);
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn read_only_external_region_is_never_writable() {
        static BYTES: [u8; 4] = [1, 2, 3, 4];
        let base = NonNull::from(&BYTES).cast::<u8>();
        // SAFETY: the static is valid for reads forever and the region is read-only.
        let region = unsafe { Region::external(base, 4, 0..4, false, |_, _| {}) };
        assert_eq!(region.view(), &[1, 2, 3, 4]);
        assert_eq!(region.ref_count(), Some(1));
        assert!(!region.is_sole_writable_owner());
    }

    #[test]
    fn try_join_refuses_unowned_and_non_adjacent_regions() {
        static BYTES: [u8; 8] = *b"abcdefgh";
        let mut front = Region::from_static(&BYTES);
        let back = front.split_off(3);
        assert!(front.try_join(back).is_err());

        let mut first = Region::heap(0, 8);
        first.claim_tailroom(8).expect("8 bytes of tailroom");
        let mut second = first.split_off(4);
        let third = second.split_off(2);
        // `first` ends where `second` starts, not where `third` does.
        let third = first.try_join(third).expect_err("not adjacent");
        first.try_join(second).expect("adjacent halves join");
        first.try_join(third).expect("adjacent halves join");
        assert_eq!((first.len(), first.ref_count()), (8, Some(1)));
    }
}
