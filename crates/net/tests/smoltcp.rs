//! cairn against smoltcp, an independent implementation from crates.io, over cairn's in-memory
//! link: ARP and ping both ways, UDP echo, and TCP transfers with each side as the client.

mod iface_common;

use cairn_net::device::Device as CairnDevice;
use cairn_net::iface::{IcmpEvent, Interface};
use cairn_net::loopback::{self, LoopbackConfig, LoopbackDevice};
use cairn_net::tcp::{TcpConfig, TcpEvent, TcpStack, TcpState};
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};
use iface_common::{chain, config, IP_A, IP_B, MAC_A, MAC_B, MS};
use smoltcp::iface::{Config, Interface as SmolInterface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{self, HardwareAddress, IpAddress, IpCidr};

/// cairn's loopback end seen as a smoltcp device (frames copied in and out, as a NIC would).
struct SmolDevice(LoopbackDevice);

struct Rx(IoBuf);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct Tx<'a>(&'a mut LoopbackDevice);

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.0.transmit(IoBufChain::from(SharedIoBuf::from_vec(frame))).expect("link has room");
        result
    }
}

impl phy::Device for SmolDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.0.receive()?;
        Some((Rx(frame), Tx(&mut self.0)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

fn smol_ip(addr: cairn_net::wire::Ipv4Address) -> IpAddress {
    let [a, b, c, d] = addr.0;
    IpAddress::v4(a, b, c, d)
}

/// cairn at 10.0.0.1 (with TCP), smoltcp at 10.0.0.2.
struct Mixed {
    cairn: Interface<TcpStack>,
    cairn_dev: LoopbackDevice,
    smol: SmolInterface,
    smol_dev: SmolDevice,
    sockets: SocketSet<'static>,
    now: u64,
}

impl Mixed {
    fn new() -> Self {
        let (cairn_dev, smol_end) = loopback::pair(LoopbackConfig::default(), MAC_A, MAC_B);
        let cairn = Interface::with_tcp(config(IP_A), &cairn_dev, TcpConfig::default());
        let mut smol_dev = SmolDevice(smol_end);
        let smol_config = Config::new(HardwareAddress::Ethernet(wire::EthernetAddress(MAC_B.0)));
        let mut smol = SmolInterface::new(smol_config, &mut smol_dev, Instant::from_millis(0));
        smol.update_ip_addrs(|addrs| addrs.push(IpCidr::new(smol_ip(IP_B), 24)).unwrap());
        Mixed { cairn, cairn_dev, smol, smol_dev, sockets: SocketSet::new(vec![]), now: 0 }
    }

    /// One round: both stacks poll at the current time, then the clock moves 1 ms.
    fn step(&mut self) {
        for _ in 0..4 {
            self.cairn_dev.set_now(self.now);
            self.cairn.poll(self.now, &mut self.cairn_dev);
            let instant = Instant::from_micros((self.now / 1000) as i64);
            self.smol.poll(instant, &mut self.smol_dev, &mut self.sockets);
        }
        self.now += MS;
    }

    /// Steps until `done` holds, at most `rounds` times.
    fn run_until(&mut self, rounds: usize, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        for _ in 0..rounds {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn add_tcp(&mut self) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0; 65535]);
        let tx = tcp::SocketBuffer::new(vec![0; 65535]);
        self.sockets.add(tcp::Socket::new(rx, tx))
    }
}

#[test]
fn cairn_pings_smoltcp() {
    let mut net = Mixed::new();
    net.cairn.ping(0, IP_B, 0x1234, 7, chain(b"cairn says hi")).unwrap();
    let replied = net.run_until(100, |n| match n.cairn.recv_icmp() {
        Some(IcmpEvent::EchoReply { from, ident, seq_no, data, .. }) => {
            assert_eq!((from, ident, seq_no), (IP_B, 0x1234, 7));
            assert_eq!(data.as_slice(), b"cairn says hi");
            true
        }
        Some(other) => panic!("{other:?}"),
        None => false,
    });
    assert!(replied);
    assert_eq!(net.cairn.counters().arp_replies_rx, 1);
}

#[test]
fn smoltcp_pings_cairn() {
    let mut net = Mixed::new();
    let rx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]);
    let tx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]);
    let handle = net.sockets.add(icmp::Socket::new(rx, tx));
    let socket = net.sockets.get_mut::<icmp::Socket>(handle);
    socket.bind(icmp::Endpoint::Ident(0x4321)).unwrap();
    let echo = wire::Icmpv4Repr::EchoRequest { ident: 0x4321, seq_no: 3, data: b"smoltcp here" };
    let buf = socket.send(echo.buffer_len(), smol_ip(IP_A)).unwrap();
    echo.emit(&mut wire::Icmpv4Packet::new_unchecked(buf), &ChecksumCapabilities::default());
    let replied = net.run_until(100, |n| {
        let socket = n.sockets.get_mut::<icmp::Socket>(handle);
        let Ok((bytes, from)) = socket.recv() else { return false };
        assert_eq!(from, smol_ip(IP_A));
        let packet = wire::Icmpv4Packet::new_checked(bytes).unwrap();
        let repr = wire::Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(
            repr,
            wire::Icmpv4Repr::EchoReply { ident: 0x4321, seq_no: 3, data: b"smoltcp here" }
        );
        true
    });
    assert!(replied);
    assert_eq!(net.cairn.counters().icmp_echo_requests, 1);
    assert_eq!(net.cairn.counters().arp_replies_tx, 1);
}

