//! IPv4 (RFC 791): the header, with its checksum (RFC 1071) and fragment fields.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Options (IHL above 5) are skipped, not interpreted: [`Ipv4Packet::payload`] starts after them
//! and [`Ipv4Packet::options`] shows their bytes. The payload ends at Total Length, so Ethernet
//! padding after a short datagram is never mistaken for payload.

use core::fmt;

use super::checksum::{self, ChecksumCapabilities};
use super::{read_u16, write_u16, Error, Result};

/// A 32-bit IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    /// The unspecified address, 0.0.0.0.
    pub const UNSPECIFIED: Ipv4Address = Ipv4Address([0; 4]);
    /// The limited broadcast address, 255.255.255.255.
    pub const BROADCAST: Ipv4Address = Ipv4Address([255; 4]);

    /// The address `a.b.c.d`.
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Ipv4Address {
        Ipv4Address([a, b, c, d])
    }

    /// The address made of `bytes`.
    ///
    /// # Panics
    ///
    /// If `bytes` is not exactly four bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Ipv4Address {
        let mut addr = [0u8; 4];
        addr.copy_from_slice(bytes);
        Ipv4Address(addr)
    }

    /// The four octets of the address.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Whether this is 0.0.0.0.
    pub const fn is_unspecified(&self) -> bool {
        u32::from_be_bytes(self.0) == 0
    }

    /// Whether this is the limited broadcast address 255.255.255.255.
    pub const fn is_broadcast(&self) -> bool {
        u32::from_be_bytes(self.0) == u32::MAX
    }

    /// Whether this is a multicast address (224.0.0.0/4).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 224
    }

    /// Whether this is a loopback address (127.0.0.0/8).
    pub const fn is_loopback(&self) -> bool {
        self.0[0] == 127
    }

    /// Whether this is a link-local address (169.254.0.0/16).
    pub const fn is_link_local(&self) -> bool {
        self.0[0] == 169 && self.0[1] == 254
    }

    /// Whether this can name one host: not unspecified, broadcast or multicast.
    pub const fn is_unicast(&self) -> bool {
        !(self.is_unspecified() || self.is_broadcast() || self.is_multicast())
    }
}

impl fmt::Display for Ipv4Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl From<core::net::Ipv4Addr> for Ipv4Address {
    fn from(addr: core::net::Ipv4Addr) -> Self {
        Ipv4Address(addr.octets())
    }
}

impl From<Ipv4Address> for core::net::Ipv4Addr {
    fn from(addr: Ipv4Address) -> Self {
        core::net::Ipv4Addr::from(addr.0)
    }
}

