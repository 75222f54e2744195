//! Property tests for every protocol: untrusted bytes never panic a checked view, emitted reprs
//! parse back equal, and flipping any bit of a checksummed packet fails verification.

use alloc::vec;
use alloc::vec::Vec;

use proptest::collection::vec as bytes_vec;
use proptest::option;
use proptest::prelude::*;

use super::*;

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    bytes_vec(any::<u8>(), 0..128)
}

fn ipv4_addr() -> impl Strategy<Value = Ipv4Address> {
    any::<[u8; 4]>().prop_map(Ipv4Address)
}

fn eth_addr() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn caps() -> impl Strategy<Value = ChecksumCapabilities> {
    prop_oneof![Just(ChecksumCapabilities::software()), Just(ChecksumCapabilities::offloaded())]
}

/// Calls every getter of every view that `new_checked` accepts over `bytes`, and every
/// `Repr::parse`; the test is that nothing panics.
fn read_everything(bytes: &[u8], src: Ipv4Address, dst: Ipv4Address, caps: &ChecksumCapabilities) {
    if let Ok(f) = EthernetFrame::new_checked(bytes) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload());
        let _ = EthernetRepr::parse(&f);
    }
    if let Ok(p) = ArpPacket::new_checked(bytes) {
        let _ = (p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len());
        let _ = (p.operation(), p.source_hardware_addr(), p.source_protocol_addr());
        let _ = (p.target_hardware_addr(), p.target_protocol_addr());
        let _ = ArpRepr::parse(&p);
    }
    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
        let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl());
        let _ = (p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.verify_checksum());
        let _ = (p.options(), p.payload());
        let _ = Ipv4Repr::parse(&p, caps);
    }
    if let Ok(p) = Icmpv4Packet::new_checked(bytes) {
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header());
        let _ = (p.echo_ident(), p.echo_seq_no(), p.data(), p.verify_checksum());
        let _ = Icmpv4Repr::parse(&p, caps);
    }
    if let Ok(p) = UdpPacket::new_checked(bytes) {
        let _ = (p.src_port(), p.dst_port(), p.length(), p.checksum(), p.payload());
        let _ = p.verify_checksum(src, dst);
        let _ = UdpRepr::parse(&p, src, dst, caps);
    }
    if let Ok(p) = TcpPacket::new_checked(bytes) {
        let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len());
        let _ = (p.flags(), p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg());
        let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload());
        let _ = (p.segment_len(), p.verify_checksum(src, dst));
        for option in p.options_iter() {
            let _ = option;
        }
        let _ = TcpRepr::parse(&p, src, dst, caps);
    }
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    (
        (any::<u16>(), any::<u16>(), any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>()),
        (any::<u16>(), option::of(any::<u16>()), option::of(0..=MAX_SCALE), any::<bool>()),
        (
            option::of((any::<u32>(), any::<u32>())),
            0..64usize,
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        ),
    )
        .prop_map(
            |((sp, dp, flags, seq, ack, win), (urg, mss, ws, sack), (ts, len, blocks))| {
                // SACK blocks ride on ACKs, the SYN options on SYNs: both never fill the 40 bytes,
                // and three blocks fit beside timestamps.
                let (mss, ws, sack, blocks) = if blocks.is_empty() {
                    (mss, ws, sack, blocks)
                } else {
                    let fit = if ts.is_some() { 3 } else { 4 };
                    (None, None, false, blocks.into_iter().take(fit).collect())
                };
                let mut sack_blocks = tcp::SackBlocks::new();
                for (left, right) in blocks {
                    sack_blocks.push(left, right);
                }
                TcpRepr {
                    src_port: sp,
                    dst_port: dp,
                    flags: TcpFlags(flags),
                    seq_number: seq,
                    ack_number: ack,
                    window_len: win,
                    urgent_at: urg,
                    max_seg_size: mss,
                    window_scale: ws,
                    sack_permitted: sack,
                    sack_blocks,
                    timestamps: ts.map(|(tsval, tsecr)| TcpTimestamps { tsval, tsecr }),
                    payload_len: len,
                }
            },
        )
}

const MAX_SCALE: u8 = tcp::MAX_WINDOW_SCALE;

fn icmp_repr() -> impl Strategy<Value = Icmpv4Repr> {
    (0..4u8, any::<u16>(), any::<u16>(), any::<u8>(), 0..64usize).prop_map(
        |(kind, ident, seq_no, code, data_len)| match kind {
            0 => Icmpv4Repr::EchoRequest { ident, seq_no, data_len },
            1 => Icmpv4Repr::EchoReply { ident, seq_no, data_len },
            2 => Icmpv4Repr::DstUnreachable { code, data_len },
            _ => Icmpv4Repr::TimeExceeded { code, data_len },
        },
    )
}

