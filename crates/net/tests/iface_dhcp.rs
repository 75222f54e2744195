//! The DHCP client against a DHCP server written in this test from RFC 2131's packet layout
//! (figure 1) and RFC 2132's options, byte by byte, running on a second cairn interface over the
//! in-memory link.

mod iface_common;

use cairn_net::dhcp::{DhcpClient, DhcpConfig, DhcpEvent, DhcpState};
use cairn_net::iface::{IcmpEvent, Interface, InterfaceConfig, Ipv4Cidr, UdpHandle};
use cairn_net::loopback::{self, LoopbackConfig, LoopbackDevice};
use cairn_net::wire::{EthernetAddress, Ipv4Address};
use iface_common::{chain, MAC_A, MAC_B, MS};

const SECOND: u64 = 1_000_000_000;
const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const OFFERED: Ipv4Address = Ipv4Address::new(10, 0, 0, 50);

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    message_type: u8,
    xid: u32,
    ciaddr: Ipv4Address,
    chaddr: EthernetAddress,
    requested: Option<Ipv4Address>,
    server_id: Option<Ipv4Address>,
    /// The IPv4 destination the request was sent to.
    dst: Ipv4Address,
    src: Ipv4Address,
    broadcast_flag: bool,
}

/// Scans RFC 2132 options (code, length, data), stopping at END or at a length that runs past
/// the end.
fn find_option(options: &[u8], wanted: u8) -> Option<&[u8]> {
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => i += 1,
            255 => return None,
            code => {
                let len = usize::from(*options.get(i + 1)?);
                let data = options.get(i + 2..i + 2 + len)?;
                if code == wanted {
                    return Some(data);
                }
                i += 2 + len;
            }
        }
    }
    None
}

fn addr(bytes: &[u8]) -> Ipv4Address {
    Ipv4Address::from_bytes(bytes)
}

/// What the server does with requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    Nak,
    Silent,
}

struct Server {
    iface: Interface,
    dev: LoopbackDevice,
    socket: UdpHandle,
    lease_secs: u32,
    mode: Mode,
    seen: Vec<Seen>,
}

impl Server {
    fn new(dev: LoopbackDevice) -> Self {
        let config = InterfaceConfig {
            ipv4: Ipv4Cidr::new(SERVER, 24),
            gratuitous_arp: false,
            ..Default::default()
        };
        let mut iface = Interface::new(config, &dev);
        let socket = iface.udp_bind(67).unwrap();
        Server { iface, dev, socket, lease_secs: 100, mode: Mode::Serve, seen: Vec::new() }
    }

    /// A BOOTREPLY (RFC 2131 figure 1) of `message_type` for `request`.
    fn reply(&self, message_type: u8, request: &Seen) -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 2; // op: BOOTREPLY
        b[1] = 1; // htype: Ethernet
        b[2] = 6; // hlen
        b[4..8].copy_from_slice(&request.xid.to_be_bytes());
        if request.broadcast_flag {
            b[10] = 0x80;
        }
        if message_type != 6 {
            b[16..20].copy_from_slice(&OFFERED.0); // yiaddr
        }
        b[20..24].copy_from_slice(&SERVER.0); // siaddr
        b[28..34].copy_from_slice(&request.chaddr.0);
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        b.extend_from_slice(&[53, 1, message_type]);
        b.extend_from_slice(&[54, 4]);
        b.extend_from_slice(&SERVER.0);
        if message_type != 6 {
            b.extend_from_slice(&[51, 4]);
            b.extend_from_slice(&self.lease_secs.to_be_bytes());
            b.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
            b.extend_from_slice(&[3, 4]);
            b.extend_from_slice(&SERVER.0);
            b.extend_from_slice(&[6, 8, 10, 0, 0, 53, 10, 0, 0, 54]);
        }
        b.push(255);
        b
    }

    /// Answers every request waiting on port 67.
    fn serve(&mut self) {
        while let Some(d) = self.iface.udp_recv(self.socket).unwrap() {
            let b = d.data.as_slice();
            assert!(b.len() >= 240 && b[236..240] == [99, 130, 83, 99], "a BOOTP message");
            assert_eq!((b[0], b[1], b[2]), (1, 1, 6), "BOOTREQUEST from Ethernet");
            let options = &b[240..];
            let seen = Seen {
                message_type: find_option(options, 53).expect("message type")[0],
                xid: u32::from_be_bytes(b[4..8].try_into().unwrap()),
                ciaddr: addr(&b[12..16]),
                chaddr: EthernetAddress::from_bytes(&b[28..34]),
                requested: find_option(options, 50).map(addr),
                server_id: find_option(options, 54).map(addr),
                dst: d.dst,
                src: d.src,
                broadcast_flag: b[10] & 0x80 != 0,
            };
            self.seen.push(seen.clone());
            let answer = match (self.mode, seen.message_type) {
                (Mode::Silent, _) => continue,
                (_, 1) => 2,           // DISCOVER -> OFFER
                (Mode::Nak, 3) => 6,   // REQUEST -> NAK
                (Mode::Serve, 3) => 5, // REQUEST -> ACK
                _ => continue,
            };
            let reply = self.reply(answer, &seen);
            // Broadcast while the client has no address (RFC 2131 §4.1), unicast to ciaddr once
            // it has one.
            let dst =
                if seen.ciaddr.is_unspecified() { Ipv4Address::BROADCAST } else { seen.ciaddr };
            self.iface.udp_send_to(self.socket, dst, 68, chain(&reply)).unwrap();
        }
    }
}

