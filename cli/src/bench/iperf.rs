//! `cairn bench iperf`: one TCP stream's goodput, after iperf, cairn against Linux sending to
//! Linux over a veth pair between two namespaces (`linux_mbps`). cairn runs twice:
//!
//! - on AF_XDP on the server side's `vb`, sending to Linux over the veth (`cairn_tx_mbps`)
//!   and receiving from it (`cairn_rx_mbps`); `ratio` is the smaller over Linux's;
//! - on a tap it creates in Linux's namespace, with the virtio-net offloads on, so it hands
//!   Linux 64 KiB TCP segments (`cairn_tap_tx_mbps`, `cairn_tap_rx_mbps`). AF_XDP has no
//!   such offload: every 1500-byte frame costs the kernel an skb and a trip up its stack.
//!
//! The AF_XDP runs share the veth with their Linux peer, and that veth has TX checksum
//! offload off on Linux's side, since AF_XDP wants whole checksums; that also keeps Linux's
//! sender from handing the veth 64 KiB packets. So the TAP runs are compared with Linux over
//! a second veth pair whose offloads stay on, where Linux does pass 64 KiB packets
//! (`linux_offload_mbps`, `tap_ratio`): each cairn device is measured against Linux with the
//! same offloads.
//!
//! Goodput is counted at the receiver, from the first byte to EOF. Each side is pinned to its
//! own CPU, as in `cairn bench netpipe` (whose [`Lab`] this shares).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_hosted::netstack::{DeviceSpec, NetStack};
use cairn_net::wire::Ipv4Address;
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::IoBuf;

use super::netpipe::{connect_retrying, join, CairnSide, Lab, LINUX_IP, SERVER_IP};
use super::{progress, Report};

const PORT: u16 = 5201;
/// The tap cairn creates in the client's namespace for its TAP runs.
const TAP: &str = "ct0";
/// Linux's address on that tap.
const TAP_LINUX_IP: &str = "10.212.0.1";
/// cairn's address behind that tap.
const TAP_CAIRN_IP: &str = "10.212.0.2";
/// The client's address on the second veth pair, whose offloads stay on.
const OFFLOAD_CLIENT_IP: &str = "10.213.0.1";
/// The server's address on that pair.
const OFFLOAD_SERVER_IP: &str = "10.213.0.2";
/// Bytes per write on the Linux side and per buffer on cairn's (sent again by reference).
const CHUNK: usize = 64 * 1024;

/// Reads `listener`'s first connection to EOF; returns (bytes, megabits per second).
fn linux_receive(listener: TcpListener) -> Result<(u64, f64), String> {
    let (mut stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut first) = (0u64, None);
    loop {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
    }
    let secs = first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
    Ok((bytes, bytes as f64 * 8.0 / secs / 1e6))
}

/// Sends `bytes` to `addr` from Linux.
fn linux_send(addr: &str, bytes: u64) -> Result<(), String> {
    let mut stream = connect_retrying(addr)?;
    let chunk = vec![0xa5u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).map_err(|e| format!("write: {e}"))?;
        sent += n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    // Wait for the receiver's close, so everything was read.
    let _ = stream.read(&mut [0u8; 1]);
    Ok(())
}

/// What one cairn device measured: goodput each way and the sender's stall counters.
struct CairnRun {
    tx_mbps: f64,
    rx_mbps: f64,
    stalls: String,
}

