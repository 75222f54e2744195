//! The synthetic tree over real 9P: cairn's server framework (`serve`) on one end of a Unix
//! socket pair, cairn's client on the other. The `net/` gateway carries megabytes to a Linux
//! echo server with every byte checked, and a `Tflush` of a blocked `data` read leaves the
//! connection usable (issue 3, "Tests": the net/ gateway and Tflush of a blocked read).

mod synthetic_support;

use std::rc::Rc;

use cairn_9p::client::{Client, ClientConfig};
use cairn_9p::codec::{Dialect, Tmessage};
use cairn_9p::server::{serve, ServerConfig};
use cairn_fileserver::synthetic::Synthetic;
use cairn_fileserver::transport::StreamTransport;
use cairn_hosted::net::unix::UnixStream;
use cairn_rt::event::spawn_local;
use synthetic_support::*;

const MSIZE: u32 = 128 * 1024 + 24;

/// A client of a synthetic tree served over a Unix socket pair on this core.
async fn connect(rt: &'static cairn_rt::event::Runtime) -> Client<StreamTransport<UnixStream>> {
    connect_with(rt, Dialect::P2000L).await
}

/// Like [`connect`], speaking `dialect`.
async fn connect_with(
    rt: &'static cairn_rt::event::Runtime,
    dialect: Dialect,
) -> Client<StreamTransport<UnixStream>> {
    let (server_end, client_end) = UnixStream::pair().expect("socket pair");
    let fs = Rc::new(Synthetic::new(rt));
    let transport = Rc::new(StreamTransport::new(server_end, MSIZE));
    spawn_local(serve(fs, transport, ServerConfig { max_msize: MSIZE }));
    let transport = Rc::new(StreamTransport::new(client_end, MSIZE));
    let config = ClientConfig { msize: MSIZE, dialect, ..ClientConfig::default() };
    must(5000, "version", Client::connect(transport, config)).await.expect("version")
}

#[test]
fn the_net_gateway_carries_megabytes_over_9p_byte_exact() {
    const TOTAL: usize = 3 * 1024 * 1024 + 777;
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let client = Rc::new(connect(rt).await);
        let root = client.attach("cairn").await.expect("attach");
        let ctl = client.walk_path(&root, "net/tcp/clone").await.expect("walk clone");
        client.open(&ctl, O_RDWR).await.expect("open clone");
        let n = client.read(&ctl, 0, 100).await.expect("read clone");
        let n = String::from_utf8(n.to_vec()).unwrap();
        let dial = format!("connect 127.0.0.1!{port}");
        must(5000, "connect", client.write(&ctl, 0, dial.as_bytes())).await.expect("connect");
        let data = client.walk_path(&root, &format!("net/tcp/{n}/data")).await.expect("walk");
        client.open(&data, O_RDWR).await.expect("open data");
        let data = Rc::new(data);

        let payload = Rc::new(pattern(9, TOTAL));
        let writer = {
            let (client, data, payload) = (client.clone(), data.clone(), payload.clone());
            spawn_local(async move {
                for chunk in payload.chunks(100_000) {
                    let n = client.write(&data, 0, chunk).await.expect("write data");
                    assert_eq!(n as usize, chunk.len());
                }
            })
        };
        let mut echoed = Vec::with_capacity(TOTAL);
        // Bounded: each round takes at least one byte or fails the test.
        while echoed.len() < TOTAL {
            let buf = must(10_000, "read data", client.read(&data, 0, 65536)).await.unwrap();
            assert!(!buf.is_empty(), "end of stream after {} bytes", echoed.len());
            echoed.extend_from_slice(&buf);
        }
        must(10_000, "writer", writer).await;
        assert!(echoed == *payload, "echoed bytes differ");
        client.write(&ctl, 0, b"hangup").await.expect("hangup");
    });
    assert_eq!(echo.join().unwrap(), TOTAL);
}

