//! Tests of the event loop on a small std-thread platform: park/unpark is the doorbell.

use super::*;
use crate::percore::CoreGuard;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

struct ThreadPlatform {
    cores: usize,
    start: Instant,
    threads: Mutex<Vec<Option<thread::Thread>>>,
    pending_completions: Vec<AtomicUsize>,
    log: Mutex<Vec<String>>,
}

impl ThreadPlatform {
    fn new(cores: usize) -> &'static ThreadPlatform {
        Box::leak(Box::new(ThreadPlatform {
            cores,
            start: Instant::now(),
            threads: Mutex::new(vec![None; cores]),
            pending_completions: (0..cores).map(|_| AtomicUsize::new(0)).collect(),
            log: Mutex::new(Vec::new()),
        }))
    }

    fn note(&self, what: &str) {
        self.log.lock().unwrap().push(what.into());
    }

    fn take_log(&self) -> Vec<String> {
        core::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Platform for ThreadPlatform {
    fn core_count(&self) -> usize {
        self.cores
    }
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn poll_devices(&self) -> usize {
        let core = self.current_core().unwrap();
        let n = self.pending_completions[core].swap(0, Ordering::AcqRel);
        for _ in 0..n {
            self.note("device");
        }
        n
    }
    fn block(&self, deadline_ns: Option<u64>) {
        match deadline_ns {
            Some(d) => thread::park_timeout(Duration::from_nanos(d.saturating_sub(self.now_ns()))),
            None => thread::park_timeout(Duration::from_millis(200)),
        }
    }
    fn wake(&self, core: CoreId) {
        if let Some(t) = &self.threads.lock().unwrap()[core] {
            t.unpark();
        }
    }
}

/// Makes the calling thread core `core` of `runtime` until the guard drops.
fn enter(
    platform: &ThreadPlatform,
    runtime: &'static Runtime,
    core: CoreId,
) -> (CoreGuard, &'static EventManager) {
    let guard = CoreGuard::enter(core);
    platform.threads.lock().unwrap()[core] = Some(thread::current());
    let em = runtime.start_core();
    (guard, em)
}

#[test]
fn a_turn_runs_devices_then_one_event_then_every_idle_handler() {
    let platform = ThreadPlatform::new(1);
    let runtime = Runtime::new(platform);
    let (_g, em) = enter(platform, runtime, 0);
    let p: &'static ThreadPlatform = platform;
    em.spawn(move || p.note("event 1"));
    em.spawn(move || p.note("event 2"));
    em.add_idle_handler(move || p.note("idle a"));
    em.add_idle_handler(move || p.note("idle b"));
    platform.pending_completions[0].store(2, Ordering::Release);
    assert!(em.turn());
    assert_eq!(platform.take_log(), ["device", "device", "event 1", "idle a", "idle b"]);
    assert!(em.turn());
    assert_eq!(platform.take_log(), ["event 2", "idle a", "idle b"]);
    assert!(!em.turn(), "nothing left but polling");
    assert_eq!(platform.take_log(), ["idle a", "idle b"]);
    let c = em.counters();
    assert_eq!((c.events, c.device_completions, c.polls, c.blocks), (4, 2, 3, 0));
}

#[test]
fn spawn_local_runs_non_send_futures_and_join_handles_carry_output() {
    let platform = ThreadPlatform::new(1);
    let runtime = Runtime::new(platform);
    let (_g, em) = enter(platform, runtime, 0);
    let shared = Rc::new(core::cell::Cell::new(0));
    let s2 = shared.clone();
    let out = em.block_on(async move {
        let inner = spawn_local(async move {
            s2.set(s2.get() + 1);
            yield_now().await;
            s2.set(s2.get() + 1);
            Rc::new(41)
        });
        *inner.await + 1
    });
    assert_eq!(out, 42);
    assert_eq!(shared.get(), 2);
}

#[test]
fn spawn_on_reaches_a_blocked_core_through_its_doorbell() {
    let platform = ThreadPlatform::new(2);
    let runtime = Runtime::new(platform);
    let (ready_tx, ready_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let (_g, em) = enter(platform, runtime, 1);
        ready_tx.send(()).unwrap();
        em.run();
    });
    let (_g, _em) = enter(platform, runtime, 0);
    ready_rx.recv().unwrap();
    // Let core 1 run out of work and block.
    let deadline = Instant::now() + Duration::from_secs(5);
    while runtime.counters(1).blocks == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(runtime.counters(1).blocks > 0, "core 1 never blocked");
    let (tx, rx) = mpsc::channel();
    spawn_on(1, move || tx.send(current_core()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    assert!(runtime.counters(1).wakeups >= 1, "the doorbell was rung");
    runtime.shutdown();
    worker.join().unwrap();
}

#[test]
fn a_task_woken_from_another_thread_runs_on_its_own_core() {
    let platform = ThreadPlatform::new(2);
    let runtime = Runtime::new(platform);
    let slot: &'static Mutex<Option<core::task::Waker>> = Box::leak(Box::new(Mutex::new(None)));
    let go: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let (_g, em) = enter(platform, runtime, 1);
        em.spawn_local(async move {
            core::future::poll_fn(|cx| {
                if go.load(Ordering::Acquire) {
                    core::task::Poll::Ready(())
                } else {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    core::task::Poll::Pending
                }
            })
            .await;
            tx.send(current_core()).unwrap();
        });
        em.run();
    });
    let waker = loop {
        if let Some(w) = slot.lock().unwrap().take() {
            break w;
        }
        thread::sleep(Duration::from_millis(1));
    };
    go.store(true, Ordering::Release);
    waker.wake(); // from a thread that is not a core at all
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    runtime.shutdown();
    worker.join().unwrap();
}

