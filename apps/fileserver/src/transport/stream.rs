//! 9P over a byte stream (TCP or a Unix socket): the [`Framer`] on the receive side, a queue
//! drained by a writer task on the send side.
//!
//! [`Transport::send`] never waits: messages go into the connection's queue and a writer task
//! of the connection's core sends whatever has queued up with one gathering `sendmsg`, so a
//! burst of replies costs one system call and messages leave in the order they were queued
//! (the ordering [`Transport`] promises). Receives hand out whole messages as the framer cuts
//! them, zero-copy when a message lies in one receive buffer.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use cairn_9p::transport::{Transport, TransportError};
use cairn_hosted::net::unix::UnixStream;
use cairn_hosted::net::TcpStream;
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

use super::framer::Framer;

/// A connected byte stream of this core that a [`StreamTransport`] runs over.
#[allow(async_fn_in_trait)]
pub trait ByteStream: 'static {
    /// The next bytes received, or `None` once the peer has closed its side.
    async fn recv_bytes(&self) -> io::Result<Option<IoBuf>>;
    /// Sends every byte of `chain`.
    async fn send_chain(&self, chain: IoBufChain) -> io::Result<()>;
    /// Shuts down the sending side after what was sent.
    fn shutdown_send(&self) -> io::Result<()>;
}

impl ByteStream for TcpStream {
    async fn recv_bytes(&self) -> io::Result<Option<IoBuf>> {
        self.recv().await
    }

    async fn send_chain(&self, chain: IoBufChain) -> io::Result<()> {
        self.send(chain).await
    }

    fn shutdown_send(&self) -> io::Result<()> {
        self.shutdown_write()
    }
}

impl ByteStream for UnixStream {
    async fn recv_bytes(&self) -> io::Result<Option<IoBuf>> {
        self.recv().await
    }

    async fn send_chain(&self, chain: IoBufChain) -> io::Result<()> {
        self.send(chain).await
    }

    fn shutdown_send(&self) -> io::Result<()> {
        self.shutdown_write()
    }
}

/// The state a transport shares with its writer task.
struct Shared<S> {
    stream: S,
    framer: RefCell<Framer>,
    queue: RefCell<VecDeque<IoBufChain>>,
    writer: RefCell<Option<Waker>>,
    receiver: RefCell<Option<Waker>>,
    /// Closed on this side: no more sends, receives end.
    closed: Cell<bool>,
    /// The first failure of either direction; later calls report it.
    failed: Cell<Option<TransportError>>,
}

impl<S> Shared<S> {
    fn wake_writer(&self) {
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    fn wake_receiver(&self) {
        if let Some(w) = self.receiver.borrow_mut().take() {
            w.wake();
        }
    }
}

fn io_error(e: &io::Error) -> TransportError {
    TransportError::Io(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A 9P [`Transport`] over a byte stream of this core.
///
/// Made on the core that will use it (it spawns its writer task there). Dropping the last
/// handle closes it as [`Transport::close`] does.
pub struct StreamTransport<S: ByteStream> {
    shared: Rc<Shared<S>>,
}

impl<S: ByteStream> StreamTransport<S> {
    /// Runs 9P over `stream`, accepting messages of up to `msize` bytes until
    /// [`Transport::set_msize`] lowers it. Spawns the writer task on the calling core.
    pub fn new(stream: S, msize: u32) -> StreamTransport<S> {
        let shared = Rc::new(Shared {
            stream,
            framer: RefCell::new(Framer::new(msize)),
            queue: RefCell::new(VecDeque::new()),
            writer: RefCell::new(None),
            receiver: RefCell::new(None),
            closed: Cell::new(false),
            failed: Cell::new(None),
        });
        spawn_local(write_queue(shared.clone()));
        StreamTransport { shared }
    }

    /// The stream below.
    pub fn stream(&self) -> &S {
        &self.shared.stream
    }

    /// Messages queued and not yet handed to the kernel.
    pub fn queued(&self) -> usize {
        self.shared.queue.borrow().len()
    }
}

/// The writer task: sends everything queued, in order, until the transport is closed and its
/// queue is empty, or a send fails.
async fn write_queue<S: ByteStream>(shared: Rc<Shared<S>>) {
    loop {
        let batch = poll_fn(|cx| {
            let mut queue = shared.queue.borrow_mut();
            if !queue.is_empty() {
                let mut batch = IoBufChain::new();
                for chain in queue.drain(..) {
                    batch.append(chain);
                }
                return Poll::Ready(Some(batch));
            }
            if shared.closed.get() || shared.failed.get().is_some() {
                return Poll::Ready(None);
            }
            *shared.writer.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let Some(batch) = batch else { break };
        if let Err(e) = shared.stream.send_chain(batch).await {
            if shared.failed.get().is_none() {
                shared.failed.set(Some(io_error(&e)));
            }
            shared.queue.borrow_mut().clear();
            shared.wake_receiver();
            return;
        }
    }
    if shared.failed.get().is_none() {
        let _ = shared.stream.shutdown_send();
    }
}

impl<S: ByteStream> Transport for StreamTransport<S> {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        let shared = &self.shared;
        loop {
            if shared.closed.get() {
                return Err(TransportError::Closed);
            }
            if let Some(e) = shared.failed.get() {
                return Err(e);
            }
            match shared.framer.borrow_mut().next_message() {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(e) => {
                    shared.failed.set(Some(e));
                    return Err(e);
                }
            }
            // Wait for bytes, or for `close` (which drops the pending receive).
            let received = {
                let mut bytes = pin!(shared.stream.recv_bytes());
                poll_fn(|cx| {
                    if shared.closed.get() || shared.failed.get().is_some() {
                        return Poll::Ready(None);
                    }
                    *shared.receiver.borrow_mut() = Some(cx.waker().clone());
                    bytes.as_mut().poll(cx).map(Some)
                })
                .await
            };
            match received {
                None => continue,
                Some(Ok(Some(buf))) => shared.framer.borrow_mut().push(buf.freeze()),
                Some(Ok(None)) => {
                    return if shared.framer.borrow().buffered() == 0 {
                        Ok(None)
                    } else {
                        Err(TransportError::Truncated)
                    };
                }
                Some(Err(e)) => {
                    let e = io_error(&e);
                    shared.failed.set(Some(e));
                    return Err(e);
                }
            }
        }
    }

    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        let shared = &self.shared;
        if let Some(e) = shared.failed.get() {
            return Err(e);
        }
        if shared.closed.get() {
            return Err(TransportError::Closed);
        }
        shared.queue.borrow_mut().push_back(message);
        shared.wake_writer();
        Ok(())
    }

    fn set_msize(&self, msize: u32) {
        self.shared.framer.borrow_mut().set_msize(msize);
    }

    fn close(&self) {
        let shared = &self.shared;
        if !shared.closed.replace(true) {
            shared.wake_writer();
            shared.wake_receiver();
        }
    }
}

impl<S: ByteStream> Drop for StreamTransport<S> {
    fn drop(&mut self) {
        self.close();
    }
}
