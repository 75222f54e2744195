//! The synthetic tree's `net/` gateway against Linux peers on loopback: TCP through
//! clone/ctl/data to an echo server with every byte checked, announce and listen, hangup, UDP
//! both ways, and reads cancelled as `Tflush` cancels them.

mod synthetic_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream, UdpSocket};
use std::rc::Rc;

use cairn_9p::errno::{ECONNREFUSED, EINVAL, ENOENT, ENOTCONN, EPIPE};
use cairn_9p::server::FileServer;
use cairn_fileserver::synthetic::{Synthetic, SyntheticFid};
use cairn_rt::event::spawn_local;
use synthetic_support::*;

/// Opens `net/PROTO/clone`, returns the ctl fid and the conversation number.
async fn clone_conv(fs: &Synthetic, proto: &str) -> (SyntheticFid, String) {
    let ctl = open(fs, &format!("net/{proto}/clone"), O_RDWR).expect("open clone");
    let n = read_text(fs, &ctl).await;
    assert!(n.parse::<u32>().is_ok(), "clone reads a number: {n:?}");
    (ctl, n)
}

/// Opens a file of conversation `n`.
fn conv_file(fs: &Synthetic, proto: &str, n: &str, file: &str, flags: u32) -> SyntheticFid {
    open(fs, &format!("net/{proto}/{n}/{file}"), flags)
        .unwrap_or_else(|e| panic!("open net/{proto}/{n}/{file}: errno {e}"))
}

async fn status(fs: &Synthetic, proto: &str, n: &str) -> String {
    cat(fs, &format!("net/{proto}/{n}/status")).await
}

/// Reads `data` until `want` bytes have come, each read bounded in time.
async fn read_exactly(fs: &Synthetic, data: &SyntheticFid, want: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(want);
    // Bounded: each round takes at least one byte or fails the test.
    while got.len() < want {
        let buf = must(10_000, "data read", fs.read(data, 0, 65536)).await.expect("read data");
        assert!(!buf.is_empty(), "unexpected end of stream after {} bytes", got.len());
        got.extend_from_slice(&buf);
    }
    got
}

#[test]
fn tcp_through_clone_and_ctl_carries_megabytes_to_an_echo_server_byte_exact() {
    const TOTAL: usize = 4 * 1024 * 1024 + 12345;
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let fs = Rc::new(Synthetic::new(rt));
        let (ctl, n) = clone_conv(&fs, "tcp").await;
        assert_eq!(status(&fs, "tcp", &n).await, "Closed\n");
        let dial = format!("connect 127.0.0.1!{port}\n");
        must(5000, "connect", put(&fs, &ctl, &dial)).await.expect("connect");
        assert_eq!(status(&fs, "tcp", &n).await, "Established\n");
        assert_eq!(cat(&fs, &format!("net/tcp/{n}/remote")).await, format!("127.0.0.1!{port}\n"));
        assert!(cat(&fs, &format!("net/tcp/{n}/local")).await.starts_with("127.0.0.1!"));
        assert_eq!(read_text(&fs, &ctl).await, n, "ctl reads the number");

        let data = Rc::new(conv_file(&fs, "tcp", &n, "data", O_RDWR));
        let payload = Rc::new(pattern(1, TOTAL));
        // Write and read at once, so neither side's socket buffers fill up and stall.
        let writer = {
            let (fs, data, payload) = (fs.clone(), data.clone(), payload.clone());
            spawn_local(async move {
                let mut sizes = [1usize, 100, 8192, 65536, 60_001].into_iter().cycle();
                let mut off = 0;
                while off < payload.len() {
                    let end = (off + sizes.next().unwrap()).min(payload.len());
                    let n = fs.write(&data, 0, &payload[off..end]).await.expect("write data");
                    assert_eq!(n as usize, end - off);
                    off = end;
                }
            })
        };
        let echoed = read_exactly(&fs, &data, TOTAL).await;
        must(10_000, "writer", writer).await;
        assert_eq!(echoed.len(), TOTAL);
        assert!(echoed == *payload, "echoed bytes differ");

        // Hangup: reads see end of file, writes fail, the status says so.
        put(&fs, &ctl, "hangup").await.unwrap();
        assert_eq!(status(&fs, "tcp", &n).await, "Hungup\n");
        assert!(fs.read(&data, 0, 100).await.unwrap().is_empty());
        assert_eq!(fs.write(&data, 0, b"late").await, Err(EPIPE));
    });
    assert_eq!(echo.join().unwrap(), TOTAL);
}

