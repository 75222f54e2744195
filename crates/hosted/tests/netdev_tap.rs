//! The TAP device against the Linux stack: Linux pings cairn's address through a tap
//! interface in a namespace the test creates, and cairn answers at the frame level (ARP reply
//! and ICMP echo reply built with `cairn_net::wire`), from a plain thread and from a cairn core
//! that sleeps on the device's descriptor between frames.

mod netdev_support;

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use cairn_hosted::netdev::{self, Tap, TapConfig};
use cairn_net::device::Device;
use cairn_net::wire::{EthernetAddress, Ipv4Address};
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::StorageKind;
use netdev_support::{answer, run, run_in, serve_ping, Answered, Host, Netns};

const CAIRN_IP: Ipv4Address = Ipv4Address::new(10, 77, 1, 2);

fn host(tap: &Tap) -> Host {
    Host { mac: tap.capabilities().mac, ip: CAIRN_IP }
}

#[test]
fn tap_created_by_cairn_answers_linux_ping() {
    let ns = Netns::new("tap-create");
    let mut tap = ns.enter(|| Tap::open("ctap0", true).expect("create tap"));
    assert_eq!(tap.name(), "ctap0");
    run_in(&ns.name, &["ip", "addr", "add", "10.77.1.1/24", "dev", "ctap0"]);
    let caps = tap.capabilities();
    assert_eq!(caps.mtu, 1500);
    assert!(caps.mac.is_unicast() && caps.mac.is_local());
    let linux_mac = run_in(&ns.name, &["cat", "/sys/class/net/ctap0/address"]);
    assert_ne!(linux_mac.trim(), caps.mac.to_string(), "cairn needs its own address");

    let fd = tap.raw_fd();
    let me = host(&tap);
    let (done, text) = serve_ping(&mut tap, fd, me, &ns, 3);
    assert!(text.contains("3 received"), "{text}");
    assert!(done.arp_replies >= 1, "{done:?}");
    assert_eq!(done.echo_replies, 3, "{done:?}");
    let counters = tap.counters();
    assert_eq!(counters.tx_frames, u64::from(done.arp_replies + done.echo_replies));
    assert!(counters.rx_frames >= u64::from(done.arp_replies + done.echo_replies));
    assert_eq!((counters.rx_dropped, counters.tx_dropped), (0, 0));
    assert_eq!(tap.tap_counters().pool_empty, 0);
    assert_eq!(tap.lent_buffers(), 0, "every received buffer went back to the pool");

    // A tap cairn created lives as long as its descriptor.
    drop(tap);
    let gone = std::process::Command::new("ip")
        .args(["-n", &ns.name, "link", "show", "ctap0"])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the created tap outlived the device");
}

#[test]
fn tap_attaches_to_an_existing_interface() {
    let ns = Netns::new("tap-attach");
    run("ip", &["-n", &ns.name, "tuntap", "add", "dev", "ctap1", "mode", "tap"]);
    run("ip", &["-n", &ns.name, "addr", "add", "10.77.1.1/24", "dev", "ctap1"]);
    run("ip", &["-n", &ns.name, "link", "set", "ctap1", "up"]);
    let mac = EthernetAddress([0x02, 0xca, 0x1e, 0, 0, 1]);
    // Without virtio-net headers: frames go as they are, checksums all cairn's.
    let config = TapConfig {
        mac: Some(mac),
        bring_up: false,
        buffers: 8,
        multi_queue: false,
        offloads: false,
    };
    let mut tap = ns.enter(move || Tap::open_with("ctap1", false, config).expect("attach"));
    assert_eq!(tap.capabilities().mac, mac);

    let fd = tap.raw_fd();
    let me = host(&tap);
    let (done, text) = serve_ping(&mut tap, fd, me, &ns, 2);
    assert!(text.contains("2 received"), "{text}");
    assert_eq!(done.echo_replies, 2);
    let neighbours = run_in(&ns.name, &["ip", "neigh", "show", "dev", "ctap1"]);
    assert!(
        neighbours.contains("10.77.1.2") && neighbours.contains("02:ca:1e:00:00:01"),
        "{neighbours}"
    );

    // An interface cairn attached to (persistent) stays when the device goes.
    drop(tap);
    run("ip", &["-n", &ns.name, "link", "show", "ctap1"]);
}

