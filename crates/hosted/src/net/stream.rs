//! The byte-stream half that TCP and Unix stream sockets share: a multishot receive into the
//! core's provided-buffer ring (lent out as IOBufs, no copy), a single-shot fallback into a
//! fresh buffer when the ring is empty, and sends that gather IOBuf chains in place with
//! `sendmsg` (or a plain `send` for one buffer).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::Poll;

use cairn_rt::iobuf::{IoBuf, IoBufChain, Segment};
use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::socket;
use super::{RECV_CAPACITY, RECV_HEADROOM};
use crate::bufring;
use crate::reactor::{MultiOp, Op, Reactor};

/// A connected stream socket of this core: the receive and send paths of
/// [`TcpStream`](super::TcpStream) and [`UnixStream`](super::unix::UnixStream).
pub(crate) struct StreamSocket {
    // Declared before `fd` so the receive is cancelled before the socket closes.
    receiver: RefCell<Option<MultiOp<()>>>,
    fd: OwnedFd,
}

/// What the multishot receive produced.
enum Received {
    Data(IoBuf),
    End,
    NoBuffers,
}

impl StreamSocket {
    /// Takes a connected, non-blocking stream socket.
    pub(crate) fn new(fd: OwnedFd) -> StreamSocket {
        StreamSocket { receiver: RefCell::new(None), fd }
    }

    /// The socket's descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Receives what has arrived: a buffer of the core's provided-buffer ring, or a fresh one
    /// (with [`RECV_HEADROOM`] bytes of headroom) when the ring is empty or the kernel has none.
    /// `None` once the peer has closed its side.
    pub(crate) async fn recv(&self) -> io::Result<Option<IoBuf>> {
        if Reactor::current().buf_ring().is_some() {
            match self.recv_multishot().await? {
                Received::Data(buf) => return Ok(Some(buf)),
                Received::End => return Ok(None),
                Received::NoBuffers => {}
            }
        }
        let buf = self.recv_into(IoBuf::with_headroom(RECV_HEADROOM, RECV_CAPACITY)).await?;
        Ok((!buf.is_empty()).then_some(buf))
    }

    async fn recv_multishot(&self) -> io::Result<Received> {
        let ring = Reactor::current().buf_ring().expect("checked by recv");
        poll_fn(|cx| loop {
            let mut receiver = self.receiver.borrow_mut();
            let op = match &mut *receiver {
                Some(op) if op.is_active() => op,
                _ => {
                    let entry =
                        opcode::RecvMulti::new(types::Fd(self.fd.as_raw_fd()), bufring::GROUP)
                            .build();
                    // SAFETY: the kernel writes only into ring buffers, which live for the rest of
                    // the program and are handed out only after their completion.
                    receiver.insert(unsafe { MultiOp::start(entry, ()) })
                }
            };
            let c = match op.poll_next(cx) {
                Poll::Ready(Some(c)) => c,
                // The multishot ended; post a new one.
                Poll::Ready(None) => continue,
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(match (c.result, c.buffer_id()) {
                (n, Some(bid)) if n > 0 => Ok(Received::Data(ring.lend(bid, n as usize))),
                (n, bid) if n >= 0 => {
                    if let Some(bid) = bid {
                        ring.recycle(bid);
                    }
                    Ok(Received::End)
                }
                (n, _) if -n == libc::ENOBUFS => Ok(Received::NoBuffers),
                (n, _) => Err(io::Error::from_raw_os_error(-n)),
            });
        })
        .await
    }

    /// Receives into the tailroom of `buf`, which must have some, and returns it with the new
    /// bytes appended to its view. An unchanged length means the peer closed its side.
    pub(crate) async fn recv_into(&self, mut buf: IoBuf) -> io::Result<IoBuf> {
        let tail = buf.tailroom_mut();
        let (ptr, len) = (tail.as_mut_ptr(), tail.len());
        assert!(len > 0, "recv_into needs a buffer with tailroom");
        let entry = opcode::Recv::new(types::Fd(self.fd.as_raw_fd()), ptr, len as u32).build();
        // SAFETY: the kernel writes into `buf`'s tailroom, heap memory owned by `buf`, which the
        // op keeps (moving the handle does not move the bytes).
        let (c, mut buf) = unsafe { Op::start(entry, buf) }.await;
        let n = c.into_result()? as usize;
        buf.claim_tailroom(n).expect("the kernel wrote at most the tailroom");
        Ok(buf)
    }

    /// Sends every byte of `chain` (unique or shared buffers), reading the buffers in place
    /// through a gather list.
    pub(crate) async fn send<B: Segment + 'static>(
        &self,
        mut chain: IoBufChain<B>,
    ) -> io::Result<()> {
        while !chain.is_empty() {
            let sent = self.send_some(chain).await?;
            chain = sent.1;
            chain.advance(sent.0);
        }
        Ok(())
    }

