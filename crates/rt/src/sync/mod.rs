//! Synchronization between cores.
//!
//! cairn's cores share almost nothing: a connection, a table shard or a fid belongs to one core,
//! and other cores hand it work with `spawn_on` (EbbRT paper, "Events" and "Event Manager": any
//! core may invoke a synthetic event on any other). What does cross cores travels through
//! [`mpsc::Queue`], a lock-free multi-producer single-consumer queue after Dmitry Vyukov's
//! node-based design, one per core.
//!
//! In unit tests built with `--cfg loom` the atomics and cells used here come from the `loom`
//! model checker (see `shim`), so the queue's interleavings can be explored exhaustively:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p cairn-rt --release --lib sync::
//! ```

pub mod mpsc;

/// The atomics, cells and spin hint used by this module, swapped for `loom`'s in `cfg(loom)`
/// unit tests (`loom` is a dev-dependency, so only test builds can see it).
///
/// Code that wants its lock-free parts model-checked together with the queue can use these
/// instead of `core::sync::atomic`; outside a loom test build they are exactly the `core` types.
pub(crate) mod shim {
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::atomic::{fence, AtomicPtr, Ordering};

    #[cfg(not(all(loom, test)))]
    #[allow(unused_imports)]
    pub(crate) use core::sync::atomic::{fence, AtomicPtr, Ordering};

    #[cfg(all(loom, test))]
    pub(crate) use loom::cell::UnsafeCell;

    /// Tells the processor (or, under loom, the model checker) that we are spinning.
    #[inline]
    pub(crate) fn spin_loop() {
        #[cfg(all(loom, test))]
        loom::thread::yield_now();
        #[cfg(not(all(loom, test)))]
        core::hint::spin_loop();
    }

    /// `core::cell::UnsafeCell` with loom's closure-based accessors, so one body of code
    /// compiles against both.
    #[cfg(not(all(loom, test)))]
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    #[cfg(not(all(loom, test)))]
    impl<T> UnsafeCell<T> {
        /// Wraps `value`.
        #[inline]
        pub(crate) const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a mutable raw pointer to the contents; the caller of the pointer
        /// upholds the aliasing rules, as with `core::cell::UnsafeCell::get`.
        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
