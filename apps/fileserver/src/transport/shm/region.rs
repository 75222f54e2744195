//! The shared memory of one shared-memory channel: its layout, the mapping, the SPSC rings of
//! message slots and the payload areas.
//!
//! PROSE (papers/003, "shared memory channels") connects a partition and its controller with
//! ring buffers in shared memory. Here one memory file holds, for each direction, a
//! single-producer single-consumer ring of fixed message slots and a payload region:
//!
//! ```text
//! page 0      header: magic, version, waiting mode, geometry; per side a "sleeping" flag
//!             and a "closed" flag, each on its own cache line
//! direction 0 (client to server), then direction 1 (server to client), each:
//!   ring      tail (written by the sender), head (written by the receiver), own lines
//!   chunks    per payload chunk: refs, head_of, run (u32 each)
//!   slots     `slots` slots of `slot_size` bytes: len[4] kind[4] offset[8], then inline data
//!   payload   `chunks` chunks of `chunk_size` bytes
//! ```
//!
//! A slot holds a small message inline, or a descriptor of a message that lies whole in the
//! sender's payload region, so a large `Twrite` or `Rread` passes by reference. The sender
//! allocates payload runs (next fit over the chunk table); the receiver lends the run out as a
//! [`SharedIoBuf`] and releases it when the last buffer over it drops, by decrementing the
//! run's reference count in shared memory.
//!
//! Memory ordering: the sender writes a slot (and its payload) and then publishes it with a
//! Release store of `tail`; the receiver reads `tail` with Acquire before reading the slot, and
//! frees it with a Release store of `head`, which the sender reads with Acquire before reusing
//! it. Payload runs follow the same rule through their reference counts: the last release is
//! an AcqRel decrement followed by Release stores that clear the run, which the allocating
//! sender reads with Acquire.
//!
//! The peer is another process and could write anything into the shared memory. Every index,
//! offset and length read from it is checked before use, so a misbehaving peer can garble its
//! own messages but cannot make this side read or write outside the mapping.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// "CAIRN9PS", little-endian: the first word of every channel.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CAIRN9PS");
/// The layout version this code speaks.
pub const VERSION: u32 = 1;
/// Bytes of a slot's descriptor before its inline data.
pub const SLOT_HEADER: usize = 16;
const LINE: usize = 64;
const PAGE: usize = 4096;
/// The biggest channel either side agrees to map.
const MAX_TOTAL: usize = 1 << 30;

/// A slot whose message is inline.
const KIND_INLINE: u32 = 0;
/// A slot whose message is in the payload region at the slot's offset.
const KIND_PAYLOAD: u32 = 1;
/// `refs` of a chunk that continues a run.
const CONTINUATION: u32 = u32::MAX;

/// The sizes of a channel, chosen by the client and recorded in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Slots per ring (a power of two).
    pub slots: u32,
    /// Bytes per slot, descriptor included (a multiple of 64).
    pub slot_size: u32,
    /// Bytes per payload chunk (a multiple of 4096).
    pub chunk_size: u32,
    /// Payload chunks per direction.
    pub chunks: u32,
}

impl Default for Geometry {
    /// 64 slots of 8 KiB and 8 MiB of payload (512 chunks of 16 KiB) per direction.
    fn default() -> Self {
        Geometry { slots: 64, slot_size: 8192, chunk_size: 16 * 1024, chunks: 512 }
    }
}

impl Geometry {
    /// Whether the sizes are sane (the server checks what the client wrote).
    pub fn is_valid(&self) -> bool {
        self.slots.is_power_of_two()
            && (2..=4096).contains(&self.slots)
            && self.slot_size as usize % LINE == 0
            && (LINE as u32..=1 << 20).contains(&self.slot_size)
            && self.chunk_size as usize % PAGE == 0
            && (PAGE as u32..=16 << 20).contains(&self.chunk_size)
            && (1..=65536).contains(&self.chunks)
            && Layout::new(*self).total <= MAX_TOTAL
    }