#[test]
fn tcp_announce_and_listen_take_calls_from_linux_clients() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "tcp").await;
        assert_eq!(open(&fs, &format!("net/tcp/{n}/listen"), O_RDWR).err(), Some(EINVAL));
        put(&fs, &ctl, "announce 127.0.0.1!0\n").await.unwrap();
        assert_eq!(status(&fs, "tcp", &n).await, "Announced\n");
        let local = cat(&fs, &format!("net/tcp/{n}/local")).await;
        let port: u16 = local.trim().rsplit_once('!').unwrap().1.parse().unwrap();
        assert_ne!(port, 0);

        for round in 0..2u8 {
            let client = std::thread::spawn(move || {
                let mut s = StdTcpStream::connect(("127.0.0.1", port)).expect("dial");
                s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
                s.write_all(&[b'p', b'i', b'n', b'g', round]).unwrap();
                let mut reply = [0u8; 5];
                s.read_exact(&mut reply).unwrap();
                assert_eq!(&reply, &[b'p', b'o', b'n', b'g', round]);
                s.local_addr().unwrap()
            });
            let listen = conv_file(&fs, "tcp", &n, "listen", O_RDWR);
            let m = must(10_000, "listen", read_text(&fs, &listen)).await;
            assert_ne!(m, n, "a call is a new conversation");
            let ctl_m = walk(&fs, &format!("net/tcp/{m}/ctl")).unwrap();
            assert_eq!(fs.qid(&listen), fs.qid(&ctl_m), "the listen fid is now M's ctl");
            assert_eq!(status(&fs, "tcp", &m).await, "Established\n");
            let data = conv_file(&fs, "tcp", &m, "data", O_RDWR);
            let got = read_exactly(&fs, &data, 5).await;
            assert_eq!(got, [b'p', b'i', b'n', b'g', round]);
            fs.write(&data, 0, &[b'p', b'o', b'n', b'g', round]).await.unwrap();
            let client_addr: SocketAddr = client.join().unwrap();
            let remote = cat(&fs, &format!("net/tcp/{m}/remote")).await;
            assert_eq!(remote, format!("127.0.0.1!{}\n", client_addr.port()));
        }
        assert_eq!(status(&fs, "tcp", &n).await, "Announced\n", "still listening");
    });
}

#[test]
fn a_flushed_listen_read_leaves_the_call_for_the_next_reader() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "tcp").await;
        put(&fs, &ctl, "announce 127.0.0.1!0").await.unwrap();
        let local = cat(&fs, &format!("net/tcp/{n}/local")).await;
        let port: u16 = local.trim().rsplit_once('!').unwrap().1.parse().unwrap();
        let listen = conv_file(&fs, "tcp", &n, "listen", O_RDWR);
        assert!(within(30, fs.read(&listen, 0, 100)).await.is_none(), "no call yet");
        let client = std::thread::spawn(move || {
            let mut s = StdTcpStream::connect(("127.0.0.1", port)).expect("dial");
            s.write_all(b"hi").unwrap();
            s
        });
        let m = must(10_000, "listen", read_text(&fs, &listen)).await;
        let data = conv_file(&fs, "tcp", &m, "data", O_RDONLY);
        assert_eq!(read_exactly(&fs, &data, 2).await, b"hi");
        drop(client.join().unwrap());
    });
}

