//! The hosted receive and send paths copy nothing: an echo of many megabytes through both cores
//! leaves cairn's copy counter where it was, with every received buffer lent from the core's
//! provided-buffer ring and returned to it.
//!
//! Alone in its test binary, so no other test moves the process-wide copy counter.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdTcpStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use cairn_hosted::net::{echo, ListenSocket, TcpListener};
use cairn_hosted::reactor::Reactor;
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::bytes_copied;

const CORES: usize = 2;

#[test]
fn echo_path_copies_nothing_and_every_ring_buffer_comes_back() {
    let sockets =
        TcpListener::bind_per_core(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), CORES).unwrap();
    let addr = sockets[0].local_addr().unwrap();
    let sockets: &'static Mutex<Vec<Option<ListenSocket>>> =
        Box::leak(Box::new(Mutex::new(sockets.into_iter().map(Some).collect())));
    let rt = cairn_hosted::start(CORES, move |core| {
        let socket = sockets.lock().unwrap()[core].take().unwrap();
        spawn_local(echo::serve_tcp(TcpListener::from_socket(socket)));
    })
    .unwrap();
    let copied_before = bytes_copied();

    let clients: Vec<_> = (0..16u8)
        .map(|i| {
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..2 * 1024 * 1024).map(|j: u32| (j as u8) ^ i).collect();
                let mut s = StdTcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data, "client {i}: echo differs");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }

    assert_eq!(bytes_copied() - copied_before, 0, "cairn copied payload bytes on the echo path");
    for core in 0..CORES {
        let (tx, rx) = mpsc::channel();
        rt.runtime().spawn_on(core, move || {
            let ring = Reactor::current().buf_ring().expect("the kernel has provided-buffer rings");
            tx.send((ring.lent(), ring.total_lends())).unwrap();
        });
        let (lent, lends) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(lent, 0, "core {core}: ring buffers still lent after every connection closed");
        assert!(lends > 0, "core {core}: received through the ring");
    }
    rt.shutdown();
    rt.join().unwrap();
}