#[test]
fn idle_handlers_are_added_and_removed_at_run_time_even_from_inside() {
    let platform = ThreadPlatform::new(1);
    let runtime = Runtime::new(platform);
    let (_g, em) = enter(platform, runtime, 0);
    let runs = Rc::new(core::cell::Cell::new(0u32));
    let r = runs.clone();
    let self_id: Rc<core::cell::Cell<Option<IdleHandlerId>>> = Rc::default();
    let id_slot = self_id.clone();
    let id = em.add_idle_handler(move || {
        r.set(r.get() + 1);
        if r.get() == 3 {
            assert!(remove_idle_handler(id_slot.get().unwrap()));
        }
    });
    self_id.set(Some(id));
    let other_runs = Rc::new(core::cell::Cell::new(0u32));
    let o = other_runs.clone();
    let other = em.add_idle_handler(move || o.set(o.get() + 1));
    for _ in 0..5 {
        em.turn();
    }
    assert_eq!(runs.get(), 3, "removed itself on its third run");
    assert_eq!(other_runs.get(), 5);
    assert!(em.remove_idle_handler(other));
    assert!(!em.remove_idle_handler(other), "already gone");
    // With no idle handler left and nothing to do, a turn blocks (briefly, via a timer).
    em.set_timer(1_000_000, || {});
    em.turn();
    assert!(em.counters().blocks >= 1);
}

#[test]
fn timers_fire_never_early_periodic_ones_repeat_and_cancelled_ones_never_fire() {
    let platform = ThreadPlatform::new(1);
    let runtime = Runtime::new(platform);
    let (_g, em) = enter(platform, runtime, 0);
    let start = platform.now_ns();
    let fired_at: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    em.set_timer(3_000_000, move || fired_at.store(platform.now_ns(), Ordering::Relaxed));
    let cancelled = em.set_timer(1_000_000, || panic!("cancelled timer fired"));
    assert!(em.cancel_timer(cancelled));
    assert!(!em.cancel_timer(cancelled));
    let ticks = Rc::new(core::cell::Cell::new(0u32));
    let t = ticks.clone();
    let periodic: Rc<core::cell::Cell<Option<TimerId>>> = Rc::default();
    let p2 = periodic.clone();
    let id = em.set_periodic(500_000, move || {
        t.set(t.get() + 1);
        if t.get() == 5 {
            assert!(cancel_timer(p2.get().unwrap()));
        }
    });
    periodic.set(Some(id));
    let slept = em.block_on(async move {
        let before = EventManager::current().now_ns();
        sleep_ns(5_000_000).await;
        EventManager::current().now_ns() - before
    });
    assert!(slept >= 5_000_000, "slept only {slept} ns");
    let at = fired_at.load(Ordering::Relaxed);
    assert!(at >= start + 3_000_000, "one-shot fired early");
    assert_eq!(ticks.get(), 5, "periodic stopped after cancelling itself");
    assert!(em.counters().timers_fired >= 6);
}

