//! The counter of payload bytes copied by IOBuf operations.
//!
//! The EbbRT paper ("Network Stack") makes zero copy pervasive; cairn keeps it honest by
//! counting every copy that happens anyway, so a test or a benchmark can prove that a path
//! copied nothing. The module documentation of [`crate::iobuf`] lists exactly which operations
//! count.
//!
//! The count is one process-wide `AtomicU64` updated with relaxed ordering: copies are rare on
//! the paths that matter, and a relaxed add on them costs nothing next to the `memcpy` itself.
//! Because it is global, a delta read around some code also sees copies made meanwhile by other
//! threads. Code that needs to attribute copies (a test running beside other tests, a platform
//! keeping per-core statistics) installs an observer with [`set_copy_observer`], which is called
//! on the copying thread with each copy's size.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Payload bytes copied by IOBuf operations since the process started.
static BYTES_COPIED: AtomicU64 = AtomicU64::new(0);

/// The installed observer, a `fn(usize)` cast to a pointer, or null for none.
static COPY_OBSERVER: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

/// Returns how many payload bytes IOBuf operations have copied in this process so far.
///
/// The value only grows. It is read with relaxed ordering, so it is exact once the threads that
/// copied have been joined (or otherwise synchronized with), and a lower bound before that.
pub fn bytes_copied() -> u64 {
    BYTES_COPIED.load(Ordering::Relaxed)
}

/// Installs `observer` to be called with the size of every copy, on the thread that makes it
/// (or removes the observer with `None`).
///
/// There is one observer for the whole process, so this is for the platform (to keep per-core
/// statistics) or for a test harness that installs the same function from every test. The
/// observer runs inside the copying operation: it must be short and must not copy IOBufs.
pub fn set_copy_observer(observer: Option<fn(usize)>) {
    let raw = match observer {
        Some(observer) => observer as *mut (),
        None => ptr::null_mut(),
    };
    COPY_OBSERVER.store(raw, Ordering::Release);
}

/// Adds `bytes` to the copy counter and tells the observer, if any. Every copying operation of
/// the module calls this once with the number of payload bytes it copied.
pub(crate) fn record_copy(bytes: usize) {
    if bytes == 0 {
        return;
    }
    BYTES_COPIED.fetch_add(bytes as u64, Ordering::Relaxed);
    let raw = COPY_OBSERVER.load(Ordering::Acquire);
    if !raw.is_null() {
        // SAFETY: the only non-null values ever stored in COPY_OBSERVER are `fn(usize)`
        // pointers cast to `*mut ()` by `set_copy_observer`; function pointers and data
        // pointers have the same size and representation on every target cairn supports.
        let observer = unsafe { core::mem::transmute::<*mut (), fn(usize)>(raw) };
        observer(bytes);
    }
}

/// A snapshot of the global copy counter, to read how many bytes were copied since.
///
/// The delta includes copies made by other threads in the meantime; see [`set_copy_observer`]
/// for attributing copies to one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyMeter {
    start: u64,
}

impl CopyMeter {
    /// Takes a snapshot of the counter now.
    pub fn start() -> Self {
        CopyMeter { start: bytes_copied() }
    }

    /// Returns the bytes copied (by any thread) since [`CopyMeter::start`].
    pub fn bytes_since_start(&self) -> u64 {
        bytes_copied() - self.start
    }
}

/// A per-thread copy meter for this crate's tests, which run in parallel threads: it installs an
/// observer that adds each copy to a thread-local count, so a test sees only its own copies.
#[cfg(test)]
pub(crate) mod thread_meter {
    use core::cell::Cell;

    std::thread_local! {
        static COPIED_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    }

    fn add_to_this_thread(bytes: usize) {
        // A copy made while the thread is being torn down has nowhere to go; ignore it.
        let _ = COPIED_ON_THIS_THREAD.try_with(|count| count.set(count.get() + bytes as u64));
    }

    fn copied_on_this_thread() -> u64 {
        COPIED_ON_THIS_THREAD.with(Cell::get)
    }

    /// Counts the bytes the current thread copies from [`ThreadCopyMeter::start`] on.
    pub(crate) struct ThreadCopyMeter {
        start: u64,
    }

    impl ThreadCopyMeter {
        /// Installs the thread-local observer (every test installs the same one) and takes a
        /// snapshot of this thread's count.
        pub(crate) fn start() -> Self {
            super::set_copy_observer(Some(add_to_this_thread));
            ThreadCopyMeter { start: copied_on_this_thread() }
        }

        /// Returns the bytes this thread copied since [`ThreadCopyMeter::start`].
        pub(crate) fn bytes(&self) -> u64 {
            copied_on_this_thread() - self.start
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thread_meter::ThreadCopyMeter;
    use super::*;

    #[test]
    fn record_copy_adds_to_the_global_counter() {
        let meter = CopyMeter::start();
        record_copy(1000);
        assert!(meter.bytes_since_start() >= 1000);
    }

    #[test]
    fn record_copy_reaches_the_thread_meter_exactly() {
        let meter = ThreadCopyMeter::start();
        record_copy(7);
        record_copy(0);
        record_copy(5);
        assert_eq!(meter.bytes(), 12);
    }

    #[test]
    fn other_threads_copies_do_not_reach_this_threads_meter() {
        let meter = ThreadCopyMeter::start();
        std::thread::spawn(|| {
            let _ = ThreadCopyMeter::start();
            record_copy(4096);
        })
        .join()
        .expect("copying thread panicked");
        assert_eq!(meter.bytes(), 0);
    }
}
