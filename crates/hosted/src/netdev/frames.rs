//! Fixed-size frames in one mapping, lent to the stack as [`IoBuf`]s that come home when the
//! last buffer over them drops.
//!
//! Both devices receive into memory they own: the AF_XDP UMEM (which the kernel writes frames
//! into) and the TAP device's pool of read buffers. A received frame is lent as an external
//! [`IoBuf`] over its slot (EbbRT, papers/001 section 3.4: the device's buffer *is* the
//! application's buffer), so no receive allocates or copies frame bytes.
//!
//! The release hook of a lent frame may run on any thread (an IOBuf may travel to another core),
//! while the device that reuses the frame is polled by one. So returned frames go onto a
//! lock-free stack ([`ReturnStack`]) that any thread pushes onto and only the owner drains, all
//! at once. Push-and-take-all is free of the ABA problem of a Treiber stack's pop: the owner
//! never reads `next` of a node another thread may be pushing.
//!
//! The arena is reference-counted: every lent frame's hook holds the arena, so the mapping
//! outlives the device if the stack still holds frames when the device is closed.

use std::io;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use cairn_rt::iobuf::IoBuf;

/// The "no frame" link of the return stack.
const NONE: u32 = u32::MAX;

/// A stack of frame indices pushed by any thread and drained whole by one.
struct ReturnStack {
    /// The most recently returned frame, or [`NONE`].
    head: AtomicU32,
    /// `next[i]`: the frame below frame `i` on the stack, valid while `i` is on it.
    next: Box<[AtomicU32]>,
}

impl ReturnStack {
    fn new(count: u32) -> ReturnStack {
        ReturnStack { head: AtomicU32::new(NONE), next: (0..count).map(|_| NONE.into()).collect() }
    }

    /// Pushes frame `index`, which is on no stack. Any thread.
    fn push(&self, index: u32) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            self.next[index as usize].store(head, Ordering::Relaxed);
            // Release: the link above, and every use of the frame's bytes by the buffer being
            // dropped, happen before the owner's Acquire in `take_all` sees this index.
            match self.head.compare_exchange_weak(head, index, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Moves every returned frame onto `out`; returns how many. Only the owner calls this.
    fn take_all(&self, out: &mut Vec<u32>) -> usize {
        if self.head.load(Ordering::Relaxed) == NONE {
            return 0;
        }
        // Acquire: every push is a read-modify-write of `head`, so this synchronizes with all
        // of them and their `next` links and frame uses are visible.
        let mut index = self.head.swap(NONE, Ordering::Acquire);
        let mut taken = 0;
        while index != NONE && taken < self.next.len() {
            out.push(index);
            taken += 1;
            index = self.next[index as usize].load(Ordering::Relaxed);
        }
        taken
    }
}

/// `count` frames of `frame_size` bytes in one page-aligned anonymous mapping.
pub(crate) struct FrameArena {
    base: NonNull<u8>,
    len: usize,
    frame_size: usize,
    count: u32,
    returns: ReturnStack,
}

// SAFETY: the arena's bytes are only reached through frames lent one at a time (`lend`'s
// contract); its own fields never change after `new` except the atomics of the return stack.
unsafe impl Send for FrameArena {}
// SAFETY: as above: shared access reads immutable fields or goes through atomics.
unsafe impl Sync for FrameArena {}

impl FrameArena {
    /// Maps `count` frames of `frame_size` bytes, zeroed.
    pub(crate) fn new(count: u32, frame_size: usize) -> io::Result<Arc<FrameArena>> {
        if count == 0 || count == NONE || frame_size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty frame arena"));
        }
        let len = (count as usize)
            .checked_mul(frame_size)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "arena too large"))?;
        // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).expect("mmap returned null");
        Ok(Arc::new(FrameArena { base, len, frame_size, count, returns: ReturnStack::new(count) }))
    }

    /// The first byte of the mapping.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes per frame.
    pub(crate) fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Frames in the arena.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The first byte of frame `index`.
    pub(crate) fn frame_ptr(&self, index: u32) -> *mut u8 {
        assert!(index < self.count, "frame {index} of {}", self.count);
        // SAFETY: index < count, so the offset lies inside the mapping.
        unsafe { self.base.as_ptr().add(index as usize * self.frame_size) }
    }

    /// The frame holding all of `ptr .. ptr + len`, and the offset of `ptr` in it, if those
    /// bytes lie inside one frame of this arena.
    pub(crate) fn locate(&self, ptr: *const u8, len: usize) -> Option<(u32, usize)> {
        let start = (ptr as usize).checked_sub(self.base.as_ptr() as usize)?;
        let end = start.checked_add(len)?;
        if end > self.len || len == 0 {
            return None;
        }
        let index = start / self.frame_size;
        let offset = start % self.frame_size;
        (offset + len <= self.frame_size).then_some((index as u32, offset))
    }

    /// Lends frame `index` as a unique buffer showing `view`; when the last buffer over it
    /// drops, the frame goes onto the return stack ([`FrameArena::take_returned`]).
    ///
    /// # Safety
    ///
    /// Nothing else (the kernel, another buffer, the device) reads or writes frame `index` from
    /// now until it comes back through `take_returned`.
    pub(crate) unsafe fn lend(self: &Arc<Self>, index: u32, view: Range<usize>) -> IoBuf {
        let base = NonNull::new(self.frame_ptr(index)).expect("frame address");
        let arena = Arc::clone(self);
        // SAFETY: the frame lies inside the mapping, which stays mapped while `arena` (held by
        // the hook) lives; it is initialized (mapped zeroed, then written); the caller
        // guarantees exclusive use until the hook returns it.
        unsafe {
            IoBuf::from_external(base, self.frame_size, view, move |_, _| arena.returns.push(index))
        }
    }

    /// Moves every frame returned since the last call onto `out`; returns how many. Only the
    /// device that owns the arena calls this.
    pub(crate) fn take_returned(&self, out: &mut Vec<u32>) -> usize {
        self.returns.take_all(out)
    }
}

