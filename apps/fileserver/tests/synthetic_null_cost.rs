//! `dev/null` is the target of `cairn bench 9p` (PROSE's write experiment), so a write to it
//! must cost the server nothing per byte or per call: no allocation and no copy. This test
//! binary counts the calling thread's heap allocations with a counting global allocator.

mod synthetic_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cairn_9p::server::FileServer;
use cairn_fileserver::synthetic::Synthetic;
use cairn_rt::event::block_on_ready;
use cairn_rt::iobuf::bytes_copied;
use synthetic_support::*;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting each thread's allocations.
struct Counting;

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn writes_to_dev_null_allocate_and_copy_nothing() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let null = open(&fs, "dev/null", O_WRONLY).unwrap();
        let payloads: Vec<Vec<u8>> = [1usize, 64, 1024, 8192, 65536].map(|n| vec![1; n]).into();
        let probe_before = ALLOCATIONS.with(Cell::get);
        let probe = std::hint::black_box(vec![0u8; 16]);
        assert!(ALLOCATIONS.with(Cell::get) > probe_before, "the allocator counts");
        drop(probe);
        let allocations = ALLOCATIONS.with(Cell::get);
        let copied = bytes_copied();
        let mut taken = 0u64;
        for i in 0..10_000 {
            let data = &payloads[i % payloads.len()];
            // The write completes without waiting, so it is polled once on this thread.
            taken += u64::from(block_on_ready(fs.write(&null, 0, data)).unwrap());
        }
        assert_eq!(ALLOCATIONS.with(Cell::get), allocations, "writes to dev/null allocated");
        assert_eq!(bytes_copied(), copied, "writes to dev/null copied");
        assert_eq!(taken, 2_000 * (1 + 64 + 1024 + 8192 + 65536));
    });
}
