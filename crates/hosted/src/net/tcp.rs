//! TCP on the core's io_uring: listeners with multishot accept, streams that receive into fresh
//! IOBufs and send IOBuf chains through a gather list.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::Poll;

use cairn_rt::iobuf::{IoBuf, IoBufChain, Segment};
use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::socket::{self, ListenSocket};
use super::stream::StreamSocket;
use crate::reactor::{MultiOp, Op};

/// The listen backlog of sockets made by [`TcpListener::bind`].
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket of this core. One multishot accept stays posted while the listener is
/// used, so a burst of connections costs one submission.
pub struct TcpListener {
    // Declared before `fd` so the accept is cancelled before the socket closes.
    accepts: RefCell<Option<MultiOp<()>>>,
    fd: OwnedFd,
}

impl TcpListener {
    /// Binds a listening socket on `addr` for the calling core.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener::from_socket(ListenSocket::bind(addr, LISTEN_BACKLOG)?))
    }

    /// Binds `cores` listening sockets on the same address with `SO_REUSEPORT`, one for each
    /// core to take with [`from_socket`](Self::from_socket). When `addr` has port 0, the first
    /// socket's port is used for all.
    pub fn bind_per_core(addr: SocketAddr, cores: usize) -> io::Result<Vec<ListenSocket>> {
        let first = ListenSocket::bind(addr, LISTEN_BACKLOG)?;
        let addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..cores {
            sockets.push(ListenSocket::bind(addr, LISTEN_BACKLOG)?);
        }
        Ok(sockets)
    }

    /// Takes a bound socket as the calling core's listener.
    pub fn from_socket(socket: ListenSocket) -> TcpListener {
        TcpListener { accepts: RefCell::new(None), fd: socket.fd }
    }

    /// The address this listener accepts on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(&self.fd)
    }

    /// Waits for the next connection. It stays on this core.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        poll_fn(|cx| loop {
            let mut accepts = self.accepts.borrow_mut();
            let op = match &mut *accepts {
                Some(op) if op.is_active() => op,
                _ => {
                    let entry = opcode::AcceptMulti::new(types::Fd(self.fd.as_raw_fd()))
                        .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                        .build();
                    // SAFETY: multishot accept points to no memory (the listener's fd outlives
                    // the op: the op is dropped, and cancelled, before the fd closes).
                    accepts.insert(unsafe { MultiOp::start(entry, ()) })
                }
            };
            match op.poll_next(cx) {
                Poll::Ready(Some(c)) => {
                    return Poll::Ready(c.into_result().map(|fd| TcpStream {
                        // SAFETY: a successful accept completion is a new descriptor we own.
                        inner: StreamSocket::new(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
                    }));
                }
                // The multishot ended (e.g. after an error); post a new one.
                Poll::Ready(None) => continue,
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    }
}

/// A TCP connection of this core.
///
/// Receiving keeps one multishot receive posted on the socket: the kernel fills buffers of the
/// core's provided-buffer ring as data arrives, and [`recv`](Self::recv) hands them out as
/// IOBufs without a copy. When the ring has no free buffer (the application holds them all), a
/// receive falls back to a single-shot receive into a fresh buffer.
pub struct TcpStream {
    inner: StreamSocket,
}

impl TcpStream {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = socket::new_socket(&addr, libc::SOCK_STREAM)?;
        let raw = Box::new(RawAddr::from_socket_addr(&addr));
        let entry = opcode::Connect::new(types::Fd(fd.as_raw_fd()), raw.as_ptr(), raw.len).build();
        // SAFETY: the address lives in the boxed `raw`, which the op keeps.
        let (c, _raw) = unsafe { Op::start(entry, raw) }.await;
        c.into_result()?;
        Ok(TcpStream { inner: StreamSocket::new(fd) })
    }

    /// Disables (true) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        socket::set_int_option(
            self.inner.fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            nodelay as i32,
        )
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(self.inner.fd())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.inner.fd())
    }

    /// Receives what has arrived: a buffer of the core's provided-buffer ring, or a fresh one
    /// (with [`RECV_HEADROOM`](super::RECV_HEADROOM) bytes of headroom) when the ring is empty.
    /// `None` once the peer has closed its side.
    pub async fn recv(&self) -> io::Result<Option<IoBuf>> {
        self.inner.recv().await
    }

    /// Receives into the tailroom of `buf`, which must have some, and returns it with the new
    /// bytes appended to its view. An unchanged length means the peer closed its side.
    pub async fn recv_into(&self, buf: IoBuf) -> io::Result<IoBuf> {
        self.inner.recv_into(buf).await
    }

    /// Sends every byte of `chain` (unique or shared buffers), reading the buffers in place
    /// through a gather list.
    pub async fn send<B: Segment + 'static>(&self, chain: IoBufChain<B>) -> io::Result<()> {
        self.inner.send(chain).await
    }

    /// Sends one buffer with a plain `send`, reading it in place: no gather list or message
    /// header to build, so a reply costs no allocation beyond its own buffer.
    pub async fn send_buf(&self, buf: IoBuf) -> io::Result<()> {
        self.inner.send_buf(buf).await
    }

    /// Shuts down the sending side: the peer reads end-of-stream after the data sent so far.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.inner.shutdown_write()
    }
}
