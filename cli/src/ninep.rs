//! `cairn 9p`: a 9P client for the shell (`ls`, `cat`, `put`, `stat`, `rm`, `mkdir`) and the
//! 9P file server (`serve`), on the hosted runtime.
//!
//! Addresses are `tcp:HOST:PORT`, `unix:PATH` or `shm:PATH` (the shared-memory rings of PROSE,
//! papers/003, with `--shm-mode poll|block`). The client runs on one cairn core; the server on
//! `--threads` cores, each serving the connections it accepts.

use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::{mpsc, Mutex};

use cairn_9p::client::{Client, ClientConfig, Fid};
use cairn_9p::codec::Dialect;
use cairn_9p::errno::{Errno, ENOENT};
use cairn_9p::server::ServerConfig;
use cairn_fileserver::export::{Export, ExportOptions};
use cairn_fileserver::router::Router;
use cairn_fileserver::synthetic::{Synthetic, ANAME as SYNTHETIC_ANAME};
use cairn_fileserver::transport::{
    bind_listeners, connect, parse_listen, serve_bound, BoundListener, ClientTransport, ListenSpec,
    ShmMode,
};
use cairn_rt::event::{spawn_local, EventManager};
use clap::Subcommand;

/// `cairn 9p` and its subcommands.
#[derive(clap::Args)]
pub struct NinepArgs {
    #[command(subcommand)]
    command: NinepCommand,
}

#[derive(Subcommand)]
enum NinepCommand {
    /// List a directory.
    Ls(PathArgs),
    /// Print a file to standard output.
    Cat(PathArgs),
    /// Write standard input into a file (created, or truncated if it exists).
    Put(PathArgs),
    /// Describe a file.
    Stat(PathArgs),
    /// Remove a file or an empty directory.
    Rm(PathArgs),
    /// Make a directory.
    Mkdir(PathArgs),
    /// Serve a host directory (--export) or the synthetic tree (--synthetic) over 9P.
    Serve(ServeArgs),
}

/// The arguments every client subcommand takes.
#[derive(clap::Args)]
struct PathArgs {
    /// The server: tcp:HOST:PORT, unix:PATH or shm:PATH.
    addr: String,
    /// The path inside the served tree ("/" or "" for its root).
    path: String,
    /// The attach name (the tree to attach to; diod wants the exported path).
    #[arg(long, default_value = "")]
    aname: String,
    /// The dialect to speak: 9p2000 or 9p2000.L.
    #[arg(long, default_value = "9p2000.L", value_parser = parse_dialect)]
    dialect: Dialect,
    /// How a shared-memory channel waits: poll (spin, for a dedicated core) or block (spin
    /// briefly, then sleep on a doorbell).
    #[arg(long, default_value = "block", value_parser = parse_shm_mode)]
    shm_mode: ShmMode,
    /// The largest message to offer (bytes).
    #[arg(long, default_value_t = (1 << 20) + 24)]
    msize: u32,
}

/// `cairn 9p serve`.
#[derive(clap::Args)]
struct ServeArgs {
    /// Where to listen: tcp:HOST:PORT, unix:PATH or shm:PATH.
    #[arg(long)]
    listen: String,
    /// Serve this host directory (like diod) at every attach name but "cairn" and "ctl".
    #[arg(long)]
    export: Option<std::path::PathBuf>,
    /// Refuse every change to the exported directory.
    #[arg(long, requires = "export")]
    read_only: bool,
    /// The synthetic tree (dev/, net/, stats/) is always served at attach name "cairn" (and its
    /// dev/ at "ctl", where diod's tools look for null and zero); this flag only says so.
    #[arg(long)]
    synthetic: bool,
    /// Cores to serve with (TCP spreads connections over them; unix: and shm: use one).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The largest message to accept (bytes).
    #[arg(long, default_value_t = (1 << 20) + 24)]
    msize: u32,
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    match s.to_ascii_lowercase().as_str() {
        "9p2000" => Ok(Dialect::P2000),
        "9p2000.l" => Ok(Dialect::P2000L),
        _ => Err(format!("unknown dialect {s:?} (9p2000 or 9p2000.L)")),
    }
}

fn parse_shm_mode(s: &str) -> Result<ShmMode, String> {
    match s {
        "poll" => Ok(ShmMode::Polling),
        "block" => Ok(ShmMode::Blocking),
        _ => Err(format!("unknown shm mode {s:?} (poll or block)")),
    }
}