    /// Bytes of the payload region of one direction: the largest message by reference.
    pub fn payload_bytes(&self) -> usize {
        self.chunks as usize * self.chunk_size as usize
    }

    /// The largest message a slot holds inline.
    pub fn inline_max(&self) -> usize {
        self.slot_size as usize - SLOT_HEADER
    }
}

/// Where one direction's parts lie, as offsets from the start of the mapping.
#[derive(Clone, Copy, Debug)]
struct DirLayout {
    tail: usize,
    head: usize,
    refs: usize,
    head_of: usize,
    run: usize,
    slots: usize,
    payload: usize,
}

/// Where everything lies.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    geometry: Geometry,
    dirs: [DirLayout; 2],
    /// Bytes of the whole channel.
    pub total: usize,
}

mod header {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const MODE: usize = 12;
    pub const SLOTS: usize = 16;
    pub const SLOT_SIZE: usize = 20;
    pub const CHUNK_SIZE: usize = 24;
    pub const CHUNKS: usize = 28;
    /// `sleeping[side]` at `SLEEPING + side * 64`.
    pub const SLEEPING: usize = 64;
    /// `closed[side]` at `CLOSED + side * 64`.
    pub const CLOSED: usize = 192;
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Layout {
    /// The layout of a channel of `geometry` (which must be valid for the sizes to be sane).
    pub fn new(geometry: Geometry) -> Layout {
        let mut at = PAGE;
        let chunks = geometry.chunks as usize;
        let mut dir = || {
            let tail = at;
            let head = at + LINE;
            let refs = at + 2 * LINE;
            let head_of = refs + 4 * chunks;
            let run = head_of + 4 * chunks;
            let slots = round_up(run + 4 * chunks, LINE);
            let slots_end = slots + geometry.slots as usize * geometry.slot_size as usize;
            let payload = round_up(slots_end, PAGE);
            at = payload + chunks * geometry.chunk_size as usize;
            DirLayout { tail, head, refs, head_of, run, slots, payload }
        };
        let dirs = [dir(), dir()];
        Layout { geometry, dirs, total: at }
    }
}

/// One of the two ends of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The side that made the memory file and connected.
    Client = 0,
    /// The side that accepted.
    Server = 1,
}

impl Side {
    /// The direction this side sends on.
    pub fn tx(self) -> usize {
        self as usize
    }

