//! The harness shared by the `ninep_*` tests: a 9P server under test (`cairn 9p serve` or
//! diod, the independent 9P2000.L server from Debian) on a free loopback port, an exported
//! temporary directory, and guards that kill the server and delete the directory on drop, also
//! when a test fails. Only loopback is used.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `cairn` binary built with this package.
pub fn cairn_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn"))
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name says which test made it.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("cairn-9p-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory as a string.
    pub fn str(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which server a test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// `cairn 9p serve`.
    Cairn,
    /// diod from the Debian package: 9P2000.L only.
    Diod,
}

/// A running 9P server exporting one directory, killed on drop.
pub struct Server {
    child: Child,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
    /// The attach name that reaches the export.
    pub aname: String,
}

impl Server {
    /// Starts `peer` exporting `dir` over TCP on a free loopback port.
    pub fn start(peer: Peer, dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let dir_str = dir.to_str().expect("UTF-8 path");
        let mut command = match peer {
            Peer::Cairn => {
                let mut c = Command::new(cairn_path());
                c.args(["9p", "serve", "--listen", &format!("tcp:127.0.0.1:{port}")]);
                c.args(["--export", dir_str, "--threads", "1"]);
                c
            }
            Peer::Diod => {
                let mut c = Command::new("/usr/sbin/diod");
                // -f foreground, -n no authentication, -e the export; diod checks access
                // with the attaching uid, and the tests run as root.
                c.args(["-f", "-n", "-l", &format!("127.0.0.1:{port}"), "-e", dir_str]);
                c
            }
        };
        command.args(extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let child = command.spawn().unwrap_or_else(|e| panic!("start {peer:?}: {e}"));
        let mut server = Server { child, port, aname: dir_str.to_string() };
        server.wait_until_accepting(peer);
        server
    }

    fn wait_until_accepting(&mut self, peer: Peer) {
        if peer == Peer::Cairn {
            // cairn prints "ready" once every core listens.
            let stdout = self.child.stdout.take().expect("piped stdout");
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read cairn's first line");
            assert!(line.contains("ready"), "cairn 9p serve said {line:?}");
            return;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{peer:?} did not start listening");
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{peer:?} exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `HOST:PORT` for clients that take that form.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the server process still runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command with a time limit, returning its output; panics if it overstays. Its output
/// is drained while it runs, so a command that writes more than a pipe holds cannot stall.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran over {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}
