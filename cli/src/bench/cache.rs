//! `cairn bench cache`: `cairn cache` against memcached under the same third-party load.
//!
//! Each server runs with one worker thread, pinned to one CPU; the load generator, memcaslap
//! (libmemcached-tools), runs pinned to another CPU with one thread and [`CONNECTIONS`]
//! connections, enough to keep one server core busy (the table shows the server's CPU use in
//! the window, which should be close to 100%). The workload is shaped like Facebook's ETC pool
//! (Atikoglu et al., SIGMETRICS 2012): keys of 20 to 70 bytes, values of 1 to 1024 bytes, 90%
//! gets. Two variants:
//!
//! - unpipelined: one key per get, each connection waits for each reply;
//! - multi-get: memcaslap's `--division=10`, ten keys per get.
//!
//! Throughput is counted from the server's own `stats` (`cmd_get` + `cmd_set`, so keys for a
//! multi-get) over a window that starts after a warm-up and ends before memcaslap stops, since
//! memcaslap's own totals include its warm-up (it presets the keys it will get). Latencies are
//! memcaslap's, over its whole run; its histogram has power-of-two buckets, so the percentiles
//! are the upper bounds of the buckets they fall in.
//!
//! The servers take turns: memcached, then cairn, variant by variant, round by round; each
//! figure is the best round. `ratio` is cairn's unpipelined requests per second over
//! memcached's.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Report;

/// memcaslap's connections (its "concurrency"), all on one thread.
const CONNECTIONS: u32 = 32;
/// Keys per multi-get in the multi-get variant.
const MULTI_GET_KEYS: u32 = 10;
/// The workload, in memcaslap's configuration format: key and value length ranges with their
/// proportions, then the command mix (0 = set, 1 = get).
const ETC_CONFIG: &str = "\
# Facebook ETC-like: keys 20-70 bytes, values 1-1024 bytes, 90% get
key
20 70 1
value
1 1024 1
cmd
0 0.1
1 0.9
";

/// How long to wait for a server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The timing of one measurement.
struct Timing {
    warm_up: Duration,
    window: Duration,
    rounds: usize,
}

/// A child process killed on drop.
struct Proc {
    child: Child,
    what: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A server under load.
struct Server {
    proc: Proc,
    port: u16,
}

/// Makes `cmd` run pinned to `cpu` (set in the child between fork and exec).
fn pin(cmd: &mut Command, cpu: usize) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // sched_setaffinity on a stack-allocated CPU set: no allocation, no locks, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || cairn_hosted::affinity::pin_current_thread(cpu));
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn find_program(name: &str, package: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found: install {package} (scripts/test does)"))
}

/// Waits until `port` accepts a connection, failing early if the process exits.
fn wait_accepting(proc: &mut Proc, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!("{} exited with {status} before listening", proc.what));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} does not accept on port {port}", proc.what));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// memcached with one worker thread on `cpu`.
fn start_memcached(cpu: usize) -> Result<Server, String> {
    let exe = find_program("memcached", "the Debian package memcached")?;
    let port = free_port()?;
    let mut cmd = Command::new(exe);
    cmd.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0", "-t", "1", "-c", "4096"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["-u", "root"]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    pin(&mut cmd, cpu);
    let child = cmd.spawn().map_err(|e| format!("cannot start memcached: {e}"))?;
    let mut proc = Proc { child, what: "memcached".into() };
    wait_accepting(&mut proc, port)?;
    Ok(Server { proc, port })
}

