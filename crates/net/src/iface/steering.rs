//! Per-core flow steering: which core owns a received frame, so that a connection lives on the
//! core its flow hashes to (the "per-core ownership"; EbbRT, papers/001 §3.4, keeps
//! each connection on one core so its state needs no lock).
//!
//! The decision, per kind of frame:
//! - **TCP and UDP**: the TCP stack's [`flow_hash`](crate::tcp::flow_hash) of the 4-tuple *as
//!   it arrives* `(src, src_port, dst, dst_port)`, modulo the number of cores. It is the hash
//!   [`TcpStack::connect`](crate::tcp::TcpStack::connect) uses to pick an ephemeral port whose
//!   replies come back to the connecting core, so steering and TCP agree by construction; UDP
//!   uses the same hash.
//! - **ARP**: every core ([`FlowTarget::AllCores`]), because each core's
//!   [`Interface`](super::Interface) keeps its own ARP cache and must learn its neighbours.
//! - **ICMP, IPv4 fragments, other protocols, malformed frames**: core 0. Fragments after the
//!   first carry no ports, so the datagram is reassembled on core 0 and delivered there; a UDP
//!   socket that must see fragmented datagrams should live on core 0.

use crate::wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet};

/// Which cores should see a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowTarget {
    /// One core, by index.
    Core(usize),
    /// Every core (ARP).
    AllCores,
}

/// The core, among `cores` (0 if `cores` is 0), that owns a flow arriving as
/// `src:src_port → dst:dst_port`.
pub fn flow_core(
    src: Ipv4Address,
    src_port: u16,
    dst: Ipv4Address,
    dst_port: u16,
    cores: usize,
) -> usize {
    if cores == 0 {
        return 0;
    }
    (crate::tcp::flow_hash(src, src_port, dst, dst_port) as usize) % cores
}

/// Which of `cores` cores should handle the received Ethernet `frame` (see the module
/// documentation for the rules). Never panics, whatever the bytes.
pub fn steer(frame: &[u8], cores: usize) -> FlowTarget {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return FlowTarget::Core(0) };
    match eth.ethertype() {
        EtherType::Arp => return FlowTarget::AllCores,
        EtherType::Ipv4 => {}
        _ => return FlowTarget::Core(0),
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return FlowTarget::Core(0) };
    if ip.is_fragment() || !matches!(ip.protocol(), IpProtocol::Tcp | IpProtocol::Udp) {
        return FlowTarget::Core(0);
    }
    let ports = ip.payload();
    if ports.len() < 4 {
        return FlowTarget::Core(0);
    }
    let src_port = u16::from_be_bytes([ports[0], ports[1]]);
    let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
    FlowTarget::Core(flow_core(ip.src_addr(), src_port, ip.dst_addr(), dst_port, cores))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    fn frame(protocol: u8, frag: bool, ports: (u16, u16)) -> [u8; 38] {
        let mut f = [0u8; 38];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&24u16.to_be_bytes());
        if frag {
            ip[6] = 0x20;
        }
        ip[9] = protocol;
        ip[12..16].copy_from_slice(&A.0);
        ip[16..20].copy_from_slice(&B.0);
        f[34..36].copy_from_slice(&ports.0.to_be_bytes());
        f[36..38].copy_from_slice(&ports.1.to_be_bytes());
        f
    }

    #[test]
    fn flows_spread_and_agree_with_tcp() {
        let mut seen = [0usize; 4];
        for port in 0..4000 {
            let core = flow_core(A, port, B, 80, 4);
            assert_eq!(core as u32, crate::tcp::flow_hash(A, port, B, 80) % 4);
            seen[core] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(flow_core(A, 1, B, 2, 0), 0);
    }

    #[test]
    fn steering_rules() {
        let tcp = frame(6, false, (1000, 80));
        assert_eq!(steer(&tcp, 4), FlowTarget::Core(flow_core(A, 1000, B, 80, 4)));
        assert_eq!(steer(&frame(1, false, (0, 0)), 4), FlowTarget::Core(0));
        assert_eq!(steer(&frame(17, true, (1, 2)), 4), FlowTarget::Core(0));
        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(steer(&arp, 4), FlowTarget::AllCores);
        assert_eq!(steer(&tcp[..20], 4), FlowTarget::Core(0));
    }
}
