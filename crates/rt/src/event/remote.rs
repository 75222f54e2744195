//! Calling a closure on another core and awaiting its result: EbbRT's pattern of sending work to
//! the core that owns the data (a table shard, a connection) instead of locking it.

use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::percore::CoreId;

struct Slot<R> {
    value: Option<R>,
    waker: Option<Waker>,
}

/// The result of [`run_on`]: resolves once the closure has run on its core.
pub struct RemoteResult<R> {
    slot: Arc<spin::Mutex<Slot<R>>>,
}

impl<R> Future for RemoteResult<R> {
    type Output = R;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let mut slot = self.slot.lock();
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `f` on `core` as a synthetic event there (through [`super::spawn_on`]) and resolves to
/// its result on the calling core. When `core` is the calling core, `f` still runs as a later
/// event, never inline, so the caller's borrows are over by then.
///
/// # Panics
///
/// Off a started cairn core.
pub fn run_on<R, F>(core: CoreId, f: F) -> RemoteResult<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let slot = Arc::new(spin::Mutex::new(Slot { value: None, waker: None }));
    let theirs = slot.clone();
    super::spawn_on(core, move || {
        let value = f();
        let waker = {
            let mut s = theirs.lock();
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    RemoteResult { slot }
}
