//! The DHCP message (RFC 2131 §2, figure 1) and the options a client uses (RFC 2132), parsed
//! from untrusted bytes with every length checked before it is used, and emitted.
//!
//! Option overloading (option 52, options in `sname`/`file`) is not supported: such options are
//! ignored, which RFC 2131 permits for a client that did not ask for them.

use alloc::vec::Vec;

use crate::wire::{Error, EthernetAddress, Ipv4Address, Result};

/// Field offsets of the fixed part (RFC 2131 §2).
mod field {
    use core::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..34;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

/// The magic cookie that starts the options field (RFC 2131 §3, RFC 1497).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The smallest message: the fixed fields and the cookie.
pub const MIN_LEN: usize = field::OPTIONS;

/// BOOTP relays expect messages of at least 300 bytes (RFC 1542 §2.1); emitted messages are
/// padded to it.
const MIN_EMIT_LEN: usize = 300;

/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes (RFC 2132).
mod option {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const MAX_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    pub const END: u8 = 255;
}

/// The DHCP message type (option 53, RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client looks for servers.
    Discover,
    /// Server offers an address.
    Offer,
    /// Client asks for an offered address, or to extend its lease.
    Request,
    /// Client says the address is in use by someone else.
    Decline,
    /// Server grants the lease.
    Ack,
    /// Server refuses.
    Nak,
    /// Client gives the address back.
    Release,
    /// Client asks for configuration only.
    Inform,
}

impl MessageType {
    fn from_u8(value: u8) -> Option<MessageType> {
        Some(match value {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    fn to_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }

    /// Whether servers send this type (BOOTREPLY) rather than clients (BOOTREQUEST).
    fn is_reply(self) -> bool {
        matches!(self, MessageType::Offer | MessageType::Ack | MessageType::Nak)
    }
}

/// A parsed DHCP message: the fixed fields a client needs and the options it understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRepr {
    /// The message type (option 53).
    pub message_type: MessageType,
    /// The transaction ID that pairs replies with requests.
    pub xid: u32,
    /// Seconds since the client began acquiring or renewing.
    pub secs: u16,
    /// The broadcast flag: the client cannot take unicast before it is configured.
    pub broadcast: bool,
    /// The client's hardware address.
    pub client_hw: EthernetAddress,
    /// The client's current address (renewing, rebinding).
    pub ciaddr: Ipv4Address,
    /// "Your" address: the one offered or granted.
    pub yiaddr: Ipv4Address,
    /// The next server (boot server); unused by this client.
    pub siaddr: Ipv4Address,
    /// The relay agent's address.
    pub giaddr: Ipv4Address,
    /// The server identifier (option 54).
    pub server_id: Option<Ipv4Address>,
    /// The requested address (option 50).
    pub requested_ip: Option<Ipv4Address>,
    /// The subnet mask (option 1).
    pub subnet_mask: Option<Ipv4Address>,
    /// The first router (option 3).
    pub router: Option<Ipv4Address>,
    /// DNS servers (option 6), at most 3 kept.
    pub dns_servers: Vec<Ipv4Address>,
    /// Lease time in seconds (option 51); `u32::MAX` is infinite.
    pub lease_time: Option<u32>,
    /// T1, seconds until renewing (option 58).
    pub renewal_time: Option<u32>,
    /// T2, seconds until rebinding (option 59).
    pub rebinding_time: Option<u32>,
}

impl DhcpRepr {
    /// A client message of `message_type` with every optional field empty.
    pub fn client(message_type: MessageType, xid: u32, client_hw: EthernetAddress) -> DhcpRepr {
        DhcpRepr {
            message_type,
            xid,
            secs: 0,
            broadcast: false,
            client_hw,
            ciaddr: Ipv4Address::UNSPECIFIED,
            yiaddr: Ipv4Address::UNSPECIFIED,
            siaddr: Ipv4Address::UNSPECIFIED,
            giaddr: Ipv4Address::UNSPECIFIED,
            server_id: None,
            requested_ip: None,
            subnet_mask: None,
            router: None,
            dns_servers: Vec::new(),
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
        }
    }

