//! `cairn net` against the Linux stack (issue 5, Tests): cairn's TCP/IP stack on a TAP or
//! AF_XDP device in a network namespace, Linux's in the namespace's tap interface or at the
//! other end of a veth pair, with Linux tools and small Python programs as peers. Every
//! namespace and interface is created by the test and deleted when it ends.
//!
//! Run as root with `cargo test --release -p cairn --test net_linux` (a debug build moves the
//! 256 MiB transfers too slowly; `CAIRN_NET_BULK_MIB` sets their size).

mod net_common;

use std::time::Duration;

use net_common::{
    bulk_bytes, bulk_client, field, TapLink, VethLink, ABORTING_CLIENT, LINUX_SERVER,
    SHORT_CONNECTIONS, STUFFING_CLIENT, UDP_CLIENT,
};

const READY: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(150);

/// Linux pings cairn (served by `cairn net echo`), then cairn pings Linux.
fn ping_both_ways(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (linux_ip, cairn_cidr) = (format!("10.{net}.0.1"), format!("10.{net}.0.2/24"));
    let cairn_ip = format!("10.{net}.0.2");
    let mut echo = ns_cairn.cairn(&["echo", "--device", device, "--address", &cairn_cidr]);
    echo.wait_for("ready", READY);
    let out = ns_linux.exec(&["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", &cairn_ip]);
    assert!(out.contains("3 received"), "{out}");
    drop(echo);
    // The killed process's device is released a moment after it is reaped.
    std::thread::sleep(Duration::from_millis(300));
    let ping = ns_cairn.cairn(&[
        "ping",
        "--device",
        device,
        "--address",
        &cairn_cidr,
        &linux_ip,
        "-c",
        "3",
        "-i",
        "0.2",
    ]);
    let out = ping.success(SHORT);
    assert!(out.contains("3 received"), "{out}");
    assert_eq!(out.matches(&format!("bytes from {linux_ip}: icmp_seq=")).count(), 3, "{out}");
    // Nobody answers at .9: no reply, and a failing exit status.
    std::thread::sleep(Duration::from_millis(300));
    let ping = ns_cairn.cairn(&[
        "ping",
        "--device",
        device,
        "--address",
        &cairn_cidr,
        &format!("10.{net}.0.9"),
        "-c",
        "1",
        "-W",
        "0.5",
    ]);
    let (status, out) = ping.finish(SHORT);
    assert!(!status.success() && out.contains("0 received"), "{out}");
}

/// Linux sends `bytes` to `cairn net sink`, and `cairn net send` sends `bytes` to a Linux sink;
/// both ends' SHA-256 must agree.
fn bulk_each_way(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
    bytes: u64,
    limit: Duration,
) {
    linux_to_cairn(ns_linux, ns_cairn, device, net, bytes, limit);
    cairn_to_linux(ns_linux, ns_cairn, device, net, bytes, limit);
}

/// Linux's client sends `bytes` to `cairn net sink`; returns the sink's output.
fn linux_to_cairn(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
    bytes: u64,
    limit: Duration,
) -> String {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let n = bytes.to_string();
    let mut sink =
        ns_cairn.cairn(&["sink", "--device", device, "--address", &cairn_cidr, "-p", "5001"]);
    sink.wait_for("ready", READY);
    let client = ns_linux.python(&bulk_client(), &[&cairn_ip, "5001", &n]);
    let sent = client.success(limit);
    let sink_out = sink.success(SHORT);
    let sent_line = sent.lines().find(|l| l.starts_with("sent")).expect("sent line");
    let sink_line = sink_out.lines().find(|l| l.contains("bytes=")).expect("sink line");
    assert_delivered(sent_line, sink_line, &n, &format!("{sent}\n{sink_out}"));
    sink_out
}

/// Asserts that the receiver's line reports `n` bytes with the SHA-256 of the sender's.
fn assert_delivered(sent_line: &str, received_line: &str, n: &str, context: &str) {
    assert_eq!(field(received_line, "bytes"), n, "{context}");
    assert_eq!(field(received_line, "sha256"), field(sent_line, "sha256"), "{context}");
}

/// `cairn net send` sends `bytes` to a Linux sink; returns the sender's output.
fn cairn_to_linux(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
    bytes: u64,
    limit: Duration,
) -> String {
    let (linux_ip, cairn_cidr) = (format!("10.{net}.0.1"), format!("10.{net}.0.2/24"));
    let stack = ["--device", device, "--address", &cairn_cidr];
    send_to_linux_sink(ns_linux, &linux_ip, ns_cairn, &stack, bytes, limit)
}

