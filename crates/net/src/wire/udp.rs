//! UDP (RFC 768): ports, length and a checksum over the IPv4 pseudo-header.
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |                 |                 |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! +---------------- ...
//! ```
//!
//! Over IPv4 a checksum of zero means the sender computed none, and is accepted; a computed
//! checksum of zero is sent as 0xffff.

use super::checksum::{self, ChecksumCapabilities};
use super::ipv4::{IpProtocol, Ipv4Address};
use super::{read_u16, write_u16, Error, Result};

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// The length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A zero-copy view of a UDP datagram in a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// A view over `buffer` with no length check: for emitting into a buffer of
    /// [`UdpRepr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// A view over untrusted bytes: checks the lengths first (see [`UdpPacket::check_len`]),
    /// after which no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] if the buffer cannot hold the header or the Length field's bytes;
    /// [`Error::Malformed`] if Length is below the header length. The buffer may be longer.
    pub fn check_len(&self) -> Result<()> {
        let buffer_len = self.buffer.as_ref().len();
        if buffer_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.length());
        if len < HEADER_LEN {
            Err(Error::Malformed)
        } else if len > buffer_len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The Length field: header and data, in bytes.
    pub fn length(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The checksum as stored (zero: none was computed).
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The data: from the end of the header to Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }

    /// Whether the checksum over the pseudo-header for `src`→`dst` and the datagram's Length
    /// bytes is correct; a zero checksum (none computed) passes.
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.length();
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), len.into());
        let data = checksum::sum(&self.buffer.as_ref()[..usize::from(len)]);
        checksum::combine(&[pseudo, data]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the checksum field as given.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Computes the checksum over the pseudo-header for `src`→`dst` and the datagram's Length
    /// bytes, and stores it (a computed zero as 0xffff).
    pub fn fill_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        self.set_checksum(0);
        let len = self.length();
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), len.into());
        let data = checksum::sum(&self.buffer.as_ref()[..usize::from(len)]);
        let sum = !checksum::combine(&[pseudo, data]);
        self.set_checksum(if sum == 0 { 0xffff } else { sum });
    }

    /// The data, writable (from the end of the header to Length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.length());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// The parsed header of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The data length in bytes; at most 65527.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses a checked datagram that travelled from `src` to `dst`: [`Error::Checksum`] if its
    /// checksum is wrong (unless `caps` says the device verified it).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        caps: &ChecksumCapabilities,
    ) -> Result<UdpRepr> {
        packet.check_len()?;
        if caps.udp.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.payload().len(),
        })
    }

    /// The length of the header.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole datagram: header and data.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header into `packet`, calls `emit_payload` on the data bytes (pass `|_| {}`
    /// when they are already in place), then fills the checksum for `src`→`dst` unless `caps`
    /// says the device does (it is then left zero).
    ///
    /// # Panics
    ///
    /// If `payload_len` exceeds 65527 (Length cannot express it) or the buffer is shorter than
    /// [`UdpRepr::buffer_len`].
    pub fn emit<T, F>(
        &self,
        packet: &mut UdpPacket<T>,
        src: Ipv4Address,
        dst: Ipv4Address,
        caps: &ChecksumCapabilities,
        emit_payload: F,
    ) where
        T: AsRef<[u8]> + AsMut<[u8]>,
        F: FnOnce(&mut [u8]),
    {
        let len = u16::try_from(self.buffer_len()).expect("UDP payload longer than Length allows");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_length(len);
        packet.set_checksum(0);
        emit_payload(packet.payload_mut());
        if caps.udp.fill() {
            packet.fill_checksum(src, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Address = Ipv4Address::new(192, 168, 1, 10);
    const DST: Ipv4Address = Ipv4Address::new(192, 168, 1, 1);

    /// A DNS query for "a." from 192.168.1.10:49152 to 192.168.1.1:53; checksum 0xa590 computed
    /// by hand (see `checksum_by_hand`).
    const DATAGRAM: [u8; 27] = [
        0xc0, 0x00, 0x00, 0x35, 0x00, 0x1b, 0xa5, 0x90, // header
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // DNS header
        0x01, b'a', 0x00, 0x00, 0x01, 0x00, 0x01, // a. IN A
    ];

    #[test]
    fn checksum_by_hand() {
        // Pseudo-header words, then the datagram's words with the checksum zeroed, the odd last
        // byte padded.
        let words: [u32; 20] = [
            0xc0a8, 0x010a, 0xc0a8, 0x0101, 0x0011, 0x001b, // pseudo-header
            0xc000, 0x0035, 0x001b, 0x0000, 0x1234, 0x0100, 0x0001, 0x0000, 0x0000, 0x0000, 0x0161,
            0x0000, 0x0100, 0x0100,
        ];
        let mut acc: u32 = words.iter().sum();
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(!(acc as u16), 0xa590);
    }

    #[test]
    fn parses_a_real_datagram() {
        let packet = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(packet.src_port(), 49152);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.length(), 27);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(DST, Ipv4Address::new(192, 168, 1, 2)));
        let repr = UdpRepr::parse(&packet, SRC, DST, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr, UdpRepr { src_port: 49152, dst_port: 53, payload_len: 19 });

        let mut out = [0u8; 27];
        let payload = &DATAGRAM[8..];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut out[..]),
            SRC,
            DST,
            &ChecksumCapabilities::default(),
            |p| p.copy_from_slice(payload),
        );
        assert_eq!(out, DATAGRAM);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut bytes = DATAGRAM;
        bytes[6..8].copy_from_slice(&[0, 0]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn length_checks() {
        assert_eq!(UdpPacket::new_checked(&DATAGRAM[..7]), Err(Error::Truncated));
        assert_eq!(UdpPacket::new_checked(&DATAGRAM[..26]), Err(Error::Truncated));
        let mut bytes = DATAGRAM;
        bytes[5] = 7;
        assert_eq!(UdpPacket::new_checked(&bytes[..]), Err(Error::Malformed));
        let mut padded = [0u8; 30];
        padded[..27].copy_from_slice(&DATAGRAM);
        assert_eq!(UdpPacket::new_checked(&padded[..]).unwrap().payload().len(), 19);
    }

    #[test]
    fn offloaded_checksum_is_neither_filled_nor_verified() {
        let caps = ChecksumCapabilities::offloaded();
        let repr = UdpRepr { src_port: 1, dst_port: 2, payload_len: 0 };
        let mut out = [0xaa; 8];
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), SRC, DST, &caps, |_| {});
        assert_eq!(&out[6..], &[0, 0]);
        let mut bytes = DATAGRAM;
        bytes[7] ^= 1;
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(UdpRepr::parse(&packet, SRC, DST, &caps).is_ok());
        let software = ChecksumCapabilities::default();
        assert_eq!(UdpRepr::parse(&packet, SRC, DST, &software), Err(Error::Checksum));
    }
}
