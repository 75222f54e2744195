//! Property tests: whatever frames arrive, `Interface::poll` never panics, and every frame is
//! accounted for in the counters.

mod iface_common;

use cairn_net::device::Device;
use cairn_net::iface::{Interface, InterfaceConfig};
use cairn_net::loopback::{self, LoopbackConfig};
use cairn_net::wire::Ipv4Address;
use iface_common::*;
use proptest::prelude::*;

/// Valid frames of each kind B handles, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let udp = udp_bytes(IP_A, 1000, IP_B, 7, b"some data here", false);
    let ip = Ip::new(IP_A, IP_B, 17);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_A.0);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&MAC_A.0);
    arp.extend_from_slice(&IP_A.0);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&IP_B.0);
    let mut tcp = vec![0u8; 20];
    tcp[12] = 0x50;
    vec![
        ipv4_frame(MAC_A, MAC_B, &ip, &udp),
        ipv4_frame(MAC_A, MAC_B, &Ip { protocol: 1, ..ip }, &echo_request_bytes(1, 2, b"ping")),
        ipv4_frame(MAC_A, MAC_B, &Ip { more_frags: true, ..ip }, &udp[..16]),
        ipv4_frame(MAC_A, MAC_B, &Ip { frag_offset: 16, ..ip }, &udp[16..]),
        ipv4_frame(MAC_A, MAC_B, &Ip { protocol: 6, ..ip }, &tcp),
        ipv4_frame(MAC_A, MAC_B, &Ip { dst: Ipv4Address::BROADCAST, ..ip }, &udp),
        arp,
    ]
}

/// A frame: arbitrary bytes, or a valid one with some bytes overwritten and maybe cut short.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0..seeds().len(),
        proptest::collection::vec((0usize..200, any::<u8>()), 0..6),
        proptest::option::of(0usize..120),
    )
        .prop_map(|(seed, edits, cut)| {
            let mut f = seeds()[seed].clone();
            for (at, value) in edits {
                let len = f.len();
                f[at % len] = value;
            }
            if let Some(cut) = cut {
                f.truncate(cut);
            }
            f
        });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..1600), mutated]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn poll_never_panics(frames in proptest::collection::vec(frame(), 1..24), configured in any::<bool>()) {
        let (mut dev_a, mut dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
        let config_b = if configured { config(IP_B) } else { InterfaceConfig::default() };
        let mut b = Interface::new(config_b, &dev_b);
        let mut a = Interface::new(config(IP_A), &dev_a);
        b.udp_bind(7).unwrap();
        let mut now = 0;
        for f in &frames {
            dev_b.inject(f);
            b.poll(now, &mut dev_b);
            a.poll(now, &mut dev_a);
            now += 3_000_000_000;
        }
        b.poll(now + 60_000_000_000, &mut dev_b);
        let c = b.counters();
        prop_assert_eq!(c.rx_frames, dev_b.counters().rx_frames);
        // Every frame ended somewhere: delivered, answered, held, or dropped with a counter.
        let accounted = c.rx_truncated + c.rx_not_for_us + c.rx_unknown_ethertype + c.arp_malformed
            + c.arp_requests_rx + c.arp_replies_rx + c.ipv4_malformed + c.ipv4_bad_checksum
            + c.ipv4_ttl_zero + c.ipv4_not_for_us + c.ipv4_bad_source + c.frag_rx
            + c.ipv4_unknown_protocol + c.icmp_bad_checksum + c.icmp_malformed
            + c.icmp_echo_requests + c.icmp_broadcast_ignored + c.icmp_events
            + c.icmp_events_dropped + c.udp_malformed + c.udp_bad_checksum + c.udp_no_socket
            + c.udp_queue_full + c.udp_rx + c.tcp_malformed + c.tcp_bad_checksum + c.tcp_rx;
        prop_assert!(accounted >= c.rx_frames, "{} frames, {} accounted:\n{}", c.rx_frames, accounted, c);
    }
}
