//! `cairn bench netpipe`: NetPIPE-style TCP ping-pong (Snell et al., "NetPIPE: A Network
//! Protocol Independent Performance Evaluator", 1996) between two network namespaces joined by
//! a veth pair, message sizes 1 B to 64 KiB, half round trips as NetPIPE reports them.
//!
//! The client is always Linux, in one namespace, pinned to one CPU; the echo server is, in
//! turn, on the other CPU in the other namespace:
//!
//! 1. Linux with blocking sockets, as applications and NetPIPE use them (`linux_64b_us`);
//! 2. Linux busy-polling: both ends spin on non-blocking sockets (`linux_busy_64b_us`);
//! 3. cairn's stack on an AF_XDP socket on the same veth end (copy mode: veth has no zero
//!    copy), one cairn core with the runtime's adaptive polling, measured twice: with the
//!    blocking client (`cairn_64b_us`, to compare with 1) and with the busy-polling client
//!    (`cairn_busy_client_64b_us`, to compare with 2), so that each comparison changes only
//!    the server.
//!
//! `ratio` = `linux_64b_us` / `cairn_64b_us`; `busy_ratio` = `linux_busy_64b_us` /
//! `cairn_busy_client_64b_us`. The lab ([`Lab`]) and the cairn side
//! ([`CairnSide`]) are shared with `cairn bench iperf`. Needs root (namespaces, AF_XDP).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_hosted::netstack::{Addressing, DeviceSpec, NetConfig, NetStack, NetTcpStream};
use cairn_hosted::RuntimeHandle;
use cairn_net::iface::Ipv4Cidr;
use cairn_rt::event::spawn_local;

use super::{progress, Report};

/// Linux's address (the client's side, `va`).
pub(crate) const LINUX_IP: &str = "10.211.0.1";
/// The server side's address (`vb`: Linux's server, then cairn).
pub(crate) const SERVER_IP: &str = "10.211.0.2";
/// The echo port.
const ECHO_PORT: u16 = 7;

