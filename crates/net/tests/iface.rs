//! Two cairn interfaces over the in-memory link: ARP, ping, UDP, fragments, ICMP errors, and
//! the drop counters, with frames built by hand where the test needs a bad one.

mod iface_common;

use cairn_net::device::Device;
use cairn_net::iface::{IcmpEvent, Interface, InterfaceConfig, Ipv4Cidr, SendError, UdpError};
use cairn_net::loopback::{self, LoopbackConfig};
use cairn_net::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, Ipv4Address,
    Ipv4Packet,
};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};
use iface_common::*;

#[test]
fn arp_resolves_and_releases_queued_packets_in_order() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(5000).unwrap();
    let tx = net.a.udp_bind(0).unwrap();
    for i in 0..3u8 {
        net.a.udp_send_to(tx, IP_B, 5000, chain(&[i; 10])).unwrap();
    }
    net.settle();
    for i in 0..3u8 {
        let d = net.b.udp_recv(rx).unwrap().expect("datagram");
        assert_eq!((d.src, d.src_port, d.dst), (IP_A, tx.port(), IP_B));
        assert_eq!(d.data.as_slice(), &[i; 10]);
    }
    assert_eq!(net.a.counters().arp_requests_tx, 1);
    assert_eq!(net.b.counters().arp_replies_tx, 1);
    assert_eq!(net.a.counters().arp_replies_rx, 1);
    assert_eq!(net.a.arp_entries().collect::<Vec<_>>(), [(IP_B, MAC_B)]);
    // B learned A from the request addressed to it, so its own sends need no request.
    assert_eq!(net.b.arp_entries().collect::<Vec<_>>(), [(IP_A, MAC_A)]);
    net.b.udp_send_to(rx, IP_A, tx.port(), chain(b"back")).unwrap();
    net.settle();
    assert_eq!(net.a.udp_recv(tx).unwrap().unwrap().data.as_slice(), b"back");
    assert_eq!(net.b.counters().arp_requests_tx, 0);
}

#[test]
fn arp_queue_is_bounded_and_unanswered_requests_give_up() {
    let mut net = Pair::new(LoopbackConfig::default());
    let tx = net.a.udp_bind(0).unwrap();
    let nobody = Ipv4Address::new(10, 0, 0, 99);
    for _ in 0..10 {
        net.a.udp_send_to(tx, nobody, 9, chain(b"lost")).unwrap();
    }
    net.settle();
    // 8 queued (the default per destination), 2 dropped at once.
    assert_eq!(net.a.counters().arp_queue_drops, 2);
    let gave_up = net.run_until(100, |n| n.a.counters().arp_failures == 1);
    assert!(gave_up);
    let c = net.a.counters();
    assert_eq!(c.arp_requests_tx, 4, "the first request and 3 retries");
    assert_eq!(c.arp_queue_drops, 10);
    assert_eq!(net.a.next_deadline(), None);
}

#[test]
fn arp_entries_expire_and_are_asked_for_again() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(7).unwrap();
    let tx = net.a.udp_bind(0).unwrap();
    net.a.udp_send_to(tx, IP_B, 7, chain(b"1")).unwrap();
    net.settle();
    net.advance(61_000 * MS);
    net.a.udp_send_to(tx, IP_B, 7, chain(b"2")).unwrap();
    net.settle();
    assert_eq!(net.a.counters().arp_requests_tx, 2);
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"1");
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"2");
}

#[test]
fn gratuitous_arp_on_start_and_on_new_address() {
    let (mut dev_a, mut dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let mut a = Interface::new(InterfaceConfig { gratuitous_arp: true, ..config(IP_A) }, &dev_a);
    a.poll(0, &mut dev_a);
    a.set_ipv4(Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 7), 24));
    assert_eq!(a.next_deadline(), Some(0));
    a.poll(1, &mut dev_a);
    let frames = drain(&mut dev_b);
    assert_eq!(frames.len(), 2);
    for (frame, ip) in frames.iter().zip([IP_A, Ipv4Address::new(10, 0, 0, 7)]) {
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert!(eth.dst_addr().is_broadcast());
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(arp.operation, ArpOperation::Request);
        assert_eq!((arp.source_protocol_addr, arp.target_protocol_addr), (ip, ip));
    }
}

