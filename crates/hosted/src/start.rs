//! Starting a hosted runtime: one pinned thread per core, each with its io_uring and event loop.

use std::io;
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};

use cairn_rt::event::Runtime;
use cairn_rt::percore::{self, CoreBlock};
use cairn_rt::CoreId;

use crate::affinity;
use crate::platform::HostedPlatform;
use crate::reactor::Reactor;

/// A running hosted runtime: stop it with [`shutdown`](Self::shutdown), wait with
/// [`join`](Self::join).
pub struct RuntimeHandle {
    runtime: &'static Runtime,
    threads: Vec<JoinHandle<()>>,
}

impl RuntimeHandle {
    /// The runtime: its counters, `spawn_on` from outside, shutdown.
    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    /// Asks every core to leave its loop.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }

    /// Waits for every core thread; an `Err` carries the first core's panic.
    pub fn join(self) -> thread::Result<()> {
        let mut result = Ok(());
        for t in self.threads {
            let r = t.join();
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Starts `cores` core threads, each pinned to a CPU, with an io_uring, a doorbell and an event
/// loop. On each core `init(core)` runs first, as the core's first event, typically spawning the
/// core's tasks; then the loop runs until [`RuntimeHandle::shutdown`]. `start` returns once every
/// core has run `init`.
pub fn start<F>(cores: usize, init: F) -> io::Result<RuntimeHandle>
where
    F: Fn(CoreId) + Send + Sync + 'static,
{
    let platform = HostedPlatform::new(cores)?;
    let runtime = Runtime::new(platform);
    let init = Arc::new(init);
    let ready = Arc::new(Barrier::new(cores + 1));
    let mut threads = Vec::with_capacity(cores);
    for core in 0..cores {
        let init = init.clone();
        let ready = ready.clone();
        let doorbell = platform.doorbell_for(core)?;
        let cpu = affinity::cpu_for_core(core)?;
        let thread =
            thread::Builder::new().name(format!("cairn-core-{core}")).spawn(move || {
                // Pinning can fail in a restricted container; the core still works unpinned.
                let _ = affinity::pin_current_thread(cpu);
                let block: &'static CoreBlock = Box::leak(Box::new(CoreBlock::new(core)));
                // SAFETY: the block is leaked, so it outlives its installation on this thread.
                unsafe { percore::install(block) };
                Reactor::install(doorbell, runtime).expect("cannot create the core's io_uring");
                let em = runtime.start_core();
                let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init(core)));
                ready.wait();
                if let Err(panic) = first {
                    runtime.shutdown();
                    std::panic::resume_unwind(panic);
                }
                em.run();
                // SAFETY: uninstalling leaves this thread with no block.
                unsafe { percore::install(std::ptr::null()) };
            })?;
        threads.push(thread);
    }
    ready.wait();
    Ok(RuntimeHandle { runtime, threads })
}