/// The protocol an IPv4 datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// ICMP (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Don't Fragment, in the flags-and-offset word.
const FLAG_DF: u16 = 0x4000;
/// More Fragments, in the flags-and-offset word.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset (in 8-byte units), in the flags-and-offset word.
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 datagram in a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// A view over `buffer` with no length check: for emitting into a buffer of
    /// [`Ipv4Repr::buffer_len`] plus payload bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// A view over untrusted bytes: checks the lengths first (see [`Ipv4Packet::check_len`]),
    /// after which no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer against the header's own lengths: [`Error::Truncated`] if it cannot
    /// hold the fixed header, the header with options, or Total Length bytes;
    /// [`Error::Malformed`] if IHL is below 5 or Total Length is below the header length. The
    /// buffer may be longer than Total Length (link-layer padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if total_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services Code Point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total Length: header and payload, in bytes.
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The Identification field (which datagram a fragment belongs to).
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_frag(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLAGS_FRAG])
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this datagram is a fragment: More Fragments set or a nonzero offset.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum as stored.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Whether the header checksum (over the header, options included) is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..usize::from(self.header_len())]) == 0xffff
    }

    /// The option bytes, between the fixed header and the payload (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The payload: from the end of the header (options skipped) to Total Length.
    pub fn payload(&self) -> &[u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version field.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets the Differentiated Services Code Point (six bits).
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the Explicit Congestion Notification bits (two bits).
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the Identification field.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(&mut self.buffer.as_mut()[field::IDENT], ident);
    }

    fn set_flags_frag(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::FLAGS_FRAG], value);
    }

    /// Clears all flags and the fragment offset.
    pub fn clear_flags(&mut self) {
        self.set_flags_frag(0);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, value: bool) {
        let word = self.flags_frag() & !FLAG_DF;
        self.set_flags_frag(if value { word | FLAG_DF } else { word });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, value: bool) {
        let word = self.flags_frag() & !FLAG_MF;
        self.set_flags_frag(if value { word | FLAG_MF } else { word });
    }

    /// Sets the fragment offset, in bytes (a multiple of 8).
    pub fn set_frag_offset(&mut self, offset: u16) {
        let word = self.flags_frag() & !FRAG_OFFSET_MASK;
        self.set_flags_frag(word | (offset >> 3));
    }

    /// Sets Time to Live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol of the payload.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.into();
    }

    /// Sets the header checksum field as given.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.0);
    }

    /// Computes the header checksum and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let sum = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(sum);
    }

    /// The payload, writable (from the end of the header to Total Length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The parsed header of an unfragmented IPv4 datagram: what the layers above need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// The source address.
    pub src_addr: Ipv4Address,
    /// The destination address.
    pub dst_addr: Ipv4Address,
    /// The protocol of the payload.
    pub protocol: IpProtocol,
    /// The payload length in bytes (Total Length less the header); at most 65515.
    pub payload_len: usize,
    /// Time to Live.
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Parses a checked datagram: [`Error::Malformed`] unless the version is 4,
    /// [`Error::Checksum`] if the header checksum is wrong (unless `caps` says the device
    /// verified it), [`Error::Unsupported`] for a fragment (this stack does not reassemble).
    /// Options are skipped.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        caps: &ChecksumCapabilities,
    ) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if caps.ipv4.verify() && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        if packet.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.payload().len(),
            ttl: packet.ttl(),
        })
    }

    /// The length of the header this emits (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (no options, Don't Fragment set, DSCP, ECN and Identification
    /// zero) into `packet`, with its checksum unless `caps` says the device fills it. The
    /// payload is left as it is.
    ///
    /// # Panics
    ///
    /// If `payload_len` exceeds 65515, which Total Length cannot express.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        caps: &ChecksumCapabilities,
    ) {
        let total_len = u16::try_from(HEADER_LEN + self.payload_len)
            .expect("IPv4 payload longer than Total Length can express");
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len(total_len);
        packet.set_ident(0);
        packet.clear_flags();
        packet.set_dont_frag(true);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        if caps.ipv4.fill() {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real header: 172.16.10.99 → 172.16.10.12, TCP, TTL 64, id 0x1c46, DF, total length
    /// 60, checksum 0xb1e6 (the classic worked example), followed by 40 bytes of payload.
    fn real_datagram() -> [u8; 60] {
        let mut bytes = [0u8; 60];
        bytes[..20].copy_from_slice(&[
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xe6, 0xac, 0x10,
            0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
        ]);
        bytes
    }

    #[test]
    fn parses_a_real_header() {
        let bytes = real_datagram();
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 60);
        assert_eq!(packet.ident(), 0x1c46);
        assert!(packet.dont_frag() && !packet.more_frags() && !packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), IpProtocol::Tcp);
        assert_eq!(packet.checksum(), 0xb1e6);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Address::new(172, 16, 10, 99));
        assert_eq!(packet.dst_addr(), Ipv4Address::new(172, 16, 10, 12));
        assert_eq!(packet.payload().len(), 40);
        let repr = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr.payload_len, 40);

        // Emitting the same repr reproduces the header (identification aside).
        let mut out = [0u8; 60];
        let mut emitted = Ipv4Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut emitted, &ChecksumCapabilities::default());
        emitted.set_ident(0x1c46);
        emitted.fill_checksum();
        assert_eq!(out, bytes);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6: one word of options (NOP NOP NOP EOL), then 4 bytes of payload.
        let mut bytes = [0u8; 28];
        bytes[..24].copy_from_slice(&[
            0x46, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0,
        ]);
        bytes[24..].copy_from_slice(b"data");
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.options(), &[1, 1, 1, 0]);
        assert_eq!(packet.payload(), b"data");
        let repr = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr.protocol, IpProtocol::Udp);
        assert_eq!(repr.payload_len, 4);
    }

    #[test]
    fn length_checks() {
        let bytes = real_datagram();
        assert_eq!(Ipv4Packet::new_checked(&bytes[..19]), Err(Error::Truncated));
        assert_eq!(Ipv4Packet::new_checked(&bytes[..59]), Err(Error::Truncated));
        let mut padded = [0u8; 64];
        padded[..60].copy_from_slice(&bytes);
        assert_eq!(Ipv4Packet::new_checked(&padded[..]).unwrap().payload().len(), 40);

        let mut bad = bytes;
        bad[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(Error::Malformed));
        bad[0] = 0x4f; // IHL 15: a 60-byte header, all of Total Length, no payload
        assert!(Ipv4Packet::new_checked(&bad[..]).is_ok());
        bad[3] = 59; // Total Length below header length
        assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(Error::Malformed));
        let mut short = [0u8; 20];
        short.copy_from_slice(&bytes[..20]);
        short[0] = 0x46; // options past the buffer
        assert_eq!(Ipv4Packet::new_checked(&short[..]), Err(Error::Truncated));
    }

    #[test]
    fn repr_rejections() {
        let caps = ChecksumCapabilities::default();
        let mut bytes = real_datagram();
        bytes[0] = 0x65;
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, &caps), Err(Error::Malformed));

        let mut bytes = real_datagram();
        bytes[8] = 63; // TTL changed, checksum stale
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, &caps), Err(Error::Checksum));
        assert!(Ipv4Repr::parse(&packet, &ChecksumCapabilities::offloaded()).is_ok());

        let mut bytes = real_datagram();
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.set_more_frags(true);
        packet.set_frag_offset(1480);
        packet.fill_checksum();
        assert!(packet.more_frags() && packet.dont_frag());
        assert_eq!(packet.frag_offset(), 1480);
        assert_eq!(Ipv4Repr::parse(&packet, &caps), Err(Error::Unsupported));
    }

    #[test]
    fn addresses() {
        assert!(Ipv4Address::UNSPECIFIED.is_unspecified());
        assert!(Ipv4Address::BROADCAST.is_broadcast());
        assert!(Ipv4Address::new(224, 0, 0, 251).is_multicast());
        assert!(Ipv4Address::new(239, 255, 255, 250).is_multicast());
        assert!(!Ipv4Address::new(240, 0, 0, 1).is_multicast());
        assert!(Ipv4Address::new(127, 0, 0, 1).is_loopback());
        assert!(Ipv4Address::new(169, 254, 1, 1).is_link_local());
        assert!(Ipv4Address::new(10, 1, 2, 3).is_unicast());
        assert_eq!(alloc::format!("{}", Ipv4Address::new(10, 1, 2, 3)), "10.1.2.3");
        let std_addr = core::net::Ipv4Addr::new(1, 2, 3, 4);
        assert_eq!(core::net::Ipv4Addr::from(Ipv4Address::from(std_addr)), std_addr);
    }
}
