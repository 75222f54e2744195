//! What the transport tests share: running a future on a fresh hosted core.

use std::future::Future;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use cairn_rt::event::{spawn_local, EventManager};

/// Runs `make()`'s future on a fresh one-core hosted runtime (its own thread, io_uring and
/// event loop) and returns its output, or panics after `limit`.
#[allow(dead_code)]
pub fn on_core_within<F, Fut, T>(limit: Duration, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let make = Mutex::new(Some(make));
    let rt = cairn_hosted::start(1, move |_| {
        let make = make.lock().unwrap().take().unwrap();
        let tx = tx.clone();
        spawn_local(async move {
            let mut future = std::pin::pin!(make());
            // A panic in the test's future ends the test at once instead of at the time limit.
            let out = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    future.as_mut().poll(cx)
                })) {
                    Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                    Ok(std::task::Poll::Ready(out)) => std::task::Poll::Ready(Ok(out)),
                    Err(panic) => std::task::Poll::Ready(Err(panic)),
                }
            })
            .await;
            let _ = tx.send(out);
            EventManager::current().runtime().shutdown();
        });
    })
    .unwrap();
    let out = match rx.recv_timeout(limit) {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => {
            let _ = rt.join();
            std::panic::resume_unwind(panic);
        }
        Err(_) => {
            rt.shutdown();
            let _ = rt.join();
            panic!("the test's task did not finish within {limit:?}");
        }
    };
    rt.join().unwrap();
    out
}

/// [`on_core_within`] with a limit of two minutes.
#[allow(dead_code)]
pub fn on_core<F, Fut, T>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    on_core_within(Duration::from_secs(120), make)
}
