//! `cairn net ...`: tools on cairn's own TCP/IP stack (`cairn-net` over a TAP or AF_XDP device,
//! [`cairn_hosted::netstack`]): an echo server (TCP and UDP, RFC 862), ping (ICMP echo, RFC
//! 792), and a bulk sink and sender that print the SHA-256 (FIPS 180-4) of what they moved.
//!
//! Each tool runs the stack on one cairn core (the echo server on `--cores N`, one stack per
//! core over N device queues), prints a line containing `ready` once the interface has its
//! address and the tool listens, and reports on stdout.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use cairn_hosted::netstack::{
    Addressing, DeviceSpec, NetConfig, NetStack, NetTcpStream, ShardGroup,
};
use cairn_net::iface::Ipv4Cidr;
use cairn_net::wire::Ipv4Address;
use cairn_rt::event::{sleep_ns, spawn_local, EventManager};
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};
use clap::Subcommand;
use sha2::{Digest, Sha256};

/// How the stack is set up: the device and the address.
#[derive(clap::Args, Clone, Debug)]
pub struct StackArgs {
    /// The device: `tap:NAME[:plain]` (created if missing; `plain` sends whole, checksummed
    /// frames only, for a tap that a user-space bridge relays) or `xdp:IFACE[:QUEUE]`.
    #[arg(long)]
    device: String,
    /// The interface's address and prefix, e.g. 10.0.0.2/24.
    #[arg(long, required_unless_present = "dhcp", conflicts_with = "dhcp")]
    address: Option<String>,
    /// The default gateway (with --address).
    #[arg(long, requires = "address")]
    gateway: Option<String>,
    /// Get the address from a DHCP server (RFC 2131).
    #[arg(long)]
    dhcp: bool,
    /// TCP retransmissions of a connection before it is given up as timed out.
    #[arg(long, default_value_t = 12)]
    tcp_max_retries: u32,
}

/// The `cairn net` tools.
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// TCP and UDP echo (RFC 862), many connections at once, until killed or --duration.
    Echo {
        #[command(flatten)]
        stack: StackArgs,
        /// The port, for both TCP and UDP.
        #[arg(long, default_value_t = 7)]
        port: u16,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Cores to serve on, one stack and one device queue each: a multi-queue TAP, or
        /// AF_XDP on queues QUEUE.. of the interface. A connection lives on the core its flow
        /// hashes to; frames a queue delivers to the wrong core are passed on to the right one.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        cores: u16,
    },
    /// Sends ICMP echo requests and prints the round trips; fails if no reply came.
    Ping {
        #[command(flatten)]
        stack: StackArgs,
        /// The address to ping.
        host: String,
        /// Requests to send.
        #[arg(short = 'c', long, default_value_t = 4)]
        count: u32,
        /// Seconds between requests.
        #[arg(short = 'i', long, default_value_t = 1.0)]
        interval: f64,
        /// Data bytes per request.
        #[arg(short = 's', long, default_value_t = 56)]
        size: usize,
        /// Seconds to wait for each reply.
        #[arg(short = 'W', long, default_value_t = 2.0)]
        timeout: f64,
    },
    /// Accepts TCP connections, reads each to EOF, prints its bytes and SHA-256.
    Sink {
        #[command(flatten)]
        stack: StackArgs,
        /// The port to listen on.
        #[arg(short = 'p', long)]
        port: u16,
        /// Connections to take before exiting (served at once).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Connects, sends N bytes of a fixed pattern, half-closes, reads what comes back to EOF,
    /// and prints the SHA-256 of both directions.
    Send {
        #[command(flatten)]
        stack: StackArgs,
        /// HOST:PORT to connect to.
        target: String,
        /// Bytes to send.
        #[arg(long)]
        bytes: u64,
    },
}

