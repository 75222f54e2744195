//! The shared-memory ring transport: both waiting modes between two threads and between two
//! processes, ring wraparound, back-pressure when the ring or the payload region is full, and
//! a 64 KiB message that arrives by reference with no copy.

use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use cairn_9p::transport::Transport;
use cairn_fileserver::transport::shm::{self, Geometry, ShmListener, ShmMode, ShmTransport};
use cairn_rt::event::{sleep_ns, spawn_local};
use cairn_rt::iobuf::{set_copy_observer, IoBufChain, SharedIoBuf};

mod transport_common;
use transport_common::{on_core, on_core_within};

thread_local! {
    static COPIED: Cell<u64> = const { Cell::new(0) };
}

/// Counts copies per thread, so a test sees only its own core's.
fn count_copy(bytes: usize) {
    let _ = COPIED.try_with(|c| c.set(c.get() + bytes as u64));
}

fn copied_here() -> u64 {
    COPIED.with(Cell::get)
}

/// Lets the event loop turn for a moment. (A task that spins with `yield_now` keeps the ready
/// queue full, and the loop hands queued io_uring submissions over only when it drains.)
async fn pause() {
    sleep_ns(200_000).await;
}

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("cairn-shm-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A 9P-framed message of `len` bytes (type 100, tag from `seq`), its body a pattern of `seq`.
fn message(seq: u32, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_le_bytes());
    m.push(100);
    m.extend_from_slice(&(seq as u16).to_le_bytes());
    m.extend((7..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8));
    m
}

fn chain(bytes: Vec<u8>) -> IoBufChain {
    IoBufChain::from(SharedIoBuf::from_vec(bytes))
}

/// Serves one channel: echoes every message back until the client closes. Returns how many
/// messages arrived by reference (in the shared payload region).
async fn echo_server(listener: ShmListener) -> usize {
    let transport = listener.accept().await.expect("handshake");
    let mut by_reference = 0;
    while let Ok(Some(msg)) = transport.recv().await {
        if transport.is_shared(&msg) {
            by_reference += 1;
        }
        transport.send(IoBufChain::from(msg)).expect("send the echo");
    }
    transport.close();
    by_reference
}

/// Sends messages of `sizes` and checks every echo, in order.
async fn echo_client(transport: &ShmTransport, sizes: &[usize]) {
    for (seq, &len) in sizes.iter().enumerate() {
        transport.send(chain(message(seq as u32, len))).unwrap();
    }
    for (seq, &len) in sizes.iter().enumerate() {
        let back = transport.recv().await.unwrap().expect("an echo");
        assert_eq!(back.len(), len, "echo {seq}");
        assert!(back[..] == message(seq as u32, len)[..], "echo {seq} differs");
    }
}

fn sizes() -> Vec<usize> {
    // Inline, just over a slot, 64 KiB and 1 MiB, repeated so the ring wraps several times.
    (0..300).map(|i| [7, 100, 8200, 65536, 1 << 20, 4000][i % 6]).collect()
}

fn two_threads(mode: ShmMode, name: &str) {
    let path = socket_path(name);
    let listener = ShmListener::bind(&path, 2 << 20).unwrap();
    let (tx, rx) = mpsc::channel();
    // The server runs on its own runtime (its own thread, io_uring and event loop).
    let server = std::thread::spawn(move || {
        let by_reference = on_core(move || echo_server(listener));
        tx.send(by_reference).unwrap();
    });
    let client_path = path.clone();
    let in_flight_max = on_core(move || async move {
        let transport = shm::connect(&client_path, mode, Geometry::default()).await.unwrap();
        assert_eq!(transport.mode(), mode);
        echo_client(&transport, &sizes()).await;
        transport.close();
        while !transport.is_finished() {
            pause().await;
        }
        transport.queued()
    });
    assert_eq!(in_flight_max, 0);
    let by_reference = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    server.join().unwrap();
    // Every message larger than a slot went by reference: 8200, 64 KiB and 1 MiB ones.
    assert_eq!(by_reference, 150);
    assert!(!path.exists(), "the listener removed its socket");
}

