//! ICMPv4 (RFC 792, host rules of RFC 1122 §3.2.2): echo replies that hand the request's data
//! back as a view of the received frame (no copy), destination-unreachable messages quoting the
//! offending datagram's header and first 8 data bytes, and the events an application sees:
//! echo replies for its pings and errors about what it sent.

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::ipv4::{chain_sum, prepend, HEADROOM};
use crate::wire::checksum;
use crate::wire::icmpv4::HEADER_LEN;
use crate::wire::{ChecksumCapabilities, Icmpv4Message, Icmpv4Packet, Ipv4Address};

/// Something ICMP told the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcmpEvent {
    /// An answer to a ping sent with [`Interface::ping`](super::Interface::ping).
    EchoReply {
        /// Who answered.
        from: Ipv4Address,
        /// The identifier of the request.
        ident: u16,
        /// The sequence number of the request.
        seq_no: u16,
        /// The echoed data, a view of the received frame.
        data: SharedIoBuf,
        /// When the reply was taken from the device (the `now_ns` of that poll).
        received_ns: u64,
    },
    /// A destination-unreachable message (RFC 792 type 3) about a datagram we sent.
    DstUnreachable {
        /// The host or router that sent it.
        from: Ipv4Address,
        /// 0 net, 1 host, 2 protocol, 3 port, 4 fragmentation needed...
        code: u8,
        /// The quoted header and first data bytes of our datagram.
        quoted: SharedIoBuf,
    },
    /// A time-exceeded message (RFC 792 type 11) about a datagram we sent.
    TimeExceeded {
        /// The router or host that sent it.
        from: Ipv4Address,
        /// 0 TTL exceeded in transit, 1 reassembly time exceeded.
        code: u8,
        /// The quoted header and first data bytes of our datagram.
        quoted: SharedIoBuf,
    },
}

/// Builds an ICMP message: the 8-byte header (type, code, the 4 rest-of-header bytes) in front
/// of `data`, with the checksum over both unless `caps` leaves it to the device.
fn message(
    msg_type: Icmpv4Message,
    code: u8,
    rest: u32,
    mut data: IoBufChain,
    caps: &ChecksumCapabilities,
) -> IoBufChain {
    let mut header = [0u8; HEADER_LEN];
    let mut packet = Icmpv4Packet::new_unchecked(&mut header[..]);
    packet.set_msg_type(msg_type);
    packet.set_msg_code(code);
    packet.set_rest_of_header(rest);
    packet.set_checksum(0);
    if caps.icmpv4.fill() {
        let sum = checksum::combine(&[checksum::sum(&header), chain_sum(&data)]);
        Icmpv4Packet::new_unchecked(&mut header[..]).set_checksum(!sum);
    }
    prepend(&mut data, HEADER_LEN, HEADROOM, |h| h.copy_from_slice(&header));
    data
}

/// The two echo fields packed as the rest-of-header word.
fn echo_rest(ident: u16, seq_no: u16) -> u32 {
    (u32::from(ident) << 16) | u32::from(seq_no)
}

/// An echo request carrying `data` (RFC 792, type 8).
pub fn echo_request(
    ident: u16,
    seq_no: u16,
    data: IoBufChain,
    caps: &ChecksumCapabilities,
) -> IoBufChain {
    message(Icmpv4Message::EchoRequest, 0, echo_rest(ident, seq_no), data, caps)
}

/// The reply to an echo request (RFC 792, type 0): same identifier, sequence number and data;
/// the data is the request's own buffer, not a copy.
pub fn echo_reply(
    ident: u16,
    seq_no: u16,
    data: SharedIoBuf,
    caps: &ChecksumCapabilities,
) -> IoBufChain {
    message(Icmpv4Message::EchoReply, 0, echo_rest(ident, seq_no), IoBufChain::from(data), caps)
}

/// A destination-unreachable message (RFC 792, type 3) with `code`, quoting `ip_header` and the
/// first 8 bytes of `payload` (RFC 792: "the internet header plus the first 64 bits of the
/// original datagram's data"; RFC 1812 allows more, RFC 792 asks no more).
pub fn dst_unreachable(
    code: u8,
    ip_header: &[u8],
    payload: &SharedIoBuf,
    caps: &ChecksumCapabilities,
) -> IoBufChain {
    let mut quoted = IoBufChain::from(SharedIoBuf::copy_from_slice(ip_header));
    let mut first = payload.clone();
    first.truncate(8);
    quoted.push_back(first);
    message(Icmpv4Message::DstUnreachable, code, 0, quoted, caps)
}

/// The port-unreachable code of destination unreachable (RFC 792).
pub const PORT_UNREACHABLE: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Icmpv4Repr;

    #[test]
    fn echo_round_trip_with_odd_segments() {
        let caps = ChecksumCapabilities::default();
        let mut data = IoBufChain::from(SharedIoBuf::copy_from_slice(b"abc"));
        data.push_back(SharedIoBuf::copy_from_slice(b"defgh"));
        let message = echo_request(7, 9, data, &caps).to_vec();
        let packet = Icmpv4Packet::new_checked(&message[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, &caps),
            Ok(Icmpv4Repr::EchoRequest { ident: 7, seq_no: 9, data_len: 8 })
        );
        assert_eq!(packet.data(), b"abcdefgh");
    }

    #[test]
    fn reply_shares_the_request_data() {
        let caps = ChecksumCapabilities::default();
        let data = SharedIoBuf::copy_from_slice(b"payload!");
        let reply = echo_reply(1, 2, data.clone(), &caps);
        assert!(reply.segments().any(|s| s.as_ptr() == data.as_ptr()));
        let bytes = reply.to_vec();
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(packet.msg_type(), Icmpv4Message::EchoReply);
    }

    #[test]
    fn unreachable_quotes_header_and_eight_bytes() {
        let caps = ChecksumCapabilities::default();
        let header = [0x45u8; 20];
        let payload = SharedIoBuf::copy_from_slice(b"0123456789abcdef");
        let bytes = dst_unreachable(PORT_UNREACHABLE, &header, &payload, &caps).to_vec();
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, &caps),
            Ok(Icmpv4Repr::DstUnreachable { code: 3, data_len: 28 })
        );
        assert_eq!(&packet.data()[20..], b"01234567");
    }
}
