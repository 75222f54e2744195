//! Zero-copy views over packet bytes, one module per protocol, each following its RFC.
//!
//! # The contract
//!
//! Each protocol has two halves:
//!
//! - a *packet* view, `XPacket<T: AsRef<[u8]>>` (for Ethernet, [`EthernetFrame`]), whose
//!   accessors read header fields straight out of the bytes (and, for `T: AsMut<[u8]>`, whose
//!   setters write them in place). Nothing is copied: `T` is whatever holds the bytes, a
//!   `&[u8]`, a `&mut [u8]`, a `Vec<u8>` or a cairn [`IoBuf`](cairn_rt::iobuf::IoBuf);
//! - a *repr*, `XRepr`, a small parsed value where the valid headers are few enough to list
//!   ([`Ipv4Repr`], [`TcpRepr`]...), with `parse` (packet to repr, validating what the view does
//!   not) and `emit` (repr to packet).
//!
//! Untrusted bytes enter through `XPacket::new_checked`, which runs `check_len`: once it
//! succeeds, **no accessor of that view can panic**, whatever the bytes say (a length field
//! pointing past the buffer is reported as [`Error::Truncated`], a nonsensical one as
//! [`Error::Malformed`]). `XRepr::parse` then checks the rest (version, checksum, option syntax).
//! So for each protocol the one entry point for untrusted bytes is
//! `XRepr::parse(&XPacket::new_checked(bytes)?, ...)`.
//!
//! `XPacket::new_unchecked` skips the check; it is for emitting into a buffer the caller sized
//! with `XRepr::buffer_len` (or `XPacket::buffer_len`). Accessors of an unchecked view over a
//! buffer that is too short panic.
//!
//! Checksums are verified by `parse` and filled by `emit` unless the [`ChecksumCapabilities`]
//! passed in say the device does it.
//!
//! # Example: emit a UDP datagram and parse it back
//!
//! ```
//! use cairn_net::wire::*;
//!
//! let caps = ChecksumCapabilities::default();
//! let (src, dst) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
//! let udp = UdpRepr { src_port: 5353, dst_port: 53, payload_len: 5 };
//! let ip = Ipv4Repr {
//!     src_addr: src,
//!     dst_addr: dst,
//!     protocol: IpProtocol::Udp,
//!     payload_len: udp.buffer_len(),
//!     ttl: 64,
//! };
//! let eth = EthernetRepr {
//!     src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
//!     dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
//!     ethertype: EtherType::Ipv4,
//! };
//!
//! // Emit, outermost header first, into a buffer of exactly the right size.
//! let mut bytes = vec![0u8; eth.buffer_len() + ip.buffer_len() + udp.buffer_len()];
//! let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
//! eth.emit(&mut frame);
//! let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
//! ip.emit(&mut packet, &caps);
//! let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
//! udp.emit(&mut datagram, src, dst, &caps, |payload| payload.copy_from_slice(b"hello"));
//!
//! // Parse it back as untrusted bytes.
//! let frame = EthernetFrame::new_checked(&bytes[..])?;
//! assert_eq!(EthernetRepr::parse(&frame)?, eth);
//! let packet = Ipv4Packet::new_checked(frame.payload())?;
//! assert_eq!(Ipv4Repr::parse(&packet, &caps)?, ip);
//! let datagram = UdpPacket::new_checked(packet.payload())?;
//! assert_eq!(UdpRepr::parse(&datagram, src, dst, &caps)?, udp);
//! assert_eq!(datagram.payload(), b"hello");
//! # Ok::<(), cairn_net::wire::Error>(())
//! ```
//!
//! # With an IOBuf
//!
//! A cairn [`IoBuf`](cairn_rt::iobuf::IoBuf) dereferences to `[u8]`, so views work over it
//! directly: a stack reserves headroom, writes the payload, then prepends each header in the
//! headroom with `retreat` and emits it through a view of the buffer's slice.
//!
//! ```
//! use cairn_net::wire::*;
//! use cairn_rt::iobuf::IoBuf;
//!
//! let caps = ChecksumCapabilities::default();
//! let (src, dst) = (Ipv4Address::new(192, 168, 1, 10), Ipv4Address::new(192, 168, 1, 1));
//! let mut buf = IoBuf::with_headroom(64, 16);
//! buf.tailroom_mut()[..4].copy_from_slice(b"ping");
//! buf.claim_tailroom(4).unwrap();
//!
//! let udp = UdpRepr { src_port: 4000, dst_port: 7, payload_len: buf.len() };
//! buf.retreat(udp.header_len()).unwrap();
//! udp.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst, &caps, |_| {});
//!
//! let datagram = UdpPacket::new_checked(&buf[..])?;
//! assert_eq!(UdpRepr::parse(&datagram, src, dst, &caps)?, udp);
//! assert_eq!(datagram.payload(), b"ping");
//! # Ok::<(), cairn_net::wire::Error>(())
//! ```

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod proptests;

pub use arp::{ArpHardware, ArpOperation, ArpPacket, ArpRepr};
pub use checksum::{Checksum, ChecksumCapabilities};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
pub use tcp::{SackBlocks, TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr, TcpTimestamps};
pub use udp::{UdpPacket, UdpRepr};

/// Why bytes could not be read as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field in it says.
    Truncated,
    /// A field holds a value the protocol forbids (a header length below the minimum, a TCP
    /// option whose length overruns the header, an IP version other than 4).
    Malformed,
    /// The checksum does not match the bytes.
    Checksum,
    /// Well-formed, but something this stack does not handle (an ARP packet for a hardware type
    /// other than Ethernet, an IPv4 fragment, an ICMP message type with no repr).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "packet truncated",
            Error::Malformed => "malformed packet",
            Error::Checksum => "checksum mismatch",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl core::error::Error for Error {}

/// The result of parsing a packet.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` from a two-byte field.
fn read_u16(field: &[u8]) -> u16 {
    u16::from_be_bytes([field[0], field[1]])
}

/// Reads a big-endian `u32` from a four-byte field.
fn read_u32(field: &[u8]) -> u32 {
    u32::from_be_bytes([field[0], field[1], field[2], field[3]])
}

/// Writes `value` big-endian into a two-byte field.
fn write_u16(field: &mut [u8], value: u16) {
    field.copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian into a four-byte field.
fn write_u32(field: &mut [u8], value: u32) {
    field.copy_from_slice(&value.to_be_bytes());
}
