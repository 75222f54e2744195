//! `cairn cache`: the memcached-compatible cache appliance on the hosted runtime.
//!
//! The binary picks the platform: one pinned core thread per `--threads`, each accepting on its
//! own `SO_REUSEPORT` listener and serving its connections with `cairn_cache::server`.

use std::net::SocketAddr;
use std::sync::Mutex;

use cairn_cache::engine::Settings;
use cairn_cache::server::{Cache, Connection, ConnectionError, Host, TOO_MANY_CONNECTIONS};
use cairn_hosted::net::{ListenSocket, TcpListener, TcpStream};
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::IoBuf;

/// Flags of `cairn cache`: memcached's names and defaults.
#[derive(clap::Args)]
pub struct CacheArgs {
    /// TCP port to listen on.
    #[arg(short = 'p', long, default_value_t = 11211)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'l', long, default_value = "127.0.0.1")]
    listen: String,
    /// Cores (threads) to serve with; default: every CPU this process may use.
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Item memory in megabytes.
    #[arg(short = 'm', long, default_value_t = 64)]
    memory_limit: u64,
    /// Most simultaneous connections.
    #[arg(short = 'c', long, default_value_t = 1024)]
    conn_limit: usize,
    /// Largest item: bytes, or with a k or m suffix (1m).
    #[arg(short = 'I', long, default_value = "1m", value_parser = parse_size)]
    max_item_size: usize,
    /// UDP port: only 0 (off, memcached's default since 1.5.6) is supported.
    #[arg(short = 'U', long, default_value_t = 0)]
    udp_port: u16,
    /// Say more on stderr (repeat for more).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Parses `1m`, `512k`, `2097152`: memcached's `-I` syntax.
fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let n: usize = digits.parse().map_err(|_| format!("bad size {s:?}"))?;
    let bytes = n.checked_mul(unit).ok_or_else(|| format!("size {s:?} too large"))?;
    if !(1024..=1024 * 1024 * 1024).contains(&bytes) {
        return Err(format!("item size {bytes} out of range (1k to 1024m)"));
    }
    Ok(bytes)
}

/// The hosted runtime's TCP stream as the cache's connection.
struct HostedConnection(TcpStream);

impl Connection for HostedConnection {
    async fn recv(&self) -> Result<Option<IoBuf>, ConnectionError> {
        self.0.recv().await.map_err(|_| ConnectionError)
    }

    async fn send(&self, buf: IoBuf) -> Result<(), ConnectionError> {
        self.0.send_buf(buf).await.map_err(|_| ConnectionError)
    }
}

/// Process facts from Linux.
struct LinuxHost;

impl Host for LinuxHost {
    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn unix_time_s(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn rusage_us(&self) -> (u64, u64) {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF with a valid out-pointer.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return (0, 0);
        }
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        (us(usage.ru_utime), us(usage.ru_stime))
    }
}

async fn accept_loop(listener: TcpListener, cache: &'static Cache, verbose: u8) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            // Out of descriptors, or a connection reset before accept: keep serving.
            Err(_) => {
                cairn_rt::event::yield_now().await;
                continue;
            }
        };
        if !cache.admit() {
            spawn_local(async move {
                let _ = stream.send_buf(IoBuf::copy_from_slice(TOO_MANY_CONNECTIONS)).await;
            });
            continue;
        }
        if verbose > 0 {
            if let Ok(peer) = stream.peer_addr() {
                eprintln!("<{} new connection from {peer}", cairn_rt::event::current_core());
            }
        }
        let _ = stream.set_nodelay(true);
        spawn_local(cache.serve(HostedConnection(stream)));
    }
}

/// Serves until killed.
pub fn run(args: &CacheArgs) -> Result<(), String> {
    if args.udp_port != 0 {
        return Err("the UDP protocol is not supported: use -U 0".into());
    }
    let ip = args.listen.parse().map_err(|e| format!("bad --listen {}: {e}", args.listen))?;
    let addr = SocketAddr::new(ip, args.port);
    let cores = args.threads.unwrap_or_else(cairn_hosted::affinity::available_cores).max(1);
    if cores > cairn_rt::percore::MAX_CORES {
        return Err(format!("at most {} threads", cairn_rt::percore::MAX_CORES));
    }
    let settings = Settings {
        memory_limit: (args.memory_limit as usize).saturating_mul(1 << 20),
        max_item_size: args.max_item_size,
        threads: cores,
        conn_limit: args.conn_limit,
        port: args.port,
        listen: args.listen.clone(),
        verbosity: args.verbose as u32,
        ..Settings::default()
    };
    let cache = Cache::new(settings, cores, &LinuxHost, 0);
    let sockets =
        TcpListener::bind_per_core(addr, cores).map_err(|e| format!("bind {addr}: {e}"))?;
    let sockets: &'static Mutex<Vec<Option<ListenSocket>>> =
        Box::leak(Box::new(Mutex::new(sockets.into_iter().map(Some).collect())));
    let verbose = args.verbose;
    let handle = cairn_hosted::start(cores, move |core| {
        cache.start_core();
        let socket = sockets.lock().expect("listener table")[core].take().expect("one per core");
        spawn_local(accept_loop(TcpListener::from_socket(socket), cache, verbose));
    })
    .map_err(|e| format!("cannot start {cores} cores: {e}"))?;
    eprintln!(
        "cairn cache: ready on {addr} with {cores} cores, {} MiB, items up to {} bytes",
        args.memory_limit, args.max_item_size
    );
    handle.join().map_err(|_| "a core panicked".to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_like_memcached() {
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        assert!(parse_size("10").is_err());
        assert!(parse_size("2g").is_err());
        assert!(parse_size("m").is_err());
    }
}
