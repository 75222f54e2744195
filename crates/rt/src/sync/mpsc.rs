//! A lock-free multi-producer, single-consumer queue: the mailbox of a core.
//!
//! Every core's event manager owns one [`Queue`]. Any thread pushes into it (`spawn_on` work,
//! remote task wakeups); only the owning core pops, one item per turn of its loop (EbbRT paper,
//! "Event Manager": handle pending interrupts, then dispatch a single synthetic event, then the
//! idle handlers, then halt).
//!
//! # Algorithm
//!
//! This is Dmitry Vyukov's node-based MPSC queue. The queue is a singly linked list that always
//! holds at least one node, the *stub*: the node at the consumer's end (`front`) is a dummy whose
//! value has already been taken, and the items are the nodes after it.
//!
//! - **push** allocates a node, swaps it into the producers' end (`back`) with one atomic
//!   `swap`, then links the previous back node to it with one `Release` store. There is no loop
//!   and no compare-and-swap, so a push finishes in a bounded number of steps whatever the other
//!   threads do (it is wait-free apart from the allocator).
//! - **pop** reads `front.next`. If it is set, that node becomes the new stub, its value is
//!   handed out and the old stub is freed.
//!
//! Between a producer's swap and its link the list is briefly *inconsistent*: `back` already
//! names the new node but the chain from `front` does not reach it yet. A pop in that window
//! returns `None` even though the queue is not empty, while [`Queue::is_empty`] already reports
//! `false`. The item is not lost: the producer's next instruction links it and a later pop
//! returns it. A consumer that must not give up in that window uses [`Queue::pop_spin`].
//!
//! # Sleeping consumers
//!
//! A core with nothing to do blocks, and a producer must then ring its doorbell. The handshake
//! that makes this safe is:
//!
//! ```text
//! producer                                   consumer
//! queue.push(x)                              sleeping.store(true)
//! [fence(SeqCst)]                            [fence(SeqCst)]
//! if sleeping.load() { ring the doorbell }   if queue.is_empty() { block on the doorbell }
//! ```
//!
//! It is correct when either both sides put a `fence(SeqCst)` between their two steps (any
//! orderings on the flag), or neither does and the flag is accessed with `SeqCst` (at least a
//! `Release` store and an `Acquire` load). [`Queue::is_empty`] documents the guarantee that
//! makes both variants work; `loom` models of both sit in this module's tests.

use alloc::boxed::Box;
use core::marker::PhantomData;
use core::ptr;

use super::shim::{spin_loop, AtomicPtr, Ordering, UnsafeCell};

/// One link of the queue's list.
struct Node<T> {
    /// The node pushed after this one; null while this is the newest node (or while its
    /// producer has not yet linked its successor).
    next: AtomicPtr<Node<T>>,
    /// The item; `None` once the node has become the stub.
    value: UnsafeCell<Option<T>>,
}

impl<T> Node<T> {
    /// Allocates an unlinked node on the heap and leaks it as a raw pointer.
    fn alloc(value: Option<T>) -> *mut Node<T> {
        Box::into_raw(Box::new(Node {
            next: AtomicPtr::new(ptr::null_mut()),
            value: UnsafeCell::new(value),
        }))
    }
}

/// A lock-free multi-producer, single-consumer FIFO queue (Vyukov's node-based design).
///
/// [`push`](Queue::push) may be called from any number of threads at once;
/// [`pop`](Queue::pop) from only one thread at a time (it is `unsafe` for that reason). Items
/// pushed by one producer come out in the order that producer pushed them; items of different
/// producers interleave in the order their pushes reached the queue.
pub struct Queue<T> {
    /// The producers' end: the most recently pushed node. Every push swaps itself in here.
    back: AtomicPtr<Node<T>>,
    /// The consumer's end: the stub, whose `next` is the oldest item not yet popped. Only the
    /// consumer writes it; it is atomic so that producers may read it in [`Queue::is_empty`].
    front: AtomicPtr<Node<T>>,
    /// The queue owns the `T`s in its nodes (for drop check and auto traits).
    _owns: PhantomData<T>,
}

// SAFETY: a `Queue<T>` owns its items and nothing else that is tied to a thread; sending the
// queue sends the items, which is sound when `T: Send`.
unsafe impl<T: Send> Send for Queue<T> {}

