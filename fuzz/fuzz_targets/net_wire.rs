//! cairn-net's wire views on arbitrary frames: every layer from Ethernet down to TCP, UDP, ICMP
//! and ARP parses untrusted bytes without panicking, with checksums verified and skipped; and
//! the per-core steering decision on the same bytes names a core that exists; and software
//! segmentation (what a TSO device does) either refuses the bytes or cuts them into pieces
//! that carry the payload whole, none longer than asked.
#![no_main]

use cairn_net::wire::{
    ArpPacket, ArpRepr, ChecksumCapabilities, EtherType, EthernetFrame, EthernetRepr,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket,
    UdpRepr,
};
use cairn_net::iface::{steer, FlowTarget};
use cairn_net::segment::{segment_tcp, TcpFrameLayout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for cores in [1, 2, 3, 64] {
        if let FlowTarget::Core(core) = steer(data, cores) {
            assert!(core < cores, "steered to core {core} of {cores}");
        }
    }
    if let Some(&size) = data.first() {
        let size = u16::from(size % 64) + 1;
        let layout = TcpFrameLayout::parse(data);
        let mut payload = 0usize;
        let cut = segment_tcp(data, size, |piece| {
            let headers = layout.expect("segmented, so parsed").len;
            assert!(piece.len() - headers <= usize::from(size));
            payload += piece.len() - headers;
        });
        if cut.is_ok() {
            let layout = layout.expect("parsed");
            assert_eq!(payload, layout.end - layout.len);
        }
    }
    for caps in [ChecksumCapabilities::software(), ChecksumCapabilities::offloaded()] {
        let Ok(frame) = EthernetFrame::new_checked(data) else { return };
        let _ = EthernetRepr::parse(&frame);
        let payload = frame.payload();
        match frame.ethertype() {
            EtherType::Arp => {
                if let Ok(p) = ArpPacket::new_checked(payload) {
                    let _ = ArpRepr::parse(&p);
                }
            }
            EtherType::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(payload) else { continue };
                let _ = Ipv4Repr::parse(&ip, &caps);
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                let body = ip.payload();
                match ip.protocol() {
                    IpProtocol::Tcp => {
                        if let Ok(p) = TcpPacket::new_checked(body) {
                            let _ = p.options_iter().count();
                            let _ = TcpRepr::parse(&p, src, dst, &caps);
                        }
                    }
                    IpProtocol::Udp => {
                        if let Ok(p) = UdpPacket::new_checked(body) {
                            let _ = UdpRepr::parse(&p, src, dst, &caps);
                        }
                    }
                    IpProtocol::Icmp => {
                        if let Ok(p) = Icmpv4Packet::new_checked(body) {
                            let _ = Icmpv4Repr::parse(&p, &caps);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
});