#[test]
fn tflush_of_a_blocked_data_read_leaves_the_connection_usable() {
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let client = connect(rt).await;
        let root = client.attach("cairn").await.expect("attach");
        let ctl = client.walk_path(&root, "net/tcp/clone").await.unwrap();
        client.open(&ctl, O_RDWR).await.unwrap();
        let n = String::from_utf8(client.read(&ctl, 0, 100).await.unwrap().to_vec()).unwrap();
        let dial = format!("connect 127.0.0.1!{port}");
        must(5000, "connect", client.write(&ctl, 0, dial.as_bytes())).await.unwrap();
        let data = client.walk_path(&root, &format!("net/tcp/{n}/data")).await.unwrap();
        client.open(&data, O_RDWR).await.unwrap();

        for round in 0..3u8 {
            // A read with nothing to read blocks; flush it.
            let read = Tmessage::Read { fid: data.id(), offset: 0, count: 100 };
            let mut pending = client.start(&read).expect("send Tread");
            assert!(within(30, &mut pending).await.is_none(), "the read blocks");
            must(5000, "flush", pending.flush()).await.expect("Rflush");
            // The connection still carries bytes both ways, none lost to the flushed read.
            let msg = [b'a', b'f', b't', b'e', b'r', round];
            client.write(&data, 0, &msg).await.expect("write");
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let buf = must(5000, "read", client.read(&data, 0, 100)).await.unwrap();
                assert!(!buf.is_empty());
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, msg);
        }
        // The rest of the tree answers on the same connection.
        let null = client.walk_path(&root, "dev/null").await.unwrap();
        client.open(&null, O_WRONLY).await.unwrap();
        assert_eq!(client.write(&null, 0, &[0u8; 4096]).await, Ok(4096));
        client.write(&ctl, 0, b"hangup").await.unwrap();
    });
    assert_eq!(echo.join().unwrap(), 18);
}

#[test]
fn plan9_clients_list_and_dial_in_9p2000() {
    let (port, echo) = tcp_echo_server();
    run_on_core(1, move |rt| async move {
        let client = connect_with(rt, Dialect::P2000).await;
        assert_eq!(client.dialect(), Dialect::P2000);
        let root = client.attach("cairn").await.expect("attach");
        let names = |entries: Vec<cairn_9p::client::DirEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.name).filter(|n| n != "." && n != "..").collect()
        };
        let dev = client.walk_path(&root, "dev").await.unwrap();
        client.open(&dev, O_RDONLY).await.unwrap();
        assert_eq!(
            names(client.readdir(&dev).await.unwrap()),
            ["null", "zero", "random", "time", "cons"]
        );
        let time = client.walk_path(&root, "dev/time").await.unwrap();
        client.open(&time, O_RDONLY).await.unwrap();
        let text = client.read_to_end(&time).await.unwrap();
        assert_eq!(text.len(), 78);
        // Dialing as a Plan 9 program does: clone, ctl, data.
        let ctl = client.walk_path(&root, "net/tcp/clone").await.unwrap();
        client.open(&ctl, O_RDWR).await.unwrap();
        let n = String::from_utf8(client.read(&ctl, 0, 100).await.unwrap().to_vec()).unwrap();
        let tcp = client.walk_path(&root, "net/tcp").await.unwrap();
        client.open(&tcp, O_RDONLY).await.unwrap();
        assert_eq!(names(client.readdir(&tcp).await.unwrap()), ["clone", n.as_str()]);
        let dial = format!("connect 127.0.0.1!{port}");
        must(5000, "connect", client.write(&ctl, 0, dial.as_bytes())).await.unwrap();
        let data = client.walk_path(&root, &format!("net/tcp/{n}/data")).await.unwrap();
        client.open(&data, O_RDWR).await.unwrap();
        client.write(&data, 0, b"plan 9").await.unwrap();
        let mut got = Vec::new();
        while got.len() < 6 {
            let buf = must(5000, "read", client.read(&data, 0, 100)).await.unwrap();
            assert!(!buf.is_empty());
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, b"plan 9");
        client.write(&ctl, 0, b"hangup").await.unwrap();
    });
    assert_eq!(echo.join().unwrap(), 6);
}
