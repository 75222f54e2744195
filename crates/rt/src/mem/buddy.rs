//! A binary buddy allocator of pages over one region of memory.
//!
//! EbbRT's page allocator (OSDI 2016, "Memory Management") is a buddy allocator, as in Linux:
//! memory is handed out in blocks of `2^order` pages, `order` from 0 to [`MAX_ORDER`]. A
//! request takes the smallest free block of a large enough order and splits it in halves until
//! it has the order asked for, putting each unused half on its order's free list. A freed block is merged with its *buddy* (the other half of the block
//! they were split from) whenever that buddy is free too, repeatedly, so freeing everything
//! restores the blocks the region started as.
//!
//! Blocks are aligned to their size in absolute addresses: the buddy of the block at `a` of
//! order `k` is at `a ^ (PAGE_SIZE << k)`. The region need not be aligned; it starts as the
//! largest aligned blocks that fit. Absolute alignment is what lets the slab layer find a slab's
//! header by masking an object's address.
//!
//! The allocator sits below the heap, so it allocates nothing:
//!
//! - each order's free list is a doubly linked list threaded through the free blocks
//!   themselves (first 16 bytes of each), so a buddy can be unlinked in O(1);
//! - one metadata byte per page, carved from the start of the region, records whether a page
//!   heads a free block and of which order. Checking a buddy never reads the buddy's memory,
//!   which may belong to someone else.
//!
//! One `BuddyAllocator` is not synchronized; [`PageAllocator`](super::PageAllocator) puts a set
//! of them behind a lock.

use core::ptr::{self, NonNull};

use super::{align_up, MAX_ORDER, PAGE_SIZE};

/// Number of distinct orders.
const ORDERS: usize = MAX_ORDER + 1;

/// Metadata flag: this page heads a free block (the low bits hold its order).
const FREE: u8 = 0x80;

/// The links at the start of every free block.
#[repr(C)]
struct FreeBlock {
    next: *mut FreeBlock,
    /// The previous block in the list, or null for the first one (the list head lives in the
    /// allocator, which may move, so nothing points at it).
    prev: *mut FreeBlock,
}

/// A buddy allocator of 4 KiB pages over one region.
///
/// Blocks are `2^order` pages, aligned to their size. See the [module docs](self).
pub struct BuddyAllocator {
    /// Address of the first managed page.
    base: usize,
    /// Number of managed pages.
    pages: usize,
    /// One byte per managed page: `FREE | order` for the first page of a free block, else 0.
    meta: *mut u8,
    /// The first free block of each order, or null.
    heads: [*mut FreeBlock; ORDERS],
    /// Free pages in all free blocks.
    free_pages: usize,
}

// SAFETY: the allocator exclusively owns its region (the contract of `new`); the raw pointers
// point into that region and nothing else, so moving it to another thread is sound.
unsafe impl Send for BuddyAllocator {}

impl BuddyAllocator {
    /// Manages the pages of `[start, start + len)`.
    ///
    /// The metadata (one byte per page) is carved from the start of the region; the rest, cut
    /// to whole pages, is split into the largest aligned blocks that fit. A region too small to
    /// hold its metadata and one page gives an allocator with no pages.
    ///
    /// # Safety
    ///
    /// The region must be valid for reads and writes, and used by nothing but this allocator
    /// (and the owners of the blocks it hands out) for as long as the allocator or any block
    /// from it is in use.
    pub unsafe fn new(start: NonNull<u8>, len: usize) -> BuddyAllocator {
        let start = start.as_ptr() as usize;
        let end = start.saturating_add(len) & !(PAGE_SIZE - 1);
        let mut buddy = BuddyAllocator {
            base: 0,
            pages: 0,
            meta: start as *mut u8,
            heads: [ptr::null_mut(); ORDERS],
            free_pages: 0,
        };
        let first_page = align_up(start, PAGE_SIZE);
        if first_page >= end {
            return buddy;
        }
        // One metadata byte for every page the region could hold; the pages the metadata
        // itself takes are simply not managed.
        let total = (end - first_page) / PAGE_SIZE;
        let base = align_up(start + total, PAGE_SIZE);
        if base >= end {
            return buddy;
        }
        buddy.base = base;
        buddy.pages = (end - base) / PAGE_SIZE;
        // SAFETY: `[start, start + pages)` lies below `base`, inside the region the caller
        // gave us for our exclusive use.
        unsafe { ptr::write_bytes(buddy.meta, 0, buddy.pages) };

        let mut addr = base;
        while addr < end {
            let mut order = MAX_ORDER;
            while addr % (PAGE_SIZE << order) != 0 || end - addr < (PAGE_SIZE << order) {
                order -= 1;
            }
            // SAFETY: the block `[addr, addr + size)` lies inside the managed pages, which
            // nothing else uses yet.
            unsafe { buddy.push_free(addr, order) };
            addr += PAGE_SIZE << order;
        }
        buddy.free_pages = buddy.pages;
        buddy
    }