#[test]
fn ping_both_ways() {
    let mut net = Pair::new(LoopbackConfig::default());
    net.a.ping(net.now, IP_B, 0x77, 1, chain(b"from a")).unwrap();
    net.b.ping(net.now, IP_A, 0x88, 2, chain(b"from b, odd")).unwrap();
    net.settle();
    match net.a.recv_icmp() {
        Some(IcmpEvent::EchoReply { from, ident, seq_no, data, .. }) => {
            assert_eq!((from, ident, seq_no), (IP_B, 0x77, 1));
            assert_eq!(data.as_slice(), b"from a");
        }
        other => panic!("{other:?}"),
    }
    match net.b.recv_icmp() {
        Some(IcmpEvent::EchoReply { from, ident, seq_no, data, .. }) => {
            assert_eq!((from, ident, seq_no), (IP_A, 0x88, 2));
            assert_eq!(data.as_slice(), b"from b, odd");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(net.a.counters().icmp_echo_requests, 1);
    assert_eq!(net.b.counters().icmp_echo_requests, 1);
    assert!(net.a.recv_icmp().is_none());
}

#[test]
fn large_ping_is_fragmented_and_reassembled_both_ways() {
    let mut net = Pair::new(LoopbackConfig::default());
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    net.a.ping(0, IP_B, 1, 1, chain(&data)).unwrap();
    net.settle();
    match net.a.recv_icmp() {
        Some(IcmpEvent::EchoReply { data: reply, .. }) => assert_eq!(reply.as_slice(), &data[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(net.a.counters().ipv4_fragmented_tx, 1);
    assert_eq!(net.b.counters().frag_reassembled, 1);
    assert_eq!(net.b.counters().frag_rx, 4);
    assert_eq!(net.a.counters().frag_reassembled, 1);
}

#[test]
fn udp_echo() {
    let mut net = Pair::new(LoopbackConfig::default());
    let echo = net.b.udp_bind(7).unwrap();
    let client = net.a.udp_bind(0).unwrap();
    let mut sent = Vec::new();
    for i in 0..50u32 {
        let msg = format!("message {i} {}", "x".repeat(i as usize * 20));
        net.a.udp_send_to(client, IP_B, 7, chain(msg.as_bytes())).unwrap();
        sent.push(msg);
        net.settle();
        while let Some(d) = net.b.udp_recv(echo).unwrap() {
            // Echo the received buffer itself back: no copy of the data.
            net.b.udp_send_to(echo, d.src, d.src_port, IoBufChain::from(d.data)).unwrap();
        }
        net.settle();
    }
    for msg in &sent {
        let d = net.a.udp_recv(client).unwrap().expect("echo");
        assert_eq!((d.src, d.src_port), (IP_B, 7));
        assert_eq!(d.data.as_slice(), msg.as_bytes());
    }
    assert_eq!(net.a.counters().udp_rx, 50);
    assert_eq!(net.b.counters().udp_tx, 50);
}

#[test]
fn udp_errors() {
    let mut net = Pair::new(LoopbackConfig::default());
    let h = net.a.udp_bind(1000).unwrap();
    assert_eq!(net.a.udp_bind(1000), Err(UdpError::PortInUse));
    assert_eq!(net.a.udp_send_to(h, IP_B, 0, chain(b"x")), Err(UdpError::BadPort));
    assert_eq!(
        net.a.udp_send_to(h, Ipv4Address::new(192, 168, 9, 9), 1, chain(b"x")),
        Err(UdpError::NoRoute)
    );
    let big = IoBufChain::from(SharedIoBuf::from_vec(vec![0; 70_000]));
    assert_eq!(net.a.udp_send_to(h, IP_B, 1, big), Err(UdpError::TooLarge));
    net.a.udp_close(h).unwrap();
    assert_eq!(net.a.udp_send_to(h, IP_B, 1, chain(b"x")), Err(UdpError::NotBound));
    assert_eq!(net.a.counters().ipv4_no_route, 1);
}

#[test]
fn udp_socket_queue_is_bounded() {
    let (dev_a, dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let a = Interface::new(config(IP_A), &dev_a);
    let b = Interface::new(InterfaceConfig { udp_queue_len: 3, ..config(IP_B) }, &dev_b);
    let mut net = Pair { a, b, dev_a, dev_b, now: 0 };
    let rx = net.b.udp_bind(9).unwrap();
    let tx = net.a.udp_bind(0).unwrap();
    for _ in 0..5 {
        net.a.udp_send_to(tx, IP_B, 9, chain(b"d")).unwrap();
    }
    net.settle();
    assert_eq!((net.b.counters().udp_rx, net.b.counters().udp_queue_full), (3, 2));
    let mut n = 0;
    while net.b.udp_recv(rx).unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn port_unreachable_quotes_the_datagram() {
    let mut net = Pair::new(LoopbackConfig::default());
    let tx = net.a.udp_bind(4444).unwrap();
    net.a.udp_send_to(tx, IP_B, 9, chain(b"nobody listens")).unwrap();
    net.settle();
    assert_eq!(net.b.counters().udp_no_socket, 1);
    assert_eq!(net.b.counters().icmp_unreachable_tx, 1);
    match net.a.recv_icmp() {
        Some(IcmpEvent::DstUnreachable { from, code, quoted }) => {
            assert_eq!((from, code), (IP_B, 3));
            assert_eq!(quoted.len(), 28, "the IP header and 8 bytes");
            let ip = Ipv4Packet::new_unchecked(&quoted[..20]);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (IP_A, IP_B));
            assert_eq!(&quoted[20..22], &4444u16.to_be_bytes());
            assert_eq!(&quoted[22..24], &9u16.to_be_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_unreachable_for_broadcasts() {
    let mut net = Pair::new(LoopbackConfig::default());
    let tx = net.a.udp_bind(0).unwrap();
    net.a.udp_send_to(tx, Ipv4Address::BROADCAST, 9, chain(b"anyone?")).unwrap();
    net.a.udp_send_to(tx, Ipv4Address::new(10, 0, 0, 255), 9, chain(b"anyone?")).unwrap();
    net.settle();
    assert_eq!(net.b.counters().udp_no_socket, 2);
    assert_eq!(net.b.counters().icmp_unreachable_tx, 0);
    assert_eq!(net.a.counters().arp_requests_tx, 0, "broadcasts need no resolution");
}

#[test]
fn hand_built_fragments_are_reassembled_out_of_order() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(53).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let udp = udp_bytes(IP_A, 1234, IP_B, 53, &data, false);
    // Three fragments of 1000 bytes (a multiple of 8), injected last, first, middle.
    let pieces: Vec<(u16, bool, &[u8])> =
        vec![(2000, false, &udp[2000..]), (0, true, &udp[..1000]), (1000, true, &udp[1000..2000])];
    for (offset, more, bytes) in pieces {
        let ip = Ip { frag_offset: offset, more_frags: more, ..Ip::new(IP_A, IP_B, 17) };
        net.dev_b.inject(&ipv4_frame(MAC_A, MAC_B, &ip, bytes));
        net.settle();
    }
    let d = net.b.udp_recv(rx).unwrap().expect("reassembled");
    assert_eq!(d.data.as_slice(), &data[..]);
    let c = net.b.counters();
    assert_eq!((c.frag_rx, c.frag_reassembled, c.udp_rx), (3, 1, 1));
}

#[test]
fn reassembly_limits() {
    let (dev_a, dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let mut config_b = config(IP_B);
    config_b.reassembly.max_datagrams = 2;
    config_b.reassembly.max_fragments = 3;
    config_b.reassembly.max_size = 4000;
    config_b.reassembly.timeout_ns = 1000 * MS;
    let mut net = Pair {
        a: Interface::new(config(IP_A), &dev_a),
        b: Interface::new(config_b, &dev_b),
        dev_a,
        dev_b,
        now: 0,
    };
    net.b.udp_bind(53).unwrap();
    let frag = |ident: u16, offset: u16, more: bool, len: usize| {
        let ip = Ip { ident, frag_offset: offset, more_frags: more, ..Ip::new(IP_A, IP_B, 17) };
        ipv4_frame(MAC_A, MAC_B, &ip, &vec![0u8; len])
    };
    // Two datagrams in progress; a third is refused.
    net.dev_b.inject(&frag(1, 0, true, 16));
    net.dev_b.inject(&frag(2, 0, true, 16));
    net.dev_b.inject(&frag(3, 0, true, 16));
    net.settle();
    assert_eq!(net.b.counters().frag_overflows, 1);
    // Overlap drops datagram 1.
    net.dev_b.inject(&frag(1, 8, true, 16));
    net.settle();
    assert_eq!(net.b.counters().frag_malformed, 1);
    // Misaligned middle fragment.
    net.dev_b.inject(&frag(3, 0, true, 12));
    net.settle();
    assert_eq!(net.b.counters().frag_malformed, 2);
    // Too big: ends past max_size.
    net.dev_b.inject(&frag(4, 3992, false, 16));
    net.settle();
    assert_eq!(net.b.counters().frag_overflows, 2);
    // Too many pieces for datagram 2 (it holds 1; 2 more fit, the 4th overflows).
    for offset in [16, 32, 48] {
        net.dev_b.inject(&frag(2, offset, true, 16));
    }
    net.settle();
    assert_eq!(net.b.counters().frag_overflows, 3);
    // A datagram left incomplete times out.
    net.dev_b.inject(&frag(5, 0, true, 16));
    net.settle();
    assert!(net.b.next_deadline().is_some());
    net.advance(1001 * MS);
    assert_eq!(net.b.counters().frag_timeouts, 1);
    assert_eq!(net.b.counters().udp_rx, 0);
    // A duplicate is ignored, and the datagram still completes.
    let data = vec![7u8; 24];
    let udp = udp_bytes(IP_A, 1, IP_B, 53, &data, false);
    let ip = |offset: u16, more| Ip {
        ident: 9,
        frag_offset: offset,
        more_frags: more,
        ..Ip::new(IP_A, IP_B, 17)
    };
    net.dev_b.inject(&ipv4_frame(MAC_A, MAC_B, &ip(0, true), &udp[..16]));
    net.dev_b.inject(&ipv4_frame(MAC_A, MAC_B, &ip(0, true), &udp[..16]));
    net.dev_b.inject(&ipv4_frame(MAC_A, MAC_B, &ip(16, false), &udp[16..]));
    net.settle();
    assert_eq!(net.b.counters().udp_rx, 1);
}

#[test]
fn bad_frames_are_dropped_and_counted() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(7).unwrap();
    let good_udp = udp_bytes(IP_A, 1, IP_B, 7, b"payload", false);
    let ip = Ip::new(IP_A, IP_B, 17);
    let inject = |net: &mut Pair, frame: &[u8]| {
        net.dev_b.inject(frame);
        net.settle();
    };
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &Ip { ttl: 0, ..ip }, &good_udp));
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &Ip { checksum_error: 1, ..ip }, &good_udp));
    let mut bad_udp = good_udp.clone();
    bad_udp[9] ^= 0xff;
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &ip, &bad_udp));
    let mut bad_echo = echo_request_bytes(1, 1, b"abc");
    bad_echo[8] ^= 1;
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &Ip { protocol: 1, ..ip }, &bad_echo));
    let other_host = Ip { dst: Ipv4Address::new(10, 0, 0, 3), ..ip };
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &other_host, &good_udp));
    let other_mac = EthernetAddress([2, 0, 0, 0, 0, 0x0c]);
    inject(&mut net, &ipv4_frame(MAC_A, other_mac, &ip, &good_udp));
    inject(&mut net, &[0u8; 10]);
    let mut ipv6ish = ipv4_frame(MAC_A, MAC_B, &ip, &good_udp);
    ipv6ish[12..14].copy_from_slice(&[0x88, 0xb5]);
    inject(&mut net, &ipv6ish);
    let mut short = ipv4_frame(MAC_A, MAC_B, &ip, &good_udp);
    short.truncate(30);
    inject(&mut net, &short);
    let mut version6 = ipv4_frame(MAC_A, MAC_B, &ip, &good_udp);
    version6[14] = 0x65;
    inject(&mut net, &version6);
    inject(
        &mut net,
        &ipv4_frame(MAC_A, MAC_B, &Ip { src: Ipv4Address::BROADCAST, ..ip }, &good_udp),
    );
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &Ip { protocol: 99, ..ip }, &good_udp));
    let mut udp_len_too_big = good_udp.clone();
    udp_len_too_big[5] = 200;
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &ip, &udp_len_too_big));
    let mut arp_garbage = ipv4_frame(MAC_A, MAC_B, &ip, &good_udp);
    arp_garbage[12..14].copy_from_slice(&[0x08, 0x06]);
    inject(&mut net, &arp_garbage);

    let c = *net.b.counters();
    // 14 injected, and the ARP reply B needed to send A its protocol-unreachable.
    assert_eq!(c.rx_frames, 15);
    assert_eq!(c.ipv4_ttl_zero, 1);
    assert_eq!(c.ipv4_bad_checksum, 1);
    assert_eq!(c.udp_bad_checksum, 1);
    assert_eq!(c.icmp_bad_checksum, 1);
    assert_eq!(c.ipv4_not_for_us, 1);
    assert_eq!(c.rx_not_for_us, 1);
    assert_eq!(c.rx_truncated, 1);
    assert_eq!(c.rx_unknown_ethertype, 1);
    assert_eq!(c.ipv4_malformed, 2);
    assert_eq!(c.ipv4_bad_source, 1);
    assert_eq!(c.ipv4_unknown_protocol, 1);
    assert_eq!(c.udp_malformed, 1);
    assert_eq!(c.arp_malformed, 1);
    assert_eq!(c.udp_rx, 0);
    assert!(net.b.udp_recv(rx).unwrap().is_none());
    // Unknown protocol is answered with protocol unreachable (code 2).
    match net.a.recv_icmp() {
        Some(IcmpEvent::DstUnreachable { code: 2, from, .. }) => assert_eq!(from, IP_B),
        other => panic!("{other:?}"),
    }
    // A good datagram, and one with no checksum (zero), still arrive.
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &ip, &good_udp));
    inject(&mut net, &ipv4_frame(MAC_A, MAC_B, &ip, &udp_bytes(IP_A, 1, IP_B, 7, b"nosum", true)));
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"payload");
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"nosum");
    let listing = format!("{}", net.b.counters());
    assert!(listing.contains("ipv4_ttl_zero 1\n"));
}