/// Runs one tool to its end.
pub fn run(cmd: NetCommand) -> Result<(), String> {
    match cmd {
        NetCommand::Echo { stack, port, duration, cores } => {
            let duration_ns = duration.map(secs_to_ns);
            on_stacks(&stack, usize::from(cores), move |net| echo(net, port, duration_ns))
        }
        NetCommand::Ping { stack, host, count, interval, size, timeout } => {
            let dst = parse_ip(&host)?;
            let (interval, timeout) = (secs_to_ns(interval), secs_to_ns(timeout));
            on_stacks(&stack, 1, move |net| {
                Box::pin(ping(net, dst, count, interval, size, timeout))
            })
        }
        NetCommand::Sink { stack, port, count } => {
            on_stacks(&stack, 1, move |net| Box::pin(sink(net, port, count)))
        }
        NetCommand::Send { stack, target, bytes } => {
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| format!("bad target {target:?}: expected HOST:PORT"))?;
            let dst = parse_ip(host)?;
            let port = port.parse().map_err(|_| format!("bad port in {target:?}"))?;
            on_stacks(&stack, 1, move |net| Box::pin(send(net, dst, port, bytes)))
        }
    }
}

fn secs_to_ns(secs: f64) -> u64 {
    (secs.max(0.0) * 1e9) as u64
}

fn parse_ip(text: &str) -> Result<Ipv4Address, String> {
    let ip: std::net::Ipv4Addr = text.parse().map_err(|_| format!("bad IPv4 address {text:?}"))?;
    Ok(ip.into())
}

/// What a tool does with the running stack: called on each stack's core, it does its setup at
/// once (listening, binding) and returns the future that runs the rest there.
type Tool = Arc<
    dyn Fn(NetStack) -> Pin<Box<dyn Future<Output = Result<(), String>>>> + Send + Sync + 'static,
>;

/// The stack's settings from the command line.
pub fn stack_config(args: &StackArgs) -> Result<(DeviceSpec, NetConfig), String> {
    let spec = DeviceSpec::parse(&args.device)?;
    let addressing = if args.dhcp {
        Addressing::Dhcp
    } else {
        let text = args.address.as_deref().ok_or("--address or --dhcp is needed")?;
        let cidr = Ipv4Cidr::parse(text).ok_or_else(|| format!("bad --address {text:?}"))?;
        let gateway = args.gateway.as_deref().map(parse_ip).transpose()?;
        Addressing::Static { cidr, gateway }
    };
    let mut config = NetConfig::new(addressing);
    config.tcp.max_retries = args.tcp_max_retries;
    Ok((spec, config))
}

