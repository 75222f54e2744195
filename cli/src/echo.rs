//! `cairn echo`: a TCP echo server (RFC 862) on the hosted runtime, one event loop per core.

use std::net::SocketAddr;
use std::sync::Mutex;

use cairn_hosted::net::{echo, ListenSocket, TcpListener};
use cairn_rt::event::spawn_local;

/// Flags of `cairn echo`.
#[derive(clap::Args)]
pub struct EchoArgs {
    /// TCP port to listen on.
    #[arg(short = 'p', long, default_value_t = 7007)]
    port: u16,
    /// Address to listen on.
    #[arg(short = 'l', long, default_value = "127.0.0.1")]
    listen: String,
    /// Cores (threads) to run; default: every CPU this process may use.
    #[arg(short = 't', long)]
    threads: Option<usize>,
}

/// Serves until killed.
pub fn run(args: &EchoArgs) -> Result<(), String> {
    let ip = args.listen.parse().map_err(|e| format!("bad --listen {}: {e}", args.listen))?;
    let addr = SocketAddr::new(ip, args.port);
    let cores = args.threads.unwrap_or_else(cairn_hosted::affinity::available_cores).max(1);
    let sockets =
        TcpListener::bind_per_core(addr, cores).map_err(|e| format!("bind {addr}: {e}"))?;
    let sockets: &'static Mutex<Vec<Option<ListenSocket>>> =
        Box::leak(Box::new(Mutex::new(sockets.into_iter().map(Some).collect())));
    let handle = cairn_hosted::start(cores, move |core| {
        let socket = sockets.lock().expect("listener table")[core].take().expect("one per core");
        spawn_local(echo::serve_tcp(TcpListener::from_socket(socket)));
    })
    .map_err(|e| format!("cannot start {cores} cores: {e}"))?;
    eprintln!("cairn echo: ready on {addr} with {cores} cores");
    handle.join().map_err(|_| "a core panicked".to_string())
}
