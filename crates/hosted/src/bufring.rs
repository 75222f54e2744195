//! A provided-buffer ring: receive buffers the kernel picks from, lent to the application as
//! IOBufs without a copy.
//!
//! With multishot receive (Linux 6.0), one submission keeps a socket receiving: each time data
//! arrives the kernel takes a buffer from the core's ring, fills it and posts a completion that
//! names it. cairn hands that buffer to the application as an external [`IoBuf`] over the
//! ring's memory; when the last buffer over it drops, its release hook puts it back in the ring
//! (on the owning core, or by `spawn_on` to it from anywhere else). The ring's memory is mapped
//! once, so no receive allocates or zeroes a buffer.
//!
//! The ring is written only by its core: the tail and the entries are application-owned, the
//! kernel only reads them (io_uring_register_buf_ring(3)).

use std::cell::Cell;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use cairn_rt::event::{EventManager, Runtime};
use cairn_rt::iobuf::IoBuf;
use cairn_rt::{percore, CoreId};
use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The buffer group id of every core's ring (each ring registers with its own io_uring).
pub const GROUP: u16 = 0;

/// Buffers per ring (a power of two).
pub const BUFFERS: u16 = 256;

/// Bytes per buffer.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { base: NonNull::new(p as *mut u8).expect("mmap returned null"), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.len) };
    }
}

/// One core's provided-buffer ring and the buffers it hands out.
pub struct BufRing {
    ring: Mapping,
    buffers: Mapping,
    /// The next tail to publish; the published tail lives in the ring itself.
    tail: Cell<u16>,
    core: CoreId,
    runtime: &'static Runtime,
    lent: Cell<usize>,
    lends: Cell<u64>,
}

// SAFETY: a BufRing is only read and written on its own core: `recycle` checks the calling core
// and sends the work home with `spawn_on` otherwise. The release hooks that other threads run
// only read `core` and `runtime`, which never change.
unsafe impl Sync for BufRing {}
// SAFETY: as above; the mappings are plain memory.
unsafe impl Send for BufRing {}

impl BufRing {
    /// Maps and registers a ring of [`BUFFERS`] buffers with `ring` (the calling core's), filled.
    pub fn register(ring: &IoUring, runtime: &'static Runtime) -> io::Result<&'static BufRing> {
        let core = percore::current_core().expect("BufRing::register off a cairn core");
        let entries = BUFFERS as usize;
        let ring_bytes = (entries * std::mem::size_of::<BufRingEntry>()).max(4096);
        let this: &'static BufRing = Box::leak(Box::new(BufRing {
            ring: Mapping::new(ring_bytes)?,
            buffers: Mapping::new(entries * BUFFER_SIZE)?,
            tail: Cell::new(0),
            core,
            runtime,
            lent: Cell::new(0),
            lends: Cell::new(0),
        }));
        // SAFETY: the ring mapping is page-aligned, zeroed, large enough for `entries` entries
        // and lives for the rest of the program (the BufRing is leaked).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                this.ring.base.as_ptr() as u64,
                BUFFERS,
                GROUP,
                0,
            )?
        };
        for bid in 0..BUFFERS {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    fn entries(&self) -> *mut BufRingEntry {
        self.ring.base.as_ptr() as *mut BufRingEntry
    }

    fn buffer(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < BUFFERS);
        // SAFETY: bid < BUFFERS, so the offset is inside the buffers mapping.
        unsafe { self.buffers.base.as_ptr().add(bid as usize * BUFFER_SIZE) }
    }

    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let index = (tail & (BUFFERS - 1)) as usize;
        // SAFETY: index < BUFFERS, inside the ring mapping; only this core writes entries, and the
        // kernel reads an entry only once the published tail covers it.
        let entry = unsafe { &mut *self.entries().add(index) };
        entry.set_addr(self.buffer(bid) as u64);
        entry.set_len(BUFFER_SIZE as u32);
        entry.set_bid(bid);
        self.tail.set(tail.wrapping_add(1));
    }

    fn publish(&self) {
        // SAFETY: the tail field sits in the ring mapping's first entry (BufRingEntry::tail);
        // it is an aligned u16 the kernel reads with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries()) as *const AtomicU16) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// Returns buffer `bid` to the ring. Runs on the owning core, or is sent there.
    pub fn recycle(&'static self, bid: u16) {
        if percore::current_core() == Some(self.core) && EventManager::try_current().is_some() {
            self.push(bid);
            self.publish();
            self.lent.set(self.lent.get() - 1);
        } else {
            self.runtime.spawn_on(self.core, move || self.recycle(bid));
        }
    }

    /// Lends the `len` received bytes of buffer `bid` as an IOBuf that comes back to the ring
    /// when the last buffer over it drops.
    pub fn lend(&'static self, bid: u16, len: usize) -> IoBuf {
        assert!(bid < BUFFERS && len <= BUFFER_SIZE, "kernel named buffer {bid} with {len} bytes");
        self.lent.set(self.lent.get() + 1);
        self.lends.set(self.lends.get() + 1);
        let base = NonNull::new(self.buffer(bid)).expect("buffer address");
        // SAFETY: the kernel has finished writing the buffer (its completion arrived) and will
        // not touch it again until `recycle` puts it back in the ring, which happens only after
        // the last IoBuf over it is gone. The memory is initialised (mapped zeroed, then written
        // by the kernel) and lives for the rest of the program.
        unsafe { IoBuf::from_external(base, BUFFER_SIZE, 0..len, move |_, _| self.recycle(bid)) }
    }

    /// Buffers currently lent out to the application.
    pub fn lent(&self) -> usize {
        self.lent.get()
    }

    /// Buffers lent out since the ring was made.
    pub fn total_lends(&self) -> u64 {
        self.lends.get()
    }
}