fn command(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Two namespaces joined by a veth pair, deleted on drop: the client's `va` and the server's
/// `vb`, with TX checksum offload off on `va` (AF_XDP on `vb` sees frames as sent).
pub(crate) struct Lab {
    pub(crate) client_ns: String,
    pub(crate) server_ns: String,
    /// The CPUs for the server side and the client side.
    pub(crate) cpus: (usize, usize),
}

impl Lab {
    pub(crate) fn new(tag: &str) -> Result<Lab, String> {
        let pid = std::process::id();
        let lab = Lab {
            client_ns: format!("cb-{tag}-l-{pid}"),
            server_ns: format!("cb-{tag}-s-{pid}"),
            cpus: {
                let cpus = cairn_hosted::affinity::allowed_cpus().map_err(|e| e.to_string())?;
                (cpus[0], cpus[1 % cpus.len()])
            },
        };
        for ns in [&lab.client_ns, &lab.server_ns] {
            command("ip", &["netns", "add", ns])?;
            command("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        command(
            "ip",
            &[
                "-n",
                &lab.client_ns,
                "link",
                "add",
                "va",
                "type",
                "veth",
                "peer",
                "name",
                "vb",
                "netns",
                &lab.server_ns,
            ],
        )?;
        command("ip", &["-n", &lab.client_ns, "link", "set", "va", "up"])?;
        command("ip", &["-n", &lab.server_ns, "link", "set", "vb", "up"])?;
        command("ip", &["netns", "exec", &lab.client_ns, "ethtool", "-K", "va", "tx", "off"])?;
        command(
            "ip",
            &["-n", &lab.client_ns, "addr", "add", &format!("{LINUX_IP}/24"), "dev", "va"],
        )?;
        Ok(lab)
    }

    /// Joins the two namespaces by a second veth pair, `vc` (client, `client_ip`/24) and
    /// `vd` (server, `server_ip`/24), with every offload left on.
    pub(crate) fn add_offloading_veth(
        &self,
        client_ip: &str,
        server_ip: &str,
    ) -> Result<(), String> {
        let (client, server) = (&self.client_ns, &self.server_ns);
        command(
            "ip",
            &[
                "-n", client, "link", "add", "vc", "type", "veth", "peer", "name", "vd", "netns",
                server,
            ],
        )?;
        self.add_address(client, &format!("{client_ip}/24"), "vc")?;
        self.add_address(server, &format!("{server_ip}/24"), "vd")?;
        command("ip", &["-n", client, "link", "set", "vc", "up"])?;
        command("ip", &["-n", server, "link", "set", "vd", "up"])
    }

    /// Adds address `cidr` to interface `dev` in namespace `ns`.
    pub(crate) fn add_address(&self, ns: &str, cidr: &str, dev: &str) -> Result<(), String> {
        command("ip", &["-n", ns, "addr", "add", cidr, "dev", dev])
    }

    /// Gives `vb` the server's address for the Linux server (removed before cairn runs).
    pub(crate) fn linux_server_address(&self, on: bool) -> Result<(), String> {
        let verb = if on { "add" } else { "del" };
        command(
            "ip",
            &["-n", &self.server_ns, "addr", verb, &format!("{SERVER_IP}/24"), "dev", "vb"],
        )
    }

    /// Runs `f` on a new thread in namespace `ns`, pinned to `cpu`.
    pub(crate) fn spawn<T: Send + 'static>(
        ns: &str,
        cpu: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T, String>> {
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: setns(2) on a namespace descriptor we own; it moves only this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            let _ = cairn_hosted::affinity::pin_current_thread(cpu);
            Ok(f())
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client_ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Joins a lab thread.
pub(crate) fn join<T>(handle: std::thread::JoinHandle<Result<T, String>>) -> Result<T, String> {
    handle.join().map_err(|_| "a benchmark thread panicked".to_string())?
}

/// Connects to `addr` with retries while the server starts (up to 10 s).
pub(crate) fn connect_retrying(addr: &str) -> Result<TcpStream, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(format!("connect {addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

thread_local! {
    /// The stack on the cairn core, for work sent there by [`CairnSide::run`].
    static STACK: RefCell<Option<NetStack>> = const { RefCell::new(None) };
}

/// cairn's stack on an AF_XDP socket on `vb`, on one cairn core pinned to the server CPU, with
/// an echo server on port 7.
pub(crate) struct CairnSide {
    handle: Option<RuntimeHandle>,
}

impl CairnSide {
    /// cairn on AF_XDP on `vb`, as [`SERVER_IP`].
    pub(crate) fn start(lab: &Lab) -> Result<CairnSide, String> {
        let spec = DeviceSpec::Xdp { ifname: "vb".into(), queue: 0 };
        CairnSide::start_on(&lab.server_ns, lab.cpus.0, spec, &format!("{SERVER_IP}/24"))
    }

    /// cairn on `spec` (opened, or created, in namespace `ns`) with address `cidr`, on one
    /// core pinned to `cpu`.
    pub(crate) fn start_on(
        ns: &str,
        cpu: usize,
        spec: DeviceSpec,
        cidr: &str,
    ) -> Result<CairnSide, String> {
        let cidr = Ipv4Cidr::parse(cidr).ok_or_else(|| format!("bad address {cidr}"))?;
        let (tx, rx) = mpsc::channel();
        let starter = Lab::spawn(ns, cpu, move || -> Result<RuntimeHandle, String> {
            let device = spec.open().map_err(|e| format!("open {spec}: {e}"))?;
            let config = NetConfig::new(Addressing::Static { cidr, gateway: None });
            let slot = std::sync::Mutex::new(Some((device, config, tx)));
            // The core thread inherits this thread's namespace and is pinned to core 0's CPU.
            cairn_hosted::start(1, move |_| {
                let (device, config, tx) = slot.lock().expect("slot").take().expect("one core");
                let net = NetStack::start(device, config);
                let listener = net.tcp_listen(ECHO_PORT).expect("listen");
                spawn_local(async move {
                    while let Ok(stream) = listener.accept().await {
                        spawn_local(echo(stream));
                    }
                });
                STACK.with(|s| *s.borrow_mut() = Some(net));
                let _ = tx.send(());
            })
            .map_err(|e| format!("cairn runtime: {e}"))
        });
        let handle = join(starter)??;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "cairn stack did not start")?;
        Ok(CairnSide { handle: Some(handle) })
    }

    /// Runs `job` with the stack on the cairn core; `job` spawns its own tasks.
    pub(crate) fn run(&self, job: impl FnOnce(NetStack) + Send + 'static) {
        let handle = self.handle.as_ref().expect("running");
        handle.runtime().spawn_on(0, move || {
            let net = STACK.with(|s| s.borrow().clone()).expect("stack on core 0");
            job(net);
        });
    }
}

impl Drop for CairnSide {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            let _ = handle.join();
        }
    }
}

async fn echo(stream: NetTcpStream) {
    while let Ok(Some(buf)) = stream.recv().await {
        if stream.send(buf).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown_write();
    let _ = stream.flushed().await;
}

/// The message sizes: powers of two from 1 B to 64 KiB.
fn sizes() -> Vec<usize> {
    (0..=16).map(|p| 1usize << p).collect()
}

/// Round trips per size: enough for a stable figure, fewer for big messages.
fn iterations(size: usize, quick: bool) -> usize {
    let base = if quick { 300 } else { 3000 };
    (base * 1024 / size.max(1024)).max(if quick { 20 } else { 100 })
}

/// Ping-pong from the client namespace against `SERVER_IP:7`: for each size, the mean half
/// round trip in microseconds. `busy` spins on a non-blocking socket instead of blocking.
fn client(busy: bool, quick: bool) -> Result<Vec<(usize, f64)>, String> {
    let mut stream = connect_retrying(&format!("{SERVER_IP}:{ECHO_PORT}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_nonblocking(busy).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for size in sizes() {
        let message = vec![0x5au8; size];
        let rounds = iterations(size, quick);
        let warm = rounds / 10 + 1;
        let mut started = Instant::now();
        for round in 0..warm + rounds {
            if round == warm {
                started = Instant::now();
            }
            write_all(&mut stream, &message, busy)?;
            read_exact(&mut stream, &mut buf[..size], busy)?;
        }
        let half_rtt_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64 / 2.0;
        results.push((size, half_rtt_us));
    }
    let _ = stream.shutdown(Shutdown::Write);
    Ok(results)
}

fn write_all(stream: &mut TcpStream, mut data: &[u8], busy: bool) -> Result<(), String> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if busy && e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}

fn read_exact(stream: &mut TcpStream, buf: &mut [u8], busy: bool) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => got += n,
            Err(e) if busy && e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(())
}

/// Linux's echo server in the server namespace for one connection; `busy` spins.
fn linux_server(listener: TcpListener, busy: bool) -> Result<(), String> {
    let (mut stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_nonblocking(busy).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => write_all(&mut stream, &buf[..n], busy)?,
            Err(e) if busy && e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(format!("server read: {e}")),
        }
    }
}

/// One Linux-against-Linux run.
fn linux_run(lab: &Lab, busy: bool, quick: bool) -> Result<Vec<(usize, f64)>, String> {
    let (listening_tx, listening) = mpsc::channel();
    let server = Lab::spawn(&lab.server_ns, lab.cpus.0, move || {
        let listener = TcpListener::bind(format!("{SERVER_IP}:{ECHO_PORT}"))
            .map_err(|e| format!("bind: {e}"))?;
        let _ = listening_tx.send(());
        linux_server(listener, busy)
    });
    listening.recv_timeout(Duration::from_secs(10)).map_err(|_| "server did not start")?;
    let results = join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || client(busy, quick)))??;
    join(server)??;
    Ok(results)
}

