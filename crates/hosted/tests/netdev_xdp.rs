//! The AF_XDP device on a veth pair against the Linux stack, in namespaces the test creates:
//! Linux pings cairn's address and cairn answers at the frame level (with the native and the
//! generic hook, copy mode); received frames are IOBufs over the UMEM that go back to the fill
//! ring when dropped, over 10,000 frames through 256; and an XDP program a crashed run left on
//! the interface is detached when the next device opens.

mod netdev_support;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_hosted::netdev::{XdpAttach, XdpBind, XdpConfig, XdpDevice};
use cairn_net::device::Device;
use cairn_net::wire::{
    ChecksumCapabilities, EtherType, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    UdpPacket, UdpRepr,
};
use cairn_rt::iobuf::StorageKind;
use netdev_support::{run_in, serve_ping, tx_checksum_off, veth_pair, Host, Netns};

/// Linux's end `va` (with `linux_cidr`) in one namespace, cairn's end `vb` in another.
fn link(tag: &str, linux_cidr: &str) -> (Netns, Netns) {
    let linux = Netns::new(&format!("{tag}-lx"));
    let cairn = Netns::new(&format!("{tag}-cx"));
    veth_pair(&linux, "va", &cairn, "vb");
    tx_checksum_off(&linux, "va");
    run_in(linux.name(), &["ip", "addr", "add", linux_cidr, "dev", "va"]);
    (linux, cairn)
}

/// Flushes until every frame is back (the last transmissions' completions reaped).
fn settle(device: &mut XdpDevice) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(2);
    while device.lent_frames() != 0 && Instant::now() < deadline {
        device.flush();
        std::thread::sleep(Duration::from_millis(5));
    }
    device.lent_frames()
}

fn ping_through(tag: &str, attach: XdpAttach) {
    let (linux, cairn) = link(tag, "10.77.2.1/24");
    let config = XdpConfig { attach, bind: XdpBind::Copy, ..XdpConfig::default() };
    let (mut device, program) = cairn.enter(move || {
        let device = XdpDevice::open_with("vb", 0, config).expect("open AF_XDP on vb");
        (device, XdpDevice::attached_program("vb").expect("query"))
    });
    assert!(program.is_some(), "a program steers vb's frames");
    assert!(!device.zero_copy(), "veth has copy mode only");
    assert_eq!(device.attach_mode(), attach);
    assert!(device.attached_by_link());

    let me = Host { mac: device.capabilities().mac, ip: Ipv4Address::new(10, 77, 2, 2) };
    let fd = device.raw_fd();
    let (done, text) = serve_ping(&mut device, fd, me, &linux, 3);
    assert!(text.contains("3 received"), "{text}");
    assert!(done.arp_replies >= 1, "{done:?}");
    assert_eq!(done.echo_replies, 3, "{done:?}");

    let xdp = device.xdp_counters();
    assert_eq!(xdp.tx_zero_copy, u64::from(done.echo_replies), "echoes turned around in place");
    assert_eq!(xdp.tx_copied, u64::from(done.arp_replies), "ARP replies copied into the UMEM");
    let counters = device.counters();
    assert_eq!(counters.tx_frames, u64::from(done.arp_replies + done.echo_replies));
    assert_eq!((counters.rx_dropped, counters.tx_dropped), (0, 0), "{counters:?}");
    assert_eq!(settle(&mut device), 0, "every frame came back");

    drop(device);
    let left = cairn.enter(|| XdpDevice::attached_program("vb").expect("query"));
    assert_eq!(left, None, "the program is detached with the device");
}

#[test]
fn xdp_native_hook_on_veth_answers_linux_ping() {
    ping_through("xdp-drv", XdpAttach::Driver);
}

#[test]
fn xdp_generic_hook_on_veth_answers_linux_ping() {
    ping_through("xdp-skb", XdpAttach::Skb);
}

