//! cairn's TCP between two cairn interfaces over the in-memory link: the interface hands
//! protocol-6 segments to the TCP stack and sends what it dispatches, resolving ARP on the way.

mod iface_common;

use cairn_net::device::Device;
use cairn_net::iface::{IcmpEvent, Interface};
use cairn_net::loopback::{self, LoopbackConfig};
use cairn_net::tcp::{CloseReason, TcpConfig, TcpEvent, TcpStack};
use iface_common::*;

fn pair(link: LoopbackConfig) -> Pair<TcpStack> {
    let (dev_a, dev_b) = loopback::pair(link, MAC_A, MAC_B);
    let a = Interface::with_tcp(config(IP_A), &dev_a, TcpConfig::default());
    let b = Interface::with_tcp(config(IP_B), &dev_b, TcpConfig::default());
    Pair { a, b, dev_a, dev_b, now: 0 }
}

/// Bytes of a deterministic pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 257) as u8).collect()
}

/// Sends `data` from A to B (B listening on 7) and returns what B read, running the clock
/// through the deadlines.
fn transfer(net: &mut Pair<TcpStack>, data: &[u8]) -> Vec<u8> {
    let listener = net.b.tcp().listen(IP_B, 7, 8).unwrap();
    let conn = net.a.tcp().connect(net.now, IP_A, 0, IP_B, 7).unwrap();
    let mut chunks = data.chunks(16 * 1024);
    let mut server = None;
    let mut received = Vec::new();
    let mut closed = false;
    let done = net.run_until(200_000, |net| {
        while let Some(event) = net.a.tcp().poll_event() {
            if let TcpEvent::Connected(c) = event {
                assert_eq!(c, conn);
            }
        }
        // Keep a bounded amount queued.
        while net.a.tcp().send_queue_len(conn) < 256 * 1024 {
            match chunks.next() {
                Some(chunk) => net.a.tcp().send(conn, chain(chunk)).unwrap(),
                None => {
                    if !closed {
                        net.a.tcp().close(conn).unwrap();
                        closed = true;
                    }
                    break;
                }
            }
        }
        let mut peer_closed = false;
        while let Some(event) = net.b.tcp().poll_event() {
            match event {
                TcpEvent::Accepted { .. } => server = net.b.tcp().accept(listener),
                TcpEvent::PeerClosed(_) => peer_closed = true,
                _ => {}
            }
        }
        if let Some(s) = server {
            // Read everything before closing: closing with unread data resets (RFC 2525).
            while let Some(buf) = net.b.tcp().recv(s) {
                received.extend_from_slice(&buf);
            }
            if peer_closed {
                net.b.tcp().close(s).unwrap();
            }
        }
        received.len() == data.len() && net.a.tcp().connection_count() == 0
            || net.a.tcp().state(conn).is_none() && received.len() == data.len()
    });
    assert!(
        done,
        "transfer stalled at {} of {} bytes at {} ns: A {:?} {:?}, B {:?}, deadlines {:?} {:?}",
        received.len(),
        data.len(),
        net.now,
        net.a.tcp().state(conn),
        net.a.tcp().conn_info(conn),
        server.map(|s| net.b.tcp().conn_info(s)),
        net.a.next_deadline(),
        net.b.next_deadline(),
    );
    received
}

#[test]
fn tcp_transfer_between_two_interfaces() {
    let mut net = pair(LoopbackConfig::default());
    let data = pattern(2 * 1024 * 1024);
    let received = transfer(&mut net, &data);
    assert!(received == data, "the bytes arrived intact and in order");
    let (a, b) = (net.a.counters(), net.b.counters());
    assert!(a.tcp_tx > 1000 && b.tcp_rx > 1000, "{a}\n{b}");
    assert_eq!(b.tcp_bad_checksum + b.tcp_malformed, 0);
    assert_eq!(a.arp_requests_tx, 1);
    assert_eq!(a.ipv4_fragmented_tx, 0, "segments fit the MTU");
}

#[test]
fn tcp_transfer_over_a_lossy_reordering_link() {
    let link = LoopbackConfig {
        loss_per_million: 10_000,
        reorder_per_million: 10_000,
        delay_ns: 200_000,
        seed: 99,
        ..Default::default()
    };
    let mut net = pair(link);
    let data = pattern(512 * 1024);
    let received = transfer(&mut net, &data);
    assert!(received == data);
    assert!(net.dev_b.link_counters().lost > 0 || net.dev_a.link_counters().lost > 0);
}

