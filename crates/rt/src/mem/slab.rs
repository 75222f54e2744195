//! Per-core slab caches of fixed-size objects.
//!
//! EbbRT's slab allocator Ebbs (OSDI 2016, "Memory Management") follow the Linux kernel's SLQB
//! allocator: each core's representative keeps its own free lists and partial slabs, so an
//! allocation on a core takes no lock and touches no shared cache line, and a free from another
//! core is queued back to the core that owns the object. cairn does the same:
//!
//! - A **slab** is a block of `2^order` pages from the [`PageAllocator`], aligned to its size,
//!   whose first 64 bytes are a header and the rest a row of equal objects. The header of any
//!   object's slab is found by masking the object's address; it records the slab's **owner**.
//! - A [`SlabCache`] belongs to one owner: a core, or one of [`FALLBACK_SLOTS`] shared slots used
//!   by threads that are not cairn cores. It holds the *current* slab's free objects in a plain
//!   singly linked list (plus a bump pointer over the part of a new slab never handed out), and
//!   a doubly linked list of *partial* slabs that have free objects of their own.
//! - **Allocation** pops the free list, or bumps; only when both are empty does it drain the
//!   remote list, move to a partial slab, or take a fresh slab from the page allocator.
//! - **A free by the owner** pushes onto the cache's list when the object is in the current
//!   slab, otherwise onto its slab's own list. A slab that was full becomes partial; a slab
//!   whose objects have all come back is kept (up to `KEEP_EMPTY` per cache) or returned to the
//!   page allocator.
//! - **A free by anyone else** pushes the object onto the owning cache's *remote* list, a
//!   lock-free stack (compare-and-swap push by foreign threads; the owner takes the whole list
//!   with one swap, so there is no ABA problem). The owner drains it into its slabs when its own
//!   list runs dry, so remote frees go home and are reused.
//!
//! Owner-side state is touched without synchronization; the caller promises, through the
//! `unsafe` owner methods of [`SlabCache`], that a cache has one user at a time (its core, or
//! whoever holds its fallback slot's lock). [`SlabAllocator`] wraps this for one object size;
//! [`GeneralAllocator`](super::GeneralAllocator) has one cache per owner and size class.
//!
//! A foreign thread reads the owner from a slab header that the owner keeps writing to: that is
//! sound because `owner` is written only before the slab's first object is handed out, and a
//! slab goes back to the page allocator only when all its objects are free, which none is while
//! a thread is freeing it.

use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use super::{align_up, PageAllocator, PageSource, MAX_ORDER, PAGE_SIZE};
use crate::percore::{self, MAX_CORES};

/// Caches for threads that are not cairn cores (std threads, test harnesses, `main` before the
/// runtime starts). Each is behind a spin lock; a thread prefers the one its stack address
/// hashes to.
pub const FALLBACK_SLOTS: usize = 8;

/// Owners of caches: cores `0..MAX_CORES`, then the fallback slots.
pub const OWNERS: usize = MAX_CORES + FALLBACK_SLOTS;

/// Empty slabs a cache keeps for reuse before it returns further ones to the page allocator.
const KEEP_EMPTY: u32 = 2;

/// Smallest slab: 2^4 pages, 64 KiB.
const MIN_SLAB_ORDER: usize = 4;

/// A slab holds at least this many objects, unless that would pass the largest block.
const MIN_OBJECTS: usize = 8;

/// Bytes reserved for the header at the start of every slab.
const HEADER_BYTES: usize = 64;

/// Slab states (owner-side).
const CURRENT: u8 = 0;
const PARTIAL: u8 = 1;
const FULL: u8 = 2;

/// A free object: its first word links to the next one.
#[repr(C)]
struct FreeObject {
    next: *mut FreeObject,
}

/// The header at the start of every slab.
///
/// All fields but `owner` are the owner's alone; `owner` is written once, before any object of
/// the slab is handed out, and read by any thread that frees one of its objects.
#[repr(C)]
struct SlabHeader {
    /// Objects freed back to this slab (not counting the cache's list of the current slab).
    free: *mut FreeObject,
    /// Length of `free`.
    nfree: u32,
    /// Objects in the slab.
    capacity: u32,
    /// Links in the owner's partial list.
    next: *mut SlabHeader,
    prev: *mut SlabHeader,
    /// The owner index (a core, or `MAX_CORES + fallback slot`).
    owner: u16,
    /// `CURRENT`, `PARTIAL` or `FULL`.
    state: u8,
}

