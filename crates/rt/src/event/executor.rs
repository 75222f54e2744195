//! Tasks: futures polled as synthetic events on the core that spawned them.
//!
//! A task's future stays in its core's [`TaskTable`] and is polled only there, so it need not be
//! `Send`. Its waker is an `Arc<TaskHandle>` that holds only the task's id and core: woken on its
//! own core it goes straight onto the ready queue; woken from another core it travels through
//! that core's mailbox. A `queued` flag keeps a task from being queued twice between polls.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use super::{EventManager, Remote, Runtime};
use crate::percore::CoreId;
use crate::slab::{Slab, SlotId};

/// The id of a task in its core's table.
pub(crate) type TaskId = SlotId;

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What a waker refers to: enough to find the task, never the future itself.
pub(crate) struct TaskHandle {
    core: CoreId,
    id: TaskId,
    queued: AtomicBool,
    runtime: &'static Runtime,
}

impl TaskHandle {
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }
}

impl Wake for TaskHandle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        match EventManager::try_current() {
            Some(em) if em.core == self.core && core::ptr::eq(em.runtime, self.runtime) => {
                em.push_local_wake(self.id)
            }
            _ => self.runtime.send(self.core, Remote::Wake(self.clone())),
        }
    }
}

pub(crate) struct Task {
    future: Option<LocalFuture>,
    handle: Arc<TaskHandle>,
}

/// A core's tasks.
pub(crate) type TaskTable = Slab<Task>;

/// Stores `future` as a new task of `core` and returns its id (queued: the caller enqueues it).
pub(crate) fn insert_task(
    table: &RefCell<TaskTable>,
    core: CoreId,
    runtime: &'static Runtime,
    future: LocalFuture,
) -> TaskId {
    table.borrow_mut().insert_with(|id| Task {
        future: Some(future),
        handle: Arc::new(TaskHandle { core, id, queued: AtomicBool::new(true), runtime }),
    })
}

/// Polls task `id` once, if it still exists; removes it when it completes.
pub(crate) fn poll_task(table: &RefCell<TaskTable>, id: TaskId) {
    let (mut future, handle) = {
        let mut tasks = table.borrow_mut();
        let Some(task) = tasks.get_mut(id) else { return };
        let Some(future) = task.future.take() else { return };
        (future, task.handle.clone())
    };
    handle.queued.store(false, Ordering::Release);
    let waker = Waker::from(handle);
    let mut cx = Context::from_waker(&waker);
    // No borrow of the table is held while user code runs: it may spawn tasks.
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(()) => {
            drop(future);
            let removed = table.borrow_mut().remove(id);
            drop(removed);
        }
        Poll::Pending => {
            if let Some(task) = table.borrow_mut().get_mut(id) {
                task.future = Some(future);
            }
        }
    }
}

struct JoinState<T> {
    output: Option<T>,
    finished: bool,
    waiter: Option<Waker>,
}

/// The output of a task spawned with [`spawn_local`](super::spawn_local): await it, or poll it
/// with [`try_take`](Self::try_take). Dropping it detaches the task, which runs on.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }

    /// The task's output, if it has finished and the output was not taken yet.
    pub fn try_take(&self) -> Option<T> {
        self.state.borrow_mut().output.take()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match state.output.take() {
            Some(v) => Poll::Ready(v),
            None => {
                assert!(!state.finished, "JoinHandle polled after its output was taken");
                state.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Wraps `future` so that its output lands in a [`JoinHandle`].
pub(crate) fn wrap<F: Future + 'static>(future: F) -> (LocalFuture, JoinHandle<F::Output>) {
    let state = Rc::new(RefCell::new(JoinState { output: None, finished: false, waiter: None }));
    let theirs = state.clone();
    let task = async move {
        let output = future.await;
        let waiter = {
            let mut s = theirs.borrow_mut();
            s.output = Some(output);
            s.finished = true;
            s.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    };
    (Box::pin(task), JoinHandle { state })
}