    /// Parses untrusted bytes (a UDP payload): [`Error::Truncated`] if the fixed part, the
    /// cookie or an option runs past the end; [`Error::Malformed`] for a wrong cookie, an
    /// option of the wrong length, a missing or unknown message type, or an op that does not
    /// match it; [`Error::Unsupported`] for hardware other than Ethernet.
    pub fn parse(bytes: &[u8]) -> Result<DhcpRepr> {
        if bytes.len() < MIN_LEN {
            return Err(Error::Truncated);
        }
        if bytes[field::MAGIC] != MAGIC_COOKIE {
            return Err(Error::Malformed);
        }
        if bytes[field::HTYPE] != 1 || bytes[field::HLEN] != 6 {
            return Err(Error::Unsupported);
        }
        let addr = |range: core::ops::Range<usize>| Ipv4Address::from_bytes(&bytes[range]);
        let mut repr = DhcpRepr::client(
            MessageType::Discover,
            u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            EthernetAddress::from_bytes(&bytes[field::CHADDR]),
        );
        repr.secs = u16::from_be_bytes([bytes[field::SECS.start], bytes[field::SECS.start + 1]]);
        let flags = u16::from_be_bytes([bytes[field::FLAGS.start], bytes[field::FLAGS.start + 1]]);
        repr.broadcast = flags & FLAG_BROADCAST != 0;
        repr.ciaddr = addr(field::CIADDR);
        repr.yiaddr = addr(field::YIADDR);
        repr.siaddr = addr(field::SIADDR);
        repr.giaddr = addr(field::GIADDR);
        let mut message_type = None;
        let mut rest = &bytes[field::OPTIONS..];
        while let Some((&code, after)) = rest.split_first() {
            match code {
                option::PAD => {
                    rest = after;
                    continue;
                }
                option::END => break,
                _ => {}
            }
            let (&len, after) = after.split_first().ok_or(Error::Truncated)?;
            let len = usize::from(len);
            if after.len() < len {
                return Err(Error::Truncated);
            }
            let (data, after) = after.split_at(len);
            rest = after;
            let one_addr = || -> Result<Ipv4Address> {
                if data.len() != 4 {
                    return Err(Error::Malformed);
                }
                Ok(Ipv4Address::from_bytes(data))
            };
            let seconds = || -> Result<u32> {
                let array: [u8; 4] = data.try_into().map_err(|_| Error::Malformed)?;
                Ok(u32::from_be_bytes(array))
            };
            match code {
                option::MESSAGE_TYPE => {
                    let [value] = data else { return Err(Error::Malformed) };
                    message_type = Some(MessageType::from_u8(*value).ok_or(Error::Malformed)?);
                }
                option::SUBNET_MASK => repr.subnet_mask = Some(one_addr()?),
                option::SERVER_ID => repr.server_id = Some(one_addr()?),
                option::REQUESTED_IP => repr.requested_ip = Some(one_addr()?),
                option::ROUTER | option::DNS => {
                    if data.is_empty() || data.len() % 4 != 0 {
                        return Err(Error::Malformed);
                    }
                    let mut addrs = data.chunks_exact(4).map(Ipv4Address::from_bytes);
                    if code == option::ROUTER {
                        repr.router = addrs.next();
                    } else {
                        repr.dns_servers = addrs.take(3).collect();
                    }
                }
                option::LEASE_TIME => repr.lease_time = Some(seconds()?),
                option::RENEWAL_TIME => repr.renewal_time = Some(seconds()?),
                option::REBINDING_TIME => repr.rebinding_time = Some(seconds()?),
                _ => {}
            }
        }
        repr.message_type = message_type.ok_or(Error::Malformed)?;
        let op = bytes[field::OP];
        if op != if repr.message_type.is_reply() { 2 } else { 1 } {
            return Err(Error::Malformed);
        }
        Ok(repr)
    }

