//! An ordered send queue drained by a task of its own, so a flushed write is never half sent.
//!
//! A `Twrite` to a byte stream (a TCP connection's `data`, the console) is copied into a buffer
//! (the request's bytes live only as long as the request) and queued; the queue's task sends the
//! buffers in order, each to the end. The request waits for its own buffer to be sent and then
//! answers. If the request is flushed meanwhile, its bytes still go out whole and in order:
//! either all of a write reaches the stream or, if the stream fails or is hung up, the write
//! and those queued after it are dropped whole (see [`crate::synthetic::wait`] for why nothing
//! is awaited inside a request itself).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::task::Poll;

use cairn_9p::errno::{Errno, EPIPE};
use cairn_hosted::net::TcpStream;
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::IoBuf;

use super::fdio;
use super::text::errno_of;
use super::wait::{Cancel, Waiters};

/// Where a [`Writer`]'s bytes go.
pub(crate) enum Sink {
    /// A TCP connection.
    Tcp(Rc<TcpStream>),
    /// A file descriptor (the console's output).
    Fd(Rc<OwnedFd>),
}

impl Sink {
    async fn send(&self, buf: IoBuf) -> io::Result<()> {
        match self {
            Sink::Tcp(stream) => stream.send_buf(buf).await,
            Sink::Fd(fd) => fdio::write_all(fd.clone(), buf).await,
        }
    }
}

/// What a writer shares with its task and its waiting requests.
pub(crate) struct WriterShared {
    sink: Sink,
    queue: RefCell<VecDeque<IoBuf>>,
    /// Sequence number of the last buffer queued.
    queued: Cell<u64>,
    /// Sequence number of the last buffer sent to the end.
    sent: Cell<u64>,
    /// The error that stopped the queue, for every write not yet sent.
    failed: Cell<Option<Errno>>,
    running: Cell<bool>,
    cancel: Cancel,
    waiters: Waiters,
}

/// An ordered send queue over one [`Sink`]. Dropping it cancels what is still queued.
pub(crate) struct Writer {
    shared: Rc<WriterShared>,
}

impl Writer {
    /// A queue in front of `sink`.
    pub(crate) fn new(sink: Sink) -> Writer {
        Writer {
            shared: Rc::new(WriterShared {
                sink,
                queue: RefCell::new(VecDeque::new()),
                queued: Cell::new(0),
                sent: Cell::new(0),
                failed: Cell::new(None),
                running: Cell::new(false),
                cancel: Cancel::default(),
                waiters: Waiters::default(),
            }),
        }
    }

    /// A handle for requests, valid after the writer is dropped (writes then fail with `EPIPE`).
    pub(crate) fn handle(&self) -> Rc<WriterShared> {
        self.shared.clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        self.shared.queue.borrow_mut().clear();
        self.shared.waiters.wake_all();
    }
}

impl WriterShared {
    /// Queues `buf` and waits until it is sent. Once queued, a buffer is sent whole even if
    /// this future is dropped.
    pub(crate) async fn write(self: &Rc<Self>, buf: IoBuf) -> Result<(), Errno> {
        if let Some(e) = self.failed.get() {
            return Err(e);
        }
        if self.cancel.is_cancelled() {
            return Err(EPIPE);
        }
        let seq = self.queued.get() + 1;
        self.queued.set(seq);
        self.queue.borrow_mut().push_back(buf);
        if !self.running.get() {
            self.running.set(true);
            spawn_local(drain(self.clone()));
        }
        poll_fn(|cx| {
            if self.sent.get() >= seq {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = self.failed.get() {
                return Poll::Ready(Err(e));
            }
            if self.cancel.is_cancelled() {
                return Poll::Ready(Err(EPIPE));
            }
            self.waiters.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// The writer's task: sends queued buffers in order until the queue is empty.
async fn drain(shared: Rc<WriterShared>) {
    loop {
        let Some(buf) = shared.queue.borrow_mut().pop_front() else { break };
        match shared.cancel.run(shared.sink.send(buf)).await {
            None => break,
            Some(Ok(())) => shared.sent.set(shared.sent.get() + 1),
            Some(Err(e)) => {
                shared.failed.set(Some(errno_of(&e)));
                shared.queue.borrow_mut().clear();
                break;
            }
        }
        shared.waiters.wake_all();
    }
    shared.running.set(false);
    shared.waiters.wake_all();
}
