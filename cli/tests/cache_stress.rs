//! Stress tests of the cache appliance: many clients at once, malformed input, and the memory
//! limit. Each runs against the real memcached (`NAME::memcached`, proving the test) and against
//! `cairn cache` (`NAME::cairn`, ignored until it lands); see `cache_common`.
//!
//! Every load loop is bounded both in operations and in time.

mod cache_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use cache_common::{against_each_target, Conn, Rng, Server, Target};

against_each_target!(concurrent_clients_lose_nothing, bad_input_is_contained, memory_stays_bounded);

// --- concurrency ----------------------------------------------------------------------------

/// Client threads, each with its own connection.
const THREADS: usize = 32;
/// How long the clients run (at most).
const RUN_FOR: Duration = Duration::from_secs(3);
/// Operations per thread (at most).
const OPS_PER_THREAD: u64 = 20_000;
/// Shared keys of each kind.
const COUNTERS: usize = 8;
const CAS_COUNTERS: usize = 8;
const LISTS: usize = 4;
const BLOBS: usize = 16;
/// Appends per thread (at most), so a list stays far below the item size limit.
const APPENDS_PER_THREAD: u64 = 300;
/// A cas read-modify-write gives up after this many EXISTS in a row.
const CAS_RETRIES: u32 = 10_000;

/// 64-bit FNV-1a, the checksum of self-describing values.
fn fnv(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A self-describing value: `<fnv of body, 16 hex digits>:<body length>:<body>`.
fn blob(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.range(1, 100),
        1 | 2 => rng.range(100, 4_000),
        _ => rng.range(4_000, 64 * 1024),
    } as usize;
    let body = rng.alnum(len);
    let mut v = format!("{:016x}:{len}:", fnv(&body)).into_bytes();
    v.extend_from_slice(&body);
    v
}