    /// The direction this side receives on.
    pub fn rx(self) -> usize {
        1 - self as usize
    }

    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A shared mapping of a channel's memory file, unmapped on drop.
pub struct Region {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the mapping is plain shared memory that lives until the Region drops; every access
// to it goes through atomics or through copies into and out of ranges whose ownership the
// ring protocol hands between the two sides, so it may be used from any thread.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` offers no unsynchronised mutation.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made by `map`, which nothing uses any more (every
        // buffer over it holds the Arc this Region lives in).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.layout.total) };
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new memory file of `len` bytes.
pub fn create_memfd(len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new descriptor.
    let fd = check(unsafe { libc::memfd_create(c"cairn-9p-shm".as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: the descriptor is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate has no memory arguments.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    Ok(fd)
}

/// A new eventfd doorbell (non-blocking, close-on-exec).
pub fn create_eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory arguments.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: the descriptor is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Rings an eventfd doorbell.
pub fn ring(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`; an eventfd write only fails when the counter would
    // overflow, in which case the doorbell is already ringing.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

impl Region {
    /// Maps the memory file `fd` of a channel of `geometry` shared and writable.
    fn map(fd: BorrowedFd<'_>, geometry: Geometry) -> io::Result<Region> {
        let layout = Layout::new(geometry);
        // SAFETY: a fresh shared mapping of the file at no fixed address touches no existing
        // memory; the file is at least `layout.total` bytes (checked by the callers).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).expect("mmap returned null");
        Ok(Region { base, layout })
    }

    /// Makes a channel: a memory file sized for `geometry`, mapped, with its header written.
    pub fn create(geometry: Geometry, mode: u32) -> io::Result<(Region, OwnedFd)> {
        if !geometry.is_valid() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad shm geometry"));
        }
        let fd = create_memfd(Layout::new(geometry).total)?;
        let region = Region::map(fd.as_fd_borrowed(), geometry)?;
        let words = [
            (header::VERSION, VERSION),
            (header::MODE, mode),
            (header::SLOTS, geometry.slots),
            (header::SLOT_SIZE, geometry.slot_size),
            (header::CHUNK_SIZE, geometry.chunk_size),
            (header::CHUNKS, geometry.chunks),
        ];
        for (offset, value) in words {
            region.u32_at(offset).store(value, Ordering::Relaxed);
        }
        region.u64_at(header::MAGIC).store(MAGIC, Ordering::Release);
        Ok((region, fd))
    }

    /// Maps a channel the peer made, after checking its header and its size: returns the
    /// region and the waiting mode word.
    pub fn open(fd: BorrowedFd<'_>) -> io::Result<(Region, u32)> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        // SAFETY: fstat fills the zeroed stat it is given.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a valid out-pointer.
        check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        let size = st.st_size as usize;
        if size < PAGE {
            return Err(bad("shm file smaller than its header"));
        }
        // Read the header through a one-page mapping first.
        let probe = Layout {
            geometry: Geometry { slots: 0, slot_size: 0, chunk_size: 0, chunks: 0 },
            dirs: [DirLayout {
                tail: 0,
                head: 0,
                refs: 0,
                head_of: 0,
                run: 0,
                slots: 0,
                payload: 0,
            }; 2],
            total: PAGE,
        };
        // SAFETY: as in `map`, for one page of a file at least that long.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let head =
            Region { base: NonNull::new(p.cast()).expect("mmap returned null"), layout: probe };
        if head.u64_at(header::MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(bad("not a cairn shm channel"));
        }
        if head.u32_at(header::VERSION).load(Ordering::Relaxed) != VERSION {
            return Err(bad("unknown shm channel version"));
        }
        let geometry = Geometry {
            slots: head.u32_at(header::SLOTS).load(Ordering::Relaxed),
            slot_size: head.u32_at(header::SLOT_SIZE).load(Ordering::Relaxed),
            chunk_size: head.u32_at(header::CHUNK_SIZE).load(Ordering::Relaxed),
            chunks: head.u32_at(header::CHUNKS).load(Ordering::Relaxed),
        };
        let mode = head.u32_at(header::MODE).load(Ordering::Relaxed);
        drop(head);
        if !geometry.is_valid() || Layout::new(geometry).total != size {
            return Err(bad("shm channel geometry does not match its size"));
        }
        Ok((Region::map(fd, geometry)?, mode))
    }

    /// The sizes of this channel.
    pub fn geometry(&self) -> Geometry {
        self.layout.geometry
    }

    fn ptr(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.layout.total);
        // SAFETY: every offset used lies within the mapping (layout offsets, or indexes checked
        // against the geometry by the callers).
        unsafe { self.base.as_ptr().add(offset) }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is 4-aligned within the mapping (layout offsets and u32 tables),
        // and the shared memory is only ever accessed as atomics at these offsets.
        unsafe { &*self.ptr(offset).cast::<AtomicU32>() }
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as for `u32_at`, 8-aligned.
        unsafe { &*self.ptr(offset).cast::<AtomicU64>() }
    }

    /// The "sleeping" flag of `side`: set while it waits on its doorbell.
    pub fn sleeping(&self, side: Side) -> &AtomicU32 {
        self.u32_at(header::SLEEPING + side as usize * LINE)
    }

    /// The "closed" flag of `side`: set once it will send nothing more.
    pub fn closed(&self, side: Side) -> &AtomicU32 {
        self.u32_at(header::CLOSED + side as usize * LINE)
    }

    fn tail(&self, dir: usize) -> &AtomicU32 {
        self.u32_at(self.layout.dirs[dir].tail)
    }

    fn head(&self, dir: usize) -> &AtomicU32 {
        self.u32_at(self.layout.dirs[dir].head)
    }

    fn refs(&self, dir: usize, chunk: usize) -> &AtomicU32 {
        self.u32_at(self.layout.dirs[dir].refs + 4 * chunk)
    }

    fn head_of(&self, dir: usize, chunk: usize) -> &AtomicU32 {
        self.u32_at(self.layout.dirs[dir].head_of + 4 * chunk)
    }

    fn run(&self, dir: usize, chunk: usize) -> &AtomicU32 {
        self.u32_at(self.layout.dirs[dir].run + 4 * chunk)
    }

    fn slot(&self, dir: usize, index: u32) -> usize {
        let g = &self.layout.geometry;
        self.layout.dirs[dir].slots + (index & (g.slots - 1)) as usize * g.slot_size as usize
    }

    /// Where direction `dir`'s payload region starts in memory, and its length.
    pub fn payload_range(&self, dir: usize) -> (*mut u8, usize) {
        (self.ptr(self.layout.dirs[dir].payload), self.layout.geometry.payload_bytes())
    }

    /// Where direction `dir`'s slot ring starts in memory, and its length.
    pub fn slots_range(&self, dir: usize) -> (*mut u8, usize) {
        let g = &self.layout.geometry;
        (self.ptr(self.layout.dirs[dir].slots), g.slots as usize * g.slot_size as usize)
    }

    /// Messages published on `dir` and not yet consumed.
    pub fn queued(&self, dir: usize) -> u32 {
        self.tail(dir).load(Ordering::Acquire).wrapping_sub(self.head(dir).load(Ordering::Acquire))
    }

    /// The sender's view: the slot to fill next, if the ring has room. The returned pointer
    /// addresses `slot_size - SLOT_HEADER` bytes of inline space.
    pub fn free_slot(&self, dir: usize) -> Option<(u32, *mut u8)> {
        let tail = self.tail(dir).load(Ordering::Relaxed);
        let head = self.head(dir).load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= self.layout.geometry.slots {
            return None;
        }
        Some((tail, self.ptr(self.slot(dir, tail) + SLOT_HEADER)))
    }

    /// Publishes slot `index` (from [`free_slot`](Self::free_slot)) holding a message of
    /// `len` bytes, inline or at payload `offset`.
    pub fn publish(&self, dir: usize, index: u32, len: u32, payload: Option<u64>) {
        let slot = self.slot(dir, index);
        self.u32_at(slot).store(len, Ordering::Relaxed);
        let kind = if payload.is_some() { KIND_PAYLOAD } else { KIND_INLINE };
        self.u32_at(slot + 4).store(kind, Ordering::Relaxed);
        self.u64_at(slot + 8).store(payload.unwrap_or(0), Ordering::Relaxed);
        self.tail(dir).store(index.wrapping_add(1), Ordering::Release);
    }

    /// The receiver's view: the next published slot's index and descriptor, if any.
    pub fn next_slot(&self, dir: usize) -> Option<(u32, SlotView)> {
        let head = self.head(dir).load(Ordering::Relaxed);
        let tail = self.tail(dir).load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let slot = self.slot(dir, head);
        let len = self.u32_at(slot).load(Ordering::Relaxed);
        let kind = self.u32_at(slot + 4).load(Ordering::Relaxed);
        let offset = self.u64_at(slot + 8).load(Ordering::Relaxed);
        let view = match kind {
            KIND_INLINE => SlotView::Inline { len, data: self.ptr(slot + SLOT_HEADER) },
            KIND_PAYLOAD => SlotView::Payload { len, offset },
            _ => SlotView::Bad,
        };
        Some((head, view))
    }

    /// Frees the slot at `index` (the receiver has taken its message).
    pub fn consume(&self, dir: usize, index: u32) {
        self.head(dir).store(index.wrapping_add(1), Ordering::Release);
    }

    /// The first run of `n` free chunks of `dir` at or after `from` (wrapping once).
    fn find_run(&self, dir: usize, n: usize, from: usize) -> Option<usize> {
        let chunks = self.layout.geometry.chunks as usize;
        if n == 0 || n > chunks {
            return None;
        }
        let from = if from + n > chunks { 0 } else { from };
        let mut start = from;
        let mut wrapped = false;
        loop {
            if start + n > chunks {
                if wrapped {
                    return None;
                }
                wrapped = true;
                start = 0;
            }
            if wrapped && start >= from {
                return None;
            }
            match (start..start + n).find(|&c| self.refs(dir, c).load(Ordering::Acquire) != 0) {
                None => return Some(start),
                Some(busy) => start = busy + 1,
            }
        }
    }

    /// Whether a message of `len` bytes would find a payload run now.
    pub fn alloc_probe(&self, dir: usize, len: usize, from: usize) -> bool {
        let n = len.div_ceil(self.chunk_size()).max(1);
        self.find_run(dir, n, from).is_some()
    }

    /// The sender's allocator: the first run of `n` free chunks at or after `from`
    /// (wrapping once), marked in use with one reference. Returns its first chunk.
    pub fn alloc_run(&self, dir: usize, n: usize, from: usize) -> Option<usize> {
        let start = self.find_run(dir, n, from)?;
        for c in start + 1..start + n {
            self.refs(dir, c).store(CONTINUATION, Ordering::Relaxed);
            self.head_of(dir, c).store(start as u32, Ordering::Relaxed);
        }
        self.head_of(dir, start).store(start as u32, Ordering::Relaxed);
        self.run(dir, start).store(n as u32, Ordering::Relaxed);
        self.refs(dir, start).store(1, Ordering::Relaxed);
        Some(start)
    }

    /// Adds a reference to the run that chunk `head` starts (the sender lends it to the peer).
    pub fn retain_run(&self, dir: usize, head: usize) {
        self.refs(dir, head).fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a reference to the run that chunk `head` starts; the last one frees the run.
    /// Returns whether it did.
    pub fn release_run(&self, dir: usize, head: usize) -> bool {
        let chunks = self.layout.geometry.chunks as usize;
        if head >= chunks {
            return false;
        }
        if self.refs(dir, head).fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        let n = (self.run(dir, head).load(Ordering::Relaxed) as usize).min(chunks - head);
        for c in head + 1..head + n {
            self.refs(dir, c).store(0, Ordering::Release);
        }
        true
    }

    /// The run holding payload bytes `offset .. offset + len` of `dir`, as its first chunk,
    /// if the chunk table (which the peer wrote) says there is one that covers them.
    pub fn run_covering(&self, dir: usize, offset: u64, len: u32) -> Option<usize> {
        let g = &self.layout.geometry;
        let end = offset.checked_add(u64::from(len))?;
        if len == 0 || end > g.payload_bytes() as u64 {
            return None;
        }
        let chunk_size = u64::from(g.chunk_size);
        let first = (offset / chunk_size) as usize;
        let last = ((end - 1) / chunk_size) as usize;
        let head = self.head_of(dir, first).load(Ordering::Relaxed) as usize;
        let run = self.run(dir, head.min(first)).load(Ordering::Relaxed) as usize;
        let live = self.refs(dir, head.min(first)).load(Ordering::Acquire);
        (head <= first && head + run > last && live != 0 && live != CONTINUATION).then_some(head)
    }

    /// Chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.layout.geometry.chunk_size as usize
    }

    /// Orders this side's last publication before its read of the peer's sleeping flag (and
    /// the peer's flag store before its re-check): the Dekker handshake of the doorbell.
    pub fn handshake_fence() {
        fence(Ordering::SeqCst);
    }
}

/// What a published slot holds, as read from shared memory (not yet checked).
#[derive(Clone, Copy, Debug)]
pub enum SlotView {
    /// `len` bytes inline at `data`.
    Inline {
        /// The message length the slot claims.
        len: u32,
        /// The inline bytes.
        data: *mut u8,
    },
    /// `len` bytes at `offset` of the sender's payload region.
    Payload {
        /// The message length the slot claims.
        len: u32,
        /// Where the message starts in the payload region.
        offset: u64,
    },
    /// A kind this side does not know.
    Bad,
}

/// Borrowing a descriptor as `BorrowedFd` from an `OwnedFd`.
trait AsFdBorrowed {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl AsFdBorrowed for OwnedFd {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Geometry {
        Geometry { slots: 4, slot_size: 128, chunk_size: 4096, chunks: 8 }
    }

    #[test]
    fn layout_is_page_aligned_and_within_its_size() {
        for g in [Geometry::default(), small()] {
            assert!(g.is_valid());
            let l = Layout::new(g);
            for d in l.dirs {
                assert_eq!(d.payload % PAGE, 0);
                assert_eq!(d.slots % LINE, 0);
                assert!(d.refs > d.head && d.head > d.tail);
            }
            assert!(l.dirs[1].tail >= l.dirs[0].payload + g.payload_bytes());
            assert_eq!(l.total, l.dirs[1].payload + g.payload_bytes());
        }
        assert!(!Geometry { slots: 3, ..small() }.is_valid());
        assert!(!Geometry { chunk_size: 100, ..small() }.is_valid());
    }

    #[test]
    fn the_ring_wraps_around_and_refuses_a_fifth_message() {
        let (region, _fd) = Region::create(small(), 0).unwrap();
        for round in 0..5u32 {
            for i in 0..4u32 {
                let (index, _) = region.free_slot(0).expect("room in the ring");
                region.publish(0, index, 7 + i + round, None);
            }
            assert!(region.free_slot(0).is_none(), "a full ring has no free slot");
            assert_eq!(region.queued(0), 4);
            for i in 0..4u32 {
                let (index, view) = region.next_slot(0).unwrap();
                match view {
                    SlotView::Inline { len, .. } => assert_eq!(len, 7 + i + round),
                    other => panic!("unexpected {other:?}"),
                }
                region.consume(0, index);
            }
            assert!(region.next_slot(0).is_none());
        }
    }

    #[test]
    fn payload_runs_are_allocated_next_fit_and_freed_by_the_last_reference() {
        let (region, _fd) = Region::create(small(), 0).unwrap();
        let a = region.alloc_run(0, 3, 0).unwrap();
        let b = region.alloc_run(0, 3, a + 3).unwrap();
        assert_eq!((a, b), (0, 3));
        assert_eq!(region.alloc_run(0, 3, 6), None, "only two chunks are left");
        region.retain_run(0, a);
        assert_eq!(region.run_covering(0, 100, 3 * 4096 - 100), Some(a));
        assert_eq!(region.run_covering(0, 4096, 5000), Some(a), "an offset inside the run");
        assert_eq!(region.run_covering(0, 0, 3 * 4096 + 1), None, "past the run");
        assert!(!region.release_run(0, a));
        assert!(region.release_run(0, a), "the second release frees the run");
        assert_eq!(region.run_covering(0, 0, 10), None, "a freed run covers nothing");
        assert_eq!(region.alloc_run(0, 3, 6), Some(0), "the allocator wraps to the freed run");
    }

    #[test]
    fn open_checks_the_header_and_size() {
        let (region, fd) = Region::create(small(), 1).unwrap();
        let (opened, mode) = Region::open(fd.as_fd_borrowed()).unwrap();
        assert_eq!((opened.geometry(), mode), (small(), 1));
        drop(region);
        let junk = create_memfd(2 * PAGE).unwrap();
        assert!(Region::open(junk.as_fd_borrowed()).is_err());
        // SAFETY: ftruncate has no memory arguments.
        unsafe { libc::ftruncate(fd.as_raw_fd(), PAGE as libc::off_t * 3) };
        assert!(Region::open(fd.as_fd_borrowed()).is_err(), "a size that does not match");
    }
}
