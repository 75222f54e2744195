//! What the synthetic tree's tests share: a hosted runtime to run them on, a timeout, and
//! path-level helpers over the `FileServer` trait.
#![allow(dead_code)]

use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_9p::codec::NONUNAME;
use cairn_9p::errno::Errno;
use cairn_9p::server::{Credentials, FileServer};
use cairn_fileserver::synthetic::{Synthetic, SyntheticFid};
use cairn_rt::event::{sleep_ns, spawn_local, Runtime};

/// Linux open flags.
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;

/// The longest any one test may run.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Starts a hosted runtime of `cores` cores, runs the future `make` returns on core 0 and
/// waits for it (at most [`TEST_LIMIT`]); a panic in it fails the test with its message.
pub fn run_on_core<F, Fut>(cores: usize, make: F)
where
    F: FnOnce(&'static Runtime) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::channel();
    let rt = cairn_hosted::start(cores, |_| {}).expect("start the runtime");
    let runtime = rt.runtime();
    runtime.spawn_on(0, move || {
        spawn_local(async move {
            make(runtime).await;
            tx.send(()).unwrap();
        });
    });
    let outcome = rx.recv_timeout(TEST_LIMIT);
    rt.shutdown();
    let joined = rt.join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
    outcome.expect("the test finished in time");
}

/// Runs `f` for at most `ms` milliseconds: `None` (and `f` dropped) if it did not finish.
pub async fn within<F: Future>(ms: u64, f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut timer = pin!(sleep_ns(ms * 1_000_000));
    poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Like [`within`], failing the test on a timeout.
pub async fn must<F: Future>(ms: u64, what: &str, f: F) -> F::Output {
    within(ms, f).await.unwrap_or_else(|| panic!("{what}: no answer within {ms} ms"))
}

/// A user for attach.
pub fn who() -> Credentials {
    Credentials { uname: "glenda".into(), n_uname: NONUNAME }
}

/// The root fid of the tree.
pub fn root(fs: &Synthetic) -> SyntheticFid {
    fs.attach("cairn", &who()).expect("attach cairn")
}

/// Walks `path` (names separated by `/`) from the root.
pub fn walk(fs: &Synthetic, path: &str) -> Result<SyntheticFid, Errno> {
    let mut fid = root(fs);
    for name in path.split('/').filter(|n| !n.is_empty()) {
        fid = fs.walk(&fid, name)?;
    }
    Ok(fid)
}

/// Walks to `path` and opens it with `flags`.
pub fn open(fs: &Synthetic, path: &str, flags: u32) -> Result<SyntheticFid, Errno> {
    let fid = walk(fs, path)?;
    fs.open(&fid, flags)?;
    Ok(fid)
}

/// Reads a whole small file from offset 0 (bounded to 64 reads).
pub async fn read_text(fs: &Synthetic, fid: &SyntheticFid) -> String {
    let mut out = Vec::new();
    for _ in 0..64 {
        let buf = fs.read(fid, out.len() as u64, 8192).await.expect("read");
        if buf.is_empty() {
            return String::from_utf8(out).expect("text");
        }
        out.extend_from_slice(&buf);
    }
    panic!("file does not end");
}

/// Opens `path` read-only and reads it whole.
pub async fn cat(fs: &Synthetic, path: &str) -> String {
    let fid = open(fs, path, O_RDONLY).unwrap_or_else(|e| panic!("open {path}: errno {e}"));
    read_text(fs, &fid).await
}

/// Writes `text` to an open fid, expecting it all taken.
pub async fn put(fs: &Synthetic, fid: &SyntheticFid, text: &str) -> Result<(), Errno> {
    let n = fs.write(fid, 0, text.as_bytes()).await?;
    assert_eq!(n as usize, text.len());
    Ok(())
}

/// A reproducible byte pattern.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How long a Linux peer thread waits for the other side before giving up.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// A Linux TCP echo server for one connection on loopback: its port and its thread, which
/// returns how many bytes it echoed.
pub fn tcp_echo_server() -> (u16, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(PEER_TIMEOUT)).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        // Bounded: every round echoes at least a byte, or the connection ends or times out.
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => {
                    s.write_all(&buf[..n]).expect("echo");
                    total += n;
                }
            }
        }
    });
    (port, thread)
}