#[test]
fn udp_echo_both_ways() {
    let mut net = Mixed::new();
    let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 65535]);
    let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 65535]);
    let handle = net.sockets.add(udp::Socket::new(rx, tx));
    net.sockets.get_mut::<udp::Socket>(handle).bind(5555).unwrap();
    let cairn_echo = net.cairn.udp_bind(7).unwrap();
    // smoltcp sends to cairn's echo port, small and near-MTU datagrams.
    let messages: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![0xab; 1400], b"three".to_vec()];
    for m in &messages {
        let socket = net.sockets.get_mut::<udp::Socket>(handle);
        socket.send_slice(m, (smol_ip(IP_A), 7)).unwrap();
    }
    let mut echoed = Vec::new();
    let done = net.run_until(200, |n| {
        while let Some(d) = n.cairn.udp_recv(cairn_echo).unwrap() {
            assert_eq!((d.src, d.src_port), (IP_B, 5555));
            n.cairn.udp_send_to(cairn_echo, d.src, d.src_port, IoBufChain::from(d.data)).unwrap();
        }
        let socket = n.sockets.get_mut::<udp::Socket>(handle);
        while let Ok((data, meta)) = socket.recv() {
            assert_eq!(meta.endpoint.port, 7);
            echoed.push(data.to_vec());
        }
        echoed.len() == messages.len()
    });
    assert!(done);
    assert_eq!(echoed, messages);
    // And cairn to smoltcp's port, which smoltcp answers... with nothing: just check delivery.
    let cairn_client = net.cairn.udp_bind(0).unwrap();
    net.cairn.udp_send_to(cairn_client, IP_B, 5555, chain(b"to smoltcp")).unwrap();
    let got = net.run_until(100, |n| {
        let socket = n.sockets.get_mut::<udp::Socket>(handle);
        match socket.recv() {
            Ok((data, meta)) => {
                assert_eq!(data, b"to smoltcp");
                assert_eq!(meta.endpoint.port, cairn_client.port());
                true
            }
            Err(_) => false,
        }
    });
    assert!(got);
}

#[test]
fn smoltcp_reports_cairns_port_unreachable() {
    let mut net = Mixed::new();
    let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
    let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
    let handle = net.sockets.add(udp::Socket::new(rx, tx));
    net.sockets.get_mut::<udp::Socket>(handle).bind(5555).unwrap();
    net.sockets.get_mut::<udp::Socket>(handle).send_slice(b"closed?", (smol_ip(IP_A), 9)).unwrap();
    net.run_until(20, |n| n.cairn.counters().icmp_unreachable_tx == 1);
    assert_eq!(net.cairn.counters().udp_no_socket, 1);
    assert_eq!(net.cairn.counters().icmp_unreachable_tx, 1);
}

/// The bytes of a deterministic pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 251) as u8).collect()
}

#[test]
fn tcp_cairn_client_to_smoltcp_server() {
    let mut net = Mixed::new();
    let server = net.add_tcp();
    net.sockets.get_mut::<tcp::Socket>(server).listen(8080).unwrap();
    let conn = net.cairn.tcp().connect(0, IP_A, 0, IP_B, 8080).unwrap();
    let data = pattern(256 * 1024);
    let mut offset = 0;
    let mut received = Vec::new();
    let done = net.run_until(20_000, |n| {
        while n.cairn.tcp().poll_event().is_some() {}
        if offset < data.len() && n.cairn.tcp().send_queue_len(conn) < 64 * 1024 {
            let end = (offset + 16 * 1024).min(data.len());
            if n.cairn.tcp().send(conn, chain(&data[offset..end])).is_ok() {
                offset = end;
                if offset == data.len() {
                    n.cairn.tcp().close(conn).unwrap();
                }
            }
        }
        let socket = n.sockets.get_mut::<tcp::Socket>(server);
        while socket.can_recv() {
            socket
                .recv(|b| {
                    received.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
        }
        if !socket.may_recv() && received.len() == data.len() {
            socket.close();
        }
        // smoltcp closed passively (CLOSE-WAIT, LAST-ACK, CLOSED on cairn's last ACK); cairn
        // sits in TIME-WAIT or has released the connection.
        let smol_closed = socket.state() == tcp::State::Closed;
        let cairn_state = n.cairn.tcp().state(conn);
        smol_closed && matches!(cairn_state, None | Some(TcpState::TimeWait))
    });
    assert!(done, "got {} of {} bytes", received.len(), data.len());
    assert!(received == data);
}

#[test]
fn tcp_smoltcp_client_to_cairn_server() {
    let mut net = Mixed::new();
    let listener = net.cairn.tcp().listen(IP_A, 7, 4).unwrap();
    let client = net.add_tcp();
    let cx = net.smol.context();
    net.sockets.get_mut::<tcp::Socket>(client).connect(cx, (smol_ip(IP_A), 7), 49500).unwrap();
    let data = pattern(256 * 1024);
    let mut offset = 0;
    let mut received = Vec::new();
    let mut server = None;
    let mut echoed_back = 0;
    let done = net.run_until(20_000, |n| {
        // smoltcp sends the pattern; cairn echoes what it gets; smoltcp counts the echo.
        let socket = n.sockets.get_mut::<tcp::Socket>(client);
        if socket.can_send() && offset < data.len() {
            offset += socket.send_slice(&data[offset..]).unwrap();
        }
        while socket.can_recv() {
            socket
                .recv(|b| {
                    received.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
        }
        while let Some(event) = n.cairn.tcp().poll_event() {
            if let TcpEvent::Accepted { .. } = event {
                server = n.cairn.tcp().accept(listener);
            }
        }
        if let Some(s) = server {
            while let Some(buf) = n.cairn.tcp().recv(s) {
                echoed_back += buf.len();
                n.cairn.tcp().send(s, buf).unwrap();
            }
        }
        received.len() == data.len()
    });
    assert!(done, "echoed {} of {} bytes", received.len(), data.len());
    assert_eq!(echoed_back, data.len());
    assert!(received == data);
}
