//! [`Interface`]: one network interface, sans-IO over any [`Device`]. It takes frames from the
//! device, answers ARP, reassembles and dispatches IPv4 to ICMP, UDP and the transport (TCP),
//! and queues what it sends for the device, resolving next hops through its ARP cache. It owns
//! no clock and no thread: the event loop calls [`Interface::poll`] with the time and sleeps
//! until [`Interface::next_deadline`] or the next frame.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem;

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::arp::{self, ArpCache, Enqueued};
use super::config::{InterfaceConfig, Ipv4Cidr};
use super::counters::InterfaceCounters;
use super::icmp::{self, IcmpEvent};
use super::ipv4::{self, HeaderFields, Reassembler, Reassembly};
use super::transport::{IpTransport, NoTransport};
use super::udp::{self, UdpDatagram, UdpError, UdpHandle, UdpSockets};
use crate::device::{Device, DeviceCapabilities, DeviceError};
use crate::tcp::{TcpConfig, TcpStack};
use crate::wire::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;
use crate::wire::{
    checksum, ArpOperation, ArpPacket, ArpRepr, Checksum, ChecksumCapabilities, EtherType,
    EthernetAddress, EthernetFrame, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet,
    UdpPacket,
};

/// A frame, or an IPv4 packet waiting for its next hop, on its way to the device, with the
/// MSS the device is to cut it into when it is a TCP segment longer than the MTU (0: none).
#[derive(Debug)]
struct Outgoing {
    bytes: IoBufChain,
    segment_size: u16,
}

/// Why a datagram could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No route: no address configured for a unicast destination, or no gateway for one
    /// outside the subnet.
    NoRoute,
    /// The payload is larger than an IPv4 datagram can carry.
    TooLarge,
}

/// Where a datagram goes on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextHop {
    /// To every station.
    Broadcast,
    /// To a multicast group's MAC (RFC 1112 §6.4).
    Multicast(EthernetAddress),
    /// To the station with this IPv4 address (the destination or the gateway).
    Neighbour(Ipv4Address),
}

/// The checksum work the stack does, given what the device does (both directions apply alike
/// to every protocol).
fn checksum_caps(device: &DeviceCapabilities) -> ChecksumCapabilities {
    let mode = match (device.rx_checksum_offload, device.tx_checksum_offload) {
        (false, false) => Checksum::Software,
        (true, false) => Checksum::OffloadRx,
        (false, true) => Checksum::OffloadTx,
        (true, true) => Checksum::Offloaded,
    };
    ChecksumCapabilities { ipv4: mode, icmpv4: mode, udp: mode, tcp: mode }
}

/// One network interface over a [`Device`], with its ARP cache, reassembly buffer, UDP sockets,
/// ICMP event queue and a transport `T` (TCP) plugged in through [`IpTransport`].
pub struct Interface<T: IpTransport = NoTransport> {
    config: InterfaceConfig,
    mac: EthernetAddress,
    device_mtu: usize,
    /// The largest TCP/IPv4 packet the device segments itself, 0 for none.
    tso_max_len: usize,
    caps: ChecksumCapabilities,
    arp: ArpCache<Outgoing>,
    reassembler: Reassembler,
    udp: UdpSockets,
    icmp_events: VecDeque<IcmpEvent>,
    tx: VecDeque<Outgoing>,
    counters: InterfaceCounters,
    next_ident: u16,
    last_now_ns: u64,
    /// A gratuitous ARP announcement is due.
    announce: bool,
    /// The device vouched for the TCP or UDP checksum of the frame being handled
    /// ([`Device::receive_checksum_verified`]).
    rx_checksum_verified: bool,
    /// Reused between sends so fragmenting allocates no list.
    staging: Vec<IoBufChain>,
    transport: T,
}

impl Interface<NoTransport> {
    /// An interface over `device` (its MAC, MTU and checksum offloads) with no transport.
    pub fn new(config: InterfaceConfig, device: &dyn Device) -> Self {
        Interface::with_transport(config, device, NoTransport)
    }
}

