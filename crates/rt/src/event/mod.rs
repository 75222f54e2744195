//! The per-core event manager: EbbRT's non-preemptive, run-to-completion event loop.
//!
//! After EbbRT (OSDI 2016, section 3.3, "Event Manager"): each core runs one loop, and every turn
//! of it does, in this order:
//!
//! 1. dispatch pending device completions (EbbRT's interrupts: here [`Platform::poll_devices`])
//!    and expired timers;
//! 2. dispatch **one** synthetic event: a spawned closure, a task woken since the last turn, or
//!    work sent from another core with [`spawn_on`];
//! 3. invoke **every** idle handler (a device in polling mode lives here);
//! 4. if nothing was done and there are no idle handlers, block until a device completion, a
//!    doorbell from another core, or the next timer ([`Platform::block`]).
//!
//! Events run to completion: nothing preempts them, so per-core state needs no lock. Rust's
//! `async`/`await` plays the part of EbbRT's `Future::Then`: [`spawn_local`] takes futures that
//! need not be `Send`, since they never leave their core. Work for another core crosses over a
//! lock-free multi-producer queue ([`crate::sync::mpsc`]) and a doorbell that is rung only when
//! that core is asleep.
//!
//! Per-core [`Counters`] (events, polls, blocks, wakeups, ...) are atomics that any core can read
//! while the loop runs.

pub mod polling;
pub mod timer;

mod counters;
mod executor;
mod idle;
mod remote;
mod sleep;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::sync::atomic::{fence, AtomicBool, Ordering};

use crate::slab::{Slab, SlotId};
use counters::CoreCounters;
pub use counters::Counters;
pub use executor::JoinHandle;
use executor::{TaskHandle, TaskId, TaskTable};
pub use idle::IdleHandlerId;
use idle::IdleHandlers;
pub use remote::{run_on, RemoteResult};
pub use sleep::{sleep_ns, Sleep};

use crate::percore::{self, CoreId};
use crate::platform::Platform;
use crate::sync::mpsc::Queue;
use polling::{AdaptivePoller, PollMode, PollingConfig};
use timer::{TimerKey, TimerWheel};

/// The granularity of the timer wheel.
const TIMER_TICK_NS: u64 = 1_000;

/// Mailbox messages taken per turn, so a flood from other cores cannot starve local work.
const MAILBOX_BATCH: usize = 64;

/// Work that arrives from another core.
enum Remote {
    /// A closure sent with [`spawn_on`].
    Job(Box<dyn FnOnce() + Send>),
    /// A local task of this core woken from another core.
    Wake(Arc<TaskHandle>),
}

/// What one core shares with the others: its mailbox, its sleep flag and its counters.
struct CoreShared {
    mailbox: Queue<Remote>,
    sleeping: AtomicBool,
    counters: CoreCounters,
}

/// One cairn runtime: the platform, and what each core exposes to the others.
///
/// A program has one, made by [`Runtime::new`] before its cores start. Each core then calls
/// [`Runtime::start_core`] on its own thread and [`EventManager::run`].
pub struct Runtime {
    platform: &'static dyn Platform,
    cores: Box<[CoreShared]>,
    shutdown: AtomicBool,
}

impl Runtime {
    /// A runtime for `platform.core_count()` cores. It lives for the rest of the program.
    pub fn new(platform: &'static dyn Platform) -> &'static Runtime {
        let n = platform.core_count();
        assert!(n > 0 && n <= percore::MAX_CORES, "core count {n} out of range");
        let cores = (0..n)
            .map(|_| CoreShared {
                mailbox: Queue::new(),
                sleeping: AtomicBool::new(false),
                counters: CoreCounters::default(),
            })
            .collect();
        Box::leak(Box::new(Runtime { platform, cores, shutdown: AtomicBool::new(false) }))
    }

    /// The platform below this runtime.
    pub fn platform(&self) -> &'static dyn Platform {
        self.platform
    }

