//! Serving the cache: connections on cairn's event loops, the key space sharded over cores.
//!
//! After EbbRT's memcached (OSDI 2016, section 5): every core runs its own event loop and owns
//! one [`Shard`] of the key space, reached through a multicore Ebb ([`CoreCache`]). A
//! connection belongs to the core that accepted it; a request whose key another core owns is
//! sent there with [`run_on`] and its reply comes back the same way, so no shard is ever touched
//! by two cores and the table needs no lock. A request's raw bytes travel, not the parsed
//! request (which borrows the connection's buffer): the owner parses them again, which costs
//! less than the cross-core hop itself. With one core, or a key owned locally, nothing crosses.
//!
//! A multi-key get is answered key by key in request order; consecutive keys owned by one
//! other core go there in one hop. Global commands (`stats`, `flush_all`, `cache_memlimit`)
//! visit every core.
//!
//! The server names no platform: the binary wires a [`Connection`] (today the hosted runtime's
//! TCP stream) and a [`Host`] (process facts such as the pid) into it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::sync::atomic::{AtomicU64, Ordering};

use cairn_rt::ebb::{self, EbbRef, MulticoreEbb};
use cairn_rt::event::{self, run_on, EventManager};
use cairn_rt::iobuf::IoBuf;
use cairn_rt::CoreId;

use crate::engine::{write_stats, Now, ServerStats, Settings, Shard, ShardStats, VERSION};
use crate::protocol::{parse, GetKind, Limits, Parsed, Request};
use crate::store::hash::shard_of;

/// A connection failed (reset, broken pipe): the server just drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionError;

/// A connection's byte stream, as the platform provides it.
pub trait Connection {
    /// The next bytes received, or `None` once the peer has closed its side.
    fn recv(&self) -> impl Future<Output = Result<Option<IoBuf>, ConnectionError>>;
    /// Sends all of `buf`.
    fn send(&self, buf: IoBuf) -> impl Future<Output = Result<(), ConnectionError>>;
}

/// Facts about the hosting process that `stats` reports and the portable core cannot know.
pub trait Host: Send + Sync + 'static {
    /// The process id.
    fn pid(&self) -> u32;
    /// Wall-clock time, seconds since the Unix epoch.
    fn unix_time_s(&self) -> u64;
    /// CPU time used by the process: (user, system) in microseconds.
    fn rusage_us(&self) -> (u64, u64);
}

/// How often each core's expiry crawler runs, and how many items it may reclaim per run.
const CRAWL_PERIOD_NS: u64 = 100_000_000;
const CRAWL_BUDGET: usize = 1_000;

/// What every core's [`CoreCache`] is built from.
pub struct CacheRoot {
    settings: Settings,
    cores: usize,
}

/// One core's part of the cache: its shard and its connection counters.
pub struct CoreCache {
    shard: RefCell<Shard>,
    total_connections: Cell<u64>,
    bytes_read: Cell<u64>,
    bytes_written: Cell<u64>,
}

impl MulticoreEbb for CoreCache {
    type Root = CacheRoot;
    fn create_rep(root: &'static CacheRoot, core: CoreId) -> Self {
        CoreCache {
            shard: RefCell::new(Shard::new(&root.settings, core, root.cores)),
            total_connections: Cell::new(0),
            bytes_read: Cell::new(0),
            bytes_written: Cell::new(0),
        }
    }
}

/// Per-core connection counters, summed for `stats`.
#[derive(Clone, Copy, Default)]
struct ConnCounters {
    total_connections: u64,
    bytes_read: u64,
    bytes_written: u64,
}

/// The cache: settings, the per-core shards, and process-wide connection accounting.
pub struct Cache {
    settings: Settings,
    limits: Limits,
    cores: usize,
    shards: EbbRef<CoreCache>,
    host: &'static dyn Host,
    start_ns: u64,
    start_unix_s: u64,
    curr_connections: AtomicU64,
    rejected_connections: AtomicU64,
    cmd_flush: AtomicU64,
}