impl Interface<TcpStack> {
    /// An interface over `device` with cairn's TCP. The stack's MTU, checksum offload and
    /// header headroom are set from the interface and device, whatever `tcp` says.
    pub fn with_tcp(config: InterfaceConfig, device: &dyn Device, mut tcp: TcpConfig) -> Self {
        let device_caps = device.capabilities();
        tcp.mtu = config.mtu.map_or(device_caps.mtu, |m| m.min(device_caps.mtu));
        tcp.checksum_offload = device_caps.offloads_tcp_checksum();
        // Room for the largest IPv4 and TCP headers in every segment the device cuts.
        tcp.tso_max_payload = device_caps.tcp_segmentation_max().saturating_sub(20 + 60);
        tcp.header_headroom = tcp.header_headroom.max(ipv4::HEADROOM);
        Interface::with_transport(config, device, TcpStack::new(tcp))
    }

    /// The TCP stack, for its application API (listen, connect, send, recv, events).
    pub fn tcp(&mut self) -> &mut TcpStack {
        &mut self.transport
    }
}

impl<T: IpTransport> Interface<T> {
    /// An interface over `device` handing TCP segments to `transport`.
    pub fn with_transport(config: InterfaceConfig, device: &dyn Device, transport: T) -> Self {
        let device_caps = device.capabilities();
        Interface {
            config,
            mac: device_caps.mac,
            device_mtu: device_caps.mtu,
            tso_max_len: device_caps.tcp_segmentation_max(),
            caps: checksum_caps(&device_caps),
            arp: ArpCache::new(config.arp),
            reassembler: Reassembler::new(config.reassembly),
            udp: UdpSockets::new(),
            icmp_events: VecDeque::new(),
            tx: VecDeque::new(),
            counters: InterfaceCounters::default(),
            next_ident: 1,
            last_now_ns: 0,
            announce: config.gratuitous_arp && config.ipv4.is_some(),
            rx_checksum_verified: false,
            staging: Vec::new(),
            transport,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &InterfaceConfig {
        &self.config
    }

    /// Sets (or removes) the address and subnet; announces it with a gratuitous ARP if the
    /// configuration asks for that.
    pub fn set_ipv4(&mut self, ipv4: Option<Ipv4Cidr>) {
        self.announce = self.config.gratuitous_arp && ipv4.is_some() && ipv4 != self.config.ipv4;
        self.config.ipv4 = ipv4;
    }

    /// Sets (or removes) the default gateway.
    pub fn set_gateway(&mut self, gateway: Option<Ipv4Address>) {
        self.config.gateway = gateway;
    }

    /// The interface's address, if one is configured.
    pub fn ipv4_address(&self) -> Option<Ipv4Address> {
        self.config.ipv4.map(|c| c.address)
    }

    /// The interface's MAC address (the device's).
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// The IP MTU in use: the configured one, capped by the device's.
    pub fn mtu(&self) -> usize {
        self.config.mtu.map_or(self.device_mtu, |m| m.min(self.device_mtu))
    }

    /// The checksums this interface computes in software.
    pub fn checksum_caps(&self) -> ChecksumCapabilities {
        self.caps
    }

    /// The counters.
    pub fn counters(&self) -> &InterfaceCounters {
        &self.counters
    }

    /// Resolved ARP entries, for status displays.
    pub fn arp_entries(&self) -> impl Iterator<Item = (Ipv4Address, EthernetAddress)> + '_ {
        self.arp.entries(self.last_now_ns)
    }

    /// The transport (TCP), for its application API.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport (TCP), writable, for its application API.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Does the interface's work at time `now_ns`: takes up to `rx_budget` frames from
    /// `device`, runs the ARP, reassembly and transport timers, collects the transport's
    /// segments, and hands queued frames to the device. Returns whether anything happened.
    pub fn poll(&mut self, now_ns: u64, device: &mut dyn Device) -> bool {
        self.last_now_ns = now_ns;
        let mut did_work = false;
        for _ in 0..self.config.rx_budget {
            let Some(frame) = device.receive() else { break };
            did_work = true;
            self.rx_checksum_verified = device.receive_checksum_verified();
            self.receive_frame(now_ns, frame.freeze());
            self.rx_checksum_verified = false;
        }
        did_work |= self.run_timers(now_ns);
        did_work |= self.dispatch_transport(now_ns, device);
        did_work |= self.transmit(device);
        did_work
    }

    /// When [`Interface::poll`] next has timed work to do: an ARP retry, a reassembly timeout,
    /// a transport timer, or frames the device had no room for (then the time of the last poll,
    /// meaning "now"). `None` if only a received frame can make work.
    pub fn next_deadline(&self) -> Option<u64> {
        let pending = (!self.tx.is_empty() || self.announce || self.transport.has_pending_output())
            .then_some(self.last_now_ns);
        [
            pending,
            self.arp.next_deadline(),
            self.reassembler.next_deadline(),
            self.transport.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- UDP -----

    /// Binds a UDP socket to `port` (0: a free port in the dynamic range).
    pub fn udp_bind(&mut self, port: u16) -> Result<UdpHandle, UdpError> {
        self.udp.bind(port)
    }

    /// Closes a UDP socket, dropping what it had not read.
    pub fn udp_close(&mut self, handle: UdpHandle) -> Result<(), UdpError> {
        self.udp.close(handle)
    }

    /// The next datagram received on `handle`.
    pub fn udp_recv(&mut self, handle: UdpHandle) -> Result<Option<UdpDatagram>, UdpError> {
        self.udp.recv(handle)
    }

    /// Sends `payload` from `handle`'s port to `dst:dst_port`. The payload's buffers are sent
    /// as they are (the header goes into the first one's headroom when it is the only buffer
    /// over its storage). Resolution timers start at the time of the last poll.
    pub fn udp_send_to(
        &mut self,
        handle: UdpHandle,
        dst: Ipv4Address,
        dst_port: u16,
        payload: IoBufChain,
    ) -> Result<(), UdpError> {
        if !self.udp.is_bound(handle.port()) {
            return Err(UdpError::NotBound);
        }
        if dst_port == 0 {
            return Err(UdpError::BadPort);
        }
        let src = self.ipv4_address().unwrap_or(Ipv4Address::UNSPECIFIED);
        let datagram = udp::datagram(src, handle.port(), dst, dst_port, payload, &self.caps)?;
        let now = self.last_now_ns;
        self.send_ipv4(now, None, dst, IpProtocol::Udp, datagram).map_err(|e| match e {
            SendError::NoRoute => UdpError::NoRoute,
            SendError::TooLarge => UdpError::TooLarge,
        })?;
        self.counters.udp_tx += 1;
        Ok(())
    }

    // ----- ICMP -----

    /// Sends an echo request (ping) to `dst`; the reply arrives as [`IcmpEvent::EchoReply`]
    /// from [`Interface::recv_icmp`].
    pub fn ping(
        &mut self,
        now_ns: u64,
        dst: Ipv4Address,
        ident: u16,
        seq_no: u16,
        payload: IoBufChain,
    ) -> Result<(), SendError> {
        let message = icmp::echo_request(ident, seq_no, payload, &self.caps);
        self.send_ipv4(now_ns, None, dst, IpProtocol::Icmp, message)
    }

    /// The next ICMP event (echo reply, error) for the application.
    pub fn recv_icmp(&mut self) -> Option<IcmpEvent> {
        self.icmp_events.pop_front()
    }

    // ----- IPv4 output -----

    /// Sends `payload` (a transport header and data) to `dst` in an IPv4 datagram from `src`
    /// (default: our address, or 0.0.0.0 without one), fragmenting it if it exceeds the MTU and
    /// resolving the next hop through ARP (the datagram waits, bounded, while it resolves).
    pub fn send_ipv4(
        &mut self,
        now_ns: u64,
        src: Option<Ipv4Address>,
        dst: Ipv4Address,
        protocol: IpProtocol,
        payload: IoBufChain,
    ) -> Result<(), SendError> {
        self.send_ipv4_segmented(now_ns, src, dst, protocol, payload, 0)
    }

    /// [`Interface::send_ipv4`] for a TCP segment that the device is to cut into segments of
    /// `segment_size` payload octets (when not 0): the datagram is not fragmented then.
    fn send_ipv4_segmented(
        &mut self,
        now_ns: u64,
        src: Option<Ipv4Address>,
        dst: Ipv4Address,
        protocol: IpProtocol,
        payload: IoBufChain,
        segment_size: u16,
    ) -> Result<(), SendError> {
        let next_hop = self.route(dst).ok_or_else(|| {
            self.counters.ipv4_no_route += 1;
            SendError::NoRoute
        })?;
        let src = src.or(self.ipv4_address()).unwrap_or(Ipv4Address::UNSPECIFIED);
        let ident = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        let fields = HeaderFields { src, dst, protocol, ttl: self.config.ttl, ident };
        let mut staging = mem::take(&mut self.staging);
        let segmented = segment_size > 0 && self.tso_max_len > 0;
        let mtu = if segmented { self.tso_max_len } else { self.mtu() };
        let segment_size = if segmented { segment_size } else { 0 };
        let result = ipv4::output(&fields, payload, mtu, &self.caps, |packet| staging.push(packet));
        if result.is_err() {
            self.staging = staging;
            return Err(SendError::TooLarge);
        }
        if staging.len() > 1 {
            self.counters.ipv4_fragmented_tx += 1;
        }
        for bytes in staging.drain(..) {
            self.link_send(now_ns, next_hop, Outgoing { bytes, segment_size });
        }
        self.staging = staging;
        Ok(())
    }

    /// The next hop for `dst` (RFC 1122 §3.3.1: on-link destinations directly, the rest through
    /// the default gateway).
    fn route(&self, dst: Ipv4Address) -> Option<NextHop> {
        if dst.is_broadcast() {
            return Some(NextHop::Broadcast);
        }
        if dst.is_multicast() {
            let [_, b, c, d] = dst.0;
            return Some(NextHop::Multicast(EthernetAddress([0x01, 0x00, 0x5e, b & 0x7f, c, d])));
        }
        let cidr = self.config.ipv4?;
        if cidr.broadcast() == Some(dst) {
            return Some(NextHop::Broadcast);
        }
        if dst == cidr.address || dst.is_unspecified() {
            return None;
        }
        if cidr.contains(dst) {
            return Some(NextHop::Neighbour(dst));
        }
        self.config.gateway.map(NextHop::Neighbour)
    }

    /// Sends an IPv4 packet to its next hop, or holds it while the hop resolves.
    fn link_send(&mut self, now_ns: u64, next_hop: NextHop, packet: Outgoing) {
        let mac = match next_hop {
            NextHop::Broadcast => EthernetAddress::BROADCAST,
            NextHop::Multicast(mac) => mac,
            NextHop::Neighbour(ip) => match self.arp.lookup(now_ns, ip) {
                Some(mac) => mac,
                None => {
                    match self.arp.enqueue(now_ns, ip, packet) {
                        Enqueued::SendRequest => self.send_arp_request(ip),
                        Enqueued::Waiting => {}
                        Enqueued::Dropped => self.counters.arp_queue_drops += 1,
                    }
                    return;
                }
            },
        };
        self.ethernet_send(mac, EtherType::Ipv4, packet);
    }

    /// Puts an Ethernet header in front of `payload` and queues the frame for the device.
    fn ethernet_send(&mut self, dst: EthernetAddress, ethertype: EtherType, payload: Outgoing) {
        let Outgoing { bytes: mut frame, segment_size } = payload;
        let src = self.mac;
        ipv4::prepend(&mut frame, ETHERNET_HEADER_LEN, 0, |h| {
            let mut frame = EthernetFrame::new_unchecked(h);
            frame.set_dst_addr(dst);
            frame.set_src_addr(src);
            frame.set_ethertype(ethertype);
        });
        self.queue(Outgoing { bytes: frame, segment_size });
    }

    /// Queues a whole frame for the device, or drops and counts it if the queue is full.
    fn queue_frame(&mut self, frame: IoBufChain) {
        self.queue(Outgoing { bytes: frame, segment_size: 0 });
    }

    /// [`Interface::queue_frame`], keeping the segmentation asked of the device.
    fn queue(&mut self, frame: Outgoing) {
        if self.tx.len() >= self.config.tx_queue_len {
            self.counters.tx_queue_full += 1;
        } else {
            self.tx.push_back(frame);
        }
    }

    /// Broadcasts a request for `target`'s hardware address.
    fn send_arp_request(&mut self, target: Ipv4Address) {
        let ip = self.ipv4_address().unwrap_or(Ipv4Address::UNSPECIFIED);
        let repr = arp::request(self.mac, ip, target);
        self.queue_frame(arp::frame(self.mac, EthernetAddress::BROADCAST, &repr));
        self.counters.arp_requests_tx += 1;
    }

    /// Hands queued frames to the device until it is full; a frame it had no room for stays
    /// first in the queue. A device that says it has room ([`Device::ready_to_transmit`])
    /// takes the frame itself; another is offered a clone of the chain (one reference count
    /// per segment), since it drops what it refuses.
    fn transmit(&mut self, device: &mut dyn Device) -> bool {
        let mut sent = false;
        let send = |device: &mut dyn Device, bytes: IoBufChain, segment_size: u16| {
            if segment_size > 0 {
                device.transmit_segmented(bytes, segment_size)
            } else {
                device.transmit(bytes)
            }
        };
        while let Some(frame) = self.tx.front() {
            // A device that says it has room takes the frame itself; otherwise it gets a copy
            // of the chain (buffers shared, not bytes) and the frame stays queued if it is full.
            let segment_size = frame.segment_size;
            let result = if device.ready_to_transmit() {
                let frame = self.tx.pop_front().expect("front exists");
                match send(device, frame.bytes, segment_size) {
                    // It broke its promise: the frame is gone.
                    Err(DeviceError::Full) => Err(DeviceError::Io(0)),
                    result => result,
                }
            } else {
                let result = send(device, frame.bytes.clone(), segment_size);
                if result != Err(DeviceError::Full) {
                    self.tx.pop_front();
                }
                result
            };
            match result {
                Ok(()) => {
                    self.counters.tx_frames += 1;
                    sent = true;
                }
                Err(DeviceError::Full) => break,
                Err(DeviceError::TooLarge | DeviceError::Io(_)) => self.counters.tx_errors += 1,
            }
        }
        if sent {
            device.flush();
        }
        sent
    }

    // ----- timers and transport output -----

    /// Runs ARP retries, reassembly timeouts, the transport's timers and a pending gratuitous
    /// ARP. Returns whether any sent or dropped something.
    fn run_timers(&mut self, now_ns: u64) -> bool {
        let mut did_work = false;
        let timers = self.arp.poll(now_ns);
        for ip in &timers.retry {
            self.send_arp_request(*ip);
        }
        self.counters.arp_failures += timers.failures;
        self.counters.arp_queue_drops += timers.dropped;
        did_work |= !timers.retry.is_empty() || timers.failures > 0;
        let expired = self.reassembler.expire(now_ns) as u64;
        self.counters.frag_timeouts += expired;
        did_work |= expired > 0;
        if self.transport.next_deadline().is_some_and(|d| d <= now_ns) {
            self.transport.on_timer(now_ns);
            did_work = true;
        }
        if self.announce {
            self.announce = false;
            if let Some(ip) = self.ipv4_address() {
                self.send_arp_request(ip);
                did_work = true;
            }
        }
        did_work
    }

    /// Collects the transport's segments and sends each in a datagram, handing the queue to
    /// `device` whenever it is full.
    fn dispatch_transport(&mut self, now_ns: u64, device: &mut dyn Device) -> bool {
        let mut segments = Vec::new();
        self.transport.dispatch(now_ns, &mut |src, dst, segment, size| {
            segments.push((src, dst, segment, size))
        });
        let did_work = !segments.is_empty();
        for (src, dst, segment, segment_size) in segments {
            // A window's worth of segments can outnumber the queue: hand the queue to the
            // device as it fills rather than drop what the window allowed.
            if self.tx.len() >= self.config.tx_queue_len {
                self.transmit(device);
            }
            let protocol = IpProtocol::Tcp;
            if self
                .send_ipv4_segmented(now_ns, Some(src), dst, protocol, segment, segment_size)
                .is_ok()
            {
                self.counters.tcp_tx += 1;
            }
        }
        did_work
    }

    // ----- input -----

    /// Handles one received frame.
    fn receive_frame(&mut self, now_ns: u64, frame: SharedIoBuf) {
        self.counters.rx_frames += 1;
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            self.counters.rx_truncated += 1;
            return;
        };
        let dst = eth.dst_addr();
        if dst != self.mac && !dst.is_broadcast() {
            self.counters.rx_not_for_us += 1;
            return;
        }
        match eth.ethertype() {
            EtherType::Arp => self.receive_arp(now_ns, eth.payload()),
            EtherType::Ipv4 => self.receive_ipv4(now_ns, &frame),
            _ => self.counters.rx_unknown_ethertype += 1,
        }
    }

    /// Handles an ARP packet (RFC 826, "packet reception").
    fn receive_arp(&mut self, now_ns: u64, bytes: &[u8]) {
        let Ok(repr) = ArpPacket::new_checked(bytes).and_then(|p| ArpRepr::parse(&p)) else {
            self.counters.arp_malformed += 1;
            return;
        };
        match repr.operation {
            ArpOperation::Request => self.counters.arp_requests_rx += 1,
            ArpOperation::Reply => self.counters.arp_replies_rx += 1,
            ArpOperation::Unknown(_) => {
                self.counters.arp_malformed += 1;
                return;
            }
        }
        let (sha, spa) = (repr.source_hardware_addr, repr.source_protocol_addr);
        let ours = self.config.ipv4;
        let for_us = ours.is_some_and(|c| c.address == repr.target_protocol_addr);
        // Learn the sender if it is a real station on our subnet, not claiming our own address:
        // always when the packet is for us, otherwise only to refresh an entry we hold (RFC
        // 826's merge flag).
        let learnable = sha.is_unicast()
            && !spa.is_unspecified()
            && ours.is_some_and(|c| c.contains(spa) && c.address != spa);
        if learnable && (for_us || self.arp.contains(spa)) {
            for packet in self.arp.insert(now_ns, spa, sha) {
                self.ethernet_send(sha, EtherType::Ipv4, packet);
            }
        }
        if for_us
            && self.config.answer_arp
            && repr.operation == ArpOperation::Request
            && sha.is_unicast()
        {
            let reply = ArpRepr {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.mac,
                source_protocol_addr: repr.target_protocol_addr,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            self.queue_frame(arp::frame(self.mac, sha, &reply));
            self.counters.arp_replies_tx += 1;
        }
    }

    /// Whether a datagram to `dst` is ours to take: our address, a broadcast, or (while no
    /// address is configured) any UDP datagram, since a DHCP server may send its offer to the
    /// address it is offering (RFC 2131 §4.1).
    fn accepts(&self, dst: Ipv4Address, protocol: IpProtocol) -> bool {
        if dst.is_broadcast() {
            return true;
        }
        match self.config.ipv4 {
            Some(cidr) => dst == cidr.address || cidr.broadcast() == Some(dst),
            None => protocol == IpProtocol::Udp && !dst.is_multicast(),
        }
    }

    /// Handles an IPv4 datagram in `frame` (RFC 791 §3.2, RFC 1122 §3.2.1).
    fn receive_ipv4(&mut self, now_ns: u64, frame: &SharedIoBuf) {
        let bytes = &frame[ETHERNET_HEADER_LEN..];
        let Ok(packet) = Ipv4Packet::new_checked(bytes) else {
            self.counters.ipv4_malformed += 1;
            return;
        };
        if packet.version() != 4 {
            self.counters.ipv4_malformed += 1;
            return;
        }
        if self.caps.ipv4.verify() && !packet.verify_checksum() {
            self.counters.ipv4_bad_checksum += 1;
            return;
        }
        if packet.ttl() == 0 {
            self.counters.ipv4_ttl_zero += 1;
            return;
        }
        let (src, dst, protocol) = (packet.src_addr(), packet.dst_addr(), packet.protocol());
        if src.is_broadcast() || src.is_multicast() {
            self.counters.ipv4_bad_source += 1;
            return;
        }
        if !self.accepts(dst, protocol) {
            self.counters.ipv4_not_for_us += 1;
            return;
        }
        let header_len = usize::from(packet.header_len());
        let mut payload = frame.clone();
        payload.advance(ETHERNET_HEADER_LEN + header_len);
        payload.truncate(usize::from(packet.total_len()) - header_len);
        if packet.is_fragment() {
            // Whatever the device said of this fragment, it vouched for no other.
            self.rx_checksum_verified = false;
            self.counters.frag_rx += 1;
            match self.reassembler.add(now_ns, &packet, payload) {
                Reassembly::Held | Reassembly::Duplicate => {}
                Reassembly::Overflow => self.counters.frag_overflows += 1,
                Reassembly::Malformed => self.counters.frag_malformed += 1,
                Reassembly::Complete { payload, header } => {
                    self.counters.frag_reassembled += 1;
                    self.deliver(now_ns, src, dst, protocol, &header, payload);
                }
            }
            return;
        }
        self.deliver(now_ns, src, dst, protocol, &bytes[..header_len], payload);
    }

    /// Hands a whole datagram's payload to its protocol; `header` is its IPv4 header, for
    /// quoting in ICMP errors.
    fn deliver(
        &mut self,
        now_ns: u64,
        src: Ipv4Address,
        dst: Ipv4Address,
        protocol: IpProtocol,
        header: &[u8],
        payload: SharedIoBuf,
    ) {
        match protocol {
            IpProtocol::Icmp => self.receive_icmp(now_ns, src, dst, payload),
            IpProtocol::Udp => self.receive_udp(now_ns, src, dst, header, payload),
            IpProtocol::Tcp if self.transport.enabled() => {
                self.receive_tcp(now_ns, src, dst, payload)
            }
            IpProtocol::Tcp | IpProtocol::Unknown(_) => {
                self.counters.ipv4_unknown_protocol += 1;
                // RFC 1122 §3.2.2.1: protocol unreachable, for unicast datagrams only.
                self.send_unreachable(now_ns, src, dst, 2, header, &payload);
            }
        }
    }

    /// Sends destination unreachable with `code` about a datagram from `src` to `dst`, unless
    /// it was not addressed to us alone or came from no one (RFC 1122 §3.2.2: never about a
    /// broadcast, a multicast, or a datagram whose source is not a unicast host).
    fn send_unreachable(
        &mut self,
        now_ns: u64,
        src: Ipv4Address,
        dst: Ipv4Address,
        code: u8,
        header: &[u8],
        payload: &SharedIoBuf,
    ) {
        if self.ipv4_address() != Some(dst) || !src.is_unicast() || src.is_unspecified() {
            return;
        }
        let message = icmp::dst_unreachable(code, header, payload, &self.caps);
        if self.send_ipv4(now_ns, Some(dst), src, IpProtocol::Icmp, message).is_ok() {
            self.counters.icmp_unreachable_tx += 1;
        }
    }

    /// Handles an ICMP message (RFC 792; RFC 1122 §3.2.2).
    fn receive_icmp(
        &mut self,
        now_ns: u64,
        src: Ipv4Address,
        dst: Ipv4Address,
        payload: SharedIoBuf,
    ) {
        let repr = match Icmpv4Packet::new_checked(&payload[..])
            .and_then(|p| Icmpv4Repr::parse(&p, &self.caps))
        {
            Ok(repr) => repr,
            Err(crate::wire::Error::Checksum) => {
                self.counters.icmp_bad_checksum += 1;
                return;
            }
            Err(_) => {
                self.counters.icmp_malformed += 1;
                return;
            }
        };
        let mut data = payload;
        data.advance(crate::wire::icmpv4::HEADER_LEN);
        let event = match repr {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                if self.ipv4_address() != Some(dst) {
                    self.counters.icmp_broadcast_ignored += 1;
                    return;
                }
                self.counters.icmp_echo_requests += 1;
                let reply = icmp::echo_reply(ident, seq_no, data, &self.caps);
                // A reply with no route back is counted in ipv4_no_route.
                let _ = self.send_ipv4(now_ns, Some(dst), src, IpProtocol::Icmp, reply);
                return;
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                IcmpEvent::EchoReply { from: src, ident, seq_no, data, received_ns: now_ns }
            }
            Icmpv4Repr::DstUnreachable { code, .. } => {
                IcmpEvent::DstUnreachable { from: src, code, quoted: data }
            }
            Icmpv4Repr::TimeExceeded { code, .. } => {
                IcmpEvent::TimeExceeded { from: src, code, quoted: data }
            }
        };
        if self.icmp_events.len() >= self.config.icmp_queue_len {
            self.counters.icmp_events_dropped += 1;
        } else {
            self.icmp_events.push_back(event);
            self.counters.icmp_events += 1;
        }
    }

    /// Handles a UDP datagram (RFC 768; RFC 1122 §4.1.3).
    fn receive_udp(
        &mut self,
        now_ns: u64,
        src: Ipv4Address,
        dst: Ipv4Address,
        header: &[u8],
        payload: SharedIoBuf,
    ) {
        let Ok(packet) = UdpPacket::new_checked(&payload[..]) else {
            self.counters.udp_malformed += 1;
            return;
        };
        // A zero checksum means the sender computed none (RFC 768); verify_checksum accepts it.
        if self.caps.udp.verify() && !self.rx_checksum_verified && !packet.verify_checksum(src, dst)
        {
            self.counters.udp_bad_checksum += 1;
            return;
        }
        let (src_port, dst_port) = (packet.src_port(), packet.dst_port());
        let mut data = payload.clone();
        data.advance(crate::wire::udp::HEADER_LEN);
        data.truncate(packet.payload().len());
        let datagram = UdpDatagram { src, src_port, dst, data };
        match self.udp.deliver(dst_port, datagram, self.config.udp_queue_len) {
            Ok(true) => self.counters.udp_rx += 1,
            Ok(false) => self.counters.udp_queue_full += 1,
            Err(_) => {
                self.counters.udp_no_socket += 1;
                self.send_unreachable(now_ns, src, dst, icmp::PORT_UNREACHABLE, header, &payload);
            }
        }
    }

    /// Hands a TCP segment, its checksum verified, to the transport.
    fn receive_tcp(
        &mut self,
        now_ns: u64,
        src: Ipv4Address,
        dst: Ipv4Address,
        segment: SharedIoBuf,
    ) {
        if segment.len() < crate::wire::tcp::HEADER_LEN {
            self.counters.tcp_malformed += 1;
            return;
        }
        if self.ipv4_address() != Some(dst) {
            self.counters.ipv4_not_for_us += 1;
            return;
        }
        if self.caps.tcp.verify() && !self.rx_checksum_verified {
            let length = segment.len() as u32;
            let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Tcp.into(), length);
            if checksum::combine(&[pseudo, checksum::sum(&segment)]) != 0xffff {
                self.counters.tcp_bad_checksum += 1;
                return;
            }
        }
        self.counters.tcp_rx += 1;
        self.transport.input(now_ns, src, dst, segment);
    }
}
