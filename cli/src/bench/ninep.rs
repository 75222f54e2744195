//! `cairn bench 9p`: PROSE's 9P experiment (papers/003) and a file read against diod.
//!
//! Part 1, latency: `cairn 9p serve --synthetic` runs as a child process pinned to the first
//! CPU; the client runs on a one-core cairn runtime pinned to the second. Through each
//! transport (shared memory polling, shared memory blocking, Unix socket, TCP) it opens
//! `dev/null` write-only and writes a payload of S bytes (S = 1, 64, 1 KiB, 8 KiB, 64 KiB)
//! 10,000 times, one write outstanding at a time, after a warm-up; the figure is the mean
//! microseconds per write.
//!
//! On shared memory the payload lies in the channel's payload region, so a write passes it by
//! reference: the whole region is filled with a pattern once, before timing, and each write
//! claims S bytes of a fresh run in place ([`IoBuf::claim_tailroom`], no copy) with the
//! 23-byte `Twrite` header written into the run's headroom (a run's header may land on bytes of
//! the pattern another run covered; `dev/null` reads none of them). This is an application
//! that produces its data in the shared region, as PROSE's zero-copy path intends. For
//! comparison an extra row writes with [`Client::write`], which copies the payload once into
//! the region. On the sockets the payload is one buffer, reused by reference for every write
//! (the kernel's socket copy is the only one).
//!
//! Part 2, throughput: a file of 256 MiB with deterministic content is read from start to end
//! through `cairn 9p serve --export` and through diod (`diod -f -n -l ... -e DIR`), both over
//! TCP in 9P2000.L, both pinned to the first CPU, with the same client (cairn's, on the second
//! CPU, eight reads in flight, `msize` 1 MiB offered). Every byte is counted and summed, and
//! both are checked against the file's.

use std::future::Future;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdTcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use cairn_9p::client::{Client, ClientConfig, Fid};
use cairn_9p::codec::{Dialect, TWRITE_HEADER_LEN};
use cairn_9p::errno::Errno;
use cairn_fileserver::transport::{connect, ClientTransport, ListenSpec, ShmMode};
use cairn_hosted::affinity;
use cairn_rt::event::{sleep_ns, spawn_local, EventManager};
use cairn_rt::iobuf::SharedIoBuf;

use super::Report;

/// diod, from the README's set-up.
const DIOD: &str = "/usr/sbin/diod";
/// The payload sizes of PROSE's experiment.
const SIZES: [usize; 5] = [1, 64, 1024, 8192, 65536];
/// `msize` offered everywhere: 1 MiB of payload plus the I/O header.
const MSIZE: u32 = (1 << 20) + 24;
/// `O_WRONLY` for `Tlopen`.
const O_WRONLY: u32 = 1;

/// A transport of part 1.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path9 {
    ShmPoll,
    ShmBlock,
    Unix,
    Tcp,
}

impl Path9 {
    fn label(self) -> &'static str {
        match self {
            Path9::ShmPoll => "shm (polling)",
            Path9::ShmBlock => "shm (blocking)",
            Path9::Unix => "unix socket",
            Path9::Tcp => "tcp loopback",
        }
    }
}

fn errno_text(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e as i32).to_string()
}