#[test]
fn tap_frames_are_pooled_buffers_and_fall_back_to_the_heap_when_all_are_held() {
    let ns = Netns::new("tap-pool");
    let config = TapConfig { buffers: 2, ..TapConfig::default() };
    let mut tap = ns.enter(move || Tap::open_with("ctap2", true, config).expect("create tap"));
    run_in(&ns.name, &["ip", "addr", "add", "10.77.1.1/24", "dev", "ctap2"]);
    // Linux asks for cairn's address over and over (ARP requests, one a second per probe);
    // hold the first frames so the pool runs out.
    let mut ping = netdev_support::spawn_ping(&ns, &CAIRN_IP.to_string(), 4);
    let mut held = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while held.len() < 3 && std::time::Instant::now() < deadline {
        match tap.receive() {
            Some(frame) => held.push(frame),
            None => netdev_support::wait_readable(tap.raw_fd(), Duration::from_millis(50)),
        }
    }
    let _ = ping.kill();
    let _ = ping.wait();
    assert_eq!(held.len(), 3, "three frames from Linux");
    assert_eq!(held[0].storage_kind(), StorageKind::External);
    assert_eq!(held[1].storage_kind(), StorageKind::External);
    assert_eq!(held[2].storage_kind(), StorageKind::Heap, "pool of two was empty");
    assert_eq!(tap.tap_counters().pool_empty, 1);
    assert_eq!(tap.lent_buffers(), 2);
    held.clear();
    assert_eq!(tap.lent_buffers(), 0);
}

#[test]
fn tap_served_by_a_cairn_core_sleeping_on_its_descriptor() {
    let ns = Netns::new("tap-core");
    let tap = ns.enter(|| Tap::open("ctap3", true).expect("create tap"));
    run_in(&ns.name, &["ip", "addr", "add", "10.77.1.1/24", "dev", "ctap3"]);
    let me = host(&tap);
    let slot: &'static Mutex<Option<Tap>> = Box::leak(Box::new(Mutex::new(Some(tap))));
    let (report, results) = mpsc::channel::<(Answered, u64)>();
    let report: &'static Mutex<mpsc::Sender<(Answered, u64)>> =
        Box::leak(Box::new(Mutex::new(report)));
    let rt = cairn_hosted::start(1, move |_| {
        let mut tap = slot.lock().unwrap().take().expect("one core");
        spawn_local(async move {
            let mut done = Answered::default();
            let mut sleeps = 0u64;
            while done.echo_replies < 3 {
                while let Some(frame) = tap.receive() {
                    if let Some(reply) = answer(me, frame, &mut done) {
                        tap.transmit(reply).expect("transmit");
                    }
                }
                tap.flush();
                if done.echo_replies < 3 {
                    sleeps += 1;
                    netdev::readable(tap.raw_fd()).await.expect("poll");
                }
            }
            report.lock().unwrap().send((done, sleeps)).unwrap();
        });
    })
    .unwrap();
    let mut ping = netdev_support::spawn_ping(&ns, &CAIRN_IP.to_string(), 3);
    let result = results.recv_timeout(Duration::from_secs(20));
    let status = ping.wait().unwrap();
    rt.shutdown();
    rt.join().expect("core exits cleanly");
    let (done, sleeps) = result.expect("the core answered three pings");
    assert!(status.success());
    assert!(done.arp_replies >= 1);
    // The core slept between the pings (200 ms apart) instead of spinning.
    assert!(sleeps >= 3, "slept {sleeps} times");
}

/// A multi-queue tap opened as two queues: one interface, flagged multi_queue, with one
/// hardware address for both descriptors, gone when the last queue closes.
#[test]
fn tap_opens_as_several_queues_of_one_interface() {
    let ns = Netns::new("tap-mq");
    let taps = ns.enter(|| Tap::open_queues("cmq0", true, 2, TapConfig::default()).expect("open"));
    assert_eq!(taps.len(), 2);
    assert_eq!(taps[0].capabilities().mac, taps[1].capabilities().mac);
    assert_ne!(taps[0].raw_fd(), taps[1].raw_fd());
    let details = run_in(&ns.name, &["ip", "-details", "link", "show", "cmq0"]);
    assert!(details.contains("multi_queue"), "{details}");
    drop(taps);
    let gone =
        std::process::Command::new("ip").args(["-n", &ns.name, "link", "show", "cmq0"]).output();
    assert!(!gone.unwrap().status.success(), "the created tap outlived its queues");
}
