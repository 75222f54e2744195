//! The per-core io_uring: every I/O a hosted core does goes through it.
//!
//! Each core owns one ring. An operation is a submission queue entry whose `user_data` is the id
//! of a slot in the core's operation table ([`cairn_rt::slab`]); its completion lands in that slot
//! and wakes the task waiting on it. The event loop's step 1 ([`Reactor::dispatch`]) drains the
//! completion queue without a system call; submissions are batched and flushed once per turn
//! ([`Reactor::flush`]); blocking is one `io_uring_enter` that waits for a completion or a
//! timeout ([`Reactor::wait`]).
//!
//! Multishot operations (accept, and receive with provided buffers) post many completions for
//! one submission; their slot queues results until the owner takes them.
//!
//! Buffers and other memory the kernel reads or writes must outlive the operation. Operation
//! futures ([`Op`], [`MultiOp`]) own that memory; if one is dropped before its completion
//! arrives, the memory is moved into the slot ([`Reactor::abandon`]), the operation is cancelled,
//! and both are released only when the kernel's final completion for it arrives.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use cairn_rt::event::Runtime;
use cairn_rt::slab::{Slab, SlotId};
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::bufring::BufRing;

/// `user_data` of the doorbell's eventfd read.
const DOORBELL: u64 = u64::MAX;
/// `user_data` of operations whose completion nobody waits for (cancellations).
const UNWATCHED: u64 = u64::MAX - 1;

/// Submission queue entries per ring.
pub const RING_ENTRIES: u32 = 1024;

/// Queued submissions that are handed to the kernel at the next device poll even though the
/// event loop is still working through a batch.
const FLUSH_BACKLOG: usize = 64;

/// The id of an in-flight operation on the calling core's ring.
pub type OpId = SlotId;

/// One completion of an operation: the kernel's result (a count or `-errno`) and CQE flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The operation's result: non-negative on success, `-errno` on failure.
    pub result: i32,
    /// The completion's flags (`IORING_CQE_F_MORE`, `IORING_CQE_F_BUFFER`, ...).
    pub flags: u32,
}

impl Completion {
    /// The result as an `io::Result`.
    pub fn into_result(self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }

    /// Whether more completions will follow for this (multishot) operation.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer the kernel chose for this completion, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
}

enum OpState {
    Waiting { waker: Option<Waker>, results: VecDeque<Completion>, finished: bool },
    Abandoned { _keepalive: Box<dyn Any> },
}

/// A core's io_uring and its table of in-flight operations.
pub struct Reactor {
    ring: RefCell<IoUring>,
    ops: RefCell<Slab<OpState>>,
    unsubmitted: Cell<bool>,
    doorbell: OwnedFd,
    doorbell_value: Box<UnsafeCell<u64>>,
    completions: Cell<u64>,
    buf_ring: Option<&'static BufRing>,
}

thread_local! {
    static CURRENT: Cell<Option<&'static Reactor>> = const { Cell::new(None) };
}

