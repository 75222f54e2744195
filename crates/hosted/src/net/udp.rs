//! UDP on the core's io_uring: datagrams received into fresh IOBufs, sent from IOBuf chains.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use cairn_rt::iobuf::{IoBuf, IoBufChain, Segment};
use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::socket;
use super::stream::SendMessage;
use super::RECV_HEADROOM;

/// The largest UDP payload (IPv4: 65,535 - 8 - 20).
pub const MAX_DATAGRAM: usize = 65_507;

/// A UDP socket of this core.
pub struct UdpSocket {
    fd: OwnedFd,
}

/// A `msghdr` for one datagram received into a buffer's tailroom, with room for the sender's
/// address; boxed so the kernel's pointers stay valid.
struct RecvMessage {
    header: libc::msghdr,
    iovec: libc::iovec,
    from: RawAddr,
    buf: IoBuf,
}

impl UdpSocket {
    /// Binds a UDP socket on `addr` for the calling core.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let fd = socket::new_socket(&addr, libc::SOCK_DGRAM)?;
        socket::bind(&fd, &addr)?;
        Ok(UdpSocket { fd })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(&self.fd)
    }

    /// Receives one datagram into a fresh buffer, with its sender. A datagram longer than
    /// `max_len` is truncated to it, as `recvfrom` does.
    pub async fn recv_from(&self, max_len: usize) -> io::Result<(IoBuf, SocketAddr)> {
        let mut buf = IoBuf::with_headroom(RECV_HEADROOM, max_len.max(1));
        let tail = buf.tailroom_mut();
        let iovec =
            libc::iovec { iov_base: tail.as_mut_ptr() as *mut libc::c_void, iov_len: tail.len() };
        // SAFETY: msghdr is plain data for which all-zero bytes are valid.
        let header = unsafe { std::mem::zeroed() };
        let mut msg = Box::new(RecvMessage { header, iovec, from: RawAddr::empty(), buf });
        msg.header.msg_iov = &mut msg.iovec;
        msg.header.msg_iovlen = 1;
        msg.header.msg_name = msg.from.as_mut_ptr() as *mut libc::c_void;
        msg.header.msg_namelen = msg.from.len;
        let entry = opcode::RecvMsg::new(types::Fd(self.fd.as_raw_fd()), &mut msg.header).build();
        // SAFETY: the header, the gather entry, the address space and the buffer's tailroom all
        // live in the boxed message (the tailroom on the buffer's heap storage), kept by the op.
        let (c, mut msg) = unsafe { crate::reactor::Op::start(entry, msg) }.await;
        let n = c.into_result()? as usize;
        msg.from.len = msg.header.msg_namelen;
        let from = msg.from.to_socket_addr()?;
        let mut buf = msg.buf;
        buf.claim_tailroom(n).expect("the kernel wrote at most the tailroom");
        Ok((buf, from))
    }

    /// Sends `chain` as one datagram to `to`.
    pub async fn send_to<B: Segment + 'static>(
        &self,
        chain: IoBufChain<B>,
        to: SocketAddr,
    ) -> io::Result<usize> {
        let mut msg = Box::new(SendMessage::new(chain));
        msg.addr = Some(RawAddr::from_socket_addr(&to));
        msg.fix_pointers();
        let entry = opcode::SendMsg::new(types::Fd(self.fd.as_raw_fd()), &msg.header).build();
        // SAFETY: the header, gather list, address and buffers live in the boxed message, kept by
        // the op until the kernel is done.
        let (c, _msg) = unsafe { crate::reactor::Op::start(entry, msg) }.await;
        Ok(c.into_result()? as usize)
    }

    /// Sends one buffer as a datagram to `to`.
    pub async fn send_buf_to(&self, buf: IoBuf, to: SocketAddr) -> io::Result<usize> {
        let mut chain = IoBufChain::<IoBuf>::new();
        chain.push_back(buf);
        self.send_to(chain, to).await
    }
}
