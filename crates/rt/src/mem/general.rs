//! The general-purpose allocator: size classes over per-core slab caches, larger requests by
//! page order, and a [`GlobalAlloc`] implementation.
//!
//! EbbRT's GeneralPurposeAllocator (OSDI 2016, "Memory Management", Figure 2) is a set of slab
//! allocators, one per size class, over the page allocator; allocation is served from per-core
//! caches without synchronization, which is what lets it scale in the paper's threadtest
//! ("Memory Allocation"). cairn's [`GeneralAllocator`] is the same, and can be installed as a
//! Rust program's `#[global_allocator]` (`cairn_hosted::pages::HostedAllocator` does that over
//! `mmap`).
//!
//! # Routing
//!
//! A request of `size` bytes aligned to `align` is first rounded up to a multiple of `align`:
//!
//! - up to [`MAX_SMALL`] (32 KiB), with `align` up to a page: a **size class**, served by the
//!   calling core's [`SlabCache`] for that class;
//! - up to [`MAX_BLOCK_BYTES`](super::MAX_BLOCK_BYTES) (4 MiB): a **buddy block** of
//!   `2^order` pages from the [`PageAllocator`], which is aligned to its size, so any alignment
//!   up to the block size holds;
//! - anything larger (or aligned more than 4 MiB): a **huge** region straight from the
//!   [`PageSource`], given back with [`PageSource::release`] when freed. Its length is kept in
//!   an 8-byte trailer just past the object.
//!
//! `dealloc` and `realloc` get the same layout, so they route the same way without any lookup.
//!
//! # Size classes, and why
//!
//! 8, 16, 24, 32, then every 16 bytes to 128, then four classes per power of two (160, 192,
//! 224, 256, 320, ..., 28 KiB, 32 KiB): [`NUM_CLASSES`] = 42 classes. Four per doubling bounds
//! the space lost to rounding at 25% of the block above 128 bytes (less below, where the small
//! classes are packed tighter because small objects are the most numerous), as jemalloc and
//! mimalloc do, while keeping the number of caches small: a core's caches for all classes are 42
//! cache lines. Every class is a multiple of each power of two it is rounded up from, so a class
//! object is aligned to the request's alignment (up to a page) without per-object padding: the
//! slab layer aligns objects to the largest power of two dividing the class size.
//!
//! # Overhead
//!
//! - Per slab: a 64-byte header (slabs are at least 64 KiB: under 0.1%), plus, for classes
//!   aligned to a page (4, 8, 12, ... KiB), the first page of the slab: at most 1/16.
//! - Per core: 42 [`SlabCache`]s of 64 bytes; each keeps its current slab and up to two empty
//!   slabs before it gives slabs back to the page allocator.
//! - Buddy blocks: up to half the block is unused for a request just over a power of two pages.
//! - Huge regions: rounded up to a page, with the 8-byte trailer.
//!
//! # Fast path
//!
//! An allocation on a core thread of a small size is: round the size, look its class up in a
//! table, one thread-pointer-relative load for the core id, and a pop from that core's free
//! list (or a bump of its current slab). A free is the same, plus a load of the slab header's
//! owner (found by masking the address) when the object is not in the current slab. Neither
//! takes a lock or an atomic instruction. Frees from another core are pushed to the owner's
//! remote list with one compare-and-swap.
//!
//! # Threads that are not cores
//!
//! A thread that is not a cairn core (std's threads, a test harness, `main` before the runtime
//! starts) uses one of [`FALLBACK_SLOTS`](super::slab::FALLBACK_SLOTS) caches, each behind a spin
//! lock; it prefers the slot its stack hashes to. Objects move freely between cores and other
//! threads: a free always reaches the cache that owns the object.
//!
//! EbbRT makes its allocators Ebbs. cairn's per-core caches are the same per-core
//! representatives, indexed directly by core id rather than reached through the Ebb translation
//! table: the global allocator must work before any Ebb exists, and a translation miss would
//! build a representative by allocating, which here would recurse.
//!
//! At most one thread may act as a given core at a time, which the platforms guarantee (and
//! tests that use [`CoreGuard`](crate::percore::CoreGuard) must).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use super::slab::{current_owner, owner_of, FallbackLocks, OWNERS};
use super::{
    align_up, order_for_bytes, PageAllocator, PageSource, SlabCache, SlabClass, MAX_ORDER,
    PAGE_SIZE,
};
use crate::percore::MAX_CORES;