fn client_config() -> ClientConfig {
    ClientConfig {
        msize: MSIZE,
        dialect: Dialect::P2000L,
        uname: "root".into(),
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        n_uname: unsafe { libc::getuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getgid() },
        ..ClientConfig::default()
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir, String> {
        let dir =
            std::env::temp_dir().join(format!("cairn-bench-9p-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server child process, killed (and reaped) on drop.
struct Server {
    child: Child,
    what: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command whose process is pinned to `cpu` from its start.
fn pinned(program: &Path, cpu: usize) -> Command {
    let mut cmd = Command::new(program);
    // SAFETY: the hook runs in the child between fork and exec and makes one system call on
    // memory of its own stack; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Starts `cairn 9p serve ARGS` on `cpu` and waits for its "serving" line.
fn start_cairn(cpu: usize, args: &[&str], what: &str) -> Result<Server, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the cairn binary: {e}"))?;
    let mut child = pinned(&exe, cpu)
        .args(["9p", "serve"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let server = Server { child, what: what.to_string() };
    let (tx, rx) = mpsc::channel();
    // Reads the server's stderr: the ready line, then everything else (so the pipe never fills),
    // until the server exits.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("cairn 9p: serving") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(()));
                }
            } else if tx.is_some() {
                seen.push(line);
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(seen.join("; ")));
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => Ok(server),
        Ok(Err(said)) => Err(format!("the {what} server exited before serving: {said}")),
        Err(_) => Err(format!("the {what} server did not start serving within 20 s")),
    }
}

/// Waits until a unix: or shm: server's socket exists: `cairn 9p serve` says it is serving
/// before its core has bound such a socket (only TCP listeners are bound before the line).
fn wait_for_socket(spec: &ListenSpec) -> Result<(), String> {
    let (ListenSpec::Unix(path) | ListenSpec::Shm(path)) = spec else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(format!("{} did not appear within 20 s", path.display()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Starts diod on `cpu` exporting `dir` at `addr`, and waits until it listens.
fn start_diod(cpu: usize, addr: SocketAddr, dir: &Path) -> Result<Server, String> {
    let child = pinned(Path::new(DIOD), cpu)
        .args(["-f", "-n", "-l", &addr.to_string(), "-e"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {DIOD} (see the README's set-up): {e}"))?;
    let mut server = Server { child, what: "diod".into() };
    let deadline = Instant::now() + Duration::from_secs(20);
    while StdTcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("diod exited before listening: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("diod did not listen on {addr} within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// A free loopback TCP address (bound and let go).
fn free_addr() -> Result<SocketAddr, String> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// Runs `make()`'s future on a fresh one-core cairn runtime pinned to `cpu`, and returns its
/// output, or an error after `limit`.
fn on_cpu<F, Fut, T>(cpu: usize, limit: Duration, make: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>> + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let job = Mutex::new(Some((make, tx)));
    // The runtime's core thread takes its CPU from the affinity of the thread that starts it.
    let starter = std::thread::spawn(move || {
        let _ = affinity::pin_current_thread(cpu);
        cairn_hosted::start(1, move |_| {
            let Some((make, tx)) = job.lock().expect("job").take() else { return };
            spawn_local(async move {
                let out = make().await;
                let _ = tx.send(out);
                EventManager::current().runtime().shutdown();
            });
        })
    });
    let handle = starter
        .join()
        .map_err(|_| "the client's runtime did not start".to_string())?
        .map_err(|e| format!("cannot start the client's core: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(out) => {
            handle.join().map_err(|_| "the client's core panicked".to_string())?;
            out
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            Err("the client's core stopped (panicked?)".into())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            handle.shutdown();
            let _ = handle.join();
            Err(format!("the client did not finish within {limit:?}"))
        }
    }
}

/// What one transport's pass of part 1 measured.
struct WriteFigures {
    /// Mean µs per write, one per size.
    us: Vec<f64>,
    /// Mean µs per write with `Client::write` (one copy into the region), shm polling only.
    copy_us: Vec<f64>,
    /// Writes whose shm buffer could not be had at once (waited for the region).
    region_waits: u64,
    /// Event-loop work per timed 1-byte write: (client, server) counters.
    per_write: Option<(Work, Work)>,
}

/// Event-loop counters per write.
#[derive(Clone, Copy, Default)]
struct Work {
    /// Events dispatched (tasks polled, completions, timers).
    events: f64,
    /// Turns that ran idle handlers (polling turns).
    polls: f64,
    /// Tasks spawned.
    tasks: f64,
}

impl Work {
    fn between(a: &[u64; 3], b: &[u64; 3], n: usize) -> Work {
        let per = |i: usize| b[i].wrapping_sub(a[i]) as f64 / n as f64;
        Work { events: per(0), polls: per(1), tasks: per(2) }
    }
}

/// The client core's (events, polls, tasks spawned).
fn client_counters() -> [u64; 3] {
    let c = EventManager::current().counters();
    [c.events, c.polls, c.tasks_spawned]
}

/// The server's core 0 (events, polls, tasks spawned), read from the synthetic `stats/core0`.
async fn server_counters(client: &Client<ClientTransport>, root: &Fid) -> Option<[u64; 3]> {
    let file = client.walk(root, &["stats", "core0"]).await.ok()?;
    client.open(&file, 0).await.ok()?;
    let text = client.read(&file, 0, 4096).await.ok()?;
    let _ = client.clunk(file).await;
    let text = std::str::from_utf8(&text).ok()?.to_string();
    let get =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok());
    Some([get("events ")?, get("polls ")?, get("tasks_spawned ")?])
}

/// A buffer of `size` bytes for one write: in the shm payload region when there is one.
async fn payload(
    transport: &ClientTransport,
    template: &SharedIoBuf,
    size: usize,
    waits: &mut u64,
) -> Result<SharedIoBuf, String> {
    let ClientTransport::Shm(shm) = transport else { return Ok(template.clone()) };
    let mut tries = 0u32;
    loop {
        if let Some(mut buf) = shm.alloc_payload(TWRITE_HEADER_LEN, size) {
            // The region was filled once before timing; the bytes are claimed in place.
            buf.claim_tailroom(size).map_err(|_| "a payload run too short".to_string())?;
            return Ok(buf.freeze());
        }
        *waits += 1;
        tries += 1;
        if tries > 100_000 {
            return Err("the shm payload region stayed full".into());
        }
        sleep_ns(1_000).await;
    }
}

/// Fills the client's whole tx payload region with a pattern once.
fn fill_region(transport: &ClientTransport) -> usize {
    let ClientTransport::Shm(shm) = transport else { return 0 };
    let mut held = Vec::new();
    let mut filled = 0;
    for piece in [1 << 20, 64 << 10, 16 << 10] {
        while let Some(mut buf) = shm.alloc_payload(0, piece) {
            let room = buf.tailroom_mut();
            for (i, b) in room.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            filled += room.len();
            held.push(buf);
        }
    }
    drop(held);
    filled
}

/// Part 1 on one transport: for each size, a warm-up of a tenth as many writes, then `repeats`
/// rounds of `writes` timed writes; the fastest round's mean µs per write.
async fn write_pass(
    spec: ListenSpec,
    mode: ShmMode,
    writes: usize,
    repeats: usize,
    with_copy_row: bool,
) -> Result<WriteFigures, String> {
    let transport = Rc::new(
        connect(&spec, mode, MSIZE).await.map_err(|e| format!("cannot connect to {spec}: {e}"))?,
    );
    let client = Client::connect(transport.clone(), client_config())
        .await
        .map_err(|e| format!("version with {spec}: {}", errno_text(e)))?;
    if let Some(source) = ClientTransport::buffer_source(&transport) {
        client.set_buffer_source(source);
    }
    let root =
        client.attach("cairn").await.map_err(|e| format!("attach cairn: {}", errno_text(e)))?;
    let null = client
        .walk(&root, &["dev", "null"])
        .await
        .map_err(|e| format!("walk dev/null: {}", errno_text(e)))?;
    client.open(&null, O_WRONLY).await.map_err(|e| format!("open dev/null: {}", errno_text(e)))?;
    if client.msize() < SIZES[SIZES.len() - 1] as u32 + 24 {
        return Err(format!("{spec} negotiated msize {}, too small for 64 KiB", client.msize()));
    }
    fill_region(&transport);
    let mut figures =
        WriteFigures { us: Vec::new(), copy_us: Vec::new(), region_waits: 0, per_write: None };
    let warm = (writes / 10).max(50);
    for &size in &SIZES {
        let bytes: Vec<u8> =
            (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect();
        let template = SharedIoBuf::from_vec(bytes.clone());
        let mut best = f64::INFINITY;
        let mut before = None;
        for round in 0..=repeats {
            let n = if round == 0 { warm } else { writes };
            if round == 1 && size == SIZES[0] {
                before = Some((client_counters(), server_counters(&client, &root).await));
            }
            let start = Instant::now();
            for _ in 0..n {
                let buf = payload(&transport, &template, size, &mut figures.region_waits).await?;
                let wrote = client
                    .write_buf(&null, 0, buf)
                    .await
                    .map_err(|e| format!("write {size} B to dev/null: {}", errno_text(e)))?;
                if wrote as usize != size {
                    return Err(format!("dev/null took {wrote} of {size} bytes"));
                }
            }
            if round > 0 {
                best = best.min(start.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
        }
        if let Some((client_before, server_before)) = before {
            let timed = writes * repeats;
            let client_work = Work::between(&client_before, &client_counters(), timed);
            let server_after = server_counters(&client, &root).await;
            let server_work = match (server_before, server_after) {
                (Some(a), Some(b)) => Work::between(&a, &b, timed),
                _ => Work { events: f64::NAN, polls: f64::NAN, tasks: f64::NAN },
            };
            figures.per_write = Some((client_work, server_work));
        }
        figures.us.push(best);
        if with_copy_row {
            let mut best = f64::INFINITY;
            for round in 0..=repeats {
                let n = if round == 0 { warm } else { writes };
                let start = Instant::now();
                for _ in 0..n {
                    let wrote = client
                        .write(&null, 0, &bytes)
                        .await
                        .map_err(|e| format!("write {size} B to dev/null: {}", errno_text(e)))?;
                    if wrote as usize != size {
                        return Err(format!("dev/null took {wrote} of {size} bytes"));
                    }
                }
                if round > 0 {
                    best = best.min(start.elapsed().as_secs_f64() * 1e6 / n as f64);
                }
            }
            figures.copy_us.push(best);
        }
    }
    client.clunk(null).await.map_err(|e| format!("clunk: {}", errno_text(e)))?;
    drop(root);
    Ok(figures)
}

/// A cheap checksum of a byte stream: the wrapping sum of its little-endian 64-bit words (a
/// short last word zero-padded), and its length. Independent of how the stream is cut.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Sum {
    sum: u64,
    len: u64,
    carry: [u8; 8],
    carry_len: usize,
}

impl Sum {
    fn feed(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carry_len > 0 {
            let take = (8 - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len < 8 {
                return;
            }
            self.sum = self.sum.wrapping_add(u64::from_le_bytes(self.carry));
            self.carry_len = 0;
        }
        let words = data.chunks_exact(8);
        let rest = words.remainder();
        // Four lanes, so the additions pipeline.
        let mut lanes = [0u64; 4];
        for (i, w) in words.enumerate() {
            let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            lanes[i & 3] = lanes[i & 3].wrapping_add(v);
        }
        for lane in lanes {
            self.sum = self.sum.wrapping_add(lane);
        }
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    /// (sum, length), the partial last word included.
    fn finish(&self) -> (u64, u64) {
        let mut last = [0u8; 8];
        last[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
        (self.sum.wrapping_add(u64::from_le_bytes(last)), self.len)
    }
}

/// Word `i` of the test file.
fn file_word(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 27)
}

/// Writes the test file of `len` bytes (a multiple of 8) and returns its checksum.
fn make_file(path: &Path, len: u64) -> Result<(u64, u64), String> {
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?,
    );
    let mut sum = Sum::default();
    let mut piece = vec![0u8; 1 << 20];
    let mut word = 0u64;
    let mut left = len;
    while left > 0 {
        let n = (piece.len() as u64).min(left) as usize;
        for w in piece[..n].chunks_exact_mut(8) {
            w.copy_from_slice(&file_word(word).to_le_bytes());
            word += 1;
        }
        sum.feed(&piece[..n]);
        file.write_all(&piece[..n]).map_err(|e| format!("write {}: {e}", path.display()))?;
        left -= n as u64;
    }
    file.flush().map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(sum.finish())
}

/// What one read of the file measured.
struct ReadFigures {
    mbps: f64,
    msize: u32,
    sum: (u64, u64),
}

/// Part 2: reads `name` under the export at `addr` (attach name `aname`) `repeats` times;
/// keeps the fastest.
async fn read_pass(
    addr: SocketAddr,
    aname: String,
    name: String,
    repeats: usize,
) -> Result<ReadFigures, String> {
    let spec = ListenSpec::Tcp(addr);
    let transport = Rc::new(
        connect(&spec, ShmMode::Blocking, MSIZE)
            .await
            .map_err(|e| format!("cannot connect to {spec}: {e}"))?,
    );
    let client = Client::connect(transport, client_config())
        .await
        .map_err(|e| format!("version with {spec}: {}", errno_text(e)))?;
    let root =
        client.attach(&aname).await.map_err(|e| format!("attach {aname}: {}", errno_text(e)))?;
    let mut best = ReadFigures { mbps: 0.0, msize: client.msize(), sum: (0, 0) };
    for _ in 0..repeats {
        let file = client
            .walk(&root, &[name.as_str()])
            .await
            .map_err(|e| format!("walk {name}: {}", errno_text(e)))?;
        let start = Instant::now();
        client.open(&file, 0).await.map_err(|e| format!("open {name}: {}", errno_text(e)))?;
        let mut sum = Sum::default();
        let total = client
            .read_to_sink(&file, 0, &mut |piece| {
                sum.feed(&piece);
                Ok(())
            })
            .await
            .map_err(|e| format!("read {name}: {}", errno_text(e)))?;
        let secs = start.elapsed().as_secs_f64();
        client.clunk(file).await.map_err(|e| format!("clunk: {}", errno_text(e)))?;
        let (s, len) = sum.finish();
        if len != total {
            return Err(format!("read_to_sink said {total} bytes but handed over {len}"));
        }
        let mbps = len as f64 / secs / 1e6;
        if mbps > best.mbps {
            best = ReadFigures { mbps, msize: client.msize(), sum: (s, len) };
        }
    }
    Ok(best)
}

/// The CPUs for the servers and for the client.
fn cpus() -> Result<(usize, usize), String> {
    let cpus = affinity::allowed_cpus().map_err(|e| format!("cannot read the CPU set: {e}"))?;
    match cpus.as_slice() {
        [] => Err("no CPU in the affinity set".into()),
        [only] => Ok((*only, *only)),
        [a, b, ..] => Ok((*a, *b)),
    }
}

fn fmt_size(s: usize) -> String {
    match s {
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Report, String> {
    let writes = if quick { 500 } else { 10_000 };
    let file_len: u64 = if quick { 16 << 20 } else { 256 << 20 };
    let repeats = if quick { 1 } else { 3 };
    let (server_cpu, client_cpu) = cpus()?;
    let dir = TempDir::new("run")?;
    let limit = Duration::from_secs(300);

    // Part 1: writes to dev/null through each transport, one server per transport at a time.
    let mut rows: Vec<(Path9, WriteFigures)> = Vec::new();
    for path in [Path9::ShmPoll, Path9::ShmBlock, Path9::Unix, Path9::Tcp] {
        let (listen, mode) = match path {
            Path9::ShmPoll => {
                (format!("shm:{}", dir.0.join("shm-poll.sock").display()), ShmMode::Polling)
            }
            Path9::ShmBlock => {
                (format!("shm:{}", dir.0.join("shm-block.sock").display()), ShmMode::Blocking)
            }
            Path9::Unix => {
                (format!("unix:{}", dir.0.join("unix.sock").display()), ShmMode::Blocking)
            }
            Path9::Tcp => (format!("tcp:{}", free_addr()?), ShmMode::Blocking),
        };
        super::progress(&format!(
            "{}: {writes} writes of each size to dev/null (server on CPU {server_cpu}, client on CPU {client_cpu})",
            path.label()
        ));
        let server = start_cairn(server_cpu, &["--listen", &listen, "--synthetic"], path.label())?;
        let spec = cairn_fileserver::transport::parse_listen(&listen)?;
        wait_for_socket(&spec)?;
        let copy_row = path == Path9::ShmPoll;
        let figures =
            on_cpu(client_cpu, limit, move || write_pass(spec, mode, writes, repeats, copy_row))
                .map_err(|e| format!("{}: {e}", server.what))?;
        drop(server);
        rows.push((path, figures));
    }

    // Part 2: the same file read through cairn's export and through diod's.
    let export = TempDir::new("export")?;
    let name = "big.bin";
    super::progress(&format!("making a {} MiB file", file_len >> 20));
    let expected = make_file(&export.0.join(name), file_len)?;
    let aname = export.0.to_str().ok_or("the temporary directory is not UTF-8")?.to_string();
    let mut read = Vec::new();
    for peer in ["cairn", "diod"] {
        let addr = free_addr()?;
        super::progress(&format!("reading it through {peer}'s export over tcp, best of {repeats}"));
        let server = if peer == "cairn" {
            let listen = format!("tcp:{addr}");
            start_cairn(
                server_cpu,
                &["--listen", &listen, "--export", &aname, "--read-only"],
                "export",
            )?
        } else {
            start_diod(server_cpu, addr, &export.0)?
        };
        let (aname, name) = (aname.clone(), name.to_string());
        let figures = on_cpu(client_cpu, limit, move || read_pass(addr, aname, name, repeats))
            .map_err(|e| format!("{}: {e}", server.what))?;
        drop(server);
        if figures.sum != expected {
            return Err(format!(
                "{peer}: read {} bytes with sum {:#x}; the file has {} bytes with sum {:#x}",
                figures.sum.1, figures.sum.0, expected.1, expected.0
            ));
        }
        read.push(figures);
    }
    drop(export);
    drop(dir);

    // The report.
    let us = |p: Path9, i: usize| rows.iter().find(|r| r.0 == p).map_or(f64::NAN, |r| r.1.us[i]);
    let last = SIZES.len() - 1;
    let (shm_1b, tcp_1b) = (us(Path9::ShmPoll, 0), us(Path9::Tcp, 0));
    let ratio = tcp_1b / shm_1b;
    let shm_64k_over_1b = us(Path9::ShmPoll, last) / shm_1b;
    let copy = &rows[0].1.copy_us;
    let waits: u64 = rows.iter().map(|r| r.1.region_waits).sum();
    let (cairn_read, diod_read) = (&read[0], &read[1]);

    let mut table = format!(
        "9p: mean microseconds per write to dev/null, one outstanding; best of {repeats} means of {writes} writes, after a warm-up\n\
         (server `cairn 9p serve --synthetic` on CPU {server_cpu}, client on CPU {client_cpu}, 9P2000.L)\n{:<34}",
        "transport"
    );
    for s in SIZES {
        table.push_str(&format!("{:>10}", fmt_size(s)));
    }
    table.push('\n');
    for (path, f) in &rows {
        let label = match path {
            Path9::ShmPoll | Path9::ShmBlock => format!("{} in place", path.label()),
            _ => path.label().to_string(),
        };
        table.push_str(&format!("{label:<34}"));
        for v in &f.us {
            table.push_str(&format!("{v:>10.2}"));
        }
        table.push('\n');
    }
    table.push_str(&format!("{:<34}", "shm (polling) Client::write, 1 copy"));
    for v in copy {
        table.push_str(&format!("{v:>10.2}"));
    }
    table.push('\n');
    table.push_str(
        "event-loop work per 1 B write (client core | server core): events dispatched, polling turns, tasks spawned\n",
    );
    for (path, f) in &rows {
        if let Some((c, srv)) = f.per_write {
            table.push_str(&format!(
                "  {:<32}client {:>5.1} ev {:>6.1} polls {:>4.1} tasks | server {:>5.1} ev {:>6.1} polls {:>4.1} tasks\n",
                path.label(), c.events, c.polls, c.tasks, srv.events, srv.polls, srv.tasks
            ));
        }
    }
    if waits > 0 {
        table.push_str(&format!("(shm writes that waited for payload space: {waits})\n"));
    }
    table.push_str(&format!(
        "ratio tcp/shm at 1 B: {ratio:.2} (goal >= 10: {})\n\
         shm 64 KiB over 1 B: {shm_64k_over_1b:.2} (goal <= 1.5: {})\n\
         read of a {} MiB file over tcp, 8 reads in flight, best of {repeats} (MB = 10^6 bytes):\n\
         {:<34}{:>10.0} MB/s  (msize {})\n{:<34}{:>10.0} MB/s  (msize {})\n\
         cairn over diod: {:.2} (goal >= 1: {}); every byte counted and summed (sum {:#018x})\n",
        if ratio >= 10.0 { "met" } else { "missed" },
        if shm_64k_over_1b <= 1.5 { "met" } else { "missed" },
        file_len >> 20,
        "cairn 9p serve --export",
        cairn_read.mbps,
        cairn_read.msize,
        "diod",
        diod_read.mbps,
        diod_read.msize,
        cairn_read.mbps / diod_read.mbps,
        if cairn_read.mbps >= diod_read.mbps { "met" } else { "missed" },
        expected.0,
    ));

    let mut fields = vec![
        ("shm_1b_us", shm_1b),
        ("shm_block_1b_us", us(Path9::ShmBlock, 0)),
        ("unix_1b_us", us(Path9::Unix, 0)),
        ("tcp_1b_us", tcp_1b),
        ("shm_64k_us", us(Path9::ShmPoll, last)),
        ("shm_block_64k_us", us(Path9::ShmBlock, last)),
        ("unix_64k_us", us(Path9::Unix, last)),
        ("tcp_64k_us", us(Path9::Tcp, last)),
        ("shm_copy_64k_us", copy.get(last).copied().unwrap_or(f64::NAN)),
        ("ratio", ratio),
        ("shm_64k_over_1b", shm_64k_over_1b),
        ("read_mbps", cairn_read.mbps),
        ("diod_read_mbps", diod_read.mbps),
    ];
    fields.push(("read_over_diod", cairn_read.mbps / diod_read.mbps));
    Ok(Report {
        table,
        fields,
        peer: "writes: tcp vs shm polling transports (also shm blocking, unix); reads: diod (9P2000.L over tcp)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_does_not_depend_on_how_the_stream_is_cut() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut whole = Sum::default();
        whole.feed(&data);
        for cut in [1, 3, 7, 8, 9, 64, 999] {
            let mut pieces = Sum::default();
            for piece in data.chunks(cut) {
                pieces.feed(piece);
            }
            assert_eq!(pieces.finish(), whole.finish(), "cut {cut}");
        }
        assert_eq!(whole.finish().1, 1000);
        let mut other = data.clone();
        other[500] ^= 1;
        let mut changed = Sum::default();
        changed.feed(&other);
        assert_ne!(changed.finish(), whole.finish());
    }

    #[test]
    fn the_test_file_has_its_length_and_sum() {
        let dir = TempDir::new("unit").unwrap();
        let path = dir.0.join("f");
        let (sum, len) = make_file(&path, 3 << 20).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        let mut check = Sum::default();
        check.feed(&bytes);
        assert_eq!(check.finish(), (sum, len));
        assert_eq!(&bytes[8..16], &file_word(1).to_le_bytes());
    }
}
