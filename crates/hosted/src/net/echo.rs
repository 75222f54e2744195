//! Echo services (RFC 862) on the hosted sockets: the smallest appliance, used by `cairn echo`
//! and by the tests that drive the hosted runtime with many clients.
//!
//! Received buffers are sent back as they are: the bytes are never copied by cairn.

use std::io;

use cairn_rt::event::spawn_local;

use super::{TcpListener, TcpStream, UdpSocket};

/// Echoes one connection until the peer closes it; returns the bytes echoed.
pub async fn echo_connection(stream: TcpStream) -> io::Result<u64> {
    let mut echoed = 0u64;
    while let Some(buf) = stream.recv().await? {
        echoed += buf.len() as u64;
        stream.send_buf(buf).await?;
    }
    stream.shutdown_write().ok();
    Ok(echoed)
}

/// Accepts connections on this core's listener forever, echoing each in its own task.
pub async fn serve_tcp(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                spawn_local(async move {
                    let _ = echo_connection(stream).await;
                });
            }
            // Out of descriptors or a connection reset before accept: keep serving.
            Err(_) => cairn_rt::event::yield_now().await,
        }
    }
}

/// Echoes datagrams on `socket` forever, each back to its sender.
pub async fn serve_udp(socket: UdpSocket) {
    loop {
        if let Ok((buf, from)) = socket.recv_from(super::udp::MAX_DATAGRAM).await {
            let _ = socket.send_buf_to(buf, from).await;
        }
    }
}
