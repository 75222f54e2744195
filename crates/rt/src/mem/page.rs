//! The page allocator: buddy regions behind one lock, grown from a [`PageSource`].
//!
//! EbbRT's PageAllocator Ebb (OSDI 2016, "Memory Management") is a buddy allocator per NUMA
//! node. cairn's [`PageAllocator`] is one set of [`BuddyAllocator`] regions: a request tries each
//! region, newest first, and when none has a block of the order asked for it asks its
//! [`PageSource`] for another region (64 MiB by default, aligned to the largest block so every
//! part of it is a maximal block). Each region's bookkeeping lives in the region: the buddy
//! allocator's metadata bytes at its start, and the node that links regions together in one
//! order-0 block taken from the region itself, so the page allocator needs no heap.
//!
//! It is called by the slab layer when a cache needs a new slab or gives an empty one back, and
//! by the general allocator for requests above the largest slab size class, never on a fast
//! path, so a spin lock is enough.
//!
//! Regions are tried oldest first, and a new region goes last. A process's pages stay resident
//! once touched (regions are never returned), so what matters is how far into its regions the
//! allocator reaches: trying the oldest first keeps reusing what is already resident and
//! touches a newer region only as far as the older ones cannot serve. Newest first, a second
//! region taken in a burst became the one every later block came from, the first one's freed
//! blocks waited behind it, and both ended up resident.

use core::ptr::{self, NonNull};

use super::{BuddyAllocator, PageSource, MAX_BLOCK_BYTES, MAX_ORDER, PAGE_SIZE};

/// The default size of a region asked from the page source.
pub const DEFAULT_REGION_BYTES: usize = 64 << 20;

/// One region: its buddy allocator and the link to the next region. Lives in the region.
struct Region {
    buddy: BuddyAllocator,
    next: *mut Region,
    start: NonNull<u8>,
    len: usize,
}

/// The list of regions (guarded by the allocator's lock).
struct Regions {
    head: *mut Region,
}

// SAFETY: the regions are owned by the page allocator and only reached through its lock.
unsafe impl Send for Regions {}

/// Power-of-two blocks of pages from a growing set of buddy regions. See the
/// [module docs](self).
pub struct PageAllocator<S: PageSource> {
    source: S,
    /// Bytes asked of the source per region; 0 means [`DEFAULT_REGION_BYTES`] (so that a
    /// default allocator is all zeroes and a `static` of it costs no file space).
    region_bytes: usize,
    regions: spin::Mutex<Regions>,
}

impl<S: PageSource> PageAllocator<S> {
    /// A page allocator with no regions yet, growing by [`DEFAULT_REGION_BYTES`] at a time.
    pub const fn new(source: S) -> Self {
        PageAllocator {
            source,
            region_bytes: 0,
            regions: spin::Mutex::new(Regions { head: ptr::null_mut() }),
        }
    }

    /// A page allocator that grows by `region_bytes` at a time (rounded up to at least two
    /// maximal blocks, so that a new region always holds a block of every order).
    pub const fn with_region_bytes(source: S, region_bytes: usize) -> Self {
        let min = 2 * MAX_BLOCK_BYTES;
        PageAllocator {
            source,
            region_bytes: if region_bytes < min { min } else { region_bytes },
            regions: spin::Mutex::new(Regions { head: ptr::null_mut() }),
        }
    }

    /// The source this allocator grows from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Allocates a block of `2^order` pages aligned to its size, growing by a region when
    /// needed; `None` if `order > MAX_ORDER` or the source is exhausted.
    pub fn alloc(&self, order: usize) -> Option<NonNull<u8>> {
        if order > MAX_ORDER {
            return None;
        }
        let mut regions = self.regions.lock();
        let mut r = regions.head;
        while !r.is_null() {
            // SAFETY: every node on the list is a live region node, reached under the lock.
            let region = unsafe { &mut *r };
            if let Some(p) = region.buddy.alloc(order) {
                return Some(p);
            }
            r = region.next;
        }
        let bytes = if self.region_bytes == 0 { DEFAULT_REGION_BYTES } else { self.region_bytes };
        let (start, len) = self.source.grow(bytes, MAX_BLOCK_BYTES)?;
        // SAFETY: the source hands the region to us alone (`PageSource`'s contract).
        let mut buddy = unsafe { BuddyAllocator::new(start, len) };
        let node = match buddy.alloc(0) {
            Some(n) => n.cast::<Region>(),
            None => {
                // Too small to hold anything: give it back (or leave it) and fail.
                // SAFETY: exactly what `grow` returned, unused.
                unsafe { self.source.release(start, len) };
                return None;
            }
        };
        let block = buddy.alloc(order);
        // SAFETY: `node` is a fresh page of the region, large and aligned enough for a
        // `Region`, owned by the allocator from now on.
        unsafe { node.as_ptr().write(Region { buddy, next: ptr::null_mut(), start, len }) };
        // Oldest region first: new regions go last, so the first ones are reused before it.
        let mut link = &mut regions.head;
        // SAFETY: every node on the list is a live region node, reached under the lock.
        while let Some(region) = unsafe { link.as_mut() } {
            link = &mut region.next;
        }
        *link = node.as_ptr();
        block
    }

