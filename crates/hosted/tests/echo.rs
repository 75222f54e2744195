//! The hosted runtime under load: an echo server on both cores driven by hundreds of concurrent
//! Linux clients on loopback, every byte checked.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdTcpStream, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use cairn_hosted::net::{echo, ListenSocket, TcpListener, UdpSocket};
use cairn_rt::event::spawn_local;

const CORES: usize = 2;

/// A tiny deterministic generator, so each client sends its own reproducible bytes.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
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

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

#[test]
fn tcp_echo_on_both_cores_serves_hundreds_of_clients_byte_exact() {
    const CLIENTS: usize = 300;
    static ACCEPTED: [AtomicU64; CORES] = [AtomicU64::new(0), AtomicU64::new(0)];
    let sockets = TcpListener::bind_per_core(loopback(), CORES).unwrap();
    let addr = sockets[0].local_addr().unwrap();
    let sockets: &'static Mutex<Vec<Option<ListenSocket>>> =
        Box::leak(Box::new(Mutex::new(sockets.into_iter().map(Some).collect())));
    let rt = cairn_hosted::start(CORES, move |core| {
        let listener = TcpListener::from_socket(sockets.lock().unwrap()[core].take().unwrap());
        spawn_local(async move {
            loop {
                let stream = listener.accept().await.expect("accept");
                ACCEPTED[core].fetch_add(1, Ordering::Relaxed);
                spawn_local(async move {
                    echo::echo_connection(stream).await.expect("echo");
                });
            }
        });
    })
    .unwrap();

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = StdTcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
                // Sizes from one byte to a few hundred KiB, in uneven writes.
                let len = 1 + (i * 7919) % (256 * 1024);
                let data = pattern(i as u64, len);
                let writer = {
                    let mut s = s.try_clone().unwrap();
                    let data = data.clone();
                    std::thread::spawn(move || {
                        for chunk in data.chunks(1 + i % 5000) {
                            s.write_all(chunk).unwrap();
                        }
                        s.shutdown(std::net::Shutdown::Write).unwrap();
                    })
                };
                let mut back = Vec::with_capacity(len);
                s.read_to_end(&mut back).expect("read echo");
                writer.join().unwrap();
                assert_eq!(back.len(), data.len(), "client {i}: length");
                assert!(back == data, "client {i}: bytes differ");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let per_core: Vec<u64> = ACCEPTED.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    assert_eq!(per_core.iter().sum::<u64>(), CLIENTS as u64);
    assert!(per_core.iter().all(|&n| n > 0), "both cores accepted connections: {per_core:?}");
    let counters: Vec<_> = (0..CORES).map(|c| rt.runtime().counters(c)).collect();
    assert!(counters.iter().all(|c| c.device_completions > 0));
    rt.shutdown();
    rt.join().expect("cores exit cleanly");
}

#[test]
fn udp_echo_returns_every_datagram_to_its_sender() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let rt = cairn_hosted::start(1, move |_| {
        let socket = UdpSocket::bind(loopback()).expect("bind");
        tx.lock().unwrap().send(socket.local_addr().unwrap()).unwrap();
        spawn_local(echo::serve_udp(socket));
    })
    .unwrap();
    let addr = rx.recv().unwrap();
    let client = StdUdpSocket::bind(loopback()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..200u64 {
        let data = pattern(i, 1 + (i as usize * 331) % 9000);
        client.send_to(&data, addr).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, from) = client.recv_from(&mut buf).expect("echo arrives");
        assert_eq!(from, addr);
        assert_eq!(&buf[..n], &data[..], "datagram {i}");
    }
    rt.shutdown();
    rt.join().unwrap();
}

#[test]
fn cairn_client_talks_to_a_linux_server() {
    // The other direction: cairn connects out, sends a chain, reads the reply.
    let server = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = server.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got.iter().rev().copied().collect::<Vec<_>>()).unwrap();
        got
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = cairn_hosted::start(1, move |_| {
        let tx = tx.clone();
        spawn_local(async move {
            let s = cairn_hosted::net::TcpStream::connect(addr).await.expect("connect");
            let mut chain = cairn_rt::iobuf::IoBufChain::<cairn_rt::iobuf::IoBuf>::new();
            for part in [&b"hello, "[..], b"linux ", b"peer"] {
                let mut b = cairn_rt::iobuf::IoBuf::with_headroom(0, part.len());
                b.extend_from_slice(part);
                chain.push_back(b);
            }
            s.send(chain).await.expect("send");
            s.shutdown_write().unwrap();
            let mut reply = Vec::new();
            while let Some(b) = s.recv().await.expect("recv") {
                reply.extend_from_slice(b.as_slice());
            }
            tx.send(reply).unwrap();
        });
    })
    .unwrap();
    let reply = rx.recv_timeout(Duration::from_secs(10)).expect("reply");
    assert_eq!(peer.join().unwrap(), b"hello, linux peer");
    assert_eq!(reply, b"reep xunil ,olleh");
    rt.shutdown();
    rt.join().unwrap();
}