fn at(results: &[(usize, f64)], size: usize) -> f64 {
    results.iter().find(|(s, _)| *s == size).map_or(f64::NAN, |(_, us)| *us)
}

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Report, String> {
    let lab = Lab::new("netpipe")?;
    lab.linux_server_address(true)?;
    progress("Linux against Linux, blocking sockets");
    let linux = linux_run(&lab, false, quick)?;
    progress("Linux against Linux, busy-polling sockets");
    let busy = linux_run(&lab, true, quick)?;
    lab.linux_server_address(false)?;
    progress("Linux against cairn (AF_XDP, copy mode), blocking client");
    let cairn_side = CairnSide::start(&lab)?;
    let cairn = join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || client(false, quick)))??;
    progress("Linux against cairn (AF_XDP, copy mode), busy-polling client");
    let cairn_busy = join(Lab::spawn(&lab.client_ns, lab.cpus.1, move || client(true, quick)))??;
    drop(cairn_side);

    let mut table = String::new();
    let _ = writeln!(
        table,
        "netpipe: TCP ping-pong over veth, half round trip in us (server CPU {}, client CPU {})",
        lab.cpus.0, lab.cpus.1
    );
    let _ = writeln!(
        table,
        "{:>8} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "bytes", "cairn", "linux", "ratio", "cairn/busy", "busy", "ratio"
    );
    for ((size, cairn_us), (_, cairn_busy_us)) in cairn.iter().zip(&cairn_busy) {
        let (l, b) = (at(&linux, *size), at(&busy, *size));
        let _ = writeln!(
            table,
            "{size:>8} {cairn_us:>10.2} {l:>10.2} {:>8.2} {cairn_busy_us:>10.2} {b:>10.2} {:>8.2}",
            l / cairn_us,
            b / cairn_busy_us
        );
    }
    let _ = writeln!(
        table,
        "cairn: its server with a blocking Linux client (against Linux both blocking); \
         cairn/busy: with a busy-polling Linux client (against Linux both busy-polling)"
    );
    let (c64, l64, b64) = (at(&cairn, 64), at(&linux, 64), at(&busy, 64));
    let cb64 = at(&cairn_busy, 64);
    let mbps = |r: &[(usize, f64)]| 65536.0 * 8.0 / at(r, 65536);
    Ok(Report {
        table,
        fields: vec![
            ("cairn_64b_us", c64),
            ("linux_64b_us", l64),
            ("cairn_busy_client_64b_us", cb64),
            ("linux_busy_64b_us", b64),
            ("cairn_64k_mbps", mbps(&cairn)),
            ("cairn_busy_client_64k_mbps", mbps(&cairn_busy)),
            ("linux_64k_mbps", mbps(&linux)),
            ("linux_busy_64k_mbps", mbps(&busy)),
            ("ratio", l64 / c64),
            ("busy_ratio", b64 / cb64),
        ],
        peer: "Linux TCP over the same veth (blocking and busy-polling sockets)".into(),
    })
}