/// Opens `cores` queues of the device, runs a stack on each of `cores` cairn cores (a
/// [`ShardGroup`] when there are several), waits for the address, sets `tool` up on every core,
/// prints the ready line, and returns once the tool has ended on every core (the first error,
/// if any).
fn on_stacks(
    args: &StackArgs,
    cores: usize,
    tool: impl Fn(NetStack) -> Pin<Box<dyn Future<Output = Result<(), String>>>> + Send + Sync + 'static,
) -> Result<(), String> {
    let (spec, config) = stack_config(args)?;
    if cores > 1 && config.addressing == Addressing::Dhcp {
        return Err("several cores share one static address: give --address".into());
    }
    let devices = spec.open_queues(cores).map_err(|e| format!("cannot open {spec}: {e}"))?;
    let group = ShardGroup::new(cores);
    let tool: Tool = Arc::new(tool);
    let slots = Arc::new(Mutex::new(devices.into_iter().map(Some).collect::<Vec<_>>()));
    let results: Arc<Mutex<Vec<Result<(), String>>>> = Arc::new(Mutex::new(Vec::new()));
    let (set_up, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let results_in = results.clone();
    let handle = cairn_hosted::start(cores, move |core| {
        let device = slots.lock().expect("slots")[core].take().expect("a queue per core");
        let mut config = config.clone();
        if cores > 1 {
            config.shard = Some(group.shard(core));
        }
        let (tool, results) = (tool.clone(), results_in.clone());
        let (set_up, finished) = (set_up.clone(), finished.clone());
        spawn_local(async move {
            let spec = device.spec.clone();
            let net = NetStack::start(device, config);
            let cidr = net.configured().await;
            let run = tool(net.clone());
            if set_up.fetch_add(1, Ordering::AcqRel) + 1 == cores {
                let on = if cores > 1 { format!(" on {cores} cores") } else { String::new() };
                println!("cairn net: ready on {spec} as {cidr}{on}");
            }
            let outcome = run.await;
            // Give the driver a moment to send what the tool queued last (final ACKs).
            sleep_ns(20_000_000).await;
            net.stop();
            results.lock().expect("results").push(outcome);
            if finished.fetch_add(1, Ordering::AcqRel) + 1 == cores {
                EventManager::current().runtime().shutdown();
            }
        });
    })
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    handle.join().map_err(|_| "a stack's core panicked".to_string())?;
    let results = std::mem::take(&mut *results.lock().expect("results"));
    if results.len() < cores {
        return Err("stopped before the tool finished".into());
    }
    results.into_iter().collect()
}

/// Counts tasks still running and wakes the one waiting for them all.
#[derive(Clone, Default)]
struct Pending(Rc<RefCell<(usize, Option<Waker>)>>);

impl Pending {
    fn add(&self) {
        self.0.borrow_mut().0 += 1;
    }

    fn done(&self) {
        let mut state = self.0.borrow_mut();
        state.0 -= 1;
        if state.0 == 0 {
            if let Some(waker) = state.1.take() {
                waker.wake();
            }
        }
    }

    async fn all_done(&self) {
        poll_fn(|cx| {
            let mut state = self.0.borrow_mut();
            if state.0 == 0 {
                Poll::Ready(())
            } else {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

fn endpoint(stream: &NetTcpStream) -> String {
    stream.remote_endpoint().map_or_else(|| "?".into(), |(ip, port)| format!("{ip}:{port}"))
}

/// The echo server on this core's stack: listens and binds at once, then returns the future
/// that serves until `duration_ns` has passed (or forever) and reports what this core did.
fn echo(
    net: NetStack,
    port: u16,
    duration_ns: Option<u64>,
) -> Pin<Box<dyn Future<Output = Result<(), String>>>> {
    let listener = match net.tcp_listen(port) {
        Ok(listener) => listener,
        Err(e) => return Box::pin(std::future::ready(Err(format!("listen on TCP {port}: {e}")))),
    };
    let udp = match net.udp_bind(port) {
        Ok(udp) => udp,
        Err(e) => return Box::pin(std::future::ready(Err(format!("bind UDP {port}: {e:?}")))),
    };
    Box::pin(async move {
        let core = EventManager::current().core();
        if core == 0 {
            println!("echo: TCP and UDP port {port}");
        }
        spawn_local(async move {
            while let Ok(datagram) = udp.recv_from().await {
                let reply = IoBufChain::from(datagram.data);
                let _ = udp.send_to(datagram.src, datagram.src_port, reply);
            }
        });
        spawn_local(async move {
            while let Ok(stream) = listener.accept().await {
                spawn_local(echo_connection(stream));
            }
        });
        match duration_ns {
            Some(ns) => sleep_ns(ns).await,
            None => std::future::pending::<()>().await,
        }
        let tcp = net.tcp_counters();
        match net.steering_counters() {
            None => println!("echo: done, {} connections accepted", tcp.passive_opens),
            Some(s) => println!(
                "echo: core {core} done, {} connections accepted, steering passed_on={} \
                 taken_over={} copied_to_all={} batches={} dropped_stopped={}",
                tcp.passive_opens,
                s.passed_on,
                s.taken_over,
                s.copied_to_all,
                s.batches_sent,
                s.dropped_stopped
            ),
        }
        Ok(())
    })
}

async fn echo_connection(stream: NetTcpStream) {
    let peer = endpoint(&stream);
    let mut echoed = 0u64;
    let outcome = loop {
        match stream.recv().await {
            Ok(Some(buf)) => {
                echoed += buf.len() as u64;
                if let Err(e) = stream.send(buf).await {
                    break Err(e);
                }
            }
            Ok(None) => {
                // Half-closed by the peer: what it sent is echoed, then our FIN follows.
                let _ = stream.shutdown_write();
                break stream.flushed().await;
            }
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = outcome {
        println!("echo: {peer} ended after {echoed} bytes: {e}");
    }
    stream.close();
}

async fn ping(
    net: NetStack,
    dst: Ipv4Address,
    count: u32,
    interval_ns: u64,
    size: usize,
    timeout_ns: u64,
) -> Result<(), String> {
    let ident = std::process::id() as u16;
    let mut rtts = Vec::new();
    println!("PING {dst} {size} data bytes");
    for seq in 1..=count {
        let started = Instant::now();
        let reply = net
            .ping(dst, ident, seq as u16, size, timeout_ns)
            .await
            .map_err(|e| format!("ping {dst}: {e:?}"))?;
        match reply {
            Some(rtt) => {
                println!(
                    "{} bytes from {dst}: icmp_seq={seq} time={:.3} ms",
                    size + 8,
                    rtt as f64 / 1e6
                );
                rtts.push(rtt);
            }
            None => println!("no reply from {dst}: icmp_seq={seq}"),
        }
        let spent = started.elapsed().as_nanos() as u64;
        if seq < count && spent < interval_ns {
            sleep_ns(interval_ns - spent).await;
        }
    }
    let received = rtts.len();
    println!("--- {dst} ping statistics ---");
    println!(
        "{count} packets transmitted, {received} received, {:.0}% packet loss",
        100.0 * f64::from(count - received as u32) / f64::from(count.max(1))
    );
    if received == 0 {
        return Err(format!("no reply from {dst}"));
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let (min, max) =
        (rtts.iter().min().copied().unwrap_or(0), rtts.iter().max().copied().unwrap_or(0));
    let avg = rtts.iter().sum::<u64>() / received as u64;
    println!("rtt min/avg/max = {:.3}/{:.3}/{:.3} ms", ms(min), ms(avg), ms(max));
    Ok(())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

async fn sink(net: NetStack, port: u16, count: u32) -> Result<(), String> {
    let listener = net.tcp_listen(port).map_err(|e| format!("listen on TCP {port}: {e}"))?;
    println!("sink: listening on TCP {port} for {count} connection(s)");
    let pending = Pending::default();
    let failures = Rc::new(RefCell::new(0u32));
    for _ in 0..count {
        let stream = listener.accept().await.map_err(|e| format!("accept: {e}"))?;
        pending.add();
        let (pending, failures) = (pending.clone(), failures.clone());
        spawn_local(async move {
            let peer = endpoint(&stream);
            let started = Instant::now();
            let mut hash = Sha256::new();
            let mut bytes = 0u64;
            let outcome = loop {
                match stream.recv().await {
                    Ok(Some(buf)) => {
                        bytes += buf.len() as u64;
                        hash.update(&buf[..]);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let secs = started.elapsed().as_secs_f64();
            match outcome {
                Ok(()) => println!(
                    "sink: {peer} bytes={bytes} sha256={} secs={secs:.3} mbps={:.1}",
                    hex(&hash.finalize()),
                    bytes as f64 * 8.0 / secs.max(1e-9) / 1e6
                ),
                Err(e) => {
                    *failures.borrow_mut() += 1;
                    println!("sink: {peer} error after bytes={bytes}: {e}");
                }
            }
            stream.close();
            pending.done();
        });
    }
    pending.all_done().await;
    println!("sink: {}", recovery_summary(&net.tcp_counters()));
    let device = net.device_counters();
    println!("sink: device received frames={} octets={}", device.rx_frames, device.rx_bytes);
    let failed = *failures.borrow();
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} connection(s) failed")),
    }
}

/// One line of the TCP counters that tell how losses were repaired.
fn recovery_summary(c: &cairn_net::tcp::TcpCounters) -> String {
    format!(
        "tcp retransmits={} fast={} sack={} spurious={} rto={} sacked_bytes={} ooo_queued={} \
         rwnd_limited={} cwnd_limited={} segmentation_offloads={}",
        c.retransmits,
        c.fast_retransmits,
        c.sack_retransmits,
        c.spurious_recoveries,
        c.rto_expirations,
        c.sacked_bytes,
        c.ooo_queued,
        c.rwnd_limited,
        c.cwnd_limited,
        c.segmentation_offloads
    )
}

/// The sender's pattern repeats every 251 bytes (a prime, so it does not line up with
/// segment sizes); a block of 256 periods is sent again and again by reference.
const PATTERN_PERIOD: usize = 251;
const PATTERN_BLOCK: usize = PATTERN_PERIOD * 256;

/// Byte `i` of the pattern `cairn net send` sends.
pub fn pattern_byte(i: u64) -> u8 {
    (i % PATTERN_PERIOD as u64) as u8
}

async fn send(net: NetStack, dst: Ipv4Address, port: u16, bytes: u64) -> Result<(), String> {
    let stream = net.connect(dst, port).await.map_err(|e| format!("connect {dst}:{port}: {e}"))?;
    let stream = Rc::new(stream);
    println!("send: connected to {dst}:{port}");
    // What comes back is read at the same time, so an echoing peer never stalls on us.
    let back: Rc<RefCell<(u64, Sha256, Option<String>)>> = Rc::default();
    let reading = Pending::default();
    reading.add();
    {
        let (stream, back, reading) = (stream.clone(), back.clone(), reading.clone());
        spawn_local(async move {
            loop {
                match stream.recv().await {
                    Ok(Some(buf)) => {
                        let mut back = back.borrow_mut();
                        back.0 += buf.len() as u64;
                        back.1.update(&buf[..]);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        back.borrow_mut().2 = Some(e.to_string());
                        break;
                    }
                }
            }
            reading.done();
        });
    }
    let block: Vec<u8> = (0..PATTERN_BLOCK as u64).map(pattern_byte).collect();
    let mut buf = IoBuf::with_headroom(128, PATTERN_BLOCK);
    buf.extend_from_slice(&block);
    let block: SharedIoBuf = buf.freeze();
    let started = Instant::now();
    let mut hash = Sha256::new();
    let mut sent = 0u64;
    while sent < bytes {
        let mut chunk = block.clone();
        chunk.truncate((bytes - sent).min(PATTERN_BLOCK as u64) as usize);
        hash.update(&chunk[..]);
        sent += chunk.len() as u64;
        stream.send(chunk).await.map_err(|e| format!("send after {sent} bytes: {e}"))?;
    }
    stream.shutdown_write().map_err(|e| format!("shutdown: {e}"))?;
    stream.flushed().await.map_err(|e| format!("waiting for ACKs: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "send: sent bytes={sent} sha256={} secs={secs:.3} mbps={:.1}",
        hex(&hash.finalize()),
        sent as f64 * 8.0 / secs.max(1e-9) / 1e6
    );
    reading.all_done().await;
    let (received, back_hash, error) = std::mem::take(&mut *back.borrow_mut());
    if let Some(e) = error {
        return Err(format!("receiving after {received} bytes: {e}"));
    }
    println!("send: received bytes={received} sha256={}", hex(&back_hash.finalize()));
    println!("send: {}", recovery_summary(&net.tcp_counters()));
    if let Ok(stream) = Rc::try_unwrap(stream) {
        stream.close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_arguments_become_a_configuration() {
        let args = StackArgs {
            device: "xdp:veth0:1".into(),
            address: Some("10.1.2.3/24".into()),
            gateway: Some("10.1.2.1".into()),
            dhcp: false,
            tcp_max_retries: 5,
        };
        let (spec, config) = stack_config(&args).unwrap();
        assert_eq!(spec, DeviceSpec::Xdp { ifname: "veth0".into(), queue: 1 });
        assert_eq!(config.tcp.max_retries, 5);
        assert_eq!(
            config.addressing,
            Addressing::Static {
                cidr: Ipv4Cidr::parse("10.1.2.3/24").unwrap(),
                gateway: Some(Ipv4Address::new(10, 1, 2, 1))
            }
        );
        let dhcp = StackArgs { address: None, gateway: None, dhcp: true, ..args.clone() };
        assert_eq!(stack_config(&dhcp).unwrap().1.addressing, Addressing::Dhcp);
        let bad = StackArgs { address: Some("10.1.2.3".into()), ..args };
        assert!(stack_config(&bad).is_err());
    }

    #[test]
    fn the_pattern_repeats_every_block() {
        assert_eq!(pattern_byte(0), 0);
        assert_eq!(pattern_byte(250), 250);
        assert_eq!(pattern_byte(251), 0);
        let block = PATTERN_BLOCK as u64;
        assert!((0..600).all(|i| pattern_byte(i) == pattern_byte(i + block)));
    }
}
