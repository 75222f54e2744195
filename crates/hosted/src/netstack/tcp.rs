//! TCP sockets over a [`NetStack`](super::NetStack): a listener that accepts and a stream that
//! receives the buffers as they arrived and sends chains by reference (EbbRT, OSDI 2016 §3.4).

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use cairn_net::tcp::{CloseReason, ConnId, ConnInfo, ListenerId, TcpError, TcpState};
use cairn_net::wire::Ipv4Address;
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::Inner;

/// A listening TCP port. Dropping it stops listening and resets connections not yet accepted.
pub struct NetListener {
    inner: Rc<RefCell<Inner>>,
    id: ListenerId,
    port: u16,
}

impl NetListener {
    pub(super) fn new(inner: Rc<RefCell<Inner>>, id: ListenerId, port: u16) -> NetListener {
        NetListener { inner, id, port }
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the next established connection.
    pub async fn accept(&self) -> Result<NetTcpStream, TcpError> {
        let conn = poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match inner.iface.tcp().accept(self.id) {
                Some(conn) => Poll::Ready(conn),
                None => {
                    inner.acceptors.insert(self.id, cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        Ok(NetTcpStream::new(self.inner.clone(), conn))
    }
}

impl Drop for NetListener {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.acceptors.remove(&self.id);
        let _ = inner.iface.tcp().unlisten(self.id);
        inner.kick();
    }
}

/// One TCP connection. Dropping it closes it (as [`NetTcpStream::close`]).
pub struct NetTcpStream {
    inner: Rc<RefCell<Inner>>,
    conn: ConnId,
    released: bool,
}

/// Whether the peer's FIN has been received in `state` (RFC 9293 §3.3.2).
fn fin_received(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::CloseWait
            | TcpState::Closing
            | TcpState::LastAck
            | TcpState::TimeWait
            | TcpState::Closed
    )
}

impl NetTcpStream {
    pub(super) fn new(inner: Rc<RefCell<Inner>>, conn: ConnId) -> NetTcpStream {
        NetTcpStream { inner, conn, released: false }
    }

    /// The stack's handle of this connection.
    pub fn id(&self) -> ConnId {
        self.conn
    }

    /// Waits until the handshake completes (an active open) or fails.
    pub(super) async fn established(&self) -> Result<(), TcpError> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let tcp = inner.iface.tcp();
            if let Some(reason) = tcp.close_reason(self.conn) {
                return Poll::Ready(Err(TcpError::Closed(reason)));
            }
            match tcp.state(self.conn) {
                None => Poll::Ready(Err(TcpError::UnknownHandle)),
                Some(state) if state.is_synchronized() => Poll::Ready(Ok(())),
                Some(_) => {
                    inner.readers.insert(self.conn, cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The next buffer of received data, as it arrived; `Ok(None)` once the peer has closed
    /// its side and everything was read; `Err(Closed(reason))` if the connection was reset or
    /// timed out.
    pub async fn recv(&self) -> Result<Option<SharedIoBuf>, TcpError> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let tcp = inner.iface.tcp();
            if let Some(buf) = tcp.recv(self.conn) {
                // Reading opened the window: the driver sends the update if it matters.
                inner.kick();
                return Poll::Ready(Ok(Some(buf)));
            }
            match tcp.close_reason(self.conn) {
                Some(CloseReason::Normal) => return Poll::Ready(Ok(None)),
                Some(reason) => return Poll::Ready(Err(TcpError::Closed(reason))),
                None => {}
            }
            match tcp.state(self.conn) {
                None => Poll::Ready(Err(TcpError::UnknownHandle)),
                Some(state) if fin_received(state) => Poll::Ready(Ok(None)),
                Some(_) => {
                    inner.readers.insert(self.conn, cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Queues `data` to send, by reference, once the connection's unacknowledged queue is below
    /// the stack's send buffer; so a sender is paced by the peer's window and ACKs.
    pub async fn send(&self, data: impl Into<IoBufChain>) -> Result<(), TcpError> {
        let mut data = Some(data.into());
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let limit = inner.send_buffer;
            let tcp = inner.iface.tcp();
            if let Some(reason) = tcp.close_reason(self.conn) {
                return Poll::Ready(Err(TcpError::Closed(reason)));
            }
            if tcp.state(self.conn).is_none() {
                return Poll::Ready(Err(TcpError::UnknownHandle));
            }
            if tcp.send_queue_len(self.conn) < limit {
                let result = tcp.send(self.conn, data.take().expect("sent once"));
                inner.kick();
                return Poll::Ready(result);
            }
            inner.writers.push((self.conn, limit, cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    /// Waits until everything sent has been acknowledged (or the connection ended).
    pub async fn flushed(&self) -> Result<(), TcpError> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let tcp = inner.iface.tcp();
            if let Some(reason) = tcp.close_reason(self.conn) {
                let result = match reason {
                    CloseReason::Normal => Ok(()),
                    reason => Err(TcpError::Closed(reason)),
                };
                return Poll::Ready(result);
            }
            if tcp.state(self.conn).is_none() || tcp.send_queue_len(self.conn) == 0 {
                return Poll::Ready(Ok(()));
            }
            inner.writers.push((self.conn, 1, cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    /// Half-close: a FIN follows the queued data; receiving goes on.
    pub fn shutdown_write(&self) -> Result<(), TcpError> {
        let mut inner = self.inner.borrow_mut();
        let result = inner.iface.tcp().shutdown_write(self.conn);
        inner.kick();
        result
    }

    /// Switches Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<(), TcpError> {
        self.inner.borrow_mut().iface.tcp().set_nodelay(self.conn, nodelay)
    }

    /// The connection's state.
    pub fn state(&self) -> Option<TcpState> {
        self.inner.borrow_mut().iface.tcp().state(self.conn)
    }

    /// A snapshot of the connection's variables.
    pub fn info(&self) -> Option<ConnInfo> {
        self.inner.borrow_mut().iface.tcp().conn_info(self.conn)
    }

    /// Our address and port.
    pub fn local_endpoint(&self) -> Option<(Ipv4Address, u16)> {
        self.inner.borrow_mut().iface.tcp().local_endpoint(self.conn)
    }

    /// The peer's address and port.
    pub fn remote_endpoint(&self) -> Option<(Ipv4Address, u16)> {
        self.inner.borrow_mut().iface.tcp().remote_endpoint(self.conn)
    }

    fn release(&mut self, abort: bool) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        inner.readers.remove(&self.conn);
        let conn = self.conn;
        inner.writers.retain(|(c, _, _)| *c != conn);
        let tcp = inner.iface.tcp();
        let _ = if abort { tcp.abort(conn) } else { tcp.close(conn) };
        inner.kick();
    }

    /// Closes the connection: a FIN follows the queued data and the stack finishes the close
    /// on its own (a RST instead if received data was left unread, RFC 2525 §2.17).
    pub fn close(mut self) {
        self.release(false);
    }

    /// Resets the connection (RFC 9293 §3.10.4 ABORT).
    pub fn abort(mut self) {
        self.release(true);
    }
}

impl Drop for NetTcpStream {
    fn drop(&mut self) {
        self.release(false);
    }
}
