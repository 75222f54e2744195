//! Shared by the `cairn net` tests: network namespaces, TAP and veth links that each test
//! creates and always deletes (on drop, also when the test fails), `cairn net ...` run inside
//! a namespace with its output collected line by line, and the Linux peers as small Python
//! programs run with `ip netns exec`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `cairn` binary; `CAIRN_NET_BIN` overrides it (to test a build with `net` wired in).
pub fn cairn_bin() -> String {
    std::env::var("CAIRN_NET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_cairn").to_string())
}

/// Bytes of each bulk transfer: `CAIRN_NET_BULK_MIB` MiB, 256 by default (issue 5).
pub fn bulk_bytes() -> u64 {
    let mib = std::env::var("CAIRN_NET_BULK_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    mib << 20
}

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

/// A network namespace, deleted on drop (with every interface in it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates namespace `cn-<tag>-<pid>` with loopback up and IPv6 off.
    pub fn new(tag: &str) -> Netns {
        let name = format!("cn-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ns
    }

    /// Runs `cmd` inside the namespace and returns its stdout; panics if it fails.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        run("ip", &args)
    }

    /// Starts `cmd` inside the namespace with its output collected.
    pub fn spawn(&self, cmd: &[&str]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc::new(child, format!("{cmd:?}"))
    }

    /// Starts `cairn net TOOL args...` inside the namespace.
    pub fn cairn(&self, args: &[&str]) -> Proc {
        let bin = cairn_bin();
        let mut cmd = vec![bin.as_str(), "net"];
        cmd.extend_from_slice(args);
        self.spawn(&cmd)
    }

    /// Starts a Python peer, `script` with `args`.
    pub fn python(&self, script: &str, args: &[&str]) -> Proc {
        let mut cmd = vec!["python3", "-c", script];
        cmd.extend_from_slice(args);
        self.spawn(&cmd)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A child process whose stdout and stderr lines are collected; killed on drop.
pub struct Proc {
    child: Child,
    what: String,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn new(mut child: Child, what: String) -> Proc {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let lines = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            }));
        }
        Proc { child, what, lines, readers }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits up to `timeout` for a line containing `needle`, and returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                    return line.clone();
                }
                panic!("{} exited ({status}) before {needle:?}:\n{}", self.what, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from {} within {timeout:?}:\n{}",
                self.what,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit; returns its status and output.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {timeout:?}:\n{}", self.what, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, self.output())
    }

    /// Waits for a successful exit and returns the output.
    pub fn success(self, timeout: Duration) -> String {
        let what = self.what.clone();
        let (status, output) = self.finish(timeout);
        assert!(status.success(), "{what} failed ({status}):\n{output}");
        output
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TAP link: namespace `ns` holds tap interface `ct0` with Linux's address `10.<net>.0.1/24`;
/// cairn attaches to it as `10.<net>.0.2/24`.
pub struct TapLink {
    pub ns: Netns,
}

impl TapLink {
    pub fn new(tag: &str, net: u8) -> TapLink {
        TapLink::with_queues(tag, net, false)
    }

    /// The link with a multi-queue tap (`ip tuntap add ... multi_queue`), for one cairn stack
    /// per core.
    pub fn with_queues(tag: &str, net: u8, multi_queue: bool) -> TapLink {
        let ns = Netns::new(tag);
        let mut add = vec!["ip", "tuntap", "add", "dev", "ct0", "mode", "tap"];
        if multi_queue {
            add.push("multi_queue");
        }
        ns.exec(&add);
        ns.exec(&["ip", "addr", "add", &format!("10.{net}.0.1/24"), "dev", "ct0"]);
        ns.exec(&["ip", "link", "set", "ct0", "up"]);
        TapLink { ns }
    }
}

/// A veth link for AF_XDP: Linux's end `va` (TX checksum offload off, address
/// `10.<net>.0.1/24`) in one namespace, cairn's end `vb` in another.
pub struct VethLink {
    pub linux: Netns,
    pub cairn: Netns,
}

impl VethLink {
    pub fn new(tag: &str, net: u8) -> VethLink {
        VethLink::with_queues(tag, net, 1)
    }

    /// The link with `queues` receive and transmit queues on each end, for one cairn stack
    /// per core on `vb`'s queues.
    pub fn with_queues(tag: &str, net: u8, queues: u8) -> VethLink {
        let linux = Netns::new(&format!("{tag}-l"));
        let cairn = Netns::new(&format!("{tag}-c"));
        let queues = queues.to_string();
        let q = ["numtxqueues", &queues, "numrxqueues", &queues];
        let mut add = vec!["-n", &linux.name, "link", "add", "va"];
        add.extend(q);
        add.extend(["type", "veth", "peer", "name", "vb"]);
        add.extend(q);
        add.extend(["netns", &cairn.name]);
        run("ip", &add);
        linux.exec(&["ip", "link", "set", "va", "up"]);
        cairn.exec(&["ip", "link", "set", "vb", "up"]);
        linux.exec(&["ethtool", "-K", "va", "tx", "off"]);
        linux.exec(&["ip", "addr", "add", &format!("10.{net}.0.1/24"), "dev", "va"]);
        VethLink { linux, cairn }
    }
}

/// The value of `key=` in `line` (`bytes=12 sha256=ab..`).
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    line[start + key.len() + 1..].split_whitespace().next().unwrap_or("")
}