    /// Gives back a block from [`alloc`](Self::alloc).
    ///
    /// # Safety
    ///
    /// `ptr` must come from `alloc(order)` on this allocator with the same `order`, and must not
    /// be used afterwards nor freed twice.
    pub unsafe fn free(&self, ptr: NonNull<u8>, order: usize) {
        let regions = self.regions.lock();
        let mut r = regions.head;
        while !r.is_null() {
            // SAFETY: a live region node, reached under the lock.
            let region = unsafe { &mut *r };
            if region.buddy.contains(ptr) {
                // SAFETY: forwarded contract; the block is in this region.
                unsafe { region.buddy.free(ptr, order) };
                return;
            }
            r = region.next;
        }
        debug_assert!(false, "PageAllocator::free of a block it never handed out");
    }

    /// Free pages over all regions.
    pub fn free_pages(&self) -> usize {
        self.fold(0, |acc, b| acc + b.free_pages())
    }

    /// Pages managed over all regions (free or in use, including each region's node page).
    pub fn managed_pages(&self) -> usize {
        self.fold(0, |acc, b| acc + b.managed_pages())
    }

    /// Number of regions taken from the source so far.
    pub fn region_count(&self) -> usize {
        self.fold(0, |acc, _| acc + 1)
    }

    fn fold(&self, init: usize, f: impl Fn(usize, &BuddyAllocator) -> usize) -> usize {
        let regions = self.regions.lock();
        let mut acc = init;
        let mut r = regions.head;
        while !r.is_null() {
            // SAFETY: a live region node, reached under the lock.
            let region = unsafe { &*r };
            acc = f(acc, &region.buddy);
            r = region.next;
        }
        acc
    }
}

impl<S: PageSource> Drop for PageAllocator<S> {
    /// Gives every region back to the source. Blocks still handed out die with it.
    fn drop(&mut self) {
        let mut r = self.regions.get_mut().head;
        while !r.is_null() {
            // SAFETY: a live region node; we read it out before its memory goes away.
            let Region { next, start, len, .. } = unsafe { r.read() };
            // SAFETY: `(start, len)` is what `grow` returned, and nothing of the allocator
            // uses the region any more.
            unsafe { self.source.release(start, len) };
            r = next;
        }
    }
}

const _: () = assert!(core::mem::size_of::<Region>() <= PAGE_SIZE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::test_source::HeapPages;
    use std::vec::Vec;

    #[test]
    fn grows_by_regions_and_gives_them_back() {
        let pages = PageAllocator::with_region_bytes(HeapPages::default(), 0);
        assert_eq!(pages.region_count(), 0);
        let mut blocks = Vec::new();
        // Each region is 8 MiB: its first 4 MiB lose a page to the metadata (and one to the
        // node), so it holds one 4 MiB block, and four 4 MiB blocks need four regions.
        for _ in 0..4 {
            let b = pages.alloc(MAX_ORDER).unwrap();
            assert_eq!(b.as_ptr() as usize % MAX_BLOCK_BYTES, 0);
            blocks.push(b);
        }
        assert_eq!(pages.region_count(), 4);
        let small = pages.alloc(0).unwrap();
        let free_before = pages.free_pages();
        // SAFETY: blocks from `alloc` with these orders, freed once.
        unsafe {
            pages.free(small, 0);
            for b in blocks {
                pages.free(b, MAX_ORDER);
            }
        }
        assert_eq!(pages.free_pages(), free_before + 1 + 4 * (1 << MAX_ORDER));
        // One page per region holds its node.
        assert_eq!(pages.free_pages() + pages.region_count(), pages.managed_pages());
        assert!(pages.alloc(MAX_ORDER + 1).is_none());
        let grown = pages.source().grows.load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!(grown, pages.region_count());
        let source_outstanding = pages.source().outstanding();
        assert_eq!(source_outstanding, grown);
    }

    #[test]
    fn drop_releases_every_region() {
        let source = HeapPages::default();
        {
            // The allocator borrows the source so the test can look at it after the drop.
            struct Borrowed<'a>(&'a HeapPages);
            // SAFETY: forwards to a valid source.
            unsafe impl PageSource for Borrowed<'_> {
                fn grow(&self, min: usize, align: usize) -> Option<(NonNull<u8>, usize)> {
                    self.0.grow(min, align)
                }
                unsafe fn release(&self, start: NonNull<u8>, len: usize) -> bool {
                    // SAFETY: forwarded contract.
                    unsafe { self.0.release(start, len) }
                }
            }
            let pages = PageAllocator::with_region_bytes(Borrowed(&source), 0);
            for _ in 0..3 {
                pages.alloc(MAX_ORDER).unwrap();
            }
            assert!(source.outstanding() >= 2);
        }
        assert_eq!(source.outstanding(), 0);
    }
}