    /// The options this emits, as (code, bytes) pairs.
    fn options(&self) -> impl Iterator<Item = (u8, Vec<u8>)> + '_ {
        let addr = |a: Option<Ipv4Address>| a.map(|a| a.0.to_vec());
        let secs = |s: Option<u32>| s.map(|s| s.to_be_bytes().to_vec());
        let is_client = !self.message_type.is_reply();
        let mut client_id = alloc::vec![1u8];
        client_id.extend_from_slice(&self.client_hw.0);
        let dns: Vec<u8> = self.dns_servers.iter().flat_map(|a| a.0).collect();
        [
            (option::MESSAGE_TYPE, Some(alloc::vec![self.message_type.to_u8()])),
            (option::CLIENT_ID, is_client.then_some(client_id)),
            (option::REQUESTED_IP, addr(self.requested_ip)),
            (option::SERVER_ID, addr(self.server_id)),
            (option::LEASE_TIME, secs(self.lease_time)),
            (option::RENEWAL_TIME, secs(self.renewal_time)),
            (option::REBINDING_TIME, secs(self.rebinding_time)),
            (option::SUBNET_MASK, addr(self.subnet_mask)),
            (option::ROUTER, addr(self.router)),
            (option::DNS, (!dns.is_empty()).then_some(dns)),
            (
                option::PARAMETER_LIST,
                is_client.then(|| {
                    alloc::vec![
                        option::SUBNET_MASK,
                        option::ROUTER,
                        option::DNS,
                        option::LEASE_TIME,
                        option::RENEWAL_TIME,
                        option::REBINDING_TIME
                    ]
                }),
            ),
            (option::MAX_SIZE, is_client.then(|| 1500u16.to_be_bytes().to_vec())),
        ]
        .into_iter()
        .filter_map(|(code, data)| data.map(|d| (code, d)))
    }