/// `cairn net send` in `ns_cairn`, its stack set up by `stack` (device, address, gateway),
/// sends `bytes` to a Linux sink at `linux_ip` in `ns_linux`; checks what arrived against
/// what was sent and returns the sender's output.
fn send_to_linux_sink(
    ns_linux: &net_common::Netns,
    linux_ip: &str,
    ns_cairn: &net_common::Netns,
    stack: &[&str],
    bytes: u64,
    limit: Duration,
) -> String {
    let n = bytes.to_string();
    let mut server = ns_linux.python(LINUX_SERVER, &[linux_ip, "5002", "1"]);
    server.wait_for("listening", READY);
    let target = format!("{linux_ip}:5002");
    let mut args = vec!["send", &target, "--bytes", &n];
    args.extend_from_slice(stack);
    let send_out = ns_cairn.cairn(&args).success(limit);
    let server_out = server.success(SHORT);
    let sent_line = send_out.lines().find(|l| l.starts_with("send: sent")).expect("sent line");
    let sink_line = server_out.lines().find(|l| l.starts_with("sink")).expect("sink line");
    assert_delivered(sent_line, sink_line, &n, &format!("{send_out}\n{server_out}"));
    send_out
}

/// Linux as the client of `cairn net echo`: one connection with 1 MiB each way.
fn tcp_echo_linux_client(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let cairn_cidr = format!("10.{net}.0.2/24");
    let cairn_ip = format!("10.{net}.0.2");
    let mut echo = ns_cairn.cairn(&["echo", "--device", device, "--address", &cairn_cidr]);
    echo.wait_for("ready", READY);
    let out = ns_linux.python(&bulk_client(), &[&cairn_ip, "7", "1048576"]).success(SHORT);
    let sent = out.lines().find(|l| l.starts_with("sent")).expect("sent");
    let received = out.lines().find(|l| l.starts_with("received")).expect("received");
    assert_eq!(field(received, "bytes"), "1048576", "{out}");
    assert_eq!(field(received, "sha256"), field(sent, "sha256"), "{out}");
}

/// cairn as the client of a Linux echo server: 3,000,000 bytes each way on one connection.
fn tcp_echo_linux_server(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (linux_ip, cairn_cidr) = (format!("10.{net}.0.1"), format!("10.{net}.0.2/24"));
    let mut server = ns_linux.python(LINUX_SERVER, &[&linux_ip, "7007", "1", "echo"]);
    server.wait_for("listening", READY);
    let out = ns_cairn
        .cairn(&[
            "send",
            "--device",
            device,
            "--address",
            &cairn_cidr,
            &format!("{linux_ip}:7007"),
            "--bytes",
            "3000000",
        ])
        .success(SHORT);
    let sent = out.lines().find(|l| l.starts_with("send: sent")).expect("sent");
    let back = out.lines().find(|l| l.starts_with("send: received")).expect("received");
    assert_eq!(field(back, "bytes"), "3000000", "{out}");
    assert_eq!(field(back, "sha256"), field(sent, "sha256"), "{out}");
    server.success(SHORT);
}

/// 200 UDP datagrams from Linux, each echoed by `cairn net echo`.
fn udp_echo(ns_linux: &net_common::Netns, ns_cairn: &net_common::Netns, device: &str, net: u8) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let mut echo = ns_cairn.cairn(&["echo", "--device", device, "--address", &cairn_cidr]);
    echo.wait_for("ready", READY);
    let out = ns_linux.python(UDP_CLIENT, &[&cairn_ip, "7", "200"]).success(SHORT);
    assert!(out.contains("ok=200"), "{out}");
}

/// A thousand short connections from Linux to `cairn net echo`, 16 at a time, each echoing a
/// line.
fn a_thousand_short_connections(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let mut echo = ns_cairn.cairn(&["echo", "--device", device, "--address", &cairn_cidr]);
    echo.wait_for("ready", READY);
    let out = ns_linux.python(SHORT_CONNECTIONS, &[&cairn_ip, "7", "1000", "16"]).success(LONG);
    assert!(out.contains("ok=1000"), "{out}");
}