#[test]
fn xdp_frames_are_lent_from_the_umem_and_refill_the_ring_over_10000_frames() {
    const FRAMES: u32 = 256;
    const FRAME_SIZE: usize = 2048;
    const BURST: u32 = 100;
    const TOTAL: u32 = 10_000;
    const PORT: u16 = 7777;
    let (linux, cairn) = link("xdp-umem", "10.77.3.1/24");
    let config = XdpConfig {
        frames: FRAMES,
        frame_size: FRAME_SIZE as u32,
        ring_size: 128,
        bind: XdpBind::Copy,
        ..XdpConfig::default()
    };
    let mut device = cairn.enter(move || XdpDevice::open_with("vb", 0, config).expect("open"));
    let mac = device.capabilities().mac.to_string();
    // No ARP needed: Linux knows cairn's address.
    run_in(
        linux.name(),
        &["ip", "neigh", "add", "10.77.3.2", "lladdr", &mac, "dev", "va", "nud", "permanent"],
    );

    // Linux sends bursts of datagrams, each burst once the previous one has been received.
    let (next_burst, bursts) = mpsc::channel::<()>();
    let sender = linux.spawn(move || {
        let socket = UdpSocket::bind("10.77.3.1:0").expect("bind");
        socket.connect(("10.77.3.2", PORT)).expect("connect");
        let mut payload = [0u8; 64];
        for burst in 0..TOTAL / BURST {
            for i in 0..BURST {
                payload[..4].copy_from_slice(&(burst * BURST + i).to_be_bytes());
                socket.send(&payload).expect("send");
            }
            if bursts.recv_timeout(Duration::from_secs(10)).is_err() {
                return burst;
            }
        }
        TOTAL / BURST
    });

    let umem = device.umem();
    let caps = ChecksumCapabilities::default();
    let mut seen = vec![false; TOTAL as usize];
    let mut frames_used = HashSet::new();
    let mut held = Vec::with_capacity(BURST as usize);
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < TOTAL && Instant::now() < deadline {
        let Some(frame) = device.receive() else {
            netdev_support::wait_readable(device.raw_fd(), Duration::from_millis(10));
            continue;
        };
        let eth = EthernetFrame::new_checked(&frame[..]).expect("ethernet");
        if eth.ethertype() != EtherType::Ipv4 {
            continue;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("ipv4");
        let ip_repr = Ipv4Repr::parse(&ip, &caps).expect("ipv4 header");
        if ip_repr.protocol != IpProtocol::Udp {
            continue;
        }
        let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
        // Whole checksums: the peer's TX offload is off.
        let udp_repr =
            UdpRepr::parse(&udp, ip_repr.src_addr, ip_repr.dst_addr, &caps).expect("udp checksum");
        assert_eq!(udp_repr.dst_port, PORT);
        let seq = u32::from_be_bytes(udp.payload()[..4].try_into().unwrap());
        assert!(!std::mem::replace(&mut seen[seq as usize], true), "datagram {seq} twice");

        // No copy: the buffer is the UMEM frame the kernel wrote.
        let at = frame.as_ptr() as usize;
        assert!(umem.contains(&at) && umem.contains(&(at + frame.len() - 1)));
        assert_eq!(frame.storage_kind(), StorageKind::External);
        frames_used.insert((at - umem.start) / FRAME_SIZE);

        held.push(frame);
        received += 1;
        if held.len() == BURST as usize {
            assert!(device.lent_frames() >= BURST, "held frames stay lent");
            held.clear();
            let _ = next_burst.send(());
        }
    }
    drop(next_burst);
    let bursts_sent = sender.join().expect("sender");
    assert_eq!(received, TOTAL, "after {bursts_sent} bursts");
    assert!(seen.iter().all(|&s| s));
    assert!(frames_used.len() <= FRAMES as usize);
    assert!(
        u64::from(TOTAL) / frames_used.len() as u64 >= 39,
        "{} frames carried {TOTAL} datagrams",
        frames_used.len()
    );

    let stats = device.statistics().expect("XDP_STATISTICS");
    assert_eq!(stats.rx_fill_ring_empty_descs, 0, "the fill ring never ran dry: {stats:?}");
    assert_eq!((stats.rx_dropped, stats.rx_ring_full), (0, 0), "{stats:?}");
    assert_eq!(device.xdp_counters().fill_starved, 0);
    assert_eq!(device.lent_frames(), 0, "every dropped frame came back");
    assert!(device.counters().rx_frames >= u64::from(TOTAL));
}

/// Environment of the crashing child: the namespace, and whether it attaches by BPF link.
const CRASH_NS: &str = "CAIRN_NETDEV_CRASH_NS";
const CRASH_LINK: &str = "CAIRN_NETDEV_CRASH_LINK";
const CRASH_EXIT: i32 = 42;

/// Runs [`crashing_xdp_child`] in a child process against `cairn`'s `vb`.
fn crash_a_child(cairn: &Netns, link: bool) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crashing_xdp_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_NS, cairn.name())
        .env(CRASH_LINK, if link { "1" } else { "0" })
        .status()
        .expect("run the child");
    assert_eq!(status.code(), Some(CRASH_EXIT), "the child opened the device and died");
}