    /// The length of the message [`DhcpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let options: usize = self.options().map(|(_, d)| 2 + d.len()).sum();
        (MIN_LEN + options + 1).max(MIN_EMIT_LEN)
    }

    /// Writes the message into `buf`, which must be [`DhcpRepr::buffer_len`] bytes long.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`DhcpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        buf[field::OP] = if self.message_type.is_reply() { 2 } else { 1 };
        buf[field::HTYPE] = 1;
        buf[field::HLEN] = 6;
        buf[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        buf[field::SECS].copy_from_slice(&self.secs.to_be_bytes());
        let flags = if self.broadcast { FLAG_BROADCAST } else { 0 };
        buf[field::FLAGS].copy_from_slice(&flags.to_be_bytes());
        buf[field::CIADDR].copy_from_slice(&self.ciaddr.0);
        buf[field::YIADDR].copy_from_slice(&self.yiaddr.0);
        buf[field::SIADDR].copy_from_slice(&self.siaddr.0);
        buf[field::GIADDR].copy_from_slice(&self.giaddr.0);
        buf[field::CHADDR].copy_from_slice(&self.client_hw.0);
        buf[field::MAGIC].copy_from_slice(&MAGIC_COOKIE);
        let mut at = field::OPTIONS;
        for (code, data) in self.options() {
            buf[at] = code;
            // Every option this emits is at most 16 bytes.
            buf[at + 1] = data.len() as u8;
            buf[at + 2..at + 2 + data.len()].copy_from_slice(&data);
            at += 2 + data.len();
        }
        buf[at] = option::END;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    /// An ACK written byte by byte from RFC 2131 figure 1 and RFC 2132.
    fn ack_bytes() -> Vec<u8> {
        let mut b = alloc::vec![0u8; 240];
        b[0] = 2;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        b[16..20].copy_from_slice(&[192, 168, 1, 50]);
        b[28..34].copy_from_slice(&MAC.0);
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 5]);
        b.extend_from_slice(&[0, 0]); // pads
        b.extend_from_slice(&[54, 4, 192, 168, 1, 1]);
        b.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
        b.extend_from_slice(&[3, 8, 192, 168, 1, 1, 192, 168, 1, 2]);
        b.extend_from_slice(&[6, 4, 8, 8, 8, 8]);
        b.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]);
        b.extend_from_slice(&[12, 3, b'f', b'o', b'o']); // host name: ignored
        b.push(255);
        b
    }

    #[test]
    fn parses_a_hand_written_ack() {
        let repr = DhcpRepr::parse(&ack_bytes()).unwrap();
        assert_eq!(repr.message_type, MessageType::Ack);
        assert_eq!(repr.xid, 0xdead_beef);
        assert_eq!(repr.client_hw, MAC);
        assert_eq!(repr.yiaddr, Ipv4Address::new(192, 168, 1, 50));
        assert_eq!(repr.server_id, Some(Ipv4Address::new(192, 168, 1, 1)));
        assert_eq!(repr.subnet_mask, Some(Ipv4Address::new(255, 255, 255, 0)));
        assert_eq!(repr.router, Some(Ipv4Address::new(192, 168, 1, 1)));
        assert_eq!(repr.dns_servers, [Ipv4Address::new(8, 8, 8, 8)]);
        assert_eq!(repr.lease_time, Some(3600));
        assert_eq!(repr.renewal_time, None);
    }

    #[test]
    fn emits_what_it_parses() {
        let mut repr = DhcpRepr::client(MessageType::Request, 7, MAC);
        repr.requested_ip = Some(Ipv4Address::new(10, 0, 0, 9));
        repr.server_id = Some(Ipv4Address::new(10, 0, 0, 1));
        repr.broadcast = true;
        repr.secs = 3;
        let mut buf = alloc::vec![0u8; repr.buffer_len()];
        assert_eq!(buf.len(), 300);
        repr.emit(&mut buf);
        assert_eq!(DhcpRepr::parse(&buf), Ok(repr));
        assert_eq!(buf[0], 1, "BOOTREQUEST");
    }

    #[test]
    fn every_length_is_checked() {
        let good = ack_bytes();
        assert_eq!(DhcpRepr::parse(&good[..239]), Err(Error::Truncated));
        // An option whose length runs past the end.
        let mut cut = good[..243].to_vec();
        cut.extend_from_slice(&[54, 4, 1, 2]);
        assert_eq!(DhcpRepr::parse(&cut), Err(Error::Truncated));
        // A lone option code with no length byte.
        let mut lone = good[..243].to_vec();
        lone.push(54);
        assert_eq!(DhcpRepr::parse(&lone), Err(Error::Truncated));
        // Wrong fixed lengths.
        for (code, len) in [(54u8, 3u8), (53, 2), (51, 2), (3, 5), (6, 0), (1, 8)] {
            let mut bad = good[..243].to_vec();
            bad.push(code);
            bad.push(len);
            bad.extend(core::iter::repeat_n(1u8, usize::from(len)));
            bad.push(255);
            assert_eq!(DhcpRepr::parse(&bad), Err(Error::Malformed), "option {code} len {len}");
        }
        let mut cookie = good.clone();
        cookie[236] = 0;
        assert_eq!(DhcpRepr::parse(&cookie), Err(Error::Malformed));
        let mut no_type = good[..240].to_vec();
        no_type.push(255);
        assert_eq!(DhcpRepr::parse(&no_type), Err(Error::Malformed));
        let mut wrong_op = good.clone();
        wrong_op[0] = 1;
        assert_eq!(DhcpRepr::parse(&wrong_op), Err(Error::Malformed));
        let mut token_ring = good;
        token_ring[1] = 6;
        assert_eq!(DhcpRepr::parse(&token_ring), Err(Error::Unsupported));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut bytes = ack_bytes()[..240].to_vec();
            bytes.extend_from_slice(&tail);
            let _ = DhcpRepr::parse(&bytes);
            let _ = DhcpRepr::parse(&tail);
        }
    }
}