    /// Sends one buffer with a plain `send`, reading it in place: no gather list or message
    /// header to build, so a reply costs no allocation beyond its own buffer.
    pub(crate) async fn send_buf(&self, mut buf: IoBuf) -> io::Result<()> {
        while !buf.is_empty() {
            let entry =
                opcode::Send::new(types::Fd(self.fd.as_raw_fd()), buf.as_ptr(), buf.len() as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build();
            // SAFETY: the kernel reads the buffer's view, heap or ring memory owned by `buf`,
            // which the op keeps (moving the handle does not move the bytes).
            let (c, sent) = unsafe { Op::start(entry, buf) }.await;
            buf = sent;
            match c.into_result()? as usize {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf.advance(n),
            }
        }
        Ok(())
    }

    /// One `sendmsg` of the chain's segments: returns how many bytes went, and the chain.
    async fn send_some<B: Segment + 'static>(
        &self,
        chain: IoBufChain<B>,
    ) -> io::Result<(usize, IoBufChain<B>)> {
        let mut msg = Box::new(SendMessage::new(chain));
        msg.fix_pointers();
        let entry = opcode::SendMsg::new(types::Fd(self.fd.as_raw_fd()), &msg.header)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build();
        // SAFETY: the header, its gather list and the buffers it points into live in the boxed
        // message, which the op keeps until the kernel is done.
        let (c, msg) = unsafe { Op::start(entry, msg) }.await;
        let n = c.into_result()? as usize;
        Ok((n, msg.chain))
    }

    /// Shuts down the sending side: the peer reads end-of-stream after the data sent so far.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        socket::shutdown(&self.fd, libc::SHUT_WR)
    }
}

/// A `msghdr` with its gather list over a chain's segments, boxed so the kernel's pointers stay
/// valid while the message moves between futures.
pub(crate) struct SendMessage<B: Segment> {
    pub(crate) header: libc::msghdr,
    iovecs: Vec<libc::iovec>,
    pub(crate) chain: IoBufChain<B>,
    pub(crate) addr: Option<RawAddr>,
}

impl<B: Segment> SendMessage<B> {
    /// The most segments one `sendmsg` takes (the kernel's `UIO_MAXIOV`).
    const MAX_IOV: usize = 1024;

    pub(crate) fn new(chain: IoBufChain<B>) -> SendMessage<B> {
        let iovecs = chain
            .slices()
            .take(Self::MAX_IOV)
            .map(|s| libc::iovec { iov_base: s.as_ptr() as *mut libc::c_void, iov_len: s.len() })
            .collect();
        // SAFETY: msghdr is plain data for which all-zero bytes are valid.
        let header = unsafe { std::mem::zeroed() };
        SendMessage { header, iovecs, chain, addr: None }
    }

    /// Points the header at the gather list and address, where they now live.
    pub(crate) fn fix_pointers(&mut self) {
        self.header.msg_iov = self.iovecs.as_mut_ptr();
        self.header.msg_iovlen = self.iovecs.len();
        if let Some(addr) = &mut self.addr {
            self.header.msg_name = addr.as_mut_ptr() as *mut libc::c_void;
            self.header.msg_namelen = addr.len;
        }
    }
}
