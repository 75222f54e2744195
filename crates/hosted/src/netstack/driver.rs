//! The driver task: polls the device and the interface while there is work, and otherwise
//! sleeps until a frame arrives, a timer is due, or a socket call kicks it.
//!
//! The choice between polling on and sleeping is the runtime's [`AdaptivePoller`] (EbbRT,
//! OSDI 2016 §3.3: poll while the event rate is high, take interrupts when it is low): while it
//! is in polling mode, the task yields to the event loop and polls again until no event has
//! come for `idle_spin_ns`; in blocking mode it sleeps as soon as a round finds nothing. The
//! sleep is an io_uring poll on the device's descriptor joined with the next deadline, so an
//! idle stack costs nothing.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use cairn_rt::event::polling::AdaptivePoller;
use cairn_rt::event::{sleep_ns, yield_now};

use super::{now_ns, Inner};
use crate::netdev::readable;

type Readable = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// Runs the stack until [`NetStack::stop`](super::NetStack::stop).
pub(super) async fn drive(inner: Rc<RefCell<Inner>>) {
    let (fd, polling) = {
        let inner = inner.borrow();
        (inner.fd, inner.polling)
    };
    let mut poller = AdaptivePoller::new(polling);
    // The poll on the descriptor stays armed across sleeps until it completes.
    let mut armed: Option<Readable> = None;
    loop {
        let now = now_ns();
        let (work, deadline, stopped) = {
            let mut inner = inner.borrow_mut();
            let work = inner.poll_once(now);
            (work, inner.next_deadline(), inner.stopped)
        };
        if stopped {
            return;
        }
        poller.record(now, usize::from(work));
        if work || deadline.is_some_and(|d| d <= now) || !poller.should_block(now) {
            yield_now().await;
            continue;
        }
        let readable_fd = armed.get_or_insert_with(|| Box::pin(readable(fd)));
        let mut timer = deadline.map(|d| Box::pin(sleep_ns(d.saturating_sub(now))));
        let device_ready = poll_fn(|cx| {
            let mut state = inner.borrow_mut();
            if state.kicked || state.stopped {
                return Poll::Ready(false);
            }
            if readable_fd.as_mut().poll(cx).is_ready() {
                // Readable, or the poll failed: either way it is spent and is armed anew.
                return Poll::Ready(true);
            }
            if let Some(timer) = &mut timer {
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
            }
            state.driver = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        inner.borrow_mut().driver = None;
        if device_ready {
            armed = None;
        }
    }
}
