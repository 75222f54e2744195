//! The harness shared by the `cache_*` interop tests: which server is under test, a guard that
//! starts one on a free loopback port and kills it on drop, and a small text-protocol client.
//!
//! Every test is written once, as a function of [`Target`], and [`against_each_target!`] turns it
//! into two test functions: `NAME::memcached`, which runs against the real memcached and proves
//! the test itself, and `NAME::cairn`, which runs against `cairn cache`. The `#[ignore]` on the
//! cairn variant lives in that macro alone: deleting that one line points every test at cairn.
//!
//! Only loopback is used; every server, client program and temporary file a test makes is
//! removed by a guard's `Drop`, also when the test fails.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes the two variants of a test function `fn NAME(target: Target)`: `NAME::memcached` and
/// `NAME::cairn` (ignored until the appliance lands).
macro_rules! against_each_target {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            /// Against the real memcached: proves the test and the harness.
            #[test]
            fn memcached() {
                super::$name(crate::cache_common::Target::Memcached)
            }

            /// Against `cairn cache`, the same assertions.
            #[test]
            fn cairn() {
                super::$name(crate::cache_common::Target::Cairn)
            }
        }
    )*};
}
pub(crate) use against_each_target;

/// How long a server may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The read and write timeout of every client socket: a test that waits longer has failed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `memcached` from the Debian package (the reference).
    Memcached,
    /// `cairn cache`, the binary built by this package.
    Cairn,
}

impl Target {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Target::Memcached => "memcached",
            Target::Cairn => "cairn cache",
        }
    }

    /// The command line that serves on `127.0.0.1:port` with two worker threads, plus `extra`
    /// memcached-style flags (`-m 64`, `-I 2m`, `-c 4096`...), which both servers accept.
    pub fn command(self, port: u16, extra: &[&str]) -> Command {
        let port = port.to_string();
        let mut cmd = match self {
            Target::Memcached => {
                let mut cmd = Command::new(memcached_path());
                cmd.args(["-p", &port, "-l", "127.0.0.1", "-U", "0", "-t", "2"]);
                // memcached refuses to run as root unless told which user to be.
                if is_root() {
                    cmd.args(["-u", "root"]);
                }
                cmd
            }
            Target::Cairn => {
                let mut cmd = Command::new(cairn_path());
                cmd.args(["cache", "-p", &port, "-l", "127.0.0.1", "-t", "2"]);
                cmd
            }
        };
        cmd.args(extra);
        cmd
    }
}

/// The `cairn` binary of this package.
pub fn cairn_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn"))
}

/// The memcached binary (`scripts/test` installs Debian's).
pub fn memcached_path() -> PathBuf {
    let path = PathBuf::from("/usr/bin/memcached");
    assert!(
        path.exists(),
        "/usr/bin/memcached is missing: scripts/test installs it (apt-get install memcached)"
    );
    path
}

/// The repository root (the parent of this package's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli has a parent").to_path_buf()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A port nobody listens on now (the kernel's choice of a free ephemeral port).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A running server under test; killed (and its log removed) on drop.
pub struct Server {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Which server it is.
    pub target: Target,
    log: PathBuf,
}

impl Server {
    /// Starts `target` with two threads and default settings.
    pub fn start(target: Target) -> Server {
        Server::start_with(target, &[])
    }