const _: () = assert!(core::mem::size_of::<SlabHeader>() <= HEADER_BYTES);
const _: () = assert!(OWNERS <= u16::MAX as usize);

/// How objects of one size are laid out in slabs: object stride, alignment and slab size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabClass {
    slot: usize,
    align: usize,
    order: usize,
    first: usize,
    capacity: usize,
}

impl SlabClass {
    /// The layout for objects of `size` bytes aligned to `align` (a power of two up to
    /// [`PAGE_SIZE`]). Objects take at least 8 bytes and 8-byte alignment (a free object holds a
    /// link). The slab is the smallest block of at least 64 KiB that holds 8 objects.
    ///
    /// # Panics
    ///
    /// When `align` is not a power of two up to a page, or the object does not fit in the
    /// largest block.
    pub const fn new(size: usize, align: usize) -> SlabClass {
        assert!(align.is_power_of_two() && align <= PAGE_SIZE, "slab alignment up to a page");
        let align = if align < 8 { 8 } else { align };
        let slot = align_up(if size < 8 { 8 } else { size }, align);
        let first = align_up(HEADER_BYTES, align);
        let mut order = MIN_SLAB_ORDER;
        while order < MAX_ORDER && (PAGE_SIZE << order) < first + MIN_OBJECTS * slot {
            order += 1;
        }
        assert!((PAGE_SIZE << order) >= first + slot, "object too large for a slab");
        let capacity = ((PAGE_SIZE << order) - first) / slot;
        SlabClass { slot, align, order, first, capacity }
    }

    /// Bytes per object (the stride between objects).
    pub const fn object_size(&self) -> usize {
        self.slot
    }

    /// The alignment every object has.
    pub const fn object_align(&self) -> usize {
        self.align
    }

    /// The slab's order in the page allocator.
    pub const fn slab_order(&self) -> usize {
        self.order
    }

    /// Bytes per slab.
    pub const fn slab_bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// Objects per slab.
    pub const fn objects_per_slab(&self) -> usize {
        self.capacity
    }

    /// The header of the slab that holds the object at `obj`.
    #[inline(always)]
    fn slab_of(&self, obj: usize) -> *mut SlabHeader {
        (obj & !(self.slab_bytes() - 1)) as *mut SlabHeader
    }
}

/// The owner index of the slab that holds `obj`, an object handed out under `class`.
///
/// # Safety
///
/// `obj` must be a live object of a slab of `class` (handed out and not yet freed).
#[inline(always)]
pub(crate) unsafe fn owner_of(obj: NonNull<u8>, class: &SlabClass) -> usize {
    let slab = class.slab_of(obj.as_ptr() as usize);
    // SAFETY: the slab is live while one of its objects is; `owner` is written before any of
    // its objects is handed out and never while one is live, so this read races with nothing.
    // A raw field read makes no reference to the header, whose other fields its owner may be
    // writing.
    unsafe { ptr::addr_of!((*slab).owner).read() as usize }
}

/// Owner-side state of a cache.
#[repr(C)]
struct Local {
    /// Free objects of the current slab.
    free: *mut FreeObject,
    /// The next never-used object of the current slab, and the end of its object area.
    bump: usize,
    bump_end: usize,
    /// The slab being allocated from, or null.
    current: *mut SlabHeader,
    /// Slabs (not current) that have free objects on their own lists.
    partial: *mut SlabHeader,
    /// How many slabs on the partial list are entirely free.
    empty: u32,
}

/// One owner's cache of objects of one [`SlabClass`]. See the [module docs](self).
///
/// The owner methods ([`alloc`](Self::alloc), [`free`](Self::free)) are `unsafe`: only the
/// cache's owner may call them, one call at a time, always with the same class, owner index and
/// page allocator. [`free_remote`](Self::free_remote) may be called by anyone.
#[repr(C, align(64))]
pub struct SlabCache {
    local: UnsafeCell<Local>,
    remote: AtomicPtr<FreeObject>,
}

