//! What the portable core needs from the machine below it.
//!
//! EbbRT runs the same Ebbs on its native kernel and hosted in a Linux process; everything that
//! differs between the two is behind this trait. `cairn-hosted` implements it with pinned Linux
//! threads, io_uring and eventfd doorbells; the native kernel will implement it with the local
//! APIC timer, `hlt` and inter-processor interrupts.

use crate::percore::{self, CoreId};

/// The services a platform gives the core runtime. One value serves every core; per-core state
/// (an io_uring, a doorbell) is found by the implementation from the calling core.
pub trait Platform: Send + Sync + 'static {
    /// How many cores this runtime drives; core ids are `0..core_count()`.
    fn core_count(&self) -> usize;

    /// The calling core's id, or `None` on a thread that is not a cairn core.
    fn current_core(&self) -> Option<CoreId> {
        percore::current_core()
    }

    /// Monotonic time in nanoseconds since an arbitrary origin fixed for the whole runtime.
    fn now_ns(&self) -> u64;

    /// Dispatches the calling core's pending device completions (EbbRT's interrupts) without
    /// blocking, and returns how many it handled.
    fn poll_devices(&self) -> usize;

    /// Hands the calling core's queued device work (submissions) to the devices. The event loop
    /// calls it when its ready queue has drained, so one batch of events shares one hand-off
    /// (on io_uring, one system call), and the platform's [`block`](Self::block) must do it
    /// too. The default does nothing, for devices that start work as soon as it is queued.
    fn flush_submissions(&self) {}

    /// Blocks the calling core until a device completion, a doorbell from
    /// [`wake`](Self::wake), or `deadline_ns` (in [`now_ns`](Self::now_ns) time), whichever
    /// comes first. It may return early; the event loop re-checks its work.
    fn block(&self, deadline_ns: Option<u64>);

    /// Rings `core`'s doorbell so that a core blocked in [`block`](Self::block) returns.
    /// Called from any core, or from a thread that is not a core.
    fn wake(&self, core: CoreId);
}
