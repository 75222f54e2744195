//! UDP (RFC 768) sockets: a port bound to a handle, a bounded queue of received datagrams per
//! socket (each datagram's data a view of the received frame, not a copy), and the header and
//! checksum of sent datagrams computed over the payload chain in place.

use alloc::collections::{BTreeMap, VecDeque};

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::ipv4::{chain_sum, prepend, HEADROOM};
use crate::wire::udp::HEADER_LEN;
use crate::wire::{checksum, ChecksumCapabilities, IpProtocol, Ipv4Address, UdpPacket};

/// A bound UDP socket, returned by [`Interface::udp_bind`](super::Interface::udp_bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpHandle(u16);

impl UdpHandle {
    /// The local port the socket is bound to.
    pub const fn port(self) -> u16 {
        self.0
    }
}

/// A received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram {
    /// The sender's address.
    pub src: Ipv4Address,
    /// The sender's port.
    pub src_port: u16,
    /// The address it was sent to (ours, or a broadcast address).
    pub dst: Ipv4Address,
    /// The data, a view of the received frame (or of the reassembled datagram).
    pub data: SharedIoBuf,
}

/// Why a UDP call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpError {
    /// The port is already bound.
    PortInUse,
    /// No ephemeral port is free.
    NoPortFree,
    /// The handle names no bound socket.
    NotBound,
    /// The datagram is longer than 65507 bytes of data.
    TooLarge,
    /// Port 0 cannot be a destination.
    BadPort,
    /// No route to the destination (no address configured, or no gateway for it).
    NoRoute,
}

/// The first port handed out for `bind(0)` (RFC 6335 §6, the dynamic range).
const EPHEMERAL_FIRST: u16 = 49152;

/// The sockets bound on an interface.
#[derive(Debug, Default)]
pub struct UdpSockets {
    sockets: BTreeMap<u16, VecDeque<UdpDatagram>>,
    next_ephemeral: u16,
}

impl UdpSockets {
    /// No sockets.
    pub fn new() -> Self {
        UdpSockets { sockets: BTreeMap::new(), next_ephemeral: EPHEMERAL_FIRST }
    }

    /// Binds `port`, or a free port in the dynamic range if `port` is 0.
    pub fn bind(&mut self, port: u16) -> Result<UdpHandle, UdpError> {
        let port = if port == 0 { self.ephemeral()? } else { port };
        if self.sockets.contains_key(&port) {
            return Err(UdpError::PortInUse);
        }
        self.sockets.insert(port, VecDeque::new());
        Ok(UdpHandle(port))
    }