    /// Starts `target` with extra memcached-style flags, on a free port, and returns once it
    /// accepts connections. Retries on another port if the chosen one was taken meanwhile.
    pub fn start_with(target: Target, extra: &[&str]) -> Server {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir()
                .join(format!("cairn-cache-test-{}-{port}.log", std::process::id()));
            let log_file = std::fs::File::create(&log).expect("create the server log");
            let child = target
                .command(port, extra)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("dup log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", target.name()));
            let mut server = Server { child, port, target, log };
            match server.wait_until_accepting() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
            // `server` drops here: killed, log removed; try another port.
        }
        panic!("{} did not start: {last_error}", target.name());
    }

    fn wait_until_accepting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log_text()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not accepting on port {} after {START_TIMEOUT:?}: {}",
                    self.port,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new client connection.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Whether the process is still running and answers `version` on a new connection.
    pub fn is_alive(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut conn = Conn::from_stream(stream);
        conn.send(b"version\r\n");
        matches!(conn.try_line(), Ok(line) if line.starts_with("VERSION "))
    }

    /// Asserts [`Server::is_alive`], with the server's log in the message.
    pub fn assert_alive(&mut self) {
        assert!(self.is_alive(), "{} is not serving; log: {}", self.target.name(), self.log_text());
    }

    /// Resident set size of the server process in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// What the server wrote on stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `stats` (or `stats ARG`) as name/value pairs.
    pub fn stats(&self, arg: &str) -> Vec<(String, String)> {
        let mut conn = self.connect();
        conn.stats(arg)
    }

    /// One general stat as a number.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.stats("");
        let value =
            stats.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no stat {name}"));
        value.1.parse().unwrap_or_else(|_| panic!("stat {name} = {} is not a number", value.1))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            if !log.is_empty() {
                eprintln!("--- {} log (port {}) ---\n{log}", self.target.name(), self.port);
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A child process that is killed on drop (a client program a test runs).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to completion, but at most `limit`; returns (exit code, stdout, stderr).
/// The child is killed if it overruns (and the test then fails).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut guard = ChildGuard(child);
    let mut stdout = guard.0.stdout.take().expect("stdout");
    let mut stderr = guard.0.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            drop(guard); // kills it, which closes the pipes
            let out = out_thread.join().unwrap_or_default();
            let err = err_thread.join().unwrap_or_default();
            panic!("{cmd:?} ran longer than {limit:?}\nstdout:\n{out}\nstderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    (status.code(), out, err)
}

/// A text-protocol client connection with read and write timeouts.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        Conn::from_stream(stream)
    }

    /// Wraps a connected stream, setting the timeouts.
    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn { reader: BufReader::with_capacity(256 * 1024, stream) }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends bytes (panics on error).
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send to the server");
    }

    /// Sends bytes; an error (the server closed the connection) is returned.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// One reply line without its `\r\n`; an error at end of stream or on timeout.
    pub fn try_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 || !line.ends_with(b"\r\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// One reply line (panics if there is none).
    pub fn line(&mut self) -> String {
        self.try_line().expect("a reply line")
    }

    /// Sends `cmd\r\n` and returns the one-line reply.
    pub fn cmd(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r\n").as_bytes());
        self.line()
    }

    /// Reads exactly `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("read a data block");
        buf
    }

    /// Stores `value` under `key` with `set`; returns the reply line.
    pub fn set(&mut self, key: &str, value: &[u8]) -> String {
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.send(&req);
        self.line()
    }

    /// Sends a retrieval command (`get`, `gets`, `gat`...) and reads the reply up to `END`:
    /// (key, flags, value, cas) per item.
    pub fn retrieve(&mut self, cmd: &str) -> Vec<(String, u32, Vec<u8>, Option<u64>)> {
        self.send(format!("{cmd}\r\n").as_bytes());
        self.read_values()
    }

    /// Reads `VALUE` blocks up to `END`.
    pub fn read_values(&mut self) -> Vec<(String, u32, Vec<u8>, Option<u64>)> {
        let mut items = Vec::new();
        loop {
            let line = self.line();
            if line == "END" {
                return items;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            assert!(
                parts[0] == "VALUE" && (parts.len() == 4 || parts.len() == 5),
                "unexpected reply line {line:?}"
            );
            let len: usize = parts[3].parse().expect("value length");
            let mut data = self.read_bytes(len + 2);
            assert_eq!(&data[len..], b"\r\n", "data block not ended by CRLF");
            data.truncate(len);
            let cas = parts.get(4).map(|c| c.parse().expect("cas unique"));
            items.push((parts[1].to_string(), parts[2].parse().expect("flags"), data, cas));
        }
    }

    /// The value stored under `key`, if any.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let mut items = self.retrieve(&format!("get {key}"));
        assert!(items.len() <= 1, "one key asked, {} values returned", items.len());
        items.pop().map(|i| i.2)
    }

    /// `stats ARG` as name/value pairs.
    pub fn stats(&mut self, arg: &str) -> Vec<(String, String)> {
        let cmd = if arg.is_empty() { "stats".to_string() } else { format!("stats {arg}") };
        self.send(format!("{cmd}\r\n").as_bytes());
        let mut stats = Vec::new();
        loop {
            let line = self.line();
            if line == "END" {
                return stats;
            }
            let mut parts = line.splitn(3, ' ');
            assert_eq!(parts.next(), Some("STAT"), "unexpected stats line {line:?}");
            let name = parts.next().unwrap_or_default().to_string();
            let value = parts.next().unwrap_or_default().to_string();
            stats.push((name, value));
        }
    }

    /// Reads until the server closes the connection or `limit` passes; returns what came.
    /// `Ok` means the server closed it; `Err` carries what arrived before the time ran out.
    pub fn read_to_close(&mut self, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        self.stream().set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let result = loop {
            match self.reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    if Instant::now() > deadline {
                        break Err(());
                    }
                }
                Err(_) => break Ok(()), // reset by the server: closed
            }
        };
        self.stream().set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        result.map(|()| got.clone()).map_err(|()| got)
    }

    /// Closes both directions.
    pub fn shutdown(&self) {
        let _ = self.stream().shutdown(Shutdown::Both);
    }
}

/// A small deterministic generator (SplitMix64), so that every test's input is seeded.
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `n` bytes from `[a-z0-9]`.
    pub fn alnum(&mut self, n: usize) -> Vec<u8> {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| CHARS[self.below(CHARS.len() as u64) as usize]).collect()
    }
}