#[test]
fn dropping_a_sleep_cancels_its_timer() {
    let platform = ThreadPlatform::new(1);
    let runtime = Runtime::new(platform);
    let (_g, em) = enter(platform, runtime, 0);
    em.block_on(async {
        let mut sleep = core::pin::pin!(sleep_ns(60_000_000_000));
        let pending = core::future::poll_fn(|cx| {
            core::task::Poll::Ready(sleep.as_mut().poll(cx).is_pending())
        })
        .await;
        assert!(pending);
    });
    assert!(em.timers.borrow().is_empty(), "the timer went with the future");
}

#[test]
fn cross_core_ping_pong_delivers_every_message() {
    const ROUNDS: u64 = 20_000;
    let platform = ThreadPlatform::new(2);
    let runtime = Runtime::new(platform);
    let count: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let worker = thread::spawn(move || {
        let (_g, em) = enter(platform, runtime, 1);
        em.run();
    });
    let (_g, em) = enter(platform, runtime, 0);
    fn ping(n: u64, count: &'static AtomicU64, done: &'static AtomicBool) {
        spawn_on(1, move || {
            count.fetch_add(1, Ordering::Relaxed);
            spawn_on(0, move || {
                if n == 0 {
                    done.store(true, Ordering::Release);
                } else {
                    ping(n - 1, count, done)
                }
            })
        });
    }
    let done: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    ping(ROUNDS - 1, count, done);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done.load(Ordering::Acquire) && Instant::now() < deadline {
        em.turn();
    }
    assert!(done.load(Ordering::Acquire), "ping-pong did not finish");
    assert_eq!(count.load(Ordering::Relaxed), ROUNDS);
    runtime.shutdown();
    worker.join().unwrap();
}

#[test]
fn a_flood_of_remote_work_switches_the_core_to_polling_and_idleness_switches_it_back() {
    let platform = ThreadPlatform::new(2);
    let runtime = Runtime::new(platform);
    let worker = thread::spawn(move || {
        let (_g, em) = enter(platform, runtime, 1);
        em.run();
    });
    // A flood: far above the policy's 10,000 events/s, for 50 ms.
    let start = Instant::now();
    let delivered: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let saw_polling: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_millis(50) {
        for _ in 0..100 {
            runtime.spawn_on(1, move || {
                delivered.fetch_add(1, Ordering::Relaxed);
                if EventManager::current().poll_mode() == polling::PollMode::Polling {
                    saw_polling.store(true, Ordering::Relaxed);
                }
            });
            sent += 1;
        }
        thread::sleep(Duration::from_micros(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(saw_polling.load(Ordering::Relaxed), "the flood never switched the core to polling");
    assert!(runtime.counters(1).polls > 0, "the core never spun instead of blocking");
    // Quiet: within the spin budget (100 µs) the core stops turning and blocks.
    thread::sleep(Duration::from_millis(20));
    let idle_from = runtime.counters(1);
    thread::sleep(Duration::from_millis(100));
    let idle_to = runtime.counters(1);
    assert!(idle_to.blocks >= 1, "the core never blocked");
    let turns_while_idle = idle_to.polls - idle_from.polls;
    assert!(
        turns_while_idle < 100,
        "an idle core kept spinning ({turns_while_idle} polls in 100 ms)"
    );
    assert_eq!(delivered.load(Ordering::Relaxed), sent);
    runtime.shutdown();
    worker.join().unwrap();
}

#[test]
fn run_on_returns_the_result_computed_on_the_other_core() {
    let platform = ThreadPlatform::new(2);
    let runtime = Runtime::new(platform);
    let worker = thread::spawn(move || {
        let (_g, em) = enter(platform, runtime, 1);
        em.run();
    });
    let (_g, em) = enter(platform, runtime, 0);
    let (there, here) = em.block_on(async {
        let there = run_on(1, || current_core() * 100 + 7).await;
        let here = run_on(0, current_core).await;
        (there, here)
    });
    assert_eq!((there, here), (107, 0));
    runtime.shutdown();
    worker.join().unwrap();
}