    /// Allocates a block of `2^order` pages, aligned to its size; `None` when no block that
    /// large is free (or `order > MAX_ORDER`).
    pub fn alloc(&mut self, order: usize) -> Option<NonNull<u8>> {
        if order > MAX_ORDER {
            return None;
        }
        let mut k = order;
        while self.heads[k].is_null() {
            k += 1;
            if k > MAX_ORDER {
                return None;
            }
        }
        let block = self.heads[k] as usize;
        // SAFETY: `block` heads list `k`, so it is a free block of this allocator.
        unsafe { self.unlink(block, k) };
        // Split off upper halves until the block has the order asked for.
        while k > order {
            k -= 1;
            // SAFETY: the upper half of a free block of order k + 1 is an unused block of
            // order k inside our pages.
            unsafe { self.push_free(block + (PAGE_SIZE << k), k) };
        }
        self.free_pages -= 1 << order;
        NonNull::new(block as *mut u8)
    }

    /// Gives back a block from [`alloc`](Self::alloc), merging it with its free buddies.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `alloc(order)` on this allocator with the same `order`, and must not
    /// be used afterwards nor freed twice.
    pub unsafe fn free(&mut self, ptr: NonNull<u8>, order: usize) {
        let mut addr = ptr.as_ptr() as usize;
        debug_assert!(order <= MAX_ORDER);
        debug_assert!(self.contains(ptr), "block outside this allocator");
        debug_assert_eq!(addr % (PAGE_SIZE << order), 0, "block not aligned to its order");
        debug_assert_eq!(self.meta_at(addr) & FREE, 0, "double free of a block");
        let end = self.base + self.pages * PAGE_SIZE;
        let mut k = order;
        while k < MAX_ORDER {
            let buddy = addr ^ (PAGE_SIZE << k);
            if buddy < self.base || buddy >= end || self.meta_at(buddy) != FREE | k as u8 {
                break;
            }
            // SAFETY: the metadata says `buddy` heads a free block of order k, so it is on
            // list k.
            unsafe { self.unlink(buddy, k) };
            addr = addr.min(buddy);
            k += 1;
        }
        // SAFETY: `addr` is the merged block of order k, now unused and inside our pages.
        unsafe { self.push_free(addr, k) };
        self.free_pages += 1 << order;
    }

    /// Whether `ptr` lies in the pages this allocator manages.
    pub fn contains(&self, ptr: NonNull<u8>) -> bool {
        let a = ptr.as_ptr() as usize;
        a >= self.base && a < self.base + self.pages * PAGE_SIZE
    }

    /// Pages currently free.
    pub fn free_pages(&self) -> usize {
        self.free_pages
    }

    /// Pages this allocator manages (free or not).
    pub fn managed_pages(&self) -> usize {
        self.pages
    }

    /// The address range of the managed pages, `[start, end)`.
    pub fn range(&self) -> (usize, usize) {
        (self.base, self.base + self.pages * PAGE_SIZE)
    }

    /// Calls `f(address, order)` for every free block, order by order.
    pub fn for_each_free_block(&self, mut f: impl FnMut(usize, usize)) {
        for (order, &head) in self.heads.iter().enumerate() {
            let mut b = head;
            while !b.is_null() {
                f(b as usize, order);
                // SAFETY: every block on a free list is a free block of ours whose first
                // bytes hold its links.
                b = unsafe { (*b).next };
            }
        }
    }

    /// The metadata byte of the page at `addr` (a managed page).
    #[inline]
    fn meta_at(&self, addr: usize) -> u8 {
        let i = (addr - self.base) / PAGE_SIZE;
        debug_assert!(i < self.pages);
        // SAFETY: `i` indexes one of the `pages` metadata bytes.
        unsafe { *self.meta.add(i) }
    }

