//! End to end over every transport: `serve_listener` serving a host directory export, and
//! cairn's client connected with `transport::connect`, in both dialects, over `tcp:`, `unix:`
//! and `shm:` (polling and blocking).

use std::path::PathBuf;
use std::rc::Rc;

use cairn_9p::client::{Client, ClientConfig};
use cairn_9p::codec::Dialect;
use cairn_9p::server::ServerConfig;
use cairn_fileserver::export::{Export, ExportOptions};
use cairn_fileserver::transport::{
    connect, parse_listen, serve_listener, ClientTransport, ListenSpec, ShmMode,
};
use cairn_rt::event::{sleep_ns, spawn_local};

mod transport_common;
use transport_common::on_core;

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("cairn-serve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;

/// Serves `dir` at `spec` on this core, connects a client and runs create, a 3 MiB write and
/// read back, readdir and remove through it.
async fn round_trip(
    spec: ListenSpec,
    mode: ShmMode,
    dialect: Dialect,
    dir: PathBuf,
) -> Vec<String> {
    let export = Rc::new(Export::new(&dir, ExportOptions::default()).unwrap());
    let listen = spec.clone();
    spawn_local(async move {
        serve_listener(&listen, move || export.clone(), ServerConfig::default()).await.unwrap();
    });
    // Let the listener bind.
    let mut transport = None;
    for _ in 0..200 {
        match connect(&spec, mode, 1 << 20).await {
            Ok(t) => {
                transport = Some(t);
                break;
            }
            Err(_) => sleep_ns(5_000_000).await,
        }
    }
    let transport = Rc::new(transport.expect("the server listens"));
    let source = ClientTransport::buffer_source(&transport);
    let config = ClientConfig { dialect, msize: 256 * 1024 + 24, ..ClientConfig::default() };
    let client = Client::connect(transport, config).await.unwrap();
    assert_eq!(client.dialect(), dialect);
    if let Some(source) = source {
        client.set_buffer_source(source);
    }
    let root = client.attach("").await.unwrap();
    let file = client.create(&root, "data.bin", O_RDWR, 0o644).await.unwrap();
    let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 + i / 4099) as u8).collect();
    client.write_all(&file, 0, &data).await.unwrap();
    client.clunk(file).await.unwrap();
    let file = client.walk(&root, &["data.bin"]).await.unwrap();
    assert_eq!(client.stat(&file).await.unwrap().size, data.len() as u64);
    client.open(&file, O_RDONLY).await.unwrap();
    let back = client.read_to_end(&file).await.unwrap();
    assert!(back == data, "the file read back differs");
    client.clunk(file).await.unwrap();
    client.mkdir(&root, "d", 0o755).await.unwrap();
    let listing = client.walk(&root, &[]).await.unwrap();
    client.open(&listing, O_RDONLY).await.unwrap();
    let mut names: Vec<String> =
        client.readdir(&listing).await.unwrap().into_iter().map(|e| e.name).collect();
    names.retain(|n| n != "." && n != "..");
    names.sort();
    client.clunk(listing).await.unwrap();
    let file = client.walk(&root, &["data.bin"]).await.unwrap();
    client.remove(file).await.unwrap();
    names
}

fn run(spec: &str, mode: ShmMode, dialect: Dialect, name: &str) {
    let dir = TempDir::new(name);
    let spec = match parse_listen(spec).unwrap() {
        ListenSpec::Unix(_) => ListenSpec::Unix(dir.0.with_extension("sock")),
        ListenSpec::Shm(_) => ListenSpec::Shm(dir.0.with_extension("shm")),
        tcp => tcp,
    };
    let export_dir = dir.0.clone();
    let names = on_core(move || round_trip(spec, mode, dialect, export_dir));
    assert_eq!(names, vec!["d", "data.bin"]);
    assert!(!dir.0.join("data.bin").exists(), "the file was removed");
}

fn free_tcp_spec() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("tcp:127.0.0.1:{port}")
}

#[test]
fn export_over_tcp_in_both_dialects() {
    run(&free_tcp_spec(), ShmMode::Polling, Dialect::P2000L, "tcp-l");
    run(&free_tcp_spec(), ShmMode::Polling, Dialect::P2000, "tcp-plain");
}

#[test]
fn export_over_a_unix_socket() {
    run("unix:x", ShmMode::Polling, Dialect::P2000L, "unix");
}

#[test]
fn export_over_shared_memory_polling() {
    run("shm:x", ShmMode::Polling, Dialect::P2000L, "shm-poll");
}

#[test]
fn export_over_shared_memory_blocking() {
    run("shm:x", ShmMode::Blocking, Dialect::P2000, "shm-block");
}
