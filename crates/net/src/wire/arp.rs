//! ARP (RFC 826): resolving IPv4 addresses to Ethernet addresses.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Hardware Type         |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  HW Addr Len  | Proto Addr Len|           Operation           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Sender HW Address (HW Addr Len) ... Sender Proto Address ...  |
//! | Target HW Address (HW Addr Len) ... Target Proto Address ...  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The view handles any address lengths the packet declares; [`ArpRepr`] only Ethernet
//! hardware with IPv4 protocol addresses (a 28-byte packet), the only pairing cairn speaks.

use super::ethernet::{EtherType, EthernetAddress};
use super::ipv4::Ipv4Address;
use super::{read_u16, write_u16, Error, Result};

/// The hardware type of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpHardware {
    /// Ethernet (1).
    Ethernet,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for ArpHardware {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpHardware::Ethernet,
            other => ArpHardware::Unknown(other),
        }
    }
}

impl From<ArpHardware> for u16 {
    fn from(value: ArpHardware) -> Self {
        match value {
            ArpHardware::Ethernet => 1,
            ArpHardware::Unknown(other) => other,
        }
    }
}

/// The operation of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// A request (1): who has the target protocol address?
    Request,
    /// A reply (2): the sender has the sender protocol address.
    Reply,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> Self {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;

    /// Sender hardware address, for hardware and protocol address lengths `h` and `p`.
    pub const fn sha(h: usize, _p: usize) -> Range<usize> {
        OPER.end..OPER.end + h
    }
    /// Sender protocol address.
    pub const fn spa(h: usize, p: usize) -> Range<usize> {
        sha(h, p).end..sha(h, p).end + p
    }
    /// Target hardware address.
    pub const fn tha(h: usize, p: usize) -> Range<usize> {
        spa(h, p).end..spa(h, p).end + h
    }
    /// Target protocol address.
    pub const fn tpa(h: usize, p: usize) -> Range<usize> {
        tha(h, p).end..tha(h, p).end + p
    }
}

/// The length of the fixed part of an ARP packet, before the addresses.
pub const FIXED_LEN: usize = field::OPER.end;

/// A zero-copy view of an ARP packet in a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// A view over `buffer` with no length check: for emitting into a buffer of
    /// [`ArpRepr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// A view over untrusted bytes: checks the lengths first (see [`ArpPacket::check_len`]),
    /// after which no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] if the buffer cannot hold the fixed part or the four addresses at
    /// the lengths the packet declares. The buffer may be longer (Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN || len < self.addrs_end() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    fn lens(&self) -> (usize, usize) {
        (usize::from(self.hardware_len()), usize::from(self.protocol_len()))
    }

    fn addrs_end(&self) -> usize {
        let (h, p) = self.lens();
        field::tpa(h, p).end
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The hardware type.
    pub fn hardware_type(&self) -> ArpHardware {
        ArpHardware::from(read_u16(&self.buffer.as_ref()[field::HTYPE]))
    }

    /// The protocol type (an EtherType).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(&self.buffer.as_ref()[field::PTYPE]))
    }

    /// The length of a hardware address, in bytes.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The length of a protocol address, in bytes.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(&self.buffer.as_ref()[field::OPER]))
    }

    /// The sender hardware address bytes.
    pub fn source_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::sha(h, p)]
    }

    /// The sender protocol address bytes.
    pub fn source_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::spa(h, p)]
    }

    /// The target hardware address bytes.
    pub fn target_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tha(h, p)]
    }

    /// The target protocol address bytes.
    pub fn target_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tpa(h, p)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: ArpHardware) {
        write_u16(&mut self.buffer.as_mut()[field::HTYPE], value.into());
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(&mut self.buffer.as_mut()[field::PTYPE], value.into());
    }

    /// Sets the hardware address length (set it before writing addresses).
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length (set it before writing addresses).
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: ArpOperation) {
        write_u16(&mut self.buffer.as_mut()[field::OPER], value.into());
    }

    /// Sets the sender hardware address (its length must be the hardware length).
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::sha(h, p)].copy_from_slice(addr);
    }

    /// Sets the sender protocol address (its length must be the protocol length).
    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::spa(h, p)].copy_from_slice(addr);
    }

    /// Sets the target hardware address (its length must be the hardware length).
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::tha(h, p)].copy_from_slice(addr);
    }

    /// Sets the target protocol address (its length must be the protocol length).
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::tpa(h, p)].copy_from_slice(addr);
    }
}

/// A parsed ARP packet for Ethernet hardware and IPv4 protocol addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request, reply or another operation.
    pub operation: ArpOperation,
    /// The sender's Ethernet address.
    pub source_hardware_addr: EthernetAddress,
    /// The sender's IPv4 address.
    pub source_protocol_addr: Ipv4Address,
    /// The target's Ethernet address (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// The target's IPv4 address.
    pub target_protocol_addr: Ipv4Address,
}

impl ArpRepr {
    /// Parses a checked packet: [`Error::Unsupported`] unless it pairs Ethernet (6-byte)
    /// hardware addresses with IPv4 (4-byte) protocol addresses.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != ArpHardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: EthernetAddress::from_bytes(packet.source_hardware_addr()),
            source_protocol_addr: Ipv4Address::from_bytes(packet.source_protocol_addr()),
            target_hardware_addr: EthernetAddress::from_bytes(packet.target_hardware_addr()),
            target_protocol_addr: Ipv4Address::from_bytes(packet.target_protocol_addr()),
        })
    }

    /// The length of the packet this emits: 28 bytes.
    pub const fn buffer_len(&self) -> usize {
        field::tpa(6, 4).end
    }

    /// Writes the packet into `packet`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(ArpHardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.0);
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetFrame;

    /// A captured-style broadcast frame: 52:54:00:12:34:56 (10.0.2.15) asks who has 10.0.2.2,
    /// padded to the Ethernet minimum of 60 bytes.
    const FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen oper
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a, 0x00, 0x02, 0x0f, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02, 0x02, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            source_protocol_addr: Ipv4Address::new(10, 0, 2, 15),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 2, 2),
        }
    }

    #[test]
    fn parses_a_real_request() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Arp);
        let packet = ArpPacket::new_checked(frame.payload()).unwrap();
        assert_eq!(packet.hardware_type(), ArpHardware::Ethernet);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!((packet.hardware_len(), packet.protocol_len()), (6, 4));
        assert_eq!(packet.operation(), ArpOperation::Request);
        assert_eq!(packet.target_protocol_addr(), &[10, 0, 2, 2]);
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request());
    }

    #[test]
    fn emits_the_same_bytes() {
        let repr = request();
        let mut out = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out[..], FRAME[14..42]);
        assert_eq!(repr.buffer_len(), 28);
    }

    #[test]
    fn lengths_and_unsupported_types() {
        assert_eq!(ArpPacket::new_checked(&FRAME[14..41]), Err(Error::Truncated));
        assert_eq!(ArpPacket::new_checked(&FRAME[14..19]), Err(Error::Truncated));
        let mut bytes = [0u8; 28];
        bytes.copy_from_slice(&FRAME[14..42]);
        bytes[4] = 255; // declared hardware length runs past the buffer
        assert_eq!(ArpPacket::new_checked(&bytes[..]), Err(Error::Truncated));
        bytes[4] = 2;
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.source_hardware_addr().len(), 2);
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
    }
}