/// The largest request (after rounding up to its alignment) served by a size class.
pub const MAX_SMALL: usize = 32 << 10;

/// Number of size classes.
pub const NUM_CLASSES: usize = 42;

/// Index of the first class above 1 KiB (1280 B); classes from here on are four per power of
/// two and computed rather than looked up.
const FIRST_COMPUTED_CLASS: usize = 22;

/// The size of every class, ascending.
pub const CLASS_SIZES: [usize; NUM_CLASSES] = class_sizes();

const fn class_sizes() -> [usize; NUM_CLASSES] {
    let mut sizes = [0; NUM_CLASSES];
    let mut i = 0;
    let mut x = 8;
    while x <= 32 {
        sizes[i] = x;
        i += 1;
        x += 8;
    }
    x = 48;
    while x <= 128 {
        sizes[i] = x;
        i += 1;
        x += 16;
    }
    let mut p = 128;
    while p < MAX_SMALL {
        let mut k = 1;
        while k <= 4 {
            sizes[i] = p + k * (p / 4);
            i += 1;
            k += 1;
        }
        p *= 2;
    }
    assert!(i == NUM_CLASSES && sizes[FIRST_COMPUTED_CLASS] == 1280);
    sizes
}

/// The slab layout of every class: objects aligned to the largest power of two dividing the
/// class size, up to a page.
static CLASSES: [SlabClass; NUM_CLASSES] = class_layouts();

const fn class_layouts() -> [SlabClass; NUM_CLASSES] {
    let mut classes = [SlabClass::new(8, 8); NUM_CLASSES];
    let mut i = 0;
    while i < NUM_CLASSES {
        let size = CLASS_SIZES[i];
        let low_bit = size & size.wrapping_neg();
        let align = if low_bit < PAGE_SIZE { low_bit } else { PAGE_SIZE };
        classes[i] = SlabClass::new(size, align);
        assert!(classes[i].object_size() == size);
        i += 1;
    }
    classes
}

/// For requests up to 1 KiB: `SMALL_INDEX[(size + 7) / 8]` is the class index.
static SMALL_INDEX: [u8; 129] = small_index();

const fn small_index() -> [u8; 129] {
    let mut table = [0u8; 129];
    let mut j = 0;
    let mut class = 0;
    while j <= 128 {
        while CLASS_SIZES[class] < j * 8 {
            class += 1;
        }
        table[j] = class as u8;
        j += 1;
    }
    table
}

/// The class of a request of `rounded` bytes (`rounded <= MAX_SMALL`).
#[inline(always)]
fn class_of(rounded: usize) -> usize {
    if rounded <= 1024 {
        SMALL_INDEX[(rounded + 7) >> 3] as usize
    } else {
        // 2^k < rounded <= 2^(k+1), k >= 10; four classes of 2^(k-2) bytes each.
        let k = (usize::BITS - 1 - (rounded - 1).leading_zeros()) as usize;
        FIRST_COMPUTED_CLASS + (k - 10) * 4 + ((rounded - 1 - (1 << k)) >> (k - 2))
    }
}

/// The size class a layout is served by, or `None` when it is larger than [`MAX_SMALL`] or
/// aligned to more than a page.
pub fn size_class(layout: Layout) -> Option<usize> {
    let rounded = align_up(layout.size(), layout.align());
    (rounded <= MAX_SMALL && layout.align() <= PAGE_SIZE).then(|| class_of(rounded))
}

/// How many bytes a block allocated with `layout` from a [`GeneralAllocator`] really has, at
/// least `layout.size()`: its size class, its buddy block, or (above 4 MiB) its size rounded to
/// 8 bytes, not counting the pages the huge region is rounded up to. Users that account their
/// memory (the cache's store charges each item this) call it to include the rounding.
pub fn usable_size(layout: Layout) -> usize {
    match size_class(layout) {
        Some(class) => CLASS_SIZES[class],
        None => match order_for_bytes(layout.size().max(layout.align())) {
            order if order <= MAX_ORDER => PAGE_SIZE << order,
            _ => align_up(layout.size(), 8),
        },
    }
}

