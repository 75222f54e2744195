//! A future that completes after a delay, on the calling core's timer wheel.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::timer::TimerKey;
use super::EventManager;

/// Completes once the core's clock reaches its deadline. Dropping it cancels its timer.
pub struct Sleep {
    deadline_ns: u64,
    armed: Option<(TimerKey, Waker)>,
}

/// Sleeps for `ns` nanoseconds of the platform's monotonic clock.
///
/// # Panics
///
/// When polled off a started cairn core.
pub fn sleep_ns(ns: u64) -> Sleep {
    let now = EventManager::current().now_ns();
    Sleep { deadline_ns: now.saturating_add(ns), armed: None }
}

impl Sleep {
    /// The deadline, in the platform's monotonic nanoseconds.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let em = EventManager::current();
        if em.now_ns() >= self.deadline_ns {
            if let Some((key, _)) = self.armed.take() {
                em.cancel_timer_key(key);
            }
            return Poll::Ready(());
        }
        let rearm = match &self.armed {
            Some((_, waker)) => !waker.will_wake(cx.waker()),
            None => true,
        };
        if rearm {
            if let Some((key, _)) = self.armed.take() {
                em.cancel_timer_key(key);
            }
            let key = em.insert_waker_timer(self.deadline_ns, cx.waker().clone());
            self.armed = Some((key, cx.waker().clone()));
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((key, _)) = self.armed.take() {
            if let Some(em) = EventManager::try_current() {
                em.cancel_timer_key(key);
            }
        }
    }
}