    /// How many cores this runtime drives.
    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    /// Creates the event manager of the calling core, whose block must already be installed
    /// (see [`percore::install`]) with id `< core_count()`.
    ///
    /// # Panics
    ///
    /// Off a core, or if this core already has an event manager.
    pub fn start_core(&'static self) -> &'static EventManager {
        let block = percore::current_block().expect("start_core off a cairn core");
        assert!(block.core < self.cores.len(), "core {} beyond the runtime's cores", block.core);
        assert!(
            block.event_manager.get().is_null(),
            "core {} already has an event manager",
            block.core
        );
        let now = self.platform.now_ns();
        let em: &'static EventManager = Box::leak(Box::new(EventManager {
            core: block.core,
            runtime: self,
            ready: RefCell::new(VecDeque::new()),
            tasks: RefCell::new(TaskTable::default()),
            idle: RefCell::new(IdleHandlers::default()),
            timers: RefCell::new(TimerWheel::new(now, TIMER_TICK_NS)),
            periodic: RefCell::new(Slab::default()),
            stopping: Cell::new(false),
            poller: RefCell::new(AdaptivePoller::new(PollingConfig::default())),
        }));
        block.event_manager.set(em as *const EventManager as *const ());
        em
    }

    /// Runs `job` on `core` as a synthetic event there. Callable from any thread.
    pub fn spawn_on(&self, core: CoreId, job: impl FnOnce() + Send + 'static) {
        self.send(core, Remote::Job(Box::new(job)));
    }

    fn send(&self, core: CoreId, msg: Remote) {
        let shared = &self.cores[core];
        shared.mailbox.push(msg);
        // Dekker-style handshake with `EventManager::block`: the push above and the sleeping flag
        // below are ordered by SeqCst fences on both sides, so either this side sees the flag
        // set and rings, or the sleeper sees the message and does not sleep.
        fence(Ordering::SeqCst);
        if shared.sleeping.load(Ordering::Relaxed) && shared.sleeping.swap(false, Ordering::AcqRel)
        {
            shared.counters.wakeups.incr_shared();
            self.platform.wake(core);
        }
    }

    /// Asks every core's loop to return from [`EventManager::run`] and wakes the sleeping ones.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for core in 0..self.cores.len() {
            self.platform.wake(core);
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// A snapshot of `core`'s counters, readable from any thread while the core runs.
    pub fn counters(&self, core: CoreId) -> Counters {
        self.cores[core].counters.snapshot()
    }
}

/// A timer's callback.
enum TimerAction {
    Once(Box<dyn FnOnce()>),
    Periodic(SlotId),
    Wake(core::task::Waker),
}

struct PeriodicTimer {
    period_ns: u64,
    callback: Option<Box<dyn FnMut()>>,
    key: Option<TimerKey>,
    cancelled: bool,
}

/// A handle to a timer set with [`set_timer`] or [`set_periodic`], for [`cancel_timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerId {
    /// A one-shot timer.
    Once(TimerKey),
    /// A periodic timer (its slot in the core's periodic table).
    Periodic(SlotId),
}

/// Something to do in step 2 of a turn.
enum Ready {
    Task(TaskId),
    Job(Box<dyn FnOnce()>),
}

/// One core's event loop. Reach the calling core's with [`EventManager::current`] or the free
/// functions of this module.
pub struct EventManager {
    core: CoreId,
    runtime: &'static Runtime,
    ready: RefCell<VecDeque<Ready>>,
    tasks: RefCell<TaskTable>,
    idle: RefCell<IdleHandlers>,
    timers: RefCell<TimerWheel<TimerAction>>,
    periodic: RefCell<Slab<PeriodicTimer>>,
    stopping: Cell<bool>,
    poller: RefCell<AdaptivePoller>,
}