#[test]
fn a_blocked_data_read_dropped_by_flush_leaves_the_connection_whole() {
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "tcp").await;
        must(5000, "connect", put(&fs, &ctl, &format!("connect 127.0.0.1:{port}"))).await.unwrap();
        let data = conv_file(&fs, "tcp", &n, "data", O_RDWR);
        // Nothing was sent, so a read blocks; drop it as Tflush does.
        for _ in 0..3 {
            assert!(within(20, fs.read(&data, 0, 100)).await.is_none(), "nothing to read yet");
        }
        // Reads given up at random moments while data arrives lose nothing: what each read
        // returned, plus what is left, is exactly what was sent.
        let mut sent = Vec::new();
        let mut got = Vec::new();
        for i in 0..200u64 {
            let chunk = pattern(i + 100, 1 + (i as usize * 37) % 3000);
            fs.write(&data, 0, &chunk).await.unwrap();
            sent.extend_from_slice(&chunk);
            if let Some(buf) = within(i % 3, fs.read(&data, 0, 1 + (i as u32 * 101) % 4096)).await {
                got.extend_from_slice(&buf.unwrap());
            }
        }
        got.extend(read_exactly(&fs, &data, sent.len() - got.len()).await);
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "bytes lost or reordered across flushed reads");
        assert_eq!(status(&fs, "tcp", &n).await, "Established\n");

        // A read blocked when the conversation is hung up ends with end of file.
        let pending = within(2000, fs.read(&data, 0, 100));
        let hangup = async {
            cairn_rt::event::sleep_ns(20_000_000).await;
            put(&fs, &ctl, "hangup").await.unwrap();
        };
        let (read, ()) = join(pending, hangup).await;
        assert!(read.expect("the read ended").unwrap().is_empty());
    });
    echo.join().unwrap();
}

/// Runs two futures to completion together.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[test]
fn a_refused_connect_reports_it_and_leaves_the_conversation_reusable() {
    // A port with nothing listening: bound, then closed.
    let dead_port = StdTcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "tcp").await;
        let data = conv_file(&fs, "tcp", &n, "data", O_RDWR);
        assert_eq!(fs.read(&data, 0, 10).await.err(), Some(ENOTCONN));
        let dial = format!("connect 127.0.0.1!{dead_port}");
        let refused = must(5000, "connect", put(&fs, &ctl, &dial)).await;
        assert_eq!(refused.err(), Some(ECONNREFUSED));
        assert_eq!(status(&fs, "tcp", &n).await, "Closed\n");
        assert_eq!(put(&fs, &ctl, "connect nowhere!80").await.err(), Some(EINVAL));
        assert_eq!(put(&fs, &ctl, "dance").await.err(), Some(EINVAL));
        must(5000, "connect", put(&fs, &ctl, &format!("connect 127.0.0.1!{port}"))).await.unwrap();
        fs.write(&data, 0, b"again").await.unwrap();
        assert_eq!(read_exactly(&fs, &data, 5).await, b"again");
        put(&fs, &ctl, "hangup").await.unwrap();
    });
    assert_eq!(echo.join().unwrap(), 5);
}

#[test]
fn a_conversation_directory_lives_while_a_fid_names_it() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let listing = |fs: &Synthetic| -> Vec<String> {
            let dir = open(fs, "net/tcp", O_RDONLY).unwrap();
            fs.readdir(&dir, 0, 100).unwrap().into_iter().map(|e| e.name).collect()
        };
        let (ctl_a, a) = clone_conv(&fs, "tcp").await;
        let (ctl_b, b) = clone_conv(&fs, "tcp").await;
        assert_eq!(listing(&fs), [".", "..", "clone", &a, &b]);
        let files: Vec<String> = {
            let dir = open(&fs, &format!("net/tcp/{a}"), O_RDONLY).unwrap();
            fs.readdir(&dir, 0, 100).unwrap().into_iter().map(|e| e.name).collect()
        };
        assert_eq!(files, [".", "..", "ctl", "data", "listen", "local", "remote", "status"]);
        // A listing resumed after a's cookie goes on with b, even once a is gone.
        let dir = open(&fs, "net/tcp", O_RDONLY).unwrap();
        let entries = fs.readdir(&dir, 0, 100).unwrap();
        let cookie_a = entries.iter().find(|e| e.name == a).unwrap().offset;

        // b's data fid keeps b alive after its ctl is clunked; a goes with its only fid.
        let data_b = conv_file(&fs, "tcp", &b, "data", O_RDONLY);
        fs.clunk(ctl_a);
        fs.clunk(ctl_b);
        assert_eq!(walk(&fs, &format!("net/tcp/{a}")).err(), Some(ENOENT));
        assert!(walk(&fs, &format!("net/tcp/{b}")).is_ok());
        let rest: Vec<String> =
            fs.readdir(&dir, cookie_a, 100).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(rest, std::slice::from_ref(&b));
        fs.clunk(data_b);
        assert_eq!(listing(&fs), [".", "..", "clone"]);
        let (_ctl, c) = clone_conv(&fs, "tcp").await;
        assert!(c.parse::<u32>().unwrap() > b.parse::<u32>().unwrap(), "numbers are not reused");
        assert_eq!(walk(&fs, "net/tcp/00").err(), Some(ENOENT));
    });
}