// SAFETY: through `&Queue<T>` a thread can push a `T` (moving it to whichever thread pops it)
// and, under `pop`'s single-consumer contract, take one out. Both only move `T` values between
// threads, which `T: Send` allows. No `&T` is ever handed out, so `T: Sync` is not needed. The
// shared state is only touched through atomics, except node values, which are written before a
// node is published with `Release` and read by the single consumer after an `Acquire` load.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    /// Creates an empty queue (this allocates its stub node).
    pub fn new() -> Self {
        let stub = Node::alloc(None);
        Queue { back: AtomicPtr::new(stub), front: AtomicPtr::new(stub), _owns: PhantomData }
    }

    /// Appends `value` at the back. Callable from any thread, concurrently with other pushes
    /// and with the consumer.
    ///
    /// Lock-free and loop-free: one allocation, one atomic swap and one store.
    pub fn push(&self, value: T) {
        let node = Node::alloc(Some(value));
        // `AcqRel`: the `Release` half publishes the new node's initialised `next` (null) to the
        // producer that swaps after us and writes it; the `Acquire` half makes the previous
        // producer's initialisation of `prev` visible before we write `prev.next`.
        let prev = self.back.swap(node, Ordering::AcqRel);
        // SAFETY: `prev` is alive. Nodes are freed only by `pop` (and `Drop`), and `pop` frees a
        // node only once it has seen that node's `next` set; `prev.next` is written by nobody but
        // us, right here, because only one swap can return `prev`. The `Release` store publishes
        // the node's value to the consumer, whose `Acquire` load of `next` pairs with it.
        unsafe { (*prev).next.store(node, Ordering::Release) };
    }

    /// Takes the item at the front, or returns `None` if there is none that can be taken now.
    ///
    /// `None` means either that the queue is empty or that it is in the transient inconsistent
    /// state described in the [module docs](self): a producer has claimed its place at the back
    /// but not yet linked it. In the second case [`is_empty`](Queue::is_empty) returns `false`
    /// and the item is returned by a later pop, once its producer has finished its `push`.
    ///
    /// # Safety
    ///
    /// At most one thread may be inside `pop` or [`pop_spin`](Queue::pop_spin) at any time:
    /// the caller must be the queue's only consumer (in cairn, the owning core's event loop), or
    /// otherwise guarantee mutual exclusion between consumers.
    pub unsafe fn pop(&self) -> Option<T> {
        // Only the consumer writes `front`, and the caller is the consumer.
        let front = self.front.load(Ordering::Relaxed);
        // SAFETY: `front` is the current stub. Only the consumer frees nodes, and it never frees
        // the stub it is standing on, so the node is alive.
        let next = unsafe { (*front).next.load(Ordering::Acquire) };
        if next.is_null() {
            return None;
        }
        self.front.store(next, Ordering::Release);
        // SAFETY: `next` is alive (only the consumer frees nodes and it is now the stub). The
        // `Acquire` load above pairs with the producer's `Release` store of `next`, which came
        // after it initialised the value, so the value is fully written; no other thread reads
        // or writes a node's value once it is linked, and there is one consumer (our contract).
        let value = unsafe { (*next).value.with_mut(|slot| (*slot).take()) };
        // SAFETY: the old stub is no longer reachable by anyone. Its one producer (the one whose
        // swap returned it) has already written its `next` (we read it non-null) and touches it
        // no more; `front` no longer names it; producers that read `front` in `is_empty` only
        // compare the pointer and never dereference it. It came from `Box::into_raw`.
        drop(unsafe { Box::from_raw(front) });
        value
    }

    /// Like [`pop`](Queue::pop), but when a producer is midway through a push it spins until
    /// that item is linked and returns it. Returns `None` only if the queue was empty.
    ///
    /// The wait is normally a few instructions, but a producer thread that the host OS
    /// preempts between its two steps stretches it to a scheduling quantum, so the event loop
    /// uses `pop` and simply comes back on its next turn.
    ///
    /// # Safety
    ///
    /// The same single-consumer contract as [`pop`](Queue::pop).
    pub unsafe fn pop_spin(&self) -> Option<T> {
        loop {
            // SAFETY: forwarded from this function's own contract.
            if let Some(value) = unsafe { self.pop() } {
                return Some(value);
            }
            if self.is_empty() {
                return None;
            }
            spin_loop();
        }
    }

    /// Returns `true` if the queue holds no item.
    ///
    /// # Guarantee
    ///
    /// If a [`push`](Queue::push) has completed its atomic swap, and that swap is ordered
    /// before this call (by happens-before, by `fence(SeqCst)`s on both sides, or by reaching
    /// the producers' end first in its modification order, see below), and its item has not
    /// been popped, then `is_empty` returns `false`, even while the push is still in the
    /// inconsistent window and [`pop`](Queue::pop) would return `None`. So a consumer that sees
    /// `false` must not sleep, and one that sees `true` may, provided the handshake in the
    /// [module docs](self) is followed:
    ///
    /// - With `fence(SeqCst)` on both sides, either the producer's fence comes first, and then
    ///   this call's load of the producers' end sees the producer's swap (so `false`), or the
    ///   consumer's fence comes first, and then the producer's load sees `sleeping == true`.
    /// - Without fences, `is_empty` only ever answers `true` from a successful
    ///   compare-and-swap (`AcqRel`) of the producers' end onto itself, a read-modify-write
    ///   that reads the latest value. If a producer's swap precedes it in that location's
    ///   modification order, the compare fails and the answer is `false`. If the swap comes
    ///   after it, the swap reads from the release sequence our compare-and-swap heads, so the
    ///   consumer's earlier `Release`/`SeqCst` store to `sleeping` happens before the
    ///   producer's load of it, which therefore sees `true` and rings.
    ///
    /// Called by the consumer, `true` is exact at the moment of the compare-and-swap. Called by
    /// a producer, the answer is a snapshot that may be stale by the time it returns (items
    /// come and go), useful only as a hint.
    pub fn is_empty(&self) -> bool {
        let front = self.front.load(Ordering::Acquire);
        let back = self.back.load(Ordering::Acquire);
        if back != front {
            // The back moved past the stub: some push has claimed a place, linked or not.
            return false;
        }
        // The plain load may have read an old value; confirm with a read-modify-write, which
        // reads the latest one and, if it succeeds, orders every later push after this call.
        // The pointers are compared, never dereferenced, so a stale `front` read by a producer
        // is harmless.
        self.back.compare_exchange(front, front, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> core::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Queue").field("is_empty", &self.is_empty()).finish_non_exhaustive()
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // `&mut self`: no push or pop is running, so every push has linked its node and the
        // chain from `front` reaches every node.
        let mut node = self.front.load(Ordering::Relaxed);
        while !node.is_null() {
            // SAFETY: every node in the chain came from `Box::into_raw` and is owned by the queue
            // alone now; each is freed exactly once because we move on before freeing.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next.load(Ordering::Relaxed);
            drop(boxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn new_queue_is_empty() {
        let q: Queue<u32> = Queue::new();
        assert!(q.is_empty());
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, None);
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop_spin() }, None);
        assert!(q.is_empty());
    }

    #[test]
    fn single_thread_fifo() {
        let q = Queue::new();
        for i in 0..100u32 {
            q.push(i);
            assert!(!q.is_empty());
        }
        for i in 0..100u32 {
            // SAFETY: this test is the only consumer.
            assert_eq!(unsafe { q.pop() }, Some(i));
        }
        assert!(q.is_empty());
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, None);
        // The queue keeps working after it has been drained.
        q.push(7);
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, Some(7));
        assert!(q.is_empty());
    }

    /// Counts its drops, to check that the queue frees what it holds exactly once.
    struct DropCounter(Arc<AtomicUsize>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn drop_frees_remaining_items_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let q = Queue::new();
        for _ in 0..10 {
            q.push(DropCounter(drops.clone()));
        }
        // SAFETY: this test is the only consumer.
        let popped = unsafe { q.pop() };
        assert!(popped.is_some());
        drop(popped);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(q);
        assert_eq!(drops.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn inconsistent_window_is_not_empty_and_item_arrives_later() {
        let q = Queue::new();
        q.push(1u32);
        // Play a producer by hand and stop it between its swap and its link.
        let node = Node::alloc(Some(2u32));
        let prev = q.back.swap(node, Ordering::AcqRel);
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, Some(1));
        assert!(!q.is_empty(), "a claimed but unlinked item must count");
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, None, "an unlinked item cannot be taken yet");
        assert!(!q.is_empty());
        // SAFETY: `prev` is the live stub; we are its producer and link it as `push` would.
        unsafe { (*prev).next.store(node, Ordering::Release) };
        // SAFETY: this test is the only consumer.
        assert_eq!(unsafe { q.pop() }, Some(2));
        assert!(q.is_empty());
    }

    #[test]
    fn pop_spin_waits_for_a_producer_midway() {
        let q = Arc::new(Queue::new());
        let node = Node::alloc(Some(5u64));
        let prev = q.back.swap(node, Ordering::AcqRel);
        let prev_addr = prev as usize;
        let node_addr = node as usize;
        let linker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            let prev = prev_addr as *mut Node<u64>;
            // SAFETY: `prev` is the queue's stub, alive until its successor is linked, which is
            // what this store does; this thread is the producer that claimed `node`.
            unsafe { (*prev).next.store(node_addr as *mut Node<u64>, Ordering::Release) };
        });
        // SAFETY: this thread is the only consumer.
        assert_eq!(unsafe { q.pop_spin() }, Some(5));
        linker.join().unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn items_pushed_by_another_thread_are_seen() {
        let q = Arc::new(Queue::new());
        let q2 = q.clone();
        thread::spawn(move || {
            for i in 0..1000u32 {
                q2.push(i);
            }
        })
        .join()
        .unwrap();
        assert!(!q.is_empty());
        for i in 0..1000u32 {
            // SAFETY: this thread is the only consumer.
            assert_eq!(unsafe { q.pop() }, Some(i));
        }
        assert!(q.is_empty());
    }

    /// A tiny xorshift generator, so the stress test needs no extra crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn stress_every_item_once_in_producer_order() {
        const PRODUCERS: u64 = 4;
        // Items a producer may run ahead of the consumer's progress, to bound memory.
        const MAX_AHEAD: u64 = 1 << 18;
        let per_producer: u64 = if cfg!(debug_assertions) { 1_000_000 } else { 4_000_000 };
        let q = Arc::new(Queue::new());
        let consumed = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (q, consumed) = (q.clone(), consumed.clone());
                thread::spawn(move || {
                    let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (p + 1);
                    for seq in 0..per_producer {
                        q.push((p, seq));
                        // Now and then, stall for a random while to vary the interleavings.
                        let r = xorshift(&mut rng);
                        if r % 1024 == 0 {
                            thread::yield_now();
                        } else if r % 64 == 0 {
                            for _ in 0..(r >> 58) {
                                core::hint::spin_loop();
                            }
                        }
                        while seq > consumed.load(Ordering::Relaxed) / PRODUCERS + MAX_AHEAD {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u64; PRODUCERS as usize];
        let mut received = 0u64;
        let mut check = |(p, seq): (u64, u64), received: &mut u64| {
            assert_eq!(seq, next[p as usize], "producer {p}: lost, repeated or reordered");
            next[p as usize] += 1;
            *received += 1;
            if *received % 1024 == 0 {
                consumed.store(*received, Ordering::Relaxed);
            }
        };
        while received < PRODUCERS * per_producer {
            // SAFETY: this thread is the only consumer.
            match unsafe { q.pop() } {
                Some(item) => check(item, &mut received),
                None if !q.is_empty() => {
                    // A producer is between its swap and its link: the item must arrive.
                    // SAFETY: this thread is the only consumer.
                    let item = unsafe { q.pop_spin() };
                    check(item.expect("is_empty said an item was claimed"), &mut received);
                }
                None => thread::yield_now(),
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(next.iter().all(|&n| n == per_producer));
        assert!(q.is_empty());
        // SAFETY: this thread is the only consumer.
        assert_eq!(unsafe { q.pop() }, None);
    }

    /// The sleep handshake from the module docs with real threads and `SeqCst` flag accesses:
    /// the consumer parks only after seeing the queue empty, producers unpark it when they see
    /// it asleep. A stranded item would leave the consumer parked until its long timeout.
    #[test]
    fn sleep_handshake_never_strands_an_item() {
        const PRODUCERS: u64 = 2;
        let per_producer: u64 = if cfg!(debug_assertions) { 20_000 } else { 100_000 };
        let q = Arc::new(Queue::new());
        let sleeping = Arc::new(AtomicBool::new(false));
        let consumer_thread = thread::current();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (q, sleeping, consumer) =
                    (q.clone(), sleeping.clone(), consumer_thread.clone());
                thread::spawn(move || {
                    for seq in 0..per_producer {
                        q.push((p, seq));
                        if sleeping.load(Ordering::SeqCst) {
                            consumer.unpark();
                        }
                        if seq % 4096 == 0 {
                            thread::sleep(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        let mut received = 0;
        let mut next = [0u64; PRODUCERS as usize];
        loop {
            // SAFETY: this thread is the only consumer.
            while let Some((p, seq)) = unsafe { q.pop() } {
                assert_eq!(seq, next[p as usize]);
                next[p as usize] += 1;
                received += 1;
            }
            if received == PRODUCERS * per_producer {
                break;
            }
            sleeping.store(true, Ordering::SeqCst);
            if q.is_empty() {
                let start = Instant::now();
                thread::park_timeout(Duration::from_secs(10));
                // A spurious or early wake is fine; sleeping the full timeout with items
                // waiting means a push went unnoticed.
                assert!(
                    start.elapsed() < Duration::from_secs(10) || q.is_empty(),
                    "an item was stranded while the consumer slept"
                );
            }
            sleeping.store(false, Ordering::SeqCst);
        }
        for producer in producers {
            producer.join().unwrap();
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use alloc::vec::Vec;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers push two items each while the consumer pops: every item arrives exactly
    /// once, and each producer's items arrive in the order it pushed them.
    #[test]
    fn two_producers_exactly_once_in_order() {
        loom::model(|| {
            let q = Arc::new(Queue::new());
            let producers: Vec<_> = (0..2u32)
                .map(|p| {
                    let q = q.clone();
                    thread::spawn(move || {
                        q.push((p, 0u32));
                        q.push((p, 1u32));
                    })
                })
                .collect();
            let mut next = [0u32; 2];
            let mut received = 0;
            while received < 4 {
                // SAFETY: the model's main thread is the only consumer.
                match unsafe { q.pop() } {
                    Some((p, seq)) => {
                        assert_eq!(seq, next[p as usize]);
                        next[p as usize] += 1;
                        received += 1;
                    }
                    None => thread::yield_now(),
                }
            }
            for producer in producers {
                producer.join().unwrap();
            }
            assert!(q.is_empty());
            // SAFETY: the model's main thread is the only consumer.
            assert!(unsafe { q.pop() }.is_none());
        });
    }

    /// Items left in the queue when it is dropped are freed (loom reports leaked objects).
    #[test]
    fn drop_with_items_from_another_thread() {
        loom::model(|| {
            let q = Arc::new(Queue::new());
            let q2 = q.clone();
            let producer = thread::spawn(move || {
                q2.push(Arc::new(1u8));
                q2.push(Arc::new(2u8));
            });
            // SAFETY: the model's main thread is the only consumer.
            let first = unsafe { q.pop() };
            producer.join().unwrap();
            if let Some(item) = first {
                assert_eq!(*item, 1);
            }
            drop(q);
        });
    }

    /// The sleep handshake with `SeqCst` flag accesses and no fences: if the consumer decides
    /// to block, some producer must have seen it asleep and rung the doorbell, so no item is
    /// left behind. This leans on `is_empty`'s compare-and-swap, since loom treats `SeqCst`
    /// accesses as only `AcqRel`.
    #[test]
    fn sleep_handshake_without_fences() {
        loom::model(|| {
            let q = Arc::new(Queue::new());
            let sleeping = Arc::new(AtomicBool::new(false));
            let rung = Arc::new(AtomicBool::new(false));
            let producers: Vec<_> = (0..2u32)
                .map(|p| {
                    let (q, sleeping, rung) = (q.clone(), sleeping.clone(), rung.clone());
                    thread::spawn(move || {
                        q.push(p);
                        if sleeping.load(Ordering::SeqCst) {
                            rung.store(true, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            sleeping.store(true, Ordering::SeqCst);
            let blocks = q.is_empty();
            for producer in producers {
                producer.join().unwrap();
            }
            if blocks {
                assert!(rung.load(Ordering::SeqCst), "consumer asleep with an item stranded");
            }
        });
    }

    /// The same handshake as the event manager writes it: relaxed flag accesses with a
    /// `fence(SeqCst)` on each side.
    #[test]
    fn sleep_handshake_with_fences() {
        use crate::sync::shim::fence;
        loom::model(|| {
            let q = Arc::new(Queue::new());
            let sleeping = Arc::new(AtomicBool::new(false));
            let rung = Arc::new(AtomicBool::new(false));
            let producer = {
                let (q, sleeping, rung) = (q.clone(), sleeping.clone(), rung.clone());
                thread::spawn(move || {
                    q.push(1u32);
                    fence(Ordering::SeqCst);
                    if sleeping.load(Ordering::Relaxed) {
                        rung.store(true, Ordering::Relaxed);
                    }
                })
            };
            sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let blocks = q.is_empty();
            producer.join().unwrap();
            if blocks {
                assert!(rung.load(Ordering::Relaxed), "consumer asleep with an item stranded");
            } else {
                // The item is there, or about to be linked.
                // SAFETY: the model's main thread is the only consumer.
                assert_eq!(unsafe { q.pop_spin() }, Some(1));
            }
        });
    }
}