impl Reactor {
    /// Creates a ring for the calling core, keeps a read of `doorbell` posted on it, registers a
    /// provided-buffer ring for multishot receives when the kernel has them, and makes it the
    /// calling thread's reactor. It lives for the rest of the program.
    ///
    /// The ring defers the kernel's completion work to this thread's next `io_uring_enter`
    /// (`COOP_TASKRUN`) and flags when some is pending (`TASKRUN_FLAG`), so a polling core
    /// enters the kernel only when there is something to collect ([`flush`](Self::flush)).
    pub fn install(doorbell: OwnedFd, runtime: &'static Runtime) -> io::Result<&'static Reactor> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(RING_ENTRIES)
            .or_else(|_| IoUring::new(RING_ENTRIES))?;
        // Multishot receive needs Linux 6.0; without it, receives are single-shot.
        let buf_ring = BufRing::register(&ring, runtime).ok();
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor {
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::default()),
            unsubmitted: Cell::new(false),
            doorbell,
            doorbell_value: Box::new(UnsafeCell::new(0)),
            completions: Cell::new(0),
            buf_ring,
        }));
        reactor.arm_doorbell();
        CURRENT.with(|c| c.set(Some(reactor)));
        Ok(reactor)
    }

    /// The calling thread's reactor, if it has one.
    pub fn try_current() -> Option<&'static Reactor> {
        CURRENT.with(|c| c.get())
    }

    /// The calling thread's reactor.
    ///
    /// # Panics
    ///
    /// On a thread that is not a hosted cairn core.
    pub fn current() -> &'static Reactor {
        Self::try_current().expect("not on a hosted cairn core (no io_uring reactor)")
    }

    /// This core's provided-buffer ring, if the kernel supports one.
    pub fn buf_ring(&self) -> Option<&'static BufRing> {
        self.buf_ring
    }

    /// Gives back the provided buffer a completion carries, if any (for completions nobody
    /// will read: abandoned operations).
    fn release_buffer(&self, flags: u32) {
        if let (Some(ring), Some(bid)) = (self.buf_ring, cqueue::buffer_select(flags)) {
            ring.recycle(bid);
        }
    }

    /// Completions dispatched by this reactor so far.
    pub fn completions(&self) -> u64 {
        self.completions.get()
    }

    fn arm_doorbell(&self) {
        let read = opcode::Read::new(
            types::Fd(self.doorbell.as_raw_fd()),
            self.doorbell_value.get() as *mut u8,
            8,
        )
        .build()
        .user_data(DOORBELL);
        // SAFETY: the eventfd and the 8-byte target are owned by this leaked reactor, so they
        // outlive the read.
        unsafe { self.push(read) };
    }

    /// Queues `entry` (its `user_data` already set); flushed to the kernel by the next
    /// [`flush`](Self::flush) or [`wait`](Self::wait).
    ///
    /// # Safety
    ///
    /// Everything the entry points to must stay valid until its last completion arrives.
    unsafe fn push(&self, entry: squeue::Entry) {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: the caller keeps the entry's memory alive.
        while unsafe { ring.submission().push(&entry) }.is_err() {
            // The submission queue is full: hand it to the kernel and try again.
            if let Err(e) = ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    panic!("io_uring submit failed: {e}");
                }
            }
        }
        self.unsubmitted.set(true);
    }

    /// Starts an operation and returns its id.
    ///
    /// # Safety
    ///
    /// Everything the entry points to must stay valid until the operation's last completion
    /// arrives: keep it in the [`Op`] or [`MultiOp`] that waits for it, which hands it to
    /// [`abandon`](Self::abandon) if dropped early.
    pub unsafe fn start(&self, entry: squeue::Entry) -> OpId {
        let id = self.ops.borrow_mut().insert(OpState::Waiting {
            waker: None,
            results: VecDeque::new(),
            finished: false,
        });
        // SAFETY: forwarded contract.
        unsafe { self.push(entry.user_data(id.to_u64())) };
        id
    }

    /// Hands an in-flight entry to the kernel without tracking its completion (used for
    /// cancellations).
    fn start_unwatched(&self, entry: squeue::Entry) {
        // SAFETY: unwatched entries (AsyncCancel) point to no memory.
        unsafe { self.push(entry.user_data(UNWATCHED)) };
    }

    /// The next completion of operation `id`. A single-shot operation's slot is freed when its
    /// completion is taken; a multishot one's when its final completion is taken.
    pub fn poll_completion(&self, id: OpId, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let mut ops = self.ops.borrow_mut();
        let Some(OpState::Waiting { waker, results, finished }) = ops.get_mut(id) else {
            return Poll::Ready(None);
        };
        if let Some(c) = results.pop_front() {
            if results.is_empty() && *finished {
                ops.remove(id);
            }
            return Poll::Ready(Some(c));
        }
        if *finished {
            ops.remove(id);
            return Poll::Ready(None);
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Gives up on operation `id`: the kernel may still use what `keepalive` owns, so it is kept
    /// until the operation's final completion, and the operation is cancelled.
    pub fn abandon(&self, id: OpId, keepalive: Box<dyn Any>) {
        let mut ops = self.ops.borrow_mut();
        let Some(state) = ops.get_mut(id) else { return };
        let finished = matches!(state, OpState::Waiting { finished: true, .. });
        let old = std::mem::replace(state, OpState::Abandoned { _keepalive: keepalive });
        if finished {
            ops.remove(id);
        }
        drop(ops);
        if let OpState::Waiting { results, .. } = old {
            for c in results {
                self.release_buffer(c.flags);
            }
        }
        if !finished {
            self.start_unwatched(opcode::AsyncCancel::new(id.to_u64()).build());
        }
    }

    /// Lets the kernel post the completions it has deferred to this thread (`TASKRUN_FLAG`)
    /// or held back (completion queue overflow), and hands over a large backlog of
    /// submissions. No system call otherwise: the event loop flushes a batch of submissions
    /// at once when its ready queue drains ([`flush`](Self::flush)).
    pub fn collect(&self) {
        let (kernel_waits, backlog) = {
            let mut ring = self.ring.borrow_mut();
            let sq = ring.submission();
            (sq.taskrun() || sq.cq_overflow(), sq.len() >= FLUSH_BACKLOG)
        };
        if kernel_waits || backlog {
            self.submit();
        }
    }

    /// Hands queued submissions to the kernel without waiting (no system call if none).
    pub fn flush(&self) {
        if self.unsubmitted.get() {
            self.submit();
        }
    }

    fn submit(&self) {
        self.unsubmitted.set(false);
        {
            if let Err(e) = self.ring.borrow().submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    panic!("io_uring submit failed: {e}");
                }
                self.unsubmitted.set(true);
            }
        }
    }

    /// Dispatches every completion in the queue: the event loop's device step. Returns how many
    /// it handled (the doorbell's included, since a doorbell is an event).
    pub fn dispatch(&self) -> usize {
        let mut handled = 0;
        let mut rearm_doorbell = false;
        let mut wake = Vec::new();
        let mut orphaned = Vec::new();
        {
            let mut ring = self.ring.borrow_mut();
            let mut ops = self.ops.borrow_mut();
            for cqe in ring.completion() {
                handled += 1;
                match cqe.user_data() {
                    DOORBELL => rearm_doorbell = true,
                    UNWATCHED => {}
                    data => {
                        let id = SlotId::from_u64(data);
                        let more = cqueue::more(cqe.flags());
                        match ops.get_mut(id) {
                            Some(OpState::Waiting { waker, results, finished }) => {
                                results.push_back(Completion {
                                    result: cqe.result(),
                                    flags: cqe.flags(),
                                });
                                *finished = !more;
                                if let Some(w) = waker.take() {
                                    wake.push(w);
                                }
                            }
                            Some(OpState::Abandoned { .. }) => {
                                orphaned.push(cqe.flags());
                                if !more {
                                    ops.remove(id);
                                }
                            }
                            None => orphaned.push(cqe.flags()),
                        }
                    }
                }
            }
        }
        if rearm_doorbell {
            self.arm_doorbell();
        }
        for flags in orphaned {
            self.release_buffer(flags);
        }
        for w in wake {
            w.wake();
        }
        self.completions.set(self.completions.get() + handled as u64);
        handled
    }

    /// Flushes submissions and waits until at least one completion arrives or `timeout_ns`
    /// passes (forever if `None`).
    pub fn wait(&self, timeout_ns: Option<u64>) {
        self.unsubmitted.set(false);
        let ring = self.ring.borrow();
        let result = match timeout_ns {
            Some(ns) => {
                let ts = types::Timespec::new()
                    .sec(ns / 1_000_000_000)
                    .nsec((ns % 1_000_000_000) as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(1, &args)
            }
            None => ring.submit_and_wait(1),
        };
        if let Err(e) = result {
            match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => panic!("io_uring wait failed: {e}"),
            }
        }
    }
}