/// `cairn cache` with one thread on `cpu`; ready once it prints a line containing "ready" on
/// stderr and accepts connections.
fn start_cairn(cpu: usize) -> Result<Server, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the cairn binary: {e}"))?;
    let port = free_port()?;
    let mut cmd = Command::new(exe);
    cmd.args(["cache", "-p", &port.to_string(), "-l", "127.0.0.1", "--threads", "1"]);
    cmd.args(["-c", "4096"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    pin(&mut cmd, cpu);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start cairn cache: {e}"))?;
    let stderr = child.stderr.take();
    let mut proc = Proc { child, what: "cairn cache".into() };
    // Read stderr on a thread (to the end, so that the server never blocks on a full pipe);
    // the first line containing "ready" is reported.
    let (tx, rx) = mpsc::channel();
    if let Some(stderr) = stderr {
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("ready") {
                    sent = tx.send(()).is_ok();
                }
            }
        });
    }
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if rx.try_recv().is_ok() {
            break;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!(
                "cairn cache is not available: `cairn cache` exited ({status}) without saying \
                 \"ready\""
            ));
        }
        if Instant::now() > deadline {
            return Err("cairn cache is not available: no \"ready\" on stderr".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_accepting(&mut proc, port)?;
    Ok(Server { proc, port })
}

/// `cmd_get + cmd_set` from the server's `stats`.
fn requests_served(port: u16) -> Result<u64, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("stats: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"stats\r\n").map_err(|e| format!("stats: {e}"))?;
    let mut text = String::new();
    let mut buf = [0u8; 16 * 1024];
    while !text.ends_with("END\r\n") {
        let n = s.read(&mut buf).map_err(|e| format!("stats: {e}"))?;
        if n == 0 {
            return Err("stats: connection closed".into());
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let stat = |name: &str| -> Result<u64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix("STAT ")?.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("stats has no {name}"))
    };
    Ok(stat("cmd_get")? + stat("cmd_set")?)
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses): state is field 3; utime and
    // stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|r| r.1) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) if hz > 0.0 => (u + s) / hz,
        _ => f64::NAN,
    }
}

/// What one measurement found.
#[derive(Clone, Copy)]
struct Measured {
    /// Requests (keys for a multi-get) per second, from the server's stats, in the window.
    per_sec: f64,
    /// The server's CPU use in the window (1.0 = one core).
    server_cpu: f64,
    /// memcaslap's mean latency, µs (NaN when it gives none, as for multi-get).
    avg_us: f64,
    /// Upper bounds of the power-of-two buckets holding the 50th and 99th percentiles, µs.
    p50_us: f64,
    p99_us: f64,
}