/// Whether a value is an intact [`blob`] (not torn, not mixed with another).
fn blob_is_intact(v: &[u8]) -> bool {
    let s = match std::str::from_utf8(v) {
        Ok(s) => s,
        Err(_) => return false,
    };
    let mut parts = s.splitn(3, ':');
    let (Some(sum), Some(len), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    len.parse::<usize>().ok() == Some(body.len())
        && u64::from_str_radix(sum, 16).ok() == Some(fnv(body.as_bytes()))
}

/// An append record: `tid.seq.check;`.
fn record(tid: usize, seq: u64) -> String {
    format!("{tid}.{seq}.{};", (tid as u64 * 1_000_003 + seq) % 9973)
}

/// What the clients did, counted per key.
struct Tally {
    incrs: Vec<AtomicU64>,
    cas_stores: Vec<AtomicU64>,
    appends: Vec<AtomicU64>,
    blob_reads: AtomicU64,
    blob_writes: AtomicU64,
    cas_conflicts: AtomicU64,
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// One client thread: random incr / cas read-modify-write / append / set / (multi-)get on the
/// shared keys until the time or the operation budget runs out. Panics on any wrong reply.
fn client(port: u16, tid: usize, start: &Barrier, tally: &Tally) {
    let mut conn = Conn::connect(port);
    let mut rng = Rng::new(0x5eed_0000 + tid as u64);
    let mut appended = 0u64;
    start.wait();
    let deadline = Instant::now() + RUN_FOR;
    for _ in 0..OPS_PER_THREAD {
        if Instant::now() > deadline {
            break;
        }
        match rng.below(100) {
            0..=29 => {
                let i = rng.below(COUNTERS as u64) as usize;
                let reply = conn.cmd(&format!("incr c{i} 1"));
                assert!(reply.parse::<u64>().is_ok(), "incr c{i}: {reply:?}");
                tally.incrs[i].fetch_add(1, Ordering::Relaxed);
            }
            30..=44 => {
                let i = rng.below(CAS_COUNTERS as u64) as usize;
                let key = format!("r{i}");
                let mut conflicts = 0;
                loop {
                    let items = conn.retrieve(&format!("gets {key}"));
                    assert_eq!(items.len(), 1, "gets {key}");
                    let (_, _, value, cas) = &items[0];
                    let n: u64 = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or_else(|| panic!("{key} holds {value:?}"));
                    let next = (n + 1).to_string();
                    let cas = cas.expect("gets returns a cas");
                    let mut req = format!("cas {key} 0 0 {} {cas}\r\n", next.len()).into_bytes();
                    req.extend_from_slice(next.as_bytes());
                    req.extend_from_slice(b"\r\n");
                    conn.send(&req);
                    match conn.line().as_str() {
                        "STORED" => {
                            tally.cas_stores[i].fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        "EXISTS" => {
                            conflicts += 1;
                            tally.cas_conflicts.fetch_add(1, Ordering::Relaxed);
                            assert!(conflicts < CAS_RETRIES, "{key}: cas never succeeds");
                        }
                        other => panic!("cas {key}: {other:?}"),
                    }
                }
            }
            45..=54 if appended < APPENDS_PER_THREAD => {
                let i = rng.below(LISTS as u64) as usize;
                let rec = record(tid, appended);
                appended += 1;
                let reply =
                    conn.cmd(&format!("append l{i} 0 0 {}\r\n{rec}", rec.len())).to_string();
                assert_eq!(reply, "STORED", "append l{i}");
                tally.appends[i].fetch_add(1, Ordering::Relaxed);
            }
            55..=79 => {
                let i = rng.below(BLOBS as u64);
                let v = blob(&mut rng);
                assert_eq!(conn.set(&format!("b{i}"), &v), "STORED");
                tally.blob_writes.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                let n = rng.range(1, 4);
                let keys: Vec<String> =
                    (0..n).map(|_| format!("b{}", rng.below(BLOBS as u64))).collect();
                let items = conn.retrieve(&format!("get {}", keys.join(" ")));
                assert_eq!(items.len(), keys.len(), "every blob key is always present");
                for (key, _, value, _) in &items {
                    assert!(blob_is_intact(value), "torn value under {key}: {} bytes", value.len());
                    tally.blob_reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// 32 clients hammer shared keys for 3 s: every incr is counted exactly (no lost update), the
/// cas-guarded read-modify-write counters equal their successful stores, every append lands
/// exactly once and in each client's order, no value is ever torn, and the server is alive after.
fn concurrent_clients_lose_nothing(target: Target) {
    let mut server = Server::start_with(target, &["-c", "1024"]);
    let mut setup = server.connect();
    let mut rng = Rng::new(7);
    for i in 0..COUNTERS {
        assert_eq!(setup.set(&format!("c{i}"), b"0"), "STORED");
    }
    for i in 0..CAS_COUNTERS {
        assert_eq!(setup.set(&format!("r{i}"), b"0"), "STORED");
    }
    for i in 0..LISTS {
        assert_eq!(setup.set(&format!("l{i}"), b""), "STORED");
    }
    for i in 0..BLOBS {
        assert_eq!(setup.set(&format!("b{i}"), &blob(&mut rng)), "STORED");
    }
    let tally = Tally {
        incrs: counters(COUNTERS),
        cas_stores: counters(CAS_COUNTERS),
        appends: counters(LISTS),
        blob_reads: AtomicU64::new(0),
        blob_writes: AtomicU64::new(0),
        cas_conflicts: AtomicU64::new(0),
    };
    let start = Barrier::new(THREADS);
    let t0 = Instant::now();
    thread::scope(|s| {
        for tid in 0..THREADS {
            let (start, tally, port) = (&start, &tally, server.port);
            s.spawn(move || client(port, tid, start, tally));
        }
    });
    let elapsed = t0.elapsed();

    let number = |conn: &mut Conn, key: &str| -> u64 {
        let v = conn.get(key).unwrap_or_else(|| panic!("{key} is gone"));
        String::from_utf8_lossy(&v).trim().parse().unwrap_or_else(|_| panic!("{key}: {v:?}"))
    };
    let mut total_incrs = 0;
    for i in 0..COUNTERS {
        let want = tally.incrs[i].load(Ordering::Relaxed);
        assert_eq!(number(&mut setup, &format!("c{i}")), want, "c{i}: lost incr");
        total_incrs += want;
    }
    let mut total_cas = 0;
    for i in 0..CAS_COUNTERS {
        let want = tally.cas_stores[i].load(Ordering::Relaxed);
        assert_eq!(number(&mut setup, &format!("r{i}")), want, "r{i}: lost cas update");
        total_cas += want;
    }
    let mut total_appends = 0;
    for i in 0..LISTS {
        let v = setup.get(&format!("l{i}")).expect("list present");
        let text = String::from_utf8(v).expect("ascii list");
        let mut last_seq: Vec<Option<u64>> = vec![None; THREADS];
        let mut n = 0;
        for rec in text.split_terminator(';') {
            let f: Vec<u64> = rec.split('.').map(|x| x.parse().expect("record field")).collect();
            assert_eq!(f.len(), 3, "torn record {rec:?} in l{i}");
            let (tid, seq) = (f[0] as usize, f[1]);
            assert_eq!(format!("{rec};"), record(tid, seq), "torn record in l{i}");
            assert!(last_seq[tid].is_none_or(|last| seq > last), "l{i}: {rec} out of order");
            last_seq[tid] = Some(seq);
            n += 1;
        }
        assert_eq!(n, tally.appends[i].load(Ordering::Relaxed), "l{i}: lost or doubled appends");
        total_appends += n;
    }
    for i in 0..BLOBS {
        let v = setup.get(&format!("b{i}")).expect("blob present");
        assert!(blob_is_intact(&v), "b{i} torn");
    }
    let (reads, writes) =
        (tally.blob_reads.load(Ordering::Relaxed), tally.blob_writes.load(Ordering::Relaxed));
    eprintln!(
        "{THREADS} clients for {elapsed:?}: {total_incrs} incr, {total_cas} cas stores ({} \
         conflicts), {total_appends} appends, {writes} blob sets, {reads} blob reads",
        tally.cas_conflicts.load(Ordering::Relaxed)
    );
    assert!(total_incrs > 0 && total_cas > 0 && total_appends > 0 && reads > 0 && writes > 0);
    server.assert_alive();
}

// --- bad input ------------------------------------------------------------------------------

/// What a malformed request may get.
#[derive(Debug)]
enum Outcome {
    /// The server closed the connection.
    Closed,
    /// These reply lines, and the connection stays usable.
    Lines(Vec<String>),
}

/// Sends `bytes` on a new connection and sees what comes back within `wait`: the connection
/// closed, or some complete reply lines (possibly none: the server waits for more).
fn poke(server: &Server, bytes: &[u8], wait: Duration) -> (Conn, Outcome) {
    let mut conn = server.connect();
    if conn.try_send(bytes).is_err() {
        return (conn, Outcome::Closed);
    }
    let outcome = match conn.read_to_close(wait) {
        Ok(_) => Outcome::Closed,
        Err(got) => Outcome::Lines(
            String::from_utf8_lossy(&got).split_terminator("\r\n").map(str::to_string).collect(),
        ),
    };
    (conn, outcome)
}

/// Sends `bytes` on a new connection and reads up to `n` reply lines (each within the client
/// timeout): `Closed` if the connection closes before the first line.
fn ask(server: &Server, bytes: &[u8], n: usize) -> (Conn, Outcome) {
    let mut conn = server.connect();
    if conn.try_send(bytes).is_err() {
        return (conn, Outcome::Closed);
    }
    let mut lines = Vec::new();
    while lines.len() < n {
        match conn.try_line() {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let outcome = if lines.is_empty() { Outcome::Closed } else { Outcome::Lines(lines) };
    (conn, outcome)
}

/// Every line is an error reply.
fn all_errors(lines: &[String]) -> bool {
    lines
        .iter()
        .all(|l| l == "ERROR" || l.starts_with("CLIENT_ERROR ") || l.starts_with("SERVER_ERROR "))
}

/// A well-behaved client, connected before the bad input starts, checks between cases that it
/// is still served correctly.
struct Bystander {
    conn: Conn,
    round: u64,
}

impl Bystander {
    fn check(&mut self, after: &str) {
        self.round += 1;
        let key = format!("bystander{}", self.round);
        let value = format!("value-{}", self.round).repeat(10);
        assert_eq!(self.conn.set(&key, value.as_bytes()), "STORED", "bystander set after {after}");
        assert_eq!(
            self.conn.get(&key).as_deref(),
            Some(value.as_bytes()),
            "bystander get after {after}"
        );
    }
}

/// Malformed input (garbage, a 1 MiB line without newline, negative and huge lengths, data
/// blocks longer or shorter than announced, an oversized item, binary junk, a disconnect in the
/// middle of a value) gets memcached's error reply or a closed connection, stores nothing, and
/// neither stops the server nor disturbs a client connected meanwhile.
fn bad_input_is_contained(target: Target) {
    let mut server = Server::start(target);
    let mut by = Bystander { conn: server.connect(), round: 0 };
    by.check("start");
    let short = Duration::from_millis(500);
    let stored = |server: &Server, key: &str| server.connect().get(key).is_some();

    // Garbage line: ERROR, and the connection goes on.
    let (mut c, out) = ask(&server, b"hello there junk\r\n", 1);
    assert!(matches!(&out, Outcome::Lines(l) if l == &["ERROR"]), "garbage: {out:?}");
    assert!(c.cmd("version").starts_with("VERSION "));
    by.check("garbage");

    // A 1 MiB line with no newline: closed, or error replies.
    let (_, out) = poke(&server, &vec![b'a'; 1 << 20], Duration::from_secs(2));
    assert!(
        matches!(&out, Outcome::Closed)
            || matches!(&out, Outcome::Lines(l) if !l.is_empty() && all_errors(l)),
        "1 MiB line: {out:?}"
    );
    by.check("1 MiB line");

    // A negative length: CLIENT_ERROR, and the connection goes on.
    let (mut c, out) = ask(&server, b"set neg 0 0 -1\r\n", 1);
    assert!(
        matches!(&out, Outcome::Lines(l) if l == &["CLIENT_ERROR bad command line format"]),
        "negative length: {out:?}"
    );
    assert!(c.cmd("version").starts_with("VERSION "));
    assert!(!stored(&server, "neg"));
    by.check("negative length");

    // Huge lengths: an error, a close, or (memcached, which truncates some to 32 bits) a wait
    // for data; nothing stored once the client goes.
    for len in ["2147483647", "4294967296", "9223372036854775808", "99999999999999999999"] {
        let (c, out) = poke(&server, format!("set huge 0 0 {len}\r\n").as_bytes(), short);
        assert!(
            matches!(&out, Outcome::Closed) || matches!(&out, Outcome::Lines(l) if all_errors(l)),
            "length {len}: {out:?}"
        );
        drop(c);
        assert!(!stored(&server, "huge"), "length {len} stored something");
        by.check(&format!("length {len}"));
    }

    // A data block longer than announced: CLIENT_ERROR bad data chunk, nothing stored.
    let (_, out) = ask(&server, b"set long 0 0 3\r\nabcdef\r\n", 2);
    match &out {
        Outcome::Lines(l) => {
            assert_eq!(l.first().map(String::as_str), Some("CLIENT_ERROR bad data chunk"), "{l:?}");
            assert!(all_errors(l), "longer block: {l:?}");
        }
        Outcome::Closed => {}
    }
    assert!(!stored(&server, "long"));
    by.check("longer block");

    // A data block shorter than announced, then the client goes: nothing stored.
    let (c, out) = poke(&server, b"set shortblock 0 0 10\r\nabc\r\n", short);
    assert!(matches!(&out, Outcome::Lines(l) if l.is_empty()), "short block: {out:?}");
    drop(c);
    assert!(!stored(&server, "shortblock"));
    by.check("shorter block");

    // An item over the size limit (-I 1m), sent in full: SERVER_ERROR (or closed), and the
    // connection reads the next command correctly.
    let mut req = b"set big 0 0 2000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2_000_000));
    req.extend_from_slice(b"\r\nget big\r\n");
    let (_, out) = ask(&server, &req, 2);
    assert!(
        matches!(&out, Outcome::Closed)
            || matches!(&out, Outcome::Lines(l) if l == &["SERVER_ERROR object too large for cache", "END"]),
        "oversized item: {out:?}"
    );
    assert!(!stored(&server, "big"));
    by.check("oversized item");

    // Binary junk (not starting with the binary protocol's magic byte): error lines or closed.
    let mut rng = Rng::new(99);
    let mut junk: Vec<u8> = (0..4096).map(|_| rng.below(256) as u8).collect();
    junk[0] = 0x01;
    junk.extend_from_slice(b"\r\n");
    let (_, out) = poke(&server, &junk, short);
    assert!(
        matches!(&out, Outcome::Closed) || matches!(&out, Outcome::Lines(l) if all_errors(l)),
        "binary junk: {out:?}"
    );
    by.check("binary junk");

    // Junk that starts like a binary-protocol header: anything but a crash.
    let mut junk: Vec<u8> = (0..512).map(|_| rng.below(256) as u8).collect();
    junk[0] = 0x80;
    let (c, _) = poke(&server, &junk, short);
    drop(c);
    by.check("binary-protocol junk");

    // A disconnect in the middle of a value: nothing stored.
    let mut req = b"set cut 0 0 100000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'y', 50_000));
    let (c, out) = poke(&server, &req, short);
    assert!(matches!(&out, Outcome::Lines(l) if l.is_empty()), "half a value: {out:?}");
    c.shutdown();
    drop(c);
    assert!(!stored(&server, "cut"));
    by.check("disconnect mid-value");

    // Many clients connecting and leaving at once, some mid-command.
    for i in 0..200 {
        let mut c = server.connect();
        let _ = c.try_send(if i % 2 == 0 { b"get a b c" } else { b"set x 0 0 5\r\nab" });
    }
    by.check("200 abandoned connections");
    server.assert_alive();
}

// --- memory bound ---------------------------------------------------------------------------

/// The memory limit given to the server, MiB (`-m`).
const MEMORY_LIMIT_MIB: u64 = 64;
/// What the test writes in all: ten times the limit.
const WRITTEN_MIB: u64 = 640;
/// Resident memory allowed beyond the limit. memcached 1.6.18 (`-t 2`) measures about 5.4 MiB
/// over its 64 MiB here (RSS 69.3 MiB); cairn gets 16 MiB for its fixed costs (binary, thread
/// stacks, io_uring rings and receive buffers, hash table, allocator slack).
const RSS_OVERHEAD_MIB: u64 = 16;
/// Value sizes, cycled: several slab classes, from tiny to half a megabyte.
const VALUE_SIZES: [usize; 8] = [50, 200, 700, 3_000, 9_000, 30_000, 120_000, 500_000];
/// Sets sent per `mn` round trip (noreply, pipelined).
const BATCH: usize = 32;
/// Writing must end within this.
const WRITE_LIMIT: Duration = Duration::from_secs(120);

/// With `-m 64`, writing 640 MiB of values keeps the server's resident memory within 64 MiB
/// plus a fixed overhead, all along; the server evicts (`evictions` > 0) and keeps
/// `bytes` <= `limit_maxbytes`; the most recent items are still there; no store is refused.
fn memory_stays_bounded(target: Target) {
    let mut server = Server::start_with(target, &["-m", &MEMORY_LIMIT_MIB.to_string()]);
    let mut conn = server.connect();
    let bound_kib = (MEMORY_LIMIT_MIB + RSS_OVERHEAD_MIB) * 1024;
    let payload = Rng::new(3).alnum(*VALUE_SIZES.iter().max().unwrap_or(&1));
    let start = Instant::now();
    let (mut written, mut sets, mut max_rss) = (0u64, 0u64, 0u64);
    while written < WRITTEN_MIB << 20 {
        assert!(start.elapsed() < WRITE_LIMIT, "writing took longer than {WRITE_LIMIT:?}");
        let mut req = Vec::new();
        for _ in 0..BATCH {
            let n = VALUE_SIZES[(sets % VALUE_SIZES.len() as u64) as usize];
            req.extend_from_slice(format!("set mem:{sets} 0 0 {n} noreply\r\n").as_bytes());
            req.extend_from_slice(&payload[..n]);
            req.extend_from_slice(b"\r\n");
            written += n as u64;
            sets += 1;
        }
        req.extend_from_slice(b"mn\r\n");
        conn.send(&req);
        let reply = conn.line();
        assert_eq!(reply, "MN", "a store was refused or failed after {sets} sets");
        let rss = server.rss_kib();
        max_rss = max_rss.max(rss);
        assert!(
            rss <= bound_kib,
            "RSS {rss} KiB > {bound_kib} KiB after writing {} MiB",
            written >> 20
        );
    }
    let stats = server.stats("");
    let stat = |name: &str| -> u64 {
        stats
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric stat {name}"))
    };
    let (evictions, bytes, limit) = (stat("evictions"), stat("bytes"), stat("limit_maxbytes"));
    eprintln!(
        "{} MiB in {sets} sets in {:?}: max RSS {max_rss} KiB (bound {bound_kib} KiB), \
         evictions {evictions}, bytes {bytes}, limit_maxbytes {limit}, curr_items {}",
        written >> 20,
        start.elapsed(),
        stat("curr_items")
    );
    assert_eq!(limit, MEMORY_LIMIT_MIB << 20, "limit_maxbytes");
    assert!(evictions > 0, "no evictions after writing {WRITTEN_MIB} MiB into {MEMORY_LIMIT_MIB}");
    assert!(bytes <= limit, "bytes {bytes} > limit_maxbytes {limit}");
    // The newest item of every size is still there, intact.
    for k in sets - VALUE_SIZES.len() as u64..sets {
        let n = VALUE_SIZES[(k % VALUE_SIZES.len() as u64) as usize];
        let v = conn.get(&format!("mem:{k}")).unwrap_or_else(|| panic!("newest item mem:{k} gone"));
        assert_eq!(v, &payload[..n], "mem:{k}");
    }
    server.assert_alive();
}