/// Per-core ownership: `cairn net echo --cores 2` runs a stack per core on two device queues.
/// A thousand short connections from Linux are all echoed, both cores serve some (the flow
/// hash spreads them), and the frames the device delivered to the wrong core were passed on.
/// Ping and UDP echo work through the group too (ICMP lives on core 0, UDP by flow).
fn connections_spread_over_two_cores(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let args = ["echo", "--device", device, "--address", &cairn_cidr, "--cores", "2"];
    let mut echo = ns_cairn.cairn(&[&args[..], &["--duration", "12"]].concat());
    let ready = echo.wait_for("ready", READY);
    assert!(ready.contains("on 2 cores"), "{ready}");
    let out = ns_linux.python(SHORT_CONNECTIONS, &[&cairn_ip, "7", "1000", "16"]).success(LONG);
    assert!(out.contains("ok=1000"), "{out}");
    let out = ns_linux.python(UDP_CLIENT, &[&cairn_ip, "7", "100"]).success(SHORT);
    assert!(out.contains("ok=100"), "{out}");
    let out = ns_linux.exec(&["ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", &cairn_ip]);
    assert!(out.contains("2 received"), "{out}");
    let report = echo.success(SHORT);
    let per_core: Vec<(u64, u64)> = report
        .lines()
        .filter(|l| l.starts_with("echo: core "))
        .map(|l| {
            let accepted = l.split(" done, ").nth(1).and_then(|r| r.split(' ').next());
            let accepted = accepted.and_then(|n| n.parse().ok()).expect("accepted count");
            (accepted, field(l, "taken_over").parse().expect("taken_over"))
        })
        .collect();
    assert_eq!(per_core.len(), 2, "{report}");
    assert_eq!(per_core.iter().map(|c| c.0).sum::<u64>(), 1000, "{report}");
    assert!(per_core.iter().all(|c| c.0 > 100), "both cores serve: {report}");
    assert!(per_core.iter().any(|c| c.1 > 0), "frames were steered: {report}");
}

/// `cairn net send` to a port nobody listens on at Linux's address: Linux answers the SYN with
/// a RST and cairn reports the connection refused.
fn connect_to_a_closed_port_is_refused(ns_cairn: &net_common::Netns, device: &str, net: u8) {
    let (status, out) = ns_cairn
        .cairn(&[
            "send",
            "--device",
            device,
            "--address",
            &format!("10.{net}.0.2/24"),
            &format!("10.{net}.0.1:9"),
            "--bytes",
            "10",
        ])
        .finish(SHORT);
    assert!(!status.success(), "{out}");
    assert!(out.contains("Refused"), "{out}");
}

/// A Linux client sends 1000 bytes to `cairn net sink` and aborts (SO_LINGER 0): the sink
/// reports the reset after those bytes.
fn reset_by_linux_is_seen(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let mut sink =
        ns_cairn.cairn(&["sink", "--device", device, "--address", &cairn_cidr, "-p", "5003"]);
    sink.wait_for("ready", READY);
    ns_linux.python(ABORTING_CLIENT, &[&cairn_ip, "5003"]).success(SHORT);
    let (status, out) = sink.finish(SHORT);
    assert!(!status.success(), "{out}");
    assert!(out.contains("error after bytes=1000") && out.contains("Reset"), "{out}");
}

/// The Linux client of `cairn net echo` shuts its side down at once and starts reading only
/// 0.5 s later: cairn goes on sending after the peer's FIN.
fn half_close_lets_cairn_send_after_the_peers_fin(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    net: u8,
) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let mut echo = ns_cairn.cairn(&["echo", "--device", device, "--address", &cairn_cidr]);
    echo.wait_for("ready", READY);
    let out = ns_linux.python(&bulk_client(), &[&cairn_ip, "7", "200000", "0.5"]).success(SHORT);
    let sent = out.lines().find(|l| l.starts_with("sent")).expect("sent");
    let received = out.lines().find(|l| l.starts_with("received")).expect("received");
    assert_eq!(field(received, "bytes"), "200000", "{out}");
    assert_eq!(field(received, "sha256"), field(sent, "sha256"), "{out}");
}