/// Mean latency and p50/p99 bucket bounds from memcaslap's "Total Statistics" block.
fn latencies(out: &str) -> (f64, f64, f64) {
    let Some(block) = out.split("Total Statistics").nth(1) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let avg = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("Avg:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    // "Log2 Dist:" rows "  K:  c0 c1 c2 c3": c_i events took [2^(K+i-1), 2^(K+i)) µs.
    let mut buckets: Vec<(u32, u64)> = Vec::new();
    for line in block.lines().skip_while(|l| !l.contains("Log2 Dist")).skip(1) {
        let Some((row, counts)) = line.split_once(':') else { break };
        let Ok(row) = row.trim().parse::<u32>() else { break };
        for (i, c) in counts.split_whitespace().enumerate() {
            if let Ok(c) = c.parse::<u64>() {
                buckets.push((row + i as u32, c));
            }
        }
    }
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    let percentile = |p: f64| -> f64 {
        let mut seen = 0;
        for &(k, c) in &buckets {
            seen += c;
            if total > 0 && seen as f64 >= p * total as f64 {
                return 2f64.powi(k as i32);
            }
        }
        f64::NAN
    };
    (avg, percentile(0.50), percentile(0.99))
}

/// Runs memcaslap on `client_cpu` against `server` and measures the window.
fn measure(
    server: &Server,
    client_cpu: usize,
    config: &Path,
    multi_get: bool,
    timing: &Timing,
) -> Result<Measured, String> {
    let exe = find_program("memcaslap", "the Debian package libmemcached-tools")?;
    // memcaslap runs for warm-up + window + one more second, so the window ends before it does.
    let run_secs = (timing.warm_up + timing.window).as_secs() + 1;
    let mut cmd = Command::new(exe);
    cmd.arg(format!("--servers=127.0.0.1:{}", server.port))
        .arg(format!("--cfg_cmd={}", config.display()))
        .arg(format!("--time={run_secs}s"))
        .args(["--threads=1", &format!("--concurrency={CONNECTIONS}")])
        // A statistics period longer than the run: no periodic tables, only the final
        // latency summary (which memcaslap prints only when a period is given).
        .arg(format!("--stat_freq={}s", run_secs + 60));
    if multi_get {
        cmd.arg(format!("--division={MULTI_GET_KEYS}"));
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    pin(&mut cmd, client_cpu);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run memcaslap: {e}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut load = Proc { child, what: "memcaslap".into() };
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(mut s) = stdout {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = stderr {
            let _ = s.read_to_string(&mut out);
        }
        out
    });

    std::thread::sleep(timing.warm_up);
    if let Ok(Some(status)) = load.child.try_wait() {
        return Err(format!("memcaslap exited early ({status})"));
    }
    let pid = server.proc.child.id();
    let (r0, c0, t0) = (requests_served(server.port)?, cpu_seconds(pid), Instant::now());
    std::thread::sleep(timing.window);
    let (r1, c1, secs) = (requests_served(server.port)?, cpu_seconds(pid), t0.elapsed());
    let secs = secs.as_secs_f64();

    // Let memcaslap finish (bounded: it was told how long to run).
    let deadline = Instant::now() + Duration::from_secs(run_secs + 30);
    let status = loop {
        if let Ok(Some(status)) = load.child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            return Err("memcaslap did not stop".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("memcaslap failed ({status}):\n{out}"));
    }
    let (avg_us, p50_us, p99_us) = latencies(&out);
    Ok(Measured {
        per_sec: r1.saturating_sub(r0) as f64 / secs,
        server_cpu: (c1 - c0) / secs,
        avg_us,
        p50_us,
        p99_us,
    })
}

fn better(a: Option<Measured>, b: Measured) -> Measured {
    match a {
        Some(a) if a.per_sec >= b.per_sec => a,
        _ => b,
    }
}

/// Runs the benchmark; `quick` measures one 2-second window per server and variant.
pub fn run(quick: bool) -> Result<Report, String> {
    let timing = if quick {
        Timing { warm_up: Duration::from_millis(500), window: Duration::from_secs(2), rounds: 1 }
    } else {
        Timing { warm_up: Duration::from_secs(1), window: Duration::from_secs(8), rounds: 3 }
    };
    let cpus = cairn_hosted::affinity::allowed_cpus().map_err(|e| format!("affinity: {e}"))?;
    if cpus.len() < 2 {
        return Err(format!("cache needs two CPUs (server and load apart); allowed: {cpus:?}"));
    }
    let (server_cpu, client_cpu) = (cpus[0], cpus[1]);
    find_program("memcaslap", "the Debian package libmemcached-tools")?;

    let config = TempFile(
        std::env::temp_dir().join(format!("cairn-bench-cache-{}.cnf", std::process::id())),
    );
    std::fs::write(&config.0, ETC_CONFIG).map_err(|e| format!("write memcaslap config: {e}"))?;

    // best[variant][server]: variant 0 = unpipelined, 1 = multi-get; server 0 = memcached,
    // 1 = cairn's side.
    let mut best: [[Option<Measured>; 2]; 2] = [[None; 2]; 2];
    for round in 0..timing.rounds {
        for (multi_get, cells) in [false, true].into_iter().zip(best.iter_mut()) {
            for (side, cell) in cells.iter_mut().enumerate() {
                let name = if side == 0 { "memcached" } else { "cairn" };
                super::progress(&format!(
                    "round {}/{}: {name}, {}, {:?} window",
                    round + 1,
                    timing.rounds,
                    if multi_get { "multi-get" } else { "unpipelined" },
                    timing.window
                ));
                let server =
                    if side == 0 { start_memcached(server_cpu)? } else { start_cairn(server_cpu)? };
                let m = measure(&server, client_cpu, &config.0, multi_get, &timing)?;
                drop(server);
                *cell = Some(better(*cell, m));
            }
        }
    }
    let get = |v: usize, s: usize| best[v][s].expect("every cell measured");
    let (mc, cairn) = (get(0, 0), get(0, 1));
    let (mc_multi, cairn_multi) = (get(1, 0), get(1, 1));
    let ratio = cairn.per_sec / mc.per_sec;
    let multi_ratio = cairn_multi.per_sec / mc_multi.per_sec;

    let cairn_label = "cairn cache";
    let mut table = format!(
        "cache: memcaslap, ETC-like (keys 20-70 B, values 1-1024 B, 90% get), {CONNECTIONS} \
         connections on 1 thread on CPU {client_cpu}; server: 1 thread on CPU {server_cpu}; \
         {:?} windows after {:?} warm-up, best of {}\n\
         {:<25}{:<14}{:>14}{:>12}{:>10}{:>10}{:>10}\n",
        timing.window,
        timing.warm_up,
        timing.rounds,
        "variant",
        "server",
        "req/s",
        "server CPU",
        "avg us",
        "p50<=us",
        "p99<=us"
    );
    let row = |t: &mut String, variant: &str, server: &str, m: &Measured| {
        let f = |x: f64| if x.is_finite() { format!("{x:.0}") } else { "-".into() };
        let _ = writeln!(
            t,
            "{:<25}{:<14}{:>14.0}{:>11.0}%{:>10}{:>10}{:>10}",
            variant,
            server,
            m.per_sec,
            m.server_cpu * 100.0,
            f(m.avg_us),
            f(m.p50_us),
            f(m.p99_us)
        );
    };
    row(&mut table, "unpipelined", "memcached", &mc);
    row(&mut table, "unpipelined", cairn_label, &cairn);
    let multi = format!("multi-get x{MULTI_GET_KEYS} (keys/s)");
    row(&mut table, &multi, "memcached", &mc_multi);
    row(&mut table, &multi, cairn_label, &cairn_multi);
    let _ = writeln!(
        table,
        "ratio (cairn / memcached): unpipelined {ratio:.3}, multi-get {multi_ratio:.3}"
    );
    let peer = "memcached 1.6 (-t 1), driven by memcaslap".to_string();
    Ok(Report {
        table,
        fields: vec![
            ("cairn_rps", cairn.per_sec),
            ("memcached_rps", mc.per_sec),
            ("ratio", ratio),
            ("cairn_multiget_keys_per_s", cairn_multi.per_sec),
            ("memcached_multiget_keys_per_s", mc_multi.per_sec),
            ("multiget_ratio", multi_ratio),
            ("cairn_avg_us", cairn.avg_us),
            ("memcached_avg_us", mc.avg_us),
            ("cairn_p99_us_bound", cairn.p99_us),
            ("memcached_p99_us_bound", mc.p99_us),
            ("cairn_server_cpu", cairn.server_cpu),
            ("memcached_server_cpu", mc.server_cpu),
            ("window_s", timing.window.as_secs_f64()),
        ],
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_memcaslap_totals() {
        let out = "Get Statistics (10 events)\n   Avg:       1\n\
            Total Statistics (387440 events)\n   Min:        25\n   Max:      4058\n   \
            Avg:       330\n   Geo:    305.78\n   Std:    160.11\n   Log2 Dist:\n       \
            4:        0        2       85     3247\n       \
            8:   126778   225711    29855     1344\n      12:      418\n\n";
        let (avg, p50, p99) = latencies(out);
        assert_eq!(avg, 330.0);
        assert_eq!(p50, 512.0, "the 50th percentile is in [256, 512)");
        assert_eq!(p99, 1024.0, "the 99th percentile is in [512, 1024)");
        assert!(latencies("no totals").0.is_nan());
    }
}
