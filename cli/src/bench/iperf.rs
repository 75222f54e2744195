//! `cairn bench iperf`: one TCP stream's goodput between two namespaces over a veth pair, after
//! iperf: cairn (AF_XDP on the server side's `vb`) sending to Linux (`cairn_tx_mbps`) and
//! receiving from Linux (`cairn_rx_mbps`), against Linux sending to Linux over the same veth
//! (`linux_mbps`). Goodput is counted at the receiver, from the first byte to EOF. Each side
//! is pinned to its own CPU, as in `cairn bench netpipe` (whose [`Lab`] this shares).
//! `ratio` is the smaller of the two cairn directions over Linux.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_hosted::netstack::NetStack;
use cairn_net::wire::Ipv4Address;
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::IoBuf;

use super::netpipe::{connect_retrying, join, CairnSide, Lab, LINUX_IP, SERVER_IP};
use super::{progress, Report};

const PORT: u16 = 5201;
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

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Report, String> {
    let bytes: u64 = if quick { 64 << 20 } else { 512 << 20 };
    let lab = Lab::new("iperf")?;

    progress("Linux to Linux");
    lab.linux_server_address(true)?;
    let (ready_tx, ready) = mpsc::channel();
    let receiver = Lab::spawn(&lab.server_ns, lab.cpus.0, move || {
        let listener =
            TcpListener::bind(format!("{SERVER_IP}:{PORT}")).map_err(|e| e.to_string())?;
        let _ = ready_tx.send(());
        linux_receive(listener)
    });
    ready.recv_timeout(Duration::from_secs(10)).map_err(|_| "receiver did not start")?;
    join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || {
        linux_send(&format!("{SERVER_IP}:{PORT}"), bytes)
    }))??;
    let (_, linux_mbps) = join(receiver)??;
    lab.linux_server_address(false)?;

    let cairn = CairnSide::start(&lab)?;

    progress("Linux to cairn");
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
    join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || {
        linux_send(&format!("{SERVER_IP}:{PORT}"), bytes)
    }))??;
    let (received, cairn_rx_mbps) =
        done.recv_timeout(Duration::from_secs(120)).map_err(|_| "cairn receiver stalled")?;
    if received != bytes {
        return Err(format!("cairn received {received} of {bytes} bytes"));
    }

    progress("cairn to Linux");
    let (ready_tx, ready) = mpsc::channel();
    let receiver = Lab::spawn(&lab.client_ns, lab.cpus.1, move || {
        let listener =
            TcpListener::bind(format!("{LINUX_IP}:{PORT}")).map_err(|e| e.to_string())?;
        let _ = ready_tx.send(());
        linux_receive(listener)
    });
    ready.recv_timeout(Duration::from_secs(10)).map_err(|_| "receiver did not start")?;
    let (stalls_tx, stalls) = mpsc::channel();
    cairn.run(move |net: NetStack| {
        spawn_local(async move {
            let before = net.tcp_counters();
            let dst: Ipv4Address = LINUX_IP.parse::<std::net::Ipv4Addr>().expect("ip").into();
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
                "cairn sender stalls: rwnd_limited={} cwnd_limited={} retransmits={}",
                after.rwnd_limited - before.rwnd_limited,
                after.cwnd_limited - before.cwnd_limited,
                after.retransmits - before.retransmits
            ));
        });
    });
    let (received, cairn_tx_mbps) = join(receiver)??;
    let stalls = stalls.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    if received != bytes {
        return Err(format!("Linux received {received} of {bytes} bytes from cairn"));
    }
    drop(cairn);

    let mut table = String::new();
    let _ = writeln!(
        table,
        "iperf: one TCP stream over veth, {} MiB each, goodput in Mbit/s",
        bytes >> 20
    );
    let _ = writeln!(table, "  cairn -> Linux  {cairn_tx_mbps:>10.1}");
    let _ = writeln!(table, "  Linux -> cairn  {cairn_rx_mbps:>10.1}");
    let _ = writeln!(table, "  Linux -> Linux  {linux_mbps:>10.1}");
    let _ = writeln!(table, "{stalls}");
    Ok(Report {
        table,
        fields: vec![
            ("cairn_tx_mbps", cairn_tx_mbps),
            ("cairn_rx_mbps", cairn_rx_mbps),
            ("linux_mbps", linux_mbps),
            ("tx_ratio", cairn_tx_mbps / linux_mbps),
            ("rx_ratio", cairn_rx_mbps / linux_mbps),
            ("ratio", cairn_tx_mbps.min(cairn_rx_mbps) / linux_mbps),
        ],
        peer: "Linux TCP over the same veth".into(),
    })
}