#[test]
fn ip_options_are_skipped() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(7).unwrap();
    let udp = udp_bytes(IP_A, 1, IP_B, 7, b"with options", false);
    let mut frame = ipv4_frame(MAC_A, MAC_B, &Ip::new(IP_A, IP_B, 17), &udp);
    // Rebuild the header with 8 bytes of options (two NOPs, then a 6-byte unknown option).
    let mut header = frame[14..34].to_vec();
    header[0] = 0x47;
    let total = (28 + udp.len()) as u16;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&[1, 1, 0x88, 6, 0, 0, 0, 0]);
    header[10..12].copy_from_slice(&[0, 0]);
    let sum = cairn_net::wire::checksum::checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.splice(14..34, header);
    net.dev_b.inject(&frame);
    net.settle();
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"with options");
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut net = Pair::new(LoopbackConfig::default());
    let rx = net.b.udp_bind(7).unwrap();
    let mut frame = ipv4_frame(
        MAC_A,
        MAC_B,
        &Ip::new(IP_A, IP_B, 17),
        &udp_bytes(IP_A, 1, IP_B, 7, b"hi", false),
    );
    frame.resize(60, 0);
    net.dev_b.inject(&frame);
    net.settle();
    assert_eq!(net.b.udp_recv(rx).unwrap().unwrap().data.as_slice(), b"hi");
}