impl EventManager {
    /// The calling core's event manager, if the calling thread is a started core.
    #[inline]
    pub fn try_current() -> Option<&'static EventManager> {
        let block = percore::current_block()?;
        // SAFETY: `start_core` stores a leaked `&'static EventManager` in the block, and only
        // the owning core reads it.
        unsafe { (block.event_manager.get() as *const EventManager).as_ref() }
    }

    /// The calling core's event manager.
    ///
    /// # Panics
    ///
    /// On a thread that is not a started cairn core.
    #[inline]
    pub fn current() -> &'static EventManager {
        Self::try_current().expect("not on a started cairn core")
    }

    /// This event manager's core.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// The runtime this core belongs to.
    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    fn shared(&self) -> &'static CoreShared {
        &self.runtime.cores[self.core]
    }

    /// Runs the loop until [`stop`](Self::stop) on this core or [`Runtime::shutdown`].
    pub fn run(&self) {
        self.stopping.set(false);
        while !self.stopping.get() && !self.runtime.is_shutting_down() {
            self.turn();
        }
    }

    /// Runs the loop until `future` completes, and returns its output.
    pub fn block_on<F: Future + 'static>(&'static self, future: F) -> F::Output {
        let handle = self.spawn_local(future);
        while !handle.is_finished() && !self.runtime.is_shutting_down() {
            self.turn();
        }
        handle.try_take().expect("runtime shut down before block_on's future finished")
    }

    /// Makes [`run`](Self::run) return after the current turn.
    pub fn stop(&self) {
        self.stopping.set(true);
    }

    /// One turn of the loop, in EbbRT's order. Returns whether it found anything to do.
    ///
    /// The core's devices and its mailbox form one event source for the adaptive polling
    /// policy ([`polling`]): while their event rate is high the core keeps turning instead of
    /// blocking (so other cores need not ring its doorbell either), and it blocks again once
    /// they have been quiet for the policy's spin budget.
    ///
    /// The clock is read only when the turn needs it: for timers, for an arrival to record, or
    /// for the blocking decision. A polling turn (idle handlers installed) on which nothing
    /// arrived and no timer is set reads no clock; it cannot block, so the polling policy need
    /// not hear of it (its window simply lasts until the next recorded turn).
    pub fn turn(&self) -> bool {
        let counters = &self.shared().counters;
        let mut clock = None;
        let mut now = || *clock.get_or_insert_with(|| self.runtime.platform.now_ns());
        // 1. Device completions, then expired timers (the timer interrupt).
        let completions = self.runtime.platform.poll_devices();
        counters.device_completions.add(completions as u64);
        let fired = if self.timers.borrow().is_empty() { 0 } else { self.fire_timers(now()) };
        let received = self.drain_mailbox();
        let arrived = completions + received;
        if arrived > 0 || self.idle.borrow().len() == 0 {
            self.poller.borrow_mut().record(now(), arrived);
        }
        // 2. One synthetic event. When that drains the ready queue, the batch of device work it
        // queued goes to the devices together.
        let dispatched = self.dispatch_one();
        if dispatched && self.ready.borrow().is_empty() {
            self.runtime.platform.flush_submissions();
        }
        // 3. Every idle handler.
        let has_idle = self.idle.borrow().len() > 0;
        if has_idle {
            IdleHandlers::run_all(&self.idle);
        }
        let busy = completions > 0 || fired > 0 || dispatched;
        counters.events.add(completions as u64 + fired as u64 + dispatched as u64);
        // 4. Block when there is nothing to do, nothing to poll, and the source is quiet.
        if !busy && !has_idle && self.ready.borrow().is_empty() {
            if self.poller.borrow().should_block(now()) {
                self.block();
            } else {
                counters.polls.incr();
                core::hint::spin_loop();
            }
        } else if has_idle {
            counters.polls.incr();
        }
        busy
    }

    /// Whether this core is polling its devices or blocking on them (see [`polling`]).
    pub fn poll_mode(&self) -> PollMode {
        self.poller.borrow().mode()
    }

    /// Replaces the adaptive polling thresholds of this core.
    pub fn set_polling_config(&self, config: PollingConfig) {
        *self.poller.borrow_mut() = AdaptivePoller::new(config);
    }

    fn dispatch_one(&self) -> bool {
        let next = self.ready.borrow_mut().pop_front();
        match next {
            Some(Ready::Job(job)) => {
                job();
                true
            }
            Some(Ready::Task(id)) => {
                executor::poll_task(&self.tasks, id);
                true
            }
            None => false,
        }
    }

    fn drain_mailbox(&self) -> usize {
        let shared = self.shared();
        let mut received = 0;
        for _ in 0..MAILBOX_BATCH {
            // SAFETY: only this core, on its own thread, pops its mailbox.
            let Some(msg) = (unsafe { shared.mailbox.pop() }) else { break };
            shared.counters.remote_received.incr();
            let ready = match msg {
                Remote::Job(job) => Ready::Job(job),
                Remote::Wake(handle) => Ready::Task(handle.id()),
            };
            self.ready.borrow_mut().push_back(ready);
            received += 1;
        }
        received
    }

    fn block(&self) {
        let shared = self.shared();
        shared.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !shared.mailbox.is_empty() || self.runtime.is_shutting_down() {
            shared.sleeping.store(false, Ordering::Relaxed);
            return;
        }
        let deadline = self.timers.borrow().next_deadline();
        if deadline.is_some_and(|d| d <= self.runtime.platform.now_ns()) {
            shared.sleeping.store(false, Ordering::Relaxed);
            return;
        }
        shared.counters.blocks.incr();
        self.runtime.platform.block(deadline);
        shared.sleeping.store(false, Ordering::Relaxed);
    }

    fn fire_timers(&self, now: u64) -> usize {
        if self.timers.borrow().is_empty() {
            return 0;
        }
        let mut due = alloc::vec::Vec::new();
        self.timers.borrow_mut().advance(now, |_, action| due.push(action));
        let fired = due.len();
        for action in due {
            match action {
                TimerAction::Once(callback) => callback(),
                TimerAction::Wake(waker) => waker.wake(),
                TimerAction::Periodic(slot) => self.fire_periodic(slot, now),
            }
        }
        self.shared().counters.timers_fired.add(fired as u64);
        fired
    }

    fn fire_periodic(&self, slot: SlotId, now: u64) {
        let callback = {
            let mut periodic = self.periodic.borrow_mut();
            let Some(timer) = periodic.get_mut(slot) else { return };
            timer.callback.take()
        };
        let Some(mut callback) = callback else { return };
        callback();
        let mut periodic = self.periodic.borrow_mut();
        let Some(timer) = periodic.get_mut(slot) else { return };
        if timer.cancelled {
            periodic.remove(slot);
            return;
        }
        timer.callback = Some(callback);
        timer.key = Some(
            self.timers.borrow_mut().insert(now + timer.period_ns, TimerAction::Periodic(slot)),
        );
    }

    /// Spawns a future on this core; it is polled as a synthetic event whenever it is woken.
    pub fn spawn_local<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        let (task, handle) = executor::wrap(future);
        let id = executor::insert_task(&self.tasks, self.core, self.runtime, task);
        self.ready.borrow_mut().push_back(Ready::Task(id));
        self.shared().counters.tasks_spawned.incr();
        handle
    }

    /// Queues `job` to run as a synthetic event on this core.
    pub fn spawn(&self, job: impl FnOnce() + 'static) {
        self.ready.borrow_mut().push_back(Ready::Job(Box::new(job)));
    }

    /// Adds an idle handler: it runs in step 3 of every turn until removed, and while any is
    /// installed the core polls instead of blocking.
    pub fn add_idle_handler(&self, handler: impl FnMut() + 'static) -> IdleHandlerId {
        self.idle.borrow_mut().add(Box::new(handler))
    }

    /// Removes an idle handler (also from inside a running handler). Returns whether it existed.
    pub fn remove_idle_handler(&self, id: IdleHandlerId) -> bool {
        self.idle.borrow_mut().remove(id)
    }

    /// Runs `callback` once, `delay_ns` from now.
    pub fn set_timer(&self, delay_ns: u64, callback: impl FnOnce() + 'static) -> TimerId {
        let deadline = self.runtime.platform.now_ns().saturating_add(delay_ns);
        TimerId::Once(
            self.timers.borrow_mut().insert(deadline, TimerAction::Once(Box::new(callback))),
        )
    }

    /// Runs `callback` every `period_ns` (at least 1 ns), first `period_ns` from now, until
    /// cancelled.
    pub fn set_periodic(&self, period_ns: u64, callback: impl FnMut() + 'static) -> TimerId {
        let period_ns = period_ns.max(1);
        let mut periodic = self.periodic.borrow_mut();
        let id = periodic.insert(PeriodicTimer {
            period_ns,
            callback: Some(Box::new(callback)),
            key: None,
            cancelled: false,
        });
        let deadline = self.runtime.platform.now_ns().saturating_add(period_ns);
        let key = self.timers.borrow_mut().insert(deadline, TimerAction::Periodic(id));
        periodic.get_mut(id).expect("just inserted").key = Some(key);
        TimerId::Periodic(id)
    }

    /// Cancels a timer. Returns whether it was still pending.
    pub fn cancel_timer(&self, id: TimerId) -> bool {
        match id {
            TimerId::Once(key) => self.timers.borrow_mut().cancel(key).is_some(),
            TimerId::Periodic(id) => {
                let mut periodic = self.periodic.borrow_mut();
                let Some(timer) = periodic.get_mut(id) else { return false };
                if timer.callback.is_none() {
                    // Cancelled from inside its own callback: `fire_periodic` drops it.
                    timer.cancelled = true;
                    return true;
                }
                if let Some(key) = timer.key {
                    self.timers.borrow_mut().cancel(key);
                }
                periodic.remove(id);
                true
            }
        }
    }

    pub(crate) fn insert_waker_timer(
        &self,
        deadline_ns: u64,
        waker: core::task::Waker,
    ) -> TimerKey {
        self.timers.borrow_mut().insert(deadline_ns, TimerAction::Wake(waker))
    }

    pub(crate) fn cancel_timer_key(&self, key: TimerKey) {
        self.timers.borrow_mut().cancel(key);
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.runtime.platform.now_ns()
    }

    pub(crate) fn push_local_wake(&self, id: TaskId) {
        self.ready.borrow_mut().push_back(Ready::Task(id));
    }

    /// This core's counters.
    pub fn counters(&self) -> Counters {
        self.shared().counters.snapshot()
    }
}

