//! The client side: connecting to `tcp:HOST:PORT`, `unix:PATH` or `shm:PATH` and getting one
//! transport type for all three, for `cairn_9p::client::Client`.

use std::io;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use cairn_9p::client::BufferSource;
use cairn_9p::transport::{Transport, TransportError};
use cairn_hosted::net::unix::UnixStream;
use cairn_hosted::net::TcpStream;
use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::listen::ListenSpec;
use super::shm::{self, Geometry, ShmMode, ShmTransport};
use super::stream::StreamTransport;

/// A client's connection over any of the three transports.
pub enum ClientTransport {
    /// 9P framed on TCP.
    Tcp(StreamTransport<TcpStream>),
    /// 9P framed on a Unix stream socket.
    Unix(StreamTransport<UnixStream>),
    /// The shared-memory rings.
    Shm(ShmTransport),
}

/// Connects to `spec` on the calling core. `mode` is the waiting mode of a shared-memory
/// channel (ignored otherwise); `msize` the largest message accepted before version
/// negotiation lowers it.
pub async fn connect(spec: &ListenSpec, mode: ShmMode, msize: u32) -> io::Result<ClientTransport> {
    Ok(match spec {
        ListenSpec::Tcp(addr) => {
            let stream = TcpStream::connect(*addr).await?;
            stream.set_nodelay(true)?;
            ClientTransport::Tcp(StreamTransport::new(stream, msize))
        }
        ListenSpec::Unix(path) => {
            ClientTransport::Unix(StreamTransport::new(UnixStream::connect(path).await?, msize))
        }
        ListenSpec::Shm(path) => {
            ClientTransport::Shm(shm::connect(path, mode, Geometry::default()).await?)
        }
    })
}

impl ClientTransport {
    /// For a shared-memory channel, a [`BufferSource`] that lends the client's payload region,
    /// so `Client::write` copies a payload once, into memory the server reads in place.
    pub fn buffer_source(transport: &Rc<ClientTransport>) -> Option<BufferSource> {
        if !matches!(**transport, ClientTransport::Shm(_)) {
            return None;
        }
        let weak: Weak<ClientTransport> = Rc::downgrade(transport);
        Some(Box::new(move |headroom, len| match &*weak.upgrade()? {
            ClientTransport::Shm(shm) => shm.alloc_payload(headroom, len),
            _ => None,
        }))
    }
}

impl Transport for ClientTransport {
    async fn recv(&self) -> Result<Option<SharedIoBuf>, TransportError> {
        match self {
            ClientTransport::Tcp(t) => t.recv().await,
            ClientTransport::Unix(t) => t.recv().await,
            ClientTransport::Shm(t) => t.recv().await,
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Result<Option<SharedIoBuf>, TransportError>>> {
        match self {
            ClientTransport::Tcp(t) => t.poll_recv(cx),
            ClientTransport::Unix(t) => t.poll_recv(cx),
            ClientTransport::Shm(t) => t.poll_recv(cx),
        }
    }

    fn send(&self, message: IoBufChain) -> Result<(), TransportError> {
        match self {
            ClientTransport::Tcp(t) => t.send(message),
            ClientTransport::Unix(t) => t.send(message),
            ClientTransport::Shm(t) => t.send(message),
        }
    }

    fn set_msize(&self, msize: u32) {
        match self {
            ClientTransport::Tcp(t) => t.set_msize(msize),
            ClientTransport::Unix(t) => t.set_msize(msize),
            ClientTransport::Shm(t) => t.set_msize(msize),
        }
    }

    fn close(&self) {
        match self {
            ClientTransport::Tcp(t) => t.close(),
            ClientTransport::Unix(t) => t.close(),
            ClientTransport::Shm(t) => t.close(),
        }
    }
}
