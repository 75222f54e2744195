//! The four single-producer, single-consumer rings an AF_XDP socket shares with the kernel.
//!
//! Each ring is mapped from the socket at its page offset; `XDP_MMAP_OFFSETS` says where its
//! producer index, consumer index, flags word and entries sit. Indices are free-running `u32`s
//! (entry `i` lives at `i & (size - 1)`). cairn produces on the fill and TX rings and consumes
//! on the RX and completion rings.
//!
//! The memory ordering is the one `include/linux/.../xsk_queue.h` documents for the kernel's
//! side: a producer writes entries, then stores its index with Release; a consumer loads the
//! producer index with Acquire before reading entries, and stores its own index with Release
//! after reading them, so the producer, which loads the consumer index with Acquire, never
//! overwrites an entry still being read.

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{XdpRingOffset, XDP_RING_NEED_WAKEUP};

/// Which side of the ring cairn is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// cairn writes entries (fill, TX).
    Producer,
    /// cairn reads entries (RX, completion).
    Consumer,
}

/// A mapped ring of `T` entries (`u64` addresses, or descriptors).
pub(crate) struct Ring<T> {
    base: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
    size: u32,
    /// cairn's own index: the producer index on a producer ring (may run ahead of the
    /// published one until [`Ring::publish`]), the consumer index on a consumer ring.
    local: u32,
    /// The kernel's index as last loaded.
    peer: u32,
    _entries: PhantomData<T>,
}

// SAFETY: the ring is plain shared memory plus atomics; one owner uses it at a time (`&mut`
// for every index change), so moving it to another thread is sound.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps the ring of `size` entries (a power of two, as set by its `setsockopt`) found at
    /// page offset `pgoff` of socket `fd`, laid out as `offsets` says.
    pub(crate) fn map(
        fd: &OwnedFd,
        offsets: &XdpRingOffset,
        size: u32,
        pgoff: i64,
        role: Role,
    ) -> io::Result<Ring<T>> {
        assert!(size.is_power_of_two(), "ring size {size} is not a power of two");
        let map_len = offsets.desc as usize + size as usize * size_of::<T>();
        // SAFETY: maps the socket's ring into fresh address space; the kernel checks the
        // offset and length against the ring it allocated.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).expect("mmap returned null");
        let at = |offset: u64| {
            assert!(offset as usize + 4 <= map_len, "ring offset {offset} outside the mapping");
            // SAFETY: the offset lies inside the mapping (checked above).
            unsafe { base.add(offset as usize) }
        };
        let mut ring = Ring {
            base,
            map_len,
            producer: at(offsets.producer).cast(),
            consumer: at(offsets.consumer).cast(),
            flags: at(offsets.flags).cast(),
            entries: at(offsets.desc).cast(),
            mask: size - 1,
            size,
            local: 0,
            peer: 0,
            _entries: PhantomData,
        };
        (ring.local, ring.peer) = match role {
            Role::Producer => (ring.producer().load(Ordering::Relaxed), ring.consumer_index()),
            Role::Consumer => (ring.consumer().load(Ordering::Relaxed), ring.producer_index()),
        };
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: the producer index is an aligned u32 inside the mapping, which lives as long
        // as `self`; the kernel accesses it atomically too.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// The kernel's producer index; Acquire, so the entries it published are visible.
    fn producer_index(&self) -> u32 {
        self.producer().load(Ordering::Acquire)
    }

    /// The kernel's consumer index; Acquire, so its reads of the entries before it are done.
    fn consumer_index(&self) -> u32 {
        self.consumer().load(Ordering::Acquire)
    }

    /// Entries in the ring.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Whether the kernel asked for a wakeup system call (`XDP_USE_NEED_WAKEUP`).
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: the flags word is an aligned u32 inside the mapping.
        let flags = unsafe { self.flags.as_ref() };
        flags.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: `index & mask < size`, inside the entries array of the mapping.
        unsafe { self.entries.as_ptr().add((index & self.mask) as usize) }
    }

    // ---- producer side (fill, TX) ----

    /// Free entries, reloading the kernel's consumer index only when fewer than `wanted` seem
    /// free.
    pub(crate) fn free(&mut self, wanted: u32) -> u32 {
        let mut free = self.size - self.local.wrapping_sub(self.peer);
        if free < wanted {
            self.peer = self.consumer_index();
            free = self.size - self.local.wrapping_sub(self.peer);
        }
        free
    }

    /// Writes `entry` into the next slot; visible to the kernel after [`Ring::publish`].
    ///
    /// # Panics
    ///
    /// If the ring is full (call [`Ring::free`] first).
    pub(crate) fn push(&mut self, entry: T) {
        assert!(self.free(1) > 0, "push onto a full ring");
        // SAFETY: the slot is free: the kernel's consumer index (Acquire-loaded) has passed it,
        // so the kernel no longer reads it, and it does not read it again until published.
        unsafe { self.slot(self.local).write(entry) };
        self.local = self.local.wrapping_add(1);
    }

    /// Entries pushed but not yet published.
    pub(crate) fn unpublished(&self) -> u32 {
        self.local.wrapping_sub(self.producer().load(Ordering::Relaxed))
    }

    /// Publishes every pushed entry to the kernel (Release: the entries' bytes first).
    pub(crate) fn publish(&mut self) {
        self.producer().store(self.local, Ordering::Release);
    }

    /// Published entries the kernel has not consumed yet.
    pub(crate) fn outstanding(&mut self) -> u32 {
        self.peer = self.consumer_index();
        self.producer().load(Ordering::Relaxed).wrapping_sub(self.peer)
    }

    // ---- consumer side (RX, completion) ----

    /// Entries waiting to be read, reloading the kernel's producer index when none seem to be.
    pub(crate) fn available(&mut self) -> u32 {
        if self.peer == self.local {
            self.peer = self.producer_index();
        }
        self.peer.wrapping_sub(self.local)
    }

    /// Entry `i` of those [`Ring::available`] reported.
    pub(crate) fn read(&self, i: u32) -> T {
        debug_assert!(i < self.peer.wrapping_sub(self.local));
        // SAFETY: the entry lies before the Acquire-loaded producer index, so the kernel has
        // written it and does not touch it until the consumer index passes it.
        unsafe { self.slot(self.local.wrapping_add(i)).read() }
    }

    /// Hands `n` read entries back to the kernel (Release: the reads happen first).
    pub(crate) fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.consumer().store(self.local, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; nothing points into it afterwards.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}
