//! Helpers shared by the interface tests: two interfaces over an in-memory link, a clock, and
//! frames built by hand from the RFC layouts.

#![allow(dead_code)]

use cairn_net::device::Device;
use cairn_net::iface::{Interface, InterfaceConfig, IpTransport, Ipv4Cidr, NoTransport};
use cairn_net::loopback::{self, LoopbackConfig, LoopbackDevice};
use cairn_net::wire::checksum;
use cairn_net::wire::{EthernetAddress, Ipv4Address};
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

pub const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
pub const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);
pub const IP_A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
pub const IP_B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
pub const MS: u64 = 1_000_000;

/// A config with `ip`/24 and no gratuitous ARP (so frame counts are exact).
pub fn config(ip: Ipv4Address) -> InterfaceConfig {
    InterfaceConfig {
        ipv4: Some(Ipv4Cidr::new(ip, 24).unwrap()),
        gratuitous_arp: false,
        ..Default::default()
    }
}

/// Two interfaces, A (10.0.0.1) and B (10.0.0.2), over a loopback pair.
pub struct Pair<T: IpTransport = NoTransport> {
    pub a: Interface<T>,
    pub b: Interface<T>,
    pub dev_a: LoopbackDevice,
    pub dev_b: LoopbackDevice,
    pub now: u64,
}

impl Pair<NoTransport> {
    pub fn new(link: LoopbackConfig) -> Self {
        let (dev_a, dev_b) = loopback::pair(link, MAC_A, MAC_B);
        let a = Interface::new(config(IP_A), &dev_a);
        let b = Interface::new(config(IP_B), &dev_b);
        Pair { a, b, dev_a, dev_b, now: 0 }
    }
}

impl<T: IpTransport> Pair<T> {
    /// Polls both sides at the current time until neither does any work (at most 1000 rounds).
    pub fn settle(&mut self) {
        for _ in 0..1000 {
            self.dev_a.set_now(self.now);
            let a = self.a.poll(self.now, &mut self.dev_a);
            let b = self.b.poll(self.now, &mut self.dev_b);
            let due = |t: Option<u64>| t.is_some_and(|t| t <= self.now);
            if !a && !b && !due(self.dev_a.next_arrival()) && !due(self.dev_b.next_arrival()) {
                return;
            }
        }
        panic!("the interfaces never went idle");
    }

    /// Moves the clock forward by `ns` and settles.
    pub fn advance(&mut self, ns: u64) {
        self.now += ns;
        self.settle();
    }

    /// Moves the clock forward to each deadline in turn (at most `rounds`), settling each time,
    /// until `done` holds. Returns whether it did.
    pub fn run_until(&mut self, rounds: usize, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        for _ in 0..rounds {
            self.settle();
            if done(self) {
                return true;
            }
            let next = [
                self.a.next_deadline(),
                self.b.next_deadline(),
                self.dev_a.next_arrival(),
                self.dev_b.next_arrival(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + MS)
            .max(self.now + 1);
            self.now = next;
        }
        false
    }
}

/// A chain holding a copy of `bytes`.
pub fn chain(bytes: &[u8]) -> IoBufChain {
    IoBufChain::from(SharedIoBuf::copy_from_slice(bytes))
}

/// The fields of a hand-built IPv4 datagram.
#[derive(Clone, Copy)]
pub struct Ip {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    /// In bytes (a multiple of 8).
    pub frag_offset: u16,
    pub more_frags: bool,
    /// Added to the computed header checksum (nonzero: a bad checksum).
    pub checksum_error: u16,
}

impl Ip {
    pub fn new(src: Ipv4Address, dst: Ipv4Address, protocol: u8) -> Self {
        Ip {
            src,
            dst,
            protocol,
            ttl: 64,
            ident: 0x4242,
            frag_offset: 0,
            more_frags: false,
            checksum_error: 0,
        }
    }
}

/// An Ethernet frame to `dst_mac` from `src_mac` carrying an IPv4 datagram (RFC 791 §3.1
/// layout, written byte by byte) with `payload`.
pub fn ipv4_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    ip: &Ip,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src_mac.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + payload.len()) as u16;
    let flags = (if ip.more_frags { 0x2000 } else { 0 }) | (ip.frag_offset >> 3);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&ip.ident.to_be_bytes());
    h[6..8].copy_from_slice(&flags.to_be_bytes());
    h[8] = ip.ttl;
    h[9] = ip.protocol;
    h[12..16].copy_from_slice(&ip.src.0);
    h[16..20].copy_from_slice(&ip.dst.0);
    let sum = checksum::checksum(&h).wrapping_add(ip.checksum_error);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram (RFC 768 layout) with a correct checksum, or a zero one if `no_checksum`.
pub fn udp_bytes(
    src: Ipv4Address,
    sport: u16,
    dst: Ipv4Address,
    dport: u16,
    data: &[u8],
    no_checksum: bool,
) -> Vec<u8> {
    let len = (8 + data.len()) as u16;
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(data);
    if !no_checksum {
        let pseudo = checksum::pseudo_header_v4(src, dst, 17, u32::from(len));
        let mut sum = !checksum::combine(&[pseudo, checksum::sum(&d)]);
        if sum == 0 {
            sum = 0xffff;
        }
        d[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    d
}

/// An ICMP echo request (RFC 792 layout) with a correct checksum.
pub fn echo_request_bytes(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let sum = checksum::checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// Takes every frame `device` has to deliver.
pub fn drain(device: &mut dyn Device) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(frame) = device.receive() {
        frames.push(frame.to_vec());
    }
    frames
}