/// Measures `cairn` (address `cairn_ip`) receiving from and then sending to Linux in
/// namespace `linux_ns` (address `linux_ip`), `bytes` each way.
fn measure_cairn(
    lab: &Lab,
    cairn: &CairnSide,
    linux_ns: &str,
    linux_ip: &'static str,
    cairn_ip: &'static str,
    bytes: u64,
) -> Result<CairnRun, String> {
    let (done_tx, done) = mpsc::channel();
    cairn.run(move |net: NetStack| {
        let listener = net.tcp_listen(PORT).expect("listen");
        spawn_local(async move {
            let Ok(stream) = listener.accept().await else { return };
            let (mut received, mut first) = (0u64, None);
            while let Ok(Some(buf)) = stream.recv().await {
                first.get_or_insert_with(Instant::now);
                received += buf.len() as u64;
            }
            let secs = first.map_or(f64::NAN, |t: Instant| t.elapsed().as_secs_f64());
            stream.close();
            let _ = done_tx.send((received, received as f64 * 8.0 / secs / 1e6));
        });
    });
    join(Lab::spawn(linux_ns, lab.cpus.1, move || {
        linux_send(&format!("{cairn_ip}:{PORT}"), bytes)
    }))??;
    let (received, rx_mbps) =
        done.recv_timeout(Duration::from_secs(120)).map_err(|_| "cairn receiver stalled")?;
    if received != bytes {
        return Err(format!("cairn received {received} of {bytes} bytes"));
    }

    let (ready_tx, ready) = mpsc::channel();
    let receiver = Lab::spawn(linux_ns, lab.cpus.1, move || {
        let listener =
            TcpListener::bind(format!("{linux_ip}:{PORT}")).map_err(|e| e.to_string())?;
        let _ = ready_tx.send(());
        linux_receive(listener)
    });
    ready.recv_timeout(Duration::from_secs(10)).map_err(|_| "receiver did not start")?;
    let (stalls_tx, stalls) = mpsc::channel();
    cairn.run(move |net: NetStack| {
        spawn_local(async move {
            let before = net.tcp_counters();
            let dst: Ipv4Address = linux_ip.parse::<std::net::Ipv4Addr>().expect("ip").into();
            let Ok(stream) = net.connect(dst, PORT).await else { return };
            let mut block = IoBuf::with_headroom(128, CHUNK);
            block.extend_from_slice(&[0x5a; CHUNK]);
            let block = block.freeze();
            let mut sent = 0u64;
            while sent < bytes {
                let mut chunk = block.clone();
                chunk.truncate((bytes - sent).min(CHUNK as u64) as usize);
                sent += chunk.len() as u64;
                if stream.send(chunk).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown_write();
            let _ = stream.flushed().await;
            while let Ok(Some(_)) = stream.recv().await {}
            stream.close();
            let after = net.tcp_counters();
            let _ = stalls_tx.send(format!(
                "rwnd_limited={} cwnd_limited={} retransmits={} segmentation_offloads={}",
                after.rwnd_limited - before.rwnd_limited,
                after.cwnd_limited - before.cwnd_limited,
                after.retransmits - before.retransmits,
                after.segmentation_offloads - before.segmentation_offloads
            ));
        });
    });
    let (received, tx_mbps) = join(receiver)??;
    let stalls = stalls.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    if received != bytes {
        return Err(format!("Linux received {received} of {bytes} bytes from cairn"));
    }
    Ok(CairnRun { tx_mbps, rx_mbps, stalls })
}

/// Linux sending `bytes` from the client's namespace to a receiver at `server_ip` in the
/// server's: goodput in Mbit/s.
fn linux_to_linux(lab: &Lab, server_ip: &'static str, bytes: u64) -> Result<f64, String> {
    let (ready_tx, ready) = mpsc::channel();
    let receiver = Lab::spawn(&lab.server_ns, lab.cpus.0, move || {
        let listener =
            TcpListener::bind(format!("{server_ip}:{PORT}")).map_err(|e| e.to_string())?;
        let _ = ready_tx.send(());
        linux_receive(listener)
    });
    ready.recv_timeout(Duration::from_secs(10)).map_err(|_| "receiver did not start")?;
    join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || {
        linux_send(&format!("{server_ip}:{PORT}"), bytes)
    }))??;
    Ok(join(receiver)??.1)
}

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Report, String> {
    let bytes: u64 = if quick { 64 << 20 } else { 512 << 20 };
    let lab = Lab::new("iperf")?;

    progress("Linux to Linux over the veth AF_XDP uses (checksum offload off)");
    lab.linux_server_address(true)?;
    let linux_mbps = linux_to_linux(&lab, SERVER_IP, bytes)?;
    lab.linux_server_address(false)?;

    progress("Linux to Linux over a veth with its offloads on");
    lab.add_offloading_veth(OFFLOAD_CLIENT_IP, OFFLOAD_SERVER_IP)?;
    let linux_offload_mbps = linux_to_linux(&lab, OFFLOAD_SERVER_IP, bytes)?;

    progress("cairn on AF_XDP, both ways");
    let cairn = CairnSide::start(&lab)?;
    let xdp = measure_cairn(&lab, &cairn, &lab.client_ns, LINUX_IP, SERVER_IP, bytes)?;
    drop(cairn);

    progress("cairn on a TAP with offloads, both ways");
    let spec = DeviceSpec::Tap { name: TAP.into(), offloads: true };
    let cairn =
        CairnSide::start_on(&lab.client_ns, lab.cpus.0, spec, &format!("{TAP_CAIRN_IP}/24"))?;
    lab.add_address(&lab.client_ns, &format!("{TAP_LINUX_IP}/24"), TAP)?;
    let tap = measure_cairn(&lab, &cairn, &lab.client_ns, TAP_LINUX_IP, TAP_CAIRN_IP, bytes)?;
    drop(cairn);

    let mut table = String::new();
    let _ = writeln!(table, "iperf: one TCP stream, {} MiB each, goodput in Mbit/s", bytes >> 20);
    let _ = writeln!(table, "  Linux -> Linux, veth, tx checksum off {linux_mbps:>10.1}");
    let _ = writeln!(table, "  cairn -> Linux, AF_XDP on that veth   {:>10.1}", xdp.tx_mbps);
    let _ = writeln!(table, "  Linux -> cairn, AF_XDP on that veth   {:>10.1}", xdp.rx_mbps);
    let _ = writeln!(table, "  Linux -> Linux, veth, offloads on     {linux_offload_mbps:>10.1}");
    let _ = writeln!(table, "  cairn -> Linux, TAP with offloads     {:>10.1}", tap.tx_mbps);
    let _ = writeln!(table, "  Linux -> cairn, TAP with offloads     {:>10.1}", tap.rx_mbps);
    let _ = writeln!(table, "cairn sender on AF_XDP: {}", xdp.stalls);
    let _ = writeln!(table, "cairn sender on TAP: {}", tap.stalls);
    Ok(Report {
        table,
        fields: vec![
            ("cairn_tx_mbps", xdp.tx_mbps),
            ("cairn_rx_mbps", xdp.rx_mbps),
            ("cairn_tap_tx_mbps", tap.tx_mbps),
            ("cairn_tap_rx_mbps", tap.rx_mbps),
            ("linux_mbps", linux_mbps),
            ("linux_offload_mbps", linux_offload_mbps),
            ("tx_ratio", xdp.tx_mbps / linux_mbps),
            ("rx_ratio", xdp.rx_mbps / linux_mbps),
            ("tap_tx_ratio", tap.tx_mbps / linux_offload_mbps),
            ("tap_rx_ratio", tap.rx_mbps / linux_offload_mbps),
            ("ratio", xdp.tx_mbps.min(xdp.rx_mbps) / linux_mbps),
            ("tap_ratio", tap.tx_mbps.min(tap.rx_mbps) / linux_offload_mbps),
        ],
        peer: "Linux TCP over the same veth".into(),
    })
}