/// A general-purpose allocator over a [`PageSource`]. See the [module docs](self).
///
/// Nothing it hands out points back into the allocator value (slab headers name their owner by
/// index), so it may be moved; dropping it gives its regions back to the source, so nothing it
/// handed out may be used afterwards. A global allocator is a `static` and is never dropped.
pub struct GeneralAllocator<S: PageSource> {
    /// `caches[owner][class]`: cores first, then the fallback slots.
    caches: [[SlabCache; NUM_CLASSES]; OWNERS],
    locks: FallbackLocks,
    pages: PageAllocator<S>,
}

impl<S: PageSource> GeneralAllocator<S> {
    /// An allocator that takes memory from `source` as it needs it (64 MiB regions). It is all
    /// zeroes when `S` is, so a `static` of it costs no file space.
    pub const fn new(source: S) -> Self {
        Self::from_pages(PageAllocator::new(source))
    }

    /// An allocator that grows by regions of `region_bytes` (see
    /// [`PageAllocator::with_region_bytes`]).
    pub const fn with_region_bytes(source: S, region_bytes: usize) -> Self {
        Self::from_pages(PageAllocator::with_region_bytes(source, region_bytes))
    }

    const fn from_pages(pages: PageAllocator<S>) -> Self {
        GeneralAllocator {
            caches: [const { [const { SlabCache::new() }; NUM_CLASSES] }; OWNERS],
            locks: FallbackLocks::new(),
            pages,
        }
    }

    /// The page allocator under the slab caches.
    pub fn pages(&self) -> &PageAllocator<S> {
        &self.pages
    }

    /// How many bytes a block allocated with `layout` really has (at least `layout.size()`):
    /// [`usable_size`].
    pub fn usable_size(layout: Layout) -> usize {
        usable_size(layout)
    }

    /// Allocation off the fast path: the calling thread is not a core.
    #[inline(never)]
    fn alloc_off_core(&self, class: usize) -> *mut u8 {
        let (owner, _guard) = self.locks.lock_any();
        // SAFETY: the slot's lock makes us the only user of its caches.
        unsafe { self.caches[owner][class].alloc(&CLASSES[class], owner as u16, &self.pages) }
    }

    /// A free off the fast path: the calling thread is not a core.
    ///
    /// # Safety
    ///
    /// `obj` is a live object of class `class` from this allocator.
    #[inline(never)]
    unsafe fn dealloc_off_core(&self, obj: NonNull<u8>, class: usize) {
        // SAFETY: the object is live, so its slab's owner is stable.
        let owner = unsafe { owner_of(obj, &CLASSES[class]) };
        let cache = &self.caches[owner][class];
        if owner >= MAX_CORES {
            let _guard = self.locks.lock(owner);
            // SAFETY: the slot's lock makes us its caches' only user, and it owns `obj`.
            let r = unsafe { cache.free(obj, &CLASSES[class], owner as u16, &self.pages) };
            debug_assert!(r.is_ok());
        } else {
            // SAFETY: core `owner`'s cache owns the object.
            unsafe { cache.free_remote(obj) };
        }
    }

    /// Requests above the size classes.
    #[inline(never)]
    fn alloc_large(&self, layout: Layout) -> *mut u8 {
        let order = order_for_bytes(layout.size().max(layout.align()));
        if order <= MAX_ORDER {
            return self.pages.alloc(order).map_or(ptr::null_mut(), NonNull::as_ptr);
        }
        // Huge: a region of its own, with its length in a trailer past the object.
        let trailer = align_up(layout.size(), 8);
        let Some(len) = trailer.checked_add(8 + PAGE_SIZE - 1) else {
            return ptr::null_mut();
        };
        let len = len & !(PAGE_SIZE - 1);
        let Some((start, got)) = self.pages.source().grow(len, layout.align().max(PAGE_SIZE))
        else {
            return ptr::null_mut();
        };
        // SAFETY: the region is at least `trailer + 8` bytes and ours; the trailer is 8-byte
        // aligned.
        unsafe { start.as_ptr().add(trailer).cast::<usize>().write(got) };
        start.as_ptr()
    }