/// A client stuffs the echo server without reading and then vanishes (its address, a second one
/// on Linux's interface `linux_iface`, removed, so Linux drops cairn's probes and
/// retransmissions): cairn gives the connection up as timed out and goes on serving another
/// client meanwhile.
fn peer_vanishing_mid_transfer(
    ns_linux: &net_common::Netns,
    ns_cairn: &net_common::Netns,
    device: &str,
    linux_iface: &str,
    net: u8,
) {
    let (cairn_cidr, cairn_ip) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.2"));
    let (gone_cidr, gone_ip) = (format!("10.{net}.0.3/24"), format!("10.{net}.0.3"));
    ns_linux.exec(&["ip", "addr", "add", &gone_cidr, "dev", linux_iface]);
    let mut echo = ns_cairn.cairn(&[
        "echo",
        "--device",
        device,
        "--address",
        &cairn_cidr,
        "--tcp-max-retries",
        "4",
    ]);
    echo.wait_for("ready", READY);
    let mut stuffer = ns_linux.python(STUFFING_CLIENT, &[&cairn_ip, "7", &gone_ip]);
    stuffer.wait_for("stuffed", SHORT);
    ns_linux.exec(&["ip", "addr", "del", &gone_cidr, "dev", linux_iface]);
    let out = ns_linux.python(&bulk_client(), &[&cairn_ip, "7", "100000"]).success(SHORT);
    assert!(out.contains("received bytes=100000"), "{out}");
    let line = echo.wait_for(&gone_ip, Duration::from_secs(60));
    assert!(line.contains("TimedOut"), "{line}");
    let out = ns_linux.python(SHORT_CONNECTIONS, &[&cairn_ip, "7", "20", "4"]).success(SHORT);
    assert!(out.contains("ok=20"), "{out}");
    drop(stuffer);
}

#[test]
fn tap_ping_both_ways() {
    let link = TapLink::new("tping", 81);
    ping_both_ways(&link.ns, &link.ns, "tap:ct0", 81);
}

#[test]
fn xdp_ping_both_ways() {
    let link = VethLink::new("xping", 82);
    ping_both_ways(&link.linux, &link.cairn, "xdp:vb", 82);
}

#[test]
fn tap_udp_echo() {
    let link = TapLink::new("tudp", 83);
    udp_echo(&link.ns, &link.ns, "tap:ct0", 83);
}

#[test]
fn xdp_udp_echo() {
    let link = VethLink::new("xudp", 95);
    udp_echo(&link.linux, &link.cairn, "xdp:vb", 95);
}

#[test]
fn tap_tcp_echo_with_linux_as_client() {
    let link = TapLink::new("techo", 84);
    tcp_echo_linux_client(&link.ns, &link.ns, "tap:ct0", 84);
}

#[test]
fn xdp_tcp_echo_with_linux_as_client() {
    let link = VethLink::new("xecho", 85);
    tcp_echo_linux_client(&link.linux, &link.cairn, "xdp:vb", 85);
}

#[test]
fn tap_tcp_echo_with_linux_as_server() {
    let link = TapLink::new("tsrv", 86);
    tcp_echo_linux_server(&link.ns, &link.ns, "tap:ct0", 86);
}

#[test]
fn xdp_tcp_echo_with_linux_as_server() {
    let link = VethLink::new("xsrv", 101);
    tcp_echo_linux_server(&link.linux, &link.cairn, "xdp:vb", 101);
}

#[test]
fn tap_bulk_each_way() {
    let link = TapLink::new("tbulk", 87);
    let sink_out = linux_to_cairn(&link.ns, &link.ns, "tap:ct0", 87, bulk_bytes(), LONG);
    // With the tap's offloads Linux hands cairn whole 64 KiB segments, not 1500-byte frames.
    let device = sink_out.lines().find(|l| l.starts_with("sink: device")).expect("device line");
    let frames: u64 = field(device, "frames").parse().unwrap();
    let octets: u64 = field(device, "octets").parse().unwrap();
    assert!(octets / frames.max(1) > 4000, "{device}");
    let send_out = cairn_to_linux(&link.ns, &link.ns, "tap:ct0", 87, bulk_bytes(), LONG);
    let tcp = send_out.lines().find(|l| l.contains("tcp retransmits=")).expect("counters");
    assert!(field(tcp, "segmentation_offloads").parse::<u64>().unwrap() > 100, "{tcp}");
}

#[test]
fn xdp_bulk_each_way() {
    let link = VethLink::new("xbulk", 88);
    bulk_each_way(&link.linux, &link.cairn, "xdp:vb", 88, bulk_bytes(), LONG);
}

