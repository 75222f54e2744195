//! The byte-stream transport over real sockets: messages split and coalesced by the sender
//! arrive whole, bad sizes and truncation end the connection, sends keep their order and a
//! close still delivers what was queued.

use std::rc::Rc;

use cairn_9p::transport::{Transport, TransportError};
use cairn_fileserver::transport::StreamTransport;
use cairn_hosted::net::unix::UnixStream;
use cairn_hosted::net::{TcpListener, TcpStream};
use cairn_rt::event::spawn_local;
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

mod transport_common;
use transport_common::on_core;

/// A 9P-framed message of `len` bytes whose tag is `seq`.
fn message(seq: u16, len: usize) -> Vec<u8> {
    let mut m = (len as u32).to_le_bytes().to_vec();
    m.push(117);
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend((7..len).map(|i| (i as u8) ^ (seq as u8)));
    m
}

#[test]
fn split_and_coalesced_messages_arrive_whole() {
    let got = on_core(|| async {
        let (raw, other) = UnixStream::pair().unwrap();
        let transport = StreamTransport::new(other, 1 << 20);
        let mut wire = Vec::new();
        let lens = [7usize, 11, 300, 70_000, 8, 5000, 200_000, 9];
        for (seq, &len) in lens.iter().enumerate() {
            wire.extend(message(seq as u16, len));
        }
        // Odd-sized pieces: sizes fields and bodies split everywhere, several messages per
        // piece, sent by their own task while this one receives.
        spawn_local(async move {
            let mut at = 0;
            let mut step = 1;
            while at < wire.len() {
                let end = (at + step).min(wire.len());
                raw.send_buf(IoBuf::copy_from_slice(&wire[at..end])).await.unwrap();
                at = end;
                step = step * 3 + 1;
            }
            raw.shutdown_write().unwrap();
        });
        let mut got = Vec::new();
        while let Some(msg) = transport.recv().await.unwrap() {
            let seq = u16::from_le_bytes([msg[5], msg[6]]);
            assert!(msg[..] == message(seq, lens[seq as usize])[..], "message {seq} differs");
            got.push(seq);
        }
        got
    });
    assert_eq!(got, (0..8).collect::<Vec<u16>>());
}

#[test]
fn bad_sizes_end_the_connection() {
    let results = on_core(|| async {
        let mut results = Vec::new();
        for size in [3u32, 6, 8193] {
            let (raw, other) = UnixStream::pair().unwrap();
            let transport = StreamTransport::new(other, 8192);
            let mut bytes = size.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[0; 12]);
            raw.send_buf(IoBuf::copy_from_slice(&bytes)).await.unwrap();
            let first = transport.recv().await.err();
            let again = transport.recv().await.err();
            let send = transport.send(IoBufChain::from(SharedIoBuf::from_static(b"x"))).err();
            results.push((first, again, send));
        }
        results
    });
    for (size, r) in [3u32, 6, 8193].into_iter().zip(results) {
        let bad = Some(TransportError::BadSize(size));
        assert_eq!(r, (bad, bad, bad), "size {size}");
    }
}

#[test]
fn a_close_mid_message_is_truncated_and_between_messages_is_the_end() {
    let (mid, between) = on_core(|| async {
        let (raw, other) = UnixStream::pair().unwrap();
        let transport = StreamTransport::new(other, 8192);
        raw.send_buf(IoBuf::copy_from_slice(&message(1, 100)[..50])).await.unwrap();
        raw.shutdown_write().unwrap();
        let mid = transport.recv().await;
        let (raw, other) = UnixStream::pair().unwrap();
        let transport = StreamTransport::new(other, 8192);
        raw.send_buf(IoBuf::copy_from_slice(&message(2, 100))).await.unwrap();
        raw.shutdown_write().unwrap();
        let whole = transport.recv().await.unwrap().map(|m| m.len());
        assert_eq!(whole, Some(100));
        let between = transport.recv().await;
        (mid, between)
    });
    assert_eq!(mid, Err(TransportError::Truncated));
    assert_eq!(between, Ok(None));
}

#[test]
fn sends_keep_their_order_over_tcp_and_close_delivers_the_queue() {
    let (count, closed_recv) = on_core(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let server = listener.accept().await.unwrap();
        let sender = Rc::new(StreamTransport::new(client, 1 << 20));
        let receiver = StreamTransport::new(server, 1 << 20);
        for seq in 0..2000u16 {
            let len = [7, 100, 4000, 70_000][seq as usize % 4];
            // Header and body as two segments, as the codec sends them.
            let bytes = message(seq, len);
            let mut chain = IoBufChain::from(SharedIoBuf::copy_from_slice(&bytes[..7]));
            chain.push_back(SharedIoBuf::copy_from_slice(&bytes[7..]));
            sender.send(chain).unwrap();
        }
        sender.close();
        let closed_recv = sender.recv().await.err();
        let mut count = 0u16;
        while let Some(msg) = receiver.recv().await.unwrap() {
            assert_eq!(u16::from_le_bytes([msg[5], msg[6]]), count, "order kept");
            let len = [7, 100, 4000, 70_000][count as usize % 4];
            assert!(msg[..] == message(count, len)[..]);
            count += 1;
        }
        (count, closed_recv)
    });
    assert_eq!(count, 2000, "every message queued before close arrived");
    assert_eq!(closed_recv, Some(TransportError::Closed));
}