    /// # Safety
    ///
    /// `ptr` came from `alloc_large(layout)`.
    #[inline(never)]
    unsafe fn dealloc_large(&self, ptr: *mut u8, layout: Layout) {
        let order = order_for_bytes(layout.size().max(layout.align()));
        // SAFETY: the caller's contract: a live block of ours.
        let p = unsafe { NonNull::new_unchecked(ptr) };
        if order <= MAX_ORDER {
            // SAFETY: the block came from `pages.alloc(order)`.
            unsafe { self.pages.free(p, order) };
        } else {
            // SAFETY: a huge region: its length is in the trailer written by `alloc_large`.
            unsafe {
                let got = ptr.add(align_up(layout.size(), 8)).cast::<usize>().read();
                self.pages.source().release(p, got);
            }
        }
    }

    /// `realloc` that cannot stay in place: allocate, copy, free.
    ///
    /// # Safety
    ///
    /// `GlobalAlloc::realloc`'s contract.
    #[inline(never)]
    unsafe fn realloc_move(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `realloc`'s contract makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (realloc's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

// SAFETY: blocks are disjoint (slab objects of one class never overlap and slabs, buddy blocks
// and huge regions are disjoint blocks of pages), sized and aligned as asked (see the module
// docs), and stay ours until freed. Nothing here allocates from the global allocator.
unsafe impl<S: PageSource> GlobalAlloc for GeneralAllocator<S> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let rounded = align_up(layout.size(), align);
        if rounded <= MAX_SMALL && align <= PAGE_SIZE {
            let class = class_of(rounded);
            if let Some(core) = current_owner() {
                // SAFETY: the calling thread is core `core`, the only user of its caches.
                return unsafe {
                    self.caches[core][class].alloc(&CLASSES[class], core as u16, &self.pages)
                };
            }
            return self.alloc_off_core(class);
        }
        self.alloc_large(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let align = layout.align();
        let rounded = align_up(layout.size(), align);
        if rounded <= MAX_SMALL && align <= PAGE_SIZE {
            let class = class_of(rounded);
            // SAFETY: `ptr` is a live block from `alloc` (GlobalAlloc's contract).
            let obj = unsafe { NonNull::new_unchecked(ptr) };
            if let Some(core) = current_owner() {
                let cache = &self.caches[core][class];
                // SAFETY: core `core` is the only user of its caches; `obj` is a live object
                // of class `class` (same layout as at allocation).
                let r = unsafe { cache.free(obj, &CLASSES[class], core as u16, &self.pages) };
                if let Err(owner) = r {
                    // SAFETY: the object belongs to that owner's cache of the same class.
                    unsafe { self.caches[owner as usize][class].free_remote(obj) };
                }
                return;
            }
            // SAFETY: forwarded contract.
            return unsafe { self.dealloc_off_core(obj, class) };
        }
        // SAFETY: same layout as at allocation, so it came from `alloc_large`.
        unsafe { self.dealloc_large(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let old = align_up(layout.size(), align);
        let new = align_up(new_size, align);
        let old_small = old <= MAX_SMALL && align <= PAGE_SIZE;
        let new_small = new <= MAX_SMALL && align <= PAGE_SIZE;
        if old_small && new_small {
            if class_of(old) == class_of(new) {
                return ptr;
            }
        } else if !old_small && !new_small {
            let old_order = order_for_bytes(layout.size().max(align));
            let new_order = order_for_bytes(new_size.max(align));
            if old_order == new_order && old_order <= MAX_ORDER {
                return ptr;
            }
            if old_order > MAX_ORDER && new_order > MAX_ORDER {
                // Both huge: stay in the region if the object and its trailer still fit.
                // SAFETY: the trailer of a live huge block holds its region's length.
                let got = unsafe { ptr.add(align_up(layout.size(), 8)).cast::<usize>().read() };
                let trailer = align_up(new_size, 8);
                if trailer + 8 <= got {
                    // SAFETY: inside the region, 8-byte aligned.
                    unsafe { ptr.add(trailer).cast::<usize>().write(got) };
                    return ptr;
                }
            }
        }
        // SAFETY: forwarded contract.
        unsafe { self.realloc_move(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::test_source::HeapPages;
    use crate::percore::CoreGuard;
    use std::boxed::Box;
    use std::sync::mpsc;
    use std::thread;
    use std::vec::Vec;

    fn allocator() -> &'static GeneralAllocator<HeapPages> {
        Box::leak(Box::new(GeneralAllocator::with_region_bytes(HeapPages::default(), 0)))
    }

    /// Allocates, checks alignment, fills with a pattern.
    fn fill(a: &GeneralAllocator<HeapPages>, size: usize, align: usize, tag: u8) -> *mut u8 {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0, "size {size} align {align}");
        // SAFETY: the block holds `size` bytes.
        unsafe { ptr::write_bytes(p, tag, size) };
        p
    }

    fn check(p: *const u8, size: usize, tag: u8) {
        // SAFETY: a live block of at least `size` bytes.
        let s = unsafe { core::slice::from_raw_parts(p, size) };
        assert!(s.iter().all(|&b| b == tag), "block {p:p} of {size} bytes lost its contents");
    }

    #[test]
    fn class_table_is_consistent() {
        for size in 1..=MAX_SMALL {
            let expected = CLASS_SIZES.iter().position(|&c| c >= size).unwrap();
            assert_eq!(class_of(size), expected, "size {size}");
        }
        for w in CLASS_SIZES.windows(2) {
            // Four classes per doubling above 128 bytes: at most 25% of a block is rounding.
            assert!(w[1] - w[0] <= w[1] / 4 + 8, "{} -> {}", w[0], w[1]);
        }
        // Every class is aligned to any power of two its rounded requests are multiples of.
        for align_shift in 0..=12 {
            let align = 1usize << align_shift;
            for size in (align..=MAX_SMALL).step_by(align) {
                let c = &CLASSES[class_of(size)];
                assert!(c.object_align() >= align.min(PAGE_SIZE), "size {size} align {align}");
            }
        }
    }

    #[test]
    fn every_size_and_alignment_round_trips() {
        let a = allocator();
        thread::spawn(move || {
            let _core = CoreGuard::enter(0);
            let mut live = Vec::new();
            let mut tag = 0u8;
            for align_shift in [0, 3, 4, 6, 12, 13, 16, 23] {
                let align = 1usize << align_shift;
                for size in [1, 7, 8, 9, 24, 100, 1000, 4096, 5000, 32 << 10, (32 << 10) + 1]
                    .into_iter()
                    .chain([100 << 10, 1 << 20, 5 << 20])
                {
                    tag = tag.wrapping_add(1);
                    live.push((fill(a, size, align, tag), size, align, tag));
                }
            }
            for &(p, size, align, tag) in &live {
                check(p, size, tag);
                // SAFETY: allocated with this layout, freed once.
                unsafe { a.dealloc(p, Layout::from_size_align(size, align).unwrap()) };
            }
        })
        .join()
        .unwrap();
        // Huge regions went back to the source: only the page allocator's regions remain.
        assert_eq!(a.pages().source().outstanding(), a.pages().region_count());
    }

    #[test]
    fn realloc_keeps_contents_and_stays_in_place_within_a_class() {
        let a = allocator();
        thread::spawn(move || {
            let _core = CoreGuard::enter(1);
            let layout = Layout::from_size_align(17, 8).unwrap();
            let p = fill(a, 17, 8, 0x11);
            // 17 and 24 are both in the 24-byte class.
            // SAFETY: a live block with this layout.
            let q = unsafe { a.realloc(p, layout, 24) };
            assert_eq!(p, q);
            check(q, 17, 0x11);
            // SAFETY: the block now holds 24 bytes.
            unsafe { ptr::write_bytes(q.add(17), 0x11, 7) };
            // Grow through classes, buddy orders and into a huge region, checking contents.
            let mut size = 24;
            let mut p = q;
            while size < (9 << 20) {
                let new_size = size * 3 / 2 + 1;
                // SAFETY: `p` is live with this layout.
                let q =
                    unsafe { a.realloc(p, Layout::from_size_align(size, 8).unwrap(), new_size) };
                assert!(!q.is_null());
                check(q, size, 0x11);
                // SAFETY: the new block holds `new_size` bytes.
                unsafe { ptr::write_bytes(q.add(size), 0x11, new_size - size) };
                p = q;
                size = new_size;
            }
            // Shrinking a huge block a little stays in place; shrinking to small moves.
            // SAFETY: live with this layout.
            let q = unsafe { a.realloc(p, Layout::from_size_align(size, 8).unwrap(), size - 100) };
            assert_eq!(q, p);
            // SAFETY: live with this layout.
            let r = unsafe { a.realloc(q, Layout::from_size_align(size - 100, 8).unwrap(), 100) };
            check(r, 100, 0x11);
            // SAFETY: live with this layout.
            unsafe { a.dealloc(r, Layout::from_size_align(100, 8).unwrap()) };
        })
        .join()
        .unwrap();
    }

    #[test]
    fn objects_cross_between_cores_and_other_threads() {
        let a = allocator();
        let (tx, rx) = mpsc::channel::<Vec<(usize, usize, u8)>>();
        let (tx2, rx2) = mpsc::channel::<Vec<(usize, usize, u8)>>();
        let producer = thread::spawn(move || {
            let _core = CoreGuard::enter(5);
            for round in 0..20u8 {
                let batch = (0..300)
                    .map(|i| {
                        let size = 1 + (i * 37) % 3000;
                        (fill(a, size, 8, round) as usize, size, round)
                    })
                    .collect();
                tx.send(batch).unwrap();
            }
        });
        // A thread that is not a core frees core 5's objects and allocates its own.
        let middle = thread::spawn(move || {
            for batch in rx {
                let mut mine = Vec::new();
                for (p, size, tag) in batch {
                    check(p as *const u8, size, tag);
                    // SAFETY: live with this layout; freed once.
                    unsafe { a.dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
                    mine.push((fill(a, size, 8, !tag) as usize, size, !tag));
                }
                tx2.send(mine).unwrap();
            }
        });
        // Another core frees the objects of the thread that is not a core.
        let consumer = thread::spawn(move || {
            let _core = CoreGuard::enter(6);
            for batch in rx2 {
                for (p, size, tag) in batch {
                    check(p as *const u8, size, tag);
                    // SAFETY: live with this layout; freed once.
                    unsafe { a.dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
                }
            }
        });
        producer.join().unwrap();
        middle.join().unwrap();
        consumer.join().unwrap();
    }

    #[test]
    fn many_threads_churn() {
        let a = allocator();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                thread::spawn(move || {
                    let _core = (t % 2 == 1).then(|| CoreGuard::enter(20 + t));
                    let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();
                    let mut seed = 0x9e37_79b9u32.wrapping_mul(t as u32 + 1);
                    for i in 0..20_000u32 {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        if seed % 3 != 0 || live.is_empty() {
                            let size =
                                1 + (seed as usize >> 8) % if i % 64 == 0 { 70_000 } else { 512 };
                            live.push((fill(a, size, 8, seed as u8), size, seed as u8));
                        } else {
                            let (p, size, tag) = live.swap_remove(seed as usize % live.len());
                            check(p, size, tag);
                            // SAFETY: live with this layout; freed once.
                            unsafe { a.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
                        }
                    }
                    for (p, size, tag) in live {
                        check(p, size, tag);
                        // SAFETY: live with this layout; freed once.
                        unsafe { a.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn usable_size_covers_the_request() {
        for (size, align) in [(1, 1), (17, 8), (100, 64), (5000, 8), (40_000, 8), (5 << 20, 8)] {
            let l = Layout::from_size_align(size, align).unwrap();
            assert!(GeneralAllocator::<HeapPages>::usable_size(l) >= size);
        }
        assert_eq!(size_class(Layout::from_size_align(8, 8).unwrap()), Some(0));
        assert_eq!(size_class(Layout::from_size_align(8, 8192).unwrap()), None);
        assert_eq!(size_class(Layout::from_size_align(MAX_SMALL + 1, 8).unwrap()), None);
    }
}