/// Spawns a future on the calling core (see [`EventManager::spawn_local`]).
///
/// # Panics
///
/// Off a started cairn core.
pub fn spawn_local<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    EventManager::current().spawn_local(future)
}

/// Runs `job` on `core` as a synthetic event there, through that core's lock-free mailbox and,
/// if it sleeps, its doorbell.
///
/// # Panics
///
/// Off a started cairn core (use [`Runtime::spawn_on`] from other threads).
pub fn spawn_on(core: CoreId, job: impl FnOnce() + Send + 'static) {
    EventManager::current().runtime.spawn_on(core, job);
}

/// Adds an idle handler on the calling core (see [`EventManager::add_idle_handler`]).
pub fn add_idle_handler(handler: impl FnMut() + 'static) -> IdleHandlerId {
    EventManager::current().add_idle_handler(handler)
}

/// Removes an idle handler of the calling core.
pub fn remove_idle_handler(id: IdleHandlerId) -> bool {
    EventManager::current().remove_idle_handler(id)
}

/// Sets a one-shot timer on the calling core.
pub fn set_timer(delay_ns: u64, callback: impl FnOnce() + 'static) -> TimerId {
    EventManager::current().set_timer(delay_ns, callback)
}

/// Sets a periodic timer on the calling core.
pub fn set_periodic(period_ns: u64, callback: impl FnMut() + 'static) -> TimerId {
    EventManager::current().set_periodic(period_ns, callback)
}

/// Cancels a timer of the calling core.
pub fn cancel_timer(id: TimerId) -> bool {
    EventManager::current().cancel_timer(id)
}

/// The calling core's id.
///
/// # Panics
///
/// Off a cairn core.
pub fn current_core() -> CoreId {
    percore::current_core().expect("not on a cairn core")
}

/// A future that yields once: the task goes to the back of the ready queue, letting devices,
/// other events and idle handlers run.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            core::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }
    })
}

/// Polls `future` once with a waker that does nothing and returns its output.
///
/// For futures that are known to complete without waiting (e.g. a local `GlobalIdMap`).
///
/// # Panics
///
/// If the future is not ready on the first poll.
pub fn block_on_ready<F: Future>(future: F) -> F::Output {
    let future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match future.poll(&mut cx) {
        core::task::Poll::Ready(v) => v,
        core::task::Poll::Pending => panic!("block_on_ready: the future is not ready"),
    }
}

#[cfg(test)]
mod tests;