/// Python: the byte pattern of `cairn net send` (i mod 251) and its 256-period block.
const PATTERN: &str = "P = 251\nBLOCK = bytes(i % P for i in range(P * 256))\n";

/// Python peer: connects to argv[1]:argv[2], sends argv[3] bytes of the pattern, half-closes,
/// reads to EOF; prints `sent bytes= sha256=` and `received bytes= sha256=`.
pub fn bulk_client() -> String {
    PATTERN.to_string()
        + r#"
import socket, sys, hashlib, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
s = socket.create_connection((host, port), timeout=60)
got = [0, hashlib.sha256()]
def reader():
    import time
    time.sleep(delay)
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got[0] += len(d); got[1].update(d)
t = threading.Thread(target=reader); t.start()
h = hashlib.sha256(); sent = 0
while sent < n:
    c = BLOCK[:min(len(BLOCK), n - sent)]
    s.sendall(c); h.update(c); sent += len(c)
s.shutdown(socket.SHUT_WR)
print("sent bytes=%d sha256=%s" % (sent, h.hexdigest()), flush=True)
t.join(); s.close()
print("received bytes=%d sha256=%s" % (got[0], got[1].hexdigest()), flush=True)
"#
}

/// Python peer: listens on argv[1]:argv[2]; for each of argv[3] connections reads to EOF and
/// prints `sink bytes= sha256=`; with argv[4] == "echo" sends everything back first.
pub const LINUX_SERVER: &str = r#"
import socket, sys, hashlib
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
echo = len(sys.argv) > 4 and sys.argv[4] == "echo"
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((host, port)); l.listen(16)
print("listening", flush=True)
l.settimeout(120)
for _ in range(count):
    c, _ = l.accept(); c.settimeout(120)
    h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d); n += len(d)
        if echo:
            c.sendall(d)
    print("sink bytes=%d sha256=%s" % (n, h.hexdigest()), flush=True)
    c.close()
"#;

/// Python peer: `count` short connections to host:port (argv 1-3), `threads` at once (argv 4),
/// each sending a line and reading its echo; prints `ok=N`.
pub const SHORT_CONNECTIONS: &str = r#"
import socket, sys, threading
host, port, count, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = [0]; lock = threading.Lock(); nxt = [0]
def worker():
    while True:
        with lock:
            i = nxt[0]; nxt[0] += 1
        if i >= count:
            return
        msg = b"connection %d\n" % i
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(msg); s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
        s.close()
        if got == msg:
            with lock:
                ok[0] += 1
ts = [threading.Thread(target=worker) for _ in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
print("ok=%d" % ok[0], flush=True)
"#;

/// Python peer: UDP datagrams to host:port (argv 1-2), argv[3] of them; prints `ok=N`.
pub const UDP_CLIENT: &str = r#"
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
ok = 0
for i in range(count):
    msg = b"datagram %d " % i + bytes(i % 200)
    u.sendto(msg, (host, port))
    try:
        d, a = u.recvfrom(4096)
        ok += d == msg and a == (host, port)
    except socket.timeout:
        pass
print("ok=%d" % ok, flush=True)
"#;

/// Python peer: connects to host:port (argv 1-2), sends 1000 bytes, then aborts the
/// connection with SO_LINGER 0 (a RST).
pub const ABORTING_CLIENT: &str = r#"
import socket, sys, struct, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"a" * 1000)
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("aborted", flush=True)
"#;

/// Python peer: from source address argv[3], connects to host:port (argv 1-2) with a small
/// receive buffer, sends without reading until the echo backs up, prints `stuffed`, then
/// idles (until killed).
pub const STUFFING_CLIENT: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.bind((sys.argv[3], 0)); s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(1.0)
sent = 0
try:
    while sent < (64 << 20):
        sent += s.send(b"z" * 65536)
except socket.timeout:
    pass
print("stuffed sent=%d" % sent, flush=True)
time.sleep(120)
"#;