/// Runs `cairn 9p ...`.
pub fn run(args: NinepArgs) -> Result<(), String> {
    match args.command {
        NinepCommand::Serve(serve) => run_server(serve),
        NinepCommand::Ls(a) => run_client(a, Op::Ls),
        NinepCommand::Cat(a) => run_client(a, Op::Cat),
        NinepCommand::Put(a) => run_client(a, Op::Put),
        NinepCommand::Stat(a) => run_client(a, Op::Stat),
        NinepCommand::Rm(a) => run_client(a, Op::Rm),
        NinepCommand::Mkdir(a) => run_client(a, Op::Mkdir),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Ls,
    Cat,
    Put,
    Stat,
    Rm,
    Mkdir,
}

fn errno_text(errno: Errno) -> String {
    std::io::Error::from_raw_os_error(errno as i32).to_string()
}

/// Runs one client operation on a fresh one-core runtime.
fn run_client(args: PathArgs, op: Op) -> Result<(), String> {
    let spec = parse_listen(&args.addr)?;
    let (tx, rx) = mpsc::channel();
    let job = Mutex::new(Some((args, spec, tx)));
    let handle = cairn_hosted::start(1, move |_| {
        let (args, spec, tx) = job.lock().expect("job").take().expect("one core");
        spawn_local(async move {
            let result = client_op(&args, &spec, op).await;
            let _ = tx.send(result);
            EventManager::current().runtime().shutdown();
        });
    })
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = rx.recv().map_err(|_| "the client's core stopped".to_string())?;
    handle.join().map_err(|_| "the client's core panicked".to_string())?;
    result
}

/// Splits a path into its names.
fn names(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty() && *s != ".").collect()
}

async fn client_op(args: &PathArgs, spec: &ListenSpec, op: Op) -> Result<(), String> {
    let transport = connect(spec, args.shm_mode, args.msize)
        .await
        .map_err(|e| format!("cannot connect to {spec}: {e}"))?;
    let transport = Rc::new(transport);
    let source = ClientTransport::buffer_source(&transport);
    let config = ClientConfig {
        msize: args.msize,
        dialect: args.dialect,
        uname: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        // SAFETY: getuid and getgid cannot fail and take no arguments.
        n_uname: unsafe { libc::getuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getgid() },
        ..ClientConfig::default()
    };
    let client = Client::connect(transport, config)
        .await
        .map_err(|e| format!("version negotiation with {spec} failed: {}", errno_text(e)))?;
    if let Some(source) = source {
        client.set_buffer_source(source);
    }
    let root = client
        .attach(&args.aname)
        .await
        .map_err(|e| format!("attach {:?}: {}", args.aname, errno_text(e)))?;
    let path = &args.path;
    let fail = |what: &'static str| move |e: Errno| format!("{what} {path}: {}", errno_text(e));
    let all = names(path);
    match op {
        Op::Ls => {
            let dir = client.walk(&root, &all).await.map_err(fail("walk"))?;
            client.open(&dir, 0).await.map_err(fail("open"))?;
            let mut entries = client.readdir(&dir).await.map_err(fail("readdir"))?;
            entries.retain(|e| e.name != "." && e.name != "..");
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let mut out = std::io::stdout().lock();
            for e in entries {
                let slash = if e.dtype == 4 { "/" } else { "" };
                writeln!(out, "{}{slash}", e.name).map_err(|e| e.to_string())?;
            }
        }
        Op::Cat => {
            let file = client.walk(&root, &all).await.map_err(fail("walk"))?;
            client.open(&file, 0).await.map_err(fail("open"))?;
            let mut out = std::io::stdout().lock();
            let mut write_error = None;
            client
                .read_to_sink(&file, 0, &mut |piece| {
                    out.write_all(&piece).map_err(|e| {
                        write_error = Some(e.to_string());
                        cairn_9p::errno::EIO
                    })
                })
                .await
                .map_err(|e| write_error.clone().unwrap_or_else(|| fail("read")(e)))?;
            out.flush().map_err(|e| e.to_string())?;
        }
        Op::Put => {
            const O_WRONLY: u32 = 1;
            const O_TRUNC: u32 = 0o1000;
            let file = match client.walk(&root, &all).await {
                Ok(file) => {
                    client.open(&file, O_WRONLY | O_TRUNC).await.map_err(fail("open"))?;
                    file
                }
                Err(ENOENT) => {
                    let (name, parent) = all.split_last().ok_or("put needs a file name")?;
                    let dir = client.walk(&root, parent).await.map_err(fail("walk"))?;
                    client
                        .create(&dir, name, O_WRONLY | O_TRUNC, 0o644)
                        .await
                        .map_err(fail("create"))?
                }
                Err(e) => return Err(fail("walk")(e)),
            };
            put_stdin(&client, &file).await.map_err(|e| format!("write {path}: {e}"))?;
            client.clunk(file).await.map_err(fail("clunk"))?;
        }
        Op::Stat => {
            let file = client.walk(&root, &all).await.map_err(fail("walk"))?;
            let info = client.stat(&file).await.map_err(fail("stat"))?;
            println!(
                "path {path}\nqid type {:#04x} version {} path {}\nmode {:o}\nsize {}\nmtime {}\nnlink {}\nuid {}\ngid {}",
                info.qid.ty, info.qid.version, info.qid.path, info.mode, info.size, info.mtime,
                info.nlink, info.uid, info.gid
            );
        }
        Op::Rm => {
            let file = client.walk(&root, &all).await.map_err(fail("walk"))?;
            client.remove(file).await.map_err(fail("remove"))?;
        }
        Op::Mkdir => {
            let (name, parent) = all.split_last().ok_or("mkdir needs a directory name")?;
            let dir = client.walk(&root, parent).await.map_err(fail("walk"))?;
            client.mkdir(&dir, name, 0o755).await.map_err(fail("mkdir"))?;
        }
    }
    Ok(())
}

