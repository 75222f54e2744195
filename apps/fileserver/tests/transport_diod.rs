//! cairn's 9P client (9P2000.L) against diod, an independent server, over TCP on loopback:
//! create, write, read, readdir, rename, mkdir, remove, and a 64 MiB file compared by checksum.
//!
//! The test starts diod itself on a free loopback port with a fresh temporary directory and
//! kills it (and removes the directory) when done, also on failure.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_9p::client::{Client, ClientConfig};
use cairn_9p::codec::Dialect;
use cairn_fileserver::transport::StreamTransport;
use cairn_hosted::net::TcpStream;

mod transport_common;
use transport_common::on_core;

const DIOD: &str = "/usr/sbin/diod";
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_DIRECTORY: u32 = 0o200000;
const O_TRUNC: u32 = 0o1000;
const AT_REMOVEDIR: u32 = 0x200;

/// A diod serving a temporary directory; killed and cleaned up on drop.
struct Diod {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Diod {
    fn start(name: &str) -> Diod {
        let dir = std::env::temp_dir().join(format!("cairn-diod-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port =
            StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = Command::new(DIOD)
            .args(["-f", "-n", "-l", &addr.to_string(), "-e"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("diod is installed (/usr/sbin/diod)");
        let diod = Diod { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdTcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "diod did not start listening on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        diod
    }
}

impl Drop for Diod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        dialect: Dialect::P2000L,
        uname: "root".into(),
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        n_uname: unsafe { libc::getuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getgid() },
        msize: 256 * 1024,
        ..ClientConfig::default()
    }
}

async fn connect(addr: SocketAddr) -> Client<StreamTransport<TcpStream>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let transport = Rc::new(StreamTransport::new(stream, 256 * 1024));
    Client::connect(transport, config()).await.unwrap()
}

/// A 64-bit FNV-1a checksum.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

fn aname(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

#[test]
fn client_drives_diod_through_the_file_operations() {
    let diod = Diod::start("ops");
    let (addr, aname) = (diod.addr, aname(&diod.dir));
    let listing = on_core(move || async move {
        let client = connect(addr).await;
        assert_eq!(client.dialect(), Dialect::P2000L);
        let root = client.attach(&aname).await.unwrap();

        // create, write, read back
        let file = client.create(&root, "hello.txt", O_RDWR, 0o644).await.unwrap();
        client.write_all(&file, 0, b"hello, diod").await.unwrap();
        let back = client.read(&file, 7, 100).await.unwrap();
        assert_eq!(&back[..], b"diod");
        client.clunk(file).await.unwrap();

        // stat through a walk
        let walked = client.walk(&root, &["hello.txt"]).await.unwrap();
        let info = client.stat(&walked).await.unwrap();
        assert_eq!(info.size, 11);
        assert!(!info.is_dir());
        client.clunk(walked).await.unwrap();

        // mkdir, rename into it, remove
        client.mkdir(&root, "sub", 0o755).await.unwrap();
        let sub = client.walk(&root, &["sub"]).await.unwrap();
        client.renameat(&root, "hello.txt", &sub, "moved.txt").await.unwrap();
        assert_eq!(client.walk(&root, &["hello.txt"]).await.err(), Some(cairn_9p::errno::ENOENT));
        let moved = client.walk_path(&root, "sub/moved.txt").await.unwrap();
        client.open(&moved, O_RDONLY).await.unwrap();
        assert_eq!(client.read_to_end(&moved).await.unwrap(), b"hello, diod");
        client.clunk(moved).await.unwrap();

        // Trename of a fid, then remove
        let f2 = client.create(&sub, "two", O_WRONLY | O_TRUNC, 0o600).await.unwrap();
        client.clunk(f2).await.unwrap();
        let two = client.walk(&sub, &["two"]).await.unwrap();
        client.rename(&two, &root, "three").await.unwrap();
        client.clunk(two).await.unwrap();
        let three = client.walk(&root, &["three"]).await.unwrap();
        client.remove(three).await.unwrap();
        assert!(client.walk(&root, &["three"]).await.is_err());

        // an empty directory to remove with unlinkat
        client.mkdir(&root, "gone", 0o700).await.unwrap();
        client.unlinkat(&root, "gone", AT_REMOVEDIR).await.unwrap();

        // readdir of the root
        let dir = client.walk(&root, &[]).await.unwrap();
        client.open(&dir, O_RDONLY | O_DIRECTORY).await.unwrap();
        let mut names: Vec<String> =
            client.readdir(&dir).await.unwrap().into_iter().map(|e| e.name).collect();
        names.sort();
        client.clunk(dir).await.unwrap();
        client.clunk(sub).await.unwrap();
        client.clunk(root).await.unwrap();
        assert_eq!(client.in_flight(), 0);
        names
    });
    assert_eq!(listing, vec![".", "..", "sub"]);
    assert_eq!(std::fs::read(diod.dir.join("sub/moved.txt")).unwrap(), b"hello, diod");
}

#[test]
fn a_64_mib_file_round_trips_through_diod_with_its_checksum() {
    const SIZE: usize = 64 * 1024 * 1024;
    let diod = Diod::start("big");
    let (addr, aname) = (diod.addr, aname(&diod.dir));
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let expected = fnv1a(&data);
    let (read_sum, read_len) = on_core(move || async move {
        let client = connect(addr).await;
        let root = client.attach(&aname).await.unwrap();
        let file = client.create(&root, "big.bin", O_RDWR, 0o644).await.unwrap();
        client.write_all(&file, 0, &data).await.unwrap();
        client.clunk(file).await.unwrap();
        let file = client.walk(&root, &["big.bin"]).await.unwrap();
        client.open(&file, O_RDONLY).await.unwrap();
        let back = client.read_to_end(&file).await.unwrap();
        (fnv1a(&back), back.len())
    });
    assert_eq!(read_len, SIZE);
    assert_eq!(read_sum, expected, "the file read back differs from what was written");
    let on_disk = std::fs::read(diod.dir.join("big.bin")).unwrap();
    assert_eq!(fnv1a(&on_disk), expected, "diod stored different bytes");
}