    #[inline]
    fn set_meta(&mut self, addr: usize, value: u8) {
        let i = (addr - self.base) / PAGE_SIZE;
        debug_assert!(i < self.pages);
        // SAFETY: `i` indexes one of the `pages` metadata bytes.
        unsafe { *self.meta.add(i) = value };
    }

    /// Puts the unused block at `addr` on list `order` and marks it free.
    ///
    /// # Safety
    ///
    /// `[addr, addr + (PAGE_SIZE << order))` must be managed pages that nobody uses.
    unsafe fn push_free(&mut self, addr: usize, order: usize) {
        let block = addr as *mut FreeBlock;
        let head = self.heads[order];
        // SAFETY: the block is ours and unused, so its first bytes may hold links; `head`, if
        // not null, is a free block on the same list.
        unsafe {
            block.write(FreeBlock { next: head, prev: ptr::null_mut() });
            if !head.is_null() {
                (*head).prev = block;
            }
        }
        self.heads[order] = block;
        self.set_meta(addr, FREE | order as u8);
    }

    /// Takes the free block at `addr` off list `order` and marks it in use.
    ///
    /// # Safety
    ///
    /// `addr` must head a free block of order `order`.
    unsafe fn unlink(&mut self, addr: usize, order: usize) {
        let block = addr as *mut FreeBlock;
        // SAFETY: the block and its neighbours are free blocks on list `order`, whose links
        // are valid.
        unsafe {
            let FreeBlock { next, prev } = block.read();
            if prev.is_null() {
                self.heads[order] = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
        self.set_meta(addr, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::alloc::{alloc, dealloc, Layout};
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// A heap region `pages` pages long that starts `offset_pages` past a 4 MiB boundary.
    struct Region {
        raw: *mut u8,
        layout: Layout,
        start: NonNull<u8>,
        len: usize,
    }

    impl Region {
        fn new(pages: usize, offset_pages: usize, extra_bytes: usize) -> Region {
            let len = pages * PAGE_SIZE + extra_bytes;
            let layout =
                Layout::from_size_align(len + offset_pages * PAGE_SIZE, PAGE_SIZE << MAX_ORDER)
                    .unwrap();
            // SAFETY: non-zero size.
            let raw = unsafe { alloc(layout) };
            assert!(!raw.is_null());
            // SAFETY: the offset stays inside the allocation.
            let start = NonNull::new(unsafe { raw.add(offset_pages * PAGE_SIZE) }).unwrap();
            Region { raw, layout, start, len }
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.raw, self.layout) };
        }
    }

    fn free_set(b: &BuddyAllocator) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        b.for_each_free_block(|a, o| v.push((a, o)));
        v.sort_unstable();
        v
    }

    #[test]
    fn carves_metadata_and_aligned_blocks() {
        let r = Region::new(2048, 0, 0);
        // SAFETY: the region is ours and outlives the allocator.
        let b = unsafe { BuddyAllocator::new(r.start, r.len) };
        // 2048 pages need 2048 metadata bytes: one page.
        assert_eq!(b.managed_pages(), 2047);
        assert_eq!(b.free_pages(), 2047);
        let mut total = 0;
        for (a, o) in free_set(&b) {
            assert_eq!(a % (PAGE_SIZE << o), 0);
            total += 1 << o;
        }
        assert_eq!(total, 2047);
        // The second 4 MiB half is one maximal block.
        assert!(free_set(&b).contains(&(r.start.as_ptr() as usize + MAX_BLOCK, MAX_ORDER)));
    }

    const MAX_BLOCK: usize = PAGE_SIZE << MAX_ORDER;

    #[test]
    fn split_and_merge_round_trip() {
        let r = Region::new(1024, 0, 0);
        // SAFETY: as above.
        let mut b = unsafe { BuddyAllocator::new(r.start, r.len) };
        let before = free_set(&b);
        // The metadata took page 0, so page 1 is an order-0 block; the next two order-0
        // requests split pages 2-3, and those two are buddies.
        let x = b.alloc(0).unwrap();
        let y = b.alloc(0).unwrap();
        let w = b.alloc(0).unwrap();
        assert_eq!(y.as_ptr() as usize ^ PAGE_SIZE, w.as_ptr() as usize);
        assert_ne!(x.as_ptr() as usize ^ PAGE_SIZE, y.as_ptr() as usize);
        let z = b.alloc(3).unwrap();
        assert_eq!(z.as_ptr() as usize % (8 * PAGE_SIZE), 0);
        assert_eq!(b.free_pages(), 1023 - 11);
        // SAFETY: each block came from `alloc` with these orders.
        unsafe {
            b.free(y, 0);
            b.free(z, 3);
            b.free(x, 0);
            b.free(w, 0);
        }
        assert_eq!(free_set(&b), before);
    }

    #[test]
    fn exhaustion_and_tiny_regions() {
        let r = Region::new(3, 0, 0);
        // SAFETY: as above.
        let mut b = unsafe { BuddyAllocator::new(r.start, r.len) };
        assert_eq!(b.managed_pages(), 2);
        assert!(b.alloc(2).is_none());
        assert!(b.alloc(MAX_ORDER + 1).is_none());
        let p = b.alloc(0).unwrap();
        let q = b.alloc(0).unwrap();
        assert!(b.alloc(0).is_none());
        // SAFETY: blocks from `alloc(0)`.
        unsafe {
            b.free(p, 0);
            b.free(q, 0);
        }
        assert_eq!(b.free_pages(), 2);

        // A region smaller than a page manages nothing and hands out nothing.
        let r = Region::new(0, 0, 100);
        // SAFETY: as above.
        let mut b = unsafe { BuddyAllocator::new(r.start, r.len) };
        assert_eq!(b.managed_pages(), 0);
        assert!(b.alloc(0).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(usize),
        Free(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop_oneof![3 => 0usize..3, 1 => 0usize..=MAX_ORDER].prop_map(Op::Alloc),
            2 => any::<usize>().prop_map(Op::Free),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_alloc_free_keeps_blocks_disjoint_aligned_and_coalesces(
            pages in 1usize..3000,
            offset in 0usize..64,
            extra in 0usize..PAGE_SIZE,
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let r = Region::new(pages, offset, extra);
            let region = (r.start.as_ptr() as usize, r.start.as_ptr() as usize + r.len);
            // SAFETY: the region is ours and outlives the allocator.
            let mut b = unsafe { BuddyAllocator::new(r.start, r.len) };
            let initial = free_set(&b);
            let initial_free = b.free_pages();
            // address -> (end, order) of every live block
            let mut live: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Alloc(order) => {
                        if let Some(p) = b.alloc(order) {
                            let a = p.as_ptr() as usize;
                            let end = a + (PAGE_SIZE << order);
                            prop_assert_eq!(a % (PAGE_SIZE << order), 0, "aligned to its size");
                            prop_assert!(a >= region.0 && end <= region.1, "inside the region");
                            if let Some((_, &(pend, _))) = live.range(..a).next_back() {
                                prop_assert!(pend <= a, "overlaps the block below");
                            }
                            if let Some((&next, _)) = live.range(a..).next() {
                                prop_assert!(end <= next, "overlaps the block above");
                            }
                            // Write the whole block: it really is ours.
                            // SAFETY: the block is live and ours.
                            unsafe { ptr::write_bytes(p.as_ptr(), 0xa5, end - a) };
                            live.insert(a, (end, order));
                        }
                    }
                    Op::Free(pick) => {
                        if !live.is_empty() {
                            let key = *live.keys().nth(pick % live.len()).unwrap();
                            let (_, order) = live.remove(&key).unwrap();
                            // SAFETY: a live block from `alloc(order)`.
                            unsafe { b.free(NonNull::new(key as *mut u8).unwrap(), order) };
                        }
                    }
                }
                let used: usize = live.values().map(|&(_, o)| 1usize << o).sum();
                prop_assert_eq!(b.free_pages() + used, initial_free);
            }
            for (a, (_, order)) in core::mem::take(&mut live) {
                // SAFETY: a live block from `alloc(order)`.
                unsafe { b.free(NonNull::new(a as *mut u8).unwrap(), order) };
            }
            prop_assert_eq!(b.free_pages(), initial_free);
            prop_assert_eq!(free_set(&b), initial);
        }
    }
}
