//! UDP sockets over a [`NetStack`](super::NetStack) (RFC 768): datagrams arrive as views of the
//! received frames and leave as chains sent by reference.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use cairn_net::iface::{UdpDatagram, UdpError, UdpHandle};
use cairn_net::wire::Ipv4Address;
use cairn_rt::iobuf::IoBufChain;

use super::Inner;

/// A bound UDP port. Dropping it closes the socket and drops what it had not read.
pub struct NetUdpSocket {
    inner: Rc<RefCell<Inner>>,
    handle: UdpHandle,
}

impl NetUdpSocket {
    pub(super) fn new(inner: Rc<RefCell<Inner>>, handle: UdpHandle) -> NetUdpSocket {
        NetUdpSocket { inner, handle }
    }

    /// The local port.
    pub fn port(&self) -> u16 {
        self.handle.port()
    }

    /// Waits for the next datagram (its data a view of the received frame).
    pub async fn recv_from(&self) -> Result<UdpDatagram, UdpError> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match inner.iface.udp_recv(self.handle) {
                Ok(Some(datagram)) => Poll::Ready(Ok(datagram)),
                Ok(None) => {
                    inner.udp_waiters.push(cx.waker().clone());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Sends `payload` to `dst:port`; it leaves at the driver's next round (after ARP
    /// resolution if the next hop is not yet known).
    pub fn send_to(
        &self,
        dst: Ipv4Address,
        port: u16,
        payload: IoBufChain,
    ) -> Result<(), UdpError> {
        let mut inner = self.inner.borrow_mut();
        let result = inner.iface.udp_send_to(self.handle, dst, port, payload);
        inner.kick();
        result
    }
}

impl Drop for NetUdpSocket {
    fn drop(&mut self) {
        let _ = self.inner.borrow_mut().iface.udp_close(self.handle);
    }
}
