//! Memory for cairn's allocators in a Linux process: an `mmap` page source and the global
//! allocator built on it.
//!
//! [`MmapPages`] implements [`PageSource`] with anonymous private mappings. The page allocator
//! asks it for 64 MiB at a time ([`DEFAULT_REGION_BYTES`]); each region is mapped with
//! `MAP_NORESERVE`, so address space is reserved but a page costs memory only once it is
//! touched, and is aligned to the buddy allocator's largest block by mapping a little more and
//! unmapping the ends. Allocations above 4 MiB get a mapping of their own, unmapped when freed.
//!
//! [`HostedAllocator`] is cairn's [`GeneralAllocator`] over `MmapPages`, with a `const`
//! constructor so a binary can install it as its global allocator:
//!
//! ```no_run
//! use cairn_hosted::pages::HostedAllocator;
//!
//! #[global_allocator]
//! static ALLOC: HostedAllocator = HostedAllocator::new();
//!
//! fn main() {
//!     let v: Vec<u32> = (0..1000).collect(); // served by cairn's per-core slab caches
//!     assert_eq!(v.len(), 1000);
//! }
//! ```
//!
//! Threads that run as cairn cores allocate from their core's caches without locks; every
//! other thread of the process (std's, the test harness's) is served correctly through the
//! shared fallback caches (see `cairn_rt::mem::general`).
//!
//! This follows EbbRT's hosted runtime (OSDI 2016), whose memory comes from the Linux process
//! while its Ebbs above are the same as on the native kernel.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

pub use cairn_rt::mem::page::DEFAULT_REGION_BYTES;
use cairn_rt::mem::{GeneralAllocator, PageSource, PAGE_SIZE};

/// A [`PageSource`] of anonymous `mmap` memory (`MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE`).
///
/// Stateless: every region is its own mapping, and [`release`](PageSource::release) unmaps it.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmapPages;

impl MmapPages {
    /// The source (it has no state).
    pub const fn new() -> MmapPages {
        MmapPages
    }
}

// SAFETY: every region is a fresh private anonymous mapping, readable and writable, which no
// one else knows about; it stays mapped until `release` unmaps exactly it. Nothing here
// allocates from the heap (only the mmap and munmap system calls).
unsafe impl PageSource for MmapPages {
    fn grow(&self, min_bytes: usize, align: usize) -> Option<(NonNull<u8>, usize)> {
        let align = align.max(PAGE_SIZE);
        let len = min_bytes.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
        // Map enough to find an aligned start inside, then trim both ends.
        let map_len = len.checked_add(align - PAGE_SIZE)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let raw = raw as usize;
        let start = (raw + align - 1) & !(align - 1);
        let head = start - raw;
        let tail = map_len - head - len;
        // SAFETY: both ranges are page-aligned pieces of the mapping just made that we do not
        // hand out.
        unsafe {
            if head > 0 {
                libc::munmap(raw as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((start + len) as *mut libc::c_void, tail);
            }
        }
        NonNull::new(start as *mut u8).map(|p| (p, len))
    }

    unsafe fn release(&self, start: NonNull<u8>, len: usize) -> bool {
        // SAFETY: the caller gives back exactly a region `grow` mapped, which nothing uses.
        unsafe { libc::munmap(start.as_ptr().cast(), len) == 0 }
    }
}

/// cairn's general-purpose allocator over `mmap`, ready to be a `#[global_allocator]`.
///
/// See the [module docs](self) for how to install it. [`general`](Self::general) gives the
/// underlying [`GeneralAllocator`] for statistics.
pub struct HostedAllocator(GeneralAllocator<MmapPages>);

impl HostedAllocator {
    /// A new allocator; no memory is mapped until the first allocation.
    pub const fn new() -> HostedAllocator {
        HostedAllocator(GeneralAllocator::new(MmapPages::new()))
    }

    /// The general-purpose allocator inside.
    pub fn general(&self) -> &GeneralAllocator<MmapPages> {
        &self.0
    }
}

impl Default for HostedAllocator {
    fn default() -> Self {
        HostedAllocator::new()
    }
}

// SAFETY: forwards to `GeneralAllocator`'s `GlobalAlloc`, which upholds the contract.
unsafe impl GlobalAlloc for HostedAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_rt::mem::MAX_BLOCK_BYTES;
    use cairn_rt::percore::CoreGuard;

    #[test]
    fn regions_are_aligned_writable_and_released() {
        let src = MmapPages::new();
        let (p, len) = src.grow(3 * PAGE_SIZE + 1, MAX_BLOCK_BYTES).unwrap();
        assert_eq!(p.as_ptr() as usize % MAX_BLOCK_BYTES, 0);
        assert_eq!(len, 4 * PAGE_SIZE);
        // SAFETY: the region is ours and `len` bytes long.
        unsafe {
            ptr::write_bytes(p.as_ptr(), 0x5a, len);
            assert_eq!(*p.as_ptr().add(len - 1), 0x5a);
            assert!(src.release(p, len));
        }
    }

    #[test]
    fn hosted_allocator_serves_cores_and_other_threads() {
        static A: HostedAllocator = HostedAllocator::new();
        let layout = Layout::from_size_align(40, 8).unwrap();
        let on_core = std::thread::spawn(move || {
            let _core = CoreGuard::enter(0);
            // SAFETY: non-zero size.
            unsafe { A.alloc(layout) as usize }
        })
        .join()
        .unwrap();
        // A thread that is not a core frees a core's object: it goes back to core 0's cache.
        // SAFETY: allocated above with this layout; freed once.
        unsafe { A.dealloc(on_core as *mut u8, layout) };
        // SAFETY: non-zero size.
        let big = unsafe { A.alloc(Layout::from_size_align(10 << 20, 4096).unwrap()) };
        assert!(!big.is_null());
        // SAFETY: the block is 10 MiB long; freed once with its layout.
        unsafe {
            ptr::write_bytes(big, 1, 10 << 20);
            A.dealloc(big, Layout::from_size_align(10 << 20, 4096).unwrap());
        }
        assert!(A.general().pages().region_count() >= 1);
    }
}