#[test]
fn polling_mode_echoes_between_two_threads() {
    two_threads(ShmMode::Polling, "poll");
}

#[test]
fn blocking_mode_echoes_between_two_threads() {
    two_threads(ShmMode::Blocking, "block");
}

#[test]
fn a_64_kib_message_arrives_by_reference_without_a_copy() {
    let path = socket_path("zero-copy");
    let (received_copies, sender_copies, in_region, intact) = on_core(move || async move {
        set_copy_observer(Some(count_copy));
        let listener = ShmListener::bind(&path, 1 << 20).unwrap();
        let server = spawn_local(async move { listener.accept().await.unwrap() });
        let client = shm::connect(&path, ShmMode::Polling, Geometry::default()).await.unwrap();
        while !server.is_finished() {
            pause().await;
        }
        let server = server.try_take().unwrap();

        // The sender writes the payload straight into its payload region, header in front.
        let len = 64 * 1024;
        let expected = message(1, len);
        let mut buf = client.alloc_payload(0, len).expect("payload room");
        buf.claim_tailroom(len).unwrap();
        buf.as_mut_slice().copy_from_slice(&expected);
        let before = copied_here();
        client.send(IoBufChain::from(buf.freeze())).unwrap();
        let msg = server.recv().await.unwrap().unwrap();
        let received_copies = copied_here() - before;
        let in_region = server.is_shared(&msg);
        let intact = msg[..] == expected[..];

        // A heap payload chained behind a header is copied once, into the payload region.
        let before = copied_here();
        let mut heap = IoBufChain::from(SharedIoBuf::from_vec(expected[..7].to_vec()));
        heap.push_back(SharedIoBuf::from_vec(expected[7..].to_vec()));
        client.send(heap).unwrap();
        let again = server.recv().await.unwrap().unwrap();
        let sender_copies = copied_here() - before;
        assert!(again[..] == expected[..]);
        assert!(server.is_shared(&again));
        (received_copies, sender_copies, in_region, intact)
    });
    assert!(intact, "the message arrived intact");
    assert!(in_region, "the message is read in place in the shared payload region");
    assert_eq!(received_copies, 0, "a payload-region message is not copied at all");
    assert_eq!(sender_copies, 64 * 1024, "a heap message is copied once, by the sender");
}

#[test]
fn a_full_ring_holds_back_the_sender_in_order() {
    let path = socket_path("full");
    let small = Geometry { slots: 4, slot_size: 256, chunk_size: 4096, chunks: 4 };
    let (in_ring, queued, got) = on_core(move || async move {
        let listener = ShmListener::bind(&path, 1 << 20).unwrap();
        let server = spawn_local(async move { listener.accept().await.unwrap() });
        let client = shm::connect(&path, ShmMode::Polling, small).await.unwrap();
        while !server.is_finished() {
            pause().await;
        }
        let server = server.try_take().unwrap();
        for seq in 0..20 {
            client.send(chain(message(seq, 50))).unwrap();
        }
        for _ in 0..50 {
            pause().await;
        }
        let (in_ring, queued) = (client.in_ring(), client.queued());
        let mut got = Vec::new();
        for _ in 0..20 {
            let m = server.recv().await.unwrap().unwrap();
            got.push(u16::from_le_bytes([m[5], m[6]]));
        }
        (in_ring, queued, got)
    });
    assert_eq!(in_ring, 4, "the ring holds four messages");
    assert_eq!(queued, 15, "the rest wait in the sender's queue (one more in the writer)");
    assert_eq!(got, (0..20).collect::<Vec<u16>>(), "order is kept through the back-pressure");
}