#[test]
fn xdp_program_left_by_a_crashed_run_is_detached_at_start() {
    let (_linux, cairn) = link("xdp-crash", "10.77.4.1/24");

    // A run that attached over netlink and died leaves its program on the interface.
    crash_a_child(&cairn, false);
    let stale = cairn.enter(|| XdpDevice::attached_program("vb").expect("query"));
    assert!(stale.is_some(), "the crashed run's program stays attached");

    let config = XdpConfig { bind: XdpBind::Copy, ..XdpConfig::default() };
    let (device, ours) = cairn.enter(move || {
        let device = XdpDevice::open_with("vb", 0, config).expect("open despite the stale program");
        (device, XdpDevice::attached_program("vb").expect("query"))
    });
    assert!(ours.is_some() && ours != stale, "the stale program {stale:?} was replaced");
    drop(device);
    assert_eq!(cairn.enter(|| XdpDevice::attached_program("vb").expect("query")), None);

    // A run that attached by BPF link leaves nothing: the kernel detaches the link with it.
    crash_a_child(&cairn, true);
    assert_eq!(cairn.enter(|| XdpDevice::attached_program("vb").expect("query")), None);
}

/// Not a test of its own: the child process of
/// `xdp_program_left_by_a_crashed_run_is_detached_at_start`, which opens a device and exits
/// without running any destructor, as a crash would.
#[test]
#[ignore = "run as a child process by xdp_program_left_by_a_crashed_run_is_detached_at_start"]
fn crashing_xdp_child() {
    let Ok(ns) = std::env::var(CRASH_NS) else { return };
    let use_link = std::env::var(CRASH_LINK).as_deref() == Ok("1");
    netdev_support::enter_current_thread(&ns);
    let config = XdpConfig { bind: XdpBind::Copy, use_link, ..XdpConfig::default() };
    let device = XdpDevice::open_with("vb", 0, config).expect("child opens AF_XDP");
    assert_eq!(device.attached_by_link(), use_link);
    assert!(XdpDevice::attached_program("vb").expect("query").is_some());
    // SAFETY: _exit(2) ends the process at once, skipping every destructor.
    unsafe { libc::_exit(CRASH_EXIT) };
}

/// Sockets on two queues of a two-queue veth share one XDP program, which stays attached
/// while either socket is open and is detached with the last.
#[test]
fn xdp_sockets_on_two_queues_share_one_program() {
    let linux = Netns::new("xq2-lx");
    let cairn = Netns::new("xq2-cx");
    run_in(
        linux.name(),
        &[
            "ip",
            "link",
            "add",
            "va",
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "netns",
            cairn.name(),
        ],
    );
    run_in(linux.name(), &["ip", "link", "set", "va", "up"]);
    run_in(cairn.name(), &["ip", "link", "set", "vb", "up"]);
    let (devices, program) = cairn.enter(|| {
        let devices = XdpDevice::open_queues("vb", 0, 2, XdpConfig::default()).expect("open");
        (devices, XdpDevice::attached_program("vb").expect("query"))
    });
    assert!(program.is_some());
    assert_eq!(devices.iter().map(XdpDevice::queue).collect::<Vec<_>>(), [0, 1]);
    let macs: HashSet<_> = devices.iter().map(|d| d.capabilities().mac).collect();
    assert_eq!(macs.len(), 1, "one interface, one address");
    let mut devices = devices.into_iter();
    drop(devices.next());
    let still = cairn.enter(|| XdpDevice::attached_program("vb").expect("query"));
    assert_eq!(still, program, "queue 1's socket keeps the program");
    drop(devices);
    let left = cairn.enter(|| XdpDevice::attached_program("vb").expect("query"));
    assert_eq!(left, None, "the program is detached with the last socket");
}