#[test]
fn udp_connected_carries_one_datagram_per_read_and_write() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let echo = std::thread::spawn(move || {
        peer.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
        let mut buf = vec![0u8; 65536];
        // Bounded: a datagram each round, or the timeout ends it.
        let mut echoed = 0;
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            if &buf[..n] == b"quit" {
                break;
            }
            peer.send_to(&buf[..n], from).unwrap();
            echoed += 1;
        }
        echoed
    });
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "udp").await;
        put(&fs, &ctl, &format!("connect 127.0.0.1!{port}\n")).await.unwrap();
        assert_eq!(status(&fs, "udp", &n).await, "Established\n");
        assert_eq!(cat(&fs, &format!("net/udp/{n}/remote")).await, format!("127.0.0.1!{port}\n"));
        let data = conv_file(&fs, "udp", &n, "data", O_RDWR);
        for i in 0..100u64 {
            let datagram = pattern(i, 1 + (i as usize * 331) % 9000);
            assert_eq!(fs.write(&data, 0, &datagram).await, Ok(datagram.len() as u32));
            let back = must(5000, "datagram", fs.read(&data, 0, 65536)).await.unwrap();
            assert_eq!(back.as_slice(), &datagram[..], "datagram {i}");
        }
        // A read shorter than the datagram gets its start; the rest is gone, as with recv.
        fs.write(&data, 0, &[7u8; 1000]).await.unwrap();
        fs.write(&data, 0, b"next").await.unwrap();
        assert_eq!(must(5000, "short", fs.read(&data, 0, 10)).await.unwrap().as_slice(), [7u8; 10]);
        assert_eq!(must(5000, "next", fs.read(&data, 0, 100)).await.unwrap().as_slice(), b"next");
        // A flushed read loses no datagram.
        assert!(within(20, fs.read(&data, 0, 100)).await.is_none());
        fs.write(&data, 0, b"kept").await.unwrap();
        assert_eq!(must(5000, "kept", fs.read(&data, 0, 100)).await.unwrap().as_slice(), b"kept");
        fs.write(&data, 0, b"quit").await.unwrap();
    });
    assert_eq!(echo.join().unwrap(), 103);
}

#[test]
fn udp_announced_reads_from_anyone_and_answers_the_sender() {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (port_tx, port_rx) = std::sync::mpsc::channel::<u16>();
    let peer = std::thread::spawn(move || {
        let port = port_rx.recv_timeout(PEER_TIMEOUT).unwrap();
        let mut replies = Vec::new();
        for i in 0..5u8 {
            client.send_to(&[b'q', i], ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from.port(), port);
            replies.push(buf[..n].to_vec());
        }
        replies
    });
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::new(rt);
        let (ctl, n) = clone_conv(&fs, "udp").await;
        let data = conv_file(&fs, "udp", &n, "data", O_RDWR);
        assert_eq!(fs.write(&data, 0, b"x").await.err(), Some(ENOTCONN));
        put(&fs, &ctl, "announce 127.0.0.1!0").await.unwrap();
        assert_eq!(status(&fs, "udp", &n).await, "Announced\n");
        assert_eq!(fs.write(&data, 0, b"x").await.err(), Some(ENOTCONN), "no sender yet");
        let local = cat(&fs, &format!("net/udp/{n}/local")).await;
        port_tx.send(local.trim().rsplit_once('!').unwrap().1.parse().unwrap()).unwrap();
        for i in 0..5u8 {
            let q = must(10_000, "query", fs.read(&data, 0, 100)).await.unwrap();
            assert_eq!(q.as_slice(), [b'q', i]);
            let remote = cat(&fs, &format!("net/udp/{n}/remote")).await;
            assert_eq!(remote, format!("127.0.0.1!{}\n", client_addr.port()));
            fs.write(&data, 0, &[b'a', i]).await.unwrap();
        }
    });
    let replies = peer.join().unwrap();
    assert_eq!(replies, (0..5u8).map(|i| vec![b'a', i]).collect::<Vec<_>>());
}