#[test]
fn held_payload_buffers_hold_back_large_messages_until_released() {
    let path = socket_path("payload-full");
    // Two chunks of 16 KiB: room for two 12 KiB messages at a time.
    let small = Geometry { slots: 8, slot_size: 256, chunk_size: 16384, chunks: 2 };
    let (arrived_while_held, total) = on_core(move || async move {
        let listener = ShmListener::bind(&path, 1 << 20).unwrap();
        let server = spawn_local(async move { listener.accept().await.unwrap() });
        let client = shm::connect(&path, ShmMode::Blocking, small).await.unwrap();
        while !server.is_finished() {
            pause().await;
        }
        let server = Rc::new(server.try_take().unwrap());
        for seq in 0..5 {
            client.send(chain(message(seq, 12 * 1024))).unwrap();
        }
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(server.recv().await.unwrap().unwrap());
        }
        // The third cannot be placed while both runs are held.
        let s = server.clone();
        let third = spawn_local(async move { s.recv().await.unwrap().unwrap() });
        for _ in 0..20 {
            pause().await;
        }
        let arrived_while_held = third.is_finished();
        drop(held);
        let mut total = 2;
        while !third.is_finished() {
            pause().await;
        }
        total += 1;
        for _ in 3..5 {
            let m = server.recv().await.unwrap().unwrap();
            assert_eq!(m.len(), 12 * 1024);
            total += 1;
        }
        (arrived_while_held, total)
    });
    assert!(!arrived_while_held, "a third run does not fit while two are held");
    assert_eq!(total, 5);
}

#[test]
fn a_closed_client_ends_the_servers_receive_after_its_last_message() {
    let path = socket_path("close");
    let result = on_core(move || async move {
        let listener = ShmListener::bind(&path, 1 << 20).unwrap();
        let server = spawn_local(async move { listener.accept().await.unwrap() });
        let client = shm::connect(&path, ShmMode::Blocking, Geometry::default()).await.unwrap();
        while !server.is_finished() {
            pause().await;
        }
        let server = server.try_take().unwrap();
        client.send(chain(message(9, 40))).unwrap();
        client.close();
        assert!(client.send(chain(message(10, 40))).is_err(), "no sends after close");
        let last = server.recv().await.unwrap().map(|m| m.len());
        let end = server.recv().await;
        (last, end)
    });
    assert_eq!(result, (Some(40), Ok(None)));
}

#[test]
fn a_bad_hello_is_refused() {
    let path = socket_path("bad-hello");
    let refused = on_core(move || async move {
        let listener = ShmListener::bind(&path, 1 << 20).unwrap();
        let server = spawn_local(async move { listener.accept().await.err() });
        let socket = cairn_hosted::net::unix::UnixStream::connect(&path).await.unwrap();
        socket.send_buf(cairn_rt::iobuf::IoBuf::copy_from_slice(b"hello?")).await.unwrap();
        while !server.is_finished() {
            pause().await;
        }
        server.try_take().unwrap().is_some()
    });
    assert!(refused);
}

/// The child half of [`blocking_and_polling_modes_work_between_two_processes`]: serves one
/// channel at `CAIRN_SHM_CHILD_PATH` as an echo server. Run only by that test.
#[test]
#[ignore = "run as a child process by blocking_and_polling_modes_work_between_two_processes"]
fn child_echo_server() {
    let Some(path) = std::env::var_os("CAIRN_SHM_CHILD_PATH") else { return };
    let listener = ShmListener::bind(PathBuf::from(path), 2 << 20).unwrap();
    let by_reference = on_core_within(Duration::from_secs(60), move || echo_server(listener));
    assert!(by_reference > 0);
}

#[test]
fn blocking_and_polling_modes_work_between_two_processes() {
    for (mode, name) in [(ShmMode::Blocking, "proc-block"), (ShmMode::Polling, "proc-poll")] {
        let path = socket_path(name);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_echo_server", "--ignored", "--quiet", "--test-threads=1"])
            .env("CAIRN_SHM_CHILD_PATH", &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        struct Kill<'a>(&'a mut std::process::Child);
        impl Drop for Kill<'_> {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let guard = Kill(&mut child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            assert!(std::time::Instant::now() < deadline, "the child did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let p = path.clone();
        on_core(move || async move {
            let transport = shm::connect(&p, mode, Geometry::default()).await.unwrap();
            echo_client(&transport, &sizes()[..60]).await;
            transport.close();
            while !transport.is_finished() {
                pause().await;
            }
        });
        let status = guard.0.wait().unwrap();
        assert!(status.success(), "the child echo server failed in {mode:?} mode");
    }
}