// SAFETY: the owner-side state is only touched through the owner methods, whose contract
// gives each cache one user at a time; `remote` is atomic.
unsafe impl Sync for SlabCache {}
// SAFETY: the raw pointers point at slabs of the page allocator the cache is used with, not
// at anything tied to a thread.
unsafe impl Send for SlabCache {}

impl Default for SlabCache {
    fn default() -> Self {
        SlabCache::new()
    }
}

impl SlabCache {
    /// An empty cache (all zeroes, so a `static` of caches costs no file space).
    pub const fn new() -> SlabCache {
        SlabCache {
            local: UnsafeCell::new(Local {
                free: ptr::null_mut(),
                bump: 0,
                bump_end: 0,
                current: ptr::null_mut(),
                partial: ptr::null_mut(),
                empty: 0,
            }),
            remote: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Allocates one object, or returns null when the page allocator is exhausted.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner `owner` (no other thread runs an owner method of this
    /// cache meanwhile) and passes the same `class` and `pages` on every call.
    #[inline(always)]
    pub unsafe fn alloc<S: PageSource>(
        &self,
        class: &SlabClass,
        owner: u16,
        pages: &PageAllocator<S>,
    ) -> *mut u8 {
        let l = self.local.get();
        // SAFETY: the owner contract gives us the local state alone; objects on the free list
        // are free objects of our current slab, whose first word is a link.
        unsafe {
            let obj = (*l).free;
            if !obj.is_null() {
                (*l).free = (*obj).next;
                return obj.cast();
            }
            let b = (*l).bump;
            if b < (*l).bump_end {
                (*l).bump = b + class.slot;
                return b as *mut u8;
            }
            self.refill(class, owner, pages)
        }
    }

    /// Frees `obj` if this cache owns it; otherwise hands back `Err(owner)` for the caller to
    /// pass the object to that owner's [`free_remote`](Self::free_remote).
    ///
    /// # Safety
    ///
    /// The owner contract of [`alloc`](Self::alloc), and `obj` must be a live object handed out
    /// under `class` by some cache of the same allocator (same `pages`), not used afterwards.
    #[inline(always)]
    pub unsafe fn free<S: PageSource>(
        &self,
        obj: NonNull<u8>,
        class: &SlabClass,
        owner: u16,
        pages: &PageAllocator<S>,
    ) -> Result<(), u16> {
        let l = self.local.get();
        let o = obj.as_ptr().cast::<FreeObject>();
        let slab = class.slab_of(obj.as_ptr() as usize);
        // SAFETY: owner contract for the local state; the object is ours to overwrite.
        unsafe {
            if slab == (*l).current {
                (*o).next = (*l).free;
                (*l).free = o;
                return Ok(());
            }
            let slab_owner = owner_of(obj, class) as u16;
            if slab_owner != owner {
                return Err(slab_owner);
            }
            self.free_to_slab(slab, o, class, pages);
        }
        Ok(())
    }

    /// Queues an object freed by someone other than this cache's owner; the owner takes it
    /// back when its own list runs dry.
    ///
    /// # Safety
    ///
    /// `obj` must be a live object of a slab owned by this cache, not used afterwards.
    #[inline]
    pub unsafe fn free_remote(&self, obj: NonNull<u8>) {
        let o = obj.as_ptr().cast::<FreeObject>();
        let mut head = self.remote.load(Ordering::Relaxed);
        loop {
            // SAFETY: the object is ours to overwrite until the push publishes it.
            unsafe { (*o).next = head };
            // Release: the owner's Acquire swap sees the link written above.
            match self.remote.compare_exchange_weak(head, o, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Pushes `o` onto the list of `slab` (not the current slab, owned by this cache) and
    /// handles the slab becoming partial or empty.
    ///
    /// # Safety
    ///
    /// Owner contract; `o` is a live object of `slab`.
    #[inline(always)]
    unsafe fn free_to_slab<S: PageSource>(
        &self,
        slab: *mut SlabHeader,
        o: *mut FreeObject,
        class: &SlabClass,
        pages: &PageAllocator<S>,
    ) {
        // SAFETY: the slab is ours (owner checked by the caller), so its header fields are
        // ours to write; the object is ours to overwrite.
        unsafe {
            (*o).next = (*slab).free;
            (*slab).free = o;
            let n = (*slab).nfree + 1;
            (*slab).nfree = n;
            if n == 1 || n == (*slab).capacity {
                self.slab_changed(slab, n, class, pages);
            }
        }
    }

    /// A non-current slab got its first free object back (it was full) or its last (it is
    /// empty).
    ///
    /// # Safety
    ///
    /// Owner contract; `slab` is one of ours other than the current one.
    #[inline(never)]
    unsafe fn slab_changed<S: PageSource>(
        &self,
        slab: *mut SlabHeader,
        n: u32,
        class: &SlabClass,
        pages: &PageAllocator<S>,
    ) {
        let l = self.local.get();
        // SAFETY: owner contract: the local state and our slabs' headers are ours.
        unsafe {
            if n == 1 {
                debug_assert_eq!((*slab).state, FULL);
                (*slab).state = PARTIAL;
                self.push_partial(slab);
            }
            if n == (*slab).capacity {
                if (*l).empty < KEEP_EMPTY {
                    (*l).empty += 1;
                } else {
                    self.unlink_partial(slab);
                    // SAFETY: every object of the slab is free and on its own list, which dies
                    // with it; the slab came from `pages.alloc(class.order)`.
                    pages.free(NonNull::new_unchecked(slab.cast()), class.order);
                }
            }
        }
    }

    /// The slow path of [`alloc`](Self::alloc): the free list and the bump area are empty.
    ///
    /// # Safety
    ///
    /// Owner contract.
    #[inline(never)]
    unsafe fn refill<S: PageSource>(
        &self,
        class: &SlabClass,
        owner: u16,
        pages: &PageAllocator<S>,
    ) -> *mut u8 {
        let l = self.local.get();
        // SAFETY: owner contract: the local state and the headers of our slabs are ours;
        // objects on the remote list are objects of our slabs that their holders gave up.
        unsafe {
            // 1. Take back what other owners freed.
            if !self.remote.load(Ordering::Relaxed).is_null() {
                // Acquire: pairs with the Release push, so the links are visible.
                let mut r = self.remote.swap(ptr::null_mut(), Ordering::Acquire);
                while !r.is_null() {
                    let next = (*r).next;
                    let slab = class.slab_of(r as usize);
                    if slab == (*l).current {
                        (*r).next = (*l).free;
                        (*l).free = r;
                    } else {
                        self.free_to_slab(slab, r, class, pages);
                    }
                    r = next;
                }
                let obj = (*l).free;
                if !obj.is_null() {
                    (*l).free = (*obj).next;
                    return obj.cast();
                }
            }
            // 2. Every object of the current slab is handed out: it is full.
            let cur = (*l).current;
            if !cur.is_null() {
                (*cur).state = FULL;
                (*l).current = ptr::null_mut();
            }
            // 3. Move to a partial slab, taking its free list.
            let s = (*l).partial;
            if !s.is_null() {
                self.unlink_partial(s);
                if (*s).nfree == (*s).capacity {
                    (*l).empty -= 1;
                }
                (*s).state = CURRENT;
                (*l).current = s;
                let obj = (*s).free;
                (*l).free = (*obj).next;
                (*s).free = ptr::null_mut();
                (*s).nfree = 0;
                (*l).bump = 0;
                (*l).bump_end = 0;
                return obj.cast();
            }
            // 4. A fresh slab from the page allocator.
            let Some(block) = pages.alloc(class.order) else {
                return ptr::null_mut();
            };
            let slab = block.as_ptr().cast::<SlabHeader>();
            slab.write(SlabHeader {
                free: ptr::null_mut(),
                nfree: 0,
                capacity: class.capacity as u32,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                owner,
                state: CURRENT,
            });
            (*l).current = slab;
            let first = slab as usize + class.first;
            (*l).bump = first + class.slot;
            (*l).bump_end = first + class.capacity * class.slot;
            first as *mut u8
        }
    }

    /// # Safety
    ///
    /// Owner contract; `s` is one of ours, on no list.
    unsafe fn push_partial(&self, s: *mut SlabHeader) {
        let l = self.local.get();
        // SAFETY: owner contract.
        unsafe {
            let head = (*l).partial;
            (*s).prev = ptr::null_mut();
            (*s).next = head;
            if !head.is_null() {
                (*head).prev = s;
            }
            (*l).partial = s;
        }
    }

    /// # Safety
    ///
    /// Owner contract; `s` is on our partial list.
    unsafe fn unlink_partial(&self, s: *mut SlabHeader) {
        let l = self.local.get();
        // SAFETY: owner contract; `s` and its neighbours are our partial slabs.
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                (*l).partial = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }
}

/// The calling thread's core index, if it is a cairn core (one thread-pointer load).
#[inline(always)]
pub(crate) fn current_owner() -> Option<usize> {
    match percore::current_core() {
        Some(c) if c < MAX_CORES => Some(c),
        _ => None,
    }
}

/// The spin locks of the fallback slots, one per slot.
pub(crate) struct FallbackLocks([spin::Mutex<()>; FALLBACK_SLOTS]);

impl FallbackLocks {
    pub(crate) const fn new() -> FallbackLocks {
        FallbackLocks([const { spin::Mutex::new(()) }; FALLBACK_SLOTS])
    }

    /// Locks a slot for the calling thread: the one its stack hashes to if free, else the
    /// first free one after it, else waits for its own. Returns the slot's owner index.
    #[inline]
    pub(crate) fn lock_any(&self) -> (usize, spin::MutexGuard<'_, ()>) {
        let probe = 0u8;
        // Threads' stacks are separate mappings of a megabyte or more, so the megabyte a
        // local variable sits in tells threads apart well enough to spread them over slots.
        let mb = core::hint::black_box(&probe) as *const u8 as usize >> 20;
        let start = mb.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - SLOT_BITS);
        for i in 0..FALLBACK_SLOTS {
            let slot = (start + i) % FALLBACK_SLOTS;
            if let Some(g) = self.0[slot].try_lock() {
                return (MAX_CORES + slot, g);
            }
        }
        (MAX_CORES + start, self.0[start].lock())
    }

    /// Locks the slot of owner index `owner` (`MAX_CORES <= owner < OWNERS`).
    #[inline]
    pub(crate) fn lock(&self, owner: usize) -> spin::MutexGuard<'_, ()> {
        self.0[owner - MAX_CORES].lock()
    }
}

const SLOT_BITS: u32 = FALLBACK_SLOTS.trailing_zeros();
const _: () = assert!(FALLBACK_SLOTS.is_power_of_two());

/// A fixed-size object allocator with one [`SlabCache`] per core (and per fallback slot), over
/// a shared [`PageAllocator`]. See the [module docs](self).
///
/// At most one thread may act as a given core at a time (the platform runs one thread per core;
/// tests that use [`CoreGuard`](crate::percore::CoreGuard) must do the same). Dropping the
/// allocator does not give its slabs back to the page allocator; they return to the source
/// when the page allocator is dropped.
pub struct SlabAllocator<'p, S: PageSource> {
    class: SlabClass,
    pages: &'p PageAllocator<S>,
    caches: [SlabCache; OWNERS],
    locks: FallbackLocks,
}

impl<'p, S: PageSource> SlabAllocator<'p, S> {
    /// An allocator of objects of `size` bytes aligned to `align` (see [`SlabClass::new`]).
    pub const fn new(size: usize, align: usize, pages: &'p PageAllocator<S>) -> Self {
        SlabAllocator {
            class: SlabClass::new(size, align),
            pages,
            caches: [const { SlabCache::new() }; OWNERS],
            locks: FallbackLocks::new(),
        }
    }

    /// The layout of this allocator's objects.
    pub fn class(&self) -> &SlabClass {
        &self.class
    }

    /// Allocates one object from the calling core's cache (a fallback slot's on a thread that
    /// is not a core); `None` when memory is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<NonNull<u8>> {
        let p = match current_owner() {
            // SAFETY: the calling thread is core `c`, the only thread using cache `c`.
            Some(c) => unsafe { self.caches[c].alloc(&self.class, c as u16, self.pages) },
            None => {
                let (owner, _guard) = self.locks.lock_any();
                // SAFETY: the slot's lock makes us its cache's only user.
                unsafe { self.caches[owner].alloc(&self.class, owner as u16, self.pages) }
            }
        };
        NonNull::new(p)
    }

    /// Frees an object from [`alloc`](Self::alloc), on any thread. A foreign object goes back
    /// to its owner's cache.
    ///
    /// # Safety
    ///
    /// `obj` must come from `alloc` on this allocator, and must not be used afterwards nor
    /// freed twice.
    #[inline]
    pub unsafe fn free(&self, obj: NonNull<u8>) {
        match current_owner() {
            Some(c) => {
                // SAFETY: core `c` alone uses cache `c`; `obj` is a live object of ours.
                let r = unsafe { self.caches[c].free(obj, &self.class, c as u16, self.pages) };
                if let Err(owner) = r {
                    // SAFETY: the object belongs to `owner`'s cache.
                    unsafe { self.caches[owner as usize].free_remote(obj) };
                }
            }
            // SAFETY: forwarded contract.
            None => unsafe { self.free_off_core(obj) },
        }
    }

    /// # Safety
    ///
    /// As [`free`](Self::free).
    unsafe fn free_off_core(&self, obj: NonNull<u8>) {
        // SAFETY: `obj` is live, so its slab and owner are stable.
        let owner = unsafe { owner_of(obj, &self.class) };
        if owner >= MAX_CORES {
            let _guard = self.locks.lock(owner);
            // SAFETY: the slot's lock makes us its cache's only user; it owns the object.
            let r = unsafe { self.caches[owner].free(obj, &self.class, owner as u16, self.pages) };
            debug_assert!(r.is_ok());
        } else {
            // SAFETY: the object belongs to core `owner`'s cache.
            unsafe { self.caches[owner].free_remote(obj) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::test_source::HeapPages;
    use crate::percore::CoreGuard;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::{mpsc, Barrier};
    use std::thread;
    use std::vec::Vec;

    fn pages() -> PageAllocator<HeapPages> {
        PageAllocator::with_region_bytes(HeapPages::default(), 0)
    }

    fn addr(p: NonNull<u8>) -> usize {
        p.as_ptr() as usize
    }

    #[test]
    fn class_layouts() {
        let c = SlabClass::new(1, 1);
        assert_eq!((c.object_size(), c.object_align(), c.slab_bytes()), (8, 8, 64 << 10));
        assert_eq!(c.objects_per_slab(), ((64 << 10) - 64) / 8);
        let c = SlabClass::new(100, 32);
        assert_eq!(c.object_size(), 128);
        let c = SlabClass::new(4096, 4096);
        // The first object starts one page in; eight of them need a 64 KiB slab.
        assert_eq!((c.slab_bytes(), c.objects_per_slab()), (64 << 10, 15));
        let c = SlabClass::new(32 << 10, 4096);
        assert_eq!((c.slab_bytes(), c.objects_per_slab()), (512 << 10, 15));
    }

    #[test]
    fn one_core_allocates_aligned_distinct_objects_and_reuses_freed_ones() {
        let pages = pages();
        let slab = SlabAllocator::new(48, 16, &pages);
        thread::scope(|s| {
            s.spawn(|| {
                let _core = CoreGuard::enter(0);
                let n = 5 * slab.class().objects_per_slab();
                let mut objs: Vec<NonNull<u8>> = (0..n).map(|_| slab.alloc().unwrap()).collect();
                for (i, o) in objs.iter().enumerate() {
                    assert_eq!(addr(*o) % 16, 0);
                    // SAFETY: each object is ours and 48 bytes long.
                    unsafe { ptr::write_bytes(o.as_ptr(), i as u8, 48) };
                }
                let mut sorted: Vec<usize> = objs.iter().map(|&o| addr(o)).collect();
                sorted.sort_unstable();
                assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 48), "objects overlap");
                for (i, o) in objs.iter().enumerate() {
                    // SAFETY: as above.
                    let bytes = unsafe { core::slice::from_raw_parts(o.as_ptr(), 48) };
                    assert!(bytes.iter().all(|&b| b == i as u8), "object {i} was overwritten");
                }
                let used = pages.free_pages();
                let last = objs.pop().unwrap();
                // SAFETY: freed once, not used afterwards.
                unsafe { slab.free(last) };
                assert_eq!(slab.alloc(), Some(last), "a freed object is reused first");
                objs.push(last);
                for o in objs.drain(..) {
                    // SAFETY: freed once.
                    unsafe { slab.free(o) };
                }
                // Of five slabs, the current one and KEEP_EMPTY (2) empty ones stay with the
                // cache; the other two go back to the page allocator.
                let slab_pages = 1 << slab.class().slab_order();
                assert_eq!(pages.free_pages(), used + 2 * slab_pages);
                let again: Vec<_> = (0..n).map(|_| slab.alloc().unwrap()).collect();
                assert_eq!(pages.free_pages(), used, "the same number of slabs serves again");
                for o in again {
                    // SAFETY: freed once.
                    unsafe { slab.free(o) };
                }
            });
        });
    }

    #[test]
    fn remote_frees_go_home_and_are_reused() {
        let pages = pages();
        let slab = SlabAllocator::new(64, 8, &pages);
        let per_slab = slab.class().objects_per_slab();
        let (to_core1, from_core0) = mpsc::channel::<Vec<usize>>();
        let (back, done) = mpsc::channel::<()>();
        thread::scope(|s| {
            let slab = &slab;
            s.spawn(move || {
                let _core = CoreGuard::enter(0);
                let objs: Vec<usize> =
                    (0..per_slab / 2).map(|_| addr(slab.alloc().unwrap())).collect();
                to_core1.send(objs.clone()).unwrap();
                done.recv().unwrap();
                // Core 1 freed them all; core 0 takes them back when its own list runs dry.
                // Exhaust the bump area of the current slab first.
                let mut fresh = Vec::new();
                let mut reused = 0;
                for _ in 0..per_slab {
                    let o = slab.alloc().unwrap();
                    if objs.contains(&addr(o)) {
                        reused += 1;
                    }
                    fresh.push(o);
                }
                assert_eq!(reused, objs.len(), "every remotely freed object came home");
                for o in fresh {
                    // SAFETY: freed once.
                    unsafe { slab.free(o) };
                }
            });
            s.spawn(move || {
                let _core = CoreGuard::enter(1);
                let objs = from_core0.recv().unwrap();
                for a in objs {
                    // SAFETY: objects core 0 gave up; freed once.
                    unsafe { slab.free(NonNull::new(a as *mut u8).unwrap()) };
                }
                // Nothing went into core 1's own cache: its next object is fresh.
                let mine = slab.alloc().unwrap();
                // SAFETY: just allocated; freed once.
                assert_eq!(unsafe { owner_of(mine, slab.class()) }, 1);
                // SAFETY: freed once.
                unsafe { slab.free(mine) };
                back.send(()).unwrap();
            });
        });
    }

    #[test]
    fn threads_that_are_not_cores_use_fallback_slots() {
        let pages = pages();
        let slab = SlabAllocator::new(24, 8, &pages);
        let (tx, rx) = mpsc::channel::<Vec<usize>>();
        thread::scope(|s| {
            let slab = &slab;
            s.spawn(move || {
                let objs: Vec<usize> = (0..1000).map(|_| addr(slab.alloc().unwrap())).collect();
                for &o in &objs {
                    // SAFETY: a live object of this allocator.
                    let owner =
                        unsafe { owner_of(NonNull::new(o as *mut u8).unwrap(), slab.class()) };
                    assert!(owner >= MAX_CORES);
                }
                tx.send(objs).unwrap();
            });
            s.spawn(move || {
                let _core = CoreGuard::enter(2);
                // A core frees objects a fallback slot owns: they are queued to the slot.
                for o in rx.recv().unwrap() {
                    // SAFETY: freed once.
                    unsafe { slab.free(NonNull::new(o as *mut u8).unwrap()) };
                }
            });
        });
        // The next non-core allocations drain the slot's remote list and reuse the objects.
        let mut objs = Vec::new();
        for _ in 0..2000 {
            objs.push(slab.alloc().unwrap());
        }
        let mut sorted: Vec<usize> = objs.iter().map(|&o| addr(o)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 2000);
        for o in objs {
            // SAFETY: freed once.
            unsafe { slab.free(o) };
        }
    }

    #[test]
    fn many_threads_stress() {
        let pages = pages();
        let slab = SlabAllocator::new(40, 8, &pages);
        let threads = 8;
        let barrier = Barrier::new(threads);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| mpsc::channel::<Vec<usize>>()).unzip();
        thread::scope(|s| {
            for (t, rx) in receivers.into_iter().enumerate() {
                let slab = &slab;
                let barrier = &barrier;
                let next = senders[(t + 1) % threads].clone();
                s.spawn(move || {
                    // Half the threads are cores, half are not.
                    let _core = (t % 2 == 0).then(|| CoreGuard::enter(10 + t));
                    barrier.wait();
                    for round in 0..50usize {
                        let objs: Vec<usize> = (0..500)
                            .map(|i| {
                                let o = slab.alloc().unwrap();
                                // SAFETY: our object, 40 bytes.
                                unsafe {
                                    o.as_ptr().cast::<usize>().write(t << 32 | round << 16 | i)
                                };
                                addr(o)
                            })
                            .collect();
                        // Free half here, give the other half to the next thread.
                        let (mine, theirs) = objs.split_at(250);
                        for (i, &o) in mine.iter().enumerate() {
                            // SAFETY: our object; freed once.
                            unsafe {
                                assert_eq!(*(o as *const usize), t << 32 | round << 16 | i);
                                slab.free(NonNull::new(o as *mut u8).unwrap());
                            }
                        }
                        next.send(theirs.to_vec()).unwrap();
                        for o in rx.recv().unwrap() {
                            // SAFETY: given to us by the previous thread; freed once.
                            unsafe {
                                assert_eq!(*(o as *const usize) >> 16 & 0xffff, round);
                                slab.free(NonNull::new(o as *mut u8).unwrap());
                            }
                        }
                    }
                });
            }
        });
        drop(senders);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn random_alloc_free_never_overlaps(
            size in 1usize..600,
            align_shift in 0u32..7,
            ops in proptest::collection::vec((any::<bool>(), any::<usize>()), 1..3000),
        ) {
            let pages = pages();
            let slab = SlabAllocator::new(size, 1 << align_shift, &pages);
            let class = *slab.class();
            let result = thread::scope(|s| {
                s.spawn(|| -> Result<(), TestCaseError> {
                    let _core = CoreGuard::enter(3);
                    let mut live: BTreeMap<usize, u64> = BTreeMap::new();
                    let mut tag = 0u64;
                    for (alloc, pick) in ops {
                        if alloc || live.is_empty() {
                            let o = addr(slab.alloc().unwrap());
                            prop_assert_eq!(o % class.object_align(), 0);
                            if let Some((&below, _)) = live.range(..o).next_back() {
                                prop_assert!(below + size <= o);
                            }
                            if let Some((&above, _)) = live.range(o..).next() {
                                prop_assert!(o + size <= above);
                            }
                            tag += 1;
                            // SAFETY: our object, at least 8 bytes.
                            unsafe { (o as *mut u64).write(tag) };
                            live.insert(o, tag);
                        } else {
                            let k = *live.keys().nth(pick % live.len()).unwrap();
                            let t = live.remove(&k).unwrap();
                            // SAFETY: a live object of ours; freed once.
                            unsafe {
                                prop_assert_eq!((k as *const u64).read(), t);
                                slab.free(NonNull::new(k as *mut u8).unwrap());
                            }
                        }
                    }
                    for (k, _) in live {
                        // SAFETY: freed once.
                        unsafe { slab.free(NonNull::new(k as *mut u8).unwrap()) };
                    }
                    Ok(())
                }).join().unwrap()
            });
            result?;
        }
    }
}