/// Copies standard input into `file` in pieces of a few megabytes, each written with the
/// client's pipelined writes.
async fn put_stdin(client: &Client<ClientTransport>, file: &Fid) -> Result<(), String> {
    let mut stdin = std::io::stdin().lock();
    let mut piece = vec![0u8; 4 << 20];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < piece.len() {
            match stdin.read(&mut piece[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading standard input: {e}")),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        client.write_all(file, offset, &piece[..filled]).await.map_err(errno_text)?;
        offset += filled as u64;
    }
}

/// Serves until killed.
fn run_server(args: ServeArgs) -> Result<(), String> {
    let spec = parse_listen(&args.listen)?;
    let cores = args.threads.clamp(1, cairn_rt::percore::MAX_CORES);
    let export = match &args.export {
        Some(dir) => Some(
            Export::new(dir, ExportOptions { read_only: args.read_only })
                .map_err(|e| format!("cannot export {}: {e}", dir.display()))?,
        ),
        None => None,
    };
    let listeners = bind_listeners(&spec, cores).map_err(|e| format!("bind {spec}: {e}"))?;
    let listeners: &'static Mutex<Vec<Option<BoundListener>>> =
        Box::leak(Box::new(Mutex::new(listeners)));
    let config = ServerConfig { max_msize: args.msize };
    let handle = cairn_hosted::start(cores, move |core| {
        let Some(listener) = listeners.lock().expect("listeners")[core].take() else { return };
        // One router per core: the synthetic tree's connections and sockets live on the core
        // that serves them; the export is shared (it holds only the root's descriptor).
        let synthetic = Synthetic::new(EventManager::current().runtime());
        let tree = Rc::new(
            Router::new(SYNTHETIC_ANAME, synthetic, export.clone()).with_alias("ctl", &["dev"]),
        );
        spawn_local(async move {
            if let Err(e) = serve_bound(listener, move || tree.clone(), config).await {
                eprintln!("cairn 9p serve: {e}");
            }
        });
    })
    .map_err(|e| format!("cannot start {cores} cores: {e}"))?;
    let what = match &args.export {
        Some(dir) => format!("{} and the synthetic tree (attach name cairn)", dir.display()),
        None => "the synthetic tree (attach name cairn)".into(),
    };
    eprintln!("cairn 9p: serving {what} on {spec} with {cores} cores");
    // Tests and benchmarks wait for this line, so it comes once every listener is bound: TCP
    // sockets are bound above, a Unix or shm socket by its core as it starts serving.
    if let ListenSpec::Unix(path) | ListenSpec::Shm(path) = &spec {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !path.exists() {
            if std::time::Instant::now() > deadline {
                return Err(format!("{} was not bound within 10 s", path.display()));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    handle.join().map_err(|_| "a core panicked".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_and_modes_parse() {
        assert_eq!(parse_dialect("9p2000.L"), Ok(Dialect::P2000L));
        assert_eq!(parse_dialect("9P2000"), Ok(Dialect::P2000));
        assert!(parse_dialect("9p2000.u").is_err());
        assert_eq!(parse_shm_mode("poll"), Ok(ShmMode::Polling));
        assert!(parse_shm_mode("spin").is_err());
        assert_eq!(names("/a//b/./c/"), vec!["a", "b", "c"]);
        assert!(names("/").is_empty());
    }
}