impl Drop for FrameArena {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no buffer is left over it (each
        // holds the arena alive).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_frames_come_back_once_each_from_any_thread() {
        let arena = FrameArena::new(64, 2048).unwrap();
        // SAFETY: each frame is lent once and nothing else touches it.
        let bufs: Vec<IoBuf> = (0..64).map(|i| unsafe { arena.lend(i, 16..100) }).collect();
        assert_eq!(bufs[3].as_ptr(), arena.frame_ptr(3).wrapping_add(16).cast_const());
        assert_eq!(bufs[3].headroom(), 16);
        let halves: Vec<Vec<IoBuf>> =
            bufs.into_iter().fold(vec![Vec::new(), Vec::new()], |mut acc, b| {
                let side = acc[0].len() > acc[1].len();
                acc[side as usize].push(b);
                acc
            });
        std::thread::scope(|s| {
            for half in halves {
                s.spawn(move || drop(half));
            }
        });
        let mut out = Vec::new();
        assert_eq!(arena.take_returned(&mut out), 64);
        out.sort_unstable();
        assert_eq!(out, (0..64).collect::<Vec<u32>>());
        assert_eq!(arena.take_returned(&mut out), 0);
    }

    #[test]
    fn a_frame_returns_only_when_its_last_buffer_drops() {
        let arena = FrameArena::new(4, 4096).unwrap();
        // SAFETY: frame 2 is lent once.
        let mut buf = unsafe { arena.lend(2, 0..100) };
        let front = buf.split_to(40).freeze();
        let clone = front.clone();
        drop(buf);
        drop(front);
        let mut out = Vec::new();
        assert_eq!(arena.take_returned(&mut out), 0);
        drop(clone);
        assert_eq!(arena.take_returned(&mut out), 1);
        assert_eq!(out, [2]);
    }

    #[test]
    fn locate_finds_only_ranges_within_one_frame() {
        let arena = FrameArena::new(4, 2048).unwrap();
        let base = arena.base().cast_const();
        assert_eq!(arena.locate(base.wrapping_add(2048 + 10), 100), Some((1, 10)));
        assert_eq!(arena.locate(base.wrapping_add(2000), 100), None);
        assert_eq!(arena.locate(base.wrapping_add(4 * 2048), 1), None);
        assert_eq!(arena.locate(base.wrapping_sub(1), 1), None);
        let outside = [0u8; 8];
        assert_eq!(arena.locate(outside.as_ptr(), 8), None);
    }

    #[test]
    fn the_mapping_outlives_the_owner_while_a_frame_is_lent() {
        let arena = FrameArena::new(2, 2048).unwrap();
        // SAFETY: frame 1 is lent once.
        let mut buf = unsafe { arena.lend(1, 0..8) };
        drop(arena);
        buf[..].copy_from_slice(b"survives");
        assert_eq!(&buf[..], b"survives");
    }
}
