//! Shared by the device tests: network namespaces and veth pairs that the test creates and
//! always deletes, a thread that enters a namespace, a frame-level responder (ARP replies and
//! ICMP echo replies built by hand with `cairn_net::wire`, since the stack itself is not here
//! yet), and a bounded serving loop.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_net::device::Device;
use cairn_net::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumCapabilities, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr,
};
use cairn_rt::iobuf::{IoBuf, IoBufChain};

/// Runs `program args`, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd...` inside namespace `ns` (`ip netns exec`).
pub fn run_in(ns: &str, cmd: &[&str]) -> String {
    let mut args = vec!["netns", "exec", ns];
    args.extend_from_slice(cmd);
    run("ip", &args)
}

/// A network namespace, deleted on drop (also when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates namespace `cairn-<tag>-<pid>` with loopback up and IPv6 off (so Linux sends no
    /// router solicitations into the device under test).
    pub fn new(tag: &str) -> Netns {
        let name = format!("cairn-{tag}-{}", std::process::id());
        // A namespace of this name left by a crashed run of this same pid is unlikely; clear it.
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        run_in(&ns.name, &["ip", "link", "set", "lo", "up"]);
        run_in(
            &ns.name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        );
        ns
    }

    /// Runs `f` on a new thread that has entered this namespace with setns(2), and returns
    /// its result. Sockets and devices opened there belong to the namespace.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("namespace thread panicked")
    }

    /// Starts `f` on a new thread that has entered this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            enter_current_thread(&name);
            f()
        })
    }
}

/// Moves the calling thread into namespace `name` (setns(2)).
pub fn enter_current_thread(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns(2) on a namespace descriptor we own; it changes only this thread's network
    // namespace.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Netns {
    /// The namespace's name (also the name under /var/run/netns).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A veth pair with one end in each of two namespaces (deleted with them).
pub fn veth_pair(a: &Netns, a_name: &str, b: &Netns, b_name: &str) {
    run(
        "ip",
        &[
            "-n", &a.name, "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns",
            &b.name,
        ],
    );
    run("ip", &["-n", &a.name, "link", "set", a_name, "up"]);
    run("ip", &["-n", &b.name, "link", "set", b_name, "up"]);
}

/// Turns off TX checksum offload on `ifname` in `ns`, so its TCP and UDP frames leave with
/// whole checksums (an AF_XDP socket on the peer sees them raw).
pub fn tx_checksum_off(ns: &Netns, ifname: &str) {
    run_in(&ns.name, &["ethtool", "-K", ifname, "tx", "off"]);
}

/// Starts `ping -c COUNT ADDR` inside `ns`, 200 ms apart, waiting at most 2 s per reply.
pub fn spawn_ping(ns: &Netns, address: &str, count: u32) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "ping", "-n", "-c", &count.to_string()])
        .args(["-i", "0.2", "-W", "2", address])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ping (install iputils-ping)")
}

/// cairn's side of the link as the responder knows it.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub mac: EthernetAddress,
    pub ip: Ipv4Address,
}

/// What the responder did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Answered {
    pub arp_replies: u32,
    pub echo_replies: u32,
    pub ignored: u32,
}

/// An ARP reply to `request` from `me`, in a new buffer.
fn arp_reply(me: Host, request: &ArpRepr) -> IoBuf {
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: me.mac,
        source_protocol_addr: me.ip,
        target_hardware_addr: request.source_hardware_addr,
        target_protocol_addr: request.source_protocol_addr,
    };
    let eth = EthernetRepr {
        src_addr: me.mac,
        dst_addr: request.source_hardware_addr,
        ethertype: EtherType::Arp,
    };
    let mut buf = IoBuf::with_capacity(eth.buffer_len() + reply.buffer_len());
    buf.claim_tailroom(eth.buffer_len() + reply.buffer_len()).unwrap();
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    reply.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

/// Turns the echo request in `frame` around in place: addresses swapped, type set to reply,
/// checksums recomputed. The same bytes go back out (a UMEM frame stays in the UMEM).
fn echo_reply_in_place(me: Host, frame: &mut IoBuf) -> bool {
    let caps = ChecksumCapabilities::default();
    let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) else { return false };
    let peer_mac = eth.src_addr();
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else { return false };
    let Ok(ip_repr) = Ipv4Repr::parse(&ip, &caps) else { return false };
    if ip_repr.protocol != IpProtocol::Icmp || ip_repr.dst_addr != me.ip {
        return false;
    }
    {
        let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) else { return false };
        let Ok(Icmpv4Repr::EchoRequest { .. }) = Icmpv4Repr::parse(&icmp, &caps) else {
            return false;
        };
        icmp.set_msg_type(Icmpv4Message::EchoReply);
        icmp.fill_checksum();
    }
    let reply = Ipv4Repr { src_addr: me.ip, dst_addr: ip_repr.src_addr, ttl: 64, ..ip_repr };
    reply.emit(&mut ip, &caps);
    eth.set_dst_addr(peer_mac);
    eth.set_src_addr(me.mac);
    true
}

/// Answers one received frame: an ARP request for `me`, or an ICMP echo request to it.
pub fn answer(me: Host, mut frame: IoBuf, done: &mut Answered) -> Option<IoBufChain> {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        done.ignored += 1;
        return None;
    };
    let mut out = IoBufChain::new();
    match eth.ethertype() {
        EtherType::Arp => {
            let request =
                ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p)).ok().filter(
                    |r| r.operation == ArpOperation::Request && r.target_protocol_addr == me.ip,
                );
            let Some(request) = request else {
                done.ignored += 1;
                return None;
            };
            done.arp_replies += 1;
            out.push_back(arp_reply(me, &request).freeze());
        }
        EtherType::Ipv4 if echo_reply_in_place(me, &mut frame) => {
            done.echo_replies += 1;
            out.push_back(frame.freeze());
        }
        _ => {
            done.ignored += 1;
            return None;
        }
    }
    Some(out)
}

/// Waits up to `timeout` for `fd` to become readable.
pub fn wait_readable(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
}

/// Serves `device` as host `me` until `finished()` says so or `limit` passes; returns what it
/// answered and whether it finished in time.
pub fn serve<D: Device>(
    device: &mut D,
    fd: i32,
    me: Host,
    limit: Duration,
    mut finished: impl FnMut(&Answered) -> bool,
) -> (Answered, bool) {
    let mut done = Answered::default();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if finished(&done) {
            return (done, true);
        }
        let mut busy = false;
        for _ in 0..64 {
            let Some(frame) = device.receive() else { break };
            busy = true;
            if let Some(reply) = answer(me, frame, &mut done) {
                device.transmit(reply).expect("transmit");
            }
        }
        device.flush();
        if !busy {
            wait_readable(fd, Duration::from_millis(10));
        }
    }
    (done, finished(&done))
}

/// Serves while `ping` runs in `ns` and returns its exit status with what was answered.
pub fn serve_ping<D: Device>(
    device: &mut D,
    fd: i32,
    me: Host,
    ns: &Netns,
    count: u32,
) -> (Answered, String) {
    let mut ping = spawn_ping(ns, &me.ip.to_string(), count);
    let mut status = None;
    let (done, _) = serve(device, fd, me, Duration::from_secs(20), |_| {
        if status.is_none() {
            status = ping.try_wait().expect("ping status");
        }
        status.is_some()
    });
    let status = match status {
        Some(status) => status,
        None => {
            let _ = ping.kill();
            ping.wait().expect("ping reaped")
        }
    };
    let output = ping.wait_with_output().expect("ping output");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "ping failed ({status}): {text}\nanswered {done:?}");
    (done, text)
}