#[test]
fn off_subnet_traffic_goes_through_the_gateway() {
    let (dev_a, dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let a = Interface::new(InterfaceConfig { gateway: Some(IP_B), ..config(IP_A) }, &dev_a);
    let b = Interface::new(config(IP_B), &dev_b);
    let mut net = Pair { a, b, dev_a, dev_b, now: 0 };
    let far = Ipv4Address::new(8, 8, 8, 8);
    net.a.ping(0, far, 1, 1, chain(b"x")).unwrap();
    net.settle();
    // Resolved the gateway's MAC, and the gateway (which does not forward) saw a datagram for
    // someone else.
    assert_eq!(net.a.arp_entries().collect::<Vec<_>>(), [(IP_B, MAC_B)]);
    assert_eq!(net.b.counters().ipv4_not_for_us, 1);
    net.a.set_gateway(None);
    assert_eq!(net.a.ping(0, far, 1, 2, chain(b"x")), Err(SendError::NoRoute));
}

#[test]
fn unconfigured_interface_sends_from_zero_and_takes_broadcasts() {
    let (mut dev_a, mut dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let mut a =
        Interface::new(InterfaceConfig { gratuitous_arp: false, ..Default::default() }, &dev_a);
    let mut b = Interface::new(config(IP_B), &dev_b);
    let ha = a.udp_bind(68).unwrap();
    let hb = b.udp_bind(67).unwrap();
    assert_eq!(a.ping(0, IP_B, 1, 1, chain(b"x")), Err(SendError::NoRoute));
    a.udp_send_to(ha, Ipv4Address::BROADCAST, 67, chain(b"discover")).unwrap();
    a.poll(0, &mut dev_a);
    b.poll(0, &mut dev_b);
    let d = b.udp_recv(hb).unwrap().unwrap();
    assert_eq!((d.src, d.dst), (Ipv4Address::UNSPECIFIED, Ipv4Address::BROADCAST));
    // A reply unicast to an address A does not have yet still reaches port 68.
    let offer = udp_bytes(IP_B, 67, Ipv4Address::new(10, 0, 0, 50), 68, b"offer", false);
    let ip = Ip::new(IP_B, Ipv4Address::new(10, 0, 0, 50), 17);
    dev_a.inject(&ipv4_frame(MAC_B, MAC_A, &ip, &offer));
    a.poll(0, &mut dev_a);
    assert_eq!(a.udp_recv(ha).unwrap().unwrap().data.as_slice(), b"offer");
    assert!(dev_b.receive().is_none());
}

#[test]
fn device_full_keeps_frames_for_the_next_poll() {
    let link = LoopbackConfig { queue_len: 2, ..Default::default() };
    let (mut dev_a, mut dev_b) = loopback::pair(link, MAC_A, MAC_B);
    let mut a = Interface::new(config(IP_A), &dev_a);
    let tx = a.udp_bind(0).unwrap();
    for _ in 0..5 {
        a.udp_send_to(tx, Ipv4Address::BROADCAST, 9, chain(b"b")).unwrap();
    }
    a.poll(0, &mut dev_a);
    assert_eq!(drain(&mut dev_b).len(), 2);
    assert_eq!(a.next_deadline(), Some(0), "frames still queued");
    a.poll(1, &mut dev_a);
    a.poll(2, &mut dev_a);
    assert_eq!(drain(&mut dev_b).len(), 2);
    a.poll(3, &mut dev_a);
    assert_eq!(drain(&mut dev_b).len(), 1);
    assert_eq!(a.counters().tx_frames, 5);
    assert_eq!(dev_a.counters().tx_frames, 5);
}

#[test]
fn udp_over_a_lossy_reordering_delaying_link() {
    let link = LoopbackConfig {
        loss_per_million: 100_000,
        reorder_per_million: 100_000,
        delay_ns: 5 * MS,
        seed: 7,
        ..Default::default()
    };
    let mut net = Pair::new(link);
    let rx = net.b.udp_bind(9).unwrap();
    let tx = net.a.udp_bind(0).unwrap();
    for i in 0..100u32 {
        net.a.udp_send_to(tx, IP_B, 9, chain(&i.to_be_bytes())).unwrap();
        net.advance(MS);
    }
    net.run_until(1000, |n| n.dev_a.in_flight() == 0 && n.dev_b.in_flight() == 0);
    let mut got = Vec::new();
    while let Some(d) = net.b.udp_recv(rx).unwrap() {
        got.push(u32::from_be_bytes(d.data.as_slice().try_into().unwrap()));
    }
    // Some lost (including ARP frames, which are retried), some out of order, none twice.
    assert!(got.len() > 50 && got.len() < 100, "{}", got.len());
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len());
    assert_ne!(sorted, got);
}

/// A broadcast Ethernet frame carrying `repr`, sent from its source hardware address.
fn arp_broadcast(repr: &ArpRepr) -> Vec<u8> {
    let mut frame = vec![0u8; 42];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(repr.source_hardware_addr);
    eth.set_ethertype(EtherType::Arp);
    repr.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    frame
}

#[test]
fn arp_replies_for_other_addresses_are_not_learned() {
    let (mut dev_a, _dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let mut a = Interface::new(config(IP_A), &dev_a);
    let stranger = EthernetAddress([2, 0, 0, 0, 0, 0x66]);
    dev_a.inject(&arp_broadcast(&ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: stranger,
        source_protocol_addr: Ipv4Address::new(10, 0, 0, 66),
        target_hardware_addr: stranger,
        target_protocol_addr: Ipv4Address::new(10, 0, 0, 67),
    }));
    a.poll(0, &mut dev_a);
    assert_eq!(a.arp_entries().count(), 0);
    assert_eq!(a.counters().arp_replies_rx, 1);
}

#[test]
fn a_core_that_does_not_answer_arp_still_learns_from_requests() {
    let (mut dev_b, _dev_a) = loopback::pair(LoopbackConfig::default(), MAC_B, MAC_A);
    let mut b = Interface::new(InterfaceConfig { answer_arp: false, ..config(IP_B) }, &dev_b);
    dev_b.inject(&arp_broadcast(&ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: MAC_A,
        source_protocol_addr: IP_A,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: IP_B,
    }));
    b.poll(0, &mut dev_b);
    assert_eq!(b.counters().arp_requests_rx, 1);
    assert_eq!(b.counters().arp_replies_tx, 0, "another core answers for the link");
    assert_eq!(b.arp_entries().collect::<Vec<_>>(), [(IP_A, MAC_A)]);
}
