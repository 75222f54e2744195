//! Waiting that survives `Tflush`: blocking operations run in tasks of their own.
//!
//! The server framework cancels a request by dropping its future (see
//! `cairn_9p::server::FileServer`), at any await point. An I/O operation dropped half-way may
//! lose what it was doing: a single-shot io_uring receive that completed just before the drop
//! takes its bytes with it. So the synthetic tree never awaits such an operation inside a
//! request. A [`Pump`] runs one operation at a time in a task of its own and queues the result;
//! requests only wait for the queue to change, which they can stop doing at any moment without
//! losing anything. At most one operation is in flight per pump, so a pump reads ahead by at
//! most one result.
//!
//! Dropping the [`Pump`] cancels it: its task drops the operation (which cancels the kernel's
//! side of it) and every waiter sees `None`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use cairn_rt::event::spawn_local;

/// Tasks waiting for some shared state to change, all woken at once when it does.
#[derive(Default)]
pub(crate) struct Waiters {
    wakers: RefCell<Vec<Waker>>,
}

impl Waiters {
    /// Remembers `waker` until the next [`wake_all`](Self::wake_all) (once per task).
    pub(crate) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Wakes every registered task. A task whose request was dropped meanwhile gets one
    /// spurious wakeup, which the executor tolerates.
    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }
}

/// A flag that stops a background task: the task checks it each time it is polled.
#[derive(Default)]
pub(crate) struct Cancel {
    cancelled: Cell<bool>,
    task: RefCell<Option<Waker>>,
}

impl Cancel {
    /// Raises the flag and wakes the task so that it notices.
    pub(crate) fn cancel(&self) {
        self.cancelled.set(true);
        if let Some(w) = self.task.borrow_mut().take() {
            w.wake();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    /// Runs `op` until it completes (`Some`) or the flag is raised (`None`, and `op` is dropped).
    pub(crate) async fn run<F: Future>(&self, op: F) -> Option<F::Output> {
        let mut op = pin!(op);
        let out = poll_fn(|cx| {
            if self.cancelled.get() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(v) = op.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            *self.task.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        self.task.borrow_mut().take();
        out
    }
}

/// The state a pump shares with its task and its waiters.
pub(crate) struct PumpShared<T> {
    ready: RefCell<VecDeque<T>>,
    running: Cell<bool>,
    cancel: Cancel,
    waiters: Waiters,
}

/// Runs one operation at a time in its own task and hands the results to whoever waits.
/// Dropping it cancels the operation in flight.
pub(crate) struct Pump<T: 'static> {
    shared: Rc<PumpShared<T>>,
}

impl<T: 'static> Pump<T> {
    /// A pump with nothing in flight.
    pub(crate) fn new() -> Pump<T> {
        Pump {
            shared: Rc::new(PumpShared {
                ready: RefCell::new(VecDeque::new()),
                running: Cell::new(false),
                cancel: Cancel::default(),
                waiters: Waiters::default(),
            }),
        }
    }

    /// A handle to wait on, which stays valid (and sees `None`) after the pump is dropped.
    pub(crate) fn handle(&self) -> Rc<PumpShared<T>> {
        self.shared.clone()
    }
}

impl<T: 'static> Drop for Pump<T> {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        self.shared.ready.borrow_mut().clear();
        self.shared.waiters.wake_all();
    }
}

impl<T: 'static> PumpShared<T> {
    /// The next result: a queued one, or that of an operation made by `start` and run in the
    /// pump's task (unless one is already running). `None` once the pump is dropped. Dropping
    /// this future loses nothing: the operation goes on and its result stays queued.
    pub(crate) async fn next<F, Fut>(self: &Rc<Self>, start: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T> + 'static,
    {
        poll_fn(|cx| {
            if let Some(v) = self.ready.borrow_mut().pop_front() {
                return Poll::Ready(Some(v));
            }
            if self.cancel.is_cancelled() {
                return Poll::Ready(None);
            }
            if !self.running.get() {
                self.running.set(true);
                spawn_local(pump_task(self.clone(), start()));
            }
            self.waiters.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl<T: 'static> PumpShared<T> {
    /// Returns a result taken with [`next`](Self::next) but not used, to be the next one out.
    pub(crate) fn put_back(&self, value: T) {
        if !self.cancel.is_cancelled() {
            self.ready.borrow_mut().push_front(value);
            self.waiters.wake_all();
        }
    }
}

/// The pump's task: one operation, its result queued, the waiters woken.
async fn pump_task<T: 'static>(shared: Rc<PumpShared<T>>, op: impl Future<Output = T>) {
    let out = shared.cancel.run(op).await;
    shared.running.set(false);
    if let Some(v) = out {
        if !shared.cancel.is_cancelled() {
            shared.ready.borrow_mut().push_back(v);
        }
    }
    shared.waiters.wake_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Waker};

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn cancel_stops_a_pending_operation_and_drops_it() {
        let cancel = Cancel::default();
        let dropped = Rc::new(Cell::new(false));
        struct Guard(Rc<Cell<bool>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let guard = Guard(dropped.clone());
        let op = async move {
            let _g = guard;
            std::future::pending::<()>().await
        };
        let mut run = pin!(cancel.run(op));
        assert!(poll_once(run.as_mut()).is_pending());
        assert!(!dropped.get());
        cancel.cancel();
        assert_eq!(poll_once(run.as_mut()), Poll::Ready(None));
        assert!(dropped.get(), "the cancelled operation was dropped");
    }

    #[test]
    fn cancel_passes_a_finished_operation_through() {
        let cancel = Cancel::default();
        let mut run = pin!(cancel.run(async { 7 }));
        assert_eq!(poll_once(run.as_mut()), Poll::Ready(Some(7)));
    }

    #[test]
    fn waiters_are_registered_once_and_woken_together() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (a, b) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let w = Waiters::default();
        w.register(&wa);
        w.register(&wa);
        w.register(&wb);
        w.wake_all();
        assert_eq!(a.0.load(Ordering::Relaxed), 1, "registered twice, woken once");
        assert_eq!(b.0.load(Ordering::Relaxed), 1);
        w.wake_all();
        assert_eq!(a.0.load(Ordering::Relaxed), 1, "a wake consumes the registration");
    }
}