#[test]
fn with_segmentation_offload_segments_of_many_mss_are_cut_by_the_device() {
    let link = LoopbackConfig { segmentation_offload: true, ..Default::default() };
    let mut net = pair(link);
    let data = pattern(2 * 1024 * 1024);
    let received = transfer(&mut net, &data);
    assert!(received == data, "the bytes arrived intact and in order");
    let tcp = net.a.tcp().counters();
    assert!(tcp.segmentation_offloads > 10, "{tcp:?}");
    // Each offloaded segment left as several frames that B checked in full.
    let (frames, segments) = (net.dev_a.counters().tx_frames, net.a.counters().tcp_tx);
    assert!(frames > segments + 10 * tcp.segmentation_offloads, "{frames} {segments}");
    let b = net.b.counters();
    assert_eq!(b.tcp_bad_checksum + b.tcp_malformed + b.rx_truncated, 0, "{b}");
    assert_eq!(net.a.counters().ipv4_fragmented_tx, 0);
}

#[test]
fn with_segmentation_offload_a_lossy_link_still_delivers_everything() {
    let link = LoopbackConfig {
        segmentation_offload: true,
        loss_per_million: 10_000,
        reorder_per_million: 10_000,
        delay_ns: 200_000,
        seed: 7,
        ..Default::default()
    };
    let mut net = pair(link);
    let data = pattern(1024 * 1024);
    let received = transfer(&mut net, &data);
    assert!(received == data);
    assert!(net.dev_b.link_counters().lost > 0, "pieces of offloaded segments were lost");
    assert!(net.a.tcp().counters().segmentation_offloads > 0);
    assert!(net.a.tcp().counters().retransmits > 0);
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let mut net = pair(LoopbackConfig::default());
    let conn = net.a.tcp().connect(0, IP_A, 0, IP_B, 9).unwrap();
    let refused = net.run_until(100, |net| {
        let mut refused = false;
        while let Some(event) = net.a.tcp().poll_event() {
            refused |= event == TcpEvent::Closed(conn, CloseReason::Refused);
        }
        refused
    });
    assert!(refused);
    assert!(net.a.recv_icmp().is_none(), "TCP answers with RST, not ICMP");
}

#[test]
fn without_tcp_segments_get_protocol_unreachable() {
    let (mut dev_a, mut dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let mut a = Interface::with_tcp(config(IP_A), &dev_a, TcpConfig::default());
    let mut b = Interface::new(config(IP_B), &dev_b);
    a.tcp().connect(0, IP_A, 0, IP_B, 80).unwrap();
    for _ in 0..10 {
        a.poll(0, &mut dev_a);
        b.poll(0, &mut dev_b);
    }
    assert_eq!(b.counters().ipv4_unknown_protocol, 1);
    assert!(matches!(a.recv_icmp(), Some(IcmpEvent::DstUnreachable { code: 2, .. })));
}

#[test]
fn replies_to_a_connection_steer_to_the_core_that_opened_it() {
    use cairn_net::iface::{steer, FlowTarget};
    let (mut dev_a, mut dev_b) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
    let tcp = TcpConfig { core_count: 4, core_index: 2, ..TcpConfig::default() };
    let mut a = Interface::with_tcp(config(IP_A), &dev_a, tcp);
    let mut b = Interface::with_tcp(config(IP_B), &dev_b, TcpConfig::default());
    b.tcp().listen(IP_B, 80, 4).unwrap();
    let conn = a.tcp().connect(0, IP_A, 0, IP_B, 80).unwrap();
    let mut tcp_frames = 0;
    for round in 0..20u64 {
        let now = round * 50 * MS;
        dev_a.set_now(now);
        a.poll(now, &mut dev_a);
        b.poll(now, &mut dev_b);
        // Look at every frame on its way to A, then pass it on.
        for frame in drain(&mut dev_a) {
            match steer(&frame, 4) {
                FlowTarget::AllCores => {}
                FlowTarget::Core(core) => {
                    assert_eq!(core, 2);
                    tcp_frames += 1;
                }
            }
            dev_a.inject(&frame);
        }
        if round == 5 {
            a.tcp().send(conn, chain(b"steered")).unwrap();
        }
    }
    assert!(tcp_frames >= 2, "SYN-ACK and the ACK of the data");
    assert_eq!(a.tcp().state(conn), Some(cairn_net::tcp::TcpState::Established));
}
