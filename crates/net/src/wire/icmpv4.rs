//! ICMP for IPv4 (RFC 792): echo request and reply (ping), destination unreachable and time
//! exceeded, with the checksum over the whole message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |  (echo)
//! |                            unused                             |  (errors)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data ...  (echo: anything; errors: the offending IP header + 64 bits of its data)
//! +-+-+-+-+-
//! ```

use super::checksum::{self, ChecksumCapabilities};
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// The type of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    /// Echo reply (0).
    EchoReply,
    /// Destination unreachable (3).
    DstUnreachable,
    /// Redirect (5).
    Redirect,
    /// Echo request (8).
    EchoRequest,
    /// Time exceeded (11).
    TimeExceeded,
    /// Parameter problem (12).
    ParamProblem,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Icmpv4Message {
    fn from(value: u8) -> Self {
        match value {
            0 => Icmpv4Message::EchoReply,
            3 => Icmpv4Message::DstUnreachable,
            5 => Icmpv4Message::Redirect,
            8 => Icmpv4Message::EchoRequest,
            11 => Icmpv4Message::TimeExceeded,
            12 => Icmpv4Message::ParamProblem,
            other => Icmpv4Message::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(value: Icmpv4Message) -> Self {
        match value {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST_OF_HEADER: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// The length of an ICMPv4 header (type, code, checksum and the four-byte rest of header).
pub const HEADER_LEN: usize = field::DATA.start;

/// A zero-copy view of an ICMPv4 message in a byte buffer. The message is the whole buffer
/// (ICMP has no length field: it ends where the IPv4 payload ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// A view over `buffer` with no length check: for emitting into a buffer of
    /// [`Icmpv4Repr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// A view over untrusted bytes: checks the length first (see [`Icmpv4Packet::check_len`]),
    /// after which no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] if the buffer cannot hold the eight-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code (its meaning depends on the type).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The four bytes after the checksum, as one word (for types without a named layout).
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST_OF_HEADER])
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// The data after the header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field as given.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the four bytes after the checksum.
    pub fn set_rest_of_header(&mut self, value: u32) {
        write_u32(&mut self.buffer.as_mut()[field::REST_OF_HEADER], value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], value);
    }

    /// The data after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes the checksum over the whole message and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// A parsed ICMPv4 message of one of the types this stack acts on. The data stays in the packet
/// ([`Icmpv4Packet::data`]); the repr records its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr {
    /// An echo request (ping).
    EchoRequest {
        /// The identifier.
        ident: u16,
        /// The sequence number.
        seq_no: u16,
        /// The length of the echoed data.
        data_len: usize,
    },
    /// An echo reply.
    EchoReply {
        /// The identifier.
        ident: u16,
        /// The sequence number.
        seq_no: u16,
        /// The length of the echoed data.
        data_len: usize,
    },
    /// Destination unreachable; the data is the offending datagram's header and first 8 bytes.
    DstUnreachable {
        /// The reason (0 net, 1 host, 2 protocol, 3 port, 4 fragmentation needed...).
        code: u8,
        /// The length of the quoted datagram.
        data_len: usize,
    },
    /// Time exceeded; the data is the offending datagram's header and first 8 bytes.
    TimeExceeded {
        /// 0: TTL exceeded in transit; 1: fragment reassembly time exceeded.
        code: u8,
        /// The length of the quoted datagram.
        data_len: usize,
    },
}

impl Icmpv4Repr {
    /// Parses a checked message: [`Error::Checksum`] if the checksum is wrong (unless `caps`
    /// says the device verified it), [`Error::Malformed`] for an echo with a nonzero code,
    /// [`Error::Unsupported`] for other message types.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Icmpv4Packet<T>,
        caps: &ChecksumCapabilities,
    ) -> Result<Icmpv4Repr> {
        packet.check_len()?;
        if caps.icmpv4.verify() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let data_len = packet.data().len();
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.msg_code()) {
            (Icmpv4Message::EchoRequest, 0) => {
                Ok(Icmpv4Repr::EchoRequest { ident, seq_no, data_len })
            }
            (Icmpv4Message::EchoReply, 0) => Ok(Icmpv4Repr::EchoReply { ident, seq_no, data_len }),
            (Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply, _) => Err(Error::Malformed),
            (Icmpv4Message::DstUnreachable, code) => {
                Ok(Icmpv4Repr::DstUnreachable { code, data_len })
            }
            (Icmpv4Message::TimeExceeded, code) => Ok(Icmpv4Repr::TimeExceeded { code, data_len }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The length of the data after the header.
    pub const fn data_len(&self) -> usize {
        match *self {
            Icmpv4Repr::EchoRequest { data_len, .. }
            | Icmpv4Repr::EchoReply { data_len, .. }
            | Icmpv4Repr::DstUnreachable { data_len, .. }
            | Icmpv4Repr::TimeExceeded { data_len, .. } => data_len,
        }
    }

    /// The length of the whole message: header and data.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data_len()
    }

    /// Writes the header into `packet`, calls `emit_data` on the data bytes (pass `|_| {}` when
    /// they are already in place), then fills the checksum unless `caps` says the device does.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than the header.
    pub fn emit<T, F>(
        &self,
        packet: &mut Icmpv4Packet<T>,
        caps: &ChecksumCapabilities,
        emit_data: F,
    ) where
        T: AsRef<[u8]> + AsMut<[u8]>,
        F: FnOnce(&mut [u8]),
    {
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                let msg_type = match self {
                    Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
                    _ => Icmpv4Message::EchoReply,
                };
                packet.set_msg_type(msg_type);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable { code, .. } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(code);
                packet.set_rest_of_header(0);
            }
            Icmpv4Repr::TimeExceeded { code, .. } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(code);
                packet.set_rest_of_header(0);
            }
        }
        packet.set_checksum(0);
        emit_data(packet.data_mut());
        if caps.icmpv4.fill() {
            packet.fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};

    /// A captured-style `ping` from 10.0.0.1 to 10.0.0.2: IPv4 header (checksum 0x26d7), then an
    /// echo request, id 0x1234, seq 1, data "abcdefgh", ICMP checksum 0x5435. Both checksums
    /// were computed independently of this crate.
    const DATAGRAM: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x26, 0xd7, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, // ICMP header
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', // data
    ];

    #[test]
    fn parses_a_real_echo_request() {
        let caps = ChecksumCapabilities::default();
        let ip = Ipv4Packet::new_checked(&DATAGRAM[..]).unwrap();
        let ip_repr = Ipv4Repr::parse(&ip, &caps).unwrap();
        assert_eq!(ip_repr.protocol, IpProtocol::Icmp);
        assert_eq!(ip_repr.src_addr, Ipv4Address::new(10, 0, 0, 1));
        let packet = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(packet.checksum(), 0x5435);
        assert!(packet.verify_checksum());
        assert_eq!(packet.data(), b"abcdefgh");
        let repr = Icmpv4Repr::parse(&packet, &caps).unwrap();
        assert_eq!(repr, Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 1, data_len: 8 });

        let mut out = [0u8; 16];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), &caps, |d| {
            d.copy_from_slice(b"abcdefgh")
        });
        assert_eq!(out[..], DATAGRAM[20..]);
    }

    #[test]
    fn reply_and_errors_round_trip() {
        let caps = ChecksumCapabilities::default();
        for repr in [
            Icmpv4Repr::EchoReply { ident: 7, seq_no: 9, data_len: 3 },
            Icmpv4Repr::DstUnreachable { code: 3, data_len: 28 },
            Icmpv4Repr::TimeExceeded { code: 0, data_len: 28 },
        ] {
            let mut out = [0u8; 36];
            let mut packet = Icmpv4Packet::new_unchecked(&mut out[..repr.buffer_len()]);
            repr.emit(&mut packet, &caps, |d| d.fill(0x5a));
            assert!(packet.verify_checksum());
            assert_eq!(Icmpv4Repr::parse(&packet, &caps), Ok(repr));
        }
    }

    #[test]
    fn rejections() {
        let caps = ChecksumCapabilities::default();
        assert_eq!(Icmpv4Packet::new_checked(&DATAGRAM[20..27]), Err(Error::Truncated));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&DATAGRAM[20..]);
        bytes[15] ^= 0x20;
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&packet, &caps), Err(Error::Checksum));
        assert!(Icmpv4Repr::parse(&packet, &ChecksumCapabilities::offloaded()).is_ok());

        let mut packet = Icmpv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_msg_code(1);
        packet.fill_checksum();
        assert_eq!(Icmpv4Repr::parse(&packet, &caps), Err(Error::Malformed));
        packet.set_msg_type(Icmpv4Message::Redirect);
        packet.fill_checksum();
        assert_eq!(Icmpv4Repr::parse(&packet, &caps), Err(Error::Unsupported));
    }
}