    /// A free port in the dynamic range, searched from where the last search stopped.
    fn ephemeral(&mut self) -> Result<u16, UdpError> {
        let count = u16::MAX - EPHEMERAL_FIRST + 1;
        for _ in 0..count {
            let port = self.next_ephemeral.max(EPHEMERAL_FIRST);
            self.next_ephemeral = port.checked_add(1).unwrap_or(EPHEMERAL_FIRST);
            if !self.sockets.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(UdpError::NoPortFree)
    }

    /// Unbinds a socket, dropping what it had not read.
    pub fn close(&mut self, handle: UdpHandle) -> Result<(), UdpError> {
        self.sockets.remove(&handle.0).map(|_| ()).ok_or(UdpError::NotBound)
    }

    /// Whether `port` has a socket.
    pub fn is_bound(&self, port: u16) -> bool {
        self.sockets.contains_key(&port)
    }

    /// Queues a datagram for the socket on `port`: `Ok(true)` if queued, `Ok(false)` if the
    /// queue was full (dropped), `Err` if no socket is bound.
    pub fn deliver(
        &mut self,
        port: u16,
        datagram: UdpDatagram,
        limit: usize,
    ) -> Result<bool, UdpError> {
        let queue = self.sockets.get_mut(&port).ok_or(UdpError::NotBound)?;
        if queue.len() >= limit {
            return Ok(false);
        }
        queue.push_back(datagram);
        Ok(true)
    }

    /// The next datagram received on `handle`.
    pub fn recv(&mut self, handle: UdpHandle) -> Result<Option<UdpDatagram>, UdpError> {
        Ok(self.sockets.get_mut(&handle.0).ok_or(UdpError::NotBound)?.pop_front())
    }

    /// How many datagrams wait on `handle`.
    pub fn pending(&self, handle: UdpHandle) -> usize {
        self.sockets.get(&handle.0).map_or(0, VecDeque::len)
    }
}

/// Puts a UDP header in front of `payload` for `src:src_port` → `dst:dst_port`, with the
/// checksum over the pseudo-header, header and payload unless `caps` leaves it to the device
/// (RFC 768: a computed zero is sent as all ones, since zero means "no checksum").
pub fn datagram(
    src: Ipv4Address,
    src_port: u16,
    dst: Ipv4Address,
    dst_port: u16,
    mut payload: IoBufChain,
    caps: &ChecksumCapabilities,
) -> Result<IoBufChain, UdpError> {
    let len = u16::try_from(HEADER_LEN + payload.len()).map_err(|_| UdpError::TooLarge)?;
    if payload.len() > 65_507 {
        return Err(UdpError::TooLarge);
    }
    let mut header = [0u8; HEADER_LEN];
    let mut packet = UdpPacket::new_unchecked(&mut header[..]);
    packet.set_src_port(src_port);
    packet.set_dst_port(dst_port);
    packet.set_length(len);
    packet.set_checksum(0);
    if caps.udp.fill() {
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), u32::from(len));
        let sum = checksum::combine(&[pseudo, checksum::sum(&header), chain_sum(&payload)]);
        let value = match !sum {
            0 => 0xffff,
            v => v,
        };
        UdpPacket::new_unchecked(&mut header[..]).set_checksum(value);
    }
    prepend(&mut payload, HEADER_LEN, HEADROOM, |h| h.copy_from_slice(&header));
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UdpRepr;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    fn datagram_to() -> UdpDatagram {
        UdpDatagram { src: SRC, src_port: 9, dst: DST, data: SharedIoBuf::from_static(b"x") }
    }

    #[test]
    fn bind_deliver_recv() {
        let mut sockets = UdpSockets::new();
        let h = sockets.bind(7).unwrap();
        assert_eq!(h.port(), 7);
        assert_eq!(sockets.bind(7), Err(UdpError::PortInUse));
        assert_eq!(sockets.deliver(7, datagram_to(), 1), Ok(true));
        assert_eq!(sockets.deliver(7, datagram_to(), 1), Ok(false));
        assert_eq!(sockets.deliver(8, datagram_to(), 1), Err(UdpError::NotBound));
        assert_eq!(sockets.pending(h), 1);
        assert_eq!(sockets.recv(h).unwrap().unwrap().data.as_slice(), b"x");
        assert_eq!(sockets.recv(h), Ok(None));
        sockets.close(h).unwrap();
        assert_eq!(sockets.recv(h), Err(UdpError::NotBound));
    }

    #[test]
    fn ephemeral_ports_skip_bound_ones() {
        let mut sockets = UdpSockets::new();
        sockets.bind(EPHEMERAL_FIRST).unwrap();
        let h = sockets.bind(0).unwrap();
        assert_eq!(h.port(), EPHEMERAL_FIRST + 1);
        assert_ne!(sockets.bind(0).unwrap(), h);
    }

    #[test]
    fn header_and_checksum_over_a_chain() {
        let caps = ChecksumCapabilities::default();
        let mut payload = IoBufChain::from(SharedIoBuf::copy_from_slice(b"hel"));
        payload.push_back(SharedIoBuf::copy_from_slice(b"lo"));
        let bytes = datagram(SRC, 4000, DST, 7, payload, &caps).unwrap().to_vec();
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        let repr = UdpRepr::parse(&packet, SRC, DST, &caps).unwrap();
        assert_eq!(repr, UdpRepr { src_port: 4000, dst_port: 7, payload_len: 5 });
        assert_ne!(packet.checksum(), 0);
        assert_eq!(packet.payload(), b"hello");
    }

    #[test]
    fn oversized_datagrams_are_refused() {
        let caps = ChecksumCapabilities::default();
        let big = IoBufChain::from(SharedIoBuf::from_vec(alloc::vec![0; 65_508]));
        assert_eq!(datagram(SRC, 1, DST, 2, big, &caps).err(), Some(UdpError::TooLarge));
    }
}