/// Python relay between interfaces argv[1] and argv[2] (AF_PACKET): every frame waits
/// argv[3] ms, except a share argv[5] that goes at once (so it overtakes), and a share argv[4]
/// is dropped; both directions. Prints `relaying`, and `dropped=N forwarded=M` on SIGTERM.
pub const IMPAIRING_RELAY: &str = r#"
import socket, sys, select, heapq, random, time, signal
a, b = sys.argv[1], sys.argv[2]
delay, loss, reorder = float(sys.argv[3]) / 1000, float(sys.argv[4]), float(sys.argv[5])
rng = random.Random(5)
socks = {}
for name in (a, b):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((name, 0)); s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    socks[name] = s
other = {a: socks[b], b: socks[a]}
queue = []; seq = 0; stats = {"dropped": 0, "forwarded": 0}
def report(*_):
    print("dropped=%d forwarded=%d" % (stats["dropped"], stats["forwarded"]), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
print("relaying", flush=True)
while True:
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, out, frame = heapq.heappop(queue)
        try:
            out.send(frame); stats["forwarded"] += 1
        except OSError:
            pass
    timeout = max(0.0, queue[0][0] - now) if queue else 0.5
    ready, _, _ = select.select(list(socks.values()), [], [], timeout)
    for s in ready:
        name = a if s is socks[a] else b
        for _ in range(64):
            try:
                frame, addr = s.recvfrom(65536)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if rng.random() < loss:
                stats["dropped"] += 1
                continue
            wait = 0.0 if rng.random() < reorder else delay
            seq += 1
            heapq.heappush(queue, (time.monotonic() + wait, seq, other[name], frame))
"#;

/// A link whose relay delays, drops and reorders frames. Linux's `va` (10.<net>.0.1/24) is
/// in its own namespace, joined by a veth pair to `ra` in the relay's namespace. With AF_XDP,
/// a second veth pair `rb`—`vb` leads on to cairn's namespace and cairn takes `xdp:vb`; with
/// TAP, cairn attaches to the tap `vb` in the relay's own namespace, which carries no address,
/// so the kernel there only passes frames between the relay and cairn.
pub struct ImpairedLink {
    pub linux: Netns,
    pub cairn: Netns,
    /// The relay's namespace when it is not cairn's (the AF_XDP case).
    pub middle: Option<Netns>,
    relay: Option<Proc>,
}

impl ImpairedLink {
    /// `device` is `xdp` or `tap`; cairn's device is then `xdp:vb` or `tap:vb`.
    pub fn new(tag: &str, net: u8, device: &str) -> ImpairedLink {
        let linux = Netns::new(&format!("{tag}-l"));
        let relay_ns = Netns::new(&format!("{tag}-m"));
        let veth = |ns: &Netns, end: &str, mid: &str| {
            run(
                "ip",
                &[
                    "-n",
                    &relay_ns.name,
                    "link",
                    "add",
                    mid,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    end,
                    "netns",
                    &ns.name,
                ],
            );
            relay_ns.exec(&["ip", "link", "set", mid, "up"]);
            ns.exec(&["ip", "link", "set", end, "up"]);
        };
        veth(&linux, "va", "ra");
        linux.exec(&["ethtool", "-K", "va", "tx", "off"]);
        linux.exec(&["ip", "addr", "add", &format!("10.{net}.0.1/24"), "dev", "va"]);
        let (cairn, middle, far) = if device == "tap" {
            relay_ns.exec(&["ip", "tuntap", "add", "dev", "vb", "mode", "tap"]);
            relay_ns.exec(&["ip", "link", "set", "vb", "up"]);
            (relay_ns, None, "vb")
        } else {
            let cairn = Netns::new(&format!("{tag}-c"));
            veth(&cairn, "vb", "rb");
            relay_ns.exec(&["ethtool", "-K", "rb", "tx", "off"]);
            (cairn, Some(relay_ns), "rb")
        };
        let at = middle.as_ref().unwrap_or(&cairn);
        let mut relay = at.python(IMPAIRING_RELAY, &["ra", far, "20", "0.01", "0.25"]);
        relay.wait_for("relaying", Duration::from_secs(10));
        ImpairedLink { linux, cairn, middle, relay: Some(relay) }
    }

    /// Stops the relay and returns what it reports (frames dropped and forwarded).
    pub fn stop(mut self) -> String {
        let relay = self.relay.take().expect("relay running");
        // SAFETY: kill(2) with the pid of our own child, which has not been reaped.
        unsafe { libc::kill(relay.child.id() as i32, libc::SIGTERM) };
        relay.finish(Duration::from_secs(10)).1
    }
}
