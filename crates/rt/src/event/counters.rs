//! Per-core event counters, readable from any core while the loop runs.

use core::sync::atomic::{AtomicU64, Ordering};

/// One counter. Written by its core with a plain load and store (no locked instruction),
/// except those other cores also write, which use [`Counter::incr_shared`].
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        if n != 0 {
            self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub(crate) fn incr_shared(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub(crate) struct CoreCounters {
    pub(crate) events: Counter,
    pub(crate) polls: Counter,
    pub(crate) blocks: Counter,
    pub(crate) wakeups: Counter,
    pub(crate) device_completions: Counter,
    pub(crate) timers_fired: Counter,
    pub(crate) remote_received: Counter,
    pub(crate) tasks_spawned: Counter,
}

impl CoreCounters {
    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            events: self.events.get(),
            polls: self.polls.get(),
            blocks: self.blocks.get(),
            wakeups: self.wakeups.get(),
            device_completions: self.device_completions.get(),
            timers_fired: self.timers_fired.get(),
            remote_received: self.remote_received.get(),
            tasks_spawned: self.tasks_spawned.get(),
        }
    }
}

/// A snapshot of one core's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events dispatched: device completions, fired timers and synthetic events.
    pub events: u64,
    /// Turns that ran idle handlers (polled) instead of blocking.
    pub polls: u64,
    /// Times the core blocked waiting for work.
    pub blocks: u64,
    /// Doorbells rung to wake this core from another.
    pub wakeups: u64,
    /// Device completions dispatched (step 1).
    pub device_completions: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Messages received from other cores (`spawn_on` work and remote wakeups).
    pub remote_received: u64,
    /// Tasks spawned on this core.
    pub tasks_spawned: u64,
}

impl core::fmt::Display for Counters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "events {}\npolls {}\nblocks {}\nwakeups {}\ndevice_completions {}\ntimers_fired {}\nremote_received {}\ntasks_spawned {}\n",
            self.events,
            self.polls,
            self.blocks,
            self.wakeups,
            self.device_completions,
            self.timers_fired,
            self.remote_received,
            self.tasks_spawned
        )
    }
}
