//! Requests in flight and how `Tflush` cancels them.
//!
//! flush(5): a `Tflush` asks the server to abort the request with tag `oldtag`; the server
//! answers it with `Rflush` once the old request is done with, and the client may reuse the
//! old tag after the `Rflush`. cairn follows Plan 9's lib9p: a request that has already been
//! answered just gets the `Rflush`; one that is still waiting is cancelled (its future is
//! dropped, which the [`FileServer`](super::FileServer) contract says must leave the server
//! consistent), answered with an "interrupted" error, and then the `Rflush` is sent, so the
//! `Rflush` always follows every reply to `oldtag`.
//!
//! Only requests that may wait run as their own tasks ([`Abortable`]); every other request is
//! answered before the next message is read, so it is never in flight when a `Tflush` comes.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What an [`Abortable`] task and its [`AbortHandle`] share.
struct Slot {
    future: RefCell<Option<LocalFuture>>,
    aborted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A future that runs an inner future until it finishes or its [`AbortHandle`] aborts it;
/// aborting drops the inner future at once and lets this one finish.
pub(crate) struct Abortable {
    slot: Rc<Slot>,
}

/// Cancels the [`Abortable`] it was made with.
pub(crate) struct AbortHandle {
    slot: Rc<Slot>,
}

/// Wraps `future` so that it can be aborted.
pub(crate) fn abortable(future: impl Future<Output = ()> + 'static) -> (Abortable, AbortHandle) {
    let slot = Rc::new(Slot {
        future: RefCell::new(Some(Box::pin(future))),
        aborted: Cell::new(false),
        waker: RefCell::new(None),
    });
    (Abortable { slot: slot.clone() }, AbortHandle { slot })
}

impl Future for Abortable {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let slot = &self.slot;
        if slot.aborted.get() {
            // The handle may have found the future busy (being polled) and left it to us.
            drop(slot.future.borrow_mut().take());
            return Poll::Ready(());
        }
        *slot.waker.borrow_mut() = Some(cx.waker().clone());
        let mut future = slot.future.borrow_mut();
        let Some(inner) = future.as_mut() else { return Poll::Ready(()) };
        let done = inner.as_mut().poll(cx).is_ready();
        if done || slot.aborted.get() {
            let finished = future.take();
            drop(future);
            drop(finished);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl AbortHandle {
    /// Drops the inner future now (or, if it is being polled at this moment, as soon as that
    /// poll returns) and wakes the task so that it finishes.
    pub(crate) fn abort(&self) {
        self.slot.aborted.set(true);
        let future = self.slot.future.try_borrow_mut().ok().and_then(|mut f| f.take());
        // Dropped outside the borrow: the future's destructors may run arbitrary code.
        drop(future);
        if let Some(waker) = self.slot.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// One request in flight: a unique id (so a finishing task removes only its own entry) and
/// the handle that cancels it.
struct Pending {
    id: u64,
    abort: AbortHandle,
}

/// The requests of a connection that are running as tasks, by tag.
#[derive(Default)]
pub(crate) struct InFlight {
    by_tag: BTreeMap<u16, Pending>,
    next_id: u64,
}

impl InFlight {
    /// Whether a request with `tag` is in flight.
    pub(crate) fn contains(&self, tag: u16) -> bool {
        self.by_tag.contains_key(&tag)
    }

    /// How many requests are in flight.
    pub(crate) fn len(&self) -> usize {
        self.by_tag.len()
    }

    /// A fresh id for the next request to [`insert`](Self::insert).
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Records `tag` as in flight under `id` (from [`next_id`](Self::next_id)), cancellable
    /// through `abort`. The caller checked that `tag` is not in flight.
    pub(crate) fn insert(&mut self, tag: u16, id: u64, abort: AbortHandle) {
        self.by_tag.insert(tag, Pending { id, abort });
    }

    /// The request `tag` with `id` is finishing: forgets it. Returns whether it was still
    /// recorded (it is not when it was cancelled meanwhile).
    pub(crate) fn finish(&mut self, tag: u16, id: u64) -> bool {
        match self.by_tag.get(&tag) {
            Some(p) if p.id == id => {
                self.by_tag.remove(&tag);
                true
            }
            _ => false,
        }
    }

    /// Removes `tag` and returns its cancel handle, if it is in flight.
    pub(crate) fn take(&mut self, tag: u16) -> Option<AbortHandle> {
        self.by_tag.remove(&tag).map(|p| p.abort)
    }

    /// Removes every request and returns their cancel handles.
    pub(crate) fn take_all(&mut self) -> alloc::vec::Vec<AbortHandle> {
        core::mem::take(&mut self.by_tag).into_values().map(|p| p.abort).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Waker;

    struct DropFlag(Rc<Cell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn abort_drops_a_pending_future_and_lets_the_wrapper_finish() {
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(dropped.clone());
        let (mut task, handle) = abortable(async move {
            let _flag = flag;
            core::future::pending::<()>().await;
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert!(!dropped.get());
        handle.abort();
        assert!(dropped.get(), "the inner future is dropped by abort itself");
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
    }

    #[test]
    fn a_finished_future_is_released_and_abort_after_is_harmless() {
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let (mut task, handle) = abortable(async move { r.set(r.get() + 1) });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
        handle.abort();
        assert_eq!(ran.get(), 1);
    }

    #[test]
    fn in_flight_finish_only_removes_its_own_entry() {
        let mut table = InFlight::default();
        let (_t1, h1) = abortable(async {});
        let id1 = table.next_id();
        table.insert(7, id1, h1);
        assert!(table.contains(7));
        // Cancelled and the tag reused by a later request: the old task must not remove it.
        drop(table.take(7));
        let (_t2, h2) = abortable(async {});
        let id2 = table.next_id();
        table.insert(7, id2, h2);
        assert!(!table.finish(7, id1));
        assert!(table.contains(7));
        assert!(table.finish(7, id2));
        assert_eq!(table.len(), 0);
    }
}