/// Flips bit `bit` (taken modulo the length) of `bytes`.
fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #[test]
    fn untrusted_bytes_never_panic(
        bytes in any_bytes(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        caps in caps(),
    ) {
        read_everything(&bytes, src, dst, &caps);
    }

    /// Plausible headers reach deeper than random bytes: start from a valid TCP/IPv4 header
    /// with options and corrupt a few bytes.
    #[test]
    fn corrupted_headers_never_panic(
        repr in tcp_repr(),
        edits in bytes_vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), src, dst, &Default::default(), |_| {});
        for (at, value) in edits {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        read_everything(&bytes, src, dst, &ChecksumCapabilities::software());
        read_everything(&bytes, src, dst, &ChecksumCapabilities::offloaded());
    }

    #[test]
    fn ethernet_round_trip(src in eth_addr(), dst in eth_addr(), ethertype in any::<u16>()) {
        let repr = EthernetRepr { src_addr: src, dst_addr: dst, ethertype: ethertype.into() };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]));
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&frame), Ok(repr));
    }

    #[test]
    fn arp_round_trip(
        op in any::<u16>(),
        sha in eth_addr(),
        spa in ipv4_addr(),
        tha in eth_addr(),
        tpa in ipv4_addr(),
    ) {
        let repr = ArpRepr {
            operation: op.into(),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&bytes[..]).unwrap()), Ok(repr));
    }

    #[test]
    fn ipv4_round_trip(
        src in ipv4_addr(),
        dst in ipv4_addr(),
        protocol in any::<u8>(),
        payload_len in 0..1500usize,
        ttl in any::<u8>(),
        caps in caps(),
    ) {
        let repr =
            Ipv4Repr { src_addr: src, dst_addr: dst, protocol: protocol.into(), payload_len, ttl };
        let mut bytes = vec![0u8; repr.buffer_len() + payload_len];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]), &caps);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&packet, &caps), Ok(repr));
    }

    #[test]
    fn icmpv4_round_trip(repr in icmp_repr(), fill in any::<u8>(), caps in caps()) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]), &caps, |d| d.fill(fill));
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&packet, &caps), Ok(repr));
    }

    #[test]
    fn udp_round_trip(
        src_port in any::<u16>(),
        dst_port in any::<u16>(),
        payload in bytes_vec(any::<u8>(), 0..64),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        caps in caps(),
    ) {
        let repr = UdpRepr { src_port, dst_port, payload_len: payload.len() };
        let mut bytes = vec![0u8; repr.buffer_len()];
        let mut packet = UdpPacket::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, src, dst, &caps, |p| p.copy_from_slice(&payload));
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&packet, src, dst, &caps), Ok(repr));
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn tcp_round_trip(
        repr in tcp_repr(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        fill in any::<u8>(),
        caps in caps(),
    ) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        let mut packet = TcpPacket::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, src, dst, &caps, |p| p.fill(fill));
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(TcpRepr::parse(&packet, src, dst, &caps), Ok(repr));
    }

    #[test]
    fn ipv4_bit_flip_fails_checksum(
        src in ipv4_addr(),
        dst in ipv4_addr(),
        ttl in any::<u8>(),
        bit in 0..160usize,
    ) {
        let repr =
            Ipv4Repr { src_addr: src, dst_addr: dst, protocol: IpProtocol::Tcp, payload_len: 0, ttl };
        let mut bytes = vec![0u8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]), &Default::default());
        flip(&mut bytes, bit);
        // A flip in IHL or Total Length may make the view refuse the bytes: detected too.
        if let Ok(packet) = Ipv4Packet::new_checked(&bytes[..]) {
            prop_assert!(!packet.verify_checksum());
        }
    }

    #[test]
    fn icmpv4_bit_flip_fails_checksum(repr in icmp_repr(), fill in any::<u8>(), bit in any::<usize>()) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]), &Default::default(), |d| {
            d.fill(fill)
        });
        flip(&mut bytes, bit);
        prop_assert!(!Icmpv4Packet::new_unchecked(&bytes[..]).verify_checksum());
    }

    #[test]
    fn udp_bit_flip_fails_checksum(
        src_port in any::<u16>(),
        dst_port in any::<u16>(),
        payload in bytes_vec(any::<u8>(), 0..64),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        bit in any::<usize>(),
    ) {
        let repr = UdpRepr { src_port, dst_port, payload_len: payload.len() };
        let mut bytes = vec![0u8; repr.buffer_len()];
        let mut packet = UdpPacket::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, src, dst, &Default::default(), |p| p.copy_from_slice(&payload));
        flip(&mut bytes, bit);
        let caps = ChecksumCapabilities::default();
        // The flip may break the Length field (then the view refuses the bytes), or clear the
        // checksum to zero, which over IPv4 means "none computed" and legitimately passes.
        if let Ok(packet) = UdpPacket::new_checked(&bytes[..]) {
            if packet.checksum() != 0 {
                prop_assert_eq!(UdpRepr::parse(&packet, src, dst, &caps), Err(Error::Checksum));
            }
        }
    }

    #[test]
    fn tcp_bit_flip_fails_checksum(
        repr in tcp_repr(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        fill in any::<u8>(),
        bit in any::<usize>(),
    ) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        let mut packet = TcpPacket::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet, src, dst, &Default::default(), |p| p.fill(fill));
        flip(&mut bytes, bit);
        prop_assert!(!TcpPacket::new_unchecked(&bytes[..]).verify_checksum(src, dst));
    }
}