/// A single-shot operation in flight, owning the memory `K` the kernel uses for it. Resolves to
/// the completion and the memory back.
pub struct Op<K: 'static> {
    id: Option<OpId>,
    keep: Option<K>,
}

impl<K: 'static> Op<K> {
    /// Starts `entry`, which points into `keep`.
    ///
    /// # Safety
    ///
    /// Everything `entry` points to must be owned by `keep` (or be otherwise valid until the
    /// operation completes), and must not move when `keep` moves (heap memory, not inline).
    pub unsafe fn start(entry: squeue::Entry, keep: K) -> Op<K> {
        // SAFETY: forwarded contract: the memory lives in `keep`, which the Op keeps until the
        // completion or hands to `abandon`.
        let id = unsafe { Reactor::current().start(entry) };
        Op { id: Some(id), keep: Some(keep) }
    }
}

impl<K: 'static + Unpin> Future for Op<K> {
    type Output = (Completion, K);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id.expect("Op polled after completion");
        match Reactor::current().poll_completion(id, cx) {
            Poll::Ready(Some(c)) => {
                self.id = None;
                Poll::Ready((c, self.keep.take().expect("Op memory")))
            }
            Poll::Ready(None) => panic!("io_uring operation vanished"),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<K: 'static> Drop for Op<K> {
    fn drop(&mut self) {
        abandon_if_running(self.id.take(), self.keep.take());
    }
}

/// Hands the memory of an operation still in flight to the reactor (see [`Reactor::abandon`]).
fn abandon_if_running<K: 'static>(id: Option<OpId>, keep: Option<K>) {
    let Some(id) = id else { return };
    let keep: Box<dyn Any> = Box::new(keep);
    match Reactor::try_current() {
        Some(r) => r.abandon(id, keep),
        // Dropped off its core (only at shutdown): the kernel may still use the memory, so
        // keeping it forever is the safe choice.
        None => std::mem::forget(keep),
    }
}

/// A multishot operation in flight: yields completions until the kernel posts the last one.
pub struct MultiOp<K: 'static> {
    id: Option<OpId>,
    keep: Option<K>,
}

impl<K: 'static> MultiOp<K> {
    /// Starts multishot `entry`, which points into `keep`.
    ///
    /// # Safety
    ///
    /// As for [`Op::start`].
    pub unsafe fn start(entry: squeue::Entry, keep: K) -> MultiOp<K> {
        // SAFETY: forwarded contract.
        let id = unsafe { Reactor::current().start(entry) };
        MultiOp { id: Some(id), keep: Some(keep) }
    }

    /// The next completion, or `None` once the operation has ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let Some(id) = self.id else { return Poll::Ready(None) };
        let r = Reactor::current().poll_completion(id, cx);
        if let Poll::Ready(Some(c)) = &r {
            if !c.more() {
                self.id = None;
            }
        }
        if let Poll::Ready(None) = r {
            self.id = None;
        }
        r
    }

    /// Waits for the next completion.
    pub async fn next(&mut self) -> Option<Completion> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Whether the operation is still running.
    pub fn is_active(&self) -> bool {
        self.id.is_some()
    }
}

impl<K: 'static> Drop for MultiOp<K> {
    fn drop(&mut self) {
        abandon_if_running(self.id.take(), self.keep.take());
    }
}