struct Net {
    client: Interface,
    dev: LoopbackDevice,
    dhcp: DhcpClient,
    server: Server,
    now: u64,
    events: Vec<DhcpEvent>,
}

impl Net {
    fn new() -> Self {
        let (dev, server_dev) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
        let client =
            Interface::new(InterfaceConfig { gratuitous_arp: false, ..Default::default() }, &dev);
        Net {
            client,
            dev,
            dhcp: DhcpClient::new(DhcpConfig::default()),
            server: Server::new(server_dev),
            now: 0,
            events: Vec::new(),
        }
    }

    /// Polls everything at the current time until quiet (bounded).
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut work = self.client.poll(self.now, &mut self.dev);
            if let Some(e) = self.dhcp.poll(self.now, &mut self.client) {
                self.events.push(e);
                work = true;
            }
            work |= self.client.poll(self.now, &mut self.dev);
            work |= self.server.iface.poll(self.now, &mut self.server.dev);
            self.server.serve();
            work |= self.server.iface.poll(self.now, &mut self.server.dev);
            if !work {
                return;
            }
        }
        panic!("never quiet");
    }

    /// Jumps to the client's next deadline (at most `limit`) and settles.
    fn step(&mut self, limit: u64) {
        let next = [
            self.dhcp.next_deadline(),
            self.client.next_deadline(),
            self.server.iface.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > self.now)
        .min()
        .unwrap_or(limit)
        .min(limit);
        self.now = next.max(self.now + 1);
        self.settle();
    }

    fn run_until(&mut self, limit: u64, mut done: impl FnMut(&Net) -> bool) -> bool {
        self.settle();
        for _ in 0..10_000 {
            if done(self) {
                return true;
            }
            if self.now >= limit {
                return false;
            }
            self.step(limit);
        }
        false
    }
}

#[test]
fn discover_offer_request_ack_configures_the_interface() {
    let mut net = Net::new();
    net.settle();
    assert_eq!(net.dhcp.state(), DhcpState::Bound);
    let kinds: Vec<u8> = net.server.seen.iter().map(|s| s.message_type).collect();
    assert_eq!(kinds, [1, 3], "DISCOVER then REQUEST");
    let (discover, request) = (&net.server.seen[0], &net.server.seen[1]);
    assert_eq!((discover.src, discover.dst), (Ipv4Address::UNSPECIFIED, Ipv4Address::BROADCAST));
    assert_eq!(discover.chaddr, MAC_A);
    assert_eq!(request.xid, discover.xid);
    assert_eq!(request.requested, Some(OFFERED));
    assert_eq!(request.server_id, Some(SERVER));
    assert!(request.ciaddr.is_unspecified());

    assert_eq!(net.client.config().ipv4, Ipv4Cidr::new(OFFERED, 24));
    assert_eq!(net.client.config().gateway, Some(SERVER));
    let lease = net.dhcp.lease().unwrap();
    assert_eq!(lease.dns_servers, [Ipv4Address::new(10, 0, 0, 53), Ipv4Address::new(10, 0, 0, 54)]);
    assert_eq!(lease.renew_ns, Some(50 * SECOND));
    assert_eq!(lease.rebind_ns, Some(87_500 * MS));
    assert_eq!(lease.expires_ns, Some(100 * SECOND));
    assert!(matches!(&net.events[..], [DhcpEvent::Configured(l)] if l.address.address == OFFERED));

    // The configured interface works: ping the server.
    net.client.ping(net.now, SERVER, 1, 1, chain(b"hello")).unwrap();
    net.settle();
    assert!(matches!(net.client.recv_icmp(), Some(IcmpEvent::EchoReply { from: SERVER, .. })));
}