impl Cache {
    /// A cache over `cores` cores with `settings`. Call it once, before the cores serve, from
    /// any thread; it lives for the rest of the program.
    pub fn new(
        settings: Settings,
        cores: usize,
        host: &'static dyn Host,
        start_ns: u64,
    ) -> &'static Cache {
        let limits = Limits { max_item_size: settings.max_item_size, ..Limits::default() };
        let shards =
            ebb::create_multicore::<CoreCache>(CacheRoot { settings: settings.clone(), cores });
        let start_unix_s = host.unix_time_s();
        Box::leak(Box::new(Cache {
            settings,
            limits,
            cores,
            shards,
            host,
            start_ns,
            start_unix_s,
            curr_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            cmd_flush: AtomicU64::new(0),
        }))
    }

    /// Sets up the calling core: builds its shard and starts its expiry crawler.
    pub fn start_core(&'static self) {
        let _ = self.shards.get();
        event::set_periodic(CRAWL_PERIOD_NS, move || {
            let now = self.now();
            self.shards.shard.borrow_mut().crawl(now, CRAWL_BUDGET);
        });
    }

    /// The settings the cache runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The time as the engine sees it.
    pub fn now(&self) -> Now {
        let elapsed_ns =
            EventManager::current().runtime().platform().now_ns().saturating_sub(self.start_ns);
        let uptime_s = (elapsed_ns / 1_000_000_000) as u32;
        Now { unix_s: self.start_unix_s + uptime_s as u64, uptime_s }
    }

    /// The core that owns `key`.
    pub fn owner(&self, key: &[u8]) -> CoreId {
        if self.cores == 1 {
            return 0;
        }
        shard_of(key, self.cores)
    }

    /// Admits a new connection, or refuses it when the connection limit is reached (the caller
    /// then sends [`TOO_MANY_CONNECTIONS`] and closes, as memcached does).
    pub fn admit(&self) -> bool {
        let now = self.curr_connections.fetch_add(1, Ordering::Relaxed) + 1;
        if now as usize > self.settings.conn_limit {
            self.curr_connections.fetch_sub(1, Ordering::Relaxed);
            self.rejected_connections.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Serves one admitted connection until it closes, on the calling core.
    pub async fn serve<C: Connection>(&'static self, conn: C) {
        let rep = self.shards.get();
        rep.total_connections.set(rep.total_connections.get() + 1);
        let _ = self.serve_inner(&conn).await;
        self.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve_inner<C: Connection>(&'static self, conn: &C) -> Result<(), ConnectionError> {
        let rep = self.shards.get();
        let mut pending: Vec<u8> = Vec::new();
        let mut swallow = 0usize;
        loop {
            let Some(buf) = conn.recv().await? else { return Ok(()) };
            rep.bytes_read.set(rep.bytes_read.get() + buf.len() as u64);
            let mut fresh: &[u8] = &buf;
            let skip = swallow.min(fresh.len());
            swallow -= skip;
            fresh = &fresh[skip..];
            // Parse straight from the received buffer when nothing is pending (the common case:
            // whole requests per receive); only a partial tail is copied aside.
            let mut out = Vec::new();
            let close;
            if pending.is_empty() {
                let (used, c) = self.process(fresh, &mut swallow, &mut out).await;
                close = c;
                pending.extend_from_slice(&fresh[used..]);
            } else {
                pending.extend_from_slice(fresh);
                let (used, c) = self.process(&pending, &mut swallow, &mut out).await;
                close = c;
                pending.drain(..used);
            }
            if !out.is_empty() {
                rep.bytes_written.set(rep.bytes_written.get() + out.len() as u64);
                conn.send(IoBuf::from_vec(out)).await?;
            }
            if close {
                return Ok(());
            }
        }
    }

    /// Answers every complete request in `input`. Returns the bytes used and whether the
    /// connection must close.
    async fn process(
        &'static self,
        input: &[u8],
        swallow: &mut usize,
        out: &mut Vec<u8>,
    ) -> (usize, bool) {
        let mut pos = 0;
        while pos < input.len() {
            match parse(&input[pos..], &self.limits) {
                Parsed::Incomplete => break,
                Parsed::Invalid { reply, consumed, swallow: more, close, unlink } => {
                    if let Some(key) = unlink {
                        self.unlink(&key).await;
                    }
                    out.extend_from_slice(reply);
                    pos += consumed;
                    let skip = more.min(input.len() - pos);
                    pos += skip;
                    *swallow = more - skip;
                    if close {
                        return (pos, true);
                    }
                }
                Parsed::Request { request, consumed } => {
                    let raw = &input[pos..pos + consumed];
                    pos += consumed;
                    if self.execute(&request, raw, out).await {
                        return (pos, true);
                    }
                }
            }
        }
        (pos, false)
    }

    /// Executes one request; returns whether the connection must close (`quit`).
    async fn execute(&'static self, request: &Request<'_>, raw: &[u8], out: &mut Vec<u8>) -> bool {
        match request {
            Request::Get { kind, exptime, keys } => self.get(*kind, *exptime, keys, out).await,
            Request::Quit => return true,
            Request::Version => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(VERSION.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Request::Verbosity { noreply, .. } => reply_ok(*noreply, out),
            Request::MetaNoop => out.extend_from_slice(b"MN\r\n"),
            Request::FlushAll { delay, noreply } => {
                self.cmd_flush.fetch_add(1, Ordering::Relaxed);
                let (delay, now) = (*delay, self.now());
                self.on_every_core(move |c| c.shard.borrow_mut().flush_all(delay, now)).await;
                reply_ok(*noreply, out);
            }
            Request::CacheMemlimit { megabytes, noreply } => {
                let per_shard = (*megabytes as usize).saturating_mul(1 << 20) / self.cores;
                self.on_every_core(move |c| c.shard.borrow_mut().set_memory_limit(per_shard)).await;
                reply_ok(*noreply, out);
            }
            Request::Stats { args } => self.stats(args, out).await,
            _ => self.execute_keyed(request, raw, out).await,
        }
        false
    }

    async fn execute_keyed(&'static self, request: &Request<'_>, raw: &[u8], out: &mut Vec<u8>) {
        let Some(key) = request.key() else { return };
        let owner = self.owner(key);
        if owner == event::current_core() {
            self.shards.shard.borrow_mut().execute(request, self.now(), out);
            return;
        }
        let raw = raw.to_vec();
        let reply = run_on(owner, move || {
            let mut reply = Vec::new();
            if let Parsed::Request { request, .. } = parse(&raw, &self.limits) {
                self.shards.shard.borrow_mut().execute(&request, self.now(), &mut reply);
            }
            reply
        })
        .await;
        out.extend_from_slice(&reply);
    }

    /// Removes `key`'s item on the core that owns it, silently.
    async fn unlink(&'static self, key: &[u8]) {
        let owner = self.owner(key);
        if owner == event::current_core() {
            self.shards.shard.borrow_mut().unlink(key, self.now());
            return;
        }
        let key = key.to_vec();
        run_on(owner, move || self.shards.shard.borrow_mut().unlink(&key, self.now())).await;
    }

    async fn get(
        &'static self,
        kind: GetKind,
        exptime: Option<i64>,
        keys: &[&[u8]],
        out: &mut Vec<u8>,
    ) {
        let me = event::current_core();
        let mut i = 0;
        while i < keys.len() {
            let owner = self.owner(keys[i]);
            if owner == me {
                self.shards.shard.borrow_mut().get_one(kind, exptime, keys[i], self.now(), out);
                i += 1;
                continue;
            }
            // Consecutive keys of one other core go there together.
            let mut batch = Vec::new();
            while i < keys.len() && self.owner(keys[i]) == owner {
                batch.push(keys[i].to_vec());
                i += 1;
            }
            let reply = run_on(owner, move || {
                let mut reply = Vec::new();
                let now = self.now();
                let mut shard = self.shards.shard.borrow_mut();
                for key in &batch {
                    shard.get_one(kind, exptime, key, now, &mut reply);
                }
                reply
            })
            .await;
            out.extend_from_slice(&reply);
        }
        out.extend_from_slice(b"END\r\n");
    }

    async fn stats(&'static self, args: &[&[u8]], out: &mut Vec<u8>) {
        if args.first() == Some(&&b"reset"[..]) {
            self.on_every_core(|c| c.shard.borrow_mut().reset_stats()).await;
            out.extend_from_slice(b"RESET\r\n");
            return;
        }
        let mut shards = ShardStats::default();
        let mut conns = ConnCounters::default();
        for core in 0..self.cores {
            let (s, c) = run_on(core, move || {
                let rep = self.shards.get();
                let conns = ConnCounters {
                    total_connections: rep.total_connections.get(),
                    bytes_read: rep.bytes_read.get(),
                    bytes_written: rep.bytes_written.get(),
                };
                (rep.shard.borrow().stats(), conns)
            })
            .await;
            shards += s;
            conns.total_connections += c.total_connections;
            conns.bytes_read += c.bytes_read;
            conns.bytes_written += c.bytes_written;
        }
        let now = self.now();
        let (user_us, system_us) = self.host.rusage_us();
        let server = ServerStats {
            pid: self.host.pid(),
            uptime_s: now.uptime_s,
            time_unix_s: now.unix_s,
            curr_connections: self.curr_connections.load(Ordering::Relaxed),
            total_connections: conns.total_connections,
            rejected_connections: self.rejected_connections.load(Ordering::Relaxed),
            threads: self.cores,
            rusage_user_us: user_us,
            rusage_system_us: system_us,
            bytes_read: conns.bytes_read,
            bytes_written: conns.bytes_written,
            cmd_flush: self.cmd_flush.load(Ordering::Relaxed),
            ..ServerStats::default()
        };
        write_stats(args, &shards, &server, &self.settings, out);
    }

    /// Runs `f` on every core's part of the cache, one after another.
    async fn on_every_core(&'static self, f: impl Fn(&CoreCache) + Send + Sync + Copy + 'static) {
        for core in 0..self.cores {
            run_on(core, move || f(self.shards.get())).await;
        }
    }
}

/// What memcached sends a connection over the limit before closing it.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";

fn reply_ok(noreply: bool, out: &mut Vec<u8>) {
    if !noreply {
        out.extend_from_slice(b"OK\r\n");
    }
}
