//! How 9P messages move: the [`Transport`] interface that the server framework and the client
//! are written against.
//!
//! A transport carries whole messages, each beginning with its `size[4]` field. The byte-stream
//! transports (TCP, Unix sockets) frame the stream; the shared-memory ring transport of PROSE
//! (papers/003, "shared memory channels") hands over message slots and passes a large payload
//! by reference into a shared region. Both appear the same here, so the layers above never know
//! which one they are on.

use core::task::{Context, Poll};

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

/// Why a transport stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The peer closed the connection in the middle of a message.
    Truncated,
    /// A message's size field is below the 7-byte header or above the negotiated `msize`.
    BadSize(u32),
    /// The underlying channel failed, with the OS errno where there is one.
    Io(i32),
    /// The transport was closed on this side.
    Closed,
}

/// A connection that carries whole 9P messages, both ways.
///
/// Futures run on the connection's core; `recv` is called by one task at a time, `send` by any
/// task of the connection (messages leave in the order `send` was called).
#[allow(async_fn_in_trait)]
pub trait Transport: 'static {
    /// The next whole message (size field included), or `None` when the peer closed the
    /// connection between messages. The buffer may be a slice of a larger receive buffer or
    /// of a shared region: the payload of a `Twrite` is handed on without a copy.
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError>;

    /// Takes the next message without a task waiting in [`recv`](Self::recv), for a caller that
    /// waits on what a message may bring (the client's request futures, which then need no
    /// receiver task between the transport and themselves).
    ///
    /// `Some(Poll::Ready(r))`: `r` is what `recv` would have returned now. `Some(Poll::Pending)`:
    /// nothing is here yet, and the waker of `cx` is woken when something may be; only the waker
    /// of the latest call is kept (a later call, from any task, replaces it). `None`, the
    /// default: this transport cannot do this, and only `recv` receives. It is not mixed with a
    /// `recv` in progress: a connection uses one or the other.
    fn poll_recv(
        &self,
        _cx: &mut Context<'_>,
    ) -> Option<Poll<Result<Option<SharedIoBuf>, TransportError>>> {
        None
    }

    /// Queues one whole message, given as a chain so a header can precede a payload without
    /// a copy. Returns once the message is queued; it leaves in call order.
    fn send(&self, message: IoBufChain) -> Result<(), TransportError>;

    /// Sets the largest message either side may send (after `Tversion`/`Rversion`).
    fn set_msize(&self, msize: u32);

    /// Closes the connection: pending and later `recv`s end, queued messages are still sent.
    fn close(&self);
}