/// TCP segmentation offload checked by a real peer: cairn's tap (offloads on) hands the
/// kernel 64 KiB TCP segments with only the pseudo-header summed, and Linux routes them out of
/// a veth with segmentation and checksum offload off, so the router must cut each one by the
/// MSS cairn gave and finish every checksum in software; the Linux receiver behind it then
/// checks each MTU-sized segment in full. One wrong header, length or partial sum and the
/// transfer stalls or the receiver counts checksum errors.
#[test]
fn tap_segments_cut_and_checksummed_by_a_linux_router_arrive_intact() {
    let router = TapLink::new("tsorouter", 104);
    let far = net_common::Netns::new("tsofar");
    router.ns.exec(&["ip", "link", "add", "rv", "type", "veth", "peer", "name", "pv"]);
    router.ns.exec(&["ip", "link", "set", "pv", "netns", &far.name]);
    router.ns.exec(&["ip", "addr", "add", "10.104.1.1/24", "dev", "rv"]);
    router.ns.exec(&["ip", "link", "set", "rv", "up"]);
    router.ns.exec(&["ethtool", "-K", "rv", "tso", "off", "gso", "off", "tx", "off"]);
    router.ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    far.exec(&["ip", "addr", "add", "10.104.1.2/24", "dev", "pv"]);
    far.exec(&["ip", "link", "set", "pv", "up"]);
    far.exec(&["ip", "route", "add", "10.104.0.0/24", "via", "10.104.1.1"]);
    far.exec(&["nstat", "-n"]);

    let stack = ["--device", "tap:ct0", "--address", "10.104.0.2/24", "--gateway", "10.104.0.1"];
    let send_out = send_to_linux_sink(&far, "10.104.1.2", &router.ns, &stack, 64 << 20, SHORT);
    let tcp_line = send_out.lines().find(|l| l.contains("tcp retransmits=")).expect("counters");
    let offloaded: u64 = field(tcp_line, "segmentation_offloads").parse().unwrap();
    assert!(offloaded > 100, "cairn handed over long segments: {tcp_line}");

    let stats = far.exec(&["nstat", "-az", "TcpInSegs", "TcpInCsumErrors", "IpInReceives"]);
    let count = |name: &str| -> u64 {
        let line = stats.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{stats}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(count("TcpInCsumErrors"), 0, "{stats}");
    // 64 MiB in segments of at most 1460 octets: the router cut what cairn handed over.
    assert!(count("TcpInSegs") > (64 << 20) / 1460, "{stats}");
}

/// Under an impaired link: 20 ms delay each way, 1% loss each way, and a quarter of the frames
/// overtaking the ones before them. This kernel has no `sch_netem` (CONFIG_NET_SCH_NETEM is not
/// set), so a relay does what `tc netem delay 20ms loss 1% reorder 25%` would
/// ([`net_common::ImpairedLink`]). The four transfers (each way, TAP and AF_XDP) run at once,
/// each on its own link, `CAIRN_NET_IMPAIRED_MIB` (default 256) MiB each: at the few Mbit/s
/// that 1% loss leaves any loss-based TCP, one after another they would take most of an hour.
#[test]
fn bulk_each_way_under_delay_loss_and_reordering_on_tap_and_xdp() {
    let mib: u64 =
        std::env::var("CAIRN_NET_IMPAIRED_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let limit = Duration::from_secs(1500);
    let runs = [("tap", true, 90u8), ("tap", false, 91), ("xdp", true, 92), ("xdp", false, 93)];
    let threads: Vec<_> = runs
        .into_iter()
        .map(|(kind, inbound, net)| {
            std::thread::spawn(move || {
                let tag = format!("imp{net}");
                let link = net_common::ImpairedLink::new(&tag, net, kind);
                // The relay copies frames between packet sockets and finishes no checksum and
                // cuts no segment, so cairn's tap must not leave those to the kernel.
                let device =
                    if kind == "tap" { "tap:vb:plain".to_string() } else { "xdp:vb".into() };
                let out = if inbound {
                    linux_to_cairn(&link.linux, &link.cairn, &device, net, mib << 20, limit)
                } else {
                    cairn_to_linux(&link.linux, &link.cairn, &device, net, mib << 20, limit)
                };
                let report = link.stop();
                assert!(report.contains("dropped="), "{report}");
                let way = if inbound { "Linux to cairn" } else { "cairn to Linux" };
                let summary: Vec<_> = out
                    .lines()
                    .filter(|l| l.contains("mbps=") || l.contains("tcp retransmits="))
                    .collect();
                eprintln!("{kind} {way}, {mib} MiB: {summary:?} relay {report}");
            })
        })
        .collect();
    // Join every transfer before failing, so each cleans up its namespaces and relay even
    // when another one failed.
    let failed = threads.into_iter().map(|t| t.join()).filter(Result::is_err).count();
    assert_eq!(failed, 0, "impaired transfers failed (their output is above)");
}

#[test]
fn tap_a_thousand_short_connections() {
    let link = TapLink::new("tshort", 90);
    a_thousand_short_connections(&link.ns, &link.ns, "tap:ct0", 90);
}

#[test]
fn xdp_a_thousand_short_connections() {
    let link = VethLink::new("xshort", 96);
    a_thousand_short_connections(&link.linux, &link.cairn, "xdp:vb", 96);
}

#[test]
fn tap_connections_spread_over_two_cores() {
    let link = TapLink::with_queues("tcores", 102, true);
    connections_spread_over_two_cores(&link.ns, &link.ns, "tap:ct0", 102);
}

#[test]
fn xdp_connections_spread_over_two_cores() {
    let link = VethLink::with_queues("xcores", 103, 2);
    connections_spread_over_two_cores(&link.linux, &link.cairn, "xdp:vb", 103);
}

#[test]
fn tap_connect_to_a_closed_port_is_refused() {
    let link = TapLink::new("tref", 91);
    connect_to_a_closed_port_is_refused(&link.ns, "tap:ct0", 91);
}

#[test]
fn xdp_connect_to_a_closed_port_is_refused() {
    let link = VethLink::new("xref", 97);
    connect_to_a_closed_port_is_refused(&link.cairn, "xdp:vb", 97);
}

#[test]
fn tap_reset_by_linux_is_seen() {
    let link = TapLink::new("trst", 92);
    reset_by_linux_is_seen(&link.ns, &link.ns, "tap:ct0", 92);
}

#[test]
fn xdp_reset_by_linux_is_seen() {
    let link = VethLink::new("xrst", 98);
    reset_by_linux_is_seen(&link.linux, &link.cairn, "xdp:vb", 98);
}

#[test]
fn tap_half_close_lets_cairn_send_after_the_peers_fin() {
    let link = TapLink::new("thalf", 93);
    half_close_lets_cairn_send_after_the_peers_fin(&link.ns, &link.ns, "tap:ct0", 93);
}

#[test]
fn xdp_half_close_lets_cairn_send_after_the_peers_fin() {
    let link = VethLink::new("xhalf", 99);
    half_close_lets_cairn_send_after_the_peers_fin(&link.linux, &link.cairn, "xdp:vb", 99);
}

#[test]
fn tap_peer_vanishing_mid_transfer_times_out_and_others_are_served() {
    let link = TapLink::new("tgone", 94);
    peer_vanishing_mid_transfer(&link.ns, &link.ns, "tap:ct0", "ct0", 94);
}

#[test]
fn xdp_peer_vanishing_mid_transfer_times_out_and_others_are_served() {
    let link = VethLink::new("xgone", 100);
    peer_vanishing_mid_transfer(&link.linux, &link.cairn, "xdp:vb", "va", 100);
}

#[test]
fn xdp_dhcp_lease_from_dnsmasq_configures_cairn() {
    // dnsmasq (Debian's, DHCP only: --port=0 turns its DNS off) serves a range on Linux's end of
    // the veth; cairn asks with --dhcp, gets an address from the range and pings the server.
    let link = VethLink::new("dhcp", 89);
    let leases = std::env::temp_dir().join(format!("cairn-dhcp-{}.leases", std::process::id()));
    let _remove_leases = RemoveOnDrop(leases.clone());
    let mut dnsmasq = link.linux.spawn(&[
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--user=root",
        "--pid-file",
        "--interface=va",
        "--bind-interfaces",
        "--dhcp-authoritative",
        "--log-facility=-",
        "--log-dhcp",
        "--dhcp-range=10.89.0.50,10.89.0.60,255.255.255.0,1h",
        &format!("--dhcp-leasefile={}", leases.display()),
    ]);
    dnsmasq.wait_for("DHCP, IP range", READY);
    let ping = link.cairn.cairn(&[
        "ping",
        "--device",
        "xdp:vb",
        "--dhcp",
        "10.89.0.1",
        "-c",
        "2",
        "-i",
        "0.2",
    ]);
    let out = ping.success(SHORT);
    assert!(out.contains("2 received"), "{out}");
    let address = out
        .split_whitespace()
        .find(|word| word.starts_with("10.89.0."))
        .unwrap_or_else(|| panic!("no leased address in {out}"));
    let host: u8 = address["10.89.0.".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad address {address}"));
    assert!((50..=60).contains(&host), "{address} is outside dnsmasq's range: {out}");
    let log = dnsmasq.output();
    assert!(log.contains("DHCPACK"), "dnsmasq never acknowledged a lease: {log}");
}

/// Deletes a file when dropped (also when the test fails).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