#[test]
fn renews_at_t1_by_unicast_to_the_server() {
    let mut net = Net::new();
    net.settle();
    assert!(net.run_until(200 * SECOND, |n| n.server.seen.len() == 3));
    assert!(net.now >= 50 * SECOND && net.now < 51 * SECOND, "at T1, now {}", net.now);
    let renew = &net.server.seen[2];
    assert_eq!(renew.message_type, 3);
    assert_eq!((renew.src, renew.dst, renew.ciaddr), (OFFERED, SERVER, OFFERED));
    assert_eq!((renew.requested, renew.server_id), (None, None));
    net.settle();
    assert_eq!(net.dhcp.state(), DhcpState::Bound);
    assert_eq!(net.dhcp.lease().unwrap().expires_ns, Some(net.now + 100 * SECOND));
    assert_eq!(net.events.len(), 2);
    assert_eq!(net.dhcp.counters().acks_rx, 2);
}

#[test]
fn rebinds_at_t2_and_gives_the_address_up_when_the_lease_ends() {
    let mut net = Net::new();
    net.settle();
    net.server.mode = Mode::Silent;
    assert!(net.run_until(200 * SECOND, |n| n.dhcp.state() == DhcpState::Rebinding));
    assert!(net.now >= 87_500 * MS);
    let rebind = net.server.seen.last().unwrap();
    assert_eq!((rebind.dst, rebind.ciaddr), (Ipv4Address::BROADCAST, OFFERED));
    let renewing: Vec<_> = net.server.seen.iter().filter(|s| s.dst == SERVER).collect();
    assert!(!renewing.is_empty(), "renewing unicast to the server first");
    assert!(net.run_until(200 * SECOND, |n| n.client.config().ipv4.is_none()));
    assert!(net.now >= 100 * SECOND);
    assert_eq!(net.events.last(), Some(&DhcpEvent::Deconfigured));
    assert_eq!(net.dhcp.counters().expired, 1);
    assert_eq!(net.client.config().gateway, None);
    // And it starts over: a new DISCOVER.
    net.settle();
    assert_eq!(net.server.seen.last().unwrap().message_type, 1);
}

#[test]
fn a_nak_starts_over() {
    let mut net = Net::new();
    net.server.mode = Mode::Nak;
    net.settle();
    assert_eq!(net.server.seen.len(), 2, "DISCOVER, REQUEST (NAKed), then a pause");
    assert_eq!(net.dhcp.state(), DhcpState::Init);
    assert!(net.run_until(10 * SECOND, |n| n.server.seen.len() >= 4));
    assert_eq!(net.now, 4 * SECOND, "it starts over after 4 s");
    assert_eq!(net.server.seen[2].message_type, 1);
    assert_ne!(net.server.seen[2].xid, net.server.seen[0].xid, "a new transaction");
    assert!(net.dhcp.counters().naks_rx >= 2);
    assert!(net.client.config().ipv4.is_none());
    net.server.mode = Mode::Serve;
    assert!(net.run_until(100 * SECOND, |n| n.dhcp.state() == DhcpState::Bound));
}

#[test]
fn discover_is_retransmitted_with_backoff() {
    let mut net = Net::new();
    net.server.mode = Mode::Silent;
    let mut times = Vec::new();
    net.run_until(130 * SECOND, |n| {
        if n.server.seen.len() > times.len() {
            times.push(n.now);
        }
        false
    });
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]) / MS).collect();
    // 4, 8, 16, 32, 64 seconds, each ±1 s.
    assert!(gaps.len() >= 5, "{gaps:?}");
    for (gap, expected) in gaps.iter().zip([4000u64, 8000, 16000, 32000, 64000]) {
        assert!(gap.abs_diff(expected) <= 1000, "{gaps:?}");
    }
    assert!(net.server.seen.iter().all(|s| s.message_type == 1 && s.broadcast_flag));
}

#[test]
fn stray_and_malformed_replies_are_counted_and_ignored() {
    let mut net = Net::new();
    net.server.mode = Mode::Silent;
    net.settle();
    let discover = net.server.seen[0].clone();
    let mut wrong_xid = discover.clone();
    wrong_xid.xid ^= 1;
    let stray = net.server.reply(2, &wrong_xid);
    let good = net.server.reply(2, &discover);
    let mut truncated = good.clone();
    truncated.truncate(250);
    truncated[248] = 54; // an option cut off mid-way
    for bytes in [stray, truncated, vec![0u8; 10]] {
        net.server
            .iface
            .udp_send_to(net.server.socket, Ipv4Address::BROADCAST, 68, chain(&bytes))
            .unwrap();
        net.settle();
    }
    assert_eq!(net.dhcp.state(), DhcpState::Selecting);
    assert_eq!(net.dhcp.counters().ignored_rx, 1);
    assert_eq!(net.dhcp.counters().malformed_rx, 2);
    net.server
        .iface
        .udp_send_to(net.server.socket, Ipv4Address::BROADCAST, 68, chain(&good))
        .unwrap();
    net.server.mode = Mode::Serve;
    net.settle();
    assert_eq!(net.dhcp.state(), DhcpState::Bound);
}
