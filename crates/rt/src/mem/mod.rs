//! Memory management: a buddy page allocator, per-core slab caches and a general-purpose
//! allocator built from them.
//!
//! This follows the memory-management section of the EbbRT paper (Schatzberg et al., OSDI 2016,
//! "Memory Management", Figure 2), which in turn follows the Linux kernel:
//!
//! ```text
//!   GeneralAllocator        size classes 8 B .. 32 KiB, larger requests by page order
//!        |   \
//!        |    SlabCache      one per (owner, size class): a free list used without
//!        |        |          synchronization by its core (SLQB-style), remote frees go home
//!        |        |
//!   PageAllocator  <--------  power-of-two blocks of 4 KiB pages; grows region by region
//!        |
//!   BuddyAllocator           one region: intrusive free lists, one metadata byte per page
//!        |
//!   PageSource               the platform: mmap when hosted, a physical range natively
//! ```
//!
//! - [`buddy`]: [`BuddyAllocator`], a binary buddy allocator over one region. It needs no heap:
//!   free lists live inside the free blocks and its per-page metadata is carved from the start
//!   of the region.
//! - [`page`]: [`PageAllocator`], a set of buddy regions behind one lock that asks its
//!   [`PageSource`] for another region when the ones it has are exhausted. EbbRT keeps one buddy
//!   allocator per NUMA node; cairn has one per allocator until it runs on NUMA machines.
//! - [`slab`]: [`SlabCache`] and [`SlabAllocator`], fixed-size objects after SLQB: each core has
//!   its own cache, a free on another core is pushed back to the owner through a lock-free list.
//! - [`general`]: [`GeneralAllocator`], size classes served by per-core slab caches, large
//!   requests by the page allocator. It implements [`core::alloc::GlobalAlloc`], so a hosted
//!   binary can install it as `#[global_allocator]` (see `cairn_hosted::pages`).
//!
//! Nothing in this module allocates from the global heap: it sits below it.

pub mod buddy;
pub mod general;
pub mod page;
pub mod slab;

use core::ptr::NonNull;

pub use buddy::BuddyAllocator;
pub use general::GeneralAllocator;
pub use page::PageAllocator;
pub use slab::{SlabAllocator, SlabCache, SlabClass};

/// The size of a page, the unit of the buddy allocator.
pub const PAGE_SIZE: usize = 4096;

/// The largest block order of the buddy allocator: blocks hold `2^order` pages, so the largest
/// block is `PAGE_SIZE << MAX_ORDER` (4 MiB).
pub const MAX_ORDER: usize = 10;

/// The size in bytes of the largest buddy block.
pub const MAX_BLOCK_BYTES: usize = PAGE_SIZE << MAX_ORDER;

/// Where memory comes from: the platform below the allocators.
///
/// Hosted, `cairn_hosted::pages::MmapPages` maps anonymous memory; natively, the kernel hands
/// out ranges of physical memory. The allocators call it rarely (a new 64 MiB region, or one
/// allocation larger than [`MAX_BLOCK_BYTES`]), always outside their fast paths.
///
/// # Safety
///
/// An implementation must hand out memory that is valid for reads and writes, not used by
/// anything else, and stays so until it is given back with [`release`](Self::release) (or
/// forever, if it never is). Regions returned by different calls must not overlap. It must not
/// allocate from the global allocator, since it may be the global allocator's source.
pub unsafe trait PageSource: Sync {
    /// Hands out a fresh region of at least `min_bytes` bytes whose start is aligned to `align`
    /// (a power of two, at least [`PAGE_SIZE`]), as `(start, length)`; `None` when memory is
    /// exhausted. The length may exceed `min_bytes`.
    fn grow(&self, min_bytes: usize, align: usize) -> Option<(NonNull<u8>, usize)>;

    /// Takes back a whole region that [`grow`](Self::grow) returned as `(start, len)`, and
    /// returns whether it did. A source that cannot take memory back returns `false` (the
    /// default) and the region stays unused.
    ///
    /// # Safety
    ///
    /// `(start, len)` must be exactly what one call of `grow` returned, and nothing may use the
    /// region afterwards.
    unsafe fn release(&self, start: NonNull<u8>, len: usize) -> bool {
        let _ = (start, len);
        false
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two).
#[inline(always)]
pub(crate) const fn align_up(x: usize, align: usize) -> usize {
    (x + align - 1) & !(align - 1)
}

/// The order of the smallest block of `2^order` pages that holds `bytes` bytes.
#[inline]
pub(crate) const fn order_for_bytes(bytes: usize) -> usize {
    let pages = if bytes <= PAGE_SIZE { 1 } else { bytes.div_ceil(PAGE_SIZE) };
    (usize::BITS - (pages - 1).leading_zeros()) as usize
}

/// A [`PageSource`] over the test process's own heap, for unit tests of the allocators.
#[cfg(test)]
pub(crate) mod test_source {
    use super::PageSource;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::alloc::{alloc, dealloc, Layout};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Hands out regions from `std::alloc` and remembers each one's layout for `release`.
    #[derive(Default)]
    pub struct HeapPages {
        live: Mutex<HashMap<usize, Layout>>,
        /// Every `grow` call so far.
        pub grows: AtomicUsize,
    }

    impl HeapPages {
        /// Regions handed out and not yet released.
        pub fn outstanding(&self) -> usize {
            self.live.lock().unwrap().len()
        }
    }

    // SAFETY: each region comes from its own `std::alloc::alloc` call, is exclusively the
    // caller's until released, and is freed only in `release`.
    unsafe impl PageSource for HeapPages {
        fn grow(&self, min_bytes: usize, align: usize) -> Option<(NonNull<u8>, usize)> {
            let layout = Layout::from_size_align(min_bytes, align).ok()?;
            // SAFETY: the layout has a non-zero size (callers ask for at least a page).
            let p = NonNull::new(unsafe { alloc(layout) })?;
            self.live.lock().unwrap().insert(p.as_ptr() as usize, layout);
            self.grows.fetch_add(1, Ordering::Relaxed);
            Some((p, min_bytes))
        }

        unsafe fn release(&self, start: NonNull<u8>, len: usize) -> bool {
            let layout = self.live.lock().unwrap().remove(&(start.as_ptr() as usize));
            let layout = layout.expect("release of a region this source did not hand out");
            assert_eq!(layout.size(), len, "release with another length than grow gave");
            // SAFETY: the region was allocated by `grow` with exactly this layout and is
            // removed from the live set, so it is freed once.
            unsafe { dealloc(start.as_ptr(), layout) };
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_for_bytes_rounds_up_to_a_power_of_two_of_pages() {
        assert_eq!(order_for_bytes(1), 0);
        assert_eq!(order_for_bytes(PAGE_SIZE), 0);
        assert_eq!(order_for_bytes(PAGE_SIZE + 1), 1);
        assert_eq!(order_for_bytes(2 * PAGE_SIZE), 1);
        assert_eq!(order_for_bytes(3 * PAGE_SIZE), 2);
        assert_eq!(order_for_bytes(MAX_BLOCK_BYTES), MAX_ORDER);
        assert_eq!(order_for_bytes(MAX_BLOCK_BYTES + 1), MAX_ORDER + 1);
    }

    #[test]
    fn align_up_works() {
        assert_eq!(align_up(0, 8), 0);
        assert_eq!(align_up(1, 8), 8);
        assert_eq!(align_up(4096, 4096), 4096);
        assert_eq!(align_up(4097, 4096), 8192);
    }
}
